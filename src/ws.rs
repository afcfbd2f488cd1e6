//! WebSocket frames (RFC 6455) of one direction after an HTTP Upgrade: complete data
//! messages out, client frames unmasked, permessage-deflate (RFC 7692) inflated.
//!
//! Browser and Node.js miners carry stratum-like JSON in WebSocket messages; the client's
//! frames are masked, so without unmasking only the pool's pushes would be readable.
//!
//! Contract: bytes in, messages appended to `out`; a frame header is at most 14 bytes and a
//! message at most `max_message` bytes (longer ones are dropped and counted), so memory is
//! bounded whatever the wire says; a protocol violation is an error value.

use crate::error::DecodeError;
use flate2::{Decompress, FlushDecompress, Status};

pub const DEFAULT_MAX_MESSAGE: usize = 16384;
/// An inflater's state (32 KiB window plus tables), counted against the memory budget.
pub const INFLATE_COST: usize = 48 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsMessage {
    /// 1 text, 2 binary.
    pub opcode: u8,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Header,
    Payload,
}

pub struct WsSniffer {
    /// Messages dropped for exceeding the cap or failing to inflate.
    pub overflow: u64,
    max_message: usize,
    state: State,
    hdr: Vec<u8>,
    remaining: u64,
    mask: Option<[u8; 4]>,
    mask_pos: usize,
    /// The current frame's payload is not kept (a control frame, a dropped message).
    skipping: bool,
    control: bool,
    fin: bool,
    msg: Vec<u8>,
    msg_opcode: Option<u8>,
    msg_compressed: bool,
    msg_dropped: bool,
    /// permessage-deflate was agreed (RSV1 is legal).
    deflate: bool,
    /// The direction's inflater; gone once its window fell out of step with the sender's.
    inflate: Option<Box<Decompress>>,
    failed: bool,
}

impl WsSniffer {
    /// `deflate`: the handshake agreed permessage-deflate.
    pub fn new(deflate: bool) -> Self {
        Self::with_limit(deflate, DEFAULT_MAX_MESSAGE)
    }

    pub fn with_limit(deflate: bool, max_message: usize) -> Self {
        WsSniffer {
            overflow: 0,
            max_message,
            state: State::Header,
            hdr: Vec::with_capacity(14),
            remaining: 0,
            mask: None,
            mask_pos: 0,
            skipping: false,
            control: false,
            fin: false,
            msg: Vec::new(),
            msg_opcode: None,
            msg_compressed: false,
            msg_dropped: false,
            deflate,
            inflate: deflate.then(|| Box::new(Decompress::new(false))),
            failed: false,
        }
    }

    /// Bytes held: the frame header and message in progress, plus an inflater's window
    /// and tables when permessage-deflate is on.
    pub fn buffered(&self) -> usize {
        self.hdr.len()
            + self.msg.len()
            + if self.inflate.is_some() {
                INFLATE_COST
            } else {
                0
            }
    }

    /// The 101 agreed permessage-deflate after this direction's sniffer was made.
    pub fn set_deflate(&mut self) {
        if !self.deflate {
            self.deflate = true;
            self.inflate = Some(Box::new(Decompress::new(false)));
        }
    }

    pub fn feed(&mut self, mut data: &[u8], out: &mut Vec<WsMessage>) -> Result<(), DecodeError> {
        if self.failed {
            return Err(DecodeError::new("WebSocket: decoder already failed"));
        }
        while !data.is_empty() {
            let r = match self.state {
                State::Header => self.header(&mut data),
                State::Payload => {
                    self.payload(&mut data, out);
                    Ok(())
                }
            };
            if let Err(e) = r {
                self.failed = true;
                self.msg = Vec::new();
                return Err(e);
            }
        }
        if self.state == State::Payload && self.remaining == 0 {
            self.end_frame(out);
        }
        Ok(())
    }

