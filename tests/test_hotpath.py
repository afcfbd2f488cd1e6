"""The batch fast path and the C prefilter change speed, never results."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet as ScapyPacket

from netdetect.capture import prefilter
from netdetect.capture.files import FrameReader
from netdetect.engine import Engine
from netdetect.errors import CaptureError
from netdetect.intel import Intel
from netdetect.model import Suspect
from netdetect.service import PrefilterOptions, replay

Frame = tuple[float, int, bytes]
ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
SUBSCRIBE = b'{"id": 1, "method": "mining.subscribe", "params": ["cgminer/4.10.0"]}\n'


def per_frame(intel: Intel, frames: list[Frame]) -> tuple[dict[str, int], list[Suspect]]:
    eng = Engine(intel)
    out: list[Suspect] = []
    for ts, lt, f in frames:
        eng.feed(ts, lt, f)
        out.extend(eng.take_suspects())
    eng.finish()
    out.extend(eng.take_suspects())
    return eng.counters(), out


def batched(
    intel: Intel, frames: list[Frame], size: int
) -> tuple[dict[str, int], list[Suspect], float]:
    eng = Engine(intel)
    out: list[Suspect] = []
    for i in range(0, len(frames), size):
        assert eng.feed_frames(frames[i : i + size]) == len(frames[i : i + size])
        out.extend(eng.take_suspects())
    eng.finish()
    out.extend(eng.take_suspects())
    return eng.counters(), out, eng.last_ts


def mixed_frames() -> list[Frame]:
    """Every branch of the inline decoder and of the quiet-packet test, plus its fallbacks."""
    miner, pool = "10.1.2.3", "198.51.100.7"
    pkts: list[ScapyPacket] = [
        IP(src=miner, dst=pool) / TCP(sport=40000, dport=3333, flags="S", seq=1),
        IP(src=pool, dst=miner) / TCP(sport=3333, dport=40000, flags="SA", seq=9, ack=2),
        IP(src=miner, dst=pool) / TCP(sport=40000, dport=3333, flags="A", seq=2, ack=10),
        IP(src=miner, dst=pool) / TCP(sport=40000, dport=3333, flags="PA", seq=2) / SUBSCRIBE,
        IP(src=pool, dst=miner) / TCP(sport=3333, dport=40000, flags="A", seq=10),
        Dot1Q(vlan=30) / IP(src="10.0.0.9", dst="203.0.113.1") / UDP(sport=5000, dport=443)
        / (b"q" * 60),
        Dot1Q(vlan=30) / IP(src="203.0.113.1", dst="10.0.0.9") / UDP(sport=443, dport=5000)
        / (b"r" * 60),
        IPv6(src="fd00::5", dst="2001:db8::1") / TCP(sport=1234, dport=443, flags="S"),
        IPv6(src="fd00::5", dst="2001:db8::1") / TCP(sport=1234, dport=443, flags="A") / b"x",
        IP(src="10.0.0.5", dst="10.0.0.53") / UDP(sport=3000, dport=53)
        / DNS(rd=1, qd=DNSQR(qname="pool.supportxmr.com")),
        IP(src="10.0.0.53", dst="10.0.0.5") / UDP(sport=53, dport=3000)
        / DNS(qr=1, qd=DNSQR(qname="pool.supportxmr.com"),
              an=DNSRR(rrname="pool.supportxmr.com", rdata="198.51.100.7")),
        IP(src="10.0.0.7", dst="10.0.0.8", flags="MF") / UDP(sport=1, dport=2) / (b"f" * 40),
        IP(src="10.0.0.7", dst="10.0.0.8", ihl=6, options=b"\x01\x01\x01\x00") / TCP() / b"o",
        IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=9, dport=4789) / VXLAN(vni=5)
        / ETH / IP(src=miner, dst=pool) / TCP(sport=40001, dport=3333) / SUBSCRIBE,
        Dot1Q(vlan=1) / Dot1Q(vlan=2) / IP(src=miner, dst=pool) / TCP() / b"qinq",
        IP(src=miner, dst=pool) / TCP(sport=40000, dport=3333, flags="FA", seq=200),
        IP(src=pool, dst=miner) / TCP(sport=3333, dport=40000, flags="R", seq=10),
    ]
    frames: list[Frame] = [(100.0 + i * 0.5, 1, bytes(ETH / p)) for i, p in enumerate(pkts)]
    frames.append((120.0, 1, frames[3][2][:40]))  # cut inside the TCP header
    frames.append((121.0, 101, bytes(IP(src=miner, dst=pool) / TCP(dport=3333) / b"{}")))
    # Idle long enough that the next packet sweeps the table mid-batch.
    frames.append((900.0, 1, frames[4][2]))
    return frames


def test_feed_frames_equals_per_frame_feed_on_every_branch(intel: Intel) -> None:
    frames = mixed_frames()
    want_counters, want = per_frame(intel, frames)
    assert want, "the mix must raise at least one suspect to compare"
    for size in (1, 3, len(frames)):
        got_counters, got, last_ts = batched(intel, frames, size)
        assert got == want
        assert got_counters == want_counters
        assert last_ts == 900.0


def corpus_frames(corpus: Path, names: list[str]) -> list[list[Frame]]:
    return [list(FrameReader(str(corpus / n))) for n in names]


CORPUS_FILES = [
    "mining/lab__xmrig-plain.pcap",
    "mining/zeekcm__bitcoin-mining.pcap",
    "mining/ndpi__mining.pcapng",
    "mining/zeekcm__coinhive.pcap",
]


@pytest.mark.corpus
def test_feed_frames_equals_per_frame_feed_on_real_captures(corpus: Path, intel: Intel) -> None:
    for frames in corpus_frames(corpus, CORPUS_FILES):
        want_counters, want = per_frame(intel, frames)
        got_counters, got, _ = batched(intel, frames, 4096)
        assert got == want
        assert got_counters == want_counters


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.lists(
        st.tuples(st.integers(0, len(mixed_frames()) - 1), st.integers(0, 200), st.binary(
            max_size=4)),
        max_size=20,
    )
)
def test_feed_frames_equals_feed_on_mutated_frames(intel: Intel, data: list[tuple[int, int,
                                                                                 bytes]]) -> None:
    base = mixed_frames()
    frames: list[Frame] = []
    for i, (k, pos, patch) in enumerate(data):
        ts, lt, f = base[k]
        f = f[:pos] + patch + f[pos + len(patch) :]
        frames.append((ts + i, lt, f))
    want_counters, want = per_frame(intel, frames)
    got_counters, got, _ = batched(intel, frames, 7)
    assert got == want
    assert got_counters == want_counters


# -- prefilter ----------------------------------------------------------------------------


def write_pcap(path: Path, frames: list[Frame]) -> None:
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for ts, _lt, f in frames:
        sec = int(ts)
        out.append(struct.pack("<IIII", sec, round((ts - sec) * 1e6), len(f), len(f)))
        out.append(f)
    path.write_bytes(b"".join(out))


def bulk_session() -> list[Frame]:
    """A long bulk TCP flow with a stratum line late in it, an IPv6 flow and DNS."""
    c, s = "10.1.2.3", "198.51.100.7"
    frames: list[Frame] = []
    ts = 1000.0
    seq = 1
    for i in range(60):
        ts += 0.01
        frames.append((ts, 1, bytes(ETH / IP(src=c, dst=s) / TCP(
            sport=40000, dport=3333, flags="A", seq=seq) / (b"B" * 1448))))
        seq += 1448
        if i == 40:
            frames.append((ts + 0.001, 1, bytes(ETH / IP(src=c, dst=s) / TCP(
                sport=40000, dport=3333, flags="PA", seq=seq) / SUBSCRIBE)))
            seq += len(SUBSCRIBE)
    frames.append((ts + 1, 1, bytes(ETH / IPv6(src="fd00::5", dst="2001:db8::1") / UDP(
        sport=5, dport=6) / (b"6" * 1300))))
    frames.append((ts + 2, 1, bytes(ETH / IP(src="10.0.0.53", dst=c) / UDP(sport=53, dport=3000)
                                    / DNS(qr=1, qd=DNSQR(qname="example.com")))))
    return frames


def test_prefilter_drops_only_bulk_past_the_head(tmp_path: Path) -> None:
    assert prefilter.available(), "pcapy-ng missing: pip install 'netdetect[live]'"
    frames = bulk_session()
    path = tmp_path / "bulk.pcap"
    write_pcap(path, frames)
    pf = prefilter.PrefilteredFile(str(path), head_packets=4)
    got = list(pf.frames())
    assert pf.stats.seen == len(frames)
    assert pf.stats.heads == 4  # the first 4 full-size segments of the one bulk direction
    assert pf.stats.passed == 3  # the small stratum segment, IPv6, DNS
    assert pf.stats.dropped == len(frames) - 7
    assert [ts for ts, _, _ in got] == sorted(ts for ts, _, _ in got)
    assert {f for _, _, f in got} <= {f for _, _, f in frames}
    assert any(SUBSCRIBE in f for _, _, f in got)
    assert any(f[12:14] == b"\x86\xdd" for _, _, f in got)


def test_prefilter_keeps_the_stratum_line_past_the_head(tmp_path: Path, intel: Intel) -> None:
    path = tmp_path / "bulk.pcap"
    write_pcap(path, bulk_session())
    full = replay([str(path)], intel=intel, sinks=[])
    opts = PrefilterOptions(head_packets=2)
    fast = replay([str(path)], intel=intel, sinks=[], prefilter=opts)
    assert [a.suspect.pool for a in fast.alerts] == [a.suspect.pool for a in full.alerts]
    assert len(full.alerts) == 1
    assert fast.counters["prefilter_dropped"] == 58
    assert fast.frames < full.frames


def test_prefilter_passes_other_link_types_whole(tmp_path: Path) -> None:
    path = tmp_path / "raw.pcap"
    raw = [bytes(IP(src="10.0.0.1", dst="10.0.0.2") / TCP() / (b"x" * 1400)) for _ in range(20)]
    head = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101)
    path.write_bytes(
        head + b"".join(struct.pack("<IIII", 5, i, len(r), len(r)) + r for i, r in enumerate(raw))
    )
    pf = prefilter.PrefilteredFile(str(path), head_packets=1)
    got = list(pf.frames())
    assert [f for _, _, f in got] == raw
    # libpcap reports DLT_RAW (12 on Linux) for LINKTYPE_RAW (101); the decoder takes both.
    assert {lt for _, lt, _ in got} <= {12, 101}
    assert pf.stats.passed == 20


def test_prefilter_missing_file_is_a_capture_error(tmp_path: Path) -> None:
    pf = prefilter.PrefilteredFile(str(tmp_path / "nope.pcap"))
    with pytest.raises(CaptureError):
        list(pf.frames())


def test_prefilter_rejects_nonsense_options() -> None:
    with pytest.raises(ValueError, match="head_packets"):
        prefilter.PrefilteredFile("x", head_packets=0)


@pytest.mark.corpus
def test_prefilter_keeps_full_recall_on_the_corpus(corpus: Path, intel: Intel) -> None:
    labels = json.loads((corpus / "labels.json").read_text())["files"]
    for name, entry in sorted(labels.items()):
        want = {(f["client_ip"], f["server_ip"], int(f["server_port"]))
                for f in entry.get("mining_flows") or []}
        res = replay([str(corpus / name)], intel=intel, sinks=[],
                     prefilter=PrefilterOptions(head_packets=prefilter.HEAD_PACKETS))
        got: set[tuple[str, str, int]] = set()
        for a in res.alerts:
            s = a.suspect
            got.add((s.miner.ip, s.pool.ip, s.pool.port))
            got.add((s.pool.ip, s.miner.ip, s.miner.port))
        assert want <= got, (name, want - got)
