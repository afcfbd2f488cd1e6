//! The pool address DB: the MaxMind DB that `netdetect signatures compile` writes (in
//! Python, with mmdb_writer), handed over as bytes and looked up for Python's intel.
//!
//! Address text is read the way the sensor always read it (Python's `ipaddress` for
//! IPv4-mapped IPv6, then the C resolver's numeric `getaddrinfo`), so that a list match
//! does not depend on how a peer spelled an address:
//! - IPv4 in every form `inet_aton(3)` reads ("1.2.3.4", "0x7f.1", "010.0.0.1",
//!   "3232235777"), as a proxy or resolver reads a target: a CONNECT to an obfuscated pool
//!   address still matches;
//! - IPv6 in RFC 4291 text with an optional numeric scope ("fe80::1%2"); an interface name
//!   as scope is not looked up (no I/O here), so such text is not an address;
//! - IPv4-mapped IPv6 (`::ffff:a.b.c.d`, with any scope, as dual-stack sockets report IPv4
//!   peers) folded to the IPv4 address, which is where the tree holds it.
//!
//! Anything else is not an address: no match, never an error.
//!
//! Records are decoded leniently: only the fields netdetect reads, a field of another type
//! than it writes is absent, a record that is not a map is no record. The whole file is
//! verified when opened (tree, separator, every record it points to), so a damaged file is
//! refused at start with the reason, not found out by a lookup in the middle of a run.

use maxminddb::{MaxMindDbError, Reader};
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A file that is not a MaxMind DB, or a damaged one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MmdbError(pub String);

impl fmt::Display for MmdbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MmdbError {}

impl From<MaxMindDbError> for MmdbError {
    fn from(e: MaxMindDbError) -> Self {
        MmdbError(e.to_string())
    }
}

/// The fields of a record that netdetect reads; None where absent or of another type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolRecord {
    pub category: Option<String>,
    pub source: Option<String>,
    pub note: Option<String>,
    /// The network the list named, as compiled ("192.0.2.0/24"): the tree splits a network
    /// around any more specific one inside it, so the tree's own depth can be deeper.
    pub network: Option<String>,
    /// The list's ports; the integers of a list (anything else in it skipped).
    pub ports: Option<Vec<i64>>,
}

/// A record found for an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub record: PoolRecord,
    /// The tree's network holding the address ("192.0.2.0/25"), IPv4 for an IPv4 lookup.
    pub tree_network: String,
    pub prefix_len: u8,
}

pub struct IpSetReader {
    reader: Reader<Vec<u8>>,
}

impl fmt::Debug for IpSetReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IpSetReader")
            .field("database_type", &self.database_type())
            .finish_non_exhaustive()
    }
}

impl IpSetReader {
    /// Parse and verify a whole MaxMind DB.
    pub fn from_bytes(buf: Vec<u8>) -> Result<Self, MmdbError> {
        let reader = Reader::from_source(buf)?;
        reader.verify()?;
        Ok(IpSetReader { reader })
    }

    pub fn database_type(&self) -> &str {
        &self.reader.metadata().database_type
    }

    /// The metadata's description map (language -> text; netdetect keeps its sources
    /// digest there, see netdetect/intel/mmdb.py).
    pub fn description(&self) -> &BTreeMap<String, String> {
        &self.reader.metadata().description
    }

    pub fn ip_version(&self) -> u16 {
        self.reader.metadata().ip_version
    }

    /// The record holding the address written as `text`; None when `text` is not an
    /// address or the DB has no record (or no map) for it. An error only for a record the
    /// decoder refuses (beyond its size limits): the file passed verification.
    pub fn lookup(&self, text: &str) -> Result<Option<Found>, MmdbError> {
        match parse_address(text) {
            Some(addr) => self.lookup_addr(addr),
            None => Ok(None),
        }
    }

    pub fn lookup_addr(&self, addr: IpAddr) -> Result<Option<Found>, MmdbError> {
        if addr.is_ipv6() && self.ip_version() == 4 {
            return Ok(None);
        }
        let result = self.reader.lookup(addr)?;
        let Some(Record::Map(record)) = result.decode::<Record>()? else {
            return Ok(None);
        };
        let net = result.network()?;
        Ok(Some(Found {
            record,
            tree_network: net.to_string(),
            prefix_len: net.prefix(),
        }))
    }
}

