// The MapReduce lab's panel on the run page: the job's flow from input splits through map tasks (one
// lane per worker), the shuffle (partitions filling in Redis, bytes moved), reduce tasks and the
// output (flow.js); live counters, with how many tasks ran at once; a Gantt timeline per worker
// drawn from the workers' own timestamps (gantt.js); the top results as a bar chart and the
// scenario's comparisons side by side (results.js); and a link to download the whole output. Folded
// from the run's events (slice.js) like every other panel (runs/js/panels.js), so it is the same
// live, paused and scrubbed.

import { formatT } from "../../runs/js/fold.js";
import { registerPanel } from "../../runs/js/panels.js";
import { html } from "../../runs/js/svg.js";
import { marksOf, tasksOf } from "./attempts.js";
import { renderFlow } from "./flow.js";
import { counterText, formatCount, times } from "./format.js";
import { Gantt } from "./gantt.js";
import { ResultsChart, comparisonBoxes } from "./results.js";
import { ROUND_PHASES, apply, init, newRound, taskState } from "./slice.js";

const PHASES = ["split", "map", "shuffle", "reduce", "output", "check"];
const PHASE_HELP = {
  split: "the coordinator cuts the input into splits, one per map task",
  map: "map tasks run on the workers; each writes its output, partitioned by key, to Redis",
  shuffle: "map output is grouped by partition so each reducer can read its own",
  reduce: "reduce tasks read their partition from every map and write the final output",
  output: "the reducers' output, merged",
  check: "the checker computes the job again in one process from the input documents, and compares it with the output and the tasks' records read back from Redis",
};
// [metric, label, title]: the round's counters, shown once they have a value.
const COUNTERS = [
  ["records_in", "records in"],
  ["records_out", "records out"],
  ["bytes_shuffled", "bytes shuffled"],
  ["bytes_shuffled_no_combiner", "bytes shuffled without combiner"],
  ["elapsed_ms", "elapsed"],
  ["peak_maps_running", "maps at once (peak)", "the most map attempts running at the same time, by the workers' own clocks: a measurement, not part of the verdict"],
  ["peak_reduces_running", "reduces at once (peak)", "the most reduce attempts running at the same time, by the workers' own clocks: a measurement, not part of the verdict"],
];
// Shown as "—" until they have a value; the others only once they have one.
const ALWAYS_SHOWN = new Set(["records_in", "records_out", "bytes_shuffled"]);

function runId() {
  const page = document.getElementById("run-page");
  return page ? JSON.parse(page.textContent).id : null;
}

class MapReducePanel {
  constructor(body) {
    this.body = body;
    this.tabs = html("div", { className: "mr-rounds", role: "tablist", "aria-label": "Rounds of the job", dataset: { testid: "mr-rounds" } });
    this.phaseBar = html("ol", { className: "mr-phases", dataset: { testid: "mr-phases" } });
    this.counters = html("div", { className: "mr-counters", dataset: { testid: "mr-counters" } });
    this.caption = html("p", { className: "mr-caption", dataset: { testid: "mr-caption" } });
    this.download = html("p", { className: "mr-download", hidden: true, dataset: { testid: "mr-download" } });
    this.flow = html("div", { className: "mr-flow", dataset: { testid: "mr-flow" } });
    this.gantt = new Gantt(html("figure", { className: "mr-gantt", dataset: { testid: "mr-gantt" } }));
    this.results = new ResultsChart(html("div", { className: "mr-results", dataset: { testid: "mr-results" } }));
    this.comparisons = html("div", { className: "mr-comparisons", dataset: { testid: "mr-comparisons" } });
    this.bottom = html("div", { className: "mr-bottom" });
    this.bottom.append(this.results.box, this.comparisons);
    body.append(this.tabs, this.phaseBar, this.counters, this.caption, this.download, this.flow, this.gantt.box, this.bottom);
    this.shown = null;
    this.shownRev = -1;
    this.chosen = null; // the round the viewer picked; none follows the latest
  }

  sync(slice) {
    if (slice === this.shown && slice.rev === this.shownRev) return;
    this.shown = slice;
    this.shownRev = slice.rev;
    this.render(slice);
  }

  render(slice) {
    const key = this.chosen && slice.rounds[this.chosen] ? this.chosen : slice.latestRound;
    const round = key ? slice.rounds[key] : newRound("1", "");
    this.renderTabs(slice, key);
    this.renderPhases(slice, round);
    this.renderCounters(slice, round);
    this.renderCaption(slice, round);
    this.renderDownload(slice);
    this.flow.replaceChildren(renderFlow(slice, round));
    this.gantt.render(slice);
    this.results.render(round);
    const compared = comparisonBoxes(slice);
    this.comparisons.hidden = !compared.length;
    this.bottom.classList.toggle("has-comparisons", compared.length > 0);
    this.comparisons.replaceChildren(...compared);
  }

  renderDownload(slice) {
    const id = runId();
    this.download.hidden = !slice.kept || id == null;
    if (this.download.hidden) return this.download.replaceChildren();
    const link = html("a", { href: `/api/runs/${id}/output/`, download: "", dataset: { testid: "mr-download-link" } }, "Download the output");
    const about = ` (${formatCount(slice.kept.lines)} key<TAB>value lines sorted by key, from ${slice.kept.parts} part file${slice.kept.parts === 1 ? "" : "s"})`;
    this.download.replaceChildren(link, html("span", { className: "muted small" }, about));
  }

