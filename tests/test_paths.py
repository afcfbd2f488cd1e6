"""Mining off the beaten path: solo mining on node RPC, proxies, WebSocket miners, TLS
stratum without a name — the classifiers, the evidence rules, and the core's new decoders
(SOCKS, WebSocket, TLS record shape) fuzzed through the bindings."""

from __future__ import annotations

import contextlib
import json
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netdetect import _core
from netdetect.core_engine import CoreEngine, CoreFlow
from netdetect.decoders.jsonrpc import parse_json_messages
from netdetect.decoders.webminer import parse_ws_message
from netdetect.detect import Detector, Inspection, TlsShape
from netdetect.errors import DecodeError
from netdetect.intel import Intel

WALLET = ("44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2"
          "wfn3RVGQBEP3A")
MONERO_BLOB = "1010" + "d9c0c5d806" + "ab" * 32 + "00" * 4 + "02" + "aa" * 60
BITCOIN_BLOB = "00000020" + "ab" * 76 + "01" + "02000000010000000000000000000000" + "cd" * 70


def _one(obj: object) -> tuple[str, bool, bool | None]:
    (m,) = parse_json_messages(json.dumps(obj).encode())
    return m.dialect, m.mining, m.client_side


# -- solo mining on a node's RPC ---------------------------------------------------------


@pytest.mark.parametrize("obj", [
    {"jsonrpc": "2.0", "id": "0", "method": "get_block_template",
     "params": {"wallet_address": WALLET, "reserve_size": 60}},
    {"id": 1, "jsonrpc": "2.0", "method": "getblocktemplate",
     "params": {"wallet_address": WALLET, "extra_nonce": "00112233aabbccdd"}},
    {"jsonrpc": "2.0", "id": "0", "method": "submit_block", "params": [MONERO_BLOB]},
    {"id": 3, "jsonrpc": "2.0", "method": "submitblock", "params": [MONERO_BLOB]},
    {"jsonrpc": "2.0", "id": "0", "method": "get_miner_data"},
])
def test_monero_daemon_mining_requests(obj: object) -> None:
    assert _one(obj) == ("monero-daemon", True, True)


def test_monero_template_result_is_the_daemons_side() -> None:
    obj = {"id": 1, "jsonrpc": "2.0", "result": {
        "blocktemplate_blob": MONERO_BLOB, "blockhashing_blob": MONERO_BLOB[:152],
        "difficulty": 1000, "height": 3_200_000, "reserved_offset": 130, "status": "OK"}}
    assert _one(obj) == ("monero-daemon", True, False)


@pytest.mark.parametrize("method", ["get_info", "get_height", "get_block_count",
                                    "get_last_block_header", "getblockchaininfo",
                                    "get_fee_estimate", "getlastblockheader"])
def test_daemon_polling_is_not_mining(method: str) -> None:
    assert _one({"jsonrpc": "2.0", "id": "0", "method": method}) == ("jsonrpc", False, None)


def test_monero_shapes_are_required() -> None:
    # A template request without a wallet, with foreign members, a Bitcoin block blob.
    assert _one({"jsonrpc": "2.0", "id": 1, "method": "get_block_template",
                 "params": {"reserve_size": 60}})[1] is False
    assert _one({"jsonrpc": "2.0", "id": 1, "method": "getblocktemplate",
                 "params": {"wallet_address": WALLET, "foo": 1}})[1] is False
    assert _one({"id": 1, "method": "submitblock", "params": [BITCOIN_BLOB]})[0] == \
        "getblocktemplate"
    assert _one({"id": 1, "method": "getblocktemplate",
                 "params": [{"rules": ["segwit"]}]})[0] == "getblocktemplate"


# -- WebSocket miners -------------------------------------------------------------------


@pytest.mark.parametrize(("obj", "dialect", "client"), [
    ({"type": "auth", "params": {"site_key": "k", "type": "anonymous", "user": None}},
     "coinhive-ws", True),
    ({"type": "job", "params": {"job_id": "a1", "blob": "0707ff", "target": "ffff0000"}},
     "coinhive-ws", False),
    ({"type": "submit", "params": {"job_id": "a1", "nonce": "0011aabb", "result": "ab" * 32}},
     "coinhive-ws", True),
    ({"identifier": "handshake", "pool": "moneroocean.stream", "login": WALLET,
      "password": "", "version": 7}, "webminerpool-ws", True),
    ({"identifier": "job", "job_id": "x", "blob": "0b0b00", "target": "b88d0600"},
     "webminerpool-ws", False),
    ({"jsonrpc": "2.0", "method": "job", "params": {"job_id": "x", "blob": "0b0b00",
                                                    "target": "b88d0600"}},
     "cryptonote", False),
])
def test_websocket_miner_messages(obj: object, dialect: str, client: bool) -> None:
    (m,) = parse_ws_message(json.dumps(obj).encode())
    assert (m.dialect, m.mining, m.client_side) == (dialect, True, client)


