"""Distributed transactions over real MariaDB XA: two-phase commit, coordinator crashes, recovery.

Plain Python: runs against the real servers through `ctx.nodes`; no Django, no Celery.

A `Coordinator` (one per client thread) moves money between accounts held by different
`Participant`s, each a MariaDB database (shared node) or a whole MariaDB server (dedicated nodes).
Each transfer is a global transaction with gtrid `r<run>-t<n>` and one XA branch per participant
(bqual = the participant's name). The coordinator logs its commit decision durably before phase 2
(presumed abort: no record means abort); `recover()` resolves every in-doubt branch from that log.
"""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pymysql

from apps.runs.nodes import timed

COORDINATOR = "coordinator"
# Where a scenario may crash the coordinator: all prepared, nothing logged; commit logged, none sent;
# the first participant committed, the rest not.
CRASH_POINTS = ("after-prepare", "after-decision", "mid-commit")
# A participant session waits at most this long for a row lock: an in-doubt branch can hold one for
# ever, and InnoDB cannot see a wait cycle that spans two servers.
LOCK_WAIT_S = 2


class CoordinatorCrashed(Exception):
    """The coordinator stops here: its connections are abandoned, its branches left as they are."""


class VoteNo(Exception):
    """A participant refuses to prepare."""


@dataclass(frozen=True)
class Participant:
    """One resource manager: its name (also the XA bqual), its database and, on dedicated nodes,
    its server."""

    name: str
    db: str
    node: str | None = None

    def connect(self, ctx, **options):
        if self.node:
            return ctx.nodes.mariadb(db=self.db, node=self.node, **options)
        return ctx.nodes.mariadb(db=self.db, **options)


@dataclass
class Transfer:
    n: int
    gtrid: str
    source: tuple  # (participant name, account id)
    target: tuple
    amount: int

    @property
    def participants(self):
        return sorted({self.source[0], self.target[0]})

    def as_dict(self):
        return {
            "n": self.n,
            "gtrid": self.gtrid,
            "from": list(self.source),
            "to": list(self.target),
            "amount": self.amount,
            "participants": self.participants,
        }


@dataclass
class Crash:
    """Where the coordinator crashes (one of CRASH_POINTS) and on which transfer; or, when an
    instructor asks (`requested`), at its next step."""

    point: str | None = None
    transfer: int = 1
    fired: threading.Event = field(default_factory=threading.Event)
    victim: Transfer | None = None
    requested: threading.Event = field(default_factory=threading.Event)
    by_instructor: bool = False
    branches: dict = field(default_factory=dict)  # the victim's branch states when it crashed
    over: bool = False  # the transfers are done: nothing is left to crash

    def on_fault(self, target, **options):
        """The "crash" fault on the coordinator, from the run page's button."""
        if target != COORDINATOR:
            raise ValueError(f"only the {COORDINATOR} can crash, not {target!r}")
        if self.over or self.fired.is_set():
            raise ValueError("the coordinator is not running transfers any more")
        self.requested.set()
        return {"effect": "the coordinator crashes at its next step"}


def xid(gtrid, bqual):
    return f"'{gtrid}','{bqual}'"


def sql(ctx, conn, actor, node, statement, args=None, quiet_errors=False):
    """Runs one statement, recording it as a `cmd` event with its result or error and duration."""
    with conn.cursor() as cur:
        text = cur.mogrify(statement, args)
        try:
            _, ms = timed(cur.execute, statement, args)
        except pymysql.MySQLError as exc:
            code = exc.args[0] if exc.args else None
            error = f"{code}: {exc.args[1] if len(exc.args) > 1 else exc}"
            ctx.emit("cmd", actor=actor, to=node, label=text, data={"command": text, "error": error, "ok": False})
            raise
        rows = cur.fetchall() if cur.description else None
        result = f"{len(rows)} rows" if rows is not None else f"{cur.rowcount} affected"
        ctx.emit(
            "cmd", actor=actor, to=node, label=text, data={"command": text, "result": result, "ms": ms, "ok": True}
        )
        return rows if rows is not None else cur.rowcount


