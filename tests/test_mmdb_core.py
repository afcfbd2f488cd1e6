"""The pool address DB read by the compiled core (`_core.MmdbReader`, src/mmdb.rs) through
`IpSetDb`, against the reader it replaced: the Python `maxminddb` package (its C extension
reads address text with the C library's numeric getaddrinfo) behind the same record logic.
Hypothesis builds the DBs with the project's own compiler (`compile_ip_sets`, mmdb_writer)
and spells addresses every way a wire might; random bytes and damaged files must give a
SignatureError, never another exception."""

from __future__ import annotations

import ipaddress
import os
import random
from pathlib import Path
from typing import Any

import maxminddb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netdetect import _core
from netdetect.errors import SignatureError
from netdetect.intel.mmdb import (
    DB_TYPE,
    IpEntry,
    IpMatch,
    IpSetDb,
    Network,
    _get,
    _normalise,
    compile_ip_sets,
)

FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def old_lookup(reader: Any, ip: str) -> IpMatch | None:
    """`IpSetDb.lookup` as it read through the Python maxminddb package (the oracle)."""
    rec, prefix_len = _get(reader, ip)
    if not isinstance(rec, dict) or rec.get("category") == "allow":
        return None
    ports = rec.get("ports")
    network = rec.get("network")
    if not isinstance(network, str):
        network = str(ipaddress.ip_network((_normalise(ip), prefix_len), strict=False))
    return IpMatch(
        network=network,
        category=str(rec.get("category", "pool")),
        source=str(rec.get("source", "")),
        note=str(rec.get("note", "")),
        ports=frozenset(p for p in ports if isinstance(p, int))
        if isinstance(ports, list)
        else frozenset(),
    )


# --- strategies ----------------------------------------------------------------------------

V4_ROOT = int(ipaddress.IPv4Address("198.51.100.0"))
V6_ROOT = int(ipaddress.IPv6Address("2001:db8::"))


@st.composite
def networks(draw: st.DrawFn) -> Network:
    """Networks around two roots, so that they nest and split one another."""
    if draw(st.booleans()):
        length = draw(st.integers(8, 32))
        addr = V4_ROOT ^ draw(st.sampled_from([0, 1 << 23, 1 << 15, 1 << 7, 0xFFFFFF]))
        return ipaddress.IPv4Network((addr >> (32 - length) << (32 - length), length))
    length = draw(st.integers(16, 128))
    addr = V6_ROOT ^ draw(st.sampled_from([0, 1 << 95, 1 << 64, 1 << 20, (1 << 96) - 1]))
    return ipaddress.IPv6Network((addr >> (128 - length) << (128 - length), length))


ENTRIES = st.lists(
    st.builds(
        IpEntry,
        network=networks(),
        source=st.sampled_from(["pool_ips.txt", "imported/a.ips.txt", "allow_ips.txt"]),
        category=st.sampled_from(["pool", "proxy", "browser-miner", "allow"]),
        note=st.sampled_from(["", "a note", "ünïcode"]),
        ports=st.frozensets(st.integers(1, 65535), max_size=3),
    ),
    min_size=1,
    max_size=10,
)


def aton_forms(addr: ipaddress.IPv4Address, draw: st.DrawFn) -> str:
    """The address as inet_aton reads it: 1 to 4 parts, decimal, octal or hex."""
    raw = addr.packed
    parts = draw(st.integers(1, 4))
    values = [*raw[: parts - 1], int.from_bytes(raw[parts - 1 :], "big")]
    out = []
    for v in values:
        style = draw(st.sampled_from(["dec", "oct", "hex", "HEX"]))
        zeros = "0" * draw(st.integers(0, 2))
        out.append(
            str(v) if style == "dec"
            else f"0{zeros}{v:o}" if style == "oct"
            else f"0x{zeros}{v:x}" if style == "hex"
            else f"0X{zeros}{v:X}"
        )
    return ".".join(out)


