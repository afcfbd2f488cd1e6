//! Property fuzzing of every parser of the core, seeded with the real bytes of the
//! project's own captures (pcaps/) and mutated (bit flips, overwrites, insertions,
//! deletions, truncation), plus plain random bytes.
//!
//! Each property asserts more than "no panic": streaming parsers give the same result fed
//! whole or split at any point, decoded values respect the parser's stated limits, and the
//! reassembler delivers a prefix of the true stream whatever the segment order.
//!
//! The case count per property is proptest's (`PROPTEST_CASES`, default 256), so CI runs a
//! short campaign and `bench/fuzz_rust.sh` a long one (10^6 inputs per parser).

use crate::capture::CaptureReader;
use crate::dns::{self, DnsTcpFramer};
use crate::engine::{Config, Engine};
use crate::http::HttpSniffer;
use crate::intel::Prefilter;
use crate::lines::{Framed, LineFramer};
use crate::mmdb::{self, IpSetReader};
use crate::packet::{PacketDecoder, LINKTYPES, TCP, UDP};
use crate::pdns::PassiveDns;
use crate::reasm::Reassembler;
use crate::tls::{self, TlsSniffer};
use crate::{dhcp, socks, sv2, ws};
use proptest::prelude::*;
use std::io::{Cursor, Read};
use std::sync::OnceLock;

/// Real payloads by protocol, and the frames and files they came from.
#[derive(Default)]
struct Seeds {
    files: Vec<Vec<u8>>,
    frames: Vec<(u32, Vec<u8>)>,
    tls: Vec<Vec<u8>>,
    http: Vec<Vec<u8>>,
    dns: Vec<Vec<u8>>,
    dhcp: Vec<Vec<u8>>,
    tcp_other: Vec<Vec<u8>>,
}

/// A DHCPACK with hostname, lease time and server id (RFC 2131/2132): the project's
/// captures hold none, so the seed is written out here.
fn dhcp_ack() -> Vec<u8> {
    let mut m = vec![2u8, 1, 6, 0];
    m.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    m.extend_from_slice(&[0; 4]); // secs, flags
    m.extend_from_slice(&[0, 0, 0, 0, 10, 0, 0, 7, 10, 0, 0, 1, 0, 0, 0, 0]);
    m.extend_from_slice(&[0x02, 0, 0, 0, 0, 7]);
    m.extend_from_slice(&[0; 10 + 64 + 128]);
    m.extend_from_slice(&[99, 130, 83, 99]);
    m.extend_from_slice(&[53, 1, 5, 54, 4, 10, 0, 0, 1, 51, 4, 0, 0, 14, 16]);
    m.extend_from_slice(&[12, 5]);
    m.extend_from_slice(b"host7");
    m.extend_from_slice(&[81, 9, 0x04, 0, 0, 5]);
    m.extend_from_slice(b"host7");
    m.extend_from_slice(&[0, 255]);
    m
}

fn seeds() -> &'static Seeds {
    static SEEDS: OnceLock<Seeds> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps");
        let mut paths: Vec<_> = std::fs::read_dir(&dir)
            .expect("pcaps/ holds the seed captures")
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().contains(".pcap"))
            .collect();
        paths.sort();
        let mut s = Seeds::default();
        for path in paths {
            let bytes = std::fs::read(&path).expect("seed capture readable");
            let mut r = CaptureReader::from_reader("seed", Box::new(Cursor::new(bytes.clone())))
                .expect("seed capture opens");
            let mut dec = PacketDecoder::new();
            while let Ok(Some(f)) = r.next_frame() {
                s.frames.push((f.linktype, f.data.to_vec()));
                let Some(p) = dec.decode(f.linktype, f.data) else {
                    continue;
                };
                let pl = p.payload.to_vec();
                if pl.is_empty() {
                    continue;
                }
                let ports = [p.sport, p.dport];
                if p.proto == UDP && ports.contains(&53) {
                    s.dns.push(pl);
                } else if p.proto == UDP && (ports.contains(&67) || ports.contains(&68)) {
                    s.dhcp.push(pl);
                } else if p.proto == TCP && pl.len() > 2 && pl[0] == 0x16 && pl[1] == 3 {
                    s.tls.push(pl);
                } else if p.proto == TCP
                    && [&b"GET "[..], b"POST", b"HTTP"]
                        .iter()
                        .any(|m| pl.starts_with(m))
                {
                    s.http.push(pl);
                } else if p.proto == TCP && ports.contains(&53) && pl.len() > 2 {
                    s.dns.push(pl[2..].to_vec());
                } else if p.proto == TCP {
                    s.tcp_other.push(pl);
                }
            }
            s.files.push(bytes);
        }
        s.dhcp.push(dhcp_ack());
        for (name, pool) in [
            ("files", &s.files),
            ("tls", &s.tls),
            ("http", &s.http),
            ("dns", &s.dns),
            ("tcp", &s.tcp_other),
        ] {
            assert!(!pool.is_empty(), "no {name} seeds in pcaps/");
        }
        s
    })
}

/// A few edits of a byte string: (where, value, op) each, and an optional truncation.
type Edits = (Vec<(prop::sample::Index, u8, u8)>, prop::sample::Index, u8);

fn edits() -> impl Strategy<Value = Edits> {
    (
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..6), 0..6),
        any::<prop::sample::Index>(),
        0u8..4,
    )
}

/// Apply `edits`: overwrites, bit flips, insertions, deletions, length-like bytes made huge
/// or zero, and (one time in four) a truncation.
fn mutate(mut b: Vec<u8>, (edits, cut, cut_op): &Edits) -> Vec<u8> {
    for &(at, v, op) in edits {
        if b.is_empty() {
            b.push(v);
            continue;
        }
        let p = at.index(b.len());
        match op {
            0 => b[p] = v,
            1 => b[p] ^= 1 << (v % 8),
            2 => b.insert(p, v),
            3 => {
                b.remove(p);
            }
            // A length field somewhere becomes huge or zero.
            4 => b[p] = if v & 1 == 0 { 0xFF } else { 0 },
            _ => b[p] = [0u8, 1, 0x7F, 0x80, 0xFE, 0xFF][usize::from(v % 6)],
        }
    }
    if *cut_op == 0 {
        let at = cut.index(b.len() + 1);
        b.truncate(at);
    }
    b
}

