"""The engines of the locks lab's ZooKeeper scenarios (the recipe is in zk_recipe, the board that
draws the queue in zk_board, the clients in zk_harness)."""

from .zk_harness import ZkRun
from .zk_recipe import READ, WRITE, ZOOKEEPER

LOCK_PATH = "/locks/lock"
RW_PATH = "/locks/rw"
PREDECESSOR, HERD = "watch the predecessor", "watch the parent (herd)"


def zk_lock(ctx):
    """N clients take the lock in turn, each watching only its predecessor."""
    p = ctx.params
    with ZkRun(ctx, LOCK_PATH, hold_ms=p["hold_ms"]) as run:
        clients = run.open(p["clients"])
        count = run.round(clients, operations=p["operations"])
        metric_notifications(ctx, PREDECESSOR, len(clients), count)
        return run.result()


def zk_herd(ctx):
    """For 2..N clients, one round of each recipe: the herd's notifications grow with the square."""
    p = ctx.params
    with ZkRun(ctx, LOCK_PATH, hold_ms=p["hold_ms"]) as run:
        clients = run.open(p["clients"])
        counts = {PREDECESSOR: {}, HERD: {}}
        for k in range(2, len(clients) + 1):
            for series, herd in ((PREDECESSOR, False), (HERD, True)):
                ctx.emit(
                    "phase",
                    actor=ZOOKEEPER,
                    label=f"{k} clients, {series}",
                    data={"clients": k, "series": series, "herd": herd},
                )
                path = f"{LOCK_PATH}-{k}-{'herd' if herd else 'predecessor'}"
                counts[series][k] = run.round(clients[:k], herd=herd, path=path)
                metric_notifications(ctx, series, k, counts[series][k])
        return run.result(notifications=counts)


def zk_session_expiry(ctx):
    """c1 holds the lock and pauses; its session is expired; c2 takes over; c1 resumes and writes
    with its stale czxid, which the storage refuses."""
    p = ctx.params
    with ZkRun(ctx, LOCK_PATH, hold_ms=p["hold_ms"]) as run:
        clients = run.open(p["clients"])
        holder, others = clients[0], clients[1:]
        holder.pause_at = "in-section"
        story = {}

        def expire_then_resume(done):
            _wait(run, holder.reached)
            token = holder.token
            ctx.emit("log", actor=holder.name, label=f"{holder.name} pauses in its critical section (a GC pause)")
            story["expired"] = ctx.fault("expire", holder.name)
            for other in others:
                _wait(run, done[other.name])
            story["stale_token"] = token
            ctx.fault("resume", holder.name)

        run.round(clients, operations=1, meanwhile=expire_then_resume)
        return run.result(**story)


def zk_rwlock(ctx):
    """Readers share the lock, writers take it alone."""
    p = ctx.params
    with ZkRun(ctx, RW_PATH, hold_ms=p["hold_ms"]) as run:
        clients = run.open(p["clients"])
        modes = rw_modes(p["clients"], p["writers"])
        run.round(clients, operations=p["operations"], modes=modes)
        return run.result(modes=modes)


def rw_modes(clients, writers):
    """Which client reads and which writes: the writers spread from the last client back, so the
    queue starts with readers that share the lock."""
    step = max(1, clients // max(1, writers))
    writing = {clients - j * step for j in range(writers) if clients - j * step >= 1}
    return {f"c{i}": WRITE if i in writing else READ for i in range(1, clients + 1)}


def metric_notifications(ctx, series, clients, count):
    ctx.emit(
        "metric",
        actor=ZOOKEEPER,
        label=f"{series}: {count} notifications for {clients} clients",
        data={"name": "watch notifications", "series": series, "x": clients, "y": count, "value": count},
    )


def _wait(run, event):
    while not event.wait(0.2):
        run.step_if_quiet()
