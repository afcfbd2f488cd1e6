//! Passive DNS: which names recently resolved to an address, learned from observed answers.
//!
//! Behaviour of the retired Python store (its tests are mirrored here), with one change:
//! the store is bounded by bytes (names and addresses counted), not by entries; the least
//! recently learned address is evicted when the budget is exceeded (counted). Each A/AAAA
//! answer maps its address to its owner name and every name that reaches it through the
//! message's CNAME chain (bounded), so a CDN address still names the pool host asked for.
//!
//! Accounting: each address costs `ADDR_OVERHEAD` bytes and each name its length plus
//! `NAME_OVERHEAD`. The overheads approximate the real footprint (hash slot with key and
//! entry header, LRU queue slot with its lazy duplicates; String header and expiry), not
//! allocator slack, so the budget is a close, deterministic proxy for memory.
//!
//! LRU order is a queue of (address, generation) stamps: learning an address pushes a fresh
//! stamp and leaves the old one behind, to be skipped when it reaches the front. The queue
//! is compacted when stale stamps outnumber live ones, so every operation is O(1) amortised
//! (names per address are capped, so scanning them is bounded too).

use crate::dns::{DnsMessage, RData, A, AAAA, CNAME};
use hashbrown::HashMap;
use std::collections::VecDeque;
use std::net::IpAddr;

/// CNAME chains longer than this are not followed further.
pub const MAX_CHAIN: usize = 16;
/// Accounted bytes per address entry (see the module notes).
pub const ADDR_OVERHEAD: usize = 128;
/// Accounted bytes per name, on top of its length.
pub const NAME_OVERHEAD: usize = 32;

struct Entry {
    /// Oldest learned first; re-learning a name moves it to the end.
    names: Vec<(String, f64)>,
    /// Stamp of this entry's live position in the LRU queue.
    generation: u64,
}

fn name_cost(name: &str) -> usize {
    name.len() + NAME_OVERHEAD
}

pub struct PassiveDns {
    pub budget_bytes: usize,
    pub min_ttl: u32,
    pub max_ttl: u32,
    /// At least one name is always kept (0 behaves as 1).
    pub max_names_per_ip: usize,
    /// Addresses dropped because the budget was full.
    pub evictions: u64,
    /// Names dropped because an address had too many.
    pub name_evictions: u64,
    map: HashMap<IpAddr, Entry>,
    order: VecDeque<(IpAddr, u64)>,
    next_generation: u64,
    bytes: usize,
}

impl PassiveDns {
    /// Defaults as pdns.py: 8 names per address, TTLs clamped to 60 s .. 1 day. A budget
    /// smaller than one entry keeps nothing (every learned address is evicted at once).
    pub fn new(budget_bytes: usize) -> Self {
        PassiveDns {
            budget_bytes,
            min_ttl: 60,
            max_ttl: 86400,
            max_names_per_ip: 8,
            evictions: 0,
            name_evictions: 0,
            map: HashMap::new(),
            order: VecDeque::new(),
            next_generation: 0,
            bytes: 0,
        }
    }

    /// Learn every A/AAAA answer of a response (time is the packet timestamp).
    pub fn learn(&mut self, msg: &DnsMessage, now: f64) {
        self.learn_if(msg, now, |_| true);
    }

    /// Learn the A/AAAA answers of a response whose name chain (owner and the aliases
    /// leading to it) holds a name that passes `keep`; the whole chain is learned then.
    pub fn learn_if(&mut self, msg: &DnsMessage, now: f64, keep: impl Fn(&str) -> bool) {
        if msg.answers.is_empty() || msg.rcode != 0 || !msg.is_response {
            return;
        }
        let alias_of = Aliases::of(msg);
        // Answers come in runs under one owner: its verdict is asked once per run.
        let mut last: Option<(&str, bool)> = None;
        for rr in &msg.answers {
            let RData::Addr(ip) = rr.value else { continue };
            if rr.rtype != A && rr.rtype != AAAA {
                continue;
            }
            let known = last.filter(|(owner, _)| *owner == rr.name).map(|(_, w)| w);
            if known == Some(false) {
                continue;
            }
            let chain = Chain::of(&rr.name, &alias_of);
            if known.is_none() {
                let wanted = chain.names().iter().any(|n| keep(n));
                last = Some((rr.name.as_str(), wanted));
                if !wanted {
                    continue;
                }
            }
            // pdns.py clamps as min(hi, max(lo, ttl)): with lo > hi, hi wins.
            let ttl = rr.ttl.max(self.min_ttl).min(self.max_ttl);
            let expiry = now + f64::from(ttl);
            // chain runs owner → question name; the question name goes in last, so it is the
            // first one names_for() returns and the last one a full address evicts.
            self.add(ip, chain.names(), expiry);
        }
        self.enforce_budget();
    }

