"""Hypothesis through the bindings for the parsers the engine reaches only behind a
handshake or a budget: SOCKS, WebSocket, JSON-lines framing, TLS record shape, certificates
and passive DNS. Valid framing is built here with Python's own struct and zlib and decoded
by the core's probes (tests/coreparse.py), which must give back exactly what was framed;
mutated, the same bytes must give the same result fed whole or cut anywhere, within the
parser's stated limits, and only DecodeError may escape. The long campaign of the same
parsers is bench/fuzz_rust.sh (src/fuzz.rs)."""

from __future__ import annotations

import ipaddress
import json
import struct
import zlib
from pathlib import Path

from coreparse import (
    JSON_MAX_DEPTH,
    JSON_MAX_LINE,
    SOCKS_MAX_HELD,
    WS_INFLATE_COST,
    WS_MAX_HEADER,
    LineFramer,
    SocksDecoder,
    SocksTarget,
    TlsDecoder,
    WsDecoder,
    decode_dns,
    parse_certificate,
    socks_detect,
)
from cryptography import x509
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_decoder_fuzz_binary import DNS_SEEDS, EDIT, _udp_from_53, mutate
from test_decoder_fuzz_text import JSON, corpus_lines, splits

from netdetect import _core
from netdetect.decoders.events import Certificate
from netdetect.detect import TlsShape
from netdetect.errors import DecodeError

FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
CUTS = st.lists(st.integers(0, 1 << 20), max_size=6)
EDITS = st.lists(EDIT, min_size=1, max_size=6)
TUNNEL = st.binary(max_size=48)

# -- SOCKS ------------------------------------------------------------------------------

NAME = st.from_regex(r"[a-z0-9][a-z0-9.-]{0,60}", fullmatch=True)
ADDR = st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6), NAME)
FIELD = st.binary(max_size=20).map(lambda b: b.replace(b"\0", b"x"))

# (version, client side, handshake bytes, the target a client asks for)
Handshake = tuple[int, bool, bytes, SocksTarget | None]


def _socks5_addr(addr: ipaddress.IPv4Address | ipaddress.IPv6Address | str) -> bytes:
    if isinstance(addr, ipaddress.IPv4Address):
        return b"\x01" + addr.packed
    if isinstance(addr, ipaddress.IPv6Address):
        return b"\x04" + addr.packed
    return bytes([3, len(addr)]) + addr.encode()


@st.composite
def socks_handshakes(draw: st.DrawFn) -> Handshake:
    """Every handshake form: SOCKS5 client (with or without RFC 1929 auth) and server,
    SOCKS4 and 4a clients, SOCKS4 server."""
    form = draw(st.sampled_from(["c5", "c4", "c4a", "s5", "s4"]))
    port = draw(st.integers(1, 65535))
    if form == "c5":
        methods = draw(st.lists(st.integers(0, 2), min_size=1, max_size=3))
        hs = bytes([5, len(methods), *methods])
        auth = draw(st.none() | st.tuples(FIELD, FIELD))
        if auth is not None:
            user, pw = auth
            hs += bytes([1, len(user)]) + user + bytes([len(pw)]) + pw
        command = draw(st.integers(1, 3))
        addr = draw(ADDR)
        hs += bytes([5, command, 0]) + _socks5_addr(addr) + struct.pack("!H", port)
        return 5, True, hs, SocksTarget("socks5", str(addr), port, command)
    if form in ("c4", "c4a"):
        command = draw(st.integers(1, 2))
        user = draw(FIELD)
        if form == "c4a":
            name = draw(NAME)
            ip = bytes([0, 0, 0, draw(st.integers(1, 255))])
            hs = bytes([4, command]) + struct.pack("!H", port) + ip + user + b"\0"
            return 4, True, hs + name.encode() + b"\0", SocksTarget("socks4a", name, port,
                                                                   command)
        ip4 = draw(st.ip_addresses(v=4).filter(lambda a: a.packed[:3] != bytes(3)))
        hs = bytes([4, command]) + struct.pack("!H", port) + ip4.packed + user + b"\0"
        return 4, True, hs, SocksTarget("socks4", str(ip4), port, command)
    if form == "s5":
        hs = b"\x05\x02\x01\x00" if draw(st.booleans()) else b"\x05\x00"
        hs += b"\x05\x00\x00" + _socks5_addr(draw(ADDR)) + struct.pack("!H", port)
        return 5, False, hs, None
    return 4, False, b"\x00\x5a" + struct.pack("!H", port) + bytes(4), None


