//! The live rings, read in Rust.
//!
//! Python opens and configures the AF_PACKET socket (it needs privileges, BPF and fanout
//! setup are plain setsockopt calls) and hands over its file descriptor; this module maps
//! the ring and walks what the kernel hands to user space, then gives it back. The mapping
//! is shared with the kernel, so every header read is bounds-checked against its block or
//! slot and each status word is accessed with volatile reads/writes and fences (the kernel
//! publishes a block or frame by setting TP_STATUS_USER after filling it).
//!
//! Two layouts:
//! - TPACKET_V3 (`Ring::map`), the worker's main ring: variable-size frames packed into
//!   blocks; a block is handed over when full or when its retire timer fires.
//! - TPACKET_V2 (`Ring::map_frames`), the DNS side channel: fixed-size slots, each handed
//!   over as soon as the kernel has written its frame. A frame is visible before the kernel
//!   even starts on the next packet, so an answer is never stuck in a half-filled block, and
//!   the ring holds a number of frames rather than a number of retire periods.
//!
//! `drain_live` reads a worker's two rings merged in capture order, which makes passive DNS
//! independent of the worker a packet lands on and of timing.
//!
//! Layouts (include/uapi/linux/if_packet.h):
//!   tpacket_block_desc: u32 version, u32 offset_to_priv, then tpacket_hdr_v1: u32
//!     block_status, u32 num_pkts, u32 offset_to_first_pkt, u32 blk_len, ...
//!   tpacket3_hdr: u32 tp_next_offset, tp_sec, tp_nsec, tp_snaplen, tp_len, tp_status;
//!     u16 tp_mac, tp_net; hv1 { u32 tp_rxhash, tp_vlan_tci; u16 tp_vlan_tpid, pad }.
//!   tpacket2_hdr: u32 tp_status, tp_len, tp_snaplen; u16 tp_mac, tp_net; u32 tp_sec,
//!     tp_nsec; u16 tp_vlan_tci, tp_vlan_tpid; u8 pad[4].

use std::sync::atomic::{fence, Ordering};

const TP_STATUS_KERNEL: u32 = 0;
const TP_STATUS_USER: u32 = 1;
const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;
const V3_HDR_LEN: usize = 40;
const V2_HDR_LEN: usize = 32;
/// TPACKET_ALIGNMENT: V2 slots are multiples of it.
const ALIGN: usize = 16;

/// Where the frames of a ring are.
#[derive(Debug, Clone, Copy)]
enum Layout {
    /// TPACKET_V3: frames packed into blocks, handed over a block at a time.
    Blocks,
    /// TPACKET_V2: one frame per fixed-size slot, handed over a frame at a time.
    Frames { size: usize, per_block: usize },
}

/// What a ring hands its frames to.
pub trait Sink {
    /// One frame: its capture time (kernel software stamp, CLOCK_REALTIME), link type, bytes.
    fn frame(&mut self, ts: f64, linktype: u32, frame: &[u8]);
}

impl<F: FnMut(f64, u32, &[u8])> Sink for F {
    fn frame(&mut self, ts: f64, linktype: u32, frame: &[u8]) {
        self(ts, linktype, frame);
    }
}

#[derive(Debug)]
pub struct Ring {
    ptr: *mut u8,
    len: usize,
    fd: i32,
    block_size: usize,
    block_count: usize,
    layout: Layout,
    /// The next block (V3) or slot (V2) to read.
    next: usize,
    pub linktype: u32,
    /// Frames whose header did not fit the block (a kernel/ABI mismatch): skipped, counted.
    pub bad_frames: u64,
    /// Frames the kernel cut short (captured length below the length on the wire): a V2
    /// frame longer than its slot.
    pub truncated: u64,
    /// Side channel answers fed ahead of their turn because half the ring was waiting
    /// (see `drain_live`).
    pub forced: u64,
    scratch: Vec<u8>,
}

// The mapping is owned by this value alone; it is only touched through &mut self.
unsafe impl Send for Ring {}
unsafe impl Sync for Ring {}

impl Ring {
    /// Map the ring of an AF_PACKET socket configured with PACKET_RX_RING (TPACKET_V3).
    pub fn map(
        fd: i32,
        block_size: usize,
        block_count: usize,
        linktype: u32,
    ) -> std::io::Result<Ring> {
        Ring::mapped(
            socket_fd(fd)?,
            block_size,
            block_count,
            Layout::Blocks,
            linktype,
        )
    }

    /// Map the ring of an AF_PACKET socket configured with PACKET_RX_RING (TPACKET_V2)
    /// in slots of `frame_size` bytes.
    pub fn map_frames(
        fd: i32,
        block_size: usize,
        block_count: usize,
        frame_size: usize,
        linktype: u32,
    ) -> std::io::Result<Ring> {
        if frame_size < V2_HDR_LEN + 64 || frame_size % ALIGN != 0 || frame_size > block_size {
            return Err(bad_geometry());
        }
        let layout = Layout::Frames {
            size: frame_size,
            per_block: block_size / frame_size,
        };
        Ring::mapped(socket_fd(fd)?, block_size, block_count, layout, linktype)
    }