@st.composite
def spellings(draw: st.DrawFn, nets: list[Network]) -> str:
    """An address in or near a listed network, spelled one of the ways a peer might."""
    net = draw(st.sampled_from(nets))
    offset = draw(st.integers(-2, net.num_addresses + 1))
    value = (int(net.network_address) + offset) % (1 << net.max_prefixlen)
    addr: ipaddress.IPv4Address | ipaddress.IPv6Address
    if net.version == 4:
        addr = ipaddress.IPv4Address(value)
        forms = [str(addr), f"::ffff:{addr}", f"::FFFF:{value >> 16:X}:{value & 0xFFFF:X}",
                 f"::ffff:{addr}%eth0", f"::ffff:{addr}%1", f"::{addr}",
                 aton_forms(addr, draw)]
        mapped = ipaddress.IPv6Address(f"::ffff:{addr}")
        forms.append(mapped.exploded)
    else:
        addr = ipaddress.IPv6Address(value)
        forms = [str(addr), addr.exploded, addr.exploded.upper(), f"{addr}%3", f"{addr}%0",
                 f"{addr}%", f"{addr}%4294967296", f"[{addr}]"]
    text = draw(st.sampled_from(forms))
    if draw(st.integers(0, 7)) == 0:
        # One character changed, added or dropped.
        pos = draw(st.integers(0, len(text)))
        char = draw(st.sampled_from(list("0123456789abcdefxX.:% \x00")))
        text = draw(st.sampled_from([text[:pos] + char + text[pos + 1:],
                                     text[:pos] + char + text[pos:],
                                     text[:pos] + text[pos + 1:]]))
    return text


# Text from the address alphabet: it never spells an interface name (lo, eth0 ...), the one
# thing the two readers resolve differently (the core does no I/O; see src/mmdb.rs).
ADDRESS_TEXT = st.text(alphabet="0123456789abcdefABCDEFxX.:%", max_size=45)


# --- against the Python reader -------------------------------------------------------------


@FUZZ
@given(entries=ENTRIES, data=st.data())
def test_lookups_match_the_python_reader(tmp_path: Path, entries: list[IpEntry],
                                         data: st.DataObject) -> None:
    path = tmp_path / "x.mmdb"
    path.unlink(missing_ok=True)
    compile_ip_sets(entries, path, digest="d")
    db = IpSetDb.open(path)
    old = maxminddb.open_database(str(path), maxminddb.MODE_AUTO)
    nets = [e.network for e in entries]
    texts = data.draw(st.lists(st.one_of(spellings(nets), ADDRESS_TEXT, st.text(max_size=20)),
                               min_size=20, max_size=40))
    try:
        for text in texts:
            assert db.lookup(text) == old_lookup(old, text), repr(text)
    finally:
        db.close()
        old.close()


def test_the_python_reader_agrees_on_the_forms_that_matter(tmp_path: Path) -> None:
    """The spellings the differential test relies on, written out: each finds the pool."""
    path = tmp_path / "x.mmdb"
    net = ipaddress.IPv4Network("192.0.2.0/24")
    compile_ip_sets([IpEntry(net, "pool_ips.txt", "pool", "", frozenset({3333}))], path)
    db = IpSetDb.open(path)
    old = maxminddb.open_database(str(path), maxminddb.MODE_AUTO)
    for text in ("192.0.2.7", "::ffff:192.0.2.7", "0xc0.0.2.7", "0300.0.2.7", "192.0.519",
                 "3221225991", "::ffff:192.0.2.7%eth0"):
        match = db.lookup(text)
        assert match is not None, text
        assert match == old_lookup(old, text)
        assert (match.network, match.ports) == ("192.0.2.0/24", frozenset({3333}))
    for text in ("192.0.2.7 ", "192.0.2.7%1", "192.0.2.256", "not an ip", "", "192.0.2.7\x00"):
        assert db.lookup(text) is None, text
        assert old_lookup(old, text) is None, text
    db.close()
    old.close()


# --- hostile files -------------------------------------------------------------------------


def _compiled(tmp_path: Path) -> bytes:
    path = tmp_path / "good.mmdb"
    compile_ip_sets(
        [
            IpEntry(ipaddress.ip_network("192.0.2.0/24"), "pool_ips.txt", "pool", "n",
                    frozenset({3333})),
            IpEntry(ipaddress.ip_network("192.0.2.128/25"), "a.txt", "proxy", "", frozenset()),
            IpEntry(ipaddress.ip_network("2001:db8::/32"), "a.txt", "pool", "", frozenset()),
        ],
        path,
        digest="abc",
    )
    return path.read_bytes()


def _open_or_refuse(path: Path) -> IpSetDb | None:
    """Open a DB that may be damaged: a SignatureError naming the file, or a DB."""
    try:
        return IpSetDb.open(path)
    except SignatureError as exc:
        message = str(exc)
    assert message.startswith(f"{path}:0: not a "), message
    return None


