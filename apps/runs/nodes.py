"""A run's view of the shared lab nodes, with per-run namespaces. Plain Python: no Django.

Each run gets its own MariaDB databases (`run<id>_<name>`), Redis key prefix (`run<id>:`) and
znode root (`/distlab/run<id>`); `cleanup()` removes them all.
"""

import re
from urllib.parse import unquote, urlparse

import pymysql
import redis
from kazoo.client import KazooClient

from .engine_api import timed  # noqa: F401 - re-exported for the platform's own callers

NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def mysql_params(url):
    u = urlparse(url)
    host = u.hostname or "127.0.0.1"
    return {
        "host": host,
        "port": u.port or 3306,
        "user": unquote(u.username or ""),
        "password": unquote(u.password or ""),
        # No TLS over loopback (see DATABASES in the settings); elsewhere TLS when the server offers it.
        "ssl_disabled": host in ("127.0.0.1", "localhost", "::1"),
    }


def connect_mariadb(params, database=None, timeout=5.0, **options):
    """A new autocommit connection, in `database` (created if missing). The name must come from a
    `database()` method: identifiers cannot be bound as parameters, so they are whitelisted."""
    params = dict(params, connect_timeout=timeout, read_timeout=options.pop("read_timeout", 30), autocommit=True)
    params.update(options)
    conn = pymysql.connect(**params)
    if database:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE IF NOT EXISTS `{database}`")
            cur.execute(f"USE `{database}`")
    return conn


class RunClients:
    """The client connections a run opened on its nodes, closed together when it ends."""

    def __init__(self):
        self._mysql = []
        self._redis = {}
        self._zk = None

    def close(self):
        for conn in self._mysql:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - already closed, or killed by a fault
                pass
        self._mysql = []
        for client in self._redis.values():
            client.close()
        self._redis = {}
        if self._zk is not None:
            try:
                self._zk.stop()
                self._zk.close()
            finally:
                self._zk = None


