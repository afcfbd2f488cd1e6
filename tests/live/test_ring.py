"""The TPACKET_V3 ring, fanout, the BPF prefilter, metrics and privilege drop, end to end:
frames are injected into one end of a veth pair and `netdetect sniff` captures the other."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from netdetect.capture.afpacket import DEFAULT_BPF
from netdetect.intel import Intel
from netdetect.service import replay

from .conftest import PCAPS, Netns, NetnsFactory, Sniff, tcpreplay

pytestmark = pytest.mark.netns

MINING = ("stratum_v1_cgminer.pcap", "cryptonote_xmrig.pcap", "tls_pool_sni_bitminter.pcap")
BENIGN = ("neg_http_browsing.pcap", "neg_tls_nosni.pcap")
EXPECTED_MINERS = {("10.20.4.17", 52495), ("10.20.12.8", 42360), ("10.20.16.11", 57485)}


def syn_flood(path: Path, n: int) -> Path:
    """`n` distinct flows, one SYN each, from an internal host to an outside server."""
    frames = [
        Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        / IP(src=f"10.9.{i >> 8 & 0xFF}.{i & 0xFF}", dst="198.51.100.7")
        / TCP(sport=20000 + i % 40000, dport=443, flags="S", seq=i)
        for i in range(n)
    ]
    wrpcap(str(path), frames)
    return path


def bulk_segments(path: Path, n: int) -> Path:
    """`n` full-size data segments of one established (mid-stream) flow: no SYN, not TLS."""
    frames = [
        Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        / IP(src="10.9.200.1", dst="198.51.100.8")
        / TCP(sport=40000, dport=5201, flags="A", seq=1000 + 1400 * i)
        / (b"\x00" * 1400)
        for i in range(n)
    ]
    wrpcap(str(path), frames)
    return path


def miners(sniff: Sniff) -> set[tuple[str, int]]:
    return {(a["src_ip"], a["src_port"]) for a in sniff.eve() if a["event_type"] == "alert"}


def start(ns: Netns, tmp_path: Path, sniffs: list[Sniff], *args: str) -> Sniff:
    s = Sniff(ns, tmp_path, "-i", "vb", "--stats-interval", "1", "-q", *args)
    sniffs.append(s)
    s.wait_ready()
    return s


def test_single_worker_counts_every_frame(netns: NetnsFactory, tmp_path: Path,
                                          sniffs: list[Sniff]) -> None:
    ns = netns("ring1")
    ns.veth("va", "vb")
    s = start(ns, tmp_path, sniffs, "--workers", "1")
    flood = syn_flood(tmp_path / "flood.pcap", 3000)
    sent = tcpreplay(ns, "va", flood, *(PCAPS / m for m in MINING), extra=("--topspeed",))
    assert s.stop() == 0
    final = s.final_counters()
    assert list(final) == [0]
    w = final[0]
    # PACKET_STATISTICS was read and accumulated: the kernel offered exactly what was sent.
    assert w["kernel_packets"] == sent
    assert w["kernel_drops"] == 0
    assert w["packets"] == sent
    assert w["worker_errors"] == 0
    assert miners(s) == EXPECTED_MINERS
    assert re.search(rf"final stats: packets={sent} .*kernel_packets={sent} kernel_drops=0",
                     s.log())


def test_fanout_keeps_each_flow_on_one_worker(netns: NetnsFactory, tmp_path: Path,
                                              sniffs: list[Sniff], intel: Intel) -> None:
    ns = netns("fan")
    ns.veth("va", "vb")
    s = start(ns, tmp_path, sniffs, "--workers", "2")
    caps = [syn_flood(tmp_path / "flood.pcap", 2000), *(PCAPS / m for m in (*MINING, *BENIGN))]
    sent = tcpreplay(ns, "va", *caps, extra=("--topspeed",))
    assert s.stop() == 0
    final = s.final_counters()
    assert sorted(final) == [0, 1]
    assert sum(w["packets"] for w in final.values()) == sent
    assert sum(w["kernel_packets"] for w in final.values()) == sent
    # The hash spreads 2000 flows over both workers...
    assert all(w["packets"] > 200 for w in final.values())
    # ...and never splits one: offline replay of the same frames sees the same flows.
    offline = replay([str(c) for c in caps], intel=intel, sinks=[])
    assert sum(w["flows_created"] for w in final.values()) == offline.counters["flows_created"]
    assert miners(s) == EXPECTED_MINERS
    assert len(s.eve()) == len(offline.alerts) == 3


def test_bpf_prefilter_passes_what_the_filter_says(netns: NetnsFactory, tmp_path: Path,
                                                   sniffs: list[Sniff]) -> None:
    ns = netns("bpf")
    ns.veth("va", "vb")
    s = start(ns, tmp_path, sniffs, "--bpf", "default")
    caps = [bulk_segments(tmp_path / "bulk.pcap", 500), syn_flood(tmp_path / "syn.pcap", 300),
            *(PCAPS / m for m in (*MINING, *BENIGN))]
    sent = tcpreplay(ns, "va", *caps, extra=("--topspeed",))
    assert s.stop() == 0
    # tcpdump applies the same expression to the same frames: that is the expected count.
    matched = 0
    for cap in caps:
        out = subprocess.run(["tcpdump", "-nn", "-r", str(cap), DEFAULT_BPF],
                             capture_output=True, text=True, check=True).stdout
        matched += len(out.splitlines())
    w = s.final_counters()[0]
    assert w["kernel_packets"] == matched
    assert w["packets"] == matched
    assert matched <= sent - 500  # every full-size bulk segment was filtered in the kernel
    assert miners(s) == EXPECTED_MINERS


def test_metrics_endpoint_and_privilege_drop(netns: NetnsFactory, tmp_path: Path,
                                             sniffs: list[Sniff]) -> None:
    ns = netns("priv")
    ns.veth("va", "vb")
    s = start(ns, tmp_path, sniffs, "--workers", "2", "--user", "nobody",
              "--metrics-port", "9877")
    sent = tcpreplay(ns, "va", *(PCAPS / m for m in MINING), extra=("--topspeed",))
    pids = [s.proc.pid, *map(int, Path(f"/proc/{s.proc.pid}/task/{s.proc.pid}/children")
                             .read_text().split())]
    assert len(pids) == 3  # the parent and two workers
    for pid in pids:
        status = Path(f"/proc/{pid}/status").read_text()
        assert re.search(r"^Uid:\s+65534\s+65534\s+65534\s+65534$", status, re.MULTILINE), status
        assert re.search(r"^CapEff:\s+0+$", status, re.MULTILINE), status
    s.wait_log(rf"stats: packets={sent} ", 10)
    scrape = ns.run(sys.executable, "-c", "import urllib.request as u;print(u.urlopen("
                    "'http://127.0.0.1:9877/metrics', timeout=5).read().decode())").stdout
    kernel = re.findall(r'^netdetect_kernel_packets_total\{worker="(\d)"\} (\S+)$', scrape,
                        re.MULTILINE)
    assert sorted(w for w, _ in kernel) == ["0", "1"]
    assert sum(float(v) for _, v in kernel) == sent
    assert re.search(r'^netdetect_alerts_total\{verdict="network-only"\} 3\.0$', scrape,
                     re.MULTILINE)
    assert "netdetect_kernel_drops_total" in scrape
    assert s.stop() == 0


def test_ambient_capabilities_are_dropped_after_opening(netns: NetnsFactory,
                                                         request: pytest.FixtureRequest,
                                                         sniffs: list[Sniff]) -> None:
    """As systemd starts it: an unprivileged user holding only CAP_NET_RAW + CAP_NET_ADMIN."""
    ns = netns("caps")
    ns.veth("va", "vb")
    # pytest's tmp root is private to root: the unprivileged sensor writes its EVE file here.
    work = Path(tempfile.mkdtemp(prefix="nd-caps-"))
    work.chmod(0o777)
    request.addfinalizer(lambda: shutil.rmtree(work, ignore_errors=True))
    s = Sniff(ns, work, "-i", "vb", "--workers", "2", "-q", "--stats-interval", "1",
              wrapper=("setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
                       "--inh-caps", "+net_raw,+net_admin", "--ambient-caps",
                       "+net_raw,+net_admin", "--"))
    sniffs.append(s)
    s.wait_ready()
    pids = [s.proc.pid, *map(int, Path(f"/proc/{s.proc.pid}/task/{s.proc.pid}/children")
                             .read_text().split())]
    assert len(pids) == 3
    for pid in pids:
        status = Path(f"/proc/{pid}/status").read_text()
        assert re.search(r"^Uid:\s+65534\s", status, re.MULTILINE), status
        for field in ("CapEff", "CapPrm", "CapAmb"):
            assert re.search(rf"^{field}:\s+0+$", status, re.MULTILINE), status
    sent = tcpreplay(ns, "va", *(PCAPS / m for m in MINING), extra=("--topspeed",))
    assert s.stop() == 0
    assert sum(w["packets"] for w in s.final_counters().values()) == sent
    assert miners(s) == EXPECTED_MINERS


def pool_dns_then_flows(path: Path, n: int) -> Path:
    """One DNS answer naming a pool address, then `n` flows to it whose only evidence is
    that answer: which worker gets the answer must not decide whether they alert."""
    from scapy.layers.dns import DNS, DNSQR, DNSRR
    from scapy.layers.inet import UDP

    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    answer = (eth / IP(src="10.9.0.53", dst="10.9.1.1") / UDP(sport=53, dport=33333)
              / DNS(id=7, qr=1, qd=DNSQR(qname="pool.supportxmr.com"),
                    an=DNSRR(rrname="pool.supportxmr.com", ttl=600, rdata="198.51.100.23")))
    answer.time = 1000.0
    frames = [answer]
    for i in range(n):
        client, pool = f"10.9.1.{i + 2}", "198.51.100.23"
        sport = 41000 + i
        t = 1000.5 + i * 0.01
        for k, (pkt, d) in enumerate((
            (TCP(sport=sport, dport=7777, flags="S", seq=100), 0),
            (TCP(sport=7777, dport=sport, flags="SA", seq=500, ack=101), 1),
            (TCP(sport=sport, dport=7777, flags="PA", seq=101, ack=501) / b"hello\n", 0),
        )):
            ip = IP(src=client, dst=pool) if d == 0 else IP(src=pool, dst=client)
            frame = eth / ip / pkt
            frame.time = t + k * 0.001
            frames.append(frame)
    wrpcap(str(path), frames)
    return path


def test_passive_dns_does_not_depend_on_the_worker(netns: NetnsFactory, tmp_path: Path,
                                                   sniffs: list[Sniff]) -> None:
    cap = pool_dns_then_flows(tmp_path / "pooldns.pcap", 16)
    results = []
    for workers in ("1", "2"):
        ns = netns(f"pdns{workers}")
        ns.veth("va", "vb")
        (tmp_path / workers).mkdir()
        s = start(ns, tmp_path / workers, sniffs, "--workers", workers)
        tcpreplay(ns, "va", cap)
        assert s.stop() == 0
        alerts = [a for a in s.eve() if a["event_type"] == "alert"]
        results.append(sorted(
            (a["src_port"], a["netdetect"]["score"],
             tuple(sorted(e["kind"] for e in a["netdetect"]["evidence"])))
            for a in alerts
        ))
        if workers == "2":
            # Both workers carried some of the flows: the answer reached only one of them
            # through the fanout, the other through its DNS side channel.
            per = s.final_counters()
            assert all(w["flows_created"] > 0 for w in per.values())
    assert results[0] == results[1]
    assert len(results[1]) == 16
    assert all("pool-dns" in kinds for _port, _score, kinds in results[1])
