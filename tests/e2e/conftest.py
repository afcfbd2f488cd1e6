"""The end-to-end lab: a real broker, a loopback pool, a miner with cron/systemd persistence, the
agent as a process, a packet capture of the mining flow, and `netdetect replay --confirm`.

The broker, PKI layout and agent process come from tests/confirm/conftest.py; this module adds
the programs a real incident has (pool, miner, persistence files) and the capture in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest
from confirm.conftest import (
    SENSOR,
    AgentProcess,
    Broker,
    Pki,
    wait_port,
    wait_status,
    write_agent_toml,
)
from eve_schema import check_record

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
HERE = Path(__file__).resolve().parent
POOL_SIM = HERE / "pool_sim.py"
MINER_SIM = HERE / "miner_sim.py"
VICTIM = "victim-01"
SPARE = "victim-02"  # a second host identity for tests that stop its agent
WALLET = (
    "48edfHu7V9Z84YzzMa6fUueoELZ9ZRXq9VetWzYGzKt52XU5xvqgzYnDK9URnRoJMk1j8nLwEVsaSWJ4fhdUyZijBGUicoD"
)
# Loopback frames carry a zeroed Ethernet header (ARPHRD_LOOPBACK), so they are written as
# DLT_EN10MB like any Ethernet capture.
LINKTYPE_ETHERNET = 1
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


# --- processes the incident is made of ---------------------------------------------------------


def _kill(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)


def _first_line(proc: subprocess.Popen[str], prefix: str, timeout: float) -> str:
    """The child's first stdout line, which must start with `prefix`; fails loudly otherwise."""
    out = proc.stdout
    assert out is not None
    box: list[str] = []
    # readline has no timeout of its own; a child that hangs before printing must not hang us.
    reader = threading.Thread(target=lambda: box.append(out.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    line = box[0] if box else ""
    if not line.startswith(prefix):
        _kill(proc)
        raise RuntimeError(f"{proc.args!r} did not print {prefix!r} within {timeout}s: {line!r}")
    return line[len(prefix):].strip()


class PoolSim:
    """tests/e2e/pool_sim.py as a child process on a free loopback port."""

    def __init__(self, *, job_interval: float = 0.5) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(POOL_SIM), "--job-interval", str(job_interval)],
            stdout=subprocess.PIPE, text=True)
        self.port = int(_first_line(self.proc, "LISTEN ", 10))
        wait_port(self.port, 5)

    @property
    def url(self) -> str:
        return f"stratum+tcp://127.0.0.1:{self.port}"

    def close(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                _kill(self.proc)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@dataclass(frozen=True)
class Install:
    """Where the dropper put the miner and the command line its persistence relaunches."""

    path: Path
    args: tuple[str, ...]

    @property
    def command(self) -> str:
        return " ".join([str(self.path), *self.args])


def install_miner(home: Path, pool: PoolSim, *, threads: int = 1) -> Install:
    """Copy the miner to ~/.cache/xmrig/xmrig, where droppers like to hide it."""
    path = home / ".cache" / "xmrig" / "xmrig"
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(MINER_SIM, path)
    path.chmod(0o755)
    return Install(path, ("-o", pool.url, "-u", WALLET, "-p", "x", "--donate-level", "1",
                          "-t", str(threads)))


class MinerSim:
    """The installed miner started as ``python3 <path> <args>``; knows its local port."""

    def __init__(self, install: Install) -> None:
        self.install = install
        self.proc = subprocess.Popen([sys.executable, str(install.path), *install.args],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.local_port = int(_first_line(self.proc, "CONNECTED ", 10))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def close(self) -> None:
        _kill(self.proc)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


# Line numbers matter: the alert must name the line that relaunches the miner.
CRON_LINE = 4
UNIT_EXEC_LINE = 6


def plant_persistence(root: Path, install: Install) -> dict[str, Path]:
    """The relaunchers a dropper leaves: /etc/cron.d/sysupdate and a systemd service, below
    `root`, plus a harmless cron file and unit that must not be reported."""
    cron = root / "etc" / "cron.d" / "sysupdate"
    unit = root / "etc" / "systemd" / "system" / "sysupdate.service"
    cron.parent.mkdir(parents=True, exist_ok=True)
    unit.parent.mkdir(parents=True, exist_ok=True)
    cron.write_text(
        "SHELL=/bin/sh\n"
        "PATH=/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin\n"
        "# keep the system updated\n"
        f"*/5 * * * * root {install.command} >/dev/null 2>&1\n"
    )
    unit.write_text(
        "[Unit]\n"
        "Description=System update service\n"
        "After=network-online.target\n"
        "\n"
        "[Service]\n"
        f"ExecStart={install.command}\n"
        "Restart=always\n"
        "RestartSec=10\n"
        "\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n"
    )
    (root / "etc" / "cron.d" / "logrotate").write_text(
        "17 * * * * root /usr/sbin/logrotate /etc/logrotate.conf\n")
    (unit.parent / "sshd.service").write_text(
        "[Service]\nExecStart=/usr/sbin/sshd -D\nRestart=on-failure\n")
    wants = unit.parent / "multi-user.target.wants"
    wants.mkdir(exist_ok=True)
    (wants / "sysupdate.service").symlink_to("/etc/systemd/system/sysupdate.service")
    return {"cron": cron, "unit": unit}


# --- capture -----------------------------------------------------------------------------------


class LoopbackCapture:
    """Frames of one TCP port on `lo`, read from an AF_PACKET socket and written as a pcap.

    Loopback shows every frame twice (leaving and arriving); only the arriving copy is kept,
    as libpcap does.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.bind(("lo", 0))
        self.sock.settimeout(0.05)
        self.frames: list[tuple[float, bytes]] = []
        self.payloads: list[bytes] = []
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lo-capture", daemon=True)
        self._thread.start()

    def _wanted(self, frame: bytes) -> bytes | None:
        """The TCP payload if the frame is IPv4/TCP to or from the port, else None."""
        if len(frame) < 34 or frame[12:14] != b"\x08\x00" or frame[23] != 6:
            return None
        ihl = (frame[14] & 0x0F) * 4
        tcp = 14 + ihl
        if len(frame) < tcp + 20:
            return None
        sport, dport = struct.unpack_from("!HH", frame, tcp)
        if self.port not in (sport, dport):
            return None
        total = struct.unpack_from("!H", frame, 16)[0]
        data_off = (frame[tcp + 12] >> 4) * 4
        return frame[tcp + data_off : 14 + total]

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                frame, addr = self.sock.recvfrom(262144)
            except TimeoutError:
                continue
            except OSError:
                break
            if addr[2] == PACKET_OUTGOING:
                continue
            payload = self._wanted(frame)
            if payload is None:
                continue
            with self._cond:
                self.frames.append((time.time(), frame))
                if payload:
                    self.payloads.append(payload)
                self._cond.notify_all()

    def wait_for(self, pred: Callable[[list[bytes]], bool], timeout: float) -> None:
        """Block until `pred(payloads so far)` holds; AssertionError after `timeout`."""
        with self._cond:
            if not self._cond.wait_for(lambda: pred(self.payloads), timeout):
                raise AssertionError(f"capture on port {self.port}: condition not met in "
                                     f"{timeout}s; {len(self.frames)} frames seen")

    def stop(self) -> None:
        """Stop reading; safe to call more than once."""
        self._stop.set()
        self._thread.join(5)
        self.sock.close()

    def write(self, path: Path) -> Path:
        with path.open("wb") as fh:
            write_pcap(fh, self.frames)
        return path


def write_pcap(fh: IO[bytes], frames: list[tuple[float, bytes]]) -> None:
    """Classic pcap, microsecond timestamps, Ethernet link type."""
    fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, LINKTYPE_ETHERNET))
    for ts, frame in frames:
        sec = int(ts)
        usec = round((ts - sec) * 1e6)
        if usec >= 1_000_000:
            sec, usec = sec + 1, usec - 1_000_000
        fh.write(struct.pack("<IIII", sec, usec, len(frame), len(frame)))
        fh.write(frame)


def count(payloads: list[bytes], needle: bytes) -> int:
    return sum(p.count(needle) for p in payloads)


def sessions_ready(logins: int, jobs: int) -> Callable[[list[bytes]], bool]:
    """Predicate: `logins` logins were sent and `jobs` job pushes came back, in all."""
    return lambda p: (count(p, b'"method":"login"') >= logins
                      and count(p, b'"method":"job"') >= jobs)


# --- configuration files -----------------------------------------------------------------------


def write_inventory(path: Path, hosts: dict[str, str]) -> Path:
    lines: list[str] = []
    for host_id, address in hosts.items():
        lines += ["[[host]]", f'id = "{host_id}"', f'addresses = ["{address}"]', ""]
    path.write_text("\n".join(lines))
    return path


def write_sensor(path: Path, broker: Broker, inventory: Path, *, timeout: float = 10.0,
                 cpu_window: float = 1.0, cpu_threshold: float = 30.0,
                 max_outstanding: int = 64, wallets: tuple[str, ...] = (),
                 exes: tuple[str, ...] = ()) -> Path:
    cert, key = broker.pki.cert(SENSOR)
    lines = [
        "[sensor]", f'id = "{SENSOR}"', f'inventory = "{inventory}"', "",
        "[mqtt]", 'host = "127.0.0.1"', f"port = {broker.port}", f'ca = "{broker.pki.ca}"',
        f'cert = "{cert}"', f'key = "{key}"', "keepalive = 10", "connect_timeout = 5",
        "reconnect_min = 0.05", "reconnect_max = 0.5", "",
        "[confirm]", f'signing_key = "{broker.pki.signing_key}"', f"timeout = {timeout}",
        f"cpu_window = {cpu_window}", f"max_outstanding = {max_outstanding}", "",
        "[correlate]", f"cpu_threshold = {cpu_threshold}", "",
        "[allowlist]", f"wallets = {json.dumps(list(wallets))}", f"exes = {json.dumps(list(exes))}",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


# --- the sensor as a process -------------------------------------------------------------------


@dataclass(frozen=True)
class ReplayRun:
    returncode: int
    alerts: list[dict[str, Any]]
    seconds: float
    stderr: str


def replay_cmd(pcap: Path, sensor: Path, eve: Path) -> list[str]:
    return [sys.executable, "-m", "netdetect.cli", "replay", str(pcap), "--confirm",
            "--config", str(sensor), "--eve", str(eve), "--home-net", "127.0.0.0/8", "-q"]


def replay_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def read_eve(eve: Path) -> list[dict[str, Any]]:
    """Alert and allowed events; flow-end records (event_type "flow") are left out."""
    if not eve.exists():
        return []
    events = [json.loads(line) for line in eve.read_text().splitlines() if line.strip()]
    for e in events:
        check_record(e)
    return [e for e in events if e["event_type"] != "flow"]


def run_replay(pcap: Path, sensor: Path, eve: Path, *, timeout: float = 60) -> ReplayRun:
    """`netdetect replay CAP --confirm ...` as a real process; its EVE lines, decoded."""
    started = time.monotonic()
    done = subprocess.run(replay_cmd(pcap, sensor, eve), capture_output=True, text=True,
                          timeout=timeout, env=replay_env(), cwd=REPO, check=False)
    return ReplayRun(done.returncode, read_eve(eve), time.monotonic() - started, done.stderr)


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def e2e_pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    root = tmp_path_factory.mktemp("e2e-pki")
    subprocess.run(
        [str(DEPLOY / "make-pki.sh"), "-o", str(root), "-d", "2", "-b", "127.0.0.1",
         "-s", SENSOR, VICTIM, SPARE],
        check=True, capture_output=True, timeout=120,
    )
    return Pki(root)


def start_broker(pki: Pki, workdir: Path) -> Broker:
    workdir.mkdir(parents=True, exist_ok=True)
    broker = Broker(pki, workdir)
    broker.start()
    return broker


@pytest.fixture(scope="module")
def lab_broker(e2e_pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    broker = start_broker(e2e_pki, tmp_path_factory.mktemp("e2e-broker"))
    try:
        yield broker
    finally:
        broker.kill()


@pytest.fixture(scope="module")
def pool() -> Iterator[PoolSim]:
    sim = PoolSim()
    try:
        yield sim
    finally:
        sim.close()


def start_agent(workdir: Path, broker: Broker, host_id: str, root: Path, **opts: object
                ) -> AgentProcess:
    """`python -m netdetect.agent.daemon --config agent.toml` with persistence read below root."""
    config = write_agent_toml(workdir / f"agent-{host_id}.toml", broker, host_id,
                              root=json.dumps(str(root)), **opts)
    return AgentProcess(config, workdir / f"agent-{host_id}.log", real_collector=True)


@dataclass
class Incident:
    """A running miner on 'victim-01', its persistence, its agent and a capture of its flow."""

    workdir: Path
    broker: Broker
    pool: PoolSim
    miner: MinerSim
    agent: AgentProcess
    root: Path
    planted: dict[str, Path]
    pcap: Path


@pytest.fixture(scope="module")
def incident(lab_broker: Broker, pool: PoolSim, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[Incident]:
    workdir = tmp_path_factory.mktemp("e2e-incident")
    root = workdir / "root"
    install = install_miner(workdir / "home", pool)
    planted = plant_persistence(root, install)
    agent = start_agent(workdir, lab_broker, VICTIM, root)
    capture = LoopbackCapture(pool.port)
    miner: MinerSim | None = None
    try:
        asyncio.run(wait_status(lab_broker, VICTIM, lambda s: s.state == "online"))
        miner = MinerSim(install)
        capture.wait_for(sessions_ready(logins=1, jobs=2), timeout=15)
        capture.stop()
        pcap = capture.write(workdir / "victim-01.pcap")
        yield Incident(workdir, lab_broker, pool, miner, agent, root, planted, pcap)
    finally:
        capture.stop()
        if miner is not None:
            miner.close()
        agent.close()
