//! The consumer handle: assign partitions, seek, and await fetched batches.

use crate::{
    driver::{AsyncRuntime, BlockingRuntime, Core, Handle, Runtime, Shared},
    names,
    pending::{Complete, Pending},
};
use event_listener::{Event, Listener};
use kasio_core::{
    CommitId, ConfigError, ConsumeError, ConsumerConfig, ConsumerEvent, FetchedBatch, Seek,
    TopicPartition, TopicPartitionOffset,
};
use std::{
    collections::HashMap,
    marker::PhantomData,
    sync::Arc,
    time::{Duration, Instant},
};

/// The outcome of a commit: `.await` it on an async runtime, or
/// [`wait`](Pending::wait) for it on threads. The commit is sent whether or not anyone
/// waits: awaiting it is the Java client's `commitSync`, dropping it `commitAsync`.
pub type Commit<R> = Pending<Result<(), ConsumeError>, R>;

type CommitResult = Result<(), ConsumeError>;

pub(crate) struct ConsumerCore {
    core: kasio_core::Consumer,
    /// Closing: the driver stops once the member left its group, or at this time.
    closing: Option<Instant>,
    /// The application's commits, by id, until their outcome.
    commits: HashMap<CommitId, Complete<CommitResult>>,
    /// An error a call for records met after records it returned: the next call's.
    stopped: Option<crate::PollError>,
}

/// What a turn leaves to do outside the lock.
#[derive(Default)]
pub(crate) struct Deferred {
    /// Callers have something to take.
    ready: bool,
    commits: Vec<(Complete<CommitResult>, CommitResult)>,
}

/// How long `close` waits for the member to leave its group (its auto commit first).
const LEAVE_TIMEOUT: Duration = Duration::from_secs(5);

impl ConsumerCore {
    /// Leaves the group, if in one (with `enable.auto.commit`, committing what was handed
    /// out first), and lets the driver stop once it has left, or after [`LEAVE_TIMEOUT`].
    fn close(&mut self, now: Instant) {
        if self.closing.is_some() {
            return;
        }
        if self.core.in_group() {
            self.core.unsubscribe(now);
        }
        self.closing = Some(now + LEAVE_TIMEOUT);
    }
}

impl Core for ConsumerCore {
    type Deferred = Deferred;

    type Client = kasio_core::Consumer;

    fn client(&mut self) -> &mut Self::Client {
        &mut self.core
    }
    fn take_events(&mut self, deferred: &mut Deferred, now: Instant) -> bool {
        while let Some(outcome) = self.core.poll_commit() {
            // Auto commits and a rebalance's have no waiter.
            if let Some(waiter) = self.commits.remove(&outcome.id) {
                let result = outcome.error.map_or(Ok(()), Err);
                deferred.commits.push((waiter, result));
            }
        }
        // Batches and events stay in the core until a caller takes them.
        deferred.ready = self.core.needs_attention();
        self.closing
            .is_some_and(|until| !self.core.in_group() || now >= until)
    }
    fn abandon(&mut self, now: Instant) {
        self.close(now);
    }
    fn shell_deadline(&self) -> Option<Instant> {
        self.closing
    }
    fn complete(deferred: &mut Deferred, event: &Event) {
        for (waiter, result) in deferred.commits.drain(..) {
            let _ = waiter.send(result);
        }
        if std::mem::take(&mut deferred.ready) {
            event.notify(usize::MAX);
        }
    }
}

/// What [`Consumer::next`] returns.
#[derive(Debug)]
#[non_exhaustive]
pub enum Fetched {
    /// A record batch of one partition.
    Batch(FetchedBatch),
    /// A partition reached its end, or stopped with an error.
    Event(ConsumerEvent),
}

/// A Kafka consumer whose driver runs on runtime `R` (each adapter names its own
/// `Consumer`), for partitions the caller assigns or a group's. Clones share one core.
///
/// Closing and dropping: [`close`](Self::close) leaves the group (committing what was
/// handed out first with `enable.auto.commit`) and completes once the driver has stopped,
/// at most 5 s later. Dropping the last clone without `close` does the same in the
/// background, as long as the runtime runs, so the group does not wait a session timeout
/// for a member that is gone.
///
/// ```no_run
/// # async fn demo<R: kasio_shell::AsyncRuntime>() -> Result<(), Box<dyn std::error::Error>> {
/// use kasio_shell::{Consumer, Fetched, Seek};
/// let consumer = Consumer::<R>::from_properties([("bootstrap.servers", "localhost:9092")])?;
/// consumer.assign(&[("orders", 0)]);
/// consumer.seek("orders", 0, Seek::Beginning);
/// while let Fetched::Batch(batch) = consumer.next().await {
///     batch.for_each(|r| println!("{} {:?}", r.offset, r.value))?;
/// }
/// # Ok(()) }
/// ```
pub struct Consumer<R> {
    pub(crate) shared: Arc<Handle<ConsumerCore>>,
    runtime: PhantomData<fn() -> R>,
}

