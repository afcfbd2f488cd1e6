//! L2..L4: one frame in, one decoded TCP/UDP packet (or a counted reason why not) out.
//!
//! Ported from netdetect/packet.py (the behavioural reference, counters with the same
//! names): Ethernet, Linux SLL and SLL2, raw IPv4/IPv6, BSD loopback (null), PPP;
//! 802.1Q/QinQ (outermost VLAN id kept), MPLS, IPv4 (fragments counted, first fragments
//! decoded), IPv6 with extension headers, GRE, ERSPAN I/II/III, VXLAN, GENEVE, with a
//! bounded encapsulation depth. Nothing from the wire is trusted for a length.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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
    /// Decoded IP packets that are neither TCP nor UDP (returned as None).
    pub other_l4: u64,
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

/// Encapsulation layers removed before the rest is returned as the plain outer packet.
pub const MAX_DEPTH: u32 = 4;
/// IPv6 extension headers (and IPv4 AH headers) followed before giving up: RFC 8200 sets
/// no limit, real traffic carries a few, and a long chain is a known evasion trick.
const MAX_EXT: usize = 8;
/// VLAN tags, SNAP headers and MPLS labels followed before the frame counts as malformed.
const MAX_TAGS: usize = 8;

/// Every link type `decode` understands (12 and 14 are raw IP on some systems, 50 is PPP
/// in HDLC-like framing).
pub const LINKTYPES: [u32; 12] = [0, 1, 9, 12, 14, 50, 101, 108, 113, 228, 229, 276];

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86DD;
const ETH_TEB: u16 = 0x6558;
const PPPOE_SESSION: u16 = 0x8864;
const ERSPAN_II: u16 = 0x88BE;
const ERSPAN_III: u16 = 0x22EB;
const VXLAN_PORT: u16 = 4789;
const GENEVE_PORT: u16 = 6081;

fn is_vlan_type(et: u16) -> bool {
    matches!(et, 0x8100 | 0x88A8 | 0x9100 | 0x9200 | 0x9300)
}

/// IPv6 extension headers whose length is known (HBH, routing, fragment, AH, destination
/// options, mobility, HIP, shim6); ESP (50) and No Next Header (59) end the chain.
fn is_ipv6_ext(nh: u8) -> bool {
    matches!(nh, 0 | 43 | 44 | 51 | 60 | 135 | 139 | 140)
}

/// BSD, FreeBSD and macOS values of AF_INET6.
fn is_af_inet6(af: u8) -> bool {
    matches!(af, 24 | 28 | 30)
}

/// Callers check `off + 2 <= buf.len()` first; the indexing stays bounds-checked anyway.
#[inline]
fn be16(buf: &[u8], off: usize) -> u16 {
    u16::from_be_bytes([buf[off], buf[off + 1]])
}

#[inline]
fn be32(buf: &[u8], off: usize) -> u32 {
    u32::from_be_bytes([buf[off], buf[off + 1], buf[off + 2], buf[off + 3]])
}

fn ipv4_at(buf: &[u8], off: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        buf[off],
        buf[off + 1],
        buf[off + 2],
        buf[off + 3],
    ))
}

fn ipv6_at(buf: &[u8], off: usize) -> IpAddr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&buf[off..off + 16]);
    IpAddr::V6(Ipv6Addr::from(a))
}

/// What a tunnel helper found: not this encapsulation (keep the outer packet), or the
/// outcome of decoding the inner packet (already counted).
enum Inner<'a> {
    NotTunnel,
    Done(Option<Decoded<'a>>),
}

