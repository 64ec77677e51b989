// Narration: the scenario's "what to watch" line, then the caption of the latest event at the
// view's position that one of its captions matches, with the captions reached before it below.
//
// Captions are matched here exactly as Caption.matches does on the server (apps/runs/registry.py),
// so the lab's own test, which checks every caption against a real run, holds for the page too.
// What is shown depends on the events and the position k only: a live view, a paused one, a
// stepped, scrubbed or replayed one at the same k read the same.

/** Python's == on values read from JSON: deep, with true == 1 and false == 0, null for missing. */
export function pyEqual(a, b) {
  a = a === undefined ? null : a;
  b = b === undefined ? null : b;
  const numberLike = (x) => typeof x === "number" || typeof x === "boolean";
  if (numberLike(a) && numberLike(b)) return Number(a) === Number(b);
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => pyEqual(x, b[i]));
  }
  if (a !== null && b !== null && typeof a === "object" && typeof b === "object") {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((key) => Object.hasOwn(b, key) && pyEqual(a[key], b[key]));
  }
  return a === b;
}

/** Caption.matches: kind equal, label a substring, actor equal if given, every data item equal. */
export function matches(caption, event) {
  if (event.kind !== caption.kind) return false;
  if (!String(event.label ?? "").includes(caption.label || "")) return false;
  if (caption.actor && event.actor !== caption.actor) return false;
  const data = event.data || {};
  // dict.get: a key the event lacks reads as None, never as something the object inherits.
  return Object.entries(caption.data || {}).every(([key, value]) => pyEqual(Object.hasOwn(data, key) ? data[key] : null, value));
}

export class Narration {
  /**
   * @param els     {root, now, earlier}: the panel, the current line, the list of earlier captions
   * @param script  {watch, captions} from the page
   * @param events  the run's events (appended to, never changed)
   * @param seek    (seq) => void: moves the view to just after that event
   */
  constructor(els, { watch, captions }, events, seek) {
    this.els = els;
    this.watch = watch || "";
    this.captions = captions || [];
    this.events = events;
    this.seek = seek;
    this.hits = []; // [{seq, caption}] for every event a caption matches, in seq order
    this.scanned = 0;
    this.shown = null;
    els.root.hidden = this.captions.length === 0;
    els.earlier.addEventListener("click", (e) => {
      const link = e.target.closest("a[data-seq]");
      // A plain click moves this view; a modified one opens the deep link (?at=) as links do.
      if (!link || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
      e.preventDefault();
      this.seek(Number(link.dataset.seq));
    });
  }

  get active() {
    return this.captions.length > 0;
  }

  scan() {
    for (; this.scanned < this.events.length; this.scanned++) {
      const event = this.events[this.scanned];
      // One caption per event, the first that matches: the labs' tests keep them from overlapping.
      const caption = this.captions.findIndex((c) => matches(c, event));
      if (caption >= 0) this.hits.push({ seq: event.seq, caption });
    }
  }

  /** The hits at or before position k: the current one last. */
  reached(k) {
    let lo = 0;
    let hi = this.hits.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.hits[mid].seq <= k) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  sync(state) {
    if (!this.active) return;
    this.scan();
    const upto = this.reached(state.k);
    const current = upto > 0 ? this.hits[upto - 1] : null;
    // Each caption once, at its latest event before the current one, the most recent first.
    const earlier = [];
    const seen = new Set(current ? [current.caption] : []);
    for (let i = upto - 2; i >= 0 && seen.size < this.captions.length; i--) {
      const hit = this.hits[i];
      if (seen.has(hit.caption)) continue;
      seen.add(hit.caption);
      earlier.push(hit);
    }
    const key = JSON.stringify([current, earlier]);
    if (key === this.shown) return;
    this.shown = key;
    this.render(current, earlier);
  }

  render(current, earlier) {
    const { root, now, earlier: list } = this.els;
    now.replaceChildren();
    if (current) {
      const at = document.createElement("span");
      at.className = "narration__at";
      at.textContent = `event ${current.seq}`;
      now.append(at, document.createTextNode(this.captions[current.caption].text));
      now.dataset.seq = String(current.seq);
      root.dataset.state = "caption";
    } else {
      const label = document.createElement("strong");
      label.textContent = "Before it starts: ";
      now.append(label, document.createTextNode(this.watch || "the run's first steps are on their way."));
      delete now.dataset.seq;
      root.dataset.state = "watch";
    }
    list.replaceChildren(
      ...earlier.map((hit) => {
        const li = document.createElement("li");
        const a = document.createElement("a");
        a.href = `?at=${hit.seq}`;
        a.dataset.seq = String(hit.seq);
        a.title = `Go to event ${hit.seq}`;
        a.textContent = this.captions[hit.caption].text;
        const at = document.createElement("span");
        at.className = "narration__at";
        at.textContent = `event ${hit.seq}`;
        li.append(at, a);
        return li;
      }),
    );
    list.hidden = earlier.length === 0;
  }
}
