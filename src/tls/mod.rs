//! TLS sniffing of one direction of a TCP stream: the ClientHello (SNI, ALPN, versions,
//! JA3, JA4), the ServerHello, the first certificate's names (TLS <= 1.2), and the record
//! headers after the handshake.
//!
//! Behaviour of the retired Python decoder (its tests, with the JA3/JA4 vectors, now run
//! here): records are reassembled across segments and handshake messages across records,
//! with explicit caps; `midstream` starts at any record boundary of a flow first seen
//! mid-connection.
//!
//! The hellos are parsed by hand (`hello`) rather than with tls-parser: JA3/JA4 need every
//! extension in wire order, GREASE included, and tls.py's exact rejections (odd-length
//! lists, overrunning vectors, bytes after the extensions); tls-parser's typed extension
//! parse fails or succeeds on different inputs, which would make the fingerprints and the
//! stream's fate drift from the reference. Certificate names come from a bounded DER walk
//! (`cert`) instead of x509-parser, which is large for three strings.

mod cert;
mod hello;
pub mod shape;
#[cfg(test)]
mod tests;

use crate::error::DecodeError;

pub use cert::parse_certificate_names;
pub use hello::{is_grease, ja4_version_code, parse_server_hello};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientHelloInfo {
    pub sni: Option<String>,
    pub alpn: Vec<String>,
    pub record_version: u16,
    pub handshake_version: u16,
    /// supported_versions extension, GREASE removed.
    pub supported_versions: Vec<u16>,
    /// The JA3 string and its md5 hex.
    pub ja3: String,
    pub ja3_hash: String,
    /// JA4 (e.g. "t13i310900_e8f1e7e78f70_5ac7197df9d2") and its raw (unhashed) form.
    pub ja4: String,
    pub ja4_r: String,
    pub cipher_suites: Vec<u16>,
    pub extensions: Vec<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerHelloInfo {
    /// Negotiated version (supported_versions wins over the legacy field).
    pub version: u16,
    pub cipher_suite: u16,
    pub alpn: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CertNames {
    pub subject_cn: Option<String>,
    pub san_dns: Vec<String>,
    pub issuer_cn: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsEvent {
    ClientHello(Box<ClientHelloInfo>),
    ServerHello(ServerHelloInfo),
    Certificate(CertNames),
    /// A record header seen after the handshake messages (23 = application data).
    Record {
        content_type: u8,
        length: u16,
    },
}

/// RFC 5246 6.2.3: a TLSCiphertext fragment is at most 2^14 + 2048 bytes.
pub const MAX_RECORD: usize = (1 << 14) + 2048;
/// Largest handshake message reassembled; bigger ones are skipped and counted.
pub const DEFAULT_MAX_HANDSHAKE: usize = 65536;

const CT_CHANGE_CIPHER_SPEC: u8 = 20;
const CT_HANDSHAKE: u8 = 22;
const CT_APPLICATION_DATA: u8 = 23;
const CT_HEARTBEAT: u8 = 24;

const HS_CLIENT_HELLO: u8 = 1;
const HS_SERVER_HELLO: u8 = 2;
const HS_CERTIFICATE: u8 = 11;
const TLS13: u16 = 0x0304;

/// A mid-stream join may land inside a maximal record; two of them bound the resync scan.
const MAX_RESYNC_SCAN: usize = 2 * (MAX_RECORD + 5);

/// Handshake types a plaintext handshake stream may carry (RFC 5246, 6066, 8446, 5077, 8879).
fn known_handshake_type(t: u8) -> bool {
    matches!(
        t,
        0 | 1 | 2 | 3 | 4 | 5 | 6 | 8 | 11 | 12 | 13 | 14 | 15 | 16 | 20..=25 | 254
    )
}

/// One direction of a TLS stream.
pub struct TlsSniffer {
    pub midstream: bool,
    /// Handshake messages skipped for exceeding the handshake cap.
    pub overflow: u64,
    max_handshake: usize,
    /// Unconsumed stream bytes are `buf[off..]`: consuming moves `off`, so a record that
    /// arrives a byte at a time is not re-copied per byte.
    buf: Vec<u8>,
    off: usize,
    /// Body bytes of an opaque record still to drop (never buffered).
    skip: usize,
    /// Handshake reassembly: `hs[hs_off..]` is the unconsumed part.
    hs: Vec<u8>,
    hs_off: usize,
    /// Bytes of an oversized handshake message still to drop.
    hs_skip: usize,
    hs_record_version: u16,
    synced: bool,
    scanned: usize,
    /// Mid-stream we cannot know whether handshake records are still plaintext.
    encrypted: bool,
    /// After a CCS a plaintext hello can still follow (TLS 1.3 middlebox-compatibility CCS
    /// before a second ClientHello, or after a HelloRetryRequest): parsed tolerantly.
    plain_hello_ok: bool,
    server_version: Option<u16>,
    cert_done: bool,
    failed: bool,
}

impl TlsSniffer {
    pub fn new(midstream: bool) -> Self {
        Self::with_max_handshake(midstream, DEFAULT_MAX_HANDSHAKE)
    }

    /// As `new`, with another cap on one reassembled handshake message.
    pub fn with_max_handshake(midstream: bool, max_handshake: usize) -> Self {
        TlsSniffer {
            midstream,
            overflow: 0,
            max_handshake,
            buf: Vec::new(),
            off: 0,
            skip: 0,
            hs: Vec::new(),
            hs_off: 0,
            hs_skip: 0,
            hs_record_version: 0,
            synced: !midstream,
            scanned: 0,
            encrypted: midstream,
            plain_hello_ok: midstream,
            server_version: None,
            cert_done: false,
            failed: false,
        }
    }

    /// Bytes held for reassembly (record in progress plus handshake in progress).
    pub fn buffered(&self) -> usize {
        (self.buf.len() - self.off) + (self.hs.len() - self.hs_off)
    }

    /// Bytes in (in stream order), events appended to `out`. After an Err the sniffer is
    /// dead and every later call returns Err.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<TlsEvent>) -> Result<(), DecodeError> {
        if self.failed {
            return Err(DecodeError::new("TLS: decoder already failed"));
        }
        let r = self.feed_inner(data, out);
        if r.is_err() {
            self.failed = true;
            self.buf = Vec::new();
            self.off = 0;
            self.hs = Vec::new();
            self.hs_off = 0;
        }
        r
    }

    fn feed_inner(&mut self, data: &[u8], out: &mut Vec<TlsEvent>) -> Result<(), DecodeError> {
        let mut data = data;
        if self.skip > 0 {
            let k = self.skip.min(data.len());
            self.skip -= k;
            data = &data[k..];
            if data.is_empty() {
                return Ok(());
            }
        }
        self.buf.extend_from_slice(data);
        if !self.synced && !self.resync()? {
            return Ok(());
        }
        self.records(out)?;
        self.compact();
        Ok(())
    }

    fn compact(&mut self) {
        if self.off == self.buf.len() {
            self.buf.clear();
            self.off = 0;
        } else if self.off > 4096 && self.off * 2 > self.buf.len() {
            self.buf.drain(..self.off);
            self.off = 0;
        }
    }

    /// Find a plausible record boundary in the buffer; true once synchronised.
    fn resync(&mut self) -> Result<bool, DecodeError> {
        let b = &self.buf[self.off..];
        let n = b.len();
        if n < 5 {
            return Ok(false);
        }
        let last = n - 5;
        let mut i = 0usize;
        let mut verdict: Option<(usize, bool)> = None;
        while i <= last {
            // The version's major byte is 3: jump from one 0x03 to the next.
            let Some(rel) = memchr::memchr(3, &b[i + 1..last + 2]) else {
                break;
            };
            i += rel; // the candidate header starts one byte before the 0x03
            if let Some(length) = plausible(b, i) {
                let nxt = i + 5 + length;
                // A whole hello confirms itself; anything else needs the next header. The
                // decision only looks at bytes up to the next header, so it does not depend
                // on how the stream was cut into segments.
                if (nxt <= n && whole_hello(b, i, length))
                    || (nxt + 5 <= n && plausible(b, nxt).is_some())
                {
                    verdict = Some((i, true));
                    break;
                }
                if nxt + 5 > n {
                    // Cannot confirm yet: keep the candidate and wait for more bytes.
                    verdict = Some((i, false));
                    break;
                }
            }
            i += 1;
        }
        let (drop, synced) = verdict.unwrap_or((n.saturating_sub(4), false));
        self.off += drop;
        self.scanned += drop;
        if self.scanned > MAX_RESYNC_SCAN {
            return Err(DecodeError::new(format!(
                "TLS: no record boundary within {} bytes",
                self.scanned
            )));
        }
        if !synced {
            self.compact();
        }
        self.synced = synced;
        Ok(synced)
    }

    /// Consume whole records from the buffer.
    fn records(&mut self, out: &mut Vec<TlsEvent>) -> Result<(), DecodeError> {
        loop {
            let b = &self.buf[self.off..];
            if b.len() < 5 {
                return Ok(());
            }
            let ctype = b[0];
            let version = u16::from_be_bytes([b[1], b[2]]);
            let length = usize::from(u16::from_be_bytes([b[3], b[4]]));
            if !(CT_CHANGE_CIPHER_SPEC..=CT_HEARTBEAT).contains(&ctype) {
                return Err(DecodeError::new(format!(
                    "TLS: bad record content type {ctype}"
                )));
            }
            if version >> 8 != 3 || version & 0xFF > 4 {
                return Err(DecodeError::new(format!(
                    "TLS: bad record version 0x{version:04x}"
                )));
            }
            if length > MAX_RECORD {
                return Err(DecodeError::new(format!(
                    "TLS: record length {length} exceeds 2^14+2048"
                )));
            }
            let avail = b.len() - 5;
            if ctype == CT_HANDSHAKE && (!self.encrypted || self.plain_hello_ok) {
                if avail < length {
                    return Ok(()); // the whole record is needed to parse it
                }
                let start = self.off + 5;
                self.off = start + length;
                // The record body is moved out so the handshake code can borrow self; the
                // buffer is put back untouched.
                let buf = std::mem::take(&mut self.buf);
                let body = &buf[start..start + length];
                let r = if !self.encrypted {
                    if self.hs_off == self.hs.len() {
                        self.hs_record_version = version;
                    }
                    self.handshake(body, out)
                } else {
                    if !self.tolerant_hello(body, version, out) {
                        out.push(record(ctype, length));
                    }
                    Ok(())
                };
                self.buf = buf;
                r?;
                continue;
            }
            out.push(record(ctype, length));
            if ctype == CT_CHANGE_CIPHER_SPEC {
                self.encrypted = true;
                self.clear_hs();
            }
            if avail < length {
                self.skip = length - avail;
                self.off = self.buf.len();
                return Ok(());
            }
            self.off += 5 + length;
        }
    }

    fn clear_hs(&mut self) {
        self.hs.clear();
        self.hs_off = 0;
    }

    /// A handshake record after a CCS may be a plaintext hello or ciphertext: a hello that
    /// parses is taken, anything else is an opaque record.
    fn tolerant_hello(&mut self, body: &[u8], version: u16, out: &mut Vec<TlsEvent>) -> bool {
        if body.len() < 4 || !matches!(body[0], HS_CLIENT_HELLO | HS_SERVER_HELLO) {
            return false;
        }
        if 4 + u24(&body[1..4]) != body.len() {
            return false;
        }
        self.message(body, version, out).is_ok()
    }

    fn handshake(&mut self, body: &[u8], out: &mut Vec<TlsEvent>) -> Result<(), DecodeError> {
        let mut body = body;
        if self.hs_skip > 0 {
            let k = self.hs_skip.min(body.len());
            self.hs_skip -= k;
            body = &body[k..];
        }
        if self.hs_off == self.hs.len() {
            self.clear_hs();
        } else if self.hs_off > 0 {
            self.hs.drain(..self.hs_off);
            self.hs_off = 0;
        }
        self.hs.extend_from_slice(body);
        while self.hs.len() - self.hs_off >= 4 && !self.encrypted {
            let h = &self.hs[self.hs_off..];
            let htype = h[0];
            if !known_handshake_type(htype) {
                return Err(DecodeError::new(format!(
                    "TLS: unknown handshake type {htype}"
                )));
            }
            let hlen = u24(&h[1..4]);
            let have = h.len();
            if hlen > self.max_handshake {
                self.overflow += 1;
                let total = 4 + hlen;
                if total <= have {
                    self.hs_off += total;
                } else {
                    self.hs_skip = total - have;
                    self.clear_hs();
                }
                continue;
            }
            if have < 4 + hlen {
                break;
            }
            let msg = h[..4 + hlen].to_vec();
            self.hs_off += 4 + hlen;
            let rv = self.hs_record_version;
            self.message(&msg, rv, out)?;
        }
        if self.hs_off == self.hs.len() {
            self.clear_hs();
        }
        Ok(())
    }

    fn message(
        &mut self,
        msg: &[u8],
        record_version: u16,
        out: &mut Vec<TlsEvent>,
    ) -> Result<(), DecodeError> {
        match msg[0] {
            HS_CLIENT_HELLO => {
                let hello = parse_client_hello(record_version, &msg[4..])?;
                if hello.supported_versions.contains(&TLS13) {
                    self.plain_hello_ok = true;
                }
                out.push(TlsEvent::ClientHello(Box::new(hello)));
            }
            HS_SERVER_HELLO => {
                let (sh, hrr) = parse_server_hello(msg)?;
                if hrr {
                    self.plain_hello_ok = true;
                    return Ok(());
                }
                self.server_version = Some(sh.version);
                self.plain_hello_ok = false;
                if sh.version >= TLS13 {
                    // Everything after a TLS 1.3 ServerHello is encrypted, whatever its type.
                    self.encrypted = true;
                    self.clear_hs();
                }
                out.push(TlsEvent::ServerHello(sh));
            }
            HS_CERTIFICATE if !self.cert_done => {
                if self.server_version.is_some_and(|v| v >= TLS13) {
                    return Ok(());
                }
                self.cert_done = true;
                if let Some(names) = parse_certificate_names(msg) {
                    out.push(TlsEvent::Certificate(names));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

fn record(content_type: u8, length: usize) -> TlsEvent {
    TlsEvent::Record {
        content_type,
        // The caller checked length <= MAX_RECORD, which fits in u16.
        length: u16::try_from(length).unwrap_or(u16::MAX),
    }
}

fn u24(b: &[u8]) -> usize {
    (usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2])
}

/// Record length if b[i..i+5] looks like a TLS record header (resync rules).
fn plausible(b: &[u8], i: usize) -> Option<usize> {
    let ctype = b[i];
    if !(CT_CHANGE_CIPHER_SPEC..=CT_APPLICATION_DATA).contains(&ctype)
        || b[i + 1] != 3
        || b[i + 2] > 4
    {
        return None;
    }
    let length = (usize::from(b[i + 3]) << 8) | usize::from(b[i + 4]);
    if length > MAX_RECORD || (length == 0 && ctype != CT_APPLICATION_DATA) {
        return None;
    }
    Some(length)
}

/// b[i..] holds a handshake record carrying exactly one Client- or ServerHello.
fn whole_hello(b: &[u8], i: usize, length: usize) -> bool {
    b[i] == CT_HANDSHAKE
        && length >= 4 + 38
        && matches!(b[i + 5], HS_CLIENT_HELLO | HS_SERVER_HELLO)
        && 4 + u24(&b[i + 6..i + 9]) == length
}

/// Parse one complete ClientHello handshake message body (after the 4-byte handshake
/// header), with the record version it came in; for tests and the tshark oracle.
pub fn parse_client_hello(
    record_version: u16,
    body: &[u8],
) -> Result<ClientHelloInfo, DecodeError> {
    hello::client_hello(record_version, body, false)
}

/// As `parse_client_hello`, for a ClientHello carried in QUIC CRYPTO frames (JA4 "q").
pub fn parse_client_hello_quic(body: &[u8]) -> Result<ClientHelloInfo, DecodeError> {
    hello::client_hello(0, body, true)
}
