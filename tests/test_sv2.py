"""The core's Stratum V2 recognition (through netdetect._core): Noise handshake sizes, entropy
test, SetupConnection."""

from __future__ import annotations

import json
import random
import struct
from pathlib import Path

import dpkt
import pytest
from coreparse import (
    ELLSWIFT_LEN,
    MIN_ENCRYPTED_FRAME,
    RESPONDER_HANDSHAKE_LEN,
    encrypted_frame_plausible,
    looks_uniform,
    noise_handshake,
    parse_plaintext,
    plaintext_frame_length,
)
from test_tls import frames, ip_packet

from netdetect.errors import DecodeError

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"


def str0_255(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return bytes([len(raw)]) + raw


def setup_connection(
    *,
    protocol: int = 0,
    min_version: int = 2,
    max_version: int = 2,
    flags: int = 0b0110,
    host: str = "pool.example.org",
    port: int = 34254,
    vendor: str | bytes = "Bitmain",
    hardware: str = "S19 Pro",
    firmware: str = "braiins-os-2023-06",
    device: str = "dev-0001",
    extra: bytes = b"",
) -> bytes:
    payload = (
        struct.pack("<BHHI", protocol, min_version, max_version, flags)
        + str0_255(host)
        + struct.pack("<H", port)
        + str0_255(vendor)
        + str0_255(hardware)
        + str0_255(firmware)
        + str0_255(device)
        + extra
    )
    n = len(payload)
    header = struct.pack("<HB", 0, 0x00) + bytes([n & 0xFF, (n >> 8) & 0xFF, n >> 16])
    return header + payload


def test_sizes_follow_the_spec() -> None:
    assert ELLSWIFT_LEN == 64
    assert RESPONDER_HANDSHAKE_LEN == 234
    assert MIN_ENCRYPTED_FRAME == 38
    assert not encrypted_frame_plausible(37)
    assert encrypted_frame_plausible(38)
    # A 100-byte payload: 22-byte encrypted header + 100 + 16.
    assert encrypted_frame_plausible(22 + 100 + 16)


def test_random_64_bytes_pass_the_uniformity_test() -> None:
    rng = random.Random(20240601)
    failures = sum(not looks_uniform(rng.randbytes(64)) for _ in range(20000))
    assert failures == 0


@pytest.mark.parametrize(
    "data",
    [
        b"\x00" * 64,
        b"\xff" * 64,
        bytes(range(64)),
        bytes(range(0, 256, 4)),
        (b"GET / HTTP/1.1\r\nHost: pool.example.org\r\nUser-Agent: cgminer\r\n\r\n" + b" " * 64)[
            :64
        ],
        json.dumps({"id": 1, "method": "mining.subscribe", "params": ["cgminer/4.10.0"]}).encode()[
            :64
        ],
        # A TLS record header and the start of a ClientHello with its random and zero padding.
        (b"\x16\x03\x01\x00\xf4\x01\x00\x00\xf0\x03\x03" + bytes(range(32)) + b"\x00" * 32)[:64],
        b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do.",
    ],
)
def test_structured_64_bytes_fail_the_uniformity_test(data: bytes) -> None:
    assert len(data) == 64
    assert not looks_uniform(data)


def test_uniformity_needs_a_sane_length() -> None:
    rng = random.Random(7)
    assert not looks_uniform(rng.randbytes(16))
    assert not looks_uniform(rng.randbytes(1000))
    assert looks_uniform(rng.randbytes(128))


def test_noise_handshake_shapes() -> None:
    key = random.Random(99).randbytes(64)
    initiator = noise_handshake(key, None)
    assert initiator is not None
    assert (initiator.kind, initiator.length) == ("noise-initiator", 64)
    responder = noise_handshake(key, 234)
    assert responder is not None
    assert (responder.kind, responder.length) == ("noise-responder", 234)
    assert noise_handshake(key, 233) is None
    assert noise_handshake(key, 1460) is None
    assert noise_handshake(key + b"\x00", None) is None
    assert noise_handshake(key[:63], 234) is None
    assert noise_handshake(b"\x00" * 64, 234) is None
    assert noise_handshake(b"A" * 64, None) is None


def first_payloads(path: Path) -> dict[tuple[bytes, int, bytes, int], bytes]:
    """The first TCP payload seen in each direction of a capture (one segment, not a stream:
    the Noise handshake is recognised by segment sizes)."""
    out: dict[tuple[bytes, int, bytes, int], bytes] = {}
    for link, frame in frames(path):
        try:
            ip = ip_packet(link, frame)
        except (dpkt.UnpackError, struct.error):
            continue
        tcp = ip.data if ip is not None else None
        if isinstance(tcp, dpkt.tcp.TCP) and tcp.data:
            key = (bytes(ip.src), tcp.sport, bytes(ip.dst), tcp.dport)  # type: ignore[union-attr]
            out.setdefault(key, bytes(tcp.data))
    return out


@pytest.mark.corpus
def test_no_corpus_flow_opens_like_a_noise_handshake() -> None:
    # Neither corpus holds SV2: no flow may open with a uniform 64-byte payload, with or
    # without the 234-byte answer.
    pcaps = sorted((CORPUS / "benign").glob("*.pcap*")) + sorted(
        (CORPUS / "mining").glob("*.pcap*")
    )
    assert len(pcaps) >= 45, f"corpus missing at {CORPUS}"
    initiators = 0
    flows = 0
    for pcap in pcaps:
        firsts = first_payloads(pcap)
        for (src, sport, dst, dport), data in firsts.items():
            answer = firsts.get((dst, dport, src, sport))
            flows += 1
            if noise_handshake(data, None) is not None:
                initiators += 1
            if answer is not None:
                assert noise_handshake(data, len(answer)) is None
    assert flows > 3000
    assert initiators == 0


def test_setup_connection_facts() -> None:
    frame = setup_connection()
    assert plaintext_frame_length(frame) == len(frame)
    m = parse_plaintext(frame + b"trailing frames are not this one's business")
    assert m is not None
    assert (m.kind, m.length, m.protocol) == ("setup-connection", len(frame), 0)
    assert (m.vendor, m.hardware, m.firmware) == ("Bitmain", "S19 Pro", "braiins-os-2023-06")
    assert (m.endpoint_host, m.endpoint_port) == ("pool.example.org", 34254)


def test_setup_connection_empty_and_max_strings() -> None:
    small = setup_connection(host="", vendor="", hardware="", firmware="", device="")
    m = parse_plaintext(small)
    assert m is not None
    assert m.vendor == ""
    big = setup_connection(
        host="h" * 255, vendor="v" * 255, hardware="w" * 255, firmware="f" * 255, device="d" * 255
    )
    m = parse_plaintext(big)
    assert m is not None
    assert m.endpoint_host == "h" * 255
    assert m.protocol == 0


def test_setup_connection_for_job_declaration_and_template_protocols() -> None:
    for proto in (1, 2):
        m = parse_plaintext(setup_connection(protocol=proto))
        assert m is not None
        assert m.protocol == proto


def test_truncated_at_every_index() -> None:
    frame = setup_connection()
    for cut in range(len(frame)):
        try:
            got = parse_plaintext(frame[:cut])
        except DecodeError:
            assert cut >= 6, cut  # only once the header claims SetupConnection
            continue
        assert got is None, cut
        assert cut < 6, cut


@pytest.mark.parametrize(
    "frame",
    [
        setup_connection(protocol=3),
        setup_connection(min_version=3, max_version=2),
        setup_connection(min_version=0, max_version=0),
        setup_connection(extra=b"\x00"),  # trailing bytes inside the declared length
        setup_connection(vendor="\udcff".encode("utf-8", "surrogateescape")),  # not UTF-8
    ],
)
def test_malformed_setup_connection_raises(frame: bytes) -> None:
    with pytest.raises(DecodeError):
        parse_plaintext(frame)


def test_string_overrunning_the_frame_raises() -> None:
    frame = bytearray(setup_connection())
    frame[6 + 9] = 200  # endpoint_host claims 200 bytes
    with pytest.raises(DecodeError, match="overruns"):
        parse_plaintext(bytes(frame))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\x00",
        b'{"id":1,"method":"mining.subscribe","params":[]}\n',
        b"GET / HTTP/1.1\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,
        b"\x00\x00\x01\x10\x00\x00" + b"\x00" * 16,  # msg_type 1, not SetupConnection
        b"\x00\x80\x00\x10\x00\x00" + b"\x00" * 16,  # channel bit set
        b"\x00\x00\x00\x05\x00\x00" + b"\x00" * 5,  # shorter than any SetupConnection
        b"\x00\x00\x00\xff\xff\xff" + b"\x00" * 64,  # longer than any SetupConnection
    ],
)
def test_clearly_not_sv2_is_none(data: bytes) -> None:
    assert parse_plaintext(data) is None
    assert plaintext_frame_length(data) is None
