// The verdict panel: the checker's verdict from the `end` event, the expected verdict beside it,
// and each invariant with whether it held and the evidence the checker gave.

import { html } from "./svg.js";

const HELD = { true: ["held", "pass"], false: ["broken", "fail"], null: ["unknown", "unknown"] };

export class VerdictPanel {
  constructor({ verdict, expected, reason, list, invariants }) {
    this.verdictEl = verdict;
    this.expectedEl = expected;
    this.reasonEl = reason;
    this.listEl = list;
    this.declared = invariants || []; // [{name, description}] from the scenario
    this.key = null;
  }

  sync(state, { rebuild = false } = {}) {
    const key = `${state.rev.checks}/${state.rev.end}/${state.checkOrder.length}/${state.end ? 1 : 0}`;
    if (!rebuild && key === this.key) return;
    this.key = key;
    this.renderVerdict(state);
    this.renderInvariants(state);
  }

  renderVerdict(state) {
    const end = state.end;
    const v = this.verdictEl;
    if (end) {
      v.dataset.verdict = end.verdict || "unknown";
      v.className = `verdict verdict--${end.verdict || "unknown"}`;
      v.textContent = end.verdict || "unknown";
      this.expectedEl.replaceChildren();
      if (end.expected) {
        const matches = end.expected === end.verdict;
        this.expectedEl.append(
          html("span", {}, `expected ${end.expected} · `),
          html("strong", { className: matches ? "ok" : "bad", "data-testid": "verdict-match" }, matches ? "as expected" : "unexpected"),
        );
      }
      if (end.status && end.status !== "done") this.expectedEl.append(html("span", { className: "muted" }, ` · run ${end.status}`));
      this.reasonEl.textContent = end.reason ? `Why: ${end.reason}` : "";
      this.reasonEl.hidden = !end.reason;
    } else {
      v.dataset.verdict = "";
      v.className = "verdict verdict--pending";
      v.textContent = state.checkOrder.length ? "checking…" : "no verdict yet";
      this.expectedEl.textContent = "The checker judges the run when it ends.";
      this.reasonEl.textContent = "";
      this.reasonEl.hidden = true;
    }
  }

  renderInvariants(state) {
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
