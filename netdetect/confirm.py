"""Sensor side of host confirmation: signed MQTT v5 queries, validated reports, verdicts.

`Confirmer.confirm` never raises for broker or host trouble and never blocks detection for
longer than the configured timeout: every failure becomes a `network-only` alert that says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Self, TypeVar

import aiomqtt
import msgspec

from netdetect.agent.protocol import (
    Backoff,
    Status,
    decode_status,
    load_private_key,
    publish_properties,
    refused,
    seal_query,
    tls_context,
)
from netdetect.agent.schema import (
    MAX_REPORT_BYTES,
    SCHEMA_VERSION,
    FlowSpec,
    HostQuery,
    HostReport,
    is_busy_report,
)
from netdetect.agent.topics import (
    host_of_report_topic,
    host_of_status_topic,
    new_process_token,
    query_topic,
    report_filter,
    report_topic,
    status_filter,
)
from netdetect.correlate import allow_network, correlate, wallet_of
from netdetect.errors import AgentError, ConfigError
from netdetect.model import Verdict

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from types import TracebackType

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from netdetect.config import SensorConfig
    from netdetect.hosts import HostIdentity, Inventory
    from netdetect.model import Alert, Suspect

log = logging.getLogger("netdetect.confirm")

BROKER_UNAVAILABLE = "broker unavailable"
_report_decoder = msgspec.json.Decoder(HostReport)
_T = TypeVar("_T")


class _LinkLostError(Exception):
    """The connection a query was asked over dropped: its answer cannot arrive over it."""


@dataclass(slots=True)
class _Pending:
    host_id: str
    future: asyncio.Future[HostReport]


@dataclass(slots=True)
class _Link:
    """One broker connection as the queries asked over it see it.

    `lost` completes the moment the connection drops (broker gone, network cut, TLS error,
    keepalive expired, session taken over), so nothing asked over it keeps waiting for a
    slot, a PUBACK or an answer: each ends at once as "broker unavailable".
    """

    client: aiomqtt.Client
    lost: asyncio.Future[None]


async def _unless_lost(aw: Awaitable[_T], link: _Link, timeout: float | None) -> _T:
    """`aw`'s result; `_LinkLostError` as soon as `link` drops first; TimeoutError after
    `timeout` seconds. What was still waiting is cancelled and has cleaned up on return."""
    task = asyncio.ensure_future(aw)
    try:
        await asyncio.wait((task, link.lost), timeout=timeout,
                           return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not task.done():
            task.cancel()
            # Its own cleanup (a semaphore waiter, aiomqtt's pending publish) runs first.
            await asyncio.wait((task,))
    if not task.cancelled():
        # Done, even in the same instant the link dropped: an answer that made it is used.
        return task.result()
    if link.lost.done():
        raise _LinkLostError
    raise TimeoutError


class Confirmer:
    """One MQTT v5 connection that asks hosts about suspect flows and turns answers into alerts.

    Use as ``async with Confirmer(config, inventory) as c: alert = await c.confirm(suspect)``.
    The connection is kept up by a background task with exponential backoff; while it is
    down, `confirm` answers `network-only` ("broker unavailable") at once. When it drops,
    every query asked over it (sent, being sent, or waiting for a slot) ends at once with
    that same answer; an answer that still comes later is counted as late and ignored.
    """

    def __init__(
        self,
        config: SensorConfig,
        inventory: Inventory,
        *,
        signing_key: Ed25519PrivateKey | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if config.confirm is None or config.mqtt is None:
            raise ConfigError(f"{config.source or 'sensor config'}:1: [confirm] and [mqtt] "
                              "are needed for host confirmation")
        self.config = config
        self.confirm_cfg = config.confirm
        self.mqtt = config.mqtt
        self.inventory = inventory
        self.clock = clock
        self._key = signing_key or load_private_key(config.confirm.signing_key)
        self._counters: Counter[str] = Counter()
        # Reports come back on topics only this Confirmer subscribes to; see agent.topics.
        self.token = new_process_token()
        # Unique per Confirmer: the broker disconnects an older client when a newer one takes
        # its id, so a `replay --confirm` next to a running `sniff` with the same sensor.toml
        # would have the two knock each other off forever. Nothing needs a stable id: the
        # session is clean and reports arrive by topic, not by client.
        self.client_id = f"{config.sensor_id}-confirm-{self.token}"
        self._pending: dict[str, _Pending] = {}
        # Queries given up without an answer (timeout, link lost), nonce -> host: an answer
        # that still comes is late, not unknown. Bounded, oldest forgotten first.
        self._given_up: OrderedDict[str, str] = OrderedDict()
        self._given_up_max = max(1024, 4 * config.confirm.max_outstanding)
        self._statuses: dict[str, Status] = {}
        self._link: _Link | None = None
        self._connected = asyncio.Event()
        self._sem = asyncio.Semaphore(config.confirm.max_outstanding)
        self._task: asyncio.Task[None] | None = None
        # Early asks: per-host and global send times within ask_period, and flows an early
        # ask already confirmed (their later full-score suspect must not alert twice).
        self._asks_by_host: dict[str, deque[float]] = {}
        self._asks: deque[float] = deque()
        self._confirmed_early: OrderedDict[int, None] = OrderedDict()
        if not config.dhcp_servers:
            log.warning("[hosts] dhcp_servers is not set: DHCP leases from any sender will map "
                        "addresses to hosts; list your DHCP servers to trust only theirs")

    # --- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._run(), name="confirmer-mqtt")
        # Give the first connection a moment so early suspects can be confirmed; an
        # unreachable broker must not delay the sensor's start, though.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._connected.wait(), min(self.mqtt.connect_timeout, 5.0))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._drop_link()

    @property
    def ask_threshold(self) -> int:
        """The network score from which a flow is put to its host early (0: never)."""
        return self.confirm_cfg.ask_threshold

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def wait_connected(self, timeout: float) -> bool:
        """True once connected (and subscribed) within `timeout` seconds."""
        try:
            await asyncio.wait_for(self._connected.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def counters(self) -> dict[str, int]:
        """Queries, answers, fallbacks and rejected reports/statuses, by reason."""
        return dict(self._counters)

    @property
    def outstanding(self) -> int:
        """Queries sent (or being sent) whose answer is still awaited."""
        return len(self._pending)

    def status(self, host_id: str) -> Status | None:
        """The host's last retained status, if one was seen."""
        return self._statuses.get(host_id)

    # --- connection ---------------------------------------------------------------------------

    async def _run(self) -> None:
        backoff = Backoff(self.mqtt.reconnect_min, self.mqtt.reconnect_max)
        loop = asyncio.get_running_loop()
        while True:
            try:
                client = aiomqtt.Client(
                    self.mqtt.host,
                    self.mqtt.port,
                    identifier=self.client_id,
                    protocol=aiomqtt.ProtocolVersion.V5,
                    clean_start=True,
                    keepalive=self.mqtt.keepalive,
                    timeout=self.mqtt.connect_timeout,
                    tls_context=tls_context(self.mqtt),
                    max_queued_incoming_messages=4096,
                )
                async with client:
                    await self._subscribe(client)
                    self._link = _Link(client, loop.create_future())
                    self._connected.set()
                    backoff.reset()
                    log.info("connected to %s:%d", self.mqtt.host, self.mqtt.port)
                    try:
                        # aiomqtt hands over every message that arrived before the drop
                        # before it raises, so an answer that made it resolves its query.
                        async for message in client.messages:
                            self._on_message(message)
                    finally:
                        # Now, not after the client's exit, which may first wait out a
                        # graceful DISCONNECT the dead link cannot carry.
                        self._drop_link()
            except (aiomqtt.MqttError, AgentError, OSError) as exc:
                self._counters["broker-disconnects"] += 1
                log.warning("broker connection lost: %s", exc)
            except Exception:
                # Whatever broke the link, the sensor reconnects instead of confirming nothing
                # for the rest of its life.
                self._counters["broker-disconnects"] += 1
                log.exception("broker connection failed")
            finally:
                self._drop_link()
            await asyncio.sleep(backoff.next())

    async def _subscribe(self, client: aiomqtt.Client) -> None:
        codes = await client.subscribe(
            [(report_filter(self.config.sensor_id, self.token), 1), (status_filter(), 1)]
        )
        if any(refused(c) for c in codes):
            raise AgentError(f"broker refused the sensor subscriptions: {codes}")

    def _drop_link(self) -> None:
        """The connection is gone: every query asked over it ends now (see `_Link`)."""
        link, self._link = self._link, None
        self._connected.clear()
        if link is not None and not link.lost.done():
            link.lost.set_result(None)

    # --- incoming -----------------------------------------------------------------------------

    def _on_message(self, message: aiomqtt.Message) -> None:
        topic = message.topic.value
        payload = message.payload if isinstance(message.payload, bytes) else b""
        status_host = host_of_status_topic(topic)
        if status_host is not None:
            self._on_status(status_host, payload)
            return
        report_host = host_of_report_topic(topic, self.config.sensor_id, self.token)
        if report_host is None:
            self._reject("bad-topic", topic)
            return
        correlation = getattr(message.properties, "CorrelationData", None)
        self.handle_report(report_host, payload, correlation)

    def _on_status(self, host_id: str, payload: bytes) -> None:
        if not payload:  # a cleared retained status: the host was retired
            self._statuses.pop(host_id, None)
            return
        try:
            status = decode_status(payload)
        except AgentError as exc:
            self._counters["status-rejected-malformed"] += 1
            log.warning("status for %s rejected: %s", host_id, exc)
            return
        if status.host_id != host_id:
            self._counters["status-rejected-host-mismatch"] += 1
            log.warning("status on %s's topic speaks for %s", host_id, status.host_id)
            return
        self._statuses[host_id] = status

    def _reject(self, reason: str, detail: str) -> None:
        self._counters[f"report-rejected-{reason}"] += 1
        log.warning("report rejected (%s): %s", reason, detail[:200])

    def handle_report(self, topic_host: str, payload: bytes, correlation: bytes | None) -> None:
        """Validate one report that arrived on ``.../reports/<topic_host>``; resolve its query.

        Nothing about the report is trusted until it passed every check: the size cap comes
        before decoding, the decode is strict, and the nonce must be one we are waiting for,
        asked of the same host whose topic (bound to its certificate by the broker ACL)
        carried the answer.
        """
        if len(payload) > MAX_REPORT_BYTES:
            self._reject("oversized", f"{len(payload)} bytes from {topic_host}")
            return
        try:
            report = _report_decoder.decode(payload)
        except msgspec.ValidationError as exc:
            self._reject("schema", f"from {topic_host}: {exc}")
            return
        except msgspec.DecodeError as exc:
            self._reject("malformed", f"from {topic_host}: {exc}")
            return
        if report.v != SCHEMA_VERSION:
            self._reject("version", f"v{report.v} from {topic_host}")
            return
        if report.host_id != topic_host:
            self._reject("host-mismatch", f"{report.host_id!r} on {topic_host}'s topic")
            return
        pending = self._pending.get(report.nonce)
        asked = pending.host_id if pending is not None else self._given_up.get(report.nonce)
        if asked is None:
            self._reject("unknown-nonce", f"{report.nonce[:40]!r} from {topic_host}")
            return
        if asked != topic_host:
            self._reject("host-mismatch", f"query to {asked} answered by {topic_host}")
            return
        if correlation is not None and correlation != report.nonce.encode():
            self._reject("bad-correlation", f"from {topic_host}")
            return
        if pending is None:
            # Its suspect was already raised without it (timeout, link lost): it stays raised
            # once. Counted, so a timeout too short for the fleet shows.
            del self._given_up[report.nonce]
            self._counters["reports-late"] += 1
            log.info("late report from %s for query %s, already raised without it",
                     topic_host, report.nonce)
            return
        if pending.future.done():
            self._reject("duplicate", f"{report.nonce} from {topic_host}")
            return
        self._counters["reports-accepted"] += 1
        pending.future.set_result(report)

    # --- confirm ------------------------------------------------------------------------------

    async def settle(self, suspect: Suspect) -> Alert | None:
        """What the pipeline raises for `suspect`: its alert, or None for a suspect asked early
        (`suspect.asked`: its score is below the alert threshold) that its host did not
        confirm, and for the full-score suspect of a flow an early ask already raised."""
        if suspect.asked:
            return await self._confirm_early(suspect)
        if suspect.flow_id in self._confirmed_early:
            self._counters["asks-already-confirmed"] += 1
            return None
        return await self.confirm(suspect)

    async def confirm(self, suspect: Suspect) -> Alert:
        """The alert for `suspect`: confirmed by its host when it answers, network-only if not."""
        host = self.inventory.lookup(suspect.miner.ip, suspect.ts)
        report: HostReport | None = None
        reason: str | None = None
        if host is None:
            self._counters["unmanaged"] += 1
        elif allow_network(suspect, host, self.config.allowlist) is not None:
            self._counters["allowed-before-query"] += 1
        elif not host.managed:
            self._counters["unmanaged"] += 1
        else:
            report, reason = await self._ask(host, suspect)
        return correlate(
            suspect,
            host=host,
            report=report,
            reason=reason,
            allowlist=self.config.allowlist,
            config=self.config.correlate,
        )

    def _ask_allowed(self, host_id: str) -> bool:
        """Early asks are bounded per host and overall, so a busy network cannot flood agents."""
        cfg = self.confirm_cfg
        now = time.monotonic()
        horizon = now - cfg.ask_period
        mine = self._asks_by_host.setdefault(host_id, deque())
        for q in (mine, self._asks):
            while q and q[0] < horizon:
                q.popleft()
        if len(self._asks) >= cfg.ask_budget:
            self._counters["asks-over-budget"] += 1
            return False
        if len(mine) >= cfg.ask_per_host:
            self._counters["asks-host-rate-limited"] += 1
            return False
        mine.append(now)
        self._asks.append(now)
        if len(self._asks_by_host) > 4 * cfg.ask_budget:
            # Hosts asked long ago: forget them, the map stays bounded.
            self._asks_by_host = {h: q for h, q in self._asks_by_host.items() if q}
        return True

    async def _confirm_early(self, suspect: Suspect) -> Alert | None:
        host = self.inventory.lookup(suspect.miner.ip, suspect.ts)
        if host is None or not host.managed:
            self._counters["asks-unmanaged"] += 1
            return None
        if allow_network(suspect, host, self.config.allowlist) is not None:
            self._counters["asks-allowed"] += 1
            return None
        if not self._ask_allowed(host.host_id):
            return None
        self._counters["asks-sent"] += 1
        report, reason = await self._ask(host, suspect)
        if report is None:
            self._counters["asks-unanswered"] += 1
            log.info("early ask for flow %d on %s: %s", suspect.flow_id, host.host_id, reason)
            return None
        alert = correlate(suspect, host=host, report=report, reason=None,
                          allowlist=self.config.allowlist, config=self.config.correlate)
        if alert.verdict not in (Verdict.CONFIRMED, Verdict.CONFIRMED_PERSISTENT):
            # The host saw nothing (or an allowed process): nothing is raised.
            self._counters["asks-cleared"] += 1
            return None
        self._counters["asks-confirmed"] += 1
        self._confirmed_early[suspect.flow_id] = None
        while len(self._confirmed_early) > 65536:
            self._confirmed_early.popitem(last=False)
        why = (f"asked at network score {suspect.score}, below the alert threshold: the host's "
               "answer raised it")
        return msgspec.structs.replace(alert, reasons=(*alert.reasons, why))

    async def _ask(self, host: HostIdentity, suspect: Suspect) -> tuple[HostReport | None, str]:
        host_id = host.host_id
        status = self._statuses.get(host_id)
        if status is not None and status.state == "offline":
            self._counters["skipped-offline"] += 1
            why = f" ({status.reason})" if status.reason else ""
            return None, f"host {host_id} agent offline{why}"
        link = self._link
        if link is None:
            return self._unavailable()

        cfg = self.confirm_cfg
        loop = asyncio.get_running_loop()
        deadline = loop.time() + cfg.timeout
        try:
            await _unless_lost(self._sem.acquire(), link, cfg.timeout)
        except _LinkLostError:
            # Queued behind queries the drop just ended: raised now, not after the slot wait.
            return self._unavailable()
        except TimeoutError:
            self._counters["capacity-exhausted"] += 1
            return None, f"no confirmation slot free within {cfg.timeout:g}s"
        try:
            return await self._query(link, host_id, suspect, deadline)
        finally:
            self._sem.release()

    def _unavailable(self) -> tuple[None, str]:
        self._counters["broker-unavailable"] += 1
        return None, BROKER_UNAVAILABLE

    async def _query(self, link: _Link, host_id: str, suspect: Suspect,
                     deadline: float) -> tuple[HostReport | None, str]:
        if link.lost.done():
            return self._unavailable()
        cfg = self.confirm_cfg
        loop = asyncio.get_running_loop()
        now = self.clock()
        nonce = secrets.token_hex(16)
        query = HostQuery(
            v=SCHEMA_VERSION,
            host_id=host_id,
            nonce=nonce,
            issued_at=now,
            expires_at=now + cfg.query_ttl,
            flow=FlowSpec(
                proto=suspect.proto.lower(),
                remote_ip=suspect.pool.ip,
                remote_port=suspect.pool.port,
                local_ip=suspect.miner.ip,
                local_port=suspect.miner.port,
            ),
            cpu_window=cfg.cpu_window,
            # An early ask is settled by the flow's owner alone (no owner: nothing is raised),
            # so the agent is spared ranking and string-scanning the busiest processes.
            top_n=0 if suspect.asked else cfg.top_n,
            pool_host=suspect.pool_facts.host,
            wallet=wallet_of(suspect.miner_facts.login),
        )
        response = report_topic(self.config.sensor_id, self.token, host_id)
        payload = seal_query(query, response, self._key)
        future: asyncio.Future[HostReport] = loop.create_future()
        self._pending[nonce] = _Pending(host_id, future)
        try:
            try:
                # aiomqtt leaves a QoS 1 publish waiting for its PUBACK until its timeout even
                # when the connection is gone: the link's loss ends it instead.
                await _unless_lost(link.client.publish(
                    query_topic(host_id),
                    payload,
                    qos=1,
                    properties=publish_properties(
                        correlation=nonce.encode(), response_topic=response, expiry=cfg.query_ttl
                    ),
                    timeout=max(deadline - loop.time(), 0.01),
                ), link, None)
            except (aiomqtt.MqttError, TimeoutError, _LinkLostError):
                return self._unavailable()
            self._counters["queries-sent"] += 1
            try:
                report = await _unless_lost(future, link, max(deadline - loop.time(), 0.0))
            except TimeoutError:
                self._counters["timeouts"] += 1
                status = self._statuses.get(host_id)
                seen = "" if status is not None else "; its agent was never seen online"
                return None, f"no answer from {host_id} within {cfg.timeout:g}s{seen}"
            except _LinkLostError:
                return self._unavailable()
            if is_busy_report(report):
                # Answered at once rather than left to time out: no facts, a clear reason.
                self._counters["agent-busy"] += 1
                return None, f"host {host_id} agent busy: {report.errors[0][:200]}"
            return report, ""
        finally:
            # Keyed by nonce and removed however the wait ended: a report for this query from
            # now on is late (given up unanswered) or a duplicate/forgery ("unknown-nonce").
            self._pending.pop(nonce, None)
            if not future.done() or future.cancelled():
                self._given_up[nonce] = host_id
                while len(self._given_up) > self._given_up_max:
                    self._given_up.popitem(last=False)
