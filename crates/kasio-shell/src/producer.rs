//! The producer handle: cloneable, usable from any task or thread.

use crate::{
    driver::{AsyncRuntime, Core, Runtime, Shared},
    pending::{Complete, Pending},
    seed, unix_ms,
};
use event_listener::{Event, Listener};
use kasio_core::{
    ConfigError, Event as CoreEvent, GroupMetadata, ProduceError, ProducerConfig, Record,
    RecordMetadata, SendError, TxnError, TxnEvent, TxnOp,
};
use std::{
    marker::PhantomData,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

/// Resolves to a record's delivery result.
pub type Delivery = Pending<Result<RecordMetadata, ProduceError>>;

/// Resolves once every record of a [`Producer::send_batch`] has its result: how many were
/// delivered, or the first error.
pub type GroupDelivery = Pending<Result<usize, ProduceError>>;

fn closed<T>() -> Result<T, ProduceError> {
    Err(ProduceError::Closed)
}

/// Who hears of a record's delivery: its own [`Delivery`], or a group sent together.
enum Token {
    One(Complete<Result<RecordMetadata, ProduceError>>),
    Group(Arc<Group>),
}

/// Records sent with one [`Producer::send_batch`]: one result for all of them, so a record
/// costs an atomic count rather than a channel of its own.
struct Group {
    remaining: AtomicUsize,
    first_error: Mutex<Option<ProduceError>>,
    done: Mutex<Option<Complete<Result<usize, ProduceError>>>>,
    count: AtomicUsize,
}

impl Group {
    fn settle(&self, result: Result<RecordMetadata, ProduceError>) {
        self.settle_many(1, result.err());
    }

    /// `records` of the group have their result; `error` is the first of their errors.
    fn settle_many(&self, records: usize, error: Option<ProduceError>) {
        if let Some(e) = error {
            let mut first = self
                .first_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            first.get_or_insert(e);
        }
        if self.remaining.fetch_sub(records, Ordering::AcqRel) == records {
            self.finish();
        }
    }

    fn finish(&self) {
        let error = self
            .first_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let tx = self
            .done
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(tx) = tx {
            let _ = tx.send(match error {
                Some(e) => Err(e),
                None => Ok(self.count.load(Ordering::Acquire)),
            });
        }
    }
}

impl Token {
    fn settle(self, result: Result<RecordMetadata, ProduceError>) {
        match self {
            Self::One(tx) => {
                let _ = tx.send(result);
            }
            Self::Group(g) => g.settle(result),
        }
    }
}

/// A delivery to complete outside the lock; a group's consecutive deliveries (a batch's
/// records, mostly) are counted into one.
enum Done {
    One(Token, Result<RecordMetadata, ProduceError>),
    Group {
        group: Arc<Group>,
        records: usize,
        error: Option<ProduceError>,
    },
}

impl Done {
    fn add(done: &mut Vec<Done>, token: Token, result: Result<RecordMetadata, ProduceError>) {
        let Token::Group(g) = token else {
            done.push(Done::One(token, result));
            return;
        };
        if let Some(Done::Group {
            group,
            records,
            error,
        }) = done.last_mut()
            && Arc::ptr_eq(group, &g)
        {
            *records += 1;
            if let Err(e) = result {
                error.get_or_insert(e);
            }
            return;
        }
        done.push(Done::Group {
            group: g,
            records: 1,
            error: result.err(),
        });
    }

    fn settle(self) {
        match self {
            Done::One(token, result) => token.settle(result),
            Done::Group {
                group,
                records,
                error,
            } => group.settle_many(records, error),
        }
    }
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

/// Deliveries to complete outside the lock.
#[derive(Default)]
pub(crate) struct Deliveries {
    done: Vec<Done>,
    waiters: Vec<Complete<()>>,
    txn: Vec<(Complete<TxnResult>, TxnResult)>,
}

impl Core for ProducerCore {
    type Deferred = Deliveries;

    crate::driver::forward_io!();
    fn take_events(&mut self, deferred: &mut Deliveries) -> bool {
        let mut closed = false;
        while let Some(event) = self.core.poll_event() {
            match event {
                CoreEvent::Delivery { token, result } => {
                    Done::add(&mut deferred.done, token, result)
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
        closed
    }
    fn complete(deferred: &mut Deliveries, ready: &Event) {
        let freed = !deferred.done.is_empty();
        for done in deferred.done.drain(..) {
            done.settle();
        }
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
    shared: Arc<Shared<ProducerCore>>,
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
        let core = kasio_core::Producer::new(config, Instant::now(), unix_ms(), seed())?;
        let shared = Shared::start::<R>(ProducerCore {
            core,
            flush_waiters: Vec::new(),
            close_waiters: Vec::new(),
            closed: false,
            txn_waiters: Vec::new(),
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
    fn try_send(
        &self,
        record: Record<'_>,
        token: Token,
        now: Instant,
    ) -> Result<(), (SendError, Token)> {
        let mut inner = self.shared.lock();
        inner.core.send(record, token, now)?;
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
    pub fn try_send_now(&self, record: Record<'_>) -> Result<Delivery, SendError> {
        let (tx, delivery) = Pending::channel(closed);
        self.try_send(record, Token::One(tx), Instant::now())
            .map_err(|(e, _)| e)?;
        Ok(delivery)
    }

    /// Buffers a record, blocking the thread up to `max.block.ms` for room, and returns its
    /// delivery. For threads; async code uses [`send`](Self::send).
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn send_blocking(&self, record: Record<'_>) -> Result<Delivery, SendError> {
        let (tx, delivery) = Pending::channel(closed);
        self.send_token_blocking(record, Token::One(tx), &mut Instant::now())?;
        Ok(delivery)
    }

    fn send_token_blocking(
        &self,
        record: Record<'_>,
        mut token: Token,
        now: &mut Instant,
    ) -> Result<(), SendError> {
        let mut deadline = None;
        let mut room = None;
        loop {
            match self.try_send(record, token, *now) {
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
            let until = *deadline.get_or_insert_with(|| Instant::now() + self.max_block);
            let woken = room.wait_deadline(until).is_some();
            *now = Instant::now();
            if !woken && *now >= until {
                return Err(SendError::BufferFull);
            }
        }
    }

    /// Sends many records, blocking for room as needed, with one result for all of them.
    ///
    /// # Errors
    /// As [`send_batch`](Self::send_batch).
    pub fn send_batch_blocking<'a>(
        &self,
        records: impl IntoIterator<Item = Record<'a>>,
    ) -> Result<GroupDelivery, SendError> {
        let (group, delivery) = Self::group();
        let mut now = Instant::now();
        let mut result = Ok(());
        for record in records {
            group.remaining.fetch_add(1, Ordering::AcqRel);
            group.count.fetch_add(1, Ordering::AcqRel);
            if let Err(e) = self.send_token_blocking(record, Token::Group(group.clone()), &mut now)
            {
                Self::unsend(&group);
                result = Err(e);
                break;
            }
        }
        Self::sealed(&group);
        result.map(|()| delivery)
    }

    /// A group holding one count of its own until every record is handed over, so it
    /// cannot finish early while records are still being buffered.
    fn group() -> (Arc<Group>, GroupDelivery) {
        let (tx, delivery) = Pending::channel(closed);
        let group = Arc::new(Group {
            remaining: AtomicUsize::new(1),
            first_error: Mutex::new(None),
            done: Mutex::new(Some(tx)),
            count: AtomicUsize::new(0),
        });
        (group, delivery)
    }

    fn unsend(group: &Group) {
        group.remaining.fetch_sub(1, Ordering::AcqRel);
        group.count.fetch_sub(1, Ordering::AcqRel);
    }

    fn sealed(group: &Group) {
        if group.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            group.finish();
        }
    }

    fn wait_for(&self, close: bool) -> Pending<()> {
        let (tx, done) = Pending::channel(|| ());
        let mut inner = self.shared.lock();
        if inner.closed {
            return Pending::ready(());
        }
        if close {
            inner.close_waiters.push(tx);
            inner.core.close(Instant::now());
        } else {
            inner.flush_waiters.push(tx);
            inner.core.flush(Instant::now());
        }
        drop(inner);
        self.shared.wake();
        done
    }

    /// Sends everything buffered now; completes when every record sent before has its
    /// delivery result. `.await` it, or [`wait`](Pending::wait) for it.
    pub fn flush(&self) -> Pending<()> {
        self.wait_for(false)
    }

    /// Delivers what is buffered, then closes every connection and stops the driver.
    pub fn close(&self) -> Pending<()> {
        self.wait_for(true)
    }

    /// Records accepted and not yet reported.
    #[must_use]
    pub fn outstanding(&self) -> usize {
        self.shared.lock().core.outstanding()
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
    ) -> Pending<TxnResult> {
        let (tx, pending) = Pending::channel(|| Err(TxnError::Closed));
        let mut inner = self.shared.lock();
        if let Err(e) = start(&mut inner.core, Instant::now()) {
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
    pub fn init_transactions(&self) -> Pending<TxnResult> {
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
    pub fn send_offsets_to_transaction(
        &self,
        offsets: &[(&str, i32, i64)],
        group: GroupMetadata,
    ) -> Pending<TxnResult> {
        self.transact(TxnOp::SendOffsets, |c, now| {
            c.send_offsets_to_transaction(offsets, group, now)
        })
    }

    /// Sends what is buffered and commits the open transaction: its records and offsets
    /// become visible together. An abortable error means: abort, then begin again.
    pub fn commit_transaction(&self) -> Pending<TxnResult> {
        self.transact(TxnOp::Commit, |c, now| c.commit_transaction(now))
    }

    /// Aborts the open transaction: its records will never be read by read_committed
    /// consumers, and records not yet sent fail with
    /// [`ProduceError::TransactionAborted`].
    pub fn abort_transaction(&self) -> Pending<TxnResult> {
        self.transact(TxnOp::Abort, |c, now| c.abort_transaction(now))
    }
}

impl<R: AsyncRuntime> Producer<R> {
    /// Buffers a record, waiting up to `max.block.ms` for room, and returns the future of
    /// its delivery.
    ///
    /// # Errors
    /// [`SendError::BufferFull`] if no room came within `max.block.ms`;
    /// [`SendError::Invalid`] or [`SendError::Closed`] as the core reports them.
    pub async fn send(&self, record: Record<'_>) -> Result<Delivery, SendError> {
        let (tx, delivery) = Pending::channel(closed);
        self.send_token(record, Token::One(tx), &mut Instant::now())
            .await?;
        Ok(delivery)
    }

    /// Sends with `now` as the time; after waiting for room, `now` moves on. The clock is
    /// read once per call rather than once per record, as it showed in profiles.
    async fn send_token(
        &self,
        record: Record<'_>,
        mut token: Token,
        now: &mut Instant,
    ) -> Result<(), SendError> {
        let mut deadline = None;
        let mut room = None;
        loop {
            match self.try_send(record, token, *now) {
                Ok(()) => return Ok(()),
                Err((SendError::BufferFull, t)) => token = t,
                Err((e, _)) => return Err(e),
            }
            // As in `send_token_blocking`: listen only once refused, then try again.
            let Some(room) = room.take() else {
                room = Some(self.shared.ready.listen());
                continue;
            };
            let until = *deadline.get_or_insert_with(|| Instant::now() + self.max_block);
            let woken = first(room, R::sleep_until(until)).await;
            *now = Instant::now();
            if !woken && *now >= until {
                return Err(SendError::BufferFull);
            }
        }
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
    ) -> Result<GroupDelivery, SendError> {
        let (group, delivery) = Self::group();
        let mut result = Ok(());
        let mut now = Instant::now();
        for record in records {
            group.remaining.fetch_add(1, Ordering::AcqRel);
            group.count.fetch_add(1, Ordering::AcqRel);
            if let Err(e) = self
                .send_token(record, Token::Group(group.clone()), &mut now)
                .await
            {
                Self::unsend(&group);
                result = Err(e);
                break;
            }
        }
        Self::sealed(&group);
        result.map(|()| delivery)
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
