"""Wires capture, the detection core, host confirmation and sinks for `replay`."""

from __future__ import annotations

import collections
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from netdetect import _core
from netdetect.campaign import CampaignBook
from netdetect.core_engine import CoreEngine
from netdetect.correlate import correlate
from netdetect.detect import DEFAULT_HOME_NET
from netdetect.errors import CaptureError
from netdetect.intel import Intel
from netdetect.model import Alert, FlowEnd, Suspect, Verdict
from netdetect.sinks.eve import EveWriter, SinkError, alert_to_eve

if TYPE_CHECKING:
    from netdetect.hosts import Inventory

class Confirms(Protocol):
    """The host-confirmation side as the replay loop sees it (netdetect.confirm.Confirmer)."""

    inventory: Inventory  # what the traffic teaches (DHCP, DNS) is learned into it

    # None: a suspect asked early (below the alert threshold) that the host did not confirm.
    async def settle(self, suspect: Suspect) -> Alert | None: ...


class AlertSink(Protocol):
    # `record`: the alert's EVE record (`alert_to_eve(alert)`), built once for all sinks.
    def write(self, alert: Alert, record: dict[str, Any] | None = None) -> None: ...


class RunResult(msgspec.Struct):
    alerts: list[Alert] = msgspec.field(default_factory=list)
    # Per-file damage, "path: offset N: why".
    errors: list[str] = msgspec.field(default_factory=list)
    unreadable: int = 0  # files that failed to open or had damage
    # Inputs that gave nothing to analyse (an empty directory, a capture without one
    # decodable packet): not damage, but a run that looked at nothing must not read as clean.
    warnings: list[str] = msgspec.field(default_factory=list)
    files: int = 0
    frames: int = 0
    flow_ends: int = 0  # final records of alerted flows written
    counters: dict[str, int] = msgspec.field(default_factory=dict)
    sink_error: str | None = None  # an output failed: the run stopped there
    interrupted: bool = False  # Ctrl-C: what was read so far was flushed
    # Every alert is placed in a campaign (netdetect.campaign) before the sinks see it.
    campaigns: CampaignBook = msgspec.field(default_factory=CampaignBook)

    @property
    def incomplete(self) -> bool:
        return bool(self.unreadable or self.warnings or self.sink_error or self.interrupted)


def network_only(suspect: Suspect) -> Alert:
    """The verdict when no host is asked (replay without --confirm)."""
    from netdetect.correlate import Allowlist

    alert = correlate(suspect, host=None, report=None, reason=None, allowlist=Allowlist())
    if alert.verdict is Verdict.ALLOWED:  # sanctioned.txt: decided from the network side
        return alert
    return msgspec.structs.replace(alert, reasons=("host confirmation not requested",))


class Progress(Protocol):
    def __call__(self, done: int, total: int, path: str) -> None: ...


STDIN_PATHS = ("-", "/dev/stdin")
"""Inputs read as a stream (the compiled core reads any non-seekable source)."""

# Frames per compiled-core call: the core returns early when events pile up.
BATCH_CORE = 65536

def capture_size(path: str) -> int:
    """Size of a capture file on disk in bytes (progress is reported against it)."""
    try:
        return Path(path).stat().st_size
    except FileNotFoundError:
        raise CaptureError(path, 0, "no such file") from None
    except OSError as exc:
        raise CaptureError(path, 0, f"cannot stat: {exc.strerror or exc}") from exc


def expand_inputs(paths: Sequence[str], result: RunResult) -> list[str]:
    """Capture files below `paths`; each bad path is reported and skipped, so one typo or
    one stray file among many inputs does not cost the results of the others."""
    files: list[str] = []
    for path in paths:
        if path in STDIN_PATHS:
            files.append(path)
            continue
        # The core recognises captures by content, as it reads them.
        found, errors = _core.expand_paths([path])
        for err in errors:
            result.errors.append(str(CaptureError(*err)))
            result.unreadable += 1
        if errors and not found:
            continue
        if not found:
            result.warnings.append(f"{path}: no capture files in this directory")
        files.extend(found)
    return files


