"""How each kind of dedicated node is prepared, started, probed and steered. Plain Python.

Every server binds 127.0.0.1 only, keeps everything it writes (data, logs, sockets, temporary files)
in its node directory, and runs in the foreground so the supervisor owns its pid. The methods take
the node they work on, an apps.cluster.model.Node.
"""

import contextlib
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pymysql
from kazoo.client import KazooClient

from . import procs

# Exceptions are caught as pymysql.Error, never pymysql.err.Error: once Django's MySQL backend has
# imported `MySQLdb.err` (pymysql installed as MySQLdb), `pymysql.err` names a second copy of the
# module whose classes are not the ones pymysql raises.

HOST = "127.0.0.1"
SOCKET_LIMIT = 107  # sun_path holds 108 bytes with the final NUL

# The account every dedicated MariaDB node has. These servers are throw-away, per cluster and bound
# to loopback, so the lab account may do anything on them (XA RECOVER, KILL, CREATE DATABASE ...).
MARIADB_USER = "lab"
MARIADB_PASSWORD = "lab"
TEMPLATE_VERSION = 1

# Small and durable: a committed row must survive SIGKILL, which is what the restart lesson shows.
MARIADB_OPTIONS = [
    "--skip-name-resolve",
    "--innodb-buffer-pool-size=32M",
    "--innodb-log-file-size=16M",
    "--innodb-flush-log-at-trx-commit=1",
    "--innodb-buffer-pool-load-at-startup=OFF",
    "--innodb-buffer-pool-dump-at-shutdown=OFF",
    "--max-connections=300",
    "--character-set-server=utf8mb4",
    "--collation-server=utf8mb4_unicode_ci",
]


class NotReady(Exception):
    """The server does not answer yet."""


def _in(node, *parts):
    return str(Path(node.dir, *parts))


