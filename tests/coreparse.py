"""The core's parsers through their probes (netdetect._core), in the shapes the tests assert
on: each test feeds bytes to the compiled parser the engine runs, and compares typed values.
A parser's ValueError becomes netdetect.errors.DecodeError, as the engine reports it."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from netdetect import _core
from netdetect.decoders.events import (
    Certificate,
    ClientHello,
    Event,
    HttpMessage,
    StratumMessage,
    Sv2Message,
)
from netdetect.decoders.jsonrpc import messages_of_body
from netdetect.errors import CaptureError, DecodeError

# DNS (src/dns.rs): the record types address-only decoding keeps (A, AAAA, CNAME), and
# the compression pointers followed per name.
ADDRESS_TYPES = frozenset({1, 28, 5})
MAX_POINTER_JUMPS = 64
MAX_SNAPLEN = 262_144  # largest record a capture may declare (src/capture.rs)
MAX_RECORD = (1 << 14) + 2048  # RFC 5246 6.2.3 (src/tls/mod.rs MAX_RECORD)
# Stratum V2 shapes (src/sv2.rs): Noise NX act 1 (an ElligatorSwift key), the responder's
# answer, and the smallest encrypted frame (a 6-byte header + MACs).
ELLSWIFT_LEN = 64
RESPONDER_HANDSHAKE_LEN = 234
MIN_ENCRYPTED_FRAME = 6 + 16 + 16
# DHCP message types (option 53) and the "forever" lease time (RFC 2132).
DISCOVER, OFFER, REQUEST, ACK, NAK, INFORM = 1, 2, 3, 5, 6, 8
INFINITE_LEASE = 0xFFFFFFFF
LINKTYPES = frozenset({0, 1, 9, 12, 14, 50, 101, 108, 113, 228, 229, 276})
MAX_DEPTH = 4  # encapsulation layers removed (src/packet.rs MAX_DEPTH)
SOCKS_MAX_HELD = 600  # bytes a SOCKS handshake may hold (src/socks.rs MAX_HELD)
# WebSocket (src/ws.rs): the default message limit, the longest frame header, and what an
# inflater's window and tables are counted as.
WS_MAX_MESSAGE = 16384
WS_MAX_HEADER = 14
WS_INFLATE_COST = 48 * 1024
JSON_MAX_LINE = 65536  # longest JSON line kept (src/lines.rs MAX_LINE)
JSON_MAX_DEPTH = 32  # deepest JSON nesting handed up (src/lines.rs MAX_DEPTH)
COUNTERS = (
    "packets", "decoded", "non_ip", "truncated", "malformed", "fragments", "first_fragments",
    "tunnels", "unsupported_linktype", "other_l4", "snapped",
)


@dataclass(frozen=True, slots=True)
class ServerHello:
    version: int
    cipher_suite: int
    alpn: str | None


@dataclass(frozen=True, slots=True)
class TlsRecord:
    content_type: int
    length: int


@dataclass(frozen=True, slots=True)
class DnsRecord:
    name: str
    rtype: int
    ttl: int
    value: str


@dataclass(frozen=True, slots=True)
class DnsMessage:
    msg_id: int
    is_response: bool
    rcode: int
    questions: tuple[tuple[str, int], ...]
    answers: tuple[DnsRecord, ...]


@dataclass(frozen=True, slots=True)
class DhcpMessage:
    op: int
    xid: int
    msg_type: int | None
    chaddr: str
    ciaddr: str
    yiaddr: str
    requested: str | None = None
    hostname: str | None = None
    client_fqdn: str | None = None
    lease_time: int | None = None
    server_id: str | None = None


class Packet(NamedTuple):
    ts: float
    src: bytes
    dst: bytes
    proto: int
    sport: int
    dport: int
    flags: int
    seq: int
    payload: bytes
    vlan: int


TlsEvent = ClientHello | ServerHello | Certificate | TlsRecord


def _hello(d: dict[str, Any]) -> ClientHello:
    return ClientHello(
        sni=d["sni"], alpn=tuple(d["alpn"]), record_version=d["record_version"],
        handshake_version=d["handshake_version"],
        supported_versions=tuple(d["supported_versions"]), ja3=d["ja3"],
        ja3_hash=d["ja3_hash"], ja4=d["ja4"], ja4_r=d["ja4_r"],
        cipher_suites=tuple(d["cipher_suites"]), extensions=tuple(d["extensions"]),
    )


def _cert(d: dict[str, Any]) -> Certificate:
    return Certificate(d["subject_cn"], tuple(d["san_dns"]), d["issuer_cn"])


def parse_client_hello(data: bytes, *, record_version: int = 0, quic: bool = False) -> ClientHello:
    """One complete ClientHello handshake message (4-byte header included)."""
    try:
        return _hello(_core.parse_client_hello(bytes(data), record_version, quic))
    except ValueError as exc:
        raise DecodeError(str(exc)) from None


def parse_server_hello(data: bytes) -> tuple[ServerHello, bool]:
    try:
        d, hrr = _core.parse_server_hello(bytes(data))
    except ValueError as exc:
        raise DecodeError(str(exc)) from None
    return ServerHello(d["version"], d["cipher_suite"], d["alpn"]), hrr


def parse_certificate(data: bytes) -> Certificate | None:
    d = _core.parse_certificate(bytes(data))
    return None if d is None else _cert(d)


is_grease = _core.is_grease
ja4_version_code = _core.ja4_version_code


class _Stream:
    """A streaming parser's probe: bytes in, what they completed out (`_feed`); a parser's
    ValueError becomes DecodeError. `buffered`: bytes held; `overflow`: messages skipped
    for size and counted."""

    _s: Any

    @property
    def buffered(self) -> int:
        return int(self._s.buffered)

    @property
    def overflow(self) -> int:
        return int(self._s.overflow)

    def _feed(self, data: bytes | bytearray | memoryview) -> Any:
        try:
            return self._s.feed(bytes(data))
        except ValueError as exc:
            raise DecodeError(str(exc)) from None


class TlsDecoder(_Stream):
    """One direction of a TLS stream through the core's TLS sniffer."""

    def __init__(self, *, midstream: bool = False, max_handshake: int = 65536) -> None:
        self._s = _core.TlsStream(midstream=midstream, max_handshake=max_handshake)

    def feed(self, data: bytes | bytearray | memoryview) -> list[TlsEvent]:
        raw: list[tuple[str, dict[str, Any]]] = self._feed(data)
        out: list[TlsEvent] = []
        for kind, d in raw:
            if kind == "client_hello":
                out.append(_hello(d))
            elif kind == "server_hello":
                out.append(ServerHello(d["version"], d["cipher_suite"], d["alpn"]))
            elif kind == "certificate":
                out.append(_cert(d))
            else:
                out.append(TlsRecord(d["content_type"], d["length"]))
        return out


