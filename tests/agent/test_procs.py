"""Flow → socket → process on the live host: real children, real sockets, real /proc."""

from __future__ import annotations

import hashlib
import os
import socket
import struct
import sys
import time
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netdetect.agent import procs
from netdetect.agent.report import build_report, default_builder
from netdetect.agent.schema import MAX_REPORT_BYTES, FlowSpec, HostQuery, HostReport

from .helpers_procs import PYTHON, child, fake_miner_binary, listener


def query(flow: FlowSpec, *, window: float = 0.5, top_n: int = 5) -> HostQuery:
    now = time.time()
    return HostQuery(v=1, host_id="h1", nonce="ab" * 16, issued_at=now, expires_at=now + 30,
                     flow=flow, cpu_window=window, top_n=top_n)


def own_netns() -> str:
    return str(Path("/proc/self/ns/net").readlink())


# --- address encoding -------------------------------------------------------------------------


def test_remote_patterns_match_kernel_encoding() -> None:
    # Ground truth: the kernel's own line for a connection we make.
    with listener() as port, socket.create_connection(("127.0.0.1", port)) as c:
        table = Path("/proc/self/net/tcp").read_bytes()
        (_, v4), (_, v6) = procs.remote_patterns("127.0.0.1", port)
        assert b" " + v4 + b" " in table
        assert v4 == (b"0100007F" if sys.byteorder == "little" else b"7F000001") + b":%04X" % port
        assert v6.startswith(b"0000000000000000FFFF0000")
        exact, loose = procs.search_table(table, v4, c.getsockname()[1])
        assert len(exact) == 1
        assert not loose
        assert exact[0][1] == c.getsockname()[1]


def test_mapped_ipv6_remote_is_looked_up_as_ipv4_too() -> None:
    fams = [f for f, _ in procs.remote_patterns("::ffff:10.1.2.3", 3333)]
    assert fams == ["", "6"]
    assert [f for f, _ in procs.remote_patterns("2001:db8::1", 3333)] == ["6"]
    assert procs.remote_patterns("not-an-ip", 1) == []


def _v4hex(ip: bytes) -> bytes:
    return b"%08X" % struct.unpack("=I", ip)[0]


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.tuples(st.binary(min_size=4, max_size=4), st.integers(0, 65535),
                               st.integers(0, 65535), st.integers(0, 2**32)), max_size=30),
       target=st.tuples(st.binary(min_size=4, max_size=4), st.integers(0, 65535)))
def test_search_table_finds_exactly_the_matching_rows(
        rows: list[tuple[bytes, int, int, int]], target: tuple[bytes, int]) -> None:
    lines = [(b"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt"
             b"   uid  timeout inode")]
    for i, (rip, rport, lport, inode) in enumerate(rows):
        lines.append(b"%4d: 0100007F:%04X %s:%04X 01 00000000:00000000 00:00000000 00000000"
                     b"     0        0 %d 1 0000000000000000 20 4 30 10 -1"
                     % (i, lport, _v4hex(rip), rport, inode))
    data = b"\n".join(lines) + b"\n"
    remote = _v4hex(target[0]) + b":%04X" % target[1]
    exact, loose = procs.search_table(data, remote, None)
    expected = [(inode, lport) for rip, rport, lport, inode in rows
                if (rip, rport) == target and inode]
    assert exact == expected
    assert loose == []


# --- finding the owner ------------------------------------------------------------------------


def test_busy_tcp_client_is_found_with_its_facts() -> None:
    with listener() as port, child(port=port, busy=True) as kid:
        report = build_report(query(FlowSpec("tcp", "127.0.0.1", port), window=1.0),
                              host_id="h1")
    assert report.found
    p = report.process
    assert p is not None
    assert p.pid == kid.pid
    assert p.exe == PYTHON
    assert p.cmdline[:2] == [PYTHON, "-c"]
    assert p.cpu_percent > 50.0, p.cpu_percent
    assert p.rss_bytes > 0
    assert p.threads >= 1
    assert p.netns == own_netns()
    assert p.exe_sha256 == hashlib.sha256(Path(PYTHON).read_bytes()).hexdigest()
    me = os.getpid()
    assert p.parents[0] == f"{me}:{Path(f'/proc/{me}/comm').read_text().strip()}"
    assert p.parents[-1].startswith("1:")
    assert not p.exe_deleted
    assert not p.exe_suspicious_dir
    assert report.nonce == "ab" * 16
    assert report.host_id == "h1"
    # The same window measured everyone: the spinning child is among the busiest (other
    # processes on a shared machine may be busier still).
    tops = {t.pid: t for t in report.top}
    assert tops[kid.pid].cpu_percent > 50.0
    assert report.host is not None
    assert report.host.cpu_count == os.cpu_count()
    # The report is what the sensor will accept: schema-valid and under the size cap.
    wire = msgspec.json.encode(report)
    assert len(wire) < MAX_REPORT_BYTES
    assert msgspec.json.decode(wire, type=HostReport) == report


