//! Delivery tracking, sans-IO: what became of each message a publisher sent, by message
//! id, in bounded memory (finished entries expire after a while, the oldest first when
//! too many are kept), and message ids themselves (UUIDv7, time-ordered).

use crate::rng::Rng;
use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
    time::{Duration, Instant},
};

/// The header that carries a message's id.
pub const MESSAGE_ID_HEADER: &str = "kasio.message.id";

/// A new message id: a UUIDv7 (RFC 9562) in its usual hyphenated form, its first 48
/// bits the Unix time in milliseconds, so ids sort by when they were made.
///
/// ```
/// let a = kasio_core::message_id(1_767_225_600_000, 1);
/// let b = kasio_core::message_id(1_767_225_600_001, 2);
/// assert_eq!(a.len(), 36);
/// assert_eq!(&a[14..15], "7");
/// assert!(a < b);
/// ```
#[must_use]
pub fn message_id(unix_ms: i64, seed: u64) -> String {
    let mut rng = Rng::new(seed);
    let ms = u128::from(u64::try_from(unix_ms).unwrap_or(0) & 0xFFFF_FFFF_FFFF);
    let rand_a = u128::from(rng.next_u64() & 0xFFF);
    let rand_b = u128::from(rng.next_u64() & 0x3FFF_FFFF_FFFF_FFFF);
    let v = (ms << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b;
    let hex = format!("{v:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Where a message is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Sent, its acknowledgement not yet come.
    Pending,
    /// A try failed; the next is due at `at`.
    RetryScheduled {
        /// Tries so far.
        attempt: u32,
        /// When the next try goes.
        at: Instant,
    },
    /// The broker has it.
    Success {
        /// The topic.
        topic: Arc<str>,
        /// The partition.
        partition: i32,
        /// Its offset.
        offset: i64,
    },
    /// Its tries ran out and it was written to the dead-letter topic.
    DeadLettered {
        /// The dead-letter topic.
        topic: Arc<str>,
    },
    /// It could not be delivered, nor dead-lettered.
    Failed {
        /// Why.
        error: String,
    },
}

impl DeliveryStatus {
    /// Whether nothing more happens to the message.
    #[must_use]
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Self::Success { .. } | Self::DeadLettered { .. } | Self::Failed { .. }
        )
    }
}

/// How many tracked messages are in each status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusCounts {
    /// Sent and not yet acknowledged.
    pub pending: usize,
    /// Waiting for their next try.
    pub retry_scheduled: usize,
    /// Delivered (still remembered).
    pub success: usize,
    /// Dead-lettered (still remembered).
    pub dead_lettered: usize,
    /// Failed for good (still remembered).
    pub failed: usize,
}

#[derive(Debug)]
struct Entry {
    status: DeliveryStatus,
    /// Which finishing of the id its expiry belongs to (an id may be sent again).
    finished: u64,
}

/// Each message's status by id, in bounded memory: entries that reached a final status
/// are forgotten `retention` after it, or sooner, the oldest first, once more than
/// `max_finished` are kept. Unfinished entries are bounded by what the publisher may
/// hold (its producer's `buffer.memory`, its retries). Changes are kept for a reader to
/// [`drain`](Self::drain_changes), at most `max_changes` of them: a reader that falls
/// behind misses the oldest, and is told how many.
///
/// ```
/// use kasio_core::{DeliveryStatus, DeliveryTracker};
/// use std::time::{Duration, Instant};
/// let now = Instant::now();
/// let mut t = DeliveryTracker::new(Duration::from_secs(60), 10_000, 10_000);
/// t.track("m-1", now);
/// t.update("m-1", DeliveryStatus::DeadLettered { topic: "orders.dlt".into() }, now);
/// assert!(t.status("m-1").is_some_and(DeliveryStatus::is_final));
/// t.expire(now + Duration::from_secs(61));
/// assert_eq!(t.status("m-1"), None);
/// ```
#[derive(Debug)]
pub struct DeliveryTracker {
    entries: HashMap<Arc<str>, Entry>,
    /// Finished entries in the order they finished, with the instant.
    finished: VecDeque<(Instant, Arc<str>, u64)>,
    finishes: u64,
    retention: Duration,
    max_finished: usize,
    changes: VecDeque<(Arc<str>, DeliveryStatus)>,
    max_changes: usize,
    missed: u64,
}

impl DeliveryTracker {
    /// A tracker remembering finished messages for `retention`, at most `max_finished`
    /// of them, and keeping at most `max_changes` changes for a reader.
    #[must_use]
    pub fn new(retention: Duration, max_finished: usize, max_changes: usize) -> Self {
        Self {
            entries: HashMap::new(),
            finished: VecDeque::new(),
            finishes: 0,
            retention,
            max_finished,
            changes: VecDeque::new(),
            max_changes,
            missed: 0,
        }
    }

    /// Starts tracking a message sent now; `false` when the id is tracked and not
    /// finished (a second message with the same id is not tracked apart).
    pub fn track(&mut self, id: &str, now: Instant) -> bool {
        if self.entries.get(id).is_some_and(|e| !e.status.is_final()) {
            return false;
        }
        self.update(id, DeliveryStatus::Pending, now);
        true
    }