class _Files(msgspec.Struct):
    """Which file the frames come from, and what each one held; read between batches."""

    paths: list[str]
    result: RunResult
    progress: Progress | None
    current: str | None = None
    # The capture each alerted flow was seen in, for its flow record's pcap_filename. A
    # queue per flow_id: one session replayed from several captures (tunnel variants of one
    # trace) is several flows with one flow_id, each ending after the next one alerted.
    alert_file: dict[int, collections.deque[str]] = msgspec.field(default_factory=dict)

    def through_core(self, engine: CoreEngine) -> Iterator[str]:
        """Run every file through the compiled core, yielding after each batch so the
        caller can take what it produced. Damage ends the file, not the run."""
        result, progress = self.result, self.progress
        sized = [p for p in self.paths if p not in STDIN_PATHS]
        total = sum(capture_size(p) for p in sized) if progress else 0
        done = 0
        for path in self.paths:
            self.current = path
            result.files += 1
            decoded_before = engine.counters().get("decoded", 0)
            try:
                src = engine.open(path)
            except CaptureError as exc:
                result.errors.append(str(exc))
                result.unreadable += 1
                continue
            n = 0
            while k := engine.run(src, BATCH_CORE):
                n += k
                # Counted as read: a run stopped mid-file (a sink that fails, Ctrl-C)
                # still reports the frames it analysed.
                result.frames += k
                if progress is not None:
                    progress(done + src.stats()[3], total, path)
                yield path
            err = src.error()
            if err is not None:
                result.errors.append(str(CaptureError(*err)))
                result.unreadable += 1
            elif n == 0:
                result.warnings.append(f"{path}: no packets in this capture")
            elif engine.counters().get("decoded", 0) == decoded_before:
                result.warnings.append(
                    f"{path}: none of its {n} frames decoded to an IP packet "
                    "(unsupported link type, or snaplen too short?)"
                )
            if progress is not None and path not in STDIN_PATHS:
                done += capture_size(path)
                progress(done, total, path)
            yield path

    def flow_file(self, fe: FlowEnd) -> FlowEnd:
        queue = self.alert_file.get(fe.suspect.flow_id)
        name = self.current
        if queue:
            name = queue.popleft()
            if not queue:
                del self.alert_file[fe.suspect.flow_id]
        return msgspec.structs.replace(fe, pcap_filename=name)


def replay(
    paths: Sequence[str],
    *,
    intel: Intel,
    sinks: Sequence[AlertSink],
    home_net: Iterable[str] = DEFAULT_HOME_NET,
    max_flows: int = 150_000,
    progress: Progress | None = None,
    on_error: Callable[[str], None] | None = None,
) -> RunResult:
    """Replay captures through the core; every alert is network-only (no host asked).

    A sink that fails to write stops the run (`sink_error`); Ctrl-C stops reading and
    flushes what was found so far (`interrupted`). Either way the result is returned.
    """
    result = RunResult(campaigns=CampaignBook(home_net))
    engine = CoreEngine(intel, home_net=home_net, max_flows=max_flows)
    files = _Files(expand_inputs(paths, result), result, progress)

    def emit_suspects() -> None:
        for s in engine.take_suspects():
            _emit(network_only(s), sinks, result, files)

    try:
        try:
            for _path in files.through_core(engine):
                if engine.detector.suspects:
                    emit_suspects()
                if engine.flow_ends:
                    _emit_flows(engine.take_flow_ends(), sinks, result, files)
                if engine.leases:
                    engine.take_leases()  # nobody is asked: who owns an address is moot
        except KeyboardInterrupt:
            result.interrupted = True
        engine.finish()
        emit_suspects()
        _emit_flows(engine.take_flow_ends(), sinks, result, files)
    except SinkError as exc:
        result.sink_error = str(exc)
    result.counters = engine.counters()
    if on_error is not None:
        for err in result.errors:
            on_error(err)
    return result


