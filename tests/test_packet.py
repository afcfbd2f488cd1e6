"""The core's frame decoder (through netdetect._core): every link type, tag, tunnel and edge
case, checked against scapy's own view of the packets it built, and against dpkt on the real
corpus."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dpkt
import pytest
from coreparse import COUNTERS, LINKTYPES, MAX_DEPTH, Packet, PacketDecoder, read_frames
from scapy.contrib.erspan import ERSPAN_I, ERSPAN_II, ERSPAN_III, ERSPAN_PlatformSpecific
from scapy.contrib.geneve import GENEVE
from scapy.contrib.mpls import MPLS
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_RR, fragment
from scapy.layers.inet6 import (
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.layers.ipsec import AH, ESP
from scapy.layers.l2 import (
    ARP,
    GRE,
    LLC,
    SNAP,
    CookedLinux,
    CookedLinuxV2,
    Dot1AD,
    Dot1Q,
    Dot3,
    Ether,
    Loopback,
)
from scapy.layers.ppp import PPP, PPPoE
from scapy.layers.vxlan import VXLAN
from scapy.packet import Raw

from netdetect.model import TCP as TCP_PROTO
from netdetect.model import UDP as UDP_PROTO
from netdetect.model import ip_raw

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"

A4, B4 = "10.1.2.3", "198.51.100.20"
A6, B6 = "2001:db8::1", "2001:db8:ffff::2"
MAC = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
TS = 1_700_000_000.25


def eth(**kw: Any) -> Any:
    """Ethernet with fixed addresses (scapy would otherwise resolve a destination MAC)."""
    return Ether(src=MAC["src"], dst=MAC["dst"], **kw)


def frag4(pkt: Any, size: int) -> list[Any]:
    frags: list[Any] = fragment(pkt, fragsize=size)  # type: ignore[no-untyped-call]
    return frags


def tcp(payload: bytes = b'{"id":1,"method":"login"}\n', **kw: Any) -> Any:
    fields: dict[str, Any] = {"sport": 40000, "dport": 3333, "flags": "PA", "seq": 123456789}
    fields.update(kw)
    return TCP(**fields) / payload


def udp(payload: bytes = b"\x12\x34dns?", **kw: Any) -> Any:
    fields: dict[str, Any] = {"sport": 5353, "dport": 53}
    fields.update(kw)
    return UDP(**fields) / payload


def ip4(l4: Any, src: str = A4, dst: str = B4, **kw: Any) -> Any:
    return IP(src=src, dst=dst, **kw) / l4


def ip6(l4: Any, src: str = A6, dst: str = B6) -> Any:
    return IPv6(src=src, dst=dst) / l4


SKIPPED_HEADERS = (IPv6ExtHdrHopByHop, IPv6ExtHdrRouting, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, AH)


@dataclass
class Case:
    linktype: int
    frame: bytes
    inner: Any  # the scapy IP/IPv6 layer the decoder must return
    vlan: int = 0
    tunnels: int = 0


def view(inner: Any) -> tuple[bytes, bytes, int, int, int, int, int, bytes]:
    """scapy's view of an IP/IPv6 layer as the fields of a Packet (minus ts and vlan)."""
    src, dst = ip_raw(inner.src), ip_raw(inner.dst)
    l4 = inner.payload
    while isinstance(l4, SKIPPED_HEADERS):
        l4 = l4.payload
    if isinstance(l4, TCP):
        return (src, dst, TCP_PROTO, l4.sport, l4.dport, int(l4.flags), l4.seq, bytes(l4.payload))
    if isinstance(l4, UDP):
        return (src, dst, UDP_PROTO, l4.sport, l4.dport, 0, 0, bytes(l4.payload))
    proto = inner.proto if isinstance(inner, IP) else l4.underlayer.nh
    return (src, dst, proto, 0, 0, 0, 0, bytes(l4))


def fields(p: Packet) -> tuple[bytes, bytes, int, int, int, int, int, bytes]:
    return (p.src, p.dst, p.proto, p.sport, p.dport, p.flags, p.seq, bytes(p.payload))


def loopback(af: int, order: str) -> bytes:
    return struct.pack(order + "I", af)


