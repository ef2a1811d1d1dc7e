//! The dead-letter headers: where a record came from and why it failed, under the names
//! the broker's own dead-letter records use (`__dlq.errors.*`, KIP-1191, which a share
//! consumer's dead letters carry too), and optionally under Kafka Connect's
//! (`__connect.errors.*`) and Spring Kafka's (`kafka_dlt-*`) so their tooling reads them.

use crate::{ConsumerRecord, config::ConfigError};

/// The record's topic (UTF-8).
pub const DLQ_TOPIC: &str = "__dlq.errors.topic";
/// The record's partition (decimal).
pub const DLQ_PARTITION: &str = "__dlq.errors.partition";
/// The record's offset (decimal).
pub const DLQ_OFFSET: &str = "__dlq.errors.offset";
/// The record's timestamp, milliseconds since the Unix epoch (decimal).
pub const DLQ_TIMESTAMP: &str = "__dlq.errors.timestamp";
/// The consumer group that failed it.
pub const DLQ_GROUP: &str = "__dlq.errors.group";
/// The tries made (decimal); a share group's delivery count has the same name.
pub const DLQ_ATTEMPTS: &str = "__dlq.errors.delivery.count";
/// The error's type.
pub const DLQ_CLASS: &str = "__dlq.errors.exception.class.name";
/// The error's message.
pub const DLQ_MESSAGE: &str = "__dlq.errors.message";
/// Tries so far on a record retried through a retry topic (decimal).
pub const ATTEMPTS_HEADER: &str = "kasio.retry.attempts";
/// When a record in a retry topic may be tried again, Unix milliseconds (decimal).
pub const RETRY_DUE_HEADER: &str = "kasio.retry.due";
/// Where a record in a retry topic first came from: `topic`, `partition`, `offset` and
/// `timestamp` follow this prefix, so its dead letter names its origin, not the retry topic.
pub const RETRY_ORIGIN_PREFIX: &str = "kasio.retry.origin.";

/// Where a record first came from: its own place, or the origin a retry topic's copy
/// carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
    /// The create time, Unix milliseconds.
    pub timestamp: i64,
}

impl Origin {
    /// The record's origin: the `kasio.retry.origin.*` headers when it has them all,
    /// else its own topic, partition, offset and timestamp.
    #[must_use]
    pub fn of(record: &ConsumerRecord) -> Self {
        let text = |name: &str| header_text(record, &format!("{RETRY_ORIGIN_PREFIX}{name}"));
        let carried = (|| {
            Some(Self {
                topic: text("topic")?,
                partition: text("partition")?.parse().ok()?,
                offset: text("offset")?.parse().ok()?,
                timestamp: text("timestamp")?.parse().ok()?,
            })
        })();
        carried.unwrap_or_else(|| Self {
            topic: record.topic.to_string(),
            partition: record.partition,
            offset: record.offset,
            timestamp: record.timestamp,
        })
    }
}

/// The last header named `key`, as text.
fn header_text(record: &ConsumerRecord, key: &str) -> Option<String> {
    record
        .headers()
        .map_while(Result::ok)
        .filter(|h| &*h.key == key)
        .last()
        .and_then(|h| String::from_utf8(h.value?.to_vec()).ok())
}

/// When a retry topic's record may be tried again (its [`RETRY_DUE_HEADER`]), Unix ms.
#[must_use]
pub fn retry_due(record: &ConsumerRecord) -> Option<i64> {
    header_text(record, RETRY_DUE_HEADER)?.parse().ok()
}

