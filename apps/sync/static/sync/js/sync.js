// The sync lab's run-page panel: tables A and B side by side (rows lighting up as they change in A
// and travelling to B), the binlog tape with the reader's and the committed offsets, the retries
// and their backoff, the checksum chunks, and how far B trails A. Folded from the run's events
// (slice.js) like every other panel (runs/js/panels.js), so it is the same live, paused and
// scrubbed; a part with nothing to show (a naive run has no binlog) steps aside.

import { describeMetric } from "../../runs/js/charts.js";
import { formatT } from "../../runs/js/fold.js";
import { registerPanel } from "../../runs/js/panels.js";
import { html } from "../../runs/js/svg.js";
import { renderChunks } from "./chunks.js";
import { renderRetries } from "./retries.js";
import { apply, countStatuses, idSpan, init } from "./slice.js";
import { renderTape } from "./tape.js";
import { STATUS_TEXT, TablesView } from "./tables.js";

// events.lag() samples B's lag with x in seconds of the run's clock (apps/sync/engine/events.py).
describeMetric("lag_ms", { x: "run time (s)", y: "B behind A (ms)" });

// [status, counter label]: the differences counted above the tables, shown once there is one.
const COUNTED = [
  ["behind", "not in B yet"],
  ["missing", "missing from B"],
  ["stale", "stale in B"],
  ["duplicate", "duplicated in B"],
  ["extra", "deleted in A, still in B"],
  ["differ", "different in B"],
];
const BAD = new Set(["missing", "stale", "duplicate", "extra", "differ"]);

function box(testid, title, help) {
  const section = html("section", { className: "sync-box", dataset: { testid }, hidden: true });
  const head = html("h3", { className: "sync-box__title" }, title);
  if (help) head.append(html("span", { className: "sync-box__help" }, help));
  const body = html("div", { className: "sync-box__body" });
  section.append(head, body);
  return { section, body };
}

class SyncPanel {
  constructor(body) {
    this.counters = html("div", { className: "sync-counters", dataset: { testid: "sync-counters" } });
    this.caption = html("p", { className: "sync-caption", dataset: { testid: "sync-caption" } });
    this.tablesBox = html("div", { className: "sync-tables", dataset: { testid: "sync-tables" } });
    this.tables = new TablesView(this.tablesBox);
    this.tape = box("sync-tape", "Binlog tape", "the events the reader took, by position");
    this.retries = box("sync-retries", "Retries and backoff", "on the run's clock");
    this.chunks = box("sync-chunks", "Checksum chunks", "COUNT and BIT_XOR(CRC32) per key range, A against B");
    this.side = html("div", { className: "sync-side-col" });
    this.side.append(this.tape.section, this.retries.section, this.chunks.section);
    const grid = html("div", { className: "sync-grid" });
    grid.append(this.tablesBox, this.side);
    body.append(this.counters, this.caption, grid);
    this.shown = null;
    this.shownRev = -1;
  }

  sync(slice, state, { rebuild = false } = {}) {
    // The caption names the run's phase, which other events change.
    if (!rebuild && slice === this.shown && slice.rev === this.shownRev && state.phase === this.shownPhase) return;
    this.shown = slice;
    this.shownRev = slice.rev;
    this.shownPhase = state.phase;
    const span = idSpan(slice);
    const counts = span ? countStatuses(slice, span[0], span[1]) : {};
    this.renderCounters(slice, counts);
    this.renderCaption(slice, state, counts);
    this.tables.render(slice);
    this.fill(this.tape, slice.tape.length > 0 || slice.reader != null || slice.committed != null, () => renderTape(slice));
    // The newest end of the tape is where the reader is: keep it in sight when the strip scrolls.
    const strip = this.tape.body.querySelector(".sync-tape__strip");
    if (strip) strip.scrollLeft = strip.scrollWidth;
    this.fill(this.retries, slice.retries.length > 0, () => renderRetries(slice));
    this.fill(this.chunks, slice.chunkOrder.length > 0, () => renderChunks(slice));
    this.side.hidden = this.tape.section.hidden && this.retries.section.hidden && this.chunks.section.hidden;
  }

  fill(part, any, render) {
    part.section.hidden = !any;
    part.body.replaceChildren(...(any ? render() : []));
  }

