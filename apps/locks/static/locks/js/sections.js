// The critical sections on the storage server's own clock (MariaDB NOW(6)), one row per client.
// Sections of two clients that overlap turn red, with the overlap shaded across both rows; a write
// the storage rejected (a stale fencing token) is struck out; a section still open trails off.

import { formatT, truncate } from "../../runs/js/fold.js";
import { html, svg } from "../../runs/js/svg.js";
import { tokenText } from "./lanes.js";
import { overlaps } from "./slice.js";

const WIDTH = 1100;
const LEFT = 56;
const RIGHT = 14;
const ROW_H = 26;
const TOP = 6;
const AXIS_H = 24;

/** `now` is the view's time on the run's clock. */
export function renderSections(slice, now) {
  const box = html("div", { className: "locks-block locks-sections", dataset: { testid: "locks-timeline" } });
  const sections = slice.sectionOrder.map((id) => slice.sections[id]).filter((s) => s.start != null);
  const known = sections.flatMap((s) => (s.end != null ? [s.start, s.end] : [s.start]));
  const last = known.length ? Math.max(...known) : 0;
  const first = known.length ? Math.min(...known) : 0;
  // A section still open runs to the view's time, on the storage's clock.
  const anyOpen = sections.some((s) => s.end == null);
  const storageNow = slice.storageOffset != null ? now + slice.storageOffset : last;
  const end = anyOpen ? Math.max(last, storageNow) : last;
  const span = Math.max(end - first, 1);
  const openEnd = anyOpen ? end : end + span * 0.02;
  const origin = Math.max(0, first - span * 0.02);
  const pairs = overlaps(slice, openEnd);
  const unsafe = pairs.filter((p) => !p.shared);
  const shared = pairs.filter((p) => p.shared);
  const rejected = sections.filter((s) => s.accepted === false);

  const head = html("h3", { className: "locks-h" }, "Critical sections at the storage");
  head.append(html("span", { className: "locks-h__note" }, "x: the storage server's clock (MariaDB NOW(6))"));
  const summary = html("span", { className: "locks-sections__summary", dataset: { testid: "locks-overlaps", count: String(unsafe.length) } });
  const pending = unsafe.filter((p) => p.open).length;
  if (unsafe.length) {
    summary.classList.add("is-bad");
    summary.textContent = `${unsafe.length} overlap${unsafe.length === 1 ? "" : "s"}: two clients in their critical sections at once`;
    if (pending) summary.textContent += ` (${pending} with a section still open)`;
  } else if (sections.length) {
    summary.textContent = `${sections.length} section${sections.length === 1 ? "" : "s"}, none overlapping${shared.length ? ` (${shared.length} shared by readers)` : ""}`;
  }
  if (rejected.length) summary.append(html("span", { className: "locks-sections__rejected" }, ` · ${rejected.length} stale write${rejected.length === 1 ? "" : "s"} rejected by the fence`));
  head.append(summary);
  box.append(head);

  const clients = slice.clientOrder.filter((c) => sections.some((s) => s.client === c) || slice.clients[c]);
  if (!sections.length) {
    box.append(html("p", { className: "muted small" }, "No critical section yet."));
    return box;
  }
  const height = TOP + clients.length * ROW_H + AXIS_H;
  const root = svg("svg", { class: "locks-timeline", viewBox: `0 0 ${WIDTH} ${height}`, role: "img", "aria-label": "critical sections on the storage's clock" });
  const defs = svg("defs");
  const hatch = svg("pattern", { id: "locks-hatch", width: 6, height: 6, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" });
  hatch.append(svg("rect", { width: 6, height: 6, class: "locks-hatch__bg" }), svg("line", { x1: 0, y1: 0, x2: 0, y2: 6, class: "locks-hatch__line" }));
  defs.append(hatch);
  root.append(defs);

  const x = (ms) => LEFT + ((ms - origin) / (openEnd - origin)) * (WIDTH - LEFT - RIGHT);
  const rowOf = Object.fromEntries(clients.map((c, i) => [c, i]));
  const yOf = (client) => TOP + (rowOf[client] ?? 0) * ROW_H;

  clients.forEach((c, i) => {
    const y = TOP + i * ROW_H;
    if (i % 2 === 0) root.append(svg("rect", { x: LEFT, y, width: WIDTH - LEFT - RIGHT, height: ROW_H, class: "locks-timeline__band" }));
    root.append(svg("text", { x: LEFT - 8, y: y + ROW_H / 2 + 4, "text-anchor": "end", class: "locks-timeline__client" }, c));
  });

  const { step, values } = ticks(origin, openEnd);
  for (const t of values) {
    const tx = x(t);
    root.append(svg("line", { x1: tx, x2: tx, y1: TOP, y2: height - AXIS_H + 4, class: "locks-timeline__grid" }));
    const anchor = tx > WIDTH - 40 ? "end" : "middle";
    root.append(svg("text", { x: tx, y: height - 7, "text-anchor": anchor, class: "locks-timeline__tick" }, tickText(t, step)));
  }

  const perClient = {};
  for (const s of sections) perClient[s.client] = (perClient[s.client] || 0) + 1;
  const sparse = Object.values(perClient).every((n) => n <= 3);
  const bad = new Set();
  for (const p of unsafe) {
    bad.add(p.a.id);
    bad.add(p.b.id);
  }
  for (const p of pairs) {
    const rows = [yOf(p.a.client), yOf(p.b.client)];
    const y1 = Math.min(...rows) + 1;
    const y2 = Math.max(...rows) + ROW_H - 1;
    const band = svg("rect", {
      x: x(p.from), y: y1, width: Math.max(x(p.to) - x(p.from), 2), height: y2 - y1,
      class: `locks-overlap${p.shared ? " is-shared" : ""}`,
    });
    band.append(svg("title", {}, `${p.a.client} and ${p.b.client} both inside from ${formatT(p.from)} to ${formatT(p.to)}${p.shared ? " (both readers: allowed)" : ""}`));
    root.append(band);
  }

  for (const s of sections) {
    const y = yOf(s.client) + 4;
    const h = ROW_H - 8;
    const x1 = x(s.start);
    const open = s.end == null;
    const x2 = x(open ? openEnd : s.end);
    const w = Math.max(x2 - x1, 3);
    let status = "ok";
    if (s.accepted === false) status = "rejected";
    else if (bad.has(s.id)) status = "overlap";
    else if (s.mode === "read") status = "read";
    const g = svg("g", {
      class: `locks-cs locks-cs--${status}${open ? " is-open" : ""}`,
      "data-id": s.id,
      "data-client": s.client,
      "data-status": status,
      "data-overlap": bad.has(s.id) ? "true" : "false",
    });
    g.append(svg("rect", { x: x1, y, width: w, height: h, rx: 3, class: "locks-cs__bar" }));
    const token = tokenText(s.token);
    if (status === "rejected") {
      g.append(svg("text", { x: x2 + 3, y: y + h - 4, class: "locks-cs__cross" }, "✕"));
    }
    const label = status === "rejected" ? `rejected${token ? ` ${token}` : ""}` : token;
    if (label && w > label.length * 6.5 + 8) {
      g.append(svg("text", { x: x1 + 4, y: y + h - 5, class: "locks-cs__label" }, label));
    } else if (label && sparse && x2 + label.length * 6.5 + 20 < WIDTH) {
      // With few sections per client, a short one has its token beside it.
      g.append(svg("text", { x: x2 + (status === "rejected" ? 16 : 4), y: y + h - 5, class: "locks-cs__label is-outside" }, label));
    }
    const what = {
      ok: "",
      read: " (reader)",
      overlap: " — overlaps another client's section",
      rejected: " — write rejected: stale fencing token",
    }[status];
    g.append(svg("title", {}, truncate(`${s.client} #${s.id}${token ? ` token ${s.token}` : ""}: ${formatT(s.start)} → ${open ? "still inside" : formatT(s.end)}${what}`, 160)));
    root.append(g);
  }
  box.append(root);
  return box;
}

function ticks(min, max) {
  const target = 8;
  const span = max - min;
  const magnitude = 10 ** Math.floor(Math.log10(span / target || 1));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => span / s <= target) || magnitude * 10;
  const values = [];
  for (let t = Math.ceil(min / step) * step; t <= max + 1e-9; t += step) values.push(Number(t.toFixed(6)));
  return { step, values };
}

/** A tick's label, with as many decimals as the step between ticks needs. */
function tickText(ms, step) {
  if (step >= 1000 || ms >= 10000) return `${(ms / 1000).toFixed(step >= 1000 ? 0 : Math.max(0, Math.ceil(-Math.log10(step / 1000))))} s`;
  return `${ms.toFixed(step >= 1 ? 0 : Math.ceil(-Math.log10(step)))} ms`;
}
