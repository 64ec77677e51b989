// The banner on every page: the presentations live in the viewer's classes, each with a Follow
// link, kept current over /ws/classroom/ as presentations start and end.

import { ClassroomSocket } from "./socket.js";

const root = document.getElementById("classroom-banner");
const me = root?.dataset.user || "";
const live = new Map(); // presentation id -> presentation

/** Whether this page already is or shows the presentation: the follower's page, the presenter's
 * run page, the class's own page (which has its card). */
function followingHere(presentation) {
  if (location.pathname === `/classes/${presentation.class.id}/`) return true;
  if (location.pathname !== `/runs/${presentation.run.id}/`) return false;
  if (presentation.presenter.name === me) return true;
  return new URLSearchParams(location.search).get("follow") === String(presentation.id);
}

function item(presentation) {
  const li = document.createElement("li");
  li.className = "class-banner__item";
  li.dataset.presentation = presentation.id;
  const dot = document.createElement("span");
  dot.className = "class-banner__dot";
  dot.setAttribute("aria-hidden", "true");
  const text = document.createElement("span");
  const run = `run #${presentation.run.id} (${presentation.run.lab} / ${presentation.run.scenario})`;
  const mine = presentation.presenter.name === me;
  text.textContent = mine
    ? `You are presenting ${run} to ${presentation.class.name}`
    : `${presentation.presenter.name} is presenting ${run} to ${presentation.class.name}`;
  const link = document.createElement("a");
  link.className = "btn btn--small btn--primary";
  link.href = mine ? `/runs/${presentation.run.id}/` : presentation.follow_url;
  link.textContent = mine ? "Open" : "Follow";
  link.dataset.testid = "banner-follow";
  li.append(dot, text, " — ", link);
  return li;
}

function show() {
  const shown = [...live.values()].filter((p) => !followingHere(p));
  root.replaceChildren(...shown.map(item));
  root.hidden = !shown.length;
}

if (root) {
  new ClassroomSocket("/ws/classroom/", {
    onFrame(frame) {
      if (frame.type === "presentations") {
        live.clear();
        for (const p of frame.presentations) live.set(p.id, p);
      } else if (frame.type === "started") {
        live.set(frame.presentation.id, frame.presentation);
      } else if (frame.type === "ended") {
        live.delete(frame.presentation.id);
      } else {
        return;
      }
      show();
    },
  }).connect();
}
