//! The priority consumer's logic: which fetched batch goes out next, and which level
//! partitions to pause.

use super::{Priority, guard::Guard};
use crate::{ConfigError, ConsumerEvent, FetchedBatch, TopicPartition, TopicPartitionOffset};
use std::{
    collections::{BTreeMap, VecDeque},
    sync::Arc,
};

/// Batches a partition may have waiting before it is paused, whatever its level: the
/// queue's memory stays bounded when the caller is slower than the broker.
const MAX_QUEUED: usize = 2;

#[derive(Debug)]
struct Partition {
    level: Priority,
    /// The topic the level topic holds records of.
    target: Arc<str>,
    queued: usize,
    queued_records: u64,
    /// Records after the last fetched batch, up to the high watermark it came with.
    remaining: i64,
    paused: bool,
}

/// Records waiting at one priority level of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelStats {
    /// The topic (not the level topic).
    pub topic: Arc<str>,
    /// The level.
    pub level: Priority,
    /// Records fetched and waiting to be handed out.
    pub queued: u64,
    /// Records waiting: those queued plus those the broker holds past what was fetched.
    pub backlog: i64,
    /// Records of this level handed out so far.
    pub handed_out: u64,
}

/// The priority consumer's logic, sans-IO: batches a consumer of the level topics
/// fetched go in with [`push`](Self::push), and [`pop`](Self::pop) hands them out highest
/// level first. A lower level's partition is paused, once a batch of it waits, while a
/// higher level has a backlog, so fetches carry the higher levels; a starvation guard
/// hands out a lower level's waiting batch whenever that level got less than
/// `min_share` of the last 10,000 records handed out.
///
/// ```
/// use kasio_core::{Priority, PriorityQueue};
/// let mut queue = PriorityQueue::new(0.1)?;
/// assert!(queue.pop().is_none());
/// assert_eq!(Priority::topics("jobs")[0], "jobs.p.critical");
/// # Ok::<(), kasio_core::ConfigError>(())
/// ```
#[derive(Debug)]
pub struct PriorityQueue {
    guard: Guard,
    /// Waiting batches per level, highest first.
    levels: [VecDeque<FetchedBatch>; 4],
    partitions: BTreeMap<(Arc<str>, i32), Partition>,
    handed_out: BTreeMap<(Arc<str>, Priority), u64>,
    /// The offset after the last record handed out, per partition: what to commit.
    next: BTreeMap<(Arc<str>, i32), i64>,
}

impl PriorityQueue {
    /// A queue whose starvation guard keeps `min_share` (0 to 0.3: `priority.min.share`)
    /// of the records handed out for each lower level that has records waiting.
    ///
    /// # Errors
    /// [`ConfigError::InvalidValue`] for a share outside 0-0.3.
    pub fn new(min_share: f64) -> Result<Self, ConfigError> {
        Ok(Self {
            guard: Guard::new(min_share)?,
            levels: Default::default(),
            partitions: BTreeMap::new(),
            handed_out: BTreeMap::new(),
            next: BTreeMap::new(),
        })
    }

    /// Takes a fetched batch of a level topic (a topic that is not one counts as
    /// `normal`).
    pub fn push(&mut self, batch: FetchedBatch) {
        let records = batch.len_hint() as u64;
        let remaining = (batch.high_watermark - batch.next_offset()).max(0);
        let p = self.partition(&batch.topic, batch.partition);
        p.queued += 1;
        p.queued_records += records;
        p.remaining = remaining;
        let rank = p.level.rank();
        self.levels[rank].push_back(batch);
    }

    /// Hands out the next batch: the highest level's, unless a lower level with a batch
    /// waiting got less than its share of the recent records.
    pub fn pop(&mut self) -> Option<FetchedBatch> {
        let rank = self
            .guard
            .pick(self.levels.each_ref().map(|q| !q.is_empty()))?;
        let batch = self.levels[rank].pop_front()?;
        let records = batch.len_hint() as u64;
        let key = (batch.topic.clone(), batch.partition);
        if let Some(p) = self.partitions.get_mut(&key) {
            p.queued -= 1;
            p.queued_records = p.queued_records.saturating_sub(records);
            *self
                .handed_out
                .entry((p.target.clone(), p.level))
                .or_insert(0) += records;
        }
        self.next.insert(key, batch.next_offset());
        self.guard.served(rank, records);
        Some(batch)
    }

