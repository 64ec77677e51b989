// The locks lab's panel on the run page: one lane per client, the lock's live state (Redis lease,
// Redlock nodes, ZooKeeper queue, InnoDB lock waits and deadlocks) and the critical sections on the
// storage's clock. Folded from the run's events like every other panel (runs/js/panels.js), so it
// is the same live, paused and scrubbed.

import { describeMetric } from "../../runs/js/charts.js";
import { registerPanel } from "../../runs/js/panels.js";
import { formatT } from "../../runs/js/fold.js";
import { html } from "../../runs/js/svg.js";
import { laneSpan, renderLanes } from "./lanes.js";
import { renderLockState, setGauge } from "./lock-state.js";
import { renderSections } from "./sections.js";
import { apply, init, leaseLeft, overlaps } from "./slice.js";

const TICK_MS = 100;

// The sweeps' chart points are per number of clients (apps/locks/engine/db.py, zk.py).
for (const name of ["throughput (ops/s)", "latency (ms)", "retries or lock waits per op", "watch notifications"]) {
  describeMetric(name, { x: "clients" });
}

// The legend: [group, key, text, when it applies (slice) => bool].
const always = () => true;
const LEGEND = [
  ["state", "idle", "idle", always],
  ["state", "acquiring", "acquiring", always],
  ["state", "waiting", "waiting", always],
  ["state", "holding", "holding", always],
  ["state", "paused", "paused", always],
  ["state", "crashed", "crashed", always],
  ["cs", "ok", "critical section", always],
  ["cs", "overlap", "overlap", always],
  ["cs", "rejected", "rejected write", (s) => s.sectionOrder.some((id) => s.sections[id].token != null)],
  ["cs", "open", "still inside", always],
  ["arrow", "watch", "watches", (s) => s.zk != null],
  ["arrow", "wait", "waits for", (s) => s.waits != null || s.deadlocks.length > 0],
  ["arrow", "cycle", "deadlock", (s) => s.deadlocks.length > 0],
];

class LocksPanel {
  constructor(body) {
    this.body = body;
    this.caption = html("p", { className: "locks-caption", dataset: { testid: "locks-caption" } });
    this.lanesBox = html("div", { className: "locks-col" });
    this.lanesHead = html("h3", { className: "locks-h" }, "Clients");
    this.lanesNote = html("span", { className: "locks-h__note" });
    this.lanesHead.append(this.lanesNote);
    this.lanesBox.append(this.lanesHead);
    this.lanes = html("div");
    this.lanesBox.append(this.lanes);
    this.lockBox = html("div", { className: "locks-col", dataset: { testid: "locks-lock" } });
    this.sections = html("div");
    const grid = html("div", { className: "locks-grid" });
    grid.append(this.lanesBox, this.lockBox);
    this.legend = html("p", { className: "legend small locks-legend" });
    this.main = html("div");
    this.main.append(this.caption, grid, this.sections, this.legend);
    this.empty = html("p", { className: "muted locks-empty", hidden: true, dataset: { testid: "locks-empty" } },
      "This run records no client of its own to draw: a sweep's measurements are in the charts below.");
    body.append(this.main, this.empty);
    this.shown = null;
    this.shownRev = -1;
    this.shownT = null;
    this.ttls = [];
    this.viewT = 0;
    this.syncedAt = 0;
    this.timer = setInterval(() => this.tick(), TICK_MS);
  }

  sync(slice, state) {
    this.viewT = state.t;
    this.syncedAt = performance.now();
    // The lanes' strips grow with the view's time, so they follow every event, not only ours.
    if (slice === this.shown && slice.rev === this.shownRev && state.t === this.shownT) return;
    const changed = slice !== this.shown || slice.rev !== this.shownRev;
    this.shown = slice;
    this.shownRev = slice.rev;
    this.shownT = state.t;
    this.lanes.replaceChildren(renderLanes(slice, state));
    const [from, to] = laneSpan(slice, state);
    this.lanesNote.textContent = `states on the run's clock, ${formatT(from)} – ${formatT(to)}`;
    // A finished run with nothing for this panel (a sweep that only measures) says so in one line.
    const nothing = state.end != null && !slice.clientOrder.length && !slice.sectionOrder.length && !slice.leaseOrder.length && !slice.zk;
    this.main.hidden = nothing;
    this.empty.hidden = !nothing;
    if (!changed) {
      // A section still open grows with the view's time.
      if (slice.sectionOrder.some((id) => slice.sections[id].end == null)) this.sections.replaceChildren(renderSections(slice, state.t));
      return this.tick();
    }
    const lock = renderLockState(slice, state);
    this.ttls = lock.ttls;
    this.lockBox.replaceChildren(lock.el);
    this.sections.replaceChildren(renderSections(slice, state.t));
    this.caption.replaceChildren(...caption(slice, state));
    this.legend.replaceChildren(...legend(slice));
    this.caption.classList.toggle("is-bad", overlaps(slice, Infinity).some((p) => !p.shared));
    this.tick();
  }