def _same_host(got: str, want: str) -> bool:
    """Addresses compare as addresses (the core writes them in Rust's text form)."""
    try:
        return ipaddress.ip_address(got) == ipaddress.ip_address(want)
    except ValueError:
        return got == want


def run_socks(version: int, client: bool, parts: list[bytes]) -> tuple[
        SocksTarget | None, bytes | None, bool, int]:
    """(target, tunnelled bytes or None before the handshake ended, failed, most held)."""
    dec = SocksDecoder(version, client=client)
    target, tunnel, held = None, None, 0
    try:
        for part in parts:
            step = dec.feed(part)
            held = max(held, dec.buffered)
            if step is not None:
                t, rest = step
                target = target or t
                tunnel = (tunnel or b"") + rest
    except DecodeError:
        return target, tunnel, True, held
    return target, tunnel, False, held


@FUZZ
@given(socks_handshakes(), TUNNEL, CUTS)
def test_socks_handshakes_decode_to_their_target(hs: Handshake, tunnel: bytes,
                                                 cuts: list[int]) -> None:
    version, client, raw, want = hs
    data = raw + tunnel
    if client:
        assert socks_detect(data) == version
    target, got_tunnel, failed, held = run_socks(version, client, splits(data, cuts))
    assert not failed
    assert got_tunnel == tunnel
    assert held <= SOCKS_MAX_HELD
    if want is None:
        assert target is None
    else:
        assert target is not None
        assert target._replace(host="") == want._replace(host="")
        assert _same_host(target.host, want.host), (target.host, want.host)


@FUZZ
@given(socks_handshakes(), TUNNEL, EDITS, CUTS, st.sampled_from([4, 5]), st.booleans())
def test_socks_mutated_same_whole_or_cut(hs: Handshake, tunnel: bytes,
                                         edits: list[tuple[float, str, int]], cuts: list[int],
                                         version: int, client: bool) -> None:
    data = mutate(hs[2] + tunnel, edits)
    socks_detect(data)
    whole = run_socks(version, client, [data])
    cut = run_socks(version, client, splits(data, cuts))
    assert whole[:3] == cut[:3]
    assert max(whole[3], cut[3]) <= SOCKS_MAX_HELD
    target, got_tunnel, _failed, _held = whole
    if got_tunnel is not None:
        assert data.endswith(got_tunnel)
        assert len(got_tunnel) + 2 <= len(data)
    if target is not None:
        assert client
        assert 0 < len(target.host) <= 255
        assert target.command in (1, 2, 3)


# -- WebSocket ----------------------------------------------------------------------------

# (opcode, data, deflate it, fragment cut points, ping after fragment i)
WsSpec = tuple[int, bytes, bool, list[int], list[bool]]
WS_MESSAGES = st.lists(
    st.tuples(
        st.sampled_from([1, 2]),
        st.binary(max_size=300) | st.tuples(st.binary(min_size=1, max_size=3),
                                            st.integers(1, 2000)).map(lambda t: t[0] * t[1]),
        st.booleans(),
        st.lists(st.integers(0, 1 << 16), max_size=3),
        st.lists(st.booleans(), max_size=4),
    ),
    max_size=5,
)


def ws_frame(b0: int, payload: bytes, key: bytes | None) -> bytes:
    n = len(payload)
    mask = 0x80 if key else 0
    if n < 126:
        head = bytes([b0, mask | n])
    elif n < 65536:
        head = bytes([b0, mask | 126]) + struct.pack("!H", n)
    else:
        head = bytes([b0, mask | 127]) + struct.pack("!Q", n)
    if key:
        return head + key + bytes(b ^ key[i & 3] for i, b in enumerate(payload))
    return head + payload


