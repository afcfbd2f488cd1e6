"""The host agent: answers signed sensor queries over MQTT with a read-only HostReport.

It runs nothing a message names. A query is answered only when it is signed by a trusted
sensor key, fresh, meant for this host, not a replay, and asks for an answer inside
``netdetect/v1/sensors/+/+/reports/host:<this host>``; every refusal is counted by reason, and
the counters travel in the retained status message so an operator (or a test) can read them.

A query beyond `max_concurrent` reports in progress is not queued: it gets a small "busy"
report at once, so the sensor falls back to a network-only verdict instead of waiting out
its timeout. While a report waits for its CPU window it holds no thread (see
netdetect.agent.report.ReportBuilder), so in-flight reports cost memory, not workers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import secrets
import signal
import sys
import time
from collections import Counter, OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import aiomqtt
import msgspec

from netdetect import __version__
from netdetect.agent.protocol import (
    Backoff,
    Rejected,
    Status,
    encode_report,
    encode_status,
    key_id,
    load_public_key,
    open_query,
    publish_properties,
    refused,
    tls_context,
)
from netdetect.agent.schema import BUSY_PREFIX, SCHEMA_VERSION, HostQuery, HostReport
from netdetect.agent.topics import query_topic, response_topic_ok, status_topic, valid_nonce
from netdetect.config import AgentConfig, load_agent_config
from netdetect.errors import AgentError, ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

log = logging.getLogger("netdetect.agent")

WORK_THREADS = 2  # report work is short and GIL-bound; waiting for CPU windows takes no thread
MAX_BUSY_REPLIES = 256  # "busy" answers being published at once; beyond, counted and dropped
INCOMING_QUEUE = 256  # messages waiting to be checked; beyond, counted and dropped unread
LOG_INTERVAL = 10.0  # seconds: at most one log line per kind of refusal/shedding per interval


class RateLimitedLog:
    """Counted, rate-limited warnings: a flood of refused or shed queries must not become a
    flood of log lines. The first event of a kind (after a quiet interval) is logged in full;
    the rest are only counted (by reason), and one line per interval says how many there
    were. `flush()` (called periodically) writes a count left over when a flood stops.
    `suppressed` counts the events that got no line of their own.
    """

    def __init__(self, logger: logging.Logger, interval: float = LOG_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.interval = interval
        self.clock = clock
        self._last: dict[str, float] = {}  # kind -> when a line was last written
        self._held: dict[str, Counter[str]] = {}  # kind -> reason -> events not yet logged
        self.suppressed = 0  # events that were counted but got no line of their own

    def __call__(self, kind: str, reason: str, msg: str, *args: object) -> None:
        now = self.clock()
        last = self._last.get(kind)
        if last is None or (now - last >= self.interval and not self._held.get(kind)):
            # The first of a kind, or the first after a quiet interval: in full.
            self.logger.warning(msg, *args)
            self._last[kind] = now
            return
        self._held.setdefault(kind, Counter())[reason] += 1
        if now - last >= self.interval:
            # Still flooding: this event joins the interval's one counted line.
            self._emit(kind, now)
            self._last[kind] = now
        else:
            self.suppressed += 1

    def flush(self) -> None:
        now = self.clock()
        for kind, last in list(self._last.items()):
            if now - last >= self.interval and self._held.get(kind):
                self._emit(kind, now)
                self._last[kind] = now

    def _emit(self, kind: str, now: float) -> None:
        held = self._held.pop(kind, None)
        if not held:
            return
        since = now - self._last.get(kind, now)
        by_reason = ", ".join(f"{r}={n}" for r, n in held.most_common(8))
        self.logger.warning("%s: %d more in the last %.0fs (%s)", kind, sum(held.values()),
                            since, by_reason)


def shedding_queue(counters: Counter[str], note: RateLimitedLog) -> type[asyncio.Queue[Any]]:
    """The incoming-message queue class for aiomqtt: when full, a message is counted
    (``shed-queue-full``) and dropped before any work is spent on it, with no log line of its
    own (aiomqtt would log one WARNING per message)."""

    class SheddingQueue(asyncio.Queue[Any]):
        def put_nowait(self, item: Any) -> None:
            if self.full():
                counters["shed-queue-full"] += 1
                note("incoming queue full, messages dropped unread", "queue-full",
                     "incoming queue full (%d messages): dropping messages unread",
                     self.maxsize)
                return
            super().put_nowait(item)

    return SheddingQueue


class Collector(Protocol):
    """Builds the report for one query; blocking, read-only (netdetect.agent.report)."""

    def __call__(self, query: HostQuery, *, host_id: str, root: str = "/") -> HostReport: ...


class Pending(Protocol):
    """A report whose per-query work is done; ready to finish at time.monotonic() >= ready_at."""

    @property
    def ready_at(self) -> float: ...

    def finish(self) -> HostReport: ...


@runtime_checkable
class PhasedCollector(Protocol):
    """A collector that can hand back control while its CPU window runs."""

    def __call__(self, query: HostQuery, *, host_id: str, root: str = "/") -> HostReport: ...

    def begin(self, query: HostQuery, *, host_id: str, root: str = "/") -> Pending: ...


def busy_report(query: HostQuery, host_id: str, in_flight: int) -> HostReport:
    """The immediate answer to a query the agent has no capacity for."""
    return _failed_report(query, host_id,
                          f"{BUSY_PREFIX} agent at capacity ({in_flight} reports in progress)")


_nonce_file_decoder = msgspec.json.Decoder(list[tuple[str, float]])


def nonce_state_path(config: AgentConfig) -> Path | None:
    """Where this agent keeps its answered nonces; per host id, as agents may share a dir."""
    if config.state_dir is None:
        return None
    return config.state_dir / f"{config.host_id}.nonces.json"


class Gate:
    """Decides which queries to answer; owns the replay cache and the refusal counters.

    With a `state` path the replay cache outlives the process: an answered query replayed
    after a restart (within its expiry) is still refused. The file is rewritten, atomically,
    before the answer goes out, so a crash cannot lose a nonce that was answered.
    """

    def __init__(
        self,
        config: AgentConfig,
        trusted: dict[str, Ed25519PublicKey],
        clock: Callable[[], float] = time.time,
        state: Path | None = None,
    ) -> None:
        self.config = config
        self.trusted = trusted
        self.clock = clock
        self.counters: Counter[str] = Counter()
        self.note = RateLimitedLog(log, config.log_interval)
        self._nonces: OrderedDict[str, float] = OrderedDict()  # nonce -> when to forget it
        self._state = state
        # Set when the remembered nonces could not be read: any query issued before this
        # moment might have been answered already, so none of them is.
        self._not_before: float | None = None
        if state is not None:
            self._load(state)

    def _load(self, path: Path) -> None:
        now = self.clock()
        limit = self.config.nonce_cache * 64 + 4096  # ~50 bytes an entry; more is not ours
        try:
            with path.open("rb") as f:
                raw = f.read(limit + 1)
            entries = _nonce_file_decoder.decode(raw) if len(raw) <= limit else None
        except FileNotFoundError:
            return
        except (OSError, msgspec.DecodeError) as exc:
            self._unreadable(path, str(exc), now)
            return
        if entries is None:
            self._unreadable(path, f"over {limit} bytes", now)
            return
        live = sorted((when, n) for n, when in entries if when >= now and valid_nonce(n))
        for when, nonce in live[-self.config.nonce_cache:]:
            self._nonces[nonce] = when

    def _unreadable(self, path: Path, why: str, now: float) -> None:
        self._not_before = now
        self.counters["nonce-state-unreadable"] += 1
        log.warning("answered nonces in %s unreadable (%s): refusing queries issued before now",
                    path, why)

    def _save(self) -> None:
        path = self._state
        if path is None:
            return
        raw = msgspec.json.encode(list(self._nonces.items()))
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            try:
                os.write(fd, raw)
                os.fsync(fd)
            finally:
                os.close(fd)
            tmp.replace(path)
        except OSError as exc:
            # Answering anyway: refusing every query on a full disk would let a miner (any
            # user who can fill the filesystem) blind its own confirmation. The cost is a
            # replay window after a restart, for queries answered while saving failed and
            # only until they expire (max_query_ttl); the in-memory cache still refuses
            # replays meanwhile, and the next successful save writes every live nonce.
            self.counters["nonce-state-failed"] += 1
            self.note("answered nonces not saved", type(exc).__name__,
                      "answered nonces not saved to %s: %s (queries are still answered; a "
                      "restart before the next successful save forgets them)", path, exc)
            with contextlib.suppress(OSError):
                tmp.unlink()

    def admit(self, payload: bytes, response_topic: str | None,
              correlation: bytes | None) -> HostQuery:
        """The query when it may be answered; raise Rejected (already counted) otherwise."""
        self.counters["received"] += 1
        try:
            query = self._check(payload, response_topic, correlation)
        except Rejected as exc:
            self.counters[exc.reason] += 1
            raise
        return query

    def _check(self, payload: bytes, response_topic: str | None,
               correlation: bytes | None) -> HostQuery:
        cfg = self.config
        query = open_query(payload, response_topic, self.trusted)
        if query.host_id != cfg.host_id:
            raise Rejected("wrong-host", query.host_id[:64])
        now = self.clock()
        if query.expires_at < query.issued_at:
            raise Rejected("malformed", "expires before it was issued")
        if now > query.expires_at + cfg.clock_skew:
            raise Rejected("expired", f"{now - query.expires_at:.1f}s ago")
        if query.issued_at > now + cfg.clock_skew:
            raise Rejected("future", f"issued {query.issued_at - now:.1f}s ahead")
        if query.expires_at - query.issued_at > cfg.max_query_ttl:
            raise Rejected("ttl-too-long")
        assert response_topic is not None  # open_query refuses a missing one
        if not response_topic_ok(response_topic, cfg.host_id):
            raise Rejected("bad-response-topic", response_topic[:200])
        if correlation != query.nonce.encode():
            raise Rejected("bad-correlation")
        if self._not_before is not None and query.issued_at <= self._not_before:
            raise Rejected("issued-before-start")
        self._remember(query.nonce, query.expires_at + cfg.clock_skew, now)
        self._save()
        return query

    def _remember(self, nonce: str, forget_at: float, now: float) -> None:
        if nonce in self._nonces:
            raise Rejected("replayed", nonce)
        # Entries mostly arrive in expiry order, so trimming from the front is usually enough;
        # a full sweep runs only when the cache is full.
        while self._nonces:
            first, when = next(iter(self._nonces.items()))
            if when >= now:
                break
            del self._nonces[first]
        if len(self._nonces) >= self.config.nonce_cache:
            for key in [k for k, when in self._nonces.items() if when < now]:
                del self._nonces[key]
            if len(self._nonces) >= self.config.nonce_cache:
                # Failing closed: forgetting a live nonce would let its query be replayed.
                raise Rejected("replay-cache-full")
        self._nonces[nonce] = forget_at

    def bounded(self, query: HostQuery) -> HostQuery:
        """The query with its cost capped by this agent's limits, whatever the sensor asked."""
        cfg = self.config
        return msgspec.structs.replace(
            query,
            cpu_window=min(max(query.cpu_window, 0.0), cfg.max_cpu_window),
            top_n=min(max(query.top_n, 0), cfg.max_top_n),
        )


