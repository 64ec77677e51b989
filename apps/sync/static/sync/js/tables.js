// Tables A and B side by side, one line per key: A's row on the left, B's on the right, and between
// them how B stands (equal, on its way, missing, stale, duplicated, extra). A row lights up when it
// changes; a row that lands in B travels across. A large table is shown as a window around the
// rows that change, the rest summarised in counts between them.

import { html } from "../../runs/js/svg.js";
import { countStatuses, idSpan, namedIds, rowAt, statusOf } from "./slice.js";

export const MAX_LINES = 26; // lines at most, rows and the gaps that count the rows left out
const FOCUS = 6; // the keys of the latest changes, each shown with its neighbours as space allows
const FRESH = 6; // a row changed within its table's last FRESH changes is lit
const TRAVEL = 12; // rows that landed since the last drawing travel, unless that was many changes ago

export const STATUS_TEXT = {
  equal: "in both",
  behind: "not in B yet",
  missing: "missing from B",
  stale: "stale in B",
  duplicate: "duplicated in B",
  extra: "deleted in A, still in B",
  differ: "different in B",
  gone: "deleted",
};

/**
 * The ids to give a line: every live one if they fit; else windows around the keys that changed last
 * (once the run ended, also around the first keys where B is not A), as wide as `max` lines allow
 * with one line for each run of keys left out.
 */
export function chooseIds(slice, max = MAX_LINES) {
  const span = idSpan(slice);
  if (!span) return [];
  const [lo, hi] = span;
  const latest = (id) => Math.max(slice.A.rows[id]?.seq ?? -1, slice.B.rows[id]?.seq ?? -1);
  const recent = (id) => slice.n - latest(id) < FRESH;
  // A key in neither table is left out, unless it was deleted a moment ago (to see the delete).
  const shown = (id) => statusOf(slice, id) !== "gone" || recent(id);
  if (hi - lo + 1 <= max) {
    const all = [];
    for (let id = lo; id <= hi; id++) if (shown(id)) all.push(id);
    if (all.length <= max) return all;
  }
  const named = namedIds(slice);
  const byRecency = [...named].sort((x, y) => latest(y) - latest(x));
  let focus = byRecency.slice(0, FOCUS);
  if (slice.ended) {
    // Half the windows on keys where B is not A (the first of each kind of difference, so each is
    // seen, then the lowest), half on the latest changes.
    const wrong = named.filter((id) => !["equal", "gone"].includes(statusOf(slice, id)));
    const firsts = [...new Map(wrong.map((id) => [statusOf(slice, id), id]).reverse()).values()];
    const wrongFirst = [...new Set([...firsts, ...wrong])].slice(0, FOCUS / 2);
    focus = [...new Set([...wrongFirst, ...byRecency])].slice(0, FOCUS);
  }
  if (!focus.length && slice.A.base) focus = [slice.A.base.lo];
  const around = (radius, keys) => {
    const ids = new Set();
    for (const f of keys) for (let id = Math.max(lo, f - radius); id <= Math.min(hi, f + radius); id++) if (shown(id)) ids.add(id);
    return [...ids].sort((x, y) => x - y);
  };
  const lines = (ids) => {
    let n = ids.length + (ids.length && ids[0] > lo ? 1 : 0) + (ids.length && ids.at(-1) < hi ? 1 : 0);
    for (let i = 1; i < ids.length; i++) if (ids[i] > ids[i - 1] + 1) n++;
    return n;
  };
  while (focus.length > 1 && lines(around(0, focus)) > max) focus = focus.slice(0, -1);
  let best = around(0, focus);
  for (let radius = 1; radius <= max; radius++) {
    const wider = around(radius, focus);
    if (lines(wider) > max) break;
    best = wider;
  }
  return best;
}

function gapText(counts) {
  const parts = [];
  for (const [status, n] of Object.entries(counts)) if (n && status !== "gone") parts.push(`${n.toLocaleString("en")} ${STATUS_TEXT[status]}`);
  const total = Object.entries(counts).reduce((sum, [status, n]) => sum + (status === "gone" ? 0 : n), 0);
  return total ? `… ${total.toLocaleString("en")} more row${total === 1 ? "" : "s"}: ${parts.join(", ")}` : "";
}

function short(value) {
  return value == null ? "" : String(value).slice(0, 12);
}

function cells(row, side, slice, { copies = false } = {}) {
  const present = row != null && row.present;
  const tbl = side === "B" ? slice.B : slice.A;
  const age = row?.age != null ? tbl.n - row.age : Infinity;
  const fresh = age < FRESH;
  const attrs = (extra) => ({ className: `sync-cell sync-cell--${side}${extra}`, dataset: fresh ? { age: String(age), op: row.op } : {} });
  if (!present) {
    // A row deleted a moment ago is still drawn, struck through, so the delete can be seen.
    const deleted = row != null && fresh && row.op === "delete";
    const text = deleted ? "deleted" : "";
    return [html("td", attrs(deleted ? " is-fresh is-deleted sync-cell--empty" : " sync-cell--empty"), text), html("td", attrs(" sync-cell--empty"))];
  }
  const lit = fresh ? " is-fresh" : "";
  const version = html("td", attrs(`${lit} sync-cell--version`), row.version != null ? `v${row.version}` : "");
  if (copies && row.count > 1) version.append(html("span", { className: "sync-copies", title: `${row.count} rows in B for this key` }, `×${row.count}`));
  const value = html("td", attrs(`${lit} sync-cell--value`), short(row.value));
  if (row.value === undefined && !row.base) value.title = "value not told by the event";
  version.title = [row.bkey ? `business key ${row.bkey}` : "", row.op && row.by ? `last ${row.op} by ${row.by}` : ""].filter(Boolean).join("; ");
  return [version, value];
}

