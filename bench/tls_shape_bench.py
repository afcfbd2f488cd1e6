"""Time to alert for TLS stratum without a name: real XMRig sessions in the lab, TLS to the
pool by address on 443 (no SNI, no ALPN, no DNS on the mirror), replayed through netdetect.

    sudo .venv/bin/python -m bench.tls_shape_bench --xmrig /path/to/xmrig --sessions 8 \
        [--seconds 35] [--job-interval 5] [--out DIR]

Builds the lab (deploy/lab), starts the lab pool with TLS on 443, captures the mirror port
while XMRig runs `--sessions` times for `--seconds` each, then replays the capture and prints
the seconds from each session's first packet to its alert (and which sessions did not alert
within the run), plus min / median / max. The miner binary is the caller's; nothing leaves
the lab. Not a test: the numbers depend on the pool's job interval and the miner's share
rate, so both are printed with them (bench/TLS_SHAPE.md keeps the measured runs).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

from netdetect.intel import load_intel
from netdetect.service import replay

REPO = Path(__file__).resolve().parents[1]
LAB_DIR = REPO / "deploy" / "lab"


def _lab_module(name: str) -> ModuleType:
    """deploy/lab's scripts are not a package: load them by path (record imports lab)."""
    sys.path.insert(0, str(LAB_DIR))
    spec = importlib.util.spec_from_file_location(name, LAB_DIR / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


lab = _lab_module("lab")
record = _lab_module("record")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--xmrig", required=True)
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=35.0)
    ap.add_argument("--job-interval", type=float, default=5.0)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--prefix", default="ndbench")
    args = ap.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="tls-shape-"))
    out.mkdir(parents=True, exist_ok=True)
    state = Path(f"/run/netdetect-lab/{args.prefix}")
    pcap = out / "sessions.pcap"
    lab.down(args.prefix, state)
    lab.up(args.prefix, state, services=False)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        crt, key = lab.make_cert(state, lab.POOL_NAME)
        procs.append(record.start(args.prefix, "pool", [
            sys.executable, str(REPO / "deploy" / "lab" / "pool.py"), "--bind", lab.POOL_IP,
            "--port", "3333", "--tls-port", "443", "--cert", str(crt), "--key", str(key),
            "--job-interval", str(args.job_interval), "--algo", "cn-pico", "--target",
            record.EASY_TARGET], state / "pool.log"))
        lab.wait_listening(args.prefix, [(lab.POOL_IP, 443)], state)
        dump = record.start(args.prefix, "sensor", ["tcpdump", "-i", lab.SPAN_IF, "-U", "-s",
                                                    "0", "-w", str(pcap), "tcp"],
                            state / "tcpdump.log")
        time.sleep(1.0)
        for _ in range(args.sessions):
            miner = record.start(args.prefix, "victim", record.xmrig(
                args.xmrig, "-o", f"{lab.POOL_IP}:443", "--tls", "-u", record.WALLET,
                "-p", "bench"), out / "xmrig.log")
            time.sleep(args.seconds)
            record.stop(miner)
            time.sleep(1.0)
        record.stop(dump)
    finally:
        for p in procs:
            record.stop(p)
        lab.down(args.prefix, state)
    result = replay([str(pcap)], intel=load_intel(REPO / "signatures"), sinks=[])
    delays = sorted(a.suspect.ts - a.suspect.first_ts for a in result.alerts
                    if a.suspect.pool.port == 443)
    print(f"pool job interval {args.job_interval:g} s, share target {record.EASY_TARGET}, "
          f"{args.sessions} XMRig sessions of {args.seconds:g} s, capture {pcap}")
    print("seconds from first packet to alert: " + ", ".join(f"{d:.1f}" for d in delays))
    missed = args.sessions - len(delays)
    if delays:
        print(f"alerted {len(delays)}/{args.sessions}; min {delays[0]:.1f} s, median "
              f"{statistics.median(delays):.1f} s, max {delays[-1]:.1f} s; "
              f"within 30 s: {sum(d <= 30 for d in delays)}/{args.sessions}")
    if missed:
        print(f"{missed} session(s) did not alert within {args.seconds:g} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
