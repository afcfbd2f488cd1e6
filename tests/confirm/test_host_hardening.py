"""Issue 8, the host side, against a real Mosquitto and real agent processes: hostile bytes on
the host, replayed queries across restarts, floods, shared sensor ids."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest

from netdetect.agent.protocol import load_private_key, publish_properties, seal_query
from netdetect.agent.schema import BUSY_PREFIX, SCHEMA_VERSION, HostQuery, HostReport
from netdetect.agent.topics import query_topic, report_filter, report_topic
from netdetect.model import Verdict

from .conftest import (
    REPO,
    SENSOR,
    STUB,
    TOKEN,
    AgentProcess,
    Broker,
    Miner,
    free_port,
    mqtt_as,
    next_message,
    suspect,
    wait_status,
    write_agent_toml,
)
from .test_loop import _pool_port, open_confirmer, start_agent

pytestmark = pytest.mark.broker

RAW_PATH = b"/opt/m\xffner/xmrig"  # not UTF-8, as a miner may choose to be


def test_non_utf8_argv_and_file_names_do_not_blind_the_report(
    tmp_path: Path, broker: Broker, spawn_agent: Callable[..., AgentProcess],
    miners: Callable[..., Miner],
) -> None:
    root = tmp_path / "root"
    units = root / "home" / "u" / ".config" / "systemd" / "user"
    units.mkdir(parents=True)
    (units / os.fsdecode(b"x\xff.service")).write_bytes(
        b"[Service]\nExecStart=" + RAW_PATH + b" --donate-level 1 \xfe\n")
    start_agent(tmp_path, broker, spawn_agent, real_collector=True, root=json.dumps(str(root)))
    busy = miners(True, ("-o", "stratum+tcp://pool.example.com:3333", "--donate-level", "1",
                         os.fsdecode(RAW_PATH)))

    async def run() -> None:
        async with open_confirmer(tmp_path, broker, cpu_window=1.0, timeout=20.0) as c:
            alert = await c.confirm(suspect("127.0.0.1", busy.local_port, _pool_port(busy)))
        assert alert.verdict is Verdict.CONFIRMED_PERSISTENT, (alert.reasons, alert.host)
        report = alert.host
        assert report is not None
        assert report.process is not None
        assert report.process.pid == busy.proc.pid
        assert "/opt/m\\xffner/xmrig" in report.process.cmdline
        [entry] = [e for e in report.persistence if e.references_process]
        assert entry.path.endswith("/x\\xff.service")
        assert "/opt/m\\xffner/xmrig --donate-level 1 \\xfe" in entry.text
        assert not any("collector failed" in e for e in report.errors)

    asyncio.run(run())


def _signed_query(broker: Broker, response: str,
                  cpu_window: float = 0.0) -> tuple[HostQuery, bytes]:
    now = time.time()
    query = msgspec.convert({
        "v": SCHEMA_VERSION, "host_id": "web-01", "nonce": secrets.token_hex(16),
        "issued_at": now, "expires_at": now + 50,
        "flow": {"proto": "tcp", "remote_ip": "192.0.2.1", "remote_port": 3333},
        "cpu_window": cpu_window,
    }, HostQuery)
    return query, seal_query(query, response, load_private_key(broker.pki.signing_key))


def test_answered_query_replayed_after_agent_restart_is_refused(
    tmp_path: Path, broker: Broker, spawn_agent: Callable[..., AgentProcess],
) -> None:
    # No state_dir: the default, next to the agent's config, has to be enough.
    first = start_agent(tmp_path, broker, spawn_agent)
    response = report_topic(SENSOR, TOKEN, "web-01")
    query, envelope = _signed_query(broker, response)
    props = publish_properties(correlation=query.nonce.encode(), response_topic=response)

    async def ask(expect_answer: bool) -> None:
        async with mqtt_as(broker, SENSOR, f"sensor-1-probe-{time.monotonic_ns()}") as probe:
            await probe.subscribe(report_filter(SENSOR, TOKEN), qos=1)
            await probe.publish(query_topic("web-01"), envelope, qos=1, properties=props)
            answer = await next_message(probe, 5 if expect_answer else 1.5)
        assert (answer is not None) is expect_answer

    asyncio.run(ask(expect_answer=True))
    # Killed, not stopped: the nonce must already be on disk when the answer is out.
    first.signal(signal.SIGKILL)
    first.wait(10)
    second = start_agent(tmp_path, broker, spawn_agent)
    assert second.pid != first.pid
    asyncio.run(ask(expect_answer=False))
    status = asyncio.run(wait_status(broker, "web-01",
                                     lambda s: s.pid == second.pid and "replayed" in s.counters))
    assert status.counters["replayed"] == 1
    assert "answered" not in status.counters
    assert (tmp_path / "web-01.nonces.json").is_file()


def test_sensor_processes_sharing_an_id_do_not_see_each_others_reports(
    tmp_path: Path, broker: Broker, spawn_agent: Callable[..., AgentProcess],
    miners: Callable[..., Miner],
) -> None:
    start_agent(tmp_path, broker, spawn_agent, max_concurrent=8)
    busy = miners(True)
    pool_port = _pool_port(busy)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()

    async def run() -> None:
        # Two Confirmers from one sensor.toml: what a `replay --confirm` beside a running
        # `sniff` amounts to on the broker (same certificate, same sensor id).
        async with (open_confirmer(tmp_path / "a", broker) as a,
                    open_confirmer(tmp_path / "b", broker) as b):
            alerts = await asyncio.gather(
                a.confirm(suspect("127.0.0.1", busy.local_port, pool_port)),
                b.confirm(suspect("127.0.0.1", busy.local_port, pool_port)),
                a.confirm(suspect("127.0.0.1", busy.local_port, pool_port)),
            )
            await asyncio.sleep(0.5)  # a stray report would arrive by now
            for alert in alerts:
                assert alert.verdict is Verdict.CONFIRMED, alert.reasons
            for c in (a, b):
                rejected = {k: v for k, v in c.counters().items() if k.startswith("report-rej")}
                assert rejected == {}
            assert a.counters()["reports-accepted"] == 2
            assert b.counters()["reports-accepted"] == 1

    asyncio.run(run())


def _forged(envelope: bytes) -> bytes:
    """The envelope with a signature that does not verify: costs the agent a verification."""
    env = json.loads(envelope)
    env["sig"] = base64.b64encode(secrets.token_bytes(64)).decode()
    return json.dumps(env).encode()


WARNING_LINE = re.compile(rb"^\S+ \S+ (WARNING|ERROR|CRITICAL) ", re.MULTILINE)


def test_query_flood_is_shed_counted_and_logged_once_per_interval(
    tmp_path: Path, broker: Broker, spawn_agent: Callable[..., AgentProcess],
) -> None:
    """A flood of forged and of valid queries: every refusal is counted (status and metrics),
    the log gets one line per interval per kind with the count, queries beyond capacity are
    answered busy or shed, and a valid query after the flood is answered in full."""
    interval = 1.0
    port = free_port()
    agent = spawn_agent(write_agent_toml(tmp_path / "agent.toml", broker, "web-01",
                                         max_concurrent=2, log_interval=interval),
                        extra=("--metrics-port", str(port)))
    asyncio.run(wait_status(broker, "web-01", lambda s: s.state == "online" and s.pid == agent.pid))
    response = report_topic(SENSOR, TOKEN, "web-01")
    forged, valid = 3000, 300

    started = time.monotonic()

    async def flood() -> list[bool]:
        async with mqtt_as(broker, SENSOR, f"sensor-1-flood-{time.monotonic_ns()}") as probe:
            await probe.subscribe(report_filter(SENSOR, TOKEN), qos=1)
            for i in range(forged):
                query, envelope = _signed_query(broker, response, cpu_window=0.5)
                props = publish_properties(correlation=query.nonce.encode(),
                                           response_topic=response)
                await probe.publish(query_topic("web-01"), _forged(envelope), qos=0,
                                    properties=props)
                if i % 10 == 0:
                    await probe.publish(query_topic("web-01"), envelope, qos=0,
                                        properties=props)
            # Drain what the agent sends back (answers and busy answers) until it goes quiet.
            busy: list[bool] = []
            while (msg := await next_message(probe, 3.0)) is not None:
                assert isinstance(msg.payload, bytes)
                report = msgspec.json.decode(msg.payload, type=HostReport)
                busy.append(any(e.startswith(BUSY_PREFIX) for e in report.errors))
        return busy

    busy = asyncio.run(flood())
    assert len(busy) >= 2
    assert any(busy)
    assert not all(busy)

    # After the flood, a valid query gets a full answer, not "busy".
    async def ask() -> HostReport:
        async with mqtt_as(broker, SENSOR, f"sensor-1-probe-{time.monotonic_ns()}") as probe:
            await probe.subscribe(report_filter(SENSOR, TOKEN), qos=1)
            query, envelope = _signed_query(broker, response)
            props = publish_properties(correlation=query.nonce.encode(), response_topic=response)
            await probe.publish(query_topic("web-01"), envelope, qos=1, properties=props)
            msg = await next_message(probe, 10)
        assert msg is not None
        assert isinstance(msg.payload, bytes)
        return msgspec.json.decode(msg.payload, type=HostReport)

    answer = asyncio.run(ask())
    assert answer.errors == []
    assert answer.host_id == "web-01"

    time.sleep(interval * 2)  # the summary line for the flood's tail is due by now
    status = asyncio.run(wait_status(broker, "web-01",
                                     lambda s: s.counters.get("bad-signature", 0) > 0))
    c = status.counters
    refused = c["bad-signature"]
    assert refused >= forged // 2, c  # the flood reached the agent (QoS 0 may lose a little)
    assert c["received"] + c.get("shed-queue-full", 0) <= forged + valid + 1
    assert c["busy"] >= 1
    assert c["answered"] >= 2
    assert c.get("busy-answered", 0) == sum(busy)  # each busy answer the sensor got, counted

    # Every refusal is in the log exactly once: as a line of its own or inside a count.
    text = agent.log.read_bytes()
    elapsed = time.monotonic() - started
    own = len(re.findall(rb"WARNING netdetect\.agent: query refused: bad-signature", text))
    counted = sum(int(n) for n in re.findall(
        rb"queries refused: \d+ more in the last \d+s \([^)]*bad-signature=(\d+)", text))
    assert own + counted == refused, (own, counted, refused)
    warnings = len(WARNING_LINE.findall(text))
    # Per kind (refused, beyond capacity, queue full): the first line, then one per interval.
    assert warnings <= 3 * (elapsed / interval + 2), (warnings, elapsed)
    assert b"Message queue is full" not in text

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        metrics = r.read().decode()
    m = re.search(r'netdetect_agent_queries_total\{outcome="bad-signature"\} (\d+)', metrics)
    assert m is not None
    assert int(m.group(1)) >= refused


def test_nonce_state_on_a_full_disk_is_counted_logged_and_the_query_still_answered(
    tmp_path: Path, broker: Broker,
) -> None:
    """The agent's state_dir is a full tmpfs (mounted in a private mount namespace that only
    the agent process sees). Answering is what an operator wants: refusing would let anyone
    who can fill that filesystem blind confirmation of their own miner, while the cost of
    answering is only a replay window across a restart, until those queries expire. So the
    failure is counted and logged, the query answered, a replay is still refused from memory,
    and once space is back the next save writes every live nonce, closing the window."""
    if os.geteuid() != 0:
        raise RuntimeError("this test mounts a tmpfs in a private mount namespace: run as root")
    state = tmp_path / "state"
    state.mkdir()
    config = write_agent_toml(tmp_path / "agent.toml", broker, "web-01",
                              state_dir=json.dumps(str(state)))
    mount = (f"mount -t tmpfs -o size=64k,mode=700 netdetect-full {state} && "
             f"{{ cat /dev/zero > {state}/filler 2>/dev/null; true; }} && exec \"$@\"")
    log = tmp_path / "agent.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", mount, "sh",
             sys.executable, str(STUB), "--config", str(config), "--log-level", "DEBUG"],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(REPO)})
    inside = Path(f"/proc/{proc.pid}/root") / str(state).lstrip("/")  # the agent's view
    try:
        asyncio.run(wait_status(broker, "web-01",
                                lambda s: s.state == "online" and s.pid == proc.pid))
        assert sorted(p.name for p in inside.iterdir()) == ["filler"]
        response = report_topic(SENSOR, TOKEN, "web-01")

        async def ask(envelope: bytes, query: HostQuery) -> bool:
            props = publish_properties(correlation=query.nonce.encode(), response_topic=response)
            async with mqtt_as(broker, SENSOR, f"sensor-1-probe-{time.monotonic_ns()}") as p:
                await p.subscribe(report_filter(SENSOR, TOKEN), qos=1)
                await p.publish(query_topic("web-01"), envelope, qos=1, properties=props)
                return await next_message(p, 5) is not None

        first, first_env = _signed_query(broker, response)
        assert asyncio.run(ask(first_env, first))  # answered although the save failed
        status = asyncio.run(wait_status(broker, "web-01",
                                         lambda s: s.counters.get("answered", 0) == 1))
        assert status.counters["nonce-state-failed"] == 1
        assert not asyncio.run(ask(first_env, first))  # the replay: refused from memory
        asyncio.run(wait_status(broker, "web-01", lambda s: s.counters.get("replayed") == 1))
        text = log.read_text(errors="replace")
        assert (f"answered nonces not saved to {state}/web-01.nonces.json: [Errno 28] No space "
                "left on device (queries are still answered") in text
        assert sorted(p.name for p in inside.iterdir()) == ["filler"]  # no temp file left

        (inside / "filler").unlink()  # space is back
        second, second_env = _signed_query(broker, response)
        assert asyncio.run(ask(second_env, second))
        saved = json.loads((inside / "web-01.nonces.json").read_text())
        assert {n for n, _ in saved} == {first.nonce, second.nonce}
        assert list(state.iterdir()) == []  # nothing was written outside the agent's mount
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
