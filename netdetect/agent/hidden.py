"""Listing /proc without trusting libc, and the processes a readdir hook hides.

Cryptojacking campaigns (TeamTNT, Kinsing, WatchDog) hide the miner with a library in
/etc/ld.so.preload (libprocesshider and its clones) that filters `readdir` on /proc: `ps`,
`top` and any agent that lists /proc through libc stop seeing the process, while the kernel
still runs it and still lists it to anyone who asks without going through that function.

`kernel_pids` reads the directory with the getdents64 system call itself (through libc's
generic `syscall` entry, which such libraries leave alone because hooking it breaks every
program), so the agent sees every process; `visible_pids` is what libc's readdir shows.
A pid the kernel lists, that a readdir pass just before missed although the process was
already running, is hidden: that discrepancy is itself strong evidence of a rootkit (T1014,
T1574.006).
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform
import struct
from typing import Any, NamedTuple

# getdents64's number per architecture (asm-generic and the older tables).
_SYS_GETDENTS64 = {"x86_64": 217, "amd64": 217, "aarch64": 61, "arm64": 61, "riscv64": 61,
                   "i386": 220, "i686": 220, "armv7l": 217, "armv6l": 217, "ppc64le": 202,
                   "ppc64": 202, "s390x": 220, "loongarch64": 61}
_DIRENT = struct.Struct("=QqHB")  # d_ino, d_off, d_reclen, d_type; the name follows
_BUF = 1 << 16
CLK_TCK = os.sysconf("SC_CLK_TCK")


class _Libc:
    syscall: Any = None
    number: int | None = _SYS_GETDENTS64.get(platform.machine().lower())


def _syscall() -> Any:
    if _Libc.syscall is None and _Libc.number is not None:
        fn = ctypes.CDLL(None, use_errno=True).syscall
        fn.restype = ctypes.c_long
        fn.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]
        _Libc.syscall = fn
    return _Libc.syscall


def getdents_names(path: str) -> list[str]:
    """The entries of directory `path`, as the kernel lists them (getdents64, no readdir).

    Raises OSError when the directory cannot be read, or NotImplementedError on an
    architecture whose system call number this module does not know.
    """
    fn = _syscall()
    if fn is None or _Libc.number is None:
        raise NotImplementedError(f"getdents64 unknown on {platform.machine()}")
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    buf = ctypes.create_string_buffer(_BUF)
    names: list[str] = []
    try:
        while True:
            n = fn(_Libc.number, fd, buf, _BUF)
            if n < 0:
                err = ctypes.get_errno()
                raise OSError(err, f"getdents64 {path}: {os.strerror(err)}")
            if n == 0:
                return names
            raw = buf.raw[:n]
            off = 0
            while off + _DIRENT.size <= n:
                _ino, _doff, reclen, _type = _DIRENT.unpack_from(raw, off)
                if reclen == 0:  # never from a sane kernel; do not spin on it
                    return names
                name = raw[off + _DIRENT.size : off + reclen].split(b"\0", 1)[0]
                names.append(name.decode("utf-8", "surrogateescape"))
                off += reclen
    finally:
        os.close(fd)


def kernel_pids(proc: str = "/proc") -> list[int]:
    """Every process (thread-group leader) the kernel lists under `proc`."""
    return sorted(int(n) for n in getdents_names(proc) if n.isdigit())


def visible_pids(proc: str = "/proc") -> set[int]:
    """The processes libc's readdir shows under `proc` (what `ps` sees)."""
    with os.scandir(proc) as it:
        return {int(e.name) for e in it if e.name.isdigit()}


class ProcView(NamedTuple):
    pids: list[int]  # every process, from the kernel
    hidden: list[int]  # listed by the kernel, missing from readdir (twice), still alive
    error: str | None  # why the kernel listing was unavailable (pids then come from readdir)


def _uptime(proc: str) -> float:
    with open(f"{proc}/uptime", "rb") as fh:  # noqa: PTH123 -- twice per listing
        return float(fh.read(64).split()[0])


def _started(pid: int, proc: str) -> float | None:
    """Seconds after boot the process started, or None if it is gone."""
    try:
        with open(f"{proc}/{pid}/stat", "rb") as fh:  # noqa: PTH123
            data = fh.read(4096)
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2 :].split()
    return int(fields[19]) / CLK_TCK if len(fields) > 19 else None


def proc_view(proc: str = "/proc") -> ProcView:
    """All pids, and those a readdir hook hides.

    One readdir pass, then the kernel's listing: a pid only the kernel lists is hidden if it
    started before the readdir pass began (the kernel walks /proc in pid order, so readdir
    cannot miss a process that lived throughout); one born in between is not. Start times
    have clock-tick resolution, so a process born in the tick the pass began is given the
    benefit of the doubt.
    """
    began = _uptime(proc)
    before = visible_pids(proc)
    try:
        pids = kernel_pids(proc)
    except (OSError, NotImplementedError) as exc:
        return ProcView(sorted(before), [], f"kernel /proc listing unavailable: {exc}")
    hidden: list[int] = []
    for pid in pids:
        if pid in before:
            continue
        started = _started(pid, proc)
        if started is not None and started < began - 2.0 / CLK_TCK:
            hidden.append(pid)
    return ProcView(pids, hidden, None)


@functools.cache
def preloaded_libraries(proc: str = "/proc") -> tuple[str, ...]:
    """Libraries the dynamic loader preloaded into this very process (LD_PRELOAD or
    /etc/ld.so.preload) and that are mapped now: a hook that hides processes from the agent
    is, by construction, loaded into the agent."""
    wanted = os.environ.get("LD_PRELOAD", "").replace(":", " ").split()
    try:
        with open("/etc/ld.so.preload", "rb") as fh:  # noqa: PTH123 -- the live loader's file
            text = fh.read(1 << 16).decode("utf-8", "surrogateescape")
        for line in text.splitlines():
            wanted += line.split("#", 1)[0].replace(":", " ").split()
    except OSError:
        pass
    if not wanted:
        return ()
    try:
        with open(f"{proc}/self/maps", "rb") as fh:  # noqa: PTH123
            maps = fh.read(8 << 20).decode("utf-8", "surrogateescape")
    except OSError:
        return tuple(wanted)
    mapped = {line.split(None, 5)[5] for line in maps.splitlines() if line.count(" ") >= 5
              and len(line.split(None, 5)) == 6}
    out: list[str] = []
    for lib in wanted:
        real = os.path.realpath(lib)
        hit = next((m for m in mapped if m in (lib, real) or m.endswith("/" + lib)), None)
        if hit is not None and hit not in out:
            out.append(hit)
    return tuple(out)


def preloaded_hooks() -> tuple[str, ...]:
    """`preloaded_libraries` of this process under the live /proc."""
    return preloaded_libraries()