function between(status, a, b, landing) {
  const td = html("td", { className: `sync-flow sync-flow--${status}`, title: STATUS_TEXT[status] });
  const mark = {
    equal: "=",
    behind: "→",
    missing: "✗",
    stale: "≠",
    duplicate: "", // the number of copies, below
    extra: "✗",
    differ: "≠",
    gone: "",
  }[status];
  td.append(html("span", { className: "sync-flow__mark" }, status === "duplicate" ? `×${b.count}` : mark));
  let note = "";
  if (status === "behind" && a?.present && b?.present) note = `B has v${b.version}`;
  else if (status === "behind" && a?.present) note = "not in B yet";
  else if (status === "behind") note = "delete not applied";
  else if (status === "stale") note = `B v${b.version} < A v${a.version}`;
  else if (status !== "equal" && status !== "gone") note = STATUS_TEXT[status];
  if (note) td.append(html("span", { className: "sync-flow__note" }, note));
  if (b?.checked || a?.checked) td.append(html("span", { className: "sync-flow__checked", title: "the checker read this from the servers at the end; the run's events did not tell it" }, "found by the checker"));
  if (landing) td.append(html("i", { className: "sync-flow__dot", "aria-hidden": "true" }));
  return td;
}

function legend() {
  const p = html("p", { className: "legend small sync-legend" });
  const item = (cls, text, mark = "") => {
    const el = html("span", { className: "legend__item" });
    el.append(html("i", { className: `sync-swatch ${cls}` }, mark), text);
    return el;
  };
  p.append(
    item("sync-swatch--insert", "just inserted"),
    item("sync-swatch--update", "just updated"),
    item("sync-swatch--delete", "just deleted"),
    item("sync-swatch--mark sync-flow--behind", "B has not got it yet", "→"),
    item("sync-swatch--mark sync-flow--equal", "equal", "="),
    item("sync-swatch--bad", "missing, stale, duplicated or extra in B at the end"),
    item("sync-swatch--dot", "a row landing in B"),
  );
  return p;
}

export class TablesView {
  constructor(box) {
    this.box = box;
    this.drawnN = null; // slice.n when last drawn, to tell which rows landed since
    this.drawnSlice = null;
  }

  render(slice) {
    // Travel only while the view moves forward a little; a scrubbed or rebuilt view is still.
    const forward = slice === this.drawnSlice && this.drawnN != null && slice.n > this.drawnN && slice.n - this.drawnN <= TRAVEL;
    const since = this.drawnN;
    this.drawnSlice = slice;
    this.drawnN = slice.n;
    const ids = chooseIds(slice);
    const table = html("table", { className: "sync-rows", dataset: { testid: "sync-rows" } });
    const head = html("thead");
    const top = html("tr");
    top.append(
      html("th", { colSpan: 3, className: "sync-side sync-side--A", scope: "colgroup" }, "A · source"),
      html("th", { className: "sync-flow-head" }, ""),
      html("th", { colSpan: 2, className: "sync-side sync-side--B", scope: "colgroup" }, "B · target"),
    );
    const cols = html("tr", { className: "sync-cols" });
    for (const text of ["id", "version", "value", "", "version", "value"]) cols.append(html("th", {}, text));
    head.append(top, cols);
    const body = html("tbody");
    let prev = null;
    const span = idSpan(slice);
    const gap = (lo, hi) => {
      const text = gapText(countStatuses(slice, lo, hi));
      if (!text) return;
      const tr = html("tr", { className: "sync-gap", dataset: { lo: String(lo), hi: String(hi) } });
      tr.append(html("td", { colSpan: 6 }, text));
      body.append(tr);
    };
    for (const id of ids) {
      if (prev != null && id > prev + 1) gap(prev + 1, id - 1);
      else if (prev == null && span && id > span[0]) gap(span[0], id - 1);
      prev = id;
      const a = rowAt(slice.A, id);
      const b = rowAt(slice.B, id);
      const status = statusOf(slice, id);
      const landed = forward && b?.seq != null && b.seq > since && b.present;
      const tr = html("tr", { className: `sync-row sync-row--${status}`, dataset: { id: String(id), status } });
      tr.append(html("td", { className: "sync-id" }, String(id)), ...cells(a, "A", slice), between(status, a, b, landed), ...cells(b, "B", slice, { copies: true }));
      body.append(tr);
    }
    if (prev != null && span && prev < span[1]) gap(prev + 1, span[1]);
    if (!ids.length) {
      const tr = html("tr", { className: "sync-gap" });
      tr.append(html("td", { colSpan: 6 }, "No rows yet."));
      body.append(tr);
    }
    table.append(head, body);
    this.box.replaceChildren(table, legend());
  }
}
