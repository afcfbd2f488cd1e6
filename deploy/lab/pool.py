#!/usr/bin/env python3
"""The lab's mining pool: CryptoNote (XMRig-style) and Stratum v1 over plain TCP and TLS.

The dialect is chosen by the client's first method (`login` → CryptoNote, `mining.*` →
Stratum v1), so every port speaks both. After login/authorize the pool pushes a new job every
--job-interval seconds, answers submits and keepalives, and drops clients that send garbage
or lines longer than MAX_LINE.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import os
import ssl
from typing import Any

log = logging.getLogger("lab.pool")
MAX_LINE = 16384
IDLE_TIMEOUT = 300.0
_ids = itertools.count(1)


def _hex(n: int) -> str:
    return os.urandom(n).hex()


ALGO = "rx/0"
TARGET = "b88d0600"


class Session:
    algo = ALGO
    target = TARGET

    def __init__(self, writer: asyncio.StreamWriter, job_interval: float) -> None:
        self.writer = writer
        self.job_interval = job_interval
        # One seed per session: a real XMRig re-initialises RandomX when the seed changes.
        self.seed = _hex(32)
        self.dialect: str | None = None
        self.pusher: asyncio.Task[None] | None = None
        self.height = 3_100_000
        self.session_id = _hex(8)

    def send(self, obj: dict[str, Any]) -> None:
        self.writer.write(json.dumps(obj, separators=(",", ":")).encode() + b"\n")

    def cn_job(self) -> dict[str, Any]:
        self.height += 1
        return {"blob": "1010" + _hex(74), "job_id": _hex(4), "target": self.target,
                "algo": self.algo, "height": self.height, "seed_hash": self.seed}

    def v1_notify(self) -> dict[str, Any]:
        params = [_hex(4), _hex(32), "01000000010000" + _hex(20), _hex(24),
                  [_hex(32) for _ in range(4)], "20000000", "1703a30c", _hex(4), True]
        return {"id": None, "method": "mining.notify", "params": params}

    async def push_jobs(self) -> None:
        while True:
            await asyncio.sleep(self.job_interval)
            if self.dialect == "cryptonote":
                self.send({"jsonrpc": "2.0", "method": "job", "params": self.cn_job()})
            else:
                self.send(self.v1_notify())
            await self.writer.drain()

    def start_pushing(self) -> None:
        if self.pusher is None:
            self.pusher = asyncio.create_task(self.push_jobs())

    def handle(self, msg: dict[str, Any]) -> None:
        method = msg.get("method")
        mid = msg.get("id")
        if not isinstance(method, str):
            return
        if method == "login":
            self.dialect = "cryptonote"
            self.send({"id": mid, "jsonrpc": "2.0", "error": None, "result": {
                "id": self.session_id, "job": self.cn_job(), "status": "OK",
                "extensions": ["algo", "keepalive"]}})
            self.start_pushing()
        elif method == "submit":
            self.send({"id": mid, "jsonrpc": "2.0", "error": None, "result": {"status": "OK"}})
        elif method == "keepalived":
            self.send({"id": mid, "jsonrpc": "2.0", "error": None,
                       "result": {"status": "KEEPALIVED"}})
        elif method == "mining.subscribe":
            self.dialect = "stratum-v1"
            self.send({"id": mid, "result": [[["mining.set_difficulty", _hex(8)],
                                              ["mining.notify", _hex(8)]], _hex(4), 4],
                       "error": None})
        elif method in ("mining.authorize", "mining.extranonce.subscribe"):
            self.send({"id": mid, "result": True, "error": None})
            if method == "mining.authorize":
                self.send({"id": None, "method": "mining.set_difficulty", "params": [16384]})
                self.send(self.v1_notify())
                self.start_pushing()
        elif method == "mining.submit":
            self.send({"id": mid, "result": True, "error": None})
        else:
            self.send({"id": mid, "result": None, "error": [20, "unknown method", None]})

    def close(self) -> None:
        if self.pusher is not None:
            self.pusher.cancel()


async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 job_interval: float) -> None:
    peer = writer.get_extra_info("peername")
    sess = Session(writer, job_interval)
    log.info("miner connected from %s", peer)
    try:
        while True:
            line = await asyncio.wait_for(reader.readuntil(b"\n"), IDLE_TIMEOUT)
            try:
                msg = json.loads(line)
            except ValueError:
                log.info("%s: not JSON, closing", peer)
                break
            if isinstance(msg, dict):
                sess.handle(msg)
                await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, OSError,
            ssl.SSLError):
        pass
    finally:
        sess.close()
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()
        log.info("miner %s gone", peer)


async def run(args: argparse.Namespace) -> None:
    ctx: ssl.SSLContext | None = None
    if args.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        if args.keylog:
            # NSS key log: a recording's TLS can be decrypted to check its labels.
            ctx.keylog_filename = args.keylog

    async def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await client(r, w, args.job_interval)

    servers = [await asyncio.start_server(handler, args.bind, p, limit=MAX_LINE)
               for p in args.port]
    if ctx is not None:
        servers += [await asyncio.start_server(handler, args.bind, p, ssl=ctx, limit=MAX_LINE)
                    for p in args.tls_port]
    log.info("pool on %s: plain %s, tls %s", args.bind, args.port,
             args.tls_port if ctx else [])
    await asyncio.gather(*(s.serve_forever() for s in servers))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bind", default="0.0.0.0")
    ap.add_argument("--port", type=int, action="append", default=[])
    ap.add_argument("--tls-port", type=int, action="append", default=[])
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--job-interval", type=float, default=3.0)
    ap.add_argument("--keylog", help="write TLS session keys here (NSS key log format)")
    ap.add_argument("--algo", default=ALGO, help="CryptoNote algorithm named in jobs")
    ap.add_argument("--target", default=TARGET, help="CryptoNote share target (hex)")
    args = ap.parse_args()
    Session.algo, Session.target = args.algo, args.target
    if not args.port:
        args.port = [3333, 4444]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s pool: %(message)s")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
