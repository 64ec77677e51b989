// Retries and backoff on the run's clock: one lane per operation retried, a cross where an attempt
// failed and a bar for the wait before the next one, so exponential backoff (and its jitter) is
// seen as bars that grow and vary.

import { formatT } from "../../runs/js/fold.js";
import { html, svg } from "../../runs/js/svg.js";

const WIDTH = 640;
const LABEL = 150; // the lanes' names
const LANE = 26;
const LANES = 8; // the lanes of the latest retries; older ones are counted
const AXIS = 22;
const RIGHT = 28; // room for the last tick's label

function ticks(lo, hi, n = 5) {
  const raw = (hi - lo) / n;
  const power = 10 ** Math.floor(Math.log10(raw || 1));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi; v += step) out.push(v);
  return out;
}

export function renderRetries(slice) {
  const retries = slice.retries;
  const lanes = [];
  const byLane = {};
  for (const r of retries) {
    const key = r.what;
    if (!(key in byLane)) {
      byLane[key] = [];
      lanes.push(key);
    }
    byLane[key].push(r);
  }
  // The lanes retried most recently, in the order they first failed.
  const latest = (key) => byLane[key].at(-1).seq;
  const kept = [...lanes].sort((a, b) => latest(b) - latest(a)).slice(0, LANES);
  const shown = lanes.filter((key) => kept.includes(key));
  const t0 = Math.min(...retries.map((r) => r.t));
  // The retries' own span, not the whole run's: a burst of retries in a long run stays legible.
  const t1 = Math.max(...retries.map((r) => r.t + Math.max(r.wait_ms, r.cap_ms ?? 0)));
  const lo = Math.max(0, t0 - (t1 - t0) * 0.05 - 1);
  const hi = t1 + (t1 - t0) * 0.05 + 1;
  const x = (t) => LABEL + ((t - lo) / (hi - lo)) * (WIDTH - LABEL - RIGHT);
  const height = shown.length * LANE + AXIS;
  const root = svg("svg", { viewBox: `0 0 ${WIDTH} ${height}`, class: "sync-retries__svg", role: "img", "aria-label": "Failed attempts and the waits before each retry, on the run's clock" });
  shown.forEach((key, lane) => {
    const y = lane * LANE + LANE / 2;
    root.append(svg("line", { x1: LABEL, x2: WIDTH - 8, y1: y, y2: y, class: "sync-retries__lane" }));
    const name = key.length > 24 ? `${key.slice(0, 23)}…` : key;
    const label = svg("text", { x: LABEL - 6, y: y + 4, class: "sync-retries__name", "text-anchor": "end" }, name);
    label.append(svg("title", {}, key));
    root.append(label);
    for (const r of byLane[key]) {
      const g = svg("g", { class: "sync-retry", "data-attempt": r.attempt });
      g.append(svg("title", {}, `${key}: attempt ${r.attempt} failed at ${formatT(r.t)}${r.error ? ` (${r.error})` : ""}; next attempt after ${formatT(r.wait_ms)}${r.cap_ms != null ? `, drawn at random below ${formatT(r.cap_ms)}` : ""}`));
      const bx = x(r.t);
      const width = Math.max(0, x(r.t + r.wait_ms) - bx);
      // Full jitter: the wait is drawn at random below a cap that doubles; the cap is the outline.
      if (r.cap_ms != null) g.append(svg("rect", { x: bx, y: y - 5, width: Math.max(0, x(r.t + r.cap_ms) - bx), height: 10, rx: 2, class: "sync-retry__cap" }));
      g.append(svg("rect", { x: bx, y: y - 5, width, height: 10, rx: 2, class: "sync-retry__wait" }));
      g.append(svg("path", { d: `M${bx - 4},${y - 4} l8,8 m0,-8 l-8,8`, class: "sync-retry__fail" }));
      g.append(svg("text", { x: bx, y: y - 7, class: "sync-retry__n", "text-anchor": "middle" }, String(r.attempt)));
      root.append(g);
    }
  });
  const axisY = shown.length * LANE + 4;
  root.append(svg("line", { x1: LABEL, x2: WIDTH - 8, y1: axisY, y2: axisY, class: "sync-retries__axis" }));
  for (const t of ticks(lo, hi)) {
    root.append(svg("line", { x1: x(t), x2: x(t), y1: axisY, y2: axisY + 4, class: "sync-retries__axis" }));
    root.append(svg("text", { x: x(t), y: axisY + 15, class: "sync-retries__tick", "text-anchor": "middle" }, formatT(t)));
  }
  const waits = retries.map((r) => r.wait_ms).filter((w) => w > 0);
  const parts = [`${retries.length} failed attempt${retries.length === 1 ? "" : "s"} in ${lanes.length} operation${lanes.length === 1 ? "" : "s"}`];
  if (waits.length) parts.push(`waits ${formatT(Math.min(...waits))} – ${formatT(Math.max(...waits))}`);
  else parts.push("retried at once, no wait");
  if (lanes.length > shown.length) parts.push(`the ${shown.length} latest shown`);
  const note = html("p", { className: "sync-retries__note", dataset: { testid: "sync-retries-note" } }, `${parts.join("; ")}.`);
  const last = retries.at(-1);
  const error = html("p", { className: "sync-retries__error small" });
  if (last.error) {
    error.append(html("span", { className: "muted" }, `latest error (${last.what}, attempt ${last.attempt}): `), html("code", {}, last.error));
  }
  const legend = html("p", { className: "legend small" });
  const capped = retries.some((r) => r.cap_ms != null);
  for (const [cls, text] of [["fail", "attempt failed"], ["wait", "wait before the next attempt"], ...(capped ? [["cap", "the window it was drawn from (full jitter)"]] : [])]) {
    const item = html("span", { className: "legend__item" });
    item.append(html("i", { className: `sync-swatch sync-swatch--retry-${cls}` }), text);
    legend.append(item);
  }
  return [note, root, error, legend];
}
