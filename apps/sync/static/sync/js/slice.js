// The sync lab's slice of the run page's state, folded from the run's events one at a time (the
// vocabulary is apps/sync/engine/events.py): tables A and B as the events tell them, the binlog
// tape and the reader's and committed offsets, the retries, the checksum chunks, the lag. Pure
// data: no DOM, no timers, so a scrubbed view is exactly what a live viewer saw.

// What a key's row is in B compared with A. "behind" while the run goes on (the syncer may still
// copy it); once it ended the same difference is what the checker reports: missing, stale, extra.
export const STATUSES = ["equal", "behind", "missing", "stale", "duplicate", "extra", "differ", "gone"];

function table() {
  // `base`: ids lo..hi, all present at version 1, as a bulk load left them (never one event per
  // row); `rows`: every row an event named, which overrides the base.
  // `n`: the table's own row events, so each side's latest changes stay lit however busy the other is.
  return { base: null, count: 0, rows: {}, n: 0 };
}

export function init() {
  return {
    rev: 0,
    n: 0, // row events folded: the clock that says how recently a row changed
    A: table(),
    B: table(),
    ids: null, // the sorted ids events named (cached; null when a new one came)
    late: null, // the long transaction: {state: "open" | "committed", writes, t}
    tape: [], // binlog events in order of position: {file, pos, next_pos, event, ids, gtid, seen, seq, t}
    tapeAt: {}, // "file:pos:ids" -> index in tape
    reader: null, // {file, pos}: how far the reader has read
    committed: null, // {file, pos}: the offset stored durably, where a restart resumes
    replays: 0, // binlog events taken again (a restart from the committed offset)
    snapshots: [], // {at: {file, pos}, rows, why}: B replaced by a consistent snapshot of A
    purged: [], // {at, error}: the binlog the reader needed was gone (error 1236)
    applier: null, // the CDC applier's process: {state, pid, life, kills, exits, last: the latest kill}
    replayedTxns: 0, // source transactions B got again after a restart (`replay` events)
    watermark: null, // a poller's watermark: {value, since, rows, polls}
    passes: [], // checksum passes: {pass, chunks, differing, repaired}
    retries: [], // {seq, t, actor, what, attempt, wait_ms, error}
    chunks: {}, // i -> {i, lo, hi, state, a, b, rows, states: [state...], t}
    chunkOrder: [],
    lag: null, // the latest lag sample: {value, t}
    lagMax: null,
    convergence: null, // {value, caught_up}: when B matched A after the last write
    ended: false,
    endStatus: null, // the end event's status: done, failed, cancelled
    // What the checker read from both servers at the end (b_equals_a, no_duplicate_keys): the
    // truth about B where the events cannot tell it (a COMMIT whose reply was lost).
    checked: null, // {rows: {A, B}, missing, extra, different, duplicated}
  };
}

function rowOf(tbl, id) {
  return tbl.rows[id] || null;
}

/** A's or B's row for `id` as the view knows it: {present, version, value, bkey, count, seq, ...}. */
export function rowAt(tbl, id) {
  const row = rowOf(tbl, id);
  if (row) return row;
  if (inBase(tbl, id)) return { id, present: true, version: 1, value: undefined, bkey: undefined, count: 1, seq: null, base: true };
  return null;
}

function inBase(tbl, id) {
  return tbl.base != null && id >= tbl.base.lo && id <= tbl.base.hi;
}

function touch(slice, tbl, id) {
  let row = rowOf(tbl, id);
  if (!row) {
    const was = inBase(tbl, id);
    row = { id, present: was, version: was ? 1 : null, value: undefined, bkey: undefined, count: was ? 1 : 0, seq: null };
    tbl.rows[id] = row;
    slice.ids = null;
  }
  return row;
}

function applyRow(slice, e, d) {
  const tbl = d.table === "B" ? slice.B : slice.A;
  const id = Number(d.id);
  if (!Number.isFinite(id)) return;
  const row = touch(slice, tbl, id);
  const op = d.op;
  slice.n++;
  if (op === "delete") {
    if (row.present) tbl.count -= row.count;
    row.present = false;
    row.count = 0;
  } else {
    // A plain INSERT into a B with a key of its own adds a second copy of a row it already has.
    const copies = d.table === "B" && op === "insert" && row.present ? row.count + 1 : Math.max(row.count, 1);
    tbl.count += copies - (row.present ? row.count : 0);
    row.present = true;
    row.count = copies;
    if (d.version != null) row.version = d.version;
    // An update that does not say its value leaves it unknown (the late transaction's rows).
    row.value = d.value ?? (op === "insert" ? row.value : undefined);
    if (d.bkey != null) row.bkey = d.bkey;
  }
  row.op = op;
  row.by = d.by || null;
  row.seq = slice.n;
  row.age = ++tbl.n;
  row.t = e.t;
}

