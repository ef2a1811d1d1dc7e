//! The producer handle: cloneable, usable from any task or thread.

use crate::{
    driver::{AsyncRuntime, BlockingRuntime, Core, Handle, Runtime, Shared},
    pending::{Complete, Pending},
};
use event_listener::{Event, EventListener, Listener};
use kasio_core::{
    ConfigError, Event as CoreEvent, GroupMetadata, ProduceError, ProducerConfig, Record,
    RecordMetadata, SendError, TopicPartitionOffset, TxnError, TxnEvent, TxnOp,
};
use std::{
    collections::HashMap,
    marker::PhantomData,
    sync::Arc,
    time::{Duration, Instant},
};

/// Resolves to a record's delivery result.
pub type Delivery<R> = Pending<Result<RecordMetadata, ProduceError>, R>;

/// Resolves once every record of a [`Producer::send_batch`] has its result: how many were
/// delivered, or the first error.
pub type GroupDelivery<R> = Pending<Result<usize, ProduceError>, R>;

fn closed<T>() -> Result<T, ProduceError> {
    Err(ProduceError::Closed)
}

/// A layer told of its records' deliveries by a call, with the number it sent each under:
/// one callback for the producer, so a record costs no channel of its own.
pub(crate) type OnDelivery = Arc<dyn Fn(u64, Result<RecordMetadata, ProduceError>) + Send + Sync>;

/// Who hears of a record's delivery: its own [`Delivery`], a group sent together, or the
/// producer's [`OnDelivery`] callback, with this number.
pub(crate) enum Token {
    One(Complete<Result<RecordMetadata, ProduceError>>),
    /// A record of the group with this id in [`ProducerCore::groups`].
    Group(u64),
    Notify(u64),
}

// A batch keeps a token per record: it stays two words.
const _: () = assert!(std::mem::size_of::<Token>() <= 16);

/// Records sent with one [`Producer::send_batch`]: one result for all of them, counted
/// under the core's lock, so a record costs no atomic operation or channel of its own.
struct Group {
    /// Records buffered and not yet delivered.
    remaining: usize,
    /// Records buffered in all.
    count: usize,
    first_error: Option<ProduceError>,
    /// Every record has been handed over: the group ends when none remain.
    sealed: bool,
    done: Complete<Result<usize, ProduceError>>,
}

impl Group {
    fn result(self) -> Settled<usize> {
        let result = match self.first_error {
            Some(e) => Err(e),
            None => Ok(self.count),
        };
        (self.done, result)
    }
}

/// Records a group buffers per hold of the lock: enough to spread its cost, few enough
/// that the driver never waits long for it.
const GROUP_CHUNK: usize = 256;

/// The records of one `send_batch` call on their way into the core.
struct GroupSend<'p, 'a, I> {
    group: Sealer<'p>,
    records: I,
    /// Records taken from `records` and not yet buffered.
    chunk: Vec<Record<'a>>,
    /// When waiting for room gives up: `max.block.ms` after the last record buffered.
    deadline: Option<Instant>,
    room: Option<EventListener>,
}

/// Seals its group when dropped: every record the group will have has been handed over.
struct Sealer<'p> {
    shared: &'p Shared<ProducerCore>,
    id: u64,
}

impl Drop for Sealer<'_> {
    fn drop(&mut self) {
        let mut deferred = Deliveries::default();
        self.shared.lock().seal(self.id, &mut deferred);
        deferred.settle();
    }
}

/// Consecutive deliveries of one group (a batch's records, mostly), settled at once.
struct Run {
    group: u64,
    records: usize,
    error: Option<ProduceError>,
}

/// The core and the waiters for its flush and close events.
pub(crate) struct ProducerCore {
    core: kasio_core::Producer<Token>,
    flush_waiters: Vec<Complete<()>>,
    close_waiters: Vec<Complete<()>>,
    /// The core has closed and its driver stopped: nothing waits for it any more.
    closed: bool,
    /// Transactional operations waiting for their event, oldest first.
    txn_waiters: Vec<(TxnOp, Complete<TxnResult>)>,
    /// The groups of [`Producer::send_batch`] calls with records to deliver, by id.
    groups: HashMap<u64, Group>,
    next_group: u64,
    /// Told of every [`Token::Notify`] record's delivery.
    on_delivery: Option<OnDelivery>,
}

