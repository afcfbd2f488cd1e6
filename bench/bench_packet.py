"""Measure PacketDecoder.decode throughput against a dpkt full decode of the same frames."""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable
from typing import Any

import dpkt
from netdetect.packet import PacketDecoder
from scapy.contrib.erspan import ERSPAN_II
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, GRE, CookedLinux, Dot1Q, Ether
from scapy.layers.vxlan import VXLAN

Frame = tuple[float, int, bytes]


def templates() -> list[tuple[int, bytes]]:
    """A traffic mix shaped like a mirror port: mostly TCP over Ethernet, some UDP, IPv6,
    VLANs and a little tunnelled and non-IP traffic."""
    eth: Any = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    out: list[tuple[int, bytes]] = []
    for i in range(12):  # plain TCP, varied payload sizes (ACKs to full segments)
        size = (0, 40, 200, 1448)[i % 4]
        pkt = (
            eth
            / IP(src=f"10.0.0.{i + 1}", dst="203.0.113.5")
            / TCP(sport=40000 + i, dport=(443, 3333, 80)[i % 3], flags="PA" if size else "A")
            / (b"x" * size)
        )
        out.append((1, bytes(pkt)))
    out += [
        (1, bytes(eth / IP(dst="192.0.2.53") / UDP(sport=5000 + i, dport=53) / b"q"))
        for i in range(4)
    ]
    out += [
        (1, bytes(eth / IPv6(dst="2001:db8::1") / TCP(sport=i + 1, dport=443) / b"t"))
        for i in range(4)
    ]
    out.append((1, bytes(eth / Dot1Q(vlan=10) / IP() / TCP() / (b"v" * 100))))
    out.append((1, bytes(eth / Dot1Q(vlan=10) / Dot1Q(vlan=20) / IP() / UDP() / b"qq")))
    out.append((1, bytes(eth / IP() / ICMP() / b"ping")))
    out.append((1, bytes(eth / ARP())))
    inner: Any = eth / IP(dst="198.51.100.1") / TCP(dport=3333) / b'{"method":"login"}'
    out.append((1, bytes(eth / IP() / UDP(sport=1, dport=4789) / VXLAN(vni=1) / inner)))
    out.append((1, bytes(eth / IP() / GRE(proto=0x88BE, seqnum_present=1) / ERSPAN_II() / inner)))
    out.append((113, bytes(CookedLinux() / IP() / TCP() / (b"s" * 60))))
    out.append((101, bytes(IP() / UDP() / b"raw")))
    return out


def dpkt_decoder() -> Callable[[int, bytes], Any]:
    """dpkt's full decode (every layer parsed into objects), per link type."""
    by_lt: dict[int, Any] = {
        1: dpkt.ethernet.Ethernet,
        113: dpkt.sll.SLL,
        101: dpkt.ip.IP,
    }

    def decode(linktype: int, frame: bytes) -> Any:
        try:
            return by_lt[linktype](frame)
        except (dpkt.UnpackError, KeyError):
            return None

    return decode


def run(frames: list[Frame], repeat: int) -> None:
    dec = PacketDecoder()
    decode = dec.decode

    def ours() -> None:
        for ts, lt, frame in frames:
            decode(ts, lt, frame)

    theirs_decode = dpkt_decoder()

    def theirs() -> None:
        for _ts, lt, frame in frames:
            theirs_decode(lt, frame)

    def best(fn: Callable[[], None]) -> float:
        times = []
        for _ in range(repeat):
            gc.collect()
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    t_ours = best(ours)
    t_theirs = best(theirs)
    n = len(frames)
    print(f"frames:               {n}")
    print(f"PacketDecoder.decode: {n / t_ours:12,.0f} packets/s ({t_ours / n * 1e9:6.0f} ns/pkt)")
    print(
        f"dpkt full decode:     {n / t_theirs:12,.0f} packets/s ({t_theirs / n * 1e9:6.0f} ns/pkt)"
    )
    print(f"speed-up:             {t_theirs / t_ours:12.1f}x")
    print(f"counters (last run / {repeat}): {dec.counters()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=200_000, help="frames to decode")
    parser.add_argument("--repeat", type=int, default=3, help="runs; the best is reported")
    args = parser.parse_args()
    mix = templates()
    frames = [(1_700_000_000.0 + i * 1e-4, *mix[i % len(mix)]) for i in range(args.count)]
    run(frames, args.repeat)


if __name__ == "__main__":
    main()
