"""The lab against cryptojacking tradecraft, end to end (namespaces, SPAN port, real Mosquitto,
real agent, `netdetect sniff --confirm`), one lab, four acts on a host kept busy by `cc1`:

1. the busy host with a harmless bare-TLS client: the host is asked early and clears it;
2. a browser reading a pool's web site (pool DNS, SNI, ALPN h2): no alert, no ask;
3. a miner's no-SNI TLS to a literal IP on 443, no DNS (score 25): confirmed through an early
   ask within 5 s of its connection;
4. the disguised miner — UPX-packed, named kworker, pool in config.json, nice 19, throttled to
   half the cores, a cron entry, hidden from /proc listings by a preload library active in
   the agent's own process — is confirmed+persistent, naming the hidden pid, the cron line
   and the preload hook.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import lab_kit
import pytest
from confirm.conftest import Broker, write_agent_toml, write_sensor_toml
from eve_schema import check_record

from .conftest import REPO, require_root_tools
from .test_lab import HOST_ID, LAB, Procs, lab, make_pki, procs  # noqa: F401 -- fixtures

pytestmark = pytest.mark.netns


ASK_DEADLINE = 5.0


def start(owner: Procs, ns: str, name: str, argv: list[str], *, cwd: Path | None = None,
          env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Like Procs.start, in its own session (as cron starts jobs), with extra environment."""
    full = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", **(env or {})}
    with (owner.workdir / f"{name}.log").open("wb") as log:
        p = subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdout=log,
                             stderr=subprocess.STDOUT, env=full, cwd=cwd or REPO,
                             start_new_session=True)
    owner.procs.append(p)
    return p


def alerts(eve: Path, *, check: bool = True) -> list[dict[str, Any]]:
    if not eve.exists():
        return []
    out = [json.loads(line) for line in eve.read_text().splitlines() if line.strip()]
    for record in out if check else ():
        check_record(record)
    return [e for e in out if e["event_type"] == "alert"]


