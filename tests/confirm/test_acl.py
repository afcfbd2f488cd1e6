"""The shipped broker config and ACL, enforced by a real Mosquitto: who may read and write what."""

from __future__ import annotations

import asyncio
import ssl
import subprocess

import aiomqtt
import pytest

from netdetect.agent.protocol import Status, encode_status
from netdetect.agent.topics import (
    query_topic,
    report_filter,
    report_topic,
    status_filter,
    status_topic,
)

from .conftest import DEPLOY, SENSOR, TOKEN, Broker, mqtt_as, next_message

pytestmark = pytest.mark.broker


async def _received(client: aiomqtt.Client, timeout: float = 1.0) -> list[str]:
    topics: list[str] = []
    while (msg := await next_message(client, timeout)) is not None:
        topics.append(msg.topic.value)
    return topics


def test_host_reads_only_its_own_queries(broker: Broker) -> None:
    async def run() -> None:
        async with (
            mqtt_as(broker, "web-01", "web-01") as web,
            mqtt_as(broker, "db-01", "db-01") as db,
            mqtt_as(broker, SENSOR, "sensor-1") as sensor,
        ):
            # Mosquitto 2.0 grants the subscription and then filters every delivery by the
            # ACL, so what arrives is the test.
            await web.subscribe(query_topic("db-01"), qos=1)
            await web.subscribe("netdetect/#", qos=1)
            await db.subscribe(query_topic("db-01"), qos=1)
            await sensor.publish(query_topic("db-01"), b"for db-01", qos=1)
            assert await _received(db) == [query_topic("db-01")]  # the control
            assert await _received(web) == []

    asyncio.run(run())


def test_host_cannot_publish_queries_or_speak_for_others(broker: Broker) -> None:
    async def run() -> None:
        async with (
            mqtt_as(broker, "web-01", "web-01") as web,
            mqtt_as(broker, "db-01", "db-01") as db,
            mqtt_as(broker, SENSOR, "sensor-1") as sensor,
        ):
            await db.subscribe(query_topic("db-01"), qos=1)
            await web.subscribe(query_topic("web-01"), qos=1)
            await sensor.subscribe(status_filter(), qos=1)
            await sensor.subscribe(report_filter(SENSOR, TOKEN), qos=1)

            await web.publish(query_topic("db-01"), b"forged query", qos=1)
            await web.publish(query_topic("web-01"), b"to itself", qos=1)
            fake = Status(state="offline", host_id="db-01", ts=0.0)
            await web.publish(status_topic("db-01"), encode_status(fake), qos=1, retain=True)
            await web.publish(report_topic(SENSOR, TOKEN, "db-01"), b"forged report", qos=1)
            await web.publish("netdetect/v1/alerts", b"forged alert", qos=1)
            assert await _received(db) == []
            assert await _received(web) == []
            assert await _received(sensor) == []

            # The controls: what web-01 may do does arrive.
            own = Status(state="online", host_id="web-01", ts=0.0)
            await web.publish(status_topic("web-01"), encode_status(own), qos=1)
            await web.publish(report_topic(SENSOR, TOKEN, "web-01"), b"own report", qos=1)
            assert sorted(await _received(sensor)) == sorted(
                [status_topic("web-01"), report_topic(SENSOR, TOKEN, "web-01")])

    asyncio.run(run())


def test_hosts_cannot_read_statuses_reports_or_alerts(broker: Broker) -> None:
    async def run() -> None:
        async with (
            mqtt_as(broker, "web-01", "web-01") as web,
            mqtt_as(broker, "db-01", "db-01") as db,
            mqtt_as(broker, SENSOR, "sensor-1") as sensor,
            mqtt_as(broker, "siem-forwarder", "siem") as siem,
        ):
            for topic in (status_filter(), report_filter(SENSOR, TOKEN), "netdetect/v1/alerts"):
                await web.subscribe(topic, qos=1)
            await siem.subscribe("netdetect/v1/alerts", qos=1)
            await db.publish(status_topic("db-01"),
                             encode_status(Status(state="online", host_id="db-01", ts=0.0)),
                             qos=1)
            await db.publish(report_topic(SENSOR, TOKEN, "db-01"), b"report", qos=1)
            await sensor.publish("netdetect/v1/alerts", b"{}", qos=1)
            assert await _received(siem) == ["netdetect/v1/alerts"]
            assert await _received(web) == []

    asyncio.run(run())


def test_sensor_reads_only_its_own_reports(broker: Broker) -> None:
    async def run() -> None:
        async with (
            mqtt_as(broker, "web-01", "web-01") as web,
            mqtt_as(broker, SENSOR, "sensor-1") as sensor,
        ):
            await sensor.subscribe(report_filter("sensor-2", TOKEN), qos=1)
            await web.publish(report_topic("sensor-2", TOKEN, "web-01"), b"for sensor-2", qos=1)
            assert await _received(sensor) == []

    asyncio.run(run())


def test_connections_without_a_client_certificate_are_refused(broker: Broker) -> None:
    async def run() -> None:
        with pytest.raises(aiomqtt.MqttError):
            async with mqtt_as(broker, None, "anonymous"):
                pass

    asyncio.run(run())


def test_certificates_from_another_ca_are_refused(
    broker: Broker, tmp_path_factory: pytest.TempPathFactory,
) -> None:
    other = tmp_path_factory.mktemp("other-pki")
    subprocess.run([str(DEPLOY / "make-pki.sh"), "-o", str(other), "-b", "127.0.0.1", "-s",
                    SENSOR], check=True, capture_output=True, timeout=120)
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(broker.pki.ca))
    ctx.load_cert_chain(str(other / "sensors" / f"{SENSOR}.crt"),
                        str(other / "sensors" / f"{SENSOR}.key"))

    async def run() -> None:
        client = aiomqtt.Client("127.0.0.1", broker.port, identifier="impostor",
                                protocol=aiomqtt.ProtocolVersion.V5, tls_context=ctx, timeout=5)
        with pytest.raises(aiomqtt.MqttError):
            async with client:
                pass

    asyncio.run(run())

