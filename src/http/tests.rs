//! Cases from tests/test_http.py, fed whole, in every chunking and cut at every index, plus
//! the Content-Length attack, caps, linear work and property tests.

use std::io::Write as _;

use proptest::prelude::*;

use super::*;

const GBT_BODY: &[u8] = b"{\"id\": 0, \"method\": \"getblocktemplate\", \"params\": [{\"capabilities\": [\"coinbasetxn\", \"workid\", \"coinbase/append\"]}]}\n";
const GETWORK_BODY: &[u8] = b"{\"method\": \"getwork\", \"params\": [], \"id\":0}\n";
const WORK_JSON: &[u8] = b"{\"result\":{\"data\":\"00000001c570c4764aadda351b5c\",\"target\":\"ffffffffffffffffffff\"},\"error\":null,\"id\":0}";

fn gbt_request() -> Vec<u8> {
    let mut v = b"POST / HTTP/1.1\r\nAuthorization: Basic Qml0Y29pbjp4\r\n\
Host: pool.example.net:3333\r\nAccept: */*\r\nAccept-Encoding: deflate, gzip\r\n\
Content-type: application/json\r\n\
X-Mining-Extensions: longpoll midstate rollntime submitold\r\n"
        .to_vec();
    v.extend(format!("Content-Length: {}\r\n", GBT_BODY.len()).bytes());
    v.extend_from_slice(b"User-Agent: cgminer 3.7.2\r\n\r\n");
    v.extend_from_slice(GBT_BODY);
    v
}

fn getwork_request() -> Vec<u8> {
    let mut v = b"POST / HTTP/1.1\r\nHost: pool.example.net:3333\r\nUser-Agent: bfgminer/5.2.0\r\n"
        .to_vec();
    v.extend(format!("Content-Length: {}\r\n\r\n", GETWORK_BODY.len()).bytes());
    v.extend_from_slice(GETWORK_BODY);
    v
}

fn chunked_response() -> Vec<u8> {
    let mut v = b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: application/json\r\n\
Transfer-Encoding: chunked\r\nX-Long-Polling: /LP\r\n\
X-Stratum: stratum+tcp://pool.example.net:3333\r\nConnection: keep-alive\r\n\r\n"
        .to_vec();
    v.extend(format!("{:x};ext=1\r\n", 20).bytes());
    v.extend_from_slice(&WORK_JSON[..20]);
    v.extend(format!("\r\n{:x}\r\n", WORK_JSON.len() - 20).bytes());
    v.extend_from_slice(&WORK_JSON[20..]);
    v.extend_from_slice(b"\r\n0\r\nX-Trailer: yes\r\n\r\n");
    v
}

fn stream() -> Vec<u8> {
    let mut v = gbt_request();
    v.extend(getwork_request());
    v.extend_from_slice(b"GET /favicon.ico HTTP/1.0\r\nHost: x\r\n\r\n");
    v
}

fn feed_chunks(mut s: HttpSniffer, chunks: &[&[u8]]) -> (Vec<HttpHead>, bool) {
    let mut out = Vec::new();
    for c in chunks {
        if s.feed(c, &mut out).is_err() {
            return (out, false);
        }
    }
    s.close(&mut out);
    (out, true)
}

fn msgs(data: &[u8]) -> Vec<HttpHead> {
    let (out, ok) = feed_chunks(HttpSniffer::new(), &[data]);
    assert!(ok);
    out
}

fn fails(data: &[u8]) -> bool {
    !feed_chunks(HttpSniffer::new(), &[data]).1
}

/// Whole, every fixed chunking and every two-piece cut give the same messages and fate.
fn assert_agree(data: &[u8]) -> Vec<HttpHead> {
    let (whole, ok) = feed_chunks(HttpSniffer::new(), &[data]);
    for size in [1usize, 2, 3, 7, 100] {
        let got = feed_chunks(HttpSniffer::new(), &data.chunks(size).collect::<Vec<_>>());
        assert_eq!(got, (whole.clone(), ok), "size {size}");
    }
    for cut in 0..=data.len() {
        let got = feed_chunks(HttpSniffer::new(), &[&data[..cut], &data[cut..]]);
        assert_eq!(got, (whole.clone(), ok), "cut {cut}");
    }
    whole
}

