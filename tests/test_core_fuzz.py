"""A small run of the core's fuzz campaign (bench/fuzz_core.py runs the long one), and
hypothesis through the bindings: no input makes the core panic or raise."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from bench import fuzz_core
from netdetect import _core


def test_mutated_frames_and_files_never_panic() -> None:
    rng = random.Random(7)
    n, panics, _slowest, last = fuzz_core.fuzz_frames(30_000, rng)
    assert n == 30_000
    assert panics == 0, last
    files, _errors, file_panics = fuzz_core.fuzz_files(200, rng)
    assert files == 200
    assert file_panics == 0


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0, 1, 9, 101, 108, 113, 228, 229, 276]),
                          st.binary(max_size=300)), max_size=40))
def test_arbitrary_frames_of_every_link_type(frames: list[tuple[int, bytes]]) -> None:
    core = _core.Core()
    core.feed([(1.0 + i, lt, data) for i, (lt, data) in enumerate(frames)])
    core.finish()
    c = core.counters()
    assert c["core_panics"] == 0
    assert c["packets"] == len(frames)
