//! The share consumer handle: a queue over a share group (KIP-932). Each record comes
//! as an [`Acquired`], which any task may settle: `ack`, `release`, `reject`, or `renew`
//! its lock to keep it longer (the receipt handle of a message queue).

use crate::{
    dead_letter::{self, DeadLetter, DeadLettered, RejectError},
    driver::{AsyncRuntime, BlockingRuntime, Core, Handle, Runtime, Shared},
    pending::{Complete, Pending},
    producer::first,
};
use event_listener::{Event, Listener};
use kasio_core::{
    AcknowledgeError, AcknowledgeType, Acknowledged, BrokerDeadLetter, CommitId, ConfigError,
    ConsumeError, ConsumerRecord, ErrorCode, Record, ShareConsumerConfig, ShareEvent,
    ShareMemberState, TopicPartition,
};
use std::{
    collections::{HashMap, VecDeque},
    marker::PhantomData,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

type CommitResult = Result<(), ConsumeError>;

/// Who hears of each acknowledgement's outcome.
type OnAcknowledged = Arc<dyn Fn(&Acknowledged) + Send + Sync>;

pub(crate) struct ShareCore {
    core: kasio_core::ShareConsumer,
    /// Records of the batch taken last, not yet handed out.
    records: VecDeque<(ConsumerRecord, i16, Instant)>,
    closing: Option<Instant>,
    commits: HashMap<CommitId, Complete<CommitResult>>,
    on_acknowledged: Option<OnAcknowledged>,
    timeout: Duration,
    /// Whether those waiting to learn the broker's dead-letter topic were woken.
    dead_letter_told: bool,
}

#[derive(Default)]
pub(crate) struct Deferred {
    ready: bool,
    commits: Vec<(Complete<CommitResult>, CommitResult)>,
    acknowledged: Vec<Acknowledged>,
    on_acknowledged: Option<OnAcknowledged>,
}

/// How long `close` waits for the member to settle its records and leave.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

impl ShareCore {
    fn close(&mut self, now: Instant) {
        if self.closing.is_some() {
            return;
        }
        // Records taken from the core but never handed out go back to the group: in
        // implicit mode closing would accept them unread.
        for (r, _, _) in self.records.drain(..) {
            let _ = self.core.acknowledge(
                &r.topic,
                r.partition,
                r.offset,
                AcknowledgeType::Release,
                now,
            );
        }
        self.core.close(now);
        self.closing = Some(now + CLOSE_TIMEOUT);
    }
}

impl Core for ShareCore {
    type Deferred = Deferred;
    type Client = kasio_core::ShareConsumer;

    fn client(&mut self) -> &mut Self::Client {
        &mut self.core
    }

    fn take_events(&mut self, deferred: &mut Deferred, now: Instant) -> bool {
        while let Some(outcome) = self.core.poll_commit() {
            if let Some(waiter) = self.commits.remove(&outcome.id) {
                let result = match outcome.error {
                    None => Ok(()),
                    Some(ErrorCode::RequestTimedOut) => {
                        Err(ConsumeError::CommitTimeout(self.timeout))
                    }
                    Some(code) => Err(ConsumeError::Broker(code)),
                };
                deferred.commits.push((waiter, result));
            }
        }
        while let Some(report) = self.core.poll_acknowledged() {
            if self.on_acknowledged.is_some() {
                deferred.acknowledged.push(report);
            }
        }
        deferred.on_acknowledged.clone_from(&self.on_acknowledged);
        deferred.ready = self.core.needs_attention() || !self.records.is_empty();
        if !self.dead_letter_told && self.core.broker_dead_letter().is_known() {
            self.dead_letter_told = true;
            deferred.ready = true;
        }
        self.closing
            .is_some_and(|until| self.core.is_closed() || now >= until)
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
        if let Some(f) = &deferred.on_acknowledged {
            for report in deferred.acknowledged.drain(..) {
                f(&report);
            }
        }
        deferred.acknowledged.clear();
        if std::mem::take(&mut deferred.ready) {
            event.notify(usize::MAX);
        }
    }
}

/// A record a share group handed this member: read it, then settle it from any task with
/// [`ack`](Self::ack), [`release`](Self::release), [`reject`](Self::reject), or keep it
/// longer with [`renew`](Self::renew). A record never settled is accepted by the next
/// read in implicit mode (`share.acknowledgement.mode`, the default), released at close
/// in explicit mode, and otherwise delivered again once its lock runs out.
pub struct Acquired<R> {
    record: ConsumerRecord,
    delivery_count: i16,
    lock_until: Instant,
    consumer: ShareConsumer<R>,
}

impl<R> std::fmt::Debug for Acquired<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acquired")
            .field("record", &self.record)
            .field("delivery_count", &self.delivery_count)
            .finish_non_exhaustive()
    }
}

