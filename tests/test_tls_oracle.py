"""Oracle test: the core's ClientHello SNI and JA3 agree with tshark's on every capture in the
corpus."""

from __future__ import annotations

import asyncio
import warnings
from collections import defaultdict
from pathlib import Path

import pyshark
import pytest
from coreparse import TlsDecoder
from test_tls import CORPUS, tcp_directions

from netdetect.decoders.events import ClientHello
from netdetect.errors import DecodeError

pytestmark = pytest.mark.corpus

CAPTURES = sorted(p for p in CORPUS.glob("*/*") if p.suffix in (".pcap", ".pcapng"))

FourTuple = tuple[str, int, str, int]
Hello = tuple[str | None, str, str]  # (sni, ja3 string, ja3 md5)


def _norm_sni(sni: str | None) -> str | None:
    return sni.lower().rstrip(".") if sni else None


def _no_current_loop() -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            asyncio.get_event_loop()
        except RuntimeError:
            return True
    return False


def tshark_hellos(
    path: Path, tls_ports: frozenset[int] = frozenset()
) -> tuple[dict[FourTuple, list[Hello]], int]:
    """ClientHellos tshark dissects, per TCP direction; plus the count of non-TCP ones.

    `tls_ports` makes tshark decode those TCP ports as TLS ("decode as"), for flows its
    port- and heuristic-based dispatch leaves undissected.

    tshark reports a hello on the frame that completes it, and again on a retransmitted
    copy of that frame: (direction, raw sequence number) identifies one hello.
    """
    seen: set[tuple[FourTuple, int, int]] = set()
    out: dict[FourTuple, list[Hello]] = defaultdict(list)
    non_tcp = 0
    # pyshark runs tshark through the current asyncio loop; an earlier asyncio.run() in the
    # same process leaves none set, so make sure there is one.
    if _no_current_loop():
        asyncio.set_event_loop(asyncio.new_event_loop())
    cap = pyshark.FileCapture(
        str(path),
        display_filter="tls.handshake.type == 1",
        keep_packets=False,
        decode_as={f"tcp.port=={port}": "tls" for port in sorted(tls_ports)} or None,
    )
    try:
        for pkt in cap:
            if "TCP" not in pkt:
                # QUIC carries its ClientHello in encrypted Initial packets: the TCP decoder
                # has no part in those, so only TCP TLS is compared here.
                non_tcp += 1
                continue
            ip = pkt.ip if "IP" in pkt else pkt.ipv6
            key = (str(ip.src), int(pkt.tcp.srcport), str(ip.dst), int(pkt.tcp.dstport))
            seq = int(pkt.tcp.seq_raw)
            for index, layer in enumerate(pkt.get_multiple_layers("tls")):
                ja3_full = layer.get_field("handshake_ja3_full")
                if ja3_full is None:
                    continue
                if (key, seq, index) in seen:
                    continue
                seen.add((key, seq, index))
                sni = layer.get_field("handshake_extensions_server_name")
                out[key].append(
                    (
                        _norm_sni(str(sni) if sni is not None else None),
                        str(ja3_full),
                        str(layer.get_field("handshake_ja3")),
                    )
                )
    finally:
        cap.close()
    return dict(out), non_tcp


def our_hellos(path: Path) -> dict[FourTuple, list[Hello]]:
    """ClientHellos our decoder finds in every TCP direction of a capture.

    A direction that starts with a TLS record is decoded from its start; every other one is
    decoded in mid-stream mode, which must find hellos that follow a cleartext prologue
    (gnutella's TLS upgrade) and must not invent any in other protocols' bytes.
    """
    out: dict[FourTuple, list[Hello]] = defaultdict(list)
    for d in tcp_directions(path):
        starts_tls = len(d.data) >= 6 and d.data[0] == 22 and d.data[1] == 3
        dec = TlsDecoder(midstream=not (starts_tls and d.syn))
        try:
            events = dec.feed(d.data)
        except DecodeError:
            # Keep what came before the failure: the hello of a stream that later turns
            # into something else still counts, and a mismatch will show below.
            events = []
        key = (d.src, d.sport, d.dst, d.dport)
        for e in events:
            if isinstance(e, ClientHello):
                out[key].append((e.sni, e.ja3, e.ja3_hash))
    return dict(out)


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_client_hellos_match_tshark(path: Path) -> None:
    theirs, _non_tcp = tshark_hellos(path)
    ours = our_hellos(path)
    for key, hellos in theirs.items():
        assert sorted(ours.get(key, []), key=str) == sorted(hellos, key=str), key
    extra = {k: v for k, v in ours.items() if k not in theirs}
    if extra:
        # Hellos tshark's dispatch misses (TLS after an RDP X.224 exchange, gnutella's TLS
        # upgrade on an unregistered port) must appear once tshark is told the port is TLS.
        forced, _ = tshark_hellos(path, frozenset(k[3] for k in extra))
        for key, hellos in extra.items():
            assert sorted(forced.get(key, []), key=str) == sorted(hellos, key=str), key


def test_corpus_has_enough_hellos() -> None:
    """Guards the oracle itself: it must compare a real number of hellos, mining included."""
    xmrig = our_hellos(CORPUS / "mining" / "lab__xmrig-tls.pcap")
    assert [h[2] for hs in xmrig.values() for h in hs] == ["c34a54599a1fbaf1786aa6d633545a60"]
    bitminter = our_hellos(CORPUS / "mining" / "zeekcm__bitcoin-mining.pcap")
    assert sum(len(v) for v in bitminter.values()) == 5
    assert {h[0] for hs in bitminter.values() for h in hs} == {"us1.bitminter.com"}
    coinhive = our_hellos(CORPUS / "mining" / "zeekcm__coinhive.pcap")
    assert sum(len(v) for v in coinhive.values()) >= 15
