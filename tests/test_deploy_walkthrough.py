"""deploy/README.md, executed as written: every ```sh block of the walkthrough, taken from the
document itself, in its order, on two throw-away machines (private mount namespaces over one
test network namespace: the admin + broker + sensor machine, and host web-01 with the agent).

Each machine sees writable overlays of /etc and /usr/bin and empty /var/log, /var/lib, /run
and /opt, so `useradd`, `install` into /etc and the units change nothing outside it; its
`systemctl` starts the installed units as systemd would (tests/deploy_sandbox/systemctl) as
children of the sandbox. Debian 12's stock Mosquitto (its own mosquitto.conf and unit) serves
port 8883 as the document says -- the port is free because the network namespace is new.
A block that the document gains without a place here fails the test, so it cannot rot.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from eve_schema import check_eve_text

pytestmark = [pytest.mark.broker, pytest.mark.netns]

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
SANDBOX = Path(__file__).resolve().parent / "deploy_sandbox"


def blocks() -> list[str]:
    text = (DEPLOY / "README.md").read_text()
    return [m.group(1) for m in re.finditer(r"^```sh\n(.*?)^```", text, re.MULTILINE | re.DOTALL)]


# Which machine runs each block, keyed by its first line (the document's order is kept).
ROLES = {
    "./make-pki.sh -o pki": "admin",
    "install -d -m 750 -o root -g mosquitto /etc/mosquitto/netdetect": "broker",
    "mosquitto_sub -h broker.example.internal -p 8883 --cafile pki/ca.crt -t '#'": "refused",
    "useradd --system --no-create-home --shell /usr/sbin/nologin netdetect": "sensor",
    "install -m 644 logrotate/netdetect /etc/logrotate.d/netdetect": "logrotate",
    "mkdir -p /etc/systemd/system/netdetect-sensor.service.d": "no-broker",
    "install -d -m 700 /etc/netdetect/pki": "agent",
    "mosquitto_sub -h broker.example.internal -p 8883 --cafile pki/ca.crt \\": "status",
}


def role_of(block: str) -> str:
    first = block.strip().splitlines()[0].strip()
    for prefix, role in ROLES.items():
        if first.startswith(prefix):
            return role
    raise AssertionError(f"deploy/README.md has a new shell block; give it a role here: {first}")


class Machine:
    def __init__(self, netns: str, work: Path, cwd: Path) -> None:
        work.mkdir()
        self.cwd = cwd
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", netns, "unshare", "--mount", "--propagation", "private",
             "/usr/bin/python3", str(SANDBOX / "machine.py"), str(work), str(REPO),
             sys.executable],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        ready = self.proc.stdout.readline()
        if not ready:
            raise RuntimeError(f"sandbox did not start: {self.proc.stderr.read()}")  # type: ignore[union-attr]

    def run(self, script: str, timeout: float = 120) -> tuple[int | str, str]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"sh": script, "cwd": str(self.cwd),
                                          "timeout": timeout}) + "\n")
        self.proc.stdin.flush()
        answer = json.loads(self.proc.stdout.readline())
        return answer["rc"], answer["out"]

    def ok(self, script: str, timeout: float = 120) -> str:
        rc, out = self.run(script, timeout)
        assert rc == 0, f"{script}\n--- exit {rc}:\n{out}"
        return out

    def wait_for(self, script: str, timeout: float = 30) -> str:
        end = time.monotonic() + timeout
        while True:
            rc, out = self.run(script, 10)
            if rc == 0:
                return out
            if time.monotonic() > end:
                raise AssertionError(f"never true: {script}\n{out}")
            time.sleep(0.5)

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()  # the sandbox stops its units, then exits
            try:
                self.proc.wait(90)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture
def netns() -> Iterator[str]:
    if os.geteuid() != 0:
        raise RuntimeError("the deploy walkthrough needs root (namespaces, mounts, useradd)")
    name = f"ndwalk-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        for cmd in (["ip", "link", "set", "lo", "up"],
                    ["ip", "link", "add", "eth1", "type", "veth", "peer", "name", "eth1-peer"],
                    ["ip", "link", "set", "eth1", "up"], ["ip", "link", "set", "eth1-peer", "up"]):
            subprocess.run(["ip", "netns", "exec", name, *cmd], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def _copy_deploy(dest: Path) -> Path:
    shutil.copytree(DEPLOY, dest, ignore=shutil.ignore_patterns("lab", "__pycache__"))
    return dest


def test_deploy_readme_walkthrough_runs_as_written(netns: str, tmp_path: Path) -> None:
    for tool in ("/usr/sbin/mosquitto", "/usr/bin/mosquitto_sub", "/usr/sbin/logrotate",
                 "/usr/bin/setpriv", "/usr/bin/unshare", "/lib/systemd/system/mosquitto.service",
                 "/etc/mosquitto/mosquitto.conf"):
        assert Path(tool).exists(), (f"{tool} is missing (Debian 12: mosquitto, "
                                     "mosquitto-clients, logrotate, util-linux)")
    steps = [(role_of(b), b) for b in blocks()]
    assert [r for r, _ in steps] == ["admin", "broker", "refused", "sensor", "logrotate",
                                     "no-broker", "agent", "status"], steps
    admin_dir = _copy_deploy(tmp_path / "admin-deploy")
    host_dir = tmp_path / "web-01"
    host_dir.mkdir()
    admin = Machine(netns, tmp_path / "admin", admin_dir)
    host = Machine(netns, tmp_path / "host", host_dir)
    broker_log = "cat /var/log/mosquitto/mosquitto.log"
    try:
        for role, block in steps:
            if role == "admin":
                admin.ok(block)
                # "Distribute": exactly what the document lists for each host.
                _copy_deploy(host_dir / "deploy")
                host.cwd = host_dir / "deploy"
                pki, dest = admin_dir / "pki", host.cwd / "pki"
                for rel in ["ca.crt", "hosts/web-01.crt", "hosts/web-01.key",
                            *[str(p.relative_to(pki)) for p in pki.glob("sensors/*-signing.pub")]]:
                    (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(pki / rel, dest / rel)
            elif role == "broker":
                admin.ok(block)
                admin.wait_for("systemctl is-active mosquitto && ss -ltnH | grep -q ':8883 '")
            elif role == "refused":
                rc, out = admin.run(block, timeout=20)
                assert rc not in (0, "timeout"), out  # "fails", as the document says
            elif role == "sensor":
                admin.ok(block)
                admin.wait_for(f"{broker_log} | grep -q \"u'sensor:sensor-1'\"")
                out = admin.ok("systemctl is-active netdetect-sensor && "
                               "ps -o user= -p $(cat $SANDBOX_STATE/netdetect-sensor.service.pid)")
                assert out.split() == ["netdetect"], out
                # Mining on the mirror port: the deployed sensor alerts into its EVE file.
                subprocess.run(["ip", "netns", "exec", netns, "tcpreplay", "-q", "-t", "-i",
                                "eth1-peer", str(REPO / "pcaps" / "demo.pcap")],
                               check=True, capture_output=True, timeout=60)
                eve = admin.wait_for("test $(grep -c '\"event_type\":\"alert\"' "
                                     "/var/log/netdetect/eve.json) = 3 && "
                                     "stat -c '%U:%G %a' /var/log/netdetect/eve.json && "
                                     "cat /var/log/netdetect/eve.json")
                assert eve.startswith("netdetect:netdetect 640\n"), eve  # as documented
                check_eve_text(eve.split("\n", 1)[1])
                assert "host unmanaged: 10.20.4.17 is not in the inventory" in eve
                # The journal gets one line per alert, not a library's chatter.
                journal = admin.ok("cat $SANDBOX_STATE/netdetect-sensor.service.log")
                assert "CommunityID" not in journal, journal
            elif role == "logrotate":
                admin.ok(block)
                admin.ok("logrotate -d /etc/logrotate.d/netdetect")
            elif role == "no-broker":
                status_block = steps[-1][1]
                assert role_of(status_block) == "status"
                # Kept for after the agent: first the full deployment, then this variant.
                no_broker = block
            elif role == "agent":
                host.ok(block)
                admin.wait_for(f"{broker_log} | grep -q \"u'host:web-01'\"")
                host.ok("systemctl is-active netdetect-agent")
            elif role == "status":
                rc, out = admin.run(block, timeout=8)  # a subscription: it runs until stopped
                assert rc == "timeout", out
                assert "netdetect/v1/hosts/host:web-01/status " in out, out
                assert '"state":"online"' in out, out
        # The sensor mode without a broker, on the same machine.
        admin.ok(no_broker)
        cmdline = admin.ok("systemctl is-active netdetect-sensor && tr '\\0' ' ' < "
                           "/proc/$(cat $SANDBOX_STATE/netdetect-sensor.service.pid)/cmdline")
        assert " sniff -i eth1 --eve /var/log/netdetect/eve.json --quiet" in cmdline, cmdline
        assert "--confirm" not in cmdline
        # Nothing of it reached the real machine.
        assert subprocess.run(["id", "netdetect"], capture_output=True, check=False).returncode
        assert not Path("/etc/netdetect/agent.toml").exists()
        assert not Path("/etc/mosquitto/conf.d/netdetect.conf").exists()
    finally:
        with contextlib.suppress(Exception):
            print(admin.run(f"{broker_log}; tail -n 50 $SANDBOX_STATE/*.log", 10)[1])
        admin.close()
        host.close()
