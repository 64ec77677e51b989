import io
import json
import threading

import pytest

from apps.runs.recorder import ConsoleSink, ListSink, Recorder, RecorderError


def test_it_numbers_events_from_one_without_gaps_across_batches():
    sink = ListSink()
    recorder = Recorder(1, [sink], max_batch=7)
    for i in range(100):
        recorder.emit("log", actor="a", label=f"line {i}")
    recorder.close()
    assert [e["seq"] for e in sink.events] == list(range(1, 101))
    assert sink.events[0] == {
        "v": 1,
        "run": 1,
        "seq": 1,
        "t": sink.events[0]["t"],
        "kind": "log",
        "actor": "a",
        "label": "line 0",
        "data": {},
    }


def test_it_keeps_seq_contiguous_when_many_threads_emit_at_once():
    sink = ListSink()
    recorder = Recorder(2, [sink])

    def emit_many():
        for _ in range(500):
            recorder.emit("metric", actor="t", value=1)

    threads = [threading.Thread(target=emit_many) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    recorder.close()
    assert [e["seq"] for e in sink.events] == list(range(1, 2001))


def test_it_delivers_each_batch_to_every_sink_in_order():
    first, second = ListSink(), ListSink()
    recorder = Recorder(3, [first, second])
    for i in range(50):
        recorder.emit("msg", actor="c", to="db1", label=f"m{i}", data={"i": i})
    recorder.close()
    assert first.events == second.events
    assert [e["data"]["i"] for e in first.events] == list(range(50))
    assert first.events[0]["to"] == "db1"


def test_flush_waits_until_every_emitted_event_is_written():
    sink = ListSink()
    recorder = Recorder(4, [sink])
    recorder.emit("log", label="x")
    recorder.emit("log", label="y")
    assert recorder.flush(timeout=10)
    assert len(sink.events) == 2
    recorder.close()


def test_it_refuses_unknown_kinds():
    recorder = Recorder(5, [ListSink()])
    with pytest.raises(ValueError, match="unknown event kind"):
        recorder.emit("gossip")
    recorder.close()


class BrokenSink(ListSink):
    def write(self, events):
        raise OSError("disk on fire")


def test_a_failing_sink_stops_the_recording_with_the_reason():
    recorder = Recorder(6, [BrokenSink()])
    recorder.emit("log", label="first")
    with pytest.raises(RecorderError, match="disk on fire"):
        recorder.flush(timeout=10)
    with pytest.raises(RecorderError):
        recorder.emit("log", label="second")
    with pytest.raises(RecorderError):
        recorder.close()


def test_the_console_sink_prints_one_json_object_per_line():
    out = io.StringIO()
    recorder = Recorder(7, [ConsoleSink(out, as_json=True)])
    recorder.emit("cmd", actor="c", to="redis", label="PING", data={"result": "PONG"})
    recorder.emit("end", label="done: pass")
    recorder.close()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [e["kind"] for e in lines] == ["cmd", "end"]
    assert lines[0]["data"] == {"result": "PONG"}


@pytest.mark.django_db(transaction=True)
def test_the_database_stores_and_the_channel_frame_carries_each_event_as_emitted():
    from apps.runs.models import Event, Run
    from apps.runs.sinks import DatabaseSink, events_message

    run = Run.objects.create(lab="transactions", scenario="2pc-happy", params={}, seed=1)
    frames = ListSink()
    frames.write = lambda events: frames.events.append(json.loads(events_message(events)["frame"]))
    recorder = Recorder(run.pk, [DatabaseSink(run.pk), frames], max_batch=3)
    tricky = "XA PREPARE 'r1-t1', 'p1' \\ \"quoted\" … ünïcode"
    recorder.emit("cmd", actor="c1", to="db1", label=tricky, data={"command": tricky, "ok": True, "rows": [1, None]})
    recorder.emit("log", actor="a" * 100, label="x" * 600, data={"nested": {"n": 1.5}})
    for i in range(7):
        recorder.emit("metric", actor="m", value=i)
    recorder.close()

    emitted = [e for frame in frames.events for e in frame["events"]]
    assert [e["seq"] for e in emitted] == list(range(1, 10))
    assert all(frame["type"] == "events" for frame in frames.events)
    stored = [e.as_dict() for e in Event.objects.filter(run=run).order_by("seq")]
    # The database keeps what the model's columns hold: long actors and labels are cut there.
    emitted[1]["actor"], emitted[1]["label"] = "a" * 80, "x" * 500
    assert stored == emitted
    assert stored[0]["label"] == tricky and "to" not in stored[1]
    assert Run.objects.get(pk=run.pk).events_count == 9
