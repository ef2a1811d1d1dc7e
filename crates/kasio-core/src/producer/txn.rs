//! Transactions: the transactional producer's state machine, after the Java client's
//! TransactionManager. One coordinator request at a time, in the order Kafka needs them:
//! FindCoordinator, InitProducerId, AddPartitionsToTxn (before a partition's first batch),
//! AddOffsetsToTxn and TxnOffsetCommit, then EndTxn once every record has its answer.
//!
//! Two protocols: Kafka's first (explicit AddPartitionsToTxn and AddOffsetsToTxn, no epoch
//! bump per transaction), and KIP-890's second when the cluster's `transaction.version`
//! is 2 or more (Produce v12+ and TxnOffsetCommit v5+ add partitions and offsets
//! implicitly, and EndTxn v5+ returns a new epoch after every transaction). The first keeps
//! a transactional producer below those versions.

use crate::ErrorCode;
use std::{
    collections::BTreeSet,
    sync::Arc,
    time::{Duration, Instant},
};

/// Where a transactional producer stands; transitions are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TxnState {
    /// `init_transactions` has not been called.
    Uninitialized,
    /// Getting a producer id and epoch for the transactional id (fencing older ones).
    Initializing,
    /// No transaction is open.
    Ready,
    /// A transaction is open: records and offsets may be added.
    InTransaction,
    /// Commit requested: sending what is buffered, then EndTxn.
    Committing,
    /// Abort requested: unsent records dropped, then EndTxn.
    Aborting,
    /// The transaction cannot commit (a record failed, say): only an abort helps.
    AbortableError,
    /// The producer cannot go on (fenced by a newer instance, or not authorized).
    FatalError,
}

impl std::fmt::Display for TxnState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Uninitialized => "uninitialized",
            Self::Initializing => "initializing",
            Self::Ready => "ready",
            Self::InTransaction => "in a transaction",
            Self::Committing => "committing",
            Self::Aborting => "aborting",
            Self::AbortableError => "in an abortable error",
            Self::FatalError => "in a fatal error",
        })
    }
}

/// A transactional operation, as [`TxnEvent::Failed`] names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TxnOp {
    /// `init_transactions`.
    Init,
    /// `send_offsets_to_transaction`.
    SendOffsets,
    /// `commit_transaction`.
    Commit,
    /// `abort_transaction`.
    Abort,
}

/// Why a transactional operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TxnError {
    /// The producer has no `transactional.id`.
    NotTransactional,
    /// The operation is not allowed in the current state.
    InvalidState {
        /// What was asked.
        operation: &'static str,
        /// Where the producer stood.
        state: TxnState,
    },
    /// The transaction must be aborted (then a new one can begin).
    Abortable {
        /// Kafka's error, when the broker gave one.
        code: Option<ErrorCode>,
        /// What happened.
        message: String,
    },
    /// The producer cannot go on: fenced by a newer producer with the same
    /// `transactional.id`, or not authorized. Close it.
    Fatal {
        /// Kafka's error.
        code: ErrorCode,
        /// What happened.
        message: String,
    },
    /// The producer is closed.
    Closed,
}

impl std::fmt::Display for TxnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotTransactional => f.write_str("the producer has no transactional.id"),
            Self::InvalidState { operation, state } => {
                write!(f, "cannot {operation} while {state}")
            }
            Self::Abortable { message, .. } => {
                write!(f, "the transaction must be aborted: {message}")
            }
            Self::Fatal { code, message } => {
                write!(
                    f,
                    "the transactional producer failed ({}): {message}",
                    code.name()
                )
            }
            Self::Closed => f.write_str("the producer is closed"),
        }
    }
}

impl std::error::Error for TxnError {}

/// How a transactional operation ended; one per call of `init_transactions`,
/// `send_offsets_to_transaction`, `commit_transaction` and `abort_transaction`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TxnEvent {
    /// The producer id and epoch are ours; older producers with the id are fenced.
    Initialized,
    /// The consumed offsets are part of the transaction.
    OffsetsSent,
    /// The transaction committed: its records and offsets are visible.
    Committed,
    /// The transaction aborted: its records will never be read by read_committed.
    Aborted,
    /// An operation failed.
    Failed {
        /// Which one.
        op: TxnOp,
        /// Why.
        error: TxnError,
    },
}

/// A consumer's group membership, which a transaction's offsets carry so that the group
/// coordinator can fence a zombie member (KIP-447).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupMetadata {
    /// The group.
    pub group_id: String,
    /// The generation (classic) or member epoch (KIP-848); -1 when unknown.
    pub generation_id: i32,
    /// The member id; empty when unknown.
    pub member_id: String,
    /// The static member id, if any.
    pub group_instance_id: Option<String>,
}

impl GroupMetadata {
    /// Metadata naming only the group: the coordinator then cannot fence zombies.
    #[must_use]
    pub fn group(group_id: &str) -> Self {
        Self {
            group_id: group_id.to_string(),
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
        }
    }
}

/// Offsets on their way into the transaction.
#[derive(Debug, Clone)]
pub(crate) struct PendingOffsets {
    pub(crate) group: GroupMetadata,
    pub(crate) offsets: Vec<(String, i32, i64)>,
    /// AddOffsetsToTxn answered: TxnOffsetCommit is next.
    pub(crate) added: bool,
}

/// The coordinator request in flight, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Call {
    FindCoordinator,
    FindGroupCoordinator,
    InitProducerId,
    AddPartitions,
    AddOffsets,
    OffsetCommit,
    EndTxn,
}

impl Call {
    const ALL: [Call; 7] = [
        Call::FindCoordinator,
        Call::FindGroupCoordinator,
        Call::InitProducerId,
        Call::AddPartitions,
        Call::AddOffsets,
        Call::OffsetCommit,
        Call::EndTxn,
    ];

