"""Persistence collectors: cron, anacron, systemd, rc scripts, ld.so.preload and shell profiles.

Reads a filesystem tree below a configurable root (the host's "/", a container's
/proc/<pid>/root, or a test tree) as hostile input: every file, directory listing, byte count
and symlink chain is capped, and anything unreadable becomes an error string, never an
exception. Only entries that matter for a mining alert are returned: those that name the
process (its exe, a distinctive argument, the pool host or the wallet), download and execute
code, or mention a miner or pool.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from netdetect.agent.schema import PersistenceEntry
from netdetect.agent.traits import MINER_NAMES, MONERO_WALLET_RE

MAX_TEXT = 512  # characters of an entry's text kept in the report
MAX_LINE = 8192  # characters of a line examined; real entries are far shorter
MAX_SYMLINKS = 40  # the kernel's own limit for one path walk

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


class _Collector:
    def __init__(self, root: str, needles: Needles, limits: Limits, prefix: str,
                 clock: Callable[[], float]) -> None:
        self.root = os.path.realpath(root)
        self.root_slash = "" if self.root == "/" else self.root
        self.needles = needles
        self.limits = limits
        self.prefix = prefix
        self.clock = clock
        self.deadline = clock() + limits.seconds
        self.entries: list[PersistenceEntry] = []
        self.errors: list[str] = []
        self.files_read = 0
        self.bytes_read = 0
        self.seen_real: set[str] = set()
        self.script_cache: dict[str, _Verdict | None] = {}

    # --- reading a hostile tree ---------------------------------------------------------------

    def error(self, path: str, reason: str) -> None:
        if len(self.errors) < self.limits.errors:
            self.errors.append(f"persistence: {self.prefix}{path}: {reason}")

    def resolve(self, path: str) -> str:
        """Host path of `path` read inside root, following symlinks as if root were "/"."""
        todo = [p for p in path.split("/") if p]
        done: list[str] = []
        links = 0
        while todo:
            part = todo.pop(0)
            if part == ".":
                continue
            if part == "..":
                if done:
                    done.pop()
                continue
            host = self.root_slash + "/" + "/".join([*done, part])
            try:
                st = os.lstat(host)
            except FileNotFoundError:
                if todo:
                    raise
                done.append(part)
                break
            if stat.S_ISLNK(st.st_mode):
                links += 1
                if links > MAX_SYMLINKS:
                    raise OSError(errno.ELOOP, "too many levels of symbolic links")
                target = os.readlink(host)  # noqa: PTH115 -- resolved by hand to stay in root
                if target.startswith("/"):
                    done = []
                todo = [p for p in target.split("/") if p] + todo
            else:
                done.append(part)
        return self.root_slash + "/" + "/".join(done)

    def check_budget(self) -> None:
        if self.clock() > self.deadline:
            raise _BudgetError(f"time budget of {self.limits.seconds} s spent")
        if self.files_read >= self.limits.files:
            raise _BudgetError(f"file cap of {self.limits.files} reached")
        if self.bytes_read >= self.limits.total_bytes:
            raise _BudgetError(f"byte cap of {self.limits.total_bytes} reached")

    def read(self, path: str, *, text_only: bool = False) -> tuple[str, float, str] | None:
        """(text, mtime, real host path) of a regular file under root, or None (and an error).

        `text_only` gives up silently on a file whose first block holds a NUL byte: a binary
        reached by following a command is not worth a megabyte of reading.
        """
        self.check_budget()
        try:
            real = self.resolve(path)
            # O_NONBLOCK: a FIFO planted where a crontab should be must not hang the agent.
            fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as exc:
            self.error(path, exc.strerror or str(exc))
            return None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                # Directories are skipped where a file was expected; /dev/null is how systemd
                # masks a unit. Anything else (FIFO, device, socket) is worth a line.
                if not stat.S_ISDIR(st.st_mode) and real != self.root_slash + "/dev/null":
                    self.error(path, "not a regular file")
                return None
            cap = min(self.limits.file_bytes, self.limits.total_bytes - self.bytes_read)
            data = os.read(fd, min(cap, 4096))
            if text_only and b"\0" in data:
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
        if st.st_size > len(data):
            self.error(path, f"{st.st_size} bytes; examined the first {len(data)}")
        return data.decode("utf-8", "replace"), st.st_mtime, real

    def listdir(self, path: str) -> list[str]:
        """Sorted names in a directory under root (capped), [] if it is missing."""
        self.check_budget()
        try:
            real = self.resolve(path)
            names: list[str] = []
            with os.scandir(real) as it:
                for entry in it:
                    if len(names) >= self.limits.dir_entries:
                        self.error(path, f"more than {self.limits.dir_entries} entries; "
                                         "examined the first")
                        break
                    names.append(entry.name)
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as exc:
            self.error(path, exc.strerror or str(exc))
            return []
        return sorted(names)

    def first_read(self, real: str) -> bool:
        """False if this real file was already examined (/lib → /usr/lib, wants/ symlinks)."""
        if real in self.seen_real:
            return False
        self.seen_real.add(real)
        return True

    # --- judging text -------------------------------------------------------------------------

    def judge(self, text: str) -> _Verdict:
        text = text[:MAX_LINE]
        return _Verdict(self.needles.references(text), is_download_exec(text),
                        mentions_miner(text))

    def script_verdict(self, command: str) -> tuple[_Verdict, str | None]:
        """What the scripts a command runs (one level down) say; (verdict, the script that did)."""
        for cand in _ABS_PATH_RE.findall(command)[:6]:
            base = _base(cand)
            if cand.startswith(("/dev/", "/proc/", "/sys/")) or base in _PROGRAMS or (
                _PYTHON_RE.match(base)
            ):
                continue
            if cand not in self.script_cache:
                self.script_cache[cand] = self._judge_script(cand)
            verdict = self.script_cache[cand]
            if verdict is not None and verdict.any():
                return verdict, cand
        return _Verdict(), None

    def _judge_script(self, path: str) -> _Verdict | None:
        got = self.read(path, text_only=True)  # a binary's own name in the entry is what counts
        if got is None:
            return None
        text, _, _ = got
        out = _Verdict()
        for line in text.splitlines():
            if line.lstrip().startswith("#"):
                continue
            out.merge(self.judge(line))
        return out

    def add(self, *, kind: str, path: str, line: int, text: str, mtime: float, technique: str,
            reboot: bool, command: str | None, follow: bool = True,
            always: bool = False) -> _Verdict:
        verdict = self.judge(text)
        via = None
        if follow and command is not None:
            below, via = self.script_verdict(command)
            verdict.merge(below)
        if (verdict.any() or always) and len(self.entries) < self.limits.entries:
            self.entries.append(PersistenceEntry(
                kind=kind, path=self.prefix + path, line=line, text=text.strip()[:MAX_TEXT],
                mtime=mtime, references_process=verdict.refs, download_exec=verdict.dl,
                reboot=reboot, via=via, technique=technique))
        return verdict

    # --- the sources ----------------------------------------------------------------------------

    def crontab(self, path: str, *, system: bool, kind: str = "cron") -> None:
        got = self.read(path)
        if got is None:
            return
        text, mtime, real = got
        if not self.first_read(real):
            return
        for no, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            command: str | None
            reboot = False
            if kind == "anacron":
                parts = line.split(None, 3)
                command = parts[3] if len(parts) == 4 and "=" not in parts[0] else None
            elif line.startswith("@"):
                parts = line.split(None, 2 if system else 1)
                command = parts[-1] if len(parts) == (3 if system else 2) else None
                reboot = parts[0].lower() == "@reboot"
            elif re.match(r"^[A-Za-z_]\w*\s*=", line):
                command = None  # an environment assignment, still judged as text
            else:
                parts = line.split(None, 6 if system else 5)
                command = parts[-1] if len(parts) == (7 if system else 6) else None
            self.add(kind=kind, path=path, line=no, text=raw, mtime=mtime, technique=T_CRON,
                     reboot=reboot, command=command)

    def script(self, path: str, *, kind: str, technique: str, reboot: bool) -> None:
        got = self.read(path)
        if got is None:
            return
        text, mtime, real = got
        if not self.first_read(real):
            return
        for no, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            self.add(kind=kind, path=path, line=no, text=raw, mtime=mtime, technique=technique,
                     reboot=reboot, command=line)

    def scripts_in(self, directory: str, *, kind: str, technique: str, reboot: bool) -> None:
        for name in self.listdir(directory):
            self.script(f"{directory}/{name}", kind=kind, technique=technique, reboot=reboot)

    def preload(self, path: str) -> None:
        got = self.read(path)
        if got is None:
            return
        text, mtime, _ = got
        # Every preloaded library is reported: rare on real hosts, and the classic way to hide
        # a miner from ps/top (libprocesshider), so the process itself may be invisible.
        for no, raw in enumerate(text.splitlines(), 1):
            for lib in raw.split("#", 1)[0].replace(":", " ").split():
                self.add(kind="ld-preload", path=path, line=no, text=lib, mtime=mtime,
                         technique=T_PRELOAD, reboot=True, command=None, always=True)

    def parse_unit(self, path: str, name: str, units: dict[str, _Unit]) -> None:
        got = self.read(path)
        if got is None:
            return
        text, mtime, real = got
        if not self.first_read(real):
            return
        unit = units.get(name)
        if unit is None:
            unit = units[name] = _Unit(name=name, path=path, mtime=mtime)
        for no, raw in enumerate(text.splitlines(), 1):
            key, eq, value = raw.strip().partition("=")
            if not eq:
                continue
            key = key.strip()
            value = value.strip()
            if key in _EXEC_KEYS and value:
                unit.execs.append((path, no, raw.strip(), mtime))
            elif key == "Restart":
                unit.restart = value
            elif key in ("WantedBy", "RequiredBy"):
                unit.wanted_by += value.split()
            elif key == "Unit":
                unit.timer_unit = value
            elif key in _TIMER_TRIGGERS:
                unit.triggers.append((no, raw.strip()))

    def systemd(self, dirs: list[str]) -> None:
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
        matched: dict[str, tuple[_Verdict, str]] = {}
        for name, unit in units.items():
            if not name.endswith(".service"):
                continue
            reboot = name in enabled or any(t in _BOOT_TARGETS for t in unit.wanted_by)
            context = "; ".join(x for x in (
                f"Restart={unit.restart}" if unit.restart else "",
                f"WantedBy={' '.join(unit.wanted_by)}" if unit.wanted_by else "") if x)
            total = _Verdict()
            for path, no, line, mtime in unit.execs:
                command = line.partition("=")[2].lstrip("@-:+!")
                text = f"{line} [{context}]" if context else line
                got = self.add(kind="systemd-service", path=path, line=no, text=text,
                               mtime=mtime, technique=T_SYSTEMD_SERVICE, reboot=reboot,
                               command=command)
                total.merge(got)
            if total.any():
                matched[name] = (total, unit.path)
        for name, unit in units.items():
            if not name.endswith(".timer"):
                continue
            target = unit.timer_unit or name[: -len(".timer")] + ".service"
            hit = matched.get(target)
            if hit is None:
                continue
            verdict, service_path = hit
            first = unit.triggers[0][0] if unit.triggers else 0
            text = "; ".join([t for _, t in unit.triggers] + [f"Unit={target}"])
            if len(self.entries) < self.limits.entries:
                self.entries.append(PersistenceEntry(
                    kind="systemd-timer", path=self.prefix + unit.path, line=first,
                    text=text[:MAX_TEXT], mtime=unit.mtime, references_process=verdict.refs,
                    download_exec=verdict.dl,
                    reboot=any(t.startswith(("OnBootSec", "OnStartupSec"))
                               for _, t in unit.triggers),
                    via=self.prefix + service_path, technique=T_SYSTEMD_TIMER))

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
                      "/lib/systemd/system", "/usr/local/lib/systemd/system"])
        self.systemd(["/etc/systemd/user", "/usr/lib/systemd/user",
                      *[f"{h}/.config/systemd/user" for h in homes]])
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


def collect_persistence(
    root: str = "/",
    needles: Needles | None = None,
    *,
    limits: Limits | None = None,
    prefix: str = "",
    clock: Callable[[], float] = time.monotonic,
) -> tuple[list[PersistenceEntry], list[str]]:
    """(entries, errors) for the tree below `root`. Never raises for what it finds there.

    Paths in entries are as seen inside root, prefixed with `prefix` (e.g. "/proc/42/root"
    when reading a container's filesystem).
    """
    col = _Collector(root, needles or Needles(), limits or Limits(), prefix, clock)
    try:
        col.run()
    except _BudgetError as exc:
        col.errors.append(f"persistence: stopped early: {exc}")
    return col.entries, col.errors
