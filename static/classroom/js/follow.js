// Presenting and following on the run page.
//
// The presenter's page sends its view (the Player's k, live, playing, rate, and the highlighted
// element) over /ws/presentations/<id>/; a follower's page (?follow=<id>) mirrors it through the
// same Player the viewer's own buttons drive, so a followed view looks exactly like one scrubbed
// by hand. The run's events still come from the run's own stream, each once and in order.
// Anything the follower does to the view themselves leaves following until they rejoin.

import { Toast } from "../../runs/js/controls.js";
import { ClassroomSocket } from "./socket.js";

const $ = (id) => document.getElementById(id);
const { page, player } = window.distlab;
const data = JSON.parse($("presenting").textContent);
const toast = new Toast($("toast"));
const speedSelect = $("playback-speed");
const SEND_EVERY_MS = 100; // while the view moves on its own (playing), at most ~10 frames a second
const DRIFT = 2; // a follower playing along is put back on the presenter's k when this far off

// Telling the viewer's own actions from the ones this module applies -------------------------------
let applying = false;
const onViewerAction = [];
for (const name of ["scrubTo", "stepBy", "setLive", "togglePlay", "setRate"]) {
  const original = player[name].bind(player);
  player[name] = (...args) => {
    const result = original(...args);
    if (!applying) for (const listener of onViewerAction) listener(name);
    return result;
  };
}
const onChanged = [];
const changed = player.hooks.changed;
player.hooks.changed = (p) => {
  changed(p);
  for (const listener of onChanged) listener(p);
};

// Highlight: the element the presenter clicked, on every page -------------------------------------
let highlight = null;

function showHighlight() {
  for (const el of document.querySelectorAll(".is-hl")) el.classList.remove("is-hl");
  if (!highlight) return;
  for (const el of document.querySelectorAll(`[data-hl="${CSS.escape(highlight)}"]`)) el.classList.add("is-hl");
}

/** A log row or message the follower has scrolled past is centred in its panel (the page stays put). */
function bringIntoPanel(el) {
  const box = el?.closest("#cmdlog-scroll, #lamport");
  if (!box) return;
  const b = box.getBoundingClientRect();
  const r = el.getBoundingClientRect();
  if (r.top < b.top || r.bottom > b.bottom) box.scrollTop += r.top - b.top - (b.height - r.height) / 2;
}

// Panels rebuild their elements as the view moves: the mark goes back on after every render.
const render = player.hooks.render;
player.hooks.render = (state, options) => {
  render(state, options);
  if (highlight) showHighlight();
};

// Presenting --------------------------------------------------------------------------------------
const presenting = new Map(); // presentation id -> {presentation, socket}
let lastSent = null;
let sendTimer = null;

function currentView() {
  return { action: "view", k: player.k, live: player.live, playing: player.playing, rate: player.rate, highlight };
}

let lastSentAt = 0;

function sendView() {
  clearTimeout(sendTimer);
  sendTimer = null;
  lastSentAt = performance.now();
  lastSent = currentView();
  for (const { socket } of presenting.values()) socket.send(lastSent);
}

function maybeSend() {
  if (!presenting.size) return;
  const now = currentView();
  const same = (key) => lastSent && lastSent[key] === now[key];
  if (!(same("live") && same("playing") && same("rate") && same("highlight"))) return sendView();
  // A live view follows the run by itself on every page; only a replay's position is news.
  if (!now.live && now.k !== lastSent.k && !sendTimer) sendTimer = setTimeout(sendView, SEND_EVERY_MS);
}

// A step or a click goes at once; dragging the scrubber sends a frame per animation frame, so
// those are thinned to the same ~10 a second, the last position always sent.
onViewerAction.push(() => {
  if (!presenting.size) return;
  const wait = SEND_EVERY_MS - (performance.now() - lastSentAt);
  if (wait <= 0) sendView();
  else {
    clearTimeout(sendTimer);
    sendTimer = setTimeout(sendView, wait);
  }
});
onChanged.push(maybeSend);