    /// The connection layer's tag for a request of this call.
    pub(crate) fn tag(self) -> crate::conn::Tag {
        crate::conn::Tag::Txn(self as u8)
    }

    /// The call a [`tag`](Self::tag) names.
    pub(crate) fn from_tag(code: u8) -> Option<Self> {
        Self::ALL.get(usize::from(code)).copied()
    }
}

#[derive(Debug)]
pub(crate) struct Txn {
    pub(crate) id: String,
    pub(crate) timeout: Duration,
    pub(crate) state: TxnState,
    pub(crate) coordinator: Option<i32>,
    pub(crate) group_coordinator: Option<i32>,
    pub(crate) call: Option<Call>,
    /// Partitions the coordinator has in the open transaction.
    pub(crate) added: BTreeSet<(Arc<str>, i32)>,
    /// Partitions in the AddPartitionsToTxn in flight.
    pub(crate) adding: Vec<(Arc<str>, i32)>,
    /// Offsets were added: the transaction is not empty even without records.
    pub(crate) has_offsets: bool,
    pub(crate) offsets: Option<PendingOffsets>,
    pub(crate) retry_at: Option<Instant>,
    /// What made the transaction abortable (or the producer fail).
    pub(crate) error: Option<TxnError>,
    /// The epoch must be renewed (KIP-360, KIP-588) before the next transaction.
    pub(crate) renew_epoch: bool,
    /// The operation waiting for its event.
    pub(crate) op: Option<TxnOp>,
    /// Kafka's second transaction protocol (KIP-890, `transaction.version` 2): partitions
    /// and offsets join the transaction implicitly, and every EndTxn bumps the epoch.
    pub(crate) v2: bool,
}

impl Txn {
    pub(crate) fn new(id: String, timeout: Duration) -> Self {
        Self {
            id,
            timeout,
            state: TxnState::Uninitialized,
            coordinator: None,
            group_coordinator: None,
            call: None,
            added: BTreeSet::new(),
            adding: Vec::new(),
            has_offsets: false,
            offsets: None,
            retry_at: None,
            error: None,
            renew_epoch: false,
            op: None,
            v2: false,
        }
    }

    /// Whether batches may go out: only inside a transaction that can still commit.
    pub(crate) fn may_produce(&self) -> bool {
        matches!(self.state, TxnState::InTransaction | TxnState::Committing)
    }

    pub(crate) fn check(
        &self,
        operation: &'static str,
        allowed: &[TxnState],
    ) -> Result<(), TxnError> {
        if self.state == TxnState::FatalError {
            return Err(self.error.clone().unwrap_or(TxnError::InvalidState {
                operation,
                state: self.state,
            }));
        }
        if allowed.contains(&self.state) {
            Ok(())
        } else {
            Err(TxnError::InvalidState {
                operation,
                state: self.state,
            })
        }
    }

    /// A record or request failed in a way that dooms the transaction: abortable, unless
    /// the producer is already past that. The failed operation, if one was waiting, and
    /// its error.
    pub(crate) fn abortable(
        &mut self,
        code: Option<ErrorCode>,
        message: String,
    ) -> Option<(TxnOp, TxnError)> {
        if !matches!(
            self.state,
            TxnState::InTransaction | TxnState::Committing | TxnState::AbortableError
        ) {
            return None;
        }
        let error = TxnError::Abortable { code, message };
        if self.state != TxnState::AbortableError {
            self.state = TxnState::AbortableError;
            self.error = Some(error.clone());
        }
        self.offsets = None;
        match self.op {
            Some(op @ (TxnOp::Commit | TxnOp::SendOffsets)) => {
                self.op = None;
                Some((op, error))
            }
            _ => None,
        }
    }

    /// The producer cannot go on. The failed operation, if one was waiting.
    pub(crate) fn fatal(&mut self, code: ErrorCode, message: String) -> Option<(TxnOp, TxnError)> {
        let error = TxnError::Fatal { code, message };
        self.state = TxnState::FatalError;
        self.error = Some(error.clone());
        self.offsets = None;
        self.call = None;
        self.op.take().map(|op| (op, error))
    }
}

/// What a coordinator's error means for a transactional request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Ok,
    /// Find the coordinator again, then retry.
    Rediscover,
    /// Retry after a short backoff.
    Retry,
    Abortable,
    Fatal,
}

pub(crate) fn verdict(code: ErrorCode) -> Verdict {
    match code {
        ErrorCode::None => Verdict::Ok,
        ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable => Verdict::Rediscover,
        ErrorCode::CoordinatorLoadInProgress
        | ErrorCode::ConcurrentTransactions
        | ErrorCode::UnknownTopicOrPartition
        | ErrorCode::OperationNotAttempted
        | ErrorCode::RequestTimedOut
        | ErrorCode::NetworkException => Verdict::Retry,
        ErrorCode::ProducerFenced
        | ErrorCode::TransactionalIdAuthorizationFailed
        | ErrorCode::ClusterAuthorizationFailed
        | ErrorCode::UnsupportedVersion
        | ErrorCode::UnsupportedForMessageFormat
        | ErrorCode::InvalidTxnState
        | ErrorCode::InvalidProducerIdMapping
        | ErrorCode::TransactionalIdNotFound => Verdict::Fatal,
        _ => Verdict::Abortable,
    }
}

#[cfg(test)]
mod call_tags {
    use super::Call;

    #[test]
    fn every_call_comes_back_from_its_tag() {
        for call in Call::ALL {
            let crate::conn::Tag::Txn(code) = call.tag() else {
                panic!("{call:?} is not tagged as a transactional call");
            };
            assert_eq!(Call::from_tag(code), Some(call));
        }
        assert_eq!(Call::from_tag(200), None);
    }
}
