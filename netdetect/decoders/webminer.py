"""Classify one WebSocket message of a browser or Node.js miner.

Browser miners talk to their proxy in WebSocket messages: either stratum JSON-RPC as is
(XMRig-style ``login``/``job``/``submit``, handled by `jsonrpc.classify`) or one of two
message families of their own:

- ``coinhive-ws``: the CoinHive protocol, kept by its successors and clones (CoinIMP,
  CryptoLoot, deepMiner, the coin-hive-stratum bridge): ``{"type": "auth", "params":
  {"site_key": ...}}``, ``{"type": "submit", "params": {"job_id", "nonce", "result"}}`` from
  the miner; ``authed``, ``job`` (``job_id``, ``blob``, ``target``), ``hash_accepted`` from the
  proxy.
- ``webminerpool-ws``: webminerpool's ``{"identifier": "handshake", "pool", "login", ...}``,
  ``"solved"`` from the miner; ``"job"`` (``job_id``, ``blob``, ``target``), ``"hashsolved"``
  from the server.

A message counts only with its family's shape (a job needs a hex blob and target, a submit a
hex nonce and result), so a chat or notification service that happens to send
``{"type": "job"}`` is not mining.
"""

from __future__ import annotations

from typing import Final

from netdetect.decoders.events import StratumMessage
from netdetect.decoders.jsonrpc import (
    MAX_BATCH,
    MAX_DEPTH,
    MAX_TEXT,
    _decode,
    _depth_ok,
    _is_hex,
    classify,
)
from netdetect.errors import DecodeError

__all__ = ["classify_ws", "parse_ws_message"]

_TYPES_CLIENT: Final = frozenset({"auth", "submit"})
_TYPES_POOL: Final = frozenset({"authed", "job", "hash_accepted"})


def _text(v: object) -> str | None:
    return v[:MAX_TEXT] if isinstance(v, str) else None


def _job(d: dict[str, object]) -> bool:
    return (isinstance(d.get("job_id"), (str, int)) and _is_hex(d.get("blob"))
            and _is_hex(d.get("target")))


def _solution(d: dict[str, object]) -> bool:
    return (isinstance(d.get("job_id"), (str, int)) and _is_hex(d.get("nonce"))
            and _is_hex(d.get("result")))


def _coinhive(obj: dict[str, object]) -> StratumMessage | None:
    kind = obj.get("type")
    params = obj.get("params")
    if not isinstance(kind, str) or not isinstance(params, dict):
        return None
    if kind not in _TYPES_CLIENT and kind not in _TYPES_POOL:
        return None

    def msg(client: bool, **facts: str | None) -> StratumMessage:
        return StratumMessage("coinhive-ws", "notification", kind, None, True, client,
                              job_id=facts.get("job_id"), login=facts.get("login"),
                              target=facts.get("target"))

    if kind == "auth" and isinstance(params.get("site_key"), str):
        return msg(True, login=_text(params["site_key"]))
    if kind == "submit" and _solution(params):
        return msg(True, job_id=_text(str(params["job_id"])))
    if kind == "job" and _job(params):
        return msg(False, job_id=_text(str(params["job_id"])), target=_text(params["target"]))
    if kind == "authed" and "hashes" in params:
        return msg(False)
    if kind == "hash_accepted" and "hashes" in params:
        return msg(False)
    return None


def _webminerpool(obj: dict[str, object]) -> StratumMessage | None:
    ident = obj.get("identifier")
    if not isinstance(ident, str):
        return None

    def msg(client: bool, **facts: str | None) -> StratumMessage:
        return StratumMessage("webminerpool-ws", "notification", ident, None, True, client,
                              job_id=facts.get("job_id"), login=facts.get("login"),
                              target=facts.get("target"), host=facts.get("host"))

    if ident == "handshake" and isinstance(obj.get("login"), str) and "pool" in obj:
        return msg(True, login=_text(obj["login"]), host=_text(obj.get("pool")))
    if ident == "solved" and _solution(obj):
        return msg(True, job_id=_text(str(obj["job_id"])))
    if ident == "job" and _job(obj):
        return msg(False, job_id=_text(str(obj["job_id"])), target=_text(obj.get("target")))
    if ident == "hashsolved" and len(obj) <= 2:
        return msg(False)
    return None


def classify_ws(obj: object) -> StratumMessage | None:
    """One parsed JSON value from a WebSocket message -> a StratumMessage, or None."""
    if not isinstance(obj, dict):
        return None
    if "method" in obj or "result" in obj or "error" in obj:
        return classify(obj)
    return _coinhive(obj) or _webminerpool(obj)


def parse_ws_message(data: bytes) -> list[StratumMessage]:
    """A WebSocket text/binary message holding JSON (one value or a batch) -> its mining
    messages. Raises DecodeError like `jsonrpc.parse_json_messages` on invalid JSON."""
    text = bytes(data).strip()
    if not _depth_ok(text):
        raise DecodeError(f"JSON nests deeper than {MAX_DEPTH}")
    value = _decode(text)
    items = value[:MAX_BATCH] if isinstance(value, list) else [value]
    return [m for m in (classify_ws(v) for v in items) if m is not None]
