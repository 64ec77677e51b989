// The verdict panel: the checker's verdict from the `end` event, the expected verdict beside it,
// each invariant with whether it held and the evidence the checker gave, and the faults injected
// during the run (who, what, when), since a verdict that differs from the expected one is most
// often explained by them. A run that ended without an `end` event (stopped while queued) is told
// from its status frame, whose reason the server keeps.

import { formatT } from "./fold.js";
import { html } from "./svg.js";

const HELD = { true: ["held", "pass"], false: ["broken", "fail"], null: ["unknown", "unknown"] };
const FINISHED = ["done", "failed", "cancelled"];

/** The faults of the view so far: [{seq, t, who, what, byUser}], oldest first. */
export function faultsOf(state) {
  return state.timeline
    .filter((row) => row.type === "fault")
    .map((row) => ({
      seq: row.seq,
      t: row.t,
      who: row.data?.by || row.actor || "the scenario",
      byUser: Boolean(row.data?.by),
      what: row.label || `${row.data?.kind || "fault"} ${row.target || ""}`.trim(),
    }));
}

/** "student: kill w1 at 3.20 s" */
export function describeFault(fault) {
  return `${fault.who}: ${fault.what} at ${formatT(fault.t)}`;
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
  constructor({ verdict, expected, reason, faults, list, invariants }) {
    this.verdictEl = verdict;
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
      this.expectedEl.textContent = queued
        ? `${queueText(this.run.queue)}. The checker judges the run when it ends.`
        : "The checker judges the run when it ends.";
      this.reasonEl.textContent = "";
      this.reasonEl.hidden = true;
    }
  }

  renderFaults(faults) {
    if (!this.faultsEl) return;
    this.faultsEl.replaceChildren();
    this.faultsEl.hidden = faults.length === 0;
    if (!faults.length) return;
    this.faultsEl.append(html("h3", { className: "small" }, "Faults injected during the run"));
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
      const li = html("li", { className: "invariant", dataset: { invariant: name, held: check ? String(check.held) : "pending" } });
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