    /// `fd` None: anonymous memory standing in for a socket's ring (tests).
    fn mapped(
        fd: Option<i32>,
        block_size: usize,
        block_count: usize,
        layout: Layout,
        linktype: u32,
    ) -> std::io::Result<Ring> {
        if block_size < 4096 || block_count == 0 || block_size.checked_mul(block_count).is_none() {
            return Err(bad_geometry());
        }
        let len = block_size * block_count;
        // SAFETY: mmap of a packet socket's ring, length as configured on the socket (or,
        // in tests, of anonymous memory standing in for one); failure is checked below and
        // the mapping is unmapped in Drop.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                if fd.is_some() {
                    libc::MAP_SHARED
                } else {
                    libc::MAP_SHARED | libc::MAP_ANONYMOUS
                },
                fd.unwrap_or(-1),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Ring {
            ptr: ptr.cast(),
            len,
            fd: fd.unwrap_or(-1),
            block_size,
            block_count,
            layout,
            next: 0,
            linktype,
            bad_frames: 0,
            truncated: 0,
            forced: 0,
            scratch: Vec::with_capacity(65536),
        })
    }

    /// Blocks (V3) or slots (V2) in the ring: at most this many are ever ready at once.
    pub fn units(&self) -> usize {
        match self.layout {
            Layout::Blocks => self.block_count,
            Layout::Frames { per_block, .. } => per_block * self.block_count,
        }
    }

    /// Byte offset of block (V3) or slot (V2) `unit` in the mapping, and its length.
    fn unit_span(&self, unit: usize) -> (usize, usize) {
        match self.layout {
            Layout::Blocks => (unit * self.block_size, self.block_size),
            Layout::Frames { size, per_block } => (
                unit / per_block * self.block_size + unit % per_block * size,
                size,
            ),
        }
    }

    fn status_ptr(&self, unit: usize) -> *mut u32 {
        let at = match self.layout {
            // block_status: the 4-aligned first field of tpacket_hdr_v1, at 8.
            Layout::Blocks => self.unit_span(unit).0 + 8,
            // tp_status: the first field of tpacket2_hdr (slots are 16-aligned).
            Layout::Frames { .. } => self.unit_span(unit).0,
        };
        debug_assert!(at + 4 <= self.len);
        // SAFETY: unit < units(), so the offset is inside the mapping, and 4-aligned.
        unsafe { self.ptr.add(at).cast::<u32>() }
    }

    fn status(&self, unit: usize) -> u32 {
        // SAFETY: in-bounds, aligned; the kernel writes it concurrently, hence volatile.
        let s = unsafe { std::ptr::read_volatile(self.status_ptr(unit)) };
        fence(Ordering::Acquire);
        s
    }

    fn release(&self, unit: usize) {
        fence(Ordering::Release);
        // SAFETY: as in `status`; handing the block or slot back to the kernel.
        unsafe { std::ptr::write_volatile(self.status_ptr(unit), TP_STATUS_KERNEL) };
    }

    fn unit_bytes(&self, unit: usize) -> &[u8] {
        let (at, len) = self.unit_span(unit);
        // SAFETY: the block or slot lies inside the mapping; while its status is
        // TP_STATUS_USER the kernel does not write it, and we release it only after the
        // slice is dropped.
        unsafe { std::slice::from_raw_parts(self.ptr.add(at), len) }
    }

    /// Wait up to `timeout_ms` for the socket to have a block ready.
    pub fn wait(&self, timeout_ms: i32) {
        let mut pfd = libc::pollfd {
            fd: self.fd,
            events: libc::POLLIN | libc::POLLERR,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        unsafe {
            libc::poll(&mut pfd, 1, timeout_ms);
        }
    }

    /// Hand every frame of every ready block or slot to `sink`, stopping after the block
    /// in which `max_frames` was reached. Returns frames delivered.
    pub fn drain(&mut self, max_frames: usize, sink: &mut dyn Sink) -> usize {
        let mut total = 0;
        while total < max_frames {
            let unit = self.next;
            if self.status(unit) & TP_STATUS_USER == 0 {
                break;
            }
            total += match self.layout {
                Layout::Blocks => self.walk_block(unit, sink),
                Layout::Frames { .. } => self.walk_slot(unit, sink),
            };
            self.release(unit);
            self.next = (unit + 1) % self.units();
        }
        total
    }

    /// Whether the next block or slot is in user space.
    fn is_ready(&self, unit: usize) -> bool {
        self.status(unit) & TP_STATUS_USER != 0
    }

    /// Capture time of the next frame of a V2 ring, if the kernel has handed it over.
    fn head_ts(&self) -> Option<f64> {
        if !matches!(self.layout, Layout::Frames { .. }) || !self.is_ready(self.next) {
            return None;
        }
        let b = self.unit_bytes(self.next);
        let word = |i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        Some(f64::from(word(16)) + f64::from(word(20)) * 1e-9)
    }

    /// Whether half the ring or more waits to be read (the kernel fills slots in order and
    /// drops a frame rather than skip one, so the waiting ones follow `next`).
    fn crowded(&self) -> bool {
        let units = self.units();
        units > 1 && self.is_ready((self.next + units / 2) % units)
    }

    fn walk_block(&mut self, block: usize, sink: &mut dyn Sink) -> usize {
        let mut scratch = std::mem::take(&mut self.scratch);
        let (mut bad, mut short, mut n) = (0, 0, 0);
        let lt = self.linktype;
        {
            let b = self.unit_bytes(block);
            let num = u32_at(b, 12).unwrap_or(0);
            let mut off = u32_at(b, 16).unwrap_or(0) as usize;
            for _ in 0..num {
                let Some(h) = b.get(off..off + V3_HDR_LEN) else {
                    bad += 1;
                    break;
                };
                let word = |i: usize| u32::from_ne_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
                let (next, sec, nsec, snap, wire, status) =
                    (word(0), word(4), word(8), word(12), word(16), word(20));
                let mac = usize::from(u16::from_ne_bytes([h[24], h[25]]));
                let vlan = (word(32) as u16, u16::from_ne_bytes([h[36], h[37]]));
                let start = off + mac;
                let Some(frame) = b.get(start..start + snap as usize) else {
                    bad += 1;
                    break;
                };
                short += u64::from(snap < wire);
                deliver(sink, &mut scratch, sec, nsec, status, vlan, lt, frame);
                n += 1;
                if next == 0 {
                    break;
                }
                off += next as usize;
            }
        }
        self.scratch = scratch;
        self.bad_frames += bad;
        self.truncated += short;
        n
    }

    fn walk_slot(&mut self, slot: usize, sink: &mut dyn Sink) -> usize {
        let mut scratch = std::mem::take(&mut self.scratch);
        let lt = self.linktype;
        let (mut n, mut short) = (0, false);
        {
            let b = self.unit_bytes(slot);
            let h = &b[..V2_HDR_LEN];
            let word = |i: usize| u32::from_ne_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
            let half = |i: usize| u16::from_ne_bytes([h[i], h[i + 1]]);
            let (status, wire, snap, sec, nsec) = (word(0), word(4), word(8), word(16), word(20));
            let mac = usize::from(half(12));
            if let Some(frame) = b
                .get(mac..mac.saturating_add(snap as usize))
                .filter(|_| mac >= V2_HDR_LEN)
            {
                short = snap < wire;
                let vlan = (half(24), half(26));
                deliver(sink, &mut scratch, sec, nsec, status, vlan, lt, frame);
                n = 1;
            }
        }
        self.scratch = scratch;
        self.truncated += u64::from(short);
        self.bad_frames += u64::from(n == 0);
        n
    }
}

