// The cache lab's run-page panel: the clients as lanes (hits, misses, writes, waits for a lease),
// the cache and the table side by side key by key (coloured while an entry differs from its row,
// TTLs counting down on the run's clock), lease tokens, the placement of keys over the cache nodes,
// the breaker and the near caches. Folded from the run's events (slice.js) like every other panel
// (runs/js/panels.js), so it is the same live, paused and scrubbed; a part with nothing to show
// steps aside. The hit ratio and the table's read rate are the platform's charts.

import { describeMetric } from "../../runs/js/charts.js";
import { formatT } from "../../runs/js/fold.js";
import { registerPanel } from "../../runs/js/panels.js";
import { html } from "../../runs/js/svg.js";
import { renderBreakers, renderNear } from "./breaker.js";
import { renderKeys } from "./keys.js";
import { renderLanes } from "./lanes.js";
import { renderLeases } from "./leases.js";
import { renderShards } from "./shards.js";
import { apply, differedMs, differs, init } from "./slice.js";

// The metrics of apps/cache/engine/events.py: x is the run's clock in seconds unless said otherwise.
const RUN_TIME = "run time (s)";
describeMetric("hit_ratio", { x: RUN_TIME, y: "cache hits / reads" });
describeMetric("near_hit_ratio", { x: RUN_TIME, y: "near-cache hits / reads" });
describeMetric("db_reads_per_s", { x: RUN_TIME, y: "table reads per second" });
describeMetric("read_ms", { x: RUN_TIME, y: "read latency (ms)" });
describeMetric("read_p99_ms", { x: RUN_TIME, y: "p99 read latency (ms)" });
describeMetric("db_queries", { x: RUN_TIME, y: "table queries per TTL round" });
describeMetric("absent_db_reads", { x: RUN_TIME, y: "table reads of absent keys (total)" });
describeMetric("bloom_false_positive_rate", { x: RUN_TIME, y: "Bloom filter false positives / lookups" });
describeMetric("keys_moved_share", { x: RUN_TIME, y: "share of keys moved" });
describeMetric("node_load", { x: RUN_TIME, y: "reads served by the node" });
describeMetric("stale_after_second_delete_ms", { x: "delay of the second delete (ms)", y: "stale for (ms)" });

function box(testid, title, help) {
  const section = html("section", { className: "cache-box", dataset: { testid }, hidden: true });
  const head = html("h3", { className: "cache-box__title" }, title);
  if (help) head.append(html("span", { className: "cache-box__help" }, help));
  const body = html("div", { className: "cache-box__body" });
  section.append(head, body);
  return { section, body };
}

class CachePanel {
  constructor(body) {
    this.panel = body.closest("section");
    this.caption = html("p", { className: "cache-caption", dataset: { testid: "cache-caption" } });
    this.lanes = box("cache-clients", "Clients", "each client's latest operations, oldest left");
    this.keys = box("cache-keys", "Cache and table, key by key", "cached version and TTL left beside the row's version");
    this.leases = box("cache-leases", "Lease tokens", "a miss is handed a token; a write invalidates it; a fill needs it");
    this.shards = box("cache-shards", "Placement over the cache nodes", "a dot per key on the node that serves it");
    this.breakers = box("cache-breakers", "Circuit breaker", "in front of the cache node");
    this.near = box("cache-near-box", "Near caches", "each client's own copy, kept by invalidation messages");
    const main = html("div", { className: "cache-main" });
    main.append(this.keys.section, this.lanes.section);
    this.side = html("div", { className: "cache-side-col" });
    this.side.append(this.leases.section, this.breakers.section, this.near.section);
    const grid = html("div", { className: "cache-grid" });
    grid.append(main, this.side);
    body.append(this.caption, grid, this.shards.section);
    this.shown = null;
    this.shownRev = -1;
    this.shownT = -1;
  }

  sync(slice, state, { rebuild = false } = {}) {
    // TTLs count down on the run's clock, which every event moves.
    if (!rebuild && slice === this.shown && slice.rev === this.shownRev && state.t === this.shownT && state.phase === this.shownPhase) return;
    this.shown = slice;
    this.shownRev = slice.rev;
    this.shownT = state.t;
    this.shownPhase = state.phase;
    const t = state.t;
    this.renderCaption(slice, state, t);
    this.fill(this.keys, Object.keys(slice.lines).length > 0, () => renderKeys(slice, t));
    this.fill(this.lanes, slice.clientOrder.length > 0, () => renderLanes(slice));
    this.fill(this.leases, slice.leases.length > 0, () => renderLeases(slice));
    this.fill(this.shards, slice.shardOrder.length > 0, () => renderShards(slice));
    this.fill(this.breakers, Object.keys(slice.breakers).length > 0, () => renderBreakers(slice));
    this.fill(this.near, slice.near.latest.length > 0, () => renderNear(slice));
    this.side.hidden = this.leases.section.hidden && this.breakers.section.hidden && this.near.section.hidden;
    // A run that tells none of this (the avalanche reads in batches: its chart is the view) has
    // nothing here once it began; before its first event the caption says what is awaited.
    const parts = [this.keys, this.lanes, this.leases, this.shards, this.breakers, this.near];
    if (this.panel) this.panel.hidden = state.k > 0 && parts.every((part) => part.section.hidden);
  }

  fill(part, any, render) {
    part.section.hidden = !any;
    part.body.replaceChildren(...(any ? render() : []));
  }

  renderCaption(slice, state, t) {
    const parts = [];
    if (state.phase) parts.push(`${state.phase[0].toUpperCase()}${state.phase.slice(1)}.`);
    const lines = Object.values(slice.lines);
    const now = lines.filter((line) => differs(slice, line, t));
    const longest = Math.max(0, ...lines.map((line) => differedMs(line, t)));
    const checked = slice.checked;
    let bad = false;
    if (now.length) {
      const first = now[0];
      parts.push(`${now.length} cached entr${now.length === 1 ? "y differs" : "ies differ"} from the table now (e.g. ${first.key}: cache v${first.entry.version}, row v${slice.keys[first.key].row.version}).`);
      bad = true;
    } else if (longest > 0) {
      parts.push(`Entries differed from their rows for up to ${formatT(longest)}; none does now.`);
    }
    if (checked?.reads != null) {
      parts.push(checked.stale ? `The checker read the history and the servers again: ${checked.stale} of ${checked.reads} reads were stale.` : `The checker found no stale read in ${checked.reads} reads.`);
      bad = bad || checked.stale > 0;
    }
    if (checked?.differing) {
      parts.push(`At the end ${checked.differing} of ${checked.cached} cached entries differed from their rows.`);
      bad = true;
    }
    if (slice.ended && slice.endStatus !== "done" && checked == null) {
      parts.push(`The run ${slice.endStatus} before the checker read the servers; what the events told up to then is shown.`);
      bad = true;
    }
    this.caption.textContent = parts.join(" ") || "Waiting for the clients' first reads…";
    this.caption.classList.toggle("is-bad", bad);
  }
}

registerPanel({
  name: "cache",
  title: "Cache: clients, the cache and the table",
  init,
  apply,
  mount: (body) => new CachePanel(body),
});