def test_a_truncated_db_is_refused_at_every_length(tmp_path: Path) -> None:
    good = _compiled(tmp_path)
    path = tmp_path / "cut.mmdb"
    refused = 0
    for cut in range(len(good)):
        path.write_bytes(good[:cut])
        db = _open_or_refuse(path)
        assert IpSetDb.digest_of(path) in (None, "abc")
        if db is None:
            refused += 1
            continue
        # A cut inside the metadata can leave a readable DB; then it answers as the whole.
        match = db.lookup("192.0.2.7")
        assert match is not None
        assert match.network == "192.0.2.0/24"
        db.close()
    assert refused >= len(good) - 64


def test_hostile_bytes_as_a_db(tmp_path: Path) -> None:
    @FUZZ
    @given(
        raw=st.binary(max_size=600),
        edits=st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), max_size=8),
        use_raw=st.booleans(),
        texts=st.lists(st.one_of(ADDRESS_TEXT, st.text(max_size=16)), max_size=8),
    )
    def check(raw: bytes, edits: list[tuple[int, int]], use_raw: bool,
              texts: list[str]) -> None:
        data = bytearray(raw if use_raw else good)
        for at, value in edits:
            if data:
                data[at % len(data)] = value
        path.write_bytes(data)
        db = _open_or_refuse(path)
        reason = ""
        try:
            _core.MmdbReader.from_bytes(bytes(data))
        except ValueError as exc:
            reason = str(exc)
        # What the core refuses, IpSetDb refuses (it also refuses a DB of another type).
        assert not reason or db is None
        if db is None:
            return
        for text in [*texts, "192.0.2.7", "192.0.2.200", "2001:db8::1", "::ffff:192.0.2.9"]:
            answer: IpMatch | str | None
            try:
                answer = db.lookup(text)
            except SignatureError as exc:
                answer = str(exc)
            assert answer is None or isinstance(answer, IpMatch) or answer.startswith(
                f"{path}:0: unreadable record"), answer
        db.close()

    good = _compiled(tmp_path)
    path = tmp_path / "hostile.mmdb"
    check()


def test_random_files_are_refused(tmp_path: Path) -> None:
    rng = random.Random(7)
    path = tmp_path / "random.mmdb"
    for size in (0, 1, 16, 100, 4096):
        path.write_bytes(rng.randbytes(size))
        with pytest.raises(SignatureError, match=r"random\.mmdb:0: not a readable MaxMind DB: "):
            IpSetDb.open(path)
        assert IpSetDb.digest_of(path) is None


# --- the binding itself --------------------------------------------------------------------


def test_reader_binding(tmp_path: Path) -> None:
    good = _compiled(tmp_path)
    path = tmp_path / "good.mmdb"
    reader = _core.MmdbReader.open(str(path))
    assert reader.database_type == DB_TYPE
    assert reader.description["netdetect-sources-sha256"] == "abc"
    assert reader.ip_version == 6
    assert not reader.closed
    assert reader.lookup("192.0.2.7") == ("pool", "pool_ips.txt", "n", "192.0.2.0/24", [3333], 25)
    assert reader.lookup("192.0.2.200") == ("proxy", "a.txt", "", "192.0.2.128/25", [], 25)
    assert reader.lookup("2001:db8::5") == ("pool", "a.txt", "", "2001:db8::/32", [], 32)
    for not_text in (None, 3, b"192.0.2.7", "\udc80"):
        assert reader.lookup(not_text) is None  # type: ignore[arg-type]
    same = _core.MmdbReader.from_bytes(good)
    assert same.lookup("192.0.2.7") == reader.lookup("192.0.2.7")
    reader.close()
    assert reader.closed
    assert reader.lookup("192.0.2.7") is None
    with pytest.raises(ValueError, match="closed"):
        _ = reader.database_type


def test_open_errors_read_like_python_ones(tmp_path: Path) -> None:
    missing = tmp_path / "missing.mmdb"
    with pytest.raises(FileNotFoundError) as caught:
        _core.MmdbReader.open(str(missing))
    assert str(caught.value) == str(FileNotFoundError(2, os.strerror(2), str(missing)))
    with pytest.raises(IsADirectoryError):
        _core.MmdbReader.open(str(tmp_path))
    with pytest.raises(SignatureError, match=r"missing\.mmdb:0: not a readable MaxMind DB: "
                                             r"\[Errno 2\] No such file or directory"):
        IpSetDb.open(missing)
    with pytest.raises(ValueError, match="invalid database"):
        _core.MmdbReader.from_bytes(b"not a maxmind db")
