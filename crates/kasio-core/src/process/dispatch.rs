//! The processing runner's bookkeeping, sans-IO: which fetched record may start now under
//! the ordering asked for, which partitions to pause while too much waits, and the offset
//! each partition may commit (never past a record that has not finished).

use crate::{ConsumerRecord, TopicPartition, TopicPartitionOffset};
use bytes::Bytes;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

/// Which records of one partition may be processed at the same time.
///
/// ```
/// use kasio_core::ProcessingOrder;
/// assert_eq!("key".parse::<ProcessingOrder>(), Ok(ProcessingOrder::Key));
/// assert_eq!(ProcessingOrder::default(), ProcessingOrder::Partition);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProcessingOrder {
    /// One record of a partition at a time, in offset order (the plain consumer's order).
    #[default]
    Partition,
    /// Records of different keys of one partition in parallel; one key's records one at a
    /// time, in offset order (records without a key count as one key).
    Key,
    /// Any record as soon as a worker is free: no order at all.
    Unordered,
}

impl std::str::FromStr for ProcessingOrder {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "partition" => Ok(Self::Partition),
            "key" => Ok(Self::Key),
            "unordered" => Ok(Self::Unordered),
            other => Err(format!(
                "unknown ordering {other:?}: partition, key or unordered"
            )),
        }
    }
}

/// A record handed out by [`Dispatcher::next_job`], to give back to
/// [`Dispatcher::finish`] once processed: it names the partition's ownership it came from,
/// so a record finishing after its partition was lost and assigned again changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ticket {
    part: usize,
    epoch: u64,
    offset: i64,
}

impl Ticket {
    /// The record's offset.
    #[must_use]
    pub fn offset(&self) -> i64 {
        self.offset
    }
}

