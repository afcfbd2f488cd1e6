//! JSON-lines framing of one direction of a TCP stream (every Stratum v1 dialect, eth-proxy,
//! CryptoNote): reassembled bytes in, complete lines that are valid JSON out.
//!
//! The framer decides by itself whether a direction is JSON lines: the first complete line
//! must be a JSON object or array; after that, `MAX_BAD_LINES` undecodable lines in a row
//! end it. Each line handed up is checked first — valid UTF-8, JSON nesting at most
//! `MAX_DEPTH` (counted outside strings), and well-formed JSON (serde_json, skipping the
//! value without building it) — so Python parses only lines that will parse, and a bulk
//! transfer that merely starts with `{` costs Python nothing.
//!
//! EthereumStratum/2.0.0 compresses with one gzip member per message after its hello; the
//! framer does not inflate: at the first gzip magic at a line boundary it hands the rest of
//! the direction up raw (`Framed::Raw`) to Python's line decoder, which knows that dialect.

use serde::de::IgnoredAny;

/// Nesting beyond this is refused (as Python's JSON-RPC parser does).
pub const MAX_DEPTH: usize = 32;
/// Consecutive undecodable lines after which the direction is no longer JSON lines.
pub const MAX_BAD_LINES: u32 = 8;
pub const MAX_LINE: usize = 65536;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// What one `feed` produced.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Framed {
    /// Complete lines (whitespace trimmed), each valid JSON.
    pub lines: Vec<Vec<u8>>,
    /// Bytes from a gzip member onwards, for the line decoder that inflates them.
    pub raw: Vec<u8>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum NotJsonLines {
    /// The first complete line was not JSON.
    FirstLine,
    /// Too many undecodable lines in a row.
    BadRun,
}

#[derive(Debug)]
pub struct LineFramer {
    buf: Vec<u8>,
    /// Joined mid-line: drop bytes up to the first LF.
    syncing: bool,
    /// Inside an over-long line: drop up to its LF.
    skipping: bool,
    proven: bool,
    bad_run: u32,
    /// Handing everything up raw (a gzip member was seen).
    pub raw: bool,
    pub lines: u64,
    pub errors: u64,
    pub overflow: u64,
}

impl LineFramer {
    pub fn new(midstream: bool) -> Self {
        LineFramer {
            buf: Vec::new(),
            syncing: midstream,
            skipping: false,
            proven: false,
            bad_run: 0,
            raw: false,
            lines: 0,
            errors: 0,
            overflow: 0,
        }
    }

    /// Bytes held for an incomplete line.
    pub fn buffered(&self) -> usize {
        self.buf.capacity()
    }

    pub fn feed(&mut self, data: &[u8], out: &mut Framed) -> Result<(), NotJsonLines> {
        if self.raw {
            out.raw.extend_from_slice(data);
            return Ok(());
        }
        let mut data = data;
        if self.syncing || self.skipping {
            let Some(nl) = memchr::memchr(b'\n', data) else {
                return Ok(());
            };
            self.syncing = false;
            self.skipping = false;
            data = &data[nl + 1..];
        }
        let mut rest = data;
        if self.buf == [GZIP_MAGIC[0]] && !rest.is_empty() {
            // A lone 0x1f was held: the next byte says whether a gzip member starts.
            if rest[0] == GZIP_MAGIC[1] {
                self.raw = true;
                self.buf = Vec::new();
                out.raw.push(GZIP_MAGIC[0]);
                out.raw.extend_from_slice(rest);
                return Ok(());
            }
        }
        if !self.buf.is_empty() {
            // Complete the held line first.
            let Some(nl) = memchr::memchr(b'\n', rest) else {
                self.hold(rest);
                return Ok(());
            };
            let mut line = std::mem::take(&mut self.buf);
            line.extend_from_slice(&rest[..nl]);
            rest = &rest[nl + 1..];
            let r = self.line(&line, out);
            line.clear();
            self.buf = line;
            self.buf.shrink_to(256);
            r?;
        }
        loop {
            let start = rest.iter().position(|c| !c.is_ascii_whitespace());
            let Some(start) = start else { return Ok(()) };
            rest = &rest[start..];
            if rest == [GZIP_MAGIC[0]] {
                // A lone 0x1f: whether a gzip member starts here is decided by the next byte.
                self.hold(rest);
                return Ok(());
            }
            if rest.starts_with(&GZIP_MAGIC) {
                self.raw = true;
                out.raw.extend_from_slice(rest);
                return Ok(());
            }
            match memchr::memchr(b'\n', rest) {
                None => {
                    self.hold(rest);
                    return Ok(());
                }
                Some(nl) => {
                    self.line(&rest[..nl], out)?;
                    rest = &rest[nl + 1..];
                }
            }
        }
    }

