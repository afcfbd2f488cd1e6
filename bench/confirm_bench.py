"""Measure host confirmation: stratum packet → confirmed alert latency, and the agent's footprint.

Sets up, on loopback: a fresh PKI (deploy/make-pki.sh), Mosquitto with deploy/mosquitto's
TLS + ACL configuration, the loopback pool and XMRig stand-in from tests/e2e, and the agent
as a real process (``python -m netdetect.agent.daemon``, real collectors, root "/"). The
miner's flow is captured once from ``lo`` (AF_PACKET, so run as root).

(a) latency, repeated --runs times: a fresh CoreEngine is fed the captured frames one by one from
    the first one; as soon as the detector raises the suspect, the in-process Confirmer asks
    the agent and correlates the answer. Measured from handing the engine the first stratum
    packet to the Alert being returned, CPU window included. Not included: packet capture
    latency and the pool's round trip between login and its answer, which a live sensor
    would wait for.
(b) the agent process's memory (VmRSS, VmHWM from /proc/<pid>/status) and CPU
    (utime + stime from /proc/<pid>/stat) while idle and while answering --rate queries/s.
(c) a few cold runs of ``netdetect replay CAP --confirm`` as a process, for comparison.

Prints the numbers (and writes --json); it never fails on speed. Exit 1 if a part cannot run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from netdetect.config import load_sensor_config
from netdetect.confirm import Confirmer
from netdetect.core_engine import CoreEngine as Engine
from netdetect.hosts import Inventory
from netdetect.intel import Intel, load_intel
from netdetect.model import Alert, Suspect

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
POOL_SIM = REPO / "tests" / "e2e" / "pool_sim.py"
MINER_SIM = REPO / "tests" / "e2e" / "miner_sim.py"
MOSQUITTO = Path("/usr/sbin/mosquitto")
SENSOR = "sensor-1"
HOST = "bench-host"
WALLET = (
    "48edfHu7V9Z84YzzMa6fUueoELZ9ZRXq9VetWzYGzKt52XU5xvqgzYnDK9URnRoJMk1j8nLwEVsaSWJ4fhdUyZijBGUicoD"
)
CLK_TCK = os.sysconf("SC_CLK_TCK")
LINKTYPE_ETHERNET = 1
TARGET_MEDIAN_S = 3.0
TARGET_RSS_MB = 40.0


class BenchError(Exception):
    """A part of the bench could not run (missing tool, a child that did not start)."""


# --- the lab ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise BenchError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def first_line(proc: subprocess.Popen[str], prefix: str, timeout: float) -> str:
    out = proc.stdout
    if out is None:
        raise BenchError(f"{proc.args!r}: no stdout")
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(out.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    line = box[0] if box else ""
    if not line.startswith(prefix):
        raise BenchError(f"{proc.args!r} did not print {prefix!r}: {line!r}")
    return line[len(prefix):].strip()


class Children:
    """Processes this bench started; each is stopped by its own pid."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[Any]] = []

    def add(self, proc: subprocess.Popen[Any]) -> subprocess.Popen[Any]:
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait(5)


def make_pki(root: Path) -> None:
    subprocess.run([str(DEPLOY / "make-pki.sh"), "-o", str(root), "-d", "2", "-b", "127.0.0.1",
                    "-s", SENSOR, HOST], check=True, capture_output=True, timeout=120)


def start_broker(pki: Path, work: Path, children: Children) -> int:
    """deploy/mosquitto/mosquitto.conf with only paths and the listener moved into `work`."""
    if not MOSQUITTO.exists():
        raise BenchError(f"{MOSQUITTO} is missing: install the mosquitto package")
    port = free_port()
    out: list[str] = []
    for line in (DEPLOY / "mosquitto" / "mosquitto.conf").read_text().splitlines():
        key = line.split(" ", 1)[0]
        if key == "listener":
            out.append(f"listener {port} 127.0.0.1")
        elif key in {"cafile", "certfile", "keyfile", "acl_file"}:
            out.append(f"{key} {work / line.split()[-1].rsplit('/', 1)[-1]}")
        elif key == "persistence_location":
            out.append(f"persistence_location {work}/")
        else:
            out.append(line)
    out.append("user root")
    conf = work / "mosquitto.conf"
    conf.write_text("\n".join(out) + "\n")
    for name in ("ca.crt", "broker.crt", "broker.key"):
        shutil.copyfile(pki / name, work / name)
    shutil.copyfile(DEPLOY / "mosquitto" / "acl", work / "acl")
    with (work / "mosquitto.log").open("ab") as log:
        children.add(subprocess.Popen([str(MOSQUITTO), "-c", str(conf)], stdout=log,
                                      stderr=subprocess.STDOUT))
    wait_port(port, 10)
    return port