    fn add(&mut self, ip: IpAddr, names: &[&str], expiry: f64) {
        let generation = self.next_generation;
        self.next_generation += 1;
        let mut created = false;
        let entry = self.map.entry(ip).or_insert_with(|| {
            created = true;
            Entry {
                names: Vec::new(),
                generation,
            }
        });
        if created {
            self.bytes += ADDR_OVERHEAD;
        }
        entry.generation = generation;
        self.order.push_back((ip, generation));
        let cap = self.max_names_per_ip.max(1);
        for &name in names {
            let names = &mut entry.names;
            if let Some(i) = names.iter().position(|(n, _)| n == name) {
                // Re-learning a name refreshes it and makes it the newest; its cost is
                // unchanged.
                names[i..].rotate_left(1);
                if let Some(last) = names.last_mut() {
                    last.1 = expiry;
                }
                if names.len() > cap {
                    // The cap was lowered since this address filled up.
                    let drop = names.len() - cap;
                    for (old, _) in names.drain(..drop) {
                        self.bytes -= name_cost(&old);
                    }
                    self.name_evictions += drop as u64;
                }
                continue;
            }
            if names.len() >= cap {
                // Full: the oldest name goes, and its string is reused for the new one.
                let drop = names.len() + 1 - cap;
                for (old, _) in &names[..drop] {
                    self.bytes -= name_cost(old);
                }
                self.name_evictions += drop as u64;
                names.rotate_left(drop);
                names.truncate(names.len() + 1 - drop);
                let last = names.last_mut().expect("cap is at least 1");
                last.0.clear();
                last.0.push_str(name);
                last.1 = expiry;
            } else {
                names.push((name.to_owned(), expiry));
            }
            self.bytes += name_cost(name);
        }
        self.maybe_compact();
    }

    /// Evict least recently learned addresses until the accounted bytes fit the budget.
    fn enforce_budget(&mut self) {
        while self.bytes > self.budget_bytes {
            let Some((ip, generation)) = self.order.pop_front() else {
                break;
            };
            if self
                .map
                .get(&ip)
                .is_some_and(|e| e.generation == generation)
            {
                self.remove(&ip);
                self.evictions += 1;
            }
        }
    }

    fn remove(&mut self, ip: &IpAddr) {
        if let Some(entry) = self.map.remove(ip) {
            self.bytes -=
                ADDR_OVERHEAD + entry.names.iter().map(|(n, _)| name_cost(n)).sum::<usize>();
        }
    }

    /// Drop stale stamps once they outnumber live ones: O(queue) work after at least as many
    /// pushes, so O(1) amortised.
    fn maybe_compact(&mut self) {
        if self.order.len() > 2 * self.map.len() + 64 {
            let map = &self.map;
            self.order
                .retain(|(ip, g)| map.get(ip).is_some_and(|e| e.generation == *g));
        }
    }

    /// Live names for `ip`, most recently learned first (expired ones are dropped).
    pub fn names_for(&mut self, ip: &IpAddr, now: f64) -> Vec<String> {
        self.drop_expired(ip, now);
        self.map.get(ip).map_or_else(Vec::new, |entry| {
            entry.names.iter().rev().map(|(n, _)| n.clone()).collect()
        })
    }

    /// Whether a live name for `ip` passes `test` (expired ones are dropped, as by
    /// `names_for`), without copying any.
    pub fn any_name(&mut self, ip: &IpAddr, now: f64, test: impl Fn(&str) -> bool) -> bool {
        self.drop_expired(ip, now);
        self.map
            .get(ip)
            .is_some_and(|entry| entry.names.iter().any(|(n, _)| test(n)))
    }

