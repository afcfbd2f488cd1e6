"""The MQTT alert sink's buffering, and the Confirmer's report checks and broker-less fallback."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

import aiomqtt
import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from netdetect.agent.schema import MAX_REPORT_BYTES
from netdetect.agent.topics import MqttSettings, query_topic
from netdetect.config import ConfirmConfig, SensorConfig
from netdetect.confirm import BROKER_UNAVAILABLE, Confirmer, _Link, _Pending
from netdetect.correlate import Allowlist, correlate
from netdetect.hosts import HostIdentity, Inventory
from netdetect.model import Alert, Verdict
from netdetect.sinks.mqtt import MqttAlertSink

from .conftest import Broker, free_port, mqtt_as, next_message, suspect


def offline_confirmer(tmp_path: Path, *, files: bool = True) -> Confirmer:
    """A Confirmer aimed at a port where nothing listens."""
    for name in ("ca", "cert", "key") if files else ():
        (tmp_path / name).write_text("")
    mqtt = MqttSettings(host="127.0.0.1", port=free_port(), ca=tmp_path / "ca",
                        cert=tmp_path / "cert", key=tmp_path / "key", connect_timeout=0.3,
                        reconnect_min=0.05, reconnect_max=0.1)
    cfg = SensorConfig(sensor_id="sensor-1", mqtt=mqtt,
                       confirm=ConfirmConfig(signing_key=tmp_path / "k", timeout=2.0))
    inv = Inventory(((HostIdentity("web-01"), ("10.0.0.5",)),))
    return Confirmer(cfg, inv, signing_key=Ed25519PrivateKey.generate())


def test_no_broker_means_network_only_without_delay(tmp_path: Path) -> None:
    async def run() -> None:
        start = time.monotonic()
        async with offline_confirmer(tmp_path) as c:
            assert time.monotonic() - start < 1.0
            alert = await c.confirm(suspect("10.0.0.5", 1, 2))
            assert alert.verdict is Verdict.NETWORK_ONLY
            assert alert.reasons == (BROKER_UNAVAILABLE,)
            assert alert.host_id == "web-01"
            assert c.counters()["broker-unavailable"] == 1
            assert not c.connected

    asyncio.run(run())


def test_report_checks_without_a_broker(tmp_path: Path) -> None:
    async def run() -> None:
        c = offline_confirmer(tmp_path)
        loop = asyncio.get_running_loop()
        nonce = "1" * 32
        fut = loop.create_future()
        c._pending[nonce] = _Pending("web-01", fut)

        def doc(**kw: object) -> bytes:
            d: dict[str, object] = {"v": 1, "host_id": "web-01", "nonce": nonce,
                                    "generated_at": 0.0, "found": False}
            d.update(kw)
            return json.dumps(d).encode()

        c.handle_report("web-01", b"x" * (MAX_REPORT_BYTES + 1), None)
        c.handle_report("web-01", b"{not json", None)
        c.handle_report("web-01", doc(extra=1), None)
        c.handle_report("web-01", doc(v=2), None)
        c.handle_report("db-01", doc(host_id="db-01"), None)  # right topic, wrong query host
        c.handle_report("web-01", doc(nonce="2" * 32), None)
        c.handle_report("web-01", doc(), b"wrong")
        assert not fut.done()
        c.handle_report("web-01", doc(), nonce.encode())
        assert fut.done()
        assert fut.result().nonce == nonce
        c.handle_report("web-01", doc(), None)
        assert c.counters() == {
            "report-rejected-oversized": 1, "report-rejected-malformed": 1,
            "report-rejected-schema": 1, "report-rejected-version": 1,
            "report-rejected-host-mismatch": 1, "report-rejected-unknown-nonce": 1,
            "report-rejected-bad-correlation": 1, "reports-accepted": 1,
            "report-rejected-duplicate": 1,
        }

    asyncio.run(run())


def test_report_decoding_never_raises_on_truncation(tmp_path: Path) -> None:
    c = offline_confirmer(tmp_path)
    whole = msgspec.json.encode({"v": 1, "host_id": "web-01", "nonce": "3" * 32,
                                 "generated_at": 0.0, "found": True})
    for i in range(len(whole)):
        c.handle_report("web-01", whole[:i], None)
    rejected = sum(v for k, v in c.counters().items() if k.startswith("report-rejected"))
    assert rejected == len(whole)


class _AckedAtOnce:
    """Stands in for the MQTT client of a live link: every publish is acknowledged at once."""

    def __init__(self) -> None:
        self.topics: list[str] = []

    async def publish(self, topic: str, *args: object, **kwargs: object) -> None:
        self.topics.append(topic)


@pytest.mark.parametrize("order", ["answer-then-drop", "drop-then-answer",
                                   "drop-settled-then-answer"])
def test_an_answer_racing_the_drop_is_used_once_or_counted_late(
    tmp_path: Path, order: str,
) -> None:
    """An answer handed over in the same instant the link drops (aiomqtt delivers what
    arrived before it raises) still confirms its query; one that comes after the query was
    settled as broker unavailable is counted late. Either way the suspect is settled once."""

    async def run() -> None:
        c = offline_confirmer(tmp_path)
        client = _AckedAtOnce()
        c._link = _Link(cast(aiomqtt.Client, client), asyncio.get_running_loop().create_future())
        ask = asyncio.create_task(c.confirm(suspect("10.0.0.5", 1, 2)))
        await _until(lambda: c.counters().get("queries-sent") == 1, 5)
        assert client.topics == [query_topic("web-01")]
        (nonce,) = c._pending
        answer = msgspec.json.encode({"v": 1, "host_id": "web-01", "nonce": nonce,
                                      "generated_at": 0.0, "found": False})
        if order == "answer-then-drop":
            c.handle_report("web-01", answer, nonce.encode())
            c._drop_link()
        elif order == "drop-then-answer":
            c._drop_link()
            c.handle_report("web-01", answer, nonce.encode())
        else:
            c._drop_link()
            await asyncio.wait((ask,), timeout=5)
            c.handle_report("web-01", answer, nonce.encode())
            c.handle_report("web-01", answer, nonce.encode())  # a second copy: not late again
        alert = await asyncio.wait_for(ask, 5)
        assert c.outstanding == 0
        counters = c.counters()
        if order == "drop-settled-then-answer":
            assert alert.reasons == (BROKER_UNAVAILABLE,)
            assert alert.host is None
            assert counters == {"broker-unavailable": 1, "queries-sent": 1, "reports-late": 1,
                                "report-rejected-unknown-nonce": 1}
        else:
            assert alert.host is not None
            assert alert.host.nonce == nonce
            assert BROKER_UNAVAILABLE not in alert.reasons
            assert counters == {"queries-sent": 1, "reports-accepted": 1}
        assert not c.connected

    asyncio.run(run())


@pytest.mark.broker
def test_alert_sink_buffers_while_broker_is_down(broker: Broker) -> None:
    async def run() -> None:
        # The reader keeps a session, so alerts published before it reconnects wait for it.
        async with mqtt_as(broker, "siem-forwarder", "siem", session=True) as siem:
            await siem.subscribe("netdetect/v1/alerts", qos=1)
        broker.stop()
        settings = broker.settings("sensor-1")
        async with MqttAlertSink(settings, client_id="sensor-1-alerts", buffer=3) as sink:
            for i in range(5):
                sink.submit({"alert": i})
            await asyncio.sleep(0.3)
            assert sink.backlog == 3
            assert sink.dropped == 2
            assert not sink.connected
            broker.start()
            await _until(lambda: sink.backlog == 0, 10)
            assert sink.published == 3
            sink.write(await _alert())
            await _until(lambda: sink.published == 4, 10)
            assert sink.dropped == 2
        async with mqtt_as(broker, "siem-forwarder", "siem", session=True) as siem:
            got: list[dict[str, object]] = []
            for _ in range(4):
                msg = await next_message(siem, 10)
                assert msg is not None
                assert isinstance(msg.payload, bytes)
                got.append(json.loads(msg.payload))
        assert got[:3] == [{"alert": 2}, {"alert": 3}, {"alert": 4}]
        assert got[3]["event_type"] == "alert"

    asyncio.run(run())


@pytest.mark.broker
def test_alert_sink_notices_a_broker_lost_while_idle(broker: Broker) -> None:
    async def run() -> None:
        async with mqtt_as(broker, "siem-forwarder", "siem", session=True) as siem:
            await siem.subscribe("netdetect/v1/alerts", qos=1)
        settings = broker.settings("sensor-1")
        async with MqttAlertSink(settings, client_id="sensor-1-alerts") as sink:
            await _until(lambda: sink.connected, 10)
            sink.submit({"alert": "before"})
            await _until(lambda: sink.published == 1, 10)
            # Idle from here on: nothing to publish that could fail and reveal the loss.
            broker.stop()
            await _until(lambda: not sink.connected, 5)
            sink.submit({"alert": "while down"})
            await asyncio.sleep(0.3)
            assert sink.backlog == 1
            broker.start()
            await _until(lambda: sink.connected and sink.backlog == 0, 10)
            assert sink.published == 2
            sink.submit({"alert": "after"})
            await _until(lambda: sink.published == 3, 10)
        async with mqtt_as(broker, "siem-forwarder", "siem", session=True) as siem:
            got: list[object] = []
            for _ in range(3):
                msg = await next_message(siem, 10)
                assert msg is not None
                assert isinstance(msg.payload, bytes)
                got.append(json.loads(msg.payload)["alert"])
        assert got == ["before", "while down", "after"]

    asyncio.run(run())


async def _until(pred: Callable[[], bool], timeout: float) -> None:
    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, "condition not reached in time"
        await asyncio.sleep(0.02)


async def _alert() -> Alert:
    return correlate(suspect("10.0.0.5", 1, 2), host=None, report=None, reason=None,
                     allowlist=Allowlist())


@settings(max_examples=300, deadline=None)
@given(payload=st.binary(max_size=1024), host=st.sampled_from(["web-01", "db-01"]))
def test_report_handling_never_raises(payload: bytes, host: str) -> None:
    c = offline_confirmer(Path("/nonexistent"), files=False)
    c.handle_report(host, payload, None)
    assert c.counters().get("reports-accepted", 0) == 0
