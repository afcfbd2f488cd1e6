"""DNS message decoder (UDP payloads and length-prefixed TCP streams): questions and answers."""

from __future__ import annotations

import re
import socket
import struct
from struct import unpack_from
from typing import Final

from netdetect.decoders.events import DnsMessage, DnsRecord, Event
from netdetect.errors import DecodeError

__all__ = ["ADDRESS_TYPES", "DnsTcpDecoder", "decode_dns", "read_name"]

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
# What passive DNS needs from an answer: addresses and the aliases leading to them.
ADDRESS_TYPES = frozenset({TYPE_A, TYPE_AAAA, TYPE_CNAME})
_UNSAFE = re.compile(rb"[^!-~]|[.\\]")
# Bytes a name keeps as they are in presentation format ('.' included: a dot inside a label
# is caught by counting dots against labels).
_PLAIN = bytes(c for c in range(0x21, 0x7F) if c != 0x5C)
_MAX_REPR = 128  # characters of a non-address record value worth keeping
_U16: Final = struct.Struct(">H").unpack_from
_RR: Final = struct.Struct(">HHIH").unpack_from
_HEAD: Final = struct.Struct(">HHHH").unpack_from
_ntop = socket.inet_ntop
_AF_INET = socket.AF_INET
_AF_INET6 = socket.AF_INET6

# Names already read in one message, by the offset they start at: (name, wire octets,
# pointers followed). Answer owners are nearly always a pointer to the question or to a
# CNAME target, so most names of a response are one dict lookup.
_NameCache = dict[int, tuple[str, int, int]]


def _escape_label(raw: bytes) -> str:
    # Presentation format (RFC 4343): keep a dot or odd byte inside a label distinguishable
    # from a label boundary, so "a.b" as one label never compares equal to two labels.
    def sub(m: re.Match[bytes]) -> bytes:
        c = m.group()[0]
        return b"\\" + bytes([c]) if c in b".\\" else b"\\%03d" % c

    return _UNSAFE.sub(sub, raw).decode("ascii")


def _text(parts: list[bytes]) -> str:
    """Presentation form of wire labels, lower-cased (one C pass when every byte is plain)."""
    raw = b".".join(parts).lower()
    if raw.translate(None, _PLAIN) or raw.count(b".") != len(parts) - 1:
        return ".".join([_escape_label(p.lower()) for p in parts])
    return raw.decode("ascii")


def read_name(data: bytes, pos: int) -> tuple[str, int]:
    """Decode the (possibly compressed) name at `pos`; returns (name, offset after it)."""
    return _read_name(data, pos, None)


def _read_name(data: bytes, pos: int, cache: _NameCache | None) -> tuple[str, int]:
    n = len(data)
    origin = pos
    parts: list[bytes] = []
    wire_len = 1
    jumps = 0
    after = -1
    tail: str | None = None
    while True:
        if pos >= n:
            raise DecodeError(f"DNS: name runs past the message end at offset {pos}")
        length = data[pos]
        if length == 0:
            pos += 1
            break
        if length >= 0xC0:
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
            if cache is not None:
                hit = cache.get(target)
                if hit is not None:
                    # The rest of the name was read before from this very offset: same
                    # labels, same limits, counted as if walked again.
                    tail, tail_wire, tail_jumps = hit
                    jumps += tail_jumps
                    if jumps > MAX_POINTER_JUMPS:
                        raise DecodeError("DNS: too many compression pointers")
                    wire_len += tail_wire - 1
                    if wire_len > MAX_NAME:
                        raise DecodeError("DNS: name longer than 255 octets")
                    break
            pos = target
            continue
        if length & 0xC0:
            raise DecodeError(f"DNS: unsupported label type 0x{length & 0xC0:02x}")
        pos += 1
        stop = pos + length
        if stop > n:
            raise DecodeError("DNS: label runs past the message end")
        wire_len += length + 1
        if wire_len > MAX_NAME:
            raise DecodeError("DNS: name longer than 255 octets")
        parts.append(data[pos:stop])
        pos = stop
    if parts:
        name = _text(parts)
        if tail:
            name = f"{name}.{tail}"
    else:
        name = tail or ""
    if cache is not None:
        cache[origin] = (name, wire_len, jumps)
    return name, (after if after >= 0 else pos)


def _rdata_name(data: bytes, start: int, stop: int, cache: _NameCache | None) -> tuple[str, int]:
    name, after = _read_name(data, start, cache)
    if after > stop:
        raise DecodeError("DNS: name overruns its record data")
    return name, after


