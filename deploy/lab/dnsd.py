#!/usr/bin/env python3
"""The lab's DNS answerer: the pool name resolves to the pool address, everything else NXDOMAIN.

Also holds the small DNS client the lab's traffic generators use (`resolve`), so they look up
names over the wire, where the sensor sees the query and the answer, without touching the
host's resolver configuration.
"""

from __future__ import annotations

import argparse
import logging
import random
import socket
import struct

log = logging.getLogger("lab.dnsd")

_HDR = struct.Struct("!HHHHHH")
_QTAIL = struct.Struct("!HH")
QTYPE_A = 1
MAX_NAME = 255


class DnsFormatError(ValueError):
    """A message that is not a well-formed single-question query or response."""


def encode_name(name: str) -> bytes:
    out = b""
    for label in name.rstrip(".").split("."):
        raw = label.encode("ascii")
        if not 0 < len(raw) < 64:
            raise DnsFormatError(f"bad label in {name!r}")
        out += bytes([len(raw)]) + raw
    return out + b"\x00"


def decode_question(msg: bytes) -> tuple[int, int, str, int, int]:
    """(id, flags, name, qtype, end offset) of the first question; no compression in questions."""
    if len(msg) < _HDR.size:
        raise DnsFormatError("short header")
    qid, flags, qd, _an, _ns, _ar = _HDR.unpack_from(msg)
    if qd != 1:
        raise DnsFormatError("expected one question")
    labels: list[str] = []
    off = _HDR.size
    while True:
        if off >= len(msg):
            raise DnsFormatError("truncated name")
        n = msg[off]
        off += 1
        if n == 0:
            break
        if n >= 64 or off + n > len(msg):
            raise DnsFormatError("bad label")
        labels.append(msg[off:off + n].decode("ascii", "replace"))
        off += n
    name = ".".join(labels).lower()
    if len(name) > MAX_NAME or off + _QTAIL.size > len(msg):
        raise DnsFormatError("truncated question")
    qtype, _qclass = _QTAIL.unpack_from(msg, off)
    return qid, flags, name, qtype, off + _QTAIL.size


def answer(query: bytes, names: dict[str, str], ttl: int = 60) -> bytes | None:
    """The response to `query`, or None for something that is not a query."""
    try:
        qid, flags, name, qtype, end = decode_question(query)
    except DnsFormatError:
        return None
    if flags & 0x8000:
        return None
    question = query[_HDR.size:end]
    addr = names.get(name)
    rd = flags & 0x0100
    if addr is None:
        return _HDR.pack(qid, 0x8000 | 0x0400 | rd | 0x0080 | 3, 1, 0, 0, 0) + question
    if qtype != QTYPE_A:
        return _HDR.pack(qid, 0x8000 | 0x0400 | rd | 0x0080, 1, 0, 0, 0) + question
    rr = b"\xc0\x0c" + struct.pack("!HHIH", QTYPE_A, 1, ttl, 4) + socket.inet_aton(addr)
    return _HDR.pack(qid, 0x8000 | 0x0400 | rd | 0x0080, 1, 1, 0, 0) + question + rr


def resolve(name: str, server: str, *, timeout: float = 2.0, port: int = 53) -> str | None:
    """The first A record of `name` from `server`, or None (NXDOMAIN, no answer)."""
    qid = random.getrandbits(16)
    query = _HDR.pack(qid, 0x0100, 1, 0, 0, 0) + encode_name(name) + _QTAIL.pack(QTYPE_A, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(query, (server, port))
        resp, _ = s.recvfrom(4096)
    rid, flags, _name, _qtype, off = decode_question(resp)
    if rid != qid or flags & 0x000F:
        return None
    ancount = _HDR.unpack_from(resp)[3]
    for _ in range(ancount):
        if off + 12 > len(resp):
            break
        rtype, _cls, _ttl, rdlen = struct.unpack_from("!HHIH", resp, off + 2)
        off += 12
        if rtype == QTYPE_A and rdlen == 4:
            return socket.inet_ntoa(resp[off:off + 4])
        off += rdlen
    return None


def serve(bind: str, port: int, names: dict[str, str]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((bind, port))
        log.info("answering %s on %s:%d", ", ".join(f"{k}={v}" for k, v in names.items()),
                 bind, port)
        while True:
            query, peer = s.recvfrom(4096)
            resp = answer(query, names)
            if resp is not None:
                s.sendto(resp, peer)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bind", default="0.0.0.0")
    ap.add_argument("--port", type=int, default=53)
    ap.add_argument("--name", action="append", default=[], metavar="NAME=IP",
                    help="a name to answer (repeatable); everything else is NXDOMAIN")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s dnsd: %(message)s")
    names = {}
    for item in args.name:
        k, _, v = item.partition("=")
        names[k.lower().rstrip(".")] = v
    serve(args.bind, args.port, names)


if __name__ == "__main__":
    main()
