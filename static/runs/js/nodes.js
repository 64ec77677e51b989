// The node diagram: one box per actor (clients left, servers right), coloured by its state, a line
// between every pair that exchanged messages, and a dot that carries each message across.

import { NODE_STATES, truncate } from "./fold.js";
import { boxEdge, easeInOut, roleColumn, svg } from "./svg.js";

const WIDTH = 760;
const BOX_W = 206;
const BOX_H = 64;
const ROW_H = 92;
const MARGIN_Y = 28;

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

  layout(state) {
    const columns = [[], [], []];
    for (const name of state.nodeOrder) columns[roleColumn(state, name)].push(name);
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
    if (!rebuild && state.rev.nodes === this.rev) return;
    this.rev = state.rev.nodes;
    const { positions, height } = this.layout(state);
    this.positions = positions;
    this.root.setAttribute("viewBox", `0 0 ${WIDTH} ${height}`);
    this.empty.style.display = state.nodeOrder.length ? "none" : "";
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
    for (const [a, b] of state.links) {
      const pa = this.positions[a];
      const pb = this.positions[b];
      if (!pa || !pb) continue;
      const [x1, y1] = boxEdge(pa.x, pa.y, BOX_W / 2, BOX_H / 2, pb.x, pb.y);
      const [x2, y2] = boxEdge(pb.x, pb.y, BOX_W / 2, BOX_H / 2, pa.x, pa.y);
      this.links.append(svg("line", { x1, y1, x2, y2, class: "link" }));
    }
    // The latest message stays drawn on its link, so a paused or stepped run shows what just happened.
    const msg = state.lastMsg;
    const from = msg && this.positions[msg.from];
    const to = msg && this.positions[msg.to];
    if (from && to) {
      const [x1, y1] = boxEdge(from.x, from.y, BOX_W / 2, BOX_H / 2, to.x, to.y);
      const [x2, y2] = boxEdge(to.x, to.y, BOX_W / 2, BOX_H / 2, from.x, from.y);
      const group = svg("g", { class: `last-msg${msg.replyTo != null ? " is-reply" : ""}` });
      group.append(svg("line", { x1, y1, x2, y2, class: "last-msg__line", "marker-end": `url(#nodes-arrow${msg.replyTo != null ? "-reply" : ""})` }));
      const label = svg("text", { x: (x1 + x2) / 2, y: (y1 + y2) / 2 - 8, "text-anchor": "middle", class: "last-msg__label halo" },
        truncate(msg.label, 36));
      label.append(svg("title", {}, `#${msg.seq} ${msg.from} → ${msg.to}: ${msg.label}`));
      group.append(label);
      this.links.append(group);
    }
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
        "data-node": name, "data-state": node.state,
      });
      g.append(svg("rect", { width: BOX_W, height: BOX_H, rx: 10, class: "node__box" }));
      g.append(svg("text", { x: 12, y: 21, class: "node__name" }, truncate(name, 20)));
      g.append(svg("circle", { cx: BOX_W - 16, cy: 16, r: 6, class: "node__lamp" }));
      g.append(svg("text", { x: 12, y: 39, class: "node__state" }, truncate(node.state + (node.role ? ` · ${node.role}` : ""), 26)));
      const note = node.fault ? `fault: ${node.fault}` : node.note;
      g.append(svg("text", { x: 12, y: 55, class: `node__note${node.fault ? " is-fault" : ""}` }, truncate(note, 26)));
      g.append(svg("title", {}, `${name}: ${node.state}${node.note ? ` — ${node.note}` : ""}`));
      this.nodes.append(g);
    }
  }

  /** Carries `msg` (a timeline row) from its sender to its receiver over `duration` ms. */
  animate(msg, duration) {
    this.stopAnimations();
    const from = this.positions[msg.from];
    const to = this.positions[msg.to];
    if (!from || !to || duration < 60) return;
    const [x1, y1] = boxEdge(from.x, from.y, BOX_W / 2, BOX_H / 2, to.x, to.y);
    const [x2, y2] = boxEdge(to.x, to.y, BOX_W / 2, BOX_H / 2, from.x, from.y);
    const group = svg("g", { class: `dot${msg.replyTo != null ? " is-reply" : ""}` });
    const dot = svg("circle", { r: 8, cx: x1, cy: y1, class: "dot__ball" });
    const label = svg("text", { x: x1, y: y1 - 14, "text-anchor": "middle", class: "dot__label halo" }, truncate(msg.label, 36));
    group.append(dot, label);
    this.dots.append(group);
    this.root.classList.add("is-animating");
    const started = performance.now();
    const frame = (now) => {
      const p = Math.min(1, (now - started) / duration);
      const e = easeInOut(p);
      const x = x1 + (x2 - x1) * e;
      const y = y1 + (y2 - y1) * e;
      dot.setAttribute("cx", x);
      dot.setAttribute("cy", y);
      label.setAttribute("x", x);
      label.setAttribute("y", y - 14);
      if (p < 1) {
        this.animation.raf = requestAnimationFrame(frame);
      } else {
        this.stopAnimations();
        this.pulse(msg.to);
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
