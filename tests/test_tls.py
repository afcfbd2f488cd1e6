"""The core's TLS sniffer (through netdetect._core): real ClientHellos from the corpus,
fingerprints, feeding patterns."""

from __future__ import annotations

import datetime
import hashlib
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dpkt
import pytest
from coreparse import (
    MAX_RECORD,
    ServerHello,
    TlsDecoder,
    TlsRecord,
    is_grease,
    ja4_version_code,
    parse_client_hello,
    parse_server_hello,
)
from coreparse import TlsEvent as Event
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from netdetect.decoders.events import Certificate, ClientHello
from netdetect.errors import DecodeError

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
XMRIG_TLS = CORPUS / "mining" / "lab__xmrig-tls.pcap"
CHROME = CORPUS / "benign" / "ndpi__chrome.pcap"

# ---------------------------------------------------------------------------------------------
# Corpus reading: every TCP direction of every connection, reassembled by sequence number.
# Shared by the TLS oracle and the binary fuzz tests.


@dataclass
class Direction:
    src: str
    sport: int
    dst: str
    dport: int
    syn: bool  # the SYN of this direction is in the capture
    data: bytes  # contiguous bytes from the stream start (or the first segment seen)


def _ip_text(raw: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)


def frames(path: Path) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as f:
        magic = f.read(4)
        f.seek(0)
        reader = dpkt.pcapng.Reader(f) if magic == b"\x0a\x0d\x0d\x0a" else dpkt.pcap.Reader(f)
        link = reader.datalink()
        for _ts, buf in reader:
            yield link, bytes(buf)


def ip_packet(link: int, frame: bytes) -> dpkt.Packet | None:
    if link == dpkt.pcap.DLT_EN10MB:
        eth = dpkt.ethernet.Ethernet(frame)
        ip = eth.data
    elif link in (dpkt.pcap.DLT_NULL, dpkt.pcap.DLT_LOOP):
        ip = dpkt.loopback.Loopback(frame).data
    elif link == dpkt.pcap.DLT_LINUX_SLL:
        ip = dpkt.sll.SLL(frame).data
    else:
        ip = dpkt.ip.IP(frame) if frame[:1] and frame[0] >> 4 == 4 else dpkt.ip6.IP6(frame)
    if isinstance(ip, dpkt.ip.IP | dpkt.ip6.IP6):
        return ip
    return None


def tcp_directions(path: Path) -> list[Direction]:
    """Every TCP direction in a capture, reassembled from its start; a new SYN with another ISN
    on the same 4-tuple starts a new connection. Retransmitted bytes are dropped; a hole ends
    the reassembled data."""
    conns: dict[tuple[str, int, str, int], list[tuple[int | None, list[tuple[int, bytes]]]]] = {}
    for link, frame in frames(path):
        try:
            ip = ip_packet(link, frame)
        except (dpkt.UnpackError, struct.error):
            continue
        if ip is None or not isinstance(ip.data, dpkt.tcp.TCP):
            continue
        tcp = ip.data
        key = (_ip_text(ip.src), tcp.sport, _ip_text(ip.dst), tcp.dport)
        instances = conns.setdefault(key, [])
        if tcp.flags & dpkt.tcp.TH_SYN:
            if not instances or (instances[-1][0] is not None and instances[-1][0] != tcp.seq):
                instances.append((tcp.seq, []))
            elif instances[-1][0] is None:
                instances[-1] = (tcp.seq, instances[-1][1])
        if tcp.data:
            if not instances:
                instances.append((None, []))
            instances[-1][1].append((tcp.seq, bytes(tcp.data)))
    out: list[Direction] = []
    for (src, sport, dst, dport), instances in conns.items():
        for isn, segments in instances:
            if not segments:
                continue
            base = (isn + 1) % 2**32 if isn is not None else segments[0][0]
            placed = sorted(((seq - base) % 2**32, payload) for seq, payload in segments)
            data = bytearray()
            for offset, payload in placed:
                if offset >= 2**31:
                    continue  # before the stream start (e.g. a keep-alive byte)
                if offset > len(data):
                    break
                data += payload[len(data) - offset :]
            out.append(Direction(src, sport, dst, dport, isn is not None, bytes(data)))
    return out


