//! Delayed delivery: where a delayed record is written first (the producer's side), and
//! the relay that moves records through the delay tiers to their topics.

use kasio_core::{DUE_HEADER, DelayTiers, PARTITION_HEADER, Record, TIMESTAMP_HEADER};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// When a delayed record is due: after a delay from now, or at a time.
///
/// ```
/// use kasio_shell::Delay;
/// use std::time::{Duration, SystemTime};
/// let _in_30s: Delay = Duration::from_secs(30).into();
/// let _at: Delay = (SystemTime::now() + Duration::from_secs(60)).into();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delay {
    /// This long after the send.
    By(Duration),
    /// At this time.
    Until(SystemTime),
}

impl From<Duration> for Delay {
    fn from(d: Duration) -> Self {
        Self::By(d)
    }
}

impl From<SystemTime> for Delay {
    fn from(t: SystemTime) -> Self {
        Self::Until(t)
    }
}

/// The Unix clock in milliseconds.
pub(crate) fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Where a delayed record goes first, and how long the producer holds it before.
pub(crate) struct Routing {
    topic: String,
    due: String,
    timestamp: String,
    partition: Option<String>,
    start_ms: i64,
    direct: bool,
    /// How long the producer holds the record before writing it.
    pub(crate) hold: Duration,
}

impl Routing {
    /// Plans `record`, sent at `now_ms`; a writer that cannot hold records (a
    /// transactional producer) writes at once and lets the tiers cover the whole delay.
    pub(crate) fn plan(
        tiers: &DelayTiers,
        can_hold: bool,
        record: &Record<'_>,
        delay: Delay,
        now_ms: i64,
    ) -> Self {
        let due_ms = match delay {
            Delay::By(d) => now_ms.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            Delay::Until(t) => unix_ms(t),
        };
        let plan = if can_hold {
            tiers.plan(now_ms, due_ms)
        } else {
            tiers.plan_now(now_ms, due_ms)
        };
        let topic = match plan.first {
            Some(tier) => tiers.topic(record.topic, tier),
            None => record.topic.to_string(),
        };
        Self {
            topic,
            due: due_ms.to_string(),
            timestamp: record.timestamp.unwrap_or(now_ms).to_string(),
            partition: record.partition.map(|p| p.to_string()),
            start_ms: plan.start_ms,
            direct: plan.first.is_none(),
            hold: Duration::from_millis(plan.start_ms.saturating_sub(now_ms).max(0).unsigned_abs()),
        }
    }

    /// The headers to write: the record's own, then the tiers'.
    pub(crate) fn headers<'a>(&'a self, record: &Record<'a>) -> Vec<(&'a str, &'a [u8])> {
        let mut headers = record.headers.to_vec();
        headers.push((DUE_HEADER, self.due.as_bytes()));
        if !self.direct {
            headers.push((TIMESTAMP_HEADER, self.timestamp.as_bytes()));
            if let Some(p) = &self.partition {
                headers.push((PARTITION_HEADER, p.as_bytes()));
            }
        }
        headers
    }

    /// The record to write, with `headers` from [`headers`](Self::headers).
    pub(crate) fn record<'a>(
        &'a self,
        mut record: Record<'a>,
        headers: &'a [(&'a str, &'a [u8])],
    ) -> Record<'a> {
        record.headers = headers;
        if !self.direct {
            record.topic = &self.topic;
            record.partition = None;
            record.timestamp = Some(self.start_ms);
        }
        record
    }
}
