// Charts of `metric` events: one Plotly chart per metric name, one line per series, extended live
// with Plotly.extendTraces. Samples without x/y (a load generator's ticks) are only counted, and a
// metric with a single value per series is shown as that value, not as a one-point chart.
//
// Axes say what they measure: the y title comes from the metric's name and unit suffix
// ("latency_ms" -> "latency (ms)"), an x that is the run's clock is shown as run time in seconds, and
// whole-number axes (rounds, clients, counts) get whole-number ticks. A sample may name its axes
// itself with data.x_label / data.y_label, or a lab's run-page module with describeMetric().

import { html } from "./svg.js";

// Axis titles a lab's module declared for its metrics: name -> {x, y}.
const described = new Map();

/** Names the axes of a metric (by its name) on every run page that loads the calling module. */
export function describeMetric(name, { x = null, y = null } = {}) {
  described.set(name, { x, y });
}

const LAYOUT = {
  height: 240,
  margin: { l: 64, r: 12, t: 8, b: 48 },
  paper_bgcolor: "#ffffff",
  plot_bgcolor: "#ffffff",
  font: { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 12, color: "#24292f" },
  legend: { orientation: "h", y: -0.3 },
  separators: ".,",
};
const AXIS = { zeroline: false, gridcolor: "#eaeef2", automargin: true, separatethousands: true, title: { standoff: 6 } };
const CONFIG = { displayModeBar: false, responsive: true };

// Name suffixes that carry a unit, and the unit they stand for.
const UNITS = [
  [/_ms$/, "ms"],
  [/_(s|sec|seconds)$/, "s"],
  [/_(bytes|b)$/, "bytes"],
  [/_kib$/, "KiB"],
  [/_(pct|percent)$/, "%"],
  [/_per_s$/, "/s"],
];

/** "latency_ms" -> "latency (ms)", "bytes_shuffled" -> "bytes shuffled". */
export function quantity(name) {
  let text = String(name);
  let unit = null;
  for (const [suffix, u] of UNITS) {
    if (suffix.test(text)) {
      text = text.replace(suffix, "");
      unit = u;
      break;
    }
  }
  text = text.replace(/_/g, " ").trim() || String(name);
  return unit ? `${text} (${unit})` : text;
}

