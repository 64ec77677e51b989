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

/** Orders actors for both diagrams: clients first, then actors of unknown role, then servers. */
export function actorColumns(state) {
  const rank = (name) => {
    const role = state.nodes[name]?.role;
    if (role === "client") return 0;
    if (role === "server") return 2;
    return 1;
  };
  return [...state.nodeOrder].sort((a, b) => rank(a) - rank(b) || state.nodeOrder.indexOf(a) - state.nodeOrder.indexOf(b));
}

export function roleColumn(state, name) {
  const role = state.nodes[name]?.role;
  return role === "client" ? 0 : role === "server" ? 2 : 1;
}
