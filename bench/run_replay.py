"""Time netdetect replay against ndpiReader and a bare Python read loop on one capture."""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import mmap
import os
import re
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_RATIO = 3.0  # netdetect over ndpiReader packets/s, full detection, one core (2x floor)
TARGET_RSS_MB = 150.0

Triple = tuple[str, str, int]


# --------------------------------------------------------------------------- child runs


@dataclass(slots=True)
class Run:
    wall_s: float
    cpu_s: float
    rss_mb: float
    rc: int


@dataclass(slots=True)
class Timing:
    """Median of several runs of one command."""

    name: str
    argv: list[str]
    runs: list[Run] = field(default_factory=list)
    error: str | None = None

    @property
    def wall(self) -> float:
        return statistics.median(r.wall_s for r in self.runs)

    @property
    def cpu(self) -> float:
        return statistics.median(r.cpu_s for r in self.runs)

    @property
    def rss(self) -> float:
        return max(r.rss_mb for r in self.runs)


GNU_TIME = shutil.which("time")  # the program, not the shell keyword


def run_child(
    argv: list[str],
    *,
    stdout: Path,
    stderr: Path,
    timeout: float,
    env: dict[str, str] | None = None,
) -> Run:
    """Runs argv and returns its wall time, CPU time and peak RSS.

    Peak RSS comes from GNU time wrapped around the child: rusage straight from this process
    would not do, because a child spawned here (vfork or fork, then exec) reports at least
    this process's own high-water mark, and the baseline loops make that large. Without GNU
    time, wait4's rusage is used and the RSS is an upper bound."""
    usage = stderr.with_suffix(".rusage")
    cmd = [GNU_TIME, "-f", "%U %S %M", "-o", str(usage), "--", *argv] if GNU_TIME else argv
    with stdout.open("wb") as out, stderr.open("wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # a timeout kills the child's whole group, not just time
        )
        timer = threading.Timer(timeout, _kill_group, (proc.pid,))
        timer.start()
        try:
            _, status, ru = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
    proc.returncode = rc = os.waitstatus_to_exitcode(status)
    cpu, rss_kb = ru.ru_utime + ru.ru_stime, float(ru.ru_maxrss)
    if GNU_TIME:
        lines = usage.read_text().strip().splitlines() if usage.exists() else []
        fields = lines[-1].split() if lines else []
        if len(fields) == 3:
            cpu, rss_kb = float(fields[0]) + float(fields[1]), float(fields[2])
        usage.unlink(missing_ok=True)
    return Run(wall, cpu, rss_kb / 1024.0, rc)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def _tail(path: Path, lines: int = 15) -> str:
    text = path.read_text(errors="replace").rstrip().splitlines()
    return "\n".join("    " + line for line in text[-lines:])


@dataclass
class Command:
    """One timed command: how to run it, and what to do before each run."""

    name: str
    argv: list[str]
    env: dict[str, str] | None = None
    before: Callable[[], None] | None = None


def time_interleaved(
    commands: list[Command], runs: int, timeout: float, workdir: Path
) -> dict[str, Timing]:
    """Run the commands in turn, `runs` rounds: each round runs every command once, so a
    machine that slows down or speeds up (other tenants, frequency) does so for all of them
    alike, and each round gives a ratio of its own. A command that fails leaves the rounds."""
    timings = {c.name: Timing(c.name, c.argv) for c in commands}
    live = list(commands)
    for i in range(runs):
        for c in list(live):
            t = time_command(c.name, c.argv, 1, timeout, workdir, env=c.env, before=c.before,
                             label=f"{i + 1}/{runs}")
            if t.error:
                timings[c.name].error = t.error
                live.remove(c)
                continue
            timings[c.name].runs += t.runs
    return timings


def time_command(
    name: str,
    argv: list[str],
    runs: int,
    timeout: float,
    workdir: Path,
    env: dict[str, str] | None = None,
    before: Callable[[], None] | None = None,
    label: str | None = None,
) -> Timing:
    timing = Timing(name, argv)
    out, err = workdir / f"{name}.out", workdir / f"{name}.err"
    for i in range(runs):
        if before is not None:
            before()
        run = run_child(argv, stdout=out, stderr=err, timeout=timeout, env=env)
        if run.rc != 0:
            why = "killed after --timeout" if run.rc == -signal.SIGKILL else f"exit status {run.rc}"
            timing.error = (
                f"{name} run {i + 1} failed ({why}): {' '.join(argv)}\n"
                f"  stderr:\n{_tail(err)}\n  stdout:\n{_tail(out)}"
            )
            return timing
        timing.runs.append(run)
        print(
            f"  {name} run {label or f'{i + 1}/{runs}'}: wall {run.wall_s:.2f} s, "
            f"cpu {run.cpu_s:.2f} s, "
            f"peak RSS {run.rss_mb:.0f} MB",
            flush=True,
        )
    return timing


