//! Stratum V2 shapes: the Noise NX handshake sizes (64-byte initiator answered by a
//! 234-byte responder, uniform-looking bytes), encrypted frame sizes 22 + (n + 16), and the
//! plaintext SetupConnection frame.
//!
//! Behaviour of the retired Python decoder (its tests now run here). SV2 has no magic bytes: an
//! encrypted session is recognised only by its exact sizes, a plaintext one by a well-formed
//! SetupConnection.

use crate::error::DecodeError;

/// "4.5.1 Handshake Act 1": the initiator's ElligatorSwift-encoded (BIP 324) ephemeral key,
/// 64 bytes indistinguishable from random.
pub const ELLSWIFT_LEN: usize = 64;
/// ChaChaPoly tag.
pub const MAC_LEN: usize = 16;
/// "4.5.2 Handshake Act 2": responder ephemeral key (64) + encrypted static key (64 + MAC)
/// + encrypted SIGNATURE_NOISE_MESSAGE (74 + MAC).
pub const RESPONDER_HANDSHAKE_LEN: usize = ELLSWIFT_LEN + (64 + MAC_LEN) + (74 + MAC_LEN);
/// "4.6 Encrypted stream framing": the 6-byte header is encrypted on its own (+ MAC), then
/// the payload (+ MAC); an empty payload still carries its MAC.
pub const FRAME_HEADER_LEN: usize = 6;
pub const MIN_ENCRYPTED_FRAME: usize = FRAME_HEADER_LEN + MAC_LEN + MAC_LEN;

/// "5.3.1 SetupConnection": msg_type 0x00, extension_type 0 (no channel bit).
const SETUP_CONNECTION: u8 = 0x00;
const SETUP_FIXED: usize = 1 + 2 + 2 + 4; // protocol, min_version, max_version, flags
const SETUP_MIN: usize = SETUP_FIXED + 1 + 2 + 4; // 5 empty STR0_255 + endpoint_port
const SETUP_MAX: usize = SETUP_MIN + 5 * 255;
const MAX_PROTOCOL: u8 = 2;

// Thresholds for 64 bytes (see looks_uniform): uniformly random input has on average 56.9
// distinct values, about 24 printable ASCII bytes, and no value (nor difference between
// neighbours, which catches counters and tables) more than 3-4 times; falling outside these
// bounds by chance has a probability below 1e-6 each.
const MIN_DISTINCT: f64 = 40.0;
const MAX_REPEAT: f64 = 8.0;
const MAX_PRINTABLE: f64 = 44.0;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SetupConnection {
    /// 0 mining, 1 job declaration, 2 template distribution.
    pub protocol: u8,
    pub vendor: String,
    pub hardware: String,
    pub firmware: String,
    pub endpoint_host: String,
    pub endpoint_port: u16,
}

/// True when 32..=128 bytes look like uniformly random bytes (keys, ciphertext).
///
/// Text, JSON, zero padding and TLS records fail: they reuse few byte values, are mostly
/// printable, or repeat one value (or one step between neighbours). Random input passes
/// with probability above 1 - 1e-6.
pub fn looks_uniform(data: &[u8]) -> bool {
    let n = data.len();
    if !(32..=128).contains(&n) {
        return false;
    }
    let mut counts = [0u32; 256];
    for &b in data {
        counts[usize::from(b)] += 1;
    }
    let mut strides = [0u32; 256];
    for w in data.windows(2) {
        strides[usize::from(w[1].wrapping_sub(w[0]))] += 1;
    }
    let scale = n as f64 / ELLSWIFT_LEN as f64;
    let distinct = counts.iter().filter(|&&c| c > 0).count() as f64;
    let printable: u32 = counts[0x20..0x7F].iter().sum();
    let max_count = f64::from(*counts.iter().max().unwrap_or(&0));
    let max_stride = f64::from(*strides.iter().max().unwrap_or(&0));
    let repeat_cap = MAX_REPEAT * scale.max(1.0);
    distinct >= MIN_DISTINCT * scale
        && max_count <= repeat_cap
        && f64::from(printable) <= MAX_PRINTABLE * scale
        && max_stride <= repeat_cap
}

/// The client's first payload alone: is it a Noise NX act 1 (64 uniform bytes)? A weaker
/// signal than `noise_handshake`, for when the server has not answered yet.
pub fn noise_initiator(client_first: &[u8], client_first_len: usize) -> bool {
    client_first_len == ELLSWIFT_LEN && client_first.get(..ELLSWIFT_LEN).is_some_and(looks_uniform)
}

