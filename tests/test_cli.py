"""The command line as a user meets it: every readable input analysed, each bad one named,
no traceback from any subcommand, documented exit codes, Ctrl-C keeps what was found."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from eve_schema import check_eve_text

REPO = Path(__file__).resolve().parents[1]
PCAPS = REPO / "pcaps"
DEMO = str(PCAPS / "demo.pcap")
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
ENV.pop("NETDETECT_DEBUG", None)


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "netdetect.cli", *args], capture_output=True,
                          text=True, timeout=300, check=False, env=ENV, cwd=cwd)


def _no_traceback(res: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in res.stderr, res.stderr
    assert "Traceback" not in res.stdout


def _pcap(path: Path, linktype: int, frames: list[bytes], snaplen: int = 65535) -> Path:
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, linktype)]
    for i, f in enumerate(frames):
        out.append(struct.pack("<IIII", 1_767_000_000 + i, 0, len(f), max(len(f), 60)) + f)
    path.write_bytes(b"".join(out))
    return path


def test_one_bad_path_does_not_lose_the_others(tmp_path: Path) -> None:
    manifest = tmp_path / "MANIFEST.md"
    manifest.write_text("# not a capture\n")
    missing = tmp_path / "missing.pcap"
    eve = tmp_path / "eve.json"
    res = _cli("replay", str(missing), DEMO, str(manifest), "--eve", str(eve))
    _no_traceback(res)
    assert res.returncode == 2
    assert f"netdetect: {missing}: offset 0: no such file" in res.stderr
    assert f"netdetect: {manifest}:" in res.stderr
    records = check_eve_text(eve.read_text())
    assert sum(r["event_type"] == "alert" for r in records) == 3  # demo.pcap was analysed
    assert "3 mining flow(s)" in res.stdout


def test_empty_inputs_are_warnings_not_clean_runs(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    res = _cli("replay", str(empty))
    _no_traceback(res)
    assert res.returncode == 2
    assert f"netdetect: warning: {empty}: no capture files in this directory" in res.stderr

    # Ethernet frames cut at 14 bytes by the snaplen: nothing to decode.
    eth = bytes(12) + b"\x08\x00"
    short = _pcap(tmp_path / "short.pcap", 1, [eth] * 5, snaplen=14)
    res = _cli("replay", str(short), "-q")
    _no_traceback(res)
    assert res.returncode == 2
    assert "none of its 5 frames decoded" in res.stderr

    nothing = _pcap(tmp_path / "nothing.pcap", 1, [])
    res = _cli("replay", str(nothing), "-q")
    assert res.returncode == 2
    assert "no packets in this capture" in res.stderr


def test_radiotap_capture_is_not_a_silent_zero(tmp_path: Path) -> None:
    radiotap = _pcap(tmp_path / "wifi.pcap", 127, [b"\x00\x00\x08\x00\x00\x00\x00\x00" + bytes(40)])
    res = _cli("replay", str(radiotap), "-q")
    _no_traceback(res)
    assert res.returncode == 2
    assert "wifi.pcap" in res.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("replay", DEMO, "--max-flows", "0"), "--max-flows: must be at least 1"),
        (("signatures", "import", "no-such-format", DEMO), "invalid choice: 'no-such-format'"),
        (("eval", "--labels", "/nonexistent/labels.json", "--root", "/tmp"),
         "netdetect: /nonexistent/labels.json: cannot read: No such file or directory"),
        (("eval", "--labels", DEMO, "--root", "/tmp"), "not a JSON labels file"),
        (("signatures", "compile", "/nonexistent/sigs"),
         "netdetect: /nonexistent/sigs: not a signatures directory"),
    ],
)
def test_errors_are_one_line_with_exit_2(args: tuple[str, ...], message: str) -> None:
    res = _cli(*args)
    _no_traceback(res)
    assert res.returncode == 2
    assert message in res.stderr


def test_writing_commands_never_create_a_signatures_directory(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("0.0.0.0 pool.example.com\n")
    target = tmp_path / "typo" / "sigs"
    for args in (("signatures", "compile", str(target)),
                 ("signatures", "import", "hosts", str(hosts), "--dir", str(target))):
        res = _cli(*args)
        _no_traceback(res)
        assert res.returncode == 2
        assert "not a signatures directory" in res.stderr
    assert not (tmp_path / "typo").exists()


def test_check_verbose_lists_allowlist_reasons() -> None:
    res = _cli("signatures", "check", "-v", str(REPO / "signatures"))
    assert res.returncode == 0, res.stdout
    assert "pool_domains.txt:" in res.stdout
    assert "allow_domains.txt:" in res.stdout
    assert "getmonero.org (suffix): Monero project site" in res.stdout


def test_ctrl_c_flushes_eve_and_prints_the_partial_summary(tmp_path: Path) -> None:
    eve = tmp_path / "eve.json"
    # The project's captures many times over: long enough to be interrupted midway.
    proc = subprocess.Popen(
        [sys.executable, "-m", "netdetect.cli", "replay", *[str(PCAPS)] * 200, "--eve",
         str(eve)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (eve.exists() and eve.stat().st_size > 0):
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "interrupted" in err
    assert "mining flow(s)" in out  # the partial summary
    records = check_eve_text(eve.read_text())  # flushed, whole lines
    assert records
