"""The lab end to end: namespaces, a software SPAN port, a pool, a miner relaunched by cron,
background traffic, `netdetect sniff --confirm` against a real Mosquitto and a real agent."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confirm.conftest import SENSOR, Broker, Pki, write_agent_toml, write_sensor_toml
from eve_schema import check_record

from .conftest import REPO, require_root_tools

pytestmark = pytest.mark.netns

LAB = REPO / "deploy" / "lab"
HOST_ID = "victim-01"


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[dict[str, Any]]:
    require_root_tools()
    prefix = f"ndl{os.getpid() % 100000}"
    state = tmp_path / "lab-state"
    cmd = [sys.executable, str(LAB / "lab.py")]
    up = subprocess.run([*cmd, "up", "--prefix", prefix, "--state", str(state)],
                        capture_output=True, text=True, timeout=120, check=False)
    assert up.returncode == 0, up.stderr
    try:
        yield json.loads((state / "lab.json").read_text())
    finally:
        subprocess.run([*cmd, "down", "--prefix", prefix, "--state", str(state)],
                       capture_output=True, timeout=120, check=False)
        left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                              check=False).stdout
        assert prefix not in left, f"lab namespaces left behind: {left}"


class Procs:
    """Processes a test starts inside lab namespaces; killed by pid at the end."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, ns: str, name: str, *argv: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
        with (self.workdir / f"{name}.log").open("wb") as log:
            p = subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdout=log,
                                 stderr=subprocess.STDOUT, env=env, cwd=REPO)
        self.procs.append(p)
        return p

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")

    def wait_log(self, name: str, pattern: str, timeout: float) -> re.Match[str]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            m = re.search(pattern, self.log(name))
            if m:
                return m
            time.sleep(0.05)
        raise AssertionError(f"no {pattern!r} in {name}.log:\n{self.log(name)}")

    def close(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGKILL)
                p.wait(10)


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    p = Procs(tmp_path)
    yield p
    p.close()


def make_pki(root: Path) -> Pki:
    subprocess.run([str(REPO / "deploy" / "make-pki.sh"), "-o", str(root), "-d", "2", "-b",
                    "127.0.0.1", "-s", SENSOR, HOST_ID], check=True, capture_output=True,
                   timeout=120)
    return Pki(root)


