"""Decode one captured frame into a Packet: link layer, VLAN/MPLS, IP, TCP/UDP, mirror tunnels.

This is the per-packet hot path. It reads the frame in place with precompiled struct
unpackers, allocates only the Packet, its two address slices and the payload memoryview, and
never looks past the captured bytes: every read is preceded by a length check, so a short or
hostile frame is counted and dropped instead of raising.

Decisions the rest of the pipeline relies on:

- The result is None for every frame without a usable IPv4/IPv6 header (counted by reason).
- IP packets that are neither TCP nor UDP (ICMP, ESP, SCTP, an unparsed GRE ...) are returned
  with `proto` set, ports, flags and seq 0, and the L4 bytes as payload; the flow table keeps
  only TCP and UDP, but ICMP errors and ESP are still visible to whoever wants them.
- Mirror encapsulations (GRE incl. ERSPAN II/III, VXLAN, GENEVE, IP-in-IP) are removed and the
  inner packet is returned; the outer one is not. Nesting is capped at MAX_DEPTH; deeper
  tunnels come back as the plain outer packet.
- `vlan` is the outermost 802.1Q/802.1ad tag of the innermost Ethernet header that has one
  (for mirrored traffic that is the monitored segment's VLAN); an ERSPAN header's VLAN or the
  transport frame's tag is used when the mirrored frame itself is untagged.
- Payload is clipped to the IP/UDP length (Ethernet padding and trailers are not payload) and
  to what was captured (a snap length shorter than the packet is counted in `snapped`).
"""

from __future__ import annotations

import struct
from enum import Enum
from typing import Final, Literal

from netdetect.model import Packet

__all__ = ["COUNTERS", "LINKTYPES", "MAX_DEPTH", "PacketDecoder"]

MAX_DEPTH: Final = 4
# IPv6 extension headers followed before giving up on the chain (RFC 8200 has no limit; real
# traffic carries at most a few, and a long chain is a known evasion trick).
_MAX_EXT: Final = 8
_MAX_TAGS: Final = 8

LINKTYPES: Final = frozenset({0, 1, 9, 12, 14, 50, 101, 108, 113, 228, 229, 276})

COUNTERS: Final = (
    "packets",  # frames given to decode()
    "decoded",  # Packets returned
    "non_ip",  # no IPv4/IPv6 inside (ARP, LLDP, STP, IPX, unknown EtherType or AF ...)
    "truncated",  # captured too short to hold a header we need
    "malformed",  # a header contradicts itself (bad version, IHL < 5, length < header)
    "fragments",  # non-first IP fragments: no L4 header, not decoded
    "first_fragments",  # first fragments, decoded (payload is partial)
    "tunnels",  # encapsulation layers removed
    "unsupported_linktype",  # frames of a link type this decoder does not know
    "other_l4",  # decoded packets that are neither TCP nor UDP
    "snapped",  # IP packets captured shorter than their length on the wire
)

_U16: Final = struct.Struct("!H").unpack_from
_U32: Final = struct.Struct("!I").unpack_from
_HH: Final = struct.Struct("!HH").unpack_from
_TCP: Final = struct.Struct("!HHI").unpack_from
_UDP: Final = struct.Struct("!HHH").unpack_from
# Ethernet type, IPv4 version/IHL, total length, flags/fragment offset, protocol.
_ETH_IP4: Final = struct.Struct("!12xHBxHxxHxB").unpack_from
# TCP ports, sequence number, data offset byte, flags byte.
_TCP_FAST: Final = struct.Struct("!HHIxxxxBB").unpack_from
# tuple.__new__ builds the NamedTuple in C, skipping the generated Python __new__.
_new: Final = tuple.__new__

_ETH_IPV4: Final = 0x0800
_ETH_IPV6: Final = 0x86DD
_ETH_TEB: Final = 0x6558
_VLAN_TYPES: Final = frozenset({0x8100, 0x88A8, 0x9100, 0x9200, 0x9300})
_MPLS_TYPES: Final = frozenset({0x8847, 0x8848})
_PPPOE_SESSION: Final = 0x8864
_ERSPAN_II: Final = 0x88BE
_ERSPAN_III: Final = 0x22EB
_VXLAN_PORT: Final = 4789
_GENEVE_PORT: Final = 6081
_UDP_TUNNEL_PORTS: Final = frozenset({_VXLAN_PORT, _GENEVE_PORT})

