//! The delay relay's logic: each tier partition's records wait, in order, until the head
//! is ready; then they go on to the next tier or to their topic, inside a transaction
//! that also commits the tier's offsets.

use super::{DUE_HEADER, DelayTiers, PARTITION_HEADER, TIMESTAMP_HEADER};
use crate::{ConsumerEvent, ConsumerRecord, FetchedBatch, Record, TopicPartition};
use bytes::Bytes;
use kasio_proto::{ByteStr, DecodeError};
use std::{
    collections::{BTreeMap, VecDeque},
    ops::Bound,
    sync::Arc,
};

/// A record to write, in the open transaction, for the relay.
#[derive(Debug, Clone)]
pub struct Forward {
    /// Where it goes: the next tier's topic, or the topic it was delayed for.
    pub topic: Arc<str>,
    /// The partition, when the sender chose one and this is the delivery.
    pub partition: Option<i32>,
    /// The key.
    pub key: Option<Bytes>,
    /// The value.
    pub value: Option<Bytes>,
    /// The headers to write (the tiers' own are dropped on delivery, except the due time);
    /// keys and values share the fetched bytes.
    pub headers: Vec<(ByteStr, Bytes)>,
    /// The timestamp to write: the next tier's planned start, or, on delivery, the
    /// record's own.
    pub timestamp: i64,
    /// When the record is due (Unix ms).
    pub due_ms: i64,
    /// Whether this writes the record to its topic (rather than to another tier).
    pub delivers: bool,
    /// The tier partition and offset it comes from.
    pub from: (Arc<str>, i32, i64),
}

impl Forward {
    /// The headers as a record borrows them.
    #[must_use]
    pub fn header_refs(&self) -> Vec<(&str, &[u8])> {
        self.headers.iter().map(|(k, v)| (&**k, &v[..])).collect()
    }

    /// The record to write, borrowing `headers` from [`header_refs`](Self::header_refs).
    #[must_use]
    pub fn record<'a>(&'a self, headers: &'a [(&'a str, &'a [u8])]) -> Record<'a> {
        let mut record = Record::new(&self.topic);
        record.partition = self.partition;
        record.key = self.key.as_deref();
        record.value = self.value.as_deref();
        record.headers = headers;
        record.timestamp = Some(self.timestamp);
        record
    }
}

/// What one tier partition holds, for statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierPartitionStats {
    /// The tier topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The tier's index.
    pub tier: usize,
    /// Records fetched and waiting in the relay.
    pub held: usize,
    /// When the partition's head is ready to move on (Unix ms), if it holds one.
    pub head_ready_ms: Option<i64>,
    /// When the partition's head is due at its topic (Unix ms), if it holds one.
    pub head_due_ms: Option<i64>,
    /// Whether the relay has the partition paused.
    pub paused: bool,
}

#[derive(Debug)]
struct Held {
    record: ConsumerRecord,
    /// When it may leave this tier (Unix ms).
    ready: i64,
    due: i64,
}

#[derive(Debug)]
struct TierPartition {
    /// The topic its records are delayed for.
    target: Arc<str>,
    tier: usize,
    held: VecDeque<Held>,
    paused: bool,
    /// The next offset expected from the consumer (older ones are stale and skipped).
    fetched_next: Option<i64>,
    /// The first offset no committed transaction has forwarded: where reading starts again
    /// after an abort.
    committed_next: Option<i64>,
    /// The offset after the last record forwarded in the open transaction.
    txn_next: Option<i64>,
}

/// The relay's logic, sans-IO: the caller runs a group consumer of the tier topics
/// (read_committed, no auto-commit) and a transactional producer, feeds this the
/// consumer's batches and events, writes each [`Forward`] with the producer, applies
/// the pauses, and commits the transaction with [`offsets`](Self::offsets) from time to
/// time. Nothing leaves a tier before its planned time, and the partition behind a
/// waiting head is paused, so the relay holds at most the batches fetched before that.
///
/// ```
/// use kasio_core::{DelayRelay, DelayTiers};
/// let relay = DelayRelay::new(DelayTiers::default(), &["orders"]);
/// assert_eq!(relay.topics()[0], "orders.delay.1s");
/// assert_eq!(relay.topics().len(), 6);
/// ```
#[derive(Debug)]
pub struct DelayRelay {
    tiers: DelayTiers,
    topics: Vec<String>,
    partitions: BTreeMap<(Arc<str>, i32), TierPartition>,
    /// Where the next search for a ready head starts, so no partition waits on others.
    cursor: Option<(Arc<str>, i32)>,
}