impl ProducerCore {
    fn new_group(&mut self, done: Complete<Result<usize, ProduceError>>) -> u64 {
        let id = self.next_group;
        self.next_group += 1;
        self.groups.insert(
            id,
            Group {
                remaining: 0,
                count: 0,
                first_error: None,
                sealed: false,
                done,
            },
        );
        id
    }

    /// `records` more of group `id` were buffered.
    fn count(&mut self, id: u64, records: usize) {
        if let Some(g) = self.groups.get_mut(&id) {
            g.remaining += records;
            g.count += records;
        }
    }

    /// A run of deliveries: the group's result once it is sealed and all are in.
    fn settle(&mut self, run: Run, deferred: &mut Deliveries) {
        let Some(g) = self.groups.get_mut(&run.group) else {
            return;
        };
        g.remaining = g.remaining.saturating_sub(run.records);
        if let Some(e) = run.error {
            g.first_error.get_or_insert(e);
        }
        if g.sealed && g.remaining == 0 {
            self.finish(run.group, deferred);
        }
    }

    /// Every record of group `id` has been handed to the core.
    fn seal(&mut self, id: u64, deferred: &mut Deliveries) {
        if let Some(g) = self.groups.get_mut(&id) {
            g.sealed = true;
            if g.remaining == 0 {
                self.finish(id, deferred);
            }
        }
    }

    fn finish(&mut self, id: u64, deferred: &mut Deliveries) {
        if let Some(g) = self.groups.remove(&id) {
            deferred.groups.push(g.result());
        }
    }

    /// A delivery, counted into `run` when it belongs to a group.
    fn deliver(
        &mut self,
        token: Token,
        result: Result<RecordMetadata, ProduceError>,
        run: &mut Option<Run>,
        deferred: &mut Deliveries,
    ) {
        match token {
            Token::One(tx) => deferred.one.push((tx, result)),
            Token::Group(id) => self.run(id, result.err(), run, deferred),
            Token::Notify(n) => deferred.notify.push((n, result)),
        }
    }

    fn run(
        &mut self,
        id: u64,
        error: Option<ProduceError>,
        run: &mut Option<Run>,
        deferred: &mut Deliveries,
    ) {
        if let Some(r) = run
            && r.group == id
        {
            r.records += 1;
            if let Some(e) = error {
                r.error.get_or_insert(e);
            }
            return;
        }
        if let Some(done) = run.replace(Run {
            group: id,
            records: 1,
            error,
        }) {
            self.settle(done, deferred);
        }
    }
}

impl Drop for ProducerCore {
    fn drop(&mut self) {
        // Only when the runtime stopped the driver before the core closed (a tokio runtime
        // shut down, say): what was still buffered can no longer be delivered.
        let lost = self.core.outstanding();
        if !self.closed && lost > 0 {
            crate::undelivered::count(lost);
        }
    }
}

/// How a transactional operation ended.
type TxnResult = Result<(), TxnError>;

/// Which operation a transactional event ends, and how.
fn txn_outcome(event: TxnEvent) -> Option<(TxnOp, TxnResult)> {
    Some(match event {
        TxnEvent::Initialized => (TxnOp::Init, Ok(())),
        TxnEvent::OffsetsSent => (TxnOp::SendOffsets, Ok(())),
        TxnEvent::Committed => (TxnOp::Commit, Ok(())),
        TxnEvent::Aborted => (TxnOp::Abort, Ok(())),
        TxnEvent::Failed { op, error } => (op, Err(error)),
        _ => return None,
    })
}

/// A future to complete, and its result.
type Settled<T> = (Complete<Result<T, ProduceError>>, Result<T, ProduceError>);

/// Deliveries to complete outside the lock.
#[derive(Default)]
pub(crate) struct Deliveries {
    one: Vec<Settled<RecordMetadata>>,
    groups: Vec<Settled<usize>>,
    notify: Vec<(u64, Result<RecordMetadata, ProduceError>)>,
    /// The producer's callback for `notify`, taken with them.
    on_delivery: Option<OnDelivery>,
    /// Records were delivered: their room in the buffer is free.
    freed: bool,
    waiters: Vec<Complete<()>>,
    txn: Vec<(Complete<TxnResult>, TxnResult)>,
}

impl Deliveries {
    /// Completes the deliveries' futures.
    fn settle(&mut self) {
        for (tx, result) in self.one.drain(..) {
            let _ = tx.send(result);
        }
        for (tx, result) in self.groups.drain(..) {
            let _ = tx.send(result);
        }
        if let Some(f) = &self.on_delivery {
            for (n, result) in self.notify.drain(..) {
                f(n, result);
            }
        }
        self.notify.clear();
    }
}

