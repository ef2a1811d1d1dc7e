//! The blocking producer: sends wait for room on the calling thread; dropping the last
//! clone delivers what is buffered.

use crate::{Delivery, GroupDelivery, Threads};
use kasio_shell::{
    ConfigError, GroupMetadata, ProduceError, ProducerConfig, Record, RecordMetadata, SendError,
    TxnError,
};
use std::sync::Arc;

/// A Kafka producer driven by a thread of its own. Clones share one core; the last one
/// dropped flushes and closes.
///
/// ```no_run
/// # fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use kasio_blocking::{Producer, Record};
/// let producer = Producer::from_properties([
///     ("bootstrap.servers", "localhost:9092"),
///     ("linger.ms", "5"),
/// ])?;
/// let deliveries: Vec<_> = (0..100)
///     .map(|i| producer.send(Record::new("orders").value(format!("{i}").as_bytes())))
///     .collect::<Result<_, _>>()?;
/// for d in deliveries {
///     d.wait()?;
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Producer {
    inner: Arc<Closing>,
}

/// Closes the producer when the last clone goes.
#[derive(Debug)]
struct Closing(kasio_shell::Producer<Threads>);

impl Drop for Closing {
    fn drop(&mut self) {
        self.0.close().wait();
    }
}

impl Producer {
    /// A typed producer serializing keys with `key` and values with `value`; see
    /// [`kasio_shell::TypedProducer`]. It sends through this producer, which must stay
    /// open (this handle or a clone alive) while it is used.
    pub fn typed<K: ?Sized, V: ?Sized, KS, VS>(
        &self,
        key: KS,
        value: VS,
    ) -> kasio_shell::TypedProducer<Threads, K, V, KS, VS>
    where
        KS: kasio_serde::Serializer<K>,
        VS: kasio_serde::Serializer<V>,
    {
        self.inner.0.clone().typed(key, value)
    }

    /// A dead-letter topic written with this producer, for a share consumer's
    /// [`dead_letter`](kasio_shell::ShareConsumer::dead_letter); see
    /// [`kasio_shell::DeadLetter`]. This producer must stay open while it is used.
    #[must_use]
    pub fn dead_letter(&self, topic: &str) -> kasio_shell::DeadLetter<Threads> {
        kasio_shell::DeadLetter::new(self.inner.0.clone(), topic)
    }

    /// Starts a producer and its driver thread.
    ///
    /// # Errors
    /// [`ConfigError`] if the settings conflict.
    pub fn new(config: ProducerConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            inner: Arc::new(Closing(kasio_shell::Producer::new(config)?)),
        })
    }

    /// Starts a producer from Java-client property names.
    ///
    /// # Errors
    /// [`ConfigError`] naming an unknown key or bad value.
    pub fn from_properties<'a>(
        props: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            inner: Arc::new(Closing(kasio_shell::Producer::from_properties(props)?)),
        })
    }

    /// Buffers a record, blocking up to `max.block.ms` for room, and returns its delivery
    /// to [`wait`](kasio_shell::Pending::wait) for.
    ///
    /// # Errors
    /// [`SendError::BufferFull`] if no room came within `max.block.ms`;
    /// [`SendError::Invalid`] or [`SendError::Closed`] as the core reports them.
    pub fn send(&self, record: Record<'_>) -> Result<Delivery, SendError> {
        self.inner.0.send_blocking(record)
    }

    /// Sends a record to be delivered to its topic no earlier than `delay` says, through
    /// the delay tiers; see [`kasio_shell::Producer::send_delayed`].
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn send_delayed(
        &self,
        record: Record<'_>,
        delay: impl Into<kasio_shell::Delay>,
    ) -> Result<Delivery, SendError> {
        self.inner.0.send_delayed_blocking(record, delay)
    }

    /// Sends a record at a priority level, to `<topic>.p.<level>`; see
    /// [`kasio_shell::Producer::send_priority`].
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn send_priority(
        &self,
        record: Record<'_>,
        priority: kasio_shell::Priority,
    ) -> Result<Delivery, SendError> {
        self.inner.0.send_priority_blocking(record, priority)
    }

    /// Sends a record and waits for its delivery.
    ///
    /// # Errors
    /// [`ProduceError`] if it was not delivered (or could not be buffered).
    pub fn send_and_wait(&self, record: Record<'_>) -> Result<RecordMetadata, ProduceError> {
        match self.send(record) {
            Ok(d) => d.wait(),
            Err(e) => Err(e.into()),
        }
    }

    /// Sends many records with one result for all of them: how many were delivered, or
    /// the first error.
    ///
    /// # Errors
    /// As [`send`](Self::send), for the first record that could not be buffered.
    pub fn send_batch<'a>(
        &self,
        records: impl IntoIterator<Item = Record<'a>>,
    ) -> Result<GroupDelivery, SendError> {
        self.inner.0.send_batch_blocking(records)
    }

    /// Sends everything buffered and blocks until every record sent before has its
    /// delivery result.
    pub fn flush(&self) {
        self.inner.0.flush().wait();
    }

    /// Delivers what is buffered, then closes every connection and stops the driver.
    pub fn close(&self) {
        self.inner.0.close().wait();
    }

    /// The shared handle this producer wraps.
    pub(crate) fn shell(&self) -> &kasio_shell::Producer<Threads> {
        &self.inner.0
    }

    /// Records accepted and not yet reported.
    #[must_use]
    pub fn outstanding(&self) -> usize {
        self.inner.0.outstanding()
    }

    /// Gets this `transactional.id`'s producer id and epoch, fencing older producers with
    /// the same id; see [`kasio_shell::Producer::init_transactions`].
    ///
    /// # Errors
    /// [`TxnError`] if it failed (fatal: the producer cannot be used for transactions).
    pub fn init_transactions(&self) -> Result<(), TxnError> {
        self.inner.0.init_transactions().wait()
    }

    /// Opens a transaction.
    ///
    /// # Errors
    /// [`TxnError::InvalidState`] unless initialized with no transaction open.
    pub fn begin_transaction(&self) -> Result<(), TxnError> {
        self.inner.0.begin_transaction()
    }

    /// Adds a consumer's next offsets to the open transaction.
    ///
    /// # Errors
    /// [`TxnError`]: abortable (abort, then begin again) or fatal.
    pub fn send_offsets_to_transaction(
        &self,
        offsets: &[(&str, i32, i64)],
        group: GroupMetadata,
    ) -> Result<(), TxnError> {
        self.inner
            .0
            .send_offsets_to_transaction(offsets, group)
            .wait()
    }

    /// Sends what is buffered and commits the open transaction.
    ///
    /// # Errors
    /// [`TxnError`]: abortable (abort, then begin again) or fatal.
    pub fn commit_transaction(&self) -> Result<(), TxnError> {
        self.inner.0.commit_transaction().wait()
    }

    /// Aborts the open transaction.
    ///
    /// # Errors
    /// [`TxnError`] if even the abort failed (fatal).
    pub fn abort_transaction(&self) -> Result<(), TxnError> {
        self.inner.0.abort_transaction().wait()
    }
}