def cases() -> dict[str, Case]:
    c: dict[str, Case] = {}
    t4 = ip4(tcp())
    c["ether-ipv4-tcp"] = Case(1, bytes(eth() / t4), t4)
    small = ip4(udp(b"hi"))
    raw_small = bytes(eth() / small)
    c["ether-padding-stripped"] = Case(
        1, raw_small + b"\0" * (60 - len(raw_small)) + b"FCS!", small
    )
    opt = ip4(
        tcp(options=[("MSS", 1460), ("SAckOK", b""), ("WScale", 7)], flags="S"),
        options=[IPOption_RR(routers=["1.2.3.4"])],
    )
    c["ipv4-options-tcp-options"] = Case(1, bytes(eth() / opt), opt)
    t6 = ip6(tcp(b"GET / HTTP/1.1\r\n\r\n", dport=80))
    c["ether-ipv6-tcp"] = Case(1, bytes(eth() / t6), t6)
    u6 = ip6(udp())
    c["ether-ipv6-udp"] = Case(1, bytes(eth() / u6), u6)
    icmp = ip4(ICMP() / b"ping")
    c["ipv4-icmp-other-l4"] = Case(1, bytes(eth() / icmp), icmp)
    # VLAN tags: the outermost id is reported.
    c["dot1q"] = Case(1, bytes(eth() / Dot1Q(vlan=100) / t4), t4, vlan=100)
    c["qinq-8100"] = Case(1, bytes(eth() / Dot1Q(vlan=100) / Dot1Q(vlan=200) / t4), t4, vlan=100)
    c["qinq-88a8"] = Case(1, bytes(eth() / Dot1AD(vlan=10) / Dot1Q(vlan=20) / t6), t6, vlan=10)
    c["qinq-9100"] = Case(
        1, bytes(eth(type=0x9100) / Dot1Q(vlan=4094) / Dot1Q(vlan=3) / t4), t4, vlan=4094
    )
    c["mpls-ipv4"] = Case(1, bytes(eth() / MPLS(label=16, s=0) / MPLS(label=17, s=1) / t4), t4)
    c["mpls-ipv6"] = Case(1, bytes(eth() / MPLS(label=16, s=1) / t6), t6)
    c["mpls-pseudowire-ether"] = Case(
        1,
        bytes(eth() / MPLS(label=99, s=1)) + b"\0\0\0\x01" + bytes(eth() / Dot1Q(vlan=5) / t4),
        t4,
        vlan=5,
    )
    c["pppoe"] = Case(1, bytes(eth() / PPPoE(sessionid=7) / PPP(proto=0x21) / t4), t4)
    c["pppoe-ipv6"] = Case(1, bytes(eth() / PPPoE(sessionid=7) / PPP(proto=0x57) / t6), t6)
    c["llc-snap"] = Case(
        1,
        bytes(
            Dot3(dst=MAC["dst"]) / LLC(dsap=0xAA, ssap=0xAA, ctrl=3) / SNAP(OUI=0, code=0x0800) / t4
        ),
        t4,
    )
    # Link types other than Ethernet.
    c["sll"] = Case(113, bytes(CookedLinux(pkttype=4, lladdrlen=6, src=b"\x02" * 6) / t4), t4)
    c["sll-vlan"] = Case(113, bytes(CookedLinux(proto=0x8100) / Dot1Q(vlan=42) / t4), t4, vlan=42)
    c["sll2"] = Case(276, bytes(CookedLinuxV2(proto=0x86DD, ifindex=3) / t6), t6)
    c["raw-101-v4"] = Case(101, bytes(t4), t4)
    c["raw-101-v6"] = Case(101, bytes(t6), t6)
    c["raw-12"] = Case(12, bytes(t4), t4)
    c["raw-14"] = Case(14, bytes(t6), t6)
    c["ipv4-228"] = Case(228, bytes(t4), t4)
    c["ipv6-229"] = Case(229, bytes(t6), t6)
    c["null-scapy"] = Case(0, bytes(Loopback(type=2) / t4), t4)
    c["null-le-inet"] = Case(0, loopback(2, "<") + bytes(t4), t4)
    c["null-be-inet"] = Case(0, loopback(2, ">") + bytes(t4), t4)
    for af in (24, 28, 30):
        c[f"null-le-inet6-{af}"] = Case(0, loopback(af, "<") + bytes(t6), t6)
        c[f"null-be-inet6-{af}"] = Case(0, loopback(af, ">") + bytes(t6), t6)
    c["loop-108"] = Case(108, loopback(2, ">") + bytes(t4), t4)
    c["ppp-9"] = Case(9, b"\xff\x03\x00\x21" + bytes(t4), t4)
    c["ppp-50-compressed-proto"] = Case(50, b"\xff\x03\x57" + bytes(t6), t6)
    # IPv6 extension headers.
    ext = ip6(IPv6ExtHdrHopByHop() / IPv6ExtHdrRouting(addresses=[]) / IPv6ExtHdrDestOpt() / tcp())
    c["ipv6-hbh-routing-dstopt"] = Case(1, bytes(eth() / ext), ext)
    ah = ip6(AH(nh=17, payloadlen=4, spi=1, icv=b"\0" * 12) / udp())
    c["ipv6-ah"] = Case(1, bytes(eth() / ah), ah)
    esp = ip6(ESP(spi=5, seq=1, data=b"\xaa" * 24))
    c["ipv6-esp-other-l4"] = Case(1, bytes(eth() / esp), esp)
    frag0 = ip6(IPv6ExtHdrFragment(offset=0, m=1, id=9) / tcp())
    c["ipv6-first-fragment"] = Case(1, bytes(eth() / frag0), frag0)
    ah4 = ip4(AH(nh=6, payloadlen=4, spi=1, icv=b"\0" * 12) / tcp())
    c["ipv4-ah"] = Case(1, bytes(eth() / ah4), ah4)
    # Tunnels: the inner packet comes out.
    c["gre-ipv4"] = Case(1, bytes(eth() / ip4(GRE() / t4, "192.0.2.1", "192.0.2.2")), t4, tunnels=1)
    c["gre-ckey-seq-ipv6"] = Case(
        1,
        bytes(eth() / ip4(GRE(chksum_present=1, key_present=1, key=7, seqnum_present=1) / u6)),
        u6,
        tunnels=1,
    )
    c["gre-teb-inner-vlan"] = Case(
        1,
        bytes(eth() / Dot1Q(vlan=99) / ip4(GRE(proto=0x6558) / eth() / Dot1Q(vlan=7) / t4)),
        t4,
        vlan=7,
        tunnels=1,
    )
    c["gre-teb-untagged-inner-keeps-outer-vlan"] = Case(
        1,
        bytes(eth() / Dot1Q(vlan=99) / ip4(GRE(proto=0x6558) / eth() / t4)),
        t4,
        vlan=99,
        tunnels=1,
    )
    c["gre-over-ipv6"] = Case(1, bytes(eth() / ip6(GRE() / t4)), t4, tunnels=1)
    c["erspan-1"] = Case(
        1, bytes(eth() / ip4(GRE(proto=0x88BE) / ERSPAN_I() / eth() / t4)), t4, tunnels=1
    )
    c["erspan-2"] = Case(
        1,
        bytes(
            eth()
            / ip4(
                GRE(proto=0x88BE, seqnum_present=1, sequence_number=5)
                / ERSPAN_II(vlan=55, session_id=3)
                / eth()
                / t4
            )
        ),
        t4,
        vlan=55,
        tunnels=1,
    )
    c["erspan-2-inner-tag-wins"] = Case(
        1,
        bytes(
            eth()
            / ip4(
                GRE(proto=0x88BE, seqnum_present=1)
                / ERSPAN_II(vlan=55)
                / eth()
                / Dot1Q(vlan=8)
                / t6
            )
        ),
        t6,
        vlan=8,
        tunnels=1,
    )
    c["erspan-3"] = Case(
        1,
        bytes(eth() / ip4(GRE(proto=0x22EB) / ERSPAN_III(vlan=12, o=0) / eth() / t4)),
        t4,
        vlan=12,
        tunnels=1,
    )
    c["erspan-3-platform-subheader"] = Case(
        1,
        bytes(
            eth()
            / ip4(
                GRE(proto=0x22EB)
                / ERSPAN_III(o=1)
                / ERSPAN_PlatformSpecific(platf_id=3)
                / eth()
                / t6
            )
        ),
        t6,
        tunnels=1,
    )
    c["erspan-3-frame-type-ip"] = Case(
        1,
        bytes(eth() / ip4(GRE(proto=0x22EB) / Raw(bytes(ERSPAN_III(ft=2)) + bytes(t4)))),
        t4,
        tunnels=1,
    )
    vx = eth() / ip4(
        UDP(sport=54321, dport=4789) / VXLAN(vni=42) / eth() / Dot1Q(vlan=300) / t4,
        "172.16.0.1",
        "172.16.0.2",
    )
    c["vxlan"] = Case(1, bytes(vx), t4, vlan=300, tunnels=1)
    c["vxlan-over-ipv6-inner-ipv6"] = Case(
        1, bytes(eth() / ip6(UDP(sport=1, dport=4789) / VXLAN(vni=1) / eth() / u6)), u6, tunnels=1
    )
    c["geneve-ether"] = Case(
        1,
        bytes(eth() / ip4(UDP(sport=2, dport=6081) / GENEVE(proto=0x6558, vni=5) / eth() / t4)),
        t4,
        tunnels=1,
    )
    gopts = bytes(GENEVE(proto=0x0800, vni=5, optionlen=2)) + b"\x01\x02\x03\x01" + b"abcd"
    c["geneve-options-ipv4"] = Case(
        1, bytes(eth() / ip4(UDP(sport=2, dport=6081) / Raw(gopts + bytes(t4)))), t4, tunnels=1
    )
    c["geneve-ipv6"] = Case(
        1, bytes(eth() / ip4(UDP(sport=2, dport=6081) / GENEVE(proto=0x86DD) / t6)), t6, tunnels=1
    )
    c["ipip"] = Case(1, bytes(eth() / IP(src="192.0.2.1", dst="192.0.2.2") / t4), t4, tunnels=1)
    c["6in4"] = Case(1, bytes(eth() / IP(src="192.0.2.1", dst="192.0.2.2") / t6), t6, tunnels=1)
    c["sll2-gre-erspan"] = Case(
        276,
        bytes(
            CookedLinuxV2(proto=0x0800)
            / ip4(GRE(proto=0x88BE, seqnum_present=1) / ERSPAN_II(vlan=9) / eth() / u6)
        ),
        u6,
        vlan=9,
        tunnels=1,
    )
    return c


