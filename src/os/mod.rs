//! Memory shared with the kernel: the one place with `unsafe`.
//!
//! - `ring`: the live TPACKET_V3 ring of an AF_PACKET socket.
//! - `mapped`: capture files read through a read-only mapping, with the SIGBUS a file
//!   truncated under the mapping would raise turned into a capture error.
//!
//! Everything else in the crate is `#![deny(unsafe_code)]` and sees plain slices.
#![allow(unsafe_code)]

pub mod mapped;
pub mod ring;
