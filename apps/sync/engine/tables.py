"""Table A (the source), table B (the target), and where they live. Plain Python.

A run's tables live on two dedicated servers (db1 holds A, db2 holds B: the target can be killed or
cut off, and the source's binlog holds only the run's writes) or, where a scenario needs neither,
in two databases of the run on the shared MariaDB. `Pair` hides which, so a syncer runs on either.
"""

from __future__ import annotations

from typing import Any

SOURCE_DB, TARGET_DB = "src", "dst"
# The columns both tables share, in the order rows are read, compared and checksummed.
COLUMNS = ("id", "bkey", "value", "version", "updated_at")
TABLES = {"A": "a", "B": "b"}  # identifiers are never taken from input: only these names

A_DDL = """CREATE TABLE IF NOT EXISTS a (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  bkey VARCHAR(40) NOT NULL,
  value VARCHAR(64) NOT NULL,
  version INT NOT NULL,
  updated_at DATETIME(6) NOT NULL,
  UNIQUE KEY bkey (bkey),
  KEY updated_at (updated_at)
) ENGINE=InnoDB"""

# B keyed by A's id: a write can be repeated (INSERT ... ON DUPLICATE KEY UPDATE) and lands once.
B_KEYED_DDL = """CREATE TABLE IF NOT EXISTS b (
  id BIGINT NOT NULL PRIMARY KEY,
  bkey VARCHAR(40) NOT NULL,
  value VARCHAR(64) NOT NULL,
  version INT NOT NULL,
  updated_at DATETIME(6) NOT NULL,
  KEY bkey (bkey)
) ENGINE=InnoDB"""

# B with a key of its own, as a table is often first made: A's id is just a column, so an INSERT
# that is retried after its reply was lost adds a second row for the same business key.
B_OWN_KEY_DDL = """CREATE TABLE IF NOT EXISTS b (
  row_id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  id BIGINT NOT NULL,
  bkey VARCHAR(40) NOT NULL,
  value VARCHAR(64) NOT NULL,
  version INT NOT NULL,
  updated_at DATETIME(6) NOT NULL,
  KEY id (id),
  KEY bkey (bkey)
) ENGINE=InnoDB"""

SELECT_ROWS = "SELECT id, bkey, value, version, updated_at FROM {table} ORDER BY id"
# A row of A written into the keyed B: inserted, or, when B has its id, made A's (repeatable).
UPSERT_B = (
    "INSERT INTO b (id, bkey, value, version, updated_at) VALUES (%s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE "
    "bkey = VALUES(bkey), value = VALUES(value), version = VALUES(version), updated_at = VALUES(updated_at)"
)
# One row's fingerprint, as pt-table-checksum takes it; every column is NOT NULL, so CONCAT_WS
# skips nothing and '#' cannot be confused with a column's edge (bkeys and values hold no '#').
ROW_CRC = "CRC32(CONCAT_WS('#', id, bkey, value, version, updated_at))"
CHUNK_CHECKSUM = "SELECT COUNT(*), COALESCE(BIT_XOR(" + ROW_CRC + "), 0) FROM {table} WHERE id >= %s AND id < %s"
TABLE_CHECKSUM = "SELECT COUNT(*), COALESCE(BIT_XOR(" + ROW_CRC + "), 0) FROM {table}"


def table(side: str) -> str:
    """The table name of side "A" or "B" (a whitelist: identifiers cannot be bound parameters)."""
    return TABLES[side]


class Pair:
    """Where A and B live for a run, with new connections to either on request."""

    def __init__(self, nodes: Any):
        self.nodes = nodes
        self.dedicated = "db2" in nodes.names
        shared = nodes.roles["mariadb"]
        self.source_node = "db1" if self.dedicated else shared
        self.target_node = "db2" if self.dedicated else shared

    def _connect(self, db: str, node: str, options: dict) -> Any:
        if self.dedicated:
            return self.nodes.mariadb(db, node=node, **options)
        return self.nodes.mariadb(db, **options)

    def source(self, **options: Any) -> Any:
        """A new autocommit connection in A's database."""
        return self._connect(SOURCE_DB, self.source_node, options)

    def target(self, **options: Any) -> Any:
        """A new autocommit connection in B's database."""
        return self._connect(TARGET_DB, self.target_node, options)

    def connect(self, side: str, **options: Any) -> Any:
        return self.source(**options) if side == "A" else self.target(**options)

    def node_of(self, side: str) -> str:
        return self.source_node if side == "A" else self.target_node

    def database(self, side: str) -> str:
        """The real database name of a side (run<id>_src on the shared node, src on a dedicated one)."""
        return self.nodes.database(SOURCE_DB if side == "A" else TARGET_DB)

    def params(self, side: str) -> dict:
        """pymysql.connect() arguments for a side's server, for clients that connect on their own."""
        return dict(self.nodes.mariadb_params(self.node_of(side) if self.dedicated else None))


def create_tables(pair: Pair, *, keyed_target: bool = True) -> None:
    """A empty on the source, B empty on the target (B keyed by A's id, or with a key of its own)."""
    for side, ddl in (("A", A_DDL), ("B", B_KEYED_DDL if keyed_target else B_OWN_KEY_DDL)):
        conn = pair.connect(side)
        try:
            with conn.cursor() as cur:
                cur.execute(f"DROP TABLE IF EXISTS {table(side)}")
                cur.execute(ddl)
        finally:
            conn.close()


def read_rows(conn: Any, side: str) -> list[tuple]:
    """Every row of a side, ordered by A's id (B may hold several rows for one id)."""
    with conn.cursor() as cur:
        cur.execute(SELECT_ROWS.format(table=table(side)))
        return list(cur.fetchall())


def checksum(conn: Any, side: str, lo: int | None = None, hi: int | None = None) -> tuple[int, int]:
    """(rows, BIT_XOR of the rows' CRC32) of a side, or of its ids in [lo, hi)."""
    with conn.cursor() as cur:
        if lo is None:
            cur.execute(TABLE_CHECKSUM.format(table=table(side)))
        else:
            cur.execute(CHUNK_CHECKSUM.format(table=table(side)), (lo, hi))
        count, crc = cur.fetchone()
        return int(count), int(crc)


def id_range(conn: Any, side: str) -> tuple[int, int]:
    """(smallest id, largest id + 1) of a side; (0, 0) when it is empty."""
    with conn.cursor() as cur:
        cur.execute(f"SELECT MIN(id), MAX(id) FROM {table(side)}")
        lo, hi = cur.fetchone()
        return (0, 0) if lo is None else (int(lo), int(hi) + 1)


def as_row(row: tuple) -> dict:
    """A row as evidence: its columns by name, the time as text."""
    return {name: (str(v) if name == "updated_at" else v) for name, v in zip(COLUMNS, row, strict=False)}


def execute(
    ctx: Any,
    cur: Any,
    node: str,
    statement: str,
    args: Any = (),
    *,
    actor: str,
    label: str | None = None,
    many: bool = False,
) -> int:
    """Runs one statement (executemany with `many`) through ctx.cmd, so it is recorded as one `cmd`
    event under `label` (the statement itself by default); returns the affected row count."""
    run = cur.executemany if many else cur.execute
    return ctx.cmd(node, label or statement, lambda: run(statement, args), actor=actor)