CASES = cases()


@pytest.mark.parametrize("name", sorted(CASES))
def test_decodes_like_scapy(name: str) -> None:
    case = CASES[name]
    dec = PacketDecoder()
    p = dec.decode(TS, case.linktype, case.frame)
    if name.endswith("other-l4"):
        # Neither TCP nor UDP: decoded and counted, but nothing the core inspects further.
        assert p is None
        assert dec.decoded == dec.packets == dec.other_l4 == 1
        assert dec.tunnels == case.tunnels
        return
    assert p is not None, dec.counters()
    assert fields(p) == view(case.inner)
    assert p.ts == TS
    assert p.vlan == case.vlan
    assert dec.tunnels == case.tunnels
    assert len(p.src) == len(p.dst) == (4 if isinstance(case.inner, IP) else 16)
    assert case.frame.endswith(p.payload) or p.payload in case.frame  # cut from the frame
    assert dec.decoded == dec.packets == 1
    assert dec.other_l4 == (0 if p.proto in (6, 17) else 1)


def test_every_link_type_is_covered() -> None:
    assert {c.linktype for c in CASES.values()} == LINKTYPES


def test_tcp_flags_and_sequence() -> None:
    frame = bytes(eth() / ip4(TCP(sport=1, dport=2, flags="SEC", seq=0xFFFFFFFF)))
    p = PacketDecoder().decode(0.0, 1, frame)
    assert p is not None
    assert (p.flags, p.seq, bytes(p.payload)) == (0x02 | 0x40 | 0x80, 0xFFFFFFFF, b"")


