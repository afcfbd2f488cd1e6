"""Events the decoders emit. Frozen, slotted, and free of I/O."""

from __future__ import annotations

import msgspec


class StratumMessage(msgspec.Struct, frozen=True):
    """One JSON-RPC message of a mining dialect (or generic JSON-RPC, with mining=False)."""

    dialect: str  # "stratum-v1" | "cryptonote" | "eth-proxy" | "ethereumstratum-1"
    #               | "ethereumstratum-2" | "jsonrpc" (generic, not mining vocabulary)
    kind: str  # "request" | "notification" | "response" | "error"
    method: str | None  # None for responses
    msg_id: str | None  # the JSON-RPC id as text, None when absent/null
    mining: bool  # the message uses mining vocabulary (method name AND plausible params)
    client_side: bool | None  # True: only a miner sends this; False: only a pool; None: either
    agent: str | None = None  # miner user agent (login "agent", subscribe param, ES hello)
    login: str | None = None  # wallet / account / user
    password: str | None = None
    worker: str | None = None  # worker name or rig id
    algos: tuple[str, ...] = ()
    difficulty: float | None = None
    target: str | None = None
    job_id: str | None = None
    protocol: str | None = None  # e.g. "EthereumStratum/1.0.0"
    encoding: str | None = None  # e.g. "gzip" when an ES/2.0.0 pool switches encoding
    host: str | None = None  # pool host named in the message (e.g. login URL, hello "host")


class HttpMessage(msgspec.Struct, frozen=True):
    """An HTTP/1.x request or response head (and JSON-RPC body when it is one)."""

    is_request: bool
    method: str | None = None  # "POST", "GET" ...
    path: str | None = None
    status: int | None = None
    host: str | None = None
    user_agent: str | None = None
    content_type: str | None = None
    x_mining_extensions: str | None = None  # request header
    x_stratum: str | None = None  # response header (stratum URL offered by a getwork pool)
    x_long_polling: str | None = None
    authorization_user: str | None = None  # user part of Basic auth (miner login)
    rpc: tuple[StratumMessage, ...] = ()  # JSON-RPC messages in the body (batch → several)
    upgrade: str | None = None  # e.g. "websocket"


class ClientHello(msgspec.Struct, frozen=True):
    sni: str | None
    alpn: tuple[str, ...]
    record_version: int
    handshake_version: int
    supported_versions: tuple[int, ...]  # GREASE removed
    ja3: str  # the JA3 string
    ja3_hash: str  # md5 hex of ja3
    ja4: str  # e.g. "t13i310900_e8f1e7e78f70_5ac7197df9d2"
    ja4_r: str  # JA4 raw (unhashed) form
    cipher_suites: tuple[int, ...]
    extensions: tuple[int, ...]


class Certificate(msgspec.Struct, frozen=True):
    """Names from the server's first certificate (TLS <= 1.2 only; 1.3 encrypts it)."""

    subject_cn: str | None
    san_dns: tuple[str, ...]
    issuer_cn: str | None


class Sv2Message(msgspec.Struct, frozen=True):
    """Stratum V2 recognised: the Noise handshake shape, an encrypted frame, or plaintext."""

    kind: str  # "noise-initiator" | "noise-responder" | "encrypted-frame" | "setup-connection"
    length: int
    protocol: int | None = None  # SetupConnection.protocol (0 mining, 1 job decl., 2 template)
    vendor: str | None = None
    hardware: str | None = None
    firmware: str | None = None
    endpoint_host: str | None = None
    endpoint_port: int | None = None


Event = (
    StratumMessage
    | HttpMessage
    | ClientHello
    | Certificate
    | Sv2Message
)
