// The instructor's board: students by checkpoints. The page carries a snapshot (json_script), the
// websocket /ws/classes/<id>/board/ sends a fresh one on connect and then one student's row at a
// time; rows and cells are patched in place, and the cells that changed flash, so the instructor
// sees where the room moved without the grid jumping.

const FATAL_CLOSE = { 4401: "not logged in", 4404: "no such class, or not yours" };
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000];
const FLASH_MS = 4000;

const root = document.getElementById("board");
const head = document.getElementById("board-head");
const body = document.getElementById("board-rows");
const foot = document.getElementById("board-totals");
const empty = document.getElementById("board-empty");
const connection = document.getElementById("board-connection");
const dialog = document.getElementById("board-answer");

let columns = [];
let studentCount = 0;

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "className") node.className = value;
    else node.setAttribute(name, value);
  }
  if (text !== undefined) node.textContent = text;
  return node;
}

// The time alone for today's runs (a class is one sitting); the date too for older ones.
function clock(iso) {
  if (!iso) return "";
  const moment = new Date(iso);
  const time = moment.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return moment.toDateString() === new Date().toDateString() ? time : `${moment.toLocaleDateString()} ${time}`;
}

function fullTime(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

// Header: the sheets as groups over their checkpoints, in the class's order.
function renderHead() {
  const groups = [];
  for (const column of columns) {
    const last = groups[groups.length - 1];
    if (last && last.sheet === column.sheet) last.count++;
    else groups.push({ sheet: column.sheet, title: column.sheet_title, count: 1 });
  }
  const top = el("tr");
  for (const label of ["Student", "Passed", "Stuck at", "Last run"]) {
    top.append(el("th", { scope: "col", rowspan: 2, className: "board-grid__fixed" }, label));
  }
  for (const group of groups) {
    top.append(el("th", { scope: "colgroup", colspan: group.count, className: "board-grid__sheet", "data-sheet": group.sheet, title: group.sheet }, group.title));
  }
  const second = el("tr");
  for (const column of columns) {
    const th = el("th", { scope: "col", className: "board-grid__checkpoint", title: column.asks, "data-key": column.key, "data-testid": "board-column" });
    th.append(el("span", { className: "board-grid__kind" }, column.kind === "question" ? "question" : column.scenario));
    th.append(el("span", { className: "board-grid__title" }, column.title));
    second.append(th);
  }
  head.replaceChildren(top, second);
}

function cellContent(column, cell, row) {
  switch (cell.state) {
    case "passed": {
      const title = `passed${cell.run ? ` by run #${cell.run}` : ""}${cell.at ? ` at ${fullTime(cell.at)}` : ""}`;
      if (!cell.url) return el("span", { className: "board-chip board-chip--passed", title }, "✓");
      return el("a", { className: "board-chip board-chip--passed", href: cell.url, title, "data-testid": "board-pass" }, "✓");
    }
    case "tried":
      return el("a", { className: "board-chip board-chip--tried", href: cell.url, title: `${cell.tries} run${cell.tries > 1 ? "s" : ""} that did not meet it; the latest, ${cell.why}`, "data-testid": "board-tried" }, `${cell.tries}×`);
    case "answered": {
      const button = el("button", { type: "button", className: "board-chip board-chip--answered", title: `answered ${fullTime(cell.at)}: open the answer`, "data-testid": "board-answered" }, "✎");
      button.addEventListener("click", () => openAnswer(column, cell, row));
      return button;
    }
    default:
      return el("span", { className: "board-chip board-chip--empty", title: "nothing yet" }, "·");
  }
}

function openAnswer(column, cell, row) {
  document.getElementById("board-answer-title").textContent = column.title;
  document.getElementById("board-answer-who").textContent = `${row.name} (${row.username}), ${fullTime(cell.at)}`;
  document.getElementById("board-answer-text").textContent = cell.text;
  dialog.showModal();
}

function stuckAt(row) {
  const td = el("td", { className: "board-grid__at", "data-testid": "board-stuck-at", title: row.stuck_at ? row.stuck_at.key : "" });
  td.append(el("span", {}, row.stuck_at ? row.stuck_at.title : "all done"));
  // Why the mark is there, at a glance: the instructor decides whom to walk over to first.
  if (row.stuck) td.append(el("span", { className: "board-grid__why" }, row.stuck_why));
  return td;
}

// The cells of a row, each with a signature: a patch replaces (and flashes) only those whose
// signature changed.
function rowCells(row) {
  const student = el("th", { scope: "row", className: "board-grid__student" });
  student.append(el("span", { className: "board-grid__name", title: row.username }, row.name));
  if (row.stuck) student.append(el("span", { className: "board-stuck", title: row.stuck_why, "data-testid": "board-stuck" }, "stuck"));
  const cells = [
    [student, `${row.name}|${row.stuck}|${row.stuck_why}`],
    [el("td", { className: "num", "data-testid": "board-passed" }, `${row.passed}/${row.of}`), `${row.passed}/${row.of}`],
    [stuckAt(row), `${JSON.stringify(row.stuck_at)}|${row.stuck_why}`],
    [el("td", { className: "board-grid__time", title: fullTime(row.last_run) }, row.last_run ? clock(row.last_run) : "no runs"), row.last_run || ""],
  ];
  for (const column of columns) {
    const cell = row.cells[column.key] || { state: "empty" };
    const td = el("td", { className: `board-cell board-cell--${cell.state}`, "data-key": column.key, "data-state": cell.state });
    td.append(cellContent(column, cell, row));
    cells.push([td, JSON.stringify(cell)]);
  }
  return cells.map(([node, signature]) => {
    node.dataset.sig = signature;
    return node;
  });
}

function flash(node) {
  node.classList.remove("is-changed");
  void node.offsetWidth; // restarts the animation when the same cell changes twice in a row
  node.classList.add("is-changed");
  setTimeout(() => node.classList.remove("is-changed"), FLASH_MS);
}

function placeRow(tr, username) {
  for (const other of body.children) {
    if (other !== tr && other.dataset.username > username) {
      body.insertBefore(tr, other);
      return;
    }
  }
  body.append(tr);
}

function patchRow(row, { animate }) {
  let tr = body.querySelector(`tr[data-student="${row.id}"]`);
  const fresh = rowCells(row);
  if (!tr) {
    tr = el("tr", { "data-student": row.id, "data-testid": "board-row" });
    tr.dataset.username = row.username;
    tr.append(...fresh);
    placeRow(tr, row.username);
    if (animate) fresh.forEach(flash);
  } else {
    fresh.forEach((node, i) => {
      const old = tr.children[i];
      if (old && old.dataset.sig === node.dataset.sig) return;
      if (old) old.replaceWith(node);
      else tr.append(node);
      if (animate) flash(node);
    });
  }
  tr.dataset.stuck = row.stuck ? "true" : "false";
}

function removeRow(studentId) {
  body.querySelector(`tr[data-student="${studentId}"]`)?.remove();
}

function renderTotals(totals) {
  const tr = el("tr");
  tr.append(el("th", { scope: "row", colspan: 4, className: "board-grid__fixed" }, "Passed (of the class)"));
  for (const column of columns) {
    tr.append(el("td", { className: "num", "data-key": column.key, "data-testid": "board-total" }, `${totals[column.key] ?? 0}/${studentCount}`));
  }
  foot.replaceChildren(tr);
}

function renderEmpty() {
  const reasons = [];
  if (!columns.length) reasons.push("No sheets are assigned to this class yet: assign them on the class page or in the admin.");
  if (!studentCount) reasons.push("No students have joined yet: give them the class's join code.");
  empty.textContent = reasons.join(" ");
  empty.hidden = !reasons.length;
}

function sameColumns(next) {
  return next.length === columns.length && next.every((c, i) => c.key === columns[i].key && c.title === columns[i].title && c.asks === columns[i].asks);
}

function applySnapshot(snapshot, { animate }) {
  if (!sameColumns(snapshot.columns)) {
    columns = snapshot.columns;
    renderHead();
    body.replaceChildren();
    animate = false;
  }
  const present = new Set(snapshot.rows.map((row) => String(row.id)));
  for (const tr of [...body.children]) if (!present.has(tr.dataset.student)) tr.remove();
  for (const row of snapshot.rows) patchRow(row, { animate });
  studentCount = snapshot.rows.length;
  renderTotals(snapshot.totals);
  renderEmpty();
}

function applyRow(frame) {
  if (frame.row) patchRow(frame.row, { animate: true });
  else removeRow(frame.student);
  studentCount = body.children.length;
  renderTotals(frame.totals);
  renderEmpty();
}

function setConnection(state, detail) {
  connection.dataset.state = state;
  const words = { connecting: "connecting…", live: "live", reconnecting: "reconnecting", closed: "not live" };
  connection.textContent = detail ? `${words[state]}: ${detail}` : words[state];
}

let attempt = 0;
function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}${root.dataset.ws}`);
  let refused = "";
  setConnection(attempt ? "reconnecting" : "connecting");
  socket.addEventListener("open", () => {
    attempt = 0;
    setConnection("live");
  });
  socket.addEventListener("message", (message) => {
    let frame;
    try {
      frame = JSON.parse(message.data);
    } catch {
      return;
    }
    if (frame.type === "snapshot") applySnapshot(frame, { animate: true });
    else if (frame.type === "row") applyRow(frame);
    else if (frame.type === "error") refused = frame.message;
  });
  socket.addEventListener("close", (event) => {
    if (FATAL_CLOSE[event.code]) {
      setConnection("closed", refused || FATAL_CLOSE[event.code]);
      return;
    }
    const delay = BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)];
    attempt++;
    setConnection("reconnecting", `in ${(delay / 1000).toFixed(1)} s`);
    setTimeout(connect, delay);
  });
}

applySnapshot(JSON.parse(document.getElementById("board-data").textContent), { animate: false });
connect();