# --------------------------------------------------------------------------- baseline loops


def pcap_records(buf: memoryview) -> Iterator[tuple[int, int]]:
    """(offset, captured length) of each packet of a classic pcap or pcapng in `buf`."""
    if len(buf) < 24:
        raise ValueError("file too short for a capture header")
    magic = struct.unpack_from("<I", buf, 0)[0]
    if magic == 0x0A0D0D0A:
        yield from _pcapng_records(buf)
        return
    if magic in (0xA1B2C3D4, 0xA1B23C4D):
        rec = struct.Struct("<IIII")
    elif magic in (0xD4C3B2A1, 0x4D3CB2A1):
        rec = struct.Struct(">IIII")
    else:
        raise ValueError(f"not a pcap/pcapng file (magic {magic:#010x})")
    off = 24
    end = len(buf)
    unpack = rec.unpack_from
    while off + 16 <= end:
        caplen = unpack(buf, off)[2]
        off += 16
        if off + caplen > end:
            break  # truncated last record, as left by a capture that was cut
        yield off, caplen
        off += caplen


def _pcapng_records(buf: memoryview) -> Iterator[tuple[int, int]]:
    off = 0
    end = len(buf)
    order = "<"
    while off + 12 <= end:
        btype = struct.unpack_from(order + "I", buf, off)[0]
        if btype == 0x0A0D0D0A:
            order = "<" if struct.unpack_from("<I", buf, off + 8)[0] == 0x1A2B3C4D else ">"
        blen = struct.unpack_from(order + "I", buf, off + 4)[0]
        if blen < 12 or off + blen > end:
            break
        if btype == 6:
            yield off + 28, struct.unpack_from(order + "I", buf, off + 20)[0]
        elif btype == 3:
            yield off + 12, min(struct.unpack_from(order + "I", buf, off + 8)[0], blen - 16)
        off += blen


def baseline_records(buf: memoryview) -> int:
    """Visits every record header: the floor for any per-packet Python loop."""
    n = 0
    for _ in pcap_records(buf):
        n += 1
    return n


def baseline_flows(buf: memoryview) -> int:
    """Records + Ethernet/VLAN/IP/L4 header reads + one dict update per packet: what a pure
    Python sensor pays before any detection work."""
    flows: dict[bytes, int] = {}
    u16 = struct.Struct("!H").unpack_from
    n = 0
    for off, caplen in pcap_records(buf):
        n += 1
        if caplen < 34:
            continue
        etype = u16(buf, off + 12)[0]
        l3 = off + 14
        if etype == 0x8100:
            etype = u16(buf, off + 16)[0]
            l3 = off + 18
        if etype == 0x0800:
            ihl = (buf[l3] & 0x0F) * 4
            proto = buf[l3 + 9]
            l4 = l3 + ihl
            addrs = buf[l3 + 12 : l3 + 20]
        elif etype == 0x86DD:
            proto = buf[l3 + 6]
            l4 = l3 + 40
            addrs = buf[l3 + 8 : l3 + 40]
        else:
            continue
        if l4 + 4 > off + caplen:
            continue
        key = bytes(addrs) + bytes(buf[l4 : l4 + 4]) + bytes((proto,))
        flows[key] = flows.get(key, 0) + 1
    return n


def time_baseline(path: Path, func: Callable[[memoryview], int], runs: int) -> tuple[float, int]:
    times: list[float] = []
    n = 0
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        mv = memoryview(mm)
        try:
            for _ in range(runs):
                t0 = time.perf_counter()
                n = func(mv)
                times.append(time.perf_counter() - t0)
        finally:
            mv.release()
    return statistics.median(times), n


# --------------------------------------------------------------------------- truth and matching


def _ip(text: object) -> str | None:
    if not isinstance(text, str):
        return None
    try:
        return str(ipaddress.ip_address(text.strip("[]")))
    except ValueError:
        return None


