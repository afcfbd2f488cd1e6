"""A stand-in CPU miner: logs in to a pool like XMRig (or cpuminer), hashes jobs, submits shares.

Takes XMRig's options (``-o stratum+tcp://HOST:PORT -u WALLET -p x --rig-id R -a ALGO
--donate-level N -t THREADS``), names its process after the file it was started as (a copy at
``~/.cache/xmrig/xmrig`` shows up as ``xmrig`` in ps), prints ``CONNECTED <local port>`` once
the pool connection is up, and burns CPU in a hashing loop while it holds the connection.
``-t 0`` keeps the connection without hashing (a paused miner). Algorithms sha256d and scrypt
speak Stratum v1 as cpuminer does; everything else speaks CryptoNote as XMRig does.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import hashlib
import json
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

XMRIG_AGENT = "XMRig/6.21.0 (Linux x86_64) libuv/1.44.2 gcc/11.2.0"
CPUMINER_AGENT = "cpuminer/2.5.1"
STRATUM_V1_ALGOS = frozenset({"sha256d", "scrypt"})
PR_SET_NAME = 15
MAX_LINE = 64 * 1024


def set_process_name(name: str) -> None:
    """Best effort: the kernel's comm for this process (what ps and /proc/<pid>/stat show)."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return
    libc = ctypes.CDLL(libc_name, use_errno=True)
    libc.prctl(PR_SET_NAME, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0)


class Miner:
    """One pool connection, a reader thread for the pool's messages, hashing threads."""

    def __init__(self, sock: socket.socket, args: argparse.Namespace) -> None:
        self.sock = sock
        self.args = args
        self.v1 = args.algo in STRATUM_V1_ALGOS
        self.lock = threading.Lock()
        self.send_lock = threading.Lock()
        self.job: dict[str, Any] | None = None
        self.session = ""
        self.next_id = 1
        self.closed = threading.Event()
        self.shares = 0

    def send(self, method: str, params: Any) -> None:
        with self.send_lock:
            msg: dict[str, Any] = {"id": self.next_id, "method": method, "params": params}
            if not self.v1:
                msg["jsonrpc"] = "2.0"
            self.next_id += 1
            self.sock.sendall(json.dumps(msg, separators=(",", ":")).encode() + b"\n")

    def login(self) -> None:
        a = self.args
        if self.v1:
            self.send("mining.subscribe", [CPUMINER_AGENT])
            self.send("mining.authorize", [a.user, a.password])
        else:
            params = {"login": a.user, "pass": a.password, "agent": XMRIG_AGENT,
                      "algo": [a.algo]}
            if a.rig_id:
                params["rigid"] = a.rig_id
            self.send("login", params)

    def on_message(self, msg: dict[str, Any]) -> None:
        result = msg.get("result")
        method = msg.get("method")
        with self.lock:
            if isinstance(result, dict) and isinstance(result.get("job"), dict):
                self.session = str(result.get("id", ""))
                self.job = result["job"]
            elif method == "job" and isinstance(msg.get("params"), dict):
                self.job = msg["params"]
            elif method == "mining.notify" and isinstance(msg.get("params"), list):
                params = msg["params"]
                self.job = {"job_id": params[0], "blob": "".join(
                    p for p in params[1:4] if isinstance(p, str))}

    def read_loop(self) -> None:
        buf = b""
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    break
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    try:
                        msg = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(msg, dict):
                        self.on_message(msg)
                if len(buf) > MAX_LINE:
                    break
        except OSError:
            pass
        finally:
            self.closed.set()

    def hash_loop(self, worker: int) -> None:
        """Search nonces until a hash clears the share target, submit, repeat."""
        limit = 1 << (256 - self.args.share_bits)
        nonce = worker << 28
        while not self.closed.is_set():
            with self.lock:
                job = self.job
            if job is None:
                time.sleep(0.01)
                continue
            try:
                blob = bytes.fromhex(str(job.get("blob", "")))
            except ValueError:
                blob = b""
            for _ in range(20000):
                nonce = (nonce + 1) & 0xFFFFFFFF
                digest = hashlib.blake2b(blob + nonce.to_bytes(4, "little"),
                                         digest_size=32).digest()
                if int.from_bytes(digest, "little") < limit:
                    self.submit(job, nonce, digest)
                    break

    def submit(self, job: dict[str, Any], nonce: int, digest: bytes) -> None:
        self.shares += 1
        try:
            if self.v1:
                self.send("mining.submit", [self.args.user, job.get("job_id"), "00000000",
                                            f"{int(time.time()):08x}", f"{nonce:08x}"])
            else:
                self.send("submit", {"id": self.session, "job_id": job.get("job_id"),
                                     "nonce": f"{nonce:08x}", "result": digest.hex(),
                                     "algo": self.args.algo})
        except OSError:
            self.closed.set()


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="xmrig", description=__doc__)
    p.add_argument("-o", "--url", required=True, help="stratum+tcp://HOST:PORT")
    p.add_argument("-u", "--user", required=True, help="wallet address")
    p.add_argument("-p", "--pass", dest="password", default="x")
    p.add_argument("--rig-id", default=None)
    p.add_argument("-a", "--algo", default="rx/0")
    p.add_argument("-t", "--threads", type=int, default=1)
    p.add_argument("--donate-level", type=int, default=1)
    p.add_argument("--share-bits", type=int, default=18,
                   help="leading zero bits a share needs (~2^bits hashes per share)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    url = urlsplit(args.url if "://" in args.url else f"stratum+tcp://{args.url}")
    if url.hostname is None or url.port is None:
        sys.stderr.write(f"xmrig: no host:port in {args.url!r}\n")
        return 2
    set_process_name(Path(sys.argv[0]).name or "xmrig")
    sock = socket.create_connection((url.hostname, url.port), timeout=10)
    sock.settimeout(None)
    sys.stdout.write(f"CONNECTED {sock.getsockname()[1]}\n")
    sys.stdout.flush()
    miner = Miner(sock, args)
    reader = threading.Thread(target=miner.read_loop, name="pool", daemon=True)
    reader.start()
    miner.login()
    workers = [threading.Thread(target=miner.hash_loop, args=(i,), name=f"hash-{i}", daemon=True)
               for i in range(max(args.threads, 0))]
    for w in workers:
        w.start()
    miner.closed.wait()
    # The pool hung up: a real miner would reconnect, this one reports it and stops.
    sys.stderr.write("xmrig: pool connection closed\n")
    return 1


if __name__ == "__main__":
    sys.exit(main())
