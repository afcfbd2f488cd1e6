"""TLS record and handshake decoder: ClientHello (SNI, ALPN, JA3, JA4), ServerHello, certificate."""

from __future__ import annotations

import hashlib
import struct
from struct import error as StructError  # noqa: N812
from struct import pack, unpack_from
from typing import TYPE_CHECKING, Final

from netdetect.decoders.events import (
    Certificate,
    ClientHello,
    Event,
    ServerHello,
    TlsRecord,
)
from netdetect.errors import DecodeError

if TYPE_CHECKING:
    from cryptography import x509

__all__ = [
    "MAX_RECORD",
    "TlsDecoder",
    "is_grease",
    "ja4_version_code",
    "parse_certificate",
    "parse_client_hello",
    "parse_server_hello",
]

# RFC 5246 6.2.3: a TLSCiphertext fragment is at most 2^14 + 2048 bytes.
MAX_RECORD = (1 << 14) + 2048

CT_CHANGE_CIPHER_SPEC = 20
CT_ALERT = 21
CT_HANDSHAKE = 22
CT_APPLICATION_DATA = 23
CT_HEARTBEAT = 24

HS_CLIENT_HELLO = 1
HS_SERVER_HELLO = 2
HS_CERTIFICATE = 11

EXT_SERVER_NAME = 0x0000
EXT_SUPPORTED_GROUPS = 0x000A
EXT_EC_POINT_FORMATS = 0x000B
EXT_SIGNATURE_ALGORITHMS = 0x000D
EXT_ALPN = 0x0010
EXT_SUPPORTED_VERSIONS = 0x002B

TLS13 = 0x0304

# RFC 8446 4.1.3: a HelloRetryRequest is a ServerHello whose random is SHA-256("HelloRetryRequest").
_HRR_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")

# Handshake types a plaintext handshake stream may carry (RFC 5246, 6066, 8446, 5077, 8879).
_KNOWN_HANDSHAKE_TYPES = frozenset(
    {0, 1, 2, 3, 4, 5, 6, 8, 11, 12, 13, 14, 15, 16, 20, 21, 22, 23, 24, 25, 254}
)

_JA4_VERSIONS = {
    0x0304: "13",
    0x0303: "12",
    0x0302: "11",
    0x0301: "10",
    0x0300: "s3",
    0x0002: "s2",
    0x0200: "s2",
    0x0100: "s1",
    0xFEFF: "d1",
    0xFEFD: "d2",
    0xFEFC: "d3",
}

# A mid-stream join may land inside a maximal record; two of them bound the resync scan.
_MAX_RESYNC_SCAN = 2 * (MAX_RECORD + 5)

_EMPTY_HASH = "000000000000"

# RFC 8701: the sixteen GREASE values 0x0a0a, 0x1a1a ... 0xfafa.
_GREASE = frozenset(0x0A0A | (i << 12) | (i << 4) for i in range(16))
# JA4 leaves SNI and ALPN out of its sorted extension list (their presence shows in part a).
_JA4_SKIPPED_EXTS = frozenset({EXT_SERVER_NAME, EXT_ALPN})
# ClientHello extensions whose contents feed the event or the fingerprints.
_HELLO_EXTS = frozenset(
    {
        EXT_SERVER_NAME,
        EXT_ALPN,
        EXT_SUPPORTED_GROUPS,
        EXT_EC_POINT_FORMATS,
        EXT_SIGNATURE_ALGORITHMS,
        EXT_SUPPORTED_VERSIONS,
    }
)
_TYPE_LEN: Final = struct.Struct(">HH").unpack_from


def is_grease(value: int) -> bool:
    """RFC 8701 GREASE code point (0x0a0a, 0x1a1a, ... 0xfafa)."""
    return (value & 0x0F0F) == 0x0A0A and (value >> 8) == (value & 0xFF)


def ja4_version_code(version: int) -> str:
    """The two-character JA4 version code ("13", "12", ... "s3", "d1"), "00" when unknown."""
    return _JA4_VERSIONS.get(version, "00")


