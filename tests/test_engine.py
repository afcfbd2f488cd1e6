"""The detection core end to end on crafted packets: modes, evidence and alert rules."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Packet as ScapyPacket

from netdetect import _core
from netdetect.core_engine import CoreEngine as Engine
from netdetect.detect import TIMING_MIN_DURATION, TIMING_SMALL
from netdetect.intel import Intel
from netdetect.model import Suspect

MINER, POOL = "10.1.2.3", "198.51.100.7"


def frame(p: ScapyPacket) -> bytes:
    return bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / p)


class Conn:
    """A TCP connection that numbers its own segments."""

    def __init__(self, c: str, cport: int, s: str, sport: int) -> None:
        self.c, self.cport, self.s, self.sport = c, cport, s, sport
        self.cseq, self.sseq = 1000, 5000

    def syn(self) -> Iterator[bytes]:
        yield frame(IP(src=self.c, dst=self.s) / TCP(sport=self.cport, dport=self.sport,
                                                     flags="S", seq=self.cseq))
        yield frame(IP(src=self.s, dst=self.c) / TCP(sport=self.sport, dport=self.cport,
                                                     flags="SA", seq=self.sseq,
                                                     ack=self.cseq + 1))
        self.cseq += 1
        self.sseq += 1

    def c2s(self, data: bytes, flags: str = "PA") -> bytes:
        f = frame(IP(src=self.c, dst=self.s) / TCP(sport=self.cport, dport=self.sport,
                                                   flags=flags, seq=self.cseq,
                                                   ack=self.sseq) / data)
        self.cseq += len(data)
        return f

    def s2c(self, data: bytes, flags: str = "PA") -> bytes:
        f = frame(IP(src=self.s, dst=self.c) / TCP(sport=self.sport, dport=self.cport,
                                                   flags=flags, seq=self.sseq,
                                                   ack=self.cseq) / data)
        self.sseq += len(data)
        return f


def run(intel: Intel, frames: list[tuple[float, bytes]]) -> tuple[Engine, list[Suspect]]:
    eng = Engine(intel)
    out: list[Suspect] = []
    for ts, f in frames:
        eng.feed(ts, 1, f)
        out.extend(eng.take_suspects())
    eng.finish()
    out.extend(eng.take_suspects())
    return eng, out


SUBSCRIBE = b'{"id": 1, "method": "mining.subscribe", "params": ["cgminer/4.10.0"]}\n'
NOTIFY = (
    b'{"id":null,"method":"mining.notify","params":["4f","' + b"00" * 32 + b'","01","02",[],'
    b'"20000000","1d00ffff","5f5e1000",true]}\n'
)


def test_stratum_subscribe_alerts_once_with_miner_as_source(intel: Intel) -> None:
    c = Conn(MINER, 40000, POOL, 3333)
    frames = [(1.0 + i, f) for i, f in enumerate([*c.syn(), c.c2s(SUBSCRIBE), c.c2s(SUBSCRIBE)])]
    _eng, sus = run(intel, frames)
    assert len(sus) == 1
    s = sus[0]
    assert (s.miner.ip, s.miner.port, s.pool.ip, s.pool.port) == (MINER, 40000, POOL, 3333)
    assert s.dialect == "stratum-v1"
    assert "mining.subscribe" in s.methods
    assert s.miner_facts.agent == "cgminer/4.10.0"


def test_split_line_across_segments_still_decodes(intel: Intel) -> None:
    c = Conn(MINER, 40001, POOL, 3333)
    parts = [SUBSCRIBE[:7], SUBSCRIBE[7:30], SUBSCRIBE[30:]]
    frames = [(1.0 + i, f) for i, f in enumerate([*c.syn(), *(c.c2s(p) for p in parts)])]
    _eng, sus = run(intel, frames)
    assert len(sus) == 1


def test_midflow_pool_push_identifies_miner_side(intel: Intel) -> None:
    c = Conn(MINER, 40002, POOL, 3333)
    # No SYN: the capture starts in the middle of a line.
    frames = [(1.0, c.s2c(b'ms":[]}\n' + NOTIFY)), (2.0, c.c2s(b"\n"))]
    _eng, sus = run(intel, frames)
    assert len(sus) == 1
    assert sus[0].miner.ip == MINER  # the side that receives notify
    assert sus[0].pool.port == 3333


def test_generic_jsonrpc_is_not_mining(intel: Intel) -> None:
    c = Conn(MINER, 40003, POOL, 8545)
    req = b'{"jsonrpc":"2.0","method":"eth_blockNumber","params":[],"id":1}\n'
    frames = [(1.0 + i, f) for i, f in enumerate([*c.syn(), c.c2s(req),
                                                  c.s2c(b'{"jsonrpc":"2.0","id":1,"result":"0x1"}\n')])]
    _eng, sus = run(intel, frames)
    assert sus == []


def test_port_alone_is_never_enough(intel: Intel) -> None:
    c = Conn(MINER, 40004, POOL, 3333)
    bulk = os.urandom(1400)
    frames = [(1.0 + i, f) for i, f in enumerate([*c.syn(), *(c.c2s(bulk) for _ in range(50))])]
    _eng, sus = run(intel, frames)
    assert sus == []


@pytest.mark.parametrize(("port", "alerts"), [(3333, 1), (443, 0)])
def test_dns_answer_after_flow_start_is_applied_to_live_flows(intel: Intel, port: int,
                                                              alerts: int) -> None:
    # A pool name alone is not mining: on a web port it may be a visit to the pool's site;
    # on a non-web port it is (pool DNS 45 + non-web port 15).
    c = Conn(MINER, 40005, POOL, port)
    # Mid-flow TLS records to an address, then a DNS answer naming a pool for it.
    tls_alert = b"\x15\x03\x03\x00\x1a" + os.urandom(26)
    dns = frame(
        IP(src="10.0.0.53", dst=MINER) / UDP(sport=53, dport=5555)
        / DNS(id=7, qr=1, qd=DNSQR(qname="pool.supportxmr.com"),
              an=DNSRR(rrname="pool.supportxmr.com", type="A", ttl=300, rdata=POOL))
    )
    frames = [(1.0, c.c2s(tls_alert)), (1.1, c.c2s(b"", flags="FA")), (2.0, dns)]
    _eng, sus = run(intel, frames)
    assert len(sus) == alerts
    if not alerts:
        return
    assert sus[0].pool_facts.host == "pool.supportxmr.com"
    assert any(e.kind == "pool-dns" for e in sus[0].evidence)


def test_dns_before_flow_gives_pool_name(intel: Intel) -> None:
    dns = frame(
        IP(src="10.0.0.53", dst=MINER) / UDP(sport=53, dport=5555)
        / DNS(id=8, qr=1, qd=DNSQR(qname="xmr-eu1.nanopool.org"),
              an=DNSRR(rrname="xmr-eu1.nanopool.org", type="A", ttl=300, rdata=POOL))
    )
    c = Conn(MINER, 40006, POOL, 14444)
    frames = [(0.5, dns), *((1.0 + i, f) for i, f in enumerate(
        [*c.syn(), c.c2s(b"\x16\x03\x01\x00\x05hello")]))]
    _eng, sus = run(intel, frames)
    assert len(sus) == 1
    assert sus[0].pool_facts.host == "xmr-eu1.nanopool.org"
    assert sus[0].pool_facts.host_source == "dns"


def test_half_closed_connection_is_not_split_into_two_alerts(intel: Intel) -> None:
    c = Conn(MINER, 40007, POOL, 3333)
    frames = [(1.0, f) for f in c.syn()]
    frames += [(1.1, c.c2s(SUBSCRIBE)), (1.2, c.c2s(b"", flags="FA"))]
    # The pool keeps pushing long after the miner's FIN (a half-close).
    frames += [(60.0 + i, c.s2c(NOTIFY)) for i in range(3)]
    eng, sus = run(intel, frames)
    assert len(sus) == 1
    assert eng.counters()["flows_created"] == 1


def test_flow_table_cap_evicts_and_counts(intel: Intel) -> None:
    eng = Engine(intel, max_flows=100)
    for i in range(1000):
        p = IP(src=MINER, dst=POOL) / TCP(sport=10000 + i, dport=80, flags="S")
        eng.feed(float(i) / 1000, 1, frame(p))
    c = eng.counters()
    assert c["flows_active"] <= 100
    assert c["flows_evicted"] >= 900
    assert c["flows_created"] == 1000


def test_active_timeout_restarts_long_flows_without_a_second_alert(intel: Intel) -> None:
    eng = Engine(intel)
    # The same core, with a short active timeout.
    eng.core = _core.Core(active_timeout=100.0, timing_small=TIMING_SMALL,
                          timing_min_duration=TIMING_MIN_DURATION)
    eng.core.set_intel(*intel.prefilter())
    c = Conn(MINER, 40008, POOL, 3333)
    frames = [(1.0, f) for f in c.syn()] + [(1.1, c.c2s(SUBSCRIBE))]
    # The session goes on for longer than the active timeout, with pushes every 20 s.
    frames += [(20.0 * i, c.s2c(NOTIFY)) for i in range(1, 12)]
    out: list[Suspect] = []
    for ts, f in frames:
        eng.feed(ts, 1, f)
        out.extend(eng.take_suspects())
    assert len(out) == 1
    assert eng.counters()["flows_active_expired"] == 1
    assert eng.detector.suppressed == 1  # the restarted flow was recognised, not re-alerted


def test_passive_dns_names_expire_as_answers_arrive(intel: Intel) -> None:
    eng = Engine(intel)

    def answer(ts: float, name: str, ip: str, ttl: int) -> None:
        f = frame(
            IP(src="10.0.0.53", dst=MINER) / UDP(sport=53, dport=5555)
            / DNS(id=9, qr=1, qd=DNSQR(qname=name), an=DNSRR(rrname=name, type="A", ttl=ttl,
                                                                rdata=ip))
        )
        eng.feed(ts, 1, f)

    answer(1.0, "a.supportxmr.com", "192.0.2.1", 60)
    assert eng.core.pdns_names("192.0.2.1", 2.0) == ["a.supportxmr.com"]
    answer(1000.0, "b.supportxmr.com", "192.0.2.2", 60)  # the first name expired long ago
    assert eng.counters()["pdns_expired"] == 1
    assert eng.core.pdns_names("192.0.2.1", 1000.0) == []


def test_passive_dns_holds_pool_names_only_and_a_flood_cannot_evict_them(
        intel: Intel) -> None:
    """Judgement asks passive DNS about pool names alone: other answers are not kept, so a
    resolver's ordinary traffic, or a flood of answers for random names, costs no entry and
    cannot push the pool's answer out of a budget it would otherwise fill many times."""
    eng = Engine(intel)
    budget = 4096
    eng.core = _core.Core(pdns_budget=budget)
    eng.core.set_intel(*intel.prefilter())

    def answer(ts: float, name: str, ip: str) -> None:
        f = frame(
            IP(src="10.0.0.53", dst=MINER) / UDP(sport=53, dport=5555)
            / DNS(id=9, qr=1, qd=DNSQR(qname=name), an=DNSRR(rrname=name, type="A", ttl=3600,
                                                                rdata=ip))
        )
        eng.feed(ts, 1, f)

    answer(1.0, "pool.supportxmr.com", POOL)
    pool_bytes = eng.counters()["pdns_bytes"]
    assert pool_bytes > 0
    for i in range(2000):  # some 100 times what the budget holds of such entries
        answer(2.0 + i / 1000, f"host{i}.cdn-{i % 97}.example.net", f"203.0.113.{i % 250 + 1}")
    c = eng.counters()
    assert c["pdns_bytes"] == pool_bytes
    assert c["pdns_evictions"] == 0
    assert eng.core.pdns_names(POOL, 5.0) == ["pool.supportxmr.com"]
    assert eng.core.pdns_names("203.0.113.1", 5.0) == []


def test_alerted_flow_ends_with_final_counts(intel: Intel) -> None:
    c = Conn(MINER, 40009, POOL, 3333)
    frames = [(1.0, f) for f in c.syn()] + [(1.1, c.c2s(SUBSCRIBE))]
    frames += [(10.0 * i, c.s2c(NOTIFY)) for i in range(1, 5)]
    frames += [(50.0, c.c2s(b"", flags="FA")), (50.1, c.s2c(b"", flags="FA"))]
    eng, sus = run(intel, frames)
    assert len(sus) == 1
    ends = eng.take_flow_ends()
    assert len(ends) == 1
    end = ends[0]
    assert end.suspect.flow_id == sus[0].flow_id
    assert end.suspect.pool_facts.jobs == 4  # counted after the alert was raised
    assert sus[0].pool_facts.jobs == 0
    assert end.closed
    assert (end.pkts_to_pool, end.pkts_to_miner) == (3, 6)  # SYN, subscribe, FIN; SYN/ACK, 4, FIN
    assert end.bytes_to_pool == len(SUBSCRIBE)
