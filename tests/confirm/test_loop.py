"""The confirmation loop end to end against a real Mosquitto and real agent processes."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import signal
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiomqtt
import msgspec
import psutil
import pytest

from netdetect.agent.protocol import (
    Envelope,
    Status,
    load_private_key,
    publish_properties,
    seal_query,
)
from netdetect.agent.schema import MAX_REPORT_BYTES, SCHEMA_VERSION, HostQuery, HostReport
from netdetect.agent.topics import query_topic, report_filter, report_topic, response_topic_ok
from netdetect.config import load_sensor_config
from netdetect.confirm import BROKER_UNAVAILABLE, Confirmer
from netdetect.hosts import Inventory
from netdetect.model import Alert, Verdict

from .conftest import (
    INVENTORY,
    SENSOR,
    TOKEN,
    AgentProcess,
    Broker,
    Miner,
    mqtt_as,
    next_message,
    suspect,
    wait_status,
    write_agent_toml,
    write_sensor_toml,
)

pytestmark = pytest.mark.broker


@contextlib.asynccontextmanager
async def open_confirmer(tmp_path: Path, broker: Broker, *, keepalive: int = 10,
                         **confirm: object) -> AsyncIterator[Confirmer]:
    inventory = tmp_path / "inventory.toml"
    inventory.write_text(INVENTORY)
    cfg = load_sensor_config(write_sensor_toml(tmp_path / "sensor.toml", broker, inventory,
                                               keepalive=keepalive, **confirm))
    assert cfg.inventory is not None
    async with Confirmer(cfg, Inventory.load(cfg.inventory)) as c:
        assert await c.wait_connected(10), "sensor never connected to the broker"
        yield c


def start_agent(tmp_path: Path, broker: Broker, spawn: Callable[..., AgentProcess],
                host_id: str = "web-01", *, real_collector: bool = False,
                **agent: object) -> AgentProcess:
    proc = spawn(write_agent_toml(tmp_path / f"agent-{host_id}.toml", broker, host_id, **agent),
                 real_collector=real_collector)
    asyncio.run(wait_status(broker, host_id, lambda s: s.state == "online" and s.pid == proc.pid))
    return proc


async def until(pred: Callable[[], bool], timeout: float) -> None:
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def test_signed_query_round_trip_confirms_busy_process_only(
    tmp_path: Path, broker: Broker, spawn_agent: Callable[..., AgentProcess],
    miners: Callable[..., Miner],
) -> None:
    start_agent(tmp_path, broker, spawn_agent)
    busy, idle = miners(True), miners(False)
    busy_pool = _pool_port(busy)

    async def run() -> None:
        async with open_confirmer(tmp_path, broker) as c:
            await until(lambda: c.status("web-01") is not None, 5)
            hot, cold = await asyncio.gather(
                c.confirm(suspect("127.0.0.1", busy.local_port, busy_pool)),
                c.confirm(suspect("127.0.0.1", idle.local_port, busy_pool)),
            )
            assert hot.verdict is Verdict.CONFIRMED, hot.reasons
            assert hot.severity == 1
            assert hot.host_id == "web-01"
            assert hot.host is not None
            assert hot.host.process is not None
            assert hot.host.process.pid == busy.proc.pid
            assert any("CPU" in r for r in hot.reasons)
            assert hot.mitre == ("T1496",)

            assert cold.verdict is Verdict.NETWORK_ONLY, cold.reasons
            assert cold.host is not None
            assert cold.host.process is not None
            assert cold.host.process.pid == idle.proc.pid
            assert "does not look abnormal" in cold.reasons[0]
            assert cold.severity == 2  # score 90 >= high_score 80

            counters = c.counters()
            assert counters["queries-sent"] == 2
            assert counters["reports-accepted"] == 2
            assert not [k for k in counters if k.startswith("report-rejected")]

    asyncio.run(run())


def test_real_agent_module_confirms_busy_process(
    tmp_path: Path, broker: Broker, spawn_agent: Callable[..., AgentProcess],
    miners: Callable[..., Miner],
) -> None:
    """`python -m netdetect.agent.daemon` with the real collectors (netdetect.agent.report)."""
    start_agent(tmp_path, broker, spawn_agent, real_collector=True)
    # xmrig-style options: the real collectors' trait detection confirms it however little
    # CPU a loaded test machine leaves the busy loop.
    busy = miners(True, ("-o", "stratum+tcp://pool.example.com:3333", "--donate-level", "1"))
    pool_port = _pool_port(busy)

    async def run() -> None:
        async with open_confirmer(tmp_path, broker, cpu_window=1.0, timeout=20.0) as c:
            alert = await c.confirm(suspect("127.0.0.1", busy.local_port, pool_port))
        assert alert.verdict is Verdict.CONFIRMED, (alert.reasons, alert.host)
        assert alert.host is not None
        assert alert.host.host_id == "web-01"
        assert alert.host.process is not None
        assert alert.host.process.pid == busy.proc.pid
        assert "cmdline:donate-level" in alert.host.process.traits
        assert any("miner traits" in r for r in alert.reasons)

    asyncio.run(run())


def _pool_port(miner: Miner) -> int:
    for conn in psutil.Process(miner.proc.pid).net_connections(kind="tcp"):
        if conn.raddr:
            return int(conn.raddr.port)
    raise AssertionError("miner has no connection")


def _sealed(query: HostQuery, response: str, tmp_key: Path) -> bytes:
    return seal_query(query, response, load_private_key(tmp_key))


def test_real_agent_answers_a_burst_within_one_window(
    tmp_path: Path, broker: Broker, spawn_agent: Callable[..., AgentProcess],
    miners: Callable[..., Miner],
) -> None:
    """Concurrent queries share the agent's CPU window instead of each holding a thread."""
    start_agent(tmp_path, broker, spawn_agent, real_collector=True, max_concurrent=16)
    busy = miners(True, ("-o", "stratum+tcp://pool.example.com:3333", "--donate-level", "1"))
    pool_port = _pool_port(busy)

    async def run() -> None:
        async with open_confirmer(tmp_path, broker, cpu_window=1.0, timeout=20.0) as c:
            # The first query imports the collectors and walks the persistence tree.
            await c.confirm(suspect("127.0.0.1", busy.local_port, pool_port))
            before = await wait_status(broker, "web-01",
                                       lambda s: s.counters.get("answered") == 1)
            alerts = await asyncio.gather(*[
                c.confirm(suspect("127.0.0.1", busy.local_port, pool_port)) for _ in range(12)])
        assert [a.verdict for a in alerts] == [Verdict.CONFIRMED] * 12, alerts[0].reasons
        assert {a.host.process.pid for a in alerts if a.host and a.host.process} == {
            busy.proc.pid}
        after = await wait_status(broker, "web-01", lambda s: s.counters.get("answered") == 13
                                  and s.counters.get("busy", 0) == 0)
        # Counted, not timed: twelve queries in one burst join one window (a straggler that
        # arrives after it closed opens a second), where each holding its own would open 12.
        opened = after.counters["cpu-windows"] - before.counters["cpu-windows"]
        assert 1 <= opened <= 2, opened

    asyncio.run(run())


