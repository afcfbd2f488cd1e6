//! `sv2-session pool ADDR` / `sv2-session miner ADDR SECONDS`: one Stratum V2 mining session
//! over TCP with the reference crates — Noise NX handshake (noise_sv2), encrypted frames
//! (codec_sv2), SetupConnection, OpenStandardMiningChannel, NewMiningJob, SetNewPrevHash,
//! SubmitSharesStandard and SubmitShares.Success (common_messages_sv2, mining_sv2).

use binary_sv2::{Deserialize, Serialize, Sv2Option, U256};
use codec_sv2::{Decrypted, Handshake, MessageFrame, NoiseDecoder, NoiseEncoder};
use common_messages_sv2::{
    Protocol, SetupConnection, SetupConnectionSuccess, MESSAGE_TYPE_SETUP_CONNECTION,
    MESSAGE_TYPE_SETUP_CONNECTION_SUCCESS,
};
use key_utils::{Secp256k1PublicKey, Secp256k1SecretKey};
use mining_sv2::{
    NewMiningJob, OpenStandardMiningChannel, OpenStandardMiningChannelSuccess, SetNewPrevHash,
    SubmitSharesStandard, SubmitSharesSuccess, MESSAGE_TYPE_MINING_SET_NEW_PREV_HASH,
    MESSAGE_TYPE_NEW_MINING_JOB, MESSAGE_TYPE_OPEN_STANDARD_MINING_CHANNEL,
    MESSAGE_TYPE_OPEN_STANDARD_MINING_CHANNEL_SUCCESS, MESSAGE_TYPE_SUBMIT_SHARES_STANDARD,
    MESSAGE_TYPE_SUBMIT_SHARES_SUCCESS,
};
use noise_sv2::{
    Initiator, Responder, ELLSWIFT_ENCODING_SIZE, INITIATOR_EXPECTED_HANDSHAKE_MESSAGE_SIZE,
};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// The example authority key pair of the codec_sv2 crate: a lab pool, not a secret.
const AUTHORITY_PUBLIC_K: &str = "9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH72";
const AUTHORITY_PRIVATE_K: &str = "mkDLTBBRxdBv998612qipDYoTK3YUrqLe8uWw7gu3iXbSrn2n";

type Enc = codec_sv2::TransportEncryptState;
type Dec = codec_sv2::TransportDecryptState;

fn keys() -> ([u8; 32], [u8; 32]) {
    let p: Secp256k1PublicKey = AUTHORITY_PUBLIC_K.to_string().try_into().expect("pub");
    let s: Secp256k1SecretKey = AUTHORITY_PRIVATE_K.to_string().try_into().expect("priv");
    (p.into_bytes(), s.into_bytes())
}

fn send<M: Serialize + Deserialize<'static> + binary_sv2::GetSize>(
    s: &mut TcpStream,
    codec: &mut Enc,
    msg: M,
    msg_type: u8,
    channel: bool,
) {
    let frame: MessageFrame<M> =
        MessageFrame::from_message(msg, msg_type, 0, channel).expect("frame");
    let mut enc = NoiseEncoder::new();
    let bytes = enc.encode_transport(frame, codec).expect("encode");
    s.write_all(&bytes[..]).expect("write");
}

fn recv(s: &mut TcpStream, dec: &mut NoiseDecoder, codec: Dec) -> Option<(u8, Vec<u8>, Dec)> {
    let mut codec = codec;
    loop {
        let buf = dec.writable();
        s.read_exact(buf).ok()?;
        match dec.next_transport_frame(codec) {
            Ok(Decrypted::Frame(mut f, c)) => {
                let t = f.header().msg_type();
                return Some((t, f.payload().to_vec(), c));
            }
            Ok(Decrypted::Incomplete(_, c)) => codec = c,
            Err(e) => panic!("decode: {e:?}"),
        }
    }
}

fn u256(b: u8) -> U256<'static> {
    let a: &'static [u8; 32] = Box::leak(Box::new([b; 32]));
    a.into()
}

