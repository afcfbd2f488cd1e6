"""Live capture benchmark: tcpreplay --topspeed of a SPAN-like capture into the lab's mirror
port, `netdetect sniff` with 1 and 2 workers on the sensor side, each without a kernel filter
and with `--bpf default` (and libpcap via pcapy-ng for comparison when it is installed).
Prints what was offered, received, dropped and alerted, and for the filtered runs how many
frames the kernel filter passed and which alerts it cost against the unfiltered run.

    sudo python bench/live_bench.py [--packets 200000] [--capture FILE] [--loops 1]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
LAB = REPO / "deploy" / "lab" / "lab.py"


def ns_run(ns: str, *cmd: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True,
                          timeout=timeout, check=False)


def replay(ns: str, iface: str, capture: Path, loops: int) -> tuple[int, float, float]:
    """(packets sent, seconds, packets/s) as tcpreplay reports them."""
    res = ns_run(ns, "tcpreplay", "--topspeed", "-i", iface, f"--loop={loops}", str(capture))
    sent = re.search(r"Successful packets:\s+(\d+)", res.stdout)
    took = re.search(r"Actual: \d+ packets \(\d+ bytes\) sent in ([\d.]+) seconds", res.stdout)
    if not sent or not took:
        raise RuntimeError(res.stdout + res.stderr)
    n, secs = int(sent.group(1)), float(took.group(1))
    return n, secs, n / secs if secs else 0.0


def wait_for(path: Path, pattern: str, timeout: float, proc: subprocess.Popen[bytes]) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if re.search(pattern, path.read_text(errors="replace")):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"no {pattern!r} in {path}:\n{path.read_text(errors='replace')}")


def alerted_flows(eve: Path) -> dict[tuple[str, ...], tuple[int, str | None]]:
    """The flows an EVE file alerted on, as (proto, endpoint, endpoint) with the endpoints
    sorted, so the same flow matches whichever side was taken for the miner; each with the
    alert's score and pool name."""
    flows: dict[tuple[str, ...], tuple[int, str | None]] = {}
    if not eve.exists():
        return flows
    for line in eve.read_text().splitlines():
        if line.strip():
            ev = json.loads(line)
            if ev.get("event_type") != "alert":
                continue
            ends = sorted((f"{ev['src_ip']}:{ev['src_port']}",
                           f"{ev['dest_ip']}:{ev['dest_port']}"))
            nd = ev["netdetect"]
            flows[(str(ev.get("proto")), *ends)] = (int(nd["score"]),
                                                    (nd.get("pool") or {}).get("host"))
    return flows


def replay_alerts(capture: Path, work: Path, home_net: str) -> dict[tuple[str, ...],
                                                                   tuple[int, str | None]]:
    """`netdetect replay` of the capture: what every live run should alert on."""
    eve = work / "replay.eve"
    subprocess.run([sys.executable, "-m", "netdetect.cli", "replay", "-q", "--home-net",
                    home_net, "--eve", str(eve), str(capture)], check=True, cwd=REPO,
                   env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True)
    return alerted_flows(eve)


def run_sniff(ns: str, sw: str, iface: str, workers: int, capture: Path, loops: int,
              work: Path, home_net: str, bpf: str | None = None) -> dict[str, Any]:
    tag = f"{workers}-bpf" if bpf else str(workers)
    log, eve = work / f"sniff{tag}.log", work / f"sniff{tag}.eve"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with log.open("wb") as err:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-m", "netdetect.cli", "sniff", "-i",
             iface, "--workers", str(workers), "--eve", str(eve), "-q", "--home-net", home_net,
             "--stats-interval", "3600", *(["--bpf", bpf] if bpf else [])], stderr=err,
            stdout=subprocess.DEVNULL, env=env, cwd=REPO)
    try:
        wait_for(log, r"all \d+ worker\(s\) capturing", 60, proc)
        start = time.monotonic()
        sent, secs, pps = replay(sw, "span", capture, loops)
        # Let the workers drain what the rings hold; their counters stop moving when done.
        last = ""
        while True:
            time.sleep(1.0)
            cur = " ".join(re.findall(r"stats: packets=\d+", log.read_text()))
            if cur == last:
                break
            last = cur
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(120)
        elapsed = time.monotonic() - start
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
    text = log.read_text()
    workers_final = [dict(kv.split("=") for kv in m.group(1).split())
                     for m in re.finditer(r"worker \d+ final: (.*)", text)]

    def total(key: str) -> int:
        return sum(int(w.get(key, 0)) for w in workers_final)

    # Alert lines only: the EVE file also holds each alerted flow's final `flow` record.
    alerts = sum(1 for line in eve.read_text().splitlines()
                 if line and json.loads(line).get("event_type") == "alert") if eve.exists() else 0
    # With a filter attached, the kernel counts (tp_packets) only the frames the filter
    # passed: "kernel saw" is then the filter's pass count, drops included.
    return {"workers": workers, "bpf": bpf or "none", "offered": sent, "replay_s": secs,
            "replay_pps": pps, "kernel_seen": total("kernel_packets"),
            "kernel_dropped": total("kernel_drops"), "processed": total("packets"),
            "dns_dropped": total("kernel_dns_drops"), "dns_forced": total("dns_side_forced"),
            "alerts": alerts, "alert_flows": alerted_flows(eve), "elapsed_s": elapsed,
            "per_worker": [int(w.get("packets", 0)) for w in workers_final]}


