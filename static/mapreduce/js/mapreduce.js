// The MapReduce lab's panel on the run page: the job's flow from input splits through map tasks (one
// lane per worker), the shuffle (partitions filling in Redis, bytes moved), reduce tasks and the
// output; live counters; a Gantt timeline per worker drawn from the workers' own timestamps; the top
// results as a bar chart; and the scenario's comparisons side by side. Folded from the run's events
// like every other panel (runs/js/panels.js), so it is the same live, paused and scrubbed.

import { registerPanel } from "../../runs/js/panels.js";
import { formatT } from "../../runs/js/fold.js";
import { html, svg } from "../../runs/js/svg.js";

const PHASES = ["split", "map", "shuffle", "reduce", "output", "reference", "check"];
const PHASE_HELP = {
  split: "the coordinator cuts the input into splits, one per map task",
  map: "map tasks run on the workers; each writes its output, partitioned by key, to Redis",
  shuffle: "map output is grouped by partition so each reducer can read its own",
  reduce: "reduce tasks read their partition from every map and write the final output",
  output: "the reducers' output, merged",
  reference: "a single process computes the same job sequentially, to check against",
  check: "the checker compares the output with the reference and the tasks' records",
};
const TASK_HELP = {
  idle: "waiting for a worker",
  in_progress: "running on a worker",
  completed: "done; its output counts",
  failed: "the attempt failed (its worker died); the task is run again",
  timed_out: "the attempt did not finish in time; the task is run again",
  ignored: "a late or duplicate attempt; its output was discarded",
};
const COUNTERS = [
  ["records_in", "records in"],
  ["records_out", "records out"],
  ["bytes_shuffled", "bytes shuffled"],
  ["bytes_shuffled_no_combiner", "bytes shuffled without combiner"],
  ["elapsed_ms", "elapsed"],
];

const ROUND_PHASES = new Set(["map", "shuffle", "reduce", "output"]);
const VALUE_LABELS = { wordcount: "occurrences", "inverted-index": "documents", grep: "matching lines", "log-top-urls": "requests" };

function init() {
  return {
    rev: 0,
    t: 0,
    phases: {}, // the job's own phases (split, reference, check): name -> {state, begin, end}
    current: null,
    splits: [], // index -> {split, bytes, records, source, documents}
    workers: {}, // name -> {name, host, state}
    workerOrder: [],
    rounds: {}, // key -> a round (see newRound); a scenario comparing two settings runs two
    roundOrder: [],
    latestRound: null,
    reference: null, // {job, keys, ms}
    comparisons: [],
    ended: null, // {status, reason} of the end event
  };
}

function newRound(key, label) {
  return {
    key,
    label: label || "",
    phases: {}, // map, shuffle, reduce, output: name -> {state, begin, end}
    current: null,
    workerStates: {}, // name -> the worker's state in this round
    incidents: {}, // name -> {dead: n, stalled: n, slow: bool}, what happened to the worker in this round
    tasks: {}, // id -> {task, kind, n, attempts: {attempt number: attempt}, attemptOrder: [number]}
    taskOrder: [],
    partitions: {}, // r -> {partition, records, bytes, maps: [task], readBy: [worker]}
    moved: { written: 0, read: 0, messages: 0 },
    lastMove: null,
    counters: {}, // metric name -> latest value
    output: null,
    elapsed: null,
  };
}

function roundOf(slice, d) {
  const key = d.round != null ? String(d.round) : "1";
  if (!slice.rounds[key]) {
    slice.rounds[key] = newRound(key, d.round_label);
    slice.roundOrder.push(key);
  } else if (d.round_label && !slice.rounds[key].label) {
    slice.rounds[key].label = d.round_label;
  }
  slice.latestRound = key;
  return slice.rounds[key];
}

function worker(slice, name, host) {
  if (!name) return null;
  if (!slice.workers[name]) {
    slice.workers[name] = { name, host: host || "", state: "up" };
    slice.workerOrder.push(name);
  } else if (host && !slice.workers[name].host) {
    slice.workers[name].host = host;
  }
  return slice.workers[name];
}

