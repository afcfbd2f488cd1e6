//! HTTP/1.x heads of one direction of a TCP stream, and small bodies (a JSON-RPC body is
//! handed up whole, capped) — getwork, getblocktemplate, eth_getWork and the mining headers.
//!
//! Ported from netdetect/decoders/http.py (behavioural reference): httparse for the head,
//! Content-Length (ASCII digits only: a Unicode digit is a malformed header, never a crash)
//! and chunked bodies, pipelined messages, caps on head and body size.

#![allow(dead_code, unused_variables)]

use crate::error::DecodeError;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HttpHead {
    pub is_request: bool,
    pub method: Option<String>,
    pub path: Option<String>,
    pub status: Option<u16>,
    pub host: Option<String>,
    pub user_agent: Option<String>,
    pub content_type: Option<String>,
    pub x_mining_extensions: Option<String>,
    pub x_stratum: Option<String>,
    pub x_long_polling: Option<String>,
    /// User part of Basic authorization (a miner's login).
    pub authorization_user: Option<String>,
    pub upgrade: Option<String>,
    /// The body when it may be JSON-RPC (as http.py decides), else empty; capped.
    pub body: Vec<u8>,
}

/// One direction of an HTTP/1.x stream.
pub struct HttpSniffer {}

impl HttpSniffer {
    pub fn new() -> Self {
        todo!()
    }

    /// Bytes in, complete messages appended to `out`. After an Err the sniffer is dead.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<HttpHead>) -> Result<(), DecodeError> {
        todo!()
    }

    /// The stream ended: a message whose body runs to the end of the stream completes.
    pub fn close(&mut self, out: &mut Vec<HttpHead>) {
        todo!()
    }
}

impl Default for HttpSniffer {
    fn default() -> Self {
        Self::new()
    }
}
