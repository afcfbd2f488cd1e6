#!/usr/bin/env python3
"""A miner simulator: resolves the pool through the lab DNS, speaks Stratum (CryptoNote or
Stratum v1, plain or TLS), burns CPU in a busy loop, submits shares, reconnects when dropped.

Without --pool it reads the pool from config.json in its working directory, as XMRig does
({"url": "HOST:PORT", "tls": true}); a literal IP is connected to without any DNS lookup.

Self-contained on purpose (the lab copies it to an inconspicuous path, as real droppers do).
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import json
import os
import random
import socket
import ssl
import struct
import sys
import threading
import time
from typing import Any

AGENT = "XMRig/6.21.0 (Linux x86_64) libuv/1.44.2 gcc/12.2.0"
WALLET = ("48edfHu7V9Z84YzzMa6fUueoELZ9ZRXq9VetWzYGzKt52XU5xvqgzYnDK9URnRoJMk1j8nLwEVsaSW"
          "J4fhdUyZijBGUicoD")


def resolve(name: str, server: str, timeout: float = 2.0) -> str:
    """One A lookup over UDP, so the query and the answer cross the mirrored link."""
    qid = random.getrandbits(16)
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00"
    query = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + qname + struct.pack("!HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(query, (server, 53))
        resp = s.recv(4096)
    rid, flags, _qd, an = struct.unpack_from("!HHHH", resp)
    if rid != qid or flags & 0xF or not an:
        raise OSError(f"{name}: no address (rcode {flags & 0xF})")
    off = 12 + len(qname) + 4
    for _ in range(an):
        rtype, _c, _t, rdlen = struct.unpack_from("!HHIH", resp, off + 2)
        off += 12
        if rtype == 1 and rdlen == 4:
            return socket.inet_ntoa(resp[off:off + 4])
        off += rdlen
    raise OSError(f"{name}: no A record")


class Burner(threading.Thread):
    """The 'hashing': a tight loop that keeps one core busy while a job is known."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.blob = b""
        self.hashes = 0

    def run(self) -> None:
        h = hashlib.sha256
        while True:
            blob = self.blob
            if not blob:
                time.sleep(0.05)
                continue
            d = blob
            for _ in range(20000):
                d = h(d).digest()
            self.hashes += 20000


def session(args: argparse.Namespace, burner: Burner) -> None:
    if args.http_proxy:
        # Through a corporate HTTP proxy: CONNECT names the pool, the proxy resolves it.
        phost, _, pport = args.http_proxy.rpartition(":")
        ip = phost
        raw = socket.create_connection((phost, int(pport)), timeout=10)
        raw.sendall(f"CONNECT {args.pool}:{args.port} HTTP/1.1\r\nHost: {args.pool}:"
                    f"{args.port}\r\nUser-Agent: curl/7.88.1\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = raw.recv(4096)
            if not chunk:
                raise OSError("proxy closed the connection")
            head += chunk
        if head.split(b" ", 2)[1:2] != [b"200"]:
            raise OSError(f"proxy refused: {head[:60]!r}")
    else:
        try:
            ip = str(ipaddress.ip_address(args.pool))
        except ValueError:
            ip = resolve(args.pool, args.dns)
        raw = socket.create_connection((ip, args.port), timeout=10)
    sock: socket.socket = raw
    if args.tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # pools commonly use self-signed certificates
        sock = ctx.wrap_socket(raw, server_hostname=args.pool if args.sni else None)
    sock.settimeout(1.0)
    sys.stdout.write(f"connected pool={args.pool} ip={ip} port={args.port} "
                     f"local_port={sock.getsockname()[1]} pid={os.getpid()}\n")
    sys.stdout.flush()
    ids = iter(range(1, 1 << 30))

    def send(obj: dict[str, Any]) -> None:
        sock.sendall(json.dumps(obj, separators=(",", ":")).encode() + b"\n")

    if args.dialect == "cryptonote":
        send({"id": next(ids), "jsonrpc": "2.0", "method": "login", "params": {
            "login": WALLET, "pass": "x", "agent": AGENT, "algo": ["rx/0"], "rigid": "lab"}})
    else:
        send({"id": next(ids), "method": "mining.subscribe", "params": ["cgminer/4.12.0"]})
        send({"id": next(ids), "method": "mining.authorize", "params": ["labworker.1", "x"]})
    buf = b""
    last_share = last_keepalive = time.monotonic()
    job_id = ""
    while True:
        try:
            data = sock.recv(65536)
            if not data:
                raise OSError("pool closed the connection")
            buf += data
        except TimeoutError:
            pass
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            msg = json.loads(line)
            job = None
            if isinstance(msg.get("result"), dict):
                job = msg["result"].get("job")
            if msg.get("method") == "job":
                job = msg.get("params")
            if msg.get("method") == "mining.notify":
                job = {"job_id": msg["params"][0], "blob": msg["params"][1]}
            if isinstance(job, dict) and "blob" in job:
                job_id = str(job.get("job_id", ""))
                burner.blob = str(job["blob"]).encode()
        now = time.monotonic()
        if job_id and now - last_share > args.share_interval:
            last_share = now
            nonce = random.getrandbits(32)
            if args.dialect == "cryptonote":
                send({"id": next(ids), "jsonrpc": "2.0", "method": "submit", "params": {
                    "id": "1", "job_id": job_id, "nonce": f"{nonce:08x}",
                    "result": hashlib.sha256(burner.blob).hexdigest()}})
            else:
                send({"id": next(ids), "method": "mining.submit", "params": [
                    "labworker.1", job_id, "00000000", f"{int(time.time()):08x}",
                    f"{nonce:08x}"]})
        if args.dialect == "cryptonote" and now - last_keepalive > 60:
            last_keepalive = now
            send({"id": next(ids), "jsonrpc": "2.0", "method": "keepalived",
                  "params": {"id": "1"}})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--pool", help="pool host name or address (default: config.json)")
    ap.add_argument("--port", type=int, default=4444)
    ap.add_argument("--dns", help="DNS server address (when the pool is a name)")
    ap.add_argument("--http-proxy", metavar="HOST:PORT",
                    help="reach the pool through this HTTP CONNECT proxy (it resolves the name)")
    ap.add_argument("--dialect", choices=("cryptonote", "stratum"), default="cryptonote")
    ap.add_argument("--tls", action="store_true")
    ap.add_argument("--sni", action="store_true", help="send the pool name as TLS SNI")
    ap.add_argument("--share-interval", type=float, default=5.0)
    ap.add_argument("--retry", type=float, default=2.0, help="seconds between reconnects")
    args = ap.parse_args()
    if args.pool is None:
        with open("config.json", encoding="utf-8") as fh:  # noqa: PTH123 -- a self-contained script
            conf = json.load(fh)
        url = str(conf["url"]).split("://")[-1]
        args.pool, _, port = url.rpartition(":")
        args.port = int(port)
        args.tls = args.tls or bool(conf.get("tls"))
    burner = Burner()
    burner.start()
    while True:
        try:
            session(args, burner)
        except (OSError, ValueError) as exc:
            sys.stderr.write(f"miner: {exc}; retrying in {args.retry:g}s\n")
            burner.blob = b""
            time.sleep(args.retry)


if __name__ == "__main__":
    main()