/// A seed with a few mutations (or, one time in eight, random bytes).
fn input(pick: fn(&'static Seeds) -> &'static [Vec<u8>]) -> impl Strategy<Value = Vec<u8>> {
    let mutated = (any::<prop::sample::Index>(), edits())
        .prop_map(move |(i, e)| mutate(i.get(pick(seeds())).clone(), &e));
    prop_oneof![7 => mutated, 1 => prop::collection::vec(any::<u8>(), 0..700)]
}

/// A pipe-like source: at most `step` bytes per read.
struct Trickle {
    inner: Cursor<Vec<u8>>,
    step: usize,
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.step);
        self.inner.read(&mut buf[..n])
    }
}

type Read1 = (Vec<(u32, Vec<u8>)>, Option<(u64, String)>);

fn read_all(r: Result<CaptureReader, crate::error::CaptureError>) -> Read1 {
    let mut r = match r {
        Ok(r) => r,
        Err(e) => return (Vec::new(), Some((e.offset, e.reason))),
    };
    let mut frames = Vec::new();
    loop {
        match r.next_frame() {
            Ok(Some(f)) => frames.push((f.linktype, f.data.to_vec())),
            Ok(None) => return (frames, None),
            Err(e) => return (frames, Some((e.offset, e.reason))),
        }
    }
}

fn tls_events(chunks: &[&[u8]], midstream: bool) -> (Vec<tls::TlsEvent>, bool) {
    let mut s = TlsSniffer::new(midstream);
    let mut out = Vec::new();
    for c in chunks {
        if s.feed(c, &mut out).is_err() {
            return (out, true);
        }
    }
    (out, false)
}

fn http_heads(chunks: &[&[u8]]) -> (Vec<crate::http::HttpHead>, bool) {
    let mut s = HttpSniffer::new();
    let mut out = Vec::new();
    for c in chunks {
        if s.feed(c, &mut out).is_err() {
            return (out, true);
        }
    }
    s.close(&mut out);
    (out, false)
}

fn dns_tcp(chunks: &[&[u8]]) -> (Vec<dns::DnsMessage>, bool) {
    let mut s = DnsTcpFramer::new();
    let mut out = Vec::new();
    for c in chunks {
        if s.feed(c, &mut out).is_err() {
            return (out, true);
        }
    }
    (out, false)
}

fn split(data: &[u8], at: prop::sample::Index) -> (&[u8], &[u8]) {
    data.split_at(at.index(data.len() + 1))
}