impl DelayRelay {
    /// A relay for the records delayed for `topics`, through `tiers`.
    #[must_use]
    pub fn new(tiers: DelayTiers, topics: &[&str]) -> Self {
        let topics = topics.iter().flat_map(|t| tiers.topics(t)).collect();
        Self {
            tiers,
            topics,
            partitions: BTreeMap::new(),
            cursor: None,
        }
    }

    /// The tier topics to subscribe to.
    #[must_use]
    pub fn topics(&self) -> &[String] {
        &self.topics
    }

    /// The tiers.
    #[must_use]
    pub fn tiers(&self) -> &DelayTiers {
        &self.tiers
    }

    /// Notes a consumer event: assigned tier partitions are relayed from their committed
    /// offsets; partitions taken away are forgotten. Whether the open transaction had
    /// forwarded from a partition taken away: it must then abort, as another relay may
    /// forward those records now. (With `hold_revocations`, commit before
    /// [`ConsumerEvent::Revoking`] reaches this, and nothing is lost.)
    pub fn on_event(&mut self, event: &ConsumerEvent) -> bool {
        match event {
            ConsumerEvent::Assigned { partitions } => {
                for tp in partitions {
                    self.assign(tp);
                }
                false
            }
            ConsumerEvent::Revoking { partitions }
            | ConsumerEvent::Revoked { partitions }
            | ConsumerEvent::Lost { partitions } => {
                let mut doomed = false;
                for tp in partitions {
                    if let Some(p) = self.partitions.remove(&(tp.topic.clone(), tp.partition)) {
                        doomed |= p.txn_next.is_some();
                    }
                }
                doomed
            }
            _ => false,
        }
    }

    fn assign(&mut self, tp: &TopicPartition) {
        let Some((target, tier)) = self.tiers.tier_of(&tp.topic) else {
            return;
        };
        let target: Arc<str> = target.into();
        self.partitions
            .entry((tp.topic.clone(), tp.partition))
            .or_insert_with(|| TierPartition {
                target,
                tier,
                held: VecDeque::new(),
                paused: false,
                fetched_next: None,
                committed_next: None,
                txn_next: None,
            });
    }

    /// Takes a fetched batch of a tier partition; its records wait here until ready.
    /// Whether the batch was taken (it is ignored if the partition is not a tier
    /// partition this relay holds).
    ///
    /// # Errors
    /// [`DecodeError`] for a batch whose records do not decode; nothing of it is taken.
    pub fn take(&mut self, batch: &FetchedBatch) -> Result<bool, DecodeError> {
        let key = (batch.topic.clone(), batch.partition);
        if !self.partitions.contains_key(&key) {
            // A partition assigned by hand (no group event): relay it all the same.
            self.assign(&TopicPartition {
                topic: batch.topic.clone(),
                partition: batch.partition,
            });
        }
        let Some(p) = self.partitions.get_mut(&key) else {
            return Ok(false);
        };
        let tier_ms = self.tiers.length_ms(p.tier);
        let mut taken = Vec::with_capacity(batch.len_hint());
        for record in batch.iter()? {
            let record = record?;
            if p.fetched_next.is_some_and(|next| record.offset < next) {
                continue;
            }
            let ready = record.timestamp.saturating_add(tier_ms);
            let due = header_i64(&record, DUE_HEADER).unwrap_or(ready);
            taken.push(Held { record, ready, due });
        }
        p.committed_next.get_or_insert(batch.start_offset());
        if let Some(last) = taken.last() {
            p.fetched_next = Some(last.record.offset + 1);
        }
        p.held.extend(taken);
        Ok(true)
    }

    /// The next record to forward at `now_ms` (Unix ms), if a partition's head is ready.
    /// Partitions take turns, so a busy one does not hold up the rest.
    pub fn poll(&mut self, now_ms: i64) -> Option<Forward> {
        loop {
            let key = self.ready_partition(now_ms)?;
            if let Some(forward) = self.forward_head(&key, now_ms) {
                self.cursor = Some(key);
                return Some(forward);
            }
        }
    }

    /// The first partition after the last one served whose head is ready.
    fn ready_partition(&self, now_ms: i64) -> Option<(Arc<str>, i32)> {
        let ready = |(_, p): &(&(Arc<str>, i32), &TierPartition)| {
            p.held.front().is_some_and(|h| h.ready <= now_ms)
        };
        let found = match &self.cursor {
            Some(last) => self
                .partitions
                .range((Bound::Excluded(last.clone()), Bound::Unbounded))
                .chain(self.partitions.range(..=last.clone()))
                .find(ready),
            None => self.partitions.iter().find(ready),
        };
        found.map(|(k, _)| k.clone())
    }

