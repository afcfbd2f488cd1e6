//! A capture file read through a read-only shared mapping instead of read(2).
//!
//! Why: replaying a capture that sits in the page cache, read(2) spends about a fifth of
//! the core's time copying it into our buffer. Mapped, the frames are parsed where the
//! kernel keeps them.
//!
//! What can go wrong, and what happens then:
//! - **The file is truncated while mapped** (another program rotates it with copytruncate,
//!   or rewrites it). Touching a page past the new end raises SIGBUS, which would kill the
//!   process. A SIGBUS handler, installed once, looks the faulting address up in a table of
//!   live mappings; when it is ours it maps zero pages over the rest of that mapping, marks
//!   the mapping damaged and returns, so the faulting read sees zeros. A SIGBUS at any other
//!   address is passed to the handler that was there before (Python's faulthandler, or the
//!   default action). The file's size is also checked every `RELEASE_STEP` bytes and
//!   whenever the reader meets something that looks like damage (`shrunk`). The reader
//!   checks the mark before handing out each frame and then reports the capture as damaged
//!   ("the file shrank while it was read"); every frame before it was delivered. The one
//!   frame that straddles the new end may be delivered with its tail read as zeros: the
//!   bytes of the last, partly cut page read as zeros without a fault. read(2) racing the
//!   same truncation has the same kind of window (it reads whatever is there).
//! - **The file changes in place** (bytes rewritten, not truncated). The mapping shows the
//!   new bytes. Every parser reads the frame as untrusted input, and slice bounds come from
//!   the mapping's fixed length, never from its contents, so this can only give a wrong
//!   parse of the changed bytes, as read(2) racing the same writer would.
//! - **The file grows** (still being written): the mapping covers the length seen at open;
//!   the reader reads what was added with read(2) after the mapped part.
//! - **No mapping slot free, or the handler could not be installed**: `open` says no and the
//!   reader uses read(2).
//!
//! Resident memory: pages behind the reader are dropped from our page tables every
//! `RELEASE_STEP` bytes (MADV_DONTNEED: they stay in the page cache), so the mapping adds
//! at most that much to the process's resident set however large the file.

use memmap2::{Advice, Mmap, MmapOptions, UncheckedAdvice};
use std::fs::File;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Once, OnceLock};

/// Files smaller than this are read with read(2): mapping would not pay.
pub const MIN_MAPPED: u64 = 1 << 20;
/// Pages behind the reader are released this often.
pub const RELEASE_STEP: usize = 4 << 20;
/// The unit pages are released in (the largest folio the kernel maps at once, x86-64 and
/// arm64 with 4 KiB pages).
const CHUNK: usize = 2 << 20;
/// Mapped files open at once; more are read with read(2).
const SLOTS: usize = 64;
/// A slot being filled: the handler must not match it yet.
const RESERVED: usize = usize::MAX;

struct Slot {
    start: AtomicUsize,
    end: AtomicUsize,
    damaged: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)]
const FREE: Slot = Slot {
    start: AtomicUsize::new(0),
    end: AtomicUsize::new(0),
    damaged: AtomicBool::new(false),
};
static TABLE: [Slot; SLOTS] = [FREE; SLOTS];
static PAGE: AtomicUsize = AtomicUsize::new(4096);
static INSTALL: Once = Once::new();
static INSTALLED: AtomicBool = AtomicBool::new(false);
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();

/// A read-only mapping of a whole regular file (which it keeps open).
pub struct MappedFile {
    map: Mmap,
    file: File,
    slot: usize,
    released: usize,
}

