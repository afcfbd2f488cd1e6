"""Alerts as EVE-style JSON lines (Suricata field names; ECS names inside `netdetect`)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import IO, Any

from netdetect.model import Alert, FlowEnd, Suspect, Verdict

CATEGORY = "Crypto Currency Mining Activity Detected"  # Suricata classtype coin-mining

# Stable signature ids per dialect, in a private range, so SIEM rules can key on them.
SIGNATURE_IDS: dict[str, int] = {
    "stratum-v1": 9_000_001,
    "cryptonote": 9_000_002,
    "eth-proxy": 9_000_003,
    "ethereumstratum-1": 9_000_004,
    "ethereumstratum-2": 9_000_005,
    "getwork-http": 9_000_006,
    "getblocktemplate-http": 9_000_007,
    "eth-getwork-http": 9_000_008,
    "tls": 9_000_009,
    "browser-tls": 9_000_010,
    "stratum-v2": 9_000_011,
    "unknown": 9_000_099,
}

_DIALECT_TEXT = {
    "stratum-v1": "Stratum v1 mining session",
    "cryptonote": "CryptoNote (XMRig) stratum session",
    "eth-proxy": "Ethereum eth-proxy mining session",
    "ethereumstratum-1": "EthereumStratum/1.0.0 mining session",
    "ethereumstratum-2": "EthereumStratum/2.0.0 mining session",
    "getwork-http": "HTTP getwork mining",
    "getblocktemplate-http": "HTTP getblocktemplate mining",
    "eth-getwork-http": "Ethereum getwork over HTTP",
    "tls": "TLS session to a mining pool",
    "browser-tls": "TLS session to a browser-mining service",
    "stratum-v2": "Stratum V2 mining session",
}


def eve_timestamp(ts: float) -> str:
    """Suricata's timestamp form: ISO 8601, microseconds, numeric UTC offset."""
    dt = datetime.fromtimestamp(ts, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f%z")


def signature_text(s: Suspect) -> str:
    what = _DIALECT_TEXT.get(s.dialect, f"{s.dialect} mining traffic")
    pool = s.pool_facts.host
    return f"NETDETECT {what}" + (f" ({pool})" if pool else "")


def _header(s: Suspect, ts: float, event_type: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "timestamp": eve_timestamp(ts),
        "flow_id": s.flow_id,
        "event_type": event_type,
        "src_ip": s.miner.ip,
        "src_port": s.miner.port,
        "dest_ip": s.pool.ip,
        "dest_port": s.pool.port,
        "proto": s.proto,
        "app_proto": s.app_proto,
    }
    if s.vlan:
        out["vlan"] = [s.vlan]
    return out


def _tls(s: Suspect) -> dict[str, Any] | None:
    mf, pf = s.miner_facts, s.pool_facts
    if not (mf.ja3 or mf.ja4):
        return None
    return {
        k: v
        for k, v in (
            ("sni", pf.host if pf.host_source == "sni" else None),
            ("ja3", {"hash": mf.ja3} if mf.ja3 else None),
            ("ja4", mf.ja4),
        )
        if v is not None
    }


def _facts(s: Suspect) -> dict[str, Any]:
    """The `netdetect` object's network half: score, dialect, evidence, pool and miner."""
    mf, pf = s.miner_facts, s.pool_facts
    return {
        "score": s.score,
        "dialect": s.dialect,
        "methods": list(s.methods),
        "evidence": [
            {"kind": e.kind, "weight": e.weight, "detail": e.detail,
             "timestamp": eve_timestamp(e.ts)}
            for e in s.evidence
        ],
        "flow_start": eve_timestamp(s.first_ts),
        "pool": _nonempty(
            {
                "host": pf.host,
                "host_source": pf.host_source,
                "list_match": pf.list_match,
                "difficulty": pf.difficulty,
                "target": pf.target,
                "jobs": pf.jobs,
                "algo": pf.algo,
                "encoding": pf.encoding,
                "as": {"number": pf.asn, "organization": {"name": pf.as_org}} if pf.asn else None,
                "geo": {"country_iso_code": pf.country} if pf.country else None,
            }
        ),
        "miner": _nonempty(
            {
                "agent": mf.agent,
                "name": mf.agent_name,
                "version": mf.agent_version,
                "login": mf.login,
                "worker": mf.worker,
                "algos": list(mf.algos),
                "shares": mf.shares,
            }
        ),
    }


def alert_to_eve(alert: Alert) -> dict[str, Any]:
    s = alert.suspect
    techniques = list(dict.fromkeys(alert.mitre))
    # An allowlisted match is recorded, not raised: it gets its own event type.
    out = _header(s, s.ts, "allowed" if alert.verdict is Verdict.ALLOWED else "alert")
    out["alert"] = {
        "action": "allowed",
        "gid": 1,
        "signature_id": SIGNATURE_IDS.get(s.dialect, SIGNATURE_IDS["unknown"]),
        "rev": 1,
        "signature": signature_text(s),
        "category": CATEGORY,
        "severity": alert.severity,
        "metadata": {
            "mitre_tactic_id": ["TA0040"],
            "mitre_tactic_name": ["Impact"],
            "mitre_technique_id": techniques,
            "mitre_technique_name": [_TECHNIQUE_NAMES.get(t, t) for t in techniques],
            "analytic": ["AN0742"],
            "verdict": [alert.verdict.value],
        },
    }
    tls = _tls(s)
    if tls is not None:
        out["tls"] = tls
    nd: dict[str, Any] = {"verdict": alert.verdict.value, **_facts(s)}
    if alert.reasons:
        nd["reasons"] = list(alert.reasons)
    if alert.host_id is not None:
        nd["host"] = {"id": alert.host_id}
    if alert.host is not None:
        # Only confirmed runs carry a host report: replay alone never loads msgspec.
        import msgspec

        nd.setdefault("host", {})["report"] = msgspec.to_builtins(alert.host)
    out["netdetect"] = nd
    return out


# Suricata's flow.reason vocabulary, from ours.
_FLOW_REASON = {"end": "shutdown", "evicted": "forced"}


def flow_to_eve(fe: FlowEnd) -> dict[str, Any]:
    """An alerted flow's final record, Suricata-style (event_type "flow", same flow_id)."""
    s = fe.suspect
    out = _header(s, s.ts, "flow")
    out["flow"] = {
        "pkts_toserver": fe.pkts_to_pool,
        "pkts_toclient": fe.pkts_to_miner,
        "bytes_toserver": fe.bytes_to_pool,
        "bytes_toclient": fe.bytes_to_miner,
        "start": eve_timestamp(s.first_ts),
        "end": eve_timestamp(s.ts),
        "age": int(s.ts - s.first_ts),
        "state": "closed" if fe.closed else "established",
        "reason": _FLOW_REASON.get(fe.reason, "timeout"),
        "alerted": True,
    }
    tls = _tls(s)
    if tls is not None:
        out["tls"] = tls
    out["netdetect"] = {**_facts(s), "end_reason": fe.reason}
    return out


_TECHNIQUE_NAMES = {
    "T1496": "Resource_Hijacking",
    "T1053.003": "Scheduled_Task_Job_Cron",
    "T1053.006": "Scheduled_Task_Job_Systemd_Timers",
    "T1543.002": "Create_or_Modify_System_Process_Systemd_Service",
    "T1037.004": "Boot_or_Logon_Initialization_Scripts_RC_Scripts",
    "T1574.006": "Hijack_Execution_Flow_Dynamic_Linker_Hijacking",
    "T1546.004": "Event_Triggered_Execution_Unix_Shell_Configuration_Modification",
}


def _nonempty(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v not in (None, [], "", 0) or k in ("jobs", "shares")}


class EveWriter:
    """Writes one JSON line per alert (and per alerted flow's end) and flushes it, so a
    tailing SIEM sees it at once."""

    def __init__(self, stream: IO[str], *, include_allowed: bool = True) -> None:
        self.stream = stream
        self.include_allowed = include_allowed
        self.written = 0
        self.flows_written = 0

    def write_flow(self, fe: FlowEnd) -> None:
        self.stream.write(json.dumps(flow_to_eve(fe), separators=(",", ":")) + "\n")
        self.stream.flush()
        self.flows_written += 1

    def write(self, alert: Alert) -> None:
        if alert.verdict is Verdict.ALLOWED and not self.include_allowed:
            return
        self.stream.write(json.dumps(alert_to_eve(alert), separators=(",", ":")) + "\n")
        self.stream.flush()
        self.written += 1