    /// The stream ended: a last line without its LF still counts.
    pub fn close(&mut self, out: &mut Framed) -> Result<(), NotJsonLines> {
        if self.raw || self.syncing || self.skipping || self.buf.is_empty() {
            return Ok(());
        }
        let line = std::mem::take(&mut self.buf);
        self.line(&line, out)
    }

    fn hold(&mut self, bytes: &[u8]) {
        if self.buf.len() + bytes.len() > MAX_LINE {
            self.overflow += 1;
            self.buf = Vec::new();
            self.skipping = true;
            return;
        }
        self.buf.extend_from_slice(bytes);
    }

    fn line(&mut self, raw: &[u8], out: &mut Framed) -> Result<(), NotJsonLines> {
        let line = raw.trim_ascii();
        if line.is_empty() {
            return Ok(());
        }
        if line.len() > MAX_LINE {
            self.overflow += 1;
            return Ok(());
        }
        if valid_json(line) {
            self.proven = true;
            self.bad_run = 0;
            self.lines += 1;
            out.lines.push(line.to_vec());
            return Ok(());
        }
        if !self.proven {
            return Err(NotJsonLines::FirstLine);
        }
        self.errors += 1;
        self.bad_run += 1;
        if self.bad_run >= MAX_BAD_LINES {
            return Err(NotJsonLines::BadRun);
        }
        Ok(())
    }
}

/// An object or array, nested at most MAX_DEPTH deep, valid UTF-8 and well-formed JSON.
pub fn valid_json(line: &[u8]) -> bool {
    if !matches!(line.first(), Some(b'{' | b'[')) || !depth_ok(line) {
        return false;
    }
    if std::str::from_utf8(line).is_err() {
        return false;
    }
    serde_json::from_slice::<IgnoredAny>(line).is_ok()
}

