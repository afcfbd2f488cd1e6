"""Recognise Stratum V2 from the sizes of its Noise handshake and the layout of plaintext frames.

References are to the Stratum V2 specification (stratumprotocol.org, github.com/stratum-mining/
sv2-spec): "3. Protocol Overview" (framing), "4. Protocol Security" (Noise NX handshake with
ElligatorSwift keys, encrypted transport) and "5. Mining Protocol" / "3.1 ... SetupConnection".
SV2 has no magic bytes: an encrypted session is recognised only by its exact sizes (a 64-byte
first message of uniformly random bytes answered by 234 bytes), a plaintext one by a
well-formed SetupConnection.
"""

from __future__ import annotations

import itertools
import struct
from typing import Final

from netdetect.decoders.events import Sv2Message
from netdetect.errors import DecodeError

__all__ = [
    "ELLSWIFT_LEN",
    "FRAME_HEADER_LEN",
    "MAC_LEN",
    "MIN_ENCRYPTED_FRAME",
    "RESPONDER_HANDSHAKE_LEN",
    "encrypted_frame_plausible",
    "looks_uniform",
    "noise_handshake",
    "parse_plaintext",
    "plaintext_frame_length",
]

# "4.5.1 Handshake Act 1": the initiator sends its ephemeral public key, ElligatorSwift-encoded
# (BIP 324), 64 bytes that are indistinguishable from random.
ELLSWIFT_LEN: Final = 64
MAC_LEN: Final = 16  # ChaChaPoly tag
# "4.5.2 Handshake Act 2": responder ephemeral key (64) + encrypted static key (64 + MAC)
# + encrypted SIGNATURE_NOISE_MESSAGE (version u16, valid_from u32, not_valid_after u32,
# 64-byte Schnorr signature = 74, + MAC) = 64 + 80 + 90.
RESPONDER_HANDSHAKE_LEN: Final = ELLSWIFT_LEN + (64 + MAC_LEN) + (74 + MAC_LEN)
# "3.2 Framing" / "4.6 Encrypted stream framing": 6-byte header encrypted on its own (+ MAC),
# then the payload encrypted (+ MAC); an empty payload still carries its MAC.
FRAME_HEADER_LEN: Final = 6
MIN_ENCRYPTED_FRAME: Final = FRAME_HEADER_LEN + MAC_LEN + MAC_LEN

# "5.3.1 SetupConnection": msg_type 0x00, extension_type 0 (no channel bit).
_SETUP_CONNECTION: Final = 0x00
_SETUP_FIXED: Final = 1 + 2 + 2 + 4  # protocol, min_version, max_version, flags
_SETUP_MIN: Final = _SETUP_FIXED + 1 + 2 + 4  # 5 empty STR0_255 + endpoint_port
_SETUP_MAX: Final = _SETUP_MIN + 5 * 255
_MAX_PROTOCOL: Final = 2  # 0 mining, 1 job declaration, 2 template distribution

_HEADER = struct.Struct("<HBH")  # extension_type, msg_type, low 16 bits of the u24 length
_SETUP_HEAD = struct.Struct("<BHHI")
_U16 = struct.Struct("<H")

# Thresholds for 64 bytes (see looks_uniform): uniformly random input has on average 56.9
# distinct values, about 24 printable ASCII bytes, and no value (nor difference between
# neighbours, which catches counters and tables) more than 3-4 times; falling outside these
# bounds by chance has a probability below 1e-6 each.
_MIN_DISTINCT: Final = 40
_MAX_REPEAT: Final = 8
_MAX_PRINTABLE: Final = 44


def looks_uniform(data: bytes) -> bool:
    """True when 32..128 bytes look like uniformly random bytes (keys, ciphertext).

    Text, JSON, zero padding and TLS records fail: they reuse few byte values, are mostly
    printable, or repeat one value. Random input passes with probability above 1 - 1e-6.
    """
    n = len(data)
    if not 32 <= n <= 128:
        return False
    counts = [0] * 256
    for b in data:
        counts[b] += 1
    scale = n / ELLSWIFT_LEN
    distinct = 256 - counts.count(0)
    printable = sum(counts[0x20:0x7F])
    strides = [0] * 256
    for a, b in itertools.pairwise(data):
        strides[(b - a) & 0xFF] += 1
    return (
        distinct >= _MIN_DISTINCT * scale
        and max(counts) <= _MAX_REPEAT * max(1.0, scale)
        and printable <= _MAX_PRINTABLE * scale
        and max(strides) <= _MAX_REPEAT * max(1.0, scale)
    )