def _emit(alert: Alert, sinks: Sequence[AlertSink], result: RunResult, files: _Files) -> None:
    if files.current is not None:
        alert = msgspec.structs.replace(alert, pcap_filename=files.current)
        files.alert_file.setdefault(alert.suspect.flow_id, collections.deque()).append(
            files.current)
    record = alert_to_eve(alert)  # once, for the campaign book and every sink
    alert = result.campaigns.tag(alert, record)
    result.alerts.append(alert)
    for sink in sinks:
        sink.write(alert, record)


def _emit_flows(
    ends: list[FlowEnd], sinks: Sequence[AlertSink], result: RunResult, files: _Files
) -> None:
    """Final records of alerted flows, to the sinks that keep flow records (EVE)."""
    result.flow_ends += len(ends)
    for sink in sinks:
        write_flow = getattr(sink, "write_flow", None)
        if write_flow is not None:
            for fe in ends:
                write_flow(files.flow_file(fe))


async def replay_confirmed(
    paths: Sequence[str],
    *,
    intel: Intel,
    confirmer: Confirms,
    sinks: Sequence[AlertSink],
    home_net: Iterable[str] = DEFAULT_HOME_NET,
    max_flows: int = 150_000,
    progress: Progress | None = None,
) -> RunResult:
    """Replay captures and ask each suspect's host before raising its alert.

    Confirmations run concurrently under a TaskGroup while the capture keeps being read;
    the Confirmer itself caps concurrency and falls back to network-only on any trouble,
    so no suspect is lost. Addresses the traffic hands out (DHCP ACKs, DNS answers for names
    the inventory declares) are learned into `confirmer.inventory` before the suspects of
    the same batch are looked up.
    """
    result = RunResult(campaigns=CampaignBook(home_net))
    engine = CoreEngine(intel, home_net=home_net, max_flows=max_flows)
    engine.detector.ask_threshold = getattr(confirmer, "ask_threshold", 0)
    files = _Files(expand_inputs(paths, result), result, progress)
    from netdetect.hosts import dns_learner  # only the confirmed path learns hosts

    names = confirmer.inventory.names()
    if names:
        engine.on_dns_answer = dns_learner(names, engine.add_lease)
        engine.watch_names(names)

    async def one(s: Suspect, path: str | None) -> None:
        alert = await confirmer.settle(s)
        if alert is None:
            return
        saved, files.current = files.current, path
        try:
            _emit(alert, sinks, result, files)
        finally:
            files.current = saved

    import asyncio  # only the confirmed replay needs it: keep it off replay's start-up

    try:
        async with asyncio.TaskGroup() as tg:
            try:
                for _path in files.through_core(engine):
                    if engine.leases:
                        confirmer.inventory.learn_leases(engine.take_leases())
                    for s in engine.take_suspects():
                        tg.create_task(one(s, files.current))
                    if engine.flow_ends:
                        _emit_flows(engine.take_flow_ends(), sinks, result, files)
                    await asyncio.sleep(0)
            except KeyboardInterrupt:
                result.interrupted = True
            engine.finish()
            confirmer.inventory.learn_leases(engine.take_leases())
            for s in engine.take_suspects():
                tg.create_task(one(s, files.current))
            _emit_flows(engine.take_flow_ends(), sinks, result, files)
    except* SinkError as group:
        result.sink_error = str(group.exceptions[0])
    result.counters = engine.counters()
    return result


def open_eve(target: str | None, *, host: str | None = None) -> EveWriter | None:
    """`-` is standard output; a path is appended to (EVE files are logs)."""
    if target is None:
        return None
    if target == "-":
        return EveWriter.to_fd(sys.stdout.fileno(), "<stdout>", host=host)
    return EveWriter.to_file(target, host=host)


def stderr_line(msg: str) -> None:
    sys.stderr.write(msg + "\n")
