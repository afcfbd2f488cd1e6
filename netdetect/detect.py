"""Decoded events + intel → evidence, score and (once per flow) a Suspect."""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

import msgspec

from netdetect.decoders.events import (
    Certificate,
    ClientHello,
    Event,
    HttpMessage,
    StratumMessage,
    Sv2Message,
)
from netdetect.intel import Intel
from netdetect.model import (
    TCP,
    Endpoint,
    Evidence,
    FlowView,
    MinerFacts,
    PoolFacts,
    Suspect,
    ip_str,
)

DEFAULT_HOME_NET = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")


class HomeNet:
    """The networks counted as internal, remembering the addresses already asked about (the
    detector and the campaign book see the same hosts, pools and proxies again and again).
    An address is its text or its 4 or 16 raw bytes."""

    __slots__ = ("_memo", "networks")

    MEMO = 4096

    def __init__(self, cidrs: Iterable[str]) -> None:
        self.networks = tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)
        self._memo: dict[str | bytes, bool] = {}

    def __contains__(self, ip: object) -> bool:
        if not isinstance(ip, str | bytes):
            return False
        found = self._memo.get(ip)
        if found is None:
            found = self._inside(ip)
            if len(self._memo) >= self.MEMO:
                self._memo.clear()
            self._memo[ip] = found
        return found

    def _inside(self, ip: str | bytes) -> bool:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(addr.version == n.version and addr in n for n in self.networks)


# Evidence weights. A flow alerts once its score reaches ALERT_THRESHOLD. Each kind counts
# once per flow. The numbers encode "which observations suffice alone": protocol vocabulary
# and pool names do; fingerprints, ports and address lists only add up.
W_CLIENT_METHOD = 70  # a miner's request in a mining dialect (subscribe, login, submit, getwork)
W_POOL_PUSH = 70  # a pool's push (notify, job, set_difficulty, set_target)
W_POOL_RESULT = 60  # a result shaped like a pool's (login result carrying a job)
W_SV2_SETUP = 70  # plaintext Stratum V2 SetupConnection for the mining protocol
W_SV2_HANDSHAKE = 45  # 64-byte initiator answered by a 234-byte responder
W_SV2_FRAMES = 20  # then encrypted frames of plausible size both ways
W_POOL_SNI = 70  # TLS SNI names a pool or browser-mining service
W_POOL_CERT = 50  # server certificate names a pool
W_POOL_HTTP_HOST = 40  # HTTP Host header names a pool
W_POOL_DNS = 45  # remote address was resolved from a pool name, and the flow carries payload
W_POOL_DNS_PORT = 15  # ... and the flow goes to a non-web port (a browser visit goes to 443)
W_POOL_IP = 30  # remote address is in a pool IP list
W_POOL_WEBSITE = 30  # the name is a pool's web site (www.<pool>): browsing it is not mining
W_HTTP_MINING_HEADER = 50  # X-Mining-Extensions / X-Stratum / X-Long-Polling
W_MINER_AGENT = 20  # the user agent is a known miner
W_TLS_BARE = 25  # ClientHello without SNI and without ALPN
W_TLS_POOL_PORT = 35  # ... to a well-known pool port
W_TLS_NONWEB_PORT = 15  # ... to another non-web port
W_TLS_TIMING = 35  # ... with stratum-like timing: long-lived, small periodic records both ways
W_TLS_SHAPE = 35  # ... with a stratum session's record shape (login answered by a job, pushes)
W_POOL_PROXY = 50  # a proxy handshake (SOCKS4a/5 domain, HTTP CONNECT) names a pool: like a
# certificate, a name that the tunnelled protocol (TLS, stratum) then corroborates
ALERT_THRESHOLD = 60
# Evidence that the remote end is a pool's, from different sources (DNS, SNI, certificate,
# HTTP Host, address lists): one fact, so only the strongest counts. A browser visiting a
# pool's web site shows several of them and nothing mining-like.
NAME_KINDS = frozenset({"pool-dns", "pool-website", "pool-domain-sni", "pool-domain-cert",
                        "pool-domain-proxy",
                        "pool-domain-http", "pool-ip"})
