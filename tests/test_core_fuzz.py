"""A small run of the core's fuzz campaign (bench/fuzz_core.py runs the long one), and
hypothesis through the bindings: no input makes the core panic or raise."""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

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


SEED_CAPTURES = sorted((Path(__file__).resolve().parents[1] / "pcaps").glob("*.pcap*"))


@settings(max_examples=300, deadline=None)
@given(
    seed=st.sampled_from(SEED_CAPTURES),
    edits=st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), max_size=6),
    cut=st.integers(0, 1 << 17),
)
def test_mutated_captures_read_up_to_their_damage(
    seed: Path, edits: list[tuple[int, int]], cut: int
) -> None:
    """The capture reader through its probe: frames up to the damage, then one named error;
    never a panic, never more frames than the bytes can hold."""
    data = bytearray(seed.read_bytes())
    for at, value in edits:
        if data:
            data[at % len(data)] = value
    data = data[:cut]
    with tempfile.NamedTemporaryFile(suffix=".cap") as f:
        f.write(data)
        f.flush()
        try:
            frames, _snapped, damage = _core.read_capture(f.name)
        except OSError as exc:
            reason = exc.filename  # OSError(path, offset, reason): Python's third slot
        else:
            reason = None
        if reason is not None:
            assert reason  # the file was refused at its start, and says why
            return
        assert len(frames) <= len(data) // 16
        if damage is not None:
            path, offset, reason = damage
            assert path == f.name
            assert 0 <= offset <= len(data)
            assert reason
        # The engine reads the same file to the same end.
        core = _core.Core()
        src = _core.Capture(f.name)
        n = 0
        while k := core.run(src, 4096)[0]:
            n += k
        assert n == len(frames)
        assert src.error() == damage
        assert core.counters()["core_panics"] == 0
