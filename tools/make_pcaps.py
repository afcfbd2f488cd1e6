"""Generate the project's own test captures in pcaps/, byte-for-byte reproducibly.

Run: python tools/make_pcaps.py [--out DIR]

Every capture is built from a seeded random.Random and fixed base timestamps (no wall
clock), so a rerun gives identical bytes; tests/test_pcaps_generated.py holds it to that.
Besides the captures it writes pcaps/expected.json (what the detector must find in each file)
and pcaps/README.md (the same facts for people).
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import gzip
import hashlib
import json
import random
import socket
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrHopByHop, PadN
from scapy.packet import Raw

# 2026-01-05 09:00:00 UTC, a Monday morning: every scenario starts at T0 plus its own offset.
T0 = 1_767_603_600.0

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL2 = 276

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
ETH_8021Q = 0x8100
ETH_8021AD = 0x88A8

GATEWAY_MAC = "00:1b:54:c2:7a:41"  # the office router (Cisco OUI) every outside packet comes from


# ---------------------------------------------------------------------------------------------
# Hosts, packets and the TCP model
# ---------------------------------------------------------------------------------------------


def mac_bytes(text: str) -> bytes:
    return bytes(int(part, 16) for part in text.split(":"))


@dataclass(slots=True)
class Host:
    """One machine as it appears on the wire: addresses plus its TCP stack's habits."""

    ip: str
    mac: bytes  # source MAC of frames this host sends, as seen at the tap
    internal: bool
    ttl: int = 64
    syn_window: int = 64240
    window: int = 502  # scaled receive window after the handshake
    mss: int = 1460
    wscale: int = 7
    ts_offset: int = 0  # this host's TCP timestamp clock, in ms
    name: str = ""

    @property
    def v6(self) -> bool:
        return ":" in self.ip


@dataclass(slots=True)
class Rec:
    """One captured packet before link-layer framing."""

    ts: float
    l3: bytes
    src_mac: bytes
    dst_mac: bytes
    from_internal: bool
    iface: int = 0

    @property
    def ethertype(self) -> int:
        return ETH_IPV6 if self.l3[0] >> 4 == 6 else ETH_IPV4


@dataclass(slots=True)
class _Side:
    host: Host
    port: int
    seq: int
    ipid: int
    rcv: int = 0
    ts_seen: int = 0
    pending_ack: float | None = None


class Capture:
    """Collects the packets of one scenario; every random choice comes from its own seed."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.recs: list[Rec] = []
        self.conns: list[TcpConn] = []
        self.v6_ext_headers = False
        self._used_ports: set[int] = set()

    # -- hosts -----------------------------------------------------------------------------

    def lan(self, ip: str, oui: str = "3c:ec:ef", *, name: str = "") -> Host:
        """A Linux machine on the local segment."""
        mac = oui + "".join(f":{self.rng.randrange(256):02x}" for _ in range(3))
        return Host(
            ip=ip,
            mac=mac_bytes(mac),
            internal=True,
            mss=1440 if ":" in ip else 1460,
            syn_window=64800 if ":" in ip else 64240,
            ts_offset=self.rng.randrange(1 << 31),
            name=name,
        )

    def remote(self, ip: str, *, ttl: int = 52, name: str = "", window: int = 509) -> Host:
        """A server outside: its frames arrive from the gateway, its TTL shows the hops."""
        return Host(
            ip=ip,
            mac=mac_bytes(GATEWAY_MAC),
            internal=False,
            ttl=ttl,
            syn_window=65160 if ":" not in ip else 64800,
            window=window,
            mss=1440 if ":" in ip else 1460,
            ts_offset=self.rng.randrange(1 << 31),
            name=name,
        )

    def eport(self) -> int:
        """A fresh Linux ephemeral port (net.ipv4.ip_local_port_range 32768-60999)."""
        while True:
            port = self.rng.randrange(32768, 61000)
            if port not in self._used_ports:
                self._used_ports.add(port)
                return port

    # -- packets ---------------------------------------------------------------------------

    def ip_packet(self, src: Host, dst: Host, ipid: int, l4: Any) -> bytes:
        if src.v6:
            if self.v6_ext_headers:
                # Hop-by-hop and destination options make a decoder walk the header chain.
                hbh = IPv6ExtHdrHopByHop(options=[PadN(optdata=b"\x00" * 4)])
                dst_opt = IPv6ExtHdrDestOpt(options=[PadN(optdata=b"\x00" * 4)])
                return bytes(IPv6(src=src.ip, dst=dst.ip, hlim=src.ttl) / hbh / dst_opt / l4)
            return bytes(IPv6(src=src.ip, dst=dst.ip, hlim=src.ttl) / l4)
        return bytes(IP(src=src.ip, dst=dst.ip, ttl=src.ttl, id=ipid, flags="DF") / l4)

    def add(self, ts: float, src: Host, dst: Host, l3: bytes, iface: int = 0) -> None:
        self.recs.append(Rec(ts, l3, src.mac, dst.mac, src.internal, iface))

    def udp(
        self,
        ts: float,
        src: Host,
        sport: int,
        dst: Host,
        dport: int,
        payload: bytes,
        *,
        iface: int = 0,
    ) -> None:
        ipid = self.rng.randrange(1 << 16)
        self.add(ts, src, dst, self.ip_packet(src, dst, ipid, UDP(sport=sport, dport=dport) /
                                              Raw(payload)), iface)

    def tcp(
        self,
        client: Host,
        server: Host,
        sport: int,
        *,
        cport: int | None = None,
        rtt: float = 0.035,
        iface: int = 0,
        established: bool = False,
    ) -> TcpConn:
        conn = TcpConn(self, client, cport or self.eport(), server, sport, rtt=rtt, iface=iface,
                       established=established)
        self.conns.append(conn)
        return conn

    def finish(self) -> list[Rec]:
        for conn in self.conns:
            conn.flush_all()
        return sorted(self.recs, key=lambda r: r.ts)


class TcpConn:
    """A TCP connection seen from a tap next to the client: the client's packets appear at
    the time it sends them, the server's answers one round trip later."""

    def __init__(
        self,
        cap: Capture,
        client: Host,
        cport: int,
        server: Host,
        sport: int,
        *,
        rtt: float,
        iface: int,
        established: bool,
    ) -> None:
        rng = cap.rng
        self.cap = cap
        self.rtt = rtt
        self.iface = iface
        self.c = _Side(client, cport, rng.randrange(1 << 32), rng.randrange(1 << 16))
        self.s = _Side(server, sport, rng.randrange(1 << 32), rng.randrange(1 << 16))
        self.last_t = 0.0
        self.open_t: float | None = None
        self.closed = False
        if established:
            self.c.rcv = self.s.seq
            self.s.rcv = self.c.seq

    # -- endpoints for expected.json -------------------------------------------------------

    @property
    def client(self) -> Host:
        return self.c.host

    @property
    def server(self) -> Host:
        return self.s.host

    def alert(self, dialect: str, *, tls: bool = False, midflow: bool = False,
              **extra: Any) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "client_ip": self.c.host.ip,
            "client_port": self.c.port,
            "server_ip": self.s.host.ip,
            "server_port": self.s.port,
            "dialect": dialect,
            "tls": tls,
            "midflow": midflow,
        }
        entry.update(extra)
        return entry

    def flow(self) -> dict[str, Any]:
        return {
            "client_ip": self.c.host.ip,
            "client_port": self.c.port,
            "server_ip": self.s.host.ip,
            "server_port": self.s.port,
        }

    # -- low level -------------------------------------------------------------------------

    def _sides(self, from_client: bool) -> tuple[_Side, _Side]:
        return (self.c, self.s) if from_client else (self.s, self.c)

    def _ack_latency(self, receiver: _Side, *, quick: bool = False) -> float:
        if receiver is self.s:
            return self.rtt + self.cap.rng.uniform(0.0, 0.002)
        if quick:
            return self.cap.rng.uniform(0.00003, 0.0001)
        # Linux delays a lone ACK up to 40 ms unless quick-ack mode is on.
        return self.cap.rng.uniform(0.0002, 0.04)

    def emit(self, ts: float, from_client: bool, flags: str, payload: bytes = b"",
             *, seq: int | None = None) -> None:
        me, peer = self._sides(from_client)
        tsval = (me.host.ts_offset + int(ts * 1000)) & 0xFFFFFFFF
        if not me.ts_seen and "S" not in flags:
            # Mid-flow: echo what the peer's clock said one round trip ago.
            me.ts_seen = (peer.host.ts_offset + int((ts - self.rtt) * 1000)) & 0xFFFFFFFF
        if "S" in flags:
            options: list[tuple[str, Any]] = [
                ("MSS", me.host.mss),
                ("SAckOK", b""),
                ("Timestamp", (tsval, me.ts_seen)),
                ("NOP", None),
                ("WScale", me.host.wscale),
            ]
            window = me.host.syn_window
        else:
            options = [("NOP", None), ("NOP", None), ("Timestamp", (tsval, me.ts_seen))]
            window = me.host.window
        tcp = TCP(
            sport=me.port,
            dport=peer.port,
            seq=me.seq if seq is None else seq & 0xFFFFFFFF,
            ack=me.rcv if "A" in flags else 0,
            flags=flags,
            window=window,
            options=options,
        )
        l4 = tcp / Raw(payload) if payload else tcp
        peer.ts_seen = tsval
        self.cap.add(ts, me.host, peer.host, self.cap.ip_packet(me.host, peer.host, me.ipid, l4),
                     self.iface)
        me.ipid = (me.ipid + 1) & 0xFFFF

    def _tick(self, ts: float) -> float:
        """Flush ACKs due by ts; a write planned before the previous one ended waits for it."""
        if ts < self.last_t:
            ts = self.last_t + 0.00001
        self.last_t = ts
        for side in (self.c, self.s):
            if side.pending_ack is not None and side.pending_ack <= ts:
                self.emit(side.pending_ack, side is self.c, "A")
                side.pending_ack = None
        return ts

    def flush_all(self) -> None:
        for side in (self.c, self.s):
            if side.pending_ack is not None:
                self.emit(side.pending_ack, side is self.c, "A")
                side.pending_ack = None

    # -- connection life -------------------------------------------------------------------

    def open(self, ts: float) -> float:
        """Three-way handshake; returns when the client may send."""
        ts = self._tick(ts)
        self.open_t = ts
        self.emit(ts, True, "S")
        self.c.seq += 1
        self.s.rcv = self.c.seq
        self.emit(ts + self.rtt, False, "SA")
        self.s.seq += 1
        self.c.rcv = self.s.seq
        done = ts + self.rtt + self.cap.rng.uniform(0.00003, 0.0001)
        self.emit(done, True, "A")
        self.last_t = done
        return done

    def send(self, ts: float, from_client: bool, data: bytes, *, gap: float = 0.00002) -> float:
        """Send data as full-size segments (PSH on the last); returns the last segment's time."""
        ts = self._tick(ts)
        me, peer = self._sides(from_client)
        me.pending_ack = None  # the data carries the ACK
        peer.pending_ack = None  # a delayed ACK still waiting covers the new data too
        size = min(me.host.mss, peer.host.mss) - 12  # the timestamp option takes 12 bytes
        chunks = [data[i : i + size] for i in range(0, len(data), size)]
        t = ts
        for i, chunk in enumerate(chunks):
            t = ts + i * gap
            last = i == len(chunks) - 1
            self.emit(t, from_client, "PA" if last else "A", chunk)
            me.seq = (me.seq + len(chunk)) & 0xFFFFFFFF
            if not last and i % 2 == 1:
                # The receiver ACKs every second full segment.
                peer.rcv = me.seq
                self.emit(t + self._ack_latency(peer, quick=True), not from_client, "A")
        peer.rcv = me.seq
        peer.pending_ack = t + self._ack_latency(peer)
        self.last_t = t
        return t

    def send_ranges(self, ts: float, from_client: bool, data: bytes,
                    plan: Sequence[tuple[float, int, int]]) -> float:
        """Send byte ranges [a, b) of data at ts + dt each, in the plan's order (reordering
        and overlapping retransmissions); the stream then continues after data."""
        ts = self._tick(ts)
        me, peer = self._sides(from_client)
        me.pending_ack = None
        peer.pending_ack = None
        base = me.seq
        last = ts
        for delay, a, b in plan:
            self.emit(ts + delay, from_client, "PA", data[a:b], seq=base + a)
            last = max(last, ts + delay)
        me.seq = (base + len(data)) & 0xFFFFFFFF
        peer.rcv = me.seq
        peer.pending_ack = last + self._ack_latency(peer)
        self.last_t = last
        return last

    def close(self, ts: float, *, by_client: bool = True) -> float:
        """Orderly FIN/ACK teardown started by one side."""
        ts = self._tick(ts)
        closer, peer = self._sides(by_client)
        closer.pending_ack = None
        peer.pending_ack = None
        self.emit(ts, by_client, "FA")
        closer.seq = (closer.seq + 1) & 0xFFFFFFFF
        peer.rcv = closer.seq
        t2 = ts + (self.rtt if by_client else self.cap.rng.uniform(0.0002, 0.002))
        self.emit(t2, not by_client, "FA")
        peer.seq = (peer.seq + 1) & 0xFFFFFFFF
        closer.rcv = peer.seq
        t3 = t2 + (self.cap.rng.uniform(0.00003, 0.0001) if by_client else self.rtt)
        self.emit(t3, by_client, "A")
        self.closed = True
        self.last_t = t3
        return t3

    def reset(self, ts: float, *, from_client: bool = True) -> float:
        ts = self._tick(ts)
        me, peer = self._sides(from_client)
        me.pending_ack = None
        peer.pending_ack = None
        self.emit(ts, from_client, "RA")
        self.closed = True
        return ts

    def exchange(self, ts: float, request: bytes, response: bytes,
                 think: float = 0.002) -> float:
        """Client request, server answer after one round trip plus think time."""
        t = self.send(ts, True, request)
        return self.send(t + self.rtt + think, False, response)


# ---------------------------------------------------------------------------------------------
# Capture files
# ---------------------------------------------------------------------------------------------


def _usec(ts: float) -> int:
    return round(ts * 1_000_000)


def pcap_bytes(linktype: int, frames: Sequence[tuple[float, bytes]]) -> bytes:
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype))
    for ts, frame in frames:
        us = _usec(ts)
        out += struct.pack("<IIII", us // 1_000_000, us % 1_000_000, len(frame), len(frame))
        out += frame
    return bytes(out)


def _pcapng_option(code: int, value: bytes) -> bytes:
    pad = (-len(value)) % 4
    return struct.pack("<HH", code, len(value)) + value + b"\x00" * pad


def _pcapng_block(btype: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack("<II", btype, total) + body + struct.pack("<I", total)


def pcapng_bytes(interfaces: Sequence[tuple[int, str]],
                 frames: Sequence[tuple[float, int, bytes]]) -> bytes:
    """A one-section pcapng with one IDB per (linktype, name) and an EPB per frame."""
    shb_opts = (
        _pcapng_option(3, b"Linux")
        + _pcapng_option(4, b"netdetect tools/make_pcaps.py")
        + _pcapng_option(0, b"")
    )
    out = bytearray(_pcapng_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)
                                  + shb_opts))
    for linktype, name in interfaces:
        opts = (
            _pcapng_option(2, name.encode())
            + _pcapng_option(9, b"\x06")  # if_tsresol: microseconds
            + _pcapng_option(0, b"")
        )
        out += _pcapng_block(1, struct.pack("<HHI", linktype, 0, 262144) + opts)
    for ts, iface, frame in frames:
        us = _usec(ts)
        body = struct.pack("<IIIII", iface, us >> 32, us & 0xFFFFFFFF, len(frame), len(frame))
        body += frame + b"\x00" * ((-len(frame)) % 4)
        out += _pcapng_block(6, body)
    return bytes(out)


# ---------------------------------------------------------------------------------------------
# Link layers and tunnels
# ---------------------------------------------------------------------------------------------


def ether(rec: Rec) -> bytes:
    return rec.dst_mac + rec.src_mac + struct.pack("!H", rec.ethertype) + rec.l3


def vlan(vid: int, pcp: int = 0) -> Callable[[Rec], bytes]:
    def frame(rec: Rec) -> bytes:
        return (rec.dst_mac + rec.src_mac + struct.pack("!HHH", ETH_8021Q, pcp << 13 | vid,
                                                        rec.ethertype) + rec.l3)

    return frame


def qinq(outer: int, inner: int) -> Callable[[Rec], bytes]:
    def frame(rec: Rec) -> bytes:
        return (rec.dst_mac + rec.src_mac
                + struct.pack("!HHHHH", ETH_8021AD, outer, ETH_8021Q, inner, rec.ethertype)
                + rec.l3)

    return frame


def sll2(ifindex: int) -> Callable[[Rec], bytes]:
    """LINKTYPE_LINUX_SLL2 as captured with `tcpdump -i any` on the miner itself."""

    def frame(rec: Rec) -> bytes:
        pkttype = 4 if rec.from_internal else 0  # PACKET_OUTGOING / PACKET_HOST
        return struct.pack("!HHIHBB", rec.ethertype, 0, ifindex, 1, pkttype, 6) + \
            rec.src_mac + b"\x00\x00" + rec.l3

    return frame


class Tunnel:
    """Wraps every frame in an outer Ethernet/IPv4 header from a mirroring switch to the sensor."""

    SWITCH_MAC = mac_bytes("00:1c:73:5e:02:11")  # Arista OUI
    SENSOR_MAC = mac_bytes("3c:fd:fe:a4:19:07")

    def __init__(self, kind: str, *, switch_ip: str = "172.16.20.2",
                 sensor_ip: str = "172.16.20.50") -> None:
        self.kind = kind
        self.switch_ip = switch_ip
        self.sensor_ip = sensor_ip
        self.seq = 1
        self.ipid = 0x3B00

    def _payload(self, rec: Rec) -> tuple[int, bytes]:
        inner_eth = ether(rec)
        if self.kind == "gre":
            return 47, struct.pack("!HH", 0, rec.ethertype) + rec.l3
        if self.kind == "erspan2":
            # GRE with the sequence-number bit, then the 8-byte ERSPAN type II header.
            gre = struct.pack("!HHI", 0x1000, 0x88BE, self.seq)
            # ver 1, VLAN 0, CoS 0, En 0 (frame untagged), T 0, session 42
            word1 = 1 << 28 | 0 << 16 | 0 << 13 | 0 << 11 | 0 << 10 | 42
            word2 = 0 << 20 | 7  # reserved, index (source port)
            return 47, gre + struct.pack("!II", word1, word2) + inner_eth
        if self.kind == "erspan3":
            gre = struct.pack("!HHI", 0x1000, 0x22EB, self.seq)
            word1 = 2 << 28 | 0 << 16 | 0 << 13 | 0 << 11 | 0 << 10 | 42  # ver 2, session 42
            stamp = int(rec.ts * 10_000_000) & 0xFFFFFFFF  # 100 ns units
            word3 = 0 << 16 | 0 << 15 | 0 << 10 | 17 << 4 | 0 << 3 | 1 << 1 | 0  # gra 100ns, o=0
            return 47, gre + struct.pack("!III", word1, stamp, word3) + inner_eth
        if self.kind == "vxlan":
            vxlan = struct.pack("!BBHI", 0x08, 0, 0, 5001 << 8)
            # RFC 7348: the source port is a hash of the inner flow; keep it per direction.
            sport = 49152 + (hashlib.sha256(rec.l3[12:20]).digest()[0] << 6)
            udp = UDP(sport=sport, dport=4789, chksum=0) / Raw(vxlan + inner_eth)
            return 17, bytes(udp)
        raise ValueError(self.kind)

    def __call__(self, rec: Rec) -> bytes:
        proto, payload = self._payload(rec)
        self.seq += 1
        self.ipid = (self.ipid + 1) & 0xFFFF
        outer = IP(src=self.switch_ip, dst=self.sensor_ip, ttl=63, id=self.ipid, proto=proto,
                   flags="DF" if proto == 47 else 0) / Raw(payload)
        return self.SENSOR_MAC + self.SWITCH_MAC + struct.pack("!H", ETH_IPV4) + bytes(outer)


# ---------------------------------------------------------------------------------------------
# Payload builders
# ---------------------------------------------------------------------------------------------


def jline(obj: Any, *, spaced: bool = False) -> bytes:
    """One JSON-RPC line: compact (XMRig, ckpool) or with ", "/": " (cgminer, cpuminer)."""
    seps = (", ", ": ") if spaced else (",", ":")
    return (json.dumps(obj, separators=seps) + "\n").encode()


def hx(rng: random.Random, n: int) -> str:
    return rng.randbytes(n).hex()


