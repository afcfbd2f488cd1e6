"""Sensor and agent configuration: frozen dataclasses loaded from TOML; errors carry path:line.

Every problem in a file is collected before raising, so one run of ``netdetect ... --config``
shows them all (house rule 5). TOML syntax errors carry the parser's line; schema errors (wrong
type, unknown key, value out of range) carry the line of the offending key, found by scanning
the file, since ``tomllib`` keeps no positions.
"""

from __future__ import annotations

import ipaddress
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netdetect.agent.topics import ALERT_TOPIC, MqttSettings, host_cn, sensor_cn, valid_id
from netdetect.correlate import Allowlist, CorrelateConfig
from netdetect.errors import ConfigError

KeyPath = tuple[str | int, ...]

_AT_LINE = re.compile(r"\(at line (\d+), column \d+\)")
_ARRAY_HEADER = re.compile(r"^\s*\[\[\s*([^\]]+?)\s*\]\]")
_TABLE_HEADER = re.compile(r"^\s*\[\s*([^\]\[]+?)\s*\]")
_BARE = r"""(?:"[^"]*"|'[^']*'|[A-Za-z0-9_-]+)"""
_KEY = re.compile(rf"^\s*({_BARE}(?:\s*\.\s*{_BARE})*)\s*=")


def _split_key(text: str) -> tuple[str, ...]:
    return tuple(part.strip().strip("\"'") for part in text.split("."))


class _Missing:
    pass


REQUIRED: Any = _Missing()


