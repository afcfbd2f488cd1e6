"""Real child processes that own sockets and burn CPU, for the host collectors' tests."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from netdetect.agent import procs

PYTHON = os.path.realpath(sys.executable)
PYTHON_HOME = sys.base_prefix

# The child: opens one socket as told by ND_* variables, prints "ready <local port>
# <remote port>", then spins or idles until killed. Extra argv (a miner-like command line)
# is ignored, which is the point: only the cmdline is miner-like.
CHILD = r"""
import os, socket, sys
fam = socket.AF_INET6 if os.environ["ND_FAMILY"] == "6" else socket.AF_INET
kind = socket.SOCK_DGRAM if os.environ["ND_PROTO"] == "udp" else socket.SOCK_STREAM
host, port = os.environ["ND_HOST"], int(os.environ["ND_PORT"])
keep = []
if port == 0:
    lfam = socket.AF_INET6 if ":" in host and not host.startswith("::ffff:") else socket.AF_INET
    lst = socket.socket(lfam, kind)
    lst.bind((host.removeprefix("::ffff:"), 0))
    if kind == socket.SOCK_STREAM:
        lst.listen(8)
    keep.append(lst)
    port = lst.getsockname()[1]
s = socket.socket(fam, kind)
if os.environ.get("ND_UNCONNECTED"):
    s.bind(("127.0.0.1", 0))
    s.sendto(b"x", (host, port))
else:
    s.connect((host, port))
print("ready", s.getsockname()[1], port, flush=True)
if os.environ.get("ND_BUSY"):
    # Ahead of other work on a shared test machine, so "burns a core" holds under load. With
    # autogroup scheduling, nice only ranks tasks inside one session's group: the child runs
    # in its own session (start_new_session) and raises that group's weight too.
    os.setpriority(os.PRIO_PROCESS, 0, -10)
    try:
        with open("/proc/self/autogroup", "w") as fh:
            fh.write("-10")
    except OSError:
        pass
    while True:
        pass
sys.stdin.read()
"""


@dataclass
class Child:
    proc: subprocess.Popen[str]
    local_port: int
    remote_port: int

    @property
    def pid(self) -> int:
        return self.proc.pid


@contextmanager
def listener(proto: str = "tcp", family: int = socket.AF_INET,
             host: str = "127.0.0.1") -> Iterator[int]:
    """A socket the test owns on loopback; yields its port."""
    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    with socket.socket(family, kind) as s:
        s.bind((host, 0))
        if kind == socket.SOCK_STREAM:
            s.listen(16)
        yield s.getsockname()[1]


@contextmanager
def child(*, port: int, host: str = "127.0.0.1", proto: str = "tcp", family: str = "4",
          busy: bool = False, exe: str = PYTHON, extra_args: tuple[str, ...] = (),
          netns: bool = False, unconnected: bool = False) -> Iterator[Child]:
    """Start the child, wait until its socket is open, kill it (by pid) on exit."""
    env = dict(os.environ, ND_FAMILY=family, ND_PROTO=proto, ND_HOST=host, ND_PORT=str(port),
               PYTHONHOME=PYTHON_HOME)
    env.pop("PYTHONPATH", None)
    if busy:
        env["ND_BUSY"] = "1"
    if unconnected:
        env["ND_UNCONNECTED"] = "1"
    argv = [exe, "-c", CHILD, *extra_args]
    if netns:
        # sh brings the new namespace's loopback up, then execs the child under the same pid.
        argv = ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$0" "$@"', *argv]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env=env, start_new_session=busy)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("ready"):
            raise RuntimeError(f"child failed to start: {line!r}, rc={proc.poll()}")
        _, local, remote = line.split()
        if busy:
            _wait_spinning(proc.pid)
        yield Child(proc, int(local), int(remote))
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        if proc.stdin is not None:
            proc.stdin.close()
        if proc.stdout is not None:
            proc.stdout.close()


def _wait_spinning(pid: int, cpu_seconds: float = 0.4, timeout: float = 10.0) -> None:
    """Return once the child has burnt `cpu_seconds`: a freshly forked task gets less than a
    full core from the scheduler for its first fraction of a second, and the tests measure a
    miner that has been running, not one starting up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if procs.read_stat(pid).ticks >= cpu_seconds * procs.CLK_TCK:
            time.sleep(0.2)
            return
        time.sleep(0.05)
    raise RuntimeError(f"child {pid} never started spinning")


@contextmanager
def fake_miner_binary(directory: str = "/tmp/xmrig-test-dir", name: str = "xmrig",
                      marker: bytes = b"\0stratum+tcp://\0--donate-level\0") -> Iterator[Path]:
    """A copy of the Python interpreter named like a miner, with miner strings appended.

    The appended bytes sit past the ELF image, so the copy still runs; its RUNPATH is absolute,
    so it finds libpython from anywhere.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    path = d / name
    shutil.copyfile(PYTHON, path)
    with path.open("ab") as fh:
        fh.write(marker)
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(d, ignore_errors=True)
