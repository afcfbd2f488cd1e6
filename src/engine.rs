//! The engine: frames in, a batch of events out, only for flows that can still carry
//! evidence.
//!
//! Per packet the work is an L2..L4 decode, one hash lookup and a few counters; flows under
//! inspection move through modes — DEEP (reassemble the first bytes of each direction and
//! run the sniffers the payload calls for), WATCH (bare TLS or Stratum V2: sizes and timing),
//! SAMPLE (unidentified TCP: small packets that look like JSON-RPC), DONE. A flow is
//! *announced* to Python (an `Open` event) the first time it has something Python must
//! judge; only announced flows produce further events and an `End`.
//!
//! Python owns the judgement and tells the engine what it decided through `mark`
//! (alerted, keep, done, a JSON decoder that gave up): the engine never scores.
//!
//! One memory budget covers flows, inspection state, reassembly buffers and passive DNS;
//! when it is exceeded the oldest flows not under suspicion are evicted (counted).

use crate::dhcp;
use crate::dns::{self, DnsMessage, DnsTcpFramer, RData};
use crate::http::{HttpHead, HttpSniffer};
use crate::intel::Prefilter;
use crate::lines::{Framed, LineFramer};
use crate::packet::{Decoded, PacketDecoder, TCP, UDP};
use crate::pdns::{answer_addresses, PassiveDns};
use crate::reasm::Reassembler;
use crate::socks::{self, SocksSniffer};
use crate::sv2::{self, SetupConnection};
use crate::tls::shape::{ShapeSummary, ShapeTracker};
use crate::tls::{CertNames, ClientHelloInfo, TlsEvent, TlsSniffer};
use crate::ws::WsSniffer;
use hashbrown::{DefaultHashBuilder, HashMap, HashTable};
use std::collections::{BTreeMap, VecDeque};
use std::hash::BuildHasher as _;
use std::net::{IpAddr, Ipv4Addr};

const DNS_PORTS: [u16; 3] = [53, 5353, 5355];
const SAMPLE_MAX: usize = 1400;
const BULK_AVG: u64 = 1000;
const BULK_AFTER: u64 = 64;
const MAX_PUSHES: usize = 64;
const WATCH_MAX_BYTES: u64 = 512 * 1024;
const PDNS_SWEEP: f64 = 300.0;
const DHCP_PENDING: usize = 4096;
const DHCP_WAIT: f64 = 300.0;
/// Bytes a flow entry costs (its slot, its index and handle map entries, its order queue
/// slot), measured from the struct sizes plus hash map overhead; inspection state is
/// counted on top.
const FLOW_COST: usize = 256;
const INSPECT_COST: usize = 768;
/// Proxy, WebSocket and TLS-shape state of a flow that has any (see `Paths`): the struct
/// (232 bytes) plus a held proxy target's host name (at most 255 bytes).
const PATHS_COST: usize = 512;
/// Bare TLS stays in DEEP this long, so its record shape is seen (then WATCH timing).
const SHAPE_WINDOW: f64 = 60.0;
const SHAPE_EMITS: u8 = 24;
/// Tunnels opened inside one direction (CONNECT inside SOCKS ...): more is not a client.
const MAX_TUNNELS: u8 = 3;

// What Python marked on a flow.
pub const MARK_ALERTED: u32 = 1;
pub const MARK_KEEP: u32 = 2;
pub const MARK_DONE: u32 = 4;
pub const MARK_JSON_DEAD0: u32 = 8;
pub const MARK_JSON_DEAD1: u32 = 16;

#[derive(Debug, Clone)]
pub struct Config {
    pub max_flows: usize,
    pub memory_budget: usize,
    pub tcp_idle: f64,
    pub udp_idle: f64,
    pub closed_linger: f64,
    pub active_timeout: f64,
    pub sweep_every: f64,
    pub stream_budget: usize,
    pub stream_pending: usize,
    pub pdns_budget: usize,
    /// Small-record size and the duration from which bare-TLS timing is handed up.
    pub timing_small: usize,
    pub timing_min_duration: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_flows: 150_000,
            memory_budget: 128 << 20,
            tcp_idle: 600.0,
            udp_idle: 120.0,
            closed_linger: 10.0,
            active_timeout: 3600.0,
            sweep_every: 5.0,
            stream_budget: 65536,
            stream_pending: 65536,
            pdns_budget: 16 << 20,
            timing_small: 1200,
            timing_min_duration: 45.0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sv2Kind {
    NoiseInitiator,
    EncryptedFrame,
}

#[derive(Debug, Clone)]
pub enum Body {
    /// First event of a flow. `names_a`/`names_b`: passive-DNS names of each end at the
    /// flow's first payload, given only when one of them is under a pool domain.
    Open {
        proto: u8,
        a: (IpAddr, u16),
        b: (IpAddr, u16),
        first_ts: f64,
        midflow: bool,
        vlan: u16,
        names_a: Vec<String>,
        names_b: Vec<String>,
    },
    ClientHello(Box<ClientHelloInfo>),
    Certificate(CertNames),
    Http(Box<HttpHead>),
    /// Complete JSON lines of a direction (each checked well-formed JSON).
    Lines(Vec<Vec<u8>>),
    /// Raw bytes of a JSON-lines direction that switched to gzip members (EthereumStratum
    /// 2.0.0), for Python's line decoder; `midstream`: joined mid-line.
    Stream {
        data: Vec<u8>,
        midstream: bool,
    },
    /// Bytes were lost in this direction: the line decoder resynchronises.
    Gap,
    /// The stream ended: a last line without its LF is complete.
    StreamClose,
    /// A small packet of an unidentified flow that looks like JSON-RPC.
    Sample(Vec<u8>),
    Sv2Setup(Box<SetupConnection>),
    /// A proxy handshake named the target: SOCKS4/4a/5 or HTTP CONNECT.
    Proxy {
        kind: &'static str,
        host: String,
        port: u16,
    },
    /// A complete WebSocket data message (unmasked, inflated) that may be JSON.
    WsMessage {
        opcode: u8,
        data: Vec<u8>,
    },
    /// The record shape of a bare-TLS session changed (see tls::shape).
    TlsShape(ShapeSummary),
    Sv2(Sv2Kind, usize),
    /// Bare TLS in WATCH: small pool records' times and the miner's small record count.
    Timing {
        pushes: Vec<f64>,
        client_small: u32,
        bytes: u64,
    },
    /// The end of one packet's events for this flow: judgement settles now.
    Settle,
    /// A pool DNS answer names an address this flow talks to.
    PoolAnswer {
        ip: IpAddr,
        name: String,
    },
    /// A watched name resolved (handle 0).
    DnsHost {
        name: String,
        addr: IpAddr,
        ttl: u32,
    },
    /// A DHCP ACK: `ip` handed to the client that named itself `name` (handle 0).
    Lease {
        ip: Ipv4Addr,
        name: String,
        lease_time: Option<u32>,
        server: IpAddr,
    },
    /// A DHCP ACK without a usable address or name (handle 0; counted in Python).
    LeaseUnusable,
    End {
        reason: &'static str,
        closed: bool,
        last_ts: f64,
        pkts: [u64; 2],
        bytes: [u64; 2],
    },
}

#[derive(Debug, Clone)]
pub struct Event {
    pub handle: u64,
    pub d: u8,
    pub ts: f64,
    pub body: Body,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Deep,
    Watch,
    Sample,
    Done,
}

enum Dec {
    Tls(Box<TlsSniffer>),
    Http(Box<HttpSniffer>),
    /// JSON lines, framed and checked here.
    Json(Box<LineFramer>),
    DnsTcp(Box<DnsTcpFramer>),
    Socks(Box<SocksSniffer>),
    Ws(Box<WsSniffer>),
}

/// The ways mining leaves a network besides a plain pool connection: through a proxy,
/// in WebSocket frames, in TLS without a name. Boxed: most flows have none of it.
#[derive(Default)]
struct Paths {
    /// The SOCKS version and the client's direction, once a client spoke SOCKS.
    socks: Option<(socks::Version, usize)>,
    /// The direction that answers a CONNECT.
    connect_reply: Option<usize>,
    /// A proxy target not handed up yet (an ordinary web target): it goes up before the
    /// flow's first other event, if the flow ever has one.
    proxy_held: Option<Body>,
    /// Upgrade: websocket seen from this direction; the 101 agreed permessage-deflate.
    websocket: [bool; 2],
    ws_deflate: bool,
    tunnels: [u8; 2],
    shape: Option<ShapeTracker>,
    shape_emits: u8,
}

struct Inspect {
    mode: Mode,
    streams: [Option<Reassembler>; 2],
    /// None: direction not started; Some(empty): nothing wants it.
    decs: [Option<Vec<Dec>>; 2],
    json_started: [bool; 2],
    first_len: [usize; 2],
    first_payload: Vec<u8>,
    handshake_done: [bool; 2],
    pushes: Vec<f64>,
    client_small: u32,
    sv2: bool,
    sv2_frames: [u32; 2],
    sv2_frames_sent: bool,
    bare_tls: bool,
    client_dir: Option<u8>,
    /// A ClientHello not handed up (an ordinary name): kept in case a pool DNS answer
    /// for the address arrives later and the flow must be judged after all.
    held_hello: Option<Box<ClientHelloInfo>>,
    /// Bytes held by reassembly (out of order) and by the sniffers (partial records and
    /// heads): both count against the memory budget.
    pending_bytes: usize,
    dec_bytes: usize,
    paths: Option<Box<Paths>>,
}

impl Inspect {
    fn new() -> Self {
        Inspect {
            mode: Mode::Deep,
            streams: [None, None],
            decs: [None, None],
            json_started: [false, false],
            first_len: [0, 0],
            first_payload: Vec::new(),
            handshake_done: [false, false],
            pushes: Vec::new(),
            client_small: 0,
            sv2: false,
            sv2_frames: [0, 0],
            sv2_frames_sent: false,
            bare_tls: false,
            client_dir: None,
            held_hello: None,
            pending_bytes: 0,
            dec_bytes: 0,
            paths: None,
        }
    }
}

/// A flow's identity, the same from either end: protocol, family and both ends in a fixed
/// order (addresses as integers, so ordering, comparing and hashing are a few integer
/// operations).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    proto: u8,
    v6: bool,
    lo: (u128, u16),
    hi: (u128, u16),
}

