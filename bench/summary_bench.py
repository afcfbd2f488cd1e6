"""Time the end-of-run summary for many alerts (it used to cost seconds for 2 k alerts).

    python -m bench.summary_bench --alerts 10000
"""

from __future__ import annotations

import argparse
import io
import time

from netdetect.model import Alert, Endpoint, Evidence, PoolFacts, Suspect, Verdict
from netdetect.summary import print_summary


def make_alerts(n: int) -> list[Alert]:
    out = []
    for i in range(n):
        s = Suspect(flow_id=i, ts=1.767e9 + i, first_ts=1.767e9,
                    miner=Endpoint(f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}", 40000),
                    pool=Endpoint(f"198.51.100.{i % 200}", 3333), proto="TCP",
                    app_proto="stratum", dialect="stratum-v1", score=90,
                    evidence=(Evidence("stratum-client", 70, "x", 0),),
                    pool_facts=PoolFacts(host=f"pool{i % 40}.example", host_source="dns"))
        out.append(Alert(suspect=s, verdict=Verdict.NETWORK_ONLY, severity=2,
                         pcap_filename=f"/cap/part{i % 7}.pcap"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--alerts", type=int, default=10_000)
    args = ap.parse_args()
    alerts = make_alerts(args.alerts)
    buf = io.StringIO()
    t0 = time.perf_counter()
    print_summary(alerts, {}, [], buf, files=7, frames=0)
    ms = (time.perf_counter() - t0) * 1000
    print(f"{args.alerts} alerts: summary {ms:.1f} ms, {buf.getvalue().count(chr(10))} lines")


if __name__ == "__main__":
    main()
