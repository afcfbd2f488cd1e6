//! Vectors from tests/test_tls.py (hand-built hellos with published fingerprints) and real
//! Chrome streams from the ndpi corpus (expected values from tls.py, JA3 agreeing with
//! tshark), fed whole, in every chunking and cut at every index.

use proptest::prelude::*;

use super::*;

const CHROME0_CLIENT: &[u8] = include_bytes!("testdata/chrome0_client.bin");
const CHROME1_CLIENT: &[u8] = include_bytes!("testdata/chrome1_client.bin");
const CHROME0_SERVER: &[u8] = include_bytes!("testdata/chrome0_server.bin");
/// Leaf certificate: CN pool.example.net (O=Lab), SAN pool.example.net, *.Example.NET.,
/// IP 10.0.0.1, issued by CN "Lab Issuing CA".
const LEAF_DER: &[u8] = include_bytes!("testdata/leaf.der");

fn feed_all(mut s: TlsSniffer, chunks: &[&[u8]]) -> (Vec<TlsEvent>, Result<(), DecodeError>) {
    let mut out = Vec::new();
    for c in chunks {
        if let Err(e) = s.feed(c, &mut out) {
            return (out, Err(e));
        }
    }
    (out, Ok(()))
}

fn events(data: &[u8]) -> Vec<TlsEvent> {
    let (ev, r) = feed_all(TlsSniffer::new(false), &[data]);
    r.unwrap();
    ev
}

fn hellos(ev: &[TlsEvent]) -> Vec<ClientHelloInfo> {
    ev.iter()
        .filter_map(|e| match e {
            TlsEvent::ClientHello(h) => Some((**h).clone()),
            _ => None,
        })
        .collect()
}

fn rec(content_type: u8, length: u16) -> TlsEvent {
    TlsEvent::Record {
        content_type,
        length,
    }
}

fn chunkings(data: &[u8]) -> Vec<Vec<&[u8]>> {
    let mut out = vec![vec![data]];
    for size in [1usize, 2, 3, 5, 7, 100, 1400] {
        out.push(data.chunks(size).collect());
    }
    out
}

/// Every chunking gives the events of the whole feed.
fn assert_chunkings_agree(data: &[u8], midstream: bool) -> Vec<TlsEvent> {
    let (whole, r) = feed_all(TlsSniffer::new(midstream), &[data]);
    for chunks in chunkings(data) {
        let (got, r2) = feed_all(TlsSniffer::new(midstream), &chunks);
        assert_eq!(got, whole);
        assert_eq!(r.is_ok(), r2.is_ok());
    }
    whole
}

