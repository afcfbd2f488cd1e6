"""Judgement over the compiled core's events: frames go to `netdetect._core`, which reads,
decodes, tracks flows and sniffs protocols; this module turns the few events it hands up
(only for flows that can still carry evidence) into detector calls, Suspects, flow ends
and host leases. Python never runs per packet here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from netdetect import _core
from netdetect.decoders.events import (
    Certificate,
    ClientHello,
    Event,
    HttpMessage,
    Sv2Message,
)
from netdetect.decoders.jsonrpc import (
    messages_of_body,
    parse_checked_line,
    parse_json_messages,
    peek_method,
)
from netdetect.decoders.stratum import LineDecoder
from netdetect.decoders.webminer import parse_ws_message
from netdetect.detect import (
    COUNTED_METHODS,
    DEFAULT_HOME_NET,
    JOB_METHODS,
    TIMING_MIN_DURATION,
    TIMING_SMALL,
    Detector,
    Inspection,
    TlsShape,
)
from netdetect.errors import CaptureError, DecodeError
from netdetect.intel import Intel
from netdetect.model import FlowEnd, HostLease, Suspect, ip_str

_MAX_LEASES = 4096
# Events of the modes a flow enters after DEEP (WATCH: timing and SV2 frames; SAMPLE):
# once a flow alerted, it has nothing more to learn from them.
_AFTER_DEEP = frozenset({_core.K_TIMING, _core.K_SV2, _core.K_SAMPLE, _core.K_TLS_SHAPE})
_DEFAULT_BUDGET = 128 << 20


class CoreFlow:
    """A flow as judgement sees it (netdetect.model.FlowView), filled from core events."""

    __slots__ = (
        "a_ip",
        "a_port",
        "b_ip",
        "b_port",
        "bytes",
        "closed",
        "first_ts",
        "handle",
        "last_ts",
        "midflow",
        "pkts",
        "proto",
        "vlan",
    )

    def __init__(
        self,
        handle: int,
        proto: int,
        a_ip: bytes,
        a_port: int,
        b_ip: bytes,
        b_port: int,
        first_ts: float,
        midflow: bool,
        vlan: int,
    ) -> None:
        self.handle = handle
        self.proto = proto
        self.a_ip = a_ip
        self.a_port = a_port
        self.b_ip = b_ip
        self.b_port = b_port
        self.first_ts = first_ts
        self.last_ts = first_ts
        self.midflow = midflow
        self.vlan = vlan
        self.closed = 0
        self.pkts = [0, 0]
        self.bytes = [0, 0]


class _State:
    __slots__ = ("flow", "gzip", "ins", "job", "lines", "marks", "names")

    def __init__(self, flow: CoreFlow, names: dict[str, tuple[str, ...]]) -> None:
        self.flow = flow
        # Passive-DNS names of each end at the flow's first payload (only when one of them
        # is under a pool domain), for the remote check at the end of that packet.
        self.names = names
        self.ins: Inspection = Inspection()
        self.lines: list[LineDecoder | None] = [None, None]
        self.gzip: bool = False
        self.marks: int = 0
        # The last job line only counted (after the alert): its difficulty and target
        # are applied before the next message judged in full, and at the end.
        self.job: bytes | None = None

    def names_of(self, ip: str) -> tuple[str, ...]:
        return self.names.get(ip, ())


class CoreEngine:
    """Frames in (files through `run_path`, or in-memory frames), Suspects out."""

    def __init__(
        self,
        intel: Intel,
        *,
        home_net: Iterable[str] = DEFAULT_HOME_NET,
        max_flows: int = 150_000,
        memory_budget: int = _DEFAULT_BUDGET,
        tcp_idle: float = 600.0,
        udp_idle: float = 120.0,
        stream_pending: int = 65536,
        on_dns_answer: Callable[[str, str, int, float], None] | None = None,
    ) -> None:
        if max_flows < 1:
            raise ValueError("max_flows must be at least 1")
        self.intel = intel
        self.core = _core.Core(
            max_flows=max_flows,
            memory_budget=memory_budget,
            tcp_idle=tcp_idle,
            udp_idle=udp_idle,
            stream_pending=stream_pending,
            timing_small=TIMING_SMALL,
            timing_min_duration=TIMING_MIN_DURATION,
        )
        self.core.set_intel(*intel.prefilter())
        # The detector never looks names up itself here: the core hands them over.
        self.detector = Detector(intel, home_net=home_net)
        self._on_dns_answer = on_dns_answer
        self._flows: dict[int, _State] = {}
        self.flow_ends: list[FlowEnd] = []
        self.leases: list[HostLease] = []
        self.leases_dropped = 0
        self.dhcp_leases = 0
        self.dhcp_unusable = 0
        self.line_errors = 0
        self.frames = 0

    # -- configuration ------------------------------------------------------------------

    @property
    def on_dns_answer(self) -> Callable[[str, str, int, float], None] | None:
        return self._on_dns_answer

    @on_dns_answer.setter
    def on_dns_answer(self, hook: Callable[[str, str, int, float], None] | None) -> None:
        self._on_dns_answer = hook

    def watch_names(self, names: Iterable[str]) -> None:
        """DNS answers for these names are handed to `on_dns_answer`."""
        self.core.watch_names(list(names))

    def reload_intel(self, intel: Intel) -> None:
        self.intel = intel
        self.detector.intel = intel
        self.core.set_intel(*intel.prefilter())

    # -- input ----------------------------------------------------------------------------

    def feed_frames(self, frames: Iterable[tuple[float, int, bytes]]) -> int:
        batch = [(ts, lt, bytes(f)) for ts, lt, f in frames]
        if batch:
            self.frames += len(batch)
            self._handle(self.core.feed(batch))
        return len(batch)

    def feed(self, ts: float, linktype: int, frame: bytes) -> None:
        self.feed_frames([(ts, linktype, frame)])

    def open(self, path: str) -> _core.Capture:
        try:
            return _core.Capture(path)
        except OSError as exc:
            # The core raises OSError(path, offset, reason); Python files a three-argument
            # OSError as (errno, strerror, filename).
            if exc.filename is not None:
                path, offset, reason = str(exc.errno), int(str(exc.strerror)), str(exc.filename)
                raise CaptureError(path, offset, reason) from None
            raise

    def run(self, source: _core.Capture, max_frames: int = 65536) -> int:
        """Read up to `max_frames` frames of `source`; 0 when it is exhausted (then
        `source.error()` names any damage)."""
        n, events = self.core.run(source, max_frames)
        self.frames += n
        if events:
            self._handle(events)
        return int(n)

    def run_path(self, path: str) -> int:
        """Analyse a whole capture; raises CaptureError after everything before the damage
        was analysed."""
        src = self.open(path)
        total = 0
        while n := self.run(src):
            total += n
        err = src.error()
        if err is not None:
            raise CaptureError(*err)
        return total

    def run_ring(
        self, ring: _core.Ring, timeout_ms: int, dns: _core.Ring | None = None, *,
        hold_ms: int = 100,
    ) -> int:
        """Read what a live ring holds (waiting up to `timeout_ms` when it is empty), merged
        in capture order with the DNS answers of the side-channel ring (an answer captured
        after every frame read waits, while the ring is quiet, until it is `hold_ms` old);
        returns frames read from `ring`."""
        n, events = self.core.run_ring(ring, timeout_ms, dns, hold_ms=hold_ms)
        self.frames += n
        if events:
            self._handle(events)
        return int(n)

    def finish(self) -> None:
        """End of input: flush every flow (and with it any last evidence)."""
        self._handle(self.core.finish())

    # -- output ---------------------------------------------------------------------------

    def take_suspects(self) -> list[Suspect]:
        out = self.detector.suspects
        self.detector.suspects = []
        return out

    def take_flow_ends(self) -> list[FlowEnd]:
        out = self.flow_ends
        self.flow_ends = []
        return out

    def add_lease(self, lease: HostLease) -> None:
        if len(self.leases) >= _MAX_LEASES:
            self.leases_dropped += 1
            return
        self.leases.append(lease)

    def take_leases(self) -> list[HostLease]:
        out = self.leases
        self.leases = []
        return out

    @property
    def last_ts(self) -> float:
        return float(self.core.last_ts)

    def counters(self) -> dict[str, int]:
        c: dict[str, int] = dict(self.core.counters())
        c.update(
            {
                "alerts": self.detector.alerts,
                "suppressed": self.detector.suppressed,
                "dhcp_leases": self.dhcp_leases,
                "dhcp_unusable": self.dhcp_unusable,
                "leases_dropped": self.leases_dropped,
                "line_errors": self.line_errors,
            }
        )
        return c

    # -- events ---------------------------------------------------------------------------

    def _handle(self, events: Sequence[tuple[int, int, int, float, Any]]) -> None:
        flows = self._flows
        det = self.detector
        for kind, handle, d, ts, body in events:
            if kind == _core.K_OPEN:
                self._open(handle, body)
                continue
            if handle == 0:
                self._global(kind, ts, body)
                continue
            st = flows.get(handle)
            if st is None:
                continue
            if kind == _core.K_END:
                self._end(handle, st, body)
                continue
            flow, ins = st.flow, st.ins
            if ins.alerted and kind in _AFTER_DEEP:
                # The core learns of the alert a batch later; the flow was done with.
                continue
            if kind == _core.K_SETTLE:
                # The end of one packet's events: as the per-packet engine did, the remote
                # check (first time) and then the alert decision.
                if not ins.remote_checked:
                    det.check_remote(flow, ins, ts, st.names_of)
                det.settle(flow, ins, ts)
                self._sync_marks(st)
            elif kind == _core.K_LINES:
                self._framed(st, d, body, ts)
            elif kind == _core.K_STREAM:
                data, midstream = body
                self._lines(st, d, data, ts, midstream)
            elif kind == _core.K_CLIENT_HELLO:
                hello = ClientHello(
                    body[0], tuple(body[1]), body[2], body[3], tuple(body[4]), body[5],
                    body[6], body[7], body[8], tuple(body[9]), tuple(body[10]),
                )
                det.on_event(flow, ins, d, hello, ts)
                if hello.sni and not ins.kinds:
                    # An ordinary site by name: the rest is encrypted and of no interest.
                    self._mark(st, _core.MARK_DONE)
            elif kind == _core.K_HTTP:
                head, raw = body
                msg = HttpMessage(
                    is_request=head[0], method=head[1], path=head[2], status=head[3],
                    host=head[4], user_agent=head[5], content_type=head[6],
                    x_mining_extensions=head[7], x_stratum=head[8], x_long_polling=head[9],
                    authorization_user=head[10], upgrade=head[11],
                    rpc=messages_of_body(raw) if raw else (),
                )
                self._event(st, d, msg, ts)
            elif kind == _core.K_SAMPLE:
                self._sample(st, d, body, ts)
            elif kind == _core.K_CERT:
                det.on_event(flow, ins, d, Certificate(body[0], tuple(body[1]), body[2]), ts)
            elif kind == _core.K_GAP:
                if st.lines[d] is not None:
                    st.lines[d] = self._line_decoder(st, midstream=True)
            elif kind == _core.K_STREAM_CLOSE:
                dec = st.lines[d]
                if dec is not None:
                    for ev in dec.close():
                        self._event(st, d, ev, ts)
            elif kind == _core.K_SV2_SETUP:
                proto, vendor, hardware, firmware, host, port = body
                det.on_event(flow, ins, d, Sv2Message(
                    "setup-connection", 0, proto, vendor, hardware, firmware, host, port
                ), ts)
            elif kind == _core.K_SV2:
                if body[0] == "noise-initiator":
                    ins.client_dir = 0
                det.on_event(flow, ins, d, Sv2Message(body[0], body[1]), ts)
            elif kind == _core.K_TIMING:
                pushes, client_small, nbytes = body
                flow.bytes = [nbytes, 0]
                det.check_timing(flow, ins, pushes, client_small, ts)
            elif kind == _core.K_TLS_SHAPE:
                det.check_tls_shape(flow, ins, TlsShape(*body), ts)
            elif kind == _core.K_PROXY:
                det.proxy(flow, ins, d, body[0], body[1], body[2], ts)
            elif kind == _core.K_WS:
                self._ws(st, d, body[1], ts)
            elif kind == _core.K_POOL_ANSWER and not ins.alerted:
                # Only flows not yet raised learn a late answer (its mark may lag a batch).
                det.pool_answer(flow, ins, body[0], body[1], ts)
                self._sync_marks(st)

    def _open(self, handle: int, body: Any) -> None:
        proto, a_ip, a_port, b_ip, b_port, first_ts, midflow, vlan, names_a, names_b = body
        flow = CoreFlow(handle, proto, a_ip, a_port, b_ip, b_port, first_ts, midflow, vlan)
        names: dict[str, tuple[str, ...]] = {}
        if names_a or names_b:
            names = {ip_str(a_ip): tuple(names_a), ip_str(b_ip): tuple(names_b)}
        self._flows[handle] = _State(flow, names)

    def _global(self, kind: int, ts: float, body: Any) -> None:
        if kind == _core.K_DNS_HOST:
            hook = self._on_dns_answer
            if hook is not None:
                hook(body[0], body[1], body[2], ts)
        elif kind == _core.K_LEASE:
            ip, name, lease_time, server = body
            host = _dhcp_host_id(name)
            if host is None:
                self.dhcp_unusable += 1
                return
            ttl = (
                None if lease_time is None
                else math.inf if lease_time == 0xFFFF_FFFF else float(lease_time)
            )
            self.dhcp_leases += 1
            self.add_lease(HostLease(ip, host, ttl, ts, server=server))
        elif kind == _core.K_LEASE_UNUSABLE:
            self.dhcp_unusable += 1

    def _end(self, handle: int, st: _State, body: Any) -> None:
        reason, closed, last_ts, p0, p1, b0, b1 = body
        del self._flows[handle]
        flow, ins = st.flow, st.ins
        if st.job is not None:
            self._refresh(st)
        flow.last_ts = last_ts
        flow.pkts = [p0, p1]
        flow.bytes = [b0, b1]
        flow.closed = 4 if closed else 0
        if ins.alerted:
            if ins.reported:
                self.flow_ends.append(self._flow_end(st, reason, closed))
            return
        # Evidence that only adds up at the end (bare TLS timing) gets a last look.
        self.detector.settle(flow, ins, last_ts)
        if ins.alerted and ins.reported:
            self.flow_ends.append(self._flow_end(st, reason, closed))

    def _flow_end(self, st: _State, reason: str, closed: bool) -> FlowEnd:
        flow = st.flow
        s = self.detector.suspect(flow, st.ins, flow.last_ts)
        up = self.detector.miner_side(flow, st.ins)
        return FlowEnd(
            suspect=s,
            reason=reason,
            closed=closed,
            pkts_to_pool=flow.pkts[up],
            pkts_to_miner=flow.pkts[1 - up],
            bytes_to_pool=flow.bytes[up],
            bytes_to_miner=flow.bytes[1 - up],
        )

    def _mark(self, st: _State, bit: int) -> None:
        if not st.marks & bit:
            st.marks |= bit
            self.core.mark(st.flow.handle, bit)

    def _sync_marks(self, st: _State) -> None:
        ins = st.ins
        if ins.alerted and not st.marks & _core.MARK_ALERTED:
            self._mark(st, _core.MARK_ALERTED)
        if ins.keep and not st.marks & _core.MARK_KEEP:
            self._mark(st, _core.MARK_KEEP)

    def _line_decoder(self, st: _State, *, midstream: bool, gzip: bool = False) -> LineDecoder:
        dec = LineDecoder(midstream=midstream)
        if st.gzip or gzip:
            dec.switch_encoding("gzip")
        return dec

    def _framed(self, st: _State, d: int, lines: list[bytes], ts: float) -> None:
        """Complete JSON lines the core framed and checked."""
        ins = st.ins
        for line in lines:
            if ins.alerted:
                method = peek_method(line)
                if method in COUNTED_METHODS and method in ins.methods:
                    self.detector.count_repeat(ins, method)
                    if method in JOB_METHODS:
                        st.job = line
                    continue
            try:
                msgs = parse_checked_line(line)
            except DecodeError:
                self.line_errors += 1
                continue
            if st.job is not None:
                self._refresh(st)
            for ev in msgs:
                self._event(st, d, ev, ts)

    def _refresh(self, st: _State) -> None:
        line, st.job = st.job, None
        if line is None:
            return
        try:
            msgs = parse_checked_line(line)
        except DecodeError:
            return
        for ev in msgs:
            self.detector.refresh(st.ins, ev)

    def _lines(self, st: _State, d: int, data: bytes, ts: float, midstream: bool) -> None:
        dec = st.lines[d]
        if dec is None:
            if st.marks & (_core.MARK_JSON_DEAD0 << d):
                return
            # The core hands bytes up raw once a direction switched to gzip members.
            dec = st.lines[d] = self._line_decoder(
                st, midstream=midstream, gzip=data.startswith(b"\x1f\x8b")
            )
        try:
            events = dec.feed(data)
        except DecodeError:
            self.line_errors += 1
            st.lines[d] = None
            self._mark(st, _core.MARK_JSON_DEAD0 << d)
            return
        for ev in events:
            self._event(st, d, ev, ts)

    def _event(self, st: _State, d: int, ev: Event, ts: float) -> None:
        ins = st.ins
        self.detector.on_event(st.flow, ins, d, ev, ts)
        if ins.gzip and not st.gzip:
            st.gzip = True
            for dec in st.lines:
                if dec is not None:
                    dec.switch_encoding("gzip")

    def _ws(self, st: _State, d: int, data: bytes, ts: float) -> None:
        try:
            msgs = parse_ws_message(data)
        except DecodeError:
            self.line_errors += 1
            return
        for msg in msgs:
            self.detector.websocket_message(st.flow, st.ins, d, msg, ts)

    def _sample(self, st: _State, d: int, data: bytes, ts: float) -> None:
        for raw in data.split(b"\n"):
            line = raw.strip()
            start = line.find(b"{")
            if start < 0 or not line.endswith((b"}", b"]")):
                continue
            try:
                msgs = parse_json_messages(line[start:])
            except DecodeError:
                continue
            for msg in msgs:
                self.detector.on_event(st.flow, st.ins, d, msg, ts)


def _dhcp_host_id(name: str) -> str | None:
    """The host id a DHCP client name stands for: its first label, lower-cased; None when
    that is not a usable id (it becomes an MQTT topic level and a certificate CN)."""
    from netdetect.agent.topics import valid_id  # leases matter to confirmation only

    host = name.split(".", 1)[0].lower()
    return host if valid_id(host) else None
