"""Property tests: no frame, however broken, makes the core's packet decoder raise or
overreach."""

from __future__ import annotations

import struct
from typing import Any

from coreparse import LINKTYPES, Packet, PacketDecoder
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.contrib.erspan import ERSPAN_II, ERSPAN_III
from scapy.contrib.geneve import GENEVE
from scapy.contrib.mpls import MPLS
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop
from scapy.layers.l2 import GRE, CookedLinux, CookedLinuxV2, Dot1AD, Dot1Q, Ether
from scapy.layers.ppp import PPP, PPPoE
from scapy.layers.vxlan import VXLAN

_T4: Any = (
    IP(src="10.0.0.1", dst="10.0.0.2")
    / TCP(sport=1234, dport=3333, flags="PA")
    / (b'{"method":"mining.subscribe"}')
)
_U6: Any = IPv6(src="fe80::1", dst="fe80::2") / UDP(sport=53, dport=5353) / b"answer"


def _eth(inner: Any) -> bytes:
    return bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / inner)


def _seeds() -> list[tuple[int, bytes]]:
    """Valid frames covering every link type and encapsulation the decoder follows."""
    ether: Any = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    outer: Any = IP(src="192.0.2.1", dst="192.0.2.2")
    return [
        (1, _eth(_T4)),
        (1, _eth(Dot1AD(vlan=10) / Dot1Q(vlan=20) / _U6)),
        (1, _eth(MPLS(s=0) / MPLS(s=1) / _T4)),
        (1, _eth(PPPoE() / PPP(proto=0x21) / _T4)),
        (1, _eth(IPv6() / IPv6ExtHdrHopByHop() / IPv6ExtHdrFragment(m=1) / TCP() / b"x")),
        (1, _eth(outer / GRE(seqnum_present=1, proto=0x88BE) / ERSPAN_II(vlan=3) / ether / _T4)),
        (1, _eth(outer / GRE(proto=0x22EB) / ERSPAN_III(o=0) / ether / _U6)),
        (1, _eth(outer / GRE(key_present=1) / _T4)),
        (1, _eth(outer / UDP(dport=4789) / VXLAN(vni=9) / ether / Dot1Q(vlan=5) / _T4)),
        (1, _eth(outer / UDP(dport=6081) / GENEVE(proto=0x6558) / ether / _U6)),
        (1, _eth(outer / _U6)),
        (113, bytes(CookedLinux() / _T4)),
        (276, bytes(CookedLinuxV2(proto=0x86DD) / _U6)),
        (101, bytes(_T4)),
        (12, bytes(_U6)),
        (14, bytes(_T4)),
        (228, bytes(_T4)),
        (229, bytes(_U6)),
        (0, struct.pack("<I", 2) + bytes(_T4)),
        (0, struct.pack(">I", 30) + bytes(_U6)),
        (108, struct.pack(">I", 24) + bytes(_U6)),
        (9, b"\xff\x03\x00\x21" + bytes(_T4)),
        (50, b"\x57" + bytes(_U6)),
    ]


SEEDS = _seeds()
LINKTYPE_CHOICES = sorted(LINKTYPES | {2, 127, 65535})


def check(dec: PacketDecoder, ts: float, linktype: int, frame: bytes) -> Packet | None:
    """Decode and assert every invariant a caller relies on."""
    before = dec.packets
    p = dec.decode(ts, linktype, frame)
    assert dec.packets == before + 1
    c = dec.counters()
    assert c["packets"] == sum(
        c[k]
        for k in (
            "decoded",
            "non_ip",
            "truncated",
            "malformed",
            "fragments",
            "unsupported_linktype",
        )
    )
    if p is None:
        return None
    assert isinstance(p, Packet)
    assert p.ts == ts
    assert len(p.src) == len(p.dst)
    assert len(p.src) in (4, 16)
    assert 0 <= p.proto <= 255
    assert 0 <= p.sport <= 0xFFFF
    assert 0 <= p.dport <= 0xFFFF
    assert 0 <= p.flags <= 0xFF
    assert 0 <= p.seq <= 0xFFFFFFFF
    assert 0 <= p.vlan <= 0xFFF
    assert p.proto in (6, 17)  # other protocols are counted (other_l4), not returned
    if p.proto == 17:
        assert (p.flags, p.seq) == (0, 0)
    # The payload is cut from this frame: nothing was read past its end.
    payload = bytes(p.payload)
    assert len(payload) <= len(frame)
    assert frame.find(payload) >= 0
    assert frame.find(p.src) >= 0
    assert frame.find(p.dst) >= 0
    return p


def test_seeds_decode() -> None:
    dec = PacketDecoder()
    for linktype, frame in SEEDS:
        p = check(dec, 1.0, linktype, frame)
        assert p is not None, (linktype, frame.hex(), dec.counters())
        assert p.proto in (6, 17)
    assert {lt for lt, _ in SEEDS} == LINKTYPES


def test_every_truncation_of_every_seed() -> None:
    dec = PacketDecoder()
    for linktype, frame in SEEDS:
        for cut in range(len(frame) + 1):
            check(dec, 2.0, linktype, frame[:cut])
    assert dec.decoded > 0
    assert dec.truncated > 0


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(linktype=st.sampled_from(LINKTYPE_CHOICES), frame=st.binary(max_size=200))
def test_random_bytes_never_raise(linktype: int, frame: bytes) -> None:
    check(PacketDecoder(), 3.0, linktype, frame)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[int, bytes]:
    linktype, frame = draw(st.sampled_from(SEEDS))
    data = bytearray(frame)
    for _ in range(draw(st.integers(1, 8))):
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["set", "xor", "insert", "delete", "len"]))
        if op == "set":
            data[i] = draw(st.integers(0, 255))
        elif op == "xor":
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[i : i + draw(st.integers(1, 8))]
        elif i + 2 <= len(data):
            # Length fields are where decoders go wrong: aim 16-bit extremes anywhere.
            data[i : i + 2] = struct.pack("!H", draw(st.sampled_from([0, 1, 7, 8, 0xFFFF])))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return linktype, bytes(data)


@settings(max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=mutated())
def test_mutated_valid_frames_never_raise(case: tuple[int, bytes]) -> None:
    linktype, frame = case
    check(PacketDecoder(), 4.0, linktype, frame)


@settings(max_examples=500, deadline=None)
@given(case=mutated(), other=st.sampled_from(LINKTYPE_CHOICES))
def test_frames_under_the_wrong_link_type_never_raise(case: tuple[int, bytes], other: int) -> None:
    check(PacketDecoder(), 5.0, other, case[1])


@settings(max_examples=300, deadline=None)
@given(depth=st.integers(0, 12), payload=st.binary(max_size=64))
def test_deep_tunnel_nesting_is_bounded(depth: int, payload: bytes) -> None:
    inner: Any = IP(src="10.9.9.9", dst="10.8.8.8") / UDP(sport=7, dport=8) / payload
    for i in range(depth):
        wrap: Any = IP(src="192.0.2.1", dst="192.0.2.2")
        inner = (
            wrap
            / (
                GRE()
                if i % 2
                else UDP(sport=9, dport=4789) / VXLAN() / Ether(dst="02:00:00:00:00:02")
            )
            / inner
        )
    dec = PacketDecoder()
    p = check(dec, 6.0, 101, bytes(inner))
    if depth > 4 and (depth - 5) % 2:
        # The layer left at the cap is IP/GRE: neither TCP nor UDP, counted, not returned.
        assert p is None
        assert dec.other_l4 == 1
    else:
        assert p is not None
    assert dec.tunnels == min(depth, 4)