impl<R> Clone for Consumer<R> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            runtime: PhantomData,
        }
    }
}

impl<R> std::fmt::Debug for Consumer<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer").finish_non_exhaustive()
    }
}

impl<R: Runtime> Consumer<R> {
    /// Starts a consumer and its driver.
    ///
    /// # Errors
    /// [`ConfigError`] if the settings conflict.
    pub fn new(config: ConsumerConfig) -> Result<Self, ConfigError> {
        let core = kasio_core::Consumer::new(config, R::now(), R::seed())?;
        Ok(Self {
            shared: Shared::start::<R>(ConsumerCore {
                core,
                closing: None,
                commits: HashMap::new(),
                stopped: None,
            }),
            runtime: PhantomData,
        })
    }

    /// Starts a consumer from Java-client property names.
    ///
    /// # Errors
    /// [`ConfigError`] naming an unknown key or bad value.
    pub fn from_properties<'a>(
        props: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ConfigError> {
        let mut config = ConsumerConfig::default();
        for (k, v) in props {
            config.set(k, v)?;
        }
        Self::new(config)
    }
}

impl<R> Consumer<R> {
    /// The error a call for records left for the next one.
    pub(crate) fn take_stopped(&self) -> Option<crate::PollError> {
        self.shared.lock().stopped.take()
    }

