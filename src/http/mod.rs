//! HTTP/1.x heads of one direction of a TCP stream, and small bodies (a JSON-RPC body is
//! handed up whole, capped) — getwork, getblocktemplate, eth_getWork and the mining headers.
//!
//! Behaviour of the retired Python decoder (its tests now run here): httparse for the head,
//! Content-Length (ASCII digits only: a Unicode digit is a malformed header, never a crash)
//! and chunked bodies, pipelined messages, caps on head and body size.
//!
//! Linear work: unconsumed bytes are `buf[off..]`, and the search for the end of a head or
//! of a chunk line resumes where the previous feed stopped, so a head that arrives a byte
//! at a time is scanned once; httparse runs once per head, when its blank line is in.

#[cfg(test)]
mod tests;

use std::io::Read as _;

use crate::error::DecodeError;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HttpHead {
    pub is_request: bool,
    pub method: Option<String>,
    pub path: Option<String>,
    pub status: Option<u16>,
    pub host: Option<String>,
    pub user_agent: Option<String>,
    pub content_type: Option<String>,
    pub x_mining_extensions: Option<String>,
    pub x_stratum: Option<String>,
    pub x_long_polling: Option<String>,
    /// User part of Basic authorization (a miner's login).
    pub authorization_user: Option<String>,
    pub upgrade: Option<String>,
    /// A 101 that agreed permessage-deflate (`Sec-WebSocket-Extensions`).
    pub ws_deflate: bool,
    /// The body when it may be JSON-RPC (as http.py decides), else empty; capped.
    /// It is the decoded (gunzipped/inflated) body with surrounding whitespace removed,
    /// starting with `{` or `[`.
    pub body: Vec<u8>,
}

/// Longest text field handed up, in characters.
pub const MAX_TEXT: usize = 512;
pub const DEFAULT_MAX_HEAD: usize = 16384;
pub const DEFAULT_MAX_BODY: usize = 65536;
const MAX_CHUNK_LINE: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    BodyLength,
    ChunkLine,
    ChunkData,
    ChunkCrlf,
    Trailers,
    UntilClose,
    /// After an upgrade, CONNECT or an oversized head: the bytes are not HTTP any more.
    Tunnel,
}

/// The header fields the sniffer reads; the first occurrence of each wins, as a lenient
/// server would act on it.
#[derive(Debug, Default)]
struct Fields {
    host: Option<String>,
    user_agent: Option<String>,
    content_type: Option<String>,
    x_mining_extensions: Option<String>,
    x_stratum: Option<String>,
    x_long_polling: Option<String>,
    authorization: Option<String>,
    upgrade: Option<String>,
    ws_extensions: Option<String>,
    connection: Option<String>,
    transfer_encoding: Option<String>,
    content_length: Option<String>,
    content_encoding: Option<String>,
}

#[derive(Debug)]
struct Head {
    is_request: bool,
    method: Option<String>,
    path: Option<String>,
    status: Option<u16>,
    fields: Fields,
}

/// One direction of an HTTP/1.x stream.
pub struct HttpSniffer {
    /// Bodies cut at the body cap, heads over the head cap, bodies inflating past the cap.
    pub overflow: u64,
    /// Messages handed out.
    pub messages: u64,
    max_head: usize,
    max_body: usize,
    buf: Vec<u8>,
    off: usize,
    /// Where the search for the next line end resumes, relative to `off`.
    scan: usize,
    /// First line end of the head in progress, relative to `off`.
    first_nl: Option<usize>,
    start_checked: bool,
    state: State,
    head: Option<Head>,
    body: Vec<u8>,
    body_cut: bool,
    /// Body bytes within the cap so far, kept or not.
    body_len: usize,
    /// The body is handed up as it is (no Content-Encoding that is decoded first).
    body_plain: bool,
    /// A plain body's first non-whitespace byte was seen.
    body_started: bool,
    /// A plain body that starts with neither `{` nor `[`: it can never be handed up, so
    /// its bytes are counted, not kept.
    body_useless: bool,
    remaining: u64,
    failed: bool,
    /// The request this direction answers was a CONNECT: a 2xx opens the tunnel.
    connect_reply: bool,
    /// Bytes after the head that opened a tunnel, until taken.
    tunnel_rest: Option<Vec<u8>>,
}

