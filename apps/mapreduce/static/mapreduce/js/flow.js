// The job's flow as a grid: the input splits, one lane per worker with its map and reduce attempts,
// the shuffle's partitions filling in Redis, and the output beside the checker's reference.

import { formatT } from "../../runs/js/fold.js";
import { html } from "../../runs/js/svg.js";
import { attemptsOf, chip, tasksOf } from "./attempts.js";
import { formatBytes } from "./bytes.js";
import { formatCount, numeric, times, truncateKey } from "./format.js";
import { taskState } from "./slice.js";

/** The flow of `round` (a grid element). */
export function renderFlow(slice, round) {
  // A re-run queued for a task that a late attempt then completed never runs: not shown.
  const shown = ({ task, attempt }) => attempt.worker || taskState(task) !== "completed";
  const maps = attemptsOf(round, "map").filter(shown);
  const reduces = attemptsOf(round, "reduce").filter(shown);
  const queued = [...maps, ...reduces].some(({ attempt }) => !attempt.worker);
  const lanes = [...(queued ? [null] : []), ...slice.workerOrder];
  if (!lanes.length) lanes.push(undefined);
  const rows = lanes.length;
  const grid = html("div", { className: "mr-flow__grid" });
  grid.style.gridTemplateRows = `auto repeat(${rows}, minmax(2.6rem, auto))`;
  const heads = [
    ["input splits", "the input, cut into one split per map task"],
    ["worker", "the Celery workers the engine found, by short name"],
    ["map tasks", "one chip per attempt, in the lane of the worker that ran it"],
    ["shuffle (Redis)", "each map's output, partitioned by key; a bar fills as the maps commit output for it"],
    ["reduce tasks", "one chip per attempt; each reads its partition from every map"],
    ["output", "the reducers' merged output"],
  ];
  heads.forEach(([text, title], i) => {
    const h = html("div", { className: "mr-flow__head", title }, text);
    h.style.gridColumn = String(i + 1);
    grid.append(h);
  });
  const place = (el, col, row) => {
    el.style.gridColumn = String(col);
    el.style.gridRow = row;
    grid.append(el);
  };
  const spanAll = `2 / span ${rows}`;

  // Input splits, each marked as its map task (same rank) runs and completes.
  const mapTasks = tasksOf(round, "map").sort((a, b) => a.n - b.n);
  const splitCell = html("div", { className: "mr-flow__cell mr-splits", dataset: { testid: "mr-splits" } });
  const splits = slice.splits.filter(Boolean);
  if (!splits.length) splitCell.append(html("p", { className: "muted small" }, "not split yet"));
  else {
    const total = splits.reduce((n, x) => n + (x.bytes || 0), 0);
    const records = splits.reduce((n, x) => n + (x.records || 0), 0);
    splitCell.append(html("p", { className: "mr-note" }, `${splits.length} splits · ${formatBytes(total)} · ${formatCount(records)} lines`));
    const list = html("div", { className: "mr-splits__list" });
    splits.forEach((x, i) => {
      const task = mapTasks.length === splits.length ? mapTasks[i] : null;
      const state = task ? taskState(task) : "idle";
      const el = html("span", {
        className: `mr-split mr-split--${state}`,
        title: `split ${x.split}: ${formatBytes(x.bytes)}, ${formatCount(x.records)} lines, from ${x.source || "?"}${x.documents > 1 ? ` and ${x.documents - 1} more` : ""}${task ? `\nmapped by ${task.task}: ${state.replace("_", " ")}` : ""}`,
        dataset: { split: String(x.split) },
      });
      el.append(html("strong", {}, `s${x.split}`), ` ${formatBytes(x.bytes)}`);
      list.append(el);
    });
    splitCell.append(list);
    const sources = [...new Set(splits.map((x) => x.source).filter(Boolean))];
    if (sources.length) splitCell.append(html("p", { className: "muted small mr-source" }, `from ${sources.slice(0, 3).join(", ")}${sources.length > 3 ? ` and ${sources.length - 3} more` : ""}`));
  }
  place(splitCell, 1, spanAll);

  // Worker lanes: the worker, its map attempts, its reduce attempts.
  lanes.forEach((name, i) => {
    const row = String(i + 2);
    const state = name ? round.workerStates[name] || slice.workers[name].state : null;
    const label = html("div", { className: "mr-flow__cell mr-lane-label", dataset: name ? { worker: name } : {} });
    if (name) {
      const seen = round.incidents[name];
      label.append(html("strong", {}, name));
      // A dead or stalled worker's state is said by its count below.
      if (!(seen && seen[state])) label.append(" ", html("span", { className: `mr-wstate mr-wstate--${state}` }, state));
      if (seen && seen.slow && state !== "slow") label.append(" ", html("span", { className: "mr-wstate mr-wstate--slow" }, "slow"));
      if (seen && seen.dead) label.append(" ", html("span", { className: "mr-wstate mr-wstate--dead", title: "the coordinator saw its heartbeat stop; Celery started a new process" }, `died ${times(seen.dead)}`));
      if (seen && seen.stalled) label.append(" ", html("span", { className: "mr-wstate mr-wstate--stalled", title: "a task on it ran past the timeout" }, `stalled ${times(seen.stalled)}`));
      if (slice.workers[name].host) label.append(html("span", { className: "mr-host", title: slice.workers[name].host }, slice.workers[name].host));
    } else {
      label.append(html("span", { className: "muted" }, name === null ? "queued" : "no worker yet"));
    }
    place(label, 2, row);
    for (const [col, list, kind] of [[3, maps, "map"], [5, reduces, "reduce"]]) {
      const cell = html("div", { className: `mr-flow__cell mr-lane mr-lane--${kind}`, dataset: { lane: name || "queue", kind } });
      for (const { task, attempt } of list) if ((attempt.worker || null) === (name ?? null)) cell.append(chip(task, attempt));
      if (["dead", "stalled"].includes(state)) cell.classList.add("is-dead");
      place(cell, col, row);
    }
  });

  // The shuffle: partitions filling as the maps commit their output.
  const shuffle = html("div", { className: "mr-flow__cell mr-shuffle", dataset: { testid: "mr-shuffle" } });
  const parts = Object.values(round.partitions).sort((a, b) => a.partition - b.partition);
  shuffle.append(html("p", { className: "mr-note" }, `written ${formatBytes(round.moved.written)} · read ${formatBytes(round.moved.read)}`));
  if (!parts.length) shuffle.append(html("p", { className: "muted small" }, "no map output yet"));
  const M = mapTasks.length || 1;
  for (const part of parts) {
    const row = html("div", { className: "mr-part", dataset: { partition: String(part.partition) } });
    const bar = html("div", { className: "mr-part__bar", title: `${part.maps.length} of ${mapTasks.length} maps have committed their output for partition ${part.partition}` });
    const fill = html("div", { className: "mr-part__fill" });
    fill.style.width = `${Math.min(100, (100 * part.maps.length) / M)}%`;
    bar.append(fill);
    row.append(html("span", { className: "mr-part__name" }, `p${part.partition}`), bar, html("span", { className: "mr-part__info" }, `${formatBytes(part.bytes)} · ${formatCount(part.records)} rec`));
    if (part.readBy.length) row.append(html("span", { className: "mr-part__read" }, `read by ${part.readBy.join(", ")}`));
    shuffle.append(row);
  }
  if (round.lastMove) shuffle.append(html("p", { className: "mr-move", title: "the latest shuffle transfer" }, `${round.lastMove.from} → ${round.lastMove.to}: ${round.lastMove.label}`));
  place(shuffle, 4, spanAll);

  // The output, and the sequential reference it is checked against.
  const out = html("div", { className: "mr-flow__cell mr-output", dataset: { testid: "mr-output" } });
  const o = round.output;
  if (!o) out.append(html("p", { className: "muted small" }, tasksOf(round, "reduce").length ? "waiting for the reducers" : "—"));
  else {
    out.append(html("p", { className: "mr-note" }, `${o.job || "job"}: ${formatCount(o.keys)} keys`));
    const list = html("ol", { className: "mr-top" });
    for (const [key, value] of o.top.slice(0, 5)) {
      const li = html("li");
      li.append(html("code", { title: String(key) }, truncateKey(key, 20)), " ", html("span", { className: "muted" }, formatCount(numeric(value))));
      list.append(li);
    }
    out.append(list);
  }
  if (slice.reference) {
    const same = o && o.keys === slice.reference.keys;
    out.append(html("p", { className: `mr-reference${o ? (same ? " is-same" : " is-different") : ""}`, dataset: { testid: "mr-reference" } }, `reference (one process): ${formatCount(slice.reference.keys)} keys in ${formatT(slice.reference.ms)}`));
  }
  place(out, 6, spanAll);
  return grid;
}
