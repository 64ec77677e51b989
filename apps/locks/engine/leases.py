"""Redis leases guarding the storage's counter: the plain lease, the lease whose holder pauses past
its TTL (a GC pause), the same pause with fencing tokens the storage checks, and Redlock over the
run's own Redis nodes (a majority, then a node that restarts without the key)."""

import threading
import time
from functools import partial

from apps.runs.engine_api import NodeDown, cmd

from .clients import Clients
from .db import Tally, result_of, setup
from .lease import Lease
from .redlock import Redlock, node_client

OBSERVE_EVERY_S = 0.1
ROW = 1


def _lease(ctx, client, key, ttl_ms, holders, fenced):
    return Lease(
        ctx.nodes.redis(),
        key,
        ttl_ms,
        emit=ctx.emit,
        holder=client,
        node="redis",
        clock=lambda: ctx.clock,
        fencing_key=ctx.nodes.key("lock", "counter", "fencing") if fenced else None,
        holders=holders,
    )


def acquire(ctx, clients, name, lease):
    """Tries until it holds the lease, reading the key now and then (so the page shows who holds it
    and its TTL running down); the token."""
    clients.state(name, "acquiring", lock=lease.key)
    waiting_since = None
    while True:
        token = lease.try_acquire()
        if token is not None:
            clients.count(name, "acquired")
            clients.state(name, "holding", token, lock=lease.key)
            return token
        if waiting_since is None:
            waiting_since = time.monotonic()
            clients.state(name, "waiting", lock=lease.key)
            lease.observe()
        elif time.monotonic() - waiting_since >= OBSERVE_EVERY_S:
            waiting_since = time.monotonic()
            lease.observe()
        clients.poll()
        clients.gate(name)
        time.sleep(0.01)


def redis_lease(ctx):
    p = ctx.params
    storage = setup(ctx, 1)
    key = ctx.nodes.key("lock", "counter")
    clients = Clients(ctx, p["clients"], lock=key)
    holders, acknowledged = {}, Tally()
    fenced = p.get("fencing", False)

    def body(name, rng):
        lease = _lease(ctx, name, key, p["ttl_ms"], holders, fenced)
        sc = storage.client(name)
        try:
            for _ in range(p["operations"]):
                ctx.step()
                clients.gate(name)
                token = acquire(ctx, clients, name, lease)
                cs = sc.enter(ROW, token)
                value, _ = sc.read(ROW)
                clients.sleep(name, p["think_ms"] / 1000.0, token)
                if fenced:
                    accepted = sc.fenced_write(ROW, value + 1, token)
                else:
                    sc.write(ROW, value + 1)
                    accepted = None
                sc.leave(cs, accepted=accepted)
                if accepted is not False:
                    acknowledged.add()
                if not lease.release():
                    ctx.emit("log", actor=name, label=f"{name}'s lease had expired before it released it")
                clients.state(name, "idle", lock=key)
        finally:
            sc.close()
        clients.state(name, "done", lock=key)

    clients.run(body)
    return result_of(storage, acknowledged, acquired=clients.total("acquired"))


