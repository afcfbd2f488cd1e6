//! DHCPv4 messages (BOOTP + options), for host identity: which address a named host got.
//!
//! Behaviour of the retired Python decoder, whose tests now run against this one: option overload,
//! concatenated long options (RFC 3396), host name (12) and client FQDN (81), lease time,
//! server identifier; every length checked.

use crate::error::DecodeError;
use std::fmt::Write as _;
use std::net::Ipv4Addr;

pub const BOOTREQUEST: u8 = 1;
pub const BOOTREPLY: u8 = 2;
pub const DISCOVER: u8 = 1;
pub const OFFER: u8 = 2;
pub const REQUEST: u8 = 3;
pub const DECLINE: u8 = 4;
pub const ACK: u8 = 5;
pub const NAK: u8 = 6;
pub const RELEASE: u8 = 7;
pub const INFORM: u8 = 8;
pub const INFINITE_LEASE: u32 = 0xFFFF_FFFF;
/// Option 53 values go up to 18 (RFC 2132 9.6 and later additions such as LEASEQUERY).
const MAX_TYPE: u8 = 18;

const FIXED: usize = 236; // op .. file: the BOOTP header
const COOKIE: [u8; 4] = [0x63, 0x82, 0x53, 0x63];
const OPTIONS: usize = FIXED + 4;
const SNAME: (usize, usize) = (44, 108);
const FILE: (usize, usize) = (108, 236);

const PAD: u8 = 0;
const END: u8 = 255;
const OPT_HOSTNAME: u8 = 12;
const OPT_REQUESTED: u8 = 50;
const OPT_LEASE: u8 = 51;
const OPT_OVERLOAD: u8 = 52;
const OPT_TYPE: u8 = 53;
const OPT_SERVER_ID: u8 = 54;
const OPT_FQDN: u8 = 81;
const WANTED: [u8; 6] = [
    OPT_HOSTNAME,
    OPT_REQUESTED,
    OPT_LEASE,
    OPT_TYPE,
    OPT_SERVER_ID,
    OPT_FQDN,
];
/// RFC 4702: the FQDN is in DNS wire format (else deprecated ASCII).
const FQDN_E: u8 = 0x04;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpMessage {
    pub op: u8,
    /// Option 53; 0 when absent (plain BOOTP).
    pub msg_type: u8,
    pub xid: u32,
    /// Client hardware address as lower-case hex with colons (as dhcp.py renders it).
    pub chaddr: String,
    pub ciaddr: Ipv4Addr,
    pub yiaddr: Ipv4Addr,
    /// Option 50.
    pub requested: Option<Ipv4Addr>,
    pub hostname: Option<String>,
    pub client_fqdn: Option<String>,
    pub lease_time: Option<u32>,
    /// Option 54.
    pub server_id: Option<Ipv4Addr>,
}

fn err(msg: impl Into<String>) -> DecodeError {
    DecodeError::new(msg)
}

/// Wanted options, each occurrence appended to the previous (RFC 3396). The total is bounded
/// by the message length, since every byte is copied at most once.
#[derive(Default)]
struct Found {
    values: [Option<Vec<u8>>; WANTED.len()],
}

impl Found {
    fn get(&self, code: u8) -> Option<&[u8]> {
        let i = WANTED.iter().position(|&c| c == code)?;
        self.values[i].as_deref()
    }
}

