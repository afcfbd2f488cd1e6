"""Flow to socket to process across network namespaces, CPU sampling, and one process's facts."""

from __future__ import annotations

import os
import re
import socket
import stat
import struct
import threading
import time
from collections.abc import Callable, Iterable
from typing import NamedTuple

import psutil

from netdetect.agent import hidden, traits
from netdetect.agent.schema import FlowSpec, ProcessFacts, TopProcess

PROC = "/proc"  # always the live kernel's view, whatever filesystem root persistence scans
CLK_TCK = os.sysconf("SC_CLK_TCK")
NS_TTL = 2.0  # seconds a namespace list stays valid; new containers appear within this
NS_MIN_AGE = 0.05  # a forced namespace rescan is skipped if the list is younger than this
TABLE_TTL = 1.0  # seconds a socket table is reused for queries it can answer
MAX_TABLE_BYTES = 64 * 1024 * 1024  # a socket table larger than this is read only this far
MAX_CMDLINE_ARGS = 128
MAX_ARG_CHARS = 1024
MAX_PARENTS = 64
_ZERO4 = b"00000000:0000"
_ZERO6 = b"00000000000000000000000000000000:0000"

# Path prefixes where a persistent service's binary has no business living: world-writable or
# per-session scratch space that droppers favour because any user can write there.
_SUSPICIOUS_DIRS = ("/tmp/", "/dev/shm/", "/var/tmp/", "/run/user/", "/dev/", "/run/shm/",
                    "/var/run/user/")
# Hidden directories that developer tool managers create for their binaries.
_BENIGN_HIDDEN = frozenset({".local", ".cargo", ".rustup", ".nvm", ".pyenv", ".sdkman", ".volta",
                            ".deno", ".bun", ".npm", ".vscode-server", ".rbenv", ".goenv"})
_CONTAINER_RE = re.compile(
    r"(?:docker|cri-containerd|crio|libpod|containerd|podman)[-/:]([0-9a-f]{64})|"
    r"/(?:docker|kubepods[^\n]*?|system\.slice/containerd\.service[^\n]*?)/([0-9a-f]{64})(?:\.scope)?"
    r"(?:/|$)"
)
_LXC_RE = re.compile(r"(?:/lxc/|lxc\.payload[.:/])([\w.-]+)")


class SocketMatch(NamedTuple):
    """One socket that carries the queried flow."""

    inode: int
    netns: str  # "net:[4026531840]"
    table: str  # "tcp" | "tcp6" | "udp" | "udp6"
    local_port: int
    exact: bool  # the local port matched too (or none was given)


class Owner(NamedTuple):
    pid: int
    inode: int
    netns: str


def _native_hex(raw: bytes) -> bytes:
    """An address as /proc/net/* prints it: each 32-bit word as a native-endian %08X."""
    words = struct.unpack(f"={len(raw) // 4}I", raw)
    return b"".join(b"%08X" % w for w in words)


def remote_patterns(ip: str, port: int) -> list[tuple[str, bytes]]:
    """(table family suffix, "ADDR:PORT" as printed) pairs under which a remote can appear.

    An IPv4 peer of a dual-stack AF_INET6 socket is printed as ::ffff:a.b.c.d in tcp6/udp6, so
    an IPv4 remote is looked for in both families, and a mapped IPv6 remote in both as well.
    """
    try:
        raw = socket.inet_pton(socket.AF_INET6 if ":" in ip else socket.AF_INET, ip)
    except OSError:
        return []
    suffix = b":%04X" % port
    if len(raw) == 16 and raw[:12] == b"\0" * 10 + b"\xff\xff":
        raw = raw[12:]
    if len(raw) == 4:
        mapped = b"\0" * 10 + b"\xff\xff" + raw
        return [("", _native_hex(raw) + suffix), ("6", _native_hex(mapped) + suffix)]
    return [("6", _native_hex(raw) + suffix)]


def _line_at(data: bytes, pos: int) -> list[bytes]:
    start = data.rfind(b"\n", 0, pos) + 1
    end = data.find(b"\n", pos)
    return data[start : end if end >= 0 else len(data)].split()


