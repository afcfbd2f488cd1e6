"""The messages the sensor and the host agent exchange, shared by both sides.

msgspec Structs: decoded strictly (unknown fields rejected, types checked, sizes capped by
the caller before decoding), so a forged or malformed message fails loudly at the boundary.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec

SCHEMA_VERSION = 1
MAX_REPORT_BYTES = 256 * 1024  # a report larger than this is rejected unread
MAX_QUERY_BYTES = 8 * 1024


class FlowSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The flow the sensor saw, from the host's point of view."""

    proto: str  # "tcp" | "udp"
    remote_ip: str
    remote_port: int
    local_ip: str | None = None
    local_port: int | None = None


class HostQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What the sensor asks a host. Signed by the sensor; see netdetect.agent.protocol."""

    v: int
    host_id: str
    nonce: str  # 128-bit random, hex
    issued_at: float  # epoch seconds
    expires_at: float  # epoch seconds; the agent ignores the query after this
    flow: FlowSpec
    cpu_window: float = 2.0  # seconds of CPU sampling the sensor is willing to wait for
    top_n: int = 5
    pool_host: str | None = None  # what the network side knows, so persistence can be matched
    wallet: str | None = None


class ProcessFacts(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    pid: int
    ppid: int
    name: str
    user: str | None
    exe: str | None
    exe_deleted: bool
    exe_suspicious_dir: bool  # /tmp, /dev/shm, /var/tmp, ...
    exe_sha256: str | None
    cmdline: list[str]
    cwd: str | None
    start_time: float
    cgroup: str | None
    container_id: str | None
    netns: str | None  # network namespace inode, e.g. "net:[4026531840]"
    threads: int
    cpu_percent: float  # over the query's window, 100 = one core
    rss_bytes: int
    hugepages_kb: int  # AnonHugePages + Hugetlb from smaps_rollup/status
    parents: list[str] = []  # "pid:name" from parent to init
    traits: list[str] = []  # miner traits seen (cmdline patterns, names, strings in exe)
    # How it uses the CPU, as an analyst would weigh it against what the host had.
    nice: int = 0
    sched_policy: str = "other"  # other | batch | idle | fifo | rr | deadline
    cpu_lifetime_percent: float = 0.0  # CPU since the process started, 100 = one core
    busy_threads: int = 0  # threads that each averaged >= 50 % of a core since they started
    others_cpu_percent: float = -1.0  # CPU every other process used over the window (-1: unknown)
    anon_max_kb: int = 0  # the largest anonymous mapping (a RandomX dataset is ~2 GiB)
    hidden: bool = False  # listed by the kernel but hidden from readdir on /proc (a rootkit)
    config_pools: list[str] = []  # "path: endpoint" read from config files it has open or near it


class PersistenceEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    kind: str  # "cron" | "anacron" | "systemd-service" | "systemd-timer" | "rc-local" | ...
    path: str
    line: int
    text: str  # the entry, truncated
    mtime: float
    references_process: bool  # names the flow's exe / cmdline / pool host / wallet
    download_exec: bool  # curl|wget ... | sh, base64 -d | sh, ...
    reboot: bool = False  # @reboot / WantedBy=multi-user.target / rc.local
    via: str | None = None  # the script one level down that the entry runs, if that matched
    technique: str | None = None  # T1053.003 (cron), T1543.002 (systemd), T1037.004 (rc) ...


class TopProcess(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    pid: int
    name: str
    exe: str | None
    cpu_percent: float
    rss_bytes: int
    traits: list[str] = []


class HostFacts(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    cpu_count: int
    load1: float
    msr_module_loaded: bool
    nr_hugepages: int
    hidden_pids: list[int] = []  # processes the kernel lists that readdir on /proc does not
    preload_hooks: list[str] = []  # libraries preloaded into the agent itself right now


class HostReport(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The agent's answer. Echoes the query's nonce; carries the host id it speaks for."""

    v: int
    host_id: str
    nonce: str
    generated_at: float
    found: bool  # a process owning the flow was found
    process: ProcessFacts | None = None
    persistence: list[PersistenceEntry] = []
    top: list[TopProcess] = []
    host: HostFacts | None = None
    errors: list[str] = []  # collectors that failed (permission, vanished pid, ...)


# An agent with no capacity left answers at once with a report whose first error starts with
# this, instead of letting the sensor wait out its timeout. Both sides need to recognise it.
BUSY_PREFIX = "busy:"


def is_busy_report(report: HostReport) -> bool:
    """True for an agent's "busy" answer: no facts, only the reason it gave none."""
    return (not report.found and report.process is None and not report.persistence
            and bool(report.errors) and report.errors[0].startswith(BUSY_PREFIX))


# --- text from the host -------------------------------------------------------------------------

# Lone surrogates: what os and psutil hand back for bytes that are not UTF-8 (surrogateescape),
# and which no JSON encoder accepts.
_SURROGATE = re.compile("[\ud800-\udfff]")
_S = TypeVar("_S", bound=msgspec.Struct)


def printable(text: str) -> str:
    """`text` with every byte that was not UTF-8 shown as ``\\xNN`` (and any other lone
    surrogate as ``\\udNNN``): a file name or argv from the host always encodes as JSON, and
    an analyst sees which bytes were there instead of a replacement character."""
    if text.isascii() or _SURROGATE.search(text) is None:
        return text
    raw = text.encode("utf-8", "surrogateescape") if _only_escapes(text) else (
        text.encode("utf-8", "backslashreplace"))
    return raw.decode("utf-8", "backslashreplace")


def _only_escapes(text: str) -> bool:
    return all("\udc80" <= c <= "\udcff" for c in _SURROGATE.findall(text))


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if isinstance(value, msgspec.Struct):
        return safe_struct(value)
    return value


def safe_struct(obj: _S) -> _S:
    """`obj` with every string in it made printable: the one place report text is made safe,
    so no single odd file name or argument can make a whole report fail to encode."""
    changes = {}
    for name in obj.__struct_fields__:
        old = getattr(obj, name)
        new = _clean(old)
        if new != old:
            changes[name] = new
    return msgspec.structs.replace(obj, **changes) if changes else obj