@pytest.mark.parametrize("obj", [
    {"type": "job", "params": {"job_id": 4101, "title": "Backend developer"}},
    {"type": "submit", "params": {"text": "sounds good", "nonce": "ab12"}},
    {"type": "message", "params": {"text": "hi"}},
    {"identifier": "job", "title": "x"},
    [1, 2, 3],
])
def test_websocket_chat_is_not_mining(obj: object) -> None:
    assert parse_ws_message(json.dumps(obj).encode()) == []


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_websocket_message_parser_never_raises_other_errors(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        parse_ws_message(data)


# -- evidence rules ----------------------------------------------------------------------


def _flow() -> CoreFlow:
    return CoreFlow(1, 6, bytes([10, 0, 0, 1]), 40000, bytes([198, 51, 100, 7]), 443, 0.0,
                    False, 0)


def _shape(**kw: object) -> TlsShape:
    base: dict[str, object] = {
        "client_first": True, "first_client": 593, "first_answer": 461, "pushes": 2,
        "pushes_small": 0, "pushes_same": 2, "client_small": 1, "records": (3, 6),
        "max_record": 593, "bytes": 3000, "first_ts": 0.0}
    base.update(kw)
    return TlsShape(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(("shape", "fires"), [
    (_shape(), True),
    (_shape(client_small=0, pushes_same=4, pushes=4), True),  # jobs before the first share
    (_shape(client_small=0), False),
    (_shape(client_first=False), False),  # IMAP: the server speaks first
    (_shape(first_answer=26), False),  # MQTT: CONNACK ends the broker's answer
    (_shape(first_answer=146, client_small=0, pushes=6, pushes_same=1), False),  # a feed
    (_shape(max_record=16401), False),  # bulk records: not stratum
])
def test_tls_shape_rule(intel: Intel, shape: TlsShape, fires: bool) -> None:
    det = Detector(intel)
    ins = Inspection(bare_tls=True)
    det.check_tls_shape(_flow(), ins, shape, 10.0)
    assert ("tls-shape" in ins.kinds) is fires
    ins2 = Inspection(bare_tls=False)
    det.check_tls_shape(_flow(), ins2, shape, 10.0)
    assert "tls-shape" not in ins2.kinds


def test_proxy_target_naming_a_pool_needs_the_tunnel_to_agree(intel: Intel) -> None:
    det = Detector(intel)
    ins = Inspection()
    det.proxy(_flow(), ins, 0, "http-connect", "xmr-eu1.nanopool.org", 14433, 1.0)
    assert ins.kinds == {"pool-domain-proxy"}
    assert 0 < ins.score < det.threshold  # a name alone, like a certificate
    assert (ins.pool_host, ins.pool_host_source, ins.proxy_port) == (
        "xmr-eu1.nanopool.org", "http-connect", 14433)
    ins = Inspection()
    det.proxy(_flow(), ins, 0, "socks5", "www.debian.org", 443, 1.0)
    assert ins.score == 0
    assert ins.pool_host == "www.debian.org"


# -- the core's decoders through the bindings -------------------------------------------


def _frame(src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int, flags: int,
           payload: bytes = b"") -> bytes:
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4,
                      flags, 65535, 0, 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40 + len(payload), 1, 0x4000, 64, 6, 0, src,
                     dst)
    return ip + tcp + payload


def _session(prefix_c: bytes, prefix_s: bytes, chunks: list[tuple[bool, bytes]],
             dport: int = 1080, server: bytes = bytes([198, 51, 100, 9]),
             ) -> list[tuple[float, int, bytes]]:
    c, s = bytes([10, 0, 0, 5]), server
    cs, ss = 1000, 5000
    out = [(1.0, 101, _frame(c, s, 40000, dport, cs, 0, 0x02)),
           (1.01, 101, _frame(s, c, dport, 40000, ss, cs + 1, 0x12))]
    cs += 1
    ss += 1
    t = 1.02
    for from_client, data in [(True, prefix_c), (False, prefix_s), *chunks]:
        if not data:
            continue
        if from_client:
            out.append((t, 101, _frame(c, s, 40000, dport, cs, ss, 0x18, data)))
            cs += len(data)
        else:
            out.append((t, 101, _frame(s, c, dport, 40000, ss, cs, 0x18, data)))
            ss += len(data)
        t += 0.7
    return out


def _run(frames: list[tuple[float, int, bytes]]) -> dict[str, int]:
    core = _core.Core(memory_budget=1 << 20)
    core.feed(frames)
    core.finish()
    c: dict[str, int] = dict(core.counters())
    assert c["core_panics"] == 0
    assert c["memory_peak_bytes"] <= 1 << 20
    return c


_chunks = st.lists(st.tuples(st.booleans(), st.binary(min_size=1, max_size=200)), max_size=25)
_WS_UP = (b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
_WS_OK = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          b"Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n")


@settings(max_examples=150, deadline=None)
@given(st.sampled_from([b"\x05\x01\x00", b"\x05\x02\x00\x02",
                        b"\x04\x01\x0d\x05\xc6\x33\x64\x07x\x00",
                        b"CONNECT pool.supportxmr.com:443 HTTP/1.1\r\nHost: a\r\n\r\n"]),
       st.sampled_from([b"\x05\x00", b"\x05\x02\x01\x00", b"\x00\x5a" + bytes(6),
                        b"HTTP/1.1 200 Connection established\r\n\r\n"]),
       _chunks)
def test_proxy_handshakes_and_tunnels_never_panic(
    hello: bytes, reply: bytes, chunks: list[tuple[bool, bytes]]
) -> None:
    _run(_session(hello, reply, chunks))


@settings(max_examples=150, deadline=None)
@given(_chunks)
def test_websocket_frames_never_panic(chunks: list[tuple[bool, bytes]]) -> None:
    _run(_session(_WS_UP, _WS_OK, chunks, dport=80))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(1, 20000)), max_size=40))
