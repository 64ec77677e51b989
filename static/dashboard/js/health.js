// The health panel of the home page: GET /api/status/ and one row per node, plus the Celery workers.

const panel = document.getElementById("health");
const rows = document.getElementById("health-nodes");
const note = document.getElementById("health-note");
const celery = document.getElementById("health-celery");

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function badge(ok) {
  const span = document.createElement("span");
  span.className = `tag tag--${ok ? "pass" : "fail"}`;
  span.textContent = ok ? "up" : "down";
  return span;
}

function render(status) {
  rows.replaceChildren();
  for (const node of status.nodes || []) {
    const tr = document.createElement("tr");
    tr.dataset.node = node.name;
    tr.title = node.detail || "";
    const state = cell("");
    state.append(badge(node.ok));
    tr.append(cell(node.name), cell(node.role), state, cell(node.ok && node.ms != null ? node.ms.toFixed(1) : "—", "num"));
    rows.append(tr);
    if (!node.ok) {
      const detail = document.createElement("tr");
      detail.className = "health__detail";
      const td = cell(node.detail || "no answer");
      td.colSpan = 4;
      detail.append(td);
      rows.append(detail);
    }
  }
  const workers = status.celery || {};
  celery.replaceChildren();
  const label = document.createElement("strong");
  label.textContent = "Celery workers: ";
  celery.append(label, badge(!!workers.ok), document.createTextNode(` ${workers.detail || ""}`));
  const down = (status.nodes || []).filter((n) => !n.ok).length + (workers.ok ? 0 : 1);
  note.textContent = down ? `${down} part${down > 1 ? "s" : ""} of the system not answering.` : "Everything answers.";
  note.className = down ? "field-error" : "muted";
}

async function refresh() {
  note.textContent = "Checking the servers…";
  note.className = "muted";
  try {
    const response = await fetch(panel.dataset.url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    render(await response.json());
  } catch (error) {
    note.textContent = `Could not read the system status: ${error.message}`;
    note.className = "field-error";
  }
}

document.getElementById("health-refresh").addEventListener("click", refresh);
refresh();
