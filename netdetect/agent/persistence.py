"""Persistence collectors: cron, anacron, systemd, rc scripts, ld.so.preload and shell profiles.

Reads a filesystem tree below a configurable root (the host's "/", a container's
/proc/<pid>/root, or a test tree) as hostile input: every file, directory listing, byte count
and symlink chain is capped, and anything unreadable becomes an error string, never an
exception. Only entries that matter for a mining alert are returned: those that name the
process (its exe, a distinctive argument, the pool host or the wallet), download and execute
code, or mention a miner or pool.

Walking and judging the tree does not depend on the query, so it is done once per walk (see
PersistenceCache) and each query only matches its needles against the result.
"""

from __future__ import annotations

import errno
import itertools
import os
import re
import stat
import threading
import time
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from netdetect.agent.schema import PersistenceEntry
from netdetect.agent.traits import MINER_NAMES, MONERO_WALLET_RE

MAX_TEXT = 512  # characters of an entry's text kept in the report
MAX_LINE = 8192  # characters of a line examined; real entries are far shorter
MAX_SYMLINKS = 40  # the kernel's own limit for one path walk
CACHE_TTL = 5.0  # seconds one walk of a tree serves queries before the next re-stats it
CACHE_BYTES = 8 * 1024 * 1024  # file bytes whose lines are kept between walks, all trees
MAX_JUDGED = 100_000  # lines whose needle-free judgement is remembered between walks
RACY_SECONDS = 2.0  # a file modified this recently is re-read next walk whatever its stat says

T_CRON = "T1053.003"
T_SYSTEMD_SERVICE = "T1543.002"
T_SYSTEMD_TIMER = "T1053.006"
T_RC = "T1037.004"
T_PRELOAD = "T1574.006"
T_PROFILE = "T1546.004"

# Programs that appear in countless legitimate entries: naming one is not naming the miner,
# and following one "one level down" would only read a system binary.
_PROGRAMS = frozenset({
    "sh", "bash", "dash", "zsh", "ksh", "csh", "tcsh", "fish", "busybox", "env", "nohup", "sudo",
    "su", "doas", "exec", "timeout", "nice", "ionice", "setsid", "screen", "tmux", "flock",
    "chronic", "run-parts", "cron", "crond", "anacron", "systemd", "systemctl", "init", "sleep",
    "true", "false", "test", "cat", "echo", "printf", "cd", "kill", "pkill", "killall", "ps",
    "grep", "sed", "awk", "find", "xargs", "chmod", "chown", "mkdir", "rm", "cp", "mv", "ln",
    "tar", "gzip", "curl", "wget", "python", "python2", "python3", "perl", "ruby", "node", "php",
    "java", "lua", "logger", "date", "touch", "[",
})
# Script names too common to identify anything by themselves (they are still followed).
_GENERIC = _PROGRAMS | {"start", "stop", "restart", "run", "main", "daemon", "service", "server",
                        "update", "start.sh", "run.sh", "init.sh", "install.sh", "setup.sh"}
_PYTHON_RE = re.compile(r"^(?:python|pypy)\d*(?:\.\d+)*$")
_ASSIGNMENT_RE = re.compile(r"^[A-Za-z_]\w*\s*=")
_PROC_ROOT_RE = re.compile(r"^/proc/\d+/root$")

# Hosts of large public pools, as mining malware configures them (a partial list: the network
# side supplies the exact pool host of the flow through the query).
_POOL_WORDS = (
    "minexmr",
    "supportxmr",
    "moneroocean",
    "nanopool",
    "hashvault",
    "c3pool",
    "xmrpool",
    "monerohash",
    "herominers",
    "2miners",
    "f2pool",
    "unmineable",
    "nicehash",
    "ethermine",
    "miningpoolhub",
    "kryptex",
    "zephyr.herominers",
)
_MINER_TEXT_RE = re.compile(
    r"stratum\d?\+(?:tcp|ssl|tls)://|--donate-level|--cpu-priority|--randomx"
    r"|(?<![\w-])(?:" + "|".join(re.escape(n) for n in MINER_NAMES) + r")(?![\w-])"
    r"|(?<![\w-])(?:" + "|".join(re.escape(p) for p in _POOL_WORDS) + r")\.",
    re.IGNORECASE,
)
_SHELL = r"(?:sudo\s+)?(?:/[\w/.-]{0,64}/)?(?:ba|da|z|k|a)?sh\b"
# Bounded quantifiers keep every pattern linear in the line length even on hostile input.
_DOWNLOAD_EXEC = (
    re.compile(r"\b(?:curl|wget|fetch|tftp|lwp-download)\b[^\n|;&]{0,400}\|\s*" + _SHELL),
    re.compile(r"\b(?:curl|wget)\b[^\n|;&]{0,400}\|\s*(?:sudo\s+)?(?:/\S{0,64}/)?"
               r"(?:python[\d.]*|perl|ruby|php)\b"),
    re.compile(r"\bbase64\s+(?:-\w*d\w*|--decode)\b[^\n]{0,400}?\|\s*" + _SHELL),
    re.compile(r"\b(?:ba|da|z)?sh\s+(?:-c\s+)?[\"']?\$\(\s*(?:curl|wget)\b"),
    re.compile(r"<\(\s*(?:curl|wget)\b"),
    re.compile(r"\b(?:curl|wget)\b[^\n;|&]{0,400}?(?:\s-o|\s-O|--output(?:-document)?[= ])\s*\S+"
               r"[^\n]{0,200}?(?:&&|;|\n)\s*chmod\s+(?:[+ugoa]*\+?x|[0-7]{3,4})\b"),
    re.compile(r"/dev/(?:tcp|udp)/[\w.-]+/\d+"),
)
_DOWNLOAD_HINTS = ("curl", "wget", "fetch", "tftp", "base64", "/dev/tcp", "/dev/udp", "lwp-")
_ABS_PATH_RE = re.compile(r"(?<![\w./~-])(/(?:[\w.+@%-]+/)*[\w.+@%-]+)")
_HOST_PORT_RE = re.compile(r"^(?:[a-z][\w+.-]*://)?([A-Za-z0-9.-]+\.[A-Za-z]{2,}|"
                           r"\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}")
