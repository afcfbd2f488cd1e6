"""The human summary: wire text printed as itself, 80 columns, top-N, one pass, next steps."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import overload

from netdetect.model import Alert, Endpoint, Evidence, PoolFacts, Suspect, Verdict
from netdetect.summary import TOP, WIDTH, print_summary, summary_lines

REPO = Path(__file__).resolve().parents[1]


def _alert(miner: str, pool_ip: str, pool_host: str | None = None, *, n: int = 0,
           file: str | None = "capture.pcap", verdict: Verdict = Verdict.NETWORK_ONLY) -> Alert:
    s = Suspect(flow_id=n, ts=1.767e9 + n, first_ts=1.767e9,
                miner=Endpoint(miner, 40000 + n % 20000), pool=Endpoint(pool_ip, 3333),
                proto="TCP", app_proto="stratum", dialect="stratum-v1", score=90,
                evidence=(Evidence("stratum-client", 70, "x", 0),),
                pool_facts=PoolFacts(host=pool_host, host_source="login" if pool_host else None))
    return Alert(suspect=s, verdict=verdict, severity=2, pcap_filename=file)


def _text(alerts: Sequence[Alert], *, asked: bool = False, errors: Sequence[str] = ()) -> str:
    buf = io.StringIO()
    print_summary(alerts, {"decoded": 10}, errors, buf, files=1, frames=10, asked=asked)
    return buf.getvalue()


def test_wire_text_is_never_markup_or_terminal_control() -> None:
    # A pool host and a capture name chosen by whoever made the traffic.
    nasty = ["x[/]", "[bold red]pwned[/bold red]", "\x1b[2J\x1b[31mred", "a\u202etxt.exe",
             "two\nlines"]
    alerts = [_alert(f"10.0.0.{i}", "192.0.2.1", host, n=i, file=f"/tmp/{host}.pcap")
              for i, host in enumerate(nasty)]
    text = _text(alerts, errors=["cap[/].pcap: offset 0: \x1b[2Jdamaged"])
    assert "x[/]" in text
    assert "[bold red]pwned[/bold red]" in text
    assert "\x1b" not in text
    assert "\\x1b[2J" in text
    assert "\u202e" not in text
    assert "two\\nlines" in text
    assert "cap[/].pcap" in text


def test_fits_80_columns_without_breaking_an_address() -> None:
    v6 = [f"2001:db8:aaaa:bbbb:cccc:dddd:eeee:{i:04x}" for i in range(12)]
    alerts = [
        _alert(ip, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
               "a-very-long-pool-name.eu-west-3.mining-pool-operator.example.com", n=i,
               file=f"/captures/2026/12/span-port-7-{'x' * 40}-{i}.pcapng")
        for i, ip in enumerate(v6)
    ]
    text = _text(alerts[:3]) + _text(alerts)
    for line in text.splitlines():
        assert len(line) <= WIDTH, line
    for ip in v6[:TOP]:
        assert ip in text  # whole, never wrapped or cut


def test_top_n_grouped_by_host_and_pool_with_file() -> None:
    alerts = [_alert(f"10.1.{i % 50}.7", f"198.51.100.{i % 30}", n=i,
                     file=f"/cap/part{i % 3}.pcap") for i in range(2000)]
    lines = summary_lines(alerts, {}, [], files=4, frames=1)
    text = "".join(lines)
    assert "2000 mining flow(s) from 50 host(s) to 30 pool(s)" in text
    assert "... 40 more miner hosts" in text
    assert "... 20 more pools" in text
    assert "part0.pcap +2" in text  # the file column: first file and how many others
    assert len(lines) < 45  # a screenful, whatever the number of alerts


class _Counting(Sequence[Alert]):
    """A list that counts how it is read: the summary must cost one pass."""

    def __init__(self, items: list[Alert]) -> None:
        self.items = items
        self.iterations = 0
        self.indexed = 0

    def __len__(self) -> int:
        return len(self.items)

    @overload
    def __getitem__(self, i: int) -> Alert: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[Alert]: ...
    def __getitem__(self, i: int | slice) -> Alert | Sequence[Alert]:
        self.indexed += 1
        return self.items[i]

    def __iter__(self) -> Iterator[Alert]:
        self.iterations += 1
        return iter(self.items)


def test_thousands_of_alerts_cost_one_pass() -> None:
    alerts = _Counting([_alert(f"10.2.{i // 250}.{i % 250}", "203.0.113.9", n=i)
                        for i in range(5000)])
    _text(alerts)
    assert alerts.iterations == 1
    assert alerts.indexed == 0


def test_next_steps_only_when_no_host_was_asked() -> None:
    alerts = [_alert("10.0.0.1", "192.0.2.1")]
    assert "--confirm" in _text(alerts)
    assert "deploy/README.md" in _text(alerts)
    assert "--confirm" not in _text(alerts, asked=True)
    assert "--confirm" not in _text([])
    assert "no mining traffic found" in _text([])


def test_summary_does_not_load_rich() -> None:
    code = ("import sys, io; from netdetect.summary import print_summary; "
            "print_summary([], {}, [], io.StringIO(), files=0, frames=0); "
            "print('rich' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"PYTHONPATH": str(REPO)})
    assert out.stdout.strip() == "False"
