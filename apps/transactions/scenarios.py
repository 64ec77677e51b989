import dataclasses

from apps.runs.registry import Assets, Fault, Invariant, Lab, Param, Scenario, register

from . import checkers, engine
from .engine import threepc
from .scenarios_narration import CAPTIONS, WATCH

INVARIANTS = (
    Invariant("atomicity", "every global transaction committed on all its participants or on none", checkers.atomicity),
    Invariant("conservation", "the sum of all balances never changes", checkers.conservation),
    Invariant("nothing_in_doubt", "XA RECOVER is empty on every participant at the end", checkers.nothing_in_doubt),
    Invariant("durability", "every transfer reported committed is in the data", checkers.durability),
)


def params(transfers=6, concurrency=2, participants=3, local=0, crash=None, crash_choices=(), most_participants=6):
    common = [
        Param("participants", "int", participants, "how many participant databases", min=2, max=most_participants),
        Param("transfers", "int", transfers, "how many bank transfers", min=1, max=500),
        Param("amount", "int", 10, "the amount of each transfer", min=1, max=1_000_000),
        Param("accounts", "int", 4, "accounts per participant", min=1, max=1000),
        Param("balance", "int", 100, "each account's opening balance", min=1, max=1_000_000),
        Param(
            "local_percent", "int", local, "the share of transfers within one participant (ONE PHASE)", min=0, max=100
        ),
        Param("timeout_ms", "int", 10_000, "a transfer slower than this before PREPARE is rolled back", min=1),
        Param("parallel_prepare", "bool", False, "send every PREPARE at once instead of one after another"),
    ]
    if concurrency is not None:  # None: the engine runs one transfer at a time
        common.insert(2, Param("concurrency", "int", concurrency, "clients running transfers at once", min=1, max=8))
    if crash:
        common += [
            Param("crash_point", "choice", crash, "where the coordinator crashes", choices=crash_choices),
            Param("crash_transfer", "int", 1, "the transfer during which it crashes", min=1, max=500),
        ]
    return tuple(common)


def engine_with(**fixed):
    """The 2PC engine (3PC when `fault` is fixed) with some parameters fixed by the scenario, not
    settable by a user."""

    def run(ctx):
        ctx.params = {**fixed, **ctx.params}
        return threepc.three_phase_commit(ctx) if "fault" in fixed else engine.two_phase_commit(ctx)

    run.__name__ = "two_phase_commit_" + "_".join(f"{k}" for k in fixed)
    return run


def crash_within_transfers(clean):
    if "crash_transfer" in clean and clean["crash_transfer"] > clean["transfers"]:
        return {"crash_transfer": [f"must be at most the number of transfers ({clean['transfers']})"]}
    return {}


COORDINATOR_CRASHES = engine.CRASH_POINTS
TWO_PC_ONLY = ("timeout_ms", "parallel_prepare")
THREE_PC_PARAMS = (
    *(p for p in params(transfers=3, concurrency=None, participants=2) if p.name not in TWO_PC_ONLY),
    Param("agent_timeout_ms", "int", 1000, "how long a participant waits before deciding alone", min=100),
    Param("crash_transfer", "int", 1, "the transfer during which the fault strikes", min=1, max=500),
)
# The coordinator's crash strikes the second transfer by default: the first shows 3PC's three
# rounds whole, the second what the participants do alone.
THREE_PC_CRASH_PARAMS = tuple(
    dataclasses.replace(p, default=2) if p.name == "crash_transfer" else p for p in THREE_PC_PARAMS
)
COORDINATOR_CRASH = Fault("crash", ("coordinator",), "crash the coordinator at its next step")
SHARED_PARTICIPANTS = tuple(f"p{i}" for i in range(1, 7))
THREE_PC_FAULTS = (
    COORDINATOR_CRASH,
    Fault(
        "partition",
        SHARED_PARTICIPANTS,
        "cut the participant off inside the engine: the lab drops the 3PC messages to and from it "
        "(its database stays reachable; no network is touched)",
        numbered=("p", "participants"),
    ),
    # A run has the participants its parameter asks for: p1 … pN, and no buttons for others.
    Fault("heal", SHARED_PARTICIPANTS, "end the partition", numbered=("p", "participants")),
)
CLUSTER_NODES = ("db1", "db2", "db3")
CLUSTER_FAULTS = (
    COORDINATOR_CRASH,
    Fault("kill", CLUSTER_NODES, "SIGKILL the participant's server"),
    Fault("restart", CLUSTER_NODES, "start it again on the same data"),
    Fault("partition", CLUSTER_NODES, "cut it off through its proxy"),
    Fault("heal", CLUSTER_NODES, "end the partition"),
)

