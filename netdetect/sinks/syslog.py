"""EVE records as RFC 5424 syslog messages, over UDP, TCP (RFC 6587 octet counting) or a
local datagram socket such as /dev/log.

The message body is the same EVE JSON line the file sink writes, so a SIEM parses one
format whichever way it arrives (as Suricata's EVE-to-syslog output does).
"""

from __future__ import annotations

import contextlib
import os
import socket
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from netdetect.model import Alert, FlowEnd, Verdict
from netdetect.sinks.eve import SinkError, alert_to_eve, eve_line, flow_to_eve, in_context

FACILITIES = {
    "kern": 0, "user": 1, "daemon": 3, "auth": 4, "syslog": 5, "authpriv": 10,
    **{f"local{i}": 16 + i for i in range(8)},
}
# EVE severity 1 (highest) .. 3 onto syslog's crit / err / warning; flow records are info.
_SEVERITY = {1: 2, 2: 3, 3: 4}
_INFO = 6
MAX_UDP = 65_000  # larger records go over TCP or /dev/log; a datagram cannot carry them
APP_NAME = "netdetect"


def parse_target(text: str) -> tuple[str, Any]:
    """`udp://host:port`, `tcp://host:port` or a local socket path (`/dev/log`)."""
    if text.startswith("/"):
        return "unix", text
    parts = urlsplit(text)
    if parts.scheme not in ("udp", "tcp") or not parts.hostname:
        raise ValueError(f"syslog target {text!r}: want udp://HOST:PORT, tcp://HOST:PORT "
                         "or a socket path such as /dev/log")
    try:
        port = parts.port or (514 if parts.scheme == "udp" else 601)
    except ValueError as exc:
        raise ValueError(f"syslog target {text!r}: {exc}") from None
    return parts.scheme, (parts.hostname, port)


def _sd_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _header_name(text: str, limit: int) -> str:
    """A header field: printable US-ASCII without spaces, or the nil value."""
    clean = "".join(c for c in text if 33 <= ord(c) <= 126)[:limit]
    return clean or "-"


class SyslogSink:
    """One RFC 5424 message per EVE record. A send failure raises SinkError, like the file
    sink: replay stops, the live sensor counts the record as lost and goes on."""

    def __init__(self, target: str, *, facility: str = "local5", hostname: str | None = None,
                 eve_context: dict[str, str] | None = None) -> None:
        if facility not in FACILITIES:
            raise ValueError(f"unknown syslog facility {facility!r}")
        self.target = target
        self.kind, self.address = parse_target(target)
        self.facility = FACILITIES[facility]
        self.hostname = _header_name(hostname or socket.gethostname(), 255)
        self.context = eve_context or {}
        self.sock: socket.socket | None = None
        self.written = 0
        self.lost = 0

    def _connect(self) -> socket.socket:
        if self.sock is not None:
            return self.sock
        if self.kind == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        else:
            host, port = self.address
            family = socket.getaddrinfo(host, port)[0][0]
            sock = socket.socket(
                family, socket.SOCK_DGRAM if self.kind == "udp" else socket.SOCK_STREAM)
        try:
            sock.connect(self.address)
        except OSError:
            sock.close()
            raise
        self.sock = sock
        return sock

    def message(self, record: dict[str, Any], severity: int, msgid: str) -> bytes:
        pri = self.facility * 8 + severity
        ts = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        sd = "-"
        alert = record.get("alert")
        if isinstance(alert, dict):
            sd = (f'[netdetect@32473 sid="{alert["signature_id"]}" '
                  f'flow_id="{record["flow_id"]}" '
                  f'verdict="{_sd_escape(str(record.get("netdetect", {}).get("verdict", "")))}"]')
        # BOM: RFC 5424 says a UTF-8 MSG starts with one, so receivers do not guess.
        return (f"<{pri}>1 {ts} {self.hostname} {APP_NAME} {os.getpid()} {msgid} {sd} "
                .encode() + b"\xef\xbb\xbf" + eve_line(record)[:-1])

    def write(self, alert: Alert, record: dict[str, Any] | None = None) -> None:
        """`record`: the alert's record as `alert_to_eve(alert)` builds it, if made already."""
        record = (alert_to_eve(alert, self.context) if record is None
                  else in_context(record, self.context))
        severity = _INFO if alert.verdict is Verdict.ALLOWED else _SEVERITY.get(
            alert.severity, 4)
        self._send(self.message(record, severity, str(record["event_type"])))

    def write_flow(self, fe: FlowEnd) -> None:
        self._send(self.message(flow_to_eve(fe, self.context), _INFO, "flow"))

    def _send(self, msg: bytes) -> None:
        if self.kind != "tcp" and len(msg) > MAX_UDP:
            self.lost += 1
            raise SinkError(f"syslog {self.target}: record of {len(msg)} bytes is too large "
                            "for a datagram (use tcp://)")
        try:
            sock = self._connect()
            if self.kind == "tcp":
                sock.sendall(f"{len(msg)} ".encode() + msg)  # RFC 6587 octet counting
            else:
                sock.send(msg)
        except OSError as exc:
            self.lost += 1
            self.close()  # the next record reconnects (a restarted collector)
            raise SinkError(f"syslog {self.target}: {exc.strerror or exc}") from exc
        self.written += 1

    def reopen(self) -> None:
        self.close()

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
            self.sock = None
