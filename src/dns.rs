//! DNS messages over UDP and TCP (length-prefixed framing).
//!
//! Ported from netdetect/decoders/dns.py (behavioural reference): names lower-cased without
//! the trailing dot, escaped labels, explicit limits on name length, label count and
//! compression pointers (no loops), counts from the header never trusted for allocation.

#![allow(dead_code, unused_variables)]

use crate::error::DecodeError;
use std::net::IpAddr;

pub const A: u16 = 1;
pub const CNAME: u16 = 5;
pub const AAAA: u16 = 28;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RData {
    Addr(IpAddr),
    /// CNAME (and other name-valued records) target.
    Name(String),
    /// Anything else, as dns.py renders it.
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsRecord {
    pub name: String,
    pub rtype: u16,
    pub ttl: u32,
    pub value: RData,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DnsMessage {
    pub msg_id: u16,
    pub is_response: bool,
    pub rcode: u8,
    pub questions: Vec<(String, u16)>,
    pub answers: Vec<DnsRecord>,
}

/// Decode one DNS message. `addresses_only`: keep only A, AAAA and CNAME answers (what
/// passive DNS needs), skipping the rendering of other rdata.
pub fn decode_dns(data: &[u8], addresses_only: bool) -> Result<DnsMessage, DecodeError> {
    todo!()
}

/// DNS over TCP, one direction: 2-byte length prefix framing. Messages decoded before a
/// damaged prefix are returned; the error comes on the next feed.
pub struct DnsTcpFramer {}

impl DnsTcpFramer {
    pub fn new() -> Self {
        todo!()
    }

    pub fn feed(&mut self, data: &[u8], out: &mut Vec<DnsMessage>) -> Result<(), DecodeError> {
        todo!()
    }
}

impl Default for DnsTcpFramer {
    fn default() -> Self {
        Self::new()
    }
}
