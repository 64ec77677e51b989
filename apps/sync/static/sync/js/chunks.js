// The checksum chunks as a grid, in key order: grey while both sides are being checksummed, green
// when A's and B's COUNT and BIT_XOR(CRC32) agree, red when they differ, and green with a red edge
// once a differing chunk was compared row by row and repaired. The latest differing chunk's rows
// are listed under the grid.

import { html } from "../../runs/js/svg.js";

const STATE_TEXT = { checking: "checking", equal: "equal", differ: "differ", repaired: "repaired" };

function sums(pair) {
  if (!Array.isArray(pair)) return "?";
  const [count, crc] = pair;
  return `${count} rows, crc ${crc}`;
}

function rowText(row) {
  if (row == null || typeof row !== "object") return `id ${row}`;
  const id = row.id ?? row.key ?? "?";
  const side = (v) => (v == null ? "absent" : typeof v === "object" ? `v${v.version ?? "?"}${v.value != null ? ` ${v.value}` : ""}` : String(v));
  if ("A" in row || "B" in row) return `id ${id}: A ${side(row.A)}, B ${side(row.B)}`;
  return `id ${id}`;
}

export function renderChunks(slice) {
  const chunks = slice.chunkOrder.map((i) => slice.chunks[i]);
  const counts = { checking: 0, equal: 0, differ: 0, repaired: 0 };
  const current = chunks.filter((c) => !c.stale);
  for (const c of current) counts[c.state] = (counts[c.state] || 0) + 1;
  const found = current.filter((c) => c.states.includes("differ")).length;
  const grid = html("div", { className: "sync-chunks__grid", dataset: { testid: "sync-chunks-grid" } });
  for (const c of chunks) {
    const title = `chunk ${c.i}: ids [${c.lo}, ${c.hi}) ${STATE_TEXT[c.state] || c.state}\nA: ${sums(c.a)}\nB: ${sums(c.b)}`;
    const stale = c.stale ? " is-stale" : "";
    const cell = html("span", { className: `sync-chunk sync-chunk--${c.state}${stale}`, dataset: { i: String(c.i), state: c.state }, title: `${title}${stale ? "\n(as the previous pass left it)" : ""}` });
    cell.append(html("span", { className: "sync-chunk__i" }, String(c.i)), html("span", { className: "sync-chunk__range" }, `${c.lo}–${c.hi - 1}`));
    grid.append(cell);
  }
  const passing = current.length < chunks.length;
  const last = slice.passes.at(-1);
  const parts = [];
  if (passing) parts.push(`a new pass: ${current.length} of ${chunks.length} chunks checked so far, ${found} differed`);
  else if (last && chunks.every((c) => c.seq < last.seq)) {
    parts.push(`pass ${last.pass}: ${last.differing} of ${last.chunks} chunks differed, ${last.repaired} row${last.repaired === 1 ? "" : "s"} repaired`);
  } else {
    parts.push(`${chunks.length} chunk${chunks.length === 1 ? "" : "s"}`);
    if (counts.equal) parts.push(`${counts.equal} equal`);
    if (found) parts.push(`${found} differed`);
    if (counts.differ) parts.push(`${counts.differ} still differ${counts.differ === 1 ? "s" : ""}`);
    if (counts.repaired) parts.push(`${counts.repaired} repaired`);
    if (counts.checking) parts.push(`${counts.checking} being checked`);
  }
  const note = html("p", { className: "sync-chunks__note", dataset: { testid: "sync-chunks-note" } }, `${parts.join(" · ")}. Only the chunks that differ are compared row by row.`);
  const worst = [...chunks].filter((c) => c.rows && c.rows.length).sort((a, b) => b.seq - a.seq)[0];
  const rows = html("div", { className: "sync-chunks__rows small" });
  if (worst) {
    rows.append(html("span", { className: "muted" }, `chunk ${worst.i} [${worst.lo}, ${worst.hi}) row by row${worst.stale ? " in the previous pass" : ""}: `));
    const list = html("ul", { className: "sync-chunks__list" });
    for (const row of worst.rows.slice(0, 6)) list.append(html("li", {}, rowText(row)));
    if (worst.rows.length > 6) list.append(html("li", { className: "muted" }, `and ${worst.rows.length - 6} more`));
    rows.append(list);
  }
  const legend = html("p", { className: "legend small" });
  for (const state of ["checking", "equal", "differ", "repaired"]) {
    const item = html("span", { className: "legend__item" });
    item.append(html("i", { className: `sync-swatch sync-chunk--${state}` }), STATE_TEXT[state]);
    legend.append(item);
  }
  return [note, grid, rows, legend];
}
