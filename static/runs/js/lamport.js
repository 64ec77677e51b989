// The space-time (Lamport) diagram: one lifeline per actor, logical time downward, one row per
// message, phase or fault. A request and its reply (data.reply_to) meet on the server's lifeline
// halfway between them, so each round trip reads as one "<" shape. Real commands that no `msg`
// event tells (a locks run sends none) are drawn too: each a request to its node and the reply with
// its result (see fold.js). The lanes fit the panel's width while they can stay readable; past that
// the diagram scrolls sideways, its header with it.

import { formatT, truncate } from "./fold.js";
import { actorColumns, svg } from "./svg.js";

const GUTTER = 70;
const ROW_H = 30;
const TOP = 8;
const HEAD_H = 40;
const MIN_COL = 76;
const MAX_COL = 230;

export class LamportDiagram {
  constructor(scroller) {
    this.scroller = scroller;
    this.head = svg("svg", { class: "lamport__head", height: HEAD_H, role: "presentation" });
    const headBox = document.createElement("div");
    headBox.className = "lamport__sticky";
    headBox.append(this.head);
    this.body = svg("svg", { class: "lamport__body", role: "img", "aria-label": "space-time diagram" });
    const defs = svg("defs");
    for (const [id, cls] of [["lamport-arrow", "arrowhead"], ["lamport-arrow-reply", "arrowhead is-reply"]]) {
      const marker = svg("marker", { id, viewBox: "0 0 10 10", refX: 9.5, refY: 5, markerWidth: 9, markerHeight: 9, markerUnits: "userSpaceOnUse", orient: "auto" });
      marker.append(svg("path", { d: "M 0 0 L 10 5 L 0 10 z", class: cls }));
      defs.append(marker);
    }
    this.body.append(defs);
    this.lifelines = svg("g", { class: "lifelines" });
    this.rowsLayer = svg("g", { class: "rows" });
    this.body.append(this.lifelines, this.rowsLayer);
    scroller.append(headBox, this.body);
    this.reset();
    this.lastState = null;
    window.addEventListener("resize", () => this.lastState && this.sync(this.lastState, { rebuild: true }));
  }

  reset() {
    this.actorsKey = "";
    this.rendered = []; // {seq, group, row, geometry}
    this.bySeq = new Map();
    this.rowsLayer.replaceChildren();
    this.latest = null;
  }

  y(index) {
    return TOP + index * ROW_H + ROW_H / 2;
  }

  layout(state) {
    this.actors = actorColumns(state);
    const n = Math.max(1, this.actors.length);
    // The width a vertical scrollbar would take is kept free, so the last lane is never under it.
    const available = (this.scroller.clientWidth || 700) - GUTTER - 32;
    this.colW = Math.max(MIN_COL, Math.min(MAX_COL, available / n));
    this.width = GUTTER + n * this.colW + 16;
    this.x = {};
    this.actors.forEach((name, i) => {
      this.x[name] = GUTTER + this.colW * (i + 0.5);
    });
    this.head.replaceChildren();
    this.head.setAttribute("width", this.width);
    this.head.setAttribute("viewBox", `0 0 ${this.width} ${HEAD_H}`);
    this.head.append(svg("text", { x: GUTTER - 10, y: 24, "text-anchor": "end", class: "lamport__gutter-head" }, "time ↓"));
    this.lifelines.replaceChildren();
    this.lines = {};
    for (const name of this.actors) {
      const role = state.nodes[name]?.role;
      const chars = Math.max(6, Math.floor(this.colW / 8));
      const head = svg("text", { x: this.x[name], y: 17, "text-anchor": "middle", class: "lamport__actor" }, truncate(name, chars));
      head.append(svg("title", {}, name));
      this.head.append(head);
      this.head.append(svg("text", { x: this.x[name], y: 32, "text-anchor": "middle", class: "lamport__role" }, truncate(role || "", chars + 2)));
      const line = svg("line", { x1: this.x[name], x2: this.x[name], y1: 0, y2: 10, class: "lifeline" });
      this.lines[name] = line;
      this.lifelines.append(line);
    }
    this.body.setAttribute("width", this.width);
  }

  sync(state, { rebuild = false } = {}) {
    this.lastState = state;
    const actorsKey = actorColumns(state).join("\u0000") + "|" + state.nodeOrder.map((n) => state.nodes[n].role).join(",");
    const rows = state.timeline;
    const n = this.rendered.length;
    const diverged = rows.length < n || (n > 0 && rows[n - 1].seq !== this.rendered[n - 1].seq);
    const stick = rebuild || this.scroller.scrollTop + this.scroller.clientHeight >= this.scroller.scrollHeight - 40;
    const cut = state.timelineCut !== this.cut;
    this.cut = state.timelineCut;
    if (rebuild || diverged || cut || actorsKey !== this.actorsKey) {
      this.reset();
      this.actorsKey = actorsKey;
      this.layout(state);
    }
    for (let i = this.rendered.length; i < rows.length; i++) this.drawRow(rows[i], i);
    this.markLatest();
    const height = TOP + Math.max(rows.length, 3) * ROW_H + 12;
    this.body.setAttribute("height", height);
    this.body.setAttribute("viewBox", `0 0 ${this.width} ${height}`);
    for (const line of Object.values(this.lines)) line.setAttribute("y2", height);
    if (stick) this.scroller.scrollTop = this.scroller.scrollHeight;
    // A finished run that sent no message and no command has no diagram: the panel steps aside.
    const section = this.scroller.closest("section");
    if (section) section.hidden = state.end != null && rows.length === 0;
  }

