// The cache lab's slice of the run page's state, folded from the run's events one at a time (the
// vocabulary is apps/cache/engine/events.py): each key's cache entry and row, the clients' reads and
// writes, lease tokens, placements over the cache nodes, breakers and near caches. Pure data: no
// DOM, no timers, so a scrubbed view is exactly what a live viewer saw.

export const LANE_OPS = 48; // the latest operations kept per client lane
const LEASES_KEPT = 40;
const MOVES_KEPT = 12;
const NEAR_KEPT = 8;
const BREAKER_KEPT = 8;

export function init() {
  return {
    rev: 0,
    n: 0, // cache and row events folded: how recently a key changed
    keys: {}, // key -> {key, row, lines: [line ids], staleReads, checkerMs, checkerDiffer}
    lines: {}, // id -> {id, key, scheme, entry, refused, seq, differSince, differMs}
    clients: {}, // name -> {name, reads, hits, misses, writes, waits, stale, errors, ops: [...]}
    clientOrder: [],
    leases: [], // the latest: {seq, t, key, client, token, state}
    leaseCounts: { granted: 0, refused: 0, invalidated: 0, used: 0 },
    shards: {}, // scheme -> {scheme, nodes, placement: {key: node}, moves: [...], moved, changes}
    shardOrder: [],
    ring: null, // {keys: {key: [ring position, slot]}, points: [[position, node]], slots: [[first, last, node]]}
    breakers: {}, // node -> {node, state, failures, reason, t, history: [...]}
    near: { counts: {}, latest: [] }, // counts: client -> {op: n}
    checked: null, // what no_stale_read and convergence found: {stale, reads, windowsMs, differing}
    ended: false,
    endStatus: null,
  };
}

function keyOf(slice, key) {
  let k = slice.keys[key];
  if (!k) k = slice.keys[key] = { key, row: null, lines: [], staleReads: 0, checkerMs: null, checkerDiffer: null };
  return k;
}

// A line is one cache entry of a key: a run with several caches side by side (one per placement
// scheme) has a line per cache, all in front of the key's one row.
function lineOf(slice, key, scheme) {
  const id = scheme ? `${key} · ${scheme}` : key;
  let line = slice.lines[id];
  if (!line) {
    // A row's placeholder line (told before any cache held the key) gives way to the key's caches.
    const k = keyOf(slice, key);
    const bare = slice.lines[key];
    if (scheme && bare && !bare.entry) {
      delete slice.lines[key];
      k.lines = k.lines.filter((x) => x !== key);
    }
    line = slice.lines[id] = { id, key, scheme: scheme || null, entry: null, refused: null, seq: 0, differSince: null, differMs: 0 };
    keyOf(slice, key).lines.push(id);
  }
  return line;
}

function clientOf(slice, name) {
  let c = slice.clients[name];
  if (!c) {
    c = slice.clients[name] = { name, reads: 0, hits: 0, misses: 0, turnedAway: 0, writes: 0, waits: 0, stale: 0, errors: 0, ops: [], dropped: 0 };
    slice.clientOrder.push(name);
  }
  return c;
}

function pushOp(client, op) {
  client.ops.push(op);
  if (client.ops.length > LANE_OPS) {
    client.ops.shift();
    client.dropped++;
  }
}

/** When an entry stops being served by itself: its TTL runs out (null: it never expires). */
export function expiresAt(entry) {
  return entry && entry.version != null && entry.ttl_ms ? entry.t + entry.ttl_ms : null;
}

/** The entry as it stands at time `t`: null once deleted or past its TTL. */
export function liveEntry(entry, t) {
  if (!entry || entry.version == null) return null;
  const end = expiresAt(entry);
  return end != null && t >= end ? null : entry;
}

/** Whether the line's cached version differs from its key's row at time `t`. */
export function differs(slice, line, t) {
  const entry = liveEntry(line.entry, t);
  const row = slice.keys[line.key]?.row;
  return entry != null && row != null && entry.version !== row.version && !entry.dirty;
}

/** How long the line's entry has differed from its row, up to time `t` (ms, every window summed). */
export function differedMs(line, t) {
  if (line.differSince == null) return line.differMs;
  const end = Math.min(t, expiresAt(line.entry) ?? t);
  return line.differMs + Math.max(0, end - line.differSince);
}

// A change to an entry or a row closes the windows in which they differed, or opens them.
function restate(slice, lines, t, change) {
  for (const line of lines) {
    if (line.differSince == null) continue;
    line.differMs = differedMs(line, t);
    line.differSince = null;
  }
  change();
  slice.n++;
  for (const line of lines) {
    if (differs(slice, line, t)) line.differSince = t;
    line.seq = slice.n;
  }
}

function linesOfKey(slice, key) {
  return keyOf(slice, key).lines.map((id) => slice.lines[id]);
}

