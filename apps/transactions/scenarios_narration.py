"""What each transactions scenario says as it runs: a line of what to watch, and captions keyed to
its events (apps/runs/registry.py Caption). Transfer ids carry the run's number ("r12-t1"), so
captions match on the words around them."""

from apps.runs.registry import Caption

WORK = Caption(
    "Each participant does its half of the transfer inside an XA branch; nothing is committed yet.",
    "phase",
    data={"phase": "work"},
)
PREPARE = Caption("Phase 1: the coordinator asks every participant to PREPARE.", "phase", data={"phase": "prepare"})
YES = Caption(
    "A YES vote is a promise: the branch is PREPARED, survives a crash, and holds its row locks.", "msg", "YES"
)
LOGGED = Caption(
    "The coordinator has logged COMMIT; from here a crash cannot abort the transfer.",
    "log",
    "decision logged: commit",
)
COMMIT = Caption("Phase 2: the coordinator tells every participant to COMMIT.", "phase", data={"phase": "commit"})
COMMITTED = Caption("A participant has committed its branch: its half of the transfer is final.", "msg", "COMMITTED")
HELD = Caption(
    "The checker compared every participant's ledger: each transfer is on all of them or on none.",
    "check",
    "atomicity",
    data={"held": True},
)
BROKEN = Caption(
    "The checker finds a transfer committed on one participant and rolled back on another: money created or destroyed.",
    "check",
    "atomicity",
    data={"held": False},
)
RECOVERY_READS = Caption(
    "The coordinator restarts: recovery reads its decision log and asks each participant XA RECOVER.",
    "node",
    "coordinator restarts and recovers",
)
RECOVERY_COMMITS = Caption(
    "Recovery finds the branch still PREPARED and commits it, as the logged decision says.",
    "msg",
    "COMMIT",
    actor="recovery",
)

WATCH = {
    "2pc-happy": "Watch each transfer go WORK, PREPARE, a logged decision, COMMIT. A transfer within one "
    "participant skips the vote and commits in ONE PHASE.",
    "2pc-vote-no": "Watch the first transfer's PREPARE: one participant cannot cover the amount and votes "
    "NO, and one NO aborts the transfer everywhere.",
    "2pc-coordinator-crash-before-decision": "Watch the coordinator die with every branch prepared and no "
    "decision logged: a client is blocked by the in-doubt locks until recovery rolls them back.",
    "2pc-coordinator-crash-after-decision": "Watch the coordinator die after logging COMMIT and telling only "
    "one participant: recovery reads the log and commits the other.",
    "2pc-no-log": "Watch a coordinator that keeps no decision log crash mid-commit: recovery has to guess, "
    "guesses abort, and the checker fails the run.",
    "2pc-participant-crash": "Watch a participant's server get SIGKILLed after voting YES: its prepared "
    "branch survives the restart, and recovery commits it.",
    "3pc-coordinator-crash": "Watch the three rounds of 3PC, then the coordinator die before DOCOMMIT: "
    "the participants time out and commit on their own, and nobody blocks.",
    "3pc-partition": "Watch a participant get cut off right after its PRECOMMIT: it times out and commits, while the "
    "coordinator, missing its ACK, aborts the others.",
    "2pc-chaos": "Watch a seeded schedule of crashes, kills and dropped connections, each followed by "
    "recovery: whatever strikes, every transfer must end on all participants or on none.",
}

