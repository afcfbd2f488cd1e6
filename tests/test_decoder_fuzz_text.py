"""Property tests for the text decoders (the core's HTTP and SV2, Python's JSON-RPC): only
DecodeError escapes and every buffer stays capped."""

from __future__ import annotations

import contextlib
import gzip
import json
import struct
from functools import cache
from pathlib import Path
from typing import Any

import dpkt
from coreparse import HttpDecoder, noise_handshake, parse_plaintext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netdetect.decoders.events import HttpMessage, StratumMessage
from netdetect.decoders.jsonrpc import MAX_TEXT, classify, parse_json_messages
from netdetect.decoders.stratum import LineDecoder
from netdetect.errors import DecodeError

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CHUNK_LINE_CAP = 1024  # HttpDecoder's own chunk-size line cap


@cache
def corpus_lines() -> tuple[bytes, ...]:
    """JSON-RPC lines and HTTP heads found in the mining captures' TCP payloads."""
    found: set[bytes] = set()
    for pcap in sorted((CORPUS / "mining").glob("*.pcap*")):
        with pcap.open("rb") as f:
            magic = f.read(4)
            f.seek(0)
            reader: Any = (
                dpkt.pcapng.Reader(f) if magic == b"\x0a\x0d\x0d\x0a" else dpkt.pcap.Reader(f)
            )
            for _ts, buf in reader:
                try:
                    tcp = dpkt.ethernet.Ethernet(buf).data.data
                except (dpkt.dpkt.UnpackError, AttributeError, IndexError):
                    continue
                if not isinstance(tcp, dpkt.tcp.TCP) or not tcp.data:
                    continue
                data = bytes(tcp.data)
                if data.startswith((b"POST ", b"HTTP/")):
                    found.add(data[:2000])
                for line in data.split(b"\n"):
                    if line.startswith(b"{") and len(line) < 4000:
                        found.add(line + b"\n")
    lines = tuple(sorted(found))
    assert len(lines) > 200, f"corpus missing at {CORPUS}"
    return lines


def splits(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, prev = [], 0
    for p in [*points, len(data)]:
        out.append(data[prev:p])
        prev = p
    return out


def run_line(
    data: bytes, cuts: list[int], *, midstream: bool = False, gzip_mode: bool = False
) -> None:
    dec = LineDecoder(midstream=midstream, max_line=512, max_buffer=2048)
    if gzip_mode:
        dec.switch_encoding("gzip")
    try:
        for part in splits(data, cuts):
            for ev in dec.feed(part):
                assert isinstance(ev, StratumMessage)
            assert dec.buffered <= dec.max_buffer
    except DecodeError:
        return
    for ev in dec.close():
        assert isinstance(ev, StratumMessage)


def run_http(data: bytes, cuts: list[int]) -> None:
    dec = HttpDecoder(max_head=512, max_body=1024)
    try:
        for part in splits(data, cuts):
            for ev in dec.feed(part):
                assert isinstance(ev, HttpMessage)
            assert dec.buffered <= dec.max_head + dec.max_body + CHUNK_LINE_CAP
    except DecodeError:
        return
    for ev in dec.close():
        assert isinstance(ev, HttpMessage)


CUTS = st.lists(st.integers(min_value=0, max_value=10_000), max_size=8)


@FUZZ
@given(st.binary(max_size=3000), CUTS, st.booleans())
def test_line_decoder_random_bytes(data: bytes, cuts: list[int], midstream: bool) -> None:
    run_line(data, cuts, midstream=midstream)


@FUZZ
@given(st.binary(max_size=3000), CUTS)
def test_line_decoder_gzip_mode_random_bytes(data: bytes, cuts: list[int]) -> None:
    run_line(data, cuts, gzip_mode=True)
    run_line(b"\x1f\x8b\x08" + data, cuts, gzip_mode=True)


@FUZZ
@given(st.binary(max_size=3000), CUTS)
def test_http_decoder_random_bytes(data: bytes, cuts: list[int]) -> None:
    run_http(data, cuts)
    run_http(b"POST / HTTP/1.1\r\n" + data, cuts)
    run_http(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + data, cuts)


@FUZZ
@given(st.binary(max_size=600))
def test_parse_json_messages_random_bytes(data: bytes) -> None:
    try:
        msgs = parse_json_messages(data)
    except DecodeError:
        return
    assert all(isinstance(m, StratumMessage) for m in msgs)


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**60), max_value=10**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=40,
)

