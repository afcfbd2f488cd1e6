//! Python bindings: a thin, coarse boundary (like pydantic-core's). Python asks for the next
//! batch and gets plain tuples back; the GIL is released while the core reads and decodes.
//! A panic never crosses into Python: each frame is fed under `catch_unwind`, and a panic
//! is counted (`core_panics`) and the run goes on with the next frame.

use crate::capture::CaptureReader;
use crate::engine::{Body, Config, Engine, Event, Sv2Kind};
use crate::intel::Prefilter;
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};
use std::net::IpAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;

// Event kinds: the first element of every event tuple.
const K_OPEN: u8 = 0;
const K_CLIENT_HELLO: u8 = 1;
const K_CERT: u8 = 2;
const K_HTTP: u8 = 3;
const K_STREAM: u8 = 4;
const K_GAP: u8 = 5;
const K_STREAM_CLOSE: u8 = 6;
const K_SAMPLE: u8 = 7;
const K_SV2_SETUP: u8 = 8;
const K_SV2: u8 = 9;
const K_TIMING: u8 = 10;
const K_POOL_ANSWER: u8 = 11;
const K_DNS_HOST: u8 = 12;
const K_LEASE: u8 = 13;
const K_LEASE_UNUSABLE: u8 = 14;
const K_END: u8 = 15;
const K_SETTLE: u8 = 16;
const K_LINES: u8 = 17;
const K_PROXY: u8 = 18;
const K_WS: u8 = 19;
const K_TLS_SHAPE: u8 = 20;

fn ip_bytes<'py>(py: Python<'py>, ip: &IpAddr) -> Bound<'py, PyBytes> {
    match ip {
        IpAddr::V4(a) => PyBytes::new(py, &a.octets()),
        IpAddr::V6(a) => PyBytes::new(py, &a.octets()),
    }
}

fn payload<'py>(py: Python<'py>, body: Body) -> PyResult<(u8, Bound<'py, PyAny>)> {
    let none = || py.None().into_bound(py);
    Ok(match body {
        Body::Open {
            proto,
            a,
            b,
            first_ts,
            midflow,
            vlan,
            names_a,
            names_b,
        } => (
            K_OPEN,
            (
                proto,
                ip_bytes(py, &a.0),
                a.1,
                ip_bytes(py, &b.0),
                b.1,
                first_ts,
                midflow,
                vlan,
                names_a,
                names_b,
            )
                .into_pyobject(py)?
                .into_any(),
        ),
        Body::ClientHello(h) => (
            K_CLIENT_HELLO,
            (
                h.sni,
                h.alpn,
                h.record_version,
                h.handshake_version,
                h.supported_versions,
                h.ja3,
                h.ja3_hash,
                h.ja4,
                h.ja4_r,
                h.cipher_suites,
                h.extensions,
            )
                .into_pyobject(py)?
                .into_any(),
        ),
        Body::Certificate(c) => (
            K_CERT,
            (c.subject_cn, c.san_dns, c.issuer_cn)
                .into_pyobject(py)?
                .into_any(),
        ),
        Body::Http(h) => {
            let h = *h;
            let head = (
                h.is_request,
                h.method,
                h.path,
                h.status,
                h.host,
                h.user_agent,
                h.content_type,
                h.x_mining_extensions,
                h.x_stratum,
                h.x_long_polling,
                h.authorization_user,
                h.upgrade,
            )
                .into_pyobject(py)?
                .into_any();
            (
                K_HTTP,
                (head, PyBytes::new(py, &h.body))
                    .into_pyobject(py)?
                    .into_any(),
            )
        }
        Body::Stream { data, midstream } => (
            K_STREAM,
            (PyBytes::new(py, &data), midstream)
                .into_pyobject(py)?
                .into_any(),
        ),
        Body::Lines(lines) => {
            let list = PyList::empty(py);
            for l in &lines {
                list.append(PyBytes::new(py, l))?;
            }
            (K_LINES, list.into_any())
        }
        Body::Gap => (K_GAP, none()),
        Body::Settle => (K_SETTLE, none()),
        Body::StreamClose => (K_STREAM_CLOSE, none()),
        Body::Sample(data) => (K_SAMPLE, PyBytes::new(py, &data).into_any()),
        Body::Sv2Setup(s) => (
            K_SV2_SETUP,
            (
                s.protocol,
                s.vendor,
                s.hardware,
                s.firmware,
                s.endpoint_host,
                s.endpoint_port,
            )
                .into_pyobject(py)?
                .into_any(),
        ),
        Body::Sv2(kind, len) => {
            let k = match kind {
                Sv2Kind::NoiseInitiator => "noise-initiator",
                Sv2Kind::EncryptedFrame => "encrypted-frame",
            };
            (K_SV2, (k, len).into_pyobject(py)?.into_any())
        }
        Body::Timing {
            pushes,
            client_small,
            bytes,
        } => (
            K_TIMING,
            (pushes, client_small, bytes).into_pyobject(py)?.into_any(),
        ),
        Body::Proxy { kind, host, port } => {
            (K_PROXY, (kind, host, port).into_pyobject(py)?.into_any())
        }
        Body::WsMessage { opcode, data } => (
            K_WS,
            (opcode, PyBytes::new(py, &data))
                .into_pyobject(py)?
                .into_any(),
        ),
        Body::TlsShape(s) => (
            K_TLS_SHAPE,
            (
                s.client_first,
                s.first_client,
                s.first_answer,
                s.pushes,
                s.pushes_small,
                s.pushes_same,
                s.client_small,
                (s.records[0], s.records[1]),
                s.max_record,
                s.bytes,
                s.first_ts,
            )
                .into_pyobject(py)?
                .into_any(),
        ),
        Body::PoolAnswer { ip, name } => (
            K_POOL_ANSWER,
            (ip.to_string(), name).into_pyobject(py)?.into_any(),
        ),
        Body::DnsHost { name, addr, ttl } => (
            K_DNS_HOST,
            (name, addr.to_string(), ttl).into_pyobject(py)?.into_any(),
        ),
        Body::Lease {
            ip,
            name,
            lease_time,
            server,
        } => (
            K_LEASE,
            (ip.to_string(), name, lease_time, server.to_string())
                .into_pyobject(py)?
                .into_any(),
        ),
        Body::LeaseUnusable => (K_LEASE_UNUSABLE, none()),
        Body::End {
            reason,
            closed,
            last_ts,
            pkts,
            bytes,
        } => (
            K_END,
            (
                reason, closed, last_ts, pkts[0], pkts[1], bytes[0], bytes[1],
            )
                .into_pyobject(py)?
                .into_any(),
        ),
    })
}