    fn header(&mut self, data: &mut &[u8]) -> Result<(), DecodeError> {
        // Fill the two fixed bytes, then as many as the length and mask need.
        let want = |h: &[u8]| -> usize {
            if h.len() < 2 {
                return 2;
            }
            let ext = match h[1] & 0x7F {
                126 => 2,
                127 => 8,
                _ => 0,
            };
            2 + ext + if h[1] & 0x80 != 0 { 4 } else { 0 }
        };
        while self.hdr.len() < want(&self.hdr) {
            let Some((&b, rest)) = data.split_first() else {
                return Ok(());
            };
            self.hdr.push(b);
            *data = rest;
        }
        let h = std::mem::take(&mut self.hdr);
        let (b0, b1) = (h[0], h[1]);
        let fin = b0 & 0x80 != 0;
        let rsv1 = b0 & 0x40 != 0;
        let opcode = b0 & 0x0F;
        let (len, at) = match b1 & 0x7F {
            126 => (u64::from(u16::from_be_bytes([h[2], h[3]])), 4),
            127 => {
                let mut l = [0u8; 8];
                l.copy_from_slice(&h[2..10]);
                (u64::from_be_bytes(l), 10)
            }
            n => (u64::from(n), 2),
        };
        self.mask = (b1 & 0x80 != 0).then(|| [h[at], h[at + 1], h[at + 2], h[at + 3]]);
        self.mask_pos = 0;
        self.hdr = h;
        self.hdr.clear();
        if b0 & 0x30 != 0 || (rsv1 && !self.deflate) {
            return Err(DecodeError::new("WebSocket: reserved bits set"));
        }
        match opcode {
            8..=10 => {
                if len > 125 || !fin {
                    return Err(DecodeError::new("WebSocket: bad control frame"));
                }
                self.skipping = true;
                self.control = true;
                self.fin = fin;
                self.remaining = len;
                self.state = State::Payload;
                return Ok(());
            }
            0 => {
                if self.msg_opcode.is_none() {
                    return Err(DecodeError::new(
                        "WebSocket: continuation without a message",
                    ));
                }
                self.skipping = self.msg_dropped;
            }
            1 | 2 => {
                if self.msg_opcode.is_some() {
                    return Err(DecodeError::new("WebSocket: new message inside a message"));
                }
                self.msg_opcode = Some(opcode);
                self.msg_compressed = rsv1;
                self.msg_dropped = false;
                self.msg.clear();
                self.skipping = false;
            }
            _ => return Err(DecodeError::new(format!("WebSocket: opcode {opcode}"))),
        }
        self.fin = fin;
        self.remaining = len;
        self.state = State::Payload;
        Ok(())
    }

    fn payload(&mut self, data: &mut &[u8], out: &mut Vec<WsMessage>) {
        let take = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(data.len());
        let (chunk, rest) = data.split_at(take);
        *data = rest;
        self.remaining -= take as u64;
        if !self.skipping {
            if self.msg.len() + chunk.len() > self.max_message {
                self.drop_message();
            } else {
                let start = self.msg.len();
                self.msg.extend_from_slice(chunk);
                if let Some(m) = self.mask {
                    for (i, b) in self.msg[start..].iter_mut().enumerate() {
                        *b ^= m[(self.mask_pos + i) & 3];
                    }
                }
            }
        }
        self.mask_pos = (self.mask_pos + take) & 3;
        if self.remaining == 0 {
            self.end_frame(out);
        }
    }

    fn drop_message(&mut self) {
        self.overflow += 1;
        self.msg = Vec::new();
        self.msg_dropped = true;
        self.skipping = true;
    }

    fn end_frame(&mut self, out: &mut Vec<WsMessage>) {
        self.state = State::Header;
        if self.control {
            // A control frame may sit between fragments: it must not end the message.
            self.control = false;
            self.skipping = self.msg_dropped;
            return;
        }
        if !self.fin {
            return;
        }
        let Some(opcode) = self.msg_opcode.take() else {
            self.skipping = false;
            return;
        };
        let dropped = self.msg_dropped;
        self.msg_dropped = false;
        self.skipping = false;
        let raw = std::mem::take(&mut self.msg);
        if dropped {
            if self.msg_compressed {
                // The inflater never saw this message's bytes, which the sender's window
                // holds: later compressed messages would inflate against the wrong history.
                self.inflate = None;
            }
            return;
        }
        let data = if self.msg_compressed {
            match self.inflate_message(&raw) {
                Some(d) => d,
                None => {
                    self.overflow += 1;
                    return;
                }
            }
        } else {
            raw
        };
        out.push(WsMessage { opcode, data });
    }

