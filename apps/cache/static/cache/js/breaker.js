// The circuit breakers in front of the cache nodes (each node's state and how it got there) and the
// clients' near caches (invalidations received, a dropped invalidation connection, a flush).

import { formatT } from "../../runs/js/fold.js";
import { html } from "../../runs/js/svg.js";

const STATE_TEXT = { closed: "closed: the cache is used", open: "open: reads go to the table", "half-open": "half-open: one probe" };

export function renderBreakers(slice) {
  const out = [];
  for (const b of Object.values(slice.breakers)) {
    const box = html("div", { className: "cache-breaker", dataset: { node: b.node, state: b.state } });
    const head = html("p", {});
    head.append(html("b", {}, b.node), " ", html("span", { className: `cache-breaker__state cache-breaker__state--${b.state}`, dataset: { testid: "cache-breaker-state" } }, STATE_TEXT[b.state] || b.state));
    box.append(head);
    const list = html("ol", { className: "cache-breaker__history small" });
    for (const h of b.history) list.append(html("li", {}, `${formatT(h.t)}  ${h.from} → ${h.to}: ${h.reason}`));
    box.append(list);
    out.push(box);
  }
  return out;
}

const NEAR_TEXT = { invalidated: "invalidated", dropped: "invalidation connection dropped", flushed: "flushed", reconnected: "reconnected" };

export function renderNear(slice) {
  const table = html("table", { className: "cache-near", dataset: { testid: "cache-near" } });
  const ops = Object.keys(NEAR_TEXT).filter((op) => Object.values(slice.near.counts).some((c) => c[op]));
  const head = html("tr", {});
  head.append(html("th", {}, "client"), ...ops.map((op) => html("th", {}, NEAR_TEXT[op])));
  table.append(head);
  for (const [client, counts] of Object.entries(slice.near.counts).sort()) {
    const tr = html("tr", { dataset: { client } });
    tr.append(html("td", {}, client), ...ops.map((op) => html("td", { className: op === "dropped" && counts[op] ? "is-bad" : "" }, String(counts[op] || 0))));
    table.append(tr);
  }
  const latest = html("ol", { className: "cache-near__latest small" });
  for (const n of slice.near.latest.slice(-5)) latest.append(html("li", {}, `${formatT(n.t)}  ${n.client}: ${NEAR_TEXT[n.op] || n.op}${n.key ? ` ${n.key}` : ""}`));
  return [table, latest];
}
