"""Hostile traffic through the whole core: nothing but alerts (or nothing) comes out."""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netdetect.core_engine import CoreEngine as Engine
from netdetect.intel import Intel

SEEDS = [
    b'{"id":1,"method":"login","params":{"login":"4A","pass":"x","agent":"XMRig/6.16.0"}}\n',
    b'{"id": 1, "method": "mining.subscribe", "params": ["cgminer/4.10.0"]}\n',
    (
        b"POST / HTTP/1.1\r\nHost: pool.example\r\nContent-Length: 44\r\n\r\n"
        b'{"method":"getwork","params":[],"id":1}\r\n\r\n'
    ),
    b"\x16\x03\x01\x00\x2f\x01\x00\x00\x2b\x03\x03" + bytes(32) + b"\x00\x00\x02\x13\x01\x01\x00",
    b"\x17\x03\x03\x00\x10" + b"A" * 16,
    bytes(64),
]


def _frame(src: int, sport: int, dport: int, flags: int, seq: int, payload: bytes) -> bytes:
    tcp = struct.pack(">HHIIBBHHH", sport, dport, seq, 0, 0x50, flags, 65535, 0, 0)
    total = 20 + len(tcp) + len(payload)
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, total, 0, 0x4000, 64, 6, 0,
                     bytes([10, 0, 0, src]), bytes([198, 51, 100, 7]))
    eth = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00"
    return eth + ip + tcp + payload


segment = st.tuples(
    st.integers(1, 3),  # which client
    st.sampled_from([3333, 443, 80, 53]),
    st.sampled_from([0x18, 0x10, 0x02, 0x12, 0x11, 0x04]),  # PSH/ACK, ACK, SYN, SYN/ACK, FIN, RST
    st.integers(0, 2**32 - 1),
    st.one_of(
        st.binary(max_size=300),
        st.sampled_from(SEEDS),
        st.tuples(st.sampled_from(SEEDS), st.integers(0, 80)).map(lambda t: t[0][: t[1]]),
        st.tuples(st.sampled_from(SEEDS), st.binary(min_size=1, max_size=4), st.integers(0, 60))
        .map(lambda t: t[0][: t[2]] + t[1] + t[0][t[2] + 1 :]),
    ),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(segment, max_size=40))
def test_random_sessions_never_raise(
    intel: Intel, segs: list[tuple[int, int, int, int, bytes]]
) -> None:
    eng = Engine(intel, max_flows=8)
    ts = 1.0
    for src, port, flags, seq, payload in segs:
        ts += 0.5
        eng.feed(ts, 1, _frame(src, 40000 + src, port, flags, seq, payload))
    eng.finish()
    for s in eng.take_suspects():
        assert 0 < s.score <= 100
        assert s.evidence
    counters = eng.counters()
    assert counters["packets"] == len(segs)
