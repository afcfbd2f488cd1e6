//! L2..L4: one frame in, one decoded TCP/UDP packet (or a counted reason why not) out.
//!
//! Behaviour of the retired Python packet decoder (its tests now run here; counters keep its
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const A4: [u8; 4] = [10, 1, 2, 3];
    const B4: [u8; 4] = [198, 51, 100, 20];
    const A6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const B6: [u8; 16] = [
        0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
    ];
    const LOGIN: &[u8] = b"{\"id\":1,\"method\":\"login\"}\n";

    fn tcp_seg(sport: u16, dport: u16, seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
        let mut t = Vec::new();
        t.extend_from_slice(&sport.to_be_bytes());
        t.extend_from_slice(&dport.to_be_bytes());
        t.extend_from_slice(&seq.to_be_bytes());
        t.extend_from_slice(&0u32.to_be_bytes());
        t.push(0x50);
        t.push(flags);
        t.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
        t.extend_from_slice(payload);
        t
    }

    fn tcp() -> Vec<u8> {
        tcp_seg(40000, 3333, 123_456_789, 0x18, LOGIN)
    }

    fn udp_dgram(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let mut u = Vec::new();
        u.extend_from_slice(&sport.to_be_bytes());
        u.extend_from_slice(&dport.to_be_bytes());
        u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        u.extend_from_slice(&[0, 0]);
        u.extend_from_slice(payload);
        u
    }

    fn ip4_full(proto: u8, frag: u16, options: &[u8], l4: &[u8]) -> Vec<u8> {
        let ihl = 20 + options.len();
        assert_eq!(ihl % 4, 0);
        let mut h = vec![0x40 | (ihl / 4) as u8, 0];
        h.extend_from_slice(&((ihl + l4.len()) as u16).to_be_bytes());
        h.extend_from_slice(&[0, 1]);
        h.extend_from_slice(&frag.to_be_bytes());
        h.extend_from_slice(&[64, proto, 0, 0]);
        h.extend_from_slice(&A4);
        h.extend_from_slice(&B4);
        h.extend_from_slice(options);
        h.extend_from_slice(l4);
        h
    }

    fn ip4(proto: u8, l4: &[u8]) -> Vec<u8> {
        ip4_full(proto, 0, &[], l4)
    }

    fn ip6(nh: u8, rest: &[u8]) -> Vec<u8> {
        let mut h = vec![0x60, 0, 0, 0];
        h.extend_from_slice(&(rest.len() as u16).to_be_bytes());
        h.extend_from_slice(&[nh, 64]);
        h.extend_from_slice(&A6);
        h.extend_from_slice(&B6);
        h.extend_from_slice(rest);
        h
    }

    fn eth(et: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
        f.extend_from_slice(&et.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    /// A tag (TPID `tpid`, VLAN `vid`) then EtherType `et`, as it follows a MAC pair.
    fn tagged(tags: &[(u16, u16)], et: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
        for (tpid, vid) in tags {
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&(0x2000 | vid).to_be_bytes());
        }
        f.extend_from_slice(&et.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    /// A decoded packet with its payload copied, so a test can build frames inline.
    #[derive(Debug)]
    struct Got {
        src: IpAddr,
        dst: IpAddr,
        proto: u8,
        sport: u16,
        dport: u16,
        flags: u8,
        seq: u32,
        payload: Vec<u8>,
        vlan: u16,
    }

    fn decode1(linktype: u32, frame: &[u8]) -> (Option<Got>, PacketCounters) {
        let mut d = PacketDecoder::new();
        let p = d.decode(linktype, frame).map(|p| Got {
            src: p.src,
            dst: p.dst,
            proto: p.proto,
            sport: p.sport,
            dport: p.dport,
            flags: p.flags,
            seq: p.seq,
            payload: p.payload.to_vec(),
            vlan: p.vlan,
        });
        (p, d.counters)
    }

    fn assert_tcp4(p: &Got) {
        assert_eq!(p.src, IpAddr::from(A4));
        assert_eq!(p.dst, IpAddr::from(B4));
        assert_eq!((p.proto, p.sport, p.dport), (TCP, 40000, 3333));
        assert_eq!((p.flags, p.seq), (0x18, 123_456_789));
        assert_eq!(p.payload, LOGIN);
    }

    fn assert_tcp6(p: &Got) {
        assert_eq!(p.src, IpAddr::from(A6));
        assert_eq!(p.dst, IpAddr::from(B6));
        assert_eq!((p.proto, p.sport, p.dport), (TCP, 40000, 3333));
        assert_eq!(p.payload, LOGIN);
    }

    /// Decodes to the standard IPv4 TCP segment with `vlan` after `tunnels` layers.
    fn expect_tcp4(linktype: u32, frame: &[u8], vlan: u16, tunnels: u64) {
        let (p, c) = decode1(linktype, frame);
        let p = p.unwrap_or_else(|| panic!("not decoded: {c:?}"));
        assert_tcp4(&p);
        assert_eq!(p.vlan, vlan);
        assert_eq!((c.decoded, c.tunnels), (1, tunnels));
    }

    #[test]
    fn ethernet_ipv4_tcp() {
        expect_tcp4(LINKTYPE_ETHERNET, &eth(0x0800, &ip4(TCP, &tcp())), 0, 0);
    }

    #[test]
    fn ethernet_ipv6_tcp_and_udp() {
        let (p, _) = decode1(LINKTYPE_ETHERNET, &eth(0x86DD, &ip6(TCP, &tcp())));
        assert_tcp6(&p.unwrap());
        let frame = eth(0x86DD, &ip6(UDP, &udp_dgram(5353, 53, b"\x12\x34dns?")));
        let (p, _) = decode1(LINKTYPE_ETHERNET, &frame);
        let p = p.unwrap();
        assert_eq!(
            (p.proto, p.sport, p.dport, p.flags, p.seq),
            (UDP, 5353, 53, 0, 0)
        );
        assert_eq!(p.payload, b"\x12\x34dns?");
    }

    #[test]
    fn every_link_type() {
        let pkt = ip4(TCP, &tcp());
        let pkt6 = ip6(TCP, &tcp());
        let mut sll = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x08, 0x00];
        sll.extend_from_slice(&pkt);
        expect_tcp4(LINKTYPE_LINUX_SLL, &sll, 0, 0);
        let mut sll2 = vec![
            0x08, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0,
        ];
        sll2.extend_from_slice(&pkt);
        expect_tcp4(LINKTYPE_LINUX_SLL2, &sll2, 0, 0);
        for lt in [LINKTYPE_RAW, 12, 14, LINKTYPE_IPV4] {
            expect_tcp4(lt, &pkt, 0, 0);
        }
        for lt in [LINKTYPE_RAW, 12, 14, LINKTYPE_IPV6] {
            assert_tcp6(&decode1(lt, &pkt6).0.unwrap());
        }
        // NULL in either host byte order, LOOP big-endian; AF_INET6 as BSD/FreeBSD/macOS.
        for lt in [LINKTYPE_NULL, LINKTYPE_LOOP] {
            for hdr in [[2u8, 0, 0, 0], [0, 0, 0, 2]] {
                expect_tcp4(lt, &[&hdr[..], &pkt].concat(), 0, 0);
            }
            for af in [24u8, 28, 30] {
                for hdr in [[af, 0, 0, 0], [0, 0, 0, af]] {
                    assert_tcp6(&decode1(lt, &[&hdr[..], &pkt6].concat()).0.unwrap());
                }
            }
        }
        for lt in [LINKTYPE_PPP, 50] {
            expect_tcp4(lt, &[&b"\xff\x03\x00\x21"[..], &pkt].concat(), 0, 0);
            expect_tcp4(lt, &[&b"\x00\x21"[..], &pkt].concat(), 0, 0);
            // Protocol field compressed to one byte.
            expect_tcp4(lt, &[&b"\x21"[..], &pkt].concat(), 0, 0);
            assert_tcp6(
                &decode1(lt, &[&b"\xff\x03\x00\x57"[..], &pkt6].concat())
                    .0
                    .unwrap(),
            );
        }
        for lt in LINKTYPES {
            let (_, c) = decode1(lt, b"");
            assert_eq!(c.unsupported_linktype, 0, "{lt}");
        }
    }

    #[test]
    fn vlan_tags_outermost_kept() {
        let pkt = ip4(TCP, &tcp());
        expect_tcp4(1, &tagged(&[(0x8100, 42)], 0x0800, &pkt), 42, 0);
        // QinQ / 802.1ad: the service tag (outermost) is the one kept.
        expect_tcp4(
            1,
            &tagged(&[(0x88A8, 100), (0x8100, 7)], 0x0800, &pkt),
            100,
            0,
        );
        expect_tcp4(1, &tagged(&[(0x9100, 5), (0x8100, 6)], 0x0800, &pkt), 5, 0);
        // Nine tags is past the tag limit.
        let deep: Vec<(u16, u16)> = (0..9).map(|i| (0x8100, i)).collect();
        let (p, c) = decode1(1, &tagged(&deep, 0x0800, &pkt));
        assert!(p.is_none());
        assert_eq!(c.malformed, 1);
    }

    #[test]
    fn mpls_label_stacks() {
        let pkt = ip4(TCP, &tcp());
        let labels = [0x00, 0x01, 0x00, 0x40, 0x00, 0x02, 0x01, 0x40]; // two, bottom set
        expect_tcp4(1, &eth(0x8847, &[&labels[..], &pkt].concat()), 0, 0);
        let pkt6 = ip6(TCP, &tcp());
        assert_tcp6(
            &decode1(1, &eth(0x8848, &[&labels[..], &pkt6].concat()))
                .0
                .unwrap(),
        );
        // Pseudowire control word, then a whole Ethernet frame with its own tag.
        let inner = tagged(&[(0x8100, 9)], 0x0800, &pkt);
        let pw = [&labels[..], &[0, 0, 0, 0], &inner].concat();
        expect_tcp4(1, &eth(0x8847, &pw), 9, 0);
        // A stack that never ends is malformed; an unknown nibble is not IP.
        let endless = [0x00, 0x01, 0x00, 0x40].repeat(9);
        let (_, c) = decode1(1, &eth(0x8847, &[&endless[..], &pkt].concat()));
        assert_eq!(c.malformed, 1);
        let (_, c) = decode1(1, &eth(0x8847, &[&labels[..], b"\x90abc"].concat()));
        assert_eq!(c.non_ip, 1);
        let (_, c) = decode1(1, &eth(0x8847, &labels[..6]));
        assert_eq!(c.truncated, 1);
    }

    #[test]
    fn pppoe_and_snap() {
        let pkt = ip4(TCP, &tcp());
        let pppoe = [&[0x11, 0, 0, 1, 0, 0][..], &[0x00, 0x21], &pkt].concat();
        expect_tcp4(1, &eth(0x8864, &pppoe), 0, 0);
        let snap = [&b"\xaa\xaa\x03\x00\x00\x00\x08\x00"[..], &pkt].concat();
        expect_tcp4(1, &eth(snap.len() as u16, &snap), 0, 0);
        // Plain 802.2 LLC (STP) carries no EtherType.
        let (_, c) = decode1(1, &eth(20, b"\x42\x42\x03\x00\x00\x00\x00\x00stp-bpdu"));
        assert_eq!(c.non_ip, 1);
    }

    #[test]
    fn ipv4_fragments_and_first_fragments() {
        let first = ip4_full(TCP, 0x2000, &[], &tcp());
        let (p, c) = decode1(1, &eth(0x0800, &first));
        assert_tcp4(&p.unwrap());
        assert_eq!((c.first_fragments, c.decoded), (1, 1));
        let later = ip4_full(UDP, 0x2000 | 185, &[], b"rest of the datagram");
        let (p, c) = decode1(1, &eth(0x0800, &later));
        assert!(p.is_none());
        assert_eq!((c.fragments, c.decoded), (1, 0));
    }

    #[test]
    fn ipv4_options_and_ah() {
        let opts = [7, 7, 4, 0, 0, 0, 0, 1]; // record route, then end of list
        expect_tcp4(1, &eth(0x0800, &ip4_full(TCP, 0, &opts, &tcp())), 0, 0);
        // AH: next header, payload length (in 4-octet units minus 2), 16 bytes total here.
        let ah = [&[TCP, 2, 0, 0][..], &[0u8; 12], &tcp()].concat();
        expect_tcp4(1, &eth(0x0800, &ip4(51, &ah)), 0, 0);
    }

    #[test]
    fn ipv6_extension_headers() {
        // HBH -> routing -> fragment (first, M set) -> AH -> destination options -> TCP.
        let mut chain = vec![43, 0, 1, 4, 0, 0, 0, 0]; // HBH, 8 bytes, next routing
        chain.extend_from_slice(&[44, 0, 0, 0, 0, 0, 0, 0]); // routing, next fragment
        chain.extend_from_slice(&[51, 0, 0x00, 0x01, 0, 0, 0, 7]); // fragment offset 0, M
        chain.extend_from_slice(&[60, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // AH, 12 bytes
        chain.extend_from_slice(&[TCP, 0, 1, 4, 0, 0, 0, 0]); // destination options
        chain.extend_from_slice(&tcp());
        let (p, c) = decode1(LINKTYPE_IPV6, &ip6(0, &chain));
        assert_tcp6(&p.unwrap());
        assert_eq!(c.first_fragments, 1);
        // A non-first fragment has no L4 header.
        let frag = [&[UDP, 0, 0x05, 0x00, 0, 0, 0, 7][..], b"more"].concat();
        let (p, c) = decode1(LINKTYPE_IPV6, &ip6(44, &frag));
        assert!(p.is_none());
        assert_eq!(c.fragments, 1);
        // Twelve destination-options headers: past the chain limit.
        let mut endless = Vec::new();
        for _ in 0..11 {
            endless.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]);
        }
        endless.extend_from_slice(&[TCP, 0, 1, 4, 0, 0, 0, 0]);
        endless.extend_from_slice(&tcp());
        let (p, c) = decode1(LINKTYPE_IPV6, &ip6(60, &endless));
        assert!(p.is_none());
        assert_eq!(c.malformed, 1);
    }

    #[test]
    fn non_tcp_udp_counts_as_decoded() {
        let icmp = ip4(1, b"\x08\x00\x00\x00echo");
        let (p, c) = decode1(1, &eth(0x0800, &icmp));
        assert!(p.is_none());
        assert_eq!((c.decoded, c.other_l4), (1, 1));
        // ESP ends an IPv6 chain.
        let (p, c) = decode1(LINKTYPE_IPV6, &ip6(50, b"\0\0\0\x01\0\0\0\x01sealed"));
        assert!(p.is_none());
        assert_eq!((c.decoded, c.other_l4), (1, 1));
    }

    #[test]
    fn snapped_and_offload_lengths() {
        let full = eth(0x0800, &ip4(TCP, &tcp()));
        let (p, c) = decode1(1, &full[..full.len() - 5]);
        assert_eq!(p.unwrap().payload, &LOGIN[..LOGIN.len() - 5]);
        assert_eq!(c.snapped, 1);
        // The snap length cuts into TCP options: the header still counts, payload is empty.
        let mut opts = tcp_seg(1, 2, 3, 0x02, &[]);
        opts[12] = 0x80;
        opts.extend_from_slice(&[1; 12]);
        let frame = eth(0x0800, &ip4(TCP, &opts));
        let (p, c) = decode1(1, &frame[..14 + 20 + 24]);
        let p = p.unwrap();
        assert_eq!((p.flags, p.payload.len()), (0x02, 0));
        assert_eq!(c.snapped, 1);
        // Segmentation offload: zero IPv4 total length and zero IPv6 payload length.
        let mut off4 = ip4(TCP, &tcp());
        off4[2..4].copy_from_slice(&[0, 0]);
        expect_tcp4(LINKTYPE_RAW, &off4, 0, 0);
        let mut off6 = ip6(TCP, &tcp());
        off6[4..6].copy_from_slice(&[0, 0]);
        assert_tcp6(&decode1(LINKTYPE_RAW, &off6).0.unwrap());
    }

    #[test]
    fn ip_and_udp_lengths_bound_the_payload() {
        // Ethernet padding after a short IPv4 packet is not payload.
        let mut frame = eth(0x0800, &ip4(UDP, &udp_dgram(1, 2, b"hi")));
        frame.extend_from_slice(&[0; 20]);
        assert_eq!(decode1(1, &frame).0.unwrap().payload, b"hi");
        // A UDP length shorter than the IP payload shortens it ...
        let mut u = udp_dgram(1, 2, b"hello world");
        u[4..6].copy_from_slice(&13u16.to_be_bytes());
        assert_eq!(
            decode1(LINKTYPE_RAW, &ip4(UDP, &u)).0.unwrap().payload,
            b"hello"
        );
        // ... a longer one (or one below 8) is ignored.
        u[4..6].copy_from_slice(&500u16.to_be_bytes());
        let payload = decode1(LINKTYPE_RAW, &ip4(UDP, &u)).0.unwrap().payload;
        assert_eq!(payload, b"hello world");
        u[4..6].copy_from_slice(&3u16.to_be_bytes());
        let payload = decode1(LINKTYPE_RAW, &ip4(UDP, &u)).0.unwrap().payload;
        assert_eq!(payload, b"hello world");
    }

    fn gre(flags: u16, ptype: u16, extra: &[u8], inner: &[u8]) -> Vec<u8> {
        let mut g = flags.to_be_bytes().to_vec();
        g.extend_from_slice(&ptype.to_be_bytes());
        g.extend_from_slice(extra);
        g.extend_from_slice(inner);
        ip4(47, &g)
    }

    #[test]
    fn gre_with_each_optional_field() {
        let pkt = ip4(TCP, &tcp());
        expect_tcp4(1, &eth(0x0800, &gre(0, 0x0800, &[], &pkt)), 0, 1);
        expect_tcp4(1, &eth(0x0800, &gre(0x8000, 0x0800, &[0; 4], &pkt)), 0, 1);
        expect_tcp4(1, &eth(0x0800, &gre(0x2000, 0x0800, &[0; 4], &pkt)), 0, 1);
        expect_tcp4(1, &eth(0x0800, &gre(0xB000, 0x0800, &[0; 12], &pkt)), 0, 1);
        let pkt6 = ip6(TCP, &tcp());
        let (p, c) = decode1(1, &eth(0x0800, &gre(0, 0x86DD, &[], &pkt6)));
        assert_tcp6(&p.unwrap());
        assert_eq!(c.tunnels, 1);
        // Transparent Ethernet bridging: the inner frame's tag wins over the outer one.
        let inner = tagged(&[(0x8100, 33)], 0x0800, &pkt);
        let outer = tagged(&[(0x8100, 1)], 0x0800, &gre(0, 0x6558, &[], &inner));
        expect_tcp4(1, &outer, 33, 1);
        // ... and the transport tag stays when the inner frame is untagged.
        let inner = eth(0x0800, &pkt);
        let outer = tagged(&[(0x8100, 1)], 0x0800, &gre(0, 0x6558, &[], &inner));
        expect_tcp4(1, &outer, 1, 1);
        // Unknown protocol, version 1 (PPTP), routing bit, or too short: plain GRE packet.
        for frame in [
            gre(0, 0x880B, &[], &pkt),
            gre(0x0001, 0x0800, &[], &pkt),
            gre(0x4000, 0x0800, &[], &pkt),
            gre(0xB000, 0x0800, &[0; 4], &[]),
        ] {
            let (p, c) = decode1(LINKTYPE_RAW, &frame);
            assert!(p.is_none());
            assert_eq!((c.decoded, c.other_l4, c.tunnels), (1, 1, 0));
        }
    }

    #[test]
    fn erspan_types() {
        let pkt = ip4(TCP, &tcp());
        let mirrored = eth(0x0800, &pkt);
        // Type I: no ERSPAN header, no GRE sequence number.
        expect_tcp4(1, &eth(0x0800, &gre(0, 0x88BE, &[], &mirrored)), 0, 1);
        // Type II: sequence number, then version/VLAN/session header.
        let ii = [0x10, 0x2A, 0x00, 0x01, 0, 0, 0, 0];
        let frame = eth(
            0x0800,
            &gre(
                0x1000,
                0x88BE,
                &[0, 0, 0, 1],
                &[&ii[..], &mirrored].concat(),
            ),
        );
        expect_tcp4(1, &frame, 42, 1);
        let tagged_inner = tagged(&[(0x8100, 77)], 0x0800, &pkt);
        let frame = eth(
            0x0800,
            &gre(
                0x1000,
                0x88BE,
                &[0, 0, 0, 1],
                &[&ii[..], &tagged_inner].concat(),
            ),
        );
        expect_tcp4(1, &frame, 77, 1);
        // Type III: 12-byte header, optional 8-byte platform subheader (O bit).
        let iii = [0x20, 0x2B, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        let frame = eth(
            0x0800,
            &gre(
                0x1000,
                0x22EB,
                &[0, 0, 0, 1],
                &[&iii[..], &mirrored].concat(),
            ),
        );
        expect_tcp4(1, &frame, 43, 1);
        let mut iii_o = iii;
        iii_o[11] = 1;
        let body = [&iii_o[..], &[0; 8], &mirrored].concat();
        expect_tcp4(
            1,
            &eth(0x0800, &gre(0x1000, 0x22EB, &[0, 0, 0, 1], &body)),
            43,
            1,
        );
        // Frame type 2: the mirrored packet without its L2 header.
        let mut iii_ip = iii;
        iii_ip[10] = 2 << 2;
        let body = [&iii_ip[..], &pkt].concat();
        expect_tcp4(
            1,
            &eth(0x0800, &gre(0x1000, 0x22EB, &[0, 0, 0, 1], &body)),
            43,
            1,
        );
    }

    fn vxlan(inner: &[u8]) -> Vec<u8> {
        let hdr = [0x08, 0, 0, 0, 0, 0, 0x2A, 0];
        udp_dgram(50000, 4789, &[&hdr[..], inner].concat())
    }

    #[test]
    fn vxlan_and_geneve() {
        let pkt = ip4(TCP, &tcp());
        let inner = tagged(&[(0x8100, 12)], 0x0800, &pkt);
        expect_tcp4(1, &eth(0x0800, &ip4(UDP, &vxlan(&inner))), 12, 1);
        // Without the I flag or too short for an inner frame: plain UDP.
        let mut no_i = vxlan(&inner);
        no_i[8] = 0;
        let (p, c) = decode1(LINKTYPE_RAW, &ip4(UDP, &no_i));
        assert_eq!((p.unwrap().dport, c.tunnels), (4789, 0));
        let (p, _) = decode1(LINKTYPE_RAW, &ip4(UDP, &vxlan(&inner[..13])));
        assert_eq!(p.unwrap().dport, 4789);
        // GENEVE with 8 bytes of options around IPv4, IPv6 and Ethernet.
        for (ptype, body) in [(0x0800u16, pkt.clone()), (0x6558, eth(0x0800, &pkt))] {
            let mut g = vec![0x02, 0];
            g.extend_from_slice(&ptype.to_be_bytes());
            g.extend_from_slice(&[0, 0, 1, 0]);
            g.extend_from_slice(&[0; 8]);
            g.extend_from_slice(&body);
            expect_tcp4(1, &eth(0x86DD, &ip6(UDP, &udp_dgram(1, 6081, &g))), 0, 1);
        }
        let g = [&[0u8, 0, 0x88, 0x0B, 0, 0, 1, 0][..], b"ppp"].concat();
        let (p, c) = decode1(LINKTYPE_RAW, &ip4(UDP, &udp_dgram(1, 6081, &g)));
        assert_eq!((p.unwrap().dport, c.tunnels), (6081, 0));
    }

    #[test]
    fn ip_in_ip() {
        let pkt = ip4(TCP, &tcp());
        expect_tcp4(LINKTYPE_RAW, &ip4(4, &pkt), 0, 1);
        let (p, c) = decode1(LINKTYPE_RAW, &ip4(41, &ip6(TCP, &tcp())));
        assert_tcp6(&p.unwrap());
        assert_eq!(c.tunnels, 1);
    }

    #[test]
    fn nesting_is_capped() {
        let mut inner = ip4(TCP, &tcp());
        for i in 0..MAX_DEPTH + 2 {
            let mut u = vxlan(&eth(0x0800, &inner));
            u[0..2].copy_from_slice(&(100 + i as u16).to_be_bytes());
            inner = ip4(UDP, &u);
        }
        let (p, c) = decode1(1, &eth(0x0800, &inner));
        let p = p.unwrap();
        assert_eq!((p.proto, p.dport, p.sport), (UDP, 4789, 101));
        assert_eq!(c.tunnels, u64::from(MAX_DEPTH));
    }

    #[test]
    fn frames_without_usable_ip() {
        let pkt = ip4(TCP, &tcp());
        let cases: Vec<(u32, Vec<u8>, &str)> = vec![
            (1, eth(0x0806, &[0; 28]), "non_ip"),
            (1, eth(0x88CC, &[0; 40]), "non_ip"),
            (1, vec![0; 13], "truncated"),
            (1, eth(0x0800, b"\x45\0"), "truncated"),
            (1, eth(0x0800, &pkt[..30]), "truncated"),
            (
                1,
                eth(0x0800, &[&[0x65][..], &pkt[1..]].concat()),
                "malformed",
            ),
            (
                1,
                eth(0x0800, &[&[0x44][..], &pkt[1..]].concat()),
                "malformed",
            ),
            (1, eth(0x86DD, &[&pkt[..], &[0; 20]].concat()), "malformed"),
            (
                1,
                tagged(&[(0x8100, 1), (0x8100, 2)], 0x0800, &[])[..16].to_vec(),
                "truncated",
            ),
            (1, eth(0x8864, &[0x11, 0, 0, 1, 0, 2, 0xc0, 0x21]), "non_ip"),
            (113, vec![0; 15], "truncated"),
            (276, vec![0; 19], "truncated"),
            (101, vec![], "truncated"),
            (101, [&[0x50][..], &[0; 30]].concat(), "non_ip"),
            (0, vec![2, 0], "truncated"),
            (0, [&7u32.to_le_bytes()[..], b"osi"].concat(), "non_ip"),
            (0, [&[2, 0, 0, 2][..], &pkt].concat(), "non_ip"),
            (9, b"\xff\x03\xc0\x21lcp".to_vec(), "non_ip"),
            (9, b"\xff\x03".to_vec(), "truncated"),
            (9, b"\xff\x03\x00".to_vec(), "truncated"),
            (127, vec![0; 64], "unsupported_linktype"),
            (147, pkt.clone(), "unsupported_linktype"),
        ];
        for (lt, frame, counter) in cases {
            let (p, c) = decode1(lt, &frame);
            assert!(p.is_none(), "{lt} {frame:02x?}");
            let got: Vec<&str> = c.items()[1..]
                .iter()
                .filter(|(k, v)| *v > 0 && *k != "snapped")
                .map(|(k, _)| *k)
                .collect();
            assert_eq!(got, [counter], "{lt} {frame:02x?}");
        }
    }

    #[test]
    fn ipv4_total_length_below_header_is_malformed() {
        let mut pkt = ip4(TCP, &tcp());
        pkt[2..4].copy_from_slice(&12u16.to_be_bytes());
        assert_eq!(decode1(LINKTYPE_RAW, &pkt).1.malformed, 1);
    }

    #[test]
    fn tcp_data_offset_below_five_is_malformed() {
        let mut pkt = ip4(TCP, &tcp());
        pkt[20 + 12] = 0x40;
        let (p, c) = decode1(LINKTYPE_RAW, &pkt);
        assert!(p.is_none());
        assert_eq!((c.malformed, c.decoded), (1, 0));
        // A data offset beyond the segment leaves an empty payload, not an error.
        pkt[20 + 12] = 0xF0;
        let (p, _) = decode1(LINKTYPE_RAW, &pkt);
        assert_eq!(p.unwrap().payload, b"");
    }

    /// Every decodable frame the tests above build, for the counters and the fuzzers.
    fn corpus() -> Vec<(u32, Vec<u8>)> {
        let pkt = ip4(TCP, &tcp());
        let ii = [0x10, 0x2A, 0x00, 0x01, 0, 0, 0, 0];
        vec![
            (1, eth(0x0800, &pkt)),
            (1, tagged(&[(0x88A8, 100), (0x8100, 7)], 0x0800, &pkt)),
            (1, eth(0x86DD, &ip6(UDP, &udp_dgram(5353, 53, b"q")))),
            (1, eth(0x8847, &[&[0, 1, 1, 0x40][..], &pkt].concat())),
            (
                1,
                eth(
                    0x0800,
                    &gre(
                        0x1000,
                        0x88BE,
                        &[0, 0, 0, 1],
                        &[&ii[..], &eth(0x0800, &pkt)].concat(),
                    ),
                ),
            ),
            (1, eth(0x0800, &ip4(UDP, &vxlan(&eth(0x0800, &pkt))))),
            (LINKTYPE_NULL, [&[2, 0, 0, 0][..], &pkt].concat()),
            (LINKTYPE_PPP, [&b"\xff\x03\x00\x21"[..], &pkt].concat()),
            (
                LINKTYPE_IPV6,
                ip6(0, &[&[TCP, 0, 1, 4, 0, 0, 0, 0][..], &tcp()].concat()),
            ),
            (
                LINKTYPE_LINUX_SLL2,
                [
                    &[
                        0x08, 0, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0,
                    ][..],
                    &pkt,
                ]
                .concat(),
            ),
        ]
    }

    #[test]
    fn counters_add_up() {
        let mut d = PacketDecoder::new();
        let mut frames = corpus();
        frames.push((1, vec![0; 5]));
        frames.push((1, eth(0x0806, &[0; 28])));
        frames.push((300, b"x".to_vec()));
        frames.push((101, ip4_full(UDP, 100, &[], b"later fragment")));
        frames.push((101, ip4(1, b"icmp")));
        for (lt, f) in &frames {
            d.decode(*lt, f);
        }
        let c = &d.counters;
        assert_eq!(c.packets, frames.len() as u64);
        assert_eq!(
            c.packets,
            c.decoded + c.non_ip + c.truncated + c.malformed + c.fragments + c.unsupported_linktype
        );
        assert_eq!((c.decoded, c.other_l4, c.tunnels), (11, 1, 2));
    }

    fn check_counters(d: &PacketDecoder, n: u64) {
        let c = &d.counters;
        assert_eq!(c.packets, n);
        assert_eq!(
            c.packets,
            c.decoded + c.non_ip + c.truncated + c.malformed + c.fragments + c.unsupported_linktype
        );
        assert!(c.tunnels <= u64::from(MAX_DEPTH) * n);
    }

    fn check_payload(frame: &[u8], p: &Decoded<'_>) {
        // The payload is a slice of the frame: borrowed, never copied or invented.
        let base = frame.as_ptr() as usize;
        let at = p.payload.as_ptr() as usize;
        assert!(at >= base && at + p.payload.len() <= base + frame.len());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(
            lt in prop::sample::select(vec![0u32, 1, 9, 12, 14, 50, 101, 108, 113, 228, 229, 276, 2, 147]),
            frame in prop::collection::vec(any::<u8>(), 0..300),
        ) {
            let mut d = PacketDecoder::new();
            if let Some(p) = d.decode(lt, &frame) {
                check_payload(&frame, &p);
            }
            check_counters(&d, 1);
        }

        #[test]
        fn mutated_frames_never_panic(
            which in any::<prop::sample::Index>(),
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            cut in any::<prop::sample::Index>(),
        ) {
            let frames = corpus();
            let (lt, mut frame) = frames[which.index(frames.len())].clone();
            for (at, v) in flips {
                let i = at.index(frame.len());
                frame[i] = v;
            }
            frame.truncate(cut.index(frame.len() + 1));
            let mut d = PacketDecoder::new();
            if let Some(p) = d.decode(lt, &frame) {
                check_payload(&frame, &p);
            }
            check_counters(&d, 1);
        }

        /// Nested tunnels, tags and extension headers are all bounded: a large hostile
        /// frame costs no more than a fixed number of header reads.
        #[test]
        fn large_frames_stay_cheap(fill in any::<u8>(), n in 1000usize..65536) {
            let mut d = PacketDecoder::new();
            for lt in LINKTYPES {
                let frame = vec![fill; n];
                d.decode(lt, &frame);
            }
            check_counters(&d, LINKTYPES.len() as u64);
        }
    }
}