class TomlDoc:
    """A parsed TOML file that remembers where each key was written and collects errors."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}:0: cannot read: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}:1: not UTF-8: {exc}") from exc
        self._lines = text.splitlines()
        try:
            self.data: dict[str, Any] = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            msg = str(exc)
            m = _AT_LINE.search(msg)
            line = int(m.group(1)) if m else max(len(self._lines), 1)
            msg = _AT_LINE.sub("", msg).replace("(at end of document)", "").strip()
            raise ConfigError(f"{path}:{line}: {msg}") from exc
        self.errors: list[str] = []
        self._index = self._scan()

    def _scan(self) -> dict[KeyPath, int]:
        """Map every table and key path to the line it was first written on."""
        index: dict[KeyPath, int] = {}
        counts: dict[tuple[str, ...], int] = {}
        table: KeyPath = ()
        for no, line in enumerate(self._lines, 1):
            if m := _ARRAY_HEADER.match(line):
                names = _split_key(m.group(1))
                counts[names] = counts.get(names, 0) + 1
                table = (*self._with_indices(names[:-1], counts), names[-1], counts[names] - 1)
                index.setdefault(table, no)
            elif m := _TABLE_HEADER.match(line):
                table = self._with_indices(_split_key(m.group(1)), counts)
                index.setdefault(table, no)
            elif m := _KEY.match(line):
                index.setdefault((*table, *_split_key(m.group(1))), no)
        return index

    @staticmethod
    def _with_indices(names: tuple[str, ...], counts: dict[tuple[str, ...], int]) -> KeyPath:
        # A sub-table of an array of tables belongs to that array's latest element.
        out: list[str | int] = []
        for i, name in enumerate(names):
            out.append(name)
            n = counts.get(names[: i + 1])
            if n:
                out.append(n - 1)
        return tuple(out)

    def line_of(self, keypath: KeyPath) -> int:
        for end in range(len(keypath), 0, -1):
            line = self._index.get(keypath[:end])
            if line is not None:
                return line
        return 1

    def error(self, keypath: KeyPath, message: str) -> None:
        name = ".".join(str(k) if isinstance(k, str) else f"[{k}]" for k in keypath)
        name = name.replace(".[", "[")
        self.errors.append(f"{self.path}:{self.line_of(keypath)}: {name}: {message}")

    def check(self) -> None:
        """Raise one ConfigError listing every error collected so far."""
        if self.errors:
            raise ConfigError("\n".join(self.errors))

    def root(self) -> Section:
        return Section(self, (), self.data)


class Section:
    """Typed access to one TOML table; every key read is marked, the rest are reported unknown."""

    def __init__(self, doc: TomlDoc, keypath: KeyPath, table: dict[str, Any]) -> None:
        self.doc = doc
        self.keypath = keypath
        self.table = table
        self._seen: set[str] = set()

    def _get(self, key: str, kind: type | tuple[type, ...], what: str, default: Any) -> Any:
        self._seen.add(key)
        if key not in self.table:
            if default is REQUIRED:
                self.doc.error((*self.keypath, key), "missing required key")
            return default
        value = self.table[key]
        # bool is an int subclass; a `port = true` must not pass as 1.
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            self.doc.error((*self.keypath, key), f"expected {what}, got a boolean")
            return default
        if not isinstance(value, kind):
            self.doc.error((*self.keypath, key), f"expected {what}, got {type(value).__name__}")
            return default
        return value

    def text(self, key: str, default: Any = REQUIRED, *, pattern: re.Pattern[str] | None = None,
            id_like: bool = False) -> Any:
        value = self._get(key, str, "a string", default)
        if isinstance(value, str) and value is not default:
            if id_like and not valid_id(value):
                self.doc.error(
                    (*self.keypath, key),
                    f"{value!r} is not a valid id (1-64 of A-Z a-z 0-9 . _ -, starting with a "
                    "letter or digit)",
                )
            elif pattern is not None and not pattern.fullmatch(value):
                self.doc.error((*self.keypath, key), f"{value!r} does not match {pattern.pattern}")
        return value

    def integer(self, key: str, default: Any = REQUIRED, *, lo: int | None = None,
            hi: int | None = None) -> Any:
        value = self._get(key, int, "an integer", default)
        if isinstance(value, int) and value is not default:
            self._range(key, value, lo, hi)
        return value

    def number(self, key: str, default: Any = REQUIRED, *, lo: float | None = None,
              hi: float | None = None) -> Any:
        value = self._get(key, (int, float), "a number", default)
        if isinstance(value, int | float) and value is not default:
            if not math.isfinite(value):
                self.doc.error((*self.keypath, key), "must be a finite number")
                return default
            self._range(key, value, lo, hi)
            return float(value)
        return value

    def flag(self, key: str, default: Any = REQUIRED) -> Any:
        return self._get(key, bool, "true or false", default)

    def path(self, key: str, default: Any = REQUIRED, *, must_exist: bool = True) -> Any:
        value = self.text(key, default)
        if not isinstance(value, str) or value is default:
            return value
        # Relative paths are relative to the config file, so a deployment directory can move.
        p = Path(value)
        if not p.is_absolute():
            p = self.doc.path.parent / p
        if must_exist and not p.exists():
            self.doc.error((*self.keypath, key), f"{p} does not exist")
        return p

    def private_key(self, key: str) -> Any:
        """A path to a private key that only its owner may read (ssh refuses such keys too)."""
        p = self.path(key)
        if isinstance(p, Path):
            try:
                mode = p.stat().st_mode & 0o777
            except OSError:
                return p  # reported by path() already
            if mode & 0o077:
                self.doc.error((*self.keypath, key),
                               f"{p} is readable by group or others (mode {mode:04o}); "
                               "run chmod 600 on it")
        return p

    def directory(self, key: str, default: str) -> str:
        """A directory that must exist, relative to the config file; `default` as given."""
        value = self.path(key, default)
        if isinstance(value, Path) and value.exists() and not value.is_dir():
            self.doc.error((*self.keypath, key), f"{value} is not a directory")
        return str(value)

    def str_list(self, key: str, default: Any = (), *, id_like: bool = False) -> tuple[str, ...]:
        value = self._get(key, list, "a list of strings", REQUIRED if default is REQUIRED else None)
        if value is None or value is REQUIRED:
            return () if default is REQUIRED else tuple(default)
        out: list[str] = []
        for i, item in enumerate(value):
            if not isinstance(item, str):
                self.doc.error((*self.keypath, key, i), f"expected a string, got {item!r}")
            elif id_like and not valid_id(item):
                self.doc.error((*self.keypath, key, i), f"{item!r} is not a valid id")
            else:
                out.append(item)
        return tuple(out)

    def path_list(self, key: str) -> tuple[Path, ...]:
        out: list[Path] = []
        for item in self.str_list(key, REQUIRED):
            p = Path(item)
            if not p.is_absolute():
                p = self.doc.path.parent / p
            if not p.exists():
                self.doc.error((*self.keypath, key), f"{p} does not exist")
            out.append(p)
        return tuple(out)

    def _range(self, key: str, value: float, lo: float | None, hi: float | None) -> None:
        if lo is not None and value < lo:
            self.doc.error((*self.keypath, key), f"{value} is below the minimum {lo}")
        if hi is not None and value > hi:
            self.doc.error((*self.keypath, key), f"{value} is above the maximum {hi}")

    def section(self, key: str, *, required: bool = False) -> Section:
        self._seen.add(key)
        value = self.table.get(key)
        if value is None:
            if required:
                self.doc.error((*self.keypath, key), "missing required table")
            return Section(self.doc, (*self.keypath, key), {})
        if not isinstance(value, dict):
            self.doc.error((*self.keypath, key), "expected a table")
            return Section(self.doc, (*self.keypath, key), {})
        return Section(self.doc, (*self.keypath, key), value)

    def sections(self, key: str) -> list[Section]:
        """The elements of an array of tables (``[[key]]``)."""
        self._seen.add(key)
        value = self.table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.doc.error((*self.keypath, key), f"expected [[{key}]] tables")
            return []
        return [Section(self.doc, (*self.keypath, key, i), v) for i, v in enumerate(value)]

    def done(self) -> None:
        """Report every key of this table that no reader asked for (typos, stale options)."""
        for key in self.table:
            if key not in self._seen:
                self.doc.error((*self.keypath, key), "unknown key")


# --- shared pieces ----------------------------------------------------------------------------


def _cert_cn(path: Path) -> str | None:
    """The subject CN of the PEM certificate at `path`; None when it cannot be read."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return None
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def _mqtt(sec: Section, cn: str | None = None) -> MqttSettings:
    """The [mqtt] table; with `cn`, the client certificate must be issued to that CN, since
    the broker ACL grants topics by the CN (``host:<id>`` / ``sensor:<id>``)."""
    settings = MqttSettings(
        host=sec.text("host"),
        port=sec.integer("port", 8883, lo=1, hi=65535),
        ca=sec.path("ca"),
        cert=sec.path("cert"),
        key=sec.private_key("key"),
        keepalive=sec.integer("keepalive", 30, lo=5, hi=3600),
        connect_timeout=sec.number("connect_timeout", 10.0, lo=0.1, hi=300),
        reconnect_min=sec.number("reconnect_min", 0.5, lo=0.01, hi=3600),
        reconnect_max=sec.number("reconnect_max", 60.0, lo=0.01, hi=3600),
    )
    if cn is not None and isinstance(settings.cert, Path) and settings.cert.is_file():
        actual = _cert_cn(settings.cert)
        if actual is None:
            sec.doc.error((*sec.keypath, "cert"), f"{settings.cert} is not a PEM certificate")
        elif actual != cn:
            sec.doc.error((*sec.keypath, "cert"),
                          f"{settings.cert} is issued to CN {actual!r}, but the broker ACL "
                          f"gives this id's rights only to CN {cn!r} (deploy/make-pki.sh "
                          "issues it)")
    sec.done()
    return settings