METHODS = st.sampled_from(
    [
        "mining.subscribe", "mining.authorize", "mining.submit", "mining.notify",
        "mining.set_difficulty", "mining.set_target", "mining.configure", "mining.hello",
        "mining.set", "mining.hashrate", "mining.reconnect", "mining.bye", "mining.ping",
        "client.reconnect", "client.show_message", "login", "job", "submit", "keepalived",
        "getjob", "eth_submitLogin", "eth_getWork", "eth_submitWork", "eth_submitHashrate",
        "getwork", "getblocktemplate", "submitblock", "echo", "eth_blockNumber",
    ]
)  # fmt: skip


def check_message(m: StratumMessage) -> None:
    if m.mining:
        assert m.dialect != "jsonrpc"
    else:
        assert m.dialect == "jsonrpc"
        assert m.client_side is None
    for text in (m.agent, m.login, m.password, m.worker, m.target, m.job_id, m.host, m.msg_id):
        assert text is None or len(text) <= MAX_TEXT


@FUZZ
@given(JSON)
def test_random_json_values(value: object) -> None:
    raw = json.dumps(value).encode()
    for m in parse_json_messages(raw):
        check_message(m)
    out = classify(value)
    if out is not None:
        check_message(out)
    run_line(raw + b"\n", [])


@FUZZ
@given(METHODS, JSON, JSON, st.booleans())
def test_mining_vocabulary_with_random_params(
    method: str, params: object, msg_id: object, absent: bool
) -> None:
    obj: dict[str, object] = {"id": msg_id, "method": method}
    if not absent:
        obj["params"] = params
    m = classify(obj)
    assert m is not None
    assert m.method == method
    check_message(m)
    (again,) = parse_json_messages(json.dumps(obj).encode())
    assert again.mining == m.mining
    assert again.dialect == m.dialect


@FUZZ
@given(JSON, st.booleans())
def test_random_results(result: object, error: bool) -> None:
    obj = {"id": 1, "result": result, "error": {"code": 1} if error else None}
    m = classify(obj)
    assert m is not None
    assert m.kind == ("error" if error else "response")
    check_message(m)


def mutate(data: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    buf = bytearray(data)
    for op, pos, val in edits:
        if not buf:
            break
        i = pos % len(buf)
        if op == 0:
            buf[i] = val
        elif op == 1:
            del buf[i]
        elif op == 2:
            buf.insert(i, val)
        else:
            del buf[i:]
    return bytes(buf)


EDITS = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 1 << 16), st.integers(0, 255)),
    min_size=1,
    max_size=6,
)


@FUZZ
@given(st.data(), EDITS, CUTS)
def test_mutated_real_lines(
    data: st.DataObject, edits: list[tuple[int, int, int]], cuts: list[int]
) -> None:
    line = data.draw(st.sampled_from(corpus_lines()))
    bad = mutate(line, edits)
    try:
        for m in parse_json_messages(bad.strip() or b"x"):
            check_message(m)
    except DecodeError:
        pass
    run_line(line + bad, cuts)
    run_line(bad, cuts, midstream=True)
    run_line(gzip.compress(bad), cuts, gzip_mode=True)
    run_http(bad, cuts)


def test_corpus_lines_parse_unmutated() -> None:
    lines = [ln for ln in corpus_lines() if ln.startswith(b"{")]
    ok = 0
    for line in lines:
        try:
            msgs = parse_json_messages(line)
        except DecodeError:
            continue  # a line cut by the segment boundary
        ok += 1
        for m in msgs:
            check_message(m)
    assert ok > 0.9 * len(lines)


SETUP_PAYLOAD = (
    struct.pack("<BHHI", 0, 2, 2, 1)
    + b"\x07pool.io"
    + struct.pack("<H", 3336)
    + b"\x04acme\x04s19k\x051.0.0\x05dev01"
)
SETUP = b"\x00\x00\x00" + struct.pack("<I", len(SETUP_PAYLOAD))[:3] + SETUP_PAYLOAD


def test_setup_seed_is_valid() -> None:
    m = parse_plaintext(SETUP)
    assert m is not None
    assert m.vendor == "acme"


@FUZZ
@given(st.binary(max_size=400))
def test_sv2_random_bytes(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        parse_plaintext(data)
    assert noise_handshake(data, len(data)) is None or len(data) == 64


@FUZZ
@given(EDITS)
def test_sv2_mutated_setup_connection(edits: list[tuple[int, int, int]]) -> None:
    try:
        m = parse_plaintext(mutate(SETUP, edits))
    except DecodeError:
        return
    if m is not None:
        assert m.kind == "setup-connection"
        assert m.protocol is not None
        assert m.protocol <= 2
