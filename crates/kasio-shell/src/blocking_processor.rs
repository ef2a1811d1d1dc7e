//! Processors whose work blocks (a synchronous database driver, a CPU-bound transform):
//! [`BlockingProcessor`], run by a [`Runner`](crate::Runner) through [`OnThreads`], which
//! gives each record's `process` a thread of its pool so the member's loop never blocks.

use crate::processor::{ProcessError, Processor};
use kasio_core::{ConsumerRecord, Decision, FailureKind, TopicPartition};
use std::{
    panic::AssertUnwindSafe,
    sync::{Arc, Mutex, PoisonError, mpsc},
    thread,
};

/// A [`Processor`] whose `process` blocks the calling thread: the same hooks, run the
/// same way, and `process` on a thread of [`OnThreads`]'s pool.
///
/// ```no_run
/// # fn demo<R: kasio_shell::AsyncRuntime>() -> Result<(), Box<dyn std::error::Error>> {
/// use kasio_shell::{BlockingProcessor, OnThreads, ProcessError, Runner};
/// use kasio_core::ConsumerRecord;
/// struct Archive;
/// impl BlockingProcessor for Archive {
///     fn process(&self, record: &ConsumerRecord) -> Result<(), ProcessError> {
///         std::fs::write(format!("/tmp/{}", record.offset), record.value.as_deref().unwrap_or_default())
///             .map_err(ProcessError::retriable)
///     }
/// }
/// let runner = Runner::<R, _>::from_properties(
///     [("bootstrap.servers", "localhost:9092"), ("group.id", "archivers")],
///     &["orders"],
///     |_member| OnThreads::new(Archive, 4),
/// )?;
/// # Ok(()) }
/// ```
pub trait BlockingProcessor: Send + Sync + 'static {
    /// Processes one record, blocking as long as it needs. An error is retried,
    /// dead-lettered or stops the member, as for [`Processor::process`]; a panic stops
    /// the member as a terminal error would.
    ///
    /// # Errors
    /// The record's [`ProcessError`].
    fn process(&self, record: &ConsumerRecord) -> Result<(), ProcessError>;

    /// As [`Processor::created`].
    fn created(&self, member: usize) {
        let _ = member;
    }

    /// As [`Processor::subscribed`].
    fn subscribed(&self, topics: &[String]) {
        let _ = topics;
    }

    /// As [`Processor::assigned`].
    fn assigned(&self, partitions: &[TopicPartition]) {
        let _ = partitions;
    }

    /// As [`Processor::revoked`].
    fn revoked(&self, partitions: &[TopicPartition], lost: bool) {
        let _ = (partitions, lost);
    }

    /// As [`Processor::end_of_partition`].
    fn end_of_partition(&self, topic: &str, partition: i32, offset: i64) {
        let _ = (topic, partition, offset);
    }

    /// As [`Processor::failed`].
    fn failed(
        &self,
        record: &ConsumerRecord,
        error: &ProcessError,
        attempt: u32,
        decision: Decision,
    ) {
        let _ = (record, error, attempt, decision);
    }

    /// As [`Processor::stopping`].
    fn stopping(&self) {}
}

type Work = Box<dyn FnOnce() + Send>;

/// A [`BlockingProcessor`] as a [`Processor`]: each record's `process` runs on one of
/// `threads` threads of its own (give it as many as `processing.max.in.flight`, so no
/// record waits for a thread), the hooks on the member's loop. The threads end when it
/// is dropped.
pub struct OnThreads<P> {
    processor: Arc<P>,
    work: mpsc::Sender<Work>,
}

impl<P> std::fmt::Debug for OnThreads<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnThreads").finish_non_exhaustive()
    }
}

impl<P: BlockingProcessor> OnThreads<P> {
    /// `processor` on a pool of `threads` threads (at least one).
    ///
    /// # Panics
    /// If the system cannot start a thread.
    pub fn new(processor: P, threads: usize) -> Self {
        let (tx, rx) = mpsc::channel::<Work>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            thread::Builder::new()
                .name(format!("kasio-processor-{i}"))
                .spawn(move || {
                    loop {
                        // The lock is held only to take the next piece of work.
                        let next = rx.lock().unwrap_or_else(PoisonError::into_inner).recv();
                        match next {
                            Ok(work) => work(),
                            Err(_) => return,
                        }
                    }
                })
                .expect("a processing thread");
        }
        Self {
            processor: Arc::new(processor),
            work: tx,
        }
    }
}

impl<P: BlockingProcessor> Processor for OnThreads<P> {
    async fn process(&self, record: &ConsumerRecord) -> Result<(), ProcessError> {
        let (tx, rx) = oneshot::channel();
        let processor = self.processor.clone();
        let record = record.clone();
        let work: Work = Box::new(move || {
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| processor.process(&record)));
            let _ = tx.send(result.unwrap_or_else(|_| {
                Err(ProcessError::new(
                    FailureKind::Terminal,
                    "panic",
                    "the processor panicked",
                ))
            }));
        });
        if self.work.send(work).is_err() {
            return Err(ProcessError::new(
                FailureKind::Terminal,
                "kasio::OnThreads",
                "the processing threads are gone",
            ));
        }
        rx.await.unwrap_or_else(|_| {
            Err(ProcessError::new(
                FailureKind::Terminal,
                "kasio::OnThreads",
                "the processing thread ended without a result",
            ))
        })
    }

    fn created(&self, member: usize) {
        self.processor.created(member);
    }

    fn subscribed(&self, topics: &[String]) {
        self.processor.subscribed(topics);
    }

    fn assigned(&self, partitions: &[TopicPartition]) {
        self.processor.assigned(partitions);
    }

    fn revoked(&self, partitions: &[TopicPartition], lost: bool) {
        self.processor.revoked(partitions, lost);
    }

    fn end_of_partition(&self, topic: &str, partition: i32, offset: i64) {
        self.processor.end_of_partition(topic, partition, offset);
    }

    fn failed(
        &self,
        record: &ConsumerRecord,
        error: &ProcessError,
        attempt: u32,
        decision: Decision,
    ) {
        self.processor.failed(record, error, attempt, decision);
    }

    fn stopping(&self) {
        self.processor.stopping();
    }
}
