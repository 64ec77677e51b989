// Run controls: pause, resume, step, stop, speed and fault buttons, sent over the websocket.
// They steer the real run on the server; the playback bar only moves the viewer through history.

import { html } from "./svg.js";

const SPEEDS = [
  ["0", "full speed"],
  ["0.5", "0.5 steps/s"],
  ["1", "1 step/s"],
  ["2", "2 steps/s"],
  ["5", "5 steps/s"],
];

export class Toast {
  constructor(el) {
    this.el = el;
    this.timer = null;
  }

  show(message, tone = "error", ms = 5000) {
    this.el.textContent = message;
    this.el.className = `toast toast--${tone}`;
    this.el.hidden = false;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.el.hidden = true;
    }, ms);
  }
}

export class Controls {
  /**
   * @param root   the controls section (absent when the viewer may not control the run)
   * @param faults [{kind, targets, help}] from the page
   * @param send   (action object) => bool, false when not connected
   * @param toast  a Toast
   */
  constructor(root, faults, send, toast) {
    this.root = root;
    this.send = send;
    this.toast = toast;
    this.status = null;
    if (!root) return;
    this.buttons = {
      pause: root.querySelector("#ctl-pause"),
      resume: root.querySelector("#ctl-resume"),
      step: root.querySelector("#ctl-step"),
      stop: root.querySelector("#ctl-stop"),
    };
    for (const [action, button] of Object.entries(this.buttons)) {
      button.addEventListener("click", () => this.act({ action }));
    }
    this.speed = root.querySelector("#ctl-speed");
    for (const [value, label] of SPEEDS) this.speed.append(html("option", { value }, label));
    this.speed.addEventListener("change", () => this.act({ action: "speed", value: Number(this.speed.value) }));
    this.faultBox = root.querySelector("#faults");
    this.faultButtons = [];
    // One group per node, so "kill db1" and "kill redis1" sit with the rest of their node's faults.
    const groups = new Map();
    for (const fault of faults || []) {
      for (const target of fault.targets) {
        if (!groups.has(target)) {
          const group = html("span", { className: "fault-group", dataset: { target } });
          group.append(html("span", { className: "fault-group__node" }, target));
          groups.set(target, group);
          this.faultBox.append(group);
        }
        const button = html("button", {
          type: "button", className: "btn btn--fault", title: fault.help ? `${fault.help} (${target})` : target,
          dataset: { kind: fault.kind, target },
        }, fault.kind);
        button.addEventListener("click", () => this.act({ action: "fault", kind: fault.kind, target }));
        groups.get(target).append(button);
        this.faultButtons.push(button);
      }
    }
    if (!this.faultButtons.length) this.faultBox.append(html("span", { className: "muted small" }, "This scenario has no faults to inject."));
    this.update({ status: root.dataset.status, speed: root.dataset.speed ? Number(root.dataset.speed) : null });
  }

  act(action) {
    if (!this.send(action)) this.toast.show("Not connected to the run; waiting to reconnect.");
  }

  accepted(frame) {
    if (frame.accepted === "fault") this.toast.show("Fault sent; watch for it in the log and the diagrams.", "info", 3000);
  }

  /** Reflects the run's status (queued/running/paused/done/...) and speed in the buttons. */
  update({ status, speed }) {
    if (!this.root) return;
    if (status) this.status = status;
    const s = this.status;
    const finished = ["done", "failed", "cancelled"].includes(s);
    this.buttons.pause.disabled = finished || s === "paused";
    this.buttons.resume.disabled = finished || s !== "paused";
    this.buttons.step.disabled = finished;
    this.buttons.stop.disabled = finished;
    this.speed.disabled = finished;
    for (const b of this.faultButtons) b.disabled = finished || s === "queued";
    if (speed != null) {
      const value = String(speed);
      if (![...this.speed.options].some((o) => o.value === value)) {
        this.speed.append(html("option", { value }, `${value} steps/s`));
      }
      this.speed.value = value;
    }
    this.root.classList.toggle("is-finished", finished);
  }
}
