//! L2..L4: one frame in, one decoded TCP/UDP packet (or a counted reason why not) out.
//!
//! Ported from netdetect/packet.py (the behavioural reference, counters with the same
//! names): Ethernet, Linux SLL and SLL2, raw IPv4/IPv6, BSD loopback (null), PPP;
//! 802.1Q/QinQ (outermost VLAN id kept), MPLS, IPv4 (fragments counted, first fragments
//! decoded), IPv6 with extension headers, GRE, ERSPAN I/II/III, VXLAN, GENEVE, with a
//! bounded encapsulation depth. Nothing from the wire is trusted for a length.

#![allow(dead_code, unused_variables)]

use std::net::IpAddr;

pub const LINKTYPE_NULL: u32 = 0;
pub const LINKTYPE_ETHERNET: u32 = 1;
pub const LINKTYPE_PPP: u32 = 9;
pub const LINKTYPE_RAW: u32 = 101;
pub const LINKTYPE_LOOP: u32 = 108;
pub const LINKTYPE_LINUX_SLL: u32 = 113;
pub const LINKTYPE_IPV4: u32 = 228;
pub const LINKTYPE_IPV6: u32 = 229;
pub const LINKTYPE_LINUX_SLL2: u32 = 276;

pub const TCP: u8 = 6;
pub const UDP: u8 = 17;

/// One decoded TCP or UDP packet; `payload` borrows the frame.
#[derive(Debug, Clone, Copy)]
pub struct Decoded<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    pub sport: u16,
    pub dport: u16,
    /// TCP flags, 0 for UDP.
    pub flags: u8,
    /// TCP sequence number, 0 for UDP.
    pub seq: u32,
    /// L4 payload as captured (may be shorter than on the wire when snapped).
    pub payload: &'a [u8],
    /// Outermost 802.1Q VLAN id, 0 when untagged.
    pub vlan: u16,
}

/// Counters, same names and meanings as netdetect/packet.py's PacketDecoder.
#[derive(Debug, Clone, Default)]
pub struct PacketCounters {
    pub packets: u64,
    pub decoded: u64,
    pub truncated: u64,
    pub non_ip: u64,
    pub malformed: u64,
    pub snapped: u64,
    pub fragments: u64,
    pub first_fragments: u64,
    pub tunnels: u64,
    pub unsupported_linktype: u64,
}

impl PacketCounters {
    pub fn items(&self) -> [(&'static str, u64); 10] {
        [
            ("packets", self.packets),
            ("decoded", self.decoded),
            ("truncated", self.truncated),
            ("non_ip", self.non_ip),
            ("malformed", self.malformed),
            ("snapped", self.snapped),
            ("fragments", self.fragments),
            ("first_fragments", self.first_fragments),
            ("tunnels", self.tunnels),
            ("unsupported_linktype", self.unsupported_linktype),
        ]
    }
}

#[derive(Debug, Default)]
pub struct PacketDecoder {
    pub counters: PacketCounters,
}

impl PacketDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decode one frame; None when it is not TCP/UDP over IP (counted by reason).
    /// Non-TCP/UDP IP packets count as decoded and return None.
    pub fn decode<'a>(&mut self, linktype: u32, frame: &'a [u8]) -> Option<Decoded<'a>> {
        todo!()
    }
}
