"""The core's DHCP decoder (through netdetect._core): scapy-built messages, real captured bytes
checked against tshark, option overload and RFC 3396 concatenation, truncation at every index,
and fuzzing."""

from __future__ import annotations

import subprocess
from typing import Any

import coreparse as dhcp
import pytest
from coreparse import DhcpMessage, decode_dhcp
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.utils import mac2str
from test_tls import CORPUS, udp_payloads

from netdetect.errors import DecodeError

MAC = "02:00:00:00:07:07"
XID = 0x5EED1234
GNUTELLA = CORPUS / "benign" / "ndpi__gnutella.pcap"  # a Windows client's REQUEST and ACK


def message(op: int = 1, options: list[Any] | None = None, **bootp: Any) -> bytes:
    opts: list[Any] = options if options is not None else [("message-type", "discover"), "end"]
    return bytes(BOOTP(op=op, xid=XID, chaddr=mac2str(MAC), **bootp) / DHCP(options=opts))


def discover() -> bytes:
    return message(1, [("message-type", "discover"), ("hostname", b"web-07"),
                       ("param_req_list", [1, 3, 6, 15]), "end"])


def offer() -> bytes:
    return message(2, [("message-type", "offer"), ("server_id", "10.0.0.1"),
                       ("lease_time", 3600), ("subnet_mask", "255.255.255.0"), "end"],
                   yiaddr="10.0.0.7", siaddr="10.0.0.1")


def request() -> bytes:
    fqdn = b"\x05\x00\x00" + b"\x06web-07\x04corp\x07example\x00"  # S and E flags, wire form
    return message(1, [("message-type", "request"), ("requested_addr", "10.0.0.7"),
                       ("server_id", "10.0.0.1"), ("hostname", b"web-07"),
                       ("client_FQDN", fqdn), "end"])


def ack() -> bytes:
    return message(2, [("message-type", "ack"), ("server_id", "10.0.0.1"),
                       ("lease_time", 3600), ("subnet_mask", "255.255.255.0"), "end", "pad",
                       "pad", "pad"], yiaddr="10.0.0.7", siaddr="10.0.0.1")


ALL = [discover, offer, request, ack]


def test_exchange_fields() -> None:
    d = decode_dhcp(discover())
    assert d == DhcpMessage(op=1, xid=XID, msg_type=dhcp.DISCOVER, chaddr=MAC,
                            ciaddr="0.0.0.0", yiaddr="0.0.0.0", hostname="web-07")
    o = decode_dhcp(offer())
    assert (o.op, o.msg_type, o.yiaddr, o.lease_time, o.hostname) == (
        2, dhcp.OFFER, "10.0.0.7", 3600, None)
    r = decode_dhcp(request())
    assert (r.msg_type, r.requested, r.hostname, r.client_fqdn) == (
        dhcp.REQUEST, "10.0.0.7", "web-07", "web-07.corp.example")
    a = decode_dhcp(ack())
    assert (a.msg_type, a.xid, a.chaddr, a.yiaddr, a.lease_time) == (
        dhcp.ACK, XID, MAC, "10.0.0.7", 3600)


def test_plain_fields_and_odd_but_valid_values() -> None:
    # No message type: BOOTP with the DHCP cookie. INFORM carries ciaddr. An infinite lease.
    # A NUL-terminated hostname (older Windows) and an ASCII-form FQDN (E flag clear).
    m = decode_dhcp(message(1, ["end"], ciaddr="10.0.0.9"))
    assert (m.msg_type, m.ciaddr) == (None, "10.0.0.9")
    m = decode_dhcp(message(2, [("message-type", "ack"), ("lease_time", 0xFFFFFFFF), "end"]))
    assert m.lease_time == dhcp.INFINITE_LEASE
    m = decode_dhcp(message(1, [("message-type", "inform"), ("hostname", b"PC-9\x00"),
                                ("client_FQDN", b"\x01\x00\x00PC-9.corp.example."), "end"]))
    assert (m.msg_type, m.hostname, m.client_fqdn) == (dhcp.INFORM, "PC-9", "PC-9.corp.example")
    # Non-ASCII stays visible rather than being dropped or guessed at.
    m = decode_dhcp(message(1, [("hostname", b"caf\xe9"), "end"]))
    assert m.hostname == "caf\\xe9"
    # A partial wire-form name (no root label) and an empty one.
    m = decode_dhcp(message(1, [("client_FQDN", b"\x04\x00\x00\x04host"), "end"]))
    assert m.client_fqdn == "host"
    assert decode_dhcp(message(1, [("client_FQDN", b"\x04\x00\x00"), "end"])).client_fqdn is None
    # Hardware addresses other than Ethernet's six bytes keep their own length.
    assert decode_dhcp(message(1, ["end"], hlen=0)).chaddr == ""


def test_option_overload_and_split_options() -> None:
    # RFC 2131 4.1: options continue in `file` (1), `sname` (2) or both (3), read in the
    # order options, file, sname; RFC 3396: repeated occurrences of one option concatenate.
    file_opts = b"\x0c\x03web" + b"\xff"
    sname_opts = b"\x0c\x03-07" + b"\x00\x00\x33\x04\x00\x00\x0e\x10"  # runs to the field end
    raw = message(2, [("message-type", "ack"), ("dhcp-option-overload", 3), "end"],
                  yiaddr="10.0.0.7", file=file_opts, sname=sname_opts)
    m = decode_dhcp(raw)
    assert (m.hostname, m.lease_time, m.yiaddr) == ("web-07", 3600, "10.0.0.7")
    # Without the overload option those fields are names, not options.
    plain = message(2, [("message-type", "ack"), "end"], file=file_opts, sname=sname_opts)
    assert decode_dhcp(plain).hostname is None
    split = message(1, [("hostname", b"web"), ("hostname", b"-07"), "end"])
    assert decode_dhcp(split).hostname == "web-07"