/// Address text as the lookup reads it (see the module doc), or None.
pub fn parse_address(text: &str) -> Option<IpAddr> {
    if !text.contains(':') {
        return inet_aton(text).map(IpAddr::V4);
    }
    let (addr, scope) = match text.split_once('%') {
        Some((addr, scope)) => (addr, Some(scope)),
        None => (text, None),
    };
    let v6: Ipv6Addr = addr.parse().ok()?;
    match scope {
        Some(s) if s.is_empty() || s.contains('%') => None,
        _ => match v6.to_ipv4_mapped() {
            Some(v4) => Some(IpAddr::V4(v4)),
            None if scope.is_some_and(|s| !numeric_scope(s)) => None,
            None => Some(IpAddr::V6(v6)),
        },
    }
}

/// A scope the resolver takes as a number: decimal digits up to 2^32 - 1.
fn numeric_scope(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit()) && s.parse::<u32>().is_ok()
}

/// IPv4 text as glibc's `inet_aton` reads it for a numeric `getaddrinfo`: one to four parts
/// separated by dots, each decimal, octal (a leading 0) or hexadecimal (0x), the last one
/// filling the bytes the others left; nothing before or after. (No crate reads these
/// forms, and std reads only the dotted quad.)
pub fn inet_aton(text: &str) -> Option<Ipv4Addr> {
    let b = text.as_bytes();
    let mut parts = [0u32; 3];
    let mut n = 0;
    let mut i = 0;
    let last = loop {
        let (val, next) = strtoul(b, i)?;
        i = next;
        if b.get(i) != Some(&b'.') {
            break val;
        }
        if n == parts.len() || val > 0xff {
            return None;
        }
        parts[n] = val;
        n += 1;
        i += 1;
    };
    if i != b.len() || u64::from(last) > (0xffff_ffffu64 >> (8 * n)) {
        return None;
    }
    let high = parts[..n]
        .iter()
        .enumerate()
        .fold(0u32, |acc, (k, &p)| acc | (p << (24 - 8 * k)));
    Some(Ipv4Addr::from(high | last))
}

/// One `inet_aton` part at `b[i..]`: it must start with a digit; base from the prefix as
/// `strtoul(s, _, 0)` takes it. (value, index after it), or None past 2^32 - 1.
fn strtoul(b: &[u8], mut i: usize) -> Option<(u32, usize)> {
    if !b.get(i)?.is_ascii_digit() {
        return None;
    }
    let mut base = 10;
    if b[i] == b'0' {
        match (b.get(i + 1), b.get(i + 2)) {
            // "0x" without a hex digit after it is the number 0 followed by "x".
            (Some(b'x' | b'X'), Some(h)) if h.is_ascii_hexdigit() => {
                base = 16;
                i += 2;
            }
            _ => base = 8,
        }
    }
    let mut val: u64 = 0;
    while let Some(d) = b.get(i).and_then(|&c| (c as char).to_digit(base)) {
        val = val * u64::from(base) + u64::from(d);
        if val > u64::from(u32::MAX) {
            return None;
        }
        i += 1;
    }
    Some((val as u32, i))
}

/// A record as far as netdetect reads it.
enum Record {
    Map(PoolRecord),
    Other,
}

impl<'de> Deserialize<'de> for Record {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RecordVisitor)
    }
}

struct RecordVisitor;

