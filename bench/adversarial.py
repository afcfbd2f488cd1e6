"""Adversarial cost of the compiled core: hostile inputs against a baseline of the same
number of ordinary packets, in the same process (ratios, not seconds: the machine is noisy).

    python -m bench.adversarial [--scale 1.0]

Each case prints CPU seconds for the hostile input and for a baseline of as many plain
packets, their ratio, the core's accounted memory and evictions. A ratio near 1 means the
input costs what its packet count says (linear work); the budget bounds the memory.
"""

from __future__ import annotations

import argparse
import json
import resource
import struct
import time
from collections.abc import Callable, Iterator

from netdetect import _core

Frame = tuple[float, int, bytes]

_ETH = b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x08\x00"


def ipv4(src: int, dst: int, proto: int, l4: bytes) -> bytes:
    hdr = struct.pack("!BBHHHBBHII", 0x45, 0, 20 + len(l4), 0, 0, 64, proto, 0, src, dst)
    return _ETH + hdr + l4


def tcp(src: int, sport: int, dst: int, dport: int, seq: int, flags: int, data: bytes) -> bytes:
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, 0, 0x50, flags, 65535, 0, 0)
    return ipv4(src, dst, 6, hdr + data)


def udp(src: int, sport: int, dst: int, dport: int, data: bytes) -> bytes:
    return ipv4(src, dst, 17, struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data)


CLIENT = 0x0A000002
SERVER = 0x5DB8D822