def _http(d: dict[str, Any]) -> HttpMessage:
    body = d["body"]
    rpc: tuple[StratumMessage, ...] = ()
    if body:
        try:
            rpc = messages_of_body(body)
        except DecodeError:
            rpc = ()
    return HttpMessage(
        is_request=d["is_request"], method=d["method"], path=d["path"], status=d["status"],
        host=d["host"], user_agent=d["user_agent"], content_type=d["content_type"],
        x_mining_extensions=d["x_mining_extensions"], x_stratum=d["x_stratum"],
        x_long_polling=d["x_long_polling"], authorization_user=d["authorization_user"],
        rpc=rpc, upgrade=d["upgrade"],
    )


class HttpDecoder(_Stream):
    """One direction of an HTTP/1.x stream through the core's HTTP sniffer; JSON-RPC bodies
    are read by the same Python semantics the engine applies (messages_of_body)."""

    def __init__(self, *, max_head: int = 16384, max_body: int = 65536) -> None:
        self._s = _core.HttpStream(max_head=max_head, max_body=max_body)
        self.max_head = max_head
        self.max_body = max_body

    def feed(self, data: bytes | bytearray | memoryview) -> list[Event]:
        return [_http(d) for d in self._feed(data)]

    def close(self) -> list[Event]:
        return [_http(d) for d in self._s.close()]