impl<R> Acquired<R> {
    /// The record (topic, partition, offset, key, value, headers).
    pub fn record(&self) -> &ConsumerRecord {
        &self.record
    }

    /// How many times the group has delivered it, this delivery included.
    pub fn delivery_count(&self) -> i16 {
        self.delivery_count
    }

    /// When its acquisition lock runs out, as this member's clock saw it granted.
    pub fn lock_until(&self) -> Instant {
        self.lock_until
    }

    /// Settles it as `kind`; the outcome is reported to
    /// [`ShareConsumer::on_acknowledged`] and to commits.
    ///
    /// # Errors
    /// [`AcknowledgeError::NotAcquired`] if it was settled already (or accepted by the
    /// next read, in implicit mode); [`AcknowledgeError::Closed`] once closing.
    pub fn acknowledge(&self, kind: AcknowledgeType) -> Result<(), AcknowledgeError> {
        let r = &self.record;
        self.consumer
            .with(|c, now| c.acknowledge(&r.topic, r.partition, r.offset, kind, now))
    }

    /// Processed: never delivered again.
    ///
    /// # Errors
    /// As [`acknowledge`](Self::acknowledge).
    pub fn ack(&self) -> Result<(), AcknowledgeError> {
        self.acknowledge(AcknowledgeType::Accept)
    }

    /// Not processed: delivered again, its delivery count one higher.
    ///
    /// # Errors
    /// As [`acknowledge`](Self::acknowledge).
    pub fn release(&self) -> Result<(), AcknowledgeError> {
        self.acknowledge(AcknowledgeType::Release)
    }

    /// Not processed, try again later: released once `delay` has passed, its lock renewed
    /// until then so no member gets it sooner (the group must set
    /// `share.renew.acknowledge.enable`). A zero delay releases at once.
    ///
    /// # Errors
    /// As [`acknowledge`](Self::acknowledge).
    pub fn nack(&self, delay: Duration) -> Result<(), AcknowledgeError> {
        let r = &self.record;
        self.consumer.with(|c, now| {
            if delay.is_zero() {
                c.acknowledge(
                    &r.topic,
                    r.partition,
                    r.offset,
                    AcknowledgeType::Release,
                    now,
                )
            } else {
                c.release_after(&r.topic, r.partition, r.offset, delay, now)
            }
        })
    }

    /// Unprocessable: archived, never delivered again (the broker's dead-letter topic
    /// takes it where the cluster has one).
    ///
    /// # Errors
    /// As [`acknowledge`](Self::acknowledge).
    pub fn reject(&self) -> Result<(), AcknowledgeError> {
        self.acknowledge(AcknowledgeType::Reject)
    }

    /// Still being processed: the lock starts over (the group must set
    /// `share.renew.acknowledge.enable`); settle it later.
    ///
    /// # Errors
    /// As [`acknowledge`](Self::acknowledge).
    pub fn renew(&self) -> Result<(), AcknowledgeError> {
        self.acknowledge(AcknowledgeType::Renew)
    }
}

/// Where a rejection goes, as far as is known now.
enum Route<R> {
    /// No dead letter of the client's: a plain REJECT.
    Reject,
    /// The broker writes the group's dead letters, to this topic.
    Broker(String),
    /// The client writes the dead letter.
    Client(Arc<DeadLetter<R>>),
    /// Whether the broker writes one is not known yet.
    Unknown,
}

/// What `reject_with` does next.
enum Next<R> {
    /// Nothing: the record is rejected.
    Done(DeadLettered),
    /// Writes a letter with these headers, then rejects.
    Write(Arc<DeadLetter<R>>, Vec<(String, Vec<u8>)>),
}

impl<R> Acquired<R> {
    /// Where a rejection goes; `waited` once the wait to learn it is over.
    fn route(&self, waited: bool) -> Route<R> {
        let Some(dl) = lock(&self.consumer.dead_letter).clone() else {
            return Route::Reject;
        };
        if !dl.broker_first {
            return Route::Client(dl);
        }
        match self.consumer.shared.lock().core.broker_dead_letter() {
            BrokerDeadLetter::Topic(t) => Route::Broker(t.clone()),
            BrokerDeadLetter::None => Route::Client(dl),
            // Past the wait the client writes it: a copy too many beats a letter lost.
            BrokerDeadLetter::Unknown if waited => Route::Client(dl),
            BrokerDeadLetter::Unknown => Route::Unknown,
        }
    }

