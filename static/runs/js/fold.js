// Folding a run's events into what every panel shows. Pure data: no DOM, no timers.
//
// `fold(events, k)` is the view after events 1..k (events[i] has seq i + 1). Moving forward one
// event at a time uses `apply(state, event)` on a state the caller owns; moving back re-folds from
// scratch, so a scrubbed view is exactly what a live viewer saw at that point.

// Node states the diagram knows how to colour; any other state is shown as text on a neutral node.
export const NODE_STATES = ["up", "down", "paused", "unreachable", "stopped"];

// How far a metric's x may be from its event's time and still be read as the run's clock (ms).
const TIME_SLACK_MS = 250;

// Slices of the state that a lab's own panels fold (see panels.js): [{name, init, apply}].
const extensions = [];

/** Adds a slice `state.ext[name]`, made by init() and updated by apply(slice, event, state). */
export function extendFold(name, { init, apply: applyEvent }) {
  extensions.push({ name, init, apply: applyEvent });
}

export function emptyState() {
  return {
    ext: Object.fromEntries(extensions.map((x) => [x.name, x.init()])),
    k: 0, // events folded
    t: 0, // ms since the run started, of the last event folded
    last: null, // the last event folded
    phase: null, // label of the latest phase event
    nodes: {}, // name -> {name, role, state, note, fault}
    nodeOrder: [], // names, in order of appearance
    links: [], // ["a", "b"] pairs that exchanged messages, a < b
    lastMsg: null, // the latest message (or command drawn as one), for the diagram when nothing moves
    // Rows of the space-time diagram: {type: "msg" | "phase" | "fault", seq, t, ...}. A command is
    // drawn as a request and its reply (cmdRows) unless the engine sends `msg` events from the same
    // actor to the same node, which tell that exchange in the protocol's own words; the commands of
    // a pair drawn before its first message are taken out then (timelineCut counts such cuts).
    timeline: [],
    timelineCut: 0,
    msgPairs: {}, // "actor\u0000node" -> true for each pair that sent a msg
    messages: {}, // seq -> timeline row of each msg, to join replies to their requests
    commands: [], // rows of the command log: {kind: "cmd" | "fault" | "log", seq, t, actor, to, ...}
    // name -> {series: {name -> {x: [], y: []}}, seriesOrder: [], timeLike, xLabel, yLabel}; a sample's
    // optional data.x_label / data.y_label name its axes ("round", "latency (ms)").
    metrics: {},
    metricOrder: [],
    counters: {}, // name -> {count, last} for samples without x/y (a load generator's ticks)
    checks: {}, // invariant name -> {name, held, evidence, description}
    checkOrder: [],
    end: null, // data of the end event
    // Revision of each part, so a renderer can skip parts that did not change.
    rev: { nodes: 0, timeline: 0, commands: 0, metrics: 0, checks: 0, end: 0 },
  };
}

function ensureNode(state, name, role) {
  if (!name) return null;
  let node = state.nodes[name];
  if (!node) {
    // cmdIn/cmdOut/msgIn/msgOut count the requests a node received and sent, so the diagram can
    // place a node that declares no role by what it does (a command's target is a server).
    node = { name, role: role || null, state: "unknown", note: "", fault: null, seen: state.k, cmdIn: 0, cmdOut: 0, msgIn: 0, msgOut: 0 };
    state.nodes[name] = node;
    state.nodeOrder.push(name);
    state.rev.nodes++;
  } else if (role && !node.role) {
    node.role = role;
    state.rev.nodes++;
  }
  return node;
}

function addLink(state, a, b) {
  if (!a || !b || a === b) return;
  const [x, y] = a < b ? [a, b] : [b, a];
  if (!state.links.some(([p, q]) => p === x && q === y)) {
    state.links.push([x, y]);
    state.rev.nodes++;
  }
}

