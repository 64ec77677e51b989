"""The `items` table in MariaDB and the cache in Redis, and how a cached value is written. Plain Python.

    items   key (the primary key), value, version (+1 on every write), updated_at

A cached entry is the Redis string `<version>|<value>` under the run's key for the item (the run's
prefix on the shared Redis; plain names on a dedicated node), so every read knows which version it
was served. Identifiers are fixed here; keys and values are always bound parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DATABASE = "cache"
DB_NODE = "mariadb"

ITEMS_DDL = """CREATE TABLE IF NOT EXISTS items (
  `key` VARCHAR(64) NOT NULL PRIMARY KEY,
  value VARCHAR(64) NOT NULL,
  version INT NOT NULL,
  updated_at DATETIME(6) NOT NULL
) ENGINE=InnoDB"""
SELECT_ITEM = "SELECT value, version FROM items WHERE `key` = %s"
# LAST_INSERT_ID(expr) hands the new version back in the statement's own reply, so a writer knows
# exactly which version it committed, whatever other writers commit next.
UPDATE_ITEM = "UPDATE items SET value = %s, version = LAST_INSERT_ID(version + 1), updated_at = NOW(6) WHERE `key` = %s"
LOAD_BATCH = 1000


def key_name(i: int) -> str:
    return f"item{i:05d}"


def encode(version: int, value: str) -> str:
    return f"{version}|{value}"


def decode(entry: str | None) -> tuple[int, str] | None:
    """(version, value) of a cached entry, or None for a miss."""
    if entry is None:
        return None
    version, _, value = entry.partition("|")
    return int(version), value


@dataclass
class Store:
    """Where a run's items and cache live: the shared MariaDB's run database, and the run's Redis
    (`redis_node` names a dedicated one; None is the shared Redis or the first dedicated node)."""

    nodes: Any
    redis_node: str | None = None

    @property
    def db_node(self) -> str:
        return self.nodes.roles["mariadb"]

    def cache_node(self, node: str | None = None) -> str:
        return node or self.redis_node or self.nodes.roles["redis"]

    def db(self, **options: Any) -> Any:
        """A new autocommit connection in the run's items database."""
        if "db1" in self.nodes.names:
            return self.nodes.mariadb(DATABASE, node="db1", **options)
        return self.nodes.mariadb(DATABASE, **options)

    def redis(self, node: str | None = None) -> Any:
        """The run's Redis client (one per node, shared by the run's threads: redis-py is thread-safe)."""
        if node is None and self.redis_node is None:
            return self.nodes.redis()
        return self.nodes.redis(node=self.cache_node(node))

    def cache_key(self, key: str) -> str:
        return self.nodes.key("cache", key)

    def create(self, keys: int, rng: Any) -> list[str]:
        """The items table with `keys` rows at version 1, and an empty cache; returns the keys."""
        names = [key_name(i) for i in range(1, keys + 1)]
        conn = self.db()
        try:
            with conn.cursor() as cur:
                cur.execute("DROP TABLE IF EXISTS items")
                cur.execute(ITEMS_DDL)
                statement = "INSERT INTO items (`key`, value, version, updated_at) VALUES (%s, %s, 1, NOW(6))"
                for start in range(0, len(names), LOAD_BATCH):
                    batch = [(k, value_of(rng)) for k in names[start : start + LOAD_BATCH]]
                    cur.executemany(statement, batch)
        finally:
            conn.close()
        return names

    def rows(self, conn: Any) -> dict[str, tuple[int, str]]:
        """{key: (version, value)} of every item."""
        with conn.cursor() as cur:
            cur.execute("SELECT `key`, version, value FROM items")
            return {k: (int(v), value) for k, v, value in cur.fetchall()}

    def read_rows(self) -> dict[str, tuple[int, str]]:
        """rows(), over a connection of its own: what a checker reads the table with."""
        conn = self.db()
        try:
            return self.rows(conn)
        finally:
            conn.close()


def value_of(rng: Any) -> str:
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(8))


def flush_cache(ctx: Any) -> dict:
    """Deletes every entry of the run's cache, on each of its Redis nodes: what the "flush the
    cache" button does (a real DEL of the run's keys, never FLUSHALL on a shared server)."""
    nodes = ctx.nodes
    names = (
        [n for n in nodes.names if n.startswith("redis")] if "db1" in nodes.names or "redis1" in nodes.names else [None]
    )
    deleted = 0
    for name in names:
        client = nodes.redis() if name is None else nodes.redis(node=name)
        pattern = nodes.key("cache", "*")
        keys = list(client.scan_iter(match=pattern, count=1000))
        for i in range(0, len(keys), 500):
            batch = keys[i : i + 500]
            deleted += ctx.cmd(
                name or nodes.roles["redis"],
                f"DEL {len(batch)} cache keys",
                lambda b=batch, c=client: c.delete(*b),
                actor="cache",
            )
    return {"deleted": deleted}


def with_flush(engine):
    """The scenario's engine, with the "flush the cache" fault handled for its whole run."""

    def run(ctx):
        ctx.on_fault("flush", lambda target, **options: flush_cache(ctx))
        return engine(ctx)

    run.__name__ = getattr(engine, "__name__", "engine")
    return run