def end_of_options(raw: bytes) -> int:
    """Offset of the End option in the options area."""
    pos = 240
    while raw[pos] != 255:
        pos += 1 if raw[pos] == 0 else 2 + raw[pos + 1]
    return pos


@pytest.mark.parametrize("build", ALL, ids=lambda f: f.__name__)
def test_truncated_at_every_index(build: Any) -> None:
    raw = build()
    whole = decode_dhcp(raw)
    end = end_of_options(raw)
    for i in range(len(raw)):
        if i <= end:
            with pytest.raises(DecodeError):
                decode_dhcp(raw[:i])
        else:
            # Only padding after End is gone: the same message.
            assert decode_dhcp(raw[:i]) == whole


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b"\x01" * 100, "shorter"),
        (message()[:236] + b"\x63\x82\x53\x64" + message()[240:], "cookie"),
        (message(op=3), "op 3"),
        (message(hlen=17), "hardware address length"),
        (message(1, [("message-type", 0), "end"]), "message type"),
        (message(1, [(53, b"\x01\x01"), "end"]), "message type"),
        (message(1, [(50, b"\x0a\x00\x00"), "end"]), "requested address"),
        (message(1, [(51, b"\x00\x00"), "end"]), "lease time"),
        (message(1, [("dhcp-option-overload", 4), "end"]), "overload"),
        (message(1, [("client_FQDN", b"\x04\x00"), "end"]), "at least 3"),
        (message(1, [("client_FQDN", b"\x04\x00\x00\x40" + b"a" * 64), "end"]), "label"),
        (message(1, [("client_FQDN", b"\x04\x00\x00\x09short"), "end"]), "runs past"),
        (message(1, [("message-type", "discover")]), "End option"),
        (message(1, ["end"])[:240] + b"\x0c", "no length byte"),
        (message(1, ["end"])[:240] + b"\x0c\x05ab", "past its field"),
    ],
)
def test_damage_is_a_decode_error(raw: bytes, match: str) -> None:
    with pytest.raises(DecodeError, match=match):
        decode_dhcp(raw)


def test_overload_inside_sname_is_ignored_and_bad_option_in_file_fails() -> None:
    # Option 52 only counts in the options area; inside `file` it would point at itself.
    ok = message(2, [("dhcp-option-overload", 1), "end"], file=b"\x34\x01\x02\x0c\x01x\xff")
    assert decode_dhcp(ok).hostname == "x"
    bad = message(2, [("dhcp-option-overload", 1), "end"], file=b"\x00" * 126 + b"\x0c\x05")
    with pytest.raises(DecodeError, match="past its field"):
        decode_dhcp(bad)


def tshark_dhcp(path: Any) -> dict[int, list[str]]:
    fields = ["frame.number", "dhcp.option.dhcp", "dhcp.option.hostname", "dhcp.ip.your",
              "dhcp.option.ip_address_lease_time", "dhcp.id", "dhcp.hw.mac_addr"]
    cmd = ["tshark", "-r", str(path), "-Y", "dhcp", "-T", "fields", "-E", "occurrence=f"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=60).stdout
    return {int(row[0]): row[1:] for row in (line.split("\t") for line in out.splitlines())}


def test_real_capture_matches_tshark() -> None:
    payloads = udp_payloads(GNUTELLA, 67)
    expected = tshark_dhcp(GNUTELLA)
    assert set(expected) == {7, 8}
    for number, (mtype, hostname, yiaddr, lease, xid, mac) in expected.items():
        m = decode_dhcp(payloads[number])
        assert m.msg_type == int(mtype)
        assert (m.hostname or "") == hostname
        assert m.yiaddr == yiaddr
        assert (str(m.lease_time) if m.lease_time is not None else "") == lease
        assert m.xid == int(xid, 16)
        assert m.chaddr == mac
    assert decode_dhcp(payloads[7]).hostname == "MSEDGEWIN10"


# --- fuzzing ----------------------------------------------------------------------------------


def decode_or_error(data: bytes) -> None:
    try:
        m = decode_dhcp(data)
    except DecodeError:
        return
    assert isinstance(m, DhcpMessage)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_only_decode_error(data: bytes) -> None:
    decode_or_error(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=360))
def test_random_bodies_behind_a_valid_header(tail: bytes) -> None:
    # Random bytes where the options start: the option walker, not the header check, is hit.
    decode_or_error(discover()[:240] + tail)


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(ALL), st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)),
                                      min_size=1, max_size=8),
       st.integers(0, 3))
def test_mutated_messages_only_decode_error(build: Any, edits: list[tuple[int, int]],
                                            mode: int) -> None:
    raw = bytearray(build())
    for pos, value in edits:
        at = pos % (len(raw) + 1)
        if mode == 0 and at < len(raw):
            raw[at] = value  # overwrite
        elif mode == 1:
            raw[at:at] = bytes([value])  # insert
        elif mode == 2 and at < len(raw):
            del raw[at]  # delete
        elif at >= 240 and at < len(raw):
            raw[at] = value & 0x7F  # small option codes and lengths: deep option walks
    decode_or_error(bytes(raw))