def http_date(ts: float) -> str:
    return dt.datetime.fromtimestamp(int(ts), dt.UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")


def http_request(method: str, path: str, headers: Sequence[tuple[str, str]],
                 body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
    return head.encode() + b"\r\n" + body


def http_response(status: str, headers: Sequence[tuple[str, str]], body: bytes = b"") -> bytes:
    head = f"HTTP/1.1 {status}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
    return head.encode() + b"\r\n" + body


class Dns:
    """A DNS message writer with RFC 1035 name compression, as real resolvers send."""

    def __init__(self, msg_id: int, flags: int) -> None:
        self.buf = bytearray(12)
        self.msg_id = msg_id
        self.flags = flags
        self.counts = [0, 0, 0, 0]
        self._names: dict[str, int] = {}

    def _name(self, name: str) -> None:
        labels = name.rstrip(".").split(".")
        for i in range(len(labels)):
            suffix = ".".join(labels[i:]).lower()
            if suffix in self._names:
                self.buf += struct.pack("!H", 0xC000 | self._names[suffix])
                return
            self._names[suffix] = len(self.buf)
            label = labels[i].encode()
            self.buf += bytes([len(label)]) + label
        self.buf += b"\x00"

    def question(self, name: str, qtype: int) -> Dns:
        self._name(name)
        self.buf += struct.pack("!HH", qtype, 1)
        self.counts[0] += 1
        return self

    def answer(self, name: str, rtype: int, ttl: int, value: str) -> Dns:
        self._name(name)
        self.buf += struct.pack("!HHI", rtype, 1, ttl)
        at = len(self.buf)
        self.buf += b"\x00\x00"
        if rtype == 1:
            self.buf += socket.inet_pton(socket.AF_INET, value)
        elif rtype == 28:
            self.buf += socket.inet_pton(socket.AF_INET6, value)
        else:
            self._name(value)
        struct.pack_into("!H", self.buf, at, len(self.buf) - at - 2)
        self.counts[1] += 1
        return self

    def edns(self, size: int = 1232) -> Dns:
        self.buf += b"\x00" + struct.pack("!HHIH", 41, size, 0, 0)
        self.counts[3] += 1
        return self

    def build(self) -> bytes:
        struct.pack_into("!HHHHHH", self.buf, 0, self.msg_id, self.flags, *self.counts)
        return bytes(self.buf)


def dns_query(msg_id: int, name: str, qtype: int) -> bytes:
    return Dns(msg_id, 0x0100).question(name, qtype).build()  # RD


def dns_answer(msg_id: int, name: str, qtype: int,
               records: Sequence[tuple[str, int, int, str]], *, rcode: int = 0) -> bytes:
    msg = Dns(msg_id, 0x8180 | rcode).question(name, qtype)  # QR RD RA
    for rname, rtype, ttl, value in records:
        msg.answer(rname, rtype, ttl, value)
    return msg.build()


# -- TLS ------------------------------------------------------------------------------------


def tls_record(ctype: int, body: bytes, version: int = 0x0303) -> bytes:
    return struct.pack("!BHH", ctype, version, len(body)) + body


def tls_handshake(htype: int, body: bytes) -> bytes:
    return bytes([htype]) + len(body).to_bytes(3, "big") + body


def tls_ext(etype: int, body: bytes) -> bytes:
    return struct.pack("!HH", etype, len(body)) + body


def _u16list(values: Sequence[int], width: int = 2) -> bytes:
    body = b"".join(struct.pack("!H", v) for v in values)
    return len(body).to_bytes(width, "big") + body


def sni_ext(name: str) -> bytes:
    raw = name.encode()
    entry = b"\x00" + struct.pack("!H", len(raw)) + raw
    return tls_ext(0, struct.pack("!H", len(entry)) + entry)


def client_hello(rng: random.Random, ciphers: Sequence[int], extensions: Sequence[bytes],
                 *, legacy_session: bool = True) -> bytes:
    """A ClientHello handshake message wrapped in its record."""
    body = struct.pack("!H", 0x0303) + rng.randbytes(32)
    session = rng.randbytes(32) if legacy_session else b""
    body += bytes([len(session)]) + session
    body += _u16list(ciphers) + b"\x01\x00"
    exts = b"".join(extensions)
    body += struct.pack("!H", len(exts)) + exts
    return tls_record(22, tls_handshake(1, body), version=0x0301)


# OpenSSL 1.1.1 default client (`openssl s_client`, libcurl, XMRig): cipher order and groups.
OPENSSL111_CIPHERS = (
    0x1302, 0x1303, 0x1301, 0xC02C, 0xC030, 0x009F, 0xCCA9, 0xCCA8, 0xCCAA, 0xC02B, 0xC02F,
    0x009E, 0xC024, 0xC028, 0x006B, 0xC023, 0xC027, 0x0067, 0xC00A, 0xC014, 0x0039, 0xC009,
    0xC013, 0x0033, 0x009D, 0x009C, 0x003D, 0x003C, 0x0035, 0x002F, 0x00FF,
)
OPENSSL111_SIGALGS = (
    0x0403, 0x0503, 0x0603, 0x0807, 0x0808, 0x0809, 0x080A, 0x080B, 0x0804, 0x0805, 0x0806,
    0x0401, 0x0501, 0x0601, 0x0303, 0x0203, 0x0301, 0x0201, 0x0302, 0x0202, 0x0402, 0x0502,
    0x0602,
)


def openssl111_hello(rng: random.Random, sni: str | None) -> bytes:
    """OpenSSL 1.1.1 default client: no ALPN unless asked, no padding by default."""
    exts = [sni_ext(sni)] if sni else []
    exts += [
        tls_ext(11, b"\x03\x00\x01\x02"),
        tls_ext(10, _u16list((0x001D, 0x0017, 0x001E, 0x0019, 0x0018))),
        tls_ext(35, b""),
        tls_ext(22, b""),
        tls_ext(23, b""),
        tls_ext(13, _u16list(OPENSSL111_SIGALGS)),
        tls_ext(43, b"\x08\x03\x04\x03\x03\x03\x02\x03\x01"),
        tls_ext(45, b"\x01\x01"),
        tls_ext(51, struct.pack("!HHH", 36, 0x001D, 32) + rng.randbytes(32)),
    ]
    return client_hello(rng, OPENSSL111_CIPHERS, exts)


def curl_hello(rng: random.Random) -> bytes:
    """curl 7.88 with OpenSSL 3 against a bare IP: ALPN h2/http1.1, no SNI, padding."""
    exts = [
        tls_ext(11, b"\x03\x00\x01\x02"),
        tls_ext(10, _u16list((0x001D, 0x0017, 0x001E, 0x0019, 0x0018, 0x0100, 0x0101, 0x0102,
                              0x0103, 0x0104))),
        tls_ext(16, b"\x00\x0c\x02h2\x08http/1.1"),
        tls_ext(22, b""),
        tls_ext(23, b""),
        tls_ext(49, b""),
        tls_ext(13, _u16list((*OPENSSL111_SIGALGS[:11], 0x0401, 0x0501, 0x0601))),
        tls_ext(43, b"\x04\x03\x04\x03\x03"),
        tls_ext(45, b"\x01\x01"),
        tls_ext(51, struct.pack("!HHH", 36, 0x001D, 32) + rng.randbytes(32)),
    ]
    hello = client_hello(rng, (0x1302, 0x1303, 0x1301, 0xC02C, 0xC030, 0x009F, 0xCCA9, 0xCCA8,
                               0xCCAA, 0xC02B, 0xC02F, 0x009E, 0xC024, 0xC028, 0x006B, 0xC023,
                               0xC027, 0x0067, 0xC00A, 0xC014, 0x0039, 0xC009, 0xC013, 0x0033,
                               0x009D, 0x009C, 0x003D, 0x003C, 0x0035, 0x002F, 0x00FF), exts)
    # OpenSSL 3 pads a hello between 256 and 511 bytes to 512 (the F5 workaround).
    hs_len = len(hello) - 5
    if 256 <= hs_len < 512:
        pad = max(512 - hs_len - 4, 1)
        exts.append(tls_ext(21, b"\x00" * pad))
        rng2 = random.Random(hs_len)
        hello = client_hello(rng2, (0x1302, 0x1303, 0x1301, 0xC02C, 0xC030, 0x009F, 0xCCA9,
                                    0xCCA8, 0xCCAA, 0xC02B, 0xC02F, 0x009E, 0xC024, 0xC028,
                                    0x006B, 0xC023, 0xC027, 0x0067, 0xC00A, 0xC014, 0x0039,
                                    0xC009, 0xC013, 0x0033, 0x009D, 0x009C, 0x003D, 0x003C,
                                    0x0035, 0x002F, 0x00FF), exts)
    return hello


GREASE = (0x0A0A, 0x1A1A, 0x2A2A, 0x3A3A, 0x4A4A, 0x5A5A, 0x6A6A, 0x7A7A, 0x8A8A, 0x9A9A,
          0xAAAA, 0xBABA, 0xCACA, 0xDADA, 0xEAEA, 0xFAFA)


def chrome_hello(rng: random.Random, sni: str) -> bytes:
    """Chrome 120 style: GREASE, ALPN h2/http1.1, X25519Kyber-free groups, padding."""
    g1, g2, g3, g4 = (rng.choice(GREASE) for _ in range(4))
    ciphers = (g1, 0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8,
               0xC013, 0xC014, 0x009C, 0x009D, 0x002F, 0x0035)
    exts = [
        tls_ext(g2, b""),
        sni_ext(sni),
        tls_ext(23, b""),
        tls_ext(0xFF01, b"\x00"),
        tls_ext(10, _u16list((g3, 0x001D, 0x0017, 0x0018))),
        tls_ext(11, b"\x01\x00"),
        tls_ext(35, b""),
        tls_ext(16, b"\x00\x0c\x02h2\x08http/1.1"),
        tls_ext(5, b"\x01\x00\x00\x00\x00"),
        tls_ext(13, _u16list((0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806,
                              0x0601))),
        tls_ext(18, b""),
        tls_ext(51, struct.pack("!HHHB", 41, g3, 1, 0) + struct.pack("!HH", 0x001D, 32)
                + rng.randbytes(32)),
        tls_ext(45, b"\x01\x01"),
        tls_ext(43, b"\x06" + struct.pack("!HHH", g4, 0x0304, 0x0303)),
        tls_ext(27, b"\x02\x00\x02"),
        tls_ext(17513, b"\x00\x03\x02h2"),
        tls_ext(rng.choice(GREASE), b"\x00"),
    ]
    base = client_hello(rng, ciphers, exts)
    pad = 512 - (len(base) - 5) - 4
    if pad > 0:
        exts.append(tls_ext(21, b"\x00" * pad))
    return client_hello(random.Random(len(base)), ciphers, exts)


def tls13_server_flight(rng: random.Random, session_id: bytes, cert_size: int) -> bytes:
    """ServerHello (TLS 1.3, AES-256-GCM, x25519), the compatibility CCS and the encrypted
    EncryptedExtensions..Finished as one application-data record."""
    exts = tls_ext(43, b"\x03\x04") + tls_ext(51, struct.pack("!HH", 0x001D, 32)
                                              + rng.randbytes(32))
    body = (struct.pack("!H", 0x0303) + rng.randbytes(32) + bytes([len(session_id)])
            + session_id + struct.pack("!HB", 0x1302, 0) + struct.pack("!H", len(exts)) + exts)
    return (tls_record(22, tls_handshake(2, body)) + tls_record(20, b"\x01")
            + tls_record(23, rng.randbytes(cert_size)))


def app_data(rng: random.Random, plaintext_len: int, *, tls13: bool = True) -> bytes:
    """An encrypted record for plaintext_len bytes: TLS 1.3 adds the inner type byte and a
    16-byte tag; TLS 1.2 GCM an 8-byte explicit nonce and the tag."""
    overhead = 17 if tls13 else 24
    return tls_record(23, rng.randbytes(plaintext_len + overhead))


@dataclass(frozen=True)
class PoolCert:
    leaf: bytes
    chain: bytes


def pool_certificates(name: str) -> PoolCert:
    """A leaf for `name` under an intermediate, both ECDSA P-256 with RFC 6979 deterministic
    signatures so the DER is the same on every run."""
    inter_key = ec.derive_private_key(0x5EED_0001_2026, ec.SECP256R1())
    leaf_key = ec.derive_private_key(0x5EED_0002_2026, ec.SECP256R1())
    not_before = dt.datetime(2025, 12, 1, tzinfo=dt.UTC)
    not_after = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    inter_name = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Let's Encrypt"),
        x509.NameAttribute(NameOID.COMMON_NAME, "E6"),
    ])
    root_name = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Internet Security Research Group"),
        x509.NameAttribute(NameOID.COMMON_NAME, "ISRG Root X2"),
    ])
    inter = (
        x509.CertificateBuilder()
        .subject_name(inter_name)
        .issuer_name(root_name)
        .public_key(inter_key.public_key())
        .serial_number(0x00B0573E9173972770DBB487CB3A452B38)
        .not_valid_before(dt.datetime(2024, 3, 13, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2027, 3, 12, 23, 59, 59, tzinfo=dt.UTC))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(inter_key, hashes.SHA384(), ecdsa_deterministic=True)
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(inter_name)
        .public_key(leaf_key.public_key())
        .serial_number(0x03A1F2B7C4D5E6F708192A3B4C5D6E7F8091)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(inter_key, hashes.SHA256(), ecdsa_deterministic=True)
    )
    return PoolCert(leaf.public_bytes(serialization.Encoding.DER),
                    inter.public_bytes(serialization.Encoding.DER))


def tls12_server_flight(rng: random.Random, certs: PoolCert) -> bytes:
    """ServerHello (TLS 1.2, ECDHE-ECDSA-AES256-GCM), Certificate, ServerKeyExchange,
    ServerHelloDone, in one handshake record as OpenSSL writes them."""
    sh_exts = tls_ext(0xFF01, b"\x00") + tls_ext(11, b"\x03\x00\x01\x02") + tls_ext(23, b"")
    sh = (struct.pack("!H", 0x0303) + rng.randbytes(32) + b"\x20" + rng.randbytes(32)
          + struct.pack("!HB", 0xC02C, 0) + struct.pack("!H", len(sh_exts)) + sh_exts)
    chain = b"".join(len(c).to_bytes(3, "big") + c for c in (certs.leaf, certs.chain))
    cert_msg = len(chain).to_bytes(3, "big") + chain
    signature = b"\x30\x45\x02\x20" + rng.randbytes(32) + b"\x02\x21\x00" + rng.randbytes(32)
    ske = (b"\x03\x00\x1d\x20" + rng.randbytes(32) + struct.pack("!H", 0x0403)
           + struct.pack("!H", len(signature)) + signature)
    msgs = (tls_handshake(2, sh) + tls_handshake(11, cert_msg) + tls_handshake(12, ske)
            + tls_handshake(14, b""))
    return tls_record(22, msgs)


def tls13_eager(conn: TcpConn, ts: float, hello: bytes, first: bytes, reply: bytes, *,
                cert_size: int = 2400) -> float:
    """A TLS 1.3 handshake as an OpenSSL client really runs it: its Finished and its first
    record leave together, the server's session tickets come back with the reply."""
    rng = conn.cap.rng
    t = conn.send(ts, True, hello)
    t = conn.send(t + conn.rtt + 0.004, False, tls13_server_flight(rng, hello[44:76], cert_size))
    t = conn.send(t + 0.0012, True, tls_record(20, b"\x01") + app_data(rng, 36) + first)
    return conn.send(t + conn.rtt + 0.0005, False, app_data(rng, 233) + app_data(rng, 233)
                     + reply)


def tls13_open(conn: TcpConn, ts: float, hello: bytes, *, cert_size: int = 2400) -> float:
    """Handshake of a TLS 1.3 session on an open connection; returns when app data may flow."""
    rng = conn.cap.rng
    session_id = hello[44:76]
    t = conn.send(ts, True, hello)
    t = conn.send(t + conn.rtt + 0.004, False, tls13_server_flight(rng, session_id, cert_size))
    t = conn.send(t + 0.0012, True, tls_record(20, b"\x01") + app_data(rng, 36))
    # Two NewSessionTicket messages, as OpenSSL servers send after the client Finished.
    return conn.send(t + conn.rtt + 0.0005, False, app_data(rng, 233) + app_data(rng, 233))


def tls12_open(conn: TcpConn, ts: float, hello: bytes, certs: PoolCert) -> float:
    rng = conn.cap.rng
    t = conn.send(ts, True, hello)
    t = conn.send(t + conn.rtt + 0.003, False, tls12_server_flight(rng, certs))
    cke = tls_record(22, tls_handshake(16, b"\x20" + rng.randbytes(32)))
    t = conn.send(t + 0.0015, True, cke + tls_record(20, b"\x01")
                  + tls_record(22, rng.randbytes(40)))
    ticket = tls_record(22, tls_handshake(4, struct.pack("!IH", 7200, 192) + rng.randbytes(192)))
    return conn.send(t + conn.rtt + 0.001, False,
                     ticket + tls_record(20, b"\x01") + tls_record(22, rng.randbytes(40)))


# ---------------------------------------------------------------------------------------------
# Mining sessions (reused by several scenarios)
# ---------------------------------------------------------------------------------------------

XMRIG_AGENT = "XMRig/6.21.0 (Linux x86_64) libuv/1.44.2 gcc/11.2.0"
XMRIG_ALGOS = [
    "cn/1", "cn/2", "cn/r", "cn/fast", "cn/half", "cn/xao", "cn/rto", "cn/rwz", "cn/zls",
    "cn/double", "cn/ccx", "cn-lite/1", "cn-heavy/0", "cn-heavy/tube", "cn-heavy/xhv",
    "cn-pico", "cn-pico/tlo", "cn/upx2", "rx/0", "rx/wow", "rx/arq", "rx/graft", "rx/sfx",
    "rx/keva", "rx/yada", "argon2/chukwa", "argon2/chukwav2", "argon2/ninja", "ghostrider",
]
MONERO_WALLET = ("48edfHu7V9Z84YzzMa6fUueoELZ9ZRXq9VetWzYGzKt52XU5xvqgzYnDK9URnRoJMk1j8nLwEVs"
                 "aSWJ4fhdUyZijBGUicoD")
ZCASH_SOLUTION_LEN = 1344  # Equihash 200,9


class Session:
    """State shared by the dialect loops: the connection, its rng and the methods seen."""

    def __init__(self, conn: TcpConn) -> None:
        self.conn = conn
        self.rng = conn.cap.rng
        self.methods: set[str] = set()
        self.next_id = 1

    def client(self, ts: float, obj: dict[str, Any], *, spaced: bool = False) -> float:
        if "method" in obj:
            self.methods.add(str(obj["method"]))
        return self.conn.send(ts, True, jline(obj, spaced=spaced))

    def pool(self, ts: float, *objs: dict[str, Any], spaced: bool = False) -> float:
        for obj in objs:
            if "method" in obj:
                self.methods.add(str(obj["method"]))
        return self.conn.send(ts, False, b"".join(jline(o, spaced=spaced) for o in objs))

    def reply_at(self, ts: float) -> float:
        return ts + self.conn.rtt + self.rng.uniform(0.0005, 0.004)


class BitcoinJobs:
    """mining.notify parameters that change like a real pool's."""

    def __init__(self, rng: random.Random, ntime: int) -> None:
        self.rng = rng
        self.job = rng.randrange(0x1000, 0xFFFF)
        self.prevhash = hx(rng, 28) + "00000000"
        self.ntime = ntime

    def notify(self, ts: float, *, clean: bool = False) -> list[Any]:
        self.job += 1
        if clean:
            self.prevhash = hx(self.rng, 28) + "00000000"
        branches = [hx(self.rng, 32) for _ in range(self.rng.randrange(9, 13))]
        coinb1 = ("02000000010000000000000000000000000000000000000000000000000000000000000000ffff"
                  "ffff4b03" + hx(self.rng, 3) + "0004" + hx(self.rng, 4) + "04" + hx(self.rng, 4)
                  + "0c")
        coinb2 = ("0a636b706f6f6c112f736c7573682f0000000003" + hx(self.rng, 40) + "00000000")
        return [f"{self.job:x}", self.prevhash, coinb1, coinb2, branches, "20000000", "17034219",
                f"{int(ts):08x}", clean]


def stratum_v1_loop(s: Session, ts: float, end: float, jobs: BitcoinJobs, *,
                    submit: Callable[[int, str, float], dict[str, Any]], spaced_pool: bool,
                    spaced_client: bool = False, share_every: float = 9.0,
                    difficulty_changes: bool = False,
                    extra_pool: Callable[[float], float] | None = None) -> float:
    """Job pushes every 15-35 s, shares at a Poisson rate, a difficulty retarget now and then."""
    next_job = ts + s.rng.uniform(15, 35)
    next_share = ts + s.rng.expovariate(1 / share_every)
    next_retarget = ts + s.rng.uniform(60, 90) if difficulty_changes else end + 1
    current = f"{jobs.job:x}"
    t = ts
    while True:
        nxt = min(next_job, next_share, next_retarget)
        if nxt >= end:
            return t
        if nxt == next_job:
            clean = s.rng.random() < 0.25
            params = jobs.notify(nxt, clean=clean)
            current = params[0]
            t = s.pool(nxt, {"id": None, "method": "mining.notify", "params": params},
                       spaced=spaced_pool)
            next_job = nxt + s.rng.uniform(15, 35)
            if extra_pool is not None:
                t = extra_pool(t)
        elif nxt == next_share:
            msg_id = s.next_id
            s.next_id += 1
            t = s.conn.send(nxt, True, jline(submit(msg_id, current, nxt),
                                             spaced=spaced_client))
            s.methods.add("mining.submit")
            ok = s.rng.random() > 0.04
            result: dict[str, Any] = {"id": msg_id, "result": ok,
                                      "error": None if ok else [23, "Low difficulty share",
                                                                None]}
            t = s.pool(s.reply_at(t), result, spaced=spaced_pool)
            next_share = t + s.rng.expovariate(1 / share_every)
        else:
            t = s.pool(nxt, {"id": None, "method": "mining.set_difficulty",
                             "params": [s.rng.choice([2048, 4096, 8192])]}, spaced=spaced_pool)
            next_retarget = end + 1


def cgminer_session(conn: TcpConn, ts: float, duration: float, *, worker: str = "acme.rig01",
                    agent: str = "cgminer/4.10.0") -> tuple[float, set[str]]:
    """cgminer/bfgminer: sprintf-built JSON with ", " and ": ", slush-style Python pool."""
    s = Session(conn)
    rng = s.rng
    t = conn.open(ts)
    t = s.client(t + 0.0004, {"id": 0, "method": "mining.subscribe", "params": [agent]},
                 spaced=True)
    t = s.pool(s.reply_at(t), {"id": 0, "result": [[["mining.set_difficulty", hx(rng, 16)],
                                                    ["mining.notify", hx(rng, 16)]],
                                                   hx(rng, 4), 4], "error": None}, spaced=True)
    t = s.client(t + 0.0011, {"id": 1, "method": "mining.authorize", "params": [worker, "x"]},
                 spaced=True)
    jobs = BitcoinJobs(rng, int(ts))
    t = s.pool(s.reply_at(t), {"id": 1, "result": True, "error": None}, spaced=True)
    t = s.pool(t + 0.0008, {"id": None, "method": "mining.set_difficulty", "params": [1024]},
               {"id": None, "method": "mining.notify", "params": jobs.notify(t, clean=True)},
               spaced=True)
    s.next_id = 2

    def submit(msg_id: int, job: str, now: float) -> dict[str, Any]:
        # cgminer's own order: params, id, method.
        return {"params": [worker, job, hx(rng, 4), f"{int(now):08x}", hx(rng, 4)],
                "id": msg_id, "method": "mining.submit"}

    t = stratum_v1_loop(s, t, ts + duration, jobs, submit=submit, spaced_pool=True,
                        spaced_client=True, difficulty_changes=True)
    return t, s.methods


def xmrig_session(conn: TcpConn, ts: float, duration: float, *, agent: str = XMRIG_AGENT,
                  rigid: str = "web-03", opened: bool = False,
                  tls: bool = False, login: str = MONERO_WALLET) -> tuple[float, set[str]]:
    """XMRig CryptoNote stratum: compact JSON, login with algo list, job pushes, keepalived.
    With tls=True the same exchange is sent as TLS 1.3 records of the same sizes."""
    s = Session(conn)
    rng = s.rng
    t = ts if opened else conn.open(ts)

    def out(now: float, from_client: bool, obj: dict[str, Any]) -> float:
        if "method" in obj:
            s.methods.add(str(obj["method"]))
        line = jline(obj)
        payload = app_data(rng, len(line)) if tls else line
        return conn.send(now, from_client, payload)

    rpc_id = hx(rng, 16)
    height = 3_562_000 + rng.randrange(5000)
    seed_hash = hx(rng, 32)

    def job() -> dict[str, Any]:
        nonlocal height
        height += 1
        return {"blob": "1010" + hx(rng, 35) + "00000000" + hx(rng, 33) + "02",
                "job_id": base64.b64encode(rng.randbytes(21)).decode(), "target": "b88d0600",
                "algo": "rx/0", "height": height, "seed_hash": seed_hash}

    t = out(t + 0.0003, True, {"id": 1, "jsonrpc": "2.0", "method": "login", "params": {
        "login": login, "pass": "x", "agent": agent, "rigid": rigid,
        "algo": XMRIG_ALGOS}})
    current = job()
    t = out(s.reply_at(t), False, {"id": 1, "jsonrpc": "2.0", "error": None, "result": {
        "id": rpc_id, "job": current, "extensions": ["algo", "nicehash", "connect", "tls",
                                                     "keepalive"], "status": "OK"}})
    msg_id = 2
    last_client = t
    end = ts + duration
    next_job = t + rng.uniform(20, 60)
    next_share = t + rng.expovariate(1 / 35)
    while True:
        keepalive = last_client + 60
        nxt = min(next_job, next_share, keepalive)
        if nxt >= end:
            return t, s.methods
        if nxt == next_job:
            current = job()
            t = out(nxt, False, {"jsonrpc": "2.0", "method": "job", "params": current})
            next_job = nxt + rng.uniform(20, 60)
        elif nxt == next_share:
            t = out(nxt, True, {"id": msg_id, "jsonrpc": "2.0", "method": "submit", "params": {
                "id": rpc_id, "job_id": current["job_id"], "nonce": hx(rng, 4),
                "result": hx(rng, 31) + "00", "algo": "rx/0"}})
            last_client = t
            t = out(s.reply_at(t), False, {"id": msg_id, "jsonrpc": "2.0", "error": None,
                                           "result": {"status": "OK"}})
            msg_id += 1
            next_share = t + rng.expovariate(1 / 35)
        else:
            t = out(nxt, True, {"id": msg_id, "jsonrpc": "2.0", "method": "keepalived",
                                "params": {"id": rpc_id}})
            last_client = t
            t = out(s.reply_at(t), False, {"id": msg_id, "jsonrpc": "2.0", "error": None,
                                           "result": {"status": "KEEPALIVED"}})
            msg_id += 1


def dns_lookup(cap: Capture, ts: float, client: Host, resolver: Host, name: str,
               chain: Sequence[tuple[str, int, int, str]], *, aaaa: Sequence[tuple[str, int,
               int, str]] | None = None, iface: int = 0, port: int | None = None) -> float:
    """glibc's stub: A and AAAA queries from one socket, answers a few ms later."""
    port = port or cap.eport()
    qid_a, qid_aaaa = cap.rng.randrange(1 << 16), cap.rng.randrange(1 << 16)
    cap.udp(ts, client, port, resolver, 53, dns_query(qid_a, name, 1), iface=iface)
    cap.udp(ts + 0.00004, client, port, resolver, 53, dns_query(qid_aaaa, name, 28), iface=iface)
    t = ts + cap.rng.uniform(0.003, 0.02)
    cap.udp(t, resolver, 53, client, port, dns_answer(qid_a, name, 1, chain), iface=iface)
    cnames = [r for r in chain if r[1] == 5]
    cap.udp(t + 0.0002, resolver, 53, client, port,
            dns_answer(qid_aaaa, name, 28, list(aaaa) if aaaa is not None else cnames),
            iface=iface)
    return t + 0.0003