class MariaDB:
    kind = "mariadb"
    prefix = "db"
    ports = 1
    binaries = ("mariadbd", "mariadb-install-db")

    def __init__(self, tools, base_dir):
        self.tools = tools
        self.base_dir = Path(base_dir)
        self.as_root = os.geteuid() == 0

    @staticmethod
    def url(port):
        return f"mysql://{MARIADB_USER}:{MARIADB_PASSWORD}@{HOST}:{port}/"

    @property
    def template(self):
        return self.base_dir / "_template" / "mariadb"

    def _user(self):
        # As root mariadbd refuses to start unless told to run as root; as anyone else it runs as itself.
        return ["--user=root"] if self.as_root else []

    def template_ready(self):
        marker = self.template / "distlab-template"
        return marker.exists() and marker.read_text() == self._template_id()

    def _template_id(self):
        binary = Path(self.tools["mariadbd"])
        return f"{TEMPLATE_VERSION} {binary} {binary.stat().st_mtime_ns}\n"

    def build_template(self, env):
        """An initialised data directory with the lab account, built once and copied per node, so a
        node starts in a fraction of a second instead of running mariadb-install-db each time."""
        work = self.template.with_name(f"mariadb.build-{os.getpid()}")
        shutil.rmtree(work, ignore_errors=True)
        (work / "data").mkdir(parents=True)
        log = work / "install.log"
        with open(log, "wb") as out:
            subprocess.run(
                [
                    self.tools["mariadb-install-db"],
                    "--no-defaults",
                    *self._user(),
                    f"--datadir={work / 'data'}",
                    "--auth-root-authentication-method=socket",
                    "--skip-test-db",
                    "--innodb-log-file-size=16M",
                ],
                cwd=work,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                check=True,
                timeout=120,
            )
            # Bootstrap mode runs without grant tables until FLUSH PRIVILEGES loads them.
            sql = (
                "FLUSH PRIVILEGES;\n"
                f"CREATE USER '{MARIADB_USER}'@'%' IDENTIFIED BY '{MARIADB_PASSWORD}';\n"
                f"GRANT ALL PRIVILEGES ON *.* TO '{MARIADB_USER}'@'%' WITH GRANT OPTION;\n"
            )
            subprocess.run(
                [
                    self.tools["mariadbd"],
                    "--no-defaults",
                    *self._user(),
                    "--bootstrap",
                    f"--datadir={work / 'data'}",
                    f"--tmpdir={work}",
                    f"--log-error={log}.bootstrap",
                    "--innodb-log-file-size=16M",
                ],
                cwd=work,
                env=env,
                input=sql.encode(),
                stdout=out,
                stderr=subprocess.STDOUT,
                check=True,
                timeout=120,
            )
        (work / "data" / "distlab-template").write_text(self._template_id())
        old = self.template.with_name(f"mariadb.old-{os.getpid()}")
        if self.template.exists():
            self.template.rename(old)
        (work / "data").rename(self.template)
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)

    def socket_path(self, node):
        """A short socket path: in the node directory if it fits in sun_path, else under the base
        directory; failing both, a path relative to the data directory (mariadbd's working directory)."""
        short = hashlib.sha1(node.id.encode()).hexdigest()[:12]
        for candidate in (Path(node.dir, "mysqld.sock"), self.base_dir / ".sock" / f"{short}.sock"):
            if len(str(candidate)) <= SOCKET_LIMIT:
                return str(candidate)
        return "mysqld.sock"

    def prepare(self, node, peers):
        data = Path(node.dir, "data")
        shutil.copytree(self.template, data, symlinks=True)
        (data / "distlab-template").unlink()
        Path(node.dir, "tmp").mkdir(exist_ok=True)
        node.socket = self.socket_path(node)
        if node.socket.startswith(str(self.base_dir / ".sock")):
            Path(node.socket).parent.mkdir(exist_ok=True)

    def argv(self, node):
        return [
            self.tools["mariadbd"],
            "--no-defaults",
            *self._user(),
            f"--datadir={_in(node, 'data')}",
            f"--port={node.port}",
            f"--bind-address={HOST}",
            f"--socket={node.socket}",
            f"--pid-file={_in(node, 'mariadbd.pid')}",
            f"--tmpdir={_in(node, 'tmp')}",
            f"--log-error={_in(node, 'server.log')}",
            *MARIADB_OPTIONS,
            *node.options,  # the caller's extra settings (Supervisor.up(options=...)) win
        ]

    def connect(self, port, timeout=2.0, **options):
        return pymysql.connect(
            host=HOST,
            port=port,
            user=MARIADB_USER,
            password=MARIADB_PASSWORD,
            connect_timeout=timeout,
            read_timeout=timeout,
            write_timeout=timeout,
            ssl_disabled=True,
            autocommit=True,
            **options,
        )

    def probe(self, node):
        try:
            conn = self.connect(node.port, timeout=1.0)
        except pymysql.Error as exc:
            raise NotReady(str(exc)) from None
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
        finally:
            conn.close()

    def kill_connections(self, node):
        """KILL CONNECTION of every client connection but the killer's own."""
        conn = self.connect(node.port, timeout=5.0)
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT ID FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() "
                    "AND COMMAND NOT IN ('Daemon', 'Binlog Dump') AND USER NOT IN ('system user', 'event_scheduler')"
                )
                ids = [row[0] for row in cur.fetchall()]
                killed = []
                for thread_id in ids:
                    try:
                        cur.execute("KILL CONNECTION %s", (thread_id,))
                        killed.append(thread_id)
                    except pymysql.OperationalError as exc:
                        if exc.args[0] != 1094:  # unknown thread: it ended on its own meanwhile
                            raise
        finally:
            conn.close()
        return {"connections": killed}


class Redis:
    kind = "redis"
    prefix = "redis"
    ports = 1
    binaries = ("redis-server",)

    def __init__(self, tools, base_dir):
        self.tools = tools

    @staticmethod
    def url(port):
        return f"redis://{HOST}:{port}/0"

    def prepare(self, node, peers):
        Path(node.dir, "data").mkdir()

    def argv(self, node):
        # Append-only file, fsync every second: a restart keeps the data, a SIGKILL may lose the last
        # second of writes, which is what a real Redis does (and what lock lessons are about).
        return [
            self.tools["redis-server"],
            "--port",
            str(node.port),
            "--bind",
            HOST,
            "--dir",
            _in(node, "data"),
            "--daemonize",
            "no",
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--logfile",
            _in(node, "server.log"),
        ]

    def _command(self, port, *words, timeout=1.0):
        request = f"*{len(words)}\r\n" + "".join(f"${len(w.encode())}\r\n{w}\r\n" for w in words)
        return procs.ask(port, request.encode(), b"\r\n", timeout).decode(errors="replace").strip()

    def probe(self, node):
        try:
            reply = self._command(node.port, "PING")
        except OSError as exc:
            raise NotReady(str(exc)) from None
        if reply != "+PONG":  # -LOADING while it replays its append-only file
            raise NotReady(reply)

    def kill_connections(self, node):
        """CLIENT KILL of every normal client connection, keeping the killer's own."""
        reply = self._command(node.port, "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes", timeout=5.0)
        if not reply.startswith(":"):
            raise RuntimeError(f"CLIENT KILL answered {reply}")
        return {"killed": int(reply[1:])}


