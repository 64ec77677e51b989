// The run page: wires the event stream, the playback position and the panels together.
//
// Generating, delivering and displaying events are separate: the stream delivers events (each once,
// in order) into `events`; the player decides which prefix of them is on screen; every panel renders
// fold(events, k) and nothing else, so a live view, a paused one and a scrubbed one look alike.

import { CommandLog } from "./cmdlog.js";
import { Charts } from "./charts.js";
import { Controls, Toast } from "./controls.js";
import { LamportDiagram } from "./lamport.js";
import { NodeDiagram } from "./nodes.js";
import { Narration } from "./narration.js";
import { mountPanels } from "./panels.js";
import { Player } from "./playback.js";
import { RunStream } from "./stream.js";
import { VerdictPanel, queueText } from "./verdict.js";

const FINISHED = ["done", "failed", "cancelled"];
const $ = (id) => document.getElementById(id);

const page = JSON.parse($("run-page").textContent);
const events = [];
let runStatus = { status: page.status, step: null, events: 0, speed: null };

const toast = new Toast($("toast"));
const nodes = new NodeDiagram($("nodes"), $("nodes-caption"));
const lamport = new LamportDiagram($("lamport"));
const cmdlog = new CommandLog($("cmdlog"), $("cmdlog-scroll"), $("cmdlog-count"));
const charts = new Charts($("charts"), $("counters"), $("charts-empty"));
// A lab's own panels, registered by its modules (loaded before this one) through panels.js.
const labPanels = mountPanels($("lab-panels"));
const verdict = new VerdictPanel({
  verdict: $("verdict"),
  expected: $("verdict-expected"),
  reason: $("failure-reason"),
  cost: $("verdict-cost"),
  faults: $("verdict-faults"),
  list: $("invariants"),
  invariants: page.invariants,
  viewer: page.viewer,
});

function hasEnd() {
  return events.length > 0 && events[events.length - 1].kind === "end";
}

function finished() {
  return FINISHED.includes(runStatus.status) || hasEnd();
}

function render(state, { rebuild }) {
  verdict.setRun(runStatus, state.k >= events.length);
  nodes.sync(state, { rebuild });
  lamport.sync(state, { rebuild });
  cmdlog.sync(state, { rebuild });
  charts.sync(state, { rebuild });
  verdict.sync(state, { rebuild });
  for (const panel of labPanels) panel.sync(state, { rebuild });
  narration.sync(state);
}

const player = new Player(events, {
  render,
  animate(rows, ms) {
    if (rows) nodes.animate(rows, ms);
    else nodes.stopAnimations();
  },
  changed: updatePlayback,
  finished,
});
const narration = new Narration(
  { root: $("narration"), now: $("narration-now"), earlier: $("narration-earlier") },
  page,
  events,
  (seq) => player.scrubTo(seq),
);

// Status line ------------------------------------------------------------------------------------
function updateStatusLine() {
  const status = runStatus.status;
  for (const el of [$("run-status"), $("run-status-text")]) {
    el.textContent = status;
    el.dataset.status = status;
  }
  $("run-status").className = `status status--${status} status--big`;
  const step = $("run-step");
  // The server reports the step when the run pauses or changes pace, so it is shown while paused.
  step.hidden = !(status === "paused" && runStatus.step != null);
  step.textContent = `paused at step ${runStatus.step}`;
  const detail = $("run-detail");
  const told = statusDetail();
  detail.hidden = !told;
  detail.textContent = told;
  detail.className = runStatus.stale || status === "failed" ? "failure-reason" : "";
  // Before the first event the node diagram has nothing to show: say what the run waits for.
  if (!events.length && told) $("nodes-caption").textContent = told;
  $("run-events").textContent = events.length;
  document.title = `${status} · Run #${page.id} · DistLab`;
}

/** Why the run is where it is: its place in the queue, a stale worker, how it ended. */
function statusDetail() {
  const { status } = runStatus;
  if (status === "queued") return queueText(runStatus.queue);
  if (runStatus.stale) return "the run's worker has not been heard from; the run is failed if it does not come back";
  if ((status === "failed" || status === "cancelled") && runStatus.failure_reason) return `${status}: ${runStatus.failure_reason}`;
  return "";
}

function setConnection(state, detail) {
  const el = $("connection");
  el.dataset.state = state;
  el.textContent = {
    connecting: "connecting…",
    live: "live",
    reconnecting: `reconnecting${detail ? ` ${detail}` : ""}…`,
    closed: `disconnected${detail ? `: ${detail}` : ""}`,
    complete: "complete: every event loaded",
  }[state] || state;
}

// Playback bar -------------------------------------------------------------------------------------
const scrubber = $("scrubber");
const liveBox = $("live");
const playButton = $("play");

function updatePlayback() {
  const n = events.length;
  scrubber.max = String(n);
  if (document.activeElement !== scrubber || !scrubbing) scrubber.value = String(player.k);
  $("scrub-label").textContent = `${player.k} / ${n}`;
  $("view-position").textContent = player.live && player.behind > 0 ? `${player.k} (catching up, ${player.behind} behind)` : `${player.k} of ${n}`;
  liveBox.checked = player.live;
  playButton.textContent = player.playing ? "❚❚ Pause" : "▶ Play";
  playButton.setAttribute("aria-pressed", String(player.playing));
  $("step-back").disabled = player.k <= 0;
  $("step-forward").disabled = player.k >= n;
  document.body.dataset.view = player.live ? "live" : player.playing ? "replaying" : "scrubbed";
  updateStatusLine();
}

