"""The core's capture reader and path expansion (through netdetect._core), and read progress."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import os
import struct
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from coreparse import MAX_SNAPLEN, expand_paths, is_capture, read_frames
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import PcapNgWriter, RawPcapReader, wrpcap

from netdetect import _core
from netdetect.errors import CaptureError, DecodeError
from netdetect.service import capture_size

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"

Frame = tuple[float, int, bytes]


# --- writers: build capture files byte by byte, so every field is under the test's control ---


@dataclass
class Built:
    """A capture image plus what a correct reader must produce from it."""

    data: bytes
    frames: list[Frame]
    # (start, end, frames yielded once this record is complete) per record/block, in order;
    # the file header counts as a record that yields nothing.
    records: list[tuple[int, int, int]]


def pcap_file(
    packets: list[tuple[int, int, bytes]],
    *,
    order: str = "<",
    nano: bool = False,
    linktype: int = 1,
    modified: bool = False,
    header_bits: int = 0,
) -> Built:
    """pcap image of (sec, fraction, frame) records."""
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    if modified:
        magic = 0xA1B2CD34
    units = 1_000_000_000 if nano else 1_000_000
    data = bytearray(struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 65535,
                                 linktype | header_bits))  # fmt: skip
    records = [(0, 24, 0)]
    frames: list[Frame] = []
    for sec, frac, frame in packets:
        start = len(data)
        data += struct.pack(order + "IIII", sec, frac, len(frame), len(frame) + 4)
        if modified:
            data += struct.pack(order + "IHBx", 3, 0x0800, 0)
        data += frame
        frames.append((sec + frac / units, linktype, frame))
        records.append((start, len(data), len(frames)))
    return Built(bytes(data), frames, records)


def pad4(b: bytes) -> bytes:
    return b + b"\0" * (-len(b) % 4)


def option(code: int, value: bytes, order: str) -> bytes:
    return struct.pack(order + "HH", code, len(value)) + pad4(value)


def block(btype: int, body: bytes, order: str) -> bytes:
    body = pad4(body)
    n = 12 + len(body)
    return struct.pack(order + "II", btype, n) + body + struct.pack(order + "I", n)


def shb(order: str, options: bytes = b"") -> bytes:
    body = struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1) + options
    return block(0x0A0D0D0A, body, order)


def idb(
    linktype: int,
    order: str,
    *,
    snaplen: int = 0,
    tsresol: int | None = None,
    tsoffset: int | None = None,
    name: bytes | None = None,
) -> bytes:
    opts = b""
    if name is not None:
        opts += option(2, name, order)
    if tsresol is not None:
        opts += option(9, bytes([tsresol]), order)
    if tsoffset is not None:
        opts += option(14, struct.pack(order + "q", tsoffset), order)
    if opts:
        opts += option(0, b"", order)
    return block(1, struct.pack(order + "HHI", linktype, 0, snaplen) + opts, order)


def epb(ifid: int, ticks: int, frame: bytes, order: str, comment: bytes | None = None) -> bytes:
    body = struct.pack(order + "IIIII", ifid, ticks >> 32, ticks & 0xFFFFFFFF, len(frame),
                       len(frame)) + pad4(frame)  # fmt: skip
    if comment is not None:
        body += option(1, comment, order) + option(0, b"", order)
    return block(6, body, order)


def obsolete_pb(ifid: int, ticks: int, frame: bytes, order: str) -> bytes:
    body = struct.pack(order + "HHIIII", ifid, 0, ticks >> 32, ticks & 0xFFFFFFFF, len(frame),
                       len(frame)) + pad4(frame)  # fmt: skip
    return block(2, body, order)


def spb(frame: bytes, order: str, wirelen: int | None = None) -> bytes:
    wl = len(frame) if wirelen is None else wirelen
    return block(3, struct.pack(order + "I", wl) + pad4(frame), order)


class NgBuilder:
    """Accumulates pcapng blocks and the frames a reader must produce from them."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.frames: list[Frame] = []
        self.records: list[tuple[int, int, int]] = []

    def add(self, blk: bytes, frame: Frame | None = None) -> None:
        start = len(self.data)
        self.data += blk
        if frame is not None:
            self.frames.append(frame)
        self.records.append((start, len(self.data), len(self.frames)))

    def built(self) -> Built:
        return Built(bytes(self.data), list(self.frames), list(self.records))