#[test]
fn getblocktemplate_request_facts() {
    let m = &msgs(&gbt_request())[0];
    assert!(m.is_request);
    assert_eq!(
        (m.method.as_deref(), m.path.as_deref(), m.status),
        (Some("POST"), Some("/"), None)
    );
    assert_eq!(m.host.as_deref(), Some("pool.example.net:3333"));
    assert_eq!(m.user_agent.as_deref(), Some("cgminer 3.7.2"));
    assert_eq!(m.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        m.x_mining_extensions.as_deref(),
        Some("longpoll midstate rollntime submitold")
    );
    assert_eq!(m.authorization_user.as_deref(), Some("Bitcoin"));
    assert_eq!(m.body, GBT_BODY.trim_ascii_end());
}

#[test]
fn chunked_response_with_pool_headers() {
    let mut s = HttpSniffer::new();
    let mut out = Vec::new();
    s.feed(&chunked_response(), &mut out).unwrap();
    let m = &out[0];
    assert!(!m.is_request);
    assert_eq!(m.status, Some(200));
    assert_eq!(
        m.x_stratum.as_deref(),
        Some("stratum+tcp://pool.example.net:3333")
    );
    assert_eq!(m.x_long_polling.as_deref(), Some("/LP"));
    assert_eq!(m.body, WORK_JSON);
    assert_eq!(s.buffered(), 0);
}

#[test]
fn pipelined_requests_any_chunking_and_every_cut() {
    let got = assert_agree(&stream());
    let heads: Vec<_> = got
        .iter()
        .map(|m| (m.method.as_deref(), m.path.as_deref()))
        .collect();
    assert_eq!(
        heads,
        vec![
            (Some("POST"), Some("/")),
            (Some("POST"), Some("/")),
            (Some("GET"), Some("/favicon.ico"))
        ]
    );
    assert_eq!(got[1].body, GETWORK_BODY.trim_ascii_end());
    assert!(got[2].body.is_empty());
    let mut two = chunked_response();
    two.extend(chunked_response());
    assert_eq!(assert_agree(&two).len(), 2);
}

#[test]
fn lf_only_head_and_until_close() {
    let body = b"{\"id\":1,\"result\":true,\"error\":null}";
    let mut data = format!("HTTP/1.0 200 OK\nContent-Length: {}\n\n", body.len()).into_bytes();
    data.extend_from_slice(body);
    let m = &assert_agree(&data)[0];
    assert_eq!((m.status, &m.body[..]), (Some(200), &body[..]));

    let mut s = HttpSniffer::new();
    let mut out = Vec::new();
    let mut data = b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n".to_vec();
    data.extend_from_slice(WORK_JSON);
    s.feed(&data, &mut out).unwrap();
    assert!(out.is_empty());
    s.close(&mut out);
    assert_eq!(out[0].body, WORK_JSON);
    s.close(&mut out);
    assert_eq!(out.len(), 1);
}

#[test]
fn no_body_statuses() {
    let data = b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\n\r\n\
HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    let st: Vec<_> = assert_agree(data).iter().map(|m| m.status).collect();
    assert_eq!(st, vec![Some(204), Some(304), Some(200)]);
}

#[test]
fn body_over_cap_is_dropped_but_framing_kept() {
    let mut big = b"{\"id\":1,\"method\":\"getwork\",\"params\":[\"".to_vec();
    big.extend(std::iter::repeat_n(b'0', 5000));
    big.extend_from_slice(b"\"]}");
    let mut req = format!("POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n", big.len()).into_bytes();
    req.extend(big);
    req.extend(getwork_request());
    let mut s = HttpSniffer::with_limits(DEFAULT_MAX_HEAD, 1024);
    let mut out = Vec::new();
    for c in req.chunks(333) {
        s.feed(c, &mut out).unwrap();
        assert!(s.buffered() <= DEFAULT_MAX_HEAD + 1024);
    }
    assert_eq!(out.len(), 2);
    assert!(out[0].body.is_empty());
    assert_eq!(out[1].body, GETWORK_BODY.trim_ascii_end());
    assert_eq!(s.overflow, 1);
}

