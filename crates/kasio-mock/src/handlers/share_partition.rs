//! A share partition's records (KIP-932): acquired under a lock, acknowledged (accept,
//! release, reject, renew) all or none per request, delivered again when released or when
//! their lock runs out, archived at the delivery limit; the start offset moves past
//! records done with.

use kasio_proto::ErrorCode;
use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

/// `group.share.partition.max.record.locks`: a partition acquires nothing more while this
/// many of its records are acquired.
const MAX_RECORD_LOCKS: usize = 2000;

const GAP: i8 = 0;
const ACCEPT: i8 = 1;
const RELEASE: i8 = 2;
const REJECT: i8 = 3;
const RENEW: i8 = 4;

/// Where one record of a share partition stands (records past the map, up to the log end,
/// are available and never delivered).
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Available,
    Acquired {
        member: String,
        until: Instant,
    },
    /// Accepted, or a gap: done with.
    Acknowledged,
    /// Rejected, or delivered `share.delivery.count.limit` times.
    Archived,
}

#[derive(Debug, Clone)]
struct Record {
    state: State,
    deliveries: i16,
}

/// A share partition: its start offset and the records from there that were delivered.
#[derive(Debug, Clone, Default)]
pub(crate) struct SharePartition {
    start: i64,
    records: BTreeMap<i64, Record>,
    /// Records behind the start: accepted or not, and their delivery counts (so a test can
    /// check what became of each).
    finished: BTreeMap<i64, (bool, i16)>,
}

/// What became of a record of a share partition, as [`Cluster::share_outcomes`] tells it.
///
/// [`Cluster::share_outcomes`]: crate::Cluster::share_outcomes
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareOutcome {
    /// Accepted (or acknowledged as a gap) after this many deliveries.
    Accepted(i16),
    /// Rejected, or archived at the delivery limit, after this many deliveries.
    Archived(i16),
    /// Acquired by a member now, delivered this many times.
    Acquired(i16),
    /// Available again after this many deliveries.
    Available(i16),
}

/// A record no longer held: available again, or archived at the delivery limit.
fn let_go(record: &mut Record, limit: i16) {
    record.state = if record.deliveries >= limit {
        State::Archived
    } else {
        State::Available
    };
}

impl SharePartition {
    /// Moves the start past records that are done with.
    pub(crate) fn advance(&mut self) {
        while let Some(r) = self.records.get(&self.start) {
            if !matches!(r.state, State::Acknowledged | State::Archived) {
                break;
            }
            let accepted = r.state == State::Acknowledged;
            self.finished.insert(self.start, (accepted, r.deliveries));
            self.records.remove(&self.start);
            self.start += 1;
        }
    }

    /// Lets go of locks that ran out.
    pub(crate) fn expire(&mut self, now: Instant, limit: i16) {
        for r in self.records.values_mut() {
            if matches!(r.state, State::Acquired { until, .. } if until <= now) {
                let_go(r, limit);
            }
        }
        self.advance();
    }

    /// Lets go of everything `member` holds.
    pub(crate) fn release_member(&mut self, member: &str, limit: i16) {
        for r in self.records.values_mut() {
            if matches!(&r.state, State::Acquired { member: m, .. } if m == member) {
                let_go(r, limit);
            }
        }
        self.advance();
    }

