"""The core's DNS decoder (through netdetect._core): real messages checked against tshark,
compression, bounds, TCP."""

from __future__ import annotations

import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from coreparse import DnsMessage, DnsRecord, DnsTcpDecoder, decode_dns, read_name
from scapy.layers.dns import (
    DNS,
    DNSQR,
    DNSRR,
    DNSRRMX,
    DNSRRSOA,
    DNSRRSRV,
    dns_compress,
)
from test_tls import CORPUS, udp_payloads

from netdetect.errors import DecodeError

CAPTURES = sorted(p for p in CORPUS.glob("*/*") if p.suffix in (".pcap", ".pcapng"))
# Captures with classic DNS (UDP port 53). DoQ and DoH carry DNS inside encrypted
# transports; tshark decrypts some of it, but that is not a UDP payload to decode.
DNS_CAPTURES = [p for p in CAPTURES if udp_payloads(p, 53)]
COINHIVE_STRATUM = CORPUS / "mining" / "zeekcm__coinhive-stratum.pcap"

_FIELDS = [
    "frame.number",
    "dns.id",
    "dns.flags.response",
    "dns.flags.rcode",
    "dns.qry.name",
    "dns.count.answers",
    "dns.count.auth_rr",
    "dns.count.add_rr",
    "dns.a",
    "dns.aaaa",
    "dns.cname",
]


def tshark_dns(path: Path) -> list[list[str]]:
    dfilter = "dns && udp.port == 53 && !icmp && !icmpv6"
    cmd = ["tshark", "-r", str(path), "-Y", dfilter, "-T", "fields"]
    cmd += ["-E", "occurrence=a", "-E", "aggregator=,"]
    for f in _FIELDS:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=60).stdout
    return [line.split("\t") for line in out.splitlines()]


def _split(field: str) -> list[str]:
    return [v for v in field.split(",") if v]


def corpus_dns_messages() -> list[bytes]:
    """Every UDP DNS payload of the corpus that tshark dissects as DNS."""
    out: list[bytes] = []
    for path in DNS_CAPTURES:
        payloads = udp_payloads(path, 53)
        out += [payloads[int(r[0])] for r in tshark_dns(path)]
    return out