  renderCounters(slice, counts) {
    const counter = (name, value, label, bad = false) => {
      const el = html("div", { className: `sync-counter${bad ? " is-bad" : ""}`, dataset: { counter: name } });
      el.append(html("span", { className: "sync-counter__value" }, value), html("span", { className: "sync-counter__name" }, label));
      return el;
    };
    const items = [
      counter("A", slice.A.count.toLocaleString("en"), "rows in A"),
      counter("B", slice.B.count.toLocaleString("en"), "rows in B"),
      counter("equal", (counts.equal || 0).toLocaleString("en"), "keys equal in both"),
    ];
    for (const [status, label] of COUNTED) {
      if (counts[status]) items.push(counter(status, counts[status].toLocaleString("en"), label, BAD.has(status)));
    }
    if (slice.lag && !slice.convergence) items.push(counter("lag", formatT(slice.lag.value), "B behind A now"));
    if (slice.replays) items.push(counter("replays", String(slice.replays), "binlog events read again"));
    if (slice.replayedTxns) items.push(counter("replayed", String(slice.replayedTxns), "transactions applied again after a restart"));
    if (slice.watermark) {
      const el = counter("watermark", clock(slice.watermark.value), `watermark after ${slice.watermark.polls} poll${slice.watermark.polls === 1 ? "" : "s"} (${slice.watermark.rows} rows read last)`);
      el.title = `the poller reads WHERE updated_at > ${slice.watermark.value}`;
      items.push(el);
    }
    if (slice.convergence) {
      const { value, caught_up: caught } = slice.convergence;
      const el = counter("convergence", caught ? formatT(value) : "never", "convergence lag: B matched A after the last write", !caught);
      el.dataset.testid = "sync-convergence";
      el.title = caught ? "how long after the workload's last write B first equalled A (a measurement, not part of the verdict)" : "B never equalled A in the catch-up passes after the workload stopped";
      items.push(el);
    }
    this.counters.replaceChildren(...items);
  }

  renderCaption(slice, state, counts) {
    const parts = [];
    if (state.phase) parts.push(`${state.phase[0].toUpperCase()}${state.phase.slice(1)}.`);
    if (slice.late?.state === "open") parts.push(`A long transaction is open: ${slice.late.writes.length} rows written but not committed, stamped with its start time.`);
    else if (slice.late?.state === "committed") parts.push("The long transaction committed late, its rows stamped with its start time.");
    const bad = COUNTED.filter(([status]) => BAD.has(status) && counts[status]).map(([status]) => `${counts[status].toLocaleString("en")} ${STATUS_TEXT[status]}`);
    const found = checkerFound(slice.checked);
    const cut = slice.ended && slice.endStatus !== "done" && found == null;
    if (cut) parts.push(`The run ${slice.endStatus} before the checker read the servers; what the events told up to then is shown.`);
    else if (found != null) parts.push(found.length ? `The checker read both servers again: ${found.join(", ")}.` : "The checker read both servers again: B equals A.");
    else if (slice.ended && bad.length) parts.push(`At the end: ${bad.join(", ")}.`);
    else if (slice.ended && slice.A.count + slice.B.count > 0) parts.push("At the end B holds what A holds, as far as the events tell.");
    else if (counts.behind) parts.push(`${counts.behind.toLocaleString("en")} change${counts.behind === 1 ? "" : "s"} of A not in B yet.`);
    this.caption.textContent = parts.join(" ") || "Waiting for table A to be loaded…";
    this.caption.classList.toggle("is-bad", cut || (found != null ? found.length > 0 : slice.ended && bad.length > 0));
  }
}

/** "2026-12-01 23:30:02.527179" -> "23:30:02.527": the time of day is what moves. */
function clock(value) {
  const m = /(\d\d:\d\d:\d\d)(\.\d{1,3})?/.exec(String(value ?? ""));
  return m ? `${m[1]}${m[2] || ""}` : String(value ?? "—");
}

/** What the checker found wrong with B, in words; null before it looked. */
function checkerFound(checked) {
  if (!checked || checked.rows == null) return null;
  const n = (count, one, many) => `${count.toLocaleString("en")} ${count === 1 ? one : many}`;
  const found = [];
  if (checked.missing) found.push(`${n(checked.missing, "key", "keys")} missing from B`);
  if (checked.extra) found.push(`${n(checked.extra, "row", "rows")} in B that A no longer has`);
  if (checked.different) found.push(`${n(checked.different, "key differs", "keys differ")}`);
  if (checked.duplicated) found.push(`${n(checked.duplicated, "business key", "business keys")} more than once in B`);
  return found;
}

registerPanel({
  name: "sync",
  title: "Data sync: table A → table B",
  init,
  apply,
  mount: (body) => new SyncPanel(body),
});
