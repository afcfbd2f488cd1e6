"""Live capture set-up: an AF_PACKET socket with a TPACKET_V3 RX ring (+ fanout, BPF), or a
TPACKET_V2 one (the live sensor's DNS side channel).

Python opens and configures the socket (privileged, before privileges are dropped); the
compiled core maps the ring from the socket's descriptor and reads it (src/os/ring.rs), so no
Python runs per packet. This module also compiles BPF expressions and reads the kernel's
drop counters.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import mmap
import os
import shutil
import socket
import struct
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from netdetect.errors import NetdetectError

log = logging.getLogger("netdetect.capture.afpacket")

SOL_PACKET: Final = 263
PACKET_ADD_MEMBERSHIP: Final = 1
PACKET_RX_RING: Final = 5
PACKET_STATISTICS: Final = 6
PACKET_VERSION: Final = 10
PACKET_FANOUT: Final = 18
PACKET_IGNORE_OUTGOING: Final = 23
TPACKET_V2: Final = 1
TPACKET_V3: Final = 2
PACKET_MR_PROMISC: Final = 1
PACKET_FANOUT_HASH: Final = 0
PACKET_FANOUT_FLAG_DEFRAG: Final = 0x8000
SO_ATTACH_FILTER: Final = 26
ETH_P_ALL: Final = 0x0003

LINKTYPE_ETHERNET: Final = 1
LINKTYPE_RAW: Final = 101
# ARPHRD_* (include/uapi/linux/if_arp.h) → pcap link type of what the socket hands over.
_ARPHRD_LINKTYPE: Final = {1: LINKTYPE_ETHERNET, 772: LINKTYPE_ETHERNET, 65534: LINKTYPE_RAW}

_U32: Final = struct.Struct("=I")
_STATS: Final = struct.Struct("=III")
_REQ: Final = struct.Struct("=IIII")  # struct tpacket_req (TPACKET_V2)
_REQ3: Final = struct.Struct("=IIIIIII")
_MREQ: Final = struct.Struct("=iHH8s")
_FPROG: Final = struct.Struct("=HxxxxxxQ")  # struct sock_fprog: u16 len, (pad), pointer
_INSN: Final = struct.Struct("=HBBI")
_FRAME_ALIGN: Final = 2048  # tp_frame_size: only checked for consistency under TPACKET_V3
_TPACKET_ALIGNMENT: Final = 16
_MIN_SLOT: Final = 128  # a V2 slot holds its 32-byte header, an address and the frame
MAX_BPF_INSNS: Final = 4096  # BPF_MAXINSNS
_DROP_ALL: Final = (0x06, 0, 0, 0)  # BPF_RET | BPF_K, accept 0 bytes

# What the detector needs from a plain SPAN port, as a kernel prefilter (see sniff --bpf):
#  - every TCP SYN/FIN/RST (flow start, end, port reuse);
#  - every IPv4 TCP segment whose IP length is at most 1280 bytes: Stratum lines, pushes and
#    the timing of bare TLS sessions are small packets;
#  - any IPv4 TCP segment whose payload starts a TLS handshake record (0x16), so a ClientHello
#    larger than one small segment keeps its first segment;
#  - DNS (53 UDP and TCP) and mDNS/LLMNR, which feed passive DNS, and DHCP (67/68), which
#    tells the sensor which host holds an address;
#  - all IPv6 TCP and DNS (libpcap has no tcp[] accessors for IPv6), IP fragments (the first
#    fragment holds the ports), and encapsulated mirrors (GRE/ERSPAN, VXLAN) unfiltered;
#  - the same again inside one 802.1Q tag, for NICs that do not strip tags into metadata.
# What it can miss: full-size (>1280 byte) IPv4 segments that do not start a TLS record, such
# as a large mining.notify or an HTTP getblocktemplate body (the stream shows a gap and the
# decoders resynchronise); per-flow byte counts are understated, which weakens the "bulk
# transfer" shortcut; and anything inside Q-in-Q or MPLS.
_CORE_FILTER: Final = (
    "(ip and tcp and (tcp[tcpflags] & (tcp-syn|tcp-fin|tcp-rst) != 0 or ip[2:2] <= 1280"
    " or tcp[((tcp[12:1] & 0xf0) >> 2):1] = 0x16))"
    " or (ip and ip[6:2] & 0x3fff != 0)"
    " or (udp and (port 53 or port 5353 or port 5355 or port 67 or port 68))"
    " or (tcp and port 53)"
    " or (ip6 and tcp) or proto gre or udp port 4789"
)
DEFAULT_BPF: Final = f"({_CORE_FILTER}) or (vlan and ({_CORE_FILTER}))"

Insn = tuple[int, int, int, int]


class LiveCaptureError(NetdetectError):
    """The interface cannot be captured from (missing, no permission, bad filter)."""


@dataclass(frozen=True, slots=True)
class RingConfig:
    block_size: int = 1 << 21  # bytes; a power-of-two number of pages
    block_count: int = 32
    retire_ms: int = 50  # a partly filled block is handed over after this long
    promisc: bool = True
    ignore_outgoing: bool = False  # drop what this host itself sends on the interface
    # 0: TPACKET_V3, frames packed into blocks, each block handed over when full or after
    # retire_ms. Otherwise TPACKET_V2 in slots of this many bytes: each frame is handed over
    # as soon as the kernel has written it (retire_ms is unused), and a frame longer than a
    # slot is cut to it (counted as truncated).
    frame_size: int = 0

    def validate(self) -> None:
        page = mmap.PAGESIZE
        if self.block_size < page or self.block_size % page or self.block_size & (
            self.block_size - 1
        ):
            raise LiveCaptureError(f"ring block size {self.block_size} is not a power of two "
                                   f"multiple of the page size ({page})")
        if not 2 <= self.block_count <= 65536:
            raise LiveCaptureError(f"ring block count {self.block_count} out of range 2..65536")
        if not 1 <= self.retire_ms <= 10_000:
            raise LiveCaptureError(f"block retire timeout {self.retire_ms} ms out of range")
        if self.frame_size and (not _MIN_SLOT <= self.frame_size <= self.block_size
                                or self.frame_size % _TPACKET_ALIGNMENT):
            raise LiveCaptureError(f"ring frame size {self.frame_size} is not a multiple of "
                                   f"{_TPACKET_ALIGNMENT} between {_MIN_SLOT} and the block "
                                   f"size ({self.block_size})")

    @property
    def frames(self) -> int:
        """Frames a TPACKET_V2 ring holds (0 for TPACKET_V3)."""
        if not self.frame_size:
            return 0
        return self.block_size // self.frame_size * self.block_count


@dataclass(frozen=True, slots=True)
class KernelStats:
    """Cumulative PACKET_STATISTICS; `packets` counts every frame the ring was offered,
    dropped ones included (the kernel adds drops to tp_packets)."""

    packets: int = 0
    drops: int = 0
    freezes: int = 0  # times the queue froze because no block was free


def interface_linktype(name: str) -> int:
    """The pcap link type of frames captured on interface `name`."""
    try:
        arphrd = int(Path(f"/sys/class/net/{name}/type").read_text(encoding="ascii"))
    except (OSError, ValueError) as exc:
        raise LiveCaptureError(f"{name}: no such interface") from exc
    lt = _ARPHRD_LINKTYPE.get(arphrd)
    if lt is None:
        raise LiveCaptureError(f"{name}: unsupported link type (ARPHRD {arphrd})")
    return lt


class RingSocket:
    """One AF_PACKET socket bound to an interface with a TPACKET_V3 (or, with
    `RingConfig.frame_size`, TPACKET_V2) RX ring.

    Open (needs CAP_NET_RAW, and CAP_NET_ADMIN for promiscuous mode) in a privileged process;
    a worker maps the ring from `fileno()` with `netdetect._core.Ring` after a fork and after
    privileges were dropped.
    """

    def __init__(
        self,
        interface: str,
        config: RingConfig | None = None,
        *,
        fanout_group: int | None = None,
        bpf: Sequence[Insn] | None = None,
    ) -> None:
        self.interface = interface
        self.config = cfg = config or RingConfig()
        cfg.validate()
        self.linktype = interface_linktype(interface)
        try:
            self.ifindex = socket.if_nametoindex(interface)
        except OSError as exc:
            raise LiveCaptureError(f"{interface}: no such interface") from exc
        self._stats = [0, 0, 0]
        try:
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        except PermissionError as exc:
            raise LiveCaptureError(
                f"{interface}: opening a packet socket needs root or CAP_NET_RAW"
            ) from exc
        try:
            self._setup(cfg, fanout_group, bpf)
        except BaseException:
            self.sock.close()
            raise

    def _setup(self, cfg: RingConfig, fanout_group: int | None, bpf: Sequence[Insn] | None) -> None:
        s = self.sock
        if bpf is not None:
            attach_filter(s, bpf)
        if cfg.frame_size:
            s.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V2)
            req = _REQ.pack(cfg.block_size, cfg.block_count, cfg.frame_size, cfg.frames)
        else:
            s.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
            frames = cfg.block_size // _FRAME_ALIGN * cfg.block_count
            req = _REQ3.pack(cfg.block_size, cfg.block_count, _FRAME_ALIGN, frames,
                             cfg.retire_ms, 0, 0)
        try:
            s.setsockopt(SOL_PACKET, PACKET_RX_RING, req)
        except OSError as exc:
            raise LiveCaptureError(
                f"{self.interface}: cannot allocate a {cfg.block_count} x {cfg.block_size} byte "
                f"ring: {exc.strerror}"
            ) from exc
        if cfg.ignore_outgoing:
            with contextlib.suppress(OSError):  # kernels before 4.20 lack the option
                s.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
        s.bind((self.interface, ETH_P_ALL))
        if cfg.promisc:
            mreq = _MREQ.pack(self.ifindex, PACKET_MR_PROMISC, 0, b"")
            try:
                s.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
            except PermissionError as exc:
                raise LiveCaptureError(
                    f"{self.interface}: promiscuous mode needs CAP_NET_ADMIN"
                ) from exc
        if fanout_group is not None:
            # Hash on the flow (symmetric: both directions land on the same socket); DEFRAG
            # reassembles IP fragments first so a fragmented packet is hashed by its ports.
            arg = (fanout_group & 0xFFFF) | ((PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_DEFRAG) << 16)
            try:
                # As bytes: with the DEFRAG bit the value exceeds a C int.
                s.setsockopt(SOL_PACKET, PACKET_FANOUT, _U32.pack(arg))
            except OSError as exc:
                raise LiveCaptureError(
                    f"{self.interface}: cannot join fanout group {fanout_group}: {exc.strerror}"
                ) from exc

    @property
    def ring_bytes(self) -> int:
        return self.config.block_size * self.config.block_count

    def fileno(self) -> int:
        return self.sock.fileno()

    def freeze(self) -> None:
        """Stop taking new frames (a drop-everything filter) while the ring keeps what it has:
        the final read then sees every frame the kernel counted, and the counts agree."""
        attach_filter(self.sock, [_DROP_ALL])

    def stats(self) -> KernelStats:
        """Cumulative kernel counters since the socket opened (the kernel resets on read)."""
        with contextlib.suppress(OSError):
            raw = self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, _STATS.size)
            # struct tpacket_stats_v3; a TPACKET_V2 ring has no freeze count (8 bytes).
            p, d, f = _STATS.unpack(raw.ljust(_STATS.size, b"\0"))
            self._stats[0] += p
            self._stats[1] += d
            self._stats[2] += f
        return KernelStats(*self._stats)

    def close(self) -> None:
        self.sock.close()


# --- BPF ------------------------------------------------------------------------------------


def attach_filter(sock: socket.socket, program: Sequence[Insn]) -> None:
    """Attach a classic BPF program (as compiled by libpcap) with SO_ATTACH_FILTER."""
    if not 0 < len(program) <= MAX_BPF_INSNS:
        raise LiveCaptureError(f"BPF program of {len(program)} instructions is out of range")
    buf = ctypes.create_string_buffer(_INSN.size * len(program))
    for i, (code, jt, jf, k) in enumerate(program):
        _INSN.pack_into(buf, i * _INSN.size, code, jt, jf, k)
    # The kernel copies the program during the call; `buf` only has to outlive it.
    fprog = _FPROG.pack(len(program), ctypes.addressof(buf))
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
    except OSError as exc:
        raise LiveCaptureError(f"the kernel refused the BPF program: {exc.strerror}") from exc


class _BpfInsn(ctypes.Structure):
    _fields_ = (
        ("code", ctypes.c_ushort),
        ("jt", ctypes.c_ubyte),
        ("jf", ctypes.c_ubyte),
        ("k", ctypes.c_uint32),
    )


class _BpfProgram(ctypes.Structure):
    _fields_ = (("bf_len", ctypes.c_uint), ("bf_insns", ctypes.POINTER(_BpfInsn)))


def _libpcap() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("pcap")
    for cand in (name, "libpcap.so.0.8", "libpcap.so.1"):
        if cand:
            try:
                lib = ctypes.CDLL(cand)
            except OSError:
                continue
            lib.pcap_open_dead.restype = ctypes.c_void_p
            lib.pcap_open_dead.argtypes = (ctypes.c_int, ctypes.c_int)
            lib.pcap_compile.argtypes = (ctypes.c_void_p, ctypes.POINTER(_BpfProgram),
                                         ctypes.c_char_p, ctypes.c_int, ctypes.c_uint32)
            lib.pcap_geterr.restype = ctypes.c_char_p
            lib.pcap_geterr.argtypes = (ctypes.c_void_p,)
            lib.pcap_freecode.argtypes = (ctypes.POINTER(_BpfProgram),)
            lib.pcap_close.argtypes = (ctypes.c_void_p,)
            return lib
    return None


def compile_bpf_libpcap(expr: str, linktype: int = LINKTYPE_ETHERNET,
                        snaplen: int = 262_144) -> list[Insn] | None:
    """Compile with libpcap's pcap_compile on a dead handle; None when libpcap is missing."""
    lib = _libpcap()
    if lib is None:
        return None
    handle = lib.pcap_open_dead(linktype, snaplen)
    if not handle:
        raise LiveCaptureError("libpcap could not open a handle to compile the filter")
    prog = _BpfProgram()
    try:
        if lib.pcap_compile(handle, ctypes.byref(prog), expr.encode(), 1, 0xFFFFFFFF) != 0:
            err = lib.pcap_geterr(handle) or b"syntax error"
            raise LiveCaptureError(f"bad BPF expression {expr!r}: {err.decode(errors='replace')}")
        try:
            return [(prog.bf_insns[i].code, prog.bf_insns[i].jt, prog.bf_insns[i].jf,
                     prog.bf_insns[i].k) for i in range(prog.bf_len)]
        finally:
            lib.pcap_freecode(ctypes.byref(prog))
    finally:
        lib.pcap_close(handle)


