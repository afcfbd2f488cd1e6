"""Issue 8, the host side, against a real Mosquitto and real agent processes: hostile bytes on
the host, replayed queries across restarts, floods, shared sensor ids."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from netdetect.model import Verdict

from .conftest import AgentProcess, Broker, Miner, suspect
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