# Set-up -------------------------------------------------------------------------------------------
def participants_of(ctx):
    count = ctx.params["participants"]
    if ctx.nodes.roles.get("mariadb", "mariadb") != "mariadb":  # dedicated: one server per participant
        return [Participant(f"db{i}", "bank", f"db{i}") for i in range(1, count + 1)]
    return [Participant(f"p{i}", f"p{i}") for i in range(1, count + 1)]


def log_location(participants):
    """The coordinator's own database: on the first server of a cluster, else on the shared node."""
    return Participant(COORDINATOR, "coord", participants[0].node)


def setup(ctx, participants, log):
    accounts, balance = ctx.params["accounts"], ctx.params["balance"]
    for p in participants:
        conn = p.connect(ctx)
        sql(ctx, conn, COORDINATOR, p.name, "CREATE TABLE accounts (id INT PRIMARY KEY, balance INT NOT NULL)")
        # One ledger row per transfer, written inside the XA branch: the checker reads which
        # branches committed from it.
        sql(ctx, conn, COORDINATOR, p.name, "CREATE TABLE ledger (gtrid VARCHAR(64) PRIMARY KEY, delta INT NOT NULL)")
        rows = [(a, balance) for a in range(1, accounts + 1)]
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO accounts (id, balance) VALUES (%s, %s)", rows)
        ctx.emit("log", actor=p.name, label=f"{accounts} accounts of {balance} each")
        conn.close()
    if log is not None:
        conn = log.connect(ctx)
        sql(
            ctx,
            conn,
            COORDINATOR,
            COORDINATOR,
            "CREATE TABLE decisions (gtrid VARCHAR(64) PRIMARY KEY, decision VARCHAR(8) NOT NULL, "
            "participants VARCHAR(255) NOT NULL)",
        )
        conn.close()


def plan(ctx, participants):
    """The transfers, drawn from the seeded rng before any thread starts, so a seed fixes them."""
    names = [p.name for p in participants]
    transfers = []
    for n in range(1, ctx.params["transfers"] + 1):
        if ctx.rng.randrange(100) < ctx.params.get("local_percent", 0):
            src = dst = ctx.rng.choice(names)  # both accounts on one participant
        else:
            src, dst = ctx.rng.sample(names, 2)
        amount = ctx.params["amount"]
        if ctx.params.get("overdraw") and n == 1:
            amount = ctx.params["balance"] * 10  # more than the source account holds: it votes no
        transfers.append(
            Transfer(
                n,
                f"r{ctx.run_id}-t{n}",
                (src, ctx.rng.randint(1, ctx.params["accounts"])),
                (dst, ctx.rng.randint(1, ctx.params["accounts"])),
                amount,
            )
        )
    return transfers


