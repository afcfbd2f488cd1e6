"""Topic names, id rules and broker settings: what every MQTT participant agrees on.

Kept free of crypto and MQTT-client imports so the sensor's replay path can load its config
without them.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from pathlib import Path

PREFIX = "netdetect/v1"
ALERT_TOPIC = f"{PREFIX}/alerts"

# Ids become single topic levels and mosquitto ACL %u substitutions: no wildcards, no '/',
# nothing a shell or a log line would trip over.
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_NONCE_RE = re.compile(r"[0-9a-f]{32}")


def valid_id(value: str) -> bool:
    """True when `value` may be used as a host or sensor id (one safe topic level)."""
    return _ID_RE.fullmatch(value) is not None


def valid_nonce(value: str) -> bool:
    """True for a 128-bit lowercase hex nonce."""
    return _NONCE_RE.fullmatch(value) is not None


# Client certificates name their role in the CN: ``host:<host id>`` for an agent,
# ``sensor:<sensor id>`` for a sensor, ``reader:<name>`` for an alert consumer. The broker
# takes the CN as the MQTT username, and every topic level that speaks for a host is that
# host's full CN, so the ACL's `pattern` lines (``%u``, which apply to every client) give a
# certificate rights only over topics named after itself: a sensor's or a reader's CN never
# forms a host level (it lacks ``host:``), and a host's CN never matches a sensor's `user`
# block. Host ids themselves (inventory, agent.toml, reports) stay bare: ``web-01``.
HOST_CN = "host:"
SENSOR_CN = "sensor:"
READER_CN = "reader:"


def host_cn(host_id: str) -> str:
    """The CN of `host_id`'s certificate, and its level in every host topic."""
    return f"{HOST_CN}{host_id}"


def sensor_cn(sensor_id: str) -> str:
    """The CN of sensor `sensor_id`'s certificate (its username in the broker ACL)."""
    return f"{SENSOR_CN}{sensor_id}"


def host_of_level(level: str) -> str | None:
    """The host id a topic level (a host certificate's CN) names, or None."""
    if not level.startswith(HOST_CN):
        return None
    host_id = level[len(HOST_CN):]
    return host_id if valid_id(host_id) else None


def query_topic(host_id: str) -> str:
    return f"{PREFIX}/hosts/{host_cn(host_id)}/query"


def status_topic(host_id: str) -> str:
    return f"{PREFIX}/hosts/{host_cn(host_id)}/status"


def status_filter() -> str:
    return f"{PREFIX}/hosts/+/status"


# Reports go to ``sensors/<sensor id>/<process token>/reports/<host id>``. The token is
# random per sensor process: processes that share a sensor id (a `replay --confirm` beside a
# running `sniff`) would otherwise each receive the other's reports and count them as forged.


def new_process_token() -> str:
    """A fresh random token naming one sensor process's report topics."""
    return secrets.token_hex(8)


def report_topic(sensor_id: str, token: str, host_id: str) -> str:
    return f"{PREFIX}/sensors/{sensor_id}/{token}/reports/{host_cn(host_id)}"


def report_filter(sensor_id: str, token: str) -> str:
    return f"{PREFIX}/sensors/{sensor_id}/{token}/reports/+"


def host_of_status_topic(topic: str) -> str | None:
    """The host id in a status topic, or None when the topic is not one."""
    parts = topic.split("/")
    if len(parts) == 5 and parts[:3] == ["netdetect", "v1", "hosts"] and parts[4] == "status":
        return host_of_level(parts[3])
    return None


def host_of_report_topic(topic: str, sensor_id: str, token: str) -> str | None:
    """The host id in this sensor process's report topic, or None when the topic is not one."""
    parts = topic.split("/")
    if (
        len(parts) == 7
        and parts[:3] == ["netdetect", "v1", "sensors"]
        and parts[3] == sensor_id
        and parts[4] == token
        and parts[5] == "reports"
    ):
        return host_of_level(parts[6])
    return None


def response_topic_ok(topic: str, host_id: str) -> bool:
    """True when `topic` is ``netdetect/v1/sensors/<id>/<token>/reports/host:<host_id>``."""
    parts = topic.split("/")
    return (
        len(parts) == 7
        and parts[:3] == ["netdetect", "v1", "sensors"]
        and valid_id(parts[3])
        and valid_id(parts[4])
        and parts[5] == "reports"
        and parts[6] == host_cn(host_id)
    )


@dataclass(frozen=True, slots=True)
class MqttSettings:
    """Where and how to reach the broker; every client authenticates with its certificate."""

    host: str
    port: int
    ca: Path
    cert: Path
    key: Path
    keepalive: int = 30
    connect_timeout: float = 10.0
    reconnect_min: float = 0.5
    reconnect_max: float = 60.0
