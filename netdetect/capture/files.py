"""Stream pcap and pcapng captures (plain or compressed) as (timestamp, link type, frame)."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import struct
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final

from netdetect.errors import CaptureError

__all__ = [
    "MAX_BLOCK",
    "MAX_SNAPLEN",
    "FileSource",
    "FrameReader",
    "capture_size",
    "expand_paths",
    "is_capture",
    "read_frames",
]

# libpcap's own ceiling (MAXIMUM_SNAPLEN); a larger record length means a damaged file, and
# refusing it keeps a flipped bit from turning into a multi-gigabyte allocation.
MAX_SNAPLEN: Final = 262_144
# Non-packet pcapng blocks (name resolution, decryption secrets, custom) can legitimately be
# larger than a packet, but nothing real comes near this.
MAX_BLOCK: Final = 16 * 1024 * 1024

_CHUNK: Final = 1 << 20

# magic -> (struct byte order, fraction units per second, record header size)
_PCAP_MAGICS: Final[dict[bytes, tuple[str, int, int]]] = {
    b"\xa1\xb2\xc3\xd4": (">", 1_000_000, 16),
    b"\xd4\xc3\xb2\xa1": ("<", 1_000_000, 16),
    b"\xa1\xb2\x3c\x4d": (">", 1_000_000_000, 16),
    b"\x4d\x3c\xb2\xa1": ("<", 1_000_000_000, 16),
    # Kuznetzov's patched libpcap: 8 extra bytes (ifindex, protocol, pkt_type) per record.
    b"\xa1\xb2\xcd\x34": (">", 1_000_000, 24),
    b"\x34\xcd\xb2\xa1": ("<", 1_000_000, 24),
}
_PCAPNG_MAGIC: Final = b"\x0a\x0d\x0d\x0a"
_SHB: Final = 0x0A0D0D0A
_IDB: Final = 1
_PB: Final = 2
_SPB: Final = 3
_EPB: Final = 6

_GZIP_MAGIC: Final = b"\x1f\x8b"
_BZ2_MAGIC: Final = b"BZh"
_XZ_MAGIC: Final = b"\xfd7zXZ\x00"
_ZSTD_MAGIC: Final = b"\x28\xb5\x2f\xfd"
_LZ4_MAGIC: Final = b"\x04\x22\x4d\x18"

# What a damaged compressed stream raises while being read.
_STREAM_ERRORS: Final = (OSError, EOFError, zlib.error, lzma.LZMAError)


class _UnsupportedCompressionError(CaptureError):
    """A compressed file whose format the standard library cannot read."""


_UNSUPPORTED: Final = (
    (_ZSTD_MAGIC, "zstd-compressed capture: decompress it first (zstd -d)"),
    (_LZ4_MAGIC, "lz4-compressed capture: decompress it first (lz4 -d)"),
)


def _open(path: str) -> tuple[io.BufferedIOBase, io.BufferedReader[io.FileIO], str | None]:
    """Open `path` and return (stream to parse, underlying file, compression name or None)."""
    try:
        raw = io.BufferedReader(io.FileIO(path, "rb"), buffer_size=_CHUNK)
    except FileNotFoundError:
        raise CaptureError(path, 0, "no such file") from None
    except IsADirectoryError:
        raise CaptureError(path, 0, "is a directory") from None
    except OSError as exc:
        raise CaptureError(path, 0, f"cannot open: {exc.strerror or exc}") from exc
    try:
        # peek, not read+seek, so that pipes and FIFOs work too.
        head = raw.peek(6)[:6]
    except OSError as exc:
        raw.close()
        raise CaptureError(path, 0, f"cannot read: {exc.strerror or exc}") from exc
    if head.startswith(_GZIP_MAGIC):
        return gzip.GzipFile(fileobj=raw, mode="rb"), raw, "gzip"
    if head.startswith(_BZ2_MAGIC):
        return bz2.BZ2File(raw, mode="rb"), raw, "bzip2"
    if head.startswith(_XZ_MAGIC):
        return lzma.LZMAFile(raw, mode="rb"), raw, "xz"
    for magic, reason in _UNSUPPORTED:
        if head.startswith(magic):
            raw.close()
            raise _UnsupportedCompressionError(path, 0, reason)
    return raw, raw, None


def _not_capture_reason(head: bytes, compression: str | None) -> str | None:
    """None when `head` starts a capture we read, else why not (for a CaptureError)."""
    if head[:4] in _PCAP_MAGICS or head[:4] == _PCAPNG_MAGIC:
        return None
    inner = f"{compression}-compressed, " if compression else ""
    if not head:
        return f"not a pcap/pcapng file ({inner}empty)"
    return f"not a pcap/pcapng file ({inner}magic {head[:4].hex()})"


class FrameReader:
    """Iterates the frames of one capture file, streaming it in bounded chunks.

    `offset` is the number of bytes of the (decompressed) capture stream consumed so far and
    `file_offset` the bytes of the file on disk, comparable to `capture_size(path)`; both may
    be polled from another thread or between frames for progress reporting. A damaged file
    yields every good frame before the damage, then raises CaptureError naming the offset (in
    the decompressed stream) of the damaged record.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.frames = 0
        self.compression: str | None = None
        self._raw: io.BufferedReader[io.FileIO] | None = None
        # The parse buffer: _buf[_pos:] is unconsumed, _base is the stream offset of _buf[0].
        self._buf = b""
        self._pos = 0
        self._base = 0
        self._stream: io.BufferedIOBase | None = None

    @property
    def offset(self) -> int:
        """Bytes of the (decompressed) capture stream consumed so far."""
        return self._base + self._pos

    @property
    def file_offset(self) -> int:
        """Bytes of the file on disk read so far (for a progress bar against capture_size)."""
        raw = self._raw
        if raw is None or raw.closed:
            return self.offset if self.compression is None else 0
        if self.compression is None:
            return self.offset
        try:
            return raw.tell()
        except OSError:
            return 0

    def __iter__(self) -> Iterator[tuple[float, int, bytes]]:
        return self._frames()

    def _frames(self) -> Iterator[tuple[float, int, bytes]]:
        stream, raw, self.compression = _open(self.path)
        self._stream, self._raw = stream, raw
        self._buf, self._pos, self._base = b"", 0, 0
        try:
            self._ensure(4)
            head = self._buf[:4]
            reason = _not_capture_reason(head, self.compression)
            if reason is not None:
                raise CaptureError(self.path, 0, reason)
            if head == _PCAPNG_MAGIC:
                yield from self._pcapng()
            else:
                yield from self._pcap(*_PCAP_MAGICS[head])
        finally:
            stream.close()
            raw.close()

    def _ensure(self, n: int) -> bool:
        """Make n unconsumed bytes available at _pos; False when the stream ends first."""
        avail = len(self._buf) - self._pos
        if avail >= n:
            return True
        stream = self._stream
        assert stream is not None
        parts = [self._buf[self._pos :]] if avail else []
        try:
            while avail < n:
                # read1: one underlying read per call, so that a decompressor failing later
                # in the file cannot take the already decompressed good records with it.
                chunk = stream.read1(max(_CHUNK, n - avail))
                if not chunk:
                    break
                parts.append(chunk)
                avail += len(chunk)
        except _STREAM_ERRORS as exc:
            kind = f"{self.compression} stream" if self.compression else "read"
            raise CaptureError(self.path, self._base + self._pos, f"{kind} error: {exc}") from exc
        finally:
            self._base += self._pos
            self._pos = 0
            self._buf = b"".join(parts)
        return avail >= n

    def _fail(self, reason: str) -> CaptureError:
        return CaptureError(self.path, self._base + self._pos, reason)

    def _pcap(self, order: str, units: int, rec: int) -> Iterator[tuple[float, int, bytes]]:
        if not self._ensure(24):
            raise self._fail("truncated pcap file header")
        vmaj, vmin, _zone, _sigfigs, _snaplen, network = struct.unpack_from(
            order + "HHiIII", self._buf, self._pos + 4
        )
        if vmaj != 2:
            raise self._fail(f"unsupported pcap version {vmaj}.{vmin}")
        # The upper bits of the link-type field carry FCS information (pcap spec, LinkType).
        linktype = network & 0xFFFF
        self._pos += 24
        header = struct.Struct(order + "IIII").unpack_from
        snapmax = MAX_SNAPLEN
        while True:
            # Every complete record already buffered is yielded from locals; only the state
            # a poller or _ensure needs (_pos, frames) is written back per frame.
            buf = self._buf
            pos = self._pos
            size = len(buf)
            while pos + rec <= size:
                sec, frac, caplen, _wirelen = header(buf, pos)
                if caplen > snapmax:
                    raise self._fail(f"record length {caplen} exceeds {MAX_SNAPLEN}")
                nxt = pos + rec + caplen
                if nxt > size:
                    break
                self._pos = nxt
                self.frames += 1
                yield sec + frac / units, linktype, buf[pos + rec : nxt]
                pos = nxt
            if size - pos < rec and not self._ensure(rec):
                if len(self._buf) == self._pos:
                    return
                raise self._fail(f"truncated record header ({len(self._buf) - self._pos} bytes)")
            sec, frac, caplen, _wirelen = header(self._buf, self._pos)
            if caplen > snapmax:
                raise self._fail(f"record length {caplen} exceeds {MAX_SNAPLEN}")
            need = rec + caplen
            if len(self._buf) - self._pos < need and not self._ensure(need):
                raise self._fail(
                    f"truncated record: {caplen} bytes announced,"
                    f" {len(self._buf) - self._pos - rec} present"
                )

    def _pcapng(self) -> Iterator[tuple[float, int, bytes]]:
        order = "<"
        # Per interface of the current section: (link type, ticks per second, offset seconds,
        # snap length).
        ifaces: list[tuple[int, int, int, int]] = []
        last_ts = 0.0
        u32 = struct.Struct("<I").unpack_from
        while True:
            if len(self._buf) - self._pos < 12 and not self._ensure(12):
                if len(self._buf) == self._pos:
                    return
                raise self._fail("truncated block header")
            buf, pos = self._buf, self._pos
            (btype,) = u32(buf, pos)
            if btype == _SHB:
                bom = buf[pos + 8 : pos + 12]
                if bom == b"\x1a\x2b\x3c\x4d":
                    order = ">"
                elif bom == b"\x4d\x3c\x2b\x1a":
                    order = "<"
                else:
                    raise self._fail(f"bad section byte-order magic {bom.hex()}")
                u32 = struct.Struct(order + "I").unpack_from
            else:
                (btype,) = u32(buf, pos)
            (blen,) = u32(buf, pos + 4)
            if blen < 12 or blen % 4 or blen > MAX_BLOCK:
                raise self._fail(f"bad block length {blen} (block type {btype:#x})")
            if btype == _SHB and blen < 28:
                raise self._fail(f"bad section header length {blen}")
            if len(buf) - pos < blen and not self._ensure(blen):
                raise self._fail(
                    f"truncated block: {blen} bytes announced,"
                    f" {len(self._buf) - self._pos} present (block type {btype:#x})"
                )
            buf, pos = self._buf, self._pos
            (trailer,) = u32(buf, pos + blen - 4)
            if trailer != blen:
                raise self._fail(f"block length {blen} does not match trailing length {trailer}")
            frame: bytes | None = None
            if btype in (_EPB, _PB):
                if blen < 32:
                    raise self._fail(f"packet block too short ({blen} bytes)")
                if btype == _EPB:
                    ifid, tsh, tsl, caplen = struct.unpack_from(order + "IIII", buf, pos + 8)
                else:
                    ifid, _drops, tsh, tsl, caplen = struct.unpack_from(
                        order + "HHIII", buf, pos + 8
                    )
                if ifid >= len(ifaces):
                    raise self._fail(f"packet for undeclared interface {ifid}")
                if caplen > MAX_SNAPLEN:
                    raise self._fail(f"packet length {caplen} exceeds {MAX_SNAPLEN}")
                if 28 + caplen > blen - 4:
                    raise self._fail(f"packet length {caplen} overruns its {blen}-byte block")
                linktype, tps, tsoff, _snap = ifaces[ifid]
                last_ts = ((tsh << 32) | tsl) / tps + tsoff
                frame = buf[pos + 28 : pos + 28 + caplen]
            elif btype == _SPB:
                if blen < 16:
                    raise self._fail(f"simple packet block too short ({blen} bytes)")
                if not ifaces:
                    raise self._fail("simple packet block before any interface description")
                linktype, _tps, _tsoff, snap = ifaces[0]
                (wirelen,) = u32(buf, pos + 8)
                # The SPB has no captured length: it is the original length capped by the
                # interface's snap length, and the block must hold it.
                caplen = min(wirelen, snap) if snap else wirelen
                if caplen > MAX_SNAPLEN:
                    raise self._fail(f"packet length {caplen} exceeds {MAX_SNAPLEN}")
                if 12 + caplen > blen - 4:
                    raise self._fail(f"packet length {caplen} overruns its {blen}-byte block")
                frame = buf[pos + 12 : pos + 12 + caplen]
            elif btype == _IDB:
                if blen < 20:
                    raise self._fail(f"interface description too short ({blen} bytes)")
                ifaces.append(_interface(buf, pos, blen, order))
            elif btype == _SHB:
                major, minor = struct.unpack_from(order + "HH", buf, pos + 12)
                if major != 1:
                    raise self._fail(f"unsupported pcapng version {major}.{minor}")
                ifaces = []
            self._pos = pos + blen
            if frame is not None:
                self.frames += 1
                yield last_ts, linktype, frame


