"""Invariants of the load scenarios (thundering herd, penetration, avalanche), judged from the run's
history (every read a client made, where it was served from) and the real data, read again over
connections of the checker's own. A bound here counts database reads; time enters only as the run's
recorded clock, the way a TTL bounds what a cache may do."""

from __future__ import annotations

import math
from collections import defaultdict

from apps.runs.registry import Check, counted

from .engine.herd import p99
from .engine.penetration import bloom_for
from .engine.store import Store

NOT_REACHED = "the run ended before its clients ran"
SHOWN = 20
DB_SOURCES = ("db", "early")  # a read that queried the database
# How far a measured false-positive rate may stray from the formula, in standard deviations: one
# filter's rate varies with the bits its keys happen to share, more so in a small filter whose
# hashes rbloom draws from one seed, and the probes sample it.
DEVIATIONS = 5.0


def reads(ctx) -> list[dict]:
    """Completed-ok reads, each with its invocation's index and time (`began`)."""
    invoked = {op["index"]: op for op in ctx.history.ops if op["type"] == "invoke"}
    done = []
    for op in ctx.history.completed("read"):
        if op["type"] == "ok" and isinstance(op.get("value"), dict):
            start = invoked[op["invoke_index"]]
            done.append({**op, "began": start["time"], "began_index": start["index"]})
    return done


# Thundering herd -------------------------------------------------------------------------------


def expiries(variant_reads: list[dict]) -> list[list[dict]]:
    """The reads that missed the cache, grouped by expiry: reads whose spans overlap in the
    history's order (one began before another ended) met the same missing entry. A read that hit
    is no part of any."""
    missed = sorted((r for r in variant_reads if r["value"]["from"] != "cache"), key=lambda r: r["began_index"])
    groups: list[list[dict]] = []
    end = -1
    for r in missed:
        if groups and r["began_index"] < end:
            groups[-1].append(r)
            end = max(end, r["index"])
        else:
            groups.append([r])
            end = r["index"]
    return [g for g in groups if any(r["value"]["from"] in DB_SOURCES for r in g)]


def herd_stats(ctx) -> dict[str, dict]:
    by_variant = defaultdict(list)
    for r in reads(ctx):
        by_variant[r["value"].get("variant")].append(r)
    stats = {}
    for variant, rs in by_variant.items():
        groups = expiries(rs)
        per = [sum(r["value"]["from"] in DB_SOURCES for r in g) for g in groups]
        stats[variant] = {
            "reads": len(rs),
            "db_reads": sum(r["value"]["from"] in DB_SOURCES for r in rs),
            "expiries": len(groups),
            "db_reads_per_expiry_max": max(per, default=0),
            "db_reads_per_expiry_mean": round(sum(per) / len(per), 2) if per else None,
            "read_p99_ms": p99([r["value"]["ms"] for r in rs]),
            "worst": [
                {"client": r["process"], "from": r["value"]["from"], "read_at_s": round(r["began"] / 1000.0, 3)}
                for r in max(groups, key=len, default=[])[:SHOWN]
            ],
        }
    return stats


def herd_per_expiry(ctx, result, variants=("mutex", "lease", "xfetch"), bound: int = 1):
    """Each expiry of the hot key cost at most `bound` database queries, in each of `variants`;
    the others (no protection) are shown as measurements."""
    if not result:
        return Check(None, NOT_REACHED)
    stats = herd_stats(ctx)
    judged = {v: stats.get(v) for v in variants}
    if any(s is None or s["expiries"] == 0 for s in judged.values()):
        return Check(None, {"summary": "a variant saw no expiry of the hot key", "variants": stats})
    over = {v: s["db_reads_per_expiry_max"] for v, s in judged.items() if s["db_reads_per_expiry_max"] > bound}
    told = "; ".join(
        f"{v}: {s['db_reads']} queries for {counted(s['expiries'], 'expiry', 'expiries')} "
        f"(at most {s['db_reads_per_expiry_max']}), p99 {s['read_p99_ms']:.0f} ms"
        for v, s in stats.items()
    )
    summary = (
        f"at most {counted(bound, 'query', 'queries')} per expiry in {', '.join(variants)} — {told}"
        if not over
        else f"{', '.join(f'{v} sent {n} queries' for v, n in over.items())} for one expiry, above {bound} — {told}"
    )
    return Check(not over, {"summary": summary, "bound": bound, "judged": list(variants), "variants": stats})


# Penetration ----------------------------------------------------------------------------------


def bloom_hashes(fp_rate: float) -> int:
    """The number of hash functions rbloom derives from the rate: floor(m/n · ln 2), m/n = -ln p / ln² 2."""
    return max(1, int(-math.log(fp_rate) / math.log(2) ** 2 * math.log(2)))


