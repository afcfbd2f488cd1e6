"""Publishes alert JSON to an MQTT topic (QoS 1), buffering a bounded backlog while it is down."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from typing import TYPE_CHECKING, Any, Self

import aiomqtt

from netdetect.agent.protocol import Backoff, tls_context
from netdetect.agent.topics import ALERT_TOPIC
from netdetect.sinks.eve import alert_to_eve

if TYPE_CHECKING:
    from collections.abc import Mapping
    from types import TracebackType

    from netdetect.agent.topics import MqttSettings
    from netdetect.model import Alert

log = logging.getLogger("netdetect.sinks.mqtt")


class MqttAlertSink:
    """``async with MqttAlertSink(settings, client_id=...) as sink: sink.write(alert)``.

    `write`/`submit` never block and never raise: the pipeline must not stall on the broker.
    When the backlog is full the oldest alert is dropped and counted in `dropped` (the EVE file
    on disk still has it). An alert leaves the backlog only once the broker acknowledged it.
    """

    def __init__(
        self,
        settings: MqttSettings,
        *,
        client_id: str,
        topic: str = ALERT_TOPIC,
        buffer: int = 10_000,
        flush_timeout: float = 5.0,
    ) -> None:
        self.settings = settings
        self.client_id = client_id
        self.topic = topic
        self.flush_timeout = flush_timeout
        self._backlog: deque[bytes] = deque()
        self._limit = max(buffer, 1)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self.published = 0
        self.dropped = 0

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._run(), name="alert-sink-mqtt")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Give a connected broker a chance to take the last alerts before closing.
        loop = asyncio.get_running_loop()
        end = loop.time() + self.flush_timeout
        while self._backlog and self._connected.is_set() and loop.time() < end:
            await asyncio.sleep(0.02)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._backlog:
            log.warning("%d alerts not published to MQTT at shutdown", len(self._backlog))

    @property
    def backlog(self) -> int:
        return len(self._backlog)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def write(self, alert: Alert, record: dict[str, Any] | None = None) -> None:
        """Queue `alert` as its EVE JSON line (the AlertSink protocol of netdetect.service);
        `record` is that line's record when the caller built it already."""
        self.submit(alert_to_eve(alert) if record is None else record)

    def submit(self, doc: Mapping[str, Any]) -> None:
        """Queue one JSON document for publication."""
        payload = json.dumps(doc, separators=(",", ":"), default=str).encode()
        if len(self._backlog) >= self._limit:
            self._backlog.popleft()
            self.dropped += 1
        self._backlog.append(payload)
        self._wake.set()

    async def _run(self) -> None:
        backoff = Backoff(self.settings.reconnect_min, self.settings.reconnect_max)
        while True:
            try:
                client = aiomqtt.Client(
                    self.settings.host,
                    self.settings.port,
                    identifier=self.client_id,
                    protocol=aiomqtt.ProtocolVersion.V5,
                    keepalive=self.settings.keepalive,
                    timeout=self.settings.connect_timeout,
                    tls_context=tls_context(self.settings),
                )
                async with client:
                    self._connected.set()
                    backoff.reset()
                    await self._drain(client)
            except (aiomqtt.MqttError, OSError) as exc:
                log.warning("alert broker connection lost: %s (%d alerts waiting)", exc,
                            len(self._backlog))
            finally:
                self._connected.clear()
            await asyncio.sleep(backoff.next())

    async def _drain(self, client: aiomqtt.Client) -> None:
        # Waiting only for new alerts, an idle sink would never learn that the broker went
        # away: it would look connected until the next alert failed. The watcher ends (with
        # MqttError) as soon as the client sees the connection drop or keepalive run out.
        watcher = asyncio.create_task(self._watch(client))
        waker: asyncio.Task[bool] | None = None
        try:
            while True:
                while self._backlog:
                    payload = self._backlog[0]
                    await client.publish(self.topic, payload, qos=1,
                                         timeout=self.settings.connect_timeout)
                    # Only now is it the broker's: a failed publish leaves it queued.
                    if self._backlog and self._backlog[0] is payload:
                        self._backlog.popleft()
                    self.published += 1
                self._wake.clear()
                waker = asyncio.create_task(self._wake.wait())
                await asyncio.wait({waker, watcher}, return_when=asyncio.FIRST_COMPLETED)
                if watcher.done():
                    watcher.result()
                    raise aiomqtt.MqttError("connection closed")
                waker = None
        finally:
            for task in (watcher, waker):
                if task is not None and not task.done():
                    task.cancel()
            if watcher.done() and not watcher.cancelled():
                watcher.exception()  # seen: a publish failure may have ended the session first

    @staticmethod
    async def _watch(client: aiomqtt.Client) -> None:
        # Nothing is subscribed, so no message arrives; the iterator exists to raise on loss.
        async for _ in client.messages:
            pass