impl HttpSniffer {
    pub fn new() -> Self {
        Self::with_limits(DEFAULT_MAX_HEAD, DEFAULT_MAX_BODY)
    }

    /// As `new`, with other caps on the head and the kept body.
    pub fn with_limits(max_head: usize, max_body: usize) -> Self {
        HttpSniffer {
            overflow: 0,
            messages: 0,
            max_head,
            max_body,
            buf: Vec::new(),
            off: 0,
            scan: 0,
            first_nl: None,
            start_checked: false,
            state: State::Head,
            head: None,
            body: Vec::new(),
            body_cut: false,
            body_len: 0,
            body_plain: true,
            body_started: false,
            body_useless: false,
            remaining: 0,
            failed: false,
            connect_reply: false,
            tunnel_rest: None,
        }
    }

    /// The other direction sent a CONNECT: its 2xx answer ends HTTP on this direction.
    pub fn expect_connect_reply(&mut self) {
        self.connect_reply = true;
    }

    /// Once, after a CONNECT, an upgrade or their 2xx/101 answer: the bytes that followed
    /// the head (the start of the tunnelled protocol).
    pub fn take_tunnel(&mut self) -> Option<Vec<u8>> {
        self.tunnel_rest.take()
    }

    /// Bytes held (head in progress plus kept body); at most about max_head + max_body.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.off + self.body.len()
    }

    /// Bytes in, complete messages appended to `out`. After an Err the sniffer is dead.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<HttpHead>) -> Result<(), DecodeError> {
        if self.failed {
            return Err(DecodeError::new("HTTP: decoder already failed"));
        }
        if self.state == State::Tunnel || data.is_empty() {
            return Ok(());
        }
        if self.off == self.buf.len() {
            // Nothing pending and the segment lies inside a body it does not finish: its
            // bytes are counted (or kept) straight from the input, not copied into `buf`.
            let inside = match self.state {
                State::UntilClose => true,
                State::BodyLength | State::ChunkData => (data.len() as u64) < self.remaining,
                _ => false,
            };
            if inside {
                if self.state != State::UntilClose {
                    self.remaining -= data.len() as u64;
                }
                self.keep_bytes(data);
                self.buf.clear();
                self.off = 0;
                self.scan = 0;
                return Ok(());
            }
        }
        self.buf.extend_from_slice(data);
        loop {
            match self.step(out) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    self.failed = true;
                    self.buf = Vec::new();
                    self.off = 0;
                    self.body = Vec::new();
                    return Err(e);
                }
            }
        }
        if self.state == State::Tunnel || self.off == self.buf.len() {
            self.buf.clear();
            self.off = 0;
        } else if self.off * 2 > self.buf.len() {
            self.buf.drain(..self.off);
            self.off = 0;
        }
        Ok(())
    }

    /// The stream ended: a message whose body runs to the end of the stream completes.
    pub fn close(&mut self, out: &mut Vec<HttpHead>) {
        if self.state == State::UntilClose && self.head.is_some() && !self.failed {
            self.finish(out);
        }
    }

    fn avail(&self) -> &[u8] {
        &self.buf[self.off..]
    }

    fn consume(&mut self, n: usize) {
        self.off += n;
        self.scan = 0;
    }

    /// One step of the state machine; false when it needs more data.
    fn step(&mut self, out: &mut Vec<HttpHead>) -> Result<bool, DecodeError> {
        match self.state {
            State::Head => self.read_head(out),
            State::BodyLength | State::ChunkData => {
                let take = usize::try_from(self.remaining)
                    .unwrap_or(usize::MAX)
                    .min(self.avail().len());
                self.keep(take);
                self.remaining -= take as u64;
                if self.remaining > 0 {
                    return Ok(false);
                }
                if self.state == State::BodyLength {
                    self.finish(out);
                } else {
                    self.state = State::ChunkCrlf;
                }
                Ok(true)
            }
            State::UntilClose => {
                self.keep(self.avail().len());
                Ok(false)
            }
            State::ChunkLine => {
                let Some(line) = self.next_line(MAX_CHUNK_LINE, "chunk-size line too long")? else {
                    return Ok(false);
                };
                self.remaining = chunk_size(&line).ok_or_else(|| {
                    DecodeError::new(format!(
                        "HTTP: bad chunk-size line {:?}",
                        String::from_utf8_lossy(&line[..line.len().min(32)])
                    ))
                })?;
                self.state = if self.remaining > 0 {
                    State::ChunkData
                } else {
                    State::Trailers
                };
                Ok(true)
            }
            State::ChunkCrlf => {
                let b = self.avail();
                if b.is_empty() || b == b"\r" {
                    return Ok(false);
                }
                if b.starts_with(b"\r\n") {
                    self.consume(2);
                } else if b[0] == b'\n' {
                    self.consume(1);
                } else {
                    return Err(DecodeError::new("HTTP: chunk data not followed by CRLF"));
                }
                self.state = State::ChunkLine;
                Ok(true)
            }
            State::Trailers => {
                let Some(line) = self.next_line(self.max_head, "trailer section too long")? else {
                    return Ok(false);
                };
                if line.is_empty() {
                    self.finish(out);
                }
                Ok(true)
            }
            State::Tunnel => Ok(false),
        }
    }

    /// The next LF-terminated line (trailing CRs removed), consumed; None until it is in.
    fn next_line(&mut self, max: usize, too_long: &str) -> Result<Option<Vec<u8>>, DecodeError> {
        let b = &self.buf[self.off..];
        match memchr::memchr(b'\n', &b[self.scan..]) {
            Some(r) => {
                let nl = self.scan + r;
                let mut line = &b[..nl];
                while let [rest @ .., b'\r'] = line {
                    line = rest;
                }
                let line = line.to_vec();
                self.consume(nl + 1);
                Ok(Some(line))
            }
            None => {
                if b.len() > max {
                    return Err(DecodeError::new(format!("HTTP: {too_long}")));
                }
                self.scan = b.len();
                Ok(None)
            }
        }
    }

    fn keep(&mut self, take: usize) {
        let buf = std::mem::take(&mut self.buf);
        self.keep_bytes(&buf[self.off..self.off + take]);
        self.buf = buf;
        self.consume(take);
    }

    /// Body bytes in: counted against the cap, kept while they may be handed up.
    fn keep_bytes(&mut self, bytes: &[u8]) {
        let take = bytes.len();
        let room = self.max_body.saturating_sub(self.body_len);
        if take > room {
            self.body_cut = true;
        }
        let kept = take.min(room);
        let bytes = &bytes[..kept];
        if self.body_plain && !self.body_started {
            if let Some(&c) = bytes.iter().find(|c| !is_space(c)) {
                self.body_started = true;
                if c != b'{' && c != b'[' {
                    self.body_useless = true;
                    self.body.clear();
                }
            }
        }
        if !self.body_useless {
            self.body.extend_from_slice(bytes);
        }
        self.body_len += kept;
    }

    fn read_head(&mut self, out: &mut Vec<HttpHead>) -> Result<bool, DecodeError> {
        // RFC 9112 section 2.2: ignore empty lines before a request line.
        let skip = self
            .avail()
            .iter()
            .take_while(|&&c| c == b'\r' || c == b'\n')
            .count();
        if skip > 0 {
            self.consume(skip);
            self.first_nl = None;
        }
        let b = &self.buf[self.off..];
        if b.is_empty() {
            return Ok(false);
        }
        if !plausible_start(b) {
            return Err(DecodeError::new(format!(
                "HTTP: not HTTP: {:?}",
                String::from_utf8_lossy(&b[..b.len().min(32)])
            )));
        }
        // A blank line starting at or before max_head is decided once max_head + 4 bytes
        // are in; the cap is applied the same way whatever the segmentation.
        let lim = b.len().min(self.max_head + 2);
        let mut found = None;
        let mut scan = self.scan.min(lim);
        while let Some(r) = memchr::memchr(b'\n', &b[scan..lim]) {
            let p = scan + r;
            self.first_nl.get_or_insert(p);
            match b.get(p + 1) {
                None => break,
                Some(b'\n') => {
                    found = Some((p, 2));
                    break;
                }
                Some(b'\r') => match b.get(p + 2) {
                    None => break,
                    Some(b'\n') if p >= 1 && b[p - 1] == b'\r' => {
                        found = Some((p - 1, 4));
                        break;
                    }
                    _ => scan = p + 1,
                },
                _ => scan = p + 1,
            }
        }
        let Some((end, sep)) = found else {
            self.scan = match memchr::memchr(b'\n', &b[scan..lim]) {
                Some(r) => scan + r, // an undecided line end: look at it again
                None => lim,
            };
            if let (Some(nl), false) = (self.first_nl, self.start_checked) {
                check_start_line(&b[..nl + 1])?;
                self.start_checked = true;
            }
            if b.len() > self.max_head + 3 {
                self.overflow_head();
            }
            return Ok(false);
        };
        if end > self.max_head {
            self.overflow_head();
            return Ok(false);
        }
        let head = parse_head(&b[..end + sep])?;
        self.consume(end + sep);
        self.first_nl = None;
        self.start_checked = false;
        self.begin(head, out)?;
        Ok(true)
    }

    fn overflow_head(&mut self) {
        self.overflow += 1;
        self.state = State::Tunnel;
        self.off = self.buf.len();
    }

    fn begin(&mut self, head: Head, out: &mut Vec<HttpHead>) -> Result<(), DecodeError> {
        let is_request = head.is_request;
        let status = head.status;
        let te = head
            .fields
            .transfer_encoding
            .as_deref()
            .map(|t| t.to_lowercase())
            .unwrap_or_default();
        let cl = head.fields.content_length.clone();
        self.body_plain = !decoded_coding(&head.fields);
        self.head = Some(head);
        self.body.clear();
        self.body_cut = false;
        self.body_len = 0;
        self.body_started = false;
        self.body_useless = false;

        if !te.is_empty() {
            let last = te.rsplit(',').next().unwrap_or("");
            if py_strip(last) == "chunked" {
                self.state = State::ChunkLine;
                return Ok(());
            }
            if is_request {
                return Err(DecodeError::new(format!(
                    "HTTP: request with Transfer-Encoding {te:?} but not chunked"
                )));
            }
            self.state = State::UntilClose;
            return Ok(());
        }
        if let Some(cl) = cl {
            // ASCII digits only: `Content-Length: ²` passes Python's str.isdigit() and then
            // fails int(); here it is simply a malformed message.
            if cl.is_empty() || cl.len() > 15 || !cl.bytes().all(|c| c.is_ascii_digit()) {
                let shown: String = cl.chars().take(32).collect();
                return Err(DecodeError::new(format!(
                    "HTTP: bad Content-Length {shown:?}"
                )));
            }
            self.remaining = cl
                .parse::<u64>()
                .map_err(|_| DecodeError::new(format!("HTTP: bad Content-Length {cl:?}")))?;
            if self.remaining > 0 {
                self.state = State::BodyLength;
            } else {
                self.finish(out);
            }
            return Ok(());
        }
        let connect_ok =
            !is_request && self.connect_reply && status.is_some_and(|s| (200..300).contains(&s));
        if is_request || connect_ok || status.is_some_and(|s| s < 200 || s == 204 || s == 304) {
            self.finish(out);
            return Ok(());
        }
        self.state = State::UntilClose;
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<HttpHead>) {
        let Some(head) = self.head.take() else {
            return;
        };
        if self.body_cut {
            self.overflow += 1;
        }
        let body = if self.body_cut {
            Vec::new()
        } else {
            self.rpc_body(&head.fields)
        };
        // After a tunnel opens the bytes are another protocol, not more HTTP.
        let f = &head.fields;
        let upgrading = f.upgrade.is_some()
            && f.connection
                .as_deref()
                .is_some_and(|c| c.to_lowercase().contains("upgrade"));
        let connect_ok = !head.is_request
            && self.connect_reply
            && head.status.is_some_and(|s| (200..300).contains(&s));
        if !head.is_request && head.status.is_some_and(|s| s >= 200) {
            self.connect_reply = false;
        }
        let tunnel = head.status == Some(101)
            || connect_ok
            || (head.is_request && (head.method.as_deref() == Some("CONNECT") || upgrading));
        let ws_deflate =
            head.status == Some(101) && crate::ws::deflate_agreed(f.ws_extensions.as_deref());
        let authorization_user = basic_user(f.authorization.as_deref());
        // The head's strings move into the event (clipped when too long), not copied.
        let f = head.fields;
        out.push(HttpHead {
            is_request: head.is_request,
            method: head.method,
            path: clip(head.path),
            status: head.status,
            host: clip(f.host),
            user_agent: clip(f.user_agent),
            content_type: clip(f.content_type),
            x_mining_extensions: clip(f.x_mining_extensions),
            x_stratum: clip(f.x_stratum),
            x_long_polling: clip(f.x_long_polling),
            authorization_user,
            upgrade: clip(f.upgrade),
            ws_deflate,
            body,
        });
        self.messages += 1;
        self.body.clear();
        self.state = State::Head;
        if tunnel {
            self.state = State::Tunnel;
            self.tunnel_rest = Some(self.buf[self.off..].to_vec());
            self.off = self.buf.len();
        }
    }

    /// http.py's JSON-RPC rule: an uncut body, decoded per Content-Encoding, that starts
    /// with `{` or `[` once whitespace is stripped.
    fn rpc_body(&mut self, fields: &Fields) -> Vec<u8> {
        if self.body_useless {
            return Vec::new();
        }
        let coding = fields
            .content_encoding
            .as_deref()
            .map(|c| py_strip(c).to_lowercase())
            .unwrap_or_default();
        let inflated;
        let body: &[u8] = if matches!(coding.as_str(), "gzip" | "x-gzip" | "deflate") {
            match inflate(&self.body, coding != "deflate", self.max_body) {
                Inflated::Data(d) => {
                    inflated = d;
                    &inflated
                }
                Inflated::TooBig => {
                    self.overflow += 1;
                    return Vec::new();
                }
                Inflated::Broken => return Vec::new(),
            }
        } else {
            &self.body
        };
        let text = strip_bytes(body);
        if matches!(text.first(), Some(b'{' | b'[')) && rpc_shaped(text) {
            text.to_vec()
        } else {
            Vec::new()
        }
    }
}