    /// Until when to wait to learn the route.
    fn route_deadline(&self) -> Instant {
        self.consumer.shared.now() + self.consumer.shared.lock().timeout
    }

    /// Rejects the record where no copy of the client's is due; else the letter to write.
    fn letter_for(&self, route: Route<R>, reason: &str) -> Result<Next<R>, RejectError> {
        let broker_topic = match route {
            Route::Client(dl) => {
                let group = self.consumer.shared.lock().core.group_id().to_string();
                let headers =
                    dead_letter::headers(&self.record, &group, self.delivery_count, reason);
                return Ok(Next::Write(dl, headers));
            }
            Route::Broker(topic) => Some(topic),
            Route::Reject | Route::Unknown => None,
        };
        self.reject()?;
        Ok(Next::Done(
            broker_topic.map_or(DeadLettered::Rejected, DeadLettered::Broker),
        ))
    }

    /// Once the copy is written (or not): rejected, or released so it is not lost.
    fn after_publish(
        &self,
        written: Result<kasio_core::RecordMetadata, kasio_core::ProduceError>,
    ) -> Result<DeadLettered, RejectError> {
        match written {
            Ok(meta) => {
                self.reject()?;
                Ok(DeadLettered::Client(meta))
            }
            Err(e) => {
                let _ = self.release();
                Err(RejectError::Publish(e))
            }
        }
    }
}

/// The dead letter for `acquired`: its key and value, `headers`, to the client's topic.
fn letter<'a, R>(
    acquired: &'a Acquired<R>,
    dl: &'a DeadLetter<R>,
    headers: &'a [(&'a str, &'a [u8])],
) -> Record<'a> {
    let mut r = Record::new(&dl.topic);
    r.key = acquired.record.key.as_deref();
    r.value = acquired.record.value.as_deref();
    r.headers = headers;
    r
}

fn header_refs(headers: &[(String, Vec<u8>)]) -> Vec<(&str, &[u8])> {
    headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_slice()))
        .collect()
}

impl<R: AsyncRuntime> Acquired<R> {
    /// Unprocessable, and why: [`reject`](Self::reject)ed, after its copy is written to
    /// the consumer's [`dead_letter`](ShareConsumer::dead_letter) topic with `reason` in
    /// its headers, unless the broker writes the group's dead letters (it then writes its
    /// own message, not `reason`). Without a dead letter of the client's, a plain reject.
    ///
    /// The copy is written while the record is held, so a crash in between leaves a
    /// record delivered again and, at worst, a dead letter written twice; never lost.
    ///
    /// # Errors
    /// [`RejectError::Publish`] if the copy was not written (the record is released,
    /// to come again); [`RejectError::Acknowledge`] as [`acknowledge`](Self::acknowledge).
    pub async fn reject_with(&self, reason: &str) -> Result<DeadLettered, RejectError> {
        let until = self.route_deadline();
        let mut waited = false;
        let route = loop {
            let told = self.consumer.shared.ready.listen();
            match self.route(waited) {
                Route::Unknown => {}
                known => break known,
            }
            waited =
                !first(told, R::sleep_until(until)).await && self.consumer.shared.now() >= until;
        };
        let (dl, headers) = match self.letter_for(route, reason)? {
            Next::Done(done) => return Ok(done),
            Next::Write(dl, headers) => (dl, headers),
        };
        let refs = header_refs(&headers);
        let written = dl.producer.send_and_wait(letter(self, &dl, &refs)).await;
        self.after_publish(written)
    }
}

