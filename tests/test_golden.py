"""The project's own captures: each yields exactly its expected alerts, byte for byte."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from eve_schema import check_eve_text

from netdetect.intel import Intel
from netdetect.service import replay
from netdetect.sinks.eve import EveWriter

REPO = Path(__file__).resolve().parents[1]
ENTRIES: list[dict[str, Any]] = json.loads(
    (REPO / "pcaps" / "expected.json").read_text(encoding="utf-8")
)["files"]


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["file"] for e in ENTRIES])
def test_expected_alerts_and_golden_eve(
    entry: dict[str, Any], intel: Intel, monkeypatch: pytest.MonkeyPatch
) -> None:
    buf = io.StringIO()
    # Relative to the repository, as tools/update_golden.py runs it: pcap_filename is the
    # path as given, and the golden files must not depend on where the clone lives.
    monkeypatch.chdir(REPO)
    result = replay(["pcaps/" + entry["file"]], intel=intel, sinks=[EveWriter(buf)])
    assert result.errors == []
    got = {
        (a.suspect.miner.ip, a.suspect.miner.port, a.suspect.pool.ip, a.suspect.pool.port,
         a.suspect.dialect)
        for a in result.alerts
    }
    want = {
        (x["client_ip"], x["client_port"], x["server_ip"], x["server_port"], x["dialect"])
        for x in entry["alerts"]
    }
    assert got == want
    assert len(result.alerts) == len(entry["alerts"])  # one alert per mining flow
    check_eve_text(buf.getvalue())
    golden = REPO / "tests" / "golden" / (Path(entry["file"]).stem + ".jsonl")
    assert buf.getvalue() == golden.read_text(encoding="utf-8"), (
        "EVE output changed; if deliberate, run tools/update_golden.py and review the diff"
    )


def test_eve_lines_carry_the_documented_fields(intel: Intel) -> None:
    buf = io.StringIO()
    replay([str(REPO / "pcaps" / "demo.pcap")], intel=intel, sinks=[EveWriter(buf)])
    events = check_eve_text(buf.getvalue())
    lines = [e for e in events if e["event_type"] == "alert"]
    flows = [e for e in events if e["event_type"] == "flow"]
    assert len(lines) == 3
    # Each alerted flow ends with a flow record under the same flow_id, with final counts.
    assert sorted(f["flow_id"] for f in flows) == sorted(a["flow_id"] for a in lines)
    for f in flows:
        assert f["flow"]["pkts_toserver"] > 0
        assert f["flow"]["bytes_toclient"] > 0
        assert f["flow"]["alerted"] is True
        alert = next(a for a in lines if a["flow_id"] == f["flow_id"])
        assert f["netdetect"]["score"] >= alert["netdetect"]["score"]
        assert (f["src_ip"], f["dest_port"]) == (alert["src_ip"], alert["dest_port"])
    for ev in lines:
        assert ev["event_type"] == "alert"
        assert ev["timestamp"].endswith("+0000")
        required = {"flow_id", "src_ip", "src_port", "dest_ip", "dest_port", "proto", "app_proto"}
        assert required <= ev.keys()
        assert ev["alert"]["metadata"]["mitre_technique_id"] == ["T1496"]
        assert ev["alert"]["category"] == "Crypto Currency Mining Activity Detected"
        assert ev["netdetect"]["verdict"] == "network-only"
        assert ev["netdetect"]["evidence"]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "netdetect.cli", *args], capture_output=True,
                          text=True, timeout=120, check=False)


def test_cli_exit_status_and_eve_to_stdout(tmp_path: Path) -> None:
    demo = str(REPO / "pcaps" / "demo.pcap")
    ok = _cli("replay", demo, "--eve", "-")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.count('"event_type":"alert"') == 3
    check_eve_text(ok.stdout)
    assert "mining flow" in ok.stderr  # the summary moves to stderr when EVE is on stdout
    assert _cli("replay", demo, "--fail-on-alert", "-q").returncode == 1
    neg = REPO / "pcaps" / "neg_bitcoin_p2p.pcap"
    assert _cli("replay", str(neg), "--fail-on-alert", "-q").returncode == 0
    assert _cli("replay", str(tmp_path / "missing.pcap")).returncode == 2
    assert _cli("replay", "--home-net", "not-a-cidr", demo).returncode == 2
    unwritable = _cli("replay", demo, "--eve", str(tmp_path / "no" / "such" / "eve.json"))
    assert unwritable.returncode == 2
    assert "cannot write EVE output" in unwritable.stderr
    assert "Traceback" not in unwritable.stderr


def test_truncated_capture_is_analysed_up_to_the_damage(tmp_path: Path) -> None:
    data = (REPO / "pcaps" / "demo.pcap").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) - 37])
    res = _cli("replay", str(cut), "--eve", "-")
    assert res.returncode == 2
    assert "cut.pcap" in res.stderr
    assert "offset" in res.stderr
    assert res.stdout.count('"event_type":"alert"') == 3
    check_eve_text(res.stdout)