fn addr_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn key_of(proto: u8, x: (IpAddr, u16), y: (IpAddr, u16)) -> Key {
    let x2 = (addr_bits(x.0), x.1);
    let y2 = (addr_bits(y.0), y.1);
    let (lo, hi) = if x2 <= y2 { (x2, y2) } else { (y2, x2) };
    // Both ends of one packet are of one family (a tunnel's inner header is its own).
    Key {
        proto,
        v6: x.0.is_ipv6() || y.0.is_ipv6(),
        lo,
        hi,
    }
}

struct Flow {
    key: Key,
    handle: u64,
    proto: u8,
    a: (IpAddr, u16),
    b: (IpAddr, u16),
    first_ts: f64,
    last_ts: f64,
    pkts: [u64; 2],
    bytes: [u64; 2],
    midflow: bool,
    vlan: u16,
    closed: u8,
    isn: [Option<u32>; 2],
    announced: bool,
    marks: u32,
    ins: Option<Box<Inspect>>,
}

impl Flow {
    fn is_closed(&self) -> bool {
        self.closed & 4 != 0 || self.closed & 3 == 3
    }
}

/// The flows, each in a slot found by one keyed hash lookup per packet; everything a packet
/// does to its flow afterwards goes through the slot. Slots of removed flows are reused.
/// The index hashes keys with hashbrown's default hasher (foldhash, seeded per process):
/// flow keys are chosen by whoever sends packets, so the hash must not be predictable.
struct FlowTable {
    slots: Vec<Option<Flow>>,
    /// The handle of each slot's flow (0: free), dense: queues check a flow is still
    /// there without touching the flow.
    owner: Vec<u64>,
    free: Vec<usize>,
    index: HashTable<usize>,
    hasher: DefaultHashBuilder,
    live: usize,
}

impl FlowTable {
    fn new() -> Self {
        FlowTable {
            slots: Vec::new(),
            owner: Vec::new(),
            free: Vec::new(),
            index: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
            live: 0,
        }
    }

    fn len(&self) -> usize {
        self.live
    }

    fn is_empty(&self) -> bool {
        self.live == 0
    }

    fn find(&self, key: &Key) -> Option<usize> {
        let slots = &self.slots;
        self.index
            .find(hash_key(&self.hasher, key), |&s| {
                slots[s].as_ref().is_some_and(|f| f.key == *key)
            })
            .copied()
    }

    /// Store a flow whose key is not in the table; returns its slot.
    fn insert(&mut self, flow: Flow) -> usize {
        let hash = hash_key(&self.hasher, &flow.key);
        let handle = flow.handle;
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s] = Some(flow);
                self.owner[s] = handle;
                s
            }
            None => {
                self.slots.push(Some(flow));
                self.owner.push(handle);
                self.slots.len() - 1
            }
        };
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.index.insert_unique(hash, slot, |&s| {
            hash_key(
                hasher,
                &slots[s].as_ref().expect("indexed slot holds a flow").key,
            )
        });
        self.live += 1;
        slot
    }

    fn remove(&mut self, slot: usize) -> Option<Flow> {
        let flow = self.slots.get_mut(slot)?.take()?;
        if let Ok(entry) = self
            .index
            .find_entry(hash_key(&self.hasher, &flow.key), |&s| s == slot)
        {
            entry.remove();
        }
        self.free.push(slot);
        self.owner[slot] = 0;
        self.live -= 1;
        Some(flow)
    }

    /// The slot of a flow that is still in the table.
    fn live(&self, (handle, slot): FlowRef) -> Option<usize> {
        (self.owner.get(slot) == Some(&handle)).then_some(slot)
    }

    fn iter(&self) -> impl Iterator<Item = (usize, &Flow)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(s, f)| f.as_ref().map(|f| (s, f)))
    }
}

fn hash_key(hasher: &DefaultHashBuilder, key: &Key) -> u64 {
    hasher.hash_one(key)
}

impl std::ops::Index<usize> for FlowTable {
    type Output = Flow;
    fn index(&self, slot: usize) -> &Flow {
        self.slots[slot].as_ref().expect("live flow slot")
    }
}

impl std::ops::IndexMut<usize> for FlowTable {
    fn index_mut(&mut self, slot: usize) -> &mut Flow {
        self.slots[slot].as_mut().expect("live flow slot")
    }
}

/// A flow by handle and slot: the slot finds it without a hash lookup, the handle tells
/// whether it is still the flow in that slot.
type FlowRef = (u64, usize);

/// Seconds of timeouts filed in the ring; later ones wait in `Timeouts::far`. The default
/// timeouts (at most an hour) all fit.
const TIMEOUT_RING: usize = 4096;

/// When flows may time out: handles filed under the whole second of their earliest
/// possible timeout (`due_at`), in a ring of seconds (O(1) to file, O(due) to take).
///
/// That time is a lower bound: it only moves later as packets arrive, except when a flow
/// closes or a packet goes back in time, which files the flow again. The sweep looks only
/// at the flows filed under seconds that have come, applies the exact rule and files the
/// survivors anew, so it removes exactly the flows a scan of the whole table would, without
/// the scan. Handles of flows that left another way stay until reached or compacted.
#[derive(Default)]
struct Timeouts {
    /// The second of `ring[0]`.
    base: i64,
    ring: VecDeque<Vec<FlowRef>>,
    far: BTreeMap<i64, Vec<FlowRef>>,
    /// Timeouts before `base` (only when packet time goes back): looked at every sweep.
    early: Vec<FlowRef>,
    len: usize,
}

impl Timeouts {
    /// File `handle` under `at`; `now` is the packet time (it starts the ring).
    fn file(&mut self, at: f64, flow: FlowRef, now: f64) {
        if at.is_nan() || at == f64::INFINITY {
            return; // never: no comparison in `sweep` fires on a NaN or infinite timeout
        }
        if self.len == 0 {
            self.clear();
            self.base = now.floor() as i64;
        }
        self.len += 1;
        // Saturating: -inf and times beyond i64 land in the first and last second.
        let second = at.floor() as i64;
        let Ok(ahead) = usize::try_from(second.saturating_sub(self.base)) else {
            self.early.push(flow);
            return;
        };
        if ahead >= TIMEOUT_RING {
            self.far.entry(second).or_default().push(flow);
            return;
        }
        if self.ring.len() <= ahead {
            self.ring.resize_with(ahead + 1, Vec::new);
        }
        self.ring[ahead].push(flow);
    }

    /// Every handle filed under a second up to `now`'s (and some filed later).
    fn take_due(&mut self, now: f64, out: &mut Vec<FlowRef>) {
        self.len -= self.early.len();
        out.append(&mut self.early);
        let now = now.floor() as i64;
        while self.base <= now {
            let Some(handles) = self.ring.pop_front() else {
                // Nothing filed before `now` is left in the ring: jump to it.
                self.base = now.saturating_add(1);
                break;
            };
            self.len -= handles.len();
            out.extend(handles);
            self.base = self.base.saturating_add(1);
        }
        // Far timeouts that came into the ring's reach move into it (or are due).
        while let Some(entry) = self.far.first_entry() {
            let second = *entry.key();
            let ahead = second.saturating_sub(self.base);
            if ahead >= TIMEOUT_RING as i64 {
                break;
            }
            let handles = entry.remove();
            self.len -= handles.len();
            if ahead < 0 {
                out.extend(handles);
            } else {
                let ahead = ahead as usize;
                if self.ring.len() <= ahead {
                    self.ring.resize_with(ahead + 1, Vec::new);
                }
                self.len += handles.len();
                self.ring[ahead].extend(handles);
            }
        }
    }

    fn clear(&mut self) {
        self.ring.clear();
        self.far.clear();
        self.early.clear();
        self.len = 0;
    }
}

/// The earliest packet time at which `f` can be swept, as `sweep` decides, given what is
/// known now; a second early, so rounding can only make the sweep look sooner.
fn due_at(cfg: &Config, f: &Flow) -> f64 {
    let limit = if f.proto == TCP {
        cfg.tcp_idle
    } else {
        cfg.udp_idle
    };
    // f64::min ignores a NaN setting, as the comparisons in `sweep` never fire on one.
    let idle = if f.is_closed() {
        limit.min(cfg.closed_linger)
    } else {
        limit
    };
    (f.first_ts + cfg.active_timeout).min(f.last_ts + idle) - 1.0
}

#[derive(Debug, Default, Clone)]
pub struct Counters {
    pub flows_created: u64,
    pub flows_expired: u64,
    pub flows_active_expired: u64,
    pub flows_evicted: u64,
    pub flows_budget_evicted: u64,
    pub decode_errors: u64,
    /// Directions that looked like JSON lines at first and turned out not to be.
    pub json_not_lines: u64,
    pub dns_messages: u64,
    pub dns_pool_answers: u64,
    pub pdns_expired: u64,
    pub sampled_packets: u64,
    pub dhcp_messages: u64,
    pub dhcp_decode_errors: u64,
    pub dhcp_dropped: u64,
    pub announced: u64,
    pub events: u64,
    pub panics: u64,
    pub memory_peak: usize,
}