def test_local_port_narrows_and_nat_falls_back() -> None:
    with listener() as port, child(port=port) as a, child(port=port) as b:
        loc = procs.SocketLocator()
        errs: list[str] = []
        exact = loc.owners(loc.find(FlowSpec("tcp", "127.0.0.1", port, local_port=b.local_port),
                                    errs), errs)
        assert [o.pid for o in exact] == [b.pid]
        assert not any("matched by remote only" in e for e in errs)
        # A source port rewritten by NAT matches nothing locally: both clients are candidates.
        nat = loc.owners(loc.find(FlowSpec("tcp", "127.0.0.1", port, local_port=1), errs), errs)
        assert sorted(o.pid for o in nat) == sorted([a.pid, b.pid])
        assert any("matched by remote only" in e for e in errs)


def test_ipv4_mapped_socket_in_tcp6_matches_ipv4_remote() -> None:
    with listener() as port, child(port=port, host="::ffff:127.0.0.1", family="6") as kid:
        loc = procs.SocketLocator()
        matches = loc.find(FlowSpec("tcp", "127.0.0.1", port))
        assert [m.table for m in matches] == ["tcp6"]
        assert [o.pid for o in loc.owners(matches)] == [kid.pid]
        # And the sensor may hand over the mapped form itself.
        again = loc.find(FlowSpec("tcp", "::ffff:127.0.0.1", port))
        assert [m.inode for m in again] == [matches[0].inode]


def test_ipv6_loopback_flow() -> None:
    with listener(family=socket.AF_INET6, host="::1") as port, \
            child(port=port, host="::1", family="6") as kid:
        loc = procs.SocketLocator()
        assert [o.pid for o in loc.owners(loc.find(FlowSpec("tcp", "::1", port)))] == [kid.pid]


def test_udp_connected_and_unconnected() -> None:
    with listener("udp") as port:
        with child(port=port, proto="udp") as kid:
            loc = procs.SocketLocator()
            found = loc.owners(loc.find(FlowSpec("udp", "127.0.0.1", port)))
            assert [o.pid for o in found] == [kid.pid]
        with child(port=port, proto="udp", unconnected=True) as kid:
            loc = procs.SocketLocator()
            # sendto() leaves no remote in the table: only the local port identifies it.
            assert loc.find(FlowSpec("udp", "127.0.0.1", port)) == []
            found = loc.owners(loc.find(FlowSpec("udp", "127.0.0.1", port,
                                                 local_port=kid.local_port)))
            assert [o.pid for o in found] == [kid.pid]


@pytest.mark.netns
def test_process_in_another_network_namespace_is_found() -> None:
    # port=0: the child listens on its own namespace's loopback and connects to itself.
    with child(port=0, netns=True) as kid:
        theirs = str(Path(f"/proc/{kid.pid}/ns/net").readlink())
        assert theirs != own_netns()
        report = build_report(query(FlowSpec("tcp", "127.0.0.1", kid.remote_port,
                                             local_port=kid.local_port)), host_id="h1")
        assert report.found
        assert report.process is not None
        assert report.process.pid == kid.pid
        assert report.process.netns == theirs
        loc = procs.SocketLocator()
        assert theirs in loc.namespaces()


def test_unknown_flow_reports_not_found_but_top_and_host() -> None:
    with listener() as port:
        report = build_report(query(FlowSpec("tcp", "127.0.0.1", port), window=0.3),
                              host_id="h1")
    assert not report.found
    assert report.process is None
    assert report.top, "top consumers are reported even when the flow is not found"
    assert report.host is not None


def test_bad_flow_is_an_error_not_an_exception() -> None:
    report = build_report(query(FlowSpec("sctp", "127.0.0.1", 1), window=0.1), host_id="h1")
    assert not report.found
    assert any("unsupported protocol" in e for e in report.errors)
    report = build_report(query(FlowSpec("tcp", "999.1.1.1", 1), window=0.1), host_id="h1")
    assert any("not an IP address" in e for e in report.errors)


def test_lookup_sustains_100_queries_per_second() -> None:
    with listener() as port, child(port=port) as kid:
        loc = procs.SocketLocator()
        flow = FlowSpec("tcp", "127.0.0.1", port, local_port=kid.local_port)
        assert [o.pid for o in loc.owners(loc.find(flow))] == [kid.pid]
        start = time.perf_counter()
        for _ in range(100):
            assert [o.pid for o in loc.owners(loc.find(flow))] == [kid.pid]
        elapsed = time.perf_counter() - start
        assert elapsed < 1.0, f"100 lookups took {elapsed:.3f} s"
        assert loc.fd_scans == 1, "cached inode owners are re-verified, not re-scanned"


def test_cpu_window_is_one_window_for_everyone() -> None:
    with listener() as port, child(port=port, busy=True) as a, child(port=port, busy=True) as b:
        sampler = default_builder().sampler
        opened = sampler.opened
        start = time.monotonic()
        report = build_report(query(FlowSpec("tcp", "127.0.0.1", port), window=0.8, top_n=5),
                              host_id="h1")
        took = time.monotonic() - start
        assert report.process is not None
        assert report.process.pid in (a.pid, b.pid)
        assert {a.pid, b.pid} <= {t.pid for t in report.top}
        # One window measured the owner and every top process (counted, not timed: a busy
        # host stretches the scans around it, not the number of windows).
        assert sampler.opened == opened + 1
        assert took >= 0.8 * 0.9, f"report took {took:.2f} s: shorter than its window"