def compile_bpf_tcpdump(expr: str, linktype: int = LINKTYPE_ETHERNET) -> list[Insn] | None:
    """Compile with `tcpdump -ddd` against an empty capture of the link type (so no interface
    is opened and no privilege is needed); None when tcpdump is not installed."""
    exe = shutil.which("tcpdump")
    if exe is None:
        return None
    header = struct.pack("=IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262_144, linktype)
    with tempfile.NamedTemporaryFile(suffix=".pcap") as tmp:
        tmp.write(header)
        tmp.flush()
        proc = subprocess.run([exe, "-r", tmp.name, "-ddd", expr], capture_output=True,
                              text=True, timeout=30, check=False)
    if proc.returncode != 0:
        err = proc.stderr.strip().splitlines()
        why = err[-1] if err else "tcpdump failed"
        raise LiveCaptureError(f"bad BPF expression {expr!r}: {why}")
    return parse_ddd(proc.stdout)


def parse_ddd(text: str) -> list[Insn]:
    """Parse `tcpdump -ddd` output: a count line, then `code jt jf k` per instruction."""
    lines = [ln.split() for ln in text.splitlines() if ln.strip()]
    try:
        count = int(lines[0][0])
        prog = [(int(a), int(b), int(c), int(d)) for a, b, c, d in lines[1:]]
    except (IndexError, ValueError) as exc:
        raise LiveCaptureError(f"unreadable tcpdump -ddd output: {text[:80]!r}") from exc
    if count != len(prog):
        raise LiveCaptureError(f"tcpdump -ddd announced {count} instructions, gave {len(prog)}")
    return prog


def compile_bpf(expr: str, linktype: int = LINKTYPE_ETHERNET) -> list[Insn]:
    """Compile a pcap filter expression to classic BPF: libpcap first, then tcpdump."""
    prog = compile_bpf_libpcap(expr, linktype)
    if prog is None:
        prog = compile_bpf_tcpdump(expr, linktype)
    if prog is None:
        raise LiveCaptureError("compiling --bpf needs libpcap (libpcap0.8) or tcpdump installed")
    if len(prog) > MAX_BPF_INSNS:
        raise LiveCaptureError(f"BPF expression compiles to {len(prog)} instructions "
                               f"(kernel limit {MAX_BPF_INSNS})")
    return prog


def pid_fanout_group() -> int:
    """A fanout group id unlikely to collide with another capture on the same host."""
    return os.getpid() & 0xFFFF