def ws_stream(specs: list[WsSpec], *, deflate: bool, key: bytes | None
              ) -> tuple[bytes, list[tuple[int, bytes]], list[tuple[int, bool]]]:
    """The frames of `specs` (RFC 6455, RFC 7692 with context takeover: one raw-deflate
    compressor for the direction), the messages sent, and each one's (wire size, deflated)."""
    z = zlib.compressobj(wbits=-15)
    out, sent, wire = b"", [], []
    for opcode, data, compress, cuts, pings in specs:
        deflated = deflate and compress
        w = data
        if deflated:
            w = z.compress(data) + z.flush(zlib.Z_SYNC_FLUSH)
            assert w.endswith(b"\x00\x00\xff\xff")
            w = w[:-4]
        pieces = splits(w, cuts)
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            b0 = (0x80 if last else 0) | (0x40 if deflated and i == 0 else 0)
            out += ws_frame(b0 | (opcode if i == 0 else 0), piece, key)
            if i < len(pings) and pings[i]:
                out += ws_frame(0x8A if last else 0x89, b"hb", key)
        sent.append((opcode, data))
        wire.append((len(w), deflated))
    return out, sent, wire


def run_ws(data_parts: list[bytes], *, deflate: bool, limit: int
           ) -> tuple[list[tuple[int, bytes]], int, bool, int]:
    """(messages, overflow, failed, most held)."""
    dec = WsDecoder(deflate=deflate, max_message=limit)
    got: list[tuple[int, bytes]] = []
    held = 0
    try:
        for part in data_parts:
            got += dec.feed(part)
            held = max(held, dec.buffered)
    except DecodeError:
        return got, dec.overflow, True, held
    return got, dec.overflow, False, held


def _subsequence(sub: list[tuple[int, bytes]], all_: list[tuple[int, bytes]]) -> bool:
    it = iter(all_)
    return all(any(x == y for y in it) for x in sub)


@FUZZ
@given(WS_MESSAGES, st.booleans(), st.booleans(), st.sampled_from([64, 1024, 16384]), CUTS)
def test_ws_messages_come_back(specs: list[WsSpec], deflate: bool, masked: bool, limit: int,
                               cuts: list[int]) -> None:
    data, sent, wire = ws_stream(specs, deflate=deflate, key=b"\x37\xfa\x21\x3d" if masked
                                 else None)
    got, overflow, failed, held = run_ws(splits(data, cuts), deflate=deflate, limit=limit)
    assert not failed
    assert held <= limit + WS_MAX_HEADER + WS_INFLATE_COST
    assert _subsequence(got, sent), "a message came back altered"
    assert len(got) + overflow == len(sent)
    assert all(len(d) <= limit for _, d in got)
    if all(not z or (w <= limit and len(d) < limit) for (w, z), (_, d) in zip(wire, sent,
                                                                               strict=True)):
        assert got == [m for m, (w, _) in zip(sent, wire, strict=True) if w <= limit]


@FUZZ
@given(WS_MESSAGES, st.booleans(), st.sampled_from([64, 1024, 16384]), EDITS, CUTS)
def test_ws_mutated_same_whole_or_cut(specs: list[WsSpec], deflate: bool, limit: int,
                                      edits: list[tuple[float, str, int]],
                                      cuts: list[int]) -> None:
    data = mutate(ws_stream(specs, deflate=deflate, key=b"\x01\x02\x03\x04")[0], edits)
    whole = run_ws([data], deflate=deflate, limit=limit)
    cut = run_ws(splits(data, cuts), deflate=deflate, limit=limit)
    # The verdict is the same; so are the messages and drops of a stream that decodes (the
    # call that fails returns nothing, so a failing stream's results depend on the cuts).
    assert whole[2] == cut[2]
    if not whole[2]:
        assert whole[:2] == cut[:2]
    assert max(whole[3], cut[3]) <= limit + WS_MAX_HEADER + WS_INFLATE_COST
    assert all(len(d) <= limit and op in (1, 2) for op, d in whole[0])


# -- JSON lines ---------------------------------------------------------------------------

def _depth(v: object) -> int:
    if isinstance(v, list):
        return 1 + max(map(_depth, v), default=0)
    if isinstance(v, dict):
        return 1 + max(map(_depth, v.values()), default=0)
    return 0


# Objects and arrays within the framer's nesting limit (src/lines.rs MAX_DEPTH).
TOP = (st.lists(JSON, max_size=5) | st.dictionaries(st.text(max_size=12), JSON, max_size=5)
       ).filter(lambda v: _depth(v) <= JSON_MAX_DEPTH)
