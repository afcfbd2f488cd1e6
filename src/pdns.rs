//! Passive DNS: which names recently resolved to an address, learned from observed answers.
//!
//! Ported from netdetect/pdns.py (behavioural reference), with one change the core needs:
//! the store is bounded by bytes (names and addresses counted), not by entries; the least
//! recently learned address is evicted when the budget is exceeded (counted). Each A/AAAA
//! answer maps its address to its owner name and every name that reaches it through the
//! message's CNAME chain (bounded), so a CDN address still names the pool host asked for.

#![allow(dead_code, unused_variables)]

use crate::dns::DnsMessage;
use std::net::IpAddr;

pub struct PassiveDns {
    pub budget_bytes: usize,
    pub min_ttl: u32,
    pub max_ttl: u32,
    pub max_names_per_ip: usize,
    /// Addresses dropped because the budget was full.
    pub evictions: u64,
    /// Names dropped because an address had too many.
    pub name_evictions: u64,
}

impl PassiveDns {
    pub fn new(budget_bytes: usize) -> Self {
        todo!()
    }

    /// Learn every A/AAAA answer of a response (time is the packet timestamp).
    pub fn learn(&mut self, msg: &DnsMessage, now: f64) {
        todo!()
    }

    /// Live names for `ip`, most recently learned first (expired ones are dropped).
    pub fn names_for(&mut self, ip: &IpAddr, now: f64) -> Vec<String> {
        todo!()
    }

    /// Drop every expired name; returns how many.
    pub fn expire(&mut self, now: f64) -> u64 {
        todo!()
    }

    /// Bytes currently accounted.
    pub fn bytes(&self) -> usize {
        todo!()
    }

    pub fn len(&self) -> usize {
        todo!()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// (name, address, ttl) for each A/AAAA answer, under its owner name and each alias leading
/// to it (as pdns.py's answer_addresses).
pub fn answer_addresses(msg: &DnsMessage) -> Vec<(String, IpAddr, u32)> {
    todo!()
}
