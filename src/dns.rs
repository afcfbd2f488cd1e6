//! DNS messages over UDP and TCP (length-prefixed framing).
//!
//! Behaviour of the retired Python decoder (its tests now run here): names lower-cased without
//! the trailing dot, escaped labels, explicit limits on name length, label count and
//! compression pointers (no loops), counts from the header never trusted for allocation.
//!
//! The parser is written here rather than on `simple-dns`: that crate keeps label case and
//! has no presentation escaping (so "a.b" as one label would equal two labels), accepts
//! forward compression pointers, decodes every rdata and the authority/additional sections
//! (dns.py reads only questions and answers, and with `addresses_only` leaves other rdata
//! unread), and allocates per record before knowing whether the record is kept. Limits are
//! explicit constants, as in Suricata's DNS parser, not properties of the input: every name
//! walk is bounded by `MAX_NAME` wire octets and `MAX_POINTER_JUMPS` hops, so each name costs
//! constant work and a message costs work linear in its length.

use crate::error::DecodeError;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const A: u16 = 1;
pub const NS: u16 = 2;
pub const CNAME: u16 = 5;
pub const SOA: u16 = 6;
pub const PTR: u16 = 12;
pub const MX: u16 = 15;
pub const TXT: u16 = 16;
pub const AAAA: u16 = 28;
pub const SRV: u16 = 33;
pub const DNAME: u16 = 39;