impl Default for HttpSniffer {
    fn default() -> Self {
        Self::new()
    }
}

/// Could this JSON text hold a JSON-RPC message? It names a method, a result or an error,
/// and the whole of it, or one of its lines, is well-formed JSON (what Python parses).
/// REST and other JSON bodies are the bulk of HTTP bodies; they stop here.
fn rpc_shaped(text: &[u8]) -> bool {
    let hint = |h: &[u8]| memchr::memmem::find(text, h).is_some();
    if !(hint(b"\"method\"") || hint(b"\"result\"") || hint(b"\"error\"")) {
        return false;
    }
    crate::lines::valid_json(text)
        || text
            .split(|&c| c == b'\n')
            .any(|l| crate::lines::valid_json(l.trim_ascii()))
}

enum Inflated {
    Data(Vec<u8>),
    TooBig,
    Broken,
}

/// Decode at most `max + 1` bytes, so a compression bomb costs no more than the cap. A
/// truncated stream gives what decoded so far, like zlib's decompressobj in http.py.
fn inflate(body: &[u8], gzip: bool, max: usize) -> Inflated {
    let limit = max as u64 + 1;
    let mut out = Vec::new();
    let result = if gzip {
        flate2::read::GzDecoder::new(body)
            .take(limit)
            .read_to_end(&mut out)
    } else {
        let r = flate2::read::ZlibDecoder::new(body)
            .take(limit)
            .read_to_end(&mut out);
        match r {
            // "deflate" is often sent raw, without the zlib wrapper (RFC 9110 8.4.1.2).
            Err(e) if e.kind() != std::io::ErrorKind::UnexpectedEof => {
                out.clear();
                flate2::read::DeflateDecoder::new(body)
                    .take(limit)
                    .read_to_end(&mut out)
            }
            r => r,
        }
    };
    match result {
        Err(e) if e.kind() != std::io::ErrorKind::UnexpectedEof => Inflated::Broken,
        _ if out.len() > max => Inflated::TooBig,
        _ => Inflated::Data(out),
    }
}

