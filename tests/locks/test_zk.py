"""The ZooKeeper recipes and scenarios of the locks lab, on the real shared ZooKeeper and MariaDB:
each scenario's verdict, the notifications each recipe costs, the recipe queueing together with
kazoo's own locks, and the checkers catching notifications that real watches add."""

import threading
import time
import uuid
from types import SimpleNamespace

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError

from apps.locks import checkers, zk_scenarios
from apps.locks.engine.zk_harness import expire_session
from apps.locks.engine.zk_recipe import READ, WRITE, LockLost, ZkLockRecipe, contenders, record_watch
from apps.runs.engine_api import RunStopped
from apps.runs.history import History
from apps.runs.registry import verdict_of
from tests.conftest import lab_node_urls, wait_until
from tests.engine import run_engine
from tests.locks.commands import assert_one_cmd_shape


def scenario(name):
    return next(s for s in zk_scenarios.SCENARIOS if s.name == name)


def run(name, **params):
    ctx, result, checks, events = run_engine(scenario(name), lab_node_urls(), params)
    return ctx, result, {c["name"]: c for c in checks}, events


def of_type(events, kind, type_):
    return [e for e in events if e["kind"] == kind and e["data"].get("type") == type_]


def commands(events, word):
    return [e for e in events if e["kind"] == "cmd" and e["data"]["command"].startswith(word)]


def zk_session(**options):
    zk = KazooClient(hosts=lab_node_urls()["zk_hosts"], **options)
    zk.start(timeout=10)
    return zk


def assert_no_znodes_left(run_id):
    """The run's clean-up removed its znodes with its root."""
    zk = zk_session()
    try:
        assert zk.exists(f"/distlab/run{run_id}") is None
    finally:
        zk.stop()
        zk.close()


@pytest.fixture
def sessions():
    """Three sessions of their own and a lock path no run uses; all gone afterwards."""
    opened = [zk_session() for _ in range(3)]
    root = f"/distlab-test-{uuid.uuid4().hex}"
    yield opened, f"{root}/lock"
    opened[0].delete(root, recursive=True)
    for zk in opened:
        zk.stop()
        zk.close()


def test_it_hands_the_lock_over_with_one_notification_each_and_leaves_no_znodes():
    ctx, result, checks, events = run("zk-lock", clients=4, operations=2)
    assert verdict_of(list(checks.values())) == "pass", checks
    zk = result["zk"]
    assert zk["acquisitions"] == 8 and zk["handovers"] >= 3
    assert zk["notifications"] == zk["handovers"] and zk["most_woken_by_one_release"] == 1
    assert checks["no_lost_update"]["evidence"]["final"] == 8
    connects = [e for e in assert_one_cmd_shape(events) if e["data"]["command"] == "connect"]
    assert sorted(e["actor"] for e in connects) == ["c1", "c2", "c3", "c4"]
    assert all(e["data"]["result"].startswith("session 0x") for e in connects)
    # The recipe's steps: children listed without a watch, a watch on the predecessor only.
    assert commands(events, "get_children") and all("watch" not in e["label"] for e in commands(events, "get_children"))
    assert commands(events, "exists") and all(e["label"].endswith(" watch") for e in commands(events, "exists"))
    watches = [e for e in events if e["kind"] == "msg" and e["data"].get("type") == "watch"]
    assert len(watches) == zk["notifications"] and {w["data"]["event"] for w in watches} == {"DELETED"}
    assert len({w["data"]["znode"] for w in watches}) == len(watches)  # each release woke one client
    # Once the queue formed, each client watched the one just before it; at the end it is empty.
    queues = [e["data"]["queue"] for e in of_type(events, "state", "zk_queue")]
    chained = [
        q
        for q in queues
        if len(q) == 4 and q[0]["watches"] is None and all(q[i]["watches"] == q[i - 1]["znode"] for i in range(1, 4))
    ]
    assert chained and [e["client"] for e in chained[0]] == ["c1", "c2", "c3", "c4"]
    assert queues[-1] == []
    states = {e["data"]["state"] for e in of_type(events, "state", "client")}
    assert {"acquiring", "waiting", "holding", "idle", "done"} <= states
    acquired = {
        e["actor"]: e["data"]["value"] for e in events if e["kind"] == "metric" and e["data"]["name"] == "acquired"
    }
    assert acquired == {"c1": 2, "c2": 2, "c3": 2, "c4": 2}  # each lane's counter, last value
    tokens = checks["fencing_monotonic"]["evidence"]["accepted"]
    assert tokens == sorted(tokens) and len(set(tokens)) == 8
    assert_no_znodes_left(ctx.run_id)


