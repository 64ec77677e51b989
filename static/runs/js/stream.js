// The run's websocket: /ws/runs/<id>/?after=<last seq>. Reconnects with backoff and resumes from
// the last event received; the server sends each event once, in order.

const FATAL_CLOSE = { 4400: "bad request", 4401: "not logged in", 4403: "not allowed", 4404: "no such run" };
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000];

export class RunStream {
  /**
   * @param {string} path     the ws path from the page, e.g. "/ws/runs/17/"
   * @param {object} handlers onEvents(events), onStatus(frame), onError(frame), onAccepted(frame),
   *                          onConnection(state, detail) with state in connecting|live|reconnecting|closed
   */
  constructor(path, handlers) {
    this.path = path;
    this.handlers = handlers;
    this.lastSeq = 0;
    this.socket = null;
    this.attempt = 0;
    this.retryTimer = null;
    this.stopped = false;
  }

  url() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    return `${scheme}://${location.host}${this.path}?after=${this.lastSeq}`;
  }

  connect() {
    this.stopped = false;
    clearTimeout(this.retryTimer);
    this.handlers.onConnection?.(this.attempt ? "reconnecting" : "connecting");
    const socket = new WebSocket(this.url());
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.attempt = 0;
      this.handlers.onConnection?.("live");
    });
    socket.addEventListener("message", (message) => this.receive(message.data));
    socket.addEventListener("close", (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (this.stopped) return;
      if (FATAL_CLOSE[event.code]) {
        this.handlers.onConnection?.("closed", FATAL_CLOSE[event.code]);
        return;
      }
      this.retry();
    });
  }

  retry() {
    const delay = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    this.attempt++;
    this.handlers.onConnection?.("reconnecting", `in ${(delay / 1000).toFixed(1)} s`);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  receive(text) {
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    switch (frame.type) {
      case "events": {
        // Defensive: keep only the next events in order; a gap means we reconnect from what we have.
        const fresh = [];
        for (const event of frame.events || []) {
          if (event.seq <= this.lastSeq) continue;
          if (event.seq !== this.lastSeq + 1) {
            this.socket?.close();
            break;
          }
          fresh.push(event);
          this.lastSeq = event.seq;
        }
        if (fresh.length) this.handlers.onEvents?.(fresh);
        break;
      }
      case "status":
        this.handlers.onStatus?.(frame);
        break;
      case "error":
        this.handlers.onError?.(frame);
        break;
      case "accepted":
        this.handlers.onAccepted?.(frame);
        break;
      default:
        break;
    }
  }

  /** Sends a control action; false when not connected. */
  send(action) {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return false;
    this.socket.send(JSON.stringify(action));
    return true;
  }

  /** Stops for good (the run is over and every event is here). */
  close() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.socket?.close();
  }
}
