"""What each diagnostics scenario says as it runs: a line of what to watch, and captions keyed to
its events (apps/runs/registry.py Caption)."""

from apps.runs.registry import Caption

PING_WATCH = (
    "Watch the latency chart: each round sends one real request to every node and times the answer. "
    "Inject a fault and see a probe go unanswered and the checker notice."
)

PING_CAPTIONS = (
    Caption(
        "The prober is up; it opens one connection to each node before the first round.",
        "node",
        "prober up",
        actor="prober",
    ),
    Caption(
        "A real SELECT 1 goes to MariaDB; the time to its answer is the round-trip on the chart.",
        "msg",
        "SELECT 1",
        data={"round": 1},
    ),
    Caption(
        "Redis answers PING with PONG: one trip through the network and its event loop.",
        "msg",
        "PING",
        data={"round": 1},
    ),
    Caption(
        "ZooKeeper answers exists / from its in-memory tree, over the prober's live session.",
        "msg",
        "exists /",
        data={"round": 1},
    ),
    Caption(
        "Round 2: the same probes again; a fault injected now shows as a probe with no answer.",
        "phase",
        data={"phase": "round", "round": 2},
    ),
    Caption(
        "The checker has read every probe: held means every node answered in every round.",
        "check",
        "all_nodes_answered",
    ),
)

PING_CLUSTER_CAPTIONS = (
    Caption(
        "This run's own MariaDB, Redis and ZooKeeper are up: a fault you inject touches only them.",
        "node",
        "zk1 up",
        data={"kind": "zookeeper"},
    ),
    *PING_CAPTIONS,
)

STREAM_WATCH = (
    "Watch the event count race: the generator emits events as fast as the recorder stores them, and "
    "the view hurries to keep up without falling behind."
)

STREAM_CAPTIONS = (
    Caption("The generator is up; from here it emits events as fast as they can be stored.", "node", "generator up"),
    Caption(
        "The first load event: each one is stored, then relayed to every viewer in order.",
        "metric",
        "load",
        data={"i": 1},
    ),
    Caption(
        "A thousand events in: the live view hurries, or jumps ahead, rather than fall behind.",
        "metric",
        "load",
        data={"i": 1000},
    ),
    Caption(
        "The checker has read the stored events back: held means seq 1 to N with no gap.",
        "check",
        "every_event_recorded",
    ),
)
