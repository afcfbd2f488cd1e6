#!/usr/bin/env python3
"""The lab's ordinary services: an HTTPS site (TLS with SNI) and a bulk TCP download server."""

from __future__ import annotations

import argparse
import asyncio
import logging
import ssl

log = logging.getLogger("lab.web")
PAGE = b"<!doctype html><title>lab</title><p>an ordinary page</p>\n"
CHUNK = b"\xa5" * 65536


async def https(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            if not head:
                break
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: "
                         + str(len(PAGE)).encode() + b"\r\n\r\n" + PAGE)
            await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, OSError,
            ssl.SSLError):
        pass
    finally:
        writer.close()


async def bulk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """The client sends the number of MiB it wants as a decimal line; it gets that many."""
    try:
        line = await asyncio.wait_for(reader.readline(), 30)
        mib = max(0, min(int(line.strip() or b"0"), 1024))
        for _ in range(mib * 16):
            writer.write(CHUNK)
            await writer.drain()
    except (ValueError, TimeoutError, OSError):
        pass
    finally:
        writer.close()


async def run(args: argparse.Namespace) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    s1 = await asyncio.start_server(https, args.bind, args.https_port, ssl=ctx)
    s2 = await asyncio.start_server(bulk, args.bind, args.bulk_port)
    log.info("https on %s:%d, bulk on %s:%d", args.bind, args.https_port, args.bind,
             args.bulk_port)
    async with s1, s2:
        await asyncio.gather(s1.serve_forever(), s2.serve_forever())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bind", default="0.0.0.0")
    ap.add_argument("--https-port", type=int, default=443)
    ap.add_argument("--bulk-port", type=int, default=5201)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s web: %(message)s")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
