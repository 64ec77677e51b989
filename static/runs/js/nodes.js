// The node diagram: one box per actor in columns by role (clients left, coordinators in the middle,
// servers right), coloured by its state, a line between every pair that exchanged messages or
// commands, and a dot that carries each message across. A line that would cross another node's box
// bends around it, so no box hides a line or its label.

import { NODE_STATES, truncate } from "./fold.js";
import { actorColumns, boxEdge, easeInOut, roleColumn, svg } from "./svg.js";

const WIDTH = 760;
const BOX_W = 206;
const BOX_H = 78;
const ROW_H = 100;
const MARGIN_Y = 28;
const NOTE_CHARS = 27; // what fits on one line of a box in the note's monospace font
const CLEARANCE = 8; // how far a line keeps from a box it passes

/** Splits `text` into at most two lines of `n` characters, at spaces where it can. */
export function twoLines(text, n = NOTE_CHARS) {
  const s = String(text ?? "");
  if (s.length <= n) return [s];
  let cut = s.lastIndexOf(" ", n);
  if (cut < n / 2) cut = n;
  const first = s.slice(0, cut);
  return [first, truncate(s.slice(cut).trimStart(), n)];
}

/** A quadratic curve from (x1, y1) to (x2, y2) through control point (cx, cy). */
function curve(x1, y1, cx, cy, x2, y2) {
  return {
    x1, y1, cx, cy, x2, y2,
    at(t) {
      const u = 1 - t;
      return [u * u * x1 + 2 * u * t * cx + t * t * x2, u * u * y1 + 2 * u * t * cy + t * t * y2];
    },
    d: `M ${x1} ${y1} Q ${cx} ${cy} ${x2} ${y2}`,
  };
}

export class NodeDiagram {
  constructor(root, caption) {
    this.root = root;
    this.caption = caption;
    this.rev = -1;
    this.positions = {};
    this.animation = null;
    root.setAttribute("viewBox", `0 0 ${WIDTH} 200`);
    const defs = svg("defs");
    for (const [id, cls] of [["nodes-arrow", "arrowhead"], ["nodes-arrow-reply", "arrowhead is-reply"]]) {
      const marker = svg("marker", {
        id, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 12, markerHeight: 12, markerUnits: "userSpaceOnUse", orient: "auto",
      });
      marker.append(svg("path", { d: "M 0 0 L 10 5 L 0 10 z", class: cls }));
      defs.append(marker);
    }
    this.links = svg("g", { class: "links" });
    this.nodes = svg("g", { class: "nodes" });
    this.dots = svg("g", { class: "dots" });
    this.empty = svg("text", { x: WIDTH / 2, y: 100, class: "empty-note", "text-anchor": "middle" }, "No nodes yet.");
    root.append(defs, this.links, this.nodes, this.dots, this.empty);
  }

  /** The path of a line from node a to node b: straight, or bent around the boxes in its way. */
  route(a, b) {
    const pa = this.positions[a];
    const pb = this.positions[b];
    const [x1, y1] = boxEdge(pa.x, pa.y, BOX_W / 2, BOX_H / 2, pb.x, pb.y);
    const [x2, y2] = boxEdge(pb.x, pb.y, BOX_W / 2, BOX_H / 2, pa.x, pa.y);
    const others = Object.entries(this.positions).filter(([name]) => name !== a && name !== b).map(([, p]) => p);
    const blocked = (path) => {
      for (let i = 1; i < 24; i++) {
        const [x, y] = path.at(i / 24);
        if (x < 0 || x > WIDTH || y < 0 || y > this.height) return true;
        if (others.some((p) => Math.abs(x - p.x) < BOX_W / 2 + CLEARANCE && Math.abs(y - p.y) < BOX_H / 2 + CLEARANCE)) return true;
      }
      return false;
    };
    const mx = (x1 + x2) / 2;
    const my = (y1 + y2) / 2;
    const straight = curve(x1, y1, mx, my, x2, y2);
    if (!blocked(straight)) return straight;
    // Bend it sideways, a little more each try, and take the first curve that clears every box.
    const len = Math.hypot(x2 - x1, y2 - y1) || 1;
    const [nx, ny] = [-(y2 - y1) / len, (x2 - x1) / len];
    for (const k of [80, -80, 160, -160, 240, -240, 320, -320, 420, -420]) {
      // Leaving from the side of the box it bends toward keeps the curve off its own box too.
      const cx = mx + nx * k;
      const cy = my + ny * k;
      const [sx, sy] = boxEdge(pa.x, pa.y, BOX_W / 2, BOX_H / 2, cx, cy);
      const [ex, ey] = boxEdge(pb.x, pb.y, BOX_W / 2, BOX_H / 2, cx, cy);
      const bent = curve(sx, sy, cx, cy, ex, ey);
      if (!blocked(bent)) return bent;
    }
    return straight;
  }

