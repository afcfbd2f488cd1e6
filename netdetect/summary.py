"""The human summary of a run: which hosts mined, against which pools, what to do next.

Plain text, not rich markup: pool names, agents and logins come from the wire, and a name
like `x[/]` or an ANSI escape must print as itself (DESIGN house rule 12). Grouped and cut to
the top rows so that thousands of alerts cost one pass over them and a screenful of output;
every alert is in the EVE output anyway. Fits 80 columns without breaking an address.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import msgspec

from netdetect.model import Alert

WIDTH = 80
TOP = 10  # rows per table; the rest is one "... more" line
DETAIL_MAX = 10  # runs with at most this many alerts also list each flow

# C0/C1 controls (ANSI escapes, newlines) and the Unicode bidi and line-separator marks,
# which can reorder or hide what a terminal shows.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def clean(text: str) -> str:
    """Wire text made safe for a terminal: control characters (ANSI escapes, newlines,
    bidi overrides) shown as escapes instead of acted upon."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


class _Group(msgspec.Struct):
    flows: int = 0
    first: float = float("inf")
    others: set[str] = msgspec.field(default_factory=set)  # pools of a host, hosts of a pool
    dialects: set[str] = msgspec.field(default_factory=set)
    files: set[str] = msgspec.field(default_factory=set)

    def add(self, a: Alert, other: str) -> None:
        s = a.suspect
        self.flows += 1
        self.first = min(self.first, s.ts)
        self.others.add(other)
        self.dialects.add(s.dialect)
        if a.pcap_filename:
            self.files.add(a.pcap_filename)  # named (basename) only for the rows shown


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
    stream.write("".join(summary_lines(alerts, counters, errors, files=files, frames=frames,
                                       asked=asked)))


def summary_lines(
    alerts: Sequence[Alert],
    counters: dict[str, int],
    errors: Sequence[str],
    *,
    files: int,
    frames: int,
    asked: bool = False,
) -> list[str]:
    out: list[str] = []
    hosts: dict[str, _Group] = {}
    pools: dict[str, _Group] = {}
    verdicts: dict[str, int] = {}
    for a in alerts:  # the one pass over the alerts
        s = a.suspect
        pool = s.pool_facts.host or f"{s.pool.ip}:{s.pool.port}"
        host = a.host_id or s.miner.ip
        hg = hosts.get(host)
        if hg is None:
            hg = hosts[host] = _Group()
        hg.add(a, pool)
        pg = pools.get(pool)
        if pg is None:
            pg = pools[pool] = _Group()
        pg.add(a, host)
        verdicts[a.verdict.value] = verdicts.get(a.verdict.value, 0) + 1

    if alerts:
        out.append(f"netdetect: {len(alerts)} mining flow(s) from {len(hosts)} host(s) "
                   f"to {len(pools)} pool(s)\n")
        out.append("  verdicts: " + ", ".join(f"{v} {n}" for v, n in sorted(verdicts.items()))
                   + "\n")
        if len(alerts) <= DETAIL_MAX:
            out.append("\n")
            out += _flows(alerts)
        out.append("\n")
        out += _table("miner host", "pools", hosts)
        out.append("\n")
        out += _table("pool", "hosts", pools)
    else:
        out.append("netdetect: no mining traffic found\n")
    out.append("\n")
    out.append(_wrap(
        f"{files} file(s), {frames} frames, {counters.get('decoded', 0)} packets decoded, "
        f"{counters.get('flows_created', 0)} flows ({counters.get('flows_evicted', 0)} "
        f"evicted), {counters.get('decode_errors', 0)} decode errors, "
        f"{len(alerts)} alert(s)"))
    out += [_wrap(f"input damaged: {clean(err)}") for err in errors]
    if alerts and not asked:
        out.append(_wrap(
            "next: these verdicts are network-only because no host was asked. Run the "
            "agent on your hosts and replay with --confirm --config sensor.toml to learn "
            "which process made each flow and what keeps it alive: deploy/README.md "
            "walks through it."))
    if alerts:
        out.append(_wrap(
            "next: `netdetect report` on the EVE output (or on the same captures) groups "
            "these alerts into campaigns by wallet, binary, persistence, pool and proxy, in "
            "one HTML page a responder can hand on (README: Campaigns and the incident "
            "report)."))
    return out