impl Core for ProducerCore {
    type Deferred = Deliveries;

    type Client = kasio_core::Producer<Token>;

    fn client(&mut self) -> &mut Self::Client {
        &mut self.core
    }
    fn take_events(&mut self, deferred: &mut Deliveries, _now: Instant) -> bool {
        if deferred.on_delivery.is_none() {
            deferred.on_delivery.clone_from(&self.on_delivery);
        }
        let mut closed = false;
        let mut run = None;
        loop {
            // An acknowledged batch whole: a group's records are counted, not settled one
            // by one, and no record's metadata is made unless a caller waits for it.
            if let Some(mut batch) = self.core.poll_delivered() {
                deferred.freed = true;
                while let Some((token, offset, timestamp)) = batch.pop() {
                    match token {
                        Token::One(tx) => deferred
                            .one
                            .push((tx, Ok(batch.metadata(offset, timestamp)))),
                        Token::Group(id) => self.run(id, None, &mut run, deferred),
                        Token::Notify(n) => {
                            deferred
                                .notify
                                .push((n, Ok(batch.metadata(offset, timestamp))));
                        }
                    }
                }
                self.core.reuse(batch);
                continue;
            }
            let Some(event) = self.core.poll_event() else {
                break;
            };
            match event {
                CoreEvent::Delivery { token, result } => {
                    deferred.freed = true;
                    self.deliver(token, result, &mut run, deferred);
                }
                CoreEvent::Flushed => deferred.waiters.append(&mut self.flush_waiters),
                CoreEvent::Closed => {
                    deferred.waiters.append(&mut self.close_waiters);
                    deferred.waiters.append(&mut self.flush_waiters);
                    for (_, w) in self.txn_waiters.drain(..) {
                        deferred.txn.push((w, Err(TxnError::Closed)));
                    }
                    self.closed = true;
                    closed = true;
                }
                CoreEvent::Transaction(e) => {
                    if let Some((op, result)) = txn_outcome(e)
                        && let Some(i) = self.txn_waiters.iter().position(|(o, _)| *o == op)
                    {
                        let (_, w) = self.txn_waiters.remove(i);
                        deferred.txn.push((w, result));
                    }
                }
                _ => {}
            }
        }
        if let Some(r) = run {
            self.settle(r, deferred);
        }
        closed
    }
    fn abandon(&mut self, now: Instant) {
        if !self.closed {
            // Delivers what is buffered, each record bounded by `delivery.timeout.ms`.
            self.core.close(now);
        }
    }
    fn complete(deferred: &mut Deliveries, ready: &Event) {
        let freed = std::mem::take(&mut deferred.freed);
        deferred.settle();
        for w in deferred.waiters.drain(..) {
            let _ = w.send(());
        }
        for (w, result) in deferred.txn.drain(..) {
            let _ = w.send(result);
        }
        if freed {
            ready.notify(usize::MAX);
        }
    }
}

/// A Kafka producer whose driver runs on runtime `R` (each adapter names its own
/// `Producer`). Clones share one core and one set of connections.
///
/// The core sits behind a mutex rather than a channel: `send` encodes the record straight
/// into its batch under the lock, so a record is copied once and never queued as a message.
/// The driver takes the same lock only to feed input and drain output.
///
/// Closing and dropping: [`close`](Self::close) stops taking records, delivers what is
/// buffered (each record within `delivery.timeout.ms`) and completes once the driver has
/// stopped. Dropping the last clone without `close` does the same in the background, as
/// long as the runtime runs; records a stopped runtime strands are counted
/// ([`undelivered_on_drop`](crate::undelivered_on_drop)) and reported on standard error.
///
/// ```no_run
/// # async fn demo<R: kasio_shell::AsyncRuntime>() -> Result<(), Box<dyn std::error::Error>> {
/// use kasio_shell::{Producer, Record};
/// let producer = Producer::<R>::from_properties([("bootstrap.servers", "localhost:9092")])?;
/// let meta = producer.send_and_wait(Record::new("orders").key(b"k").value(b"v")).await?;
/// println!("written at {}:{}", meta.partition, meta.offset);
/// producer.close().await;
/// # Ok(()) }
/// ```
pub struct Producer<R> {
    shared: Arc<Handle<ProducerCore>>,
    max_block: Duration,
    runtime: PhantomData<fn() -> R>,
}

