"""The compiled core alone on a capture: reading, L2-L4, flows, reassembly and sniffers,
with no judgement in Python and no output. Best CPU time of N runs in this process.

    python -m bench.core_only --capture /tmp/span.pcap [--runs 3]
"""

from __future__ import annotations

import argparse
import resource

from netdetect import _core
from netdetect.intel import load_intel


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--capture", required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--signatures", default="signatures")
    args = ap.parse_args(argv)
    intel = load_intel(args.signatures)
    best = float("inf")
    frames = events = 0
    for _ in range(args.runs):
        core = _core.Core()
        core.set_intel(*intel.prefilter())
        src = _core.Capture(args.capture)
        t0 = _cpu()
        frames = events = 0
        while True:
            n, evs = core.run(src)
            if not n:
                break
            frames += n
            events += len(evs)
        best = min(best, _cpu() - t0)
    print(f"core alone: {frames:,} frames, {events:,} events to Python, best CPU "
          f"{best:.3f} s of {args.runs} ({frames / best:,.0f} frames/s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