    /// RFC 7692 7.2.2: append 00 00 FF FF and inflate; the window carries over between
    /// messages (context takeover), so one decompressor serves the direction. The output
    /// never grows past `max_message + 1` bytes: a message that reaches that is too long.
    fn inflate_message(&mut self, raw: &[u8]) -> Option<Vec<u8>> {
        let max = self.max_message;
        let z = self.inflate.as_mut()?;
        let mut input = Vec::with_capacity(raw.len() + 4);
        input.extend_from_slice(raw);
        input.extend_from_slice(&[0, 0, 0xFF, 0xFF]);
        let mut out = vec![0u8; (4 * input.len() + 64).min(max + 1)];
        let (mut pos, mut filled) = (0, 0);
        let inflated = loop {
            let (in0, out0) = (z.total_in(), z.total_out());
            let Ok(status) = z.decompress(&input[pos..], &mut out[filled..], FlushDecompress::Sync)
            else {
                break None;
            };
            let (took, gave) = (z.total_in() - in0, z.total_out() - out0);
            pos += usize::try_from(took).ok()?;
            filled += usize::try_from(gave).ok()?;
            if filled > max {
                break None;
            }
            if status == Status::StreamEnd || (pos == input.len() && filled < out.len()) {
                // All input taken and room left over: the sync flush is fully out.
                out.truncate(filled);
                return Some(out);
            }
            if filled == out.len() {
                // `filled <= max < max + 1`, so the buffer can still grow.
                out.resize((out.len() * 2).min(max + 1), 0);
            } else if took == 0 && gave == 0 {
                break None; // no progress with room to write: a broken stream
            }
        };
        // Too big to keep, or broken: the window is now out of step with the sender, so
        // later compressed messages cannot be trusted either.
        self.inflate = None;
        inflated
    }
}

