"""The HTML report in a real headless browser (Debian's chromium).

Chromium runs in a network namespace of its own with no interface but loopback (`unshare
-n`): nothing it tries can leave the machine, and its NetLog shows every request it tried.
A request made *by the page* carries the page's (file://) network isolation key; the
browser's own housekeeping (update checks, clock) carries none and is not the page's doing.
A negative control proves both checks can fail.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_report import HOSTILE_CRON, HOSTILE_POOL, eve_lines, hostile_alerts, records

from netdetect.report import build, render_html

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
from make_demo_report import CRON_LINE, demo_eve  # noqa: E402

FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-domain-reliability", "--hide-scrollbars",
         "--enable-logging=stderr", "--v=0"]


@dataclass
class Page:
    dom: str
    console: list[str]
    page_requests: list[str]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "chromium not installed (scripts/bootstrap.sh installs it)"
    return found


def open_page(html: Path, tmp: Path) -> Page:
    netlog = tmp / "netlog.json"
    proc = subprocess.run(
        ["unshare", "-n", chromium(), *FLAGS, f"--user-data-dir={tmp / 'profile'}",
         f"--log-net-log={netlog}", "--dump-dom", html.resolve().as_uri()],
        capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    log = json.loads(netlog.read_text(encoding="utf-8"))
    requests = sorted({
        str(ev["params"]["url"]) for ev in log["events"]
        if "url" in ev.get("params", {})
        and "file://" in str(ev["params"].get("network_isolation_key", ""))
        and not str(ev["params"]["url"]).startswith(("file:", "data:"))})
    return Page(proc.stdout, console, requests)


def text_of(dom: str) -> str:
    import html

    return html.unescape(re.sub(r"<[^>]+>", " ", dom))


def test_the_checks_catch_a_console_error_and_a_request(tmp_path: Path) -> None:
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><p>x</p><img src="http://192.0.2.1/pixel.png">'
                   '<script>console.error("from the page")</script>', encoding="utf-8")
    page = open_page(bad, tmp_path)
    assert any("from the page" in line for line in page.console)
    assert page.page_requests == ["http://192.0.2.1/pixel.png"]


@pytest.fixture(scope="module")
def demo_page(tmp_path_factory: pytest.TempPathFactory) -> tuple[Page, dict[str, object]]:
    tmp = tmp_path_factory.mktemp("demo")
    doc = build(records(demo_eve()), sources=["demo"])
    html = tmp / "report.html"
    html.write_text(render_html(doc), encoding="utf-8")
    return open_page(html, tmp), doc


def test_demo_report_renders_offline_without_errors(
        demo_page: tuple[Page, dict[str, object]]) -> None:
    page, _ = demo_page
    assert page.console == []
    assert page.page_requests == []


def test_demo_report_text(demo_page: tuple[Page, dict[str, object]]) -> None:
    page, doc = demo_page
    text = " ".join(text_of(page.dom).split())
    summary = doc["summary"]
    assert isinstance(summary, dict)
    assert summary["campaigns"] == 3
    assert "netdetect incident report: 3 campaign(s) on 24 host(s)" in text
    for host in ("web-03", "web-07", "mine-proxy", "10.30.1.11", "10.20.4.17"):
        assert host in text
    wallet = ("48edfHu7V9Z84YzzMa6fUueoELZ9ZRXq9VetWzYGzKt52XU5xvqgzYnDK9URnRoJMk1j8nLwEVs"
              "aSWJ4fhdUyZijBGUicoD")
    assert wallet in text
    assert "cron /var/spool/cron/crontabs/www-data:3" in text
    assert CRON_LINE in text
    assert "proxy 10.30.0.10 ports 3333: 20 internal miner(s); upstream pool.supportxmr.com" in (
        text)


def test_hostile_report_in_the_browser(tmp_path: Path) -> None:
    html = tmp_path / "hostile.html"
    html.write_text(render_html(build(records(eve_lines(hostile_alerts())))), encoding="utf-8")
    page = open_page(html, tmp_path)
    assert page.console == []  # no injected script ran (alert() would log nothing, but
    assert page.page_requests == []  # the injected <img src=x> would have been fetched)
    assert "<script>alert" not in page.dom.replace("&lt;script&gt;alert", "")
    text = text_of(page.dom)
    assert HOSTILE_POOL in text
    assert HOSTILE_CRON in text


def test_readme_shows_the_checked_in_screenshot() -> None:
    png = REPO / "docs" / "report-demo.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "docs/report-demo.png" in (REPO / "README.md").read_text(encoding="utf-8")
