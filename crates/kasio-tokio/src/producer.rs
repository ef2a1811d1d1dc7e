//! The producer handle: cloneable, usable from any task.

use crate::driver::{Core, Shared};
use kasio_core::{
    CloseReason, ConfigError, ConnId, ConnectAction, Event, ProduceError, ProducerConfig, Record,
    RecordMetadata, SendError, Transmit,
};
use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant, SystemTime},
};
use tokio::sync::oneshot;

/// Who hears of a record's delivery: its own future, or a group sent together.
enum Token {
    One(oneshot::Sender<Result<RecordMetadata, ProduceError>>),
    Group(Arc<Group>),
}

/// Records sent with one [`Producer::send_batch`]: one future for all of them, so a record
/// costs an atomic count rather than a channel of its own.
struct Group {
    remaining: AtomicUsize,
    first_error: Mutex<Option<ProduceError>>,
    done: Mutex<Option<oneshot::Sender<Result<usize, ProduceError>>>>,
    count: AtomicUsize,
}

impl Group {
    fn settle(&self, result: Result<RecordMetadata, ProduceError>) {
        if let Err(e) = result {
            let mut first = self
                .first_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            first.get_or_insert(e);
        }
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
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

/// The core and the waiters for its flush and close events.
pub(crate) struct ProducerCore {
    core: kasio_core::Producer<Token>,
    flush_waiters: Vec<oneshot::Sender<()>>,
    close_waiters: Vec<oneshot::Sender<()>>,
}

/// Deliveries to complete outside the lock.
#[derive(Default)]
pub(crate) struct Deliveries {
    done: Vec<(Token, Result<RecordMetadata, ProduceError>)>,
    waiters: Vec<oneshot::Sender<()>>,
}

impl Core for ProducerCore {
    type Deferred = Deliveries;

    fn connected(&mut self, conn: ConnId, now: Instant) {
        self.core.handle_connected(conn, now);
    }
    fn input(&mut self, conn: ConnId, data: &[u8], now: Instant) {
        self.core.handle_input(conn, data, now);
    }
    fn closed(&mut self, conn: ConnId, reason: CloseReason, now: Instant) {
        self.core.handle_closed(conn, reason, now);
    }
    fn timeout(&mut self, now: Instant) {
        self.core.handle_timeout(now);
    }
    fn next_connect(&mut self) -> Option<ConnectAction> {
        self.core.poll_connect()
    }
    fn next_transmit(&mut self) -> Option<Transmit> {
        self.core.poll_transmit()
    }
    fn deadline(&mut self) -> Option<Instant> {
        self.core.poll_timeout().map(|t| t.at)
    }
    fn take_events(&mut self, deferred: &mut Deliveries) -> bool {
        let mut closed = false;
        while let Some(event) = self.core.poll_event() {
            match event {
                Event::Delivery { token, result } => deferred.done.push((token, result)),
                Event::Flushed => deferred.waiters.append(&mut self.flush_waiters),
                Event::Closed => {
                    deferred.waiters.append(&mut self.close_waiters);
                    closed = true;
                }
                _ => {}
            }
        }
        closed
    }
    fn complete(deferred: &mut Deliveries, shared: &Shared<Self>) {
        let freed = !deferred.done.is_empty();
        for (token, result) in deferred.done.drain(..) {
            token.settle(result);
        }
        for w in deferred.waiters.drain(..) {
            let _ = w.send(());
        }
        if freed {
            shared.ready.notify_waiters();
        }
    }
}

/// A Kafka producer on tokio. Clones share one core and one set of connections.
///
/// The core sits behind a mutex rather than a channel: `send` encodes the record straight
/// into its batch under the lock, so a record is copied once and never queued as a message.
/// The driver task takes the same lock only to feed input and drain output.
#[derive(Clone, Debug)]
pub struct Producer {
    shared: Arc<Shared<ProducerCore>>,
    max_block: Duration,
}

/// Resolves to a record's delivery result.
#[derive(Debug)]
#[must_use = "a delivery reports whether the record was written"]
pub struct Delivery {
    rx: oneshot::Receiver<Result<RecordMetadata, ProduceError>>,
}

/// Resolves once every record of a [`Producer::send_batch`] has its result: how many were
/// delivered, or the first error.
#[derive(Debug)]
#[must_use = "a delivery reports whether the records were written"]
pub struct GroupDelivery {
    rx: oneshot::Receiver<Result<usize, ProduceError>>,
}

impl Future for GroupDelivery {
    type Output = Result<usize, ProduceError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(ProduceError::Closed)))
    }
}