pub struct Engine {
    pub cfg: Config,
    pub intel: Prefilter,
    pub packets: PacketDecoder,
    side_packets: PacketDecoder,
    pub pdns: PassiveDns,
    pub counters: Counters,
    /// UDP DNS arrives through `feed_dns` (a live worker's side channel), not `feed`.
    pub dns_elsewhere: bool,
    in_side: bool,
    flows: FlowTable,
    /// Handle -> slot of each live flow handed up to Python (the only handles it knows).
    handles: HashMap<u64, usize>,
    /// Creation order for eviction; stale handles are skipped lazily.
    order: VecDeque<FlowRef>,
    /// When each flow may time out at the earliest (see `Timeouts`).
    timeouts: Timeouts,
    /// Address → flows with payload, for pool answers that arrive later; append-only,
    /// cleaned lazily and compacted when it outgrows the table.
    by_addr: HashMap<IpAddr, Vec<FlowRef>>,
    by_addr_len: usize,
    next_handle: u64,
    next_sweep: f64,
    pdns_sweep: f64,
    pub last_ts: f64,
    mem_inspect: usize,
    dhcp_names: HashMap<(u32, String), (String, f64)>,
    dhcp_order: VecDeque<(u32, String)>,
    out: Vec<Event>,
    /// Scratch for the in-order chunks one packet delivers (reused, never shrunk beyond
    /// one stream's budget plus its pending bytes).
    chunk_buf: Vec<u8>,
    chunk_ends: Vec<usize>,
    dns_decoder: dns::DnsDecoder,
}

impl Engine {
    pub fn new(cfg: Config, intel: Prefilter) -> Self {
        let pdns = PassiveDns::new(cfg.pdns_budget);
        Engine {
            cfg,
            intel,
            packets: PacketDecoder::new(),
            side_packets: PacketDecoder::new(),
            pdns,
            counters: Counters::default(),
            dns_elsewhere: false,
            in_side: false,
            flows: FlowTable::new(),
            handles: HashMap::new(),
            order: VecDeque::new(),
            timeouts: Timeouts::default(),
            by_addr: HashMap::new(),
            by_addr_len: 0,
            next_handle: 1,
            next_sweep: f64::NEG_INFINITY,
            pdns_sweep: f64::NEG_INFINITY,
            last_ts: 0.0,
            mem_inspect: 0,
            dhcp_names: HashMap::new(),
            dhcp_order: VecDeque::new(),
            out: Vec::new(),
            chunk_buf: Vec::new(),
            chunk_ends: Vec::new(),
            dns_decoder: dns::DnsDecoder::default(),
        }
    }

    pub fn flows(&self) -> usize {
        self.flows.len()
    }

    /// Bytes accounted against the memory budget.
    pub fn memory(&self) -> usize {
        self.flows.len() * FLOW_COST + self.mem_inspect + self.by_addr_len * 24 + self.pdns.bytes()
    }

    pub fn take_events(&mut self) -> Vec<Event> {
        self.counters.events += self.out.len() as u64;
        std::mem::take(&mut self.out)
    }

    pub fn pending_events(&self) -> usize {
        self.out.len()
    }

    /// Python's decision about a flow it was handed; unknown handles (already ended) are
    /// ignored.
    pub fn mark(&mut self, handle: u64, marks: u32) {
        let Some(&slot) = self.handles.get(&handle) else {
            return;
        };
        let flow = &mut self.flows[slot];
        flow.marks |= marks;
        if let Some(ins) = flow.ins.as_mut() {
            if marks & MARK_DONE != 0 {
                ins.mode = Mode::Done;
                drop_streams(ins, &mut self.mem_inspect);
            } else if marks & MARK_ALERTED != 0 && matches!(ins.mode, Mode::Watch | Mode::Sample) {
                ins.mode = Mode::Done;
            }
        }
    }

    /// Counters of a live flow Python was handed: (pkts, bytes, last_ts).
    pub fn flow_counters(&self, handle: u64) -> Option<([u64; 2], [u64; 2], f64)> {
        let f = &self.flows[*self.handles.get(&handle)?];
        Some((f.pkts, f.bytes, f.last_ts))
    }

    pub fn feed(&mut self, ts: f64, linktype: u32, frame: &[u8]) {
        let Some(pkt) = self.packets.decode(linktype, frame) else {
            return;
        };
        if pkt.proto != TCP && pkt.proto != UDP {
            return;
        }
        self.feed_packet(ts, &pkt);
    }

    /// A frame from the DNS side channel: a live worker sees every DNS answer on the link,
    /// whichever worker the fanout hashed it to, so passive DNS does not depend on the
    /// worker a packet lands on. Only UDP DNS is taken from it.
    pub fn feed_dns(&mut self, ts: f64, linktype: u32, frame: &[u8]) {
        // Its own decoder: the side channel's packets are not the worker's packets.
        let Some(pkt) = self.side_packets.decode(linktype, frame) else {
            return;
        };
        if pkt.proto == UDP && is_dns(&pkt) {
            if ts > self.last_ts {
                self.last_ts = ts;
            }
            self.in_side = true;
            self.udp(ts, &pkt);
            self.in_side = false;
        }
    }

    fn feed_packet(&mut self, ts: f64, pkt: &Decoded<'_>) {
        if ts > self.last_ts {
            self.last_ts = ts;
        }
        if ts >= self.next_sweep {
            let first = self.next_sweep == f64::NEG_INFINITY;
            self.next_sweep = ts + self.cfg.sweep_every;
            if !first {
                self.sweep(ts);
            }
        }
        let src = (pkt.src, pkt.sport);
        let dst = (pkt.dst, pkt.dport);
        let key = key_of(pkt.proto, src, dst);
        let tcp = pkt.proto == TCP;
        let mut found = self.flows.find(&key);
        if let Some(s) = found {
            if tcp && pkt.flags & 0x12 == 0x02 && self.flows[s].is_closed() {
                // Port reuse: a fresh SYN on a closed flow starts a new connection.
                self.remove(s, "reused");
                found = None;
            }
        }
        let slot = match found {
            Some(s) => s,
            None => self.create(key, ts, pkt),
        };
        let flow = &mut self.flows[slot];
        let d: usize = usize::from(flow.a != src);
        let was_closed = flow.is_closed();
        // A packet older than the last one (a merged or reordered capture) moves the flow's
        // idle time back.
        let went_back = ts < flow.last_ts;
        if tcp && pkt.flags & 0x07 != 0 {
            if pkt.flags & 0x02 != 0 {
                flow.isn[d] = Some(pkt.seq);
            }
            if pkt.flags & 0x01 != 0 {
                flow.closed |= 1 << d;
            }
            if pkt.flags & 0x04 != 0 {
                flow.closed |= 4;
            }
        }
        flow.last_ts = ts;
        flow.pkts[d] += 1;
        if went_back || (!was_closed && flow.is_closed()) {
            // Closing (the linger) or going back in time brings the flow's timeout forward.
            self.queue_timeout(slot, ts);
        }
        let flow = &mut self.flows[slot];
        let plen = pkt.payload.len();
        if plen == 0 {
            return;
        }
        flow.bytes[d] += plen as u64;
        let before = self.out.len();
        if flow.ins.is_none() {
            if !tcp {
                self.udp(ts, pkt);
                return;
            }
            let flow = &mut self.flows[slot];
            flow.ins = Some(Box::new(Inspect::new()));
            self.mem_inspect += INSPECT_COST;
            let (handle, a, b) = (flow.handle, flow.a.0, flow.b.0);
            self.index_addr(a, (handle, slot));
            self.index_addr(b, (handle, slot));
            self.first_payload(slot, ts);
        }
        let flow = &self.flows[slot];
        let mode = flow.ins.as_ref().map_or(Mode::Done, |i| i.mode);
        match mode {
            Mode::Done => {}
            Mode::Deep => self.deep(slot, d, ts, pkt.seq, pkt.payload),
            Mode::Watch => self.watch(slot, d, ts, plen),
            Mode::Sample => self.sample(slot, d, ts, pkt.payload),
        }
        if self.out.len() > before {
            let f = &self.flows[slot];
            if f.announced {
                // Judgement settles once per packet, after all of the packet's events.
                let handle = f.handle;
                self.out.push(Event {
                    handle,
                    d: d as u8,
                    ts,
                    body: Body::Settle,
                });
            }
        }
        let mut mem = self.memory();
        while mem > self.cfg.memory_budget && !self.flows.is_empty() {
            self.evict(true);
            mem = self.memory();
        }
        if mem > self.counters.memory_peak {
            self.counters.memory_peak = mem;
        }
    }

    /// A new flow for `key` (not in the table); returns its slot.
    fn create(&mut self, key: Key, ts: f64, pkt: &Decoded<'_>) -> usize {
        if self.flows.len() >= self.cfg.max_flows.max(1) {
            self.evict(false);
        } else if self.memory() + FLOW_COST > self.cfg.memory_budget {
            self.evict(true);
        }
        let handle = self.next_handle;
        self.next_handle += 1;
        let (src, dst) = ((pkt.src, pkt.sport), (pkt.dst, pkt.dport));
        let tcp = pkt.proto == TCP;
        // A SYN/ACK opens the flow from the server's side: the client is the originator.
        let (a, b) = if tcp && pkt.flags & 0x12 == 0x12 {
            (dst, src)
        } else {
            (src, dst)
        };
        let midflow = tcp && pkt.flags & 0x02 == 0;
        let slot = self.flows.insert(Flow {
            key,
            handle,
            proto: pkt.proto,
            a,
            b,
            first_ts: ts,
            last_ts: ts,
            pkts: [0, 0],
            bytes: [0, 0],
            midflow,
            vlan: pkt.vlan,
            closed: 0,
            isn: [None, None],
            announced: false,
            marks: 0,
            ins: None,
        });
        self.order.push_back((handle, slot));
        self.queue_timeout(slot, ts);
        self.counters.flows_created += 1;
        let mem = self.memory();
        if mem > self.counters.memory_peak {
            self.counters.memory_peak = mem;
        }
        slot
    }