# The coordinator ----------------------------------------------------------------------------------
class Coordinator:
    """Runs transfers one after another over its own connections, one per participant."""

    def __init__(self, ctx, name, participants, log, crash):
        self.ctx = ctx
        self.name = name
        self.participants = {p.name: p for p in participants}
        self.log = log
        self.crash = crash
        self.conns = {}
        self.log_conn = None
        self.branch = {}  # participant -> XA state of the current transfer's branch
        self.current = None  # the transfer those branches belong to
        self.refused = None  # why the current transfer's source participant will vote no

    # connections --------------------------------------------------------------------------------
    def conn(self, name):
        if name not in self.conns or not self.conns[name].open:
            conn = self.participants[name].connect(self.ctx)
            with conn.cursor() as cur:
                cur.execute("SET SESSION innodb_lock_wait_timeout = %s", (LOCK_WAIT_S,))
            self.conns[name] = conn
        return self.conns[name]

    def drop(self, name):
        """Closes a connection that failed: the server ends its branch unless it is PREPARED."""
        conn = self.conns.pop(name, None)
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - already gone
                pass

    def abandon(self):
        """A crash: the connections go away without ending their branches. The server rolls back
        ACTIVE and IDLE ones; PREPARED ones survive, in doubt, holding their locks."""
        for participant, state in list(self.branch.items()):
            if state in ("ACTIVE", "IDLE") and self.current is not None:
                self.set_state(participant, self.current, "ROLLED BACK", by="the server, as the connection closed")
        for conn in list(self.conns.values()) + [self.log_conn]:
            if conn is not None:
                try:
                    conn.close()
                except Exception:  # noqa: BLE001 - already gone
                    pass
        self.conns, self.log_conn = {}, None

    def checkpoint(self, point, transfer):
        """A step boundary; the coordinator crashes here when the scenario says so, or when another
        of its threads already crashed."""
        self.ctx.step()
        c = self.crash
        if c.fired.is_set():
            raise CoordinatorCrashed(f"stopped with the coordinator at {point}")
        if c.requested.is_set() or (c.point == point and transfer.n == c.transfer):
            c.by_instructor = c.requested.is_set()
            c.requested.clear()
            c.victim = transfer
            c.branches = dict(self.branch)
            c.fired.set()
            self.ctx.emit(
                "log",
                actor=COORDINATOR,
                label=f"coordinator crashes {point} of {transfer.gtrid}",
                data={"point": point, "gtrid": transfer.gtrid, "by_instructor": c.by_instructor},
            )
            raise CoordinatorCrashed(point)

    # messages -----------------------------------------------------------------------------------
    def send(self, to, label, transfer, action):
        """A coordinator→participant message, the SQL it makes the participant run, and the reply."""
        request = self.ctx.emit("msg", actor=COORDINATOR, to=to, label=label, data={"gtrid": transfer.gtrid})
        try:
            reply, ms = timed(action)
        except VoteNo as exc:
            self.ctx.emit(
                "msg", actor=to, to=COORDINATOR, label="NO", data={"reply_to": request["seq"], "reason": str(exc)}
            )
            raise
        except pymysql.MySQLError as exc:
            self.ctx.emit(
                "msg",
                actor=to,
                to=COORDINATOR,
                label="ERROR",
                data={"reply_to": request["seq"], "error": f"{exc.args[0]}: {exc.args[-1]}"},
            )
            raise
        self.ctx.emit("msg", actor=to, to=COORDINATOR, label=reply, data={"reply_to": request["seq"], "ms": ms})
        return reply

    def set_state(self, participant, transfer, state, **extra):
        self.branch[participant] = state
        self.ctx.emit(
            "state",
            actor=participant,
            label=f"{transfer.gtrid} {state}",
            data={"state": state, "xid": xid(transfer.gtrid, participant), "gtrid": transfer.gtrid, **extra},
        )

    def xa(self, participant, transfer, verb, suffix=""):
        return sql(
            self.ctx,
            self.conn(participant),
            COORDINATOR,
            participant,
            f"XA {verb} %s, %s{suffix}",
            (transfer.gtrid, participant),
        )

    # the protocol ------------------------------------------------------------------------------
    def work(self, participant, transfer):
        """The branch's work: debit or credit one account and write the ledger row, inside XA."""

        def do():
            conn = self.conn(participant)
            self.xa(participant, transfer, "START")
            self.set_state(participant, transfer, "ACTIVE")
            delta = 0
            # The rows this branch wrote: it holds their locks until it commits or rolls back.
            locks = [f"accounts id={a}" for p, a in sorted({transfer.source, transfer.target}) if p == participant]
            locks.append(f"ledger gtrid={transfer.gtrid}")
            if transfer.source[0] == participant:
                account, amount = transfer.source[1], transfer.amount
                # The balance check and the debit are one statement, so the row lock covers both.
                changed = sql(
                    self.ctx,
                    conn,
                    COORDINATOR,
                    participant,
                    "UPDATE accounts SET balance = balance - %s WHERE id = %s AND balance >= %s",
                    (amount, account, amount),
                )
                delta -= amount if changed else 0
                if not changed:
                    self.refused = f"account {account} on {participant} has less than {amount}"
            if transfer.target[0] == participant:
                account = transfer.target[1]
                sql(
                    self.ctx,
                    conn,
                    COORDINATOR,
                    participant,
                    "UPDATE accounts SET balance = balance + %s WHERE id = %s",
                    (transfer.amount, account),
                )
                delta += transfer.amount
            sql(
                self.ctx,
                conn,
                COORDINATOR,
                participant,
                "INSERT INTO ledger (gtrid, delta) VALUES (%s, %s)",
                (transfer.gtrid, delta),
            )
            self.xa(participant, transfer, "END")
            self.set_state(participant, transfer, "IDLE", locks=locks)
            return "DONE"

        return self.send(participant, f"WORK {transfer.gtrid}", transfer, do)

    def prepare(self, participant, transfer):
        def do():
            if self.refused and participant == transfer.source[0]:
                # The participant votes no and forgets the branch: presumed abort needs no more.
                self.xa(participant, transfer, "ROLLBACK")
                self.set_state(participant, transfer, "ROLLED BACK")
                raise VoteNo(self.refused)
            self.xa(participant, transfer, "PREPARE")
            self.set_state(participant, transfer, "PREPARED")
            return "YES"

        return self.send(participant, f"PREPARE {transfer.gtrid}", transfer, do)

    def prepare_in_parallel(self, names, transfer):
        """Every participant prepares at once, each on its own connection: the phase costs one
        round trip and one log flush, not one per participant. Waits for every vote, then raises
        the first refusal or error."""
        with ThreadPoolExecutor(len(names), thread_name_prefix=f"run{self.ctx.run_id}-prepare") as pool:
            futures = [pool.submit(self.prepare, p, transfer) for p in names]
        errors = [f.exception() for f in futures if f.exception() is not None]
        if errors:
            raise errors[0]

    def commit(self, participant, transfer, one_phase=False):
        def do():
            self.xa(participant, transfer, "COMMIT", " ONE PHASE" if one_phase else "")
            self.set_state(participant, transfer, "COMMITTED")
            return "COMMITTED"

        return self.send(participant, f"COMMIT {transfer.gtrid}", transfer, do)

    def rollback(self, participant, transfer):
        """Best effort: an abort also reaches participants that never prepared or already refused."""
        state = self.branch.get(participant)
        if state in (None, "ROLLED BACK", "COMMITTED"):
            return

        def do():
            if state == "ACTIVE":
                self.xa(participant, transfer, "END")
            self.xa(participant, transfer, "ROLLBACK")
            self.set_state(participant, transfer, "ROLLED BACK")
            return "ROLLED BACK"

        try:
            self.send(participant, f"ROLLBACK {transfer.gtrid}", transfer, do)
        except pymysql.MySQLError:
            # Closing the connection ends an unprepared branch; a prepared one is found by
            # recovery, with no commit decision logged: either way it does not commit.
            self.drop(participant)

    def log_decision(self, transfer):
        """Forces the commit decision, with the participant list, before phase 2 (presumed abort)."""
        if self.log is None:
            return
        if self.log_conn is None:
            self.log_conn = self.log.connect(self.ctx)
        sql(
            self.ctx,
            self.log_conn,
            COORDINATOR,
            COORDINATOR,
            "INSERT INTO decisions (gtrid, decision, participants) VALUES (%s, 'commit', %s)",
            (transfer.gtrid, ",".join(transfer.participants)),
        )
        self.ctx.emit(
            "log",
            actor=COORDINATOR,
            label=f"decision logged: commit {transfer.gtrid}",
            data={"decision": "commit", "gtrid": transfer.gtrid, "participants": transfer.participants},
        )

    def run_transfer(self, transfer):
        ctx = self.ctx
        op = ctx.history.invoke(self.name, "transfer", transfer.as_dict())
        self.branch, self.refused, self.current = {}, None, transfer
        began = time.monotonic()
        names = transfer.participants
        try:
            self.checkpoint("begin", transfer)
            ctx.emit(
                "phase", actor=COORDINATOR, label=f"work {transfer.gtrid}", data={"phase": "work", **transfer.as_dict()}
            )
            # Branches are worked in participant order, so two transfers never wait for each other
            # across servers (a cycle InnoDB could not detect).
            for p in names:
                self.work(p, transfer)
                self.checkpoint("work", transfer)
            work_ms = (time.monotonic() - began) * 1000
            self.metric("work_ms", transfer, work_ms)
            if work_ms > ctx.params["timeout_ms"]:
                raise TimeoutError(f"{transfer.gtrid} took {work_ms:.0f} ms, over its {ctx.params['timeout_ms']} ms")
            if len(names) == 1:
                # One participant decides alone: no prepare, no log, XA COMMIT ... ONE PHASE.
                if self.refused:
                    raise VoteNo(self.refused)
                self.commit(names[0], transfer, one_phase=True)
                ctx.history.ok(op, transfer.as_dict())
                return "committed"
            ctx.emit("phase", actor=COORDINATOR, label=f"prepare {transfer.gtrid}", data={"phase": "prepare"})
            t = time.monotonic()
            if ctx.params.get("parallel_prepare"):
                self.prepare_in_parallel(names, transfer)
                self.checkpoint("prepare", transfer)
            else:
                for p in names:
                    self.prepare(p, transfer)
                    self.checkpoint("prepare", transfer)
            self.metric("prepare_ms", transfer, (time.monotonic() - t) * 1000)
        except (VoteNo, TimeoutError, pymysql.MySQLError) as exc:
            ctx.emit("phase", actor=COORDINATOR, label=f"abort {transfer.gtrid}", data={"phase": "abort"})
            for p in names:
                self.rollback(p, transfer)
            ctx.history.fail(op, transfer.as_dict(), error=str(exc))
            return "aborted"
        except CoordinatorCrashed as crash:
            ctx.history.info(op, error=f"the coordinator crashed ({crash}) before deciding")
            raise
        try:
            self.checkpoint("after-prepare", transfer)
            self.log_decision(transfer)
            self.checkpoint("after-decision", transfer)
            ctx.emit("phase", actor=COORDINATOR, label=f"commit {transfer.gtrid}", data={"phase": "commit"})
            t = time.monotonic()
            for i, p in enumerate(names):
                if i == 1:
                    self.checkpoint("mid-commit", transfer)
                self.commit(p, transfer)
            self.metric("commit_ms", transfer, (time.monotonic() - t) * 1000)
        except CoordinatorCrashed as crash:
            # Whether the transfer commits is now up to recovery: it is unknown to the client.
            ctx.history.info(op, error=f"the coordinator crashed ({crash}) before answering")
            raise
        except pymysql.MySQLError as exc:
            # The decision is logged: recovery finishes phase 2 where this failed.
            for p in names:
                if self.branch.get(p) != "COMMITTED":
                    self.drop(p)
            ctx.history.info(op, error=f"phase 2 unfinished, left to recovery: {exc}")
            return "in doubt"
        ctx.history.ok(op, transfer.as_dict())
        return "committed"

    def metric(self, name, transfer, ms):
        self.ctx.emit(
            "metric",
            actor=COORDINATOR,
            label=name,
            data={"name": "phase_ms", "series": name.removesuffix("_ms"), "x": transfer.n, "y": round(ms, 3)},
        )