def eth_frame(i: int, size: int = 60) -> bytes:
    """A real Ethernet/IPv4/UDP frame (Ethernet-padded to at least 60 bytes) numbered i."""
    pkt = (
        Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        / IP(src="10.0.0.1", dst=f"10.0.{i // 250}.{i % 250 + 1}")
        / UDP(sport=1000 + i, dport=53)
        / (b"x" * max(0, size - 42))
    )
    raw = bytes(pkt)
    return raw + b"\0" * (60 - len(raw)) if len(raw) < 60 else raw


def sample_pcapng() -> Built:
    """Two sections (LE then BE), several interfaces each, every packet block kind, skipped
    blocks between them, and an interface declared after packets were already seen."""
    b = NgBuilder()
    o = "<"
    b.add(shb(o, option(4, b"netdetect test", o) + option(0, b"", o)))
    b.add(idb(1, o, name=b"eth0"))  # iface 0: Ethernet, microseconds
    b.add(idb(101, o, tsresol=9, snaplen=1500))  # iface 1: raw IP, nanoseconds
    b.add(idb(276, o, tsresol=0x80 | 20, tsoffset=1000))  # iface 2: SLL2, 2^-20 s, +1000 s
    f0 = eth_frame(0)
    b.add(epb(0, 1_600_000_000_123_456, f0, o), (1_600_000_000.123456, 1, f0))
    f1 = bytes(IP(src="192.0.2.1", dst="192.0.2.2") / TCP(sport=4444, dport=3333))
    b.add(epb(1, 1_600_000_001_987_654_321, f1, o, comment=b"hello"),
          (1_600_000_001_987_654_321 / 10**9, 101, f1))  # fmt: skip
    b.add(block(4, struct.pack("<HH", 1, 8) + bytes([10, 0, 0, 1]) + b"host" + b"\0" * 4, o))
    f2 = b"\x08\x00" + b"\0" * 18 + bytes(IP() / UDP())
    ticks = (1_500_000_000 << 20) + (1 << 19)  # x.5 s in 2^-20 units
    b.add(epb(2, ticks, f2, o), (1_500_000_000.5 + 1000, 276, f2))
    b.add(block(5, struct.pack("<IIII", 0, 0, 0, 0), o))  # ISB
    b.add(block(0x0000000A, struct.pack("<II", 0x544C534B, 4) + b"abcd", o))  # DSB
    b.add(block(0x40000BAD, struct.pack("<I", 32473) + b"custom", o))
    b.add(block(0x12345678, b"unknown block type", o))
    f3 = eth_frame(3)
    # SPB: no timestamp of its own, so it carries the previous packet's.
    b.add(spb(f3, o), (1_500_000_000.5 + 1000, 1, f3))
    f4 = eth_frame(4)
    b.add(obsolete_pb(0, 1_600_000_002_000_001, f4, o), (1_600_000_002.000001, 1, f4))
    b.add(idb(113, o, tsresol=3))  # iface 3, declared late: SLL, milliseconds
    f5 = b"\0\0\x00\x01\x00\x06" + b"\0" * 8 + b"\x08\x00" + bytes(IP() / UDP())
    b.add(epb(3, 1_600_000_003_250, f5, o), (1_600_000_003.25, 113, f5))
    # Second section, big-endian: interface numbering starts over.
    o = ">"
    b.add(shb(o))
    b.add(idb(0, o))
    f6 = b"\x02\0\0\0" + bytes(IP() / UDP())
    b.add(epb(0, 1_700_000_000_000_002, f6, o), (1_700_000_000.000002, 0, f6))
    b.add(idb(228, o, tsresol=0))  # whole seconds
    f7 = bytes(IP() / UDP())
    b.add(epb(1, 1_700_000_005, f7, o), (1_700_000_005.0, 228, f7))
    return b.built()


def sample_pcap(**kwargs: Any) -> Built:
    frames = [(1_600_000_000 + i, 123_456 + i, eth_frame(i, 50 + 10 * i)) for i in range(5)]
    return pcap_file(frames, **kwargs)


def write(tmp_path: Path, name: str, data: bytes) -> str:
    p = tmp_path / name
    p.write_bytes(data)
    return str(p)