/// Python's `str.isspace()` for the latin-1 characters a header value can hold.
fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

fn py_strip(s: &str) -> &str {
    s.trim_matches(py_space)
}

/// Python's `bytes.isspace()` for one byte: ASCII whitespace including vertical tab.
fn is_space(c: &u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c')
}

/// Python's `bytes.strip()`.
fn strip_bytes(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|c| !is_space(c)).unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !is_space(c))
        .map_or(start, |e| e + 1);
    &b[start..end]
}

/// The body is decoded (gunzipped or inflated) before `rpc_body` looks at it.
fn decoded_coding(fields: &Fields) -> bool {
    fields.content_encoding.as_deref().is_some_and(|c| {
        matches!(
            py_strip(c).to_lowercase().as_str(),
            "gzip" | "x-gzip" | "deflate"
        )
    })
}

/// A header value as http.py reads it: latin-1, stripped of (Python) whitespace.
fn field_text(raw: &[u8]) -> String {
    match std::str::from_utf8(raw) {
        // ASCII reads the same in latin-1 and UTF-8: one copy of the stripped text.
        Ok(text) if raw.is_ascii() => py_strip(text).to_string(),
        _ => py_strip(&latin1(raw)).to_string(),
    }
}

fn latin1(b: &[u8]) -> String {
    if b.is_ascii() {
        // ASCII reads the same in latin-1 and UTF-8.
        return String::from_utf8_lossy(b).into_owned();
    }
    b.iter().map(|&c| char::from(c)).collect()
}

