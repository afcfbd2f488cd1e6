#!/usr/bin/env python3
"""An MQTT 3.1.1 subscriber over TLS by address with no SNI and no ALPN (as an embedded
client built on OpenSSL defaults connects): CONNECT, SUBSCRIBE, then it reads the broker's
pushes and sends PINGREQ at its keepalive. A long-lived bare-TLS hard negative for the lab
(deploy/lab/record.py).
"""

from __future__ import annotations

import argparse
import socket
import ssl
import struct
import time


def packet(ptype: int, body: bytes) -> bytes:
    n, rem = len(body), bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        rem.append(b | (0x80 if n else 0))
        if not n:
            return bytes([ptype]) + bytes(rem) + body


def utf8(s: str) -> bytes:
    return struct.pack("!H", len(s)) + s.encode()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, default=8883)
    ap.add_argument("--topic", default="plant/#")
    ap.add_argument("--keepalive", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=40.0)
    args = ap.parse_args()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection((args.host, args.port), timeout=5)
    sock = ctx.wrap_socket(raw, server_hostname=None)
    sock.sendall(packet(0x10, utf8("MQTT") + bytes([4, 2]) + struct.pack("!H", args.keepalive)
                        + utf8("hmi-7")))
    sock.recv(4)
    sock.sendall(packet(0x82, struct.pack("!H", 1) + utf8(args.topic) + b"\x00"))
    sock.settimeout(1.0)
    end = time.monotonic() + args.seconds
    next_ping = time.monotonic() + args.keepalive
    while time.monotonic() < end:
        try:
            sock.recv(65536)
        except TimeoutError:
            pass
        if time.monotonic() >= next_ping:
            sock.sendall(b"\xc0\x00")
            next_ping += args.keepalive
    sock.sendall(b"\xe0\x00")
    sock.close()


if __name__ == "__main__":
    main()
