"""DHCPv4 message decoder (RFC 2131/2132): the fields that tie an address to a host name.

One UDP payload in, one `DhcpMessage` out. Options may continue into the `file` and `sname`
fields (option 52, overload) and one option may be split over several occurrences, which
are concatenated (RFC 3396). Every read is bounds-checked; only DecodeError escapes.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from typing import Final

from netdetect.errors import DecodeError

__all__ = [
    "ACK",
    "BOOTREPLY",
    "BOOTREQUEST",
    "DECLINE",
    "DISCOVER",
    "INFINITE_LEASE",
    "INFORM",
    "NAK",
    "OFFER",
    "RELEASE",
    "REQUEST",
    "DhcpMessage",
    "decode_dhcp",
]

BOOTREQUEST: Final = 1
BOOTREPLY: Final = 2

# Option 53 values (RFC 2132 9.6; 9..18 are later additions such as LEASEQUERY).
DISCOVER: Final = 1
OFFER: Final = 2
REQUEST: Final = 3
DECLINE: Final = 4
ACK: Final = 5
NAK: Final = 6
RELEASE: Final = 7
INFORM: Final = 8
_MAX_TYPE: Final = 18

INFINITE_LEASE: Final = 0xFFFFFFFF  # option 51: the address never has to be given back

_FIXED: Final = 236  # op .. file: the BOOTP header
_COOKIE: Final = b"\x63\x82\x53\x63"
_OPTIONS: Final = _FIXED + 4
_SNAME: Final = (44, 108)  # byte range of the server name field
_FILE: Final = (108, 236)  # byte range of the boot file field

_PAD: Final = 0
_END: Final = 255
_OPT_HOSTNAME: Final = 12
_OPT_REQUESTED: Final = 50
_OPT_LEASE: Final = 51
_OPT_OVERLOAD: Final = 52
_OPT_TYPE: Final = 53
_OPT_FQDN: Final = 81
_WANTED: Final = frozenset({_OPT_HOSTNAME, _OPT_REQUESTED, _OPT_LEASE, _OPT_TYPE, _OPT_FQDN})

_HEAD: Final = struct.Struct("!BBBBIHH4s4s4s4s16s").unpack_from
_FQDN_E: Final = 0x04  # RFC 4702: the name is in DNS wire format (else deprecated ASCII)


@dataclass(frozen=True, slots=True)
class DhcpMessage:
    """The parts of one DHCP/BOOTP message that identify a client and its address."""

    op: int  # 1 BOOTREQUEST (client or relay to server), 2 BOOTREPLY
    xid: int  # transaction id: ties a server's ACK to the client's REQUEST
    msg_type: int | None  # option 53 (DISCOVER=1 .. ), None for plain BOOTP
    chaddr: str  # client hardware address, "aa:bb:cc:dd:ee:ff" (hlen bytes of chaddr)
    ciaddr: str  # address the client already has (RENEW, INFORM), "0.0.0.0" otherwise
    yiaddr: str  # address the server gives the client (OFFER, ACK)
    requested: str | None = None  # option 50
    hostname: str | None = None  # option 12, as sent (non-ASCII bytes backslash-escaped)
    client_fqdn: str | None = None  # option 81, the domain name part
    lease_time: int | None = None  # option 51, seconds; INFINITE_LEASE for "forever"


def _text(raw: bytes) -> str:
    # Some clients NUL-terminate names; the NULs are C-string framing, not part of the name.
    return raw.rstrip(b"\x00").decode("ascii", "backslashreplace")


def _scan(data: bytes, start: int, end: int, found: dict[int, bytearray], *,
          main: bool) -> int:
    """Collect the wanted options of data[start:end]; returns the overload value (0 if none).

    The main options area must close with End: without it the message was cut short. The
    fixed-size sname/file fields may simply run to their end.
    """
    overload = 0
    pos = start
    while pos < end:
        code = data[pos]
        if code == _PAD:
            pos += 1
            continue
        if code == _END:
            return overload
        if pos + 1 >= end:
            raise DecodeError(f"DHCP: option {code} at offset {pos} has no length byte")
        length = data[pos + 1]
        value_end = pos + 2 + length
        if value_end > end:
            raise DecodeError(
                f"DHCP: option {code} at offset {pos} runs {value_end - end} bytes past its field"
            )
        if code == _OPT_OVERLOAD:
            # Only meaningful in the options area (RFC 2131 4.1); inside sname/file it would
            # make the fields refer to themselves.
            if main:
                if length != 1 or data[pos + 2] not in (1, 2, 3):
                    raise DecodeError("DHCP: option overload must be one byte of 1, 2 or 3")
                overload = data[pos + 2]
        elif code in _WANTED:
            found.setdefault(code, bytearray()).extend(data[pos + 2 : value_end])
        pos = value_end
    if main:
        raise DecodeError("DHCP: options end without the End option (message cut short?)")
    return overload


def _fqdn_name(value: bytes) -> str | None:
    """The domain name of option 81: flags, two obsolete RCODE bytes, then the name."""
    if len(value) < 3:
        raise DecodeError(f"DHCP: client FQDN option of {len(value)} bytes, at least 3 needed")
    flags = value[0]
    raw = value[3:]
    if not raw:
        return None
    if not flags & _FQDN_E:
        text = _text(raw).rstrip(".")
        return text or None
    labels: list[str] = []
    pos = 0
    n = len(raw)
    while pos < n:
        length = raw[pos]
        if length == 0:
            break
        if length > 63:
            raise DecodeError(f"DHCP: client FQDN label of {length} bytes (compression or junk)")
        if pos + 1 + length > n:
            raise DecodeError("DHCP: client FQDN label runs past the option")
        labels.append(_text(raw[pos + 1 : pos + 1 + length]))
        pos += 1 + length
    # Without the root label the name is partial (RFC 4702 2.2): still the client's name.
    return ".".join(labels) or None


def decode_dhcp(data: bytes) -> DhcpMessage:
    """Decode one DHCPv4/BOOTP message (a whole UDP payload); raise DecodeError if it is not."""
    if len(data) < _OPTIONS:
        raise DecodeError(f"DHCP: {len(data)} bytes, shorter than the {_OPTIONS} byte header")
    if data[_FIXED:_OPTIONS] != _COOKIE:
        raise DecodeError("DHCP: magic cookie missing (plain BOOTP or not DHCP at all)")
    op, _htype, hlen, _hops, xid, _secs, _flags, ciaddr, yiaddr, _siaddr, _giaddr, chaddr = (
        _HEAD(data, 0)
    )
    if op not in (BOOTREQUEST, BOOTREPLY):
        raise DecodeError(f"DHCP: op {op} is neither BOOTREQUEST nor BOOTREPLY")
    if hlen > 16:
        raise DecodeError(f"DHCP: hardware address length {hlen} exceeds the 16 byte field")
    found: dict[int, bytearray] = {}
    overload = _scan(data, _OPTIONS, len(data), found, main=True)
    # RFC 2131 4.1: the options area first, then `file`, then `sname`.
    if overload & 1:
        _scan(data, *_FILE, found, main=False)
    if overload & 2:
        _scan(data, *_SNAME, found, main=False)

    msg_type: int | None = None
    raw = found.get(_OPT_TYPE)
    if raw is not None:
        if len(raw) != 1 or not 1 <= raw[0] <= _MAX_TYPE:
            raise DecodeError(f"DHCP: bad message type option {bytes(raw)!r}")
        msg_type = raw[0]
    requested: str | None = None
    raw = found.get(_OPT_REQUESTED)
    if raw is not None:
        if len(raw) != 4:
            raise DecodeError(f"DHCP: requested address option of {len(raw)} bytes, not 4")
        requested = socket.inet_ntoa(raw)
    lease: int | None = None
    raw = found.get(_OPT_LEASE)
    if raw is not None:
        if len(raw) != 4:
            raise DecodeError(f"DHCP: lease time option of {len(raw)} bytes, not 4")
        lease = int.from_bytes(raw, "big")
    raw = found.get(_OPT_HOSTNAME)
    hostname = (_text(bytes(raw)) or None) if raw is not None else None
    raw = found.get(_OPT_FQDN)
    fqdn = _fqdn_name(bytes(raw)) if raw is not None else None
    return DhcpMessage(
        op=op,
        xid=xid,
        msg_type=msg_type,
        chaddr=chaddr[:hlen].hex(":"),
        ciaddr=socket.inet_ntoa(ciaddr),
        yiaddr=socket.inet_ntoa(yiaddr),
        requested=requested,
        hostname=hostname,
        client_fqdn=fqdn,
        lease_time=lease,
    )