def _default_collector() -> Collector:
    # Imported on first use: the collectors pull in psutil and friends, which tests of the
    # protocol side (and `--help`) do not need.
    from netdetect.agent.report import default_builder

    return default_builder()


def _failed_report(query: HostQuery, host_id: str, why: str) -> HostReport:
    return HostReport(
        v=SCHEMA_VERSION,
        host_id=host_id,
        nonce=query.nonce,
        generated_at=time.time(),
        found=False,
        errors=[why[:500]],
    )


class Agent:
    """One agent process: a connection loop around a Gate and a bounded report executor."""

    def __init__(self, config: AgentConfig, collector: Collector,
                 trusted: dict[str, Ed25519PublicKey]) -> None:
        self.config = config
        self.collector = collector
        self.gate = Gate(config, trusted, state=nonce_state_path(config))
        self.stop = asyncio.Event()
        # A blocking collector sleeps through its window in a thread, so it needs one per
        # report; a phased one only needs threads for the work.
        self._phased = collector if isinstance(collector, PhasedCollector) else None
        workers = (config.max_concurrent if self._phased is None
                   else min(config.max_concurrent, WORK_THREADS))
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="report")
        self._in_flight = 0
        self._busy_replies = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.note = self.gate.note

    def _status(self, state: str, reason: str = "") -> bytes:
        return encode_status(Status(
            state=state,
            host_id=self.config.host_id,
            ts=time.time(),
            version=__version__,
            pid=os.getpid(),
            reason=reason,
            counters=self._counters(),
        ))

    def _counters(self) -> dict[str, int]:
        counters = dict(self.gate.counters)
        # CPU windows opened: queries in flight together share one (report.SharedSampler).
        sampler = getattr(self.collector, "sampler", None)
        opened = getattr(sampler, "opened", None)
        if isinstance(opened, int):
            counters["cpu-windows"] = opened
        return counters

    async def run(self) -> None:
        backoff = Backoff(self.config.mqtt.reconnect_min, self.config.mqtt.reconnect_max)
        try:
            while not self.stop.is_set():
                try:
                    await self._session(backoff)
                except (aiomqtt.MqttError, AgentError, OSError) as exc:
                    delay = backoff.next()
                    log.warning("broker connection lost (%s); retrying in %.1fs", exc, delay)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.stop.wait(), delay)
        finally:
            for task in list(self._tasks):
                task.cancel()
            self._executor.shutdown(wait=False, cancel_futures=True)

    async def _session(self, backoff: Backoff) -> None:
        cfg = self.config
        will = aiomqtt.Will(
            topic=status_topic(cfg.host_id),
            payload=self._status("offline", "connection lost"),
            qos=1,
            retain=True,
        )
        client = aiomqtt.Client(
            cfg.mqtt.host,
            cfg.mqtt.port,
            # Random per connection: Mosquitto lets any client take over a connected client
            # id, so a guessable one would let another certificate knock this agent off.
            identifier=f"{cfg.host_id}-{secrets.token_hex(8)}",
            protocol=aiomqtt.ProtocolVersion.V5,
            will=will,
            clean_start=True,
            keepalive=cfg.mqtt.keepalive,
            timeout=cfg.mqtt.connect_timeout,
            tls_context=tls_context(cfg.mqtt),
            queue_type=shedding_queue(self.gate.counters, self.note),
            max_queued_incoming_messages=INCOMING_QUEUE,
        )
        async with client:
            codes = await client.subscribe(query_topic(cfg.host_id), qos=1)
            if any(refused(code) for code in codes):
                raise AgentError(f"broker refused the query subscription: {codes}")
            await client.publish(status_topic(cfg.host_id), self._status("online"), qos=1,
                                 retain=True)
            backoff.reset()
            log.info("connected to %s:%d as %s", cfg.mqtt.host, cfg.mqtt.port, cfg.host_id)
            stopper = asyncio.create_task(self.stop.wait())
            heartbeat = asyncio.create_task(self._heartbeat(client))
            try:
                messages = aiter(client.messages)
                while not self.stop.is_set():
                    nxt = asyncio.ensure_future(anext(messages))
                    done, _ = await asyncio.wait({nxt, stopper},
                                                 return_when=asyncio.FIRST_COMPLETED)
                    if nxt not in done:
                        nxt.cancel()
                        with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                            await nxt
                        break
                    self._on_message(client, nxt.result())
            finally:
                stopper.cancel()
                heartbeat.cancel()
            # A clean DISCONNECT suppresses the will, so say goodbye explicitly.
            await client.publish(status_topic(cfg.host_id), self._status("offline", "shutdown"),
                                 qos=1, retain=True, timeout=5)
            log.info("stopped; status offline published")

    async def _heartbeat(self, client: aiomqtt.Client) -> None:
        last: dict[str, int] = {}
        next_status = time.monotonic() + self.config.status_interval
        while True:
            await asyncio.sleep(min(self.config.status_interval, self.note.interval))
            self.note.flush()
            if time.monotonic() < next_status:
                continue
            next_status = time.monotonic() + self.config.status_interval
            current = dict(self.gate.counters)
            if current != last:
                last = current
                with contextlib.suppress(aiomqtt.MqttError):
                    await client.publish(status_topic(self.config.host_id),
                                         self._status("online"), qos=1, retain=True)

    def _on_message(self, client: aiomqtt.Client, message: aiomqtt.Message) -> None:
        props = message.properties
        response = getattr(props, "ResponseTopic", None)
        correlation = getattr(props, "CorrelationData", None)
        payload = message.payload if isinstance(message.payload, bytes) else b""
        try:
            query = self.gate.admit(payload, response, correlation)
        except Rejected as exc:
            self.note("queries refused", exc.reason, "query refused: %s", exc)
            return
        assert response is not None
        if self._in_flight >= self.config.max_concurrent:
            # Dropped, not queued: a flood must not turn into minutes of CPU sampling. The
            # sensor is told at once, so it does not wait out its timeout either.
            self.gate.counters["busy"] += 1
            if self._busy_replies >= MAX_BUSY_REPLIES:
                self.gate.counters["busy-unanswered"] += 1
                self.note("queries beyond capacity", "unanswered",
                          "query %s dropped unanswered: %d reports and %d busy answers in "
                          "progress", query.nonce, self._in_flight, self._busy_replies)
                return
            self.note("queries beyond capacity", "busy",
                      "query %s answered busy: %d reports already being built", query.nonce,
                      self._in_flight)
            self._busy_replies += 1
            task = asyncio.create_task(self._answer_busy(client, query, response))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        self._in_flight += 1
        task = asyncio.create_task(self._answer(client, query, response))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, client: aiomqtt.Client, query: HostQuery, response: str) -> None:
        cfg = self.config
        started = time.monotonic()
        try:
            bounded = self.gate.bounded(query)
            try:
                report = await self._collect(bounded)
            # A collector bug must still get the sensor an answer rather than a timeout.
            except Exception as exc:
                self.gate.counters["collector-failed"] += 1
                log.exception("collector failed for query %s", query.nonce)
                report = _failed_report(query, cfg.host_id, f"collector failed: {exc!r}")
            if report.host_id != cfg.host_id or report.nonce != query.nonce:
                self.gate.counters["collector-failed"] += 1
                report = _failed_report(query, cfg.host_id, "collector answered another query")
            if await self._publish(client, query, response, report):
                self.gate.counters["answered"] += 1
                log.debug("answered %s in %.2fs (owner %s)", query.nonce,
                          time.monotonic() - started, report.process.pid if report.process
                          else None)
        finally:
            self._in_flight -= 1

    async def _collect(self, query: HostQuery) -> HostReport:
        cfg = self.config
        loop = asyncio.get_running_loop()
        phased = self._phased
        if phased is None:
            return await loop.run_in_executor(
                self._executor, lambda: self.collector(query, host_id=cfg.host_id, root=cfg.root))
        pending = await loop.run_in_executor(
            self._executor, lambda: phased.begin(query, host_id=cfg.host_id, root=cfg.root))
        wait = pending.ready_at - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        return await loop.run_in_executor(self._executor, pending.finish)

    async def _answer_busy(self, client: aiomqtt.Client, query: HostQuery, response: str) -> None:
        try:
            report = busy_report(query, self.config.host_id, self._in_flight)
            if await self._publish(client, query, response, report):
                self.gate.counters["busy-answered"] += 1
        finally:
            self._busy_replies -= 1

    async def _publish(self, client: aiomqtt.Client, query: HostQuery, response: str,
                       report: HostReport) -> bool:
        raw, truncated = encode_report(report)
        if truncated:
            self.gate.counters["report-truncated"] += 1
        props = publish_properties(correlation=query.nonce.encode())
        try:
            await client.publish(response, raw, qos=1, properties=props)
        except aiomqtt.MqttError as exc:
            self.gate.counters["publish-failed"] += 1
            self.note("reports not sent", "publish-failed", "report for %s not sent: %s",
                      query.nonce, exc)
            return False
        return True


