"""Shared CPU windows: concurrent queries piggyback on one snapshot pair and its results."""

from __future__ import annotations

import threading
import time

from netdetect.agent import procs
from netdetect.agent.persistence import PersistenceCache
from netdetect.agent.report import ReportBuilder, SharedSampler
from netdetect.agent.schema import FlowSpec, HostQuery, HostReport

from .helpers_procs import child, listener


class FakeClock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def query(flow: FlowSpec, nonce: str, *, window: float, top_n: int = 5) -> HostQuery:
    now = time.time()
    return HostQuery(v=1, host_id="h1", nonce=nonce, issued_at=now, expires_at=now + 30,
                     flow=flow, cpu_window=window, top_n=top_n)


def test_join_rules() -> None:
    clock = FakeClock()
    sampler = SharedSampler(clock=clock)
    a = sampler.join(2.0)
    clock.now += 0.5
    assert sampler.join(2.0) is a, "same length, ends sooner than its own would: joins"
    assert sampler.join(1.0) is not a, "a shorter query would wait longer than it asked"
    clock.now += 1.2  # a ends in 0.3 s
    assert sampler.join(0.5) is a, "a measures longer and ends within 0.5 s: joins"
    assert sampler.join(3.0) is not a, "a would measure less than asked"
    clock.now += 0.3
    assert sampler.join(2.0) is not a, "an ended window takes nobody"
    assert sampler.opened == 4
    assert a.members == 3


def test_concurrent_queries_share_one_window_and_its_facts() -> None:
    builder = ReportBuilder(locator=procs.SocketLocator(), persistence=PersistenceCache(),
                            sampler=SharedSampler())
    reports: list[HostReport] = []
    lock = threading.Lock()
    with listener() as port, child(port=port, busy=True) as kid:
        flow = FlowSpec("tcp", "127.0.0.1", port, local_port=kid.local_port)
        builder(query(flow, "warm", window=0.1), host_id="h1")  # first walk, imports

        def one(i: int) -> None:
            report = builder(query(flow, f"{i:032x}", window=1.0), host_id="h1")
            with lock:
                reports.append(report)

        opened = builder.sampler.opened
        start = time.monotonic()
        threads = [threading.Thread(target=one, args=(i,)) for i in range(24)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        took = time.monotonic() - start
    assert len(reports) == 24
    assert {r.nonce for r in reports} == {f"{i:032x}" for i in range(24)}
    assert builder.sampler.opened - opened <= 2, "24 queries at once share their windows"
    assert took < 1.0 + 1.5, f"24 concurrent 1 s queries took {took:.2f} s"
    pids = {r.process.pid for r in reports if r.process is not None}
    assert pids == {kid.pid}
    # One window, one measurement: every report that shared it says the same.
    by_cpu = {r.process.cpu_percent for r in reports if r.process is not None}
    assert len(by_cpu) <= 2
    assert max(by_cpu) > 5.0, "the busy child burns CPU"
    assert all(r.top for r in reports)


def test_begin_returns_before_the_window_ends() -> None:
    builder = ReportBuilder()
    with listener() as port, child(port=port) as kid:
        flow = FlowSpec("tcp", "127.0.0.1", port, local_port=kid.local_port)
        t0 = time.monotonic()
        pending = builder.begin(query(flow, "cd" * 16, window=1.5), host_id="h1")
        assert time.monotonic() - t0 < 1.0, "begin does the work, not the wait"
        assert pending.ready_at >= t0 + 1.5 - 0.01
        time.sleep(max(0.0, pending.ready_at - time.monotonic()))
        report = pending.finish()
    assert report.nonce == "cd" * 16
    assert report.process is not None
    assert report.process.pid == kid.pid