function applyEntry(slice, e, d) {
  const line = lineOf(slice, d.key, d.scheme);
  if (d.op === "refused") {
    // A fill turned away (its lease token no longer held): the entry stays as it was.
    line.refused = { version: d.version, by: d.by, t: e.t, token: d.token ?? null };
    line.seq = ++slice.n;
    return;
  }
  restate(slice, [line], e.t, () => {
    const deleted = d.op === "delete" || d.op === "expire" || d.version == null;
    line.entry = { version: deleted ? null : d.version, op: d.op, t: e.t, ttl_ms: deleted ? null : (d.ttl_ms ?? null), by: d.by || null, node: d.node ?? null, dirty: Boolean(d.dirty), null: Boolean(d.null), token: d.token ?? null };
  });
  if (d.node && d.scheme) place(slice, d.scheme, d.key, d.node);
}

function setRow(slice, e, key, row) {
  const k = keyOf(slice, key);
  restate(slice, linesOfKey(slice, key), e.t, () => {
    k.row = row;
  });
  // A row no cache holds yet still gets its line, so the table side shows it.
  if (!k.lines.length) lineOf(slice, key, null).seq = slice.n;
}

function applyRow(slice, e, d) {
  setRow(slice, e, d.key, { version: d.version, by: d.by || null, t: e.t });
}

// A read's `from` as a lane's cell: served by the cache (a hit, a cached absence, after waiting for
// someone's fill), by its near cache, by the table (a miss, or an early recompute before the TTL),
// turned away by the Bloom filter, or failed at the cache.
const KIND_OF = { cache: "hit", null: "hit", wait: "hit", near: "near", db: "miss", early: "early", bloom: "bloom", error: "error" };

function applyRead(slice, e, d) {
  const c = clientOf(slice, d.client || e.actor);
  const k = keyOf(slice, d.key);
  lineOf(slice, d.key, d.scheme);
  const source = d.from;
  // A read from the table shows the row's version as of then, which the events may not have told
  // (the rows a run starts with are loaded in bulk).
  if ((source === "db" || source === "early") && d.version != null && (k.row == null || d.version > k.row.version)) {
    setRow(slice, e, d.key, { version: d.version, by: k.row?.by ?? null, t: e.t });
  }
  // A table read is the row as of its SELECT, which a write may have overtaken since: only a read
  // served by a cache is stale for having an older version than the row.
  const stale = d.stale ?? (["hit", "near"].includes(KIND_OF[source] || "hit") && d.version != null && k.row != null && d.version < k.row.version);
  const kind = KIND_OF[source] || "hit";
  const waited = d.waits || (source === "wait" ? 1 : 0);
  c.reads++;
  if (kind === "error") c.errors++;
  else if (kind === "miss" || kind === "early") c.misses++;
  else if (kind === "bloom") c.turnedAway++;
  else c.hits++;
  if (waited) c.waits++;
  if (stale) {
    c.stale++;
    k.staleReads++;
  }
  pushOp(c, { seq: e.seq, t: e.t, kind, key: d.key, version: d.version, from: source, stale, waits: waited });
}

function applyWrite(slice, e, d) {
  // The history's completed writes ({type: ok|fail|info, f: write}): the lanes' write marks.
  if (d.f !== "write" || !["ok", "fail", "info"].includes(d.type)) return false;
  const c = clientOf(slice, d.process || e.actor);
  c.writes++;
  const value = d.value || {};
  pushOp(c, { seq: e.seq, t: e.t, kind: d.type === "ok" ? "write" : "write-failed", key: value.key, version: value.version ?? null });
  return true;
}

function applyLease(slice, e, d) {
  slice.leases.push({ seq: e.seq, t: e.t, key: d.key, client: d.client, token: d.token, state: d.state });
  if (slice.leases.length > LEASES_KEPT) slice.leases.shift();
  if (d.state in slice.leaseCounts) slice.leaseCounts[d.state]++;
}

function shardOf(slice, scheme) {
  let s = slice.shards[scheme];
  if (!s) {
    // placement: the keys the events placed (a cached key's node, a key that moved), not every key.
    s = slice.shards[scheme] = { scheme, nodes: [], placement: {}, moves: [], moved: null, share: null, changes: 0, movedKeys: {} };
    slice.shardOrder.push(scheme);
  }
  return s;
}

function place(slice, scheme, key, node) {
  const s = shardOf(slice, scheme);
  s.placement[key] = node;
  if (!s.nodes.includes(node)) s.nodes = [...s.nodes, node].sort();
}

function applyNode(slice, e, d) {
  const scheme = d.scheme || "placement";
  const s = shardOf(slice, scheme);
  place(slice, scheme, d.key, d.node);
  s.moves.push({ seq: e.seq, key: d.key, from: d.from ?? null, to: d.node });
  if (s.moves.length > MOVES_KEPT) s.moves.shift();
  s.movedKeys[d.key] = s.changes + 1; // moved in the change about to be announced
}

function applyShard(slice, e, d) {
  const s = shardOf(slice, d.scheme || "placement");
  s.changes++;
  s.nodes = [...(d.nodes || s.nodes)];
  s.moved = d.moved ?? null;
  s.changedAt = e.t;
  s.change = d.node ? { node: d.node, kind: d.change } : null;
  if (d.points && slice.ring) slice.ring.points = d.points;
  if (d.slots && slice.ring) slice.ring.slots = d.slots;
}