@dataclass(slots=True)
class Truth:
    triples: set[Triple]  # identifiable mining flows: what a detector must find
    by_triple: dict[Triple, dict[str, object]]
    pool_dns: set[tuple[str, str]]  # (client, resolver)
    # Mining flows whose recognisable packet is not in the file (e.g. cut by the capture's
    # end): an alert on them is right, but missing them is no miss.
    unscored: set[Triple] = field(default_factory=set)


def load_truth(path: Path) -> Truth:
    data = json.loads(path.read_text())
    by_triple: dict[Triple, dict[str, object]] = {}
    unscored: set[Triple] = set()
    for m in data.get("mining_flows", []):
        c, s = _ip(m["client_ip"]), _ip(m["server_ip"])
        if c is None or s is None:
            raise ValueError(f"{path}: bad address in {m}")
        triple = (c, s, int(m["server_port"]))
        if m.get("identified", True):
            by_triple.setdefault(triple, m)
        else:
            unscored.add(triple)
    dns = set()
    for d in data.get("pool_dns", []):
        c, r = _ip(d["client_ip"]), _ip(d["resolver_ip"])
        if c is not None and r is not None:
            dns.add((c, r))
    return Truth(set(by_triple), by_triple, dns, unscored - set(by_triple))


def _get(rec: object, dotted: str) -> object:
    """Looks a dotted path up through nested dicts, also accepting flat dotted keys (ECS)."""
    if isinstance(rec, dict) and dotted in rec:
        return rec[dotted]
    cur = rec
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


_ENDPOINT_PAIRS = (  # (ip, port) of each side, in the field names the sinks may use
    (("src_ip", "src_port"), ("dest_ip", "dest_port")),  # Suricata EVE
    (("source.ip", "source.port"), ("destination.ip", "destination.port")),  # ECS
    (("suspect.miner.ip", "suspect.miner.port"), ("suspect.pool.ip", "suspect.pool.port")),
    (("miner.ip", "miner.port"), ("pool.ip", "pool.port")),
    (("netdetect.miner.ip", "netdetect.miner.port"), ("netdetect.pool.ip", "netdetect.pool.port")),
)


def alert_endpoints(rec: dict[str, object]) -> tuple[tuple[str, int], tuple[str, int]] | None:
    for (aip, aport), (bip, bport) in _ENDPOINT_PAIRS:
        a, b = _ip(_get(rec, aip)), _ip(_get(rec, bip))
        pa, pb = _get(rec, aport), _get(rec, bport)
        if a and b and isinstance(pa, int) and isinstance(pb, int):
            return (a, pa), (b, pb)
    return None


def match(endpoints: tuple[tuple[str, int], tuple[str, int]], truth: set[Triple]) -> Triple | None:
    """The truth triple these endpoints belong to, whichever side the record calls source."""
    (a, pa), (b, pb) = endpoints
    for t in ((a, b, pb), (b, a, pa)):
        if t in truth:
            return t
    return None


@dataclass(slots=True)
class Detection:
    source: str
    records: int = 0  # alert records (netdetect) / mining-classified flows (ndpiReader)
    unparsed: int = 0  # records whose endpoints could not be read
    found: set[Triple] = field(default_factory=set)
    pool_dns: int = 0  # records about a client's DNS lookup of a pool name
    unscored: int = 0  # records about mining flows the capture holds too little of
    false: int = 0
    false_examples: list[str] = field(default_factory=list)

    def add(self, ends: tuple[tuple[str, int], tuple[str, int]], truth: Truth, what: str) -> None:
        self.records += 1
        hit = match(ends, truth.triples)
        if hit is not None:
            self.found.add(hit)
            return
        if match(ends, truth.unscored) is not None:
            self.unscored += 1
            return
        (a, pa), (b, pb) = ends
        if 53 in (pa, pb) and ((a, b) in truth.pool_dns or (b, a) in truth.pool_dns):
            self.pool_dns += 1
            return
        self.false += 1
        if len(self.false_examples) < 5:
            self.false_examples.append(what)


def netdetect_detection(eve: Path, truth: Truth) -> Detection:
    det = Detection("netdetect")
    if not eve.exists():
        return det
    with eve.open(encoding="utf-8", errors="replace") as fh:
        for raw in fh:
            line = raw.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                det.unparsed += 1
                continue
            if not isinstance(rec, dict):
                det.unparsed += 1
                continue
            etype = rec.get("event_type", _get(rec, "event.kind"))
            if etype is not None and etype not in ("alert", "signal"):
                continue  # stats, flow or dns records a sink may interleave
            ends = alert_endpoints(rec)
            if ends is None:
                det.unparsed += 1
                det.records += 1
                continue
            det.add(ends, truth, line[:200])
    return det


