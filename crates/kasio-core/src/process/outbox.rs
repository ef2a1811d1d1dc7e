//! A publisher's delivery handling, sans-IO: every message it holds until the message is
//! finished (delivered, dead-lettered or failed for good), the retries due and when, and
//! the dead letters to write, so the shell only sends what [`Outbox::poll_send`] hands it
//! and reports back what the producer said.

use super::{
    headers::{Failed, HeaderConventions, is_failure_header},
    retry::{Decision, FailureKind, RetryPolicy},
    tracking::{DeliveryStatus, DeliveryTracker, StatusCounts},
};
use crate::{ProduceError, SendError, rng::Rng};
use std::{
    collections::{BTreeSet, HashMap, VecDeque},
    sync::Arc,
    time::Instant,
};

/// A message as a publisher holds it: owned, since it may be sent again after the
/// caller's buffers are gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    /// Its id (also in its headers, under [`MESSAGE_ID_HEADER`](super::MESSAGE_ID_HEADER)).
    pub id: Arc<str>,
    /// The topic.
    pub topic: String,
    /// A partition, or `None` for the producer's partitioner.
    pub partition: Option<i32>,
    /// The key.
    pub key: Option<Vec<u8>>,
    /// The value.
    pub value: Option<Vec<u8>>,
    /// The headers, in order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Create time in Unix milliseconds, fixed at the first try so every try carries it.
    pub timestamp: i64,
}

/// Why a try failed, and how the failure is treated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Retriable, not, or terminal.
    pub kind: FailureKind,
    /// The error's type (an error code's name, or a Rust type's).
    pub class: String,
    /// The error's message.
    pub message: String,
}

impl Failure {
    /// A failure of `kind`, for errors of the application's own (a value that did not
    /// serialize is [`FailureKind::NonRetriable`]).
    pub fn new(kind: FailureKind, class: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind,
            class: class.into(),
            message: message.into(),
        }
    }

    /// A delivery's failure.
    ///
    /// ```
    /// use kasio_core::{Failure, FailureKind, ProduceError};
    /// let f = Failure::of_produce(&ProduceError::Timeout);
    /// assert_eq!((f.kind, f.class.as_str()), (FailureKind::Retriable, "Timeout"));
    /// ```
    #[must_use]
    pub fn of_produce(error: &ProduceError) -> Self {
        let class = match error {
            ProduceError::Broker { code, .. } => code.name(),
            ProduceError::Timeout => "Timeout",
            ProduceError::UnknownTopic => "UnknownTopic",
            ProduceError::UnknownPartition => "UnknownPartition",
            ProduceError::RecordTooLarge { .. } => "RecordTooLarge",
            ProduceError::Closed => "Closed",
            ProduceError::Security(_) => "Security",
            ProduceError::TransactionAborted => "TransactionAborted",
            ProduceError::Transaction(_) => "Transaction",
        };
        Self::new(FailureKind::of_produce(error), class, error.to_string())
    }

    /// A send refused at once.
    #[must_use]
    pub fn of_send(error: &SendError) -> Self {
        match error {
            SendError::Invalid(e) => Self::of_produce(e),
            SendError::BufferFull => {
                Self::new(FailureKind::of_send(error), "BufferFull", error.to_string())
            }
            SendError::Closed => {
                Self::new(FailureKind::of_send(error), "Closed", error.to_string())
            }
        }
    }
}

/// What became of a message, for the publisher's callbacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The broker has it.
    Delivered {
        /// The message id.
        id: Arc<str>,
        /// The topic.
        topic: Arc<str>,
        /// The partition.
        partition: i32,
        /// Its offset.
        offset: i64,
    },
    /// A try failed and another is due at `at`.
    RetryScheduled {
        /// The message id.
        id: Arc<str>,
        /// Tries so far.
        attempt: u32,
        /// When the next goes.
        at: Instant,
        /// What failed.
        failure: Failure,
    },
    /// Its tries ran out (or its failure cannot be retried) and its dead letter is written.
    DeadLettered {
        /// The message id.
        id: Arc<str>,
        /// The dead-letter topic.
        topic: Arc<str>,
        /// Tries made.
        attempts: u32,
        /// The last failure.
        failure: Failure,
    },
    /// It could not be delivered nor dead-lettered.
    Failed {
        /// The message id.
        id: Arc<str>,
        /// Tries made.
        attempts: u32,
        /// Why.
        failure: Failure,
    },
}

