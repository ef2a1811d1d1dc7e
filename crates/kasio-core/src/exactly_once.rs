//! The consumer's side of a consume-transform-produce transaction: what it read inside the
//! open transaction, so the transaction can commit the next offsets, or, when it aborts,
//! reading can start again where the transaction's reads began. A rebalance that takes
//! partitions away dooms the open transaction: what it read may now be read by another
//! member, so it must abort ("if we maybe should abort, abort").

use crate::{ConsumerEvent, FetchedBatch};
use std::{collections::BTreeMap, sync::Arc};

/// Where the open transaction stands, as far as its reads go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ReadsState {
    /// No transaction is open: the next batch read opens one.
    #[default]
    Idle,
    /// A transaction is open and may commit.
    Open,
    /// A transaction is open but partitions were revoked or lost since it began: it must
    /// abort.
    Doomed,
}

/// How a consume-transform-produce transaction should end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ending {
    /// Commit, unless the transaction is doomed or its commit fails; then abort.
    TryCommit,
    /// Abort.
    Abort,
}

/// How a consume-transform-produce transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ended {
    /// Its records and the consumed offsets are in.
    Committed,
    /// Neither its records nor its offsets are: reading starts again where it began.
    Aborted,
    /// No transaction was open.
    Idle,
}

/// The reads of the open transaction, per partition: the first offset read and the next
/// offset to read.
///
/// ```
/// use kasio_core::{ConsumerEvent, ReadsState, TransactionReads};
/// let mut reads = TransactionReads::default();
/// assert_eq!(reads.state(), ReadsState::Idle);
/// // Outside a transaction a rebalance costs nothing...
/// reads.on_event(&ConsumerEvent::Revoked { partitions: vec![("in", 0).into()] });
/// assert_eq!(reads.state(), ReadsState::Idle);
/// assert!(reads.offsets().is_empty());
/// ```
#[derive(Debug, Clone, Default)]
pub struct TransactionReads {
    state: ReadsState,
    /// (first offset read, next offset) per partition.
    partitions: BTreeMap<(Arc<str>, i32), (i64, i64)>,
}

impl TransactionReads {
    /// Where the open transaction stands.
    #[must_use]
    pub fn state(&self) -> ReadsState {
        self.state
    }

    /// Notes a batch handed out; whether it opens a transaction (the caller begins one on
    /// the producer first).
    pub fn read(&mut self, batch: &FetchedBatch) -> bool {
        let opens = self.state == ReadsState::Idle;
        if opens {
            self.state = ReadsState::Open;
        }
        let next = batch.next_offset();
        self.partitions
            .entry((batch.topic.clone(), batch.partition))
            .and_modify(|(_, n)| *n = next)
            .or_insert((batch.start_offset(), next));
        opens
    }

    /// Notes a consumer event: partitions revoked or lost doom the open transaction.
    /// Whether this event doomed it.
    pub fn on_event(&mut self, event: &ConsumerEvent) -> bool {
        let moving = matches!(
            event,
            ConsumerEvent::Revoked { partitions } | ConsumerEvent::Lost { partitions }
                if !partitions.is_empty()
        );
        if moving && self.state == ReadsState::Open {
            self.state = ReadsState::Doomed;
            return true;
        }
        false
    }

    /// The offsets the transaction commits: (topic, partition, next offset to read).
    #[must_use]
    pub fn offsets(&self) -> Vec<(Arc<str>, i32, i64)> {
        self.partitions
            .iter()
            .map(|((t, p), &(_, next))| (t.clone(), *p, next))
            .collect()
    }

    /// The transaction committed: the next batch opens another.
    pub fn committed(&mut self) {
        self.state = ReadsState::Idle;
        self.partitions.clear();
    }

    /// The transaction aborted: where each partition's reads began, to read them again
    /// (on the partitions still assigned; the others start from the group's committed
    /// offsets wherever they go).
    pub fn aborted(&mut self) -> Vec<(Arc<str>, i32, i64)> {
        self.state = ReadsState::Idle;
        std::mem::take(&mut self.partitions)
            .into_iter()
            .map(|((t, p), (first, _))| (t, p, first))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use kasio_proto::records::{BatchBuilder, BatchOptions, RecordBatch};

    /// A fetched batch of `count` records from offset `base`, handed out from `from`.
    fn batch(topic: &str, partition: i32, base: i64, count: i64, from: i64) -> FetchedBatch {
        let mut b = BatchBuilder::new(BatchOptions::default());
        for i in 0..count {
            b.append::<(&str, &[u8])>(i, None, Some(b"v"), &[]).unwrap();
        }
        let mut parsed = RecordBatch::decode(&mut b.finish().unwrap()).unwrap();
        parsed.base_offset = base;
        FetchedBatch::new(topic.into(), partition, 0, parsed, from)
    }

    #[test]
    fn offsets_span_every_batch_of_the_transaction() {
        let mut reads = TransactionReads::default();
        assert!(reads.read(&batch("in", 0, 10, 5, 12)));
        assert!(!reads.read(&batch("in", 0, 15, 5, 15)));
        assert!(!reads.read(&batch("in", 1, 0, 3, 0)));
        assert_eq!(
            reads.offsets(),
            vec![("in".into(), 0, 20), ("in".into(), 1, 3)]
        );
        reads.committed();
        assert_eq!(reads.state(), ReadsState::Idle);
        assert!(reads.read(&batch("in", 0, 20, 1, 20)));
        assert_eq!(reads.offsets(), vec![("in".into(), 0, 21)]);
    }

    #[test]
    fn an_abort_rewinds_to_where_the_reads_began() {
        let mut reads = TransactionReads::default();
        reads.read(&batch("in", 0, 10, 5, 12));
        reads.read(&batch("in", 0, 15, 5, 15));
        reads.read(&batch("in", 2, 7, 1, 7));
        assert_eq!(
            reads.aborted(),
            vec![("in".into(), 0, 12), ("in".into(), 2, 7)]
        );
        assert_eq!(reads.state(), ReadsState::Idle);
        assert!(reads.offsets().is_empty());
    }

    #[test]
    fn partitions_moving_mid_transaction_doom_it() {
        let mut reads = TransactionReads::default();
        let revoked = ConsumerEvent::Revoked {
            partitions: vec![("in", 0).into()],
        };
        let lost = ConsumerEvent::Lost {
            partitions: vec![("in", 1).into()],
        };
        let assigned = ConsumerEvent::Assigned {
            partitions: vec![("in", 3).into()],
        };
        assert!(!reads.on_event(&revoked));
        reads.read(&batch("in", 0, 0, 1, 0));
        // More partitions do not endanger what was read; an empty revocation neither.
        assert!(!reads.on_event(&assigned));
        assert!(!reads.on_event(&ConsumerEvent::Revoked { partitions: vec![] }));
        assert_eq!(reads.state(), ReadsState::Open);
        assert!(reads.on_event(&revoked));
        assert_eq!(reads.state(), ReadsState::Doomed);
        assert!(!reads.on_event(&lost));
        reads.read(&batch("in", 3, 0, 1, 0));
        assert_eq!(reads.state(), ReadsState::Doomed);
        assert_eq!(reads.aborted().len(), 2);

        reads.read(&batch("in", 1, 0, 1, 0));
        assert!(reads.on_event(&lost));
    }
}
