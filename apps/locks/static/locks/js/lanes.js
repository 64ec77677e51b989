// One lane per client: its state now (with its token), a strip of the states it went through on
// the run's clock, and its counters.

import { formatT, truncate } from "../../runs/js/fold.js";
import { html, svg } from "../../runs/js/svg.js";
import { stateClass } from "./slice.js";

const STRIP_W = 600;
const STRIP_H = 22;
// Counter names as a lane reads them: [one, many].
const COUNTER_NAMES = {
  acquired: ["acquired", "acquired"],
  retries: ["retry", "retries"],
  conflicts: ["conflict", "conflicts"],
  lock_waits: ["lock wait", "lock waits"],
  notifications: ["notified", "notified"],
};
const STATE_HELP = {
  idle: "not asking for the lock",
  acquiring: "asking for the lock",
  waiting: "blocked until the lock is free (a lock wait or a watch)",
  holding: "believes it holds the lock: in its critical section",
  paused: "stopped where it is, like a long GC pause",
  crashed: "gone: its connection or session is lost",
  done: "finished its operations",
};

export function tokenText(token) {
  if (token == null || token === "") return "";
  const text = String(token);
  return text.length > 10 ? `${text.slice(0, 8)}…` : text;
}

/** The run-clock span the lanes' strips cover: [from, to]. */
export function laneSpan(slice, state) {
  const starts = slice.clientOrder.map((c) => slice.clients[c].history[0]?.t).filter((t) => t != null);
  const from = starts.length ? Math.min(...starts) : 0;
  return [from, Math.max(state.t, from + 1)];
}

export function renderLanes(slice, state) {
  const box = html("div", { className: "locks-lanes", dataset: { testid: "locks-lanes" } });
  if (!slice.clientOrder.length) {
    box.append(html("p", { className: "muted small" }, "No client yet."));
    return box;
  }
  // The strips start with the first client's first state, not with the run's set-up.
  const [from, now] = laneSpan(slice, state);
  const sections = slice.sectionOrder.map((id) => slice.sections[id]);
  for (const name of slice.clientOrder) {
    const client = slice.clients[name];
    const cls = stateClass(client.state);
    const lane = html("div", { className: `locks-lane locks-lane--${cls}`, dataset: { client: name, state: client.state || "" } });

    const who = html("div", { className: "locks-lane__who" });
    who.append(html("strong", { className: "locks-lane__name" }, name));
    who.append(html("span", { className: `locks-state locks-state--${cls}`, title: STATE_HELP[client.state] || "" }, client.state || "—"));
    const token = tokenText(client.token);
    if (token) who.append(html("span", { className: "locks-token", title: `token ${client.token}` }, `token ${token}`));
    lane.append(who);

    lane.append(strip(client, from, now));

    const counts = html("div", { className: "locks-lane__counts small" });
    const mine = sections.filter((s) => s.client === name);
    const rejected = mine.filter((s) => s.accepted === false).length;
    const parts = [];
    if (mine.length) parts.push([`${mine.length}`, mine.length === 1 ? "section" : "sections"]);
    if (rejected) parts.push([`${rejected}`, "rejected", "is-bad"]);
    for (const [key, [one, many]] of Object.entries(COUNTER_NAMES)) {
      const value = client.counters[key];
      if (value != null) parts.push([formatNumber(value), value === 1 ? one : many]);
    }
    for (const [key, value] of Object.entries(client.counters)) {
      if (!(key in COUNTER_NAMES)) parts.push([formatNumber(value), key.replace(/_/g, " ")]);
    }
    if (client.faults.length) parts.push(["⚡", client.faults.join(", "), "is-fault"]);
    for (const [value, label, tone] of parts) {
      const item = html("span", { className: `locks-count${tone ? ` ${tone}` : ""}` });
      item.append(html("b", {}, value), ` ${label}`);
      counts.append(item);
    }
    lane.append(counts);
    box.append(lane);
  }
  const storage = Object.entries(slice.storage);
  if (storage.length) {
    const line = html("p", { className: "locks-storage small", dataset: { testid: "locks-storage-counters" } });
    line.append(html("strong", {}, "storage: "), storage.map(([k, v]) => `${k.replace(/_/g, " ")} ${formatNumber(v)}`).join(" · "));
    box.append(line);
  }
  return box;
}

function formatNumber(value) {
  if (typeof value !== "number") return String(value ?? "");
  return Number.isInteger(value) ? value.toLocaleString("en") : value.toFixed(1);
}

/** The client's states on the run's clock, from its first event to the view's time. */
function strip(client, from, now) {
  const root = svg("svg", {
    class: "locks-strip",
    viewBox: `0 0 ${STRIP_W} ${STRIP_H}`,
    preserveAspectRatio: "none",
    role: "img",
    "aria-label": `${client.name}'s states over the run`,
  });
  const x = (t) => ((Math.max(from, Math.min(now, t)) - from) / (now - from)) * STRIP_W;
  root.append(svg("rect", { x: 0, y: 0, width: STRIP_W, height: STRIP_H, class: "locks-strip__bg" }));
  client.history.forEach((entry, i) => {
    const end = i + 1 < client.history.length ? client.history[i + 1].t : now;
    const x1 = x(entry.t);
    const w = Math.max(x(end) - x1, 1);
    const rect = svg("rect", { x: x1, y: 2, width: w, height: STRIP_H - 4, class: `locks-seg locks-seg--${stateClass(entry.state)}` });
    rect.append(svg("title", {}, `${client.name} ${entry.state} from ${formatT(entry.t)} to ${i + 1 < client.history.length ? formatT(end) : "now"}`));
    root.append(rect);
  });
  const last = client.history.at(-1);
  if (last) root.append(svg("title", {}, `${client.name}: ${truncate(client.label || last.state, 80)}`));
  return root;
}