    fn forward_head(&mut self, key: &(Arc<str>, i32), now_ms: i64) -> Option<Forward> {
        let tiers = &self.tiers;
        let p = self.partitions.get_mut(key)?;
        let head = p.held.front_mut()?;
        if head.ready > now_ms {
            return None;
        }
        let left = head.due.saturating_sub(head.ready);
        let next = if left <= 0 { None } else { tiers.route(left) };
        if left > 0 && next.is_none() {
            // Less than the shortest tier is left (a record written by other means): it
            // waits here for its due time, holding up the records behind it no longer.
            head.ready = head.due;
            return None;
        }
        let held = p.held.pop_front()?;
        p.txn_next = Some(held.record.offset + 1);
        let record = held.record;
        let mut headers = Vec::new();
        let mut timestamp = None;
        let mut partition = None;
        for h in record.headers().flatten() {
            let value = h.value.unwrap_or_default();
            if next.is_none() {
                if &*h.key == TIMESTAMP_HEADER {
                    timestamp = parse_i64(&value);
                    continue;
                }
                if &*h.key == PARTITION_HEADER {
                    partition = parse_i64(&value).and_then(|p| i32::try_from(p).ok());
                    continue;
                }
            }
            headers.push((h.key, value));
        }
        let (topic, timestamp): (Arc<str>, i64) = match next {
            Some(tier) => (tiers.topic(&p.target, tier).into(), held.ready),
            None => (p.target.clone(), timestamp.unwrap_or(record.timestamp)),
        };
        if next.is_some() && !headers.iter().any(|(k, _)| *k == DUE_HEADER) {
            headers.push((DUE_HEADER.into(), held.due.to_string().into()));
        }
        Some(Forward {
            topic,
            partition,
            key: record.key,
            value: record.value,
            headers,
            timestamp,
            due_ms: held.due,
            delivers: next.is_none(),
            from: (record.topic, record.partition, record.offset),
        })
    }

    /// The next pause (`true`) or resume to apply: a partition is paused while it holds
    /// records (its head is waiting), and fetched again once it holds none.
    pub fn poll_pause(&mut self) -> Option<(TopicPartition, bool)> {
        self.partitions
            .iter_mut()
            .find_map(|((topic, partition), p)| {
                let want = !p.held.is_empty();
                (want != p.paused).then(|| {
                    p.paused = want;
                    (
                        TopicPartition {
                            topic: topic.clone(),
                            partition: *partition,
                        },
                        want,
                    )
                })
            })
    }

    /// When the earliest waiting head is ready (Unix ms): the time to poll again.
    #[must_use]
    pub fn next_ready(&self) -> Option<i64> {
        self.partitions
            .values()
            .filter_map(|p| p.held.front().map(|h| h.ready))
            .min()
    }

    /// Whether the open transaction has forwarded anything.
    #[must_use]
    pub fn in_transaction(&self) -> bool {
        self.partitions.values().any(|p| p.txn_next.is_some())
    }

    /// The tier offsets the open transaction commits: (topic, partition, next offset).
    #[must_use]
    pub fn offsets(&self) -> Vec<(Arc<str>, i32, i64)> {
        self.partitions
            .iter()
            .filter_map(|((t, p), tp)| tp.txn_next.map(|n| (t.clone(), *p, n)))
            .collect()
    }

    /// The open transaction committed.
    pub fn committed(&mut self) {
        for p in self.partitions.values_mut() {
            if let Some(next) = p.txn_next.take() {
                p.committed_next = Some(next);
            }
        }
    }

    /// The open transaction aborted: everything held is dropped and each partition reads
    /// again from its first record not forwarded by a committed transaction. The seeks to
    /// make: (topic, partition, offset).
    pub fn aborted(&mut self) -> Vec<(Arc<str>, i32, i64)> {
        let mut seeks = Vec::new();
        for ((topic, partition), p) in &mut self.partitions {
            p.txn_next = None;
            p.held.clear();
            p.fetched_next = p.committed_next;
            if let Some(at) = p.committed_next {
                seeks.push((topic.clone(), *partition, at));
            }
        }
        seeks
    }

    /// What each tier partition holds.
    #[must_use]
    pub fn stats(&self) -> Vec<TierPartitionStats> {
        self.partitions
            .iter()
            .map(|((topic, partition), p)| TierPartitionStats {
                topic: topic.clone(),
                partition: *partition,
                tier: p.tier,
                held: p.held.len(),
                head_ready_ms: p.held.front().map(|h| h.ready),
                head_due_ms: p.held.front().map(|h| h.due),
                paused: p.paused,
            })
            .collect()
    }
}

fn header_i64(record: &ConsumerRecord, key: &str) -> Option<i64> {
    record
        .headers()
        .flatten()
        .find(|h| &*h.key == key)
        .and_then(|h| parse_i64(h.value.as_deref()?))
}

fn parse_i64(bytes: &[u8]) -> Option<i64> {
    std::str::from_utf8(bytes).ok()?.trim().parse().ok()
}
