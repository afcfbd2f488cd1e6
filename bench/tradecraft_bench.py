"""Measure the tradecraft paths of host confirmation: the early ask, and hidden-process scans.

All on loopback, all real (PKI, Mosquitto with deploy/'s TLS + ACL, the agent as a process
with its real collectors), reusing bench.confirm_bench's set-up:

(a) ask-path latency, repeated --runs times: the lab's miner simulator (deploy/lab/miner.py)
    reads its pool from config.json and opens XMRig's default TLS — no SNI, no ALPN — to a
    literal address (the lab pool, TLS on loopback). Its flow is captured once. Per run, a
    fresh compiled-core engine with the ask threshold on is handed the frames one at a time
    from the first; at the ClientHello (score 25, below the alert threshold) it hands out an
    asked suspect, which `Confirmer.settle` puts to the agent; the clock stops when the
    `confirmed` alert is returned (CPU window included).
(b) the agent's CPU and memory while it answers --rate queries/s for --seconds, with a
    readdir hider (deploy/lab/processhider.c) preloaded into it, first on the host as it is
    (baseline), then with --procs extra processes (sleepers, one of them named kworker and
    so hidden from readdir): every query's socket lookup lists /proc from the kernel and
    compares it with a readdir pass. Reported as a ratio to the baseline of the same run,
    plus the cost of one /proc view in this process with and without the extra processes.

Prints the numbers (and writes --json); it never fails on speed. Exit 1 if a part cannot run.
Run as root (AF_PACKET capture on lo): python -m bench.tradecraft_bench
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

import msgspec

from bench.confirm_bench import (
    LINKTYPE_ETHERNET,
    REPO,
    BenchError,
    Capture,
    Children,
    Sampler,
    make_pki,
    print_json,
    start_broker,
    summary,
    wait_online,
    write_configs,
)
from netdetect.agent import hidden
from netdetect.config import load_sensor_config
from netdetect.confirm import Confirmer
from netdetect.core_engine import CoreEngine
from netdetect.hosts import Inventory
from netdetect.intel import Intel, load_intel
from netdetect.model import Suspect

LAB = REPO / "deploy" / "lab"


def _kit(work: Path) -> dict[str, Path]:
    """The lab's own kit builder (deploy/lab is a script directory, not a package)."""
    spec = importlib.util.spec_from_file_location("lab_disguise", LAB / "disguise.py")
    if spec is None or spec.loader is None:
        raise BenchError(f"cannot load {LAB / 'disguise.py'}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    built: dict[str, Path] = module.build(work / "kit", upx=False)
    return built


def _cert(work: Path) -> tuple[Path, Path]:
    crt, key = work / "pool.crt", work / "pool.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                    "/CN=pool.bench.example", "-keyout", str(key), "-out", str(crt)],
                   check=True, capture_output=True, timeout=60)
    return crt, key


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _asked(intel: Intel, frames: list[tuple[float, bytes]]) -> Suspect:
    engine = CoreEngine(intel, home_net=["127.0.0.0/8"])
    engine.detector.ask_threshold = 25
    for ts, frame in frames:
        engine.feed(ts, LINKTYPE_ETHERNET, frame)
        for s in engine.take_suspects():
            if s.asked:
                return s
    raise BenchError("the captured flow raised no asked suspect")


async def ask_runs(confirmer: Confirmer, intel: Intel, frames: list[tuple[float, bytes]],
                   runs: int) -> dict[str, Any]:
    totals: list[float] = []
    verdicts: Counter[str] = Counter()
    scores: Counter[int] = Counter()
    for i in range(runs + 1):
        t0 = time.perf_counter()
        suspect = _asked(intel, frames)
        alert = await confirmer.settle(suspect)
        took = time.perf_counter() - t0
        if i == 0:
            continue  # the agent imports its collectors on its first query
        totals.append(took)
        verdicts[alert.verdict.value if alert is not None else "not raised"] += 1
        scores[suspect.score] += 1
    return {"seconds": summary(totals), "verdicts": dict(verdicts),
            "network_scores": dict(scores)}


async def query_phase(confirmer: Confirmer, suspect: Suspect, rate: float, seconds: float,
                      sampler: Sampler) -> dict[str, Any]:
    answered = 0
    hidden_seen: Counter[int] = Counter()
    unanswered: Counter[str] = Counter()
    latency: list[float] = []

    async def one() -> None:
        nonlocal answered
        t = time.perf_counter()
        alert = await confirmer.confirm(suspect)
        if alert.host is not None and alert.host.host is not None:
            answered += 1
            latency.append(time.perf_counter() - t)
            hidden_seen[len(alert.host.host.hidden_pids)] += 1
        else:
            unanswered[(alert.reasons[0] if alert.reasons else "?")[:60]] += 1

    start = time.perf_counter()
    n = int(rate * seconds)
    async with asyncio.TaskGroup() as tg:
        for i in range(n):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tg.create_task(one())
    return {"sent": n, "answered": answered, "hidden_pids_reported": dict(hidden_seen),
            "unanswered": dict(unanswered),
            "answered_latency_s": summary(latency) if latency else None,
            "seconds": round(time.perf_counter() - start, 2),
            "cpu_percent_sending": sampler.cpu_so_far()}


def _sleepers(work: Path, n: int) -> list[subprocess.Popen[bytes]]:
    """`n` idle processes; the first is named kworker, which the preloaded hider hides."""
    hide = work / "kworker"
    shutil.copyfile(shutil.which("sleep") or "/bin/sleep", hide)
    hide.chmod(0o755)
    out = [subprocess.Popen([str(hide), "600"])]
    out += [subprocess.Popen(["sleep", "600"]) for _ in range(n - 1)]
    return out


