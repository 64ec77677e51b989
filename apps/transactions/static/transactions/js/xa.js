// The transactions lab's panel on the run page: one row per global transaction (gtrid), one column
// per participant with its XA branch state; the coordinator's decision log; and the locks an
// in-doubt (PREPARED) branch holds, with the client waiting on them. Folded from the run's events
// like every other panel (runs/js/panels.js), so it is the same live, paused and scrubbed.

import { registerPanel } from "../../runs/js/panels.js";
import { formatT } from "../../runs/js/fold.js";
import { html } from "../../runs/js/svg.js";

const STATES = ["ACTIVE", "IDLE", "PREPARED", "COMMITTED", "ROLLED BACK"];
const HELP = {
  ACTIVE: "XA START: the branch is doing its work",
  IDLE: "XA END: the work is done, not yet prepared",
  PREPARED: "voted yes: it can no longer decide alone and keeps its row locks",
  COMMITTED: "committed",
  "ROLLED BACK": "rolled back",
};

function init() {
  return {
    rev: 0,
    coordinator: null, // "up" | "down"
    participants: [],
    order: [], // gtrids, in order of appearance
    tx: {}, // gtrid -> {gtrid, n, from, to, amount, participants, branches: {p: {state, locks, step}}, crashed}
    decisions: [], // {seq, t, actor, text, gtrid}
    client: null, // the bank client: {state, participant, lock, error, blocked_ms, label}
  };
}

function transaction(slice, gtrid) {
  if (!slice.tx[gtrid]) {
    slice.tx[gtrid] = { gtrid, n: null, from: null, to: null, amount: null, participants: [], branches: {}, crashed: null };
    slice.order.push(gtrid);
  }
  return slice.tx[gtrid];
}

function apply(slice, e) {
  const d = e.data;
  if (e.kind === "node") {
    if (d.role === "participant" && !slice.participants.includes(e.actor)) slice.participants.push(e.actor);
    if (e.actor === "coordinator" && d.state) slice.coordinator = d.state;
    slice.rev++;
  } else if (e.kind === "phase" && d.phase === "work" && d.gtrid) {
    Object.assign(transaction(slice, d.gtrid), { n: d.n, from: d.from, to: d.to, amount: d.amount, participants: d.participants });
    slice.rev++;
  } else if (e.kind === "state" && d.gtrid && STATES.includes(d.state)) {
    const tx = transaction(slice, d.gtrid);
    const before = tx.branches[e.actor] || {};
    tx.branches[e.actor] = { state: d.state, locks: d.locks || before.locks || [], step: d["3pc"] || null, by: d.by || null };
    if (!slice.participants.includes(e.actor)) slice.participants.push(e.actor);
    slice.rev++;
  } else if (e.kind === "state" && e.actor === "client") {
    slice.client = { state: d.state, participant: d.participant, lock: d.lock, error: d.error, blocked_ms: d.blocked_ms, label: e.label, t: e.t };
    slice.rev++;
  } else if (e.kind === "log" && d.decision && d.gtrid) {
    slice.decisions.push({ seq: e.seq, t: e.t, actor: e.actor, gtrid: d.gtrid, text: `${d.decision} ${d.gtrid} (${(d.participants || []).join(", ")})` });
    slice.rev++;
  } else if (e.kind === "log" && d.decisions) {
    slice.decisions.push({ seq: e.seq, t: e.t, actor: e.actor, gtrid: null, text: e.label });
    slice.rev++;
  } else if (e.kind === "log" && d.point && d.gtrid) {
    transaction(slice, d.gtrid).crashed = d.point;
    slice.rev++;
  }
}

function stateBadge(branch) {
  const cls = `xa-state xa-state--${branch.state.toLowerCase().replace(" ", "-")}`;
  const text = branch.step ? `${branch.state} · ${branch.step}` : branch.state;
  return html("span", { className: cls, title: HELP[branch.state] }, text);
}

function account(pair) {
  return pair ? `${pair[0]} #${pair[1]}` : "?";
}

class XaPanel {
  constructor(body) {
    this.body = body;
    this.caption = html("p", { className: "xa-caption", dataset: { testid: "xa-caption" } });
    this.tableWrap = html("div", { className: "xa-scroll" });
    this.side = html("div", { className: "xa-side" });
    const legend = html("p", { className: "legend small" });
    for (const state of STATES) {
      legend.append(stateBadge({ state }), " ");
    }
    legend.append(html("span", { className: "muted" }, " · a PREPARED branch while the coordinator is down is in doubt"));
    body.append(this.caption, html("div", { className: "xa-grid" }, null));
    body.lastChild.append(this.tableWrap, this.side);
    body.append(legend);
    this.shown = null;
    this.shownRev = -1;
  }

  sync(slice) {
    if (slice === this.shown && slice.rev === this.shownRev) return;
    this.shown = slice;
    this.shownRev = slice.rev;
    this.renderCaption(slice);
    this.renderTable(slice);
    this.renderSide(slice);
  }