def collect(path: str) -> tuple[list[Frame], CaptureError | None]:
    """Every frame read, and the CaptureError that ended reading (None at a clean end)."""
    got: list[Frame] = []
    try:
        for item in read_frames(path):
            got.append(item)  # noqa: PERF402 - keep what came before the error
    except CaptureError as exc:
        return got, exc
    return got, None


# --- pcap ---


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_pcap_byte_orders_and_resolutions(tmp_path: Path, order: str, nano: bool) -> None:
    built = sample_pcap(order=order, nano=nano, linktype=1)
    got = list(read_frames(write(tmp_path, "a.pcap", built.data)))
    assert got == built.frames
    assert got[0][0] == 1_600_000_000 + 123_456 / (10**9 if nano else 10**6)


def test_pcap_nanosecond_timestamp_keeps_precision(tmp_path: Path) -> None:
    # A float holds about 0.24 us at today's epoch, so microseconds must survive, not nanos.
    built = pcap_file([(1_700_000_000, 999_999_000, b"\x45" + b"\0" * 19)], nano=True,
                      linktype=101)  # fmt: skip
    ((ts, lt, _),) = read_frames(write(tmp_path, "n.pcap", built.data))
    assert lt == 101
    assert ts == pytest.approx(1_700_000_000.999999, abs=5e-7)
    assert ts < 1_700_000_001


def test_pcap_modified_kuznetzov_records(tmp_path: Path) -> None:
    built = sample_pcap(modified=True)
    assert list(read_frames(write(tmp_path, "m.pcap", built.data))) == built.frames


def test_pcap_fcs_bits_in_linktype_field_are_ignored(tmp_path: Path) -> None:
    built = sample_pcap(linktype=1, header_bits=0x14000000)  # "FCS present, 4 bytes"
    assert {lt for _, lt, _ in read_frames(write(tmp_path, "f.pcap", built.data))} == {1}


def test_pcap_written_by_scapy(tmp_path: Path) -> None:
    pkts = [Ether() / IP(dst="198.51.100.7") / TCP(dport=3333) / b"{}" for _ in range(3)]
    for i, p in enumerate(pkts):
        p.time = 1_650_000_000 + i / 4
    path = str(tmp_path / "s.pcap")
    wrpcap(path, pkts, nano=True)
    got = list(read_frames(path))
    assert [f for _, _, f in got] == [bytes(p) for p in pkts]
    assert [ts for ts, _, _ in got] == pytest.approx([1_650_000_000, 1_650_000_000.25,
                                                      1_650_000_000.5])  # fmt: skip


def test_pcap_unsupported_version(tmp_path: Path) -> None:
    data = bytearray(sample_pcap().data)
    data[4:6] = struct.pack("<H", 3)
    frames, err = collect(write(tmp_path, "v.pcap", bytes(data)))
    assert frames == []
    assert err is not None
    assert err.offset == 0
    assert "version 3.4" in err.reason


# --- pcapng ---


def test_pcapng_sections_interfaces_resolutions_and_block_order(tmp_path: Path) -> None:
    built = sample_pcapng()
    got = list(read_frames(write(tmp_path, "a.pcapng", built.data)))
    assert [(lt, f) for _, lt, f in got] == [(lt, f) for _, lt, f in built.frames]
    assert [ts for ts, _, _ in got] == pytest.approx([ts for ts, _, _ in built.frames], abs=1e-9)


def test_pcapng_snaplen_caps_simple_packet_block(tmp_path: Path) -> None:
    o = "<"
    frame = eth_frame(1, 200)
    data = shb(o) + idb(1, o, snaplen=100) + spb(frame[:100], o, wirelen=len(frame))
    ((_, lt, got),) = read_frames(write(tmp_path, "s.pcapng", data))
    assert lt == 1
    assert got == frame[:100]


def test_pcapng_written_by_scapy(tmp_path: Path) -> None:
    pkts = [Ether() / IP(dst="203.0.113.9") / UDP(dport=53) / bytes([i]) for i in range(4)]
    for i, p in enumerate(pkts):
        p.time = 1_650_000_000 + i
    path = str(tmp_path / "s.pcapng")
    with PcapNgWriter(path) as w:
        for p in pkts:
            w.write(p)
    got = list(read_frames(path))
    assert [(ts, lt, f) for ts, lt, f in got] == [
        (1_650_000_000.0 + i, 1, bytes(p)) for i, p in enumerate(pkts)
    ]


