"""Property tests: the core's TLS and DNS decoders raise only DecodeError on random and mutated
real bytes."""

from __future__ import annotations

import contextlib
import struct

from coreparse import (
    DnsMessage,
    DnsTcpDecoder,
    TlsDecoder,
    TlsRecord,
    decode_dns,
    parse_client_hello,
    parse_server_hello,
)
from coreparse import TlsEvent as Event
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_tls import CHROME, CORPUS, XMRIG_TLS, tls_client_streams, tls_server_streams, udp_payloads

from netdetect import _core
from netdetect.errors import DecodeError


def _udp_from_53(payload: bytes) -> bytes:
    """A raw-IP (link type 101) IPv4/UDP packet from port 53 carrying `payload`."""
    udp = struct.pack(">HHHH", 53, 40000, 8 + len(payload), 0) + payload
    return struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                       bytes([192, 0, 2, 53]), bytes([10, 0, 0, 1])) + udp

FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _tls_seeds() -> list[bytes]:
    seeds = [d.data[:2000] for d in tls_client_streams(XMRIG_TLS) + tls_client_streams(CHROME)]
    seeds += [d.data[:2000] for d in tls_server_streams(XMRIG_TLS)]
    seeds += [
        d.data[:2000] for d in tls_server_streams(CORPUS / "benign" / "ndpi__443-safari.pcap")
    ]
    assert len(seeds) >= 5
    return seeds


def _dns_seeds() -> list[bytes]:
    out = []
    for raw in udp_payloads(CORPUS / "mining" / "zeekcm__coinhive.pcap", 53).values():
        try:
            decode_dns(raw)
        except DecodeError:
            continue
        out.append(raw)
    assert len(out) >= 10
    return out


TLS_SEEDS = _tls_seeds()
DNS_SEEDS = _dns_seeds()
HELLO_MESSAGES = [s[5 : 9 + int.from_bytes(s[6:9], "big")] for s in TLS_SEEDS]

# One edit: (relative position, kind, byte). Positions are fractions so that one strategy
# serves seeds of every length.
EDIT = st.tuples(
    st.floats(0, 1, allow_nan=False),
    st.sampled_from(["flip", "set", "ins", "del"]),
    st.integers(0, 255),
)


def mutate(seed: bytes, edits: list[tuple[float, str, int]]) -> bytes:
    buf = bytearray(seed)
    for frac, kind, value in edits:
        if not buf:
            buf.append(value)
            continue
        i = min(int(frac * len(buf)), len(buf) - 1)
        if kind == "flip":
            buf[i] ^= 1 << (value % 8)
        elif kind == "set":
            buf[i] = value
        elif kind == "ins":
            buf[i:i] = bytes([value])
        else:
            del buf[i]
    return bytes(buf)


def feed_tls(data: bytes, chunk: int, *, midstream: bool) -> tuple[list[Event], bool]:
    """Events until the end or the first DecodeError, and whether one was raised."""
    dec = TlsDecoder(midstream=midstream, max_handshake=4096)
    events: list[Event] = []
    try:
        for i in range(0, len(data), chunk):
            events += dec.feed(data[i : i + chunk])
    except DecodeError:
        return events, True
    return events, False


@FUZZ
@given(st.binary(max_size=4096), st.integers(1, 700), st.booleans())
def test_tls_random_bytes(data: bytes, chunk: int, midstream: bool) -> None:
    feed_tls(data, chunk, midstream=midstream)


@FUZZ
@given(st.binary(max_size=2000), st.integers(1, 700))
def test_tls_random_records(body: bytes, chunk: int) -> None:
    # Valid record framing around random bodies drives the handshake parser, not just the
    # header checks.
    data = b""
    pos = 0
    while pos < len(body):
        n = min(len(body) - pos, 1 + body[pos] * 3)
        ctype = 20 + body[pos] % 4
        data += struct.pack(">BHH", ctype, 0x0303, n) + body[pos : pos + n]
        pos += n
    feed_tls(data, chunk, midstream=False)
    feed_tls(data, chunk, midstream=True)


@settings(FUZZ, max_examples=150)
@given(st.sampled_from(TLS_SEEDS), st.lists(EDIT, min_size=1, max_size=8), st.integers(1, 1500))
def test_tls_mutated_real_streams(
    seed: bytes, edits: list[tuple[float, str, int]], chunk: int
) -> None:
    data = mutate(seed, edits)
    whole, whole_failed = feed_tls(data, len(data) or 1, midstream=False)
    cut, cut_failed = feed_tls(data, chunk, midstream=False)
    # However the bytes are cut, the verdict is the same; a decoder that accepts the stream
    # reports the same events (one that rejects it may have emitted some before failing).
    assert cut_failed == whole_failed
    if not whole_failed:
        assert cut == whole
    # Joining mid-stream never invents a hello that decoding from the start does not see.
    mid, mid_failed = feed_tls(data, chunk, midstream=True)
    if not whole_failed and not mid_failed:
        assert all(e in whole for e in mid if not isinstance(e, TlsRecord))


@FUZZ
@given(st.sampled_from(HELLO_MESSAGES), st.lists(EDIT, min_size=1, max_size=6))
def test_hello_parsers_mutated(msg: bytes, edits: list[tuple[float, str, int]]) -> None:
    data = mutate(msg, edits)
    for parse in (parse_client_hello, parse_server_hello):
        with contextlib.suppress(DecodeError):
            parse(data)


@FUZZ
@given(st.binary(max_size=600))
def test_dns_random_bytes(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_dns(data)


@FUZZ
@given(st.sampled_from(DNS_SEEDS), st.lists(EDIT, min_size=1, max_size=8))
def test_dns_mutated_real_messages(seed: bytes, edits: list[tuple[float, str, int]]) -> None:
    data = mutate(seed, edits)
    try:
        msg = decode_dns(data)
    except DecodeError:
        return
    # Whatever decodes must be usable downstream.
    assert all(name == name.lower() for name, _ in msg.questions)
    # ... by the core's passive DNS behind it: the answer fed as a UDP/53 frame.
    core = _core.Core()
    core.feed([(1.0, 101, _udp_from_53(data))])
    core.finish()
    assert core.counters()["core_panics"] == 0


@FUZZ
@given(
    st.lists(st.sampled_from(DNS_SEEDS), min_size=1, max_size=4),
    st.binary(max_size=40),
    st.integers(1, 300),
)
def test_dns_tcp_stream(messages: list[bytes], junk: bytes, chunk: int) -> None:
    stream = b"".join(struct.pack(">H", len(m)) + m for m in messages) + junk
    dec = DnsTcpDecoder()
    got: list[DnsMessage] = []
    try:
        for i in range(0, len(stream), chunk):
            got += [e for e in dec.feed(stream[i : i + chunk]) if isinstance(e, DnsMessage)]
    except DecodeError:
        pass
    # The well-framed prefix always decodes, whatever junk follows it.
    assert got[: len(messages)] == [decode_dns(m) for m in messages]
