#!/usr/bin/env python3
"""The lab's other ways out for a miner: a Monero-daemon-like RPC server (solo mining), a
SOCKS4/4a/5 proxy and an HTTP CONNECT proxy, in one asyncio process.

- monerod: `POST /json_rpc` with `get_block_template`/`getblocktemplate` (a fresh template),
  `submit_block`/`submitblock`, `get_info`, `get_height`, `get_block_count`,
  `get_last_block_header`; the legacy `GET /getheight` and `GET /getinfo` that XMRig's
  `--daemon` mode polls. The height moves every --block-interval seconds.
- socks: RFC 1928 SOCKS5 (no auth or user/password) and SOCKS4/4a, CONNECT only.
- connect: `CONNECT host:port HTTP/1.1` answered `200 Connection established`.

The proxies relay to whatever the client names, so in the lab they reach the pool on the
pool namespace's own address: the mirror sees only the miner↔proxy leg, as on a real
network. Used by deploy/lab/record.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import struct
import time
from typing import Any

log = logging.getLogger("lab.paths")
MAX_BODY = 65536
# The proxies' own name table (--host NAME=IP): the lab's namespaces have no resolver.
HOSTS: dict[str, str] = {}


# -- Monero daemon RPC ---------------------------------------------------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


class Daemon:
    def __init__(self, block_interval: float) -> None:
        self.start = time.monotonic()
        self.block_interval = block_interval
        self.seed = os.urandom(32).hex()

    @property
    def height(self) -> int:
        return 3_200_000 + int((time.monotonic() - self.start) / self.block_interval)

    def top_hash(self) -> str:
        return struct.pack("<Q", self.height).hex() * 4

    def template(self) -> dict[str, Any]:
        """A block template XMRig's parser accepts: v16 header, a coinbase with one
        tagged-key output, tx pubkey and a reserved extra nonce, no other transactions."""
        h = self.height
        blob = bytearray([16, 16]) + _varint(int(time.time())) + bytes.fromhex(self.top_hash())
        blob += bytes(4)  # nonce
        blob += _varint(2) + _varint(h + 60) + b"\x01\xff" + _varint(h)  # tx version ... gen
        blob += b"\x01" + _varint(600_000_000_000) + b"\x03" + os.urandom(32) + b"\x2a"
        extra = b"\x01" + os.urandom(32) + b"\x02\x08"
        reserved = len(blob) + len(_varint(len(extra) + 8)) + len(extra)
        blob += _varint(len(extra) + 8) + extra + bytes(8)
        blob += b"\x00" + _varint(0)  # RCT type 0, no transaction hashes
        return {"blocktemplate_blob": blob.hex(), "blockhashing_blob": blob[:76].hex(),
                "difficulty": 1000, "difficulty_top64": 0, "expected_reward": 600000000000,
                "height": h, "prev_hash": self.top_hash(), "reserved_offset": reserved,
                "seed_hash": self.seed, "seed_height": 3_198_976, "status": "OK",
                "untrusted": False, "wide_difficulty": "0x3e8"}

    def info(self) -> dict[str, Any]:
        return {"height": self.height, "target_height": self.height, "difficulty": 1000,
                "top_block_hash": self.top_hash(), "status": "OK", "synchronized": True,
                "nettype": "mainnet", "version": "0.18.3.4-release", "untrusted": False}

    def rpc(self, req: dict[str, Any]) -> dict[str, Any]:
        method = req.get("method")
        out: dict[str, Any] = {"id": req.get("id"), "jsonrpc": "2.0"}
        if method in ("get_block_template", "getblocktemplate"):
            out["result"] = self.template()
        elif method in ("submit_block", "submitblock"):
            out["result"] = {"status": "OK", "untrusted": False}
        elif method == "get_info":
            out["result"] = self.info()
        elif method in ("get_block_count", "getblockcount"):
            out["result"] = {"count": self.height, "status": "OK", "untrusted": False}
        elif method in ("get_last_block_header", "getlastblockheader"):
            out["result"] = {"block_header": {"height": self.height - 1,
                                              "hash": self.top_hash(), "difficulty": 1000,
                                              "timestamp": int(time.time()) - 30},
                             "status": "OK", "untrusted": False}
        elif method == "get_height":
            out["result"] = {"height": self.height, "status": "OK"}
        else:
            out["error"] = {"code": -32601, "message": "Method not found"}
        return out

    async def client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                fields = {k.strip().lower(): v.strip() for k, _, v in
                          (ln.partition(":") for ln in lines[1:] if ln)}
                body = b""
                n = int(fields.get("content-length", "0"))
                if 0 < n <= MAX_BODY:
                    body = await reader.readexactly(n)
                if method == "GET" and path in ("/getheight", "/get_height"):
                    reply = {"hash": self.top_hash(), "height": self.height, "status": "OK",
                             "untrusted": False}
                elif method == "GET" and path in ("/getinfo", "/get_info"):
                    reply = self.info()
                elif method == "POST" and path == "/json_rpc":
                    reply = self.rpc(json.loads(body))
                else:
                    writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                    await writer.drain()
                    continue
                data = json.dumps(reply, indent=2).encode()
                writer.write(b"HTTP/1.1 200 Ok\r\nServer: Epee-based\r\nContent-Length: "
                             + str(len(data)).encode() + b"\r\nContent-Type: application/json"
                             b"\r\n\r\n" + data)
                await writer.drain()
                if fields.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError,
                OSError, ValueError):
            pass
        finally:
            writer.close()


# -- proxies -------------------------------------------------------------------------------


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            writer.close()


async def _relay(cr: asyncio.StreamReader, cw: asyncio.StreamWriter, host: str,
                 port: int, ok: bytes, fail: bytes) -> None:
    try:
        ur, uw = await asyncio.wait_for(
            asyncio.open_connection(HOSTS.get(host.lower(), host), port), 10)
    except (OSError, TimeoutError):
        cw.write(fail)
        cw.close()
        return
    cw.write(ok)
    await cw.drain()
    log.info("relaying to %s:%d", host, port)
    await asyncio.gather(_pipe(cr, uw), _pipe(ur, cw))


async def socks(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        ver = (await reader.readexactly(1))[0]
        if ver == 5:
            n = (await reader.readexactly(1))[0]
            methods = await reader.readexactly(n)
            if 0 in methods:
                writer.write(b"\x05\x00")
            elif 2 in methods:
                writer.write(b"\x05\x02")
                _, ulen = await reader.readexactly(2)
                await reader.readexactly(ulen)
                plen = (await reader.readexactly(1))[0]
                await reader.readexactly(plen)
                writer.write(b"\x01\x00")
            else:
                writer.write(b"\x05\xff")
                return
            _, cmd, _, atyp = await reader.readexactly(4)
            if atyp == 1:
                host = str(ipaddress.IPv4Address(await reader.readexactly(4)))
            elif atyp == 4:
                host = str(ipaddress.IPv6Address(await reader.readexactly(16)))
            else:
                host = (await reader.readexactly((await reader.readexactly(1))[0])).decode()
            port = struct.unpack("!H", await reader.readexactly(2))[0]
            if cmd != 1:
                writer.write(b"\x05\x07\x00\x01" + bytes(6))
                return
            ok = b"\x05\x00\x00\x01" + bytes(4) + b"\x00\x00"
            await _relay(reader, writer, host, port, ok, b"\x05\x05\x00\x01" + bytes(6))
        elif ver == 4:
            cmd, = await reader.readexactly(1)
            port = struct.unpack("!H", await reader.readexactly(2))[0]
            ip = await reader.readexactly(4)
            await reader.readuntil(b"\0")
            host = str(ipaddress.IPv4Address(ip))
            if ip[:3] == b"\0\0\0" and ip[3]:
                host = (await reader.readuntil(b"\0"))[:-1].decode()
            if cmd != 1:
                return
            await _relay(reader, writer, host, port, b"\x00\x5a" + bytes(6),
                         b"\x00\x5b" + bytes(6))
    except (asyncio.IncompleteReadError, OSError, UnicodeDecodeError, ValueError):
        pass
    finally:
        with contextlib.suppress(OSError):
            writer.close()


async def connect_proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
        if method != "CONNECT":
            writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        host, _, port = target.rpartition(":")
        await _relay(reader, writer, host.strip("[]"), int(port),
                     b"HTTP/1.1 200 Connection established\r\nProxy-agent: lab/1.0\r\n\r\n",
                     b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, OSError,
            ValueError):
        pass
    finally:
        with contextlib.suppress(OSError):
            writer.close()


async def run(args: argparse.Namespace) -> None:
    daemon = Daemon(args.block_interval)
    servers = [
        await asyncio.start_server(daemon.client, args.bind, args.monerod_port),
        await asyncio.start_server(socks, args.bind, args.socks_port),
        await asyncio.start_server(connect_proxy, args.bind, args.connect_port),
    ]
    log.info("monerod :%d, socks :%d, connect :%d on %s", args.monerod_port, args.socks_port,
             args.connect_port, args.bind)
    await asyncio.gather(*(s.serve_forever() for s in servers))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bind", default="0.0.0.0")
    ap.add_argument("--monerod-port", type=int, default=18081)
    ap.add_argument("--socks-port", type=int, default=1080)
    ap.add_argument("--connect-port", type=int, default=3128)
    ap.add_argument("--block-interval", type=float, default=20.0)
    ap.add_argument("--host", action="append", default=[], metavar="NAME=IP",
                    help="a name the proxies resolve to IP (the lab has no resolver)")
    args = ap.parse_args()
    for item in args.host:
        name, _, ip = item.partition("=")
        HOSTS[name.lower()] = ip
    logging.basicConfig(level=logging.INFO, format="%(asctime)s paths: %(message)s")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