def udp_payloads(path: Path, port: int | None = None) -> dict[int, bytes]:
    """UDP payloads (to or from `port`, if given) by frame number, 1-based as in tshark."""
    out: dict[int, bytes] = {}
    for number, (link, frame) in enumerate(frames(path), start=1):
        try:
            ip = ip_packet(link, frame)
        except (dpkt.UnpackError, struct.error):
            continue
        if ip is None or not isinstance(ip.data, dpkt.udp.UDP):
            continue
        udp = ip.data
        if port is None or port in (udp.sport, udp.dport):
            out[number] = bytes(udp.data)
    return out


def tls_client_streams(path: Path) -> list[Direction]:
    """Directions whose first bytes are a TLS handshake record holding a ClientHello."""
    return [
        d
        for d in tcp_directions(path)
        if len(d.data) > 5 and d.data[0] == 22 and d.data[1] == 3 and d.data[5] == 1
    ]


def tls_server_streams(path: Path) -> list[Direction]:
    """Directions whose first bytes are a TLS handshake record holding a ServerHello."""
    return [
        d
        for d in tcp_directions(path)
        if len(d.data) > 5 and d.data[0] == 22 and d.data[1] == 3 and d.data[5] == 2
    ]


def first_client_hello_message(stream: bytes) -> bytes:
    """The first handshake message of a client stream, records unwrapped."""
    hs = bytearray()
    pos = 0
    while len(hs) < 4 or len(hs) < 4 + int.from_bytes(hs[1:4], "big"):
        ctype, _ver, length = struct.unpack_from(">BHH", stream, pos)
        assert ctype == 22
        hs += stream[pos + 5 : pos + 5 + length]
        pos += 5 + length
    return bytes(hs[: 4 + int.from_bytes(hs[1:4], "big")])


# ---------------------------------------------------------------------------------------------


def _feed_all(decoder: TlsDecoder, chunks: Iterator[bytes] | list[bytes]) -> list[Event]:
    events: list[Event] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    return events


def _hellos(events: list[Event]) -> list[ClientHello]:
    return [e for e in events if isinstance(e, ClientHello)]


@pytest.fixture(scope="module")
def xmrig_client() -> bytes:
    streams = tls_client_streams(XMRIG_TLS)
    assert len(streams) == 1, f"{XMRIG_TLS}: expected one TLS client stream"
    return streams[0].data


@pytest.fixture(scope="module")
def xmrig_server() -> bytes:
    streams = tls_server_streams(XMRIG_TLS)
    assert len(streams) == 1
    return streams[0].data


@pytest.fixture(scope="module")
def chrome_clients() -> list[bytes]:
    streams = tls_client_streams(CHROME)
    assert len(streams) >= 3, f"{CHROME}: expected several TLS client streams"
    return [d.data for d in streams]


def test_xmrig_client_hello_fingerprints(xmrig_client: bytes) -> None:
    events = TlsDecoder().feed(xmrig_client)
    hellos = _hellos(events)
    assert len(hellos) == 1
    ch = hellos[0]
    assert ch.sni is None
    assert ch.alpn == ()
    assert ch.record_version == 0x0301
    assert ch.handshake_version == 0x0303
    assert ch.supported_versions == (0x0304, 0x0303, 0x0302, 0x0301)
    assert ch.ja3_hash == "c34a54599a1fbaf1786aa6d633545a60"
    assert ch.ja3 == (
        "771,4866-4867-4865-49196-49200-159-52393-52392-52394-49195-49199-158-49188-49192-107-"
        "49187-49191-103-49162-49172-57-49161-49171-51-157-156-61-60-53-47-255,"
        "11-10-35-22-23-13-43-45-51,29-23-30-25-24,0-1-2"
    )
    assert hashlib.md5(ch.ja3.encode()).hexdigest() == ch.ja3_hash
    assert ch.ja4 == "t13i310900_e8f1e7e78f70_5ac7197df9d2"
    assert ch.ja4_r.startswith("t13i310900_002f,0033,0035,")
    _, ciphers, exts, sigs = ch.ja4_r.split("_")
    assert hashlib.sha256(ciphers.encode()).hexdigest()[:12] == "e8f1e7e78f70"
    assert hashlib.sha256(f"{exts}_{sigs}".encode()).hexdigest()[:12] == "5ac7197df9d2"
    assert len(ch.cipher_suites) == 31
    assert ch.extensions == (11, 10, 35, 22, 23, 13, 43, 45, 51)
    # After the hello, XMRig's TLS 1.3 client sends only CCS / application data records.
    records = [e for e in events if isinstance(e, TlsRecord)]
    assert records
    assert {r.content_type for r in records} <= {20, 23}