def test_packet_block_for_undeclared_interface(tmp_path: Path) -> None:
    o = "<"
    good = epb(0, 5, eth_frame(0), o)
    head = shb(o) + idb(1, o)
    data = head + good + epb(1, 6, eth_frame(1), o)
    frames, err = collect(write(tmp_path, "u.pcapng", data))
    assert len(frames) == 1
    assert err is not None
    assert err.offset == len(head) + len(good)
    assert "undeclared interface 1" in err.reason


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda b: b[:4] + struct.pack("<I", 30) + b[8:], "bad block length 30"),
        (lambda b: b[:4] + struct.pack("<I", 0x7FFFFFFC) + b[8:], "bad block length"),
        (lambda b: b[:4] + struct.pack("<I", 8) + b[8:], "bad block length 8"),
        (lambda b: b[:-4] + struct.pack("<I", len(b) + 4), "does not match trailing length"),
        (lambda b: b[:20] + struct.pack("<I", 0xFFFFFFF0) + b[24:], "exceeds 262144"),
        (lambda b: b[:20] + struct.pack("<I", 2000) + b[24:], "overruns"),
    ],
)
def test_pcapng_corrupt_packet_block(tmp_path: Path, mutate: Any, reason: str) -> None:
    o = "<"
    head = shb(o) + idb(1, o)
    first = epb(0, 1, eth_frame(0), o)
    bad = mutate(epb(0, 2, eth_frame(1), o))
    frames, err = collect(write(tmp_path, "c.pcapng", head + first + bad + first))
    assert [f for _, _, f in frames] == [eth_frame(0)]
    assert err is not None
    assert err.offset == len(head) + len(first)
    assert reason in err.reason


def test_pcapng_bad_byte_order_magic(tmp_path: Path) -> None:
    data = bytearray(shb("<") + idb(1, "<"))
    data[8:12] = b"\x01\x02\x03\x04"
    frames, err = collect(write(tmp_path, "b.pcapng", bytes(data)))
    assert frames == []
    assert err is not None
    assert err.offset == 0
    assert "byte-order magic" in err.reason


def test_pcapng_second_section_with_bad_version(tmp_path: Path) -> None:
    o = "<"
    first = shb(o) + idb(1, o) + epb(0, 1, eth_frame(0), o)
    second = bytearray(shb(o))
    second[12:14] = struct.pack("<H", 2)
    frames, err = collect(write(tmp_path, "v.pcapng", first + bytes(second)))
    assert len(frames) == 1
    assert err is not None
    assert err.offset == len(first)
    assert "pcapng version 2.0" in err.reason


# --- corrupt pcap records ---


def test_pcap_absurd_record_length_is_corruption_not_memory_error(tmp_path: Path) -> None:
    built = sample_pcap()
    data = bytearray(built.data)
    start = built.records[3][0]
    data[start + 8 : start + 12] = struct.pack("<I", 0xFFFFFF00)
    frames, err = collect(write(tmp_path, "c.pcap", bytes(data)))
    assert frames == built.frames[:2]
    assert err is not None
    assert err.offset == start
    assert str(MAX_SNAPLEN) in err.reason
    assert f"offset {start}" in str(err)


def test_record_of_exactly_max_snaplen_is_accepted(tmp_path: Path) -> None:
    big = b"\x45" + b"\0" * (MAX_SNAPLEN - 1)
    built = pcap_file([(1, 0, big), (2, 0, b"\x45" + b"\0" * 19)], linktype=101)
    assert list(read_frames(write(tmp_path, "big.pcap", built.data))) == built.frames


# --- truncation at every byte ---


def expected_after_truncation(built: Built, cut: int) -> tuple[list[Frame], int | None]:
    """Frames a reader must yield from built.data[:cut], and the error offset (None: clean)."""
    if cut == 0:
        return [], 0
    before = 0
    for start, end, after in built.records:
        if cut == end:
            return built.frames[:after], None
        if start < cut < end:
            return built.frames[:before], start
        before = after
    raise AssertionError("cut beyond the file")