# The lab page's compare form: the two coordinator crashes with one seed and one fault schedule.
COMPARED = ("2pc-coordinator-crash-before-decision", "3pc-coordinator-crash")
COMPARE_DEFAULTS = {"transfers": 3, "crash_transfer": 1}
COMPARE_HELP = {
    "transfers": "how many bank transfers each run makes",
    "crash_transfer": "the transfer during which both coordinators crash (at most the number of transfers)",
}


def compare_context():
    """The compare form's fields, with the limits both scenarios accept (from their own params)."""
    a, b = (LAB.scenarios[name] for name in COMPARED)
    fields = []
    for name, default in COMPARE_DEFAULTS.items():
        pa, pb = ({p.name: p for p in s.params}[name] for s in (a, b))
        lows = [x for x in (pa.min, pb.min) if x is not None]
        highs = [x for x in (pa.max, pb.max) if x is not None]
        fields.append(
            {
                "name": name,
                "label": name.replace("_", " "),
                "type": pa.type,
                "default": default,
                "min": max(lows) if lows else None,
                "max": min(highs) if highs else None,
                "help": COMPARE_HELP[name],
            }
        )
    return {"compare": {"a": a.name, "b": b.name, "fields": fields}}


LAB = register(
    Lab(
        name="transactions",
        title="Distributed transactions",
        explanation=(
            "A bank transfer between accounts held by two different databases must happen on both "
            "or on neither. Two-phase commit does it with real MariaDB XA transactions: the "
            "coordinator asks every participant to PREPARE (each votes, and a yes is a promise that "
            "survives a crash), writes its decision to its own durable log, then tells everyone to "
            "COMMIT. Watch what happens when it crashes between the two phases: prepared branches "
            "stay in doubt, holding their row locks and blocking other clients, until a recovering "
            "coordinator reads its log and XA RECOVER and finishes the job. Without the log, "
            "recovery has to guess, and the checker shows money created or destroyed. Three-phase "
            "commit adds a pre-commit round so participants can finish alone on a timeout — no "
            "blocking — until a partition splits them and one side commits while the other aborts. (That "
            "partition is simulated: the engine drops the 3PC messages to and from the participant it cuts "
            "off, while the databases stay reachable.)"
        ),
        # Durations: measured at 2 steps/s with the default parameters, and scaled by what sets a
        # run's length (the transfers, or the transfer the coordinator crashes in: the run ends there).
        scenarios=[
            Scenario(
                name="2pc-happy",
                title="Two-phase commit, nothing fails",
                summary="Concurrent transfers across participants, each prepared everywhere, then committed.",
                engine=engine_with(),
                params=params(transfers=8, local=25),
                invariants=INVARIANTS,
                cross_check=crash_within_transfers,
                faults=(COORDINATOR_CRASH,),
                duration_s=lambda p: 3.7 * p["transfers"],
            ),
            Scenario(
                name="2pc-vote-no",
                title="A participant votes no",
                summary="The first transfer asks for more than its account holds: that participant refuses "
                "to prepare and the coordinator aborts the transfer everywhere.",
                engine=engine_with(overdraw=True),
                params=params(transfers=3, concurrency=1),
                invariants=INVARIANTS,
                cross_check=crash_within_transfers,
                faults=(COORDINATOR_CRASH,),
                duration_s=lambda p: 3.6 * p["transfers"],
            ),
            Scenario(
                name="2pc-coordinator-crash-before-decision",
                title="The coordinator crashes before deciding",
                summary="Every participant has prepared, then the coordinator dies: the branches are in doubt "
                "and hold their locks (a client is blocked, error 1205) until recovery rolls them back.",
                engine=engine_with(),
                params=params(transfers=3, concurrency=1, crash="after-prepare", crash_choices=COORDINATOR_CRASHES),
                invariants=INVARIANTS,
                cross_check=crash_within_transfers,
                faults=(COORDINATOR_CRASH,),
                duration_s=lambda p: 2 + 3.6 * p["crash_transfer"],
            ),
            Scenario(
                name="2pc-coordinator-crash-after-decision",
                title="The coordinator crashes after deciding",
                summary="The commit decision is logged and one participant has committed when the coordinator "
                "dies; recovery reads the log and commits the rest.",
                engine=engine_with(),
                params=params(transfers=3, concurrency=1, crash="mid-commit", crash_choices=COORDINATOR_CRASHES),
                invariants=INVARIANTS,
                cross_check=crash_within_transfers,
                faults=(COORDINATOR_CRASH,),
                duration_s=lambda p: 2 + 3.6 * p["crash_transfer"],
            ),
            Scenario(
                name="2pc-no-log",
                title="A coordinator without a decision log",
                summary="A broken coordinator keeps no log and crashes during phase 2; a naive recovery rolls "
                "back what it finds, though one participant already committed.",
                engine=engine_with(no_log=True),
                params=params(transfers=3, concurrency=1, crash="mid-commit", crash_choices=("mid-commit",)),
                invariants=INVARIANTS,
                cross_check=crash_within_transfers,
                faults=(COORDINATOR_CRASH,),
                expected="fail",
                duration_s=lambda p: 2 + 3.6 * p["crash_transfer"],
            ),
            Scenario(
                name="2pc-participant-crash",
                title="A participant's server is killed after preparing",
                summary="On servers of its own, a participant is SIGKILLed after it prepared and restarted: "
                "its branch is still PREPARED in XA RECOVER, and recovery commits it.",
                engine=engine_with(crash_point="participant-kill"),
                params=params(transfers=3, concurrency=1, participants=3, most_participants=3),
                invariants=INVARIANTS,
                cross_check=crash_within_transfers,
                cluster={"mariadb": 3},
                faults=CLUSTER_FAULTS,
                duration_s=lambda p: 5 * p["transfers"],
            ),
            Scenario(
                name="3pc-coordinator-crash",
                title="Three-phase commit: the coordinator crashes after pre-commit",
                summary="Every participant is pre-committed when the coordinator dies: each times out and commits "
                "on its own. No branch stays in doubt, and no client is blocked.",
                engine=engine_with(fault="coordinator-crash"),
                params=THREE_PC_CRASH_PARAMS,
                invariants=INVARIANTS,
                cross_check=crash_within_transfers,
                faults=THREE_PC_FAULTS,
                duration_s=5,
            ),
            Scenario(
                name="3pc-partition",
                title="Three-phase commit under a partition",
                summary="During pre-commit one participant is cut off after its PreCommit: it times out and "
                "commits, while the coordinator, missing its ACK, aborts the others. The checker catches it. "
                "The partition is simulated inside the engine, which drops the 3PC messages to and from that "
                "participant; its MariaDB server and connections are not touched.",
                engine=engine_with(fault="partition"),
                params=THREE_PC_PARAMS,
                invariants=INVARIANTS,
                cross_check=crash_within_transfers,
                faults=THREE_PC_FAULTS,
                expected="fail",
                duration_s=7,
            ),
            Scenario(
                name="2pc-chaos",
                title="Two-phase commit under chaos",
                summary="Transfers one after another under a seeded random schedule of coordinator crashes, "
                "participant servers killed and restarted, and dropped connections, with recovery after each: "
                "every seed must pass.",
                engine=engine.chaos,
                params=(
                    *params(transfers=12, concurrency=None, most_participants=3),
                    Param("fault_percent", "int", 50, "the chance that a transfer meets a fault", min=0, max=100),
                ),
                invariants=INVARIANTS,
                cross_check=crash_within_transfers,
                cluster={"mariadb": 3},
                faults=CLUSTER_FAULTS,
                duration_s=lambda p: 4.1 * p["transfers"],
            ),
        ],
        run_page=Assets(js=("transactions/js/xa.js",)),
        lab_partials=("transactions/compare_form.html",),
        lab_context=compare_context,
    )
)

# Narration (scenarios_narration.py): what to watch before a run starts, captions as it goes.
for _name, _scenario in LAB.scenarios.items():
    _scenario.watch, _scenario.captions = WATCH[_name], CAPTIONS[_name]