impl<R> Clone for Producer<R> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            max_block: self.max_block,
            runtime: PhantomData,
        }
    }
}

impl<R> std::fmt::Debug for Producer<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("max_block", &self.max_block)
            .finish_non_exhaustive()
    }
}

impl<R: Runtime> Producer<R> {
    /// Starts a producer and its driver.
    ///
    /// # Errors
    /// [`ConfigError`] if the settings conflict.
    pub fn new(config: ProducerConfig) -> Result<Self, ConfigError> {
        let max_block = config.max_block;
        let core = kasio_core::Producer::new(config, R::now(), R::unix_ms(), R::seed())?;
        let shared = Shared::start::<R>(ProducerCore {
            core,
            flush_waiters: Vec::new(),
            close_waiters: Vec::new(),
            closed: false,
            txn_waiters: Vec::new(),
            groups: HashMap::new(),
            next_group: 0,
            on_delivery: None,
        });
        Ok(Self {
            shared,
            max_block,
            runtime: PhantomData,
        })
    }

    /// Starts a producer from Java-client property names.
    ///
    /// ```no_run
    /// # fn demo<R: kasio_shell::Runtime>() -> Result<(), kasio_shell::ConfigError> {
    /// let p = kasio_shell::Producer::<R>::from_properties([
    ///     ("bootstrap.servers", "localhost:9092"),
    ///     ("linger.ms", "10"),
    ///     ("compression.type", "lz4"),
    /// ])?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`ConfigError`] naming an unknown key or bad value.
    pub fn from_properties<'a>(
        props: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ConfigError> {
        let mut config = ProducerConfig::default();
        for (k, v) in props {
            config.set(k, v)?;
        }
        Self::new(config)
    }
}

impl<R> Producer<R> {
    /// A listener woken when room may have come (for sinks built on
    /// [`try_send_now`](Self::try_send_now)).
    pub(crate) fn listen(&self) -> event_listener::EventListener {
        self.shared.ready.listen()
    }

    fn try_send(
        &self,
        record: Record<'_>,
        token: Token,
        now: Instant,
        hold: Duration,
    ) -> Result<(), (SendError, Token)> {
        let mut inner = self.shared.lock();
        if hold.is_zero() {
            inner.core.send(record, token, now)?;
        } else {
            inner.core.send_at(record, token, now + hold, now)?;
        }
        let wake = inner.core.needs_attention();
        drop(inner);
        if wake {
            self.shared.wake();
        }
        Ok(())
    }

    /// Buffers a record if there is room now, and returns its delivery.
    ///
    /// # Errors
    /// [`SendError::BufferFull`] without waiting for room; [`SendError::Invalid`] or
    /// [`SendError::Closed`] as the core reports them.
    pub fn try_send_now(&self, record: Record<'_>) -> Result<Delivery<R>, SendError> {
        let (tx, delivery) = Pending::channel(closed);
        self.try_send(record, Token::One(tx), self.shared.now(), Duration::ZERO)
            .map_err(|(e, _)| e)?;
        Ok(delivery)
    }

    /// A new group for `records`; it is sealed when dropped, even if the sending future is.
    fn group_send<'a, I: IntoIterator<Item = Record<'a>>>(
        &self,
        done: Complete<Result<usize, ProduceError>>,
        records: I,
    ) -> GroupSend<'_, 'a, I::IntoIter> {
        let id = self.shared.lock().new_group(done);
        GroupSend {
            group: Sealer {
                shared: &self.shared,
                id,
            },
            records: records.into_iter(),
            chunk: Vec::with_capacity(GROUP_CHUNK),
            deadline: None,
            room: None,
        }
    }