def _u16_list(data: bytes, start: int, end: int, what: str) -> list[int]:
    if (end - start) % 2:
        raise DecodeError(f"TLS: odd-length {what} list")
    return list(unpack_from(f">{(end - start) // 2}H", data, start))


def _hex_list(values: list[int]) -> str:
    """'0a0a,1301,...': JA4's comma-separated 4-digit hex, formatted in one C call."""
    return pack(f">{len(values)}H", *values).hex(",", 2)


def _vector(data: bytes, pos: int, end: int, width: int, what: str) -> tuple[int, int]:
    """Bounds of a length-prefixed vector at `pos`: returns (start, stop)."""
    if pos + width > end:
        raise DecodeError(f"TLS: truncated {what} length")
    if width == 1:
        n = data[pos]
    elif width == 2:
        n = (data[pos] << 8) | data[pos + 1]
    else:
        n = int.from_bytes(data[pos : pos + width], "big")
    start = pos + width
    stop = start + n
    if stop > end:
        raise DecodeError(f"TLS: {what} overruns its container ({n} bytes)")
    return start, stop


def _host_text(raw: bytes) -> str:
    # Host names are ASCII on the wire (IDNs travel as punycode); anything else is kept
    # visible rather than guessed at.
    return raw.decode("ascii", "backslashreplace").lower().rstrip(".")


def _alpn_chars(first: bytes) -> str:
    """JA4 'a' section ALPN part: first and last character of the first ALPN value."""
    if not first:
        return "00"
    a, z = first[0], first[-1]
    if chr(a).isascii() and chr(a).isalnum() and chr(z).isascii() and chr(z).isalnum():
        return chr(a) + chr(z)
    # FoxIO JA4: a non-alphanumeric first or last byte switches to the hex form.
    hexed = first.hex()
    return hexed[0] + hexed[-1]


def _sha12(text: str) -> str:
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:12]