/// A record [`Outbox::poll_send`] hands out, borrowed from the outbox.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// Where to write it (the dead-letter topic for a dead letter).
    pub topic: &'a str,
    /// The partition asked for (none for a dead letter).
    pub partition: Option<i32>,
    /// The key.
    pub key: Option<&'a [u8]>,
    /// The value.
    pub value: Option<&'a [u8]>,
    /// The headers (a dead letter's carry the failure).
    pub headers: &'a [(String, Vec<u8>)],
    /// The create time.
    pub timestamp: i64,
}

/// Where a held message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Handed to the producer; its result not yet reported.
    Sending,
    /// Waiting for its next try.
    Due(Instant),
    /// Its next try may go now.
    Ready,
}

/// A dead letter to write: its topic and the tries at writing it. Its headers are made
/// as it is handed out, so the many waiting out an outage hold only their failure.
#[derive(Debug)]
struct DeadLetter {
    topic: Arc<str>,
    tries: u32,
}

#[derive(Debug)]
struct Held {
    message: Publication,
    stage: Stage,
    /// Tries of the message itself.
    attempts: u32,
    /// Its dead letter once it has one.
    dead_letter: Option<DeadLetter>,
    /// The failure that sent it to its dead letter.
    failure: Option<Failure>,
}

/// The id is already held, unfinished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateId(pub Arc<str>);

impl std::fmt::Display for DuplicateId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "message id {} is already being published", self.0)
    }
}

impl std::error::Error for DuplicateId {}

/// Every message a publisher holds until it is finished, by slot (the number its
/// producer's delivery reports carry), with its tries, retries due, dead letters to write
/// and each message's [`DeliveryStatus`].
///
/// A failed try is classified ([`FailureKind`]) and decided on by the [`RetryPolicy`]:
/// tried again after a backoff, or given up on and written to the dead-letter topic
/// (`{topic}` in its name stands for the message's), whose own write is tried again while
/// its failure is retriable. A terminal failure, or a dead letter that cannot be written,
/// ends the message `Failed`.
///
/// ```
/// use kasio_core::{DeliveryStatus, DeliveryTracker, Failure, FailureKind, HeaderConventions, Publication, Outbox, RetryPolicy};
/// use std::time::{Duration, Instant};
/// let now = Instant::now();
/// let tracker = DeliveryTracker::new(Duration::from_secs(60), 1000, 1000);
/// let mut outbox = Outbox::new(RetryPolicy::default(), Some("{topic}.dlt".into()), HeaderConventions::default(), tracker, 7);
/// let msg = Publication { id: "m-1".into(), topic: "orders".into(), partition: None, key: None, value: Some(b"v".to_vec()), headers: vec![], timestamp: 0 };
/// let slot = outbox.submit(msg, now)?;
/// outbox.outcome(slot, Err(Failure::new(FailureKind::NonRetriable, "Bad", "no")), now);
/// let (dl, out) = outbox.poll_send(now).expect("a dead letter to write");
/// assert_eq!(out.topic, "orders.dlt");
/// outbox.outcome(dl, Ok((0, 12)), now);
/// assert_eq!(outbox.status("m-1"), Some(&DeliveryStatus::DeadLettered { topic: "orders.dlt".into() }));
/// # Ok::<(), kasio_core::DuplicateId>(())
/// ```
#[derive(Debug)]
pub struct Outbox {
    policy: RetryPolicy,
    dead_letter: Option<String>,
    conventions: HeaderConventions,
    tracker: DeliveryTracker,
    held: HashMap<u64, Held>,
    by_id: HashMap<Arc<str>, u64>,
    due: BTreeSet<(Instant, u64)>,
    ready: VecDeque<u64>,
    notices: VecDeque<Notice>,
    next_slot: u64,
    rng: Rng,
    /// The headers of the dead letter last handed out.
    headers: Vec<(String, Vec<u8>)>,
}

