"""Write a large, seeded, SPAN-like pcap with a known set of mining flows, for benchmarks."""

from __future__ import annotations

import argparse
import heapq
import json
import random
import socket
import struct
import sys
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path

# 2024-03-12 09:00:00 UTC: a fixed epoch keeps the output byte-identical for a given seed.
EPOCH = 1_710_234_000
TCP = 6
UDP = 17
F_FIN, F_SYN, F_RST, F_PSH, F_ACK = 0x01, 0x02, 0x04, 0x08, 0x10
F_SA, F_PA, F_FA, F_RA = F_SYN | F_ACK, F_PSH | F_ACK, F_FIN | F_ACK, F_RST | F_ACK
# Marks a skeleton packet whose emission puts the flow into the truth file. Lives above the
# 8 TCP flag bits so it never reaches the wire.
MARK = 0x100
SEQ_MASK = 0xFFFFFFFF

# A skeleton payload: literal bytes, a reference into a shared buffer (kept as an int so that
# a million planned packets do not hold a million payload copies), or a literal prefix + ref.
Payload = bytes | int | tuple[bytes, int]
Entry = tuple[int, int, int, Payload]  # (µs since capture start, direction, flags, payload)

_PCAP_HDR = struct.Struct("<IHHiIII")
_REC = struct.Struct("<IIII")
_IP4 = struct.Struct("!BBHHHBBH4s4s")
_IP6 = struct.Struct("!IHBB16s16s")
_UDP = struct.Struct("!HHHH")
# Data segments carry NOP NOP TS, as Linux sends them once timestamps are negotiated.
_TCP_TS = struct.Struct("!HHIIBBHHHBBBBII")
# SYN / SYN-ACK options in Linux order: MSS, SACK-permitted, TS, NOP, window scale.
_TCP_SYN = struct.Struct("!HHIIBBHHHBBHBBBBIIBBBB")

GATEWAY_MAC = bytes.fromhex("001c734a1001")
RESOLVER_MAC = bytes.fromhex("525400a10053")
RESOLVERS4 = (bytes([10, 0, 0, 53]), bytes([10, 0, 0, 54]))
RESOLVERS6 = (bytes.fromhex("fd000000000000000000000000000053"),)
VLANS = (20, 30, 110)

CLASS_SHARE = {"bulk": 0.37, "tls": 0.22, "http": 0.12, "dns": 0.09, "quic": 0.20}
MINING_FLOW_SHARE = 0.01
MINING_KINDS = ("stratum", "cryptonote", "stratum-midflow", "cryptonote-midflow", "tls-pool")
MINING_WEIGHTS = (0.30, 0.30, 0.075, 0.075, 0.25)
# Ports whose dissectors do not expect text (random payload on 8080 reads as broken HTTP).
BULK_PORTS = (445, 873, 2049, 3306, 5201, 5432, 6379, 9092, 27017, 50000)

BENIGN_NAMES = (
    "www.google.com",
    "fonts.gstatic.com",
    "www.gstatic.com",
    "clients4.google.com",
    "accounts.google.com",
    "update.googleapis.com",
    "www.youtube.com",
    "i.ytimg.com",
    "rr3---sn-4g5e6nsz.googlevideo.com",
    "login.microsoftonline.com",
    "graph.microsoft.com",
    "outlook.office365.com",
    "teams.microsoft.com",
    "settings-win.data.microsoft.com",
    "github.com",
    "api.github.com",
    "objects.githubusercontent.com",
    "codeload.github.com",
    "registry.npmjs.org",
    "pypi.org",
    "files.pythonhosted.org",
    "deb.debian.org",
    "security.debian.org",
    "archive.ubuntu.com",
    "security.ubuntu.com",
    "dl.fedoraproject.org",
    "mirrors.kernel.org",
    "registry-1.docker.io",
    "auth.docker.io",
    "production.cloudflare.docker.com",
    "quay.io",
    "gcr.io",
    "s3.amazonaws.com",
    "ec2.us-east-1.amazonaws.com",
    "sts.amazonaws.com",
    "monitoring.eu-west-1.amazonaws.com",
    "storage.googleapis.com",
    "slack.com",
    "edgeapi.slack.com",
    "wss-primary.slack.com",
    "zoom.us",
    "api.zoom.us",
    "www.wikipedia.org",
    "en.wikipedia.org",
    "upload.wikimedia.org",
    "cdn.jsdelivr.net",
    "cdnjs.cloudflare.com",
    "ajax.googleapis.com",
    "www.cloudflare.com",
    "1.1.1.1",
    "ocsp.digicert.com",
    "ocsp.pki.goog",
    "r3.o.lencr.org",
    "crl.globalsign.com",
    "api.datadoghq.com",
    "http-intake.logs.datadoghq.eu",
    "collector.newrelic.com",
    "sentry.io",
    "o450.ingest.sentry.io",
    "api.segment.io",
    "www.linkedin.com",
    "static.licdn.com",
    "www.amazon.com",
    "m.media-amazon.com",
    "www.netflix.com",
    "occ-0-2433-2430.1.nflxso.net",
    "api.openai.com",
    "copilot-proxy.githubusercontent.com",
    "vscode.download.prss.microsoft.com",
    "marketplace.visualstudio.com",
    "time.cloudflare.com",
    "ntp.ubuntu.com",
    "connectivity-check.ubuntu.com",
    "detectportal.firefox.com",
    "incoming.telemetry.mozilla.org",
    "push.services.mozilla.com",
    "www.bbc.co.uk",
    "www.nytimes.com",
    "news.ycombinator.com",
    "stackoverflow.com",
    "cdn.sstatic.net",
    "i.stack.imgur.com",
    "www.reddit.com",
    "gateway.reddit.com",
    "jira.corp.example",
    "confluence.corp.example",
    "gitlab.corp.example",
    "vault.corp.example",
    "grafana.corp.example",
    "prometheus.corp.example",
)
USER_AGENTS = (
    (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/122.0.0.0 Safari/537.36"
    ),
    "Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0",
    "curl/7.88.1",
    "Wget/1.21.3",
    "Debian APT-HTTP/1.3 (2.6.1)",
    "python-requests/2.31.0",
    "Go-http-client/1.1",
    "Prometheus/2.50.1",
)
# Pool names as they appear in public pool lists; the addresses the capture's DNS gives them
# are made up (documentation-free public-looking space), so only names identify them.
POOLS_XMR = (
    "pool.supportxmr.com",
    "xmr-eu1.nanopool.org",
    "xmr-us-east1.nanopool.org",
    "gulf.moneroocean.stream",
    "xmr.2miners.com",
    "pool.hashvault.pro",
    "xmrpool.eu",
    "monerohash.com",
    "xmr.herominers.com",
    "pool.minexmr.com",
)
POOLS_BTC = (
    "stratum.slushpool.com",
    "eu.stratum.slushpool.com",
    "btc.f2pool.com",
    "ss.antpool.com",
    "stratum.antpool.com",
    "btc.viabtc.io",
    "stratum.braiins.com",
    "us1.bitminter.com",
    "zec-eu.suprnova.cc",
    "ltc.f2pool.com",
)
STRATUM_PORTS = (3333, 4444, 5555, 8888, 1314, 25, 3032, 700)
CRYPTONOTE_PORTS = (3333, 5555, 7777, 10128, 14444, 9000, 80, 443, 4444)
TLS_POOL_PORTS = (443, 9000, 14433, 10443, 20128, 5555)
STRATUM_AGENTS = (
    "cgminer/4.10.0",
    "bfgminer/5.5.0",
    "cpuminer/2.5.1",
    "sgminer/5.6.1",
    "NiceHash/1.0.0",
    "bmminer/2.0.0",
)
XMRIG_AGENTS = (
    "XMRig/6.21.0 (Linux x86_64) libuv/1.44.2 gcc/11.4.0",
    "XMRig/6.16.0 (Linux x86_64) libuv/1.42.0 gcc/9.3.0",
    "XMRig/6.20.0 (Linux x86_64) libuv/1.46.0 gcc/12.2.0",
    "xmr-stak-rx/1.0.5-rx/1.0.5 lin/gcc8.3.0/aes-ni",
)
CN_ALGOS = ("rx/0", "cn/r", "cn/half", "rx/wow", "cn-pico", "argon2/chukwav2")