impl<R: BlockingRuntime> Acquired<R> {
    /// As [`reject_with`](Self::reject_with), blocking the thread until the dead letter
    /// is written.
    ///
    /// # Errors
    /// As [`reject_with`](Self::reject_with).
    pub fn reject_with_blocking(&self, reason: &str) -> Result<DeadLettered, RejectError> {
        let until = self.route_deadline();
        let mut waited = false;
        let route = loop {
            let told = self.consumer.shared.ready.listen();
            match self.route(waited) {
                Route::Unknown => {}
                known => break known,
            }
            waited = told.wait_deadline(until).is_none() && self.consumer.shared.now() >= until;
        };
        let (dl, headers) = match self.letter_for(route, reason)? {
            Next::Done(done) => return Ok(done),
            Next::Write(dl, headers) => (dl, headers),
        };
        let refs = header_refs(&headers);
        let written = dl
            .producer
            .send_blocking(letter(self, &dl, &refs))
            .map_err(kasio_core::ProduceError::from)
            .and_then(Pending::wait);
        self.after_publish(written)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What [`ShareConsumer::next`] returns.
#[derive(Debug)]
#[non_exhaustive]
pub enum ShareFetched<R> {
    /// A record.
    Record(Acquired<R>),
    /// An assignment, an error.
    Event(ShareEvent),
}

/// A share-group consumer (KIP-932) whose driver runs on runtime `R`: a queue over Kafka
/// topics, many members reading the same partitions, each record settled on its own.
/// Clones share one member.
///
/// ```no_run
/// # async fn demo<R: kasio_shell::AsyncRuntime>() -> Result<(), Box<dyn std::error::Error>> {
/// use kasio_shell::{ShareConsumer, ShareFetched};
/// let queue = ShareConsumer::<R>::from_properties([
///     ("bootstrap.servers", "localhost:9092"),
///     ("group.id", "jobs"),
///     ("share.acknowledgement.mode", "explicit"),
/// ])?;
/// queue.subscribe(&["jobs"]);
/// while let ShareFetched::Record(job) = queue.next().await {
///     match job.record().value.as_deref() {
///         Some(b"poison") => job.reject()?,
///         Some(_) => job.ack()?,
///         None => job.release()?,
///     }
/// }
/// # Ok(()) }
/// ```
pub struct ShareConsumer<R> {
    shared: Arc<Handle<ShareCore>>,
    dead_letter: Arc<Mutex<Option<Arc<DeadLetter<R>>>>>,
    runtime: PhantomData<fn() -> R>,
}

impl<R> Clone for ShareConsumer<R> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            dead_letter: self.dead_letter.clone(),
            runtime: PhantomData,
        }
    }
}

impl<R> std::fmt::Debug for ShareConsumer<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShareConsumer").finish_non_exhaustive()
    }
}

impl<R: Runtime> ShareConsumer<R> {
    /// Starts a share consumer and its driver.
    ///
    /// # Errors
    /// [`ConfigError`] if the settings conflict (`group.id` is required).
    pub fn new(config: ShareConsumerConfig) -> Result<Self, ConfigError> {
        let timeout = config.default_api_timeout;
        let core = kasio_core::ShareConsumer::new(config, R::now(), R::seed())?;
        Ok(Self {
            shared: Shared::start::<R>(ShareCore {
                core,
                records: VecDeque::new(),
                closing: None,
                commits: HashMap::new(),
                on_acknowledged: None,
                timeout,
                dead_letter_told: false,
            }),
            dead_letter: Arc::default(),
            runtime: PhantomData,
        })
    }

    /// Starts a share consumer from Java-client property names.
    ///
    /// # Errors
    /// [`ConfigError`] naming an unknown key or bad value.
    pub fn from_properties<'a>(
        props: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ConfigError> {
        let mut config = ShareConsumerConfig::default();
        for (k, v) in props {
            config.set(k, v)?;
        }
        Self::new(config)
    }
}

impl<R> ShareConsumer<R> {
    fn with<T>(&self, f: impl FnOnce(&mut kasio_core::ShareConsumer, Instant) -> T) -> T {
        let mut inner = self.shared.lock();
        let r = f(&mut inner.core, self.shared.now());
        let wake = inner.core.needs_attention();
        drop(inner);
        if wake {
            self.shared.wake();
        }
        r
    }

    /// Joins the share group subscribed to `topics`.
    pub fn subscribe(&self, topics: &[&str]) {
        self.with(|c, now| c.subscribe(topics, now));
    }

    /// Gives [`Acquired::reject_with`] a dead-letter topic of the client's own, for
    /// where the broker writes no dead letters for the group. Unless the dead letter is
    /// [`always`](DeadLetter::always) the client's, the member reads the group's configs
    /// (`errors.deadletterqueue.topic.name`, needing the right to describe them; without
    /// it the client's topic is used) now and every `metadata.max.age.ms`.
    pub fn dead_letter(&self, dead_letter: DeadLetter<R>) {
        if dead_letter.broker_first {
            self.with(|c, now| c.watch_dead_letter(now));
        }
        *lock(&self.dead_letter) = Some(Arc::new(dead_letter));
    }

