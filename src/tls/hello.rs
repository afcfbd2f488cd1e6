//! ClientHello and ServerHello parsing and the JA3/JA4 fingerprints, as tls.py computes them.

use std::fmt::Write as _;

use md5::{Digest as _, Md5};
use sha2::Sha256;

use super::{ClientHelloInfo, ServerHelloInfo, HS_SERVER_HELLO};
use crate::error::DecodeError;

const EXT_SERVER_NAME: u16 = 0x0000;
const EXT_SUPPORTED_GROUPS: u16 = 0x000A;
const EXT_EC_POINT_FORMATS: u16 = 0x000B;
const EXT_SIGNATURE_ALGORITHMS: u16 = 0x000D;
const EXT_ALPN: u16 = 0x0010;
const EXT_SUPPORTED_VERSIONS: u16 = 0x002B;

/// RFC 8446 4.1.3: a HelloRetryRequest is a ServerHello whose random is
/// SHA-256("HelloRetryRequest").
const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

const EMPTY_HASH: &str = "000000000000";

/// RFC 8701 GREASE code point (0x0a0a, 0x1a1a, ... 0xfafa).
pub fn is_grease(value: u16) -> bool {
    (value & 0x0F0F) == 0x0A0A && (value >> 8) == (value & 0xFF)
}

/// The two-character JA4 version code ("13", "12", ... "s3", "d1"), "00" when unknown.
pub fn ja4_version_code(version: u16) -> &'static str {
    match version {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0002 | 0x0200 => "s2",
        0x0100 => "s1",
        0xFEFF => "d1",
        0xFEFD => "d2",
        0xFEFC => "d3",
        _ => "00",
    }
}

fn err(msg: impl Into<String>) -> DecodeError {
    DecodeError::new(msg)
}

/// Bounds of a length-prefixed vector at `pos` inside `data[..end]`: (start, stop).
fn vector(
    data: &[u8],
    pos: usize,
    end: usize,
    width: usize,
    what: &str,
) -> Result<(usize, usize), DecodeError> {
    if pos + width > end {
        return Err(err(format!("TLS: truncated {what} length")));
    }
    let n = data[pos..pos + width]
        .iter()
        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
    let start = pos + width;
    let stop = start + n;
    if stop > end {
        return Err(err(format!(
            "TLS: {what} overruns its container ({n} bytes)"
        )));
    }
    Ok((start, stop))
}

fn u16_at(data: &[u8], pos: usize) -> u16 {
    u16::from_be_bytes([data[pos], data[pos + 1]])
}

fn u16_list(data: &[u8], start: usize, stop: usize, what: &str) -> Result<Vec<u16>, DecodeError> {
    if (stop - start) % 2 != 0 {
        return Err(err(format!("TLS: odd-length {what} list")));
    }
    Ok(data[start..stop]
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect())
}

/// Python's `bytes.decode("ascii", "backslashreplace")`.
fn ascii_text(raw: &[u8]) -> String {
    let mut s = String::with_capacity(raw.len());
    for &b in raw {
        if b.is_ascii() {
            s.push(char::from(b));
        } else {
            let _ = write!(s, "\\x{b:02x}");
        }
    }
    s
}

/// Host names are ASCII on the wire (IDNs travel as punycode); anything else is kept
/// visible rather than guessed at.
fn host_text(raw: &[u8]) -> String {
    let s = ascii_text(raw).to_ascii_lowercase();
    s.trim_end_matches('.').to_string()
}

/// JA4 'a' section ALPN part: first and last character of the first ALPN value.
fn alpn_chars(first: &[u8]) -> String {
    let (Some(&a), Some(&z)) = (first.first(), first.last()) else {
        return "00".to_string();
    };
    if a.is_ascii_alphanumeric() && z.is_ascii_alphanumeric() {
        return format!("{}{}", char::from(a), char::from(z));
    }
    // FoxIO JA4: a non-alphanumeric first or last byte switches to the hex form.
    format!("{:x}{:x}", a >> 4, z & 0x0F)
}

// Fingerprints are built for every ClientHello: the digits are written here rather than
// through `fmt`, whose machinery costs several times the hashing itself.
const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

