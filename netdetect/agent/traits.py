"""Miner traits: what a process's name, command line and executable bytes say about mining."""

from __future__ import annotations

import hashlib
import os
import re
import stat
import threading
from collections import OrderedDict
from pathlib import Path
from typing import NamedTuple

from netdetect.agent.schema import HostFacts

# Miner programs and the disguises well-known mining campaigns give them (Kinsing's kdevtmpfsi,
# WatchDog's sysguard/networkservice, TeamTNT's dbused, Rocke's kerberods/kthrotlds ...).
MINER_NAMES: tuple[str, ...] = (
    "xmrig",
    "xmr-stak",
    "xmr-stak-rx",
    "xmr-stak-cpu",
    "cpuminer",
    "cpuminer-opt",
    "cpuminer-multi",
    "minerd",
    "ccminer",
    "ethminer",
    "t-rex",
    "nbminer",
    "lolminer",
    "phoenixminer",
    "gminer",
    "teamredminer",
    "srbminer",
    "srbminer-multi",
    "nanominer",
    "bminer",
    "wildrig",
    "xmrig-notls",
    "kdevtmpfsi",
    "kinsing",
    "kthreaddi",
    "kthreaddk",
    "kworkerds",
    "ksoftirqds",
    "khugepageds",
    "kthrotlds",
    "kerberods",
    "sysupdate",
    "networkservice",
    "sysguard",
    "watchbog",
    "dbused",
)
_MINER_NAME_SET = frozenset(MINER_NAMES)

# Kernel-thread names copied by miners so `ps` output looks harmless; a real kernel thread has
# no executable, so such a name on a process that has one is a disguise.
_KTHREAD_PREFIXES = (
    "kworker",
    "ksoftirqd",
    "kthreadd",
    "kswapd",
    "migration/",
    "rcu_",
    "watchdog/",
    "kcompactd",
    "khugepaged",
    "kblockd",
    "jbd2/",
)

# Algorithm names miners accept after -a / --algo; `-a` alone is far too common to count.
_ALGO_RE = re.compile(
    r"^(?:rx/\w+|cn(?:-\w+)?/\w+|cn-?\w*|argon2/\w+|astrobwt\S*|ghostrider|kawpow|ethash|etchash|"
    r"autolykos2?|randomx|cryptonight\S*|x16r\w*|x11|sha256d|scrypt|yescrypt\S*|equihash\S*|"
    r"kheavyhash|octopus|firopow|progpow\S*|lyra2\S*|blake3|verthash|heavyhash)$",
    re.IGNORECASE,
)
_STRATUM_URL_RE = re.compile(r"\bstratum\d?\+(?:tcp|ssl|tls)://", re.IGNORECASE)
_HOST_PORT_RE = re.compile(r"^(?:[a-z][a-z0-9+.-]*://)?[A-Za-z0-9.-]+\.[A-Za-z]{2,}:\d{2,5}/?$|"
                           r"^(?:[a-z][a-z0-9+.-]*://)?\d{1,3}(?:\.\d{1,3}){3}:\d{2,5}/?$")
# Monero standard (95) and integrated (106) addresses: base58, leading 4 or 8.
MONERO_WALLET_RE = re.compile(
    r"(?<![1-9A-HJ-NP-Za-km-z])[48][1-9A-HJ-NP-Za-km-z]{94}(?:[1-9A-HJ-NP-Za-km-z]{11})?"
    r"(?![1-9A-HJ-NP-Za-km-z])"
)
_ETH_WALLET_RE = re.compile(r"^0x[0-9a-fA-F]{40}(?:[./].*)?$")

# Options that, as a set, only mining software takes (xmrig, xmr-stak, cpuminer, T-Rex ...).
_MINER_OPTIONS = frozenset(
    {
        "--rig-id",
        "--nicehash",
        "--cpu-max-threads-hint",
        "--max-cpu-usage",
        "--1gb-pages",
        "--huge-pages-jit",
        "--cpu-affinity",
        "--cpu-no-yield",
        "--asm",
        "--print-time",
        "--health-print-time",
        "--no-cpu",
        "--cuda",
        "--opencl",
    }
)

