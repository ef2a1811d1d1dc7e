//! Dead letters for a share consumer: a record rejected with a reason goes to one
//! dead-letter topic, the broker's where the group has one (KIP-1191, `share.version` 2
//! and the group config `errors.deadletterqueue.topic.name`), else a copy the client
//! writes before it rejects the record. Both carry the broker's `__dlq.errors.*`
//! headers, so one reader serves either.

use crate::producer::Producer;
use kasio_core::{AcknowledgeError, ConsumerRecord, ProduceError, RecordMetadata};

/// The header naming the record's topic, as the broker's dead-letter records name it.
pub const HEADER_TOPIC: &str = kasio_core::DLQ_TOPIC;
/// The header with the record's partition.
pub const HEADER_PARTITION: &str = kasio_core::DLQ_PARTITION;
/// The header with the record's offset.
pub const HEADER_OFFSET: &str = kasio_core::DLQ_OFFSET;
/// The header naming the share group.
pub const HEADER_GROUP: &str = kasio_core::DLQ_GROUP;
/// The header with the record's delivery count when it was rejected.
pub const HEADER_DELIVERY_COUNT: &str = kasio_core::DLQ_ATTEMPTS;
/// The header with the reason given (the broker writes its own message).
pub const HEADER_MESSAGE: &str = kasio_core::DLQ_MESSAGE;

/// Where a share consumer's [`reject_with`](crate::Acquired::reject_with) sends what it
/// rejects: the `topic` it writes with `producer`, unless the broker writes the group's
/// dead letters itself (or always, with [`always`](Self::always)).
///
/// ```no_run
/// # async fn demo<R: kasio_shell::AsyncRuntime>() -> Result<(), Box<dyn std::error::Error>> {
/// use kasio_shell::{DeadLetter, Producer, ShareConsumer, ShareFetched};
/// let queue = ShareConsumer::<R>::from_properties([
///     ("bootstrap.servers", "localhost:9092"),
///     ("group.id", "jobs"),
///     ("share.acknowledgement.mode", "explicit"),
/// ])?;
/// let producer = Producer::<R>::from_properties([("bootstrap.servers", "localhost:9092")])?;
/// queue.dead_letter(DeadLetter::new(producer, "jobs.dlt"));
/// queue.subscribe(&["jobs"]);
/// while let ShareFetched::Record(job) = queue.next().await {
///     match std::str::from_utf8(job.record().value.as_deref().unwrap_or_default()) {
///         Ok(_) => job.ack()?,
///         Err(e) => {
///             job.reject_with(&format!("not UTF-8: {e}")).await?;
///         }
///     }
/// }
/// # Ok(()) }
/// ```
pub struct DeadLetter<R> {
    pub(crate) producer: Producer<R>,
    pub(crate) topic: String,
    pub(crate) broker_first: bool,
}

impl<R> std::fmt::Debug for DeadLetter<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetter")
            .field("topic", &self.topic)
            .field("broker_first", &self.broker_first)
            .finish_non_exhaustive()
    }
}

impl<R> DeadLetter<R> {
    /// Dead letters to `topic`, written with `producer`, where the broker writes none.
    pub fn new(producer: Producer<R>, topic: &str) -> Self {
        Self {
            producer,
            topic: topic.to_string(),
            broker_first: true,
        }
    }

    /// Writes every dead letter to this topic, even where the broker has one for the
    /// group (which then gets its own copy too): the reason reaches only this one.
    #[must_use]
    pub fn always(mut self) -> Self {
        self.broker_first = false;
        self
    }

    /// The client's dead-letter topic.
    #[must_use]
    pub fn topic(&self) -> &str {
        &self.topic
    }
}

/// Where [`reject_with`](crate::Acquired::reject_with) sent the record.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeadLettered {
    /// Rejected; the consumer has no dead-letter topic of its own (the broker's takes
    /// it, if the group has one).
    Rejected,
    /// Rejected; the broker writes it to the group's dead-letter topic, named here
    /// (with its own message in place of the reason).
    Broker(String),
    /// Written to the client's dead-letter topic, here, then rejected.
    Client(RecordMetadata),
}

/// Why [`reject_with`](crate::Acquired::reject_with) did not reject the record.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RejectError {
    /// The record could not be settled (already settled, or the consumer is closing).
    Acknowledge(AcknowledgeError),
    /// Its copy was not written to the dead-letter topic: the record was released
    /// instead, to be delivered again, not lost.
    Publish(ProduceError),
}

impl std::fmt::Display for RejectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Acknowledge(e) => write!(f, "record not rejected: {e}"),
            Self::Publish(e) => write!(
                f,
                "record released, not rejected: its dead letter was not written: {e}"
            ),
        }
    }
}

impl std::error::Error for RejectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Acknowledge(e) => Some(e),
            Self::Publish(e) => Some(e),
        }
    }
}

impl From<AcknowledgeError> for RejectError {
    fn from(e: AcknowledgeError) -> Self {
        Self::Acknowledge(e)
    }
}

/// The dead letter's headers: the record's own, then where it came from and why.
pub(crate) fn headers(
    record: &ConsumerRecord,
    group: &str,
    delivery_count: i16,
    reason: &str,
) -> Vec<(String, Vec<u8>)> {
    let mut out = record.header_pairs();
    out.extend([
        (HEADER_TOPIC.into(), record.topic.as_bytes().to_vec()),
        (HEADER_PARTITION.into(), record.partition.to_string().into()),
        (HEADER_OFFSET.into(), record.offset.to_string().into()),
        (HEADER_GROUP.into(), group.as_bytes().to_vec()),
        (
            HEADER_DELIVERY_COUNT.into(),
            delivery_count.to_string().into(),
        ),
        (HEADER_MESSAGE.into(), reason.as_bytes().to_vec()),
    ]);
    out
}
