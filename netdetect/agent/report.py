"""Answering a HostQuery from this host: ReportBuilder (begin, wait, finish) and build_report.

A report is mostly waiting: CPU use is the difference of two /proc snapshots a window apart.
Queries that arrive while a window of the length they want is open share it, with its
snapshots and everything derived from them (CPU table, the owner's facts, the top list), and
the persistence scan comes from a cache (netdetect.agent.persistence.PersistenceCache), so
the per-query work is the socket lookup and a needle match.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import TypeVar

import msgspec
import psutil

from netdetect.agent import hidden, procs
from netdetect.agent.persistence import Limits, Needles, PersistenceCache
from netdetect.agent.schema import (
    MAX_REPORT_BYTES,
    SCHEMA_VERSION,
    HostFacts,
    HostQuery,
    HostReport,
    PersistenceEntry,
    ProcessFacts,
    TopProcess,
    safe_struct,
)
from netdetect.agent.traits import host_facts

MAX_WINDOW = 10.0  # seconds of CPU sampling at most, whatever the query asks
MIN_WINDOW = 0.1  # below this the 100 Hz tick counter cannot tell a miner from noise
EXPIRY_MARGIN = 0.5  # seconds left after sampling to publish before the query expires
MAX_TOP = 20
MAX_ERRORS = 50
_CONTAINER_LIMITS = Limits(seconds=3.0)

_T = TypeVar("_T")


def _guard(errors: list[str], stage: str, fn: Callable[[], _T], default: _T) -> _T:
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 -- the report must go out whatever one collector hit
        errors.append(f"{stage}: {type(exc).__name__}: {exc}")
        return default


def _needles(query: HostQuery, owners: list[procs.Owner]) -> Needles:
    exe: str | None = None
    cmdline: list[str] = []
    for owner in owners:
        try:
            p = psutil.Process(owner.pid)
            cmdline += procs.cap_cmdline(p.cmdline())
            exe = exe or os.readlink(f"{procs.PROC}/{owner.pid}/exe")  # noqa: PTH115
        except (psutil.Error, OSError):
            continue
    return Needles.build(exe=exe, cmdline=cmdline, pool_host=query.pool_host, wallet=query.wallet)


def _mount_ns(pid: int | str) -> str | None:
    try:
        return os.readlink(f"{procs.PROC}/{pid}/ns/mnt")  # noqa: PTH115
    except OSError:
        return None


def _persistence(cache: PersistenceCache, root: str, needles: Needles,
                 owners: list[procs.Owner], errors: list[str]) -> list[PersistenceEntry]:
    entries, errs = cache.collect(root, needles)
    errors += errs
    # A containerised miner's cron and init scripts live in the container's filesystem, which
    # the host reaches through the process's root link.
    if root != "/":
        return entries
    mine = _mount_ns("self")
    done: set[str] = set()
    for owner in owners:
        ns = _mount_ns(owner.pid)
        if ns is None or mine is None or ns == mine or ns in done:
            continue
        done.add(ns)
        croot = f"{procs.PROC}/{owner.pid}/root"
        more, errs = cache.collect(croot, needles, prefix=croot, limits=_CONTAINER_LIMITS,
                                   identity=ns)
        entries += more
        errors += errs
    return entries


def _fit(report: HostReport) -> HostReport:
    """Trim the bulkiest parts until the report is under the size the sensor accepts."""
    while len(msgspec.json.encode(report)) > MAX_REPORT_BYTES:
        if len(report.persistence) > 10:
            report = msgspec.structs.replace(report, persistence=report.persistence[
                : len(report.persistence) // 2])
        elif report.errors:
            report = msgspec.structs.replace(report,
                                             errors=report.errors[: len(report.errors) // 2])
        elif report.top:
            report = msgspec.structs.replace(report, top=report.top[: len(report.top) // 2])
        elif report.process is not None and report.process.cmdline:
            proc = report.process
            report = msgspec.structs.replace(report, process=msgspec.structs.replace(
                proc, cmdline=[a[:128] for a in proc.cmdline[:16]], parents=proc.parents[:8]))
            if len(msgspec.json.encode(report)) > MAX_REPORT_BYTES:
                report = msgspec.structs.replace(report, persistence=[])
                break
        else:
            break
    return report



class CpuWindow:
    """One sampling window: a /proc snapshot at its start, one at its end, shared by every
    query that joined it, with what is derived from them computed once."""

    def __init__(self, length: float, opened: float) -> None:
        self.length = length
        self.opened = opened  # time.monotonic()
        self.end = opened + length
        self.members = 0
        self._lock = threading.Lock()
        self._started = threading.Event()
        self._before: procs.CpuSnapshot | None = None
        self._cpu: dict[int, float] | None = None
        self._errors: list[str] = []  # the snapshots' own, shown in every member's report
        self._host: HostFacts | None = None
        self._host_errors: list[str] = []
        self._facts: dict[int, tuple[ProcessFacts | None, list[str]]] = {}
        self._top: tuple[int, list[TopProcess], list[str]] | None = None

    def start(self) -> None:
        """Take the first snapshot (the window's opener does, outside any shared lock)."""
        errors: list[str] = []
        try:
            self._before = _guard(errors, "cpu", procs.cpu_snapshot, None)
            self._host = _guard(self._host_errors, "host",
                                lambda: host_facts(errors=self._host_errors), None)
        finally:
            self._errors = errors
            self._started.set()

    def joined(self) -> None:
        self._started.wait()

    def host(self, errors: list[str]) -> HostFacts | None:
        errors += self._host_errors
        return self._host

    def cpu(self, errors: list[str]) -> dict[int, float]:
        """Per-pid CPU % over the window; the first member to ask after its end samples."""
        with self._lock:
            if self._cpu is None:
                after = _guard(self._errors, "cpu", procs.cpu_snapshot, None)
                self._cpu = ({} if self._before is None or after is None
                             else procs.cpu_percentages(self._before, after))
                self._before = None  # a snapshot of every process is worth freeing early
        errors += self._errors
        return self._cpu

    def facts(self, pid: int, cpu: dict[int, float], errors: list[str],
              hidden_pids: list[int] | None = None) -> ProcessFacts | None:
        with self._lock:
            got = self._facts.get(pid)
            if got is None:
                errs: list[str] = []
                # What the rest of the host used over the same window: a low-priority miner
                # on a busy host gets little CPU, but takes what the others leave.
                others = round(sum(cpu.values()) - cpu.get(pid, 0.0), 1) if cpu else -1.0
                facts = partial(procs.process_facts, pid, cpu_percent=cpu.get(pid, 0.0),
                                errors=errs, others_cpu_percent=others,
                                hidden_pids=hidden_pids or ())
                got = self._facts[pid] = (_guard(errs, f"process {pid}", facts, None), errs)
        errors += got[1]
        return got[0]

    def top(self, n: int, cpu: dict[int, float], errors: list[str]) -> list[TopProcess]:
        with self._lock:
            if self._top is None or self._top[0] < n:
                errs: list[str] = []
                empty: list[TopProcess] = []
                top = _guard(errs, "top", lambda: procs.top_processes(
                    cpu, n, errors=errs, exclude=(os.getpid(),)), empty)
                self._top = (n, top, errs)
            _, top, errs = self._top
        errors += errs
        return top[:n]


class SharedSampler:
    """Hands out CPU windows: a query joins an open window when that measures at least as long
    as it asked and ends no later than its own would, and opens a new one otherwise.

    At 100 queries/s with 0.1 s windows that is about 10 snapshot pairs a second instead of
    100, however many queries are in flight.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.opened = 0  # windows opened; exposed for tests and metrics
        self._lock = threading.Lock()
        self._open: list[CpuWindow] = []

    def join(self, length: float) -> CpuWindow:
        with self._lock:
            now = self.clock()
            self._open = [w for w in self._open if w.end > now]
            for w in self._open:
                if w.length >= length and w.end <= now + length:
                    w.members += 1
                    window, opener = w, False
                    break
            else:
                window, opener = CpuWindow(length, now), True
                window.members = 1
                self._open.append(window)
                self.opened += 1
        if opener:
            window.start()
        else:
            window.joined()
        return window


class PendingReport:
    """A report whose per-query work is done; `finish` once time.monotonic() >= ready_at."""

    def __init__(self, query: HostQuery, host_id: str, window: CpuWindow,
                 clock: Callable[[], float], errors: list[str], matches: list[procs.SocketMatch],
                 owners: list[procs.Owner], persistence: list[PersistenceEntry],
                 host: HostFacts | None, hidden_pids: list[int] | None = None) -> None:
        self.query = query
        self.host_id = host_id
        self.window = window
        self.ready_at = window.end
        self._clock = clock
        self._errors = errors
        self._matches = matches
        self._owners = owners
        self._persistence = persistence
        self._host = host
        self._hidden = hidden_pids or []

    def finish(self) -> HostReport:
        """The report; never raises for host trouble."""
        query, errors, window = self.query, self._errors, self.window
        cpu = window.cpu(errors)
        process: ProcessFacts | None = None
        # Forked workers can share one socket: the busiest holder is the one burning the CPU.
        for owner in sorted(self._owners, key=lambda o: (-cpu.get(o.pid, 0.0), o.pid)):
            process = window.facts(owner.pid, cpu, errors, self._hidden)
            if process is not None:
                break
        if self._matches and not self._owners:
            errors.append("sockets: the flow's socket exists but no process holds it (closing, "
                          "or owned by the kernel)")
        top: list[TopProcess] = []
        if query.top_n > 0:
            top = window.top(min(query.top_n, MAX_TOP), cpu, errors)
        if len(errors) > MAX_ERRORS:
            errors = [*errors[: MAX_ERRORS - 1], f"... and {len(errors) - MAX_ERRORS + 1} more"]
        report = HostReport(
            v=SCHEMA_VERSION,
            host_id=self.host_id,
            nonce=query.nonce,
            generated_at=self._clock(),
            found=process is not None,
            process=process,
            persistence=self._persistence,
            top=top,
            host=self._host_facts(errors),
            errors=errors,
        )
        # argv, comm and file names are bytes on the host: one that is not UTF-8 must not
        # make the whole report unencodable.
        return _fit(safe_struct(report))


    def _host_facts(self, errors: list[str]) -> HostFacts | None:
        if self._host is None:
            return None
        none: tuple[str, ...] = ()
        hooks = list(_guard(errors, "preload", hidden.preloaded_hooks, none))
        return msgspec.structs.replace(self._host, hidden_pids=self._hidden[:64],
                                       preload_hooks=hooks[:16])


class ReportBuilder:
    """Builds reports in two steps around the CPU window, so a caller can wait without a thread.

    `begin` does the query's own work (socket lookup, needles, persistence match) inside the
    window; `PendingReport.finish` reads the window's result. Calling the builder does both
    with a sleep in between. Thread-safe: the daemon runs begin/finish on a small pool.
    """

    def __init__(self, *, locator: procs.SocketLocator | None = None,
                 persistence: PersistenceCache | None = None,
                 sampler: SharedSampler | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.locator = locator or procs.SocketLocator()
        self.persistence = persistence or PersistenceCache()
        self.sampler = sampler or SharedSampler()
        self.clock = clock

    def window_for(self, query: HostQuery) -> float:
        """The query's cpu_window, capped at MAX_WINDOW and by its expiry, at least MIN_WINDOW."""
        window = min(query.cpu_window, MAX_WINDOW,
                     query.expires_at - self.clock() - EXPIRY_MARGIN)
        return max(window, MIN_WINDOW)

    def begin(self, query: HostQuery, *, host_id: str, root: str = "/") -> PendingReport:
        errors: list[str] = []
        window = self.sampler.join(self.window_for(query))
        loc = self.locator
        no_matches: list[procs.SocketMatch] = []
        no_owners: list[procs.Owner] = []
        matches = _guard(errors, "sockets", lambda: loc.find(query.flow, errors), no_matches)
        owners = _guard(errors, "sockets", lambda: loc.owners(matches, errors), no_owners)
        host = window.host(errors)
        needles = _guard(errors, "persistence", lambda: _needles(query, owners), Needles())
        no_entries: list[PersistenceEntry] = []
        persistence = _guard(errors, "persistence", lambda: _persistence(
            self.persistence, root, needles, owners, errors), no_entries)
        hidden_pids = list(loc.hidden)
        if loc.listing_error:
            errors.append(f"processes: {loc.listing_error}")
        return PendingReport(query, host_id, window, self.clock, errors, matches, owners,
                             persistence, host, hidden_pids)

    def __call__(self, query: HostQuery, *, host_id: str, root: str = "/") -> HostReport:
        pending = self.begin(query, host_id=host_id, root=root)
        time.sleep(max(0.0, pending.ready_at - time.monotonic()))
        return pending.finish()


_DEFAULT: ReportBuilder | None = None
_DEFAULT_LOCK = threading.Lock()


def default_builder() -> ReportBuilder:
    """The process-wide builder: one socket locator, persistence cache and sampler."""
    # Created on first use: importing this module must stay cheap.
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = ReportBuilder()
        return _DEFAULT


def build_report(
    query: HostQuery,
    *,
    host_id: str,
    root: str = "/",
    clock: Callable[[], float] = time.time,
    locator: procs.SocketLocator | None = None,
) -> HostReport:
    """Answer `query` from this host: owner process, CPU over one window, traits, persistence.

    Blocks for the CPU window (the query's cpu_window, capped at MAX_WINDOW and shortened to
    finish before the query expires, or less when it joins a window already open); the
    socket lookup and persistence match run inside that window rather than after it. Never
    raises for host trouble: vanished processes, permissions and unreadable files become
    lines in `errors`.
    """
    shared = default_builder()
    builder = shared
    if locator is not None or clock is not time.time:
        builder = ReportBuilder(locator=locator or shared.locator,
                                persistence=shared.persistence, sampler=shared.sampler,
                                clock=clock)
    return builder(query, host_id=host_id, root=root)