    fn index_addr(&mut self, addr: IpAddr, flow: FlowRef) {
        self.by_addr.entry(addr).or_default().push(flow);
        self.by_addr_len += 1;
        if self.by_addr_len > 2 * self.flows.len() + 4096 {
            let flows = &self.flows;
            let mut n = 0;
            self.by_addr.retain(|_, v| {
                v.retain(|&r| flows.live(r).is_some());
                n += v.len();
                !v.is_empty()
            });
            self.by_addr_len = n;
        }
    }

    fn announce(&mut self, slot: usize, ts: f64, names_a: Vec<String>, names_b: Vec<String>) {
        let flow = &mut self.flows[slot];
        if flow.announced {
            return;
        }
        flow.announced = true;
        self.handles.insert(flow.handle, slot);
        self.counters.announced += 1;
        self.out.push(Event {
            handle: flow.handle,
            d: 0,
            ts,
            body: Body::Open {
                proto: flow.proto,
                a: flow.a,
                b: flow.b,
                first_ts: flow.first_ts,
                midflow: flow.midflow,
                vlan: flow.vlan,
                names_a,
                names_b,
            },
        });
    }

    fn emit(&mut self, slot: usize, d: usize, ts: f64, body: Body) {
        self.announce(slot, ts, Vec::new(), Vec::new());
        let flow = &mut self.flows[slot];
        let handle = flow.handle;
        let held = flow
            .ins
            .as_mut()
            .and_then(|i| i.paths.as_mut())
            .and_then(|p| p.proxy_held.take());
        if let Some(held) = held {
            let cd = flow.ins.as_ref().and_then(|i| i.client_dir).unwrap_or(0);
            self.out.push(Event {
                handle,
                d: cd,
                ts,
                body: held,
            });
        }
        self.out.push(Event {
            handle,
            d: d as u8,
            ts,
            body,
        });
    }

    /// At a flow's first payload: does either end resolve from a pool name?
    fn first_payload(&mut self, slot: usize, ts: f64) {
        let (a, b) = {
            let f = &self.flows[slot];
            (f.a.0, f.b.0)
        };
        // Names are copied out only for a flow that is handed up.
        let intel = &self.intel;
        let pool_b = self.pdns.any_name(&b, ts, |n| intel.pool_name(n));
        let pool_a = self.pdns.any_name(&a, ts, |n| intel.pool_name(n));
        if pool_b || pool_a {
            let names_b = self.pdns.names_for(&b, ts);
            let names_a = self.pdns.names_for(&a, ts);
            self.announce(slot, ts, names_a, names_b);
        }
    }

    /// The flow's proxy/WebSocket/shape state, made (and charged) on first use.
    fn paths(&mut self, slot: usize) -> &mut Paths {
        let ins = self.flows[slot]
            .ins
            .as_mut()
            .expect("flow under inspection");
        if ins.paths.is_none() {
            self.mem_inspect += PATHS_COST;
        }
        ins.paths.get_or_insert_with(Box::default)
    }

    /// A proxy handshake named its target. A pool name or a non-web port goes up now; an
    /// ordinary web target only if the flow turns out to have something else to judge.
    fn proxy_target(
        &mut self,
        slot: usize,
        d: usize,
        kind: &'static str,
        host: String,
        port: u16,
        ts: f64,
    ) {
        if let Some(ins) = self.flows[slot].ins.as_mut() {
            ins.client_dir.get_or_insert(d as u8);
        }
        let wanted = self.flows[slot].announced
            || !matches!(port, 80 | 443)
            || self.intel.pool_name(host.trim_end_matches('.'));
        let body = Body::Proxy { kind, host, port };
        if wanted {
            self.emit(slot, d, ts, body);
        } else {
            self.paths(slot).proxy_held = Some(body);
        }
    }

    // -- DEEP -------------------------------------------------------------------------

    fn deep(&mut self, slot: usize, d: usize, ts: f64, seq: u32, payload: &[u8]) {
        let (budget, pending_cap) = (self.cfg.stream_budget, self.cfg.stream_pending);
        // In-order chunks go to one scratch buffer the engine keeps (no allocation per
        // packet); `ends` marks where each chunk ends.
        let mut buf = std::mem::take(&mut self.chunk_buf);
        let mut ends = std::mem::take(&mut self.chunk_ends);
        buf.clear();
        ends.clear();
        let gap;
        let watching;
        {
            let flow = &mut self.flows[slot];
            let isn = flow.isn[d];
            let ins = flow.ins.as_mut().expect("inspect");
            // Bare TLS past its handshake stays in DEEP for its record shape; its packets
            // count for WATCH timing exactly as they would in WATCH.
            watching = ins.bare_tls && !ins.sv2 && ins.handshake_done[0] && ins.handshake_done[1];
            if ins.first_len[d] == 0 {
                ins.first_len[d] = payload.len();
                if d == 0 {
                    ins.first_payload = payload[..payload.len().min(64)].to_vec();
                }
            }
            let s = ins.streams[d].get_or_insert_with(|| {
                let mut r = Reassembler::new(budget, pending_cap);
                if let Some(isn) = isn {
                    r.start(isn);
                }
                r
            });
            let before = s.pending_bytes;
            gap = s.feed(seq, payload, &mut |c| {
                buf.extend_from_slice(c);
                ends.push(buf.len());
            });
            let after = s.pending_bytes;
            // Reassembly holds out-of-order bytes: they count against the budget.
            ins.pending_bytes = (ins.pending_bytes + after).saturating_sub(before);
            self.mem_inspect = (self.mem_inspect + after).saturating_sub(before);
        }
        self.sv2_shape(slot, ts);
        if gap {
            self.gap(slot, d, ts);
        }
        let mut start = 0;
        for &end in &ends {
            self.decode(slot, d, &buf[start..end], ts);
            start = end;
            let mode = self.flows[slot].ins.as_ref().map_or(Mode::Done, |i| i.mode);
            if mode != Mode::Deep {
                break;
            }
        }
        self.chunk_buf = buf;
        self.chunk_ends = ends;
        if watching {
            self.timing(slot, d, ts, payload.len());
        }
        self.maybe_leave_deep(slot, d);
    }

    fn sv2_shape(&mut self, slot: usize, ts: f64) {
        let flow = &self.flows[slot];
        let ins = flow.ins.as_ref().expect("inspect");
        if ins.sv2 || ins.first_len[0] != 64 || ins.first_len[1] == 0 {
            return;
        }
        if !sv2::noise_handshake(&ins.first_payload, ins.first_len[0], ins.first_len[1]) {
            return;
        }
        let flow = &mut self.flows[slot];
        let ins = flow.ins.as_mut().expect("inspect");
        ins.sv2 = true;
        ins.client_dir = Some(0);
        self.emit(slot, 0, ts, Body::Sv2(Sv2Kind::NoiseInitiator, 64));
    }

    fn pick(&mut self, slot: usize, d: usize, chunk: &[u8], ts: f64) -> Vec<Dec> {
        let midflow = self.flows[slot].midflow;
        let mut decs: Vec<Dec> = Vec::new();
        let head = chunk.first().copied();
        let second = chunk.get(1).copied();
        let (socks_state, connect_reply, tunnelled) = self.flows[slot]
            .ins
            .as_ref()
            .and_then(|i| i.paths.as_ref())
            .map_or((None, None, false), |p| {
                (p.socks, p.connect_reply, p.tunnels[d] > 0)
            });
        if !midflow && !tunnelled {
            match socks_state {
                Some((v, cd)) if cd != d => {
                    decs.push(Dec::Socks(Box::new(SocksSniffer::new(v, false))));
                    return decs;
                }
                Some(_) => {}
                None => {
                    if let Some(v) = socks::detect(chunk) {
                        self.paths(slot).socks = Some((v, d));
                        decs.push(Dec::Socks(Box::new(SocksSniffer::new(v, true))));
                        return decs;
                    }
                }
            }
        }
        if head == Some(0x16) && second == Some(3) {
            decs.push(Dec::Tls(Box::new(TlsSniffer::new(false))));
        } else if midflow && matches!(head, Some(0x14..=0x17)) && second == Some(3) {
            decs.push(Dec::Tls(Box::new(TlsSniffer::new(true))));
        } else {
            let first = chunk.iter().find(|c| !c.is_ascii_whitespace()).copied();
            if matches!(first, Some(b'{' | b'[')) {
                decs.push(Dec::Json(Box::new(LineFramer::new(false))));
            } else if chunk.len() >= 4 && is_http_start(&chunk[..4]) {
                let mut h = Box::<HttpSniffer>::default();
                if connect_reply == Some(d) {
                    h.expect_connect_reply();
                }
                decs.push(Dec::Http(h));
            } else if midflow && memchr::memchr(b'{', chunk).is_some() {
                // Joined mid-line: the framer drops bytes up to the first LF.
                decs.push(Dec::Json(Box::new(LineFramer::new(true))));
            }
            if decs.is_empty() {
                match sv2::parse_plaintext(chunk) {
                    Ok(Some(setup)) => self.emit(slot, d, ts, Body::Sv2Setup(Box::new(setup))),
                    Ok(None) => {}
                    Err(_) => self.counters.decode_errors += 1,
                }
            }
        }
        let f = &self.flows[slot];
        if DNS_PORTS.contains(&f.a.1) || DNS_PORTS.contains(&f.b.1) {
            decs.push(Dec::DnsTcp(Box::default()));
        }
        decs
    }