def reversed_one_byte(n: int) -> Iterator[Frame]:
    """A JSON-RPC stream whose first 64 KiB arrive one byte per segment, last byte first."""
    yield (1.0, 1, tcp(CLIENT, 40000, SERVER, 3333, 1000, 0x02, b""))
    data = (b'{"id":1,"method":"login","params":{"login":"x"}}\n' * (n // 48 + 1))[:n]
    for i in range(n - 1, -1, -1):
        yield (1.0 + (n - i) * 1e-6, 1, tcp(CLIENT, 40000, SERVER, 3333, 1001 + i, 0x18,
                                             data[i : i + 1]))


def long_json_lines(n: int) -> Iterator[Frame]:
    """Flows each sending one 64 KiB JSON line in 1400-byte segments."""
    line = b'{"id":1,"method":"mining.subscribe","params":["' + b"A" * 65536 + b'"]}\n'
    per = len(line) // 1400 + 1
    for f in range(max(1, n // per)):
        sport = 20000 + f
        seq = 1000
        yield (2.0, 1, tcp(CLIENT, sport, SERVER, 3333, seq, 0x02, b""))
        for off in range(0, len(line), 1400):
            chunk = line[off : off + 1400]
            yield (2.0 + off * 1e-7, 1, tcp(CLIENT, sport, SERVER, 3333, seq + 1 + off, 0x18,
                                             chunk))


def nested_json(n: int) -> Iterator[Frame]:
    """Flows sending deeply nested JSON arrays (a parser-depth bomb) as stratum lines."""
    line = b"[" * 20000 + b"]" * 20000 + b"\n"
    per = len(line) // 1400 + 1
    for f in range(max(1, n // per)):
        sport = 30000 + f
        yield (3.0, 1, tcp(CLIENT, sport, SERVER, 3333, 0, 0x02, b""))
        for off in range(0, len(line), 1400):
            yield (3.0, 1, tcp(CLIENT, sport, SERVER, 3333, 1 + off, 0x18, line[off : off + 1400]))


def dns_pool_bomb(n: int, flows: int = 50_000) -> Iterator[Frame]:
    """A full flow table, then DNS answers each naming hundreds of pool questions."""
    for i in range(flows):
        yield (4.0, 1, tcp(CLIENT + i, 1024 + i % 60000, SERVER, 443, 7, 0x18, b"x"))
    q = b"".join(b"\x04pool\x0asupportxmr\x03com\x00\x00\x01\x00\x01" for _ in range(200))
    ans = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x0e\x10\x00\x04" + struct.pack("!I", SERVER)
    msg = struct.pack("!HHHHHH", 1, 0x8180, 200, 1, 0, 0) + q + ans
    for i in range(max(1, n - flows)):
        yield (5.0 + i * 1e-4, 1, udp(0x0A000001, 53, CLIENT, 5000 + i % 1000, msg))


def syn_flood(n: int) -> Iterator[Frame]:
    for i in range(n):
        yield (6.0 + i * 1e-6, 1, tcp(0x0B000000 + i, 1024 + i % 60000, SERVER, 443, i, 0x02, b""))


def half_open_tls(n: int) -> Iterator[Frame]:
    """ClientHello records cut after their first segment, never completed."""
    hello_start = b"\x16\x03\x01\x40\x00\x01\x00\x3f\xfc\x03\x03" + b"\x11" * 1389
    for i in range(n // 2):
        src = 0x0C000000 + i
        yield (7.0, 1, tcp(src, 40000, SERVER, 443, 0, 0x02, b""))
        yield (7.0, 1, tcp(src, 40000, SERVER, 443, 1, 0x18, hello_start))


def half_open_dns_tcp(n: int) -> Iterator[Frame]:
    """DNS over TCP: each flow announces a 64 KiB message and sends only its first segment."""
    start = b"\xff\xff" + b"\x12\x34\x81\x80" + b"\x00" * 1394
    for i in range(n // 2):
        src = 0x0D000000 + i
        yield (9.0, 1, tcp(src, 40000, SERVER, 53, 0, 0x02, b""))
        yield (9.0, 1, tcp(src, 40000, SERVER, 53, 1, 0x18, start))


def plain(n: int) -> Iterator[Frame]:
    """Baseline: established flows of ordinary small packets."""
    for i in range(n):
        yield (8.0, 1, tcp(CLIENT + i % 1000, 2000 + i % 1000, SERVER, 80, i * 10, 0x10,
                           b"0123456789"))


CASES: dict[str, Callable[[int], Iterator[Frame]]] = {
    "reversed-one-byte-segments": reversed_one_byte,
    "64KiB-json-lines": long_json_lines,
    "nested-json": nested_json,
    "dns-pool-questions-full-table": dns_pool_bomb,
    "syn-flood": syn_flood,
    "half-open-tls": half_open_tls,
    "half-open-dns-tcp": half_open_dns_tcp,
}


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def measure(frames: list[Frame], budget: int) -> tuple[float, dict[str, int]]:
    core = _core.Core(max_flows=100_000, memory_budget=budget)
    core.set_intel(["supportxmr.com"], [], [], [])
    t0 = _cpu()
    for i in range(0, len(frames), 4096):
        core.feed(frames[i : i + 4096])
    core.finish()
    return _cpu() - t0, core.counters()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--budget-mib", type=int, default=64)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    sizes = {
        "reversed-one-byte-segments": 65536,
        "64KiB-json-lines": 200_000,
        "nested-json": 100_000,
        "dns-pool-questions-full-table": 60_000,
        "syn-flood": 1_000_000,
        "half-open-tls": 200_000,
        "half-open-dns-tcp": 200_000,
    }
    budget = args.budget_mib << 20
    out = {}
    print(f"{'case':32} {'packets':>9} {'cpu s':>7} {'base s':>7} {'ratio':>6} "
          f"{'mem MiB':>8} {'evicted':>8}")
    for name, gen in CASES.items():
        n = max(1, int(sizes[name] * args.scale))
        frames = list(gen(n))
        base = list(plain(len(frames)))
        t_case, c = measure(frames, budget)
        t_base, _ = measure(base, budget)
        ratio = t_case / t_base if t_base else float("inf")
        evicted = c["flows_evicted"] + c["flows_budget_evicted"]
        peak = c["memory_peak_bytes"] / 2**20
        print(f"{name:32} {len(frames):9,} {t_case:7.2f} {t_base:7.2f} {ratio:6.2f} "
              f"{peak:8.1f} {evicted:8,}")
        out[name] = {"packets": len(frames), "cpu": t_case, "baseline_cpu": t_base,
                     "ratio": ratio, "evicted": evicted, "counters": c}
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the whole run (frames held in memory included): {rss:.0f} MiB")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:  # noqa: PTH123
            json.dump(out, fh, indent=1)
    time.sleep(0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
