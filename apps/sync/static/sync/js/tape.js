// The binlog as a tape: one cell per event the reader took, in order of position, with two markers,
// how far the reader has read and the offset committed durably. The cells between them are what a
// restart reads again (or, when the offset went first, what a crash loses); a cell read twice says so.

import { html } from "../../runs/js/svg.js";
import { comparePos } from "./slice.js";

const SHOWN = 13; // cells drawn at most (what fits beside the tables): the newest, and the ones since the committed offset
const HEAD = 4; // when the gap is longer than that, its first cells, then a count, then the newest

const KINDS = [
  [/write|insert/i, "W", "write rows"],
  [/update/i, "U", "update rows"],
  [/delete/i, "D", "delete rows"],
  [/xid|commit/i, "C", "commit"],
  [/gtid|begin/i, "G", "transaction begins"],
  [/query|alter|ddl/i, "Q", "statement (DDL)"],
  [/rotate/i, "R", "next binlog file"],
  [/table.?map/i, "T", "table map"],
];

// The reader's own word for a change, when it tells one, before the event's class name.
const OPS = { insert: "W", update: "U", delete: "D", commit: "C", ddl: "Q", begin: "G" };

function kindOf(entry) {
  const letter = OPS[entry.op];
  if (letter) return { letter, text: KINDS.find(([, l]) => l === letter)[2] };
  for (const [pattern, l, text] of KINDS) if (pattern.test(entry.event)) return { letter: l, text };
  return { letter: "·", text: entry.event };
}

/** Where a position falls on the tape: the number of cells before it. */
function cellsBefore(tape, p) {
  if (!p) return null;
  let n = 0;
  for (const entry of tape) {
    const end = entry.next_pos != null ? { file: entry.file, pos: entry.next_pos } : entry;
    if (comparePos(end, p) <= 0) n++;
    else break;
  }
  return n;
}

function marker(kind, p, text) {
  const el = html("span", { className: `sync-marker sync-marker--${kind}`, dataset: { testid: `sync-marker-${kind}` }, title: `${text} ${p.file}:${p.pos}` });
  el.append(html("span", { className: "sync-marker__label" }, text), html("span", { className: "sync-marker__pos" }, `${p.file}:${p.pos}`));
  return el;
}