class ParticipantKiller(Coordinator):
    """A coordinator whose participant's server is SIGKILLed after the prepares and restarted
    before phase 2 (dedicated nodes only)."""

    def checkpoint(self, point, transfer):
        super().checkpoint(point, transfer)
        if point == "after-decision" and transfer.n == self.crash.transfer and not self.crash.victim:
            self.crash.victim = transfer
            target = transfer.participants[-1]
            self.ctx.fault("kill", target)
            self.ctx.step()
            self.ctx.fault("restart", target)
            # The coordinator's connection to it died with the process: its COMMIT fails, and
            # phase 2 is left to recovery, which finds the branch still PREPARED.


# Recovery -----------------------------------------------------------------------------------------
def in_doubt(ctx, participant, rows):
    """This run's branches of `participant` among XA RECOVER's rows (a shared server lists every
    run's): [(gtrid, bqual)]."""
    prefix = f"r{ctx.run_id}-"
    found = []
    for _format, glen, blen, data in rows:
        data = data.decode() if isinstance(data, bytes) else data
        gtrid, bqual = data[:glen], data[glen : glen + blen]
        if gtrid.startswith(prefix) and bqual == participant.name:
            found.append((gtrid, bqual))
    return found


def recover(ctx, participants, log, naive=False, again=False):
    """A fresh coordinator resolves every in-doubt branch: commit when the log holds a commit
    decision, roll back otherwise (presumed abort); with `naive`, there is no log and it rolls
    back whatever it finds. Returns the actions taken; a second call finds nothing to do."""
    actor = "recovery"
    if again:
        ctx.emit("phase", actor=actor, label="recovery again: it must change nothing", data={"phase": "recovery"})
    else:
        ctx.emit("node", actor=COORDINATOR, label="coordinator restarts and recovers", data={"state": "up"})
        ctx.emit("phase", actor=actor, label="recovery", data={"phase": "recovery"})
    decisions = {}
    if log is not None and not naive:
        conn = log.connect(ctx)
        rows = sql(ctx, conn, actor, COORDINATOR, "SELECT gtrid, decision FROM decisions")
        decisions = dict(rows)
        conn.close()
        ctx.emit(
            "log",
            actor=actor,
            label=f"the decision log holds {len(decisions)} records; no record means abort",
            data={"decisions": decisions},
        )
    actions = []
    for p in participants:
        conn = p.connect(ctx)
        request = ctx.emit("msg", actor=actor, to=p.name, label="XA RECOVER")
        branches = in_doubt(ctx, p, sql(ctx, conn, actor, p.name, "XA RECOVER"))
        ctx.emit(
            "msg",
            actor=p.name,
            to=actor,
            label=f"{len(branches)} in doubt",
            data={"reply_to": request["seq"], "xids": [xid(*b) for b in branches]},
        )
        for gtrid, bqual in branches:
            ctx.step()
            verb = "COMMIT" if decisions.get(gtrid) == "commit" else "ROLLBACK"
            request = ctx.emit("msg", actor=actor, to=p.name, label=f"{verb} {gtrid}", data={"gtrid": gtrid})
            sql(ctx, conn, actor, p.name, f"XA {verb} %s, %s", (gtrid, bqual))
            state = "COMMITTED" if verb == "COMMIT" else "ROLLED BACK"
            ctx.emit("msg", actor=p.name, to=actor, label=state, data={"reply_to": request["seq"]})
            ctx.emit(
                "state",
                actor=p.name,
                label=f"{gtrid} {state}",
                data={"state": state, "xid": xid(gtrid, bqual), "gtrid": gtrid, "by": actor},
            )
            actions.append({"participant": p.name, "gtrid": gtrid, "action": verb.lower()})
        conn.close()
    ctx.emit("log", actor=actor, label=f"recovery resolved {len(actions)} branches", data={"actions": actions})
    return actions