_BOOT_TARGETS = frozenset({"multi-user.target", "default.target", "graphical.target",
                           "basic.target", "sysinit.target", "network.target",
                           "network-online.target", "timers.target"})
_EXEC_KEYS = frozenset({"ExecStart", "ExecStartPre", "ExecStartPost", "ExecStop", "ExecStopPost",
                        "ExecReload", "ExecCondition"})
_TIMER_TRIGGERS = ("OnCalendar", "OnBootSec", "OnStartupSec", "OnActiveSec", "OnUnitActiveSec",
                   "OnUnitInactiveSec")


@dataclass(frozen=True, slots=True)
class Limits:
    """Caps that bound the work one collection does on a hostile or enormous tree."""

    file_bytes: int = 1024 * 1024
    total_bytes: int = 64 * 1024 * 1024
    files: int = 5000
    dir_entries: int = 2048
    homes: int = 256
    entries: int = 200
    errors: int = 100
    seconds: float = 5.0


class Needles:
    """What identifies the flow's process in a line of text.

    Distinctive only: the exe path, a non-generic exe basename, absolute paths and pool
    URLs/wallets among the arguments, the pool host and wallet the network side saw. "bash",
    "/bin/sh" or "python3" never count on their own.
    """

    def __init__(self, paths: Iterable[str] = (), names: Iterable[str] = (),
                 words: Iterable[str] = ()) -> None:
        self.paths = sorted({p for p in paths if len(p) > 1}, key=len, reverse=True)
        self.names = sorted({n for n in names if len(n) >= 3 and not _is_generic(n)},
                            key=len, reverse=True)
        self.words = sorted({w.lower() for w in words if len(w) >= 4}, key=len, reverse=True)
        alts = [re.escape(p) for p in self.paths] + [re.escape(n) for n in self.names]
        self._path_re = (re.compile(r"(?<![\w.-])(?:" + "|".join(alts) + r")(?![\w-])")
                         if alts else None)
        self._word_re = (re.compile(r"(?<![\w-])(?:" + "|".join(re.escape(w) for w in self.words)
                                    + r")(?![\w-])", re.IGNORECASE) if self.words else None)

    @classmethod
    def build(cls, *, exe: str | None = None, cmdline: Iterable[str] = (),
              pool_host: str | None = None, wallet: str | None = None) -> Needles:
        paths: list[str] = []
        names: list[str] = []
        words: list[str] = []
        if exe:
            exe = exe.removesuffix(" (deleted)")
            if not _is_generic(_base(exe)):
                paths.append(exe)
                names.append(_base(exe))
        args = list(cmdline)
        if args and not _is_generic(_base(args[0])) and "/" in args[0] and " " not in args[0]:
            paths.append(args[0])
            names.append(_base(args[0]))
        for arg in args[1:]:
            value = arg.partition("=")[2] if arg.startswith("--") and "=" in arg else arg
            if value.startswith("-"):
                continue
            if value.startswith("/") and not _is_generic(_base(value)):
                paths.append(value)
                names.append(_base(value))
            host = _HOST_PORT_RE.match(value)
            if host:
                words.append(host.group(1))
            words += MONERO_WALLET_RE.findall(value)
        if pool_host:
            words.append(pool_host.strip().rstrip("."))
        if wallet:
            words.append(wallet.strip())
        return cls(paths, names, words)

    def __bool__(self) -> bool:
        return self._path_re is not None or self._word_re is not None

    def references(self, text: str) -> bool:
        return bool((self._path_re is not None and self._path_re.search(text))
                    or (self._word_re is not None and self._word_re.search(text)))