def expected_fp_rate(k: int, n: int, m: int) -> float:
    """(1 - e^(-kn/m))^k: a filter of m bits and k hashes holding n keys."""
    return (1.0 - math.exp(-k * n / m)) ** k


def fp_rate_deviation(k: int, n: int, m: int, probes: int) -> float:
    """The standard deviation of a measured rate: the filter's own (the count of set bits X has
    variance m·q·(1 - (1 + kn/m)·q), q = e^(-kn/m), and the rate is (X/m)^k) and the sample's."""
    q = math.exp(-k * n / m)
    bits = math.sqrt(max(m * q * (1.0 - (1.0 + k * n / m) * q), 0.0)) / m
    of_filter = k * (1.0 - q) ** (k - 1) * bits
    rate = expected_fp_rate(k, n, m)
    of_sample = math.sqrt(rate * (1.0 - rate) / probes)
    return math.sqrt(of_filter**2 + of_sample**2)


def table_keys(ctx, result) -> set[str]:
    store = Store(ctx.nodes, result.get("redis_node"))
    conn = store.db()
    try:
        return set(store.rows(conn))
    finally:
        conn.close()


def _unanswered_nulls(absent_db_reads: list[dict], null_ttl_ms: float) -> list[dict]:
    """Database reads of an absent key made while an earlier read's cached null was certainly alive:
    the later read began after the earlier one ended (its null set) and ended before the earlier
    one began plus the null's TTL, so its GET fell inside the null's life whatever the load."""
    by_key = defaultdict(list)
    for r in absent_db_reads:
        by_key[r["value"]["key"]].append(r)
    found = []
    for key, rs in by_key.items():
        rs.sort(key=lambda r: r["began_index"])
        for b in rs:
            for a in rs:
                if a["index"] < b["began_index"] and b["time"] < a["began"] + null_ttl_ms:
                    found.append(
                        {
                            "key": key,
                            "client": b["process"],
                            "read_at_s": round(b["began"] / 1000.0, 3),
                            "null_cached_by": a["process"],
                            "null_cached_at_s": round(a["time"] / 1000.0, 3),
                        }
                    )
                    break
    return found


def absent_reads_bounded(ctx, result, judged=(("nulls", "nulls"), ("bloom", "bloom"))):
    """Reads of keys that are not in the table reach the database only as far as each protection
    allows: with cached nulls, never while a null for the key is alive; with the Bloom filter, only
    for keys the filter (rebuilt here from the table) cannot rule out. `judged` pairs a variant with
    the rule it is held to. And no read of a key that is in the table was told it is absent."""
    if not result:
        return Check(None, NOT_REACHED)
    present = table_keys(ctx, result)
    p = ctx.params
    bloom = bloom_for(sorted(present), p["keys"], p["fp_rate"])
    by_variant = defaultdict(list)
    for r in reads(ctx):
        by_variant[r["value"].get("variant")].append(r)
    measured, broken = {}, {}
    for variant, rs in sorted(by_variant.items()):
        absent = [r for r in rs if r["value"]["key"] not in present]
        absent_db = [r for r in absent if r["value"]["from"] == "db"]
        measured[variant] = {"reads": len(rs), "absent_reads": len(absent), "absent_db_reads": len(absent_db)}
        wrong = [
            {"key": r["value"]["key"], "client": r["process"], "from": r["value"]["from"]}
            for r in rs
            if r["value"]["key"] in present and r["value"]["version"] is None
        ]
        if wrong:
            broken.setdefault(variant, []).extend({**w, "rule": "a key in the table was told absent"} for w in wrong)
    for variant, rule in judged:
        rs = by_variant.get(variant, [])
        absent_db = [r for r in rs if r["value"]["key"] not in present and r["value"]["from"] == "db"]
        if rule == "nulls":
            found = [{**f, "rule": "a cached null was alive"} for f in _unanswered_nulls(absent_db, p["null_ttl_ms"])]
        else:
            found = [
                {"key": r["value"]["key"], "client": r["process"], "rule": "the Bloom filter rules the key out"}
                for r in absent_db
                if r["value"]["key"] not in bloom
            ]
        if found:
            broken.setdefault(variant, []).extend(found)
    if any(measured.get(v, {}).get("reads", 0) == 0 for v, _ in judged):
        return Check(None, {"summary": "a variant made no read", "variants": measured})
    told = "; ".join(
        f"{v}: {m['absent_db_reads']} of {m['absent_reads']} absent reads queried" for v, m in measured.items()
    )
    if broken:
        first_variant, found = next(iter(broken.items()))
        summary = (
            f"{sum(len(f) for f in broken.values())} reads beyond their bound, e.g. in {first_variant} "
            f"{found[0]['client']} read {found[0]['key']}: {found[0]['rule']} — {told}"
        )
    else:
        summary = f"every absent read within its bound — {told}"
    evidence = {
        "summary": summary,
        "judged": [list(j) for j in judged],
        "variants": measured,
        "beyond": {v: f[:SHOWN] for v, f in broken.items()},
    }
    return Check(not broken, evidence)