  layout(state) {
    const columns = [[], [], []];
    for (const name of actorColumns(state)) columns[roleColumn(state, name)].push(name);
    const used = columns.filter((c) => c.length);
    const xs = { 1: [0.5], 2: [0.17, 0.83], 3: [0.14, 0.5, 0.86] }[used.length] || [];
    const rows = Math.max(1, ...used.map((c) => c.length));
    const height = rows * ROW_H + MARGIN_Y * 2 - (ROW_H - BOX_H);
    const positions = {};
    used.forEach((column, i) => {
      const top = (height - (column.length * ROW_H - (ROW_H - BOX_H))) / 2;
      column.forEach((name, j) => {
        positions[name] = { x: xs[i] * WIDTH, y: top + j * ROW_H + BOX_H / 2 };
      });
    });
    return { positions, height: Math.max(height, 160) };
  }

  sync(state, { rebuild = false } = {}) {
    this.renderCaption(state);
    if (!rebuild && state.rev.nodes === this.rev && this.ended === (state.end != null)) return;
    this.rev = state.rev.nodes;
    this.ended = state.end != null;
    const { positions, height } = this.layout(state);
    this.positions = positions;
    this.height = height;
    this.root.setAttribute("viewBox", `0 0 ${WIDTH} ${height}`);
    this.empty.style.display = state.nodeOrder.length ? "none" : "";
    // A finished run with no node to draw steps the panel aside rather than leave it blank.
    const section = this.root.closest("section");
    if (section) section.hidden = state.end != null && state.nodeOrder.length === 0;
    this.renderLinks(state);
    this.renderNodes(state);
  }

  renderCaption(state) {
    if (!this.caption) return;
    const parts = [];
    if (state.phase) parts.push(state.phase);
    if (state.last) parts.push(`#${state.last.seq} ${state.last.kind}: ${truncate(state.last.label || "", 90)}`);
    this.caption.textContent = parts.join(" · ") || "Waiting for the first step…";
  }

  renderLinks(state) {
    this.links.replaceChildren();
    this.routes = {};
    for (const [a, b] of state.links) {
      if (!this.positions[a] || !this.positions[b]) continue;
      const path = this.route(a, b);
      this.routes[`${a}\u0000${b}`] = path;
      this.links.append(svg("path", { d: path.d, class: "link", "data-link": `${a} ${b}` }));
    }
    // The latest message (or command drawn as one) stays drawn on its link, so a paused or stepped
    // run shows what just happened.
    const msg = state.lastMsg;
    const path = msg && this.path(msg.from, msg.to);
    if (path) {
      const group = svg("g", { class: `last-msg${msg.replyTo != null ? " is-reply" : ""}` });
      group.append(svg("path", { d: path.d, class: "last-msg__line", "marker-end": `url(#nodes-arrow${msg.replyTo != null ? "-reply" : ""})` }));
      const [lx, ly] = path.at(0.5);
      const label = svg("text", { x: lx, y: ly - 8, "text-anchor": "middle", class: "last-msg__label halo" },
        truncate(msg.label, 36));
      label.append(svg("title", {}, `#${msg.seq} ${msg.from} → ${msg.to}: ${msg.label}`));
      group.append(label);
      this.links.append(group);
    }
  }

  /** The drawn path from `from` to `to` (links are stored one way; the other way is reversed). */
  path(from, to) {
    if (!this.positions[from] || !this.positions[to] || from === to) return null;
    const forward = this.routes?.[`${from}\u0000${to}`];
    if (forward) return forward;
    const back = this.routes?.[`${to}\u0000${from}`];
    if (back) return curve(back.x2, back.y2, back.cx, back.cy, back.x1, back.y1);
    return this.route(from, to);
  }