function partition(round, r) {
  if (!round.partitions[r]) round.partitions[r] = { partition: r, records: 0, bytes: 0, maps: [], readBy: [] };
  return round.partitions[r];
}

function taskNumber(id) {
  const match = /(\d+)$/.exec(String(id));
  return match ? Number(match[1]) : 0;
}

function applyTask(slice, round, d, e) {
  let task = round.tasks[d.task];
  if (!task) {
    task = round.tasks[d.task] = { task: d.task, kind: d.kind, n: taskNumber(d.task), attempts: {}, attemptOrder: [] };
    round.taskOrder.push(d.task);
  }
  const key = Number(d.attempt ?? 1);
  const before = task.attempts[key];
  const attempt = { ...(before || {}), seq: e.seq, seenAt: before ? before.seenAt : e.t };
  for (const [k, v] of Object.entries(d)) if (v != null || !(k in attempt)) attempt[k] = v;
  attempt.attempt = key;
  attempt.backup = Boolean(d.backup || (before && before.backup));
  attempt.history = before ? before.history : [];
  if (attempt.history.at(-1) !== d.state) attempt.history = [...attempt.history, d.state];
  // A worker that died reports no end: its bar ends where the coordinator gave up on it.
  if ((d.state === "failed" || d.state === "timed_out") && attempt.lostAt == null) attempt.lostAt = e.t;
  task.attempts[key] = attempt;
  if (!before) task.attemptOrder.push(key);
  worker(slice, attempt.worker, attempt.host);
}

/** The task's state as a whole: completed once any attempt completed, else its latest attempt's. */
export function taskState(task) {
  const attempts = task.attemptOrder.map((k) => task.attempts[k]);
  if (!attempts.length) return "idle";
  if (attempts.some((a) => a.state === "completed")) return "completed";
  const live = attempts.filter((a) => a.state !== "ignored");
  return (live.length ? live : attempts).reduce((a, b) => (b.seq > a.seq ? b : a)).state;
}

function apply(slice, e) {
  const d = e.data;
  if (e.t > slice.t) slice.t = e.t;
  if (e.kind === "phase" && d.name && e.actor === "coordinator") {
    const owner = ROUND_PHASES.has(d.name) ? roundOf(slice, d) : slice;
    const phase = owner.phases[d.name] || (owner.phases[d.name] = { state: null, begin: null, end: null });
    phase.state = d.state;
    if (d.state === "begin") phase.begin = e.t;
    else if (d.state === "end") phase.end = e.t;
    owner.current = d.name;
    slice.current = d.name;
    slice.rev++;
  } else if (e.kind === "state" && d.type === "split") {
    slice.splits[d.split] = { split: d.split, bytes: d.bytes, records: d.records, source: d.source, documents: d.documents };
    slice.rev++;
  } else if (e.kind === "state" && d.type === "task" && d.task) {
    applyTask(slice, roundOf(slice, d), d, e);
    slice.rev++;
  } else if (e.kind === "state" && d.type === "worker") {
    const w = worker(slice, d.worker || e.actor, d.host);
    if (w && d.state) {
      const round = roundOf(slice, d);
      const seen = round.incidents[w.name] || (round.incidents[w.name] = { dead: 0, stalled: 0, slow: false });
      if (d.state === "slow") seen.slow = true;
      else if ((d.state === "dead" || d.state === "stalled") && round.workerStates[w.name] !== d.state) seen[d.state]++;
      w.state = d.state;
      round.workerStates[w.name] = d.state;
    }
    slice.rev++;
  } else if (e.kind === "state" && d.type === "partition") {
    const p = partition(roundOf(slice, d), d.partition);
    p.records += d.records || 0;
    p.bytes += d.bytes || 0;
    if (d.from_task && !p.maps.includes(d.from_task)) p.maps.push(d.from_task);
    slice.rev++;
  } else if (e.kind === "msg" && d.type === "shuffle") {
    const round = roundOf(slice, d);
    const bytes = d.bytes || 0;
    if (e.to === "redis") {
      round.moved.written += bytes;
    } else if (e.actor === "redis") {
      round.moved.read += bytes;
      if (d.partition != null) {
        const p = partition(round, d.partition);
        if (!p.readBy.includes(e.to)) p.readBy.push(e.to);
      }
    }
    round.moved.messages++;
    round.lastMove = { from: e.actor, to: e.to, label: e.label || "", t: e.t };
    slice.rev++;
  } else if (e.kind === "metric" && e.actor === "coordinator" && d.name) {
    const value = d.value ?? d.y;
    if (typeof value !== "number") return;
    // A round's counters carry its label as their series; the job's own have none.
    const key = slice.roundOrder.find((k) => d.series != null && slice.rounds[k].label === String(d.series));
    const round = key ? slice.rounds[key] : d.series == null && slice.latestRound ? slice.rounds[slice.latestRound] : null;
    if (round) round.counters[d.name] = value;
    slice.rev++;
  } else if (e.kind === "state" && d.type === "output") {
    roundOf(slice, d).output = { job: d.job, top: d.top || [], keys: d.keys, lines: d.lines, valueLabel: d.value_label };
    slice.rev++;
  } else if (e.kind === "state" && d.type === "reference") {
    slice.reference = { job: d.job, keys: d.keys, ms: d.ms };
    slice.rev++;
  } else if (e.kind === "state" && d.type === "comparison") {
    const entry = { title: d.title || "comparison", rows: d.rows || [] };
    const at = slice.comparisons.findIndex((c) => c.title === entry.title);
    if (at >= 0) slice.comparisons[at] = entry;
    else slice.comparisons.push(entry);
    slice.rev++;
  } else if (e.kind === "end") {
    slice.ended = { status: d.status || "done", reason: d.reason || "" };
    slice.rev++;
  }
}