@pytest.mark.corpus
@pytest.mark.parametrize("path", DNS_CAPTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_corpus_dns_matches_tshark(path: Path) -> None:
    rows = tshark_dns(path)
    assert rows, "tshark sees no DNS where the decoder's reader found UDP port 53"
    payloads = udp_payloads(path, 53)
    for row in rows:
        number, msg_id, response, rcode, qnames, ancount, nscount, arcount, a, aaaa, cname = row
        msg = decode_dns(payloads[int(number)])
        assert msg.msg_id == int(msg_id, 16), number
        assert msg.is_response == (response in ("1", "True")), number
        if rcode:
            assert msg.rcode == int(rcode), number
        assert [q[0] for q in msg.questions] == [n.lower() for n in _split(qnames)], number
        assert len(msg.answers) == int(ancount), number
        ours_a = [r.value for r in msg.answers if r.rtype == 1]
        ours_aaaa = [r.value for r in msg.answers if r.rtype == 28]
        ours_cname = [r.value for r in msg.answers if r.rtype == 5]
        if int(nscount) == 0 and int(arcount) == 0:
            assert ours_a == _split(a), number
            assert ours_aaaa == _split(aaaa), number
            assert ours_cname == [c.lower() for c in _split(cname)], number
        else:
            # tshark lists addresses of every section; the decoder reads the answers only.
            assert set(ours_a) <= set(_split(a)), number
            assert set(ours_aaaa) <= set(_split(aaaa)), number


def test_coinhive_pool_lookups() -> None:
    payloads = udp_payloads(COINHIVE_STRATUM)
    messages = []
    for p in payloads.values():
        try:
            messages.append(decode_dns(p))
        except DecodeError:
            continue
    answers = {(r.name, r.value) for m in messages if m.is_response for r in m.answers}
    assert ("coinhive.com", "104.20.208.59") in answers
    assert ("la01.supportxmr.com", "192.110.160.114") in answers
    assert ("www.supportxmr.com", "www.supportxmr.com.cdn.cloudflare.net") in answers


# scapy ships without annotations; give its compressor a type once.
_compress: Callable[[DNS], DNS] = dns_compress


def _scapy(pkt: DNS) -> bytes:
    return bytes(_compress(pkt))


def test_cname_chain_with_compression() -> None:
    raw = _scapy(
        DNS(
            id=0x1234,
            qr=1,
            rd=1,
            ra=1,
            qd=DNSQR(qname="Pool.Example.COM.", qtype="A"),
            an=[
                DNSRR(rrname="Pool.Example.COM.", type="CNAME", ttl=30, rdata="lb.cdn.net."),
                DNSRR(rrname="lb.cdn.net.", type="A", ttl=300, rdata="1.2.3.4"),
                DNSRR(rrname="lb.cdn.net.", type="AAAA", ttl=300, rdata="2001:db8::1"),
            ],
        )
    )
    assert raw.count(b"\xc0") >= 2  # scapy compressed the repeated names
    assert decode_dns(raw) == DnsMessage(
        msg_id=0x1234,
        is_response=True,
        rcode=0,
        questions=(("pool.example.com", 1),),
        answers=(
            DnsRecord("pool.example.com", 5, 30, "lb.cdn.net"),
            DnsRecord("lb.cdn.net", 1, 300, "1.2.3.4"),
            DnsRecord("lb.cdn.net", 28, 300, "2001:db8::1"),
        ),
    )


def test_other_record_types() -> None:
    raw = _scapy(
        DNS(
            id=7,
            qr=1,
            rcode=0,
            qd=DNSQR(qname="example.org.", qtype=255),
            an=[
                DNSRRMX(rrname="example.org.", ttl=60, preference=10, exchange="mx.example.org."),
                DNSRR(rrname="example.org.", type="TXT", ttl=60, rdata=[b"v=spf1 -all", b"x"]),
                DNSRRSRV(
                    rrname="_stratum._tcp.example.org.",
                    ttl=60,
                    priority=1,
                    weight=2,
                    port=3333,
                    target="pool.example.org.",
                ),
                DNSRRSOA(
                    rrname="example.org.",
                    ttl=60,
                    mname="ns1.example.org.",
                    rname="hostmaster.example.org.",
                ),
                DNSRR(rrname="example.org.", type=99, ttl=60, rdata=b"\x01\x02"),
            ],
        )
    )
    values = [(r.rtype, r.value) for r in decode_dns(raw).answers]
    assert values == [
        (15, "10 mx.example.org"),
        (16, '"v=spf1 -all" "x"'),
        (33, "1 2 3333 pool.example.org"),
        (6, "ns1.example.org hostmaster.example.org"),
        (99, "\\# 2 0102"),
    ]


def test_query_and_error_response() -> None:
    q = decode_dns(_scapy(DNS(id=9, qd=DNSQR(qname="a.b.", qtype="AAAA"))))
    assert q == DnsMessage(9, False, 0, (("a.b", 28),), ())
    nx = decode_dns(_scapy(DNS(id=9, qr=1, rcode=3, qd=DNSQR(qname="nope.invalid."))))
    assert nx.rcode == 3
    assert nx.is_response
    assert nx.answers == ()


def _header(qd: int = 1, an: int = 0) -> bytes:
    return struct.pack(">HHHHHH", 1, 0x8180, qd, an, 0, 0)


def test_name_escaping_and_root() -> None:
    raw = _header() + b"\x03A.b\x02\x00\xff\x00" + b"\x00\x01\x00\x01"
    assert decode_dns(raw).questions == (("a\\.b.\\000\\255", 1),)
    root = _header() + b"\x00\x00\x02\x00\x01"
    assert decode_dns(root).questions == (("", 2),)


@pytest.mark.parametrize(
    "tail",
    [
        b"\xc0\x0c\x00\x01\x00\x01",  # pointer to itself
        b"\xc0\x20\x00\x01\x00\x01",  # forward pointer
        b"\x01a\xc0\x0c\x00\x01\x00\x01",  # label then pointer back to its own start: a cycle
        b"\x41" + b"a" * 65 + b"\x00\x00\x01\x00\x01",  # label type 0x40
        b"\x81" + b"a" * 10,  # label type 0x80
        b"\x05ab",  # label past the end
        b"\x01a\x00\x00",  # truncated question
        b"\xc0",  # truncated pointer
    ],
)
def test_bad_names(tail: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_dns(_header() + tail)


def test_name_length_limit() -> None:
    label = b"\x3f" + b"x" * 63
    ok = label * 3 + b"\x3d" + b"y" * 61 + b"\x00"  # 255 octets on the wire
    assert len(read_name(_header() + ok + b"\x00\x01\x00\x01", 12)[0]) == 253
    too_long = label * 4 + b"\x00"
    with pytest.raises(DecodeError):
        decode_dns(_header() + too_long + b"\x00\x01\x00\x01")


def test_pointer_chain_is_bounded() -> None:
    # Each name points to the one before it: 200 pointers deep, all backward, no cycle.
    body = bytearray(b"\x01a\x00")
    offsets = [12]
    for _ in range(200):
        offsets.append(12 + len(body))
        body += struct.pack(">H", 0xC000 | offsets[-2])
    msg = _header(qd=0) + bytes(body)
    with pytest.raises(DecodeError):
        read_name(msg, offsets[-1])
    assert read_name(msg, offsets[10]) == ("a", offsets[10] + 2)


@pytest.mark.parametrize(
    "record",
    [
        b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x05\x01\x02\x03\x04\x05",  # A of 5 bytes
        b"\xc0\x0c\x00\x1c\x00\x01\x00\x00\x00\x3c\x00\x04\x01\x02\x03\x04",  # AAAA of 4
        b"\xc0\x0c\x00\x05\x00\x01\x00\x00\x00\x3c\x00\x04\xc0\x0c\x00\x00",  # bytes after name
        b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x09\x01\x02",  # rdata past the end
        b"\xc0\x0c\x00\x10\x00\x01\x00\x00\x00\x3c\x00\x02\x05a",  # TXT string overrun
    ],
)
def test_bad_records(record: bytes) -> None:
    question = b"\x01a\x00\x00\x01\x00\x01"
    with pytest.raises(DecodeError):
        decode_dns(_header(qd=1, an=1) + question + record)


def test_impossible_counts_rejected_early() -> None:
    with pytest.raises(DecodeError):
        decode_dns(struct.pack(">HHHHHH", 1, 0, 65535, 65535, 0, 0) + b"\x00" * 20)
    with pytest.raises(DecodeError):
        decode_dns(b"\x00" * 11)


@pytest.fixture(scope="module")
def real_messages() -> list[bytes]:
    payloads = udp_payloads(COINHIVE_STRATUM)
    out = []
    for p in payloads.values():
        try:
            msg = decode_dns(p)
        except DecodeError:
            continue
        if msg.is_response and msg.answers:
            out.append(p)
    assert len(out) >= 3
    return out


def test_truncated_at_every_index(real_messages: list[bytes]) -> None:
    for raw in real_messages:
        ns, ar = struct.unpack_from(">HH", raw, 8)
        assert ns == ar == 0
        for cut in range(len(raw)):
            with pytest.raises(DecodeError):
                decode_dns(raw[:cut])
        assert decode_dns(raw).answers


def test_tcp_framing(real_messages: list[bytes]) -> None:
    stream = b"".join(struct.pack(">H", len(m)) + m for m in real_messages)
    expected = [decode_dns(m) for m in real_messages]
    assert DnsTcpDecoder().feed(stream) == expected
    dec = DnsTcpDecoder()
    assert [e for i in range(len(stream)) for e in dec.feed(stream[i : i + 1])] == expected
    for cut in range(len(stream)):
        dec = DnsTcpDecoder()
        assert dec.feed(stream[:cut]) + dec.feed(stream[cut:]) == expected


def test_tcp_rejects_short_length() -> None:
    dec = DnsTcpDecoder()
    with pytest.raises(DecodeError):
        dec.feed(b"\x00\x05hello")
    with pytest.raises(DecodeError):
        dec.feed(b"")


def test_tcp_message_cap(real_messages: list[bytes]) -> None:
    m = real_messages[0]
    framed = struct.pack(">H", len(m)) + m
    dec = DnsTcpDecoder(max_messages=2)
    assert len(dec.feed(framed * 3)) == 2
    assert dec.overflow == len(framed)
    assert dec.feed(framed) == []
    assert dec.overflow == 2 * len(framed)


def test_tcp_stream_keeps_messages_decoded_before_damage() -> None:
    good = _scapy(DNS(id=5, qr=1, qd=DNSQR(qname="pool.example.org")))
    # A whole message, then a length prefix too short for any DNS header, in one segment.
    dec = DnsTcpDecoder()
    events = dec.feed(struct.pack(">H", len(good)) + good + b"\x00\x03abc")
    assert [e.msg_id for e in events if isinstance(e, DnsMessage)] == [5]
    with pytest.raises(DecodeError):
        dec.feed(b"more")
