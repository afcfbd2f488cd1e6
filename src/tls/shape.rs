//! The record shape of an encrypted session, from its application-data record sizes and
//! times: who spoke first after the handshake, what the first request was answered with,
//! records the server sent unprompted (job pushes), small client records (submits).
//!
//! A TLS stratum session (a miner's login answered by a job, then jobs pushed by the pool
//! with no request before them, shares submitted in small records) looks unlike HTTP/1.1,
//! where the server only ever answers. The tracker only counts; what the counts mean is
//! judged in Python. Constant memory, constant work per record.

/// A server record is a push when the previous application record was also the server's
/// and at least this long ago: nothing asked for it.
pub const PUSH_QUIET: f64 = 1.0;
/// Pushes at least this long (record body bytes) are job-sized; shorter ones are counted
/// apart (difficulty changes, pings, an IMAP `EXISTS`).
pub const PUSH_JOB_MIN: u32 = 100;
/// Job pushes of one pool differ by a few bytes at most (same blob, id and target lengths):
/// pushes within this many bytes of the first one count as the same size.
pub const PUSH_SAME: u32 = 8;
/// Client records in this range after the first look like submits or keepalives (a share
/// is ~150-300 bytes of JSON); smaller ones are pings.
pub const CLIENT_SMALL: (u32, u32) = (64, 1024);

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ShapeSummary {
    /// The first application record after the handshake was the client's.
    pub client_first: bool,
    /// Length of the client's first application record.
    pub first_client: u32,
    /// Length of the last record of the server's first flight after the client's first
    /// record: the answer to the first request (TLS 1.3 session tickets come before it).
    pub first_answer: u32,
    /// Job-sized and short server pushes.
    pub pushes: u32,
    pub pushes_small: u32,
    /// Job-sized pushes the size of the first one (± PUSH_SAME), the first included.
    pub pushes_same: u32,
    first_push: u32,
    /// Client records after the first within CLIENT_SMALL.
    pub client_small: u32,
    /// Application records each way (a: client, b: server) and the largest one.
    pub records: [u32; 2],
    pub max_record: u32,
    pub bytes: u64,
    /// Time of the first application record.
    pub first_ts: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Answer {
    /// The client has not sent its first record yet.
    #[default]
    Before,
    /// It has; the server has not answered yet.
    Waiting,
    /// The server's answer flight is in progress.
    Open,
    Closed,
}

#[derive(Debug, Clone, Default)]
pub struct ShapeTracker {
    tls13: bool,
    answer: Answer,
    /// TLS 1.3: the client's first encrypted record is its Finished, not data.
    skipped_finished: bool,
    last: Option<(bool, f64)>,
    pub s: ShapeSummary,
}

impl ShapeTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// The negotiated version (from the ServerHello).
    pub fn set_version(&mut self, version: u16) {
        self.tls13 = version == 0x0304;
    }

    /// One record of content type `ctype` and body length `len`; true when a count that
    /// judgement looks at changed.
    pub fn record(&mut self, from_client: bool, ctype: u8, len: u16, ts: f64) -> bool {
        if ctype != 23 {
            return false;
        }
        let len = u32::from(len);
        if self.tls13 && !self.skipped_finished {
            // Before the client's Finished the server's encrypted records are its own
            // handshake (EncryptedExtensions .. Finished).
            if from_client {
                self.skipped_finished = true;
            }
            return false;
        }
        let last = self.last.replace((from_client, ts));
        let s = &mut self.s;
        let first = s.records[0] + s.records[1] == 0;
        if first {
            s.client_first = from_client;
            s.first_ts = ts;
        }
        s.bytes += u64::from(len);
        s.max_record = s.max_record.max(len);
        let mut changed = first;
        if from_client {
            if s.records[0] == 0 {
                s.first_client = len;
                self.answer = Answer::Waiting;
            } else if (CLIENT_SMALL.0..=CLIENT_SMALL.1).contains(&len) {
                s.client_small += 1;
                changed = true;
            }
            if self.answer == Answer::Open {
                self.answer = Answer::Closed;
            }
            s.records[0] += 1;
            return changed;
        }
        s.records[1] += 1;
        let quiet = last.map_or(true, |(_, t)| ts - t >= PUSH_QUIET);
        match self.answer {
            // The first server records after the first request, back to back, answer it
            // (TLS 1.3 session tickets first, then the reply): the last one is the reply.
            Answer::Waiting => {
                s.first_answer = len;
                self.answer = Answer::Open;
                return true;
            }
            Answer::Open if !quiet => {
                s.first_answer = len;
                return true;
            }
            Answer::Open => self.answer = Answer::Closed,
            Answer::Before | Answer::Closed => {}
        }
        // A push: nothing from the client since the server last spoke, and a quiet gap.
        if quiet && matches!(last, Some((false, _))) && s.records[0] > 0 {
            if len >= PUSH_JOB_MIN {
                s.pushes += 1;
                if s.first_push == 0 {
                    s.first_push = len;
                }
                if len.abs_diff(s.first_push) <= PUSH_SAME {
                    s.pushes_same += 1;
                }
            } else {
                s.pushes_small += 1;
            }
            changed = true;
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(t: &mut ShapeTracker, recs: &[(bool, u16, f64)]) -> u32 {
        recs.iter()
            .filter(|(c, l, ts)| t.record(*c, 23, *l, *ts))
            .count() as u32
    }

    #[test]
    fn stratum_shape_counts_pushes_and_submits() {
        let mut t = ShapeTracker::new();
        t.set_version(0x0304);
        // Server handshake records, client Finished: skipped.
        assert!(!t.record(false, 23, 2000, 0.0));
        assert!(!t.record(true, 23, 53, 0.01));
        session(
            &mut t,
            &[
                (true, 700, 0.02),
                (false, 250, 0.05),
                (false, 420, 0.06),
                (false, 380, 3.0),
                (true, 200, 4.0),
                (false, 60, 4.05),
                (false, 385, 6.0),
                (false, 40, 9.0),
            ],
        );
        let s = t.s;
        assert!(s.client_first);
        assert_eq!((s.first_client, s.first_answer), (700, 420));
        // 3.0: after the answer flight, quiet, previous record the server's: a push.
        assert_eq!((s.pushes, s.pushes_small, s.client_small), (2, 1, 1));
        assert_eq!(s.pushes_same, 2);
        assert_eq!(s.records, [2, 6]);
    }

    #[test]
    fn http_request_response_has_no_pushes() {
        let mut t = ShapeTracker::new();
        for i in 0..20 {
            let ts = f64::from(i) * 5.0;
            t.record(true, 23, 400, ts);
            t.record(false, 23, 16384, ts + 0.1);
            t.record(false, 23, 16384, ts + 0.2);
        }
        assert_eq!(t.s.pushes + t.s.pushes_small, 0);
        assert!(t.s.client_first);
    }

    #[test]
    fn handshake_records_and_other_types_are_ignored() {
        let mut t = ShapeTracker::new();
        assert!(!t.record(true, 22, 300, 0.0));
        assert!(!t.record(false, 21, 2, 0.0));
        assert_eq!(t.s, ShapeSummary::default());
    }

    proptest::proptest! {
        #[test]
        fn counts_stay_within_records(recs in proptest::collection::vec(
            (proptest::bool::ANY, 0u16..=u16::MAX, 0.0f64..100.0), 0..200)) {
            let mut t = ShapeTracker::new();
            let mut ts = 0.0;
            for (c, l, dt) in recs {
                ts += dt;
                t.record(c, 23, l, ts);
            }
            let s = t.s;
            proptest::prop_assert!(s.pushes + s.pushes_small <= s.records[1]);
            proptest::prop_assert!(s.pushes_same <= s.pushes);
            proptest::prop_assert!(s.client_small <= s.records[0]);
        }
    }
}