impl MappedFile {
    /// Map `file` (`len` bytes, its size now); None when it is not worth it or not possible
    /// (the caller reads the file instead).
    pub fn open(file: File, len: u64) -> Result<MappedFile, File> {
        if len < MIN_MAPPED || usize::try_from(len).is_err() || !install() {
            return Err(file);
        }
        let len = len as usize;
        // SAFETY: a shared read-only mapping of a file we opened. Truncation underneath is
        // handled by the SIGBUS handler (module docs); changed contents are only ever read
        // as untrusted bytes within the mapping's fixed length.
        let Ok(map) = (unsafe { MmapOptions::new().len(len).map(&file) }) else {
            return Err(file);
        };
        let Some(slot) = claim(map.as_ptr() as usize, len) else {
            return Err(file);
        };
        let _ = map.advise(Advice::Sequential);
        Ok(MappedFile {
            map,
            file,
            slot,
            released: 0,
        })
    }

    /// The file's size now, if it can be known.
    pub fn file_len(&self) -> Option<u64> {
        self.file.metadata().ok().map(|m| m.len())
    }

    /// A second handle on the file, to read on with read(2).
    pub fn reopen(&self) -> Option<File> {
        self.file.try_clone().ok()
    }

    /// Whether the file lost bytes the mapping covers (then marked damaged for good).
    pub fn shrunk(&self) -> bool {
        if self.damaged() {
            return true;
        }
        if self.file_len().is_some_and(|n| n < self.map.len() as u64) {
            TABLE[self.slot].damaged.store(true, Ordering::Release);
            return true;
        }
        false
    }

    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// Whether part of the file vanished (truncated) after it was mapped: from the first
    /// page that could not be read on, the mapping reads as zeros.
    pub fn damaged(&self) -> bool {
        TABLE[self.slot].damaged.load(Ordering::Acquire)
    }

    /// Nothing before `offset` is read again: drop those pages from the resident set (and
    /// check that the file still has its size).
    pub fn consumed(&mut self, offset: usize) {
        if offset < self.released + RELEASE_STEP {
            return;
        }
        self.shrunk();
        // Whole 2 MiB chunks, one behind the reader: the kernel may map a file's large
        // folios 2 MiB at a time, and a range cutting through one leaves it mapped.
        let upto = offset.saturating_sub(CHUNK) / CHUNK * CHUNK;
        if upto <= self.released {
            return;
        }
        // SAFETY: DONTNEED on a shared file mapping only unmaps pages; touching them again
        // faults them back in from the file. Nothing borrows bytes before `offset`.
        let _ = unsafe {
            self.map.unchecked_advise_range(
                UncheckedAdvice::DontNeed,
                self.released,
                upto - self.released,
            )
        };
        self.released = upto;
    }
}

impl Drop for MappedFile {
    fn drop(&mut self) {
        let s = &TABLE[self.slot];
        s.start.store(RESERVED, Ordering::Release);
        s.end.store(0, Ordering::Release);
        s.damaged.store(false, Ordering::Release);
        s.start.store(0, Ordering::Release);
        // `map` unmaps itself, zero pages put in by the handler included.
    }
}

/// A free table slot for [start, start+len); None when all are taken.
fn claim(start: usize, len: usize) -> Option<usize> {
    for (i, s) in TABLE.iter().enumerate() {
        if s.start
            .compare_exchange(0, RESERVED, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            s.damaged.store(false, Ordering::Release);
            s.end.store(start + len, Ordering::Release);
            s.start.store(start, Ordering::Release);
            return Some(i);
        }
    }
    None
}

/// Install the SIGBUS handler once; false if the system refused.
fn install() -> bool {
    INSTALL.call_once(|| {
        // SAFETY: sysconf and sigaction with a zeroed, then filled, sigaction struct.
        unsafe {
            let page = libc::sysconf(libc::_SC_PAGESIZE);
            if page > 0 {
                PAGE.store(page as usize, Ordering::Relaxed);
            }
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_sigbus as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut sa.sa_mask);
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGBUS, &sa, &mut old) == 0 {
                let _ = PREVIOUS.set(old);
                INSTALLED.store(true, Ordering::Release);
            }
        }
    });
    INSTALLED.load(Ordering::Acquire)
}

