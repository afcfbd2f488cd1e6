"""The core's HTTP/1.x sniffer (through netdetect._core): mining POSTs, pool responses, framing,
caps and failures."""

from __future__ import annotations

import base64
import gzip
import zlib

import pytest
from coreparse import HttpDecoder

from netdetect.decoders.events import Event, HttpMessage
from netdetect.errors import DecodeError

GBT_BODY = (
    b'{"id": 0, "method": "getblocktemplate", "params": [{"capabilities": ["coinbasetxn", '
    b'"workid", "coinbase/append"]}]}\n'
)
GBT_REQUEST = (
    b"POST / HTTP/1.1\r\n"
    b"Authorization: Basic " + base64.b64encode(b"Bitcoin:x") + b"\r\n"
    b"Host: pool.example.net:3333\r\n"
    b"Accept: */*\r\n"
    b"Accept-Encoding: deflate, gzip\r\n"
    b"Content-type: application/json\r\n"
    b"X-Mining-Extensions: longpoll midstate rollntime submitold\r\n"
    b"Content-Length: " + str(len(GBT_BODY)).encode() + b"\r\n"
    b"User-Agent: cgminer 3.7.2\r\n"
    b"\r\n" + GBT_BODY
)
GETWORK_BODY = b'{"method": "getwork", "params": [], "id":0}\n'
GETWORK_REQUEST = (
    b"POST / HTTP/1.1\r\nHost: pool.example.net:3333\r\nUser-Agent: bfgminer/5.2.0\r\n"
    b"Content-Length: " + str(len(GETWORK_BODY)).encode() + b"\r\n\r\n" + GETWORK_BODY
)
WORK_JSON = (
    b'{"result":{"data":"00000001c570c4764aadda351b5c","target":"ffffffffffffffffffff"},'
    b'"error":null,"id":0}'
)
CHUNKED_RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"Server: nginx\r\n"
    b"Content-Type: application/json\r\n"
    b"Transfer-Encoding: chunked\r\n"
    b"X-Long-Polling: /LP\r\n"
    b"X-Stratum: stratum+tcp://pool.example.net:3333\r\n"
    b"Connection: keep-alive\r\n"
    b"\r\n"
    + f"{len(WORK_JSON[:20]):x}".encode()
    + b";ext=1\r\n"
    + WORK_JSON[:20]
    + b"\r\n"
    + f"{len(WORK_JSON[20:]):x}".encode()
    + b"\r\n"
    + WORK_JSON[20:]
    + b"\r\n0\r\nX-Trailer: yes\r\n\r\n"
)


def msgs(events: list[Event]) -> list[HttpMessage]:
    out = []
    for ev in events:
        assert isinstance(ev, HttpMessage)
        out.append(ev)
    return out


def feed_chunks(dec: HttpDecoder, data: bytes, size: int) -> list[HttpMessage]:
    events: list[Event] = []
    for i in range(0, len(data), size):
        events += dec.feed(data[i : i + size])
    return msgs(events)


def test_getblocktemplate_request_facts() -> None:
    (m,) = msgs(HttpDecoder().feed(GBT_REQUEST))
    assert m.is_request
    assert (m.method, m.path, m.status) == ("POST", "/", None)
    assert m.host == "pool.example.net:3333"
    assert m.user_agent == "cgminer 3.7.2"
    assert m.content_type == "application/json"
    assert m.x_mining_extensions == "longpoll midstate rollntime submitold"
    assert m.authorization_user == "Bitcoin"
    assert len(m.rpc) == 1
    assert m.rpc[0].method == "getblocktemplate"
    assert m.rpc[0].dialect == "getblocktemplate"
    assert m.rpc[0].mining


def test_chunked_response_with_pool_headers() -> None:
    dec = HttpDecoder()
    (m,) = msgs(dec.feed(CHUNKED_RESPONSE))
    assert not m.is_request
    assert m.status == 200
    assert m.x_stratum == "stratum+tcp://pool.example.net:3333"
    assert m.x_long_polling == "/LP"
    assert [(r.dialect, r.client_side, r.target) for r in m.rpc] == [
        ("getwork", False, "ffffffffffffffffffff")
    ]
    assert dec.buffered == 0


