"""The shipped broker config and ACL, enforced by a real Mosquitto: who may read and write what."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import Callable
from pathlib import Path

import aiomqtt
import pytest

from netdetect.agent.protocol import Status, decode_status, encode_status
from netdetect.agent.topics import (
    host_of_status_topic,
    query_topic,
    report_filter,
    report_topic,
    status_filter,
    status_topic,
)

from .conftest import (
    DEPLOY,
    READER,
    SENSOR,
    TOKEN,
    AgentProcess,
    Broker,
    mqtt_as,
    next_message,
)
from .test_loop import start_agent

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
            mqtt_as(broker, READER, "siem") as siem,
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



# --- roles in the certificate CN (host:<id>, sensor:<id>, reader:<name>) -----------------------


def test_sensor_certificate_cannot_act_as_a_host(broker: Broker) -> None:
    """The ACL patterns apply to every certificate; a sensor's CN never forms a host level,
    so it can neither read a host's queries nor speak for a host (status or report)."""

    async def run() -> None:
        async with (
            mqtt_as(broker, SENSOR, "sensor-1") as sensor,
            mqtt_as(broker, "web-01", "web-01") as web,
            mqtt_as(broker, SENSOR, "sensor-1-watch") as watch,
        ):
            await sensor.subscribe(query_topic("web-01"), qos=1)
            await web.subscribe(query_topic("web-01"), qos=1)
            await watch.subscribe(status_filter(), qos=1)
            await watch.subscribe(report_filter(SENSOR, TOKEN), qos=1)
            await watch.publish(query_topic("web-01"), b"query", qos=1)
            assert await _received(web) == [query_topic("web-01")]  # the control
            assert await _received(sensor) == []
            fake = Status(state="offline", host_id="web-01", ts=0.0)
            await sensor.publish(status_topic("web-01"), encode_status(fake), qos=1)
            await sensor.publish(report_topic(SENSOR, TOKEN, "web-01"), b"forged", qos=1)
            # What the patterns do give it, topics named after its own CN, names no host.
            await sensor.publish(f"netdetect/v1/hosts/sensor:{SENSOR}/status", b"x", qos=1)
            got = await _received(watch)
            assert got == [f"netdetect/v1/hosts/sensor:{SENSOR}/status"]
            assert host_of_status_topic(got[0]) is None

    asyncio.run(run())


def test_host_certificate_sharing_the_sensors_id_has_no_sensor_rights(broker: Broker) -> None:
    """A host may carry the same id as a sensor (the sensor machine runs an agent too): its
    certificate is host:sensor-1, which the sensor's `user sensor:sensor-1` block never
    matches."""

    async def run() -> None:
        async with (
            mqtt_as(broker, f"host:{SENSOR}", "host-sensor-1") as host,
            mqtt_as(broker, "web-01", "web-01") as web,
            mqtt_as(broker, SENSOR, "sensor-1") as sensor,
        ):
            await web.subscribe(query_topic("web-01"), qos=1)
            await host.subscribe(report_filter(SENSOR, TOKEN), qos=1)
            await host.subscribe(status_filter(), qos=1)
            await host.publish(query_topic("web-01"), b"forged query", qos=1)
            await host.publish("netdetect/v1/alerts", b"forged alert", qos=1)
            await web.publish(report_topic(SENSOR, TOKEN, "web-01"), b"report", qos=1)
            assert await _received(web) == []
            assert await _received(host) == []
            # ... while it is a host like any other under its own id.
            await host.subscribe(query_topic(SENSOR), qos=1)
            await sensor.publish(query_topic(SENSOR), b"query", qos=1)
            assert await _received(host) == [query_topic(SENSOR)]

    asyncio.run(run())


def test_reader_certificate_only_reads_alerts(broker: Broker) -> None:
    async def run() -> None:
        async with (
            mqtt_as(broker, READER, "siem") as siem,
            mqtt_as(broker, SENSOR, "sensor-1") as sensor,
            mqtt_as(broker, "web-01", "web-01") as web,
        ):
            await siem.subscribe("netdetect/#", qos=1)
            await web.subscribe(query_topic("web-01"), qos=1)
            await sensor.subscribe(status_filter(), qos=1)
            await sensor.subscribe(report_filter(SENSOR, TOKEN), qos=1)
            await sensor.publish(query_topic("web-01"), b"query", qos=1)
            await siem.publish(query_topic("web-01"), b"forged", qos=1)
            await siem.publish(status_topic("siem-forwarder"), b"forged", qos=1)
            await siem.publish(report_topic(SENSOR, TOKEN, "siem-forwarder"), b"x", qos=1)
            await siem.publish("netdetect/v1/alerts", b"forged", qos=1)
            assert await _received(web) == [query_topic("web-01")]
            assert await _received(sensor) == []
            await sensor.publish("netdetect/v1/alerts", b"{}", qos=1)
            assert await _received(siem) == ["netdetect/v1/alerts"]

    asyncio.run(run())


def test_another_host_cannot_knock_an_agent_off_by_taking_its_client_id(
    tmp_path: Path, broker: Broker, spawn_agent: Callable[..., AgentProcess],
) -> None:
    """Mosquitto lets any client take over a connected client id; the agent's is random per
    connection, so web-01's certificate cannot disconnect db-01's agent (whose last will would
    tell every sensor that db-01 is offline) by guessing it."""
    agent = start_agent(tmp_path, broker, spawn_agent, "db-01")

    async def run() -> None:
        async with mqtt_as(broker, SENSOR, "sensor-1-watch") as watch:
            await watch.subscribe(status_topic("db-01"), qos=1)
            retained = await next_message(watch, 5)
            assert retained is not None
            for guess in ("db-01", "host:db-01", "netdetect-agent-db-01"):
                async with mqtt_as(broker, "web-01", guess):
                    await asyncio.sleep(0.2)
            changes = []
            while (msg := await next_message(watch, 1.5)) is not None:
                assert isinstance(msg.payload, bytes)
                changes.append(decode_status(msg.payload).state)
            assert "offline" not in changes

    asyncio.run(run())
    assert agent.proc.poll() is None
    assert "Client db-01 already connected" not in broker.log.read_text(errors="replace")


def test_make_pki_refuses_to_keep_a_certificate_without_its_role(tmp_path: Path) -> None:
    """Certificates made before the role was part of the CN get no rights from this ACL;
    re-running make-pki.sh on such a directory says which to reissue instead of keeping it."""
    out = tmp_path / "pki"
    subprocess.run([str(DEPLOY / "make-pki.sh"), "-o", str(out), "-b", "127.0.0.1", "web-01"],
                   check=True, capture_output=True, timeout=120)
    subject = subprocess.run(["openssl", "x509", "-in", str(out / "hosts" / "web-01.crt"),
                              "-noout", "-subject"], check=True, capture_output=True, text=True)
    assert subject.stdout.strip() == "subject=CN = host:web-01"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=db-01", "-days", "1",
                    "-keyout", str(out / "hosts" / "db-01.key"),
                    "-out", str(out / "hosts" / "db-01.crt")],
                   check=True, capture_output=True, timeout=60)
    done = subprocess.run([str(DEPLOY / "make-pki.sh"), "-o", str(out), "k8s-node-3"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2
    assert (f"{out}/hosts/db-01.crt has CN 'db-01', not 'host:db-01': move it and its key "
            "away and re-run to reissue it") in done.stderr
    assert not (out / "hosts" / "k8s-node-3.crt").exists()