def four_letter_word(port, word, timeout=1.0):
    return procs.ask(port, word.encode(), timeout=timeout).decode(errors="replace")


class ZooKeeper:
    kind = "zookeeper"
    prefix = "zk"
    ports = 3  # client, quorum, leader election (the last two used only in an ensemble)
    binaries = ("java", "zookeeper.jar")

    def __init__(self, tools, base_dir):
        self.tools = tools

    @staticmethod
    def url(port):
        return f"{HOST}:{port}"

    def prepare(self, node, peers):
        data = Path(node.dir, "data")
        data.mkdir()
        Path(node.dir, "tmp").mkdir()
        # A short tick so lessons on session expiry need not wait long: sessions of 1 to 30 s.
        lines = [
            "tickTime=500",
            "initLimit=20",
            "syncLimit=10",
            "minSessionTimeout=1000",
            "maxSessionTimeout=30000",
            f"dataDir={data}",
            f"clientPort={node.port}",
            f"clientPortAddress={HOST}",
            "admin.enableServer=false",
            "4lw.commands.whitelist=ruok,srvr,stat,mntr,cons",
            "maxClientCnxns=0",
            "preAllocSize=1024",
        ]
        if len(peers) > 1:
            (data / "myid").write_text(f"{node.myid}\n")
            for peer in peers:
                lines.append(f"server.{peer.myid}={HOST}:{peer.peer_port}:{peer.election_port}")
        Path(node.dir, "zoo.cfg").write_text("\n".join(lines) + "\n")

    def argv(self, node):
        return [
            self.tools["java"],
            "-Xmx128m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-XX:-UsePerfData",  # no /tmp/hsperfdata_<user>: nothing is written outside the node
            f"-Djava.io.tmpdir={_in(node, 'tmp')}",
            f"-Dzookeeper.log.dir={node.dir}",
            "-Dzookeeper.root.logger=INFO,CONSOLE",
            "-cp",
            self.tools["zookeeper.jar"],
            "org.apache.zookeeper.server.quorum.QuorumPeerMain",
            _in(node, "zoo.cfg"),
        ]

    def probe(self, node):
        try:
            if four_letter_word(node.port, "ruok") != "imok":
                raise NotReady("no imok")
            # ruok answers before an ensemble member has joined a quorum; srvr says when it serves.
            if "Mode:" not in four_letter_word(node.port, "srvr"):
                raise NotReady("not serving yet")
        except OSError as exc:
            raise NotReady(str(exc)) from None

    def kill_connections(self, node):
        raise ValueError("kill-connections is for MariaDB and Redis nodes; on ZooKeeper use drop or expire-session")


def expire_session(hosts, client_id, timeout=5.0):
    """Expires a client's ZooKeeper session: closing the socket under the client expires nothing, so
    a second client joins the same session (id and password) and closes it, as Curator's test kit does.
    The server then deletes the session's ephemeral nodes and the first client sees SESSION_EXPIRED."""
    session, password = client_id
    if isinstance(password, str):
        password = bytes.fromhex(password)
    twin = KazooClient(hosts=hosts, client_id=(int(session), password), timeout=timeout)
    twin.start(timeout=timeout)
    try:
        twin.stop()
    finally:
        with contextlib.suppress(Exception):
            twin.close()
    return {"session": hex(int(session))}


KINDS = {k.kind: k for k in (MariaDB, Redis, ZooKeeper)}
