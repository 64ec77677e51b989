// Placement over the cache nodes, one strip per scheme: modulo as a column of dots per node; the
// ketama ring as a circle with every node's points and every key at its hash angle; Redis
// Cluster's 16384 slots as ranges per node with each key at its slot. The keys that moved at the
// latest join or leave are lit, so modulo's reshuffle and the ring's small move are seen side by
// side. All of it comes from the folded events (the router's layout, its moves and each change's
// ring points and slot map), so a paused or scrubbed view draws what was true at that moment.

import { html, svg } from "../../runs/js/svg.js";

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
      const what = s.change ? `${s.change.node} ${s.change.kind === "add" ? "joined" : "left"}: ` : "the latest change: ";
      head.append(html("span", { className: "cache-shard__moved", dataset: { testid: "cache-shard-moved" } }, `${what}${s.nodes.length} nodes, ${s.moved} keys moved${of}`));
    } else {
      head.append(html("span", { className: "muted" }, `${total} keys seen over ${nodes.length} nodes`));
    }
    strip.append(head);
    if (slice.ring && scheme === "ketama") {
      strip.append(renderRing(slice, s));
      out.push(strip);
      continue;
    }
    if (slice.ring && scheme === "slots") {
      strip.append(renderSlotMap(slice, s));
      out.push(strip);
      continue;
    }
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

// One colour per node, by its number: a node keeps its colour on the ring, the slot map and the legend.
const NODE_COLOURS = ["#0969da", "#1a7f37", "#8250df", "#bf3989", "#9a6700", "#57606a"];
export function nodeColour(node) {
  const n = parseInt(String(node).replace(/\D+/g, ""), 10);
  return NODE_COLOURS[(Number.isFinite(n) ? n - 1 : 0) % NODE_COLOURS.length];
}

const RING = 2 ** 32;
const SLOTS = 16384;

function isMoved(s, key) {
  return s.changes > 0 && s.movedKeys[key] === s.changes;
}

function nodeLegend(s, counts) {
  const legend = html("p", { className: "legend small cache-ring__legend" });
  for (const node of [...s.nodes].sort()) {
    const item = html("span", { className: "legend__item", dataset: { node } });
    item.append(html("i", { className: "cache-swatch", style: `background:${nodeColour(node)}` }), `${node} · ${counts[node] || 0} keys`);
    legend.append(item);
  }
  return legend;
}

function renderRing(slice, s) {
  const size = 300;
  const c = size / 2;
  const r = 118;
  const box = html("div", { className: "cache-ring", dataset: { testid: "cache-ring" } });
  const pic = svg("svg", { viewBox: `0 0 ${size} ${size}`, width: size, height: size, role: "img", "aria-label": "ketama ring" });
  pic.append(svg("circle", { cx: c, cy: c, r, fill: "none", stroke: "#d0d7de", "stroke-width": 2 }));
  const at = (pos, radius) => {
    const a = (pos / RING) * 2 * Math.PI - Math.PI / 2;
    return [c + radius * Math.cos(a), c + radius * Math.sin(a)];
  };
  // Each node's points: a tick outside the circle where its arcs begin.
  for (const [pos, node] of slice.ring.points) {
    const [x1, y1] = at(pos, r + 3);
    const [x2, y2] = at(pos, r + 12);
    pic.append(svg("line", { x1, y1, x2, y2, stroke: nodeColour(node), "stroke-width": 1.2, class: "cache-ring__point", "data-node": node }));
  }
  const counts = {};
  const moved = [];
  for (const [key, [pos]] of Object.entries(slice.ring.keys)) {
    const node = s.placement[key];
    counts[node] = (counts[node] || 0) + 1;
    if (isMoved(s, key)) {
      moved.push([key, pos, node]);
      continue;
    }
    const [x, y] = at(pos, r - 8);
    const dot = svg("circle", { cx: x, cy: y, r: 2.6, fill: nodeColour(node), class: "cache-ring__key" });
    dot.append(svg("title", {}, `${key} → ${node}`));
    pic.append(dot);
  }
  // Moved keys last, so they are drawn on top, larger and ringed.
  for (const [key, pos, node] of moved) {
    const [x, y] = at(pos, r - 8);
    const dot = svg("circle", { cx: x, cy: y, r: 4.5, fill: nodeColour(node), stroke: "#bc4c00", "stroke-width": 2, class: "cache-ring__key is-moved" });
    dot.append(svg("title", {}, `${key} moved to ${node}`));
    pic.append(dot);
  }
  pic.append(svg("text", { x: c, y: c - 6, "text-anchor": "middle", class: "cache-ring__label" }, `${s.nodes.length} nodes, ${slice.ring.points.length} points`));
  pic.append(svg("text", { x: c, y: c + 12, "text-anchor": "middle", class: "cache-ring__label" }, moved.length ? `${moved.length} keys moved (ringed)` : "0 on top, clockwise"));
  box.append(pic);
  const side = html("div", { className: "cache-ring__side" });
  side.append(nodeLegend(s, counts));
  side.append(html("p", { className: "small muted" }, "A tick is one of a node's points; a key (dot, at the angle of its hash) is served by the first point clockwise from it. A node that joins takes the arcs just before its points; one that leaves hands its arcs to the next points."));
  box.append(side);
  return box;
}

function renderSlotMap(slice, s) {
  const width = 640;
  const box = html("div", { className: "cache-slots", dataset: { testid: "cache-slot-map" } });
  const pic = svg("svg", { viewBox: `0 0 ${width} 58`, width: "100%", height: 58, role: "img", "aria-label": "hash slot map", preserveAspectRatio: "none" });
  const x = (slot) => (slot / SLOTS) * width;
  for (const [first, last, node] of slice.ring.slots) {
    const rect = svg("rect", { x: x(first), y: 18, width: Math.max(x(last + 1) - x(first), 0.5), height: 22, fill: nodeColour(node), opacity: 0.85, "data-node": node });
    rect.append(svg("title", {}, `slots ${first}–${last} on ${node}`));
    pic.append(rect);
  }
  const counts = {};
  for (const [key, [, slot]] of Object.entries(slice.ring.keys)) {
    const node = s.placement[key];
    counts[node] = (counts[node] || 0) + 1;
    const moved = isMoved(s, key);
    const tick = svg("line", { x1: x(slot + 0.5), y1: moved ? 2 : 8, x2: x(slot + 0.5), y2: 17, stroke: moved ? "#bc4c00" : "#57606a", "stroke-width": moved ? 2 : 1 });
    tick.append(svg("title", {}, `${key}: slot ${slot} on ${node}`));
    pic.append(tick);
  }
  for (const mark of [0, 4096, 8192, 12288, 16383]) pic.append(svg("text", { x: Math.min(x(mark), width - 30), y: 54, class: "cache-ring__label" }, String(mark)));
  box.append(pic);
  const ranges = html("ul", { className: "cache-slots__ranges small" });
  for (const [first, last, node] of slice.ring.slots) {
    const li = html("li", { dataset: { node } });
    li.append(html("i", { className: "cache-swatch", style: `background:${nodeColour(node)}` }), `${first}–${last} ${node}`);
    ranges.append(li);
  }
  box.append(ranges);
  box.append(nodeLegend(s, counts));
  box.append(html("p", { className: "small muted" }, "A key's slot is CRC16 of the key mod 16384 (a tick above the bar; moved keys raised and orange). Slots move between nodes in ranges, not keys one by one: a node that joins takes an equal share from each node."));
  return box;
}