def mqtt_lines(pki: Path, port: int, cn: str, sub: str) -> list[str]:
    return ["[mqtt]", 'host = "127.0.0.1"', f"port = {port}", f'ca = "{pki / "ca.crt"}"',
            f'cert = "{pki / sub / (cn + ".crt")}"', f'key = "{pki / sub / (cn + ".key")}"',
            "keepalive = 10", "reconnect_min = 0.05", "reconnect_max = 0.5"]


def write_configs(pki: Path, port: int, work: Path, cpu_window: float,
                  max_concurrent: int) -> tuple[Path, Path]:
    inventory = work / "inventory.toml"
    inventory.write_text(f'[[host]]\nid = "{HOST}"\naddresses = ["127.0.0.1"]\n')
    sensor = work / "sensor.toml"
    sensor.write_text("\n".join([
        "[sensor]", f'id = "{SENSOR}"', f'inventory = "{inventory}"', "",
        *mqtt_lines(pki, port, SENSOR, "sensors"), "",
        "[confirm]", f'signing_key = "{pki / "sensors" / (SENSOR + "-signing.key")}"',
        f"timeout = {cpu_window + 8.0}", f"cpu_window = {cpu_window}", "max_outstanding = 256",
    ]) + "\n")
    agent = work / "agent.toml"
    agent.write_text("\n".join([
        "[agent]", f'host_id = "{HOST}"',
        f'trusted_keys = ["{pki / "sensors" / (SENSOR + "-signing.pub")}"]', 'root = "/"',
        f"max_concurrent = {max_concurrent}", "status_interval = 1", "",
        *mqtt_lines(pki, port, HOST, "hosts"),
    ]) + "\n")
    return sensor, agent


# --- capture ------------------------------------------------------------------------------------