_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


def _allowlist(sec: Section) -> Allowlist:
    hashes = sec.str_list("sha256")
    for i, h in enumerate(hashes):
        if not _SHA256.fullmatch(h):
            sec.doc.error((*sec.keypath, "sha256", i), f"{h!r} is not a SHA-256 hex digest")
    exes = sec.str_list("exes")
    for i, exe in enumerate(exes):
        if not exe.startswith("/"):
            sec.doc.error((*sec.keypath, "exes", i), f"{exe!r} is not an absolute path")
    allow = Allowlist(
        hosts=frozenset(sec.str_list("hosts")),
        tags=frozenset(sec.str_list("tags")),
        exes=frozenset(exes),
        sha256=frozenset(h.lower() for h in hashes),
        pool_domains=tuple(d.lower().strip(".") for d in sec.str_list("pool_domains")),
        wallets=frozenset(sec.str_list("wallets")),
    )
    sec.done()
    return allow


# --- sensor -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConfirmConfig:
    signing_key: Path
    timeout: float = 10.0  # seconds to wait for a report, CPU sampling included
    cpu_window: float = 2.0
    top_n: int = 5
    max_outstanding: int = 64  # queries in flight at once
    query_ttl: float = 30.0  # how long the query stays valid for the agent
    # Asking early: a flow whose score reaches ask_threshold (below the alert threshold) is
    # put to its host, at most ask_per_host times per ask_period seconds per host and
    # ask_budget times per ask_period overall; 0 turns early asking off.
    ask_threshold: int = 25
    ask_per_host: int = 4
    ask_budget: int = 60
    ask_period: float = 60.0


