"""Hidden processes: a libprocesshider-like readdir filter, built here from the lab's source
and preloaded into the collecting process only, must not hide the flow's owner from the
agent; the agent reports the hiding itself. Plus the CPU/memory/config facts of the
disguised miner (nice 19, scratchpad, config.json) read from a real running process."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import lab_kit
import pytest

from netdetect.agent import hidden, procs

REPO = Path(__file__).resolve().parents[2]

# Run in a child with LD_PRELOAD: what libc's readdir shows, what the agent's report says.
PROBE = r"""
import json, os, sys, time
from netdetect.agent.report import build_report
from netdetect.agent.schema import FlowSpec, HostQuery
pid, rport, lport = (int(a) for a in sys.argv[1:4])
q = HostQuery(v=1, host_id="h", nonce="ab" * 16, issued_at=time.time(),
              expires_at=time.time() + 30, cpu_window=0.5, top_n=0,
              flow=FlowSpec(proto="tcp", remote_ip="127.0.0.1", remote_port=rport,
                            local_port=lport))
r = build_report(q, host_id="h")
p = r.process
print(json.dumps({
    "readdir_sees": str(pid) in os.listdir("/proc"),
    "found": r.found, "pid": p.pid if p else None, "hidden": p.hidden if p else None,
    "host_hidden": r.host.hidden_pids, "hooks": r.host.preload_hooks,
    "nice": p.nice if p else None, "anon_max_kb": p.anon_max_kb if p else None,
    "config_pools": p.config_pools if p else None, "traits": p.traits if p else None,
    "exe_suspicious_dir": p.exe_suspicious_dir if p else None, "errors": r.errors}))
"""


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return lab_kit.build(tmp_path_factory.mktemp("kit"))


class Pool:
    """A loopback listener that accepts and holds connections (the miner only logs in)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self.sock.accept()
                self.conns.append(conn)

    def close(self) -> None:
        self.sock.close()
        for c in self.conns:
            c.close()


@pytest.fixture
def miner(kit: dict[str, Path], tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int, int]]:
    pool = Pool()
    home = tmp_path / ".X11-unix-" / "kw"
    home.mkdir(parents=True)
    exe = home / "kworker"
    exe.write_bytes(kit["miner"].read_bytes())
    exe.chmod(0o755)
    lab_kit.write_config(home, f"127.0.0.1:{pool.port}", threads_hint=50, scratch_mb=64)
    p = subprocess.Popen([str(exe)], cwd=home, stdout=subprocess.PIPE, text=True,
                         start_new_session=True)
    try:
        line = p.stdout.readline() if p.stdout else ""
        assert "connected" in line, f"miner did not connect: {line!r}"
        lport = int(line.split("local_port=")[1].split()[0])
        yield p, pool.port, lport
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p.pid, signal.SIGKILL)
        p.wait(10)
        pool.close()


def probe(pid: int, rport: int, lport: int, preload: Path | None) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("LD_PRELOAD", None)
    if preload is not None:
        env["LD_PRELOAD"] = str(preload)
    out = subprocess.run([sys.executable, "-c", PROBE, str(pid), str(rport), str(lport)],
                         capture_output=True, text=True, env=env, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_hidden_owner_is_found_and_reported(kit: dict[str, Path],
                                            miner: tuple[subprocess.Popen[str], int, int]) -> None:
    p, rport, lport = miner
    home = Path(f"/proc/{p.pid}/cwd").readlink()
    got = probe(p.pid, rport, lport, kit["hider"])
    # The hook works: libc's readdir in that process no longer lists the miner ...
    assert got["readdir_sees"] is False
    # ... yet the agent finds it as the flow's owner, and says it was hidden and how.
    assert got["found"] is True, got
    assert got["pid"] == p.pid
    assert got["hidden"] is True
    assert p.pid in got["host_hidden"]  # type: ignore[operator]
    assert got["hooks"] == [str(kit["hider"])]
    # The disguise's other traits, read from the running process.
    assert got["nice"] == 19
    assert got["anon_max_kb"] >= 64 * 1024  # type: ignore[operator]
    assert got["config_pools"] == [f"{home}/config.json: 127.0.0.1:{rport}"]
    assert "name:kthread-disguise" in got["traits"]  # type: ignore[operator]
    assert "exe-strings:upx-packed" in got["traits"]  # type: ignore[operator]
    assert got["exe_suspicious_dir"] is True


def test_without_the_hook_nothing_is_hidden(kit: dict[str, Path],
                                            miner: tuple[subprocess.Popen[str], int, int]) -> None:
    p, rport, lport = miner
    got = probe(p.pid, rport, lport, None)
    assert got["readdir_sees"] is True
    assert got["pid"] == p.pid
    assert got["hidden"] is False
    assert got["host_hidden"] == []
    assert got["hooks"] == []


def test_kernel_listing_matches_readdir_under_churn() -> None:
    # Processes born and gone between the listings are never mistaken for hidden ones.
    stop = time.monotonic() + 3
    children: list[subprocess.Popen[bytes]] = []
    while time.monotonic() < stop:
        children.append(subprocess.Popen(["sleep", "0.01"]))
        view = hidden.proc_view()
        assert view.error is None
        assert view.hidden == [], view.hidden
        assert os.getpid() in view.pids
        children = [c for c in children if c.poll() is None]
    for c in children:
        c.wait(10)


def test_getdents_lists_what_readdir_lists(tmp_path: Path) -> None:
    names = {f"f{i}" for i in range(3000)}  # several getdents64 buffers' worth
    for n in names:
        (tmp_path / n).touch()
    assert set(hidden.getdents_names(str(tmp_path))) - {".", ".."} == names
    with pytest.raises(NotADirectoryError):
        hidden.getdents_names(str(tmp_path / "f1"))


def test_cpu_profile_sees_sched_idle_and_lifetime() -> None:
    code = ("import os\nos.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))\n"
            "print('ok', flush=True)\nwhile True: pass\n")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None
        assert p.stdout.readline().strip() == "ok"
        time.sleep(0.5)
        prof = procs.cpu_profile(p.pid)
        assert prof.policy == "idle"
        assert prof.lifetime_percent > 0
    finally:
        p.kill()
        p.wait(10)


def test_config_pools_only_from_open_files_and_its_own_dirs(tmp_path: Path) -> None:
    work, other = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    other.mkdir()
    (work / "config.json").write_text('{"pools": [{"url": "pool.example.net:3333"}]}')
    (work / "notes.md").write_text("stratum+tcp://ignored.example:1")  # not a config name
    (other / "miner.conf").write_text("-o stratum+tcp://opened.example.org:4444\n")
    (other / "unrelated.conf").write_text("stratum+tcp://never.example:5555\n")
    code = ("import sys\nfh = open(sys.argv[1])\nprint('ok', flush=True)\n"
            "sys.stdin.read()\n")
    p = subprocess.Popen([sys.executable, "-c", code, str(other / "miner.conf")], cwd=work,
                         stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None
        assert p.stdout.readline().strip() == "ok"
        found = procs.config_pools(p.pid, None)
    finally:
        p.kill()
        p.wait(10)
    assert sorted(found) == sorted([f"{other}/miner.conf: stratum+tcp://opened.example.org:4444",
                                    f"{work}/config.json: pool.example.net:3333"])
