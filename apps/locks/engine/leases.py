"""Redis leases guarding the storage's counter: the plain lease, the lease whose holder pauses past
its TTL (a GC pause), and the same pause with fencing tokens the storage checks."""

import threading
import time

from .clients import Clients
from .db import Tally, result_of, setup
from .lease import Lease

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
        while not event.wait(0.05):
            clients.poll()
            clients.gate(name)

    def write(sc, name, value, token):
        if fenced:
            accepted = sc.fenced_write(ROW, value, token)
        else:
            sc.write(ROW, value)
            accepted = None
        outcome[name] = {"token": token, "wrote": value, "accepted": accepted}
        return accepted

    def c1(name, lease, sc):
        token = acquire(ctx, clients, name, lease)
        cs = sc.enter(ROW, token)
        value, _ = sc.read(ROW)
        c1_holds.set()
        ctx.emit(
            "log", actor=name, label=f"{name} pauses for {p['pause_ms']} ms (a GC pause), past its {p['ttl_ms']} ms TTL"
        )
        clients.state(name, "paused", token, lock=key, pause_ms=p["pause_ms"])
        clients.sleep(name, p["pause_ms"] / 1000.0, token)
        wait_for(c2_done, name)  # the schedule: c1 resumes after c2 has written
        clients.state(name, "holding", token, lock=key)
        lease.observe()  # what the key says now: someone else's token, or nothing
        accepted = write(sc, name, value + 1, token)
        sc.leave(cs, accepted=accepted)
        if accepted is not False:
            acknowledged.add()
        if not lease.release():
            ctx.emit("log", actor=name, label=f"{name}'s lease expired during its pause: the release deletes nothing")

    def c2(name, lease, sc):
        wait_for(c1_holds, name)
        token = acquire(ctx, clients, name, lease)
        cs = sc.enter(ROW, token)
        value, _ = sc.read(ROW)
        accepted = write(sc, name, value + 1, token)
        sc.leave(cs, accepted=accepted)
        if accepted is not False:
            acknowledged.add()
        lease.release()
        c2_done.set()

    def body(name, rng):
        lease = _lease(ctx, name, key, p["ttl_ms"], holders, fenced)
        sc = storage.client(name)
        try:
            ctx.step()
            (c1 if name == "c1" else c2)(name, lease, sc)
        finally:
            c1_holds.set()
            c2_done.set()
            sc.close()
        clients.state(name, "done", lock=key)

    clients.run(body)
    return result_of(storage, acknowledged, writes=outcome)