  drawRow(row, index) {
    const y = this.y(index);
    // data-hl names the row for the presenter's highlight: a message (a command's request, or its
    // reply "<seq>r") or another event.
    const hl = `${row.type === "msg" ? "msg" : "ev"}:${row.seq}`;
    const group = svg("g", { class: `row row--${row.type}`, "data-seq": row.seq, "data-hl": hl });
    const entry = { seq: row.seq, group, row, index };
    if (row.type === "msg") {
      group.append(svg("text", { x: GUTTER - 10, y: y + 4, "text-anchor": "end", class: "lamport__t" }, formatT(row.t)));
      const request = row.replyTo != null ? this.bySeq.get(row.replyTo) : null;
      let y1 = y;
      if (request) {
        // The request's arrow now ends where this reply starts: halfway between the two rows.
        const meet = (this.y(request.index) + y) / 2;
        this.drawArrow(request, this.y(request.index), meet);
        y1 = meet;
      }
      entry.arrow = svg("g", { class: `arrow${row.replyTo != null ? " is-reply" : ""}${row.failed ? " is-error" : ""}` });
      group.append(entry.arrow);
      this.drawArrow(entry, y1, row.replyTo != null ? y : y + ROW_H / 2);
    } else if (row.type === "phase") {
      group.append(svg("line", { x1: GUTTER - 60, x2: this.width - 8, y1: y + 6, y2: y + 6, class: "phase__line" }));
      group.append(svg("text", { x: GUTTER + 4, y: y + 2, class: "phase__label" }, truncate(row.label, 80)));
    } else if (row.type === "fault") {
      group.append(svg("text", { x: GUTTER - 10, y: y + 4, "text-anchor": "end", class: "lamport__t" }, formatT(row.t)));
      const x = this.x[row.target];
      const x1 = x != null ? x - 46 : GUTTER;
      const x2 = x != null ? x + 46 : this.width - 8;
      group.append(svg("rect", { x: x1, y: y - 5, width: x2 - x1, height: 10, rx: 3, class: "fault__bar" }));
      const text = truncate(`⚡ ${row.label}`, 40);
      const label = svg("text", { x: x2 + 6, y: y + 4, class: "fault__label halo" }, text);
      if (x2 + 6 + text.length * 7.5 > this.width) {
        label.setAttribute("x", x1 - 6);
        label.setAttribute("text-anchor", "end");
      }
      group.append(label);
    }
    group.append(svg("title", {}, `#${row.seq} ${row.type}${row.from ? ` ${row.from} → ${row.to}` : ""}: ${row.label}`));
    this.rowsLayer.append(group);
    this.rendered.push(entry);
    this.bySeq.set(row.seq, entry);
  }

  drawArrow(entry, y1, y2) {
    const { row } = entry;
    const xa = this.x[row.from];
    const xb = this.x[row.to];
    if (xa == null || xb == null || !entry.arrow) return;
    entry.arrow.replaceChildren();
    const reply = row.replyTo != null;
    if (xa === xb) {
      // A message to itself: a small loop on its lifeline.
      entry.arrow.append(svg("path", { d: `M ${xa} ${y1} c 40 0, 40 ${ROW_H / 2}, 0 ${ROW_H / 2}`, class: "arrow__line", "marker-end": "url(#lamport-arrow)" }));
      // Its label goes on the side with room: the last lane's loop is labelled to its left.
      const right = xa + 44 + 28 * 7 <= this.width;
      entry.arrow.append(svg("text", { x: right ? xa + 44 : xa - 8, y: y1 + 10, "text-anchor": right ? "start" : "end", class: "arrow__label halo" },
        truncate(row.label, 28)));
      return;
    }
    const dir = Math.sign(xb - xa);
    entry.arrow.append(svg("circle", { cx: xa, cy: y1, r: 2.5, class: "arrow__origin" }));
    entry.arrow.append(svg("line", {
      x1: xa, y1, x2: xb - dir * 1.5, y2, class: "arrow__line", "marker-end": `url(#${reply ? "lamport-arrow-reply" : "lamport-arrow"})`,
    }));
    // Requests are labelled above their line's start, replies below theirs, so a round trip's
    // labels never collide and a sloping line does not run through its own label.
    const mx = (xa + xb) / 2;
    const my = reply ? (y1 + y2) / 2 + 13 : Math.min(y1, y2) - 3;
    const width = Math.abs(xb - xa);
    entry.arrow.append(svg("text", { x: mx, y: my, "text-anchor": "middle", class: "arrow__label halo" },
      truncate(row.label, Math.max(10, Math.floor(width / 7)))));
  }

  markLatest() {
    if (this.latest) this.latest.classList.remove("is-latest");
    this.latest = null;
    for (let i = this.rendered.length - 1; i >= 0; i--) {
      if (this.rendered[i].row.type === "msg") {
        this.latest = this.rendered[i].group;
        this.latest.classList.add("is-latest");
        break;
      }
    }
  }
}
