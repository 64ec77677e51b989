// The compare page: two runs side by side, each folded from its own event stream (stream.js), so
// both update live while they run and show everything at once when they are over.

import { apply, emptyState, formatT } from "./fold.js";
import { html } from "./svg.js";
import { RunStream } from "./stream.js";

const FINISHED = ["done", "failed", "cancelled"];
const page = JSON.parse(document.getElementById("compare-page").textContent);

// What the compact timeline keeps: the protocol's phases, faults, a node going down, the end.
function timelineRow(event) {
  const d = event.data || {};
  if (event.kind === "phase") return { tone: "phase", text: event.label || d.phase };
  if (event.kind === "fault") return { tone: "fault", text: `fault: ${event.label}` };
  if (event.kind === "node" && d.state === "down") return { tone: "fault", text: event.label || `${event.actor} down` };
  if (event.kind === "end") return { tone: "end", text: `end: ${event.label}` };
  return null;
}

class ComparedRun {
  constructor(info, root) {
    this.info = info;
    this.root = root;
    this.state = emptyState();
    this.status = info.status;
    this.rows = [];
    this.el = Object.fromEntries([...root.querySelectorAll("[data-role]")].map((el) => [el.dataset.role, el]));
    this.stream = new RunStream(info.ws, {
      onEvents: (events) => this.receive(events),
      onStatus: (frame) => {
        this.status = frame.status || this.status;
        this.render();
      },
    });
    this.render();
    this.stream.connect();
  }

  receive(events) {
    for (const event of events) {
      apply(this.state, event);
      const row = timelineRow(event);
      if (row) {
        row.t = event.t;
        row.seq = event.seq;
        this.el.timeline.append(html("li", { className: `compare__row compare__row--${row.tone}` }, `${formatT(row.t)}  ${row.text}`));
      }
    }
    this.el.count.textContent = `(${this.state.k} events)`;
    this.render();
  }

  render() {
    const { el, state } = this;
    const status = state.end?.status || this.status;
    el.status.textContent = status;
    el.status.className = `status status--${status}`;
    const verdict = state.end?.verdict;
    el.verdict.textContent = verdict ? verdict.toUpperCase() : "no verdict yet";
    el.verdict.className = `verdict verdict--${verdict || "pending"}`;
    el.verdict.dataset.verdict = verdict || "";
    if (verdict && state.end.expected) {
      el.expected.textContent = `expected ${state.end.expected} · ${verdict === state.end.expected ? "as expected" : "NOT as expected"}`;
    }
    const items = (state.checkOrder.length ? state.checkOrder : this.info.invariants.map((i) => i.name)).map((name) => {
      const check = state.checks[name];
      const held = check ? check.held : undefined;
      const word = held === true ? "held" : held === false ? "broken" : check ? "unknown" : "not checked yet";
      const item = html("li", { className: `compare__check compare__check--${word.replace(/ /g, "-")}` });
      item.append(html("span", { className: "tag" }, word), " ", html("code", {}, name));
      return item;
    });
    el.invariants.replaceChildren(...items);
    const blocked = state.metrics.blocked_ms;
    if (blocked) {
      const parts = [];
      for (const series of blocked.seriesOrder) {
        const { x, y } = blocked.series[series];
        for (let i = 0; i < x.length; i++) parts.push(`${formatT(y[i])} waiting for account ${x[i]} on ${series}`);
      }
      el.blocked.textContent = `Blocked time: ${parts.join("; then ")}.`;
    }
    // Only scenarios where clients wait on each other's locks measure blocked time; elsewhere the
    // line would say nothing, so it steps aside.
    el.blocked.hidden = !blocked;
    if (FINISHED.includes(this.status) && state.end) this.stream.close();
  }
}

for (const info of page.runs) {
  new ComparedRun(info, document.querySelector(`.compare__run[data-run="${info.id}"]`));
}
