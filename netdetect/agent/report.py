"""build_report: the one call the agent daemon makes to answer a HostQuery from this host."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from functools import partial
from typing import TypeVar

import msgspec
import psutil

from netdetect.agent import procs
from netdetect.agent.persistence import Limits, Needles, collect_persistence
from netdetect.agent.schema import (
    MAX_REPORT_BYTES,
    SCHEMA_VERSION,
    HostFacts,
    HostQuery,
    HostReport,
    PersistenceEntry,
    ProcessFacts,
    TopProcess,
)
from netdetect.agent.traits import host_facts

MAX_WINDOW = 10.0  # seconds of CPU sampling at most, whatever the query asks
MIN_WINDOW = 0.1  # below this the 100 Hz tick counter cannot tell a miner from noise
EXPIRY_MARGIN = 0.5  # seconds left after sampling to publish before the query expires
MAX_TOP = 20
MAX_ERRORS = 50

_T = TypeVar("_T")
_LOCATOR = procs.SocketLocator()


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


def _other_mount_ns(pid: int) -> bool:
    try:
        mine = os.readlink(f"{procs.PROC}/self/ns/mnt")  # noqa: PTH115
        return os.readlink(f"{procs.PROC}/{pid}/ns/mnt") != mine  # noqa: PTH115
    except OSError:
        return False


def _persistence(root: str, needles: Needles, owners: list[procs.Owner], errors: list[str]
                 ) -> list[PersistenceEntry]:
    entries, errs = collect_persistence(root, needles)
    errors += errs
    # A containerised miner's cron and init scripts live in the container's filesystem, which
    # the host reaches through the process's root link.
    done: set[int] = set()
    for owner in owners:
        croot = f"{procs.PROC}/{owner.pid}/root"
        if root == "/" and owner.pid not in done and _other_mount_ns(owner.pid):
            done.add(owner.pid)
            more, errs = collect_persistence(croot, needles, prefix=croot,
                                             limits=Limits(seconds=3.0))
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
    finish before the query expires); the socket lookup, persistence scan and exe hashing run
    inside that window rather than after it. Never raises for host trouble: vanished
    processes, permissions and unreadable files become lines in `errors`.
    """
    loc = locator or _LOCATOR
    errors: list[str] = []
    window = min(query.cpu_window, MAX_WINDOW, query.expires_at - clock() - EXPIRY_MARGIN)
    window = max(window, MIN_WINDOW)
    started = time.monotonic()
    before = _guard(errors, "cpu", procs.cpu_snapshot, None)

    no_matches: list[procs.SocketMatch] = []
    no_owners: list[procs.Owner] = []
    matches = _guard(errors, "sockets", lambda: loc.find(query.flow, errors), no_matches)
    owners = _guard(errors, "sockets", lambda: loc.owners(matches, errors), no_owners)
    host: HostFacts | None = _guard(errors, "host", lambda: host_facts(errors=errors), None)
    needles = _guard(errors, "persistence", lambda: _needles(query, owners), Needles())
    no_entries: list[PersistenceEntry] = []
    persistence = _guard(errors, "persistence",
                         lambda: _persistence(root, needles, owners, errors), no_entries)

    time.sleep(max(0.0, window - (time.monotonic() - started)))
    after = _guard(errors, "cpu", procs.cpu_snapshot, None)
    cpu: dict[int, float] = {}
    if before is not None and after is not None:
        cpu = procs.cpu_percentages(before, after)

    process: ProcessFacts | None = None
    # Forked workers can share one socket: the busiest holder is the one burning the CPU.
    for owner in sorted(owners, key=lambda o: (-cpu.get(o.pid, 0.0), o.pid)):
        facts = partial(procs.process_facts, owner.pid, cpu_percent=cpu.get(owner.pid, 0.0),
                        errors=errors)
        process = _guard(errors, f"process {owner.pid}", facts, None)
        if process is not None:
            break
    if matches and not owners:
        errors.append("sockets: the flow's socket exists but no process holds it (closing, "
                      "or owned by the kernel)")

    top: list[TopProcess] = []
    if query.top_n > 0:
        top = _guard(errors, "top", lambda: procs.top_processes(
            cpu, min(query.top_n, MAX_TOP), errors=errors, exclude=(os.getpid(),)), top)

    if len(errors) > MAX_ERRORS:
        errors = [*errors[: MAX_ERRORS - 1], f"... and {len(errors) - MAX_ERRORS + 1} more"]
    report = HostReport(
        v=SCHEMA_VERSION,
        host_id=host_id,
        nonce=query.nonce,
        generated_at=clock(),
        found=process is not None,
        process=process,
        persistence=persistence,
        top=top,
        host=host,
        errors=errors,
    )
    return _fit(report)