    fn decode(&mut self, slot: usize, d: usize, chunk: &[u8], ts: f64) {
        let need_pick = self.flows[slot].ins.as_ref().expect("ins").decs[d].is_none();
        if need_pick {
            let decs = self.pick(slot, d, chunk, ts);
            let ins = self.ins_mut(slot);
            ins.decs[d] = Some(decs);
        }
        let mut decs = {
            let ins = self.ins_mut(slot);
            ins.decs[d].take().unwrap_or_default()
        };
        // Which decoders stay (bit i: decs[i]); the vector is kept, not rebuilt, per packet.
        let mut alive: u64 = 0;
        // A proxy handshake or an HTTP upgrade ended: the bytes after it are the tunnelled
        // protocol (true: WebSocket frames).
        let mut tunnel: Option<(Vec<u8>, bool)> = None;
        for (i, dec) in decs.iter_mut().enumerate() {
            let ok = match dec {
                Dec::Socks(sn) => match sn.feed(chunk) {
                    Ok(socks::Step::NeedMore) => true,
                    Ok(socks::Step::Request(t, rest)) => {
                        self.proxy_target(slot, d, t.kind, t.host, t.port, ts);
                        tunnel = Some((rest, false));
                        true
                    }
                    Ok(socks::Step::Open(rest)) => {
                        tunnel = Some((rest, false));
                        true
                    }
                    Err(_) => false,
                },
                Dec::Ws(w) => {
                    let mut msgs = Vec::new();
                    let r = w.feed(chunk, &mut msgs);
                    for m in msgs {
                        let first = m.data.iter().find(|c| !c.is_ascii_whitespace());
                        if matches!(first, Some(b'{' | b'[')) {
                            self.emit(
                                slot,
                                d,
                                ts,
                                Body::WsMessage {
                                    opcode: m.opcode,
                                    data: m.data,
                                },
                            );
                        }
                    }
                    r.is_ok()
                }
                Dec::Tls(t) => {
                    let mut evs = Vec::new();
                    let r = t.feed(chunk, &mut evs);
                    for ev in evs {
                        self.tls_event(slot, d, ev, ts);
                    }
                    r.is_ok()
                }
                Dec::Http(h) => {
                    let mut heads = Vec::new();
                    let r = h.feed(chunk, &mut heads);
                    for head in heads {
                        self.http_paths(slot, d, &head, ts);
                        self.http_head(slot, d, head, ts);
                    }
                    if let Some(rest) = h.take_tunnel() {
                        let ws = self.flows[slot]
                            .ins
                            .as_ref()
                            .and_then(|i| i.paths.as_ref())
                            .is_some_and(|p| p.websocket[d]);
                        tunnel = Some((rest, ws));
                    }
                    r.is_ok()
                }
                Dec::Json(framer) => {
                    let dead = if d == 0 {
                        MARK_JSON_DEAD0
                    } else {
                        MARK_JSON_DEAD1
                    };
                    if self.flows[slot].marks & dead != 0 {
                        false
                    } else {
                        let mut framed = Framed::default();
                        let raw_before = framer.raw;
                        let r = framer.feed(chunk, &mut framed);
                        self.json_framed(slot, d, ts, framed, raw_before);
                        if r.is_err() {
                            self.counters.json_not_lines += 1;
                        }
                        r.is_ok()
                    }
                }
                Dec::DnsTcp(f) => {
                    let mut msgs = Vec::new();
                    let r = f.feed(chunk, &mut msgs);
                    for m in msgs {
                        self.dns(&m, ts);
                    }
                    r.is_ok()
                }
            };
            if ok {
                alive |= 1 << i;
            } else if !matches!(dec, Dec::Json(_)) {
                self.counters.decode_errors += 1;
            }
        }
        if let Some((rest, ws)) = tunnel {
            self.open_tunnel(slot, d, rest, ws, ts);
            return;
        }
        let mut i = 0;
        decs.retain(|_| {
            let keep = alive & (1 << i) != 0;
            i += 1;
            keep
        });
        if let Some(ins) = self.flows[slot].ins.as_mut() {
            if ins.decs[d].is_none() && ins.mode != Mode::Done {
                ins.decs[d] = Some(decs);
            }
            let held = dec_buffered(&ins.decs);
            self.mem_inspect = (self.mem_inspect + held).saturating_sub(ins.dec_bytes);
            ins.dec_bytes = held;
        }
    }

    /// What an HTTP head says about the bytes after it: a CONNECT names its target and
    /// makes the other direction's 2xx a tunnel; an Upgrade to websocket makes it frames.
    fn http_paths(&mut self, slot: usize, d: usize, head: &HttpHead, ts: f64) {
        let ws = head
            .upgrade
            .as_deref()
            .is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
        if head.is_request && head.method.as_deref() == Some("CONNECT") {
            let target = head.path.clone().unwrap_or_default();
            let (host, port) = match target.rsplit_once(':') {
                Some((h, p)) => (h, p.parse::<u16>().unwrap_or(0)),
                None => (target.as_str(), 0),
            };
            let host = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_ascii_lowercase();
            self.paths(slot).connect_reply = Some(1 - d);
            if let Some(decs) = self.flows[slot]
                .ins
                .as_mut()
                .and_then(|i| i.decs[1 - d].as_mut())
            {
                for dec in decs.iter_mut() {
                    if let Dec::Http(h) = dec {
                        h.expect_connect_reply();
                    }
                }
            }
            // A DNS name is at most 253 bytes: anything longer is not a target to name.
            if !host.is_empty() && host.len() <= 255 {
                self.proxy_target(slot, d, "http-connect", host, port, ts);
            }
        } else if ws && (head.is_request || head.status == Some(101)) {
            let p = self.paths(slot);
            p.websocket[d] = true;
            if head.status == Some(101) && head.ws_deflate {
                p.ws_deflate = true;
                if let Some(decs) = self.flows[slot]
                    .ins
                    .as_mut()
                    .and_then(|i| i.decs[1 - d].as_mut())
                {
                    for dec in decs.iter_mut() {
                        if let Dec::Ws(w) = dec {
                            w.set_deflate();
                        }
                    }
                }
            }
        }
    }

    /// A proxy handshake or an upgrade is over in direction `d`: the rest of the stream is
    /// sniffed afresh (or as WebSocket frames), starting with `rest`.
    fn open_tunnel(&mut self, slot: usize, d: usize, rest: Vec<u8>, ws: bool, ts: f64) {
        let p = self.paths(slot);
        p.tunnels[d] = p.tunnels[d].saturating_add(1);
        let too_deep = p.tunnels[d] > MAX_TUNNELS;
        let deflate = p.ws_deflate;
        let ins = self.flows[slot]
            .ins
            .as_mut()
            .expect("flow under inspection");
        if ins.mode != Mode::Deep {
            return;
        }
        ins.decs[d] = if ws {
            Some(vec![Dec::Ws(Box::new(WsSniffer::new(deflate)))])
        } else if too_deep {
            Some(Vec::new())
        } else {
            None
        };
        let held = dec_buffered(&ins.decs);
        self.mem_inspect = (self.mem_inspect + held).saturating_sub(ins.dec_bytes);
        ins.dec_bytes = held;
        if !rest.is_empty() && !too_deep {
            self.decode(slot, d, &rest, ts);
        }
    }

    fn tls_event(&mut self, slot: usize, d: usize, ev: TlsEvent, ts: f64) {
        match ev {
            TlsEvent::Record {
                content_type,
                length,
            } => {
                let flow = &mut self.flows[slot];
                let alerted = flow.marks & MARK_ALERTED != 0;
                let ins = flow.ins.as_mut().expect("ins");
                if content_type == 23 {
                    ins.handshake_done[d] = true;
                }
                let from_client = ins.client_dir == Some(d as u8);
                let summary = ins.paths.as_mut().and_then(|p| {
                    let sh = p.shape.as_mut()?;
                    let changed = sh.record(from_client, content_type, length, ts);
                    (changed && !alerted && p.shape_emits < SHAPE_EMITS).then(|| {
                        p.shape_emits += 1;
                        sh.s
                    })
                });
                if let Some(s) = summary {
                    self.emit(slot, d, ts, Body::TlsShape(s));
                }
            }
            TlsEvent::ServerHello(info) => {
                if let Some(sh) = self.flows[slot]
                    .ins
                    .as_mut()
                    .and_then(|i| i.paths.as_mut())
                    .and_then(|p| p.shape.as_mut())
                {
                    sh.set_version(info.version);
                }
            }
            TlsEvent::Certificate(names) => {
                let interesting = self.flows[slot].announced
                    || names
                        .subject_cn
                        .iter()
                        .chain(names.san_dns.iter())
                        .any(|n| self.intel.pool_name(n.trim_start_matches("*.")));
                if interesting {
                    self.emit(slot, d, ts, Body::Certificate(names));
                }
            }
            TlsEvent::ClientHello(hello) => {
                let bare = hello.sni.is_none() && hello.alpn.is_empty();
                let flow = &mut self.flows[slot];
                let announced = flow.announced;
                let ins = flow.ins.as_mut().expect("ins");
                ins.client_dir = Some(d as u8);
                if bare {
                    ins.bare_tls = true;
                    self.paths(slot).shape = Some(ShapeTracker::new());
                }
                let flow = &mut self.flows[slot];
                let ins = flow.ins.as_mut().expect("ins");
                let wanted = announced
                    || bare
                    || hello
                        .sni
                        .as_deref()
                        .is_some_and(|s| self.intel.pool_name(s))
                    || self.intel.tls_known(&hello.ja3_hash, &hello.ja4);
                if wanted {
                    self.emit(slot, d, ts, Body::ClientHello(hello));
                } else if hello.sni.is_some() {
                    // An ordinary site by name: the rest is encrypted and of no interest.
                    ins.mode = Mode::Done;
                    ins.held_hello = Some(hello);
                    drop_streams(ins, &mut self.mem_inspect);
                }
            }
        }
    }

