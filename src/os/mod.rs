//! Memory shared with the kernel: the one place with `unsafe`.
//!
//! - `ring`: the live TPACKET_V3 ring of an AF_PACKET socket.
//!
//! Capture files are read with read(2), not mapped: mapped, the bytes reach the parser
//! cold (no faster once the copy is gone, measured), and a file truncated under the mapping
//! would need a SIGBUS handler.
//!
//! Everything else in the crate is `#![deny(unsafe_code)]` and sees plain slices.
#![allow(unsafe_code)]

pub mod ring;
