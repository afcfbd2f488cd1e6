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
use crate::packet::{PacketDecoder, LINKTYPES, TCP, UDP};
use crate::pdns::PassiveDns;
use crate::reasm::Reassembler;
use crate::tls::{self, TlsSniffer};
use crate::{dhcp, sv2};
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

/// A seed with a few mutations (or, one time in eight, random bytes).
fn input(pick: fn(&'static Seeds) -> &'static [Vec<u8>]) -> impl Strategy<Value = Vec<u8>> {
    let mutated = (
        any::<prop::sample::Index>(),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..6), 0..6),
        any::<prop::sample::Index>(),
        0u8..4,
    )
        .prop_map(move |(i, edits, cut, cut_op)| {
            let pool = pick(seeds());
            let mut b = i.get(pool).clone();
            for (at, v, op) in edits {
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
            if cut_op == 0 {
                let at = cut.index(b.len() + 1);
                b.truncate(at);
            }
            b
        });
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

    /// JSON lines: the same lines fed whole or split anywhere, each one valid JSON, never
    /// more bytes handed up than fed.
    #[test]
    fn fuzz_json_lines(data in input(|s| &s.tcp_other), at in any::<prop::sample::Index>(), mid in any::<bool>()) {
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
        let (a, b) = split(&data, at);
        let parts = run(&[a, b]);
        if !whole.1 && !parts.1 {
            prop_assert_eq!(&whole.0, &parts.0);
        }
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