// Formatting

export function formatBytes(n) {
  if (n == null || Number.isNaN(n)) return "—";
  if (n < 1024) return `${Math.round(n)} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} kB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MB`;
  return `${(n / 1024 ** 3).toFixed(2)} GB`;
}

function formatCount(n) {
  return n == null ? "—" : Math.round(n).toLocaleString("en");
}

function formatValue(value, unit) {
  if (unit === "ms") return formatT(value);
  if (unit === "bytes" || unit === "B") return formatBytes(value);
  return `${formatCount(value)}${unit ? ` ${unit}` : ""}`;
}

function counterText(name, value) {
  if (name.startsWith("bytes")) return formatBytes(value);
  if (name.startsWith("elapsed")) return formatT(value);
  return formatCount(value);
}

const MARKS = { failed: "✕", timed_out: "◷", ignored: "⊘" };

/** Where an attempt's bar ends: the worker's own end, else where the coordinator declared its worker
 * dead, else now (still running, perhaps on a stalled worker). */
function attemptEnd(a, now) {
  if (a.end_ms != null) return a.end_ms;
  if (a.state === "failed" && a.lostAt != null) return Math.max(a.lostAt, a.start_ms);
  return Math.max(now, a.start_ms);
}

function isOpen(a) {
  return a.end_ms == null && a.state !== "failed";
}

/** ✕, ◷ and ⊘ for each way the attempt was lost, in order (a stalled attempt is timed out, then
 * ignored when it finally reports). */
function marksOf(a) {
  return (a.history || [a.state]).map((st) => MARKS[st] || "").join("");
}

function tasksOf(round, kind) {
  return round.taskOrder.map((id) => round.tasks[id]).filter((t) => t.kind === kind);
}

function attemptsOf(round, kind) {
  const out = [];
  for (const task of tasksOf(round, kind)) {
    for (const key of task.attemptOrder) out.push({ task, attempt: task.attempts[key] });
  }
  const when = (a) => a.start_ms ?? a.seenAt ?? 0;
  return out.sort((a, b) => when(a.attempt) - when(b.attempt) || a.task.n - b.task.n || a.attempt.attempt - b.attempt.attempt);
}