def parse_client_hello(data: bytes, *, record_version: int = 0, quic: bool = False) -> ClientHello:
    """Parse one complete ClientHello handshake message (4-byte header included).

    `record_version` is the enclosing record's version (0 when there is none, as in QUIC);
    `quic` selects the JA4 "q" prefix.
    """
    data = bytes(data)
    end = len(data)
    if end < 4 or data[0] != HS_CLIENT_HELLO:
        raise DecodeError("TLS: not a ClientHello handshake message")
    body_len = int.from_bytes(data[1:4], "big")
    if 4 + body_len != end:
        raise DecodeError(f"TLS: ClientHello length {body_len} does not match {end - 4} bytes")
    pos = 4
    if pos + 34 > end:
        raise DecodeError("TLS: ClientHello truncated before session id")
    (hs_version,) = unpack_from(">H", data, pos)
    pos += 34  # version + 32-byte random
    _, pos = _vector(data, pos, end, 1, "session id")
    c_start, pos = _vector(data, pos, end, 2, "cipher suites")
    ciphers = _u16_list(data, c_start, pos, "cipher suite")
    _, pos = _vector(data, pos, end, 1, "compression methods")

    ext_types: list[int] = []
    sni: str | None = None
    alpn: list[str] = []
    alpn_first: bytes | None = None
    groups: list[int] = []
    point_formats: list[int] = []
    sig_algs: list[int] = []
    versions: list[int] = []
    if pos < end:
        e_start, e_stop = _vector(data, pos, end, 2, "extensions")
        if e_stop != end:
            raise DecodeError("TLS: bytes after ClientHello extensions")
        pos = e_start
        while pos < e_stop:
            if pos + 4 > e_stop:
                raise DecodeError("TLS: truncated extension header")
            etype, x_len = _TYPE_LEN(data, pos)
            x_start = pos + 4
            pos = x_start + x_len
            if pos > e_stop:
                raise DecodeError(f"TLS: extension {etype} overruns its container ({x_len} bytes)")
            ext_types.append(etype)
            if not x_len or etype not in _HELLO_EXTS:
                continue
            if etype == EXT_SERVER_NAME:
                l_start, l_stop = _vector(data, x_start, pos, 2, "server name list")
                q = l_start
                while q < l_stop:
                    if q + 1 > l_stop:
                        raise DecodeError("TLS: truncated server name entry")
                    name_type = data[q]
                    n_start, q = _vector(data, q + 1, l_stop, 2, "server name")
                    if name_type == 0 and sni is None and n_start < q:
                        sni = _host_text(data[n_start:q])
            elif etype == EXT_ALPN:
                l_start, l_stop = _vector(data, x_start, pos, 2, "ALPN list")
                q = l_start
                while q < l_stop:
                    p_start, q = _vector(data, q, l_stop, 1, "ALPN protocol")
                    proto = data[p_start:q]
                    if alpn_first is None:
                        alpn_first = proto
                    alpn.append(proto.decode("ascii", "backslashreplace"))
            elif etype == EXT_SUPPORTED_GROUPS:
                l_start, l_stop = _vector(data, x_start, pos, 2, "supported groups")
                groups = _u16_list(data, l_start, l_stop, "supported group")
            elif etype == EXT_EC_POINT_FORMATS:
                l_start, l_stop = _vector(data, x_start, pos, 1, "EC point formats")
                point_formats = list(data[l_start:l_stop])
            elif etype == EXT_SIGNATURE_ALGORITHMS:
                l_start, l_stop = _vector(data, x_start, pos, 2, "signature algorithms")
                sig_algs = _u16_list(data, l_start, l_stop, "signature algorithm")
            else:
                l_start, l_stop = _vector(data, x_start, pos, 1, "supported versions")
                versions = _u16_list(data, l_start, l_stop, "supported version")

    grease = _GREASE
    ciphers_ng = [c for c in ciphers if c not in grease]
    exts_ng = [e for e in ext_types if e not in grease]
    groups_ng = [g for g in groups if g not in grease]
    versions_ng = [v for v in versions if v not in grease]
    sig_ng = [s for s in sig_algs if s not in grease]

    ja3 = (
        f"{hs_version},{'-'.join(map(str, ciphers_ng))},{'-'.join(map(str, exts_ng))},"
        f"{'-'.join(map(str, groups_ng))},{'-'.join(map(str, point_formats))}"
    )
    ja3_hash = hashlib.md5(ja3.encode("ascii"), usedforsecurity=False).hexdigest()

    ja4_ver = max(versions_ng) if versions_ng else hs_version
    ja4_a = (
        f"{'q' if quic else 't'}{_JA4_VERSIONS.get(ja4_ver, '00')}"
        f"{'d' if EXT_SERVER_NAME in exts_ng else 'i'}"
        f"{min(99, len(ciphers_ng)):02d}{min(99, len(exts_ng)):02d}"
        f"{_alpn_chars(alpn_first) if alpn_first is not None else '00'}"
    )
    cipher_text = _hex_list(sorted(ciphers_ng))
    ext_text = _hex_list(sorted([e for e in exts_ng if e not in _JA4_SKIPPED_EXTS]))
    if sig_ng:
        ext_text += "_" + _hex_list(sig_ng)
    ja4_b = _sha12(cipher_text) if cipher_text else _EMPTY_HASH
    ja4_c = _sha12(ext_text) if ext_text else _EMPTY_HASH
    return ClientHello(
        sni=sni or None,
        alpn=tuple(alpn),
        record_version=record_version,
        handshake_version=hs_version,
        supported_versions=tuple(versions_ng),
        ja3=ja3,
        ja3_hash=ja3_hash,
        ja4=f"{ja4_a}_{ja4_b}_{ja4_c}",
        ja4_r=f"{ja4_a}_{cipher_text}_{ext_text}",
        cipher_suites=tuple(ciphers),
        extensions=tuple(ext_types),
    )