WEB_ALPN = frozenset({"h2", "http/1.1", "h3", "http/1.0", "spdy/3.1"})

# Stratum-like timing, judged from packet sizes and times of a bare-TLS flow.
TIMING_MIN_DURATION = 45.0
TIMING_MIN_PUSHES = 4  # small server→client records at least ...
TIMING_MIN_PUSH_GAP = 3.0  # ... this many seconds apart
TIMING_MIN_CLIENT = 2
TIMING_SMALL = 1200  # bytes of TCP payload
TIMING_MAX_BYTES = 512 * 1024  # a bulk transfer is not stratum

# The record shape of a TLS stratum session (tls/shape.rs counts, this judges), learned from
# XMRig sessions recorded in the lab (pcaps/lab/): the miner speaks first (login); the reply
# that ends the pool's first flight carries a job (XMRig: a 461-byte record after two 250-byte
# session tickets), not a bare acknowledgement (MQTT's CONNACK, a WebSocket 101); the pool then
# pushes job-sized records nobody asked for (376 bytes), and the miner sends share-sized
# records (227 bytes). HTTP/1.1 never pushes; IMAP and SMTP servers speak first; an MQTT or
# WebSocket feed pushes but its client only pings.
SHAPE_MIN_LOGIN = 80  # bytes of the client's first record
SHAPE_MIN_ANSWER = 200  # bytes of the record that ends the server's first flight
SHAPE_MIN_PUSHES = 2  # job-sized records the pool sent unprompted ...
SHAPE_MIN_CLIENT = 1  # ... and share-sized records from the miner,
SHAPE_SAME_PUSHES = 4  # or this many pushes of one size (± 8 bytes): a pool's jobs, before the
# miner's first share (a feed's messages vary in size; a broker's CONNACK ends its answer)
SHAPE_MAX_RECORD = 4096  # a record larger than this after the handshake: not stratum
# The looser shape without which the 45 s timing evidence does not count either (stratum v1
# answers a subscribe with a short record): client first, more than a ping each way, a
# job-sized push and a share-sized client record.
TIMING_SHAPE_MIN = 64

_SHARE_METHODS = frozenset(
    {"mining.submit", "submit", "eth_submitWork", "submitblock", "eth_submitHashrate"}
)
JOB_METHODS = frozenset({"mining.notify", "job", "mining.set"})
COUNTED_METHODS = _SHARE_METHODS | JOB_METHODS
"""Methods that, once a flow has alerted and already carried them, only add to its job and
share counts (`count_repeat`) plus the pool's latest difficulty and target (`refresh`)."""


class TlsShape(NamedTuple):
    """The core's record-shape counts of a bare-TLS session (src/tls/shape.rs)."""

    client_first: bool
    first_client: int
    first_answer: int
    pushes: int
    pushes_small: int
    pushes_same: int
    client_small: int
    records: tuple[int, int]
    max_record: int
    bytes: int
    first_ts: float


class Inspection(msgspec.Struct):
    """Everything the detector accumulates about one flow while it looks at it."""

    evidence: list[Evidence] = msgspec.field(default_factory=list)
    kinds: set[str] = msgspec.field(default_factory=set)
    score: int = 0
    dialect: str | None = None
    app_proto: str | None = None
    methods: set[str] = msgspec.field(default_factory=set)
    client_dir: int | None = None  # 0: side a is the miner, 1: side b is
    alerted: bool = False
    reported: bool = False  # its alert was raised (not suppressed as a resumed connection)
    keep: bool = False  # under suspicion: protect from eviction
    # pool facts
    pool_host: str | None = None
    pool_host_source: str | None = None
    list_match: str | None = None
    difficulty: float | None = None
    target: str | None = None
    jobs: int = 0
    algo: str | None = None
    # miner facts
    agent: str | None = None
    agent_name: str | None = None
    agent_version: str | None = None
    login: str | None = None
    worker: str | None = None
    algos: tuple[str, ...] = ()
    shares: int = 0
    ja3: str | None = None
    ja4: str | None = None
    sni: str | None = None
    bare_tls: bool = False  # ClientHello without SNI and ALPN seen
    remote_checked: bool = False
    gzip: bool = False
    proxy: str | None = None  # "socks5", "socks4a", "socks4", "http-connect"
    shape: TlsShape | None = None  # the latest record shape of bare TLS
    proxy_port: int | None = None  # the port the miner asked the proxy for
    name_weight: int = 0  # the strongest "the remote is a pool" evidence counted so far
    asked: bool = False  # put to the host early (score between the ask and alert thresholds)