    /// Calls `f` with every acknowledgement's outcome as the broker answers it (on the
    /// driver's task: keep it short). Without one, outcomes reach only commits.
    pub fn on_acknowledged(&self, f: impl Fn(&Acknowledged) + Send + Sync + 'static) {
        self.shared.lock().on_acknowledged = Some(Arc::new(f));
    }

    /// The member's id in its group.
    #[must_use]
    pub fn member_id(&self) -> String {
        self.shared.lock().core.member_id().to_string()
    }

    /// Where the member is.
    #[must_use]
    pub fn member_state(&self) -> ShareMemberState {
        self.shared.lock().core.member_state()
    }

    /// The partitions the group assigned this member.
    #[must_use]
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.shared.lock().core.assignment()
    }

    /// The next record or event if one is ready, without waiting. In implicit mode,
    /// asking for the next record accepts the ones handed out before.
    #[must_use]
    pub fn try_next(&self) -> Option<ShareFetched<R>> {
        let mut inner = self.shared.lock();
        let inner = &mut *inner;
        if let Some(e) = inner.core.poll_event() {
            return Some(ShareFetched::Event(e));
        }
        loop {
            if let Some((record, delivery_count, lock_until)) = inner.records.pop_front() {
                return Some(ShareFetched::Record(Acquired {
                    record,
                    delivery_count,
                    lock_until,
                    consumer: self.clone(),
                }));
            }
            let Some(batch) = inner.core.poll_batch() else {
                // Asking may have accepted what was handed out: the driver sends it.
                if inner.core.needs_attention() {
                    self.shared.wake();
                }
                return None;
            };
            match batch.iter() {
                Ok(records) => {
                    for r in records {
                        match r {
                            Ok(r) => inner.records.push_back((
                                r.record,
                                r.delivery_count,
                                batch.lock_until(),
                            )),
                            // The records that do not decode stay unsettled: released at
                            // close, or delivered again when their lock runs out.
                            Err(_) => break,
                        }
                    }
                }
                Err(_) => continue,
            }
            if inner.core.needs_attention() {
                self.shared.wake();
            }
        }
    }

    /// Sends every acknowledgement made so far (in implicit mode, accepting what was
    /// handed out) and resolves once the broker answered them all: done, or the first
    /// error ([`ConsumeError::Broker`] with `InvalidRecordState` for a record whose lock
    /// ran out, [`ConsumeError::CommitTimeout`], [`ConsumeError::Closed`]).
    pub fn commit(&self) -> Pending<CommitResult, R> {
        let mut inner = self.shared.lock();
        let id = inner.core.commit(self.shared.now());
        let (tx, outcome) = Pending::channel(|| Err(ConsumeError::Closed));
        inner.commits.insert(id, tx);
        drop(inner);
        self.shared.wake();
        outcome
    }

    /// Settles what is handed out (accepted in implicit mode, released in explicit mode),
    /// releases what is buffered, closes the share sessions and leaves the group, then
    /// stops the driver, at most 5 s later. Completes once it has stopped.
    pub fn close(&self) -> Pending<(), R> {
        self.shared.lock().close(self.shared.now());
        let done = self.shared.finished();
        self.shared.wake();
        done
    }
}

impl<R> ShareConsumer<R> {
    /// The driver's clock.
    pub(crate) fn now(&self) -> Instant {
        self.shared.now()
    }

    /// Wakes when a record, an event or an answer may be ready.
    pub(crate) fn listen(&self) -> event_listener::EventListener {
        self.shared.ready.listen()
    }

    /// Stops or starts asking the group for records (the core's `set_fetching`).
    pub(crate) fn set_fetching(&self, on: bool) {
        self.shared.lock().core.set_fetching(on);
        self.shared.wake();
    }

    /// Whether nothing is buffered and the last fetches came back empty.
    pub(crate) fn is_drained(&self) -> bool {
        let inner = self.shared.lock();
        inner.records.is_empty() && inner.core.is_drained()
    }

    /// Settles a record handed out, by its coordinates.
    pub(crate) fn settle(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        kind: AcknowledgeType,
    ) -> Result<(), AcknowledgeError> {
        self.with(|c, now| c.acknowledge(topic, partition, offset, kind, now))
    }
}

impl<R: AsyncRuntime> ShareConsumer<R> {
    /// The next record or event, waiting for one.
    pub async fn next(&self) -> ShareFetched<R> {
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
}

impl<R: BlockingRuntime> ShareConsumer<R> {
    /// The next record or event, blocking the thread up to `timeout` for one; `None` if
    /// none came.
    #[must_use]
    pub fn poll(&self, timeout: Duration) -> Option<ShareFetched<R>> {
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
