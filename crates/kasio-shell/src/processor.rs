//! What a [`Runner`](crate::Runner) runs: a [`Processor`] with its lifecycle hooks, the
//! [`ProcessError`] it fails with, the [`Stop`] signal and the [`Metric`]s it reports.

use event_listener::Event;
use kasio_core::{ConsumerRecord, Decision, ErrorCode, FailureKind, TopicPartition};
use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

/// Why a record's processing failed, and how to treat it.
///
/// ```
/// use kasio_core::FailureKind;
/// use kasio_shell::ProcessError;
/// let e = ProcessError::retriable(std::io::Error::other("service unavailable"));
/// assert_eq!(e.kind(), FailureKind::Retriable);
/// assert_eq!(e.class(), "std::io::error::Error");
/// assert_eq!(e.message(), "service unavailable");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessError {
    kind: FailureKind,
    class: String,
    message: String,
}

impl ProcessError {
    /// A failure of `kind`: `class` names the error's type in a dead letter's headers.
    pub fn new(kind: FailureKind, class: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind,
            class: class.into(),
            message: message.into(),
        }
    }

    fn of<E: std::error::Error>(kind: FailureKind, error: &E) -> Self {
        Self::new(kind, std::any::type_name::<E>(), error.to_string())
    }

    /// May succeed if tried again: retried with backoff, then dead-lettered.
    pub fn retriable<E: std::error::Error>(error: E) -> Self {
        Self::of(FailureKind::Retriable, &error)
    }

    /// Will not succeed however often tried: dead-lettered at once.
    pub fn permanent<E: std::error::Error>(error: E) -> Self {
        Self::of(FailureKind::NonRetriable, &error)
    }

    /// Nothing further can succeed: the member stops without committing past the record.
    pub fn terminal<E: std::error::Error>(error: E) -> Self {
        Self::of(FailureKind::Terminal, &error)
    }

    /// A broker's error code, classified by [`FailureKind::of_code`].
    #[must_use]
    pub fn code(code: ErrorCode) -> Self {
        Self::new(FailureKind::of_code(code), code.name(), code.message())
    }

    /// How it is treated.
    #[must_use]
    pub fn kind(&self) -> FailureKind {
        self.kind
    }

    /// The error's type.
    #[must_use]
    pub fn class(&self) -> &str {
        &self.class
    }

    /// The error's message.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for ProcessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.class, self.message)
    }
}

impl std::error::Error for ProcessError {}

/// The application's handling of records, run by a [`Runner`](crate::Runner): `process`
/// for each record, and hooks, all optional, at each step of a member's life. Creating
/// is the runner's factory, called once per member. The hooks run on the member's loop:
/// keep them short.
///
/// With an [`ProcessingOrder`](kasio_core::ProcessingOrder) other than `partition` one processor's
/// `process` runs for several records at once, so it takes `&self`.
///
/// ```
/// use kasio_shell::{ProcessError, Processor};
/// use kasio_core::ConsumerRecord;
/// struct Billing;
/// impl Processor for Billing {
///     async fn process(&self, record: &ConsumerRecord) -> Result<(), ProcessError> {
///         let value = record.value.as_deref().unwrap_or_default();
///         std::str::from_utf8(value).map_err(ProcessError::permanent)?;
///         Ok(())
///     }
/// }
/// ```
pub trait Processor: Send + Sync + 'static {
    /// Processes one record. An error is retried, dead-lettered or stops the member, as
    /// its [`kind`](ProcessError::kind) and the runner's retry policy say.
    fn process(
        &self,
        record: &ConsumerRecord,
    ) -> impl Future<Output = Result<(), ProcessError>> + Send;

    /// The member was created (`member` counts from 0).
    fn created(&self, member: usize) {
        let _ = member;
    }

    /// The member subscribed to these topics.
    fn subscribed(&self, topics: &[String]) {
        let _ = topics;
    }

    /// The group gave the member these partitions.
    fn assigned(&self, partitions: &[TopicPartition]) {
        let _ = partitions;
    }

    /// The member gave these partitions up, after their running records finished and
    /// their offsets were committed (`lost`: fenced, nothing committed).
    fn revoked(&self, partitions: &[TopicPartition], lost: bool) {
        let _ = (partitions, lost);
    }

    /// Everything up to `offset` of the partition was fetched.
    fn end_of_partition(&self, topic: &str, partition: i32, offset: i64) {
        let _ = (topic, partition, offset);
    }

    /// Try `attempt` (1 for the first) of `record` failed; `decision` is what happens
    /// next.
    fn failed(
        &self,
        record: &ConsumerRecord,
        error: &ProcessError,
        attempt: u32,
        decision: Decision,
    ) {
        let _ = (record, error, attempt, decision);
    }

    /// The member is stopping: no record starts from now on.
    fn stopping(&self) {}
}

/// A stop signal shared by any number of runners and tasks: once [`stop`](Self::stop)
/// is called, every [`wait`](Self::wait) completes. The CLI and the examples call it on
/// SIGINT and SIGTERM.
///
/// ```
/// let stop = kasio_shell::Stop::new();
/// let other = stop.clone();
/// other.stop();
/// assert!(stop.is_stopped());
/// ```
#[derive(Debug, Clone, Default)]
pub struct Stop(Arc<StopInner>);

#[derive(Debug, Default)]
struct StopInner {
    stopped: AtomicBool,
    event: Event,
}

impl Stop {
    /// A signal not yet given.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Gives the signal.
    pub fn stop(&self) {
        self.0.stopped.store(true, Ordering::SeqCst);
        self.0.event.notify(usize::MAX);
    }

    /// Whether it was given.
    #[must_use]
    pub fn is_stopped(&self) -> bool {
        self.0.stopped.load(Ordering::SeqCst)
    }

    /// Completes once the signal is given.
    pub async fn wait(&self) {
        loop {
            if self.is_stopped() {
                return;
            }
            let listener = self.0.event.listen();
            if self.is_stopped() {
                return;
            }
            listener.await;
        }
    }
}

/// What a runner reports to its metrics callback
/// ([`Runner::on_metric`](crate::Runner::on_metric)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Metric {
    /// A record was processed successfully, taking `elapsed` on its last try.
    Processed {
        /// The record's topic.
        topic: Arc<str>,
        /// How long the successful try took.
        elapsed: Duration,
    },
    /// A try failed and the record will be tried again.
    Retried {
        /// The record's topic.
        topic: Arc<str>,
    },
    /// A record was written to the dead-letter topic.
    DeadLettered {
        /// The record's topic.
        topic: Arc<str>,
    },
    /// A record's failure stopped the member.
    Failed {
        /// The record's topic.
        topic: Arc<str>,
    },
    /// Offsets were committed.
    Committed {
        /// Partitions whose offset moved.
        partitions: usize,
    },
}