    fn http_head(&mut self, slot: usize, d: usize, head: HttpHead, ts: f64) {
        let wanted = self.flows[slot].announced
            || !head.body.is_empty()
            || head.x_mining_extensions.is_some()
            || head.x_stratum.is_some()
            || head.x_long_polling.is_some()
            || head
                .host
                .as_deref()
                .is_some_and(|h| self.intel.pool_name(host_part(h)))
            || head
                .user_agent
                .as_deref()
                .is_some_and(|u| self.intel.agent(u));
        if wanted {
            self.emit(slot, d, ts, Body::Http(Box::new(head)));
        }
    }

    fn gap(&mut self, slot: usize, d: usize, ts: f64) {
        let ins = self.ins_mut(slot);
        let Some(decs) = ins.decs[d].take() else {
            return;
        };
        if decs.is_empty() {
            // Nothing recognised the bytes before the hole: the bytes after it get a fresh
            // look, as the start of a stream would.
            return;
        }
        let mut fresh = Vec::new();
        let mut raw = false;
        for dec in decs {
            match dec {
                Dec::Json(f) => {
                    // A direction already handed up raw stays raw: Python's line decoder
                    // resynchronises on the next gzip member.
                    raw = f.raw;
                    let mut next = LineFramer::new(true);
                    next.raw = f.raw;
                    fresh.push(Dec::Json(Box::new(next)));
                }
                Dec::Tls(_) => fresh.push(Dec::Tls(Box::new(TlsSniffer::new(true)))),
                // Frames and handshakes cannot be resynchronised after a hole.
                Dec::Http(_) | Dec::DnsTcp(_) | Dec::Socks(_) | Dec::Ws(_) => {}
            }
        }
        ins.decs[d] = Some(fresh);
        if raw {
            self.emit(slot, d, ts, Body::Gap);
        }
    }

    /// The inspection state of a flow known to be under inspection.
    fn ins_mut(&mut self, slot: usize) -> &mut Inspect {
        self.flows[slot]
            .ins
            .as_mut()
            .expect("flow under inspection")
    }

    /// Hand up what a JSON-lines framer produced: its lines, then (once it switched to
    /// gzip members) the raw bytes for Python's line decoder.
    fn json_framed(&mut self, slot: usize, d: usize, ts: f64, framed: Framed, raw_before: bool) {
        if !framed.lines.is_empty() {
            self.emit(slot, d, ts, Body::Lines(framed.lines));
        }
        if !framed.raw.is_empty() {
            let ins = self.ins_mut(slot);
            let midstream = raw_before && !ins.json_started[d];
            ins.json_started[d] = true;
            self.emit(
                slot,
                d,
                ts,
                Body::Stream {
                    data: framed.raw,
                    midstream,
                },
            );
        }
    }

    fn maybe_leave_deep(&mut self, slot: usize, d: usize) {
        let flow = &mut self.flows[slot];
        let pkts_d = flow.pkts[d];
        let alerted = flow.marks & MARK_ALERTED != 0;
        let Some(ins) = flow.ins.as_mut() else { return };
        if ins.mode != Mode::Deep {
            return;
        }
        let exhausted = ins.streams[d].as_ref().is_some_and(Reassembler::done);
        let empty = |x: &Option<Vec<Dec>>| x.as_ref().is_some_and(Vec::is_empty);
        let dead = (empty(&ins.decs[0]) && empty(&ins.decs[1]))
            || (empty(&ins.decs[d]) && ins.decs[1 - d].is_none() && pkts_d > 3);
        // Bare TLS stays until its record shape had its window (or the flow alerted).
        let shaping = !alerted
            && ins.paths.as_ref().is_some_and(|p| p.shape.is_some())
            && flow.last_ts - flow.first_ts < SHAPE_WINDOW;
        let tls_over = ins.handshake_done[0] && ins.handshake_done[1] && !shaping;
        if !(exhausted || dead || tls_over) {
            return;
        }
        drop_streams(ins, &mut self.mem_inspect);
        ins.decs = [Some(Vec::new()), Some(Vec::new())];
        ins.mode = if ins.sv2 || (ins.bare_tls && !alerted) {
            Mode::Watch
        } else if alerted || tls_over {
            Mode::Done
        } else {
            Mode::Sample
        };
    }

    // -- WATCH / SAMPLE -----------------------------------------------------------------

    fn watch(&mut self, slot: usize, d: usize, ts: f64, plen: usize) {
        let flow = &mut self.flows[slot];
        let alerted = flow.marks & MARK_ALERTED != 0;
        let ins = flow.ins.as_mut().expect("ins");
        if ins.sv2 {
            if sv2::encrypted_frame_plausible(plen) {
                ins.sv2_frames[d] += 1;
                if ins.sv2_frames[0].min(ins.sv2_frames[1]) >= 3 && !ins.sv2_frames_sent {
                    ins.sv2_frames_sent = true;
                    self.emit(slot, d, ts, Body::Sv2(Sv2Kind::EncryptedFrame, plen));
                }
            }
            if alerted {
                self.set_mode(slot, Mode::Done);
            }
            return;
        }
        self.timing(slot, d, ts, plen);
    }

    /// Bare TLS: small records' times each way, for stratum-like timing.
    fn timing(&mut self, slot: usize, d: usize, ts: f64, plen: usize) {
        let small = self.cfg.timing_small;
        let min_dur = self.cfg.timing_min_duration;
        let flow = &mut self.flows[slot];
        let alerted = flow.marks & MARK_ALERTED != 0;
        let total = flow.bytes[0] + flow.bytes[1];
        let elapsed = ts - flow.first_ts;
        let ins = flow.ins.as_mut().expect("ins");
        let client = usize::from(ins.client_dir.unwrap_or(0));
        let mut timing = None;
        if plen <= small {
            if d == client {
                ins.client_small += 1;
            } else {
                if ins.pushes.len() >= MAX_PUSHES {
                    ins.pushes.drain(..MAX_PUSHES / 2);
                }
                ins.pushes.push(ts);
                if elapsed >= min_dur {
                    timing = Some(Body::Timing {
                        pushes: ins.pushes.clone(),
                        client_small: ins.client_small,
                        bytes: total,
                    });
                }
            }
        }
        if alerted || total > WATCH_MAX_BYTES {
            ins.mode = Mode::Done;
        }
        if let Some(t) = timing {
            self.emit(slot, d, ts, t);
        }
    }

    fn sample(&mut self, slot: usize, d: usize, ts: f64, payload: &[u8]) {
        let flow = &mut self.flows[slot];
        if payload.len() > SAMPLE_MAX {
            let n = flow.pkts[0] + flow.pkts[1];
            if n > BULK_AFTER && flow.bytes[0] + flow.bytes[1] > BULK_AVG * n {
                // A bulk transfer, not a session of small JSON lines.
                flow.ins.as_mut().expect("ins").mode = Mode::Done;
            }
            return;
        }
        let hint = |h: &[u8]| memchr::memmem::find(payload, h).is_some();
        if !(hint(b"\"method\"") || hint(b"\"result\"") || hint(b"\"params\"")) {
            return;
        }
        self.counters.sampled_packets += 1;
        self.emit(slot, d, ts, Body::Sample(payload.to_vec()));
    }

    fn set_mode(&mut self, slot: usize, mode: Mode) {
        if let Some(ins) = self.flows[slot].ins.as_mut() {
            ins.mode = mode;
        }
    }

    // -- UDP: DNS and DHCP --------------------------------------------------------------

    fn udp(&mut self, ts: f64, pkt: &Decoded<'_>) {
        let (sp, dp) = (pkt.sport, pkt.dport);
        let payload = pkt.payload;
        if DNS_PORTS.contains(&sp) || DNS_PORTS.contains(&dp) {
            if self.dns_elsewhere && !self.in_side {
                // The side channel brings every answer; the flow was counted above.
                return;
            }
            // Only answers feed passive DNS; queries are skipped before any parsing.
            if payload.len() < 12 || payload[2] & 0x80 == 0 {
                return;
            }
            // Decoded into the strings of earlier answers: no allocation per record.
            let mut decoder = std::mem::take(&mut self.dns_decoder);
            match decoder.decode(payload, true) {
                Ok(msg) => self.dns(msg, ts),
                Err(_) => self.counters.decode_errors += 1,
            }
            self.dns_decoder = decoder;
        } else if (sp == 67 || sp == 68) && (dp == 67 || dp == 68) {
            self.dhcp(ts, pkt);
        }
    }