/// Text as dhcp.py renders it: trailing NULs (C-string framing) dropped, ASCII as is, other
/// bytes as Python's backslashreplace (`\xNN`).
fn text(raw: &[u8]) -> String {
    let end = raw.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let mut out = String::with_capacity(end);
    for &b in &raw[..end] {
        if b < 0x80 {
            out.push(b as char);
        } else {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// Collect the wanted options of data[start..end]; returns the overload value (0 if none).
///
/// The main options area must close with End: without it the message was cut short. The
/// fixed-size sname/file fields may simply run to their end.
fn scan(
    data: &[u8],
    start: usize,
    end: usize,
    found: &mut Found,
    main: bool,
) -> Result<u8, DecodeError> {
    let mut overload = 0;
    let mut pos = start;
    while pos < end {
        let code = data[pos];
        if code == PAD {
            pos += 1;
            continue;
        }
        if code == END {
            return Ok(overload);
        }
        if pos + 1 >= end {
            return Err(err(format!(
                "DHCP: option {code} at offset {pos} has no length byte"
            )));
        }
        let length = usize::from(data[pos + 1]);
        let value_end = pos + 2 + length;
        if value_end > end {
            return Err(err(format!(
                "DHCP: option {code} at offset {pos} runs {} bytes past its field",
                value_end - end
            )));
        }
        if code == OPT_OVERLOAD {
            // Only meaningful in the options area (RFC 2131 4.1); inside sname/file it would
            // make the fields refer to themselves.
            if main {
                if length != 1 || !(1..=3).contains(&data[pos + 2]) {
                    return Err(err("DHCP: option overload must be one byte of 1, 2 or 3"));
                }
                overload = data[pos + 2];
            }
        } else if let Some(i) = WANTED.iter().position(|&c| c == code) {
            found.values[i]
                .get_or_insert_with(Vec::new)
                .extend_from_slice(&data[pos + 2..value_end]);
        }
        pos = value_end;
    }
    if main {
        return Err(err(
            "DHCP: options end without the End option (message cut short?)",
        ));
    }
    Ok(overload)
}

/// The domain name of option 81: flags, two obsolete RCODE bytes, then the name.
fn fqdn_name(value: &[u8]) -> Result<Option<String>, DecodeError> {
    if value.len() < 3 {
        return Err(err(format!(
            "DHCP: client FQDN option of {} bytes, at least 3 needed",
            value.len()
        )));
    }
    let flags = value[0];
    let raw = &value[3..];
    if raw.is_empty() {
        return Ok(None);
    }
    if flags & FQDN_E == 0 {
        let t = text(raw);
        let t = t.trim_end_matches('.');
        return Ok((!t.is_empty()).then(|| t.to_owned()));
    }
    let mut labels: Vec<String> = Vec::new();
    let mut pos = 0;
    while pos < raw.len() {
        let length = usize::from(raw[pos]);
        if length == 0 {
            break;
        }
        if length > 63 {
            return Err(err(format!(
                "DHCP: client FQDN label of {length} bytes (compression or junk)"
            )));
        }
        if pos + 1 + length > raw.len() {
            return Err(err("DHCP: client FQDN label runs past the option"));
        }
        labels.push(text(&raw[pos + 1..pos + 1 + length]));
        pos += 1 + length;
    }
    // Without the root label the name is partial (RFC 4702 2.2): still the client's name.
    let name = labels.join(".");
    Ok((!name.is_empty()).then_some(name))
}

fn ipv4(raw: &[u8], what: &str) -> Result<Ipv4Addr, DecodeError> {
    let octets: [u8; 4] = raw
        .try_into()
        .map_err(|_| err(format!("DHCP: {what} option of {} bytes, not 4", raw.len())))?;
    Ok(Ipv4Addr::from(octets))
}

fn addr_at(data: &[u8], pos: usize) -> Ipv4Addr {
    Ipv4Addr::new(data[pos], data[pos + 1], data[pos + 2], data[pos + 3])
}

/// Decode one DHCPv4/BOOTP message (a whole UDP payload).
pub fn decode_dhcp(data: &[u8]) -> Result<DhcpMessage, DecodeError> {
    if data.len() < OPTIONS {
        return Err(err(format!(
            "DHCP: {} bytes, shorter than the {OPTIONS} byte header",
            data.len()
        )));
    }
    if data[FIXED..OPTIONS] != COOKIE {
        return Err(err(
            "DHCP: magic cookie missing (plain BOOTP or not DHCP at all)",
        ));
    }
    let op = data[0];
    if op != BOOTREQUEST && op != BOOTREPLY {
        return Err(err(format!(
            "DHCP: op {op} is neither BOOTREQUEST nor BOOTREPLY"
        )));
    }
    let hlen = usize::from(data[2]);
    if hlen > 16 {
        return Err(err(format!(
            "DHCP: hardware address length {hlen} exceeds the 16 byte field"
        )));
    }
    let xid = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);

    let mut found = Found::default();
    let overload = scan(data, OPTIONS, data.len(), &mut found, true)?;
    // RFC 2131 4.1: the options area first, then `file`, then `sname`.
    if overload & 1 != 0 {
        scan(data, FILE.0, FILE.1, &mut found, false)?;
    }
    if overload & 2 != 0 {
        scan(data, SNAME.0, SNAME.1, &mut found, false)?;
    }

    let mut msg_type = 0;
    if let Some(raw) = found.get(OPT_TYPE) {
        if raw.len() != 1 || !(1..=MAX_TYPE).contains(&raw[0]) {
            return Err(err(format!("DHCP: bad message type option {raw:02x?}")));
        }
        msg_type = raw[0];
    }
    let requested = found
        .get(OPT_REQUESTED)
        .map(|raw| ipv4(raw, "requested address"))
        .transpose()?;
    // dhcp.py does not read option 54, so a malformed one must not cost the message (and
    // with it the host name): it is dropped instead of failing the decode.
    let server_id = found
        .get(OPT_SERVER_ID)
        .and_then(|raw| <[u8; 4]>::try_from(raw).ok())
        .map(Ipv4Addr::from);
    let lease_time = match found.get(OPT_LEASE) {
        None => None,
        Some(raw) => Some(u32::from_be_bytes(raw.try_into().map_err(|_| {
            err(format!(
                "DHCP: lease time option of {} bytes, not 4",
                raw.len()
            ))
        })?)),
    };
    let hostname = found.get(OPT_HOSTNAME).map(text).filter(|h| !h.is_empty());
    let client_fqdn = match found.get(OPT_FQDN) {
        None => None,
        Some(raw) => fqdn_name(raw)?,
    };

    let mut chaddr = String::with_capacity(hlen * 3);
    for (i, b) in data[28..28 + hlen].iter().enumerate() {
        if i > 0 {
            chaddr.push(':');
        }
        let _ = write!(chaddr, "{b:02x}");
    }
    Ok(DhcpMessage {
        op,
        msg_type,
        xid,
        chaddr,
        ciaddr: addr_at(data, 12),
        yiaddr: addr_at(data, 16),
        requested,
        hostname,
        client_fqdn,
        lease_time,
        server_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::tests::hex;
    use proptest::prelude::*;

    const MAC: [u8; 6] = [0x02, 0, 0, 0, 0x07, 0x07];
    const XID: u32 = 0x5EED_1234;

    fn opt(code: u8, value: &[u8]) -> Vec<u8> {
        let mut o = vec![code, value.len() as u8];
        o.extend_from_slice(value);
        o
    }

    /// The BOOTP header scapy builds (htype 1, hlen 6, the test MAC) plus options.
    fn message(op: u8, opts: &[Vec<u8>]) -> Vec<u8> {
        let mut raw = vec![0u8; OPTIONS];
        raw[0] = op;
        raw[1] = 1;
        raw[2] = 6;
        raw[4..8].copy_from_slice(&XID.to_be_bytes());
        raw[28..34].copy_from_slice(&MAC);
        raw[FIXED..OPTIONS].copy_from_slice(&COOKIE);
        for o in opts {
            raw.extend_from_slice(o);
        }
        raw
    }

    fn end() -> Vec<u8> {
        vec![END]
    }

    fn mtype(t: u8) -> Vec<u8> {
        opt(OPT_TYPE, &[t])
    }

    fn set(raw: &mut [u8], at: usize, value: &[u8]) {
        raw[at..at + value.len()].copy_from_slice(value);
    }

    const YIADDR: usize = 16;
    const SIADDR: usize = 20;

    fn discover() -> Vec<u8> {
        message(
            1,
            &[
                mtype(DISCOVER),
                opt(12, b"web-07"),
                opt(55, &[1, 3, 6, 15]),
                end(),
            ],
        )
    }

    fn offer() -> Vec<u8> {
        let mut raw = message(
            2,
            &[
                mtype(OFFER),
                opt(54, &[10, 0, 0, 1]),
                opt(51, &3600u32.to_be_bytes()),
                opt(1, &[255, 255, 255, 0]),
                end(),
            ],
        );
        set(&mut raw, YIADDR, &[10, 0, 0, 7]);
        set(&mut raw, SIADDR, &[10, 0, 0, 1]);
        raw
    }

    fn request() -> Vec<u8> {
        let fqdn = b"\x05\x00\x00\x06web-07\x04corp\x07example\x00"; // S and E flags, wire form
        message(
            1,
            &[
                mtype(REQUEST),
                opt(50, &[10, 0, 0, 7]),
                opt(54, &[10, 0, 0, 1]),
                opt(12, b"web-07"),
                opt(81, fqdn),
                end(),
            ],
        )
    }

    fn ack() -> Vec<u8> {
        let mut raw = message(
            2,
            &[
                mtype(ACK),
                opt(54, &[10, 0, 0, 1]),
                opt(51, &3600u32.to_be_bytes()),
                opt(1, &[255, 255, 255, 0]),
                end(),
                vec![0, 0, 0],
            ],
        );
        set(&mut raw, YIADDR, &[10, 0, 0, 7]);
        set(&mut raw, SIADDR, &[10, 0, 0, 1]);
        raw
    }

    fn all() -> [Vec<u8>; 4] {
        [discover(), offer(), request(), ack()]
    }

    /// The four messages of tests/test_dhcp.py as scapy wrote them.
    const SCAPY_TAILS: [&str; 4] = [
        "638253633501010c067765622d303737040103060fff",
        "6382536335010236040a000001330400000e100104ffffff00ff",
        "6382536335010332040a00000736040a0000010c067765622d30375118050000067765622d303704636f7270076578616d706c6500ff",
        "6382536335010536040a000001330400000e100104ffffff00ff000000",
    ];
    const SCAPY_HEADS: [&str; 2] = [
        "010106005eed1234000000000000000000000000000000000000000002000000070700",
        "020106005eed123400000000000000000a0000070a000001000000000200000007070000",
    ];

    #[test]
    fn builder_matches_scapy_bytes() {
        for (i, raw) in all().iter().enumerate() {
            assert!(raw.ends_with(&hex(SCAPY_TAILS[i])), "{i}");
            assert!(raw.starts_with(&hex(SCAPY_HEADS[i % 2])), "{i}");
            assert!(raw[34..FIXED].iter().all(|&b| b == 0));
        }
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn exchange_fields() {
        let d = decode_dhcp(&discover()).unwrap();
        assert_eq!(
            d,
            DhcpMessage {
                op: 1,
                msg_type: DISCOVER,
                xid: XID,
                chaddr: "02:00:00:00:07:07".into(),
                ciaddr: Ipv4Addr::UNSPECIFIED,
                yiaddr: Ipv4Addr::UNSPECIFIED,
                requested: None,
                hostname: Some("web-07".into()),
                client_fqdn: None,
                lease_time: None,
                server_id: None,
            }
        );
        let o = decode_dhcp(&offer()).unwrap();
        assert_eq!(
            (
                o.op,
                o.msg_type,
                o.yiaddr,
                o.lease_time,
                o.hostname,
                o.server_id
            ),
            (
                2,
                OFFER,
                ip("10.0.0.7"),
                Some(3600),
                None,
                Some(ip("10.0.0.1"))
            )
        );
        let r = decode_dhcp(&request()).unwrap();
        assert_eq!(r.msg_type, REQUEST);
        assert_eq!(r.requested, Some(ip("10.0.0.7")));
        assert_eq!(r.hostname.as_deref(), Some("web-07"));
        assert_eq!(r.client_fqdn.as_deref(), Some("web-07.corp.example"));
        let a = decode_dhcp(&ack()).unwrap();
        assert_eq!(
            (a.msg_type, a.xid, a.chaddr.as_str(), a.yiaddr, a.lease_time),
            (ACK, XID, "02:00:00:00:07:07", ip("10.0.0.7"), Some(3600))
        );
    }

    #[test]
    fn plain_fields_and_odd_but_valid_values() {
        let mut raw = message(1, &[end()]);
        set(&mut raw, 12, &[10, 0, 0, 9]);
        let m = decode_dhcp(&raw).unwrap();
        assert_eq!((m.msg_type, m.ciaddr), (0, ip("10.0.0.9")));
        let m = decode_dhcp(&message(2, &[mtype(ACK), opt(51, &[0xff; 4]), end()])).unwrap();
        assert_eq!(m.lease_time, Some(INFINITE_LEASE));
        let m = decode_dhcp(&message(
            1,
            &[
                mtype(INFORM),
                opt(12, b"PC-9\x00"),
                opt(81, b"\x01\x00\x00PC-9.corp.example."),
                end(),
            ],
        ))
        .unwrap();
        assert_eq!(m.msg_type, INFORM);
        assert_eq!(m.hostname.as_deref(), Some("PC-9"));
        assert_eq!(m.client_fqdn.as_deref(), Some("PC-9.corp.example"));
        // Non-ASCII stays visible rather than being dropped or guessed at.
        let m = decode_dhcp(&message(1, &[opt(12, b"caf\xe9"), end()])).unwrap();
        assert_eq!(m.hostname.as_deref(), Some("caf\\xe9"));
        // A partial wire-form name (no root label) and an empty one.
        let m = decode_dhcp(&message(1, &[opt(81, b"\x04\x00\x00\x04host"), end()])).unwrap();
        assert_eq!(m.client_fqdn.as_deref(), Some("host"));
        let m = decode_dhcp(&message(1, &[opt(81, b"\x04\x00\x00"), end()])).unwrap();
        assert_eq!(m.client_fqdn, None);
        // Hardware addresses other than Ethernet's six bytes keep their own length.
        let mut raw = message(1, &[end()]);
        raw[2] = 0;
        assert_eq!(decode_dhcp(&raw).unwrap().chaddr, "");
        raw[2] = 16;
        assert_eq!(decode_dhcp(&raw).unwrap().chaddr.len(), 16 * 3 - 1);
        // A malformed server identifier is dropped, not fatal (dhcp.py ignores option 54).
        let m = decode_dhcp(&message(
            2,
            &[opt(54, &[10, 0, 0, 1, 2]), opt(12, b"h"), end()],
        ))
        .unwrap();
        assert_eq!((m.server_id, m.hostname.as_deref()), (None, Some("h")));
        // An empty host name is no host name.
        let m = decode_dhcp(&message(1, &[opt(12, b"\x00\x00"), end()])).unwrap();
        assert_eq!(m.hostname, None);
    }

    #[test]
    fn option_overload_and_split_options() {
        let file_opts = b"\x0c\x03web\xff";
        let sname_opts = b"\x0c\x03-07\x00\x00\x33\x04\x00\x00\x0e\x10"; // runs to the field end
        let mut raw = message(2, &[mtype(ACK), opt(OPT_OVERLOAD, &[3]), end()]);
        set(&mut raw, YIADDR, &[10, 0, 0, 7]);
        set(&mut raw, FILE.0, file_opts);
        set(&mut raw, SNAME.0, sname_opts);
        let m = decode_dhcp(&raw).unwrap();
        assert_eq!(
            (m.hostname.as_deref(), m.lease_time, m.yiaddr),
            (Some("web-07"), Some(3600), ip("10.0.0.7"))
        );
        // Without the overload option those fields are names, not options.
        let mut plain = message(2, &[mtype(ACK), end()]);
        set(&mut plain, FILE.0, file_opts);
        set(&mut plain, SNAME.0, sname_opts);
        assert_eq!(decode_dhcp(&plain).unwrap().hostname, None);
        let split = message(1, &[opt(12, b"web"), opt(12, b"-07"), end()]);
        assert_eq!(
            decode_dhcp(&split).unwrap().hostname.as_deref(),
            Some("web-07")
        );
    }

    fn end_of_options(raw: &[u8]) -> usize {
        let mut pos = OPTIONS;
        while raw[pos] != END {
            pos += if raw[pos] == 0 {
                1
            } else {
                2 + usize::from(raw[pos + 1])
            };
        }
        pos
    }

    #[test]
    fn truncated_at_every_index() {
        for raw in all() {
            let whole = decode_dhcp(&raw).unwrap();
            let end = end_of_options(&raw);
            for i in 0..raw.len() {
                if i <= end {
                    assert!(decode_dhcp(&raw[..i]).is_err(), "{i}");
                } else {
                    // Only padding after End is gone: the same message.
                    assert_eq!(decode_dhcp(&raw[..i]).unwrap(), whole);
                }
            }
        }
    }

    #[test]
    fn damage_is_a_decode_error() {
        let mut bad_cookie = message(1, &[mtype(DISCOVER), end()]);
        bad_cookie[239] = 0x64;
        let mut bad_op = message(1, &[mtype(DISCOVER), end()]);
        bad_op[0] = 3;
        let mut bad_hlen = message(1, &[mtype(DISCOVER), end()]);
        bad_hlen[2] = 17;
        let head = message(1, &[end()])[..OPTIONS].to_vec();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![1; 100], "shorter"),
            (bad_cookie, "cookie"),
            (bad_op, "op 3"),
            (bad_hlen, "hardware address length"),
            (message(1, &[mtype(0), end()]), "message type"),
            (message(1, &[opt(53, &[1, 1]), end()]), "message type"),
            (
                message(1, &[opt(50, &[10, 0, 0]), end()]),
                "requested address",
            ),
            (message(1, &[opt(51, &[0, 0]), end()]), "lease time"),
            (message(1, &[opt(OPT_OVERLOAD, &[4]), end()]), "overload"),
            (message(1, &[opt(81, b"\x04\x00"), end()]), "at least 3"),
            (
                message(
                    1,
                    &[
                        opt(81, &[b"\x04\x00\x00\x40".as_slice(), &[b'a'; 64]].concat()),
                        end(),
                    ],
                ),
                "label",
            ),
            (
                message(1, &[opt(81, b"\x04\x00\x00\x09short"), end()]),
                "runs past",
            ),
            (message(1, &[mtype(DISCOVER)]), "End option"),
            ([head.as_slice(), b"\x0c"].concat(), "no length byte"),
            ([head.as_slice(), b"\x0c\x05ab"].concat(), "past its field"),
        ];
        for (raw, want) in cases {
            let e = decode_dhcp(&raw).unwrap_err();
            assert!(e.0.contains(want), "{e} lacks {want}");
        }
    }

    #[test]
    fn overload_inside_file_is_ignored_and_bad_option_in_file_fails() {
        let mut ok = message(2, &[opt(OPT_OVERLOAD, &[1]), end()]);
        set(&mut ok, FILE.0, b"\x34\x01\x02\x0c\x01x\xff");
        assert_eq!(decode_dhcp(&ok).unwrap().hostname.as_deref(), Some("x"));
        let mut bad = message(2, &[opt(OPT_OVERLOAD, &[1]), end()]);
        set(&mut bad, FILE.0 + 126, b"\x0c\x05");
        assert!(decode_dhcp(&bad).unwrap_err().0.contains("past its field"));
    }

    /// benign/ndpi__gnutella.pcap frames 7 (REQUEST) and 8 (ACK), checked there against tshark.
    const GNUTELLA_REQUEST: &str = "01010600a6784b7d0000000000000000000000000000000000000000080027e6e55900000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000638253633501033d0701080027e6e55932040a00020f0c0b4d534544474557494e3130510e0000004d534544474557494e31303c084d53465420352e30370e0103060f1f212b2c2e2f7779f9fcff";

    /// Frame 8, with its 264 trailing zero bytes of padding after End.
    const GNUTELLA_ACK: &str = "02010600a6784b7d000000000a00020f0a00020f0a00020400000000080027e6e55900000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000004d5345646765202d2057696e31302e7078650000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000638253633501050104ffffff0003040a00020206040a0002030f036c616e33040001518036040a000202ff0000000000";

    fn gnutella_ack() -> Vec<u8> {
        let mut raw = hex(GNUTELLA_ACK);
        raw.resize(raw.len() + 264, 0);
        raw
    }

    #[test]
    fn real_capture() {
        let r = decode_dhcp(&hex(GNUTELLA_REQUEST)).unwrap();
        assert_eq!(r.msg_type, REQUEST);
        assert_eq!(r.xid, 0xa678_4b7d);
        assert_eq!(r.chaddr, "08:00:27:e6:e5:59");
        assert_eq!(r.hostname.as_deref(), Some("MSEDGEWIN10"));
        assert_eq!(r.client_fqdn.as_deref(), Some("MSEDGEWIN10"));
        assert_eq!(r.requested, Some(ip("10.0.2.15")));
        assert_eq!(r.lease_time, None);
        let a = decode_dhcp(&gnutella_ack()).unwrap();
        assert_eq!(a.msg_type, ACK);
        assert_eq!((a.ciaddr, a.yiaddr), (ip("10.0.2.15"), ip("10.0.2.15")));
        assert_eq!(a.lease_time, Some(86400));
        assert_eq!(a.server_id, Some(ip("10.0.2.2")));
        assert_eq!(a.hostname, None);
    }

    proptest! {
        #[test]
        fn random_bytes_only_decode_error(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = decode_dhcp(&data);
        }

        #[test]
        fn random_bodies_behind_a_valid_header(tail in proptest::collection::vec(any::<u8>(), 0..360)) {
            let mut raw = discover()[..OPTIONS].to_vec();
            raw.extend_from_slice(&tail);
            let _ = decode_dhcp(&raw);
        }

        #[test]
        fn mutated_messages_only_decode_error(
            which in 0usize..4,
            edits in proptest::collection::vec((0usize..400, any::<u8>()), 1..8),
            mode in 0u8..4,
        ) {
            let mut raw = all()[which].clone();
            raw[2] = 6;
            for (pos, value) in edits {
                let at = pos % (raw.len() + 1);
                match mode {
                    0 if at < raw.len() => raw[at] = value,
                    1 => raw.insert(at, value),
                    2 if at < raw.len() => {
                        raw.remove(at);
                    }
                    // Small option codes and lengths: deep option walks.
                    3 if (OPTIONS..raw.len()).contains(&at) => raw[at] = value & 0x7F,
                    _ => {}
                }
            }
            let _ = decode_dhcp(&raw);
        }
    }
}
