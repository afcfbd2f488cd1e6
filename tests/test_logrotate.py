"""deploy/logrotate/netdetect rotates a file a writer keeps appending to, losing nothing:
run by the real logrotate, with only the paths, owner and reload command changed."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from eve_schema import check_eve_text

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "deploy" / "logrotate" / "netdetect"

WRITER = """
import signal, sys, time
from netdetect.model import Alert, Endpoint, Evidence, Suspect, Verdict
from netdetect.sinks.eve import EveWriter
w = EveWriter.to_file(sys.argv[1])
hup = []
signal.signal(signal.SIGHUP, lambda *_: hup.append(1))
print("ready", flush=True)
n = 0
while n < 400:
    if hup:
        hup.clear()
        w.reopen()
    s = Suspect(flow_id=n, ts=1.7e9 + n, first_ts=1.7e9, miner=Endpoint("10.0.0.1", 40000),
                pool=Endpoint("192.0.2.1", 3333), proto="TCP", app_proto="stratum",
                dialect="stratum-v1", score=90, evidence=(Evidence("stratum-client", 70, "x", 0),))
    w.write(Alert(suspect=s, verdict=Verdict.NETWORK_ONLY, severity=2))
    n += 1
    time.sleep(0.005)
w.close()
"""


def test_shipped_config_rotates_without_losing_a_line(tmp_path: Path) -> None:
    if shutil.which("logrotate") is None:
        pytest.skip("logrotate is not installed")
    eve = tmp_path / "eve.json"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(eve)], stdout=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert writer.stdout is not None
    assert writer.stdout.readline().strip() == "ready"
    time.sleep(0.3)
    user = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout
    group = subprocess.run(["id", "-gn"], capture_output=True, text=True, check=True).stdout
    conf = CONF.read_text()
    conf = conf.replace("/var/log/netdetect/eve.json", str(eve))
    conf = re.sub(r"netdetect netdetect", f"{user.strip()} {group.strip()}", conf)
    conf = conf.replace("systemctl reload netdetect-sensor.service",
                        f"kill -{signal.SIGHUP.value} {writer.pid}")
    assert f"kill -{signal.SIGHUP.value}" in conf
    local = tmp_path / "logrotate.conf"
    local.write_text(conf)
    res = subprocess.run(["logrotate", "-v", "-f", "-s", str(tmp_path / "state"), str(local)],
                         capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    writer.wait(30)
    assert writer.returncode == 0
    rotated = [p for p in tmp_path.iterdir() if p.name.startswith("eve.json-")]
    assert len(rotated) == 1, sorted(p.name for p in tmp_path.iterdir())
    before = check_eve_text(rotated[0].read_text())
    after = check_eve_text(eve.read_text())
    assert before
    assert after  # the writer went on in a new file after the reload
    ids = [r["flow_id"] for r in before + after]
    assert ids == list(range(400))  # nothing lost, nothing doubled, in order
    assert eve.stat().st_mode & 0o777 == 0o640