fn events_to_py(py: Python<'_>, events: Vec<Event>) -> PyResult<Bound<'_, PyList>> {
    let list = PyList::empty(py);
    for ev in events {
        let (kind, body) = payload(py, ev.body)?;
        list.append((kind, ev.handle, ev.d, ev.ts, body))?;
    }
    Ok(list)
}

/// One capture source (a file, a directory entry, "-" for stdin).
#[pyclass(module = "netdetect._core")]
pub struct Capture {
    reader: Mutex<CaptureReader>,
    error: Mutex<Option<(String, u64, String)>>,
}

#[pymethods]
impl Capture {
    #[new]
    fn new(py: Python<'_>, path: String) -> PyResult<Self> {
        let reader = py.detach(|| CaptureReader::open(&path));
        match reader {
            Ok(r) => Ok(Capture {
                reader: Mutex::new(r),
                error: Mutex::new(None),
            }),
            Err(e) => Err(PyOSError::new_err((e.path, e.offset, e.reason))),
        }
    }

    /// (frames, snapped, offset, file_offset)
    fn stats(&self) -> (u64, u64, u64, u64) {
        let r = self.reader.lock().expect("capture lock");
        (
            r.stats.frames,
            r.stats.snapped,
            r.stats.offset,
            r.stats.file_offset,
        )
    }

    /// The damage that ended the read, as (path, offset, reason), or None.
    fn error(&self) -> Option<(String, u64, String)> {
        self.error.lock().expect("capture lock").clone()
    }
}

/// A live TPACKET_V3 ring, mapped from a configured AF_PACKET socket's descriptor (the
/// socket stays owned by Python, which must keep it open while this lives).
#[pyclass(module = "netdetect._core")]
pub struct Ring {
    ring: Mutex<crate::ring::Ring>,
}

#[pymethods]
impl Ring {
    #[new]
    fn new(fd: i32, block_size: usize, block_count: usize, linktype: u32) -> PyResult<Self> {
        let ring = crate::ring::Ring::map(fd, block_size, block_count, linktype)
            .map_err(|e| PyOSError::new_err(format!("cannot map the ring: {e}")))?;
        Ok(Ring {
            ring: Mutex::new(ring),
        })
    }

    #[getter]
    fn bad_frames(&self) -> u64 {
        self.ring.lock().expect("ring lock").bad_frames
    }
}

/// The engine: flows, reassembly, sniffers, passive DNS, one memory budget.
#[pyclass(module = "netdetect._core")]
pub struct Core {
    engine: Mutex<Engine>,
}

#[pymethods]
impl Core {
    #[new]
    #[pyo3(signature = (*, max_flows=150_000, memory_budget=128 << 20, tcp_idle=600.0,
        udp_idle=120.0, closed_linger=10.0, active_timeout=3600.0, sweep_every=5.0,
        stream_budget=65536, stream_pending=65536, pdns_budget=16 << 20,
        timing_small=1200, timing_min_duration=45.0))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        max_flows: usize,
        memory_budget: usize,
        tcp_idle: f64,
        udp_idle: f64,
        closed_linger: f64,
        active_timeout: f64,
        sweep_every: f64,
        stream_budget: usize,
        stream_pending: usize,
        pdns_budget: usize,
        timing_small: usize,
        timing_min_duration: f64,
    ) -> PyResult<Self> {
        if max_flows == 0 {
            return Err(PyValueError::new_err("max_flows must be at least 1"));
        }
        if memory_budget < (1 << 20) {
            return Err(PyValueError::new_err(
                "memory budget must be at least 1 MiB",
            ));
        }
        let cfg = Config {
            max_flows,
            memory_budget,
            tcp_idle,
            udp_idle,
            closed_linger,
            active_timeout,
            sweep_every,
            stream_budget,
            stream_pending,
            pdns_budget,
            timing_small,
            timing_min_duration,
        };
        Ok(Core {
            engine: Mutex::new(Engine::new(cfg, Prefilter::default())),
        })
    }

    /// Intel prefilters: pool domain suffixes, JA3 hashes, JA4 fingerprints, miner agent
    /// regexes (only their literal prefixes are used). Replaces the previous set.
    fn set_intel(
        &self,
        domains: Vec<String>,
        ja3: Vec<String>,
        ja4: Vec<String>,
        agents: Vec<String>,
    ) {
        let mut e = self.engine.lock().expect("engine lock");
        let mut p = Prefilter::new(&domains, &ja3, &ja4, &agents);
        std::mem::swap(&mut e.intel, &mut p);
        // Watched names survive an intel reload.
        e.intel.take_watched_from(&mut p);
    }

    /// Names whose DNS answers are handed up as DnsHost events (inventory-declared).
    fn watch_names(&self, names: Vec<String>) {
        self.engine
            .lock()
            .expect("engine lock")
            .intel
            .set_watched(&names);
    }

    /// Feed in-memory frames (ts, linktype, bytes); returns the events.
    fn feed<'py>(
        &self,
        py: Python<'py>,
        frames: Vec<(f64, u32, Vec<u8>)>,
    ) -> PyResult<Bound<'py, PyList>> {
        let events = py.detach(|| {
            let mut e = self.engine.lock().expect("engine lock");
            for (ts, lt, frame) in &frames {
                feed_guarded(&mut e, *ts, *lt, frame);
            }
            e.take_events()
        });
        events_to_py(py, events)
    }

    /// Read up to `max_frames` frames of `source` (stopping early once `max_events` events
    /// are waiting); returns (frames read, events). 0 frames: the source is exhausted (its
    /// `error()` says whether it ended in damage).
    #[pyo3(signature = (source, max_frames=65536, max_events=4096))]
    fn run<'py>(
        &self,
        py: Python<'py>,
        source: &Capture,
        max_frames: usize,
        max_events: usize,
    ) -> PyResult<(usize, Bound<'py, PyList>)> {
        let (n, events) = py.detach(|| {
            let mut e = self.engine.lock().expect("engine lock");
            let mut r = source.reader.lock().expect("capture lock");
            let mut n = 0;
            while n < max_frames {
                match r.next_frame() {
                    Ok(Some(f)) => {
                        n += 1;
                        feed_guarded(&mut e, f.ts, f.linktype, f.data);
                        if e.pending_events() >= max_events {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(err) => {
                        *source.error.lock().expect("capture lock") =
                            Some((err.path, err.offset, err.reason));
                        break;
                    }
                }
            }
            (n, e.take_events())
        });
        Ok((n, events_to_py(py, events)?))
    }

    /// Read what the live ring holds (waiting up to `timeout_ms` when nothing is ready),
    /// and every DNS answer of the side-channel ring when there is one; returns (frames
    /// read from the main ring, events). The GIL is released throughout.
    #[pyo3(signature = (ring, timeout_ms, dns=None, max_frames=65536))]
    fn run_ring<'py>(
        &self,
        py: Python<'py>,
        ring: &Ring,
        timeout_ms: i32,
        dns: Option<&Ring>,
        max_frames: usize,
    ) -> PyResult<(usize, Bound<'py, PyList>)> {
        let (n, events) = py.detach(|| {
            let mut e = self.engine.lock().expect("engine lock");
            let mut r = ring.ring.lock().expect("ring lock");
            let drain_dns = |e: &mut Engine| {
                if let Some(d) = dns {
                    let mut d = d.ring.lock().expect("ring lock");
                    e.dns_elsewhere = true;
                    d.drain(max_frames, &mut |ts, lt, f| {
                        if catch_unwind(AssertUnwindSafe(|| e.feed_dns(ts, lt, f))).is_err() {
                            e.counters.panics += 1;
                        }
                    });
                }
            };
            drain_dns(&mut e);
            let mut n = r.drain(max_frames, &mut |ts, lt, f| feed_guarded(&mut e, ts, lt, f));
            if n == 0 && timeout_ms > 0 {
                r.wait(timeout_ms);
                drain_dns(&mut e);
                n = r.drain(max_frames, &mut |ts, lt, f| feed_guarded(&mut e, ts, lt, f));
            }
            (n, e.take_events())
        });
        Ok((n, events_to_py(py, events)?))
    }

    /// End of input: every flow leaves the table; returns the last events.
    fn finish<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let events = py.detach(|| {
            let mut e = self.engine.lock().expect("engine lock");
            e.finish();
            e.take_events()
        });
        events_to_py(py, events)
    }

    /// Python's decision about a flow (MARK_* bits).
    fn mark(&self, handle: u64, marks: u32) {
        self.engine.lock().expect("engine lock").mark(handle, marks);
    }

    /// (pkts a→b, pkts b→a, bytes a→b, bytes b→a, last_ts) of a live flow, or None.
    fn flow_counters(&self, handle: u64) -> Option<(u64, u64, u64, u64, f64)> {
        let e = self.engine.lock().expect("engine lock");
        e.flow_counters(handle)
            .map(|(p, b, t)| (p[0], p[1], b[0], b[1], t))
    }

    /// Passive-DNS names of an address (text form) at packet time `now`.
    fn pdns_names(&self, ip: &str, now: f64) -> PyResult<Vec<String>> {
        let addr: IpAddr = ip
            .parse()
            .map_err(|_| PyValueError::new_err(format!("bad address {ip:?}")))?;
        Ok(self
            .engine
            .lock()
            .expect("engine lock")
            .pdns
            .names_for(&addr, now))
    }

    fn counters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in self.engine.lock().expect("engine lock").counter_items() {
            d.set_item(k, v)?;
        }
        Ok(d)
    }

    #[getter]
    fn last_ts(&self) -> f64 {
        self.engine.lock().expect("engine lock").last_ts
    }
}