_WORDS = (
    "the",
    "of",
    "and",
    "service",
    "status",
    "cluster",
    "node",
    "request",
    "release",
    "update",
    "security",
    "report",
    "quarterly",
    "network",
    "storage",
    "volume",
    "metrics",
    "dashboard",
    "incident",
    "review",
    "deploy",
    "pipeline",
    "build",
    "artifact",
    "user",
    "account",
    "policy",
    "access",
    "team",
    "project",
    "meeting",
    "notes",
    "summary",
)
_HTML_TAGS = (
    "<p>",
    "</p>\n",
    '<div class="row">',
    "</div>\n",
    "<li>",
    "</li>",
    "<span>",
    "</span>",
    '<a href="/docs/">',
    "</a>",
    "<h2>",
    "</h2>\n",
)


def ip_str(raw: bytes) -> str:
    """Text form of a raw 4- or 16-byte address."""
    return socket.inet_ntop(socket.AF_INET6 if len(raw) == 16 else socket.AF_INET, raw)


def _ones_sum(data: bytes) -> int:
    """RFC 1071 sum of `data` mod 0xFFFF (2**16 = 1 mod 0xFFFF, so a bigint remainder folds)."""
    if len(data) & 1:
        data += b"\0"
    return int.from_bytes(data, "big") % 0xFFFF


def _words_sum(raw: bytes) -> int:
    return sum(struct.unpack(f"!{len(raw) // 2}H", raw))


class _Buffers:
    """Shared payload material with prefix sums, so a slice's checksum costs O(1)."""

    RANDOM = 0
    TEXT = 1

    def __init__(self, rng: random.Random) -> None:
        text = _text_corpus(rng, 1 << 18)
        self.data: tuple[bytes, ...] = (rng.randbytes(1 << 20), text)
        self.prefix: tuple[list[int], ...] = tuple(
            [0, *accumulate(struct.unpack(f"!{len(b) // 2}H", b))] for b in self.data
        )

    def ref(self, rng: random.Random, buf: int, n: int, parity: int = 0) -> int:
        size = len(self.data[buf])
        # random() scaled, not randrange(): this runs for most planned packets.
        off = int(rng.random() * ((size - n - 2) >> 1)) * 2 + parity
        return (buf << 40) | (off << 16) | n

    @staticmethod
    def ref_at(buf: int, off: int, n: int) -> int:
        return (buf << 40) | (off << 16) | n

    def resolve(self, ref: int) -> tuple[bytes, int]:
        buf = ref >> 40
        off = (ref >> 16) & 0xFFFFFF
        n = ref & 0xFFFF
        raw = self.data[buf]
        data = raw[off : off + n]
        if off & 1:
            return data, _ones_sum(data)
        p = self.prefix[buf]
        half = off >> 1
        s = p[half + (n >> 1)] - p[half]
        if n & 1:
            s += raw[off + n - 1] << 8
        return data, s % 0xFFFF


def _text_corpus(rng: random.Random, size: int) -> bytes:
    parts: list[str] = ['<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head><body>\n']
    total = len(parts[0])
    while total < size:
        piece = rng.choice(_HTML_TAGS) + " ".join(rng.choices(_WORDS, k=rng.randint(4, 18)))
        parts.append(piece)
        total += len(piece)
    return "".join(parts).encode()[:size]


# --------------------------------------------------------------------------- endpoints


@dataclass(frozen=True, slots=True)
class _Host:
    ip: bytes
    mac: bytes
    vlan: int


@dataclass(slots=True)
class _Spec:
    """Everything needed to rebuild one flow's packets: planned once, built when it starts."""

    cls: str
    variant: str
    start: int  # µs since capture start
    seed: int
    client: _Host
    server: bytes
    server_mac: bytes
    cport: int
    sport: int
    proto: int
    name: str | None = None  # SNI, HTTP Host, DNS question or pool host
    count: int = 0


def _mac_for(ip: bytes) -> bytes:
    return b"\x02" + zlib.crc32(ip).to_bytes(4, "big") + bytes([len(ip)])


def _public_v4(rng: random.Random) -> bytes:
    firsts = (
        5,
        8,
        13,
        23,
        31,
        34,
        35,
        37,
        45,
        46,
        51,
        52,
        54,
        62,
        64,
        66,
        69,
        74,
        78,
        80,
        81,
        85,
        87,
        91,
        93,
        94,
        95,
        104,
        107,
        108,
        130,
        136,
        138,
        140,
        142,
        143,
        144,
        146,
        149,
        151,
        157,
        159,
        162,
        163,
        176,
        178,
        185,
        188,
        193,
        195,
        199,
        212,
        213,
    )
    return bytes(
        [rng.choice(firsts), rng.randint(1, 254), rng.randint(0, 255), rng.randint(1, 254)]
    )


def _public_v6(rng: random.Random) -> bytes:
    prefixes = (
        "2a001450",
        "26064700",
        "20014860",
        "2a032880",
        "2a0489c0",
        "26001f18",
        "2a0104f8",
        "2a02c207",
        "24048000",
        "26020100",
    )
    return bytes.fromhex(rng.choice(prefixes)) + rng.randbytes(12)