pub const HEADER_LEN: usize = 12;
/// RFC 1035 2.3.4, in wire octets (length bytes and the root label included).
pub const MAX_NAME: usize = 255;
/// Implied by `MAX_NAME` (every non-root label takes at least two octets); checked anyway so
/// the bound does not rest on arithmetic elsewhere.
pub const MAX_LABELS: usize = 127;
/// Far more indirections than any honest encoder produces; the backward-only rule already
/// prevents cycles, this bounds the work per name.
pub const MAX_POINTER_JUMPS: usize = 64;
/// Characters of a non-address, non-name record value worth keeping.
pub const MAX_REPR: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RData {
    Addr(IpAddr),
    /// CNAME (and other name-valued records) target.
    Name(String),
    /// Anything else, as dns.py renders it.
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsRecord {
    pub name: String,
    pub rtype: u16,
    pub ttl: u32,
    pub value: RData,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DnsMessage {
    pub msg_id: u16,
    pub is_response: bool,
    pub rcode: u8,
    pub questions: Vec<(String, u16)>,
    pub answers: Vec<DnsRecord>,
}

fn err(msg: impl Into<String>) -> DecodeError {
    DecodeError::new(msg)
}

fn be16(data: &[u8], pos: usize) -> u16 {
    u16::from_be_bytes([data[pos], data[pos + 1]])
}

fn be32(data: &[u8], pos: usize) -> u32 {
    u32::from_be_bytes([data[pos], data[pos + 1], data[pos + 2], data[pos + 3]])
}

/// Presentation form of one label (RFC 4343), lower-cased: a dot or odd byte inside a label
/// stays distinguishable from a label boundary.
/// Only ASCII is written.
fn push_label(out: &mut Vec<u8>, label: &[u8]) {
    // Nearly every label is plain printable ASCII: copied whole, lower-cased in place.
    if label
        .iter()
        .all(|&b| matches!(b, 0x21..=0x7e) && b != b'.' && b != b'\\')
    {
        let start = out.len();
        out.extend_from_slice(label);
        out[start..].make_ascii_lowercase();
        return;
    }
    for &b in label {
        let c = b.to_ascii_lowercase();
        match c {
            b'.' | b'\\' => out.extend_from_slice(&[b'\\', c]),
            0x21..=0x7e => out.push(c),
            // `\ddd`, three decimal digits.
            _ => out.extend_from_slice(&[b'\\', b'0' + c / 100, b'0' + c / 10 % 10, b'0' + c % 10]),
        }
    }
}

/// Walk the (possibly compressed) name at `start`, appending its text to `out` when given;
/// returns the offset just after the name where it starts.
///
/// Termination does not depend on the data: every step either consumes a label (bounded by
/// `MAX_NAME`), follows a strictly backward pointer (bounded by `MAX_POINTER_JUMPS`) or ends.
fn walk_name(data: &[u8], start: usize, out: Option<&mut String>) -> Result<usize, DecodeError> {
    let Some(out) = out else {
        return walk(data, start, None);
    };
    // The name is written as bytes into the string's own buffer (no allocation when it
    // has room), then handed back as a string.
    let mut bytes = std::mem::take(out).into_bytes();
    let result = walk(data, start, Some(&mut bytes));
    // Only ASCII is ever written, so this is never lossy.
    *out = String::from_utf8(bytes)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    result
}

fn walk(data: &[u8], start: usize, mut out: Option<&mut Vec<u8>>) -> Result<usize, DecodeError> {
    let n = data.len();
    let mut pos = start;
    let mut wire_len = 1usize;
    let mut labels = 0usize;
    let mut jumps = 0usize;
    let mut after: Option<usize> = None;
    loop {
        let Some(&len) = data.get(pos) else {
            return Err(err(format!(
                "DNS: name runs past the message end at offset {pos}"
            )));
        };
        if len == 0 {
            pos += 1;
            break;
        }
        if len >= 0xC0 {
            let Some(&lo) = data.get(pos + 1) else {
                return Err(err("DNS: truncated compression pointer"));
            };
            let target = (usize::from(len & 0x3F) << 8) | usize::from(lo);
            if target >= pos {
                return Err(err(format!(
                    "DNS: compression pointer at {pos} does not point backward"
                )));
            }
            jumps += 1;
            if jumps > MAX_POINTER_JUMPS {
                return Err(err("DNS: too many compression pointers"));
            }
            if after.is_none() {
                after = Some(pos + 2);
            }
            pos = target;
            continue;
        }
        if len & 0xC0 != 0 {
            return Err(err(format!(
                "DNS: unsupported label type 0x{:02x}",
                len & 0xC0
            )));
        }
        let len = usize::from(len);
        let first = pos + 1;
        let stop = first + len;
        if stop > n {
            return Err(err("DNS: label runs past the message end"));
        }
        wire_len += len + 1;
        if wire_len > MAX_NAME {
            return Err(err("DNS: name longer than 255 octets"));
        }
        labels += 1;
        if labels > MAX_LABELS {
            return Err(err("DNS: name with too many labels"));
        }
        if let Some(o) = out.as_deref_mut() {
            if labels > 1 {
                o.push(b'.');
            }
            push_label(o, &data[first..stop]);
        }
        pos = stop;
    }
    Ok(after.unwrap_or(pos))
}

/// Decode the name at `pos`; returns (name, offset after it).
pub fn read_name(data: &[u8], pos: usize) -> Result<(String, usize), DecodeError> {
    let mut name = String::new();
    let after = walk_name(data, pos, Some(&mut name))?;
    Ok((name, after))
}

/// A name inside record data: it may point anywhere before it, but must end within `stop`.
fn rdata_name(data: &[u8], start: usize, stop: usize) -> Result<(String, usize), DecodeError> {
    let mut name = String::new();
    let after = rdata_name_into(data, start, stop, &mut name)?;
    Ok((name, after))
}

/// As `rdata_name`, written into `name` (cleared first) so its buffer can be reused.
fn rdata_name_into(
    data: &[u8],
    start: usize,
    stop: usize,
    name: &mut String,
) -> Result<usize, DecodeError> {
    name.clear();
    let after = walk_name(data, start, Some(name))?;
    if after > stop {
        return Err(err("DNS: name overruns its record data"));
    }
    Ok(after)
}

fn value(data: &[u8], rtype: u16, start: usize, stop: usize) -> Result<RData, DecodeError> {
    let rdata = &data[start..stop];
    let rdlen = rdata.len();
    match rtype {
        A => {
            let octets: [u8; 4] = rdata
                .try_into()
                .map_err(|_| err(format!("DNS: A record with {rdlen} bytes")))?;
            Ok(RData::Addr(IpAddr::V4(Ipv4Addr::from(octets))))
        }
        AAAA => {
            let octets: [u8; 16] = rdata
                .try_into()
                .map_err(|_| err(format!("DNS: AAAA record with {rdlen} bytes")))?;
            Ok(RData::Addr(IpAddr::V6(Ipv6Addr::from(octets))))
        }
        NS | CNAME | PTR | DNAME => {
            let (name, after) = rdata_name(data, start, stop)?;
            if after != stop {
                return Err(err("DNS: bytes after the name in record data"));
            }
            Ok(RData::Name(name))
        }
        MX => {
            if rdlen < 3 {
                return Err(err("DNS: MX record too short"));
            }
            let (name, _) = rdata_name(data, start + 2, stop)?;
            Ok(RData::Other(format!("{} {name}", be16(data, start))))
        }
        SRV => {
            if rdlen < 7 {
                return Err(err("DNS: SRV record too short"));
            }
            let (name, _) = rdata_name(data, start + 6, stop)?;
            Ok(RData::Other(format!(
                "{} {} {} {name}",
                be16(data, start),
                be16(data, start + 2),
                be16(data, start + 4)
            )))
        }
        SOA => {
            let (mname, after) = rdata_name(data, start, stop)?;
            let (rname, _) = rdata_name(data, after, stop)?;
            Ok(RData::Other(format!("{mname} {rname}")))
        }
        TXT => {
            // Every string is bounds-checked; only the first MAX_REPR characters are built.
            let mut out = String::new();
            let mut pos = 0;
            while pos < rdlen {
                let end = pos + 1 + usize::from(rdata[pos]);
                if end > rdlen {
                    return Err(err("DNS: TXT string overruns its record data"));
                }
                if out.len() <= MAX_REPR {
                    if pos > 0 {
                        out.push(' ');
                    }
                    out.push('"');
                    // Python's ascii/backslashreplace: ASCII as is, other bytes as \xNN.
                    for &b in &rdata[pos + 1..end] {
                        if b < 0x80 {
                            out.push(b as char);
                        } else {
                            let _ = write!(out, "\\x{b:02x}");
                        }
                    }
                    out.push('"');
                }
                pos = end;
            }
            out.truncate(MAX_REPR);
            Ok(RData::Other(out))
        }
        _ => {
            // RFC 3597 generic form, truncated: enough to recognise, cheap to keep.
            let mut out = format!("\\# {rdlen} ");
            for b in rdata {
                if out.len() >= MAX_REPR {
                    break;
                }
                let _ = write!(out, "{b:02x}");
            }
            out.truncate(MAX_REPR);
            Ok(RData::Other(out))
        }
    }
}

/// Decode one DNS message. `addresses_only`: keep only A, AAAA and CNAME answers (what
/// passive DNS needs), skipping the rendering of other rdata.
///
/// Only the header, questions and answers are read; authority and additional sections are
/// neither needed nor validated. Every kept or skipped answer's header and owner name are
/// still checked.
pub fn decode_dns(data: &[u8], addresses_only: bool) -> Result<DnsMessage, DecodeError> {
    let mut msg = DnsMessage::default();
    let kept = decode_records(data, addresses_only, &mut msg)?;
    msg.answers.truncate(kept);
    Ok(msg)
}

/// Most questions and answer records a `DnsDecoder` keeps allocated between messages.
pub const DECODER_KEEP: usize = 64;

/// Decodes one message after another into the same strings and vectors: once it has seen
/// messages of their size, a stream of answers costs no allocation per record. Memory held
/// between messages is bounded by `DECODER_KEEP` records (names at most `MAX_NAME` octets).
#[derive(Default)]
pub struct DnsDecoder {
    msg: DnsMessage,
    /// Records beyond the last message's answers, kept for their strings.
    spare: Vec<DnsRecord>,
}

impl DnsDecoder {
    /// As `decode_dns`; the message is valid until the next call.
    pub fn decode(
        &mut self,
        data: &[u8],
        addresses_only: bool,
    ) -> Result<&DnsMessage, DecodeError> {
        // The last message was a rare huge one: it does not stay allocated.
        if self.msg.answers.len() > DECODER_KEEP {
            self.msg.answers = Vec::new();
        }
        if self.msg.questions.len() > DECODER_KEEP {
            self.msg.questions = Vec::new();
        }
        self.msg.answers.append(&mut self.spare);
        let result = decode_records(data, addresses_only, &mut self.msg);
        let kept = *result.as_ref().unwrap_or(&0);
        self.spare.extend(self.msg.answers.drain(kept..));
        self.spare.truncate(DECODER_KEEP.saturating_sub(kept));
        result?;
        Ok(&self.msg)
    }
}

/// Decode into `msg`, reusing the strings and vectors it holds; returns how many leading
/// records of `msg.answers` are this message's answers (the rest are left over from
/// earlier messages, for their strings). After an error `msg` holds a partial decode.
fn decode_records(
    data: &[u8],
    addresses_only: bool,
    msg: &mut DnsMessage,
) -> Result<usize, DecodeError> {
    let n = data.len();
    if n < HEADER_LEN {
        return Err(err(format!("DNS: {n} bytes is shorter than the header")));
    }
    let flags = be16(data, 2);
    msg.msg_id = be16(data, 0);
    msg.is_response = flags >= 0x8000;
    msg.rcode = (flags & 0x000F) as u8;
    let qdcount = usize::from(be16(data, 4));
    let ancount = usize::from(be16(data, 6));
    // Every question takes >= 5 bytes and every record >= 11: reject impossible counts
    // before looping over them.
    if qdcount * 5 + ancount * 11 > n - HEADER_LEN {
        return Err(err(format!(
            "DNS: {qdcount} questions and {ancount} answers cannot fit {n} bytes"
        )));
    }
    let mut pos = HEADER_LEN;
    msg.questions.truncate(qdcount);
    for i in 0..qdcount {
        if i == msg.questions.len() {
            msg.questions.push((String::new(), 0));
        }
        let q = &mut msg.questions[i];
        q.0.clear();
        pos = walk_name(data, pos, Some(&mut q.0))?;
        if pos + 4 > n {
            return Err(err("DNS: truncated question"));
        }
        q.1 = be16(data, pos);
        pos += 4;
    }
    // Each owner name is rendered into the next free record's (reused) name; a skipped
    // record leaves it to be overwritten by the next one.
    let mut kept = 0;
    for _ in 0..ancount {
        if kept == msg.answers.len() {
            msg.answers.push(DnsRecord {
                name: String::new(),
                rtype: 0,
                ttl: 0,
                value: RData::Addr(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            });
        }
        let rec = &mut msg.answers[kept];
        rec.name.clear();
        pos = walk_name(data, pos, Some(&mut rec.name))?;
        if pos + 10 > n {
            return Err(err("DNS: truncated resource record header"));
        }
        let rtype = be16(data, pos);
        let ttl = be32(data, pos + 4);
        let rdlen = usize::from(be16(data, pos + 8));
        pos += 10;
        let stop = pos + rdlen;
        if stop > n {
            return Err(err("DNS: record data runs past the message end"));
        }
        if !addresses_only || matches!(rtype, A | AAAA | CNAME) {
            rec.rtype = rtype;
            rec.ttl = ttl;
            value_into(data, rtype, pos, stop, &mut rec.value)?;
            kept += 1;
        }
        pos = stop;
    }
    Ok(kept)
}

/// The record value into `slot`, reusing the string of a name it held before.
fn value_into(
    data: &[u8],
    rtype: u16,
    start: usize,
    stop: usize,
    slot: &mut RData,
) -> Result<(), DecodeError> {
    if matches!(rtype, NS | CNAME | PTR | DNAME) {
        if !matches!(slot, RData::Name(_)) {
            *slot = RData::Name(String::new());
        }
        let RData::Name(name) = slot else {
            unreachable!("slot was just made a name");
        };
        let after = rdata_name_into(data, start, stop, name)?;
        if after != stop {
            return Err(err("DNS: bytes after the name in record data"));
        }
        return Ok(());
    }
    *slot = value(data, rtype, start, stop)?;
    Ok(())
}

/// Default cap on messages per direction: a long-lived resolver connection tells what it is
/// in its first messages.
pub const DEFAULT_MAX_MESSAGES: u64 = 1024;

/// DNS over TCP, one direction: 2-byte length prefix framing. Messages decoded before a
/// damaged prefix are returned; the error comes on the next feed.
///
/// Each input byte is copied at most once: whole messages are decoded straight from the
/// segment and only an incomplete tail (at most one 2 + 65535 byte frame) is buffered.
pub struct DnsTcpFramer {
    /// Bytes ignored after `max_messages` messages.
    pub overflow: u64,
    pub messages: u64,
    pub max_messages: u64,
    buf: Vec<u8>,
    failed: Option<DecodeError>,
}

enum Frame {
    /// Not enough bytes yet.
    Partial,
    /// A decoded message and the bytes it took (prefix included).
    Whole(DnsMessage, usize),
}

/// The frame at the start of `data`. A length prefix shorter than a DNS header is an error
/// as soon as the prefix is seen.
fn frame(data: &[u8]) -> Result<Frame, DecodeError> {
    if data.len() < 2 {
        return Ok(Frame::Partial);
    }
    let length = usize::from(be16(data, 0));
    if length < HEADER_LEN {
        return Err(err(format!(
            "DNS: TCP message length {length} is shorter than a header"
        )));
    }
    if data.len() - 2 < length {
        return Ok(Frame::Partial);
    }
    let msg = decode_dns(&data[2..2 + length], false)?;
    Ok(Frame::Whole(msg, 2 + length))
}

impl DnsTcpFramer {
    /// Bytes held for an incomplete message (at most one 64 KiB message plus its prefix).
    pub fn buffered(&self) -> usize {
        self.buf.capacity()
    }

    pub fn new() -> Self {
        Self::with_max_messages(DEFAULT_MAX_MESSAGES)
    }

    pub fn with_max_messages(max_messages: u64) -> Self {
        DnsTcpFramer {
            overflow: 0,
            messages: 0,
            max_messages,
            buf: Vec::new(),
            failed: None,
        }
    }

    pub fn feed(&mut self, data: &[u8], out: &mut Vec<DnsMessage>) -> Result<(), DecodeError> {
        if let Some(e) = &self.failed {
            return Err(err(format!("DNS: decoder already failed: {e}")));
        }
        let mut pushed = 0usize;
        let result = self.feed_inner(data, out, &mut pushed);
        if let Err(e) = result {
            self.buf = Vec::new();
            self.failed = Some(e.clone());
            if pushed == 0 {
                return Err(e);
            }
            // The messages before the damage are good: hand them out now and fail on the
            // next feed, so nothing decoded is lost to the error.
        }
        Ok(())
    }

    fn feed_inner(
        &mut self,
        data: &[u8],
        out: &mut Vec<DnsMessage>,
        pushed: &mut usize,
    ) -> Result<(), DecodeError> {
        if self.messages >= self.max_messages {
            self.overflow += data.len() as u64;
            return Ok(());
        }
        let mut input = data;
        if !self.buf.is_empty() {
            // Complete the pending frame with only as many bytes as it needs.
            if self.buf.len() < 2 {
                let take = (2 - self.buf.len()).min(input.len());
                self.buf.extend_from_slice(&input[..take]);
                input = &input[take..];
            }
            if self.buf.len() >= 2 {
                let want = 2 + usize::from(be16(&self.buf, 0));
                let take = want.saturating_sub(self.buf.len()).min(input.len());
                self.buf.extend_from_slice(&input[..take]);
                input = &input[take..];
            }
            match frame(&self.buf)? {
                Frame::Partial => return Ok(()),
                Frame::Whole(msg, _) => {
                    self.buf.clear();
                    if self.accept(msg, out, pushed) {
                        self.overflow += input.len() as u64;
                        return Ok(());
                    }
                }
            }
        }
        while !input.is_empty() {
            match frame(input)? {
                Frame::Partial => break,
                Frame::Whole(msg, used) => {
                    input = &input[used..];
                    if self.accept(msg, out, pushed) {
                        self.overflow += input.len() as u64;
                        return Ok(());
                    }
                }
            }
        }
        self.buf.extend_from_slice(input);
        Ok(())
    }

    /// Hand out one message; true when the cap is reached.
    fn accept(&mut self, msg: DnsMessage, out: &mut Vec<DnsMessage>, pushed: &mut usize) -> bool {
        out.push(msg);
        *pushed += 1;
        self.messages += 1;
        self.messages >= self.max_messages
    }
}

impl Default for DnsTcpFramer {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn rec(name: &str, rtype: u16, ttl: u32, value: RData) -> DnsRecord {
        DnsRecord {
            name: name.into(),
            rtype,
            ttl,
            value,
        }
    }

    fn addr(s: &str) -> RData {
        RData::Addr(s.parse().unwrap())
    }

    fn name(s: &str) -> RData {
        RData::Name(s.into())
    }

    /// Responses with answers from mining/zeekcm__coinhive-stratum.pcap.
    pub(crate) const COINHIVE: [&str; 6] = [
        "a6658180000100020000000008636f696e6869766503636f6d0000010001c00c00010001000000b100046814d03bc00c00010001000000b100046814d13b",
        "8d5281800001000100000000046c6130310a737570706f7274786d7203636f6d0000010001c00c000100010000005a0004c06ea072",
        "060d81800001000100000000046c6130310a737570706f7274786d7203636f6d0000010001c00c000100010000005a0004c06ea072",
        "1c7281800001000100000000046c6130310a737570706f7274786d7203636f6d0000010001c00c000100010000005a0004c06ea072",
        "545081800001000300000000037777770a737570706f7274786d7203636f6d0000010001c00c00050001000000730027037777770a737570706f7274786d7203636f6d0363646e0a636c6f7564666c617265036e657400c0300001000100000073000468147b22c0300001000100000073000468147a22",
        "a76381800001000300000000037777770a737570706f7274786d7203636f6d00001c0001c00c00050001000000730027037777770a737570706f7274786d7203636f6d0363646e0a636c6f7564666c617265036e657400c030001c00010000007300102400cb00204800010000000068147b22c030001c00010000007300102400cb00204800010000000068147a22",
    ];
    const CHAIN: &str = "12348180000100030000000004506f6f6c074578616d706c6503434f4d0000010001c00c000500010000001e000c026c620363646e036e657400c02e000100010000012c000401020304c02e001c00010000012c001020010db8000000000000000000000001";
    const OTHER: &str = "000781000001000500000000076578616d706c65036f72670000ff0001c00c000f00010000003c0007000a026d78c00cc00c001000010000003c000e0b763d73706631202d616c6c0178085f7374726174756d045f746370c00c002100010000003c000d000100020d0504706f6f6cc00cc00c000600010000003c0027036e7331c00c0a686f73746d6173746572c00c0000000000000000000000000000000000000000c00c006300010000003c00020102";

    fn real_messages() -> Vec<Vec<u8>> {
        COINHIVE.iter().map(|h| hex(h)).collect()
    }

    fn header(qd: u16, an: u16) -> Vec<u8> {
        let mut h = Vec::new();
        for v in [1u16, 0x8180, qd, an, 0, 0] {
            h.extend_from_slice(&v.to_be_bytes());
        }
        h
    }

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    #[test]
    fn coinhive_pool_lookups() {
        let answers: Vec<(String, RData)> = real_messages()
            .iter()
            .flat_map(|m| decode_dns(m, false).unwrap().answers)
            .map(|r| (r.name, r.value))
            .collect();
        assert!(answers.contains(&("coinhive.com".into(), addr("104.20.208.59"))));
        assert!(answers.contains(&("la01.supportxmr.com".into(), addr("192.110.160.114"))));
        assert!(answers.contains(&(
            "www.supportxmr.com".into(),
            name("www.supportxmr.com.cdn.cloudflare.net")
        )));
        let aaaa = decode_dns(&real_messages()[5], false).unwrap();
        assert_eq!(aaaa.questions, vec![("www.supportxmr.com".into(), AAAA)]);
        assert_eq!(aaaa.answers[1].value, addr("2400:cb00:2048:1::6814:7b22"));
    }

    #[test]
    fn cname_chain_with_compression() {
        let raw = hex(CHAIN);
        assert!(raw.iter().filter(|&&b| b == 0xc0).count() >= 2);
        let want = DnsMessage {
            msg_id: 0x1234,
            is_response: true,
            rcode: 0,
            questions: vec![("pool.example.com".into(), A)],
            answers: vec![
                rec("pool.example.com", CNAME, 30, name("lb.cdn.net")),
                rec("lb.cdn.net", A, 300, addr("1.2.3.4")),
                rec("lb.cdn.net", AAAA, 300, addr("2001:db8::1")),
            ],
        };
        assert_eq!(decode_dns(&raw, false).unwrap(), want);
        assert_eq!(decode_dns(&raw, true).unwrap(), want);
    }

    #[test]
    fn other_record_types() {
        let raw = hex(OTHER);
        let values: Vec<(u16, RData)> = decode_dns(&raw, false)
            .unwrap()
            .answers
            .into_iter()
            .map(|r| (r.rtype, r.value))
            .collect();
        let other = |s: &str| RData::Other(s.into());
        assert_eq!(
            values,
            vec![
                (MX, other("10 mx.example.org")),
                (TXT, other("\"v=spf1 -all\" \"x\"")),
                (SRV, other("1 2 3333 pool.example.org")),
                (SOA, other("ns1.example.org hostmaster.example.org")),
                (99, other("\\# 2 0102")),
            ]
        );
        // Skipped, but the owner names and bounds were still checked.
        assert!(decode_dns(&raw, true).unwrap().answers.is_empty());
    }

    #[test]
    fn query_and_error_response() {
        let q = decode_dns(&hex("0009010000010000000000000161016200001c0001"), false).unwrap();
        assert_eq!(
            q,
            DnsMessage {
                msg_id: 9,
                is_response: false,
                rcode: 0,
                questions: vec![("a.b".into(), AAAA)],
                answers: vec![],
            }
        );
        let nx = decode_dns(
            &hex("000981030001000000000000046e6f706507696e76616c69640000010001"),
            false,
        )
        .unwrap();
        assert_eq!(nx.rcode, 3);
        assert!(nx.is_response);
        assert!(nx.answers.is_empty());
    }

    #[test]
    fn name_escaping_and_root() {
        let raw = cat(&[
            &header(1, 0),
            b"\x03A.b\x02\x00\xff\x00",
            b"\x00\x01\x00\x01",
        ]);
        assert_eq!(
            decode_dns(&raw, false).unwrap().questions,
            vec![("a\\.b.\\000\\255".into(), 1)]
        );
        let raw = cat(&[&header(1, 0), b"\x02a\\\x01 \x00\x00\x01\x00\x01"]);
        assert_eq!(
            decode_dns(&raw, false).unwrap().questions[0].0,
            "a\\\\.\\032"
        );
        let root = cat(&[&header(1, 0), b"\x00\x00\x02\x00\x01"]);
        assert_eq!(
            decode_dns(&root, false).unwrap().questions,
            vec![(String::new(), 2)]
        );
    }

    #[test]
    fn bad_names() {
        let mut label40 = b"\x41".to_vec();
        label40.extend_from_slice(&[b'a'; 65]);
        label40.extend_from_slice(b"\x00\x00\x01\x00\x01");
        let mut label80 = b"\x81".to_vec();
        label80.extend_from_slice(&[b'a'; 10]);
        let tails: [&[u8]; 8] = [
            b"\xc0\x0c\x00\x01\x00\x01",      // pointer to itself
            b"\xc0\x20\x00\x01\x00\x01",      // forward pointer
            b"\x01a\xc0\x0c\x00\x01\x00\x01", // label then pointer to its own start
            &label40,                         // label type 0x40
            &label80,                         // label type 0x80
            b"\x05ab",                        // label past the end
            b"\x01a\x00\x00",                 // truncated question
            b"\xc0",                          // truncated pointer
        ];
        for tail in tails {
            let raw = cat(&[&header(1, 0), tail]);
            assert!(decode_dns(&raw, false).is_err(), "{tail:?}");
        }
    }

    #[test]
    fn name_length_limit() {
        let mut label = vec![0x3f];
        label.extend_from_slice(&[b'x'; 63]);
        let mut ok = label.repeat(3);
        ok.push(0x3d);
        ok.extend_from_slice(&[b'y'; 61]);
        ok.push(0);
        assert_eq!(ok.len(), 255);
        let msg = cat(&[&header(1, 0), &ok, b"\x00\x01\x00\x01"]);
        assert_eq!(read_name(&msg, 12).unwrap().0.len(), 253);
        assert!(decode_dns(&msg, false).is_ok());
        let mut too_long = label.repeat(4);
        too_long.push(0);
        let msg = cat(&[&header(1, 0), &too_long, b"\x00\x01\x00\x01"]);
        assert!(decode_dns(&msg, false).is_err());
    }

    /// Each name points to the one before it: `depth` pointers, all backward, no cycle.
    fn pointer_chain(depth: usize) -> (Vec<u8>, Vec<usize>) {
        let mut msg = header(0, 0);
        msg.extend_from_slice(b"\x01a\x00");
        let mut offsets = vec![12];
        for _ in 0..depth {
            let prev = *offsets.last().unwrap();
            offsets.push(msg.len());
            msg.extend_from_slice(&(0xC000 | prev as u16).to_be_bytes());
        }
        (msg, offsets)
    }

    #[test]
    fn pointer_chain_is_bounded() {
        let (msg, offsets) = pointer_chain(200);
        assert!(read_name(&msg, offsets[200]).is_err());
        assert_eq!(
            read_name(&msg, offsets[10]).unwrap(),
            ("a".into(), offsets[10] + 2)
        );
        assert!(read_name(&msg, offsets[MAX_POINTER_JUMPS]).is_ok());
        assert!(read_name(&msg, offsets[MAX_POINTER_JUMPS + 1]).is_err());
    }

    #[test]
    fn bad_records() {
        let records: [&[u8]; 5] = [
            b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x05\x01\x02\x03\x04\x05", // A of 5
            b"\xc0\x0c\x00\x1c\x00\x01\x00\x00\x00\x3c\x00\x04\x01\x02\x03\x04",     // AAAA of 4
            b"\xc0\x0c\x00\x05\x00\x01\x00\x00\x00\x3c\x00\x04\xc0\x0c\x00\x00",     // after name
            b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x09\x01\x02",             // past end
            b"\xc0\x0c\x00\x10\x00\x01\x00\x00\x00\x3c\x00\x02\x05a",                // TXT overrun
        ];
        for (i, record) in records.iter().enumerate() {
            let raw = cat(&[&header(1, 1), b"\x01a\x00\x00\x01\x00\x01", record]);
            assert!(decode_dns(&raw, false).is_err(), "{i}");
            // Address records and bounds are checked even when other types are skipped.
            assert_eq!(decode_dns(&raw, true).is_err(), i != 4, "{i}");
        }
    }

    #[test]
    fn impossible_counts_rejected_early() {
        let mut raw = Vec::new();
        for v in [1u16, 0, 65535, 65535, 0, 0] {
            raw.extend_from_slice(&v.to_be_bytes());
        }
        raw.extend_from_slice(&[0; 20]);
        assert!(decode_dns(&raw, false).is_err());
        assert!(decode_dns(&[0; 11], false).is_err());
    }

    #[test]
    fn truncated_at_every_index() {
        for raw in real_messages().iter().chain([&hex(CHAIN), &hex(OTHER)]) {
            for cut in 0..raw.len() {
                assert!(decode_dns(&raw[..cut], false).is_err(), "cut {cut}");
            }
            assert!(!decode_dns(raw, false).unwrap().answers.is_empty());
        }
    }

    #[test]
    fn txt_and_generic_values_are_truncated() {
        let mut rdata = Vec::new();
        for _ in 0..10 {
            rdata.push(100u8);
            rdata.extend_from_slice(&[0xe9; 100]);
        }
        for (rtype, data) in [(TXT, rdata.clone()), (99, vec![0xab; 1000])] {
            let mut raw = cat(&[&header(1, 1), b"\x01a\x00\x00\x01\x00\x01", b"\xc0\x0c"]);
            raw.extend_from_slice(&rtype.to_be_bytes());
            raw.extend_from_slice(b"\x00\x01\x00\x00\x00\x3c");
            raw.extend_from_slice(&(data.len() as u16).to_be_bytes());
            raw.extend_from_slice(&data);
            let msg = decode_dns(&raw, false).unwrap();
            let RData::Other(text) = &msg.answers[0].value else {
                panic!("not rendered as text")
            };
            assert_eq!(text.len(), MAX_REPR);
        }
    }

    fn framed(msgs: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for m in msgs {
            out.extend_from_slice(&(m.len() as u16).to_be_bytes());
            out.extend_from_slice(m);
        }
        out
    }

    fn feed_all(dec: &mut DnsTcpFramer, data: &[u8]) -> Vec<DnsMessage> {
        let mut out = Vec::new();
        dec.feed(data, &mut out).unwrap();
        out
    }

    #[test]
    fn tcp_framing() {
        let msgs = real_messages();
        let stream = framed(&msgs);
        let expected: Vec<DnsMessage> =
            msgs.iter().map(|m| decode_dns(m, false).unwrap()).collect();
        assert_eq!(feed_all(&mut DnsTcpFramer::new(), &stream), expected);
        let mut dec = DnsTcpFramer::new();
        let bytewise: Vec<DnsMessage> = stream
            .iter()
            .flat_map(|b| feed_all(&mut dec, std::slice::from_ref(b)))
            .collect();
        assert_eq!(bytewise, expected);
        for cut in 0..stream.len() {
            let mut dec = DnsTcpFramer::new();
            let mut got = feed_all(&mut dec, &stream[..cut]);
            got.extend(feed_all(&mut dec, &stream[cut..]));
            assert_eq!(got, expected, "cut {cut}");
        }
        for cut in 0..stream.len() {
            // Truncated streams hand out exactly the whole messages before the cut.
            let whole = feed_all(&mut DnsTcpFramer::new(), &stream[..cut]);
            assert_eq!(whole[..], expected[..whole.len()]);
        }
    }

    #[test]
    fn tcp_rejects_short_length() {
        let mut dec = DnsTcpFramer::new();
        let mut out = Vec::new();
        assert!(dec.feed(b"\x00\x05hello", &mut out).is_err());
        assert!(dec.feed(b"", &mut out).is_err());
        // Split prefix: the damage shows as soon as both bytes are in.
        let mut dec = DnsTcpFramer::new();
        assert!(dec.feed(b"\x00", &mut out).is_ok());
        assert!(dec.feed(b"\x05", &mut out).is_err());
        assert!(out.is_empty());
    }

    #[test]
    fn tcp_message_cap() {
        let m = real_messages()[0].clone();
        let one = framed(&[m]);
        let mut dec = DnsTcpFramer::with_max_messages(2);
        assert_eq!(feed_all(&mut dec, &one.repeat(3)).len(), 2);
        assert_eq!(dec.overflow, one.len() as u64);
        assert!(feed_all(&mut dec, &one).is_empty());
        assert_eq!(dec.overflow, 2 * one.len() as u64);
    }

    #[test]
    fn tcp_keeps_messages_decoded_before_damage() {
        let good = hex("00058100000100000000000004706f6f6c076578616d706c65036f72670000010001");
        let mut data = framed(&[good]);
        data.extend_from_slice(b"\x00\x03abc");
        let mut dec = DnsTcpFramer::new();
        let got = feed_all(&mut dec, &data);
        assert_eq!(got.iter().map(|m| m.msg_id).collect::<Vec<_>>(), vec![5]);
        assert!(dec.feed(b"more", &mut Vec::new()).is_err());
    }

    /// A response with `n` answers, each owner a pointer to the question.
    fn many_answers(n: u16) -> Vec<u8> {
        let mut raw = cat(&[
            &header(1, n),
            b"\x04pool\x07example\x03org\x00\x00\x01\x00\x01",
        ]);
        for i in 0..n {
            raw.extend_from_slice(b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04");
            raw.extend_from_slice(&[10, 0, (i >> 8) as u8, i as u8]);
        }
        raw
    }

    #[test]
    fn many_records_are_linear() {
        // Work per record is bounded by the name limits, so hundreds of records decode in
        // one pass; a pointer per owner to a max-length name costs the same bound each.
        let msg = decode_dns(&many_answers(500), false).unwrap();
        assert_eq!(msg.answers.len(), 500);
        assert_eq!(msg.answers[499].value, addr("10.0.1.243"));
        // Worst case for one name walk, repeated for every record of a 64 KiB message: the
        // first record's rdata holds a chain of 63 backward pointers, every later owner
        // points at its far end (64 hops per owner).
        let mut raw = cat(&[&header(1, 0), b"\x01a\x00\x00\x01\x00\x01"]);
        raw.extend_from_slice(b"\xc0\x0c\x00\x63\x00\x01\x00\x00\x00\x3c");
        raw.extend_from_slice(&(2 * (MAX_POINTER_JUMPS as u16 - 1)).to_be_bytes());
        let mut prev = 12u16;
        for _ in 0..MAX_POINTER_JUMPS - 1 {
            let here = raw.len() as u16;
            raw.extend_from_slice(&(0xC000 | prev).to_be_bytes());
            prev = here;
        }
        let count = (65535 - raw.len()) / 16;
        raw[6..8].copy_from_slice(&(count as u16 + 1).to_be_bytes());
        for _ in 0..count {
            raw.extend_from_slice(&(0xC000 | prev).to_be_bytes());
            raw.extend_from_slice(b"\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x01\x02\x03\x04");
        }
        let msg = decode_dns(&raw, true).unwrap();
        assert_eq!(msg.answers.len(), count);
        assert_eq!(msg.answers[0].name, "a");
    }

    #[test]
    fn label_bomb_rejected() {
        // 200 one-byte labels: the name limit stops the walk after 127.
        let mut raw = header(1, 0);
        for _ in 0..200 {
            raw.extend_from_slice(b"\x01x");
        }
        raw.extend_from_slice(b"\x00\x00\x01\x00\x01");
        assert!(decode_dns(&raw, false).is_err());
        // Every question a pointer back into one long name: each walk is bounded.
        let mut raw = header(300, 0);
        for _ in 0..126 {
            raw.extend_from_slice(b"\x01x");
        }
        raw.extend_from_slice(b"\x00\x00\x01\x00\x01");
        for _ in 1..300 {
            raw.extend_from_slice(b"\xc0\x0c\x00\x01\x00\x01");
        }
        let msg = decode_dns(&raw, false).unwrap();
        assert_eq!(msg.questions.len(), 300);
    }

    fn mutate(base: &[u8], edits: &[(usize, u8)], mode: u8) -> Vec<u8> {
        let mut raw = base.to_vec();
        for &(pos, value) in edits {
            let at = pos % (raw.len() + 1);
            match mode {
                0 if at < raw.len() => raw[at] = value,
                1 => raw.insert(at, value),
                2 if at < raw.len() => {
                    raw.remove(at);
                }
                _ if at < raw.len() => raw[at] = value & 0xC3,
                _ => {}
            }
        }
        raw
    }

    fn corpus() -> Vec<Vec<u8>> {
        let mut all = real_messages();
        all.push(hex(CHAIN));
        all.push(hex(OTHER));
        all
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = decode_dns(&data, false);
            let _ = decode_dns(&data, true);
            let mut dec = DnsTcpFramer::new();
            let _ = dec.feed(&data, &mut Vec::new());
        }

        #[test]
        fn mutated_messages_never_panic(
            which in 0usize..8,
            edits in proptest::collection::vec((0usize..400, any::<u8>()), 1..8),
            mode in 0u8..4,
        ) {
            let base = &corpus()[which];
            let raw = mutate(base, &edits, mode);
            let _ = decode_dns(&raw, false);
            if let Ok(msg) = decode_dns(&raw, true) {
                for r in &msg.answers {
                    prop_assert!(matches!(r.rtype, A | AAAA | CNAME));
                }
            }
        }

        /// A message decoded into the strings of earlier ones (good, damaged, larger or
        /// smaller) is the same as one decoded fresh.
        #[test]
        fn reused_message_decodes_the_same(
            seq in proptest::collection::vec(
                (0usize..8, proptest::collection::vec((0usize..400, any::<u8>()), 0..4), 0u8..4,
                 any::<bool>()),
                1..8,
            ),
        ) {
            let corpus = corpus();
            let mut decoder = DnsDecoder::default();
            for (which, edits, mode, addresses_only) in seq {
                let raw = mutate(&corpus[which % corpus.len()], &edits, mode);
                let fresh = decode_dns(&raw, addresses_only);
                let again = decoder.decode(&raw, addresses_only);
                prop_assert_eq!(fresh.is_ok(), again.is_ok());
                if let (Ok(fresh), Ok(again)) = (fresh, again) {
                    prop_assert_eq!(&fresh, again);
                }
            }
        }

        #[test]
        fn tcp_split_anywhere_is_the_same(cuts in proptest::collection::vec(0usize..400, 0..6)) {
            let msgs = corpus();
            let stream = framed(&msgs);
            let expected: Vec<DnsMessage> =
                msgs.iter().map(|m| decode_dns(m, false).unwrap()).collect();
            let mut points: Vec<usize> = cuts.iter().map(|c| c % stream.len()).collect();
            points.sort_unstable();
            let mut dec = DnsTcpFramer::new();
            let mut got = Vec::new();
            let mut last = 0;
            for p in points.into_iter().chain([stream.len()]) {
                dec.feed(&stream[last..p], &mut got).unwrap();
                last = p;
            }
            prop_assert_eq!(got, expected);
        }

        #[test]
        fn names_are_bounded(data in proptest::collection::vec(any::<u8>(), 12..400), start in 0usize..400) {
            if let Ok((name, after)) = read_name(&data, start % data.len()) {
                // Escaping can at most quadruple the 253 presentation bytes.
                prop_assert!(name.len() <= 4 * 253);
                prop_assert!(after <= data.len());
            }
        }
    }
}