_NDPI_FLOW = re.compile(
    r"^\s*\d+\s+(TCP|UDP)\s+(\[[0-9A-Fa-f:.]+\]|[0-9.]+):(\d+)\s+<?->\s+"
    r"(\[[0-9A-Fa-f:.]+\]|[0-9.]+):(\d+)\s.*?\[proto: ([^\]]+)\]"
)


def ndpi_detection(verbose_output: Iterable[str], truth: Truth) -> tuple[Detection, Counter[str]]:
    """Reads `ndpiReader -v 2` flow lines; a flow counts when its protocol names Mining."""
    det = Detection("ndpiReader")
    protos: Counter[str] = Counter()
    for line in verbose_output:
        m = _NDPI_FLOW.match(line)
        if m is None:
            continue
        proto = m.group(6)
        protos[proto.split("/", 1)[-1]] += 1
        if "Mining" not in proto:
            continue
        a, b = _ip(m.group(2)), _ip(m.group(4))
        if a is None or b is None:
            det.unparsed += 1
            continue
        det.add(((a, int(m.group(3))), (b, int(m.group(5)))), truth, line.strip()[:200])
    return det, protos


# --------------------------------------------------------------------------- report


def _pps(packets: int, seconds: float) -> float:
    return packets / seconds if seconds > 0 else float("nan")


def _recall_by_dialect(det: Detection, truth: Truth) -> str:
    total: Counter[str] = Counter()
    hit: Counter[str] = Counter()
    for t, m in truth.by_triple.items():
        kind = str(m.get("dialect")) + ("-midflow" if m.get("midflow") else "")
        total[kind] += 1
        if t in det.found:
            hit[kind] += 1
    return ", ".join(f"{k} {hit[k]}/{total[k]}" for k in sorted(total))


