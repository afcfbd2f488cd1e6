//! netdetect's compiled core: everything that runs per packet or per flow.
//!
//! Pure and deterministic: time comes from packet timestamps; no clock, no network, no
//! files except capture sources. Python (netdetect/) keeps the judgement: it asks the
//! engine for the next batch of events and gets plain values back, only for flows that can
//! still carry evidence (see `engine`). The bindings live in `python` (feature "python").

#![deny(unsafe_code)]

pub mod capture;
pub mod dhcp;
pub mod dns;
pub mod engine;
pub mod error;
pub mod http;
pub mod intel;
pub mod lines;
pub mod mmdb;
pub mod os;
pub mod packet;
pub mod pdns;
pub mod reasm;
pub use os::ring;
pub mod socks;
pub mod sv2;
pub mod tls;
pub mod ws;

#[cfg(feature = "python")]
mod python;

#[cfg(test)]
mod fuzz;