# Byte patterns worth finding in a binary: pool URL schemes, xmrig's option names and the
# proof-of-work algorithms CPU miners implement. UPX is recorded because packing hides the rest.
_EXE_MARKERS: dict[bytes, str] = {
    b"stratum+tcp://": "exe-strings:stratum+tcp",
    b"stratum+ssl://": "exe-strings:stratum+ssl",
    b"stratum2+tcp://": "exe-strings:stratum2+tcp",
    b"donate-level": "exe-strings:donate-level",
    b"randomx": "exe-strings:randomx",
    b"cryptonight": "exe-strings:cryptonight",
    b"mining.subscribe": "exe-strings:mining.subscribe",
    b"mining.authorize": "exe-strings:mining.authorize",
    b"xmrig": "exe-strings:xmrig",
    b"upx!": "exe-strings:upx-packed",
}
_EXE_MARKER_RE = re.compile(b"|".join(re.escape(m) for m in _EXE_MARKERS), re.IGNORECASE)
_EXE_OVERLAP = max(len(m) for m in _EXE_MARKERS) - 1

HASH_CAP = 256 * 1024 * 1024
STRINGS_CAP = 64 * 1024 * 1024
_CHUNK = 1024 * 1024
_SCAN_CACHE_MAX = 512


def _basename(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def _miner_name(candidate: str) -> str | None:
    low = candidate.lower()
    if low in _MINER_NAME_SET:
        return low
    # Versioned and platform-suffixed builds: "xmrig-6.21.0", "xmrig_linux", "cpuminer.sse2".
    for sep in ("-", "_", "."):
        head = low.split(sep, 1)[0]
        if head in _MINER_NAME_SET and head != low:
            return head
    for name in MINER_NAMES:
        if "-" in name and low.startswith(name + "-"):
            return name
    return None


def name_traits(name: str, exe: str | None, cmdline: list[str], *, has_exe: bool) -> list[str]:
    """Traits from the process name, executable basename and argv[0]."""
    out: list[str] = []
    candidates = [name]
    if exe:
        candidates.append(_basename(exe.removesuffix(" (deleted)")))
    if cmdline:
        candidates.append(_basename(cmdline[0].split(" ", 1)[0]))
    for cand in candidates:
        found = _miner_name(cand)
        if found is not None and f"name:{found}" not in out:
            out.append(f"name:{found}")
    if has_exe:
        shown = cmdline[0] if cmdline else name
        bare = shown.strip("[]").lower()
        if shown.startswith("[") or bare.startswith(_KTHREAD_PREFIXES) or name.lower().startswith(
            _KTHREAD_PREFIXES
        ):
            out.append("name:kthread-disguise")
    return out


def cmdline_traits(cmdline: list[str]) -> list[str]:
    """Traits from the arguments a process was started with."""
    found: set[str] = set()
    args = cmdline[1:] if len(cmdline) > 1 else []
    # A whole command line packed into argv[0] (setproctitle, sh -c) is still worth reading.
    if len(cmdline) == 1 and " " in cmdline[0]:
        args = cmdline[0].split()[1:]
    for i, arg in enumerate(args):
        nxt = args[i + 1] if i + 1 < len(args) else ""
        opt, eq, inline = arg.partition("=")
        value = inline if eq else nxt
        if _STRATUM_URL_RE.search(arg):
            found.add("cmdline:stratum-url")
        if MONERO_WALLET_RE.search(arg):
            found.add("cmdline:wallet")
        if not arg.startswith("-"):
            continue
        glued = opt.startswith("-o") and not eq and _HOST_PORT_RE.match(opt[2:])
        if glued or (opt in {"-o", "--url", "--pool", "-P"} and _HOST_PORT_RE.match(value)):
            found.add("cmdline:pool-url")
        elif opt in {"--donate-level", "--donate-level-auto"}:
            found.add("cmdline:donate-level")
        elif opt == "--cpu-priority":
            found.add("cmdline:cpu-priority")
        elif opt in {"--algo", "--algorithm"} or (opt == "-a" and _ALGO_RE.match(value)):
            found.add("cmdline:algo")
        elif opt.startswith("--randomx"):
            found.add("cmdline:randomx")
        elif opt == "--coin":
            found.add("cmdline:coin")
        elif opt in ("-u", "--user", "--wallet") and (
            MONERO_WALLET_RE.search(value) or _ETH_WALLET_RE.match(value)
        ):
            found.add("cmdline:wallet")
        elif opt in _MINER_OPTIONS:
            found.add("cmdline:miner-option")
    return sorted(found)


class ExeScan(NamedTuple):
    """What reading one executable produced; cached by the file's identity."""

    sha256: str | None  # None when not hashed or larger than the hash cap
    markers: tuple[str, ...]
    size: int
    error: str | None
    hashed: bool  # a hash was attempted (it may still be None: over the cap)


_scan_cache: OrderedDict[tuple[int, int, int, int], ExeScan] = OrderedDict()
_scan_lock = threading.Lock()


def scan_exe(
    path: str,
    *,
    want_hash: bool,
    hash_cap: int = HASH_CAP,
    strings_cap: int = STRINGS_CAP,
) -> ExeScan:
    """Hash and string-scan an executable in one bounded pass.

    `path` is normally /proc/<pid>/exe: opening that link reaches the running image even after
    the file was deleted or replaced, and across mount namespaces. Raises OSError when the file
    cannot be opened (vanished process, kernel thread, permission).
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return ExeScan(None, (), 0, "not a regular file", hashed=True)
        key = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
        with _scan_lock:
            hit = _scan_cache.get(key)
            # A hashed scan also answers an unhashed question, not the other way round.
            if hit is not None and (hit.hashed or not want_hash):
                _scan_cache.move_to_end(key)
                return hit
        result = _scan_fd(fd, st.st_size, want_hash=want_hash, hash_cap=hash_cap,
                          strings_cap=strings_cap)
    finally:
        os.close(fd)
    with _scan_lock:
        _scan_cache[key] = result
        while len(_scan_cache) > _SCAN_CACHE_MAX:
            _scan_cache.popitem(last=False)
    return result


def _scan_fd(fd: int, size: int, *, want_hash: bool, hash_cap: int, strings_cap: int) -> ExeScan:
    hashing = want_hash and size <= hash_cap
    digest = hashlib.sha256() if hashing else None
    limit = max(hash_cap if hashing else 0, strings_cap)
    markers: set[str] = set()
    tail = b""
    done = 0
    while done < limit:
        chunk = os.read(fd, min(_CHUNK, limit - done))
        if not chunk:
            break
        if digest is not None:
            digest.update(chunk)
        if done < strings_cap and len(markers) < len(_EXE_MARKERS):
            window = tail + chunk
            for m in _EXE_MARKER_RE.finditer(window):
                markers.add(_EXE_MARKERS[m.group().lower()])
            tail = window[-_EXE_OVERLAP:]
        done += len(chunk)
        if digest is None and done >= strings_cap:
            break
    error = None
    if want_hash and not hashing:
        error = f"executable is {size} bytes, over the {hash_cap}-byte hash cap"
    return ExeScan(digest.hexdigest() if digest is not None else None, tuple(sorted(markers)),
                   size, error, hashed=want_hash)


def process_traits(
    name: str,
    exe: str | None,
    cmdline: list[str],
    exe_markers: tuple[str, ...],
    *,
    hugepages_kb: int = 0,
) -> list[str]:
    """Every trait of one process, de-duplicated, in a stable order."""
    out = name_traits(name, exe, cmdline, has_exe=exe is not None)
    out += cmdline_traits(cmdline)
    out += [m for m in exe_markers if m not in out]
    if hugepages_kb > 0:
        out.append("huge-pages")
    return out


def _read_small(path: str, limit: int = 1 << 20) -> str:
    with Path(path).open("rb") as fh:
        return fh.read(limit).decode("ascii", "replace")


def host_facts(proc: str = "/proc", errors: list[str] | None = None) -> HostFacts:
    """CPU count, load and the two kernel settings miners change: msr loaded, huge pages raised."""
    try:
        msr = any(line.startswith("msr ") for line in _read_small(f"{proc}/modules").splitlines())
    except OSError as exc:
        # Kernels without module support have no /proc/modules; sysfs still shows a module
        # loaded at run time by its initstate file (built-in msr has none, and is no miner's doing).
        if not isinstance(exc, FileNotFoundError) and errors is not None:
            errors.append(f"host: {proc}/modules: {exc.strerror or exc}")
        msr = Path("/sys/module/msr/initstate").exists()
    nr_huge = 0
    try:
        nr_huge = int(_read_small(f"{proc}/sys/vm/nr_hugepages").strip() or 0)
    except (OSError, ValueError) as exc:
        if errors is not None:
            errors.append(f"host: nr_hugepages: {exc}")
    try:
        load1 = os.getloadavg()[0]
    except OSError:
        load1 = 0.0
    return HostFacts(cpu_count=os.cpu_count() or 1, load1=round(load1, 2), msr_module_loaded=msr,
                     nr_hugepages=nr_huge)