impl Outbox {
    /// An empty outbox: failures decided by `policy`, dead letters written to
    /// `dead_letter` (none: a message whose tries ran out fails), statuses kept by
    /// `tracker`, jitter drawn from `seed`.
    #[must_use]
    pub fn new(
        policy: RetryPolicy,
        dead_letter: Option<String>,
        conventions: HeaderConventions,
        tracker: DeliveryTracker,
        seed: u64,
    ) -> Self {
        Self {
            policy,
            dead_letter,
            conventions,
            tracker,
            held: HashMap::new(),
            by_id: HashMap::new(),
            due: BTreeSet::new(),
            ready: VecDeque::new(),
            notices: VecDeque::new(),
            next_slot: 0,
            rng: Rng::new(seed),
            headers: Vec::new(),
        }
    }

    /// Takes a message whose first try the caller sends now, reporting under the slot
    /// returned.
    ///
    /// # Errors
    /// [`DuplicateId`] while a message of the same id is unfinished.
    pub fn submit(&mut self, message: Publication, now: Instant) -> Result<u64, DuplicateId> {
        if self.by_id.contains_key(&message.id) || !self.tracker.track(&message.id, now) {
            return Err(DuplicateId(message.id));
        }
        let slot = self.next_slot;
        self.next_slot += 1;
        self.by_id.insert(message.id.clone(), slot);
        self.held.insert(
            slot,
            Held {
                message,
                stage: Stage::Sending,
                attempts: 1,
                dead_letter: None,
                failure: None,
            },
        );
        Ok(slot)
    }

    /// Records a message that could not even be tried (its key or value did not
    /// serialize): it ends `Failed` at once, with a notice.
    ///
    /// # Errors
    /// [`DuplicateId`] while a message of the same id is unfinished.
    pub fn refuse(
        &mut self,
        id: Arc<str>,
        failure: Failure,
        now: Instant,
    ) -> Result<(), DuplicateId> {
        if self.by_id.contains_key(&id) || !self.tracker.track(&id, now) {
            return Err(DuplicateId(id));
        }
        let error = format!("{}: {}", failure.class, failure.message);
        self.tracker
            .update(&id, DeliveryStatus::Failed { error }, now);
        self.notices.push_back(Notice::Failed {
            id,
            attempts: 0,
            failure,
        });
        Ok(())
    }

