// The verdict panel: the checker's verdict from the `end` event, the expected verdict beside it,
// each invariant with whether it held and the evidence the checker gave, and the faults injected
// during the run (who, what, when), since a verdict that differs from the expected one is most
// often explained by them. A run that ended without an `end` event (stopped while queued) is told
// from its status frame, whose reason the server keeps. When a user's fault came before a broken
// invariant, the panel says what it cost in the checker's terms: "You killed db1 at 12.90 s;
// all_nodes_answered broke: 7 probes went unanswered", from the evidence's `summary` (or its counts).

import { formatT, truncate } from "./fold.js";
import { html } from "./svg.js";

const HELD = { true: ["held", "pass"], false: ["broken", "fail"], null: ["unknown", "unknown"] };
const FINISHED = ["done", "failed", "cancelled"];
// What a fault of each kind did to its target, as a sentence says it; other kinds are "injected".
const DID = {
  kill: "killed",
  restart: "restarted",
  pause: "paused",
  resume: "resumed",
  partition: "cut off",
  heal: "healed",
  latency: "slowed down",
  crash: "crashed",
  expire: "expired the session of",
  "kill-connections": "killed the connections on",
  "expire-session": "expired the session on",
};

/** The faults of the view so far: [{seq, t, who, what, byUser}], oldest first. */
export function faultsOf(state) {
  return state.timeline
    .filter((row) => row.type === "fault")
    .map((row) => ({
      seq: row.seq,
      t: row.t,
      who: row.data?.by || "the scenario",
      byUser: Boolean(row.data?.by),
      kind: row.data?.kind || "",
      target: row.target || "",
      what: row.label || `${row.data?.kind || "fault"} ${row.target || ""}`.trim(),
    }));
}

/** "student: kill w1 at 3.20 s" */
export function describeFault(fault) {
  return `${fault.who}: ${fault.what} at ${formatT(fault.t)}`;
}

/** "you killed db1 at 12.90 s" (`viewer`: the user looking, who is "you"). */
export function faultDeed(fault, viewer) {
  const who = viewer && fault.who === viewer ? "you" : fault.who;
  const did = DID[fault.kind] && fault.target ? `${DID[fault.kind]} ${fault.target}` : `injected ${fault.what}`;
  return `${who} ${did} at ${formatT(fault.t)}`;
}

/** An invariant's evidence in a line: the checker's `summary`, else the counts it holds. */
export function evidenceSummary(evidence) {
  if (evidence == null) return "";
  if (typeof evidence !== "object") return truncate(String(evidence), 160);
  if (typeof evidence.summary === "string") return evidence.summary;
  const counts = [];
  for (const [key, value] of Object.entries(evidence)) {
    const what = key.replace(/_/g, " ");
    if (Array.isArray(value) && value.length) counts.push(`${what}: ${value.length}`);
    else if (typeof value === "number") counts.push(`${what}: ${value.toLocaleString("en")}`);
  }
  return counts.slice(0, 4).join(", ");
}

/** What the users' faults cost, or "" when no user's fault came before a broken invariant. */
export function faultCost(state, faults, viewer) {
  const injected = faults.filter((f) => f.byUser);
  const broken = state.checkOrder.map((name) => state.checks[name]).filter((c) => c && c.held === false);
  if (!state.end || !injected.length || !broken.length) return "";
  const deeds = injected.map((f) => faultDeed(f, viewer)).join(", then ");
  const costs = broken.map((c) => {
    const summary = evidenceSummary(c.evidence);
    return summary ? `${c.name} broke: ${summary}` : `${c.name} broke`;
  });
  return `${deeds.charAt(0).toUpperCase()}${deeds.slice(1)}; ${costs.join("; ")}.`;
}

/** What a queued run waits for, from its status frame's `queue`. */
export function queueText(queue) {
  if (!queue) return "queued: waiting for a worker";
  const ahead = queue.ahead || 0;
  const place = ahead === 0 ? "next in line" : `${ahead} run${ahead === 1 ? "" : "s"} ahead`;
  const busy = queue.running ? ", waiting for a free worker" : ", waiting for a worker to pick it up";
  return `queued: ${place}${busy}`;
}

export class VerdictPanel {
  constructor({ verdict, expected, reason, cost, faults, list, invariants, viewer }) {
    this.verdictEl = verdict;
    this.costEl = cost;
    this.viewer = viewer || "";
    this.expectedEl = expected;
    this.reasonEl = reason;
    this.faultsEl = faults;
    this.listEl = list;
    this.declared = invariants || []; // [{name, description}] from the scenario
    this.key = null;
    this.run = { status: null }; // the latest status frame, for a run that ends with no `end`
    this.atPresent = true;
  }

  /** The run's latest status, and whether the view shows the present (not a scrubbed past). */
  setRun(run, atPresent) {
    this.run = run;
    this.atPresent = atPresent;
  }

  sync(state, { rebuild = false } = {}) {
    const run = this.run;
    const key = [
      state.rev.checks, state.rev.end, state.rev.timeline, state.checkOrder.length, state.end ? 1 : 0,
      run.status, run.failure_reason, JSON.stringify(run.queue || null), this.atPresent,
    ].join("/"); // prettier-ignore
    if (!rebuild && key === this.key) return;
    this.key = key;
    const faults = faultsOf(state);
    this.renderVerdict(state, faults);
    this.renderCost(state, faults);
    this.renderFaults(faults);
    this.renderInvariants(state, faults);
  }