# ---------------------------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------------------------


@dataclass
class Result:
    alerts: list[dict[str, Any]]
    unscored: list[dict[str, Any]] = field(default_factory=list)
    dns: list[dict[str, Any]] = field(default_factory=list)
    framing: Callable[[Rec], bytes] = ether
    linktype: int = LINKTYPE_ETHERNET
    # pcapng only: (linktype, name, framing) per interface
    interfaces: list[tuple[int, str, Callable[[Rec], bytes]]] | None = None


@dataclass(frozen=True)
class Scenario:
    file: str
    seed: int
    description: str
    build: Callable[[Capture], Result]


def _methods(m: set[str]) -> list[str]:
    return sorted(m)


def sc_stratum_cgminer(cap: Capture) -> Result:
    miner = cap.lan("10.20.4.17", "ac:1f:6b")
    pool = cap.remote("203.0.113.10", ttl=51)
    conn = cap.tcp(miner, pool, 3333, rtt=0.041)
    t, methods = cgminer_session(conn, T0 + 1.25, 190)
    conn.close(t + 3.2)
    return Result([conn.alert("stratum-v1", methods=_methods(methods))])


def sc_stratum_cpuminer(cap: Capture) -> Result:
    miner = cap.lan("192.168.10.34", "52:54:00")
    pool = cap.remote("203.0.113.11", ttl=49)
    conn = cap.tcp(miner, pool, 3333, rtt=0.063)
    s = Session(conn)
    rng = s.rng
    worker = "dq3vT.cpu"
    t = conn.open(T0 + 600.5)
    # pooler cpuminer: the first subscribe has no user agent; ckpool answers compactly.
    t = s.client(t + 0.0002, {"id": 1, "method": "mining.subscribe", "params": []}, spaced=True)
    t = s.pool(s.reply_at(t), {"id": 1, "result": [[["mining.notify", hx(rng, 4)]], hx(rng, 4),
                                                   8], "error": None})
    t = s.client(t + 0.0005, {"id": 2, "method": "mining.authorize", "params": [worker, "x"]},
                 spaced=True)
    jobs = BitcoinJobs(rng, int(t))
    t = s.pool(s.reply_at(t), {"id": 2, "result": True, "error": None},
               {"id": None, "method": "mining.set_difficulty", "params": [0.05]},
               {"id": None, "method": "mining.notify", "params": jobs.notify(t, clean=True)})

    def submit(job: str, now: float) -> bytes:
        # cpuminer's sprintf writes every submit with "id":4, without a space after the colon.
        return (f'{{"method": "mining.submit", "params": ["{worker}", "{job}", "{hx(rng, 4)}", '
                f'"{int(now):08x}", "{hx(rng, 4)}"], "id":4}}\n').encode()

    end = t + 170
    next_job = t + rng.uniform(15, 35)
    next_share = t + rng.expovariate(1 / 12)
    while True:
        nxt = min(next_job, next_share)
        if nxt >= end:
            break
        if nxt == next_job:
            params = jobs.notify(nxt, clean=rng.random() < 0.2)
            t = s.pool(nxt, {"id": None, "method": "mining.notify", "params": params})
            next_job = nxt + rng.uniform(15, 35)
        else:
            t = conn.send(nxt, True, submit(f"{jobs.job:x}", nxt))
            s.methods.add("mining.submit")
            t = s.pool(s.reply_at(t), {"id": 4, "result": True, "error": None})
            next_share = t + rng.expovariate(1 / 12)
    conn.reset(t + 7.5)
    return Result([conn.alert("stratum-v1", methods=_methods(s.methods))])


def sc_stratum_zcash(cap: Capture) -> Result:
    miner = cap.lan("10.20.7.5", "00:50:56")
    pool = cap.remote("203.0.113.12", ttl=47)
    conn = cap.tcp(miner, pool, 2142, rtt=0.028)
    s = Session(conn)
    rng = s.rng
    worker = "acme.zrig"
    t = conn.open(T0 + 1200.0)
    t = s.client(t + 0.0003, {"id": 1, "method": "mining.subscribe",
                              "params": ["nheqminer/0.5c", None, "zec-eu.suprnova.cc", "2142"]})
    nonce1 = hx(rng, 4)
    t = s.pool(s.reply_at(t), {"id": 1, "result": [None, nonce1], "error": None})
    t = s.client(t + 0.0004, {"id": 2, "method": "mining.authorize", "params": [worker, "x"]})
    t = s.pool(s.reply_at(t), {"id": 2, "result": True, "error": None})
    target = "0008" + "0" * 60
    job_no = rng.randrange(0x100, 0xFFF)

    def notify(now: float, clean: bool) -> dict[str, Any]:
        nonlocal job_no
        job_no += 1
        return {"id": None, "method": "mining.notify", "params": [
            f"{job_no:x}", "04000000", hx(rng, 32), hx(rng, 32), "0" * 64,
            struct.pack("<I", int(now)).hex(), "8d6d051d", clean]}

    t = s.pool(t + 0.001, {"id": None, "method": "mining.set_target", "params": [target]},
               notify(t, True))
    end = t + 200
    msg_id = 3
    next_job = t + rng.uniform(20, 40)
    next_share = t + rng.expovariate(1 / 30)
    while True:
        nxt = min(next_job, next_share)
        if nxt >= end:
            break
        if nxt == next_job:
            msgs = [notify(nxt, rng.random() < 0.3)]
            if rng.random() < 0.3:
                target = f"{rng.randrange(4, 16):04x}" + "0" * 60
                msgs.insert(0, {"id": None, "method": "mining.set_target", "params": [target]})
            t = s.pool(nxt, *msgs)
            next_job = nxt + rng.uniform(20, 40)
        else:
            solution = "fd4005" + hx(rng, ZCASH_SOLUTION_LEN)
            t = s.client(nxt, {"id": msg_id, "method": "mining.submit", "params": [
                worker, f"{job_no:x}", struct.pack("<I", int(nxt)).hex(), hx(rng, 28),
                solution]})
            t = s.pool(s.reply_at(t), {"id": msg_id, "result": True, "error": None})
            msg_id += 1
            next_share = t + rng.expovariate(1 / 30)
    conn.close(t + 2.0)
    return Result([conn.alert("stratum-v1", methods=_methods(s.methods))])


def sc_stratum_extensions(cap: Capture) -> Result:
    miner = cap.lan("10.20.9.201", "b4:a9:fc")  # an ASIC's controller board
    resolver = cap.lan("10.20.0.53", "00:50:56")
    pool = cap.remote("203.0.113.13", ttl=53)
    pool2 = cap.remote("203.0.113.14", ttl=53)
    worker = "acme.s19k"
    alerts = []
    methods_all: list[set[str]] = []
    t = T0 + 1800.0
    for idx, server in enumerate((pool, pool2)):
        conn = cap.tcp(miner, server, 3333, rtt=0.022)
        s = Session(conn)
        rng = s.rng
        if idx == 1:
            t = dns_lookup(cap, t + 0.4, miner, resolver, "eu.stratum.slushpool.com",
                           [("eu.stratum.slushpool.com", 1, 300, server.ip)]) + 0.001
        t = conn.open(t)
        t = s.client(t + 0.0002, {"id": 1, "method": "mining.configure", "params": [
            ["version-rolling"], {"version-rolling.mask": "1fffe000",
                                  "version-rolling.min-bit-count": 2}]})
        t = s.pool(s.reply_at(t), {"id": 1, "result": {"version-rolling": True,
                                                       "version-rolling.mask": "1fffe000"},
                                   "error": None})
        t = s.client(t + 0.0003, {"id": 2, "method": "mining.subscribe",
                                  "params": ["bmminer/2.0.0"]})
        t = s.pool(s.reply_at(t), {"id": 2, "result": [[["mining.notify", hx(rng, 8)]],
                                                       hx(rng, 4), 8], "error": None})
        t = s.client(t + 0.0002, {"id": 3, "method": "mining.suggest_difficulty",
                                  "params": [65536]})
        t = s.client(t + 0.0002, {"id": 4, "method": "mining.authorize",
                                  "params": [worker, "123"]})
        t = s.pool(s.reply_at(t), {"id": 3, "result": True, "error": None},
                   {"id": 4, "result": True, "error": None})
        t = s.client(t + 0.0003, {"id": 5, "method": "mining.extranonce.subscribe",
                                  "params": []})
        jobs = BitcoinJobs(rng, int(t))
        t = s.pool(s.reply_at(t), {"id": 5, "result": True, "error": None},
                   {"id": None, "method": "mining.set_difficulty", "params": [65536]},
                   {"id": None, "method": "mining.notify", "params": jobs.notify(t, clean=True)})
        s.next_id = 6

        def submit(msg_id: int, job: str, now: float, rng: random.Random = rng) -> dict[str, Any]:
            return {"id": msg_id, "method": "mining.submit", "params": [
                worker, job, hx(rng, 8), f"{int(now):08x}", hx(rng, 4),
                f"{rng.randrange(0, 0xFFFF) << 13 & 0x1FFFE000:08x}"]}

        if idx == 0:
            pings = iter(range(1, 100))

            def extra(now: float, s: Session = s, rng: random.Random = rng,
                      pings: Iterator[int] = pings) -> float:
                roll = rng.random()
                if roll < 0.35:
                    ping_id = next(pings)
                    now = s.pool(now + 0.5, {"id": ping_id, "method": "mining.ping",
                                             "params": []})
                    return s.conn.send(now + 0.002, True, jline({"id": ping_id, "result": "pong",
                                                                 "error": None}))
                if roll < 0.55:
                    return s.pool(now + 0.2, {"id": None, "method": "mining.set_extranonce",
                                              "params": [hx(rng, 4), 8]})
                return now

            t = stratum_v1_loop(s, t, t + 150, jobs, submit=submit,
                                spaced_pool=False, share_every=6.0, extra_pool=extra)
            t = s.pool(t + 4.0, {"id": None, "method": "client.show_message", "params": [
                "Pool maintenance at 12:00 UTC, reconnecting miners to eu.stratum.slushpool.com"]})
            t = s.pool(t + 6.0, {"id": None, "method": "mining.ping", "params": []})
            t = s.pool(t + 10.0, {"id": None, "method": "client.reconnect",
                                  "params": ["eu.stratum.slushpool.com", 3333, 0]})
            t = conn.close(t + 0.003, by_client=True)
        else:
            t = stratum_v1_loop(s, t, t + 60, jobs, submit=submit,
                                spaced_pool=False, share_every=6.0)
            t = conn.close(t + 1.5)
        methods_all.append(s.methods)
        alerts.append(conn.alert("stratum-v1", methods=_methods(s.methods)))
    return Result(alerts, dns=[{"client_ip": miner.ip, "name": "eu.stratum.slushpool.com",
                               "answers": [pool2.ip]}])


def sc_cryptonote_xmrig(cap: Capture) -> Result:
    miner = cap.lan("10.20.12.8", "00:50:56")
    pool = cap.remote("198.51.100.23", ttl=50)
    conn = cap.tcp(miner, pool, 3333, rtt=0.094)
    t, methods = xmrig_session(conn, T0 + 2400.0, 300)
    conn.close(t + 1.0)
    return Result([conn.alert("cryptonote", methods=_methods(methods))])


def sc_cryptonote_getjob(cap: Capture) -> Result:
    miner = cap.lan("192.168.20.41", "f8:bc:12")
    pool = cap.remote("198.51.100.31", ttl=55)
    conn = cap.tcp(miner, pool, 14444, rtt=0.031)
    s = Session(conn)
    rng = s.rng
    t = conn.open(T0 + 3000.0)
    # xmr-stak writes method first and id last.
    t = s.client(t + 0.0002, {"method": "login", "params": {
        "login": MONERO_WALLET, "pass": "x", "rigid": "",
        "agent": "xmr-stak/2.10.8/1b4a4f4/master/lin/cpu/monero/0"}, "id": 1})
    rpc_id = str(rng.randrange(10**14, 10**15))

    def job() -> dict[str, Any]:
        return {"blob": "0e0e" + hx(rng, 35) + "00000000" + hx(rng, 33) + "05",
                "job_id": str(rng.randrange(10**14, 10**15)), "target": "711b0d00"}

    current = job()
    t = s.pool(s.reply_at(t), {"id": 1, "jsonrpc": "2.0", "error": None,
                               "result": {"id": rpc_id, "job": current, "status": "OK"}})
    msg_id = 2
    end = t + 240
    while t < end:
        for _ in range(rng.randrange(1, 4)):
            nxt = t + rng.expovariate(1 / 15)
            if nxt >= end:
                break
            t = s.client(nxt, {"method": "submit", "params": {
                "id": rpc_id, "job_id": current["job_id"], "nonce": hx(rng, 4),
                "result": hx(rng, 31) + "00"}, "id": msg_id})
            t = s.pool(s.reply_at(t), {"id": msg_id, "jsonrpc": "2.0", "error": None,
                                       "result": {"status": "OK"}})
            msg_id += 1
        # Pools without job push: the miner asks for fresh work itself.
        t = s.client(t + rng.uniform(20, 30), {"method": "getjob", "params": {"id": rpc_id},
                                                "id": msg_id})
        current = job()
        t = s.pool(s.reply_at(t), {"id": msg_id, "jsonrpc": "2.0", "error": None,
                                   "result": current})
        msg_id += 1
    conn.close(t + 0.5)
    return Result([conn.alert("cryptonote", methods=_methods(s.methods))])


ETH_WALLET = "0x9a3e5c4f0b2d8e7a6c1f3b5d7e9a2c4e6f8b0d1a"
ETH_TARGET = "0000000112e0be826d694b2e62d01511f12a6061fbaec8bc02357593e70e52ba"


def eth_work(rng: random.Random) -> list[str]:
    return ["0x" + hx(rng, 32), "0x" + hx(rng, 32), "0x" + ETH_TARGET]


def sc_eth_proxy(cap: Capture) -> Result:
    miner = cap.lan("10.20.15.22", "3c:ec:ef")
    pool = cap.remote("198.51.100.40", ttl=54)
    conn = cap.tcp(miner, pool, 9999, rtt=0.038)
    s = Session(conn)
    rng = s.rng
    t = conn.open(T0 + 3600.0)
    # Claymore's eth-proxy client: spaced JSON, "worker" member, method last.
    t = s.client(t + 0.0003, {"worker": "rig7", "jsonrpc": "2.0", "params": [ETH_WALLET, "x"],
                              "id": 2, "method": "eth_submitLogin"}, spaced=True)
    t = s.pool(s.reply_at(t), {"id": 2, "jsonrpc": "2.0", "result": True})
    t = s.client(t + 0.0004, {"worker": "", "jsonrpc": "2.0", "params": [], "id": 3,
                              "method": "eth_getWork"}, spaced=True)
    work = eth_work(rng)
    t = s.pool(s.reply_at(t), {"id": 3, "jsonrpc": "2.0", "result": work})
    end = t + 200
    next_push = t + rng.uniform(8, 20)
    next_share = t + rng.expovariate(1 / 25)
    next_rate = t + 30
    while True:
        nxt = min(next_push, next_share, next_rate)
        if nxt >= end:
            break
        if nxt == next_push:
            work = eth_work(rng)
            t = s.pool(nxt, {"id": 0, "jsonrpc": "2.0", "result": work})
            next_push = nxt + rng.uniform(8, 20)
        elif nxt == next_share:
            t = s.client(nxt, {"id": 4, "jsonrpc": "2.0", "method": "eth_submitWork", "params": [
                "0x" + hx(rng, 8), work[0], "0x" + hx(rng, 32)], "worker": "rig7"},
                spaced=True)
            t = s.pool(s.reply_at(t), {"id": 4, "jsonrpc": "2.0", "result": True})
            next_share = t + rng.expovariate(1 / 25)
        else:
            t = s.client(nxt, {"id": 6, "jsonrpc": "2.0", "method": "eth_submitHashrate",
                               "params": [f"0x{rng.randrange(180, 200) * 10**6:x}",
                                          "0x" + hx(rng, 32)]}, spaced=True)
            t = s.pool(s.reply_at(t), {"id": 6, "jsonrpc": "2.0", "result": True})
            next_rate = nxt + 30
    conn.close(t + 0.8)
    return Result([conn.alert("eth-proxy", methods=_methods(s.methods))])


def sc_ethereumstratum_v1(cap: Capture) -> Result:
    miner = cap.lan("10.20.15.23", "3c:ec:ef")
    pool = cap.remote("198.51.100.41", ttl=54)
    conn = cap.tcp(miner, pool, 4444, rtt=0.029)
    s = Session(conn)
    rng = s.rng
    t = conn.open(T0 + 4200.0)
    t = s.client(t + 0.0003, {"id": 1, "method": "mining.subscribe",
                              "params": ["EthMiner/0.19.0", "EthereumStratum/1.0.0"]})
    extranonce = hx(rng, 2)
    t = s.pool(s.reply_at(t), {"id": 1, "result": [["mining.notify", hx(rng, 16),
                                                    "EthereumStratum/1.0.0"], extranonce],
                               "error": None})
    t = s.client(t + 0.0003, {"id": 2, "method": "mining.authorize",
                              "params": [ETH_WALLET + ".rig8", "x"]})
    seed = hx(rng, 32)

    def notify(clean: bool) -> dict[str, Any]:
        return {"id": None, "method": "mining.notify",
                "params": [hx(rng, 3), seed, hx(rng, 32), clean]}

    t = s.pool(s.reply_at(t), {"id": 2, "result": True, "error": None},
               {"id": None, "method": "mining.set_difficulty", "params": [0.5]}, notify(True))
    current = ""
    end = t + 180
    msg_id = 3
    next_job = t + rng.uniform(8, 16)
    next_share = t + rng.expovariate(1 / 20)
    while True:
        nxt = min(next_job, next_share)
        if nxt >= end:
            break
        if nxt == next_job:
            msg = notify(rng.random() < 0.3)
            current = msg["params"][0]
            t = s.pool(nxt, msg)
            next_job = nxt + rng.uniform(8, 16)
        else:
            t = s.client(nxt, {"id": msg_id, "method": "mining.submit",
                               "params": [ETH_WALLET + ".rig8", current or "0", hx(rng, 6)]})
            t = s.pool(s.reply_at(t), {"id": msg_id, "result": True, "error": None})
            msg_id += 1
            next_share = t + rng.expovariate(1 / 20)
    conn.close(t + 1.1)
    return Result([conn.alert("ethereumstratum-1", methods=_methods(s.methods))])


def es2_session(cap: Capture, ts: float, *, gzip_encoding: bool) -> Result:
    miner = cap.lan("10.20.15.24", "3c:ec:ef")
    pool = cap.remote("198.51.100.43" if gzip_encoding else "198.51.100.42", ttl=54)
    conn = cap.tcp(miner, pool, 4444, rtt=0.031)
    s = Session(conn)
    rng = s.rng
    t = conn.open(ts)
    t = s.client(t + 0.0003, {"id": 0, "method": "mining.hello", "params": {
        "agent": "ethminer-0.19.0", "host": "eu1.ethermine.org", "port": "115c",
        "proto": "EthereumStratum/2.0.0"}})
    encoding = "gzip" if gzip_encoding else "plain"
    t = s.pool(s.reply_at(t), {"id": 0, "result": {
        "proto": "EthereumStratum/2.0.0", "encoding": encoding, "resume": 1, "timeout": 30,
        "maxerrors": 5, "node": "Geth/v1.10.26-stable/linux-amd64/go1.19.3"}})

    def send(now: float, from_client: bool, *objs: dict[str, Any]) -> float:
        for obj in objs:
            if "method" in obj:
                s.methods.add(str(obj["method"]))
        if gzip_encoding:
            # Framing assumption (see pcaps/README.md): one gzip member per JSON line.
            data = b"".join(gzip.compress(jline(o), mtime=0) for o in objs)
        else:
            data = b"".join(jline(o) for o in objs)
        return conn.send(now, from_client, data)

    t = send(t + 0.0004, True, {"id": 1, "method": "mining.subscribe", "params": []})
    t = send(s.reply_at(t), False, {"id": 1, "result": "s-" + hx(rng, 6)})
    t = send(t + 0.0003, True, {"id": 2, "method": "mining.authorize",
                                "params": [ETH_WALLET + ".rig9", "x"]})
    t = send(s.reply_at(t), False, {"id": 2, "result": "0-" + hx(rng, 2)})
    height = 0xF4A210 + rng.randrange(100)

    def notify() -> dict[str, Any]:
        nonlocal height
        height += 1
        return {"method": "mining.notify", "params": [hx(rng, 3), f"{height:x}", hx(rng, 32),
                                                      "0"]}

    t = send(t + 0.0005, False, {"method": "mining.set", "params": {
        "epoch": "1f5", "target": ETH_TARGET,
        "algo": "ethash", "extranonce": hx(rng, 3)}}, notify())
    end = t + 150
    msg_id = 3
    job = ""
    next_job = t + rng.uniform(8, 16)
    next_share = t + rng.expovariate(1 / 20)
    while True:
        nxt = min(next_job, next_share)
        if nxt >= end:
            break
        if nxt == next_job:
            msg = notify()
            job = msg["params"][0]
            t = send(nxt, False, msg)
            next_job = nxt + rng.uniform(8, 16)
        else:
            t = send(nxt, True, {"id": msg_id, "method": "mining.submit",
                                 "params": [job or "0", hx(rng, 5), "rig9"]})
            t = send(s.reply_at(t), False, {"id": msg_id, "result": True})
            msg_id += 1
            next_share = t + rng.expovariate(1 / 20)
    conn.close(t + 0.9)
    return Result([conn.alert("ethereumstratum-2", methods=_methods(s.methods))])


def sc_es2_plain(cap: Capture) -> Result:
    return es2_session(cap, T0 + 4800.0, gzip_encoding=False)


def sc_es2_gzip(cap: Capture) -> Result:
    return es2_session(cap, T0 + 5400.0, gzip_encoding=True)


def _json_body(obj: Any, *, spaced: bool = False) -> bytes:
    return json.dumps(obj, separators=(", ", ": ") if spaced else (",", ":")).encode()


def bfg_post(host: str, body: bytes, auth: str, *, path: str = "/") -> bytes:
    return http_request("POST", path, [
        ("Host", host),
        ("Authorization", "Basic " + base64.b64encode(auth.encode()).decode()),
        ("Accept", "*/*"),
        ("Accept-Encoding", "deflate, gzip"),
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
        ("User-Agent", "bfgminer/5.2.0"),
        ("X-Mining-Extensions", "midstate rollntime"),
    ], body)


