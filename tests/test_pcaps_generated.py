"""The generated test captures: reproducible, catalogued, and holding what expected.json says."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import zlib
from collections import defaultdict
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.main import load_contrib, load_layer
from scapy.utils import rdpcap

REPO = Path(__file__).resolve().parents[1]
PCAPS = REPO / "pcaps"
GENERATOR = REPO / "tools" / "make_pcaps.py"
CAPTURE_SUFFIXES = {".pcap", ".pcapng"}
DIALECTS = {
    "stratum-v1", "cryptonote", "eth-proxy", "ethereumstratum-1", "ethereumstratum-2",
    "getwork-http", "getblocktemplate-http", "eth-getwork-http", "tls", "browser-tls",
    "stratum-v2", "monero-daemon-rpc", "coinhive-ws", "webminerpool-ws",
}
# Dialects whose streams are newline-delimited JSON-RPC the test can read back.
JSON_DIALECTS = {"stratum-v1", "cryptonote", "eth-proxy", "ethereumstratum-1",
                 "ethereumstratum-2"}

# Tunnels are peeled by scapy's own dissectors; these two are not loaded by default.
load_contrib("erspan")
load_layer("vxlan")


@cache
def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_pcaps", GENERATOR)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses resolve string annotations through sys.modules.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@cache
def expected() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((PCAPS / "expected.json").read_text())
    return doc


def entries() -> list[dict[str, Any]]:
    files: list[dict[str, Any]] = expected()["files"]
    return files


def captures_on_disk() -> set[str]:
    return {p.name for p in PCAPS.iterdir() if p.suffix in CAPTURE_SUFFIXES}


def entry_ids() -> list[str]:
    return [e["file"] for e in entries()]


# -- reproducibility and catalogue ------------------------------------------------------------


def test_regenerating_gives_identical_bytes(tmp_path: Path) -> None:
    load_generator().generate(tmp_path)
    committed = {p.name for p in PCAPS.iterdir() if p.is_file()}
    fresh = {p.name for p in tmp_path.iterdir()}
    assert fresh == committed
    differing = [name for name in sorted(fresh)
                 if (tmp_path / name).read_bytes() != (PCAPS / name).read_bytes()]
    assert differing == [], f"regenerated files differ from pcaps/: {differing}"


def test_generation_does_not_depend_on_earlier_scenarios(tmp_path: Path) -> None:
    # Each scenario owns its seed: building one alone must give the committed bytes.
    gen = load_generator()
    scenario = next(s for s in gen.SCENARIOS if s.file == "split_login.pcap")
    data, entry = gen.build_one(scenario)
    assert data == (PCAPS / "split_login.pcap").read_bytes()
    assert entry["sha256"] == hashlib.sha256(data).hexdigest()


def test_every_capture_is_in_expected_json_and_readme() -> None:
    listed = [e["file"] for e in entries()]
    assert len(listed) == len(set(listed)), "a file is listed twice in expected.json"
    assert set(listed) == captures_on_disk()
    readme = (PCAPS / "README.md").read_text()
    rows = set(re.findall(r"^\| `([^`]+)` \|", readme, flags=re.MULTILINE))
    assert rows == captures_on_disk()


def test_sizes_stay_small() -> None:
    sizes = {name: (PCAPS / name).stat().st_size for name in captures_on_disk()}
    assert max(sizes.values()) < 200_000, sizes
    assert sum(sizes.values()) < 3_000_000


@pytest.mark.parametrize("entry", entries(), ids=entry_ids())
def test_expected_entry_is_well_formed(entry: dict[str, Any]) -> None:
    data = (PCAPS / entry["file"]).read_bytes()
    assert entry["sha256"] == hashlib.sha256(data).hexdigest()
    assert entry["description"]
    assert entry["packets"] > 0
    for alert in entry["alerts"]:
        assert alert["dialect"] in DIALECTS
        assert isinstance(alert["tls"], bool)
        assert isinstance(alert["midflow"], bool)
        assert alert["tls"] == (alert["dialect"] in {"tls", "browser-tls"})
        for key in ("client_port", "server_port"):
            assert 0 < alert[key] < 65536
    for flow in entry["unscored"]:
        assert flow["reason"]


def test_negatives_and_positives_are_both_present() -> None:
    negatives = [e["file"] for e in entries() if not e["alerts"]]
    assert {"neg_bitcoin_p2p.pcap", "neg_tls_nosni.pcap", "neg_bulk_3333.pcap"} <= set(negatives)
    demo = next(e for e in entries() if e["file"] == "demo.pcap")
    assert {a["dialect"] for a in demo["alerts"]} == {"cryptonote", "stratum-v1", "tls"}


# -- the bytes hold what the entry claims ------------------------------------------------------


Key = tuple[str, int, str, int]


class Streams:
    """TCP segments of one capture, keyed by 4-tuple, innermost TCP layer (tunnels peeled)."""

    def __init__(self, path: Path) -> None:
        self.packets = rdpcap(str(path))
        self.segments: dict[Key, dict[int, bytes]] = defaultdict(dict)
        self.syns: set[Key] = set()
        for pkt in self.packets:
            depth = 0
            while pkt.getlayer(TCP, nb=depth + 1) is not None:
                depth += 1
            if depth == 0:
                continue
            tcp: Any = pkt.getlayer(TCP, nb=depth)
            ip: Any = tcp.underlayer
            while not isinstance(ip, (IP, IPv6)):
                ip = ip.underlayer
            key: Key = (ip.src, int(tcp.sport), ip.dst, int(tcp.dport))
            if tcp.flags.S and not tcp.flags.A:
                self.syns.add(key)
            payload = bytes(tcp.payload)
            if payload:
                self.segments[key][int(tcp.seq)] = payload

    def stream(self, key: Key) -> bytes:
        """One direction reassembled by sequence number, overlaps dropped."""
        data = bytearray()
        nxt: int | None = None
        for seq, payload in sorted(self.segments[key].items()):
            if nxt is None:
                data += payload
            elif seq + len(payload) > nxt:
                data += payload[max(nxt - seq, 0):]
            else:
                continue
            nxt = seq + len(payload)
        return bytes(data)


@cache
def streams(name: str) -> Streams:
    return Streams(PCAPS / name)


def json_lines(data: bytes) -> list[bytes]:
    """Newline-delimited JSON, with ES/2.0.0 gzip members (after a plain hello) unpacked."""
    if b"\x1f\x8b\x08" in data:
        cut = data.index(b"\n") + 1 if data.startswith(b"{") else 0
        parts = [data[:cut]]
        rest = data[cut:]
        while rest:
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            parts.append(inflater.decompress(rest))
            assert inflater.eof, "truncated gzip member"
            rest = inflater.unused_data
        data = b"".join(parts)
    return [line for line in data.split(b"\n") if line]


@pytest.mark.parametrize("entry", entries(), ids=entry_ids())
def test_capture_matches_expected(entry: dict[str, Any]) -> None:
    s = streams(entry["file"])
    assert len(s.packets) == entry["packets"]
    for alert in entry["alerts"]:
        client: Key = (alert["client_ip"], alert["client_port"], alert["server_ip"],
                       alert["server_port"])
        server: Key = (client[2], client[3], client[0], client[1])
        assert s.segments[client] or s.segments[server], f"no payload for {client}"
        assert (client in s.syns) is not alert["midflow"]
        if alert["dialect"] not in JSON_DIALECTS:
            continue
        methods = set()
        for key in (client, server):
            data = s.stream(key)
            if alert.get("proxy"):
                # The proxy handshake precedes the tunnelled JSON lines.
                data = data[data.find(b"{"):]
            for i, line in enumerate(json_lines(data)):
                try:
                    msg = json.loads(line)
                except json.JSONDecodeError:
                    # Only a mid-flow capture may start inside a line.
                    assert alert["midflow"], line[:80]
                    assert i == 0, line[:80]
                    continue
                if "method" in msg:
                    methods.add(msg["method"])
        assert sorted(methods) == alert["methods"]


@pytest.mark.parametrize("entry", [e for e in entries() if not e["alerts"]],
                         ids=[e["file"] for e in entries() if not e["alerts"]])
def test_negatives_carry_no_mining_vocabulary(entry: dict[str, Any]) -> None:
    s = streams(entry["file"])
    for key in s.segments:
        data = s.stream(key)
        assert b'"mining.' not in data
        assert re.search(rb'"method": ?"(login|submit|getwork|eth_submitLogin|eth_getWork)"',
                         data) is None


def test_midflow_captures_start_inside_a_json_line() -> None:
    for name in ("midflow_cryptonote.pcap", "midflow_stratum_v1.pcap"):
        s = streams(name)
        first = min((pkt for pkt in s.packets if TCP in pkt and bytes(pkt[TCP].payload)),
                    key=lambda p: float(p.time))
        payload = bytes(first[TCP].payload)
        assert not payload.startswith(b"{")
        assert b"\n" in payload


def test_es2_gzip_members_follow_a_plain_hello() -> None:
    entry = next(e for e in entries() if e["file"] == "ethereumstratum_v2_gzip.pcap")
    alert = entry["alerts"][0]
    s = streams(entry["file"])
    pool = s.stream((alert["server_ip"], alert["server_port"], alert["client_ip"],
                     alert["client_port"]))
    hello, rest = pool.split(b"\n", 1)
    assert json.loads(hello)["result"]["encoding"] == "gzip"
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    first = json.loads(inflater.decompress(rest))
    assert first["id"] == 1  # the subscribe result, the first message after the hello
    assert inflater.unused_data.startswith(b"\x1f\x8b\x08")
    assert all(json.loads(line) for line in json_lines(pool))


# -- tshark agrees --------------------------------------------------------------------------


def tshark(*args: str) -> str:
    exe = shutil.which("tshark")
    assert exe is not None, "tshark is required to cross-check the captures"
    done = subprocess.run([exe, *args], capture_output=True, text=True, check=True, timeout=120)
    return done.stdout


@pytest.mark.parametrize("name", sorted(captures_on_disk()))
def test_tshark_finds_nothing_malformed(name: str) -> None:
    # SMPP's heuristic claims the plaintext Stratum V2 frames; that is tshark guessing.
    out = tshark("-r", str(PCAPS / name), "--disable-protocol", "smpp", "-Y",
                 "_ws.malformed || tcp.analysis.flags || tcp.checksum.status == 2 || "
                 "ip.checksum.status == 2 || udp.checksum.status == 2",
                 "-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE",
                 "-o", "udp.check_checksum:TRUE", "-T", "fields", "-e", "frame.number",
                 "-e", "_ws.expert.message")
    flagged = [line for line in out.splitlines() if line.strip()]
    if name == "out_of_order_retransmit.pcap":
        text = "\n".join(flagged)
        assert "out-of-order" in text
        assert "retransmission" in text
        assert "Malformed" not in text
    else:
        assert flagged == []


@pytest.mark.parametrize("entry", [e for e in entries()
                                   if any("ja3_hash" in a for a in e["alerts"])],
                         ids=lambda e: e["file"])
def test_tshark_ja3_matches_expected(entry: dict[str, Any]) -> None:
    out = tshark("-r", str(PCAPS / entry["file"]), "-Y", "tls.handshake.type == 1", "-T",
                 "fields", "-e", "ip.src", "-e", "tcp.srcport", "-e", "tls.handshake.ja3_full",
                 "-e", "tls.handshake.ja3")
    seen = {}
    for line in out.splitlines():
        ip, port, full, digest = line.split("\t")
        seen[(ip, int(port))] = (full, digest)
    for alert in entry["alerts"]:
        if "ja3_hash" in alert:
            assert seen[(alert["client_ip"], alert["client_port"])] == (alert["ja3"],
                                                                        alert["ja3_hash"])


def test_pool_hello_without_sni_has_the_openssl_111_fingerprint() -> None:
    entry = next(e for e in entries() if e["file"] == "tls_pool_nosni.pcap")
    (alert,) = entry["alerts"]
    assert alert["sni"] is None
    assert alert["ja3_hash"] == "c34a54599a1fbaf1786aa6d633545a60"


GREASE = {0x0A0A + 0x1010 * i for i in range(16)}


def ja4_from_tshark_fields(ciphers: str, exts: str, sigalgs: str, versions: str, alpn: str,
                           sni: str) -> str:
    """JA4 from tshark's own parse of the ClientHello, as FoxIO's reference computes it."""
    cipher_vals = [int(c, 16) for c in ciphers.split(",") if int(c, 16) not in GREASE]
    ext_vals = [int(e) for e in exts.split(",") if int(e) not in GREASE]
    sig_vals = [int(a, 16) for a in sigalgs.split(",") if a and int(a, 16) not in GREASE]
    vers = [int(v, 16) for v in versions.split(",") if v and int(v, 16) not in GREASE]
    vtext = {0x0304: "13", 0x0303: "12"}[max(vers)]
    first = alpn.split(",", 1)[0] if alpn else ""
    head = (f"t{vtext}{'d' if sni else 'i'}{len(cipher_vals):02d}{len(ext_vals):02d}"
            f"{first[0] + first[-1] if first else '00'}")
    cipher_text = ",".join(f"{c:04x}" for c in sorted(cipher_vals))
    ext_text = ",".join(f"{e:04x}" for e in sorted(e for e in ext_vals if e not in (0, 16)))
    ext_text += "_" + ",".join(f"{a:04x}" for a in sig_vals)
    return "_".join([head, hashlib.sha256(cipher_text.encode()).hexdigest()[:12],
                     hashlib.sha256(ext_text.encode()).hexdigest()[:12]])


@pytest.mark.parametrize("entry", [e for e in entries()
                                   if any("ja4" in a for a in e["alerts"])],
                         ids=lambda e: e["file"])
def test_ja4_matches_tshark_parse(entry: dict[str, Any]) -> None:
    out = tshark("-r", str(PCAPS / entry["file"]), "-Y", "tls.handshake.type == 1", "-T",
                 "fields", "-E", "aggregator=,", "-e", "ip.src", "-e", "tcp.srcport",
                 "-e", "tls.handshake.ciphersuite", "-e", "tls.handshake.extension.type",
                 "-e", "tls.handshake.sig_hash_alg",
                 "-e", "tls.handshake.extensions.supported_version",
                 "-e", "tls.handshake.extensions_alpn_str",
                 "-e", "tls.handshake.extensions_server_name")
    seen = {}
    for line in out.splitlines():
        ip, port, *fields = line.split("\t")
        seen[(ip, int(port))] = ja4_from_tshark_fields(*fields)
    for alert in entry["alerts"]:
        if "ja4" in alert:
            assert seen[(alert["client_ip"], alert["client_port"])] == alert["ja4"]


def test_ja4_of_known_clients() -> None:
    # Published JA4 values: Chrome's, and the OpenSSL 1.1.1 no-SNI hello a miner sends.
    by_file = {e["file"]: e["alerts"] for e in entries()}
    assert by_file["tls_coinhive_browser.pcap"][0]["ja4"] == \
        "t13d1516h2_8daaf6152771_e5627efa2ab1"
    assert by_file["tls_pool_nosni.pcap"][0]["ja4"] == "t13i310900_e8f1e7e78f70_5ac7197df9d2"


def test_wrapped_copies_hold_the_same_session() -> None:
    names = ["wrap_vlan.pcap", "wrap_qinq.pcap", "wrap_gre.pcap", "wrap_erspan2.pcap",
             "wrap_erspan3.pcap", "wrap_vxlan.pcap", "wrap_sll2.pcap", "wrap_ipv6_exthdr.pcap"]
    contents = set()
    for name in names:
        (alert,) = next(e for e in entries() if e["file"] == name)["alerts"]
        s = streams(name)
        client: Key = (alert["client_ip"], alert["client_port"], alert["server_ip"],
                       alert["server_port"])
        server: Key = (client[2], client[3], client[0], client[1])
        contents.add((alert["client_port"], s.stream(client), s.stream(server)))
    assert len(contents) == 1
