"""The sensor↔agent wire protocol: topics, signed query envelopes, status messages, MQTT setup.

Query envelope (the MQTT payload on ``netdetect/v1/hosts/host:<host-id>/query``)::

    {"v": 1, "kid": "<16 hex>", "query": "<base64 of the HostQuery JSON bytes>",
     "sig": "<base64 Ed25519 signature>"}

The signature is detached from the JSON around it and covers exactly::

    b"netdetect-query-v1\\x00" + response_topic (UTF-8) + b"\\x00" + query bytes

so that neither the query bytes nor the MQTT v5 ResponseTopic property can be swapped without
breaking it (a captured query cannot be redirected to another sensor's report topic). The
CorrelationData property must equal the query's nonce (ASCII hex). ``kid`` is the first 16 hex
digits of SHA-256 over the raw 32-byte public key; an agent may trust several sensor keys.

Reports are plain HostReport JSON, published by the agent to the response topic; the broker ACL
binds ``.../reports/<host-id>`` to the holder of that host's certificate, and the sensor checks
that the report's host id matches the topic.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import random
import ssl
from typing import TYPE_CHECKING

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from netdetect.agent.schema import (
    MAX_QUERY_BYTES,
    MAX_REPORT_BYTES,
    SCHEMA_VERSION,
    HostQuery,
    HostReport,
    safe_struct,
)
from netdetect.agent.topics import MqttSettings, valid_nonce
from netdetect.errors import AgentError, ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

SIGN_CONTEXT = b"netdetect-query-v1\x00"
# Envelope overhead: base64 inflates by 4/3, plus the signature, key id and JSON punctuation.
MAX_ENVELOPE_BYTES = MAX_QUERY_BYTES * 4 // 3 + 512
MAX_STATUS_BYTES = 16 * 1024


# --- keys -------------------------------------------------------------------------------------


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """An Ed25519 private key from a PEM file (as written by deploy/make-pki.sh)."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"{path}:1: cannot load Ed25519 private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path}:1: not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file."""
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"{path}:1: cannot load Ed25519 public key: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"{path}:1: not an Ed25519 public key")
    return key


# --- query envelopes --------------------------------------------------------------------------


class Envelope(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    v: int
    kid: str
    query: str
    sig: str


_envelope_decoder = msgspec.json.Decoder(Envelope)
_query_decoder = msgspec.json.Decoder(HostQuery)
_encoder = msgspec.json.Encoder()


def _signed_bytes(response_topic: str, query_bytes: bytes) -> bytes:
    return SIGN_CONTEXT + response_topic.encode() + b"\x00" + query_bytes


def seal_query(query: HostQuery, response_topic: str, key: Ed25519PrivateKey) -> bytes:
    """The signed envelope for `query`, answered on `response_topic`."""
    raw = _encoder.encode(query)
    if len(raw) > MAX_QUERY_BYTES:
        raise AgentError(f"query is {len(raw)} bytes, over the {MAX_QUERY_BYTES} cap")
    sig = key.sign(_signed_bytes(response_topic, raw))
    env = Envelope(
        v=SCHEMA_VERSION,
        kid=key_id(key.public_key()),
        query=base64.b64encode(raw).decode(),
        sig=base64.b64encode(sig).decode(),
    )
    return _encoder.encode(env)


class Rejected(Exception):  # noqa: N818 - a verdict, not a failure of the program
    """A query the agent will not answer; `reason` is the counter name."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def open_query(
    payload: bytes,
    response_topic: str | None,
    trusted: dict[str, Ed25519PublicKey],
) -> HostQuery:
    """Verify an envelope's signature and return the query; raise Rejected otherwise.

    Only the cryptographic and structural checks live here; freshness, host id, replay and
    topic scope are the agent's (they need its clock and state).
    """
    if len(payload) > MAX_ENVELOPE_BYTES:
        raise Rejected("oversized", f"{len(payload)} bytes")
    try:
        env = _envelope_decoder.decode(payload)
    except msgspec.DecodeError as exc:
        # A bare HostQuery (or an envelope missing its signature) is "unsigned", which an
        # operator will want to tell apart from line noise.
        try:
            _query_decoder.decode(payload)
        except msgspec.DecodeError:
            if b'"sig"' not in payload and b'"query"' in payload:
                raise Rejected("unsigned", str(exc)) from exc
            raise Rejected("malformed", str(exc)) from exc
        raise Rejected("unsigned", "bare query without envelope") from exc
    if not env.sig:
        raise Rejected("unsigned", "empty signature")
    if env.v != SCHEMA_VERSION:
        raise Rejected("version", f"envelope v{env.v}")
    public = trusted.get(env.kid)
    if public is None:
        raise Rejected("unknown-key", env.kid[:32])
    if response_topic is None:
        raise Rejected("no-response-topic")
    try:
        raw = base64.b64decode(env.query, validate=True)
        sig = base64.b64decode(env.sig, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Rejected("malformed", "bad base64") from exc
    try:
        public.verify(sig, _signed_bytes(response_topic, raw))
    except InvalidSignature as exc:
        raise Rejected("bad-signature") from exc
    try:
        query = _query_decoder.decode(raw)
    except msgspec.DecodeError as exc:
        raise Rejected("malformed", str(exc)) from exc
    if query.v != SCHEMA_VERSION:
        raise Rejected("version", f"query v{query.v}")
    if not valid_nonce(query.nonce):
        raise Rejected("malformed", "nonce is not 32 lowercase hex digits")
    return query


# --- status -----------------------------------------------------------------------------------


class Status(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The retained message on a host's status topic; `state` is "online" or "offline"."""

    state: str
    host_id: str
    ts: float
    version: str = ""
    pid: int = 0
    reason: str = ""
    counters: dict[str, int] = {}


_status_decoder = msgspec.json.Decoder(Status)


def encode_status(status: Status) -> bytes:
    return _encoder.encode(status)


def decode_status(payload: bytes) -> Status:
    """Strictly decode a status message; raise AgentError when it is not one."""
    if len(payload) > MAX_STATUS_BYTES:
        raise AgentError(f"status message of {len(payload)} bytes")
    try:
        status = _status_decoder.decode(payload)
    except msgspec.DecodeError as exc:
        raise AgentError(f"bad status message: {exc}") from exc
    if status.state not in {"online", "offline"}:
        raise AgentError(f"bad status state {status.state!r}")
    return status


# --- MQTT connection --------------------------------------------------------------------------


def publish_properties(
    *,
    correlation: bytes | None = None,
    response_topic: str | None = None,
    expiry: float | None = None,
) -> Properties:
    """MQTT v5 PUBLISH properties for a query (response topic, expiry) or a report."""
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    if correlation is not None:
        props.CorrelationData = correlation
    if response_topic is not None:
        props.ResponseTopic = response_topic
    if expiry is not None:
        # The broker drops a query nobody picked up in time instead of delivering it stale.
        props.MessageExpiryInterval = max(1, math.ceil(expiry))
    props.ContentType = "application/json"
    return props


def refused(code: object) -> bool:
    """True for a SUBACK/PUBACK reason code that means failure (0x80 and above)."""
    value = code.value if isinstance(code, ReasonCode) else code
    return isinstance(value, int) and value >= 0x80


def tls_context(settings: MqttSettings) -> ssl.SSLContext:
    """A client TLS context: verify the broker against our CA, present our certificate."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(settings.ca))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(settings.cert), str(settings.key))
    return ctx


class Backoff:
    """Exponential reconnect delay with full jitter, so a fleet does not reconnect in step."""

    def __init__(self, low: float, high: float) -> None:
        self.low = max(low, 0.01)
        self.high = max(high, self.low)
        self._next = self.low

    def next(self) -> float:
        delay = random.uniform(self.low, self._next)
        self._next = min(self._next * 2, self.high)
        return delay

    def reset(self) -> None:
        self._next = self.low


# --- reports ----------------------------------------------------------------------------------


def encode_report(report: HostReport, limit: int = MAX_REPORT_BYTES) -> tuple[bytes, bool]:
    """The report as JSON, shrunk until it fits `limit` (the sensor drops bigger ones unread),
    and whether it had to be shrunk.

    What goes first is what matters least for the verdict: the top-N list, then persistence
    entries that do not reference the process, then long command lines and texts.
    """
    report = safe_struct(report)  # whichever collector built it
    raw = _encoder.encode(report)
    if len(raw) <= limit:
        return raw, False
    note = ["report truncated to fit the size cap"]
    def drop_top(r: HostReport) -> HostReport:
        return msgspec.structs.replace(r, top=[], errors=[*r.errors[:16], *note])

    def keep_relevant(r: HostReport) -> HostReport:
        kept = [p for p in r.persistence if p.references_process][:32]
        return msgspec.structs.replace(r, persistence=kept)

    def clip_texts(r: HostReport) -> HostReport:
        proc = r.process
        if proc is not None:
            proc = msgspec.structs.replace(
                proc,
                cmdline=[a[:256] for a in proc.cmdline[:32]],
                parents=proc.parents[:16],
                traits=proc.traits[:32],
            )
        entries = [msgspec.structs.replace(p, text=p.text[:512]) for p in r.persistence]
        return msgspec.structs.replace(r, persistence=entries, process=proc)

    steps: list[Callable[[HostReport], HostReport]] = [drop_top, keep_relevant, clip_texts]
    for step in steps:
        report = step(report)
        raw = _encoder.encode(report)
        if len(raw) <= limit:
            return raw, True
    bare = HostReport(
        v=report.v,
        host_id=report.host_id,
        nonce=report.nonce,
        generated_at=report.generated_at,
        found=report.found,
        errors=["report too large even after truncation", *note],
    )
    return _encoder.encode(bare), True
