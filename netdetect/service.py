"""Wires capture, the detection core, host confirmation and sinks for `replay`."""

from __future__ import annotations

import dataclasses
import itertools
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol

from netdetect.capture.files import FrameReader, capture_size, expand_paths
from netdetect.capture.prefilter import HEAD_PACKETS, SMALL_PAYLOAD, PrefilteredFile, PrefilterStats
from netdetect.core_engine import CoreEngine
from netdetect.correlate import correlate
from netdetect.detect import DEFAULT_HOME_NET
from netdetect.engine import Engine
from netdetect.errors import CaptureError
from netdetect.intel import Intel
from netdetect.model import Alert, FlowEnd, Suspect
from netdetect.sinks.eve import EveWriter

if TYPE_CHECKING:
    from netdetect.hosts import Inventory

YIELD_EVERY = 2048  # frames between event-loop yields while confirmations run
# Frames per Engine.feed_frames call in replay: large enough that the per-call cost vanishes,
# small enough that a suspect is emitted within a few milliseconds of capture time.
BATCH = 4096
# Frames per compiled-core call: the core returns early when events pile up.
BATCH_CORE = 65536


class Confirms(Protocol):
    """The host-confirmation side as the replay loop sees it (netdetect.confirm.Confirmer)."""

    inventory: Inventory  # what the traffic teaches (DHCP, DNS) is learned into it

    async def confirm(self, suspect: Suspect) -> Alert: ...


class AlertSink(Protocol):
    def write(self, alert: Alert) -> None: ...


@dataclass
class RunResult:
    alerts: list[Alert] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # per-file damage, "path: offset N: why"
    unreadable: int = 0  # files that failed to open or had damage
    files: int = 0
    frames: int = 0
    flow_ends: int = 0  # final records of alerted flows written
    counters: dict[str, int] = field(default_factory=dict)


def network_only(suspect: Suspect) -> Alert:
    """The verdict when no host is asked (replay without --confirm)."""
    from netdetect.config import Allowlist

    alert = correlate(suspect, host=None, report=None, reason=None, allowlist=Allowlist())
    return dataclasses.replace(alert, reasons=("host confirmation not requested",))


@dataclass
class PrefilterOptions:
    """Replay through the C prefilter (netdetect.capture.prefilter); totals over all files."""

    head_packets: int = HEAD_PACKETS
    small: int = SMALL_PAYLOAD
    heads: int = 0
    dropped: int = 0
    passed: int = 0

    def add(self, stats: PrefilterStats) -> None:
        self.heads += stats.heads
        self.dropped += stats.dropped
        self.passed += stats.passed

    def counters(self) -> dict[str, int]:
        return {
            "prefilter_heads": self.heads,
            "prefilter_dropped": self.dropped,
            "prefilter_passed": self.passed,
        }


class Progress(Protocol):
    def __call__(self, done: int, total: int, path: str) -> None: ...


def _frames_of(
    paths: Sequence[str],
    result: RunResult,
    progress: Progress | None,
    prefilter: PrefilterOptions | None = None,
) -> Iterable[tuple[float, int, bytes]]:
    total = sum(capture_size(p) for p in paths) if progress else 0
    done_before = 0
    for path in paths:
        result.files += 1
        n = 0
        reader: FrameReader | None = None
        pre: PrefilteredFile | None = None
        try:
            if prefilter is not None:
                pre = PrefilteredFile(
                    path, head_packets=prefilter.head_packets, small=prefilter.small
                )
                for frame in pre.frames():
                    n += 1
                    yield frame
            elif progress is None:
                # No per-frame bookkeeping here: the reader's own generator is the loop.
                reader = FrameReader(path)
                yield from reader
            else:
                reader = FrameReader(path)
                for frame in reader:
                    n += 1
                    if n & 0x3FFF == 0:
                        progress(done_before + reader.file_offset, total, path)
                    yield frame
        except CaptureError as exc:
            result.errors.append(str(exc))
            result.unreadable += 1
        except OSError as exc:
            result.errors.append(f"{path}: {exc.strerror or exc}")
            result.unreadable += 1
        if reader is not None:
            n = reader.frames
        if pre is not None and prefilter is not None:
            prefilter.add(pre.stats)
        done_before += capture_size(path) if progress else 0
        result.frames += n
        if progress is not None:
            progress(done_before, total, path)