def redis_lease_pause(ctx):
    """c1 takes the lease, reads the counter, then pauses (a GC pause) for longer than the TTL. The
    key expires; c2 takes the lease, reads, writes and leaves. c1 resumes, still believing it holds
    the lease, and writes what it computed before the pause. With fencing the storage refuses c1's
    write, whose token is older than c2's."""
    p = ctx.params
    fenced = p.get("fencing", False)
    storage = setup(ctx, 1)
    key = ctx.nodes.key("lock", "counter")
    clients = Clients(ctx, 2, lock=key)
    holders, acknowledged = {}, Tally()
    c1_holds, c2_done = threading.Event(), threading.Event()
    outcome = {}

    def wait_for(event, name):
        # No step boundary while waiting: the other client takes its own, and one here would let a
        # Step press through with nothing to show. The other sets the event even when it stops.
        while not event.wait(0.05):
            clients.gate(name)

    def write(sc, name, value, token):
        if fenced:
            accepted = sc.fenced_write(ROW, value, token)
        else:
            sc.write(ROW, value)
            accepted = None
        outcome[name] = {"token": token, "wrote": value, "accepted": accepted}
        return accepted

    # A step boundary after each move of the story (acquire, read, write, release), so a paced or
    # stepped run shows one move at a time. The GC pause itself has none: it runs on the wall
    # clock, as the lease's TTL does.
    def c1(name, lease, sc):
        token = acquire(ctx, clients, name, lease)
        ctx.step()
        cs = sc.enter(ROW, token)
        value, _ = sc.read(ROW)
        c1_holds.set()
        ctx.step()
        ctx.emit(
            "log", actor=name, label=f"{name} pauses for {p['pause_ms']} ms (a GC pause), past its {p['ttl_ms']} ms TTL"
        )
        clients.state(name, "paused", token, lock=key, pause_ms=p["pause_ms"])
        clients.sleep(name, p["pause_ms"] / 1000.0, token)
        wait_for(c2_done, name)  # the schedule: c1 resumes after c2 has written
        clients.state(name, "holding", token, lock=key)
        lease.observe()  # what the key says now: someone else's token, or nothing
        ctx.step()
        accepted = write(sc, name, value + 1, token)
        sc.leave(cs, accepted=accepted)
        if accepted is not False:
            acknowledged.add()
        ctx.step()
        if not lease.release():
            ctx.emit("log", actor=name, label=f"{name}'s lease expired during its pause: the release deletes nothing")

    def c2(name, lease, sc):
        wait_for(c1_holds, name)
        token = acquire(ctx, clients, name, lease)
        ctx.step()
        cs = sc.enter(ROW, token)
        value, _ = sc.read(ROW)
        ctx.step()
        accepted = write(sc, name, value + 1, token)
        sc.leave(cs, accepted=accepted)
        if accepted is not False:
            acknowledged.add()
        ctx.step()
        lease.release()
        c2_done.set()

    def body(name, rng):
        lease = _lease(ctx, name, key, p["ttl_ms"], holders, fenced)
        sc = storage.client(name)
        try:
            if name == "c1":
                ctx.step()
                c1(name, lease, sc)
            else:
                c2(name, lease, sc)
        finally:
            c1_holds.set()
            c2_done.set()
            sc.close()
        clients.state(name, "done", lock=key)

    clients.run(body)
    return result_of(storage, acknowledged, writes=outcome)


# Redlock on the run's own Redis nodes ---------------------------------------------------------
REDLOCK_KEY = "lock:counter"


def _redlock_urls(ctx):
    cluster = getattr(ctx.nodes, "cluster", None)
    names = [n for n in getattr(ctx.nodes, "names", ()) if n.startswith("redis")]
    if cluster is None or len(names) < 3:
        raise ValueError("Redlock runs on dedicated Redis nodes (redis1..redis5) started for the run")
    return {n: cluster.node(n).url for n in names}


def _redlock(ctx, urls, name, ttl_ms, holders):
    return Redlock(
        {n: node_client(url) for n, url in urls.items()},
        REDLOCK_KEY,
        ttl_ms,
        emit=ctx.emit,
        holder=name,
        clock=lambda: ctx.clock,
        holders=holders,
    )


def _close(lock):
    for client in lock.nodes.values():
        client.close()


def redlock_majority(ctx):
    """Clients take the Redlock with all five nodes up, then with two killed (three still make a
    majority), then with three killed (two cannot): every attempt is refused. The killed nodes are
    SIGKILLed for real, and restarted at the end."""
    p = ctx.params
    urls = _redlock_urls(ctx)
    storage = setup(ctx, 1)
    clients = Clients(ctx, p["clients"], lock=REDLOCK_KEY)
    holders, acknowledged = {}, Tally()
    quorum = len(urls) // 2 + 1
    names = list(urls)
    plan = [(), tuple(names[: len(names) - quorum]), (names[len(names) - quorum],)]
    down, phases = [], []
    for kill in plan:
        for node in kill:
            _kill(ctx, node)
            down.append(node)
        ctx.emit(
            "phase",
            actor="redis",
            label=f"{len(urls) - len(down)} of {len(urls)} nodes up (quorum {quorum})",
            data={"phase": f"{len(down)} down", "down": list(down)},
        )
        phase = {"down": list(down), "acquired": 0, "refused": 0, "grants": []}
        phases.append(phase)

        def body(name, rng, phase=phase):
            lock = _redlock(ctx, urls, name, p["ttl_ms"], holders)
            sc = storage.client(name)
            try:
                for _ in range(p["operations"]):
                    ctx.step()
                    clients.gate(name)
                    for _attempt in range(p["attempts"]):
                        clients.state(name, "acquiring", lock=REDLOCK_KEY)
                        grant = lock.acquire()
                        if grant.token is None:
                            phase["refused"] += 1
                            clients.count(name, "retries")
                            clients.state(name, "waiting", lock=REDLOCK_KEY, votes=grant.votes)
                            clients.sleep(name, rng.uniform(0.02, 0.08))  # apart, so split votes end
                            continue
                        phase["acquired"] += 1
                        phase["grants"].append({"client": name, "votes": grant.votes, "validity_ms": grant.validity_ms})
                        clients.count(name, "acquired")
                        clients.state(name, "holding", grant.token, lock=REDLOCK_KEY, votes=grant.votes)
                        cs = sc.enter(1, grant.token)
                        value, _ = sc.read(1)
                        clients.sleep(name, p["think_ms"] / 1000.0, grant.token)
                        sc.write(1, value + 1)
                        sc.leave(cs)
                        acknowledged.add()
                        lock.release(grant)
                        clients.state(name, "idle", lock=REDLOCK_KEY)
                        break
            finally:
                sc.close()
                _close(lock)
            clients.state(name, "done", lock=REDLOCK_KEY)

        clients.run(body)
    for node in down:
        ctx.fault("restart", node)
    return result_of(storage, acknowledged, phases=phases, quorum=quorum, nodes=len(urls))


