// The locks lab's slice of the run page's state, folded from the run's events alone (see
// runs/js/panels.js): the clients and the history of their states, the lock's live state (Redis
// leases, the ZooKeeper queue, InnoDB lock waits, the deadlock), the critical sections stamped by
// the storage server, and per-client counters. Pure data: no DOM, no timers.

export const CLIENT_STATES = ["idle", "acquiring", "waiting", "holding", "paused", "crashed", "done"];
const CLIENT_NAME = /^c\d+$/;

export function init() {
  return {
    rev: 0,
    clients: {}, // name -> {name, state, token, lock, since, history: [{t, state}], counters, metrics}
    clientOrder: [],
    leases: {}, // node -> {node, key, holder, token, ttl_ms, at, seq, t}
    leaseOrder: [],
    zk: null, // {path, queue: [...], seq, t}
    modes: {}, // client -> "read" | "write", from the ZooKeeper queue
    watches: [], // notifications: {seq, t, to, znode, event, label}
    round: null, // the latest ZooKeeper round a `phase` event announced: {clients, series, herd}
    waits: null, // the latest InnoDB lock-wait sample: {waits: [...], seq, t}
    deadlocks: [], // {edges, victim, errno, seq, t}
    waitRows: {}, // "a>b" -> the last lock wait seen of a on b, to label a deadlock's edges
    grants: {}, // client -> its Redlock grant while it holds: {votes, quorum, validity_ms, at, seq}
    decision: null, // the latest Redlock decision: {client, granted, votes, quorum, elapsed_ms, validity_ms, t}
    sections: {}, // id -> {id, client, start, end, token, accepted, mode, seq}
    sectionOrder: [],
    storage: {}, // the storage's own counters: name -> value
    // The storage's clock minus the run's, from the latest section stamp: where "now" is on the
    // storage's clock, so a section still open grows while the run goes on.
    storageOffset: null,
  };
}

function clientOf(slice, name) {
  let client = slice.clients[name];
  if (!client) {
    client = {
      name,
      state: null,
      token: null,
      lock: null,
      history: [],
      counters: {},
      faults: [],
    };
    slice.clients[name] = client;
    slice.clientOrder.push(name);
    slice.clientOrder.sort((a, b) => clientRank(a) - clientRank(b));
  }
  return client;
}

function clientRank(name) {
  const m = /^c(\d+)$/.exec(name);
  return m ? Number(m[1]) : 1e9;
}

const STATE_APPLIERS = {
  client(slice, e, d) {
    const name = d.client || e.actor;
    const client = clientOf(slice, name);
    if (d.state !== client.state) client.history.push({ t: e.t, state: d.state, seq: e.seq });
    // A Redlock grant lasts while its client holds (or is paused holding) the lock.
    if (d.state !== "holding" && d.state !== "paused") delete slice.grants[name];
    client.state = d.state;
    if ("token" in d) client.token = d.token;
    if (d.lock) client.lock = d.lock;
    client.label = e.label || "";
  },

  lease(slice, e, d) {
    const node = d.node || e.actor || "redis";
    if (!(node in slice.leases)) slice.leaseOrder.push(node);
    const before = slice.leases[node];
    // A read of the same lease reports the TTL left; the gauge keeps the TTL it was granted with.
    const same = before && before.holder === (d.holder ?? null) && before.token === (d.token ?? null) && before.full != null;
    slice.leases[node] = {
      full: same ? before.full : (d.ttl_ms ?? null),
      node,
      key: d.key ?? null,
      holder: d.holder ?? null,
      token: d.token ?? null,
      ttl_ms: d.ttl_ms ?? null,
      at: d.at ?? e.t,
      seq: e.seq,
      t: e.t,
      label: e.label || "",
    };
    slice.leaseOrder.sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
  },

  zk_queue(slice, e, d) {
    const queue = (d.queue || []).map((entry) => ({ ...entry }));
    slice.zk = { path: d.path || "", queue, seq: e.seq, t: e.t };
    for (const entry of queue) {
      if (entry.client) {
        slice.modes[entry.client] = entry.mode || "write";
        clientOf(slice, entry.client);
      }
    }
  },

  innodb_waits(slice, e, d) {
    slice.waits = { waits: d.waits || [], seq: e.seq, t: e.t };
    for (const w of slice.waits.waits) slice.waitRows[`${w.waiting}>${w.blocking}`] = w;
  },

  wait_for(slice, e, d) {
    const edges = d.edges || [];
    // The rows each edge waited on when InnoDB found the cycle (a retry may wait on another later).
    const rows = Object.fromEntries(edges.map(([a, b]) => [`${a}>${b}`, slice.waitRows[`${a}>${b}`] || null]));
    slice.deadlocks.push({ edges, rows, victim: d.victim ?? null, errno: d.errno ?? null, seq: e.seq, t: e.t });
  },

  cs(slice, e, d) {
    const id = d.id ?? `${d.client}-${d.start_ms}`;
    const before = slice.sections[id];
    if (!before) slice.sectionOrder.push(id);
    const client = d.client || before?.client;
    if (client) clientOf(slice, client);
    slice.sections[id] = {
      id,
      client,
      start: d.start_ms ?? before?.start ?? null,
      end: d.end_ms ?? null,
      token: d.token ?? before?.token ?? null,
      accepted: d.accepted ?? null,
      // Readers of a read-write lock may share the resource; the queue says who is a reader.
      mode: d.mode || before?.mode || slice.modes[client] || null,
      seq: before?.seq ?? e.seq,
      endSeq: d.end_ms != null ? e.seq : null,
    };
    const stamp = d.end_ms ?? d.start_ms;
    if (stamp != null) slice.storageOffset = stamp - e.t;
  },
};