ENGINES = ("core", "python")
"""`core`: the compiled core (netdetect._core). `python`: the earlier per-packet Python
engine, kept only as the differential oracle until the core has replaced it everywhere."""


def _core_sources(
    engine: CoreEngine, files: Sequence[str], result: RunResult, progress: Progress | None
) -> Iterator[None]:
    """Run every file through the compiled core, yielding after each batch so the caller
    can take what the batch produced. Damage is recorded; the next file is still read."""
    total = sum(capture_size(p) for p in files) if progress else 0
    done_before = 0
    for path in files:
        result.files += 1
        try:
            src = engine.open(path)
        except CaptureError as exc:
            result.errors.append(str(exc))
            result.unreadable += 1
            continue
        while engine.run(src, BATCH_CORE):
            if progress is not None:
                progress(done_before + src.stats()[3], total, path)
            yield
        frames, _snapped, _off, _foff = src.stats()
        result.frames += frames
        err = src.error()
        if err is not None:
            result.errors.append(str(CaptureError(*err)))
            result.unreadable += 1
        done_before += capture_size(path) if progress else 0
        if progress is not None:
            progress(done_before, total, path)
        yield


def _replay_core(
    files: Sequence[str],
    *,
    intel: Intel,
    sinks: Sequence[AlertSink],
    home_net: Iterable[str],
    max_flows: int,
    progress: Progress | None,
) -> RunResult:
    result = RunResult()
    engine = CoreEngine(intel, home_net=home_net, max_flows=max_flows)
    for _ in _core_sources(engine, files, result, progress):
        if engine.detector.suspects:
            for s in engine.take_suspects():
                _emit(network_only(s), sinks, result)
        if engine.flow_ends:
            _emit_flows(engine.take_flow_ends(), sinks, result)
        if engine.leases:
            engine.take_leases()  # nobody is asked, so who owns an address does not matter
    engine.finish()
    for s in engine.take_suspects():
        _emit(network_only(s), sinks, result)
    _emit_flows(engine.take_flow_ends(), sinks, result)
    result.counters = engine.counters()
    return result


def replay(
    paths: Sequence[str],
    *,
    intel: Intel,
    sinks: Sequence[AlertSink],
    home_net: Iterable[str] = DEFAULT_HOME_NET,
    max_flows: int = 150_000,
    progress: Progress | None = None,
    on_error: Callable[[str], None] | None = None,
    prefilter: PrefilterOptions | None = None,
    engine_kind: str = "core",
) -> RunResult:
    """Replay captures through the core; every alert is network-only (no host asked).

    With `prefilter` (Python engine only), each file is read through the C prefilter.
    """
    files = expand_paths(paths)
    if engine_kind == "core" and prefilter is None:
        result = _replay_core(
            files, intel=intel, sinks=sinks, home_net=home_net, max_flows=max_flows,
            progress=progress,
        )
        if on_error is not None:
            for err in result.errors:
                on_error(err)
        return result
    result = RunResult()
    engine = Engine(
        intel,
        home_net=home_net,
        max_flows=max_flows,
        stream_pending=65536 if prefilter is None else 0,
    )
    feed_frames = engine.feed_frames
    detector = engine.detector
    frames = iter(_frames_of(files, result, progress, prefilter))
    islice = itertools.islice
    while feed_frames(islice(frames, BATCH)):
        if detector.suspects:
            for s in engine.take_suspects():
                _emit(network_only(s), sinks, result)
        if engine.flow_ends:
            _emit_flows(engine.take_flow_ends(), sinks, result)
        if engine.leases:
            engine.take_leases()  # nobody is asked, so who owns an address does not matter
    engine.finish()
    for s in engine.take_suspects():
        _emit(network_only(s), sinks, result)
    _emit_flows(engine.take_flow_ends(), sinks, result)
    result.counters = engine.counters()
    if prefilter is not None:
        result.counters.update(prefilter.counters())
    if on_error is not None:
        for err in result.errors:
            on_error(err)
    return result


