"""PersistenceCache: one walk serves many queries, and changed files are seen after the TTL."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netdetect.agent.persistence import (
    Limits,
    Needles,
    PersistenceCache,
    _Snapshot,
    collect_persistence,
)

from .helpers_persistence import MINER, MINER_CMD, POOL, plant, write

WALLET = "4" + "B" * 94


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def needle_sets() -> list[Needles]:
    return [
        Needles.build(exe=MINER, cmdline=MINER_CMD.split(), pool_host=POOL),
        Needles.build(pool_host=POOL.upper(), wallet=WALLET),
        Needles.build(exe="/usr/sbin/sshd", cmdline=["/usr/sbin/sshd", "-D"]),
        Needles.build(exe="/bin/bash"),
        Needles(),
        Needles(words=["p\u00f6\u00f6l.example"]),
    ]


def test_cached_results_equal_a_fresh_walk(tmp_path: Path) -> None:
    plant(tmp_path)
    cache = PersistenceCache(clock=FakeClock())
    for needles in needle_sets():
        assert cache.collect(str(tmp_path), needles) == collect_persistence(str(tmp_path),
                                                                            needles)
    assert cache.walks == 1


def test_changed_cron_file_is_seen_after_the_ttl(tmp_path: Path) -> None:
    clock = FakeClock()
    cache = PersistenceCache(ttl=5.0, clock=clock)
    write(tmp_path, "/etc/cron.d/backup", "0 3 * * * root /usr/local/bin/backup\n")
    write(tmp_path, "/etc/crontab", "17 * * * * root cd / && run-parts /etc/cron.hourly\n")
    needles = Needles.build(exe=MINER, cmdline=MINER_CMD.split(), pool_host=POOL)
    assert cache.collect(str(tmp_path), needles) == ([], [])
    write(tmp_path, "/etc/cron.d/backup",
          "0 3 * * * root /usr/local/bin/backup\n" f"*/5 * * * * root {MINER_CMD}\n")
    clock.now += 4.9
    assert cache.collect(str(tmp_path), needles) == ([], []), "within the TTL: the last walk"
    clock.now += 0.2
    entries, errors = cache.collect(str(tmp_path), needles)
    assert errors == []
    assert [(e.path, e.line, e.references_process) for e in entries] == [
        ("/etc/cron.d/backup", 2, True)]
    assert cache.walks == 2
    # The crontab was written long enough ago to be trusted; the edited file was re-read.
    os.utime(tmp_path / "etc/crontab", (time.time() - 60, time.time() - 60))
    clock.now += 5.1
    cache.collect(str(tmp_path), needles)
    clock.now += 5.1
    cache.collect(str(tmp_path), needles)
    assert cache.reused(str(tmp_path)) >= 1


def test_same_size_rewrite_with_old_mtime_is_seen(tmp_path: Path) -> None:
    clock = FakeClock()
    cache = PersistenceCache(ttl=1.0, clock=clock)
    path = write(tmp_path, "/etc/cron.d/job", "* * * * * root /opt/app/aaaaa\n")
    old = time.time() - 3600
    os.utime(path, (old, old))
    needles = Needles.build(exe="/opt/app/bbbbb")
    assert cache.collect(str(tmp_path), needles)[0] == []
    path.write_text("* * * * * root /opt/app/bbbbb\n")  # same size, same inode
    os.utime(path, (old, old))
    clock.now += 1.5
    entries, _ = cache.collect(str(tmp_path), needles)
    assert [(e.path, e.references_process) for e in entries] == [("/etc/cron.d/job", True)]


def test_repeated_queries_on_the_live_root_cost_only_the_match() -> None:
    cache = PersistenceCache(ttl=60.0)
    needles = Needles.build(exe=MINER, cmdline=MINER_CMD.split(), pool_host=POOL)
    first = cache.collect("/", needles)
    start = time.perf_counter()
    for _ in range(200):
        assert cache.collect("/", needles) == first
    took = time.perf_counter() - start
    assert cache.walks == 1
    assert took < 1.0, f"200 cached queries took {took:.3f} s"


def test_limits_and_errors_survive_the_cache(tmp_path: Path) -> None:
    big = f"*/2 * * * * root {MINER}\n" + ("# " + "x" * 98 + "\n") * 20_000
    write(tmp_path, "/etc/crontab", big)
    old = time.time() - 60
    os.utime(tmp_path / "etc/crontab", (old, old))
    clock = FakeClock()
    cache = PersistenceCache(ttl=1.0, clock=clock)
    limits = Limits(file_bytes=64 * 1024)
    fresh = collect_persistence(str(tmp_path), Needles.build(exe=MINER), limits=limits)
    for _ in range(3):
        got = cache.collect(str(tmp_path), Needles.build(exe=MINER), limits=limits)
        assert got == fresh
        assert any("examined the first" in e for e in got[1])
        clock.now += 2.0
    assert cache.reused(str(tmp_path), limits=limits) == 1


# --- the needle prefilter is exact -----------------------------------------------------------

# Letters whose Unicode case mapping is irregular (dotted/dotless i, long s, Kelvin, sharp s).
_ALPHABET = "abcXYZ/._- 0:\tk" + "\u0130\u0131\u017f\u212a\u00df"
_text = st.text(alphabet=st.sampled_from(list(_ALPHABET)), max_size=40)


@settings(max_examples=300, deadline=None)
@given(texts=st.lists(_text, max_size=12), paths=st.lists(_text, max_size=3),
       names=st.lists(_text, max_size=3), words=st.lists(_text, max_size=3))
def test_prefiltered_match_equals_the_regex_on_every_line(
        texts: list[str], paths: list[str], names: list[str], words: list[str]) -> None:
    needles = Needles(paths=paths, names=names, words=words)
    snap = _Snapshot([], texts, list(range(len(texts))), {}, [])
    expected = {i for i, t in enumerate(texts) if needles.references(t)}
    assert snap.references(needles) == expected


# --- a container's own tree ----------------------------------------------------------------


@pytest.fixture
def container_with_crontab() -> Iterator[int]:
    """A process in its own mount namespace, with a private /etc holding a miner's crontab."""
    script = (f"mount -t tmpfs none /etc && printf '* * * * * root {MINER}\\n' > /etc/crontab"
              " && echo ready && exec sleep 60")
    proc = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready", "unshare -m failed (needs root)"
        yield proc.pid
    finally:
        proc.kill()
        proc.wait(5)


def test_container_root_is_read_through_its_mount_namespace(container_with_crontab: int) -> None:
    pid = container_with_crontab
    croot = f"/proc/{pid}/root"
    needles = Needles.build(exe=MINER)
    entries, _ = collect_persistence(croot, needles, prefix=croot)
    assert [(e.path, e.line) for e in entries] == [(f"{croot}/etc/crontab", 1)]
    host_entries, _ = collect_persistence("/", needles)
    assert not any(e.path == "/etc/crontab" for e in host_entries)
    cache = PersistenceCache()
    ns = os.readlink(f"/proc/{pid}/ns/mnt")  # noqa: PTH115
    assert cache.collect(croot, needles, prefix=croot, identity=ns)[0] == entries