fn socket_fd(fd: i32) -> std::io::Result<Option<i32>> {
    if fd < 0 {
        return Err(std::io::Error::from_raw_os_error(libc::EBADF));
    }
    Ok(Some(fd))
}

fn bad_geometry() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, "bad ring geometry")
}

/// Hand one frame to `sink`, with an 802.1Q tag the NIC or veth stripped into metadata put
/// back, so the frame reads as on the wire (VLAN ids are flow identity).
#[allow(clippy::too_many_arguments)]
fn deliver(
    sink: &mut dyn Sink,
    scratch: &mut Vec<u8>,
    sec: u32,
    nsec: u32,
    status: u32,
    (tci, tpid): (u16, u16),
    lt: u32,
    frame: &[u8],
) {
    let ts = f64::from(sec) + f64::from(nsec) * 1e-9;
    if status & TP_STATUS_VLAN_VALID != 0 && frame.len() >= 12 {
        let tp = if status & TP_STATUS_VLAN_TPID_VALID != 0 && tpid != 0 {
            tpid
        } else {
            0x8100
        };
        scratch.clear();
        scratch.extend_from_slice(&frame[..12]);
        scratch.extend_from_slice(&tp.to_be_bytes());
        scratch.extend_from_slice(&tci.to_be_bytes());
        scratch.extend_from_slice(&frame[12..]);
        sink.frame(ts, lt, scratch);
    } else {
        sink.frame(ts, lt, frame);
    }
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 4)?;
    Some(u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what `mapped` mapped.
        unsafe {
            libc::munmap(self.ptr.cast(), self.len);
        }
    }
}

/// A live worker: frames of its main (fanout) ring, and DNS answers of its side channel.
pub trait Worker {
    fn frame(&mut self, ts: f64, linktype: u32, frame: &[u8]);
    fn side_frame(&mut self, ts: f64, linktype: u32, frame: &[u8]);
}

/// What comes next on the main ring, for `answer_due`.
#[derive(Debug, Clone, Copy)]
pub enum Next {
    /// A frame captured at this time is about to be judged.
    Frame(f64),
    /// Nothing is ready: the main ring is quiet (or caught up) at this wall-clock time.
    Quiet(f64),
}

/// Whether the side channel's oldest waiting answer, captured at `answer`, goes to the
/// engine now. Before a main-ring frame: if it was captured no later than that frame, so
/// the worker sees answers and frames in capture order, as a replay of the capture would.
/// While the main ring is quiet: once `hold` seconds old by the wall clock (the same
/// CLOCK_REALTIME the kernel stamps with), since a main-ring frame captured before it is
/// handed over within the main ring's block retire time (`hold` covers that); and at once
/// if it lies more than `hold` in the future (the clock was stepped back: the answer must
/// not wait for the clock to catch up).
pub fn answer_due(answer: f64, next: Next, hold: f64) -> bool {
    match next {
        Next::Frame(ts) => answer <= ts,
        Next::Quiet(now) => answer <= now - hold || answer > now + hold,
    }
}