const appliers = {
  node(state, e) {
    const node = ensureNode(state, e.actor, e.data.role);
    if (!node) return;
    if (e.data.state) node.state = e.data.state;
    node.note = e.label || "";
    state.rev.nodes++;
  },

  state(state, e) {
    // A client's or a worker's snapshot says what it is when it declares no role.
    const hinted = ["client", "worker"].includes(e.data.type) ? e.data.type : null;
    const node = ensureNode(state, e.actor, e.data.role || hinted);
    if (!node) return;
    if (e.data.state) node.state = e.data.state;
    // A node seen answering again is past the fault that was marked on it.
    if (e.data.state === "up") node.fault = null;
    node.note = e.label || "";
    state.rev.nodes++;
  },

  msg(state, e) {
    const from = ensureNode(state, e.actor);
    const to = ensureNode(state, e.to);
    addLink(state, e.actor, e.to);
    if (e.data.reply_to == null && from && to && from !== to) {
      from.msgOut++;
      to.msgIn++;
    }
    const key = pairKey(e.actor, e.to);
    if (!state.msgPairs[key]) {
      state.msgPairs[key] = true;
      const kept = state.timeline.filter((row) => row.pair !== key);
      if (kept.length !== state.timeline.length) {
        state.timeline = kept;
        state.timelineCut++;
      }
    }
    const row = {
      type: "msg",
      seq: e.seq,
      t: e.t,
      from: e.actor,
      to: e.to,
      label: e.label || "",
      replyTo: e.data.reply_to ?? null,
      replySeq: null,
      failed: e.data.error != null, // a message that tells a failure (no answer, an error) is drawn red
    };
    // A reply joins its request, so the diagram can draw the pair as one round trip.
    const request = row.replyTo != null ? state.messages[row.replyTo] : null;
    if (request) request.replySeq = e.seq;
    state.messages[e.seq] = row;
    state.timeline.push(row);
    state.lastMsg = row;
    state.rev.timeline++;
    state.rev.nodes++;
  },

  cmd(state, e) {
    const d = e.data;
    state.commands.push({
      kind: "cmd",
      seq: e.seq,
      t: e.t,
      actor: e.actor,
      to: e.to || "",
      command: d.command ?? e.label ?? "",
      result: d.result,
      error: d.error,
      ms: d.ms,
      ok: d.error == null && d.ok !== false,
    });
    state.rev.commands++;
    const node = d.node || e.to;
    const from = ensureNode(state, e.actor);
    const to = ensureNode(state, node);
    if (from && to && from !== to) {
      from.cmdOut++;
      to.cmdIn++;
      addLink(state, e.actor, node);
    }
    if (!state.msgPairs[pairKey(e.actor, node)]) {
      const rows = cmdRows(e, node);
      state.timeline.push(...rows);
      state.lastMsg = rows.at(-1);
      state.rev.timeline++;
      state.rev.nodes++;
    }
  },

  fault(state, e) {
    const target = e.to || "";
    // A fault a user pressed names them (data.by); one with no `by` is the scenario's own, whatever
    // default actor its recorder gave it.
    const who = e.data.by || "scenario";
    const row = { type: "fault", seq: e.seq, t: e.t, actor: who, target, label: e.label || "", data: e.data };
    state.timeline.push(row);
    state.rev.timeline++;
    if (target && state.nodes[target]) {
      state.nodes[target].fault = e.label || e.data.kind || "fault";
      state.rev.nodes++;
    }
    state.commands.push({
      kind: "fault",
      seq: e.seq,
      t: e.t,
      actor: who,
      to: target,
      command: e.label || `fault ${e.data.kind || ""}`,
      result: e.data.healed ? "healed" : "injected",
      error: null,
      ms: null,
      ok: false,
    });
    state.rev.commands++;
  },

  phase(state, e) {
    state.phase = e.label || e.data.phase || null;
    const row = { type: "phase", seq: e.seq, t: e.t, label: e.label || e.data.phase || "" };
    state.timeline.push(row);
    state.rev.timeline++;
    state.rev.nodes++;
  },

  metric(state, e) {
    const d = e.data;
    const name = d.name || e.label || "metric";
    if (d.x == null || d.y == null) {
      // Samples without coordinates are ticks to count, not points to plot.
      const counter = state.counters[name] || (state.counters[name] = { count: 0, last: null });
      counter.count++;
      counter.last = d;
      state.rev.metrics++;
      return;
    }
    let metric = state.metrics[name];
    if (!metric) {
      metric = state.metrics[name] = { series: {}, seriesOrder: [] };
      state.metricOrder.push(name);
    }
    const seriesName = d.series == null ? name : String(d.series);
    let series = metric.series[seriesName];
    if (!series) {
      series = metric.series[seriesName] = { x: [], y: [] };
      metric.seriesOrder.push(seriesName);
    }
    series.x.push(d.x);
    series.y.push(d.y);
    // An x that is the run's own clock is time, shown as such; any other x is the engine's count.
    // (A small whole number near the start is a count, not the clock.)
    const onClock = Math.abs(d.x - e.t) <= TIME_SLACK_MS && (d.x >= 50 || !Number.isInteger(d.x));
    metric.timeLike = (metric.timeLike ?? true) && onClock;
    if (d.x_label) metric.xLabel = String(d.x_label);
    if (d.y_label) metric.yLabel = String(d.y_label);
    state.rev.metrics++;
  },

  log(state, e) {
    state.commands.push({
      kind: "log",
      seq: e.seq,
      t: e.t,
      actor: e.actor,
      to: e.to || "",
      command: e.label || "",
      result: null,
      error: null,
      ms: null,
      ok: true,
    });
    state.rev.commands++;
  },

  check(state, e) {
    const d = e.data;
    const name = d.name || e.label;
    if (!(name in state.checks)) state.checkOrder.push(name);
    state.checks[name] = { name, held: d.held ?? null, evidence: d.evidence, description: d.description || "" };
    state.rev.checks++;
  },

  end(state, e) {
    state.end = { ...e.data };
    for (const check of e.data.invariants || []) {
      if (!(check.name in state.checks)) state.checkOrder.push(check.name);
      state.checks[check.name] = { ...check, held: check.held ?? null };
    }
    state.rev.end++;
    state.rev.checks++;
  },
};

