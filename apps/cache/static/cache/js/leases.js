// Lease tokens: how many were handed out, used, refused and invalidated, and the latest ones in
// order, so a token invalidated by a write and then refused at its holder's fill is seen as such.

import { formatT } from "../../runs/js/fold.js";
import { html } from "../../runs/js/svg.js";

const STATES = [
  ["granted", "handed out"],
  ["used", "filled the cache"],
  ["invalidated", "invalidated by a write"],
  ["refused", "fill refused"],
];

export function renderLeases(slice) {
  const counts = html("div", { className: "cache-chips" });
  for (const [state, text] of STATES) {
    const n = slice.leaseCounts[state] || 0;
    const chip = html("span", { className: `cache-lease cache-lease--${state}`, dataset: { state } });
    chip.append(html("b", {}, String(n)), ` ${text}`);
    counts.append(chip);
  }
  const list = html("ol", { className: "cache-lease-list", dataset: { testid: "cache-lease-list" } });
  for (const l of slice.leases) {
    const item = html("li", { className: `cache-lease-item cache-lease-item--${l.state}`, dataset: { state: l.state } });
    const what = l.state === "invalidated" ? `token ${l.token} on ${l.key} invalidated by ${l.client}'s write` : `token ${l.token} on ${l.key} ${l.state === "granted" ? "to" : "of"} ${l.client}: ${l.state}`;
    item.append(html("span", { className: "cache-lease-item__t" }, formatT(l.t)), html("span", {}, what));
    list.append(item);
  }
  return [counts, list];
}