def test_agent_refuses_bad_queries_and_counts_each_reason(
    tmp_path: Path, broker: Broker, spawn_agent: Callable[..., AgentProcess],
) -> None:
    start_agent(tmp_path, broker, spawn_agent)
    key = broker.pki.signing_key
    response = report_topic(SENSOR, TOKEN, "web-01")

    def query(**kw: object) -> HostQuery:
        now = time.time()
        base: dict[str, object] = {
            "v": SCHEMA_VERSION, "host_id": "web-01", "nonce": f"{time.monotonic_ns():032x}",
            "issued_at": now, "expires_at": now + 20,
            "flow": {"proto": "tcp", "remote_ip": "192.0.2.1", "remote_port": 3333},
            "cpu_window": 0.0,
        }
        base.update(kw)
        return msgspec.convert(base, HostQuery)

    good = query()
    good_env = _sealed(good, response, key)
    env = msgspec.json.decode(_sealed(query(), response, key), type=Envelope)
    bad_sig = bytearray(base64.b64decode(env.sig))
    bad_sig[0] ^= 1
    forged = msgspec.json.encode(msgspec.structs.replace(
        env, sig=base64.b64encode(bytes(bad_sig)).decode()))

    cases: list[tuple[str, bytes, str]] = [
        ("unsigned", msgspec.json.encode(query()), response),
        ("bad-signature", forged, response),
        ("expired", _sealed(query(issued_at=time.time() - 100, expires_at=time.time() - 50),
                            response, key), response),
        ("future", _sealed(query(issued_at=time.time() + 100, expires_at=time.time() + 110),
                           response, key), response),
        ("wrong-host", _sealed(query(host_id="db-01"), response, key), response),
        ("bad-response-topic", _sealed(query(), "netdetect/v1/alerts", key),
         "netdetect/v1/alerts"),
        # signed for one response topic, delivered with another: the signature breaks
        ("bad-signature", _sealed(query(), report_topic("sensor-9", TOKEN, "web-01"), key),
         response),
        ("malformed", b"\xff\x00not json", response),
    ]

    async def run() -> None:
        async with mqtt_as(broker, SENSOR, "sensor-1-probe") as probe:
            await probe.subscribe(report_filter(SENSOR, TOKEN), qos=1)
            for _reason, payload, rt in cases:
                nonce = b"0" * 32
                with contextlib.suppress(msgspec.DecodeError):
                    inner = msgspec.json.decode(payload, type=Envelope)
                    nonce = msgspec.json.decode(base64.b64decode(inner.query),
                                                type=HostQuery).nonce.encode()
                await probe.publish(query_topic("web-01"), payload, qos=1,
                                    properties=publish_properties(correlation=nonce,
                                                                  response_topic=rt))
            assert await next_message(probe, 1.5) is None, "a refused query was answered"
            # the same valid query twice: answered once, then a replay
            for _ in range(2):
                await probe.publish(query_topic("web-01"), good_env, qos=1,
                                    properties=publish_properties(
                                        correlation=good.nonce.encode(), response_topic=response))
            first = await next_message(probe, 5)
            assert first is not None
            assert isinstance(first.payload, bytes)
            report = msgspec.json.decode(first.payload, type=HostReport)
            assert report.nonce == good.nonce
            assert report.host_id == "web-01"
            assert await next_message(probe, 1.0) is None, "a replayed query was answered"

        expected = {"unsigned": 1, "bad-signature": 2, "expired": 1, "future": 1,
                    "wrong-host": 1, "bad-response-topic": 1, "malformed": 1, "replayed": 1,
                    "answered": 1}

        def matches(s: Status) -> bool:
            return all(s.counters.get(k, 0) == v for k, v in expected.items())

        status = await wait_status(broker, "web-01", matches, timeout=10)
        assert status.counters["received"] == len(cases) + 2

    asyncio.run(run())


