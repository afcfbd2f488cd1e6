"""`replay -` and `/dev/stdin` read a non-seekable stream (plain or compressed) through the
compiled core's reader."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import pytest

DEMO = Path(__file__).resolve().parents[1] / "pcaps" / "demo.pcap"


@pytest.mark.parametrize(("arg", "compress"), [("-", False), ("-", True), ("/dev/stdin", True)])
def test_replay_reads_a_pipe(arg: str, compress: bool) -> None:
    data = DEMO.read_bytes()
    if compress:
        data = gzip.compress(data)
    run = subprocess.run([sys.executable, "-m", "netdetect", "replay", arg, "--eve", "-", "-q"],
                         input=data, capture_output=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.count(b'"event_type":"alert"') == 3