def test_xmrig_server_side(xmrig_server: bytes) -> None:
    events = TlsDecoder().feed(xmrig_server)
    hellos = [e for e in events if isinstance(e, ServerHello)]
    assert len(hellos) == 1
    assert hellos[0].version == 0x0304
    assert hellos[0].cipher_suite in (0x1301, 0x1302, 0x1303)
    # TLS 1.3: the certificate is encrypted, so no Certificate event may appear.
    assert not [e for e in events if isinstance(e, Certificate)]
    assert [e for e in events if isinstance(e, TlsRecord) and e.content_type == 23]


def _chunkings(data: bytes) -> Iterator[list[bytes]]:
    yield [data]
    yield [data[i : i + 1] for i in range(len(data))]
    for size in (2, 3, 5, 7, 100, 1400):
        yield [data[i : i + size] for i in range(0, len(data), size)]


def test_feed_patterns_agree(xmrig_client: bytes, chrome_clients: list[bytes]) -> None:
    for stream in [xmrig_client, *chrome_clients]:
        head = stream[:4096]
        whole = TlsDecoder().feed(head)
        assert _hellos(whole)
        for chunks in _chunkings(head):
            assert _feed_all(TlsDecoder(), chunks) == whole


def test_truncated_at_every_index(xmrig_client: bytes, chrome_clients: list[bytes]) -> None:
    for stream in [xmrig_client, chrome_clients[0]]:
        hello_end = 5 + int.from_bytes(stream[3:5], "big")
        full = _hellos(TlsDecoder().feed(stream[:hello_end]))
        assert len(full) == 1
        for cut in range(hello_end):
            assert TlsDecoder().feed(stream[:cut]) == [], cut
            # The rest still completes the hello: nothing was lost by stopping at `cut`.
            dec = TlsDecoder()
            dec.feed(stream[:cut])
            assert _hellos(dec.feed(stream[cut:hello_end])) == full


def test_chrome_client_hellos(chrome_clients: list[bytes]) -> None:
    hellos = [h for s in chrome_clients for h in _hellos(TlsDecoder().feed(s))]
    assert len(hellos) == len(chrome_clients)
    for ch in hellos:
        assert ch.sni
        assert ch.sni == ch.sni.lower()
        assert ch.ja4.startswith("t1")
        assert ch.ja4[3] == "d"
        assert len(ch.ja4) == 36
        # GREASE is in the raw lists but never in the fingerprints.
        for field in ch.ja3.split(",")[1:4]:
            assert not any(is_grease(int(v)) for v in field.split("-") if v)
        if ch.alpn:
            assert ch.ja4[8:10] == ch.alpn[0][0] + ch.alpn[0][-1]


def test_parse_client_hello_on_message(xmrig_client: bytes) -> None:
    msg = first_client_hello_message(xmrig_client)
    ch = parse_client_hello(msg, record_version=0x0301)
    assert ch.ja4 == "t13i310900_e8f1e7e78f70_5ac7197df9d2"
    assert parse_client_hello(msg, quic=True).ja4.startswith("q13i")
    with pytest.raises(DecodeError):
        parse_client_hello(msg[:-1])
    with pytest.raises(DecodeError):
        parse_client_hello(b"\x02" + msg[1:])


# ---------------------------------------------------------------------------------------------
# Hand-built hellos checked against published reference fingerprints.


def _ext(etype: int, body: bytes) -> bytes:
    return struct.pack(">HH", etype, len(body)) + body


def _u16s(values: list[int], width: int = 2) -> bytes:
    body = b"".join(struct.pack(">H", v) for v in values)
    return len(body).to_bytes(width, "big") + body


def build_client_hello(
    *,
    ciphers: list[int],
    extensions: list[tuple[int, bytes]],
    version: int = 0x0303,
    record_version: int = 0x0301,
    session_id: bytes = b"",
) -> bytes:
    exts = b"".join(_ext(t, b) for t, b in extensions)
    body = (
        struct.pack(">H", version)
        + bytes(range(32))
        + bytes([len(session_id)])
        + session_id
        + _u16s(ciphers)
        + b"\x01\x00"
        + struct.pack(">H", len(exts))
        + exts
    )
    msg = b"\x01" + len(body).to_bytes(3, "big") + body
    return struct.pack(">BHH", 22, record_version, len(msg)) + msg


def sni_ext(name: str) -> bytes:
    raw = name.encode()
    entry = b"\x00" + struct.pack(">H", len(raw)) + raw
    return struct.pack(">H", len(entry)) + entry


