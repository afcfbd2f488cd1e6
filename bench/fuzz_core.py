"""A mutation fuzz campaign against the compiled core, through its Python bindings.

    python -m bench.fuzz_core [--inputs 1000000] [--files 2000] [--seed 1]

Frames: every frame of the project's own captures (pcaps/) is mutated (bit flips, byte
overwrites with boundary values, truncation, insertion, splicing two frames) and fed to the
engine, so every sniffer below it (TLS, HTTP, DNS, DHCP, SV2, reassembly) sees hostile
bytes in the position it parses. Files: whole captures are mutated and read by the capture
reader (pcap, pcapng, gzip). Reports inputs per target, panics caught at the boundary (they
never cross into Python: `core_panics`), and the slowest batch per frame. Exits 1 when any
panic was seen.
"""

from __future__ import annotations

import argparse
import random
import resource
import tempfile
import time
from pathlib import Path

from netdetect import _core

REPO = Path(__file__).resolve().parents[1]
BOUNDARY = (0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF)


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def seed_frames() -> list[tuple[float, int, bytes]]:
    out: list[tuple[float, int, bytes]] = []
    for p in sorted((REPO / "pcaps").glob("*.pcap*")):
        out.extend((ts, lt, f) for ts, lt, f, _orig in _core.read_capture(str(p))[0])
    return out


def mutate(rng: random.Random, data: bytes, other: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(6)
        if not b:
            b.extend(other[:64])
            continue
        i = rng.randrange(len(b))
        if op == 0:
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            b[i] = rng.choice(BOUNDARY)
        elif op == 2:
            del b[rng.randrange(len(b)) :]
        elif op == 3:
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif op == 4:
            j = rng.randrange(len(other) + 1)
            b[i:] = other[j:]
        else:
            # A length field somewhere becomes huge or zero.
            b[i : i + 2] = rng.choice((b"\xff\xff", b"\x00\x00", b"\x7f\xff"))
    return bytes(b)


def fuzz_frames(n: int, rng: random.Random) -> tuple[int, int, float, str | None]:
    seeds = seed_frames()
    core = _core.Core(max_flows=20_000, memory_budget=32 << 20)
    core.set_intel(["supportxmr.com", "nanopool.org", "coinhive.com"], [], [], [r"xmrig/"])
    done = 0
    slowest = 0.0
    batch = 2048
    while done < n:
        frames = []
        for _ in range(min(batch, n - done)):
            ts, lt, f = rng.choice(seeds)
            _ts2, _lt2, g = rng.choice(seeds)
            frames.append((ts + rng.random(), lt, mutate(rng, f, g)))
        t0 = _cpu()
        core.feed(frames)
        per = (_cpu() - t0) / len(frames)
        slowest = max(slowest, per)
        done += len(frames)
        if done % (batch * 64) == 0:
            core.finish()  # drain, so end-of-flow paths are fuzzed too
    core.finish()
    return done, core.counters()["core_panics"], slowest, _core.last_panic()


def fuzz_files(n: int, rng: random.Random) -> tuple[int, int, int]:
    files = [p.read_bytes() for p in sorted((REPO / "pcaps").glob("*.pcap*"))]
    errors = panics = 0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.cap"
        for _ in range(n):
            data = rng.choice(files)
            path.write_bytes(mutate(rng, data, rng.choice(files)))
            try:
                src = _core.Capture(str(path))
            except OSError:
                errors += 1
                continue
            core = _core.Core()
            try:
                while core.run(src, 4096)[0]:
                    pass
            except BaseException:  # a PanicException would be a bug: count it
                panics += 1
            if src.error() is not None:
                errors += 1
    return n, errors, panics


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--inputs", type=int, default=1_000_000)
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    t0 = time.monotonic()
    n, panics, slowest, last = fuzz_frames(args.inputs, rng)
    print(f"frames: {n:,} mutated inputs through the engine, panics {panics}, "
          f"slowest batch {slowest * 1e6:.1f} us/frame")
    if last:
        print(f"  last panic: {last}")
    nf, errs, fpanics = fuzz_files(args.files, rng)
    print(f"files: {nf:,} mutated captures through the reader, {errs:,} reported damage, "
          f"panics {fpanics}")
    print(f"elapsed {time.monotonic() - t0:.0f} s")
    return 1 if panics or fpanics else 0


if __name__ == "__main__":
    raise SystemExit(main())