/// What may not run beside another record of its partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Slot {
    All,
    Key(Option<Bytes>),
    Offset(i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owned {
    Yes,
    /// Being revoked: nothing new starts; what runs finishes before the release.
    Revoking,
    /// Lost or released: its slot waits for the partition to come back.
    No,
}

#[derive(Debug)]
struct Part {
    tp: TopicPartition,
    epoch: u64,
    owned: Owned,
    paused: bool,
    /// Offsets pushed and not finished (waiting or running): the commit point is the
    /// lowest.
    unfinished: BTreeSet<i64>,
    /// The offset after the highest record pushed.
    next: Option<i64>,
    /// The highest offset handed out as a job.
    started: Option<i64>,
    /// The offset last confirmed committed.
    confirmed: Option<i64>,
    waiting: HashMap<Slot, VecDeque<ConsumerRecord>>,
    waiting_count: usize,
    /// Slots with waiting records and none running.
    ready: VecDeque<Slot>,
    running: HashMap<i64, Slot>,
    busy: HashSet<Slot>,
}

impl Part {
    fn new(tp: TopicPartition, epoch: u64) -> Self {
        Self {
            tp,
            epoch,
            owned: Owned::Yes,
            paused: false,
            unfinished: BTreeSet::new(),
            next: None,
            started: None,
            confirmed: None,
            waiting: HashMap::new(),
            waiting_count: 0,
            ready: VecDeque::new(),
            running: HashMap::new(),
            busy: HashSet::new(),
        }
    }

    fn clear(&mut self) {
        self.unfinished.clear();
        self.next = None;
        self.started = None;
        self.confirmed = None;
        self.waiting.clear();
        self.waiting_count = 0;
        self.ready.clear();
        self.running.clear();
        self.busy.clear();
        self.paused = false;
    }

    /// Drops what waits from `from` on; what runs stays unfinished. The commit point
    /// stays at the lowest record dropped, so whoever reads the partition next reads
    /// it. Returns how many were dropped.
    fn drop_waiting(&mut self, from: i64) -> usize {
        let mut dropped = 0;
        for records in self.waiting.values_mut() {
            // A slot's records are in offset order: the dropped ones are a tail.
            let keep = records.partition_point(|r| r.offset < from);
            for r in records.drain(keep..) {
                self.unfinished.remove(&r.offset);
                self.next = self.next.map(|n| n.min(r.offset));
                dropped += 1;
            }
        }
        self.waiting.retain(|_, q| !q.is_empty());
        self.waiting_count -= dropped;
        let (waiting, busy) = (&self.waiting, &self.busy);
        self.ready.retain(|s| waiting.contains_key(s));
        for slot in waiting.keys() {
            if !busy.contains(slot) && !self.ready.contains(slot) {
                self.ready.push_back(slot.clone());
            }
        }
        dropped
    }

    /// The offset to commit: the lowest unfinished record, else after the last pushed
    /// (or the lowest dropped, which is lower).
    fn point(&self) -> Option<i64> {
        match (self.unfinished.first().copied(), self.next) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// The runner's record bookkeeping for one group member, sans-IO: fetched records go in
/// ([`push`](Self::push)), jobs come out ([`next_job`](Self::next_job)) as the
/// [`ProcessingOrder`] and the limit on running jobs allow, finished jobs come back
/// ([`finish`](Self::finish)), and [`commit_points`](Self::commit_points) gives per
/// partition the lowest offset not yet finished: committing it never skips a record
/// (at-least-once), however out of order jobs finish.
///
/// Rebalances: [`revoke`](Self::revoke) drops what waits and lets what runs finish
/// ([`is_idle`](Self::is_idle)), then [`release`](Self::release) gives the final offsets;
/// [`lose`](Self::lose) forgets a partition at once (its running jobs' tickets go stale).
///
/// ```
/// use kasio_core::{Dispatcher, ProcessingOrder, TopicPartition};
/// # fn records() -> Vec<kasio_core::ConsumerRecord> { vec![] }
/// let mut d = Dispatcher::new(ProcessingOrder::Key, 16, 1000);
/// d.assigned(&[TopicPartition::new("orders", 0)]);
/// for record in records() {
///     d.push(record);
/// }
/// while let Some((ticket, record)) = d.next_job() {
///     // ... process record ...
///     d.finish(ticket);
/// }
/// for offset in d.commit_points() {
///     // commit offset, then:
///     d.confirm(&offset);
/// }
/// ```
#[derive(Debug)]
pub struct Dispatcher {
    ordering: ProcessingOrder,
    max_running: usize,
    max_waiting: usize,
    parts: Vec<Part>,
    index: HashMap<TopicPartition, usize>,
    running: usize,
    waiting: usize,
    epochs: u64,
    cursor: usize,
}

impl Dispatcher {
    /// A dispatcher running at most `max_running` jobs at once and asking to pause a
    /// partition with more than `max_waiting` records waiting (both at least 1).
    #[must_use]
    pub fn new(ordering: ProcessingOrder, max_running: usize, max_waiting: usize) -> Self {
        Self {
            ordering,
            max_running: max_running.max(1),
            max_waiting: max_waiting.max(1),
            parts: Vec::new(),
            index: HashMap::new(),
            running: 0,
            waiting: 0,
            epochs: 0,
            cursor: 0,
        }
    }

    /// The ordering kept.
    #[must_use]
    pub fn ordering(&self) -> ProcessingOrder {
        self.ordering
    }

    fn part(&self, tp: &TopicPartition) -> Option<usize> {
        self.index.get(tp).copied()
    }

    /// The member now owns these partitions (again): their records are taken from here on.
    pub fn assigned(&mut self, partitions: &[TopicPartition]) {
        for tp in partitions {
            self.epochs += 1;
            match self.part(tp) {
                Some(i) if self.parts[i].owned == Owned::Yes => {}
                Some(i) => {
                    let p = &mut self.parts[i];
                    self.waiting -= p.waiting_count;
                    self.running -= p.running.len();
                    p.clear();
                    p.owned = Owned::Yes;
                    p.epoch = self.epochs;
                }
                None => {
                    self.index.insert(tp.clone(), self.parts.len());
                    self.parts.push(Part::new(tp.clone(), self.epochs));
                }
            }
        }
    }

    /// Takes a fetched record; `false` (and the record is dropped) when its partition is
    /// not owned, or it is already waiting or running.
    pub fn push(&mut self, record: ConsumerRecord) -> bool {
        let tp = TopicPartition::new(record.topic.clone(), record.partition);
        let Some(i) = self.part(&tp) else {
            return false;
        };
        let ordering = self.ordering;
        let p = &mut self.parts[i];
        if p.owned != Owned::Yes || !p.unfinished.insert(record.offset) {
            return false;
        }
        p.next = Some(
            p.next
                .map_or(record.offset + 1, |n| n.max(record.offset + 1)),
        );
        let slot = match ordering {
            ProcessingOrder::Partition => Slot::All,
            ProcessingOrder::Key => Slot::Key(record.key.clone()),
            ProcessingOrder::Unordered => Slot::Offset(record.offset),
        };
        let queue = p.waiting.entry(slot.clone()).or_default();
        if queue.is_empty() && !p.busy.contains(&slot) {
            p.ready.push_back(slot);
        }
        queue.push_back(record);
        p.waiting_count += 1;
        self.waiting += 1;
        true
    }

    /// The partition's log was cut back to `to` (an unclean leader election): records
    /// from `to` on that wait are dropped, and nothing from `to` on counts as read.
    pub fn truncated(&mut self, tp: &TopicPartition, to: i64) {
        let Some(i) = self.part(tp) else { return };
        let p = &mut self.parts[i];
        self.waiting -= p.drop_waiting(to);
        p.next = p.next.map(|n| n.min(to));
    }

    /// The next record to process, if the limit on running jobs and the ordering let one
    /// start; partitions take turns.
    pub fn next_job(&mut self) -> Option<(Ticket, ConsumerRecord)> {
        if self.running >= self.max_running || self.waiting == 0 {
            return None;
        }
        let n = self.parts.len();
        for k in 0..n {
            let i = (self.cursor + k) % n;
            let p = &mut self.parts[i];
            if p.owned == Owned::No {
                continue;
            }
            let Some(slot) = p.ready.pop_front() else {
                continue;
            };
            let queue = p
                .waiting
                .get_mut(&slot)
                .expect("a ready slot has waiting records");
            let record = queue.pop_front().expect("a ready slot has waiting records");
            if queue.is_empty() {
                p.waiting.remove(&slot);
            }
            p.busy.insert(slot.clone());
            p.running.insert(record.offset, slot);
            p.started = Some(p.started.map_or(record.offset, |s| s.max(record.offset)));
            p.waiting_count -= 1;
            self.waiting -= 1;
            self.running += 1;
            self.cursor = i + 1;
            let ticket = Ticket {
                part: i,
                epoch: p.epoch,
                offset: record.offset,
            };
            return Some((ticket, record));
        }
        None
    }

    /// The job is done (processed, or handed on to a retry or dead-letter topic): its
    /// offset no longer holds the commit point back. `false` for a stale ticket (its
    /// partition was lost or released meanwhile).
    pub fn finish(&mut self, ticket: Ticket) -> bool {
        let Some(p) = self.parts.get_mut(ticket.part) else {
            return false;
        };
        if p.epoch != ticket.epoch || p.owned == Owned::No {
            return false;
        }
        let Some(slot) = p.running.remove(&ticket.offset) else {
            return false;
        };
        self.running -= 1;
        p.unfinished.remove(&ticket.offset);
        p.busy.remove(&slot);
        if p.waiting.contains_key(&slot) {
            p.ready.push_back(slot);
        }
        true
    }

    /// Whether the job's partition is still owned as when it was handed out (a job of a
    /// partition being revoked is still current: it should finish).
    #[must_use]
    pub fn is_current(&self, ticket: Ticket) -> bool {
        self.parts
            .get(ticket.part)
            .is_some_and(|p| p.epoch == ticket.epoch && p.owned != Owned::No)
    }

    /// The group is taking these partitions (or the member stops): what waits past
    /// every record started is dropped (the next owner reads it); what waits below one
    /// still runs, so that the commit made at the release covers every record processed
    /// (with a [`ProcessingOrder`] other than `partition`, records after an unfinished
    /// one may have finished: dropping the unfinished one would have the next owner
    /// process them again). Once [`is_idle`](Self::is_idle), [`release`](Self::release).
    pub fn revoke(&mut self, partitions: &[TopicPartition]) {
        for tp in partitions {
            if let Some(i) = self.part(tp) {
                let p = &mut self.parts[i];
                if p.owned == Owned::Yes {
                    let from = p.started.map_or(i64::MIN, |s| s + 1);
                    self.waiting -= p.drop_waiting(from);
                    p.owned = Owned::Revoking;
                }
            }
        }
    }

    /// Whether nothing of these partitions runs or waits.
    #[must_use]
    pub fn is_idle(&self, partitions: &[TopicPartition]) -> bool {
        partitions.iter().all(|tp| {
            self.part(tp).is_none_or(|i| {
                let p = &self.parts[i];
                p.owned == Owned::No || (p.running.is_empty() && p.waiting_count == 0)
            })
        })
    }

    /// Lets revoked partitions go: the offsets to commit for them before the release
    /// (where processing moved past the last confirmed commit). Jobs still running go
    /// stale.
    pub fn release(&mut self, partitions: &[TopicPartition]) -> Vec<TopicPartitionOffset> {
        let mut commits = Vec::new();
        for tp in partitions {
            let Some(i) = self.part(tp) else { continue };
            let p = &mut self.parts[i];
            if p.owned == Owned::No {
                continue;
            }
            if let Some(at) = p.point().filter(|&at| Some(at) != p.confirmed) {
                commits.push(TopicPartitionOffset::new(
                    p.tp.topic.clone(),
                    p.tp.partition,
                    at,
                ));
            }
            self.forget(i);
        }
        commits
    }

    /// These partitions were lost (fenced): forgotten at once, nothing of them commits.
    pub fn lose(&mut self, partitions: &[TopicPartition]) {
        for tp in partitions {
            if let Some(i) = self.part(tp) {
                self.forget(i);
            }
        }
    }

    fn forget(&mut self, i: usize) {
        let p = &mut self.parts[i];
        if p.owned == Owned::No {
            return;
        }
        self.waiting -= p.waiting_count;
        self.running -= p.running.len();
        p.clear();
        p.owned = Owned::No;
    }

    /// Per owned partition whose processing moved past its last confirmed commit, the
    /// offset to commit: its lowest unfinished record, or after the last record taken.
    #[must_use]
    pub fn commit_points(&self) -> Vec<TopicPartitionOffset> {
        self.parts
            .iter()
            .filter(|p| p.owned != Owned::No)
            .filter_map(|p| {
                let at = p.point()?;
                (Some(at) != p.confirmed)
                    .then(|| TopicPartitionOffset::new(p.tp.topic.clone(), p.tp.partition, at))
            })
            .collect()
    }

    /// The group holds this offset now (a commit of it succeeded).
    pub fn confirm(&mut self, offset: &TopicPartitionOffset) {
        let tp = TopicPartition::new(offset.topic.clone(), offset.partition);
        if let Some(i) = self.part(&tp) {
            let p = &mut self.parts[i];
            if p.owned != Owned::No {
                p.confirmed = Some(offset.offset);
            }
        }
    }

    /// Partitions to pause (more than `max_waiting` records wait) and to resume (half of
    /// that or fewer), changed since the last call.
    pub fn flow(&mut self) -> (Vec<TopicPartition>, Vec<TopicPartition>) {
        let (mut pause, mut resume) = (Vec::new(), Vec::new());
        for p in &mut self.parts {
            if p.owned != Owned::Yes {
                continue;
            }
            if !p.paused && p.waiting_count > self.max_waiting {
                p.paused = true;
                pause.push(p.tp.clone());
            } else if p.paused && p.waiting_count <= self.max_waiting / 2 {
                p.paused = false;
                resume.push(p.tp.clone());
            }
        }
        (pause, resume)
    }

    /// Jobs running.
    #[must_use]
    pub fn running(&self) -> usize {
        self.running
    }

    /// Records waiting to start.
    #[must_use]
    pub fn waiting(&self) -> usize {
        self.waiting
    }

    /// Partitions owned (including those being revoked).
    #[must_use]
    pub fn owned(&self) -> Vec<TopicPartition> {
        self.parts
            .iter()
            .filter(|p| p.owned != Owned::No)
            .map(|p| p.tp.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use kasio_proto::records::Record;

    fn record(partition: i32, offset: i64, key: u8) -> ConsumerRecord {
        let rec = Record::new(offset, 0, Some(Bytes::from(vec![key])), None);
        ConsumerRecord::new("t".into(), partition, rec)
    }

    fn tp(partition: i32) -> TopicPartition {
        TopicPartition::new("t", partition)
    }

    #[test]
    fn partition_order_runs_one_at_a_time_and_commits_what_finished() {
        let mut d = Dispatcher::new(ProcessingOrder::Partition, 8, 100);
        d.assigned(&[tp(0), tp(1)]);
        for o in 0..3 {
            d.push(record(0, o, 1));
            d.push(record(1, o, 1));
        }
        let (a, _) = d.next_job().expect("partition 0");
        let (b, _) = d.next_job().expect("partition 1");
        assert!(d.next_job().is_none(), "one job per partition at a time");
        assert!(d.commit_points().iter().all(|c| c.offset == 0));
        d.finish(a);
        let points = d.commit_points();
        assert!(points.contains(&TopicPartitionOffset::new("t", 0, 1)));
        assert!(points.contains(&TopicPartitionOffset::new("t", 1, 0)));
        for p in &points {
            d.confirm(p);
        }
        assert!(d.commit_points().is_empty());
        assert!(d.finish(b));
        assert!(!d.finish(b), "a ticket finishes once");
    }

    #[test]
    fn keys_run_in_parallel_and_commits_wait_for_the_lowest() {
        let mut d = Dispatcher::new(ProcessingOrder::Key, 8, 100);
        d.assigned(&[tp(0)]);
        for (o, k) in [(0, 1), (1, 2), (2, 1), (3, 3)] {
            d.push(record(0, o, k));
        }
        let jobs: Vec<_> = std::iter::from_fn(|| d.next_job()).collect();
        let offsets: Vec<i64> = jobs.iter().map(|(t, _)| t.offset()).collect();
        assert_eq!(
            offsets,
            [0, 1, 3],
            "key 1's second record waits for its first"
        );
        d.finish(jobs[2].0);
        d.finish(jobs[1].0);
        assert_eq!(d.commit_points()[0].offset, 0, "offset 0 has not finished");
        d.finish(jobs[0].0);
        assert_eq!(d.commit_points()[0].offset, 2);
        let (t, r) = d.next_job().expect("key 1's second record");
        assert_eq!(r.offset, 2);
        d.finish(t);
        assert_eq!(d.commit_points()[0].offset, 4);
    }

    #[test]
    fn revocation_drops_what_waits_and_releases_after_what_runs() {
        let mut d = Dispatcher::new(ProcessingOrder::Unordered, 2, 100);
        d.assigned(&[tp(0)]);
        for o in 10..20 {
            d.push(record(0, o, 0));
        }
        let (a, _) = d.next_job().expect("job");
        let (b, _) = d.next_job().expect("job");
        assert!(d.next_job().is_none(), "two at a time");
        d.finish(b);
        d.revoke(&[tp(0)]);
        assert_eq!(d.waiting(), 0);
        assert!(d.next_job().is_none());
        assert!(
            !d.push(record(0, 20, 0)),
            "no records of a revoked partition"
        );
        assert!(!d.is_idle(&[tp(0)]));
        d.finish(a);
        assert!(d.is_idle(&[tp(0)]));
        // 10 and 11 finished; 12.. were dropped and the next owner reads them.
        assert_eq!(d.release(&[tp(0)]), [TopicPartitionOffset::new("t", 0, 12)]);
        assert!(d.owned().is_empty());
    }

    #[test]
    fn lost_partitions_make_their_tickets_stale() {
        let mut d = Dispatcher::new(ProcessingOrder::Partition, 4, 100);
        d.assigned(&[tp(0)]);
        d.push(record(0, 5, 0));
        let (t, _) = d.next_job().expect("job");
        d.lose(&[tp(0)]);
        assert!(!d.is_current(t));
        d.assigned(&[tp(0)]);
        d.push(record(0, 5, 0));
        assert!(!d.finish(t), "the old ticket changes nothing");
        assert_eq!(d.commit_points()[0].offset, 5);
        assert_eq!(d.running(), 0);
    }

    #[test]
    fn pauses_above_the_limit_and_resumes_at_half() {
        let mut d = Dispatcher::new(ProcessingOrder::Partition, 1, 4);
        d.assigned(&[tp(0)]);
        for o in 0..5 {
            d.push(record(0, o, 0));
        }
        assert_eq!(d.flow(), (vec![tp(0)], vec![]));
        assert_eq!(d.flow(), (vec![], vec![]));
        for _ in 0..3 {
            let (t, _) = d.next_job().expect("job");
            d.finish(t);
        }
        assert_eq!(d.flow(), (vec![], vec![tp(0)]));
    }

    /// Random pushes, finishes in random order, revocations, losses and truncations: the
    /// commit point never passes an unfinished record, one key never runs twice at once,
    /// and a key's records start in offset order.
    #[test]
    fn random_runs_keep_the_commit_rule_and_key_order() {
        for seed in 0..300 {
            let mut rng = Rng::new(seed);
            let mut d = Dispatcher::new(ProcessingOrder::Key, 1 + rng.below(6) as usize, 20);
            let mut next = [0i64; 3];
            let mut running: Vec<(Ticket, ConsumerRecord)> = Vec::new();
            let mut started: HashMap<(i32, u8), i64> = HashMap::new();
            d.assigned(&[tp(0), tp(1), tp(2)]);
            for _ in 0..400 {
                match rng.below(10) {
                    0..=3 => {
                        let p = rng.below(3) as i32;
                        let k = rng.below(4) as u8;
                        d.push(record(p, next[p as usize], k));
                        next[p as usize] += 1;
                    }
                    4..=5 => {
                        if let Some((t, r)) = d.next_job() {
                            let key = (r.partition, r.key.as_ref().expect("key")[0]);
                            assert!(
                                running.iter().all(|(_, o)| (
                                    o.partition,
                                    o.key.as_ref().expect("key")[0]
                                ) != key
                                    || !d.is_current(
                                        running
                                            .iter()
                                            .find(|(_, x)| x.offset == o.offset
                                                && x.partition == o.partition)
                                            .expect("job")
                                            .0
                                    )),
                                "seed {seed}: key {key:?} runs twice"
                            );
                            if let Some(&last) = started.get(&key) {
                                assert!(r.offset > last, "seed {seed}: key order");
                            }
                            started.insert(key, r.offset);
                            running.push((t, r));
                        }
                    }
                    6..=7 if !running.is_empty() => {
                        let i = rng.below(running.len() as u64) as usize;
                        let (t, _) = running.swap_remove(i);
                        d.finish(t);
                    }
                    8 => {
                        let p = rng.below(3) as i32;
                        if rng.below(2) == 0 {
                            d.revoke(&[tp(p)]);
                            running.retain(|(t, r)| {
                                if r.partition == p {
                                    d.finish(*t);
                                    false
                                } else {
                                    true
                                }
                            });
                            d.release(&[tp(p)]);
                        } else {
                            d.lose(&[tp(p)]);
                        }
                        started.retain(|(q, _), _| *q != p);
                        d.assigned(&[tp(p)]);
                    }
                    _ => {}
                }
                for point in d.commit_points() {
                    for (t, r) in &running {
                        if r.partition == point.partition && d.is_current(*t) {
                            assert!(
                                point.offset <= r.offset,
                                "seed {seed}: commit {} past running {}",
                                point.offset,
                                r.offset
                            );
                        }
                    }
                    d.confirm(&point);
                }
            }
        }
    }
}
