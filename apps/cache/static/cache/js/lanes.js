// The clients as lanes: each client's latest operations left to right, a cell per operation (a hit
// served by the cache, a miss that went to the table, a write, a read that waited for someone
// else's lease), a stale read outlined in red; and the client's totals beside its lane.

import { formatT } from "../../runs/js/fold.js";
import { html } from "../../runs/js/svg.js";

const KINDS = [
  ["hit", "hit (cache)"],
  ["near", "hit (near cache)"],
  ["miss", "miss (table read)"],
  ["early", "early recompute (table read before the TTL)"],
  ["bloom", "turned away by the Bloom filter"],
  ["write", "write"],
  ["wait", "waited for another client's fill (lease or lock)"],
  ["stale", "stale read"],
  ["error", "cache error"],
];

function opTitle(client, op) {
  const what = {
    hit: op.from === "null" ? `read ${op.key} from the cache: cached as absent` : `read ${op.key} v${op.version} from the cache`,
    near: `read ${op.key} v${op.version} from its near cache`,
    miss: op.version == null ? `read ${op.key} from the table: no such row` : `read ${op.key} v${op.version} from the table`,
    early: `recomputed ${op.key} v${op.version} from the table before its TTL ran out`,
    bloom: `read ${op.key}: not in the Bloom filter, so neither cache nor table was asked`,
    error: `read ${op.key}: the cache failed`,
    write: `wrote ${op.key}${op.version != null ? ` v${op.version}` : ""}`,
    "write-failed": `write of ${op.key} failed or is unknown`,
  }[op.kind];
  const notes = [op.stale && "stale", op.waits && `after ${op.waits} wait${op.waits === 1 ? "" : "s"} for another client's fill`].filter(Boolean);
  return `${client} ${what}${notes.length ? ` (${notes.join(", ")})` : ""} at ${formatT(op.t)}`;
}

export function renderLanes(slice) {
  // Many clients (a herd) get thinner lanes, so all of them stay in sight.
  const compact = slice.clientOrder.length > 12 ? " is-compact" : "";
  const list = html("div", { className: `cache-lanes${compact}`, dataset: { testid: "cache-lanes" } });
  for (const name of slice.clientOrder) {
    const c = slice.clients[name];
    const lane = html("div", { className: "cache-lane", dataset: { client: name } });
    lane.append(html("span", { className: "cache-lane__name" }, name));
    const ops = html("span", { className: "cache-lane__ops" });
    if (c.dropped) ops.append(html("span", { className: "cache-lane__more", title: `${c.dropped} earlier operations` }, "…"));
    for (const op of c.ops) {
      const cls = ["cache-op", `cache-op--${op.kind}`];
      if (op.waits) cls.push("is-wait");
      if (op.stale) cls.push("is-stale");
      ops.append(html("span", { className: cls.join(" "), title: opTitle(name, op), dataset: { seq: op.seq } }));
    }
    lane.append(ops);
    const hitPct = c.reads ? Math.round((100 * c.hits) / c.reads) : null;
    const totals = [`${c.reads} read${c.reads === 1 ? "" : "s"}`];
    if (hitPct != null) totals.push(`${hitPct}% hits`);
    if (c.writes) totals.push(`${c.writes} write${c.writes === 1 ? "" : "s"}`);
    if (c.turnedAway) totals.push(`${c.turnedAway} turned away`);
    if (c.waits) totals.push(`${c.waits} waited`);
    const sum = html("span", { className: "cache-lane__sum" }, totals.join(" · "));
    if (c.stale) sum.append(html("span", { className: "cache-lane__stale" }, ` · ${c.stale} stale`));
    if (c.errors) sum.append(html("span", { className: "cache-lane__stale" }, ` · ${c.errors} errors`));
    lane.append(sum);
    list.append(lane);
  }
  const legend = html("p", { className: "legend small" });
  const seen = new Set(slice.clientOrder.flatMap((n) => slice.clients[n].ops.flatMap((op) => [op.kind, op.waits ? "wait" : null, op.stale ? "stale" : null])));
  for (const [kind, text] of KINDS) {
    if (!seen.has(kind) && !["hit", "miss"].includes(kind)) continue;
    const item = html("span", { className: "legend__item" });
    item.append(html("i", { className: `cache-op cache-op--${kind === "wait" ? "hit is-wait" : kind === "stale" ? "hit is-stale" : kind}` }), text);
    legend.append(item);
  }
  return [list, legend];
}