def test_the_herd_costs_about_the_square_of_the_clients_where_the_recipe_costs_one_per_hand_over():
    ctx, result, checks, events = run("zk-herd", clients=5)
    assert verdict_of(list(checks.values())) == "pass", checks
    predecessor, herd = (result["notifications"][s] for s in ("watch the predecessor", "watch the parent (herd)"))
    assert predecessor == {2: 1, 3: 2, 4: 3, 5: 4}
    assert all(herd[k] >= k * (k - 1) // 2 + 1 and herd[k] > predecessor[k] for k in herd)
    growth = [herd[k + 1] - herd[k] for k in (2, 3, 4)]
    assert growth == sorted(growth) and growth[0] < growth[-1]
    charted = {
        (e["data"]["series"], e["data"]["x"]): e["data"]["y"]
        for e in events
        if e["kind"] == "metric" and "x" in e["data"]
    }
    assert charted == {("watch the predecessor", k): v for k, v in predecessor.items()} | {
        ("watch the parent (herd)", k): v for k, v in herd.items()
    }
    child = [e for e in events if e["kind"] == "msg" and e["data"].get("event") == "CHILD"]
    assert len(child) == result["zk"]["child_notifications"] > 0


def test_an_expired_holder_loses_its_znode_and_its_stale_czxid_is_refused():
    ctx, result, checks, events = run("zk-session-expiry", clients=3)
    assert verdict_of(list(checks.values())) == "pass", checks
    expired = result["expired"]
    assert expired["znode"].startswith("c1__lock__")
    faults = [e for e in events if e["kind"] == "fault"]
    assert [(f["data"]["kind"], f["to"]) for f in faults] == [("expire", "c1"), ("resume", "c1")]
    # The server deleted c1's znode with its session, and that woke c2, its successor.
    woken = [e for e in events if e["kind"] == "msg" and e["data"].get("znode") == expired["znode"]]
    assert [e["to"] for e in woken] == ["c2"]
    fencing = checks["fencing_monotonic"]["evidence"]
    assert fencing["rejected"] == [{"client": "c1", "token": result["stale_token"], "last": max(fencing["accepted"])}]
    assert all(t > result["stale_token"] for t in fencing["accepted"])
    c1 = [e["data"]["state"] for e in of_type(events, "state", "client") if e["actor"] == "c1"]
    assert "paused" in c1 and c1.index("holding") < c1.index("paused")
    c1_ops = [op for op in ctx.history.completed("increment") if op["process"] == "c1"]
    assert [op["type"] for op in c1_ops] == ["fail"]
    assert checks["no_lost_update"]["evidence"] == {
        "summary": "the counter is 2, 2 acknowledged",
        "acknowledged": 2,
        "final": 2,
        "lost": 0,
        "by_row": {"1": 2},
    }


def test_readers_share_the_lock_and_writers_take_it_alone():
    ctx, result, checks, events = run("zk-rwlock", clients=5, writers=2, operations=1, hold_ms=300)
    assert verdict_of(list(checks.values())) == "pass", checks
    assert result["modes"] == {"c1": READ, "c2": READ, "c3": WRITE, "c4": READ, "c5": WRITE}
    sections = {e["data"]["id"]: e["data"] for e in of_type(events, "state", "cs") if e["data"]["end_ms"] is not None}
    reads = [s for s in sections.values() if s["mode"] == READ]
    shared = [
        (a["client"], b["client"])
        for a in reads
        for b in reads
        if a["client"] < b["client"] and a["start_ms"] < b["end_ms"] and b["start_ms"] < a["end_ms"]
    ]
    assert ("c1", "c2") in shared
    # A reader waits only for the writer before it; a writer for whoever is just before it.
    waited = {}
    for e in commands(events, "exists"):
        waited.setdefault(e["actor"], e["label"].split()[1].rsplit("/", 1)[1])
    assert waited["c4"].startswith("c3__lock__") and waited["c3"].startswith("c2__rlock__")
    assert checks["mutual_exclusion"]["evidence"]["overlapping"] == 0
    assert checks["no_lost_update"]["evidence"]["final"] == 2


class ExpireTheWaiter:
    """An instructor who presses "expire c2" once c2 waits behind c1, as read from ZooKeeper: its
    znode is seen twice, a moment apart, while c1 (which holds for a second) is first."""

    def __init__(self):
        self.zk = zk_session()
        self.lock = threading.Lock()
        self.seen = None  # (c2's znode, when first seen)
        self.sent = None

    def queues(self):
        """The znodes queued for each run's lock, read from ZooKeeper."""
        for run_root in self.zk.get_children("/distlab") if self.zk.exists("/distlab") else []:
            try:
                yield [z for _, z, _ in contenders(self.zk.get_children(f"/distlab/{run_root}/locks/lock"))]
            except NoNodeError:
                continue

    def poll(self):
        with self.lock:
            if self.sent:
                return []
            for queue in self.queues():
                if len(queue) >= 2 and queue[0].startswith("c1__") and queue[1].startswith("c2__"):
                    if self.seen is None or self.seen[0] != queue[1]:
                        self.seen = (queue[1], time.monotonic())
                    elif time.monotonic() - self.seen[1] > 0.3:
                        self.sent = queue[1]
                        return [{"action": "fault", "kind": "expire", "target": "c2"}]
            return []

    def wait(self, timeout):
        time.sleep(timeout)

    def close(self):
        self.zk.stop()
        self.zk.close()


def run_controlled(control, **params):
    """A zk-lock run under an instructor's `control`, whose session is closed afterwards."""
    try:
        return run_engine(scenario("zk-lock"), lab_node_urls(), params, control=control)
    finally:
        control.close()


def test_an_instructor_expiring_a_waiters_session_sends_it_to_the_back_of_the_queue():
    control = ExpireTheWaiter()
    ctx, result, checks, events = run_controlled(control, clients=3, operations=1, hold_ms=1000)
    checks = {c["name"]: c for c in checks}
    assert verdict_of(list(checks.values())) == "pass", checks
    fault = next(e for e in events if e["kind"] == "fault")
    assert (fault["to"], fault["data"]["kind"], fault["data"]["znode"]) == ("c2", "expire", control.sent)
    c2 = [op["type"] for op in ctx.history.completed("increment") if op["process"] == "c2"]
    assert c2 == ["fail", "ok"]
    assert checks["no_lost_update"]["evidence"]["final"] == 3
    # c2's znode went with its session: the queue never shows it again; c2 queued anew behind.
    later = [e["data"]["queue"] for e in of_type(events, "state", "zk_queue") if e["seq"] > fault["seq"]]
    assert later and all(entry["znode"] != control.sent for queue in later for entry in queue)
    assert any(entry["client"] == "c2" for queue in later for entry in queue)


class StopOnceQueued(ExpireTheWaiter):
    """A user who presses stop while c1 holds the lock and c2 waits for it."""

    def poll(self):
        return [{"action": "stop", "by": "alice"}] if super().poll() else []


def test_a_stopped_run_ends_every_client_and_closes_their_sessions():
    control = StopOnceQueued()
    with pytest.raises(RunStopped, match="stopped by alice"):
        run_controlled(control, clients=3, hold_ms=1000)
    assert control.sent is not None
    assert not [t.name for t in threading.enumerate() if t.name.startswith("run") and "-c" in t.name]


class PauseTheHolder(ExpireTheWaiter):
    """An instructor who pauses c1 while it holds the lock and c2 waits, then resumes it."""

    def poll(self):
        with self.lock:
            if self.sent is None:
                for queue in self.queues():
                    if len(queue) >= 2 and queue[1].startswith("c2__"):
                        self.sent = time.monotonic()
                        return [{"action": "fault", "kind": "pause", "target": "c1"}]
            elif self.sent > 0 and time.monotonic() - self.sent > 0.6:
                self.sent = -1
                return [{"action": "fault", "kind": "resume", "target": "c1"}]
            return []


def test_a_paused_holder_keeps_the_lock_its_session_alive_until_it_resumes():
    control = PauseTheHolder()
    ctx, result, checks, events = run_controlled(control, clients=3, operations=1, hold_ms=1000)
    assert verdict_of(checks) == "pass", checks
    seq = {}
    for e in events:
        if e["kind"] == "state" and e["data"].get("type") == "client":
            seq.setdefault((e["actor"], e["data"]["state"]), (e["seq"], e["data"]["token"]))
        if e["kind"] == "fault":
            seq.setdefault(e["data"]["kind"], (e["seq"], None))
    paused_at, token = seq[("c1", "paused")]
    assert token is not None  # it paused holding the lock
    assert seq[("c1", "holding")][0] < paused_at < seq["resume"][0] < seq[("c2", "holding")][0]
    assert result["zk"]["handovers"] == 2 and "expire" not in seq


def test_the_recipe_and_kazoos_lock_exclude_each_other_and_queue_in_one_order(sessions):
    (first, second, third), path = sessions
    theirs = first.Lock(path, "kazoo-1")
    assert theirs.acquire(timeout=10)
    mine = ZkLockRecipe(second, path, "c1")
    order = []

    def take(lock, name):
        lock.acquire(timeout=20)
        order.append(name)
        lock.release()

    waiter = threading.Thread(target=take, args=(mine, "recipe"))
    waiter.start()
    wait_until(lambda: mine.watches is not None, 10, "the recipe to watch kazoo's znode")
    assert mine.watches == theirs.node and order == []
    last = third.Lock(path, "kazoo-3")
    behind = threading.Thread(target=take, args=(last, "kazoo"))
    behind.start()
    wait_until(lambda: len(contenders(first.get_children(path))) == 3, 10, "three contenders")
    theirs.release()
    waiter.join(20)
    behind.join(20)
    assert order == ["recipe", "kazoo"]
    # And the other way round: while the recipe holds, kazoo's Lock cannot get it.
    mine.acquire(timeout=10)
    assert first.Lock(path).acquire(blocking=False) is False
    mine.release()
    assert first.Lock(path).acquire(blocking=False) is True


def test_the_read_recipe_shares_with_kazoos_read_lock_and_excludes_its_write_lock(sessions):
    (first, second, third), path = sessions
    reading = first.ReadLock(path, "kazoo-reader")
    assert reading.acquire(timeout=10)
    mine = ZkLockRecipe(second, path, "c1", mode=READ)
    assert mine.acquire(timeout=10)  # a second reader does not wait
    assert third.WriteLock(path).acquire(blocking=False) is False
    writer = ZkLockRecipe(third, path, "c2", mode=WRITE)
    got = threading.Event()
    threading.Thread(target=lambda: (writer.acquire(timeout=20), got.set()), daemon=True).start()
    wait_until(lambda: writer.watches is not None, 10, "the writer to watch the last reader")
    assert writer.watches == mine.node and not got.is_set()
    mine.release()
    wait_until(lambda: writer.watches == reading.node, 10, "the writer to watch kazoo's reader")
    assert not got.is_set()
    reading.release()
    assert got.wait(10)
    writer.release()


def test_a_waiter_whose_session_expires_leaves_the_queue_and_the_next_one_watches_past_it(sessions):
    (first, second, third), path = sessions
    holder, middle, last = (
        ZkLockRecipe(first, path, "c1"),
        ZkLockRecipe(second, path, "c2"),
        ZkLockRecipe(third, path, "c3"),
    )
    assert holder.acquire(timeout=10)
    outcome = {}

    def take(recipe):
        try:
            recipe.acquire(timeout=20)
            outcome[recipe.owner] = "acquired"
        except LockLost:
            outcome[recipe.owner] = "lost"

    threads = [threading.Thread(target=take, args=(r,), daemon=True) for r in (middle, last)]
    threads[0].start()
    wait_until(lambda: middle.watches == holder.node, 10, "c2 to watch c1")
    threads[1].start()
    wait_until(lambda: last.watches is not None, 10, "c3 to watch c2")
    assert last.watches.startswith("c2__lock__")
    expire_session(lab_node_urls()["zk_hosts"], second.client_id)
    wait_until(lambda: outcome.get("c2") == "lost", 10, "c2 to find its znode gone")
    wait_until(lambda: last.watches == holder.node, 10, "c3 to watch c1 instead")
    assert "c3" not in outcome
    holder.release()
    threads[1].join(20)
    assert outcome == {"c2": "lost", "c3": "acquired"}
    last.release()


@pytest.mark.parametrize(
    "name, params, field, message",
    [
        ("zk-lock", {"clients": 0}, "clients", "must be at least 1"),
        ("zk-lock", {"operations": 0}, "operations", "must be at least 1"),
        ("zk-herd", {"clients": 1}, "clients", "must be at least 2"),
        ("zk-session-expiry", {"hold_ms": -5}, "hold_ms", "must be at least 0"),
        ("zk-rwlock", {"clients": 3, "writers": 4}, "writers", "must be at most clients (3)"),
        ("zk-rwlock", {"clients": "many"}, "clients", "must be an integer"),
    ],
)
def test_it_rejects_bad_parameters_with_a_message_by_field(name, params, field, message):
    _, errors = scenario(name).validate(params)
    assert errors == {field: [message]}


@pytest.mark.django_db(transaction=True)
def test_a_recorded_run_passes_and_leaves_no_znodes_behind():
    from apps.runs.models import Event, Run
    from apps.runs.registry import get_scenario
    from apps.runs.runner import execute

    params, _ = get_scenario("locks", "zk-session-expiry").validate({})
    run = Run.objects.create(lab="locks", scenario="zk-session-expiry", params=params, seed=3, expected="pass")
    execute(run.pk, broadcast=False)
    run.refresh_from_db()
    assert (run.status, run.verdict) == ("done", "pass"), run.failure_reason
    kinds = set(Event.objects.filter(run=run).values_list("kind", flat=True))
    assert {"cmd", "msg", "state", "fault", "metric", "op", "check", "end"} <= kinds
    assert_no_znodes_left(run.pk)


def hand_over(sessions, extra_watch=None):
    """c1 takes the lock, c2 queues behind it, c1 releases and c2 takes it, recorded in a history
    as the lab's clients record it. `extra_watch(session, znode, watcher)` lets a third session set a
    watch of its own meanwhile; what that watcher receives is recorded like the clients' watches."""
    (first, second, third), path = sessions
    history = History(SimpleNamespace(clock=0.0, emit=lambda *args, **kwargs: None))
    c1 = ZkLockRecipe(first, path, "c1", history=history)
    c2 = ZkLockRecipe(second, path, "c2", history=history)
    op1 = history.invoke("c1", "increment")
    c1.acquire(timeout=10)
    held = f"{path}/{c1.node}"
    op2 = history.invoke("c2", "increment")
    waiter = threading.Thread(target=c2.acquire, kwargs={"timeout": 20})
    waiter.start()
    wait_until(lambda: c2.watches == c1.node, 10, "c2 to watch c1's znode")
    fired = threading.Event()
    if extra_watch is not None:
        extra_watch(third, held, lambda event: (record_watch(history, "c3", third, event), fired.set()))
    c1.release()
    history.ok(op1, {"znode": held})
    waiter.join(20)
    second_znode = f"{path}/{c2.node}"
    c2.release()
    history.ok(op2, {"znode": second_znode})
    if extra_watch is not None:
        assert fired.wait(10)
    return SimpleNamespace(history=history), path


@pytest.mark.parametrize("intruder", [False, True])
def test_a_second_watcher_woken_by_the_holders_release_breaks_one_notification_per_handover(sessions, intruder):
    extra = (lambda zk, znode, watcher: zk.exists(znode, watch=watcher)) if intruder else None
    ctx, _ = hand_over(sessions, extra)
    check = checkers.one_notification_per_handover(ctx, None)
    assert check.held is (not intruder)
    assert check.evidence["handovers"] == 1
    assert check.evidence["most_woken_by_one_znode"] == (2 if intruder else 1)
    if intruder:
        problems = [b["problem"] for b in check.evidence["broken"]]
        assert problems == ["a znode's deletion woke more than one watcher", "c3 was notified while not acquiring"]


@pytest.mark.parametrize("intruder", [False, True])
def test_a_watch_on_the_parent_in_a_predecessor_round_breaks_the_herd_count(sessions, intruder):
    extra = (lambda zk, znode, watcher: zk.get_children(znode.rsplit("/", 1)[0], watch=watcher)) if intruder else None
    ctx, path = hand_over(sessions, extra)
    # The round as the engine records it, charting the one notification its board counted.
    described = {"clients": 2, "herd": False, "path": path}
    round_op = ctx.history.invoke("zookeeper", "round", described)
    ctx.history.ok(round_op, {**described, "notifications": 1})
    check = checkers.herd_notifications(ctx, None)
    assert check.held is (not intruder)
    assert check.evidence["rounds"] == [{"clients": 2, "herd": False, "recorded": 1 + intruder, "charted": 1}]
    if intruder:
        problems = [b["problem"] for b in check.evidence["broken"]]
        assert problems[:2] == [
            "1 charted, 2 received",
            "1 notifications of the lock's children: someone watched the parent",
        ]