def snapshot(ctx, participants):
    """Balances and ledgers as the servers hold them now."""
    state = {}
    for p in participants:
        conn = p.connect(ctx)
        with conn.cursor() as cur:
            cur.execute("SELECT id, balance FROM accounts ORDER BY id")
            balances = [list(r) for r in cur.fetchall()]
            cur.execute("SELECT gtrid, delta FROM ledger ORDER BY gtrid")
            ledger = [list(r) for r in cur.fetchall()]
        conn.close()
        state[p.name] = {"balances": balances, "ledger": ledger}
    return state


# Blocking -----------------------------------------------------------------------------------------
def client_locks_account(ctx, participant, account):
    """A bank client locks one account row: behind an in-doubt branch it waits, then gets error 1205."""
    client = "client"
    conn = participant.connect(ctx)
    ctx.emit("node", actor=client, label="a bank client", data={"state": "up", "role": "client"})
    sql(ctx, conn, client, participant.name, "SET SESSION innodb_lock_wait_timeout = 1")
    sql(ctx, conn, client, participant.name, "BEGIN")
    wants = {"participant": participant.name, "lock": f"accounts id={account}"}
    ctx.emit("state", actor=client, label=f"waiting for account {account}", data={"state": "WAITING", **wants})
    began = time.monotonic()
    error = None
    try:
        sql(ctx, conn, client, participant.name, "SELECT balance FROM accounts WHERE id = %s FOR UPDATE", (account,))
    except pymysql.MySQLError as exc:
        error = exc.args[0]
    blocked = round((time.monotonic() - began) * 1000, 3)
    sql(ctx, conn, client, participant.name, "ROLLBACK")  # the client only wanted to see the lock
    conn.close()
    ctx.emit(
        "metric",
        actor=client,
        label="blocked_ms",
        data={"name": "blocked_ms", "series": participant.name, "x": account, "y": blocked},
    )
    if error:
        ctx.emit(
            "state",
            actor=client,
            label=f"gave up: error {error}",
            data={"state": "GAVE UP", "error": error, "blocked_ms": blocked, **wants},
        )
    else:
        ctx.emit(
            "state",
            actor=client,
            label=f"got account {account}",
            data={"state": "DONE", "blocked_ms": blocked, **wants},
        )
    return {"participant": participant.name, "account": account, "error": error, "blocked_ms": blocked}


