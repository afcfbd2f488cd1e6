"""DNS message decoder (UDP payloads and length-prefixed TCP streams): questions and answers."""

from __future__ import annotations

import re
import socket
from struct import unpack_from

from netdetect.decoders.events import DnsMessage, DnsRecord, Event
from netdetect.errors import DecodeError

__all__ = ["DnsTcpDecoder", "decode_dns"]

HEADER_LEN = 12
MAX_NAME = 255  # RFC 1035 2.3.4, in wire octets
# Far more indirections than any honest encoder produces; the backward-only rule already
# prevents pointer-only cycles, this bounds the work per name.
MAX_POINTER_JUMPS = 64

TYPE_A = 1
TYPE_NS = 2
TYPE_CNAME = 5
TYPE_SOA = 6
TYPE_PTR = 12
TYPE_MX = 15
TYPE_TXT = 16
TYPE_AAAA = 28
TYPE_SRV = 33
TYPE_DNAME = 39

_NAME_TYPES = frozenset({TYPE_NS, TYPE_CNAME, TYPE_PTR, TYPE_DNAME})
_UNSAFE = re.compile(rb"[^!-~]|[.\\]")
_MAX_REPR = 128  # characters of a non-address record value worth keeping


def _escape_label(raw: bytes) -> str:
    # Presentation format (RFC 4343): keep a dot or odd byte inside a label distinguishable
    # from a label boundary, so "a.b" as one label never compares equal to two labels.
    def sub(m: re.Match[bytes]) -> bytes:
        c = m.group()[0]
        return b"\\" + bytes([c]) if c in b".\\" else b"\\%03d" % c

    return _UNSAFE.sub(sub, raw).decode("ascii")


def read_name(data: bytes, pos: int) -> tuple[str, int]:
    """Decode the (possibly compressed) name at `pos`; returns (name, offset after it)."""
    n = len(data)
    labels: list[str] = []
    wire_len = 1
    jumps = 0
    after = -1
    while True:
        if pos >= n:
            raise DecodeError(f"DNS: name runs past the message end at offset {pos}")
        length = data[pos]
        if length == 0:
            pos += 1
            break
        kind = length & 0xC0
        if kind == 0xC0:
            if pos + 1 >= n:
                raise DecodeError("DNS: truncated compression pointer")
            target = ((length & 0x3F) << 8) | data[pos + 1]
            if target >= pos:
                raise DecodeError(f"DNS: compression pointer at {pos} does not point backward")
            jumps += 1
            if jumps > MAX_POINTER_JUMPS:
                raise DecodeError("DNS: too many compression pointers")
            if after < 0:
                after = pos + 2
            pos = target
            continue
        if kind:
            raise DecodeError(f"DNS: unsupported label type 0x{kind:02x}")
        pos += 1
        stop = pos + length
        if stop > n:
            raise DecodeError("DNS: label runs past the message end")
        wire_len += length + 1
        if wire_len > MAX_NAME:
            raise DecodeError("DNS: name longer than 255 octets")
        raw = data[pos:stop].lower()
        labels.append(_escape_label(raw) if _UNSAFE.search(raw) else raw.decode("ascii"))
        pos = stop
    return ".".join(labels), (after if after >= 0 else pos)


def _rdata_name(data: bytes, start: int, stop: int) -> tuple[str, int]:
    name, after = read_name(data, start)
    if after > stop:
        raise DecodeError("DNS: name overruns its record data")
    return name, after