/// Read a worker's main ring (up to `max_frames`, see `Ring::drain`) merged with its DNS
/// side channel in capture order, so that passive DNS does not depend on which worker a
/// packet lands on, nor on timing.
///
/// The kernel delivers each packet to every packet socket before it takes the next one;
/// the side channel (V2) publishes a frame as soon as it is written, while a main-ring
/// block is published only after its last frame. So when a main-ring frame is read, every
/// answer captured before it is already in the side ring: each frame is preceded by the
/// answers captured no later than it (`answer_due`), and nothing waits on a timer. Answers
/// captured after the last frame read stay in the side ring (a V2 ring is its own queue,
/// nothing is copied) until a later frame passes them, or the main ring is quiet and they
/// are `hold` seconds old by `now()`. Should half the side ring fill up (a worker far
/// behind), its oldest answers go first regardless (counted in the side ring's `forced`).
/// Returns main-ring frames delivered.
pub fn drain_live(
    main: &mut Ring,
    side: Option<&mut Ring>,
    max_frames: usize,
    hold: f64,
    now: &dyn Fn() -> f64,
    worker: &mut dyn Worker,
) -> usize {
    struct Merged<'a> {
        side: Option<&'a mut Ring>,
        worker: &'a mut dyn Worker,
        hold: f64,
    }
    impl Merged<'_> {
        /// Feed the side ring's waiting answers while they are due (one lap at most: a
        /// flood of answers cannot keep the main ring waiting).
        fn answers(&mut self, next: Next) {
            let Some(side) = self.side.as_deref_mut() else {
                return;
            };
            let worker = &mut *self.worker;
            for _ in 0..side.units() {
                let Some(ts) = side.head_ts() else { break };
                if !answer_due(ts, next, self.hold) {
                    if !side.crowded() {
                        break;
                    }
                    side.forced += 1;
                }
                side.drain(1, &mut |ts: f64, lt: u32, f: &[u8]| {
                    worker.side_frame(ts, lt, f);
                });
            }
        }
    }
    impl Sink for Merged<'_> {
        fn frame(&mut self, ts: f64, linktype: u32, frame: &[u8]) {
            self.answers(Next::Frame(ts));
            self.worker.frame(ts, linktype, frame);
        }
    }
    let mut merged = Merged { side, worker, hold };
    let n = main.drain(max_frames, &mut merged);
    if !main.is_ready(main.next) {
        merged.answers(Next::Quiet(now()));
    }
    n
}