proptest! {
    /// Captures: a mutated file reads the same through a one-byte-at-a-time pipe as from
    /// memory, and never yields more frames than its size allows.
    #[test]
    fn fuzz_capture_reader(data in input(|s| &s.files)) {
        let whole = read_all(CaptureReader::from_reader("f", Box::new(Cursor::new(data.clone()))));
        prop_assert!(whole.0.len() <= data.len() / 16 + 1);
        let step = 1 + data.len() % 7;
        let trickled = read_all(CaptureReader::from_reader(
            "f",
            Box::new(Trickle { inner: Cursor::new(data), step }),
        ));
        prop_assert_eq!(whole, trickled);
    }

    /// L2..L4: any frame under any link type; the payload lies inside the frame and every
    /// frame is counted once.
    #[test]
    fn fuzz_packet_decoder(
        data in input(|s| SEED_FRAMES.get_or_init(|| s.frames.iter().map(|f| f.1.clone()).collect())),
        lt in any::<prop::sample::Index>(),
    ) {
        let mut dec = PacketDecoder::new();
        let linktype = if lt.index(4) == 0 { *lt.get(&LINKTYPES) } else { 1 };
        if let Some(p) = dec.decode(linktype, &data) {
            prop_assert!(p.payload.len() <= data.len());
            prop_assert!(p.proto == TCP || p.proto == UDP);
        }
        prop_assert_eq!(dec.counters.packets, 1);
    }

    /// TLS: the record layer gives the same events fed whole or split anywhere.
    #[test]
    fn fuzz_tls_stream(data in input(|s| &s.tls), at in any::<prop::sample::Index>(), mid in any::<bool>()) {
        let whole = tls_events(&[&data], mid);
        let (a, b) = split(&data, at);
        let parts = tls_events(&[a, b], mid);
        if !whole.1 && !parts.1 {
            prop_assert_eq!(whole.0, parts.0);
        }
    }

    /// TLS: ClientHello/ServerHello/Certificate bodies alone; JA3/JA4 keep their shapes.
    #[test]
    fn fuzz_tls_hello(data in input(|s| SEED_HELLO.get_or_init(|| hello_bodies(&s.tls)))) {
        for quic in [false, true] {
            let got = if quic {
                tls::parse_client_hello_quic(&data)
            } else {
                tls::parse_client_hello(0x0303, &data)
            };
            if let Ok(h) = got {
                prop_assert_eq!(h.ja3_hash.len(), 32);
                prop_assert_eq!(h.ja4.len(), 36, "{}", h.ja4);
                prop_assert!(h.sni.map_or(true, |s| s.len() <= 255 * 4));
            }
        }
        let mut msg = vec![2u8, 0, 0, 0];
        msg.extend_from_slice(&data);
        let _ = tls::parse_server_hello(&msg);
        msg[0] = 11;
        let _ = tls::parse_certificate_names(&msg);
    }

    /// HTTP: the same heads fed whole or split anywhere; text fields stay capped.
    #[test]
    fn fuzz_http_stream(data in input(|s| &s.http), at in any::<prop::sample::Index>()) {
        let whole = http_heads(&[&data]);
        let (a, b) = split(&data, at);
        let parts = http_heads(&[a, b]);
        if !whole.1 && !parts.1 {
            prop_assert_eq!(&whole.0, &parts.0);
        }
        for h in &whole.0 {
            for t in [&h.host, &h.user_agent].into_iter().flatten() {
                prop_assert!(t.chars().count() <= crate::http::MAX_TEXT);
            }
            prop_assert!(h.body.len() <= crate::http::DEFAULT_MAX_BODY);
        }
    }

    /// DNS: a message alone (both modes), any name offset, and over TCP whole or split.
    #[test]
    fn fuzz_dns(data in input(|s| &s.dns), at in any::<prop::sample::Index>()) {
        let full = dns::decode_dns(&data, false);
        let addrs = dns::decode_dns(&data, true);
        if let (Ok(f), Ok(a)) = (&full, &addrs) {
            prop_assert_eq!(&f.questions, &a.questions);
            prop_assert!(a.answers.len() <= f.answers.len());
        }
        if let Ok(f) = &full {
            for (q, _) in &f.questions {
                prop_assert!(q.len() <= 4 * 255);
            }
        }
        if !data.is_empty() {
            if let Ok((_, after)) = dns::read_name(&data, at.index(data.len())) {
                prop_assert!(after <= data.len());
            }
        }
        let mut framed = (data.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&data);
        let whole = dns_tcp(&[&framed]);
        let (a, b) = split(&framed, at);
        let parts = dns_tcp(&[a, b]);
        prop_assert_eq!(whole.1, parts.1);
        prop_assert_eq!(whole.0, parts.0);
    }

    /// JSON lines: the same lines, raw tail and verdict fed whole or cut anywhere (lines
    /// before a failure included), each line valid JSON, never more bytes handed up than fed.
    #[test]
    fn fuzz_json_lines(data in input(|s| &s.tcp_other), cut in cuts(), mid in any::<bool>()) {
        let run = |chunks: &[&[u8]]| {
            let mut f = LineFramer::new(mid);
            let mut out = Framed::default();
            for c in chunks {
                if f.feed(c, &mut out).is_err() {
                    return (out, true);
                }
            }
            let failed = f.close(&mut out).is_err();
            (out, failed)
        };
        let whole = run(&[&data]);
        let parts = run(&segments(&data, &cut));
        prop_assert_eq!(&whole, &parts);
        let handed: usize = whole.0.lines.iter().map(Vec::len).sum::<usize>() + whole.0.raw.len();
        prop_assert!(handed <= data.len());
        for l in &whole.0.lines {
            prop_assert!(crate::lines::valid_json(l));
        }
    }

    /// Passive DNS learns any decodable answer and stays within its byte budget.
    #[test]
    fn fuzz_pdns(msgs in prop::collection::vec(input(|s| &s.dns), 1..8)) {
        let mut p = PassiveDns::new(4096);
        for (i, m) in msgs.iter().enumerate() {
            if let Ok(m) = dns::decode_dns(m, true) {
                p.learn(&m, i as f64);
                for (_, ip, _) in crate::pdns::answer_addresses(&m) {
                    let _ = p.names_for(&ip, i as f64);
                }
            }
            prop_assert!(p.bytes() <= 4096);
        }
    }

    /// DHCP: any message; a decoded one has the fields' stated shapes.
    #[test]
    fn fuzz_dhcp(data in input(|s| &s.dhcp)) {
        if let Ok(m) = dhcp::decode_dhcp(&data) {
            prop_assert!(m.chaddr.len() <= 16 * 3);
            prop_assert!(m.hostname.map_or(true, |h| !h.is_empty()));
        }
    }

    /// Stratum V2: a SetupConnection is parsed only when its header claims one, within the
    /// claimed length; the Noise shape check takes any bytes.
    #[test]
    fn fuzz_sv2(data in input(|s| SEED_SV2.get_or_init(|| sv2_seeds(&s.tcp_other)))) {
        match sv2::parse_plaintext(&data) {
            Ok(Some(_)) => {
                let n = sv2::plaintext_frame_length(&data);
                prop_assert!(n.is_some_and(|n| n <= data.len()));
            }
            Ok(None) => prop_assert!(sv2::plaintext_frame_length(&data).is_none()),
            Err(_) => prop_assert!(sv2::plaintext_frame_length(&data).is_some()),
        }
        let _ = sv2::noise_handshake(&data, data.len(), 234);
        let _ = sv2::looks_uniform(&data[..data.len().min(128)]);
    }

    /// Reassembly: whatever the order, duplication and overlap of a stream's segments, what
    /// is delivered without a gap is exactly the stream's prefix, within the byte cap.
    #[test]
    fn fuzz_reassembly(
        stream in prop::collection::vec(any::<u8>(), 1..3000),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..40),
        order in prop::collection::vec(any::<prop::sample::Index>(), 0..80),
        isn in any::<u32>(),
        cap in 1usize..4096,
    ) {
        let mut bounds: Vec<usize> = cuts.iter().map(|c| c.index(stream.len())).collect();
        bounds.push(0);
        bounds.push(stream.len());
        bounds.sort_unstable();
        bounds.dedup();
        let segs: Vec<(usize, usize)> = bounds.windows(2).map(|w| (w[0], w[1])).collect();
        let mut r = Reassembler::new(cap, 65536);
        r.start(isn);
        let mut got = Vec::new();
        let mut gap = false;
        // Segments in a scrambled order with repeats, then every segment once, in order.
        let picks = order.iter().map(|o| *o.get(&segs)).chain(segs.iter().copied());
        for (a, b) in picks {
            let seq = isn.wrapping_add(1).wrapping_add(a as u32);
            gap |= r.feed(seq, &stream[a..b], &mut |c| got.extend_from_slice(c));
        }
        prop_assert!(!gap, "every byte was offered: no gap may be skipped");
        prop_assert_eq!(&got[..], &stream[..got.len()]);
        prop_assert!(got.len() >= cap.min(stream.len()));
    }

    /// The whole engine: mutated frames of every capture, no panic, accounted memory within
    /// the budget.
    #[test]
    fn fuzz_engine(frames in prop::collection::vec(
        (input(|s| SEED_FRAMES.get_or_init(|| s.frames.iter().map(|f| f.1.clone()).collect())),
         0.0f64..5.0),
        1..24,
    )) {
        let cfg = Config { memory_budget: 1 << 20, max_flows: 64, ..Config::default() };
        let mut e = Engine::new(cfg, Prefilter::new(
            &["supportxmr.com".into()], &[], &[], &["xmrig/".into()]));
        let mut ts = 1_700_000_000.0;
        for (f, dt) in &frames {
            ts += dt;
            e.feed(ts, 1, f);
            prop_assert!(e.memory() <= 1 << 20);
        }
        e.finish();
        let _ = e.take_events();
    }
}

static SEED_FRAMES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
static SEED_HELLO: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
static SEED_SV2: OnceLock<Vec<Vec<u8>>> = OnceLock::new();