def test_ipv4_fragments() -> None:
    whole = ip4(udp(b"A" * 3000))
    frags = frag4(whole, 1000)
    assert len(frags) == 4
    dec = PacketDecoder()
    first = dec.decode(0.0, 1, bytes(eth() / frags[0]))
    assert first is not None
    assert (first.sport, first.dport) == (5353, 53)
    assert bytes(first.payload) == bytes(frags[0])[28:]
    for frag in frags[1:]:
        assert dec.decode(0.0, 1, bytes(eth() / frag)) is None
    assert (dec.first_fragments, dec.fragments, dec.decoded) == (1, 3, 1)


def test_ipv6_non_first_fragment() -> None:
    dec = PacketDecoder()
    frame = bytes(eth() / ip6(IPv6ExtHdrFragment(offset=100, m=0, nh=6) / (b"x" * 40)))
    assert dec.decode(0.0, 1, frame) is None
    assert dec.fragments == 1


def test_snapped_frame_clips_payload() -> None:
    full = bytes(eth() / ip4(tcp(b"P" * 500)))
    dec = PacketDecoder()
    p = dec.decode(0.0, 1, full[:100])
    assert p is not None
    assert bytes(p.payload) == b"P" * (100 - 14 - 20 - 20)
    assert dec.snapped == 1


