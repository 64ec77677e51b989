// The lock's live state, drawn from the events alone: the Redis key with its holder and its TTL
// counting down (for Redlock, every node's key), the ZooKeeper queue of znodes with who watches
// whom, and InnoDB's lock waits with the deadlock's wait-for cycle and its victim.

import { formatT, truncate } from "../../runs/js/fold.js";
import { html, svg } from "../../runs/js/svg.js";
import { tokenText } from "./lanes.js";
import { leaseLeft } from "./slice.js";

const REDIS_NODE = /^redis\d*$/;
// A watch notification stays highlighted for this many events after it, so a paused or stepped
// view shows it as clearly as a live one.
const RECENT_EVENTS = 6;

/** Returns {el, ttls}: the element, and the TTL gauges for the panel's clock to count down. */
export function renderLockState(slice, state) {
  const el = html("div", { className: "locks-state-box" });
  const ttls = [];
  const redisNodes = state.nodeOrder.filter((n) => REDIS_NODE.test(n) && n !== "redis");
  const leaseNodes = [...new Set([...redisNodes, ...slice.leaseOrder])];
  if (leaseNodes.length > 1) el.append(redlock(slice, state, leaseNodes, ttls));
  else if (leaseNodes.length === 1 && slice.leases[leaseNodes[0]]) el.append(lease(slice, slice.leases[leaseNodes[0]], state, ttls));
  if (slice.zk || slice.watches.length) el.append(zkQueue(slice, state));
  if (slice.waits || slice.deadlocks.length) el.append(waitFor(slice, state));
  if (!el.childNodes.length) {
    const conflicts = slice.clientOrder.reduce((n, c) => n + (slice.clients[c].counters.conflicts || 0), 0);
    let text = "No lock state yet.";
    if (conflicts || slice.clientOrder.some((c) => "conflicts" in slice.clients[c].counters)) {
      text = `No lock is held: each write checks the row's version (UPDATE … WHERE version = %s); ${conflicts} conflict${conflicts === 1 ? "" : "s"} found so far, each retried.`;
    } else if (slice.sectionOrder.length) {
      text = "No lock service in this run: the clients go straight to the storage.";
    }
    el.append(html("p", { className: "muted small locks-none", dataset: { testid: "locks-no-lock" } }, text));
  }
  return { el, ttls };
}

function block(title, testid, note) {
  const box = html("div", { className: "locks-block", dataset: { testid } });
  const head = html("h3", { className: "locks-h" }, title);
  if (note) head.append(html("span", { className: "locks-h__note" }, note));
  box.append(head);
  return box;
}

// Redis -------------------------------------------------------------------------------------------
function gauge(leaseInfo, ttls, compact) {
  const box = html("div", { className: `locks-ttl${compact ? " locks-ttl--compact" : ""}` });
  const bar = html("div", { className: "locks-ttl__bar" });
  const fill = html("div", { className: "locks-ttl__fill" });
  bar.append(fill);
  const text = html("span", { className: "locks-ttl__text", dataset: { testid: "lease-ttl" } });
  box.append(bar, text);
  ttls.push({ lease: leaseInfo, box, fill, text, compact });
  return box;
}

/** Sets a TTL gauge for view time `now`. */
export function setGauge({ lease: info, box, fill, text, compact }, now) {
  const left = leaseLeft(info, now);
  if (left == null) {
    box.dataset.level = "free";
    fill.style.width = "0%";
    text.textContent = info.holder == null ? "no key" : "no TTL";
    return;
  }
  const full = Math.max(info.full ?? info.ttl_ms, info.ttl_ms);
  const share = Math.max(0, Math.min(1, left / full));
  fill.style.width = `${(share * 100).toFixed(1)}%`;
  box.dataset.level = left <= 0 ? "expired" : share < 0.25 ? "low" : "ok";
  if (left <= 0) text.textContent = compact ? "expired" : `TTL elapsed ${formatT(-left)} ago: Redis has dropped the key`;
  else text.textContent = compact ? `${formatT(left)}` : `${formatT(left)} left of ${formatT(full)}`;
}

