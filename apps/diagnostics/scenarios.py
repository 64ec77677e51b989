from apps.runs.registry import Fault, Invariant, Lab, Param, Scenario, register

from . import checkers, engine
from .scenarios_narration import PING_CAPTIONS, PING_CLUSTER_CAPTIONS, PING_WATCH, STREAM_CAPTIONS, STREAM_WATCH

NODES = ("db1", "redis1", "zk1")

register(
    Lab(
        name="diagnostics",
        title="Diagnostics",
        explanation=(
            "Checks the platform itself: real round-trips to every node, and how fast each step "
            "reaches your browser. It comes before any protocol, because every lab talks to real "
            "servers and every step it takes travels from a Celery worker through the database and "
            "Redis to you. `ping` sends real round-trips to the shared "
            "MariaDB, Redis and ZooKeeper nodes and charts their latency; inject a fault to see the "
            "checker notice a node that stopped answering. `stream-load` floods the event stream to "
            "measure how fast steps reach their viewers."
        ),
        scenarios=[
            Scenario(
                name="ping",
                title="Ping every node",
                summary="SELECT 1 on MariaDB, PING on Redis, exists / on ZooKeeper, round after round.",
                engine=engine.ping,
                params=(Param("rounds", "int", 5, "how many rounds of probes", min=1, max=200),),
                # Measured at 2 steps/s: a step per node, three a round.
                duration_s=lambda p: 1.6 * p["rounds"],
                invariants=(
                    Invariant(
                        "all_nodes_answered", "every probe of every node got an answer", checkers.all_nodes_answered
                    ),
                ),
                faults=(
                    Fault("kill-connections", ("mariadb", "redis"), "kill the prober's connections on the server"),
                    Fault("expire-session", ("zookeeper",), "expire the prober's ZooKeeper session"),
                ),
                watch=PING_WATCH,
                captions=PING_CAPTIONS,
            ),
            Scenario(
                name="ping-cluster",
                title="Ping a cluster of your own",
                summary=(
                    "The same probes against a MariaDB, a Redis and a ZooKeeper started for this run alone: "
                    "kill, pause or cut off a node and watch the probes fail and the checker notice."
                ),
                engine=engine.ping,
                params=(Param("rounds", "int", 10, "how many rounds of probes", min=1, max=200),),
                # Measured at 2 steps/s: three steps a round, and the run's nodes to start.
                duration_s=lambda p: 1.6 * p["rounds"] + 3,
                invariants=(
                    Invariant(
                        "all_nodes_answered", "every probe of every node got an answer", checkers.all_nodes_answered
                    ),
                ),
                cluster={"mariadb": 1, "redis": 1, "zookeeper": 1},
                faults=(
                    Fault("kill", NODES, "SIGKILL the server process"),
                    Fault("restart", NODES, "start it again on the same data and port"),
                    Fault("pause", NODES, "SIGSTOP: the process is frozen, connections hang"),
                    Fault("resume", NODES, "SIGCONT"),
                    Fault("partition", NODES, "the node's proxy holds all traffic until healed"),
                    Fault("heal", NODES, "end the partition"),
                    Fault("latency", NODES, "add 300 ms each way through the proxy", options={"ms": 300}),
                ),
                watch=PING_WATCH,
                captions=PING_CLUSTER_CAPTIONS,
            ),
            Scenario(
                name="stream-load",
                title="Stream load",
                summary="Emits events as fast as it can, for the stream benchmark.",
                engine=engine.stream_load,
                params=(
                    Param("events", "int", 10000, "how many events to emit", min=1, max=200_000),
                    Param("rate", "int", 0, "events per second; 0 is as fast as possible", min=0, max=1_000_000),
                ),
                # A step every 1,000 events (2 steps/s: 2,000 events a second at most), or the rate asked for.
                duration_s=lambda p: max(p["events"] / 2000, p["events"] / p["rate"] if p["rate"] else 0),
                invariants=(
                    Invariant(
                        "every_event_recorded", "events are stored 1..N with no gap", checkers.every_event_recorded
                    ),
                ),
                watch=STREAM_WATCH,
                captions=STREAM_CAPTIONS,
            ),
        ],
    )
)