def print_detection(det: Detection, truth: Truth) -> None:
    n = len(truth.triples)
    recall = len(det.found) / n if n else float("nan")
    print(
        f"  {det.source}: {det.records} records, "
        f"recall {len(det.found)}/{n} = {100 * recall:.1f} % "
        f"({_recall_by_dialect(det, truth)}); false {det.false}, pool-DNS {det.pool_dns}, "
        f"unscored {det.unscored}, unparsed {det.unparsed}"
    )
    for ex in det.false_examples:
        print(f"    false: {ex}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--capture", type=Path, default=Path("/tmp/span.pcap"))
    ap.add_argument(
        "--make", type=int, metavar="N", help="first generate an N-packet capture there"
    )
    ap.add_argument("--seed", type=int, default=1, help="generator seed for --make")
    ap.add_argument("--truth", type=Path, help="default: <capture>.truth.json")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--eve", type=Path, default=Path("/tmp/out.jsonl"))
    ap.add_argument("--ndpi", default="ndpiReader", help="ndpiReader binary")
    ap.add_argument("--python", default=sys.executable, help="interpreter for netdetect")
    ap.add_argument(
        "--netdetect-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for `netdetect replay` (repeatable)",
    )
    ap.add_argument("--cpu", type=int, help="pin this process and its children to one CPU")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds per child run")
    ap.add_argument("--skip-ndpi", action="store_true")
    ap.add_argument("--skip-netdetect", action="store_true")
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    args = ap.parse_args(argv)
    if args.runs < 1:
        ap.error("--runs must be >= 1")

    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})  # children inherit the mask
    if args.make:
        if str(REPO) not in sys.path:
            sys.path.insert(0, str(REPO))
        from bench.make_span import generate, print_summary

        print(f"generating {args.make:,} packets into {args.capture} (seed {args.seed})")
        print_summary(generate(args.capture, args.make, args.seed), args.capture)
    capture: Path = args.capture
    if not capture.is_file():
        print(f"error: {capture} does not exist (use --make N to generate it)", file=sys.stderr)
        return 1
    truth_path: Path = args.truth or Path(f"{capture}.truth.json")
    truth = load_truth(truth_path) if truth_path.is_file() else None
    if truth is None:
        print(f"note: no truth file at {truth_path}; detection counts are shown without recall")
        truth = Truth(set(), {}, set())

    errors: list[str] = []
    results: dict[str, object] = {"capture": str(capture), "runs": args.runs}
    # The first baseline pass also pulls the file into the page cache for everyone after it.
    print(f"baseline Python loops over {capture} ({capture.stat().st_size / 1e6:.0f} MB)")
    rec_s, packets = time_baseline(capture, baseline_records, args.runs)
    flow_s, _ = time_baseline(capture, baseline_flows, args.runs)
    results |= {"packets": packets, "baseline_records_s": rec_s, "baseline_flows_s": flow_s}
    print(
        f"  {packets:,} packets; records only {rec_s:.2f} s ({_pps(packets, rec_s):,.0f} pkt/s), "
        f"+ L2-L4 headers and a flow dict {flow_s:.2f} s ({_pps(packets, flow_s):,.0f} pkt/s)"
    )

    work = Path(tempfile.mkdtemp(prefix="netdetect-bench-"))
    ndpi: Timing | None = None
    nd: Timing | None = None
    try:
        ndpi_cmd = None if args.skip_ndpi else _prepare_ndpi(args, capture, errors)
        nd_cmd = None if args.skip_netdetect else _prepare_netdetect(args, work, errors, results)
        commands = [c for c in (ndpi_cmd, nd_cmd) if c is not None]
        print(f"\ntimed runs, interleaved: {', '.join(c.name for c in commands)}")
        for c in commands:
            print(f"  {c.name}: {' '.join(c.argv)}")
        timings = time_interleaved(commands, args.runs, args.timeout, work)
        errors.extend(t.error for t in timings.values() if t.error)
        if ndpi_cmd is not None:
            ndpi = timings["ndpiReader"]
            if not ndpi.error:
                ndpi_det = _ndpi_detection(args, capture, truth, work, errors)
                if ndpi_det is not None:
                    results["ndpi_detection"] = _det_json(ndpi_det)
        if nd_cmd is not None:
            nd = timings["netdetect"]
            if not nd.error:
                _netdetect_detection(args, truth, results)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print("\nresults (median of runs; packets/s over wall time, and over CPU time)")
    rows = []
    for t in (ndpi, nd):
        if t is not None and t.runs:
            rows.append(t)
            print(
                f"  {t.name:<11} {_pps(packets, t.wall):>12,.0f} pkt/s wall  "
                f"{_pps(packets, t.cpu):>12,.0f} pkt/s cpu  "
                f"wall {t.wall:7.2f} s  cpu {t.cpu:7.2f} s  "
                f"cores {t.cpu / t.wall:4.2f}  peak RSS {t.rss:6.0f} MB"
            )
            results[t.name] = {
                "wall_s": t.wall,
                "cpu_s": t.cpu,
                "rss_mb": t.rss,
                "pps_wall": _pps(packets, t.wall),
                "pps_cpu": _pps(packets, t.cpu),
                "runs": [asdict(r) for r in t.runs],
            }
    print(f"  {'py-records':<11} {_pps(packets, rec_s):>12,.0f} pkt/s (in-process loop)")
    print(f"  {'py-flows':<11} {_pps(packets, flow_s):>12,.0f} pkt/s (in-process loop)")
    if nd is not None and nd.runs:
        if ndpi is not None and ndpi.runs:
            ratio_wall, ratio_cpu = ndpi.wall / nd.wall, ndpi.cpu / nd.cpu
            rounds = [a.cpu_s / b.cpu_s for a, b in zip(ndpi.runs, nd.runs, strict=False)]
            results |= {"ratio_wall": ratio_wall, "ratio_cpu": ratio_cpu,
                        "ratio_cpu_rounds": rounds}
            print(
                f"  netdetect / ndpiReader packets/s: {ratio_wall:.2f}x wall, {ratio_cpu:.2f}x cpu "
                f"(target >= {TARGET_RATIO:.0f}x on cpu: "
                f"{'met' if ratio_cpu >= TARGET_RATIO else 'NOT met'})"
            )
            print(
                f"  per round (cpu, the two run back to back): median "
                f"{statistics.median(rounds):.2f}x, from {min(rounds):.2f}x to {max(rounds):.2f}x"
            )
        print(
            f"  netdetect packets/s as a share of the py-records loop: {rec_s / nd.wall:.3f}, "
            f"of the py-flows loop: {flow_s / nd.wall:.3f}"
        )
        print(
            f"  netdetect peak RSS {nd.rss:.0f} MB (target <= {TARGET_RSS_MB:.0f} MB: "
            f"{'met' if nd.rss <= TARGET_RSS_MB else 'NOT met'})"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    for e in errors:
        print(f"\nerror: {e}", file=sys.stderr)
    return 1 if errors else 0


def _det_json(det: Detection) -> dict[str, object]:
    return {
        "records": det.records,
        "found": len(det.found),
        "false": det.false,
        "pool_dns": det.pool_dns,
        "unscored": det.unscored,
        "unparsed": det.unparsed,
    }


def _prepare_ndpi(args: argparse.Namespace, capture: Path, errors: list[str]) -> Command | None:
    exe = shutil.which(args.ndpi)
    if exe is None:
        errors.append(f"ndpiReader half: {args.ndpi!r} not found on PATH (Debian: libndpi-bin)")
        return None
    # -q: quiet, prints nothing at all; detection and protocol guessing stay on (defaults).
    return Command("ndpiReader", [exe, "-i", str(capture), "-q"])


def _ndpi_detection(
    args: argparse.Namespace, capture: Path, truth: Truth, work: Path, errors: list[str]
) -> Detection | None:
    exe = shutil.which(args.ndpi) or args.ndpi
    # -v 2 lists every flow with its protocol; it is slower, so it is a separate, untimed pass.
    out, err = work / "ndpi-v2.out", work / "ndpi-v2.err"
    run = run_child(
        [exe, "-i", str(capture), "-v", "2"], stdout=out, stderr=err, timeout=args.timeout
    )
    if run.rc != 0:
        errors.append(f"ndpiReader -v 2 failed (exit status {run.rc}):\n{_tail(err)}")
        return None
    with out.open(encoding="utf-8", errors="replace") as fh:
        det, protos = ndpi_detection(fh, truth)
    print(f"\nndpiReader -v 2 pass: {sum(protos.values()):,} flows listed, Mining in {det.records}")
    print_detection(det, truth)
    return det


def _prepare_netdetect(
    args: argparse.Namespace, work: Path, errors: list[str], results: dict[str, object]
) -> Command | None:
    capture: Path = args.capture
    argv = [
        args.python,
        "-m",
        "netdetect.cli",
        "replay",
        str(capture),
        "--eve",
        str(args.eve),
        *args.netdetect_arg,
    ]
    if not (REPO / "netdetect" / "cli.py").is_file():
        errors.append(
            f"netdetect half: {REPO / 'netdetect' / 'cli.py'} does not exist yet; "
            "this benchmark runs `python -m netdetect.cli replay PATH --eve FILE`"
        )
        return None
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    # As installed: byte-compiled modules (pip compiles them on install), not a source
    # compile of every module on every run, which PYTHONDONTWRITEBYTECODE would force.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run(
        [args.python, "-m", "compileall", "-q", str(REPO / "netdetect")],
        check=True, env=env, stdout=subprocess.DEVNULL,
    )
    # ... and the signatures' address lists compiled once into the user's cache, as any
    # start after the first finds them.
    subprocess.run(
        [args.python, "-c", ("from netdetect.cli import default_signatures as d\n"
         "from netdetect.intel import load_intel\nload_intel(d())")],
        check=True, env=env,
    )
    # Interpreter start + imports, so that small captures can be read net of it.
    start = run_child(
        [args.python, "-c", "import netdetect.cli"],
        stdout=work / "imp.out",
        stderr=work / "imp.err",
        timeout=120,
        env=env,
    )
    if start.rc != 0:
        errors.append(f"netdetect half: `import netdetect.cli` fails:\n{_tail(work / 'imp.err')}")
        return None
    print(
        f"  interpreter start + import netdetect.cli: {start.wall_s:.2f} s, {start.rss_mb:.0f} MB"
    )
    results["netdetect_startup_s"] = start.wall_s
    eve: Path = args.eve
    return Command("netdetect", argv, env=env, before=lambda: eve.unlink(missing_ok=True))


def _netdetect_detection(args: argparse.Namespace, truth: Truth,
                         results: dict[str, object]) -> None:
    """Recall of the last timed run's EVE output (each run starts a fresh file)."""
    eve: Path = args.eve
    if not eve.is_file():
        print(f"  note: netdetect exited 0 and wrote no {eve}; counted as no alerts")
    det = netdetect_detection(eve, truth)
    print("\nnetdetect EVE of the last run:")
    print_detection(det, truth)
    results["netdetect_detection"] = _det_json(det)


if __name__ == "__main__":
    sys.exit(main())
