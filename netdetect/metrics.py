"""Sensor counters as Prometheus metrics and as the periodic stats log line."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from prometheus_client import start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

# Worker counters (engine + kernel ring) exported per worker: name -> (metric, help, gauge?).
WORKER_METRICS: dict[str, tuple[str, str, bool]] = {
    "kernel_packets": ("netdetect_kernel_packets", (
        "frames the kernel offered the ring, dropped ones included"), False),
    "kernel_drops": ("netdetect_kernel_drops", "frames the kernel dropped: the ring was full",
                     False),
    "kernel_freezes": ("netdetect_kernel_queue_freezes", (
        "times the ring ran out of free blocks"), False),
    # With several workers each reads every DNS answer through a side channel of its own.
    "kernel_dns_drops": ("netdetect_kernel_dns_drops", (
        "DNS answers the kernel dropped from the worker's side channel (its ring was full): "
        "their names are missing from the worker's passive DNS"), False),
    "dns_side_truncated": ("netdetect_dns_side_truncated", (
        "DNS answers in frames longer than a side channel slot, cut to it"), False),
    "dns_side_forced": ("netdetect_dns_side_forced", (
        "DNS answers fed ahead of frames captured before them: half the side channel was "
        "waiting (the worker is far behind)"), False),
    "packets": ("netdetect_packets", "frames processed by the detection core", False),
    "decoded": ("netdetect_packets_decoded", "frames decoded to an IP packet", False),
    "non_ip": ("netdetect_packets_non_ip", "frames without IPv4/IPv6", False),
    "truncated": ("netdetect_packets_truncated", "frames too short for a needed header", False),
    "malformed": ("netdetect_packets_malformed", "frames with self-contradicting headers",
                  False),
    "flows_active": ("netdetect_flows_active", "flows in the flow table", True),
    "flows_created": ("netdetect_flows_created", "flows opened", False),
    "flows_expired": ("netdetect_flows_expired", "flows closed or idle-expired", False),
    "flows_evicted": ("netdetect_flow_evictions", "flows evicted because the table was full",
                      False),
    "decode_errors": ("netdetect_decode_errors", "decoder errors (protocol mismatch, damage)",
                      False),
    "dns_messages": ("netdetect_dns_messages", "DNS messages decoded", False),
    "dhcp_messages": ("netdetect_dhcp_messages", "DHCP messages decoded", False),
    "dhcp_leases": ("netdetect_dhcp_leases", "DHCP ACKs that tied an address to a host name",
                    False),
    "alerts": ("netdetect_suspects", "suspect flows raised by the detection core", False),
    "worker_errors": ("netdetect_worker_errors", "frames whose processing raised (bugs)",
                      False),
    "signature_generation": ("netdetect_signature_generation", "signature reloads applied",
                             True),
}


# Seconds from a suspect to its host's verdict. The agent samples CPU for `cpu_window` (2 s by
# default) and the sensor gives up at `confirm.timeout`: the buckets resolve both ends.
CONFIRM_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 5.0, 10.0, 30.0)


def build_info() -> GaugeMetricFamily:
    """netdetect_build_info{version, python}: 1, to join versions onto any other series."""
    import platform

    from netdetect import __version__

    fam = GaugeMetricFamily("netdetect_build_info", "netdetect version and Python running it",
                            labels=["version", "python"])
    fam.add_metric([__version__, platform.python_version()], 1)
    return fam


class SensorMetrics(Collector):
    """Thread-safe store of the latest counters; collected on scrape, never per packet.

    Workers send cumulative snapshots, so a snapshot replaces the worker's previous one and a
    restart of the scrape never double-counts.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._workers: dict[int, dict[str, int]] = {}
        self._alerts: Counter[str] = Counter()
        self._confirm: dict[str, int] = {}
        self._gauges: dict[str, float] = {}
        self._lost: Counter[tuple[str, str]] = Counter()
        self._confirm_buckets = [0] * (len(CONFIRM_BUCKETS) + 1)  # the last is +Inf
        self._confirm_sum = 0.0
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    # --- updates ------------------------------------------------------------------------------

    def update_worker(self, worker: int, counters: Mapping[str, int]) -> None:
        with self._lock:
            self._workers[worker] = dict(counters)

    def count_alert(self, verdict: str) -> None:
        with self._lock:
            self._alerts[verdict] += 1

    def count_lost(self, sink: str, record: str) -> None:
        """A record a sink failed to write (full disk, broker gone with a full buffer)."""
        with self._lock:
            self._lost[sink, record] += 1

    def observe_confirmation(self, seconds: float) -> None:
        """How long one suspect waited for its host's answer (or the timeout)."""
        i = next((n for n, b in enumerate(CONFIRM_BUCKETS) if seconds <= b),
                 len(CONFIRM_BUCKETS))
        with self._lock:
            self._confirm_buckets[i] += 1
            self._confirm_sum += seconds

    def lost(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self._lost)

    def set_confirm(self, counters: Mapping[str, int]) -> None:
        with self._lock:
            self._confirm = dict(counters)

    def set_gauge(self, name: str, value: float) -> None:
        with self._lock:
            self._gauges[name] = value

    # --- reads --------------------------------------------------------------------------------

    def totals(self) -> dict[str, int]:
        """Every worker counter summed over the workers."""
        out: Counter[str] = Counter()
        with self._lock:
            for counters in self._workers.values():
                out.update(counters)
        return dict(out)

    def per_worker(self) -> dict[int, dict[str, int]]:
        with self._lock:
            return {w: dict(c) for w, c in self._workers.items()}

    def alerts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._alerts)

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            workers = {w: dict(c) for w, c in self._workers.items()}
            alerts = dict(self._alerts)
            confirm = dict(self._confirm)
            gauges = dict(self._gauges)
            lost = dict(self._lost)
            buckets = list(self._confirm_buckets)
            confirm_sum = self._confirm_sum
        yield build_info()
        cumulative, running = [], 0
        for bound, n in zip((*map(str, CONFIRM_BUCKETS), "+Inf"), buckets, strict=True):
            running += n
            cumulative.append((bound, running))
        yield HistogramMetricFamily(
            "netdetect_confirmation_seconds",
            "time from a suspect flow to its host's verdict (answer, busy or timeout)",
            buckets=cumulative, sum_value=confirm_sum)
        for key, (name, doc, gauge) in WORKER_METRICS.items():
            fam: CounterMetricFamily | GaugeMetricFamily
            if gauge:
                fam = GaugeMetricFamily(name, doc, labels=["worker"])
            else:
                fam = CounterMetricFamily(name, doc, labels=["worker"])
            for w in sorted(workers):
                fam.add_metric([str(w)], workers[w].get(key, 0))
            yield fam
        af = CounterMetricFamily("netdetect_alerts", "alerts emitted to the sinks, by verdict",
                                 labels=["verdict"])
        for verdict, n in sorted(alerts.items()):
            af.add_metric([verdict], n)
        yield af
        cf = CounterMetricFamily("netdetect_confirmations",
                                 "host confirmation outcomes, by kind", labels=["kind"])
        for kind, n in sorted(confirm.items()):
            cf.add_metric([kind], n)
        yield cf
        lf = CounterMetricFamily("netdetect_sink_records_lost",
                                 "records a sink failed to write, by sink and record kind",
                                 labels=["sink", "record"])
        for (sink, record), n in sorted(lost.items()):
            lf.add_metric([sink, record], n)
        yield lf
        for gname, value in sorted(gauges.items()):
            yield GaugeMetricFamily(f"netdetect_{gname}", gname.replace("_", " "), value=value)

    # --- exposure -----------------------------------------------------------------------------

    def serve(self, port: int, addr: str = "127.0.0.1") -> int:
        """Serve /metrics on addr:port in a daemon thread; returns the bound port."""
        self._server, self._thread = start_http_server(port, addr=addr, registry=self.registry)
        return int(self._server.server_port)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class AgentMetrics(Collector):
    """The agent's counters (answered, refused by reason, busy ...) for Prometheus, read
    from the agent at scrape time: the same numbers its retained status carries."""

    def __init__(self, counters: Callable[[], Mapping[str, int]]) -> None:
        self._counters = counters
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        self._server: WSGIServer | None = None

    def collect(self) -> Iterable[Metric]:
        yield build_info()
        fam = CounterMetricFamily("netdetect_agent_queries",
                                  "queries received, answered and refused, by outcome",
                                  labels=["outcome"])
        for outcome, n in sorted(self._counters().items()):
            fam.add_metric([outcome], n)
        yield fam

    def serve(self, port: int, addr: str = "127.0.0.1") -> int:
        self._server, _ = start_http_server(port, addr=addr, registry=self.registry)
        return int(self._server.server_port)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def stats_line(totals: Mapping[str, int], alerts: Mapping[str, int], *, pending: int,
               queue: int, elapsed: float, prev_packets: int) -> str:
    """The periodic log line: rates over the last interval, totals since start."""
    pkts = totals.get("packets", 0)
    rate = (pkts - prev_packets) / elapsed if elapsed > 0 else 0.0
    return (
        f"stats: packets={pkts} ({rate:.0f}/s) kernel_packets={totals.get('kernel_packets', 0)} "
        f"kernel_drops={totals.get('kernel_drops', 0)} "
        f"flows={totals.get('flows_active', 0)} evicted={totals.get('flows_evicted', 0)} "
        f"decode_errors={totals.get('decode_errors', 0)} suspects={totals.get('alerts', 0)} "
        f"alerts={sum(alerts.values())} confirm_pending={pending} queue={queue}"
    )
