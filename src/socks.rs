//! SOCKS4, SOCKS4a and SOCKS5 handshakes (RFC 1928, RFC 1929, the SOCKS4/4a notes): the
//! target a client asks its proxy for, and where the tunnelled bytes begin on each side.
//!
//! A miner behind a proxy (XMRig `-x`) is seen on the client↔proxy leg only: the handshake
//! names the pool (a domain for SOCKS4a/5, else an address and port), and after it the
//! mining protocol itself runs in the clear (or in TLS) — the engine sniffs those bytes as
//! it would at the start of a stream.
//!
//! Contract: bytes in, `Step` out; the handshake is small, so at most `MAX_HELD` bytes are
//! ever held, and anything that does not parse is an error value, never a panic.

use crate::error::DecodeError;

/// The longest handshake message: SOCKS5 user/password auth (1+1+255+1+255) or a SOCKS4a
/// request with a user id and a host name, each NUL-terminated within 256 bytes.
pub const MAX_HELD: usize = 600;
const MAX_NAME: usize = 255;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Socks4,
    Socks5,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// "socks4", "socks4a" or "socks5".
    pub kind: &'static str,
    /// A host name (SOCKS4a, SOCKS5 domain) or an address in text form.
    pub host: String,
    pub port: u16,
    /// 1 CONNECT, 2 BIND, 3 UDP ASSOCIATE (SOCKS5).
    pub command: u8,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    NeedMore,
    /// Client side: the request is complete; `rest` are the first tunnelled bytes.
    Request(Target, Vec<u8>),
    /// Server side: the replies are complete; `rest` are the first tunnelled bytes.
    Open(Vec<u8>),
}