@pytest.mark.parametrize("kind", ["pcap-le", "pcap-be-ns", "pcapng"])
def test_truncated_at_every_offset(tmp_path: Path, kind: str) -> None:
    if kind == "pcap-le":
        built = sample_pcap()
    elif kind == "pcap-be-ns":
        built = sample_pcap(order=">", nano=True)
    else:
        built = sample_pcapng()
    check_truncations(tmp_path / "t.cap", built, range(len(built.data) + 1))


def check_truncations(path: Path, built: Built, cuts: Iterable[int]) -> None:
    """`built` cut at each offset reads as every whole record before the cut, then damage
    named at the cut record's start (or a clean end at a record boundary)."""
    for cut in cuts:
        path.write_bytes(built.data[:cut])
        frames, err = collect(str(path))
        want_frames, want_offset = expected_after_truncation(built, cut)
        assert frames == want_frames, cut
        if want_offset is None:
            assert err is None, (cut, err)
        else:
            assert err is not None, cut
            assert err.offset == want_offset, (cut, err)
            assert err.path == str(path)


def test_truncated_gzip_at_every_offset(tmp_path: Path) -> None:
    built = sample_pcapng()
    gz = gzip.compress(built.data, mtime=0)
    # A cut in the trailer leaves every record intact: the error then names the stream end.
    starts = {s for s, _, _ in built.records} | {len(built.data)}
    path = tmp_path / "t.pcapng.gz"
    for cut in range(len(gz)):
        path.write_bytes(gz[:cut])
        frames, err = collect(str(path))
        assert err is not None, cut  # a gzip stream without its trailer is always damaged
        if cut < 10:
            assert err.offset == 0
            continue
        assert err.offset in starts, (cut, err)
        # Every record wholly before the damaged one was yielded, and nothing after it.
        complete = max(n for s, e, n in built.records if e <= err.offset) if err.offset else 0
        assert frames == built.frames[:complete], cut


# --- compression ---


@pytest.mark.parametrize(
    "compress",
    [
        lambda b: gzip.compress(b, mtime=0),
        lambda b: gzip.compress(b[:100], mtime=0) + gzip.compress(b[100:], mtime=0),
        bz2.compress,
        lzma.compress,
    ],
    ids=["gzip", "gzip-multimember", "bzip2", "xz"],
)
@pytest.mark.parametrize("which", ["pcap", "pcapng"])
def test_compressed_captures_detected_by_magic(tmp_path: Path, compress: Any, which: str) -> None:
    built = sample_pcap(order=">") if which == "pcap" else sample_pcapng()
    path = write(tmp_path, "no-extension", compress(built.data))
    got = list(read_frames(path))
    assert [(lt, f) for _, lt, f in got] == [(lt, f) for _, lt, f in built.frames]
    assert is_capture(path)


def test_gzip_bad_crc_yields_everything_then_fails_at_end(tmp_path: Path) -> None:
    built = sample_pcapng()
    gz = bytearray(gzip.compress(built.data, mtime=0))
    gz[-8] ^= 0xFF  # CRC32 in the member trailer
    frames, err = collect(write(tmp_path, "crc.gz", bytes(gz)))
    assert frames == built.frames
    assert err is not None
    assert "gzip stream" in err.reason
    assert err.offset == len(built.data)


def test_gzip_damaged_in_the_middle(tmp_path: Path) -> None:
    frames_in = [(i, 0, os.urandom(600)) for i in range(400)]
    built = pcap_file(frames_in, linktype=101)
    gz = bytearray(gzip.compress(built.data, mtime=0))
    mid = len(gz) // 2
    gz[mid : mid + 64] = bytes(64)
    frames, err = collect(write(tmp_path, "mid.gz", bytes(gz)))
    # Deflate may turn the damage into plausible garbage that only the final CRC exposes, so
    # what is certain is: the intact first half came out, and the file ended in CaptureError.
    assert err is not None
    assert len(frames) >= 100
    assert frames[:100] == built.frames[:100]


def test_zstd_is_named_not_misreported(tmp_path: Path) -> None:
    frames, err = collect(write(tmp_path, "x.pcap.zst", b"\x28\xb5\x2f\xfd" + b"\0" * 20))
    assert frames == []
    assert err is not None
    assert "zstd" in err.reason