class Capture:
    """Arriving frames of one TCP port on `lo` (loopback shows each frame leaving and arriving)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
        self.sock.bind(("lo", 0))
        self.sock.settimeout(0.05)
        self.frames: list[tuple[float, bytes]] = []
        self.text = b""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                frame, addr = self.sock.recvfrom(262144)
            except TimeoutError:
                continue
            if addr[2] == 4 or len(frame) < 54 or frame[12:14] != b"\x08\x00" or frame[23] != 6:
                continue
            tcp = 14 + (frame[14] & 0x0F) * 4
            if self.port not in struct.unpack_from("!HH", frame, tcp):
                continue
            self.frames.append((time.time(), frame))
            self.text += frame[tcp + (frame[tcp + 12] >> 4) * 4 :]

    def wait(self, needles: dict[bytes, int], timeout: float) -> None:
        end = time.monotonic() + timeout
        while any(self.text.count(k) < n for k, n in needles.items()):
            if time.monotonic() > end:
                raise BenchError(f"capture incomplete after {timeout}s: {needles}")
            time.sleep(0.02)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()

    def write(self, path: Path) -> None:
        with path.open("wb") as fh:
            fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, LINKTYPE_ETHERNET))
            for ts, frame in self.frames:
                sec = int(ts)
                usec = min(round((ts - sec) * 1e6), 999_999)
                fh.write(struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame)


# --- the agent's footprint ---------------------------------------------------------------------


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise BenchError(f"/proc/{pid}/status has no {key}")


def cpu_ticks(pid: int) -> int:
    data = Path(f"/proc/{pid}/stat").read_bytes()
    fields = data[data.rfind(b")") + 2 :].split()
    return int(fields[11]) + int(fields[12])


@dataclass
class Footprint:
    phase: str
    seconds: float
    cpu_percent: float  # of one core, averaged over the phase
    rss_mb_end: float
    rss_mb_max: float  # highest VmRSS sampled every 0.25 s
    hwm_mb: float  # VmHWM at the end of the phase (peak since the agent started)
    extra: dict[str, Any] = field(default_factory=dict)


class Sampler:
    """Samples the agent's VmRSS while a phase runs, and its CPU ticks at both ends."""

    def __init__(self, pid: int, phase: str) -> None:
        self.pid = pid
        self.phase = phase
        self.max_rss = 0
        self.t0 = time.monotonic()
        self.ticks0 = cpu_ticks(pid)
        self._stop = asyncio.Event()

    async def run(self) -> None:
        while not self._stop.is_set():
            self.max_rss = max(self.max_rss, status_kb(self.pid, "VmRSS"))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 0.25)

    def cpu_so_far(self) -> float:
        """CPU % of one core since the phase started."""
        seconds = time.monotonic() - self.t0
        return round((cpu_ticks(self.pid) - self.ticks0) / CLK_TCK / seconds * 100.0, 2)

    def finish(self, **extra: Any) -> Footprint:
        self._stop.set()
        seconds = time.monotonic() - self.t0
        ticks = cpu_ticks(self.pid) - self.ticks0
        rss = status_kb(self.pid, "VmRSS")
        return Footprint(self.phase, round(seconds, 2),
                         round(ticks / CLK_TCK / seconds * 100.0, 2), round(rss / 1024, 1),
                         round(max(self.max_rss, rss) / 1024, 1),
                         round(status_kb(self.pid, "VmHWM") / 1024, 1), extra)


# --- measurements -------------------------------------------------------------------------------


def detect(intel: Intel, frames: list[tuple[float, bytes]]) -> Suspect:
    """Feed frames one at a time, from the first, until the detector raises the suspect."""
    engine = Engine(intel, home_net=["127.0.0.0/8"])
    for ts, frame in frames:
        engine.feed(ts, LINKTYPE_ETHERNET, frame)
        if engine.detector.suspects:
            return engine.take_suspects()[0]
    raise BenchError("the captured flow raised no suspect")


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def summary(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "min": min(values), "median": statistics.median(values),
            "p90": pct(values, 90), "p99": pct(values, 99), "max": max(values)}


async def latency_runs(confirmer: Confirmer, intel: Intel, frames: list[tuple[float, bytes]],
                       runs: int) -> dict[str, Any]:
    totals: list[float] = []
    detect_ms: list[float] = []
    verdicts: Counter[str] = Counter()
    cpu: list[float] = []
    first: float | None = None
    for i in range(runs + 1):
        t0 = time.perf_counter()
        suspect = detect(intel, frames)
        t1 = time.perf_counter()
        alert = await confirmer.confirm(suspect)
        t2 = time.perf_counter()
        if i == 0:
            first = t2 - t0  # the agent imports its collectors on its first query
            continue
        totals.append(t2 - t0)
        detect_ms.append((t1 - t0) * 1000)
        verdicts[alert.verdict.value] += 1
        if alert.host is not None and alert.host.process is not None:
            cpu.append(alert.host.process.cpu_percent)
    return {"seconds": summary(totals), "detect_ms": summary(detect_ms),
            "first_query_s": first, "miner_cpu_percent": summary(cpu) if cpu else None,
            "verdicts": dict(verdicts)}


