"""Signals of the live sensor: SIGHUP swaps signatures without losing flows, SIGTERM stops
cleanly after analysing every frame the kernel had already taken, and flushes the alerts."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from scapy.utils import rdpcap, wrpcap

from .conftest import PCAPS, REPO, NetnsFactory, Sniff, tcpreplay

pytestmark = pytest.mark.netns


def test_sighup_reloads_signatures_and_keeps_flows(netns: NetnsFactory, tmp_path: Path,
                                                   sniffs: list[Sniff]) -> None:
    sigs = tmp_path / "signatures"
    shutil.copytree(REPO / "signatures", sigs)
    domains = sigs / "pool_domains.txt"
    original = domains.read_text()
    assert "bitminter.com\t" in original
    domains.write_text("".join(ln for ln in original.splitlines(keepends=True)
                               if "bitminter" not in ln))
    # A Stratum session cut in two: the second half must land on the same flow after reload.
    frames = rdpcap(str(PCAPS / "stratum_v1_cgminer.pcap"))
    wrpcap(str(tmp_path / "half1.pcap"), frames[:20])
    wrpcap(str(tmp_path / "half2.pcap"), frames[20:])

    ns = netns("hup")
    ns.veth("va", "vb")
    s = Sniff(ns, tmp_path, "-i", "vb", "--workers", "2", "--signatures", str(sigs), "-q",
              "--stats-interval", "1")
    sniffs.append(s)
    s.wait_ready()
    sent = tcpreplay(ns, "va", PCAPS / "tls_pool_sni_bitminter.pcap", tmp_path / "half1.pcap",
                     extra=("--topspeed",))
    s.wait_log(rf"stats: packets={sent} ", 10)
    assert not [e for e in s.eve() if e["dest_port"] == 3333 and e["app_proto"] == "tls"]

    # A broken edit is refused and the running set stays.
    domains.write_text(original + "not a valid line\n")
    s.signal(signal.SIGHUP)
    s.wait_log(r"SIGHUP: reload failed, keeping the running configuration", 10)

    domains.write_text(original)
    s.signal(signal.SIGHUP)
    s.wait_log(r"SIGHUP: signatures valid, workers reloading \(generation 1\)", 10)
    s.wait_log(r"worker 0: signatures reloaded \(generation 1\)", 10)
    s.wait_log(r"worker 1: signatures reloaded \(generation 1\)", 10)

    sent += tcpreplay(ns, "va", PCAPS / "tls_pool_sni_bitminter.pcap", tmp_path / "half2.pcap",
                      extra=("--topspeed",))
    assert s.stop() == 0
    tls = [e for e in s.eve() if e["app_proto"] == "tls"]
    assert len(tls) == 1
    assert tls[0]["netdetect"]["pool"]["list_match"] == "bitminter.com"
    final = s.final_counters()
    assert sum(w["packets"] for w in final.values()) == sent
    assert all(w["signature_generation"] == 1 for w in final.values())
    # Two TLS connections plus ONE Stratum flow: the halves were not split by the reload.
    assert sum(w["flows_created"] for w in final.values()) == 3
    stratum = [e for e in s.eve() if e["netdetect"]["dialect"] == "stratum-v1"]
    assert len(stratum) == 1


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_flushes_everything(netns: NetnsFactory, tmp_path: Path,
                                        sniffs: list[Sniff], sig: signal.Signals) -> None:
    ns = netns("term")
    ns.veth("va", "vb")
    s = Sniff(ns, tmp_path, "-i", "vb", "--workers", "2", "--stats-interval", "60")
    sniffs.append(s)
    s.wait_ready()
    sent = tcpreplay(ns, "va", *(PCAPS / n for n in ("stratum_v1_cgminer.pcap",
                                                     "cryptonote_xmrig.pcap")),
                     extra=("--topspeed",))
    # At once: the last frames still sit in ring blocks the kernel has not handed over.
    s.signal(sig)
    assert s.wait(30) == 0
    log = s.log()
    assert f"{sig.name}: stopping" in log
    final = s.final_counters()
    assert sum(w["packets"] for w in final.values()) == sent
    assert sum(w["kernel_packets"] for w in final.values()) == sent
    assert sorted(e["netdetect"]["dialect"] for e in s.eve()) == ["cryptonote", "stratum-v1"]
    # The summary table is printed after the flush, with both alerts in it.
    out = s.out_path.read_text()
    assert re.search(r"2 mining flow\(s\)", out), out


def test_a_killed_worker_stops_the_sensor_with_an_error(netns: NetnsFactory, tmp_path: Path,
                                                        sniffs: list[Sniff]) -> None:
    ns = netns("kill")
    ns.veth("va", "vb")
    s = Sniff(ns, tmp_path, "-i", "vb", "--workers", "2", "-q", "--stats-interval", "60")
    sniffs.append(s)
    s.wait_ready()
    pid = s.proc.pid
    workers = sorted(map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split()))
    assert len(workers) == 2
    # A worker that dies without its "done" (killed: it sends nothing more) is noticed once
    # the grace for its last messages is over; the other worker is stopped and flushed.
    os.kill(workers[1], signal.SIGKILL)
    assert s.wait(30) == 2
    log = s.log()
    assert re.search(r"worker \d died \(exit code -9\); stopping the sensor", log), log
    assert len(s.final_counters()) == 1


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A real one-page tmpfs, already full: the disk a live sensor must outlive."""
    mnt = tmp_path / "full"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4k,mode=0755", "tmpfs", str(mnt)],
                   check=True)
    try:
        (mnt / "filler").write_bytes(b"x" * 3000)  # holds the only page
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_disk_then_rotation(netns: NetnsFactory, tmp_path: Path, sniffs: list[Sniff],
                                 tiny_tmpfs: Path) -> None:
    eve = tiny_tmpfs / "eve.json"
    ns = netns("full")
    ns.veth("va", "vb")
    s = Sniff(ns, tmp_path, "-i", "vb", "--stats-interval", "60", eve_path=eve)
    sniffs.append(s)
    s.wait_ready()
    tcpreplay(ns, "va", PCAPS / "stratum_v1_cgminer.pcap", PCAPS / "cryptonote_xmrig.pcap",
              extra=("--topspeed",))
    s.wait_log(r"EveWriter: alert record lost: .*No space left on device", 20)
    time.sleep(1)
    assert s.proc.poll() is None  # still sensing
    # One line per minute, however many records were lost in it.
    assert len(re.findall(r"record lost", s.log())) == 1
    assert eve.read_bytes() == b""  # nothing partial either

    # The operator makes room and rotates: SIGHUP reopens the path.
    (tiny_tmpfs / "filler").unlink()
    eve.rename(tiny_tmpfs / "eve.json.1")
    s.signal(signal.SIGHUP)
    s.wait_log(r"SIGHUP: reopened .*eve\.json", 10)
    tcpreplay(ns, "va", PCAPS / "eth_proxy.pcap", extra=("--topspeed",))
    assert s.stop() == 0
    log = s.log()
    assert "Traceback" not in log
    assert re.search(r"records lost: EveWriter alert=2", log), log
    assert [e["netdetect"]["dialect"] for e in s.eve()] == ["eth-proxy"]
    assert (tiny_tmpfs / "eve.json.1").read_bytes() == b""
    ev = s.eve()[0]
    assert ev["in_iface"] == "vb"
    assert ev["host"]
