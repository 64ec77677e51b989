"""Three-phase commit (CanCommit, PreCommit, DoCommit) over MariaDB XA, with participant agents
that decide on their own when the coordinator goes quiet: abort while waiting for PreCommit, commit
while waiting for DoCommit. No blocking after a coordinator crash; but a partition during
pre-commit can leave one side committed and the other aborted.

The coordinator and the participant agents talk through `Network`, a message layer inside the
engine; a "partition" is simulated there: it drops the messages to and from the cut-off
participant, while its MariaDB server and connections stay up (no proxy or network is involved).
"""

import queue
import threading

import pymysql

from apps.runs.engine_api import Context

from .bank import COORDINATOR, begin, client_locks_account, not_started, participants_of, summary
from .xa import sql, xid

# Said on the fault event, so the command log tells it apart from a real (proxy) partition.
SIMULATED = {"effect": "simulated in the engine: the 3PC messages to and from it are dropped"}


class Network:
    """The 3PC messages between the coordinator and the agents: one inbox each, and the set of
    participants cut off by a simulated partition."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.inboxes = {}
        self.cut = set()

    def send(self, frm, to, label, transfer, reply_to=None):
        data = {"gtrid": transfer.gtrid if transfer else None}
        if reply_to:
            data["reply_to"] = reply_to
        dropped = frm in self.cut or to in self.cut
        if dropped:
            data["dropped"] = True
        event = self.ctx.emit("msg", actor=frm, to=to, label=label + (" (lost)" if dropped else ""), data=data)
        if not dropped:
            self.inboxes[to].put((label, transfer, event["seq"], frm))
        return event

    def partition(self, node):
        self.cut.add(node)
        self.ctx.emit(
            "fault", actor="instructor", to=node, label=f"partition {node}", data={"kind": "partition", **SIMULATED}
        )

    def heal(self, node):
        self.cut.discard(node)
        self.ctx.emit("fault", actor="instructor", to=node, label=f"heal {node}", data={"kind": "heal"})

    def buttons(self, names):
        """The run page's partition and heal buttons: the context records the fault event."""

        def check(target):
            if target not in names:
                raise ValueError(f"{target!r} is not a participant (participants: {', '.join(names)})")

        def partition(target, **options):
            check(target)
            self.cut.add(target)
            return SIMULATED

        def heal(target, **options):
            check(target)
            self.cut.discard(target)

        self.ctx.on_fault("partition", partition)
        self.ctx.on_fault("heal", heal)


class CrashButton:
    """The run page's "crash the coordinator now": it crashes at its next step."""

    def __init__(self):
        self.requested = threading.Event()
        self.over = False

    def __call__(self, target, **options):
        if target != COORDINATOR:
            raise ValueError(f"only the {COORDINATOR} can crash, not {target!r}")
        if self.over:
            raise ValueError("the coordinator is not running transfers any more")
        self.requested.set()