    fn drop_expired(&mut self, ip: &IpAddr, now: f64) {
        let Some(entry) = self.map.get_mut(ip) else {
            return;
        };
        if !entry.names.iter().all(|(_, expiry)| *expiry > now) {
            let mut freed = 0;
            entry.names.retain(|(n, expiry)| {
                let keep = *expiry > now;
                if !keep {
                    freed += name_cost(n);
                }
                keep
            });
            self.bytes -= freed;
            if entry.names.is_empty() {
                self.map.remove(ip);
                self.bytes -= ADDR_OVERHEAD;
            }
        }
    }

    /// Drop every expired name (and addresses left without names); returns how many.
    pub fn expire(&mut self, now: f64) -> u64 {
        let mut dropped = 0u64;
        let mut freed = 0usize;
        self.map.retain(|_, entry| {
            entry.names.retain(|(n, expiry)| {
                let keep = *expiry > now;
                if !keep {
                    dropped += 1;
                    freed += name_cost(n);
                }
                keep
            });
            if entry.names.is_empty() {
                freed += ADDR_OVERHEAD;
                false
            } else {
                true
            }
        });
        self.bytes -= freed;
        self.maybe_compact();
        dropped
    }

    /// Bytes currently accounted.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// CNAME records looked up one by one before a message has this many (no map built).
const FEW_ALIASES: usize = 8;

/// CNAME target → owner, first occurrence wins, self-references ignored (as pdns.py).
/// Up to FEW_ALIASES of them are kept in message order (the first match is the first
/// occurrence); past that a map is built.
struct Aliases<'a> {
    few: [(&'a str, &'a str); FEW_ALIASES],
    n: usize,
    many: Option<HashMap<&'a str, &'a str>>,
}

impl<'a> Aliases<'a> {
    fn of(msg: &'a DnsMessage) -> Self {
        let mut a = Aliases {
            few: [("", ""); FEW_ALIASES],
            n: 0,
            many: None,
        };
        for rr in &msg.answers {
            if rr.rtype != CNAME {
                continue;
            }
            let RData::Name(target) = &rr.value else {
                continue;
            };
            if target == &rr.name {
                continue;
            }
            let (t, o) = (target.as_str(), rr.name.as_str());
            if let Some(map) = a.many.as_mut() {
                map.entry(t).or_insert(o);
            } else if a.n < FEW_ALIASES {
                a.few[a.n] = (t, o);
                a.n += 1;
            } else {
                let mut map = HashMap::new();
                for &(t, o) in &a.few {
                    map.entry(t).or_insert(o);
                }
                map.entry(t).or_insert(o);
                a.many = Some(map);
            }
        }
        a
    }

    fn get(&self, target: &str) -> Option<&'a str> {
        match &self.many {
            Some(map) => map.get(target).copied(),
            None => self.few[..self.n]
                .iter()
                .find(|(t, _)| *t == target)
                .map(|p| p.1),
        }
    }
}

/// `owner` followed by each name whose CNAME leads to it, at most MAX_CHAIN aliases,
/// stopping at a cycle.
struct Chain<'a> {
    names: [&'a str; MAX_CHAIN + 1],
    len: usize,
}

impl<'a> Chain<'a> {
    fn of(owner: &'a str, alias_of: &Aliases<'a>) -> Self {
        let mut c = Chain {
            names: [""; MAX_CHAIN + 1],
            len: 1,
        };
        c.names[0] = owner;
        let mut name = owner;
        while c.len <= MAX_CHAIN {
            match alias_of.get(name) {
                Some(alias) if !c.names().contains(&alias) => {
                    name = alias;
                    c.names[c.len] = alias;
                    c.len += 1;
                }
                _ => break,
            }
        }
        c
    }

    fn names(&self) -> &[&'a str] {
        &self.names[..self.len]
    }
}