/// ClientHello bodies (after the record and handshake headers) of the TLS seeds.
fn hello_bodies(tls: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let out: Vec<Vec<u8>> = tls
        .iter()
        .filter(|r| r.len() > 9 && r[5] == 1)
        .map(|r| r[9..].to_vec())
        .collect();
    assert!(!out.is_empty(), "no ClientHello among the seeds");
    out
}

/// TCP payloads that start like an SV2 frame header, plus a SetupConnection written out.
fn sv2_seeds(tcp: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = tcp
        .iter()
        .filter(|p| sv2::plaintext_frame_length(p).is_some())
        .cloned()
        .collect();
    let mut body = vec![0u8, 2, 0, 2, 0, 0, 0, 0, 0];
    for s in [&b"pool.example.org"[..], b"vendor", b"hw", b"fw", b"id"] {
        if s == b"vendor" {
            body.extend_from_slice(&3333u16.to_le_bytes());
        }
        body.push(s.len() as u8);
        body.extend_from_slice(s);
    }
    let mut frame = vec![0u8, 0, 0];
    frame.extend_from_slice(&(body.len() as u32).to_le_bytes()[..3]);
    frame.extend_from_slice(&body);
    out.push(frame);
    out
}

// ---------------------------------------------------------------------------------------
// Proxy, WebSocket, TLS record shape and certificates. The pcaps/ seeds hold few of these,
// so valid framing is generated (every SOCKS4/4a/5 handshake form, WebSocket messages
// fragmented, masked, deflated and interleaved with control frames, certificates inside
// TLS 1.2 records) and then, three times in four, mutated. A generated input that was not
// mutated must also decode to exactly what was framed.
// ---------------------------------------------------------------------------------------

/// `data` cut at every point of `cuts` (empty segments included: an empty read is legal).
fn segments<'a>(data: &'a [u8], cuts: &[prop::sample::Index]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c.index(data.len() + 1)).collect();
    at.sort_unstable();
    let mut out = Vec::with_capacity(at.len() + 1);
    let mut prev = 0;
    for a in at {
        out.push(&data[prev..a]);
        prev = a;
    }
    out.push(&data[prev..]);
    out
}

fn cuts() -> impl Strategy<Value = Vec<prop::sample::Index>> {
    prop::collection::vec(any::<prop::sample::Index>(), 0..6)
}

/// A handshake of one SOCKS side, what it must decode to, and where the tunnel starts.
#[derive(Debug, Clone)]
struct SocksCase {
    version: socks::Version,
    client: bool,
    bytes: Vec<u8>,
    handshake: usize,
    target: Option<socks::Target>,
}

#[derive(Debug, Clone)]
enum SocksAddr {
    V4([u8; 4]),
    V6([u8; 16]),
    Name(String),
}

impl SocksAddr {
    fn host(&self) -> String {
        match self {
            SocksAddr::V4(a) => std::net::Ipv4Addr::from(*a).to_string(),
            SocksAddr::V6(a) => std::net::Ipv6Addr::from(*a).to_string(),
            SocksAddr::Name(n) => n.clone(),
        }
    }

    /// ATYP and address of a SOCKS5 request or reply.
    fn socks5(&self, out: &mut Vec<u8>) {
        match self {
            SocksAddr::V4(a) => {
                out.push(1);
                out.extend_from_slice(a);
            }
            SocksAddr::V6(a) => {
                out.push(4);
                out.extend_from_slice(a);
            }
            SocksAddr::Name(n) => {
                out.extend_from_slice(&[3, n.len() as u8]);
                out.extend_from_slice(n.as_bytes());
            }
        }
    }
}

/// Host names as proxies see them: 1..255 bytes, lower case (the parser lower-cases).
fn socks_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z0-9][a-z0-9.-]{0,40}",
        1 => "[a-z0-9.-]{200,255}",
    ]
}

fn socks_addr() -> impl Strategy<Value = SocksAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(SocksAddr::V4),
        any::<[u8; 16]>().prop_map(SocksAddr::V6),
        socks_name().prop_map(SocksAddr::Name),
    ]
}

fn socks_case() -> impl Strategy<Value = SocksCase> {
    use socks::{Target, Version};
    let tunnel = || prop::collection::vec(any::<u8>(), 0..48);
    let field = |max| prop::collection::vec(1u8..=255, 0..max);
    // SOCKS5 client: greeting (methods none/GSSAPI/password), RFC 1929 auth or not, request.
    let c5 = (
        prop::collection::vec(0u8..3, 1..4),
        prop::option::of((field(20), field(20))),
        1u8..=3,
        socks_addr(),
        any::<u16>(),
        tunnel(),
    )
        .prop_map(|(methods, auth, command, addr, port, tunnel)| {
            let mut b = vec![5, methods.len() as u8];
            b.extend_from_slice(&methods);
            if let Some((user, pass)) = auth {
                b.extend_from_slice(&[1, user.len() as u8]);
                b.extend_from_slice(&user);
                b.push(pass.len() as u8);
                b.extend_from_slice(&pass);
            }
            b.extend_from_slice(&[5, command, 0]);
            addr.socks5(&mut b);
            b.extend_from_slice(&port.to_be_bytes());
            let handshake = b.len();
            b.extend_from_slice(&tunnel);
            SocksCase {
                version: Version::Socks5,
                client: true,
                bytes: b,
                handshake,
                target: Some(Target {
                    kind: "socks5",
                    host: addr.host(),
                    port,
                    command,
                }),
            }
        });
    // SOCKS4 and 4a client: CONNECT/BIND, a non-zero port, a user id, a name for 4a.
    let c4 = (
        1u8..=2,
        1u16..=u16::MAX,
        any::<[u8; 4]>(),
        field(30),
        prop::option::of((1u8..=255, socks_name())),
        tunnel(),
    )
        .prop_map(|(command, port, mut ip, user, name, tunnel)| {
            if let Some((x, _)) = &name {
                ip = [0, 0, 0, *x];
            } else if ip[..3] == [0, 0, 0] {
                ip[0] = 1; // 0.0.0.x with x != 0 would mean SOCKS4a
            }
            let mut b = vec![4, command];
            b.extend_from_slice(&port.to_be_bytes());
            b.extend_from_slice(&ip);
            b.extend_from_slice(&user);
            b.push(0);
            let (kind, host) = match name {
                Some((_, n)) => {
                    b.extend_from_slice(n.as_bytes());
                    b.push(0);
                    ("socks4a", n)
                }
                None => ("socks4", std::net::Ipv4Addr::from(ip).to_string()),
            };
            let handshake = b.len();
            b.extend_from_slice(&tunnel);
            SocksCase {
                version: Version::Socks4,
                client: true,
                bytes: b,
                handshake,
                target: Some(Target {
                    kind,
                    host,
                    port,
                    command,
                }),
            }
        });
    // SOCKS5 server: method chosen (none, or password then its success), request granted.
    let s5 = (any::<bool>(), socks_addr(), any::<u16>(), tunnel()).prop_map(
        |(password, addr, port, tunnel)| {
            let mut b = if password {
                vec![5, 2, 1, 0]
            } else {
                vec![5, 0]
            };
            b.extend_from_slice(&[5, 0, 0]);
            addr.socks5(&mut b);
            b.extend_from_slice(&port.to_be_bytes());
            let handshake = b.len();
            b.extend_from_slice(&tunnel);
            SocksCase {
                version: Version::Socks5,
                client: false,
                bytes: b,
                handshake,
                target: None,
            }
        },
    );
    // SOCKS4 server: request granted (0x5A), port and address.
    let s4 = (any::<[u8; 6]>(), tunnel()).prop_map(|(bound, tunnel)| {
        let mut b = vec![0, 0x5A];
        b.extend_from_slice(&bound);
        b.extend_from_slice(&tunnel);
        SocksCase {
            version: Version::Socks4,
            client: false,
            bytes: b,
            handshake: 8,
            target: None,
        }
    });
    prop_oneof![3 => c5, 3 => c4, 1 => s5, 1 => s4]
}