def _emit(alert: Alert, sinks: Sequence[AlertSink], result: RunResult) -> None:
    result.alerts.append(alert)
    for sink in sinks:
        sink.write(alert)


def _emit_flows(ends: list[FlowEnd], sinks: Sequence[AlertSink], result: RunResult) -> None:
    """Final records of alerted flows, to the sinks that keep flow records (EVE)."""
    result.flow_ends += len(ends)
    for sink in sinks:
        write_flow = getattr(sink, "write_flow", None)
        if write_flow is not None:
            for fe in ends:
                write_flow(fe)


async def replay_confirmed(
    paths: Sequence[str],
    *,
    intel: Intel,
    confirmer: Confirms,
    sinks: Sequence[AlertSink],
    home_net: Iterable[str] = DEFAULT_HOME_NET,
    max_flows: int = 150_000,
    progress: Progress | None = None,
    engine_kind: str = "core",
) -> RunResult:
    """Replay captures and ask each suspect's host before raising its alert.

    Confirmations run concurrently under a TaskGroup while the capture keeps being read;
    the Confirmer itself caps concurrency and falls back to network-only on any trouble,
    so no suspect is lost. Addresses the traffic hands out (DHCP ACKs, DNS answers for names
    the inventory declares) are learned into `confirmer.inventory` before the suspects of
    the same batch are looked up.
    """
    result = RunResult()
    files = expand_paths(paths)
    from netdetect.hosts import dns_learner  # only the confirmed path learns hosts

    names = confirmer.inventory.names()
    import asyncio  # only the confirmed replay needs it: keep it off replay's start-up

    if engine_kind == "core":
        core = CoreEngine(intel, home_net=home_net, max_flows=max_flows)
        if names:
            core.on_dns_answer = dns_learner(names, core.add_lease)
            core.watch_names(names)

        async def one_core(s: Suspect) -> None:
            _emit(await confirmer.confirm(s), sinks, result)

        async with asyncio.TaskGroup() as tg:
            for _ in _core_sources(core, files, result, progress):
                if core.leases:
                    confirmer.inventory.learn_leases(core.take_leases())
                for s in core.take_suspects():
                    tg.create_task(one_core(s))
                if core.flow_ends:
                    _emit_flows(core.take_flow_ends(), sinks, result)
                await asyncio.sleep(0)
            core.finish()
            confirmer.inventory.learn_leases(core.take_leases())
            for s in core.take_suspects():
                tg.create_task(one_core(s))
            _emit_flows(core.take_flow_ends(), sinks, result)
        result.counters = core.counters()
        return result

    engine = Engine(intel, home_net=home_net, max_flows=max_flows)
    if names:
        engine.on_dns_answer = dns_learner(names, engine.add_lease)

    async def one(s: Suspect) -> None:
        _emit(await confirmer.confirm(s), sinks, result)

    async with asyncio.TaskGroup() as tg:
        frames = iter(_frames_of(files, result, progress))
        while engine.feed_frames(itertools.islice(frames, YIELD_EVERY)):
            if engine.leases:
                confirmer.inventory.learn_leases(engine.take_leases())
            if engine.detector.suspects:
                for s in engine.take_suspects():
                    tg.create_task(one(s))
            if engine.flow_ends:
                _emit_flows(engine.take_flow_ends(), sinks, result)
            await asyncio.sleep(0)
        engine.finish()
        confirmer.inventory.learn_leases(engine.take_leases())
        for s in engine.take_suspects():
            tg.create_task(one(s))
        _emit_flows(engine.take_flow_ends(), sinks, result)
    result.counters = engine.counters()
    return result


def open_eve(target: str | None, stdout: IO[str]) -> tuple[EveWriter | None, IO[str] | None]:
    """`-` is stdout; a path is appended to (EVE files are logs)."""
    if target is None:
        return None, None
    if target == "-":
        return EveWriter(stdout), None
    fh = Path(target).open("a", encoding="utf-8")  # noqa: SIM115 - closed by the caller
    return EveWriter(fh), fh


def stderr_line(msg: str) -> None:
    sys.stderr.write(msg + "\n")