def noise_handshake(client_first: bytes, server_first_len: int | None) -> Sv2Message | None:
    """The first client payload (and, when known, the size of the server's first payload) ->
    a Noise NX handshake of SV2, or None.

    With only the client side: kind "noise-initiator"; with the server's 234-byte answer too:
    kind "noise-responder" (the full act 1 / act 2 shape, a much stronger signal).
    """
    if len(client_first) != ELLSWIFT_LEN or not looks_uniform(client_first):
        return None
    if server_first_len is None:
        return Sv2Message(kind="noise-initiator", length=ELLSWIFT_LEN)
    if server_first_len != RESPONDER_HANDSHAKE_LEN:
        return None
    return Sv2Message(kind="noise-responder", length=RESPONDER_HANDSHAKE_LEN)


def encrypted_frame_plausible(size: int) -> bool:
    """Can a transport payload of `size` bytes be one encrypted SV2 frame (22 + n + 16)?"""
    return size >= MIN_ENCRYPTED_FRAME


def plaintext_frame_length(data: bytes) -> int | None:
    """Total size (header + payload) of the SetupConnection frame `data` starts with, or None
    when its header does not claim one. Callers buffer that many bytes for parse_plaintext."""
    if len(data) < FRAME_HEADER_LEN:
        return None
    ext, msg_type, low = _HEADER.unpack_from(data, 0)
    length = int(low) | data[5] << 16
    if ext != 0 or msg_type != _SETUP_CONNECTION or not _SETUP_MIN <= length <= _SETUP_MAX:
        return None
    return FRAME_HEADER_LEN + length


def parse_plaintext(data: bytes) -> Sv2Message | None:
    """A plaintext SV2 SetupConnection frame -> kind "setup-connection" with its facts.

    None when the header does not claim a SetupConnection (clearly not SV2, or too short to
    say); DecodeError when it claims one but the frame is truncated or malformed.
    """
    total = plaintext_frame_length(data)
    if total is None:
        return None
    if len(data) < total:
        raise DecodeError(f"SetupConnection truncated: {len(data)} of {total} bytes")
    view = memoryview(data)[FRAME_HEADER_LEN:total]
    protocol, min_version, max_version, _flags = _SETUP_HEAD.unpack_from(view, 0)
    if protocol > _MAX_PROTOCOL:
        raise DecodeError(f"SetupConnection protocol {protocol} unknown")
    if min_version > max_version or min_version == 0:
        raise DecodeError(f"SetupConnection versions {min_version}..{max_version}")
    pos = _SETUP_FIXED
    endpoint_host, pos = _str0_255(view, pos)
    if pos + 2 > len(view):
        raise DecodeError("SetupConnection ends inside endpoint_port")
    (endpoint_port,) = _U16.unpack_from(view, pos)
    pos += 2
    vendor, pos = _str0_255(view, pos)
    hardware, pos = _str0_255(view, pos)
    firmware, pos = _str0_255(view, pos)
    _device_id, pos = _str0_255(view, pos)
    if pos != len(view):
        raise DecodeError(f"SetupConnection has {len(view) - pos} trailing bytes")
    return Sv2Message(
        kind="setup-connection",
        length=total,
        protocol=protocol,
        vendor=vendor,
        hardware=hardware,
        firmware=firmware,
        endpoint_host=endpoint_host,
        endpoint_port=endpoint_port,
    )


def _str0_255(view: memoryview, pos: int) -> tuple[str, int]:
    """'3.3 Data Types Mapping' STR0_255: u8 length, then that many UTF-8 bytes."""
    if pos >= len(view):
        raise DecodeError("SetupConnection ends inside a string length")
    n = view[pos]
    end = pos + 1 + n
    if end > len(view):
        raise DecodeError("SetupConnection string overruns the frame")
    try:
        text = bytes(view[pos + 1 : end]).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError("SetupConnection string is not UTF-8") from exc
    return text, end
