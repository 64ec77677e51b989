// The MapReduce panel's slice of the run's state, folded from its events one at a time: the splits,
// the workers, and per round of the job its phases, tasks and their attempts, partitions, counters
// and output; the checker's reference, and whether the output was kept for download.

export const ROUND_PHASES = new Set(["map", "shuffle", "reduce", "output"]);

export function init() {
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
    reference: null, // {keys, ms}: the checker's sequential reference
    kept: null, // {parts, lines}: the output, kept for download once the job is over
    comparisons: [],
    ended: null, // {status, reason} of the end event
  };
}

export function newRound(key, label) {
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

export function apply(slice, e) {
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
  } else if (e.kind === "check" && d.name === "output_matches_reference" && d.evidence && d.evidence.reference_keys != null) {
    slice.reference = { keys: d.evidence.reference_keys, ms: d.evidence.reference_ms };
    slice.rev++;
  } else if (e.kind === "log" && d.type === "output_kept") {
    slice.kept = { parts: d.parts, lines: d.lines };
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
