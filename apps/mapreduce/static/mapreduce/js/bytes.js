// Sizes as people read them, the lab's one formatter in JS (apps/mapreduce/engine/sizes.py is its
// twin): binary units named as such, since the limits are powers of two (20 MiB, not 21 MB).

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

/** 512 B, 1.5 KiB, 20 MiB: whole bytes, one decimal above (dropped when it is 0). */
export function formatBytes(n) {
  if (n == null || Number.isNaN(Number(n))) return "—";
  let value = Number(n);
  let unit = 0;
  while (unit < UNITS.length - 1 && Math.round(Math.abs(value) * 10) / 10 >= 1024) {
    value /= 1024;
    unit++;
  }
  if (unit === 0) return `${Math.round(value)} B`;
  return `${value.toFixed(1).replace(/\.0$/, "")} ${UNITS[unit]}`;
}