def test_lab_miner_confirmed_persistent_and_background_silent(
        lab: dict[str, Any], procs: Procs, tmp_path: Path) -> None:
    sensor_ns, victim_ns = lab["namespaces"]["sensor"], lab["namespaces"]["victim"]
    # Sensor, broker and agent share the sensor namespace's loopback; the agent still sees
    # the victim's sockets through /proc/<pid>/net (one kernel, one /proc).
    pki = make_pki(tmp_path / "pki")
    bdir = tmp_path / "broker"
    bdir.mkdir()
    broker = Broker(pki, bdir)
    procs.start(sensor_ns, "mosquitto", "/usr/sbin/mosquitto", "-c", str(broker.conf))
    end = time.monotonic() + 15
    while f"127.0.0.1:{broker.port} " not in subprocess.run(
            ["ip", "netns", "exec", sensor_ns, "ss", "-Hltn"], capture_output=True,
            text=True, check=False).stdout:
        assert time.monotonic() < end, procs.log("mosquitto")
        time.sleep(0.05)

    # The victim's filesystem as the agent's persistence collectors see it: a cron entry
    # that relaunches the miner from a hidden directory.
    root = tmp_path / "victim-root"
    (root / "etc" / "cron.d").mkdir(parents=True)
    hidden = tmp_path / "victim-home" / ".cache" / ".kw"
    hidden.mkdir(parents=True)
    miner_path = hidden / "kworkerds"
    shutil.copy(LAB / "miner.py", miner_path)
    miner_cmd = [sys.executable, str(miner_path), "--pool", lab["pool_name"], "--port", "4444",
                 "--dns", lab["dns"], "--share-interval", "2"]
    cron = root / "etc" / "cron.d" / "kworker"
    cron.write_text("SHELL=/bin/sh\n"
                    f"*/10 * * * * root {' '.join(miner_cmd)} >/dev/null 2>&1\n")

    agent_toml = write_agent_toml(tmp_path / "agent.toml", broker, HOST_ID,
                                  root=json.dumps(str(root)))
    procs.start(sensor_ns, "agent", sys.executable, "-m", "netdetect.agent.daemon", "--config",
                str(agent_toml), "--log-level", "DEBUG")
    procs.wait_log("agent", r"connected to 127\.0\.0\.1", 20)

    inventory = tmp_path / "inventory.toml"
    inventory.write_text(f'[[host]]\nid = "{HOST_ID}"\naddresses = ["{lab["victim"]}"]\n')
    sensor_toml = write_sensor_toml(tmp_path / "sensor.toml", broker, inventory, timeout=10.0,
                                    cpu_window=1.0)
    # Alerts and campaign updates are also published to the broker.
    sensor_toml.write_text(sensor_toml.read_text() + "\n[alerts]\nmqtt = true\n")
    eve = tmp_path / "eve.json"
    campaigns = tmp_path / "campaigns.json"
    sniff = procs.start(sensor_ns, "sniff", sys.executable, "-m", "netdetect.cli", "sniff",
                        "-i", lab["span"], "--workers", "2", "--home-net", lab["home_net"],
                        "--confirm", "--config", str(sensor_toml), "--eve", str(eve),
                        "--campaigns", str(campaigns), "--stats-interval", "2", "-q")
    procs.wait_log("sniff", r"all 2 worker\(s\) capturing", 30)

    miner = procs.start(victim_ns, "miner", *miner_cmd)
    m = procs.wait_log("miner", r"connected .* local_port=(\d+) pid=(\d+)", 20)
    miner_port, miner_pid = int(m.group(1)), int(m.group(2))
    assert miner_pid == miner.pid

    bg = subprocess.run(["ip", "netns", "exec", victim_ns, sys.executable,
                         str(LAB / "background.py"), "--web", lab["web"], "--dns", lab["dns"],
                         "--bulk-mib", "16"], capture_output=True, text=True, timeout=120,
                        check=False)
    assert bg.returncode == 0, bg.stderr
    assert bg.stdout.count("https www.lab.example") == 3

    end = time.monotonic() + 45
    while not (eve.exists() and eve.read_text().strip()):
        assert time.monotonic() < end, procs.log("sniff")
        time.sleep(0.2)
    time.sleep(3)  # anything the background traffic might still raise has arrived by now
    os.kill(sniff.pid, signal.SIGTERM)
    assert sniff.wait(60) == 0, procs.log("sniff")

    every = [json.loads(line) for line in eve.read_text().splitlines() if line]
    for record in every:
        check_record(record)
    events = [e for e in every if e["event_type"] != "flow"]
    assert len(events) == 1, json.dumps(every, indent=1)
    ev = events[0]
    # The miner's flow also ends with its flow record, and nothing else has one.
    flows = [e for e in every if e["event_type"] == "flow"]
    assert [f["flow_id"] for f in flows] == [ev["flow_id"]], json.dumps(flows, indent=1)
    assert (ev["src_ip"], ev["src_port"]) == (lab["victim"], miner_port)
    assert (ev["dest_ip"], ev["dest_port"]) == (lab["pool"], 4444)
    nd = ev["netdetect"]
    assert nd["dialect"] == "cryptonote"
    assert nd["verdict"] == "confirmed+persistent", json.dumps(nd, indent=1)
    assert nd["host"]["id"] == HOST_ID
    report = nd["host"]["report"]
    proc = report["process"]
    assert proc["pid"] == miner_pid
    assert proc["exe"] == os.path.realpath(sys.executable)
    assert str(miner_path) in proc["cmdline"]
    assert proc["cpu_percent"] >= 20.0
    cron_hits = [p for p in report["persistence"] if p["kind"] == "cron"]
    assert any(p["path"].endswith("/etc/cron.d/kworker") and p["line"] == 2
               and p["references_process"] for p in cron_hits), report["persistence"]
    assert "T1053.003" in ev["alert"]["metadata"]["mitre_technique_id"]
    log = procs.log("sniff")
    assert re.search(r"final stats: packets=\d+ .*kernel_drops=0", log), log
    assert "record lost" not in log, log
    # The campaign update carries the host's proof: the cron line that relaunches the miner.
    (update,) = [json.loads(line) for line in campaigns.read_text().splitlines()]
    assert update["change"] == "new"
    assert update["campaign"]["id"] == nd["campaign"]["id"]
    assert update["campaign"]["hosts"] == {HOST_ID: 1}
    assert update["campaign"]["severity_why"][:2] == ["a host confirmed the miner process",
                                                      "persistence relaunches it"]
    (entry,) = update["campaign"]["persistence"]
    assert (entry["path"], entry["line"]) == ("/etc/cron.d/kworker", 2)  # as the host sees it