class _Ctx:
    """Address plan, name tables and payload buffers for one generated capture."""

    def __init__(self, rng: random.Random, end_us: int) -> None:
        self.end = end_us
        self.bufs = _Buffers(rng)
        self.clients: dict[tuple[bool, int], list[_Host]] = {}
        for v6 in (False, True):
            for vlan, subnet, count in (
                (0, 1, 3000),
                (20, 20, 600),
                (30, 30, 400),
                (110, 110, 200),
            ):
                hosts = []
                for i in range(count):
                    if v6:
                        ip = bytes.fromhex(f"fd00{subnet:04x}00000000") + (
                            0x0250_56FF_FE00_0000 + i
                        ).to_bytes(8, "big")
                    else:
                        ip = bytes([10, subnet, 1 + i // 250, 1 + i % 250])
                    hosts.append(_Host(ip, _mac_for(ip), vlan))
                self.clients[(v6, vlan)] = hosts
        self.servers4 = [_public_v4(rng) for _ in range(5000)]
        self.servers6 = [_public_v6(rng) for _ in range(1500)]
        self.internal4 = [bytes([10, 0, 8 + i // 250, 1 + i % 250]) for i in range(60)]
        self.pool_ip4 = {name: _public_v4(rng) for name in POOLS_XMR + POOLS_BTC}
        self.pool_ip6 = {name: _public_v6(rng) for name in POOLS_XMR + POOLS_BTC}

    def client(self, rng: random.Random) -> _Host:
        v6 = rng.random() < 0.15
        vlan = rng.choice(VLANS) if rng.random() < 0.15 else 0
        return rng.choice(self.clients[(v6, vlan)])

    def server_for(self, name: str, v6: bool) -> bytes:
        table = self.servers6 if v6 else self.servers4
        return table[zlib.crc32(name.encode()) % len(table)]

    def random_server(self, rng: random.Random, v6: bool) -> bytes:
        return rng.choice(self.servers6 if v6 else self.servers4)


# --------------------------------------------------------------------------- TLS bytes


def _ext(etype: int, data: bytes) -> bytes:
    return struct.pack("!HH", etype, len(data)) + data


def _u16list(values: tuple[int, ...] | list[int]) -> bytes:
    return struct.pack(f"!H{len(values)}H", 2 * len(values), *values)


def _grease(rng: random.Random) -> int:
    g = rng.randrange(16)
    return (g << 12) | 0x0A00 | (g << 4) | 0x0A


def _client_hello(rng: random.Random, kind: str, sni: str | None) -> bytes:
    """A ClientHello record in the shape of a real client: chrome, chrome-pq (hybrid key
    share, larger than one segment), firefox, or openssl (OpenSSL 1.1.1 defaults, as XMRig and
    wget send it)."""
    exts: list[bytes] = []
    sni_ext = b""
    if sni is not None:
        name = sni.encode()
        sni_ext = _ext(0, struct.pack("!HBH", len(name) + 3, 0, len(name)) + name)
    x25519 = struct.pack("!HH", 0x001D, 32) + rng.randbytes(32)
    if kind == "openssl":
        ciphers = [
            0x1302,
            0x1303,
            0x1301,
            0xC02C,
            0xC030,
            0x009F,
            0xCCA9,
            0xCCA8,
            0xCCAA,
            0xC02B,
            0xC02F,
            0x009E,
            0xC024,
            0xC028,
            0x006B,
            0xC023,
            0xC027,
            0x0067,
            0xC00A,
            0xC014,
            0x0039,
            0xC009,
            0xC013,
            0x0033,
            0x009D,
            0x009C,
            0x003D,
            0x003C,
            0x0035,
            0x002F,
            0x00FF,
        ]
        if sni_ext:
            exts.append(sni_ext)
        exts += [
            _ext(11, b"\x03\x00\x01\x02"),
            _ext(10, _u16list((0x001D, 0x0017, 0x001E, 0x0019, 0x0018))),
            _ext(35, b""),
            _ext(22, b""),
            _ext(23, b""),
            _ext(
                13,
                _u16list(
                    (
                        0x0403,
                        0x0503,
                        0x0603,
                        0x0807,
                        0x0808,
                        0x0809,
                        0x080A,
                        0x080B,
                        0x0804,
                        0x0805,
                        0x0806,
                        0x0401,
                        0x0501,
                        0x0601,
                        0x0303,
                        0x0203,
                        0x0301,
                        0x0201,
                        0x0302,
                        0x0202,
                        0x0402,
                        0x0502,
                        0x0602,
                    )
                ),
            ),
            _ext(43, b"\x08\x03\x04\x03\x03\x03\x02\x03\x01"),
            _ext(45, b"\x01\x01"),
            _ext(51, struct.pack("!H", len(x25519)) + x25519),
        ]
    elif kind == "firefox":
        ciphers = [
            0x1301,
            0x1303,
            0x1302,
            0xC02B,
            0xC02F,
            0xCCA9,
            0xCCA8,
            0xC02C,
            0xC030,
            0xC00A,
            0xC009,
            0xC013,
            0xC014,
            0x009C,
            0x009D,
            0x002F,
            0x0035,
        ]
        p256 = struct.pack("!HH", 0x0017, 65) + b"\x04" + rng.randbytes(64)
        exts += [
            sni_ext,
            _ext(23, b""),
            _ext(65281, b"\x00"),
            _ext(10, _u16list((0x001D, 0x0017, 0x0018, 0x0019, 0x0100, 0x0101))),
            _ext(11, b"\x01\x00"),
            _ext(35, b""),
            _ext(16, b"\x00\x0c\x02h2\x08http/1.1"),
            _ext(5, b"\x01\x00\x00\x00\x00"),
            _ext(34, _u16list((0x0403, 0x0503, 0x0603, 0x0203))),
            _ext(51, struct.pack("!H", len(x25519) + len(p256)) + x25519 + p256),
            _ext(43, b"\x04\x03\x04\x03\x03"),
            _ext(
                13,
                _u16list(
                    (
                        0x0403,
                        0x0503,
                        0x0603,
                        0x0804,
                        0x0805,
                        0x0806,
                        0x0401,
                        0x0501,
                        0x0601,
                        0x0203,
                        0x0201,
                    )
                ),
            ),
            _ext(45, b"\x01\x01"),
            _ext(28, b"\x40\x01"),
        ]
    else:  # chrome / chrome-pq
        g1, g2 = _grease(rng), _grease(rng)
        ciphers = [
            g1,
            0x1301,
            0x1302,
            0x1303,
            0xC02B,
            0xC02F,
            0xC02C,
            0xC030,
            0xCCA9,
            0xCCA8,
            0xC013,
            0xC014,
            0x009C,
            0x009D,
            0x002F,
            0x0035,
        ]
        shares = struct.pack("!HHB", g2, 1, 0)
        groups: list[int] = [g2, 0x001D, 0x0017, 0x0018]
        if kind == "chrome-pq":
            shares += struct.pack("!HH", 0x6399, 1216) + rng.randbytes(1216)
            groups.insert(1, 0x6399)
        shares += x25519
        body = [
            sni_ext,
            _ext(23, b""),
            _ext(65281, b"\x00"),
            _ext(10, _u16list(groups)),
            _ext(11, b"\x01\x00"),
            _ext(35, b""),
            _ext(16, b"\x00\x0c\x02h2\x08http/1.1"),
            _ext(5, b"\x01\x00\x00\x00\x00"),
            _ext(13, _u16list((0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601))),
            _ext(18, b""),
            _ext(51, struct.pack("!H", len(shares)) + shares),
            _ext(45, b"\x01\x01"),
            _ext(43, struct.pack("!BHHH", 6, _grease(rng), 0x0304, 0x0303)),
            _ext(27, b"\x02\x00\x02"),
            _ext(17513, b"\x00\x03\x02h2"),
        ]
        rng.shuffle(body)  # Chrome permutes its extensions since version 110
        exts = [_ext(_grease(rng), b""), *body, _ext(_grease(rng), b"\x00")]
    ext_bytes = b"".join(e for e in exts if e)
    hello = (
        b"\x03\x03"
        + rng.randbytes(32)
        + b"\x20"
        + rng.randbytes(32)
        + _u16list(ciphers)
        + b"\x01\x00"
        + struct.pack("!H", len(ext_bytes))
        + ext_bytes
    )
    hs = b"\x01" + len(hello).to_bytes(3, "big") + hello
    return struct.pack("!BHH", 22, 0x0301, len(hs)) + hs


def _server_flight(rng: random.Random, encrypted_len: int) -> bytes:
    """TLS 1.3 ServerHello + ChangeCipherSpec + the encrypted rest of the handshake."""
    exts = _ext(43, b"\x03\x04") + _ext(51, struct.pack("!HH", 0x001D, 32) + rng.randbytes(32))
    sh = (
        b"\x03\x03"
        + rng.randbytes(32)
        + b"\x20"
        + rng.randbytes(32)
        + b"\x13\x02\x00"
        + struct.pack("!H", len(exts))
        + exts
    )
    hs = b"\x02" + len(sh).to_bytes(3, "big") + sh
    return (
        struct.pack("!BHH", 22, 0x0303, len(hs))
        + hs
        + b"\x14\x03\x03\x00\x01\x01"
        + struct.pack("!BHH", 23, 0x0303, encrypted_len)
        + rng.randbytes(encrypted_len)
    )


_APPDATA_HDR: dict[int, bytes] = {}


def _appdata_hdr(n: int) -> bytes:
    hdr = _APPDATA_HDR.get(n)
    if hdr is None:
        hdr = _APPDATA_HDR[n] = struct.pack("!BHH", 23, 0x0303, n)
    return hdr


# --------------------------------------------------------------------------- DNS bytes


def _qname(name: str) -> bytes:
    out = bytearray()
    for label in name.rstrip(".").split("."):
        raw = label.encode()
        out.append(len(raw))
        out += raw
    out.append(0)
    return bytes(out)


def _dns_query(msg_id: int, name: str, qtype: int) -> bytes:
    return (
        struct.pack("!HHHHHH", msg_id, 0x0100, 1, 0, 0, 0)
        + _qname(name)
        + struct.pack("!HH", qtype, 1)
    )


def _dns_answer(
    msg_id: int, name: str, qtype: int, answers: list[tuple[int, int, bytes]], rcode: int = 0
) -> bytes:
    """Response echoing the question; each answer is (rtype, ttl, rdata), owner = question."""
    head = struct.pack("!HHHHHH", msg_id, 0x8180 | rcode, 1, len(answers), 0, 0)
    body = bytearray(_qname(name) + struct.pack("!HH", qtype, 1))
    for rtype, ttl, rdata in answers:
        body += struct.pack("!HHHIH", 0xC00C, rtype, 1, ttl, len(rdata)) + rdata
    return head + bytes(body)


# --------------------------------------------------------------------------- TCP skeletons


class _Tcp:
    """Builds one TCP connection's packets as seen at a tap next to the client: the client's
    packets and its reactions appear `lan` µs apart, the server's `rtt` µs after a request."""

    def __init__(self, rng: random.Random, mss: int, rtt: int, lan: int) -> None:
        self.rng = rng
        self.mss = mss
        self.rtt = rtt
        self.lan = lan
        self.e: list[Entry] = []

    def react(self, sender: int) -> int:
        return self.rtt if sender == 0 else self.lan

    def handshake(self, t: int) -> int:
        self.e.append((t, 0, F_SYN, b""))
        t += self.rtt
        self.e.append((t, 1, F_SA, b""))
        t += self.lan
        self.e.append((t, 0, F_ACK, b""))
        return t

    def send(self, t: int, d: int, data: bytes, *, ack: bool = True, mark: int = 0) -> int:
        """Sends `data` as back-to-back segments; the receiver ACKs every second one."""
        mss = self.mss
        n = len(data)
        for k, off in enumerate(range(0, n, mss)):
            last = off + mss >= n
            self.e.append(
                (t, d, (F_PA if last else F_ACK) | (mark if k == 0 else 0), data[off : off + mss])
            )
            if ack and (k & 1 or last):
                self.e.append((t + self.react(d), 1 - d, F_ACK, b""))
            if not last:
                t += self.rng.randint(8, 60)
        return t

    def stream(
        self,
        t: int,
        d: int,
        nbytes: int,
        rate: float,
        *,
        buf: int = _Buffers.RANDOM,
        tls: bool = False,
        ref0: int | None = None,
        bufs: _Buffers,
    ) -> int:
        """Bulk payload from a shared buffer at `rate` bytes/s; TLS streams get one
        application-data record per segment, as servers using dynamic record sizing send."""
        mss = self.mss
        gap = mss * 1e6 / rate
        off = -1 if ref0 is None else (ref0 >> 16) & 0xFFFFFF
        sent = 0
        k = 0
        rng = self.rng
        while sent < nbytes:
            n = min(mss, nbytes - sent)
            pl: Payload
            if tls:
                body = max(n - 5, 1)
                pl = (_appdata_hdr(body), bufs.ref(rng, buf, body))
            elif off >= 0 and off + n < len(bufs.data[buf]):
                pl = _Buffers.ref_at(buf, off, n)
                off += n
            else:
                pl = bufs.ref(rng, buf, n)
            sent += n
            last = sent >= nbytes
            self.e.append((t, d, F_PA if last else F_ACK, pl))
            if k & 1 or last:
                self.e.append((t + self.react(d), 1 - d, F_ACK, b""))
            k += 1
            t += max(1, int(gap * rng.uniform(0.6, 1.4)))
        return t

    def close(self, t: int, d: int) -> int:
        if self.rng.random() < 0.04:
            self.e.append((t, d, F_RA, b""))
            return t
        self.e.append((t, d, F_FA, b""))
        t += self.react(d)
        self.e.append((t, 1 - d, F_FA, b""))
        t += self.react(1 - d)
        self.e.append((t, d, F_ACK, b""))
        return t


def _rtt(rng: random.Random) -> int:
    return int(min(max(rng.lognormvariate(10.0, 0.8), 1500), 300_000))  # median ~22 ms


def _lan(rng: random.Random) -> int:
    return rng.randint(30, 400)


def _mss(spec: _Spec) -> int:
    return 1428 if len(spec.server) == 16 else 1448  # 1460/1440 minus the TS option


def _rate(rng: random.Random) -> float:
    return min(max(rng.lognormvariate(14.5, 1.2), 50_000.0), 120e6)  # median ~2 MB/s


# --------------------------------------------------------------------------- benign builders


def _build_bulk(ctx: _Ctx, s: _Spec, rng: random.Random) -> list[Entry]:
    c = _Tcp(rng, _mss(s), _rtt(rng), _lan(rng))
    t = s.start
    if s.variant != "midflow":
        t = c.handshake(t) + rng.randint(100, 3000)
    upload = rng.random() < 0.2
    for _ in range(1 if rng.random() < 0.7 else rng.randint(2, 4)):
        nseg = min(int(rng.lognormvariate(3.4, 1.3)) + 1, 2500)
        if upload:
            t = c.stream(t, 0, nseg * c.mss - rng.randrange(c.mss), _rate(rng), bufs=ctx.bufs)
            t = c.send(t + c.rtt, 1, ctx.bufs.data[0][: rng.randint(20, 120)], ack=False)
        else:
            t = c.send(t, 0, ctx.bufs.data[0][4096 : 4096 + rng.randint(60, 600)], ack=False)
            t += c.rtt
            t = c.stream(t, 1, nseg * c.mss - rng.randrange(c.mss), _rate(rng), bufs=ctx.bufs)
        t += rng.randint(200, 200_000)
    c.close(t, 0 if rng.random() < 0.6 else 1)
    return c.e


def _build_tls(ctx: _Ctx, s: _Spec, rng: random.Random) -> list[Entry]:
    c = _Tcp(rng, _mss(s), _rtt(rng), _lan(rng))
    t = c.handshake(s.start) + rng.randint(50, 800)
    sni = None if s.variant == "nosni-internal" else s.name
    hello_kind = {"nosni-internal": "chrome", "openssl-sni": "openssl"}.get(s.variant, s.variant)
    t = c.send(t, 0, _client_hello(rng, hello_kind, sni), ack=False)
    t += c.rtt
    t = c.send(t, 1, _server_flight(rng, rng.randint(2400, 5200)))
    t += c.lan
    fin = b"\x14\x03\x03\x00\x01\x01" + _appdata_hdr(53) + rng.randbytes(53)
    for _ in range(1 if rng.random() < 0.6 else rng.randint(2, 6)):
        req = rng.randint(90, 900)
        t = c.send(t, 0, fin + _appdata_hdr(req) + rng.randbytes(req), ack=False)
        fin = b""
        t += c.rtt
        nbytes = int(min(rng.lognormvariate(9.6, 1.4), 3_000_000))
        t = c.stream(t, 1, nbytes, _rate(rng), tls=True, bufs=ctx.bufs)
        t += rng.randint(1000, 3_000_000)
    t = c.send(t, 0, _appdata_hdr(19) + rng.randbytes(19), ack=False)
    c.close(t + 50, 0)
    return c.e


def _json_body(rng: random.Random) -> bytes:
    items = [
        {
            "id": rng.randint(1, 10**6),
            "name": " ".join(rng.choices(_WORDS, k=3)),
            "status": rng.choice(("ok", "degraded", "pending")),
            "value": round(rng.random() * 100, 3),
        }
        for _ in range(rng.randint(1, 40))
    ]
    return json.dumps({"items": items, "total": len(items)}, separators=(",", ":")).encode()


def _build_http(ctx: _Ctx, s: _Spec, rng: random.Random) -> list[Entry]:
    c = _Tcp(rng, _mss(s), _rtt(rng), _lan(rng))
    t = c.handshake(s.start) + rng.randint(50, 800)
    host = s.name or "www.example.com"
    ua = rng.choice(USER_AGENTS)
    for i in range(1 if rng.random() < 0.6 else rng.randint(2, 5)):
        if s.variant == "jsonrpc":
            rpc = json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": i + 1,
                    "method": rng.choice(
                        ("Status.Get", "system.listMethods", "node.getInfo", "Inventory.List")
                    ),
                    "params": {},
                },
                separators=(",", ":"),
            ).encode()
            req = (
                f"POST /rpc HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {ua}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(rpc)}\r\n\r\n"
            ).encode() + rpc
            result = json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": i + 1,
                    "result": {"uptime": rng.randint(1, 10**7), "state": "running"},
                },
                separators=(",", ":"),
            ).encode()
            kind = ("application/json", result)
        else:
            path = rng.choice(
                (
                    "/",
                    "/index.html",
                    "/api/v2/status",
                    "/static/app.js",
                    "/images/logo.png",
                    "/debian/dists/bookworm/InRelease",
                    "/metrics",
                    "/download/pkg.tar.gz",
                )
            )
            req = (
                f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {ua}\r\nAccept: */*\r\n"
                "Accept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n\r\n"
            ).encode()
            r = rng.random()
            kind = (
                ("application/json", _json_body(rng))
                if r < 0.3
                else (
                    ("text/html; charset=utf-8", b"")
                    if r < 0.7
                    else ("application/octet-stream", b"")
                )
            )
        t = c.send(t, 0, req, ack=False)
        t += c.rtt
        ctype, body = kind
        date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(EPOCH + t // 1_000_000))
        if body:
            head = (
                f"HTTP/1.1 200 OK\r\nDate: {date}\r\nServer: nginx/1.24.0\r\n"
                f"Content-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
            ).encode()
            t = c.send(t, 1, head + body)
        else:
            buf = _Buffers.TEXT if ctype.startswith("text") else _Buffers.RANDOM
            length = int(min(rng.lognormvariate(9.5, 1.3), 4_000_000)) + 1
            head = (
                f"HTTP/1.1 200 OK\r\nDate: {date}\r\nServer: nginx/1.24.0\r\n"
                f"Content-Type: {ctype}\r\n"
                f"Content-Length: {length}\r\nConnection: keep-alive\r\n\r\n"
            ).encode()
            first = min(c.mss - len(head), length)
            # The first body byte's parity makes the continuation start on an even offset,
            # where the buffer's prefix sums give its checksum for free.
            ref0 = ctx.bufs.ref(rng, buf, first, parity=first & 1)
            data0, _ = ctx.bufs.resolve(ref0)
            t = c.send(t, 1, head + data0, ack=False)
            if length > first:
                cont = (ref0 & ~0xFFFFFFFFFF) | ((((ref0 >> 16) & 0xFFFFFF) + first) << 16)
                t = c.stream(
                    t + 20, 1, length - first, _rate(rng), buf=buf, ref0=cont, bufs=ctx.bufs
                )
        t += rng.randint(500, 2_000_000)
    c.close(t, 0 if rng.random() < 0.5 else 1)
    return c.e


def _build_dns(ctx: _Ctx, s: _Spec, rng: random.Random) -> list[Entry]:
    name = s.name or "example.com"
    v6 = len(s.client.ip) == 16
    t = s.start
    out: list[Entry] = []
    qtypes = (1, 28) if rng.random() < 0.4 else ((28,) if rng.random() < 0.3 else (1,))
    pool = s.variant == "pool"
    for qtype in qtypes:
        msg_id = rng.randrange(65536)
        out.append((t, 0, 0, _dns_query(msg_id, name, qtype)))
        answers: list[tuple[int, int, bytes]] = []
        rcode = 0
        if pool:
            if (qtype == 28) == v6:
                ip = (ctx.pool_ip6 if v6 else ctx.pool_ip4)[name]
                answers.append((qtype, 300, ip))
        elif name.endswith(".corp.example") and rng.random() < 0.2:
            rcode = 3
        else:
            target = name
            if rng.random() < 0.3:
                target = f"{name.split('.')[0]}.edge-{rng.randrange(100)}.cdn-example.net"
                answers.append((5, rng.choice((60, 300, 3600)), _qname(target)))
            for _ in range(rng.randint(1, 4)):
                ip = ctx.server_for(target + str(len(answers)), qtype == 28)
                answers.append((qtype, rng.choice((20, 60, 300)), ip))
        t += rng.randint(200, 40_000)
        out.append(
            (
                t,
                1,
                MARK if pool and answers else 0,
                _dns_answer(msg_id, name, qtype, answers, rcode),
            )
        )
        t += rng.randint(5, 200)
    return out


def _quic_varint2(n: int) -> bytes:
    return struct.pack("!H", 0x4000 | n)


def _build_quic(ctx: _Ctx, s: _Spec, rng: random.Random) -> list[Entry]:
    """QUIC v1 shaped: padded Initial, server Initial+Handshake, then short-header datagrams."""
    rtt, lan = _rtt(rng), _lan(rng)
    bufs = ctx.bufs
    dcid, scid = rng.randbytes(8), rng.randbytes(8)
    t = s.start
    out: list[Entry] = []
    init_len = 1250 - 1 - 4 - 9 - 1 - 1 - 2
    c_init = b"\xc3\x00\x00\x00\x01\x08" + dcid + b"\x00\x00" + _quic_varint2(init_len)
    out.append((t, 0, 0, (c_init, bufs.ref(rng, 0, init_len))))
    t += rtt
    s_init = b"\xc1\x00\x00\x00\x01\x00\x08" + scid + b"\x00" + _quic_varint2(1180)
    for _ in range(rng.randint(2, 4)):
        out.append((t, 1, 0, (s_init, bufs.ref(rng, 0, 1180))))
        t += rng.randint(10, 200)
    t += lan
    c_hs = b"\xe1\x00\x00\x00\x01\x08" + scid + b"\x00" + _quic_varint2(80)
    out.append((t, 0, 0, (c_hs, bufs.ref(rng, 0, 80))))
    c_short = bytes([0x40 | rng.randrange(0x40)]) + scid
    s_short = bytes([0x40 | rng.randrange(0x40)])
    rate = _rate(rng)
    for _ in range(1 if rng.random() < 0.5 else rng.randint(2, 5)):
        out.append((t, 0, 0, (c_short, bufs.ref(rng, 0, rng.randint(60, 400)))))
        t += rtt
        n = min(int(rng.lognormvariate(3.2, 1.1)) + 1, 1500)
        gap = 1252 * 1e6 / rate
        for k in range(n):
            out.append(
                (
                    t,
                    1,
                    0,
                    (
                        s_short,
                        bufs.ref(rng, 0, rng.choice((1251, 1251, 1251, rng.randint(40, 1251)))),
                    ),
                )
            )
            if k % rng.choice((2, 2, 4, 10)) == 1:
                out.append((t + lan, 0, 0, (c_short, bufs.ref(rng, 0, rng.randint(25, 45)))))
            t += max(1, int(gap * rng.uniform(0.5, 1.5)))
        t += rng.randint(1000, 4_000_000)
    return out


# --------------------------------------------------------------------------- mining builders


def _hex(rng: random.Random, nbytes: int) -> str:
    return rng.randbytes(nbytes).hex()


def _wallet(rng: random.Random) -> str:
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    return "4" + "".join(rng.choices(alphabet, k=94))


def _line(obj: object, spaced: bool = False) -> bytes:
    sep = (", ", ": ") if spaced else (",", ":")
    return json.dumps(obj, separators=sep).encode() + b"\n"


def _stratum_session(
    rng: random.Random, start: int, end: int, midflow: bool
) -> list[tuple[int, int, bytes]]:
    """Stratum v1 (Bitcoin-style) messages as (time, direction, line)."""
    spaced = rng.random() < 0.5  # cgminer and friends put spaces after separators
    account = rng.choice(("acct", "ops", "x9", "bc1q" + _hex(rng, 10)))
    worker = f"{account}.{rng.choice(('rig1', 'w01', 'node7', 'default'))}"
    ev: list[tuple[int, int, bytes]] = []
    t = start
    msg_id = rng.randint(1, 5) if not midflow else rng.randint(200, 5000)

    def notify(clean: bool) -> bytes:
        return _line(
            {
                "id": None,
                "method": "mining.notify",
                "params": [
                    _hex(rng, 4),
                    _hex(rng, 32),
                    _hex(rng, rng.randint(40, 90)),
                    _hex(rng, rng.randint(20, 60)),
                    [_hex(rng, 32) for _ in range(rng.randint(6, 12))],
                    "20000000",
                    "17034219",
                    f"{EPOCH + t // 1_000_000:08x}",
                    clean,
                ],
            },
            spaced,
        )

    if not midflow:
        ev.append(
            (
                t,
                0,
                _line(
                    {
                        "id": msg_id,
                        "method": "mining.subscribe",
                        "params": [rng.choice(STRATUM_AGENTS)],
                    },
                    spaced,
                ),
            )
        )
        ev.append(
            (
                -1,
                1,
                _line(
                    {
                        "id": msg_id,
                        "result": [
                            [
                                ["mining.set_difficulty", _hex(rng, 4)],
                                ["mining.notify", _hex(rng, 16)],
                            ],
                            _hex(rng, 4),
                            4,
                        ],
                        "error": None,
                    },
                    spaced,
                ),
            )
        )
        msg_id += 1
        ev.append(
            (
                -2,
                0,
                _line(
                    {"id": msg_id, "method": "mining.authorize", "params": [worker, "x"]}, spaced
                ),
            )
        )
        ev.append((-1, 1, _line({"id": msg_id, "result": True, "error": None}, spaced)))
        ev.append(
            (
                -3,
                1,
                _line(
                    {
                        "id": None,
                        "method": "mining.set_difficulty",
                        "params": [rng.choice((1024, 8192, 65536, 131072))],
                    },
                    spaced,
                ),
            )
        )
        ev.append((-3, 1, notify(True)))
    else:
        first = notify(False)
        ev.append((t, 1, first[rng.randint(8, len(first) - 10) :]))
    share_mean = rng.uniform(4e6, 40e6)
    next_job = t + int(rng.expovariate(1 / 30e6))
    t += int(rng.expovariate(1 / share_mean)) + 50_000
    while min(t, next_job) < end:
        if next_job < t:
            ev.append((next_job, 1, notify(rng.random() < 0.2)))
            next_job += int(rng.expovariate(1 / 30e6)) + 1_000_000
            continue
        msg_id += 1
        ev.append(
            (
                t,
                0,
                _line(
                    {
                        "id": msg_id,
                        "method": "mining.submit",
                        "params": [
                            worker,
                            _hex(rng, 4),
                            _hex(rng, 4),
                            f"{EPOCH + t // 1_000_000:08x}",
                            _hex(rng, 4),
                        ],
                    },
                    spaced,
                ),
            )
        )
        ev.append((-1, 1, _line({"id": msg_id, "result": True, "error": None}, spaced)))
        t += int(rng.expovariate(1 / share_mean)) + 100_000
    return ev


def _cn_job(rng: random.Random, height: int, algo: str) -> dict[str, object]:
    return {
        "blob": _hex(rng, 76),
        "job_id": _hex(rng, 12),
        "target": _hex(rng, 4),
        "algo": algo,
        "height": height,
        "seed_hash": _hex(rng, 32),
    }


def _cryptonote_session(
    rng: random.Random, start: int, end: int, midflow: bool
) -> list[tuple[int, int, bytes]]:
    """CryptoNote stratum (XMRig dialect) messages as (time, direction, line)."""
    ev: list[tuple[int, int, bytes]] = []
    t = start
    algo = rng.choice(CN_ALGOS)
    sess = _hex(rng, 16)
    height = rng.randint(3_000_000, 3_200_000)
    msg_id = 1 if not midflow else rng.randint(100, 3000)
    if not midflow:
        ev.append(
            (
                t,
                0,
                _line(
                    {
                        "id": 1,
                        "jsonrpc": "2.0",
                        "method": "login",
                        "params": {
                            "login": _wallet(rng),
                            "pass": rng.choice(("x", "worker1", "rig-" + _hex(rng, 2))),
                            "agent": rng.choice(XMRIG_AGENTS),
                            "rigid": rng.choice(("", "node-" + _hex(rng, 2))),
                            "algo": list(CN_ALGOS[: rng.randint(1, len(CN_ALGOS))]),
                        },
                    }
                ),
            )
        )
        ev.append(
            (
                -1,
                1,
                _line(
                    {
                        "id": 1,
                        "jsonrpc": "2.0",
                        "error": None,
                        "result": {
                            "id": sess,
                            "job": _cn_job(rng, height, algo),
                            "extensions": ["algo", "nicehash", "connect", "tls", "keepalive"],
                            "status": "OK",
                        },
                    }
                ),
            )
        )
    else:
        first = _line({"jsonrpc": "2.0", "method": "job", "params": _cn_job(rng, height, algo)})
        ev.append((t, 1, first[rng.randint(8, len(first) - 10) :]))
    share_mean = rng.uniform(5e6, 60e6)
    next_job = t + int(rng.expovariate(1 / 40e6))
    last_client = t
    t += int(rng.expovariate(1 / share_mean)) + 50_000
    while min(t, next_job) < end:
        if next_job < t:
            height += 1
            ev.append(
                (
                    next_job,
                    1,
                    _line(
                        {"jsonrpc": "2.0", "method": "job", "params": _cn_job(rng, height, algo)}
                    ),
                )
            )
            next_job += int(rng.expovariate(1 / 40e6)) + 1_000_000
            continue
        msg_id += 1
        if t - last_client > 60_000_000:
            ev.append(
                (
                    last_client + 60_000_000,
                    0,
                    _line(
                        {
                            "id": msg_id,
                            "jsonrpc": "2.0",
                            "method": "keepalived",
                            "params": {"id": sess},
                        }
                    ),
                )
            )
            ev.append(
                (
                    -1,
                    1,
                    _line(
                        {
                            "id": msg_id,
                            "jsonrpc": "2.0",
                            "error": None,
                            "result": {"status": "KEEPALIVED"},
                        }
                    ),
                )
            )
            last_client += 60_000_000
            continue
        ev.append(
            (
                t,
                0,
                _line(
                    {
                        "id": msg_id,
                        "jsonrpc": "2.0",
                        "method": "submit",
                        "params": {
                            "id": sess,
                            "job_id": _hex(rng, 12),
                            "nonce": _hex(rng, 4),
                            "result": _hex(rng, 32),
                            "algo": algo,
                        },
                    }
                ),
            )
        )
        ev.append(
            (
                -1,
                1,
                _line({"id": msg_id, "jsonrpc": "2.0", "error": None, "result": {"status": "OK"}}),
            )
        )
        last_client = t
        t += int(rng.expovariate(1 / share_mean)) + 100_000
    return ev


def _play(
    c: _Tcp, t0: int, events: list[tuple[int, int, bytes]], end: int, mark_index: int
) -> None:
    """Turns (time, direction, line) into segments. A time of -1 means "reply to the previous
    message", -2 "client follows up at once", -3 "server pushes right after its reply"."""
    t = t0
    for i, (when, d, line) in enumerate(events):
        if when == -1:
            t = t + c.react(1 - d)
        elif when == -2:
            t = t + c.lan
        elif when == -3:
            t = t + c.rng.randint(50, 2000)
        else:
            t = max(when, t + 1)
        if t >= end:
            return
        reply_follows = i + 1 < len(events) and events[i + 1][0] == -1
        t = c.send(t, d, line, ack=not reply_follows, mark=MARK if i == mark_index else 0)


def _build_mining(ctx: _Ctx, s: _Spec, rng: random.Random) -> list[Entry]:
    c = _Tcp(rng, _mss(s), _rtt(rng), _lan(rng))
    midflow = s.variant.endswith("midflow")
    t = s.start
    if not midflow:
        t = c.handshake(t) + rng.randint(50, 5000)
    session = _cryptonote_session if s.variant.startswith("cryptonote") else _stratum_session
    events = session(rng, t, ctx.end, midflow)
    # Mid-flow, the first segment starts inside a line: the first whole message identifies it.
    _play(c, t, events, ctx.end, 1 if midflow else 0)
    return c.e


def _build_tls_pool(ctx: _Ctx, s: _Spec, rng: random.Random) -> list[Entry]:
    """TLS to a pool: OpenSSL-default hello without SNI or ALPN, then small periodic records."""
    c = _Tcp(rng, _mss(s), _rtt(rng), _lan(rng))
    t = c.handshake(s.start) + rng.randint(50, 2000)
    t = c.send(t, 0, _client_hello(rng, "openssl", None), ack=False, mark=MARK)
    t += c.rtt
    t = c.send(t, 1, _server_flight(rng, rng.randint(900, 2800)))
    t += c.lan
    login = rng.randint(330, 520)
    t = c.send(
        t,
        0,
        b"\x14\x03\x03\x00\x01\x01"
        + _appdata_hdr(53)
        + rng.randbytes(53)
        + _appdata_hdr(login)
        + rng.randbytes(login),
        ack=False,
    )
    t += c.rtt
    n = rng.randint(480, 700)
    t = c.send(t, 1, _appdata_hdr(n) + rng.randbytes(n))
    share_mean = rng.uniform(5e6, 60e6)
    next_job = t + int(rng.expovariate(1 / 40e6))
    t += int(rng.expovariate(1 / share_mean)) + 50_000
    end = ctx.end
    while min(t, next_job) < end:
        if next_job < t:
            n = rng.randint(380, 520)
            c.send(next_job, 1, _appdata_hdr(n) + rng.randbytes(n))
            next_job += int(rng.expovariate(1 / 40e6)) + 1_000_000
            continue
        n = rng.randint(200, 260)
        t2 = c.send(t, 0, _appdata_hdr(n) + rng.randbytes(n), ack=False) + c.rtt
        n = rng.randint(70, 90)
        c.send(t2, 1, _appdata_hdr(n) + rng.randbytes(n))
        t += int(rng.expovariate(1 / share_mean)) + 100_000
    return c.e


BUILDERS = {
    "bulk": _build_bulk,
    "tls": _build_tls,
    "http": _build_http,
    "dns": _build_dns,
    "quic": _build_quic,
    "mining": _build_mining,
    "tls-pool": _build_tls_pool,
}


def _skeleton(ctx: _Ctx, s: _Spec) -> list[Entry]:
    entries = BUILDERS[s.cls](ctx, s, random.Random(s.seed))
    entries.sort(key=lambda e: e[0])  # stable: same-time packets keep their causal order
    end = ctx.end
    if entries and entries[-1][0] >= end:
        entries = [e for e in entries if e[0] < end]
    return entries


# --------------------------------------------------------------------------- emission


class _Live:
    """Per-flow wire state while its packets are written: sequence numbers, IP ids, TS clocks."""

    __slots__ = (
        "flowlabel",
        "ipconst",
        "ipid",
        "l2",
        "label",
        "mining",
        "mss",
        "ports",
        "proto",
        "pseudo",
        "seq",
        "skel",
        "spec",
        "src",
        "tagged",
        "tls",
        "tsb",
        "tslast",
        "ttl",
        "v6",
        "win",
    )

    def __init__(self, spec: _Spec, skel: list[Entry], rng: random.Random) -> None:
        self.spec = spec
        self.skel = skel
        self.label = _label(spec)
        self.tagged = 1 if spec.client.vlan else 0
        self.tls = spec.cls == "tls"
        self.mining = spec.cls in ("mining", "tls-pool")
        c, srv = spec.client.ip, spec.server
        self.v6 = len(c) == 16
        self.src = ((c, srv), (srv, c))
        self.ports = ((spec.cport, spec.sport), (spec.sport, spec.cport))
        self.proto = spec.proto
        vlan = spec.client.vlan
        tag = struct.pack("!HH", 0x8100, vlan) if vlan else b""
        etype = b"\x86\xdd" if self.v6 else b"\x08\x00"
        self.l2 = (
            spec.server_mac + spec.client.mac + tag + etype,
            spec.client.mac + spec.server_mac + tag + etype,
        )
        self.ttl = (64, rng.choice((49, 52, 53, 56, 57, 58, 116, 117, 120)))
        addr_sum = _words_sum(c) + _words_sum(srv)
        self.pseudo = addr_sum + spec.proto
        self.ipconst = tuple(
            0x4500 + 0x4000 + ((ttl << 8) | spec.proto) + addr_sum for ttl in self.ttl
        )
        self.ipid = [rng.randrange(65536), rng.randrange(65536)]
        self.seq = [rng.getrandbits(32), rng.getrandbits(32)]
        self.tsb = [rng.getrandbits(31), rng.getrandbits(31)]
        self.tslast = [self.tsb[0], self.tsb[1]]
        self.win = (rng.choice((501, 502, 1024, 2048)), rng.choice((83, 235, 501, 1040)))
        self.mss = 1440 if self.v6 else 1460
        self.flowlabel = rng.getrandbits(20)


def _emit(live: _Live, e: Entry, bufs: _Buffers, out: list[bytes]) -> int:
    ts, d, fl, pl = e
    if isinstance(pl, bytes):
        data = pl
        ps = _ones_sum(pl) if pl else 0
    elif isinstance(pl, int):
        data, ps = bufs.resolve(pl)
    else:
        pre, ref = pl
        data = pre + bufs.resolve(ref)[0]
        ps = _ones_sum(data)
    n = len(data)
    sp, dp = live.ports[d]
    if live.proto == TCP:
        f = fl & 0xFF
        seq = live.seq[d]
        ack = live.seq[1 - d] if f & F_ACK else 0
        tsv = (live.tsb[d] + ts // 1000) & SEQ_MASK
        ecr = live.tslast[1 - d] if f & F_ACK else 0
        live.tslast[d] = tsv
        if f & F_SYN:
            win = 64800 if live.v6 else 64240
            hdr = _TCP_SYN.pack(
                sp,
                dp,
                seq,
                ack,
                0xA0,
                f,
                win,
                0,
                0,
                2,
                4,
                live.mss,
                4,
                2,
                8,
                10,
                tsv,
                ecr,
                1,
                3,
                3,
                7,
            )
            live.seq[d] = (seq + 1) & SEQ_MASK
        else:
            hdr = _TCP_TS.pack(sp, dp, seq, ack, 0x80, f, live.win[d], 0, 0, 1, 1, 8, 10, tsv, ecr)
            live.seq[d] = (seq + n + (f & F_FIN)) & SEQ_MASK
        l4len = len(hdr) + n
        s = (live.pseudo + l4len + int.from_bytes(hdr, "big") + ps) % 0xFFFF
        # A zero sum yields 0x0000, never 0xFFFF, as stacks send it (RFC 1624).
        hdr = hdr[:16] + ((0xFFFF - s) % 0xFFFF).to_bytes(2, "big") + hdr[18:]
    else:
        l4len = 8 + n
        s = (live.pseudo + l4len + sp + dp + l4len + ps) % 0xFFFF
        hdr = _UDP.pack(sp, dp, l4len, 0xFFFF - s)  # never 0: that means "no checksum"
    src, dst = live.src[d]
    if live.v6:
        iph = _IP6.pack(0x6000_0000 | live.flowlabel, l4len, live.proto, live.ttl[d], src, dst)
    else:
        total = 20 + l4len
        ipid = live.ipid[d]
        live.ipid[d] = (ipid + 1) & 0xFFFF
        csum = (0xFFFF - (live.ipconst[d] + total + ipid) % 0xFFFF) % 0xFFFF
        iph = _IP4.pack(0x45, 0, total, ipid, 0x4000, live.ttl[d], live.proto, csum, src, dst)
    l2 = live.l2[d]
    caplen = len(l2) + len(iph) + l4len
    out += (_REC.pack(EPOCH + ts // 1_000_000, ts % 1_000_000, caplen, caplen), l2, iph, hdr, data)
    return caplen + 16


# --------------------------------------------------------------------------- planning


@dataclass(slots=True)
class Summary:
    """What one generate() call wrote."""

    packets: int = 0
    bytes: int = 0
    seconds: float = 0.0
    flows: Counter[str] = field(default_factory=Counter)
    class_packets: Counter[str] = field(default_factory=Counter)
    vlan_packets: int = 0
    ipv6_packets: int = 0
    split_hellos: int = 0
    mining_flows: list[dict[str, object]] = field(default_factory=list)
    mining_by_fid: dict[int, dict[str, object]] = field(default_factory=dict)
    pool_dns: list[dict[str, object]] = field(default_factory=list)


def _label(s: _Spec) -> str:
    if s.cls == "mining":
        return s.variant
    if s.cls == "dns" and s.variant == "pool":
        return "dns-pool"
    if s.cls in ("tls", "http") and s.variant in ("nosni-internal", "openssl-sni", "jsonrpc"):
        return f"{s.cls}-{s.variant}"
    return s.cls


def _plan(ctx: _Ctx, rng: random.Random, packets: int) -> list[_Spec]:
    end = ctx.end
    specs: list[_Spec] = []
    pkts = dict.fromkeys(CLASS_SHARE, 0)
    total = 0
    mining = 0

    def add(spec: _Spec) -> int:
        spec.count = len(_skeleton(ctx, spec))
        specs.append(spec)
        return spec.count

    while total < packets:
        client = ctx.client(rng)
        v6 = len(client.ip) == 16
        cport = rng.randint(32768, 60999)
        seed = rng.getrandbits(64)
        if mining < MINING_FLOW_SHARE * (len(specs) + 1):
            mining += 1
            kind = rng.choices(MINING_KINDS, MINING_WEIGHTS)[0]
            pool_name = rng.choice(POOLS_BTC if kind.startswith("stratum") else POOLS_XMR)
            server = (ctx.pool_ip6 if v6 else ctx.pool_ip4)[pool_name]
            if kind.endswith("midflow"):
                start = rng.randrange(0, 5_000_000)
            else:
                start = rng.randrange(100_000, int(end * 0.85))
            if kind == "tls-pool" or rng.random() < 0.5:
                resolver = rng.choice(RESOLVERS6 if v6 else RESOLVERS4)
                dns_start = max(0, start - rng.randint(2000, 60_000))
                if not kind.endswith("midflow"):
                    total += add(
                        _Spec(
                            "dns",
                            "pool",
                            dns_start,
                            rng.getrandbits(64),
                            client,
                            resolver,
                            RESOLVER_MAC,
                            rng.randint(32768, 60999),
                            53,
                            UDP,
                            pool_name,
                        )
                    )
            if kind == "tls-pool":
                spec = _Spec(
                    "tls-pool",
                    "tls-pool",
                    start,
                    seed,
                    client,
                    server,
                    GATEWAY_MAC,
                    cport,
                    rng.choice(TLS_POOL_PORTS),
                    TCP,
                    pool_name,
                )
            else:
                ports = CRYPTONOTE_PORTS if kind.startswith("cryptonote") else STRATUM_PORTS
                spec = _Spec(
                    "mining",
                    kind,
                    start,
                    seed,
                    client,
                    server,
                    GATEWAY_MAC,
                    cport,
                    rng.choice(ports),
                    TCP,
                    pool_name,
                )
            total += add(spec)
            continue
        cls = max(CLASS_SHARE, key=lambda k: CLASS_SHARE[k] * (total + 1) - pkts[k])
        start = rng.randrange(0, end - 200_000)
        name = rng.choice(BENIGN_NAMES)
        variant = cls
        server_mac = GATEWAY_MAC
        if cls == "bulk":
            variant = "midflow" if rng.random() < 0.1 else "bulk"
            if variant == "midflow":
                start = rng.randrange(0, 1_000_000)
            internal = rng.random() < 0.3 and not v6
            server = rng.choice(ctx.internal4) if internal else ctx.random_server(rng, v6)
            spec = _Spec(
                cls,
                variant,
                start,
                seed,
                client,
                server,
                server_mac,
                cport,
                rng.choice(BULK_PORTS),
                TCP,
            )
        elif cls == "tls":
            r = rng.random()
            variant = (
                "chrome-pq"
                if r < 0.2
                else "chrome"
                if r < 0.68
                else "firefox"
                if r < 0.9
                else "openssl-sni"
                if r < 0.98
                else "nosni-internal"
            )
            if variant == "nosni-internal" and not v6:
                server = rng.choice(ctx.internal4)
                port = rng.choice((443, 8443, 6443, 9443))
            else:
                variant = "chrome" if variant == "nosni-internal" else variant
                server = ctx.server_for(name, v6)
                port = 443
            spec = _Spec(
                cls, variant, start, seed, client, server, server_mac, cport, port, TCP, name
            )
        elif cls == "http":
            variant = "jsonrpc" if rng.random() < 0.05 else "http"
            server = (
                ctx.server_for(name, v6)
                if variant == "http"
                else rng.choice(ctx.internal4 if not v6 else ctx.servers6)
            )
            spec = _Spec(
                cls,
                variant,
                start,
                seed,
                client,
                server,
                server_mac,
                cport,
                rng.choice((80, 80, 80, 8080)),
                TCP,
                name,
            )
        elif cls == "dns":
            server = rng.choice(RESOLVERS6 if v6 else RESOLVERS4)
            if rng.random() < 0.2:
                name = f"{_hex(rng, 3)}.{name}"
            spec = _Spec(
                cls, "dns", start, seed, client, server, RESOLVER_MAC, cport, 53, UDP, name
            )
        else:
            spec = _Spec(
                cls,
                "quic",
                start,
                seed,
                client,
                ctx.server_for(name, v6),
                server_mac,
                cport,
                443,
                UDP,
                name,
            )
        n = add(spec)
        pkts[cls] += n
        total += n
    return specs


def generate(
    out: Path, packets: int, seed: int = 1, duration: float = 180.0, progress: bool = False
) -> Summary:
    """Writes `packets` packets to `out` (classic pcap, Ethernet) and `<out>.truth.json`."""
    if packets < 1:
        raise ValueError("packets must be >= 1")
    t0 = time.perf_counter()
    rng = random.Random(seed)
    ctx = _Ctx(rng, int(duration * 1_000_000))
    specs = _plan(ctx, rng, packets)
    specs.sort(key=lambda s: s.start)
    summary = Summary()
    bufs = ctx.bufs
    heap: list[tuple[int, int, int]] = []
    live: dict[int, _Live] = {}
    class_packets: Counter[str] = summary.class_packets
    vlan_packets = ipv6_packets = 0
    next_report = 100_000
    k = 0
    written = 0
    nbytes = 24
    chunk: list[bytes] = []
    with out.open("wb") as fh:
        fh.write(_PCAP_HDR.pack(0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        while written < packets:
            while k < len(specs) and (not heap or specs[k].start <= heap[0][0]):
                spec = specs[k]
                skel = _skeleton(ctx, spec)
                if skel:
                    live[k] = _Live(spec, skel, random.Random(spec.seed ^ 0x5EED))
                    heapq.heappush(heap, (skel[0][0], k, 0))
                k += 1
            if not heap:
                break
            _, fid, i = heap[0]
            lv = live[fid]
            entry = lv.skel[i]
            nbytes += _emit(lv, entry, bufs, chunk)
            written += 1
            label = lv.label
            class_packets[label] += 1
            if i == 0:
                summary.flows[label] += 1
            vlan_packets += lv.tagged
            ipv6_packets += lv.v6
            flags = entry[2]
            if i == 0 and lv.mining:
                _record_mining(summary, lv.spec, fid)
            if flags & MARK:
                _record_truth(summary, lv.spec, entry[0], fid)
            # A ClientHello's first segment without PSH means the hello continues in the next.
            pl = entry[3]
            if (
                lv.tls
                and flags == F_ACK
                and not entry[1]
                and isinstance(pl, bytes)
                and pl[:1] == b"\x16"
            ):
                summary.split_hellos += 1
            if i + 1 < len(lv.skel):
                heapq.heapreplace(heap, (lv.skel[i + 1][0], fid, i + 1))
            else:
                heapq.heappop(heap)
                del live[fid]
            if len(chunk) >= 20_000:
                fh.write(b"".join(chunk))
                chunk.clear()
                if progress and written >= next_report:
                    print(f"  {written:,} packets", file=sys.stderr)
                    next_report += 100_000
        fh.write(b"".join(chunk))
    summary.packets = written
    summary.mining_flows = list(summary.mining_by_fid.values())
    summary.vlan_packets = vlan_packets
    summary.ipv6_packets = ipv6_packets
    summary.bytes = nbytes
    summary.seconds = time.perf_counter() - t0
    truth = {
        "version": 1,
        "generator": "bench/make_span.py",
        "seed": seed,
        "packets": written,
        "duration_s": duration,
        # What a detector must find: identified mining flows, as (client, server, port).
        "triples": sorted(
            {
                (m["client_ip"], m["server_ip"], m["server_port"])
                for m in summary.mining_flows
                if m["identified"]
            }
        ),
        "mining_flows": summary.mining_flows,
        "pool_dns": summary.pool_dns,
        "flows": dict(summary.flows),
    }
    Path(f"{out}.truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    return summary


def _record_mining(summary: Summary, spec: _Spec, fid: int) -> None:
    """Every mining flow with a packet in the file is listed; `identified` turns true once the
    packet that makes it recognisable (first whole mining message, or the ClientHello) is in."""
    tls = spec.cls == "tls-pool"
    dialect = "cryptonote" if spec.variant.startswith("cryptonote") else "stratum-v1"
    summary.mining_by_fid[fid] = {
        "client_ip": ip_str(spec.client.ip),
        "client_port": spec.cport,
        "server_ip": ip_str(spec.server),
        "server_port": spec.sport,
        "dialect": "tls" if tls else dialect,
        "tls": tls,
        "midflow": spec.variant.endswith("midflow"),
        "vlan": spec.client.vlan,
        "pool_host": spec.name,
        "first_ts": EPOCH + spec.start / 1e6,
        "identified": False,
    }


def _record_truth(summary: Summary, spec: _Spec, ts: int, fid: int) -> None:
    if spec.cls == "dns":
        summary.pool_dns.append(
            {
                "client_ip": ip_str(spec.client.ip),
                "resolver_ip": ip_str(spec.server),
                "name": spec.name,
                "ts": EPOCH + ts / 1e6,
            }
        )
    else:
        summary.mining_by_fid[fid]["identified"] = True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--out", type=Path, default=Path("/tmp/span.pcap"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--duration", type=float, default=180.0, help="capture time span, seconds")
    ap.add_argument("--progress", action="store_true")
    args = ap.parse_args(argv)
    if args.packets < 1 or args.duration < 1:
        ap.error("--packets and --duration must be positive")
    s = generate(args.out, args.packets, args.seed, args.duration, args.progress)
    print_summary(s, args.out)
    return 0


def print_summary(s: Summary, out: Path) -> None:
    print(
        f"wrote {out}: {s.packets:,} packets, {s.bytes / 1e6:.1f} MB in {s.seconds:.1f} s "
        f"({s.packets / max(s.seconds, 1e-9):,.0f} packets/s)"
    )
    print(
        f"  flows: {sum(s.flows.values()):,}; "
        f"VLAN-tagged packets {100 * s.vlan_packets / max(s.packets, 1):.1f} %,"
        f" IPv6 packets {100 * s.ipv6_packets / max(s.packets, 1):.1f} %,"
        f" ClientHellos over two segments: {s.split_hellos:,}"
    )
    print(f"  {'class':<22}{'flows':>9}{'packets':>11}{'share':>8}")
    for label, n in sorted(s.class_packets.items(), key=lambda kv: -kv[1]):
        print(f"  {label:<22}{s.flows[label]:>9,}{n:>11,}{100 * n / max(s.packets, 1):>7.2f}%")
    found = [m for m in s.mining_flows if m["identified"]]
    triples = {(m["client_ip"], m["server_ip"], m["server_port"]) for m in found}
    print(
        f"  mining flows: {len(s.mining_flows)}, identifiable {len(found)} "
        f"({len(triples)} triples); pool DNS answers: {len(s.pool_dns)} -> {out}.truth.json"
    )
    for m in found[:8]:
        print(
            f"    {m['dialect']:<10} {'mid-flow ' if m['midflow'] else ''}"
            f"{m['client_ip']} -> {m['server_ip']}:{m['server_port']} ({m['pool_host']})"
        )
    if len(found) > 8:
        print(f"    ... {len(found) - 8} more in {out}.truth.json")


if __name__ == "__main__":
    sys.exit(main())