def test_window_is_capped_by_query_expiry() -> None:
    now = time.time()
    q = HostQuery(v=1, host_id="h1", nonce="00", issued_at=now, expires_at=now + 1.0,
                  flow=FlowSpec("tcp", "127.0.0.1", 9), cpu_window=60.0, top_n=0)
    start = time.monotonic()
    report = build_report(q, host_id="h1")
    assert time.monotonic() - start < 1.0
    assert report.top == []


def test_deleted_executable_still_hashes() -> None:
    with fake_miner_binary("/tmp/netdetect-deleted-test", name="kworkerds") as exe:
        digest = hashlib.sha256(exe.read_bytes()).hexdigest()
        with listener() as port, child(port=port, exe=str(exe)) as kid:
            exe.unlink()
            errs: list[str] = []
            facts = procs.process_facts(kid.pid, cpu_percent=0.0, errors=errs)
    assert facts is not None
    assert facts.exe == str(exe)
    assert facts.exe_deleted
    assert facts.exe_suspicious_dir
    assert facts.exe_sha256 == digest
    assert "name:kworkerds" in facts.traits
    assert errs == []


def test_vanished_process_is_an_error() -> None:
    proc_ = os.fork()
    if proc_ == 0:
        os._exit(0)
    os.waitpid(proc_, 0)
    errs: list[str] = []
    assert procs.process_facts(proc_, cpu_percent=0.0, errors=errs) is None
    assert errs
    assert "exited" in errs[0]


# --- pure helpers ----------------------------------------------------------------------------

DOCKER_ID = "3f4e1c2a9b8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f"


@pytest.mark.parametrize(
    ("cgroup", "container"),
    [
        (f"0::/system.slice/docker-{DOCKER_ID}.scope\n", DOCKER_ID),
        (f"12:pids:/docker/{DOCKER_ID}\n1:name=systemd:/docker/{DOCKER_ID}\n0::/\n", DOCKER_ID),
        (("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1a2b_3c4d.slice/"
         f"cri-containerd-{DOCKER_ID}.scope\n"), DOCKER_ID),
        (f"11:memory:/kubepods/besteffort/pod1a2b3c4d-0000-1111-2222-333344445555/{DOCKER_ID}\n",
         DOCKER_ID),
        (f"0::/machine.slice/libpod-{DOCKER_ID}.scope/container\n", DOCKER_ID),
        (f"0::/kubepods.slice/crio-{DOCKER_ID}.scope\n", DOCKER_ID),
        ("0::/lxc.payload.web01\n", "lxc:web01"),
        ("0::/user.slice/user-1000.slice/session-3.scope\n", None),
        ("0::/\n", None),
    ],
)
def test_container_of(cgroup: str, container: str | None) -> None:
    path, cid = procs.container_of(cgroup)
    assert cid == container
    assert path is not None
    assert path.startswith("/")


@pytest.mark.parametrize(
    ("exe", "suspicious"),
    [
        ("/tmp/x/xmrig", True),
        ("/dev/shm/.a/b", True),
        ("/var/tmp/kdevtmpfsi", True),
        ("/run/user/1000/m", True),
        ("/.x/miner", True),
        ("/root/.cache/sys", True),
        ("/opt/... /bin", True),
        ("/usr/bin/python3.11", False),
        ("/home/u/.local/bin/tool", False),
        ("/root/.cargo/bin/rg", False),
        ("/tmp/x/xmrig (deleted)", True),
    ],
)
def test_exe_is_suspicious(exe: str, suspicious: bool) -> None:
    assert procs.exe_is_suspicious(exe) is suspicious


def test_cpu_percentages_semantics() -> None:
    clk = procs.CLK_TCK
    before = procs.CpuSnapshot(100.0, {
        10: procs.StatLine("a", 1, 0, 50, 1),
        11: procs.StatLine("reused", 1, 500, 60, 1),
    })
    after = procs.CpuSnapshot(101.0, {
        10: procs.StatLine("a", 1, 2 * clk, 50, 4),  # two cores for one second
        11: procs.StatLine("new", 1, clk // 2, int(100.5 * clk), 1),  # pid reused mid-window
    })
    cpu = procs.cpu_percentages(before, after)
    assert cpu[10] == 200.0
    assert cpu[11] == pytest.approx(100.0, abs=2)


def test_read_stat_survives_hostile_comm(tmp_path: Path) -> None:
    # comm is attacker-chosen: ") (" and spaces must not shift the fields.
    pid_dir = tmp_path / "4242"
    pid_dir.mkdir()
    fields = ["S", "7"] + ["0"] * 9 + ["11", "22"] + ["0"] * 4 + ["3", "0", "999"] + ["0"] * 30
    (pid_dir / "stat").write_bytes(b"4242 (a) (b c) " + " ".join(fields).encode())
    st_ = procs.read_stat(4242, str(tmp_path))
    assert st_ == procs.StatLine("a) (b c", 7, 33, 999, 3)