# IPv6 extension headers whose length we know how to skip (HBH, routing, fragment, AH, dest
# options, mobility, HIP, shim6). ESP (50) and No Next Header (59) end the chain.
_IPV6_EXT: Final = frozenset({0, 43, 44, 51, 60, 135, 139, 140})
_AF_INET6: Final = frozenset({24, 28, 30})  # BSD, FreeBSD, macOS values of AF_INET6


class _Tunnel(Enum):
    """Sentinel from the tunnel helpers: not this encapsulation, keep the outer packet."""

    NOT = 0


_NOT_TUNNEL: Final = _Tunnel.NOT
_Inner = Packet | None | Literal[_Tunnel.NOT]


class PacketDecoder:
    """Turns (ts, link type, frame) into Packets and counts everything it cannot decode.

    Not thread-safe: use one decoder per capture worker (counters are plain attributes).
    `packets` always equals decoded + non_ip + truncated + malformed + fragments +
    unsupported_linktype.
    """

    __slots__ = COUNTERS

    def __init__(self) -> None:
        self.packets = 0
        self.decoded = 0
        self.non_ip = 0
        self.truncated = 0
        self.malformed = 0
        self.fragments = 0
        self.first_fragments = 0
        self.tunnels = 0
        self.unsupported_linktype = 0
        self.other_l4 = 0
        self.snapped = 0

    def counters(self) -> dict[str, int]:
        """A snapshot of every counter by name."""
        return {name: getattr(self, name) for name in COUNTERS}

    def decode(self, ts: float, linktype: int, frame: bytes) -> Packet | None:
        """The Packet in `frame` (captured on a link of type `linktype`), or None."""
        self.packets += 1
        n = len(frame)
        if linktype == 1:
            if n >= 54:
                # Fast path for the bulk of mirrored traffic: untagged Ethernet, IPv4 without
                # options, unfragmented TCP or UDP. One unpack reads every field it needs;
                # anything unusual falls through to the general path, which counts it.
                et, vihl, total, frag, proto = _ETH_IP4(frame, 0)
                if et == _ETH_IPV4 and vihl == 0x45 and not frag & 0x3FFF and total >= 40:
                    end = 14 + total
                    if proto == 6:
                        sport, dport, seq, doff, flags = _TCP_FAST(frame, 34)
                        if doff >= 0x50 and end <= n:
                            start = 34 + ((doff >> 4) << 2)
                            if start > end:  # noqa: PLR1730 - cheaper than min()
                                start = end
                            self.decoded += 1
                            return _new(
                                Packet,
                                (
                                    ts,
                                    frame[26:30],
                                    frame[30:34],
                                    6,
                                    sport,
                                    dport,
                                    flags,
                                    seq,
                                    memoryview(frame)[start:end],
                                    0,
                                ),
                            )
                    elif proto == 17:
                        sport, dport, ulen = _UDP(frame, 34)
                        if end <= n and dport not in _UDP_TUNNEL_PORTS:
                            if ulen >= 8 and 34 + ulen < end:
                                end = 34 + ulen
                            self.decoded += 1
                            return _new(
                                Packet,
                                (
                                    ts,
                                    frame[26:30],
                                    frame[30:34],
                                    17,
                                    sport,
                                    dport,
                                    0,
                                    0,
                                    memoryview(frame)[42:end],
                                    0,
                                ),
                            )
                return self._ethertype(ts, frame, 14, n, et, 0, 0)
            if n < 14:
                self.truncated += 1
                return None
            return self._ethertype(ts, frame, 14, n, _U16(frame, 12)[0], 0, 0)
        if linktype == 113:  # Linux cooked v1: protocol at 14
            if n < 16:
                self.truncated += 1
                return None
            return self._ethertype(ts, frame, 16, n, _U16(frame, 14)[0], 0, 0)
        if linktype == 276:  # Linux cooked v2: protocol at 0
            if n < 20:
                self.truncated += 1
                return None
            return self._ethertype(ts, frame, 20, n, _U16(frame, 0)[0], 0, 0)
        if linktype in (101, 12, 14):
            return self._raw_ip(ts, frame, 0, n, 0, 0)
        if linktype == 228:
            return self._ip4(ts, frame, 0, n, 0, 0)
        if linktype == 229:
            return self._ip6(ts, frame, 0, n, 0, 0)
        if linktype in (0, 108):
            # The AF value is in the capturing host's byte order for NULL and big-endian for
            # LOOP; both are small numbers, so whichever end byte is set is the value.
            if n < 4:
                self.truncated += 1
                return None
            if frame[1] or frame[2] or (frame[0] and frame[3]):
                self.non_ip += 1
                return None
            af = frame[0] | frame[3]
            if af == 2:
                return self._ip4(ts, frame, 4, n, 0, 0)
            if af in _AF_INET6:
                return self._ip6(ts, frame, 4, n, 0, 0)
            self.non_ip += 1
            return None
        if linktype in (9, 50):  # PPP, PPP in HDLC-like framing
            off = 2 if frame[:2] == b"\xff\x03" else 0
            if off >= n:
                self.truncated += 1
                return None
            if frame[off] & 1:  # protocol field compressed to one byte (RFC 1661 6.5)
                proto = frame[off]
                off += 1
            elif off + 2 <= n:
                proto = _U16(frame, off)[0]
                off += 2
            else:
                self.truncated += 1
                return None
            if proto == 0x21:
                return self._ip4(ts, frame, off, n, 0, 0)
            if proto == 0x57:
                return self._ip6(ts, frame, off, n, 0, 0)
            self.non_ip += 1
            return None
        self.unsupported_linktype += 1
        return None

    def _raw_ip(
        self, ts: float, buf: bytes, off: int, lim: int, vlan: int, depth: int
    ) -> Packet | None:
        if off >= lim:
            self.truncated += 1
            return None
        version = buf[off] >> 4
        if version == 4:
            return self._ip4(ts, buf, off, lim, vlan, depth)
        if version == 6:
            return self._ip6(ts, buf, off, lim, vlan, depth)
        self.non_ip += 1
        return None

    def _ether(
        self, ts: float, buf: bytes, off: int, lim: int, vlan: int, depth: int
    ) -> Packet | None:
        if off + 14 > lim:
            self.truncated += 1
            return None
        return self._ethertype(ts, buf, off + 14, lim, _U16(buf, off + 12)[0], vlan, depth)

    def _ethertype(
        self, ts: float, buf: bytes, off: int, lim: int, et: int, vlan: int, depth: int
    ) -> Packet | None:
        """Follow VLAN tags, MPLS, PPPoE and SNAP from EtherType `et` at `off` to IP."""
        tagged = False
        for _ in range(_MAX_TAGS):
            if et == _ETH_IPV4:
                return self._ip4(ts, buf, off, lim, vlan, depth)
            if et == _ETH_IPV6:
                return self._ip6(ts, buf, off, lim, vlan, depth)
            if et in _VLAN_TYPES:
                if off + 4 > lim:
                    self.truncated += 1
                    return None
                tci, et = _HH(buf, off)
                if not tagged:
                    vlan = tci & 0x0FFF
                    tagged = True
                off += 4
            elif et in _MPLS_TYPES:
                for _label in range(_MAX_TAGS):
                    if off + 4 > lim:
                        self.truncated += 1
                        return None
                    bottom = buf[off + 2] & 1
                    off += 4
                    if bottom:
                        break
                else:
                    self.malformed += 1
                    return None
                if off >= lim:
                    self.truncated += 1
                    return None
                # No protocol field after the label stack: the first nibble tells IP versions
                # apart, and 0 is the pseudowire control word before an Ethernet frame (RFC
                # 4385).
                nibble = buf[off] >> 4
                if nibble == 4:
                    return self._ip4(ts, buf, off, lim, vlan, depth)
                if nibble == 6:
                    return self._ip6(ts, buf, off, lim, vlan, depth)
                if nibble == 0:
                    return self._ether(ts, buf, off + 4, lim, vlan, depth)
                self.non_ip += 1
                return None
            elif et == _PPPOE_SESSION:
                if off + 8 > lim:
                    self.truncated += 1
                    return None
                ppp = _U16(buf, off + 6)[0]
                if ppp == 0x21:
                    return self._ip4(ts, buf, off + 8, lim, vlan, depth)
                if ppp == 0x57:
                    return self._ip6(ts, buf, off + 8, lim, vlan, depth)
                self.non_ip += 1
                return None
            elif et <= 1500:
                # An 802.3 length field: only LLC/SNAP with a zero OUI carries an EtherType.
                if off + 8 > lim:
                    self.truncated += 1
                    return None
                if buf[off : off + 6] != b"\xaa\xaa\x03\x00\x00\x00":
                    self.non_ip += 1
                    return None
                et = _U16(buf, off + 6)[0]
                off += 8
            else:
                self.non_ip += 1
                return None
        self.malformed += 1
        return None

    def _ip4(
        self, ts: float, buf: bytes, off: int, lim: int, vlan: int, depth: int
    ) -> Packet | None:
        if off + 20 > lim:
            self.truncated += 1
            return None
        vihl = buf[off]
        ihl = (vihl & 0x0F) << 2
        if vihl >> 4 != 4 or ihl < 20:
            self.malformed += 1
            return None
        total = _U16(buf, off + 2)[0]
        if total == 0:
            # Segmentation offload: the host captured its own oversized segment before the NIC
            # split it, and the stack left the length unset.
            end = lim
        elif total < ihl:
            self.malformed += 1
            return None
        else:
            end = off + total
            if end > lim:
                self.snapped += 1
                end = lim
        l4 = off + ihl
        if l4 > end:
            self.truncated += 1
            return None
        frag = _U16(buf, off + 6)[0]
        if frag & 0x1FFF:
            self.fragments += 1
            return None
        if frag & 0x2000:
            self.first_fragments += 1
        proto = buf[off + 9]
        if proto == 51:
            # IPv4 AH (RFC 4302) authenticates without encrypting: skip it to the real L4.
            for _ in range(_MAX_EXT):
                if l4 + 8 > end:
                    self.truncated += 1
                    return None
                proto = buf[l4]
                l4 += (buf[l4 + 1] + 2) << 2
                if proto != 51:
                    break
            if l4 > end:
                self.truncated += 1
                return None
        return self._l4(
            ts,
            buf,
            l4,
            end,
            proto,
            buf[off + 12 : off + 16],
            buf[off + 16 : off + 20],
            vlan,
            depth,
        )

    def _ip6(
        self, ts: float, buf: bytes, off: int, lim: int, vlan: int, depth: int
    ) -> Packet | None:
        if off + 40 > lim:
            self.truncated += 1
            return None
        if buf[off] >> 4 != 6:
            self.malformed += 1
            return None
        plen = _U16(buf, off + 4)[0]
        nh = buf[off + 6]
        p = off + 40
        if plen == 0:  # jumbogram or segmentation offload: the capture decides
            end = lim
        else:
            end = p + plen
            if end > lim:
                self.snapped += 1
                end = lim
        hops = 0
        while nh in _IPV6_EXT:
            hops += 1
            if hops > _MAX_EXT:
                self.malformed += 1
                return None
            if p + 8 > end:
                self.truncated += 1
                return None
            if nh == 44:
                fo = _U16(buf, p + 2)[0]
                if fo & 0xFFF8:
                    self.fragments += 1
                    return None
                if fo & 1:
                    self.first_fragments += 1
                nh = buf[p]
                p += 8
            elif nh == 51:  # AH counts its length in 4-octet units, minus 2
                nh = buf[p]
                p += (buf[p + 1] + 2) << 2
            else:
                nh = buf[p]
                p += (buf[p + 1] + 1) << 3
        if p > end:
            self.truncated += 1
            return None
        return self._l4(
            ts, buf, p, end, nh, buf[off + 8 : off + 24], buf[off + 24 : off + 40], vlan, depth
        )

    def _l4(
        self,
        ts: float,
        buf: bytes,
        l4: int,
        end: int,
        proto: int,
        src: bytes,
        dst: bytes,
        vlan: int,
        depth: int,
    ) -> Packet | None:
        if proto == 6:
            if l4 + 20 > end:
                self.truncated += 1
                return None
            doff = (buf[l4 + 12] >> 4) << 2
            if doff < 20:
                self.malformed += 1
                return None
            start = l4 + doff
            # Options cut off by the snap length still leave a usable header (flags matter to
            # the flow table); an empty payload is the honest answer then.
            if start > end:  # noqa: PLR1730 - a branch is cheaper than min() per packet
                start = end
            sport, dport, seq = _TCP(buf, l4)
            self.decoded += 1
            return _new(
                Packet,
                (
                    ts,
                    src,
                    dst,
                    6,
                    sport,
                    dport,
                    buf[l4 + 13],
                    seq,
                    memoryview(buf)[start:end],
                    vlan,
                ),
            )
        if proto == 17:
            if l4 + 8 > end:
                self.truncated += 1
                return None
            sport, dport, ulen = _UDP(buf, l4)
            if ulen >= 8 and l4 + ulen < end:
                end = l4 + ulen
            if dport in _UDP_TUNNEL_PORTS and depth < MAX_DEPTH:
                inner = self._udp_tunnel(ts, buf, l4 + 8, end, dport, vlan, depth)
                if inner is not _NOT_TUNNEL:
                    return inner
            self.decoded += 1
            return _new(
                Packet, (ts, src, dst, 17, sport, dport, 0, 0, memoryview(buf)[l4 + 8 : end], vlan)
            )
        if depth < MAX_DEPTH:
            if proto == 47:
                inner = self._gre(ts, buf, l4, end, vlan, depth)
                if inner is not _NOT_TUNNEL:
                    return inner
            elif proto == 4:
                self.tunnels += 1
                return self._ip4(ts, buf, l4, end, vlan, depth + 1)
            elif proto == 41:
                self.tunnels += 1
                return self._ip6(ts, buf, l4, end, vlan, depth + 1)
        self.decoded += 1
        self.other_l4 += 1
        return _new(Packet, (ts, src, dst, proto, 0, 0, 0, 0, memoryview(buf)[l4:end], vlan))

    def _udp_tunnel(
        self, ts: float, buf: bytes, p: int, end: int, dport: int, vlan: int, depth: int
    ) -> _Inner:
        """The inner packet of a VXLAN/GENEVE datagram, or _NOT_TUNNEL when it is not one."""
        if dport == _VXLAN_PORT:
            # RFC 7348: only the I flag is mandatory; reserved bits are ignored on receipt.
            if p + 8 + 14 > end or not buf[p] & 0x08:
                return _NOT_TUNNEL
            self.tunnels += 1
            return self._ether(ts, buf, p + 8, end, vlan, depth + 1)
        # GENEVE (RFC 8926): version 0, options length in 4-byte words, EtherType protocol.
        if p + 8 > end or buf[p] >> 6:
            return _NOT_TUNNEL
        inner = p + 8 + ((buf[p] & 0x3F) << 2)
        ptype = _U16(buf, p + 2)[0]
        if inner > end:
            return _NOT_TUNNEL
        return self._by_ethertype(ptype, ts, buf, inner, end, vlan, depth)

    def _by_ethertype(
        self, ptype: int, ts: float, buf: bytes, p: int, end: int, vlan: int, depth: int
    ) -> _Inner:
        """A tunnel's payload named by EtherType: IPv4, IPv6 or a whole Ethernet frame."""
        if ptype == _ETH_IPV4:
            self.tunnels += 1
            return self._ip4(ts, buf, p, end, vlan, depth + 1)
        if ptype == _ETH_IPV6:
            self.tunnels += 1
            return self._ip6(ts, buf, p, end, vlan, depth + 1)
        if ptype == _ETH_TEB:
            self.tunnels += 1
            return self._ether(ts, buf, p, end, vlan, depth + 1)
        return _NOT_TUNNEL

    def _gre(self, ts: float, buf: bytes, p: int, end: int, vlan: int, depth: int) -> _Inner:
        """The inner packet of a GRE/ERSPAN payload, or _NOT_TUNNEL to keep the GRE packet."""
        if p + 4 > end:
            return _NOT_TUNNEL
        flags, ptype = _HH(buf, p)
        # Version 1 is PPTP's enhanced GRE (PPP inside) and the routing bit is RFC 1701's
        # source routing: neither is used to mirror traffic.
        if flags & 0x4007:
            return _NOT_TUNNEL
        p += 4
        if flags & 0x8000:  # checksum + reserved
            p += 4
        if flags & 0x2000:  # key
            p += 4
        seq = flags & 0x1000
        if seq:
            p += 4
        if p > end:
            return _NOT_TUNNEL
        if ptype in (_ETH_IPV4, _ETH_IPV6, _ETH_TEB):
            return self._by_ethertype(ptype, ts, buf, p, end, vlan, depth)
        if ptype == _ERSPAN_II:
            # Type I has no ERSPAN header at all and is told apart by the GRE S bit.
            if seq:
                if p + 8 > end:
                    return _NOT_TUNNEL
                vlan = (_U16(buf, p)[0] & 0x0FFF) or vlan
                p += 8
            self.tunnels += 1
            return self._ether(ts, buf, p, end, vlan, depth + 1)
        if ptype == _ERSPAN_III:
            if p + 12 > end:
                return _NOT_TUNNEL
            vlan = (_U16(buf, p)[0] & 0x0FFF) or vlan
            frame_type = (buf[p + 10] >> 2) & 0x1F
            inner = p + (20 if buf[p + 11] & 1 else 12)  # O bit: platform-specific subheader
            self.tunnels += 1
            if frame_type == 2:  # the mirrored packet without its L2 header
                return self._raw_ip(ts, buf, inner, end, vlan, depth + 1)
            return self._ether(ts, buf, inner, end, vlan, depth + 1)
        return _NOT_TUNNEL
