"""Type stubs of the compiled core (src/python.rs). Events are tuples
(kind, handle, direction, ts, body); the body's shape per kind is documented in
src/engine.rs (`Body`) and read in netdetect/core_engine.py."""

from typing import Any

__version__: str

K_OPEN: int
K_CLIENT_HELLO: int
K_CERT: int
K_HTTP: int
K_STREAM: int
K_LINES: int
K_GAP: int
K_STREAM_CLOSE: int
K_SAMPLE: int
K_SV2_SETUP: int
K_SV2: int
K_TIMING: int
K_POOL_ANSWER: int
K_DNS_HOST: int
K_LEASE: int
K_LEASE_UNUSABLE: int
K_END: int
K_SETTLE: int
K_PROXY: int
K_WS: int
K_TLS_SHAPE: int

MARK_ALERTED: int
MARK_KEEP: int
MARK_DONE: int
MARK_JSON_DEAD0: int
MARK_JSON_DEAD1: int

Event = tuple[int, int, int, float, Any]

class Capture:
    def __init__(self, path: str) -> None: ...
    def stats(self) -> tuple[int, int, int, int]: ...
    def error(self) -> tuple[str, int, str] | None: ...

class Ring:
    def __init__(self, fd: int, block_size: int, block_count: int, linktype: int) -> None: ...
    @property
    def bad_frames(self) -> int: ...

class Core:
    def __init__(
        self,
        *,
        max_flows: int = ...,
        memory_budget: int = ...,
        tcp_idle: float = ...,
        udp_idle: float = ...,
        closed_linger: float = ...,
        active_timeout: float = ...,
        sweep_every: float = ...,
        stream_budget: int = ...,
        stream_pending: int = ...,
        pdns_budget: int = ...,
        timing_small: int = ...,
        timing_min_duration: float = ...,
    ) -> None: ...
    def set_intel(
        self, domains: list[str], ja3: list[str], ja4: list[str], agents: list[str]
    ) -> None: ...
    def watch_names(self, names: list[str]) -> None: ...
    def feed(self, frames: list[tuple[float, int, bytes]]) -> list[Event]: ...
    def run(
        self, source: Capture, max_frames: int = ..., max_events: int = ...
    ) -> tuple[int, list[Event]]: ...
    def run_ring(
        self, ring: Ring, timeout_ms: int, dns: Ring | None = ..., max_frames: int = ...
    ) -> tuple[int, list[Event]]: ...
    def finish(self) -> list[Event]: ...
    def mark(self, handle: int, marks: int) -> None: ...
    def flow_counters(self, handle: int) -> tuple[int, int, int, int, float] | None: ...
    def pdns_names(self, ip: str, now: float) -> list[str]: ...
    def counters(self) -> dict[str, int]: ...
    @property
    def last_ts(self) -> float: ...
def last_panic() -> str | None: ...
