// Placement over the cache nodes, one strip per scheme (modulo, the ketama ring, Redis Cluster's
// slots): each node a column of dots, one dot per key it serves, and the keys that moved at the
// latest join or leave lit, so modulo's reshuffle and the ring's small move are seen side by side.
// The dots are the keys the events placed (cached, or moved), so a node's column is what was seen
// on it, and the share moved comes from the router's own count.

import { html } from "../../runs/js/svg.js";

const DOTS = 120; // dots drawn per node at most; the rest are counted

export function renderShards(slice) {
  const out = [];
  for (const scheme of slice.shardOrder) {
    const s = slice.shards[scheme];
    const byNode = {};
    for (const [key, node] of Object.entries(s.placement)) (byNode[node] ||= []).push(key);
    const nodes = [...new Set([...s.nodes, ...Object.keys(byNode)])].sort();
    const strip = html("div", { className: "cache-shard", dataset: { scheme } });
    const head = html("div", { className: "cache-shard__head" });
    head.append(html("b", {}, scheme));
    const total = Object.keys(s.placement).length;
    if (s.moved != null) {
      const of = s.share ? ` of ${Math.round(s.moved / s.share)} (${Math.round(100 * s.share)}%)` : "";
      head.append(html("span", { className: "cache-shard__moved", dataset: { testid: "cache-shard-moved" } }, `the latest change to ${s.nodes.length} nodes moved ${s.moved} keys${of}`));
    } else {
      head.append(html("span", { className: "muted" }, `${total} keys seen over ${nodes.length} nodes`));
    }
    strip.append(head);
    const cols = html("div", { className: "cache-shard__cols" });
    for (const node of nodes) {
      const keys = (byNode[node] || []).sort();
      const active = s.nodes.includes(node);
      const col = html("div", { className: `cache-shard__node${active ? "" : " is-gone"}`, dataset: { node } });
      col.append(html("div", { className: "cache-shard__name" }, `${node} · ${keys.length}${active ? "" : " (left)"}`));
      const dots = html("div", { className: "cache-shard__dots" });
      for (const key of keys.slice(0, DOTS)) {
        const moved = s.movedKeys[key] === s.changes && s.changes > 0;
        dots.append(html("i", { className: `cache-dot${moved ? " is-moved" : ""}`, title: key }));
      }
      if (keys.length > DOTS) dots.append(html("span", { className: "small muted" }, `+${keys.length - DOTS}`));
      col.append(dots);
      cols.append(col);
    }
    strip.append(cols);
    if (s.moves.length) {
      const latest = s.moves.slice(-4).map((m) => `${m.key} ${m.from ?? "?"} → ${m.to}`);
      strip.append(html("p", { className: "small muted cache-shard__moves" }, `latest moves: ${latest.join(", ")}`));
    }
    out.push(strip);
  }
  const legend = html("p", { className: "legend small" });
  for (const [cls, text] of [["", "a key seen on its node (cached or moved there)"], [" is-moved", "moved at the latest join or leave"]]) {
    const item = html("span", { className: "legend__item" });
    item.append(html("i", { className: `cache-dot${cls}` }), text);
    legend.append(item);
  }
  out.push(legend);
  return out;
}