def _base(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def _is_generic(name: str) -> bool:
    return name in _GENERIC or bool(_PYTHON_RE.match(name)) or len(name) < 3


def is_download_exec(text: str) -> bool:
    """curl/wget piped to a shell, base64 -d | sh, $(curl ...), download && chmod +x, /dev/tcp."""
    low = text.lower()
    if not any(h in low for h in _DOWNLOAD_HINTS):
        return False
    return any(r.search(text) for r in _DOWNLOAD_EXEC)


def mentions_miner(text: str) -> bool:
    """A stratum URL, a miner's name or option, a known pool host, or a Monero wallet."""
    return bool(_MINER_TEXT_RE.search(text) or MONERO_WALLET_RE.search(text))




class _BudgetError(Exception):
    """The collection ran out of one of its caps; stops the walk, recorded once."""


class _Refused(Exception):  # noqa: N818 - a verdict on one path, recorded as its error
    """A path the walk will not read, for a reason given as the message."""


class _NotRegular(Exception):  # noqa: N818
    """What a file was expected to be is not a regular file; `mode` says what it is."""

    def __init__(self, mode: int) -> None:
        super().__init__("not a regular file")
        self.mode = mode


def _home_of(path: str) -> str | None:
    """The home directory (inside root) that `path` lies in, if any: /root or /home/<user>."""
    parts = path.split("/")
    if len(parts) >= 3 and parts[1] == "home" and parts[2]:
        return "/home/" + parts[2]
    if len(parts) >= 2 and parts[1] == "root":
        return "/root"
    return None


# dev, inode, size, mtime_ns, ctime_ns: any write, rename over, or truncation changes one.
_StatKey = tuple[int, int, int, int, int]


def _stat_key(st: os.stat_result) -> _StatKey:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@dataclass(frozen=True, slots=True)
class _FileRec:
    """One file as read: its non-blank, non-comment lines, kept while its stat key holds."""

    key: _StatKey
    mtime: float
    lines: tuple[tuple[int, str], ...]  # (line number, raw line)
    binary: bool  # a NUL byte in the first block
    size: int  # bytes examined; a cache hit still spends them from the byte cap
    truncated: str | None  # the "examined the first" error, repeated on every walk
    # Written so recently that a second write within the filesystem's timestamp granularity
    # could leave the stat key unchanged: such a record is re-read on the next walk.
    racy: bool


@dataclass(slots=True)
class _Verdict:
    refs: bool = False
    dl: bool = False
    miner: bool = False

    def any(self) -> bool:
        return self.refs or self.dl or self.miner

    def merge(self, other: _Verdict) -> None:
        self.refs |= other.refs
        self.dl |= other.dl
        self.miner |= other.miner


@dataclass(frozen=True, slots=True)
class _Cand:
    """A line that becomes an entry when it, or a script it runs, judges positive."""

    kind: str
    path: str  # as seen inside root
    line: int
    text: int  # index of the judged text (the line's first MAX_LINE characters)
    out: str  # the text an entry carries
    mtime: float
    technique: str
    reboot: bool
    dl: bool
    miner: bool
    always: bool
    scripts: tuple[str, ...]  # scripts the command runs, in order, followed one level down
    unit: str | None  # systemd service ("<group>:<name>") whose verdict this line feeds


@dataclass(frozen=True, slots=True)
class _Timer:
    """A systemd timer: reported when the service it starts judged positive."""

    path: str
    line: int
    out: str
    mtime: float
    reboot: bool
    target: str  # "<group>:<service name>"
    target_path: str


@dataclass(frozen=True, slots=True)
class _Script:
    dl: bool
    miner: bool
    first: int  # texts[first:end] are its lines
    end: int


@dataclass(slots=True)
class _Unit:
    name: str
    path: str
    mtime: float
    # (file, line, text, mtime): drop-ins are reported as the file the line lives in.
    execs: list[tuple[str, int, str, float]] = field(default_factory=list)
    restart: str | None = None
    wanted_by: list[str] = field(default_factory=list)
    timer_unit: str | None = None
    triggers: list[tuple[int, str]] = field(default_factory=list)


class _Snapshot:
    """Every candidate line of one walk, judged for everything that does not need the needles.

    Matching a query's needles is a few str.find calls over one joined text (C speed) and a
    regex check of only the lines they hit, instead of a regex over every line of the tree.
    """

    def __init__(self, items: list[_Cand | _Timer], texts: list[str], owner: list[int | str],
                 scripts: dict[str, _Script | None], errors: list[str]) -> None:
        self.items = items
        self.texts = texts
        self.owner = owner  # per text: the item index, or the script path it belongs to
        self.scripts = scripts
        self.errors = errors
        self.starts: list[int] = []
        pos = 0
        for t in texts:
            self.starts.append(pos)
            pos += len(t) + 1
        self.blob = "\n".join(texts)
        # Lowercased for the case-insensitive words; a non-ASCII line is blanked (same length,
        # so offsets agree) and always checked, since Unicode case mapping can change lengths.
        self.lower = "\n".join(t.lower() if t.isascii() else "\0" * len(t) for t in texts)
        self.odd = tuple(i for i, t in enumerate(texts) if not t.isascii())
        by_script: dict[str, list[int]] = {}
        static: list[int] = []
        for i, item in enumerate(items):
            if isinstance(item, _Timer):
                static.append(i)
                continue
            for s in item.scripts:
                by_script.setdefault(s, []).append(i)
            info = [scripts.get(s) for s in item.scripts]
            if item.dl or item.miner or item.always or any(
                    x is not None and (x.dl or x.miner) for x in info):
                static.append(i)
        self.static = tuple(static)
        self.by_script = by_script

    def _hits(self, hay: str, lit: str, out: set[int]) -> None:
        starts = self.starts
        pos = hay.find(lit)
        while pos >= 0:
            i = bisect_right(starts, pos) - 1
            out.add(i)
            if i + 1 >= len(starts):
                break
            pos = hay.find(lit, starts[i + 1])

    def references(self, needles: Needles) -> set[int]:
        """Indices of the texts that name the process, by the needles' own regexes."""
        if not needles:
            return set()
        if any(not w.isascii() for w in needles.words):
            candidates: Iterable[int] = range(len(self.texts))
        else:
            hits: set[int] = set(self.odd)
            for lit in (*needles.paths, *needles.names):
                self._hits(self.blob, lit, hits)
            for word in needles.words:
                self._hits(self.lower, word, hits)
            candidates = hits
        return {i for i in candidates if needles.references(self.texts[i])}

    def match(self, needles: Needles, prefix: str, max_entries: int) -> list[PersistenceEntry]:
        refs = self.references(needles)
        ref_scripts: set[str] = set()
        chosen = set(self.static)
        for i in refs:
            owner = self.owner[i]
            if isinstance(owner, str):
                ref_scripts.add(owner)
            else:
                chosen.add(owner)
        for s in ref_scripts:
            chosen.update(self.by_script.get(s, ()))
        entries: list[PersistenceEntry] = []
        matched: dict[str, _Verdict] = {}
        for idx in sorted(chosen):
            item = self.items[idx]
            if isinstance(item, _Timer):
                hit = matched.get(item.target)
                if hit is not None and len(entries) < max_entries:
                    entries.append(PersistenceEntry(
                        kind="systemd-timer", path=prefix + item.path, line=item.line,
                        text=item.out, mtime=item.mtime, references_process=hit.refs,
                        download_exec=hit.dl, reboot=item.reboot, via=prefix + item.target_path,
                        technique=T_SYSTEMD_TIMER))
                continue
            verdict = _Verdict(item.text in refs, item.dl, item.miner)
            via = None
            for s in item.scripts:
                info = self.scripts.get(s)
                if info is None:
                    continue
                below = _Verdict(s in ref_scripts, info.dl, info.miner)
                if below.any():
                    verdict.merge(below)
                    via = s
                    break
            if item.unit is not None and verdict.any():
                matched.setdefault(item.unit, _Verdict()).merge(verdict)
            if (verdict.any() or item.always) and len(entries) < max_entries:
                entries.append(PersistenceEntry(
                    kind=item.kind, path=prefix + item.path, line=item.line, text=item.out,
                    mtime=item.mtime, references_process=verdict.refs, download_exec=verdict.dl,
                    reboot=item.reboot, via=via, technique=item.technique))
        return entries


def _root_path(root: str) -> str:
    path = os.path.abspath(root)  # noqa: PTH100 -- Path.resolve would follow the magic link
    # /proc/<pid>/root is a magic link into another mount namespace: resolving it as a symlink
    # gives "/" (the path as that namespace sees it) and would scan this host's tree instead.
    if _PROC_ROOT_RE.match(path):
        return path
    return os.path.realpath(path)


class _Walker:
    """One walk of a tree: reads (or reuses) every file, records candidates, judges no needles."""

    def __init__(self, root: str, limits: Limits, prefix: str, clock: Callable[[], float], *,
                 files: dict[str, _FileRec] | None = None,
                 judged: dict[str, tuple[bool, bool]] | None = None,
                 cache_bytes: int = 0) -> None:
        self.root = _root_path(root)
        self.root_slash = "" if self.root == "/" else self.root
        self.limits = limits
        self.prefix = prefix
        self.clock = clock
        self.deadline = clock() + limits.seconds
        self.errors: list[str] = []
        self.files_read = 0
        self.bytes_read = 0
        self.seen_real: set[str] = set()
        self.dirs: dict[str, list[str]] = {}  # directory inside root -> its host components
        self.home_owners: dict[str, int] = {}
        self.old_files = files or {}
        self.old_judged = judged or {}
        self.files: dict[str, _FileRec] = {}
        self.judged: dict[str, tuple[bool, bool]] = {}
        self.cache_bytes = cache_bytes
        self.cached_bytes = 0
        self.reused = 0  # files whose previous reading was still valid (tests, metrics)
        self.items: list[_Cand | _Timer] = []
        self.texts: list[str] = []
        self.owner: list[int | str] = []
        self.scripts: dict[str, _Script | None] = {}

    # --- reading a hostile tree ---------------------------------------------------------------

    def error(self, path: str, reason: str) -> None:
        if len(self.errors) < self.limits.errors:
            self.errors.append(f"persistence: {self.prefix}{path}: {reason}")

    def resolve(self, path: str) -> tuple[str, os.stat_result | None]:
        """Host path of `path` read inside root, following symlinks as if root were "/".

        Also the lstat of what it names (None if that is missing), taken on the way. Resolved
        directories are remembered for the rest of the walk: most files share a few of them.
        """
        parent, _, name = path.rpartition("/")
        if parent and name not in ("", ".", ".."):
            base = self.dirs.get(parent)
            if base is None:
                host_dir, _ = self.resolve(parent)
                base = self.dirs[parent] = [p for p in host_dir[len(self.root_slash):].split("/")
                                            if p]
            todo = [name]
            done = list(base)
        else:
            todo = [p for p in path.split("/") if p]
            done = []
        links = 0
        last: os.stat_result | None = None
        confine: str | None = None
        while todo:
            part = todo.pop(0)
            if part == ".":
                continue
            if part == "..":
                if done:
                    done.pop()
                last = None
                continue
            host = self.root_slash + "/" + "/".join([*done, part])
            try:
                st = os.lstat(host)
            except FileNotFoundError:
                if todo:
                    raise
                done.append(part)
                last = None
                break
            if stat.S_ISLNK(st.st_mode):
                links += 1
                if links > MAX_SYMLINKS:
                    raise OSError(errno.ELOOP, "too many levels of symbolic links")
                if st.st_uid != 0:
                    # A user's link may point anywhere (~/.profile -> /etc/shadow): it is
                    # followed only where it stays inside that user's own home.
                    home = _home_of("/" + "/".join([*done, part]))
                    if home is None:
                        raise _Refused(f"symbolic link owned by uid {st.st_uid} not followed")
                    if confine is None or len(home) < len(confine):
                        confine = home
                target = os.readlink(host)  # noqa: PTH115 -- resolved by hand to stay in root
                if target.startswith("/"):
                    done = []
                todo = [p for p in target.split("/") if p] + todo
                last = None
            else:
                done.append(part)
                last = st
        inside = "/" + "/".join(done)
        if confine is not None and not (inside == confine or inside.startswith(confine + "/")):
            raise _Refused(f"symbolic link leaves {confine}")
        return self.root_slash + inside, last

    def check_budget(self) -> None:
        if self.clock() > self.deadline:
            raise _BudgetError(f"time budget of {self.limits.seconds} s spent")
        if self.files_read >= self.limits.files:
            raise _BudgetError(f"file cap of {self.limits.files} reached")
        if self.bytes_read >= self.limits.total_bytes:
            raise _BudgetError(f"byte cap of {self.limits.total_bytes} reached")

    def _reuse(self, real: str, st: os.stat_result | None) -> _FileRec | None:
        if st is None or not stat.S_ISREG(st.st_mode):
            return None
        rec = self.old_files.get(real)
        if (rec is None or rec.racy or rec.key != _stat_key(st)
                or rec.size > self.limits.total_bytes - self.bytes_read):
            return None
        return rec

    def _keep(self, real: str, rec: _FileRec) -> None:
        if self.cached_bytes + rec.size <= self.cache_bytes:
            self.files[real] = rec
            self.cached_bytes += rec.size

    def read(self, path: str, *, text_only: bool = False) -> tuple[_FileRec, str] | None:
        """(the file's lines and facts, real host path) of a regular file under root, or None
        (and an error).

        `text_only` gives up silently on a file whose first block holds a NUL byte: a binary
        reached by following a command is not worth a megabyte of reading.
        """
        self.check_budget()
        try:
            real, st = self.resolve(path)
            rec = self._reuse(real, st)
            if rec is not None:
                self.reused += 1
                self._keep(real, rec)
                if text_only and rec.binary:
                    return None
                self.files_read += 1
                self.bytes_read += rec.size
                if rec.truncated is not None:
                    self.error(path, rec.truncated)
                return rec, real
            fd, st = self.open_file(path, real)
        except FileNotFoundError:
            return None
        except _Refused as exc:
            self.error(path, str(exc))
            return None
        except _NotRegular as exc:
            # Directories are skipped where a file was expected; /dev/null is how systemd
            # masks a unit. Anything else (FIFO, device, socket) is worth a line.
            if not stat.S_ISDIR(exc.mode) and real != self.root_slash + "/dev/null":
                self.error(path, "not a regular file")
            return None
        except OSError as exc:
            self.error(path, exc.strerror or str(exc))
            return None
        try:
            cap = min(self.limits.file_bytes, self.limits.total_bytes - self.bytes_read)
            data = os.read(fd, min(cap, 4096))
            binary = b"\0" in data
            if text_only and binary:
                return None
            while len(data) < cap:
                more = os.read(fd, cap - len(data))
                if not more:
                    break
                data += more
        except OSError as exc:
            self.error(path, exc.strerror or str(exc))
            return None
        finally:
            os.close(fd)
        self.files_read += 1
        self.bytes_read += len(data)
        truncated = None
        if st.st_size > len(data):
            truncated = f"{st.st_size} bytes; examined the first {len(data)}"
            self.error(path, truncated)
        lines = tuple((no, raw) for no, raw in
                      enumerate(data.decode("utf-8", "surrogateescape").splitlines(), 1)
                      if raw.strip() and not raw.strip().startswith("#"))
        rec = _FileRec(key=_stat_key(st), mtime=st.st_mtime, lines=lines, binary=binary,
                       size=len(data), truncated=truncated,
                       racy=time.time() - st.st_mtime < RACY_SECONDS)
        self._keep(real, rec)
        return rec, real

    def listdir(self, path: str) -> list[str]:
        """Sorted names in a directory under root (capped), [] if it is missing."""
        self.check_budget()
        try:
            real, _ = self.resolve(path)
            names: list[str] = []
            dfd = self.open_beneath(real, os.O_RDONLY | os.O_DIRECTORY)
            try:
                entries = list(itertools.islice(os.scandir(dfd), self.limits.dir_entries + 1))
            finally:
                os.close(dfd)
            for entry in entries:
                if len(names) >= self.limits.dir_entries:
                    self.error(path, f"more than {self.limits.dir_entries} entries; "
                                     "examined the first")
                    break
                names.append(entry.name)
        except (FileNotFoundError, NotADirectoryError):
            return []
        except _Refused as exc:
            self.error(path, str(exc))
            return []
        except OSError as exc:
            if exc.errno == errno.ELOOP and self.root_slash:
                # O_NOFOLLOW met a link that resolve() had not: the tree changed under us.
                self.error(path, "changed while being read")
                return []
            self.error(path, exc.strerror or str(exc))
            return []
        return sorted(names)

    def open_beneath(self, real: str, flags: int) -> int:
        """An fd for host path `real` (symlink-free, from resolve), opened one component at a
        time below root with O_NOFOLLOW: a directory swapped for a link after resolve() looked
        at it makes the open fail instead of leading out of the tree."""
        parts = [p for p in real[len(self.root_slash):].split("/") if p]
        # The root itself is followed on purpose: /proc/<pid>/root is a magic link.
        dfd = os.open(self.root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for part in parts[:-1]:
                nxt = os.open(part, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                              dir_fd=dfd)
                os.close(dfd)
                dfd = nxt
            if not parts:
                return os.open(".", flags | os.O_CLOEXEC, dir_fd=dfd)
            return os.open(parts[-1], flags | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
        finally:
            os.close(dfd)

    def open_file(self, path: str, real: str) -> tuple[int, os.stat_result]:
        """A read fd and the fstat of the regular file at `real`; its type and owner are
        checked on an O_PATH handle, before anything opens it for reading (opening a FIFO can
        block, opening a device can act on it)."""
        pfd = self.open_beneath(real, os.O_PATH)
        try:
            st = os.fstat(pfd)
            if not stat.S_ISREG(st.st_mode):
                raise _NotRegular(st.st_mode)
            self.check_owner(path, st)
            # Reopening the O_PATH handle reads exactly the inode just checked.
            fd = os.open(f"/proc/self/fd/{pfd}", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        finally:
            os.close(pfd)
        try:
            now = os.fstat(fd)
        except OSError:
            os.close(fd)
            raise
        if not stat.S_ISREG(now.st_mode) or (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
            os.close(fd)
            raise _Refused("changed while being opened")
        return fd, now

    def check_owner(self, path: str, st: os.stat_result) -> None:
        """A file in a home must belong to that home's owner, or to root and not be a hard link
        (a link to /etc/shadow made where the kernel does not forbid it)."""
        home = _home_of(path)
        if home is None:
            return
        uid = self.home_owners.get(home)
        if uid is None:
            try:
                uid = os.lstat(self.root_slash + home).st_uid
            except OSError:
                uid = -1
            self.home_owners[home] = uid
        if st.st_uid == uid and uid != -1:
            return
        if st.st_uid == 0 and st.st_nlink == 1:
            return
        raise _Refused(f"owned by uid {st.st_uid}, not by the home's owner")

    def first_read(self, real: str) -> bool:
        """False if this real file was already examined (/lib → /usr/lib, wants/ symlinks)."""
        if real in self.seen_real:
            return False
        self.seen_real.add(real)
        return True

    # --- judging text, needles aside ----------------------------------------------------------

    def static(self, text: str) -> tuple[bool, bool]:
        """(download-and-execute, mentions a miner) for a line; remembered across walks."""
        got = self.judged.get(text)
        if got is None:
            got = self.old_judged.get(text)
            if got is None:
                got = (is_download_exec(text), mentions_miner(text))
            if len(self.judged) < MAX_JUDGED:
                self.judged[text] = got
        return got

    def add_text(self, text: str, owner: int | str) -> int:
        self.texts.append(text)
        self.owner.append(owner)
        return len(self.texts) - 1

    def script_paths(self, command: str) -> tuple[str, ...]:
        """The scripts a command runs (one level down), read now so queries only match them."""
        out: list[str] = []
        for cand in _ABS_PATH_RE.findall(command)[:6]:
            base = _base(cand)
            if cand.startswith(("/dev/", "/proc/", "/sys/")) or base in _PROGRAMS or (
                _PYTHON_RE.match(base)
            ):
                continue
            if cand not in self.scripts:
                self.scripts[cand] = self._script(cand)
            out.append(cand)
        return tuple(out)

    def _script(self, path: str) -> _Script | None:
        got = self.read(path, text_only=True)  # a binary's own name in the entry is what counts
        if got is None:
            return None
        rec, _ = got
        first = len(self.texts)
        dl = miner = False
        for _, raw in rec.lines:
            text = raw[:MAX_LINE]
            d, m = self.static(text)
            dl |= d
            miner |= m
            self.add_text(text, path)
        return _Script(dl, miner, first, len(self.texts))

    def add(self, *, kind: str, path: str, line: int, text: str, mtime: float, technique: str,
            reboot: bool, command: str | None, follow: bool = True, always: bool = False,
            unit: str | None = None) -> None:
        judged = text[:MAX_LINE]
        dl, miner = self.static(judged)
        scripts = self.script_paths(command) if follow and command is not None else ()
        index = len(self.items)
        self.items.append(_Cand(
            kind=kind, path=path, line=line, text=self.add_text(judged, index),
            out=text.strip()[:MAX_TEXT], mtime=mtime, technique=technique, reboot=reboot, dl=dl,
            miner=miner, always=always, scripts=scripts, unit=unit))

    # --- the sources ----------------------------------------------------------------------------

    def crontab(self, path: str, *, system: bool, kind: str = "cron") -> None:
        got = self.read(path)
        if got is None:
            return
        rec, real = got
        if not self.first_read(real):
            return
        for no, raw in rec.lines:
            line = raw.strip()
            command: str | None
            reboot = False
            if kind == "anacron":
                parts = line.split(None, 3)
                command = parts[3] if len(parts) == 4 and "=" not in parts[0] else None
            elif line.startswith("@"):
                parts = line.split(None, 2 if system else 1)
                command = parts[-1] if len(parts) == (3 if system else 2) else None
                reboot = parts[0].lower() == "@reboot"
            elif _ASSIGNMENT_RE.match(line):
                command = None  # an environment assignment, still judged as text
            else:
                parts = line.split(None, 6 if system else 5)
                command = parts[-1] if len(parts) == (7 if system else 6) else None
            self.add(kind=kind, path=path, line=no, text=raw, mtime=rec.mtime, technique=T_CRON,
                     reboot=reboot, command=command)

    def script(self, path: str, *, kind: str, technique: str, reboot: bool) -> None:
        got = self.read(path)
        if got is None:
            return
        rec, real = got
        if not self.first_read(real):
            return
        for no, raw in rec.lines:
            self.add(kind=kind, path=path, line=no, text=raw, mtime=rec.mtime,
                     technique=technique, reboot=reboot, command=raw.strip())

    def scripts_in(self, directory: str, *, kind: str, technique: str, reboot: bool) -> None:
        for name in self.listdir(directory):
            self.script(f"{directory}/{name}", kind=kind, technique=technique, reboot=reboot)

    def preload(self, path: str) -> None:
        got = self.read(path)
        if got is None:
            return
        rec, _ = got
        # Every preloaded library is reported: rare on real hosts, and the classic way to hide
        # a miner from ps/top (libprocesshider), so the process itself may be invisible.
        for no, raw in rec.lines:
            for lib in raw.split("#", 1)[0].replace(":", " ").split():
                self.add(kind="ld-preload", path=path, line=no, text=lib, mtime=rec.mtime,
                         technique=T_PRELOAD, reboot=True, command=None, always=True)

    def parse_unit(self, path: str, name: str, units: dict[str, _Unit]) -> None:
        got = self.read(path)
        if got is None:
            return
        rec, real = got
        if not self.first_read(real):
            return
        unit = units.get(name)
        if unit is None:
            unit = units[name] = _Unit(name=name, path=path, mtime=rec.mtime)
        for no, raw in rec.lines:
            key, eq, value = raw.strip().partition("=")
            if not eq:
                continue
            key = key.strip()
            value = value.strip()
            if key in _EXEC_KEYS and value:
                unit.execs.append((path, no, raw.strip(), rec.mtime))
            elif key == "Restart":
                unit.restart = value
            elif key in ("WantedBy", "RequiredBy"):
                unit.wanted_by += value.split()
            elif key == "Unit":
                unit.timer_unit = value
            elif key in _TIMER_TRIGGERS:
                unit.triggers.append((no, raw.strip()))

    def systemd(self, dirs: list[str], group: str) -> None:
        units: dict[str, _Unit] = {}
        enabled: set[str] = set()
        wants: list[tuple[str, str]] = []
        for d in dirs:
            for name in self.listdir(d):
                sub = f"{d}/{name}"
                if name.endswith((".service", ".timer")):
                    self.parse_unit(sub, name, units)
                elif name.endswith((".service.d", ".timer.d")):
                    for conf in self.listdir(sub):
                        if conf.endswith(".conf"):
                            self.parse_unit(f"{sub}/{conf}", name[:-2], units)
                elif name.endswith((".wants", ".requires")):
                    wants.append((sub, name))
        # wants/ links come last: each file is read once, and the entry must name the unit
        # file an operator edits, not the enablement symlink that sorts before it.
        for sub, name in wants:
            boot = name.rsplit(".", 1)[0] in _BOOT_TARGETS
            for link in self.listdir(sub):
                if boot:
                    enabled.add(link)
                if link.endswith((".service", ".timer")):
                    # A unit reachable only through a wants/ link is still started.
                    self.parse_unit(f"{sub}/{link}", link, units)
        for name, unit in units.items():
            if not name.endswith(".service"):
                continue
            reboot = name in enabled or any(t in _BOOT_TARGETS for t in unit.wanted_by)
            context = "; ".join(x for x in (
                f"Restart={unit.restart}" if unit.restart else "",
                f"WantedBy={' '.join(unit.wanted_by)}" if unit.wanted_by else "") if x)
            for path, no, line, mtime in unit.execs:
                command = line.partition("=")[2].lstrip("@-:+!")
                text = f"{line} [{context}]" if context else line
                self.add(kind="systemd-service", path=path, line=no, text=text, mtime=mtime,
                         technique=T_SYSTEMD_SERVICE, reboot=reboot, command=command,
                         unit=f"{group}:{name}")
        for name, unit in units.items():
            if not name.endswith(".timer"):
                continue
            target = unit.timer_unit or name[: -len(".timer")] + ".service"
            service = units.get(target)
            if service is None or not target.endswith(".service"):
                continue  # nothing this walk read can make the timer's service match
            text = "; ".join([t for _, t in unit.triggers] + [f"Unit={target}"])
            self.items.append(_Timer(
                path=unit.path, line=unit.triggers[0][0] if unit.triggers else 0,
                out=text[:MAX_TEXT], mtime=unit.mtime,
                reboot=any(t.startswith(("OnBootSec", "OnStartupSec")) for _, t in unit.triggers),
                target=f"{group}:{target}", target_path=service.path))

    def homes(self) -> list[str]:
        out = ["/root"] + [f"/home/{h}" for h in self.listdir("/home")]
        if len(out) > self.limits.homes:
            self.error("/home", f"more than {self.limits.homes} homes; examined the first")
        return out[: self.limits.homes]

    def run(self) -> None:
        self.crontab("/etc/crontab", system=True)
        for name in self.listdir("/etc/cron.d"):
            self.crontab(f"/etc/cron.d/{name}", system=True)
        for period in ("hourly", "daily", "weekly", "monthly"):
            self.scripts_in(f"/etc/cron.{period}", kind="cron", technique=T_CRON, reboot=False)
        for name in self.listdir("/var/spool/cron/crontabs"):
            self.crontab(f"/var/spool/cron/crontabs/{name}", system=False)
        for name in self.listdir("/var/spool/cron"):
            if name not in ("crontabs", "atjobs", "atspool", "lastrun"):
                self.crontab(f"/var/spool/cron/{name}", system=False)
        self.crontab("/etc/anacrontab", system=True, kind="anacron")
        homes = self.homes()
        self.systemd(["/etc/systemd/system", "/run/systemd/system", "/usr/lib/systemd/system",
                      "/lib/systemd/system", "/usr/local/lib/systemd/system"], "system")
        self.systemd(["/etc/systemd/user", "/usr/lib/systemd/user",
                      *[f"{h}/.config/systemd/user" for h in homes]], "user")
        for rc in ("/etc/rc.local", "/etc/rc.d/rc.local"):
            self.script(rc, kind="rc-local", technique=T_RC, reboot=True)
        self.scripts_in("/etc/init.d", kind="init.d", technique=T_RC, reboot=True)
        self.preload("/etc/ld.so.preload")
        for prof in ("/etc/profile", "/etc/bash.bashrc", "/etc/bashrc", "/etc/zsh/zshrc"):
            self.script(prof, kind="shell-profile", technique=T_PROFILE, reboot=False)
        self.scripts_in("/etc/profile.d", kind="shell-profile", technique=T_PROFILE,
                        reboot=False)
        for home in homes:
            for dot in (".bashrc", ".bash_profile", ".bash_login", ".profile", ".zshrc"):
                self.script(f"{home}/{dot}", kind="shell-profile", technique=T_PROFILE,
                            reboot=False)

    def walk(self) -> _Snapshot:
        try:
            self.run()
        except _BudgetError as exc:
            self.errors.append(f"persistence: stopped early: {exc}")
        return _Snapshot(self.items, self.texts, self.owner, self.scripts, self.errors)


def collect_persistence(
    root: str = "/",
    needles: Needles | None = None,
    *,
    limits: Limits | None = None,
    prefix: str = "",
    clock: Callable[[], float] = time.monotonic,
) -> tuple[list[PersistenceEntry], list[str]]:
    """(entries, errors) for the tree below `root`, read afresh. Never raises for what it finds.

    Paths in entries are as seen inside root, prefixed with `prefix` (e.g. "/proc/42/root"
    when reading a container's filesystem).
    """
    lim = limits or Limits()
    snap = _Walker(root, lim, prefix, clock).walk()
    return snap.match(needles or Needles(), prefix, lim.entries), list(snap.errors)


@dataclass(slots=True)
class _RootState:
    snapshot: _Snapshot
    files: dict[str, _FileRec]
    judged: dict[str, tuple[bool, bool]]
    walked_at: float
    reused: int


class PersistenceCache:
    """collect_persistence for a stream of queries: one walk serves every query for `ttl` s.

    The expensive part of a collection (walking, reading and judging the tree) does not depend
    on the query, so it is kept; each query only matches its needles against it. After `ttl`
    the next query walks again, re-reading only files whose (device, inode, size, mtime,
    ctime) changed, so an edited crontab is seen at most `ttl` seconds late. Thread-safe;
    holds at most `max_roots` trees and `cache_bytes` of file text.
    """

    def __init__(self, ttl: float = CACHE_TTL, *, max_roots: int = 8,
                 cache_bytes: int = CACHE_BYTES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.max_roots = max_roots
        self.cache_bytes = cache_bytes
        self.clock = clock
        self.walks = 0  # full walks done; exposed for tests and metrics
        self._lock = threading.Lock()
        self._roots: OrderedDict[tuple[str, str, Limits, str], _RootState] = OrderedDict()

    def collect(self, root: str = "/", needles: Needles | None = None, *,
                limits: Limits | None = None, prefix: str = "", identity: str = ""
                ) -> tuple[list[PersistenceEntry], list[str]]:
        """Like collect_persistence, from a walk at most `ttl` old.

        `identity` tells apart trees that share a path over time (a container's
        /proc/<pid>/root, whose pid may be reused): pass its mount namespace.
        """
        lim = limits or Limits()
        snap = self._snapshot(root, lim, prefix, identity)
        return snap.match(needles or Needles(), prefix, lim.entries), list(snap.errors)

    def _snapshot(self, root: str, limits: Limits, prefix: str, identity: str) -> _Snapshot:
        key = (root, prefix, limits, identity)
        # One lock for every tree: a walk is milliseconds once files are cached, and queries
        # that arrive during it want its result anyway.
        with self._lock:
            now = self.clock()
            state = self._roots.get(key)
            if state is not None and now - state.walked_at < self.ttl:
                self._roots.move_to_end(key)
                return state.snapshot
            walker = _Walker(root, limits, prefix, self.clock,
                             files=state.files if state else None,
                             judged=state.judged if state else None,
                             cache_bytes=self.cache_bytes // self.max_roots)
            snap = walker.walk()
            self.walks += 1
            self._roots[key] = _RootState(snap, walker.files, walker.judged, self.clock(),
                                          walker.reused)
            self._roots.move_to_end(key)
            while len(self._roots) > self.max_roots:
                self._roots.popitem(last=False)
            return snap

    def reused(self, root: str = "/", *, limits: Limits | None = None, prefix: str = "",
               identity: str = "") -> int:
        """Files the last walk of this tree took from the cache instead of reading."""
        with self._lock:
            state = self._roots.get((root, prefix, limits or Limits(), identity))
            return state.reused if state is not None else 0
