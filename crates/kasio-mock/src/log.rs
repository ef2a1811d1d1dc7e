//! One partition's log: record batches in offset order, held in memory.

use bytes::{Bytes, BytesMut};
use kasio_proto::{
    DecodeError,
    records::{Batch, Batches, ControlRecord, ControlRecordType, RecordBatch},
};
use std::collections::{HashMap, VecDeque};

/// How many recent batches per producer are remembered to recognise retried duplicates, as
/// Kafka remembers them (the most a producer has in flight).
const RECENT_BATCHES: usize = 5;

/// An idempotent producer's state on one partition.
#[derive(Debug, Clone, Default)]
struct ProducerEntry {
    epoch: i16,
    last_sequence: i32,
    /// (first sequence, last sequence, base offset) of the latest batches.
    recent: VecDeque<(i32, i32, i64)>,
}

/// A batch as stored: its offsets and the bytes to serve.
#[derive(Debug, Clone)]
struct Stored {
    base_offset: i64,
    last_offset: i64,
    max_timestamp: i64,
    bytes: Bytes,
}

/// A partition's log.
#[derive(Debug, Clone, Default)]
pub(crate) struct PartitionLog {
    batches: Vec<Stored>,
    log_start: i64,
    next_offset: i64,
    size: usize,
    producers: HashMap<i64, ProducerEntry>,
    /// Transactions with records here and no marker yet: producer id → first offset.
    open_txns: HashMap<i64, i64>,
    /// Aborted transactions: (producer id, first offset, marker offset).
    aborted: Vec<(i64, i64, i64)>,
    /// The leader epoch appends are stamped with.
    leader_epoch: i32,
    /// Each leader epoch after the first and the offset it began at (the leader epoch
    /// cache; epoch 0 begins at 0).
    epochs: Vec<(i32, i64)>,
}

/// Why records could not be appended.
#[derive(Debug)]
pub(crate) enum AppendError {
    /// The records were not valid v2 batches.
    Corrupt(DecodeError),
    /// Legacy (v0/v1) message sets are refused, as Kafka 4 refuses them.
    UnsupportedFormat,
    /// An idempotent batch skipped or repeated sequence numbers.
    OutOfOrderSequence,
    /// An idempotent batch came from an older producer epoch.
    InvalidProducerEpoch,
}

/// What an idempotent batch is, given the producer's state.
enum Sequencing {
    /// Not idempotent, or the next in sequence.
    Append,
    /// A retry of a batch already appended at this base offset.
    Duplicate(i64),
}

impl PartitionLog {
    /// The first offset still held.
    pub(crate) fn log_start(&self) -> i64 {
        self.log_start
    }

    /// The offset the next record gets (the high watermark: every append is committed).
    pub(crate) fn end(&self) -> i64 {
        self.next_offset
    }

    /// The current leader epoch.
    pub(crate) fn leader_epoch(&self) -> i32 {
        self.leader_epoch
    }

    /// A new leader: appends from here on carry the next epoch.
    pub(crate) fn new_epoch(&mut self) {
        self.leader_epoch += 1;
        self.epochs.push((self.leader_epoch, self.next_offset));
    }

