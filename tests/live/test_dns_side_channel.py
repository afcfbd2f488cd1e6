"""Passive DNS in the live sensor does not depend on the worker or on timing: pool flows whose
pool name comes from a DNS answer microseconds before (or after) their first payload alert the
same with one worker, with two (the answer reaching the flow's worker through its DNS side
channel) and in an offline replay of the same capture, replayed at top speed."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import dpkt
import pytest

from .conftest import REPO, Netns, NetnsFactory, Sniff, tcpreplay

pytestmark = pytest.mark.netns

CLIENT_MAC = bytes.fromhex("020000000001")
GATEWAY_MAC = bytes.fromhex("020000000002")
POOL_NAMES = ("pool.supportxmr.com", "xmr-eu1.nanopool.org", "gulf.moneroocean.stream")
RESOLVER = "10.0.0.53"
CLIENT_PORT = 40000  # flow i's client port is CLIENT_PORT + i


def _ip(a: str) -> bytes:
    return bytes(int(x) for x in a.split("."))


def _eth(src: bytes, dst: bytes, ip: dpkt.ip.IP) -> bytes:
    ip.len = 20 + len(bytes(ip.data))
    return bytes(dpkt.ethernet.Ethernet(src=src, dst=dst, type=dpkt.ethernet.ETH_TYPE_IP,
                                        data=ip))


def _tcp(src: str, dst: str, sport: int, dport: int, flags: int, seq: int, ack: int,
         payload: bytes = b"") -> bytes:
    seg = dpkt.tcp.TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=ack, win=65535,
                       data=payload)
    mac = (CLIENT_MAC, GATEWAY_MAC) if src.startswith("10.") else (GATEWAY_MAC, CLIENT_MAC)
    return _eth(*mac, dpkt.ip.IP(src=_ip(src), dst=_ip(dst), p=dpkt.ip.IP_PROTO_TCP, data=seg))


def _dns_answer(client: str, cport: int, name: str, addr: str, qid: int) -> bytes:
    msg = dpkt.dns.DNS(id=qid, op=dpkt.dns.DNS_RD | dpkt.dns.DNS_RA)
    msg.qr = dpkt.dns.DNS_R
    msg.qd = [dpkt.dns.DNS.Q(name=name, type=dpkt.dns.DNS_A, cls=dpkt.dns.DNS_IN)]
    msg.an = [dpkt.dns.DNS.RR(name=name, type=dpkt.dns.DNS_A, cls=dpkt.dns.DNS_IN, ttl=600,
                              rdata=_ip(addr))]
    udp = dpkt.udp.UDP(sport=53, dport=cport, data=bytes(msg))
    udp.ulen = 8 + len(udp.data)
    return _eth(GATEWAY_MAC, CLIENT_MAC,
                dpkt.ip.IP(src=_ip(RESOLVER), dst=_ip(client), p=dpkt.ip.IP_PROTO_UDP, data=udp))


def _ext(kind: int, body: bytes) -> bytes:
    return struct.pack("!HH", kind, len(body)) + body


def _openssl_hello() -> bytes:
    """A ClientHello in OpenSSL 1.1.1's default shape (as XMRig sends it): no SNI, no ALPN."""
    ciphers = (0x1302, 0x1303, 0x1301, 0xC02C, 0xC030, 0x009F, 0xCCA9, 0xCCA8, 0xCCAA, 0xC02B,
               0xC02F, 0x009E, 0xC024, 0xC028, 0x006B, 0xC023, 0xC027, 0x0067, 0xC00A, 0xC014,
               0x0039, 0xC009, 0xC013, 0x0033, 0x009D, 0x009C, 0x003D, 0x003C, 0x0035, 0x002F,
               0x00FF)
    exts = (_ext(11, b"\x03\x00\x01\x02")
            + _ext(10, struct.pack("!5H", 8, 0x1D, 0x17, 0x1E, 0x19))
            + _ext(35, b"") + _ext(22, b"") + _ext(23, b"")
            + _ext(13, struct.pack("!3H", 4, 0x0403, 0x0804))
            + _ext(43, b"\x04\x03\x04\x03\x03") + _ext(45, b"\x01\x01")
            + _ext(51, struct.pack("!3H", 36, 0x1D, 32) + bytes(range(32))))
    body = (struct.pack("!H", 0x0303) + bytes(range(32)) + b"\x20" + bytes(32)
            + struct.pack("!H", 2 * len(ciphers)) + struct.pack(f"!{len(ciphers)}H", *ciphers)
            + b"\x01\x00" + struct.pack("!H", len(exts)) + exts)
    msg = b"\x01" + len(body).to_bytes(3, "big") + body
    return struct.pack("!BHH", 22, 0x0301, len(msg)) + msg