def bloom_fp_rate(ctx, result):
    """The Bloom filter, rebuilt from the table, answers `probes` keys that are not in it with a
    false-positive rate within DEVIATIONS standard deviations of the formula's (1 - e^(-kn/m))^k for
    the keys it was sized for."""
    if not result:
        return Check(None, NOT_REACHED)
    p = ctx.params
    present = table_keys(ctx, result)
    bloom = bloom_for(sorted(present), p["keys"], p["fp_rate"])
    k, m = bloom_hashes(p["fp_rate"]), bloom.size_in_bits
    probes = [name for name in (f"probe{i:06d}" for i in range(1, p["probes"] + 1)) if name not in present]
    if not probes:
        return Check(None, {"summary": "every probe key is in the table: nothing to measure the filter with"})
    false_positives = sum(name in bloom for name in probes)
    measured = false_positives / len(probes)
    designed = expected_fp_rate(k, p["keys"], m)
    actual = expected_fp_rate(k, len(present), m)
    bound = designed + DEVIATIONS * fp_rate_deviation(k, p["keys"], m, len(probes))
    summary = (
        f"{false_positives} of {len(probes)} absent keys passed the filter: {measured:.4f} "
        f"{'within' if measured <= bound else 'above'} the bound {bound:.4f} "
        f"(formula {designed:.4f} for {p['keys']} keys, {actual:.4f} for the {len(present)} in the table; "
        f"m = {m} bits, k = {k})"
    )
    evidence = {
        "summary": summary,
        "measured": round(measured, 5),
        "formula": round(designed, 5),
        "formula_for_table": round(actual, 5),
        "bound": round(bound, 5),
        "keys_sized_for": p["keys"],
        "keys_in_table": len(present),
        "bits": m,
        "hashes": k,
        "probes": len(probes),
    }
    return Check(measured <= bound, evidence)


# Avalanche ------------------------------------------------------------------------------------


def avalanche_windows(ctx, variant: str, window: int) -> list[dict]:
    """The variant's key reads in windows of `window` consecutive reads (the history's order, not
    the clock), each with how many of them went to the database."""
    rs = [r for r in reads(ctx) if r["value"].get("variant") == variant]
    rs.sort(key=lambda r: r["index"])
    keyed = [(r, k) for r in rs for k in r["value"]["keys"]]
    out = []
    for start in range(0, len(keyed) - window + 1, max(1, window // 2)):
        chunk = keyed[start : start + window]
        db = sum(k in chunk_r["value"]["db"] for chunk_r, k in chunk)
        out.append({"from_s": round(chunk[0][0]["began"] / 1000.0, 3), "reads": len(chunk), "db_reads": db})
    return out


def avalanche_peak(ctx, result, variant: str = "jittered"):
    """In `variant`, no window of reads sent more than `peak_share` of them to the database."""
    if not result:
        return Check(None, NOT_REACHED)
    p = ctx.params
    window = p["clients"] * min(p["batch"], p["keys"])  # one tick's reads
    peaks = {}
    for v in result.get("variants", {}):
        windows = avalanche_windows(ctx, v, window)
        worst = max(windows, key=lambda w: w["db_reads"], default=None)
        peaks[v] = {
            "windows": len(windows),
            "peak": worst,
            "peak_share": round(worst["db_reads"] / window, 3) if worst else None,
        }
    judged = peaks.get(variant)
    if not judged or judged["peak"] is None:
        return Check(None, {"summary": f"{variant} made too few reads to judge", "variants": peaks})
    held = judged["peak_share"] <= p["peak_share"]
    told = "; ".join(f"{v}: peak {s['peak']['db_reads']} of {window}" for v, s in peaks.items() if s["peak"])
    summary = (
        f"{variant} peaked at {judged['peak']['db_reads']} DB reads in {window} reads "
        f"({'within' if held else 'above'} the bound of {p['peak_share']:.0%}) — {told}"
    )
    return Check(held, {"summary": summary, "window": window, "bound": p["peak_share"], "variants": peaks})
