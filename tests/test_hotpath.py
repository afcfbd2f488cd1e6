"""How frames are batched into the core (one call per frame, or thousands) changes speed,
never results."""

from __future__ import annotations

from pathlib import Path

import pytest
from coreparse import read_frames
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet as ScapyPacket

from netdetect.core_engine import CoreEngine as Engine
from netdetect.intel import Intel
from netdetect.model import Suspect

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
    return results(eng), out


def results(eng: Engine) -> dict[str, int]:
    """Every counter but two costs that depend on call boundaries: `core_events` counts the
    crossings into Python (end-of-packet markers per call), and `sampled_packets` the
    packets looked at in SAMPLE mode, which lasts until Python's mark for the flow arrives:
    at the end of the call that raised the evidence (README, "the mark lags a batch")."""
    c = eng.counters()
    del c["core_events"], c["sampled_packets"]
    return c


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
    return results(eng), out, eng.core.last_ts


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
    return [list(read_frames(str(corpus / n))) for n in names]


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