impl Future for Delivery {
    type Output = Result<RecordMetadata, ProduceError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(ProduceError::Closed)))
    }
}

pub(crate) fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub(crate) fn seed() -> u64 {
    u64::try_from(unix_ms()).unwrap_or(0) ^ u64::from(std::process::id()).rotate_left(32)
}

impl Producer {
    /// Starts a producer; its driver runs on the current tokio runtime.
    ///
    /// # Errors
    /// [`ConfigError`] if the settings conflict.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn new(config: ProducerConfig) -> Result<Self, ConfigError> {
        let max_block = config.max_block;
        let core = kasio_core::Producer::new(config, Instant::now(), unix_ms(), seed())?;
        let shared = Shared::start(ProducerCore {
            core,
            flush_waiters: Vec::new(),
            close_waiters: Vec::new(),
        });
        Ok(Self { shared, max_block })
    }

    /// Starts a producer from Java-client property names.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), kasio_tokio::ConfigError> {
    /// let p = kasio_tokio::Producer::from_properties([
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
            self.shared.wake.notify_one();
        }
        Ok(())
    }

    /// Buffers a record, waiting up to `max.block.ms` for room, and returns the future of
    /// its delivery.
    ///
    /// # Errors
    /// [`SendError::BufferFull`] if no room came within `max.block.ms`;
    /// [`SendError::Invalid`] or [`SendError::Closed`] as the core reports them.
    pub async fn send(&self, record: Record<'_>) -> Result<Delivery, SendError> {
        let (tx, rx) = oneshot::channel();
        self.send_token(record, Token::One(tx), &mut Instant::now())
            .await?;
        Ok(Delivery { rx })
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
        loop {
            let room = self.shared.ready.notified();
            match self.try_send(record, token, *now) {
                Ok(()) => return Ok(()),
                Err((SendError::BufferFull, t)) => token = t,
                Err((e, _)) => return Err(e),
            }
            let until =
                *deadline.get_or_insert_with(|| tokio::time::Instant::now() + self.max_block);
            let waited = tokio::time::timeout_at(until, room).await;
            *now = Instant::now();
            if waited.is_err() {
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
        let (tx, rx) = oneshot::channel();
        // One count held by this call until every record is handed over, so the group
        // cannot finish early while records are still being buffered.
        let group = Arc::new(Group {
            remaining: AtomicUsize::new(1),
            first_error: Mutex::new(None),
            done: Mutex::new(Some(tx)),
            count: AtomicUsize::new(0),
        });
        let mut result = Ok(());
        let mut now = Instant::now();
        for record in records {
            group.remaining.fetch_add(1, Ordering::AcqRel);
            group.count.fetch_add(1, Ordering::AcqRel);
            if let Err(e) = self
                .send_token(record, Token::Group(group.clone()), &mut now)
                .await
            {
                group.remaining.fetch_sub(1, Ordering::AcqRel);
                group.count.fetch_sub(1, Ordering::AcqRel);
                result = Err(e);
                break;
            }
        }
        if group.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            group.finish();
        }
        result.map(|()| GroupDelivery { rx })
    }

    /// Sends a record and waits for its delivery.
    ///
    /// # Errors
    /// [`ProduceError`] if it was not delivered (or could not be buffered).
    pub async fn send_and_wait(&self, record: Record<'_>) -> Result<RecordMetadata, ProduceError> {
        match self.send(record).await {
            Ok(d) => d.await,
            Err(SendError::Invalid(e)) => Err(e),
            Err(SendError::BufferFull) => Err(ProduceError::Timeout),
            Err(_) => Err(ProduceError::Closed),
        }
    }

    fn wait_for(&self, close: bool) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        let mut inner = self.shared.lock();
        if close {
            inner.close_waiters.push(tx);
            inner.core.close(Instant::now());
        } else {
            inner.flush_waiters.push(tx);
            inner.core.flush(Instant::now());
        }
        drop(inner);
        self.shared.wake.notify_one();
        rx
    }

    /// Sends everything buffered now and waits until every record sent before has its
    /// delivery result.
    pub async fn flush(&self) {
        let _ = self.wait_for(false).await;
    }

    /// Delivers what is buffered, then closes every connection and stops the driver.
    pub async fn close(&self) {
        let _ = self.wait_for(true).await;
    }

    /// Records accepted and not yet reported.
    pub fn outstanding(&self) -> usize {
        self.shared.lock().core.outstanding()
    }
}