def test_agent_drops_queries_beyond_its_concurrency(
    tmp_path: Path, broker: Broker, spawn_agent: Callable[..., AgentProcess],
) -> None:
    start_agent(tmp_path, broker, spawn_agent, max_concurrent=1)

    async def run() -> None:
        async with open_confirmer(tmp_path, broker, cpu_window=1.0, timeout=6.0) as c:

            async def timed(i: int) -> tuple[Alert, float]:
                start = time.monotonic()
                alert = await c.confirm(suspect("127.0.0.1", 40000 + i, 9))
                return alert, time.monotonic() - start

            results = await asyncio.gather(*[timed(i) for i in range(4)])
            counters = c.counters()
        answered = [a for a, _ in results if a.host is not None]
        assert len(answered) == 1
        dropped = [(a, took) for a, took in results if a.host is None]
        assert len(dropped) == 3
        for alert, took in dropped:
            # Told at once, not left to wait out the 6 s timeout.
            assert alert.verdict is Verdict.NETWORK_ONLY
            assert alert.reasons[0].startswith("host web-01 agent busy: busy: agent at capacity")
            assert took < 3.0, f"busy answer took {took:.2f} s"
        assert counters.get("agent-busy") == 3
        assert counters.get("timeouts", 0) == 0
        await wait_status(broker, "web-01", lambda s: s.counters.get("busy") == 3
                          and s.counters.get("busy-answered") == 3)

    asyncio.run(run())