/// What one SOCKS side made of a byte stream fed in `chunks`.
#[derive(Debug, PartialEq)]
struct SocksRun {
    target: Option<socks::Target>,
    open: bool,
    tunnel: Vec<u8>,
    failed: bool,
}

fn socks_run(v: socks::Version, client: bool, chunks: &[&[u8]]) -> (SocksRun, usize) {
    let mut s = socks::SocksSniffer::new(v, client);
    let mut r = SocksRun {
        target: None,
        open: false,
        tunnel: Vec::new(),
        failed: false,
    };
    let mut held = 0;
    for c in chunks {
        match s.feed(c) {
            Ok(socks::Step::NeedMore) => {}
            Ok(socks::Step::Request(t, rest)) => {
                r.target = Some(t);
                r.open = true;
                r.tunnel.extend_from_slice(&rest);
            }
            Ok(socks::Step::Open(rest)) => {
                r.open = true;
                r.tunnel.extend_from_slice(&rest);
            }
            Err(_) => {
                r.failed = true;
                break;
            }
        }
        held = held.max(s.buffered());
    }
    (r, held)
}

/// A WebSocket message as framed: its wire form may be deflated, fragmented at `frag`,
/// with a ping after the fragments `ping` marks.
#[derive(Debug, Clone)]
struct WsSpec {
    opcode: u8,
    data: Vec<u8>,
    compress: bool,
    frag: Vec<prop::sample::Index>,
    ping: Vec<bool>,
    key: [u8; 4],
    /// 0: minimal length encoding; 1: at least 16 bits; 2: 64 bits.
    long: u8,
}

#[derive(Debug, Clone)]
struct WsCase {
    deflate: bool,
    limit: usize,
    bytes: Vec<u8>,
    sent: Vec<ws::WsMessage>,
    /// Per message: its wire (possibly deflated) length and whether it was deflated.
    wire: Vec<(usize, bool)>,
}

fn ws_frame(out: &mut Vec<u8>, b0: u8, payload: &[u8], mask: Option<[u8; 4]>, long: u8) {
    out.push(b0);
    let m = if mask.is_some() { 0x80 } else { 0 };
    let n = payload.len();
    if n < 126 && long == 0 {
        out.push(m | n as u8);
    } else if n < 65536 && long < 2 {
        out.push(m | 126);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(m | 127);
        out.extend_from_slice(&(n as u64).to_be_bytes());
    }
    match mask {
        Some(k) => {
            out.extend_from_slice(&k);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i & 3]));
        }
        None => out.extend_from_slice(payload),
    }
}

/// RFC 7692 7.2.1: deflate with a sync flush and drop the trailing 00 00 FF FF; the one
/// compressor carries its window from message to message (context takeover).
fn deflate_message(c: &mut flate2::Compress, raw: &[u8]) -> Vec<u8> {
    let start = c.total_in();
    let mut out = Vec::with_capacity(raw.len() + 64);
    loop {
        let used = (c.total_in() - start) as usize;
        c.compress_vec(&raw[used..], &mut out, flate2::FlushCompress::Sync)
            .expect("deflate");
        let used = (c.total_in() - start) as usize;
        if used == raw.len() && out.len() < out.capacity() {
            break;
        }
        out.reserve(out.capacity().max(64));
    }
    assert!(out.ends_with(&[0, 0, 0xFF, 0xFF]), "a sync flush ends so");
    out.truncate(out.len() - 4);
    out
}

fn ws_case() -> impl Strategy<Value = WsCase> {
    let data = prop_oneof![
        3 => prop::collection::vec(any::<u8>(), 0..300),
        // Compressible runs, up to several times the smaller limits.
        2 => (any::<u8>(), 1usize..5000).prop_map(|(b, n)| vec![b; n]),
        1 => prop::collection::vec(any::<u8>(), 0..3000),
    ];
    let spec = (
        1u8..=2,
        data,
        any::<bool>(),
        prop::collection::vec(any::<prop::sample::Index>(), 0..4),
        prop::collection::vec(any::<bool>(), 0..5),
        any::<[u8; 4]>(),
        0u8..3,
    )
        .prop_map(|(opcode, data, compress, frag, ping, key, long)| WsSpec {
            opcode,
            data,
            compress,
            frag,
            ping,
            key,
            long,
        });
    (
        any::<bool>(),
        any::<bool>(),
        prop::sample::select(vec![64usize, 1024, ws::DEFAULT_MAX_MESSAGE]),
        prop::collection::vec(spec, 0..6),
    )
        .prop_map(|(deflate, client, limit, specs)| {
            let mut z = flate2::Compress::new(flate2::Compression::default(), false);
            let mut bytes = Vec::new();
            let mut sent = Vec::new();
            let mut wire = Vec::new();
            for s in specs {
                let compressed = deflate && s.compress;
                let w = if compressed {
                    deflate_message(&mut z, &s.data)
                } else {
                    s.data.clone()
                };
                let mask = client.then_some(s.key);
                let pieces = segments(&w, &s.frag);
                let last = pieces.len() - 1;
                for (i, p) in pieces.iter().enumerate() {
                    let fin = if i == last { 0x80 } else { 0 };
                    let rsv1 = if i == 0 && compressed { 0x40 } else { 0 };
                    let op = if i == 0 { s.opcode } else { 0 };
                    ws_frame(&mut bytes, fin | rsv1 | op, p, mask, s.long);
                    if s.ping.get(i) == Some(&true) {
                        // A ping between fragments (or a pong after the message).
                        let ctl = if i == last { 0x8A } else { 0x89 };
                        ws_frame(&mut bytes, ctl, &s.key, mask, 0);
                    }
                }
                wire.push((w.len(), compressed));
                sent.push(ws::WsMessage {
                    opcode: s.opcode,
                    data: s.data,
                });
            }
            WsCase {
                deflate,
                limit,
                bytes,
                sent,
                wire,
            }
        })
}

