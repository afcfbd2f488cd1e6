"""The human summary of a run: who mined, against which pool, how we know, what verdict."""

from __future__ import annotations

from collections.abc import Sequence
from typing import IO

from netdetect.model import Alert


def print_summary(
    alerts: Sequence[Alert],
    counters: dict[str, int],
    errors: Sequence[str],
    stream: IO[str],
    *,
    files: int,
    frames: int,
    asked: bool = False,
) -> None:
    # rich is a sizeable import that quiet runs and the other commands never need.
    from rich.console import Console
    from rich.table import Table

    console = Console(file=stream, highlight=False, soft_wrap=False,
                      width=None if stream.isatty() else 160)
    if alerts:
        table = Table(title=f"netdetect: {len(alerts)} mining flow(s)", title_justify="left")
        for col in ("first seen (UTC)", "miner", "pool", "pool name", "dialect", "verdict",
                    "score", "evidence"):
            table.add_column(col, overflow="fold")
        for a in sorted(alerts, key=lambda x: x.suspect.ts):
            s = a.suspect
            kinds = ", ".join(dict.fromkeys(e.kind for e in s.evidence))
            table.add_row(
                _ts(s.ts),
                f"{s.miner.ip}:{s.miner.port}",
                f"{s.pool.ip}:{s.pool.port}",
                s.pool_facts.host or "-",
                s.dialect,
                a.verdict.value,
                str(s.score),
                kinds,
            )
        console.print(table)
        hosts: dict[str, set[str]] = {}
        for a in alerts:
            hosts.setdefault(a.suspect.miner.ip, set()).add(
                a.suspect.pool_facts.host or f"{a.suspect.pool.ip}:{a.suspect.pool.port}"
            )
        by_host = Table(title="by miner host", title_justify="left")
        by_host.add_column("host")
        by_host.add_column("flows", justify="right")
        by_host.add_column("pools", overflow="fold")
        for host, pools in sorted(hosts.items()):
            n = sum(1 for a in alerts if a.suspect.miner.ip == host)
            by_host.add_row(host, str(n), ", ".join(sorted(pools)[:8]))
        console.print(by_host)
    else:
        console.print("netdetect: no mining traffic found")
    console.print(
        f"{files} file(s), {frames} frames, {counters.get('decoded', 0)} packets decoded, "
        f"{counters.get('flows_created', 0)} flows ({counters.get('flows_evicted', 0)} evicted), "
        f"{counters.get('decode_errors', 0)} decode errors, {len(alerts)} alert(s)"
    )
    for err in errors:
        console.print(f"[bold red]input damaged:[/] {err}")
    if alerts and not asked:
        console.print("next: --confirm --config sensor.toml asks each host (deploy/README.md)")


def _ts(ts: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
