"""The live sensor (`netdetect sniff`): ring workers under fanout feeding one alerting parent.

Process layout. The parent opens one TPACKET_V3 ring socket per worker as root (all joined to
one PACKET_FANOUT_HASH group, so both directions of a flow land on the same worker), drops to
--user, then forks the workers. Each worker maps its ring and runs its own detection Engine;
it sends Suspects (rare), learned host addresses (DHCP leases, DNS answers for inventory names;
only with --confirm) and cumulative counter snapshots (once a second) to the parent over a
multiprocessing queue. The parent is an asyncio loop: host confirmation, EVE/MQTT sinks,
Prometheus metrics, the periodic stats line, signals. Workers ignore terminal signals: the
parent decides when they stop, so a Ctrl-C still flushes every pending suspect into an alert.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import dataclasses
import importlib
import logging
import multiprocessing as mp
import os
import pwd
import queue
import secrets
import signal
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from netdetect.campaign import CampaignBook
from netdetect.capture.afpacket import (
    DEFAULT_BPF,
    Insn,
    LiveCaptureError,
    RingConfig,
    RingSocket,
    compile_bpf,
    interface_linktype,
    pid_fanout_group,
)
from netdetect.core_engine import CoreEngine
from netdetect.detect import DEFAULT_HOME_NET
from netdetect.errors import NetdetectError
from netdetect.intel import Intel, load_intel
from netdetect.metrics import SensorMetrics, stats_line
from netdetect.model import Alert, FlowEnd, Suspect
from netdetect.sinks.eve import EveWriter, SinkError, alert_to_eve
from netdetect.sinks.syslog import SyslogSink

if TYPE_CHECKING:
    from netdetect.config import SensorConfig
    from netdetect.hosts import Inventory

log = logging.getLogger("netdetect.live")

EXIT_OK, EXIT_ALERTS, EXIT_ERROR = 0, 1, 2
REPORT_EVERY = 1.0  # seconds between a worker's counter snapshots
READ_TIMEOUT = 0.2  # seconds a worker waits in poll() before checking its control flags
# The DNS side channel of each worker (see Sensor.dns_rings): answers only.
DNS_SIDE_FILTER = "udp and (src port 53 or src port 5353 or src port 5355)"
# A TPACKET_V2 ring: the kernel hands each answer over as soon as it has written it, before
# it takes the next packet off the link, while main-ring frames reach the worker only when
# their block does. The core merges the two in capture order (src/os/ring.rs drain_live):
# each main-ring frame is judged after every answer captured before it and before every
# answer captured after it, as in a replay of the capture, however close they follow each
# other (a --topspeed replay puts microseconds between them). An answer captured after the
# last frame read waits in its slot; while the main ring is quiet, until it is
# DNS_HOLD_SLACK_MS past the main ring's retire_ms old (by then any main-ring frame captured
# before it has been handed over). 4096 slots of 2 KiB (8 MiB): a whole Ethernet frame each
# (an answer in a longer one is cut, counted in dns_side_truncated), and room for the
# answers that arrive while the main ring lags (a block is handed over when full, or
# retire_ms after it was opened) and the worker is busy; when half the slots wait, the
# oldest go ahead of their turn (dns_side_forced) so that none is dropped. With 2048 slots,
# bench/live_bench.py's --topspeed replay (some 18 000 answers/s) forced up to 252.
# (A V3 ring holds only block_count x retire_ms of a busy worker's time, and hands an
# answer over up to retire_ms late: both lost pool names.)
DNS_RING = RingConfig(block_size=1 << 16, block_count=128, frame_size=2048)
# Timer granularity (two jiffies at HZ=100) and softirq latency on top of the retire time.
DNS_HOLD_SLACK_MS = 25
STOP_GRACE = 15.0  # seconds the parent waits for workers to flush before killing them
# Seconds a worker process may be gone before its "done" arrives: its last messages (final
# suspects, counters, "done") are in the queue when it exits, possibly behind a long batch
# the parent is still raising alerts for.
EXIT_GRACE = 2.0
SUMMARY_KEEP = 10_000  # alerts kept in memory for the end-of-run summary
PR_SET_PDEATHSIG = 1


SINK_LOG_EVERY = 60.0  # seconds between log lines about records a sink lost


class AlertSink(Protocol):
    # `record`: the alert's EVE record (`alert_to_eve(alert)`), built once for all sinks.
    def write(self, alert: Alert, record: dict[str, Any] | None = None) -> None: ...


class RateLimitedLog:
    """At most one message per `every` seconds; says how many were held back meanwhile."""

    def __init__(self, every: float) -> None:
        self.every = every
        self._next = float("-inf")
        self._held = 0

    def ready(self, now: float) -> int | None:
        """None: stay quiet; else log now, mentioning this many held-back events."""
        if now < self._next:
            self._held += 1
            return None
        held, self._held = self._held, 0
        self._next = now + self.every
        return held


@dataclass(frozen=True, slots=True)
class SniffOptions:
    """Everything `netdetect sniff` was asked to do, validated."""

    interface: str
    workers: int = 1
    bpf: str | None = None
    metrics_port: int | None = None
    metrics_addr: str = "127.0.0.1"
    stats_interval: float = 60.0
    user: str | None = None
    duration: float | None = None
    eve: str | None = None
    campaigns: str | None = None  # campaign updates, JSON lines (netdetect.sinks.campaigns)
    syslog: str | None = None
    syslog_facility: str = "local5"
    home_net: tuple[str, ...] = tuple(DEFAULT_HOME_NET)
    signatures: str | None = None
    geo_asn: str | None = None
    geo_city: str | None = None
    confirm: bool = False
    config: str | None = None
    max_flows: int = 150_000
    quiet: bool = False
    fail_on_alert: bool = False
    ring: RingConfig = field(default_factory=RingConfig)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> SniffOptions:
        from netdetect.cli import default_signatures

        ring = RingConfig()
        ring_mb = getattr(args, "ring_mb", None)
        if ring_mb:
            ring = dataclasses.replace(ring, block_count=max(2, ring_mb * (1 << 20)
                                                             // ring.block_size))
        opts = cls(
            interface=args.interface,
            workers=args.workers,
            bpf=args.bpf,
            metrics_port=args.metrics_port,
            metrics_addr=getattr(args, "metrics_addr", None) or "127.0.0.1",
            stats_interval=args.stats_interval,
            user=args.user,
            duration=args.duration,
            eve=args.eve,
            campaigns=getattr(args, "campaigns", None),
            syslog=getattr(args, "syslog", None),
            syslog_facility=getattr(args, "syslog_facility", None) or "local5",
            home_net=tuple(args.home_net or DEFAULT_HOME_NET),
            signatures=args.signatures or default_signatures(),
            geo_asn=getattr(args, "geo_asn", None),
            geo_city=getattr(args, "geo_city", None),
            confirm=bool(args.confirm),
            config=args.config,
            max_flows=args.max_flows,
            quiet=bool(args.quiet),
            fail_on_alert=bool(getattr(args, "fail_on_alert", False)),
            ring=ring,
        )
        opts.validate()
        return opts

    def validate(self) -> None:
        if not 1 <= self.workers <= 256:
            raise LiveCaptureError(f"--workers {self.workers}: must be 1..256")
        if self.stats_interval <= 0:
            raise LiveCaptureError("--stats-interval must be positive")
        if self.duration is not None and self.duration <= 0:
            raise LiveCaptureError("--duration must be positive")
        if self.max_flows < 1:
            raise LiveCaptureError("--max-flows must be positive")
        if self.confirm and not self.config:
            raise LiveCaptureError("--confirm needs --config SENSOR.toml")
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65535:
            raise LiveCaptureError(f"--metrics-port {self.metrics_port} out of range")
        self.ring.validate()

    def bpf_expression(self) -> str | None:
        """`--bpf default` names the documented prefilter (afpacket.DEFAULT_BPF)."""
        if self.bpf is None or not self.bpf.strip():
            return None
        return DEFAULT_BPF if self.bpf.strip() == "default" else self.bpf


# --- privileges -------------------------------------------------------------------------------


def drop_privileges(user: str) -> None:
    """Become `user` for good (no supplementary groups, real = effective = saved ids)."""
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        raise LiveCaptureError(f"--user {user}: no such user") from None
    if os.getuid() != 0:
        if os.getuid() == pw.pw_uid:
            return
        raise LiveCaptureError(f"--user {user}: only root can switch users")
    os.setgroups([])
    os.setgid(pw.pw_gid)
    os.setuid(pw.pw_uid)
    # Prove the drop cannot be undone: a way back to root would defeat the point.
    try:
        os.setuid(0)
    except PermissionError:
        return
    raise LiveCaptureError(f"--user {user}: could still regain root after dropping privileges")


_CAP_VERSION_3 = 0x20080522
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4


def drop_capabilities() -> None:
    """Give up every capability of this process (and so of the workers it forks)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = (ctypes.c_uint32 * 2)(_CAP_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()  # two __user_cap_data_struct, all sets empty
    if libc.capset(header, data) != 0:
        err = ctypes.get_errno()
        raise LiveCaptureError(f"cannot drop capabilities: {os.strerror(err)}")


# Modules the sensor imports lazily after start-up. They are loaded before the privilege drop,
# so a Python installation the service user cannot read (e.g. under /root) still works.
_LAZY_MODULES = ("multiprocessing.popen_fork", "concurrent.futures.thread", "encodings.idna",
                 "netdetect.service", "netdetect.sinks.eve", "netdetect.summary",
                 "rich.console", "rich.table", "rich.text")
_CONFIRM_MODULES = ("netdetect.confirm", "netdetect.sinks.mqtt", "netdetect.correlate")


def _preload(*, confirm: bool) -> None:
    for name in (*_LAZY_MODULES, *(_CONFIRM_MODULES if confirm else ())):
        importlib.import_module(name)


def _die_with_parent() -> None:
    # A worker must not outlive a SIGKILLed parent and keep a promiscuous socket open.
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


# --- workers ----------------------------------------------------------------------------------


@dataclass(slots=True)
class WorkerControl:
    """Flags in shared memory, read by every worker between ring reads (no locking needed:
    single aligned ints, written only by the parent)."""

    stop: Synchronized[int]
    generation: Synchronized[int]


@dataclass(frozen=True, slots=True)
class _WorkerSpec:
    wid: int
    signatures: str
    geo_asn: str | None
    geo_city: str | None
    home_net: tuple[str, ...]
    max_flows: int
    retire_ms: int
    # With --confirm: leases go to the parent's inventory. `names` (DNS name -> host id) are
    # the inventory's declared names at start; `config` lets a SIGHUP reload them.
    learn_hosts: bool = False
    names: tuple[tuple[str, str], ...] = ()
    config: str | None = None
    ask_threshold: int = 0  # flows from this score are put to their host early (--confirm)


def _worker_main(spec: _WorkerSpec, rings: Sequence[RingSocket],
                 dns_rings: Sequence[RingSocket], intel: Intel,
                 out: mp.Queue[tuple[Any, ...]], ctl: WorkerControl, parent: int) -> None:
    _die_with_parent()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    ring = rings[spec.wid]
    dns_ring = dns_rings[spec.wid] if dns_rings else None
    for i, other in enumerate(rings):
        if i != spec.wid:
            other.sock.close()
    for i, other in enumerate(dns_rings):
        if i != spec.wid:
            other.sock.close()
    from netdetect import _core

    def mapped(r: RingSocket) -> _core.Ring:
        return _core.Ring(r.fileno(), r.config.block_size, r.config.block_count, r.linktype,
                          r.config.frame_size)

    core_ring = mapped(ring)
    core_dns = mapped(dns_ring) if dns_ring is not None else None
    engine = CoreEngine(intel, home_net=spec.home_net, max_flows=spec.max_flows)
    detector = engine.detector
    detector.ask_threshold = spec.ask_threshold
    generation = ctl.generation.value
    names = dict(spec.names)
    if spec.learn_hosts:
        from netdetect.hosts import dns_learner

        # The hook always sees the same dict: a reload refills it in place.
        engine.on_dns_answer = dns_learner(names, engine.add_lease)
        engine.watch_names(names)
    wid = spec.wid
    timeout_ms = int(READ_TIMEOUT * 1000)
    hold_ms = spec.retire_ms + DNS_HOLD_SLACK_MS

    def snapshot() -> dict[str, int]:
        c = engine.counters()
        k = ring.stats()
        c["kernel_packets"] = k.packets
        c["kernel_drops"] = k.drops
        c["kernel_freezes"] = k.freezes
        if dns_ring is not None and core_dns is not None:
            c["kernel_dns_drops"] = dns_ring.stats().drops
            c["dns_side_truncated"] = core_dns.truncated
            c["dns_side_forced"] = core_dns.forced
        c["worker_errors"] = c.get("core_panics", 0)
        c["signature_generation"] = generation
        return c

    out.put(("ready", wid, os.getpid()))
    next_report = time.monotonic() + REPORT_EVERY
    try:
        while not ctl.stop.value:
            engine.run_ring(core_ring, timeout_ms, core_dns, hold_ms=hold_ms)
            if detector.suspects:
                out.put(("suspects", wid, engine.take_suspects()))
            if engine.flow_ends:
                out.put(("flows", wid, engine.take_flow_ends()))
            if engine.leases:
                leases = engine.take_leases()
                if spec.learn_hosts:
                    out.put(("leases", wid, leases))
            if ctl.generation.value != generation:
                generation = ctl.generation.value
                intel = _reload_intel(spec, engine, intel, generation)
                if spec.learn_hosts:
                    _reload_names(spec, names)
                    engine.watch_names(names)
            now = time.monotonic()
            if now >= next_report:
                next_report = now + REPORT_EVERY
                out.put(("counters", wid, snapshot()))
                if os.getppid() != parent:
                    log.error("worker %d: the sensor process is gone, stopping", wid)
                    break
        # A block the kernel has not retired yet is handed over within retire_ms: wait for it,
        # so frames that arrived before the stop are still analysed (the side channel hands
        # over each answer at once, and is read before each of those blocks).
        ring.freeze()
        if dns_ring is not None:
            dns_ring.freeze()
        end = time.monotonic() + spec.retire_ms / 1000 * 2 + 0.05
        while time.monotonic() < end:
            engine.run_ring(core_ring, 20, core_dns, hold_ms=hold_ms)
        # Every frame is in: the answers still waiting were captured before now.
        engine.run_ring(core_ring, 0, core_dns, hold_ms=0)
        engine.finish()
        leases = engine.take_leases()
        if spec.learn_hosts and leases:
            # Ahead of the last suspects, so they are looked up with these addresses known.
            out.put(("leases", wid, leases))
        out.put(("suspects", wid, engine.take_suspects()))
        out.put(("flows", wid, engine.take_flow_ends()))
        out.put(("counters", wid, snapshot()))
    finally:
        out.put(("done", wid, 0))
        del core_ring
        core_dns = None  # unmapped before its socket is closed, like core_ring
        ring.close()
        if dns_ring is not None:
            dns_ring.close()
        out.close()
        out.join_thread()


def _reload_intel(spec: _WorkerSpec, engine: CoreEngine, intel: Intel, generation: int) -> Intel:
    try:
        fresh = load_intel(spec.signatures, geo_asn=spec.geo_asn, geo_city=spec.geo_city)
    except NetdetectError as exc:
        log.error(  # noqa: TRY400 - the message says it all; no traceback wanted
            "worker %d: signature reload failed, keeping the loaded set: %s", spec.wid, exc)
        return intel
    # Flows, streams and passive DNS stay: only the lookups and prefilters are swapped.
    engine.reload_intel(fresh)
    log.info("worker %d: signatures reloaded (generation %d)", spec.wid, generation)
    return fresh


def _reload_names(spec: _WorkerSpec, names: dict[str, str]) -> None:
    """Refill the DNS names to learn from after SIGHUP (the parent validated the files)."""
    from netdetect.config import load_sensor_config
    from netdetect.hosts import Inventory

    try:
        cfg = load_sensor_config(Path(spec.config or ""))
        fresh = Inventory.load(cfg.inventory).names() if cfg.inventory else {}
    except (NetdetectError, OSError) as exc:
        log.error(  # noqa: TRY400 - the message says it all; no traceback wanted
            "worker %d: inventory reload failed, keeping the DNS names: %s", spec.wid, exc)
        return
    names.clear()
    names.update(fresh)


# --- the sensor -------------------------------------------------------------------------------


class Sensor:
    """Owns the rings, the workers and the alerting loop of one `netdetect sniff` run."""

    def __init__(self, opts: SniffOptions) -> None:
        self.opts = opts
        self.metrics = SensorMetrics()
        self.alerts: deque[Alert] = deque(maxlen=SUMMARY_KEEP)
        self.sinks: list[AlertSink] = []
        self.rings: list[RingSocket] = []
        # With several workers, each also reads every DNS answer on the link through a
        # socket of its own outside the fanout group: passive DNS must not depend on the
        # worker the fanout hashed a DNS answer to.
        self.dns_rings: list[RingSocket] = []
        self.procs: list[mp.process.BaseProcess] = []
        self.failed: list[str] = []
        self.pending = 0
        self._done: set[int] = set()
        self._exited: dict[int, float] = {}  # worker -> when it was first seen gone
        self._ready: set[int] = set()
        self._confirmer: Any = None
        self._sensor_cfg: SensorConfig | None = None
        self._inventory: Inventory | None = None
        self._ctx = mp.get_context("fork")
        self._queue: mp.Queue[tuple[Any, ...]] = self._ctx.Queue()
        self._ctl = WorkerControl(self._ctx.Value("i", 0, lock=False),
                                  self._ctx.Value("i", 0, lock=False))
        self._eve: EveWriter | None = None
        self._syslog: SyslogSink | None = None
        self._sink_log = RateLimitedLog(SINK_LOG_EVERY)
        self._stop_requested = False
        self._stopping = False
        self._reload_requested = False
        self._prev: tuple[float, int, int] = (0.0, 0, 0)
        self._prev_dns_drops = 0
        # Campaigns kept current as alerts arrive; their updates go to the campaign sinks.
        from netdetect.sinks.campaigns import CampaignPublisher

        self.publisher = CampaignPublisher(
            on_error=lambda sink, exc: self._sink_failed(sink, "campaign", exc))
        self.campaigns = CampaignBook(opts.home_net, on_update=self.publisher.update)
        self._campaign_file: Any = None

    # --- setup (privileged) -------------------------------------------------------------------

    def open(self) -> Intel:
        """Everything that needs root or may fail on bad input, before any worker starts."""
        o = self.opts
        intel = load_intel(o.signatures or "", geo_asn=o.geo_asn, geo_city=o.geo_city)
        if o.confirm:
            self._load_sensor_config()
        program: list[Insn] | None = None
        expr = o.bpf_expression()
        if expr is not None:
            program = compile_bpf(expr, interface_linktype(o.interface))
            log.info("kernel prefilter: %d BPF instructions", len(program))
        group = pid_fanout_group() if o.workers > 1 else None
        try:
            for _ in range(o.workers):
                self.rings.append(RingSocket(o.interface, o.ring, fanout_group=group,
                                             bpf=program))
            if o.workers > 1:
                dns_program = compile_bpf(DNS_SIDE_FILTER, interface_linktype(o.interface))
                for _ in range(o.workers):
                    self.dns_rings.append(RingSocket(o.interface, DNS_RING, bpf=dns_program))
        except BaseException:
            self._close_rings()
            raise
        if o.eve is not None:
            from netdetect.sinks.eve import EveWriter

            host = self._host_name()
            try:
                if o.eve == "-":
                    self._eve = EveWriter.to_fd(sys.stdout.fileno(), "<stdout>", host=host,
                                                in_iface=o.interface)
                else:
                    self._eve = EveWriter.to_file(o.eve, host=host, in_iface=o.interface)
            except OSError as exc:
                self._close_rings()
                raise LiveCaptureError(f"--eve {o.eve}: {exc.strerror or exc}") from exc
        if o.campaigns is not None:
            from netdetect.sinks.campaigns import CampaignFile

            try:
                self._campaign_file = CampaignFile(o.campaigns)
            except OSError as exc:
                self._close_rings()
                raise LiveCaptureError(f"--campaigns {o.campaigns}: {exc.strerror or exc}"
                                       ) from exc
            self.publisher.sinks.append(self._campaign_file)
        self.publisher.context = {"host": self._host_name(), "in_iface": o.interface}
        if o.user:
            _preload(confirm=o.confirm)
            drop_privileges(o.user)
        elif os.geteuid() != 0:
            # Started unprivileged with CAP_NET_RAW/CAP_NET_ADMIN (systemd ambient
            # capabilities): the sockets are open, nothing after this needs them.
            drop_capabilities()
        log.info("capturing on %s: %d worker(s), ring %d MiB each%s", o.interface, o.workers,
                 self.rings[0].ring_bytes >> 20, f", fanout group {group}" if group else "")
        return intel

    def _host_name(self) -> str:
        """EVE's `host`: the sensor's certificate CN when configured, as the broker and the
        agents know it; else the machine's name."""
        return self._sensor_cfg.sensor_id if self._sensor_cfg else socket.gethostname()

    def _load_sensor_config(self) -> None:
        from netdetect.config import load_sensor_config
        from netdetect.hosts import Inventory

        cfg = load_sensor_config(Path(self.opts.config or ""))
        self._sensor_cfg = cfg
        self._inventory = Inventory.for_config(cfg)

    def _close_rings(self) -> None:
        for r in (*self.rings, *self.dns_rings):
            with contextlib.suppress(OSError):
                r.close()

    def _ask_threshold(self) -> int:
        cfg = self._sensor_cfg
        return cfg.confirm.ask_threshold if cfg is not None and cfg.confirm is not None else 0

    def start_workers(self, intel: Intel) -> None:
        o = self.opts
        for wid in range(o.workers):
            inv = self._inventory
            spec = _WorkerSpec(wid, o.signatures or "", o.geo_asn, o.geo_city, o.home_net,
                               o.max_flows, o.ring.retire_ms, learn_hosts=inv is not None,
                               names=tuple(sorted(inv.names().items())) if inv else (),
                               config=o.config, ask_threshold=self._ask_threshold())
            p = self._ctx.Process(target=_worker_main, name=f"netdetect-worker-{wid}",
                                  args=(spec, self.rings, self.dns_rings, intel, self._queue,
                                        self._ctl,
                                        os.getpid()), daemon=True)
            p.start()
            self.procs.append(p)
        # The parent keeps no packet socket: only the workers read the rings.
        self._close_rings()

    # --- run ----------------------------------------------------------------------------------

    def run(self) -> int:
        try:
            intel = self.open()
        except BaseException:
            if self._eve is not None:
                self._eve.close()
            raise
        try:
            self.start_workers(intel)
            if self.opts.metrics_port is not None:
                port = self.metrics.serve(self.opts.metrics_port, self.opts.metrics_addr)
                log.info("metrics on http://%s:%d/metrics", self.opts.metrics_addr, port)
            asyncio.run(self._main())
        finally:
            self._ctl.stop.value = 1
            self._reap()
            self.metrics.close()
            if self._eve is not None:
                self._eve.close()
            if self._campaign_file is not None:
                self._campaign_file.close()
        return self._exit_code()

    def _exit_code(self) -> int:
        if self.failed:
            return EXIT_ERROR
        if self.opts.fail_on_alert and any(a.verdict.value != "allowed" for a in self.alerts):
            return EXIT_ALERTS
        return EXIT_OK

    def _reap(self) -> None:
        for p in self.procs:
            p.join(STOP_GRACE if p.is_alive() else 0)
            if p.is_alive() and p.pid is not None:
                log.error("worker %s did not stop, killing it", p.name)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGKILL)
                p.join(5)

    async def _main(self) -> None:
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        pump_stop = threading.Event()
        pump = threading.Thread(target=self._pump, args=(loop, inbox, pump_stop),
                                name="worker-queue", daemon=True)
        pump.start()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._request_stop, sig)
        loop.add_signal_handler(signal.SIGHUP, self._request_reload)
        try:
            async with contextlib.AsyncExitStack() as stack:
                await self._open_sinks(stack)
                async with asyncio.TaskGroup() as tg:
                    await self._loop(inbox, tg)
            self._log_stats(final=True)
            lost = self.metrics.lost()
            if lost:
                log.warning("records lost: %s", " ".join(
                    f"{sink} {record}={n}" for (sink, record), n in sorted(lost.items())))
            for wid, counters in sorted(self.metrics.per_worker().items()):
                log.info("worker %d final: %s", wid,
                         " ".join(f"{k}={v}" for k, v in sorted(counters.items())))
        finally:
            pump_stop.set()
            pump.join(5)
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
        if not self.opts.quiet:
            self._summary()

    def _pump(self, loop: asyncio.AbstractEventLoop, inbox: asyncio.Queue[tuple[Any, ...]],
              stop: threading.Event) -> None:
        # multiprocessing queues block; a thread hands their messages to the event loop.
        while True:
            try:
                msg = self._queue.get(timeout=0.1)
            except queue.Empty:
                if stop.is_set():
                    return
                continue
            except (EOFError, OSError):
                return
            try:
                loop.call_soon_threadsafe(inbox.put_nowait, msg)
            except RuntimeError:  # the loop closed under us: nothing left to deliver to
                return

    async def _open_sinks(self, stack: contextlib.AsyncExitStack) -> None:
        if self._eve is not None:
            self.sinks.append(self._eve)
        if self.opts.syslog:
            from netdetect.sinks.syslog import SyslogSink

            self._syslog = SyslogSink(self.opts.syslog, facility=self.opts.syslog_facility,
                                      hostname=self._host_name(),
                                      eve_context={"host": self._host_name(),
                                                   "in_iface": self.opts.interface})
            stack.callback(self._syslog.close)
            self.sinks.append(self._syslog)
        cfg = self._sensor_cfg
        if cfg is None:
            return
        from netdetect.confirm import Confirmer

        assert self._inventory is not None
        self._confirmer = await stack.enter_async_context(Confirmer(cfg, self._inventory))
        if cfg.alerts.mqtt and cfg.mqtt is not None:
            from netdetect.sinks.mqtt import MqttAlertSink

            # Unguessable: Mosquitto lets any client take over a connected client id.
            sink = MqttAlertSink(cfg.mqtt,
                                 client_id=f"{cfg.sensor_id}-alerts-{secrets.token_hex(4)}",
                                 topic=cfg.alerts.topic, buffer=cfg.alerts.buffer)
            self.sinks.append(await stack.enter_async_context(sink))
            from netdetect.sinks.campaigns import CAMPAIGN_TOPIC, CampaignMqtt

            updates = MqttAlertSink(cfg.mqtt,
                                    client_id=f"{cfg.sensor_id}-campaigns-{os.getpid()}",
                                    topic=CAMPAIGN_TOPIC, buffer=cfg.alerts.buffer)
            self.publisher.sinks.append(CampaignMqtt(await stack.enter_async_context(updates)))

    async def _loop(self, inbox: asyncio.Queue[tuple[Any, ...]], tg: asyncio.TaskGroup) -> None:
        o = self.opts
        loop = asyncio.get_running_loop()
        deadline = loop.time() + o.duration if o.duration is not None else None
        next_stats = loop.time() + o.stats_interval
        self._prev = (loop.time(), 0, 0)
        while len(self._done) < len(self.procs):
            try:
                msg = await asyncio.wait_for(inbox.get(), 0.25)
            except TimeoutError:
                msg = None
            if msg is not None:
                self._handle(msg, tg)
            now = loop.time()
            if deadline is not None and now >= deadline and not self._stopping:
                log.info("--duration %.1fs reached", o.duration)
                self._stop_requested = True
            if self._stop_requested and not self._stopping:
                self._stopping = True
                self._ctl.stop.value = 1
                stop_by = now + STOP_GRACE
            if self._stopping and now > stop_by:
                log.error("workers did not flush within %.0fs", STOP_GRACE)
                self.failed.append("stop timeout")
                break
            if self._reload_requested:
                self._reload_requested = False
                await self._reload()
            self._check_workers()
            if now >= next_stats:
                next_stats = now + o.stats_interval
                self._log_stats()

    def _handle(self, msg: tuple[Any, ...], tg: asyncio.TaskGroup) -> None:
        kind, wid, body = msg
        if kind == "suspects":
            for s in body:
                self._suspect(s, tg)
        elif kind == "flows":
            self._flow_ends(body)
        elif kind == "leases":
            confirmer = self._confirmer
            if confirmer is not None:
                confirmer.inventory.learn_leases(body)
        elif kind == "counters":
            self.metrics.update_worker(wid, body)
        elif kind == "ready":
            self._ready.add(wid)
            if len(self._ready) == len(self.procs):
                log.info("all %d worker(s) capturing", len(self.procs))
        elif kind == "done":
            self._done.add(wid)

    def _suspect(self, s: Suspect, tg: asyncio.TaskGroup) -> None:
        confirmer = self._confirmer
        if confirmer is None:
            from netdetect.service import network_only

            self._emit(network_only(s))
            return
        self.pending += 1
        self.metrics.set_gauge("confirmations_pending", self.pending)

        async def one() -> None:
            started = time.monotonic()
            try:
                alert = await confirmer.settle(s)
            finally:
                self.pending -= 1
                self.metrics.set_gauge("confirmations_pending", self.pending)
                self.metrics.observe_confirmation(time.monotonic() - started)
            if alert is not None:  # None: asked early, and the host did not confirm it
                self._emit(alert)

        tg.create_task(one())

    def _emit(self, alert: Alert) -> None:
        record = alert_to_eve(alert)  # once, for the campaign book and every sink
        alert = self.campaigns.tag(alert, record)
        self.alerts.append(alert)
        self.metrics.count_alert(alert.verdict.value)
        s = alert.suspect
        log.warning("alert %s: %s:%d -> %s:%d %s score %d%s", alert.verdict.value, s.miner.ip,
                    s.miner.port, s.pool.ip, s.pool.port, s.dialect, s.score,
                    f" host {alert.host_id}" if alert.host_id else "")
        for sink in self.sinks:
            try:
                sink.write(alert, record)
            except (SinkError, OSError) as exc:
                self._sink_failed(sink, "alert", exc)

    def _flow_ends(self, ends: list[FlowEnd]) -> None:
        """Final records of alerted flows go to the sinks that keep flow records (EVE)."""
        for sink in self.sinks:
            write_flow = getattr(sink, "write_flow", None)
            if write_flow is None:
                continue
            for fe in ends:
                try:
                    write_flow(fe)
                except (SinkError, OSError) as exc:
                    self._sink_failed(sink, "flow", exc)

    def _sink_failed(self, sink: object, record: str, exc: Exception) -> None:
        """A live sensor outlives a full disk: the record is counted as lost, and the log
        says so at most once per SINK_LOG_EVERY seconds, whatever the alert rate."""
        name = type(sink).__name__
        self.metrics.count_lost(name, record)
        suppressed = self._sink_log.ready(time.monotonic())
        if suppressed is not None:
            log.error(  # an I/O condition, not a bug: no traceback
                "%s: %s record lost: %s%s", name, record, exc,
                f" ({suppressed} more lost since the last message)" if suppressed else "")

    def _check_workers(self) -> None:
        for wid, p in enumerate(self.procs):
            if wid in self._done or p.is_alive():
                continue
            seen = self._exited.setdefault(wid, time.monotonic())
            if time.monotonic() - seen >= EXIT_GRACE:
                # A worker cannot be replaced: its socket needed privileges we no longer have.
                log.error("worker %d died (exit code %s); stopping the sensor", wid, p.exitcode)
                self.failed.append(f"worker {wid} exit {p.exitcode}")
                self._done.add(wid)
                self._stop_requested = True

    def _request_stop(self, sig: int) -> None:
        log.info("%s: stopping (flushing pending flows)", signal.Signals(sig).name)
        self._stop_requested = True

    def _request_reload(self) -> None:
        self._reload_requested = True

    async def _reload(self) -> None:
        o = self.opts
        loop = asyncio.get_running_loop()
        if self._eve is not None:
            # logrotate moved the file away: later alerts go to a new file at the path.
            try:
                self._eve.reopen()
                log.info("SIGHUP: reopened %s", self._eve.name)
            except SinkError as exc:
                log.error("SIGHUP: %s; alerts keep going to the old file", exc)  # noqa: TRY400
        if self._campaign_file is not None:
            try:
                self._campaign_file.reopen()
            except OSError as exc:
                log.error("SIGHUP: %s: %s", self._campaign_file.name, exc)  # noqa: TRY400
        if self._syslog is not None:
            self._syslog.reopen()  # a collector that moved (DNS) is found again
        try:
            # Validate in the parent first, so a broken edit never reaches the workers.
            fresh = await loop.run_in_executor(
                None, lambda: load_intel(o.signatures or "", geo_asn=o.geo_asn,
                                         geo_city=o.geo_city))
            fresh.close()
            if self._confirmer is not None:
                self._reload_sensor_config()
        except NetdetectError as exc:
            log.error(  # noqa: TRY400 - a config error, not a bug: no traceback
                "SIGHUP: reload failed, keeping the running configuration: %s", exc)
            return
        self._ctl.generation.value += 1
        log.info("SIGHUP: signatures valid, workers reloading (generation %d)",
                 self._ctl.generation.value)

    def _reload_sensor_config(self) -> None:
        old = self._sensor_cfg
        self._load_sensor_config()
        new = self._sensor_cfg
        assert old is not None
        assert new is not None
        # The broker connection stays: only what decides verdicts is swapped.
        self._confirmer.config = dataclasses.replace(old, allowlist=new.allowlist,
                                                     correlate=new.correlate,
                                                     inventory=new.inventory)
        assert self._inventory is not None
        self._inventory.carry_learned(self._confirmer.inventory)
        self._confirmer.inventory = self._inventory
        self._sensor_cfg = self._confirmer.config

    def _log_stats(self, *, final: bool = False) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        totals = self.metrics.totals()
        prev_t, prev_pkts, prev_drops = self._prev
        drops = totals.get("kernel_drops", 0)
        qdepth = 0
        with contextlib.suppress(NotImplementedError, OSError):
            qdepth = self._queue.qsize()
        self.metrics.set_gauge("worker_queue_depth", qdepth)
        if self._confirmer is not None:
            self.metrics.set_confirm(self._confirmer.counters())
        line = stats_line(totals, self.metrics.alerts(), pending=self.pending, queue=qdepth,
                          elapsed=now - prev_t, prev_packets=prev_pkts)
        log.info("%s%s", "final " if final else "", line)
        if drops > prev_drops:
            log.warning("kernel dropped %d packets in the last %.0fs (%d since start): the "
                        "ring overflowed; add --workers or a --bpf prefilter", drops - prev_drops,
                        now - prev_t, drops)
        dns_drops = totals.get("kernel_dns_drops", 0)
        if dns_drops > self._prev_dns_drops:
            log.warning("kernel dropped %d DNS answers from the workers' side channels in the "
                        "last %.0fs (%d since start): pool names they carried are missing from "
                        "passive DNS", dns_drops - self._prev_dns_drops, now - prev_t, dns_drops)
        self._prev_dns_drops = dns_drops
        self._prev = (now, totals.get("packets", 0), drops)

    def _summary(self) -> None:
        from netdetect.summary import print_summary

        totals = self.metrics.totals()
        stream = sys.stderr if self.opts.eve == "-" else sys.stdout
        print_summary(list(self.alerts), totals, self.failed, stream, files=0,
                      frames=totals.get("packets", 0))


def _setup_logging() -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def run_sniff(args: argparse.Namespace) -> int:
    """Entry point of `netdetect sniff`; returns the process exit status."""
    _setup_logging()
    try:
        opts = SniffOptions.from_args(args)
        return Sensor(opts).run()
    except LiveCaptureError as exc:
        sys.stderr.write(f"netdetect: {exc}\n")
        return EXIT_ERROR