    /// The result of the try under `slot`: the partition and offset written, or why not.
    /// A slot no longer held (reported twice) changes nothing.
    pub fn outcome(&mut self, slot: u64, result: Result<(i32, i64), Failure>, now: Instant) {
        let Some(held) = self.held.get_mut(&slot) else {
            return;
        };
        if held.stage != Stage::Sending {
            return;
        }
        let id = held.message.id.clone();
        match (result, held.dead_letter.as_mut()) {
            (Ok((partition, offset)), None) => {
                let topic: Arc<str> = held.message.topic.as_str().into();
                self.finish(
                    slot,
                    DeliveryStatus::Success {
                        topic: topic.clone(),
                        partition,
                        offset,
                    },
                    now,
                );
                self.notices.push_back(Notice::Delivered {
                    id,
                    topic,
                    partition,
                    offset,
                });
            }
            (Ok(_), Some(dl)) => {
                let topic = dl.topic.clone();
                let attempts = held.attempts;
                let failure = held.failure.take().unwrap_or_else(|| {
                    Failure::new(FailureKind::NonRetriable, "Unknown", "no failure recorded")
                });
                self.finish(
                    slot,
                    DeliveryStatus::DeadLettered {
                        topic: topic.clone(),
                    },
                    now,
                );
                self.notices.push_back(Notice::DeadLettered {
                    id,
                    topic,
                    attempts,
                    failure,
                });
            }
            (Err(failure), None) => {
                let seed = self.rng.next_u64();
                match self.policy.decide(failure.kind, held.attempts, seed) {
                    Decision::Retry(wait) => {
                        let at = now + wait;
                        held.stage = Stage::Due(at);
                        self.due.insert((at, slot));
                        let attempt = held.attempts;
                        self.tracker.update(
                            &id,
                            DeliveryStatus::RetryScheduled { attempt, at },
                            now,
                        );
                        self.notices.push_back(Notice::RetryScheduled {
                            id,
                            attempt,
                            at,
                            failure,
                        });
                    }
                    Decision::DeadLetter if self.dead_letter.is_some() => {
                        let pattern = self.dead_letter.as_deref().unwrap_or_default();
                        let topic: Arc<str> =
                            pattern.replace("{topic}", &held.message.topic).into();
                        held.dead_letter = Some(DeadLetter { topic, tries: 0 });
                        held.failure = Some(failure);
                        held.stage = Stage::Ready;
                        self.ready.push_back(slot);
                    }
                    Decision::DeadLetter | Decision::Stop => self.fail(slot, failure, now),
                }
            }
            (Err(failure), Some(dl)) => {
                if failure.kind == FailureKind::Retriable {
                    let wait = self.policy.backoff(dl.tries, self.rng.next_u64());
                    held.stage = Stage::Due(now + wait);
                    self.due.insert((now + wait, slot));
                } else {
                    let failure = Failure::new(
                        failure.kind,
                        failure.class,
                        format!("the dead letter could not be written: {}", failure.message),
                    );
                    self.fail(slot, failure, now);
                }
            }
        }
    }

    /// The next record to send now (a retry due, or a dead letter), under its slot: the
    /// caller reports its result with [`outcome`](Self::outcome).
    pub fn poll_send(&mut self, now: Instant) -> Option<(u64, Outgoing<'_>)> {
        self.move_due(now);
        let slot = loop {
            let slot = self.ready.pop_front()?;
            if self
                .held
                .get(&slot)
                .is_some_and(|h| h.stage == Stage::Ready)
            {
                break slot;
            }
        };
        let held = self.held.get_mut(&slot)?;
        held.stage = Stage::Sending;
        let m = &held.message;
        let out = match held.dead_letter.as_mut() {
            Some(dl) => {
                dl.tries += 1;
                self.headers.clear();
                if let Some(f) = &held.failure {
                    failure_headers(m, f, held.attempts, self.conventions, &mut self.headers);
                }
                Outgoing {
                    topic: &dl.topic,
                    partition: None,
                    key: m.key.as_deref(),
                    value: m.value.as_deref(),
                    headers: &self.headers,
                    timestamp: m.timestamp,
                }
            }
            None => {
                held.attempts += 1;
                self.tracker.update(&m.id, DeliveryStatus::Pending, now);
                Outgoing {
                    topic: &m.topic,
                    partition: m.partition,
                    key: m.key.as_deref(),
                    value: m.value.as_deref(),
                    headers: &m.headers,
                    timestamp: m.timestamp,
                }
            }
        };
        Some((slot, out))
    }

    fn move_due(&mut self, now: Instant) {
        while let Some(&(at, slot)) = self.due.first() {
            if at > now {
                break;
            }
            self.due.pop_first();
            if let Some(h) = self.held.get_mut(&slot)
                && h.stage == Stage::Due(at)
            {
                h.stage = Stage::Ready;
                self.ready.push_back(slot);
            }
        }
    }