    pub(crate) fn stash_stopped(&self, error: crate::PollError) {
        self.shared.lock().stopped = Some(error);
    }

    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut kasio_core::Consumer, Instant) -> T) -> T {
        let mut inner = self.shared.lock();
        let r = f(&mut inner.core, self.shared.now());
        let wake = inner.core.needs_attention();
        drop(inner);
        if wake {
            self.shared.wake();
        }
        r
    }

    /// Replaces the assignment.
    pub fn assign<P: Into<TopicPartition>>(&self, partitions: impl IntoIterator<Item = P>) {
        let partitions = names::partitions(partitions);
        self.with(|c, now| c.assign(&names::pairs(&partitions), now));
    }

    /// Joins the group (`group.id`, with `group.protocol`: classic by default, or
    /// `consumer` for KIP-848) subscribed to `topics`; the assignment arrives as
    /// [`ConsumerEvent::Assigned`] and
    /// [`ConsumerEvent::Revoked`] from [`next`](Self::next).
    ///
    /// # Errors
    /// [`ConsumeError::NoGroup`] without a `group.id`.
    pub fn subscribe(&self, topics: &[&str]) -> Result<(), ConsumeError> {
        self.with(|c, now| c.subscribe(topics, now))
    }

    /// Joins the group subscribed to every topic whose whole name matches the regular
    /// expression `pattern`, re-matched on every metadata refresh (`metadata.max.age.ms`),
    /// so matching topics created later join the subscription.
    ///
    /// # Errors
    /// [`ConsumeError::NoGroup`] without a `group.id`; [`ConsumeError::InvalidPattern`].
    pub fn subscribe_pattern(&self, pattern: &str) -> Result<(), ConsumeError> {
        self.with(|c, now| c.subscribe_pattern(pattern, now))
    }

    /// Joins the group subscribed to the topics its coordinator matches with `pattern`
    /// (KIP-848, `group.protocol=consumer`; RE2J syntax); see
    /// [`kasio_core::Consumer::subscribe_broker_pattern`].
    ///
    /// # Errors
    /// [`ConsumeError::NoGroup`] without a `group.id`; [`ConsumeError::InvalidPattern`]
    /// with the classic protocol.
    pub fn subscribe_broker_pattern(&self, pattern: &str) -> Result<(), ConsumeError> {
        self.with(|c, now| c.subscribe_broker_pattern(pattern, now))
    }

    /// Leaves the group; a [`ConsumerEvent::Revoked`] follows once the coordinator knows.
    pub fn unsubscribe(&self) {
        self.with(|c, now| c.unsubscribe(now));
    }

    /// Whether the member is still in (or joining, or leaving) its group.
    pub fn in_group(&self) -> bool {
        self.shared.lock().core.in_group()
    }

    /// Moves a partition's position.
    pub fn seek(&self, topic: &str, partition: i32, to: Seek) {
        self.with(|c, now| c.seek(topic, partition, to, now));
    }

    /// Stops fetching partitions until [`resume`](Self::resume); batches already fetched
    /// are still handed out.
    pub fn pause<P: Into<TopicPartition>>(&self, partitions: impl IntoIterator<Item = P>) {
        self.set_paused(names::partitions(partitions), true);
    }

    /// Fetches paused partitions again.
    pub fn resume<P: Into<TopicPartition>>(&self, partitions: impl IntoIterator<Item = P>) {
        self.set_paused(names::partitions(partitions), false);
    }

    fn set_paused(&self, partitions: Vec<TopicPartition>, paused: bool) {
        self.with(|c, now| {
            for tp in &partitions {
                c.pause(&tp.topic, tp.partition, paused, now);
            }
        });
    }

    /// The group membership to pass to a transactional producer's
    /// `send_offsets_to_transaction`; `None` without a `group.id`.
    #[must_use]
    pub fn group_metadata(&self) -> Option<kasio_core::GroupMetadata> {
        self.shared.lock().core.group_metadata()
    }

    /// The offset of the next record a partition will hand out, once known.
    pub fn position(&self, topic: &str, partition: i32) -> Option<i64> {
        self.shared.lock().core.position(topic, partition)
    }

    /// The partitions assigned, by the caller or the group.
    #[must_use]
    pub fn assignment(&self) -> Vec<TopicPartition> {
        let assigned = self.shared.lock().core.assignment();
        assigned.into_iter().map(TopicPartition::from).collect()
    }

    /// Records of a partition not yet handed out, up to the end the last Fetch reported.
    #[must_use]
    pub fn lag(&self, topic: &str, partition: i32) -> Option<i64> {
        self.shared.lock().core.lag(topic, partition)
    }

    /// The broker a partition is fetched from: its leader, or the replica on
    /// `client.rack` the leader named (KIP-392).
    #[must_use]
    pub fn fetching_from(&self, topic: &str, partition: i32) -> Option<i32> {
        self.with(|c, _| c.fetching_from(topic, partition))
    }

    /// Commits offsets for the group, each the offset of the next record to read; the
    /// [`Commit`] resolves to the outcome: done, or the first error
    /// ([`ConsumeError::NoGroup`] without a `group.id`, [`ConsumeError::CommitTimeout`]
    /// after `default.api.timeout.ms`, [`ConsumeError::Closed`] if the consumer closed
    /// first). Nothing to commit resolves at once.
    pub fn commit<O: Into<TopicPartitionOffset>>(
        &self,
        offsets: impl IntoIterator<Item = O>,
    ) -> Commit<R> {
        let offsets = names::offsets(offsets);
        self.commit_with(|c, now| c.commit(&names::triples(&offsets), now))
    }

    /// Commits the position of every assigned partition (what was handed out), as
    /// [`commit`](Self::commit) does; a member holding no partitions is done at once.
    pub fn commit_positions(&self) -> Commit<R> {
        self.commit_with(kasio_core::Consumer::commit_positions)
    }

    fn commit_with(
        &self,
        start: impl FnOnce(&mut kasio_core::Consumer, Instant) -> Result<CommitId, ConsumeError>,
    ) -> Commit<R> {
        let mut inner = self.shared.lock();
        let id = match start(&mut inner.core, self.shared.now()) {
            Ok(id) => id,
            Err(e) => return Pending::ready(Err(e)),
        };
        let (tx, outcome) = Pending::channel(|| Err(ConsumeError::Closed));
        inner.commits.insert(id, tx);
        drop(inner);
        self.shared.wake();
        outcome
    }

    /// Lets the group take the partitions of the last [`ConsumerEvent::Revoking`] (with
    /// [`ConsumerConfig::hold_revocations`]): commits made before this call are answered
    /// first, so their offsets are where the next owner starts.
    ///
    /// ```no_run
    /// # async fn demo<R: kasio_shell::AsyncRuntime>() -> Result<(), Box<dyn std::error::Error>> {
    /// use kasio_shell::{Consumer, ConsumerConfig, ConsumerEvent, Fetched};
    /// let mut config = ConsumerConfig::new("localhost:9092")?;
    /// config.set("group.id", "billing")?.set("enable.auto.commit", "false")?;
    /// config.hold_revocations = true;
    /// let consumer = Consumer::<R>::new(config)?;
    /// consumer.subscribe(&["orders"])?;
    /// let mut done = std::collections::BTreeMap::new();
    /// loop {
    ///     match consumer.next().await {
    ///         Fetched::Batch(batch) => {
    ///             // ... process the batch ...
    ///             done.insert(batch.partition, batch.next_offset());
    ///         }
    ///         Fetched::Event(ConsumerEvent::Revoking { partitions }) => {
    ///             let offsets: Vec<_> = partitions
    ///                 .iter()
    ///                 .filter_map(|tp| Some(tp.at(done.remove(&tp.partition)?)))
    ///                 .collect();
    ///             consumer.commit(offsets).await?;
    ///             consumer.release_revocation();
    ///         }
    ///         _ => {}
    ///     }
    /// }
    /// # }
    /// ```
    pub fn release_revocation(&self) {
        self.with(kasio_core::Consumer::release_revocation);
    }

    /// A listener woken when something may be ready (for streams built on
    /// [`try_next`](Self::try_next)).
    pub(crate) fn listen(&self) -> event_listener::EventListener {
        self.shared.ready.listen()
    }

    /// The next fetched batch or event if one is ready, without waiting. A change of what
    /// this member owns comes first (as the Java client runs its rebalance listener before
    /// returning records); the other events, end of partition among them, come after the
    /// batches fetched before them.
    #[must_use]
    pub fn try_next(&self) -> Option<Fetched> {
        self.with(|c, now| {
            if let Some(e) = c.poll_rebalance_event() {
                return Some(Fetched::Event(e));
            }
            if let Some(b) = c.poll_batch() {
                c.resume_fetching(now);
                return Some(Fetched::Batch(b));
            }
            c.poll_event().map(Fetched::Event)
        })
    }

    /// Leaves the group, if in one (with `enable.auto.commit`, committing what was handed
    /// out first), then stops the driver and closes the connections; the driver stops
    /// after 5 s whether or not the coordinator answered. Completes once it has stopped:
    /// `.await` it, or [`wait`](Pending::wait) for it on threads.
    pub fn close(&self) -> Pending<(), R> {
        self.shared.lock().close(self.shared.now());
        let done = self.shared.finished();
        self.shared.wake();
        done
    }
}