  /** The end of the run as the panel tells it: the `end` event, or the final status frame. */
  endOf(state) {
    if (state.end) return state.end;
    const run = this.run;
    if (this.atPresent && FINISHED.includes(run.status)) {
      return { status: run.status, verdict: run.verdict || "unknown", expected: run.expected, reason: run.failure_reason };
    }
    return null;
  }

  renderVerdict(state, faults) {
    const end = this.endOf(state);
    const v = this.verdictEl;
    this.expectedEl.replaceChildren();
    if (end) {
      v.dataset.verdict = end.verdict || "unknown";
      v.className = `verdict verdict--${end.verdict || "unknown"}`;
      v.textContent = end.verdict || "unknown";
      const injected = faults.filter((f) => f.byUser);
      if (end.expected && end.status && end.status !== "done") {
        // A run that did not finish was not judged: its verdict is no surprise to flag.
        const how = { failed: "the run failed", cancelled: "the run was stopped" }[end.status] || `the run is ${end.status}`;
        this.expectedEl.append(html("span", {}, `expected ${end.expected} · not judged: ${how}`));
      } else if (end.expected) {
        const matches = end.expected === end.verdict;
        const explained = !matches && end.status === "done" && injected.length > 0;
        const word = matches ? "as expected" : explained ? "unexpected, explained by the faults injected" : "unexpected";
        this.expectedEl.append(
          html("span", {}, `expected ${end.expected} · `),
          html("strong", { className: matches ? "ok" : "bad", "data-testid": "verdict-match", dataset: { explained: explained ? "yes" : "" } }, word),
        );
      }
      this.reasonEl.textContent = end.reason ? `Why: ${end.reason}` : "";
      this.reasonEl.hidden = !end.reason;
    } else {
      v.dataset.verdict = "";
      v.className = "verdict verdict--pending";
      v.textContent = state.checkOrder.length ? "checking…" : "no verdict yet";
      const queued = this.atPresent && this.run.status === "queued";
      const past = !this.atPresent && FINISHED.includes(this.run.status);
      this.expectedEl.textContent = queued
        ? `${queueText(this.run.queue)}. The checker judges the run when it ends.`
        : past
          ? "You are viewing the run before its end; the checker's verdict comes with the end (▶| goes there)."
          : "The checker judges the run when it ends.";
      this.reasonEl.textContent = "";
      this.reasonEl.hidden = true;
    }
  }

  renderCost(state, faults) {
    if (!this.costEl) return;
    const text = faultCost(state, faults, this.viewer);
    this.costEl.textContent = text;
    this.costEl.hidden = !text;
  }

  renderFaults(faults) {
    if (!this.faultsEl) return;
    this.faultsEl.replaceChildren();
    this.faultsEl.hidden = faults.length === 0;
    if (!faults.length) return;
    this.faultsEl.append(html("h3", { className: "small" }, "Faults during the run"));
    const list = html("ul", { className: "invariants-list" });
    for (const fault of faults) {
      list.append(html("li", { dataset: { seq: fault.seq, who: fault.who }, "data-testid": "verdict-fault" }, describeFault(fault)));
    }
    this.faultsEl.append(list);
  }

  renderInvariants(state, faults) {
    this.listEl.replaceChildren();
    const names = [...this.declared.map((i) => i.name)];
    for (const name of state.checkOrder) if (!names.includes(name)) names.push(name);
    for (const name of names) {
      const check = state.checks[name];
      const declared = this.declared.find((i) => i.name === name);
      const li = html("li", { className: "invariant", dataset: { invariant: name, held: check ? String(check.held) : "pending", hl: `inv:${name}` } });
      const head = html("div", { className: "invariant__head" });
      if (check) {
        const [word, tone] = HELD[String(check.held)] || HELD.null;
        head.append(html("span", { className: `tag tag--${tone}` }, word));
      } else {
        head.append(html("span", { className: "tag tag--pending" }, "not checked yet"));
      }
      head.append(html("code", {}, name));
      li.append(head);
      const description = check?.description || declared?.description;
      if (description) li.append(html("p", { className: "invariant__description" }, description));
      // What the checker found, in a line, before the evidence it comes from.
      const found = check && check.held !== null ? evidenceSummary(check.evidence) : "";
      if (found) li.append(html("p", { className: "invariant__summary", "data-testid": "invariant-summary" }, `Found: ${found}.`));
      if (check?.held === false && faults.length) {
        // The checker runs after the protocol, so every fault of the run came before this verdict.
        const text = `Broken after ${faults.map(describeFault).join("; ")}.`;
        li.append(html("p", { className: "failure-reason", "data-testid": "invariant-faults" }, text));
      }
      if (check && check.evidence !== undefined && check.evidence !== null) {
        const details = html("details", { className: "evidence" });
        details.append(html("summary", {}, "evidence"));
        details.append(html("pre", {}, typeof check.evidence === "string" ? check.evidence : JSON.stringify(check.evidence, null, 2)));
        li.append(details);
      }
      this.listEl.append(li);
    }
    if (!names.length) this.listEl.append(html("li", { className: "muted" }, "This scenario declares no invariants."));
  }
}
