"""Fixtures for live capture: throw-away network namespaces with veth pairs, and `netdetect
sniff` run as a real process inside one of them."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from eve_schema import check_record

REPO = Path(__file__).resolve().parents[2]
PCAPS = REPO / "pcaps"
_serial = itertools.count()


def require_root_tools() -> None:
    """These tests need root and iproute2; a missing piece is a broken CI runner, not a skip."""
    assert os.geteuid() == 0, "tests/live need root (network namespaces, packet sockets)"
    for tool in ("ip", "tc", "tcpreplay"):
        assert shutil.which(tool), f"{tool} is not installed"


class Netns:
    """One network namespace made for a test; deleted (with its interfaces) on close."""

    def __init__(self, tag: str) -> None:
        self.name = f"ndt{os.getpid()}-{next(_serial)}-{tag}"
        subprocess.run(["ip", "netns", "add", self.name], check=True, capture_output=True)
        self.run("ip", "link", "set", "lo", "up")
        # No IPv6 autoconfiguration chatter (router solicitations, MLD): frame counts in the
        # tests must be exactly what they injected.
        self.run("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
        self.run("sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1")

    def prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.name]

    def run(self, *cmd: str, check: bool = True,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.prefix(), *cmd], check=check, capture_output=True, text=True,
                              timeout=timeout)

    def veth(self, a: str, b: str, *, mtu: int = 1500) -> None:
        self.run("ip", "link", "add", a, "mtu", str(mtu), "type", "veth", "peer", "name", b,
                 "mtu", str(mtu))
        self.run("ip", "link", "set", a, "up")
        self.run("ip", "link", "set", b, "up")

    def close(self) -> None:
        subprocess.run(["ip", "netns", "del", self.name], check=False, capture_output=True)


NetnsFactory = Callable[[str], Netns]


@pytest.fixture
def netns() -> Iterator[NetnsFactory]:
    require_root_tools()
    made: list[Netns] = []

    def make(tag: str) -> Netns:
        ns = Netns(tag)
        made.append(ns)
        return ns

    yield make
    for ns in made:
        ns.close()


class Sniff:
    """`python -m netdetect sniff` in a namespace; its log and EVE output go to files."""

    def __init__(self, ns: Netns, workdir: Path, *args: str, name: str = "sniff",
                 wrapper: tuple[str, ...] = (), eve_path: Path | None = None) -> None:
        self.eve_path = eve_path or workdir / f"{name}.eve.json"
        self.log_path = workdir / f"{name}.log"
        self.out_path = workdir / f"{name}.out"
        env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
        with self.log_path.open("wb") as err, self.out_path.open("wb") as out:
            self.proc = subprocess.Popen(
                [*ns.prefix(), *wrapper, sys.executable, "-m", "netdetect.cli", "sniff", "--eve",
                 str(self.eve_path), *args],
                stdout=out, stderr=err, env=env, cwd=REPO,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        end = time.monotonic() + timeout
        rx = re.compile(pattern)
        while time.monotonic() < end:
            m = rx.search(self.log())
            if m:
                return m
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no {pattern!r} in the sensor log:\n{self.log()}")

    def wait_ready(self, timeout: float = 30.0) -> None:
        self.wait_log(r"all \d+ worker\(s\) capturing", timeout)

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, sig)

    def wait(self, timeout: float = 60.0) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> int:
        self.signal(signal.SIGTERM)
        return self.wait()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.signal(signal.SIGKILL)
            self.proc.wait(10)

    def eve(self, *, flows: bool = False) -> list[dict[str, Any]]:
        """Alert (and allowed) events; with flows=True the flow-end records as well."""
        if not self.eve_path.exists():
            return []
        events = [json.loads(line) for line in self.eve_path.read_text().splitlines() if line]
        for e in events:
            check_record(e)
        return [e for e in events if flows or e["event_type"] != "flow"]

    def final_counters(self) -> dict[int, dict[str, int]]:
        """Per-worker counters from the `worker N final: k=v ...` lines logged at exit."""
        out: dict[int, dict[str, int]] = {}
        for m in re.finditer(r"worker (\d+) final: (.*)", self.log()):
            out[int(m.group(1))] = {k: int(v) for k, v in
                                    (kv.split("=") for kv in m.group(2).split())}
        return out


@pytest.fixture
def sniffs() -> Iterator[list[Sniff]]:
    started: list[Sniff] = []
    yield started
    for s in started:
        s.kill()


def tcpreplay(ns: Netns, iface: str, *pcaps: Path, extra: tuple[str, ...] = ()) -> int:
    """Send captures out of `iface` in `ns`; returns the packets tcpreplay says it sent."""
    res = ns.run("tcpreplay", "-i", iface, *extra, *map(str, pcaps), timeout=600)
    m = re.search(r"Successful packets:\s+(\d+)", res.stdout)
    assert m, res.stdout + res.stderr
    return int(m.group(1))
