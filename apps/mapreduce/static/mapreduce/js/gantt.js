// The timeline per worker: one bar per attempt, on the workers' own clocks, one chart per round of
// the job on a shared scale.

import { formatT } from "../../runs/js/fold.js";
import { html, svg } from "../../runs/js/svg.js";
import { attemptEnd, attemptTitle, attemptsOf, isOpen, marksOf } from "./attempts.js";

function niceTicks(lo, hi, count) {
  const span = Math.max(1e-9, hi - lo);
  const raw = span / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((x) => x >= raw) || raw;
  const ticks = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9; t += step) ticks.push(t);
  return ticks;
}

/** Attempts of one worker in rows, so attempts that overlap in time (a worker running two tasks at
 * once) are drawn one above the other rather than on top of each other. */
function packRows(items, now) {
  const ends = [];
  for (const item of items) {
    const start = item.attempt.start_ms;
    const end = attemptEnd(item.attempt, now);
    let row = ends.findIndex((e) => e <= start + 0.01);
    if (row < 0) {
      row = ends.length;
      ends.push(end);
    } else {
      ends[row] = end;
    }
    item.row = row;
  }
  return Math.max(1, ends.length);
}

function roundSpan(round, now) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const kind of ["map", "reduce"]) {
    for (const { attempt } of attemptsOf(round, kind)) {
      if (attempt.start_ms == null) continue;
      lo = Math.min(lo, attempt.start_ms);
      hi = Math.max(hi, attemptEnd(attempt, now));
    }
  }
  if (!Number.isFinite(lo)) return null;
  if (round.phases.map?.begin != null) lo = Math.min(lo, round.phases.map.begin);
  const last = round.phases.output?.end ?? round.phases.reduce?.end;
  if (last != null) hi = Math.max(hi, last);
  if (!Number.isFinite(lo)) return null;
  return { lo, hi: Math.max(hi, lo + 1) };
}

export class Gantt {
  constructor(box) {
    this.box = box;
    this.shown = null;
    // Drawn to the box's width: drawn again when that changes.
    this.width = 0;
    if (typeof ResizeObserver !== "undefined") {
      new ResizeObserver(() => {
        if (this.shown && Math.abs(this.box.clientWidth - this.width) > 20) this.render(this.shown);
      }).observe(box);
    }
  }

  render(slice) {
    this.shown = slice;
    const caption = html("figcaption", {}, "Timeline per worker ");
    caption.append(html("span", { className: "muted small" }, "bars from the workers' own clocks; maps overlapping across lanes ran in parallel"));
    const rounds = slice.roundOrder.map((k) => slice.rounds[k]).map((r) => ({ round: r, span: roundSpan(r, slice.t) })).filter((x) => x.span);
    if (!rounds.length) {
      this.box.replaceChildren(caption, html("p", { className: "muted small" }, "No task has started on a worker yet."));
      return;
    }
    this.width = this.box.clientWidth;
    const width = Math.max(640, Math.round(this.box.clientWidth || this.box.parentElement?.clientWidth || 1100));
    // Rounds share one scale, so the longer one is drawn longer.
    const longest = Math.max(...rounds.map((x) => x.span.hi - x.span.lo));
    const svgs = rounds.map(({ round, span }) => this.ganttOf(slice, round, span.lo, longest, width, rounds.length > 1));
    const legend = html("p", { className: "legend small mr-legend" });
    for (const [cls, text] of [
      ["mr-key--map", "map"],
      ["mr-key--reduce", "reduce"],
      ["mr-key--in_progress", "running"],
      ["mr-key--failed", "✕ failed"],
      ["mr-key--timed_out", "◷ timed out"],
      ["mr-key--ignored", "⊘ ignored (late or duplicate)"],
      ["mr-key--backup", "B backup task"],
    ]) {
      const item = html("span", { className: "legend__item" });
      item.append(html("i", { className: `mr-key ${cls}` }), text);
      legend.append(item);
    }
    this.box.replaceChildren(caption, ...svgs, legend);
  }

