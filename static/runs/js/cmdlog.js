// The command log: every SQL / Redis / ZooKeeper command sent, with its result or error and how
// long it took; faults and log lines are interleaved in order. Newest at the bottom.

import { formatT, truncate } from "./fold.js";
import { html } from "./svg.js";

export class CommandLog {
  constructor(table, scroller, counter) {
    this.tbody = table.tBodies[0];
    this.scroller = scroller;
    this.counter = counter;
    this.rendered = []; // seq of each row drawn
    this.emptyRow = html("tr", { className: "cmdlog__empty" });
    this.emptyRow.append(html("td", { colspan: 6 }, "No commands yet."));
    this.tbody.append(this.emptyRow);
  }

  sync(state, { rebuild = false } = {}) {
    const rows = state.commands;
    const n = this.rendered.length;
    const diverged = rows.length < n || (n > 0 && rows[n - 1].seq !== this.rendered[n - 1]);
    if (!rebuild && !diverged && rows.length === n) return;
    const stick = rebuild || this.scroller.scrollTop + this.scroller.clientHeight >= this.scroller.scrollHeight - 40;
    if (rebuild || diverged) {
      // Going back in time: drop the rows that had not happened yet.
      let keep = 0;
      while (keep < n && keep < rows.length && rows[keep].seq === this.rendered[keep]) keep++;
      const trs = this.tbody.querySelectorAll("tr[data-seq]");
      for (let i = trs.length - 1; i >= keep; i--) trs[i].remove();
      this.rendered.length = keep;
    }
    const fresh = rows.length - this.rendered.length;
    for (let i = this.rendered.length; i < rows.length; i++) {
      this.tbody.append(this.row(rows[i], fresh <= 3));
      this.rendered.push(rows[i].seq);
    }
    this.emptyRow.hidden = rows.length > 0;
    if (this.counter) {
      // Counts what the rows are, so a log of only faults or log lines does not read "0 commands".
      const cmds = rows.filter((r) => r.kind === "cmd");
      const errors = cmds.filter((r) => !r.ok).length;
      const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
      const parts = [];
      if (cmds.length) parts.push(plural(cmds.length, "command") + (errors ? ` (${errors} failed)` : ""));
      const faults = rows.filter((r) => r.kind === "fault").length;
      if (faults) parts.push(plural(faults, "fault"));
      const logs = rows.filter((r) => r.kind === "log").length;
      if (logs) parts.push(plural(logs, "log line"));
      this.counter.textContent = parts.join(", ");
    }
    if (stick) this.scroller.scrollTop = this.scroller.scrollHeight;
  }

  row(r, highlight) {
    const failed = r.kind === "cmd" && !r.ok;
    const tr = html("tr", {
      className: `cmdlog__row cmdlog__row--${r.kind}${failed ? " is-error" : ""}${highlight ? " is-new" : ""}`,
      dataset: { seq: r.seq, kind: r.kind, hl: `cmd:${r.seq}` },
      "data-testid": r.kind === "cmd" ? "cmd-row" : null,
    });
    tr.append(html("td", { className: "num muted" }, formatT(r.t)));
    tr.append(html("td", { className: "cmdlog__who" }, r.to ? `${r.actor} → ${r.to}` : r.actor));
    const command = html("td", { className: "cmdlog__command" });
    command.append(html("code", {}, truncate(r.command, 160)));
    if (r.command && r.command.length > 160) command.title = r.command;
    tr.append(command);
    let outcome;
    if (r.kind === "fault") outcome = html("td", { className: "cmdlog__fault" }, `⚡ fault ${r.result || ""}`);
    else if (r.kind === "log") outcome = html("td", { className: "muted" }, "log");
    else if (failed) outcome = html("td", { className: "cmdlog__error" }, truncate(r.error || "failed", 200));
    else outcome = html("td", { className: "cmdlog__result" }, truncate(shown(r.result), 120));
    const full = r.error || shown(r.result);
    if (full.length > 120) outcome.title = full;
    tr.append(outcome);
    tr.append(html("td", { className: "num" }, r.ms == null ? "" : Number(r.ms).toFixed(r.ms < 10 ? 2 : 1)));
    tr.append(html("td", { className: "num muted" }, `#${r.seq}`));
    return tr;
  }
}

/** A command's result as text: strings as they are, anything else as JSON ([null, -2], not ",-2"). */
function shown(result) {
  if (result == null) return "";
  return typeof result === "string" ? result : JSON.stringify(result);
}