function attemptTitle(task, a) {
  const states = (a.history && a.history.length ? a.history : [a.state]).map((st) => st.replace("_", " "));
  const lines = [`${task.task} (${task.kind}), attempt ${a.attempt}${a.backup ? ", a backup task" : ""}: ${states.join(" → ")}`];
  if (TASK_HELP[a.state]) lines.push(TASK_HELP[a.state]);
  if (a.reason) lines.push(String(a.reason));
  if (a.worker) lines.push(`on ${a.worker}${a.host ? ` (${a.host})` : ""}`);
  if (a.start_ms != null) {
    let until = ", still running";
    if (a.end_ms != null) until = ` to ${formatT(a.end_ms)}, ${formatT(a.end_ms - a.start_ms)}`;
    else if (a.state === "failed" && a.lostAt != null) until = `; its worker was declared dead at ${formatT(a.lostAt)}`;
    lines.push(`from ${formatT(a.start_ms)}${until} (worker's clock)`);
  }
  if (a.records_in) lines.push(`records in ${formatCount(a.records_in)}, out ${formatCount(a.records_out)}`);
  if (a.bytes_out) lines.push(`output ${formatBytes(a.bytes_out)}`);
  return lines.join("\n");
}

function chip(task, a) {
  const classes = ["mr-chip", `mr-chip--${a.state}`, `mr-chip--${task.kind}`];
  if (a.backup) classes.push("mr-chip--backup");
  const el = html("span", {
    className: classes.join(" "),
    title: attemptTitle(task, a),
    dataset: { task: task.task, state: a.state, attempt: String(a.attempt), backup: a.backup ? "1" : "0" },
  });
  el.append(task.task);
  if (a.attempt > 1) el.append(html("sup", {}, `#${a.attempt}`));
  if (a.backup) el.append(html("sup", { className: "mr-chip__backup" }, "B"));
  if (marksOf(a)) el.append(html("span", { className: "mr-chip__mark" }, marksOf(a)));
  return el;
}

function times(n) {
  return n === 1 ? "once" : n === 2 ? "twice" : `${n} times`;
}

function numeric(value) {
  if (Array.isArray(value)) return value.length;
  const n = Number(value);
  return Number.isFinite(n) ? n : 0;
}

/** A key short enough for a label; a path keeps its end, where the file name is. */
function truncateKey(key, n = 30) {
  const s = String(key);
  if (s.length <= n) return s;
  return s.includes("/") ? `…${s.slice(s.length - n + 1)}` : `${s.slice(0, n - 1)}…`;
}

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

// The view

class MapReducePanel {
  constructor(body) {
    this.body = body;
    this.tabs = html("div", { className: "mr-rounds", role: "tablist", "aria-label": "Rounds of the job", dataset: { testid: "mr-rounds" } });
    this.phaseBar = html("ol", { className: "mr-phases", dataset: { testid: "mr-phases" } });
    this.counters = html("div", { className: "mr-counters", dataset: { testid: "mr-counters" } });
    this.caption = html("p", { className: "mr-caption", dataset: { testid: "mr-caption" } });
    this.flow = html("div", { className: "mr-flow", dataset: { testid: "mr-flow" } });
    this.ganttBox = html("figure", { className: "mr-gantt", dataset: { testid: "mr-gantt" } });
    this.results = html("div", { className: "mr-results", dataset: { testid: "mr-results" } });
    this.comparisons = html("div", { className: "mr-comparisons", dataset: { testid: "mr-comparisons" } });
    this.bottom = html("div", { className: "mr-bottom" });
    this.bottom.append(this.results, this.comparisons);
    body.append(this.tabs, this.phaseBar, this.counters, this.caption, this.flow, this.ganttBox, this.bottom);
    this.shown = null;
    this.shownRev = -1;
    this.chosen = null; // the round the viewer picked; none follows the latest
    this.chartKey = null;
    this.plot = null;
    this.plotly = typeof window.Plotly !== "undefined" ? window.Plotly : null;
    // The timeline is drawn to the panel's width: drawn again when that changes.
    this.ganttWidth = 0;
    if (typeof ResizeObserver !== "undefined") {
      new ResizeObserver(() => {
        const width = this.ganttBox.clientWidth;
        if (this.shown && Math.abs(width - this.ganttWidth) > 20) this.renderGantt(this.shown);
      }).observe(this.ganttBox);
    }
  }

