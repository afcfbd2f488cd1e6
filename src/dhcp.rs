//! DHCPv4 messages (BOOTP + options), for host identity: which address a named host got.
//!
//! Ported from netdetect/decoders/dhcp.py (behavioural reference): option overload,
//! concatenated long options (RFC 3396), host name (12) and client FQDN (81), lease time,
//! server identifier; every length checked.

#![allow(dead_code, unused_variables)]

use crate::error::DecodeError;
use std::net::Ipv4Addr;

pub const BOOTREQUEST: u8 = 1;
pub const BOOTREPLY: u8 = 2;
pub const DISCOVER: u8 = 1;
pub const OFFER: u8 = 2;
pub const REQUEST: u8 = 3;
pub const ACK: u8 = 5;
pub const NAK: u8 = 6;
pub const INFORM: u8 = 8;
pub const INFINITE_LEASE: u32 = 0xFFFF_FFFF;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpMessage {
    pub op: u8,
    /// Option 53; 0 when absent (plain BOOTP).
    pub msg_type: u8,
    pub xid: u32,
    /// Client hardware address as lower-case hex with colons (as dhcp.py renders it).
    pub chaddr: String,
    pub ciaddr: Ipv4Addr,
    pub yiaddr: Ipv4Addr,
    pub hostname: Option<String>,
    pub client_fqdn: Option<String>,
    pub lease_time: Option<u32>,
    /// Option 54.
    pub server_id: Option<Ipv4Addr>,
}

pub fn decode_dhcp(data: &[u8]) -> Result<DhcpMessage, DecodeError> {
    todo!()
}
