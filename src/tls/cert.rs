//! Names from the first certificate of a TLS <= 1.2 Certificate message.
//!
//! A small DER walk of a fixed path through the certificate (no recursion, every length
//! checked against its container) instead of x509-parser: three strings do not justify a
//! full X.509 stack on hostile input. Like tls.py, which gives up on anything the
//! certificate library rejects, a structurally broken certificate yields no names.

use super::{CertNames, HS_CERTIFICATE};

const TAG_BOOLEAN: u8 = 0x01;
const TAG_INTEGER: u8 = 0x02;
const TAG_BIT_STRING: u8 = 0x03;
const TAG_OCTET_STRING: u8 = 0x04;
const TAG_OID: u8 = 0x06;
const TAG_SEQUENCE: u8 = 0x30;
const TAG_SET: u8 = 0x31;
/// GeneralName dNSName: [2] IMPLICIT IA5String.
const TAG_DNS_NAME: u8 = 0x82;

const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
const OID_SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1D, 0x11];

/// Most extensions a certificate may carry before it is refused (bounds the duplicate check).
const MAX_EXTENSIONS: usize = 64;

/// One DER element: tag, contents, and the rest of the input after it.
fn element(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = data.split_first()?;
    // High-tag-number form never occurs on the path walked here.
    if tag & 0x1F == 0x1F {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7F);
        // 0x80 is BER's indefinite length, not DER; four bytes cover any real certificate.
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if len > rest.len() {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

fn expect(data: &[u8], want: u8) -> Option<(&[u8], &[u8])> {
    let (tag, body, rest) = element(data)?;
    (tag == want).then_some((body, rest))
}

/// A directory string as text (cryptography's decoding of the common string types).
fn dir_string(tag: u8, raw: &[u8]) -> String {
    match tag {
        // BMPString: UTF-16BE.
        0x1E => {
            let units: Vec<u16> = raw
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16_lossy(&units)
        }
        // UniversalString: UTF-32BE.
        0x1C => raw
            .chunks_exact(4)
            .map(|c| {
                char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                    .unwrap_or(char::REPLACEMENT_CHARACTER)
            })
            .collect(),
        // T61String: read as latin-1.
        0x14 => raw.iter().map(|&b| char::from(b)).collect(),
        _ => String::from_utf8_lossy(raw).into_owned(),
    }
}

/// The first commonName of a Name: outer None for a broken Name, inner None for no CN.
fn common_name(name: &[u8]) -> Option<Option<String>> {
    let mut rdns = name;
    let mut found = None;
    while !rdns.is_empty() {
        let (set, rest) = expect(rdns, TAG_SET)?;
        rdns = rest;
        let mut atvs = set;
        while !atvs.is_empty() {
            let (atv, rest) = expect(atvs, TAG_SEQUENCE)?;
            atvs = rest;
            let (oid, value) = expect(atv, TAG_OID)?;
            let (vtag, vbody, tail) = element(value)?;
            if !tail.is_empty() {
                return None;
            }
            if found.is_none() && oid == OID_COMMON_NAME {
                found = Some(dir_string(vtag, vbody));
            }
        }
    }
    Some(found)
}

fn san_dns_names(ext_value: &[u8], out: &mut Vec<String>) -> Option<()> {
    let (mut names, tail) = expect(ext_value, TAG_SEQUENCE)?;
    if !tail.is_empty() {
        return None;
    }
    while !names.is_empty() {
        let (tag, body, rest) = element(names)?;
        names = rest;
        if tag == TAG_DNS_NAME {
            let text = String::from_utf8_lossy(body).to_lowercase();
            out.push(text.trim_end_matches('.').to_string());
        }
    }
    Some(())
}

/// Names from one DER certificate; None when its structure is not a certificate's.
pub(super) fn names_from_der(der: &[u8]) -> Option<CertNames> {
    let (cert, tail) = expect(der, TAG_SEQUENCE)?;
    if !tail.is_empty() {
        return None;
    }
    let (tbs, rest) = expect(cert, TAG_SEQUENCE)?;
    let (_sig_alg, rest) = expect(rest, TAG_SEQUENCE)?;
    let (_sig, rest) = expect(rest, TAG_BIT_STRING)?;
    if !rest.is_empty() {
        return None;
    }

    let mut p = tbs;
    if p.first() == Some(&0xA0) {
        let (_, _, rest) = element(p)?;
        p = rest;
    }
    let (_serial, rest) = expect(p, TAG_INTEGER)?;
    let (_alg, rest) = expect(rest, TAG_SEQUENCE)?;
    let (issuer, rest) = expect(rest, TAG_SEQUENCE)?;
    let (_validity, rest) = expect(rest, TAG_SEQUENCE)?;
    let (subject, rest) = expect(rest, TAG_SEQUENCE)?;
    let (_spki, mut rest) = expect(rest, TAG_SEQUENCE)?;
    let issuer_cn = common_name(issuer)?;
    let subject_cn = common_name(subject)?;

    let mut san_dns = Vec::new();
    while !rest.is_empty() {
        let (tag, body, after) = element(rest)?;
        rest = after;
        match tag {
            // issuerUniqueID, subjectUniqueID
            0x81 | 0x82 | 0xA1 | 0xA2 => {}
            0xA3 => {
                let (mut exts, tail) = expect(body, TAG_SEQUENCE)?;
                if !tail.is_empty() {
                    return None;
                }
                // A repeated extension makes the certificate library refuse the whole
                // extension list; tls.py then reports no names at all.
                let mut seen: Vec<&[u8]> = Vec::new();
                while !exts.is_empty() {
                    let (ext, after) = expect(exts, TAG_SEQUENCE)?;
                    exts = after;
                    let (oid, mut e) = expect(ext, TAG_OID)?;
                    if seen.contains(&oid) || seen.len() >= MAX_EXTENSIONS {
                        return None;
                    }
                    seen.push(oid);
                    if e.first() == Some(&TAG_BOOLEAN) {
                        let (_, after) = expect(e, TAG_BOOLEAN)?;
                        e = after;
                    }
                    let (value, tail) = expect(e, TAG_OCTET_STRING)?;
                    if !tail.is_empty() {
                        return None;
                    }
                    if oid == OID_SUBJECT_ALT_NAME {
                        san_dns_names(value, &mut san_dns)?;
                    }
                }
            }
            _ => return None,
        }
    }
    Some(CertNames {
        subject_cn: subject_cn.map(|s| s.to_lowercase()),
        san_dns,
        issuer_cn,
    })
}

/// Names from the first certificate of a TLS <= 1.2 Certificate message (4-byte handshake
/// header included); None if unreadable.
pub fn parse_certificate_names(data: &[u8]) -> Option<CertNames> {
    if data.len() < 10 || data[0] != HS_CERTIFICATE {
        return None;
    }
    let list_len = super::u24(&data[4..7]);
    let first_len = super::u24(&data[7..10]);
    if list_len < 3 + first_len || 10 + first_len > data.len() {
        return None;
    }
    names_from_der(&data[10..10 + first_len])
}