def _value(data: bytes, rtype: int, start: int, stop: int) -> str:
    rdlen = stop - start
    if rtype == TYPE_A:
        if rdlen != 4:
            raise DecodeError(f"DNS: A record with {rdlen} bytes")
        return socket.inet_ntop(socket.AF_INET, data[start:stop])
    if rtype == TYPE_AAAA:
        if rdlen != 16:
            raise DecodeError(f"DNS: AAAA record with {rdlen} bytes")
        return socket.inet_ntop(socket.AF_INET6, data[start:stop])
    if rtype in _NAME_TYPES:
        name, after = _rdata_name(data, start, stop)
        if after != stop:
            raise DecodeError("DNS: bytes after the name in record data")
        return name
    if rtype == TYPE_MX:
        if rdlen < 3:
            raise DecodeError("DNS: MX record too short")
        (pref,) = unpack_from(">H", data, start)
        name, _ = _rdata_name(data, start + 2, stop)
        return f"{pref} {name}"
    if rtype == TYPE_SRV:
        if rdlen < 7:
            raise DecodeError("DNS: SRV record too short")
        prio, weight, port = unpack_from(">HHH", data, start)
        name, _ = _rdata_name(data, start + 6, stop)
        return f"{prio} {weight} {port} {name}"
    if rtype == TYPE_SOA:
        mname, after = _rdata_name(data, start, stop)
        rname, _ = _rdata_name(data, after, stop)
        return f"{mname} {rname}"
    if rtype == TYPE_TXT:
        parts: list[str] = []
        pos = start
        while pos < stop:
            end = pos + 1 + data[pos]
            if end > stop:
                raise DecodeError("DNS: TXT string overruns its record data")
            parts.append(data[pos + 1 : end].decode("ascii", "backslashreplace"))
            pos = end
        return " ".join(f'"{p}"' for p in parts)[:_MAX_REPR]
    # RFC 3597 generic form, truncated: enough to recognise, cheap to keep.
    return f"\\# {rdlen} {data[start:stop].hex()}"[:_MAX_REPR]


def decode_dns(data: bytes) -> DnsMessage:
    """Decode one DNS message: header, question section and answer section."""
    data = bytes(data)
    n = len(data)
    if n < HEADER_LEN:
        raise DecodeError(f"DNS: {n} bytes is shorter than the header")
    msg_id, flags, qdcount, ancount = unpack_from(">HHHH", data, 0)
    # Every question takes >= 5 bytes and every record >= 11: reject impossible counts
    # before looping over them.
    if qdcount * 5 + ancount * 11 > n - HEADER_LEN:
        raise DecodeError(f"DNS: {qdcount} questions and {ancount} answers cannot fit {n} bytes")
    pos = HEADER_LEN
    questions: list[tuple[str, int]] = []
    for _ in range(qdcount):
        name, pos = read_name(data, pos)
        if pos + 4 > n:
            raise DecodeError("DNS: truncated question")
        (qtype,) = unpack_from(">H", data, pos)
        pos += 4
        questions.append((name, qtype))
    answers: list[DnsRecord] = []
    for _ in range(ancount):
        name, pos = read_name(data, pos)
        if pos + 10 > n:
            raise DecodeError("DNS: truncated resource record header")
        rtype, _cls, ttl, rdlen = unpack_from(">HHIH", data, pos)
        pos += 10
        stop = pos + rdlen
        if stop > n:
            raise DecodeError("DNS: record data runs past the message end")
        answers.append(DnsRecord(name, rtype, ttl, _value(data, rtype, pos, stop)))
        pos = stop
    return DnsMessage(
        msg_id=msg_id,
        is_response=bool(flags & 0x8000),
        rcode=flags & 0x000F,
        questions=tuple(questions),
        answers=tuple(answers),
    )


class DnsTcpDecoder:
    """DNS over TCP (RFC 1035 4.2.2 / RFC 7766): two-byte length-prefixed messages."""

    __slots__ = ("_buf", "_error", "_max_messages", "messages", "overflow")

    def __init__(self, *, max_messages: int = 1024) -> None:
        self.overflow = 0
        self.messages = 0
        self._max_messages = max_messages
        self._buf = bytearray()
        self._error: DecodeError | None = None

    def feed(self, data: bytes) -> list[Event]:
        if self._error is not None:
            raise DecodeError("DNS: decoder already failed") from self._error
        try:
            return self._feed(data)
        except DecodeError as exc:
            self._error = exc
            raise

    def _feed(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        if self.messages >= self._max_messages:
            # A long-lived resolver connection: the first messages tell us what it is.
            self.overflow += len(data)
            return events
        buf = self._buf
        buf += data
        pos = 0
        while len(buf) - pos >= 2:
            (length,) = unpack_from(">H", buf, pos)
            if length < HEADER_LEN:
                raise DecodeError(f"DNS: TCP message length {length} is shorter than a header")
            if len(buf) - pos - 2 < length:
                break
            events.append(decode_dns(bytes(buf[pos + 2 : pos + 2 + length])))
            pos += 2 + length
            self.messages += 1
            if self.messages >= self._max_messages:
                self.overflow += len(buf) - pos
                pos = len(buf)
                break
        del buf[:pos]
        return events
