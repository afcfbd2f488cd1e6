//! Python bindings: a thin, coarse boundary (like pydantic-core's). Python asks for the next
//! batch and gets plain tuples back; the GIL is released while the core reads and decodes.
//! A panic never crosses into Python: each frame is fed under `catch_unwind`, and a panic
//! is counted (`core_panics`) and the run goes on with the next frame.

use crate::capture::CaptureReader;
use crate::engine::{Body, Config, Engine, Event, Sv2Kind};
use crate::intel::Prefilter;
use crate::mmdb::IpSetReader;
use crate::tls::shape::ShapeSummary;
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};
use std::net::IpAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Mutex, RwLock};

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

/// A record-shape summary as the K_TLS_SHAPE event carries it (netdetect.detect.TlsShape).
fn shape_tuple<'py>(py: Python<'py>, s: &ShapeSummary) -> PyResult<Bound<'py, PyAny>> {
    Ok((
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
        .into_any())
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
        Body::TlsShape(s) => (K_TLS_SHAPE, shape_tuple(py, &s)?),
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

/// A live ring, mapped from a configured AF_PACKET socket's descriptor (the socket stays
/// owned by Python, which must keep it open while this lives): TPACKET_V3 blocks, or with
/// `frame_size` TPACKET_V2 slots of that size (the DNS side channel).
#[pyclass(module = "netdetect._core")]
pub struct Ring {
    ring: Mutex<crate::ring::Ring>,
}

#[pymethods]
impl Ring {
    #[new]
    #[pyo3(signature = (fd, block_size, block_count, linktype, frame_size=0))]
    fn new(
        fd: i32,
        block_size: usize,
        block_count: usize,
        linktype: u32,
        frame_size: usize,
    ) -> PyResult<Self> {
        let ring = if frame_size == 0 {
            crate::ring::Ring::map(fd, block_size, block_count, linktype)
        } else {
            crate::ring::Ring::map_frames(fd, block_size, block_count, frame_size, linktype)
        }
        .map_err(|e| PyOSError::new_err(format!("cannot map the ring: {e}")))?;
        Ok(Ring {
            ring: Mutex::new(ring),
        })
    }

    #[getter]
    fn bad_frames(&self) -> u64 {
        self.ring.lock().expect("ring lock").bad_frames
    }

    /// Frames the kernel cut short: longer than a V2 slot (or than a V3 block).
    #[getter]
    fn truncated(&self) -> u64 {
        self.ring.lock().expect("ring lock").truncated
    }

    /// Side channel answers fed ahead of main-ring frames captured before them, because
    /// half the side ring was waiting (a worker far behind).
    #[getter]
    fn forced(&self) -> u64 {
        self.ring.lock().expect("ring lock").forced
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
    /// merged in capture order with the DNS side channel's answers when there is one
    /// (`ring::drain_live`: passive DNS does not depend on the worker or on timing; an
    /// answer captured after every frame read waits while the main ring is quiet until it
    /// is `hold_ms` old); returns (frames read from the main ring, events). The GIL is
    /// released throughout.
    #[pyo3(signature = (ring, timeout_ms, dns=None, max_frames=65536, hold_ms=100))]
    fn run_ring<'py>(
        &self,
        py: Python<'py>,
        ring: &Ring,
        timeout_ms: i32,
        dns: Option<&Ring>,
        max_frames: usize,
        hold_ms: u32,
    ) -> PyResult<(usize, Bound<'py, PyList>)> {
        let (n, events) = py.detach(|| {
            let mut e = self.engine.lock().expect("engine lock");
            let mut r = ring.ring.lock().expect("ring lock");
            let mut d = dns.map(|d| d.ring.lock().expect("ring lock"));
            e.dns_elsewhere |= d.is_some();
            let hold = f64::from(hold_ms) / 1000.0;
            let mut worker = LiveWorker(&mut e);
            let mut drain = |r: &mut crate::ring::Ring, d: Option<&mut crate::ring::Ring>| {
                crate::ring::drain_live(r, d, max_frames, hold, &wall_clock, &mut worker)
            };
            let mut n = drain(&mut r, d.as_deref_mut());
            if n == 0 && timeout_ms > 0 {
                // Sleep until a frame is ready, or until a waiting answer is due.
                let due = d
                    .as_deref()
                    .and_then(|d| crate::ring::side_due_in(d, hold, wall_clock()));
                let wait = due.map_or(timeout_ms, |s| {
                    timeout_ms.min((s * 1000.0).ceil().clamp(1.0, f64::from(i32::MAX)) as i32)
                });
                r.wait(wait);
                n = drain(&mut r, d.as_deref_mut());
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

    /// Python's decision about a flow it was handed in an event (MARK_* bits); other
    /// handles are ignored.
    fn mark(&self, handle: u64, marks: u32) {
        self.engine.lock().expect("engine lock").mark(handle, marks);
    }

    /// (pkts a→b, pkts b→a, bytes a→b, bytes b→a, last_ts) of a live flow handed up in an
    /// event, or None.
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

/// CLOCK_REALTIME, the clock the kernel stamps captured frames with.
fn wall_clock() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |t| t.as_secs_f64())
}

/// The engine as a live worker: main-ring frames and side-channel DNS answers, each
/// guarded like `feed_guarded`.
struct LiveWorker<'a>(&'a mut Engine);

impl crate::ring::Worker for LiveWorker<'_> {
    fn frame(&mut self, ts: f64, linktype: u32, frame: &[u8]) {
        feed_guarded(self.0, ts, linktype, frame);
    }

    fn side_frame(&mut self, ts: f64, linktype: u32, frame: &[u8]) {
        let e = &mut *self.0;
        if catch_unwind(AssertUnwindSafe(|| e.feed_dns(ts, linktype, frame))).is_err() {
            e.counters.panics += 1;
        }
    }
}

fn feed_guarded(e: &mut Engine, ts: f64, linktype: u32, frame: &[u8]) {
    if catch_unwind(AssertUnwindSafe(|| e.feed(ts, linktype, frame))).is_err() {
        e.counters.panics += 1;
    }
}

/// A pool address DB (src/mmdb.rs), read and verified whole when opened; lookups hold the
/// GIL (a lookup is a tree walk and one small record). netdetect/intel/mmdb.py `IpSetDb`
/// is the Python face.
#[pyclass(module = "netdetect._core", frozen)]
pub struct MmdbReader {
    /// None once closed: a lookup then finds nothing, as the Python reader's did.
    db: RwLock<Option<IpSetReader>>,
}

impl MmdbReader {
    fn parse(py: Python<'_>, data: Vec<u8>) -> PyResult<Self> {
        match py.detach(|| catch_unwind(AssertUnwindSafe(|| IpSetReader::from_bytes(data)))) {
            Ok(Ok(db)) => Ok(MmdbReader {
                db: RwLock::new(Some(db)),
            }),
            Ok(Err(e)) => Err(PyValueError::new_err(e.0)),
            Err(_) => Err(PyValueError::new_err(panic_message("the reader failed"))),
        }
    }

    fn with_db<T>(&self, f: impl FnOnce(&IpSetReader) -> T) -> Option<T> {
        // A poisoned lock means a panic was caught under it; the reader itself is immutable.
        let guard = self.db.read().unwrap_or_else(|e| e.into_inner());
        guard.as_ref().map(f)
    }
}

#[pymethods]
impl MmdbReader {
    /// Read the file at `path` whole; OSError (errno, reason, path) when it cannot be read,
    /// ValueError with the reason when it is not a valid MaxMind DB.
    #[staticmethod]
    fn open(py: Python<'_>, path: std::path::PathBuf) -> PyResult<Self> {
        let data = py.detach(|| std::fs::read(&path)).map_err(|e| {
            // As Python's own OSError reads: "[Errno 2] No such file or directory: 'x'".
            let errno = e.raw_os_error().unwrap_or(0);
            let text = e.to_string();
            let reason = text
                .strip_suffix(&format!(" (os error {errno})"))
                .unwrap_or(&text);
            PyOSError::new_err((errno, reason.to_owned(), path.display().to_string()))
        })?;
        Self::parse(py, data)
    }

    /// A MaxMind DB given as bytes; ValueError with the reason when it is not valid.
    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: &[u8]) -> PyResult<Self> {
        Self::parse(py, data.to_vec())
    }

    #[getter]
    fn database_type(&self) -> PyResult<String> {
        self.with_db(|db| db.database_type().to_owned())
            .ok_or_else(closed)
    }

    /// The metadata's description map (language or key -> text).
    #[getter]
    fn description(&self) -> PyResult<std::collections::BTreeMap<String, String>> {
        self.with_db(|db| db.description().clone())
            .ok_or_else(closed)
    }

    #[getter]
    fn ip_version(&self) -> PyResult<u16> {
        self.with_db(|db| db.ip_version()).ok_or_else(closed)
    }

    #[getter]
    fn closed(&self) -> bool {
        self.with_db(|_| ()).is_none()
    }

    /// The record holding the address written as `ip` -> (category, source, note, network,
    /// ports, prefix_len), each field None when the record lacks it or holds another type
    /// (network: the record's, else the tree's); None when `ip` is not an address (any
    /// text, even not a str), the DB has no map for it, or the reader is closed.
    /// ValueError only for a record the decoder refuses (the file passed verification).
    #[allow(clippy::type_complexity)]
    fn lookup(
        &self,
        ip: &Bound<'_, PyAny>,
    ) -> PyResult<
        Option<(
            Option<String>,
            Option<String>,
            Option<String>,
            String,
            Option<Vec<i64>>,
            u8,
        )>,
    > {
        let Ok(text) = ip.cast::<PyString>() else {
            return Ok(None);
        };
        let Ok(text) = text.to_str() else {
            return Ok(None); // lone surrogates: not an address
        };
        let found = self.with_db(|db| catch_unwind(AssertUnwindSafe(|| db.lookup(text))));
        let found = match found {
            None => return Ok(None),
            Some(Ok(Ok(found))) => found,
            Some(Ok(Err(e))) => return Err(PyValueError::new_err(e.0)),
            Some(Err(_)) => return Err(PyValueError::new_err(panic_message("the lookup failed"))),
        };
        Ok(found.map(|f| {
            let r = f.record;
            (
                r.category,
                r.source,
                r.note,
                r.network.unwrap_or(f.tree_network),
                r.ports,
                f.prefix_len,
            )
        }))
    }

    /// Release the DB's memory; lookups find nothing from then on.
    fn close(&self) {
        let mut guard = self.db.write().unwrap_or_else(|e| e.into_inner());
        *guard = None;
    }
}

fn closed() -> PyErr {
    PyValueError::new_err("the MaxMind DB reader is closed")
}

/// A caught panic as an error message (the hook kept it; see `last_panic`).
fn panic_message(what: &str) -> String {
    match last_panic() {
        Some(msg) => format!("{what}: internal error: {msg}"),
        None => format!("{what}: internal error"),
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
    m.add_class::<MmdbReader>()?;
    probes::register(m)?;
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

// ---------------------------------------------------------------------------------------
// Parser probes: each of the core's parsers, callable on its own. The engine never goes
// through these; the tests (unit, hypothesis fuzz, the tshark oracle) and the capture-path
// expansion of `replay` do. Every probe returns plain values; a parser's DecodeError is a
// ValueError, a capture's damage an OSError(path, offset, reason).
// ---------------------------------------------------------------------------------------

mod probes {
    use super::ip_bytes;
    use crate::capture::{self, CaptureReader};
    use crate::dns::{self, RData};
    use crate::error::DecodeError;
    use crate::http::{HttpHead, HttpSniffer};
    use crate::lines::{Framed, LineFramer, NotJsonLines};
    use crate::packet::PacketDecoder as RsPacketDecoder;
    use crate::reasm::Reassembler as RsReassembler;
    use crate::socks::{self, SocksSniffer};
    use crate::tls::shape::ShapeTracker;
    use crate::tls::{self, ClientHelloInfo, TlsEvent, TlsSniffer};
    use crate::ws::{WsMessage, WsSniffer};
    use crate::{dhcp, sv2};
    use pyo3::exceptions::{PyOSError, PyValueError};
    use pyo3::prelude::*;
    use pyo3::types::{PyBytes, PyDict};

    fn value_error(e: DecodeError) -> PyErr {
        PyValueError::new_err(e.0)
    }

    /// A probe class around one streaming parser: the struct, the methods given, and the
    /// parts every such probe repeats — with `feed: conv`, `feed(bytes) -> [conv(event)]`
    /// for a parser that appends events to a Vec (its DecodeError a ValueError, after which
    /// the stream is dead); with `get: names`, a getter per name reading the parser's
    /// `buffered()` (bytes held) or `overflow` (messages skipped for size and counted).
    macro_rules! stream_probe {
        (@get $inner:expr, buffered) => { $inner.buffered() as u64 };
        (@get $inner:expr, overflow) => { $inner.overflow };
        (
            $(#[$attr:meta])*
            $name:ident($inner:ty) $(, feed: $conv:path)? $(, get: $($getter:ident),+)?;
            $($methods:tt)*
        ) => {
            $(#[$attr])*
            #[pyclass(module = "netdetect._core", unsendable)]
            pub struct $name {
                inner: $inner,
            }

            #[pymethods]
            impl $name {
                $($methods)*

                $(
                    fn feed<'py>(
                        &mut self,
                        py: Python<'py>,
                        data: &[u8],
                    ) -> PyResult<Vec<Bound<'py, PyAny>>> {
                        let mut out = Vec::new();
                        self.inner.feed(data, &mut out).map_err(value_error)?;
                        out.into_iter().map(|ev| Ok($conv(py, ev)?.into_any())).collect()
                    }
                )?

                $($(
                    #[getter]
                    fn $getter(&self) -> u64 {
                        stream_probe!(@get self.inner, $getter)
                    }
                )+)?
            }
        };
    }

    fn hello_dict<'py>(py: Python<'py>, h: ClientHelloInfo) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("sni", h.sni)?;
        d.set_item("alpn", h.alpn)?;
        d.set_item("record_version", h.record_version)?;
        d.set_item("handshake_version", h.handshake_version)?;
        d.set_item("supported_versions", h.supported_versions)?;
        d.set_item("ja3", h.ja3)?;
        d.set_item("ja3_hash", h.ja3_hash)?;
        d.set_item("ja4", h.ja4)?;
        d.set_item("ja4_r", h.ja4_r)?;
        d.set_item("cipher_suites", h.cipher_suites)?;
        d.set_item("extensions", h.extensions)?;
        Ok(d)
    }

    fn tls_event<'py>(py: Python<'py>, ev: TlsEvent) -> PyResult<Bound<'py, PyAny>> {
        let (kind, fields): (&str, Bound<'py, PyDict>) = match ev {
            TlsEvent::ClientHello(h) => ("client_hello", hello_dict(py, *h)?),
            TlsEvent::ServerHello(s) => {
                let d = PyDict::new(py);
                d.set_item("version", s.version)?;
                d.set_item("cipher_suite", s.cipher_suite)?;
                d.set_item("alpn", s.alpn)?;
                ("server_hello", d)
            }
            TlsEvent::Certificate(c) => ("certificate", cert_dict(py, c)?),
            TlsEvent::Record {
                content_type,
                length,
            } => {
                let d = PyDict::new(py);
                d.set_item("content_type", content_type)?;
                d.set_item("length", length)?;
                ("record", d)
            }
        };
        Ok((kind, fields).into_pyobject(py)?.into_any())
    }

    fn cert_dict<'py>(py: Python<'py>, c: tls::CertNames) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("subject_cn", c.subject_cn)?;
        d.set_item("san_dns", c.san_dns)?;
        d.set_item("issuer_cn", c.issuer_cn)?;
        Ok(d)
    }

    /// One complete ClientHello handshake message (4-byte header included) -> its fields.
    #[pyfunction]
    #[pyo3(signature = (message, record_version=0, quic=false))]
    fn parse_client_hello<'py>(
        py: Python<'py>,
        message: &[u8],
        record_version: u16,
        quic: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        if message.len() < 4 || message[0] != 1 {
            return Err(PyValueError::new_err(
                "TLS: not a ClientHello handshake message",
            ));
        }
        let body_len =
            usize::from(message[1]) << 16 | usize::from(message[2]) << 8 | usize::from(message[3]);
        let body = &message[4..];
        if body_len != body.len() {
            return Err(PyValueError::new_err(format!(
                "TLS: ClientHello length {body_len} does not match {} bytes",
                body.len()
            )));
        }
        let h = if quic {
            tls::parse_client_hello_quic(body)
        } else {
            tls::parse_client_hello(record_version, body)
        };
        hello_dict(py, h.map_err(value_error)?)
    }

    /// One ServerHello message (header included) -> (fields, is a HelloRetryRequest).
    #[pyfunction]
    fn parse_server_hello<'py>(
        py: Python<'py>,
        message: &[u8],
    ) -> PyResult<(Bound<'py, PyDict>, bool)> {
        let (s, hrr) = tls::parse_server_hello(message).map_err(value_error)?;
        let d = PyDict::new(py);
        d.set_item("version", s.version)?;
        d.set_item("cipher_suite", s.cipher_suite)?;
        d.set_item("alpn", s.alpn)?;
        Ok((d, hrr))
    }

    /// Names of the first certificate of a Certificate message (header included), or None.
    #[pyfunction]
    fn parse_certificate<'py>(
        py: Python<'py>,
        message: &[u8],
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        tls::parse_certificate_names(message)
            .map(|c| cert_dict(py, c))
            .transpose()
    }

    #[pyfunction]
    fn is_grease(value: u16) -> bool {
        tls::is_grease(value)
    }

    #[pyfunction]
    fn ja4_version_code(version: u16) -> &'static str {
        tls::ja4_version_code(version)
    }

    stream_probe! {
        /// One direction of a TLS stream, fed in pieces: feed() -> [(kind, fields)], kind one of
        /// "client_hello", "server_hello", "certificate", "record".
        TlsStream(TlsSniffer), feed: tls_event, get: buffered, overflow;
        #[new]
        #[pyo3(signature = (*, midstream=false, max_handshake=tls::DEFAULT_MAX_HANDSHAKE))]
        fn new(midstream: bool, max_handshake: usize) -> Self {
            TlsStream {
                inner: TlsSniffer::with_max_handshake(midstream, max_handshake),
            }
        }
    }

    fn http_dict<'py>(py: Python<'py>, h: HttpHead) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("is_request", h.is_request)?;
        d.set_item("method", h.method)?;
        d.set_item("path", h.path)?;
        d.set_item("status", h.status)?;
        d.set_item("host", h.host)?;
        d.set_item("user_agent", h.user_agent)?;
        d.set_item("content_type", h.content_type)?;
        d.set_item("x_mining_extensions", h.x_mining_extensions)?;
        d.set_item("x_stratum", h.x_stratum)?;
        d.set_item("x_long_polling", h.x_long_polling)?;
        d.set_item("authorization_user", h.authorization_user)?;
        d.set_item("upgrade", h.upgrade)?;
        d.set_item("body", PyBytes::new(py, &h.body))?;
        Ok(d)
    }

    stream_probe! {
        /// One direction of an HTTP/1.x stream: feed() and close() -> [head fields + "body"].
        HttpStream(HttpSniffer), feed: http_dict, get: buffered, overflow;
        #[new]
        #[pyo3(signature = (*, max_head=crate::http::DEFAULT_MAX_HEAD,
            max_body=crate::http::DEFAULT_MAX_BODY))]
        fn new(max_head: usize, max_body: usize) -> Self {
            HttpStream {
                inner: HttpSniffer::with_limits(max_head, max_body),
            }
        }

        /// The peer closed: a body delimited by the close is complete.
        fn close<'py>(&mut self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
            let mut out = Vec::new();
            self.inner.close(&mut out);
            out.into_iter().map(|h| Ok(http_dict(py, h)?.into_any())).collect()
        }
    }

    fn dns_dict<'py>(py: Python<'py>, m: dns::DnsMessage) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("msg_id", m.msg_id)?;
        d.set_item("is_response", m.is_response)?;
        d.set_item("rcode", m.rcode)?;
        d.set_item("questions", m.questions)?;
        let answers: Vec<(String, u16, u32, String)> = m
            .answers
            .into_iter()
            .map(|r| {
                let v = match r.value {
                    RData::Addr(a) => a.to_string(),
                    RData::Name(n) | RData::Other(n) => n,
                };
                (r.name, r.rtype, r.ttl, v)
            })
            .collect();
        d.set_item("answers", answers)?;
        Ok(d)
    }

    /// One DNS message -> {msg_id, is_response, rcode, questions: [(name, qtype)],
    /// answers: [(name, rtype, ttl, value)]}.
    #[pyfunction]
    #[pyo3(signature = (data, addresses_only=false))]
    fn parse_dns<'py>(
        py: Python<'py>,
        data: &[u8],
        addresses_only: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        dns_dict(
            py,
            dns::decode_dns(data, addresses_only).map_err(value_error)?,
        )
    }

    /// The DNS name at `pos` -> (name, offset after it).
    #[pyfunction]
    fn dns_read_name(data: &[u8], pos: usize) -> PyResult<(String, usize)> {
        dns::read_name(data, pos).map_err(value_error)
    }

    stream_probe! {
        /// DNS over TCP (two-byte length prefixes), fed in pieces.
        DnsTcpStream(dns::DnsTcpFramer), feed: dns_dict, get: buffered, overflow;
        #[new]
        #[pyo3(signature = (*, max_messages=1024))]
        fn new(max_messages: u64) -> Self {
            DnsTcpStream {
                inner: dns::DnsTcpFramer::with_max_messages(max_messages),
            }
        }
    }

    fn ws_message<'py>(py: Python<'py>, m: WsMessage) -> PyResult<Bound<'py, PyAny>> {
        Ok((m.opcode, PyBytes::new(py, &m.data))
            .into_pyobject(py)?
            .into_any())
    }

    stream_probe! {
        /// One direction of a WebSocket connection after the upgrade: feed() -> [(opcode,
        /// data)] for each complete text (1) or binary (2) message, unmasked and inflated.
        WsStream(WsSniffer), feed: ws_message, get: buffered, overflow;
        #[new]
        #[pyo3(signature = (*, deflate=false, max_message=crate::ws::DEFAULT_MAX_MESSAGE))]
        fn new(deflate: bool, max_message: usize) -> Self {
            WsStream {
                inner: WsSniffer::with_limit(deflate, max_message),
            }
        }
    }

    fn framed<'py>(
        py: Python<'py>,
        f: Framed,
    ) -> PyResult<(Vec<Bound<'py, PyBytes>>, Bound<'py, PyBytes>)> {
        let lines = f.lines.iter().map(|l| PyBytes::new(py, l)).collect();
        Ok((lines, PyBytes::new(py, &f.raw)))
    }

    fn not_lines(e: NotJsonLines) -> PyErr {
        PyValueError::new_err(match e {
            NotJsonLines::FirstLine => "not JSON lines: the first line is not JSON",
            NotJsonLines::BadRun => "not JSON lines: too many bad lines in a row",
        })
    }

    stream_probe! {
        /// One direction's JSON-lines framing: feed() and close() -> (lines, raw): complete
        /// lines that are valid JSON, and the bytes from a gzip member on, handed up raw.
        LineStream(LineFramer), get: buffered, overflow;
        #[new]
        #[pyo3(signature = (*, midstream=false))]
        fn new(midstream: bool) -> Self {
            LineStream {
                inner: LineFramer::new(midstream),
            }
        }

        #[allow(clippy::type_complexity)]
        fn feed<'py>(
            &mut self,
            py: Python<'py>,
            data: &[u8],
        ) -> PyResult<(Vec<Bound<'py, PyBytes>>, Bound<'py, PyBytes>)> {
            let mut out = Framed::default();
            self.inner.feed(data, &mut out).map_err(not_lines)?;
            framed(py, out)
        }

        /// The stream ended: a last line without its LF still counts.
        #[allow(clippy::type_complexity)]
        fn close<'py>(
            &mut self,
            py: Python<'py>,
        ) -> PyResult<(Vec<Bound<'py, PyBytes>>, Bound<'py, PyBytes>)> {
            let mut out = Framed::default();
            self.inner.close(&mut out).map_err(not_lines)?;
            framed(py, out)
        }
    }

    stream_probe! {
        /// One side of a SOCKS4/4a/5 handshake (version 4 or 5): feed() -> None while the
        /// handshake is incomplete, then ("request", (kind, host, port, command), tunnel bytes)
        /// on the client side or ("open", None, tunnel bytes) on the server side, and ("open",
        /// None, bytes) for everything after.
        SocksStream(SocksSniffer), get: buffered;
        #[new]
        fn new(version: u8, client: bool) -> PyResult<Self> {
            let v = match version {
                4 => socks::Version::Socks4,
                5 => socks::Version::Socks5,
                _ => return Err(PyValueError::new_err("SOCKS version is 4 or 5")),
            };
            Ok(SocksStream {
                inner: SocksSniffer::new(v, client),
            })
        }

        #[allow(clippy::type_complexity)]
        fn feed<'py>(
            &mut self,
            py: Python<'py>,
            data: &[u8],
        ) -> PyResult<Option<(&'static str, Option<(&'static str, String, u16, u8)>, Bound<'py, PyBytes>)>> {
            Ok(match self.inner.feed(data).map_err(value_error)? {
                socks::Step::NeedMore => None,
                socks::Step::Request(t, rest) => Some((
                    "request",
                    Some((t.kind, t.host, t.port, t.command)),
                    PyBytes::new(py, &rest),
                )),
                socks::Step::Open(rest) => Some(("open", None, PyBytes::new(py, &rest))),
            })
        }
    }

    /// The SOCKS version (4 or 5) a client's first bytes look like, or None.
    #[pyfunction]
    fn socks_detect(chunk: &[u8]) -> Option<u8> {
        socks::detect(chunk).map(|v| match v {
            socks::Version::Socks4 => 4,
            socks::Version::Socks5 => 5,
        })
    }

    /// The record shape of a TLS session: set_version() from the ServerHello, record() per
    /// record (true when a judged count changed), summary() as the K_TLS_SHAPE event.
    #[pyclass(module = "netdetect._core", unsendable)]
    pub struct TlsShape {
        inner: ShapeTracker,
    }

    #[pymethods]
    impl TlsShape {
        #[new]
        fn new() -> Self {
            TlsShape {
                inner: ShapeTracker::new(),
            }
        }

        fn set_version(&mut self, version: u16) {
            self.inner.set_version(version);
        }

        fn record(&mut self, from_client: bool, content_type: u8, length: u16, ts: f64) -> bool {
            self.inner.record(from_client, content_type, length, ts)
        }

        fn summary<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
            super::shape_tuple(py, &self.inner.s)
        }
    }

    /// One DHCP/BOOTP message (the UDP payload) -> its fields (addresses as text).
    #[pyfunction]
    fn parse_dhcp<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyDict>> {
        let m = dhcp::decode_dhcp(data).map_err(value_error)?;
        let d = PyDict::new(py);
        d.set_item("op", m.op)?;
        d.set_item("msg_type", m.msg_type)?;
        d.set_item("xid", m.xid)?;
        d.set_item("chaddr", m.chaddr)?;
        d.set_item("ciaddr", m.ciaddr.to_string())?;
        d.set_item("yiaddr", m.yiaddr.to_string())?;
        d.set_item("requested", m.requested.map(|a| a.to_string()))?;
        d.set_item("hostname", m.hostname)?;
        d.set_item("client_fqdn", m.client_fqdn)?;
        d.set_item("lease_time", m.lease_time)?;
        d.set_item("server_id", m.server_id.map(|a| a.to_string()))?;
        Ok(d)
    }

    /// A plaintext SV2 SetupConnection at the start of `data` -> its fields; None when the
    /// header does not claim one; ValueError when it claims one and is malformed.
    #[pyfunction]
    fn sv2_parse_plaintext<'py>(
        py: Python<'py>,
        data: &[u8],
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some(s) = sv2::parse_plaintext(data).map_err(value_error)? else {
            return Ok(None);
        };
        let d = PyDict::new(py);
        d.set_item("protocol", s.protocol)?;
        d.set_item("vendor", s.vendor)?;
        d.set_item("hardware", s.hardware)?;
        d.set_item("firmware", s.firmware)?;
        d.set_item("endpoint_host", s.endpoint_host)?;
        d.set_item("endpoint_port", s.endpoint_port)?;
        Ok(Some(d))
    }

    #[pyfunction]
    fn sv2_frame_length(data: &[u8]) -> Option<usize> {
        sv2::plaintext_frame_length(data)
    }

    #[pyfunction]
    fn sv2_looks_uniform(data: &[u8]) -> bool {
        sv2::looks_uniform(data)
    }

    /// The Noise NX shape: the client's first payload (and its length) and the length of
    /// the server's first payload (None: not answered yet, judge the client side alone).
    #[pyfunction]
    #[pyo3(signature = (client_first, server_first_len=None))]
    fn sv2_noise_handshake(client_first: &[u8], server_first_len: Option<usize>) -> bool {
        match server_first_len {
            Some(n) => sv2::noise_handshake(client_first, client_first.len(), n),
            None => sv2::noise_initiator(client_first, client_first.len()),
        }
    }

    #[pyfunction]
    fn sv2_encrypted_frame_plausible(size: usize) -> bool {
        sv2::encrypted_frame_plausible(size)
    }

    /// The L2..L4 decoder on its own: decode() -> {src, dst, proto, sport, dport, flags,
    /// seq, payload, vlan} or None; counters() as the engine reports them.
    #[pyclass(module = "netdetect._core", unsendable)]
    pub struct PacketDecoder {
        inner: RsPacketDecoder,
    }

    #[pymethods]
    impl PacketDecoder {
        #[new]
        fn new() -> Self {
            PacketDecoder {
                inner: RsPacketDecoder::new(),
            }
        }

        fn decode<'py>(
            &mut self,
            py: Python<'py>,
            linktype: u32,
            frame: &[u8],
        ) -> PyResult<Option<Bound<'py, PyDict>>> {
            let Some(p) = self.inner.decode(linktype, frame) else {
                return Ok(None);
            };
            let d = PyDict::new(py);
            d.set_item("src", p.src.to_string())?;
            d.set_item("dst", p.dst.to_string())?;
            d.set_item("src_bytes", ip_bytes(py, &p.src))?;
            d.set_item("proto", p.proto)?;
            d.set_item("sport", p.sport)?;
            d.set_item("dport", p.dport)?;
            d.set_item("flags", p.flags)?;
            d.set_item("seq", p.seq)?;
            d.set_item("payload", PyBytes::new(py, p.payload))?;
            d.set_item("vlan", p.vlan)?;
            Ok(Some(d))
        }

        fn counters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
            let d = PyDict::new(py);
            for (k, v) in self.inner.counters.items() {
                d.set_item(k, v)?;
            }
            d.set_item("other_l4", self.inner.counters.other_l4)?;
            Ok(d)
        }
    }

    /// One direction's reassembly of the first bytes of a TCP stream.
    #[pyclass(module = "netdetect._core", unsendable)]
    pub struct Reassembler {
        inner: RsReassembler,
    }

    #[pymethods]
    impl Reassembler {
        #[new]
        #[pyo3(signature = (max_bytes=65536, max_pending=65536))]
        fn new(max_bytes: usize, max_pending: usize) -> Self {
            Reassembler {
                inner: RsReassembler::new(max_bytes, max_pending),
            }
        }

        fn start(&mut self, isn: u32) {
            self.inner.start(isn);
        }

        /// Add a segment -> (bytes delivered in order by it, a gap was skipped before them).
        fn feed<'py>(
            &mut self,
            py: Python<'py>,
            seq: u32,
            data: &[u8],
        ) -> (Bound<'py, PyBytes>, bool) {
            let mut got = Vec::new();
            let gap = self
                .inner
                .feed(seq, data, &mut |c| got.extend_from_slice(c));
            (PyBytes::new(py, &got), gap)
        }

        #[getter]
        fn done(&self) -> bool {
            self.inner.done()
        }

        /// (delivered, pending_bytes, gaps, retransmitted, overflow)
        fn stats(&self) -> (usize, usize, u64, u64, u64) {
            let r = &self.inner;
            (
                r.delivered,
                r.pending_bytes,
                r.gaps,
                r.retransmitted,
                r.overflow,
            )
        }
    }

    #[pyfunction]
    fn seq_diff(a: u32, b: u32) -> i64 {
        crate::reasm::seq_diff(a, b)
    }

    /// Every frame of a capture -> ([(ts, linktype, frame, orig_len)], snapped, damage or
    /// None as (path, offset, reason)); frames before the damage are all returned.
    #[pyfunction]
    #[allow(clippy::type_complexity)]
    fn read_capture<'py>(
        py: Python<'py>,
        path: String,
    ) -> PyResult<(
        Vec<(f64, u32, Bound<'py, PyBytes>, u32)>,
        u64,
        Option<(String, u64, String)>,
    )> {
        let (frames, snapped, damage) = py
            .detach(|| {
                let mut r = CaptureReader::open(&path)?;
                let mut frames = Vec::new();
                let damage = loop {
                    match r.next_frame() {
                        Ok(Some(f)) => frames.push((f.ts, f.linktype, f.data.to_vec(), f.orig_len)),
                        Ok(None) => break None,
                        Err(e) => break Some((e.path, e.offset, e.reason)),
                    }
                };
                Ok((frames, r.stats.snapped, damage))
            })
            .map_err(|e: crate::error::CaptureError| {
                PyOSError::new_err((e.path, e.offset, e.reason))
            })?;
        let frames = frames
            .into_iter()
            .map(|(ts, lt, data, orig)| (ts, lt, PyBytes::new(py, &data), orig))
            .collect();
        Ok((frames, snapped, damage))
    }

    /// Capture files below `paths` (directories walked, sorted, captures recognised by
    /// content; "-" kept) -> (files, [(path, offset, reason)] for each bad input).
    #[pyfunction]
    #[allow(clippy::type_complexity)]
    fn expand_paths(
        py: Python<'_>,
        paths: Vec<String>,
    ) -> (Vec<String>, Vec<(String, u64, String)>) {
        let (files, errors) = py.detach(|| capture::expand_paths(&paths));
        let errors = errors
            .into_iter()
            .map(|e| (e.path, e.offset, e.reason))
            .collect();
        (files, errors)
    }

    pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add_function(wrap_pyfunction!(parse_client_hello, m)?)?;
        m.add_function(wrap_pyfunction!(parse_server_hello, m)?)?;
        m.add_function(wrap_pyfunction!(parse_certificate, m)?)?;
        m.add_function(wrap_pyfunction!(is_grease, m)?)?;
        m.add_function(wrap_pyfunction!(ja4_version_code, m)?)?;
        m.add_function(wrap_pyfunction!(parse_dns, m)?)?;
        m.add_function(wrap_pyfunction!(dns_read_name, m)?)?;
        m.add_function(wrap_pyfunction!(parse_dhcp, m)?)?;
        m.add_function(wrap_pyfunction!(sv2_parse_plaintext, m)?)?;
        m.add_function(wrap_pyfunction!(sv2_frame_length, m)?)?;
        m.add_function(wrap_pyfunction!(sv2_looks_uniform, m)?)?;
        m.add_function(wrap_pyfunction!(sv2_noise_handshake, m)?)?;
        m.add_function(wrap_pyfunction!(sv2_encrypted_frame_plausible, m)?)?;
        m.add_function(wrap_pyfunction!(seq_diff, m)?)?;
        m.add_function(wrap_pyfunction!(read_capture, m)?)?;
        m.add_function(wrap_pyfunction!(expand_paths, m)?)?;
        m.add_function(wrap_pyfunction!(socks_detect, m)?)?;
        m.add_class::<TlsStream>()?;
        m.add_class::<WsStream>()?;
        m.add_class::<LineStream>()?;
        m.add_class::<SocksStream>()?;
        m.add_class::<TlsShape>()?;
        m.add_class::<HttpStream>()?;
        m.add_class::<DnsTcpStream>()?;
        m.add_class::<PacketDecoder>()?;
        m.add_class::<Reassembler>()?;
        Ok(())
    }
}
