"""Classify one JSON-RPC value into a mining dialect (or generic JSON-RPC) and pull out its facts.

Dialects (the `StratumMessage.dialect` values this module produces):

- ``stratum-v1``: Bitcoin-style Stratum (``mining.*``, ``client.*``), also Zcash/Equihash
  (``mining.set_target``), Litecoin and the EthereumStratum messages that cannot be told
  apart from it without connection state (authorize, submit, set_difficulty ...).
- ``ethereumstratum-1``: NiceHash EthereumStratum/1.0.0, recognised by the protocol string in
  ``mining.subscribe`` params (or the subscribe result) and the 4-element notify with a boolean.
- ``ethereumstratum-2``: EthereumStratum/2.0.0 (EIP-1571): ``mining.hello`` and its result,
  ``mining.set``, ``mining.bye``, ``mining.noop``, ``mining.hashrate``.
- ``cryptonote``: XMRig-style ``login``/``job``/``submit``/``keepalived``/``getjob``.
- ``eth-proxy``: ``eth_submitLogin``/``eth_getWork``/``eth_submitWork``/``eth_submitHashrate``
  and the 3-element getWork result; the name covers raw TCP and HTTP transports alike (the
  caller knows which one carried it).
- ``getwork``: Bitcoin getwork (``getwork``, and a result carrying ``data`` + ``target``).
- ``getblocktemplate``: BIP 22/23 (``getblocktemplate``, ``submitblock``, and a block template).
- ``monero-daemon``: solo mining on a Monero (or CryptoNote-fork) daemon's RPC, as XMRig's
  ``--daemon`` mode and p2pool do: ``get_block_template``/``getblocktemplate`` with a
  ``wallet_address`` (plus ``reserve_size`` or ``extra_nonce``), ``submit_block``/``submitblock``
  with a block blob, ``get_miner_data``, and a result carrying ``blocktemplate_blob``. The
  daemon's other methods (``get_info``, ``get_height``, ``get_block_count``,
  ``get_last_block_header``) are what wallets, explorers and monitoring poll: generic.
- ``jsonrpc``: anything else that is JSON-RPC shaped; ``mining`` is then always False.

Classification is stateless: one message at a time. A message is ``mining`` only when its method
is mining vocabulary and its params have that dialect's shape, so a bare ``login`` or ``submit``
from some unrelated JSON-RPC service does not count.
"""

from __future__ import annotations

import json
import math
import re
from typing import Final, TypedDict, Unpack

import msgspec

from netdetect.decoders.events import StratumMessage
from netdetect.errors import DecodeError

__all__ = [
    "MAX_BATCH",
    "MAX_DEPTH",
    "MAX_TEXT",
    "classify",
    "parse_checked_line",
    "parse_json_messages",
    "peek_method",
]

MAX_DEPTH: Final = 32
"""Deepest nesting accepted; real mining messages nest 4 levels at most (subscribe result)."""

MAX_TEXT: Final = 512
"""Longest string kept from a message (agents, logins): facts, not payloads, travel onwards."""

MAX_BATCH: Final = 256
"""Most messages taken from one JSON-RPC batch array."""

_MAX_ALGOS: Final = 64

# Strings are matched first so that brackets inside them do not count as nesting.
_NESTING = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)
_HEX = re.compile(r"(?:0x)?[0-9a-fA-F]+")
_HASH32 = re.compile(r"0x[0-9a-fA-F]{64}")

# Stratum v1 notifications and requests that only a pool sends.
_V1_POOL_PUSH: Final = frozenset(
    {
        "mining.notify",
        "mining.set_difficulty",
        "mining.set_target",
        "mining.set_extranonce",
        "mining.set_version_mask",
        "client.get_version",
        "client.show_message",
        "client.reconnect",
        "client.add_peers",
        "mining.reconnect",
        "mining.set",
    }
)


def _text(value: object) -> str | None:
    if isinstance(value, str):
        return value[:MAX_TEXT]
    return None


def _id_text(value: object) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    if isinstance(value, str):
        return value[:MAX_TEXT]
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**30:
        return "<huge>"
    return str(value)[:MAX_TEXT]