function lease(slice, info, state, ttls) {
  const box = block("Redis lease", "locks-lease", `on ${info.node}`);
  const card = html("div", { className: `locks-key${info.holder ? " is-held" : " is-free"}`, dataset: { holder: info.holder || "" } });
  const line = html("div", { className: "locks-key__line" });
  line.append(html("code", { className: "locks-key__name" }, info.key || "(key)"));
  if (info.holder) {
    line.append(html("span", { className: "locks-key__arrow" }, "→"), html("strong", { className: "locks-key__holder" }, info.holder));
    const token = tokenText(info.token);
    if (token) line.append(html("span", { className: "locks-token", title: `token ${info.token}` }, `token ${token}`));
  } else {
    line.append(html("span", { className: "muted" }, " free: no holder"));
  }
  card.append(line, gauge(info, ttls, false));
  box.append(card);
  const stale = staleHolders(slice, [info], state.t);
  for (const text of stale) box.append(html("p", { className: "locks-warn", dataset: { testid: "locks-stale" } }, text));
  return box;
}

/** Clients that still believe they hold the lock after their lease is gone: the lesson of a pause. */
function staleHolders(slice, leases, now) {
  const out = [];
  for (const name of slice.clientOrder) {
    const client = slice.clients[name];
    // A client paused with a token was paused while holding the lock.
    const believes = client.state === "holding" || (client.state === "paused" && client.token != null);
    if (!believes) continue;
    const mine = leases.filter((l) => l.holder === name && (leaseLeft(l, now) ?? 1) > 0);
    if (mine.length) continue;
    out.push(`${name} is ${client.state} and believes it holds the lock, but its lease is gone.`);
  }
  return out;
}

function redlock(slice, state, nodes, ttls) {
  const majority = Math.floor(nodes.length / 2) + 1;
  const up = nodes.filter((n) => !isDown(state, n));
  const note = `${up.length} of ${nodes.length} nodes up; a majority is ${majority}`;
  const box = block("Redlock", "locks-redlock", note);
  const row = html("div", { className: "locks-redlock" });
  for (const n of nodes) {
    const info = slice.leases[n];
    const down = isDown(state, n);
    const nodeState = state.nodes[n]?.state || (info ? "up" : "unknown");
    const unknown = !down && info?.unknown === "restarted";
    const holder = down || unknown ? null : info?.holder;
    const card = html("div", {
      className: `locks-rnode${down ? " is-down" : holder ? " is-held" : ""}${unknown ? " is-restarted" : ""}`,
      dataset: { node: n, state: down ? "down" : nodeState, holder: holder || "" },
    });
    card.append(html("div", { className: "locks-rnode__name" }, n));
    card.append(html("div", { className: "locks-rnode__status small" }, down ? `✕ ${nodeState}` : unknown ? "restarted" : nodeState));
    // A node that is down answers nobody, and one restarted without persistence forgot its keys.
    card.append(html("div", { className: "locks-rnode__holder" }, down || unknown ? "?" : holder || "—"));
    if (info && !down && !unknown) card.append(gauge(info, ttls, true));
    row.append(card);
  }
  box.append(row);

  const grants = Object.entries(slice.grants);
  if (grants.length) {
    const list = html("ul", { className: "locks-grants small", dataset: { testid: "locks-grants" } });
    for (const [client, grant] of grants) {
      const item = html("li");
      item.append(html("strong", {}, client), ` holds the lock, granted by ${grant.votes.join(", ")}; validity `);
      item.append(gauge({ holder: client, ttl_ms: grant.validity_ms, at: grant.at }, ttls, true));
      const kept = grant.votes.filter((n) => slice.leases[n]?.holder === client && !slice.leases[n].unknown && !isDown(state, n));
      const quorum = grant.quorum ?? majority;
      if (kept.length < quorum) {
        const lost = grant.votes.filter((n) => !kept.includes(n));
        item.append(html("span", { className: "locks-grant-lost" }, `${lost.join(", ")} no longer ${lost.length === 1 ? "has" : "have"} its key: ${kept.length} of ${quorum} needed`));
      }
      list.append(item);
    }
    box.append(list);
  }
  if (grants.length > 1) {
    box.append(html("p", { className: "locks-warn", dataset: { testid: "locks-stale" } }, `${list(grants.map(([c]) => c))} each hold a granted Redlock at once: two majorities that share a node which forgot the key.`));
  } else if (slice.decision && !slice.decision.granted) {
    const d = slice.decision;
    box.append(html("p", { className: "locks-refused small" }, `${d.client} refused: ${d.votes.length} of ${nodes.length} nodes, a majority is ${d.quorum ?? majority}.`));
  }
  return box;
}