function applyLoad(slice, d) {
  const [lo, hi] = (d.ids || []).map(Number);
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return;
  if (d.table !== "B") {
    slice.A.base = { lo, hi };
    slice.A.count += d.rows ?? hi - lo + 1;
    slice.ids = null;
    return;
  }
  // B loaded in bulk (a snapshot, a copy) holds A's rows of that range as they are now.
  const B = slice.B;
  for (const row of Object.values(B.rows)) if (row.id >= lo && row.id <= hi && row.present) B.count -= row.count;
  B.base = { lo, hi };
  slice.n++;
  for (const id of namedIds(slice)) {
    if (id < lo || id > hi) continue;
    const a = rowAt(slice.A, id);
    const present = a != null && a.present;
    B.rows[id] = { id, present, version: a?.version ?? null, value: a?.value, bkey: a?.bkey, count: present ? 1 : 0, seq: slice.n, age: B.n + 1, op: "load", by: d.by || null };
  }
  B.n++;
  B.count += d.rows ?? countStatuses(slice, lo, hi).equal;
  slice.ids = null;
}

function position(p) {
  return p && p.file != null && p.pos != null ? { file: String(p.file), pos: Number(p.pos) } : null;
}

/** Orders two binlog positions: by file (binlog.000002 after binlog.000001), then by offset. */
export function comparePos(a, b) {
  if (a.file !== b.file) return a.file < b.file ? -1 : 1;
  return a.pos - b.pos;
}

function tapeKey(d) {
  // One binlog event may carry several rows, told as one tape event each: the ids tell them apart.
  return `${d.file}:${d.pos}:${(d.ids || []).join(",")}`;
}

function applyTape(slice, e, d) {
  const key = tapeKey(d);
  const known = slice.tapeAt[key];
  if (known != null) {
    // The same event read again: a restart resumed from an offset before it.
    slice.tape[known].seen++;
    slice.tape[known].seq = e.seq;
    slice.replays++;
    return;
  }
  const entry = { file: String(d.file), pos: Number(d.pos), next_pos: d.next_pos ?? null, event: d.event || "", op: d.op || null, ids: d.ids || [], gtid: d.gtid ?? null, seen: 1, seq: e.seq, t: e.t };
  let i = slice.tape.length;
  while (i > 0 && comparePos(slice.tape[i - 1], entry) > 0) i--;
  slice.tape.splice(i, 0, entry);
  if (i === slice.tape.length - 1) slice.tapeAt[key] = i;
  else slice.tapeAt = Object.fromEntries(slice.tape.map((x, k) => [tapeKey(x), k]));
}

/** B replaced by A's rows as they are now (a consistent snapshot): the view copies its own A. */
function applySnapshot(slice, e, d) {
  const B = slice.B;
  B.base = slice.A.base ? { ...slice.A.base } : null;
  B.rows = {};
  slice.n++;
  for (const [id, a] of Object.entries(slice.A.rows)) {
    B.rows[id] = { id: Number(id), present: a.present, version: a.version, value: a.value, bkey: a.bkey, count: a.present ? 1 : 0, seq: slice.n, age: B.n + 1, op: "load", by: e.actor };
  }
  B.n++;
  B.count = d.rows ?? slice.A.count;
  slice.ids = null;
  const at = position(d.position);
  slice.snapshots.push({ at, rows: d.rows ?? null, why: d.why || "snapshot", t: e.t });
}

function applyChunk(slice, e, d) {
  const i = d.i;
  // The first chunk checked again starts a new pass: the grid keeps the last pass's colours,
  // faded, until each chunk is checked again.
  if (d.state === "checking" && i === slice.chunkOrder[0]) {
    for (const c of Object.values(slice.chunks)) c.stale = true;
  }
  let chunk = slice.chunks[i];
  if (!chunk) {
    chunk = slice.chunks[i] = { i, states: [] };
    slice.chunkOrder.push(i);
    slice.chunkOrder.sort((x, y) => x - y);
  }
  if (d.state === "checking") {
    chunk.states = [];
    chunk.rows = null;
  }
  Object.assign(chunk, { lo: d.lo, hi: d.hi, state: d.state, t: e.t, seq: e.seq, stale: false });
  if (d.a != null) chunk.a = d.a;
  if (d.b != null) chunk.b = d.b;
  if (d.rows != null) chunk.rows = d.rows;
  if (chunk.states.at(-1) !== d.state) chunk.states.push(d.state);
}