/// What one WebSocket direction made of a byte stream fed in `chunks`.
#[derive(Debug, PartialEq)]
struct WsRun {
    out: Vec<ws::WsMessage>,
    overflow: u64,
    failed: bool,
}

fn ws_run(deflate: bool, limit: usize, chunks: &[&[u8]]) -> (WsRun, usize) {
    let mut s = ws::WsSniffer::with_limit(deflate, limit);
    let mut out = Vec::new();
    let mut failed = false;
    let mut held = 0;
    for c in chunks {
        if s.feed(c, &mut out).is_err() {
            failed = true;
            break;
        }
        held = held.max(s.buffered());
    }
    let r = WsRun {
        out,
        overflow: s.overflow,
        failed,
    };
    (r, held)
}

/// Is `sub` `all` with some elements left out (order kept)?
fn subsequence<T: PartialEq>(sub: &[T], all: &[T]) -> bool {
    let mut it = all.iter();
    sub.iter().all(|x| it.any(|y| y == x))
}

static SEED_CERTS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
/// Client flights and server flights.
type Flights = (Vec<Vec<u8>>, Vec<Vec<u8>>);
static SEED_FLIGHTS: OnceLock<Flights> = OnceLock::new();

/// Certificate handshake messages: the repository's real leaf certificate (alone and before
/// a second one), and any TLS 1.2 Certificate message among the seed captures' records.
fn cert_seeds(tls: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let leaf: &[u8] = include_bytes!("tls/testdata/leaf.der");
    let message = |certs: &[&[u8]]| {
        let mut list = Vec::new();
        for c in certs {
            list.extend_from_slice(&(c.len() as u32).to_be_bytes()[1..]);
            list.extend_from_slice(c);
        }
        let mut m = vec![11];
        m.extend_from_slice(&((list.len() + 3) as u32).to_be_bytes()[1..]);
        m.extend_from_slice(&(list.len() as u32).to_be_bytes()[1..]);
        m.extend_from_slice(&list);
        m
    };
    let mut out = vec![message(&[leaf]), message(&[leaf, leaf])];
    for payload in tls {
        let mut rec = &payload[..];
        while rec.len() >= 5 && rec[0] == 22 {
            let n = usize::from(u16::from_be_bytes([rec[3], rec[4]]));
            let Some(body) = rec.get(5..5 + n) else { break };
            let mut hs = body;
            while hs.len() >= 4 {
                let m =
                    4 + (usize::from(hs[1]) << 16 | usize::from(hs[2]) << 8 | usize::from(hs[3]));
                let Some(msg) = hs.get(..m) else { break };
                if msg[0] == 11 {
                    out.push(msg.to_vec());
                }
                hs = &hs[m..];
            }
            rec = &rec[5 + n..];
        }
    }
    assert!(
        tls::parse_certificate_names(&out[0]).is_some(),
        "the leaf certificate seed yields names"
    );
    out
}

/// The seeds' handshake payloads that open with a ClientHello, and those with a ServerHello,
/// each cut after its last whole record (a flight often spans segments; a record cut short
/// would swallow the application records fed after it).
fn flight_seeds(tls: &[Vec<u8>]) -> Flights {
    let whole = |p: &[u8]| -> Vec<u8> {
        let mut at = 0;
        while let Some(h) = p.get(at..at + 5) {
            let next = at + 5 + usize::from(u16::from_be_bytes([h[3], h[4]]));
            if next > p.len() {
                break;
            }
            at = next;
        }
        p[..at].to_vec()
    };
    let of = |t: u8| -> Vec<Vec<u8>> {
        tls.iter()
            .filter(|r| r.len() > 9 && r[5] == t)
            .map(|r| whole(r))
            .filter(|r| !r.is_empty())
            .collect()
    };
    let (c, s) = (of(1), of(2));
    assert!(
        !c.is_empty() && !s.is_empty(),
        "no ClientHello or ServerHello among the seeds"
    );
    (c, s)
}

/// The counts `record` reports a change of (first_client only once the client spoke first).
fn judged(s: &tls::shape::ShapeSummary) -> (bool, u32, u32, u32, u32, u32, u32) {
    (
        s.client_first,
        if s.client_first { s.first_client } else { 0 },
        s.first_answer,
        s.pushes,
        s.pushes_small,
        s.pushes_same,
        s.client_small,
    )
}

/// A TLS record of type `ctype` around `body`.
fn tls_record(ctype: u8, body: &[u8]) -> Vec<u8> {
    let mut r = vec![ctype, 3, 3];
    r.extend_from_slice(&(body.len() as u16).to_be_bytes());
    r.extend_from_slice(body);
    r
}

