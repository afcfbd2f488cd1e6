"""Tests for the newline-delimited JSON-RPC stream decoder, including ES/2.0.0 gzip mode."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterable

import pytest

from netdetect.decoders.events import Event, StratumMessage
from netdetect.decoders.stratum import MAX_BAD_LINES, LineDecoder
from netdetect.errors import DecodeError

# A miner's side of a v1 session followed by a pool's pushes, as separate directions would be
# fed; here one decoder sees them all, which the decoder allows (it is per byte stream).
TRANSCRIPT = (
    b'{"id": 1, "method": "mining.subscribe", "params": ["cgminer/4.10.0"]}\n'
    b'{"id":2,"method":"mining.authorize","params":["wallet.rig1","x"]}\r\n'
    b"\n"
    b"   \r\n"
    b'{"id":null,"method":"mining.set_difficulty","params":[512]}\n'
    b'{"id":null,"method":"mining.notify","params":["4f","aa","01","02",[],"20000000","1a0ffff0","5d3f",true]}\n'
    b'{"id":4,"method":"mining.submit","params":["wallet.rig1","4f","00000001","5d3f","b2957c02"]}\n'
    b'{"jsonrpc":"2.0","method":"job","params":{"blob":"0707","job_id":"j9","target":"b88d0600"}}\n'
)
EXPECTED = [
    "mining.subscribe",
    "mining.authorize",
    "mining.set_difficulty",
    "mining.notify",
    "mining.submit",
    "job",
]


def methods(events: Iterable[Event]) -> list[str | None]:
    out = []
    for ev in events:
        assert isinstance(ev, StratumMessage)
        out.append(ev.method)
    return out


def feed_chunks(dec: LineDecoder, data: bytes, size: int) -> list[Event]:
    events: list[Event] = []
    for i in range(0, len(data), size):
        events += dec.feed(data[i : i + size])
    return events


def test_whole_transcript() -> None:
    dec = LineDecoder()
    events = dec.feed(TRANSCRIPT)
    assert methods(events) == EXPECTED
    assert dec.messages == 6
    assert dec.errors == 0
    assert dec.overflow == 0
    assert dec.buffered == 0
    assert all(isinstance(e, StratumMessage) and e.mining for e in events)


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64])
def test_chunked_feeding_gives_same_messages(size: int) -> None:
    dec = LineDecoder()
    assert methods(feed_chunks(dec, TRANSCRIPT, size)) == EXPECTED


def test_truncated_at_every_index() -> None:
    # Every prefix decodes without error and yields exactly the lines it completes.
    for cut in range(len(TRANSCRIPT) + 1):
        dec = LineDecoder()
        got = methods(dec.feed(TRANSCRIPT[:cut]))
        complete = TRANSCRIPT[:cut].count(b"\n") if cut else 0
        lines = [ln for ln in TRANSCRIPT[:cut].split(b"\n")[:complete] if ln.strip()]
        assert len(got) == len(lines), cut
        assert dec.buffered <= dec.max_buffer
        # and the rest completes the stream
        assert methods(dec.feed(TRANSCRIPT[cut:])) == EXPECTED[len(got) :]


def test_not_json_lines_is_a_decode_error() -> None:
    dec = LineDecoder()
    with pytest.raises(DecodeError, match="not JSON lines"):
        dec.feed(b"SSH-2.0-OpenSSH_9.6\r\n")
    with pytest.raises(DecodeError):
        dec.feed(b'{"id":1}\n')  # stays failed


def test_first_line_invalid_json_is_a_decode_error_with_cause() -> None:
    dec = LineDecoder()
    with pytest.raises(DecodeError) as info:
        dec.feed(b'{"id": 1, "method": mining.subscribe}\n')
    assert info.value.__cause__ is not None


def test_incomplete_first_line_is_not_judged_yet() -> None:
    dec = LineDecoder()
    assert dec.feed(b"GET / HTTP/1.1") == []  # no LF yet: nothing decided
    with pytest.raises(DecodeError):
        dec.feed(b"\r\n")


def test_bad_lines_after_proof_are_counted_until_too_many() -> None:
    dec = LineDecoder()
    dec.feed(b'{"id":1,"method":"mining.subscribe","params":[]}\n')
    assert dec.feed(b"garbage\n{broken\n") == []
    assert dec.errors == 2
    assert methods(dec.feed(b'{"id":2,"method":"mining.authorize","params":["u","p"]}\n')) == [
        "mining.authorize"
    ]
    with pytest.raises(DecodeError, match="undecodable lines"):
        dec.feed(b"junk\n" * MAX_BAD_LINES)


def test_midstream_discards_to_first_newline() -> None:
    dec = LineDecoder(midstream=True)
    tail = b'ms":["w.r","4f","00","5d","b2"]}\n'
    assert dec.feed(tail[:10]) == []
    events = dec.feed(tail[10:] + b'{"id":null,"method":"mining.set_difficulty","params":[2]}\n')
    assert methods(events) == ["mining.set_difficulty"]


def test_overlong_line_is_skipped_and_counted() -> None:
    dec = LineDecoder(max_line=1024, max_buffer=4096)
    big = b'{"id":1,"result":"' + b"a" * 5000 + b'"}\n'
    events = feed_chunks(dec, big + TRANSCRIPT, 100)
    assert dec.overflow == 1
    assert methods(events) == EXPECTED
    assert dec.errors == 0
    # A complete over-long line inside one feed is also skipped.
    dec2 = LineDecoder(max_line=1024, max_buffer=4096)
    assert methods(dec2.feed(big + TRANSCRIPT)) == EXPECTED
    assert dec2.overflow == 1


def test_overlong_first_line_is_not_fatal() -> None:
    dec = LineDecoder(max_line=100, max_buffer=100)
    for _ in range(100):
        dec.feed(b"x" * 50)
        assert dec.buffered <= 100
    assert dec.overflow == 1
    assert methods(dec.feed(b"\n" + TRANSCRIPT[:70])) == ["mining.subscribe"]


def test_caps_validated() -> None:
    with pytest.raises(ValueError, match="max_line"):
        LineDecoder(max_line=100, max_buffer=10)


def test_close_emits_unterminated_last_line() -> None:
    dec = LineDecoder()
    assert (
        dec.feed(b'{"jsonrpc": "2.0", "method": "echo", "params": ["Testing!"], "id": "1"}') == []
    )
    events = dec.close()
    assert methods(events) == ["echo"]
    assert LineDecoder().close() == []
    bad = LineDecoder()
    bad.feed(b"nope")
    assert bad.close() == []  # never raises


# --- EthereumStratum/2.0.0 gzip ---------------------------------------------------------------

HELLO = (
    b'{"id":0,"method":"mining.hello","params":{"agent":"ethminer-0.17","host":"pool.example.org",'
    b'"port":"4d2","proto":"EthereumStratum/2.0.0"}}\n'
)
HELLO_GZIP = (
    b'{"id":0,"result":{"proto":"EthereumStratum/2.0.0","encoding":"gzip","resume":"1",'
    b'"timeout":"b4","maxerrors":"5","node":"Geth/v1.8.18"}}\n'
)
POOL_NEXT = [
    b'{"id":1,"result":"s-12345"}',
    b'{"method":"mining.set","params":{"epoch":"dc","target":"0112e0be","algo":"ethash","extranonce":"af4c"}}',
    b'{"method":"mining.notify","params":["bf0488aa","6526d5","645cf20198c2f3861e947d4f","0"]}',
]
CLIENT_NEXT = [
    b'{"id":1,"method":"mining.subscribe"}',
    b'{"id":2,"method":"mining.authorize","params":["0xabc.rig1","x"]}',
    b'{"id":31,"method":"mining.submit","params":["bf0488aa","68765fccd712","w-123"]}',
]


def gz(line: bytes) -> bytes:
    return gzip.compress(line + b"\n", mtime=0)


@pytest.mark.parametrize("lf", [b"", b"\n"])
@pytest.mark.parametrize("size", [1, 5, 10000])
def test_pool_side_switches_itself_after_gzip_hello_result(lf: bytes, size: int) -> None:
    stream = HELLO_GZIP + b"".join(gz(m) + lf for m in POOL_NEXT)
    dec = LineDecoder()
    events = feed_chunks(dec, stream, size)
    assert dec.encoding == "gzip"
    assert [e.dialect for e in events if isinstance(e, StratumMessage)] == [
        "ethereumstratum-2",
        "jsonrpc",
        "ethereumstratum-2",
        "ethereumstratum-2",
    ]
    first = events[0]
    assert isinstance(first, StratumMessage)
    assert first.encoding == "gzip"
    assert dec.errors == 0
    assert dec.buffered == 0


def test_client_side_switched_by_caller() -> None:
    dec = LineDecoder()
    assert methods(dec.feed(HELLO)) == ["mining.hello"]
    dec.switch_encoding("gzip")
    events = dec.feed(b"".join(gz(m) for m in CLIENT_NEXT))
    assert methods(events) == ["mining.subscribe", "mining.authorize", "mining.submit"]


def test_client_side_detects_gzip_after_its_own_hello() -> None:
    # Bytes may reach this direction before the caller saw the pool's hello result.
    dec = LineDecoder()
    stream = HELLO + b"".join(gz(m) for m in CLIENT_NEXT)
    assert methods(feed_chunks(dec, stream, 3)) == [
        "mining.hello",
        "mining.subscribe",
        "mining.authorize",
        "mining.submit",
    ]
    assert dec.encoding == "gzip"


def test_gzip_member_holding_several_lines_and_plain_line_in_gzip_mode() -> None:
    dec = LineDecoder()
    dec.switch_encoding("gzip")
    packed = gzip.compress(b"\n".join(CLIENT_NEXT) + b"\n")
    events = dec.feed(packed + b'{"id":50,"method":"mining.noop"}\n')
    assert methods(events) == [
        "mining.subscribe",
        "mining.authorize",
        "mining.submit",
        "mining.noop",
    ]


def test_gzip_bomb_is_capped_and_skipped() -> None:
    dec = LineDecoder(max_line=4096, max_buffer=65536)
    dec.feed(HELLO_GZIP)
    bomb = gzip.compress(b'{"id":1,"result":"' + b"0" * 5_000_000 + b'"}\n')
    events = feed_chunks(dec, bomb + gz(POOL_NEXT[1]), 1000)
    assert dec.overflow == 1
    assert dec.buffered <= dec.max_buffer
    assert [e.method for e in events if isinstance(e, StratumMessage)] == ["mining.set"]


def test_corrupt_gzip_member_is_counted_and_resynced() -> None:
    dec = LineDecoder()
    dec.feed(HELLO_GZIP)
    good = gz(POOL_NEXT[2])
    corrupt = bytearray(gz(POOL_NEXT[1]))
    corrupt[12:20] = b"\xff" * 8
    events = dec.feed(bytes(corrupt) + good)
    assert dec.errors >= 1
    assert [e.method for e in events if isinstance(e, StratumMessage)][-1] == "mining.notify"


def test_gzip_truncated_at_every_index() -> None:
    stream = HELLO_GZIP + b"".join(gz(m) for m in POOL_NEXT)
    for cut in range(0, len(stream) + 1, 3):
        dec = LineDecoder()
        first = dec.feed(stream[:cut])
        rest = dec.feed(stream[cut:])
        assert len(first) + len(rest) == 4, cut


def test_switch_encoding_rejects_unknown() -> None:
    with pytest.raises(ValueError, match="encoding"):
        LineDecoder().switch_encoding("brotli")


def test_raw_deflate_garbage_in_gzip_mode_before_proof_fails() -> None:
    dec = LineDecoder()
    dec.switch_encoding("gzip")
    with pytest.raises(DecodeError):
        dec.feed(zlib.compress(b"hello") + b"\n")


def test_memoryview_and_bytearray_input() -> None:
    dec = LineDecoder(midstream=True)
    stream = b"tail of an earlier line}\n" + TRANSCRIPT
    events: list[Event] = []
    view = memoryview(stream)
    for i in range(0, len(stream), 9):
        events += dec.feed(view[i : i + 9])
    assert methods(events) == EXPECTED
    assert methods(LineDecoder().feed(bytearray(TRANSCRIPT))) == EXPECTED
