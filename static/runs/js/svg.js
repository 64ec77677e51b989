// Tiny DOM helpers shared by the panels. Text always goes in through textContent.

const SVG_NS = "http://www.w3.org/2000/svg";

/** An SVG element with attributes and, optionally, text. */
export function svg(tag, attrs = {}, text = null) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value != null && value !== false) node.setAttribute(key, String(value));
  }
  if (text != null) node.textContent = String(text);
  return node;
}

/** An HTML element with attributes and, optionally, text. */
export function html(tag, attrs = {}, text = null) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value == null || value === false) continue;
    if (key === "className") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, String(value));
  }
  if (text != null) node.textContent = String(text);
  return node;
}

/** Where the segment from the centre of a box toward (tx, ty) leaves the box. */
export function boxEdge(cx, cy, halfW, halfH, tx, ty) {
  const dx = tx - cx;
  const dy = ty - cy;
  if (dx === 0 && dy === 0) return [cx, cy];
  const scale = Math.min(dx ? halfW / Math.abs(dx) : Infinity, dy ? halfH / Math.abs(dy) : Infinity);
  return [cx + dx * scale, cy + dy * scale];
}

export function easeInOut(p) {
  return p < 0.5 ? 2 * p * p : 1 - (-2 * p + 2) ** 2 / 2;
}

// Roles that engines declare, by the side of the diagrams they belong on.
const SENDERS = ["client", "worker", "prober", "generator"];
const MIDDLE = ["coordinator", "leader", "master", "primary", "proxy"];
const SERVERS = ["server", "participant", "replica", "storage", "database", "node"];

/**
 * Where an actor stands in both diagrams: 0 (left) for clients, 1 for coordinators, 2 (right) for
 * servers. An actor that declares no role is placed by what it does: the target of a real command
 * is a server, an actor that only sends commands or requests is a client.
 */
export function roleColumn(state, name) {
  const node = state.nodes[name];
  const role = node?.role;
  if (SENDERS.includes(role)) return 0;
  if (MIDDLE.includes(role)) return 1;
  if (SERVERS.includes(role)) return 2;
  if (!node) return 1;
  if (node.cmdIn > 0) return 2;
  if (node.cmdOut > 0) return 0;
  if (node.msgIn > 0 && node.msgOut === 0) return 2;
  if (node.msgOut > 0 && node.msgIn === 0) return 0;
  return 1;
}

const byName = new Intl.Collator("en", { numeric: true });

/**
 * Orders actors for both diagrams: clients first, then coordinators and the unplaced, then servers;
 * by name within each (c2 before c10), so the layout does not depend on who happened to start first.
 */
export function actorColumns(state) {
  return [...state.nodeOrder].sort((a, b) => roleColumn(state, a) - roleColumn(state, b) || byName.compare(a, b));
}
