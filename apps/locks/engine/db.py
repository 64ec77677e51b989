"""Locks the database gives: none at all (lost updates), optimistic (a version column), pessimistic
(SELECT ... FOR UPDATE inside a transaction), and the deadlock InnoDB breaks with error 1213."""

import random
import threading
import time
from collections.abc import Callable

import pymysql

from .clients import Clients
from .storage import DEADLOCK, LOCK_WAIT_TIMEOUT, Conflict, Storage, StorageClient, errno

WAITS_QUERY = """
SELECT r.trx_mysql_thread_id, b.trx_mysql_thread_id, l.lock_table, l.lock_index, l.lock_mode, l.lock_data
FROM information_schema.INNODB_LOCK_WAITS w
JOIN information_schema.INNODB_TRX r ON r.trx_id = w.requesting_trx_id
JOIN information_schema.INNODB_TRX b ON b.trx_id = w.blocking_trx_id
JOIN information_schema.INNODB_LOCKS l ON l.lock_id = w.requested_lock_id
"""
NO_PRIVILEGE = 1227


class Tally:
    def __init__(self):
        self.value = 0
        self._lock = threading.Lock()

    def add(self, n=1):
        with self._lock:
            self.value += n


def setup(ctx, rows, emit=True):
    return Storage.on(ctx.nodes, rows=rows, emit=ctx.emit if emit else None).setup()


def result_of(storage, acknowledged, **more):
    return {"storage": storage.describe(), "acknowledged": acknowledged.value, **more}


