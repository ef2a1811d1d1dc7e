//! Consume-transform-produce exactly once: a group consumer and a transactional producer
//! together, the consumed offsets committed inside the output transaction, and the
//! transaction aborted (its reads read again) whenever it may not commit.

use crate::{
    AsyncRuntime, BlockingRuntime, Consumer, Fetched, Producer, Runtime, pending::block_on,
};
use kasio_core::{Ended, Ending, ReadsState, TransactionReads, TxnError, TxnState};
use std::{
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

/// A consumer in a group and a transactional producer working as one: every batch read
/// belongs to the open transaction (the first opens one), and [`end`](Self::end) commits
/// the records written and the offsets read together, or neither. A transaction is
/// aborted instead of committed when partitions were revoked or lost since it began
/// (another member may read them now), when the group's coordinator refuses its offsets
/// (a zombie member, KIP-447) or when any of its records fails; after an abort the
/// partitions still assigned read again from where the transaction began. The
/// consumer should read with `isolation.level=read_committed` and
/// `enable.auto.commit=false`.
///
/// ```no_run
/// # async fn demo<R: kasio_shell::AsyncRuntime>(
/// #     consumer: kasio_shell::Consumer<R>,
/// #     producer: kasio_shell::Producer<R>,
/// # ) -> Result<(), Box<dyn std::error::Error>> {
/// use kasio_shell::{Ending, Fetched, Record, TransactSession};
/// let session = TransactSession::new(&consumer, &producer);
/// producer.init_transactions().await?;
/// consumer.subscribe(&["input"])?;
/// loop {
///     if let Fetched::Batch(batch) = session.next().await? {
///         let mut values = Vec::new();
///         batch.for_each(|r| values.push(r.value.unwrap_or_default().to_ascii_uppercase()))?;
///         for v in &values {
///             let _delivery = producer.send(Record::new("output").value(v)).await?;
///         }
///         // Committed, or aborted and to be read again.
///         let _ended = session.end(Ending::TryCommit).await?;
///     }
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct TransactSession<R> {
    consumer: Consumer<R>,
    producer: Producer<R>,
    reads: Arc<Mutex<TransactionReads>>,
}

impl<R> Clone for TransactSession<R> {
    fn clone(&self) -> Self {
        Self {
            consumer: self.consumer.clone(),
            producer: self.producer.clone(),
            reads: self.reads.clone(),
        }
    }
}

impl<R: Runtime> TransactSession<R> {
    /// Pairs a group consumer with a transactional producer (clones of their handles: the
    /// caller keeps using its own, and closes them).
    #[must_use]
    pub fn new(consumer: &Consumer<R>, producer: &Producer<R>) -> Self {
        Self {
            consumer: consumer.clone(),
            producer: producer.clone(),
            reads: Arc::default(),
        }
    }

    /// The consumer.
    #[must_use]
    pub fn consumer(&self) -> &Consumer<R> {
        &self.consumer
    }

    /// The producer.
    #[must_use]
    pub fn producer(&self) -> &Producer<R> {
        &self.producer
    }

    /// Where the open transaction stands.
    #[must_use]
    pub fn state(&self) -> ReadsState {
        self.reads().state()
    }

    /// The next fetched batch or event if one is ready, without waiting; a batch opens a
    /// transaction when none is open.
    ///
    /// # Errors
    /// The producer's [`TxnError`] when it cannot begin a transaction.
    pub fn try_next(&self) -> Result<Option<Fetched>, TxnError> {
        self.consumer.try_next().map(|f| self.take(f)).transpose()
    }

    /// Ends the open transaction as `how` asks, on any runtime.
    async fn end_any(&self, how: Ending) -> Result<Ended, TxnError> {
        let (state, offsets) = {
            let reads = self.reads();
            (reads.state(), reads.offsets())
        };
        if state == ReadsState::Idle {
            return Ok(Ended::Idle);
        }
        if how == Ending::TryCommit && state == ReadsState::Open {
            match self.commit(&offsets).await {
                Ok(()) => {
                    self.reads().committed();
                    return Ok(Ended::Committed);
                }
                Err(TxnError::Abortable { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        self.producer.abort_transaction().settled().await?;
        let rewind = self.reads().aborted();
        for (topic, partition, offset) in rewind {
            // A partition no longer assigned starts from the group's committed offset
            // wherever it went; seeking it would do nothing.
            self.consumer
                .seek(&topic, partition, kasio_core::Seek::Offset(offset));
        }
        Ok(Ended::Aborted)
    }

    /// The consumed offsets into the transaction, then the commit.
    async fn commit(&self, offsets: &[(Arc<str>, i32, i64)]) -> Result<(), TxnError> {
        if !offsets.is_empty() {
            let Some(group) = self.consumer.group_metadata() else {
                return Err(TxnError::Abortable {
                    code: None,
                    message: "the consumer has no group.id, so its offsets cannot commit".into(),
                });
            };
            let offsets: Vec<(&str, i32, i64)> =
                offsets.iter().map(|(t, p, o)| (&**t, *p, *o)).collect();
            self.producer
                .send_offsets_to_transaction(&offsets, group)
                .settled()
                .await?;
        }
        self.producer.commit_transaction().settled().await
    }

    /// Notes what was fetched, opening a transaction for a batch when none is open.
    fn take(&self, fetched: Fetched) -> Result<Fetched, TxnError> {
        let mut reads = self.reads();
        match &fetched {
            Fetched::Batch(batch) => {
                if reads.state() == ReadsState::Idle
                    && self.producer.transaction_state() != Some(TxnState::InTransaction)
                {
                    self.producer.begin_transaction()?;
                }
                reads.read(batch);
            }
            Fetched::Event(event) => {
                reads.on_event(event);
            }
        }
        Ok(fetched)
    }

    fn reads(&self) -> MutexGuard<'_, TransactionReads> {
        self.reads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl<R: AsyncRuntime> TransactSession<R> {
    /// The next fetched batch or event, waiting for one; a batch opens a transaction when
    /// none is open.
    ///
    /// # Errors
    /// The producer's [`TxnError`] when it cannot begin a transaction.
    pub async fn next(&self) -> Result<Fetched, TxnError> {
        let fetched = self.consumer.next().await;
        self.take(fetched)
    }

    /// Ends the open transaction as `how` asks, if it may: [`Ended::Committed`], or
    /// [`Ended::Aborted`] with the partitions still assigned reading again from where it
    /// began; [`Ended::Idle`] if none was open.
    ///
    /// # Errors
    /// A fatal [`TxnError`] (the producer was fenced by a newer instance, say): close it.
    pub async fn end(&self, how: Ending) -> Result<Ended, TxnError> {
        self.end_any(how).await
    }
}

impl<R: BlockingRuntime> TransactSession<R> {
    /// The next fetched batch or event, blocking the thread up to `timeout`; a batch opens
    /// a transaction when none is open.
    ///
    /// # Errors
    /// The producer's [`TxnError`] when it cannot begin a transaction.
    pub fn poll(&self, timeout: Duration) -> Result<Option<Fetched>, TxnError> {
        self.consumer
            .poll(timeout)
            .map(|f| self.take(f))
            .transpose()
    }

    /// Ends the open transaction as `how` asks, if it may, blocking the thread until it
    /// has: [`Ended::Committed`], or [`Ended::Aborted`] with the partitions still assigned
    /// reading again from where it began; [`Ended::Idle`] if none was open.
    ///
    /// # Errors
    /// A fatal [`TxnError`] (the producer was fenced by a newer instance, say): close it.
    pub fn end_blocking(&self, how: Ending) -> Result<Ended, TxnError> {
        block_on(self.end_any(how))
    }
}
