// The cache and the table side by side, one line per key: the cached entry's version and the time
// left on its TTL, the row's version, and between them how they stand. A key whose entry differs
// from its row is coloured, with how long it has differed; once the checker read the servers, the
// stale window it measured is shown beside it.

import { formatT } from "../../runs/js/fold.js";
import { html } from "../../runs/js/svg.js";
import { chooseLines, differedMs, differs, expiresAt, liveEntry } from "./slice.js";

export const MAX_KEYS = 16;
const FRESH = 4; // a key among the last FRESH changes is lit

function ttlCell(entry, t) {
  const cell = html("td", { className: "cache-ttl" });
  const end = expiresAt(entry);
  if (!entry || entry.version == null) return cell;
  if (end == null) {
    cell.append(html("span", { className: "muted" }, entry.dirty ? "dirty, no TTL" : "no TTL"));
    return cell;
  }
  const left = Math.max(0, end - t);
  const bar = html("span", { className: "cache-ttl__bar", title: `TTL ${formatT(entry.ttl_ms)}, set at ${formatT(entry.t)}` });
  const fill = html("span", { className: "cache-ttl__fill" });
  fill.style.width = `${Math.round((100 * left) / entry.ttl_ms)}%`;
  bar.append(fill);
  cell.append(bar, html("span", { className: "cache-ttl__left" }, left > 0 ? `${formatT(left)} left` : "expired"));
  return cell;
}

function statusCell(slice, line, t, ended) {
  const k = slice.keys[line.key];
  const cell = html("td", { className: "cache-status" });
  const parts = [];
  const ms = differedMs(line, t);
  if (differs(slice, line, t)) {
    const how = line.entry.version < k.row.version ? "behind" : "ahead of";
    parts.push(`cache v${line.entry.version} ${how} row v${k.row.version} for ${formatT(ms)}`);
  } else {
    if (liveEntry(line.entry, t) && k.row) parts.push(line.entry.dirty ? "dirty: not in the table yet" : "equal");
    else if (k.row) parts.push("not cached");
    else if (liveEntry(line.entry, t)?.null) parts.push("no such row: its absence is cached");
    // Earlier windows (a write's commit before its delete, a stale fill until its TTL ran out).
    if (ms > 0) parts.push(`differed ${formatT(ms)} in all`);
  }
  if (k.staleReads) parts.push(`${k.staleReads} stale read${k.staleReads === 1 ? "" : "s"}`);
  if (line.refused) parts.push(`fill v${line.refused.version} by ${line.refused.by} refused`);
  cell.append(html("span", {}, parts.join(" · ")));
  if (k.checkerMs != null) cell.append(html("span", { className: "cache-status__checker", dataset: { testid: "cache-checker-window" } }, `checker: stale window ${formatT(k.checkerMs)}`));
  if (k.checkerDiffer) cell.append(html("span", { className: "cache-status__checker" }, `checker: cached v${k.checkerDiffer.cached}, row v${k.checkerDiffer.row} at the end`));
  if (!parts.length && !k.checkerMs && ended) cell.textContent = "—";
  return cell;
}

export function renderKeys(slice, t) {
  const { chosen, total } = chooseLines(slice, t, MAX_KEYS);
  const table = html("table", { className: "cache-keys", dataset: { testid: "cache-keys-table" } });
  const head = html("tr", {});
  for (const [text, cls] of [["key", ""], ["cache", "cache-side--cache"], ["TTL", "cache-side--cache"], ["", ""], ["table", "cache-side--db"], ["", ""]]) head.append(html("th", { className: cls }, text));
  const sub = html("tr", { className: "cache-cols" });
  for (const text of ["", "version", "left", "", "version", "how they stand"]) sub.append(html("th", {}, text));
  table.append(html("thead", {}, null));
  table.tHead.append(head, sub);
  const body = html("tbody", {});
  for (const line of chosen) {
    const k = slice.keys[line.key];
    const entry = liveEntry(line.entry, t);
    const wrong = differs(slice, line, t);
    const stale = wrong || k.checkerMs != null || k.checkerDiffer != null || k.staleReads > 0;
    const status = wrong ? "differ" : stale ? "stale" : entry ? "cached" : "uncached";
    const tr = html("tr", { className: `cache-key${wrong ? " is-differ" : stale ? " was-stale" : ""}`, dataset: { key: line.key, line: line.id, status } });
    const fresh = slice.n - line.seq < FRESH;
    const name = html("td", { className: "cache-key__name" }, line.key);
    if (line.scheme) name.append(html("span", { className: "cache-key__scheme" }, line.scheme));
    tr.append(name);
    const cached = html("td", { className: `cache-cell cache-cell--cache${fresh && line.entry && line.entry.t >= (k.row?.t ?? 0) ? " is-fresh" : ""}`, dataset: { op: line.entry?.op || "" } });
    if (entry) {
      cached.textContent = entry.null ? "∅ absent" : `v${entry.version}`;
      const by = [entry.by && `by ${entry.by}`, entry.node && `on ${entry.node}`, entry.token != null && `token ${entry.token}`].filter(Boolean).join(", ");
      cached.title = `${entry.op}${by ? ` ${by}` : ""} at ${formatT(entry.t)}`;
    } else if (line.entry) {
      cached.append(html("span", { className: "muted" }, line.entry.version == null ? "deleted" : "expired"));
    }
    tr.append(cached, ttlCell(entry, t), html("td", { className: "cache-vs" }, wrong ? "≠" : entry && k.row ? "=" : ""));
    const row = html("td", { className: `cache-cell cache-cell--db${fresh && k.row && k.row.t >= (line.entry?.t ?? 0) ? " is-fresh" : ""}` }, k.row ? `v${k.row.version}` : "");
    if (k.row?.by) row.title = `committed by ${k.row.by} at ${formatT(k.row.t)}`;
    tr.append(row, statusCell(slice, line, t, slice.ended));
    body.append(tr);
  }
  table.append(body);
  const out = [table];
  if (total > chosen.length) out.push(html("p", { className: "cache-more small muted" }, `${total - chosen.length} more entries not shown: those that differ and changed last come first.`));
  return out;
}
