// Charts of `metric` events: one Plotly chart per metric name, one line per series, extended live
// with Plotly.extendTraces. Samples without x/y (a load generator's ticks) are only counted.

import { html } from "./svg.js";

const LAYOUT = {
  height: 240,
  margin: { l: 48, r: 12, t: 8, b: 36 },
  paper_bgcolor: "#ffffff",
  plot_bgcolor: "#ffffff",
  font: { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 12, color: "#24292f" },
  legend: { orientation: "h", y: -0.22 },
  xaxis: { zeroline: false, gridcolor: "#eaeef2" },
  yaxis: { zeroline: false, gridcolor: "#eaeef2", rangemode: "tozero" },
};
const CONFIG = { displayModeBar: false, responsive: true };

export class Charts {
  constructor(root, countersRoot, emptyNote) {
    this.root = root;
    this.countersRoot = countersRoot;
    this.emptyNote = emptyNote;
    this.rev = -1;
    this.charts = new Map(); // name -> {box, plot, counts: [points per series], series: [names]}
    this.counters = new Map();
    this.plotly = typeof window.Plotly !== "undefined" ? window.Plotly : null;
  }

  sync(state, { rebuild = false } = {}) {
    if (!rebuild && state.rev.metrics === this.rev) return;
    this.rev = state.rev.metrics;
    for (const [name, chart] of this.charts) {
      if (!(name in state.metrics)) {
        if (this.plotly) this.plotly.purge(chart.plot);
        chart.box.remove();
        this.charts.delete(name);
      }
    }
    for (const name of state.metricOrder) this.syncChart(name, state.metrics[name]);
    this.syncCounters(state.counters);
    this.emptyNote.hidden = state.metricOrder.length > 0 || Object.keys(state.counters).length > 0;
  }

  syncChart(name, metric) {
    let chart = this.charts.get(name);
    if (!chart) {
      const box = html("figure", { className: "chart", dataset: { metric: name } });
      box.append(html("figcaption", {}, name));
      const plot = html("div", { className: "chart__plot" });
      box.append(plot);
      this.root.append(box);
      chart = { box, plot, counts: [], series: [], drawn: false };
      this.charts.set(name, chart);
    }
    if (!this.plotly) {
      chart.plot.textContent = metric.seriesOrder
        .map((s) => `${s}: ${metric.series[s].y.length} samples, last ${metric.series[s].y.at(-1)}`)
        .join("; ");
      return;
    }
    const shrunk =
      metric.seriesOrder.length < chart.series.length ||
      chart.series.some((s, i) => metric.seriesOrder[i] !== s || metric.series[s].x.length < chart.counts[i]);
    if (!chart.drawn || shrunk) {
      // First draw, or the view went back in time: draw it whole. Copies, since Plotly keeps the arrays.
      const traces = metric.seriesOrder.map((s) => trace(s, metric.series[s].x.slice(), metric.series[s].y.slice()));
      const layout = { ...LAYOUT, xaxis: { ...LAYOUT.xaxis }, yaxis: { ...LAYOUT.yaxis, title: { text: name } } };
      if (chart.drawn) this.plotly.react(chart.plot, traces, layout, CONFIG);
      else this.plotly.newPlot(chart.plot, traces, layout, CONFIG);
      chart.drawn = true;
      chart.series = [...metric.seriesOrder];
      chart.counts = metric.seriesOrder.map((s) => metric.series[s].x.length);
      return;
    }
    for (let i = chart.series.length; i < metric.seriesOrder.length; i++) {
      const s = metric.seriesOrder[i];
      this.plotly.addTraces(chart.plot, trace(s, [], []));
      chart.series.push(s);
      chart.counts.push(0);
    }
    const xs = [];
    const ys = [];
    const indices = [];
    chart.series.forEach((s, i) => {
      const series = metric.series[s];
      if (series.x.length > chart.counts[i]) {
        xs.push(series.x.slice(chart.counts[i]));
        ys.push(series.y.slice(chart.counts[i]));
        indices.push(i);
        chart.counts[i] = series.x.length;
      }
    });
    if (indices.length) this.plotly.extendTraces(chart.plot, { x: xs, y: ys }, indices);
  }

  syncCounters(counters) {
    for (const [name, el] of this.counters) {
      if (!(name in counters)) {
        el.remove();
        this.counters.delete(name);
      }
    }
    for (const [name, counter] of Object.entries(counters)) {
      let el = this.counters.get(name);
      if (!el) {
        el = html("div", { className: "counter", dataset: { counter: name } });
        el.append(html("span", { className: "counter__value" }), html("span", { className: "counter__name" }, name));
        this.countersRoot.append(el);
        this.counters.set(name, el);
      }
      el.firstChild.textContent = counter.count.toLocaleString("en");
      const last = counter.last || {};
      el.title = last.i != null ? `last sample #${last.i}` : "";
    }
  }
}

function trace(name, x, y) {
  return { name, x, y, type: "scatter", mode: "lines+markers", line: { width: 2 }, marker: { size: 6 } };
}
