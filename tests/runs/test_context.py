"""The run context's step boundary, pause/step/resume, stop and limits; no servers needed here."""

import pytest

from apps.runs.context import RunContext, RunStopped
from apps.runs.recorder import ListSink, Recorder
from tests.engine import ScriptedControl


def make_ctx(control=None, **kwargs):
    sink = ListSink()
    statuses = []
    ctx = RunContext(
        run_id=1,
        params={},
        seed=42,
        recorder=Recorder(1, [sink]),
        control=control or ScriptedControl(),
        on_status=lambda status, **info: statuses.append((status, info.get("step"))),
        **kwargs,
    )
    return ctx, sink, statuses


def test_the_rng_is_seeded_so_runs_repeat():
    a, _, _ = make_ctx()
    b, _, _ = make_ctx()
    assert [a.rng.random() for _ in range(5)] == [b.rng.random() for _ in range(5)]


def test_a_paused_run_waits_at_its_next_boundary_and_step_lets_exactly_one_through():
    class Watching(ScriptedControl):
        """Pauses at boundary 1; while paused, hands out one "step", then "resume" once that step
        has been taken and the run is waiting again."""

        def __init__(self):
            super().__init__([{"action": "pause"}])
            self.handed = []

        def wait(self, timeout):
            if not self.handed:
                self.handed.append("step")
                return {"action": "step"}
            if len(self.handed) == 1 and ctx.steps == 2:
                self.handed.append("resume")
                return {"action": "resume"}
            return None

    control = Watching()
    ctx, _, statuses = make_ctx(control)
    ctx.step()  # boundary 1: paused here, then one "step" lets it through
    assert ctx.paused and ctx.steps == 1
    ctx.step()  # boundary 2: still paused after the single step, until "resume"
    assert ctx.steps == 2 and not ctx.paused
    assert control.handed == ["step", "resume"]
    assert ("paused", 1) in statuses and ("paused", 2) in statuses and statuses[-1] == ("running", 2)


def test_step_on_a_running_run_pauses_it_at_the_next_boundary():
    control = ScriptedControl([{"action": "step"}])
    ctx, _, _ = make_ctx(control)
    control.wait = lambda timeout: {"action": "resume"}
    ctx.step()
    assert ctx.steps == 1 and not ctx.paused


def test_stop_ends_the_run_at_the_boundary_as_cancelled():
    ctx, _, _ = make_ctx(ScriptedControl([{"action": "stop", "by": "charlie"}]))
    with pytest.raises(RunStopped) as stopped:
        ctx.step()
    assert stopped.value.status == "cancelled"
    assert "charlie" in stopped.value.reason
    assert ctx.cancelled.is_set()


def test_the_time_limit_fails_the_run():
    ctx, _, _ = make_ctx(time_limit=0)
    with pytest.raises(RunStopped) as stopped:
        ctx.step()
    assert stopped.value.status == "failed"
    assert "time limit" in stopped.value.reason


def test_the_event_limit_fails_the_run():
    ctx, sink, _ = make_ctx(event_limit=3)
    for _ in range(3):
        ctx.emit("log", label="ok")
    with pytest.raises(RunStopped) as stopped:
        ctx.emit("log", label="one too many")
    assert stopped.value.status == "failed"
    assert "limit of 3 events" in stopped.value.reason


def test_a_speed_command_changes_the_pace_and_is_reported():
    ctx, _, statuses = make_ctx(ScriptedControl([{"action": "speed", "value": 50}]))
    ctx.step()
    assert ctx.speed == 50
    assert statuses[0][0] == "running"


def test_history_records_invocations_and_completions_as_op_events():
    ctx, sink, _ = make_ctx()
    op = ctx.history.invoke("client-1", "write", 3)
    ctx.history.ok(op, 3)
    op2 = ctx.history.invoke("client-2", "read")
    ctx.history.info(op2, error="timeout")
    ctx._recorder.close()
    assert [(o["type"], o["f"]) for o in ctx.history.ops] == [
        ("invoke", "write"),
        ("ok", "write"),
        ("invoke", "read"),
        ("info", "read"),
    ]
    assert [e["kind"] for e in sink.events] == ["op"] * 4
    assert sink.events[3]["data"]["error"] == "timeout"


