//! What goes into the producer and what comes out of it.

use kasio_proto::ErrorCode;
use std::sync::Arc;

/// A record to produce. Everything is borrowed: the producer encodes it straight into a
/// batch buffer and keeps no reference.
///
/// ```
/// use kasio_core::Record;
/// let r = Record::new("orders").key(b"k1").value(b"v1").headers(&[("trace", b"abc")]).partition(2);
/// assert_eq!(r.partition, Some(2));
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Record<'a> {
    /// The topic.
    pub topic: &'a str,
    /// A partition, or `None` for the partitioner to choose.
    pub partition: Option<i32>,
    /// The key, or `None` for null.
    pub key: Option<&'a [u8]>,
    /// The value, or `None` for null (a tombstone).
    pub value: Option<&'a [u8]>,
    /// Headers, in order.
    pub headers: &'a [(&'a str, &'a [u8])],
    /// Create time in Unix milliseconds, or `None` for the producer's clock.
    pub timestamp: Option<i64>,
}

impl<'a> Record<'a> {
    /// A record for `topic` with no key, value or headers.
    pub fn new(topic: &'a str) -> Self {
        Self {
            topic,
            partition: None,
            key: None,
            value: None,
            headers: &[],
            timestamp: None,
        }
    }

    /// Sets the key.
    #[must_use]
    pub fn key(mut self, key: &'a [u8]) -> Self {
        self.key = Some(key);
        self
    }

    /// Sets the value.
    #[must_use]
    pub fn value(mut self, value: &'a [u8]) -> Self {
        self.value = Some(value);
        self
    }

    /// Sets the headers.
    #[must_use]
    pub fn headers(mut self, headers: &'a [(&'a str, &'a [u8])]) -> Self {
        self.headers = headers;
        self
    }

    /// Sets the partition.
    #[must_use]
    pub fn partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Sets the timestamp.
    #[must_use]
    pub fn timestamp(mut self, unix_ms: i64) -> Self {
        self.timestamp = Some(unix_ms);
        self
    }
}

/// Where a delivered record landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The record's offset, or -1 with `acks=0`.
    pub offset: i64,
    /// The record's timestamp (create time, or the broker's log append time).
    pub timestamp: i64,
}

/// Why a record was not delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProduceError {
    /// The broker refused the batch with a non-retriable error, or retries ran out.
    Broker {
        /// The error code.
        code: ErrorCode,
        /// The broker's message, if any.
        message: Option<String>,
    },
    /// `delivery.timeout.ms` passed before the record was acknowledged.
    Timeout,
    /// The topic was not in metadata within `max.block.ms`.
    UnknownTopic,
    /// The record's partition does not exist.
    UnknownPartition,
    /// The record alone is larger than `max.request.size`.
    RecordTooLarge {
        /// Its encoded size.
        size: usize,
    },
    /// The producer was closed before the record was sent.
    Closed,
    /// TLS or SASL failed (wrong credentials, an untrusted certificate, ...).
    Security(crate::SecurityError),
    /// The record's transaction was aborted before the record was sent.
    TransactionAborted,
    /// A transactional producer refused the record: no transaction is open, or it failed.
    Transaction(super::TxnError),
}

impl std::fmt::Display for ProduceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Broker {
                code,
                message: Some(m),
            } => write!(f, "broker error {}: {m}", code.name()),
            Self::Broker { code, .. } => {
                write!(f, "broker error {}: {}", code.name(), code.message())
            }
            Self::Timeout => f.write_str("delivery.timeout.ms expired before acknowledgement"),
            Self::UnknownTopic => f.write_str("topic not present in metadata within max.block.ms"),
            Self::UnknownPartition => f.write_str("the partition does not exist"),
            Self::TransactionAborted => f.write_str("the transaction was aborted"),
            Self::Transaction(e) => e.fmt(f),
            Self::RecordTooLarge { size } => {
                write!(f, "record of {size} bytes is larger than max.request.size")
            }
            Self::Closed => f.write_str("the producer was closed"),
            Self::Security(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ProduceError {}

/// Why `send` refused a record; nothing was buffered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// `buffer.memory` is full: wait for deliveries and try again (up to `max.block.ms`).
    BufferFull,
    /// The record can never be sent.
    Invalid(ProduceError),
    /// The producer is closing or hit a fatal error.
    Closed,
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BufferFull => f.write_str("buffer.memory is full"),
            Self::Invalid(e) => e.fmt(f),
            Self::Closed => f.write_str("the producer is closed"),
        }
    }
}

impl std::error::Error for SendError {}

/// A record refused by `send` never reached Kafka: as a delivery error, a full buffer is a
/// timeout (`max.block.ms` passed) and a closed producer stays closed.
impl From<SendError> for ProduceError {
    fn from(e: SendError) -> Self {
        match e {
            SendError::Invalid(e) => e,
            SendError::BufferFull => Self::Timeout,
            SendError::Closed => Self::Closed,
        }
    }
}

/// Something the shell or the user should know.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<T> {
    /// A record's fate, with the token given to `send`.
    Delivery {
        /// The caller's token.
        token: T,
        /// Where it landed, or why not.
        result: Result<RecordMetadata, ProduceError>,
    },
    /// Every record sent before `flush` has its delivery event.
    Flushed,
    /// `close` finished: every record has its event and every connection is closed.
    Closed,
    /// A transactional operation ended.
    Transaction(super::TxnEvent),
}
