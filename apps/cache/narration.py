"""What to watch in each cache scenario, and the captions that tell its run step by step. Each
caption is matched to the run's own events (phase labels, checks, lease, breaker, shard and near
cache states), as the run page matches them."""

from apps.runs.registry import Caption


def phase(text, label):
    return Caption(text, "phase", label=label)


def checked(text, invariant, held=True):
    return Caption(text, "check", label=f"{invariant}: {'held' if held else 'BROKEN'}")


def state(text, **data):
    return Caption(text, "state", data=data)


NARRATION = {
    "cache-aside": (
        "Watch the hit ratio climb as the hot keys settle in the cache, and the keys, row and entry "
        "side by side: an entry may lag its row, but never by more than one TTL.",
        (
            phase(
                "Clients read cache-aside: a miss reads the row and sets the entry with a TTL.",
                "clients read and write",
            ),
            phase("The clients stop; within one TTL every entry a race left behind expires.", "wait one TTL"),
            checked("No read was staler than one TTL: what cache-aside with a TTL promises.", "stale_within_ttl"),
        ),
    ),
    "stale-set-race": (
        "Watch the reader's fill land after the writer's delete: the cache holds v1 while the table "
        "has v2, and every reader is served v1 until the TTL ends it.",
        (
            phase("The reader read v1 from the table; the writer commits v2 and deletes the key.", "the race on"),
            state(
                "The reader's late fill put v1 back: the cache is now older than the table.",
                type="entry",
                op="set",
                by="reader",
            ),
            phase(
                "The other readers are served v1 from the cache while the table has v2.",
                "the other readers keep reading",
            ),
            phase("Only the TTL ends the stale window.", "the stale entries expire"),
            checked(
                "The checker caught reads of v1 after v2 was acknowledged: a stale set.", "no_stale_read", held=False
            ),
        ),
    ),
    "update-vs-delete": (
        "Watch two writers commit in one order and write the cache in the other: the updated cache "
        "keeps the older value, the deleted one is filled from the newest row.",
        (
            phase("A commits, then B; B writes the cache, then A: A's older value is cached last.", "round 1:"),
            checked(
                "Updating the cache left entries different from their rows.", "update_side_convergence", held=False
            ),
            checked("Deleting converges: the next miss reads the newest row.", "delete_side_convergence"),
        ),
    ),
    "double-delete": (
        "Watch each key's stale window against the delay of its second delete: it closes once the "
        "delay exceeds the reader's read-plus-set time.",
        (
            phase(
                "Each key is raced; a second delete follows the first after the key's delay.",
                "from reading the row to setting it",
            ),
            phase("The clients stop; every key is read once more after one TTL.", "then read every key once more"),
            checked(
                "After a second delete later than the reader's fill, nothing stale survived.",
                "no_stale_read_after_second_delete",
            ),
        ),
    ),
    "leases": (
        "Watch the lease tokens: the miss gets one, the writer's delete invalidates it, and the "
        "reader's late set with that stale token is refused.",
        (
            phase("The stale-set race again, but every miss is handed a lease token.", "with a lease on every miss"),
            state("The writer's delete invalidated the reader's token.", type="lease", state="invalidated"),
            state("The set with a stale token is refused: v1 never reaches the cache.", type="lease", state="refused"),
            phase(
                "One reader holds the new lease; the others wait and retry instead of reading the table.",
                "the other readers wait",
            ),
            checked("No stale read: the leases closed the race.", "no_stale_read"),
        ),
    ),
    "thundering-herd": (
        "Watch the table's queries each time the hot key expires: every client without protection, "
        "about one with a mutex, leases or early recomputation.",
        (
            phase("No protection: every client that misses the hot key queries the table.", "none:"),
            phase("A mutex (SET NX PX): one client rebuilds, the others wait for its entry.", "mutex:"),
            phase("Leases: one token per key per interval; the other readers wait and retry.", "lease:"),
            phase("XFetch: a client recomputes early, at random, before the entry expires.", "xfetch:"),
            checked("The protected variants kept about one table query per expiry.", "db_queries_per_expiry"),
        ),
    ),
    "penetration": (
        "Watch the table's reads of keys that do not exist: all of them unprotected, only the first "
        "of each with cached nulls, almost none behind a Bloom filter.",
        (
            phase("Unprotected: every read of an absent key misses and reaches the table.", "none:"),
            phase("Absent keys cached as nulls: a repeated read stops at the cache.", "nulls:"),
            phase("A Bloom filter turns absent keys away before the cache and the table.", "bloom:"),
            checked(
                "The filter's measured false-positive rate is within its formula's bound.", "bloom_false_positive_rate"
            ),
        ),
    ),
    "avalanche": (
        "Watch the table's read rate when the keys loaded together expire: one spike with a fixed "
        "TTL, spread out with jittered TTLs.",
        (
            phase("Every key loaded at once with one TTL: they will expire together.", "fixed:"),
            phase("The same load with jittered TTLs: the expiries spread out.", "jittered:"),
            checked("Jittered TTLs kept the table's peak read rate low.", "jittered_peak"),
        ),
    ),
    "write-behind-loss": (
        "Watch the dirty keys: a write is acknowledged from Redis and reaches the table only at the "
        "next flush, so the kill before it takes those writes along.",
        (
            phase(
                "A write is acknowledged once Redis holds it; the table gets it at the next flush.",
                "acknowledged from the cache",
            ),
            phase("The flusher writes the dirty keys to the table in batches.", "the flusher writes the dirty keys"),
            phase(
                "redis1 dies before the next flush, with writes that exist nowhere else.",
                "SIGKILLed before the next flush",
            ),
            checked(
                "Acknowledged writes are missing from the table: lost with the node.", "acknowledged_writes", held=False
            ),
        ),
    ),
    "write-through": (
        "Watch the same kill as write-behind: with the row committed before each acknowledgement, "
        "it costs only a cold cache.",
        (
            phase("A write commits the row, sets the entry, and only then is acknowledged.", "committed, then cached"),
            Caption(
                "redis1 is SIGKILLed: its entries are gone, the table has every write.", "fault", label="kill redis1"
            ),
            phase("Every key written is read again after the restart.", "every key written is read again"),
            checked("No acknowledged write was lost.", "acknowledged_writes"),
        ),
    ),
    "cache-node-down": (
        "Watch the breaker: it opens when redis1 dies, the clients read from the table without an "
        "error, and a probe closes it once the node is back.",
        (
            phase("Clients read and write through a circuit breaker in front of redis1.", "through the breaker"),
            state(
                "The breaker opened: reads go to the table and no client sees an error.", type="breaker", state="open"
            ),
            state("Cool-down over: one probe tries redis1.", type="breaker", state="half-open"),
            state("The probe got through: the cache is used again, cold at first.", type="breaker", state="closed"),
            checked("Every read and write was answered while the node was down.", "no_client_error"),
        ),
    ),
    "sharding": (
        "Watch the ring and the slot map when a node joins and leaves: modulo moves most keys, "
        "the ring and the slots about one in N, only to or from that node.",
        (
            state("The keys laid out over 3 nodes: each placement keeps a cache of its own.", type="layout"),
            phase("A node joins: each placement moves the keys its scheme gives the new node.", "joins:"),
            state(
                "Modulo moved most keys: changing N reshuffles about (N-1)/N of them.", type="shard", scheme="modulo"
            ),
            state(
                "The ring moved about 1/N: only keys on the arcs before the new node's points.",
                type="shard",
                scheme="ketama",
            ),
            state(
                "Hash slots moved whole ranges: each node handed over its share of slots.", type="shard", scheme="slots"
            ),
            phase("The node leaves: its keys go back, and the moved entries are deleted on both nodes.", "leaves:"),
            checked("Every scheme moved the share it promises, at every change.", "moved_share"),
        ),
    ),
    "near-cache": (
        "Watch c1's near cache when its invalidation connection drops: the invalidations sent "
        "meanwhile are lost, and only the flush on reconnect saves it.",
        (
            phase("Each client keeps its reads near; Redis tells it when one changes.", "near caches"),
            state("Redis told a client a key it holds changed: it drops its copy.", type="near", op="invalidated"),
            Caption(
                "c1's invalidation connection is dropped: invalidations meanwhile are lost.",
                "fault",
                label="drop-invalidations",
            ),
            state("c1 reconnected and emptied its near cache: nothing stale survives.", type="near", op="flushed"),
            checked("No stale read, near caches included.", "no_stale_read"),
        ),
    ),
}