    fn dns(&mut self, msg: &DnsMessage, ts: f64) {
        self.counters.dns_messages += 1;
        if !msg.is_response || msg.answers.is_empty() {
            return;
        }
        if ts >= self.pdns_sweep {
            // Answers fill passive DNS, so they also pay for clearing out expired names,
            // at most once per PDNS_SWEEP seconds of packet time.
            self.pdns_sweep = ts + PDNS_SWEEP;
            self.counters.pdns_expired += self.pdns.expire(ts);
        }
        // Only answers that name a pool are kept: judgement asks passive DNS for pool names
        // alone, so the budget holds pool names, and a flood of other answers (a busy
        // resolver, random names) can neither evict them nor cost a learned entry each.
        let intel = &self.intel;
        self.pdns.learn_if(msg, ts, |n| intel.pool_name(n));
        let watched = if self.intel.watching() {
            answer_addresses(msg)
        } else {
            Vec::new()
        };
        for (name, addr, ttl) in watched {
            if self.intel.is_watched(&name) {
                self.out.push(Event {
                    handle: 0,
                    d: 0,
                    ts,
                    body: Body::DnsHost { name, addr, ttl },
                });
            }
        }
        let mut pool: Option<&str> = None;
        for (qname, _) in &msg.questions {
            if self.intel.pool_name(qname) {
                self.counters.dns_pool_answers += 1;
                pool.get_or_insert(qname.as_str());
            }
        }
        let Some(name) = pool else { return };
        let mut addrs: Vec<IpAddr> = msg
            .answers
            .iter()
            .filter_map(|r| match r.value {
                RData::Addr(a) => Some(a),
                _ => None,
            })
            .collect();
        addrs.sort_unstable();
        addrs.dedup();
        let name = name.to_string();
        for addr in addrs {
            self.retro(addr, &name, ts);
        }
    }

    /// Flows already in the table that talk to `addr` learn that it resolved from a pool
    /// name: found through the address index, never by scanning the table.
    fn retro(&mut self, addr: IpAddr, name: &str, ts: f64) {
        // Every flow talking to `addr` now learns the answer, and a later flow finds the
        // name in passive DNS at its first payload: the index entry is done with.
        let Some(flows) = self.by_addr.remove(&addr) else {
            return;
        };
        self.by_addr_len -= flows.len();
        let mut seen = hashbrown::HashSet::new();
        let slots: Vec<usize> = flows
            .iter()
            .filter(|r| seen.insert(r.0))
            .filter_map(|&r| self.flows.live(r))
            .collect();
        for slot in slots {
            let flow = &mut self.flows[slot];
            if flow.marks & MARK_ALERTED != 0 || flow.ins.is_none() {
                continue;
            }
            if flow.a.0 != addr && flow.b.0 != addr {
                continue;
            }
            let held = flow.ins.as_mut().and_then(|i| i.held_hello.take());
            let d = usize::from(flow.ins.as_ref().and_then(|i| i.client_dir).unwrap_or(0));
            if let Some(hello) = held {
                self.emit(slot, d, ts, Body::ClientHello(hello));
            }
            self.emit(
                slot,
                0,
                ts,
                Body::PoolAnswer {
                    ip: addr,
                    name: name.to_string(),
                },
            );
        }
    }

    fn dhcp(&mut self, ts: f64, pkt: &Decoded<'_>) {
        let msg = match dhcp::decode_dhcp(pkt.payload) {
            Ok(m) => m,
            Err(_) => {
                self.counters.decode_errors += 1;
                self.counters.dhcp_decode_errors += 1;
                return;
            }
        };
        self.counters.dhcp_messages += 1;
        let key = (msg.xid, msg.chaddr.clone());
        if msg.op == dhcp::BOOTREQUEST {
            let name = msg.hostname.clone().or_else(|| msg.client_fqdn.clone());
            if let Some(name) = name {
                if matches!(msg.msg_type, dhcp::DISCOVER | dhcp::REQUEST | dhcp::INFORM) {
                    if self.dhcp_names.insert(key.clone(), (name, ts)).is_none() {
                        self.dhcp_order.push_back(key);
                    }
                    while self.dhcp_names.len() > DHCP_PENDING {
                        let Some(old) = self.dhcp_order.pop_front() else {
                            break;
                        };
                        if self.dhcp_names.remove(&old).is_some() {
                            self.counters.dhcp_dropped += 1;
                        }
                    }
                }
            }
            return;
        }
        if msg.msg_type == dhcp::NAK {
            self.dhcp_names.remove(&key);
            return;
        }
        // Only a reply from a server (or relay) port commits an address.
        if msg.msg_type != dhcp::ACK || pkt.sport != 67 {
            return;
        }
        let asked = self.dhcp_names.remove(&key);
        let mut name = msg.hostname.clone().or_else(|| msg.client_fqdn.clone());
        if name.is_none() {
            if let Some((n, t)) = asked {
                if ts - t <= DHCP_WAIT {
                    name = Some(n);
                }
            }
        }
        // An ACK to INFORM leaves yiaddr empty: the client configured ciaddr itself.
        let ip = if msg.yiaddr.is_unspecified() {
            msg.ciaddr
        } else {
            msg.yiaddr
        };
        let body = match name {
            Some(name) if !ip.is_unspecified() => Body::Lease {
                ip,
                name,
                lease_time: msg.lease_time,
                server: pkt.src,
            },
            _ => Body::LeaseUnusable,
        };
        self.out.push(Event {
            handle: 0,
            d: 0,
            ts,
            body,
        });
    }

    // -- leaving the table -------------------------------------------------------------

    /// Flows idle past their timeout, or active for too long, leave. Only flows whose
    /// earliest possible timeout has come are looked at (see `Timeouts`), not the whole table.
    fn sweep(&mut self, now: f64) {
        let oldest = now - self.cfg.active_timeout;
        let mut dead = Vec::new();
        let mut aged = Vec::new();
        let mut later = Vec::new();
        let mut due = Vec::new();
        self.timeouts.take_due(now, &mut due);
        for flow in due {
            let handle = flow.0;
            let Some(slot) = self.flows.live(flow) else {
                continue; // the flow already left
            };
            let f = &self.flows[slot];
            if f.first_ts < oldest {
                aged.push((handle, slot));
                continue;
            }
            let idle = now - f.last_ts;
            let limit = if f.proto == TCP {
                self.cfg.tcp_idle
            } else {
                self.cfg.udp_idle
            };
            if (f.is_closed() && idle > self.cfg.closed_linger) || idle > limit {
                dead.push((handle, slot));
            } else {
                later.push((handle, slot));
            }
        }
        // A flow may have come due more than once (closing files it again).
        // Flows leave in the order they came, so the flow records of a replay are the
        // same on every run.
        for v in [&mut dead, &mut aged, &mut later] {
            v.sort_unstable_by_key(|(h, _)| *h);
            v.dedup();
        }
        #[cfg(test)]
        self.check_sweep(now, &dead, &aged);
        for &(handle, slot) in &later {
            // Seen since it was queued: its timeout moved on.
            let at = due_at(&self.cfg, &self.flows[slot]);
            self.timeouts.file(at, (handle, slot), now);
        }
        for (_, slot) in dead {
            self.counters.flows_expired += 1;
            self.remove(slot, "timeout");
        }
        for (_, slot) in aged {
            self.counters.flows_active_expired += 1;
            self.remove(slot, "active");
        }
    }

    /// The eviction order and the timeout queue keep entries of flows that already left
    /// (skipped when reached); they are dropped once they outnumber the live flows, so
    /// both stay within a small multiple of the table (O(1) amortised per flow).
    fn queue_timeout(&mut self, slot: usize, now: f64) {
        let f = &self.flows[slot];
        self.timeouts
            .file(due_at(&self.cfg, f), (f.handle, slot), now);
        self.compact_queues(now);
    }

    fn compact_queues(&mut self, now: f64) {
        let limit = 2 * self.flows.len() + 4096;
        if self.order.len() > limit {
            let flows = &self.flows;
            self.order.retain(|&r| flows.live(r).is_some());
        }
        if self.timeouts.len > limit {
            self.timeouts.clear();
            for (slot, f) in self.flows.iter() {
                self.timeouts
                    .file(due_at(&self.cfg, f), (f.handle, slot), now);
            }
        }
    }

    /// Make room: evict a batch of the oldest flows, preferring those not under suspicion.
    fn evict(&mut self, budget: bool) {
        let target = (self.cfg.max_flows / 100).max(1);
        let mut victims: Vec<usize> = Vec::new();
        let mut kept: Vec<FlowRef> = Vec::new();
        while victims.len() < target {
            let Some(r) = self.order.pop_front() else {
                break;
            };
            let Some(slot) = self.flows.live(r) else {
                continue;
            };
            if self.flows[slot].marks & MARK_KEEP != 0 {
                kept.push(r);
            } else {
                victims.push(slot);
            }
        }
        if victims.is_empty() && !kept.is_empty() {
            victims.push(kept.remove(0).1);
        }
        for r in kept.into_iter().rev() {
            self.order.push_front(r);
        }
        for slot in victims {
            if budget {
                self.counters.flows_budget_evicted += 1;
            } else {
                self.counters.flows_evicted += 1;
            }
            self.remove(slot, "evicted");
        }
    }

    fn remove(&mut self, slot: usize, reason: &'static str) {
        let Some(mut flow) = self.flows.remove(slot) else {
            return;
        };
        if flow.announced {
            self.handles.remove(&flow.handle);
        }
        if let Some(mut ins) = flow.ins.take() {
            drop_streams(&mut ins, &mut self.mem_inspect);
            let cost = INSPECT_COST + if ins.paths.is_some() { PATHS_COST } else { 0 };
            self.mem_inspect = self.mem_inspect.saturating_sub(cost);
            if !flow.announced {
                return;
            }
            if ins.mode == Mode::Deep && flow.marks & MARK_ALERTED == 0 {
                // The stream ended: decoders holding a last message complete it.
                for d in 0..2 {
                    for dec in ins.decs[d].take().unwrap_or_default() {
                        match dec {
                            Dec::Json(mut f) => {
                                let body = if f.raw {
                                    Body::StreamClose
                                } else {
                                    let mut framed = Framed::default();
                                    if f.close(&mut framed).is_err() || framed.lines.is_empty() {
                                        continue;
                                    }
                                    Body::Lines(framed.lines)
                                };
                                self.out.push(Event {
                                    handle: flow.handle,
                                    d: d as u8,
                                    ts: flow.last_ts,
                                    body,
                                });
                            }
                            Dec::Http(mut h) => {
                                let mut heads = Vec::new();
                                h.close(&mut heads);
                                for head in heads {
                                    self.out.push(Event {
                                        handle: flow.handle,
                                        d: d as u8,
                                        ts: flow.last_ts,
                                        body: Body::Http(Box::new(head)),
                                    });
                                }
                            }
                            _ => {}
                        }
                    }
                }
            }
            self.out.push(Event {
                handle: flow.handle,
                d: 0,
                ts: flow.last_ts,
                body: Body::End {
                    reason,
                    closed: flow.is_closed(),
                    last_ts: flow.last_ts,
                    pkts: flow.pkts,
                    bytes: flow.bytes,
                },
            });
        }
    }