export function apply(slice, e) {
  const d = e.data;
  if (e.kind === "state" && STATE_APPLIERS[d.type]) {
    STATE_APPLIERS[d.type](slice, e, d);
    slice.rev++;
  } else if (e.kind === "msg" && d.type === "watch") {
    slice.watches.push({ seq: e.seq, t: e.t, to: e.to, znode: d.znode ?? null, event: d.event ?? null, label: e.label || "" });
    if (e.to && CLIENT_NAME.test(e.to)) clientOf(slice, e.to);
    slice.rev++;
  } else if (e.kind === "phase" && d.series) {
    slice.round = { clients: d.clients ?? null, series: d.series, herd: d.herd ?? /herd/.test(d.series) };
    slice.rev++;
  } else if (e.kind === "log" && d.type === "redlock") {
    const client = e.actor;
    slice.decision = { client, granted: !!d.granted, votes: d.votes || [], quorum: d.quorum ?? null, elapsed_ms: d.elapsed_ms ?? null, validity_ms: d.validity_ms ?? null, errors: d.errors || {}, t: e.t, seq: e.seq };
    if (d.granted) slice.grants[client] = { votes: d.votes || [], quorum: d.quorum ?? null, validity_ms: d.validity_ms ?? null, at: e.t, seq: e.seq };
    slice.rev++;
  } else if (e.kind === "node" && /^redis\d+$/.test(e.actor) && slice.leases[e.actor] && d.state) {
    // A node that went down, or came back, holds nothing anyone has read since.
    const lease = slice.leases[e.actor];
    if (d.state !== "up") lease.unknown = "down";
    else if (lease.unknown === "down") lease.unknown = "restarted";
    slice.rev++;
  } else if (e.kind === "fault" && CLIENT_NAME.test(e.to || "")) {
    // What the instructor did to this client (pause, resume, expire), in order.
    clientOf(slice, e.to).faults.push(d.kind || e.label || "fault");
    slice.rev++;
  } else if (e.kind === "metric" && (d.x == null || d.y == null) && d.name) {
    if (CLIENT_NAME.test(e.actor)) {
      clientOf(slice, e.actor).counters[d.name] = d.value;
    } else {
      slice.storage[d.name] = d.value;
    }
    slice.rev++;
  } else if ((e.kind === "node" || e.kind === "state") && CLIENT_NAME.test(e.actor) && !slice.clients[e.actor]) {
    // A client announced before its first state: a lane for it, idle.
    clientOf(slice, e.actor);
    slice.rev++;
  }
}

/** The client's lane colour class: one of CLIENT_STATES, or "unknown". */
export function stateClass(state) {
  return CLIENT_STATES.includes(state) ? state : "unknown";
}

/** Milliseconds of lease left at view time `now` (ms on the run's clock); null when it has no TTL. */
export function leaseLeft(lease, now) {
  if (!lease || lease.holder == null || lease.ttl_ms == null) return null;
  return lease.ttl_ms - Math.max(0, now - lease.at);
}

/**
 * Pairs of critical sections that overlap on the storage's clock: [{a, b, from, to}]. A section
 * still open runs to `openEnd`. Writes the storage rejected (a stale fencing token) and two readers
 * of a read-write lock do not break mutual exclusion; the latter are returned with shared: true.
 * A pair with a section still open is returned with open: true (the storage may yet reject its write).
 */
export function overlaps(slice, openEnd) {
  const live = slice.sectionOrder
    .map((id) => slice.sections[id])
    .filter((s) => s.start != null && s.accepted !== false)
    .sort((a, b) => a.start - b.start);
  const found = [];
  for (let i = 0; i < live.length; i++) {
    const a = live[i];
    const aEnd = a.end ?? openEnd;
    for (let j = i + 1; j < live.length && live[j].start < aEnd; j++) {
      const b = live[j];
      if (b.client === a.client) continue;
      const bEnd = b.end ?? openEnd;
      const from = b.start;
      const to = Math.min(aEnd, bEnd);
      if (to <= from) continue;
      found.push({ a, b, from, to, shared: a.mode === "read" && b.mode === "read", open: a.end == null || b.end == null });
    }
  }
  return found;
}
