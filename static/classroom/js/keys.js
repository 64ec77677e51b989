// Presenter keys on the run page, and projector mode.
//
// The keys press the page's own buttons (or call the Player as they do), so a key does exactly
// what its button does, following and presenting included. They are ignored while typing in a
// form field, and with a modifier other than shift, so the browser's own shortcuts still work.

const $ = (id) => document.getElementById(id);
const { player } = window.distlab;
const PROJECTOR_KEY = "distlab.projector";

function typing(target) {
  return target.closest?.("input, textarea, select, [contenteditable=''], [contenteditable='true']");
}

function openFaults() {
  const first = [...document.querySelectorAll("#faults button")].find((b) => !b.disabled);
  const box = $("faults");
  if (!box) return false;
  box.scrollIntoView({ block: "nearest" });
  box.classList.remove("is-called");
  void box.offsetWidth; // restarts the flash when f is pressed again
  box.classList.add("is-called");
  first?.focus();
  return true;
}

function setProjector(on) {
  const was = document.documentElement.classList.contains("projector");
  document.documentElement.classList.toggle("projector", on);
  // The panels that fit themselves to their width (the space-time diagram, the charts) do so on
  // a resize of the window: the panels' widths have just changed.
  if (was !== on) window.dispatchEvent(new Event("resize"));
  $("projector-toggle")?.setAttribute("aria-pressed", String(on));
  try {
    localStorage.setItem(PROJECTOR_KEY, on ? "1" : "0");
  } catch {
    // Storage refused (private mode): the mode lasts for this page only.
  }
}

function projectorRemembered() {
  try {
    return localStorage.getItem(PROJECTOR_KEY) === "1";
  } catch {
    return false;
  }
}

document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) return;
  if (typing(event.target)) return;
  let done = true;
  switch (event.key) {
    case " ":
      $("play").click();
      break;
    case "ArrowRight":
      if (event.shiftKey) player.stepBy(10);
      else $("step-forward").click();
      break;
    case "ArrowLeft":
      if (event.shiftKey) player.stepBy(-10);
      else $("step-back").click();
      break;
    case "f":
      done = openFaults();
      break;
    case "p":
      setProjector(!document.documentElement.classList.contains("projector"));
      break;
    default:
      done = false;
  }
  if (done) event.preventDefault();
});

// A focused button would also take the space as its own click (on keyup): the key is the page's.
document.addEventListener("keyup", (event) => {
  if (event.key === " " && event.target.closest?.("button") && !typing(event.target)) event.preventDefault();
});

// The hint, at the end of the playback bar.
const hint = document.createElement("span");
hint.className = "keys-hint muted small";
hint.dataset.testid = "keys-hint";
const parts = [["space", "play/pause"], ["← →", "step"], ["⇧ ← →", "10 events"]];
if ($("faults")) parts.push(["f", "faults"]);
parts.push(["p", "projector"]);
hint.append("keys: ");
parts.forEach(([key, what], i) => {
  const kbd = document.createElement("kbd");
  kbd.textContent = key;
  hint.append(kbd, ` ${what}${i < parts.length - 1 ? " · " : ""}`);
});
const toggle = document.createElement("button");
toggle.type = "button";
toggle.id = "projector-toggle";
toggle.className = "btn btn--small btn--quiet";
toggle.textContent = "Projector";
toggle.title = "Larger type for a projector (p)";
toggle.addEventListener("click", () => setProjector(!document.documentElement.classList.contains("projector")));
$("playback").append(hint, toggle);

setProjector(projectorRemembered());