# The scenarios' engines ---------------------------------------------------------------------------
def begin(ctx, participants, log):
    ctx.emit("node", actor=COORDINATOR, label="coordinator up", data={"state": "up", "role": "coordinator"})
    for p in participants:
        ctx.emit("node", actor=p.name, label=f"{p.name} up", data={"state": "up", "role": "participant", "db": p.db})
    setup(ctx, participants, log)
    transfers = plan(ctx, participants)
    ctx.step()
    return transfers


def summary(ctx, participants, log, transfers, outcomes):
    """What the checkers need to find the real rows again."""
    return {
        "participants": [p.__dict__ for p in participants],
        "log": log.__dict__ if log else None,
        "total": ctx.params["balance"] * ctx.params["accounts"] * len(participants),
        "transfers": [t.as_dict() for t in transfers],
        "outcomes": outcomes,
    }


def two_phase_commit(ctx):
    participants = participants_of(ctx)
    with_log = not ctx.params.get("no_log")
    log = log_location(participants) if with_log else None
    crash = Crash(ctx.params.get("crash_point") or None, ctx.params.get("crash_transfer", 1))
    kind = ParticipantKiller if crash.point == "participant-kill" else Coordinator
    if crash.point == "participant-kill":
        crash.point = None  # the coordinator itself does not crash

    ctx.on_fault("crash", crash.on_fault)
    transfers = begin(ctx, participants, log)
    queue = list(transfers)
    lock = threading.Lock()
    outcomes = {}

    def client(i):
        coordinator = kind(ctx, f"client{i}", participants, log, crash)
        try:
            while True:
                with lock:
                    if not queue:
                        return
                    transfer = queue.pop(0)
                outcomes[transfer.gtrid] = coordinator.run_transfer(transfer)
        except CoordinatorCrashed:
            pass  # this client's coordinator is gone; recovery takes over below
        finally:
            coordinator.abandon()

    with ThreadPoolExecutor(ctx.params["concurrency"], thread_name_prefix=f"run{ctx.run_id}-client") as pool:
        for f in [pool.submit(client, i) for i in range(1, ctx.params["concurrency"] + 1)]:
            f.result()
    crash.over = True

    result = summary(ctx, participants, log, transfers, outcomes)
    needs_recovery = crash.fired.is_set() or any(o == "in doubt" for o in outcomes.values())
    if crash.fired.is_set():
        ctx.emit("node", actor=COORDINATOR, label="coordinator crashed", data={"state": "down"})
        victim = crash.victim
        # A client shows the blocking when the victim's debited branch is left PREPARED, in doubt.
        if (
            victim
            and (crash.point == "after-prepare" or crash.by_instructor)
            and (crash.branches.get(victim.source[0]) == "PREPARED")
        ):
            source = next(p for p in participants if p.name == victim.source[0])
            result["blocked"] = client_locks_account(ctx, source, victim.source[1])
        ctx.step()
    if needs_recovery:
        result["recovery"] = recover(ctx, participants, log, naive=not with_log)
        before = snapshot(ctx, participants)
        result["recovery_again"] = recover(ctx, participants, log, naive=not with_log, again=True)
        result["unchanged_by_second_recovery"] = snapshot(ctx, participants) == before
        if "blocked" in result:
            blocked = result["blocked"]
            source = next(p for p in participants if p.name == blocked["participant"])
            result["unblocked"] = client_locks_account(ctx, source, blocked["account"])
    return result