const STATE_TYPES = {
  row: applyRow,
  load: (slice, e, d) => applyLoad(slice, d),
  late(slice, e, d) {
    slice.late = { state: d.state, writes: d.writes || [], t: e.t };
  },
  tape: applyTape,
  offsets(slice, e, d) {
    if (d.reader) slice.reader = position(d.reader);
    if (d.committed) slice.committed = position(d.committed);
  },
  retry(slice, e, d) {
    slice.retries.push({ seq: e.seq, t: e.t, actor: e.actor, what: d.what || e.actor, attempt: d.attempt, wait_ms: d.wait_ms ?? 0, cap_ms: d.cap_ms ?? null, error: d.error || "" });
  },
  chunk: applyChunk,
  snapshot: applySnapshot,
  replay(slice) {
    slice.replayedTxns++;
  },
  watermark(slice, e, d) {
    slice.watermark = { value: d.value, since: d.since, rows: d.rows, polls: (slice.watermark?.polls || 0) + 1 };
  },
  purged(slice, e, d) {
    slice.purged.push({ at: position(d.position), error: d.error || "", t: e.t });
  },
  applier(slice, e, d) {
    const a = slice.applier || (slice.applier = { state: null, pid: null, life: 0, kills: 0, exits: 0, last: null, killedAt: [] });
    a.state = d.state;
    a.pid = d.pid ?? null;
    a.life = d.life ?? a.life;
    if (d.state === "killed") {
      a.kills++;
      a.last = { reader: slice.reader, committed: slice.committed, cause: d.cause || "killed", t: e.t };
      if (slice.reader) a.killedAt.push({ at: slice.reader, cause: a.last.cause });
    }
    if (d.state === "exited") a.exits++;
  },
};