impl<R: AsyncRuntime> Consumer<R> {
    /// The next fetched batch or event, waiting for one.
    pub async fn next(&self) -> Fetched {
        // Listening costs an allocation and a lock: only when nothing is ready.
        if let Some(got) = self.try_next() {
            return got;
        }
        loop {
            let ready = self.shared.ready.listen();
            if let Some(got) = self.try_next() {
                return got;
            }
            ready.await;
        }
    }

    /// The fetched batches and events as a [`futures_core::Stream`], which never ends.
    ///
    /// ```no_run
    /// # async fn demo<R: kasio_shell::AsyncRuntime>(consumer: kasio_shell::Consumer<R>) {
    /// use futures_lite::StreamExt;
    /// let mut fetched = consumer.stream();
    /// while let Some(kasio_shell::Fetched::Batch(batch)) = fetched.next().await {
    ///     println!("a batch of partition {}", batch.partition);
    /// }
    /// # }
    /// ```
    #[must_use]
    pub fn stream(&self) -> FetchedStream<'_, R> {
        FetchedStream {
            consumer: self,
            listener: None,
        }
    }
}

impl<R: BlockingRuntime> Consumer<R> {
    /// The next fetched batch or event, blocking the thread up to `timeout` for one;
    /// `None` if none came.
    #[must_use]
    pub fn poll(&self, timeout: Duration) -> Option<Fetched> {
        if let Some(got) = self.try_next() {
            return Some(got);
        }
        let deadline = self.shared.now() + timeout;
        loop {
            let ready = self.shared.ready.listen();
            if let Some(got) = self.try_next() {
                return Some(got);
            }
            if ready.wait_deadline(deadline).is_none() && self.shared.now() >= deadline {
                return None;
            }
        }
    }
}

/// A consumer's fetched batches and events as a stream; see [`Consumer::stream`].
pub struct FetchedStream<'a, R> {
    consumer: &'a Consumer<R>,
    /// Taken when nothing was ready, so a wake-up after the check is not missed.
    listener: Option<event_listener::EventListener>,
}

impl<R> std::fmt::Debug for FetchedStream<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FetchedStream").finish_non_exhaustive()
    }
}

impl<R> futures_core::Stream for FetchedStream<'_, R> {
    type Item = Fetched;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Fetched>> {
        use std::{future::Future, pin::Pin, task::Poll};
        let this = self.get_mut();
        loop {
            if let Some(listener) = &mut this.listener {
                if Pin::new(listener).poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.listener = None;
            } else if let Some(fetched) = this.consumer.try_next() {
                // Nothing to listen for when something is ready.
                return Poll::Ready(Some(fetched));
            }
            let listener = this.consumer.shared.ready.listen();
            if let Some(fetched) = this.consumer.try_next() {
                return Poll::Ready(Some(fetched));
            }
            this.listener = Some(listener);
        }
    }
}
