// The viewer's position in the run's history, and the pace at which it moves.
//
// Every panel shows fold(events, k). Live, k follows new events one at a time, each given time to
// be seen (a message ~half a second); when the run is far ahead the pace quickens, and when it is
// very far ahead (a fast run) the view jumps without animating. Scrubbed, k is where the viewer put
// it; Play replays from there at the chosen playback rate.

import { apply, emptyState, fold } from "./fold.js";

// Milliseconds each kind of event is given at 1× playback.
const PACE = { msg: 480, fault: 700, cmd: 140, phase: 250, check: 250, end: 300, node: 100, state: 50 };
const PACE_OTHER = 15;
const MAX_LAG_MS = 3000; // the live view may trail the run by this much of pacing before it hurries
const MAX_SQUEEZE = 2.5; // it hurries up to this much, then skips ahead without animating
const JUMP_EVENTS = 400; // and when this many events behind, it jumps to the present
const MIN_ANIMATION_MS = 90;

export function pace(event) {
  return PACE[event.kind] ?? PACE_OTHER;
}

export class Player {
  /**
   * @param events  the run's events, by seq (events[i].seq === i + 1); the caller appends to it
   * @param hooks   render(state, {rebuild}), animate(msgRow, ms), changed(player), finished() -> bool
   */
  constructor(events, hooks) {
    this.events = events;
    this.hooks = hooks;
    this.state = emptyState();
    this.k = 0;
    this.live = true;
    this.playing = false;
    this.rate = 1;
    this.backlogUpTo = 0; // events already stored when we connected: shown at once, not animated
    this.timer = null;
  }

  get n() {
    return this.events.length;
  }

  get behind() {
    return this.n - this.k;
  }

  /** New events arrived. */
  notify() {
    if (this.live && !this.timer) this.schedule(0);
    this.hooks.changed(this);
  }

  schedule(ms) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.tick(), ms);
  }

  halt() {
    clearTimeout(this.timer);
    this.timer = null;
  }

  /** Shows the view after event `target`, at once. */
  seek(target) {
    target = Math.max(0, Math.min(this.n, Math.round(target)));
    const rebuild = target < this.k;
    if (rebuild) {
      this.state = fold(this.events, target);
    } else {
      for (let i = this.k; i < target; i++) apply(this.state, this.events[i]);
    }
    this.k = target;
    this.hooks.animate(null, 0);
    this.hooks.render(this.state, { rebuild });
  }

  /** Moves one event forward and animates it; returns the time it is given. */
  advance(ms) {
    const event = this.events[this.k];
    apply(this.state, event);
    this.k++;
    this.hooks.render(this.state, { rebuild: false });
    if (event.kind === "msg" && ms >= MIN_ANIMATION_MS) this.hooks.animate(this.state.lastMsg, ms * 0.92);
    return ms;
  }

  tick() {
    this.timer = null;
    if (!this.live && !this.playing) return this.hooks.changed(this);
    if (this.k >= this.n) {
      if (this.playing) {
        // A replay that reaches the present hands over to the live view while the run goes on.
        this.playing = false;
        if (!this.hooks.finished()) this.live = true;
      }
      return this.hooks.changed(this);
    }
    let squeeze = 1;
    if (this.live) {
      if (this.k < this.backlogUpTo || this.behind > JUMP_EVENTS) {
        this.seek(this.behind > JUMP_EVENTS ? this.n : Math.min(this.n, this.backlogUpTo));
        this.schedule(0);
        return this.hooks.changed(this);
      }
      let pending = 0;
      for (let i = this.k; i < this.n; i++) pending += pace(this.events[i]) / this.rate;
      if (pending > MAX_LAG_MS * MAX_SQUEEZE) {
        // Too far behind to hurry: show the oldest of the backlog at once, animate the rest.
        let target = this.k;
        while (target < this.n && pending > MAX_LAG_MS) pending -= pace(this.events[target++]) / this.rate;
        this.seek(target);
        if (this.k >= this.n) return this.hooks.changed(this);
      }
      squeeze = Math.min(MAX_SQUEEZE, Math.max(1, pending / MAX_LAG_MS));
    }
    const ms = this.advance(pace(this.events[this.k]) / this.rate / squeeze);
    this.hooks.changed(this);
    this.schedule(ms);
  }

  // What the viewer asks for ---------------------------------------------------------------------
  scrubTo(k) {
    this.live = false;
    this.playing = false;
    this.halt();
    this.seek(k);
    this.hooks.changed(this);
  }

  stepBy(delta) {
    this.live = false;
    this.playing = false;
    this.halt();
    if (delta === 1 && this.k < this.n) this.advance(pace(this.events[this.k]) / this.rate);
    else this.seek(this.k + delta);
    this.hooks.changed(this);
  }

  setLive(on) {
    this.live = on;
    this.playing = false;
    this.halt();
    if (on) this.schedule(0);
    this.hooks.changed(this);
  }

  togglePlay() {
    if (this.playing) {
      this.playing = false;
      this.halt();
    } else {
      this.live = false;
      if (this.k >= this.n) this.seek(0);
      this.playing = true;
      this.schedule(0);
    }
    this.hooks.changed(this);
  }

  setRate(rate) {
    this.rate = rate > 0 ? rate : 1;
  }
}