# --- forged reports ---------------------------------------------------------------------------


def test_forged_reports_are_rejected_and_counted(tmp_path: Path, broker: Broker) -> None:
    async def fake_agent(ready: asyncio.Event) -> None:
        async with mqtt_as(broker, "web-01", "web-01") as agent:
            await agent.subscribe(query_topic("web-01"), qos=1)
            ready.set()
            msg = await next_message(agent, 10)
            assert msg is not None
            assert isinstance(msg.payload, bytes)
            env = msgspec.json.decode(msg.payload, type=Envelope)
            q = msgspec.json.decode(base64.b64decode(env.query), type=HostQuery)
            rt = getattr(msg.properties, "ResponseTopic", None)
            assert rt is not None
            assert response_topic_ok(rt, "web-01")

            def report(**kw: object) -> dict[str, object]:
                doc: dict[str, object] = {"v": 1, "host_id": "web-01", "nonce": q.nonce,
                                          "generated_at": time.time(), "found": False}
                doc.update(kw)
                return doc

            forged = [
                json.dumps(report(host_id="db-01")).encode(),
                json.dumps(report(nonce="ab" * 16)).encode(),
                json.dumps(report(errors=["x" * MAX_REPORT_BYTES])).encode(),
                b'{"v": 1, "host_id": "web-01", "nonce": ',
                json.dumps(report(shell="rm -rf /")).encode(),
                json.dumps(report(found="yes")).encode(),
            ]
            for payload in forged:
                await agent.publish(rt, payload, qos=1,
                                    properties=publish_properties(correlation=q.nonce.encode()))
            real = report(errors=["the real one"])
            await agent.publish(rt, json.dumps(real).encode(), qos=1,
                                properties=publish_properties(correlation=q.nonce.encode()))

    async def run() -> None:
        async with open_confirmer(tmp_path, broker) as c:
            ready = asyncio.Event()
            agent = asyncio.create_task(fake_agent(ready))
            await ready.wait()
            alert = await c.confirm(suspect("127.0.0.1", 40001, 3333))
            await agent
            # Only the last, valid report resolved the query.
            assert alert.host is not None
            assert alert.host.errors == ["the real one"]
            assert alert.verdict is Verdict.NETWORK_ONLY
            counters = c.counters()
            assert counters["report-rejected-host-mismatch"] == 1
            assert counters["report-rejected-unknown-nonce"] == 1
            assert counters["report-rejected-oversized"] == 1
            assert counters["report-rejected-malformed"] == 1
            assert counters["report-rejected-schema"] == 2
            assert counters["reports-accepted"] == 1

    asyncio.run(run())


# --- agent gone -------------------------------------------------------------------------------


@pytest.mark.parametrize(("sig", "why"), [(signal.SIGTERM, "shutdown"),
                                          (signal.SIGKILL, "connection lost")])