  /** The view's time: the last event's, running on with the wall clock while the live view waits. */
  now() {
    const page = document.body.dataset;
    const player = window.distlab?.player;
    const running = document.getElementById("run-status")?.dataset.status === "running";
    const caughtUp = player ? player.k === player.n : false;
    if (page.view === "live" && running && caughtUp) return this.viewT + (performance.now() - this.syncedAt);
    return this.viewT;
  }

  tick() {
    if (!this.ttls.length) return;
    const now = this.now();
    for (const ttl of this.ttls) setGauge(ttl, now);
  }
}

function caption(slice, state) {
  const parts = [];
  const holding = slice.clientOrder.filter((c) => slice.clients[c].state === "holding");
  const waiting = slice.clientOrder.filter((c) => ["waiting", "acquiring"].includes(slice.clients[c].state));
  const paused = slice.clientOrder.filter((c) => slice.clients[c].state === "paused" && slice.clients[c].token == null);
  const pausedHolding = slice.clientOrder.filter((c) => slice.clients[c].state === "paused" && slice.clients[c].token != null);
  const crashed = slice.clientOrder.filter((c) => slice.clients[c].state === "crashed");
  if (!slice.clientOrder.length) return ["Waiting for the clients…"];
  const lockless = !slice.leaseOrder.length && !slice.zk && !slice.waits && !slice.deadlocks.length;
  if (lockless) {
    // With no lock service, "holding" only means being inside the critical section.
    if (holding.length) parts.push(`${list(holding)} ${holding.length === 1 ? "is" : "are"} in the critical section.`);
    else parts.push("Nobody is in the critical section.");
  } else if (holding.length > 1) {
    const readers = holding.every((c) => slice.modes[c] === "read");
    const all = holding.length === 2 ? "both" : "all";
    parts.push(readers ? `${list(holding)} hold the read lock together.` : `${list(holding)} ${all} believe they hold the lock.`);
  } else if (holding.length === 1) {
    parts.push(`${holding[0]} holds the lock.`);
  } else if (!pausedHolding.length) {
    parts.push("Nobody holds the lock.");
  }
  if (pausedHolding.length) parts.push(`${list(pausedHolding)} ${pausedHolding.length === 1 ? "is" : "are"} paused inside ${pausedHolding.length === 1 ? "its" : "their"} critical section, holding token${pausedHolding.length === 1 ? "" : "s"}.`);
  if (waiting.length && !lockless) parts.push(`${list(waiting)} ${waiting.length === 1 ? "wants" : "want"} it.`);
  if (paused.length) parts.push(`${list(paused)} ${paused.length === 1 ? "is" : "are"} paused.`);
  if (crashed.length) parts.push(`${list(crashed)} crashed.`);
  const lease = slice.leaseOrder.length === 1 ? slice.leases[slice.leaseOrder[0]] : null;
  const left = leaseLeft(lease, state.t);
  if (lease?.holder && left != null && left <= 0) parts.push(`Redis dropped ${lease.holder}'s key when its TTL ran out.`);
  const rejected = slice.sectionOrder.filter((id) => slice.sections[id].accepted === false).length;
  if (rejected) parts.push(`The storage rejected ${rejected} stale write${rejected === 1 ? "" : "s"}.`);
  const out = [state.phase ? `${state.phase} · ${parts.join(" ")}` : parts.join(" ")];
  const unsafe = overlaps(slice, Infinity).filter((p) => !p.shared);
  const proven = unsafe.filter((p) => !p.open);
  if (proven.length) {
    out.push(" ", html("strong", {}, `Mutual exclusion broken: ${proven.length} overlapping critical section${proven.length === 1 ? "" : "s"}.`));
  } else if (unsafe.length) {
    const open = [...new Set(unsafe.flatMap((p) => [p.a, p.b]).filter((x) => x.end == null).map((x) => x.client))];
    out.push(" ", html("strong", {}, `Two clients are in their critical sections at once (${list(open)} still inside).`));
  }
  return out;
}

function list(names) {
  return names.length <= 1 ? names.join("") : `${names.slice(0, -1).join(", ")} and ${names.at(-1)}`;
}

function legend(slice) {
  const items = [];
  const groups = { state: "client:", cs: "sections:", arrow: "arrows:" };
  let group = null;
  for (const [kind, key, text, applies] of LEGEND) {
    if (!applies(slice)) continue;
    if (kind !== group) {
      group = kind;
      items.push(html("span", { className: "locks-legend__group" }, groups[kind]));
    }
    const item = html("span", { className: "legend__item" });
    item.append(html("i", { className: `locks-swatch locks-swatch--${kind}-${key}` }), text);
    items.push(item);
  }
  return items;
}

registerPanel({
  name: "locks",
  title: "Locks: clients, the lock, critical sections",
  init,
  apply,
  mount: (body) => new LocksPanel(body),
});
