"""Suspect + host report (or the reason there is none) → Alert with verdict, severity and MITRE ids.

Pure and synchronous: no clock, no I/O, so a replayed pcap with recorded reports always gives
the same alerts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import msgspec

from netdetect.model import Alert, Verdict

if TYPE_CHECKING:
    from netdetect.agent.schema import HostFacts, HostReport, PersistenceEntry, ProcessFacts
    from netdetect.hosts import HostIdentity
    from netdetect.model import Suspect

RESOURCE_HIJACKING = "T1496"
ROOTKIT = "T1014"
PRELOAD_HIJACK = "T1574.006"
# Used when an entry carries no technique of its own.
_TECHNIQUE_BY_KIND = {
    "cron": "T1053.003",
    "anacron": "T1053.003",
    "systemd-service": "T1543.002",
    "systemd-timer": "T1053.006",
    "rc-local": "T1037.004",
    "init-script": "T1037.004",
    "ld-preload": "T1574.006",
}
_MIB = 1024 * 1024


# The policy correlate applies (loaded from the sensor's TOML by netdetect.config); here,
# not there, so a replay that asks no host never loads the configuration parser.
class Allowlist(msgspec.Struct, frozen=True):
    """Suspects that are expected: recorded with verdict `allowed`, never raised."""

    hosts: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()  # host role tags from the inventory
    exes: frozenset[str] = frozenset()  # absolute executable paths
    sha256: frozenset[str] = frozenset()  # lowercase hex of the executable
    pool_domains: tuple[str, ...] = ()  # suffixes on a dot boundary, lowercase
    wallets: frozenset[str] = frozenset()



class CorrelateConfig(msgspec.Struct, frozen=True):
    cpu_threshold: float = 50.0  # percent of one core over the query's window
    rss_threshold_mb: int = 2048
    hugepages_threshold_mb: int = 256  # RandomX datasets live in huge pages
    high_score: int = 80  # network-only alerts at or above this score get severity 2
    # Host evidence (netdetect.correlate.host_evidence) needed to confirm: a flow whose
    # network score reached the alert threshold, and one asked about early (below it).
    confirm_score: int = 30
    ask_confirm_score: int = 50


_DEFAULT = CorrelateConfig()


def _domain_allowed(name: str | None, suffixes: tuple[str, ...]) -> str | None:
    if not name or not suffixes:
        return None
    name = name.lower().rstrip(".")
    for suffix in suffixes:
        if name == suffix or name.endswith("." + suffix):
            return suffix
    return None


def wallet_of(login: str | None) -> str | None:
    """The wallet part of a pool login: miners append a worker or difficulty after . + / :"""
    if not login:
        return None
    for i, ch in enumerate(login):
        if ch in ".+/:" and i > 0:
            return login[:i]
    return login


def allow_network(suspect: Suspect, host: HostIdentity | None, allowlist: Allowlist) -> str | None:
    """The allowlist entry matching what the network and the inventory know, if any.

    Checked before a host is queried: an allowed flow costs the host nothing. The signatures'
    sanctioned.txt applies with or without a sensor config (replay without --confirm too).
    """
    if suspect.pool_facts.sanctioned:
        return suspect.pool_facts.sanctioned
    if host is not None:
        if host.host_id in allowlist.hosts:
            return f"host {host.host_id}"
        for tag in host.tags:
            if tag in allowlist.tags:
                return f"host tag {tag}"
    domain = _domain_allowed(suspect.pool_facts.host, allowlist.pool_domains)
    if domain is not None:
        return f"pool domain {domain}"
    login = suspect.miner_facts.login
    if login and allowlist.wallets:
        if login in allowlist.wallets:
            return f"wallet {login}"
        wallet = wallet_of(login)
        if wallet in allowlist.wallets:
            return f"wallet {wallet}"
    return None


def allow_process(proc: ProcessFacts, allowlist: Allowlist) -> str | None:
    """The allowlist entry matching the owning process, if any."""
    if proc.exe_sha256 and proc.exe_sha256.lower() in allowlist.sha256:
        return f"executable sha256 {proc.exe_sha256.lower()}"
    # A deleted executable's path says nothing about what ran: only its hash may allow it.
    if proc.exe and not proc.exe_deleted and proc.exe in allowlist.exes:
        return f"executable {proc.exe}"
    return None


def _technique(entry: PersistenceEntry) -> str | None:
    return entry.technique or _TECHNIQUE_BY_KIND.get(entry.kind)


# Host evidence weights: what the owning process shows, as an analyst would weigh it. The
# flow is confirmed when they add up to the bar its network evidence sets (CorrelateConfig):
# lower when the network side alone was sure, higher when the host was asked early.
HW_HIDDEN = 60  # hidden from readdir on /proc while the kernel lists it (T1014)
HW_NAME = 50  # a miner's name (xmrig, kdevtmpfsi, kinsing ...)
HW_CMDLINE = 50  # pool URL, wallet, algorithm, miner-only options in argv
HW_EXE_STRINGS = 50  # stratum URLs, RandomX/CryptoNight, xmrig in the executable's bytes
HW_CONFIG_POOL = 50  # a pool endpoint in a config file it has open or beside it
HW_KTHREAD = 40  # a kernel thread's name on a process that has an executable
HW_CPU_WINDOW = 35  # >= cpu_threshold of a core over the window
HW_MEMORY = 30  # >= rss_threshold_mb resident
HW_HUGE = 30  # >= hugepages_threshold_mb of huge pages (RandomX dataset)
HW_DATASET = 30  # an anonymous mapping the size of a RandomX dataset (>= 2 GiB)
HW_CPU_SHARE = 25  # took most of the CPU the other processes left free
HW_LOW_PRIORITY = 25  # nice >= 10 / SCHED_IDLE / SCHED_BATCH, yet CPU-hungry
HW_DELETED = 25  # executable deleted after start
HW_SCRATCH = 25  # executable in /tmp, /dev/shm, a hidden directory ...
HW_UPX = 20  # packed: hides the strings above
HW_CPU_SUSTAINED = 20  # >= cpu_threshold of a core on average since it started
HW_THREADS = 15  # as many busy threads as half the host's cores or more
HW_SMALL_HUGE = 10  # some huge pages (below the threshold)
HW_MSR = 10  # the msr module is loaded (miners use it to tune the CPU)
CPU_CAP = 45  # CPU use alone (window, share, lifetime, threads) never exceeds this: a busy
# compiler or a render job burns CPU too; CPU completes other evidence, it is not a trait
DATASET_KB = 2000 * 1024
_MINER_MARKERS = ("exe-strings:stratum", "exe-strings:donate-level", "exe-strings:randomx",
                  "exe-strings:cryptonight", "exe-strings:mining.", "exe-strings:xmrig")


class HostEvidence(NamedTuple):
    weight: int
    kind: str
    detail: str


def host_evidence(proc: ProcessFacts, host: HostFacts | None,
                  cfg: CorrelateConfig = _DEFAULT) -> list[HostEvidence]:
    """What the owning process shows, each with its weight (CPU together capped at CPU_CAP)."""
    who = f"process {proc.name} (pid {proc.pid})"
    out: list[HostEvidence] = []
    cpu: list[HostEvidence] = []
    cores = host.cpu_count if host is not None else 0
    if proc.hidden:
        out.append(HostEvidence(HW_HIDDEN, "hidden", f"{who} is hidden from readdir on /proc "
                                "(a preload rootkit hides it from ps/top)"))
    names = [t for t in proc.traits if t.startswith("name:") and t != "name:kthread-disguise"]
    if names:
        out.append(HostEvidence(HW_NAME, "name", f"{who} bears a miner's name ({names[0][5:]})"))
    if "name:kthread-disguise" in proc.traits:
        out.append(HostEvidence(HW_KTHREAD, "kthread-disguise",
                                f"{who} wears a kernel thread's name but runs an executable"))
    args = sorted({t for t in proc.traits if t.startswith("cmdline:")})
    if args:
        out.append(HostEvidence(HW_CMDLINE, "cmdline",
                                f"{who} shows miner traits in its command line: "
                                f"{', '.join(a[8:] for a in args[:5])}"))
    strings = [t for t in proc.traits if t.startswith(_MINER_MARKERS)]
    if strings:
        out.append(HostEvidence(HW_EXE_STRINGS, "exe-strings", f"{who} executable contains "
                                + ", ".join(t[12:] for t in strings[:5])))
    if "exe-strings:upx-packed" in proc.traits:
        out.append(HostEvidence(HW_UPX, "packed", f"{who} executable is UPX-packed"))
    if proc.config_pools:
        out.append(HostEvidence(HW_CONFIG_POOL, "config-pool",
                                f"{who} configuration names a pool: {proc.config_pools[0]}"))
    if proc.exe_deleted:
        out.append(HostEvidence(HW_DELETED, "exe-deleted",
                                "its executable was deleted after start"))
    if proc.exe_suspicious_dir:
        out.append(HostEvidence(HW_SCRATCH, "exe-scratch-dir",
                                f"its executable lives in a scratch directory ({proc.exe})"))
    if proc.hugepages_kb >= cfg.hugepages_threshold_mb * 1024:
        out.append(HostEvidence(HW_HUGE, "huge-pages",
                                f"{who} maps {proc.hugepages_kb // 1024} MiB of huge pages"))
    elif proc.hugepages_kb > 0:
        out.append(HostEvidence(HW_SMALL_HUGE, "huge-pages",
                                f"{who} maps {proc.hugepages_kb // 1024} MiB of huge pages"))
    if proc.anon_max_kb >= DATASET_KB:
        out.append(HostEvidence(HW_DATASET, "dataset-mapping", f"{who} holds a "
                                f"{proc.anon_max_kb // 1024} MiB anonymous mapping "
                                "(RandomX dataset size)"))
    if proc.rss_bytes >= cfg.rss_threshold_mb * _MIB:
        out.append(HostEvidence(HW_MEMORY, "memory", f"{who} holds "
                                f"{proc.rss_bytes // _MIB} MiB resident (threshold "
                                f"{cfg.rss_threshold_mb} MiB)"))
    hungry = (proc.cpu_percent >= cfg.cpu_threshold / 5
              or proc.cpu_lifetime_percent >= cfg.cpu_threshold / 2)
    low = proc.nice >= 10 or proc.sched_policy in ("idle", "batch")
    if low and hungry:
        how = f"nice {proc.nice}" if proc.nice >= 10 else f"SCHED_{proc.sched_policy.upper()}"
        out.append(HostEvidence(HW_LOW_PRIORITY, "low-priority", f"{who} runs at {how} yet uses "
                                f"{proc.cpu_percent:.0f}% CPU now, "
                                f"{proc.cpu_lifetime_percent:.0f}% since start"))
    if proc.cpu_percent >= cfg.cpu_threshold:
        cpu.append(HostEvidence(HW_CPU_WINDOW, "cpu", f"{who} uses {proc.cpu_percent:.0f}% CPU "
                                f"(threshold {cfg.cpu_threshold:.0f}%)"))
    if proc.others_cpu_percent >= 0 and cores and proc.cpu_percent >= cfg.cpu_threshold / 5:
        free = max(cores * 100.0 - proc.others_cpu_percent, 1.0)
        if proc.cpu_percent / free >= 0.8:
            cpu.append(HostEvidence(HW_CPU_SHARE, "cpu-share", f"{who} took "
                                    f"{min(100.0, proc.cpu_percent / free * 100):.0f}% of the "
                                    f"CPU the rest of the host left free ({free:.0f}% of "
                                    f"{cores * 100}%)"))
    if proc.cpu_lifetime_percent >= cfg.cpu_threshold:
        cpu.append(HostEvidence(HW_CPU_SUSTAINED, "cpu-sustained", f"{who} averaged "
                                f"{proc.cpu_lifetime_percent:.0f}% CPU since it started"))
    if proc.busy_threads >= 2 and cores and proc.busy_threads * 2 >= cores:
        cpu.append(HostEvidence(HW_THREADS, "threads", f"{who} keeps {proc.busy_threads} "
                                f"threads busy on a {cores}-core host"))
    room = CPU_CAP
    for ev in cpu:
        w = min(ev.weight, room)
        room -= w
        out.append(HostEvidence(w, ev.kind, ev.detail))
    if host is not None and host.msr_module_loaded and out:
        out.append(HostEvidence(HW_MSR, "msr",
                                "the msr kernel module is loaded (miners use it to tune the CPU)"))
    return out


def _severity(verdict: Verdict, score: int, cfg: CorrelateConfig) -> int:
    if verdict in {Verdict.CONFIRMED, Verdict.CONFIRMED_PERSISTENT}:
        return 1
    if verdict is Verdict.NETWORK_ONLY and score >= cfg.high_score:
        return 2
    return 3


def correlate(
    suspect: Suspect,
    *,
    host: HostIdentity | None,
    report: HostReport | None,
    reason: str | None,
    allowlist: Allowlist,
    config: CorrelateConfig = _DEFAULT,
) -> Alert:
    """Decide the verdict for `suspect` from the host's answer.

    `reason` says why there is no report (timeout, host offline, broker unavailable, ...);
    it is ignored when a report is given.
    """
    host_id = host.host_id if host is not None else None
    mitre: list[str] = [RESOURCE_HIJACKING]

    def alert(verdict: Verdict, reasons: list[str]) -> Alert:
        if host is not None and host.source != "inventory":
            from netdetect.hosts import describe_source

            # A learned mapping is only as good as its source: say which one it was.
            reasons = [*reasons, describe_source(host, suspect.miner.ip)]
        if host is not None and host.conflict:
            reasons = [*reasons, f"host identity disputed: {host.conflict}"]
        return Alert(
            suspect=suspect,
            verdict=verdict,
            severity=_severity(verdict, suspect.score, config),
            host_id=host_id,
            host=report,
            reasons=tuple(reasons),
            mitre=tuple(dict.fromkeys(mitre)),
        )

    allowed = allow_network(suspect, host, allowlist)
    if allowed is None and report is not None and report.process is not None:
        allowed = allow_process(report.process, allowlist)
    if allowed is not None:
        return alert(Verdict.ALLOWED, [f"allowlisted: {allowed}"])

    if host is None:
        return alert(
            Verdict.NETWORK_ONLY,
            [f"host unmanaged: {suspect.miner.ip} is not in the inventory"],
        )
    if report is None:
        why = reason or "no report from the host"
        if not host.managed:
            why = f"host {host.host_id} runs no agent"
        return alert(Verdict.NETWORK_ONLY, [why])

    notes = [f"host report: {e}" for e in report.errors[:4]]
    proc = report.process
    if not report.found or proc is None:
        # A miner between reconnects owns no socket; the busiest processes still show it.
        suspects = [
            f"top consumer {t.name} (pid {t.pid}, {t.exe or 'exe unknown'}) uses "
            f"{t.cpu_percent:.0f}% CPU" + (f", miner traits: {', '.join(t.traits[:6])}"
                                           if t.traits else "")
            for t in report.top
            if t.traits or t.cpu_percent >= config.cpu_threshold
        ][:3]
        return alert(
            Verdict.NETWORK_ONLY,
            [f"host {host.host_id} found no process owning the flow", *suspects, *notes],
        )

    found = host_evidence(proc, report.host, config)
    total = sum(e.weight for e in found)
    # An early question (the network score below the alert threshold) needs the host to
    # carry the case; a flow the network alone was sure of needs less.
    need = config.ask_confirm_score if suspect.asked else config.confirm_score
    if total < need:
        seen = "; ".join(f"{e.detail} (+{e.weight})" for e in found) or "no miner traits"
        normal = (
            f"process {proc.name} (pid {proc.pid}) owns the flow but does not look abnormal "
            f"({proc.cpu_percent:.0f}% CPU, {proc.rss_bytes // _MIB} MiB; host evidence "
            f"{total} < {need}: {seen})"
        )
        return alert(Verdict.NETWORK_ONLY, [normal, *notes])

    reasons = [f"process {proc.name} (pid {proc.pid}, {proc.exe or 'exe unknown'}) owns the flow",
               f"host evidence {total} (confirms at {need})",
               *(f"{e.detail} (+{e.weight})" for e in found)]
    if proc.hidden:
        mitre.append(ROOTKIT)
    if report.host is not None and report.host.preload_hooks:
        reasons.append("libraries preloaded into the agent itself: "
                       + ", ".join(report.host.preload_hooks[:4]))

    relaunch = [e for e in report.persistence if e.references_process]
    # A preload library is what hides a hidden process: it keeps the miner out of sight.
    hooks = [e for e in report.persistence if e.kind == "ld-preload" and not e.references_process
             ] if proc.hidden else []
    if not relaunch and not hooks:
        return alert(Verdict.CONFIRMED, reasons + notes)
    for entry in relaunch:
        technique = _technique(entry)
        if technique:
            mitre.append(technique)
        where = f"{entry.path}:{entry.line}" if entry.line > 0 else entry.path
        via = f" via {entry.via}" if entry.via else ""
        extra = " (download and execute)" if entry.download_exec else ""
        reasons.append(f"{entry.kind} entry {where}{via} relaunches it{extra}")
    for entry in hooks:
        mitre.append(entry.technique or PRELOAD_HIJACK)
        reasons.append(f"{entry.path}:{entry.line} preloads {entry.text} into every program "
                       "(hides the process from readdir)")
    return alert(Verdict.CONFIRMED_PERSISTENT, reasons + notes)
