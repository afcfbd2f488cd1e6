//! Intel prefilters handed over from Python at start and on reload.
//!
//! They only decide what is worth handing up: a superset test (a name under a pool domain
//! suffix, a known TLS fingerprint, a user agent containing a miner's literal prefix).
//! Python's intel (allowlists, categories, regexes, address lists) makes the judgement.

use aho_corasick::AhoCorasick;
use hashbrown::HashSet;

#[derive(Debug, Default)]
pub struct Prefilter {
    domains: HashSet<String>,
    ja3: HashSet<String>,
    ja4: HashSet<String>,
    /// The agent patterns' literal prefixes, found in one pass over a user agent (ASCII
    /// case folded, as a lower-cased agent would be searched).
    agents: Option<AhoCorasick>,
    /// An agent pattern without a literal prefix: every user agent is handed up.
    any_agent: bool,
    /// Names whose A/AAAA answers map a host (inventory-declared), lower case.
    watched: HashSet<String>,
}

/// Lower-case, without the trailing dot.
pub fn normalise(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl Prefilter {
    pub fn new(
        domains: &[String],
        ja3: &[String],
        ja4: &[String],
        agent_patterns: &[String],
    ) -> Self {
        let mut p = Prefilter {
            domains: domains
                .iter()
                .map(|d| normalise(d))
                .filter(|d| !d.is_empty())
                .collect(),
            ja3: ja3.iter().map(|s| s.to_ascii_lowercase()).collect(),
            ja4: ja4.iter().map(|s| s.to_ascii_lowercase()).collect(),
            ..Default::default()
        };
        let mut literals = Vec::new();
        for pat in agent_patterns {
            let lit = literal_prefix(pat);
            if lit.is_empty() {
                p.any_agent = true;
            } else if !lit.bytes().any(|b| b.is_ascii_uppercase()) {
                // A literal with an upper-case letter never occurs in a lower-cased agent.
                literals.push(lit);
            }
        }
        if !literals.is_empty() {
            match AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .build(&literals)
            {
                Ok(ac) => p.agents = Some(ac),
                // Beyond the automaton's limits: hand every agent up (a superset test).
                Err(_) => p.any_agent = true,
            }
        }
        p
    }

    pub fn set_watched(&mut self, names: &[String]) {
        self.watched = names.iter().map(|n| normalise(n)).collect();
    }

    /// Move the watched names of `other` into this prefilter (an intel reload keeps them).
    pub fn take_watched_from(&mut self, other: &mut Prefilter) {
        self.watched = std::mem::take(&mut other.watched);
    }

    /// Whether any name is watched (DNS answers are then walked for host addresses).
    pub fn watching(&self) -> bool {
        !self.watched.is_empty()
    }

    pub fn is_watched(&self, name: &str) -> bool {
        !self.watched.is_empty() && self.watched.contains(name)
    }

    /// Is `name` (or a parent, at label boundaries) a pool domain?
    pub fn pool_name(&self, name: &str) -> bool {
        if self.domains.is_empty() {
            return false;
        }
        // Names from the DNS decoder are lower case already: allocate only when needed.
        let trimmed = name.trim_end_matches('.');
        let lowered;
        let mut rest = if trimmed.bytes().any(|b| b.is_ascii_uppercase()) {
            lowered = trimmed.to_ascii_lowercase();
            lowered.as_str()
        } else {
            trimmed
        };
        loop {
            if self.domains.contains(rest) {
                return true;
            }
            match rest.find('.') {
                Some(i) => rest = &rest[i + 1..],
                None => return false,
            }
        }
    }

    pub fn tls_known(&self, ja3_hash: &str, ja4: &str) -> bool {
        self.ja3.contains(ja3_hash) || self.ja4.contains(ja4)
    }

    pub fn agent(&self, text: &str) -> bool {
        if self.any_agent {
            return true;
        }
        self.agents.as_ref().is_some_and(|ac| ac.is_match(text))
    }
}

/// The literal text every match of a (lower-case) regex must contain at its start: the
/// characters before the first metacharacter, minus one made optional by a quantifier.
fn literal_prefix(pat: &str) -> String {
    let mut out = String::new();
    let mut chars = pat.chars().peekable();
    while let Some(c) = chars.next() {
        if "\\.^$|()[]{}*+?".contains(c) {
            if matches!(c, '*' | '?' | '{') {
                out.pop();
            }
            break;
        }
        if matches!(chars.peek(), Some('*' | '?' | '{')) {
            break;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_at_label_boundaries() {
        let p = Prefilter::new(&["supportxmr.com".into()], &[], &[], &[]);
        assert!(p.pool_name("pool.SupportXMR.com."));
        assert!(p.pool_name("supportxmr.com"));
        assert!(!p.pool_name("notsupportxmr.com"));
        assert!(!p.pool_name("com"));
    }

    #[test]
    fn agent_literals() {
        assert_eq!(literal_prefix(r"xmrig-proxy/(\d[\w.+-]*)"), "xmrig-proxy/");
        assert_eq!(literal_prefix(r"xmrigcc(?:-daemon)?/"), "xmrigcc");
        assert_eq!(literal_prefix(r"abc?d"), "ab");
        assert_eq!(literal_prefix(r"(?:a|b)"), "");
        let p = Prefilter::new(&[], &[], &[], &[r"xmrig/(\d+)".into()]);
        assert!(p.agent("XMRig/6.16.0 (Linux)"));
        assert!(p.agent("Mozilla/5.0 xmRIG/6.1"));
        assert!(!p.agent("curl/8.0"));
        assert!(!p.agent("xmrig 6.1"));
        // Agents are lower-cased before the (lower-case) patterns are looked for: a literal
        // with an upper-case letter matches nothing, whatever the agent's case.
        let upper = Prefilter::new(&[], &[], &[], &[r"XMRig/(\d+)".into()]);
        assert!(!upper.agent("XMRig/6.16.0") && !upper.agent("xmrig/6.16.0"));
    }
}