    /// The partitions to pause (`true`) or resume (`false`) now: a partition is paused
    /// while two batches of it wait, or one does and a higher level has a backlog.
    pub fn pauses(&mut self) -> Vec<(TopicPartition, bool)> {
        let mut backlog = [0_i64; 4];
        for p in self.partitions.values() {
            backlog[p.level.rank()] += p.remaining + i64::try_from(p.queued_records).unwrap_or(0);
        }
        let mut changes = Vec::new();
        for ((topic, partition), p) in &mut self.partitions {
            let rank = p.level.rank();
            let higher = backlog[..rank].iter().any(|&b| b > 0);
            let pause = p.queued >= MAX_QUEUED || (p.queued >= 1 && higher);
            if pause != p.paused {
                p.paused = pause;
                changes.push((
                    TopicPartition {
                        topic: topic.clone(),
                        partition: *partition,
                    },
                    pause,
                ));
            }
        }
        changes
    }

    /// Follows the consumer's partitions: an end reached means no backlog, and a
    /// partition that goes drops what of it waits (its next owner fetches it again from
    /// the committed offset). Returns the offsets to commit for partitions being revoked
    /// (what was handed out of them), before the revocation completes.
    pub fn on_event(&mut self, event: &ConsumerEvent) -> Vec<TopicPartitionOffset> {
        match event {
            ConsumerEvent::EndOfPartition {
                topic, partition, ..
            } => {
                if let Some(p) = self.partitions.get_mut(&(topic.clone(), *partition)) {
                    p.remaining = 0;
                }
                Vec::new()
            }
            ConsumerEvent::Revoking { partitions } | ConsumerEvent::Revoked { partitions } => {
                let mut commit = Vec::new();
                for tp in partitions {
                    if let Some(offset) = self.drop_partition(tp) {
                        commit.push(TopicPartitionOffset {
                            topic: tp.topic.clone(),
                            partition: tp.partition,
                            offset,
                        });
                    }
                }
                commit
            }
            ConsumerEvent::Lost { partitions } => {
                for tp in partitions {
                    self.drop_partition(tp);
                }
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// What was handed out, per partition: the offsets to commit.
    #[must_use]
    pub fn handed_out(&self) -> Vec<TopicPartitionOffset> {
        self.next
            .iter()
            .map(|((topic, partition), &offset)| TopicPartitionOffset {
                topic: topic.clone(),
                partition: *partition,
                offset,
            })
            .collect()
    }

    /// Records waiting per topic and level, for the levels seen so far.
    #[must_use]
    pub fn stats(&self) -> Vec<LevelStats> {
        let mut out: Vec<LevelStats> = Vec::new();
        for p in self.partitions.values() {
            let i = match out
                .iter()
                .position(|s| s.topic == p.target && s.level == p.level)
            {
                Some(i) => i,
                None => {
                    out.push(LevelStats {
                        topic: p.target.clone(),
                        level: p.level,
                        queued: 0,
                        backlog: 0,
                        handed_out: self
                            .handed_out
                            .get(&(p.target.clone(), p.level))
                            .copied()
                            .unwrap_or(0),
                    });
                    out.len() - 1
                }
            };
            out[i].queued += p.queued_records;
            out[i].backlog += p.remaining + i64::try_from(p.queued_records).unwrap_or(0);
        }
        out.sort_by(|a, b| a.topic.cmp(&b.topic).then(b.level.cmp(&a.level)));
        out
    }

    fn partition(&mut self, topic: &Arc<str>, partition: i32) -> &mut Partition {
        self.partitions
            .entry((topic.clone(), partition))
            .or_insert_with(|| {
                let (target, level) =
                    Priority::of_topic(topic).unwrap_or((topic, Priority::Normal));
                Partition {
                    level,
                    target: target.into(),
                    queued: 0,
                    queued_records: 0,
                    remaining: 0,
                    paused: false,
                }
            })
    }

    /// Forgets a partition; returns the offset after what was handed out of it.
    fn drop_partition(&mut self, tp: &TopicPartition) -> Option<i64> {
        let key = (tp.topic.clone(), tp.partition);
        if let Some(p) = self.partitions.remove(&key) {
            self.levels[p.level.rank()]
                .retain(|b| !(b.topic == tp.topic && b.partition == tp.partition));
        }
        self.next.remove(&key)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use kasio_proto::records::{BatchBuilder, BatchOptions, RecordBatch};

    /// A fetched batch of `count` records at `base`, the partition's end at `end`.
    fn batch(topic: &str, partition: i32, base: i64, count: i64, end: i64) -> FetchedBatch {
        let mut b = BatchBuilder::new(BatchOptions::default());
        for i in 0..count {
            b.append::<(&str, &[u8])>(i, None, Some(b"v"), &[]).unwrap();
        }
        let mut parsed = RecordBatch::decode(&mut b.finish().unwrap()).unwrap();
        parsed.base_offset = base;
        FetchedBatch::new(topic.into(), partition, end, parsed, base)
    }

    fn levels(queue: &mut PriorityQueue, n: usize) -> Vec<&'static str> {
        (0..n)
            .filter_map(|_| queue.pop())
            .map(|b| Priority::of_topic(&b.topic).unwrap().1.name())
            .collect()
    }

    #[test]
    fn higher_levels_go_first_and_each_level_in_order() {
        let mut q = PriorityQueue::new(0.0).unwrap();
        q.push(batch("jobs.p.low", 0, 0, 10, 10));
        q.push(batch("jobs.p.normal", 0, 0, 10, 20));
        q.push(batch("jobs.p.normal", 0, 10, 10, 20));
        q.push(batch("jobs.p.critical", 1, 0, 10, 10));
        assert_eq!(
            levels(&mut q, 5),
            ["critical", "normal", "normal", "low"],
            "everything handed out once, highest first"
        );
        let next: Vec<i64> = q.handed_out().iter().map(|o| o.offset).collect();
        assert_eq!(next, [10, 10, 20], "critical 1, low 0, normal 0 by topic");
    }

    #[test]
    fn lower_levels_pause_while_higher_ones_have_a_backlog() {
        let mut q = PriorityQueue::new(0.1).unwrap();
        q.push(batch("jobs.p.normal", 0, 0, 10, 1_000));
        q.push(batch("jobs.p.critical", 0, 0, 10, 500));
        let changes = q.pauses();
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(&*changes[0].0.topic, "jobs.p.normal");
        assert!(changes[0].1);
        // Critical's backlog drains: normal fetches again once its batch is out.
        q.pop();
        q.on_event(&ConsumerEvent::EndOfPartition {
            topic: "jobs.p.critical".into(),
            partition: 0,
            offset: 500,
        });
        let changes = q.pauses();
        assert_eq!(changes.len(), 1);
        assert!(!changes[0].1, "resumed with its batch waiting: {changes:?}");
        assert_eq!(levels(&mut q, 2), ["normal"]);
    }

    #[test]
    fn a_partition_that_is_not_taken_from_stops_at_two_batches() {
        let mut q = PriorityQueue::new(0.1).unwrap();
        q.push(batch("jobs.p.critical", 0, 0, 10, 1_000));
        assert!(q.pauses().is_empty());
        q.push(batch("jobs.p.critical", 0, 10, 10, 1_000));
        assert_eq!(q.pauses().len(), 1);
    }

    #[test]
    fn the_guard_keeps_a_lower_levels_share() {
        let mut q = PriorityQueue::new(0.1).unwrap();
        let (mut high, mut low) = (0_i64, 0_i64);
        let mut served = [0_u64; 4];
        for _ in 0..2_000 {
            // Both levels always have a batch waiting: high's backlog is endless.
            if q.levels[1].is_empty() {
                q.push(batch("jobs.p.high", 0, high, 50, i64::MAX));
                high += 50;
            }
            if q.levels[3].is_empty() {
                q.push(batch("jobs.p.low", 0, low, 50, i64::MAX));
                low += 50;
            }
            let b = q.pop().unwrap();
            served[Priority::of_topic(&b.topic).unwrap().1.rank()] += 50;
        }
        let share = served[3] as f64 / (served[1] + served[3]) as f64;
        assert!((0.1..0.12).contains(&share), "low got {share}");
        let stats = q.stats();
        assert_eq!(stats.len(), 2);
        assert_eq!(stats[0].level, Priority::High);
        assert_eq!(stats[1].handed_out, served[3]);
    }

    #[test]
    fn a_revoked_partition_commits_what_went_out_and_drops_what_waits() {
        let mut q = PriorityQueue::new(0.1).unwrap();
        q.push(batch("jobs.p.normal", 0, 0, 10, 30));
        q.push(batch("jobs.p.normal", 0, 10, 10, 30));
        q.pop();
        let tp = TopicPartition {
            topic: "jobs.p.normal".into(),
            partition: 0,
        };
        let commit = q.on_event(&ConsumerEvent::Revoking {
            partitions: vec![tp],
        });
        assert_eq!(commit.len(), 1);
        assert_eq!(commit[0].offset, 10);
        assert!(
            q.pop().is_none(),
            "the waiting batch went with the partition"
        );
        assert!(PriorityQueue::new(0.5).is_err());
    }
}
