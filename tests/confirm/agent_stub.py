"""Runs the real agent daemon with a small psutil stand-in for netdetect.agent.collect (tests only).

The stand-in finds the process that owns the queried flow and samples its CPU over the
query's window, which is all the confirmation loop needs to be exercised end to end.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from netdetect.agent.daemon import main
from netdetect.agent.schema import SCHEMA_VERSION, HostQuery, HostReport, ProcessFacts


def _owner(query: HostQuery) -> int | None:
    flow = query.flow
    kind = "tcp" if flow.proto == "tcp" else "udp"
    for conn in psutil.net_connections(kind=kind):
        if not conn.raddr or conn.pid is None:
            continue
        if conn.raddr.ip != flow.remote_ip or conn.raddr.port != flow.remote_port:
            continue
        if flow.local_port is not None and (not conn.laddr or conn.laddr.port != flow.local_port):
            continue
        return int(conn.pid)
    return None


def build_report(query: HostQuery, *, host_id: str, root: str = "/") -> HostReport:
    pid = _owner(query)
    if pid is None:
        time.sleep(query.cpu_window)
        return HostReport(v=SCHEMA_VERSION, host_id=host_id, nonce=query.nonce,
                          generated_at=time.time(), found=False)
    proc = psutil.Process(pid)
    cpu = proc.cpu_percent(interval=query.cpu_window)
    with proc.oneshot():
        facts = ProcessFacts(
            pid=pid, ppid=proc.ppid(), name=proc.name(), user=proc.username(), exe=proc.exe(),
            exe_deleted=False, exe_suspicious_dir=False, exe_sha256=None,
            cmdline=proc.cmdline(), cwd=proc.cwd(), start_time=proc.create_time(),
            cgroup=None, container_id=None, netns=None, threads=proc.num_threads(),
            cpu_percent=cpu, rss_bytes=proc.memory_info().rss, hugepages_kb=0,
        )
    return HostReport(v=SCHEMA_VERSION, host_id=host_id, nonce=query.nonce,
                      generated_at=time.time(), found=True, process=facts)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], collector=build_report))