/// Seconds until the side channel's oldest waiting answer is due while the main ring is
/// quiet (see `answer_due`), or None when nothing waits: how long a worker may sleep.
pub fn side_due_in(side: &Ring, hold: f64, now: f64) -> Option<f64> {
    let ts = side.head_ts()?;
    if answer_due(ts, Next::Quiet(now), hold) {
        return Some(0.0);
    }
    Some(ts + hold - now)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes into a ring's mapping what the kernel writes: V3 blocks and V2 slots, each
    /// published last by its status word (release fence + volatile store), through a raw
    /// pointer of its own, as the kernel does while user space holds the ring.
    struct Kernel {
        ptr: *mut u8,
        block_size: usize,
        layout: Layout,
        units: usize,
        next: usize,
    }

    /// One frame as the kernel captured it: stamp, bytes on the wire, bytes kept, VLAN tag
    /// the NIC stripped (if any).
    struct Cap<'a> {
        sec: u32,
        nsec: u32,
        data: &'a [u8],
        wire: usize,
        vlan: Option<u16>,
    }

    fn cap(sec: u32, data: &[u8]) -> Cap<'_> {
        Cap {
            sec,
            nsec: 0,
            data,
            wire: data.len(),
            vlan: None,
        }
    }

    impl Kernel {
        fn of(ring: &Ring) -> Kernel {
            Kernel {
                ptr: ring.ptr,
                block_size: ring.block_size,
                layout: ring.layout,
                units: ring.units(),
                next: 0,
            }
        }

        fn put(&self, at: usize, bytes: &[u8]) {
            // SAFETY: the offsets come from the ring's geometry (asserted to fit a block or
            // slot by the callers), so writes stay inside the mapping, and never touch a
            // block or slot the reader holds a slice of.
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.ptr.add(at), bytes.len()) }
        }

        fn put_u32(&self, at: usize, v: u32) {
            self.put(at, &v.to_ne_bytes());
        }

        fn put_u16(&self, at: usize, v: u16) {
            self.put(at, &v.to_ne_bytes());
        }

        fn publish(&self, at: usize) {
            fence(Ordering::Release);
            // SAFETY: a 4-aligned status word inside the mapping.
            unsafe { std::ptr::write_volatile(self.ptr.add(at).cast::<u32>(), TP_STATUS_USER) };
        }

        fn status(&self, at: usize) -> u32 {
            // SAFETY: as in `publish`.
            unsafe { std::ptr::read_volatile(self.ptr.add(at).cast::<u32>()) }
        }

        fn vlan_status(c: &Cap<'_>) -> u32 {
            if c.vlan.is_some() {
                TP_STATUS_USER | TP_STATUS_VLAN_VALID
            } else {
                TP_STATUS_USER
            }
        }

        /// Fill the next V3 block with `frames` and hand it to user space.
        fn block(&mut self, frames: &[Cap<'_>]) {
            assert!(matches!(self.layout, Layout::Blocks));
            let base = self.next * self.block_size;
            assert_eq!(
                self.status(base + 8),
                TP_STATUS_KERNEL,
                "block still in user space"
            );
            let first = 48;
            self.put_u32(base, 3);
            self.put_u32(base + 12, frames.len() as u32);
            self.put_u32(base + 16, first as u32);
            let mut off = first;
            for (i, c) in frames.iter().enumerate() {
                let mac = 64;
                let next = (mac + c.data.len()).div_ceil(ALIGN) * ALIGN;
                assert!(off + next <= self.block_size);
                let at = base + off;
                let last = i + 1 == frames.len();
                self.put_u32(at, if last { 0 } else { next as u32 });
                self.put_u32(at + 4, c.sec);
                self.put_u32(at + 8, c.nsec);
                self.put_u32(at + 12, c.data.len() as u32);
                self.put_u32(at + 16, c.wire as u32);
                self.put_u32(at + 20, Kernel::vlan_status(c));
                self.put_u16(at + 24, mac as u16);
                self.put_u32(at + 32, u32::from(c.vlan.unwrap_or(0)));
                self.put_u16(at + 36, 0);
                self.put(at + mac, c.data);
                off += next;
            }
            self.put_u32(base + 20, off as u32);
            self.publish(base + 8);
            self.next = (self.next + 1) % self.units;
        }

        /// Write one frame into the next V2 slot and hand it to user space.
        fn frame(&mut self, c: &Cap<'_>) {
            let Layout::Frames { size, per_block } = self.layout else {
                panic!("not a V2 ring");
            };
            let at = self.next / per_block * self.block_size + self.next % per_block * size;
            assert_eq!(
                self.status(at),
                TP_STATUS_KERNEL,
                "slot still in user space"
            );
            let mac = 66; // TPACKET2_HDRLEN + sockaddr_ll, aligned, less an Ethernet header
            let kept = c.data.len().min(size - mac);
            self.put_u32(at + 4, c.wire as u32);
            self.put_u32(at + 8, kept as u32);
            self.put_u16(at + 12, mac as u16);
            self.put_u16(at + 14, (mac + 14) as u16);
            self.put_u32(at + 16, c.sec);
            self.put_u32(at + 20, c.nsec);
            self.put_u16(at + 24, c.vlan.unwrap_or(0));
            self.put_u16(at + 26, 0);
            self.put(at + mac, &c.data[..kept]);
            // The status word goes last, with the flags.
            self.put_u32(at, 0);
            fence(Ordering::Release);
            // SAFETY: the slot's 16-aligned status word, inside the mapping.
            unsafe {
                std::ptr::write_volatile(self.ptr.add(at).cast::<u32>(), Kernel::vlan_status(c))
            };
            self.next = (self.next + 1) % self.units;
        }
    }

    fn blocks(block_size: usize, count: usize) -> Ring {
        Ring::mapped(None, block_size, count, Layout::Blocks, 1).expect("anonymous ring")
    }

    fn slots(block_size: usize, count: usize, frame_size: usize) -> Ring {
        let layout = Layout::Frames {
            size: frame_size,
            per_block: block_size / frame_size,
        };
        Ring::mapped(None, block_size, count, layout, 1).expect("anonymous ring")
    }

    /// Everything a ring delivered: (ts, bytes).
    fn collect(ring: &mut Ring, max: usize) -> Vec<(f64, Vec<u8>)> {
        let mut got = Vec::new();
        ring.drain(max, &mut |ts: f64, lt: u32, f: &[u8]| {
            assert_eq!(lt, 1);
            got.push((ts, f.to_vec()));
        });
        got
    }

    fn eth(tag: u8, len: usize) -> Vec<u8> {
        let mut f = vec![tag; len];
        f[12] = 0x08;
        f[13] = 0x00;
        f
    }

    #[test]
    fn v3_blocks_in_order_then_back_to_the_kernel() {
        let mut ring = blocks(4096, 3);
        let mut k = Kernel::of(&ring);
        let (a, b, c) = (eth(1, 60), eth(2, 1000), eth(3, 200));
        assert!(collect(&mut ring, usize::MAX).is_empty());
        k.block(&[cap(10, &a), cap(11, &b)]);
        k.block(&[Cap {
            nsec: 500_000_000,
            ..cap(12, &c)
        }]);
        let got = collect(&mut ring, usize::MAX);
        assert_eq!(got, vec![(10.0, a.clone()), (11.0, b), (12.5, c)]);
        // Both blocks were handed back: the kernel can fill them again, around the ring.
        for round in 0..4u32 {
            k.block(&[cap(20 + round, &a)]);
            assert_eq!(
                collect(&mut ring, usize::MAX),
                vec![(f64::from(20 + round), a.clone())]
            );
        }
        assert_eq!((ring.bad_frames, ring.truncated), (0, 0));
    }

    #[test]
    fn v3_drain_stops_after_the_block_that_reached_the_limit() {
        let mut ring = blocks(4096, 4);
        let mut k = Kernel::of(&ring);
        let f = eth(1, 100);
        k.block(&[cap(1, &f), cap(2, &f)]);
        k.block(&[cap(3, &f), cap(4, &f)]);
        k.block(&[cap(5, &f)]);
        // The limit is reached inside the first block: that block is finished, no more.
        assert_eq!(collect(&mut ring, 1).len(), 2);
        assert_eq!(collect(&mut ring, 3).len(), 3);
    }

    #[test]
    fn v3_stripped_vlan_tag_is_put_back_and_short_frames_counted() {
        let mut ring = blocks(4096, 2);
        let mut k = Kernel::of(&ring);
        let f = eth(7, 80);
        k.block(&[Cap {
            vlan: Some(0x2014),
            wire: 1500,
            ..cap(1, &f)
        }]);
        let got = collect(&mut ring, usize::MAX);
        let mut tagged = f[..12].to_vec();
        tagged.extend_from_slice(&[0x81, 0x00, 0x20, 0x14]);
        tagged.extend_from_slice(&f[12..]);
        assert_eq!(got, vec![(1.0, tagged)]);
        assert_eq!(ring.truncated, 1);
    }

    #[test]
    fn v2_each_frame_is_handed_over_alone_and_slots_wrap_across_blocks() {
        // 2 slots of 2 KiB per 4 KiB block, 2 blocks: 4 slots.
        let mut ring = slots(4096, 2, 2048);
        let mut k = Kernel::of(&ring);
        assert_eq!(ring.units(), 4);
        let frames: Vec<Vec<u8>> = (0..10).map(|i| eth(i, 60 + usize::from(i))).collect();
        let mut seen = Vec::new();
        for (i, f) in frames.iter().enumerate() {
            k.frame(&cap(100 + i as u32, f));
            // Visible at once: no block to fill, no timer.
            seen.extend(collect(&mut ring, usize::MAX));
            assert_eq!(seen.len(), i + 1);
        }
        let want: Vec<(f64, Vec<u8>)> = frames
            .iter()
            .enumerate()
            .map(|(i, f)| (100.0 + i as f64, f.clone()))
            .collect();
        assert_eq!(seen, want);
        // Three at once, read in order.
        for f in &frames[..3] {
            k.frame(&cap(7, f));
        }
        assert_eq!(collect(&mut ring, usize::MAX).len(), 3);
    }

    #[test]
    fn v2_frame_longer_than_its_slot_is_cut_and_counted() {
        let mut ring = slots(4096, 1, 256);
        let mut k = Kernel::of(&ring);
        let long = eth(9, 1400);
        k.frame(&Cap {
            vlan: Some(30),
            ..cap(1, &long)
        });
        let got = collect(&mut ring, usize::MAX);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1.len(), 256 - 66 + 4);
        assert_eq!(&got[0].1[12..16], &[0x81, 0x00, 0x00, 30]);
        assert_eq!((ring.truncated, ring.bad_frames), (1, 0));
    }

    #[test]
    fn v2_slot_whose_header_points_outside_it_is_skipped_and_counted() {
        let mut ring = slots(4096, 1, 512);
        let mut k = Kernel::of(&ring);
        k.frame(&cap(1, &eth(1, 100)));
        k.put_u32(8, 4000); // snaplen past the slot's end
        k.frame(&cap(2, &eth(2, 100)));
        let got = collect(&mut ring, usize::MAX);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, 2.0);
        assert_eq!(ring.bad_frames, 1);
    }

    #[test]
    fn map_refuses_bad_geometry_and_a_closed_socket() {
        assert!(Ring::map(-1, 1 << 16, 4, 1).is_err());
        assert!(Ring::map_frames(-1, 1 << 16, 4, 2048, 1).is_err());
        for (block, count, frame) in [(1 << 16, 4, 100), (1 << 16, 4, 64), (4096, 1, 8192)] {
            let err = Ring::map_frames(0, block, count, frame, 1).expect_err("geometry");
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        }
        let err = Ring::map(0, 1024, 4, 1).expect_err("geometry");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    }

    #[test]
    fn answer_due_before_a_frame_in_capture_order() {
        assert!(answer_due(10.0, Next::Frame(10.5), 0.1));
        assert!(answer_due(10.0, Next::Frame(10.0), 0.1)); // same stamp: the answer first
        assert!(!answer_due(10.000_001, Next::Frame(10.0), 0.1));
        // The hold plays no part before a frame: a frame is the proof of capture order.
        assert!(!answer_due(10.5, Next::Frame(10.0), 100.0));
        assert!(answer_due(10.0, Next::Frame(10.5), 0.0));
    }

    #[test]
    fn answer_due_on_a_quiet_ring_once_held_long_enough() {
        let hold = 0.075;
        assert!(!answer_due(100.0, Next::Quiet(100.0), hold));
        assert!(!answer_due(100.0, Next::Quiet(100.07), hold));
        assert!(answer_due(100.0, Next::Quiet(100.075), hold));
        assert!(answer_due(100.0, Next::Quiet(250.0), hold));
        // Slightly ahead of the wall clock (another CPU's stamp): it waits for the hold.
        assert!(!answer_due(100.05, Next::Quiet(100.0), hold));
        // Far ahead: the clock was stepped back; the answer does not wait for it.
        assert!(answer_due(100.0 + 3600.0, Next::Quiet(100.0), hold));
        // Hold 0 (the final flush at stop): everything captured up to now.
        assert!(answer_due(100.0, Next::Quiet(100.0), 0.0));
    }

    #[test]
    fn side_due_in_says_how_long_a_quiet_worker_may_sleep() {
        let mut side = slots(4096, 1, 1024);
        let mut ks = Kernel::of(&side);
        assert_eq!(side_due_in(&side, 0.075, 100.0), None);
        ks.frame(&Cap {
            nsec: 990_000_000,
            ..cap(99, &eth(0, 90))
        });
        let due = side_due_in(&side, 0.075, 100.0).expect("waiting");
        assert!((due - 0.065).abs() < 1e-6, "{due}");
        assert_eq!(side_due_in(&side, 0.075, 100.5), Some(0.0));
        collect(&mut side, usize::MAX);
        assert_eq!(side_due_in(&side, 0.075, 100.5), None);
    }

    /// What a worker saw, in order: ("main" or "side", capture second).
    struct Log {
        seen: Vec<(&'static str, u32)>,
        /// Capture going on while the worker reads: on main frame `at`, the kernel takes
        /// a DNS answer (side ring) and then fills the next main block.
        later: Option<(u32, Kernel, Kernel)>,
    }

    impl Log {
        fn empty() -> Self {
            Log {
                seen: Vec::new(),
                later: None,
            }
        }
    }

    impl Worker for Log {
        fn frame(&mut self, ts: f64, _lt: u32, _f: &[u8]) {
            let t = ts as u32;
            self.seen.push(("main", t));
            if let Some((at, mut side, mut main)) = self.later.take() {
                if at != t {
                    self.later = Some((at, side, main));
                    return;
                }
                let f = eth(0, 90);
                side.frame(&cap(t + 1, &f));
                main.block(&[cap(t + 2, &f), cap(t + 3, &f)]);
            }
        }

        fn side_frame(&mut self, ts: f64, _lt: u32, _f: &[u8]) {
            self.seen.push(("side", ts as u32));
        }
    }

    fn at(t: f64) -> impl Fn() -> f64 {
        move || t
    }

    #[test]
    fn side_answers_and_main_frames_are_merged_in_capture_order() {
        let mut main = blocks(4096, 4);
        let mut side = slots(4096, 2, 1024);
        let (mut km, mut ks) = (Kernel::of(&main), Kernel::of(&side));
        let f = eth(0, 90);
        // An answer, then a block of frames captured after it; and another answer that
        // came between that block's two frames.
        ks.frame(&cap(1, &f));
        ks.frame(&Cap {
            nsec: 500_000_000,
            ..cap(2, &f)
        });
        km.block(&[cap(2, &f), cap(3, &f)]);
        // While the worker reads that block, the kernel captures another answer and then
        // the packets that follow it: they must not be judged before the answer.
        let (mut later_main, mut later_side) = (Kernel::of(&main), Kernel::of(&side));
        later_main.next = 1;
        later_side.next = 2;
        let mut log = Log {
            seen: Vec::new(),
            later: Some((3, later_side, later_main)),
        };
        let n = drain_live(
            &mut main,
            Some(&mut side),
            usize::MAX,
            0.1,
            &at(0.0),
            &mut log,
        );
        assert_eq!(n, 4);
        assert_eq!(
            log.seen,
            [
                ("side", 1),
                ("main", 2),
                ("side", 2), // 2.5
                ("main", 3),
                ("side", 4),
                ("main", 5),
                ("main", 6)
            ]
        );
    }

    #[test]
    fn an_answer_after_the_last_frame_waits_until_the_quiet_ring_holds_it_long_enough() {
        let mut main = blocks(4096, 4);
        let mut side = slots(4096, 2, 1024);
        let (mut km, mut ks) = (Kernel::of(&main), Kernel::of(&side));
        let f = eth(0, 90);
        km.block(&[cap(100, &f)]);
        ks.frame(&cap(101, &f));
        let mut log = Log::empty();
        // Only 50 ms old: a main-ring frame captured before it may still be in a block
        // the kernel has not handed over.
        let n = drain_live(
            &mut main,
            Some(&mut side),
            100,
            0.075,
            &at(101.05),
            &mut log,
        );
        assert_eq!(n, 1);
        assert_eq!(log.seen, [("main", 100)]);
        // That frame arrives: it goes first.
        km.block(&[Cap {
            nsec: 900_000_000,
            ..cap(100, &f)
        }]);
        assert_eq!(
            drain_live(
                &mut main,
                Some(&mut side),
                100,
                0.075,
                &at(101.06),
                &mut log
            ),
            1
        );
        assert_eq!(log.seen, [("main", 100), ("main", 100)]);
        // Held long enough on a quiet ring: the answer is taken.
        assert_eq!(
            drain_live(
                &mut main,
                Some(&mut side),
                100,
                0.075,
                &at(101.08),
                &mut log
            ),
            0
        );
        assert_eq!(log.seen, [("main", 100), ("main", 100), ("side", 101)]);
        assert_eq!(side.forced, 0);
    }

    #[test]
    fn a_ring_with_blocks_ready_is_not_quiet() {
        // Stopped at max_frames with a block still ready: the held answer is not released
        // by the clock, since frames captured before it are still to come.
        let mut main = blocks(4096, 4);
        let mut side = slots(4096, 2, 1024);
        let (mut km, mut ks) = (Kernel::of(&main), Kernel::of(&side));
        let f = eth(0, 90);
        km.block(&[cap(10, &f)]);
        km.block(&[cap(11, &f)]);
        ks.frame(&Cap {
            nsec: 500_000_000,
            ..cap(10, &f)
        });
        let mut log = Log::empty();
        assert_eq!(
            drain_live(&mut main, Some(&mut side), 1, 0.075, &at(500.0), &mut log),
            1
        );
        assert_eq!(log.seen, [("main", 10)]);
        assert_eq!(
            drain_live(&mut main, Some(&mut side), 1, 0.075, &at(500.0), &mut log),
            1
        );
        assert_eq!(log.seen, [("main", 10), ("side", 10), ("main", 11)]);
    }

    #[test]
    fn a_crowded_side_ring_lets_its_oldest_answers_go_first() {
        // 8 slots; answers captured ahead of every main frame read so far.
        let mut main = blocks(4096, 4);
        let mut side = slots(4096, 2, 1024);
        let (mut km, mut ks) = (Kernel::of(&main), Kernel::of(&side));
        let f = eth(0, 90);
        for i in 0..6 {
            ks.frame(&cap(50 + i, &f));
        }
        km.block(&[cap(10, &f)]);
        let mut log = Log::empty();
        // The clock lets nothing go (hold 1e9): only the crowding does.
        assert_eq!(
            drain_live(&mut main, Some(&mut side), 100, 1e9, &at(0.0), &mut log),
            1
        );
        // Slot next+4 was filled until two were taken: 4 wait, half the ring.
        assert_eq!(log.seen, [("side", 50), ("side", 51), ("main", 10)]);
        assert_eq!(side.forced, 2);
    }

    #[test]
    fn side_ring_is_read_while_the_main_ring_is_quiet() {
        let mut main = blocks(4096, 2);
        let mut side = slots(4096, 1, 1024);
        let mut ks = Kernel::of(&side);
        let f = eth(0, 90);
        // Twice the side ring's size over two reads: nothing waits for a main block.
        for round in 0..2 {
            for i in 0..4 {
                ks.frame(&cap(round * 10 + i, &f));
            }
            let mut log = Log::empty();
            assert_eq!(
                drain_live(
                    &mut main,
                    Some(&mut side),
                    100,
                    0.075,
                    &at(1000.0),
                    &mut log
                ),
                0
            );
            assert_eq!(log.seen.len(), 4);
        }
        assert_eq!(side.forced, 0);
    }

    /// A flood of answers: each one read brings another.
    struct Flood {
        side: Kernel,
        side_seen: usize,
        main_seen: usize,
    }

    impl Worker for Flood {
        fn frame(&mut self, _ts: f64, _lt: u32, _f: &[u8]) {
            self.main_seen += 1;
        }
        fn side_frame(&mut self, _ts: f64, _lt: u32, _f: &[u8]) {
            self.side_seen += 1;
            self.side.frame(&cap(0, &eth(0, 90)));
        }
    }

    #[test]
    fn a_flood_of_answers_does_not_hold_up_the_main_ring() {
        let mut main = blocks(4096, 2);
        let mut side = slots(4096, 2, 1024);
        let mut km = Kernel::of(&main);
        let mut ks = Kernel::of(&side);
        ks.frame(&cap(0, &eth(0, 90)));
        km.block(&[cap(1, &eth(1, 90))]);
        let mut w = Flood {
            side: ks,
            side_seen: 0,
            main_seen: 0,
        };
        let n = drain_live(
            &mut main,
            Some(&mut side),
            usize::MAX,
            0.0,
            &at(5.0),
            &mut w,
        );
        assert_eq!(n, 1);
        assert_eq!(w.main_seen, 1);
        // One lap of the side ring before the frame, one on the quiet ring after it.
        assert_eq!(w.side_seen, 2 * side.units());
    }

    #[test]
    fn without_a_side_channel_the_main_ring_is_read_alone() {
        let mut main = blocks(4096, 2);
        let mut km = Kernel::of(&main);
        km.block(&[cap(1, &eth(1, 90)), cap(2, &eth(1, 90))]);
        let mut log = Log::empty();
        assert_eq!(
            drain_live(&mut main, None, 10, 0.075, &at(0.0), &mut log),
            2
        );
        assert_eq!(log.seen, [("main", 1), ("main", 2)]);
    }
}