def sc_getwork_http(cap: Capture) -> Result:
    miner = cap.lan("10.20.16.9", "ac:1f:6b")
    pool = cap.remote("203.0.113.50", ttl=48)
    host = f"{pool.ip}:8332"
    conn = cap.tcp(miner, pool, 8332, rtt=0.045)
    lp = cap.tcp(miner, pool, 8332, rtt=0.045)
    rng = cap.rng
    auth = "acme.gw1:x"

    def work_response(ts: float, msg_id: int) -> bytes:
        body = _json_body({"result": {
            "midstate": hx(rng, 32),
            "data": "00000002" + hx(rng, 72) + f"{int(ts):08x}" + "1903a30c00000000"
            + "000000800000000000000000000000000000000000000000000000000000000000000000"
            "0000000000000000000000000000000080020000",
            "hash1": "00000000000000000000000000000000000000000000000000000000000000000000008"
                     "000000000000000000000000000000000000000000000000000010000",
            "target": "ffffffffffffffffffffffffffffffffffffffffffffffffffffffff00000000"},
            "error": None, "id": msg_id})
        return http_response("200 OK", [
            ("Content-Type", "application/json"),
            ("X-Long-Polling", "/LP"),
            ("X-Roll-NTime", "expire=120"),
            ("X-Stratum", "stratum+tcp://mint.bitminter.com:3333"),
            ("Date", http_date(ts)),
            ("Content-Length", str(len(body))),
        ], body)

    t = conn.open(T0 + 6000.0)
    req = _json_body({"method": "getwork", "params": [], "id": 0}, spaced=True)
    t = conn.exchange(t + 0.0003, bfg_post(host, req, auth), work_response(t, 0), think=0.006)
    # bfgminer opens its long-poll connection as soon as it sees X-Long-Polling.
    t_lp = lp.open(t + 0.002)
    lp_req = bfg_post(host, _json_body({"method": "getwork", "params": [], "id": 0},
                                       spaced=True), auth, path="/LP")
    t_lp = lp.send(t_lp + 0.0002, True, lp_req)
    msg_id = 1
    end = t + 120
    lp_answered = False
    while t < end:
        nxt = t + rng.uniform(4, 9)
        if not lp_answered and nxt > t_lp + 60:
            lp.send(t_lp + 60.3, False, work_response(t_lp + 60.3, 0))
            lp_answered = True
        if rng.random() < 0.45:
            body = _json_body({"method": "getwork", "params": [
                "00000002" + hx(rng, 72) + f"{int(nxt):08x}1903a30c" + hx(rng, 4)
                + "000000800000000000000000000000000000000000000000000000000000000000000000"
                "0000000000000000000000000000000080020000"], "id": msg_id}, spaced=True)
            resp = _json_body({"result": True, "error": None, "id": msg_id})
            t = conn.exchange(nxt, bfg_post(host, body, auth), http_response("200 OK", [
                ("Content-Type", "application/json"), ("Date", http_date(nxt)),
                ("Content-Length", str(len(resp)))], resp), think=0.004)
        else:
            body = _json_body({"method": "getwork", "params": [], "id": msg_id}, spaced=True)
            t = conn.exchange(nxt, bfg_post(host, body, auth), work_response(nxt, msg_id),
                              think=0.005)
        msg_id += 1
    conn.close(t + 0.3)
    lp.reset(t + 0.31)
    return Result([conn.alert("getwork-http", methods=["getwork"]),
                   lp.alert("getwork-http", methods=["getwork"])])


