// The kept-data panel of the run page (apps/runs/templates/runs/_kept.html): copy buttons for the
// inspection commands, and Drop data, which asks the API and then follows the run until a worker
// has dropped the data.

const panel = document.getElementById("kept-data");

function say(text) {
  panel.querySelector("[data-kept-status]").textContent = text;
}

async function copy(button) {
  const text = button.previousElementSibling.textContent;
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = "Copied";
  } catch {
    // No clipboard (an insecure origin, say): select the command so Ctrl-C copies it.
    const range = document.createRange();
    range.selectNodeContents(button.previousElementSibling);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    button.textContent = "Selected";
  }
  setTimeout(() => { button.textContent = "Copy"; }, 1500);
}

async function kept() {
  const response = await fetch(panel.dataset.api, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(`the run did not load (HTTP ${response.status})`);
  return (await response.json()).kept;
}

async function waitUntilDropped() {
  for (;;) {
    const state = await kept();
    if (!state || state.state === "dropped") return;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

async function drop(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const button = form.querySelector("button");
  button.disabled = true;
  say("Dropping the data…");
  try {
    const response = await fetch(form.action, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": form.elements.csrfmiddlewaretoken.value, Accept: "application/json" },
    });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw new Error(body.detail || `HTTP ${response.status}`);
    }
    await waitUntilDropped();
    panel.querySelector("[data-kept-live]")?.remove();
    form.remove();
    say("The data was dropped.");
  } catch (error) {
    button.disabled = false;
    say(`Drop data failed: ${error.message}`);
  }
}

if (panel) {
  for (const button of panel.querySelectorAll("[data-copy]")) button.addEventListener("click", () => copy(button));
  panel.querySelector("[data-kept-drop]")?.addEventListener("submit", drop);
}