def test_clients_on_many_threads_share_one_history_with_each_entry_at_its_index():
    import sys
    import threading

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch as often as they can, as under load
    ctx, sink, _ = make_ctx()

    def client(n):
        for i in range(200):
            ctx.history.ok(ctx.history.invoke(f"c{n}", "add", i), i)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    ctx._recorder.close()
    assert [o["index"] for o in ctx.history.ops] == list(range(1600))
    assert [e["data"]["index"] for e in sink.events] == list(range(1600))  # the events in the same order
    assert all(ctx.history.ops[o["invoke_index"]]["process"] == o["process"] for o in ctx.history.completed())


def test_an_engine_fault_goes_to_its_handler_and_is_recorded_once():
    ctx, sink, _ = make_ctx(control=ScriptedControl([{"action": "fault", "kind": "crash", "target": "coordinator"}]))
    crashes = []
    ctx.on_fault("crash", lambda target, **options: crashes.append((target, options)) or {"at": "next step"})
    ctx.step()
    ctx._recorder.close()
    assert crashes == [("coordinator", {})]
    faults = [e for e in sink.events if e["kind"] == "fault"]
    assert [(f["actor"], f["to"], f["label"], f["data"]) for f in faults] == [
        ("instructor", "coordinator", "crash coordinator", {"kind": "crash", "at": "next step"})
    ]


def test_a_refused_engine_fault_is_logged_and_not_recorded_as_injected():
    def refuse(target, **options):
        raise ValueError(f"no {target} here")

    ctx, sink, _ = make_ctx(control=ScriptedControl([{"action": "fault", "kind": "crash", "target": "db9"}]))
    ctx.on_fault("crash", refuse)
    ctx.step()
    ctx._recorder.close()
    assert not [e for e in sink.events if e["kind"] == "fault"]
    assert [e["label"] for e in sink.events if e["kind"] == "log"] == ["fault crash failed: no db9 here"]


def test_a_fault_kind_the_engine_did_not_register_still_needs_nodes():
    ctx, _, _ = make_ctx()
    ctx.on_fault("crash", lambda target, **options: None)
    with pytest.raises(ValueError, match="no nodes"):
        ctx.fault("kill", "db1")


def test_clients_in_threads_pass_a_paced_runs_step_boundaries_one_at_a_time():
    import threading

    ctx, _, _ = make_ctx(speed=1000)
    errors = []

    def client():
        try:
            for _ in range(25):
                ctx.step()
        except Exception as exc:  # noqa: BLE001 - collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert ctx.steps == 100
    assert ctx.active_clock >= 0


def test_each_step_press_shows_the_step_it_let_through_when_clients_wait_at_boundaries_together():
    import itertools
    import threading
    import time

    class PressingStep(ScriptedControl):
        """Pauses the run, then presses Step each time it stops, noting the events recorded so far."""

        def __init__(self):
            super().__init__([{"action": "pause"}])
            self.seen = []

        def wait(self, timeout):
            self.seen.append(ctx._recorder.seq)
            return {"action": "step"}

    control = PressingStep()
    ctx, _, _ = make_ctx(control)
    ready = threading.Barrier(2)

    def client(name):
        ready.wait()
        for i in range(3):
            ctx.step()
            time.sleep(0.05)  # the client's work past the boundary takes a moment before it shows
            ctx.emit("log", actor=name, label=f"{name} did step {i}")

    threads = [threading.Thread(target=client, args=(name,)) for name in ("c1", "c2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    shown = [b - a for a, b in itertools.pairwise(control.seen)]
    assert len(shown) >= 4
    assert 0 not in shown, shown