    /// The message's status is now `status`.
    pub fn update(&mut self, id: &str, status: DeliveryStatus, now: Instant) {
        let key: Arc<str> = match self.entries.get_key_value(id) {
            Some((k, _)) => k.clone(),
            None => id.into(),
        };
        let mut finished = 0;
        if status.is_final() {
            self.finishes += 1;
            finished = self.finishes;
            self.finished.push_back((now, key.clone(), finished));
        }
        self.entries.insert(
            key.clone(),
            Entry {
                status: status.clone(),
                finished,
            },
        );
        if self.max_changes > 0 {
            if self.changes.len() >= self.max_changes {
                self.changes.pop_front();
                self.missed += 1;
            }
            self.changes.push_back((key, status));
        }
        self.trim(now);
    }

    /// The message's status, while it is remembered.
    #[must_use]
    pub fn status(&self, id: &str) -> Option<&DeliveryStatus> {
        self.entries.get(id).map(|e| &e.status)
    }

    /// Forgets finished messages older than the retention, and the oldest beyond
    /// `max_finished`.
    pub fn expire(&mut self, now: Instant) {
        self.trim(now);
    }

    fn trim(&mut self, now: Instant) {
        while let Some((at, id, n)) = self.finished.front() {
            let old = now.saturating_duration_since(*at) >= self.retention;
            if !old && self.finished.len() <= self.max_finished {
                break;
            }
            if self.entries.get(id).is_some_and(|e| e.finished == *n) {
                self.entries.remove(id);
            }
            self.finished.pop_front();
        }
    }

    /// When the next finished message is forgotten.
    #[must_use]
    pub fn next_expiry(&self) -> Option<Instant> {
        self.finished.front().map(|(at, _, _)| *at + self.retention)
    }

    /// Changes since the last call, oldest first, and how many were missed because the
    /// reader fell behind.
    pub fn drain_changes(&mut self) -> (Vec<(Arc<str>, DeliveryStatus)>, u64) {
        let missed = std::mem::take(&mut self.missed);
        (self.changes.drain(..).collect(), missed)
    }

    /// Messages remembered.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether none is remembered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many remembered messages are in each status.
    #[must_use]
    pub fn counts(&self) -> StatusCounts {
        let mut c = StatusCounts::default();
        for e in self.entries.values() {
            match e.status {
                DeliveryStatus::Pending => c.pending += 1,
                DeliveryStatus::RetryScheduled { .. } => c.retry_scheduled += 1,
                DeliveryStatus::Success { .. } => c.success += 1,
                DeliveryStatus::DeadLettered { .. } => c.dead_lettered += 1,
                DeliveryStatus::Failed { .. } => c.failed += 1,
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn success() -> DeliveryStatus {
        DeliveryStatus::Success {
            topic: "t".into(),
            partition: 0,
            offset: 1,
        }
    }

    #[test]
    fn ids_are_v7_and_differ() {
        let ids: std::collections::HashSet<String> = (0..1000)
            .map(|s| message_id(1_767_225_600_000, s))
            .collect();
        assert_eq!(ids.len(), 1000);
        for id in &ids {
            assert_eq!(&id[14..15], "7");
            assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
            assert!(id.starts_with("019b"), "{id}");
        }
    }

    #[test]
    fn memory_stays_bounded_however_many_finish() {
        let now = Instant::now();
        let mut t = DeliveryTracker::new(Duration::from_secs(300), 1000, 100);
        for i in 0..100_000 {
            let id = format!("m-{i}");
            assert!(t.track(&id, now));
            t.update(&id, success(), now);
        }
        assert_eq!(t.len(), 1000, "the oldest finished go beyond the cap");
        assert!(t.status("m-99999").is_some());
        assert!(t.status("m-0").is_none());
        let (changes, missed) = t.drain_changes();
        assert_eq!(changes.len(), 100);
        assert_eq!(missed, 200_000 - 100);
    }

    #[test]
    fn unfinished_stay_and_finished_expire_after_retention() {
        let now = Instant::now();
        let mut t = DeliveryTracker::new(Duration::from_secs(10), 1000, 0);
        t.track("a", now);
        t.track("b", now);
        assert!(!t.track("a", now), "a pending id is tracked once");
        t.update("b", success(), now);
        let later = now + Duration::from_secs(5);
        t.update(
            "a",
            DeliveryStatus::RetryScheduled {
                attempt: 1,
                at: later,
            },
            later,
        );
        assert_eq!(t.next_expiry(), Some(now + Duration::from_secs(10)));
        t.expire(now + Duration::from_secs(11));
        assert_eq!(t.status("b"), None);
        assert!(matches!(
            t.status("a"),
            Some(DeliveryStatus::RetryScheduled { .. })
        ));
        // Sent again after finishing: the old expiry does not forget the new entry.
        t.update("a", success(), now + Duration::from_secs(12));
        assert!(t.track("a", now + Duration::from_secs(13)));
        t.expire(now + Duration::from_secs(23));
        assert_eq!(t.status("a"), Some(&DeliveryStatus::Pending));
        let c = t.counts();
        assert_eq!((c.pending, c.success), (1, 0));
    }
}