function list(names) {
  return names.length <= 1 ? names.join("") : `${names.slice(0, -1).join(", ")} and ${names.at(-1)}`;
}

function isDown(state, name) {
  const s = state.nodes[name]?.state;
  return s === "down" || s === "stopped" || s === "killed" || s === "unreachable";
}

// ZooKeeper ---------------------------------------------------------------------------------------
const ZK_W = 580;
const ZK_BOX_H = 48;
const ZK_GAP = 12;
const ZK_PARENT_W = 96;
const ZK_TOP = 70;

/** A sequential znode's sequence number, which orders the queue; its full name is in the tooltip. */
function shortZnode(name) {
  const m = /(\d{10})$/.exec(name || "");
  return m ? m[1] : truncate(name || "", 13);
}

function zkQueue(slice, state) {
  const queue = slice.zk?.queue || [];
  const notifications = slice.watches.length;
  const note = `${queue.length} znode${queue.length === 1 ? "" : "s"} · ${notifications} watch notification${notifications === 1 ? "" : "s"} so far`;
  const box = block("ZooKeeper queue", "locks-zk", note);
  const shared = queue.some((q) => q.mode === "read");
  // Boxes narrow as the queue grows, so five waiters still read at full size.
  const boxW = Math.max(80, Math.min(104, (ZK_W - ZK_PARENT_W - 16) / Math.max(queue.length, 1) - ZK_GAP));
  const width = Math.max(ZK_W, ZK_PARENT_W + 16 + queue.length * (boxW + ZK_GAP));
  const height = ZK_TOP + ZK_BOX_H + 30;
  const root = svg("svg", { class: "locks-zk", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "ZooKeeper lock queue" });
  root.append(arrowDefs("zk"));

  const recent = slice.watches.length && state.k - slice.watches.at(-1).seq < RECENT_EVENTS ? slice.watches.at(-1) : null;
  const parentX = 4;
  const parent = svg("g", { class: "locks-zk__parent" });
  parent.append(svg("rect", { x: parentX, y: ZK_TOP, width: ZK_PARENT_W, height: ZK_BOX_H, rx: 6 }));
  parent.append(svg("text", { x: parentX + ZK_PARENT_W / 2, y: ZK_TOP + 19, "text-anchor": "middle", class: "locks-zk__ptitle" }, "parent"));
  parent.append(svg("text", { x: parentX + ZK_PARENT_W / 2, y: ZK_TOP + 36, "text-anchor": "middle", class: "locks-zk__path" }, truncate(lastSegments(slice.zk?.path), 16)));
  parent.append(svg("title", {}, slice.zk?.path || ""));
  root.append(parent);

  const xOf = {};
  queue.forEach((entry, i) => {
    xOf[entry.znode] = ZK_PARENT_W + 16 + i * (boxW + ZK_GAP);
  });
  const arrows = svg("g", { class: "locks-zk__arrows" });
  const boxes = svg("g", {});
  queue.forEach((entry, i) => {
    const x = xOf[entry.znode];
    const role = znodeRole(slice, entry, xOf);
    const notified = recent && recent.to === entry.client;
    const g = svg("g", {
      class: `locks-znode locks-znode--${role}${notified ? " is-notified" : ""}`,
      "data-znode": entry.znode,
      "data-client": entry.client || "",
      "data-role": role,
    });
    g.append(svg("rect", { x, y: ZK_TOP, width: boxW, height: ZK_BOX_H, rx: 6 }));
    g.append(svg("text", { x: x + 8, y: ZK_TOP + 20, class: "locks-znode__client" }, entry.client || "?"));
    if (shared) g.append(svg("text", { x: x + boxW - 8, y: ZK_TOP + 20, "text-anchor": "end", class: "locks-znode__mode" }, entry.mode === "read" ? "read" : "write"));
    g.append(svg("text", { x: x + 8, y: ZK_TOP + 38, class: "locks-znode__name" }, shortZnode(entry.znode)));
    const caption = {
      holding: "holds the lock",
      waiting: "waits",
      notified: "its watch fired",
      acquiring: "just created",
      releasing: "released",
      paused: "owner paused",
      crashed: "owner crashed",
    }[role];
    g.append(svg("text", { x: x + boxW / 2, y: ZK_TOP + ZK_BOX_H + 16, "text-anchor": "middle", class: "locks-znode__role" }, caption));
    g.append(svg("title", {}, `${entry.znode}: ${entry.client || "?"} ${role}${entry.watches ? `, watching ${entry.watches}` : ""}`));
    boxes.append(g);

    if (role !== "waiting") return;
    const target = xOf[entry.watches];
    const toParent = target == null;
    const x1 = x + boxW / 2;
    const x2 = toParent ? parentX + ZK_PARENT_W / 2 : target + boxW / 2;
    // Longer arcs rise higher, so arrows from several waiters to one target nest instead of crossing.
    const rise = Math.min(ZK_TOP - 6, 16 + Math.abs(x1 - x2) * 0.09);
    const end = toParent ? x2 + 10 * Math.min(i, 3) - 15 : x2;
    const path = `M ${x1} ${ZK_TOP} C ${x1} ${ZK_TOP - rise}, ${end} ${ZK_TOP - rise}, ${end} ${ZK_TOP - 1}`;
    arrows.append(svg("path", {
      d: path,
      class: `locks-watch${notified ? " is-notified" : ""}`,
      "marker-end": "url(#locks-arrow-zk)",
      "data-from": entry.znode,
      "data-to": entry.watches,
    }));
  });
  root.append(arrows, boxes);
  if (!queue.length) {
    root.append(svg("text", { x: ZK_PARENT_W + 16, y: ZK_TOP + 28, class: "empty-note" }, "No lock znode: the lock is free."));
  }
  box.append(root);

  const foot = html("p", { className: "locks-zk__foot small" });
  if (recent) {
    foot.classList.add("is-recent");
    foot.dataset.testid = "locks-watch-fired";
    foot.append(html("strong", {}, `⚡ ${recent.to}: `), recent.label || `watch fired: ${recent.znode} ${recent.event}`);
  } else if (slice.watches.length) {
    const last = slice.watches.at(-1);
    foot.append(html("span", { className: "muted" }, `last watch notification: ${last.to}, ${last.label} (${formatT(last.t)})`));
  }
  // With the queue empty (between rounds, at the end) the round the run announced last tells the recipe.
  const herd = queue.length
    ? queue.some((q) => q.watches && (q.watches.startsWith("/") || q.watches === slice.zk?.path))
    : !!slice.round?.herd;
  const lesson = herd
    ? "Every waiter watches the parent: each change wakes them all (the herd effect)."
    : shared
      ? "A reader waits only for the writer before it; a writer waits for the znode just before its own."
      : "Each waiter watches only the znode just before its own: one notification per hand-over.";
  box.append(foot, html("p", { className: "muted small locks-zk__lesson" }, lesson));
  // A holder whose znode is gone (its session expired) no longer holds the lock, whatever it believes.
  const queued = new Set(queue.map((q) => q.client));
  for (const name of slice.clientOrder) {
    const client = slice.clients[name];
    const believes = client.state === "holding" || (client.state === "paused" && client.token != null);
    if (believes && !queued.has(name) && slice.zk) {
      box.append(html("p", { className: "locks-warn", dataset: { testid: "locks-stale" } }, `${name} is ${client.state} and believes it holds the lock, but its znode is gone.`));
    }
  }
  return box;
}

