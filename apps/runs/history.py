"""A Jepsen-style operation history: each operation is invoked, then completes as ok, fail or info.

`info` means the outcome is unknown (a timeout, a lost connection): the operation may or may not
have taken effect, and a checker must allow for both.
"""

import threading
from dataclasses import dataclass, field


@dataclass
class Op:
    index: int
    process: str
    f: str
    value: object = None
    type: str = "invoke"
    time: float = 0.0
    error: str | None = None
    completion: dict | None = field(default=None, repr=False)

    def as_dict(self):
        d = {"index": self.index, "type": self.type, "process": self.process, "f": self.f, "value": self.value}
        d["time"] = self.time
        if self.error:
            d["error"] = self.error
        return d


class History:
    def __init__(self, ctx):
        self._ctx = ctx
        self.ops = []  # every entry: invocations and completions, in order
        # Clients on several threads share the history: an entry's index is its place in `ops`,
        # and its event comes in the same order.
        self._lock = threading.Lock()

    def invoke(self, process, f, value=None):
        with self._lock:
            op = Op(index=len(self.ops), process=str(process), f=f, value=value, time=self._ctx.clock)
            self.ops.append(op.as_dict())
            self._ctx.emit("op", actor=op.process, label=f"invoke {f} {_short(value)}".strip(), data=op.as_dict())
        return op

    def ok(self, op, value=None):
        return self._complete(op, "ok", value)

    def fail(self, op, value=None, error=None):
        return self._complete(op, "fail", value, error)

    def info(self, op, error=None):
        return self._complete(op, "info", op.value, error)

    def _complete(self, op, kind, value, error=None):
        with self._lock:
            done = {"index": len(self.ops), "type": kind, "process": op.process, "f": op.f, "value": value}
            done["time"] = self._ctx.clock
            done["invoke_index"] = op.index
            if error:
                done["error"] = str(error)
            op.type, op.completion = kind, done
            self.ops.append(done)
            label = f"{kind} {op.f} {_short(value)}".strip()
            self._ctx.emit("op", actor=op.process, label=label, data=done)
        return done

    def completed(self, f=None):
        """The completions (ok/fail/info), optionally of one function."""
        return [o for o in self.ops if o["type"] != "invoke" and (f is None or o["f"] == f)]


def _short(value):
    text = "" if value is None else str(value)
    return text if len(text) <= 60 else text[:57] + "..."
