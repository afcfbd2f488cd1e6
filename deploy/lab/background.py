#!/usr/bin/env python3
"""Ordinary traffic for the lab's victim: HTTPS with SNI, DNS lookups and a bulk download.

None of it may raise an alert; the lab test checks exactly that.
"""

from __future__ import annotations

import argparse
import socket
import ssl
import sys

from dnsd import resolve


def https_get(ip: str, sni: str, port: int = 443, *, browser: bool = False) -> int:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the lab's web certificate is self-signed
    if browser:
        ctx.set_alpn_protocols(["h2", "http/1.1"])  # what every browser offers
    with socket.create_connection((ip, port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname=sni) as s:
        s.sendall(f"GET / HTTP/1.1\r\nHost: {sni}\r\nUser-Agent: curl/8.5.0\r\n\r\n".encode())
        data = b""
        while b"</p>" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return len(data)


def bulk(ip: str, mib: int, port: int = 5201) -> int:
    total = 0
    with socket.create_connection((ip, port), timeout=30) as s:
        s.sendall(f"{mib}\n".encode())
        while chunk := s.recv(1 << 16):
            total += len(chunk)
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--web", required=True, help="web server address")
    ap.add_argument("--sni", default="www.lab.example")
    ap.add_argument("--dns", required=True)
    ap.add_argument("--bulk-mib", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pool-site", help="only visit this pool's web site, as a browser would")
    args = ap.parse_args()
    if args.pool_site:
        ip = resolve(args.pool_site, args.dns)
        if ip is None:
            sys.exit(f"background: {args.pool_site} does not resolve")
        for _ in range(args.rounds):
            n = https_get(ip, args.pool_site, browser=True)
            sys.stdout.write(f"https {args.pool_site} ({ip}): {n} bytes\n")
        return
    for i in range(args.rounds):
        for name in (f"www{i}.lab.example", "updates.lab.example", "time.lab.example"):
            try:
                resolve(name, args.dns)
            except OSError as exc:
                sys.stderr.write(f"background: dns {name}: {exc}\n")
        n = https_get(args.web, args.sni)
        sys.stdout.write(f"https {args.sni}: {n} bytes\n")
    got = bulk(args.web, args.bulk_mib)
    sys.stdout.write(f"bulk: {got} bytes\n")
    if got != args.bulk_mib << 20:
        sys.exit(f"bulk transfer short: {got} bytes")


if __name__ == "__main__":
    main()
