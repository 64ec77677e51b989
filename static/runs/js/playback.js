// The viewer's position in the run's history, and the pace at which it moves.
//
// Every panel shows fold(events, k). Live, the view is at most one batch behind the run: when a
// batch arrives, whatever came before it is shown at once, and the batch's own events are animated
// one at a time, each given time to be seen (a message ~half a second) and hurried when the batch
// is long. The run's end is shown the moment it arrives, so the verdict comes with the `done`
// status. Scrubbed, k is where the viewer put it; Play replays from there at the playback rate.

import { apply, drawsCommand, emptyState, fold } from "./fold.js";

// Milliseconds each kind of event is given at 1× playback.
const PACE = { msg: 480, fault: 700, cmd: 140, phase: 250, check: 250, end: 300, node: 100, state: 50 };
const PACE_DRAWN_CMD = 360; // a command drawn as a message: its request and its reply
const PACE_OTHER = 15;
const MAX_LAG_MS = 3000; // the live view may trail the run by this much of pacing before it hurries
const MIN_LAG_MS = 250; // ...or, when batches come faster, by about the time between two batches
const MAX_SQUEEZE = 2.5; // it hurries up to this much, then skips ahead without animating
const JUMP_EVENTS = 400; // and when this many events behind, it jumps to the present
const MIN_ANIMATION_MS = 90;

export function pace(event, state = null) {
  if (event.kind === "cmd" && state && drawsCommand(state, event)) return PACE_DRAWN_CMD;
  return PACE[event.kind] ?? PACE_OTHER;
}

/** The space-time rows `event` just added: a message, or a command's request and reply (fold.js). */
export function drawnBy(state, event) {
  if (event.kind !== "msg" && event.kind !== "cmd") return [];
  return state.timeline.slice(-2).filter((row) => row.type === "msg" && String(row.seq).replace(/r$/, "") === String(event.seq));
}

export class Player {
  /**
   * @param events  the run's events, by seq (events[i].seq === i + 1); the caller appends to it
   * @param hooks   render(state, {rebuild}), animate([msgRow, ...], ms), changed(player), finished() -> bool
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
    this.batchFrom = 0; // index of the first event of the newest batch: a live view shows all before it
    this.lastArrival = null;
    this.batchGap = null; // ms between batches, smoothed: the time a batch has to be animated in
    this.timer = null;
  }

  get n() {
    return this.events.length;
  }

  get behind() {
    return this.n - this.k;
  }

  /** A batch of new events arrived; `from` is the index of its first event. */
  notify(from = this.n) {
    this.batchFrom = Math.min(from, this.n);
    const now = performance.now();
    if (this.lastArrival !== null) {
      const gap = now - this.lastArrival;
      this.batchGap = this.batchGap === null ? gap : 0.7 * this.batchGap + 0.3 * gap;
    }
    this.lastArrival = now;
    if (this.live) {
      if (this.n && this.events[this.n - 1].kind === "end") {
        // The run is over: its end (and verdict) is shown at once, with the status that follows it.
        this.halt();
        this.seek(this.n);
      } else if (!this.timer) {
        this.schedule(0);
      }
    }
    this.hooks.changed(this);
  }

  /** The run ended (its status says so): a live view goes to the last event at once. */
  catchUp() {
    if (!this.live || this.k >= this.n) return;
    this.halt();
    this.seek(this.n);
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
    const drawn = drawnBy(this.state, event);
    if (drawn.length && ms >= MIN_ANIMATION_MS) this.hooks.animate(drawn, ms * 0.92);
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
      if (this.k < this.backlogUpTo || this.k < this.batchFrom || this.behind > JUMP_EVENTS) {
        const upTo = this.behind > JUMP_EVENTS ? this.n : Math.max(this.backlogUpTo, this.batchFrom);
        this.seek(Math.min(this.n, upTo));
        this.schedule(0);
        return this.hooks.changed(this);
      }
      // A batch is hurried to fit in about the time until the next one, so it is seen whole.
      const lag = Math.min(MAX_LAG_MS, Math.max(MIN_LAG_MS, this.batchGap ?? MAX_LAG_MS));
      let pending = 0;
      for (let i = this.k; i < this.n; i++) pending += pace(this.events[i], this.state) / this.rate;
      if (pending > lag * MAX_SQUEEZE) {
        // Too far behind to hurry: show the oldest of the backlog at once, animate the rest.
        let target = this.k;
        while (target < this.n && pending > lag) pending -= pace(this.events[target++], this.state) / this.rate;
        this.seek(target);
        if (this.k >= this.n) return this.hooks.changed(this);
      }
      squeeze = Math.min(MAX_SQUEEZE, Math.max(1, pending / lag));
    }
    const ms = this.advance(pace(this.events[this.k], this.state) / this.rate / squeeze);
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
    if (delta === 1 && this.k < this.n) this.advance(pace(this.events[this.k], this.state) / this.rate);
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