async def load_phase(confirmer: Confirmer, suspect: Suspect, rate: float,
                     seconds: float, sampler: Sampler) -> dict[str, Any]:
    """Send `rate` confirmations a second for `seconds`; count how they ended."""
    results: list[Alert] = []
    lat: list[float] = []

    answered_lat: list[float] = []

    async def one() -> None:
        t = time.perf_counter()
        alert = await confirmer.confirm(suspect)
        took = time.perf_counter() - t
        lat.append(took)
        if alert.host is not None:
            answered_lat.append(took)
        results.append(alert)

    before = confirmer.counters()
    start = time.perf_counter()
    n = int(rate * seconds)
    async with asyncio.TaskGroup() as tg:
        for i in range(n):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tg.create_task(one())
        sending_cpu = sampler.cpu_so_far()
    after = confirmer.counters()
    answered = sum(1 for a in results if a.host is not None)
    busy = sum(1 for a in results if a.host is None and a.reasons and "agent busy" in a.reasons[0])
    return {"sent": n, "answered": answered, "busy_answers": busy,
            "seconds": round(time.perf_counter() - start, 2),
            "answered_per_s": round(answered / seconds, 1),
            "cpu_percent_while_sending": sending_cpu,
            "verdicts": dict(Counter(a.verdict.value for a in results)),
            "latency_s": summary(lat),
            "answered_latency_s": summary(answered_lat) if answered_lat else None,
            "confirmer_counters": {k: after.get(k, 0) - before.get(k, 0) for k in after}}


def cli_runs(pcap: Path, sensor: Path, n: int, work: Path) -> dict[str, Any] | None:
    if n <= 0:
        return None
    times: list[float] = []
    verdicts: Counter[str] = Counter()
    for i in range(n):
        eve = work / f"cli-{i}.json"
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "netdetect.cli", "replay", str(pcap), "--confirm",
                        "--config", str(sensor), "--eve", str(eve), "--home-net", "127.0.0.0/8",
                        "-q"], check=True, capture_output=True, timeout=120, cwd=REPO,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
        times.append(time.perf_counter() - t)
        for line in eve.read_text().splitlines():
            rec = json.loads(line)
            if rec.get("event_type") in ("alert", "allowed"):  # not the flow records
                verdicts[rec["netdetect"]["verdict"]] += 1
    return {"seconds": summary(times), "verdicts": dict(verdicts)}


def agent_counters(confirmer: Confirmer) -> dict[str, int]:
    status = confirmer.status(HOST)
    return dict(status.counters) if status is not None else {}


