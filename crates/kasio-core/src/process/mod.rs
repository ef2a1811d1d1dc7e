//! The processing layer's logic, sans-IO: what a runner of processors decides without
//! touching a socket or a clock.
//!
//! [`Dispatcher`] hands fetched records out as jobs under an [`ProcessingOrder`] (per partition,
//! per key, or none) and keeps each partition's commit point below every unfinished job;
//! [`RetryPolicy`] decides what becomes of a failed record (tried again after a growing,
//! jittered backoff; dead-lettered; or the member stops); [`dead_letter_headers`] writes
//! the failure into a dead letter's headers under the broker's names and, on request,
//! Kafka Connect's and Spring Kafka's; [`DeliveryTracker`] remembers what became of each
//! message a publisher sent, by [`message_id`], in bounded memory; [`Outbox`] holds a
//! publisher's messages until each is delivered, dead-lettered or failed, with the retries
//! due and the dead letters to write.

mod dispatch;
mod headers;
mod outbox;
mod retry;
mod tracking;

pub use dispatch::{Dispatcher, ProcessingOrder, Ticket};
pub use headers::{
    ATTEMPTS_HEADER, DLQ_ATTEMPTS, DLQ_CLASS, DLQ_GROUP, DLQ_MESSAGE, DLQ_OFFSET, DLQ_PARTITION,
    DLQ_TIMESTAMP, DLQ_TOPIC, FailureNote, HeaderConventions, Origin, RETRY_DUE_HEADER,
    RETRY_ORIGIN_PREFIX, attempts_so_far, dead_letter_headers, is_failure_header, retry_due,
    retry_headers,
};
pub use outbox::{DuplicateId, Failure, Notice, Outbox, Outgoing, Publication};
pub use retry::{Decision, FailureKind, RetryPolicy};
pub use tracking::{DeliveryStatus, DeliveryTracker, MESSAGE_ID_HEADER, StatusCounts, message_id};