/// At most MAX_TEXT characters of a field.
fn clip(value: Option<String>) -> Option<String> {
    value.map(|v| {
        if v.len() <= MAX_TEXT {
            // At most MAX_TEXT bytes is at most MAX_TEXT characters.
            v
        } else {
            v.chars().take(MAX_TEXT).collect()
        }
    })
}

/// `[0-9a-fA-F]{1,16}[ \t]*(;.*)?`, the value of the hex digits.
fn chunk_size(line: &[u8]) -> Option<u64> {
    let digits = line.iter().take_while(|c| c.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 16 {
        return None;
    }
    let rest = &line[digits..];
    let ws = rest
        .iter()
        .take_while(|&&c| c == b' ' || c == b'\t')
        .count();
    let rest = &rest[ws..];
    if !rest.is_empty() && rest[0] != b';' {
        return None;
    }
    let text = std::str::from_utf8(&line[..digits]).ok()?;
    u64::from_str_radix(text, 16).ok()
}

/// http.py's cheap first test: `HTTP/` (or a prefix of it), or a method-like token
/// `[A-Z][A-Z_-]{0,19}` followed by a space or the end of the data.
fn plausible_start(b: &[u8]) -> bool {
    if b.starts_with(b"HTTP/") || (b.len() < 5 && b"HTTP/".starts_with(b)) {
        return true;
    }
    if !b[0].is_ascii_uppercase() {
        return false;
    }
    let run = b
        .iter()
        .take(21)
        .take_while(|c| c.is_ascii_uppercase() || **c == b'_' || **c == b'-')
        .count();
    if run > 20 {
        return false;
    }
    // Python's `$` also matches before a final newline.
    match b.get(run) {
        None | Some(b' ') => true,
        Some(b'\n') => run + 1 == b.len(),
        _ => false,
    }
}

fn parser_config() -> httparse::ParserConfig {
    let mut c = httparse::ParserConfig::default();
    // http.py skips header lines it cannot read (junk, obs-fold continuations) rather than
    // failing a detector over them.
    c.ignore_invalid_headers_in_requests(true)
        .ignore_invalid_headers_in_responses(true)
        .allow_spaces_after_header_name_in_responses(true);
    c
}

fn bad_head(e: impl std::fmt::Display) -> DecodeError {
    DecodeError::new(format!("HTTP: bad HTTP head: {e}"))
}

/// The start line alone (with its line end), checked before the head is complete so that
/// a stream that is not HTTP fails early.
fn check_start_line(line: &[u8]) -> Result<(), DecodeError> {
    let config = parser_config();
    let mut no_headers: [httparse::Header<'_>; 0] = [];
    let r = if line.starts_with(b"HTTP/") {
        config.parse_response(&mut httparse::Response::new(&mut no_headers), line)
    } else {
        config.parse_request(&mut httparse::Request::new(&mut no_headers), line)
    };
    match r {
        Ok(_) | Err(httparse::Error::TooManyHeaders) => Ok(()),
        Err(e) => Err(bad_head(e)),
    }
}

/// The header fields `Fields` keeps, in its order; Content-Length last.
const FIELD_NAMES: [&str; 13] = [
    "host",
    "user-agent",
    "content-type",
    "x-mining-extensions",
    "x-stratum",
    "x-long-polling",
    "authorization",
    "upgrade",
    "sec-websocket-extensions",
    "connection",
    "transfer-encoding",
    "content-encoding",
    "content-length",
];

fn parse_head(raw: &[u8]) -> Result<Head, DecodeError> {
    let config = parser_config();
    // One slot per line: httparse can never run out of header slots.
    let lines = memchr::memchr_iter(b'\n', raw).count() + 1;
    let mut headers = vec![httparse::EMPTY_HEADER; lines];
    let (is_request, method, path, status, parsed) = if raw.starts_with(b"HTTP/") {
        let mut resp = httparse::Response::new(&mut headers);
        match config.parse_response(&mut resp, raw).map_err(bad_head)? {
            httparse::Status::Complete(_) => {}
            httparse::Status::Partial => return Err(bad_head("incomplete")),
        }
        (false, None, None, resp.code, &*resp.headers)
    } else {
        let mut req = httparse::Request::new(&mut headers);
        match config.parse_request(&mut req, raw).map_err(bad_head)? {
            httparse::Status::Complete(_) => {}
            httparse::Status::Partial => return Err(bad_head("incomplete")),
        }
        (
            true,
            req.method.map(str::to_string),
            req.path.map(str::to_string),
            None,
            &*req.headers,
        )
    };
    let mut f = Fields::default();
    for h in parsed {
        // Names are compared in place and values decoded only for the fields read: most
        // header lines of a head are skipped without allocating.
        let name = h.name.trim();
        let Some(field) = FIELD_NAMES
            .iter()
            .position(|n| name.eq_ignore_ascii_case(n))
        else {
            continue;
        };
        let slot = match field {
            0 => &mut f.host,
            1 => &mut f.user_agent,
            2 => &mut f.content_type,
            3 => &mut f.x_mining_extensions,
            4 => &mut f.x_stratum,
            5 => &mut f.x_long_polling,
            6 => &mut f.authorization,
            7 => &mut f.upgrade,
            8 => &mut f.ws_extensions,
            9 => &mut f.connection,
            10 => &mut f.transfer_encoding,
            11 => &mut f.content_encoding,
            _ => {
                let text = field_text(h.value);
                match &f.content_length {
                    Some(first) if *first != text => {
                        return Err(DecodeError::new("HTTP: conflicting Content-Length fields"))
                    }
                    Some(_) => {}
                    None => f.content_length = Some(text),
                }
                continue;
            }
        };
        if slot.is_none() {
            *slot = Some(field_text(h.value));
        }
    }
    Ok(Head {
        is_request,
        method,
        path,
        status,
        fields: f,
    })
}

/// The user of a Basic authorization value, decoded as Python's strict base64.
fn basic_user(value: Option<&str>) -> Option<String> {
    let value = py_strip(value?);
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("basic") || token.is_empty() {
        return None;
    }
    let raw = b64decode(py_strip(token))?;
    let user = raw.split(|&c| c == b':').next().unwrap_or(&[]);
    Some(
        String::from_utf8_lossy(user)
            .chars()
            .take(MAX_TEXT)
            .collect(),
    )
}

/// `base64.b64decode(s, validate=True)`: alphabet only, at most two trailing `=`, and the
/// padding binascii insists on.
fn b64decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let data_len = b.iter().take_while(|&&c| c != b'=').count();
    let pads = b.len() - data_len;
    if pads > 2 || b[data_len..].iter().any(|&c| c != b'=') {
        return None;
    }
    let ok = match data_len % 4 {
        0 => true,
        2 => pads == 2,
        3 => pads == 1,
        _ => false,
    };
    if !ok {
        return None;
    }
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        })
    };
    let mut out = Vec::with_capacity(data_len / 4 * 3 + 2);
    for quad in b[..data_len].chunks(4) {
        let mut acc = 0u32;
        for &c in quad {
            acc = (acc << 6) | val(c)?;
        }
        match quad.len() {
            4 => out.extend_from_slice(&acc.to_be_bytes()[1..]),
            3 => out.extend_from_slice(&(acc << 6).to_be_bytes()[1..3]),
            2 => out.push((acc >> 4) as u8),
            _ => return None,
        }
    }
    Some(out)
}
