"""Per-packet cost of replay in one process: bare reads vs per-frame feed vs batch vs prefilter."""

from __future__ import annotations

import argparse
import mmap
import resource
import shutil
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from netdetect.capture import prefilter as pre  # noqa: E402
from netdetect.capture.files import FrameReader  # noqa: E402
from netdetect.cli import default_signatures  # noqa: E402
from netdetect.engine import Engine  # noqa: E402
from netdetect.intel import Intel, load_intel  # noqa: E402
from netdetect.service import PrefilterOptions, replay  # noqa: E402


def cpu_now() -> float:
    # CPU time, not wall: the numbers stay comparable on a shared, loaded machine.
    return time.process_time()


def records_only(path: str) -> tuple[int, int]:
    """Record headers of a classic pcap walked with struct over an mmap: the Python floor."""
    n = 0
    with Path(path).open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        magic = mm[:4]
        order = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
        unpack = struct.Struct(order + "8xI4x").unpack_from
        off, end = 24, len(mm)
        while off + 16 <= end:
            off += 16 + unpack(mm, off)[0]
            n += 1
    return n, 0


def reader_only(path: str) -> tuple[int, int]:
    """Every frame materialised by FrameReader, nothing else."""
    n = 0
    for _ in FrameReader(path):
        n += 1
    return n, 0


def per_frame(intel: Intel) -> Callable[[str], tuple[int, int]]:
    """The per-frame API: Engine.feed for every frame (the replay loop before feed_frames)."""

    def run(path: str) -> tuple[int, int]:
        engine = Engine(intel)
        feed = engine.feed
        n = 0
        for ts, linktype, frame in FrameReader(path):
            feed(ts, linktype, frame)
            n += 1
        engine.finish()
        return n, engine.detector.alerts

    return run


def batch(intel: Intel) -> Callable[[str], tuple[int, int]]:
    """service.replay as `netdetect replay` runs it (Engine.feed_frames in batches)."""

    def run(path: str) -> tuple[int, int]:
        result = replay([path], intel=intel, sinks=[])
        return result.frames, len(result.alerts)

    return run


def prefiltered(intel: Intel, head: int) -> Callable[[str], tuple[int, int]]:
    def run(path: str) -> tuple[int, int]:
        opts = PrefilterOptions(head_packets=head)
        result = replay([path], intel=intel, sinks=[], prefilter=opts)
        c = result.counters
        return c["prefilter_heads"] + c["prefilter_dropped"] + c["prefilter_passed"], len(
            result.alerts
        )

    return run


def measure(
    name: str, func: Callable[[str], tuple[int, int]], path: str, runs: int
) -> tuple[float, int, int]:
    times: list[float] = []
    n = alerts = 0
    for _ in range(runs):
        t0 = cpu_now()
        n, alerts = func(path)
        times.append(cpu_now() - t0)
    cpu = statistics.median(times)
    print(
        f"  {name:<22} {n / cpu:>11,.0f} pkt/s cpu  {cpu:7.3f} s  alerts {alerts}", flush=True
    )
    return cpu, n, alerts


def ndpi(path: str, runs: int) -> float | None:
    exe = shutil.which("ndpiReader")
    if exe is None:
        print("  ndpiReader             not installed (Debian: libndpi-bin)")
        return None
    times: list[float] = []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(
            [exe, "-i", path, "-q"], check=True, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        times.append(
            after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        )
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("capture", nargs="?", default="/tmp/span100k.pcap")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--head", type=int, action="append", help="prefilter head packets (repeat)")
    ap.add_argument("--skip-per-frame", action="store_true", help="skip the slow per-frame run")
    ap.add_argument("--skip-ndpi", action="store_true")
    args = ap.parse_args(argv)
    path: str = args.capture
    if not Path(path).is_file():
        print(f"error: {path} does not exist (bench/make_span.py makes one)", file=sys.stderr)
        return 1
    t0 = cpu_now()
    intel = load_intel(default_signatures())
    size_mb = Path(path).stat().st_size / 1e6
    print(f"{path}: {size_mb:.0f} MB; intel load {cpu_now() - t0:.2f} s cpu")
    print("in-process, median CPU time of", args.runs, "runs (startup excluded)")
    floor, packets, _ = measure("records (mmap+struct)", records_only, path, args.runs)
    read, _, _ = measure("FrameReader only", reader_only, path, args.runs)
    old = None
    if not args.skip_per_frame:
        old, _, _ = measure("per-frame Engine.feed", per_frame(intel), path, args.runs)
    new, _, alerts = measure("replay (feed_frames)", batch(intel), path, args.runs)
    heads: list[int] = args.head or [pre.HEAD_PACKETS]
    pf: dict[int, float] = {}
    if pre.available():
        for h in heads:
            pf[h], _, pf_alerts = measure(f"replay --prefilter h={h}", prefiltered(intel, h),
                                          path, args.runs)
            if pf_alerts != alerts:
                print(f"    note: prefilter h={h} raised {pf_alerts} alerts, full replay {alerts}")
    else:
        print("  prefilter              pcapy-ng not installed (pip install 'netdetect[live]')")
    nd = None if args.skip_ndpi else ndpi(path, args.runs)
    if nd is not None:
        print(f"  {'ndpiReader -q (child)':<22} {packets / nd:>11,.0f} pkt/s cpu  {nd:7.3f} s")
    print("ratios (packets/s, CPU)")
    print(f"  replay / FrameReader only       {read / new:6.3f}")
    print(f"  replay / records floor          {floor / new:6.3f}")
    if old is not None:
        print(f"  replay / per-frame feed         {old / new:6.3f}x faster")
    for h, cpu in pf.items():
        print(f"  prefilter h={h} / replay          {new / cpu:6.3f}x faster")
    if nd is not None:
        print(f"  replay / ndpiReader             {nd / new:6.3f}  (target >= 2)")
        for h, cpu in pf.items():
            print(f"  prefilter h={h} / ndpiReader     {nd / cpu:6.3f}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process {rss:.0f} MB (counts the mmap-ed capture of the floor loop)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
