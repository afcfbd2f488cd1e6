"""Miner traits from names, command lines and executable bytes; host facts."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netdetect.agent import traits
from netdetect.agent.report import build_report
from netdetect.agent.schema import FlowSpec, HostQuery

from .helpers_procs import child, fake_miner_binary, listener

WALLET = ("4AdUndXHHZ6cfufTMvppY6JwXNouMBzSkbLYfpAV5Usx3skxNgYeYTRj5UzqtReoS44qo9mtmXCqY"
          "45DJ852K5Jv2684Rge")


def test_wallet_fixture_is_monero_shaped() -> None:
    assert len(WALLET) == 95
    assert traits.MONERO_WALLET_RE.fullmatch(WALLET)


@pytest.mark.parametrize(
    ("cmdline", "expected"),
    [
        (["./xmrig", "-o", "stratum+tcp://pool.supportxmr.com:3333", "-u", WALLET, "-k",
          "--donate-level=1", "--cpu-priority", "5", "-a", "rx/0"],
         {"cmdline:stratum-url", "cmdline:pool-url", "cmdline:wallet", "cmdline:donate-level",
          "cmdline:cpu-priority", "cmdline:algo"}),
        (["/tmp/.x/sys", "-o", "pool.minexmr.com:443", "--coin", "monero", "--randomx-1gb-pages"],
         {"cmdline:pool-url", "cmdline:coin", "cmdline:randomx"}),
        (["cpuminer", "--algo=yescrypt", "--url=stratum+tcp://1.2.3.4:6233", "-u", "x.w1"],
         {"cmdline:algo", "cmdline:stratum-url", "cmdline:pool-url"}),
        (["t-rex", "-a", "kawpow", "-o", "stratum2+tcp://rvn.2miners.com:6060", "--rig-id", "r"],
         {"cmdline:algo", "cmdline:stratum-url", "cmdline:pool-url", "cmdline:miner-option"}),
        (["./m", "-opool.example.org:5555"], {"cmdline:pool-url"}),
        (["ethminer", "-P", "stratum1+tcp://0x" + "ab" * 20 + "@eth.pool.org:4444"],
         {"cmdline:stratum-url"}),
        # argv rewritten into one string (setproctitle) is still read.
        (["xmrig -o pool.x.org:3333 --donate-level 0"],
         {"cmdline:pool-url", "cmdline:donate-level"}),
        # Ordinary tools with the same short options: nothing.
        (["ssh", "-o", "StrictHostKeyChecking=no", "host"], set()),
        (["tar", "-a", "-cf", "x.tar.gz", "dir"], set()),
        (["curl", "-o", "/tmp/file", "https://example.org/x"], set()),
        (["python3", "-u", "server.py"], set()),
        (["gcc", "-o", "main.o", "-c", "main.c"], set()),
        ([], set()),
    ],
)
def test_cmdline_traits(cmdline: list[str], expected: set[str]) -> None:
    assert set(traits.cmdline_traits(cmdline)) == expected


@pytest.mark.parametrize(
    ("name", "exe", "cmdline", "has_exe", "expected"),
    [
        ("xmrig", "/opt/xmrig", ["/opt/xmrig"], True, ["name:xmrig"]),
        ("xmrig-6.21.0", None, [], True, ["name:xmrig"]),
        ("sh", "/tmp/kdevtmpfsi", ["/tmp/kdevtmpfsi"], True, ["name:kdevtmpfsi"]),
        ("kinsing", "/etc/kinsing", [], True, ["name:kinsing"]),
        ("SRBMiner-MULTI", "/opt/SRBMiner-MULTI", [], True, ["name:srbminer-multi"]),
        ("lolMiner", "/x/lolMiner", [], True, ["name:lolminer"]),
        ("kworker/0:1", "/tmp/.k/kw", ["[kworker/0:1]"], True, ["name:kthread-disguise"]),
        ("kworker/0:1", None, [], False, []),  # the real kernel thread: no executable
        ("bash", "/usr/bin/bash", ["bash"], True, []),
        ("vim", "/usr/bin/vim", ["vim", "xmrig-notes"], True, []),
    ],
)
def test_name_traits(name: str, exe: str | None, cmdline: list[str], has_exe: bool,
                     expected: list[str]) -> None:
    assert traits.name_traits(name, exe, cmdline, has_exe=has_exe) == expected


def test_scan_exe_finds_markers_across_chunk_boundaries(tmp_path: Path) -> None:
    path = tmp_path / "bin"
    body = bytearray(os.urandom(3 * 1024 * 1024))
    # One marker straddles the 1 MiB read boundary, another lies deep in the file.
    body[1024 * 1024 - 5 : 1024 * 1024 - 5 + 14] = b"stratum+tcp://"
    body[2_500_000 : 2_500_000 + 12] = b"DONATE-LEVEL"
    path.write_bytes(bytes(body))
    scan = traits.scan_exe(str(path), want_hash=True)
    assert scan.sha256 == hashlib.sha256(body).hexdigest()
    assert "exe-strings:stratum+tcp" in scan.markers
    assert "exe-strings:donate-level" in scan.markers
    assert scan.error is None
    # Same file identity: served from the cache, not re-read.
    assert traits.scan_exe(str(path), want_hash=False) is scan


def test_scan_exe_caps(tmp_path: Path) -> None:
    path = tmp_path / "big"
    path.write_bytes(b"\0" * 4096 + b"randomx")
    capped = traits.scan_exe(str(path), want_hash=True, hash_cap=1024, strings_cap=1024)
    assert capped.sha256 is None
    assert capped.error is not None
    assert "hash cap" in capped.error
    assert capped.markers == ()  # the marker lies past the strings cap
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert traits.scan_exe(str(fifo), want_hash=True).error == "not a regular file"
    with pytest.raises(FileNotFoundError):
        traits.scan_exe(str(tmp_path / "missing"), want_hash=True)


def test_host_facts_match_the_kernel() -> None:
    errors: list[str] = []
    facts = traits.host_facts(errors=errors)
    assert facts.cpu_count == os.cpu_count()
    assert facts.nr_hugepages == int(Path("/proc/sys/vm/nr_hugepages").read_text())
    modules = Path("/proc/modules")
    if modules.exists():
        loaded = any(ln.startswith("msr ") for ln in modules.read_text().splitlines())
    else:
        loaded = Path("/sys/module/msr/initstate").exists()
    assert facts.msr_module_loaded is loaded
    assert facts.load1 == pytest.approx(os.getloadavg()[0], abs=1.0)
    assert errors == []


def test_fake_miner_process_gets_its_traits() -> None:
    with fake_miner_binary() as exe, listener() as port, child(
            port=port, exe=str(exe), busy=True,
            extra_args=("-o", "stratum+tcp://pool.example.com:3333", "-u", WALLET,
                        "--donate-level", "1")) as kid:
        now = time.time()
        q = HostQuery(v=1, host_id="h", nonce="n", issued_at=now, expires_at=now + 30,
                      flow=FlowSpec("tcp", "127.0.0.1", port), cpu_window=0.5, top_n=10)
        report = build_report(q, host_id="h")
    p = report.process
    assert p is not None
    assert p.pid == kid.pid
    assert p.exe == str(exe)
    assert p.exe_suspicious_dir
    for trait in ("name:xmrig", "cmdline:stratum-url", "cmdline:wallet", "cmdline:donate-level",
                  "exe-strings:stratum+tcp", "exe-strings:donate-level"):
        assert trait in p.traits, (trait, p.traits)
    top = {t.pid: t for t in report.top}
    assert "name:xmrig" in top[kid.pid].traits


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=120), max_size=12))
def test_cmdline_traits_total(cmdline: list[str]) -> None:
    out = traits.cmdline_traits(cmdline)
    assert all(t.startswith("cmdline:") for t in out)
    assert out == sorted(set(out))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=64), st.one_of(st.none(), st.text(max_size=64)),
       st.lists(st.text(max_size=64), max_size=4), st.booleans())
def test_name_traits_total(name: str, exe: str | None, cmdline: list[str], has_exe: bool) -> None:
    out = traits.name_traits(name, exe, cmdline, has_exe=has_exe)
    assert all(t.startswith("name:") for t in out)
    assert len(out) == len(set(out))