fn push_hex4(s: &mut String, v: u16) {
    for shift in [12, 8, 4, 0] {
        s.push(char::from(HEX_DIGITS[usize::from((v >> shift) & 0xF)]));
    }
}

fn push_decimal(s: &mut String, mut v: u32) {
    let mut digits = [0u8; 10];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    s.extend(digits[i..].iter().map(|&d| char::from(d)));
}

fn hex_list(values: &[u16]) -> String {
    let mut s = String::with_capacity(values.len() * 5);
    for (i, &v) in values.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        push_hex4(&mut s, v);
    }
    s
}

fn dash_list<T: Copy + Into<u32>>(s: &mut String, values: &[T]) {
    for (i, &v) in values.iter().enumerate() {
        if i > 0 {
            s.push('-');
        }
        push_decimal(s, v.into());
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(HEX_DIGITS[usize::from(b >> 4)]));
        s.push(char::from(HEX_DIGITS[usize::from(b & 0xF)]));
    }
    s
}

/// The first 12 hex digits of the SHA-256 of `text`.
fn sha12(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes())[..6])
}

fn no_grease(values: &[u16]) -> Vec<u16> {
    values.iter().copied().filter(|&v| !is_grease(v)).collect()
}

/// One ClientHello body (after the handshake header).
pub(super) fn client_hello(
    record_version: u16,
    data: &[u8],
    quic: bool,
) -> Result<ClientHelloInfo, DecodeError> {
    let end = data.len();
    if end < 34 {
        return Err(err("TLS: ClientHello truncated before session id"));
    }
    let hs_version = u16_at(data, 0);
    let mut pos = 34; // version + 32-byte random
    (_, pos) = vector(data, pos, end, 1, "session id")?;
    let (c_start, c_stop) = vector(data, pos, end, 2, "cipher suites")?;
    let ciphers = u16_list(data, c_start, c_stop, "cipher suite")?;
    (_, pos) = vector(data, c_stop, end, 1, "compression methods")?;

    let mut ext_types: Vec<u16> = Vec::new();
    // Outer None: no host_name entry seen yet; Some("") is a name that was all dots, which
    // still stops the search (as in tls.py) and reports no SNI.
    let mut sni: Option<String> = None;
    let mut alpn: Vec<String> = Vec::new();
    let mut alpn_first: Option<&[u8]> = None;
    // Groups and signature algorithms are only fingerprinted, so GREASE leaves them here.
    let mut groups_ng: Vec<u16> = Vec::new();
    let mut point_formats: &[u8] = &[];
    let mut sig_ng: Vec<u16> = Vec::new();
    let mut versions: Vec<u16> = Vec::new();
    if pos < end {
        let (e_start, e_stop) = vector(data, pos, end, 2, "extensions")?;
        if e_stop != end {
            return Err(err("TLS: bytes after ClientHello extensions"));
        }
        pos = e_start;
        while pos < e_stop {
            if pos + 4 > e_stop {
                return Err(err("TLS: truncated extension header"));
            }
            let etype = u16_at(data, pos);
            let x_len = usize::from(u16_at(data, pos + 2));
            let x_start = pos + 4;
            pos = x_start + x_len;
            if pos > e_stop {
                return Err(err(format!(
                    "TLS: extension {etype} overruns its container ({x_len} bytes)"
                )));
            }
            ext_types.push(etype);
            if x_len == 0 {
                continue;
            }
            match etype {
                EXT_SERVER_NAME => {
                    let (l_start, l_stop) = vector(data, x_start, pos, 2, "server name list")?;
                    let mut q = l_start;
                    while q < l_stop {
                        let name_type = data[q];
                        let (n_start, n_stop) = vector(data, q + 1, l_stop, 2, "server name")?;
                        q = n_stop;
                        if name_type == 0 && sni.is_none() && n_start < n_stop {
                            sni = Some(host_text(&data[n_start..n_stop]));
                        }
                    }
                }
                EXT_ALPN => {
                    let (l_start, l_stop) = vector(data, x_start, pos, 2, "ALPN list")?;
                    let mut q = l_start;
                    while q < l_stop {
                        let (p_start, p_stop) = vector(data, q, l_stop, 1, "ALPN protocol")?;
                        q = p_stop;
                        let proto = &data[p_start..p_stop];
                        if alpn_first.is_none() {
                            alpn_first = Some(proto);
                        }
                        alpn.push(ascii_text(proto));
                    }
                }
                EXT_SUPPORTED_GROUPS => {
                    let (l_start, l_stop) = vector(data, x_start, pos, 2, "supported groups")?;
                    groups_ng = u16_list(data, l_start, l_stop, "supported group")?;
                    groups_ng.retain(|&v| !is_grease(v));
                }
                EXT_EC_POINT_FORMATS => {
                    let (l_start, l_stop) = vector(data, x_start, pos, 1, "EC point formats")?;
                    point_formats = &data[l_start..l_stop];
                }
                EXT_SIGNATURE_ALGORITHMS => {
                    let (l_start, l_stop) = vector(data, x_start, pos, 2, "signature algorithms")?;
                    sig_ng = u16_list(data, l_start, l_stop, "signature algorithm")?;
                    sig_ng.retain(|&v| !is_grease(v));
                }
                EXT_SUPPORTED_VERSIONS => {
                    let (l_start, l_stop) = vector(data, x_start, pos, 1, "supported versions")?;
                    versions = u16_list(data, l_start, l_stop, "supported version")?;
                }
                _ => {}
            }
        }
    }

    let ciphers_ng = no_grease(&ciphers);
    let exts_ng = no_grease(&ext_types);
    let mut versions_ng = versions;
    versions_ng.retain(|&v| !is_grease(v));

    let mut ja3 = String::with_capacity(
        8 + 6 * (ciphers_ng.len() + exts_ng.len() + groups_ng.len() + point_formats.len()),
    );
    push_decimal(&mut ja3, u32::from(hs_version));
    ja3.push(',');
    dash_list(&mut ja3, &ciphers_ng);
    ja3.push(',');
    dash_list(&mut ja3, &exts_ng);
    ja3.push(',');
    dash_list(&mut ja3, &groups_ng);
    ja3.push(',');
    dash_list(&mut ja3, point_formats);
    let ja3_hash = hex(&Md5::digest(ja3.as_bytes()));

    let ja4_ver = versions_ng.iter().copied().max().unwrap_or(hs_version);
    // JA4 'a': protocol, version, SNI or not, two-digit counts, ALPN characters.
    let mut ja4_a = String::with_capacity(10);
    ja4_a.push(if quic { 'q' } else { 't' });
    ja4_a.push_str(ja4_version_code(ja4_ver));
    ja4_a.push(if exts_ng.contains(&EXT_SERVER_NAME) {
        'd'
    } else {
        'i'
    });
    for count in [ciphers_ng.len(), exts_ng.len()] {
        let count = count.min(99) as u8;
        ja4_a.push(char::from(b'0' + count / 10));
        ja4_a.push(char::from(b'0' + count % 10));
    }
    ja4_a.push_str(&alpn_first.map_or_else(|| "00".to_string(), alpn_chars));
    let mut sorted_ciphers = ciphers_ng;
    sorted_ciphers.sort_unstable();
    let cipher_text = hex_list(&sorted_ciphers);
    let mut sorted_exts: Vec<u16> = exts_ng
        .iter()
        .copied()
        .filter(|&e| e != EXT_SERVER_NAME && e != EXT_ALPN)
        .collect();
    sorted_exts.sort_unstable();
    let mut ext_text = hex_list(&sorted_exts);
    if !sig_ng.is_empty() {
        ext_text.push('_');
        for (i, &v) in sig_ng.iter().enumerate() {
            if i > 0 {
                ext_text.push(',');
            }
            push_hex4(&mut ext_text, v);
        }
    }
    let join = |parts: [&str; 3]| {
        let mut s = String::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                s.push('_');
            }
            s.push_str(p);
        }
        s
    };
    let ja4_b = if cipher_text.is_empty() {
        EMPTY_HASH.to_string()
    } else {
        sha12(&cipher_text)
    };
    let ja4_c = if ext_text.is_empty() {
        EMPTY_HASH.to_string()
    } else {
        sha12(&ext_text)
    };
    let ja4 = join([&ja4_a, &ja4_b, &ja4_c]);
    let ja4_r = join([&ja4_a, &cipher_text, &ext_text]);
    Ok(ClientHelloInfo {
        sni: sni.filter(|s| !s.is_empty()),
        alpn,
        record_version,
        handshake_version: hs_version,
        supported_versions: versions_ng,
        ja3,
        ja3_hash,
        ja4,
        ja4_r,
        cipher_suites: ciphers,
        extensions: ext_types,
    })
}