  renderNodes(state) {
    this.nodes.replaceChildren();
    for (const name of state.nodeOrder) {
      const node = state.nodes[name];
      const p = this.positions[name];
      if (!p) continue;
      const known = NODE_STATES.includes(node.state) ? node.state : "other";
      const g = svg("g", {
        class: `node node--${known}`, transform: `translate(${p.x - BOX_W / 2}, ${p.y - BOX_H / 2})`,
        "data-node": name, "data-state": node.state, "data-hl": `node:${name}`,
      });
      g.append(svg("rect", { width: BOX_W, height: BOX_H, rx: 10, class: "node__box" }));
      g.append(svg("text", { x: 12, y: 21, class: "node__name" }, truncate(name, 20)));
      g.append(svg("circle", { cx: BOX_W - 16, cy: 16, r: 6, class: "node__lamp" }));
      // A node that reported no state or role yet is described by where it stands.
      const role = node.role || ["client", "", "server"][roleColumn(state, name)];
      const described = [node.state === "unknown" ? "" : node.state, role].filter(Boolean).join(" · ");
      g.append(svg("text", { x: 12, y: 39, class: "node__state" }, truncate(described, 30)));
      const note = node.fault ? `fault: ${node.fault}` : node.note;
      twoLines(note).forEach((line, i) => {
        g.append(svg("text", { x: 12, y: 55 + i * 14, class: `node__note${node.fault ? " is-fault" : ""}` }, line));
      });
      g.append(svg("title", {}, `${name}: ${node.state}${node.note ? ` — ${node.note}` : ""}`));
      this.nodes.append(g);
    }
  }

  /**
   * Carries a dot along `trip` (timeline rows, one after another: a message, or a command's request
   * and its reply) over `duration` ms, pulsing each receiver as the dot reaches it.
   */
  animate(trip, duration) {
    this.stopAnimations();
    const legs = [].concat(trip).map((msg) => ({ msg, path: this.path(msg.from, msg.to) })).filter((leg) => leg.path);
    if (!legs.length || duration < 60) return;
    const group = svg("g", { class: "dot" });
    const { x1, y1 } = legs[0].path;
    const dot = svg("circle", { r: 8, cx: x1, cy: y1, class: "dot__ball" });
    const label = svg("text", { x: x1, y: y1 - 14, "text-anchor": "middle", class: "dot__label halo" });
    group.append(dot, label);
    this.dots.append(group);
    this.root.classList.add("is-animating");
    let current = -1;
    const started = performance.now();
    const frame = (now) => {
      // A frame's time may be a little before `started` (it is when the frame began).
      const p = Math.max(0, Math.min(1, (now - started) / duration));
      const index = Math.min(legs.length - 1, Math.floor(p * legs.length));
      if (index !== current) {
        if (current >= 0) this.pulse(legs[current].msg.to);
        current = index;
        const { msg } = legs[index];
        group.setAttribute("class", `dot${msg.replyTo != null ? " is-reply" : ""}`);
        group.dataset.seq = String(msg.seq);
        label.textContent = truncate(msg.label, 36);
      }
      const [x, y] = legs[index].path.at(easeInOut(p * legs.length - index));
      dot.setAttribute("cx", x);
      dot.setAttribute("cy", y);
      label.setAttribute("x", x);
      label.setAttribute("y", y - 14);
      if (p < 1) {
        this.animation.raf = requestAnimationFrame(frame);
      } else {
        this.stopAnimations();
        this.pulse(legs[index].msg.to);
      }
    };
    this.animation = { group, raf: requestAnimationFrame(frame) };
  }

  pulse(name) {
    const node = this.nodes.querySelector(`[data-node="${CSS.escape(name)}"]`);
    if (!node) return;
    node.classList.remove("is-pulsing");
    void node.getBoundingClientRect();
    node.classList.add("is-pulsing");
  }

  stopAnimations() {
    if (this.animation) {
      cancelAnimationFrame(this.animation.raf);
      this.animation.group.remove();
      this.animation = null;
    }
    this.root.classList.remove("is-animating");
  }
}