class InnodbWaits:
    """Who waits for whose row lock, as `innodb_waits` state events. Read from information_schema
    (INNODB_LOCK_WAITS with INNODB_TRX and INNODB_LOCKS) by a sampler while clients run; where the
    account may not read those tables (they need the PROCESS privilege), from what the clients
    themselves know: which row each one waits for, and who holds it."""

    # InnoDB refreshes the cache behind these tables only when it was not read for 100 ms: reading
    # more often would show the same stale snapshot forever.
    def __init__(self, ctx, storage, every_s=0.12):
        self.ctx = ctx
        self.storage = storage
        self.every_s = every_s
        self.threads = {}  # connection thread id -> client
        self.holding = {}  # row -> client
        self.waiting = {}  # client -> row
        self.source = "information_schema"
        self._last = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None

    def start(self):
        conn = self.storage.connection()
        try:
            with conn.cursor() as cur:
                cur.execute(WAITS_QUERY)
        except pymysql.MySQLError as exc:
            conn.close()
            if errno(exc) != NO_PRIVILEGE:
                raise
            self.source = "clients"
            self.ctx.emit(
                "log",
                actor="mariadb",
                label="information_schema's InnoDB lock tables need the PROCESS privilege here: "
                "the waits shown are the ones the clients report",
            )
            return self
        self._thread = threading.Thread(target=self._sample, args=(conn,), name="innodb-waits", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def client(self, name: str) -> StorageClient:
        """A storage client of its own for `name`, whose row-lock waits this sampler can name; it
        gives up on a row lock after 20 s (1205) rather than hang a run."""
        sc = self.storage.client(name)
        sc.set_lock_wait_timeout(20)
        with self._lock:
            self.threads[sc.thread_id()] = name
        return sc

    # What the clients report ------------------------------------------------------------------
    def wait(self, client, row):
        with self._lock:
            self.waiting[client] = row
        self._from_clients()

    def hold(self, client, row):
        with self._lock:
            self.waiting.pop(client, None)
            self.holding[row] = client
        self._from_clients()

    def release(self, client):
        with self._lock:
            self.waiting.pop(client, None)
            for row in [r for r, c in self.holding.items() if c == client]:
                del self.holding[row]
        self._from_clients()

    def _from_clients(self):
        if self.source != "clients":
            return
        with self._lock:
            waits = [
                _wait(client, self.holding[row], "`counter`", "PRIMARY", "X", row)
                for client, row in sorted(self.waiting.items())
                if self.holding.get(row) not in (None, client)
            ]
        self._publish(waits)

    # The sampler ------------------------------------------------------------------------------
    def _sample(self, conn):
        try:
            while not self._stop.wait(self.every_s):
                with conn.cursor() as cur:
                    cur.execute(WAITS_QUERY)
                    rows = cur.fetchall()
                waits = [
                    _wait(self.threads.get(w), self.threads.get(b), table, index, mode, data)
                    for w, b, table, index, mode, data in rows
                    if w in self.threads
                ]
                self._publish(sorted(waits, key=lambda x: (x["waiting"], str(x["blocking"]))))
        except Exception as exc:  # noqa: BLE001 - the sampler only illustrates; it must not end the run
            self.ctx.emit("log", actor="mariadb", label=f"lock-wait sampling stopped: {type(exc).__name__}: {exc}")
        finally:
            conn.close()

    def _publish(self, waits):
        with self._lock:
            if waits == self._last:
                return
            self._last = waits
        text = ", ".join(f"{w['waiting']} waits for {w['blocking']} (row {w['row']})" for w in waits) or "no waits"
        self.ctx.emit(
            "state", actor="mariadb", label=text, data={"type": "innodb_waits", "waits": waits, "source": self.source}
        )


def _wait(waiting, blocking, table, index, mode, data):
    table = str(table).rsplit(".", 1)[-1].strip("`")
    try:
        row = int(str(data).strip()) if data is not None else None
    except ValueError:
        row = None
    return {"waiting": waiting, "blocking": blocking, "table": table, "index": index, "lock_mode": mode, "row": row}


# The schemes, one increment each ------------------------------------------------------------
def optimistic_increment(sc, row, think_s, on_conflict):
    """Read the value and its version, write value + 1 only if the version is unchanged; retry
    from the read on a conflict. Returns the number of attempts."""
    attempts = 0
    while True:
        attempts += 1
        value, version = sc.read(row)
        if think_s:
            time.sleep(think_s)
        try:
            sc.compare_and_set(row, value + 1, version)
            return attempts
        except Conflict:
            on_conflict()


def lock_row(sc: StorageClient, row: int, on_wait: Callable[[], None] | None = None) -> tuple[int, bool]:
    """Takes the row's exclusive lock with SELECT ... FOR UPDATE: at once when it is free (NOWAIT),
    else after calling on_wait(), waiting for its holder. (value, whether it had to wait)"""
    try:
        value, _ = sc.read(row, for_update=True, nowait=True)
        return value, False
    except pymysql.MySQLError as exc:
        if errno(exc) != LOCK_WAIT_TIMEOUT:
            raise
    if on_wait:
        on_wait()
    value, _ = sc.read(row, for_update=True)
    return value, True


def pessimistic_increment(sc, row, think_s, *, on_wait=None, on_hold=None, transaction=True, section=True):
    """Lock the row with SELECT ... FOR UPDATE, then read-modify-write it. Returns whether it had
    to wait for the lock."""
    if transaction:
        sc.begin()  # the row lock lives as long as this transaction; under autocommit it would not
    try:
        value, waited = lock_row(sc, row, on_wait)
        if on_hold:
            on_hold()
        cs = sc.enter(row) if section else None
        if think_s:
            time.sleep(think_s)
        sc.write(row, value + 1)
        if cs is not None:
            sc.leave(cs)
        if transaction:
            sc.commit()
    except BaseException:
        if transaction:
            try:
                sc.rollback()
            except pymysql.MySQLError:
                pass
        raise
    return waited


# Engines ------------------------------------------------------------------------------------
def lost_update(ctx):
    """Read-modify-write with no lock at all. On the first round every client reads before any
    writes (a barrier), so at least clients - 1 increments are lost for sure."""
    p = ctx.params
    storage = setup(ctx, p["rows"])
    clients = Clients(ctx, p["clients"], lock="none")
    acknowledged = Tally()
    barrier = threading.Barrier(len(clients.names))

    def body(name, rng):
        sc = storage.client(name)
        try:
            for i in range(p["operations"]):
                ctx.step()
                clients.gate(name)
                row = rng.randint(1, p["hot_rows"])
                clients.state(name, "holding", lock="none")
                cs = sc.enter(row)
                value, _ = sc.read(row)
                if i == 0:
                    barrier.wait(timeout=60)
                clients.sleep(name, p["think_ms"] / 1000.0)
                sc.write(row, value + 1)
                sc.leave(cs)
                acknowledged.add()
                clients.state(name, "idle", lock="none")
        except BaseException:
            barrier.abort()  # the others must not wait at the barrier for a client that is gone
            raise
        finally:
            sc.close()
        clients.state(name, "done", lock="none")

    clients.run(body)
    return result_of(storage, acknowledged)


def optimistic(ctx):
    p = ctx.params
    storage = setup(ctx, p["rows"])
    clients = Clients(ctx, p["clients"], lock="version")
    acknowledged = Tally()

    def body(name, rng):
        sc = storage.client(name)
        try:
            for _ in range(p["operations"]):
                ctx.step()
                clients.gate(name)
                row = rng.randint(1, p["hot_rows"])
                clients.state(name, "acquiring", lock=f"version of row {row}")

                def conflict(name=name, row=row):
                    clients.count(name, "conflicts")
                    clients.count(name, "retries")
                    clients.state(name, "acquiring", lock=f"version of row {row}", conflict=True)

                optimistic_increment(sc, row, p["think_ms"] / 1000.0, conflict)
                acknowledged.add()
                clients.count(name, "acquired")
                clients.state(name, "idle", lock=f"version of row {row}")
        finally:
            sc.close()
        clients.state(name, "done")

    clients.run(body)
    return result_of(storage, acknowledged, conflicts=clients.total("conflicts"), retries=clients.total("retries"))


def pessimistic(ctx):
    p = ctx.params
    storage = setup(ctx, p["rows"])
    clients = Clients(ctx, p["clients"], lock="FOR UPDATE")
    waits = InnodbWaits(ctx, storage).start()
    acknowledged = Tally()
    transaction = p.get("transaction", True)

    def body(name, rng):
        sc = waits.client(name)
        try:
            for _ in range(p["operations"]):
                ctx.step()
                clients.gate(name)
                row = rng.randint(1, p["hot_rows"])
                lock = f"counter row {row}"
                clients.state(name, "acquiring", lock=lock)

                def on_wait(name=name, row=row, lock=lock):
                    clients.count(name, "lock_waits")
                    clients.state(name, "waiting", lock=lock)
                    waits.wait(name, row)

                def on_hold(name=name, row=row, lock=lock):
                    waits.hold(name, row)
                    clients.state(name, "holding", lock=lock)

                try:
                    pessimistic_increment(
                        sc, row, p["think_ms"] / 1000.0, on_wait=on_wait, on_hold=on_hold, transaction=transaction
                    )
                finally:
                    waits.release(name)
                acknowledged.add()
                clients.count(name, "acquired")
                clients.state(name, "idle", lock=lock)
        finally:
            sc.close()
        clients.state(name, "done")

    with waits:
        clients.run(body)
    return result_of(storage, acknowledged, lock_waits=clients.total("lock_waits"), waits_source=waits.source)


def deadlock(ctx):
    """c1 locks row 1 then row 2, c2 row 2 then row 1: each holds what the other wants. InnoDB sees
    the cycle at once and rolls one transaction back with 1213; that victim retries."""
    p = ctx.params
    storage = setup(ctx, 2)
    clients = Clients(ctx, 2, lock="FOR UPDATE")
    waits = InnodbWaits(ctx, storage).start()
    acknowledged = Tally()
    orders = {"c1": (1, 2), "c2": (2, 1)}
    both_hold_first = threading.Barrier(2)  # cyclic: once per round
    # Each round starts when both finished the last: otherwise a client already in the next round
    # holds a row the victim's retry needs while it waits here for that victim, a wait InnoDB cannot see.
    round_start = threading.Barrier(2)
    c1_requests_second = [threading.Event() for _ in range(p["operations"])]
    deadlocks = []

    def lock(sc, name, row):
        lock = f"counter row {row}"
        clients.state(name, "acquiring", lock=lock)

        def on_wait():
            clients.count(name, "lock_waits")
            clients.state(name, "waiting", lock=lock)
            waits.wait(name, row)

        value, _ = lock_row(sc, row, on_wait)
        waits.hold(name, row)
        clients.state(name, "holding", lock=lock)
        return value

    def transfer(sc, name, round_, first_attempt):
        first, second = orders[name]
        other = "c2" if name == "c1" else "c1"
        sc.begin()  # both row locks belong to this one transaction, held to its COMMIT
        try:
            values = {first: lock(sc, name, first)}
            if first_attempt:
                both_hold_first.wait(timeout=60)
                if name == "c1":
                    c1_requests_second[round_].set()
                else:
                    # c2 asks second, so the cycle closes on its request (either may be the victim).
                    c1_requests_second[round_].wait(timeout=60)
                    time.sleep(0.1)
            values[second] = lock(sc, name, second)
            cs = sc.enter(None)
            for row in (1, 2):
                sc.write(row, values[row] + 1)
            sc.leave(cs)
            sc.commit()
            return True
        except pymysql.MySQLError as exc:
            if errno(exc) != DEADLOCK:
                raise
            # InnoDB has already rolled the whole transaction back and freed its locks.
            deadlocks.append(name)
            ctx.emit(
                "state",
                actor="mariadb",
                label=f"deadlock: {name} waits for {other}, {other} waits for {name}; {name} is the victim (1213)",
                data={"type": "wait_for", "edges": [[name, other], [other, name]], "victim": name, "errno": DEADLOCK},
            )
            clients.count(name, "retries")
            clients.state(name, "idle", lock=f"rolled back by InnoDB ({DEADLOCK})")
            return False
        finally:
            waits.release(name)

    def body(name, rng):
        sc = waits.client(name)
        try:
            for i in range(p["operations"]):
                ctx.step()
                clients.gate(name)
                round_start.wait(timeout=60)
                attempt = 0
                while not transfer(sc, name, i, first_attempt=attempt == 0):
                    attempt += 1
                    ctx.step()
                acknowledged.add(2)
                clients.count(name, "acquired")
                clients.state(name, "idle")
        except BaseException:
            both_hold_first.abort()
            round_start.abort()
            raise
        finally:
            sc.close()
        clients.state(name, "done")

    with waits:
        clients.run(body)
    return result_of(storage, acknowledged, deadlocks=deadlocks, retries=clients.total("retries"))


def contention_sweep(ctx):
    """Both schemes at growing contention: for each number of hot rows and of clients, a batch of
    increments; throughput, latency and retries (optimistic) or lock waits (pessimistic) per
    batch, as chart points with x = clients."""
    p = ctx.params
    storage = setup(ctx, p["rows"], emit=False)
    levels = sorted({n for n in (1, 2, 4, 8, 16) if n < p["clients"]} | {p["clients"]})
    hot_levels = sorted({1, p["hot_rows"]})
    acknowledged = Tally()
    points = []
    ctx.emit("log", actor="storage", label="the sweep records no SQL events: each batch is timed as it runs")
    for hot in hot_levels:
        for n in levels:
            for scheme in ("optimistic", "pessimistic"):
                ctx.step()
                ctx.emit(
                    "phase", actor="storage", label=f"{scheme}: {n} clients on {hot} hot rows", data={"phase": scheme}
                )
                point = _batch(ctx, storage, scheme, n, hot, p["operations"], p["think_ms"] / 1000.0, acknowledged)
                points.append(point)
                series = f"{scheme}, {hot} hot row{'s' if hot > 1 else ''}"
                for metric, value in (
                    ("throughput (ops/s)", point["per_s"]),
                    ("latency (ms)", point["latency_ms"]),
                    ("retries or lock waits per op", point["contended_per_op"]),
                ):
                    ctx.emit(
                        "metric",
                        actor="storage",
                        label=f"{metric} {series} at {n} clients: {value}",
                        data={"name": metric, "series": series, "x": n, "y": value},
                    )
    return result_of(storage, acknowledged, points=points)


def _batch(ctx, storage, scheme, n, hot, operations, think_s, acknowledged):
    names = [f"c{i}" for i in range(1, n + 1)]
    rngs = {name: random.Random(ctx.rng.random()) for name in names}
    point = increment_batch(storage, scheme, names, hot, operations, think_s, rngs, cancelled=ctx.cancelled)
    acknowledged.add(point["operations"])
    ctx.step()
    return point


def increment_batch(
    storage: Storage,
    scheme: str,
    names: list[str],
    hot: int,
    operations: int,
    think_s: float,
    rngs: dict[str, random.Random],
    *,
    sections: bool = True,
    cancelled: threading.Event | None = None,
) -> dict:
    """`operations` increments by each client (a connection each) of a random row among the first
    `hot`, with the optimistic or the pessimistic scheme: its rate, mean and 95th-percentile
    latency, and retries (optimistic) or lock waits (pessimistic) per increment. The clock starts
    once every client is connected. The sweep logs the pessimistic critical sections; the benchmark
    (`sections=False`) measures the lock alone."""
    latencies, contended, errors = [], Tally(), []
    lock = threading.Lock()
    start = threading.Barrier(len(names) + 1)

    def body(name):
        sc = storage.client(name)
        mine = []
        try:
            sc.set_lock_wait_timeout(20)
            start.wait(timeout=60)
            for _ in range(operations):
                if cancelled is not None and cancelled.is_set():
                    return
                row = rngs[name].randint(1, hot)
                began = time.perf_counter()
                if scheme == "optimistic":
                    optimistic_increment(sc, row, think_s, contended.add)
                elif pessimistic_increment(sc, row, think_s, section=sections):
                    contended.add()
                mine.append((time.perf_counter() - began) * 1000.0)
        except BaseException as exc:  # noqa: BLE001 - re-raised by the batch
            errors.append(exc)
            start.abort()
        finally:
            sc.close()
            with lock:
                latencies.extend(mine)

    threads = [threading.Thread(target=body, args=(name,), daemon=True) for name in names]
    for t in threads:
        t.start()
    try:
        start.wait(timeout=60)
    except threading.BrokenBarrierError:
        pass  # a client failed before the start: its error is raised below
    began = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise errors[0]
    ops = len(latencies)
    ordered = sorted(latencies)
    return {
        "scheme": scheme,
        "clients": len(names),
        "hot_rows": hot,
        "operations": ops,
        "per_s": round(ops / elapsed, 1) if elapsed > 0 else 0.0,
        "latency_ms": round(sum(ordered) / ops, 3) if ops else 0.0,
        "p95_ms": round(ordered[int(0.95 * (ops - 1))], 3) if ops else 0.0,
        "contended_per_op": round(contended.value / ops, 3) if ops else 0.0,
    }