/**
 * A command as the space-time diagram draws a message: the request from the actor to the node and
 * the reply (its result or error) at the time the command returned, `ms` later.
 */
function cmdRows(e, node) {
  const d = e.data;
  const command = d.command ?? e.label ?? "";
  const pair = pairKey(e.actor, node);
  if (!node || node === e.actor) {
    return [{ type: "msg", seq: e.seq, t: e.t, from: e.actor, to: e.actor, label: command, replyTo: null, replySeq: null, cmd: true, pair }];
  }
  const failed = d.error != null || d.ok === false;
  const reply = failed ? `error: ${d.error ?? "failed"}` : d.result == null ? "nil" : typeof d.result === "string" ? d.result : JSON.stringify(d.result);
  const replySeq = `${e.seq}r`;
  const started = d.ms != null ? e.t - d.ms : e.t;
  return [
    { type: "msg", seq: e.seq, t: started, from: e.actor, to: node, label: command, replyTo: null, replySeq, cmd: true, pair },
    { type: "msg", seq: replySeq, t: e.t, from: node, to: e.actor, label: reply, replyTo: e.seq, replySeq: null, cmd: true, failed, pair },
  ];
}

/** Whether the space-time diagram draws command event `e` as a request and its reply. */
export function drawsCommand(state, e) {
  return !state.msgPairs[pairKey(e.actor, e.data?.node || e.to)];
}

function pairKey(from, to) {
  return `${from}\u0000${to || from}`;
}

/** Folds one event into `state` (mutating it) and returns it. */
export function apply(state, event) {
  const e = { ...event, data: event.data || {} };
  const applier = appliers[e.kind];
  if (applier) applier(state, e);
  for (const x of extensions) x.apply(state.ext[x.name], e, state);
  state.k = e.seq;
  state.t = e.t;
  state.last = e;
  return state;
}

/** The view after events 1..k, built fresh; `events` is not changed. */
export function fold(events, k) {
  const state = emptyState();
  const upto = Math.max(0, Math.min(k, events.length));
  for (let i = 0; i < upto; i++) apply(state, events[i]);
  return state;
}

/** Milliseconds as a viewer reads them: "850 ms", "12.3 s". */
export function formatT(ms) {
  if (ms == null || Number.isNaN(ms)) return "";
  return ms < 1000 ? `${ms.toFixed(ms < 10 ? 1 : 0)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

/** Text cut to `n` characters, with an ellipsis when cut. */
export function truncate(text, n) {
  const s = String(text ?? "");
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}