// Nodes, log rows, messages and invariants do nothing else on a click, so pointing at one changes
// nothing but the mark. A control inside one (an invariant's "evidence") keeps its own job only.
document.addEventListener("click", (event) => {
  if (!presenting.size) return;
  if (event.target.closest?.("a, button, summary, input, select, textarea, label")) return;
  const el = event.target.closest?.("[data-hl]");
  if (!el) return;
  highlight = highlight === el.dataset.hl ? null : el.dataset.hl;
  showHighlight();
  sendView();
});

function present(presentation) {
  if (presenting.has(presentation.id)) return;
  const socket = new ClassroomSocket(presentation.ws, {
    onFrame(frame) {
      if (frame.type === "presentation") sendView();
      else if (frame.type === "ended") stopped(presentation.id, `Your presentation to ${presentation.class.name} has ended.`);
      else if (frame.type === "error") toast.show(frame.message);
    },
  }).connect();
  presenting.set(presentation.id, { presentation, socket });
  showPresenting();
}

function stopped(id, message) {
  const entry = presenting.get(id);
  if (!entry) return;
  entry.socket.close();
  presenting.delete(id);
  if (!presenting.size && highlight) {
    highlight = null;
    showHighlight();
  }
  if (message) toast.show(message, "info");
  showPresenting();
}

function showPresenting() {
  const form = $("present-form");
  if (!form) return;
  const on = [...presenting.values()].map(({ presentation }) => presentation.class.name);
  $("presenting-now").hidden = !on.length;
  $("presenting-text").textContent = `You are presenting this run to ${on.join(", ")}: followers see your view. Click a node, row or message to point at it for everyone.`;
  document.body.classList.toggle("is-presenting", on.length > 0);
}

async function post(url, body) {
  const token = document.querySelector("#present-form [name=csrfmiddlewaretoken]")?.value || "";
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRFToken": token },
    credentials: "same-origin",
    body: JSON.stringify(body || {}),
  });
  let reply = {};
  try {
    reply = await response.json();
  } catch {
    // A body that is not JSON: the status says enough.
  }
  if (!response.ok) {
    const said = reply.detail || Object.entries(reply).map(([field, errors]) => `${field}: ${[].concat(errors).join(" ")}`).join("; ");
    throw new Error(said || `the server answered ${response.status}`);
  }
  return reply;
}

$("present-form")?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const classId = $("present-class").value;
  const button = $("present-button");
  button.disabled = true; // one presentation per press
  try {
    const reply = await post(`/api/classes/${classId}/present/`, { run: page.id });
    for (const id of reply.ended || []) stopped(id);
    present(reply.presentation);
    toast.show(`Presenting to ${reply.presentation.class.name}: its members are told on whatever page they are on.`, "info");
  } catch (error) {
    toast.show(`Could not present: ${error.message}`);
  } finally {
    button.disabled = false;
  }
});
// The button is pressable from here on: a press before this script ran would have reloaded the page.
if ($("present-button")) $("present-button").disabled = false;

$("stop-presenting")?.addEventListener("click", async () => {
  for (const id of [...presenting.keys()]) {
    try {
      await post(`/api/presentations/${id}/end/`);
    } catch (error) {
      toast.show(`Could not stop presenting: ${error.message}`);
      continue;
    }
    stopped(id);
  }
});

for (const presentation of data.live) {
  if (presentation.presenter.name === page.viewer) present(presentation);
}

// Following ---------------------------------------------------------------------------------------
let following = false;
let presenterView = null; // the presenter's latest view, mirrored while following
let followed = null; // the presentation

function mirror() {
  const view = presenterView;
  if (!following || !view) return;
  // A position the run's stream has not brought yet is taken once the events are here.
  if (!view.live && view.k > player.n) return;
  applying = true;
  try {
    if (player.rate !== view.rate) {
      player.setRate(view.rate);
      speedSelect.value = String(view.rate);
    }
    if (view.live) {
      if (!player.live) player.setLive(true);
    } else if (view.playing) {
      if (!player.playing) {
        player.scrubTo(view.k);
        player.togglePlay();
      } else if (Math.abs(player.k - view.k) > DRIFT) {
        player.seek(view.k);
        player.hooks.changed(player);
      }
    } else if (player.live || player.playing || player.k !== view.k) {
      player.scrubTo(view.k);
    }
  } finally {
    applying = false;
  }
  if (highlight !== view.highlight) {
    highlight = view.highlight;
    showHighlight();
    bringIntoPanel(document.querySelector(".is-hl"));
    showMark();
  }
}

