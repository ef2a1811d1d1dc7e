//! Records by count, as Python's Kafka clients hand them out (`consume(num_messages)`),
//! beside the consumer's stream of whole batches.

use crate::{
    consumer::Consumer,
    driver::{AsyncRuntime, BlockingRuntime},
};
use event_listener::Listener;
use kasio_core::{ConsumeError, ConsumerEvent, ConsumerRecord, SecurityError};
use std::{sync::Arc, time::Duration};

/// Why a call for records returned no records: what stopped the consumer, or a part of it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PollError {
    /// A partition stopped fetching (`seek` starts it again), or held a record that does
    /// not decode ([`ConsumeError::Corrupt`]).
    Partition {
        /// The topic.
        topic: Arc<str>,
        /// The partition.
        partition: i32,
        /// What went wrong.
        error: ConsumeError,
    },
    /// The group refused the member for good.
    Group(ConsumeError),
    /// TLS or SASL failed: the consumer stopped dialling.
    Security(SecurityError),
}

impl std::fmt::Display for PollError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Partition {
                topic,
                partition,
                error,
            } => write!(f, "{topic}-{partition}: {error}"),
            Self::Group(e) => write!(f, "the group refused the member: {e}"),
            Self::Security(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for PollError {}

impl<R> Consumer<R> {
    /// Up to `max` records that are ready, without waiting; empty if none are. Records come
    /// in fetch order (each partition in offset order). Events pass by: the end of a
    /// partition and rebalances are not reported here (use [`Consumer::try_next`] or the
    /// stream to see them, and to take held revocations); an error is, once the records
    /// before it have been returned.
    ///
    /// # Errors
    /// [`PollError`] when no record came before it.
    pub fn try_next_records(&self, max: usize) -> Result<Vec<ConsumerRecord>, PollError> {
        let mut out = Vec::new();
        let mut stopped = self.take_stopped();
        if let Some(e) = stopped.take() {
            return Err(e);
        }
        self.with(|c, now| {
            let mut took = false;
            while out.len() < max {
                while c.poll_rebalance_event().is_some() {}
                if let Some(batch) = c.poll_batch_at_most(max - out.len()) {
                    took = true;
                    out.reserve(batch.len_hint());
                    let records = match batch.iter() {
                        Ok(records) => records,
                        Err(e) => {
                            stopped = Some(corrupt(&batch.topic, batch.partition, &e));
                            break;
                        }
                    };
                    for record in records {
                        match record {
                            Ok(r) => out.push(r),
                            Err(e) => {
                                stopped = Some(corrupt(&batch.topic, batch.partition, &e));
                                break;
                            }
                        }
                    }
                    continue;
                }
                match c.poll_event() {
                    Some(ConsumerEvent::Error {
                        topic,
                        partition,
                        error,
                    }) => {
                        stopped = Some(PollError::Partition {
                            topic,
                            partition,
                            error,
                        });
                    }
                    Some(ConsumerEvent::GroupError { error }) => {
                        stopped = Some(PollError::Group(error));
                    }
                    Some(ConsumerEvent::Security(e)) => stopped = Some(PollError::Security(e)),
                    Some(_) => continue,
                    None => {}
                }
                break;
            }
            if took {
                c.resume_fetching(now);
            }
        });
        match stopped {
            Some(e) if out.is_empty() => Err(e),
            Some(e) => {
                // Reported by the next call, after these records.
                self.stash_stopped(e);
                Ok(out)
            }
            None => Ok(out),
        }
    }
}

impl<R: AsyncRuntime> Consumer<R> {
    /// Between 1 and `max` records, waiting for the first; see
    /// [`try_next_records`](Self::try_next_records).
    ///
    /// ```no_run
    /// # async fn demo<R: kasio_shell::AsyncRuntime>(consumer: kasio_shell::Consumer<R>) -> Result<(), kasio_shell::PollError> {
    /// loop {
    ///     for record in consumer.next_records(500).await? {
    ///         println!("{}-{}@{}", record.topic, record.partition, record.offset);
    ///     }
    /// }
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`PollError`] when no record came before it.
    pub async fn next_records(&self, max: usize) -> Result<Vec<ConsumerRecord>, PollError> {
        loop {
            let ready = self.shared.ready.listen();
            let got = self.try_next_records(max)?;
            if !got.is_empty() || max == 0 {
                return Ok(got);
            }
            ready.await;
        }
    }
}

impl<R: BlockingRuntime> Consumer<R> {
    /// Up to `max` records, blocking up to `timeout` for the first; empty if none came.
    /// See [`try_next_records`](Self::try_next_records).
    ///
    /// # Errors
    /// [`PollError`] when no record came before it.
    pub fn poll_records(
        &self,
        max: usize,
        timeout: Duration,
    ) -> Result<Vec<ConsumerRecord>, PollError> {
        let deadline = self.shared.now() + timeout;
        loop {
            let ready = self.shared.ready.listen();
            let got = self.try_next_records(max)?;
            if !got.is_empty() || max == 0 {
                return Ok(got);
            }
            if ready.wait_deadline(deadline).is_none() && self.shared.now() >= deadline {
                return Ok(got);
            }
        }
    }
}

fn corrupt(topic: &Arc<str>, partition: i32, e: &impl std::fmt::Display) -> PollError {
    PollError::Partition {
        topic: topic.clone(),
        partition,
        error: ConsumeError::Corrupt(e.to_string()),
    }
}