#[test]
fn head_over_cap_stops_decoding_without_error() {
    let mut s = HttpSniffer::with_limits(256, DEFAULT_MAX_BODY);
    let mut out = Vec::new();
    let mut data = b"GET / HTTP/1.1\r\nX-Pad: ".to_vec();
    data.extend(std::iter::repeat_n(b'a', 1000));
    data.extend_from_slice(b"\r\n");
    s.feed(&data, &mut out).unwrap();
    assert_eq!(s.overflow, 1);
    s.feed(&getwork_request(), &mut out).unwrap();
    assert!(out.is_empty());
    assert_eq!(s.buffered(), 0);
}

#[test]
fn head_cap_does_not_depend_on_segmentation() {
    // A head whose blank line starts exactly at the cap is accepted however it arrives.
    for max in [40usize, 41, 42, 43, 44] {
        let data = b"GET / HTTP/1.1\r\nHost: aaaaaaaaaaaaaaaaaaaa\r\n\r\nGET / HTTP/1.1\r\n\r\n";
        let mut results = Vec::new();
        for size in [1usize, 2, 3, data.len()] {
            let mut s = HttpSniffer::with_limits(max, 100);
            let mut out = Vec::new();
            for c in data.chunks(size) {
                s.feed(c, &mut out).unwrap();
            }
            results.push((out.len(), s.overflow));
        }
        assert!(
            results.windows(2).all(|w| w[0] == w[1]),
            "{max}: {results:?}"
        );
    }
}

fn with_encoding(coding: &str, body: &[u8]) -> Vec<u8> {
    let mut data = format!(
        "HTTP/1.1 200 OK\r\nContent-Encoding: {coding}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    data.extend_from_slice(body);
    data
}

#[test]
fn gzip_and_deflate_bodies() {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(WORK_JSON).unwrap();
    let gz = gz.finish().unwrap();
    let mut zl = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    zl.write_all(WORK_JSON).unwrap();
    let zl = zl.finish().unwrap();
    let raw = zl[2..zl.len() - 4].to_vec();
    for (coding, body) in [("gzip", &gz), ("deflate", &zl), ("deflate", &raw)] {
        let m = &msgs(&with_encoding(coding, body))[0];
        assert_eq!(m.body, WORK_JSON, "{coding}");
    }
}

#[test]
fn gzip_bomb_is_capped() {
    let mut inner = vec![b'['];
    inner.extend(std::iter::repeat_n(b' ', 2_000_000));
    inner.push(b']');
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&inner).unwrap();
    let gz = gz.finish().unwrap();
    let mut s = HttpSniffer::new();
    let mut out = Vec::new();
    s.feed(&with_encoding("gzip", &gz), &mut out).unwrap();
    assert!(out[0].body.is_empty());
    assert_eq!(s.overflow, 1);
}

