// A task's attempts as the panel shows them: their chips in the worker lanes, their titles, and
// where their bars end on the timeline.

import { html } from "../../runs/js/svg.js";
import { formatT } from "../../runs/js/fold.js";
import { formatBytes } from "./bytes.js";
import { formatCount } from "./format.js";

const TASK_HELP = {
  idle: "waiting for a worker",
  in_progress: "running on a worker",
  completed: "done; its output counts",
  failed: "the attempt failed (its worker died); the task is run again",
  timed_out: "the attempt did not finish in time; the task is run again",
  ignored: "a late or duplicate attempt; its output was discarded",
};

const MARKS = { failed: "✕", timed_out: "◷", ignored: "⊘" };

/** Where an attempt's bar ends: the worker's own end, else where the coordinator declared its worker
 * dead, else now (still running, perhaps on a stalled worker). */
export function attemptEnd(a, now) {
  if (a.end_ms != null) return a.end_ms;
  if (a.state === "failed" && a.lostAt != null) return Math.max(a.lostAt, a.start_ms);
  return Math.max(now, a.start_ms);
}

export function isOpen(a) {
  return a.end_ms == null && a.state !== "failed";
}

/** ✕, ◷ and ⊘ for each way the attempt was lost, in order (a stalled attempt is timed out, then
 * ignored when it finally reports). */
export function marksOf(a) {
  return (a.history || [a.state]).map((st) => MARKS[st] || "").join("");
}

export function tasksOf(round, kind) {
  return round.taskOrder.map((id) => round.tasks[id]).filter((t) => t.kind === kind);
}

export function attemptsOf(round, kind) {
  const out = [];
  for (const task of tasksOf(round, kind)) {
    for (const key of task.attemptOrder) out.push({ task, attempt: task.attempts[key] });
  }
  const when = (a) => a.start_ms ?? a.seenAt ?? 0;
  return out.sort((a, b) => when(a.attempt) - when(b.attempt) || a.task.n - b.task.n || a.attempt.attempt - b.attempt.attempt);
}

export function attemptTitle(task, a) {
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

export function chip(task, a) {
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