def parse_server_hello(data: bytes) -> tuple[ServerHello, bool]:
    """Parse one complete ServerHello message; returns (event, is_hello_retry_request)."""
    data = bytes(data)
    end = len(data)
    if end < 4 or data[0] != HS_SERVER_HELLO:
        raise DecodeError("TLS: not a ServerHello handshake message")
    if 4 + int.from_bytes(data[1:4], "big") != end:
        raise DecodeError("TLS: ServerHello length does not match")
    if end < 38:
        raise DecodeError("TLS: ServerHello truncated before session id")
    (version,) = unpack_from(">H", data, 4)
    hrr = data[6:38] == _HRR_RANDOM
    _, pos = _vector(data, 38, end, 1, "session id")
    if pos + 3 > end:
        raise DecodeError("TLS: ServerHello truncated at cipher suite")
    (cipher,) = unpack_from(">H", data, pos)
    pos += 3  # cipher + compression method
    alpn: str | None = None
    if pos < end:
        e_start, e_stop = _vector(data, pos, end, 2, "extensions")
        if e_stop != end:
            raise DecodeError("TLS: bytes after ServerHello extensions")
        pos = e_start
        while pos < e_stop:
            if pos + 4 > e_stop:
                raise DecodeError("TLS: truncated extension header")
            (etype,) = unpack_from(">H", data, pos)
            x_start, pos = _vector(data, pos + 2, e_stop, 2, f"extension {etype}")
            if etype == EXT_SUPPORTED_VERSIONS and pos - x_start == 2:
                (version,) = unpack_from(">H", data, x_start)
            elif etype == EXT_ALPN and x_start < pos:
                l_start, l_stop = _vector(data, x_start, pos, 2, "ALPN list")
                p_start, p_stop = _vector(data, l_start, l_stop, 1, "ALPN protocol")
                alpn = data[p_start:p_stop].decode("ascii", "backslashreplace")
    return ServerHello(version=version, cipher_suite=cipher, alpn=alpn), hrr


def _common_name(name: x509.Name) -> str | None:
    from cryptography.x509.oid import NameOID

    for attr in name.get_attributes_for_oid(NameOID.COMMON_NAME):
        value = attr.value
        return value if isinstance(value, str) else bytes(value).decode("utf-8", "replace")
    return None


def parse_certificate(data: bytes) -> Certificate | None:
    """Names from the first certificate of a TLS <= 1.2 Certificate message; None if unreadable."""
    if len(data) < 10 or data[0] != HS_CERTIFICATE:
        return None
    list_len = int.from_bytes(data[4:7], "big")
    first_len = int.from_bytes(data[7:10], "big")
    if list_len < 3 + first_len or 10 + first_len > len(data):
        return None
    # Imported on first use: most runs never see a plaintext certificate, and the library
    # is a large share of start-up time.
    from cryptography import x509

    try:
        cert = x509.load_der_x509_certificate(bytes(data[10 : 10 + first_len]))
        subject_cn = _common_name(cert.subject)
        issuer_cn = _common_name(cert.issuer)
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            dns_names = san.value.get_values_for_type(x509.DNSName)
            names = tuple(n.lower().rstrip(".") for n in dns_names)
        except x509.ExtensionNotFound:
            names = ()
    # The DER comes off the wire from an unauthenticated peer: any parser failure in the
    # certificate library means "no names", never a crash of the sensor.
    except Exception:  # noqa: BLE001
        return None
    return Certificate(
        subject_cn=subject_cn.lower() if subject_cn else subject_cn,
        san_dns=names,
        issuer_cn=issuer_cn,
    )