#[test]
fn non_json_body_is_not_kept() {
    let m = &msgs(b"HTTP/1.1 200 OK\r\nContent-Length: 18\r\n\r\n<html>hello</html>")[0];
    assert!(m.body.is_empty());
    let m = &msgs(b"POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\n{not json")[0];
    assert!(m.body.is_empty()); // it starts like JSON but is not
                                // JSON that names no method, result or error is not JSON-RPC (a REST body).
    let m = &msgs(b"POST / HTTP/1.1\r\nContent-Length: 12\r\n\r\n{\"user\":\"x\"}")[0];
    assert!(m.body.is_empty());
    // A body whose first line is JSON-RPC and the rest is not: the lines decide.
    let body = b"{\"method\":\"getwork\",\"id\":1}\ntrailing junk";
    let mut data =
        format!("POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    data.extend_from_slice(body);
    assert_eq!(msgs(&data)[0].body, body.to_vec());
}

#[test]
fn websocket_upgrade_goes_quiet() {
    let mut req = b"GET /proxy HTTP/1.1\r\nHost: ws.example.org\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n"
        .to_vec();
    req.extend_from_slice(b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58");
    let mut s = HttpSniffer::new();
    let mut out = Vec::new();
    s.feed(&req, &mut out).unwrap();
    assert_eq!(out[0].upgrade.as_deref(), Some("websocket"));
    s.feed(b"\x82\x7e\x00\x10\x00\x00", &mut out).unwrap();
    assert_eq!(out.len(), 1);
    let r = assert_agree(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello",
    );
    assert_eq!(
        (r[0].status, r[0].upgrade.as_deref()),
        (Some(101), Some("websocket"))
    );
}

#[test]
fn authorization_variants() {
    let user = |v: &str| {
        msgs(format!("GET / HTTP/1.1\r\nAuthorization: {v}\r\n\r\n").as_bytes())[0]
            .authorization_user
            .clone()
    };
    assert_eq!(
        user("Basic d2FsbGV0Lndvcmtlcjpwdw==").as_deref(),
        Some("wallet.worker")
    );
    assert_eq!(user("basic bm9jb2xvbg==").as_deref(), Some("nocolon"));
    assert_eq!(user("Bearer abc.def"), None);
    assert_eq!(user("Basic !!!notbase64"), None);
    assert_eq!(user("Basic bm9jb2xvbg"), None); // binascii wants the padding
    assert_eq!(user("Basic YQ="), None);
    assert_eq!(user("Basic YWI=").as_deref(), Some("ab"));
    assert_eq!(user("Basic YWJj==").as_deref(), Some("abc"));
    assert_eq!(user("Basic YWI=="), None);
    assert_eq!(user("Basic YWJj").as_deref(), Some("abc"));
}

#[test]
fn not_http_is_an_error_and_stays_one() {
    let cases: [&[u8]; 6] = [
        b"{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[]}\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        b"SSH-2.0-OpenSSH_9.6\r\n",
        b"get / HTTP/1.1\r\n\r\n",
        b"GET / SPDY/3\r\n\r\n",
        b"HTTP/1.1 OK\r\n\r\n",
    ];
    for data in cases {
        let mut s = HttpSniffer::new();
        let mut out = Vec::new();
        assert!(s.feed(data, &mut out).is_err(), "{data:?}");
        assert!(s.feed(b"GET / HTTP/1.1\r\n\r\n", &mut out).is_err());
        assert!(out.is_empty());
    }
    // A bad start line fails as soon as its line is in, before the head is complete.
    assert!(fails(b"GET / SPDY/3\r\nHost: x\r\n"));
}

#[test]
fn bad_framing_is_an_error() {
    let cases: [&[u8]; 5] = [
        b"POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY",
    ];
    for data in cases {
        assert!(fails(data), "{data:?}");
    }
}

#[test]
fn unicode_content_length_is_an_error_not_a_crash() {
    for cl in [
        "\u{b2}",
        "\u{661}",
        "\u{ff11}",
        "1\u{b2}",
        "+5",
        "-1",
        " ",
        "1 2",
        "0x10",
        "1234567890123456",
    ] {
        let mut data = b"POST / HTTP/1.1\r\nContent-Length: ".to_vec();
        data.extend_from_slice(cl.as_bytes());
        data.extend_from_slice(b"\r\n\r\n{}");
        assert!(fails(&data), "{cl:?}");
        // Latin-1 superscript two as a single byte too.
        let mut data = b"POST / HTTP/1.1\r\nContent-Length: \xb2\r\n\r\n".to_vec();
        data.extend_from_slice(b"{}");
        assert!(fails(&data));
    }
    let ok = msgs(
        b"POST / HTTP/1.1\r\nContent-Length: 015\r\nContent-Length: 015\r\n\r\n{\"result\":true}",
    );
    assert_eq!(ok[0].body, b"{\"result\":true}");
}

#[test]
fn garbage_between_keepalive_messages_fails() {
    let mut s = HttpSniffer::new();
    let mut out = Vec::new();
    s.feed(&getwork_request(), &mut out).unwrap();
    assert_eq!(out.len(), 1);
    assert!(s.feed(b"\x00\x01binary", &mut out).is_err());
}

#[test]
fn leading_blank_lines_are_tolerated() {
    let mut data = b"\r\n\r\n".to_vec();
    data.extend(getwork_request());
    assert_eq!(assert_agree(&data)[0].body, GETWORK_BODY.trim_ascii_end());
}

#[test]
fn long_texts_are_clipped() {
    let data = format!("GET / HTTP/1.1\r\nUser-Agent: {}\r\n\r\n", "u".repeat(2000));
    assert_eq!(
        msgs(data.as_bytes())[0]
            .user_agent
            .as_ref()
            .map(String::len),
        Some(MAX_TEXT)
    );
}

#[test]
fn megabyte_of_one_byte_segments_is_linear() {
    // A 1 MB head a byte at a time: capped at the head limit, each byte O(1).
    let mut s = HttpSniffer::new();
    let mut out = Vec::new();
    s.feed(b"GET / HTTP/1.1\r\nX-Pad: ", &mut out).unwrap();
    for _ in 0..1 << 20 {
        s.feed(b"a", &mut out).unwrap();
        assert!(s.buffered() <= DEFAULT_MAX_HEAD + 4);
    }
    assert_eq!(s.overflow, 1);
    // A head just under the cap with many short lines, a byte at a time.
    let mut head = b"POST / HTTP/1.1\r\n".to_vec();
    while head.len() < DEFAULT_MAX_HEAD - 64 {
        head.extend_from_slice(b"a: b\r\n");
    }
    head.extend_from_slice(b"Content-Length: 2\r\n\r\n{}");
    // 1 MB of chunked body in one-byte chunks, a byte at a time.
    let mut chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..(1 << 20) / 6 {
        chunked.extend_from_slice(b"1\r\nx\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    for data in [&head, &chunked] {
        let mut s = HttpSniffer::new();
        let mut out = Vec::new();
        for b in data.chunks(1) {
            s.feed(b, &mut out).unwrap();
        }
        assert_eq!(out.len(), 1);
    }
}

fn mutate(base: &[u8], edits: &[(usize, u8)]) -> Vec<u8> {
    let mut d = base.to_vec();
    for &(i, v) in edits {
        let n = d.len();
        d[i % n] = v;
    }
    d
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048),
                                   split in any::<usize>()) {
        let cut = if data.is_empty() { 0 } else { split % data.len() };
        let a = feed_chunks(HttpSniffer::new(), &[&data]);
        let b = feed_chunks(HttpSniffer::new(), &[&data[..cut], &data[cut..]]);
        prop_assert_eq!(a, b);
    }

    #[test]
    fn mutated_streams_agree_across_chunkings(
        which in 0usize..3,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        size in 1usize..200,
    ) {
        let base = match which { 0 => stream(), 1 => chunked_response(), _ => gbt_request() };
        let data = mutate(&base, &edits);
        let a = feed_chunks(HttpSniffer::with_limits(256, 64), &[&data]);
        let b = feed_chunks(HttpSniffer::with_limits(256, 64), &data.chunks(size).collect::<Vec<_>>());
        prop_assert_eq!(a, b);
    }

    #[test]
    fn heads_with_text_values_never_panic(name in "[A-Za-z-]{1,20}", value in "\\PC{0,40}") {
        let data = format!("POST / HTTP/1.1\r\n{name}: {value}\r\nContent-Length: {value}\r\n\r\n");
        let _ = feed_chunks(HttpSniffer::new(), &[data.as_bytes()]);
    }
}

#[test]
fn bodies_that_cannot_be_json_are_counted_not_kept() {
    let response = |body: &[u8], extra: &str| {
        let mut v = format!(
            "HTTP/1.1 200 OK\r\n{extra}Content-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        v.extend_from_slice(body);
        v
    };
    // An HTML page is neither buffered nor handed up, in any segmentation, and a cut at
    // the body cap is still counted.
    let page = [b"  \r\n<html>".as_slice(), &[b'x'; 3000]].concat();
    for size in [1usize, 7, 100, 5000] {
        let mut s = HttpSniffer::with_limits(DEFAULT_MAX_HEAD, 1000);
        let mut out = Vec::new();
        let data = response(&page, "");
        let mut held = 0;
        for c in data.chunks(size) {
            s.feed(c, &mut out).unwrap();
            held = held.max(s.buffered());
        }
        assert!(held < 200 + size, "{size}: held {held}");
        assert_eq!(out.len(), 1);
        assert!(out[0].body.is_empty());
        assert_eq!(s.overflow, 1);
    }
    // JSON after leading whitespace still is, however the whitespace arrives.
    let json = [b" \n\t".as_slice(), WORK_JSON].concat();
    for size in [1usize, 2, 3, 500] {
        let mut s = HttpSniffer::new();
        let mut out = Vec::new();
        for c in response(&json, "").chunks(size) {
            s.feed(c, &mut out).unwrap();
        }
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].body, WORK_JSON);
    }
    // A compressed body is kept whole: what matters is what it inflates to.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(WORK_JSON).unwrap();
    let packed = gz.finish().unwrap();
    let mut s = HttpSniffer::new();
    let mut out = Vec::new();
    s.feed(&response(&packed, "Content-Encoding: gzip\r\n"), &mut out)
        .unwrap();
    assert_eq!(out[0].body, WORK_JSON);
}
