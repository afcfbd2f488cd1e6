//! Capture input: pcap (both byte orders, µs/ns, Kuznetzov), pcapng (sections, interfaces,
//! any block order, if_tsresol/if_tsoffset), gzip/bzip2/xz around either, directories
//! (recursive, recognised by content), and non-seekable streams (stdin, pipes).
//!
//! Contract (first set by the retired Python reader; its tests now run against this one):
//! - `CaptureReader::next_frame` yields every good frame in file order; at damage it
//!   returns `Err(CaptureError)` naming the byte offset (of the decompressed stream) of the
//!   damaged record, after every frame before it was returned. After an error it returns
//!   `Ok(None)`.
//! - Timestamps are validated once here: a record whose time is not within
//!   [MIN_TS, MAX_TS] is damage (`timestamp out of range`), so nothing downstream ever
//!   formats an impossible date.
//! - Memory: one buffer of at most MAX_BLOCK + a read chunk; nothing from the file is
//!   trusted for an allocation size.
//!
//! The block parser is our own rather than pcap-parser's: the reference's error messages
//! and offsets (of the damaged record, in the decompressed stream), its limits (MAX_SNAPLEN
//! per record, MAX_BLOCK per pcapng block, checked before anything is buffered), the
//! SPB-capped-by-snaplen rule and the obsolete PB all have to match exactly, and a flat
//! parser over one buffer is shorter than adapting pcap-parser's to each of them.

use crate::error::CaptureError;
use std::fs::File;
use std::io::{self, Cursor, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// libpcap's MAXIMUM_SNAPLEN: a larger record length means a damaged file.
pub const MAX_SNAPLEN: u32 = 262_144;
/// Largest non-packet pcapng block accepted.
pub const MAX_BLOCK: u32 = 16 * 1024 * 1024;
/// Earliest and latest capture time accepted (1970-01-01 .. 9999-12-31T23:59:59).
pub const MIN_TS: f64 = 0.0;
pub const MAX_TS: f64 = 253_402_300_799.0;
/// Interfaces one pcapng section may declare. The reference has no limit; here each IDB
/// costs memory for the rest of the section, so a file made of nothing but IDBs must not
/// grow the table without bound. Real captures declare a handful.
pub const MAX_INTERFACES: usize = 65_536;

/// Bytes asked of the source per read.
const CHUNK: usize = 256 * 1024;

const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
const SHB: u32 = 0x0A0D0D0A;
const IDB: u32 = 1;
const PB: u32 = 2;
const SPB: u32 = 3;
const EPB: u32 = 6;

/// Compressed formats the reader refuses, with the advice the reference gives.
const UNSUPPORTED: [(&[u8], &str); 2] = [
    (
        b"\x28\xb5\x2f\xfd",
        "zstd-compressed capture: decompress it first (zstd -d)",
    ),
    (
        b"\x04\x22\x4d\x18",
        "lz4-compressed capture: decompress it first (lz4 -d)",
    ),
];

/// One captured frame, borrowed from the reader's buffer until the next call.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// Seconds since the epoch.
    pub ts: f64,
    /// LINKTYPE_* of the frame's interface.
    pub linktype: u32,
    pub data: &'a [u8],
    /// Length on the wire; > data.len() when the capture was snapped.
    pub orig_len: u32,
}

/// What a reader counted; read after (or during) the run.
#[derive(Debug, Clone, Default)]
pub struct CaptureStats {
    pub frames: u64,
    /// Frames whose captured length is shorter than their wire length.
    pub snapped: u64,
    /// Bytes consumed from the (decompressed) stream so far.
    pub offset: u64,
    /// Bytes consumed from the underlying file (compressed), for progress bars.
    pub file_offset: u64,
}

/// pcap record layout, from the file's magic.
#[derive(Debug, Clone, Copy)]
struct PcapKind {
    big: bool,
    /// Timestamp fraction units per second.
    units: u32,
    /// Record header size (24 for Kuznetzov's patched libpcap).
    rec: usize,
}

fn pcap_kind(magic: &[u8]) -> Option<PcapKind> {
    let (big, units, rec) = match magic {
        [0xa1, 0xb2, 0xc3, 0xd4] => (true, 1_000_000, 16),
        [0xd4, 0xc3, 0xb2, 0xa1] => (false, 1_000_000, 16),
        [0xa1, 0xb2, 0x3c, 0x4d] => (true, 1_000_000_000, 16),
        [0x4d, 0x3c, 0xb2, 0xa1] => (false, 1_000_000_000, 16),
        [0xa1, 0xb2, 0xcd, 0x34] => (true, 1_000_000, 24),
        [0x34, 0xcd, 0xb2, 0xa1] => (false, 1_000_000, 24),
        _ => return None,
    };
    Some(PcapKind { big, units, rec })
}

/// Ticks per second of a pcapng interface; exact while it fits an integer.
#[derive(Debug, Clone, Copy)]
enum Resolution {
    Exact(u64),
    Approx(f64),
}

impl Resolution {
    fn from_tsresol(v: u8) -> Self {
        let e = u32::from(v & 0x7F);
        let exact = if v & 0x80 != 0 {
            1u64.checked_shl(e)
        } else {
            10u64.checked_pow(e)
        };
        match exact {
            Some(t) => Resolution::Exact(t),
            None if v & 0x80 != 0 => Resolution::Approx(2f64.powi(e as i32)),
            None => Resolution::Approx(10f64.powi(e as i32)),
        }
    }

    /// Seconds in `ticks`. Whole seconds and the remainder are converted separately so a
    /// nanosecond count (beyond f64's 53 bits) keeps its sub-second precision.
    fn seconds(self, ticks: u64) -> f64 {
        match self {
            Resolution::Exact(t) => (ticks / t) as f64 + (ticks % t) as f64 / t as f64,
            Resolution::Approx(t) => ticks as f64 / t,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Interface {
    linktype: u32,
    resolution: Resolution,
    tsoffset: i64,
    snaplen: u32,
}

enum State {
    /// Magic seen, file header not yet parsed.
    Start,
    Pcap {
        kind: PcapKind,
        linktype: u32,
    },
    Pcapng {
        big: bool,
        /// Interfaces of the current section.
        ifaces: Vec<Interface>,
        /// Time of the last timestamped packet: the SPB has none of its own.
        last_ts: f64,
    },
    Done,
}

/// Where a good record's frame lies in the buffer.
struct Found {
    ts: f64,
    linktype: u32,
    start: usize,
    len: usize,
    orig_len: u32,
}

/// Counts the bytes taken from the underlying file, below any decompressor.
struct Counting {
    inner: Box<dyn Read + Send>,
    count: Arc<AtomicU64>,
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// io::Error's text without Rust's " (os error N)" suffix, like Python's strerror.
fn strerror(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Read until `buf` is full or the source ends; the byte count read.
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// An opened source: the stream to parse, its compression, and the raw byte counter.
struct Opened {
    stream: Box<dyn Read + Send>,
    compression: Option<&'static str>,
    raw_count: Arc<AtomicU64>,
}

/// Whether an open failure is "this is not a capture we read" (a directory walk skips it)
/// rather than an I/O problem.
struct OpenError {
    error: CaptureError,
    unsupported: bool,
}

/// Detect compression from the first bytes without seeking: they are read, then put back
/// in front of the rest of the stream.
fn open_stream(name: &str, raw: Box<dyn Read + Send>) -> Result<Opened, OpenError> {
    let raw_count = Arc::new(AtomicU64::new(0));
    let mut counting = Counting {
        inner: raw,
        count: Arc::clone(&raw_count),
    };
    let mut head = [0u8; 6];
    let got = read_full(&mut counting, &mut head).map_err(|e| OpenError {
        error: CaptureError::new(name, 0, format!("cannot read: {}", strerror(&e))),
        unsupported: false,
    })?;
    let head = &head[..got];
    for (magic, reason) in UNSUPPORTED {
        if head.starts_with(magic) {
            return Err(OpenError {
                error: CaptureError::new(name, 0, reason),
                unsupported: true,
            });
        }
    }
    let joined = Cursor::new(head.to_vec()).chain(counting);
    let (stream, compression): (Box<dyn Read + Send>, _) = if head.starts_with(b"\x1f\x8b") {
        (
            Box::new(flate2::read::MultiGzDecoder::new(joined)),
            Some("gzip"),
        )
    } else if head.starts_with(b"BZh") {
        (
            Box::new(bzip2::read::MultiBzDecoder::new(joined)),
            Some("bzip2"),
        )
    } else if head.starts_with(b"\xfd7zXZ\x00") {
        (
            Box::new(xz2::read::XzDecoder::new_multi_decoder(joined)),
            Some("xz"),
        )
    } else {
        (Box::new(joined), None)
    };
    Ok(Opened {
        stream,
        compression,
        raw_count,
    })
}

fn open_file(path: &str) -> Result<File, CaptureError> {
    let file = File::open(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => CaptureError::new(path, 0, "no such file"),
        _ if e.raw_os_error() == Some(libc::EISDIR) => CaptureError::new(path, 0, "is a directory"),
        _ => CaptureError::new(path, 0, format!("cannot open: {}", strerror(&e))),
    })?;
    // Linux opens a directory for reading without complaint; the first read would fail.
    if file.metadata().map(|m| m.is_dir()).unwrap_or(false) {
        return Err(CaptureError::new(path, 0, "is a directory"));
    }
    Ok(file)
}

fn reason_for(head: &[u8], compression: Option<&str>) -> Option<String> {
    if head.len() >= 4 && (head[..4] == PCAPNG_MAGIC || pcap_kind(&head[..4]).is_some()) {
        return None;
    }
    let inner = match compression {
        Some(c) => format!("{c}-compressed, "),
        None => String::new(),
    };
    if head.is_empty() {
        return Some(format!("not a pcap/pcapng file ({inner}empty)"));
    }
    let hex: String = head.iter().take(4).map(|b| format!("{b:02x}")).collect();
    Some(format!("not a pcap/pcapng file ({inner}magic {hex})"))
}

#[inline]
fn rd16(b: &[u8], off: usize, big: bool) -> u16 {
    let a = [b[off], b[off + 1]];
    if big {
        u16::from_be_bytes(a)
    } else {
        u16::from_le_bytes(a)
    }
}

#[inline]
fn rd32(b: &[u8], off: usize, big: bool) -> u32 {
    let a = [b[off], b[off + 1], b[off + 2], b[off + 3]];
    if big {
        u32::from_be_bytes(a)
    } else {
        u32::from_le_bytes(a)
    }
}

/// A pcap record header's seconds, fraction, captured and wire lengths (`h` holds at least
/// its first 16 bytes).
#[inline]
fn pcap_fields(h: &[u8], big: bool) -> (u32, u32, u32, u32) {
    (
        rd32(h, 0, big),
        rd32(h, 4, big),
        rd32(h, 8, big),
        rd32(h, 12, big),
    )
}

fn ts_ok(ts: f64) -> bool {
    (MIN_TS..=MAX_TS).contains(&ts)
}

/// (link type, resolution, offset seconds, snap length) of an IDB at the start of `b`.
fn interface(b: &[u8], blen: usize, big: bool) -> Interface {
    let mut iface = Interface {
        linktype: u32::from(rd16(b, 8, big)),
        resolution: Resolution::Exact(1_000_000),
        tsoffset: 0,
        snaplen: rd32(b, 12, big),
    };
    let end = blen - 4;
    let mut p = 16;
    // Options are advisory; a malformed list ends option parsing instead of the file.
    while p + 4 <= end {
        let code = rd16(b, p, big);
        let olen = usize::from(rd16(b, p + 2, big));
        if code == 0 || p + 4 + olen > end {
            break;
        }
        if code == 9 && olen == 1 {
            iface.resolution = Resolution::from_tsresol(b[p + 4]);
        } else if code == 14 && olen == 8 {
            let mut v = [0u8; 8];
            v.copy_from_slice(&b[p + 4..p + 12]);
            iface.tsoffset = if big {
                i64::from_be_bytes(v)
            } else {
                i64::from_le_bytes(v)
            };
        }
        p += 4 + ((olen + 3) & !3);
    }
    iface
}

/// A streaming reader over one capture source.
pub struct CaptureReader {
    pub name: String,
    pub stats: CaptureStats,
    /// "gzip", "bzip2", "xz" or None.
    pub compression: Option<&'static str>,
    stream: Box<dyn Read + Send>,
    raw_count: Arc<AtomicU64>,
    /// buf[start..end] is unconsumed; `base` is the stream offset of buf[0].
    buf: Vec<u8>,
    start: usize,
    end: usize,
    base: u64,
    eof: bool,
    state: State,
    /// Bytes moved to the front of the buffer: each byte at most once, so work stays
    /// linear in the stream however records fall across reads.
    moved: u64,
}

impl CaptureReader {
    /// Open a path; "-" reads standard input. Detects compression and format by content.
    pub fn open(path: &str) -> Result<CaptureReader, CaptureError> {
        if path == "-" {
            return Self::from_reader(path, Box::new(io::stdin()));
        }
        let file = open_file(path)?;
        Self::from_reader(path, Box::new(file))
    }

    /// Read from any byte stream (non-seekable is fine); `name` is used in errors.
    pub fn from_reader(
        name: &str,
        reader: Box<dyn Read + Send>,
    ) -> Result<CaptureReader, CaptureError> {
        let opened = open_stream(name, reader).map_err(|e| e.error)?;
        let mut r = CaptureReader {
            name: name.to_string(),
            stats: CaptureStats::default(),
            compression: opened.compression,
            stream: opened.stream,
            raw_count: opened.raw_count,
            buf: Vec::new(),
            start: 0,
            end: 0,
            base: 0,
            eof: false,
            state: State::Start,
            moved: 0,
        };
        r.ensure(4)?;
        let avail = r.end - r.start;
        if let Some(reason) = reason_for(&r.buf[..avail.min(4)], r.compression) {
            return Err(CaptureError::new(name, 0, reason));
        }
        Ok(r)
    }

    /// The next frame, `Ok(None)` at the end (or after an error was returned once).
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        if matches!(self.state, State::Done) {
            return Ok(None);
        }
        let found = if let Some(f) = self.pcap_buffered() {
            Some(f)
        } else {
            self.next_found()?
        };
        self.sync_stats();
        let Some(f) = found else {
            self.state = State::Done;
            return Ok(None);
        };
        self.stats.frames += 1;
        if (f.len as u64) < u64::from(f.orig_len) {
            self.stats.snapped += 1;
        }
        Ok(Some(Frame {
            ts: f.ts,
            linktype: f.linktype,
            data: &self.buf[f.start..f.start + f.len],
            orig_len: f.orig_len,
        }))
    }

    /// The common case, taken first: a pcap record that is whole in the buffer and good.
    /// Anything else (more to read, damage, the end, pcapng) is left to `next_found`, which
    /// decides it exactly as before.
    #[inline]
    fn pcap_buffered(&mut self) -> Option<Found> {
        let State::Pcap { kind, linktype } = self.state else {
            return None;
        };
        let avail = &self.buf[self.start..self.end];
        let (sec, frac, caplen, wirelen) = pcap_fields(avail.get(..16)?, kind.big);
        if caplen > MAX_SNAPLEN {
            return None;
        }
        let need = kind.rec + caplen as usize;
        if avail.len() < need {
            return None;
        }
        let ts = f64::from(sec) + f64::from(frac) / f64::from(kind.units);
        if !ts_ok(ts) {
            return None;
        }
        let start = self.start + kind.rec;
        self.start += need;
        Some(Found {
            ts,
            linktype,
            start,
            len: caplen as usize,
            orig_len: wirelen,
        })
    }

    /// The next record by the general path; `Ok(None)` at the end.
    fn next_found(&mut self) -> Result<Option<Found>, CaptureError> {
        loop {
            let step = match &mut self.state {
                State::Done => return Ok(None),
                State::Start => self.file_header().map(|()| None),
                State::Pcap { kind, linktype } => {
                    let (kind, linktype) = (*kind, *linktype);
                    self.pcap_record(kind, linktype).map(Some)
                }
                State::Pcapng { .. } => self.pcapng_block().map(Some),
            };
            match step {
                Ok(None) => continue,
                Ok(Some(found)) => return Ok(found),
                Err(e) => {
                    self.state = State::Done;
                    self.sync_stats();
                    return Err(e);
                }
            }
        }
    }

    fn sync_stats(&mut self) {
        self.stats.offset = self.base + self.start as u64;
        self.stats.file_offset = match self.compression {
            None => self.stats.offset,
            Some(_) => self.raw_count.load(Ordering::Relaxed),
        };
    }

    fn fail(&self, reason: impl Into<String>) -> CaptureError {
        CaptureError::new(&*self.name, self.base + self.start as u64, reason)
    }

    /// Make `n` unconsumed bytes available at `start`; false when the stream ends first.
    /// `n` is at most MAX_BLOCK, checked by every caller before asking.
    fn ensure(&mut self, n: usize) -> Result<bool, CaptureError> {
        if self.end - self.start >= n {
            return Ok(true);
        }
        let buf = &mut self.buf;
        if self.start > 0 {
            buf.copy_within(self.start..self.end, 0);
            self.moved += (self.end - self.start) as u64;
            self.base += self.start as u64;
            self.end -= self.start;
            self.start = 0;
        }
        let want = n + CHUNK;
        if buf.len() < want {
            buf.resize(want, 0);
        }
        while self.end < n && !self.eof {
            match self.stream.read(&mut buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(k) => self.end += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let kind = match self.compression {
                        Some(c) => format!("{c} stream"),
                        None => "read".to_string(),
                    };
                    return Err(self.fail(format!("{kind} error: {}", strerror(&e))));
                }
            }
        }
        Ok(self.end >= n)
    }

    fn file_header(&mut self) -> Result<(), CaptureError> {
        let magic = [
            self.buf[self.start],
            self.buf[self.start + 1],
            self.buf[self.start + 2],
            self.buf[self.start + 3],
        ];
        if magic == PCAPNG_MAGIC {
            self.state = State::Pcapng {
                big: false,
                ifaces: Vec::new(),
                last_ts: 0.0,
            };
            return Ok(());
        }
        let Some(kind) = pcap_kind(&magic) else {
            return Err(self.fail("not a pcap/pcapng file"));
        };
        if !self.ensure(24)? {
            return Err(self.fail("truncated pcap file header"));
        }
        let h = &self.buf[self.start..self.start + 24];
        let (vmaj, vmin) = (rd16(h, 4, kind.big), rd16(h, 6, kind.big));
        if vmaj != 2 {
            return Err(self.fail(format!("unsupported pcap version {vmaj}.{vmin}")));
        }
        // The upper bits of the link-type field carry FCS information (pcap spec, LinkType).
        let linktype = rd32(h, 20, kind.big) & 0xFFFF;
        self.start += 24;
        self.state = State::Pcap { kind, linktype };
        Ok(())
    }

    /// The next pcap record; None at a clean end.
    fn pcap_record(
        &mut self,
        kind: PcapKind,
        linktype: u32,
    ) -> Result<Option<Found>, CaptureError> {
        let rec = kind.rec;
        if !self.ensure(rec)? {
            let avail = self.end - self.start;
            if avail == 0 {
                return Ok(None);
            }
            return Err(self.fail(format!("truncated record header ({avail} bytes)")));
        }
        let (sec, frac, caplen, wirelen) = pcap_fields(&self.buf[self.start..], kind.big);
        if caplen > MAX_SNAPLEN {
            return Err(self.fail(format!("record length {caplen} exceeds {MAX_SNAPLEN}")));
        }
        let need = rec + caplen as usize;
        if !self.ensure(need)? {
            let present = self.end - self.start - rec;
            return Err(self.fail(format!(
                "truncated record: {caplen} bytes announced, {present} present"
            )));
        }
        let ts = f64::from(sec) + f64::from(frac) / f64::from(kind.units);
        if !ts_ok(ts) {
            return Err(self.fail("timestamp out of range"));
        }
        let start = self.start + rec;
        self.start += need;
        Ok(Some(Found {
            ts,
            linktype,
            start,
            len: caplen as usize,
            orig_len: wirelen,
        }))
    }

    /// Blocks up to and including the next packet; None at a clean end.
    fn pcapng_block(&mut self) -> Result<Option<Found>, CaptureError> {
        loop {
            if !self.ensure(12)? {
                if self.end == self.start {
                    return Ok(None);
                }
                return Err(self.fail("truncated block header"));
            }
            let State::Pcapng { big, .. } = &mut self.state else {
                unreachable!("pcapng_block runs only in the pcapng state");
            };
            let pos = self.start;
            let btype = rd32(&self.buf, pos, *big);
            if btype == SHB {
                // The SHB magic reads the same in both orders; its byte-order magic decides
                // how everything up to the next SHB is read, this block's length included.
                match self.buf[pos + 8..pos + 12] {
                    [0x1a, 0x2b, 0x3c, 0x4d] => *big = true,
                    [0x4d, 0x3c, 0x2b, 0x1a] => *big = false,
                    _ => {
                        let hex: String = self.buf[pos + 8..pos + 12]
                            .iter()
                            .map(|b| format!("{b:02x}"))
                            .collect();
                        return Err(self.fail(format!("bad section byte-order magic {hex}")));
                    }
                }
            }
            let big = *big;
            let blen = rd32(&self.buf, pos + 4, big);
            if blen < 12 || blen % 4 != 0 || blen > MAX_BLOCK {
                return Err(self.fail(format!("bad block length {blen} (block type {btype:#x})")));
            }
            if btype == SHB && blen < 28 {
                return Err(self.fail(format!("bad section header length {blen}")));
            }
            let blen_u = blen as usize;
            if !self.ensure(blen_u)? {
                let present = self.end - self.start;
                return Err(self.fail(format!(
                    "truncated block: {blen} bytes announced, {present} present \
                     (block type {btype:#x})"
                )));
            }
            let pos = self.start;
            let b = &self.buf[pos..pos + blen_u];
            let trailer = rd32(b, blen_u - 4, big);
            if trailer != blen {
                return Err(self.fail(format!(
                    "block length {blen} does not match trailing length {trailer}"
                )));
            }
            let State::Pcapng {
                ifaces, last_ts, ..
            } = &mut self.state
            else {
                unreachable!("pcapng_block runs only in the pcapng state");
            };
            let mut found = None;
            match btype {
                EPB | PB => {
                    if blen < 32 {
                        return Err(self.fail(format!("packet block too short ({blen} bytes)")));
                    }
                    let ifid = if btype == EPB {
                        rd32(b, 8, big)
                    } else {
                        u32::from(rd16(b, 8, big))
                    };
                    let ticks = (u64::from(rd32(b, 12, big)) << 32) | u64::from(rd32(b, 16, big));
                    let caplen = rd32(b, 20, big);
                    let orig_len = rd32(b, 24, big);
                    let Some(iface) = ifaces.get(ifid as usize).copied() else {
                        return Err(self.fail(format!("packet for undeclared interface {ifid}")));
                    };
                    if caplen > MAX_SNAPLEN {
                        return Err(
                            self.fail(format!("packet length {caplen} exceeds {MAX_SNAPLEN}"))
                        );
                    }
                    if 28 + caplen > blen - 4 {
                        return Err(self.fail(format!(
                            "packet length {caplen} overruns its {blen}-byte block"
                        )));
                    }
                    let ts = iface.resolution.seconds(ticks) + iface.tsoffset as f64;
                    if !ts_ok(ts) {
                        return Err(self.fail("timestamp out of range"));
                    }
                    *last_ts = ts;
                    found = Some(Found {
                        ts,
                        linktype: iface.linktype,
                        start: pos + 28,
                        len: caplen as usize,
                        orig_len,
                    });
                }
                SPB => {
                    if blen < 16 {
                        return Err(
                            self.fail(format!("simple packet block too short ({blen} bytes)"))
                        );
                    }
                    let Some(iface) = ifaces.first().copied() else {
                        return Err(
                            self.fail("simple packet block before any interface description")
                        );
                    };
                    let wirelen = rd32(b, 8, big);
                    // The SPB has no captured length: it is the original length capped by
                    // the interface's snap length, and the block must hold it.
                    let caplen = if iface.snaplen != 0 {
                        wirelen.min(iface.snaplen)
                    } else {
                        wirelen
                    };
                    if caplen > MAX_SNAPLEN {
                        return Err(
                            self.fail(format!("packet length {caplen} exceeds {MAX_SNAPLEN}"))
                        );
                    }
                    if 12 + caplen > blen - 4 {
                        return Err(self.fail(format!(
                            "packet length {caplen} overruns its {blen}-byte block"
                        )));
                    }
                    found = Some(Found {
                        ts: *last_ts,
                        linktype: iface.linktype,
                        start: pos + 12,
                        len: caplen as usize,
                        orig_len: wirelen,
                    });
                }
                IDB => {
                    if blen < 20 {
                        return Err(
                            self.fail(format!("interface description too short ({blen} bytes)"))
                        );
                    }
                    if ifaces.len() >= MAX_INTERFACES {
                        return Err(self.fail(format!(
                            "more than {MAX_INTERFACES} interfaces in one section"
                        )));
                    }
                    ifaces.push(interface(b, blen_u, big));
                }
                SHB => {
                    let (major, minor) = (rd16(b, 12, big), rd16(b, 14, big));
                    if major != 1 {
                        return Err(
                            self.fail(format!("unsupported pcapng version {major}.{minor}"))
                        );
                    }
                    ifaces.clear();
                }
                _ => {}
            }
            self.start = pos + blen_u;
            if found.is_some() {
                return Ok(found);
            }
        }
    }
}

/// Why a file is not a capture (None: it is one), judged from its first bytes after
/// decompression; used for directory walks and explicit paths alike.
pub fn not_capture_reason(head: &[u8]) -> Option<String> {
    reason_for(head, None)
}

/// None when `path` is a capture we read, else why not; Err when it cannot be opened.
fn sniff(path: &str) -> Result<Option<String>, OpenError> {
    let file = open_file(path).map_err(|error| OpenError {
        error,
        unsupported: false,
    })?;
    let mut opened = open_stream(path, Box::new(file))?;
    let mut head = [0u8; 4];
    match read_full(&mut opened.stream, &mut head) {
        Ok(n) => Ok(reason_for(&head[..n], opened.compression)),
        Err(e) => Ok(Some(format!(
            "not a pcap/pcapng file ({} stream error: {})",
            opened.compression.unwrap_or("read"),
            strerror(&e)
        ))),
    }
}

fn walk(dir: &Path, found: &mut Vec<String>, errors: &mut Vec<CaptureError>) {
    // Like os.walk: an unreadable directory is skipped silently.
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(ftype) = entry.file_type() else {
            continue;
        };
        if ftype.is_dir() {
            walk(&path, found, errors);
            continue;
        }
        // Symlinks count by what they point at, but a linked directory is not entered
        // (os.walk without followlinks); sockets, FIFOs and dangling links are skipped.
        let is_file = if ftype.is_symlink() {
            std::fs::metadata(&path)
                .map(|m| m.is_file())
                .unwrap_or(false)
        } else {
            ftype.is_file()
        };
        if !is_file {
            continue;
        }
        let name = path.to_string_lossy().into_owned();
        match sniff(&name) {
            Ok(None) => found.push(name),
            Ok(Some(_)) => {}
            Err(e) if e.unsupported => {}
            Err(e) => errors.push(e.error),
        }
    }
}

/// Expand paths: files stay as given (a missing or non-capture explicit path is an error in
/// the second list, the rest still returned); directories are walked recursively, sorted,
/// keeping only files recognised as captures by content. "-" stays "-".
pub fn expand_paths(paths: &[String]) -> (Vec<String>, Vec<CaptureError>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        if path == "-" {
            out.push(path.clone());
            continue;
        }
        let p = Path::new(path);
        if p.is_dir() {
            let mut found = Vec::new();
            walk(p, &mut found, &mut errors);
            found.sort();
            out.extend(found);
        } else if p.exists() {
            match sniff(path) {
                Ok(None) => out.push(path.clone()),
                Ok(Some(reason)) => errors.push(CaptureError::new(path.as_str(), 0, reason)),
                Err(e) => errors.push(e.error),
            }
        } else {
            errors.push(CaptureError::new(path.as_str(), 0, "no such file"));
        }
    }
    (out, errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Write;

    /// A pipe-like source: hands out at most `step` bytes per read and cannot seek (it only
    /// implements Read), like stdin.
    struct Trickle {
        inner: Cursor<Vec<u8>>,
        step: usize,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.step);
            self.inner.read(&mut buf[..n])
        }
    }

    fn reader(data: &[u8]) -> Result<CaptureReader, CaptureError> {
        CaptureReader::from_reader("t", Box::new(Cursor::new(data.to_vec())))
    }

    fn trickle(data: &[u8], step: usize) -> Result<CaptureReader, CaptureError> {
        let src = Trickle {
            inner: Cursor::new(data.to_vec()),
            step,
        };
        CaptureReader::from_reader("t", Box::new(src))
    }

    #[derive(Debug, Clone, PartialEq)]
    struct Got {
        ts: f64,
        linktype: u32,
        data: Vec<u8>,
        orig_len: u32,
    }

    /// Every frame, then the error that ended the stream (if any).
    fn drain(mut r: CaptureReader) -> (Vec<Got>, Option<CaptureError>, CaptureReader) {
        let mut out = Vec::new();
        loop {
            match r.next_frame() {
                Ok(Some(f)) => out.push(Got {
                    ts: f.ts,
                    linktype: f.linktype,
                    data: f.data.to_vec(),
                    orig_len: f.orig_len,
                }),
                Ok(None) => return (out, None, r),
                Err(e) => {
                    assert!(matches!(r.next_frame(), Ok(None)), "frames after an error");
                    return (out, Some(e), r);
                }
            }
        }
    }

    fn read_all(data: &[u8]) -> (Vec<Got>, Option<CaptureError>) {
        let (frames, err, _) = drain(reader(data).expect("opens"));
        (frames, err)
    }

    fn err_of(data: &[u8]) -> CaptureError {
        match reader(data) {
            Err(e) => e,
            Ok(r) => drain(r).1.expect("an error"),
        }
    }

    // ---- pcap writer ----

    fn p16(big: bool, v: u16) -> [u8; 2] {
        if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    fn p32(big: bool, v: u32) -> [u8; 4] {
        if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    /// (seconds, fraction, data, wire length)
    type Rec<'a> = (u32, u32, &'a [u8], u32);

    fn pcap(big: bool, magic: u32, linktype: u32, recs: &[Rec<'_>]) -> Vec<u8> {
        let kuz = magic == 0xa1b2_cd34;
        let mut f = p32(big, magic).to_vec();
        f.extend_from_slice(&p16(big, 2));
        f.extend_from_slice(&p16(big, 4));
        f.extend_from_slice(&[0; 8]);
        f.extend_from_slice(&p32(big, 65535));
        f.extend_from_slice(&p32(big, linktype));
        for (sec, frac, data, wire) in recs {
            f.extend_from_slice(&p32(big, *sec));
            f.extend_from_slice(&p32(big, *frac));
            f.extend_from_slice(&p32(big, data.len() as u32));
            f.extend_from_slice(&p32(big, *wire));
            if kuz {
                f.extend_from_slice(&[0, 0, 0, 3, 0x08, 0x00, 0, 0]);
            }
            f.extend_from_slice(data);
        }
        f
    }

    const US: u32 = 0xa1b2_c3d4;
    const NS: u32 = 0xa1b2_3c4d;
    const KUZ: u32 = 0xa1b2_cd34;

    fn three() -> [Rec<'static>; 3] {
        [
            (1_700_000_000, 250_000, b"first frame", 11),
            (1_700_000_001, 0, b"second, snapped", 1500),
            (1_700_000_002, 999_999, b"", 0),
        ]
    }

    /// Record boundaries of a pcap built from `recs`: (start, end) of each record.
    fn pcap_bounds(rec: usize, recs: &[Rec<'_>]) -> Vec<(usize, usize)> {
        let mut at = 24;
        recs.iter()
            .map(|r| {
                let s = at;
                at += rec + r.2.len();
                (s, at)
            })
            .collect()
    }

    // ---- pcapng writer ----

    fn block(big: bool, btype: u32, body: &[u8]) -> Vec<u8> {
        let mut body = body.to_vec();
        while body.len() % 4 != 0 {
            body.push(0);
        }
        let blen = 12 + body.len() as u32;
        let mut b = p32(big, btype).to_vec();
        b.extend_from_slice(&p32(big, blen));
        b.extend_from_slice(&body);
        b.extend_from_slice(&p32(big, blen));
        b
    }

    fn shb(big: bool) -> Vec<u8> {
        let mut body = p32(big, 0x1a2b_3c4d).to_vec();
        body.extend_from_slice(&p16(big, 1));
        body.extend_from_slice(&p16(big, 0));
        body.extend_from_slice(&[0xff; 8]);
        block(big, SHB, &body)
    }

    fn idb(big: bool, linktype: u16, snaplen: u32, opts: &[(u16, &[u8])]) -> Vec<u8> {
        let mut body = p16(big, linktype).to_vec();
        body.extend_from_slice(&[0, 0]);
        body.extend_from_slice(&p32(big, snaplen));
        for (code, val) in opts {
            body.extend_from_slice(&p16(big, *code));
            body.extend_from_slice(&p16(big, val.len() as u16));
            body.extend_from_slice(val);
            while body.len() % 4 != 0 {
                body.push(0);
            }
        }
        if !opts.is_empty() {
            body.extend_from_slice(&[0; 4]);
        }
        block(big, IDB, &body)
    }

    fn epb(big: bool, ifid: u32, ticks: u64, data: &[u8], wire: u32) -> Vec<u8> {
        let mut body = p32(big, ifid).to_vec();
        body.extend_from_slice(&p32(big, (ticks >> 32) as u32));
        body.extend_from_slice(&p32(big, ticks as u32));
        body.extend_from_slice(&p32(big, data.len() as u32));
        body.extend_from_slice(&p32(big, wire));
        body.extend_from_slice(data);
        block(big, EPB, &body)
    }

    fn pb(big: bool, ifid: u16, ticks: u64, data: &[u8]) -> Vec<u8> {
        let mut body = p16(big, ifid).to_vec();
        body.extend_from_slice(&p16(big, 0));
        body.extend_from_slice(&p32(big, (ticks >> 32) as u32));
        body.extend_from_slice(&p32(big, ticks as u32));
        body.extend_from_slice(&p32(big, data.len() as u32));
        body.extend_from_slice(&p32(big, data.len() as u32));
        body.extend_from_slice(data);
        block(big, PB, &body)
    }

    fn spb(big: bool, wire: u32, data: &[u8]) -> Vec<u8> {
        let mut body = p32(big, wire).to_vec();
        body.extend_from_slice(data);
        block(big, SPB, &body)
    }

    /// Two sections in opposite byte orders, several interfaces and resolutions, SPB, PB
    /// and unknown blocks; the frames it must yield.
    fn pcapng_sample() -> (Vec<u8>, Vec<Got>) {
        let mut f = Vec::new();
        f.extend(shb(false));
        f.extend(block(false, 0x0BAD, b"unknown block, skipped"));
        f.extend(idb(false, 1, 0, &[]));
        f.extend(epb(false, 0, 1_700_000_000_250_000, b"usec", 4));
        // Interfaces may be declared after packets of other interfaces.
        f.extend(idb(
            false,
            101,
            0,
            &[(2, b"eth1"), (9, &[9]), (14, &(-100i64).to_le_bytes())],
        ));
        f.extend(epb(
            false,
            1,
            1_700_000_000_123_456_789,
            b"nsec+offset",
            1500,
        ));
        f.extend(block(false, 5, b"interface statistics"));
        f.extend(pb(false, 0, 1_700_000_001_000_000, b"obsolete"));
        f.extend(spb(false, 9, b"simple!!!"));
        f.extend(shb(true));
        f.extend(idb(true, 113, 4, &[(9, &[0x80 | 10])]));
        f.extend(epb(true, 0, 1_740_800_000 * 1024 + 512, b"pow2", 4));
        f.extend(spb(true, 100, b"snap"));
        let frames = vec![
            Got {
                ts: 1_700_000_000.25,
                linktype: 1,
                data: b"usec".to_vec(),
                orig_len: 4,
            },
            Got {
                ts: 1_700_000_000.0 + 123_456_789.0 / 1e9 - 100.0,
                linktype: 101,
                data: b"nsec+offset".to_vec(),
                orig_len: 1500,
            },
            Got {
                ts: 1_700_000_001.0,
                linktype: 1,
                data: b"obsolete".to_vec(),
                orig_len: 8,
            },
            Got {
                ts: 1_700_000_001.0,
                linktype: 1,
                data: b"simple!!!".to_vec(),
                orig_len: 9,
            },
            Got {
                ts: 1_740_800_000.5,
                linktype: 113,
                data: b"pow2".to_vec(),
                orig_len: 4,
            },
            Got {
                ts: 1_740_800_000.5,
                linktype: 113,
                data: b"snap".to_vec(),
                orig_len: 100,
            },
        ];
        (f, frames)
    }

    /// Start and end of every block of a pcapng file.
    fn pcapng_bounds(data: &[u8]) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut at = 0;
        let mut big = false;
        while at < data.len() {
            if rd32(data, at, false) == SHB {
                big = data[at + 8] == 0x1a;
            }
            let blen = rd32(data, at + 4, big) as usize;
            out.push((at, at + blen));
            at += blen;
        }
        out
    }

    // ---- pcap ----

    #[test]
    fn pcap_byte_orders_and_resolutions() {
        for big in [false, true] {
            for (magic, units) in [(US, 1e6), (NS, 1e9), (KUZ, 1e6)] {
                let recs = three();
                let (frames, err) = read_all(&pcap(big, magic, 1, &recs));
                assert!(err.is_none(), "{err:?}");
                assert_eq!(frames.len(), 3);
                for (f, r) in frames.iter().zip(recs.iter()) {
                    assert_eq!(f.ts, f64::from(r.0) + f64::from(r.1) / units);
                    assert_eq!((f.linktype, &f.data[..], f.orig_len), (1, r.2, r.3));
                }
            }
        }
    }

    #[test]
    fn pcap_nanoseconds_keep_precision_and_snapped_frames_are_counted() {
        let data = pcap(false, NS, 1, &three());
        let (frames, err, r) = drain(reader(&data).unwrap());
        assert!(err.is_none());
        assert_eq!(frames[2].ts, 1_700_000_002.0 + 999_999.0 / 1e9);
        assert_eq!((r.stats.frames, r.stats.snapped), (3, 1));
        assert_eq!(r.stats.offset, data.len() as u64);
        assert_eq!(r.stats.file_offset, data.len() as u64);
    }

    #[test]
    fn pcap_fcs_bits_in_linktype_are_ignored() {
        let (frames, _) = read_all(&pcap(false, US, 0x1000_0001, &three()));
        assert!(frames.iter().all(|f| f.linktype == 1));
    }

    #[test]
    fn pcap_errors() {
        let mut bad = pcap(false, US, 1, &three());
        bad[4] = 3;
        assert_eq!(
            err_of(&bad).to_string(),
            "t: offset 0: unsupported pcap version 3.4"
        );
        let good = pcap(false, US, 1, &three());
        assert_eq!(
            err_of(&good[..20]).to_string(),
            "t: offset 0: truncated pcap file header"
        );
        let mut huge = good.clone();
        let b = pcap_bounds(16, &three());
        huge[b[1].0 + 8..b[1].0 + 12].copy_from_slice(&0x7fff_fff0u32.to_le_bytes());
        let (frames, err) = read_all(&huge);
        assert_eq!(frames.len(), 1);
        let err = err.unwrap();
        assert_eq!(err.offset, b[1].0 as u64);
        assert_eq!(err.reason, "record length 2147483632 exceeds 262144");
    }

    #[test]
    fn pcap_record_of_exactly_max_snaplen() {
        let big = vec![0x5a; MAX_SNAPLEN as usize];
        let data = pcap(true, US, 1, &[(1, 0, &big, MAX_SNAPLEN), (2, 0, b"x", 1)]);
        let (frames, err) = read_all(&data);
        assert!(err.is_none());
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].data.len(), MAX_SNAPLEN as usize);
    }

    #[test]
    fn pcap_truncated_at_every_offset() {
        for magic in [US, KUZ] {
            let recs = three();
            let data = pcap(false, magic, 1, &recs);
            let rec = if magic == KUZ { 24 } else { 16 };
            let bounds = pcap_bounds(rec, &recs);
            let (all, _) = read_all(&data);
            for cut in 0..data.len() {
                let part = &data[..cut];
                if cut < 4 {
                    assert!(reader(part).is_err());
                    continue;
                }
                let (frames, err) = read_all(part);
                let done = bounds.iter().filter(|b| b.1 <= cut).count();
                assert_eq!(frames, all[..done], "cut {cut}");
                if cut < 24 {
                    assert_eq!(err.unwrap().offset, 0);
                } else if bounds.iter().any(|b| b.1 == cut) || cut == 24 {
                    assert!(err.is_none(), "cut {cut}: {err:?}");
                } else {
                    let err = err.expect("damage reported");
                    assert_eq!(err.offset, bounds[done].0 as u64, "cut {cut}");
                    assert!(err.reason.starts_with("truncated record"), "{err}");
                }
            }
        }
    }

    // ---- pcapng ----

    #[test]
    fn pcapng_sections_interfaces_resolutions_and_block_types() {
        let (data, want) = pcapng_sample();
        for step in [1, 3, 7, 1 << 20] {
            let (frames, err, r) = drain(trickle(&data, step).unwrap());
            assert!(err.is_none(), "{err:?}");
            assert_eq!(frames, want);
            assert_eq!((r.stats.frames, r.stats.snapped), (6, 2));
            assert_eq!(r.stats.offset, data.len() as u64);
        }
    }

    #[test]
    fn pcapng_spb_capped_by_snaplen() {
        let mut f = shb(false);
        f.extend(idb(false, 1, 4, &[]));
        f.extend(spb(false, 100, b"abcdefgh"));
        let (frames, err) = read_all(&f);
        assert!(err.is_none());
        assert_eq!(frames[0].data, b"abcd");
        assert_eq!(frames[0].orig_len, 100);
    }

    #[test]
    fn pcapng_errors() {
        let head = [shb(false), idb(false, 1, 0, &[])].concat();
        let at = head.len() as u64;
        let cases: Vec<(Vec<u8>, u64, &str)> = vec![
            (
                epb(false, 3, 0, b"x", 1),
                at,
                "packet for undeclared interface 3",
            ),
            (
                block(false, 0x0BAD, &[0; 8])[..16]
                    .iter()
                    .chain(&[0; 4])
                    .copied()
                    .collect(),
                at,
                "block length 20 does not match trailing length 0",
            ),
            (
                [&1u32.to_le_bytes()[..], &13u32.to_le_bytes(), &[0; 8]].concat(),
                at,
                "bad block length 13 (block type 0x1)",
            ),
            (
                [
                    &6u32.to_le_bytes()[..],
                    &0x0200_0000u32.to_le_bytes(),
                    &[0; 8],
                ]
                .concat(),
                at,
                "bad block length 33554432 (block type 0x6)",
            ),
            (
                block(false, EPB, &[0; 16]),
                at,
                "packet block too short (28 bytes)",
            ),
            (
                {
                    let mut b = epb(false, 0, 0, b"abcd", 4);
                    b[20..24].copy_from_slice(&400_000u32.to_le_bytes());
                    b
                },
                at,
                "packet length 400000 exceeds 262144",
            ),
            (
                {
                    let mut b = epb(false, 0, 0, b"abcd", 4);
                    b[20..24].copy_from_slice(&5u32.to_le_bytes());
                    b
                },
                at,
                "packet length 5 overruns its 36-byte block",
            ),
            (
                block(false, IDB, &[0; 4]),
                at,
                "interface description too short (16 bytes)",
            ),
            (
                [&shb(false)[..12], &[2, 0, 0, 0], &shb(false)[16..]].concat(),
                at,
                "unsupported pcapng version 2.0",
            ),
            (
                [&shb(false)[..8], &[1, 2, 3, 4], &shb(false)[12..]].concat(),
                at,
                "bad section byte-order magic 01020304",
            ),
            (
                epb(false, 0, 0, b"x", 1)[..20].to_vec(),
                at,
                "truncated block: 36 bytes announced, 20 present (block type 0x6)",
            ),
            (vec![6, 0, 0, 0, 1], at, "truncated block header"),
        ];
        for (tail, offset, reason) in cases {
            let data = [&head[..], &tail].concat();
            let err = err_of(&data);
            assert_eq!((err.offset, err.reason.as_str()), (offset, reason));
        }
        // An SPB needs an interface; a new section forgets the old one's interfaces.
        let err = err_of(&[shb(false), spb(false, 1, b"x")].concat());
        assert_eq!(
            err.reason,
            "simple packet block before any interface description"
        );
        let two = [head.clone(), shb(true), epb(true, 0, 0, b"x", 1)].concat();
        let err = err_of(&two);
        assert_eq!(err.reason, "packet for undeclared interface 0");
        assert_eq!(err.offset, (head.len() + 28) as u64);
    }

    #[test]
    fn timestamps_out_of_range_are_damage() {
        // A negative if_tsoffset before the epoch, and 2^63 seconds.
        let early = [
            shb(false),
            idb(false, 1, 0, &[(14, &(-10i64).to_le_bytes())]),
            epb(false, 0, 5_000_000, b"ok", 2),
            epb(false, 0, 1_000_000, b"before 1970", 11),
        ]
        .concat();
        let (frames, err) = read_all(&early);
        assert_eq!(frames.len(), 0);
        let err = err.unwrap();
        assert_eq!(err.reason, "timestamp out of range");
        let before = [
            shb(false),
            idb(false, 1, 0, &[(14, &(-10i64).to_le_bytes())]),
        ]
        .concat();
        assert_eq!(err.offset, before.len() as u64);

        let late = [
            shb(true),
            idb(true, 1, 0, &[(9, &[0])]),
            epb(true, 0, 1_700_000_000, b"ok", 2),
            epb(true, 0, 1 << 63, b"year 292 billion", 16),
        ]
        .concat();
        let (frames, err) = read_all(&late);
        assert_eq!(frames.len(), 1);
        assert_eq!(err.unwrap().reason, "timestamp out of range");
        // Tiny resolutions stay finite and in range.
        let fine = [
            shb(false),
            idb(false, 1, 0, &[(9, &[0x7f])]),
            epb(false, 0, u64::MAX, b"", 0),
        ]
        .concat();
        let (frames, err) = read_all(&fine);
        assert!(err.is_none());
        assert!(frames[0].ts < 1e-100);
    }

    #[test]
    fn pcapng_truncated_at_every_offset() {
        let (data, want) = pcapng_sample();
        let bounds = pcapng_bounds(&data);
        let packet_ends: Vec<usize> = {
            // Frames are yielded when their block completes; find those blocks.
            let mut ends = Vec::new();
            for (s, e) in &bounds {
                let btype = u32::from_le_bytes(data[*s..*s + 4].try_into().unwrap());
                let btype_be = u32::from_be_bytes(data[*s..*s + 4].try_into().unwrap());
                if [EPB, PB, SPB].contains(&btype) || [EPB, SPB].contains(&btype_be) {
                    ends.push(*e);
                }
            }
            ends
        };
        assert_eq!(packet_ends.len(), want.len());
        for cut in 4..data.len() {
            let (frames, err) = read_all(&data[..cut]);
            let done = packet_ends.iter().filter(|e| **e <= cut).count();
            assert_eq!(frames, want[..done], "cut {cut}");
            let at = bounds.iter().find(|b| b.0 <= cut && cut < b.1).unwrap();
            if at.0 == cut {
                assert!(err.is_none(), "cut {cut}: {err:?}");
            } else {
                let err = err.expect("damage reported");
                assert_eq!(err.offset, at.0 as u64, "cut {cut}: {err}");
                assert!(err.reason.starts_with("truncated block"), "{err}");
            }
        }
    }

    // ---- compression, sources, not-captures ----

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn bzip(data: &[u8]) -> Vec<u8> {
        let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn xz(data: &[u8]) -> Vec<u8> {
        let mut e = xz2::write::XzEncoder::new(Vec::new(), 6);
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn compressed_captures_detected_by_magic() {
        let (ng, want) = pcapng_sample();
        let plain = pcap(true, NS, 1, &three());
        let (plain_frames, _) = read_all(&plain);
        for (name, pack) in [
            ("gzip", gzip as fn(&[u8]) -> Vec<u8>),
            ("bzip2", bzip),
            ("xz", xz),
        ] {
            for step in [2, 1 << 16] {
                let packed = pack(&ng);
                let (frames, err, r) = drain(trickle(&packed, step).unwrap());
                assert!(err.is_none(), "{name}: {err:?}");
                assert_eq!(r.compression, Some(name));
                assert_eq!(frames, want);
                assert_eq!(r.stats.offset, ng.len() as u64);
                assert_eq!(r.stats.file_offset, packed.len() as u64, "{name}");
            }
            // Concatenated members/streams read as one.
            let (a, b) = plain.split_at(40);
            let multi = [pack(a), pack(b)].concat();
            let (frames, err) = read_all(&multi);
            assert!(err.is_none(), "{name} multi: {err:?}");
            assert_eq!(frames, plain_frames);
            // A compressed non-capture says so.
            let err = err_of(&pack(b"hello world"));
            assert_eq!(
                err.reason,
                format!("not a pcap/pcapng file ({name}-compressed, magic 68656c6c)")
            );
        }
    }

    #[test]
    fn truncated_gzip_yields_good_frames_then_fails() {
        let recs: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; 100 + usize::from(i)]).collect();
        let r: Vec<Rec<'_>> = recs
            .iter()
            .enumerate()
            .map(|(i, d)| (i as u32 + 1, 0, &d[..], d.len() as u32))
            .collect();
        let data = pcap(false, US, 1, &r);
        let packed = gzip(&data);
        let (all, _) = read_all(&data);
        for cut in 2..packed.len() {
            let (frames, err) = match reader(&packed[..cut]) {
                Ok(rd) => {
                    let (f, e, _) = drain(rd);
                    (f, e)
                }
                Err(e) => (Vec::new(), Some(e)),
            };
            assert_eq!(frames, all[..frames.len()], "cut {cut}");
            assert!(err.is_some(), "cut {cut}: truncation not reported");
        }
    }

    #[test]
    fn unsupported_compression_named() {
        let err = err_of(b"\x28\xb5\x2f\xfd\0\0\0\0");
        assert_eq!(
            err.to_string(),
            "t: offset 0: zstd-compressed capture: decompress it first (zstd -d)"
        );
        let err = err_of(b"\x04\x22\x4d\x18\0\0\0\0");
        assert_eq!(
            err.reason,
            "lz4-compressed capture: decompress it first (lz4 -d)"
        );
    }

    #[test]
    fn not_a_capture() {
        assert_eq!(err_of(b"").reason, "not a pcap/pcapng file (empty)");
        assert_eq!(
            err_of(b"GET / HTTP/1.1\r\n").reason,
            "not a pcap/pcapng file (magic 47455420)"
        );
        assert_eq!(err_of(b"ab").reason, "not a pcap/pcapng file (magic 6162)");
        assert_eq!(not_capture_reason(&pcap(false, US, 1, &[])), None);
        assert_eq!(not_capture_reason(&shb(true)), None);
        assert!(not_capture_reason(b"\0\0\0\0").is_some());
    }

    #[test]
    fn records_straddling_read_chunks() {
        // Larger than several read chunks, records of every size up to a few KiB.
        let recs: Vec<Vec<u8>> = (0..700usize)
            .map(|i| vec![(i % 251) as u8; (i * 37) % 3000])
            .collect();
        let r: Vec<Rec<'_>> = recs
            .iter()
            .map(|d| (7, 0, &d[..], d.len() as u32))
            .collect();
        let data = pcap(false, US, 1, &r);
        assert!(data.len() > 3 * CHUNK);
        for step in [1000, 4093, CHUNK + 1] {
            let (frames, err, rd) = drain(trickle(&data, step).unwrap());
            assert!(err.is_none());
            assert_eq!(frames.len(), recs.len());
            assert!(frames.iter().zip(&recs).all(|(f, d)| f.data == *d));
            assert!(rd.moved <= data.len() as u64);
            assert!(rd.buf.len() <= MAX_SNAPLEN as usize + 24 + CHUNK);
        }
    }

    // ---- files and directories ----

    fn tmpdir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("nd-capture-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn open_files_and_their_errors() {
        let d = tmpdir("open");
        let p = d.join("a.cap");
        std::fs::write(&p, gzip(&pcap(false, US, 1, &three()))).unwrap();
        let (frames, err, r) = drain(CaptureReader::open(p.to_str().unwrap()).unwrap());
        assert!(err.is_none());
        assert_eq!(frames.len(), 3);
        assert_eq!(r.stats.file_offset, std::fs::metadata(&p).unwrap().len());
        let missing = d.join("missing.pcap");
        let err = CaptureReader::open(missing.to_str().unwrap())
            .err()
            .unwrap();
        assert_eq!(err.reason, "no such file");
        let err = CaptureReader::open(d.to_str().unwrap()).err().unwrap();
        assert_eq!(err.reason, "is a directory");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn expand_paths_recurses_sorted_by_content() {
        let d = tmpdir("expand");
        std::fs::create_dir_all(d.join("b/deeper")).unwrap();
        std::fs::create_dir_all(d.join("a")).unwrap();
        let cap = pcap(false, US, 1, &three());
        std::fs::write(d.join("b/deeper/z.bin"), &cap).unwrap();
        std::fs::write(d.join("b/one.pcap.gz"), gzip(&cap)).unwrap();
        std::fs::write(d.join("a/capture.dat"), shb(false)).unwrap();
        std::fs::write(d.join("a/notes.pcap"), b"not a capture").unwrap();
        std::fs::write(d.join("a/packed.zst"), b"\x28\xb5\x2f\xfd....").unwrap();
        std::fs::write(d.join("empty.pcap"), b"").unwrap();
        let s = |p: std::path::PathBuf| p.to_str().unwrap().to_string();
        let (found, errors) = expand_paths(&[s(d.clone())]);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            found,
            [
                s(d.join("a/capture.dat")),
                s(d.join("b/deeper/z.bin")),
                s(d.join("b/one.pcap.gz"))
            ]
        );
        let (found, errors) = expand_paths(&[
            s(d.join("a/notes.pcap")),
            "-".to_string(),
            s(d.join("nope")),
            s(d.join("a/packed.zst")),
            s(d.join("b/deeper/z.bin")),
        ]);
        assert_eq!(found, ["-".to_string(), s(d.join("b/deeper/z.bin"))]);
        let reasons: Vec<&str> = errors.iter().map(|e| e.reason.as_str()).collect();
        assert_eq!(
            reasons,
            [
                "not a pcap/pcapng file (magic 6e6f7420)",
                "no such file",
                "zstd-compressed capture: decompress it first (zstd -d)"
            ]
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    /// The repository's own captures all read to the end.
    #[test]
    fn repository_captures_read_cleanly() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/pcaps");
        let (paths, errors) = expand_paths(&[dir.to_string()]);
        assert!(errors.is_empty());
        for p in paths {
            let (frames, err, _) = drain(CaptureReader::open(&p).unwrap());
            assert!(err.is_none(), "{p}: {err:?}");
            assert!(!frames.is_empty(), "{p}");
        }
    }

    // ---- fuzzing ----

    fn finish(r: Result<CaptureReader, CaptureError>, len: usize) {
        let Ok(mut r) = r else { return };
        let mut n = 0usize;
        loop {
            match r.next_frame() {
                Ok(Some(f)) => {
                    assert!(ts_ok(f.ts));
                    assert!(f.data.len() <= MAX_SNAPLEN as usize);
                    n += 1;
                    // Every frame consumes at least a 12-byte header of the stream.
                    assert!(n * 12 <= len.max(1) * 1000, "runaway");
                }
                Ok(None) => break,
                Err(_) => {
                    assert!(matches!(r.next_frame(), Ok(None)));
                    break;
                }
            }
        }
        assert!(r.moved <= r.stats.offset + r.buf.len() as u64);
        assert!(r.buf.len() <= MAX_BLOCK as usize + CHUNK);
    }

    fn samples() -> Vec<Vec<u8>> {
        vec![
            pcapng_sample().0,
            pcap(false, US, 1, &three()),
            pcap(true, KUZ, 1, &three()),
            pcap(false, NS, 1, &three()),
        ]
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(
            magic in prop::sample::select(vec![
                vec![], vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0], vec![0xa1, 0xb2, 0x3c, 0x4d, 0, 2],
                vec![0x34, 0xcd, 0xb2, 0xa1, 2, 0], vec![0x0a, 0x0d, 0x0d, 0x0a],
            ]),
            body in prop::collection::vec(any::<u8>(), 0..400),
            step in 1usize..64,
        ) {
            let data = [&magic[..], &body].concat();
            finish(trickle(&data, step), data.len());
        }

        #[test]
        fn mutated_captures_never_panic(
            which in any::<prop::sample::Index>(),
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
            cut in any::<prop::sample::Index>(),
            step in 1usize..100,
        ) {
            let all = samples();
            let mut data = all[which.index(all.len())].clone();
            for (at, v) in flips {
                let i = at.index(data.len());
                data[i] = v;
            }
            data.truncate(cut.index(data.len() + 1));
            finish(trickle(&data, step), data.len());
        }

        #[test]
        fn mutated_gzip_never_panics(
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        ) {
            let mut data = gzip(&pcapng_sample().0);
            for (at, v) in flips {
                let i = at.index(data.len());
                data[i] = v;
            }
            finish(reader(&data), 1 << 20);
        }
    }
}