  sync(slice) {
    if (slice === this.shown && slice.rev === this.shownRev) return;
    this.shown = slice;
    this.shownRev = slice.rev;
    this.render(slice);
  }

  render(slice) {
    const key = this.chosen && slice.rounds[this.chosen] ? this.chosen : slice.latestRound;
    const round = key ? slice.rounds[key] : newRound("1", "");
    this.renderTabs(slice, key);
    this.renderPhases(slice, round);
    this.renderCounters(slice, round);
    this.renderCaption(slice, round);
    this.renderFlow(slice, round);
    this.renderGantt(slice);
    this.renderResults(slice, round);
    this.renderComparisons(slice);
  }

  renderTabs(slice, key) {
    const labelled = slice.roundOrder.filter((k) => slice.rounds[k].label);
    this.tabs.hidden = labelled.length < 2;
    if (this.tabs.hidden) {
      this.tabs.replaceChildren();
      return;
    }
    const intro = html("span", { className: "mr-rounds__intro" }, "This scenario runs the job twice:");
    const buttons = slice.roundOrder.map((k) => {
      const r = slice.rounds[k];
      const selected = k === key;
      const button = html("button", { type: "button", className: `mr-round${selected ? " is-selected" : ""}`, role: "tab", "aria-selected": String(selected), dataset: { round: k } });
      button.append(html("strong", {}, `round ${k}`), ` ${r.label}`);
      if (r.counters.elapsed_ms != null) button.append(html("span", { className: "mr-round__time" }, formatT(r.counters.elapsed_ms)));
      button.addEventListener("click", () => {
        this.chosen = k;
        this.render(this.shown);
      });
      return button;
    });
    const follow = html("button", { type: "button", className: `mr-round mr-round--follow${this.chosen ? "" : " is-selected"}`, title: "show whichever round is running" }, "follow the run");
    follow.addEventListener("click", () => {
      this.chosen = null;
      this.render(this.shown);
    });
    this.tabs.replaceChildren(intro, ...buttons, follow);
  }

  renderPhases(slice, round) {
    const items = PHASES.filter((p) => p !== "reference" || slice.phases.reference).map((name) => {
      const phase = ROUND_PHASES.has(name) ? round.phases[name] : slice.phases[name];
      const state = !phase ? "pending" : phase.state === "end" || slice.ended ? "done" : "active";
      const li = html("li", { className: `mr-phase mr-phase--${state}`, title: PHASE_HELP[name], dataset: { phase: name, state } });
      li.append(html("span", { className: "mr-phase__name" }, name));
      if (phase && phase.begin != null && (phase.end != null || !slice.ended)) {
        li.append(html("span", { className: "mr-phase__time" }, phase.end != null ? formatT(phase.end - phase.begin) : "…"));
      }
      return li;
    });
    this.phaseBar.replaceChildren(...items);
  }

  renderCounters(slice, round) {
    const box = (name, value, label, title) => {
      const el = html("div", { className: "mr-counter", dataset: { counter: name }, title: title || "" });
      el.append(html("span", { className: "mr-counter__value" }, value), html("span", { className: "mr-counter__name" }, label));
      return el;
    };
    const done = (tasks) => tasks.filter((t) => taskState(t) === "completed").length;
    const maps = tasksOf(round, "map");
    const reduces = tasksOf(round, "reduce");
    const boxes = [
      box("maps", maps.length ? `${done(maps)} / ${maps.length}` : "—", "map tasks done"),
      box("reduces", reduces.length ? `${done(reduces)} / ${reduces.length}` : "—", "reduce tasks done"),
    ];
    for (const [name, label] of COUNTERS) {
      const value = round.counters[name];
      if (value == null && (name === "bytes_shuffled_no_combiner" || name === "elapsed_ms")) continue;
      boxes.push(box(name, value == null ? "—" : counterText(name, value), label));
    }
    let lost = 0;
    for (const task of [...maps, ...reduces]) lost += task.attemptOrder.filter((k) => marksOf(task.attempts[k])).length;
    if (lost) boxes.push(box("retried", String(lost), "attempts failed, timed out or ignored", "each of these tasks ran again or was already done; its output counts once"));
    const backups = [...maps, ...reduces].reduce((n, t) => n + t.attemptOrder.filter((k) => t.attempts[k].backup).length, 0);
    if (backups) boxes.push(box("backups", String(backups), "backup tasks", "speculative copies of slow tasks; whichever finishes first counts"));
    this.counters.replaceChildren(...boxes);
  }

