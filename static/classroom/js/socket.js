// A JSON websocket that reconnects with backoff, for the classroom's sockets (the banner, a
// presentation). A close with a code the server uses to refuse (not logged in, not yours) or a
// normal close (the presentation ended) is final: reconnecting would be refused the same way.

const FINAL = new Set([1000, 4400, 4401, 4403, 4404]);
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000];

export class ClassroomSocket {
  /** onFrame(frame), onState(state, code) with state in open|retrying|closed. */
  constructor(path, { onFrame, onState = () => {} }) {
    this.path = path;
    this.onFrame = onFrame;
    this.onState = onState;
    this.socket = null;
    this.attempt = 0;
    this.timer = null;
    this.stopped = false;
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}${this.path}`);
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.attempt = 0;
      this.onState("open");
    });
    socket.addEventListener("message", (message) => {
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch {
        return;
      }
      this.onFrame(frame);
    });
    socket.addEventListener("close", (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (this.stopped) return;
      if (FINAL.has(event.code)) {
        this.onState("closed", event.code);
        return;
      }
      const delay = BACKOFF_MS[Math.min(this.attempt++, BACKOFF_MS.length - 1)];
      this.onState("retrying", event.code);
      this.timer = setTimeout(() => this.connect(), delay);
    });
    return this;
  }

  send(frame) {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  close() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.socket?.close();
  }
}