def alpn_ext(protos: list[bytes]) -> bytes:
    body = b"".join(bytes([len(p)]) + p for p in protos)
    return struct.pack(">H", len(body)) + body


def chrome_like_hello() -> bytes:
    """A ClientHello with the cipher, extension and signature algorithm lists of a published
    Chrome 143 fingerprint (browserleaks): JA3 98487aa16281980e7d1120d399efb6a4,
    JA4 t13d1516h2_8daaf6152771_d8a2da3f94cd. GREASE values are added where Chrome puts them."""
    ciphers = [0x2A2A, 4865, 4866, 4867, 49195, 49199, 49196, 49200, 52393, 52392, 49171]
    ciphers += [49172, 156, 157, 47, 53]
    sigs = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601]
    exts: list[tuple[int, bytes]] = [
        (0x3A3A, b""),
        (45, b"\x01\x01"),
        (51, b"\x00\x00"),
        (16, alpn_ext([b"h2", b"http/1.1"])),
        (65037, b"\x00"),
        (23, b""),
        (17613, b"\x00\x03\x02h2"),
        (0, sni_ext("tls-outer.browserleaks.com")),
        (11, b"\x01\x00"),
        (10, _u16s([0x4A4A, 4588, 29, 23, 24])),
        (43, bytes([6]) + struct.pack(">HHH", 0x5A5A, 0x0304, 0x0303)),
        (65281, b"\x00"),
        (35, b""),
        (18, b""),
        (5, b"\x01\x00\x00\x00\x00"),
        (13, _u16s(sigs)),
        (27, b"\x02\x00\x02"),
        (0x6A6A, b"\x00"),
    ]
    return build_client_hello(ciphers=ciphers, extensions=exts)


def test_published_chrome_fingerprint() -> None:
    ch = _hellos(TlsDecoder().feed(chrome_like_hello()))[0]
    assert ch.ja3 == (
        "771,4865-4866-4867-49195-49199-49196-49200-52393-52392-49171-49172-156-157-47-53,"
        "45-51-16-65037-23-17613-0-11-10-43-65281-35-18-5-13-27,4588-29-23-24,0"
    )
    assert ch.ja3_hash == "98487aa16281980e7d1120d399efb6a4"
    assert ch.ja4 == "t13d1516h2_8daaf6152771_d8a2da3f94cd"
    assert ch.ja4_r == (
        "t13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9_"
        "0005,000a,000b,000d,0012,0017,001b,0023,002b,002d,0033,44cd,fe0d,ff01_"
        "0403,0804,0401,0503,0805,0501,0806,0601"
    )
    assert ch.sni == "tls-outer.browserleaks.com"
    assert ch.alpn == ("h2", "http/1.1")
    assert ch.supported_versions == (0x0304, 0x0303)
    assert 0x2A2A in ch.cipher_suites  # raw lists keep GREASE


def test_ja4_edge_cases() -> None:
    # No ciphers, no extensions: both hashes are the all-zero placeholder.
    ch = _hellos(TlsDecoder().feed(build_client_hello(ciphers=[], extensions=[])))[0]
    assert ch.ja4 == "t12i000000_000000000000_000000000000"
    assert ch.ja3 == "771,,,,"
    # Only SNI and ALPN: counted in the 'a' part, absent from the extension hash.
    hello = build_client_hello(
        ciphers=[0x1301],
        extensions=[(0, sni_ext("Pool.Example.COM.")), (16, alpn_ext([b"\xab\xcd"]))],
    )
    ch = _hellos(TlsDecoder().feed(hello))[0]
    assert ch.sni == "pool.example.com"
    assert ch.ja4.startswith("t12d0102ad_")
    assert ch.ja4.endswith("_000000000000")
    # Single-character ALPN counts as both first and last; mixed bytes fall back to hex.
    hello = build_client_hello(ciphers=[0x1301], extensions=[(16, alpn_ext([b"x"]))])
    assert _hellos(TlsDecoder().feed(hello))[0].ja4[8:10] == "xx"
    hello = build_client_hello(ciphers=[0x1301], extensions=[(16, alpn_ext([b"0\xab"]))])
    assert _hellos(TlsDecoder().feed(hello))[0].ja4[8:10] == "3b"
    # No sig algs: the extension string is hashed without a trailing underscore.
    hello = build_client_hello(ciphers=[0x1301], extensions=[(23, b""), (0xFF01, b"\x00")])
    ch = _hellos(TlsDecoder().feed(hello))[0]
    assert ch.ja4.split("_")[2] == hashlib.sha256(b"0017,ff01").hexdigest()[:12]
    # Counts saturate at 99.
    hello = build_client_hello(ciphers=list(range(1, 150)), extensions=[])
    assert _hellos(TlsDecoder().feed(hello))[0].ja4[4:6] == "99"
    assert ja4_version_code(0x0300) == "s3"
    assert ja4_version_code(0x1234) == "00"


