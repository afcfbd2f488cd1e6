"""The syslog sink against real sockets: RFC 5424 framing, EVE JSON bodies, failures."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from eve_schema import check_record

from netdetect.sinks.syslog import parse_target

REPO = Path(__file__).resolve().parents[1]
DEMO = str(REPO / "pcaps" / "demo.pcap")
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
# RFC 5424: <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG
RFC5424 = re.compile(
    rb"^<(\d{1,3})>1 (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z) ([!-~]{1,255}) netdetect "
    rb"(\d+) (alert|flow|allowed) (-|\[netdetect@32473 [^]]*\]) \xef\xbb\xbf(.*)$", re.DOTALL)


def _replay(*extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "netdetect.cli", "replay", DEMO, "-q", *extra],
                          capture_output=True, text=True, timeout=120, check=False, env=ENV)


def _parse(msg: bytes) -> tuple[int, str, dict[str, Any]]:
    m = RFC5424.match(msg)
    assert m, msg[:200]
    record = json.loads(m.group(7))
    check_record(record)
    return int(m.group(1)), m.group(5).decode(), record


def _check_demo(messages: list[bytes]) -> None:
    parsed = [_parse(m) for m in messages]
    alerts = [(pri, rec) for pri, kind, rec in parsed if kind == "alert"]
    flows = [(pri, rec) for pri, kind, rec in parsed if kind == "flow"]
    assert len(alerts) == 3
    assert len(flows) == 3
    assert {pri for pri, _ in alerts} == {21 * 8 + 3}  # local5.err: EVE severity 2
    assert {pri for pri, _ in flows} == {21 * 8 + 6}  # local5.info


def test_udp() -> None:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(10)
    port = rx.getsockname()[1]
    res = _replay("--syslog", f"udp://127.0.0.1:{port}")
    assert res.returncode == 0, res.stderr
    _check_demo([rx.recv(70_000) for _ in range(6)])
    rx.close()


def test_tcp_octet_counting() -> None:
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(30)
    port = srv.getsockname()[1]
    data = bytearray()

    def serve() -> None:
        conn, _ = srv.accept()
        with conn:
            while chunk := conn.recv(65536):
                data.extend(chunk)

    t = threading.Thread(target=serve)
    t.start()
    res = _replay("--syslog", f"tcp://127.0.0.1:{port}", "--syslog-facility", "local5")
    t.join(30)
    srv.close()
    assert res.returncode == 0, res.stderr
    messages, rest = [], bytes(data)
    while rest:
        length, _, rest = rest.partition(b" ")
        n = int(length)
        messages.append(rest[:n])
        rest = rest[n:]
    _check_demo(messages)


def test_local_datagram_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "log")
    rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    rx.bind(path)
    rx.settimeout(10)
    res = _replay("--syslog", path)
    assert res.returncode == 0, res.stderr
    _check_demo([rx.recv(70_000) for _ in range(6)])
    rx.close()


def test_unreachable_collector_stops_replay_in_one_line() -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there
    res = _replay("--syslog", f"tcp://127.0.0.1:{port}")
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines()[-1] == (
        f"netdetect: cannot write output syslog tcp://127.0.0.1:{port}: Connection refused")


@pytest.mark.parametrize("bad", ["http://x:1", "udp://", "tcp://h:99999", "relative/path"])
def test_bad_targets_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="syslog target"):
        parse_target(bad)
    res = _replay("--syslog", bad)
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
