"""A cache over several Redis nodes (sharding), and near caches in the clients kept coherent by
Redis's invalidations."""

from apps.runs.registry import PAGE_SPEED, Fault, Invariant, Param, Scenario

from . import checkers_scale, common
from .engine.near import near_cache
from .engine.sharding import MEMBERSHIP, NODES, sharding

MOVED_SHARE = Invariant(
    "moved_share",
    "at every change of nodes the run recorded (the schedule's and the buttons'), each placement "
    "moves the keys its scheme moves, the share it promises (modulo about (N-1)/N, ketama and hash "
    "slots about 1/N, and only to or from that node)",
    checkers_scale.moved_share,
)
PLACED = Invariant(
    "placed",
    "at the end every cached entry is on the node its placement assigns it, and equals its row",
    checkers_scale.placed,
)


def _drop_within_steps(clean: dict) -> dict:
    if clean["drop_at"] > clean["steps"]:
        return {"drop_at": [f"must be at most steps ({clean['steps']}), or 0 for no drop"]}
    return {}


SCENARIOS = (
    Scenario(
        name="sharding",
        title="Sharding: modulo, consistent hashing, hash slots",
        summary=(
            "The cache is spread over dedicated Redis nodes: 3, then a fourth joins, then it leaves. "
            "Each placement keeps a cache of its own, side by side: `crc32(key) % N` moves about "
            "(N-1)/N of the keys when N changes; a ketama ring (consistent hashing) about 1/N, only "
            "to the node that joins or from the one that leaves; Redis Cluster's hash slots "
            "(CRC16 of the key mod 16384, slots spread over the nodes) the same 1/N, by moving "
            "slots. The keys moved and the reads each node serves are charted. The entries of the "
            "keys that move are deleted on both nodes: a node that owned a key before may still "
            "hold an old entry, and no read may be served a wrong value. Set `delete_moved` false "
            "to see it: keys cached before redis4 joins, written while it serves them, are read "
            "after it leaves from their old entries, and the checker fails the run. Add or remove "
            "shards with the buttons (redis5 waits spare): each change is judged the same way. Kill "
            "or pause a node and its keys lose their cache, not their reads: its breaker opens, "
            "the clients read those keys from the table, and the deletes it missed are made "
            "before it is used again."
        ),
        engine=sharding,
        params=common.params(
            keys=200,
            ttl_ms=60_000,
            steps=4,
            delete_moved=Param(
                "delete_moved",
                "bool",
                True,
                "delete the entries of the keys that move, on their old and new nodes (false: "
                "a key that moves back finds its old entry)",
            ),
        ),
        invariants=(MOVED_SHARE, PLACED, common.NO_STALE_READ, common.ACKNOWLEDGED),
        faults=(
            Fault("add-shard", NODES, "the node joins the cache at the next round: each placement moves keys to it"),
            Fault("remove-shard", NODES, "the node leaves the cache at the next round: its keys move to the others"),
            *common.node_faults(*NODES),
        ),
        cluster={"mariadb": 1, "redis": len(NODES)},
        duration_s=lambda p: (len(MEMBERSHIP) * p["steps"] + len(MEMBERSHIP) - 1) / PAGE_SPEED,
    ),
    Scenario(
        name="near-cache",
        title="Near caches kept coherent by CLIENT TRACKING",
        summary=(
            "Every client keeps what it reads in its own memory, in front of Redis, and turns on "
            "`CLIENT TRACKING … REDIRECT` to a connection of its own subscribed to "
            "`__redis__:invalidate`: when a key it read is written, Redis sends its name there and "
            "the client drops it. Reads are served near, from Redis or from the row. At step "
            "`drop_at` (and whenever the fault's button is pressed) a client's invalidation "
            "connection is dropped, and a key it holds is written meanwhile: that invalidation is "
            "lost. With `flush_on_reconnect` (the default) the client empties its near cache when "
            "it reconnects, and the run passes; set it false and the client keeps serving the old "
            "value, a stale read the checker fails."
        ),
        engine=near_cache,
        params=common.params(
            keys=30,
            ttl_ms=60_000,
            steps=10,
            flush_on_reconnect=Param(
                "flush_on_reconnect",
                "bool",
                True,
                "empty the near cache when the invalidation connection comes back",
            ),
            drop_at=Param(
                "drop_at", "int", 5, "the step at which c1's invalidation connection is dropped (0: never)", min=0
            ),
        ),
        invariants=(common.NO_STALE_READ, common.CONVERGENCE, common.ACKNOWLEDGED),
        cross_check=_drop_within_steps,
        faults=(
            Fault(
                "drop-invalidations",
                tuple(f"c{i}" for i in range(1, 17)),
                "the server closes the client's invalidation connection: the invalidations sent "
                "until the client reconnects are lost",
                numbered=("c", "clients"),
            ),
        ),
        duration_s=lambda p: p["steps"] / PAGE_SPEED,
    ),
)