def wait_alert(eve: Path, port: int, timeout: float) -> tuple[dict[str, Any], float]:
    """The alert for the flow from local `port`, and the wall-clock time it was first seen."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for a in alerts(eve, check=False):
            if a["src_port"] == port:
                seen = time.time()
                check_record(a)
                return a, seen
        time.sleep(0.01)
    raise AssertionError(f"no alert for local port {port}: {alerts(eve)}")


def eve_time(stamp: str) -> float:
    return dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def confirm_counters(sensor_ns: str, port: int) -> dict[str, int]:
    code = ("import urllib.request,sys;sys.stdout.write(urllib.request.urlopen("
            f"'http://127.0.0.1:{port}/metrics',timeout=5).read().decode())")
    out = subprocess.run(["ip", "netns", "exec", sensor_ns, sys.executable, "-c", code],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    got: dict[str, int] = {}
    for line in out.splitlines():
        if line.startswith("netdetect_confirmations_total{"):
            kind = line.split('kind="', 1)[1].split('"', 1)[0]
            got[kind] = int(float(line.rsplit(" ", 1)[1]))
    return got


def wait_counter(sensor_ns: str, port: int, kind: str, at_least: int, timeout: float) -> None:
    end = time.monotonic() + timeout
    got: dict[str, int] = {}
    while time.monotonic() < end:
        got = confirm_counters(sensor_ns, port)
        if got.get(kind, 0) >= at_least:
            return
        time.sleep(0.3)
    raise AssertionError(f"confirmation counter {kind} never reached {at_least}: {got}")


# A harmless client: bare TLS (no SNI, no ALPN) to the web server, then it idles.
BARE_TLS_CLIENT = r"""
import socket, ssl, sys, time
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = ctx.wrap_socket(socket.create_connection((sys.argv[1], 443), timeout=10))
print("connected local_port=%d" % s.getsockname()[1], flush=True)
time.sleep(120)
"""


def test_lab_tradecraft(lab: dict[str, Any], procs: Procs, tmp_path: Path) -> None:  # noqa: F811
    require_root_tools()
    kit = lab_kit.build(tmp_path / "kit")
    sensor_ns, victim_ns = lab["namespaces"]["sensor"], lab["namespaces"]["victim"]
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

    # The disguised miner's home, its config and the cron entry that relaunches it; the
    # victim's ld.so.preload (in the agent's scan root) names the hider.
    home = tmp_path / ".X11-unix-" / ".kw"
    home.mkdir(parents=True)
    miner_exe = home / "kworker"
    shutil.copy(kit["miner"], miner_exe)
    lab_kit.write_config(home, f"{lab['pool']}:4444", threads_hint=50, scratch_mb=256)
    root = tmp_path / "victim-root"
    (root / "etc" / "cron.d").mkdir(parents=True)
    (root / "etc" / "cron.d" / "sysupdate").write_text(
        "SHELL=/bin/sh\n"
        f"*/5 * * * * root cd {home} && {miner_exe} >/dev/null 2>&1\n")
    (root / "etc" / "ld.so.preload").write_text(f"{kit['hider']}\n")

    agent_toml = write_agent_toml(tmp_path / "agent.toml", broker, HOST_ID,
                                  root=json.dumps(str(root)))
    # The hook is loaded into the agent, as /etc/ld.so.preload would load it on that host.
    start(procs, sensor_ns, "agent", [sys.executable, "-m", "netdetect.agent.daemon",
                                      "--config", str(agent_toml), "--log-level", "DEBUG"],
          env={"LD_PRELOAD": str(kit["hider"])})
    procs.wait_log("agent", r"connected to 127\.0\.0\.1", 20)

    inventory = tmp_path / "inventory.toml"
    inventory.write_text(f'[[host]]\nid = "{HOST_ID}"\naddresses = ["{lab["victim"]}"]\n')
    sensor_toml = write_sensor_toml(tmp_path / "sensor.toml", broker, inventory, timeout=10.0,
                                    cpu_window=1.0)
    # The production thresholds, not the unit tests' lowered CPU threshold.
    sensor_toml.write_text(sensor_toml.read_text().replace("cpu_threshold = 5.0",
                                                           "cpu_threshold = 50.0"))
    eve = tmp_path / "eve.json"
    metrics_port = 19000 + os.getpid() % 1000
    procs.start(sensor_ns, "sniff", sys.executable, "-m", "netdetect.cli", "sniff", "-i",
                lab["span"], "--workers", "1", "--home-net", lab["home_net"], "--confirm",
                "--config", str(sensor_toml), "--eve", str(eve), "--metrics-port",
                str(metrics_port), "--stats-interval", "2", "-q")
    procs.wait_log("sniff", r"all 1 worker\(s\) capturing", 30)

    # --- 1: a busy host and a harmless bare-TLS client: asked, cleared, nothing raised.
    start(procs, victim_ns, "cc1", [str(kit["busy"])])
    time.sleep(1.0)
    start(procs, victim_ns, "client", [sys.executable, "-c", BARE_TLS_CLIENT, lab["web"]])
    procs.wait_log("client", r"connected local_port=\d+", 20)
    wait_counter(sensor_ns, metrics_port, "asks-cleared", 1, 30)
    assert alerts(eve) == []

    # --- 2: a browser on a pool's web site: not an alert, not even an ask.
    before = confirm_counters(sensor_ns, metrics_port)
    bg = subprocess.run(["ip", "netns", "exec", victim_ns, sys.executable,
                         str(LAB / "background.py"), "--web", lab["web"], "--dns", lab["dns"],
                         "--pool-site", lab["pool_site"], "--rounds", "2"],
                        capture_output=True, text=True, timeout=60, check=False)
    assert bg.returncode == 0, bg.stderr
    assert bg.stdout.count(f"https {lab['pool_site']} ({lab['site']})") == 2
    time.sleep(3)
    assert alerts(eve) == [], json.dumps(alerts(eve), indent=1)
    assert confirm_counters(sensor_ns, metrics_port).get("asks-sent", 0) == before.get(
        "asks-sent", 0)

    # --- 3: XMRig-style TLS (no SNI, no ALPN) to a literal IP on 443, pool in config.json.
    tls_home = tmp_path / ".cache" / ".sysupdate"
    tls_home.mkdir(parents=True)
    shutil.copy(LAB / "miner.py", tls_home / "sysupdate")
    (tls_home / "config.json").write_text(json.dumps({"url": f"{lab['pool']}:443",
                                                      "tls": True}))
    tls_miner = start(procs, victim_ns, "tls-miner", [sys.executable,
                                                      str(tls_home / "sysupdate"),
                                                      "--share-interval", "2"], cwd=tls_home)
    m = procs.wait_log("tls-miner", r"connected .* local_port=(\d+) pid=(\d+)", 20)
    tls_port = int(m.group(1))
    ev, seen = wait_alert(eve, tls_port, 15)
    nd = ev["netdetect"]
    # From the flow's first packet (the capture's clock is this machine's) to the alert line.
    latency = seen - eve_time(nd["flow_start"])
    assert latency <= ASK_DEADLINE, (latency, nd)
    assert nd["verdict"] == "confirmed", json.dumps(nd, indent=1)
    assert nd["score"] < 60
    assert (ev["dest_ip"], ev["dest_port"]) == (lab["pool"], 443)
    assert nd["host"]["report"]["process"]["pid"] == tls_miner.pid
    assert any("asked at network score" in r for r in nd["reasons"]), nd["reasons"]
    assert any("configuration names a pool" in r for r in nd["reasons"]), nd["reasons"]
    sys.stdout.write(f"ask path: alert {latency:.2f}s after the flow's first packet\n")
    os.kill(tls_miner.pid, 9)

    # --- 4: the disguised, throttled, low-priority, hidden miner on the busy host.
    kw = start(procs, victim_ns, "kworker", [str(miner_exe)], cwd=home)
    m = procs.wait_log("kworker", r"connected .* local_port=(\d+) pid=(\d+)", 20)
    kw_port = int(m.group(1))
    assert int(m.group(2)) == kw.pid
    ev, _ = wait_alert(eve, kw_port, 30)
    nd = ev["netdetect"]
    assert nd["verdict"] == "confirmed+persistent", json.dumps(nd, indent=1)
    report = nd["host"]["report"]
    proc = report["process"]
    assert proc["pid"] == kw.pid
    assert proc["name"] == "kworker"
    assert proc["hidden"] is True
    assert kw.pid in report["host"]["hidden_pids"]
    assert report["host"]["preload_hooks"] == [str(kit["hider"])]
    assert proc["nice"] == 19
    assert "exe-strings:upx-packed" in proc["traits"]
    assert proc["config_pools"] == [f"{home}/config.json: {lab['pool']}:4444"]
    reasons = nd["reasons"]
    assert any("hidden from readdir" in r for r in reasons), reasons
    cron = "cron entry /etc/cron.d/sysupdate:2 relaunches it"
    assert any(r.startswith(cron) for r in reasons), reasons
    assert any(f"/etc/ld.so.preload:1 preloads {kit['hider']}" in r for r in reasons), reasons
    mitre = ev["alert"]["metadata"]["mitre_technique_id"]
    assert {"T1496", "T1014", "T1574.006", "T1053.003"} <= set(mitre), mitre
    sys.stdout.write(f"disguised miner: {proc['cpu_percent']}% CPU over the window, "
                     f"{proc['cpu_lifetime_percent']}% since start, others "
                     f"{proc['others_cpu_percent']}%; reasons: {reasons}\n")
    # Exactly the two miners alerted; the busy neighbour and the browser did not.
    assert sorted(a["src_port"] for a in alerts(eve)) == sorted([tls_port, kw_port])
