"""The transactions engine against the real shared MariaDB, with no Django in the loop: every
scenario's verdict, read by the checkers from the real rows."""

import dataclasses

import pymysql
import pytest

from apps.runs.nodes import mysql_params
from apps.runs.registry import Check, Invariant, get_scenario, verdict_of
from apps.transactions import checkers
from tests.conftest import lab_node_urls
from tests.engine import run_engine


def run(name, **params):
    ctx, result, checks, events = run_engine(get_scenario("transactions", name), lab_node_urls(), params)
    return ctx, result, {c["name"]: c for c in checks}, events


def held(checks):
    return {name: c["held"] for name, c in checks.items()}


def completions(ctx):
    return {op["value"]["gtrid"]: op["type"] for op in ctx.history.completed("transfer")}


def test_it_commits_every_transfer_on_every_participant_when_nothing_fails():
    ctx, result, checks, events = run("2pc-happy", transfers=8, concurrency=2, local_percent=25)
    assert set(completions(ctx).values()) == {"ok"} and len(completions(ctx)) == 8
    assert verdict_of(list(checks.values())) == "pass"
    assert checks["atomicity"]["evidence"]["committed"] == 8
    local = [t for t in result["transfers"] if len(t["participants"]) == 1]
    assert 0 < len(local) < 8
    xa = [e["data"]["command"] for e in events if e["kind"] == "cmd" and e["label"].startswith("XA ")]
    assert sum(c.startswith("XA PREPARE") for c in xa) == 2 * (8 - len(local))
    # A transfer within one participant needs no vote: it commits in one phase.
    assert sorted(c for c in xa if c.endswith("ONE PHASE")) == sorted(
        f"XA COMMIT '{t['gtrid']}', '{t['participants'][0]}' ONE PHASE" for t in local
    )
    states = [e["data"]["state"] for e in events if e["kind"] == "state" and e["actor"] == "p1"]
    assert {"ACTIVE", "IDLE", "PREPARED", "COMMITTED"} <= set(states)
    requests = {e["seq"]: e for e in events if e["kind"] == "msg" and "reply_to" not in e["data"]}
    replies = [e for e in events if e["kind"] == "msg" and "reply_to" in e["data"]]
    assert replies and all(requests[r["data"]["reply_to"]]["to"] == r["actor"] for r in replies)
    assert {e["data"]["series"] for e in events if e["kind"] == "metric"} == {"work", "prepare", "commit"}


def test_it_aborts_everywhere_when_a_participant_votes_no():
    ctx, result, checks, events = run("2pc-vote-no")
    first = result["transfers"][0]["gtrid"]
    assert completions(ctx)[first] == "fail"
    assert [e["label"] for e in events if e["kind"] == "msg" and e["label"] == "NO"] == ["NO"]
    assert held(checks) == dict.fromkeys(checks, True)
    assert checks["atomicity"]["evidence"]["committed"] == len(result["transfers"]) - 1


def test_it_rolls_back_in_doubt_transactions_when_no_commit_was_logged():
    ctx, result, checks, events = run("2pc-coordinator-crash-before-decision")
    victim = result["transfers"][0]
    assert completions(ctx)[victim["gtrid"]] == "info"
    assert sorted(a["participant"] for a in result["recovery"]) == victim["participants"]
    assert {a["action"] for a in result["recovery"]} == {"rollback"}
    # While in doubt, the prepared branch held its row lock: a client waited and gave up.
    assert result["blocked"]["error"] == 1205 and result["blocked"]["blocked_ms"] > 0
    assert result["unblocked"]["error"] is None
    assert any(e["kind"] == "metric" and e["data"]["name"] == "blocked_ms" for e in events)
    assert held(checks) == dict.fromkeys(checks, True)


def test_it_commits_the_rest_when_the_commit_decision_was_logged():
    ctx, result, checks, events = run("2pc-coordinator-crash-after-decision")
    victim = result["transfers"][0]
    assert result["recovery"] == [
        {"participant": victim["participants"][1], "gtrid": victim["gtrid"], "action": "commit"}
    ]
    assert held(checks) == dict.fromkeys(checks, True)
    assert checks["atomicity"]["evidence"]["committed"] == 1