def _interface(buf: bytes, pos: int, blen: int, order: str) -> tuple[int, int, int, int]:
    """(link type, ticks per second, offset seconds, snap length) of an IDB."""
    linktype, _reserved, snaplen = struct.unpack_from(order + "HHI", buf, pos + 8)
    tps = 1_000_000
    tsoffset = 0
    p = pos + 16
    end = pos + blen - 4
    opt = struct.Struct(order + "HH").unpack_from
    # Options are advisory; a malformed list ends option parsing instead of the file.
    while p + 4 <= end:
        code, olen = opt(buf, p)
        if code == 0 or p + 4 + olen > end:
            break
        if code == 9 and olen == 1:  # if_tsresol
            v = buf[p + 4]
            tps = 1 << (v & 0x7F) if v & 0x80 else 10 ** (v & 0x7F)
        elif code == 14 and olen == 8:  # if_tsoffset
            (tsoffset,) = struct.unpack_from(order + "q", buf, p + 4)
        p += 4 + ((olen + 3) & ~3)
    return linktype, tps, tsoffset, snaplen


def read_frames(path: str) -> Iterator[tuple[float, int, bytes]]:
    """Yield (epoch seconds, link type, frame bytes) for every packet in the capture at path."""
    return iter(FrameReader(path))


def capture_size(path: str) -> int:
    """Size of the capture file on disk in bytes (compare with FrameReader.file_offset)."""
    try:
        return Path(path).stat().st_size
    except FileNotFoundError:
        raise CaptureError(path, 0, "no such file") from None
    except OSError as exc:
        raise CaptureError(path, 0, f"cannot stat: {exc.strerror or exc}") from exc