    /// The largest epoch up to `epoch` and the offset where it ended (the next epoch's
    /// start, or the log end for the current one), as OffsetsForLeaderEpoch answers;
    /// `None` when the log knows no such epoch.
    pub(crate) fn end_of_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        let all: Vec<(i32, i64)> = std::iter::once((0, 0))
            .chain(self.epochs.iter().copied())
            .collect();
        let i = all.iter().rposition(|&(e, _)| e <= epoch)?;
        let end = all.get(i + 1).map_or(self.next_offset, |n| n.1);
        Some((all[i].0, end))
    }

    /// An unclean leader election: the batches from `offset` on are lost (whole batches:
    /// the one holding `offset` goes too), and a new leader epoch begins at the new end.
    pub(crate) fn truncate(&mut self, offset: i64) {
        let keep = self.batches.partition_point(|b| b.last_offset < offset);
        for b in self.batches.drain(keep..) {
            self.size -= b.bytes.len();
        }
        self.next_offset = self
            .batches
            .last()
            .map_or(self.log_start, |b| b.last_offset + 1);
        let end = self.next_offset;
        self.epochs.retain(|&(_, start)| start < end);
        self.producers.clear();
        self.new_epoch();
    }

    /// Appends every batch in `records`, assigning offsets. Returns the base offset.
    pub(crate) fn append(&mut self, records: &Bytes) -> Result<i64, AppendError> {
        let mut parsed = Vec::new();
        for batch in Batches::new(records.clone()) {
            match batch.map_err(AppendError::Corrupt)? {
                Batch::V2(b) => parsed.push(b),
                _ => return Err(AppendError::UnsupportedFormat),
            }
        }
        // A retried idempotent batch is answered with its first offset, not appended again.
        let mut duplicate = None;
        for b in &parsed {
            if let Sequencing::Duplicate(base) = self.check_sequence(b)? {
                duplicate.get_or_insert(base);
            }
        }
        if let Some(base) = duplicate {
            return Ok(base);
        }
        let base = self.next_offset;
        let mut rest = records.clone();
        for b in parsed {
            let len = 61 + b.records_data.len();
            let mut bytes = BytesMut::from(&rest.split_to(len)[..]);
            // The base offset and leader epoch sit outside the CRC, so the broker rewrites
            // them.
            bytes[0..8].copy_from_slice(&self.next_offset.to_be_bytes());
            bytes[12..16].copy_from_slice(&self.leader_epoch.to_be_bytes());
            let last = self.next_offset + i64::from(b.last_offset_delta);
            self.size += bytes.len();
            self.record_sequence(&b, self.next_offset);
            if b.attributes.is_transactional() && !b.attributes.is_control() {
                self.open_txns
                    .entry(b.producer_id)
                    .or_insert(self.next_offset);
            }
            self.batches.push(Stored {
                base_offset: self.next_offset,
                last_offset: last,
                max_timestamp: b.max_timestamp,
                bytes: bytes.freeze(),
            });
            self.next_offset = last + 1;
        }
        Ok(base)
    }

    fn check_sequence(&self, b: &RecordBatch) -> Result<Sequencing, AppendError> {
        if b.producer_id < 0 {
            return Ok(Sequencing::Append);
        }
        let last_seq = b.base_sequence.wrapping_add(b.last_offset_delta);
        // Like Kafka, a producer with no state here may start at any sequence (its state
        // may have expired, or an earlier batch may still be on its way).
        let Some(p) = self.producers.get(&b.producer_id) else {
            return Ok(Sequencing::Append);
        };
        if b.producer_epoch < p.epoch {
            return Err(AppendError::InvalidProducerEpoch);
        }
        if b.producer_epoch > p.epoch {
            // A new epoch starts its sequences again at 0.
            return if b.base_sequence == 0 {
                Ok(Sequencing::Append)
            } else {
                Err(AppendError::OutOfOrderSequence)
            };
        }
        if let Some((_, _, base)) = p
            .recent
            .iter()
            .find(|(first, last, _)| *first == b.base_sequence && *last == last_seq)
        {
            return Ok(Sequencing::Duplicate(*base));
        }
        if b.base_sequence == p.last_sequence.wrapping_add(1)
            || (p.last_sequence == i32::MAX && b.base_sequence == 0)
        {
            Ok(Sequencing::Append)
        } else {
            Err(AppendError::OutOfOrderSequence)
        }
    }

    fn record_sequence(&mut self, b: &RecordBatch, base_offset: i64) {
        if b.producer_id < 0 {
            return;
        }
        let p = self.producers.entry(b.producer_id).or_default();
        if b.producer_epoch != p.epoch {
            *p = ProducerEntry {
                epoch: b.producer_epoch,
                ..Default::default()
            };
        }
        p.last_sequence = b.base_sequence.wrapping_add(b.last_offset_delta);
        p.recent
            .push_back((b.base_sequence, p.last_sequence, base_offset));
        if p.recent.len() > RECENT_BATCHES {
            p.recent.pop_front();
        }
    }

    /// Whole batches from the one holding `offset`, at least one, then up to `max_bytes`.
    pub(crate) fn read(&self, offset: i64, max_bytes: usize) -> Bytes {
        self.read_until(offset, max_bytes, i64::MAX)
    }

    /// As [`read`](Self::read), only batches that start below `upper` (the last stable
    /// offset, for read_committed).
    pub(crate) fn read_until(&self, offset: i64, max_bytes: usize, upper: i64) -> Bytes {
        let start = self.batches.partition_point(|b| b.last_offset < offset);
        let mut out = BytesMut::new();
        for b in &self.batches[start..] {
            if b.base_offset >= upper || (!out.is_empty() && out.len() + b.bytes.len() > max_bytes)
            {
                break;
            }
            out.extend_from_slice(&b.bytes);
        }
        out.freeze()
    }

    /// The first offset whose batch has a timestamp at or after `timestamp`, and that
    /// timestamp; `None` if every record is older.
    pub(crate) fn offset_for_timestamp(&self, timestamp: i64) -> Option<(i64, i64)> {
        self.batches
            .iter()
            .find(|b| b.max_timestamp >= timestamp)
            .map(|b| (b.base_offset, b.max_timestamp))
    }

    /// The offset and timestamp of the record with the largest timestamp.
    pub(crate) fn max_timestamp(&self) -> Option<(i64, i64)> {
        self.batches
            .iter()
            .max_by_key(|b| b.max_timestamp)
            .map(|b| (b.last_offset, b.max_timestamp))
    }

    /// Moves the log start to `offset` (DeleteRecords), dropping the batches wholly
    /// before it.
    pub(crate) fn delete_before(&mut self, offset: i64) {
        while self.batches.first().is_some_and(|b| b.last_offset < offset) {
            let b = self.batches.remove(0);
            self.size -= b.bytes.len();
        }
        self.log_start = self.log_start.max(offset);
    }

    /// The last stable offset: below the first record of any open transaction.
    pub(crate) fn last_stable(&self) -> i64 {
        self.open_txns
            .values()
            .min()
            .copied()
            .unwrap_or(self.next_offset)
    }

    /// Aborted transactions with records at or after `from`: (producer id, first offset).
    pub(crate) fn aborted_since(&self, from: i64) -> Vec<(i64, i64)> {
        self.aborted
            .iter()
            .filter(|(_, _, marker)| *marker >= from)
            .map(|&(pid, first, _)| (pid, first))
            .collect()
    }

    /// Ends a producer's transaction here with a commit or abort marker. Whether the
    /// producer had records here.
    pub(crate) fn end_transaction(
        &mut self,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        timestamp: i64,
    ) -> bool {
        let Some(first) = self.open_txns.remove(&producer_id) else {
            return false;
        };
        // A marker of a newer epoch (the coordinator fencing the producer) turns away the
        // older epoch's batches from here on.
        let p = self.producers.entry(producer_id).or_default();
        if epoch > p.epoch {
            *p = ProducerEntry {
                epoch,
                last_sequence: -1,
                ..Default::default()
            };
        }
        let kind = if commit {
            ControlRecordType::Commit
        } else {
            ControlRecordType::Abort
        };
        let Ok(bytes) =
            ControlRecord::marker_batch(kind, 0, producer_id, epoch, self.next_offset, timestamp)
        else {
            return true;
        };
        let marker = self.next_offset;
        self.size += bytes.len();
        self.batches.push(Stored {
            base_offset: marker,
            last_offset: marker,
            max_timestamp: timestamp,
            bytes,
        });
        self.next_offset = marker + 1;
        if !commit {
            self.aborted.push((producer_id, first, marker));
        }
        true
    }

    /// Drops whole batches from the front until the log holds at most `max_bytes`.
    pub(crate) fn trim_to(&mut self, max_bytes: usize) {
        while self.size > max_bytes && self.batches.len() > 1 {
            let b = self.batches.remove(0);
            self.size -= b.bytes.len();
            self.log_start = self.batches[0].base_offset;
        }
    }
}