STRATUM_LINES = [line for line in corpus_lines() if line.startswith(b"{")]
PAD = st.sampled_from([b"", b" ", b"\r", b"\t ", b"\n"])


def run_lines(parts: list[bytes], *, midstream: bool = False
              ) -> tuple[list[bytes], bytes, bool, int]:
    """(lines, raw bytes, not JSON lines, most held)."""
    f = LineFramer(midstream=midstream)
    lines: list[bytes] = []
    raw, held = b"", 0
    try:
        for part in parts:
            got, r = f.feed(part)
            lines += got
            raw += r
            held = max(held, f.buffered)
        got, r = f.close()
    except DecodeError:
        return lines, raw, True, held
    return lines + got, raw + r, False, held


@FUZZ
@given(st.lists(st.tuples(TOP, PAD, PAD), min_size=1, max_size=8), st.booleans(), CUTS)
def test_json_lines_come_back_as_sent(values: list[tuple[object, bytes, bytes]], last_lf: bool,
                                      cuts: list[int]) -> None:
    lines = [json.dumps(v).encode() for v, _, _ in values]
    data = b"\n".join(a + line + b for line, (_, a, b) in zip(lines, values, strict=True))
    data += b"\n" if last_lf else b""
    got, raw, failed, _held = run_lines(splits(data, cuts))
    assert (got, raw, failed) == (lines, b"", False)


@FUZZ
@given(st.lists(st.sampled_from(STRATUM_LINES), min_size=1, max_size=6), EDITS, CUTS,
       st.booleans())
def test_json_lines_mutated_only_json_handed_up(lines: list[bytes],
                                                edits: list[tuple[float, str, int]],
                                                cuts: list[int], midstream: bool) -> None:
    data = mutate(b"".join(lines), edits)
    whole = run_lines([data], midstream=midstream)
    cut = run_lines(splits(data, cuts), midstream=midstream)
    assert whole[2] == cut[2]
    if not whole[2]:
        assert whole[:2] == cut[:2]
    got, raw, _failed, held = whole
    assert max(held, cut[3]) <= 2 * JSON_MAX_LINE
    assert sum(len(line) for line in got) + len(raw) <= len(data)
    for line in got:
        # Python's own JSON reader agrees with the core's check on every line handed up.
        assert isinstance(json.loads(line), (dict, list))
    if raw:
        assert data.endswith(raw)
        assert raw.startswith(b"\x1f\x8b")


# -- TLS record shape ---------------------------------------------------------------------

RECORDS = st.lists(
    st.tuples(st.booleans(), st.sampled_from([23, 23, 23, 20, 21, 22]),
              st.integers(0, 65535), st.floats(0, 4, allow_nan=False)),
    max_size=60,
)


@FUZZ
@given(st.sampled_from([0x0303, 0x0304]), RECORDS)
def test_tls_shape_counts_stay_within_the_records(version: int,
                                                  records: list[tuple[bool, int, int, float]]
                                                  ) -> None:
    t = _core.TlsShape()
    t.set_version(version)
    ts, fed, counted, largest = 1.0, 0, 0, 0
    for from_client, ctype, length, dt in records:
        ts += dt
        before = TlsShape(*t.summary())
        changed = t.record(from_client, ctype, length, ts)
        after = TlsShape(*t.summary())
        if ctype != 23:
            assert not changed
            assert after == before
            continue
        fed += 1
        if sum(after.records) == sum(before.records) + 1:
            counted += length
            largest = max(largest, length)
        else:
            assert after.records == before.records
        if not changed:
            # Nothing judgement reads moved (first_client only matters once it is first).
            keep = ("client_first", "first_answer", "pushes", "pushes_small", "pushes_same",
                    "client_small")
            assert all(getattr(after, k) == getattr(before, k) for k in keep)
            assert not after.client_first or after.first_client == before.first_client
    s = TlsShape(*t.summary())
    assert s.pushes + s.pushes_small <= s.records[1]
    assert s.pushes_same <= s.pushes
    assert s.client_small <= max(s.records[0] - 1, 0)
    assert (s.bytes, s.max_record) == (counted, largest)
    assert sum(s.records) <= fed
    if version != 0x0304:
        assert sum(s.records) == fed