  renderTabs(slice, key) {
    const labelled = slice.roundOrder.filter((k) => slice.rounds[k].label);
    this.tabs.hidden = labelled.length < 2;
    if (this.tabs.hidden) {
      this.tabs.replaceChildren();
      return;
    }
    const intro = html("span", { className: "mr-rounds__intro" }, "This scenario runs the job twice:");
    const buttons = slice.roundOrder.map((k) => {
      const r = slice.rounds[k];
      const selected = k === key;
      const button = html("button", { type: "button", className: `mr-round${selected ? " is-selected" : ""}`, role: "tab", "aria-selected": String(selected), dataset: { round: k } });
      button.append(html("strong", {}, `round ${k}`), ` ${r.label}`);
      if (r.counters.elapsed_ms != null) button.append(html("span", { className: "mr-round__time" }, formatT(r.counters.elapsed_ms)));
      button.addEventListener("click", () => {
        this.chosen = k;
        this.render(this.shown);
      });
      return button;
    });
    const follow = html("button", { type: "button", className: `mr-round mr-round--follow${this.chosen ? "" : " is-selected"}`, title: "show whichever round is running" }, "follow the run");
    follow.addEventListener("click", () => {
      this.chosen = null;
      this.render(this.shown);
    });
    this.tabs.replaceChildren(intro, ...buttons, follow);
  }

  renderPhases(slice, round) {
    const items = PHASES.map((name) => {
      const phase = ROUND_PHASES.has(name) ? round.phases[name] : slice.phases[name];
      const state = !phase ? "pending" : phase.state === "end" || slice.ended ? "done" : "active";
      const li = html("li", { className: `mr-phase mr-phase--${state}`, title: PHASE_HELP[name], dataset: { phase: name, state } });
      li.append(html("span", { className: "mr-phase__name" }, name));
      if (phase && phase.begin != null && (phase.end != null || !slice.ended)) {
        li.append(html("span", { className: "mr-phase__time" }, phase.end != null ? formatT(phase.end - phase.begin) : "…"));
      }
      return li;
    });
    this.phaseBar.replaceChildren(...items);
  }

  renderCounters(slice, round) {
    const box = (name, value, label, title) => {
      const el = html("div", { className: "mr-counter", dataset: { counter: name }, title: title || "" });
      el.append(html("span", { className: "mr-counter__value" }, value), html("span", { className: "mr-counter__name" }, label));
      return el;
    };
    const done = (tasks) => tasks.filter((t) => taskState(t) === "completed").length;
    const maps = tasksOf(round, "map");
    const reduces = tasksOf(round, "reduce");
    const boxes = [
      box("maps", maps.length ? `${done(maps)} / ${maps.length}` : "—", "map tasks done"),
      box("reduces", reduces.length ? `${done(reduces)} / ${reduces.length}` : "—", "reduce tasks done"),
    ];
    for (const [name, label, title] of COUNTERS) {
      const value = round.counters[name];
      if (value == null && !ALWAYS_SHOWN.has(name)) continue;
      boxes.push(box(name, value == null ? "—" : counterText(name, value), label, title));
    }
    let lost = 0;
    for (const task of [...maps, ...reduces]) lost += task.attemptOrder.filter((k) => marksOf(task.attempts[k])).length;
    if (lost) boxes.push(box("retried", String(lost), "attempts failed, timed out or ignored", "each of these tasks ran again or was already done; its output counts once"));
    const backups = [...maps, ...reduces].reduce((n, t) => n + t.attemptOrder.filter((k) => t.attempts[k].backup).length, 0);
    if (backups) boxes.push(box("backups", String(backups), "backup tasks", "speculative copies of slow tasks; whichever finishes first counts"));
    this.counters.replaceChildren(...boxes);
  }

  renderCaption(slice, round) {
    const parts = [];
    const current = slice.current;
    const down = slice.workerOrder.filter((w) => ["dead", "stalled"].includes(round.workerStates[w]));
    if (!current) parts.push("Waiting for the coordinator to split the input.");
    else if (slice.ended && slice.ended.status !== "done") {
      parts.push(`The run ${slice.ended.status}${slice.ended.reason ? `: ${slice.ended.reason}` : ""}.`);
    } else if (slice.ended) {
      const o = round.output;
      const ref = slice.reference;
      let text = "The job is over";
      if (o && ref) text += o.keys === ref.keys ? `: ${formatCount(o.keys)} keys, as many as the sequential reference` : `: ${formatCount(o.keys)} keys, the reference has ${formatCount(ref.keys)}`;
      parts.push(`${text}.`);
    } else parts.push(`Now: ${current} — ${PHASE_HELP[current] || ""}.`);
    const hurt = [];
    const slow = [];
    for (const w of slice.workerOrder) {
      const seen = round.incidents[w];
      if (!seen) continue;
      const what = [];
      if (seen.dead) what.push(`died ${times(seen.dead)}`);
      if (seen.stalled) what.push(`stalled ${times(seen.stalled)}`);
      if (what.length) hurt.push(`${w} ${what.join(" and ")}`);
      if (seen.slow) slow.push(w);
    }
    if (hurt.length) {
      const one = hurt.length === 1;
      parts.push(`${hurt.join("; ")}: ${one ? "its" : "their"} tasks were run again on a live worker, and whatever ${one ? "it" : "they"} finished late was ignored.`);
    }
    if (slow.length) parts.push(`${slow.join(", ")} ${slow.length > 1 ? "are" : "is"} slow on purpose (a straggler)${round.label ? `; this round has ${round.label}` : ""}.`);
    this.caption.textContent = parts.join(" ");
    this.caption.classList.toggle("is-fault", (down.length > 0 && !slice.ended) || (slice.ended && slice.ended.status !== "done"));
    this.caption.classList.toggle("is-recovered", slice.ended && Object.values(round.incidents).some((x) => x.dead || x.stalled));
  }

}

registerPanel({
  name: "mapreduce",
  title: "MapReduce job",
  init,
  apply,
  mount: (body) => new MapReducePanel(body),
});