proptest! {
    /// SOCKS4/4a/5, both sides: a handshake fed whole or cut anywhere gives the same target,
    /// tunnel bytes and verdict under every reading (version x side); the tunnel is the
    /// stream's tail; at most MAX_HELD bytes are ever held. Unmutated, a client handshake is
    /// detected as its version and decodes to exactly its target and tunnel.
    #[test]
    fn fuzz_socks(case in socks_case(), e in edits(), mutated in prop::bool::weighted(0.75), cut in cuts()) {
        use socks::Version::{Socks4, Socks5};
        let data = if mutated { mutate(case.bytes.clone(), &e) } else { case.bytes.clone() };
        let _ = socks::detect(&data);
        for (v, client) in [(Socks4, true), (Socks5, true), (Socks4, false), (Socks5, false)] {
            let (whole, held_w) = socks_run(v, client, &[&data]);
            let (parts, held_p) = socks_run(v, client, &segments(&data, &cut));
            prop_assert!(held_w.max(held_p) <= socks::MAX_HELD);
            prop_assert_eq!(&whole, &parts, "{:?} client={}", v, client);
            if whole.open {
                prop_assert!(data.ends_with(&whole.tunnel));
                prop_assert!(whole.tunnel.len() + 2 <= data.len());
            }
            if let Some(t) = &whole.target {
                prop_assert!(client);
                prop_assert!(!t.host.is_empty() && t.host.len() <= 255);
                prop_assert!((1..=3).contains(&t.command));
                prop_assert_eq!(t.kind == "socks5", v == Socks5);
            }
        }
        if !mutated {
            if case.client {
                prop_assert_eq!(socks::detect(&case.bytes), Some(case.version));
            }
            let (r, _) = socks_run(case.version, case.client, &segments(&data, &cut));
            prop_assert_eq!(r, SocksRun {
                target: case.target.clone(),
                open: true,
                tunnel: case.bytes[case.handshake..].to_vec(),
                failed: false,
            });
        }
    }

    /// WebSocket (masked or not, fragmented, control frames between fragments,
    /// permessage-deflate with context takeover): the same messages, drops and verdict fed
    /// whole or cut anywhere; no message handed up exceeds the limit; the held bytes stay
    /// within limit + header + inflater. Unmutated, the messages handed up are the ones sent,
    /// in order, each dropped one counted: all of them when none is over the limit.
    #[test]
    fn fuzz_ws(case in ws_case(), e in edits(), mutated in prop::bool::weighted(0.75), cut in cuts()) {
        let data = if mutated { mutate(case.bytes.clone(), &e) } else { case.bytes.clone() };
        let (whole, held_w) = ws_run(case.deflate, case.limit, &[&data]);
        let (parts, held_p) = ws_run(case.deflate, case.limit, &segments(&data, &cut));
        prop_assert_eq!(&whole, &parts);
        prop_assert!(held_w.max(held_p) <= case.limit + 14 + ws::INFLATE_COST);
        for m in &whole.out {
            prop_assert!(m.data.len() <= case.limit, "{} bytes handed up, limit {}", m.data.len(), case.limit);
            prop_assert!(m.opcode == 1 || m.opcode == 2);
        }
        if !mutated {
            prop_assert!(!whole.failed);
            prop_assert!(subsequence(&whole.out, &case.sent), "a message was altered");
            prop_assert_eq!(whole.out.len() as u64 + whole.overflow, case.sent.len() as u64);
            let deflated_fit = case.wire.iter().zip(&case.sent).all(|(&(w, z), m)| {
                !z || (w <= case.limit && m.data.len() < case.limit)
            });
            if deflated_fit {
                let fits: Vec<_> = case.sent.iter().zip(&case.wire)
                    .filter(|(_, &(w, _))| w <= case.limit)
                    .map(|(m, _)| m.clone())
                    .collect();
                prop_assert_eq!(&whole.out, &fits);
            }
        }
    }

    /// TLS record shape, fed the record events of real (mutated) ClientHello and ServerHello
    /// flights and application records each way at any times: counts stay within the records
    /// counted, bytes and the largest record are those of the counted records, only
    /// application data counts, and `record` says false only when no judged count changed.
    #[test]
    fn fuzz_tls_shape(
        flights in (any::<prop::sample::Index>(), any::<prop::sample::Index>(), edits(), edits()),
        mutated in prop::bool::weighted(0.5),
        recs in prop::collection::vec(
            (any::<bool>(),
             prop_oneof![4 => 0usize..600, 1 => 600usize..4000, 1 => 16000usize..=tls::MAX_RECORD],
             0.0f64..4.0,
             prop::sample::select(vec![23u8, 23, 23, 21, 22, 20])),
            0..40),
    ) {
        let (ci, si, ce, se) = flights;
        let (cs, ss) = SEED_FLIGHTS.get_or_init(|| flight_seeds(&seeds().tls));
        let mut client = TlsSniffer::new(false);
        let mut server = TlsSniffer::new(false);
        let mut t = tls::shape::ShapeTracker::new();
        let mut ts = 1.0;
        let (mut fed, mut counted, mut max, mut ever13) = (0u32, 0u64, 0u32, false);
        let flight = |seed: &Vec<u8>, e: &Edits| {
            if mutated { mutate(seed.clone(), e) } else { seed.clone() }
        };
        let mut steps: Vec<(bool, Vec<u8>, f64)> = vec![
            (true, flight(ci.get(cs), &ce), 0.0),
            (false, flight(si.get(ss), &se), 0.01),
        ];
        steps.extend(recs.iter().map(|&(c, n, dt, ct)| (c, tls_record(ct, &vec![0; n]), dt)));
        for (from_client, bytes, dt) in steps {
            ts += dt;
            let sniffer = if from_client { &mut client } else { &mut server };
            let mut evs = Vec::new();
            if sniffer.feed(&bytes, &mut evs).is_err() {
                continue;
            }
            for ev in evs {
                match ev {
                    tls::TlsEvent::ServerHello(sh) => {
                        ever13 |= sh.version == 0x0304;
                        t.set_version(sh.version);
                    }
                    tls::TlsEvent::Record { content_type, length } => {
                        let before = t.s;
                        let changed = t.record(from_client, content_type, length, ts);
                        let after = t.s;
                        if content_type != 23 {
                            prop_assert!(!changed && after == before);
                            continue;
                        }
                        fed += 1;
                        let n = after.records[0] + after.records[1];
                        if n != before.records[0] + before.records[1] {
                            prop_assert_eq!(n, before.records[0] + before.records[1] + 1);
                            counted += u64::from(length);
                            max = max.max(u32::from(length));
                        }
                        if !changed {
                            prop_assert_eq!(judged(&before), judged(&after));
                        }
                    }
                    _ => {}
                }
            }
        }
        let s = t.s;
        prop_assert!(s.pushes + s.pushes_small <= s.records[1]);
        prop_assert!(s.pushes_same <= s.pushes);
        prop_assert!(s.client_small < s.records[0].max(1));
        prop_assert_eq!(s.bytes, counted);
        prop_assert_eq!(s.max_record, max);
        prop_assert!(s.max_record as usize <= tls::MAX_RECORD);
        prop_assert!(s.first_client <= s.max_record && s.first_answer <= s.max_record);
        let n = s.records[0] + s.records[1];
        prop_assert!(n <= fed);
        if !ever13 {
            prop_assert_eq!(n, fed);
        }
    }

    /// Certificates: a (mutated) Certificate message gives names within its size, and the
    /// same names — or none — when it arrives in TLS 1.2 handshake records, in one record or
    /// fragmented across two, the stream fed whole or cut anywhere.
    #[test]
    fn fuzz_tls_cert(i in any::<prop::sample::Index>(), e in edits(), frag in any::<prop::sample::Index>(), cut in cuts()) {
        let pool = SEED_CERTS.get_or_init(|| cert_seeds(&seeds().tls));
        let body = mutate(i.get(pool)[4..].to_vec(), &e);
        let mut msg = vec![11];
        msg.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        msg.extend_from_slice(&body);
        let direct = tls::parse_certificate_names(&msg);
        if let Some(n) = &direct {
            prop_assert!(n.san_dns.len() <= msg.len() / 2);
            for name in n.subject_cn.iter().chain(&n.issuer_cn).chain(&n.san_dns) {
                prop_assert!(name.chars().count() <= msg.len());
            }
            prop_assert!(n.san_dns.iter().all(|d| !d.ends_with('.')));
        }
        let (a, b) = split(&msg, frag);
        let mut stream = Vec::new();
        for part in [a, b] {
            for piece in part.chunks(1 << 14) {
                stream.extend(tls_record(22, piece));
            }
        }
        let want: Vec<_> = direct.into_iter().map(tls::TlsEvent::Certificate).collect();
        prop_assert_eq!(tls_events(&[&stream], false), (want.clone(), false));
        prop_assert_eq!(tls_events(&segments(&stream, &cut), false), (want, false));
    }
}