def test_snap_inside_tcp_options_keeps_header() -> None:
    full = bytes(
        eth()
        / ip4(
            tcp(
                b"",
                flags="S",
                options=[("MSS", 1460), ("NOP", None), ("WScale", 7), ("SAckOK", b"")],
            )
        )
    )
    dec = PacketDecoder()
    p = dec.decode(0.0, 1, full[: 14 + 20 + 22])
    assert p is not None
    assert (p.flags, p.dport, bytes(p.payload)) == (0x02, 3333, b"")


def test_segmentation_offload_zero_lengths() -> None:
    frame = bytearray(bytes(eth() / ip4(tcp(b"Z" * 3000))))
    frame[16:18] = b"\0\0"  # IPv4 total length unset by the stack
    p = PacketDecoder().decode(0.0, 1, bytes(frame))
    assert p is not None
    assert bytes(p.payload) == b"Z" * 3000
    frame6 = bytearray(bytes(eth() / ip6(udp(b"J" * 100))))
    frame6[18:20] = b"\0\0"  # IPv6 payload length 0 (jumbogram / offload)
    p6 = PacketDecoder().decode(0.0, 1, bytes(frame6))
    assert p6 is not None
    assert bytes(p6.payload) == b"J" * 100


def test_udp_length_bounds_payload() -> None:
    frame = bytes(eth() / ip4(UDP(sport=1, dport=2, len=8 + 3) / b"abcdef"))
    p = PacketDecoder().decode(0.0, 1, frame)
    assert p is not None
    assert bytes(p.payload) == b"abc"


def test_vxlan_without_i_flag_is_plain_udp() -> None:
    body = bytes(VXLAN(flags=0, vni=42) / eth() / ip4(tcp()))
    frame = bytes(eth() / ip4(UDP(sport=9, dport=4789) / body))
    dec = PacketDecoder()
    p = dec.decode(0.0, 1, frame)
    assert p is not None
    assert (p.proto, p.sport, p.dport, bytes(p.payload)) == (17, 9, 4789, body)
    assert dec.tunnels == 0


def test_vxlan_too_short_for_inner_frame_is_plain_udp() -> None:
    frame = bytes(eth() / ip4(UDP(sport=9, dport=4789) / VXLAN(vni=1) / b"short"))
    p = PacketDecoder().decode(0.0, 1, frame)
    assert p is not None
    assert p.dport == 4789


def test_geneve_unknown_protocol_is_plain_udp() -> None:
    frame = bytes(eth() / ip4(UDP(sport=9, dport=6081) / GENEVE(proto=0x1234) / b"data"))
    p = PacketDecoder().decode(0.0, 1, frame)
    assert p is not None
    assert (p.proto, p.dport) == (17, 6081)


def test_gre_with_unknown_protocol_is_counted_as_other_l4() -> None:
    frame = bytes(eth() / ip4(GRE(proto=0x880B) / b"ppp"))
    dec = PacketDecoder()
    p = dec.decode(0.0, 1, frame)
    assert p is None  # GRE carrying something else is the outer packet: not TCP/UDP
    assert dec.decoded == dec.other_l4 == 1
    assert dec.tunnels == 0


def test_nesting_is_capped() -> None:
    inner: Any = ip4(tcp())
    for i in range(MAX_DEPTH + 2):
        inner = ip4(UDP(sport=100 + i, dport=4789) / VXLAN(vni=i) / eth() / inner)
    dec = PacketDecoder()
    p = dec.decode(0.0, 1, bytes(eth() / inner))
    assert p is not None
    assert (p.proto, p.dport) == (17, 4789)
    assert p.sport == 100 + 1  # MAX_DEPTH layers removed from MAX_DEPTH + 2
    assert dec.tunnels == MAX_DEPTH


