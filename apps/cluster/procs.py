"""Processes, ports and locks for the supervisor, Linux only (/proc). Plain Python.

A pid alone does not name a process for long: once it exits, the kernel hands the number to the next
one. So every process the supervisor starts is recorded with its start time (/proc/<pid>/stat, field
22) and the machine's boot id, and no signal is ever sent to a pid whose start time no longer matches.
"""

import contextlib
import errno
import fcntl
import os
import random
import signal
import socket
import subprocess
import time
from pathlib import Path

HOST = "127.0.0.1"

# Children this process started, so their exit is collected (a zombie keeps its pid but is dead).
_children: dict[int, subprocess.Popen] = {}


def boot_id():
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _stat(pid):
    """(state letter, start time in clock ticks since boot) or None when there is no such process."""
    try:
        data = Path(f"/proc/{int(pid)}/stat").read_text()
    except (OSError, ValueError):
        return None
    fields = data[data.rindex(")") + 2 :].split()  # the command name may hold spaces and parentheses
    return fields[0], int(fields[19])


def start_time(pid):
    stat = _stat(pid)
    return stat[1] if stat else None


def alive(pid, started=None):
    """True when `pid` runs (a zombie is dead) and, if `started` is given, is still the same process."""
    if not pid:
        return False
    stat = _stat(pid)
    if stat is None or stat[0] in ("Z", "X"):
        return False
    return started is None or stat[1] == started


def stopped(pid):
    """True when the process is stopped by a signal (SIGSTOP): a paused node."""
    stat = _stat(pid)
    return bool(stat) and stat[0] == "T"


def send(pid, sig, started=None):
    """Signals the process and its group (a Redis node's save child pauses and dies with it).

    Returns False, sending nothing, when the pid is no longer the process that was recorded."""
    if not alive(pid, started):
        return False
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def spawn(argv, cwd, log_path, env):
    """Starts a node process in a session of its own (a terminal's Ctrl-C reaches none of them, and
    each can be signalled as a group), its output appended to `log_path`: (pid, start time)."""
    with open(log_path, "ab") as log:
        popen = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _children[popen.pid] = popen
    # 0 never matches a live process: one that exited at once is recorded as gone.
    return popen.pid, start_time(popen.pid) or 0


def reap(pid):
    """Collects the exit of a process this one started, so that it does not linger as a zombie."""
    popen = _children.get(pid)
    if popen is not None and popen.poll() is not None:
        del _children[pid]


def wait_gone(pid, started=None, timeout=10.0):
    """Waits until the process has exited."""
    deadline = time.monotonic() + timeout
    while True:
        reap(pid)
        if not alive(pid, started):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def terminate(pid, started=None, timeout=10.0):
    """Graceful stop: SIGTERM (and SIGCONT, so a paused process can act on it), then SIGKILL."""
    if send(pid, signal.SIGTERM, started):
        send(pid, signal.SIGCONT, started)
        if wait_gone(pid, started, timeout):
            return "terminated"
    if send(pid, signal.SIGKILL, started):
        wait_gone(pid, started, 5.0)
        return "killed"
    return "gone"


def kill(pid, started=None):
    if send(pid, signal.SIGKILL, started):
        wait_gone(pid, started, 5.0)
        return True
    return False


def processes_under(directory):
    """Pids of the node processes that name a path inside `directory`: {pid: that path}.

    Every process the supervisor starts names its node's directory on its command line, so this finds
    them even when no state file recorded them (a crash between spawn and save). Redis rewrites its
    command line, so for redis-server the working directory (its --dir) counts instead; nothing else
    is judged by its working directory, so a shell someone left in a node directory is safe.
    """
    prefix = str(directory).rstrip("/") + "/"
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if pid == os.getpid():
            continue
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        paths = [a.split("=", 1)[-1] for a in args]
        if comm.startswith("redis-"):
            with contextlib.suppress(OSError):
                paths.append(os.readlink(f"/proc/{pid}/cwd") + "/")
        hit = next((p for p in paths if p.startswith(prefix)), None)
        if hit and alive(pid):
            found[pid] = hit
    return found


def ask(port, request, until=None, timeout=5.0):
    """Sends `request` (bytes) to a loopback port and reads the answer up to the bytes `until`, or
    until the other side closes when `until` is None."""
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        while until is None or not data.endswith(until):
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    return data


def port_open(port, timeout=0.5):
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=timeout):
        return True
    return False


def local_port_range():
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def pick_ports(count, exclude=()):
    """`count` distinct loopback ports that are free now.

    They come from below the kernel's ephemeral range, so an outgoing connection or another program's
    bind(0) is never handed one of them between now and the moment our server binds it; `exclude`
    holds the ports other clusters have recorded (and may be about to bind)."""
    low, high = local_port_range()
    span = (20000, low - 1) if low > 21000 else (high + 1, 65535)
    taken = set(exclude)
    held, ports = [], []
    try:
        for _ in range(count * 200):
            if len(ports) == count:
                break
            port = random.randint(*span)
            if port in taken:
                continue
            taken.add(port)
            sock = socket.socket()
            try:
                sock.bind((HOST, port))
            except OSError:
                sock.close()
                continue
            held.append(sock)  # held until all are chosen, so no port is handed out twice
            ports.append(port)
    finally:
        for sock in held:
            sock.close()
    if len(ports) < count:
        raise OSError(errno.EADDRINUSE, f"could not find {count} free loopback ports in {span}")
    return ports


class FileLock:
    """An exclusive flock on a lock file, safe against the file being removed under a waiter.

    After taking the lock it checks the path still names the locked file; if the holder unlinked it
    meanwhile (a cluster taken down), it takes the lock again on the new file."""

    def __init__(self, path, timeout=60.0, what="the lock", error=TimeoutError):
        self.path = Path(path)
        self.timeout = timeout
        self.what = what
        self.error = error
        self.fd = None

    def __enter__(self):
        deadline = time.monotonic() + self.timeout
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        os.close(fd)
                        busy = f"{self.what} is busy (another command has held it for {self.timeout:.0f} s)"
                        raise self.error(busy) from None
                    time.sleep(0.02)
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self.fd = fd
                return self
            os.close(fd)

    def unlink(self):
        """Removes the lock file while holding it (waiters notice and retry on a fresh file)."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def __exit__(self, *exc):
        os.close(self.fd)
        self.fd = None
        return False


def try_lock(path):
    """A FileLock taken only if it is free right now, else None."""
    lock = FileLock(path, timeout=0)
    try:
        return lock.__enter__()
    except TimeoutError:
        return None