def trusted_keys(config: AgentConfig) -> dict[str, Ed25519PublicKey]:
    keys: dict[str, Ed25519PublicKey] = {}
    for path in config.trusted_keys:
        public = load_public_key(path)
        keys[key_id(public)] = public
    return keys


async def run_agent(config: AgentConfig, *, collector: Collector | None = None,
                    metrics_port: int | None = None, metrics_addr: str = "127.0.0.1") -> None:
    """Run the agent until SIGTERM/SIGINT; publishes offline status on the way out."""
    agent = Agent(config, collector or _default_collector(), trusted_keys(config))
    metrics = None
    if metrics_port is not None:
        from netdetect.metrics import AgentMetrics

        metrics = AgentMetrics(lambda: dict(agent.gate.counters))
        port = metrics.serve(metrics_port, metrics_addr)
        log.info("metrics on http://%s:%d/metrics", metrics_addr, port)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, agent.stop.set)
    try:
        await agent.run()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        if metrics is not None:
            metrics.close()


def main(argv: list[str] | None = None, *, collector: Collector | None = None) -> int:
    """``netdetect agent --config agent.toml``; returns the process exit status."""
    parser = argparse.ArgumentParser(prog="netdetect agent", description=__doc__)
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--log-level", default="INFO",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument("--metrics-port", type=int, default=None,
                        help="serve Prometheus metrics (query counters) on this port")
    parser.add_argument("--metrics-addr", default="127.0.0.1",
                        help="address the metrics endpoint binds (default 127.0.0.1)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_agent_config(args.config)
        asyncio.run(run_agent(config, collector=collector, metrics_port=args.metrics_port,
                              metrics_addr=args.metrics_addr))
    except ConfigError as exc:
        print(exc, file=sys.stderr)  # noqa: T201 - the operator's terminal is the audience
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