/// (name, address, ttl) for each A/AAAA answer, under its owner name and each alias leading
/// to it (as pdns.py's answer_addresses).
pub fn answer_addresses(msg: &DnsMessage) -> Vec<(String, IpAddr, u32)> {
    let mut out = Vec::new();
    if !msg.is_response || msg.rcode != 0 {
        return out;
    }
    let alias_of = Aliases::of(msg);
    for rr in &msg.answers {
        let RData::Addr(ip) = rr.value else { continue };
        if rr.rtype != A && rr.rtype != AAAA {
            continue;
        }
        let chain = Chain::of(&rr.name, &alias_of);
        out.extend(chain.names().iter().map(|&n| (n.to_owned(), ip, rr.ttl)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::tests::{hex, COINHIVE};
    use crate::dns::{decode_dns, DnsRecord};
    use proptest::prelude::*;

    const BIG: usize = 1 << 30;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn rr(name: &str, rtype: u16, ttl: u32, value: &str) -> DnsRecord {
        let value = if rtype == CNAME {
            RData::Name(value.into())
        } else {
            RData::Addr(value.parse().unwrap())
        };
        DnsRecord {
            name: name.into(),
            rtype,
            ttl,
            value,
        }
    }

    fn answer_q(question: &str, rcode: u8, records: Vec<DnsRecord>) -> DnsMessage {
        DnsMessage {
            msg_id: 1,
            is_response: true,
            rcode,
            questions: vec![(question.into(), A)],
            answers: records,
        }
    }

    fn answer(records: Vec<DnsRecord>) -> DnsMessage {
        answer_q("pool.example.com", 0, records)
    }

    fn chain() -> DnsMessage {
        answer(vec![
            rr("pool.example.com", CNAME, 300, "lb.cdn.net"),
            rr("lb.cdn.net", A, 120, "1.2.3.4"),
            rr("lb.cdn.net", AAAA, 120, "2001:db8::1"),
        ])
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// Recomputed from scratch: what `bytes` must equal.
    fn recount(p: &PassiveDns) -> usize {
        p.map
            .values()
            .map(|e| ADDR_OVERHEAD + e.names.iter().map(|(n, _)| name_cost(n)).sum::<usize>())
            .sum()
    }

    #[test]
    fn cname_chain_maps_back_to_question() {
        let mut p = PassiveDns::new(BIG);
        p.learn(&chain(), 1000.0);
        let want = names(&["pool.example.com", "lb.cdn.net"]);
        assert_eq!(p.names_for(&ip("1.2.3.4"), 1000.0), want);
        assert_eq!(p.names_for(&ip("2001:db8::1"), 1000.0), want);
        assert!(p.names_for(&ip("5.6.7.8"), 1000.0).is_empty());
        assert_eq!(p.bytes(), recount(&p));
    }

    #[test]
    fn learn_if_keeps_whole_chains_that_pass_and_nothing_else() {
        let pool = |n: &str| n == "pool.example.com";
        let mut p = PassiveDns::new(BIG);
        // The pool name is the question, reached from the address through the alias.
        p.learn_if(&chain(), 1000.0, pool);
        let want = names(&["pool.example.com", "lb.cdn.net"]);
        assert_eq!(p.names_for(&ip("1.2.3.4"), 1000.0), want);
        assert_eq!(p.names_for(&ip("2001:db8::1"), 1000.0), want);
        // No name of the chain passes: nothing is learned, nothing is charged.
        let other = answer_q(
            "www.shop.test",
            0,
            vec![
                rr("www.shop.test", CNAME, 300, "edge.cdn.net"),
                rr("edge.cdn.net", A, 300, "5.6.7.8"),
                rr("edge.cdn.net", A, 300, "5.6.7.9"),
            ],
        );
        let before = p.bytes();
        p.learn_if(&other, 1000.0, pool);
        assert!(p.names_for(&ip("5.6.7.8"), 1000.0).is_empty());
        assert!(p.names_for(&ip("5.6.7.9"), 1000.0).is_empty());
        assert_eq!(p.bytes(), before);
        // One message, two owners: only the pool's chain is learned.
        let mixed = answer(vec![
            rr("pool.example.com", A, 300, "9.9.9.1"),
            rr("ads.example.net", A, 300, "9.9.9.2"),
        ]);
        p.learn_if(&mixed, 1000.0, pool);
        assert_eq!(
            p.names_for(&ip("9.9.9.1"), 1000.0),
            names(&["pool.example.com"])
        );
        assert!(p.names_for(&ip("9.9.9.2"), 1000.0).is_empty());
        assert_eq!(p.bytes(), recount(&p));
    }

    #[test]
    fn long_chain_and_cycle() {
        let mut p = PassiveDns::new(BIG);
        p.learn(
            &answer_q(
                "a.example",
                0,
                vec![
                    rr("a.example", CNAME, 60, "b.example"),
                    rr("b.example", CNAME, 60, "c.example"),
                    rr("c.example", CNAME, 60, "a.example"), // a cycle must not hang learn()
                    rr("c.example", A, 60, "9.9.9.9"),
                ],
            ),
            0.0,
        );
        let mut got = p.names_for(&ip("9.9.9.9"), 0.0);
        got.sort();
        assert_eq!(got, names(&["a.example", "b.example", "c.example"]));
    }

    #[test]
    fn chain_length_is_bounded() {
        let mut records: Vec<DnsRecord> = (0..40)
            .map(|i| rr(&format!("n{i}"), CNAME, 60, &format!("n{}", i + 1)))
            .collect();
        records.push(rr("n40", A, 60, "10.9.9.9"));
        let msg = answer_q("n0", 0, records);
        let got = answer_addresses(&msg);
        assert_eq!(got.len(), MAX_CHAIN + 1);
        assert_eq!(got[0].0, "n40");
        assert_eq!(got[MAX_CHAIN].0, format!("n{}", 40 - MAX_CHAIN));
    }

    #[test]
    fn expiry_uses_clamped_ttl() {
        let mut p = PassiveDns::new(BIG);
        p.max_ttl = 3600;
        p.learn(&answer(vec![rr("short.example", A, 1, "10.0.0.1")]), 0.0);
        p.learn(
            &answer(vec![rr("long.example", A, 1_000_000, "10.0.0.2")]),
            0.0,
        );
        assert_eq!(
            p.names_for(&ip("10.0.0.1"), 59.0),
            names(&["short.example"])
        );
        assert!(p.names_for(&ip("10.0.0.1"), 60.0).is_empty());
        assert_eq!(
            p.names_for(&ip("10.0.0.2"), 3599.0),
            names(&["long.example"])
        );
        assert!(p.names_for(&ip("10.0.0.2"), 3600.0).is_empty());
        assert_eq!(p.len(), 0); // expired addresses are dropped when looked up
        assert_eq!(p.bytes(), 0);
    }

    #[test]
    fn most_recent_first_and_refresh() {
        let mut p = PassiveDns::new(BIG);
        let a = ip("10.0.0.9");
        p.learn(&answer(vec![rr("one.example", A, 300, "10.0.0.9")]), 0.0);
        p.learn(&answer(vec![rr("two.example", A, 300, "10.0.0.9")]), 10.0);
        assert_eq!(
            p.names_for(&a, 20.0),
            names(&["two.example", "one.example"])
        );
        p.learn(&answer(vec![rr("one.example", A, 300, "10.0.0.9")]), 30.0);
        assert_eq!(
            p.names_for(&a, 31.0),
            names(&["one.example", "two.example"])
        );
        // one.example was refreshed at t=30, two.example expires at 310.
        assert_eq!(p.names_for(&a, 320.0), names(&["one.example"]));
        assert_eq!(p.bytes(), recount(&p));
    }

    #[test]
    fn only_successful_responses_are_learned() {
        let mut p = PassiveDns::new(BIG);
        p.learn(
            &answer_q("x.example", 2, vec![rr("x.example", A, 300, "10.1.1.1")]),
            0.0,
        );
        let mut query = answer(vec![rr("x.example", A, 300, "10.1.1.2")]);
        query.is_response = false;
        p.learn(&query, 0.0);
        assert_eq!(p.len(), 0);
        assert!(answer_addresses(&query).is_empty());
    }

    #[test]
    fn budget_evicts_least_recently_learned() {
        // Three entries of one 10-byte name each fit; a fourth does not.
        let per = ADDR_OVERHEAD + name_cost("h0.example");
        let mut p = PassiveDns::new(3 * per);
        for i in 0..5 {
            let msg = answer(vec![rr(
                &format!("h{i}.example"),
                A,
                300,
                &format!("10.0.0.{i}"),
            )]);
            p.learn(&msg, i as f64);
        }
        assert_eq!(p.len(), 3);
        assert_eq!(p.evictions, 2);
        assert!(p.names_for(&ip("10.0.0.0"), 5.0).is_empty());
        assert!(p.names_for(&ip("10.0.0.1"), 5.0).is_empty());
        assert_eq!(p.names_for(&ip("10.0.0.4"), 5.0), names(&["h4.example"]));
        // Re-learning an address makes it the newest, so it survives the next eviction.
        p.learn(&answer(vec![rr("h2.example", A, 300, "10.0.0.2")]), 6.0);
        p.learn(&answer(vec![rr("h9.example", A, 300, "10.0.0.9")]), 7.0);
        assert_eq!(p.names_for(&ip("10.0.0.2"), 8.0), names(&["h2.example"]));
        assert!(p.names_for(&ip("10.0.0.3"), 8.0).is_empty());
        assert_eq!(p.evictions, 3);
        assert_eq!(p.bytes(), 3 * per);
    }

    #[test]
    fn long_names_cost_more() {
        let per = ADDR_OVERHEAD + name_cost("h0.example");
        let mut p = PassiveDns::new(3 * per);
        p.learn(&answer(vec![rr("a.example", A, 300, "10.0.0.1")]), 0.0);
        p.learn(&answer(vec![rr("b.example", A, 300, "10.0.0.2")]), 0.0);
        let long = "x".repeat(200) + ".example";
        p.learn(&answer(vec![rr(&long, A, 300, "10.0.0.3")]), 0.0);
        // 169 + 169 + 368 bytes against 510: both older entries go.
        assert_eq!(p.len(), 1);
        assert_eq!(p.evictions, 2);
        assert_eq!(p.names_for(&ip("10.0.0.3"), 0.0), vec![long.clone()]);
        assert!(p.bytes() <= p.budget_bytes);
        // An entry larger than the whole budget does not stay either.
        let mut tiny = PassiveDns::new(ADDR_OVERHEAD);
        tiny.learn(&answer(vec![rr("a.example", A, 300, "10.0.0.1")]), 0.0);
        assert_eq!((tiny.len(), tiny.evictions, tiny.bytes()), (0, 1, 0));
    }

    #[test]
    fn names_per_ip_capped() {
        let mut p = PassiveDns::new(BIG);
        p.max_names_per_ip = 2;
        for i in 0..4 {
            p.learn(
                &answer(vec![rr(&format!("n{i}.example"), A, 300, "10.2.2.2")]),
                i as f64,
            );
        }
        assert_eq!(
            p.names_for(&ip("10.2.2.2"), 5.0),
            names(&["n3.example", "n2.example"])
        );
        assert_eq!(p.name_evictions, 2);
        assert_eq!(p.bytes(), recount(&p));
        // With a CNAME chain longer than the cap, the question name is the one kept.
        let mut p2 = PassiveDns::new(BIG);
        p2.max_names_per_ip = 1;
        p2.learn(&chain(), 10.0);
        assert_eq!(
            p2.names_for(&ip("1.2.3.4"), 10.0),
            names(&["pool.example.com"])
        );
    }

    #[test]
    fn relearning_at_the_cap_and_a_lowered_cap() {
        let mut p = PassiveDns::new(BIG);
        p.max_names_per_ip = 3;
        let learn = |p: &mut PassiveDns, n: &str, t: f64| {
            p.learn(&answer(vec![rr(n, A, 300, "10.2.2.3")]), t);
        };
        for (i, n) in ["a.example", "b.example", "c.example"].iter().enumerate() {
            learn(&mut p, n, i as f64);
        }
        // A name already held moves to the front without evicting anything.
        learn(&mut p, "a.example", 3.0);
        assert_eq!(
            p.names_for(&ip("10.2.2.3"), 4.0),
            names(&["a.example", "c.example", "b.example"])
        );
        assert_eq!(p.name_evictions, 0);
        // A new, longer name replaces the oldest.
        learn(&mut p, "a-much-longer-name.example", 4.0);
        assert_eq!(
            p.names_for(&ip("10.2.2.3"), 5.0),
            names(&["a-much-longer-name.example", "a.example", "c.example"])
        );
        assert_eq!(p.name_evictions, 1);
        assert_eq!(p.bytes(), recount(&p));
        // Lowering the cap trims an address at its next answer, re-learned or new.
        p.max_names_per_ip = 1;
        learn(&mut p, "c.example", 6.0);
        assert_eq!(p.names_for(&ip("10.2.2.3"), 7.0), names(&["c.example"]));
        assert_eq!(p.name_evictions, 3);
        assert_eq!(p.bytes(), recount(&p));
    }

    #[test]
    fn first_cname_to_a_name_wins_with_few_or_many_aliases() {
        for padding in [0usize, 12] {
            let mut records: Vec<DnsRecord> = (0..padding)
                .map(|i| {
                    rr(
                        &format!("pad{i}.example"),
                        CNAME,
                        300,
                        &format!("x{i}.example"),
                    )
                })
                .collect();
            records.push(rr("first.example", CNAME, 300, "t.example"));
            records.push(rr("second.example", CNAME, 300, "t.example"));
            records.push(rr("t.example", A, 300, "10.9.9.9"));
            let mut p = PassiveDns::new(BIG);
            p.learn(&answer(records), 0.0);
            assert_eq!(
                p.names_for(&ip("10.9.9.9"), 1.0),
                names(&["first.example", "t.example"]),
                "{padding} other aliases"
            );
        }
    }

    #[test]
    fn expire_sweeps() {
        let mut p = PassiveDns::new(BIG);
        p.min_ttl = 1;
        p.learn(&answer(vec![rr("a.example", A, 10, "10.3.0.1")]), 0.0);
        p.learn(&answer(vec![rr("b.example", A, 100, "10.3.0.2")]), 0.0);
        assert_eq!(p.expire(50.0), 1);
        assert_eq!(p.len(), 1);
        assert_eq!(p.bytes(), recount(&p));
        assert_eq!(p.names_for(&ip("10.3.0.2"), 50.0), names(&["b.example"]));
    }

    #[test]
    fn answer_addresses_follow_aliases() {
        let got = answer_addresses(&chain());
        assert_eq!(
            got,
            vec![
                ("lb.cdn.net".into(), ip("1.2.3.4"), 120),
                ("pool.example.com".into(), ip("1.2.3.4"), 120),
                ("lb.cdn.net".into(), ip("2001:db8::1"), 120),
                ("pool.example.com".into(), ip("2001:db8::1"), 120),
            ]
        );
    }

    #[test]
    fn real_cloudflare_cname_from_corpus() {
        let mut p = PassiveDns::new(BIG);
        for h in COINHIVE {
            p.learn(&decode_dns(&hex(h), true).unwrap(), 0.0);
        }
        assert_eq!(
            p.names_for(&ip("104.20.123.34"), 1.0),
            names(&[
                "www.supportxmr.com",
                "www.supportxmr.com.cdn.cloudflare.net"
            ])
        );
        assert_eq!(
            p.names_for(&ip("192.110.160.114"), 1.0),
            names(&["la01.supportxmr.com"])
        );
        assert_eq!(
            p.names_for(&ip("104.20.208.59"), 1.0),
            names(&["coinhive.com"])
        );
    }

    proptest! {
        #[test]
        fn budget_never_exceeded_and_evictions_counted(
            budget in 0usize..4000,
            steps in proptest::collection::vec(
                (0u8..40, 0usize..5, 1usize..120, 0u32..500, 0u8..10), 1..200),
        ) {
            let mut p = PassiveDns::new(budget);
            p.max_names_per_ip = 3;
            let mut inserted = 0u64;
            let mut now = 0.0;
            for (host, aliases, len, ttl, op) in steps {
                let addr = IpAddr::from([10, 0, 0, host]);
                now += 1.0;
                if op == 0 {
                    let before = p.len();
                    let _ = p.names_for(&addr, now);
                    // Expired names leave the map: count them as if never inserted.
                    inserted -= (before - p.len()) as u64;
                } else if op == 1 {
                    let before = p.len();
                    p.expire(now);
                    inserted -= (before - p.len()) as u64;
                } else {
                    let owner = format!("{}.{host}", "x".repeat(len));
                    let mut records: Vec<DnsRecord> = (0..aliases)
                        .map(|i| rr(&format!("alias{i}.example"), CNAME, ttl, &format!("alias{}.example", i + 1)))
                        .collect();
                    if aliases > 0 {
                        records.push(rr(&format!("alias{aliases}.example"), CNAME, ttl, &owner));
                    }
                    records.push(DnsRecord { name: owner, rtype: A, ttl, value: RData::Addr(addr) });
                    if !p.map.contains_key(&addr) {
                        inserted += 1;
                    }
                    p.min_ttl = 0;
                    p.learn(&answer(records), now);
                }
                prop_assert!(p.bytes() <= budget);
                prop_assert_eq!(p.bytes(), recount(&p));
                prop_assert_eq!(inserted, p.len() as u64 + p.evictions);
                prop_assert!(p.order.len() <= 2 * p.map.len() + 65);
                for e in p.map.values() {
                    prop_assert!(e.names.len() <= 3);
                }
            }
        }
    }
}