# --- not a capture ---


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"GET / HTTP/1.1\r\n\r\n", "not a pcap/pcapng file (magic 47455420)"),
        (b"", "not a pcap/pcapng file (empty)"),
        (b"\xd4\xc3", "not a pcap/pcapng file (magic d4c3)"),
        (gzip.compress(b"hello world"), "not a pcap/pcapng file (gzip-compressed, magic 68656c6c)"),
    ],
)
def test_not_a_capture(tmp_path: Path, content: bytes, reason: str) -> None:
    path = write(tmp_path, "notes.pcap", content)
    frames, err = collect(path)
    assert frames == []
    assert err is not None
    assert (err.offset, err.reason) == (0, reason)
    with pytest.raises(CaptureError) as info:
        expand_paths([path])
    assert info.value.reason == reason


def test_missing_file(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.pcap")
    with pytest.raises(CaptureError) as info:
        list(read_frames(missing))
    assert (info.value.path, info.value.offset, info.value.reason) == (missing, 0, "no such file")
    with pytest.raises(CaptureError, match="no such file"):
        expand_paths([missing])
    with pytest.raises(CaptureError, match="no such file"):
        capture_size(missing)


def test_capture_error_is_not_a_decode_error() -> None:
    # Callers catch CaptureError to stop reading a file; it must not be swallowed by a
    # decoder-level handler.
    assert not issubclass(CaptureError, DecodeError)


# --- directories ---


def test_expand_paths_recurses_sorted_and_skips_non_captures(tmp_path: Path) -> None:
    pcap = sample_pcap().data
    ng = sample_pcapng().data
    (tmp_path / "d" / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "d" / "a_sub").mkdir()
    files = {
        "d/z.cap": pcap,
        "d/b.dmp": ng,
        "d/noext": pcap,
        "d/sub/x.pcapng.gz": gzip.compress(ng),
        "d/sub/deeper/y": ng,
        "d/a_sub/k.pcap": pcap,
        "d/readme.txt": b"not a capture",
        "d/empty": b"",
        "d/sub/archive.gz": gzip.compress(b"plain text"),
        "d/sub/trace.zst": b"\x28\xb5\x2f\xfd" + b"\0" * 8,
        "d/sub/keylog.txt": b"CLIENT_RANDOM 00 11\n",
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    (tmp_path / "d" / "dangling").symlink_to(tmp_path / "gone")
    explicit = write(tmp_path, "explicit.pcap", pcap)
    got = expand_paths([explicit, str(tmp_path / "d")])
    rel = [os.path.relpath(p, tmp_path) for p in got]
    assert rel == [
        "explicit.pcap",
        "d/a_sub/k.pcap",
        "d/b.dmp",
        "d/noext",
        "d/sub/deeper/y",
        "d/sub/x.pcapng.gz",
        "d/z.cap",
    ]


def test_expand_paths_explicit_non_capture_next_to_directory(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    write(tmp_path / "d", "ok.pcap", sample_pcap().data)
    junk = write(tmp_path, "junk.bin", b"\x00" * 64)
    with pytest.raises(CaptureError) as info:
        expand_paths([str(tmp_path / "d"), junk])
    assert info.value.path == junk
    assert info.value.offset == 0


# --- progress ---


def _progress(path: str, step: int) -> tuple[list[tuple[int, int, int]], _core.Capture]:
    """(frames, offset, file_offset) after each `step` frames, as replay reports progress."""
    core = _core.Core()
    src = _core.Capture(path)
    seen = []
    while core.run(src, step)[0]:
        frames, _snapped, offset, file_offset = src.stats()
        seen.append((frames, offset, file_offset))
    return seen, src


def test_offset_progress_plain(tmp_path: Path) -> None:
    built = sample_pcapng()
    path = write(tmp_path, "p.pcapng", built.data)
    packet_ends = [end for i, (_, end, n) in enumerate(built.records)
                   if n > (built.records[i - 1][2] if i else 0)]  # fmt: skip
    seen, src = _progress(path, 1)
    assert [off for _, off, _ in seen] == packet_ends
    assert all(file_off == off for _, off, file_off in seen)
    frames, _snapped, offset, _file_offset = src.stats()
    assert offset == capture_size(path) == len(built.data)
    assert frames == len(built.frames)


def test_offset_progress_gzip_reaches_file_size(tmp_path: Path) -> None:
    frames = [(i, 0, os.urandom(1400)) for i in range(3000)]  # incompressible: ~4 MiB
    built = pcap_file(frames, linktype=101)
    path = write(tmp_path, "p.pcap.gz", gzip.compress(built.data, compresslevel=1))
    seen, src = _progress(path, 500)
    progress = [file_off for _, _, file_off in seen]
    assert [n for n, _, _ in seen] == [500 * (i + 1) for i in range(6)]
    assert progress == sorted(progress)
    assert 0 < progress[0] < capture_size(path)
    assert src.stats()[2] == len(built.data)  # decompressed offset: the whole stream


def test_records_straddling_read_chunks(tmp_path: Path) -> None:
    # 60 KiB frames do not divide the 256 KiB read size, so records straddle chunk
    # boundaries, in the file and in its decompressed stream.
    frames = [(i, i, bytes([i % 256]) * (61_000 + i)) for i in range(60)]
    built = pcap_file(frames, linktype=101)
    path = write(tmp_path, "big.pcap", built.data)
    assert list(read_frames(path)) == built.frames
    gz = write(tmp_path, "big.pcap.gz", gzip.compress(built.data, compresslevel=1))
    assert list(read_frames(gz)) == built.frames


def test_large_capture_truncated_at_offsets(tmp_path: Path) -> None:
    """A file of several read chunks cut short gives the same frames and damage offset as
    the small files cut at every offset above."""
    frames = [(i, i, bytes([i % 256]) * (1400 + i % 50)) for i in range(1000)]
    built = pcap_file(frames, linktype=101)
    cuts = {len(built.data), len(built.data) - 1}
    cuts |= {s + d for s, _, _ in built.records[-40:] for d in (0, 1, 15, 16, 17, 100)}
    assert min(cuts) > 4 * 256 * 1024  # past several read chunks
    check_truncations(tmp_path / "big.pcap", built, sorted(cuts))


def test_reads_from_a_fifo(tmp_path: Path) -> None:
    built = sample_pcapng()
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    def feed() -> None:
        with fifo.open("wb") as w:
            for i in range(0, len(built.data), 7):
                w.write(built.data[i : i + 7])
                w.flush()

    t = threading.Thread(target=feed)
    t.start()
    try:
        got = list(read_frames(str(fifo)))
    finally:
        t.join(timeout=10)
    assert [f for _, _, f in got] == [f for _, _, f in built.frames]


# --- real captures ---


def _corpus_labels() -> dict[str, Any]:
    labels = CORPUS / "labels.json"
    assert labels.is_file(), f"corpus missing at {CORPUS}"
    files: dict[str, Any] = json.loads(labels.read_text())["files"]
    return files


@pytest.mark.corpus
def test_corpus_frame_counts_match_labels() -> None:
    files = _corpus_labels()
    assert len(files) >= 50
    for name, entry in files.items():
        path = str(CORPUS / name)
        frames = list(read_frames(path))
        assert len(frames) == entry["packets"], name
        want_lt = {"ether": 1, "null": 0}[entry["link_type"]]
        assert {lt for _, lt, _ in frames} == {want_lt}, name


@pytest.mark.corpus
def test_corpus_frames_and_timestamps_match_scapy() -> None:
    for name in _corpus_labels():
        path = str(CORPUS / name)
        ours = list(read_frames(path))
        theirs = []
        with RawPcapReader(path) as r:
            for data, meta_ in r:
                meta: Any = meta_
                if hasattr(meta, "tshigh"):
                    ts = ((meta.tshigh << 32) | meta.tslow) / meta.tsresol
                else:
                    ts = meta.sec + meta.usec / (1e9 if r.nano else 1e6)
                theirs.append((ts, data))
        assert [f for _, _, f in ours] == [d for _, d in theirs], name
        assert [t for t, _, _ in ours] == pytest.approx([t for t, _ in theirs], abs=1e-6), name


@pytest.mark.corpus
def test_corpus_directory_expansion_finds_every_labelled_capture() -> None:
    files = _corpus_labels()
    got = expand_paths([str(CORPUS)])
    assert sorted(os.path.relpath(p, CORPUS) for p in got) == sorted(files)
