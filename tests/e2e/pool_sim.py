"""A small mining pool on loopback: answers CryptoNote login and Stratum v1 subscribe/authorize.

Run as ``python pool_sim.py [--port N] [--job-interval S]``; it prints ``LISTEN <port>`` once
it accepts connections, then serves until SIGTERM. Every connection gets a job at login and a
new one every job interval, the way a real pool pushes work; shares are acknowledged. Lines are
newline-delimited JSON-RPC; a line longer than MAX_LINE or not JSON closes the connection, as
pools do with garbage.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import signal
import sys
from typing import Any

MAX_LINE = 64 * 1024
SEED_HASH = secrets.token_hex(32)


class Session:
    """One miner connection: which dialect it spoke, and the jobs it was sent."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.dialect: str | None = None  # "cryptonote" | "stratum-v1"
        self.session_id = secrets.token_hex(16)
        self.height = 3_566_070
        self.jobs = 0

    def send(self, msg: dict[str, Any]) -> None:
        # Compact JSON with a trailing newline, the way xmrig-proxy and ckpool write it.
        self.writer.write(json.dumps(msg, separators=(",", ":")).encode() + b"\n")

    def cryptonote_job(self) -> dict[str, Any]:
        self.jobs += 1
        self.height += 1
        return {
            "blob": "1010" + secrets.token_hex(74),
            "job_id": secrets.token_urlsafe(21),
            "target": "b88d0600",
            "algo": "rx/0",
            "height": self.height,
            "seed_hash": SEED_HASH,
        }

    def push_job(self) -> None:
        if self.dialect == "cryptonote":
            self.send({"jsonrpc": "2.0", "method": "job", "params": self.cryptonote_job()})
        elif self.dialect == "stratum-v1":
            self.jobs += 1
            self.send({
                "id": None,
                "method": "mining.notify",
                "params": [
                    f"{self.jobs:x}", secrets.token_hex(32), secrets.token_hex(40),
                    secrets.token_hex(30), [secrets.token_hex(32)], "20000000", "1703a30c",
                    f"{0x65a0f000 + self.jobs:08x}", self.jobs == 1,
                ],
            })

    def answer(self, msg: dict[str, Any]) -> None:
        """Reply to one request."""
        method = msg.get("method")
        mid = msg.get("id")
        if method == "login":
            self.dialect = "cryptonote"
            self.send({"id": mid, "jsonrpc": "2.0", "error": None, "result": {
                "id": self.session_id, "job": self.cryptonote_job(),
                "extensions": ["algo", "nicehash", "connect", "tls", "keepalive"],
                "status": "OK"}})
        elif method == "submit":
            self.send({"id": mid, "jsonrpc": "2.0", "error": None, "result": {"status": "OK"}})
        elif method == "mining.submit":
            self.send({"id": mid, "result": True, "error": None})
        elif method == "keepalived":
            self.send({"id": mid, "jsonrpc": "2.0", "error": None,
                       "result": {"status": "KEEPALIVED"}})
        elif method == "getjob":
            self.send({"id": mid, "jsonrpc": "2.0", "error": None, "result": self.cryptonote_job()})
        elif method == "mining.subscribe":
            self.dialect = "stratum-v1"
            sub = self.session_id[:16]
            self.send({"id": mid, "result": [[["mining.set_difficulty", sub],
                                              ["mining.notify", sub]], sub[:8], 4],
                       "error": None})
        elif method in ("mining.authorize", "mining.extranonce.subscribe"):
            self.send({"id": mid, "result": True, "error": None})
            if method == "mining.authorize":
                self.send({"id": None, "method": "mining.set_difficulty", "params": [65536]})
                self.push_job()
        else:
            self.send({"id": mid, "result": None,
                       "error": [20, f"unknown method {str(method)[:40]}", None]})


async def serve_one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    job_interval: float) -> None:
    session = Session(writer)

    async def pusher() -> None:
        while True:
            await asyncio.sleep(job_interval)
            if session.dialect is not None:
                session.push_job()
                await writer.drain()

    push = asyncio.create_task(pusher())
    try:
        while True:
            try:
                line = await reader.readuntil(b"\n")
            except asyncio.LimitOverrunError:
                break
            except asyncio.IncompleteReadError:
                break
            try:
                msg = json.loads(line)
            except ValueError:
                break
            if not isinstance(msg, dict):
                break
            session.answer(msg)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        push.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await push
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()


async def main_async(host: str, port: int, job_interval: float) -> None:
    server = await asyncio.start_server(
        lambda r, w: serve_one(r, w, job_interval), host, port, limit=MAX_LINE)
    bound = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"LISTEN {bound}\n")
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--job-interval", type=float, default=1.0,
                        help="seconds between job pushes on every connection")
    args = parser.parse_args(argv)
    asyncio.run(main_async(args.host, args.port, args.job_interval))
    return 0


if __name__ == "__main__":
    sys.exit(main())
