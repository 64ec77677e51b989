"""The two-phase commit coordinator: one per client thread, running transfers as XA global
transactions, and where a scenario (or an instructor's button) makes it crash."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import pymysql

from apps.runs.engine_api import Context, describe_error, timed

from .bank import COORDINATOR, Participant, Transfer
from .xa import sql, xid

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


class Coordinator:
    """Runs transfers one after another over its own connections, one per participant."""

    def __init__(self, ctx: Context, name: str, participants: list[Participant], log: Participant | None, crash: Crash):
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
        self.pool = None  # the threads that send parallel prepares, started with the first one

    # connections --------------------------------------------------------------------------------
    def conn(self, name):
        if name not in self.conns or not self.conns[name].open:
            conn = self.participants[name].connect(self.ctx)
            sql(self.ctx, conn, COORDINATOR, name, "SET SESSION innodb_lock_wait_timeout = %s", (LOCK_WAIT_S,))
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
        if self.pool is not None:
            self.pool.shutdown()
            self.pool = None

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
                data={"reply_to": request["seq"], "error": describe_error(exc)},
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
        round trip and one log flush, not one per participant. The first prepares on this thread,
        the others on the coordinator's pool. Waits for every vote, then raises the first refusal
        or error."""
        if self.pool is None:
            # Kept for the coordinator's life: starting threads for every transfer costs more than
            # the overlapping prepares save.
            workers = max(1, len(self.participants) - 1)
            self.pool = ThreadPoolExecutor(workers, thread_name_prefix=f"run{self.ctx.run_id}-{self.name}-prepare")
        first, *rest = names
        others = [self.pool.submit(self.prepare, p, transfer) for p in rest]
        errors = []
        try:
            self.prepare(first, transfer)
        except Exception as exc:  # noqa: BLE001 - raised below, once every vote is in
            errors.append(exc)
        wait(others)
        errors += [f.exception() for f in others if f.exception() is not None]
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
            data={
                "name": "phase_ms",
                "series": name.removesuffix("_ms"),
                "x": transfer.n,
                "y": round(ms, 3),
                "x_label": "transfer",
                "y_label": "phase time (ms)",
            },
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