@dataclass(frozen=True, slots=True)
class AlertsConfig:
    mqtt: bool = False
    topic: str = ALERT_TOPIC
    buffer: int = 10_000  # alerts kept while the broker is unreachable


@dataclass(frozen=True, slots=True)
class SensorConfig:
    sensor_id: str
    mqtt: MqttSettings | None
    confirm: ConfirmConfig | None
    correlate: CorrelateConfig = field(default_factory=CorrelateConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    inventory: Path | None = None
    allowlist: Allowlist = field(default_factory=Allowlist)
    source: Path | None = None
    # Addresses whose DHCP ACKs may teach host addresses; empty: any sender's (with a warning).
    dhcp_servers: tuple[str, ...] = ()


def load_sensor_config(path: Path) -> SensorConfig:
    """Load sensor.toml; raise ConfigError listing every problem with its path:line."""
    doc = TomlDoc(path)
    root = doc.root()
    sensor = root.section("sensor", required=True)
    sensor_id = sensor.text("id", id_like=True)
    inventory = sensor.path("inventory", None)
    sensor.done()

    mqtt_sec = root.section("mqtt")
    want_cn = sensor_cn(sensor_id) if isinstance(sensor_id, str) and valid_id(sensor_id) else None
    mqtt = _mqtt(mqtt_sec, want_cn) if mqtt_sec.table else None

    confirm_sec = root.section("confirm")
    confirm: ConfirmConfig | None = None
    if confirm_sec.table:
        if mqtt is None:
            doc.error(("confirm",), "host confirmation needs an [mqtt] table")
        confirm = ConfirmConfig(
            signing_key=confirm_sec.private_key("signing_key"),
            timeout=confirm_sec.number("timeout", 10.0, lo=0.05, hi=600),
            cpu_window=confirm_sec.number("cpu_window", 2.0, lo=0.0, hi=60),
            top_n=confirm_sec.integer("top_n", 5, lo=0, hi=50),
            max_outstanding=confirm_sec.integer("max_outstanding", 64, lo=1, hi=100_000),
            query_ttl=confirm_sec.number("query_ttl", 30.0, lo=1, hi=3600),
            ask_threshold=confirm_sec.integer("ask_threshold", 25, lo=0, hi=100),
            ask_per_host=confirm_sec.integer("ask_per_host", 4, lo=1, hi=100_000),
            ask_budget=confirm_sec.integer("ask_budget", 60, lo=1, hi=10_000_000),
            ask_period=confirm_sec.number("ask_period", 60.0, lo=1, hi=86_400),
        )
        if confirm.cpu_window >= confirm.timeout:
            doc.error(("confirm", "cpu_window"), "must be shorter than confirm.timeout")
        confirm_sec.done()

    corr = root.section("correlate")
    correlate = CorrelateConfig(
        cpu_threshold=corr.number("cpu_threshold", 50.0, lo=0.0, hi=100_000),
        rss_threshold_mb=corr.integer("rss_threshold_mb", 2048, lo=1),
        hugepages_threshold_mb=corr.integer("hugepages_threshold_mb", 256, lo=1),
        high_score=corr.integer("high_score", 80, lo=0, hi=100),
        confirm_score=corr.integer("confirm_score", 30, lo=1, hi=1000),
        ask_confirm_score=corr.integer("ask_confirm_score", 50, lo=1, hi=1000),
    )
    corr.done()

    al = root.section("alerts")
    alerts = AlertsConfig(
        mqtt=al.flag("mqtt", False),
        topic=al.text("topic", ALERT_TOPIC),
        buffer=al.integer("buffer", 10_000, lo=1, hi=10_000_000),
    )
    if alerts.mqtt and mqtt is None:
        doc.error(("alerts", "mqtt"), "publishing alerts over MQTT needs an [mqtt] table")
    if any(c in alerts.topic for c in "+#") or not alerts.topic:
        doc.error(("alerts", "topic"), "must be a topic name without wildcards")
    al.done()

    hosts = root.section("hosts")
    dhcp_servers = hosts.str_list("dhcp_servers")
    for i, text in enumerate(dhcp_servers):
        try:
            ipaddress.ip_address(text)
        except ValueError:
            doc.error(("hosts", "dhcp_servers", i), f"{text!r} is not an IP address")
    hosts.done()

    allowlist = _allowlist(root.section("allowlist"))
    root.done()
    doc.check()
    return SensorConfig(
        sensor_id=sensor_id,
        mqtt=mqtt,
        confirm=confirm,
        correlate=correlate,
        alerts=alerts,
        inventory=inventory,
        allowlist=allowlist,
        source=path,
        dhcp_servers=dhcp_servers,
    )


# --- agent ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgentConfig:
    host_id: str
    mqtt: MqttSettings
    trusted_keys: tuple[Path, ...]  # sensor Ed25519 public keys (PEM)
    root: str = "/"  # filesystem root the collectors read (a container's host mount)
    max_concurrent: int = 32  # reports in flight at once; more get an immediate "busy" answer
    max_cpu_window: float = 5.0  # caps what a query may ask the agent to spend sampling
    max_top_n: int = 20
    clock_skew: float = 30.0  # tolerated difference between sensor and agent clocks
    max_query_ttl: float = 300.0  # queries valid longer than this are refused
    nonce_cache: int = 4096  # nonces remembered for replay detection
    status_interval: float = 60.0  # seconds between status refreshes (counters, liveness)
    log_interval: float = 10.0  # at most one line per kind of refused/shed query per interval
    state_dir: Path | None = None  # where answered nonces survive a restart
    source: Path | None = None


def load_agent_config(path: Path) -> AgentConfig:
    """Load agent.toml; raise ConfigError listing every problem with its path:line."""
    doc = TomlDoc(path)
    root = doc.root()
    agent = root.section("agent", required=True)
    host_id = agent.text("host_id", id_like=True)
    trusted = agent.path_list("trusted_keys")
    if not trusted and "trusted_keys" in agent.table:
        doc.error(("agent", "trusted_keys"), "at least one sensor public key is needed")
    # Relative to the config file like every path here; a root that is missing would make
    # every persistence scan silently find nothing.
    cfg_root = agent.directory("root", "/")
    max_concurrent = agent.integer("max_concurrent", 32, lo=1, hi=64)
    max_cpu_window = agent.number("max_cpu_window", 5.0, lo=0.0, hi=60)
    max_top_n = agent.integer("max_top_n", 20, lo=0, hi=200)
    clock_skew = agent.number("clock_skew", 30.0, lo=0.0, hi=3600)
    max_query_ttl = agent.number("max_query_ttl", 300.0, lo=1, hi=86400)
    nonce_cache = agent.integer("nonce_cache", 4096, lo=16, hi=10_000_000)
    status_interval = agent.number("status_interval", 60.0, lo=0.05, hi=86400)
    log_interval = agent.number("log_interval", 10.0, lo=0.1, hi=86400)
    # Without a state directory a restart would forget which queries were answered; next to
    # the config is the fallback so that a replay cache exists even in a minimal deployment.
    state_dir = agent.path("state_dir", None)
    if isinstance(state_dir, Path) and state_dir.exists() and not state_dir.is_dir():
        doc.error(("agent", "state_dir"), f"{state_dir} is not a directory")
    agent.done()
    mqtt_sec = root.section("mqtt", required=True)
    want_cn = host_cn(host_id) if isinstance(host_id, str) and valid_id(host_id) else None
    mqtt = _mqtt(mqtt_sec, want_cn) if mqtt_sec.table else None
    root.done()
    doc.check()
    assert mqtt is not None  # doc.check() raised otherwise
    return AgentConfig(
        host_id=host_id,
        mqtt=mqtt,
        trusted_keys=trusted,
        root=cfg_root,
        max_concurrent=max_concurrent,
        max_cpu_window=max_cpu_window,
        max_top_n=max_top_n,
        clock_skew=clock_skew,
        max_query_ttl=max_query_ttl,
        nonce_cache=nonce_cache,
        status_interval=status_interval,
        log_interval=log_interval,
        state_dir=state_dir if isinstance(state_dir, Path) else path.resolve().parent,
        source=path,
    )