def test_without_a_log_naive_recovery_breaks_atomicity_and_the_checker_shows_which_branches():
    scenario = get_scenario("transactions", "2pc-no-log")
    assert scenario.expected == "fail"
    ctx, result, checks, events = run("2pc-no-log")
    victim = result["transfers"][0]
    first, second = victim["participants"]
    assert checks["atomicity"]["held"] is False
    assert checks["atomicity"]["evidence"]["broken"] == [
        {"gtrid": victim["gtrid"], "branches": {first: "committed", second: "rolled back"}}
    ]
    assert checks["conservation"]["held"] is False
    assert verdict_of(list(checks.values())) == "fail"


@pytest.mark.parametrize("name", ["2pc-coordinator-crash-before-decision", "2pc-coordinator-crash-after-decision"])
def test_running_recovery_twice_changes_nothing(name):
    ctx, result, checks, events = run(name)
    assert result["recovery"] and result["recovery_again"] == []
    assert result["unchanged_by_second_recovery"] is True


def test_a_transfer_over_its_timeout_before_prepare_is_rolled_back():
    # At speed 4 every step boundary lasts at least 250 ms: the work of a transfer spans two,
    # well over its 100 ms timeout.
    scenario = get_scenario("transactions", "2pc-happy")
    params = {"transfers": 2, "concurrency": 1, "local_percent": 0, "timeout_ms": 100}
    ctx, result, checks, events = run_engine(scenario, lab_node_urls(), params, speed=4)
    checks = {c["name"]: c for c in checks}
    assert set(completions(ctx).values()) == {"fail"}
    assert all("over its 100 ms" in op["error"] for op in ctx.history.completed("transfer"))
    assert not [e for e in events if e["kind"] == "cmd" and e["label"].startswith("XA PREPARE")]
    assert held(checks) == dict.fromkeys(checks, True)
    assert checks["atomicity"]["evidence"]["committed"] == 0


def test_bad_params_are_rejected_with_a_message_per_field():
    scenario = get_scenario("transactions", "2pc-coordinator-crash-before-decision")
    _, errors = scenario.validate({"participants": 0, "amount": -5, "crash_point": "whenever", "transfers": 0})
    assert errors["participants"] == ["must be at least 2"]
    assert errors["amount"] == ["must be at least 1"]
    assert errors["transfers"] == ["must be at least 1"]
    assert errors["crash_point"] == ["must be one of after-prepare, after-decision, mid-commit"]


@pytest.mark.parametrize("name", ["2pc-coordinator-crash-before-decision", "3pc-coordinator-crash"])
def test_a_crash_scheduled_after_the_last_transfer_is_refused(name):
    _, errors = get_scenario("transactions", name).validate({"transfers": 2, "crash_transfer": 3})
    assert errors == {"crash_transfer": ["must be at most the number of transfers (2)"]}


def test_a_run_leaves_no_databases_and_no_xa_branches_behind():
    ctx, result, checks, events = run("2pc-coordinator-crash-before-decision")
    conn = pymysql.connect(**mysql_params(lab_node_urls()["mariadb_url"]))
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW DATABASES LIKE %s", (f"run{ctx.run_id}\\_%",))
            assert cur.fetchall() == ()
            cur.execute("XA RECOVER")
            assert not [r for r in cur.fetchall() if r[3].decode().startswith(f"r{ctx.run_id}-")]
    finally:
        conn.close()


def fold_branch_states(events):
    """Applies the `state` events in order, as the run page does: {(participant, gtrid): state}."""
    branches = {}
    for e in events:
        if e["kind"] == "state" and "xid" in e["data"]:
            gtrid, bqual = (part.strip("'") for part in e["data"]["xid"].split("','"))
            branches[(bqual, gtrid)] = e["data"]["state"]
    return branches


@pytest.mark.parametrize("name", ["2pc-happy", "2pc-vote-no", "2pc-coordinator-crash-after-decision", "2pc-no-log"])
def test_replaying_the_branch_states_gives_the_rows_the_servers_hold(name):
    # An extra invariant reads the real ledgers while the run's databases still exist.
    real = {}

    def capture(ctx, result):
        real.update(checkers.ledgers(ctx))
        return Check(True)

    scenario = get_scenario("transactions", name)
    scenario = dataclasses.replace(scenario, invariants=(*scenario.invariants, Invariant("capture", "", capture)))
    ctx, result, checks, events = run_engine(scenario, lab_node_urls(), {})
    folded = fold_branch_states(events)
    committed = {key for key, state in folded.items() if state == "COMMITTED"}
    assert committed == {(p, gtrid) for p, ledger in real.items() for gtrid in ledger}
    assert set(folded.values()) <= {"COMMITTED", "ROLLED BACK"}  # nothing left ACTIVE, IDLE or PREPARED