def sc_getblocktemplate_http(cap: Capture) -> Result:
    miner = cap.lan("10.20.16.10", "ac:1f:6b")
    pool = cap.remote("203.0.113.51", ttl=48)
    host = f"{pool.ip}:9332"
    conn = cap.tcp(miner, pool, 9332, rtt=0.052)
    rng = cap.rng
    auth = "acme.gbt1:x"
    t = conn.open(T0 + 6600.0)
    for msg_id in range(6):
        req = _json_body({"id": msg_id, "method": "getblocktemplate", "params": [{
            "capabilities": ["coinbasetxn", "workid", "coinbase/append"], "maxversion": 4}]},
            spaced=True)
        txs = [{"data": "0100000001" + hx(rng, 110), "hash": hx(rng, 32), "depends": [],
                "fee": rng.randrange(1000, 90000), "sigops": 1} for _ in range(6)]
        template = {"result": {
            "capabilities": ["proposal"], "version": 536870912, "rules": ["csv", "segwit"],
            "previousblockhash": "00000000000000000002" + hx(rng, 22),
            "transactions": txs, "coinbaseaux": {"flags": ""}, "coinbasevalue": 312500000
            + rng.randrange(10**7), "longpollid": hx(rng, 32) + "2811",
            "target": "0000000000000000000342190000000000000000000000000000000000000000",
            "mintime": int(t) - 3000, "mutable": ["time", "transactions", "prevblock"],
            "noncerange": "00000000ffffffff", "sigoplimit": 80000, "sizelimit": 4000000,
            "weightlimit": 4000000, "curtime": int(t), "bits": "17034219",
            "height": 928_513 + msg_id // 3}, "error": None, "id": msg_id}
        body = _json_body(template)
        resp = http_response("200 OK", [("Content-Type", "application/json"),
                                        ("Date", http_date(t)),
                                        ("Content-Length", str(len(body)))], body)
        t = conn.exchange(t + (0.0004 if msg_id == 0 else rng.uniform(10, 25)),
                          bfg_post(host, req, auth), resp, think=0.012)
    block = "00000020" + hx(rng, 76) + "01" + "02000000010000000000000000000000" + hx(rng, 140)
    req = _json_body({"id": 6, "method": "submitblock", "params": [block]}, spaced=True)
    body = _json_body({"result": None, "error": None, "id": 6})
    t = conn.exchange(t + rng.uniform(5, 10), bfg_post(host, req, auth), http_response(
        "200 OK", [("Content-Type", "application/json"), ("Date", http_date(t)),
                   ("Content-Length", str(len(body)))], body))
    conn.close(t + 0.2)
    return Result([conn.alert("getblocktemplate-http",
                              methods=["getblocktemplate", "submitblock"])])


def sc_eth_getwork_http(cap: Capture) -> Result:
    miner = cap.lan("10.20.15.30", "3c:ec:ef")
    pool = cap.remote("198.51.100.44", ttl=54)
    conn = cap.tcp(miner, pool, 8888, rtt=0.036)
    rng = cap.rng
    host = f"{pool.ip}:8888"

    def post(body: bytes) -> bytes:
        # ethminer's getwork client: keep-alive, no User-Agent header at all.
        return http_request("POST", "/" + ETH_WALLET + "/rig10", [
            ("Host", host), ("Accept", "application/json"),
            ("Content-Type", "application/json"), ("Content-Length", str(len(body))),
            ("Connection", "keep-alive")], body)

    def answer(now: float, body: bytes) -> bytes:
        return http_response("200 OK", [("Content-Type", "application/json"),
                                        ("Date", http_date(now)),
                                        ("Content-Length", str(len(body)))], body)

    t = conn.open(T0 + 7200.0)
    msg_id = 1
    end = t + 60
    next_rate = t + 10
    t += 0.0003
    while t < end:
        body = _json_body({"jsonrpc": "2.0", "method": "eth_getWork", "params": [],
                           "id": msg_id})
        t = conn.exchange(t, post(body), answer(t, _json_body(
            {"jsonrpc": "2.0", "id": msg_id, "result": eth_work(rng)})))
        msg_id += 1
        if t >= next_rate:
            body = _json_body({"jsonrpc": "2.0", "method": "eth_submitHashrate", "params": [
                f"0x{rng.randrange(20, 40) * 10**6:x}", "0x" + hx(rng, 32)], "id": msg_id})
            t = conn.exchange(t + 0.001, post(body), answer(t, _json_body(
                {"jsonrpc": "2.0", "id": msg_id, "result": True})))
            msg_id += 1
            next_rate = t + 10
        if rng.random() < 0.1:
            body = _json_body({"jsonrpc": "2.0", "method": "eth_submitWork", "params": [
                "0x" + hx(rng, 8), "0x" + hx(rng, 32), "0x" + hx(rng, 32)], "id": msg_id})
            t = conn.exchange(t + 0.001, post(body), answer(t, _json_body(
                {"jsonrpc": "2.0", "id": msg_id, "result": True})))
            msg_id += 1
        t += 0.5  # ethminer polls getwork twice a second
    conn.close(t)
    return Result([conn.alert("eth-getwork-http",
                              methods=["eth_getWork", "eth_submitHashrate", "eth_submitWork"])])


def ja3_of(hello: bytes) -> tuple[str, str]:
    """The JA3 string and md5 of a ClientHello record (GREASE dropped), for expected.json."""
    pos = 5 + 4 + 2 + 32
    pos += 1 + hello[pos]
    (clen,) = struct.unpack_from("!H", hello, pos)
    ciphers = [c for (c,) in struct.iter_unpack("!H", hello[pos + 2 : pos + 2 + clen])]
    pos += 2 + clen
    pos += 1 + hello[pos]
    (elen,) = struct.unpack_from("!H", hello, pos)
    pos += 2
    end = pos + elen
    exts: list[int] = []
    groups: list[int] = []
    formats: list[int] = []
    while pos < end:
        etype, length = struct.unpack_from("!HH", hello, pos)
        data = hello[pos + 4 : pos + 4 + length]
        if etype not in GREASE:
            exts.append(etype)
        if etype == 10:
            groups = [g for (g,) in struct.iter_unpack("!H", data[2:]) if g not in GREASE]
        if etype == 11:
            formats = list(data[1:])
        pos += 4 + length
    text = ",".join([
        "771",
        "-".join(str(c) for c in ciphers if c not in GREASE),
        "-".join(map(str, exts)),
        "-".join(map(str, groups)),
        "-".join(map(str, formats)),
    ])
    return text, hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def ja4_of(hello: bytes) -> str:
    """JA4 (FoxIO, BSD-3): t, version, d/i, cipher and extension counts, ALPN first/last
    character; sha256[:12] of the sorted ciphers; sha256[:12] of the sorted extensions (SNI
    and ALPN left out) joined by "_" to the signature algorithms in wire order."""
    pos = 5 + 4 + 2 + 32
    pos += 1 + hello[pos]
    (clen,) = struct.unpack_from("!H", hello, pos)
    ciphers = [c for (c,) in struct.iter_unpack("!H", hello[pos + 2 : pos + 2 + clen])
               if c not in GREASE]
    pos += 2 + clen
    pos += 1 + hello[pos]
    (elen,) = struct.unpack_from("!H", hello, pos)
    pos += 2
    end = pos + elen
    exts: list[int] = []
    versions: list[int] = []
    sigalgs: list[int] = []
    alpn = ""
    sni = False
    while pos < end:
        etype, length = struct.unpack_from("!HH", hello, pos)
        data = hello[pos + 4 : pos + 4 + length]
        pos += 4 + length
        if etype in GREASE:
            continue
        exts.append(etype)
        if etype == 0:
            sni = True
        elif etype == 16 and len(data) > 3:
            alpn = data[3 : 3 + data[2]].decode("ascii", "replace")
        elif etype == 43:
            versions = [v for (v,) in struct.iter_unpack("!H", data[1:]) if v not in GREASE]
        elif etype == 13:
            sigalgs = [v for (v,) in struct.iter_unpack("!H", data[2:]) if v not in GREASE]
    version = max(versions) if versions else struct.unpack_from("!H", hello, 9)[0]
    vtext = {0x0304: "13", 0x0303: "12", 0x0302: "11", 0x0301: "10"}.get(version, "00")
    alpn_text = alpn[0] + alpn[-1] if alpn else "00"
    head = f"t{vtext}{'d' if sni else 'i'}{len(ciphers):02d}{len(exts):02d}{alpn_text}"

    def digest(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()[:12] if text else "0" * 12

    cipher_text = ",".join(f"{c:04x}" for c in sorted(ciphers))
    ext_text = ",".join(f"{e:04x}" for e in sorted(e for e in exts if e not in (0, 16)))
    if sigalgs:
        ext_text += "_" + ",".join(f"{a:04x}" for a in sigalgs)
    return f"{head}_{digest(cipher_text)}_{digest(ext_text)}"


def tls_stratum_traffic(conn: TcpConn, ts: float, end: float, *, tls13: bool = True,
                        login: bool = True) -> float:
    """Stratum-shaped application data: a login, pushes every 20-60 s, shares, keepalives."""
    rng = conn.cap.rng
    t = ts
    if login:
        t = conn.send(ts + 0.0004, True, app_data(rng, 591, tls13=tls13))
        t = conn.send(t + conn.rtt + 0.003, False, app_data(rng, 465, tls13=tls13))
    next_job = t + rng.uniform(20, 60)
    next_share = t + rng.expovariate(1 / 30)
    while True:
        nxt = min(next_job, next_share)
        if nxt >= end:
            return t
        if nxt == next_job:
            t = conn.send(nxt, False, app_data(rng, 376, tls13=tls13))
            next_job = nxt + rng.uniform(20, 60)
        else:
            t = conn.send(nxt, True, app_data(rng, 243, tls13=tls13))
            t = conn.send(t + conn.rtt + 0.002, False, app_data(rng, 63, tls13=tls13))
            next_share = t + rng.expovariate(1 / 30)


def sc_tls_nosni(cap: Capture) -> Result:
    miner = cap.lan("10.20.12.9", "00:50:56")
    resolver = cap.lan("10.20.0.53", "00:50:56")
    pool = cap.remote("198.51.100.23", ttl=50)
    t = dns_lookup(cap, T0 + 7800.0, miner, resolver, "pool.supportxmr.com",
                   [("pool.supportxmr.com", 1, 300, pool.ip)])
    conn = cap.tcp(miner, pool, 9000, rtt=0.094)
    t = conn.open(t + 0.0008)
    hello = openssl111_hello(cap.rng, None)
    ja3, ja3_hash = ja3_of(hello)
    ja4 = ja4_of(hello)
    t = tls13_open(conn, t + 0.0003, hello)
    t = tls_stratum_traffic(conn, t, t + 240)
    conn.close(t + 1.2)
    return Result([conn.alert("tls", tls=True, sni=None, ja3=ja3, ja3_hash=ja3_hash,
                              ja4=ja4)],
                  dns=[{"client_ip": miner.ip, "name": "pool.supportxmr.com",
                        "answers": [pool.ip]}])


def sc_tls_sni_bitminter(cap: Capture) -> Result:
    miner = cap.lan("10.20.16.11", "ac:1f:6b")
    pool = cap.remote("203.0.113.60", ttl=46)
    conn = cap.tcp(miner, pool, 3333, rtt=0.071)
    t = conn.open(T0 + 8400.0)
    hello = openssl111_hello(cap.rng, "us1.bitminter.com")
    ja3, ja3_hash = ja3_of(hello)
    ja4 = ja4_of(hello)
    t = tls12_open(conn, t + 0.0003, hello, pool_certificates("us1.bitminter.com"))
    t = tls_stratum_traffic(conn, t, t + 180, tls13=False)
    conn.close(t + 0.7)
    return Result([conn.alert("tls", tls=True, sni="us1.bitminter.com", ja3=ja3,
                              ja3_hash=ja3_hash, ja4=ja4)])


def sc_tls_coinhive(cap: Capture) -> Result:
    desktop = cap.lan("192.168.30.57", "f8:bc:12")
    resolver = cap.lan("192.168.30.1", "00:0d:b9")
    server = cap.remote("198.51.100.70", ttl=57)
    name = "ws012.coinhive.com"
    t = dns_lookup(cap, T0 + 9000.0, desktop, resolver, name, [(name, 1, 60, server.ip)])
    conn = cap.tcp(desktop, server, 443, rtt=0.024)
    t = conn.open(t + 0.0005)
    hello = chrome_hello(cap.rng, name)
    ja3, ja3_hash = ja3_of(hello)
    ja4 = ja4_of(hello)
    t = tls13_open(conn, t + 0.0002, hello, cert_size=3100)
    rng = cap.rng
    # WebSocket upgrade, then the CoinHive miner's job/submit messages every few seconds.
    t = conn.send(t + 0.002, True, app_data(rng, 512))
    t = conn.send(t + conn.rtt + 0.003, False, app_data(rng, 129))
    t = conn.send(t + 0.001, True, app_data(rng, 150))
    end = t + 120
    while t < end:
        t = conn.send(t + rng.uniform(5, 15), False, app_data(rng, 220))
        if rng.random() < 0.5:
            t = conn.send(t + rng.uniform(1, 4), True, app_data(rng, 160))
    conn.close(t + 0.5)
    return Result([conn.alert("browser-tls", tls=True, sni=name, ja3=ja3, ja3_hash=ja3_hash,
                              ja4=ja4)],
                  dns=[{"client_ip": desktop.ip, "name": name, "answers": [server.ip]}])


POOL_CNAME_CHAIN = [
    ("xmr-eu1.nanopool.org", 5, 300, "xmr-eu1.nanopool.org.cdn.cloudflare.net"),
    ("xmr-eu1.nanopool.org.cdn.cloudflare.net", 5, 300, "eu1-lb.nanopool.org"),
    ("eu1-lb.nanopool.org", 1, 60, "198.51.100.31"),
    ("eu1-lb.nanopool.org", 1, 60, "198.51.100.32"),
]
POOL_CNAME_AAAA = [
    *POOL_CNAME_CHAIN[:2],
    ("eu1-lb.nanopool.org", 28, 60, "2001:db8:3333::31"),
]


def sc_dns_pool_udp(cap: Capture) -> Result:
    host = cap.lan("10.20.12.40", "00:50:56")
    resolver = cap.lan("10.20.0.53", "00:50:56")
    port = cap.eport()
    dns_lookup(cap, T0 + 9600.0, host, resolver, "xmr-eu1.nanopool.org", POOL_CNAME_CHAIN,
               aaaa=POOL_CNAME_AAAA, port=port)
    flow = {"client_ip": host.ip, "client_port": port, "server_ip": resolver.ip,
            "server_port": 53, "reason": "DNS lookup of a pool name; no mining connection "
            "follows"}
    return Result([], unscored=[flow], dns=[{"client_ip": host.ip, "name": "xmr-eu1.nanopool.org",
                            "answers": ["198.51.100.31", "198.51.100.32", "2001:db8:3333::31"]}])


def sc_dns_pool_tcp(cap: Capture) -> Result:
    host = cap.lan("10.20.12.41", "00:50:56")
    resolver = cap.lan("10.20.0.53", "00:50:56")
    rng = cap.rng
    name = "xmr-eu1.nanopool.org"
    port = cap.eport()
    qid = rng.randrange(1 << 16)
    # The UDP answer comes back truncated (TC), so the stub retries over TCP.
    cap.udp(T0 + 9700.0, host, port, resolver, 53, dns_query(qid, name, 1))
    truncated = bytearray(Dns(qid, 0x8380).question(name, 1).build())
    cap.udp(T0 + 9700.004, resolver, 53, host, port, bytes(truncated))
    conn = cap.tcp(host, resolver, 53, rtt=0.0004)
    t = conn.open(T0 + 9700.0045)
    qa, q6 = rng.randrange(1 << 16), rng.randrange(1 << 16)

    def framed(msg: bytes) -> bytes:
        return struct.pack("!H", len(msg)) + msg

    t = conn.send(t + 0.00005, True, framed(dns_query(qa, name, 1)) + framed(
        dns_query(q6, name, 28)))
    t = conn.send(t + 0.003, False, framed(dns_answer(qa, name, 1, POOL_CNAME_CHAIN)))
    t = conn.send(t + 0.0004, False, framed(dns_answer(q6, name, 28, POOL_CNAME_AAAA)))
    conn.close(t + 0.0002)
    return Result([], unscored=[{**conn.flow(), "reason": "DNS over TCP to the local resolver"
                                 " resolving a pool name; no mining connection follows"}],
                  dns=[{"client_ip": host.ip, "name": name,
                        "answers": ["198.51.100.31", "198.51.100.32", "2001:db8:3333::31"]}])


def _str0_255(text: str) -> bytes:
    raw = text.encode()
    return bytes([len(raw)]) + raw


def sv2_frame(ext: int, msg_type: int, payload: bytes) -> bytes:
    return struct.pack("<HB", ext, msg_type) + len(payload).to_bytes(3, "little") + payload


def sv2_setup_connection(host: str, port: int) -> bytes:
    return (struct.pack("<BHHI", 0, 2, 2, 0b0001) + _str0_255(host) + struct.pack("<H", port)
            + _str0_255("Bitmain") + _str0_255("S19j Pro") + _str0_255("braiins-os-2024-03")
            + _str0_255("s19jpro-rack4-slot12"))


# Stratum V2 mining-protocol payload sizes (spec §5.3), for the encrypted frame lengths.
SV2_SIZES = {
    "SetupConnection.Success": 6,
    "OpenStandardMiningChannel": 4 + 1 + len("acme.sv2miner") + 4 + 32,
    "OpenStandardMiningChannel.Success": 4 + 4 + 32 + 1 + 8 + 4,
    "NewMiningJob": 4 + 4 + 1 + 4 + 32,
    "SetNewPrevHash": 4 + 4 + 32 + 4 + 4,
    "SubmitSharesStandard": 4 + 4 + 4 + 4 + 4 + 4,
    "SubmitShares.Success": 4 + 4 + 4 + 8,
    "SetTarget": 4 + 32,
}


def sc_sv2_noise(cap: Capture) -> Result:
    miner = cap.lan("10.20.9.202", "b4:a9:fc")
    pool = cap.remote("203.0.113.80", ttl=53)
    conn = cap.tcp(miner, pool, 34255, rtt=0.027)
    rng = cap.rng

    def frame(n: int) -> bytes:
        # Noise transport: encrypted 6-byte header + tag, then payload + tag.
        return rng.randbytes(22) + rng.randbytes(n + 16)

    t = conn.open(T0 + 10200.0)
    t = conn.send(t + 0.0002, True, rng.randbytes(64))  # ElligatorSwift ephemeral key
    t = conn.send(t + conn.rtt + 0.0015, False, rng.randbytes(234))  # e, es, s, SignatureNoise
    setup = sv2_setup_connection("stratum.braiins.com", 34255)
    t = conn.send(t + 0.0006, True, frame(len(setup)))
    t = conn.send(t + conn.rtt + 0.001, False, frame(SV2_SIZES["SetupConnection.Success"]))
    t = conn.send(t + 0.0003, True, frame(SV2_SIZES["OpenStandardMiningChannel"]))
    t = conn.send(t + conn.rtt + 0.002, False,
                  frame(SV2_SIZES["OpenStandardMiningChannel.Success"])
                  + frame(SV2_SIZES["NewMiningJob"]) + frame(SV2_SIZES["SetNewPrevHash"]))
    end = t + 240
    next_job = t + rng.uniform(15, 35)
    next_share = t + rng.expovariate(1 / 8)
    while True:
        nxt = min(next_job, next_share)
        if nxt >= end:
            break
        if nxt == next_job:
            data = frame(SV2_SIZES["NewMiningJob"])
            if rng.random() < 0.3:
                data += frame(SV2_SIZES["SetNewPrevHash"])
            if rng.random() < 0.15:
                data += frame(SV2_SIZES["SetTarget"])
            t = conn.send(nxt, False, data)
            next_job = nxt + rng.uniform(15, 35)
        else:
            t = conn.send(nxt, True, frame(SV2_SIZES["SubmitSharesStandard"]))
            t = conn.send(t + conn.rtt + 0.001, False, frame(SV2_SIZES["SubmitShares.Success"]))
            next_share = t + rng.expovariate(1 / 8)
    conn.close(t + 2.0)
    return Result([conn.alert("stratum-v2")])


def sc_sv2_plaintext(cap: Capture) -> Result:
    miner = cap.lan("10.20.9.203", "b4:a9:fc")
    pool = cap.remote("203.0.113.81", ttl=53)
    conn = cap.tcp(miner, pool, 34255, rtt=0.027)
    rng = cap.rng
    t = conn.open(T0 + 10800.0)
    t = conn.send(t + 0.0002, True, sv2_frame(0, 0x00, sv2_setup_connection(pool.ip, 34255)))
    t = conn.send(t + conn.rtt + 0.001, False, sv2_frame(0, 0x01, struct.pack("<HI", 2, 0)))
    user = _str0_255("acme.sv2miner")
    t = conn.send(t + 0.0003, True, sv2_frame(0, 0x10, struct.pack("<I", 1) + user
                                              + struct.pack("<f", 1.1e14) + b"\xff" * 32))
    channel = 1
    t = conn.send(t + conn.rtt + 0.002, False, sv2_frame(
        0, 0x11, struct.pack("<II", 1, channel) + b"\x00" * 4 + b"\xff" * 28 + b"\x08"
        + rng.randbytes(8) + struct.pack("<I", 0)))
    job = 0
    end = t + 120
    while t < end:
        job += 1
        t = conn.send(t + rng.uniform(15, 30), False, sv2_frame(
            0x8000, 0x15, struct.pack("<IIBI", channel, job, 0, 0x20000000) + rng.randbytes(32)))
        for seq in range(rng.randrange(1, 4)):
            t = conn.send(t + rng.uniform(2, 6), True, sv2_frame(
                0x8000, 0x1A, struct.pack("<IIIIII", channel, job * 10 + seq, job,
                                          rng.randrange(1 << 32), int(t), 0x20000000)))
            t = conn.send(t + conn.rtt + 0.001, False, sv2_frame(
                0x8000, 0x1C, struct.pack("<IIIQ", channel, job * 10 + seq, 1, 1 << 40)))
    conn.close(t + 1.0)
    return Result([conn.alert("stratum-v2", methods=[
        "OpenStandardMiningChannel", "SetupConnection", "SubmitSharesStandard"])])


def sc_midflow_cryptonote(cap: Capture) -> Result:
    miner = cap.lan("10.20.12.10", "00:50:56")
    pool = cap.remote("198.51.100.23", ttl=50)
    conn = cap.tcp(miner, pool, 3333, rtt=0.094, established=True)
    s = Session(conn)
    rng = s.rng
    rpc_id = hx(rng, 16)
    height = 3_563_120
    job_id = ""

    def job() -> dict[str, Any]:
        nonlocal height, job_id
        height += 1
        job_id = base64.b64encode(rng.randbytes(21)).decode()
        return {"jsonrpc": "2.0", "method": "job", "params": {
            "blob": "1010" + hx(rng, 35) + "00000000" + hx(rng, 33) + "02", "job_id": job_id,
            "target": "b88d0600", "algo": "rx/0", "height": height,
            "seed_hash": "f6e1b6c7a2d9c3e8a2b4b1f0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0"}}

    # The tap starts while a job push is on the wire: the first segment is its tail.
    first = jline(job())
    s.methods.add("job")
    t = conn.send(T0 + 11400.0, False, first[len(first) // 2 :])
    msg_id = 211
    end = t + 200
    next_job = t + rng.uniform(20, 60)
    # The miner last wrote 45 s before the capture began: a keepalived is due first.
    next_share = t + 20 + rng.expovariate(1 / 30)
    last_client = t - 45
    while True:
        nxt = min(next_job, next_share, last_client + 60)
        if nxt >= end:
            break
        if nxt == next_job:
            t = s.pool(nxt, job())
            next_job = nxt + rng.uniform(20, 60)
        elif nxt == next_share:
            t = s.client(nxt, {"id": msg_id, "jsonrpc": "2.0", "method": "submit", "params": {
                "id": rpc_id, "job_id": job_id, "nonce": hx(rng, 4),
                "result": hx(rng, 31) + "00", "algo": "rx/0"}})
            t = s.pool(s.reply_at(t), {"id": msg_id, "jsonrpc": "2.0", "error": None,
                                       "result": {"status": "OK"}})
            last_client = t
            msg_id += 1
            next_share = t + rng.expovariate(1 / 30)
        else:
            t = s.client(nxt, {"id": msg_id, "jsonrpc": "2.0", "method": "keepalived",
                               "params": {"id": rpc_id}})
            t = s.pool(s.reply_at(t), {"id": msg_id, "jsonrpc": "2.0", "error": None,
                                       "result": {"status": "KEEPALIVED"}})
            last_client = t
            msg_id += 1
    return Result([conn.alert("cryptonote", midflow=True, methods=_methods(s.methods))])


def sc_midflow_stratum(cap: Capture) -> Result:
    miner = cap.lan("10.20.4.18", "ac:1f:6b")
    pool = cap.remote("203.0.113.10", ttl=51)
    conn = cap.tcp(miner, pool, 3333, rtt=0.041, established=True)
    s = Session(conn)
    rng = s.rng
    worker = "acme.rig02"
    jobs = BitcoinJobs(rng, int(T0 + 12000))
    first = jline({"id": None, "method": "mining.notify", "params": jobs.notify(T0 + 12000)},
                  spaced=True)
    s.methods.add("mining.notify")
    t = conn.send(T0 + 12000.0, False, first[len(first) // 3 :])
    s.next_id = 1377

    def submit(msg_id: int, job: str, now: float) -> dict[str, Any]:
        return {"params": [worker, job, hx(rng, 4), f"{int(now):08x}", hx(rng, 4)],
                "id": msg_id, "method": "mining.submit"}

    t = stratum_v1_loop(s, t, t + 180, jobs, submit=submit, spaced_pool=True,
                        spaced_client=True, difficulty_changes=True)
    return Result([conn.alert("stratum-v1", midflow=True, methods=_methods(s.methods))])


def sc_split_login(cap: Capture) -> Result:
    """A CryptoNote login and a Stratum subscribe, each cut into three segments."""
    miner = cap.lan("10.20.12.11", "00:50:56")
    pool = cap.remote("198.51.100.23", ttl=50)
    conn = cap.tcp(miner, pool, 3333, rtt=0.094)
    t = conn.open(T0 + 12600.0)
    login = jline({"id": 1, "jsonrpc": "2.0", "method": "login", "params": {
        "login": MONERO_WALLET, "pass": "x", "agent": XMRIG_AGENT, "rigid": "db-02",
        "algo": XMRIG_ALGOS}})
    cuts = (37, 301)  # inside "method", then inside the wallet address
    t = conn.send(t + 0.0002, True, login[: cuts[0]])
    t = conn.send(t + 0.061, True, login[cuts[0] : cuts[1]])
    t = conn.send(t + 0.048, True, login[cuts[1] :])
    s = Session(conn)
    s.methods.add("login")
    t, methods = xmrig_session_continue(s, t, 90)
    conn.close(t + 0.4)

    miner2 = cap.lan("10.20.4.19", "ac:1f:6b")
    pool2 = cap.remote("203.0.113.10", ttl=51)
    conn2 = cap.tcp(miner2, pool2, 3333, rtt=0.041)
    t2 = conn2.open(T0 + 12610.0)
    sub = jline({"id": 0, "method": "mining.subscribe", "params": ["cgminer/4.10.0"]},
                spaced=True)
    t2 = conn2.send(t2 + 0.0003, True, sub[:9])
    t2 = conn2.send(t2 + 0.052, True, sub[9:30])
    t2 = conn2.send(t2 + 0.044, True, sub[30:])
    s2 = Session(conn2)
    s2.methods.add("mining.subscribe")
    t2 = s2.pool(s2.reply_at(t2), {"id": 0, "result": [[["mining.set_difficulty", hx(cap.rng, 16)],
                                                        ["mining.notify", hx(cap.rng, 16)]],
                                                       hx(cap.rng, 4), 4], "error": None},
                 spaced=True)
    t2 = s2.client(t2 + 0.001, {"id": 1, "method": "mining.authorize",
                                "params": ["acme.rig03", "x"]}, spaced=True)
    jobs = BitcoinJobs(cap.rng, int(t2))
    t2 = s2.pool(s2.reply_at(t2), {"id": 1, "result": True, "error": None},
                 {"id": None, "method": "mining.set_difficulty", "params": [1024]},
                 {"id": None, "method": "mining.notify", "params": jobs.notify(t2, clean=True)},
                 spaced=True)
    conn2.close(t2 + 20.0)
    return Result([conn.alert("cryptonote", methods=_methods(methods)),
                   conn2.alert("stratum-v1", methods=_methods(s2.methods))])


def xmrig_session_continue(s: Session, ts: float, duration: float) -> tuple[float, set[str]]:
    """The pool side of an XMRig login already sent, then a few jobs and shares."""
    rng = s.rng
    rpc_id = hx(rng, 16)
    job = {"blob": "1010" + hx(rng, 76), "job_id": base64.b64encode(rng.randbytes(21)).decode(),
           "target": "b88d0600", "algo": "rx/0", "height": 3_563_500, "seed_hash": hx(rng, 32)}
    t = s.pool(s.reply_at(ts), {"id": 1, "jsonrpc": "2.0", "error": None, "result": {
        "id": rpc_id, "job": job, "extensions": ["algo", "nicehash", "connect", "tls",
                                                 "keepalive"], "status": "OK"}})
    end = ts + duration
    msg_id = 2
    while True:
        nxt = t + rng.uniform(15, 30)
        if nxt >= end:
            return t, s.methods
        if rng.random() < 0.5:
            job = {**job, "blob": "1010" + hx(rng, 76),
                   "job_id": base64.b64encode(rng.randbytes(21)).decode()}
            t = s.pool(nxt, {"jsonrpc": "2.0", "method": "job", "params": job})
        else:
            t = s.client(nxt, {"id": msg_id, "jsonrpc": "2.0", "method": "submit", "params": {
                "id": rpc_id, "job_id": job["job_id"], "nonce": hx(rng, 4),
                "result": hx(rng, 31) + "00", "algo": "rx/0"}})
            t = s.pool(s.reply_at(t), {"id": msg_id, "jsonrpc": "2.0", "error": None,
                                       "result": {"status": "OK"}})
            msg_id += 1


def sc_split_clienthello(cap: Capture) -> Result:
    miner = cap.lan("10.20.16.12", "ac:1f:6b")
    pool = cap.remote("203.0.113.60", ttl=46)
    conn = cap.tcp(miner, pool, 3333, rtt=0.071)
    t = conn.open(T0 + 13200.0)
    hello = openssl111_hello(cap.rng, "us1.bitminter.com")
    ja3, ja3_hash = ja3_of(hello)
    ja4 = ja4_of(hello)
    # The cut falls inside the SNI extension, so the name itself spans both segments.
    cut = hello.index(b"bitminter") + 3
    t = conn.send(t + 0.0003, True, hello[:cut])
    t = conn.send(t + 0.0009, True, hello[cut:])
    rng = cap.rng
    t = conn.send(t + conn.rtt + 0.003, False, tls12_server_flight(rng, pool_certificates(
        "us1.bitminter.com")))
    t = conn.send(t + 0.0015, True, tls_record(22, tls_handshake(16, b"\x20" + rng.randbytes(
        32))) + tls_record(20, b"\x01") + tls_record(22, rng.randbytes(40)))
    t = conn.send(t + conn.rtt + 0.001, False, tls_record(20, b"\x01")
                  + tls_record(22, rng.randbytes(40)))
    t = tls_stratum_traffic(conn, t, t + 90, tls13=False)
    conn.close(t + 0.5)
    return Result([conn.alert("tls", tls=True, sni="us1.bitminter.com", ja3=ja3,
                              ja3_hash=ja3_hash, ja4=ja4)])


def sc_out_of_order(cap: Capture) -> Result:
    """Pool pushes that arrive reordered, and a retransmission overlapping two segments."""
    miner = cap.lan("10.20.4.20", "ac:1f:6b")
    pool = cap.remote("203.0.113.10", ttl=51)
    conn = cap.tcp(miner, pool, 3333, rtt=0.041)
    s = Session(conn)
    rng = s.rng
    worker = "acme.rig04"
    t = conn.open(T0 + 13800.0)
    t = s.client(t + 0.0003, {"id": 0, "method": "mining.subscribe",
                              "params": ["cgminer/4.10.0"]}, spaced=True)
    t = s.pool(s.reply_at(t), {"id": 0, "result": [[["mining.set_difficulty", hx(rng, 16)],
                                                    ["mining.notify", hx(rng, 16)]],
                                                   hx(rng, 4), 4], "error": None}, spaced=True)
    t = s.client(t + 0.001, {"id": 1, "method": "mining.authorize", "params": [worker, "x"]},
                 spaced=True)
    jobs = BitcoinJobs(rng, int(t))
    # Result, difficulty and two notifies (about 2.2 kB) in three segments, the second and
    # third delivered before the first.
    burst = b"".join(jline(o, spaced=True) for o in (
        {"id": 1, "result": True, "error": None},
        {"id": None, "method": "mining.set_difficulty", "params": [1024]},
        {"id": None, "method": "mining.notify", "params": jobs.notify(t, clean=True)},
        {"id": None, "method": "mining.notify", "params": jobs.notify(t)}))
    s.methods.update({"mining.set_difficulty", "mining.notify"})
    a, b = len(burst) // 3, 2 * len(burst) // 3
    t0 = s.reply_at(t)
    plan = [(0.0, a, b), (0.00011, b, len(burst)), (0.00043, 0, a)]
    t = conn.send_ranges(t0, False, burst, plan)
    t = s.client(t + 2.1, {"params": [worker, f"{jobs.job:x}", hx(rng, 4), f"{int(t):08x}",
                                      hx(rng, 4)], "id": 2, "method": "mining.submit"},
                 spaced=True)
    t = s.pool(s.reply_at(t), {"id": 2, "result": True, "error": None}, spaced=True)
    # A notify in two segments; the pool's retransmission timer fires before the client's
    # ACK reaches it, and it resends the whole line as one segment overlapping both.
    note = jline({"id": None, "method": "mining.notify", "params": jobs.notify(t + 20)},
                 spaced=True)
    half = len(note) // 2
    t = conn.send_ranges(t + 20.0, False, note, [(0.0, 0, half), (0.00005, half, len(note)),
                                                 (0.21, 0, len(note))])
    t = stratum_v1_loop(s, t, t + 60, jobs, submit=lambda i, j, n: {
        "params": [worker, j, hx(rng, 4), f"{int(n):08x}", hx(rng, 4)], "id": i,
        "method": "mining.submit"}, spaced_pool=True, spaced_client=True)
    conn.close(t + 1.0)
    return Result([conn.alert("stratum-v1", methods=_methods(s.methods))])


# -- wrapped copies of one Stratum session ----------------------------------------------------


def wrapped_stratum(cap: Capture, *, v6: bool = False, ts: float = T0 + 14400.0,
                    iface: int = 0) -> Result:
    miner = cap.lan("fd00:20:4::17" if v6 else "10.20.4.17", "ac:1f:6b")
    pool = cap.remote("2001:db8:3333::10" if v6 else "203.0.113.10", ttl=51)
    conn = cap.tcp(miner, pool, 3333, rtt=0.041, iface=iface)
    t, methods = cgminer_session(conn, ts, 60)
    conn.close(t + 1.5)
    return Result([conn.alert("stratum-v1", methods=_methods(methods))])


def sc_wrap_vlan(cap: Capture) -> Result:
    res = wrapped_stratum(cap)
    res.framing = vlan(120)
    return res


def sc_wrap_qinq(cap: Capture) -> Result:
    res = wrapped_stratum(cap)
    res.framing = qinq(3001, 120)
    return res


def sc_wrap_ipv6_ext(cap: Capture) -> Result:
    cap.v6_ext_headers = True
    return wrapped_stratum(cap, v6=True)


def _tunnelled(kind: str) -> Callable[[Capture], Result]:
    def build(cap: Capture) -> Result:
        res = wrapped_stratum(cap)
        res.framing = Tunnel(kind)
        return res

    return build


def sc_wrap_sll2(cap: Capture) -> Result:
    res = wrapped_stratum(cap)
    res.framing = sll2(2)
    res.linktype = LINKTYPE_LINUX_SLL2
    return res


def sc_pcapng_two_links(cap: Capture) -> Result:
    """Interface 0: the Ethernet mirror port; interface 1: `-i any` on a second miner."""
    first = wrapped_stratum(cap, ts=T0 + 15000.0, iface=0)
    miner = cap.lan("10.20.12.12", "00:50:56")
    pool = cap.remote("198.51.100.23", ttl=50)
    conn = cap.tcp(miner, pool, 3333, rtt=0.094, iface=1)
    t, methods = xmrig_session(conn, T0 + 15004.0, 70)
    conn.close(t + 0.6)
    first.alerts.append(conn.alert("cryptonote", methods=_methods(methods)))
    first.interfaces = [(LINKTYPE_ETHERNET, "ens1f0", ether),
                        (LINKTYPE_LINUX_SLL2, "any", sll2(3))]
    return first


# -- hard negatives ---------------------------------------------------------------------------


def btc_msg(command: str, payload: bytes) -> bytes:
    check = hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    return (b"\xf9\xbe\xb4\xd9" + command.encode().ljust(12, b"\x00")
            + struct.pack("<I", len(payload)) + check + payload)


def _varint(n: int) -> bytes:
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + struct.pack("<H", n)
    return b"\xfe" + struct.pack("<I", n)


def _netaddr(ip: str, port: int, services: int) -> bytes:
    return (struct.pack("<Q", services) + b"\x00" * 10 + b"\xff\xff"
            + socket.inet_aton(ip) + struct.pack(">H", port))


def btc_version(rng: random.Random, ts: float, me: str, peer: str, agent: str,
                height: int) -> bytes:
    ua = agent.encode()
    return (struct.pack("<iQq", 70016, 0x0C09, int(ts)) + _netaddr(peer, 8333, 0x0C09)
            + _netaddr(me, 0, 0x0C09)[:-6] + b"\x00" * 6 + struct.pack("<Q", rng.getrandbits(64))
            + _varint(len(ua)) + ua + struct.pack("<i?", height, True))


def btc_tx(rng: random.Random, n_in: int, n_out: int) -> bytes:
    tx = struct.pack("<i", 2) + _varint(n_in)
    for _ in range(n_in):
        script = rng.randbytes(rng.choice((106, 107)))
        tx += rng.randbytes(32) + struct.pack("<I", rng.randrange(4)) + _varint(len(script))
        tx += script + b"\xfd\xff\xff\xff"
    tx += _varint(n_out)
    for _ in range(n_out):
        tx += struct.pack("<Q", rng.randrange(10**4, 10**9)) + b"\x16\x00\x14" + rng.randbytes(20)
    return tx + struct.pack("<I", 0)


def sc_neg_bitcoin_p2p(cap: Capture) -> Result:
    node = cap.lan("10.30.0.20", "3c:ec:ef")
    peer = cap.remote("203.0.113.100", ttl=49)
    conn = cap.tcp(node, peer, 8333, rtt=0.082)
    rng = cap.rng
    height = 928_530
    t = conn.open(T0 + 18000.0)
    t = conn.send(t + 0.0002, True, btc_msg("version", btc_version(
        rng, t, node.ip, peer.ip, "/Satoshi:27.1.0/", height)))
    t = conn.send(t + conn.rtt + 0.001, False, btc_msg("version", btc_version(
        rng, t, peer.ip, node.ip, "/Satoshi:26.0.0/", height))
        + btc_msg("wtxidrelay", b"") + btc_msg("sendaddrv2", b"") + btc_msg("verack", b""))
    t = conn.send(t + 0.0005, True, btc_msg("wtxidrelay", b"") + btc_msg("sendaddrv2", b"")
                  + btc_msg("verack", b""))
    t = conn.send(t + 0.001, True, btc_msg("sendcmpct", b"\x00" + struct.pack("<Q", 2))
                  + btc_msg("ping", rng.randbytes(8)) + btc_msg("getheaders", struct.pack(
                      "<I", 70016) + b"\x01" + rng.randbytes(32) + b"\x00" * 32)
                  + btc_msg("feefilter", struct.pack("<Q", 1000)))
    t = conn.send(t + conn.rtt + 0.001, False, btc_msg("sendheaders", b"")
                  + btc_msg("sendcmpct", b"\x00" + struct.pack("<Q", 2))
                  + btc_msg("pong", rng.randbytes(8)) + btc_msg("headers", b"\x00")
                  + btc_msg("feefilter", struct.pack("<Q", 1000)))
    end = t + 150
    while t < end:
        # Transaction relay: inv -> getdata -> tx, every few seconds.
        hashes_ = [rng.randbytes(32) for _ in range(rng.randrange(1, 6))]
        inv = _varint(len(hashes_)) + b"".join(struct.pack("<I", 5) + h for h in hashes_)
        t = conn.send(t + rng.uniform(2, 9), False, btc_msg("inv", inv))
        t = conn.send(t + 0.0004, True, btc_msg("getdata", inv))
        t = conn.send(t + conn.rtt + 0.001, False, b"".join(
            btc_msg("tx", btc_tx(rng, rng.randrange(1, 3), 2)) for _ in hashes_))
    # A new block announced by header, fetched as a compact-less full block.
    header = struct.pack("<i", 0x20000000) + rng.randbytes(32) + rng.randbytes(32) + \
        struct.pack("<III", int(t), 0x17034219, rng.getrandbits(32))
    t = conn.send(t + 3.0, False, btc_msg("headers", b"\x01" + header + b"\x00"))
    t = conn.send(t + 0.0006, True, btc_msg("getdata", b"\x01" + struct.pack("<I", 0x40000002)
                                            + hashlib.sha256(header).digest()))
    txs = [btc_tx(rng, rng.randrange(1, 3), 2) for _ in range(40)]
    block = header + _varint(len(txs)) + b"".join(txs)
    t = conn.send(t + conn.rtt + 0.002, False, btc_msg("block", block))
    conn.close(t + 5.0)
    return Result([])


def _epee_varint(n: int) -> bytes:
    if n < 1 << 6:
        return bytes([n << 2])
    if n < 1 << 14:
        return struct.pack("<H", n << 2 | 1)
    return struct.pack("<I", n << 2 | 2)


def _epee_section(entries: Sequence[tuple[str, int, Any]]) -> bytes:
    out = _epee_varint(len(entries))
    for name, typ, value in entries:
        out += bytes([len(name)]) + name.encode() + bytes([typ])
        if typ == 0x0C:
            out += _epee_section(value)
        elif typ == 0x0A:
            out += _epee_varint(len(value)) + value
        else:
            out += struct.pack({5: "<Q", 6: "<I", 7: "<H", 8: "<B"}[typ], value)
    return out


def levin(command: int, payload: bytes, *, request: bool, expect_reply: bool) -> bytes:
    head = struct.pack("<QQ?IiII", 0x0101010101012101, len(payload), expect_reply, command, 0,
                       1 if request else 2, 1)
    return head + payload


def monero_node_data(rng: random.Random, height: int) -> bytes:
    storage = struct.pack("<IIB", 0x01011101, 0x01020101, 1)
    return storage + _epee_section([
        ("node_data", 0x0C, [
            ("my_port", 6, 18080),
            ("network_id", 0x0A, bytes.fromhex("1230f171610441611731008216a1a110")),
            ("peer_id", 5, rng.getrandbits(64)),
            ("support_flags", 6, 1),
        ]),
        ("payload_data", 0x0C, [
            ("cumulative_difficulty", 5, rng.getrandbits(62)),
            ("cumulative_difficulty_top64", 5, 0),
            ("current_height", 5, height),
            ("pruning_seed", 6, 0),
            ("top_id", 0x0A, rng.randbytes(32)),
            ("top_version", 8, 16),
        ]),
    ])


def sc_neg_monero_levin(cap: Capture) -> Result:
    node = cap.lan("10.30.0.21", "3c:ec:ef")
    peer = cap.remote("198.51.100.100", ttl=52)
    conn = cap.tcp(node, peer, 18080, rtt=0.067)
    rng = cap.rng
    height = 3_563_400
    t = conn.open(T0 + 18600.0)
    t = conn.send(t + 0.0003, True, levin(1001, monero_node_data(rng, height), request=True,
                                          expect_reply=True))
    peers = b"".join(rng.randbytes(38) for _ in range(40))
    resp = monero_node_data(rng, height + 1)[:-1] + b"\x00" + peers
    t = conn.send(t + conn.rtt + 0.004, False, levin(1001, resp, request=False,
                                                     expect_reply=False))
    end = t + 180
    next_sync = t + 60
    while t < end:
        nxt = t + rng.uniform(3, 12)
        if nxt >= next_sync:
            t = conn.send(next_sync, True, levin(1002, monero_node_data(rng, height)[:120],
                                                 request=True, expect_reply=True))
            t = conn.send(t + conn.rtt + 0.001, False, levin(
                1002, monero_node_data(rng, height)[:120], request=False, expect_reply=False))
            next_sync += 60
            continue
        # NOTIFY_NEW_TRANSACTIONS (2002) relayed by the peer.
        t = conn.send(nxt, False, levin(2002, rng.randbytes(rng.randrange(1400, 3000)),
                                        request=True, expect_reply=False))
    conn.close(t + 2.0)
    return Result([])


def sc_neg_ethereum_rlpx(cap: Capture) -> Result:
    node = cap.lan("10.30.0.22", "3c:ec:ef")
    peer = cap.remote("198.51.100.101", ttl=51)
    conn = cap.tcp(node, peer, 30303, rtt=0.058)
    rng = cap.rng
    t = conn.open(T0 + 19200.0)
    # EIP-8 auth / ack: size prefix, then ECIES (0x04 || ephemeral key || iv || ct || mac).
    auth_len = 65 + 16 + 194 + 32 + rng.randrange(100, 250)
    t = conn.send(t + 0.0003, True, struct.pack("!H", auth_len) + b"\x04"
                  + rng.randbytes(auth_len - 1))
    ack_len = 65 + 16 + 102 + 32 + rng.randrange(100, 250)
    t = conn.send(t + conn.rtt + 0.002, False, struct.pack("!H", ack_len) + b"\x04"
                  + rng.randbytes(ack_len - 1))

    def frame(n: int) -> bytes:
        return rng.randbytes(32 + ((n + 15) // 16) * 16 + 16)

    t = conn.send(t + 0.001, True, frame(rng.randrange(120, 180)))  # Hello
    t = conn.send(t + conn.rtt, False, frame(rng.randrange(120, 180)) + frame(90))  # Hello, Status
    t = conn.send(t + 0.0005, True, frame(90))
    end = t + 150
    while t < end:
        t = conn.send(t + rng.uniform(1, 6), False, frame(rng.randrange(40, 1200)))
        if rng.random() < 0.3:
            t = conn.send(t + 0.001, True, frame(rng.randrange(40, 200)))
        if rng.random() < 0.1:
            t = conn.send(t + 0.5, True, frame(1))  # devp2p Ping
            t = conn.send(t + conn.rtt, False, frame(1))  # Pong
    conn.close(t + 1.0, by_client=False)
    return Result([])


def sc_neg_bitcoind_rpc(cap: Capture) -> Result:
    monitor = cap.lan("10.30.0.30", "00:50:56")
    node = cap.lan("10.30.0.5", "3c:ec:ef")
    rng = cap.rng
    t = T0 + 19800.0
    auth = base64.b64encode(b"monitor:Xq3pLwq2").decode()
    blocks = 928_540
    for i in range(12):
        # bitcoin-cli: one connection per call, Connection: close.
        method = ("getblockchaininfo", "getbalance", "getnetworkinfo")[i % 3]
        body = _json_body({"method": method, "params": [], "id": 1}) + b"\n"
        req = http_request("POST", "/", [("Host", node.ip), ("Connection", "close"),
                                         ("Authorization", "Basic " + auth),
                                         ("Content-Length", str(len(body)))], body)
        if method == "getblockchaininfo":
            result: Any = {
                "chain": "main", "blocks": blocks, "headers": blocks,
                "bestblockhash": "00000000000000000001" + hx(rng, 22),
                "difficulty": 126982285146989.3, "time": int(t) - 300,
                "mediantime": int(t) - 3000, "verificationprogress": 0.9999989,
                "initialblockdownload": False, "chainwork": "0000000000000000000000000000000000000"
                "000b1f0a2c3d4e5f6a7b8c9d0e1", "size_on_disk": 712_345_678_901, "pruned": False,
                "warnings": ""}
        elif method == "getbalance":
            result = 0.41962371
        else:
            result = {"version": 270100, "subversion": "/Satoshi:27.1.0/",
                      "protocolversion": 70016, "connections": 10, "networkactive": True}
        rbody = _json_body({"result": result, "error": None, "id": 1}) + b"\n"
        conn = cap.tcp(monitor, node, 8332, rtt=0.0003)
        tt = conn.open(t)
        tt = conn.exchange(tt + 0.0001, req, http_response("200 OK", [
            ("Content-Type", "application/json"), ("Date", http_date(tt)),
            ("Content-Length", str(len(rbody)))], rbody), think=0.0006)
        conn.close(tt + 0.0002, by_client=False)
        t += 15.0
        if i % 3 == 2:
            blocks += 1
    return Result([])


def sc_neg_geth_rpc(cap: Capture) -> Result:
    app = cap.lan("10.30.0.31", "00:50:56")
    node = cap.lan("10.30.0.6", "3c:ec:ef")
    rng = cap.rng
    conn = cap.tcp(app, node, 8545, rtt=0.0003)
    t = conn.open(T0 + 20400.0)
    block = 0x14A3C2E
    for msg_id in range(40):
        method, params = [("eth_blockNumber", []), ("net_version", []),
                          ("eth_getBalance", ["0x" + hx(rng, 20), "latest"]),
                          ("eth_gasPrice", [])][msg_id % 4]
        body = _json_body({"jsonrpc": "2.0", "method": method, "params": params, "id": msg_id},
                          spaced=True)
        req = http_request("POST", "/", [
            ("Host", f"{node.ip}:8545"),
            ("User-Agent", "web3.py/6.15.1/web3.providers.HTTPProvider"),
            ("Accept-Encoding", "gzip, deflate"), ("Accept", "*/*"),
            ("Connection", "keep-alive"), ("Content-Type", "application/json"),
            ("Content-Length", str(len(body)))], body)
        result = {"eth_blockNumber": hex(block), "net_version": "1",
                  "eth_getBalance": hex(rng.randrange(10**15, 10**19)),
                  "eth_gasPrice": hex(rng.randrange(10**9, 3 * 10**10))}[method]
        rbody = _json_body({"jsonrpc": "2.0", "id": msg_id, "result": result}) + b"\n"
        t = conn.exchange(t + (0.0002 if msg_id == 0 else rng.uniform(0.5, 6)), req, http_response(
            "200 OK", [("Content-Type", "application/json"), ("Vary", "Origin"),
                       ("Date", http_date(t)), ("Content-Length", str(len(rbody)))], rbody),
            think=0.0004)
        block += rng.random() < 0.3
    conn.close(t + 0.5)
    return Result([])


def sc_neg_electrum(cap: Capture) -> Result:
    wallet = cap.lan("192.168.30.58", "f8:bc:12")
    server = cap.remote("203.0.113.102", ttl=50)
    conn = cap.tcp(wallet, server, 50001, rtt=0.046)
    rng = cap.rng
    t = conn.open(T0 + 21000.0)
    msg_id = 0

    def call(now: float, method: str, params: list[Any], result: Any) -> float:
        nonlocal msg_id
        req = jline({"jsonrpc": "2.0", "method": method, "id": msg_id, "params": params})
        resp = jline({"jsonrpc": "2.0", "result": result, "id": msg_id})
        msg_id += 1
        return conn.exchange(now, req, resp, think=0.003)

    height = 928_541
    t = call(t + 0.0003, "server.version", ["electrum/4.5.4", "1.4"], ["ElectrumX 1.16.0", "1.4"])
    t = call(t + 0.001, "blockchain.headers.subscribe", [], {"hex": hx(rng, 80),
                                                             "height": height})
    t = call(t + 0.001, "server.banner", [], "Welcome to ElectrumX")
    t = call(t + 0.001, "blockchain.relayfee", [], 1e-05)
    hashes_ = [hx(rng, 32) for _ in range(8)]
    for sh in hashes_:
        t = call(t + 0.0005, "blockchain.scripthash.subscribe", [sh],
                 None if rng.random() < 0.6 else hx(rng, 32))
    for sh in hashes_[:4]:
        t = call(t + 0.0005, "blockchain.scripthash.get_history", [sh], [
            {"tx_hash": hx(rng, 32), "height": height - rng.randrange(1, 9000)}
            for _ in range(rng.randrange(1, 4))])
    end = t + 240
    next_ping = t + 60
    while t < end:
        nxt = t + rng.uniform(20, 50)
        if nxt > next_ping:
            t = call(next_ping, "server.ping", [], None)
            next_ping += 60
            continue
        height += 1
        t = conn.send(nxt, False, jline({"jsonrpc": "2.0", "method": "blockchain.headers.subscribe",
                                         "params": [{"hex": hx(rng, 80), "height": height}]}))
    conn.close(t + 1.0)
    return Result([])


def sc_neg_jsonrpc_echo(cap: Capture) -> Result:
    client = cap.lan("10.30.0.32", "00:50:56")
    server = cap.lan("10.30.0.7", "3c:ec:ef")
    conn = cap.tcp(client, server, 8080, rtt=0.0004)
    rng = cap.rng
    t = conn.open(T0 + 21600.0)
    t = conn.exchange(t + 0.0002, jline({"jsonrpc": "2.0", "method": "subscribe",
                                         "params": ["events"], "id": 1}),
                      jline({"jsonrpc": "2.0", "result": {"subscription": hx(rng, 8)}, "id": 1}))
    for i in range(2, 40):
        if rng.random() < 0.3:
            t = conn.send(t + rng.uniform(1, 5), False, jline({
                "jsonrpc": "2.0", "method": "notify",
                "params": {"event": "tick", "seq": i, "load": round(rng.random(), 3)}}))
        else:
            msg = f"status {i}: {hx(rng, 6)}"
            t = conn.exchange(t + rng.uniform(1, 5), jline({
                "jsonrpc": "2.0", "method": "echo", "params": {"message": msg}, "id": i}),
                jline({"jsonrpc": "2.0", "result": {"message": msg}, "id": i}), think=0.0002)
    conn.close(t + 0.2)
    return Result([])


def sc_neg_tls_nosni(cap: Capture) -> Result:
    agent = cap.lan("10.30.0.33", "00:50:56")
    api = cap.remote("198.51.100.110", ttl=56)
    mirror = cap.remote("203.0.113.111", ttl=55)
    rng = cap.rng
    # A monitoring agent posting to an API by address: OpenSSL 1.1.1 defaults, no SNI/ALPN.
    conn = cap.tcp(agent, api, 443, rtt=0.018)
    t = conn.open(T0 + 22200.0)
    t = tls13_open(conn, t + 0.0002, openssl111_hello(rng, None), cert_size=2900)
    t = conn.send(t + 0.0005, True, app_data(rng, 412))
    t = conn.send(t + conn.rtt + 0.03, False, app_data(rng, 388))
    conn.close(t + 0.001)
    # curl fetching a 120 kB file from a mirror by address.
    dl = cap.tcp(agent, mirror, 443, rtt=0.012)
    t = dl.open(t + 1.7)
    t = tls13_open(dl, t + 0.0002, curl_hello(rng), cert_size=3300)
    t = dl.send(t + 0.0004, True, app_data(rng, 96))
    body = b"".join(app_data(rng, 16384) for _ in range(7)) + app_data(rng, 5120)
    t = dl.send(t + dl.rtt + 0.004, False, body, gap=0.00012)
    dl.close(t + 0.01)
    return Result([], unscored=[])


def sc_neg_pool_website(cap: Capture) -> Result:
    """A browser reading two pools' web sites over HTTPS: DNS answers naming pools, Chrome
    ClientHellos with the pool's name as SNI and ALPN h2, page-sized downloads. Not mining."""
    rng = cap.rng
    resolver = cap.lan("192.168.30.1", "00:0d:b9")
    desktop = cap.lan("192.168.30.61", "f8:bc:12")
    t = T0 + 23400.0
    for name, ip in (("bitminter.com", "198.51.100.130"), ("supportxmr.com", "203.0.113.131")):
        t = dns_lookup(cap, t, desktop, resolver, name, [(name, 1, 300, ip)])
        server = cap.remote(ip, ttl=55)
        conn = cap.tcp(desktop, server, 443, rtt=0.033)
        t = conn.open(t + 0.0004)
        t = tls13_open(conn, t + 0.0002, chrome_hello(rng, name), cert_size=3600)
        for _ in range(6):  # page, scripts, styles, images
            t = conn.send(t + 0.004, True, app_data(rng, rng.randrange(300, 700)))
            for _ in range(rng.randrange(3, 9)):
                t = conn.send(t + 0.0008, False, app_data(rng, 1300))
        t = conn.send(t + 8.0, True, app_data(rng, 120))  # a poll of the pool's stats page
        t = conn.send(t + conn.rtt, False, app_data(rng, 900))
        conn.close(t + 0.3)
    return Result([])


def sc_neg_http_browsing(cap: Capture) -> Result:
    rng = cap.rng
    resolver = cap.lan("192.168.30.1", "00:0d:b9")
    desktop = cap.lan("192.168.30.60", "f8:bc:12")
    sites = [("www.example.com", "198.51.100.120"), ("news.example.org", "203.0.113.121"),
             ("cdn.example.net", "198.51.100.122")]
    ua = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
    t = T0 + 22800.0
    for name, ip in sites:
        t = dns_lookup(cap, t, desktop, resolver, name, [(name, 1, 3600, ip)])
        server = cap.remote(ip, ttl=57)
        conn = cap.tcp(desktop, server, 80, rtt=0.021)
        t = conn.open(t + 0.0004)
        for path, ctype, size in (("/", "text/html; charset=UTF-8", rng.randrange(4000, 16000)),
                                  ("/static/site.css", "text/css", rng.randrange(2000, 9000)),
                                  ("/fonts/site.woff2", "font/woff2", rng.randrange(3000, 12000)),
                                  ("/favicon.ico", "text/html", 0)):
            req = http_request("GET", path, [
                ("Host", name), ("User-Agent", ua),
                ("Accept", "text/html,application/xhtml+xml,*/*;q=0.8"),
                ("Accept-Language", "en-US,en;q=0.5"), ("Accept-Encoding", "gzip, deflate"),
                ("Connection", "keep-alive")])
            if size:
                body = (b"<!DOCTYPE html>\n<html><head><title>Example</title></head><body>"
                        + hx(rng, size // 2).encode()) if ctype.startswith("text/html") else \
                    rng.randbytes(size)
                resp = http_response("200 OK", [("Date", http_date(t)), ("Server", "nginx"),
                                                ("Content-Type", ctype),
                                                ("Content-Length", str(len(body)))], body)
            else:
                body = b"<html><body>Not Found</body></html>"
                resp = http_response("404 Not Found", [("Date", http_date(t)),
                                                       ("Server", "nginx"),
                                                       ("Content-Type", ctype),
                                                       ("Content-Length", str(len(body)))], body)
            t = conn.exchange(t + rng.uniform(0.002, 0.3), req, resp, think=0.008)
        conn.close(t + rng.uniform(5, 15), by_client=False)
        t += rng.uniform(2, 8)
    return Result([])


def ssh_kexinit(rng: random.Random, lists: Sequence[str]) -> bytes:
    payload = b"\x14" + rng.randbytes(16)
    for item in lists:
        payload += struct.pack("!I", len(item)) + item.encode()
    payload += b"\x00" + b"\x00\x00\x00\x00"
    pad = 8 - (len(payload) + 5) % 8
    pad += 8 if pad < 4 else 0
    return struct.pack("!IB", len(payload) + pad + 1, pad) + payload + b"\x00" * pad


def sc_neg_ssh(cap: Capture) -> Result:
    admin = cap.lan("10.20.3.5", "f8:bc:12")
    server = cap.remote("203.0.113.130", ttl=54)
    conn = cap.tcp(admin, server, 22, rtt=0.033)
    rng = cap.rng
    t = conn.open(T0 + 23400.0)
    t = conn.send(t + 0.0004, True, b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n")
    t = conn.send(t + conn.rtt + 0.002, False, b"SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.10\r\n")
    kex = "sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org"
    hostkeys = "ssh-ed25519,ecdsa-sha2-nistp256,rsa-sha2-512,rsa-sha2-256"
    ciphers = "chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr"
    macs = "umac-64-etm@openssh.com,hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com"
    comp = "none,zlib@openssh.com"
    lists = [kex, hostkeys, ciphers, ciphers, macs, macs, comp, comp, "", ""]
    t = conn.send(t + 0.001, True, ssh_kexinit(rng, lists))
    t = conn.send(t + conn.rtt + 0.001, False, ssh_kexinit(rng, lists))
    t = conn.send(t + 0.002, True, struct.pack("!IB", 44, 6) + b"\x1e" + struct.pack("!I", 32)
                  + rng.randbytes(32) + b"\x00" * 6)
    t = conn.send(t + conn.rtt + 0.004, False, rng.randbytes(rng.randrange(560, 600))
                  + struct.pack("!IB", 12, 10) + b"\x15" + b"\x00" * 10)
    t = conn.send(t + 0.0008, True, struct.pack("!IB", 12, 10) + b"\x15" + b"\x00" * 10
                  + rng.randbytes(52))
    t = conn.send(t + conn.rtt, False, rng.randbytes(52))
    for size in (68, 84, 116, 52, 644, 36, 500, 1012):
        t = conn.send(t + rng.uniform(0.01, 0.3), rng.random() < 0.5, rng.randbytes(size))
    end = t + 150
    while t < end:
        # Interactive typing: 36-byte keystroke packets, echoes, an occasional screenful.
        t = conn.send(t + rng.expovariate(1 / 0.6), True, rng.randbytes(36))
        t = conn.send(t + conn.rtt + 0.0005, False, rng.randbytes(36 if rng.random() < 0.8
                                                                  else rng.randrange(100, 2400)))
    conn.close(t + 0.4)
    return Result([])


def sc_neg_bulk_3333(cap: Capture) -> Result:
    host = cap.lan("10.20.3.6", "3c:ec:ef")
    server = cap.remote("198.51.100.140", ttl=53)
    conn = cap.tcp(host, server, 3333, rtt=0.027)
    rng = cap.rng
    t = conn.open(T0 + 24000.0)
    # A backup client pulling a compressed archive: binary request, binary reply.
    t = conn.send(t + 0.0002, True, b"BKP1" + struct.pack("!IQ", 1, 0) + rng.randbytes(48))
    t = conn.send(t + conn.rtt + 0.003, False, b"BKP1" + struct.pack("!IQ", 2, 140_000))
    for _ in range(14):
        t = conn.send(t + 0.0003, False, rng.randbytes(10_000), gap=0.00012)
    conn.close(t + 0.002, by_client=False)
    return Result([])


def sc_neg_dns_ordinary(cap: Capture) -> Result:
    resolver = cap.lan("10.20.0.53", "00:50:56")
    hosts = [cap.lan(f"10.20.3.{i}", "f8:bc:12") for i in (7, 8, 9)]
    names = [
        ("deb.debian.org", [("deb.debian.org", 5, 3600, "debian.map.fastlydns.net"),
                            ("debian.map.fastlydns.net", 1, 30, "198.51.100.150")]),
        ("github.com", [("github.com", 1, 60, "203.0.113.151")]),
        ("api.github.com", [("api.github.com", 1, 60, "203.0.113.152")]),
        ("www.google.com", [("www.google.com", 1, 300, "198.51.100.153")]),
        ("login.microsoftonline.com", [
            ("login.microsoftonline.com", 5, 3600, "login.mso.msidentity.com"),
            ("login.mso.msidentity.com", 5, 300, "ak.privatelink.msidentity.com"),
            ("ak.privatelink.msidentity.com", 1, 60, "203.0.113.154")]),
        ("time.cloudflare.com", [("time.cloudflare.com", 1, 300, "198.51.100.155")]),
    ]
    t = T0 + 24600.0
    for i, (name, chain) in enumerate(names * 2):
        t = dns_lookup(cap, t + cap.rng.uniform(0.5, 8), hosts[i % 3], resolver, name, chain)
    return Result([])


# -- the demo -----------------------------------------------------------------------------------


def browse_tls(cap: Capture, ts: float, host: Host, resolver: Host, name: str, ip: str,
               *, pages: int = 3) -> float:
    t = dns_lookup(cap, ts, host, resolver, name, [(name, 1, 300, ip)])
    server = cap.remote(ip, ttl=cap.rng.choice((52, 55, 57, 119)))
    conn = cap.tcp(host, server, 443, rtt=cap.rng.uniform(0.008, 0.06))
    rng = cap.rng
    t = conn.open(t + 0.0004)
    t = tls13_open(conn, t + 0.0002, chrome_hello(rng, name),
                   cert_size=rng.randrange(2500, 4200))
    for _ in range(pages):
        t = conn.send(t + rng.uniform(0.01, 2.5), True, app_data(rng, rng.randrange(300, 900)))
        t = conn.send(t + conn.rtt + rng.uniform(0.01, 0.08), False,
                      app_data(rng, rng.randrange(200, 5000)), gap=0.00008)
    conn.close(t + rng.uniform(1, 8), by_client=rng.random() < 0.5)
    return t


def sc_demo(cap: Capture) -> Result:
    rng = cap.rng
    start = T0 + 27000.0
    resolver = cap.lan("10.20.0.53", "00:50:56")
    office = [cap.lan(f"192.168.30.{n}", "f8:bc:12") for n in (61, 62, 63, 64, 65)]
    sites = [("www.example.com", "198.51.100.120"), ("news.example.org", "203.0.113.121"),
             ("mail.example.net", "198.51.100.160"), ("docs.example.com", "203.0.113.161"),
             ("intranet-sso.example.com", "198.51.100.162"), ("cdn.example.net",
                                                              "198.51.100.122")]
    for host in office:
        t = start + rng.uniform(0, 5)
        while t < start + 55:
            name, ip = rng.choice(sites)
            browse_tls(cap, t, host, resolver, name, ip, pages=rng.randrange(1, 3))
            t += rng.uniform(12, 30)
    for i in range(12):
        name = rng.choice(("time.cloudflare.com", "github.com", "deb.debian.org"))
        dns_lookup(cap, start + rng.uniform(0, 58), office[i % 5], resolver, name,
                   [(name, 1, 300, "198.51.100.155")])

    xmrig_host = cap.lan("10.20.12.8", "00:50:56")
    supportxmr = cap.remote("198.51.100.23", ttl=50)
    plain = cap.tcp(xmrig_host, supportxmr, 3333, rtt=0.094)
    t, xmr_methods = xmrig_session(plain, start + 3.1, 56)

    cg_host = cap.lan("10.20.4.17", "ac:1f:6b")
    slush = cap.remote("203.0.113.10", ttl=51)
    cg = cap.tcp(cg_host, slush, 3333, rtt=0.041)
    t, cg_methods = cgminer_session(cg, start + 8.4, 50)

    tls_host = cap.lan("10.20.12.9", "00:50:56")
    t = dns_lookup(cap, start + 15.2, tls_host, resolver, "pool.supportxmr.com",
                   [("pool.supportxmr.com", 1, 300, supportxmr.ip)])
    tls = cap.tcp(tls_host, supportxmr, 9000, rtt=0.094)
    t = tls.open(t + 0.0008)
    hello = openssl111_hello(rng, None)
    ja3, ja3_hash = ja3_of(hello)
    ja4 = ja4_of(hello)
    t = tls13_open(tls, t + 0.0003, hello)
    tls_stratum_traffic(tls, t, start + 59)
    return Result(
        [plain.alert("cryptonote", methods=_methods(xmr_methods)),
         cg.alert("stratum-v1", methods=_methods(cg_methods)),
         tls.alert("tls", tls=True, sni=None, ja3=ja3, ja3_hash=ja3_hash, ja4=ja4)],
        dns=[{"client_ip": tls_host.ip, "name": "pool.supportxmr.com",
              "answers": [supportxmr.ip]}])


# -- an internal mining proxy ------------------------------------------------------------------

PROXY_AGENT = "xmrig-proxy/6.21.0 (Linux x86_64) libuv/1.44.2 gcc/11.2.0"
PROXY_WALLET = ("48ASi45ub7Qe4ZE36UT5G6cU4ud8Fhhe4deS4F3cw9KTAb8dLcukC7edhDQ7cn5d4gEYkbUrMWe"
                "WQLGsCmrG6dLaYyNoVKf")
PROXY_MINERS = 20


def mining_proxy(cap: Capture, *, upstream_tls: bool) -> Result:
    """xmrig-proxy on an internal server: 20 internal XMRig miners log in to it with a
    placeholder login (the wallet is the proxy's business), and the proxy keeps one session
    of its own to the public pool, plain CryptoNote or TLS with SNI."""
    rng = cap.rng
    start = T0 + 30600.0
    proxy = cap.lan("10.30.0.10", "52:54:00", name="mine-proxy")
    resolver = cap.lan("10.30.0.53", "52:54:00")
    pool = cap.remote("198.51.100.23", ttl=50)
    alerts: list[dict[str, Any]] = []
    start = dns_lookup(cap, start, proxy, resolver, "pool.supportxmr.com",
                       [("pool.supportxmr.com", 1, 300, pool.ip)]) + 0.0008
    if upstream_tls:
        up = cap.tcp(proxy, pool, 443, rtt=0.094)
        t = up.open(start)
        hello = openssl111_hello(rng, "pool.supportxmr.com")
        ja3, ja3_hash = ja3_of(hello)
        t = tls13_open(up, t + 0.0003, hello)
        t = tls_stratum_traffic(up, t, start + 90)
        up.close(t + 0.4)
        alerts.append(up.alert("tls", tls=True, sni="pool.supportxmr.com", ja3=ja3,
                               ja3_hash=ja3_hash, ja4=ja4_of(hello)))
    else:
        up = cap.tcp(proxy, pool, 3333, rtt=0.094)
        t, methods = xmrig_session(up, start, 90, agent=PROXY_AGENT, rigid="mine-proxy",
                                   login=PROXY_WALLET)
        up.close(t + 0.4)
        alerts.append(up.alert("cryptonote", methods=_methods(methods)))
    for n in range(PROXY_MINERS):
        miner = cap.lan(f"10.30.1.{11 + n}", "00:50:56")
        conn = cap.tcp(miner, proxy, 3333, rtt=rng.uniform(0.0002, 0.0009))
        t, methods = xmrig_session(conn, start + 1.5 + n * rng.uniform(0.6, 1.4), 45,
                                   rigid=f"node-{11 + n:02d}", login="x")
        conn.close(t + 0.3)
        alerts.append(conn.alert("cryptonote", methods=_methods(methods)))
    return Result(alerts, dns=[{"client_ip": proxy.ip, "name": "pool.supportxmr.com",
                                "answers": [pool.ip]}])


def sc_proxy_plain(cap: Capture) -> Result:
    return mining_proxy(cap, upstream_tls=False)


def sc_proxy_tls(cap: Capture) -> Result:
    return mining_proxy(cap, upstream_tls=True)


# ---------------------------------------------------------------------------------------------
# The catalogue
# ---------------------------------------------------------------------------------------------

# One seed for every wrapped copy, so each holds the very same session (same ports, ISNs,
# payloads, timing) and only the encapsulation differs.
# ---------------------------------------------------------------------------------------------
# Other ways out: solo mining on node RPC, proxies, WebSocket miners, TLS without a name
# ---------------------------------------------------------------------------------------------

XMR_WALLET = ("44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2"
              "wfn3RVGQBEP3A")


def _leb128(n: int) -> bytes:
    """CryptoNote's varint (7 bits per byte, low first), not Bitcoin's CompactSize."""
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def monero_template(rng: random.Random, height: int, ts: float) -> str:
    """A v16 Monero block template: header, coinbase with one tagged-key output, extra with
    the tx pubkey and an 8-byte reserved nonce, no other transactions."""
    blob = bytearray([16, 16]) + _leb128(int(ts)) + rng.randbytes(32) + bytes(4)
    blob += _leb128(2) + _leb128(height + 60) + b"\x01\xff" + _leb128(height)
    blob += b"\x01" + _leb128(600_000_000_000 + rng.randrange(10**9)) + b"\x03"
    blob += rng.randbytes(32) + rng.randbytes(1)
    extra = b"\x01" + rng.randbytes(32) + b"\x02\x08" + bytes(8)
    blob += _leb128(len(extra)) + extra + b"\x00" + _leb128(0)
    return blob.hex()


def monerod_reply(obj: Any, ts: float) -> bytes:
    # monerod's epee server: pretty-printed JSON, "Server: Epee-based".
    body = json.dumps(obj, indent=2).encode()
    return http_response("200 Ok", [("Server", "Epee-based"), ("Content-Length", str(len(body))),
                                    ("Content-Type", "application/json"),
                                    ("Last-Modified", http_date(ts)),
                                    ("Accept-Ranges", "bytes")], body)


def xmrig_http(method: str, host: str, path: str, body: bytes = b"",
               extra: Sequence[tuple[str, str]] = ()) -> bytes:
    """XMRig's HttpClient as recorded in pcaps/lab/xmrig_daemon.pcap: its headers live in a
    std::map, so they go out sorted by name; Host is the address without the port."""
    headers = [("Connection", "close"), ("Host", host.rsplit(":", 1)[0]),
               ("User-Agent", "XMRig/6.26.0 (Linux x86_64) libuv/1.44.2 gcc/12.2.0"), *extra]
    if body:
        headers += [("Content-Length", str(len(body))), ("Content-Type", "application/json")]
    return http_request(method, path, sorted(headers), body)


def sc_monero_daemon_solo(cap: Capture) -> Result:
    miner = cap.lan("10.20.18.21", "ac:1f:6b")
    node = cap.remote("203.0.113.81", ttl=51)
    rng = cap.rng
    host = f"{node.ip}:18081"
    height = 3_312_457
    t = T0 + 30_000.0
    alerts = []
    # XMRig --daemon: one connection per request (Connection: close); /getheight every second,
    # a template when the height moves, submitblock when a share meets the block target.
    for i in range(8):
        conn = cap.tcp(miner, node, 18081, rtt=0.031)
        t = conn.open(t)
        if i in (0, 5):
            req = jline({"id": i, "jsonrpc": "2.0", "method": "getblocktemplate", "params": {
                "wallet_address": XMR_WALLET, "extra_nonce": hx(rng, 8)}})[:-1]
            tpl = monero_template(rng, height, t)
            resp = monerod_reply({"id": i, "jsonrpc": "2.0", "result": {
                "blockhashing_blob": tpl[:152], "blocktemplate_blob": tpl,
                "difficulty": 389_203_311_752, "difficulty_top64": 0,
                "expected_reward": 600_153_520_000, "height": height, "next_seed_hash": "",
                "prev_hash": hx(rng, 32), "reserved_offset": 130, "seed_hash": hx(rng, 32),
                "seed_height": 3_311_616, "status": "OK", "untrusted": False,
                "wide_difficulty": "0x5a9e7d6888"}}, t)
            t = conn.exchange(t + 0.0003, xmrig_http("POST", host, "/json_rpc", req), resp)
            alerts.append(conn.alert("monero-daemon-rpc", methods=["getblocktemplate"]))
        elif i == 7:
            req = jline({"id": i, "jsonrpc": "2.0", "method": "submitblock",
                         "params": [monero_template(rng, height, t)]})[:-1]
            resp = monerod_reply({"id": i, "jsonrpc": "2.0", "result": {
                "block_id": hx(rng, 32), "status": "OK", "untrusted": False}}, t)
            t = conn.exchange(t + 0.0003, xmrig_http(
                "POST", host, "/json_rpc", req, [("X-Hash-Difficulty", "412883190144")]), resp)
            alerts.append(conn.alert("monero-daemon-rpc", methods=["submitblock"]))
        else:
            if i == 4:
                height += 1
            resp = monerod_reply({"hash": hx(rng, 32), "height": height, "status": "OK",
                                  "untrusted": False}, t)
            t = conn.exchange(t + 0.0003, xmrig_http("GET", host, "/getheight"), resp)
        conn.close(t + 0.0002, by_client=False)
        t += 1.0
    return Result(alerts)


def sc_neg_monerod_rpc(cap: Capture) -> Result:
    rng = cap.rng
    node = cap.remote("203.0.113.82", ttl=51)
    t = T0 + 30_600.0
    # A wallet (monero-wallet-rpc style) and a monitoring exporter polling a public node.
    wallet = cap.lan("10.30.4.17", "3c:ec:ef")
    conn = cap.tcp(wallet, node, 18081, rtt=0.029)
    t = conn.open(t)
    height = 3_312_460
    for i, method in enumerate(["get_info", "get_height", "get_block_count",
                                "get_last_block_header", "get_fee_estimate", "get_info",
                                "get_last_block_header"]):
        body = jline({"jsonrpc": "2.0", "id": "0", "method": method}, spaced=True)[:-1]
        if method == "get_info":
            result: dict[str, Any] = {"height": height, "target_height": 0,
                                      "difficulty": 389_203_311_752, "top_block_hash":
                                      hx(rng, 32), "status": "OK", "synchronized": True,
                                      "nettype": "mainnet", "version": "0.18.3.4-release"}
        elif method == "get_height":
            result = {"height": height, "hash": hx(rng, 32), "status": "OK"}
        elif method == "get_block_count":
            result = {"count": height, "status": "OK", "untrusted": False}
        elif method == "get_fee_estimate":
            result = {"fee": 20000, "quantization_mask": 10000, "status": "OK"}
        else:
            result = {"block_header": {"height": height - 1, "hash": hx(rng, 32),
                                       "difficulty": 389_203_311_752, "reward": 600_000_000_000,
                                       "timestamp": int(t) - 80, "major_version": 16},
                      "status": "OK", "untrusted": False}
        req = http_request("POST", "/json_rpc", [("Host", f"{node.ip}:18081"),
                                                 ("User-Agent", "python-requests/2.31.0"),
                                                 ("Content-Type", "application/json"),
                                                 ("Content-Length", str(len(body)))], body)
        t = conn.exchange(t + (0.0004 if i == 0 else rng.uniform(8, 12)), req,
                          monerod_reply({"id": "0", "jsonrpc": "2.0", "result": result}, t))
    conn.close(t + 0.3)
    # An explorer's legacy endpoints, and bitcoind's getblockchaininfo from a dashboard.
    exp = cap.tcp(wallet, node, 18081, rtt=0.029)
    t = exp.open(t + 2.0)
    for path in ("/getheight", "/get_transaction_pool_stats", "/getinfo"):
        req = http_request("GET", path, [("Host", f"{node.ip}:18081"),
                                         ("User-Agent", "curl/7.88.1"), ("Accept", "*/*")])
        t = exp.exchange(t + 1.0, req, monerod_reply({"height": height, "status": "OK",
                                                      "untrusted": False}, t))
    exp.close(t + 0.1)
    btc = cap.remote("203.0.113.83", ttl=51)
    mon = cap.tcp(wallet, btc, 8332, rtt=0.02)
    t = mon.open(t + 1.0)
    body = jline({"jsonrpc": "1.0", "id": "grafana", "method": "getblockchaininfo",
                  "params": []})[:-1]
    req = http_request("POST", "/", [("Host", f"{btc.ip}:8332"), ("Authorization",
                                     "Basic " + base64.b64encode(b"mon:pw").decode()),
                                     ("Content-Type", "application/json"),
                                     ("Content-Length", str(len(body)))], body)
    resp_body = jline({"result": {"chain": "main", "blocks": 928_600, "headers": 928_600,
                                  "difficulty": 1.2e14, "mediantime": int(t) - 900},
                       "error": None, "id": "grafana"})
    t = mon.exchange(t + 0.001, req, http_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length",
                                                           str(len(resp_body)))], resp_body))
    mon.close(t + 0.1)
    return Result([])


def socks5_request(host: str, port: int) -> bytes:
    return bytes([5, 1, 0, 3, len(host)]) + host.encode() + struct.pack("!H", port)


def sc_socks_proxies(cap: Capture) -> Result:
    rng = cap.rng
    miner = cap.lan("10.20.19.5", "00:50:56")
    proxy = cap.lan("10.20.0.8", "00:50:56", name="proxy")
    alerts = []
    # XMRig -x: SOCKS5, no auth, domain target; then XMRig's TLS (no SNI, no ALPN) inside.
    conn = cap.tcp(miner, proxy, 1080, rtt=0.0006)
    t = conn.open(T0 + 31_200.0)
    t = conn.send(t + 0.0002, True, b"\x05\x01\x00")
    t = conn.send(t + 0.0008, False, b"\x05\x00")
    t = conn.send(t + 0.0001, True, socks5_request("pool.supportxmr.com", 443))
    t = conn.send(t + 0.09, False, b"\x05\x00\x00\x01" + bytes(6))
    t = tls13_eager(conn, t + 0.0002, openssl111_hello(rng, None), app_data(rng, 591),
                    app_data(rng, 465), cert_size=2600)
    t = tls_stratum_traffic(conn, t, t + 90, login=False)
    conn.close(t + 0.4)
    alerts.append(conn.alert("tls", tls=True, proxy="socks5"))
    # SOCKS4 by address to a pool port, plain CryptoNote inside.
    conn = cap.tcp(miner, proxy, 1080, rtt=0.0006)
    t = conn.open(T0 + 31_500.0)
    t = conn.send(t + 0.0002, True, b"\x04\x01" + struct.pack("!H", 3333)
                  + socket.inet_aton("198.51.100.41") + b"\0")
    t = conn.send(t + 0.07, False, b"\x00\x5a" + bytes(6))
    login = {"id": 1, "jsonrpc": "2.0", "method": "login", "params": {
        "login": XMR_WALLET, "pass": "x", "agent": XMRIG_AGENT, "algo": ["rx/0"]}}
    t = conn.send(t + 0.0003, True, jline(login))
    job = {"blob": "1010" + hx(rng, 74), "job_id": hx(rng, 4), "target": "b88d0600",
           "algo": "rx/0", "height": 3_312_457, "seed_hash": hx(rng, 32)}
    t = conn.send(t + 0.07, False, jline({"id": 1, "jsonrpc": "2.0", "error": None, "result": {
        "id": hx(rng, 8), "job": job, "extensions": ["algo"], "status": "OK"}}))
    conn.close(t + 20.0)
    alerts.append(conn.alert("cryptonote", methods=["login"], proxy="socks4"))
    # A browser's SOCKS5 connection to an ordinary site: not mining.
    conn = cap.tcp(miner, proxy, 1080, rtt=0.0006)
    t = conn.open(T0 + 31_600.0)
    t = conn.send(t + 0.0002, True, b"\x05\x01\x00")
    t = conn.send(t + 0.0008, False, b"\x05\x00")
    t = conn.send(t + 0.0001, True, socks5_request("www.debian.org", 443))
    t = conn.send(t + 0.03, False, b"\x05\x00\x00\x01" + bytes(6))
    t = conn.send(t + 0.0002, True, chrome_hello(rng, "www.debian.org"))
    t = conn.send(t + 0.03, False, tls13_server_flight(rng, bytes(32), 3100))
    conn.close(t + 1.0)
    return Result(alerts)


def sc_http_connect(cap: Capture) -> Result:
    rng = cap.rng
    miner = cap.lan("10.20.19.6", "00:50:56")
    proxy = cap.lan("10.20.0.9", "00:50:56", name="squid")
    # A miner behind the corporate proxy: CONNECT names the pool, then TLS without SNI.
    conn = cap.tcp(miner, proxy, 3128, rtt=0.0007)
    t = conn.open(T0 + 32_000.0)
    t = conn.send(t + 0.0002, True, http_request("CONNECT", "xmr-eu1.nanopool.org:14433", [
        ("Host", "xmr-eu1.nanopool.org:14433"), ("User-Agent", "curl/7.88.1"),
        ("Proxy-Connection", "Keep-Alive")]))
    t = conn.send(t + 0.11, False, b"HTTP/1.1 200 Connection established\r\n\r\n")
    t = tls13_eager(conn, t + 0.0003, openssl111_hello(rng, None), app_data(rng, 591),
                    app_data(rng, 465), cert_size=2700)
    t = tls_stratum_traffic(conn, t, t + 60, login=False)
    conn.close(t + 0.2)
    alerts = [conn.alert("tls", tls=True, proxy="http-connect")]
    # The same proxy carrying an ordinary HTTPS visit: no alert.
    conn = cap.tcp(miner, proxy, 3128, rtt=0.0007)
    t = conn.open(T0 + 32_100.0)
    t = conn.send(t + 0.0002, True, http_request("CONNECT", "www.wikipedia.org:443", [
        ("Host", "www.wikipedia.org:443"), ("User-Agent", "Mozilla/5.0")]))
    t = conn.send(t + 0.03, False, b"HTTP/1.1 200 Connection established\r\n\r\n")
    t = conn.send(t + 0.0003, True, chrome_hello(rng, "www.wikipedia.org"))
    t = conn.send(t + 0.03, False, tls13_server_flight(rng, bytes(32), 3100))
    conn.close(t + 2.0)
    return Result(alerts)


def ws_frame(rng: random.Random, payload: bytes, *, masked: bool, opcode: int = 1) -> bytes:
    head = bytearray([0x80 | opcode])
    m = 0x80 if masked else 0
    if len(payload) < 126:
        head.append(m | len(payload))
    else:
        head.append(m | 126)
        head += struct.pack("!H", len(payload))
    if not masked:
        return bytes(head) + payload
    key = rng.randbytes(4)
    return bytes(head) + key + bytes(b ^ key[i & 3] for i, b in enumerate(payload))


def ws_upgrade(rng: random.Random, host: str, path: str, agent: str) -> tuple[bytes, bytes]:
    key = base64.b64encode(rng.randbytes(16)).decode()
    accept = base64.b64encode(hashlib.sha1(
        (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
    req = http_request("GET", path, [("Host", host), ("User-Agent", agent),
                                     ("Upgrade", "websocket"), ("Connection", "Upgrade"),
                                     ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", "13"),
                                     ("Origin", f"http://{host}")])
    resp = http_response("101 Switching Protocols", [("Upgrade", "websocket"),
                                                     ("Connection", "Upgrade"),
                                                     ("Sec-WebSocket-Accept", accept)])
    return req, resp


def _cjson(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def sc_websocket_miners(cap: Capture) -> Result:
    rng = cap.rng
    browser = cap.lan("192.168.30.61", "f8:bc:12")
    proxy = cap.remote("198.51.100.90", ttl=54)
    chrome = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/120.0.0.0 Safari/537.36")
    alerts = []
    # CoinHive-protocol miner (coin-hive-stratum bridge) over plain ws:// on 8892.
    conn = cap.tcp(browser, proxy, 8892, rtt=0.027)
    t = conn.open(T0 + 33_000.0)
    req, resp = ws_upgrade(rng, f"{proxy.ip}:8892", "/", chrome)
    t = conn.exchange(t + 0.0004, req, resp)
    t = conn.send(t + 0.02, True, ws_frame(rng, _cjson({"type": "auth", "params": {
        "site_key": "x7Qp2LmZkq9v", "type": "anonymous", "user": None, "goal": 0}}),
        masked=True))
    t = conn.send(t + conn.rtt, False, ws_frame(rng, _cjson({"type": "authed", "params": {
        "token": "", "hashes": 0}}), masked=False))
    for i in range(6):
        job: dict[str, Any] = {"job_id": hx(rng, 6), "blob": "0707" + hx(rng, 74),
                               "target": "ffff0000"}
        t = conn.send(t + rng.uniform(1, 3), False, ws_frame(rng, _cjson(
            {"type": "job", "params": job}), masked=False))
        t = conn.send(t + rng.uniform(4, 9), True, ws_frame(rng, _cjson({"type": "submit",
            "params": {"job_id": job["job_id"], "nonce": hx(rng, 4),
                       "result": hx(rng, 32)}}), masked=True))
        t = conn.send(t + conn.rtt, False, ws_frame(rng, _cjson(
            {"type": "hash_accepted", "params": {"hashes": 256 * (i + 1)}}), masked=False))
    conn.close(t + 0.5)
    alerts.append(conn.alert("coinhive-ws", methods=["auth", "authed", "hash_accepted", "job",
                                                     "submit"]))
    # webminerpool: handshake naming the real pool and wallet, jobs, solved.
    conn = cap.tcp(browser, proxy, 8181, rtt=0.027)
    t = conn.open(T0 + 33_200.0)
    req, resp = ws_upgrade(rng, f"{proxy.ip}:8181", "/", chrome)
    t = conn.exchange(t + 0.0004, req, resp)
    t = conn.send(t + 0.03, True, ws_frame(rng, _cjson({
        "identifier": "handshake", "pool": "moneroocean.stream", "login": XMR_WALLET,
        "password": "web", "userid": "", "version": 7}), masked=True))
    for _ in range(4):
        job = {"identifier": "job", "job_id": hx(rng, 8), "algo": "cn", "variant": 1,
               "blob": "0b0b" + hx(rng, 74), "target": "b88d0600"}
        t = conn.send(t + rng.uniform(2, 6), False, ws_frame(rng, _cjson(job), masked=False))
        t = conn.send(t + rng.uniform(5, 9), True, ws_frame(rng, _cjson({
            "identifier": "solved", "job_id": job["job_id"], "nonce": hx(rng, 4),
            "result": hx(rng, 32)}), masked=True))
        t = conn.send(t + conn.rtt, False, ws_frame(rng, _cjson(
            {"identifier": "hashsolved"}), masked=False))
    conn.close(t + 0.5)
    alerts.append(conn.alert("webminerpool-ws", methods=["handshake", "hashsolved", "job",
                                                         "solved"]))
    return Result(alerts)


def sc_neg_websocket_chat(cap: Capture) -> Result:
    rng = cap.rng
    desk = cap.lan("192.168.30.62", "f8:bc:12")
    srv = cap.remote("198.51.100.95", ttl=54)
    conn = cap.tcp(desk, srv, 80, rtt=0.021)
    t = conn.open(T0 + 33_600.0)
    req, resp = ws_upgrade(rng, "chat.example.net", "/socket", "Mozilla/5.0 (X11; Linux x86_64)")
    t = conn.exchange(t + 0.0004, req, resp)
    t = conn.send(t + 0.01, True, ws_frame(rng, _cjson({"type": "auth", "params": {
        "token": hx(rng, 16)}}), masked=True))
    t = conn.send(t + conn.rtt, False, ws_frame(rng, _cjson({"type": "hello", "params": {
        "user": "mona", "unread": 3}}), masked=False))
    for i in range(8):
        if i % 3 == 0:
            # A job board's push: {"type": "job"} without a blob and target is not mining.
            msg = {"type": "job", "params": {"job_id": 4100 + i, "title": "Backend developer",
                                             "location": "Remote"}}
        else:
            msg = {"type": "message", "params": {"from": "lee", "text": "lunch at 12?",
                                                 "ts": int(t)}}
        t = conn.send(t + rng.uniform(3, 12), False, ws_frame(rng, _cjson(msg), masked=False))
        t = conn.send(t + rng.uniform(1, 5), True, ws_frame(rng, _cjson({
            "type": "submit", "params": {"text": "sounds good", "nonce": hx(rng, 4)}}),
            masked=True))
        t = conn.send(t + 0.5, True, ws_frame(rng, b"", masked=True, opcode=9))
        t = conn.send(t + conn.rtt, False, ws_frame(rng, b"", masked=False, opcode=10))
    conn.close(t + 0.3)
    return Result([])


def sc_neg_tls_longlived(cap: Capture) -> Result:
    """Long-lived TLS without SNI or ALPN that is not stratum: MQTT, IMAP IDLE, a WebSocket
    notification feed, each by address with the OpenSSL 1.1.1 default hello."""
    rng = cap.rng
    host = cap.lan("10.30.7.40", "00:50:56")
    broker = cap.remote("198.51.100.120", ttl=55)
    imap = cap.remote("198.51.100.121", ttl=55)
    feed = cap.remote("198.51.100.122", ttl=55)
    # MQTT over TLS on 8883: CONNECT/CONNACK, SUBSCRIBE/SUBACK, telemetry pushes, PINGREQ.
    conn = cap.tcp(host, broker, 8883, rtt=0.015)
    t = conn.open(T0 + 34_000.0)
    t = tls13_eager(conn, t + 0.0002, openssl111_hello(rng, None), app_data(rng, 38),
                    app_data(rng, 4), cert_size=1900)
    t = conn.send(t + 0.0003, True, app_data(rng, 19))
    t = conn.send(t + conn.rtt, False, app_data(rng, 5))
    end = t + 300
    next_ping = t + 60
    while t < end:
        nxt = t + rng.uniform(2, 4)
        if nxt > next_ping:
            t = conn.send(next_ping, True, app_data(rng, 2))
            t = conn.send(t + conn.rtt, False, app_data(rng, 2))
            next_ping += 60
        t = conn.send(max(nxt, t + 0.01), False, app_data(rng, rng.randrange(140, 420)))
    conn.close(t + 0.1)
    # IMAP IDLE on 993: the server speaks first; EXISTS pushes; the client re-IDLEs.
    conn = cap.tcp(host, imap, 993, rtt=0.02)
    t = conn.open(T0 + 34_400.0)
    t = tls13_open(conn, t + 0.0002, openssl111_hello(rng, None), cert_size=2600)
    t = conn.send(t + 0.001, False, app_data(rng, 96))
    t = conn.send(t + 0.01, True, app_data(rng, 48))
    t = conn.send(t + conn.rtt, False, app_data(rng, 210))
    t = conn.send(t + 0.01, True, app_data(rng, 21))
    t = conn.send(t + conn.rtt, False, app_data(rng, 180))
    t = conn.send(t + 0.01, True, app_data(rng, 12))
    t = conn.send(t + conn.rtt, False, app_data(rng, 22))
    for _ in range(12):
        t = conn.send(t + rng.uniform(5, 25), False, app_data(rng, rng.choice([17, 19, 160])))
    conn.close(t + 0.1)
    # A WebSocket notification feed over TLS by address (a Node.js service, no ALPN).
    conn = cap.tcp(host, feed, 443, rtt=0.018)
    t = conn.open(T0 + 34_800.0)
    t = tls13_eager(conn, t + 0.0002, openssl111_hello(rng, None), app_data(rng, 231),
                    app_data(rng, 129), cert_size=2400)
    for _ in range(14):
        t = conn.send(t + rng.uniform(2, 6), False, app_data(rng, rng.randrange(120, 600)))
        if rng.random() < 0.3:
            t = conn.send(t + 0.2, True, app_data(rng, 6))
    conn.close(t + 0.1)
    return Result([])


WRAPPED_SEED = 126

SCENARIOS: tuple[Scenario, ...] = (
    Scenario("stratum_v1_cgminer.pcap", 101,
             "cgminer 4.10.0 to a slush-style pool on 3333: subscribe, authorize, "
             "set_difficulty, notify every 15-35 s, submits with results (some rejected), a "
             "difficulty retarget, FIN teardown; both sides spaced JSON", sc_stratum_cgminer),
    Scenario("stratum_v1_cpuminer.pcap", 102,
             "pooler cpuminer: `{\"id\": 1, \"method\": \"mining.subscribe\", \"params\": []}`, "
             "submits with its `\"id\":4` quirk, ckpool-style compact pool JSON, ends in RST",
             sc_stratum_cpuminer),
    Scenario("stratum_v1_zcash.pcap", 103,
             "nheqminer 0.5c Zcash stratum on 2142: 4-param subscribe, `mining.set_target`, "
             "8-param notify, submits carrying 1344-byte Equihash solutions (two segments)",
             sc_stratum_zcash),
    Scenario("stratum_v1_extensions.pcap", 104,
             "ASIC (bmminer) with `mining.configure` version rolling, `mining.suggest_difficulty`, "
             "`mining.extranonce.subscribe`, 6-param submits, pool `mining.ping`, "
             "`mining.set_extranonce`, `client.show_message`, `client.reconnect`; then a DNS "
             "lookup of the new host and a second session there", sc_stratum_extensions),
    Scenario("cryptonote_xmrig.pcap", 105,
             "XMRig 6.21.0 on 3333: login (wallet, pass, agent, rigid, algo list), login result "
             "with job, job pushes every 20-60 s, submits, keepalived after 60 s idle",
             sc_cryptonote_xmrig),
    Scenario("cryptonote_getjob.pcap", 106,
             "xmr-stak style CryptoNote on 14444: login without algo list, submits, `getjob` "
             "polls answered with bare jobs", sc_cryptonote_getjob),
    Scenario("eth_proxy.pcap", 107,
             "Claymore eth-proxy on 9999: eth_submitLogin with `worker` member, eth_getWork, "
             "pool pushes with id 0, eth_submitWork, eth_submitHashrate every 30 s",
             sc_eth_proxy),
    Scenario("ethereumstratum_v1.pcap", 108,
             "EthereumStratum/1.0.0 on 4444: subscribe [\"EthMiner/0.19.0\", "
             "\"EthereumStratum/1.0.0\"], authorize, set_difficulty, notify, submit",
             sc_ethereumstratum_v1),
    Scenario("ethereumstratum_v2.pcap", 109,
             "EthereumStratum/2.0.0 on 4444: mining.hello / result encoding \"plain\", "
             "subscribe, authorize, mining.set, notify, submit", sc_es2_plain),
    Scenario("ethereumstratum_v2_gzip.pcap", 110,
             "EthereumStratum/2.0.0 where the hello result says encoding \"gzip\": every later "
             "message in both directions is one gzip member (see framing below)", sc_es2_gzip),
    Scenario("getwork_http.pcap", 111,
             "bfgminer 5.2.0 getwork over HTTP/1.1 on 8332 (Basic auth, X-Mining-Extensions: "
             "midstate rollntime), responses with X-Stratum / X-Long-Polling, work submits, "
             "plus the long-poll connection to /LP", sc_getwork_http),
    Scenario("getblocktemplate_http.pcap", 112,
             "bfgminer getblocktemplate POSTs on 9332 with capabilities, full templates, then "
             "submitblock", sc_getblocktemplate_http),
    Scenario("eth_getwork_http.pcap", 113,
             "ethminer HTTP getwork on 8888: eth_getWork twice a second, eth_submitHashrate, "
             "eth_submitWork; keep-alive, no User-Agent", sc_eth_getwork_http),
    Scenario("tls_pool_nosni.pcap", 114,
             "DNS pool.supportxmr.com -> 198.51.100.23, then TLS 1.3 on 9000 with an OpenSSL "
             "1.1.1 ClientHello without SNI or ALPN, stratum-sized records for 4 minutes",
             sc_tls_nosni),
    Scenario("tls_pool_sni_bitminter.pcap", 115,
             "TLS 1.2 on 3333 with SNI us1.bitminter.com; the server sends its certificate "
             "(CN/SAN us1.bitminter.com) in the clear", sc_tls_sni_bitminter),
    Scenario("tls_coinhive_browser.pcap", 116,
             "a browser (Chrome-style GREASE hello) resolving and connecting to "
             "ws012.coinhive.com:443, WebSocket-sized records", sc_tls_coinhive),
    Scenario("dns_pool_udp.pcap", 117,
             "A and AAAA lookups of xmr-eu1.nanopool.org over UDP, answered through a two-step "
             "CNAME chain to the pool addresses", sc_dns_pool_udp),
    Scenario("dns_pool_tcp.pcap", 118,
             "the same lookup truncated over UDP (TC) and retried over TCP/53, A and AAAA "
             "pipelined on one connection", sc_dns_pool_tcp),
    Scenario("sv2_noise.pcap", 119,
             "Stratum V2 on 34255: 64-byte initiator key, 234-byte responder message, then "
             "Noise frames of 22 + (n + 16) bytes for SetupConnection, OpenStandardMiningChannel, "
             "NewMiningJob, SetNewPrevHash, SubmitSharesStandard, SubmitShares.Success",
             sc_sv2_noise),
    Scenario("sv2_plaintext.pcap", 120,
             "plaintext Stratum V2 on 34255: SetupConnection (vendor Bitmain, hardware S19j "
             "Pro, firmware braiins-os-2024-03), Success, OpenStandardMiningChannel, jobs, "
             "SubmitSharesStandard", sc_sv2_plaintext),
    Scenario("midflow_cryptonote.pcap", 121,
             "a CryptoNote session already running when the capture starts: first segment is "
             "the second half of a job line; job pushes, submits, keepalived",
             sc_midflow_cryptonote),
    Scenario("midflow_stratum_v1.pcap", 122,
             "a Stratum v1 session caught mid-stream: first segment starts inside a "
             "mining.notify; notify, set_difficulty and submits follow", sc_midflow_stratum),
    Scenario("split_login.pcap", 123,
             "an XMRig login line and a cgminer subscribe line, each split across three TCP "
             "segments 40-60 ms apart", sc_split_login),
    Scenario("split_clienthello.pcap", 124,
             "a ClientHello (SNI us1.bitminter.com) cut inside the server name across two "
             "segments", sc_split_clienthello),
    Scenario("out_of_order_retransmit.pcap", 125,
             "a pool burst delivered as segments 2, 3, 1, and a notify retransmitted as one "
             "segment overlapping the two already seen", sc_out_of_order),
    Scenario("wrap_vlan.pcap", WRAPPED_SEED,
             "a 60 s cgminer session in 802.1Q VLAN 120", sc_wrap_vlan),
    Scenario("wrap_qinq.pcap", WRAPPED_SEED,
             "the same session in QinQ: 802.1ad S-tag 3001, C-tag 120", sc_wrap_qinq),
    Scenario("wrap_ipv6_exthdr.pcap", WRAPPED_SEED,
             "the same session over IPv6 (fd00:20:4::17 -> 2001:db8:3333::10), every packet "
             "with a hop-by-hop and a destination-options header", sc_wrap_ipv6_ext),
    Scenario("wrap_gre.pcap", WRAPPED_SEED,
             "the same session inside plain GRE (IPv4 in GRE) to a sensor", _tunnelled("gre")),
    Scenario("wrap_erspan2.pcap", WRAPPED_SEED,
             "the same session mirrored as ERSPAN type II (GRE 0x88be, sequence numbers)",
             _tunnelled("erspan2")),
    Scenario("wrap_erspan3.pcap", WRAPPED_SEED,
             "the same session mirrored as ERSPAN type III (GRE 0x22eb, 100 ns timestamps)",
             _tunnelled("erspan3")),
    Scenario("wrap_vxlan.pcap", WRAPPED_SEED, "the same session inside VXLAN (UDP 4789, VNI 5001)",
             _tunnelled("vxlan")),
    Scenario("wrap_sll2.pcap", WRAPPED_SEED,
             "the same session captured with `tcpdump -i any` on the miner (LINUX_SLL2)",
             sc_wrap_sll2),
    Scenario("wrap_two_links.pcapng", WRAPPED_SEED,
             "pcapng with two interfaces: Ethernet (the cgminer session) and LINUX_SLL2 (an "
             "XMRig session)", sc_pcapng_two_links),
    Scenario("neg_bitcoin_p2p.pcap", 135,
             "Bitcoin P2P on 8333: version/verack, sendcmpct, inv/getdata/tx relay, headers, "
             "a full block (magic f9beb4d9, real checksums)", sc_neg_bitcoin_p2p),
    Scenario("neg_monero_levin.pcap", 136,
             "Monero Levin P2P on 18080: handshake (command 1001) with epee payloads, timed "
             "sync, transaction relay", sc_neg_monero_levin),
    Scenario("neg_ethereum_rlpx.pcap", 137,
             "Ethereum devp2p RLPx on 30303: EIP-8 auth/ack, encrypted frames",
             sc_neg_ethereum_rlpx),
    Scenario("neg_bitcoind_rpc.pcap", 138,
             "bitcoin-cli against bitcoind on 8332: getblockchaininfo (with a difficulty "
             "field), getbalance, getnetworkinfo", sc_neg_bitcoind_rpc),
    Scenario("neg_geth_rpc.pcap", 139,
             "web3.py against geth on 8545: eth_blockNumber, net_version, eth_getBalance, "
             "eth_gasPrice", sc_neg_geth_rpc),
    Scenario("neg_electrum.pcap", 140,
             "an Electrum wallet on 50001: server.version, headers/scripthash subscriptions, "
             "get_history, server.ping, header notifications", sc_neg_electrum),
    Scenario("neg_jsonrpc_echo.pcap", 141,
             "a generic JSON-RPC 2.0 service over raw TCP on 8080: subscribe, echo, notify",
             sc_neg_jsonrpc_echo),
    Scenario("neg_tls_nosni.pcap", 142,
             "TLS to ordinary servers by address on 443, no SNI: a short API call with the same "
             "OpenSSL 1.1.1 hello a miner sends, and a 120 kB curl download", sc_neg_tls_nosni),
    Scenario("neg_http_browsing.pcap", 143,
             "Firefox fetching pages, CSS, a web font and a 404 from three sites over HTTP",
             sc_neg_http_browsing),
    Scenario("neg_ssh.pcap", 144, "an interactive OpenSSH session on 22", sc_neg_ssh),
    Scenario("neg_bulk_3333.pcap", 145,
             "a 140 kB binary backup transfer from a service on port 3333", sc_neg_bulk_3333),
    Scenario("neg_dns_ordinary.pcap", 146,
             "DNS lookups of ordinary names (CNAME chains included)", sc_neg_dns_ordinary),
    Scenario("neg_pool_website.pcap", 148,
             "a browser reading two mining pools' web sites over HTTPS (pool DNS, SNI, ALPN h2)",
             sc_neg_pool_website),
    Scenario("monero_daemon_solo.pcap", 148,
             "XMRig --daemon style solo mining on a Monero node's RPC (18081): a connection "
             "per request (Connection: close), /getheight polls, getblocktemplate with "
             "wallet_address + extra_nonce answered with a v16 template, submitblock",
             sc_monero_daemon_solo),
    Scenario("neg_monerod_rpc.pcap", 149,
             "a wallet and an exporter polling a Monero node (get_info, get_height, "
             "get_block_count, get_last_block_header, get_fee_estimate, legacy /getheight), "
             "and bitcoind getblockchaininfo from a dashboard", sc_neg_monerod_rpc),
    Scenario("socks_proxies.pcap", 150,
             "an internal SOCKS proxy on 1080: XMRig -x SOCKS5 to pool.supportxmr.com:443 "
             "then TLS without SNI inside; SOCKS4 by address to 198.51.100.41:3333 with a "
             "CryptoNote login inside; a browser's SOCKS5 visit to www.debian.org (no alert)",
             sc_socks_proxies),
    Scenario("http_connect.pcap", 151,
             "a corporate proxy on 3128: CONNECT xmr-eu1.nanopool.org:14433 then TLS without "
             "SNI; CONNECT www.wikipedia.org:443 with a browser hello (no alert)",
             sc_http_connect),
    Scenario("websocket_miners.pcap", 152,
             "browser miners over ws://: the CoinHive protocol (coin-hive-stratum bridge) on "
             "8892 and webminerpool on 8181, client frames masked", sc_websocket_miners),
    Scenario("neg_websocket_chat.pcap", 153,
             "a WebSocket chat on 80: masked client messages, pushed messages, a job board's "
             "{\"type\": \"job\"} pushes without blob/target, pings", sc_neg_websocket_chat),
    Scenario("neg_tls_longlived.pcap", 154,
             "long-lived TLS by address without SNI/ALPN that is not stratum: MQTT on 8883 "
             "(telemetry pushes, PINGREQ), IMAP IDLE on 993 (server first), a WebSocket "
             "notification feed on 443", sc_neg_tls_longlived),
    Scenario("demo.pcap", 147,
             "60 s of an office network: five desktops browsing over TLS, DNS, and three miners "
             "(XMRig plain, cgminer, XMRig over TLS after resolving pool.supportxmr.com)",
             sc_demo),
    Scenario("proxy_stratum.pcap", 148,
             "an internal xmrig-proxy (10.30.0.10:3333) serving 20 internal XMRig miners that "
             "log in with a placeholder, and its own CryptoNote session to the public pool",
             sc_proxy_plain),
    Scenario("proxy_stratum_tls.pcap", 149,
             "the same proxy and miners, the proxy's upstream session over TLS with SNI "
             "pool.supportxmr.com", sc_proxy_tls),
)


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------

MAX_FILE_BYTES = 200_000
MAX_TOTAL_BYTES = 3_000_000

README_HEAD = """\
# Test captures

Small captures the project made itself with `tools/make_pcaps.py` (scapy for IP/TCP/UDP and
checksums, hand-built payloads, an own pcap/pcapng writer). Every file is reproducible byte for
byte: seeded `random.Random`, fixed timestamps (scenarios start at 2026-01-05 09:00 UTC plus an
offset), no wall clock. `tests/test_pcaps_generated.py` regenerates them and compares.

`lab/` holds something else: recordings of real clients (XMRig built from upstream source, the
lab's simulators, Mosquitto) made in the network-namespace lab by `deploy/lab/record.py`;
`lab/README.md` says how each was made and `lab/expected.json` what each must produce.

Regenerate with `python tools/make_pcaps.py` in an environment with the test extras (scapy,
cryptography); it writes the captures, `expected.json` and this file. Do not edit this README
or `expected.json` by hand: change the generator.

## What the files look like on the wire

- Full TCP life: SYN / SYN-ACK / ACK with Linux options (MSS, SACK permitted, timestamps,
  window scale 7), per-socket IP ids with DF, timestamps on every segment, data split at the
  MSS, ACKs as a Linux receiver sends them (every second full segment, delayed up to 40 ms),
  FIN/ACK or RST teardown. The tap sits next to the miners: their packets carry TTL 64, the
  pool's arrive one round trip later with the TTL left after its hops, from the router's MAC.
- Internal hosts are in 10.0.0.0/8, 192.168.0.0/16 and fd00::/8; servers in 198.51.100.0/24,
  203.0.113.0/24 and 2001:db8::/32.
- Payloads are written the way each program writes them: cgminer and cpuminer build JSON with
  `sprintf` (`", "` and `": "`, cgminer puts `params` first in submits, cpuminer always sends
  `"id":4`), XMRig and ckpool write compact JSON, slush-style pools write Python
  `json.dumps` output; every JSON-RPC message ends with `\\n`.
- `tshark -Y tcp.analysis.flags` is empty on every file except the one that exists to show
  it: `out_of_order_retransmit.pcap` (segments after a gap, an out-of-order segment, one
  overlapping retransmission). tshark 4.0 reports nothing malformed; its remaining notes come
  from its own guesses, not from the bytes: JSON-RPC on 8080 is taken for HTTP, the SMPP
  heuristic claims the plaintext Stratum V2 frames, its Bitcoin dissector predates
  `wtxidrelay`/`sendaddrv2` (BIP 339/155), and RST teardowns are noted where intended
  (`stratum_v1_cpuminer.pcap`, the long-poll connection in `getwork_http.pcap`).

## expected.json

One entry per file:

```
{"file": "...", "description": "...", "link_types": [1], "packets": N, "sha256": "...",
 "alerts": [{"client_ip", "client_port", "server_ip", "server_port", "dialect", "tls",
             "midflow", "methods"?, "sni"?, "ja3"?, "ja3_hash"?}],
 "unscored": [{"client_ip", "client_port", "server_ip", "server_port", "reason"}],
 "dns": [{"client_ip", "name", "answers"}]}
```

- `alerts`: every mining connection in the file, one per TCP connection; an empty list means
  the detector must stay silent. `client_*` is the miner. `methods` (where the stream is
  readable) are the sorted distinct JSON-RPC method names in both directions.
- `proxy`: the connection goes to a SOCKS or HTTP CONNECT proxy (`socks4`, `socks5`,
  `http-connect`); the handshake comes before the mining protocol.
- `dialect`: `stratum-v1` (Bitcoin-style `mining.*`, Zcash `set_target` included),
  `cryptonote`, `eth-proxy`, `ethereumstratum-1`, `ethereumstratum-2` (both are
  `ethereumstratum` in the corpus labels), `getwork-http`, `getblocktemplate-http`,
  `eth-getwork-http`, `tls` (pool over TLS), `browser-tls`, `stratum-v2`,
  `monero-daemon-rpc` (solo mining on a Monero node's RPC), `coinhive-ws` and
  `webminerpool-ws` (browser miners' WebSocket protocols).
- `unscored`: flows an alert on is neither a hit nor a false alert.
- `dns`: pool names the file resolves, so intel tests can check what the DNS decoder learns.
  A pool lookup alone is not a mining connection; `dns_pool_*.pcap` expect no alert.

## Framing assumption: EthereumStratum/2.0.0 with gzip

The ES/2.0.0 draft (EIP-1571) lets the pool answer `mining.hello` with `"encoding": "gzip"`
but does not say how compressed messages are delimited. `ethereumstratum_v2_gzip.pcap`
assumes: the `mining.hello` request and its response are plain newline-terminated JSON; every
later message in either direction is one complete gzip member (RFC 1952, mtime 0) whose
decompressed content is the JSON line including its `\\n`; members follow each other with no
separator (gzip members are self-delimiting, a newline would not be, since compressed bytes
can contain 0x0a).

## TLS fingerprints, checked with tshark

The pool flows without SNI use the OpenSSL 1.1.1 default client hello (TLS 1.3 with a 32-byte
legacy session id; no SNI, no ALPN, no padding). `tshark -r tls_pool_nosni.pcap -Y
tls.handshake.type==1 -T fields -e tls.handshake.ja3_full -e tls.handshake.ja3` prints:

```
JA3_TSHARK_OUTPUT
```

Note: the string often quoted as OpenSSL 1.1.1's (`...,0-11-10-13172-16-22-23-13-43-45-51-21,
...`, extensions NPN 13172, ALPN 16 and padding 21) is not what OpenSSL 1.1.1 sends by default;
without SNI and with its defaults the extension list is `11-10-35-22-23-13-43-45-51`, and
that is the one whose md5 is c34a54599a1fbaf1786aa6d633545a60.

## Files
"""


def _endpoint(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def must_produce(entry: dict[str, Any]) -> str:
    if not entry["alerts"]:
        note = "no alert"
        if entry["unscored"]:
            note += " (the DNS flow is unscored)"
        if entry["dns"]:
            names = ", ".join(sorted({d["name"] for d in entry["dns"]}))
            note += f"; DNS learns {names}"
        return note
    parts = []
    for alert in entry["alerts"]:
        text = (f"{alert['dialect']} {_endpoint(alert['client_ip'], alert['client_port'])} -> "
                f"{_endpoint(alert['server_ip'], alert['server_port'])}")
        flags = [f for f in ("tls", "midflow") if alert[f]]
        if alert.get("sni"):
            flags.append(f"SNI {alert['sni']}")
        if flags:
            text += " (" + ", ".join(flags) + ")"
        parts.append(text)
    head = f"{len(parts)} alert{'s' if len(parts) > 1 else ''}: "
    return head + "; ".join(parts)


def build_one(scenario: Scenario) -> tuple[bytes, dict[str, Any]]:
    cap = Capture(scenario.seed)
    result = scenario.build(cap)
    recs = cap.finish()
    if result.interfaces is not None:
        frames = [(r.ts, r.iface, result.interfaces[r.iface][2](r)) for r in recs]
        data = pcapng_bytes([(lt, name) for lt, name, _ in result.interfaces], frames)
        link_types = [lt for lt, _, _ in result.interfaces]
    else:
        data = pcap_bytes(result.linktype, [(r.ts, result.framing(r)) for r in recs])
        link_types = [result.linktype]
    entry: dict[str, Any] = {
        "file": scenario.file,
        "description": scenario.description,
        "link_types": link_types,
        "packets": len(recs),
        "sha256": hashlib.sha256(data).hexdigest(),
        "alerts": result.alerts,
        "unscored": result.unscored,
        "dns": result.dns,
    }
    return data, entry


def readme(entries: Sequence[dict[str, Any]], ja3_output: str) -> str:
    lines = [README_HEAD.replace("JA3_TSHARK_OUTPUT", ja3_output), "",
             "| file | what it holds | what it must produce |", "|---|---|---|"]
    for entry in entries:
        desc = entry["description"].replace("|", "\\|")
        lines.append(f"| `{entry['file']}` | {desc} | {must_produce(entry)} |")
    return "\n".join(lines) + "\n"


# The line tshark 4.0 printed for tls_pool_nosni.pcap (see README); the generator cannot run
# tshark itself without making the output depend on the installed Wireshark.
JA3_TSHARK = ("771,4866-4867-4865-49196-49200-159-52393-52392-52394-49195-49199-158-49188-"
              "49192-107-49187-49191-103-49162-49172-57-49161-49171-51-157-156-61-60-53-47-255,"
              "11-10-35-22-23-13-43-45-51,29-23-30-25-24,0-1-2\tc34a54599a1fbaf1786aa6d633545a60")


def generate(out: Path) -> list[dict[str, Any]]:
    """Write every capture, expected.json and README.md into out; returns the entries."""
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    total = 0
    for scenario in SCENARIOS:
        data, entry = build_one(scenario)
        if len(data) > MAX_FILE_BYTES:
            raise SystemExit(f"{scenario.file}: {len(data)} bytes, over {MAX_FILE_BYTES}")
        total += len(data)
        (out / scenario.file).write_bytes(data)
        entries.append(entry)
    if total > MAX_TOTAL_BYTES:
        raise SystemExit(f"captures total {total} bytes, over {MAX_TOTAL_BYTES}")
    doc = {"version": 1, "generator": "tools/make_pcaps.py", "files": entries}
    (out / "expected.json").write_text(json.dumps(doc, indent=1) + "\n")
    (out / "README.md").write_text(readme(entries, JA3_TSHARK))
    return entries


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "pcaps")
    args = parser.parse_args(argv)
    entries = generate(args.out)
    size = sum((args.out / e["file"]).stat().st_size for e in entries)
    print(f"wrote {len(entries)} captures ({size} bytes) to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