async def wait_online(confirmer: Confirmer, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        status = confirmer.status(HOST)
        if status is not None and status.state == "online":
            return
        await asyncio.sleep(0.05)
    raise BenchError(f"agent {HOST} not online after {timeout}s")


async def measure(args: argparse.Namespace, work: Path, children: Children) -> dict[str, Any]:
    pki = work / "pki"
    make_pki(pki)
    (work / "broker").mkdir()
    port = start_broker(pki, work / "broker", children)
    sensor_toml, agent_toml = write_configs(pki, port, work, args.cpu_window,
                                            args.max_concurrent)
    with (work / "agent.log").open("ab") as log:
        agent = children.add(subprocess.Popen(
            [sys.executable, "-m", "netdetect.agent.daemon", "--config", str(agent_toml),
             "--log-level", "WARNING"], stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)}))
    pool = children.add(subprocess.Popen([sys.executable, str(POOL_SIM), "--job-interval", "1"],
                                         stdout=subprocess.PIPE, text=True))
    pool_port = int(first_line(pool, "LISTEN ", 10))
    miner_path = work / "home" / ".cache" / "xmrig" / "xmrig"
    miner_path.parent.mkdir(parents=True)
    shutil.copyfile(MINER_SIM, miner_path)
    capture = Capture(pool_port)
    miner = children.add(subprocess.Popen(
        [sys.executable, str(miner_path), "-o", f"stratum+tcp://127.0.0.1:{pool_port}", "-u",
         WALLET, "--donate-level", "1", "-t", "1"], stdout=subprocess.PIPE, text=True))
    first_line(miner, "CONNECTED ", 10)
    capture.wait({b'"method":"login"': 1, b'"method":"job"': 1}, 15)
    capture.stop()
    pcap = work / "miner.pcap"
    capture.write(pcap)

    intel = load_intel(REPO / "signatures")
    cfg = load_sensor_config(sensor_toml)
    inventory = Inventory.load(cfg.inventory) if cfg.inventory else Inventory()
    out: dict[str, Any] = {"cpu_window": args.cpu_window, "cpus": os.cpu_count(),
                           "frames": len(capture.frames)}
    async with Confirmer(cfg, inventory) as confirmer:
        await wait_online(confirmer, 20)
        # Idle: connected, online, nothing asked.
        idle = Sampler(agent.pid, "idle")
        task = asyncio.create_task(idle.run())
        await asyncio.sleep(args.idle)
        out["idle"] = asdict(idle.finish())
        await task
        print_json("agent idle", out["idle"])

        lat_sampler = Sampler(agent.pid, "latency runs")
        task = asyncio.create_task(lat_sampler.run())
        out["latency"] = await latency_runs(confirmer, intel, capture.frames, args.runs)
        out["during_latency_runs"] = asdict(lat_sampler.finish())
        await task
        print_json("latency (s), first stratum packet -> confirmed alert", out["latency"])

    # Load: short windows, or the agent's own concurrency cap would drop most queries.
    load_cfg = load_sensor_config(write_load_sensor(sensor_toml, work))
    async with Confirmer(load_cfg, inventory) as load_confirmer:
        await wait_online(load_confirmer, 20)
        suspect = detect(intel, capture.frames)
        busy = Sampler(agent.pid, f"{args.rate:g} queries/s")
        task = asyncio.create_task(busy.run())
        agent_before = agent_counters(load_confirmer)
        load = await load_phase(load_confirmer, suspect, args.rate, args.load_seconds, busy)
        out["load"] = asdict(busy.finish(**load))
        await task
        # The agent refreshes its retained status (with its counters) every second here.
        await asyncio.sleep(1.5)
        agent_after = agent_counters(load_confirmer)
        out["load"]["extra"]["agent_counters"] = {
            k: v - agent_before.get(k, 0) for k, v in agent_after.items()}
    print_json("agent under load", out["load"])
    out["cli"] = cli_runs(pcap, sensor_toml, args.cli_runs, work)
    if out["cli"] is not None:
        print_json("cold CLI runs (netdetect replay --confirm as a process)", out["cli"])
    out["targets"] = {
        "median_s<=3": out["latency"]["seconds"]["median"] <= TARGET_MEDIAN_S,
        "rss_mb<=40": out["load"]["hwm_mb"] <= TARGET_RSS_MB,
    }
    return out


def write_load_sensor(sensor: Path, work: Path) -> Path:
    text = sensor.read_text()
    lines = [("cpu_window = 0.0" if line.startswith("cpu_window") else
              "timeout = 5.0" if line.startswith("timeout") else line)
             for line in text.splitlines()]
    path = work / "sensor-load.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def print_json(title: str, data: Any) -> None:
    sys.stdout.write(f"== {title}\n{json.dumps(data, indent=2, default=str)}\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.confirm_bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=100, help="latency runs (after one warm-up)")
    p.add_argument("--cpu-window", type=float, default=2.0)
    p.add_argument("--idle", type=float, default=30.0, help="seconds of idle measurement")
    p.add_argument("--rate", type=float, default=100.0, help="queries per second under load")
    p.add_argument("--load-seconds", type=float, default=20.0)
    p.add_argument("--max-concurrent", type=int, default=2,
                   help="agent max_concurrent (reports built at once; deploy default 2)")
    p.add_argument("--cli-runs", type=int, default=5)
    p.add_argument("--json", type=Path, default=None, help="write all numbers here")
    args = p.parse_args(argv)
    if args.runs < 1 or args.rate <= 0 or args.load_seconds <= 0:
        p.error("--runs, --rate and --load-seconds must be positive")
    if os.geteuid() != 0:
        sys.stderr.write("confirm_bench: capturing on lo needs root (AF_PACKET)\n")
        return 1
    children = Children()
    try:
        with tempfile.TemporaryDirectory(prefix="confirm-bench-") as tmp:
            try:
                out = asyncio.run(measure(args, Path(tmp), children))
            finally:
                children.close()
    except (BenchError, subprocess.SubprocessError, OSError) as exc:
        sys.stderr.write(f"confirm_bench: {exc}\n")
        return 1
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=2, default=str) + "\n")
    print_json("targets (informational)", out["targets"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
