"""Hostile bytes that used to stop a replay (issue: one byte kills a replay; timestamps out of
range) are contained in the compiled core: the rest of the capture is still analysed."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from netdetect.intel import Intel
from netdetect.service import replay

LOGIN = (b'{"id":1,"jsonrpc":"2.0","method":"login","params":{"login":"4Abc","pass":"x",'
         b'"agent":"XMRig/6.16.0 (Linux x86_64) libuv/1.42.0 gcc/9.3.0"}}\n')


def _session(client: str, sport: int, dport: int, payload: bytes, t: float) -> list[Ether]:
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    out = []
    for k, (pkt, d) in enumerate((
        (TCP(sport=sport, dport=dport, flags="S", seq=100), 0),
        (TCP(sport=dport, dport=sport, flags="SA", seq=500, ack=101), 1),
        (TCP(sport=sport, dport=dport, flags="PA", seq=101, ack=501) / payload, 0),
    )):
        ip = IP(src=client, dst="198.51.100.9") if d == 0 else IP(src="198.51.100.9", dst=client)
        f = eth / ip / pkt
        f.time = t + k * 0.001
        out.append(f)
    return out


def test_unicode_content_length_does_not_stop_the_replay(tmp_path: Path, intel: Intel) -> None:
    bad = ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: \u00b2\r\n\r\n{}").encode()
    cap = tmp_path / "hostile.pcap"
    wrpcap(str(cap), _session("10.1.1.1", 40000, 80, bad, 1000.0)
           + _session("10.1.1.2", 40001, 3333, LOGIN, 1001.0))
    result = replay([str(cap)], intel=intel, sinks=[])
    assert result.errors == []
    assert [(a.suspect.miner.ip, a.suspect.dialect) for a in result.alerts] == [
        ("10.1.1.2", "cryptonote")
    ]
    assert result.counters["core_panics"] == 0


def _pcapng_with_tsoffset(path: Path, tsoffset: int) -> None:
    frame = bytes(_session("10.1.1.2", 40001, 3333, LOGIN, 0.0)[0])
    def block(btype: int, body: bytes) -> bytes:
        body += b"\0" * (-len(body) % 4)
        n = 12 + len(body)
        return struct.pack("<II", btype, n) + body + struct.pack("<I", n)
    shb = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    opt = struct.pack("<HHq", 14, 8, tsoffset) + struct.pack("<HH", 0, 0)
    idb = block(1, struct.pack("<HHI", 1, 0, 0) + opt)
    epb = block(6, struct.pack("<IIIII", 0, 0, 1000, len(frame), len(frame)) + frame)
    path.write_bytes(shb + idb + epb)


def test_timestamps_out_of_range_are_a_clear_capture_error(tmp_path: Path) -> None:
    cap = tmp_path / "future.pcapng"
    _pcapng_with_tsoffset(cap, 10**15)
    good = tmp_path / "good.pcap"
    wrpcap(str(good), _session("10.1.1.2", 40001, 3333, LOGIN, 1001.0))
    run = subprocess.run(
        [sys.executable, "-m", "netdetect", "replay", str(cap), str(good), "--eve", "-"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert run.returncode == 2
    assert "timestamp out of range" in run.stderr
    assert "Traceback" not in run.stderr
    # The good capture after the damaged one is still analysed.
    assert '"event_type":"alert"' in run.stdout