def test_grease_predicate() -> None:
    greases = {0x0A0A + 0x1010 * i for i in range(16)}
    assert all(is_grease(g) for g in greases)
    assert sum(is_grease(v) for v in range(65536)) == 16


# ---------------------------------------------------------------------------------------------
# Server side: TLS 1.2 ServerHello + Certificate.


def _self_signed_der(cn: str, sans: list[str]) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Lab Issuing CA")])
    now = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(Encoding.DER)


def _server_hello_msg(version: int, cipher: int, exts: bytes = b"", random: bytes = b"") -> bytes:
    body = (
        struct.pack(">H", version)
        + (random or bytes(32))
        + b"\x00"
        + struct.pack(">HB", cipher, 0)
        + (struct.pack(">H", len(exts)) + exts if exts else b"")
    )
    return b"\x02" + len(body).to_bytes(3, "big") + body


def _certificate_msg(ders: list[bytes]) -> bytes:
    entries = b"".join(len(d).to_bytes(3, "big") + d for d in ders)
    body = len(entries).to_bytes(3, "big") + entries
    return b"\x0b" + len(body).to_bytes(3, "big") + body


def _records(ctype: int, payload: bytes, size: int = 16384) -> bytes:
    out = b""
    for i in range(0, len(payload), size):
        chunk = payload[i : i + size]
        out += struct.pack(">BHH", ctype, 0x0303, len(chunk)) + chunk
    return out


def tls12_server_flight(cn: str = "pool.example.net") -> bytes:
    der = _self_signed_der(cn, ["pool.example.net", "*.Example.NET"])
    alpn = _ext(16, alpn_ext([b"http/1.1"]))
    hs = _server_hello_msg(0x0303, 0xC02F, alpn) + _certificate_msg([der, der])
    hs += b"\x0e\x00\x00\x00"  # ServerHelloDone
    # Small records force the certificate to span several of them.
    return (
        _records(22, hs, size=300)
        + _records(20, b"\x01")
        + _records(22, bytes(40))  # encrypted Finished: must not be parsed
        + _records(23, bytes(100))
        + _records(21, bytes(26))
    )


def test_tls12_server_flight() -> None:
    flight = tls12_server_flight()
    whole = TlsDecoder().feed(flight)
    assert whole[0] == ServerHello(version=0x0303, cipher_suite=0xC02F, alpn="http/1.1")
    assert whole[1] == Certificate(
        subject_cn="pool.example.net",
        san_dns=("pool.example.net", "*.example.net"),
        issuer_cn="Lab Issuing CA",
    )
    assert whole[2:] == [TlsRecord(20, 1), TlsRecord(22, 40), TlsRecord(23, 100), TlsRecord(21, 26)]
    for chunks in _chunkings(flight):
        assert _feed_all(TlsDecoder(), chunks) == whole


def test_broken_certificate_is_no_event() -> None:
    hs = _server_hello_msg(0x0303, 0x002F) + _certificate_msg([b"\x30\x03\x02\x01\x00"])
    events = TlsDecoder().feed(_records(22, hs))
    assert events == [ServerHello(0x0303, 0x002F, None)]


def test_hello_retry_request_then_real_server_hello() -> None:
    hrr_random = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")
    sv = _ext(43, b"\x03\x04")
    hrr = _server_hello_msg(0x0303, 0x1301, sv, random=hrr_random)
    real = _server_hello_msg(0x0303, 0x1301, sv + _ext(16, alpn_ext([b"h2"])))
    stream = _records(22, hrr) + _records(20, b"\x01") + _records(22, real) + _records(23, b"x" * 9)
    events = TlsDecoder().feed(stream)
    assert events == [
        TlsRecord(20, 1),
        ServerHello(version=0x0304, cipher_suite=0x1301, alpn="h2"),
        TlsRecord(23, 9),
    ]
    hello, is_hrr = parse_server_hello(hrr)
    assert is_hrr
    assert hello.version == 0x0304