    /// Moves retries that are due to be sent and forgets statuses past their retention.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.move_due(now);
        self.tracker.expire(now);
    }

    /// When [`handle_timeout`](Self::handle_timeout) next has something to do.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let due = self.due.first().map(|(at, _)| *at);
        due.into_iter().chain(self.tracker.next_expiry()).min()
    }

    /// Whether a record is ready for [`poll_send`](Self::poll_send) at `now`.
    #[must_use]
    pub fn has_ready(&self, now: Instant) -> bool {
        !self.ready.is_empty() || self.due.first().is_some_and(|(at, _)| *at <= now)
    }

    /// The next thing that happened to a message, oldest first.
    pub fn poll_notice(&mut self) -> Option<Notice> {
        self.notices.pop_front()
    }

    /// Takes back a message whose first try the producer refused at once (its buffer
    /// full, or closed), for the caller to hear of it instead: it ends `Failed`, with no
    /// notice.
    pub fn withdraw(&mut self, slot: u64, failure: &Failure, now: Instant) {
        self.finish(
            slot,
            DeliveryStatus::Failed {
                error: format!("{}: {}", failure.class, failure.message),
            },
            now,
        );
    }

    /// Ends every unfinished message `Failed` with `failure` (a publisher closed before
    /// they finished); the dropped count.
    pub fn abandon(&mut self, failure: &Failure, now: Instant) -> usize {
        let slots: Vec<u64> = self.held.keys().copied().collect();
        for &slot in &slots {
            self.fail(slot, failure.clone(), now);
        }
        self.due.clear();
        self.ready.clear();
        slots.len()
    }

    fn fail(&mut self, slot: u64, failure: Failure, now: Instant) {
        let Some(held) = self.held.get(&slot) else {
            return;
        };
        let (id, attempts) = (held.message.id.clone(), held.attempts);
        self.finish(
            slot,
            DeliveryStatus::Failed {
                error: format!("{}: {}", failure.class, failure.message),
            },
            now,
        );
        self.notices.push_back(Notice::Failed {
            id,
            attempts,
            failure,
        });
    }

    fn finish(&mut self, slot: u64, status: DeliveryStatus, now: Instant) {
        if let Some(held) = self.held.remove(&slot) {
            self.by_id.remove(&held.message.id);
            self.tracker.update(&held.message.id, status, now);
        }
    }

    /// Messages held, unfinished.
    #[must_use]
    pub fn unfinished(&self) -> usize {
        self.held.len()
    }

    /// A message's status, while it is remembered.
    #[must_use]
    pub fn status(&self, id: &str) -> Option<&DeliveryStatus> {
        self.tracker.status(id)
    }

    /// How many remembered messages are in each status.
    #[must_use]
    pub fn counts(&self) -> StatusCounts {
        self.tracker.counts()
    }

    /// Statuses remembered (unfinished and finished).
    #[must_use]
    pub fn remembered(&self) -> usize {
        self.tracker.len()
    }

    /// Status changes since the last call, and how many were missed.
    pub fn drain_changes(&mut self) -> (Vec<(Arc<str>, DeliveryStatus)>, u64) {
        self.tracker.drain_changes()
    }
}