/** The smallest of 1, 2, 5, 10, 20, 50 … that is at least `raw`. */
function niceStep(raw) {
  if (!(raw > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * power >= raw) return m * power;
  return 10 * power;
}

/** Axis settings for `values`: whole-number ticks for whole numbers, and a padded range when flat. */
export function axisFor(values, { title, fromZero = false } = {}) {
  const axis = { ...AXIS, title: { ...AXIS.title, text: title } };
  const finite = values.filter((v) => Number.isFinite(v));
  if (!finite.length) return axis;
  let lo = Math.min(...finite);
  let hi = Math.max(...finite);
  if (fromZero) lo = Math.min(0, lo);
  const whole = finite.every(Number.isInteger);
  if (hi === lo) {
    // One value (or a flat line): a range around it, not a sliver of a tick's width.
    const pad = whole ? 1 : Math.abs(hi) * 0.5 || 1;
    lo = fromZero && lo >= 0 ? 0 : lo - pad;
    hi += pad;
    axis.range = [lo, hi];
  } else if (fromZero) {
    axis.rangemode = "tozero";
  }
  if (whole) {
    axis.tickmode = "linear";
    axis.tick0 = 0;
    axis.dtick = Math.max(1, niceStep((hi - lo) / 6)); // whole numbers: no step below one
    axis.tickformat = ",d";
    axis.hoverformat = ",d";
  } else {
    axis.hoverformat = ",.4~g";
  }
  return axis;
}

export class Charts {
  constructor(root, countersRoot, emptyNote) {
    this.root = root;
    this.countersRoot = countersRoot;
    this.emptyNote = emptyNote;
    this.rev = -1;
    this.charts = new Map(); // name -> {box, plot, counts: [points per series], series: [names], key}
    this.counters = new Map(); // name -> element, for counted ticks and single values
    this.plotly = typeof window.Plotly !== "undefined" ? window.Plotly : null;
  }

  sync(state, { rebuild = false } = {}) {
    if (!rebuild && state.rev.metrics === this.rev && this.ended === (state.end != null)) return;
    this.rev = state.rev.metrics;
    this.ended = state.end != null;
    const plotted = state.metricOrder.filter((name) => !singleValued(state.metrics[name]));
    for (const [name, chart] of this.charts) {
      if (!plotted.includes(name)) {
        if (this.plotly) this.plotly.purge(chart.plot);
        chart.box.remove();
        this.charts.delete(name);
      }
    }
    for (const name of plotted) this.syncChart(name, state.metrics[name]);
    this.syncCounters(state);
    const measured = state.metricOrder.length > 0 || Object.keys(state.counters).length > 0;
    this.emptyNote.hidden = measured;
    // A finished run that measured nothing steps the panel aside rather than say "not yet" forever.
    const section = this.root.closest("section");
    if (section) section.hidden = state.end != null && !measured;
  }

  syncChart(name, metric) {
    let chart = this.charts.get(name);
    const declared = described.get(name) || {};
    const title = metric.yLabel || declared.y || quantity(name);
    if (!chart) {
      const box = html("figure", { className: "chart", dataset: { metric: name } });
      const caption = html("figcaption", {}, title);
      if (title !== name) caption.append(html("code", { className: "chart__name" }, name));
      box.append(caption);
      const plot = html("div", { className: "chart__plot" });
      box.append(plot);
      this.root.append(box);
      chart = { box, plot, counts: [], series: [], drawn: false, key: "" };
      this.charts.set(name, chart);
    }
    if (!this.plotly) {
      chart.plot.textContent = metric.seriesOrder
        .map((s) => `${s}: ${metric.series[s].y.length} samples, last ${metric.series[s].y.at(-1)}`)
        .join("; ");
      return;
    }
    const seconds = Boolean(metric.timeLike);
    const xs = (s) => (seconds ? metric.series[s].x.map((x) => x / 1000) : metric.series[s].x.slice());
    const allX = metric.seriesOrder.flatMap(xs);
    const allY = metric.seriesOrder.flatMap((s) => metric.series[s].y);
    const layout = {
      ...LAYOUT,
      // One line is named too when it is not the metric itself ("work" of phase_ms).
      showlegend: metric.seriesOrder.length > 1 || metric.seriesOrder[0] !== name,
      xaxis: axisFor(allX, { title: metric.xLabel || declared.x || (seconds ? "run time (s)" : "sample") }),
      yaxis: axisFor(allY, { title, fromZero: true }),
    };
    const shrunk =
      metric.seriesOrder.length < chart.series.length ||
      chart.series.some((s, i) => metric.seriesOrder[i] !== s || metric.series[s].x.length < chart.counts[i]);
    // Samples may come out of x order (concurrent transfers finish in any order): such a line is
    // drawn whole, sorted by x, rather than extended, so it never runs back on itself.
    const unordered = metric.seriesOrder.some((s) => metric.series[s].x.some((x, i, all) => i > 0 && x < all[i - 1]));
    if (!chart.drawn || shrunk || unordered) {
      // First draw, or the view went back in time: draw it whole. Copies, since Plotly keeps the arrays.
      const traces = metric.seriesOrder.map((s) => {
        const points = xs(s).map((x, i) => [x, metric.series[s].y[i]]).sort((a, b) => a[0] - b[0]);
        return trace(s, points.map((p) => p[0]), points.map((p) => p[1]));
      });
      if (chart.drawn) this.plotly.react(chart.plot, traces, layout, CONFIG);
      else this.plotly.newPlot(chart.plot, traces, layout, CONFIG);
      chart.drawn = true;
      chart.series = [...metric.seriesOrder];
      chart.counts = metric.seriesOrder.map((s) => metric.series[s].x.length);
      chart.key = axesKey(layout);
      return;
    }
    for (let i = chart.series.length; i < metric.seriesOrder.length; i++) {
      const s = metric.seriesOrder[i];
      this.plotly.addTraces(chart.plot, trace(s, [], []));
      chart.series.push(s);
      chart.counts.push(0);
    }
    const newX = [];
    const newY = [];
    const indices = [];
    chart.series.forEach((s, i) => {
      const series = metric.series[s];
      if (series.x.length > chart.counts[i]) {
        newX.push(xs(s).slice(chart.counts[i]));
        newY.push(series.y.slice(chart.counts[i]));
        indices.push(i);
        chart.counts[i] = series.x.length;
      }
    });
    if (indices.length) this.plotly.extendTraces(chart.plot, { x: newX, y: newY }, indices);
    // The axes follow the data (a padded range becomes an automatic one once a second point is in).
    const key = axesKey(layout);
    if (key !== chart.key) {
      chart.key = key;
      this.plotly.relayout(chart.plot, { xaxis: layout.xaxis, yaxis: layout.yaxis, showlegend: layout.showlegend });
    }
  }

  syncCounters(state) {
    const shown = {};
    for (const [name, counter] of Object.entries(state.counters)) {
      const last = counter.last || {};
      shown[name] = { value: counter.count.toLocaleString("en"), title: last.i != null ? `last sample #${last.i}` : "", label: name };
    }
    for (const name of state.metricOrder) {
      const metric = state.metrics[name];
      if (!singleValued(metric)) continue;
      const values = metric.seriesOrder.map((s) => {
        const v = formatValue(metric.series[s].y[0]);
        return metric.seriesOrder.length > 1 || s !== name ? `${s}: ${v}` : v;
      });
      shown[`metric:${name}`] = { value: values.join(" · "), title: `one sample of ${name}`, label: metric.yLabel || quantity(name), single: true };
    }
    for (const [name, el] of this.counters) {
      if (!(name in shown)) {
        el.remove();
        this.counters.delete(name);
      }
    }
    for (const [name, item] of Object.entries(shown)) {
      let el = this.counters.get(name);
      if (!el) {
        el = html("div", { className: `counter${item.single ? " counter--value" : ""}`, dataset: { counter: name } });
        el.append(html("span", { className: "counter__value" }), html("span", { className: "counter__name" }, item.label));
        this.countersRoot.append(el);
        this.counters.set(name, el);
      }
      el.firstChild.textContent = item.value;
      el.title = item.title;
    }
  }
}

/** A metric whose every series has a single sample: a value to read, not a line to follow. */
function singleValued(metric) {
  return metric.seriesOrder.every((s) => metric.series[s].y.length <= 1);
}

function formatValue(v) {
  if (typeof v !== "number") return String(v);
  return Number.isInteger(v) ? v.toLocaleString("en") : v.toLocaleString("en", { maximumFractionDigits: 2 });
}

function axesKey(layout) {
  return JSON.stringify([layout.xaxis, layout.yaxis, layout.showlegend]);
}

function trace(name, x, y) {
  return { name, x, y, type: "scatter", mode: "lines+markers", line: { width: 2 }, marker: { size: 6 } };
}