/// Does the first chunk a client sent look like a SOCKS greeting or request?
pub fn detect(chunk: &[u8]) -> Option<Version> {
    match chunk {
        // SOCKS5 greeting: VER, NMETHODS, METHODS; clients offer a few (0 none, 2 password).
        [5, n, rest @ ..] if (1..=16).contains(n) && rest.len() >= usize::from(*n) => {
            let (methods, after) = rest.split_at(usize::from(*n));
            let ok_methods = methods.iter().all(|m| *m <= 9 || *m >= 0x80);
            // Pipelined clients send the auth or the request right behind the greeting.
            let ok_after = after.is_empty() || matches!(after[0], 1 | 5);
            (ok_methods && ok_after).then_some(Version::Socks5)
        }
        // SOCKS4: VER 4, CMD 1|2, PORT, IPv4, USERID NUL.
        [4, 1 | 2, p0, p1, _, _, _, _, rest @ ..] if (*p0, *p1) != (0, 0) => rest
            .iter()
            .take(MAX_NAME + 1)
            .any(|b| *b == 0)
            .then_some(Version::Socks4),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    // client
    Greeting,
    AuthOrRequest,
    Request,
    // server
    Method,
    AuthReply,
    Reply,
    // both
    Tunnel,
}

/// One side of a SOCKS handshake.
pub struct SocksSniffer {
    version: Version,
    client: bool,
    state: State,
    buf: Vec<u8>,
    failed: bool,
}

impl SocksSniffer {
    pub fn new(version: Version, client: bool) -> Self {
        let state = match (version, client) {
            (Version::Socks5, true) => State::Greeting,
            (Version::Socks5, false) => State::Method,
            (Version::Socks4, true) => State::Request,
            (Version::Socks4, false) => State::Reply,
        };
        SocksSniffer {
            version,
            client,
            state,
            buf: Vec::new(),
            failed: false,
        }
    }

    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    pub fn feed(&mut self, data: &[u8]) -> Result<Step, DecodeError> {
        if self.failed {
            return Err(DecodeError::new("SOCKS: decoder already failed"));
        }
        if self.state == State::Tunnel {
            return Ok(Step::Open(data.to_vec()));
        }
        self.buf.extend_from_slice(data);
        let r = self.steps();
        if r.is_err() {
            self.failed = true;
            self.buf = Vec::new();
        } else if self.buf.len() > MAX_HELD && self.state != State::Tunnel {
            self.failed = true;
            self.buf = Vec::new();
            return Err(DecodeError::new("SOCKS: handshake message too long"));
        }
        r
    }

    fn steps(&mut self) -> Result<Step, DecodeError> {
        loop {
            let b = &self.buf[..];
            let (used, next): (usize, State) = match self.state {
                State::Greeting => {
                    if b.len() < 2 {
                        return Ok(Step::NeedMore);
                    }
                    let n = 2 + usize::from(b[1]);
                    if b[0] != 5 || b[1] == 0 {
                        return Err(DecodeError::new("SOCKS5: bad greeting"));
                    }
                    if b.len() < n {
                        return Ok(Step::NeedMore);
                    }
                    (n, State::AuthOrRequest)
                }
                State::AuthOrRequest => match b.first() {
                    None => return Ok(Step::NeedMore),
                    Some(5) => {
                        self.state = State::Request;
                        continue;
                    }
                    Some(1) => {
                        // RFC 1929: VER 1, ULEN, UNAME, PLEN, PASSWD.
                        let Some(&ulen) = b.get(1) else {
                            return Ok(Step::NeedMore);
                        };
                        let p = 2 + usize::from(ulen);
                        let Some(&plen) = b.get(p) else {
                            return Ok(Step::NeedMore);
                        };
                        let n = p + 1 + usize::from(plen);
                        if b.len() < n {
                            return Ok(Step::NeedMore);
                        }
                        (n, State::Request)
                    }
                    Some(v) => {
                        return Err(DecodeError::new(format!(
                            "SOCKS5: unexpected byte {v} after the greeting"
                        )))
                    }
                },
                State::Request => {
                    let parsed = match self.version {
                        Version::Socks5 => socks5_request(b)?,
                        Version::Socks4 => socks4_request(b)?,
                    };
                    let Some((target, n)) = parsed else {
                        return Ok(Step::NeedMore);
                    };
                    let rest = b[n..].to_vec();
                    self.buf = Vec::new();
                    self.state = State::Tunnel;
                    return Ok(Step::Request(target, rest));
                }
                State::Method => {
                    if b.len() < 2 {
                        return Ok(Step::NeedMore);
                    }
                    if b[0] != 5 {
                        return Err(DecodeError::new("SOCKS5: bad method selection"));
                    }
                    match b[1] {
                        0 => (2, State::Reply),
                        2 => (2, State::AuthReply),
                        _ => return Err(DecodeError::new("SOCKS5: no acceptable method")),
                    }
                }
                State::AuthReply => {
                    if b.len() < 2 {
                        return Ok(Step::NeedMore);
                    }
                    if b[1] != 0 {
                        return Err(DecodeError::new("SOCKS5: authentication refused"));
                    }
                    (2, State::Reply)
                }
                State::Reply => {
                    let n = match self.version {
                        Version::Socks4 => {
                            if b.len() < 8 {
                                return Ok(Step::NeedMore);
                            }
                            if b[0] != 0 || b[1] != 0x5A {
                                return Err(DecodeError::new("SOCKS4: request refused"));
                            }
                            8
                        }
                        Version::Socks5 => {
                            if b.len() < 5 {
                                return Ok(Step::NeedMore);
                            }
                            if b[0] != 5 || b[1] != 0 {
                                return Err(DecodeError::new("SOCKS5: request refused"));
                            }
                            4 + addr_len(b[3], b[4])? + 2
                        }
                    };
                    if b.len() < n {
                        return Ok(Step::NeedMore);
                    }
                    let rest = b[n..].to_vec();
                    self.buf = Vec::new();
                    self.state = State::Tunnel;
                    return Ok(Step::Open(rest));
                }
                State::Tunnel => return Ok(Step::Open(Vec::new())),
            };
            let _ = self.client;
            self.buf.drain(..used);
            self.state = next;
        }
    }
}

/// Bytes of a SOCKS5 address of type `atyp` whose first byte is `first`.
fn addr_len(atyp: u8, first: u8) -> Result<usize, DecodeError> {
    match atyp {
        1 => Ok(4),
        4 => Ok(16),
        3 if first > 0 => Ok(1 + usize::from(first)),
        _ => Err(DecodeError::new(format!("SOCKS5: bad address type {atyp}"))),
    }
}

fn host_text(name: &[u8]) -> Result<String, DecodeError> {
    let s = std::str::from_utf8(name).map_err(|_| DecodeError::new("SOCKS: host not text"))?;
    if s.is_empty() || s.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(DecodeError::new("SOCKS: bad host name"));
    }
    Ok(s.to_ascii_lowercase())
}

fn socks5_request(b: &[u8]) -> Result<Option<(Target, usize)>, DecodeError> {
    if b.len() < 5 {
        return Ok(None);
    }
    if b[0] != 5 || !(1..=3).contains(&b[1]) || b[2] != 0 {
        return Err(DecodeError::new("SOCKS5: bad request"));
    }
    let alen = addr_len(b[3], b[4])?;
    let n = 4 + alen + 2;
    if b.len() < n {
        return Ok(None);
    }
    let a = &b[4..4 + alen];
    let host = match b[3] {
        1 => std::net::Ipv4Addr::new(a[0], a[1], a[2], a[3]).to_string(),
        4 => {
            let mut o = [0u8; 16];
            o.copy_from_slice(a);
            std::net::Ipv6Addr::from(o).to_string()
        }
        _ => host_text(&a[1..])?,
    };
    let port = u16::from_be_bytes([b[n - 2], b[n - 1]]);
    Ok(Some((
        Target {
            kind: "socks5",
            host,
            port,
            command: b[1],
        },
        n,
    )))
}

fn nul_field(b: &[u8]) -> Result<Option<usize>, DecodeError> {
    match b.iter().take(MAX_NAME + 1).position(|c| *c == 0) {
        Some(i) => Ok(Some(i)),
        None if b.len() > MAX_NAME => Err(DecodeError::new("SOCKS4: field not terminated")),
        None => Ok(None),
    }
}