/// The headers of a record's copy for a retry topic: its own (less earlier tries' count
/// and due time), its origin (kept from an earlier copy, else its own place), the tries
/// made so far and when the next may go.
///
/// ```
/// use kasio_core::{ATTEMPTS_HEADER, RETRY_DUE_HEADER, retry_headers};
/// # fn demo(record: &kasio_core::ConsumerRecord) {
/// let headers = retry_headers(record, 1, 1_767_225_601_000);
/// assert!(headers.iter().any(|(k, v)| k == ATTEMPTS_HEADER && v == b"1"));
/// assert!(headers.iter().any(|(k, v)| k == RETRY_DUE_HEADER && v == b"1767225601000"));
/// # }
/// ```
#[must_use]
pub fn retry_headers(
    record: &ConsumerRecord,
    attempts: u32,
    due_ms: i64,
) -> Vec<(String, Vec<u8>)> {
    let origin = Origin::of(record);
    let mut out = record.header_pairs();
    out.retain(|(k, _)| !k.starts_with("kasio.retry."));
    let text = |k: String, v: String| (k, v.into_bytes());
    out.extend([
        text(format!("{RETRY_ORIGIN_PREFIX}topic"), origin.topic),
        text(
            format!("{RETRY_ORIGIN_PREFIX}partition"),
            origin.partition.to_string(),
        ),
        text(
            format!("{RETRY_ORIGIN_PREFIX}offset"),
            origin.offset.to_string(),
        ),
        text(
            format!("{RETRY_ORIGIN_PREFIX}timestamp"),
            origin.timestamp.to_string(),
        ),
        text(ATTEMPTS_HEADER.into(), attempts.to_string()),
        text(RETRY_DUE_HEADER.into(), due_ms.to_string()),
    ]);
    out
}

/// Which header names a dead letter carries besides kasio's (`processing.dead.letter.headers`:
/// a comma-separated list of `connect` and `spring`, or `none`).
///
/// ```
/// use kasio_core::HeaderConventions;
/// let c: HeaderConventions = "connect,spring".parse()?;
/// assert!(c.connect && c.spring);
/// # Ok::<(), kasio_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeaderConventions {
    /// Kafka Connect's `__connect.errors.topic`, `.partition`, `.offset`,
    /// `.exception.class.name` and `.exception.message` (strings).
    pub connect: bool,
    /// Spring Kafka's `kafka_dlt-original-topic`, `-partition` (4 bytes, big-endian),
    /// `-offset` and `-timestamp` (8 bytes), `-consumer-group`, `kafka_dlt-exception-fqcn`
    /// and `-message`.
    pub spring: bool,
}

impl std::str::FromStr for HeaderConventions {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, ConfigError> {
        let mut c = Self::default();
        for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name {
                "connect" => c.connect = true,
                "spring" => c.spring = true,
                "none" => {}
                _ => {
                    return Err(ConfigError::InvalidValue {
                        key: "processing.dead.letter.headers".into(),
                        value: s.into(),
                        expected: "connect, spring or none, comma-separated",
                    });
                }
            }
        }
        Ok(c)
    }
}

/// Why a record is dead-lettered, for its headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureNote<'a> {
    /// The consumer group.
    pub group: &'a str,
    /// The error's type (a Rust type name, or an error code's name).
    pub class: &'a str,
    /// The error's message.
    pub message: &'a str,
    /// Tries made.
    pub attempts: u32,
}

/// The dead letter's headers: the record's own (less earlier failure headers of these
/// names, so a replayed and failed-again record names its latest failure), then kasio's
/// and those of the `conventions` asked for. The origin named is the record's [`Origin`]:
/// a copy from a retry topic names where it first came from.
///
/// ```
/// use kasio_core::{FailureNote, HeaderConventions, dead_letter_headers};
/// # fn demo(record: &kasio_core::ConsumerRecord) {
/// let note = FailureNote { group: "billing", class: "Timeout", message: "slow", attempts: 3 };
/// let headers = dead_letter_headers(record, &note, HeaderConventions::default());
/// assert!(headers.iter().any(|(k, v)| k == "__dlq.errors.delivery.count" && v == b"3"));
/// # }
/// ```
#[must_use]
pub fn dead_letter_headers(
    record: &ConsumerRecord,
    note: &FailureNote<'_>,
    conventions: HeaderConventions,
) -> Vec<(String, Vec<u8>)> {
    let origin = Origin::of(record);
    let mut out = record.header_pairs();
    out.retain(|(k, _)| !is_failure_header(k));
    let failed = Failed {
        topic: &origin.topic,
        place: Some((origin.partition, origin.offset)),
        timestamp: origin.timestamp,
        group: Some(note.group),
        attempts: note.attempts,
        class: note.class,
        message: note.message,
    };
    failed.push(conventions, &mut out);
    out
}

