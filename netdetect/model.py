"""Value types shared across stages: packets, endpoints, evidence, suspects, alerts."""

from __future__ import annotations

import socket
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

import msgspec

if TYPE_CHECKING:
    from netdetect.agent.schema import HostReport

TCP = 6
UDP = 17

# TCP flag bits (RFC 793 / 3168).
FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10


class FlowView(Protocol):
    """What judgement reads of a flow, whichever engine tracks it. `a` is the originator;
    direction 0 is a→b."""

    proto: int
    a_ip: bytes
    a_port: int
    b_ip: bytes
    b_port: int
    first_ts: float
    last_ts: float
    midflow: bool
    vlan: int
    closed: int
    pkts: list[int]
    bytes: list[int]


def ip_str(raw: bytes) -> str:
    """Text form of a raw 4- or 16-byte address."""
    return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)


def ip_raw(text: str) -> bytes:
    """Raw bytes of a textual IPv4/IPv6 address (inverse of ip_str)."""
    if ":" in text:
        return socket.inet_pton(socket.AF_INET6, text)
    return socket.inet_pton(socket.AF_INET, text)


class Endpoint(msgspec.Struct, frozen=True):
    ip: str
    port: int


class Verdict(StrEnum):
    CONFIRMED = "confirmed"
    CONFIRMED_PERSISTENT = "confirmed+persistent"
    NETWORK_ONLY = "network-only"
    ALLOWED = "allowed"


class Evidence(msgspec.Struct, frozen=True):
    """One reason to believe a flow is mining. `weight` adds to the flow's score (0..100)."""

    kind: str  # e.g. "stratum-client-method", "pool-domain-sni", "tls-no-sni-no-alpn"
    weight: int
    detail: str  # human-readable, e.g. 'method "mining.subscribe" from client'
    ts: float  # packet timestamp of the observation


class PoolFacts(msgspec.Struct, frozen=True):
    host: str | None = None  # pool name from DNS, SNI, HTTP Host or login URL
    host_source: str | None = None  # "dns" | "sni" | "http-host" | "login" | "certificate"
    list_match: str | None = None  # which intel entry matched (domain suffix or IP set name)
    difficulty: float | None = None
    target: str | None = None
    jobs: int = 0
    algo: str | None = None
    asn: int | None = None
    as_org: str | None = None
    country: str | None = None
    encoding: str | None = None  # "gzip" once an EthereumStratum/2.0.0 pool switched to it
    # Reached through a proxy ("socks5", "socks4a", "socks4", "http-connect"): the flow's
    # remote end is the proxy, `host`/`port` are the target the miner asked it for.
    proxy: str | None = None
    proxy_port: int | None = None
    # The signatures' sanctioned.txt entry covering this pool (verdict `allowed`), described.
    sanctioned: str | None = None


class MinerFacts(msgspec.Struct, frozen=True):
    agent: str | None = None  # e.g. "XMRig/6.16.0 (Linux x86_64) libuv/1.42.0 gcc/9.3.0"
    agent_name: str | None = None  # normalised miner name, e.g. "xmrig"
    agent_version: str | None = None
    login: str | None = None  # wallet or account
    worker: str | None = None  # worker / rig id
    algos: tuple[str, ...] = ()
    shares: int = 0
    ja3: str | None = None
    ja4: str | None = None


class Suspect(msgspec.Struct, frozen=True):
    """A flow the network side believes is mining, with everything it saw."""

    flow_id: int
    ts: float  # when the evidence first became strong enough
    first_ts: float  # the flow's first packet
    miner: Endpoint  # the local / client side
    pool: Endpoint  # the remote / server side
    proto: str  # "TCP" | "UDP"
    app_proto: str  # "stratum" | "tls" | "http" | "sv2" | ...
    dialect: str  # "stratum-v1" | "cryptonote" | "eth-proxy" | ... | "tls" | "browser-tls"
    score: int
    evidence: tuple[Evidence, ...]
    methods: tuple[str, ...] = ()
    pool_facts: PoolFacts = msgspec.field(default_factory=PoolFacts)
    miner_facts: MinerFacts = msgspec.field(default_factory=MinerFacts)
    vlan: int = 0
    # Below the alert threshold, put to the host early: only a host that confirms it raises
    # an alert (netdetect.confirm); without confirmation it is counted, never raised.
    asked: bool = False


class FlowEnd(msgspec.Struct, frozen=True):
    """An alerted flow leaving the flow table: its final evidence, facts and counts.

    The alert is raised as soon as the evidence suffices; this record, written when the flow
    ends (EVE event_type "flow", same flow_id), carries what was learned afterwards: job and
    share counts, later methods and evidence, packets and bytes each way.
    """

    suspect: Suspect  # the final snapshot; `ts` is the flow's last packet
    reason: str  # "closed" | "timeout" | "active" | "evicted" | "end" | "reused"
    closed: bool  # FIN both ways or RST seen
    pkts_to_pool: int
    pkts_to_miner: int
    bytes_to_pool: int
    bytes_to_miner: int
    pcap_filename: str | None = None  # replay: the capture the flow's alert came from


class HostLease(msgspec.Struct, frozen=True):
    """An address the sensor saw handed to (or resolved for) a host: a DHCP ACK, a DNS answer.

    `host` is the host id as the traffic names it (a DHCP hostname's first label, lower-cased;
    or the inventory id a declared DNS name belongs to). Whether that id has an agent is the
    inventory's call, not the core's.
    """

    ip: str
    host: str
    ttl: float | None  # seconds the mapping holds (lease time); None: the inventory default
    ts: float  # packet timestamp of the ACK or answer
    source: str = "dhcp"  # "dhcp" | "dns"
    server: str | None = None  # DHCP: the address the ACK came from (who vouches for it)


class CampaignRef(msgspec.Struct, frozen=True):
    """The campaign an alert was placed in when it was raised (netdetect.campaign)."""

    id: str
    ties: tuple[str, ...] = ()  # the strong tie kinds that joined it to an earlier campaign


class Alert(msgspec.Struct, frozen=True):
    """A suspect with its verdict and, when the host answered, the host's half of the evidence."""

    suspect: Suspect
    verdict: Verdict
    severity: int  # 1 (highest) .. 3, as in Suricata EVE
    host_id: str | None = None
    host: HostReport | None = None
    reasons: tuple[str, ...] = ()  # why this verdict, one short sentence each
    mitre: tuple[str, ...] = ("T1496",)
    pcap_filename: str | None = None  # replay: the capture being read when it was raised
    campaign: CampaignRef | None = None