STREAM = GBT_REQUEST + GETWORK_REQUEST + b"GET /favicon.ico HTTP/1.0\r\nHost: x\r\n\r\n"


@pytest.mark.parametrize("size", [1, 2, 7, 100, 100000])
def test_keepalive_pipelined_requests_any_chunking(size: int) -> None:
    got = feed_chunks(HttpDecoder(), STREAM, size)
    assert [(m.method, m.path) for m in got] == [
        ("POST", "/"),
        ("POST", "/"),
        ("GET", "/favicon.ico"),
    ]
    assert [r.method for m in got for r in m.rpc] == ["getblocktemplate", "getwork"]


def test_truncated_at_every_index() -> None:
    for data in (STREAM, CHUNKED_RESPONSE + CHUNKED_RESPONSE):
        total = len(msgs(HttpDecoder().feed(data)))
        for cut in range(len(data) + 1):
            dec = HttpDecoder()
            first = msgs(dec.feed(data[:cut]))
            rest = msgs(dec.feed(data[cut:]))
            assert len(first) + len(rest) == total, cut


def test_response_with_content_length_and_lf_only_head() -> None:
    body = b'{"id":1,"result":true,"error":null}'
    data = b"HTTP/1.0 200 OK\nContent-Length: " + str(len(body)).encode() + b"\n\n" + body
    (m,) = msgs(HttpDecoder().feed(data))
    assert m.status == 200
    assert [r.kind for r in m.rpc] == ["response"]


def test_until_close_response_finishes_on_close() -> None:
    dec = HttpDecoder()
    assert dec.feed(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + WORK_JSON) == []
    (m,) = msgs(dec.close())
    assert m.rpc[0].dialect == "getwork"
    assert dec.close() == []


def test_no_body_statuses() -> None:
    data = (
        b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    )
    assert [m.status for m in msgs(HttpDecoder().feed(data))] == [204, 304, 200]


def test_body_over_cap_is_skipped_but_framing_kept() -> None:
    big = b'{"id":1,"method":"getwork","params":["' + b"0" * 5000 + b'"]}'
    req = b"POST / HTTP/1.1\r\nContent-Length: " + str(len(big)).encode() + b"\r\n\r\n" + big
    dec = HttpDecoder(max_body=1024)
    got = feed_chunks(dec, req + GETWORK_REQUEST, 333)
    assert len(got) == 2
    assert got[0].rpc == ()
    assert [r.method for r in got[1].rpc] == ["getwork"]
    assert dec.overflow == 1
    assert dec.buffered <= dec.max_head + dec.max_body


def test_head_over_cap_stops_decoding_without_error() -> None:
    dec = HttpDecoder(max_head=256)
    assert dec.feed(b"GET / HTTP/1.1\r\n" + b"X-Pad: " + b"a" * 1000 + b"\r\n") == []
    assert dec.overflow == 1
    assert dec.feed(GETWORK_REQUEST) == []
    assert dec.buffered == 0