# Chaos --------------------------------------------------------------------------------------------
CHAOS_POINTS = ("work", "prepare", "after-prepare", "after-decision", "mid-commit")
CHAOS_FAULTS = ("crash", "kill", "drop")


def chaos_schedule(ctx, transfers):
    """{transfer n: (fault, point, participant)}, drawn from the seeded rng: a seed fixes it."""
    schedule = {}
    for t in transfers:
        if ctx.rng.randrange(100) < ctx.params["fault_percent"]:
            points = CHAOS_POINTS if len(t.participants) > 1 else ("work",)
            schedule[t.n] = (ctx.rng.choice(CHAOS_FAULTS), ctx.rng.choice(points), ctx.rng.choice(t.participants))
    return schedule


class ChaosCoordinator(Coordinator):
    """A coordinator that meets the schedule's faults: it crashes, a participant's server is
    SIGKILLed and restarted, or its connection to a participant is killed on the server."""

    def __init__(self, *args, schedule, **kwargs):
        super().__init__(*args, **kwargs)
        self.schedule = schedule
        self.faulted = False

    def checkpoint(self, point, transfer):
        super().checkpoint(point, transfer)
        planned = self.schedule.get(transfer.n)
        if not planned or planned[1] != point or self.faulted:
            return
        fault, _, target = planned
        self.faulted = True
        if fault == "crash":
            self.ctx.emit("log", actor=COORDINATOR, label=f"coordinator crashes at {point} of {transfer.gtrid}")
            raise CoordinatorCrashed(point)
        if fault == "kill":
            self.ctx.fault("kill", target)
            self.ctx.step()
            self.ctx.fault("restart", target)
        elif fault == "drop" and target in self.conns:
            thread_id = self.conns[target].thread_id()
            killer = self.participants[target].connect(self.ctx)
            sql(self.ctx, killer, "chaos", target, "KILL CONNECTION %s", (thread_id,))
            killer.close()
            self.ctx.emit(
                "fault",
                actor="chaos",
                to=target,
                label=f"drop the coordinator's connection to {target}",
                data={"kind": "drop-connection", "connection": thread_id},
            )


