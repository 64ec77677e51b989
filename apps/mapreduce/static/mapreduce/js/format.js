// Numbers and names as the panel writes them.

import { formatT } from "../../runs/js/fold.js";
import { formatBytes } from "./bytes.js";

export function formatCount(n) {
  return n == null ? "—" : Math.round(n).toLocaleString("en");
}

export function formatValue(value, unit) {
  if (unit === "ms") return formatT(value);
  if (unit === "bytes" || unit === "B") return formatBytes(value);
  return `${formatCount(value)}${unit ? ` ${unit}` : ""}`;
}

export function counterText(name, value) {
  if (name.startsWith("bytes")) return formatBytes(value);
  if (name.startsWith("elapsed")) return formatT(value);
  return formatCount(value);
}

export function times(n) {
  return n === 1 ? "once" : n === 2 ? "twice" : `${n} times`;
}

export function numeric(value) {
  if (Array.isArray(value)) return value.length;
  const n = Number(value);
  return Number.isFinite(n) ? n : 0;
}

/** A key short enough for a label; a path keeps its end, where the file name is. */
export function truncateKey(key, n = 30) {
  const s = String(key);
  if (s.length <= n) return s;
  return s.includes("/") ? `…${s.slice(s.length - n + 1)}` : `${s.slice(0, n - 1)}…`;
}