/// The client's first payload (its first 64 bytes are enough) and the length of the
/// server's first payload: do they have the Noise NX handshake shape?
pub fn noise_handshake(
    client_first: &[u8],
    client_first_len: usize,
    server_first_len: usize,
) -> bool {
    server_first_len == RESPONDER_HANDSHAKE_LEN && noise_initiator(client_first, client_first_len)
}

/// Could a TCP payload of this size be one encrypted SV2 frame?
pub fn encrypted_frame_plausible(size: usize) -> bool {
    size >= MIN_ENCRYPTED_FRAME
}

/// Total size (header + payload) of the SetupConnection frame `data` starts with, or None
/// when its header does not claim one. Callers buffer that many bytes for parse_plaintext.
pub fn plaintext_frame_length(data: &[u8]) -> Option<usize> {
    let header = data.get(..FRAME_HEADER_LEN)?;
    let ext = u16::from_le_bytes([header[0], header[1]]);
    let msg_type = header[2];
    let length =
        usize::from(header[3]) | usize::from(header[4]) << 8 | usize::from(header[5]) << 16;
    if ext != 0 || msg_type != SETUP_CONNECTION || !(SETUP_MIN..=SETUP_MAX).contains(&length) {
        return None;
    }
    Some(FRAME_HEADER_LEN + length)
}

fn err(msg: impl Into<String>) -> DecodeError {
    DecodeError::new(msg)
}

/// "3.3 Data Types Mapping" STR0_255: u8 length, then that many UTF-8 bytes.
fn str0_255(view: &[u8], pos: usize) -> Result<(String, usize), DecodeError> {
    let Some(&n) = view.get(pos) else {
        return Err(err("SetupConnection ends inside a string length"));
    };
    let end = pos + 1 + usize::from(n);
    let raw = view
        .get(pos + 1..end)
        .ok_or_else(|| err("SetupConnection string overruns the frame"))?;
    let text = std::str::from_utf8(raw).map_err(|_| err("SetupConnection string is not UTF-8"))?;
    Ok((text.to_owned(), end))
}