class Agent(threading.Thread):
    """A participant's own process: runs its branch and, on a timeout, decides by itself."""

    def __init__(self, ctx, participant, network, timeout_s):
        super().__init__(name=f"run{ctx.run_id}-{participant.name}", daemon=True)
        self.ctx, self.p, self.net, self.timeout_s = ctx, participant, network, timeout_s
        self.inbox = network.inboxes[participant.name] = queue.Queue()
        self.idle = threading.Event()
        self.idle.set()
        self.error = None

    def state(self, transfer, state, step):
        self.ctx.emit(
            "state",
            actor=self.p.name,
            label=f"{transfer.gtrid} {state} ({step})",
            data={"state": state, "xid": xid(transfer.gtrid, self.p.name), "gtrid": transfer.gtrid, "3pc": step},
        )

    def xa(self, conn, verb, transfer):
        sql(self.ctx, conn, self.p.name, self.p.name, f"XA {verb} %s, %s", (transfer.gtrid, self.p.name))

    def run(self):
        conn = self.p.connect(self.ctx)
        try:
            while True:
                label, transfer, seq, frm = self.inbox.get()
                if label == "STOP":
                    return
                if label == "CANCOMMIT":
                    self.idle.clear()
                    try:
                        self.branch(conn, transfer, seq)
                    finally:
                        self.idle.set()
        except Exception as exc:  # noqa: BLE001 - reported by the engine after the run
            self.error = exc
        finally:
            conn.close()

    def wait(self, transfer, expected):
        """The next message about this transfer, or None after the timeout. The timeout runs on
        the run's active clock: while a viewer holds the run (paced or paused) nobody times out."""
        deadline = self.ctx.active_clock + self.timeout_s
        while (remaining := deadline - self.ctx.active_clock) > 0:
            try:
                return self.inbox.get(timeout=min(remaining, 0.05))
            except queue.Empty:
                continue
        self.ctx.emit(
            "log", actor=self.p.name, label=f"no {expected} within {self.timeout_s * 1000:.0f} ms: deciding alone"
        )
        return None

    def branch(self, conn, transfer, seq):
        name = self.p.name
        self.xa(conn, "START", transfer)
        self.state(transfer, "ACTIVE", "working")
        delta = 0
        if transfer.source[0] == name:
            delta -= transfer.amount
            sql(
                self.ctx,
                conn,
                name,
                name,
                "UPDATE accounts SET balance = balance - %s WHERE id = %s",
                (transfer.amount, transfer.source[1]),
            )
        if transfer.target[0] == name:
            delta += transfer.amount
            sql(
                self.ctx,
                conn,
                name,
                name,
                "UPDATE accounts SET balance = balance + %s WHERE id = %s",
                (transfer.amount, transfer.target[1]),
            )
        sql(self.ctx, conn, name, name, "INSERT INTO ledger (gtrid, delta) VALUES (%s, %s)", (transfer.gtrid, delta))
        self.xa(conn, "END", transfer)
        # A yes vote must survive this process: the branch is prepared before the reply.
        self.xa(conn, "PREPARE", transfer)
        self.state(transfer, "PREPARED", "uncertain")
        self.net.send(name, COORDINATOR, "YES", transfer, reply_to=seq)
        msg = self.wait(transfer, "PRECOMMIT")
        if msg is None or msg[0] == "ABORT":
            # Before pre-commit, nobody can have committed: aborting is safe (without partitions).
            self.xa(conn, "ROLLBACK", transfer)
            self.state(transfer, "ROLLED BACK", "aborted" if msg else "aborted on timeout")
            return
        self.state(transfer, "PREPARED", "pre-committed")
        self.net.send(name, COORDINATOR, "ACK", transfer, reply_to=msg[2])
        msg = self.wait(transfer, "DOCOMMIT")
        if msg is not None and msg[0] == "ABORT":
            self.xa(conn, "ROLLBACK", transfer)
            self.state(transfer, "ROLLED BACK", "aborted")
            return
        # After pre-commit, everyone voted yes: committing is safe (without partitions).
        self.xa(conn, "COMMIT", transfer)
        self.state(transfer, "COMMITTED", "committed" if msg else "committed on timeout")


def replies(ctx, coordinator_inbox, expected, names, timeout_s):
    """The participants that answered `expected` within the timeout."""
    got = set()
    try:
        while got != set(names):
            label, transfer, seq, frm = coordinator_inbox.get(timeout=timeout_s)
            if label == expected:
                got.add(frm)
    except queue.Empty:
        ctx.emit("log", actor=COORDINATOR, label=f"{expected} missing from {', '.join(sorted(set(names) - got))}")
    return got


