//! Stratum V2 shapes: the Noise NX handshake sizes (64-byte initiator answered by a
//! 234-byte responder, uniform-looking bytes), encrypted frame sizes 22 + (n + 16), and the
//! plaintext SetupConnection frame.
//!
//! Ported from netdetect/decoders/sv2.py (behavioural reference).

#![allow(dead_code, unused_variables)]

use crate::error::DecodeError;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SetupConnection {
    /// 0 mining, 1 job declaration, 2 template distribution.
    pub protocol: u8,
    pub vendor: String,
    pub hardware: String,
    pub firmware: String,
    pub endpoint_host: String,
    pub endpoint_port: u16,
}

/// The client's first payload (its first 64 bytes are enough) and the length of the
/// server's first payload: do they have the Noise NX handshake shape?
pub fn noise_handshake(
    client_first: &[u8],
    client_first_len: usize,
    server_first_len: usize,
) -> bool {
    todo!()
}

/// Could a TCP payload of this size be one encrypted SV2 frame?
pub fn encrypted_frame_plausible(size: usize) -> bool {
    todo!()
}

/// A plaintext SetupConnection frame at the start of `data`; Ok(None) when `data` is not
/// one; Err when it claims to be one and is malformed.
pub fn parse_plaintext(data: &[u8]) -> Result<Option<SetupConnection>, DecodeError> {
    todo!()
}