/// A published message's dead-letter headers: its own less earlier failure headers, then
/// the topic it was meant for, its create time and the failure, under kasio's names and
/// those of the `conventions` asked for. It was never written, so it has no partition,
/// offset or group. Appended to `out`.
fn failure_headers(
    m: &Publication,
    failure: &Failure,
    attempts: u32,
    conventions: HeaderConventions,
    out: &mut Vec<(String, Vec<u8>)>,
) {
    out.extend(
        m.headers
            .iter()
            .filter(|(k, _)| !is_failure_header(k))
            .cloned(),
    );
    let failed = Failed {
        topic: &m.topic,
        place: None,
        timestamp: m.timestamp,
        group: None,
        attempts,
        class: &failure.class,
        message: &failure.message,
    };
    failed.push(conventions, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DLQ_ATTEMPTS, DLQ_CLASS, DLQ_TOPIC};
    use std::time::Duration;

    fn outbox(dead_letter: Option<&str>) -> Outbox {
        outbox_keeping(dead_letter, Duration::from_secs(60))
    }

    fn outbox_keeping(dead_letter: Option<&str>, retention: Duration) -> Outbox {
        let policy = RetryPolicy {
            jitter: 0.0,
            ..RetryPolicy::default()
        };
        Outbox::new(
            policy,
            dead_letter.map(Into::into),
            HeaderConventions::default(),
            DeliveryTracker::new(retention, 100, 100),
            1,
        )
    }

    fn message(id: &str) -> Publication {
        Publication {
            id: id.into(),
            topic: "t".into(),
            partition: None,
            key: None,
            value: Some(b"v".to_vec()),
            headers: vec![("kasio.message.id".into(), id.as_bytes().to_vec())],
            timestamp: 5,
        }
    }

    fn timeout() -> Failure {
        Failure::of_produce(&ProduceError::Timeout)
    }

    #[test]
    fn retriable_failures_are_tried_again_then_dead_lettered() {
        let t0 = Instant::now();
        let mut o = outbox(Some("{topic}.dlt"));
        let slot = o.submit(message("a"), t0).expect("new id");
        assert!(
            o.submit(message("a"), t0).is_err(),
            "a duplicate while unfinished"
        );
        o.outcome(slot, Err(timeout()), t0);
        assert!(matches!(
            o.status("a"),
            Some(DeliveryStatus::RetryScheduled { attempt: 1, .. })
        ));
        assert!(o.poll_send(t0).is_none(), "not before its backoff");
        assert_eq!(o.poll_timeout(), Some(t0 + Duration::from_secs(1)));
        let t1 = t0 + Duration::from_secs(1);
        let (s, out) = o.poll_send(t1).expect("the retry is due");
        assert_eq!((s, out.topic), (slot, "t"));
        assert_eq!(o.status("a"), Some(&DeliveryStatus::Pending));
        o.outcome(slot, Err(timeout()), t1);
        let t2 = t1 + Duration::from_secs(2);
        assert!(o.poll_send(t2 - Duration::from_millis(1)).is_none());
        o.poll_send(t2).expect("the third try");
        o.outcome(slot, Err(timeout()), t2);
        // Three tries made: the dead letter is next, at once.
        let (_, out) = o.poll_send(t2).expect("the dead letter");
        assert_eq!(out.topic, "t.dlt");
        let h = |k: &str| {
            out.headers
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        };
        assert_eq!(h(DLQ_TOPIC).as_deref(), Some("t"));
        assert_eq!(h(DLQ_ATTEMPTS).as_deref(), Some("3"));
        assert_eq!(h(DLQ_CLASS).as_deref(), Some("Timeout"));
        assert_eq!(h("kasio.message.id").as_deref(), Some("a"));
        // The dead letter's own write fails retriably, then goes.
        o.outcome(slot, Err(timeout()), t2);
        assert!(o.poll_send(t2).is_none());
        let t3 = t2 + Duration::from_secs(1);
        o.poll_send(t3).expect("the dead letter again");
        o.outcome(slot, Ok((0, 9)), t3);
        assert_eq!(
            o.status("a"),
            Some(&DeliveryStatus::DeadLettered {
                topic: "t.dlt".into()
            })
        );
        assert_eq!(o.unfinished(), 0);
        let notices: Vec<Notice> = std::iter::from_fn(|| o.poll_notice()).collect();
        assert_eq!(notices.len(), 3, "{notices:?}");
        assert!(matches!(
            notices[2],
            Notice::DeadLettered { attempts: 3, .. }
        ));
        // Finished, the id may be published again.
        o.submit(message("a"), t3).expect("a finished id again");
    }

    #[test]
    fn terminal_failures_and_missing_dead_letters_fail_and_successes_succeed() {
        let t0 = Instant::now();
        let mut o = outbox(None);
        let a = o.submit(message("a"), t0).expect("new");
        let b = o.submit(message("b"), t0).expect("new");
        let c = o.submit(message("c"), t0).expect("new");
        o.outcome(a, Ok((3, 4)), t0);
        o.outcome(a, Err(timeout()), t0);
        o.outcome(b, Err(Failure::of_produce(&ProduceError::Closed)), t0);
        o.outcome(
            c,
            Err(Failure::new(FailureKind::NonRetriable, "Serialize", "bad")),
            t0,
        );
        assert!(matches!(
            o.status("a"),
            Some(DeliveryStatus::Success {
                partition: 3,
                offset: 4,
                ..
            })
        ));
        assert!(matches!(o.status("b"), Some(DeliveryStatus::Failed { .. })));
        assert!(matches!(o.status("c"), Some(DeliveryStatus::Failed { .. })));
        assert_eq!(o.unfinished(), 0);
        o.handle_timeout(t0 + Duration::from_secs(61));
        assert_eq!(o.remembered(), 0, "finished statuses expire");
    }

    #[test]
    fn a_refused_message_fails_at_once_with_a_notice() {
        let t0 = Instant::now();
        let mut o = outbox(Some("dlt"));
        let bad = Failure::new(FailureKind::NonRetriable, "Serialize", "not JSON");
        o.refuse("a".into(), bad.clone(), t0).expect("new id");
        assert!(matches!(o.status("a"), Some(DeliveryStatus::Failed { .. })));
        assert_eq!(
            o.poll_notice(),
            Some(Notice::Failed {
                id: "a".into(),
                attempts: 0,
                failure: bad
            })
        );
        assert_eq!(o.unfinished(), 0);
    }

    #[test]
    fn abandoning_fails_what_is_left() {
        let t0 = Instant::now();
        let mut o = outbox(Some("dlt"));
        let a = o.submit(message("a"), t0).expect("new");
        o.submit(message("b"), t0).expect("new");
        o.outcome(a, Err(timeout()), t0);
        let closed = Failure::new(FailureKind::Terminal, "Closed", "closed");
        assert_eq!(o.abandon(&closed, t0), 2);
        assert_eq!(o.counts().failed, 2);
        assert!(o.poll_send(t0 + Duration::from_secs(9)).is_none());
    }

    #[test]
    fn random_outcomes_end_every_message_once() {
        for seed in 0..200u64 {
            let mut rng = Rng::new(seed);
            let mut o = outbox_keeping(Some("{topic}.dlt"), Duration::from_secs(86_400));
            let mut now = Instant::now();
            let mut sending: Vec<u64> = Vec::new();
            for i in 0..50 {
                sending.push(o.submit(message(&format!("m{i}")), now).expect("new"));
            }
            let mut finished = 0;
            for _ in 0..10_000 {
                while let Some((slot, _)) = o.poll_send(now) {
                    sending.push(slot);
                }
                while let Some(n) = o.poll_notice() {
                    if !matches!(n, Notice::RetryScheduled { .. }) {
                        finished += 1;
                    }
                }
                if sending.is_empty() {
                    match o.poll_timeout() {
                        Some(at) if o.unfinished() > 0 => {
                            now = now.max(at);
                            o.handle_timeout(now);
                        }
                        _ => break,
                    }
                    continue;
                }
                let i = usize::try_from(rng.below(sending.len() as u64)).expect("small");
                let slot = sending.swap_remove(i);
                let result = match rng.below(4) {
                    0 => Ok((0, 1)),
                    1 => Err(Failure::new(FailureKind::NonRetriable, "X", "x")),
                    _ => Err(timeout()),
                };
                o.outcome(slot, result, now);
            }
            assert_eq!(o.unfinished(), 0, "seed {seed}");
            assert_eq!(finished, 50, "seed {seed}: every message ends once");
            let c = o.counts();
            assert_eq!(c.success + c.dead_lettered + c.failed, 50, "seed {seed}");
        }
    }
}