fn socks4_request(b: &[u8]) -> Result<Option<(Target, usize)>, DecodeError> {
    if b.len() < 9 {
        return Ok(None);
    }
    if b[0] != 4 || !(1..=2).contains(&b[1]) {
        return Err(DecodeError::new("SOCKS4: bad request"));
    }
    let port = u16::from_be_bytes([b[2], b[3]]);
    let ip = [b[4], b[5], b[6], b[7]];
    let Some(uid) = nul_field(&b[8..])? else {
        return Ok(None);
    };
    let mut n = 8 + uid + 1;
    // SOCKS4a: 0.0.0.x (x != 0) means "the host name follows the user id".
    let (kind, host) = if ip[..3] == [0, 0, 0] && ip[3] != 0 {
        let Some(hl) = nul_field(&b[n..])? else {
            return Ok(None);
        };
        let host = host_text(&b[n..n + hl])?;
        n += hl + 1;
        ("socks4a", host)
    } else {
        ("socks4", std::net::Ipv4Addr::from(ip).to_string())
    };
    Ok(Some((
        Target {
            kind,
            host,
            port,
            command: b[1],
        },
        n,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client_all(v: Version, data: &[u8]) -> Step {
        let mut s = SocksSniffer::new(v, true);
        s.feed(data).unwrap()
    }

    #[test]
    fn socks5_domain_with_password_and_pipelined_data() {
        let mut d = vec![5, 2, 0, 2, 1, 3, b'b', b'o', b'b', 2, b'p', b'w'];
        d.extend_from_slice(&[5, 1, 0, 3, 19]);
        d.extend_from_slice(b"pool.supportxmr.com");
        d.extend_from_slice(&443u16.to_be_bytes());
        d.extend_from_slice(b"\x16\x03\x01");
        assert_eq!(detect(&d), Some(Version::Socks5));
        // Byte by byte gives the same as whole.
        let mut s = SocksSniffer::new(Version::Socks5, true);
        let mut got = None;
        for (i, b) in d.iter().enumerate() {
            match s.feed(&[*b]).unwrap() {
                Step::NeedMore => {}
                other => {
                    got = Some((i, other));
                    break;
                }
            }
        }
        let (i, step) = got.unwrap();
        let Step::Request(t, rest) = step else {
            panic!("no request")
        };
        assert_eq!(
            (t.kind, t.host.as_str(), t.port),
            ("socks5", "pool.supportxmr.com", 443)
        );
        assert!(rest.is_empty());
        assert_eq!(i, d.len() - 4);
        match client_all(Version::Socks5, &d) {
            Step::Request(_, rest) => assert_eq!(rest, b"\x16\x03\x01"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn socks4_and_4a() {
        let d = [4, 1, 0x0d, 0x05, 198, 51, 100, 7, b'x', 0, b'{'];
        match client_all(Version::Socks4, &d) {
            Step::Request(t, rest) => {
                assert_eq!(
                    (t.kind, t.host.as_str(), t.port),
                    ("socks4", "198.51.100.7", 3333)
                );
                assert_eq!(rest, b"{");
            }
            other => panic!("{other:?}"),
        }
        let mut d = vec![4, 1, 0x0d, 0x05, 0, 0, 0, 1, 0];
        d.extend_from_slice(b"xmr.pool.example\0");
        match client_all(Version::Socks4, &d) {
            Step::Request(t, _) => {
                assert_eq!((t.kind, t.host.as_str()), ("socks4a", "xmr.pool.example"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn server_replies_then_tunnel() {
        let mut s = SocksSniffer::new(Version::Socks5, false);
        let mut d = vec![5, 0, 5, 0, 0, 1, 10, 0, 0, 1, 0x0d, 0x05];
        d.extend_from_slice(b"{\"id\":1}");
        assert_eq!(s.feed(&d).unwrap(), Step::Open(b"{\"id\":1}".to_vec()));
        let mut s = SocksSniffer::new(Version::Socks4, false);
        assert_eq!(s.feed(&[0, 0x5a, 0, 0]).unwrap(), Step::NeedMore);
        assert_eq!(s.feed(&[0, 0, 0, 0, 7]).unwrap(), Step::Open(vec![7]));
    }

    #[test]
    fn refusals_and_garbage_are_errors() {
        let mut s = SocksSniffer::new(Version::Socks5, false);
        assert!(s.feed(&[5, 0xff]).is_err());
        assert!(s.feed(&[5, 0]).is_err());
        assert_eq!(detect(b"GET / HTTP/1.1\r\n"), None);
        assert_eq!(detect(&[5, 1]), None);
        let mut s = SocksSniffer::new(Version::Socks4, true);
        assert!(s.feed(&[4, 1, 0, 1, 1, 2, 3, 4]).is_ok());
        assert!(s.feed(&[b'a'; 300]).is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_holds_little(chunks in proptest::collection::vec(
            proptest::collection::vec(proptest::num::u8::ANY, 0..64), 0..20),
            v5 in proptest::bool::ANY, client in proptest::bool::ANY) {
            let v = if v5 { Version::Socks5 } else { Version::Socks4 };
            let mut s = SocksSniffer::new(v, client);
            for c in chunks {
                if s.feed(&c).is_err() {
                    break;
                }
                proptest::prop_assert!(s.buffered() <= MAX_HELD);
            }
        }
    }
}