impl PacketDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decode one frame; None when it is not TCP/UDP over IP (counted by reason).
    /// Non-TCP/UDP IP packets count as decoded and return None.
    pub fn decode<'a>(&mut self, linktype: u32, frame: &'a [u8]) -> Option<Decoded<'a>> {
        self.counters.packets += 1;
        let n = frame.len();
        match linktype {
            LINKTYPE_ETHERNET => {
                if n < 14 {
                    self.counters.truncated += 1;
                    return None;
                }
                self.ethertype(frame, 14, n, be16(frame, 12), 0, 0)
            }
            LINKTYPE_LINUX_SLL => {
                if n < 16 {
                    self.counters.truncated += 1;
                    return None;
                }
                self.ethertype(frame, 16, n, be16(frame, 14), 0, 0)
            }
            LINKTYPE_LINUX_SLL2 => {
                if n < 20 {
                    self.counters.truncated += 1;
                    return None;
                }
                self.ethertype(frame, 20, n, be16(frame, 0), 0, 0)
            }
            LINKTYPE_RAW | 12 | 14 => self.raw_ip(frame, 0, n, 0, 0),
            LINKTYPE_IPV4 => self.ip4(frame, 0, n, 0, 0),
            LINKTYPE_IPV6 => self.ip6(frame, 0, n, 0, 0),
            LINKTYPE_NULL | LINKTYPE_LOOP => {
                // The AF value is in the capturing host's byte order for NULL and big-endian
                // for LOOP; both are small numbers, so whichever end byte is set is the value.
                if n < 4 {
                    self.counters.truncated += 1;
                    return None;
                }
                if frame[1] != 0 || frame[2] != 0 || (frame[0] != 0 && frame[3] != 0) {
                    self.counters.non_ip += 1;
                    return None;
                }
                let af = frame[0] | frame[3];
                if af == 2 {
                    return self.ip4(frame, 4, n, 0, 0);
                }
                if is_af_inet6(af) {
                    return self.ip6(frame, 4, n, 0, 0);
                }
                self.counters.non_ip += 1;
                None
            }
            LINKTYPE_PPP | 50 => {
                let mut off = if frame.starts_with(b"\xff\x03") { 2 } else { 0 };
                if off >= n {
                    self.counters.truncated += 1;
                    return None;
                }
                let proto;
                if frame[off] & 1 != 0 {
                    // Protocol field compressed to one byte (RFC 1661 6.5).
                    proto = u16::from(frame[off]);
                    off += 1;
                } else if off + 2 <= n {
                    proto = be16(frame, off);
                    off += 2;
                } else {
                    self.counters.truncated += 1;
                    return None;
                }
                match proto {
                    0x21 => self.ip4(frame, off, n, 0, 0),
                    0x57 => self.ip6(frame, off, n, 0, 0),
                    _ => {
                        self.counters.non_ip += 1;
                        None
                    }
                }
            }
            _ => {
                self.counters.unsupported_linktype += 1;
                None
            }
        }
    }

    fn raw_ip<'a>(
        &mut self,
        buf: &'a [u8],
        off: usize,
        lim: usize,
        vlan: u16,
        depth: u32,
    ) -> Option<Decoded<'a>> {
        if off >= lim {
            self.counters.truncated += 1;
            return None;
        }
        match buf[off] >> 4 {
            4 => self.ip4(buf, off, lim, vlan, depth),
            6 => self.ip6(buf, off, lim, vlan, depth),
            _ => {
                self.counters.non_ip += 1;
                None
            }
        }
    }

    fn ether<'a>(
        &mut self,
        buf: &'a [u8],
        off: usize,
        lim: usize,
        vlan: u16,
        depth: u32,
    ) -> Option<Decoded<'a>> {
        if off + 14 > lim {
            self.counters.truncated += 1;
            return None;
        }
        self.ethertype(buf, off + 14, lim, be16(buf, off + 12), vlan, depth)
    }

    /// Follow VLAN tags, MPLS, PPPoE and SNAP from EtherType `et` at `off` to IP.
    fn ethertype<'a>(
        &mut self,
        buf: &'a [u8],
        mut off: usize,
        lim: usize,
        mut et: u16,
        mut vlan: u16,
        depth: u32,
    ) -> Option<Decoded<'a>> {
        // Each Ethernet header's own outermost tag wins over what an outer layer passed in:
        // for mirrored traffic that is the monitored segment's VLAN.
        let mut tagged = false;
        for _ in 0..MAX_TAGS {
            match et {
                ETH_IPV4 => return self.ip4(buf, off, lim, vlan, depth),
                ETH_IPV6 => return self.ip6(buf, off, lim, vlan, depth),
                _ if is_vlan_type(et) => {
                    if off + 4 > lim {
                        self.counters.truncated += 1;
                        return None;
                    }
                    let tci = be16(buf, off);
                    et = be16(buf, off + 2);
                    if !tagged {
                        vlan = tci & 0x0FFF;
                        tagged = true;
                    }
                    off += 4;
                }
                0x8847 | 0x8848 => return self.mpls(buf, off, lim, vlan, depth),
                PPPOE_SESSION => {
                    if off + 8 > lim {
                        self.counters.truncated += 1;
                        return None;
                    }
                    return match be16(buf, off + 6) {
                        0x21 => self.ip4(buf, off + 8, lim, vlan, depth),
                        0x57 => self.ip6(buf, off + 8, lim, vlan, depth),
                        _ => {
                            self.counters.non_ip += 1;
                            None
                        }
                    };
                }
                0..=1500 => {
                    // An 802.3 length field: only LLC/SNAP with a zero OUI carries an EtherType.
                    if off + 8 > lim {
                        self.counters.truncated += 1;
                        return None;
                    }
                    if buf[off..off + 6] != *b"\xaa\xaa\x03\x00\x00\x00" {
                        self.counters.non_ip += 1;
                        return None;
                    }
                    et = be16(buf, off + 6);
                    off += 8;
                }
                _ => {
                    self.counters.non_ip += 1;
                    return None;
                }
            }
        }
        self.counters.malformed += 1;
        None
    }

    fn mpls<'a>(
        &mut self,
        buf: &'a [u8],
        mut off: usize,
        lim: usize,
        vlan: u16,
        depth: u32,
    ) -> Option<Decoded<'a>> {
        let mut bottom = false;
        for _ in 0..MAX_TAGS {
            if off + 4 > lim {
                self.counters.truncated += 1;
                return None;
            }
            bottom = buf[off + 2] & 1 != 0;
            off += 4;
            if bottom {
                break;
            }
        }
        if !bottom {
            self.counters.malformed += 1;
            return None;
        }
        if off >= lim {
            self.counters.truncated += 1;
            return None;
        }
        // No protocol field after the label stack: the first nibble tells IP versions apart,
        // and 0 is the pseudowire control word before an Ethernet frame (RFC 4385).
        match buf[off] >> 4 {
            4 => self.ip4(buf, off, lim, vlan, depth),
            6 => self.ip6(buf, off, lim, vlan, depth),
            0 => self.ether(buf, off + 4, lim, vlan, depth),
            _ => {
                self.counters.non_ip += 1;
                None
            }
        }
    }

    fn ip4<'a>(
        &mut self,
        buf: &'a [u8],
        off: usize,
        lim: usize,
        vlan: u16,
        depth: u32,
    ) -> Option<Decoded<'a>> {
        if off + 20 > lim {
            self.counters.truncated += 1;
            return None;
        }
        let vihl = buf[off];
        let ihl = usize::from(vihl & 0x0F) << 2;
        if vihl >> 4 != 4 || ihl < 20 {
            self.counters.malformed += 1;
            return None;
        }
        let total = usize::from(be16(buf, off + 2));
        let end = if total == 0 {
            // Segmentation offload: the host captured its own oversized segment before the
            // NIC split it, and the stack left the length unset.
            lim
        } else if total < ihl {
            self.counters.malformed += 1;
            return None;
        } else if off + total > lim {
            self.counters.snapped += 1;
            lim
        } else {
            off + total
        };
        let mut l4 = off + ihl;
        if l4 > end {
            self.counters.truncated += 1;
            return None;
        }
        let frag = be16(buf, off + 6);
        if frag & 0x1FFF != 0 {
            self.counters.fragments += 1;
            return None;
        }
        if frag & 0x2000 != 0 {
            self.counters.first_fragments += 1;
        }
        let mut proto = buf[off + 9];
        if proto == 51 {
            // IPv4 AH (RFC 4302) authenticates without encrypting: skip it to the real L4.
            for _ in 0..MAX_EXT {
                if l4 + 8 > end {
                    self.counters.truncated += 1;
                    return None;
                }
                proto = buf[l4];
                l4 += (usize::from(buf[l4 + 1]) + 2) << 2;
                if proto != 51 {
                    break;
                }
            }
            if l4 > end {
                self.counters.truncated += 1;
                return None;
            }
        }
        let (src, dst) = (ipv4_at(buf, off + 12), ipv4_at(buf, off + 16));
        self.l4(buf, l4, end, proto, src, dst, vlan, depth)
    }

    fn ip6<'a>(
        &mut self,
        buf: &'a [u8],
        off: usize,
        lim: usize,
        vlan: u16,
        depth: u32,
    ) -> Option<Decoded<'a>> {
        if off + 40 > lim {
            self.counters.truncated += 1;
            return None;
        }
        if buf[off] >> 4 != 6 {
            self.counters.malformed += 1;
            return None;
        }
        let plen = usize::from(be16(buf, off + 4));
        let mut nh = buf[off + 6];
        let mut p = off + 40;
        let end = if plen == 0 {
            // Jumbogram or segmentation offload: the capture decides.
            lim
        } else if p + plen > lim {
            self.counters.snapped += 1;
            lim
        } else {
            p + plen
        };
        let mut hops = 0;
        while is_ipv6_ext(nh) {
            hops += 1;
            if hops > MAX_EXT {
                self.counters.malformed += 1;
                return None;
            }
            if p + 8 > end {
                self.counters.truncated += 1;
                return None;
            }
            match nh {
                44 => {
                    let fo = be16(buf, p + 2);
                    if fo & 0xFFF8 != 0 {
                        self.counters.fragments += 1;
                        return None;
                    }
                    if fo & 1 != 0 {
                        self.counters.first_fragments += 1;
                    }
                    nh = buf[p];
                    p += 8;
                }
                51 => {
                    // AH counts its length in 4-octet units, minus 2.
                    nh = buf[p];
                    p += (usize::from(buf[p + 1]) + 2) << 2;
                }
                _ => {
                    nh = buf[p];
                    p += (usize::from(buf[p + 1]) + 1) << 3;
                }
            }
        }
        if p > end {
            self.counters.truncated += 1;
            return None;
        }
        let (src, dst) = (ipv6_at(buf, off + 8), ipv6_at(buf, off + 24));
        self.l4(buf, p, end, nh, src, dst, vlan, depth)
    }

    #[allow(clippy::too_many_arguments)]
    fn l4<'a>(
        &mut self,
        buf: &'a [u8],
        l4: usize,
        mut end: usize,
        proto: u8,
        src: IpAddr,
        dst: IpAddr,
        vlan: u16,
        depth: u32,
    ) -> Option<Decoded<'a>> {
        if proto == TCP {
            if l4 + 20 > end {
                self.counters.truncated += 1;
                return None;
            }
            let doff = usize::from(buf[l4 + 12] >> 4) << 2;
            if doff < 20 {
                self.counters.malformed += 1;
                return None;
            }
            // Options cut off by the snap length still leave a usable header (flags matter
            // to the flow table); an empty payload is the honest answer then.
            let start = (l4 + doff).min(end);
            self.counters.decoded += 1;
            return Some(Decoded {
                src,
                dst,
                proto: TCP,
                sport: be16(buf, l4),
                dport: be16(buf, l4 + 2),
                flags: buf[l4 + 13],
                seq: be32(buf, l4 + 4),
                payload: &buf[start..end],
                vlan,
            });
        }
        if proto == UDP {
            if l4 + 8 > end {
                self.counters.truncated += 1;
                return None;
            }
            let sport = be16(buf, l4);
            let dport = be16(buf, l4 + 2);
            let ulen = usize::from(be16(buf, l4 + 4));
            // The UDP length only ever shortens the payload (Ethernet padding); a length
            // beyond the IP packet is ignored, the IP length already bounds it.
            if ulen >= 8 && l4 + ulen < end {
                end = l4 + ulen;
            }
            if (dport == VXLAN_PORT || dport == GENEVE_PORT) && depth < MAX_DEPTH {
                if let Inner::Done(inner) = self.udp_tunnel(buf, l4 + 8, end, dport, vlan, depth) {
                    return inner;
                }
            }
            self.counters.decoded += 1;
            return Some(Decoded {
                src,
                dst,
                proto: UDP,
                sport,
                dport,
                flags: 0,
                seq: 0,
                payload: &buf[l4 + 8..end],
                vlan,
            });
        }
        if depth < MAX_DEPTH {
            match proto {
                47 => {
                    if let Inner::Done(inner) = self.gre(buf, l4, end, vlan, depth) {
                        return inner;
                    }
                }
                4 => {
                    self.counters.tunnels += 1;
                    return self.ip4(buf, l4, end, vlan, depth + 1);
                }
                41 => {
                    self.counters.tunnels += 1;
                    return self.ip6(buf, l4, end, vlan, depth + 1);
                }
                _ => {}
            }
        }
        self.counters.decoded += 1;
        self.counters.other_l4 += 1;
        None
    }

    /// The inner packet of a VXLAN/GENEVE datagram whose payload starts at `p`.
    fn udp_tunnel<'a>(
        &mut self,
        buf: &'a [u8],
        p: usize,
        end: usize,
        dport: u16,
        vlan: u16,
        depth: u32,
    ) -> Inner<'a> {
        if dport == VXLAN_PORT {
            // RFC 7348: only the I flag is mandatory; reserved bits are ignored on receipt.
            if p + 8 + 14 > end || buf[p] & 0x08 == 0 {
                return Inner::NotTunnel;
            }
            self.counters.tunnels += 1;
            return Inner::Done(self.ether(buf, p + 8, end, vlan, depth + 1));
        }
        // GENEVE (RFC 8926): version 0, options length in 4-byte words, EtherType protocol.
        if p + 8 > end || buf[p] >> 6 != 0 {
            return Inner::NotTunnel;
        }
        let inner = p + 8 + (usize::from(buf[p] & 0x3F) << 2);
        let ptype = be16(buf, p + 2);
        if inner > end {
            return Inner::NotTunnel;
        }
        self.by_ethertype(ptype, buf, inner, end, vlan, depth)
    }

    /// A tunnel's payload named by EtherType: IPv4, IPv6 or a whole Ethernet frame.
    fn by_ethertype<'a>(
        &mut self,
        ptype: u16,
        buf: &'a [u8],
        p: usize,
        end: usize,
        vlan: u16,
        depth: u32,
    ) -> Inner<'a> {
        let inner = match ptype {
            ETH_IPV4 => {
                self.counters.tunnels += 1;
                self.ip4(buf, p, end, vlan, depth + 1)
            }
            ETH_IPV6 => {
                self.counters.tunnels += 1;
                self.ip6(buf, p, end, vlan, depth + 1)
            }
            ETH_TEB => {
                self.counters.tunnels += 1;
                self.ether(buf, p, end, vlan, depth + 1)
            }
            _ => return Inner::NotTunnel,
        };
        Inner::Done(inner)
    }

    /// The inner packet of a GRE/ERSPAN payload at `p`, or NotTunnel to keep the GRE packet.
    fn gre<'a>(
        &mut self,
        buf: &'a [u8],
        mut p: usize,
        end: usize,
        mut vlan: u16,
        depth: u32,
    ) -> Inner<'a> {
        if p + 4 > end {
            return Inner::NotTunnel;
        }
        let flags = be16(buf, p);
        let ptype = be16(buf, p + 2);
        // Version 1 is PPTP's enhanced GRE (PPP inside) and the routing bit is RFC 1701's
        // source routing: neither is used to mirror traffic.
        if flags & 0x4007 != 0 {
            return Inner::NotTunnel;
        }
        p += 4;
        if flags & 0x8000 != 0 {
            p += 4; // checksum + reserved
        }
        if flags & 0x2000 != 0 {
            p += 4; // key
        }
        let seq = flags & 0x1000 != 0;
        if seq {
            p += 4;
        }
        if p > end {
            return Inner::NotTunnel;
        }
        match ptype {
            ETH_IPV4 | ETH_IPV6 | ETH_TEB => self.by_ethertype(ptype, buf, p, end, vlan, depth),
            ERSPAN_II => {
                // Type I has no ERSPAN header at all and is told apart by the GRE S bit.
                if seq {
                    if p + 8 > end {
                        return Inner::NotTunnel;
                    }
                    vlan = match be16(buf, p) & 0x0FFF {
                        0 => vlan,
                        v => v,
                    };
                    p += 8;
                }
                self.counters.tunnels += 1;
                Inner::Done(self.ether(buf, p, end, vlan, depth + 1))
            }
            ERSPAN_III => {
                if p + 12 > end {
                    return Inner::NotTunnel;
                }
                vlan = match be16(buf, p) & 0x0FFF {
                    0 => vlan,
                    v => v,
                };
                let frame_type = (buf[p + 10] >> 2) & 0x1F;
                // O bit: an 8-byte platform-specific subheader follows.
                let inner = p + if buf[p + 11] & 1 != 0 { 20 } else { 12 };
                self.counters.tunnels += 1;
                if frame_type == 2 {
                    // The mirrored packet without its L2 header.
                    return Inner::Done(self.raw_ip(buf, inner, end, vlan, depth + 1));
                }
                Inner::Done(self.ether(buf, inner, end, vlan, depth + 1))
            }
            _ => Inner::NotTunnel,
        }
    }
}