/// The last panic's message (the hook replaces printing a backtrace per hostile packet:
/// panics are counted in `core_panics` and the message is kept for a log line).
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        if let Ok(mut last) = LAST_PANIC.lock() {
            *last = Some(info.to_string());
        }
    }));
}

/// The message of the last panic caught in the core, if any.
#[pyfunction]
fn last_panic() -> Option<String> {
    LAST_PANIC.lock().ok().and_then(|p| p.clone())
}

fn feed_guarded(e: &mut Engine, ts: f64, linktype: u32, frame: &[u8]) {
    if catch_unwind(AssertUnwindSafe(|| e.feed(ts, linktype, frame))).is_err() {
        e.counters.panics += 1;
    }
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    install_panic_hook();
    m.add_function(wrap_pyfunction!(last_panic, m)?)?;
    m.add_class::<Core>()?;
    m.add_class::<Capture>()?;
    m.add_class::<Ring>()?;
    for (name, v) in [
        ("K_OPEN", K_OPEN),
        ("K_CLIENT_HELLO", K_CLIENT_HELLO),
        ("K_CERT", K_CERT),
        ("K_HTTP", K_HTTP),
        ("K_STREAM", K_STREAM),
        ("K_LINES", K_LINES),
        ("K_GAP", K_GAP),
        ("K_STREAM_CLOSE", K_STREAM_CLOSE),
        ("K_SAMPLE", K_SAMPLE),
        ("K_SV2_SETUP", K_SV2_SETUP),
        ("K_SV2", K_SV2),
        ("K_TIMING", K_TIMING),
        ("K_POOL_ANSWER", K_POOL_ANSWER),
        ("K_DNS_HOST", K_DNS_HOST),
        ("K_LEASE", K_LEASE),
        ("K_LEASE_UNUSABLE", K_LEASE_UNUSABLE),
        ("K_END", K_END),
        ("K_SETTLE", K_SETTLE),
        ("K_PROXY", K_PROXY),
        ("K_WS", K_WS),
        ("K_TLS_SHAPE", K_TLS_SHAPE),
    ] {
        m.add(name, v)?;
    }
    for (name, v) in [
        ("MARK_ALERTED", crate::engine::MARK_ALERTED),
        ("MARK_KEEP", crate::engine::MARK_KEEP),
        ("MARK_DONE", crate::engine::MARK_DONE),
        ("MARK_JSON_DEAD0", crate::engine::MARK_JSON_DEAD0),
        ("MARK_JSON_DEAD1", crate::engine::MARK_JSON_DEAD1),
    ] {
        m.add(name, v)?;
    }
    Ok(())
}
