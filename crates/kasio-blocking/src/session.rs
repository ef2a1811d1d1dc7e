//! Consume-transform-produce exactly once on threads.

use crate::{Consumer, Producer, Threads};
use kasio_shell::{Ended, Ending, Fetched, ReadsState, TxnError};
use std::time::Duration;

/// A group consumer and a transactional producer working as one, on threads: every batch
/// [`poll`](Self::poll) hands out belongs to the open transaction (the first opens one),
/// and [`end`](Self::end) commits the records written and the offsets read together, or
/// aborts and reads again. The rules are [`kasio_shell::TransactSession`]'s. The session
/// keeps its consumer and producer alive.
///
/// ```no_run
/// # fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use kasio_blocking::{Consumer, Ending, Fetched, Producer, Record, TransactSession};
/// use std::time::Duration;
/// let consumer = Consumer::from_properties([
///     ("bootstrap.servers", "localhost:9092"),
///     ("group.id", "copier"),
///     ("isolation.level", "read_committed"),
///     ("enable.auto.commit", "false"),
/// ])?;
/// let producer = Producer::from_properties([
///     ("bootstrap.servers", "localhost:9092"),
///     ("transactional.id", "copier-1"),
/// ])?;
/// producer.init_transactions()?;
/// consumer.subscribe(&["input"])?;
/// let session = TransactSession::new(&consumer, &producer);
/// while let Some(fetched) = session.poll(Duration::from_secs(5))? {
///     if let Fetched::Batch(batch) = fetched {
///         for record in batch.records()? {
///             let value = record.value.unwrap_or_default();
///             let _delivery = producer.send(Record::new("output").value(&value))?;
///         }
///         session.end(Ending::TryCommit)?;
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct TransactSession {
    session: kasio_shell::TransactSession<Threads>,
    _consumer: Consumer,
    _producer: Producer,
}

impl TransactSession {
    /// Pairs a group consumer with a transactional producer.
    #[must_use]
    pub fn new(consumer: &Consumer, producer: &Producer) -> Self {
        Self {
            session: kasio_shell::TransactSession::new(consumer, producer.shell()),
            _consumer: consumer.clone(),
            _producer: producer.clone(),
        }
    }

    /// Where the open transaction stands.
    #[must_use]
    pub fn state(&self) -> ReadsState {
        self.session.state()
    }

    /// The next fetched batch or event, blocking up to `timeout`; a batch opens a
    /// transaction when none is open.
    ///
    /// # Errors
    /// The producer's [`TxnError`] when it cannot begin a transaction.
    pub fn poll(&self, timeout: Duration) -> Result<Option<Fetched>, TxnError> {
        self.session.poll(timeout)
    }

    /// Ends the open transaction: committed, or aborted with its reads to be read again.
    ///
    /// # Errors
    /// A fatal [`TxnError`]: close the producer.
    pub fn end(&self, how: Ending) -> Result<Ended, TxnError> {
        self.session.end_blocking(how)
    }
}