def _value(data: bytes, rtype: int, start: int, stop: int, cache: _NameCache | None) -> str:
    rdlen = stop - start
    if rtype == TYPE_A:
        if rdlen != 4:
            raise DecodeError(f"DNS: A record with {rdlen} bytes")
        return _ntop(_AF_INET, data[start:stop])
    if rtype == TYPE_AAAA:
        if rdlen != 16:
            raise DecodeError(f"DNS: AAAA record with {rdlen} bytes")
        return _ntop(_AF_INET6, data[start:stop])
    if rtype in _NAME_TYPES:
        name, after = _rdata_name(data, start, stop, cache)
        if after != stop:
            raise DecodeError("DNS: bytes after the name in record data")
        return name
    if rtype == TYPE_MX:
        if rdlen < 3:
            raise DecodeError("DNS: MX record too short")
        (pref,) = _U16(data, start)
        name, _ = _rdata_name(data, start + 2, stop, cache)
        return f"{pref} {name}"
    if rtype == TYPE_SRV:
        if rdlen < 7:
            raise DecodeError("DNS: SRV record too short")
        prio, weight, port = unpack_from(">HHH", data, start)
        name, _ = _rdata_name(data, start + 6, stop, cache)
        return f"{prio} {weight} {port} {name}"
    if rtype == TYPE_SOA:
        mname, after = _rdata_name(data, start, stop, cache)
        rname, _ = _rdata_name(data, after, stop, cache)
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


def decode_dns(data: bytes, *, addresses_only: bool = False) -> DnsMessage:
    """Decode one DNS message: header, question section and answer section.

    With `addresses_only`, the answer section keeps only A, AAAA and CNAME records (what
    passive DNS learns from); the others are skipped after a bounds check, their data
    unread. Every record's header and owner name is still validated.
    """
    data = bytes(data)
    n = len(data)
    if n < HEADER_LEN:
        raise DecodeError(f"DNS: {n} bytes is shorter than the header")
    msg_id, flags, qdcount, ancount = _HEAD(data, 0)
    # Every question takes >= 5 bytes and every record >= 11: reject impossible counts
    # before looping over them.
    if qdcount * 5 + ancount * 11 > n - HEADER_LEN:
        raise DecodeError(f"DNS: {qdcount} questions and {ancount} answers cannot fit {n} bytes")
    cache: _NameCache = {}
    pos = HEADER_LEN
    questions: list[tuple[str, int]] = []
    for _ in range(qdcount):
        name, pos = _read_name(data, pos, cache)
        if pos + 4 > n:
            raise DecodeError("DNS: truncated question")
        questions.append((name, _U16(data, pos)[0]))
        pos += 4
    answers: list[DnsRecord] = []
    for _ in range(ancount):
        hit = None
        if pos + 1 < n and data[pos] >= 0xC0:
            # The usual owner: one pointer to a name read before (see _read_name).
            target = ((data[pos] & 0x3F) << 8) | data[pos + 1]
            if target < pos:
                hit = cache.get(target)
        if hit is not None and hit[2] < MAX_POINTER_JUMPS:
            name = hit[0]
            pos += 2
        else:
            name, pos = _read_name(data, pos, cache)
        if pos + 10 > n:
            raise DecodeError("DNS: truncated resource record header")
        rtype, _cls, ttl, rdlen = _RR(data, pos)
        pos += 10
        stop = pos + rdlen
        if stop > n:
            raise DecodeError("DNS: record data runs past the message end")
        if rtype == TYPE_A and rdlen == 4:
            answers.append(DnsRecord(name, rtype, ttl, _ntop(_AF_INET, data[pos:stop])))
        elif not addresses_only or rtype in ADDRESS_TYPES:
            answers.append(DnsRecord(name, rtype, ttl, _value(data, rtype, pos, stop, cache)))
        pos = stop
    # Positional: (msg_id, is_response, rcode, questions, answers).
    return DnsMessage(msg_id, flags >= 0x8000, flags & 0x000F, tuple(questions), tuple(answers))


def _framed_message(buf: bytearray, pos: int, length: int) -> DnsMessage:
    if length < HEADER_LEN:
        raise DecodeError(f"DNS: TCP message length {length} is shorter than a header")
    return decode_dns(bytes(buf[pos + 2 : pos + 2 + length]))


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
            if length >= HEADER_LEN and len(buf) - pos - 2 < length:
                break
            try:
                events.append(_framed_message(buf, pos, length))
            except DecodeError as exc:
                if not events:
                    raise
                # The messages before the damage are good: hand them out now and fail on the
                # next feed, so nothing decoded is lost to the error.
                self._error = exc
                del buf[:]
                return events
            pos += 2 + length
            self.messages += 1
            if self.messages >= self._max_messages:
                self.overflow += len(buf) - pos
                pos = len(buf)
                break
        del buf[:pos]
        return events
