//! The live TPACKET_V3 ring, read in Rust.
//!
//! Python opens and configures the AF_PACKET socket (it needs privileges, BPF and fanout
//! setup are plain setsockopt calls) and hands over its file descriptor; this module maps
//! the ring and walks each block the kernel hands to user space, then gives it back. The
//! mapping is shared with the kernel, so every header read of a block is bounds-checked
//! against the block and the block status word is accessed with volatile reads/writes and
//! fences (the kernel publishes a block by setting TP_STATUS_USER after filling it).
//!
//! Layouts (include/uapi/linux/if_packet.h):
//!   tpacket_block_desc: u32 version, u32 offset_to_priv, then tpacket_hdr_v1: u32
//!     block_status, u32 num_pkts, u32 offset_to_first_pkt, u32 blk_len, ...
//!   tpacket3_hdr: u32 tp_next_offset, tp_sec, tp_nsec, tp_snaplen, tp_len, tp_status;
//!     u16 tp_mac, tp_net; hv1 { u32 tp_rxhash, tp_vlan_tci; u16 tp_vlan_tpid, pad }.

use std::sync::atomic::{fence, Ordering};

const TP_STATUS_KERNEL: u32 = 0;
const TP_STATUS_USER: u32 = 1;
const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;
const PKT_HDR_LEN: usize = 40;

#[derive(Debug)]
pub struct Ring {
    ptr: *mut u8,
    len: usize,
    fd: i32,
    block_size: usize,
    block_count: usize,
    block: usize,
    pub linktype: u32,
    /// Frames whose header did not fit the block (a kernel/ABI mismatch): skipped, counted.
    pub bad_frames: u64,
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
        if block_size < 4096 || block_count == 0 || block_size.checked_mul(block_count).is_none() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "bad ring geometry",
            ));
        }
        let len = block_size * block_count;
        // SAFETY: mmap of a packet socket's ring, length as configured on the socket;
        // failure is checked below and the mapping is unmapped in Drop.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Ring {
            ptr: ptr.cast(),
            len,
            fd,
            block_size,
            block_count,
            block: 0,
            linktype,
            bad_frames: 0,
            scratch: Vec::with_capacity(65536),
        })
    }

    fn status_ptr(&self, block: usize) -> *mut u32 {
        // SAFETY: block < block_count, so the offset is inside the mapping; +8 is the
        // 4-aligned block_status field of tpacket_hdr_v1.
        unsafe { self.ptr.add(block * self.block_size + 8).cast::<u32>() }
    }

    fn block_status(&self, block: usize) -> u32 {
        // SAFETY: in-bounds, aligned; the kernel writes it concurrently, hence volatile.
        let s = unsafe { std::ptr::read_volatile(self.status_ptr(block)) };
        fence(Ordering::Acquire);
        s
    }

    fn release(&self, block: usize) {
        fence(Ordering::Release);
        // SAFETY: as in block_status; handing the block back to the kernel.
        unsafe { std::ptr::write_volatile(self.status_ptr(block), TP_STATUS_KERNEL) };
    }

    fn block_bytes(&self, block: usize) -> &[u8] {
        // SAFETY: the block lies inside the mapping; while its status is TP_STATUS_USER the
        // kernel does not write it, and we release it only after the slice is dropped.
        unsafe {
            std::slice::from_raw_parts(self.ptr.add(block * self.block_size), self.block_size)
        }
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

    /// Hand every frame of every ready block to `on_frame(ts, linktype, frame)`, stopping
    /// after the block in which `max_frames` was reached. Returns frames delivered.
    pub fn drain(&mut self, max_frames: usize, on_frame: &mut dyn FnMut(f64, u32, &[u8])) -> usize {
        let mut total = 0;
        let lt = self.linktype;
        while total < max_frames {
            let block = self.block;
            if self.block_status(block) & TP_STATUS_USER == 0 {
                break;
            }
            let mut scratch = std::mem::take(&mut self.scratch);
            let mut bad = 0;
            {
                let b = self.block_bytes(block);
                let num = u32_at(b, 12).unwrap_or(0);
                let mut off = u32_at(b, 16).unwrap_or(0) as usize;
                for _ in 0..num {
                    let Some(h) = b.get(off..off + PKT_HDR_LEN) else {
                        bad += 1;
                        break;
                    };
                    let word = |i: usize| u32::from_ne_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
                    let (next, sec, nsec, snap, status) =
                        (word(0), word(4), word(8), word(12), word(20));
                    let mac = usize::from(u16::from_ne_bytes([h[24], h[25]]));
                    let tci = word(32) & 0xFFFF;
                    let tpid = u16::from_ne_bytes([h[36], h[37]]);
                    let start = off + mac;
                    let Some(frame) = b.get(start..start + snap as usize) else {
                        bad += 1;
                        break;
                    };
                    let ts = f64::from(sec) + f64::from(nsec) * 1e-9;
                    if status & TP_STATUS_VLAN_VALID != 0 && frame.len() >= 12 {
                        // The NIC or veth stripped the 802.1Q tag into metadata: put it back
                        // so the frame reads as on the wire (VLAN ids are flow identity).
                        let tp = if status & TP_STATUS_VLAN_TPID_VALID != 0 && tpid != 0 {
                            tpid
                        } else {
                            0x8100
                        };
                        scratch.clear();
                        scratch.extend_from_slice(&frame[..12]);
                        scratch.extend_from_slice(&tp.to_be_bytes());
                        scratch.extend_from_slice(&(tci as u16).to_be_bytes());
                        scratch.extend_from_slice(&frame[12..]);
                        on_frame(ts, lt, &scratch);
                    } else {
                        on_frame(ts, lt, frame);
                    }
                    total += 1;
                    if next == 0 {
                        break;
                    }
                    off += next as usize;
                }
            }
            self.scratch = scratch;
            self.bad_frames += bad;
            self.release(block);
            self.block = (block + 1) % self.block_count;
        }
        total
    }
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 4)?;
    Some(u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what `map` mapped.
        unsafe {
            libc::munmap(self.ptr.cast(), self.len);
        }
    }
}