def view_cost(rounds: int = 20) -> dict[str, float]:
    t = time.perf_counter()
    for _ in range(rounds):
        view = hidden.proc_view()
    return {"ms_per_view": round((time.perf_counter() - t) / rounds * 1000, 2),
            "pids": len(view.pids), "hidden": len(view.hidden)}


async def measure(args: argparse.Namespace, work: Path, children: Children) -> dict[str, Any]:
    kit = _kit(work)
    pki = work / "pki"
    make_pki(pki)
    (work / "broker").mkdir()
    port = start_broker(pki, work / "broker", children)
    sensor_toml, agent_toml = write_configs(pki, port, work, args.cpu_window, 4)
    # Early asks for every run: lift the per-host and global ask limits for the bench.
    sensor_toml.write_text(sensor_toml.read_text() + "ask_per_host = 100000\n"
                           "ask_budget = 100000\n")
    with (work / "agent.log").open("ab") as log:
        agent = children.add(subprocess.Popen(
            [sys.executable, "-m", "netdetect.agent.daemon", "--config", str(agent_toml),
             "--log-level", "WARNING"], stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO), "LD_PRELOAD": str(kit["hider"])}))
    crt, key = _cert(work)
    pool_port = _free_port()
    children.add(subprocess.Popen([sys.executable, str(LAB / "pool.py"), "--bind", "127.0.0.1",
                                   "--tls-port", str(pool_port), "--cert", str(crt), "--key",
                                   str(key), "--job-interval", "1"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    time.sleep(1.0)
    home = work / "home" / ".cache" / ".sysupdate"
    home.mkdir(parents=True)
    shutil.copyfile(LAB / "miner.py", home / "sysupdate")
    (home / "config.json").write_text(json.dumps({"url": f"127.0.0.1:{pool_port}", "tls": True}))
    capture = Capture(pool_port)
    children.add(subprocess.Popen([sys.executable, str(home / "sysupdate")], cwd=home,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    deadline = time.monotonic() + 20
    while len(capture.frames) < 12:
        if time.monotonic() > deadline:
            raise BenchError("the miner's TLS session was not captured")
        time.sleep(0.1)
    time.sleep(1.0)
    capture.stop()

    intel = load_intel(REPO / "signatures")
    cfg = load_sensor_config(sensor_toml)
    inventory = Inventory.load(cfg.inventory) if cfg.inventory else Inventory()
    out: dict[str, Any] = {"cpu_window": args.cpu_window, "cpus": os.cpu_count(),
                           "frames": len(capture.frames)}
    async with Confirmer(cfg, inventory) as confirmer:
        await wait_online(confirmer, 20)
        out["ask"] = await ask_runs(confirmer, intel, capture.frames, args.runs)
        print_json("ask path (s), first packet -> confirmed alert", out["ask"])

    # (b) the agent while it answers queries, before and after 2,000 more processes appear.
    if cfg.confirm is None:
        raise BenchError(f"{sensor_toml}: no [confirm] table")
    quick = dataclasses.replace(cfg, confirm=dataclasses.replace(cfg.confirm, cpu_window=0.1,
                                                                 top_n=0))
    async with Confirmer(quick, inventory) as confirmer:
        await wait_online(confirmer, 20)
        suspect = msgspec.structs.replace(_asked(intel, capture.frames), asked=False)
        phases: dict[str, Any] = {}
        sleepers: list[subprocess.Popen[bytes]] = []
        for label in ("baseline", f"+{args.procs} processes"):
            if sleepers == [] and label != "baseline":
                # Started off the event loop: the MQTT connection's keepalive must go on.
                sleepers = await asyncio.to_thread(_sleepers, work, args.procs)
                await asyncio.sleep(2.0)
            phases[label + " view"] = view_cost()
            sampler = Sampler(agent.pid, label)
            task = asyncio.create_task(sampler.run())
            got = await query_phase(confirmer, suspect, args.rate, args.seconds, sampler)
            phases[label] = asdict(sampler.finish(**got))
            await task
            print_json(f"agent, {label}", phases[label])
        for p in sleepers:
            p.kill()
        for p in sleepers:
            p.wait(10)
        base, loaded = phases["baseline"], phases[f"+{args.procs} processes"]
        phases["ratio_cpu"] = round(loaded["cpu_percent"] / max(base["cpu_percent"], 0.01), 2)
        phases["ratio_rss_max"] = round(loaded["rss_mb_max"] / base["rss_mb_max"], 2)
        out["scan"] = phases
        print_json("hidden-process scans", {k: v for k, v in phases.items()
                                            if "view" in k or k.startswith("ratio")})
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=50, help="ask-path runs (after one warm-up)")
    p.add_argument("--cpu-window", type=float, default=1.0)
    p.add_argument("--procs", type=int, default=2000, help="extra processes for (b)")
    p.add_argument("--rate", type=float, default=5.0, help="queries/s in (b)")
    p.add_argument("--seconds", type=float, default=20.0, help="seconds per phase in (b)")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    children = Children()
    with tempfile.TemporaryDirectory(prefix="nd-tradecraft-") as tmp:
        try:
            out = asyncio.run(measure(args, Path(tmp), children))
        except (BenchError, OSError, subprocess.CalledProcessError) as exc:
            sys.stderr.write(f"tradecraft_bench: {exc}\n")
            return 1
        finally:
            children.close()
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