def test_tls_record_shapes_never_panic(records: list[tuple[bool, int]]) -> None:
    chunks = [(c, bytes([23, 3, 3]) + struct.pack("!H", n) + bytes(n)) for c, n in records]
    c = _run(_session(_tls_hello(), bytes([22, 3, 3, 0, 4, 14, 0, 0, 0]), chunks, dport=443))
    assert c["flows_announced"] == 1  # a bare hello is handed up, its records shaped


def _tls_hello() -> bytes:
    body = (b"\x03\x03" + bytes(32) + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00"
            + b"\x00\x00")
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + len(hs).to_bytes(2, "big") + hs


def test_socks_connect_and_websocket_reach_judgement(intel: Intel) -> None:
    eng = CoreEngine(intel)
    login = json.dumps({"id": 1, "jsonrpc": "2.0", "method": "login", "params": {
        "login": WALLET, "pass": "x", "agent": "XMRig/6.26.0"}}).encode() + b"\n"
    socks = b"\x05\x01\x00" + bytes([5, 1, 0, 3, 19]) + b"pool.supportxmr.com" + b"\x01\xbb"
    for ts, lt, f in _session(socks, b"\x05\x00\x05\x00\x00\x01" + bytes(6), [(True, login)]):
        eng.feed(ts, lt, f)
    ws_msg = json.dumps({"type": "auth", "params": {"site_key": "k"}}).encode()
    key = b"\x01\x02\x03\x04"
    frame = bytes([0x81, 0x80 | len(ws_msg)]) + key + bytes(
        b ^ key[i & 3] for i, b in enumerate(ws_msg))
    ws_ok = _WS_OK.replace(b"Sec-WebSocket-Extensions: permessage-deflate\r\n", b"")
    for ts, lt, f in _session(_WS_UP, ws_ok, [(True, frame)], dport=8892):
        eng.feed(ts + 100, lt, f)
    eng.finish()
    got = {(s.pool.port, s.dialect, s.app_proto, s.pool_facts.proxy) for s in eng.take_suspects()}
    assert got == {(1080, "cryptonote", "stratum", "socks5"),
                   (8892, "coinhive-ws", "websocket", None)}


def test_internal_stratum_proxy_leg_names_the_miner(intel: Intel) -> None:
    # xmrig-proxy inside the network: the mirror sees miner -> proxy only, both inside; the
    # protocol role decides which end is the miner, in either order of appearance.
    eng = CoreEngine(intel)
    proxy = bytes([10, 0, 0, 2])
    login = json.dumps({"id": 1, "jsonrpc": "2.0", "method": "login", "params": {
        "login": "x", "pass": "x", "agent": "XMRig/6.26.0"}}).encode() + b"\n"
    job = json.dumps({"jsonrpc": "2.0", "method": "job", "params": {
        "blob": "0b0b" + "00" * 74, "job_id": "1", "target": "b88d0600"}}).encode() + b"\n"
    for ts, lt, f in _session(b"", job, [(True, login)], dport=3333, server=proxy):
        eng.feed(ts, lt, f)
    eng.finish()
    (s,) = eng.take_suspects()
    assert (s.miner.ip, s.pool.ip, s.pool.port, s.dialect) == ("10.0.0.5", "10.0.0.2", 3333,
                                                                 "cryptonote")