def _dns(d: dict[str, Any]) -> DnsMessage:
    return DnsMessage(
        d["msg_id"], d["is_response"], d["rcode"],
        tuple((n, t) for n, t in d["questions"]),
        tuple(DnsRecord(*a) for a in d["answers"]),
    )


def decode_dns(data: bytes, *, addresses_only: bool = False) -> DnsMessage:
    try:
        return _dns(_core.parse_dns(bytes(data), addresses_only))
    except ValueError as exc:
        raise DecodeError(str(exc)) from None


def read_name(data: bytes, pos: int) -> tuple[str, int]:
    try:
        return _core.dns_read_name(bytes(data), pos)
    except ValueError as exc:
        raise DecodeError(str(exc)) from None


class DnsTcpDecoder(_Stream):
    def __init__(self, *, max_messages: int = 1024) -> None:
        self._s = _core.DnsTcpStream(max_messages=max_messages)

    def feed(self, data: bytes) -> list[DnsMessage]:
        return [_dns(d) for d in self._feed(data)]


class WsDecoder(_Stream):
    """One direction of a WebSocket connection: complete messages as (opcode, data)."""

    def __init__(self, *, deflate: bool = False, max_message: int = WS_MAX_MESSAGE) -> None:
        self._s = _core.WsStream(deflate=deflate, max_message=max_message)
        self.max_message = max_message

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        out: list[tuple[int, bytes]] = self._feed(data)
        return out


class LineFramer(_Stream):
    """One direction's JSON-lines framing: (valid JSON lines, raw bytes from a gzip member
    on); DecodeError once the direction is not JSON lines."""

    def __init__(self, *, midstream: bool = False) -> None:
        self._s = _core.LineStream(midstream=midstream)

    def feed(self, data: bytes) -> tuple[list[bytes], bytes]:
        out: tuple[list[bytes], bytes] = self._feed(data)
        return out

    def close(self) -> tuple[list[bytes], bytes]:
        try:
            out: tuple[list[bytes], bytes] = self._s.close()
        except ValueError as exc:
            raise DecodeError(str(exc)) from None
        return out


class SocksTarget(NamedTuple):
    kind: str
    host: str
    port: int
    command: int


class SocksDecoder(_Stream):
    """One side of a SOCKS4/4a/5 handshake: feed() -> None until it is complete, then
    (target or None on the server side, tunnelled bytes); after it, (None, bytes)."""

    def __init__(self, version: int, *, client: bool) -> None:
        self._s = _core.SocksStream(version, client)

    def feed(self, data: bytes) -> tuple[SocksTarget | None, bytes] | None:
        step: tuple[str, tuple[str, str, int, int] | None, bytes] | None = self._feed(data)
        if step is None:
            return None
        _kind, target, rest = step
        return (None if target is None else SocksTarget(*target)), rest


socks_detect = _core.socks_detect


def decode_dhcp(data: bytes) -> DhcpMessage:
    try:
        d = _core.parse_dhcp(bytes(data))
    except ValueError as exc:
        raise DecodeError(str(exc)) from None
    return DhcpMessage(
        op=d["op"], xid=d["xid"], msg_type=d["msg_type"] or None, chaddr=d["chaddr"],
        ciaddr=d["ciaddr"], yiaddr=d["yiaddr"], requested=d["requested"],
        hostname=d["hostname"], client_fqdn=d["client_fqdn"], lease_time=d["lease_time"],
        server_id=d["server_id"],
    )


def parse_plaintext(data: bytes) -> Sv2Message | None:
    try:
        d = _core.sv2_parse_plaintext(bytes(data))
    except ValueError as exc:
        raise DecodeError(str(exc)) from None
    if d is None:
        return None
    length = _core.sv2_frame_length(bytes(data))
    return Sv2Message("setup-connection", length or 0, **d)


