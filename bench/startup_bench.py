"""Start-up cost of `netdetect replay`: this tree against a baseline tree, interleaved.

Each round runs `python -m netdetect replay CAPTURE --eve FILE -q` once from each tree, so a
machine that slows down or speeds up does so for both alike; the medians of CPU time
(user + system of the child, from wait4) and wall time are reported with their ratio. On a
tiny capture the run is mostly start-up: imports, loading the signatures, opening the sink.
A last run of each tree with `-X importtime` lists the modules one tree imports and the
other does not.

    python -m bench.startup_bench --baseline DIR [--rounds 20] [--capture PCAP]
                                  [--signatures DIR]

DIR is another checkout with its compiled extension in place, e.g.
`git archive main | tar -x -C /tmp/base` plus the extension main was built with. Byte code
is written and read as an installed package's would be (PYTHONDONTWRITEBYTECODE is dropped
from the children's environment), after one warm-up run of each tree.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_once(tree: Path, capture: Path, eve: Path, *extra: str,
             replay_args: tuple[str, ...] = ()) -> tuple[float, float, str]:
    """(CPU s, wall s, stderr) of one replay run from `tree`."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(tree)
    eve.unlink(missing_ok=True)
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, *extra, "-m", "netdetect", "replay", str(capture), "--eve", str(eve),
             "-q", *replay_args],
            cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        err.seek(0)
        text = err.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"replay from {tree} failed:\n{text}")
    return usage.ru_utime + usage.ru_stime, wall, text


def imports(report: str) -> dict[str, int]:
    """module -> its own import time in µs, from a -X importtime report."""
    out = {}
    for line in report.splitlines():
        if line.startswith("import time:") and "|" in line:
            self_us, _, name = line[len("import time:"):].split("|")
            if self_us.strip().isdigit():
                out[name.strip()] = int(self_us)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--baseline", type=Path, required=True, help="the tree to compare with")
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--capture", type=Path, default=REPO / "pcaps" / "dns_pool_udp.pcap")
    p.add_argument("--signatures", type=Path, default=None,
                   help="signature directory for both trees (default: each tree's own)")
    args = p.parse_args(argv)
    replay_args = ("--signatures", str(args.signatures.resolve())) if args.signatures else ()
    trees = {"baseline": args.baseline.resolve(), "this tree": REPO}
    capture = args.capture.resolve()
    cpu: dict[str, list[float]] = {name: [] for name in trees}
    wall: dict[str, list[float]] = {name: [] for name in trees}
    with tempfile.TemporaryDirectory(prefix="startup-bench-") as tmp:
        eve = Path(tmp) / "eve.json"
        for tree in trees.values():
            run_once(tree, capture, eve, replay_args=replay_args)  # warm-up: byte code written
        for i in range(args.rounds):
            for name, tree in trees.items():
                c, w = run_once(tree, capture, eve, replay_args=replay_args)[:2]
                cpu[name].append(c)
                wall[name].append(w)
            print(f"  round {i + 1}/{args.rounds}: "
                  + ", ".join(f"{n} cpu {cpu[n][-1]:.3f} s" for n in trees), flush=True)
        seen = {name: imports(run_once(tree, capture, eve, "-X", "importtime",
                                       replay_args=replay_args)[2])
                for name, tree in trees.items()}
    print(f"\nreplay of {capture.name}, {args.rounds} interleaved rounds (medians):")
    for name in trees:
        print(f"  {name:10} cpu {statistics.median(cpu[name]):.3f} s   "
              f"wall {statistics.median(wall[name]):.3f} s   "
              f"(cpu min {min(cpu[name]):.3f}, max {max(cpu[name]):.3f})")
    base, this = (statistics.median(cpu[n]) for n in trees)
    print(f"  this tree / baseline, cpu: {this / base:.2f} ({(this - base) * 1e3:+.0f} ms)")
    for a, b in (("baseline", "this tree"), ("this tree", "baseline")):
        only = sorted(set(seen[a]) - set(seen[b]))
        tops = sorted(only, key=lambda m: -seen[a][m])[:12]
        print(f"\nmodules only {a} imports: {len(only)}, "
              f"{sum(seen[a][m] for m in only) / 1e3:.1f} ms of own import time; the largest:")
        for m in tops:
            print(f"  {seen[a][m] / 1e3:6.2f} ms  {m}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