def _port_of(field: bytes) -> int:
    return int(field[field.rfind(b":") + 1 :], 16)


def search_table(
    data: bytes, remote: bytes, local_port: int | None
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(inode, local port) of sockets whose remote is `remote`: (local port matches, others).

    Finds candidates with bytes.find instead of splitting every line: a busy host's table has
    tens of thousands of lines and the flow is usually one of them.
    """
    exact: list[tuple[int, int]] = []
    loose: list[tuple[int, int]] = []
    needle = b" " + remote + b" "
    pos = data.find(needle)
    while pos >= 0:
        parts = _line_at(data, pos + 1)
        if len(parts) > 9 and parts[2] == remote:
            inode = int(parts[9]) if parts[9].isdigit() else 0
            if inode:  # TIME_WAIT and orphaned sockets have no inode, hence no owner
                lport = _port_of(parts[1])
                (exact if local_port in (None, lport) else loose).append((inode, lport))
        pos = data.find(needle, pos + len(needle))
    return exact, loose


def search_unconnected(data: bytes, local_port: int) -> list[tuple[int, int]]:
    """Unconnected (sendto) UDP sockets bound to `local_port`: they have no remote to match."""
    out: list[tuple[int, int]] = []
    needle = b":%04X " % local_port
    pos = data.find(needle)
    while pos >= 0:
        parts = _line_at(data, pos)
        if (len(parts) > 9 and parts[1].endswith(needle[:-1]) and parts[2] in (_ZERO4, _ZERO6)
                and parts[9].isdigit() and int(parts[9])):
            out.append((int(parts[9]), local_port))
        pos = data.find(needle, pos + len(needle))
    return out


def _read_capped(path: str, cap: int) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks: list[bytes] = []
        total = 0
        while total < cap:
            chunk = os.read(fd, min(1 << 20, cap - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _readlink(path: str) -> str:
    # os.readlink, not pathlib: this runs for every fd of every process on a lookup, where
    # building Path objects would triple the cost.
    return os.readlink(path)  # noqa: PTH115


class SocketLocator:
    """Finds the processes that own a flow's socket, in every network namespace on the host.

    Thread-safe. Keeps three short-lived caches so that a burst of queries costs little each:
    the namespace list (pids per namespace, refreshed every `ns_ttl` s), the socket tables
    (reused for `table_ttl` s when they answer the query) and, per namespace, the socket-inode
    → (pid, fd) map from the last descriptor scan, each entry re-verified with one readlink.
    """

    def __init__(self, proc: str = PROC, ns_ttl: float = NS_TTL, table_ttl: float = TABLE_TTL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._proc = proc
        self._ttl = ns_ttl
        self._table_ttl = table_ttl
        self._tables: dict[tuple[str, str], tuple[float, bytes]] = {}
        self._clock = clock
        self._lock = threading.Lock()
        self._ns_at = -1e18
        self._ns: dict[str, list[int]] = {}
        self._fd_maps: dict[str, dict[int, list[tuple[int, str]]]] = {}
        self.fd_scans = 0  # full descriptor scans done; exposed for tests and metrics
        # Pids the kernel lists but libc's readdir hides (a preload rootkit), from the last
        # namespace scan, and why the kernel listing failed if it did.
        self.hidden: list[int] = []
        self.listing_error: str | None = None

    def namespaces(self, errors: list[str] | None = None, *, refresh: bool = False
                   ) -> dict[str, list[int]]:
        """Network namespace ("net:[inode]") → pids in it, from a cache at most ns_ttl old.

        `refresh` rescans unless the cache is younger than NS_MIN_AGE: a miss may be a process
        or container born since the last scan.
        """
        with self._lock:
            age = self._clock() - self._ns_at
            if age > self._ttl or (refresh and age > NS_MIN_AGE):
                self._ns = self._scan_namespaces(errors)
                self._ns_at = self._clock()
                self._fd_maps = {ns: m for ns, m in self._fd_maps.items() if ns in self._ns}
                self._tables = {k: v for k, v in self._tables.items() if k[0] in self._ns}
            return self._ns

    def _scan_namespaces(self, errors: list[str] | None) -> dict[str, list[int]]:
        found: dict[str, list[int]] = {}
        denied = 0
        # The kernel's own listing, not libc's readdir: a hidden miner still owns its socket.
        view = hidden.proc_view(self._proc)
        self.hidden, self.listing_error = view.hidden, view.error
        if view.error and errors is not None:
            errors.append(f"processes: {view.error}")
        for pid in view.pids:
            try:
                ns = _readlink(f"{self._proc}/{pid}/ns/net")
            except PermissionError:
                denied += 1
                continue
            except OSError:  # exited meanwhile, or a kernel thread without namespaces
                continue
            found.setdefault(ns, []).append(pid)
        if denied and errors is not None:
            errors.append(f"sockets: no access to the network namespace of {denied} processes")
        for pids in found.values():
            pids.sort()
        return found

    def find(self, flow: FlowSpec, errors: list[str] | None = None) -> list[SocketMatch]:
        """Sockets carrying `flow`, exact local-port matches first.

        Searches socket tables at most `table_ttl` old first and re-reads them only when that
        finds nothing: reading one table walks the kernel's whole (netns-shared) TCP hash, a
        few milliseconds each however few sockets there are, while the flows a sensor asks
        about have usually existed for seconds already.
        """
        errs = errors if errors is not None else []
        proto = flow.proto.lower()
        if proto not in ("tcp", "udp"):
            errs.append(f"sockets: unsupported protocol {flow.proto!r}")
            return []
        patterns = remote_patterns(flow.remote_ip, flow.remote_port)
        if not patterns:
            errs.append(f"sockets: not an IP address: {flow.remote_ip!r}")
            return []
        found, stale = self._search(flow, proto, patterns, errs, fresh=False)
        if stale and not any(m.exact for m in found):
            found, _ = self._search(flow, proto, patterns, errs, fresh=True)
        if not any(m.exact for m in found):
            # Perhaps a namespace (a container) appeared since the list was cached.
            known = set(self.namespaces(errs))
            if set(self.namespaces(errs, refresh=True)) != known:
                found, _ = self._search(flow, proto, patterns, errs, fresh=True)
        if found and not found[0].exact:
            # NAT between host and sensor may rewrite the source port; the remote still holds.
            errs.append(f"sockets: local port {flow.local_port} not seen; matched by remote only")
        return found

    def _search(self, flow: FlowSpec, proto: str, patterns: list[tuple[str, bytes]],
                errs: list[str], *, fresh: bool) -> tuple[list[SocketMatch], bool]:
        exact: list[SocketMatch] = []
        loose: list[SocketMatch] = []
        unconnected: list[SocketMatch] = []
        any_cached = False
        for ns, pids in self.namespaces(errs).items():
            for family, remote in patterns:
                table = proto + family
                data, cached = self._table(ns, pids, table, errs, fresh=fresh)
                any_cached |= cached
                if data is None:
                    continue
                ex, lo = search_table(data, remote, flow.local_port)
                exact += [SocketMatch(i, ns, table, p, True) for i, p in ex]
                loose += [SocketMatch(i, ns, table, p, False) for i, p in lo]
                if proto == "udp" and flow.local_port is not None and not ex:
                    unconnected += [SocketMatch(i, ns, table, p, True)
                                    for i, p in search_unconnected(data, flow.local_port)]
        return _dedupe(exact or unconnected or loose), any_cached

    def _table(self, ns: str, pids: list[int], table: str, errs: list[str], *, fresh: bool
               ) -> tuple[bytes | None, bool]:
        now = self._clock()
        with self._lock:
            hit = self._tables.get((ns, table))
        if hit is not None and not fresh and now - hit[0] <= self._table_ttl:
            return hit[1], True
        data = self._read_table(pids, table, errs)
        if data is not None:
            with self._lock:
                self._tables[(ns, table)] = (now, data)
        return data, False

    def _read_table(self, pids: list[int], table: str, errs: list[str]) -> bytes | None:
        for pid in pids:
            try:
                return _read_capped(f"{self._proc}/{pid}/net/{table}", MAX_TABLE_BYTES)
            except FileNotFoundError:
                # Either the pid exited (try the namespace's next one) or this kernel lacks
                # the family (IPv6 disabled): both mean nothing to match here.
                continue
            except OSError as exc:
                errs.append(f"sockets: {self._proc}/{pid}/net/{table}: {exc.strerror or exc}")
                return None
        return None

    def owners(self, matches: Iterable[SocketMatch], errors: list[str] | None = None
               ) -> list[Owner]:
        """Processes holding a descriptor to any of the matched sockets."""
        errs = errors if errors is not None else []
        out: list[Owner] = []
        namespaces = self.namespaces(errs)
        for m in matches:
            holders = self._verified(m.netns, m.inode)
            if not holders:
                self._scan_fds(m.netns, namespaces.get(m.netns, []), errs)
                holders = self._verified(m.netns, m.inode)
            if not holders:
                # The holder may be younger than the cached pid list.
                namespaces = self.namespaces(errs, refresh=True)
                self._scan_fds(m.netns, namespaces.get(m.netns, []), errs)
                holders = self._verified(m.netns, m.inode)
            out += [Owner(pid, m.inode, m.netns) for pid in holders
                    if Owner(pid, m.inode, m.netns) not in out]
        return out

    def _verified(self, ns: str, inode: int) -> list[int]:
        with self._lock:
            cached = list(self._fd_maps.get(ns, {}).get(inode, ()))
        target = f"socket:[{inode}]"
        alive: list[int] = []
        for pid, fd_path in cached:
            try:
                if _readlink(fd_path) == target and pid not in alive:
                    alive.append(pid)
            except OSError:
                continue
        return alive

    def _scan_fds(self, ns: str, pids: list[int], errs: list[str]) -> None:
        sockets: dict[int, list[tuple[int, str]]] = {}
        denied = 0
        for pid in pids:
            base = f"{self._proc}/{pid}/fd"
            try:
                with os.scandir(base) as it:
                    for entry in it:
                        try:
                            link = _readlink(entry.path)
                        except OSError:
                            continue
                        if link.startswith("socket:["):
                            inode = int(link[8:-1])
                            sockets.setdefault(inode, []).append((pid, entry.path))
            except PermissionError:
                denied += 1
            except OSError:
                continue
        if denied:
            errs.append(f"sockets: no access to the descriptors of {denied} processes in {ns}")
        with self._lock:
            self._fd_maps[ns] = sockets
            self.fd_scans += 1


def _dedupe(matches: list[SocketMatch]) -> list[SocketMatch]:
    seen: set[tuple[str, int]] = set()
    out: list[SocketMatch] = []
    for m in matches:
        if (m.netns, m.inode) not in seen:
            seen.add((m.netns, m.inode))
            out.append(m)
    return out


# --- CPU sampling -----------------------------------------------------------------------------


class StatLine(NamedTuple):
    """The fields of /proc/<pid>/stat this module uses."""

    comm: str
    ppid: int
    ticks: int  # utime + stime of the whole thread group
    start: int  # start time in clock ticks after boot: tells a reused pid apart
    threads: int
    nice: int = 0
    policy: int = 0  # SCHED_OTHER 0, FIFO 1, RR 2, BATCH 3, IDLE 5, DEADLINE 6


def read_stat(pid: int, proc: str = PROC) -> StatLine:
    """Parse /proc/<pid>/stat; raises OSError if the process is gone."""
    fd = os.open(f"{proc}/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
    try:
        data = os.read(fd, 4096)
    finally:
        os.close(fd)
    # comm may itself contain ") " and spaces, so split at the last parenthesis.
    close = data.rfind(b")")
    if close < 0:
        raise OSError(f"{proc}/{pid}/stat: malformed")
    comm = data[data.find(b"(") + 1 : close].decode("utf-8", "surrogateescape")
    f = data[close + 2 :].split()
    policy = int(f[38]) if len(f) > 38 else 0
    return StatLine(comm, int(f[1]), int(f[11]) + int(f[12]), int(f[19]), int(f[17]),
                    int(f[16]), policy)


class CpuSnapshot(NamedTuple):
    uptime: float  # seconds since boot when the snapshot was taken
    stats: dict[int, StatLine]


def _uptime(proc: str) -> float:
    with open(f"{proc}/uptime", "rb") as fh:  # noqa: PTH123 -- read twice per report
        return float(fh.read(64).split()[0])


def cpu_snapshot(proc: str = PROC) -> CpuSnapshot:
    """CPU ticks of every process right now (one read of /proc/<pid>/stat each)."""
    up = _uptime(proc)
    stats: dict[int, StatLine] = {}
    try:
        pids: Iterable[int] = hidden.kernel_pids(proc)  # a hidden miner burns CPU too
    except (OSError, NotImplementedError):
        pids = hidden.visible_pids(proc)
    for pid in pids:
        try:
            stats[pid] = read_stat(pid, proc)
        except (OSError, ValueError, IndexError):
            continue
    return CpuSnapshot(up, stats)


def cpu_percentages(before: CpuSnapshot, after: CpuSnapshot) -> dict[int, float]:
    """psutil cpu_percent semantics (100 = one core busy) for every process alive in `after`.

    A process born during the window is measured from its own start, and a pid reused during
    the window (different start time) counts as born during it.
    """
    out: dict[int, float] = {}
    window = after.uptime - before.uptime
    for pid, st in after.stats.items():
        prev = before.stats.get(pid)
        if prev is not None and prev.start == st.start:
            used, span = st.ticks - prev.ticks, window
        else:
            used, span = st.ticks, after.uptime - st.start / CLK_TCK
        out[pid] = round(max(0.0, used / CLK_TCK / span * 100.0), 1) if span > 0 else 0.0
    return out


# --- how a process uses the CPU and memory ------------------------------------------------------

SCHED_POLICIES = {0: "other", 1: "fifo", 2: "rr", 3: "batch", 5: "idle", 6: "deadline"}
BUSY_THREAD_PERCENT = 50.0  # a thread averaging this much of a core since its start is busy
MAX_TASKS = 4096  # threads looked at per process
MAX_MAPS_BYTES = 4 * 1024 * 1024


class CpuProfile(NamedTuple):
    nice: int
    policy: str
    lifetime_percent: float  # 100 = one core, since the process started
    busy_threads: int


def cpu_profile(pid: int, proc: str = PROC) -> CpuProfile:
    """Scheduling class and the CPU a process and each of its threads used since they started.

    Over the query's window a low-priority miner on a busy host may get little CPU; over its
    lifetime, and thread by thread, its appetite still shows. Raises OSError if it is gone.
    """
    up = _uptime(proc)
    st = read_stat(pid, proc)
    age = up - st.start / CLK_TCK
    lifetime = st.ticks / CLK_TCK / age * 100.0 if age > 0 else 0.0
    busy = 0
    task_dir = f"{proc}/{pid}/task"
    try:
        tids = [t for t in hidden.getdents_names(task_dir) if t.isdigit()]
    except (OSError, NotImplementedError):
        tids = [t for t in os.listdir(task_dir) if t.isdigit()]  # noqa: PTH208 -- hot, str only
    for tid in tids[:MAX_TASKS]:
        try:
            t = read_stat(int(tid), task_dir)
        except (OSError, ValueError, IndexError):
            continue
        t_age = up - t.start / CLK_TCK
        if t_age > 0 and t.ticks / CLK_TCK / t_age * 100.0 >= BUSY_THREAD_PERCENT:
            busy += 1
    return CpuProfile(st.nice, SCHED_POLICIES.get(st.policy, str(st.policy)),
                      round(lifetime, 1), busy)


def anon_max_kb(pid: int, proc: str = PROC) -> int:
    """The largest anonymous mapping in KiB: RandomX keeps a 2080 MiB dataset (256 MiB cache
    in light mode) in one, whatever the binary is called or packed with."""
    data = _read_capped(f"{proc}/{pid}/maps", MAX_MAPS_BYTES)
    largest = 0
    for line in data.split(b"\n"):
        parts = line.split(None, 5)
        if len(parts) < 5 or (len(parts) == 6 and not parts[5].startswith(b"[anon")):
            continue
        lo, _, hi = parts[0].partition(b"-")
        try:
            size = int(hi, 16) - int(lo, 16)
        except ValueError:
            continue
        largest = max(largest, size)
    return largest // 1024


# Pool endpoints in a miner's configuration (XMRig's config.json "url", any stratum URL).
_CONF_URL_RE = re.compile(
    rb'"url"\s*:\s*"((?:[a-z0-9+]+://)?[A-Za-z0-9.-]+:\d{2,5})"|'
    rb"\b(stratum\d?\+(?:tcp|ssl|tls)://[A-Za-z0-9.-]+:\d{2,5})", re.IGNORECASE)
_CONF_SUFFIXES = (".json", ".conf", ".cfg", ".toml", ".yaml", ".yml", ".ini", ".txt", ".config")
_CONF_NOT_FILES = ("socket:", "pipe:", "anon_inode:", "/dev/", "/proc/", "/sys/", "[")
MAX_CONF_FILES = 32
MAX_CONF_BYTES = 256 * 1024
MAX_CONF_POOLS = 8


def _conf_endpoints(path: str, *, held: bool) -> list[str]:
    # /proc/<pid>/fd/N (`held`) is a link to the very file the process holds open, followed
    # on purpose; a name in a directory is never followed if it is a symlink.
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC
    if not held:
        flags |= os.O_NOFOLLOW
    try:
        fd = os.open(path, flags)
    except OSError:
        return []
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > 16 * MAX_CONF_BYTES:
            return []
        data = os.read(fd, MAX_CONF_BYTES)
    except OSError:
        return []
    finally:
        os.close(fd)
    found: list[str] = []
    for m in _CONF_URL_RE.finditer(data):
        ep = (m.group(1) or m.group(2)).decode("ascii", "replace")
        if ep not in found:
            found.append(ep)
    return found


def config_pools(pid: int, exe: str | None, proc: str = PROC) -> list[str]:
    """"file: endpoint" for pool endpoints in configuration files the process has open, or
    beside it (its working directory, its executable's directory), where XMRig and its
    clones read config.json from. Only those places: the agent follows no path it is given."""
    base = f"{proc}/{pid}"
    candidates: list[tuple[str, str, bool]] = []  # (path to open, name to show, held open)
    try:
        for fd in os.listdir(f"{base}/fd")[:1024]:  # noqa: PTH208 -- names only, per query
            try:
                target = _readlink(f"{base}/fd/{fd}")
            except OSError:
                continue
            if not target.startswith(_CONF_NOT_FILES) and target.endswith(_CONF_SUFFIXES):
                candidates.append((f"{base}/fd/{fd}", target, True))
    except OSError:
        pass
    dirs = [(f"{base}/cwd", _safe_link(f"{base}/cwd"))]
    if exe:
        exe_dir = exe.removesuffix(" (deleted)").rsplit("/", 1)[0] or "/"
        dirs.append((f"{base}/root{exe_dir}", exe_dir))
    for real, shown in dirs:
        if shown is None:
            continue
        try:
            with os.scandir(real) as it:
                for entry in it:
                    if (entry.name.endswith(_CONF_SUFFIXES) or entry.name.startswith("config")) \
                            and entry.is_file(follow_symlinks=False):
                        shown_path = f"{shown.rstrip('/')}/{entry.name}"
                        candidates.append((f"{real}/{entry.name}", shown_path, False))
                    if len(candidates) >= MAX_CONF_FILES:
                        break
        except OSError:
            continue
    out: list[str] = []
    seen: set[str] = set()
    for path, shown, held in candidates[:MAX_CONF_FILES]:
        if shown in seen:
            continue
        seen.add(shown)
        for ep in _conf_endpoints(path, held=held):
            out.append(f"{shown}: {ep}")
            if len(out) >= MAX_CONF_POOLS:
                return out
    return out


def _safe_link(path: str) -> str | None:
    try:
        return _readlink(path)
    except OSError:
        return None


# --- process facts ----------------------------------------------------------------------------


def exe_is_suspicious(exe: str) -> bool:
    """True for binaries in scratch or hidden directories (/tmp, /dev/shm, /.x/, ~/.cache/...)."""
    path = exe.removesuffix(" (deleted)")
    if path.startswith(_SUSPICIOUS_DIRS):
        return True
    dirs = path.split("/")[1:-1]
    return any(d.startswith(".") and d not in _BENIGN_HIDDEN for d in dirs) or any(
        not d.strip() for d in dirs
    )


def container_of(cgroup_text: str) -> tuple[str | None, str | None]:
    """(cgroup path, container id) from /proc/<pid>/cgroup, for v1 and v2 hierarchies."""
    paths: list[str] = []
    for line in cgroup_text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            if parts[0] == "0" and parts[1] == "":
                paths.insert(0, parts[2])  # the unified hierarchy names the process best
            else:
                paths.append(parts[2])
    for path in paths:
        m = _CONTAINER_RE.search(path)
        if m:
            return path, m.group(1) or m.group(2)
        lxc = _LXC_RE.search(path)
        if lxc:
            return path, f"lxc:{lxc.group(1)}"
    chosen = next((p for p in paths if p != "/"), paths[0] if paths else None)
    return chosen, None


def _kb_field(text: str, key: str) -> int:
    pos = text.find(key)
    if pos < 0:
        return 0
    value = text[pos + len(key) :].split(None, 1)
    return int(value[0]) if value and value[0].isdigit() else 0


def hugepages_kb(pid: int, proc: str = PROC) -> int:
    """Transparent huge pages (smaps_rollup AnonHugePages) plus hugetlbfs pages (status)."""
    total = 0
    for name, key in (("smaps_rollup", "AnonHugePages:"), ("status", "HugetlbPages:")):
        try:
            total += _kb_field(_read_capped(f"{proc}/{pid}/{name}", 1 << 16).decode(
                "utf-8", "surrogateescape"), key)
        except (OSError, UnicodeDecodeError):
            continue
    return total


def parents(pid: int, proc: str = PROC) -> list[str]:
    """"pid:name" of each ancestor from the parent up to init (or the namespace's init)."""
    out: list[str] = []
    seen = {pid}
    try:
        ppid = read_stat(pid, proc).ppid
        while ppid > 0 and ppid not in seen and len(out) < MAX_PARENTS:
            seen.add(ppid)
            st = read_stat(ppid, proc)
            out.append(f"{ppid}:{st.comm}")
            ppid = st.ppid
    except (OSError, ValueError, IndexError):
        pass  # an ancestor exited mid-walk: the chain up to it is still true
    return out


def cap_cmdline(cmdline: list[str]) -> list[str]:
    """argv bounded in count and length: an attacker controls it and the report has a size cap."""
    return [a[:MAX_ARG_CHARS] for a in cmdline[:MAX_CMDLINE_ARGS]]


def _exe_link(pid: int, proc: str) -> str | None:
    try:
        return _readlink(f"{proc}/{pid}/exe")
    except OSError:
        return None


def process_facts(pid: int, *, cpu_percent: float, errors: list[str], proc: str = PROC,
                  others_cpu_percent: float = -1.0, hidden_pids: Iterable[int] = ()
                  ) -> ProcessFacts | None:
    """Everything the report says about one process; None (and an error) if it vanished."""
    try:
        p = psutil.Process(pid)
        with p.oneshot():
            ppid = p.ppid()
            name = p.name()
            try:
                user: str | None = p.username()
            except (psutil.AccessDenied, KeyError):
                user = None
            cmdline = cap_cmdline(p.cmdline())
            create = p.create_time()
            threads = p.num_threads()
            rss = p.memory_info().rss
        try:
            cwd: str | None = p.cwd()
        except (psutil.AccessDenied, psutil.ZombieProcess, FileNotFoundError):
            cwd = None
    except psutil.NoSuchProcess:
        errors.append(f"process {pid}: exited before its facts were read")
        return None
    except psutil.AccessDenied as exc:
        errors.append(f"process {pid}: access denied ({exc.msg or 'psutil'})")
        return None
    exe = _exe_link(pid, proc)
    deleted = exe is not None and exe.endswith(" (deleted)")
    sha: str | None = None
    markers: tuple[str, ...] = ()
    if exe is not None:
        try:
            scan = traits.scan_exe(f"{proc}/{pid}/exe", want_hash=True)
            sha, markers = scan.sha256, scan.markers
            if scan.error:
                errors.append(f"process {pid}: exe: {scan.error}")
        except OSError as exc:
            errors.append(f"process {pid}: exe: {exc.strerror or exc}")
    cgroup: str | None = None
    container: str | None = None
    try:
        cgroup, container = container_of(_read_capped(f"{proc}/{pid}/cgroup", 1 << 16).decode(
            "utf-8", "surrogateescape"))
    except OSError as exc:
        errors.append(f"process {pid}: cgroup: {exc.strerror or exc}")
    try:
        netns: str | None = _readlink(f"{proc}/{pid}/ns/net")
    except OSError:
        netns = None
    huge = hugepages_kb(pid, proc)
    exe_path = exe.removesuffix(" (deleted)") if exe is not None else None
    profile = CpuProfile(0, "other", 0.0, 0)
    try:
        profile = cpu_profile(pid, proc)
    except (OSError, ValueError, IndexError) as exc:
        errors.append(f"process {pid}: cpu profile: {exc}")
    anon = 0
    try:
        anon = anon_max_kb(pid, proc)
    except OSError as exc:
        errors.append(f"process {pid}: maps: {exc.strerror or exc}")
    pools = config_pools(pid, exe, proc)
    trait_list = traits.process_traits(name, exe_path, cmdline, markers, hugepages_kb=huge)
    if pools:
        trait_list.append("config:pool-url")
    return ProcessFacts(
        pid=pid,
        ppid=ppid,
        name=name,
        user=user,
        exe=exe_path,
        exe_deleted=deleted,
        exe_suspicious_dir=exe_path is not None and exe_is_suspicious(exe_path),
        exe_sha256=sha,
        cmdline=cmdline,
        cwd=cwd,
        start_time=create,
        cgroup=cgroup,
        container_id=container,
        netns=netns,
        threads=threads,
        cpu_percent=cpu_percent,
        rss_bytes=rss,
        hugepages_kb=huge,
        parents=parents(pid, proc),
        traits=trait_list,
        nice=profile.nice,
        sched_policy=profile.policy,
        cpu_lifetime_percent=profile.lifetime_percent,
        busy_threads=profile.busy_threads,
        others_cpu_percent=others_cpu_percent,
        anon_max_kb=anon,
        hidden=pid in set(hidden_pids),
        config_pools=pools,
    )


def top_processes(cpu: dict[int, float], n: int, *, errors: list[str], exclude: Iterable[int] = (),
                  proc: str = PROC) -> list[TopProcess]:
    """The `n` busiest processes over the sampled window, with their traits."""
    skip = set(exclude)
    out: list[TopProcess] = []
    for pid, pct in sorted(cpu.items(), key=lambda kv: (-kv[1], kv[0])):
        if len(out) >= n:
            break
        if pid in skip:
            continue
        try:
            p = psutil.Process(pid)
            with p.oneshot():
                name = p.name()
                cmdline = cap_cmdline(p.cmdline())
                rss = p.memory_info().rss
        except psutil.NoSuchProcess:
            continue
        except psutil.AccessDenied:
            errors.append(f"top {pid}: access denied")
            continue
        exe = _exe_link(pid, proc)
        markers: tuple[str, ...] = ()
        if exe is not None:
            try:
                markers = traits.scan_exe(f"{proc}/{pid}/exe", want_hash=False).markers
            except OSError:
                markers = ()
        exe_path = exe.removesuffix(" (deleted)") if exe is not None else None
        out.append(TopProcess(pid=pid, name=name, exe=exe_path, cpu_percent=pct, rss_bytes=rss,
                              traits=traits.process_traits(name, exe_path, cmdline, markers,
                                                           hugepages_kb=hugepages_kb(pid, proc))))
    return out
