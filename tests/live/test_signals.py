"""Signals of the live sensor: SIGHUP swaps signatures without losing flows, SIGTERM stops
cleanly after analysing every frame the kernel had already taken, and flushes the alerts."""

from __future__ import annotations

import re
import shutil
import signal
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