    /// Buffers as many of the group's records as there is room for: `None` once all are
    /// buffered, or what to wait on for room, and until when.
    fn advance<'a>(
        &self,
        send: &mut GroupSend<'_, 'a, impl Iterator<Item = Record<'a>>>,
    ) -> Result<Option<(EventListener, Instant)>, SendError> {
        while self.next_chunk(&mut send.chunk, &mut send.records) {
            if self.hand_over(send.group.id, &mut send.chunk)? > 0 {
                send.deadline = None;
            }
            if send.chunk.is_empty() {
                continue;
            }
            // As in `send_token`: listen only once refused, then try again, so room made
            // in between is not missed.
            let Some(room) = send.room.take() else {
                send.room = Some(self.shared.ready.listen());
                continue;
            };
            let until = *send
                .deadline
                .get_or_insert_with(|| self.shared.now() + self.max_block);
            return Ok(Some((room, until)));
        }
        Ok(None)
    }

    /// Refills an emptied `chunk` from `records`: whether there is anything to send.
    fn next_chunk<'a>(
        &self,
        chunk: &mut Vec<Record<'a>>,
        records: &mut impl Iterator<Item = Record<'a>>,
    ) -> bool {
        if chunk.is_empty() {
            // Outside the lock: the caller's iterator may do anything, even use this
            // producer.
            chunk.extend(records.by_ref().take(GROUP_CHUNK));
        }
        !chunk.is_empty()
    }

    /// Buffers the records of `chunk` for group `id` under one hold of the lock, until one
    /// is refused for room: how many were buffered (and removed from `chunk`).
    fn hand_over(&self, id: u64, chunk: &mut Vec<Record<'_>>) -> Result<usize, SendError> {
        let now = self.shared.now();
        let mut inner = self.shared.lock();
        let mut sent = 0;
        let mut error = None;
        for record in chunk.iter() {
            match inner.core.send(*record, Token::Group(id), now) {
                Ok(()) => sent += 1,
                Err((SendError::BufferFull, _)) => break,
                Err((e, _)) => {
                    error = Some(e);
                    break;
                }
            }
        }
        inner.count(id, sent);
        let wake = inner.core.needs_attention();
        drop(inner);
        if wake {
            self.shared.wake();
        }
        chunk.drain(..sent);
        match error {
            Some(e) => Err(e),
            None => Ok(sent),
        }
    }

    fn wait_for(&self, close: bool) -> Pending<(), R> {
        let (tx, done) = Pending::channel(|| ());
        let mut inner = self.shared.lock();
        if inner.closed {
            return Pending::ready(());
        }
        if close {
            inner.close_waiters.push(tx);
            inner.core.close(self.shared.now());
        } else {
            inner.flush_waiters.push(tx);
            inner.core.flush(self.shared.now());
        }
        drop(inner);
        self.shared.wake();
        done
    }

    /// Sends everything buffered now; completes when every record sent before has its
    /// delivery result. `.await` it, or [`wait`](Pending::wait) for it on threads.
    pub fn flush(&self) -> Pending<(), R> {
        self.wait_for(false)
    }

    /// Delivers what is buffered, then closes every connection and stops the driver.
    pub fn close(&self) -> Pending<(), R> {
        self.wait_for(true)
    }

    /// Sets the callback told of the deliveries of records sent with
    /// [`send_notify`](Self::send_notify).
    pub(crate) fn on_delivery(&self, f: OnDelivery) {
        self.shared.lock().on_delivery = Some(f);
    }

    /// How long a send waits for room (`max.block.ms`).
    pub(crate) fn max_block(&self) -> Duration {
        self.max_block
    }

    /// Records accepted and not yet reported.
    #[must_use]
    pub fn outstanding(&self) -> usize {
        self.shared.lock().core.outstanding()
    }

    /// The delay tiers of [`send_delayed`](Self::send_delayed) (`delay.tiers`).
    #[must_use]
    pub fn delay_tiers(&self) -> kasio_core::DelayTiers {
        self.shared.lock().core.config().delay_tiers.clone()
    }

    /// Where a delayed record goes first, planned on this producer's tiers.
    fn routing(&self, record: &Record<'_>, delay: crate::Delay) -> crate::delay::Routing {
        let inner = self.shared.lock();
        let config = inner.core.config();
        crate::delay::Routing::plan(
            &config.delay_tiers,
            config.transactional_id.is_none(),
            record,
            delay,
            crate::delay::unix_ms(std::time::SystemTime::now()),
        )
    }

    /// Where the transactional producer stands; `None` without a `transactional.id`.
    #[must_use]
    pub fn transaction_state(&self) -> Option<kasio_core::TxnState> {
        self.shared.lock().core.transaction_state()
    }

    /// The transaction protocol in use once initialized: 2 (KIP-890) or 1.
    #[must_use]
    pub fn transaction_protocol(&self) -> Option<u8> {
        self.shared.lock().core.transaction_protocol()
    }

    /// Starts a transactional operation in the core; its result comes with its event.
    fn transact(
        &self,
        op: TxnOp,
        start: impl FnOnce(&mut kasio_core::Producer<Token>, Instant) -> TxnResult,
    ) -> Pending<TxnResult, R> {
        let (tx, pending) = Pending::channel(|| Err(TxnError::Closed));
        let mut inner = self.shared.lock();
        if let Err(e) = start(&mut inner.core, self.shared.now()) {
            return Pending::ready(Err(e));
        }
        inner.txn_waiters.push((op, tx));
        drop(inner);
        self.shared.wake();
        pending
    }

    /// Gets this `transactional.id`'s producer id and epoch, fencing older producers with
    /// the same id. Call once, before the first transaction.
    ///
    /// ```no_run
    /// # async fn demo<R: kasio_shell::AsyncRuntime>() -> Result<(), Box<dyn std::error::Error>> {
    /// use kasio_shell::{Producer, Record};
    /// let p = Producer::<R>::from_properties([
    ///     ("bootstrap.servers", "localhost:9092"),
    ///     ("transactional.id", "orders-copier"),
    /// ])?;
    /// p.init_transactions().await?;
    /// p.begin_transaction()?;
    /// let _ = p.send(Record::new("orders").value(b"v")).await?;
    /// let _ = p.send(Record::new("audit").value(b"v")).await?;
    /// p.commit_transaction().await?; // both or neither
    /// # Ok(()) }
    /// ```
    ///
    /// The result is [`TxnError::NotTransactional`] without a `transactional.id`.
    pub fn init_transactions(&self) -> Pending<TxnResult, R> {
        self.transact(TxnOp::Init, |c, now| c.init_transactions(now))
    }

    /// Opens a transaction.
    ///
    /// # Errors
    /// [`TxnError::InvalidState`] unless initialized with no transaction open.
    pub fn begin_transaction(&self) -> TxnResult {
        self.shared.lock().core.begin_transaction()
    }

    /// Adds a consumer's next offsets to the open transaction, for `group` (take it from
    /// the consumer, so its coordinator can fence a zombie member).
    pub fn send_offsets_to_transaction<O: Into<TopicPartitionOffset>>(
        &self,
        offsets: impl IntoIterator<Item = O>,
        group: GroupMetadata,
    ) -> Pending<TxnResult, R> {
        let offsets = crate::names::offsets(offsets);
        self.transact(TxnOp::SendOffsets, |c, now| {
            c.send_offsets_to_transaction(&crate::names::triples(&offsets), group, now)
        })
    }

    /// Sends what is buffered and commits the open transaction: its records and offsets
    /// become visible together. An abortable error means: abort, then begin again.
    pub fn commit_transaction(&self) -> Pending<TxnResult, R> {
        self.transact(TxnOp::Commit, |c, now| c.commit_transaction(now))
    }

    /// Aborts the open transaction: its records will never be read by read_committed
    /// consumers, and records not yet sent fail with
    /// [`ProduceError::TransactionAborted`].
    pub fn abort_transaction(&self) -> Pending<TxnResult, R> {
        self.transact(TxnOp::Abort, |c, now| c.abort_transaction(now))
    }
}

