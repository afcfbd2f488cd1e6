"""`pip install 'netdetect[agent]'` is all a monitored host needs: the agent runs, against a
real broker, with exactly the distributions that the base dependencies and the `agent` extra
pull in (resolved from pyproject.toml and the installed metadata, and nothing else on the
path), and the sensor commands then say which extra they need instead of a traceback."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tomllib
import urllib.request
from importlib.metadata import Distribution, PackageNotFoundError, distribution
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from netdetect.agent.protocol import publish_properties
from netdetect.agent.topics import query_topic, report_filter, report_topic

from .conftest import (
    REPO,
    SENSOR,
    TOKEN,
    Broker,
    free_port,
    mqtt_as,
    next_message,
    wait_status,
    write_agent_toml,
)
from .test_host_hardening import _signed_query

pytestmark = pytest.mark.broker

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def _closure(requirements: list[str]) -> dict[str, Distribution]:
    """Every installed distribution the requirements pull in, transitively, by name."""
    found: dict[str, Distribution] = {}
    todo = [(Requirement(r), "") for r in requirements]
    while todo:
        req, extra = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": extra}):
            continue
        key = req.name.lower().replace("_", "-")
        if key in found:
            continue
        try:
            dist = distribution(req.name)
        except PackageNotFoundError:
            raise RuntimeError(f"{req.name} is not installed: install netdetect[agent]") from None
        found[key] = dist
        todo.extend((Requirement(sub), want)
                    for sub in dist.requires or [] for want in (req.extras or {""}))
    return found


def _site(tmp_path: Path, dists: dict[str, Distribution]) -> Path:
    """A directory holding only these distributions' top-level files (symlinked)."""
    site = tmp_path / "site"
    site.mkdir()
    for dist in dists.values():
        for file in dist.files or []:
            top = file.parts[0]
            if top in ("..", "__pycache__") or (site / top).exists():
                continue
            (site / top).symlink_to(Path(str(dist.locate_file(top))))
    return site


@pytest.fixture(scope="module")
def agent_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    reqs = PYPROJECT["dependencies"] + PYPROJECT["optional-dependencies"]["agent"]
    dists = _closure(reqs)
    site = _site(tmp_path_factory.mktemp("agent-extra"), dists)
    return {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{site}", "PYTHONNOUSERSITE": "1"}


def _python(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    # -S: no site-packages, so only the repository and the agent's distributions exist.
    return subprocess.run([sys.executable, "-S", *args], env=env, capture_output=True,
                          text=True, timeout=120, check=False, cwd=REPO)


def test_the_agent_environment_lacks_the_sensor_dependencies(agent_env: dict[str, str]) -> None:
    for module in ("rich", "maxminddb", "mmdb_writer", "netaddr"):
        done = _python(agent_env, "-c", f"import {module}")
        assert "ModuleNotFoundError" in done.stderr, (module, done.stderr)
    # The control: the agent's own imports (collectors, metrics) all resolve.
    done = _python(agent_env, "-c", "import netdetect.agent.daemon, netdetect.agent.report, "
                                    "netdetect.metrics, netdetect.cli")
    assert done.returncode == 0, done.stderr


def test_sensor_commands_name_the_extra_they_need(
    agent_env: dict[str, str], tmp_path: Path,
) -> None:
    # An empty cache, so that the signatures' address lists must be compiled (mmdb_writer):
    # a DB an earlier run compiled is read by the core, which needs no sensor package.
    env = {**agent_env, "NETDETECT_CACHE_DIR": str(tmp_path / "cache")}
    done = _python(env, "-m", "netdetect", "replay", "pcaps/demo.pcap")
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("netdetect: replay needs the sensor's dependencies (")
    assert done.stderr.endswith("is not installed): pip install 'netdetect[sensor]'\n")


def test_agent_runs_with_only_the_agent_extra(
    agent_env: dict[str, str], broker: Broker, tmp_path: Path,
) -> None:
    config = write_agent_toml(tmp_path / "agent.toml", broker, "web-01")
    port = free_port()
    log = tmp_path / "agent.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-S", "-m", "netdetect", "agent", "--config", str(config),
             "--metrics-port", str(port)],
            env=agent_env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        asyncio.run(wait_status(broker, "web-01",
                                lambda s: s.state == "online" and s.pid == proc.pid))
        response = report_topic(SENSOR, TOKEN, "web-01")
        query, envelope = _signed_query(broker, response)

        async def ask() -> bytes:
            props = publish_properties(correlation=query.nonce.encode(), response_topic=response)
            async with mqtt_as(broker, SENSOR, "sensor-1-extra") as probe:
                await probe.subscribe(report_filter(SENSOR, TOKEN), qos=1)
                await probe.publish(query_topic("web-01"), envelope, qos=1, properties=props)
                msg = await next_message(probe, 15)
            assert msg is not None, log.read_text(errors="replace")
            assert isinstance(msg.payload, bytes)
            return msg.payload

        report = asyncio.run(ask())
        assert query.nonce.encode() in report
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            assert b'netdetect_agent_queries_total{outcome="answered"} 1.0' in r.read()
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(15) == 0, log.read_text(errors="replace")
        assert "Traceback" not in log.read_text(errors="replace")
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