def _number(value: object) -> float | None:
    """A finite float from a JSON number or numeric string; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            out = float(value)
        except OverflowError:
            return None
    elif isinstance(value, str) and 0 < len(value) <= 64:
        try:
            out = float(value)
        except ValueError:
            return None
    else:
        return None
    return out if math.isfinite(out) else None


def _is_hex(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 4096 and _HEX.fullmatch(value) is not None


def _split_login(user: str | None) -> tuple[str | None, str | None]:
    """'wallet.worker' -> ('wallet', 'worker'). E-mail style logins stay whole."""
    if not user or "." not in user or "@" in user:
        return user, None
    head, _, tail = user.partition(".")
    if not head or not tail:
        return user, None
    return head, tail


def _algos(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value[:MAX_TEXT],)
    if isinstance(value, list):
        return tuple(v[:MAX_TEXT] for v in value[:_MAX_ALGOS] if isinstance(v, str))
    return ()


class _Facts(TypedDict, total=False):
    agent: str | None
    login: str | None
    password: str | None
    worker: str | None
    algos: tuple[str, ...]
    difficulty: float | None
    target: str | None
    job_id: str | None
    protocol: str | None
    encoding: str | None
    host: str | None


def _msg(
    dialect: str,
    kind: str,
    method: str | None,
    msg_id: str | None,
    mining: bool,
    client_side: bool | None,
    **facts: Unpack[_Facts],
) -> StratumMessage:
    return StratumMessage(dialect, kind, method, msg_id, mining, client_side, **facts)


def classify(obj: object) -> StratumMessage | None:
    """One parsed JSON value -> StratumMessage, or None when it is not a JSON-RPC message."""
    if not isinstance(obj, dict):
        return None
    msg_id = _id_text(obj.get("id"))
    if "method" in obj:
        method = obj["method"]
        if not isinstance(method, str) or not method or len(method) > 128:
            return None
        kind = "notification" if msg_id is None else "request"
        return _classify_call(obj, method, kind, msg_id)
    if "result" in obj or "error" in obj:
        error = obj.get("error")
        if error is not None and error is not False:
            return _msg("jsonrpc", "error", None, msg_id, False, None)
        return _classify_result(obj.get("result"), msg_id)
    if "id" in obj and len(obj) <= 2 and ("jsonrpc" in obj or len(obj) == 1):
        # EIP-1571 allows a bare {"id": n} as "processed, nothing to return".
        return _msg("jsonrpc", "response", None, msg_id, False, None)
    return None


def _classify_call(
    obj: dict[str, object], method: str, kind: str, msg_id: str | None
) -> StratumMessage:
    params = obj.get("params")
    generic = _msg("jsonrpc", kind, method, msg_id, False, None)

    if method.startswith(("mining.", "client.")):
        out = _stratum(method, params, kind, msg_id)
        return out if out is not None else generic
    if method in _CRYPTONOTE:
        out = _cryptonote(method, params, kind, msg_id)
        return out if out is not None else generic
    if method.startswith("eth_"):
        out = _eth(obj, method, params, kind, msg_id)
        return out if out is not None else generic
    if method in _MONERO_DAEMON or (method in ("getblocktemplate", "submitblock")
                                     and _monero_params(method, params)):
        out = _monero_daemon(method, params, kind, msg_id)
        return out if out is not None else generic
    if method in ("getwork", "getblocktemplate", "submitblock"):
        out = _bitcoin_http(method, params, kind, msg_id)
        return out if out is not None else generic
    return generic


def _stratum(method: str, params: object, kind: str, msg_id: str | None) -> StratumMessage | None:
    lst = params if isinstance(params, list) else None
    absent = params is None
    pool = method in _V1_POOL_PUSH
    side: bool | None = not pool

    def v1(**facts: Unpack[_Facts]) -> StratumMessage:
        return _msg("stratum-v1", kind, method, msg_id, True, side, **facts)

    if method == "mining.subscribe":
        if isinstance(params, dict):
            # Early EthereumStratum/2.0.0 draft: subscribe carries agent/host/port.
            return _msg(
                "ethereumstratum-2",
                kind,
                method,
                msg_id,
                True,
                True,
                agent=_text(params.get("agent")),
                host=_text(params.get("host")),
            )
        if isinstance(params, str) or absent:
            # EIP-1571 subscribe: a session id to resume, or nothing (also a bare v1 subscribe).
            return v1()
        if lst is None:
            return None
        agent = _text(lst[0]) if lst else None
        proto = _text(lst[1]) if len(lst) > 1 else None
        if proto is not None and proto.startswith("EthereumStratum/"):
            two = proto.startswith("EthereumStratum/2")
            dialect = "ethereumstratum-2" if two else "ethereumstratum-1"
            return _msg(dialect, kind, method, msg_id, True, True, agent=agent, protocol=proto)
        host = _text(lst[2]) if len(lst) > 2 else None
        return v1(agent=agent, host=host)

    if method == "mining.authorize":
        if lst is None or not lst or not isinstance(lst[0], str):
            return None
        login, worker = _split_login(_text(lst[0]))
        password = _text(lst[1]) if len(lst) > 1 else None
        return v1(login=login, worker=worker, password=password)

    if method == "mining.submit":
        if lst is None or len(lst) < 3 or not all(isinstance(v, str) for v in lst[:3]):
            return None
        login, worker = _split_login(_text(lst[0]))
        return v1(login=login, worker=worker, job_id=_text(lst[1]))

    if method == "mining.notify":
        if lst is None or len(lst) < 4 or not isinstance(lst[0], str):
            return None
        if (
            len(lst) == 4
            and _is_hex(lst[1])
            and _is_hex(lst[2])
            and isinstance(lst[3], (bool, str))
        ):
            # ES/1.0.0: [job, seedhash, headerhash, clean:bool]; EIP-1571: clean as hex "0"/"1".
            es = "ethereumstratum-1" if isinstance(lst[3], bool) else "ethereumstratum-2"
            return _msg(es, kind, method, msg_id, True, False, job_id=_text(lst[0]))
        return v1(job_id=_text(lst[0]))

    if method in ("mining.set_difficulty", "mining.suggest_difficulty"):
        diff = _number(lst[0]) if lst else None
        return v1(difficulty=diff) if diff is not None else None

    if method in ("mining.set_target", "mining.suggest_target"):
        return v1(target=_text(lst[0])) if lst and _is_hex(lst[0]) else None

    if method == "mining.set_extranonce":
        return v1() if lst and isinstance(lst[0], str) else None

    if method in ("mining.extranonce.subscribe", "client.get_version"):
        return v1() if absent or lst is not None else None

    if method == "mining.configure":
        return v1() if lst and isinstance(lst[0], list) else None

    if method == "mining.get_transactions":
        return v1(job_id=_text(lst[0])) if lst and isinstance(lst[0], str) else None

    if method == "mining.ping":
        # Sent by pools (cgminer-era pools ping miners) and by some proxies the other way.
        if absent or lst is not None:
            return _msg("stratum-v1", kind, method, msg_id, True, None)
        return None

    if method == "mining.set_version_mask":
        return v1() if lst and _is_hex(lst[0]) else None

    if method == "mining.multi_version":
        return v1() if lst and _number(lst[0]) is not None else None

    if method in ("client.show_message", "client.add_peers"):
        return v1() if lst is not None else None

    if method == "client.reconnect":
        return v1(host=_text(lst[0]) if lst else None) if absent or lst is not None else None

    return _es2(method, params, kind, msg_id)


def _es2(method: str, params: object, kind: str, msg_id: str | None) -> StratumMessage | None:
    """EthereumStratum/2.0.0 (EIP-1571) methods that have no Stratum v1 counterpart."""
    d = params if isinstance(params, dict) else None

    def es2(side: bool | None, **facts: Unpack[_Facts]) -> StratumMessage:
        return _msg("ethereumstratum-2", kind, method, msg_id, True, side, **facts)

    if method == "mining.hello":
        if d is None:
            return None
        proto = _text(d.get("proto"))
        agent = _text(d.get("agent"))
        if agent is not None:
            return es2(True, agent=agent, host=_text(d.get("host")), protocol=proto)
        if proto is not None and proto.startswith("EthereumStratum/"):
            # The first draft had the pool send hello (with "node") unprompted.
            return es2(False, protocol=proto)
        return None
    if method in ("mining.bye", "mining.noop"):
        if params is None or (isinstance(params, list) and not params):
            return es2(True if method == "mining.noop" else None)
        return None
    if method == "mining.set":
        if d is None or not ({"epoch", "target", "algo", "extranonce"} & d.keys()):
            return None
        return es2(False, target=_text(d.get("target")), algos=_algos(d.get("algo")))
    if method == "mining.hashrate":
        if isinstance(params, list) and params and _is_hex(params[0]):
            return es2(True)
        if d is not None and "hr" in d:
            return es2(False)
        return None
    if method == "mining.reconnect":
        if d is None:
            return None
        return es2(False, host=_text(d.get("host")))
    return None


_SUBSCRIPTIONS: Final = ("mining.notify", "mining.set_difficulty")
_CRYPTONOTE: Final = frozenset({"login", "job", "submit", "keepalived", "getjob"})


def _cryptonote(
    method: str, params: object, kind: str, msg_id: str | None
) -> StratumMessage | None:
    d = params if isinstance(params, dict) else None

    def cn(side: bool, **facts: Unpack[_Facts]) -> StratumMessage:
        return _msg("cryptonote", kind, method, msg_id, True, side, **facts)

    if method == "login":
        if d is None or not isinstance(d.get("login"), str):
            return None
        login, worker = _split_login(_text(d["login"]))
        rigid = _text(d.get("rigid"))
        algos = _algos(d.get("algo"))
        perf = d.get("algo-perf")
        if not algos and isinstance(perf, dict):
            algos = tuple(str(k)[:MAX_TEXT] for k in list(perf)[:_MAX_ALGOS])
        return cn(
            True,
            login=login,
            worker=rigid or worker,
            password=_text(d.get("pass")),
            agent=_text(d.get("agent")),
            algos=algos,
        )
    if method == "job":
        if d is None or not isinstance(d.get("blob"), str) or not isinstance(d.get("job_id"), str):
            return None
        return cn(False, **_job_facts(d))
    if method == "submit":
        if d is None or not isinstance(d.get("job_id"), str) or not isinstance(d.get("nonce"), str):
            return None
        return cn(True, job_id=_text(d["job_id"]), algos=_algos(d.get("algo")))
    # keepalived / getjob carry only the session id (or nothing).
    if params is None or (d is not None and len(d) <= 4):
        return cn(True)
    return None


def _job_facts(job: dict[str, object]) -> _Facts:
    return {
        "job_id": _text(job.get("job_id")),
        "target": _text(job.get("target")),
        "algos": _algos(job.get("algo")),
    }


def _eth(
    obj: dict[str, object], method: str, params: object, kind: str, msg_id: str | None
) -> StratumMessage | None:
    lst = params if isinstance(params, list) else None

    def eth(**facts: Unpack[_Facts]) -> StratumMessage:
        return _msg("eth-proxy", kind, method, msg_id, True, True, **facts)

    top_worker = _text(obj.get("worker")) or None
    if method == "eth_submitLogin":
        if lst is None or not lst or not isinstance(lst[0], str):
            return None
        login, worker = _split_login(_text(lst[0]))
        password = _text(lst[1]) if len(lst) > 1 else None
        return eth(login=login, worker=top_worker or worker, password=password)
    if method == "eth_getWork":
        return eth(worker=top_worker) if params is None or lst is not None else None
    if method == "eth_submitWork":
        if lst is None or len(lst) < 3 or not all(_is_hex(v) for v in lst[:3]):
            return None
        return eth(worker=top_worker)
    if method == "eth_submitHashrate":
        if lst is None or len(lst) < 2 or not all(_is_hex(v) for v in lst[:2]):
            return None
        return eth(worker=top_worker)
    return None


_MONERO_DAEMON: Final = frozenset({"get_block_template", "submit_block", "get_miner_data"})


def _monero_blob(value: object) -> bool:
    """A hex CryptoNote block: major and minor version varints (1..127), then a timestamp
    varint whose first byte has the continuation bit; a Bitcoin block starts with a 4-byte
    little-endian version instead."""
    if not (isinstance(value, str) and 152 <= len(value) <= 2_000_000 and _is_hex(value[:16])):
        return False
    b = bytes.fromhex(value[:6])
    return 1 <= b[0] <= 0x7F and b[1] <= 0x7F and b[2] >= 0x80


def _monero_params(method: str, params: object) -> bool:
    if method == "getblocktemplate":
        return isinstance(params, dict) and "wallet_address" in params
    return isinstance(params, list) and bool(params) and _monero_blob(params[0])


def _monero_daemon(
    method: str, params: object, kind: str, msg_id: str | None
) -> StratumMessage | None:
    d = params if isinstance(params, dict) else None
    if method in ("get_block_template", "getblocktemplate"):
        if d is None or not isinstance(d.get("wallet_address"), str):
            return None
        if not ({"reserve_size", "extra_nonce"} & d.keys()) and len(d) > 1:
            return None
        login, _ = _split_login(_text(d["wallet_address"]))
        return _msg("monero-daemon", kind, method, msg_id, True, True, login=login)
    if method in ("submit_block", "submitblock"):
        lst = params if isinstance(params, list) else None
        if lst and (_monero_blob(lst[0]) or (method == "submit_block" and _is_hex(lst[0]))):
            return _msg("monero-daemon", kind, method, msg_id, True, True)
        return None
    # get_miner_data (p2pool): no params.
    if params is None or params in ({}, []):
        return _msg("monero-daemon", kind, method, msg_id, True, True)
    return None


def _bitcoin_http(
    method: str, params: object, kind: str, msg_id: str | None
) -> StratumMessage | None:
    lst = params if isinstance(params, list) else None
    if method == "getwork":
        # getwork takes no params (fetch work) or one hex block header (submit).
        if params is None or (lst is not None and (not lst or (len(lst) == 1 and _is_hex(lst[0])))):
            return _msg("getwork", kind, method, msg_id, True, True)
        return None
    if method == "getblocktemplate":
        if params is None or (lst is not None and (not lst or isinstance(lst[0], dict))):
            return _msg("getblocktemplate", kind, method, msg_id, True, True)
        return None
    # submitblock: [hexdata, (dummy | {"workid": ...})]
    if lst and _is_hex(lst[0]):
        return _msg("getblocktemplate", kind, method, msg_id, True, True)
    return None


def _classify_result(result: object, msg_id: str | None) -> StratumMessage:
    kind = "response"
    if isinstance(result, dict):
        job = result.get("job")
        if isinstance(job, dict) and isinstance(job.get("blob"), str):
            # CryptoNote login result: {"id": session, "job": {...}, "status": "OK"}.
            return _msg("cryptonote", kind, None, msg_id, True, False, **_job_facts(job))
        if isinstance(result.get("blob"), str) and isinstance(result.get("job_id"), str):
            return _msg("cryptonote", kind, None, msg_id, True, False, **_job_facts(result))
        proto = _text(result.get("proto"))
        if proto is not None and proto.startswith("EthereumStratum/"):
            return _msg(
                "ethereumstratum-2",
                kind,
                None,
                msg_id,
                True,
                False,
                protocol=proto,
                encoding=_text(result.get("encoding")),
            )
        if _is_hex(result.get("data")) and _is_hex(result.get("target")):
            return _msg("getwork", kind, None, msg_id, True, False, target=_text(result["target"]))
        if isinstance(result.get("blocktemplate_blob"), str) and (
            "blockhashing_blob" in result or "reserved_offset" in result
        ):
            return _msg("monero-daemon", kind, None, msg_id, True, False,
                        target=_text(str(result.get("difficulty", ""))) or None)
        if (isinstance(result.get("prev_id"), str) and isinstance(result.get("seed_hash"), str)
                and "median_weight" in result and "tx_backlog" in result):
            # get_miner_data's answer (p2pool).
            return _msg("monero-daemon", kind, None, msg_id, True, False)
        if isinstance(result.get("previousblockhash"), str) and (
            "coinbasevalue" in result or "coinbasetxn" in result
        ):
            return _msg(
                "getblocktemplate",
                kind,
                None,
                msg_id,
                True,
                False,
                target=_text(result.get("target")),
            )
    elif isinstance(result, list) and result:
        if 3 <= len(result) <= 4 and all(isinstance(v, str) for v in result[:3]):
            header, seed, boundary = (str(v) for v in result[:3])
            if _HASH32.fullmatch(header) and _HASH32.fullmatch(seed) and _is_hex(boundary):
                # eth_getWork result: header hash, seed hash, boundary.
                return _msg(
                    "eth-proxy", kind, None, msg_id, True, False, target=boundary[:MAX_TEXT]
                )
        subs = result[0]
        if isinstance(subs, list) and subs:
            # Stratum v1 subscribe result: [[["mining.notify", sub_id], ...], extranonce1, size]
            # or the EthereumStratum/1.0.0 form ["mining.notify", sub_id, "EthereumStratum/1.0.0"].
            if subs[0] == "mining.notify":
                proto = _text(subs[2]) if len(subs) > 2 else None
                if proto is not None and proto.startswith("EthereumStratum/"):
                    return _msg(
                        "ethereumstratum-1", kind, None, msg_id, True, False, protocol=proto
                    )
                return _msg("stratum-v1", kind, None, msg_id, True, False)
            for sub in subs[:8]:
                if isinstance(sub, list) and sub and sub[0] in _SUBSCRIPTIONS:
                    return _msg("stratum-v1", kind, None, msg_id, True, False)
    return _msg("jsonrpc", kind, None, msg_id, False, None)


def _depth_ok(text: bytes) -> bool:
    opens = text.count(b"[") + text.count(b"{")
    if opens <= MAX_DEPTH:
        return True
    depth = 0
    for m in _NESTING.finditer(text):
        tok = m.group()
        if tok in (b"[", b"{"):
            depth += 1
            if depth > MAX_DEPTH:
                return False
        elif tok in (b"]", b"}"):
            depth -= 1
    return True


def _bounded_int(digits: str) -> int | float:
    # Python refuses int() on > 4300 digits; a float (possibly inf) keeps the message usable.
    return int(digits) if len(digits) <= 40 else float(digits)


def _decode(text: bytes) -> object:
    try:
        return msgspec.json.decode(text)
    except msgspec.ValidationError:
        pass  # an integer beyond 64 bits: valid JSON that msgspec will not hold
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        # msgspec reports some invalid UTF-8 as UnicodeDecodeError rather than its own error.
        raise DecodeError(f"invalid JSON: {exc}") from exc
    try:
        return json.loads(text.decode("utf-8"), parse_int=_bounded_int)
    except (ValueError, RecursionError) as exc:
        raise DecodeError(f"invalid JSON: {exc}") from exc


def parse_json_messages(text: bytes | bytearray | memoryview) -> list[StratumMessage]:
    """JSON text (one object or a batch array) -> its JSON-RPC messages.

    Raises DecodeError (cause chained) when the text is not JSON or nests deeper than
    MAX_DEPTH. Valid JSON that is not JSON-RPC yields an empty list.
    """
    data = bytes(text)
    if not _depth_ok(data):
        raise DecodeError(f"JSON nests deeper than {MAX_DEPTH}")
    return _messages(_decode(data))


def parse_checked_line(line: bytes) -> list[StratumMessage]:
    """parse_json_messages for a line the compiled core framed: it already checked that
    the line is well-formed JSON nested at most MAX_DEPTH deep."""
    return _messages(_decode(line))


def _messages(value: object) -> list[StratumMessage]:
    if isinstance(value, dict):
        one = classify(value)
        return [one] if one is not None else []
    if isinstance(value, list):
        out = []
        for item in value[:MAX_BATCH]:
            one = classify(item)
            if one is not None:
                out.append(one)
        return out
    return []


class _Peek(msgspec.Struct):
    method: str | None = None


_peek = msgspec.json.Decoder(_Peek).decode


def peek_method(line: bytes) -> str | None:
    """The "method" of a one-message line, cheaply (no classification); None for a
    result, a batch, or anything unusual — which then takes the full path."""
    try:
        return _peek(line).method
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None


def messages_of_body(body: bytes) -> tuple[StratumMessage, ...]:
    """JSON-RPC messages of an HTTP body: the whole body, else one JSON value per line (some
    clients put a trailing LF plus extra values in a body). Anything else: none."""
    text = body.strip()
    if not text or text[:1] not in (b"{", b"["):
        return ()
    try:
        return tuple(parse_json_messages(text))
    except DecodeError:
        pass
    msgs: list[StratumMessage] = []
    for raw in text.split(b"\n"):
        line = raw.strip()
        if line[:1] in (b"{", b"["):
            try:
                msgs.extend(parse_json_messages(line))
            except DecodeError:
                continue
    return tuple(msgs)
