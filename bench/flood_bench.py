"""SYN-flood benchmark of the detection core: N distinct SYNs (default 1 M) through the
compiled core (`CoreEngine`, in batches of 4096 frames)
with a small flow-table cap, a Stratum session interleaved with the flood. Prints peak RSS
against the cap, evictions, and whether the mining flow still alerted.

    python bench/flood_bench.py [--syns 1000000] [--max-flows 20000] [--every 2000]
"""

from __future__ import annotations

import argparse
import resource
import struct
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from netdetect import _core  # noqa: E402
from netdetect.core_engine import CoreEngine  # noqa: E402
from netdetect.intel import load_intel  # noqa: E402

_ETH = bytes.fromhex("020000000002" "020000000001" "0800")
_IP = struct.Struct("!BBHHHBBH4s4s")
_TCP = struct.Struct("!HHIIBBHHH")


def syn(i: int) -> bytes:
    """SYN number `i`: a distinct source address and port per frame (no checksums needed)."""
    src = struct.pack("!I", 0x0A000000 | (i & 0xFFFFFF))  # 10.x.y.z
    ip = _IP.pack(0x45, 0, 40, i & 0xFFFF, 0x4000, 64, 6, 0, src, b"\xc6\x33\x64\x07")
    tcp = _TCP.pack(1024 + i % 60000, 443, i, 0, 0x50, 0x02, 64240, 0, 0)
    return _ETH + ip + tcp


def rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--syns", type=int, default=1_000_000)
    ap.add_argument("--max-flows", type=int, default=20_000)
    ap.add_argument("--every", type=int, default=2000,
                    help="SYNs between two frames of the interleaved mining session")
    ap.add_argument("--mining", type=Path, default=REPO / "pcaps" / "stratum_v1_cgminer.pcap")
    args = ap.parse_args()

    intel = load_intel(REPO / "signatures")
    mining = [frame for _ts, _lt, frame, _orig in _core.read_capture(str(args.mining))[0]]
    engine = CoreEngine(intel, max_flows=args.max_flows)
    batch: list[tuple[float, int, bytes]] = []

    def feed(ts: float, lt: int, frame: bytes) -> None:
        batch.append((ts, lt, frame))
        if len(batch) >= 4096:
            engine.feed_frames(batch)
            batch.clear()
    base_rss = rss_kib()
    t0 = 1_700_000_000.0
    m = 0
    started = time.perf_counter()
    start_at = args.syns // 4  # the session begins once the table is long full
    for i in range(args.syns):
        ts = t0 + i * 1e-5
        feed(ts, 1, syn(i))
        if i >= start_at and (i - start_at) % args.every == 0 and m < len(mining):
            feed(ts, 1, mining[m])
            m += 1
    for frame in mining[m:]:
        feed(t0 + args.syns * 1e-5, 1, frame)
    engine.feed_frames(batch)
    took = time.perf_counter() - started
    suspects = engine.take_suspects()
    c = engine.counters()
    peak = rss_kib()
    print(f"SYNs fed: {args.syns} in {took:.1f}s ({args.syns / took:.0f} frames/s)")
    print(f"flow table cap: {args.max_flows}; active at end: {c['flows_active']}; "
          f"created {c['flows_created']}, evicted {c['flows_evicted']}, "
          f"expired {c['flows_expired']}")
    print(f"peak RSS: {peak / 1024:.1f} MiB (after loading signatures: "
          f"{base_rss / 1024:.1f} MiB; growth {(peak - base_rss) / 1024:.1f} MiB, "
          f"{(peak - base_rss) * 1024 / args.max_flows:.0f} bytes per table slot)")
    print(f"mining session: {len(mining)} frames, {m} of them interleaved one per "
          f"{args.every} SYNs")
    hits = [s for s in suspects if s.dialect == "stratum-v1"]
    print(f"mining flow alerted during the flood: {'yes' if hits else 'NO'}"
          + (f" ({hits[0].miner.ip}:{hits[0].miner.port} -> {hits[0].pool.ip}:"
             f"{hits[0].pool.port}, score {hits[0].score})" if hits else ""))
    print(f"suspects in total: {len(suspects)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
