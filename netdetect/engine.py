"""The pure detection core: frames in, Suspects out. No I/O, no clock, no asyncio.

Per packet the work is a header decode, one or two dict lookups and a few counters; only
flows still being inspected pay for reassembly and decoding (house rule 10). A flow moves
through modes: DEEP (reassemble the first bytes of each direction and run the decoders the
payload calls for), WATCH (bare TLS or Stratum V2: judge sizes and timing per packet),
SAMPLE (unidentified TCP: look at small packets for JSON-RPC, so a session that started
before the capture is still caught), DONE (nothing more to learn).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Iterable
from typing import Final

from netdetect.agent.topics import valid_id
from netdetect.decoders import dhcp, sv2
from netdetect.decoders.base import StreamDecoder
from netdetect.decoders.dns import DnsTcpDecoder, decode_dns
from netdetect.decoders.events import (
    ClientHello,
    DnsMessage,
    Event,
    ServerHello,
    Sv2Message,
    TlsRecord,
)
from netdetect.decoders.http import HttpDecoder
from netdetect.decoders.jsonrpc import parse_json_messages
from netdetect.decoders.stratum import LineDecoder
from netdetect.decoders.tls import TlsDecoder
from netdetect.detect import DEFAULT_HOME_NET, TIMING_SMALL, Detector, Inspection
from netdetect.errors import DecodeError
from netdetect.flow.stream import StreamReassembler
from netdetect.flow.table import Flow, FlowTable
from netdetect.intel import Intel
from netdetect.model import TCP, UDP, FlowEnd, HostLease, Packet, Suspect, ip_raw, ip_str
from netdetect.packet import PacketDecoder
from netdetect.pdns import PassiveDns, answer_addresses

DEEP, WATCH, SAMPLE, DONE = 0, 1, 2, 3

_HTTP_STARTS = (b"GET ", b"POST", b"PUT ", b"HEAD", b"HTTP", b"OPTI", b"DELE", b"PATC", b"CONN")
_TLS_TYPES = (b"\x14", b"\x15", b"\x16", b"\x17")
_DNS_PORTS = frozenset({53, 5353, 5355})
_DHCP_PORTS = frozenset({67, 68})  # server, client (a relay talks 67 to 67)
# UDP ports whose every datagram goes to the general path: one set, one probe per packet.
_UDP_INSPECT = _DNS_PORTS | _DHCP_PORTS
# Client requests waiting for their server's ACK, keyed by (xid, client MAC). A DHCP
# exchange completes within seconds, so a few thousand cover a busy segment; beyond that
# the oldest is dropped (and counted), and a request older than _DHCP_WAIT no longer names
# an ACK (xids repeat across clients and reboots).
_DHCP_PENDING = 4096
_DHCP_WAIT = 300.0
_MAX_LEASES = 4096  # leases held for a caller that does not take them (counted when dropped)
_ZERO_V4 = "0.0.0.0"
_SAMPLE_MAX = 1400  # bytes: full-size segments are bulk data; stratum lines are mostly small
_BULK_AVG = 1000  # a flow whose packets average more than this after _BULK_AFTER is bulk
_BULK_AFTER = 64
_JSON_HINTS = (b'"method"', b'"result"', b'"params"')
_STREAM_BUDGET = 65536  # bytes per direction reassembled for decoding
_MAX_PUSHES = 64
PDNS_SWEEP = 300.0  # seconds of packet time between passive-DNS expiry sweeps

# Header reads of the batch fast path (feed_frames), one unpack per layer:
_ET: Final = struct.Struct("!H").unpack_from  # EtherType at 12
_TAG: Final = struct.Struct("!HH").unpack_from  # 802.1Q TCI and inner EtherType
_IP4: Final = struct.Struct("!BxHxxHxB").unpack_from  # version/IHL, length, frag, protocol
_IP6: Final = struct.Struct("!B3xHB").unpack_from  # version nibble, payload length, next header
_TCPH: Final = struct.Struct("!HHIxxxxBB").unpack_from  # ports, seq, data offset, flags
_UDPH: Final = struct.Struct("!HHH").unpack_from  # ports, length
_UDP_TUNNELS: Final = frozenset({4789, 6081})  # VXLAN, GENEVE: the general decoder unwraps them
_new: Final = tuple.__new__


class FlowState:
    """Transport-side inspection state of one flow, next to the detector's Inspection."""

    __slots__ = (
        "client_small",
        "decoders",
        "first_len",
        "first_payload",
        "gzip_switched",
        "handshake_done",
        "ins",
        "mode",
        "pushes",
        "streams",
        "sv2",
        "sv2_frames",
    )

    def __init__(self) -> None:
        self.ins = Inspection()
        self.mode = DEEP
        self.streams: list[StreamReassembler | None] = [None, None]
        # None: direction not started yet; []: no decoder wants it.
        self.decoders: list[list[StreamDecoder] | None] = [None, None]
        self.first_len: list[int] = [0, 0]
        self.first_payload: bytes = b""
        self.handshake_done = [False, False]
        self.pushes: list[float] = []
        self.client_small = 0
        self.sv2 = False
        self.sv2_frames = [0, 0]
        self.gzip_switched = False

    @property
    def keep(self) -> bool:
        return self.ins.keep


