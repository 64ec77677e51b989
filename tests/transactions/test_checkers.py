"""Each transactions checker fed real broken data on the real MariaDB: a branch committed on one
participant only, money created, a PREPARED branch left behind, an acknowledged transfer that is
not in the data. Every checker must see it from the servers, whatever the engine's result says."""

import random
from dataclasses import dataclass

import pytest

from apps.runs.context import RunContext
from apps.runs.nodes import SharedNodes
from apps.runs.recorder import ListSink, Recorder
from apps.runs.registry import get_scenario
from apps.transactions import checkers
from apps.transactions.engine.bank import Participant, Transfer, begin, log_location, participants_of
from apps.transactions.engine.xa import in_doubt
from tests.conftest import lab_node_urls

# What an engine that believed everything went well would report: checkers must not rely on it.
ALL_WELL = {"transfers": [], "outcomes": {}, "total": 0, "participants": []}


@dataclass
class Bank:
    ctx: RunContext
    participants: dict[str, Participant]
    transfers: list[Transfer]


@pytest.fixture
def bank():
    """A run's bank as the engine opens it (two participants, two planned transfers between them),
    with no transfer made yet."""
    scenario = get_scenario("transactions", "2pc-happy")
    params, errors = scenario.validate({"participants": 2, "transfers": 2, "local_percent": 0, "concurrency": 1})
    assert not errors
    run_id = random.randrange(10**8, 10**9)
    recorder = Recorder(run_id, [ListSink()])
    nodes = SharedNodes(run_id, **lab_node_urls())
    ctx = RunContext(run_id=run_id, params=params, seed=7, recorder=recorder, nodes=nodes)
    participants = participants_of(ctx)
    transfers = begin(ctx, participants, log_location(participants))
    yield Bank(ctx, {p.name: p for p in participants}, transfers)
    for p in participants:  # a branch left PREPARED would hold its locks through DROP DATABASE
        conn = p.connect(ctx)
        with conn.cursor() as cur:
            cur.execute("XA RECOVER")
            for xid in in_doubt(run_id, p.name, cur.fetchall()):
                cur.execute("XA ROLLBACK %s, %s", xid)
        conn.close()
    nodes.cleanup()
    recorder.close()


def branch(bank, transfer, participant, *, commit=True):
    """The participant's XA branch of the transfer, on a connection of its own: its account changed
    and its ledger row written, then prepared and (unless told otherwise) committed."""
    delta = -transfer.amount if transfer.source[0] == participant else transfer.amount
    account = transfer.source[1] if delta < 0 else transfer.target[1]
    xid = (transfer.gtrid, participant)
    conn = bank.participants[participant].connect(bank.ctx)
    with conn.cursor() as cur:
        cur.execute("XA START %s, %s", xid)
        cur.execute("UPDATE accounts SET balance = balance + %s WHERE id = %s", (delta, account))
        cur.execute("INSERT INTO ledger (gtrid, delta) VALUES (%s, %s)", (transfer.gtrid, delta))
        cur.execute("XA END %s, %s", xid)
        cur.execute("XA PREPARE %s, %s", xid)
        if commit:
            cur.execute("XA COMMIT %s, %s", xid)
    conn.close()  # a PREPARED branch outlives its connection


def committed_everywhere(bank, transfer):
    for p in transfer.participants:
        branch(bank, transfer, p)


def acknowledge(bank, transfer):
    """The history says the client was told the transfer committed."""
    op = bank.ctx.history.invoke("client1", "transfer", transfer.as_dict())
    bank.ctx.history.ok(op, transfer.as_dict())


def test_every_checker_holds_when_the_transfers_committed_everywhere(bank):
    for t in bank.transfers:
        committed_everywhere(bank, t)
        acknowledge(bank, t)
    for check in (checkers.atomicity, checkers.conservation, checkers.nothing_in_doubt, checkers.durability):
        assert check(bank.ctx, ALL_WELL).held is True, check.__name__
    assert checkers.atomicity(bank.ctx, ALL_WELL).evidence["committed"] == 2


def test_atomicity_catches_a_transfer_committed_on_one_participant_only(bank):
    first, second = bank.transfers
    committed_everywhere(bank, second)
    source, target = first.source[0], first.target[0]
    branch(bank, first, source)
    check = checkers.atomicity(bank.ctx, ALL_WELL)
    assert check.held is False
    assert check.evidence["broken"] == [
        {"gtrid": first.gtrid, "branches": {source: "committed", target: "rolled back"}}
    ]
    assert check.evidence["committed"] == 1
    assert check.evidence["summary"] == "1 transfer committed on some participants only"


def test_atomicity_catches_a_committed_branch_of_a_transfer_never_planned(bank):
    planned = bank.transfers[0]
    stray = Transfer(99, f"r{bank.ctx.run_id}-t99", planned.source, planned.target, 1)
    branch(bank, stray, stray.source[0])
    branch(bank, stray, stray.target[0])
    check = checkers.atomicity(bank.ctx, ALL_WELL)
    assert check.held is False
    assert {b["gtrid"] for b in check.evidence["broken"]} == {stray.gtrid}


def test_conservation_catches_money_created_on_one_participant(bank):
    first = bank.transfers[0]
    branch(bank, first, first.target[0])  # a credit with no debit: money from nowhere
    check = checkers.conservation(bank.ctx, ALL_WELL)
    params = bank.ctx.params
    expected = params["balance"] * params["accounts"] * 2
    assert check.held is False
    assert (check.evidence["expected"], check.evidence["found"]) == (expected, expected + first.amount)
    assert check.evidence["summary"] == f"the balances sum to {expected + first.amount}, not the {expected} opened"


def test_conservation_catches_a_balance_changed_outside_any_transfer(bank):
    conn = bank.participants["p1"].connect(bank.ctx)
    with conn.cursor() as cur:
        cur.execute("UPDATE accounts SET balance = balance - 3 WHERE id = 1")
    conn.commit()
    conn.close()
    check = checkers.conservation(bank.ctx, ALL_WELL)
    assert check.held is False
    assert check.evidence["found"] == check.evidence["expected"] - 3


def test_nothing_in_doubt_catches_a_prepared_branch_left_behind(bank):
    first = bank.transfers[0]
    source = first.source[0]
    branch(bank, first, source, commit=False)
    check = checkers.nothing_in_doubt(bank.ctx, ALL_WELL)
    assert check.held is False
    assert check.evidence["in_doubt"] == {source: [f"'{first.gtrid}','{source}'"]}
    assert check.evidence["summary"] == f"1 branch left in doubt on {source}"


def test_durability_catches_an_acknowledged_transfer_missing_from_the_data(bank):
    kept, lost = bank.transfers
    committed_everywhere(bank, kept)
    branch(bank, lost, lost.source[0])  # only one branch of it ever committed
    acknowledge(bank, kept)
    acknowledge(bank, lost)
    check = checkers.durability(bank.ctx, ALL_WELL)
    assert check.held is False
    assert check.evidence == {
        "summary": "1 of 2 acknowledged transfers missing from the data",
        "acknowledged": 2,
        "lost": [{"gtrid": lost.gtrid, "missing_on": [lost.target[0]]}],
    }


def test_a_checker_says_unknown_when_the_run_ended_before_its_transfers(bank):
    assert checkers.atomicity(bank.ctx, None).held is None