CAPTIONS = {
    "2pc-happy": (
        WORK,
        PREPARE,
        YES,
        LOGGED,
        COMMIT,
        COMMITTED,
        Caption(
            "A transfer within one participant needs no vote: XA COMMIT ... ONE PHASE.",
            "cmd",
            "ONE PHASE",
        ),
        HELD,
    ),
    "2pc-vote-no": (
        WORK,
        PREPARE,
        Caption("A participant votes NO: its account cannot cover the amount, so it will not prepare.", "msg", "NO"),
        Caption(
            "One NO is enough: the coordinator aborts the transfer on every participant.",
            "phase",
            data={"phase": "abort"},
        ),
        Caption("Rolled back: on this participant the money never moved.", "msg", "ROLLED BACK"),
        LOGGED,
        HELD,
    ),
    "2pc-coordinator-crash-before-decision": (
        PREPARE,
        YES,
        Caption(
            "The coordinator crashes with every branch prepared and no decision logged: the branches are in doubt.",
            "log",
            "coordinator crashes after-prepare",
        ),
        Caption(
            "A bank client asks for a row the transfer touched, and waits for its lock.", "state", "waiting for account"
        ),
        Caption(
            "The client gives up (error 1205): in-doubt branches block other work, the price of 2PC.",
            "state",
            "gave up",
        ),
        Caption(
            "The log holds no COMMIT for the transfer, so recovery may safely roll it back.",
            "log",
            "the decision log holds 0 records",
        ),
        Caption("Recovery rolls back each branch that XA RECOVER lists in doubt.", "msg", "ROLLBACK", actor="recovery"),
        Caption("The locks are free again: the client gets the row at once.", "state", "got account"),
        HELD,
    ),
    "2pc-coordinator-crash-after-decision": (
        PREPARE,
        LOGGED,
        Caption(
            "The coordinator crashes mid-commit: one participant has committed, the other's branch is still PREPARED.",
            "log",
            "coordinator crashes mid-commit",
        ),
        RECOVERY_READS,
        Caption("XA RECOVER lists the branch still in doubt on the participant never told.", "msg", "1 in doubt"),
        RECOVERY_COMMITS,
        HELD,
    ),
    "2pc-no-log": (
        PREPARE,
        YES,
        Caption(
            "Phase 2 starts with no decision written down: this coordinator keeps no log.",
            "phase",
            data={"phase": "commit"},
        ),
        Caption(
            "The coordinator crashes mid-commit, and nothing records that it chose COMMIT.",
            "log",
            "coordinator crashes",
        ),
        Caption("XA RECOVER lists a branch in doubt; with no log, recovery must guess.", "msg", "1 in doubt"),
        Caption(
            "Recovery guesses abort and rolls the branch back, though the other participant already committed.",
            "msg",
            "ROLLBACK",
            actor="recovery",
        ),
        BROKEN,
    ),
    "2pc-participant-crash": (
        PREPARE,
        YES,
        LOGGED,
        Caption(
            "A participant's server is SIGKILLed after voting YES: its prepared branch must outlive the process.",
            "fault",
            "kill",
        ),
        Caption("The server restarts on the same data; InnoDB brings the prepared branch back.", "fault", "restart"),
        Caption(
            "Recovery reads the log: every transfer with a logged COMMIT must end committed.",
            "log",
            "the decision log holds",
        ),
        RECOVERY_COMMITS,
        HELD,
    ),
    "3pc-coordinator-crash": (
        Caption(
            "Round 1: CANCOMMIT; each participant does its work, prepares and votes.",
            "phase",
            data={"phase": "cancommit"},
        ),
        Caption(
            "A YES vote: prepared, but in 3PC a participant does not wait forever for the coordinator.", "msg", "YES"
        ),
        Caption(
            "Round 2: PRECOMMIT tells each participant that everyone voted yes: the outcome will be commit.",
            "phase",
            data={"phase": "precommit"},
        ),
        Caption("Round 3: DOCOMMIT, and each participant commits.", "phase", data={"phase": "docommit"}),
        Caption(
            "The coordinator crashes after every participant is pre-committed.",
            "log",
            "coordinator crashes before DOCOMMIT",
        ),
        Caption(
            "No DOCOMMIT arrives: each pre-committed participant times out and decides alone.", "log", "deciding alone"
        ),
        Caption(
            "Committed on timeout: nobody waits for the coordinator, and no lock stays held.",
            "state",
            data={"3pc": "committed on timeout"},
        ),
        Caption("A client gets the row at once: 3PC did not block.", "state", "got account"),
        HELD,
    ),
    "3pc-partition": (
        Caption("Round 1: CANCOMMIT; each participant prepares and votes.", "phase", data={"phase": "cancommit"}),
        Caption("Round 2: PRECOMMIT goes out to each participant in turn.", "phase", data={"phase": "precommit"}),
        Caption(
            "A participant is cut off just after its PRECOMMIT: it believes the outcome is commit.",
            "fault",
            "partition",
        ),
        Caption("Its ACK is lost in the partition.", "msg", "ACK (lost)"),
        Caption(
            "Missing an ACK, the coordinator aborts: it cannot tell a slow participant from a cut-off one.",
            "phase",
            data={"phase": "abort"},
        ),
        Caption("The participant still connected rolls back, as told.", "state", data={"3pc": "aborted"}),
        Caption(
            "The cut-off participant, pre-committed and alone, times out and commits: the two sides now disagree.",
            "log",
            "deciding alone",
        ),
        Caption("The partition heals, too late: the transfer is committed on one side only.", "fault", "heal"),
        BROKEN,
    ),
    "2pc-chaos": (
        Caption(
            "The seeded schedule of faults is drawn: the same seed gives the same chaos.", "log", "faults scheduled"
        ),
        LOGGED,
        Caption(
            "After a fault, recovery reads the log and XA RECOVER and finishes what was left.",
            "phase",
            data={"phase": "recovery"},
        ),
        Caption("Recovery has resolved every branch in doubt; transfers go on.", "log", "recovery resolved"),
        Caption("A participant's server is SIGKILLed; its prepared branches survive on disk.", "fault", "kill"),
        Caption("The server restarts on the same data, prepared branches and all.", "fault", "restart"),
        Caption(
            "The coordinator crashes mid-protocol; its decision log is all it keeps.", "log", "coordinator crashes"
        ),
        HELD,
    ),
}
