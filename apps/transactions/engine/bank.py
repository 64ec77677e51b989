"""The bank the transactions run on: participants holding accounts, the transfers between them,
and a bank client that needs one account row."""

import random
import time
from dataclasses import dataclass
from functools import cached_property, partial

import pymysql

from apps.runs.engine_api import Context

from .xa import sql

COORDINATOR = "coordinator"
OPEN_ACCOUNTS = "INSERT INTO accounts (id, balance) VALUES (%s, %s)"


@dataclass(frozen=True)
class Participant:
    """One resource manager: its name (also the XA bqual), its database and, on dedicated nodes,
    its server."""

    name: str
    db: str
    node: str | None = None

    def connect(self, ctx: Context, **options):
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

    @cached_property
    def participants(self) -> list[str]:
        return sorted({self.source[0], self.target[0]})

    def as_dict(self) -> dict:
        return {
            "n": self.n,
            "gtrid": self.gtrid,
            "from": list(self.source),
            "to": list(self.target),
            "amount": self.amount,
            "participants": self.participants,
        }


def participants_of(ctx: Context) -> list[Participant]:
    count = ctx.params["participants"]
    if ctx.nodes.roles.get("mariadb", "mariadb") != "mariadb":  # dedicated: one server per participant
        return [Participant(f"db{i}", "bank", f"db{i}") for i in range(1, count + 1)]
    return [Participant(f"p{i}", f"p{i}") for i in range(1, count + 1)]


def log_location(participants: list[Participant]) -> Participant:
    """The coordinator's own database: on the first server of a cluster, else on the shared node."""
    return Participant(COORDINATOR, "coord", participants[0].node)


def setup(ctx: Context, participants: list[Participant], log: Participant | None) -> None:
    accounts, balance = ctx.params["accounts"], ctx.params["balance"]
    for p in participants:
        conn = p.connect(ctx)
        sql(ctx, conn, COORDINATOR, p.name, "CREATE TABLE accounts (id INT PRIMARY KEY, balance INT NOT NULL)")
        # One ledger row per transfer, written inside the XA branch: the checker reads which
        # branches committed from it.
        sql(ctx, conn, COORDINATOR, p.name, "CREATE TABLE ledger (gtrid VARCHAR(64) PRIMARY KEY, delta INT NOT NULL)")
        with conn.cursor() as cur:
            ctx.cmd(
                p.name,
                f"{OPEN_ACCOUNTS} × {accounts}",
                partial(cur.executemany, OPEN_ACCOUNTS, [(a, balance) for a in range(1, accounts + 1)]),
                actor=COORDINATOR,
            )
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


def plan(params: dict, rng: random.Random, run_id: int, participants: list[Participant]) -> list[Transfer]:
    """The transfers, drawn from the seeded rng before any thread starts, so a seed fixes them
    (and a checker draws them again from the seed)."""
    names = [p.name for p in participants]
    transfers = []
    for n in range(1, params["transfers"] + 1):
        if rng.randrange(100) < params.get("local_percent", 0):
            src = dst = rng.choice(names)  # both accounts on one participant
        else:
            src, dst = rng.sample(names, 2)
        amount = params["amount"]
        if params.get("overdraw") and n == 1:
            amount = params["balance"] * 10  # more than the source account holds: it votes no
        transfers.append(
            Transfer(
                n,
                f"r{run_id}-t{n}",
                (src, rng.randint(1, params["accounts"])),
                (dst, rng.randint(1, params["accounts"])),
                amount,
            )
        )
    return transfers


def snapshot(ctx: Context, participants: list[Participant], actor: str = "recovery") -> dict:
    """Balances and ledgers as the servers hold them now."""
    state = {}
    for p in participants:
        conn = p.connect(ctx)
        balances = [list(r) for r in sql(ctx, conn, actor, p.name, "SELECT id, balance FROM accounts ORDER BY id")]
        ledger = [list(r) for r in sql(ctx, conn, actor, p.name, "SELECT gtrid, delta FROM ledger ORDER BY gtrid")]
        conn.close()
        state[p.name] = {"balances": balances, "ledger": ledger}
    return state


def client_locks_account(ctx: Context, participant: Participant, account: int) -> dict:
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
        data={
            "name": "blocked_ms",
            "series": participant.name,
            "x": account,
            "y": blocked,
            "x_label": "account",
            "y_label": "time blocked (ms)",
        },
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


def begin(ctx: Context, participants: list[Participant], log: Participant | None) -> list[Transfer]:
    """The bank opens: its nodes appear, its tables are filled, its transfers drawn."""
    ctx.emit("node", actor=COORDINATOR, label="coordinator up", data={"state": "up", "role": "coordinator"})
    for p in participants:
        ctx.emit("node", actor=p.name, label=f"{p.name} up", data={"state": "up", "role": "participant", "db": p.db})
    setup(ctx, participants, log)
    # The plan takes the rng's first draws: the checkers draw the same transfers from the seed.
    transfers = plan(ctx.params, ctx.rng, ctx.run_id, participants)
    ctx.step()
    return transfers


def summary(ctx: Context, participants: list[Participant], log: Participant | None, transfers, outcomes) -> dict:
    """What the checkers need to find the real rows again."""
    return {
        "participants": [p.__dict__ for p in participants],
        "log": log.__dict__ if log else None,
        "total": ctx.params["balance"] * ctx.params["accounts"] * len(participants),
        "transfers": [t.as_dict() for t in transfers],
        "outcomes": outcomes,
    }


def not_started(ctx: Context, victim: Transfer | None, left: list[Transfer]) -> list[str]:
    """Says why a run ends before its last transfers: the coordinator crashed, and no new one takes
    over (recovery resolves what the crash left, then the run ends). The transfers never started."""
    if not left:
        return []
    during = f" during transfer {victim.n} ({victim.gtrid})" if victim else ""
    count = f"{len(left)} transfer{'s were' if len(left) > 1 else ' was'}"
    ctx.emit(
        "log",
        actor=COORDINATOR,
        label=f"the coordinator crashed{during}; the remaining {count} not started: recovery ends the run",
        data={
            "type": "not_started",
            "crashed_during": victim.gtrid if victim else None,
            "transfers": [t.gtrid for t in left],
        },
    )
    return [t.gtrid for t in left]