class SharedNodes(RunClients):
    names = ("mariadb", "redis", "zookeeper")
    roles = {"mariadb": "mariadb", "redis": "redis", "zookeeper": "zookeeper"}

    def __init__(self, run_id, *, mariadb_url, redis_url, zk_hosts, timeout=5.0):
        super().__init__()
        self.run_id = run_id
        self.mariadb_url = mariadb_url
        self.redis_url = redis_url
        self.zk_hosts = zk_hosts
        self.timeout = timeout
        self.prefix = f"run{run_id}:"
        self.zk_root = f"/distlab/run{run_id}"

    # MariaDB ---------------------------------------------------------------------------------
    def database(self, name):
        """The run's own database name for `name`; identifiers come only from this whitelist rule."""
        if not NAME.match(name):
            raise ValueError(f"bad database name {name!r}: use a-z, 0-9 and _, at most 32 characters")
        return f"run{self.run_id}_{name}"

    def mariadb_params(self, node=None):
        """pymysql.connect() arguments for the shared MariaDB (for clients that make connections of
        their own: a binlog reader, a child process)."""
        return mysql_params(self.mariadb_url)

    def mariadb(self, db=None, **options):
        """A new connection to the shared MariaDB, in the run's database `db` (created if missing)."""
        conn = connect_mariadb(mysql_params(self.mariadb_url), db and self.database(db), self.timeout, **options)
        self._mysql.append(conn)
        return conn

    # Redis -----------------------------------------------------------------------------------
    def redis_address(self, node=None):
        """The shared Redis's URL, for a client of one's own (a checker's new connection)."""
        return self.redis_url

    def redis(self):
        if "redis" not in self._redis:
            self._redis["redis"] = redis.Redis.from_url(
                self.redis_url, socket_timeout=self.timeout, socket_connect_timeout=self.timeout, decode_responses=True
            )
        return self._redis["redis"]

    def key(self, *parts):
        return self.prefix + ":".join(str(p) for p in parts)

    # ZooKeeper -------------------------------------------------------------------------------
    def zk(self):
        """A started kazoo client whose paths are relative to the run's znode root."""
        if self._zk is None:
            root = KazooClient(hosts=self.zk_hosts, timeout=self.timeout)
            root.start(timeout=self.timeout)
            root.ensure_path(self.zk_root)
            root.stop()
            root.close()
            self._zk = KazooClient(hosts=self.zk_hosts + self.zk_root, timeout=self.timeout)
            self._zk.start(timeout=self.timeout)
        return self._zk

    # Faults ----------------------------------------------------------------------------------
    def fault(self, kind, target, emit=None, **options):
        """Logical faults on the shared nodes; they act on this run's own connections only."""
        detail = self._inject(kind, target)
        if emit is not None:
            emit("fault", actor="instructor", to=target, label=f"{kind} {target}", data={"kind": kind, **detail})
        return detail

    def _inject(self, kind, target):
        if kind == "kill-connections" and target == "mariadb":
            ids = []
            for conn in self._mysql:
                if conn.open:
                    ids.append(conn.thread_id())
            killer = pymysql.connect(**mysql_params(self.mariadb_url), connect_timeout=self.timeout)
            try:
                with killer.cursor() as cur:
                    for thread_id in ids:
                        cur.execute("KILL CONNECTION %s", (thread_id,))
            finally:
                killer.close()
            return {"connections": ids}
        if kind == "kill-connections" and target == "redis":
            client = self.redis()
            own = client.client_id()
            client.client_kill_filter(_id=own)
            return {"connections": [own]}
        if kind == "expire-session" and target == "zookeeper":
            zk = self.zk()
            session = zk.client_id[0] if zk.client_id else None
            # Closing the socket under the client expires nothing; ask the server to drop the session
            # by closing it from a second client that shares its id and password (as Curator does).
            if zk.client_id:
                twin = KazooClient(hosts=self.zk_hosts, client_id=zk.client_id, timeout=self.timeout)
                twin.start(timeout=self.timeout)
                twin.stop()
                twin.close()
            return {"session": hex(session) if session else None}
        raise ValueError(f"fault {kind!r} on {target!r} is not available on the shared nodes")

    # Clean-up --------------------------------------------------------------------------------
    def cleanup(self):
        """Drops everything the run created on the shared nodes."""
        self.close()
        cleanup_run(self.run_id, mariadb_url=self.mariadb_url, redis_url=self.redis_url, zk_hosts=self.zk_hosts)


def cleanup_run(run_id, *, mariadb_url, redis_url, zk_hosts, timeout=5.0):
    conn = pymysql.connect(**mysql_params(mariadb_url), connect_timeout=timeout, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW DATABASES LIKE %s", (f"run{int(run_id)}\\_%",))
            for (name,) in cur.fetchall():
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        conn.close()
    client = redis.Redis.from_url(redis_url, socket_timeout=timeout)
    try:
        keys = list(client.scan_iter(match=f"run{int(run_id)}:*", count=1000))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i : i + 500])
    finally:
        client.close()
    zk = KazooClient(hosts=zk_hosts, timeout=timeout)
    zk.start(timeout=timeout)
    try:
        zk.delete(f"/distlab/run{int(run_id)}", recursive=True)
    except Exception as exc:  # noqa: BLE001
        if type(exc).__name__ != "NoNodeError":
            raise
    finally:
        zk.stop()
        zk.close()


RUN_NAMESPACE = re.compile(r"^run(\d+)[_:]")


def leftover_run_ids(*, mariadb_url, redis_url, zk_hosts, timeout=5.0):
    """The ids of runs that still have databases, keys or znodes on the shared nodes."""
    ids = set()
    conn = pymysql.connect(**mysql_params(mariadb_url), connect_timeout=timeout)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW DATABASES LIKE %s", ("run%\\_%",))
            ids.update(int(m.group(1)) for (name,) in cur.fetchall() if (m := RUN_NAMESPACE.match(name)))
    finally:
        conn.close()
    client = redis.Redis.from_url(redis_url, socket_timeout=timeout, decode_responses=True)
    try:
        ids.update(
            int(m.group(1)) for key in client.scan_iter(match="run*:*", count=1000) if (m := RUN_NAMESPACE.match(key))
        )
    finally:
        client.close()
    zk = KazooClient(hosts=zk_hosts, timeout=timeout)
    zk.start(timeout=timeout)
    try:
        if zk.exists("/distlab"):
            ids.update(
                int(m.group(1)) for child in zk.get_children("/distlab") if (m := RUN_NAMESPACE.match(child + "_"))
            )
    finally:
        zk.stop()
        zk.close()
    return ids