impl<R: BlockingRuntime> Producer<R> {
    /// Buffers a record, blocking the thread up to `max.block.ms` for room, and returns its
    /// delivery.
    ///
    /// # Errors
    /// [`SendError::BufferFull`] if no room came within `max.block.ms`;
    /// [`SendError::Invalid`] or [`SendError::Closed`] as the core reports them.
    pub fn send_blocking(&self, record: Record<'_>) -> Result<Delivery<R>, SendError> {
        let (tx, delivery) = Pending::channel(closed);
        self.send_token_blocking(
            record,
            Token::One(tx),
            &mut self.shared.now(),
            Duration::ZERO,
        )?;
        Ok(delivery)
    }

    /// As [`send_priority`](Self::send_priority), blocking the thread up to `max.block.ms`
    /// for room.
    ///
    /// # Errors
    /// As [`send_blocking`](Self::send_blocking).
    pub fn send_priority_blocking(
        &self,
        record: Record<'_>,
        priority: kasio_core::Priority,
    ) -> Result<Delivery<R>, SendError> {
        let topic = priority.topic(record.topic);
        self.send_blocking(at_level(record, &topic))
    }

    pub(crate) fn send_token_blocking(
        &self,
        record: Record<'_>,
        mut token: Token,
        now: &mut Instant,
        hold: Duration,
    ) -> Result<(), SendError> {
        let mut deadline = None;
        let mut room = None;
        loop {
            match self.try_send(record, token, *now, hold) {
                Ok(()) => return Ok(()),
                Err((SendError::BufferFull, t)) => token = t,
                Err((e, _)) => return Err(e),
            }
            // Listening costs an allocation and a lock: only once the buffer is full, and
            // then before trying again, so room made in between is not missed.
            let Some(room) = room.take() else {
                room = Some(self.shared.ready.listen());
                continue;
            };
            let until = *deadline.get_or_insert_with(|| self.shared.now() + self.max_block);
            let woken = room.wait_deadline(until).is_some();
            *now = self.shared.now();
            if !woken && *now >= until {
                return Err(SendError::BufferFull);
            }
        }
    }