def _records(n: int) -> bytes:
    return struct.pack("!BHH", 23, 0x0303, n) + bytes((i * 7) & 0xFF for i in range(n))


SUBSCRIBE = b'{"id": 1, "method": "mining.subscribe", "params": ["cgminer/4.10.0"]}\n'
SUBSCRIBED = (b'{"id":1,"result":[[["mining.set_difficulty","1"],["mining.notify","1"]],'
              b'"08000002",4],"error":null}\n')
AUTHORIZE = b'{"id": 2, "method": "mining.authorize", "params": ["rig7.w1", "x"]}\n'
AUTHORIZED = b'{"id":2,"result":true,"error":null}\n'


def pool_flows_and_answers(path: Path, flows: int, filler: int) -> Path:
    """`flows` sessions to pool addresses, each with a DNS answer naming its address 20 µs
    before the session's SYN (and 80 µs before its first payload, where the core looks the
    address up), or right after its first lines:

    - i % 3 == 0: TLS without SNI or ALPN on port 443, answer ahead; the answer is its only
      pool evidence: without it in passive DNS (lost by the side channel) no alert at all;
    - i % 3 == 1: Stratum on port 3333, answer ahead; it alerts on its first lines, and with
      the answer judged after them (handed over late) the alert lacks the pool name;
    - i % 3 == 2: Stratum on port 3333, answer 20 µs after its last line: the alert must
      not have the name either (as in a replay), though the answer is close behind.

    Between sessions, `filler` full-size segments of 64 bulk flows fill the main rings'
    blocks, so a block holding a first payload is often handed over at once."""
    a, pa = dpkt.tcp.TH_ACK, dpkt.tcp.TH_ACK | dpkt.tcp.TH_PUSH
    hello = _openssl_hello()
    flight = (b"\x16\x03\x03\x00\x5a\x02" + bytes(0x59) + b"\x14\x03\x03\x00\x01\x01"
              + _records(1800))
    tls = ((0, hello), (1, flight[:1400]), (1, flight[1400:]),
           (0, b"\x14\x03\x03\x00\x01\x01" + _records(53) + _records(400)),
           (1, _records(560)))
    stratum = ((0, SUBSCRIBE), (1, SUBSCRIBED), (0, AUTHORIZE), (1, AUTHORIZED))
    bulk = bytes(1448)
    t = 1_700_000_000.0
    k = 0
    with path.open("wb") as fh:
        w = dpkt.pcap.Writer(fh, nano=True)

        def put(frame: bytes, gap: float = 20e-6) -> None:
            nonlocal t
            w.writepkt(frame, t)
            t += gap

        for i in range(flows):
            client = f"10.20.{i // 200}.{i % 200 + 10}"
            pool = f"198.51.{100 + i // 200}.{i % 200 + 10}"
            port, talk = (3333, stratum) if i % 3 else (443, tls)
            answer = _dns_answer(client, 50000 + i, POOL_NAMES[i % len(POOL_NAMES)], pool, i)
            if i % 3 < 2:
                put(answer)
            ends = ((client, pool, CLIENT_PORT + i, port), (pool, client, port, CLIENT_PORT + i))
            seq = [1000, 5000]
            put(_tcp(*ends[0], dpkt.tcp.TH_SYN, seq[0], 0))
            put(_tcp(*ends[1], dpkt.tcp.TH_SYN | a, seq[1], seq[0] + 1))
            seq = [seq[0] + 1, seq[1] + 1]
            put(_tcp(*ends[0], a, seq[0], seq[1]))
            for d, data in talk:
                put(_tcp(*ends[d], pa, seq[d], seq[1 - d], data))
                seq[d] += len(data)
            if i % 3 == 2:
                put(answer)
            for _ in range(filler):
                f = k % 64
                put(_tcp(f"10.30.0.{f + 1}", f"10.40.0.{f + 1}", 30000 + f, 445, a,
                         1 + 1448 * (k // 64), 1, bulk), 5e-6)
                k += 1
    return path


def alert_set(alerts: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    """What must not depend on the worker or the pace: which flows alerted, their scores,
    evidence kinds and the pool names."""
    return {
        (a["src_ip"], a["src_port"], a["dest_ip"], a["dest_port"], a["netdetect"]["score"],
         tuple(sorted(e["kind"] for e in a["netdetect"]["evidence"])),
         (a["netdetect"].get("pool") or {}).get("host"))
        for a in alerts if a["event_type"] == "alert"
    }


def replay_alerts(cap: Path, eve: Path) -> set[tuple[Any, ...]]:
    """`netdetect replay` of the same capture: packet time, one engine, no side channel."""
    subprocess.run([sys.executable, "-m", "netdetect.cli", "replay", "-q", "--eve", str(eve),
                    str(cap)], check=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                   capture_output=True)
    return alert_set([json.loads(line) for line in eve.read_text().splitlines() if line])


def sniff_alerts(ns: Netns, work: Path, sniffs: list[Sniff], cap: Path,
                 workers: int) -> tuple[set[tuple[Any, ...]], dict[int, dict[str, int]]]:
    work.mkdir()
    s = Sniff(ns, work, "-i", "vb", "--workers", str(workers), "-q", "--stats-interval", "1")
    sniffs.append(s)
    s.wait_ready()
    sent = tcpreplay(ns, "va", cap, extra=("--topspeed",))
    assert s.stop() == 0
    final = s.final_counters()
    assert sum(w["packets"] for w in final.values()) == sent
    assert all(w["kernel_drops"] == 0 for w in final.values())
    return alert_set(s.eve()), final


FLOWS = 300
FILLER = 100  # 45 MB of capture in all: some 10 main-ring blocks per worker


def differences(expected: set[tuple[Any, ...]], got: set[tuple[Any, ...]]) -> str:
    missing, extra = sorted(expected - got), sorted(got - expected)
    return (f"{len(missing)} expected alerts missing or different, e.g. {missing[:3]}; "
            f"instead {len(extra)}, e.g. {extra[:3]}")


def test_answer_microseconds_ahead_of_the_flow(netns: NetnsFactory, tmp_path: Path,
                                               sniffs: list[Sniff]) -> None:
    cap = pool_flows_and_answers(tmp_path / "race.pcap", FLOWS, FILLER)
    expected = replay_alerts(cap, tmp_path / "replay.eve.json")
    # Every flow alerts offline; those with the answer ahead carry their pool's name from
    # it, those with the answer behind do not.
    assert len(expected) == FLOWS
    named = sorted((port - CLIENT_PORT) % 3 for _ip, port, *_, kinds, name in expected
                   if "pool-dns" in kinds and name in POOL_NAMES)
    assert named == [0] * (FLOWS // 3) + [1] * (FLOWS // 3)
    assert sorted(score for *_, port, score, _kinds, _name in expected if port == 443) == (
        [70] * (FLOWS // 3))
    ns = netns("side")
    ns.veth("va", "vb")
    one, _ = sniff_alerts(ns, tmp_path / "w1", sniffs, cap, 1)
    assert one == expected, differences(expected, one)
    two, per = sniff_alerts(ns, tmp_path / "w2", sniffs, cap, 2)
    assert two == expected, differences(expected, two)
    # The fanout gave each worker some of the pool flows (and some of the answers); the side
    # channel gave each of them every answer, none dropped, none cut short, none forced
    # ahead of its turn.
    assert all(w["flows_created"] > 0 for w in per.values())
    assert [(w["dns_pool_answers"], w["kernel_dns_drops"], w["dns_side_truncated"],
             w["dns_side_forced"]) for w in per.values()] == [(FLOWS, 0, 0, 0)] * 2