function followBar(text, { leave = false, rejoin = false } = {}) {
  $("follow-bar").hidden = false;
  $("follow-text").textContent = text;
  $("follow-leave").hidden = !leave;
  $("follow-rejoin").hidden = !rejoin;
  document.body.dataset.follow = leave ? "following" : rejoin ? "left" : "off";
  showMark();
}

/** What a data-hl names, in words: "node db1", "command #7", "message #6", "invariant atomicity". */
function markName(hl) {
  const [kind, ...rest] = hl.split(":");
  const what = rest.join(":");
  const words = { node: "node", cmd: "command", msg: "message", ev: "event", inv: "invariant" };
  // A command drawn as two messages: its reply is "msg:<seq>r".
  if (kind === "msg" && what.endsWith("r")) return `the reply to message #${what.slice(0, -1)}`;
  return `${words[kind] || kind} ${["cmd", "msg", "ev"].includes(kind) ? `#${what}` : what}`;
}

// While following, the bar says what the presenter points at, with a button that scrolls to it:
// the follower's page need not be scrolled where the presenter's is.
function showMark() {
  const on = following && highlight !== null;
  $("follow-mark").hidden = !on;
  $("follow-show").hidden = !on;
  if (on) $("follow-mark").textContent = `Pointing at ${markName(highlight)}.`;
}

$("follow-show").addEventListener("click", () => {
  document.querySelector(".is-hl")?.scrollIntoView({ block: "center", behavior: "smooth" });
});

// The bar stays at the top of the window while following; the playback bar, also sticky, goes
// just below it rather than under it.
const bar = $("follow-bar");
new ResizeObserver(() => document.body.style.setProperty("--follow-bar-h", `${bar.offsetHeight}px`)).observe(bar);

function who() {
  return followed ? `${followed.presenter.name}'s presentation to ${followed.class.name}` : "the presentation";
}

function startFollowing() {
  following = true;
  followBar(`Following ${who()}: your view moves with theirs.`, { leave: true });
  mirror();
}

function leave() {
  if (!following) return;
  following = false;
  // The presenter's mark is theirs to move: a view of one's own shows none (rejoining brings it back).
  highlight = null;
  showHighlight();
  followBar(`You left ${who()}; the view is yours.`, { rejoin: true });
}

onViewerAction.push(() => following && leave());
// A position not yet loaded is taken when the events arrive.
onChanged.push(() => following && presenterView && !presenterView.live && player.k !== presenterView.k && !player.playing && mirror());

$("follow-leave").addEventListener("click", leave);
$("follow-rejoin").addEventListener("click", startFollowing);

const followId = new URLSearchParams(location.search).get("follow");
if (followId !== null) {
  if (!/^\d{1,18}$/.test(followId)) {
    followBar(`Ignored ?follow=${followId}: it must be a presentation number.`);
  } else {
    followBar("Joining the presentation…");
    const socket = new ClassroomSocket(`/ws/presentations/${followId}/`, {
      onFrame(frame) {
        if (frame.type === "presentation") {
          followed = frame.presentation;
          if (followed.run.id !== page.id) {
            location.replace(followed.follow_url);
            return;
          }
          if (frame.you === "presenter") {
            socket.close();
            $("follow-bar").hidden = true;
            present(followed);
            return;
          }
          presenterView = followed.view;
          // A reconnect finds the viewer as they were: following, or on their own.
          if (following || document.body.dataset.follow !== "left") startFollowing();
        } else if (frame.type === "view") {
          presenterView = frame.view;
          mirror();
        } else if (frame.type === "ended") {
          following = false;
          highlight = null;
          showHighlight();
          followBar(`${followed ? who() : "The presentation"} has ended; the view is yours.`);
        } else if (frame.type === "error") {
          following = false;
          followBar(`Cannot follow: ${frame.message}.`);
        }
      },
      onState(state) {
        if (state === "retrying" && following) followBar(`Following ${who()}: reconnecting…`, { leave: true });
      },
    }).connect();
  }
}

// For tests and the curious.
window.distlab.follow = {
  get following() {
    return following;
  },
  get presenterView() {
    return presenterView;
  },
  get presenting() {
    return [...presenting.keys()];
  },
};