// Dragging folds at most once per frame, however many input events the browser sends.
let scrubbing = false;
let scrubTarget = null;
scrubber.addEventListener("input", () => {
  scrubbing = true;
  if (scrubTarget === null) {
    requestAnimationFrame(() => {
      const target = scrubTarget;
      scrubTarget = null;
      player.scrubTo(target);
    });
  }
  scrubTarget = Number(scrubber.value);
});
scrubber.addEventListener("change", () => {
  scrubbing = false;
  player.scrubTo(Number(scrubber.value));
});
$("step-back").addEventListener("click", () => player.stepBy(-1));
$("step-forward").addEventListener("click", () => player.stepBy(1));
$("pb-start").addEventListener("click", () => player.scrubTo(0));
$("pb-end").addEventListener("click", () => (finished() ? player.scrubTo(events.length) : player.setLive(true)));
playButton.addEventListener("click", () => player.togglePlay());
liveBox.addEventListener("change", () => player.setLive(liveBox.checked));
$("playback-speed").addEventListener("change", (e) => player.setRate(Number(e.target.value)));

// A link to a moment: /runs/<id>/?at=<seq> opens the run scrubbed to just after that event --------
const deepLink = readDeepLink();
let deepTarget = null; // the seq to open at, once the first status frame says how many events are stored

function readDeepLink() {
  const raw = new URLSearchParams(location.search).get("at");
  if (raw === null) return null;
  if (!/^\d{1,12}$/.test(raw.trim())) {
    toast.show(`Ignored ?at=${raw}: it must be an event number, 0 or more.`);
    return null;
  }
  return Number(raw.trim());
}

function applyDeepLink() {
  if (deepTarget === null || events.length < deepTarget) return;
  const target = deepTarget;
  deepTarget = null;
  if (deepLink > target && !finished()) {
    // Past what a running run has so far: its end is the live view.
    toast.show(`The run has ${target} events so far, not ${deepLink}: following it live.`, "info");
    player.setLive(true);
    return;
  }
  if (deepLink > target) toast.show(`The run has ${target} events, not ${deepLink}: showing its end.`, "info");
  player.scrubTo(target);
}

function momentLink() {
  const url = new URL(location.href);
  url.searchParams.set("at", String(player.k));
  url.hash = "";
  return url.toString();
}

let saidTimer = null;
function sayMoment(text) {
  $("moment-said").textContent = text;
  clearTimeout(saidTimer);
  saidTimer = setTimeout(() => ($("moment-said").textContent = ""), 4000);
}

$("copy-moment").addEventListener("click", async () => {
  const link = momentLink();
  const field = $("moment-url");
  field.value = link;
  try {
    await navigator.clipboard.writeText(link);
    field.hidden = true;
    sayMoment(`Link to event ${player.k} copied.`);
  } catch {
    // No clipboard (a page not served over https, or permission refused): the link is put in a
    // field, selected, for the viewer to copy.
    field.hidden = false;
    field.focus();
    field.select();
    const copied = document.execCommand?.("copy");
    sayMoment(copied ? `Link to event ${player.k} copied.` : "Copy the selected link (Ctrl+C).");
  }
});

// The stream ---------------------------------------------------------------------------------------
let awaitingSnapshot = true;
let deepOpened = false;
let controls = null;

const stream = new RunStream(page.ws, {
  onEvents(batch) {
    const from = events.length;
    for (const event of batch) events.push(event);
    player.notify(from);
    applyDeepLink();
    maybeComplete();
  },
  onStatus(frame) {
    runStatus = { ...runStatus, ...frame, step: frame.step ?? (frame.status === runStatus.status ? runStatus.step : null) };
    if (awaitingSnapshot) {
      // What was stored before we connected is history: shown at once rather than animated.
      awaitingSnapshot = false;
      player.backlogUpTo = Math.max(player.backlogUpTo, frame.events || 0);
      if (deepLink !== null && !deepOpened) {
        deepOpened = true;
        deepTarget = Math.min(deepLink, frame.events || 0);
      }
    }
    controls?.update({ status: frame.status, speed: frame.speed });
    if (FINISHED.includes(runStatus.status)) player.catchUp();
    // The verdict panel tells an end that has no `end` event (a run stopped while queued) from here.
    verdict.setRun(runStatus, player.k >= events.length);
    verdict.sync(player.state);
    updateStatusLine();
    applyDeepLink();
    maybeComplete();
  },
  onError(frame) {
    let message = frame.message || "error";
    if (frame.errors) {
      const details = Object.entries(frame.errors).map(([field, errs]) => `${field}: ${[].concat(errs).join(" ")}`);
      message += ` (${details.join("; ")})`;
    }
    toast.show(message);
  },
  onAccepted(frame) {
    controls?.accepted(frame);
  },
  onConnection(state, detail) {
    if (state === "connecting" || state === "reconnecting") awaitingSnapshot = true;
    setConnection(state, detail);
  },
});

function maybeComplete() {
  // A finished run sends nothing more: stop listening once its end event is here, or every event
  // it has (a run stopped while queued has none, and no end event).
  const all = hasEnd() || events.length >= (runStatus.events || 0);
  if (FINISHED.includes(runStatus.status) && all) {
    stream.close();
    setConnection("complete");
    controls?.update({ status: runStatus.status });
  }
}

controls = new Controls($("controls"), page.faults, (action) => stream.send(action), toast);
// A deep link holds the view still while the stored events load, rather than replaying them live.
if (deepLink !== null) player.live = false;
updatePlayback();
render(player.state, { rebuild: true });
stream.connect();

// For the modules that drive the page (classroom/js/follow.js, keys.js), tests and the curious.
window.distlab = { page, events, player, stream };