  renderCaption(slice, round) {
    const parts = [];
    const current = slice.current;
    const down = slice.workerOrder.filter((w) => ["dead", "stalled"].includes(round.workerStates[w]));
    if (!current) parts.push("Waiting for the coordinator to split the input.");
    else if (slice.ended && slice.ended.status !== "done") {
      parts.push(`The run ${slice.ended.status}${slice.ended.reason ? `: ${slice.ended.reason}` : ""}.`);
    } else if (slice.ended) {
      const o = round.output;
      const ref = slice.reference;
      let text = "The job is over";
      if (o && ref) text += o.keys === ref.keys ? `: ${formatCount(o.keys)} keys, as many as the sequential reference` : `: ${formatCount(o.keys)} keys, the reference has ${formatCount(ref.keys)}`;
      parts.push(`${text}.`);
    } else parts.push(`Now: ${current} — ${PHASE_HELP[current] || ""}.`);
    const hurt = [];
    const slow = [];
    for (const w of slice.workerOrder) {
      const seen = round.incidents[w];
      if (!seen) continue;
      const what = [];
      if (seen.dead) what.push(`died ${times(seen.dead)}`);
      if (seen.stalled) what.push(`stalled ${times(seen.stalled)}`);
      if (what.length) hurt.push(`${w} ${what.join(" and ")}`);
      if (seen.slow) slow.push(w);
    }
    if (hurt.length) {
      const one = hurt.length === 1;
      parts.push(`${hurt.join("; ")}: ${one ? "its" : "their"} tasks were run again on a live worker, and whatever ${one ? "it" : "they"} finished late was ignored.`);
    }
    if (slow.length) parts.push(`${slow.join(", ")} ${slow.length > 1 ? "are" : "is"} slow on purpose (a straggler)${round.label ? `; this round has ${round.label}` : ""}.`);
    this.caption.textContent = parts.join(" ");
    this.caption.classList.toggle("is-fault", (down.length > 0 && !slice.ended) || (slice.ended && slice.ended.status !== "done"));
    this.caption.classList.toggle("is-recovered", slice.ended && Object.values(round.incidents).some((x) => x.dead || x.stalled));
  }

  renderFlow(slice, round) {
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
    this.flow.replaceChildren(grid);
  }

