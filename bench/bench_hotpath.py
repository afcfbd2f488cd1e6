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
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from netdetect.capture.files import FrameReader  # noqa: E402
from netdetect.decoders.dns import decode_dns  # noqa: E402
from netdetect.decoders.tls import parse_client_hello  # noqa: E402
from netdetect.engine import Engine  # noqa: E402
from netdetect.packet import PacketDecoder  # noqa: E402
from netdetect.pdns import PassiveDns  # noqa: E402

from netdetect.capture import prefilter as pre  # noqa: E402
from netdetect.cli import default_signatures  # noqa: E402
from netdetect.errors import DecodeError  # noqa: E402
from netdetect.intel import Intel, load_intel  # noqa: E402
from netdetect.model import TCP, UDP  # noqa: E402
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


Frames = list[tuple[float, int, bytes]]


def engine_only(intel: Intel, frames: Frames) -> Callable[[str], tuple[int, int]]:
    """Engine.feed_frames over frames already in memory: the detector without the reader."""

    def run(_path: str) -> tuple[int, int]:
        engine = Engine(intel)
        for i in range(0, len(frames), 4096):
            engine.feed_frames(frames[i : i + 4096])
            engine.take_suspects()
        engine.finish()
        return len(frames), engine.detector.alerts

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


def startup(runs: int) -> float:
    """Median child CPU of `netdetect replay -q` on an empty capture: imports + signatures."""
    times: list[float] = []
    with tempfile.TemporaryDirectory(prefix="netdetect-bench-") as tmp:
        empty = Path(tmp) / "empty.pcap"
        empty.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        argv = [sys.executable, "-m", "netdetect.cli", "replay", "-q", str(empty)]
        for _ in range(runs):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            subprocess.run(argv, check=True, cwd=REPO, stdin=subprocess.DEVNULL)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            times.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(times)


def per_message(frames: Frames, runs: int) -> None:
    """CPU per DNS response (decode + passive DNS) and per ClientHello, on the capture's own."""
    decoder = PacketDecoder()
    answers: list[bytes] = []
    hellos: list[bytes] = []
    for ts, linktype, frame in frames:
        pkt = decoder.decode(ts, linktype, frame)
        if pkt is None or not pkt.payload:
            continue
        data = bytes(pkt.payload)
        if pkt.proto == UDP and 53 in (pkt.sport, pkt.dport) and len(data) > 12 and data[2] & 0x80:
            answers.append(data)
        elif pkt.proto == TCP and data[:2] == b"\x16\x03" and len(data) > 9 and data[5] == 1:
            size = int.from_bytes(data[6:9], "big") + 4
            if len(data) >= 5 + size:
                hellos.append(data[5 : 5 + size])

    def dns_run() -> int:
        pdns = PassiveDns()
        records = 0
        for raw in answers:
            try:
                msg = decode_dns(raw, addresses_only=True)
            except DecodeError:
                continue
            records += len(msg.answers)
            pdns.learn(msg, 0.0)
        return records

    def tls_run() -> int:
        for raw in hellos:
            try:
                parse_client_hello(raw)
            except DecodeError:
                continue
        return len(hellos)

    for name, func, count in (("DNS response", dns_run, len(answers)),
                              ("ClientHello", tls_run, len(hellos))):
        if not count:
            print(f"  {name:<22} none in this capture")
            continue
        times = []
        for _ in range(runs):
            t0 = cpu_now()
            func()
            times.append(cpu_now() - t0)
        cpu = statistics.median(times)
        print(f"  {name:<22} {cpu / count * 1e6:8.1f} us cpu each  ({count} of them)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("capture", nargs="?", default="/tmp/span100k.pcap")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--head", type=int, action="append", help="prefilter head packets (repeat)")
    ap.add_argument("--skip-per-frame", action="store_true", help="skip the slow per-frame run")
    ap.add_argument("--skip-ndpi", action="store_true")
    ap.add_argument("--engine-only", action="store_true",
                    help="also time Engine.feed_frames on frames held in memory (needs RAM "
                    "for the whole capture), with per-message DNS / TLS costs")
    ap.add_argument("--startup", action="store_true",
                    help="also time `netdetect replay -q` on an empty capture (child CPU)")
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
    if args.engine_only:
        frames = list(FrameReader(path))
        measure("engine only (in memory)", engine_only(intel, frames), path, args.runs)
        per_message(frames, args.runs)
        del frames
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
    if args.startup:
        print(f"  startup (replay -q of an empty capture, child) {startup(args.runs):.3f} s cpu")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process {rss:.0f} MB (counts the mmap-ed capture of the floor loop)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