def test_3pc_participants_finish_without_the_coordinator_and_block_no_one():
    # The crash strikes during the second transfer, as in a compare with 2PC scheduled that way.
    ctx, result, checks, events = run("3pc-coordinator-crash", agent_timeout_ms=300, crash_transfer=2)
    first, victim = result["transfers"][0]["gtrid"], result["transfers"][1]["gtrid"]
    assert completions(ctx)[first] == "ok"
    alone = [e["data"]["3pc"] for e in events if e["kind"] == "state" and e["data"].get("gtrid") == victim]
    assert alone.count("committed on timeout") == 2
    assert result["after_crash"]["error"] is None  # the rows were free at once: no lock wait
    assert held(checks) == dict.fromkeys(checks, True)


def test_a_3pc_run_slowed_down_to_watch_times_out_only_where_the_coordinator_really_went_quiet():
    # Two steps a second holds the coordinator half a second at each boundary, longer than the
    # agents' timeout: on the run's active clock that is not silence, so only the crash is.
    scenario = get_scenario("transactions", "3pc-coordinator-crash")
    params = {"agent_timeout_ms": 300, "crash_transfer": 1}
    ctx, result, checks, events = run_engine(scenario, lab_node_urls(), params, speed=2)
    decided_alone = [e for e in events if e["kind"] == "log" and "deciding alone" in e["label"]]
    crash = next(e["seq"] for e in events if e["kind"] == "node" and e["data"].get("state") == "down")
    assert decided_alone and all(e["seq"] > crash for e in decided_alone)
    victim = result["transfers"][0]["gtrid"]
    states = [e["data"]["3pc"] for e in events if e["kind"] == "state" and e["data"].get("gtrid") == victim]
    assert states.count("committed on timeout") == 2  # pre-committed everywhere, as when watched at full speed
    assert held({c["name"]: c for c in checks}) == {c["name"]: True for c in checks}


def test_3pc_under_a_partition_commits_on_one_side_and_aborts_on_the_other():
    assert get_scenario("transactions", "3pc-partition").expected == "fail"
    ctx, result, checks, events = run("3pc-partition", agent_timeout_ms=1000)
    victim = result["transfers"][0]
    lost = [e for e in events if e["kind"] == "msg" and e["data"].get("dropped")]
    assert lost and all(victim["participants"][0] in (e["actor"], e["to"]) for e in lost)
    first, second = victim["participants"]
    assert checks["atomicity"]["evidence"]["broken"] == [
        {"gtrid": victim["gtrid"], "branches": {first: "committed", second: "rolled back"}}
    ]
    assert checks["nothing_in_doubt"]["held"] is True
    assert verdict_of(list(checks.values())) == "fail"


@pytest.mark.parametrize("name", ["2pc-happy", "2pc-vote-no"])
def test_prepares_sent_in_parallel_give_the_same_verdict(name):
    ctx, result, checks, events = run(name, parallel_prepare=True)
    assert verdict_of(list(checks.values())) == "pass"
    distributed = [t for t in result["transfers"] if len(t["participants"]) == 2]
    prepares = [e for e in events if e["kind"] == "msg" and e["label"].startswith("PREPARE ")]
    assert len(prepares) == 2 * len(distributed)
    votes = [e["label"] for e in events if e["kind"] == "msg" and e["label"] in ("YES", "NO")]
    assert len(votes) == len(prepares)  # every participant voted, also beside a refusal


CMD_FIELDS = {"node", "command", "ok", "result", "ms", "error"}


@pytest.mark.parametrize("name", ["2pc-coordinator-crash-before-decision", "3pc-partition"])
def test_every_command_is_recorded_in_the_one_cmd_shape_answered_or_not(name):
    ctx, result, checks, events = run(name, **({"agent_timeout_ms": 300} if name.startswith("3pc") else {}))
    commands = [e for e in events if e["kind"] == "cmd"]
    assert commands and all(set(e["data"]) == CMD_FIELDS for e in commands)
    assert all(e["data"]["node"] == e["to"] and e["data"]["command"] == e["label"] for e in commands)
    if name.startswith("2pc"):
        # The blocked client's SELECT ... FOR UPDATE gave up behind the in-doubt branch.
        (failed,) = [e["data"] for e in commands if not e["data"]["ok"]]
        assert failed["command"].endswith("FOR UPDATE") and failed["error"].startswith("1205: ")
        assert failed["result"] is None