export function apply(slice, e) {
  const d = e.data;
  if (e.kind === "state" && STATE_TYPES[d.type]) {
    STATE_TYPES[d.type](slice, e, d);
    slice.rev++;
  } else if (e.kind === "metric" && d.name === "lag_ms") {
    slice.lag = { value: d.value ?? d.y, t: e.t };
    slice.lagMax = Math.max(slice.lagMax ?? 0, slice.lag.value ?? 0);
    slice.rev++;
  } else if (e.kind === "metric" && d.name === "convergence_lag_ms") {
    slice.convergence = { value: d.value ?? null, caught_up: Boolean(d.caught_up) };
    slice.rev++;
  } else if (e.kind === "log" && d.pass != null && d.chunks != null) {
    // A checksum pass's summary.
    slice.passes.push({ pass: d.pass, chunks: d.chunks, differing: d.differing ?? 0, repaired: d.repaired ?? 0, seq: e.seq });
    // Chunks past the pass's last one were cut in an earlier pass (the table since grew or shrank).
    for (const i of slice.chunkOrder) if (slice.chunks[i].stale) delete slice.chunks[i];
    slice.chunkOrder = slice.chunkOrder.filter((i) => i in slice.chunks);
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

// The checker's rows -----------------------------------------------------------------------------------

function setRow(slice, tbl, id, row, copies) {
  const r = touch(slice, tbl, id);
  const before = [r.present, r.count, r.version];
  if (r.present) tbl.count -= r.count;
  r.present = row != null && copies > 0;
  r.count = r.present ? copies : 0;
  if (row) Object.assign(r, { version: row.version ?? r.version, value: row.value ?? r.value, bkey: row.bkey ?? r.bkey });
  if (r.present) tbl.count += r.count;
  // Marked when the servers hold something the events did not tell (a COMMIT whose reply was lost).
  if (before[0] !== r.present || (r.present && (before[1] !== r.count || before[2] !== r.version))) r.checked = true;
}

const CHECKED = {
  b_equals_a(slice, ev) {
    if (!ev || typeof ev !== "object" || !ev.rows) return;
    for (const m of ev.missing || []) {
      setRow(slice, slice.A, m.id, m.A, 1);
      setRow(slice, slice.B, m.id, null, 0);
    }
    for (const x of ev.extra || []) {
      const copies = [].concat(x.B ?? []);
      setRow(slice, slice.A, x.id, null, 0);
      setRow(slice, slice.B, x.id, copies[0], copies.length || 1);
    }
    for (const c of ev.changed || []) {
      const copies = [].concat(c.B ?? []);
      setRow(slice, slice.A, c.id, c.A, 1);
      setRow(slice, slice.B, c.id, copies[0], copies.length);
    }
    // The checker counted every row; the events may have missed some (the lists hold the first few).
    slice.A.count = ev.rows.A;
    slice.B.count = ev.rows.B;
    slice.checked = { ...(slice.checked || {}), rows: ev.rows, missing: ev.missing_in_B, extra: ev.extra_in_B, different: ev.different };
  },
  no_duplicate_keys(slice, ev) {
    if (!ev || typeof ev !== "object" || ev.duplicated == null) return;
    for (const k of ev.keys || []) {
      if (k.id == null) continue;
      const r = touch(slice, slice.B, k.id);
      if (r.present) slice.B.count -= r.count;
      if (!r.present || r.count !== k.rows) r.checked = true;
      r.present = true;
      r.count = k.rows;
      slice.B.count += r.count;
    }
    if (slice.checked?.rows) slice.B.count = slice.checked.rows.B;
    slice.checked = { ...(slice.checked || {}), duplicated: ev.duplicated };
  },
};

// Comparing A and B ----------------------------------------------------------------------------------

/** How B's row for `id` stands against A's. */
export function statusOf(slice, id) {
  return compare(rowAt(slice.A, id), rowAt(slice.B, id), slice.ended);
}

function compare(a, b, ended) {
  const inA = a != null && a.present;
  const inB = b != null && b.present;
  if (!inA && !inB) return "gone";
  if (inB && b.count > 1) return "duplicate";
  if (inA && !inB) return ended ? "missing" : "behind";
  if (!inA) return ended ? "extra" : "behind";
  if (a.version != null && b.version != null && b.version < a.version) return ended ? "stale" : "behind";
  if (a.version != null && b.version != null && b.version > a.version) return "differ";
  // The same version with another value: B was changed behind the syncer's back.
  if (a.value != null && b.value != null && a.value !== b.value) return "differ";
  return "equal";
}

/** Every id an event named, sorted. */
export function namedIds(slice) {
  if (!slice.ids) {
    const ids = new Set([...Object.keys(slice.A.rows), ...Object.keys(slice.B.rows)].map(Number));
    slice.ids = [...ids].sort((x, y) => x - y);
  }
  return slice.ids;
}

/** The lowest and highest id either table holds or held, or null. */
export function idSpan(slice) {
  const ids = namedIds(slice);
  const ends = [...ids.slice(0, 1), ...ids.slice(-1)];
  for (const tbl of [slice.A, slice.B]) if (tbl.base) ends.push(tbl.base.lo, tbl.base.hi);
  return ends.length ? [Math.min(...ends), Math.max(...ends)] : null;
}

function overlap(lo, hi, base) {
  if (!base) return [lo, lo - 1];
  return [Math.max(lo, base.lo), Math.min(hi, base.hi)];
}

function size([lo, hi]) {
  return Math.max(0, hi - lo + 1);
}

/**
 * How many keys with ids in lo..hi stand in each status, without walking a bulk-loaded range one id
 * at a time: the ids no event named are counted by how the two bases overlap.
 */
export function countStatuses(slice, lo, hi) {
  const counts = Object.fromEntries(STATUSES.map((s) => [s, 0]));
  if (hi < lo) return counts;
  const a = overlap(lo, hi, slice.A.base);
  const b = overlap(lo, hi, slice.B.base);
  const both = [Math.max(a[0], b[0]), Math.min(a[1], b[1])];
  let nBoth = size(both);
  let nA = size(a) - nBoth;
  let nB = size(b) - nBoth;
  for (const id of namedIds(slice)) {
    if (id < lo || id > hi) continue;
    counts[statusOf(slice, id)]++;
    const inA = inBase(slice.A, id);
    const inB = inBase(slice.B, id);
    if (inA && inB) nBoth--;
    else if (inA) nA--;
    else if (inB) nB--;
  }
  counts.equal += nBoth;
  counts[slice.ended ? "missing" : "behind"] += nA;
  counts[slice.ended ? "extra" : "behind"] += nB;
  return counts;
}