/** What a znode's owner is doing: the client's own state, and whether what it watches is still there. */
function znodeRole(slice, entry, xOf) {
  const state = slice.clients[entry.client]?.state;
  if (state === "holding") return "holding";
  if (state === "paused" || state === "crashed") return state;
  if (entry.watches) {
    const onParent = entry.watches.startsWith("/") || entry.watches === slice.zk?.path;
    // A watch on a znode already deleted has fired: its owner checks the children again.
    return onParent || entry.watches in xOf ? "waiting" : "notified";
  }
  return state === "idle" || state === "done" ? "releasing" : "acquiring";
}

function lastSegments(path) {
  const parts = (path || "").split("/").filter(Boolean);
  return parts.length ? `/${parts.slice(-1)[0]}` : "/";
}

function arrowDefs(id) {
  const defs = svg("defs");
  for (const [suffix, cls] of [["", "locks-arrowhead"], ["-red", "locks-arrowhead is-red"], ["-amber", "locks-arrowhead is-amber"]]) {
    const marker = svg("marker", {
      id: `locks-arrow-${id}${suffix}`, viewBox: "0 0 10 10", refX: 9, refY: 5,
      markerWidth: 9, markerHeight: 9, markerUnits: "userSpaceOnUse", orient: "auto",
    });
    marker.append(svg("path", { d: "M 0 0 L 10 5 L 0 10 z", class: cls }));
    defs.append(marker);
  }
  return defs;
}