def test_stopped_agent_means_network_only_at_once(
    tmp_path: Path, broker: Broker, spawn_agent: Callable[..., AgentProcess],
    sig: signal.Signals, why: str,
) -> None:
    agent = start_agent(tmp_path, broker, spawn_agent)

    async def run() -> None:
        async with open_confirmer(tmp_path, broker) as c:
            await until(lambda: (s := c.status("web-01")) is not None and s.state == "online", 5)
            agent.signal(sig)
            rc = await asyncio.to_thread(agent.wait, 10)
            assert rc == (0 if sig == signal.SIGTERM else -signal.SIGKILL)
            await until(lambda: (s := c.status("web-01")) is not None and s.state == "offline",
                        10)
            status = c.status("web-01")
            assert status is not None
            assert status.reason == why
            start = time.monotonic()
            alert = await c.confirm(suspect("127.0.0.1", 40002, 3333))
            assert time.monotonic() - start < 0.5
            assert alert.verdict is Verdict.NETWORK_ONLY
            assert alert.reasons == (f"host web-01 agent offline ({why})",)
            assert "queries-sent" not in c.counters()

    asyncio.run(run())


def test_unmanaged_and_agentless_hosts_cause_no_mqtt_traffic(
    tmp_path: Path, broker: Broker, monkeypatch: pytest.MonkeyPatch,
) -> None:
    published: list[str] = []
    real_publish = aiomqtt.Client.publish

    async def spy(self: aiomqtt.Client, topic: str, *a: object, **kw: object) -> None:
        published.append(topic)
        await real_publish(self, topic, *a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(aiomqtt.Client, "publish", spy)

    async def run() -> None:
        async with open_confirmer(tmp_path, broker) as c:
            start = time.monotonic()
            unmanaged = await c.confirm(suspect("10.9.9.9", 40003, 3333))
            agentless = await c.confirm(suspect("127.0.0.3", 40004, 3333))
            assert time.monotonic() - start < 0.5
        assert unmanaged.verdict is Verdict.NETWORK_ONLY
        assert unmanaged.host_id is None
        assert unmanaged.reasons == ("host unmanaged: 10.9.9.9 is not in the inventory",)
        assert agentless.verdict is Verdict.NETWORK_ONLY
        assert agentless.host_id == "printer-2"
        assert agentless.reasons == ("host printer-2 runs no agent",)
        assert published == []

    asyncio.run(run())


# --- broker outage ----------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["killed-awaiting-answer", "killed-awaiting-puback",
                                 "frozen-keepalive"])
def test_queries_outstanding_when_the_link_drops_end_at_once(
    tmp_path: Path, broker: Broker, spawn_agent: Callable[..., AgentProcess],
    miners: Callable[..., Miner], how: str,
) -> None:
    """One slot, one query in flight, three suspects queued behind it, then the link dies: the
    broker is killed while the agent is still sampling, killed before it acknowledged the
    query, or frozen until the keepalive gives up on it. All four are raised as broker
    unavailable, none after its own or the slot's timeout."""
    start_agent(tmp_path, broker, spawn_agent)
    busy = miners(True)
    pool_port = _pool_port(busy)
    timeout = 60.0

    async def run() -> None:
        async with open_confirmer(tmp_path, broker, cpu_window=4.0, timeout=timeout,
                                  max_outstanding=1, keepalive=5) as c:
            if how != "killed-awaiting-answer":
                broker.freeze()  # the query goes out; no PUBACK, no answer ever comes back
            asks = [asyncio.create_task(c.confirm(suspect("127.0.0.1", busy.local_port,
                                                          pool_port))) for _ in range(4)]
            await until(lambda: c.outstanding == 1, 5)
            if how == "killed-awaiting-answer":
                await until(lambda: c.counters().get("queries-sent") == 1, 5)
            if how != "frozen-keepalive":
                broker.kill()
            # Bounded only so a regression fails rather than hangs; the reasons and counters
            # below are what show nothing waited for a timeout.
            alerts = await asyncio.wait_for(asyncio.gather(*asks), timeout / 2)
            broker.kill()  # a frozen broker would stall the reconnect attempts on the way out
            assert c.outstanding == 0
            counters = c.counters()
        assert [a.verdict for a in alerts] == [Verdict.NETWORK_ONLY] * 4
        assert [a.reasons for a in alerts] == [(BROKER_UNAVAILABLE,)] * 4
        assert counters["broker-unavailable"] == 4
        assert counters["broker-disconnects"] >= 1
        assert counters.get("queries-sent", 0) == (how == "killed-awaiting-answer")
        assert "capacity-exhausted" not in counters
        assert "timeouts" not in counters
        assert "reports-accepted" not in counters

    asyncio.run(run())