class Detector:
    """Turns decoded events of a flow into evidence; emits a Suspect when the score is high
    enough. Pure: intel and passive DNS are lookups, time is the packet timestamp."""

    def __init__(
        self,
        intel: Intel,
        *,
        home_net: Iterable[str] = DEFAULT_HOME_NET,
        threshold: int = ALERT_THRESHOLD,
        recent_window: float = 3600.0,
        ask_threshold: int = 0,
    ) -> None:
        self.intel = intel
        self.home_net = HomeNet(home_net)
        self.threshold = threshold
        # Flows scoring at least this (and below `threshold`) are handed out once as asked
        # suspects for the host to settle; 0: never (no host confirmation configured).
        self.ask_threshold = ask_threshold
        self.asks = 0
        self.suspects: list[Suspect] = []
        self.alerts = 0
        self.suppressed = 0
        # 4-tuples alerted lately: a connection that outlives its flow-table entry (idle
        # expiry, eviction) and comes back as a mid-stream flow is not a new mining flow.
        self._recent: dict[tuple[bytes, int, bytes, int], float] = {}
        self.recent_window = recent_window

    # -- evidence bookkeeping -------------------------------------------------------------

    def add(self, ins: Inspection, kind: str, weight: int, detail: str, ts: float) -> None:
        if kind in ins.kinds:
            return
        ins.kinds.add(kind)
        if kind in NAME_KINDS:
            # Only the strongest pool-name evidence counts; a weaker one adds nothing.
            weight, ins.name_weight = max(0, weight - ins.name_weight), max(ins.name_weight,
                                                                            weight)
        ins.evidence.append(Evidence(kind, weight, detail, ts))
        ins.score = min(100, ins.score + weight)
        if weight >= 30:
            ins.keep = True

    def settle(self, flow: FlowView, ins: Inspection, ts: float) -> None:
        """Called after each packet's events: raise the flow's one alert when it is due."""
        if not ins.alerted and ins.score >= self.threshold:
            ins.alerted = True
            key = _conn_key(flow)
            last = self._recent.pop(key, None)
            self._recent[key] = ts
            if len(self._recent) > 65536:
                del self._recent[next(iter(self._recent))]
            if flow.midflow and last is not None and ts - last < self.recent_window:
                self.suppressed += 1
                return
            self.alerts += 1
            ins.reported = True
            self.suspects.append(self.suspect(flow, ins, ts))
        elif (self.ask_threshold and not ins.alerted and not ins.asked
              and ins.score >= self.ask_threshold and not _browsing(ins)):
            ins.asked = True
            self.asks += 1
            self.suspects.append(msgspec.structs.replace(self.suspect(flow, ins, ts), asked=True))

    def pool_answer(self, flow: FlowView, ins: Inspection, ip: str, name: str, ts: float) -> None:
        """A DNS answer names a pool for an address this flow already talks to (the flow
        started before the answer was seen, e.g. before the capture began)."""
        m = self.intel.match_domain(name)
        if m is None or "pool-dns" in ins.kinds:
            return
        kind, weight = _dns_kind(name)
        self.add(ins, kind, weight, f"{ip} resolved from {name} (answer seen later)", ts)
        self._pool_host(ins, name, "dns", m.domain)
        server_side = 1 if ip_str(flow.b_ip) == ip else 0
        self._client_from_server_side(ins, server_side)
        self._dns_port(flow, ins, kind, server_side, ts)
        if m.category == "browser-miner":
            ins.dialect = ins.dialect or "browser-tls"
        self.settle(flow, ins, ts)

    # -- flow-level checks ----------------------------------------------------------------

    def check_remote(
        self,
        flow: FlowView,
        ins: Inspection,
        ts: float,
        names: Callable[[str], Sequence[str]],
    ) -> None:
        """Once per flow, at its first payload: is either end a known pool address, or an
        address this sensor saw resolved from a pool name? `names` gives an address's
        passive-DNS names (the compiled core keeps passive DNS)."""
        if ins.remote_checked:
            return
        ins.remote_checked = True
        for side, raw in ((1, flow.b_ip), (0, flow.a_ip)):
            ip = ip_str(raw)
            for name in names(ip):
                m = self.intel.match_domain(name)
                if m is not None:
                    kind, weight = _dns_kind(name)
                    self.add(ins, kind, weight, f"{ip} resolved from {name}", ts)
                    self._pool_host(ins, name, "dns", m.domain)
                    self._client_from_server_side(ins, side)
                    self._dns_port(flow, ins, kind, side, ts)
                    if m.category == "browser-miner":
                        ins.dialect = ins.dialect or "browser-tls"
                    return
            im = self.intel.match_ip(ip)
            if im is not None:
                self.add(ins, "pool-ip", W_POOL_IP, f"{ip} in pool address list {im.source}", ts)
                ins.list_match = ins.list_match or f"{im.source}:{im.network}"
                self._client_from_server_side(ins, side)
                return

    def _dns_port(self, flow: FlowView, ins: Inspection, kind: str, server_side: int,
                  ts: float) -> None:
        """A pool name's address on a non-web port: mining, not a visit to the pool's site."""
        port = flow.b_port if server_side == 1 else flow.a_port
        if kind == "pool-dns" and port and not self.intel.is_web_port(port):
            self.add(ins, "pool-dns-port", W_POOL_DNS_PORT, f"pool address on non-web port {port}",
                     ts)

    @staticmethod
    def _client_from_server_side(ins: Inspection, server_side: int) -> None:
        if ins.client_dir is None:
            ins.client_dir = 1 - server_side

    def _pool_host(self, ins: Inspection, host: str, source: str, match: str | None) -> None:
        if ins.pool_host is None or (match and ins.list_match is None):
            ins.pool_host = host
            ins.pool_host_source = source
        if match and ins.list_match is None:
            ins.list_match = match

    def check_timing(
        self, flow: FlowView, ins: Inspection, pushes: list[float], client_small: int, ts: float
    ) -> None:
        """Bare TLS with stratum-like timing: the pool pushes small records every few
        seconds, the miner answers with small records, for a long time, moving little data."""
        if "tls-timing" in ins.kinds or not ins.bare_tls:
            return
        sh = ins.shape
        if sh is not None and not (sh.client_first and sh.first_client >= TIMING_SHAPE_MIN
                                   and sh.first_answer >= TIMING_SHAPE_MIN and sh.pushes
                                   and sh.client_small):
            # The records say server-first, a bare acknowledgement, no job-sized push or a
            # client that only pings: MQTT, IMAP IDLE, a notification feed — periodic, but
            # not stratum.
            return
        if ts - flow.first_ts < TIMING_MIN_DURATION or client_small < TIMING_MIN_CLIENT:
            return
        if flow.bytes[0] + flow.bytes[1] > TIMING_MAX_BYTES:
            return
        spaced = 0
        last = None
        for t in pushes:
            if last is None or t - last >= TIMING_MIN_PUSH_GAP:
                spaced += 1
                last = t
        if spaced >= TIMING_MIN_PUSHES:
            self.add(
                ins,
                "tls-timing",
                W_TLS_TIMING,
                f"{spaced} small pool records >= {TIMING_MIN_PUSH_GAP:.0f}s apart over "
                f"{ts - flow.first_ts:.0f}s, {client_small} small miner records",
                ts,
            )

    # -- decoded events -------------------------------------------------------------------

    def on_event(self, flow: FlowView, ins: Inspection, d: int, ev: Event, ts: float) -> None:
        if isinstance(ev, StratumMessage):
            self._stratum(flow, ins, d, ev, ts, via_http=False)
        elif isinstance(ev, HttpMessage):
            self._http(flow, ins, d, ev, ts)
        elif isinstance(ev, ClientHello):
            self._client_hello(flow, ins, d, ev, ts)
        elif isinstance(ev, Certificate):
            for name in (ev.subject_cn, *ev.san_dns):
                if name:
                    m = self.intel.match_domain(name.lstrip("*."))
                    if m is not None:
                        self.add(ins, "pool-domain-cert", W_POOL_CERT, f"certificate {name}", ts)
                        self._pool_host(ins, name, "certificate", m.domain)
                        break
        elif isinstance(ev, Sv2Message):
            self._sv2(ins, d, ev, ts)

    def _stratum(
        self,
        _flow: FlowView,
        ins: Inspection,
        d: int,
        ev: StratumMessage,
        ts: float,
        via_http: bool,
        websocket: bool = False,
    ) -> None:
        if not ev.mining:
            return
        dialect = ev.dialect
        if via_http:
            dialect = {
                "getwork": "getwork-http",
                "getblocktemplate": "getblocktemplate-http",
                "eth-proxy": "eth-getwork-http",
                "monero-daemon": "monero-daemon-rpc",
            }.get(dialect, f"{dialect}-http")
        elif websocket and not dialect.endswith("-ws"):
            dialect = f"{dialect}-ws"
        if ins.dialect is None or ins.dialect in ("tls", "browser-tls") or (
            # The first method the client sent decides getwork vs getblocktemplate.
            ins.dialect == "stratum-v1" and dialect.startswith("ethereumstratum")
        ):
            ins.dialect = dialect
        if ins.app_proto is None or (websocket and ins.app_proto == "http"):
            ins.app_proto = "websocket" if websocket else "http" if via_http else "stratum"
        method = ev.method
        if method:
            ins.methods.add(method)
        if ev.client_side is True:
            ins.client_dir = ins.client_dir if ins.client_dir is not None else d
            self.add(ins, "stratum-client", W_CLIENT_METHOD,
                     f'{dialect} "{method}" from the miner', ts)
        elif ev.client_side is False:
            ins.client_dir = ins.client_dir if ins.client_dir is not None else 1 - d
            what = f'"{method}" push' if method else "result"
            self.add(ins, "stratum-pool", W_POOL_PUSH, f"{dialect} {what} from the pool", ts)
        else:
            self.add(ins, "stratum-result", W_POOL_RESULT, f"{dialect} mining result", ts)
        if method in _SHARE_METHODS:
            ins.shares += 1
        if method in JOB_METHODS or (method is None and ev.job_id):
            ins.jobs += 1
        if ev.agent:
            self._agent(ins, ev.agent, ts)
        if ev.login and not ins.login:
            ins.login = ev.login[:200]
        if ev.worker and not ins.worker:
            ins.worker = ev.worker[:100]
        if ev.algos and not ins.algos:
            ins.algos = tuple(a[:32] for a in ev.algos[:16])
        if ev.difficulty is not None:
            ins.difficulty = ev.difficulty
        if ev.target:
            ins.target = ev.target[:80]
        if ev.host:
            m = self.intel.match_domain(ev.host)
            self._pool_host(ins, ev.host, "login", m.domain if m else None)
        if ev.encoding == "gzip":
            ins.gzip = True

    def websocket_message(
        self, flow: FlowView, ins: Inspection, d: int, ev: StratumMessage, ts: float
    ) -> None:
        """A mining message carried in a WebSocket message (browser and Node.js miners)."""
        self._stratum(flow, ins, d, ev, ts, via_http=False, websocket=True)

    def proxy(
        self, _flow: FlowView, ins: Inspection, d: int, kind: str, host: str, port: int,
        ts: float,
    ) -> None:
        """A proxy handshake (SOCKS4/4a/5, HTTP CONNECT) named the miner's target: the
        flow's remote end is the proxy, the target is the pool."""
        ins.client_dir = d if ins.client_dir is None else ins.client_dir
        ins.proxy = kind
        ins.proxy_port = port or None
        target = f"{host}:{port}"
        m = self.intel.match_domain(host)
        if m is not None:
            self.add(ins, "pool-domain-proxy", W_POOL_PROXY, f"{kind} target {target}", ts)
            self._pool_host(ins, host, kind, m.domain)
            if m.category == "browser-miner":
                ins.dialect = ins.dialect or "browser-tls"
            return
        try:
            im = self.intel.match_ip(host)
        except ValueError:
            im = None
        if im is not None:
            self.add(ins, "pool-ip", W_POOL_IP, f"{kind} target {target} in pool address "
                     f"list {im.source}", ts)
            ins.list_match = ins.list_match or f"{im.source}:{im.network}"
        if ins.pool_host is None:
            ins.pool_host = host
            ins.pool_host_source = kind

    def check_tls_shape(self, _flow: FlowView, ins: Inspection, shape: TlsShape,
                        ts: float) -> None:
        """Bare TLS whose records are shaped like a stratum session (see SHAPE_*)."""
        ins.shape = shape
        if "tls-shape" in ins.kinds or not ins.bare_tls:
            return
        if not shape.client_first or shape.first_client < SHAPE_MIN_LOGIN:
            return
        if shape.first_answer < SHAPE_MIN_ANSWER or shape.max_record > SHAPE_MAX_RECORD:
            return
        if shape.bytes > TIMING_MAX_BYTES:
            return
        pushes, shares = shape.pushes, shape.client_small
        if not ((pushes >= SHAPE_MIN_PUSHES and shares >= SHAPE_MIN_CLIENT)
                or shape.pushes_same >= SHAPE_SAME_PUSHES):
            return
        self.add(
            ins, "tls-shape", W_TLS_SHAPE,
            f"stratum-shaped TLS: {shape.first_client}-byte first record answered by "
            f"{shape.first_answer} bytes, {pushes} unprompted job-sized records, "
            f"{shape.pushes_same} of one size, {shares} share-sized records from the client",
            ts,
        )

    def count_repeat(self, ins: Inspection, method: str) -> None:
        """One more message of a COUNTED_METHODS method the alerted flow already carried:
        everything else about it is known, so it is only counted."""
        if method in _SHARE_METHODS:
            ins.shares += 1
        if method in JOB_METHODS:
            ins.jobs += 1

    def refresh(self, ins: Inspection, ev: StratumMessage) -> None:
        """The latest difficulty and target of a job counted by `count_repeat`."""
        if ev.difficulty is not None:
            ins.difficulty = ev.difficulty
        if ev.target:
            ins.target = ev.target[:80]

    def _agent(self, ins: Inspection, agent: str, ts: float) -> None:
        if ins.agent is None:
            ins.agent = agent[:200]
        am = self.intel.match_agent(agent)
        if am is not None:
            ins.agent_name = am.name
            ins.agent_version = am.version
            self.add(ins, "miner-agent", W_MINER_AGENT, f"miner agent {agent[:80]!r}", ts)

    def _http(self, flow: FlowView, ins: Inspection, d: int, ev: HttpMessage, ts: float) -> None:
        if ev.is_request:
            if ins.client_dir is None and ev.rpc:
                ins.client_dir = d
            if ev.host and ev.method != "CONNECT":
                # (A CONNECT's Host repeats its target: proxy evidence covers it.)
                host = ev.host.rsplit(":", 1)[0] if not ev.host.startswith("[") else ev.host
                m = self.intel.match_domain(host)
                if m is not None:
                    self.add(ins, "pool-domain-http", W_POOL_HTTP_HOST, f"HTTP Host {host}", ts)
                    self._pool_host(ins, host, "http-host", m.domain)
            if ev.user_agent:
                am = self.intel.match_agent(ev.user_agent)
                if am is not None:
                    self._agent(ins, ev.user_agent, ts)
            if ev.x_mining_extensions:
                self.add(ins, "http-mining-header", W_HTTP_MINING_HEADER,
                         f"X-Mining-Extensions: {ev.x_mining_extensions[:60]}", ts)
            if ev.authorization_user and not ins.login and ev.rpc:
                ins.login = ev.authorization_user[:200]
        else:
            if ev.x_stratum:
                self.add(ins, "http-mining-header", W_HTTP_MINING_HEADER,
                         f"X-Stratum: {ev.x_stratum[:80]}", ts)
            if ev.x_long_polling and ins.methods:
                self.add(ins, "http-long-polling", 10, "X-Long-Polling", ts)
        for msg in ev.rpc:
            self._stratum(flow, ins, d, msg, ts, via_http=True)

    def _client_hello(
        self, flow: FlowView, ins: Inspection, d: int, ev: ClientHello, ts: float
    ) -> None:
        ins.client_dir = d
        ins.app_proto = ins.app_proto or "tls"
        ins.ja3 = ev.ja3_hash
        ins.ja4 = ev.ja4
        server_port = ins.proxy_port or (flow.b_port if d == 0 else flow.a_port)
        if ev.sni:
            ins.sni = ev.sni
            m = self.intel.match_domain(ev.sni)
            browsing = (m is not None and m.category != "browser-miner"
                        and self.intel.is_web_port(server_port)
                        and any(a.lower() in WEB_ALPN for a in ev.alpn))
            if m is not None and (_is_website(ev.sni) or browsing):
                # A browser (web ALPN, web port) visiting a pool's site: the name, not mining.
                self.add(ins, "pool-website", W_POOL_WEBSITE, f"TLS SNI {ev.sni}"
                         + (f" with ALPN {','.join(ev.alpn[:3])}" if browsing else ""), ts)
                self._pool_host(ins, ev.sni, "sni", m.domain)
            elif m is not None:
                ins.dialect = "browser-tls" if m.category == "browser-miner" else "tls"
                self.add(ins, "pool-domain-sni", W_POOL_SNI, f"TLS SNI {ev.sni}", ts)
                self._pool_host(ins, ev.sni, "sni", m.domain)
        elif not ev.alpn:
            ins.bare_tls = True
            ins.dialect = ins.dialect or "tls"
            self.add(ins, "tls-no-sni-no-alpn", W_TLS_BARE, "TLS ClientHello without SNI/ALPN", ts)
            if self.intel.is_pool_port(server_port):
                self.add(ins, "tls-pool-port", W_TLS_POOL_PORT,
                         f"bare TLS to pool port {server_port}", ts)
            elif not self.intel.is_web_port(server_port):
                self.add(ins, "tls-nonweb-port", W_TLS_NONWEB_PORT,
                         f"bare TLS to non-web port {server_port}", ts)
        tm = self.intel.match_tls(ev.ja3_hash, ev.ja4)
        if tm is not None:
            self.add(ins, "tls-fingerprint", tm.weight, f"TLS fingerprint {tm.label}", ts)

    def _sv2(self, ins: Inspection, d: int, ev: Sv2Message, ts: float) -> None:
        ins.app_proto = "sv2"
        ins.dialect = "stratum-v2"
        if ev.kind == "setup-connection":
            ins.client_dir = d
            if ev.protocol == 0:
                self.add(ins, "sv2-setup", W_SV2_SETUP,
                         f"Stratum V2 SetupConnection (mining) vendor={ev.vendor!r}", ts)
            if ev.endpoint_host:
                self._pool_host(ins, ev.endpoint_host, "sv2-setup", None)
        elif ev.kind in ("noise-initiator", "noise-responder"):
            self.add(ins, "sv2-handshake", W_SV2_HANDSHAKE,
                     "Stratum V2 Noise handshake sizes (64 → 234 bytes)", ts)
        elif ev.kind == "encrypted-frame":
            self.add(ins, "sv2-frames", W_SV2_FRAMES,
                     "Stratum V2 encrypted frames of size 22 + (n + 16)", ts)

    # -- output ---------------------------------------------------------------------------

    def is_home(self, raw: bytes) -> bool:
        return raw in self.home_net

    def miner_side(self, flow: FlowView, ins: Inspection) -> int:
        """0 when side a is the miner, 1 when side b is.

        The protocol role decides when it is known (an inside host serving stratum is a pool
        or proxy, and its clients are the miners); otherwise the home-net side; otherwise
        the originator."""
        if ins.client_dir is not None:
            return ins.client_dir
        a_home, b_home = self.is_home(flow.a_ip), self.is_home(flow.b_ip)
        if a_home != b_home:
            return 0 if a_home else 1
        return 0

    def suspect(self, flow: FlowView, ins: Inspection, ts: float) -> Suspect:
        side = self.miner_side(flow, ins)
        a = Endpoint(ip_str(flow.a_ip), flow.a_port)
        b = Endpoint(ip_str(flow.b_ip), flow.b_port)
        miner, pool = (a, b) if side == 0 else (b, a)
        geo = self.intel.enrich(pool.ip)
        sanctioned = self.intel.sanctioned.match(pool.ip, pool.port, ins.pool_host, ins.login)
        return Suspect(
            flow_id=flow_id(flow),
            ts=ts,
            first_ts=flow.first_ts,
            miner=miner,
            pool=pool,
            proto="TCP" if flow.proto == TCP else "UDP",
            app_proto=ins.app_proto or "unknown",
            dialect=ins.dialect or "unknown",
            score=ins.score,
            evidence=tuple(ins.evidence),
            methods=tuple(sorted(ins.methods)),
            pool_facts=PoolFacts(
                host=ins.pool_host,
                host_source=ins.pool_host_source,
                list_match=ins.list_match,
                difficulty=ins.difficulty,
                target=ins.target,
                jobs=ins.jobs,
                algo=ins.algo,
                asn=geo.asn if geo else None,
                as_org=geo.as_org if geo else None,
                country=geo.country if geo else None,
                encoding="gzip" if ins.gzip else None,
                proxy=ins.proxy,
                proxy_port=ins.proxy_port if ins.proxy else None,
                sanctioned=sanctioned.describe() if sanctioned else None,
            ),
            miner_facts=MinerFacts(
                agent=ins.agent,
                agent_name=ins.agent_name,
                agent_version=ins.agent_version,
                login=ins.login,
                worker=ins.worker,
                algos=ins.algos,
                shares=ins.shares,
                ja3=ins.ja3,
                ja4=ins.ja4,
            ),
            vlan=flow.vlan,
        )