// InnoDB ------------------------------------------------------------------------------------------
const WF_W = 520;
const WF_H = 150;
const WF_R = 20;

function waitFor(slice, state) {
  const deadlock = slice.deadlocks.at(-1) || null;
  const waits = slice.waits?.waits || [];
  // The cycle stays drawn until InnoDB is seen waiting again after it.
  const showCycle = deadlock && (!slice.waits || slice.waits.seq < deadlock.seq || !waits.length);
  const note = waits.length
    ? `${waits.length} lock wait${waits.length === 1 ? "" : "s"} (information_schema, at ${formatT(slice.waits.t)})`
    : "no lock wait in the latest sample";
  const box = block("InnoDB lock waits", "locks-waits", note);

  const edges = waits.map((w) => ({ from: w.waiting, to: w.blocking, label: rowLabel(w), kind: "wait" }));
  if (showCycle) {
    for (const [a, b] of deadlock.edges) {
      const seen = deadlock.rows?.[`${a}>${b}`] || slice.waitRows[`${a}>${b}`];
      if (!edges.some((e) => e.from === a && e.to === b)) edges.push({ from: a, to: b, label: seen ? rowLabel(seen) : "", kind: "cycle" });
      else edges.find((e) => e.from === a && e.to === b).kind = "cycle";
    }
  }
  const names = [];
  for (const e of edges) for (const n of [e.from, e.to]) if (n && !names.includes(n)) names.push(n);
  names.sort((a, b) => slice.clientOrder.indexOf(a) - slice.clientOrder.indexOf(b));

  if (names.length) {
    const root = svg("svg", { class: "locks-wf", viewBox: `0 0 ${WF_W} ${WF_H}`, role: "img", "aria-label": "wait-for graph" });
    root.append(arrowDefs("wf"));
    const pos = {};
    const n = names.length;
    names.forEach((name, i) => {
      if (n === 2) pos[name] = { x: WF_W * (i ? 0.78 : 0.22), y: WF_H / 2 };
      else {
        const a = -Math.PI / 2 + (2 * Math.PI * i) / n;
        pos[name] = { x: WF_W / 2 + Math.cos(a) * WF_W * 0.36, y: WF_H / 2 + Math.sin(a) * (WF_H / 2 - WF_R - 14) };
      }
    });
    for (const e of edges) {
      const a = pos[e.from];
      const b = pos[e.to];
      if (!a || !b || a === b) continue;
      const dx = b.x - a.x;
      const dy = b.y - a.y;
      const len = Math.hypot(dx, dy) || 1;
      const ux = dx / len;
      const uy = dy / len;
      // Bend every edge to its left, so a→b and b→a are two arcs rather than one line.
      const bend = 26;
      const cx = (a.x + b.x) / 2 + uy * bend;
      const cy = (a.y + b.y) / 2 - ux * bend;
      const [sx, sy] = toward(a, cx, cy, WF_R + 2);
      const [ex, ey] = toward(b, cx, cy, WF_R + 4);
      const cls = e.kind === "cycle" ? "locks-edge is-cycle" : "locks-edge is-wait";
      const marker = e.kind === "cycle" ? "url(#locks-arrow-wf-red)" : "url(#locks-arrow-wf-amber)";
      const g = svg("g", { class: cls, "data-from": e.from, "data-to": e.to });
      g.append(svg("path", { d: `M ${sx} ${sy} Q ${cx} ${cy} ${ex} ${ey}`, "marker-end": marker }));
      if (e.label) {
        // The label sits just outside the arc's apex, on the side it bends to.
        const mx = (sx + 2 * cx + ex) / 4 + uy * 12;
        const my = (sy + 2 * cy + ey) / 4 - ux * 12 + 4;
        g.append(svg("text", { x: mx, y: my, "text-anchor": "middle", class: "locks-edge__label halo" }, truncate(e.label, 28)));
      }
      root.append(g);
    }
    for (const name of names) {
      const p = pos[name];
      const victim = showCycle && deadlock.victim === name;
      const clientState = slice.clients[name]?.state || "unknown";
      const g = svg("g", { class: `locks-wnode locks-wnode--${clientState}${victim ? " is-victim" : ""}`, "data-client": name });
      g.append(svg("circle", { cx: p.x, cy: p.y, r: WF_R }));
      g.append(svg("text", { x: p.x, y: p.y + 5, "text-anchor": "middle", class: "locks-wnode__name" }, name));
      if (victim) g.append(svg("text", { x: p.x, y: p.y + WF_R + 15, "text-anchor": "middle", class: "locks-wnode__victim halo" }, "✕ victim, rolled back"));
      root.append(g);
    }
    box.append(root);
  }

  const list = html("ul", { className: "locks-waits__list small" });
  for (const w of waits) {
    list.append(html("li", {}, `${w.waiting} waits for ${w.blocking}: ${rowLabel(w, true)}`));
  }
  if (deadlock) {
    const cycle = deadlock.edges.length ? [...deadlock.edges.map((e) => e[0]), deadlock.edges[0][0]].join(" → ") : "";
    const item = html("li", { className: "locks-deadlock", dataset: { testid: "locks-deadlock" } });
    item.append(
      html("strong", {}, `Deadlock at ${formatT(deadlock.t)}: `),
      `${cycle}. InnoDB rolled back ${deadlock.victim || "a victim"}${deadlock.errno ? ` (error ${deadlock.errno})` : ""}, which retries.`,
    );
    list.append(item);
  }
  if (!waits.length && !deadlock) list.append(html("li", { className: "muted" }, "Nobody waits for a row lock."));
  box.append(list);
  return box;
}

function rowLabel(w, long = false) {
  const row = w.row != null ? `row ${w.row}` : "a row";
  if (!long) return `${row}${w.lock_mode ? ` ${w.lock_mode}` : ""}`;
  const where = [w.table, w.index].filter(Boolean).join(".");
  return `${where ? `${where} ` : ""}${row}${w.lock_mode ? `, ${w.lock_mode} lock` : ""}`;
}

function toward(p, x, y, r) {
  const dx = x - p.x;
  const dy = y - p.y;
  const len = Math.hypot(dx, dy) || 1;
  return [p.x + (dx / len) * r, p.y + (dy / len) * r];
}