export function renderTape(slice) {
  const tape = slice.tape;
  const read = cellsBefore(tape, slice.reader);
  const committed = cellsBefore(tape, slice.committed);
  // The latest crash stays in the window (with what it made a restart read again), however long ago.
  const kills = (slice.applier?.killedAt || []).map((x) => ({ ...x, k: cellsBefore(tape, x.at) }));
  const lastKill = kills.length ? kills.at(-1).k : tape.length;
  const lo = Math.min(committed ?? tape.length, read ?? tape.length, lastKill);
  // Cells to draw: from just before the committed offset, or the newest SHOWN if that is nearer.
  const start = Math.max(0, Math.min(lo - 2, tape.length - SHOWN));
  const skipped = [];
  const indices = [];
  for (let i = start; i < tape.length; i++) indices.push(i);
  if (indices.length > SHOWN) {
    const head = indices.slice(0, HEAD);
    const tail = indices.slice(-(SHOWN - HEAD));
    skipped.push(indices.length - head.length - tail.length);
    indices.splice(0, indices.length, ...head, null, ...tail);
  }
  const strip = html("div", { className: "sync-tape__strip", dataset: { testid: "sync-tape-strip" } });
  const snapshots = slice.snapshots.filter((x) => x.at).map((x) => ({ ...x, k: cellsBefore(tape, x.at) }));
  const place = (k) => {
    const killed = kills.filter((x) => x.k === k);
    if (killed.length) {
      const mark = html("span", { className: "sync-kill", title: `the applier was killed here, read to ${killed[0].at.file}:${killed[0].at.pos} (${killed.map((x) => x.cause).join("; ")})`, dataset: { testid: "sync-kill" } }, killed.length > 1 ? `✕${killed.length}` : "✕");
      strip.append(mark);
    }
    // A snapshot's position shares its marker's label with an offset that stands at the same place.
    const snap = snapshots.some((x) => x.k === k) ? "snapshot · " : "";
    if (committed === k && read === k) strip.append(marker("both", slice.reader, `${snap}read = committed`));
    else if (committed === k || read === k) {
      if (committed === k) strip.append(marker("committed", slice.committed, `${snap}committed`));
      if (read === k) strip.append(marker("reader", slice.reader, `${committed === k ? "" : snap}reader`));
    } else if (snap) strip.append(marker("snapshot", snapshots.find((x) => x.k === k).at, "snapshot"));
  };
  for (const i of indices) {
    if (i === null) {
      strip.append(html("span", { className: "sync-tape__more" }, `… ${skipped[0].toLocaleString("en")} more …`));
      continue;
    }
    place(i);
    const entry = tape[i];
    const { letter } = kindOf(entry);
    // Read past the committed offset: a restart resumes before it and takes it again.
    const inGap = committed != null && read != null && i >= committed && i < read;
    const unread = read != null && i >= read;
    const cls = ["sync-cell-tape", `sync-cell-tape--${letter === "·" ? "other" : letter}`];
    if (inGap) cls.push("is-gap");
    if (committed != null && i < committed) cls.push("is-committed");
    if (unread) cls.push("is-unread");
    if (entry.seen > 1) cls.push("is-replayed");
    const ids = entry.ids.length ? ` ids ${entry.ids.slice(0, 8).join(", ")}${entry.ids.length > 8 ? "…" : ""}` : "";
    const cell = html("span", { className: cls.filter(Boolean).join(" "), dataset: { pos: `${entry.file}:${entry.pos}`, seen: String(entry.seen) }, title: `${entry.event} at ${entry.file}:${entry.pos}${ids}${entry.gtid ? ` gtid ${entry.gtid}` : ""}${entry.seen > 1 ? ` (read ${entry.seen} times)` : ""}` });
    cell.append(html("span", { className: "sync-cell-tape__kind" }, letter), html("span", { className: "sync-cell-tape__pos" }, String(entry.pos)));
    if (entry.seen > 1) cell.append(html("span", { className: "sync-cell-tape__seen" }, `×${entry.seen}`));
    strip.append(cell);
  }
  place(tape.length);
  const gap = read != null && committed != null ? read - committed : null;
  const note = html("p", { className: "sync-tape__note", dataset: { testid: "sync-tape-note" } });
  const parts = [`${tape.length.toLocaleString("en")} binlog event${tape.length === 1 ? "" : "s"} read${start > 0 ? ` (the ${start.toLocaleString("en")} first not drawn)` : ""}`];
  if (gap != null && gap > 0) {
    parts.push(`${gap} between the committed offset and the reader: a crash now makes a restart read ${gap === 1 ? "it" : "them"} again`);
  } else if (gap != null && gap < 0) {
    parts.push(`the offset is committed ${-gap} event${gap === -1 ? "" : "s"} ahead of what was read and applied: a crash now loses ${gap === -1 ? "it" : "them"}`);
  } else if (gap === 0) {
    parts.push("the committed offset is where the reader is: nothing to replay");
  }
  if (slice.replays) parts.push(`${slice.replays} read again after a restart`);
  note.textContent = `${parts.join("; ")}.`;
  note.classList.toggle("is-loss", gap != null && gap < 0);
  const notes = [note];
  const a = slice.applier;
  if (a && (a.kills || a.exits)) {
    const told = [`the applier ran ${a.life} time${a.life === 1 ? "" : "s"}`];
    if (a.kills) told.push(`killed ${a.kills} time${a.kills === 1 ? "" : "s"}${a.last ? ` (last: ${a.last.cause})` : ""}`);
    if (a.exits) told.push(`exited ${a.exits} time${a.exits === 1 ? "" : "s"}`);
    told.push("each new one resumes at the committed offset");
    notes.push(html("p", { className: "sync-tape__applier", dataset: { testid: "sync-applier" } }, `${told.join("; ")}.`));
  }
  for (const p of slice.purged) {
    notes.push(html("p", { className: "sync-tape__purged" }, `The binlog at ${p.at ? `${p.at.file}:${p.at.pos}` : "the reader's position"} was purged (error 1236): B was snapshotted again rather than skip the changes.`));
  }
  const legend = html("p", { className: "legend small sync-tape__legend" });
  for (const [cls, text] of [["is-committed", "applied and committed"], ["is-gap", "read, offset not committed"], ["is-unread", "not read yet"], ["is-replayed", "read again"]]) {
    const item = html("span", { className: "legend__item" });
    item.append(html("i", { className: `sync-swatch sync-cell-tape ${cls}` }), text);
    legend.append(item);
  }
  if (kills.some((x) => x.k >= start)) {
    const item = html("span", { className: "legend__item" });
    item.append(html("span", { className: "sync-kill sync-kill--legend" }, "✕"), "the applier killed here");
    legend.append(item);
  }
  const kinds = new Set(tape.map((e) => kindOf(e).letter));
  const letters = KINDS.filter(([, letter]) => kinds.has(letter)).map(([, letter, text]) => `${letter} ${text}`);
  if (letters.length) legend.append(html("span", { className: "legend__item muted" }, letters.join(" · ")));
  return [...notes, strip, legend];
}