impl<'de> Visitor<'de> for RecordVisitor {
    type Value = Record;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a pool address record")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Record, A::Error> {
        let mut rec = PoolRecord::default();
        while let Some(key) = map.next_key::<Field>()? {
            let slot = match key {
                Field::Text(k) => match k.as_str() {
                    "category" => &mut rec.category,
                    "source" => &mut rec.source,
                    "note" => &mut rec.note,
                    "network" => &mut rec.network,
                    "ports" => {
                        rec.ports = match map.next_value::<Field>()? {
                            Field::Ints(v) => Some(v),
                            _ => None,
                        };
                        continue;
                    }
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                        continue;
                    }
                },
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            *slot = match map.next_value::<Field>()? {
                Field::Text(s) => Some(s),
                _ => None,
            };
        }
        Ok(Record::Map(rec))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Record, A::Error> {
        IgnoredAny.visit_seq(seq).map(|_| Record::Other)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Record, E> {
        Ok(Record::Other)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Record, E> {
        Ok(Record::Other)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Record, E> {
        Ok(Record::Other)
    }
    fn visit_i128<E: de::Error>(self, _: i128) -> Result<Record, E> {
        Ok(Record::Other)
    }
    fn visit_u128<E: de::Error>(self, _: u128) -> Result<Record, E> {
        Ok(Record::Other)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Record, E> {
        Ok(Record::Other)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Record, E> {
        Ok(Record::Other)
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Record, E> {
        Ok(Record::Other)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Record, E> {
        Ok(Record::Other)
    }
    fn visit_none<E: de::Error>(self) -> Result<Record, E> {
        Ok(Record::Other)
    }
}

/// Any value, kept only in the shapes a record's fields take: text, an integer, a list's
/// integers. Lists are read one level deep; what they nest is skipped.
enum Field {
    Text(String),
    Int(i64),
    Ints(Vec<i64>),
    Other,
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(FieldVisitor { in_list: false })
    }
}

/// A list element: an integer (a boolean counts, as in Python), or anything else, skipped.
struct Element(Option<i64>);

impl<'de> Deserialize<'de> for Element {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Element(
            match d.deserialize_any(FieldVisitor { in_list: true })? {
                Field::Int(v) => Some(v),
                _ => None,
            },
        ))
    }
}

struct FieldVisitor {
    in_list: bool,
}

impl<'de> Visitor<'de> for FieldVisitor {
    type Value = Field;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any MaxMind DB value")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Field, E> {
        Ok(Field::Text(v.to_owned()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Field, E> {
        Ok(Field::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Field, E> {
        Ok(i64::try_from(v).map_or(Field::Other, Field::Int))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Field, E> {
        Ok(i64::try_from(v).map_or(Field::Other, Field::Int))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Field, E> {
        Ok(i64::try_from(v).map_or(Field::Other, Field::Int))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Field, A::Error> {
        if self.in_list {
            return IgnoredAny.visit_seq(seq).map(|_| Field::Other);
        }
        let mut ints = Vec::new();
        while let Some(Element(item)) = seq.next_element::<Element>()? {
            ints.extend(item);
        }
        Ok(Field::Ints(ints))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Field, A::Error> {
        IgnoredAny.visit_map(map).map(|_| Field::Other)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Field, E> {
        Ok(if self.in_list {
            Field::Int(i64::from(v))
        } else {
            Field::Other
        })
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Field, E> {
        Ok(Field::Other)
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Field, E> {
        Ok(Field::Other)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Field, E> {
        Ok(Field::Other)
    }
    fn visit_none<E: de::Error>(self) -> Result<Field, E> {
        Ok(Field::Other)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A data-section value, as these tests write MaxMind DBs (the format's spec, "MaxMind
    /// DB File Format Specification" 2.0): enough of a writer to build the shapes a lookup
    /// must handle, including the ones netdetect never writes.
    #[derive(Clone, Debug)]
    enum V {
        Str(&'static str),
        U16(u16),
        U32(u32),
        U64(u64),
        U128(u128),
        I32(i32),
        Bool(bool),
        F64(f64),
        Bytes(Vec<u8>),
        Map(Vec<(&'static str, V)>),
        Array(Vec<V>),
    }

    fn control(out: &mut Vec<u8>, ty: u8, size: usize) {
        let (low, extra) = match size {
            0..=28 => (size as u8, vec![]),
            29..=284 => (29, vec![(size - 29) as u8]),
            285..=65_820 => (30, ((size - 285) as u16).to_be_bytes().to_vec()),
            _ => (31, ((size - 65_821) as u32).to_be_bytes()[1..].to_vec()),
        };
        if ty <= 7 {
            out.push((ty << 5) | low);
        } else {
            out.push(low);
            out.push(ty - 7);
        }
        out.extend(extra);
    }

    fn uint(out: &mut Vec<u8>, ty: u8, v: u128) {
        let bytes = v.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        control(out, ty, 16 - skip);
        out.extend(&bytes[skip..]);
    }

    fn encode(out: &mut Vec<u8>, v: &V) {
        match v {
            V::Str(s) => {
                control(out, 2, s.len());
                out.extend(s.as_bytes());
            }
            V::F64(f) => {
                control(out, 3, 8);
                out.extend(f.to_be_bytes());
            }
            V::Bytes(b) => {
                control(out, 4, b.len());
                out.extend(b);
            }
            V::U16(n) => uint(out, 5, u128::from(*n)),
            V::U32(n) => uint(out, 6, u128::from(*n)),
            V::Map(kv) => {
                control(out, 7, kv.len());
                for (k, v) in kv {
                    encode(out, &V::Str(k));
                    encode(out, v);
                }
            }
            V::I32(n) => {
                control(out, 8, 4);
                out.extend(n.to_be_bytes());
            }
            V::U64(n) => uint(out, 9, u128::from(*n)),
            V::U128(n) => uint(out, 10, *n),
            V::Array(items) => {
                control(out, 11, items.len());
                for v in items {
                    encode(out, v);
                }
            }
            V::Bool(b) => control(out, 14, usize::from(*b)),
        }
    }

    #[derive(Clone, Copy)]
    enum Child {
        Node(usize),
        Empty,
        Data(usize),
    }

    /// An IPv6 DB (IPv4 at ::/96, as netdetect compiles) with 24-bit records; networks are
    /// (text, record), inserted shallow first so that a deeper one splits a shallower one.
    fn build_db(database_type: &'static str, entries: &[(&str, V)]) -> Vec<u8> {
        let mut data = Vec::new();
        let mut offsets = Vec::new();
        for (_, v) in entries {
            offsets.push(data.len());
            encode(&mut data, v);
        }
        let mut nets: Vec<(u128, u8, usize)> = entries
            .iter()
            .enumerate()
            .map(|(i, (net, _))| {
                let (addr, len) = net.split_once('/').unwrap();
                let len: u8 = len.parse().unwrap();
                match addr.parse::<IpAddr>().unwrap() {
                    IpAddr::V4(a) => (u128::from(u32::from(a)), 96 + len, i),
                    IpAddr::V6(a) => (u128::from(a), len, i),
                }
            })
            .collect();
        nets.sort_by_key(|&(_, depth, _)| depth);
        let mut nodes: Vec<[Child; 2]> = vec![[Child::Empty; 2]];
        for (bits, depth, data_index) in nets {
            let mut node = 0;
            for d in 0..depth {
                let bit = ((bits >> (127 - d)) & 1) as usize;
                if d + 1 == depth {
                    nodes[node][bit] = Child::Data(data_index);
                    break;
                }
                node = match nodes[node][bit] {
                    Child::Node(n) => n,
                    other => {
                        // A shallower network's leaf (or nothing) splits in two.
                        let inherit = match other {
                            Child::Data(d) => Child::Data(d),
                            _ => Child::Empty,
                        };
                        nodes.push([inherit; 2]);
                        nodes[node][bit] = Child::Node(nodes.len() - 1);
                        nodes.len() - 1
                    }
                };
            }
        }
        let count = nodes.len();
        let mut out = Vec::new();
        for pair in &nodes {
            for child in pair {
                let v = match *child {
                    Child::Node(n) => n,
                    Child::Empty => count,
                    Child::Data(i) => count + 16 + offsets[i],
                };
                out.extend(&(v as u32).to_be_bytes()[1..]);
            }
        }
        out.extend([0u8; 16]);
        out.extend(&data);
        out.extend(b"\xab\xcd\xefMaxMind.com");
        let meta = V::Map(vec![
            ("binary_format_major_version", V::U16(2)),
            ("binary_format_minor_version", V::U16(0)),
            ("build_epoch", V::U64(1_700_000_000)),
            ("database_type", V::Str(database_type)),
            (
                "description",
                V::Map(vec![
                    ("en", V::Str("test pool address sets")),
                    ("netdetect-sources-sha256", V::Str("abc")),
                ]),
            ),
            ("ip_version", V::U16(6)),
            ("languages", V::Array(vec![V::Str("en")])),
            ("node_count", V::U32(count as u32)),
            ("record_size", V::U16(24)),
        ]);
        encode(&mut out, &meta);
        out
    }

    fn pool(network: &'static str, ports: &[u16]) -> V {
        V::Map(vec![
            ("category", V::Str("pool")),
            ("network", V::Str(network)),
            ("note", V::Str("a note")),
            (
                "ports",
                V::Array(ports.iter().map(|&p| V::U16(p)).collect()),
            ),
            ("source", V::Str("pool_ips.txt")),
        ])
    }

    /// The DB the tests read (src/fuzz.rs mutates it).
    pub(crate) fn sample() -> Vec<u8> {
        build_db(
            "netdetect-pool-ips",
            &[
                ("192.0.2.0/24", pool("192.0.2.0/24", &[3333, 4444])),
                ("192.0.2.128/25", pool("192.0.2.128/25", &[])),
                ("2001:db8::/32", pool("2001:db8::/32", &[14444])),
                ("203.0.113.0/24", V::Str("a record that is not a map")),
                (
                    "198.51.100.0/24",
                    V::Map(vec![
                        ("category", V::U32(5)),
                        ("source", V::Array(vec![V::Str("x")])),
                        ("note", V::Map(vec![("en", V::Str("nested"))])),
                        ("extra", V::Bytes(vec![0, 1, 2])),
                        (
                            "ports",
                            V::Array(vec![
                                V::Str("3333"),
                                V::U16(3333),
                                V::Bool(true),
                                V::Array(vec![V::U16(1)]),
                                V::U64(70_000),
                                V::U128(u128::MAX),
                                V::I32(-1),
                                V::F64(1.5),
                            ]),
                        ),
                    ]),
                ),
                ("100.64.0.0/10", V::Map(vec![("category", V::Str("proxy"))])),
            ],
        )
    }

    fn reader() -> IpSetReader {
        IpSetReader::from_bytes(sample()).expect("the sample DB reads")
    }

    #[test]
    fn metadata_is_read() {
        let db = reader();
        assert_eq!(db.database_type(), "netdetect-pool-ips");
        assert_eq!(
            db.description()
                .get("netdetect-sources-sha256")
                .map(String::as_str),
            Some("abc")
        );
        assert_eq!(db.ip_version(), 6);
    }

    #[test]
    fn the_most_specific_network_decides() {
        let db = reader();
        let outer = db.lookup("192.0.2.7").unwrap().unwrap();
        assert_eq!(outer.record.network.as_deref(), Some("192.0.2.0/24"));
        assert_eq!(outer.record.ports, Some(vec![3333, 4444]));
        assert_eq!(outer.record.category.as_deref(), Some("pool"));
        assert_eq!(outer.record.source.as_deref(), Some("pool_ips.txt"));
        assert_eq!(outer.record.note.as_deref(), Some("a note"));
        // The /25 inside it split the /24's leaf: the tree's depth is not the list's.
        assert_eq!(outer.tree_network, "192.0.2.0/25");
        assert_eq!(outer.prefix_len, 25);
        let inner = db.lookup("192.0.2.200").unwrap().unwrap();
        assert_eq!(inner.record.network.as_deref(), Some("192.0.2.128/25"));
        assert_eq!(inner.record.ports, Some(vec![]));
        let v6 = db.lookup("2001:db8:1::9").unwrap().unwrap();
        assert_eq!(v6.record.network.as_deref(), Some("2001:db8::/32"));
        assert_eq!(
            (v6.tree_network.as_str(), v6.prefix_len),
            ("2001:db8::/32", 32)
        );
        for miss in [
            "192.0.3.1",
            "2001:db9::1",
            "::1",
            "0.0.0.0",
            "255.255.255.255",
        ] {
            assert_eq!(db.lookup(miss).unwrap(), None, "{miss}");
        }
    }

    #[test]
    fn every_spelling_of_an_address_finds_it() {
        let db = reader();
        let want = db.lookup("192.0.2.7").unwrap();
        assert!(want.is_some());
        for text in [
            "::ffff:192.0.2.7",
            "::FFFF:c000:0207",
            "0:0:0:0:0:ffff:192.0.2.7",
            "::ffff:192.0.2.7%eth0", // any scope on a mapped address, as Python took it
            "0xc0.0.2.7",
            "0300.0.2.7",
            "192.0.519",
            "192.519",
            "3221225991",
            "0xC0000207",
        ] {
            assert_eq!(db.lookup(text).unwrap(), want, "{text}");
        }
        let v6 = db.lookup("2001:db8::1").unwrap();
        assert!(v6.is_some());
        assert_eq!(db.lookup("2001:db8::1%3").unwrap(), v6);
        assert_eq!(db.lookup("2001:0db8:0000::0001").unwrap(), v6);
    }

    #[test]
    fn text_that_is_not_an_address_finds_nothing() {
        let db = reader();
        for text in [
            "",
            "not an ip",
            " 192.0.2.7",
            "192.0.2.7 ",
            "192.0.2.7\n",
            "192.0.2.7\0",
            "192.0.2.7.",
            "192..0.2",
            "192.0.2.7%1",
            "192.0.2.256",
            "0x.0.2.7",
            "08.0.2.7",
            "+192.0.2.7",
            "4294967296",
            "0x100000000",
            "99999999999999999999999",
            "2001:db8::1%",
            "2001:db8::1%eth0", // an interface name is not looked up
            "2001:db8::1%4294967296",
            "2001:db8::1%1%2",
            "::ffff:192.0.2.7%",
            "::ffff:192.0.2.07",
            "2001:db8::1::2",
            "1::2:3:4:5:6:7:8",
            "2001:db8:::1",
            "١٩٢.0.2.7",
            "[2001:db8::1]",
        ] {
            assert_eq!(db.lookup(text).unwrap(), None, "{text:?}");
        }
    }

    #[test]
    fn fields_of_other_types_are_absent() {
        let db = reader();
        let odd = db.lookup("198.51.100.1").unwrap().unwrap();
        assert_eq!(odd.record.category, None);
        assert_eq!(odd.record.source, None);
        assert_eq!(odd.record.note, None);
        // Integers of the list (a boolean counts, as in Python; what cannot be a Python
        // int of 64 bits, a nested list or text is skipped).
        assert_eq!(odd.record.ports, Some(vec![3333, 1, 70_000, -1]));
        // No network field: the tree's.
        assert_eq!(odd.record.network, None);
        assert_eq!(odd.tree_network, "198.51.100.0/24");
        let sparse = db.lookup("100.100.1.1").unwrap().unwrap();
        assert_eq!(sparse.record.category.as_deref(), Some("proxy"));
        assert_eq!(sparse.record.ports, None);
        assert_eq!(sparse.tree_network, "100.64.0.0/10");
        assert_eq!(
            db.lookup("203.0.113.9").unwrap(),
            None,
            "a record that is no map"
        );
    }

    #[test]
    fn inet_aton_reads_what_glibc_reads() {
        for (text, want) in [
            ("1.2.3.4", Some([1, 2, 3, 4])),
            ("1", Some([0, 0, 0, 1])),
            ("1.2", Some([1, 0, 0, 2])),
            ("1.2.3", Some([1, 2, 0, 3])),
            ("1.16777215", Some([1, 255, 255, 255])),
            ("1.16777216", None),
            ("1.2.65535", Some([1, 2, 255, 255])),
            ("1.2.65536", None),
            ("4294967295", Some([255, 255, 255, 255])),
            ("4294967296", None),
            ("0x7f.1", Some([127, 0, 0, 1])),
            ("0X7F.0.0.1", Some([127, 0, 0, 1])),
            ("010.1.1.1", Some([8, 1, 1, 1])),
            ("00000000000000000000001.2.3.4", Some([1, 2, 3, 4])),
            ("0", Some([0, 0, 0, 0])),
            ("0x0", Some([0, 0, 0, 0])),
            ("0x", None),
            ("0x.1", None),
            ("08", None),
            ("09.1.1.1", None),
            ("1.2.3.4.5", None),
            ("256.1.1.1", None),
            ("1..2", None),
            (".1.2.3", None),
            ("1.2.3.", None),
            ("-1", None),
            ("1e1", None),
            ("0xffffffffff", None),
            ("1.2.3.0x4", Some([1, 2, 3, 4])),
        ] {
            assert_eq!(inet_aton(text), want.map(Ipv4Addr::from), "{text:?}");
        }
    }

    #[test]
    fn a_damaged_file_is_refused_with_the_reason() {
        let good = sample();
        for cut in 0..good.len() {
            match IpSetReader::from_bytes(good[..cut].to_vec()) {
                Err(e) => assert!(!e.0.is_empty()),
                // Cut inside the metadata's last value a map can still parse; the tree
                // and every record it points to were verified.
                Ok(db) => assert!(db.lookup("192.0.2.7").is_ok()),
            }
        }
        for bytes in [&b""[..], b"not a maxmind db", b"\xab\xcd\xefMaxMind.com"] {
            let err = IpSetReader::from_bytes(bytes.to_vec()).unwrap_err();
            assert!(err.0.contains("invalid database"), "{err}");
        }
        // A tree pointer past the data section.
        let mut bad = good.clone();
        bad[0..3].copy_from_slice(&[0xff, 0xff, 0xff]);
        assert!(IpSetReader::from_bytes(bad).is_err());
    }

    /// Networks around one random root, so that they nest and split each other often.
    fn v4_nets() -> impl Strategy<Value = Vec<(u32, u8)>> {
        let flip = prop::sample::select(vec![0u32, 0x0080_0000, 0x8000, 0x80, 0x00ff_ffff]);
        (
            any::<u32>(),
            proptest::collection::vec((flip, 8u8..=32), 1..12),
        )
            .prop_map(|(root, nets)| {
                nets.into_iter()
                    .map(|(f, len)| ((root ^ f) & (u32::MAX << (32 - len)), len))
                    .collect()
            })
    }

    proptest! {
        /// The deepest listed network holding an address decides, for addresses inside and
        /// near the listed networks.
        #[test]
        fn lookups_agree_with_a_plain_scan(
            nets in v4_nets(),
            offsets in proptest::collection::vec(any::<u32>(), 1..24),
        ) {
            let mut unique: Vec<(u32, u8)> = Vec::new();
            for n in nets {
                if !unique.contains(&n) {
                    unique.push(n);
                }
            }
            let texts: Vec<String> = unique
                .iter()
                .map(|&(a, len)| format!("{}/{len}", Ipv4Addr::from(a)))
                .collect();
            let leaked: Vec<&'static str> =
                texts.iter().map(|t| &*Box::leak(t.clone().into_boxed_str())).collect();
            let entries: Vec<(&str, V)> =
                leaked.iter().map(|&t| (t, pool(t, &[]))).collect();
            let db = IpSetReader::from_bytes(build_db("netdetect-pool-ips", &entries)).unwrap();
            for (i, off) in offsets.iter().enumerate() {
                let (base, len) = unique[i % unique.len()];
                // Inside the network, or anywhere (mostly outside every network).
                let addr = if i % 2 == 0 { base | (off >> len.min(31)) } else { *off };
                let want = unique
                    .iter()
                    .enumerate()
                    .filter(|(_, &(a, l))| l == 0 || (addr ^ a) >> (32 - l) == 0)
                    .max_by_key(|(_, &(_, l))| l)
                    .map(|(k, _)| leaked[k].to_owned());
                let got = db.lookup(&Ipv4Addr::from(addr).to_string()).unwrap();
                prop_assert_eq!(got.and_then(|f| f.record.network), want);
            }
        }
    }
}