def chaos(ctx):
    """Transfers one at a time under a seeded schedule of faults; after each fault a fresh
    coordinator recovers from the log and XA RECOVER before the next transfer."""
    participants = participants_of(ctx)
    log = log_location(participants)
    transfers = begin(ctx, participants, log)
    schedule = chaos_schedule(ctx, transfers)
    ctx.emit(
        "log",
        actor="chaos",
        label=f"{len(schedule)} faults scheduled",
        data={"schedule": {t: list(f) for t, f in schedule.items()}},
    )
    outcomes, recoveries = {}, []
    # An instructor's crash meets whichever transfer's coordinator takes the next step.
    button = Crash()
    ctx.on_fault("crash", button.on_fault)
    for transfer in transfers:
        crash = Crash(requested=button.requested)
        coordinator = ChaosCoordinator(ctx, "client1", participants, log, crash, schedule=schedule)
        try:
            outcomes[transfer.gtrid] = coordinator.run_transfer(transfer)
        except CoordinatorCrashed:
            outcomes[transfer.gtrid] = "crashed"
            ctx.emit("node", actor=COORDINATOR, label="coordinator crashed", data={"state": "down"})
        finally:
            coordinator.abandon()
        if coordinator.faulted or outcomes[transfer.gtrid] in ("in doubt", "crashed"):
            recoveries.append({"after": transfer.gtrid, "actions": recover(ctx, participants, log)})
    button.over = True
    result = summary(ctx, participants, log, transfers, outcomes)
    result["schedule"] = {t: list(f) for t, f in schedule.items()}
    result["recoveries"] = recoveries
    return result
