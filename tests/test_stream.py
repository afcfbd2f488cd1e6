"""The core's TCP stream reassembly (through netdetect._core): order, retransmission, overlap,
gaps, caps, sequence wrap."""

from __future__ import annotations

import itertools
import random

from coreparse import StreamReassembler, seq_diff
from hypothesis import given, settings
from hypothesis import strategies as st

DATA = bytes(range(256)) * 8


def _segments(data: bytes, isn: int, cuts: list[int]) -> list[tuple[int, bytes]]:
    bounds = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [((isn + 1 + a) % 2**32, data[a:b]) for a, b in itertools.pairwise(bounds)]


def _collect(r: StreamReassembler, segs: list[tuple[int, bytes]]) -> bytes:
    out = b""
    for seq, chunk in segs:
        parts, _gap = r.feed(seq, chunk)
        out += b"".join(parts)
    return out


def test_in_order() -> None:
    r = StreamReassembler()
    r.start(1000)
    assert _collect(r, _segments(DATA, 1000, [10, 500, 1500])) == DATA


def test_out_of_order_and_retransmissions() -> None:
    r = StreamReassembler()
    r.start(5)
    segs = _segments(DATA, 5, [100, 200, 300, 900])
    shuffled = [segs[2], segs[0], segs[0], segs[3], segs[1], segs[2], segs[4]]
    assert _collect(r, shuffled) == DATA
    assert r.retransmitted >= 2


def test_overlapping_segment_first_copy_wins() -> None:
    r = StreamReassembler()
    r.start(0)
    out = _collect(r, [(1, b"hello "), (4, b"XXXworld")])
    assert out == b"hello world"


def test_sequence_wraparound() -> None:
    isn = 2**32 - 10
    r = StreamReassembler()
    r.start(isn)
    assert _collect(r, _segments(DATA[:100], isn, [3, 9, 20, 60])) == DATA[:100]
    assert seq_diff(5, 2**32 - 5) == 10
    assert seq_diff(2**32 - 5, 5) == -10


def test_midstream_start_without_syn() -> None:
    r = StreamReassembler()
    assert _collect(r, [(777, b"abc"), (780, b"def")]) == b"abcdef"


def test_cap_on_delivered_bytes() -> None:
    r = StreamReassembler(max_bytes=100)
    r.start(0)
    out = _collect(r, _segments(DATA, 0, [50, 80, 120]))
    assert out == DATA[:100]
    assert r.done
    assert r.overflow > 0
    assert r.feed(1 + 200, b"more") == ([], False)


def test_gap_is_reported_and_skipped_when_buffer_full() -> None:
    r = StreamReassembler(max_pending=64)
    r.start(0)
    # Byte 1..10 never arrives (lost on the mirror); later data fills the pending buffer.
    out = b""
    gaps = 0
    for off in range(10, 400, 40):
        parts, gap = r.feed(1 + off, DATA[off : off + 40])
        out += b"".join(parts)
        gaps += gap
    assert gaps == 1
    assert r.gaps == 1
    assert out == DATA[10:410]


@settings(max_examples=200, deadline=None)
@given(
    cuts=st.lists(st.integers(0, len(DATA)), max_size=12),
    seed=st.integers(0, 2**16),
    isn=st.integers(0, 2**32 - 1),
)
def test_any_order_with_duplicates_reassembles(cuts: list[int], seed: int, isn: int) -> None:
    segs = _segments(DATA, isn, cuts)
    rng = random.Random(seed)
    segs = segs + rng.sample(segs, k=min(len(segs), 3))
    rng.shuffle(segs)
    r = StreamReassembler(max_pending=len(DATA) * 2)
    r.start(isn)
    assert _collect(r, segs) == DATA