  ganttOf(slice, round, t0, spanMs, width, titled) {
    const left = 132;
    const right = 14;
    const top = titled ? 40 : 24;
    const barH = 20;
    const gap = 6;
    const items = [...attemptsOf(round, "map"), ...attemptsOf(round, "reduce")].filter(({ attempt }) => attempt.worker && attempt.start_ms != null);
    const lanes = slice.workerOrder.map((name) => {
      const mine = items.filter((x) => x.attempt.worker === name).sort((a, b) => a.attempt.start_ms - b.attempt.start_ms);
      return { name, items: mine, rows: packRows(mine, slice.t) };
    });
    let y = top;
    for (const lane of lanes) {
      lane.y = y;
      lane.h = Math.max(34, lane.rows * barH + gap * 2 - 2);
      y += lane.h;
    }
    const height = y + 22;
    const x = (t) => left + ((t - t0) / spanMs) * (width - left - right);
    const root = svg("svg", { class: "mr-gantt__svg", width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": `Task attempts per worker over time${round.label ? `, ${round.label}` : ""}`, "data-round": round.key });
    if (titled) {
      const total = round.counters.elapsed_ms;
      root.append(svg("text", { x: 4, y: 14, class: "mr-gantt__title" }, `round ${round.key}: ${round.label}${total != null ? ` — ${formatT(total)}` : ""}`));
    }
    lanes.forEach((lane, i) => {
      root.append(svg("rect", { x: 0, y: lane.y, width, height: lane.h, class: i % 2 ? "mr-gantt__lane mr-gantt__lane--odd" : "mr-gantt__lane" }));
      const seen = round.incidents[lane.name] || {};
      const state = seen.slow ? "slow" : seen.dead ? "dead" : seen.stalled ? "stalled" : "up";
      const note = [seen.slow ? "slow" : "", seen.dead ? `died ${seen.dead}×` : "", seen.stalled ? `stalled ${seen.stalled}×` : ""].filter(Boolean).join(", ");
      const label = svg("text", { x: 6, y: lane.y + lane.h / 2 + (note ? -2 : 4), class: `mr-gantt__label mr-gantt__label--${state}` }, lane.name);
      if (note) label.append(svg("tspan", { x: 6, dy: 13, class: "mr-gantt__note" }, note));
      label.append(svg("title", {}, slice.workers[lane.name].host || lane.name));
      root.append(label);
    });
    const ticks = niceTicks(0, spanMs, Math.max(4, Math.floor((width - left) / 110)));
    for (const t of ticks) {
      root.append(svg("line", { x1: x(t0 + t), x2: x(t0 + t), y1: top - 4, y2: height - 18, class: "mr-gantt__grid" }));
      root.append(svg("text", { x: x(t0 + t), y: height - 5, class: "mr-gantt__tick", "text-anchor": "middle" }, `+${formatT(t)}`));
    }
    // Where the coordinator started the maps and the reduces (the gap between is the shuffle).
    let lastLabel = -Infinity;
    let lift = false;
    for (const name of ["map", "reduce"]) {
      const p = round.phases[name];
      if (!p || p.begin == null) continue;
      const px = x(p.begin);
      root.append(svg("line", { x1: px, x2: px, y1: top - 14, y2: height - 18, class: "mr-gantt__phase" }));
      lift = px - lastLabel < 52 ? !lift : false;
      root.append(svg("text", { x: px + 3, y: top - (lift ? 14 : 4), class: "mr-gantt__phase-label" }, `${name}s start`));
      lastLabel = px;
    }
    for (const lane of lanes) {
      for (const { task, attempt, row } of lane.items) {
        const by = lane.y + gap + row * barH;
        const open = isOpen(attempt);
        const end = attemptEnd(attempt, slice.t);
        const x0 = x(attempt.start_ms);
        const w = Math.max(3, x(end) - x0);
        const classes = ["mr-bar", `mr-bar--${task.kind}`, `mr-bar--${attempt.state}`];
        if (attempt.backup) classes.push("mr-bar--backup");
        if (open) classes.push("mr-bar--open");
        const g = svg("g", { class: classes.join(" "), "data-task": task.task, "data-state": attempt.state, "data-worker": lane.name });
        g.append(svg("title", {}, attemptTitle(task, attempt)));
        g.append(svg("rect", { x: x0, y: by, width: w, height: barH - 3, rx: 3 }));
        const mark = marksOf(attempt);
        const text = `${task.task}${attempt.attempt > 1 ? `#${attempt.attempt}` : ""}${attempt.backup ? " B" : ""}${mark ? ` ${mark}` : ""}`;
        if (w > text.length * 6.6 + 6) g.append(svg("text", { x: x0 + 4, y: by + barH / 2, class: "mr-bar__text" }, text));
        else if (mark || attempt.backup) g.append(svg("text", { x: x0 + w + 2, y: by + barH / 2, class: "mr-bar__mark" }, `${attempt.backup ? "B" : ""}${mark}`));
        root.append(g);
      }
    }
    return root;
  }
}