/// The SIGBUS handler: only atomics, mmap and sigaction (async-signal-safe system calls).
extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel hands a valid siginfo to an SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    for s in &TABLE {
        let start = s.start.load(Ordering::Acquire);
        let end = s.end.load(Ordering::Acquire);
        if start == 0 || start == RESERVED || addr < start || addr >= end {
            continue;
        }
        let page = PAGE.load(Ordering::Relaxed);
        let from = addr / page * page;
        // SAFETY: replaces pages of our own mapping (the range lies inside it) with private
        // zero pages; MappedFile's munmap covers them.
        let got = unsafe {
            libc::mmap(
                from as *mut libc::c_void,
                end - from,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if got != libc::MAP_FAILED {
            s.damaged.store(true, Ordering::Release);
            return;
        }
    }
    chain(sig, info, ctx);
}

/// Not one of ours: whoever handled SIGBUS before, else the default action (the faulting
/// access runs again and the signal now takes its default course).
fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let handler = PREVIOUS.get().map_or(libc::SIG_DFL, |p| p.sa_sigaction);
    let flags = PREVIOUS.get().map_or(0, |p| p.sa_flags);
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        // SAFETY: resetting a disposition with a zeroed sigaction (SIG_DFL).
        unsafe {
            let mut dfl: libc::sigaction = std::mem::zeroed();
            dfl.sa_sigaction = libc::SIG_DFL;
            libc::sigemptyset(&mut dfl.sa_mask);
            libc::sigaction(sig, &dfl, std::ptr::null_mut());
        }
        return;
    }
    // SAFETY: the previous handler, called as it registered itself.
    unsafe {
        if flags & libc::SA_SIGINFO != 0 {
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                std::mem::transmute(handler);
            f(sig, info, ctx);
        } else {
            let f: extern "C" fn(libc::c_int) = std::mem::transmute(handler);
            f(sig);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn tmpfile(tag: &str, len: usize) -> (std::path::PathBuf, File) {
        let path = std::env::temp_dir().join(format!("nd-mapped-{tag}-{}", std::process::id()));
        let mut f = File::create(&path).unwrap();
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8 + 1).collect();
        f.write_all(&data).unwrap();
        (path.clone(), File::open(&path).unwrap())
    }

    #[test]
    fn small_files_are_not_mapped() {
        let (path, f) = tmpfile("small", 1000);
        assert!(MappedFile::open(f, 1000).is_err());
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn truncated_under_the_mapping_reads_zeros_and_is_marked() {
        let len = 3 << 20;
        let (path, f) = tmpfile("trunc", len);
        let m = MappedFile::open(f, len as u64).expect("mapped");
        assert_eq!(m.bytes()[len - 1], ((len - 1) % 251) as u8 + 1);
        assert!(!m.damaged());
        // Another program truncates the file to 1 MiB.
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(1 << 20)
            .unwrap();
        // Past the new end: without the handler this read would kill the process.
        assert_eq!(m.bytes()[2 << 20], 0);
        assert!(m.damaged());
        // What is still in the file reads as before.
        assert_eq!(m.bytes()[100], 101);
        drop(m);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn released_pages_read_back_from_the_file() {
        let len = 40 << 20;
        let (path, f) = tmpfile("release", len);
        let mut m = MappedFile::open(f, len as u64).expect("mapped");
        let sum: u64 = m.bytes()[..RELEASE_STEP + 5]
            .iter()
            .map(|&b| u64::from(b))
            .sum();
        m.consumed(RELEASE_STEP + 5);
        assert_eq!(m.released, RELEASE_STEP - CHUNK);
        let again: u64 = m.bytes()[..RELEASE_STEP + 5]
            .iter()
            .map(|&b| u64::from(b))
            .sum();
        assert_eq!(sum, again);
        drop(m);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn slots_are_reused() {
        let len = 1 << 20;
        let (path, f) = tmpfile("slots", len);
        for _ in 0..(SLOTS * 2) {
            let f = f.try_clone().unwrap();
            let m = MappedFile::open(f, len as u64).expect("a slot is free again");
            assert!(!m.damaged());
        }
        std::fs::remove_file(path).unwrap();
    }
}