def redlock_restart(ctx):
    """c1 holds the Redlock on redis1..redis3 (redis4 and redis5 are down when it asks). redis4 and
    redis5 come back, and redis3 restarts: it kept the key only in memory, so it comes back
    without it. c2 now gets redis3, redis4 and redis5, a majority, while c1's validity still runs:
    both hold the lock, and c1's write after c2's loses c2's update."""
    p = ctx.params
    urls = _redlock_urls(ctx)
    names = list(urls)
    quorum = len(names) // 2 + 1
    storage = setup(ctx, 1)
    clients = Clients(ctx, 2, lock=REDLOCK_KEY)
    holders, acknowledged = {}, Tally()
    restarted = names[quorum - 1]
    absent = names[quorum:]
    locks = {name: _redlock(ctx, urls, name, p["ttl_ms"], holders) for name in clients.names}
    sc = {name: storage.client(name) for name in clients.names}
    try:
        # Without persistence: a restarted node comes back with none of the keys it had.
        for node, url in urls.items():
            admin = node_client(url)
            try:
                cmd(ctx.emit, "redis", node, "CONFIG SET appendonly no", partial(admin.config_set, "appendonly", "no"))
            finally:
                admin.close()
        for node in absent:
            _kill(ctx, node)
        ctx.step()
        clients.state("c1", "acquiring", lock=REDLOCK_KEY)
        first = locks["c1"].acquire()
        if first.token is None:
            raise RuntimeError(f"c1 could not take the lock on {names[:quorum]}: {first.errors or first.votes}")
        clients.state("c1", "holding", first.token, lock=REDLOCK_KEY, votes=first.votes)
        ctx.step()
        cs1 = sc["c1"].enter(1, first.token)
        value1, _ = sc["c1"].read(1)
        for node in absent:
            ctx.fault("restart", node)
        ctx.step()
        ctx.fault("restart", restarted)
        locks["c2"].observe(restarted)  # the key is gone from the restarted node
        ctx.step()
        clients.state("c2", "acquiring", lock=REDLOCK_KEY)
        second = locks["c2"].acquire()
        c1_left = round(first.remaining_ms(), 1)
        both = second.token is not None and c1_left > 0
        if second.token is not None:
            clients.state("c2", "holding", second.token, lock=REDLOCK_KEY, votes=second.votes)
            ctx.emit(
                "log",
                actor="redis",
                label=f"c2 holds the lock on {', '.join(second.votes)} while c1 holds it on {', '.join(first.votes)} "
                f"with {c1_left} ms of validity left",
            )
            ctx.step()
            cs2 = sc["c2"].enter(1, second.token)
            value2, _ = sc["c2"].read(1)
            sc["c2"].write(1, value2 + 1)
            sc["c2"].leave(cs2)
            acknowledged.add()
            ctx.step()
            locks["c2"].release(second)
            clients.state("c2", "done", lock=REDLOCK_KEY)
        else:
            clients.state("c2", "waiting", lock=REDLOCK_KEY, votes=second.votes)
        ctx.step()
        # c1 checks its validity before writing, as a careful client does: it still has time.
        if first.remaining_ms() > 0:
            sc["c1"].write(1, value1 + 1)
            acknowledged.add()
        sc["c1"].leave(cs1)
        ctx.step()
        locks["c1"].release(first)
        clients.state("c1", "done", lock=REDLOCK_KEY)
    finally:
        for name in clients.names:
            sc[name].close()
            _close(locks[name])
    return result_of(
        storage,
        acknowledged,
        first={"votes": first.votes, "validity_ms": first.validity_ms},
        second={"votes": second.votes, "granted": second.token is not None},
        both_held=both,
        restarted=restarted,
    )


def _kill(ctx, node):
    """SIGKILLs the node, unless an instructor already took it down."""
    try:
        ctx.fault("kill", node)
    except NodeDown as exc:
        ctx.emit("log", actor="redis", label=f"{node} is already {exc.state}")