def _flows(alerts: Sequence[Alert]) -> list[str]:
    """Each flow of a small run, on lines broken at spaces only (IPv6 pairs are long)."""
    out = []
    for a in sorted(alerts, key=lambda x: x.suspect.ts):
        s = a.suspect
        pool = clean(s.pool_facts.host) if s.pool_facts.host else s.pool.ip
        out.append(_wrap(f"  {s.miner.ip} -> {pool}:{s.pool.port}  {s.dialect} "
                         f"{a.verdict.value} {s.score}", indent="      "))
    return out


def _table(what: str, others: str, groups: dict[str, _Group]) -> list[str]:
    """Top rows by flows. Hosts show when they started; pools, which dialects they spoke."""
    ranked = sorted(groups.items(), key=lambda kv: (-kv[1].flows, kv[1].first, kv[0]))
    rows = []
    for name, g in ranked[:TOP]:
        files = sorted({Path(f).name for f in g.files})
        file_text = (files[0] + (f" +{len(files) - 1}" if len(files) > 1 else "")
                     if files else "-")
        third = _ts(g.first)[:16] if others == "pools" else ", ".join(sorted(g.dialects))
        rows.append((clean(name), str(g.flows), str(len(g.others)), third,
                     clean(file_text)))
    third_head = "first seen (UTC)" if others == "pools" else "dialects"
    # Cut the file first, then the dialects; a pool name only as a last resort; a miner
    # address (at most 39 characters) fits beside the rest and is never cut.
    lines = _grid((what, "flows", others, third_head, "file"), rows,
                  squeeze=(0, 3, 4) if others == "hosts" else (4,), right=(1, 2))
    if len(ranked) > TOP:
        lines.append(f"  ... {len(ranked) - TOP} more {what}s (every flow is in the EVE "
                     "output)\n")
    return lines


def _grid(header: tuple[str, ...], rows: Sequence[tuple[str, ...]], *,
          squeeze: tuple[int, ...], right: tuple[int, ...] = ()) -> list[str]:
    """Columns as wide as their widest cell; over WIDTH, the `squeeze` columns are cut
    (marked with ~, ASCII so that any terminal encoding prints it), never the others, so
    an address or a count is never broken."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(header)]
    over = 2 + sum(widths) + 2 * (len(widths) - 1) - WIDTH
    for floor in (8, 3):  # keep squeezed columns readable first, then shrink further
        for i in reversed(squeeze):
            if over <= 0:
                break
            cut = min(over, widths[i] - floor)
            if cut > 0:
                widths[i] -= cut
                over -= cut

    def line(cells: Sequence[str]) -> str:
        parts = []
        for i, cell in enumerate(cells):
            text = cell if len(cell) <= widths[i] else cell[: widths[i] - 1] + "~"
            parts.append(text.rjust(widths[i]) if i in right else text.ljust(widths[i]))
        return ("  " + "  ".join(parts)).rstrip() + "\n"

    return [line(header), *(line(r) for r in rows)]


def _wrap(text: str, indent: str = "  ") -> str:
    """Prose at WIDTH, broken at spaces only; continuation lines indented."""
    body = text.lstrip(" ")
    words = body.split(" ")
    lines: list[str] = []
    cur = text[: len(text) - len(body)] + words[0]
    for word in words[1:]:
        if len(cur) + 1 + len(word) > WIDTH:
            lines.append(cur)
            cur = indent + word
        else:
            cur = f"{cur} {word}"
    lines.append(cur)
    return "\n".join(lines) + "\n"


def _ts(ts: float) -> str:
    try:
        return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (ValueError, OverflowError, OSError):
        return f"{ts:.0f}"