# -- certificates -------------------------------------------------------------------------

LEAF = (Path(__file__).resolve().parents[1] / "src" / "tls" / "testdata" / "leaf.der"
        ).read_bytes()


def certificate_message(der: bytes) -> bytes:
    body = struct.pack("!I", len(der) + 3)[1:] + struct.pack("!I", len(der))[1:] + der
    return b"\x0b" + struct.pack("!I", len(body))[1:] + body


def in_records(msg: bytes, at: int) -> bytes:
    """A TLS 1.2 handshake stream carrying `msg`, fragmented across two records at `at`."""
    at %= len(msg) + 1
    return b"".join(struct.pack("!BHH", 22, 0x0303, len(p)) + p
                    for p in (msg[:at], msg[at:]) if p)


def test_leaf_certificate_names_match_cryptography() -> None:
    cert = x509.load_der_x509_certificate(LEAF)
    got = parse_certificate(certificate_message(LEAF))
    assert got is not None
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    issuer = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    want = Certificate(
        str(cn[0].value).lower() if cn else None,
        tuple(n.lower().rstrip(".") for n in san.get_values_for_type(x509.DNSName)),
        str(issuer[0].value) if issuer else None,
    )
    assert got == want
    assert got.san_dns  # the seed exercises the SAN walk


@FUZZ
@given(EDITS, st.integers(0, 1 << 16), CUTS)
def test_certificate_mutated_same_alone_or_in_records(edits: list[tuple[float, str, int]],
                                                      at: int, cuts: list[int]) -> None:
    msg = certificate_message(mutate(LEAF, edits))
    direct = parse_certificate(msg)
    if direct is not None:
        names = [*direct.san_dns, direct.subject_cn or "", direct.issuer_cn or ""]
        assert all(len(n) <= len(msg) for n in names)
        assert len(direct.san_dns) <= len(msg) // 2
    stream = in_records(msg, at)
    for parts in ([stream], splits(stream, cuts)):
        dec = TlsDecoder()
        events = [e for p in parts for e in dec.feed(p)]
        assert events == ([] if direct is None else [direct])


# -- passive DNS --------------------------------------------------------------------------


def _names_in(msg_names: set[str], raw: bytes) -> None:
    try:
        m = decode_dns(raw, addresses_only=True)
    except DecodeError:
        return
    msg_names.update(r.name for r in m.answers)
    msg_names.update(r.value for r in m.answers if r.rtype == 5)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(DNS_SEEDS), EDITS), min_size=1, max_size=6),
       st.sampled_from([600, 4096, 1 << 20]))
def test_passive_dns_learns_only_what_answers_said(msgs: list[tuple[bytes, list[tuple[
        float, str, int]]]], budget: int) -> None:
    core = _core.Core(pdns_budget=budget)
    said: set[str] = set()
    raws = [mutate(seed, edits) for seed, edits in msgs]
    for raw in raws:
        _names_in(said, raw)
    # Passive DNS keeps the answers that name a pool: here every top-level label said is
    # a "pool" suffix, so any name with one is a pool name.
    tops = sorted({n.rstrip(".").lower().rsplit(".", 1)[-1] for n in said} - {""})
    core.set_intel(tops, [], [], [])
    ts = 1.0
    for raw in raws:
        ts += 1.0
        core.feed([(ts, 101, _udp_from_53(raw))])
    c = core.counters()
    assert c["core_panics"] == 0
    assert c["pdns_bytes"] <= budget
    try:
        last = decode_dns(raws[-1], addresses_only=True)
    except DecodeError:
        last = None
    if last is None:
        return  # the assertions above held; nothing more to ask of an undecodable one
    for r in last.answers:
        try:
            ipaddress.ip_address(r.value)
        except ValueError:
            continue
        if r.rtype not in (1, 28):
            continue
        names = core.pdns_names(r.value, ts)
        assert set(names) <= said, set(names) - said
        owner = r.name.rstrip(".").lower()
        if (budget == 1 << 20 and last.is_response and last.rcode == 0
                and owner.rsplit(".", 1)[-1] in tops):
            assert names, f"{r.value} answered in the last message but not learned"
