"""Real clients recorded in the lab (pcaps/lab/, made by deploy/lab/record.py): each yields
exactly its expected alerts and golden EVE, bare TLS alerts within its time budget, and the
TLS sessions decrypted with the pool's key log really are what their labels say."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from eve_schema import check_eve_text

from netdetect.intel import Intel
from netdetect.service import replay
from netdetect.sinks.eve import EveWriter

REPO = Path(__file__).resolve().parents[1]
LAB = REPO / "pcaps" / "lab"
GOLDEN = REPO / "tests" / "golden" / "lab"
ENTRIES: list[dict[str, Any]] = json.loads((LAB / "expected.json").read_text())["files"]


def _eve(name: str, intel: Intel, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, str]:
    buf = io.StringIO()
    monkeypatch.chdir(REPO)
    result = replay([f"pcaps/lab/{name}"], intel=intel, sinks=[EveWriter(buf)])
    assert result.errors == []
    return result, buf.getvalue()


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["file"] for e in ENTRIES])
def test_recording_gives_its_expected_alerts(
    entry: dict[str, Any], intel: Intel, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert hashlib.sha256((LAB / entry["file"]).read_bytes()).hexdigest() == entry["sha256"]
    result, text = _eve(entry["file"], intel, monkeypatch)
    got = sorted(
        (a.suspect.miner.ip, a.suspect.miner.port, a.suspect.pool.ip, a.suspect.pool.port,
         a.suspect.dialect, a.suspect.pool_facts.proxy)
        for a in result.alerts
    )
    want = sorted(
        (x["client_ip"], x["client_port"], x["server_ip"], x["server_port"], x["dialect"],
         x.get("proxy"))
        for x in entry["alerts"]
    )
    assert got == want
    for x in entry["alerts"]:
        if "max_seconds_to_alert" not in x:
            continue
        a = next(a for a in result.alerts if a.suspect.miner.port == x["client_port"])
        assert a.suspect.ts - a.suspect.first_ts <= x["max_seconds_to_alert"]
        assert "tls-shape" in {e.kind for e in a.suspect.evidence}
    check_eve_text(text)
    golden = GOLDEN / (Path(entry["file"]).stem + ".jsonl")
    assert text == golden.read_text(encoding="utf-8"), (
        "EVE output changed; if deliberate, run tools/update_golden.py and review the diff"
    )


@pytest.mark.parametrize("name", ["xmrig_tls_ip443.pcap", "xmrig_socks5_tls.pcap"])
def test_tls_sessions_decrypt_to_cryptonote(name: str) -> None:
    tshark = shutil.which("tshark")
    assert tshark, "tshark is needed (scripts/bootstrap.sh installs it)"
    out = subprocess.run(
        [tshark, "-r", str(LAB / name), "-o", f"tls.keylog_file:{LAB / 'pool_tls_keys.log'}",
         "-q", "-z", "follow,tls,ascii,0"],
        capture_output=True, text=True, check=True,
    ).stdout
    methods = set()
    for line in out.splitlines():
        if line.lstrip().startswith("{"):
            methods.add(json.loads(line).get("method"))
    plain = out.encode()
    assert {"login", "job", "submit"} <= methods
    assert b'"agent":"XMRig/6.26.0' in plain