/// An IPv4 address spelled in one of the forms inet_aton reads: 1 to 4 parts, each
/// decimal, octal or hex (any case, any count of leading zeros).
fn aton_spelling() -> impl Strategy<Value = (u32, String)> {
    (
        any::<u32>(),
        1usize..=4,
        prop::collection::vec((0u8..3, any::<bool>(), 0usize..3), 4),
    )
        .prop_map(|(addr, n, styles)| {
            let b = addr.to_be_bytes();
            // n parts: the first n-1 are single bytes, the last fills the rest.
            let mut parts: Vec<u32> = b[..n - 1].iter().map(|&x| u32::from(x)).collect();
            let rest = b[n - 1..]
                .iter()
                .fold(0u32, |acc, &x| (acc << 8) | u32::from(x));
            parts.push(rest);
            let text = parts
                .iter()
                .zip(&styles)
                .map(|(&p, &(base, upper, zeros))| match base {
                    0 => p.to_string(),
                    1 => format!("0{}{:o}", "0".repeat(zeros), p),
                    _ => {
                        let hex = format!("0x{}{:x}", "0".repeat(zeros), p);
                        if upper {
                            hex.to_uppercase()
                        } else {
                            hex
                        }
                    }
                })
                .collect::<Vec<_>>()
                .join(".");
            (addr, text)
        })
}

proptest! {
    /// The pool address DB: a mutated DB (or random bytes) is refused with a reason or read;
    /// once read, every lookup answers (a record, nothing, or a decoder error) without a
    /// panic, and a record found is the one of a network holding the address.
    #[test]
    fn fuzz_mmdb(
        e in edits(),
        random in prop::bool::weighted(0.125),
        bytes in prop::collection::vec(any::<u8>(), 0..700),
        probes in prop::collection::vec(any::<u32>(), 1..16),
    ) {
        let data = if random { bytes } else { mutate(mmdb::tests::sample(), &e) };
        match IpSetReader::from_bytes(data) {
            Err(err) => prop_assert!(!err.0.is_empty()),
            Ok(db) => {
                for &p in &probes {
                    let v4 = std::net::IpAddr::V4(p.into());
                    let v6 = std::net::IpAddr::V6((u128::from(p) << 64 | 0x2001_0db8 << 96).into());
                    for addr in [v4, v6] {
                        if let Ok(Some(found)) = db.lookup_addr(addr) {
                            let (net, len) = found.tree_network.split_once('/').unwrap();
                            let net: std::net::IpAddr = net.parse().unwrap();
                            prop_assert_eq!(len.parse::<u8>().unwrap(), found.prefix_len);
                            let held = match (net, addr) {
                                (std::net::IpAddr::V4(n), std::net::IpAddr::V4(a)) => {
                                    found.prefix_len == 0
                                        || (u32::from(n) ^ u32::from(a)) >> (32 - found.prefix_len) == 0
                                }
                                (std::net::IpAddr::V6(n), std::net::IpAddr::V6(a)) => {
                                    found.prefix_len == 0
                                        || (u128::from(n) ^ u128::from(a)) >> (128 - found.prefix_len) == 0
                                }
                                // An IPv4 lookup answered above the IPv4 subtree.
                                _ => true,
                            };
                            prop_assert!(held, "{} not in {}", addr, found.tree_network);
                        }
                    }
                }
            }
        }
    }

    /// Address text: every inet_aton spelling of an address reads as that address; any
    /// text at all reads as an address or not, without a panic, and an IPv6 reading is
    /// std's reading of the text before the scope.
    #[test]
    fn fuzz_address_text(
        (addr, spelled) in aton_spelling(),
        text in "[0-9a-fA-FxX.:%]{0,48}",
        any_text in ".{0,48}",
    ) {
        prop_assert_eq!(mmdb::inet_aton(&spelled), Some(addr.into()), "{}", spelled);
        for t in [&text, &any_text] {
            if let Some(std::net::IpAddr::V6(a)) = mmdb::parse_address(t) {
                let bare = t.split('%').next().unwrap_or_default();
                prop_assert_eq!(bare.parse::<std::net::Ipv6Addr>().ok(), Some(a));
            }
        }
    }
}