def three_phase_commit(ctx: Context) -> dict:
    participants = participants_of(ctx)
    transfers = begin(ctx, participants, None)
    net = Network(ctx)
    coordinator_inbox = net.inboxes[COORDINATOR] = queue.Queue()
    timeout_s = ctx.params["agent_timeout_ms"] / 1000
    agents = {p.name: Agent(ctx, p, net, timeout_s) for p in participants}
    for agent in agents.values():
        agent.start()
    fault = ctx.params["fault"]
    net.buttons([p.name for p in participants])
    button = CrashButton()
    ctx.on_fault("crash", button)
    outcomes, crashed = {}, False
    result = {}
    try:
        for transfer in transfers:
            names = transfer.participants
            faulty = transfer.n == ctx.params.get("crash_transfer", 1) and fault != "none"
            op = ctx.history.invoke("client1", "transfer", transfer.as_dict())
            ctx.emit("phase", actor=COORDINATOR, label=f"cancommit {transfer.gtrid}", data={"phase": "cancommit"})
            for p in names:
                net.send(COORDINATOR, p, "CANCOMMIT", transfer)
            ctx.step()
            votes = replies(ctx, coordinator_inbox, "YES", names, timeout_s * 2)
            if votes != set(names):
                for p in names:
                    net.send(COORDINATOR, p, "ABORT", transfer)
                ctx.history.fail(op, transfer.as_dict(), error="a participant did not vote yes")
                outcomes[transfer.gtrid] = "aborted"
                continue
            ctx.emit("phase", actor=COORDINATOR, label=f"precommit {transfer.gtrid}", data={"phase": "precommit"})
            for i, p in enumerate(names):
                net.send(COORDINATOR, p, "PRECOMMIT", transfer)
                if faulty and fault == "partition" and i == 0:
                    # The first participant got its PreCommit; now it is cut off from everyone.
                    net.partition(p)
                ctx.step()
            if (faulty and fault == "coordinator-crash") or button.requested.is_set():
                ctx.emit("log", actor=COORDINATOR, label=f"coordinator crashes before DOCOMMIT of {transfer.gtrid}")
                ctx.emit("node", actor=COORDINATOR, label="coordinator crashed", data={"state": "down"})
                ctx.history.info(op, error="the coordinator crashed after pre-commit")
                crashed = True
                break
            # Well inside the agents' timeout, so an ABORT reaches them before they decide alone.
            acks = replies(ctx, coordinator_inbox, "ACK", names, timeout_s / 4)
            if acks != set(names):
                ctx.emit("phase", actor=COORDINATOR, label=f"abort {transfer.gtrid}", data={"phase": "abort"})
                for p in names:
                    net.send(COORDINATOR, p, "ABORT", transfer)
                ctx.history.fail(op, transfer.as_dict(), error=f"no ACK from {', '.join(sorted(set(names) - acks))}")
                outcomes[transfer.gtrid] = "aborted"
            else:
                ctx.emit("phase", actor=COORDINATOR, label=f"docommit {transfer.gtrid}", data={"phase": "docommit"})
                for p in names:
                    net.send(COORDINATOR, p, "DOCOMMIT", transfer)
                ctx.history.ok(op, transfer.as_dict())
                outcomes[transfer.gtrid] = "committed"
            for agent in agents.values():
                agent.idle.wait(timeout_s * 4)  # the agents finish this transfer, by message or by timeout
            ctx.step()
            if faulty and fault == "partition":
                net.heal(names[0])
        for agent in agents.values():
            agent.idle.wait(timeout_s * 4)
        button.over = True
        if crashed:
            # No blocking: the agents decided without the coordinator, so the rows are free.
            victim = transfers[len(outcomes)]
            result["not_started"] = not_started(ctx, victim, transfers[len(outcomes) + 1 :])
            source = next(p for p in participants if p.name == victim.source[0])
            result["after_crash"] = client_locks_account(ctx, source, victim.source[1])
    finally:
        for agent in agents.values():
            agent.inbox.put(("STOP", None, 0, COORDINATOR))
        for agent in agents.values():
            agent.join(timeout_s * 4 + 5)
    errors = [f"{a.p.name}: {a.error}" for a in agents.values() if a.error]
    if errors:
        raise pymysql.MySQLError("; ".join(errors))
    result.update(summary(ctx, participants, None, transfers, outcomes))
    return result