def test_second_client_hello_after_compat_ccs(xmrig_client: bytes) -> None:
    msg = first_client_hello_message(xmrig_client)
    stream = _records(22, msg) + _records(20, b"\x01") + _records(22, msg) + _records(23, b"z")
    hellos = _hellos(TlsDecoder().feed(stream))
    assert len(hellos) == 2
    assert hellos[0] == hellos[1]


def test_oversized_handshake_is_counted_not_fatal() -> None:
    der = _self_signed_der("big.example", ["big.example"])
    hs = _server_hello_msg(0x0303, 0x002F) + _certificate_msg([der] * 40)
    dec = TlsDecoder(max_handshake=2000)
    events = dec.feed(_records(22, hs, size=1000) + _records(23, b"q"))
    assert dec.overflow == 1
    assert events == [ServerHello(0x0303, 0x002F, None), TlsRecord(23, 1)]


# ---------------------------------------------------------------------------------------------
# Rejections.


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\n\r\n",
        b"\x80\x2e\x01\x00\x02\x00\x15",  # SSLv2-compatible ClientHello
        b"\x16\x02\x00\x00\x05hello",  # bad version
        b"\x16\x03\x05\x00\x05hello",
        b"\x19\x03\x03\x00\x01a",  # bad content type
        b"\x17\x03\x03" + struct.pack(">H", MAX_RECORD + 1),
        b'{"id":1,"method":"mining.subscribe","params":[]}\n',
        b"\x16\x03\x01\x00\x04\x63\x00\x00\x00",  # unknown handshake type 99
        b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00",  # ClientHello body too short
    ],
)
def test_not_tls_raises(data: bytes) -> None:
    dec = TlsDecoder()
    with pytest.raises(DecodeError):
        dec.feed(data)
    with pytest.raises(DecodeError):
        dec.feed(b"")  # a failed decoder stays failed


def test_bad_record_after_good_ones(xmrig_client: bytes) -> None:
    dec = TlsDecoder()
    assert dec.feed(xmrig_client)  # the capture ends on a record boundary
    with pytest.raises(DecodeError):
        dec.feed(b"\x00" * 10)


# ---------------------------------------------------------------------------------------------
# Mid-stream joins.


def test_midstream_resync_on_application_data(xmrig_client: bytes) -> None:
    stream = xmrig_client
    reference = [e for e in TlsDecoder().feed(stream) if isinstance(e, TlsRecord)]
    assert len(reference) >= 4
    hello_end = 5 + int.from_bytes(stream[3:5], "big")
    for start in range(hello_end + 1, min(len(stream), hello_end + 400)):
        dec = TlsDecoder(midstream=True)
        events = dec.feed(stream[start:])
        assert events, start
        assert all(isinstance(e, TlsRecord) for e in events)
        # Once synchronised, the records are exactly the tail of the reference sequence.
        assert events == reference[len(reference) - len(events) :], start


def test_midstream_byte_by_byte_matches_whole(xmrig_client: bytes) -> None:
    hello_end = 5 + int.from_bytes(xmrig_client[3:5], "big")
    tail = xmrig_client[hello_end + 3 :]
    whole = TlsDecoder(midstream=True).feed(tail)
    assert whole
    assert _feed_all(TlsDecoder(midstream=True), [tail[i : i + 1] for i in range(len(tail))]) == (
        whole
    )


def test_midstream_at_record_start_parses_hello(xmrig_client: bytes) -> None:
    events = TlsDecoder(midstream=True).feed(xmrig_client)
    assert _hellos(events)[0].ja3_hash == "c34a54599a1fbaf1786aa6d633545a60"


def test_midstream_gives_up_on_garbage() -> None:
    dec = TlsDecoder(midstream=True)
    noise = bytes((i * 7 + 1) % 20 for i in range(4096))  # never a content type 20..23
    fed = 0
    try:
        while fed < 40:
            dec.feed(noise)
            fed += 1
    except DecodeError:
        pass
    # The scan is bounded by two maximal records (about 37 KB), not by the stream length.
    assert 8 <= fed <= 10


def test_application_data_not_buffered() -> None:
    dec = TlsDecoder()
    dec.feed(_records(20, b"\x01"))
    header = struct.pack(">BHH", 23, 0x0303, 16000)
    assert dec.feed(header + bytes(100)) == [TlsRecord(23, 16000)]
    for _ in range(159):
        assert dec.feed(bytes(100)) == []
    assert dec.feed(_records(21, b"\x02\x00")) == [TlsRecord(21, 2)]