PCAPY_CAPTURE = r"""
import sys, time, pcapy
sys.path.insert(0, sys.argv[4])
from netdetect.core_engine import CoreEngine as Engine
from netdetect.intel import load_intel
intel = load_intel(sys.argv[4] + "/signatures")
eng = Engine(intel, home_net=sys.argv[3].split(","))
cap = pcapy.create(sys.argv[1])
cap.set_snaplen(65535)
cap.set_promisc(1)
cap.set_timeout(100)
cap.set_buffer_size(64 << 20)  # the same 64 MiB the ring sensor uses per worker
cap.activate()
# Non-blocking: a blocking read on an idle TPACKET_V3 handle may never return.
cap.setnonblock(True)
n = 0
last = time.monotonic()
end = last + float(sys.argv[2])
def on_packet(hdr, data):
    global n
    sec, usec = hdr.getts()
    eng.feed(sec + usec * 1e-6, 1, data)
    n += 1
print("ready", flush=True)
while time.monotonic() < end:
    got = cap.dispatch(-1, on_packet)
    now = time.monotonic()
    if got > 0:
        last = now
    elif n and now - last > 2:
        break
    else:
        time.sleep(0.001)
eng.finish()
recv, drop, ifdrop = cap.stats()
print(f"processed={n} kernel_recv={recv} kernel_drop={drop} alerts={eng.counters()['alerts']}",
      flush=True)
"""