/// Parse one complete ServerHello message (4-byte header included); returns the event and
/// whether it is a HelloRetryRequest.
pub fn parse_server_hello(data: &[u8]) -> Result<(ServerHelloInfo, bool), DecodeError> {
    let end = data.len();
    if end < 4 || data[0] != HS_SERVER_HELLO {
        return Err(err("TLS: not a ServerHello handshake message"));
    }
    if 4 + super::u24(&data[1..4]) != end {
        return Err(err("TLS: ServerHello length does not match"));
    }
    if end < 38 {
        return Err(err("TLS: ServerHello truncated before session id"));
    }
    let mut version = u16_at(data, 4);
    let hrr = data[6..38] == HRR_RANDOM;
    let (_, mut pos) = vector(data, 38, end, 1, "session id")?;
    if pos + 3 > end {
        return Err(err("TLS: ServerHello truncated at cipher suite"));
    }
    let cipher = u16_at(data, pos);
    pos += 3; // cipher + compression method
    let mut alpn = None;
    if pos < end {
        let (e_start, e_stop) = vector(data, pos, end, 2, "extensions")?;
        if e_stop != end {
            return Err(err("TLS: bytes after ServerHello extensions"));
        }
        pos = e_start;
        while pos < e_stop {
            if pos + 4 > e_stop {
                return Err(err("TLS: truncated extension header"));
            }
            let etype = u16_at(data, pos);
            let (x_start, x_stop) = vector(data, pos + 2, e_stop, 2, "extension")?;
            pos = x_stop;
            if etype == EXT_SUPPORTED_VERSIONS && x_stop - x_start == 2 {
                version = u16_at(data, x_start);
            } else if etype == EXT_ALPN && x_start < x_stop {
                let (l_start, l_stop) = vector(data, x_start, x_stop, 2, "ALPN list")?;
                let (p_start, p_stop) = vector(data, l_start, l_stop, 1, "ALPN protocol")?;
                alpn = Some(ascii_text(&data[p_start..p_stop]));
            }
        }
    }
    Ok((
        ServerHelloInfo {
            version,
            cipher_suite: cipher,
            alpn,
        },
        hrr,
    ))
}

#[cfg(test)]
pub(super) fn sha12_for_tests(text: &str) -> String {
    sha12(text)
}

#[cfg(test)]
mod digit_tests {
    use super::*;

    #[test]
    fn digits_match_fmt() {
        for v in 0..=u16::MAX {
            let (mut dec, mut h4) = (String::new(), String::new());
            push_decimal(&mut dec, u32::from(v));
            push_hex4(&mut h4, v);
            assert_eq!(dec, format!("{v}"));
            assert_eq!(h4, format!("{v:04x}"));
        }
        let mut dec = String::new();
        push_decimal(&mut dec, u32::MAX);
        assert_eq!(dec, u32::MAX.to_string());
        let all: Vec<u8> = (0..=255).collect();
        let want: String = all.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex(&all), want);
        let mut dashed = String::new();
        dash_list(&mut dashed, &[0u8, 1, 255]);
        assert_eq!(dashed, "0-1-255");
        dash_list::<u16>(&mut dashed, &[]);
        assert_eq!(dashed, "0-1-255");
        assert_eq!(hex_list(&[0x0a0a, 0x1301]), "0a0a,1301");
        let full = hex(&Sha256::digest(b"abc"));
        assert_eq!(sha12("abc"), full[..12]);
    }
}