fn pool(addr: &str) {
    let l = TcpListener::bind(addr).expect("bind");
    for conn in l.incoming() {
        let mut s = conn.expect("accept");
        let (p, k) = keys();
        let r = Responder::from_authority_kp(&p, &k, Duration::from_secs(3600)).expect("resp");
        let hs = Handshake::responder(r);
        let mut first = [0u8; ELLSWIFT_ENCODING_SIZE];
        s.read_exact(&mut first).expect("read e");
        let (second, transport) = hs.step_1(first).expect("step_1");
        s.write_all(second.payload()).expect("write");
        let (mut tx, rx) = transport.split();
        let mut dec = NoiseDecoder::new();
        let Some((t, _, rx)) = recv(&mut s, &mut dec, rx) else {
            continue;
        };
        assert_eq!(t, MESSAGE_TYPE_SETUP_CONNECTION);
        send(
            &mut s,
            &mut tx,
            SetupConnectionSuccess {
                used_version: 2,
                flags: 0,
            },
            MESSAGE_TYPE_SETUP_CONNECTION_SUCCESS,
            false,
        );
        let Some((t, _, mut rx)) = recv(&mut s, &mut dec, rx) else {
            continue;
        };
        assert_eq!(t, MESSAGE_TYPE_OPEN_STANDARD_MINING_CHANNEL);
        send(
            &mut s,
            &mut tx,
            OpenStandardMiningChannelSuccess {
                request_id: 1,
                channel_id: 7,
                target: u256(0xff),
                extranonce_prefix: binary_sv2::B032::new(&[1, 2, 3, 4]).expect("b032"),
                group_channel_id: 1,
            },
            MESSAGE_TYPE_OPEN_STANDARD_MINING_CHANNEL_SUCCESS,
            true,
        );
        let writer = Arc::new(Mutex::new((s.try_clone().expect("clone"), tx)));
        let w = Arc::clone(&writer);
        // A new job (NewMiningJob + SetNewPrevHash) now and every 10 s.
        std::thread::spawn(move || {
            for job in 1u32.. {
                {
                    let mut g = w.lock().expect("lock");
                    let (s, tx) = &mut *g;
                    if s.peer_addr().is_err() {
                        return;
                    }
                    send(
                        s,
                        tx,
                        NewMiningJob {
                            channel_id: 7,
                            job_id: job,
                            min_ntime: Sv2Option::new(None),
                            version: 0x2000_0000,
                            merkle_root: u256(job as u8),
                        },
                        MESSAGE_TYPE_NEW_MINING_JOB,
                        true,
                    );
                    send(
                        s,
                        tx,
                        SetNewPrevHash {
                            channel_id: 7,
                            job_id: job,
                            prev_hash: u256(0x11),
                            min_ntime: 1_767_603_600,
                            nbits: 0x1703_4219,
                        },
                        MESSAGE_TYPE_MINING_SET_NEW_PREV_HASH,
                        true,
                    );
                }
                std::thread::sleep(Duration::from_secs(10));
            }
        });
        let mut seq = 0u32;
        while let Some((t, _, r2)) = recv(&mut s, &mut dec, rx) {
            rx = r2;
            if t == MESSAGE_TYPE_SUBMIT_SHARES_STANDARD {
                seq += 1;
                let mut g = writer.lock().expect("lock");
                let (s, tx) = &mut *g;
                send(
                    s,
                    tx,
                    SubmitSharesSuccess {
                        channel_id: 7,
                        last_sequence_number: seq,
                        new_submits_accepted_count: 1,
                        new_shares_sum: u64::from(seq) * 1000,
                    },
                    MESSAGE_TYPE_SUBMIT_SHARES_SUCCESS,
                    true,
                );
            }
        }
        let _ = s.shutdown(std::net::Shutdown::Both);
    }
}

fn miner(addr: &str, seconds: u64) {
    let mut s = TcpStream::connect(addr).expect("connect");
    let (p, _) = keys();
    let i = Initiator::from_raw_k(p).expect("init");
    let hs = Handshake::initiator(i);
    let (first, hs) = hs.step_0().expect("step_0");
    s.write_all(first.payload()).expect("write");
    let mut second = [0u8; INITIATOR_EXPECTED_HANDSHAKE_MESSAGE_SIZE];
    s.read_exact(&mut second).expect("read");
    let transport = hs.step_2(second).expect("step_2");
    let (mut tx, rx) = transport.split();
    let mut dec = NoiseDecoder::new();
    send(
        &mut s,
        &mut tx,
        SetupConnection {
            protocol: Protocol::MiningProtocol,
            min_version: 2,
            max_version: 2,
            flags: 0,
            endpoint_host: "10.77.0.200".try_into().expect("s"),
            endpoint_port: 34255,
            vendor: "Bitmain".try_into().expect("s"),
            hardware_version: "S19j Pro".try_into().expect("s"),
            firmware: "braiins-os-2024-03".try_into().expect("s"),
            device_id: "rack4-17".try_into().expect("s"),
        },
        MESSAGE_TYPE_SETUP_CONNECTION,
        false,
    );
    let (_, _, rx) = recv(&mut s, &mut dec, rx).expect("setup answer");
    send(
        &mut s,
        &mut tx,
        OpenStandardMiningChannel {
            request_id: 1,
            user_identity: "acme.rack4-17".try_into().expect("s"),
            nominal_hash_rate: 1.0e14,
            max_target: u256(0xff),
        },
        MESSAGE_TYPE_OPEN_STANDARD_MINING_CHANNEL,
        true,
    );
    let (_, _, mut rx) = recv(&mut s, &mut dec, rx).expect("channel answer");
    let job = Arc::new(AtomicU32::new(1));
    let j = Arc::clone(&job);
    let mut rs = s.try_clone().expect("clone");
    std::thread::spawn(move || {
        while let Some((t, payload, r2)) = recv(&mut rs, &mut dec, rx) {
            rx = r2;
            if t == MESSAGE_TYPE_NEW_MINING_JOB && payload.len() >= 8 {
                let id = u32::from_le_bytes([payload[4], payload[5], payload[6], payload[7]]);
                j.store(id, Ordering::Relaxed);
            }
        }
    });
    // Shares at an ASIC's vardiff cadence: every 3-4 s.
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut seq = 0u32;
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(3000 + u64::from(seq % 3) * 400));
        seq += 1;
        send(
            &mut s,
            &mut tx,
            SubmitSharesStandard {
                channel_id: 7,
                sequence_number: seq,
                job_id: job.load(Ordering::Relaxed),
                nonce: seq.wrapping_mul(2_654_435_761),
                ntime: 1_767_603_600 + seq,
                version: 0x2000_0000,
            },
            MESSAGE_TYPE_SUBMIT_SHARES_STANDARD,
            true,
        );
    }
    let _ = s.shutdown(std::net::Shutdown::Both);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("pool") => pool(&args[2]),
        Some("miner") => miner(
            &args[2],
            args.get(3).and_then(|x| x.parse().ok()).unwrap_or(40),
        ),
        _ => eprintln!("usage: sv2-session pool ADDR | miner ADDR [SECONDS]"),
    }
}