def test_after_the_broker_restarts_the_agent_answers_again(
    tmp_path: Path, broker: Broker, spawn_agent: Callable[..., AgentProcess],
    miners: Callable[..., Miner],
) -> None:
    agent = start_agent(tmp_path, broker, spawn_agent)
    busy = miners(True)
    pool_port = _pool_port(busy)

    async def run() -> None:
        async with open_confirmer(tmp_path, broker, cpu_window=2.0, timeout=20.0) as c:
            broker.kill()
            await until(lambda: not c.connected, 10)
            down = await c.confirm(suspect("127.0.0.1", busy.local_port, pool_port))
            assert down.verdict is Verdict.NETWORK_ONLY
            assert down.reasons == (BROKER_UNAVAILABLE,)
            assert "queries-sent" not in c.counters()

            broker.start()
            assert await c.wait_connected(15), "sensor did not reconnect"
            await wait_status(broker, "web-01",
                              lambda s: s.state == "online" and s.pid == agent.pid)
            back = await c.confirm(suspect("127.0.0.1", busy.local_port, pool_port))
            assert back.verdict is Verdict.CONFIRMED, back.reasons
            assert back.host is not None
            assert back.host.process is not None
            assert back.host.process.pid == busy.proc.pid
            counters = c.counters()
            # The drop, and each attempt the dead broker refused.
            assert counters["broker-disconnects"] >= 1
            assert counters["queries-sent"] == 1
            assert counters["reports-accepted"] == 1

    asyncio.run(run())


def test_an_answer_after_its_link_dropped_is_counted_late_and_raises_nothing(
    tmp_path: Path, broker: Broker, spawn_agent: Callable[..., AgentProcess],
    miners: Callable[..., Miner],
) -> None:
    """The sensor's link drops (another client takes its id; broker and agent stay up) while
    the agent samples: the suspect is raised once as broker unavailable, and the agent's
    answer, arriving over the new link, is counted late instead of raising it again."""
    start_agent(tmp_path, broker, spawn_agent)
    busy = miners(True)
    pool_port = _pool_port(busy)

    async def run() -> None:
        async with open_confirmer(tmp_path, broker, cpu_window=4.0, timeout=20.0) as c:
            ask = asyncio.create_task(c.confirm(suspect("127.0.0.1", busy.local_port,
                                                        pool_port)))
            await until(lambda: c.counters().get("queries-sent") == 1, 5)
            async with mqtt_as(broker, SENSOR, c.client_id):
                pass
            alert = await asyncio.wait_for(ask, 10)
            assert alert.verdict is Verdict.NETWORK_ONLY
            assert alert.reasons == (BROKER_UNAVAILABLE,)
            assert await c.wait_connected(10), "sensor did not reconnect"
            await until(lambda: c.counters().get("reports-late") == 1, 15)
            counters = c.counters()
            assert counters["broker-disconnects"] >= 1
            assert counters["broker-unavailable"] == 1
            assert "reports-accepted" not in counters
            assert not [k for k in counters if k.startswith("report-rejected")]

            # The new link carries queries and answers as the old one did.
            back = await c.confirm(suspect("127.0.0.1", busy.local_port, pool_port))
            assert back.verdict is Verdict.CONFIRMED, back.reasons
            assert c.counters()["reports-accepted"] == 1

    asyncio.run(run())