def test_gzip_and_deflate_bodies() -> None:
    for coding, body in [
        (b"gzip", gzip.compress(WORK_JSON)),
        (b"deflate", zlib.compress(WORK_JSON)),
        (b"deflate", zlib.compress(WORK_JSON)[2:-4]),  # raw deflate, as some servers send it
    ]:
        data = (
            b"HTTP/1.1 200 OK\r\nContent-Encoding: "
            + coding
            + b"\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        (m,) = msgs(HttpDecoder().feed(data))
        assert [r.dialect for r in m.rpc] == ["getwork"], coding


def test_gzip_body_bomb_is_capped() -> None:
    body = gzip.compress(b"[" + b" " * 2_000_000 + b"]")
    data = (
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: " + str(len(body)).encode()
    )
    dec = HttpDecoder()
    (m,) = msgs(dec.feed(data + b"\r\n\r\n" + body))
    assert m.rpc == ()
    assert dec.overflow == 1


def test_non_json_body_yields_no_rpc() -> None:
    body = b"<html>hello</html>"
    data = b"HTTP/1.1 200 OK\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    (m,) = msgs(HttpDecoder().feed(data))
    assert m.rpc == ()
    broken = b"{not json"
    data = b"POST / HTTP/1.1\r\nContent-Length: " + str(len(broken)).encode() + b"\r\n\r\n" + broken
    (m,) = msgs(HttpDecoder().feed(data))
    assert m.rpc == ()


def test_body_with_two_json_lines() -> None:
    body = b'{"id":1,"method":"getwork","params":[]}\n{"id":2,"method":"getwork","params":[]}\n'
    data = b"POST / HTTP/1.1\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    (m,) = msgs(HttpDecoder().feed(data))
    assert [r.msg_id for r in m.rpc] == ["1", "2"]


def test_websocket_upgrade_goes_quiet() -> None:
    req = (
        b"GET /proxy HTTP/1.1\r\nHost: ws.example.org\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    dec = HttpDecoder()
    (m,) = msgs(dec.feed(req + b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"))
    assert m.upgrade == "websocket"
    assert dec.feed(b"\x82\x7e\x00\x10" + b"\x00" * 16) == []
    resp = HttpDecoder()
    (r,) = msgs(
        resp.feed(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello")
    )
    assert (r.status, r.upgrade) == (101, "websocket")


def test_authorization_variants() -> None:
    def user(value: bytes) -> str | None:
        data = b"GET / HTTP/1.1\r\nAuthorization: " + value + b"\r\n\r\n"
        (m,) = msgs(HttpDecoder().feed(data))
        return m.authorization_user

    assert user(b"Basic " + base64.b64encode(b"wallet.worker:pw")) == "wallet.worker"
    assert user(b"basic " + base64.b64encode(b"nocolon")) == "nocolon"
    assert user(b"Bearer abc.def") is None
    assert user(b"Basic !!!notbase64") is None


@pytest.mark.parametrize(
    "data",
    [
        b'{"id":1,"method":"mining.subscribe","params":[]}\n',
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        b"SSH-2.0-OpenSSH_9.6\r\n",
        b"get / HTTP/1.1\r\n\r\n",
        b"GET / SPDY/3\r\n\r\n",
        b"HTTP/1.1 OK\r\n\r\n",
    ],
)
def test_not_http_is_a_decode_error(data: bytes) -> None:
    dec = HttpDecoder()
    with pytest.raises(DecodeError):
        dec.feed(data)
    with pytest.raises(DecodeError):
        dec.feed(b"GET / HTTP/1.1\r\n\r\n")  # stays failed


@pytest.mark.parametrize(
    "head",
    [
        b"POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
        # Latin-1 superscript two: str.isdigit() says yes, int() raises ValueError.
        b"POST / HTTP/1.1\r\nContent-Length: \xb2\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 1\xb9\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY",
    ],
)
def test_bad_framing_is_a_decode_error(head: bytes) -> None:
    with pytest.raises(DecodeError):
        HttpDecoder().feed(head)


def test_garbage_between_keepalive_messages_fails() -> None:
    dec = HttpDecoder()
    assert len(dec.feed(GETWORK_REQUEST)) == 1
    with pytest.raises(DecodeError):
        dec.feed(b"\x00\x01binary")


def test_leading_blank_lines_are_tolerated() -> None:
    (m,) = msgs(HttpDecoder().feed(b"\r\n\r\n" + GETWORK_REQUEST))
    assert m.rpc[0].method == "getwork"


def test_memoryview_input() -> None:
    dec = HttpDecoder()
    view = memoryview(STREAM)
    events: list[Event] = []
    for i in range(0, len(STREAM), 50):
        events += dec.feed(view[i : i + 50])
    assert [m.method for m in msgs(events)] == ["POST", "POST", "GET"]