/// A failure as a dead letter's headers name it; a published message was never written,
/// so it has no partition and offset, nor a group.
pub(crate) struct Failed<'a> {
    pub(crate) topic: &'a str,
    pub(crate) place: Option<(i32, i64)>,
    pub(crate) timestamp: i64,
    pub(crate) group: Option<&'a str>,
    pub(crate) attempts: u32,
    pub(crate) class: &'a str,
    pub(crate) message: &'a str,
}

impl Failed<'_> {
    /// Appends kasio's failure headers, and those of the `conventions` asked for.
    pub(crate) fn push(&self, conventions: HeaderConventions, out: &mut Vec<(String, Vec<u8>)>) {
        let text = |k: &str, v: &str| (k.to_string(), v.as_bytes().to_vec());
        let (timestamp, attempts) = (self.timestamp.to_string(), self.attempts.to_string());
        let place = self.place.map(|(p, o)| (p.to_string(), o.to_string()));
        out.push(text(DLQ_TOPIC, self.topic));
        if let Some((p, o)) = &place {
            out.extend([text(DLQ_PARTITION, p), text(DLQ_OFFSET, o)]);
        }
        out.push(text(DLQ_TIMESTAMP, &timestamp));
        if let Some(g) = self.group {
            out.push(text(DLQ_GROUP, g));
        }
        out.extend([
            text(DLQ_ATTEMPTS, &attempts),
            text(DLQ_CLASS, self.class),
            text(DLQ_MESSAGE, self.message),
        ]);
        if conventions.connect {
            out.push(text("__connect.errors.topic", self.topic));
            if let Some((p, o)) = &place {
                out.extend([
                    text("__connect.errors.partition", p),
                    text("__connect.errors.offset", o),
                ]);
            }
            out.extend([
                text("__connect.errors.exception.class.name", self.class),
                text("__connect.errors.exception.message", self.message),
            ]);
        }
        if conventions.spring {
            // Spring writes its numbers as big-endian binary, not text.
            out.push(text("kafka_dlt-original-topic", self.topic));
            if let Some((p, o)) = self.place {
                out.extend([
                    (
                        "kafka_dlt-original-partition".into(),
                        p.to_be_bytes().to_vec(),
                    ),
                    ("kafka_dlt-original-offset".into(), o.to_be_bytes().to_vec()),
                ]);
            }
            out.push((
                "kafka_dlt-original-timestamp".into(),
                self.timestamp.to_be_bytes().to_vec(),
            ));
            if let Some(g) = self.group {
                out.push(text("kafka_dlt-original-consumer-group", g));
            }
            out.extend([
                text("kafka_dlt-exception-fqcn", self.class),
                text("kafka_dlt-exception-message", self.message),
            ]);
        }
    }
}

/// Whether a header records a failure (kasio's, the broker's, Connect's or Spring's dead
/// letter names, or a retry topic's count, due time and origin): a replayed record goes
/// without them.
///
/// ```
/// assert!(kasio_core::is_failure_header("__connect.errors.topic"));
/// assert!(!kasio_core::is_failure_header("traceparent"));
/// ```
#[must_use]
pub fn is_failure_header(key: &str) -> bool {
    key.starts_with("__dlq.errors.")
        || key.starts_with("__connect.errors.")
        || key.starts_with("kafka_dlt-")
        || key.starts_with("kasio.retry.")
}

/// The tries a record has had before this one, from its [`ATTEMPTS_HEADER`] (0 when it
/// has none or it does not read as a count).
#[must_use]
pub fn attempts_so_far(record: &ConsumerRecord) -> u32 {
    record
        .headers()
        .map_while(Result::ok)
        .filter(|h| &*h.key == ATTEMPTS_HEADER)
        .last()
        .and_then(|h| std::str::from_utf8(&h.value?).ok()?.parse().ok())
        .unwrap_or(0)
}
