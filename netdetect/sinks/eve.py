"""Alerts as EVE-style JSON lines (Suricata field names; ECS names inside `netdetect`)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import math
import os
import re
import socket
import stat
import struct
import time
from collections.abc import Mapping
from functools import lru_cache
from typing import IO, Any

import msgspec

from netdetect.errors import NetdetectError
from netdetect.model import Alert, CampaignRef, FlowEnd, Suspect, Verdict

# Suricata masks flow_id to 51 bits so that it survives JSON readers that hold numbers as
# IEEE doubles (jq, JavaScript, many SIEM ingest pipelines): 2^53 is where they start rounding.
FLOW_ID_MASK = (1 << 51) - 1

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
    "monero-daemon-rpc": 9_000_012,
    "cryptonote-ws": 9_000_014,
    "stratum-v1-ws": 9_000_015,
    "coinhive-ws": 9_000_016,
    "webminerpool-ws": 9_000_017,
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
    "monero-daemon-rpc": "solo mining on a Monero daemon's RPC",
    "cryptonote-ws": "CryptoNote stratum in WebSocket frames",
    "stratum-v1-ws": "Stratum v1 in WebSocket frames",
    "coinhive-ws": "browser miner (CoinHive-style WebSocket protocol)",
    "webminerpool-ws": "browser miner (webminerpool WebSocket protocol)",
}


_LAST_YEAR_END = 253402300800  # 10000-01-01T00:00:00Z: datetime's range ends before it


@lru_cache(maxsize=1024)
def _eve_second(sec: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))


@lru_cache(maxsize=4096)
def eve_timestamp(ts: float) -> str:
    """Suricata's timestamp form: ISO 8601, microseconds, numeric UTC offset.

    Same text as datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f%z")
    (microseconds rounded half to even), at a fraction of its cost: a replay writes
    several per alert, most of them again (an alert's and its flow record's evidence, the
    campaign book's copy), so recent ones are remembered."""
    frac, whole = math.modf(ts)
    sec = int(whole)
    us = round(frac * 1e6)
    if us >= 1_000_000:
        sec, us = sec + 1, us - 1_000_000
    elif us < 0:
        sec, us = sec - 1, us + 1_000_000
    if not 0 <= sec < _LAST_YEAR_END:
        raise ValueError(f"timestamp {ts!r} is out of range")
    return f"{_eve_second(sec)}.{us:06d}+0000"


def signature_text(s: Suspect) -> str:
    """One constant text per signature_id: SIEMs aggregate on it, so nothing variable (the
    pool name, the dialect's unknown name) goes in here; that lives in metadata and
    `netdetect.*`."""
    return "NETDETECT " + _DIALECT_TEXT.get(s.dialect, "mining traffic in another dialect")


_PROTO_NUMBERS = {"TCP": 6, "UDP": 17}


def community_id(s: Suspect) -> str | None:
    """Community ID v1 (seed 0) of the flow, as Zeek, Suricata and Arkime compute it."""
    proto = _PROTO_NUMBERS.get(s.proto)
    if proto is None:
        return None
    return _community_id(proto, s.miner.ip, s.pool.ip, s.miner.port, s.pool.port)


@lru_cache(maxsize=4096)
def _community_id(proto: int, src: str, dst: str, sport: int, dport: int) -> str:
    """Community ID v1 for TCP/UDP: base64 of SHA-1 over seed, both addresses, protocol,
    a zero pad and both ports, endpoints ordered so both directions agree. Written out
    here (the spec is this one hash; the communityid package, the tests' oracle, costs
    ~0.2 ms a call validating its inputs); cached, as an alert and its flow record name
    the same flow."""
    family = socket.AF_INET6 if ":" in src else socket.AF_INET
    a, b = socket.inet_pton(family, src), socket.inet_pton(family, dst)
    if (b, dport) < (a, sport):
        a, b, sport, dport = b, a, dport, sport
    digest = hashlib.sha1(
        b"\x00\x00" + a + b + bytes((proto, 0)) + struct.pack(">HH", sport, dport),
        usedforsecurity=False,
    ).digest()
    return "1:" + base64.b64encode(digest).decode("ascii")


def eve_flow_id(s: Suspect) -> int:
    return s.flow_id & FLOW_ID_MASK


def _header(s: Suspect, ts: float, event_type: str, pcap_filename: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "timestamp": eve_timestamp(ts),
        "flow_id": eve_flow_id(s),
        "event_type": event_type,
        "src_ip": s.miner.ip,
        "src_port": s.miner.port,
        "dest_ip": s.pool.ip,
        "dest_port": s.pool.port,
        "proto": s.proto,
    }
    cid = community_id(s)
    if cid is not None:
        out["community_id"] = cid
    out["app_proto"] = s.app_proto
    if s.vlan:
        out["vlan"] = [s.vlan]
    if pcap_filename is not None:
        out["pcap_filename"] = pcap_filename
    return out


# What follows the header in a record; the sensor's `host` goes just before it.
_BODY_KEYS = frozenset({"alert", "flow", "tls", "netdetect"})


def in_context(record: dict[str, Any], context: Mapping[str, str]) -> dict[str, Any]:
    """`record` with the sensor-wide fields in Suricata's places: `in_iface` before
    `event_type`, `host` at the end of the header. The record itself when there are none
    (a replay), else a copy: one record built per alert serves every sink."""
    iface, host = context.get("in_iface"), context.get("host")
    if iface is None and host is None:
        return record
    out: dict[str, Any] = {}
    for key, value in record.items():
        if key == "event_type" and iface is not None:
            out["in_iface"] = iface
        elif key in _BODY_KEYS and host is not None:
            out["host"] = host
            host = None
        out[key] = value
    if host is not None:
        out["host"] = host
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
                "proxy": pf.proxy,
                "proxy_target_port": pf.proxy_port,
                "sanctioned": pf.sanctioned,
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


def alert_to_eve(alert: Alert, context: Mapping[str, str] | None = None) -> dict[str, Any]:
    """`context` holds the sensor-wide fields: `host` (sensor name) and `in_iface` (live)."""
    s = alert.suspect
    techniques = list(dict.fromkeys(alert.mitre))
    # An allowlisted match is recorded, not raised: it gets its own event type.
    out = _header(s, s.ts, "allowed" if alert.verdict is Verdict.ALLOWED else "alert",
                  alert.pcap_filename)
    metadata: dict[str, list[str]] = {
        "mitre_tactic_id": ["TA0040"],
        "mitre_tactic_name": ["Impact"],
        "mitre_technique_id": techniques,
        "mitre_technique_name": [_TECHNIQUE_NAMES.get(t, t) for t in techniques],
        "analytic": ["AN0742"],
        "verdict": [alert.verdict.value],
        "dialect": [s.dialect],
    }
    if s.pool_facts.host:
        metadata["pool_host"] = [s.pool_facts.host]
    out["alert"] = {
        "action": "allowed",
        "gid": 1,
        "signature_id": SIGNATURE_IDS.get(s.dialect, SIGNATURE_IDS["unknown"]),
        "rev": 1,
        "signature": signature_text(s),
        "category": CATEGORY,
        "severity": alert.severity,
        "metadata": metadata,
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
        nd.setdefault("host", {})["report"] = msgspec.to_builtins(alert.host)
    if alert.campaign is not None:
        nd["campaign"] = campaign_field(alert.campaign)
    out["netdetect"] = nd
    return in_context(out, context) if context else out


def campaign_field(ref: CampaignRef) -> dict[str, Any]:
    """`netdetect.campaign` of an alert record (the last field of `netdetect`)."""
    return {"id": ref.id, "ties": list(ref.ties)}


# Suricata's flow.reason vocabulary, from ours.
_FLOW_REASON = {"end": "shutdown", "evicted": "forced"}


def flow_to_eve(fe: FlowEnd, context: Mapping[str, str] | None = None) -> dict[str, Any]:
    """An alerted flow's final record, Suricata-style (event_type "flow", same flow_id)."""
    s = fe.suspect
    out = _header(s, s.ts, "flow", fe.pcap_filename)
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
    return in_context(out, context) if context else out


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


_ENCODE = msgspec.json.Encoder().encode
_ESCAPED = re.compile(r"[^\x00-\x7e]")  # json's ensure_ascii escapes DEL too


def _escape(m: re.Match[str]) -> str:
    c = ord(m.group())
    if c < 0x10000:
        return f"\\u{c:04x}"
    c -= 0x10000
    return f"\\u{0xD800 | c >> 10:04x}\\u{0xDC00 | c & 0x3FF:04x}"


def eve_line(record: Mapping[str, Any]) -> bytes:
    """One EVE line with its newline: compact JSON in ASCII, text beyond it as \\u escapes.
    The text of `json.dumps(record, separators=(",", ":"))` at a fraction of its cost, but
    for exponents, written the shortest way (1e-7, not 1e-07; both are JSON).

    Escaping keeps what the wire put in a login or an agent string (bidirectional
    controls, look-alike letters) visible in the log as it is, not rendered."""
    try:
        line = _ENCODE(record)
    except UnicodeEncodeError:  # a lone surrogate: UTF-8 cannot hold it, an escape can
        return (json.dumps(record, separators=(",", ":")) + "\n").encode("ascii")
    if not line.isascii() or b"\x7f" in line:
        # These occur only inside strings: escaping the output text escapes just those.
        line = _ESCAPED.sub(_escape, line.decode("utf-8")).encode("ascii")
    return line + b"\n"


class SinkError(NetdetectError):
    """An alert sink could not write a record; what it had written before stays whole."""


class _TextOutput:
    """A text stream the caller owns (stdout in live, a StringIO in tests)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.name = getattr(stream, "name", "<stream>")

    def write_line(self, line: bytes) -> None:
        self.stream.write(line.decode("ascii"))
        self.stream.flush()

    def reopen(self) -> None:
        pass

    def close(self) -> None:
        pass


class _FdOutput:
    """Whole lines straight to a file descriptor, unbuffered.

    A buffered stream can hold half a line when the disk fills and spill it on the next
    flush or at exit, leaving a torn record a SIEM's JSON parser chokes on. Writing each
    line with os.write and, on failure, cutting a regular file back to its size before the
    line guarantees the file only ever holds whole lines (given one writer, which an EVE
    file has).
    """

    def __init__(self, fd: int, name: str, path: str | None) -> None:
        self.fd = fd
        self.name = name
        self.path = path  # None: not ours to reopen or close (stdout)
        self._regular = stat.S_ISREG(os.fstat(fd).st_mode)

    @classmethod
    def open(cls, path: str) -> _FdOutput:
        return cls(_open_append(path), path, path)

    def write_line(self, line: bytes) -> None:
        data = memoryview(line)
        before = os.fstat(self.fd).st_size if self._regular else 0
        try:
            while data:
                n = os.write(self.fd, data)
                data = data[n:]
        except BaseException:  # a full disk, or Ctrl-C between two partial writes
            if self._regular:
                with contextlib.suppress(OSError):
                    os.ftruncate(self.fd, before)
            raise

    def reopen(self) -> None:
        """After logrotate moved the file away: continue in a new file at the same path."""
        if self.path is None:
            return
        fd = _open_append(self.path)
        old, self.fd = self.fd, fd
        self._regular = stat.S_ISREG(os.fstat(fd).st_mode)
        os.close(old)

    def close(self) -> None:
        if self.path is not None and self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _open_append(path: str) -> int:
    # 0o640: alerts name hosts, wallets and processes; the group (e.g. a log shipper) reads.
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)


class EveWriter:
    """Writes one JSON line per alert (and per alerted flow's end), each whole and at once,
    so a tailing SIEM sees it immediately and never sees half of one.

    A failed write raises SinkError (and counts the record in `lost`); the output is left
    as it was before that record.
    """

    def __init__(
        self,
        stream: IO[str] | None = None,
        *,
        include_allowed: bool = True,
        host: str | None = None,
        in_iface: str | None = None,
        output: _TextOutput | _FdOutput | None = None,
    ) -> None:
        if output is None:
            if stream is None:
                raise ValueError("EveWriter needs a stream or an output")
            output = _TextOutput(stream)
        self._out = output
        self.include_allowed = include_allowed
        self.context: dict[str, str] = {}
        if host:
            self.context["host"] = host
        if in_iface:
            self.context["in_iface"] = in_iface
        self.written = 0
        self.flows_written = 0
        self.lost = 0

    @classmethod
    def to_file(cls, path: str, **kw: Any) -> EveWriter:
        """Append to `path` (created 0640 if missing); reopen() follows a rotation."""
        return cls(output=_FdOutput.open(path), **kw)

    @classmethod
    def to_fd(cls, fd: int, name: str, **kw: Any) -> EveWriter:
        return cls(output=_FdOutput(fd, name, None), **kw)

    @property
    def name(self) -> str:
        return str(self._out.name)

    def write_flow(self, fe: FlowEnd) -> None:
        self._put(flow_to_eve(fe, self.context))
        self.flows_written += 1

    def write(self, alert: Alert, record: dict[str, Any] | None = None) -> None:
        """`record`: the alert's record as `alert_to_eve(alert)` builds it, when the caller
        has it already."""
        if alert.verdict is Verdict.ALLOWED and not self.include_allowed:
            return
        self._put(alert_to_eve(alert, self.context) if record is None
                  else in_context(record, self.context))
        self.written += 1

    def _put(self, record: dict[str, Any]) -> None:
        line = eve_line(record)
        try:
            self._out.write_line(line)
        except OSError as exc:
            self.lost += 1
            raise SinkError(f"{self.name}: {exc.strerror or exc}") from exc

    def reopen(self) -> None:
        try:
            self._out.reopen()
        except OSError as exc:
            raise SinkError(f"{self.name}: reopen: {exc.strerror or exc}") from exc

    def close(self) -> None:
        self._out.close()


def netdetect_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of the top-level `netdetect` object, shipped in the package;
    every other top-level key is Suricata's (its etc/schema.json)."""
    from importlib.resources import files

    text = files("netdetect").joinpath("schemas", "netdetect-eve.schema.json").read_text(
        encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema
