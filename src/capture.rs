//! Capture input: pcap (both byte orders, µs/ns, Kuznetzov), pcapng (sections, interfaces,
//! any block order, if_tsresol/if_tsoffset), gzip/bzip2/xz around either, directories
//! (recursive, recognised by content), and non-seekable streams (stdin, pipes).
//!
//! Contract (ported from netdetect/capture/files.py, which stays the behavioural reference):
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
        let found = loop {
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
                Ok(Some(found)) => break found,
                Err(e) => {
                    self.state = State::Done;
                    self.sync_stats();
                    return Err(e);
                }
            }
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
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.base += self.start as u64;
            self.end -= self.start;
            self.start = 0;
        }
        let want = n + CHUNK;
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        }
        while self.end < n && !self.eof {
            match self.stream.read(&mut self.buf[self.end..]) {
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
        let h = &self.buf[self.start..self.start + rec];
        let sec = rd32(h, 0, kind.big);
        let frac = rd32(h, 4, kind.big);
        let caplen = rd32(h, 8, kind.big);
        let wirelen = rd32(h, 12, kind.big);
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
