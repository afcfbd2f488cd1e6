"""Suspect + host report (or the reason there is none) → Alert with verdict, severity and MITRE ids.

Pure and synchronous: no clock, no I/O, so a replayed pcap with recorded reports always gives
the same alerts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from netdetect.config import Allowlist, CorrelateConfig
from netdetect.hosts import describe_source
from netdetect.model import Alert, Verdict

if TYPE_CHECKING:
    from netdetect.agent.schema import HostReport, PersistenceEntry, ProcessFacts
    from netdetect.hosts import HostIdentity
    from netdetect.model import Suspect

RESOURCE_HIJACKING = "T1496"
# Used when an entry carries no technique of its own.
_TECHNIQUE_BY_KIND = {
    "cron": "T1053.003",
    "anacron": "T1053.003",
    "systemd-service": "T1543.002",
    "systemd-timer": "T1053.006",
    "rc-local": "T1037.004",
    "init-script": "T1037.004",
}
_MIB = 1024 * 1024
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


def _abnormal(proc: ProcessFacts, cfg: CorrelateConfig) -> list[str]:
    found: list[str] = []
    if proc.cpu_percent >= cfg.cpu_threshold:
        found.append(
            f"process {proc.name} (pid {proc.pid}) uses {proc.cpu_percent:.0f}% CPU "
            f"(threshold {cfg.cpu_threshold:.0f}%)"
        )
    if proc.rss_bytes >= cfg.rss_threshold_mb * _MIB:
        found.append(
            f"process {proc.name} (pid {proc.pid}) holds {proc.rss_bytes // _MIB} MiB resident "
            f"(threshold {cfg.rss_threshold_mb} MiB)"
        )
    if proc.hugepages_kb >= cfg.hugepages_threshold_mb * 1024:
        found.append(
            f"process {proc.name} (pid {proc.pid}) maps {proc.hugepages_kb // 1024} MiB of "
            "huge pages"
        )
    if proc.traits:
        found.append(f"process {proc.name} (pid {proc.pid}) shows miner traits: "
                     + ", ".join(proc.traits[:8]))
    return found


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

    abnormal = _abnormal(proc, config)
    if not abnormal:
        normal = (
            f"process {proc.name} (pid {proc.pid}) owns the flow but does not look abnormal "
            f"({proc.cpu_percent:.0f}% CPU, {proc.rss_bytes // _MIB} MiB, no miner traits)"
        )
        return alert(Verdict.NETWORK_ONLY, [normal, *notes])

    reasons = [f"process {proc.name} (pid {proc.pid}, {proc.exe or 'exe unknown'}) owns the flow",
               *abnormal]
    if proc.exe_deleted:
        reasons.append("its executable was deleted after start")
    if proc.exe_suspicious_dir:
        reasons.append(f"its executable lives in a scratch directory ({proc.exe})")
    if report.host is not None and report.host.msr_module_loaded:
        reasons.append("the msr kernel module is loaded (miners use it to tune the CPU)")

    relaunch = [e for e in report.persistence if e.references_process]
    if not relaunch:
        return alert(Verdict.CONFIRMED, reasons + notes)
    for entry in relaunch:
        technique = _technique(entry)
        if technique:
            mitre.append(technique)
        where = f"{entry.path}:{entry.line}" if entry.line > 0 else entry.path
        via = f" via {entry.via}" if entry.via else ""
        extra = " (download and execute)" if entry.download_exec else ""
        reasons.append(f"{entry.kind} entry {where}{via} relaunches it{extra}")
    return alert(Verdict.CONFIRMED_PERSISTENT, reasons + notes)
