// The run page's extension point for a lab's own panels. A lab module, loaded by run.html before
// run.js, calls registerPanel(); its panel folds the same events as every other panel (its slice of
// the state is state.ext[name]), so it works live, paused and scrubbed with no special case.

import { extendFold } from "./fold.js";
import { html } from "./svg.js";

const panels = [];

/**
 * @param name   the slice's key in state.ext
 * @param title  the panel's heading
 * @param init   () => a fresh slice
 * @param apply  (slice, event, state) => void, folds one event into the slice
 * @param mount  (body element) => {sync(slice, state, {rebuild})}
 */
export function registerPanel({ name, title, init, apply, mount }) {
  extendFold(name, { init, apply });
  panels.push({ name, title, mount });
}

/** Mounts every registered panel in `container`; returns renderers with sync(state, {rebuild}). */
export function mountPanels(container) {
  if (!container) return [];
  container.hidden = panels.length === 0;
  return panels.map(({ name, title, mount }) => {
    const section = html("section", { className: "card panel", "aria-labelledby": `${name}-title`, dataset: { testid: `panel-${name}` } });
    section.append(html("h2", { className: "panel__title", id: `${name}-title` }, title));
    const body = html("div", { className: "lab-panel__body" });
    section.append(body);
    container.append(section);
    const view = mount(body);
    return { sync: (state, options) => view.sync(state.ext[name], state, options) };
  });
}
