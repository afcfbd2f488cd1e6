"""The agent's Prometheus endpoint: build info and its query counters, from a real agent
process answering a real signed query through the broker."""

from __future__ import annotations

import asyncio
import re
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from netdetect.metrics import AgentMetrics

from .conftest import AgentProcess, Broker, free_port, suspect, wait_status, write_agent_toml
from .test_loop import open_confirmer, until

pytestmark = pytest.mark.broker


def test_agent_metrics_collector() -> None:
    m = AgentMetrics(lambda: {"answered": 3, "bad-signature": 1})
    text = generate_latest(m.registry).decode()
    assert 'netdetect_agent_queries_total{outcome="answered"} 3.0' in text
    assert 'netdetect_agent_queries_total{outcome="bad-signature"} 1.0' in text
    assert "netdetect_build_info{" in text


def test_agent_serves_its_counters(tmp_path: Path, broker: Broker,
                                   spawn_agent: Callable[..., AgentProcess]) -> None:
    port = free_port()
    proc = spawn_agent(write_agent_toml(tmp_path / "agent.toml", broker, "web-01"),
                       extra=("--metrics-port", str(port)))
    asyncio.run(wait_status(broker, "web-01",
                            lambda s: s.state == "online" and s.pid == proc.pid))

    def scrape() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            body: bytes = r.read()
            return body.decode()

    assert "netdetect_build_info{" in scrape()

    async def ask() -> None:
        async with open_confirmer(tmp_path, broker) as c:
            await until(lambda: c.status("web-01") is not None, 5)
            await c.confirm(suspect("127.0.0.1", 1, 3333))  # nobody owns it: still answered

    asyncio.run(ask())
    text = scrape()
    assert re.search(r'netdetect_agent_queries_total\{outcome="received"\} [1-9]', text), text
    assert re.search(r'netdetect_agent_queries_total\{outcome="answered"\} [1-9]', text), text