    /// As [`send_delayed`](Self::send_delayed), blocking the thread up to `max.block.ms`
    /// for room.
    ///
    /// # Errors
    /// As [`send_blocking`](Self::send_blocking).
    pub fn send_delayed_blocking(
        &self,
        record: Record<'_>,
        delay: impl Into<crate::Delay>,
    ) -> Result<Delivery<R>, SendError> {
        let routing = self.routing(&record, delay.into());
        let headers = routing.headers(&record);
        let routed = routing.record(record, &headers);
        let (tx, delivery) = Pending::channel(closed);
        self.send_token_blocking(routed, Token::One(tx), &mut self.shared.now(), routing.hold)?;
        Ok(delivery)
    }

    /// Sends many records, blocking for room as needed, with one result for all of them.
    ///
    /// # Errors
    /// As [`send_blocking`](Self::send_blocking), for the first record that could not be
    /// buffered; the records before it are still sent and still counted.
    pub fn send_batch_blocking<'a>(
        &self,
        records: impl IntoIterator<Item = Record<'a>>,
    ) -> Result<GroupDelivery<R>, SendError> {
        let (tx, delivery) = Pending::channel(closed);
        let mut send = self.group_send(tx, records);
        while let Some((room, until)) = self.advance(&mut send)? {
            if room.wait_deadline(until).is_none() && self.shared.now() >= until {
                return Err(SendError::BufferFull);
            }
        }
        drop(send);
        Ok(delivery)
    }
}

impl<R: AsyncRuntime> Producer<R> {
    /// Buffers a record, waiting up to `max.block.ms` for room, and returns the future of
    /// its delivery.
    ///
    /// # Errors
    /// [`SendError::BufferFull`] if no room came within `max.block.ms`;
    /// [`SendError::Invalid`] or [`SendError::Closed`] as the core reports them.
    pub async fn send(&self, record: Record<'_>) -> Result<Delivery<R>, SendError> {
        let (tx, delivery) = Pending::channel(closed);
        self.send_token(
            record,
            Token::One(tx),
            &mut self.shared.now(),
            Duration::ZERO,
        )
        .await?;
        Ok(delivery)
    }

    /// Buffers a record, waiting up to `max.block.ms` for room; its delivery is reported
    /// by calling the [`on_delivery`](Self::on_delivery) callback with `n`, from the
    /// driver and outside every lock.
    pub(crate) async fn send_notify(&self, record: Record<'_>, n: u64) -> Result<(), SendError> {
        self.send_token(
            record,
            Token::Notify(n),
            &mut self.shared.now(),
            Duration::ZERO,
        )
        .await
    }

    /// Sends with `now` as the time; after waiting for room, `now` moves on. The clock is
    /// read once per call rather than once per record, as it showed in profiles.
    pub(crate) async fn send_token(
        &self,
        record: Record<'_>,
        mut token: Token,
        now: &mut Instant,
        hold: Duration,
    ) -> Result<(), SendError> {
        let mut deadline = None;
        let mut room = None;
        loop {
            match self.try_send(record, token, *now, hold) {
                Ok(()) => return Ok(()),
                Err((SendError::BufferFull, t)) => token = t,
                Err((e, _)) => return Err(e),
            }
            // As in `send_token_blocking`: listen only once refused, then try again.
            let Some(room) = room.take() else {
                room = Some(self.shared.ready.listen());
                continue;
            };
            let until = *deadline.get_or_insert_with(|| self.shared.now() + self.max_block);
            let woken = first(room, R::sleep_until(until)).await;
            *now = self.shared.now();
            if !woken && *now >= until {
                return Err(SendError::BufferFull);
            }
        }
    }

