// The job's top results as a bar chart (Plotly, when the page has it), and the scenario's
// comparisons side by side.

import { html } from "../../runs/js/svg.js";
import { formatCount, formatValue, numeric, truncateKey } from "./format.js";

const VALUE_LABELS = { wordcount: "occurrences", "inverted-index": "documents", grep: "matching lines", "log-top-urls": "requests" };

export class ResultsChart {
  constructor(box) {
    this.box = box;
    this.chartKey = null;
    this.plot = null;
    this.plotly = typeof window.Plotly !== "undefined" ? window.Plotly : null;
  }

  /** The top results of `round`'s output (drawn again only when they change). */
  render(round) {
    const o = round.output;
    const key = o ? `${round.key}:${JSON.stringify(o.top)}` : null;
    if (key === this.chartKey && this.box.childElementCount) return;
    this.chartKey = key;
    if (this.plotly && this.plot) this.plotly.purge(this.plot);
    this.plot = null;
    const label = o ? o.valueLabel || VALUE_LABELS[o.job] || "value" : "";
    const title = html("h3", { className: "small-heading" }, o ? `Top ${Math.min(20, o.top.length)} of ${o.job || "the job"}, by ${label}${round.label ? ` (${round.label})` : ""}` : "Top results");
    if (!o || !o.top.length) {
      this.box.replaceChildren(title, html("p", { className: "muted small" }, o ? "The output is empty." : "Shown when the reducers have written the output."));
      return;
    }
    const rows = o.top.slice(0, 20);
    // Whole keys as the categories (two keys may share a shortened label), shortened on the axis.
    const keys = rows.map(([k]) => String(k)).reverse();
    const values = rows.map(([, v]) => numeric(v)).reverse();
    this.plot = html("div", { className: "mr-chart", dataset: { testid: "mr-chart" } });
    this.box.replaceChildren(title, this.plot);
    if (!this.plotly) {
      this.plot.textContent = rows.map(([k, v]) => `${k}: ${numeric(v)}`).join(", ");
      return;
    }
    const layout = {
      height: Math.max(200, 19 * rows.length + 46),
      margin: { l: 10, r: 20, t: 4, b: 28 },
      paper_bgcolor: "#ffffff",
      plot_bgcolor: "#ffffff",
      font: { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 12, color: "#24292f" },
      xaxis: { gridcolor: "#eaeef2", zeroline: false, rangemode: "tozero", title: { text: label, standoff: 4 } },
      yaxis: {
        automargin: true,
        type: "category",
        tickmode: "array",
        tickvals: keys,
        ticktext: keys.map((k) => truncateKey(k)),
        tickfont: { family: "ui-monospace, SFMono-Regular, Menlo, monospace", size: 11 },
      },
      bargap: 0.22,
    };
    const trace = {
      type: "bar",
      orientation: "h",
      x: values,
      y: keys,
      marker: { color: "#0b5cc7" },
      text: values.map((v) => formatCount(v)),
      textposition: "auto",
      cliponaxis: false,
      hovertemplate: `%{y}: %{x} ${label}<extra></extra>`,
    };
    this.plotly.newPlot(this.plot, [trace], layout, { displayModeBar: false, responsive: true });
  }
}

/** The scenario's comparisons (a heading, then one box each), or nothing when it makes none. */
export function comparisonBoxes(slice) {
  if (!slice.comparisons.length) return [];
  const boxes = slice.comparisons.map((c) => {
    const box = html("div", { className: "mr-compare", dataset: { testid: "mr-compare" } });
    box.append(html("h4", { className: "mr-compare__title" }, c.title));
    const max = Math.max(1e-9, ...c.rows.map((r) => Number(r.value) || 0));
    c.rows.forEach((r, i) => {
      const row = html("div", { className: `mr-compare__row mr-compare__row--${i}` });
      const bar = html("div", { className: "mr-compare__bar" });
      const fill = html("div", { className: "mr-compare__fill" });
      fill.style.width = `${(100 * (Number(r.value) || 0)) / max}%`;
      bar.append(fill);
      row.append(html("span", { className: "mr-compare__label" }, r.label), bar, html("span", { className: "mr-compare__value" }, formatValue(Number(r.value), r.unit)));
      box.append(row);
    });
    if (c.rows.length === 2 && Number(c.rows[0].value) > 0 && Number(c.rows[1].value) > 0) {
      const [a, b] = c.rows.map((r) => ({ label: r.label, value: Number(r.value) }));
      const [small, big] = a.value <= b.value ? [a, b] : [b, a];
      const text = `${small.label}: ${Math.round((1 - small.value / big.value) * 100)}% less than ${big.label} (${(big.value / small.value).toFixed(2)}×)`;
      box.append(html("p", { className: "mr-compare__ratio" }, text));
    }
    return box;
  });
  return [html("h3", { className: "small-heading" }, "Compared in this run"), ...boxes];
}