    /// Applies one request's acknowledgements of this partition: all of them, or none if
    /// any names a record `member` does not hold.
    pub(crate) fn acknowledge(
        &mut self,
        member: &str,
        batches: &[(i64, i64, Vec<i8>)],
        now: Instant,
        lock: Duration,
        limit: i16,
    ) -> ErrorCode {
        let held = |o: i64| {
            self.records.get(&o).is_some_and(
                |r| matches!(&r.state, State::Acquired { member: m, until } if m == member && *until > now),
            )
        };
        // As Kafka: batches in offset order, none overlapping another.
        let mut next = i64::MIN;
        for (first, last, types) in batches {
            // Bad bounds from the wire are refused, never overflowed on.
            let span = last
                .checked_sub(*first)
                .filter(|&d| (0..1_000_000).contains(&d) && *first >= next);
            let Some(span) = span.and_then(|d| usize::try_from(d + 1).ok()) else {
                return ErrorCode::InvalidRequest;
            };
            next = last.saturating_add(1);
            if types.is_empty() || (types.len() != 1 && types.len() != span) {
                return ErrorCode::InvalidRequest;
            }
            if types.iter().any(|t| !(GAP..=RENEW).contains(t)) {
                return ErrorCode::InvalidRequest;
            }
            if !(*first..=*last).all(held) {
                return ErrorCode::InvalidRecordState;
            }
        }
        for (first, last, types) in batches {
            for (i, o) in (*first..=*last).enumerate() {
                let kind = if types.len() == 1 { types[0] } else { types[i] };
                let Some(r) = self.records.get_mut(&o) else {
                    continue;
                };
                match kind {
                    GAP | ACCEPT => r.state = State::Acknowledged,
                    RELEASE => let_go(r, limit),
                    REJECT => r.state = State::Archived,
                    _ => {
                        r.state = State::Acquired {
                            member: member.to_string(),
                            until: now + lock,
                        }
                    }
                }
            }
        }
        self.advance();
        ErrorCode::None
    }

    /// Acquires up to `max` available records below `end` for `member`: the ranges taken,
    /// each with its delivery count.
    pub(crate) fn acquire(
        &mut self,
        member: &str,
        max: usize,
        log_start: i64,
        end: i64,
        until: Instant,
    ) -> Vec<(i64, i64, i16)> {
        if self.start < log_start {
            self.records = self.records.split_off(&log_start);
            self.start = log_start;
            self.advance();
        }
        let mut held = self
            .records
            .values()
            .filter(|r| matches!(r.state, State::Acquired { .. }))
            .count();
        let mut out: Vec<(i64, i64, i16)> = Vec::new();
        let mut taken = 0;
        let mut offset = self.start;
        while offset < end && taken < max && held < MAX_RECORD_LOCKS {
            let r = self.records.entry(offset).or_insert(Record {
                state: State::Available,
                deliveries: 0,
            });
            if r.state == State::Available {
                r.deliveries = r.deliveries.saturating_add(1);
                r.state = State::Acquired {
                    member: member.to_string(),
                    until,
                };
                match out.last_mut() {
                    Some(last) if last.1 + 1 == offset && last.2 == r.deliveries => last.1 = offset,
                    _ => out.push((offset, offset, r.deliveries)),
                }
                taken += 1;
                held += 1;
            }
            offset += 1;
        }
        out
    }
}

impl SharePartition {
    pub(crate) fn new(start: i64) -> Self {
        Self {
            start,
            ..Default::default()
        }
    }

    /// Lets go of every lock (the partition's leader moved).
    pub(crate) fn drop_locks(&mut self, limit: i16) {
        for r in self.records.values_mut() {
            if matches!(r.state, State::Acquired { .. }) {
                let_go(r, limit);
            }
        }
        self.advance();
    }

    /// The start offset and what became of each record delivered.
    pub(crate) fn outcomes(&self) -> (i64, BTreeMap<i64, ShareOutcome>) {
        let mut out: BTreeMap<i64, ShareOutcome> = self
            .finished
            .iter()
            .map(|(o, &(accepted, n))| {
                let outcome = if accepted {
                    ShareOutcome::Accepted(n)
                } else {
                    ShareOutcome::Archived(n)
                };
                (*o, outcome)
            })
            .collect();
        for (o, r) in &self.records {
            let n = r.deliveries;
            let outcome = match r.state {
                State::Acknowledged => ShareOutcome::Accepted(n),
                State::Archived => ShareOutcome::Archived(n),
                State::Acquired { .. } => ShareOutcome::Acquired(n),
                State::Available => ShareOutcome::Available(n),
            };
            out.insert(*o, outcome);
        }
        (self.start, out)
    }
}