def _sniff(path: str) -> str | None:
    """None when path is a capture file we can read, else the reason it is not."""
    stream, raw, compression = _open(path)
    try:
        head = stream.read(4)
    except _STREAM_ERRORS as exc:
        return f"not a pcap/pcapng file ({compression} stream error: {exc})"
    finally:
        stream.close()
        raw.close()
    return _not_capture_reason(head, compression)


def is_capture(path: str) -> bool:
    """Whether path is a (possibly compressed) pcap or pcapng file, judged by magic bytes."""
    try:
        return _sniff(path) is None
    except CaptureError:
        return False


def expand_paths(paths: Sequence[str]) -> list[str]:
    """Files as given, directories replaced by the capture files below them (sorted).

    Inside a directory, files that are not captures are skipped silently; a path named
    explicitly that is missing or not a capture raises CaptureError.
    """
    out: list[str] = []
    for path in paths:
        p = Path(path)
        if p.is_dir():
            found: list[str] = []
            for root, dirs, files in os.walk(p):
                dirs.sort()
                for name in files:
                    full = Path(root) / name
                    if not full.is_file():
                        continue  # sockets, FIFOs, dangling links
                    try:
                        reason = _sniff(str(full))
                    except _UnsupportedCompressionError:
                        continue
                    if reason is None:
                        found.append(str(full))
            out.extend(sorted(found))
        elif p.exists():
            reason = _sniff(path)
            if reason is not None:
                raise CaptureError(path, 0, reason)
            out.append(path)
        else:
            raise CaptureError(path, 0, "no such file")
    return out


class FileSource:
    """A capture file as a PacketSource; `reader` exposes progress while iterating."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.name = path
        self.reader = FrameReader(path)

    def frames(self) -> Iterator[tuple[float, int, bytes]]:
        return iter(self.reader)