# Kept data ---------------------------------------------------------------------------------------
# A kept run's data stays on the shared nodes for its owner to read with the standard clients, under
# a login of the run's own that reaches nothing else (apps/runs/kept.py decides when).


def reader_name(run_id: int) -> str:
    return f"run{int(run_id)}_reader"


def create_run_reader(run_id: int, password: str, *, keeper_url: str, redis_url: str, timeout: float = 5.0) -> str:
    """Creates the run's read-only login: SELECT on its own databases in MariaDB and read commands
    on its own keys in Redis. `keeper_url` is the account allowed to create users (never an
    engine's): it holds SELECT on the run databases with GRANT OPTION and nothing on the control
    database, so the reader cannot be given more than that."""
    user, run_id = reader_name(run_id), int(run_id)
    conn = pymysql.connect(**mysql_params(keeper_url), connect_timeout=timeout, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE OR REPLACE USER %s@'%%' IDENTIFIED BY %s", (user, password))
            # The pattern is built from the run id alone; `\_` is a literal underscore, so run17's
            # reader does not reach run170_bank (`%%` is pymysql's escape for a literal `%`).
            cur.execute(f"GRANT SELECT, SHOW VIEW ON `run{run_id}\\_%%`.* TO %s@'%%'", (user,))
    finally:
        conn.close()
    client = redis.Redis.from_url(redis_url, socket_timeout=timeout)
    try:
        # Read commands on the run's keys only. Redis ACLs cannot filter SCAN, so the reader sees
        # other key names there, never their values.
        client.execute_command(
            "ACL", "SETUSER", user, "reset", "on", f">{password}", f"~run{run_id}:*", "resetchannels",
            "-@all", "+@read", "+@connection", "-@dangerous",
        )  # fmt: skip
    finally:
        client.close()
    return user


def drop_run_reader(run_id: int, *, keeper_url: str, redis_url: str, timeout: float = 5.0) -> None:
    """Removes the run's reader login and ends its sessions (Redis ends them with the user)."""
    user = reader_name(run_id)
    conn = pymysql.connect(**mysql_params(keeper_url), connect_timeout=timeout, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("DROP USER IF EXISTS %s@'%%'", (user,))
            # A session left in a transaction holds metadata locks that DROP DATABASE would wait on.
            cur.execute("KILL USER %s", (user,))
    finally:
        conn.close()
    client = redis.Redis.from_url(redis_url, socket_timeout=timeout)
    try:
        client.execute_command("ACL", "DELUSER", user)
    finally:
        client.close()


def run_inventory(run_id: int, *, mariadb_url: str, redis_url: str, zk_hosts: str, timeout: float = 5.0) -> dict:
    """What the run left on the shared nodes: its databases, how many keys and znodes."""
    run_id = int(run_id)
    conn = pymysql.connect(**mysql_params(mariadb_url), connect_timeout=timeout)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW DATABASES LIKE %s", (f"run{run_id}\\_%",))
            databases = sorted(name for (name,) in cur.fetchall())
    finally:
        conn.close()
    client = redis.Redis.from_url(redis_url, socket_timeout=timeout)
    try:
        keys = sum(1 for _ in client.scan_iter(match=f"run{run_id}:*", count=1000))
    finally:
        client.close()
    zk = KazooClient(hosts=zk_hosts, timeout=timeout)
    zk.start(timeout=timeout)
    try:
        znodes = _count_znodes(zk, f"/distlab/run{run_id}")
    finally:
        zk.stop()
        zk.close()
    return {"databases": databases, "keys": keys, "znodes": znodes}


def _count_znodes(zk, path):
    """The znodes under `path`, not counting `path` itself (0 if it does not exist)."""
    if not zk.exists(path):
        return 0
    return sum(1 + _count_znodes(zk, f"{path}/{child}") for child in zk.get_children(path))