  inDoubt(slice) {
    const found = [];
    for (const gtrid of slice.order) {
      for (const [p, branch] of Object.entries(slice.tx[gtrid].branches)) {
        if (branch.state === "PREPARED") found.push({ gtrid, participant: p, branch });
      }
    }
    return found;
  }

  renderCaption(slice) {
    const down = slice.coordinator === "down";
    const doubt = this.inDoubt(slice);
    let text = `Coordinator ${slice.coordinator || "not started"}.`;
    if (down && doubt.length) text += ` ${doubt.length} prepared branch${doubt.length > 1 ? "es are" : " is"} in doubt: only the coordinator knows the decision.`;
    else if (down) text += " Nothing is prepared, so nothing is in doubt.";
    else if (doubt.length) text += ` ${doubt.length} branch${doubt.length > 1 ? "es" : ""} prepared, waiting for the decision.`;
    this.caption.textContent = text;
    this.caption.classList.toggle("is-fault", down);
  }

  renderTable(slice) {
    const table = html("table", { className: "table table--compact xa-table", dataset: { testid: "xa-table" } });
    const head = html("tr");
    head.append(html("th", {}, "global transaction"), html("th", {}, "transfer"));
    for (const p of slice.participants) head.append(html("th", {}, p));
    table.append(html("thead"));
    table.tHead.append(head);
    const tbody = html("tbody");
    const down = slice.coordinator === "down";
    for (const gtrid of slice.order) {
      const tx = slice.tx[gtrid];
      const row = html("tr", { dataset: { gtrid } });
      const name = html("td", {}, null);
      name.append(html("code", {}, gtrid));
      if (tx.crashed) name.append(html("span", { className: "xa-crash" }, ` coordinator crashed ${tx.crashed}`));
      row.append(name);
      row.append(html("td", { className: "muted" }, tx.from ? `${tx.amount} from ${account(tx.from)} to ${account(tx.to)}` : ""));
      for (const p of slice.participants) {
        const cell = html("td", { dataset: { participant: p } });
        const branch = tx.branches[p];
        if (branch) {
          cell.append(stateBadge(branch));
          if (branch.state === "PREPARED" && down) cell.append(html("span", { className: "xa-doubt" }, " in doubt"));
          if (branch.by) cell.append(html("span", { className: "muted small" }, ` by ${branch.by}`));
        } else {
          cell.append(html("span", { className: "muted" }, tx.participants.includes(p) ? "…" : "—"));
        }
        row.append(cell);
      }
      tbody.append(row);
    }
    table.append(tbody);
    if (!slice.order.length) {
      this.tableWrap.replaceChildren(html("p", { className: "muted" }, "No global transaction yet."));
    } else {
      this.tableWrap.replaceChildren(table);
    }
  }

  renderSide(slice) {
    const log = html("div", { className: "xa-log", dataset: { testid: "xa-decisions" } });
    log.append(html("h3", { className: "small-heading" }, "Coordinator's decision log"));
    if (!slice.decisions.length) {
      log.append(html("p", { className: "muted small" }, "Empty. Presumed abort: a transaction with no commit record is rolled back."));
    } else {
      const list = html("ol", { className: "xa-log__list" });
      for (const entry of slice.decisions) {
        const item = html("li");
        item.append(html("span", { className: "muted small" }, `${formatT(entry.t)} ${entry.actor}: `), entry.text);
        list.append(item);
      }
      log.append(list);
    }

    const locks = html("div", { className: "xa-locks", dataset: { testid: "xa-locks" } });
    locks.append(html("h3", { className: "small-heading" }, "Locks held by prepared branches"));
    const doubt = this.inDoubt(slice);
    const client = slice.client;
    if (!doubt.length) locks.append(html("p", { className: "muted small" }, "None."));
    for (const { gtrid, participant, branch } of doubt) {
      const box = html("div", { className: "xa-lock" });
      box.append(html("strong", {}, `${participant}`), ` holds for ${gtrid}: `);
      box.append(html("code", {}, branch.locks.join(", ") || "its rows"));
      const waiting = client && client.state === "WAITING" && client.participant === participant && branch.locks.includes(client.lock);
      if (waiting) {
        box.append(html("p", { className: "xa-waiter" }, `Client waits for ${client.lock} on ${participant} (lock wait; it gives up with error 1205)`));
      }
      locks.append(box);
    }
    if (client && client.state !== "WAITING") {
      const tone = client.error ? "xa-waiter" : "muted small";
      const how = client.error ? `gave up after ${formatT(client.blocked_ms)}: error ${client.error}` : `got it after ${formatT(client.blocked_ms)}`;
      locks.append(html("p", { className: tone }, `Client asking for ${client.lock} on ${client.participant}: ${how}`));
    } else if (client && client.state === "WAITING" && !doubt.some((x) => x.participant === client.participant)) {
      locks.append(html("p", { className: "muted small" }, `Client asking for ${client.lock} on ${client.participant}…`));
    }
    this.side.replaceChildren(log, locks);
  }
}

registerPanel({
  name: "xa",
  title: "XA branches",
  init,
  apply,
  mount: (body) => new XaPanel(body),
});