/// Nesting of objects and arrays outside strings is at most MAX_DEPTH.
fn depth_ok(line: &[u8]) -> bool {
    let opens = memchr::memchr2_iter(b'{', b'[', line).count();
    if opens <= MAX_DEPTH {
        return true;
    }
    let mut depth = 0usize;
    let mut in_str = false;
    let mut escaped = false;
    for &c in line {
        if in_str {
            if escaped {
                escaped = false;
            } else if c == b'\\' {
                escaped = true;
            } else if c == b'"' {
                in_str = false;
            }
            continue;
        }
        match c {
            b'"' => in_str = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return false;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn feed_all(f: &mut LineFramer, parts: &[&[u8]]) -> (Framed, Result<(), NotJsonLines>) {
        let mut out = Framed::default();
        for p in parts {
            if let Err(e) = f.feed(p, &mut out) {
                return (out, Err(e));
            }
        }
        (out, Ok(()))
    }

    #[test]
    fn frames_lines_across_segments() {
        let mut f = LineFramer::new(false);
        let (out, r) = feed_all(
            &mut f,
            &[
                b"{\"id\":1,\"method\":\"lo",
                b"gin\"}\n{\"id\":2}\r\n  \n[1,",
                b"2]\n{\"x\"",
            ],
        );
        assert_eq!(r, Ok(()));
        assert_eq!(
            out.lines,
            vec![
                b"{\"id\":1,\"method\":\"login\"}".to_vec(),
                b"{\"id\":2}".to_vec(),
                b"[1,2]".to_vec()
            ]
        );
        let mut last = Framed::default();
        f.buf.extend_from_slice(b":1}");
        assert_eq!(f.close(&mut last), Ok(()));
        assert_eq!(last.lines, vec![b"{\"x\":1}".to_vec()]);
    }

    #[test]
    fn the_first_line_decides() {
        let mut f = LineFramer::new(false);
        let (_, r) = feed_all(&mut f, &[b"{not json}\n"]);
        assert_eq!(r, Err(NotJsonLines::FirstLine));
        let mut f = LineFramer::new(false);
        let (out, r) = feed_all(&mut f, &[b"{\"a\":1}\n{bad\n{\"b\":2}\n"]);
        assert_eq!(r, Ok(()));
        assert_eq!(out.lines.len(), 2);
        assert_eq!(f.errors, 1);
    }

    #[test]
    fn a_run_of_bad_lines_ends_it() {
        let mut f = LineFramer::new(false);
        let mut data = b"{\"a\":1}\n".to_vec();
        for _ in 0..MAX_BAD_LINES {
            data.extend_from_slice(b"{oops\n");
        }
        let (_, r) = feed_all(&mut f, &[&data]);
        assert_eq!(r, Err(NotJsonLines::BadRun));
    }

    #[test]
    fn midstream_drops_the_partial_line() {
        let mut f = LineFramer::new(true);
        let (out, r) = feed_all(&mut f, &[b"ms\":[1]}\n{\"id\":3}\n"]);
        assert_eq!(r, Ok(()));
        assert_eq!(out.lines, vec![b"{\"id\":3}".to_vec()]);
    }

    #[test]
    fn an_overlong_line_is_skipped_to_its_end() {
        let mut f = LineFramer::new(false);
        let big = vec![b'a'; MAX_LINE + 10];
        let (out, r) = feed_all(
            &mut f,
            &[b"{\"a\":1}\n{\"s\":\"", &big, b"\"}\n{\"b\":2}\n"],
        );
        assert_eq!(r, Ok(()));
        assert_eq!(f.overflow, 1);
        assert_eq!(
            out.lines,
            vec![b"{\"a\":1}".to_vec(), b"{\"b\":2}".to_vec()]
        );
        assert!(f.buffered() <= MAX_LINE + 256);
    }

    #[test]
    fn gzip_hands_the_rest_up_raw() {
        let mut f = LineFramer::new(false);
        let (out, r) = feed_all(&mut f, &[b"{\"a\":1}\n\x1f", b"\x8b\x08zz\n", b"more"]);
        assert_eq!(r, Ok(()));
        assert_eq!(out.lines, vec![b"{\"a\":1}".to_vec()]);
        assert_eq!(out.raw, b"\x1f\x8b\x08zz\nmore".to_vec());
    }

    #[test]
    fn depth_and_utf8_are_checked() {
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(!valid_json(deep.as_bytes()));
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(valid_json(ok.as_bytes()));
        // Brackets inside strings do not nest.
        let s = format!("{{\"a\":\"{}\"}}", "[".repeat(100));
        assert!(valid_json(s.as_bytes()));
        assert!(!valid_json(b"{\"a\":\"\xff\"}"));
        assert!(!valid_json(b"{\"a\":1} x"));
        assert!(valid_json(b"{\"n\":123456789012345678901234567890}"));
        assert!(!valid_json(b"\"just a string\""));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]
        #[test]
        fn never_panics_and_stays_bounded(
            parts in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..12),
            mid in any::<bool>(),
        ) {
            let mut f = LineFramer::new(mid);
            let mut out = Framed::default();
            let mut fed = 0usize;
            for p in &parts {
                fed += p.len();
                if f.feed(p, &mut out).is_err() {
                    break;
                }
                prop_assert!(f.buffered() <= MAX_LINE.max(256) + 300);
            }
            let _ = f.close(&mut out);
            let handed: usize = out.lines.iter().map(Vec::len).sum::<usize>() + out.raw.len();
            prop_assert!(handed <= fed);
            for l in &out.lines {
                prop_assert!(valid_json(l));
            }
        }

        #[test]
        fn split_anywhere_gives_the_same_lines(
            lines in proptest::collection::vec("[a-z0-9 ]{0,20}", 1..8),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut data = Vec::new();
            for l in &lines {
                data.extend_from_slice(format!("{{\"k\":\"{l}\"}}\n").as_bytes());
            }
            let at = cut.index(data.len() + 1);
            let mut whole = LineFramer::new(false);
            let mut a = Framed::default();
            whole.feed(&data, &mut a).unwrap();
            let mut split = LineFramer::new(false);
            let mut b = Framed::default();
            split.feed(&data[..at], &mut b).unwrap();
            split.feed(&data[at..], &mut b).unwrap();
            prop_assert_eq!(a, b);
        }
    }
}
