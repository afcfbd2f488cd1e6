"""The replay fast paths (DNS name cache, address-only answers, lookup memos, JA3/JA4
formatting, lazy imports) give exactly what the plain paths give."""

from __future__ import annotations

import contextlib
import hashlib
import re
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from coreparse import (
    ADDRESS_TYPES,
    MAX_POINTER_JUMPS,
    DnsMessage,
    DnsRecord,
    TlsDecoder,
    decode_dns,
    is_grease,
    parse_client_hello,
    read_name,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.dns import DNS, DNSQR, DNSRR, dns_compress
from test_tls import CORPUS, alpn_ext, build_client_hello, sni_ext, udp_payloads

from netdetect.errors import DecodeError
from netdetect.intel import Intel, load_intel
from netdetect.intel.store import _AGENT_SCANS_BEFORE_ANY

REPO = Path(__file__).resolve().parents[1]
SIGNATURES = REPO / "signatures"
# scapy ships without annotations; give its compressor a type once.
_compress: Callable[[DNS], DNS] = dns_compress
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

DNS_CAPTURES = sorted(
    p for p in CORPUS.glob("*/*") if p.suffix in (".pcap", ".pcapng") and udp_payloads(p, 53)
)


def corpus_dns() -> list[bytes]:
    out: list[bytes] = []
    for path in DNS_CAPTURES:
        out += udp_payloads(path, 53).values()
    return out


@pytest.fixture(scope="module")
def corpus_messages() -> list[bytes]:
    msgs = corpus_dns()
    assert len(msgs) > 100, "the corpus should hold real DNS traffic"
    return msgs


# --- DNS -----------------------------------------------------------------------------------


def names_the_slow_way(raw: bytes) -> tuple[list[str], list[str], list[str]]:
    """Question names, answer owners and CNAME targets, each read with the uncached reader."""
    qd, an = struct.unpack_from(">HH", raw, 4)
    pos = 12
    questions: list[str] = []
    owners: list[str] = []
    targets: list[str] = []
    for _ in range(qd):
        name, pos = read_name(raw, pos)
        questions.append(name)
        pos += 4
    for _ in range(an):
        name, pos = read_name(raw, pos)
        owners.append(name)
        rtype, rdlen = struct.unpack_from(">H6xH", raw, pos)
        if rtype == 5:
            targets.append(read_name(raw, pos + 10)[0])
        pos += 10 + rdlen
    return questions, owners, targets


def check_against_slow_path(raw: bytes) -> bool:
    """True when the message decodes; asserts the cached names equal the uncached ones and the
    address-only mode keeps exactly the A/AAAA/CNAME answers."""
    try:
        full = decode_dns(raw)
    except DecodeError:
        # Address-only mode reads less record data, so it may accept what full mode
        # rejects, but never the other way round.
        fast: DnsMessage | None = None
        with contextlib.suppress(DecodeError):
            fast = decode_dns(raw, addresses_only=True)
        if fast is not None:
            assert all(r.rtype in ADDRESS_TYPES for r in fast.answers)
        return False
    questions, owners, targets = names_the_slow_way(raw)
    assert [q[0] for q in full.questions] == questions
    assert [r.name for r in full.answers] == owners
    assert [r.value for r in full.answers if r.rtype == 5] == targets
    fast = decode_dns(raw, addresses_only=True)
    kept = tuple(r for r in full.answers if r.rtype in ADDRESS_TYPES)
    assert fast == DnsMessage(full.msg_id, full.is_response, full.rcode, full.questions, kept)
    return True


def test_corpus_names_match_uncached_reader(corpus_messages: list[bytes]) -> None:
    decoded = sum(check_against_slow_path(raw) for raw in corpus_messages)
    assert decoded > 100


def test_address_only_skips_other_types() -> None:
    raw = bytes(
        _compress(
            DNS(
                id=3,
                qr=1,
                qd=DNSQR(qname="pool.example.com.", qtype="A"),
                an=[
                    DNSRR(rrname="pool.example.com.", type="TXT", ttl=5, rdata=[b"x"]),
                    DNSRR(rrname="pool.example.com.", type="CNAME", ttl=5, rdata="lb.example."),
                    DNSRR(rrname="lb.example.", type="A", ttl=5, rdata="192.0.2.1"),
                    DNSRR(rrname="lb.example.", type="AAAA", ttl=5, rdata="2001:db8::7"),
                    DNSRR(rrname="lb.example.", type=65, ttl=5, rdata=b"\x00\x01\x00"),
                ],
            )
        )
    )
    assert [r.rtype for r in decode_dns(raw).answers] == [16, 5, 1, 28, 65]
    fast = decode_dns(raw, addresses_only=True)
    assert fast.answers == (
        DnsRecord("pool.example.com", 5, 5, "lb.example"),
        DnsRecord("lb.example", 1, 5, "192.0.2.1"),
        DnsRecord("lb.example", 28, 5, "2001:db8::7"),
    )
    assert check_against_slow_path(raw)


def _pointer_ladder(depth: int, answer_to: int | None) -> tuple[bytes, list[int]]:
    """Questions q0 = "a", q_i = pointer to q_(i-1) (i pointers deep), and optionally one A
    answer whose owner points at question `answer_to`."""
    body = bytearray(b"\x01a\x00\x00\x01\x00\x01")
    starts = [12]
    for _ in range(depth):
        starts.append(12 + len(body))
        body += struct.pack(">HHH", 0xC000 | starts[-2], 1, 1)
    an = 0
    if answer_to is not None:
        an = 1
        body += struct.pack(">HHHIH", 0xC000 | starts[answer_to], 1, 1, 60, 4) + b"\xc0\x00\x02\x01"
    return struct.pack(">HHHHHH", 1, 0x8180, depth + 1, an, 0, 0) + bytes(body), starts


def test_cached_names_keep_the_pointer_limit() -> None:
    ok, starts = _pointer_ladder(MAX_POINTER_JUMPS, MAX_POINTER_JUMPS - 1)
    msg = decode_dns(ok)
    assert {q[0] for q in msg.questions} == {"a"}
    assert msg.answers == (DnsRecord("a", 1, 60, "192.0.2.1"),)
    assert read_name(ok, starts[-1]) == ("a", starts[-1] + 2)
    # One pointer more, through a question or through an answer owner: both refused.
    too_deep, starts = _pointer_ladder(MAX_POINTER_JUMPS + 1, None)
    with pytest.raises(DecodeError):
        read_name(too_deep, starts[-1])
    with pytest.raises(DecodeError):
        decode_dns(too_deep)
    via_owner, _ = _pointer_ladder(MAX_POINTER_JUMPS, MAX_POINTER_JUMPS)
    with pytest.raises(DecodeError):
        decode_dns(via_owner)


def test_cached_names_keep_the_length_limit() -> None:
    label = b"\x3f" + b"x" * 63
    long_name = label * 3 + b"\x3c" + b"y" * 60 + b"\x00"  # 254 octets on the wire
    fits = b"\x00\x01\x00\x01" + b"\xc0\x0c\x00\x01\x00\x01"  # same name again, by pointer
    over = b"\x00\x01\x00\x01" + b"\x01z\xc0\x0c\x00\x01\x00\x01"  # one label more: 256
    head = struct.pack(">HHHHHH", 1, 0x0100, 2, 0, 0, 0)
    msg = decode_dns(head + long_name + fits)
    assert msg.questions[0] == msg.questions[1]
    assert len(msg.questions[0][0]) == 252
    with pytest.raises(DecodeError):
        decode_dns(head + long_name + over)
    with pytest.raises(DecodeError):
        read_name(head + long_name + over, 12 + len(long_name) + 4)


_LABEL_BYTES = st.binary(min_size=1, max_size=12) | st.sampled_from(
    [b"www", b"Pool", b"a.b", b"x\\y", b"\x00\xff", b"CDN", b"mine", b"-"]
)


@st.composite
def dns_responses(draw: st.DrawFn) -> bytes:
    """Responses whose names share suffixes, compressed the way real servers do."""
    pool = draw(st.lists(st.lists(_LABEL_BYTES, min_size=1, max_size=4), min_size=1, max_size=4))
    suffix = draw(st.lists(_LABEL_BYTES, min_size=0, max_size=2))
    names = [b".".join([*n, *suffix]) for n in pool]
    encoded = [b"".join(bytes([len(lab)]) + lab for lab in [*n, *suffix]) + b"\x00" for n in pool]
    qname = encoded[0]
    records = []
    for i in range(draw(st.integers(min_value=0, max_value=6))):
        owner = encoded[draw(st.integers(min_value=0, max_value=len(names) - 1))]
        rtype = draw(st.sampled_from([1, 28, 5, 16, 99]))
        if rtype == 1:
            rdata = bytes([192, 0, 2, i])
        elif rtype == 28:
            rdata = bytes(15) + bytes([i])
        elif rtype == 5:
            rdata = encoded[draw(st.integers(min_value=0, max_value=len(names) - 1))]
        elif rtype == 16:
            text = draw(st.binary(max_size=8))
            rdata = bytes([len(text)]) + text
        else:
            rdata = draw(st.binary(max_size=8))
        records.append((owner, rtype, rdata))
    # Compress by hand: every name already written once becomes a pointer to it.
    out = bytearray(struct.pack(">HHHHHH", 7, 0x8180, 1, len(records), 0, 0))
    seen: dict[bytes, int] = {}

    def put(name: bytes) -> None:
        if name in seen and draw(st.booleans()):
            out.extend(struct.pack(">H", 0xC000 | seen[name]))
            return
        seen.setdefault(name, len(out))
        out.extend(name)

    put(qname)
    out += b"\x00\x01\x00\x01"
    for owner, rtype, rdata in records:
        put(owner)
        if rtype == 5:
            start = len(out)
            out += struct.pack(">HHIH", rtype, 1, 300, 0)
            put(rdata)
            struct.pack_into(">H", out, start + 8, len(out) - start - 10)
        else:
            out += struct.pack(">HHIH", rtype, 1, 300, len(rdata)) + rdata
    return bytes(out)


@PROPERTY
@given(dns_responses())
def test_generated_responses_match_uncached_reader(raw: bytes) -> None:
    assert check_against_slow_path(raw)


@PROPERTY
@given(st.data())
def test_mutated_corpus_messages_agree(corpus_messages: list[bytes], data: st.DataObject) -> None:
    raw = bytearray(data.draw(st.sampled_from(corpus_messages)))
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        if not raw:
            break
        i = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
        raw[i] = data.draw(st.sampled_from([0x00, 0xC0, 0xC0 | (raw[i] & 0x3F), 0x3F, raw[i] ^ 1]))
    check_against_slow_path(bytes(raw))


# --- intel memos ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def intel() -> Intel:
    return load_intel(SIGNATURES)


def test_match_domain_memo_is_transparent_and_bounded(intel: Intel) -> None:
    names = ["pool.supportxmr.com", "POOL.SUPPORTXMR.COM.", "www.example.org", "", "coinhive.com"]
    first = [intel.match_domain(n) for n in names]
    again = [intel.match_domain(n) for n in names]
    plain = [intel._match_domain(n) for n in names]
    assert first == again == plain
    assert first[0] is not None
    assert first[0] == first[1]
    assert first[2] is None
    for i in range(20_000):
        intel.match_domain(f"host{i}.example.net")
    assert len(intel._domain_memo) <= 8192
    assert intel.match_domain("pool.supportxmr.com") == first[0]


BROWSERS = [
    (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 "
        "Safari/537.36"
    ),
    "curl/8.5.0",
    "Wget/1.21.4",
    "python-requests/2.31.0",
    "Mozilla/5.0 (Windows NT 10.0; rv:121.0) Gecko/20100101 Firefox/121.0",
]
MINERS = [
    "XMRig/6.21.0 (Linux x86_64) libuv/1.44.2 gcc/11.4.0",
    "xmrig-proxy/6.20.0",
    "cpuminer-opt/3.24.5",
    "Claymore's Dual Ethereum AMD+NVIDIA GPU Miner v15.0",
    "PhoenixMiner 6.2c",
    "lolMiner 1.82",
    "mozilla/5.0 xmrig/6.2.1",
    "notxmrig/1.0",
    "XMRİG/6.0",
]


def _without_prefilter(intel: Intel) -> Intel:
    plain = Intel.empty()
    plain._agents = intel._agents
    plain._agents_any = None
    plain._agent_lookups = _AGENT_SCANS_BEFORE_ANY  # past the point it would be compiled
    # The case-insensitive forms, without their combined prefilter either.
    plain._nocase = (tuple((re.compile(p.pattern, re.IGNORECASE), n) for p, n in intel._agents),
                     None)
    return plain


def test_match_agent_prefilter_and_memo_agree() -> None:
    intel = load_intel(SIGNATURES)
    plain = _without_prefilter(intel)
    # The one-scan alternation is compiled only once lookups are many.
    assert intel._agents_any is None
    fillers = [f"probe-{i}/1.0" for i in range(_AGENT_SCANS_BEFORE_ANY)]
    found = 0
    for text in BROWSERS + MINERS + fillers + BROWSERS + MINERS:
        want = plain.match_agent(text)
        assert intel.match_agent(text) == want, text
        assert intel.match_agent(text) == want, text  # memoised
        found += want is not None
    assert intel._agents_any is not None
    assert plain._agents_any is None
    assert found >= 12
    assert intel.match_agent("XMRig/6.21.0 (Linux x86_64)") is not None
    assert all(intel.match_agent(b) is None for b in BROWSERS)


@PROPERTY
@given(
    st.lists(
        st.sampled_from(["xmrig", "/", "6.2", " ", "miner", "claymore", "lol", "-", "İ", "a", "v"]),
        max_size=12,
    ).map("".join)
)
def test_match_agent_prefilter_property(text: str) -> None:
    intel = _INTEL_FOR_PROPERTY
    assert intel._match_agent(text) == _without_prefilter(intel)._match_agent(text)


_INTEL_FOR_PROPERTY = load_intel(SIGNATURES)


def test_backreference_patterns_skip_the_prefilter() -> None:
    agents = ((re.compile(r"twice/(\d)\1"), "twice"), (re.compile(r"zz/(\d+)"), "zz"))
    intel = Intel(
        domains={},
        allow_suffix=frozenset(),
        allow_exact=frozenset(),
        pool_ports=frozenset(),
        web_ports=frozenset(),
        agents=agents,
        tls={},
        ip_db=None,
        geo=None,
        counts={},
    )
    for i in range(_AGENT_SCANS_BEFORE_ANY + 1):
        assert intel.match_agent(f"probe-{i}") is None
    assert intel._agents_any is None  # never combined: \1 would point at another branch
    hit = intel.match_agent("Twice/77")
    assert hit is not None
    assert (hit.name, hit.version) == ("twice", "7")
    assert intel.match_agent("twice/78") is None


# --- JA3 / JA4 -----------------------------------------------------------------------------


def reference_fingerprints(
    version: int, ciphers: list[int], exts: list[int], groups: list[int], sigs: list[int],
    alpn: bytes | None,
) -> tuple[str, str]:
    """JA3 string and JA4 raw form, formatted the plain way from the published definitions."""
    c = [x for x in ciphers if not is_grease(x)]
    e = [x for x in exts if not is_grease(x)]
    g = [x for x in groups if not is_grease(x)]
    ja3 = ",".join(
        [str(version), "-".join(map(str, c)), "-".join(map(str, e)), "-".join(map(str, g)), "0"]
    )
    a = "t" + {0x0303: "12", 0x0302: "11", 0x0301: "10"}.get(version, "00")
    a += "d" if 0 in e else "i"
    a += f"{min(99, len(c)):02d}{min(99, len(e)):02d}"
    a += (chr(alpn[0]) + chr(alpn[-1])) if alpn else "00"
    ext_text = ",".join(f"{x:04x}" for x in sorted(e) if x not in (0, 16))
    sig = [x for x in sigs if not is_grease(x)]
    if sig:
        ext_text += "_" + ",".join(f"{x:04x}" for x in sig)
    return ja3, f"{a}_{','.join(f'{x:04x}' for x in sorted(c))}_{ext_text}"


_U16 = st.integers(min_value=0, max_value=0xFFFF) | st.sampled_from([0x0A0A, 0x1A1A, 0xFAFA])


@PROPERTY
@given(
    st.sampled_from([0x0301, 0x0302, 0x0303]),
    st.lists(_U16, max_size=40),
    st.lists(_U16, unique=True, max_size=20),
    st.lists(_U16, max_size=10),
    st.lists(_U16, max_size=10),
    st.sampled_from([None, b"h2", b"http/1.1", b"x"]),
    st.booleans(),
)
def test_fingerprints_match_reference(
    version: int, ciphers: list[int], others: list[int], groups: list[int], sigs: list[int],
    alpn: bytes | None, with_sni: bool,
) -> None:
    exts: list[tuple[int, bytes]] = []
    if with_sni:
        exts.append((0, sni_ext("pool.example.com")))
    if alpn is not None:
        exts.append((16, alpn_ext([alpn])))
    exts.append((10, struct.pack(">H", 2 * len(groups)) + struct.pack(f">{len(groups)}H", *groups)))
    exts.append((11, b"\x01\x00"))
    exts.append((13, struct.pack(">H", 2 * len(sigs)) + struct.pack(f">{len(sigs)}H", *sigs)))
    exts += [(t, b"") for t in others if t not in (0, 10, 11, 13, 16, 43)]
    record = build_client_hello(ciphers=ciphers, extensions=exts, version=version)
    hello = parse_client_hello(record[5:], record_version=0x0301)
    ja3, ja4_r = reference_fingerprints(
        version, ciphers, [t for t, _ in exts], groups, sigs, alpn
    )
    assert hello.ja3 == ja3
    assert hello.ja3_hash == hashlib.md5(ja3.encode(), usedforsecurity=False).hexdigest()
    assert hello.ja4_r == ja4_r
    a, b, c = ja4_r.split("_", 2)
    want_b = hashlib.sha256(b.encode()).hexdigest()[:12] if b else "000000000000"
    want_c = hashlib.sha256(c.encode()).hexdigest()[:12] if c else "000000000000"
    assert hello.ja4 == f"{a}_{want_b}_{want_c}"
    # The stream decoder gives the same hello, whole and byte by byte.
    assert TlsDecoder().feed(record) == [hello]
    dec = TlsDecoder()
    assert [e for i in range(len(record)) for e in dec.feed(record[i : i + 1])] == [hello]


# --- start-up ------------------------------------------------------------------------------


def test_quiet_replay_does_not_import_ui_or_mqtt_libraries() -> None:
    code = (
        "import sys\n"
        "from netdetect.cli import main\n"
        f"rc = main(['replay', '-q', {str(REPO / 'pcaps' / 'demo.pcap')!r}])\n"
        "heavy = ('rich', 'cryptography.x509', 'aiomqtt', 'paho.mqtt.client')\n"
        "print(rc, *[m for m in heavy if m in sys.modules])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO,
        timeout=120,
    ).stdout
    assert out.split() == ["0"], out