def noise_handshake(client_first: bytes, server_first_len: int | None) -> Sv2Message | None:
    if not _core.sv2_noise_handshake(bytes(client_first), server_first_len):
        return None
    if server_first_len is None:
        return Sv2Message("noise-initiator", len(client_first))
    return Sv2Message("noise-responder", server_first_len)


looks_uniform = _core.sv2_looks_uniform
encrypted_frame_plausible = _core.sv2_encrypted_frame_plausible
plaintext_frame_length = _core.sv2_frame_length
seq_diff = _core.seq_diff


class StreamReassembler:
    """The core's reassembly of one direction's first bytes."""

    def __init__(self, max_bytes: int = 131072, max_pending: int = 65536) -> None:
        self._r = _core.Reassembler(max_bytes, max_pending)
        self.max_bytes = max_bytes

    def start(self, isn: int) -> None:
        self._r.start(isn)

    def feed(self, seq: int, data: bytes) -> tuple[list[bytes], bool]:
        got, gap = self._r.feed(seq, bytes(data))
        return ([got] if got else []), gap

    @property
    def done(self) -> bool:
        return self._r.done

    @property
    def delivered(self) -> int:
        return self._r.stats()[0]

    @property
    def pending_bytes(self) -> int:
        return self._r.stats()[1]

    @property
    def gaps(self) -> int:
        return self._r.stats()[2]

    @property
    def retransmitted(self) -> int:
        return self._r.stats()[3]

    @property
    def overflow(self) -> int:
        return self._r.stats()[4]


class PacketDecoder:
    """The core's L2..L4 decoder; counters as the engine reports them."""

    def __init__(self) -> None:
        self._d = _core.PacketDecoder()

    def decode(self, ts: float, linktype: int, frame: bytes) -> Packet | None:
        d = self._d.decode(linktype, bytes(frame))
        if d is None:
            return None
        return Packet(
            ts, ipaddress.ip_address(d["src"]).packed, ipaddress.ip_address(d["dst"]).packed,
            d["proto"], d["sport"], d["dport"], d["flags"], d["seq"], d["payload"], d["vlan"],
        )

    def counters(self) -> dict[str, int]:
        return self._d.counters()

    def __getattr__(self, name: str) -> int:
        if name in COUNTERS:
            return self._d.counters()[name]
        raise AttributeError(name)


def read_capture(path: str) -> tuple[list[tuple[float, int, bytes]], int]:
    """Every frame of a capture and the snapped count; damage raises CaptureError after
    (not instead of) the frames before it, through `frames_until_damage`."""
    frames, snapped, damage = _read(path)
    if damage is not None:
        raise CaptureError(*damage)
    return [(ts, lt, f) for ts, lt, f, _orig in frames], snapped


def _read(path: str) -> tuple[
        list[tuple[float, int, bytes, int]], int, tuple[str, int, str] | None]:
    try:
        return _core.read_capture(str(path))
    except OSError as exc:
        # OSError(path, offset, reason): Python files it as (errno, strerror, filename).
        if exc.filename is not None:
            raise CaptureError(str(exc.errno), int(str(exc.strerror)), str(exc.filename)) from None
        raise


def read_frames(path: str) -> Iterator[tuple[float, int, bytes]]:
    """Frames of a capture, then CaptureError if it ends in damage (as the engine sees it)."""
    frames, _snapped, damage = _read(path)
    for ts, lt, f, _orig in frames:
        yield ts, lt, f
    if damage is not None:
        raise CaptureError(*damage)


def expand_paths(paths: list[str]) -> list[str]:
    found, errors = _core.expand_paths([str(p) for p in paths])
    if errors:
        raise CaptureError(*errors[0])
    return found


def is_capture(path: str) -> bool:
    found, errors = _core.expand_paths([str(path)])
    return bool(found) and not errors