@pytest.mark.parametrize(
    ("linktype", "frame", "counter"),
    [
        (1, bytes(eth() / ARP()), "non_ip"),
        (1, bytes(eth(type=0x88CC) / (b"\0" * 40)), "non_ip"),
        (1, bytes(Dot3(dst=MAC["dst"]) / LLC() / b"stp-bpdu-here"), "non_ip"),
        (1, b"\0" * 13, "truncated"),
        (1, bytes(eth(type=0x0800)) + b"\x45\0", "truncated"),
        (1, bytes(eth(type=0x0800)) + bytes(ip4(tcp()))[:30], "truncated"),
        (1, bytes(eth(type=0x0800)) + b"\x65" + bytes(ip4(tcp()))[1:], "malformed"),
        (1, bytes(eth(type=0x0800)) + b"\x44" + bytes(ip4(tcp()))[1:], "malformed"),
        (1, bytes(eth(type=0x86DD)) + bytes(ip4(tcp())) + b"\0" * 20, "malformed"),
        (1, bytes(eth() / Dot1Q(vlan=1) / Dot1Q(vlan=2))[:16], "truncated"),
        (113, b"\0" * 15, "truncated"),
        (276, b"\0" * 19, "truncated"),
        (101, b"", "truncated"),
        (101, b"\x50" + b"\0" * 30, "non_ip"),
        (0, b"\x02\0", "truncated"),
        (0, loopback(7, "<") + b"osi", "non_ip"),
        (0, b"\x02\x00\x00\x02" + bytes(ip4(tcp())), "non_ip"),
        (9, b"\xff\x03\xc0\x21" + b"lcp", "non_ip"),
        (127, b"\0" * 64, "unsupported_linktype"),
        (147, bytes(ip4(tcp())), "unsupported_linktype"),
    ],
)
def test_frames_without_usable_ip(linktype: int, frame: bytes, counter: str) -> None:
    dec = PacketDecoder()
    assert dec.decode(0.0, linktype, frame) is None
    assert getattr(dec, counter) == 1
    assert dec.decoded == 0


def test_ipv4_total_length_shorter_than_header_is_malformed() -> None:
    frame = bytearray(bytes(eth() / ip4(tcp())))
    frame[16:18] = struct.pack("!H", 12)
    dec = PacketDecoder()
    assert dec.decode(0.0, 1, bytes(frame)) is None
    assert dec.malformed == 1


def test_tcp_data_offset_below_five_is_malformed() -> None:
    frame = bytearray(bytes(eth() / ip4(tcp())))
    frame[14 + 20 + 12] = 0x40
    dec = PacketDecoder()
    assert dec.decode(0.0, 1, bytes(frame)) is None
    assert dec.malformed == 1


def test_endless_ipv6_extension_chain_is_refused() -> None:
    chain: Any = tcp()
    for _ in range(12):
        chain = IPv6ExtHdrDestOpt() / chain
    dec = PacketDecoder()
    assert dec.decode(0.0, 1, bytes(eth() / ip6(chain))) is None
    assert dec.malformed == 1


def test_counters_add_up() -> None:
    dec = PacketDecoder()
    frames = [(c.linktype, c.frame) for c in CASES.values()]
    frames += [
        (1, b"\0" * 5),
        (1, bytes(eth() / ARP())),
        (300, b"x"),
        (1, bytes(eth() / frag4(ip4(udp(b"A" * 3000)), 1000)[1])),
    ]
    for lt, frame in frames:
        dec.decode(0.0, lt, frame)
    c = dec.counters()
    assert set(c) == set(COUNTERS)
    assert c["packets"] == len(frames)
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
    assert c["decoded"] == len(CASES)
    assert c["tunnels"] == sum(case.tunnels for case in CASES.values())


@pytest.mark.corpus
def test_corpus_matches_dpkt() -> None:
    """Every frame of the real corpus decodes to what dpkt sees (addresses, ports, payload)."""
    labels = CORPUS / "labels.json"
    assert labels.is_file(), f"corpus missing at {CORPUS}"
    names = json.loads(labels.read_text())["files"]
    total = 0
    for name in names:
        dec = PacketDecoder()
        for ts, lt, frame in read_frames(str(CORPUS / name)):
            p = dec.decode(ts, lt, frame)
            try:
                l2 = dpkt.ethernet.Ethernet(frame) if lt == 1 else dpkt.loopback.Loopback(frame)
            except dpkt.NeedData:
                assert p is None, name
                continue
            ip = l2.data
            if not isinstance(ip, dpkt.ip.IP | dpkt.ip6.IP6):
                assert p is None, name
                continue
            l4 = ip.data
            if not isinstance(l4, dpkt.tcp.TCP | dpkt.udp.UDP):
                assert p is None, name  # counted in other_l4, not inspected
                continue
            assert p is not None, (name, dec.counters())
            assert p.ts == ts
            assert (p.src, p.dst) == (bytes(ip.src), bytes(ip.dst)), name
            assert (p.sport, p.dport, bytes(p.payload)) == (
                l4.sport,
                l4.dport,
                bytes(l4.data),
            ), name
            if isinstance(l4, dpkt.tcp.TCP):
                assert (p.flags, p.seq) == (l4.flags & 0xFF, l4.seq), name
            total += 1
    assert total > 30_000