    /// End of input: every remaining flow leaves the table.
    pub fn finish(&mut self) {
        let mut slots: Vec<(u64, usize)> = self.flows.iter().map(|(s, f)| (f.handle, s)).collect();
        slots.sort_unstable_by_key(|(h, _)| *h);
        for (_, slot) in slots {
            self.remove(slot, "end");
        }
        self.order.clear();
        self.timeouts.clear();
        self.by_addr.clear();
        self.by_addr_len = 0;
    }

    pub fn counter_items(&self) -> Vec<(&'static str, u64)> {
        let c = &self.counters;
        let mut v: Vec<(&'static str, u64)> = self.packets.counters.items().to_vec();
        v.extend([
            ("dns_side_packets", self.side_packets.counters.packets),
            ("flows_active", self.flows.len() as u64),
            ("flows_created", c.flows_created),
            ("flows_expired", c.flows_expired),
            ("flows_active_expired", c.flows_active_expired),
            ("flows_evicted", c.flows_evicted),
            ("flows_budget_evicted", c.flows_budget_evicted),
            ("decode_errors", c.decode_errors),
            ("json_not_lines", c.json_not_lines),
            ("dns_messages", c.dns_messages),
            ("dns_pool_answers", c.dns_pool_answers),
            ("pdns_expired", c.pdns_expired),
            ("pdns_evictions", self.pdns.evictions),
            ("pdns_bytes", self.pdns.bytes() as u64),
            ("sampled_packets", c.sampled_packets),
            ("dhcp_messages", c.dhcp_messages),
            ("dhcp_decode_errors", c.dhcp_decode_errors),
            ("dhcp_dropped", c.dhcp_dropped),
            ("flows_announced", c.announced),
            ("core_events", c.events),
            ("core_panics", c.panics),
            ("memory_bytes", self.memory() as u64),
            ("memory_peak_bytes", c.memory_peak as u64),
        ]);
        v
    }
}

fn drop_streams(ins: &mut Inspect, mem: &mut usize) {
    *mem = mem.saturating_sub(ins.pending_bytes + ins.dec_bytes);
    ins.pending_bytes = 0;
    ins.dec_bytes = 0;
    ins.streams = [None, None];
    if ins.mode != Mode::Deep {
        ins.decs = [Some(Vec::new()), Some(Vec::new())];
    }
}

fn dec_buffered(decs: &[Option<Vec<Dec>>; 2]) -> usize {
    decs.iter()
        .flatten()
        .flatten()
        .map(|d| match d {
            Dec::Tls(t) => t.buffered(),
            Dec::Http(h) => h.buffered(),
            Dec::Socks(s) => s.buffered(),
            Dec::Ws(w) => w.buffered(),
            Dec::Json(f) => f.buffered(),
            Dec::DnsTcp(f) => f.buffered(),
        })
        .sum()
}

fn is_dns(pkt: &Decoded<'_>) -> bool {
    DNS_PORTS.contains(&pkt.sport) || DNS_PORTS.contains(&pkt.dport)
}

fn is_http_start(head: &[u8]) -> bool {
    const STARTS: [&[u8; 4]; 9] = [
        b"GET ", b"POST", b"PUT ", b"HEAD", b"HTTP", b"OPTI", b"DELE", b"PATC", b"CONN",
    ];
    STARTS.iter().any(|s| &s[..] == head)
}

/// The host of a Host header value (port and IPv6 brackets aside).
fn host_part(h: &str) -> &str {
    if h.starts_with('[') {
        return h;
    }
    h.rsplit_once(':').map_or(h, |(host, _)| host)
}

#[cfg(test)]
mod paths_tests {
    use super::*;

    #[test]
    fn paths_cost_covers_the_struct() {
        // What PATHS_COST charges the budget covers what a flow's Paths box holds, a held
        // proxy target's host name (at most a DNS name) included.
        assert!(std::mem::size_of::<Paths>() + 255 <= PATHS_COST);
    }
}

#[cfg(test)]
mod sweep_tests {
    use super::*;
    use proptest::prelude::*;

    /// The sweep's rule applied to every flow, as a scan of the whole table would.
    impl Engine {
        pub(super) fn check_sweep(&self, now: f64, dead: &[FlowRef], aged: &[FlowRef]) {
            let oldest = now - self.cfg.active_timeout;
            let (mut want_dead, mut want_aged) = (Vec::new(), Vec::new());
            for (slot, f) in self.flows.iter() {
                let idle = now - f.last_ts;
                let limit = if f.proto == TCP {
                    self.cfg.tcp_idle
                } else {
                    self.cfg.udp_idle
                };
                if f.first_ts < oldest {
                    want_aged.push((f.handle, slot));
                } else if (f.is_closed() && idle > self.cfg.closed_linger) || idle > limit {
                    want_dead.push((f.handle, slot));
                }
            }
            want_dead.sort_unstable();
            want_aged.sort_unstable();
            assert_eq!(dead, want_dead, "timed out at {now}");
            assert_eq!(aged, want_aged, "active too long at {now}");
            let bound = 2 * self.flows.len() + 4096;
            assert!(self.order.len() <= bound && self.timeouts.len <= bound);
        }
    }

    /// A raw IPv4 frame (LINKTYPE_IPV4) carrying a TCP segment or a UDP datagram.
    fn frame(
        tcp: bool,
        src: u8,
        sport: u16,
        dst: u8,
        dport: u16,
        flags: u8,
        payload: &[u8],
    ) -> Vec<u8> {
        let l4len = if tcp { 20 } else { 8 } + payload.len();
        let mut f = vec![0x45, 0];
        f.extend_from_slice(&((20 + l4len) as u16).to_be_bytes());
        f.extend_from_slice(&[0, 1, 0, 0, 64, if tcp { TCP } else { UDP }, 0, 0]);
        f.extend_from_slice(&[10, 0, 0, src, 10, 0, 0, dst]);
        f.extend_from_slice(&sport.to_be_bytes());
        f.extend_from_slice(&dport.to_be_bytes());
        if tcp {
            f.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        } else {
            f.extend_from_slice(&(l4len as u16).to_be_bytes());
            f.extend_from_slice(&[0, 0]);
        }
        f.extend_from_slice(payload);
        f
    }

    fn engine(max_flows: usize) -> Engine {
        let cfg = Config {
            max_flows,
            tcp_idle: 100.0,
            udp_idle: 50.0,
            closed_linger: 10.0,
            active_timeout: 400.0,
            sweep_every: 5.0,
            ..Config::default()
        };
        Engine::new(cfg, Prefilter::default())
    }

    const FLAGS: [u8; 6] = [0x02, 0x12, 0x10, 0x11, 0x04, 0x18];

    proptest! {
        /// Whatever the packets, their timing (backwards included) and their flags, each
        /// sweep removes exactly the flows a scan of the table would (`check_sweep`).
        #[test]
        fn sweep_finds_what_a_scan_finds(
            packets in proptest::collection::vec(
                (any::<bool>(), 0u8..4, 0u16..3, 0u8..4, 0u16..3, 0usize..6, -30.0f64..120.0),
                1..300,
            ),
        ) {
            let mut e = engine(150_000);
            let mut ts = 1_700_000_000.0;
            for (tcp, a, pa, b, pb, fl, dt) in packets {
                ts += dt;
                let f = frame(tcp, a, 1000 + pa, b, 2000 + pb, FLAGS[fl], b"");
                e.feed(ts, 228, &f);
            }
            e.finish();
            let ends = e.take_events().len();
            prop_assert_eq!(ends, 0); // nothing was announced
        }
    }

    fn assert_queues_bounded(e: &Engine) {
        let bound = 2 * e.flows.len() + 4096;
        assert!(e.order.len() <= bound, "order {}", e.order.len());
        assert!(e.timeouts.len <= bound, "timeouts {}", e.timeouts.len);
    }

    #[test]
    fn queues_stay_bounded_under_churn() {
        // Flows evicted by the flow cap or reused ports leave entries in the eviction order
        // and the timeout ring; they never outgrow a small multiple of the table.
        let mut e = engine(100);
        let mut ts = 1_700_000_000.0;
        for i in 0..50_000u32 {
            ts += 0.001;
            let f = frame(true, (i % 250) as u8, (i / 250) as u16, 9, 80, 0x02, b"");
            e.feed(ts, 228, &f);
            assert_queues_bounded(&e);
        }
        assert!(e.counters.flows_evicted > 40_000);
        // Flows that leave by timeout, with no eviction to pop them from the order.
        let mut e = engine(150_000);
        for i in 0..50_000u32 {
            ts += 0.01;
            let f = frame(false, (i % 250) as u8, (i / 250) as u16, 9, 80, 0, b"x");
            e.feed(ts, 228, &f);
            assert_queues_bounded(&e);
        }
        assert!(e.counters.flows_expired > 40_000);
    }
}