// Where a key sits on the ketama ring: the first node point after its hash, as uhashring's
// bisect finds it (round the circle past the last point).
export function ringNode(points, pos) {
  let lo = 0;
  let hi = points.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (points[mid][0] <= pos) lo = mid + 1;
    else hi = mid;
  }
  return points[lo === points.length ? 0 : lo][1];
}

export function slotNode(ranges, slot) {
  for (const [first, last, node] of ranges) if (slot >= first && slot <= last) return node;
  return null;
}

// The run's keys and nodes as the router laid them out: every key's ring position and slot, so
// the ring and the slot map can show all keys, not only those events named.
function applyLayout(slice, e, d) {
  slice.ring = { keys: d.keys || {}, points: d.points || [], slots: d.slots || [] };
  for (const scheme of ["modulo", "ketama", "slots"]) {
    const s = shardOf(slice, scheme);
    s.nodes = [...(d.nodes || [])];
    for (const [key, [pos, slot]] of Object.entries(slice.ring.keys)) {
      const node = scheme === "modulo" ? d.modulo?.[key] : scheme === "ketama" ? ringNode(slice.ring.points, pos) : slotNode(slice.ring.slots, slot);
      if (node) s.placement[key] = node;
    }
  }
}

function applyBreaker(slice, e, d) {
  let b = slice.breakers[d.node];
  if (!b) b = slice.breakers[d.node] = { node: d.node, history: [] };
  Object.assign(b, { state: d.state, failures: d.failures ?? 0, reason: d.reason || "", t: e.t });
  b.history.push({ seq: e.seq, t: e.t, from: d.from, to: d.state, reason: d.reason || "" });
  if (b.history.length > BREAKER_KEPT) b.history.shift();
}

function applyNear(slice, e, d) {
  const counts = (slice.near.counts[d.client] ||= {});
  counts[d.op] = (counts[d.op] || 0) + 1;
  slice.near.latest.push({ seq: e.seq, t: e.t, client: d.client, key: d.key ?? null, op: d.op, extra: d.connection ?? d.entries ?? d.kept ?? null });
  if (slice.near.latest.length > NEAR_KEPT) slice.near.latest.shift();
}

const STATE_TYPES = {
  entry: applyEntry,
  row: applyRow,
  read: applyRead,
  lease: applyLease,
  node: applyNode,
  shard: applyShard,
  layout: applyLayout,
  breaker: applyBreaker,
  near: applyNear,
};

const CHECKED = {
  no_stale_read(slice, ev) {
    if (!ev || typeof ev !== "object" || ev.reads == null) return;
    for (const [key, ms] of Object.entries(ev.windows_ms || {})) keyOf(slice, key).checkerMs = ms;
    slice.checked = { ...(slice.checked || {}), stale: ev.stale ?? 0, reads: ev.reads, windowsMs: ev.windows_ms || {} };
  },
  convergence(slice, ev) {
    if (!ev || typeof ev !== "object" || ev.cached == null) return;
    for (const x of ev.differing || []) {
      if (x.key == null) continue;
      keyOf(slice, x.key).checkerDiffer = { cached: x.cached, row: x.row };
    }
    slice.checked = { ...(slice.checked || {}), cached: ev.cached, differing: (ev.differing || []).length };
  },
};

// The same evidence under the name the cache-node-down scenario gives its bounded check.
CHECKED.stale_within_ttl = CHECKED.no_stale_read;

export function apply(slice, e) {
  const d = e.data || {};
  if (e.kind === "state" && STATE_TYPES[d.type]) {
    STATE_TYPES[d.type](slice, e, d);
    slice.rev++;
  } else if (e.kind === "metric" && d.name === "keys_moved_share" && d.scheme) {
    shardOf(slice, d.scheme).share = d.value ?? d.y;
    slice.rev++;
  } else if (e.kind === "op" && applyWrite(slice, e, d)) {
    slice.rev++;
  } else if (e.kind === "check" && CHECKED[d.name]) {
    CHECKED[d.name](slice, d.evidence);
    slice.rev++;
  } else if (e.kind === "end") {
    slice.ended = true;
    slice.endStatus = d.status || "done";
    for (const inv of d.invariants || []) if (CHECKED[inv.name]) CHECKED[inv.name](slice, inv.evidence);
    slice.rev++;
  }
}

/** The lines to draw, at most `max`: those differing first, then the ones that changed last. */
export function chooseLines(slice, t, max) {
  // A key turned away before the cache (not in the Bloom filter) has neither entry nor row to show.
  const all = Object.values(slice.lines).filter((line) => line.entry || slice.keys[line.key].row);
  const flagged = (line) => {
    const k = slice.keys[line.key];
    return k.checkerMs != null || k.checkerDiffer != null || k.staleReads > 0;
  };
  const rank = (line) => (differs(slice, line, t) ? 2 : 0) + (flagged(line) ? 1 : 0);
  const chosen = [...all].sort((a, b) => rank(b) - rank(a) || b.seq - a.seq).slice(0, max);
  chosen.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return { chosen, total: all.length };
}
