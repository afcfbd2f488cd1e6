"""Alert outputs that fail: a full device, a full filesystem, a reader that went away.

Replay stops cleanly (exit 2, the summary, one `netdetect:` line, no traceback) and leaves
only whole EVE lines behind.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from eve_schema import check_eve_text

from netdetect.model import Alert, Endpoint, Evidence, Suspect, Verdict
from netdetect.sinks.eve import EveWriter, SinkError

REPO = Path(__file__).resolve().parents[1]
PCAPS = REPO / "pcaps"
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "netdetect.cli", *args], capture_output=True,
                          text=True, timeout=120, check=False, env=ENV)


def _one_error_line(stderr: str, needle: str) -> None:
    assert "Traceback" not in stderr
    lines = [ln for ln in stderr.splitlines() if ln.startswith("netdetect: cannot write")]
    assert len(lines) == 1, stderr
    assert needle in lines[0]
    assert stderr.rstrip("\n").splitlines()[-1] == lines[0]  # the last thing a user reads


def _alert(n: int) -> Alert:
    s = Suspect(flow_id=n, ts=1.7e9, first_ts=1.7e9, miner=Endpoint("10.0.0.1", 40000 + n),
                pool=Endpoint("192.0.2.1", 3333), proto="TCP", app_proto="stratum",
                dialect="stratum-v1", score=90,
                evidence=(Evidence("stratum-client", 70, "x" * 300, 1.7e9),))
    return Alert(suspect=s, verdict=Verdict.NETWORK_ONLY, severity=2)


def test_dev_full_stops_replay_with_summary_and_one_line() -> None:
    res = _cli("replay", str(PCAPS / "demo.pcap"), "--eve", "/dev/full")
    assert res.returncode == 2
    _one_error_line(res.stderr, "/dev/full: No space left on device")
    assert "mining flow" in res.stdout  # the summary of what was found before it stopped
    # ... counting the frames read before the stop, not "0 frames".
    frames = re.search(r"(\d+) frames, (\d+) packets decoded", res.stdout)
    assert frames is not None, res.stdout
    assert int(frames[1]) >= int(frames[2]) > 0


def test_closed_pipe_is_one_line_not_a_traceback() -> None:
    r, w = os.pipe()
    os.close(r)  # the reader is gone before the first line
    try:
        res = subprocess.run(
            [sys.executable, "-m", "netdetect.cli", "replay", str(PCAPS / "demo.pcap"),
             "--eve", "-"], stdout=w, stderr=subprocess.PIPE, text=True, timeout=120,
            check=False, env=ENV)
    finally:
        os.close(w)
    assert res.returncode == 2
    _one_error_line(res.stderr, "<stdout>: Broken pipe")
    assert "mining flow" in res.stderr  # with --eve -, the summary is on stderr


def test_head_closing_the_pipe_midway() -> None:
    # The whole pcaps/ directory writes ~100 KB: more than a pipe holds, so head's exit
    # is felt by the writer.
    script = (f"{sys.executable} -m netdetect.cli replay {PCAPS} --eve - -q | head -1; "
              "echo \"status ${PIPESTATUS[0]}\" >&2")
    res = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=ENV,
                         timeout=120, check=False)
    assert res.stdout.count("\n") == 1
    check_eve_text(res.stdout)
    assert "status 2" in res.stderr
    _one_error_line(res.stderr.replace("status 2\n", ""), "Broken pipe")


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A real 16 KiB tmpfs: the disk that fills in the middle of a line."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "full"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k,mode=0755", "tmpfs", str(mnt)],
                   check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_filesystem_leaves_only_whole_lines(tiny_tmpfs: Path) -> None:
    eve = tiny_tmpfs / "eve.json"
    res = _cli("replay", str(PCAPS), "--eve", str(eve))
    assert res.returncode == 2
    _one_error_line(res.stderr, f"{eve}: No space left on device")
    assert "mining flow" in res.stdout
    text = eve.read_text(encoding="utf-8")
    records = check_eve_text(text)  # every line whole and schema-valid, no torn tail
    assert 3 <= len(records) < 100
    assert text.endswith("\n")


def test_writer_cuts_a_torn_line_back_and_counts_it(tiny_tmpfs: Path) -> None:
    eve = tiny_tmpfs / "eve.json"
    writer = EveWriter.to_file(str(eve))
    failure: SinkError | None = None
    for n in range(1000):
        try:
            writer.write(_alert(n))
        except SinkError as exc:
            failure = exc
            break
    assert failure is not None
    assert "No space left on device" in str(failure)
    assert writer.lost == 1
    # The line that did not fit was cut back: the file holds exactly the written lines.
    assert len(check_eve_text(eve.read_text(encoding="utf-8"))) == writer.written > 0
    # Room is made (logrotate ran): the writer goes on where it left off.
    size = eve.stat().st_size
    os.truncate(eve, 0)
    writer.write(_alert(5000))
    writer.close()
    text = eve.read_text(encoding="utf-8")
    assert len(check_eve_text(text)) == 1
    assert size > 0


def test_reopen_follows_a_rotation(tmp_path: Path) -> None:
    eve = tmp_path / "eve.json"
    writer = EveWriter.to_file(str(eve))
    writer.write(_alert(1))
    eve.rename(tmp_path / "eve.json.1")
    writer.write(_alert(2))  # still the old file, as after logrotate before its postrotate
    writer.reopen()
    writer.write(_alert(3))
    writer.close()
    assert len(check_eve_text((tmp_path / "eve.json.1").read_text())) == 2
    assert len(check_eve_text(eve.read_text())) == 1
    assert eve.stat().st_mode & 0o777 == 0o640 & ~_umask()


def _umask() -> int:
    old = os.umask(0)
    os.umask(old)
    return old


def test_text_streams_still_work() -> None:
    buf = io.StringIO()
    EveWriter(buf).write(_alert(1))
    assert len(check_eve_text(buf.getvalue())) == 1