class TlsDecoder:
    """Decodes one direction of a TLS connection.

    Handshake messages are reassembled across records and TCP segments until the direction
    turns encrypted (after its ChangeCipherSpec, or after a TLS 1.3 ServerHello); from then
    on each record yields a cheap `TlsRecord` and its body is skipped without buffering.
    """

    __slots__ = (
        "_buf",
        "_cert_done",
        "_encrypted",
        "_error",
        "_hs",
        "_hs_record_version",
        "_hs_skip",
        "_max_handshake",
        "_midstream",
        "_plain_hello_ok",
        "_scanned",
        "_server_version",
        "_skip",
        "_synced",
        "overflow",
    )

    def __init__(self, *, midstream: bool = False, max_handshake: int = 65536) -> None:
        self.overflow = 0
        self._max_handshake = max_handshake
        self._midstream = midstream
        self._synced = not midstream
        self._scanned = 0
        self._buf = bytearray()
        self._skip = 0  # body bytes of an opaque record still to drop
        self._hs = bytearray()
        self._hs_skip = 0  # bytes of an oversized handshake message still to drop
        self._hs_record_version = 0
        # Mid-stream we cannot know whether handshake records are still plaintext.
        self._encrypted = midstream
        # After a CCS, a plaintext hello can still follow (TLS 1.3 middlebox-compatibility
        # CCS before a second ClientHello, or after a HelloRetryRequest); parse tolerantly.
        self._plain_hello_ok = midstream
        self._server_version: int | None = None
        self._cert_done = False
        self._error: DecodeError | None = None

    def feed(self, data: bytes) -> list[Event]:
        if self._error is not None:
            raise DecodeError("TLS: decoder already failed") from self._error
        try:
            return self._feed(data)
        except DecodeError as exc:
            self._error = exc
            raise
        except (StructError, ValueError, IndexError) as exc:
            # Parsing is bounds-checked; this is the net under it, keeping the contract.
            err = DecodeError(f"TLS: malformed data: {exc}")
            self._error = err
            raise err from exc

    def _feed(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        n = len(data)
        pos = 0
        if self._skip:
            pos = min(self._skip, n)
            self._skip -= pos
            if pos == n:
                return events
        if self._buf:
            self._buf += memoryview(data)[pos:]
            b: bytes | bytearray = self._buf
            pos = 0
        else:
            b = data
        if not self._synced:
            if not isinstance(b, bytearray):
                self._buf = bytearray(memoryview(b)[pos:])
                b = self._buf
                pos = 0
            if not self._resync():
                return events
            b = self._buf
        pos = self._records(b, pos, events)
        if b is self._buf:
            del self._buf[:pos]
        else:
            self._buf = bytearray(memoryview(b)[pos:])
        return events

    def _resync(self) -> bool:
        """Find a plausible record boundary in `_buf`; True once synchronised."""
        b = self._buf
        i = 0
        last = len(b) - 5
        while i <= last:
            # Jump to the next 0x03 (the version's major byte): find() runs in C, so a scan
            # through ciphertext costs little per byte.
            j = b.find(3, i + 1, last + 2)
            if j < 0:
                break
            i = j - 1
            length = _plausible(b, i)
            if length >= 0:
                nxt = i + 5 + length
                # A whole hello confirms itself; anything else needs the next header. The
                # decision only looks at bytes up to the next header, so it does not depend
                # on how the stream was cut into segments.
                if (nxt <= len(b) and _whole_hello(b, i, length)) or (
                    nxt + 5 <= len(b) and _plausible(b, nxt) >= 0
                ):
                    self._drop_scanned(i)
                    self._synced = True
                    return True
                if nxt + 5 > len(b):
                    # Cannot confirm yet: keep the candidate and wait for more bytes.
                    self._drop_scanned(i)
                    return False
            i += 1
        self._drop_scanned(max(0, len(b) - 4))
        return False

    def _drop_scanned(self, count: int) -> None:
        del self._buf[:count]
        self._scanned += count
        if self._scanned > _MAX_RESYNC_SCAN:
            raise DecodeError(f"TLS: no record boundary within {self._scanned} bytes")

    def _records(self, b: bytes | bytearray, pos: int, events: list[Event]) -> int:
        """Consume whole records from b[pos:]; returns where the unconsumed tail starts."""
        end = len(b)
        while end - pos >= 5:
            ctype, version, length = unpack_from(">BHH", b, pos)
            if not CT_CHANGE_CIPHER_SPEC <= ctype <= CT_HEARTBEAT:
                raise DecodeError(f"TLS: bad record content type {ctype}")
            if version >> 8 != 3 or version & 0xFF > 4:
                raise DecodeError(f"TLS: bad record version 0x{version:04x}")
            if length > MAX_RECORD:
                raise DecodeError(f"TLS: record length {length} exceeds 2^14+2048")
            if ctype == CT_HANDSHAKE and (not self._encrypted or self._plain_hello_ok):
                if end - pos - 5 < length:
                    break  # need the whole record to parse it
                body = bytes(b[pos + 5 : pos + 5 + length])
                pos += 5 + length
                if not self._encrypted:
                    if not self._hs:
                        self._hs_record_version = version
                    self._handshake(body, events)
                elif not self._tolerant_hello(body, version, events):
                    events.append(TlsRecord(ctype, length))
                continue
            events.append(TlsRecord(ctype, length))
            if ctype == CT_CHANGE_CIPHER_SPEC:
                self._encrypted = True
                self._hs.clear()
            avail = end - pos - 5
            if avail < length:
                self._skip = length - avail
                return end
            pos += 5 + length
        return pos

    def _tolerant_hello(self, body: bytes, version: int, events: list[Event]) -> bool:
        """Parse a record that may be a plaintext hello or may be ciphertext."""
        if len(body) < 4 or body[0] not in (HS_CLIENT_HELLO, HS_SERVER_HELLO):
            return False
        if 4 + int.from_bytes(body[1:4], "big") != len(body):
            return False
        try:
            self._message(body, version, events)
        except DecodeError:
            return False
        return True

    def _handshake(self, body: bytes, events: list[Event]) -> None:
        view = memoryview(body)
        if self._hs_skip:
            k = min(self._hs_skip, len(view))
            self._hs_skip -= k
            view = view[k:]
        self._hs += view
        hs = self._hs
        while len(hs) >= 4 and not self._encrypted:
            htype = hs[0]
            if htype not in _KNOWN_HANDSHAKE_TYPES:
                raise DecodeError(f"TLS: unknown handshake type {htype}")
            hlen = int.from_bytes(hs[1:4], "big")
            if hlen > self._max_handshake:
                self.overflow += 1
                total = 4 + hlen
                if total <= len(hs):
                    del hs[:total]
                else:
                    self._hs_skip = total - len(hs)
                    hs.clear()
                continue
            if len(hs) < 4 + hlen:
                break
            msg = bytes(hs[: 4 + hlen])
            del hs[: 4 + hlen]
            self._message(msg, self._hs_record_version, events)

    def _message(self, msg: bytes, record_version: int, events: list[Event]) -> None:
        htype = msg[0]
        if htype == HS_CLIENT_HELLO:
            hello = parse_client_hello(msg, record_version=record_version)
            events.append(hello)
            if TLS13 in hello.supported_versions:
                self._plain_hello_ok = True
        elif htype == HS_SERVER_HELLO:
            server_hello, hrr = parse_server_hello(msg)
            if hrr:
                self._plain_hello_ok = True
                return
            events.append(server_hello)
            self._server_version = server_hello.version
            if server_hello.version >= TLS13:
                # Everything after a TLS 1.3 ServerHello is encrypted, whatever its type.
                self._encrypted = True
                self._plain_hello_ok = False
                self._hs.clear()
            else:
                self._plain_hello_ok = False
        elif htype == HS_CERTIFICATE and not self._cert_done:
            if self._server_version is not None and self._server_version >= TLS13:
                return
            self._cert_done = True
            cert = parse_certificate(msg)
            if cert is not None:
                events.append(cert)


def _plausible(b: bytes | bytearray, i: int) -> int:
    """Record length if b[i:i+5] looks like a TLS record header (resync rules), else -1."""
    ctype = b[i]
    if not CT_CHANGE_CIPHER_SPEC <= ctype <= CT_APPLICATION_DATA or b[i + 1] != 3 or b[i + 2] > 4:
        return -1
    length = (b[i + 3] << 8) | b[i + 4]
    if length > MAX_RECORD or (length == 0 and ctype != CT_APPLICATION_DATA):
        return -1
    return length


def _whole_hello(b: bytes | bytearray, i: int, length: int) -> bool:
    """b[i:] holds a handshake record carrying exactly one Client- or ServerHello."""
    return (
        b[i] == CT_HANDSHAKE
        and length >= 4 + 38
        and b[i + 5] in (HS_CLIENT_HELLO, HS_SERVER_HELLO)
        and 4 + int.from_bytes(b[i + 6 : i + 9], "big") == length
    )