def run_pcapy(ns: str, sw: str, iface: str, capture: Path, loops: int,
              home_net: str) -> dict[str, Any]:
    proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", PCAPY_CAPTURE,
                             iface, "600", home_net, str(REPO)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        raise RuntimeError(proc.stderr.read() if proc.stderr else "pcapy capture failed")
    time.sleep(0.5)
    sent, secs, pps = replay(sw, "span", capture, loops)
    out, err = proc.communicate(timeout=900)
    m = re.search(r"processed=(\d+) kernel_recv=(\d+) kernel_drop=(\d+) alerts=(\d+)", out)
    if not m:
        raise RuntimeError(out + err)
    return {"workers": "pcapy", "bpf": "none", "offered": sent, "replay_s": secs,
            "replay_pps": pps,
            "processed": int(m.group(1)), "kernel_seen": int(m.group(2)),
            "kernel_dropped": int(m.group(3)), "alerts": int(m.group(4))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--packets", type=int, default=200_000)
    ap.add_argument("--capture", type=Path, help="use this capture instead of make_span.py")
    ap.add_argument("--loops", type=int, default=1)
    ap.add_argument("--prefix", default=f"ndb{os.getpid() % 100000}")
    ap.add_argument("--no-pcapy", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("live_bench needs root (network namespaces)")
    with tempfile.TemporaryDirectory(prefix="nd-live-bench-") as tmp:
        work = Path(tmp)
        capture = args.capture
        if capture is None:
            capture = work / "span.pcap"
            subprocess.run([sys.executable, str(REPO / "bench" / "make_span.py"), "--packets",
                            str(args.packets), "--out", str(capture)], check=True,
                           capture_output=True)
        state = work / "lab"
        up = subprocess.run([sys.executable, str(LAB), "up", "--no-services", "--prefix",
                             args.prefix, "--state", str(state)], capture_output=True,
                            text=True, check=False)
        if up.returncode != 0:
            sys.exit(up.stderr)
        lab = json.loads((state / "lab.json").read_text())
        # The capture's internal hosts (RFC 1918, ULA) are the home network, as in replay.
        home = "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10,fd00::/8"
        runs: dict[tuple[int, str], dict[str, Any]] = {}
        offline = replay_alerts(capture, work, home)
        print(f"netdetect replay: {len(offline)} alerts")
        sensor, sw = lab["namespaces"]["sensor"], lab["namespaces"]["sw"]
        try:
            # Frames enter at the switch end of the mirror port, exactly where tc mirred
            # puts its copies, and arrive on the sensor's span0. Same capture, same
            # --topspeed replay, with no filter and then with the default kernel prefilter.
            for bpf in (None, "default"):
                for workers in (1, 2):
                    r = run_sniff(sensor, sw, lab["span"], workers, capture, args.loops, work,
                                  home, bpf)
                    runs[workers, r["bpf"]] = r
                    _print(r)
                    _print_vs_replay(r, offline)
                    if bpf:
                        _print_filter(r, runs[workers, "none"])
            if not args.no_pcapy:
                try:
                    import pcapy  # noqa: F401
                except ImportError:
                    print("pcapy-ng not installed: libpcap comparison skipped")
                else:
                    _print(run_pcapy(sensor, sw, lab["span"], capture, args.loops, home))
        finally:
            subprocess.run([sys.executable, str(LAB), "down", "--prefix", args.prefix,
                            "--state", str(state)], capture_output=True, check=False)
        for label in ("none", "default"):
            one, two = runs[1, label], runs[2, label]
            if one["processed"]:
                print(f"fanout scaling bpf={label} (processed, 2 workers / 1 worker): "
                      f"{two['processed'] / one['processed']:.2f}x on {os.cpu_count()} CPUs "
                      "(tcpreplay shares them)")
    return 0


def _print_filter(r: dict[str, Any], base: dict[str, Any]) -> None:
    """The kernel filter's pass rate, and its alerts against the unfiltered run."""
    share = 100 * r["kernel_seen"] / r["offered"] if r["offered"] else 0.0
    lost = base["alert_flows"].keys() - r["alert_flows"].keys()
    gained = r["alert_flows"].keys() - base["alert_flows"].keys()
    print(f"  bpf={r['bpf']} workers={r['workers']}: kernel filter passed {r['kernel_seen']} "
          f"of {r['offered']} offered frames ({share:.1f}%); alerts {r['alerts']} vs "
          f"{base['alerts']} without filter ({r['alerts'] - base['alerts']:+d}); alerted "
          f"flows lost {len(lost)}, gained {len(gained)}")
    for flow in sorted(lost):
        print(f"    lost: {' '.join(flow)}")


def _print_vs_replay(r: dict[str, Any],
                     offline: dict[tuple[str, ...], tuple[int, str | None]]) -> None:
    """Alerts the live run lost, gained or raised differently (score, pool name) against an
    offline replay of the same capture."""
    live = r["alert_flows"]
    lost = sorted(offline.keys() - live.keys())
    gained = sorted(live.keys() - offline.keys())
    changed = sorted(f for f in offline.keys() & live.keys() if offline[f] != live[f])
    print(f"  vs netdetect replay: lost {len(lost)}, gained {len(gained)}, different "
          f"(score or pool name) {len(changed)}")
    for flow in lost:
        print(f"    lost: {' '.join(flow)} {offline[flow]}")
    for flow in changed:
        print(f"    different: {' '.join(flow)} {offline[flow]} -> {live[flow]}")


def _print(r: dict[str, Any]) -> None:
    print(f"workers={r['workers']} bpf={r['bpf']}: offered {r['offered']} frames in "
          f"{r['replay_s']:.2f}s "
          f"({r['replay_pps']:.0f} pps), kernel saw {r['kernel_seen']}, dropped "
          f"{r['kernel_dropped']}, processed {r['processed']}, alerts {r['alerts']}"
          + (f", DNS side channel dropped {r['dns_dropped']} (forced ahead "
             f"{r['dns_forced']})" if r["workers"] == 2 else "")
          + (f", per worker {r['per_worker']}" if "per_worker" in r else ""))


if __name__ == "__main__":
    sys.exit(main())