/// A plaintext SetupConnection frame at the start of `data`; Ok(None) when `data` is not
/// one; Err when it claims to be one and is malformed.
///
/// "Not one" means the 6-byte header does not claim a SetupConnection (or fewer than 6
/// bytes); a header that claims one with a truncated body is an Err, so callers wanting to
/// wait for more bytes use `plaintext_frame_length` first. Bytes after the frame are not
/// this frame's business.
pub fn parse_plaintext(data: &[u8]) -> Result<Option<SetupConnection>, DecodeError> {
    let Some(total) = plaintext_frame_length(data) else {
        return Ok(None);
    };
    if data.len() < total {
        return Err(err(format!(
            "SetupConnection truncated: {} of {total} bytes",
            data.len()
        )));
    }
    let view = &data[FRAME_HEADER_LEN..total];
    // plaintext_frame_length guarantees at least SETUP_MIN bytes.
    let protocol = view[0];
    let min_version = u16::from_le_bytes([view[1], view[2]]);
    let max_version = u16::from_le_bytes([view[3], view[4]]);
    if protocol > MAX_PROTOCOL {
        return Err(err(format!("SetupConnection protocol {protocol} unknown")));
    }
    if min_version > max_version || min_version == 0 {
        return Err(err(format!(
            "SetupConnection versions {min_version}..{max_version}"
        )));
    }
    let (endpoint_host, pos) = str0_255(view, SETUP_FIXED)?;
    let port = view
        .get(pos..pos + 2)
        .ok_or_else(|| err("SetupConnection ends inside endpoint_port"))?;
    let endpoint_port = u16::from_le_bytes([port[0], port[1]]);
    let (vendor, pos) = str0_255(view, pos + 2)?;
    let (hardware, pos) = str0_255(view, pos)?;
    let (firmware, pos) = str0_255(view, pos)?;
    let (_device_id, pos) = str0_255(view, pos)?;
    if pos != view.len() {
        return Err(err(format!(
            "SetupConnection has {} trailing bytes",
            view.len() - pos
        )));
    }
    Ok(Some(SetupConnection {
        protocol,
        vendor,
        hardware,
        firmware,
        endpoint_host,
        endpoint_port,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// splitmix64: deterministic bytes for the uniformity tests.
    struct Rng(u64);

    impl Rng {
        fn bytes(&mut self, n: usize) -> Vec<u8> {
            let mut out = Vec::with_capacity(n + 8);
            while out.len() < n {
                self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = self.0;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
            }
            out.truncate(n);
            out
        }
    }

    struct Setup<'a> {
        protocol: u8,
        min_version: u16,
        max_version: u16,
        host: &'a [u8],
        vendor: &'a [u8],
        hardware: &'a [u8],
        firmware: &'a [u8],
        device: &'a [u8],
        extra: &'a [u8],
    }

    const SETUP: Setup<'static> = Setup {
        protocol: 0,
        min_version: 2,
        max_version: 2,
        host: b"pool.example.org",
        vendor: b"Bitmain",
        hardware: b"S19 Pro",
        firmware: b"braiins-os-2023-06",
        device: b"dev-0001",
        extra: b"",
    };

    fn str0(out: &mut Vec<u8>, s: &[u8]) {
        out.push(s.len() as u8);
        out.extend_from_slice(s);
    }

    fn setup_connection(s: &Setup) -> Vec<u8> {
        let mut payload = vec![s.protocol];
        payload.extend_from_slice(&s.min_version.to_le_bytes());
        payload.extend_from_slice(&s.max_version.to_le_bytes());
        payload.extend_from_slice(&0b0110u32.to_le_bytes());
        str0(&mut payload, s.host);
        payload.extend_from_slice(&34254u16.to_le_bytes());
        for field in [s.vendor, s.hardware, s.firmware, s.device] {
            str0(&mut payload, field);
        }
        payload.extend_from_slice(s.extra);
        let n = payload.len();
        let mut frame = vec![0, 0, 0, n as u8, (n >> 8) as u8, (n >> 16) as u8];
        frame.extend_from_slice(&payload);
        frame
    }

    #[test]
    fn sizes_follow_the_spec() {
        assert_eq!(ELLSWIFT_LEN, 64);
        assert_eq!(RESPONDER_HANDSHAKE_LEN, 234);
        assert_eq!(MIN_ENCRYPTED_FRAME, 38);
        assert!(!encrypted_frame_plausible(37));
        assert!(encrypted_frame_plausible(38));
        assert!(encrypted_frame_plausible(22 + 100 + 16));
    }

    #[test]
    fn random_64_bytes_pass_the_uniformity_test() {
        let mut rng = Rng(20240601);
        let failures = (0..20000)
            .filter(|_| !looks_uniform(&rng.bytes(64)))
            .count();
        assert_eq!(failures, 0);
    }

    #[test]
    fn structured_64_bytes_fail_the_uniformity_test() {
        let cut = |v: Vec<u8>| v[..64].to_vec();
        let mut http =
            b"GET / HTTP/1.1\r\nHost: pool.example.org\r\nUser-Agent: cgminer\r\n\r\n".to_vec();
        http.extend_from_slice(&[b' '; 64]);
        let json = br#"{"id": 1, "method": "mining.subscribe", "params": ["cgminer/4.10.0"]}"#;
        let mut tls = b"\x16\x03\x01\x00\xf4\x01\x00\x00\xf0\x03\x03".to_vec();
        tls.extend(0..32u8);
        tls.extend_from_slice(&[0; 32]);
        let cases = [
            vec![0u8; 64],
            vec![0xffu8; 64],
            (0..64u8).collect(),
            (0..=255u8).step_by(4).collect(),
            cut(http),
            cut(json.to_vec()),
            cut(tls),
            b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do.".to_vec(),
        ];
        for data in cases {
            assert_eq!(data.len(), 64);
            assert!(!looks_uniform(&data), "{data:?}");
        }
    }

    #[test]
    fn uniformity_needs_a_sane_length() {
        let mut rng = Rng(7);
        assert!(!looks_uniform(&rng.bytes(16)));
        assert!(!looks_uniform(&rng.bytes(1000)));
        assert!(looks_uniform(&rng.bytes(128)));
    }

    #[test]
    fn noise_handshake_shapes() {
        let key = Rng(99).bytes(64);
        assert!(noise_initiator(&key, 64));
        assert!(noise_handshake(&key, 64, 234));
        assert!(!noise_handshake(&key, 64, 233));
        assert!(!noise_handshake(&key, 64, 1460));
        assert!(!noise_initiator(&key, 65));
        assert!(!noise_handshake(&key[..63], 63, 234));
        assert!(!noise_handshake(&key[..63], 64, 234));
        assert!(!noise_handshake(&[0; 64], 64, 234));
        assert!(!noise_initiator(&[b'A'; 64], 64));
        // Only the first 64 bytes are looked at.
        let mut longer = key.clone();
        longer.extend_from_slice(&[0; 100]);
        assert!(noise_handshake(&longer, 64, 234));
    }

    #[test]
    fn setup_connection_facts() {
        let frame = setup_connection(&SETUP);
        assert_eq!(plaintext_frame_length(&frame), Some(frame.len()));
        let mut data = frame.clone();
        data.extend_from_slice(b"trailing frames are not this one's business");
        let m = parse_plaintext(&data).unwrap().unwrap();
        assert_eq!(
            m,
            SetupConnection {
                protocol: 0,
                vendor: "Bitmain".into(),
                hardware: "S19 Pro".into(),
                firmware: "braiins-os-2023-06".into(),
                endpoint_host: "pool.example.org".into(),
                endpoint_port: 34254,
            }
        );
    }

    #[test]
    fn setup_connection_empty_and_max_strings() {
        let small = setup_connection(&Setup {
            host: b"",
            vendor: b"",
            hardware: b"",
            firmware: b"",
            device: b"",
            ..SETUP
        });
        assert_eq!(parse_plaintext(&small).unwrap().unwrap().vendor, "");
        let (h, v, w, f, d) = (
            [b'h'; 255],
            [b'v'; 255],
            [b'w'; 255],
            [b'f'; 255],
            [b'd'; 255],
        );
        let big = setup_connection(&Setup {
            host: &h,
            vendor: &v,
            hardware: &w,
            firmware: &f,
            device: &d,
            ..SETUP
        });
        let m = parse_plaintext(&big).unwrap().unwrap();
        assert_eq!(m.endpoint_host, "h".repeat(255));
        assert_eq!(m.protocol, 0);
    }

    #[test]
    fn setup_connection_for_job_declaration_and_template_protocols() {
        for protocol in [1, 2] {
            let frame = setup_connection(&Setup { protocol, ..SETUP });
            assert_eq!(parse_plaintext(&frame).unwrap().unwrap().protocol, protocol);
        }
    }

    #[test]
    fn truncated_at_every_index() {
        let frame = setup_connection(&SETUP);
        for cut in 0..frame.len() {
            match parse_plaintext(&frame[..cut]) {
                Err(_) => assert!(cut >= 6, "{cut}"), // only once the header claims one
                Ok(got) => {
                    assert_eq!(got, None, "{cut}");
                    assert!(cut < 6, "{cut}");
                }
            }
        }
    }

    #[test]
    fn malformed_setup_connection_is_an_error() {
        let frames = [
            setup_connection(&Setup {
                protocol: 3,
                ..SETUP
            }),
            setup_connection(&Setup {
                min_version: 3,
                max_version: 2,
                ..SETUP
            }),
            setup_connection(&Setup {
                min_version: 0,
                max_version: 0,
                ..SETUP
            }),
            setup_connection(&Setup {
                extra: b"\x00",
                ..SETUP
            }),
            setup_connection(&Setup {
                vendor: b"\xff",
                ..SETUP
            }),
            // A UTF-8-encoded surrogate, which Python's codec rejects too.
            setup_connection(&Setup {
                vendor: b"\xed\xb3\xbf",
                ..SETUP
            }),
        ];
        for frame in frames {
            assert!(parse_plaintext(&frame).is_err(), "{frame:?}");
        }
    }

    #[test]
    fn string_overrunning_the_frame_is_an_error() {
        let mut frame = setup_connection(&SETUP);
        frame[6 + 9] = 200; // endpoint_host claims 200 bytes
        assert!(parse_plaintext(&frame).unwrap_err().0.contains("overruns"));
    }

    #[test]
    fn clearly_not_sv2_is_none() {
        let pad = |head: &[u8], zeros: usize| [head, &vec![0u8; zeros]].concat();
        let cases: [Vec<u8>; 9] = [
            b"".to_vec(),
            b"\x00\x00".to_vec(),
            b"{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[]}\n".to_vec(),
            b"GET / HTTP/1.1\r\n\r\n".to_vec(),
            pad(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 64),
            pad(b"\x00\x00\x01\x10\x00\x00", 16), // msg_type 1, not SetupConnection
            pad(b"\x00\x80\x00\x10\x00\x00", 16), // channel bit set
            pad(b"\x00\x00\x00\x05\x00\x00", 5),  // shorter than any SetupConnection
            pad(b"\x00\x00\x00\xff\xff\xff", 64), // longer than any SetupConnection
        ];
        for data in &cases {
            assert_eq!(parse_plaintext(data), Ok(None), "{data:?}");
            assert_eq!(plaintext_frame_length(data), None);
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse_plaintext(&data);
            let _ = looks_uniform(&data);
            let _ = noise_handshake(&data, data.len(), 234);
        }

        #[test]
        fn mutated_frames_never_panic(
            edits in proptest::collection::vec((0usize..200, any::<u8>()), 1..8),
            insert in any::<bool>(),
        ) {
            let mut frame = setup_connection(&SETUP);
            for (pos, value) in edits {
                let at = pos % (frame.len() + 1);
                if insert {
                    frame.insert(at, value);
                } else if at < frame.len() {
                    frame[at] = value;
                }
            }
            if let Ok(Some(m)) = parse_plaintext(&frame) {
                prop_assert!(m.protocol <= MAX_PROTOCOL);
            }
        }
    }
}