    /// Sends a record to be delivered to its topic no earlier than `delay` says: it is
    /// written to the delay tier it starts in (`<topic>.delay.<tier>`, from `delay.tiers`)
    /// with its due time in a header, and a [`DelayRelay`](crate::DelayRelay) moves it on.
    /// The part of the delay below the shortest tier is spent in this producer first (it
    /// counts against `buffer.memory`; `flush` and `close` wait for it), so the tiers take
    /// the rest exactly. A transactional producer writes at once instead, and the record
    /// can then be late by up to the shortest tier. The delivery is that of the first write
    /// (to a tier, or to the topic when the delay is below the shortest tier).
    ///
    /// ```no_run
    /// # async fn demo<R: kasio_shell::AsyncRuntime>(producer: kasio_shell::Producer<R>) -> Result<(), Box<dyn std::error::Error>> {
    /// use kasio_shell::Record;
    /// use std::time::Duration;
    /// let delivery = producer
    ///     .send_delayed(Record::new("reminders").value(b"call back"), Duration::from_secs(30))
    ///     .await?;
    /// delivery.await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub async fn send_delayed(
        &self,
        record: Record<'_>,
        delay: impl Into<crate::Delay>,
    ) -> Result<Delivery<R>, SendError> {
        let routing = self.routing(&record, delay.into());
        let headers = routing.headers(&record);
        let routed = routing.record(record, &headers);
        let (tx, delivery) = Pending::channel(closed);
        self.send_token(routed, Token::One(tx), &mut self.shared.now(), routing.hold)
            .await?;
        Ok(delivery)
    }

    /// Sends a record at a priority level: to its topic's level topic,
    /// `<topic>.p.<level>`, which a [`PriorityConsumer`](crate::PriorityConsumer) reads
    /// highest level first (a record sent with [`send`](Self::send) stays in its topic,
    /// outside the levels).
    ///
    /// ```no_run
    /// # async fn demo<R: kasio_shell::AsyncRuntime>(producer: kasio_shell::Producer<R>) -> Result<(), Box<dyn std::error::Error>> {
    /// use kasio_shell::{Priority, Record};
    /// let delivery = producer
    ///     .send_priority(Record::new("jobs").value(b"page the on-call"), Priority::Critical)
    ///     .await?;
    /// assert_eq!(&*delivery.await?.topic, "jobs.p.critical");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub async fn send_priority(
        &self,
        record: Record<'_>,
        priority: kasio_core::Priority,
    ) -> Result<Delivery<R>, SendError> {
        let topic = priority.topic(record.topic);
        self.send(at_level(record, &topic)).await
    }

    /// Buffers many records with one future for all of them: cheaper per record than
    /// [`send`](Self::send) when the caller only needs to know that all were written.
    ///
    /// The future resolves to how many records were delivered, or the first error any of
    /// them met (the others may still have been written).
    ///
    /// # Errors
    /// As [`send`](Self::send), for the first record that could not be buffered; the
    /// records before it are still sent and still counted by the future.
    pub async fn send_batch<'a>(
        &self,
        records: impl IntoIterator<Item = Record<'a>>,
    ) -> Result<GroupDelivery<R>, SendError> {
        let (tx, delivery) = Pending::channel(closed);
        let mut send = self.group_send(tx, records);
        while let Some((room, until)) = self.advance(&mut send)? {
            if !first(room, R::sleep_until(until)).await && self.shared.now() >= until {
                return Err(SendError::BufferFull);
            }
        }
        drop(send);
        Ok(delivery)
    }

    /// Sends a record and waits for its delivery.
    ///
    /// # Errors
    /// [`ProduceError`] if it was not delivered (or could not be buffered).
    pub async fn send_and_wait(&self, record: Record<'_>) -> Result<RecordMetadata, ProduceError> {
        match self.send(record).await {
            Ok(d) => d.await,
            Err(e) => Err(e.into()),
        }
    }
}

/// Waits for `woken` or `timer`: whether `woken` came first.
pub(crate) async fn first(
    woken: impl std::future::Future<Output = ()>,
    timer: impl std::future::Future<Output = ()>,
) -> bool {
    let mut woken = std::pin::pin!(woken);
    let mut timer = std::pin::pin!(timer);
    std::future::poll_fn(|cx| {
        if woken.as_mut().poll(cx).is_ready() {
            return std::task::Poll::Ready(true);
        }
        if timer.as_mut().poll(cx).is_ready() {
            return std::task::Poll::Ready(false);
        }
        std::task::Poll::Pending
    })
    .await
}

/// `record` bound for its level topic (its borrows shrink to the topic's).
fn at_level<'a>(record: Record<'a>, topic: &'a str) -> Record<'a> {
    let mut record = record;
    record.topic = topic;
    record
}