def _browsing(ins: Inspection) -> bool:
    """A visit to a pool's web site and nothing else: not worth a host's ask budget."""
    return "pool-website" in ins.kinds and ins.score <= ins.name_weight


def _is_website(name: str) -> bool:
    return name.lower().startswith("www.")


def _dns_kind(name: str) -> tuple[str, int]:
    if _is_website(name):
        return "pool-website", W_POOL_WEBSITE
    return "pool-dns", W_POOL_DNS


def _conn_key(flow: FlowView) -> tuple[bytes, int, bytes, int]:
    if (flow.a_ip, flow.a_port) <= (flow.b_ip, flow.b_port):
        return (flow.a_ip, flow.a_port, flow.b_ip, flow.b_port)
    return (flow.b_ip, flow.b_port, flow.a_ip, flow.a_port)


def flow_id(flow: FlowView) -> int:
    """A stable 63-bit flow id (same capture → same id, whatever the process)."""
    h = hashlib.blake2b(digest_size=8)
    h.update(flow.a_ip + flow.b_ip)
    h.update(f"{flow.proto}:{flow.a_port}:{flow.b_port}:{flow.first_ts:.6f}".encode())
    return int.from_bytes(h.digest(), "big") & 0x7FFF_FFFF_FFFF_FFFF