class Engine:
    """Feeds frames through packet decode, the flow table, decoders and detection."""

    def __init__(
        self,
        intel: Intel,
        *,
        home_net: Iterable[str] = DEFAULT_HOME_NET,
        max_flows: int = 150_000,
        pdns: PassiveDns | None = None,
        tcp_idle: float = 600.0,
        udp_idle: float = 120.0,
        stream_pending: int = 65536,
        on_dns_answer: Callable[[str, str, int, float], None] | None = None,
    ) -> None:
        self.intel = intel
        # Called as (name, address, ttl, ts) for each A/AAAA answer (under its owner name and
        # each alias leading to it), for a caller that learns host addresses from DNS. None
        # costs one attribute test per DNS response.
        self.on_dns_answer = on_dns_answer
        # Out-of-order bytes a stream holds while waiting for a hole to fill. 0 treats every
        # hole as loss at once: right when a prefilter dropped the bytes on purpose.
        self.stream_pending = stream_pending
        self.pdns = pdns if pdns is not None else PassiveDns()
        self.packets = PacketDecoder()
        self.table = FlowTable(
            max_flows=max_flows, tcp_idle=tcp_idle, udp_idle=udp_idle, on_expire=self._expired
        )
        self.detector = Detector(intel, self.pdns, home_net=home_net)
        self.decode_errors = 0
        self.dns_messages = 0
        self.dns_pool_answers = 0
        self.pdns_expired = 0
        self.flow_ends: list[FlowEnd] = []
        self.leases: list[HostLease] = []
        self.dhcp_messages = 0
        self.dhcp_leases = 0
        self.dhcp_decode_errors = 0
        self.dhcp_unusable = 0  # ACKs without an address or a usable host name
        self.dhcp_dropped = 0  # client requests dropped from the pending map at its cap
        self.leases_dropped = 0  # leases nobody took, dropped at _MAX_LEASES
        self._dhcp_names: dict[tuple[int, str], tuple[str, float]] = {}
        self._pdns_sweep = -1.0
        self.sampled = 0
        self.last_ts = 0.0

    # -- public API -----------------------------------------------------------------------

    def feed(self, ts: float, linktype: int, frame: bytes) -> None:
        pkt = self.packets.decode(ts, linktype, frame)
        if pkt is not None:
            self.feed_packet(pkt)

    def feed_frames(self, frames: Iterable[tuple[float, int, bytes]]) -> int:
        """Feed many (ts, link type, frame) records; returns how many were consumed.

        Same effect as calling `feed` for each, but the common frame (Ethernet, at most one
        802.1Q tag, IPv4 without options or IPv6 without extension headers, TCP or UDP) is
        decoded inline, and a packet that only moves counters (a flow already DONE, a pure
        ACK, UDP that is not DNS or DHCP) never becomes a Packet. Everything else takes the
        general path, so behaviour and counters are identical to per-frame `feed`.
        """
        table = self.table
        flows = table.flows
        get = flows.get
        feed = self.feed
        feed_packet = self.feed_packet
        udp_inspect = _UDP_INSPECT
        sample_max = _SAMPLE_MAX
        tunnels = _UDP_TUNNELS
        next_sweep = table.next_sweep
        n = fast = 0
        hi = self.last_ts
        try:
            for ts, linktype, frame in frames:
                n += 1
                size = len(frame)
                if linktype != 1 or size < 54:
                    feed(ts, linktype, frame)
                    continue
                (et,) = _ET(frame, 12)
                l3 = 14
                vlan = 0
                if et == 0x8100:
                    tci, et = _TAG(frame, 14)
                    vlan = tci & 0x0FFF
                    l3 = 18
                if et == 0x0800:
                    vihl, total, frag, proto = _IP4(frame, l3)
                    end = l3 + total
                    if vihl != 0x45 or frag & 0x3FFF or end > size:
                        feed(ts, linktype, frame)
                        continue
                    l4 = l3 + 20
                    src = frame[l3 + 12 : l3 + 16]
                    dst = frame[l3 + 16 : l4]
                elif et == 0x86DD:
                    l4 = l3 + 40
                    if l4 + 8 > size:
                        feed(ts, linktype, frame)
                        continue
                    ver, plen6, proto = _IP6(frame, l3)
                    end = l4 + plen6
                    if ver >> 4 != 6 or not plen6 or end > size:
                        feed(ts, linktype, frame)
                        continue
                    src = frame[l3 + 8 : l3 + 24]
                    dst = frame[l3 + 24 : l4]
                else:
                    feed(ts, linktype, frame)
                    continue
                if proto == 6:
                    if l4 + 20 > end:
                        feed(ts, linktype, frame)
                        continue
                    sport, dport, seq, doff, flags = _TCPH(frame, l4)
                    if doff < 0x50:
                        feed(ts, linktype, frame)
                        continue
                    start = l4 + ((doff >> 4) << 2)
                    if start > end:  # noqa: PLR1730 - a branch is cheaper than min()
                        start = end
                elif proto == 17:
                    if l4 + 8 > end:
                        feed(ts, linktype, frame)
                        continue
                    sport, dport, ulen = _UDPH(frame, l4)
                    if dport in tunnels:
                        feed(ts, linktype, frame)
                        continue
                    if ulen >= 8 and l4 + ulen < end:
                        end = l4 + ulen
                    start = l4 + 8
                    flags = seq = 0
                else:
                    feed(ts, linktype, frame)
                    continue
                fast += 1
                hi = max(hi, ts)
                if ts < next_sweep:
                    flow = get((proto, src, sport, dst, dport))
                    d = 0
                    if flow is None:
                        flow = get((proto, dst, dport, src, sport))
                        d = 1
                    if flow is not None:
                        plen = end - start
                        st = flow.inspection
                        if proto == 6:
                            if flags & 0x07:
                                quiet = False
                            elif not plen or st is None:
                                quiet = not plen
                            else:
                                mode = st.mode
                                quiet = mode == DONE
                                if mode == SAMPLE and plen > sample_max:
                                    # _sample's first test, inlined: a full-size segment
                                    # only decides whether the flow is bulk.
                                    quiet = True
                                    npkts = flow.pkts[0] + flow.pkts[1] + 1
                                    if (
                                        npkts > _BULK_AFTER
                                        and flow.bytes[0] + flow.bytes[1] + plen
                                        > _BULK_AVG * npkts
                                    ):
                                        st.mode = DONE
                        else:
                            quiet = st is None and (
                                not plen or (sport not in udp_inspect and dport not in udp_inspect)
                            )
                        if quiet:
                            flow.last_ts = ts
                            flow.pkts[d] += 1
                            if plen:
                                flow.bytes[d] += plen
                            continue
                payload = memoryview(frame)[start:end]
                feed_packet(
                    _new(Packet, (ts, src, dst, proto, sport, dport, flags, seq, payload, vlan))
                )
                next_sweep = table.next_sweep
        finally:
            pd = self.packets
            pd.packets += fast
            pd.decoded += fast
            self.last_ts = max(self.last_ts, hi)
        return n

    def feed_packet(self, pkt: Packet) -> None:
        proto = pkt.proto
        if proto != TCP and proto != UDP:  # noqa: PLR1714 - hot path: two int compares
            return
        ts = pkt.ts
        self.last_ts = max(self.last_ts, ts)
        table = self.table
        table.maybe_sweep(ts)
        flow, d = table.lookup(pkt)
        if proto == TCP:
            flags = pkt.flags
            if flags & 0x07:
                if flow.closed and flags & 0x12 == 0x02:
                    # Port reuse: a fresh SYN on a closed flow starts a new connection.
                    table.flows.pop(flow.key, None)
                    self._expired(flow, "reused")
                    flow, d = table.lookup(pkt)
                self._tcp_control(flow, d, pkt)
        flow.last_ts = ts
        flow.pkts[d] += 1
        plen = len(pkt.payload)
        if not plen:
            return
        flow.bytes[d] += plen
        st = flow.inspection
        if st is None:
            if proto == UDP:
                self._udp(flow, pkt)
                return
            st = flow.inspection = FlowState()
        mode = st.mode
        if mode == DONE:
            return
        if mode == DEEP:
            self._deep(flow, st, d, pkt)
        elif mode == WATCH:
            self._watch(flow, st, d, pkt)
        else:
            self._sample(flow, st, d, pkt)

    def take_flow_ends(self) -> list[FlowEnd]:
        """Final records of alerted flows that left the table since the last call."""
        out = self.flow_ends
        self.flow_ends = []
        return out

    def _flow_end(self, flow: Flow, st: FlowState, reason: str) -> FlowEnd:
        s = self.detector.suspect(flow, st.ins, flow.last_ts)
        up = self.detector.miner_side(flow, st.ins)  # direction 0 is a→b: the miner's if a is
        return FlowEnd(
            suspect=s,
            reason=reason,
            closed=bool(flow.closed & 4 or flow.closed & 3 == 3),
            pkts_to_pool=flow.pkts[up],
            pkts_to_miner=flow.pkts[1 - up],
            bytes_to_pool=flow.bytes[up],
            bytes_to_miner=flow.bytes[1 - up],
        )

    def take_suspects(self) -> list[Suspect]:
        out = self.detector.suspects
        self.detector.suspects = []
        return out

    def add_lease(self, lease: HostLease) -> None:
        """Queue a learned address for take_leases (bounded: a caller that never takes them
        costs at most _MAX_LEASES records; the rest are counted in leases_dropped)."""
        if len(self.leases) >= _MAX_LEASES:
            self.leases_dropped += 1
            return
        self.leases.append(lease)

    def take_leases(self) -> list[HostLease]:
        """Addresses learned (DHCP ACKs, and what an on_dns_answer hook appended) since the
        last call."""
        out = self.leases
        self.leases = []
        return out

    def finish(self) -> None:
        """End of input: flush every flow (and with it any last evidence)."""
        self.table.drain()

    def counters(self) -> dict[str, int]:
        c = dict(self.packets.counters())
        c.update(self.table.counters())
        c.update(
            {
                "decode_errors": self.decode_errors,
                "dns_messages": self.dns_messages,
                "dns_pool_answers": self.dns_pool_answers,
                "sampled_packets": self.sampled,
                "alerts": self.detector.alerts,
                "pdns_evictions": self.pdns.evictions,
                "pdns_expired": self.pdns_expired,
                "dhcp_messages": self.dhcp_messages,
                "dhcp_leases": self.dhcp_leases,
                "dhcp_decode_errors": self.dhcp_decode_errors,
                "dhcp_unusable": self.dhcp_unusable,
                "dhcp_dropped": self.dhcp_dropped,
                "leases_dropped": self.leases_dropped,
            }
        )
        return c

    # -- per mode -------------------------------------------------------------------------

    def _tcp_control(self, flow: Flow, d: int, pkt: Packet) -> None:
        flags = pkt.flags
        if flags & 0x02:
            # Only the initial sequence number is kept: inspection state is built at the
            # first payload byte, so a SYN flood costs a flow entry and nothing more.
            if d:
                flow.isn1 = pkt.seq
            else:
                flow.isn0 = pkt.seq
        if flags & 0x01:
            flow.closed |= 1 << d
        if flags & 0x04:
            flow.closed |= 4

    def _udp(self, _flow: Flow, pkt: Packet) -> None:
        sport = pkt.sport
        dport = pkt.dport
        if sport in _DNS_PORTS or dport in _DNS_PORTS:
            payload = pkt.payload
            # Only answers feed passive DNS; queries are skipped before any parsing.
            if len(payload) < 12 or not payload[2] & 0x80:
                return
            try:
                msg = decode_dns(bytes(payload), addresses_only=True)
            except DecodeError:
                self.decode_errors += 1
                return
            self._dns(msg, pkt.ts)
        elif sport in _DHCP_PORTS and dport in _DHCP_PORTS:
            self._dhcp(pkt)

    def _dhcp(self, pkt: Packet) -> None:
        """Pair a client's request (which carries its host name) with the server's ACK (which
        carries the address and lease time) and emit the lease."""
        try:
            msg = dhcp.decode_dhcp(bytes(pkt.payload))
        except DecodeError:
            self.decode_errors += 1
            self.dhcp_decode_errors += 1
            return
        self.dhcp_messages += 1
        kind = msg.msg_type
        key = (msg.xid, msg.chaddr)
        pending = self._dhcp_names
        ts = pkt.ts
        if msg.op == dhcp.BOOTREQUEST:
            name = msg.hostname or msg.client_fqdn
            if name and kind in (dhcp.DISCOVER, dhcp.REQUEST, dhcp.INFORM):
                pending.pop(key, None)
                pending[key] = (name, ts)
                if len(pending) > _DHCP_PENDING:
                    del pending[next(iter(pending))]
                    self.dhcp_dropped += 1
            return
        if kind == dhcp.NAK:
            pending.pop(key, None)
            return
        # Only a reply from a server (or relay) port commits an address; an ACK-shaped
        # datagram from a client port is not how any server speaks.
        if kind != dhcp.ACK or pkt.sport != 67:
            return
        asked = pending.pop(key, None)
        name = msg.hostname or msg.client_fqdn
        if not name and asked is not None and ts - asked[1] <= _DHCP_WAIT:
            name = asked[0]
        # An ACK to INFORM leaves yiaddr empty: the client configured ciaddr itself.
        ip = msg.yiaddr if msg.yiaddr != _ZERO_V4 else msg.ciaddr
        host = _dhcp_host_id(name) if name else None
        if ip == _ZERO_V4 or host is None:
            self.dhcp_unusable += 1
            return
        lease = msg.lease_time
        ttl = None if lease is None else math.inf if lease == dhcp.INFINITE_LEASE else float(lease)
        self.dhcp_leases += 1
        self.add_lease(HostLease(ip, host, ttl, ts, server=ip_str(pkt.src)))

    def _dns(self, msg: DnsMessage, ts: float) -> None:
        self.dns_messages += 1
        if msg.is_response and msg.answers:
            if ts >= self._pdns_sweep:
                # Answers are what fills passive DNS, so they also pay for clearing out the
                # expired names, at most once per PDNS_SWEEP seconds of packet time.
                self._pdns_sweep = ts + PDNS_SWEEP
                self.pdns_expired += self.pdns.expire(ts)
            self.pdns.learn(msg, ts)
            hook = self.on_dns_answer
            if hook is not None:
                for name, address, ttl in answer_addresses(msg):
                    hook(name, address, ttl, ts)
            for name, _qtype in msg.questions:
                if self.intel.match_domain(name) is not None:
                    self.dns_pool_answers += 1
                    self._retro_pool_check(msg, name, ts)

    def _retro_pool_check(self, msg: DnsMessage, name: str, ts: float) -> None:
        """Flows already in the table that talk to an address this pool answer names get
        the pool-dns evidence now. Pool answers are rare; the scan is bounded by the table."""
        addrs = {r.value for r in msg.answers if r.rtype in (1, 28)}
        raws = {}
        for a in addrs:
            try:
                raws[ip_raw(a)] = a
            except OSError:
                continue
        if not raws:
            return
        for flow in self.table:
            st = flow.inspection
            if st is None or st.ins.alerted or not (flow.bytes[0] or flow.bytes[1]):
                continue
            ip = raws.get(flow.b_ip) or raws.get(flow.a_ip)
            if ip is not None:
                self.detector.pool_answer(flow, st.ins, ip, name, ts)

    def _deep(self, flow: Flow, st: FlowState, d: int, pkt: Packet) -> None:
        ins = st.ins
        ts = pkt.ts
        data = bytes(pkt.payload)
        if not st.first_len[d]:
            st.first_len[d] = len(data)
            if d == 0:
                st.first_payload = data[:64]
            self._sv2_shape(flow, st, ts)
        s = st.streams[d]
        if s is None:
            s = st.streams[d] = StreamReassembler(
                max_bytes=_STREAM_BUDGET, max_pending=self.stream_pending
            )
            isn = flow.isn1 if d else flow.isn0
            if isn >= 0:
                s.start(isn)
        chunks, gap = s.feed(pkt.seq, data)
        if gap:
            self._gap(flow, st, d)
        for chunk in chunks:
            self._decode(flow, st, d, chunk, ts)
            if st.mode != DEEP:
                break
        self.detector.check_remote(flow, ins, ts)
        self.detector.settle(flow, ins, ts)
        if st.mode == DEEP:
            self._maybe_leave_deep(flow, st, d)

    def _decode(self, flow: Flow, st: FlowState, d: int, chunk: bytes, ts: float) -> None:
        decs = st.decoders[d]
        if decs is None:
            decs = st.decoders[d] = self._pick(flow, st, d, chunk)
        if not decs:
            return
        for dec in list(decs):
            try:
                events = dec.feed(chunk)
            except DecodeError:
                self.decode_errors += 1
                decs.remove(dec)
                continue
            for ev in events:
                self._event(flow, st, d, ev, ts)

    def _pick(self, flow: Flow, st: FlowState, d: int, chunk: bytes) -> list[StreamDecoder]:
        """Choose decoders by payload (house rule 4); ports only add DNS as a guess."""
        decs: list[StreamDecoder] = []
        head = chunk[:1]
        midflow = flow.midflow
        if head == b"\x16" and chunk[1:2] == b"\x03":
            decs.append(TlsDecoder())
        elif midflow and head in _TLS_TYPES and chunk[1:2] == b"\x03":
            decs.append(TlsDecoder(midstream=True))
        else:
            stripped = chunk.lstrip()[:1]
            if stripped in (b"{", b"["):
                decs.append(LineDecoder())
            elif chunk[:4] in _HTTP_STARTS:
                decs.append(HttpDecoder())
            elif midflow and b"{" in chunk:
                decs.append(LineDecoder(midstream=True))
            if not decs:
                try:
                    msg = sv2.parse_plaintext(chunk)
                except DecodeError:
                    msg = None
                if msg is not None:
                    self._event(flow, st, d, msg, flow.last_ts)
        if flow.a_port in _DNS_PORTS or flow.b_port in _DNS_PORTS:
            decs.append(DnsTcpDecoder())
        return decs

    def _event(self, flow: Flow, st: FlowState, d: int, ev: Event, ts: float) -> None:
        if isinstance(ev, TlsRecord):
            if ev.content_type == 23:
                st.handshake_done[d] = True
            return
        if isinstance(ev, ServerHello):
            return
        if isinstance(ev, DnsMessage):
            self._dns(ev, ts)
            return
        self.detector.on_event(flow, st.ins, d, ev, ts)
        if isinstance(ev, ClientHello) and ev.sni and not st.ins.kinds:
            # An ordinary site by name: the rest is encrypted and of no interest.
            st.mode = DONE
        if st.ins.gzip and not st.gzip_switched:
            st.gzip_switched = True
            for decs in st.decoders:
                for dec in decs or ():
                    if isinstance(dec, LineDecoder):
                        dec.switch_encoding("gzip")

    def _gap(self, _flow: Flow, st: FlowState, d: int) -> None:
        # Bytes were lost: decoders that need contiguous data resynchronise from here.
        decs = st.decoders[d]
        if decs is not None and not decs:
            # Nothing recognised the bytes before the hole: the bytes after it get a fresh
            # look, as the start of a stream would.
            st.decoders[d] = None
            return
        if not decs:
            return
        fresh: list[StreamDecoder] = []
        for dec in decs:
            if isinstance(dec, LineDecoder):
                line = LineDecoder(midstream=True)
                if st.gzip_switched:
                    line.switch_encoding("gzip")
                fresh.append(line)
            elif isinstance(dec, TlsDecoder):
                fresh.append(TlsDecoder(midstream=True))
        st.decoders[d] = fresh

    def _maybe_leave_deep(self, flow: Flow, st: FlowState, d: int) -> None:
        ins = st.ins
        s = st.streams[d]
        exhausted = s is not None and s.done
        dead = all(x is not None and not x for x in st.decoders) or (
            st.decoders[d] is not None and not st.decoders[d] and st.decoders[1 - d] is None
            and flow.pkts[d] > 3
        )
        tls_over = all(st.handshake_done)
        if not (exhausted or dead or tls_over):
            return
        st.streams = [None, None]
        st.decoders = [[], []]
        if st.sv2 or (ins.bare_tls and not ins.alerted):
            st.mode = WATCH
        elif ins.alerted or tls_over:
            st.mode = DONE
        else:
            st.mode = SAMPLE

    def _sv2_shape(self, flow: Flow, st: FlowState, ts: float) -> None:
        if st.sv2 or not st.first_len[0] or not st.first_len[1]:
            return
        if st.first_len[0] != 64:
            return
        msg = sv2.noise_handshake(st.first_payload, st.first_len[1])
        if msg is not None:
            st.sv2 = True
            st.ins.client_dir = 0
            self.detector.on_event(flow, st.ins, 0, msg, ts)

    def _watch(self, flow: Flow, st: FlowState, d: int, pkt: Packet) -> None:
        ins = st.ins
        plen = len(pkt.payload)
        ts = pkt.ts
        if st.sv2:
            if sv2.encrypted_frame_plausible(plen):
                st.sv2_frames[d] += 1
                if min(st.sv2_frames) >= 3 and "sv2-frames" not in ins.kinds:
                    msg = Sv2Message("encrypted-frame", plen)
                    self.detector.on_event(flow, ins, d, msg, ts)
                    self.detector.settle(flow, ins, ts)
            if ins.alerted:
                st.mode = DONE
            return
        client = ins.client_dir if ins.client_dir is not None else 0
        if plen <= TIMING_SMALL:
            if d == client:
                st.client_small += 1
            else:
                if len(st.pushes) >= _MAX_PUSHES:
                    del st.pushes[: _MAX_PUSHES // 2]
                st.pushes.append(ts)
                self.detector.check_timing(flow, ins, st.pushes, st.client_small, ts)
                self.detector.settle(flow, ins, ts)
        if ins.alerted or flow.bytes[0] + flow.bytes[1] > 512 * 1024:
            st.mode = DONE

    def _sample(self, flow: Flow, st: FlowState, d: int, pkt: Packet) -> None:
        payload = pkt.payload
        if len(payload) > _SAMPLE_MAX:
            npkts = flow.pkts[0] + flow.pkts[1]
            if npkts > _BULK_AFTER and (flow.bytes[0] + flow.bytes[1]) > _BULK_AVG * npkts:
                st.mode = DONE  # a bulk transfer, not a session of small JSON lines
            return
        data = bytes(payload)
        if not (_JSON_HINTS[0] in data or _JSON_HINTS[1] in data or _JSON_HINTS[2] in data):
            return
        self.sampled += 1
        ins = st.ins
        for line in data.split(b"\n"):
            line = line.strip()  # noqa: PLW2901 - trimmed copy of the loop value
            start = line.find(b"{")
            if start < 0 or not line.endswith((b"}", b"]")):
                continue
            try:
                msgs = parse_json_messages(line[start:])
            except DecodeError:
                continue
            for msg in msgs:
                self.detector.on_event(flow, ins, d, msg, pkt.ts)
        self.detector.check_remote(flow, ins, pkt.ts)
        self.detector.settle(flow, ins, pkt.ts)
        if ins.alerted:
            st.mode = DONE

    def _expired(self, flow: Flow, reason: str) -> None:
        st = flow.inspection
        if st is None:
            return
        if st.ins.alerted:
            if st.ins.reported:
                self.flow_ends.append(self._flow_end(flow, st, reason))
            return
        if st.mode == DEEP:
            # The stream ended: a last message without its newline is complete now.
            for d, decs in enumerate(st.decoders):
                for dec in decs or ():
                    close = getattr(dec, "close", None)
                    if close is None:
                        continue
                    try:
                        events = close()
                    except DecodeError:
                        self.decode_errors += 1
                        continue
                    for ev in events:
                        self._event(flow, st, d, ev, flow.last_ts)
        # Evidence that only adds up at the end (bare TLS timing) gets a last look.
        self.detector.settle(flow, st.ins, flow.last_ts)


def _dhcp_host_id(name: str) -> str | None:
    """The host id a DHCP client name stands for: its first label, lower-cased; None when
    that is not a usable id (it becomes an MQTT topic level and a certificate CN)."""
    host = name.split(".", 1)[0].lower()
    return host if valid_id(host) else None