  renderGantt(slice) {
    const caption = html("figcaption", {}, "Timeline per worker ");
    caption.append(html("span", { className: "muted small" }, "bars from the workers' own clocks; maps overlapping across lanes ran in parallel"));
    const rounds = slice.roundOrder.map((k) => slice.rounds[k]).map((r) => ({ round: r, span: roundSpan(r, slice.t) })).filter((x) => x.span);
    if (!rounds.length) {
      this.ganttBox.replaceChildren(caption, html("p", { className: "muted small" }, "No task has started on a worker yet."));
      return;
    }
    this.ganttWidth = this.ganttBox.clientWidth;
    const width = Math.max(640, Math.round(this.ganttBox.clientWidth || this.body.clientWidth || 1100));
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
    this.ganttBox.replaceChildren(caption, ...svgs, legend);
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

  renderResults(slice, round) {
    const o = round.output;
    const key = o ? `${round.key}:${JSON.stringify(o.top)}` : null;
    if (key === this.chartKey && this.results.childElementCount) return;
    this.chartKey = key;
    if (this.plotly && this.plot) this.plotly.purge(this.plot);
    this.plot = null;
    const label = o ? o.valueLabel || VALUE_LABELS[o.job] || "value" : "";
    const title = html("h3", { className: "small-heading" }, o ? `Top ${Math.min(20, o.top.length)} of ${o.job || "the job"}, by ${label}${round.label ? ` (${round.label})` : ""}` : "Top results");
    if (!o || !o.top.length) {
      this.results.replaceChildren(title, html("p", { className: "muted small" }, o ? "The output is empty." : "Shown when the reducers have written the output."));
      return;
    }
    const rows = o.top.slice(0, 20);
    // Whole keys as the categories (two keys may share a shortened label), shortened on the axis.
    const keys = rows.map(([k]) => String(k)).reverse();
    const values = rows.map(([, v]) => numeric(v)).reverse();
    this.plot = html("div", { className: "mr-chart", dataset: { testid: "mr-chart" } });
    this.results.replaceChildren(title, this.plot);
    if (!this.plotly) {
      this.plot.textContent = rows.map(([k, v]) => `${k}: ${numeric(v)}`).join(", ");
      return;
    }
    const layout = {
      height: Math.max(200, 19 * rows.length + 46),
      margin: { l: 10, r: 20, t: 4, b: 28 },
      paper_bgcolor: "#ffffff",
      plot_bgcolor: "#ffffff",
      font: { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 12, color: "#24292f" },
      xaxis: { gridcolor: "#eaeef2", zeroline: false, rangemode: "tozero", title: { text: label, standoff: 4 } },
      yaxis: {
        automargin: true,
        type: "category",
        tickmode: "array",
        tickvals: keys,
        ticktext: keys.map((k) => truncateKey(k)),
        tickfont: { family: "ui-monospace, SFMono-Regular, Menlo, monospace", size: 11 },
      },
      bargap: 0.22,
    };
    const trace = {
      type: "bar",
      orientation: "h",
      x: values,
      y: keys,
      marker: { color: "#0b5cc7" },
      text: values.map((v) => formatCount(v)),
      textposition: "auto",
      cliponaxis: false,
      hovertemplate: `%{y}: %{x} ${label}<extra></extra>`,
    };
    this.plotly.newPlot(this.plot, [trace], layout, { displayModeBar: false, responsive: true });
  }

  renderComparisons(slice) {
    this.comparisons.hidden = !slice.comparisons.length;
    this.bottom.classList.toggle("has-comparisons", slice.comparisons.length > 0);
    if (!slice.comparisons.length) {
      this.comparisons.replaceChildren();
      return;
    }
    const boxes = slice.comparisons.map((c) => {
      const box = html("div", { className: "mr-compare", dataset: { testid: "mr-compare" } });
      box.append(html("h4", { className: "mr-compare__title" }, c.title));
      const max = Math.max(1e-9, ...c.rows.map((r) => Number(r.value) || 0));
      c.rows.forEach((r, i) => {
        const row = html("div", { className: `mr-compare__row mr-compare__row--${i}` });
        const bar = html("div", { className: "mr-compare__bar" });
        const fill = html("div", { className: "mr-compare__fill" });
        fill.style.width = `${(100 * (Number(r.value) || 0)) / max}%`;
        bar.append(fill);
        row.append(html("span", { className: "mr-compare__label" }, r.label), bar, html("span", { className: "mr-compare__value" }, formatValue(Number(r.value), r.unit)));
        box.append(row);
      });
      if (c.rows.length === 2 && Number(c.rows[0].value) > 0 && Number(c.rows[1].value) > 0) {
        const [a, b] = c.rows.map((r) => ({ label: r.label, value: Number(r.value) }));
        const [small, big] = a.value <= b.value ? [a, b] : [b, a];
        const text = `${small.label}: ${Math.round((1 - small.value / big.value) * 100)}% less than ${big.label} (${(big.value / small.value).toFixed(2)}×)`;
        box.append(html("p", { className: "mr-compare__ratio" }, text));
      }
      return box;
    });
    this.comparisons.replaceChildren(html("h3", { className: "small-heading" }, "Compared in this run"), ...boxes);
  }
}

registerPanel({
  name: "mapreduce",
  title: "MapReduce job",
  init,
  apply,
  mount: (body) => new MapReducePanel(body),
});