/// Did the upgrade negotiate permessage-deflate? (`Sec-WebSocket-Extensions` of the 101.)
pub fn deflate_agreed(extensions: Option<&str>) -> bool {
    extensions.is_some_and(|e| {
        e.split(',').any(|x| {
            x.trim()
                .to_ascii_lowercase()
                .starts_with("permessage-deflate")
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(opcode: u8, fin: bool, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
        let mut f = vec![(u8::from(fin) << 7) | opcode];
        let m = if mask.is_some() { 0x80 } else { 0 };
        match payload.len() {
            n if n < 126 => f.push(m | n as u8),
            n if n < 65536 => {
                f.push(m | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(m | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        match mask {
            Some(k) => {
                f.extend_from_slice(&k);
                f.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i & 3]));
            }
            None => f.extend_from_slice(payload),
        }
        f
    }

    #[test]
    fn masked_fragmented_with_ping_between() {
        let k = Some([0x12, 0x34, 0x56, 0x78]);
        let mut d = frame(1, false, b"{\"type\":\"auth\",", k);
        d.extend(frame(9, true, b"hi", k));
        d.extend(frame(0, true, b"\"params\":{}}", k));
        let mut out = Vec::new();
        let mut s = WsSniffer::new(false);
        for b in &d {
            s.feed(&[*b], &mut out).unwrap();
        }
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].data, b"{\"type\":\"auth\",\"params\":{}}");
        let mut out2 = Vec::new();
        WsSniffer::new(false).feed(&d, &mut out2).unwrap();
        assert_eq!(out, out2);
    }

    #[test]
    fn long_lengths_and_cap() {
        let big = vec![b'x'; 70000];
        let mut d = frame(2, true, &big, None);
        d.extend(frame(1, true, b"ok", None));
        let mut out = Vec::new();
        let mut s = WsSniffer::new(false);
        s.feed(&d, &mut out).unwrap();
        assert_eq!(
            out,
            vec![WsMessage {
                opcode: 1,
                data: b"ok".to_vec()
            }]
        );
        assert_eq!(s.overflow, 1);
        assert!(s.buffered() < 100);
    }

    #[test]
    fn deflated_messages_share_a_window() {
        use flate2::{Compress, Compression, FlushCompress};
        let mut c = Compress::new(Compression::default(), false);
        let mut s = WsSniffer::new(true);
        let mut out = Vec::new();
        for msg in [
            &b"{\"type\":\"job\",\"params\":{}}"[..],
            b"{\"type\":\"job\",\"params\":{}}",
        ] {
            let mut z = Vec::with_capacity(256);
            c.compress_vec(msg, &mut z, FlushCompress::Sync).unwrap();
            assert_eq!(&z[z.len() - 4..], &[0, 0, 0xFF, 0xFF]);
            z.truncate(z.len() - 4);
            let mut f = frame(1, true, &z, None);
            f[0] |= 0x40;
            s.feed(&f, &mut out).unwrap();
        }
        assert_eq!(out.len(), 2);
        assert!(out
            .iter()
            .all(|m| m.data == b"{\"type\":\"job\",\"params\":{}}"));
    }

    /// One deflated message (RFC 7692: sync flush, trailer dropped) as a text frame, RSV1 set.
    fn deflated(c: &mut flate2::Compress, msg: &[u8]) -> Vec<u8> {
        let mut z = Vec::with_capacity(msg.len() + 64);
        c.compress_vec(msg, &mut z, flate2::FlushCompress::Sync)
            .unwrap();
        assert_eq!(&z[z.len() - 4..], &[0, 0, 0xFF, 0xFF]);
        z.truncate(z.len() - 4);
        let mut f = frame(1, true, &z, None);
        f[0] |= 0x40;
        f
    }

    #[test]
    fn deflated_message_over_the_limit_is_dropped_not_cut() {
        // 65 zero bytes deflate to a few; inflated they exceed a 64-byte limit. They were
        // handed up cut to 64 bytes (or past the limit, as the buffer grew).
        let mut c = flate2::Compress::new(flate2::Compression::default(), false);
        let mut s = WsSniffer::with_limit(true, 64);
        let mut out = Vec::new();
        s.feed(&deflated(&mut c, &[0; 65]), &mut out).unwrap();
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(s.overflow, 1);
        // The window is now out of step: a later deflated message is dropped and counted
        // too, and the stream goes on (it was a fatal "reserved bits" error).
        s.feed(&deflated(&mut c, b"{}"), &mut out).unwrap();
        s.feed(&frame(1, true, b"plain", None), &mut out).unwrap();
        assert_eq!(s.overflow, 2);
        assert_eq!(
            out,
            vec![WsMessage {
                opcode: 1,
                data: b"plain".to_vec()
            }]
        );
        let mut s = WsSniffer::with_limit(true, 64);
        let mut c = flate2::Compress::new(flate2::Compression::default(), false);
        let mut out = Vec::new();
        s.feed(&deflated(&mut c, &[b'a'; 64]), &mut out).unwrap();
        assert_eq!(
            out,
            vec![WsMessage {
                opcode: 1,
                data: vec![b'a'; 64]
            }]
        );
    }

    #[test]
    fn deflated_message_dropped_unseen_stops_inflating() {
        // The first message is stored (incompressible) and over the limit on the wire, so
        // it is dropped before inflating; the second one is a back-reference into it. It
        // was inflated against the wrong history and handed up as other bytes.
        let first: Vec<u8> = (0u8..70).map(|i| i.wrapping_mul(97) ^ 0x5A).collect();
        let mut c = flate2::Compress::new(flate2::Compression::default(), false);
        let mut s = WsSniffer::with_limit(true, 64);
        let mut out = Vec::new();
        s.feed(&deflated(&mut c, &first), &mut out).unwrap();
        s.feed(&deflated(&mut c, &first[60..]), &mut out).unwrap();
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(s.overflow, 2);
    }

    #[test]
    fn violations_are_errors() {
        assert!(WsSniffer::new(false)
            .feed(&[0xC1, 0], &mut Vec::new())
            .is_err());
        assert!(WsSniffer::new(false)
            .feed(&[0x80, 0], &mut Vec::new())
            .is_err());
        assert!(WsSniffer::new(false)
            .feed(&[0x89, 126, 0, 200], &mut Vec::new())
            .is_err());
        assert!(deflate_agreed(Some(
            "permessage-deflate; client_max_window_bits"
        )));
        assert!(!deflate_agreed(None));
    }

    proptest::proptest! {
        #[test]
        fn never_panics_bounded(chunks in proptest::collection::vec(
            proptest::collection::vec(proptest::num::u8::ANY, 0..200), 0..20),
            deflate in proptest::bool::ANY) {
            let mut s = WsSniffer::with_limit(deflate, 1024);
            let mut out = Vec::new();
            for c in chunks {
                if s.feed(&c, &mut out).is_err() {
                    break;
                }
                proptest::prop_assert!(s.buffered() <= 1024 + 14 + INFLATE_COST);
            }
            proptest::prop_assert!(out.iter().all(|m| m.data.len() <= 1024));
        }

        #[test]
        fn masked_roundtrip(payload in proptest::collection::vec(proptest::num::u8::ANY, 0..3000),
                            key in proptest::array::uniform4(proptest::num::u8::ANY),
                            split in 0usize..3100) {
            let f = frame(2, true, &payload, Some(key));
            let cut = split.min(f.len());
            let mut s = WsSniffer::new(false);
            let mut out = Vec::new();
            s.feed(&f[..cut], &mut out).unwrap();
            s.feed(&f[cut..], &mut out).unwrap();
            proptest::prop_assert_eq!(out, vec![WsMessage { opcode: 2, data: payload }]);
        }
    }
}
