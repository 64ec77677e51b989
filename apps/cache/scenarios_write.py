"""Writes behind and through the cache, and a cache node down behind a circuit breaker: scenarios
on a dedicated MariaDB and a dedicated Redis node that is SIGKILLed for real."""

from apps.runs.registry import Check, Invariant, Param, Scenario

from . import common
from .checkers import NOT_REACHED, SHOWN
from .engine.breaker import cache_node_down
from .engine.writeback import write_behind, write_through

CLUSTER = {"mariadb": 1, "redis": 1}
NODE = "redis1"


def _write_params(**extra):
    return common.params(keys=20, read_ratio=0.5, steps=8, **extra)


def _write_duration(params: dict) -> float:
    # One step per round, two more for the kill and the restart, the nodes' start and the read-back.
    return params["steps"] / 2 + 2.5


def no_client_error(ctx, result):
    """Every operation a client made was answered: none failed, none was left unknown."""
    if not result:
        return Check(None, NOT_REACHED)
    done = ctx.history.completed()
    errors = [
        {"client": op["process"], "f": op["f"], "key": (op.get("value") or {}).get("key"), "error": op.get("error")}
        for op in done
        if op["type"] != "ok"
    ]
    reads = sum(1 for op in done if op["f"] == "read")
    summary = (
        f"all {len(done)} operations answered ({reads} reads)"
        if not errors
        else f"{len(errors)} of {len(done)} operations failed, e.g. {errors[0]['client']} {errors[0]['f']} "
        f"{errors[0]['key']}: {errors[0]['error']}"
    )
    return Check(not errors, {"summary": summary, "operations": len(done), "errors": errors[:SHOWN]})


NO_CLIENT_ERROR = Invariant(
    "no_client_error", "every read and write a client made was answered, whatever the cache node did", no_client_error
)

NODE_FAULTS = common.node_faults(NODE)


def _down_cross_check(clean: dict) -> dict:
    if clean["restart_at"] <= clean["kill_at"]:
        return {"restart_at": ["must be after kill_at"]}
    if clean["restart_at"] >= clean["steps"]:
        return {"restart_at": ["must be before the last step, so the cache can warm again"]}
    return {}


SCENARIOS = (
    Scenario(
        name="write-behind-loss",
        title="Write-behind: acknowledged writes lost with the cache node",
        summary=(
            "A write sets the cache entry (version + 1) and marks the key dirty in one Lua script, "
            "and the client is told ok; a flusher writes the dirty keys to MariaDB later, in "
            "batches. The Redis node is SIGKILLed before the next flush: every write acknowledged "
            "since the last flush existed only in its memory, and is gone. The checker finds each "
            "acknowledged version missing from the table, and the readers served the older rows. "
            "The buttons kill, restart, pause and resume redis1 whenever you like: while it is out "
            "of reach the clients read from the table, and a write is refused (the client is told: "
            "write-behind has nowhere else to put it); a kill loses whatever was not flushed yet."
        ),
        engine=write_behind,
        params=_write_params(
            flush_every=Param("flush_every", "int", 3, "the flusher runs after every this many steps", min=1, max=1000),
            batch=Param("batch", "int", 10, "dirty keys the flusher writes per transaction", min=1, max=1000),
        ),
        invariants=common.INVARIANTS,
        expected="fail",
        faults=NODE_FAULTS,
        cluster=CLUSTER,
        duration_s=_write_duration,
    ),
    Scenario(
        name="write-through",
        title="Write-through: the same kill costs only a cold cache",
        summary=(
            "The write-behind schedule with write-through: a write commits the row, then sets the "
            "entry (never over a newer one), and only then is acknowledged. The same SIGKILL of the "
            "Redis node loses no acknowledged write: the table has them all, and the read-back "
            "after the restart finds every one. Press kill, pause or restart on redis1 at any "
            "time: reads go to the table while the node is out of reach, writes are still "
            "acknowledged (the row has them), and the entries they could not set are deleted before "
            "the cache is used again, so no acknowledged write is lost and no read is stale."
        ),
        engine=write_through,
        params=_write_params(),
        invariants=common.INVARIANTS,
        faults=NODE_FAULTS,
        cluster=CLUSTER,
        duration_s=_write_duration,
    ),
    Scenario(
        name="cache-node-down",
        title="A cache node down, behind a circuit breaker",
        summary=(
            "Clients read cache-aside through a circuit breaker in front of the Redis node. The node "
            "is SIGKILLed mid-run: after a few failures the breaker opens and every read goes to "
            "MariaDB, with no error for any client; after a cool-down one probe goes through "
            "(half-open), and once the node is back the breaker closes and the cold cache warms "
            "again, as the hit ratio shows. Writes made while it was open have their entries "
            "deleted by the probe before the cache is trusted again. Try the kill, pause and resume "
            "buttons on redis1; with breaker=false the outage reaches the clients as errors."
        ),
        engine=cache_node_down,
        params=common.params(
            keys=30,
            steps=16,
            kill_at=Param("kill_at", "int", 4, "redis1 is SIGKILLed after this step", min=1, max=1000),
            restart_at=Param("restart_at", "int", 9, "redis1 is restarted after this step", min=2, max=1000),
            failures=Param("failures", "int", 3, "failures in a row that open the breaker", min=1, max=100),
            cool_down_ms=Param(
                "cool_down_ms", "int", 300, "how long the breaker stays open before a probe", min=1, max=60_000
            ),
            breaker=Param("breaker", "bool", True, "false: clients call Redis with no breaker and no fallback"),
        ),
        invariants=(NO_CLIENT_ERROR, *common.TTL_BOUNDED),
        faults=NODE_FAULTS,
        cluster=CLUSTER,
        cross_check=_down_cross_check,
        # One step per round, then the final wait of one TTL, the nodes' start and the last reads.
        duration_s=lambda p: p["steps"] / 2 + p["ttl_ms"] / 1000 + 1,
    ),
)