fn ext(etype: u16, body: &[u8]) -> Vec<u8> {
    let mut v = etype.to_be_bytes().to_vec();
    v.extend_from_slice(&(body.len() as u16).to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn u16s(values: &[u16], width: usize) -> Vec<u8> {
    let body: Vec<u8> = values.iter().flat_map(|v| v.to_be_bytes()).collect();
    let mut v = body.len().to_be_bytes()[8 - width..].to_vec();
    v.extend_from_slice(&body);
    v
}

fn hs_msg(htype: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![htype];
    m.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    m.extend_from_slice(body);
    m
}

fn records(ctype: u8, payload: &[u8], size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in payload.chunks(size) {
        out.push(ctype);
        out.extend_from_slice(&0x0303u16.to_be_bytes());
        out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

fn client_hello_msg(ciphers: &[u16], extensions: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let exts: Vec<u8> = extensions.iter().flat_map(|(t, b)| ext(*t, b)).collect();
    let mut body = 0x0303u16.to_be_bytes().to_vec();
    body.extend(0u8..32);
    body.push(0);
    body.extend(u16s(ciphers, 2));
    body.extend_from_slice(&[1, 0]);
    body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    body.extend(exts);
    hs_msg(1, &body)
}

fn build_client_hello(ciphers: &[u16], extensions: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let msg = client_hello_msg(ciphers, extensions);
    let mut out = vec![22, 3, 1];
    out.extend_from_slice(&(msg.len() as u16).to_be_bytes());
    out.extend(msg);
    out
}

fn sni_ext(name: &str) -> Vec<u8> {
    let mut entry = vec![0u8];
    entry.extend_from_slice(&(name.len() as u16).to_be_bytes());
    entry.extend_from_slice(name.as_bytes());
    let mut v = (entry.len() as u16).to_be_bytes().to_vec();
    v.extend(entry);
    v
}

fn alpn_ext(protos: &[&[u8]]) -> Vec<u8> {
    let body: Vec<u8> = protos
        .iter()
        .flat_map(|p| {
            let mut v = vec![p.len() as u8];
            v.extend_from_slice(p);
            v
        })
        .collect();
    let mut v = (body.len() as u16).to_be_bytes().to_vec();
    v.extend(body);
    v
}

fn chrome_like_hello() -> Vec<u8> {
    let ciphers = [
        0x2A2A, 4865, 4866, 4867, 49195, 49199, 49196, 49200, 52393, 52392, 49171, 49172, 156, 157,
        47, 53,
    ];
    let sigs = [
        0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
    ];
    let exts: Vec<(u16, Vec<u8>)> = vec![
        (0x3A3A, vec![]),
        (45, vec![1, 1]),
        (51, vec![0, 0]),
        (16, alpn_ext(&[b"h2", b"http/1.1"])),
        (65037, vec![0]),
        (23, vec![]),
        (17613, b"\x00\x03\x02h2".to_vec()),
        (0, sni_ext("tls-outer.browserleaks.com")),
        (11, vec![1, 0]),
        (10, u16s(&[0x4A4A, 4588, 29, 23, 24], 2)),
        (43, vec![6, 0x5A, 0x5A, 3, 4, 3, 3]),
        (65281, vec![0]),
        (35, vec![]),
        (18, vec![]),
        (5, vec![1, 0, 0, 0, 0]),
        (13, u16s(&sigs, 2)),
        (27, vec![2, 0, 2]),
        (0x6A6A, vec![0]),
    ];
    build_client_hello(&ciphers, &exts)
}

#[test]
fn published_chrome_fingerprint() {
    let hello = chrome_like_hello();
    let ch = &hellos(&assert_chunkings_agree(&hello, false))[0];
    assert_eq!(
        ch.ja3,
        "771,4865-4866-4867-49195-49199-49196-49200-52393-52392-49171-49172-156-157-47-53,\
         45-51-16-65037-23-17613-0-11-10-43-65281-35-18-5-13-27,4588-29-23-24,0"
    );
    assert_eq!(ch.ja3_hash, "98487aa16281980e7d1120d399efb6a4");
    assert_eq!(ch.ja4, "t13d1516h2_8daaf6152771_d8a2da3f94cd");
    assert_eq!(
        ch.ja4_r,
        "t13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9_\
         0005,000a,000b,000d,0012,0017,001b,0023,002b,002d,0033,44cd,fe0d,ff01_\
         0403,0804,0401,0503,0805,0501,0806,0601"
    );
    assert_eq!(ch.sni.as_deref(), Some("tls-outer.browserleaks.com"));
    assert_eq!(ch.alpn, vec!["h2", "http/1.1"]);
    assert_eq!(ch.supported_versions, vec![0x0304, 0x0303]);
    assert_eq!(ch.record_version, 0x0301);
    assert!(ch.cipher_suites.contains(&0x2A2A)); // raw lists keep GREASE
    assert_eq!(ch.extensions.len(), 18);
}

#[test]
fn ja4_edge_cases() {
    let ch = &hellos(&events(&build_client_hello(&[], &[])))[0];
    assert_eq!(ch.ja4, "t12i000000_000000000000_000000000000");
    assert_eq!(ch.ja3, "771,,,,");
    // Only SNI and ALPN: counted in the 'a' part, absent from the extension hash.
    let hello = build_client_hello(
        &[0x1301],
        &[
            (0, sni_ext("Pool.Example.COM.")),
            (16, alpn_ext(&[b"\xab\xcd"])),
        ],
    );
    let ch = &hellos(&events(&hello))[0];
    assert_eq!(ch.sni.as_deref(), Some("pool.example.com"));
    assert!(ch.ja4.starts_with("t12d0102ad_"), "{}", ch.ja4);
    assert!(ch.ja4.ends_with("_000000000000"));
    assert_eq!(ch.alpn, vec!["\\xab\\xcd"]);
    let hello = build_client_hello(&[0x1301], &[(16, alpn_ext(&[b"x"]))]);
    assert_eq!(&hellos(&events(&hello))[0].ja4[8..10], "xx");
    let hello = build_client_hello(&[0x1301], &[(16, alpn_ext(&[b"0\xab"]))]);
    assert_eq!(&hellos(&events(&hello))[0].ja4[8..10], "3b");
    // No sig algs: the extension string is hashed without a trailing underscore.
    let hello = build_client_hello(&[0x1301], &[(23, vec![]), (0xFF01, vec![0])]);
    let ch = &hellos(&events(&hello))[0];
    assert_eq!(
        ch.ja4.split('_').nth(2),
        Some(&*hello::sha12_for_tests("0017,ff01"))
    );
    // Counts saturate at 99.
    let many: Vec<u16> = (1..150).collect();
    assert_eq!(
        &hellos(&events(&build_client_hello(&many, &[])))[0].ja4[4..6],
        "99"
    );
    assert_eq!(ja4_version_code(0x0300), "s3");
    assert_eq!(ja4_version_code(0x1234), "00");
    // A host name that is only dots is no SNI, and it still hides later names.
    let mut list = sni_ext(".");
    let second = sni_ext("b.example");
    list.extend_from_slice(&second[2..]);
    let n = (list.len() - 2) as u16;
    list[..2].copy_from_slice(&n.to_be_bytes());
    let ch = &hellos(&events(&build_client_hello(&[1], &[(0, list)])))[0];
    assert_eq!(ch.sni, None);
}

#[test]
fn grease_predicate() {
    assert_eq!((0..=u16::MAX).filter(|&v| is_grease(v)).count(), 16);
    assert!((0..16u16).all(|i| is_grease(0x0A0A + 0x1010 * i)));
}

#[test]
fn chrome_capture_client_hellos() {
    let ev = assert_chunkings_agree(CHROME0_CLIENT, false);
    let ch = &hellos(&ev)[0];
    assert_eq!(ch.sni.as_deref(), Some("www.iit.cnr.it"));
    assert_eq!(ch.alpn, vec!["h2", "http/1.1"]);
    assert_eq!((ch.record_version, ch.handshake_version), (0x0301, 0x0303));
    assert_eq!(ch.supported_versions, vec![0x0304, 0x0303, 0x0302, 0x0301]);
    assert_eq!(
        ch.ja3,
        "771,4867-4865-4866-52393-52392-49195-49199-49196-49200-49171-49172-156-157-47-53,\
         0-23-65281-10-11-35-16-5-13-18-51-45-43-27-17513-21,29-23-24,0"
    );
    assert_eq!(ch.ja3_hash, "aa50c12a5dfa717d9d6ab34e97de79d5"); // tshark agrees
    assert_eq!(ch.ja4, "t13d1516h2_8daaf6152771_e5627efa2ab1");
    assert_eq!(
        ch.ja4_r,
        "t13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9_\
         0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01_\
         0403,0804,0401,0503,0805,0501,0806,0601"
    );
    assert_eq!(ch.cipher_suites[0], 39578);
    assert_eq!(
        ch.extensions,
        vec![19018, 0, 23, 65281, 10, 11, 35, 16, 5, 13, 18, 51, 45, 43, 27, 17513, 27242, 21]
    );
    assert_eq!(&ev[1..], &[rec(20, 1), rec(23, 69), rec(23, 745)]);

    let ev = assert_chunkings_agree(CHROME1_CLIENT, false);
    let ch = &hellos(&ev)[0];
    assert_eq!(ch.ja3_hash, "1b73862eae8f1711440a446b1ef357fd");
    assert_eq!(ch.ja4, "t13d1516h2_8daaf6152771_9b887d9acb53");
    assert_eq!(&ev[1..], &[rec(20, 1), rec(23, 69), rec(23, 712)]);
}

#[test]
fn parse_client_hello_on_message() {
    let msg = &CHROME0_CLIENT[5..517];
    let ch = parse_client_hello(0x0301, &msg[4..]).unwrap();
    assert_eq!(ch.ja4, "t13d1516h2_8daaf6152771_e5627efa2ab1");
    assert!(parse_client_hello_quic(&msg[4..])
        .unwrap()
        .ja4
        .starts_with("q13d"));
    assert!(parse_client_hello(0x0301, &msg[4..msg.len() - 1]).is_err());
    for cut in 0..msg.len() - 4 {
        let _ = parse_client_hello(0x0301, &msg[4..4 + cut]);
    }
}

#[test]
fn chrome_capture_server_side() {
    let ev = assert_chunkings_agree(CHROME0_SERVER, false);
    assert_eq!(
        ev,
        vec![
            TlsEvent::ServerHello(ServerHelloInfo {
                version: 0x0304,
                cipher_suite: 4866,
                alpn: None
            }),
            rec(20, 1),
            rec(23, 42),
            rec(23, 3041),
            rec(23, 281),
            rec(23, 69),
            rec(23, 298),
            rec(23, 298),
            rec(23, 479),
            rec(23, 8100),
        ]
    );
}

#[test]
fn truncated_at_every_index() {
    for stream in [CHROME0_CLIENT, CHROME1_CLIENT, &chrome_like_hello()[..]] {
        let hello_end = 5 + usize::from(u16::from_be_bytes([stream[3], stream[4]]));
        let full = events(&stream[..hello_end]);
        assert_eq!(hellos(&full).len(), 1);
        let whole = events(stream);
        for cut in 0..hello_end {
            let mut s = TlsSniffer::new(false);
            let mut out = Vec::new();
            s.feed(&stream[..cut], &mut out).unwrap();
            assert!(out.is_empty(), "{cut}");
            s.feed(&stream[cut..], &mut out).unwrap();
            assert_eq!(out, whole, "{cut}");
        }
    }
    // Cuts anywhere in a whole stream, also past the hello, lose nothing.
    let whole = events(CHROME0_SERVER);
    for cut in 0..=CHROME0_SERVER.len() {
        let (got, r) = feed_all(
            TlsSniffer::new(false),
            &[&CHROME0_SERVER[..cut], &CHROME0_SERVER[cut..]],
        );
        r.unwrap();
        assert_eq!(got, whole, "{cut}");
    }
}

fn server_hello_msg(version: u16, cipher: u16, exts: &[u8], random: Option<&[u8]>) -> Vec<u8> {
    let mut body = version.to_be_bytes().to_vec();
    body.extend_from_slice(random.unwrap_or(&[0u8; 32]));
    body.push(0);
    body.extend_from_slice(&cipher.to_be_bytes());
    body.push(0);
    if !exts.is_empty() {
        body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        body.extend_from_slice(exts);
    }
    hs_msg(2, &body)
}

fn certificate_msg(ders: &[&[u8]]) -> Vec<u8> {
    let mut entries = Vec::new();
    for d in ders {
        entries.extend_from_slice(&(d.len() as u32).to_be_bytes()[1..]);
        entries.extend_from_slice(d);
    }
    let mut body = (entries.len() as u32).to_be_bytes()[1..].to_vec();
    body.extend(entries);
    hs_msg(11, &body)
}

fn tls12_server_flight() -> Vec<u8> {
    let alpn = ext(16, &alpn_ext(&[b"http/1.1"]));
    let mut hs = server_hello_msg(0x0303, 0xC02F, &alpn, None);
    hs.extend(certificate_msg(&[LEAF_DER, LEAF_DER]));
    hs.extend_from_slice(b"\x0e\x00\x00\x00"); // ServerHelloDone
    let mut out = records(22, &hs, 300); // the certificate spans several records
    out.extend(records(20, b"\x01", 16384));
    out.extend(records(22, &[0u8; 40], 16384)); // encrypted Finished: not parsed
    out.extend(records(23, &[0u8; 100], 16384));
    out.extend(records(21, &[0u8; 26], 16384));
    out
}

#[test]
fn tls12_server_flight_names() {
    let whole = assert_chunkings_agree(&tls12_server_flight(), false);
    assert_eq!(
        whole,
        vec![
            TlsEvent::ServerHello(ServerHelloInfo {
                version: 0x0303,
                cipher_suite: 0xC02F,
                alpn: Some("http/1.1".into())
            }),
            TlsEvent::Certificate(CertNames {
                subject_cn: Some("pool.example.net".into()),
                san_dns: vec!["pool.example.net".into(), "*.example.net".into()],
                issuer_cn: Some("Lab Issuing CA".into()),
            }),
            rec(20, 1),
            rec(22, 40),
            rec(23, 100),
            rec(21, 26),
        ]
    );
}

#[test]
fn certificate_der_cut_or_damaged_gives_no_names() {
    assert!(cert::names_from_der(LEAF_DER).is_some());
    for cut in 0..LEAF_DER.len() {
        assert_eq!(cert::names_from_der(&LEAF_DER[..cut]), None, "{cut}");
    }
    for i in 0..LEAF_DER.len() {
        let mut d = LEAF_DER.to_vec();
        d[i] ^= 0xFF;
        let _ = cert::names_from_der(&d);
    }
}

#[test]
fn broken_certificate_is_no_event() {
    let mut hs = server_hello_msg(0x0303, 0x002F, &[], None);
    hs.extend(certificate_msg(&[b"\x30\x03\x02\x01\x00"]));
    assert_eq!(
        events(&records(22, &hs, 16384)),
        vec![TlsEvent::ServerHello(ServerHelloInfo {
            version: 0x0303,
            cipher_suite: 0x002F,
            alpn: None
        })]
    );
}

#[test]
fn hello_retry_request_then_real_server_hello() {
    let hrr_random = [
        0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8,
        0x91, 0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8,
        0x33, 0x9c,
    ];
    let sv = ext(43, b"\x03\x04");
    let hrr = server_hello_msg(0x0303, 0x1301, &sv, Some(&hrr_random));
    let mut real_exts = sv.clone();
    real_exts.extend(ext(16, &alpn_ext(&[b"h2"])));
    let real = server_hello_msg(0x0303, 0x1301, &real_exts, None);
    let mut stream = records(22, &hrr, 16384);
    stream.extend(records(20, b"\x01", 16384));
    stream.extend(records(22, &real, 16384));
    stream.extend(records(23, b"xxxxxxxxx", 16384));
    assert_eq!(
        assert_chunkings_agree(&stream, false),
        vec![
            rec(20, 1),
            TlsEvent::ServerHello(ServerHelloInfo {
                version: 0x0304,
                cipher_suite: 0x1301,
                alpn: Some("h2".into())
            }),
            rec(23, 9),
        ]
    );
    let (sh, is_hrr) = parse_server_hello(&hrr).unwrap();
    assert!(is_hrr);
    assert_eq!(sh.version, 0x0304);
}

#[test]
fn second_client_hello_after_compat_ccs() {
    let msg = &CHROME0_CLIENT[5..517];
    let mut stream = records(22, msg, 16384);
    stream.extend(records(20, b"\x01", 16384));
    stream.extend(records(22, msg, 16384));
    stream.extend(records(23, b"z", 16384));
    let h = hellos(&assert_chunkings_agree(&stream, false));
    assert_eq!(h.len(), 2);
    assert_eq!(h[0].record_version, 0x0303);
    assert_eq!(h[0], h[1]);
}

#[test]
fn oversized_handshake_is_counted_not_fatal() {
    let mut hs = server_hello_msg(0x0303, 0x002F, &[], None);
    hs.extend(certificate_msg(&[LEAF_DER; 40]));
    let mut stream = records(22, &hs, 1000);
    stream.extend(records(23, b"q", 16384));
    for chunks in chunkings(&stream) {
        let mut s = TlsSniffer::with_max_handshake(false, 2000);
        let mut out = Vec::new();
        for c in chunks {
            s.feed(c, &mut out).unwrap();
        }
        assert_eq!(s.overflow, 1);
        assert_eq!(
            out,
            vec![
                TlsEvent::ServerHello(ServerHelloInfo {
                    version: 0x0303,
                    cipher_suite: 0x002F,
                    alpn: None
                }),
                rec(23, 1)
            ]
        );
    }
}

#[test]
fn not_tls_is_an_error_and_stays_one() {
    let cases: [&[u8]; 9] = [
        b"GET / HTTP/1.1\r\n\r\n",
        b"\x80\x2e\x01\x00\x02\x00\x15",
        b"\x16\x02\x00\x00\x05hello",
        b"\x16\x03\x05\x00\x05hello",
        b"\x19\x03\x03\x00\x01a",
        b"\x17\x03\x03\x48\x01",
        b"{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[]}\n",
        b"\x16\x03\x01\x00\x04\x63\x00\x00\x00",
        b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00",
    ];
    for data in cases {
        let mut s = TlsSniffer::new(false);
        let mut out = Vec::new();
        assert!(s.feed(data, &mut out).is_err(), "{data:?}");
        assert!(s.feed(b"", &mut out).is_err());
        assert!(out.is_empty());
    }
}

#[test]
fn bad_record_after_good_ones() {
    let mut s = TlsSniffer::new(false);
    let mut out = Vec::new();
    s.feed(CHROME0_CLIENT, &mut out).unwrap();
    assert!(s.feed(&[0u8; 10], &mut out).is_err());
}

#[test]
fn midstream_resync_on_application_data() {
    let stream = CHROME0_SERVER;
    let reference: Vec<TlsEvent> = events(stream)
        .into_iter()
        .filter(|e| matches!(e, TlsEvent::Record { .. }))
        .collect();
    let hello_end = 5 + usize::from(u16::from_be_bytes([stream[3], stream[4]]));
    for start in hello_end + 1..hello_end + 400 {
        let (ev, r) = feed_all(TlsSniffer::new(true), &[&stream[start..]]);
        r.unwrap();
        assert!(!ev.is_empty(), "{start}");
        assert!(
            reference.ends_with(&ev),
            "{start}: {ev:?} not a tail of the reference"
        );
        let (bytewise, _) = feed_all(
            TlsSniffer::new(true),
            &stream[start..].chunks(1).collect::<Vec<_>>(),
        );
        assert_eq!(bytewise, ev, "{start}");
    }
}

#[test]
fn midstream_at_record_start_parses_hello() {
    let ev = assert_chunkings_agree(CHROME0_CLIENT, true);
    assert_eq!(hellos(&ev)[0].ja3_hash, "aa50c12a5dfa717d9d6ab34e97de79d5");
}

#[test]
fn midstream_gives_up_on_garbage() {
    let noise: Vec<u8> = (0..4096u32).map(|i| ((i * 7 + 1) % 20) as u8).collect();
    let mut s = TlsSniffer::new(true);
    let mut out = Vec::new();
    let mut fed = 0;
    while fed < 40 && s.feed(&noise, &mut out).is_ok() {
        fed += 1;
    }
    // The scan is bounded by two maximal records (about 37 KB), not by the stream length.
    assert!((8..=10).contains(&fed), "{fed}");
    assert!(s.buffered() < 8);
}

#[test]
fn application_data_not_buffered() {
    let mut s = TlsSniffer::new(false);
    let mut out = Vec::new();
    s.feed(&records(20, b"\x01", 10), &mut out).unwrap();
    out.clear();
    s.feed(b"\x17\x03\x03\x3e\x80", &mut out).unwrap();
    s.feed(&[0u8; 100], &mut out).unwrap();
    assert_eq!(out, vec![rec(23, 16000)]);
    for _ in 0..159 {
        s.feed(&[0u8; 100], &mut out).unwrap();
        assert_eq!(s.buffered(), 0);
    }
    assert_eq!(out.len(), 1);
    s.feed(&records(21, b"\x02\x00", 10), &mut out).unwrap();
    assert_eq!(out, vec![rec(23, 16000), rec(21, 2)]);
}

#[test]
fn megabyte_of_one_byte_segments_is_linear() {
    // 1 MB of maximal application records after a CCS, a byte per call, plus a maximal
    // handshake record a byte at a time: each byte costs O(1), so this finishes quickly
    // even unoptimised.
    let mut stream = records(20, b"\x01", 10);
    let mut hs = Vec::new();
    while hs.len() < 1 << 20 {
        hs.extend(records(23, &[7u8; MAX_RECORD], MAX_RECORD));
    }
    stream.extend(hs);
    let mut s = TlsSniffer::new(false);
    let mut out = Vec::new();
    for b in stream.chunks(1) {
        s.feed(b, &mut out).unwrap();
        assert!(s.buffered() <= MAX_RECORD + 5);
    }
    assert_eq!(out.len(), 1 + (1 << 20) / MAX_RECORD + 1);

    let big = vec![1u8; MAX_RECORD - 4];
    let hello = records(22, &hs_msg(20, &big), MAX_RECORD);
    let mut s = TlsSniffer::new(false);
    for b in hello.chunks(1) {
        s.feed(b, &mut out).unwrap();
    }
    assert_eq!(s.buffered(), 0);
}

fn mutate(base: &[u8], edits: &[(usize, u8)]) -> Vec<u8> {
    let mut d = base.to_vec();
    for &(i, v) in edits {
        if !d.is_empty() {
            let n = d.len();
            d[i % n] = v;
        }
    }
    d
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..4096),
                                   midstream in any::<bool>(), split in any::<usize>()) {
        let cut = if data.is_empty() { 0 } else { split % data.len() };
        let (a, ra) = feed_all(TlsSniffer::new(midstream), &[&data]);
        let (b, rb) = feed_all(TlsSniffer::new(midstream), &[&data[..cut], &data[cut..]]);
        prop_assert_eq!(a, b);
        prop_assert_eq!(ra.is_ok(), rb.is_ok());
        let _ = parse_client_hello(0x0301, &data);
        let _ = parse_server_hello(&data);
        let _ = parse_certificate_names(&data);
        let _ = cert::names_from_der(&data);
    }

    #[test]
    fn mutated_streams_never_panic_and_agree_across_chunkings(
        which in 0usize..4,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        size in 1usize..600,
        midstream in any::<bool>(),
    ) {
        let flight = tls12_server_flight();
        let hello = chrome_like_hello();
        let base: &[u8] = match which {
            0 => CHROME0_CLIENT,
            1 => CHROME0_SERVER,
            2 => &flight,
            _ => &hello,
        };
        let data = mutate(base, &edits);
        let (a, ra) = feed_all(TlsSniffer::new(midstream), &[&data]);
        let (b, rb) = feed_all(TlsSniffer::new(midstream), &data.chunks(size).collect::<Vec<_>>());
        prop_assert_eq!(a, b);
        prop_assert_eq!(ra.is_ok(), rb.is_ok());
        let _ = cert::names_from_der(&mutate(LEAF_DER, &edits));
    }
}
