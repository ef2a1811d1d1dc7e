//! The publisher: a producer whose failed deliveries are classified, tried again at the
//! application's level and finally dead-lettered, each message tracked by id. The
//! decisions are the core's [`Outbox`]; this holds it behind a lock, sends what it hands
//! out and tells it what the producer said.

use crate::{
    driver::AsyncRuntime,
    producer::{OnDelivery, Producer, first},
    props,
};
use event_listener::{Event, EventListener};
use kasio_core::{
    ConfigError, DeliveryStatus, DeliveryTracker, DuplicateId, Failure, FailureKind,
    HeaderConventions, MESSAGE_ID_HEADER, Notice, Outbox, Publication, Record, RetryPolicy,
    SendError, StatusCounts, message_id,
};
use kasio_serde::{EncodeError, RecordEncoder, Serializer};
use std::{
    collections::VecDeque,
    pin::Pin,
    sync::{
        Arc, Mutex, PoisonError, RwLock, Weak,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

/// Why [`Publisher::send`] did not take a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishError {
    /// A message of this id is still being published.
    Duplicate(Arc<str>),
    /// `publisher.max.unfinished` messages were held for all of `max.block.ms`.
    Full,
    /// The producer refused the record at once (its buffer stayed full for `max.block.ms`,
    /// or it is closed).
    Send(SendError),
    /// The publisher is closing.
    Closed,
    /// The key or value did not serialize ([`TypedPublisher`]): the message, under `id`,
    /// ended `Failed` without a try.
    Encode {
        /// The message id.
        id: Arc<str>,
        /// What did not serialize.
        error: EncodeError,
    },
}

impl std::fmt::Display for PublishError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Duplicate(id) => write!(f, "message id {id} is already being published"),
            Self::Full => {
                f.write_str("publisher.max.unfinished messages were held for all of max.block.ms")
            }
            Self::Send(e) => write!(f, "the producer refused the record: {e}"),
            Self::Closed => f.write_str("the publisher is closing"),
            Self::Encode { id, error } => write!(f, "message {id}: cannot serialize the {error}"),
        }
    }
}

impl std::error::Error for PublishError {}

/// [`Publisher::flush`] ran out of time with messages unfinished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlushTimeout {
    /// Messages not yet delivered, dead-lettered or failed.
    pub unfinished: usize,
}

impl std::fmt::Display for FlushTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} messages unfinished when the flush timed out",
            self.unfinished
        )
    }
}

impl std::error::Error for FlushTimeout {}

/// What a publisher has done, summed over its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublisherCounters {
    /// Messages taken by `send`.
    pub sent: u64,
    /// Delivered (first try or a retry).
    pub delivered: u64,
    /// Retries scheduled.
    pub retried: u64,
    /// Written to the dead-letter topic.
    pub dead_lettered: u64,
    /// Failed for good.
    pub failed: u64,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    delivered: AtomicU64,
    retried: AtomicU64,
    dead_lettered: AtomicU64,
    failed: AtomicU64,
}

struct State {
    outbox: Outbox,
    /// No new messages: `close` was called or every handle dropped.
    closing: bool,
    /// The background loop has closed the producer and ended.
    done: bool,
    ids: u64,
}

type OnNotice = Arc<dyn Fn(&Notice) + Send + Sync>;

struct Inner<R> {
    producer: Producer<R>,
    state: Mutex<State>,
    /// The loop has work: a retry or dead letter ready, or the publisher closing.
    work: Event,
    /// A message finished or changed status, or the loop ended.
    changed: Event,
    on_notice: RwLock<Option<OnNotice>>,
    counters: Counters,
    max_unfinished: usize,
    max_block: Duration,
    seed: u64,
}

impl<R: AsyncRuntime> Inner<R> {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A try's result: the outbox decides, then its notices go out, outside the lock.
    fn settle(&self, slot: u64, result: Result<(i32, i64), Failure>) {
        let now = R::now();
        let (notices, wake) = {
            let mut st = self.lock();
            let before = st.outbox.poll_timeout();
            st.outbox.outcome(slot, result, now);
            let notices: Vec<Notice> = std::iter::from_fn(|| st.outbox.poll_notice()).collect();
            // The loop sleeps until the outbox's earliest deadline as it was: a retry
            // due sooner than that must wake it.
            let sooner = match (st.outbox.poll_timeout(), before) {
                (Some(after), Some(before)) => after < before,
                (after, before) => after.is_some() && before.is_none(),
            };
            (notices, sooner || st.outbox.has_ready(now))
        };
        self.report(&notices);
        self.changed.notify(usize::MAX);
        if wake {
            self.work.notify(1);
        }
    }

    fn report(&self, notices: &[Notice]) {
        let callback = self
            .on_notice
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for n in notices {
            let counter = match n {
                Notice::Delivered { .. } => &self.counters.delivered,
                Notice::RetryScheduled { .. } => &self.counters.retried,
                Notice::DeadLettered { .. } => &self.counters.dead_lettered,
                Notice::Failed { .. } => &self.counters.failed,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            if let Some(f) = &callback {
                f(n);
            }
        }
    }

    /// Waits for `listener`, or until `until`.
    async fn wait(listener: EventListener, until: Option<std::time::Instant>) {
        match until {
            Some(at) => {
                first(listener, R::sleep_until(at)).await;
            }
            None => listener.await,
        }
    }
}

/// An owned copy of what the outbox handed out, so the lock is not held while sending.
struct Copied {
    topic: String,
    partition: Option<i32>,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Vec<u8>)>,
    timestamp: i64,
}

/// Sends the retries and dead letters the outbox hands out as they come due; once the
/// publisher closes and every message has finished, closes the producer.
async fn background<R: AsyncRuntime>(inner: Arc<Inner<R>>) {
    loop {
        let listener = inner.work.listen();
        loop {
            let next = {
                let mut st = inner.lock();
                let now = R::now();
                st.outbox.handle_timeout(now);
                st.outbox.poll_send(now).map(|(slot, o)| {
                    let copy = Copied {
                        topic: o.topic.to_string(),
                        partition: o.partition,
                        key: o.key.map(<[u8]>::to_vec),
                        value: o.value.map(<[u8]>::to_vec),
                        headers: o.headers.to_vec(),
                        timestamp: o.timestamp,
                    };
                    (slot, copy)
                })
            };
            let Some((slot, c)) = next else {
                break;
            };
            inner.changed.notify(usize::MAX);
            let headers: Vec<(&str, &[u8])> = c
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_slice()))
                .collect();
            let mut record = Record::new(&c.topic)
                .headers(&headers)
                .timestamp(c.timestamp);
            record.partition = c.partition;
            record.key = c.key.as_deref();
            record.value = c.value.as_deref();
            if let Err(e) = inner.producer.send_notify(record, slot).await {
                inner.settle(slot, Err(Failure::of_send(&e)));
            }
        }
        let (until, finished) = {
            let st = inner.lock();
            (
                st.outbox.poll_timeout(),
                st.closing && st.outbox.unfinished() == 0,
            )
        };
        if finished {
            break;
        }
        Inner::<R>::wait(listener, until).await;
    }
    inner.producer.close().await;
    inner.lock().done = true;
    inner.changed.notify(usize::MAX);
}

/// Marks the publisher closing when its last handle goes, so its loop finishes what it
/// holds and closes the producer rather than living on.
struct LastHandle<R: AsyncRuntime>(Arc<Inner<R>>);

impl<R: AsyncRuntime> Drop for LastHandle<R> {
    fn drop(&mut self) {
        self.0.lock().closing = true;
        self.0.work.notify(1);
    }
}

/// A producer for messages that must not be lost: each message has an id (a UUIDv7
/// unless given, carried in the `kasio.message.id` header); a failed delivery is
/// classified ([`FailureKind`]), tried again with exponential backoff and jitter beyond
/// the producer's own retries, and at last written to a dead-letter topic with the
/// failure in its headers; what became of each message can be asked for by id
/// ([`status`](Self::status)) or streamed ([`statuses`](Self::statuses)), and a callback
/// hears every [`Notice`] (delivered, retry scheduled, dead-lettered, failed).
///
/// Properties, beside the producer's:
/// - `publisher.retry.attempts` (3), `publisher.retry.backoff.ms` (1000),
///   `publisher.retry.backoff.max.ms` (30000), `publisher.retry.multiplier` (2),
///   `publisher.retry.jitter` (0.2): tries of each message, the first included;
/// - `publisher.dead.letter.topic` (`{topic}.dlt`; `none` fails a message whose tries
///   ran out) and `publisher.dead.letter.headers` (`connect`, `spring`);
/// - `publisher.max.unfinished` (100000): messages held at once; `send` waits for room
///   up to `max.block.ms`;
/// - `publisher.tracking.retention.ms` (600000), `publisher.tracking.max.finished`
///   (100000), `publisher.tracking.max.changes` (10000): how long and how many finished
///   statuses are remembered, and the changes kept for a slow [`statuses`](Self::statuses)
///   reader.
///
/// Memory is bounded by these: the producer's `buffer.memory`, at most
/// `publisher.max.unfinished` messages held (each a copy of its key, value and headers,
/// to send it again), and the tracker's caps.
///
/// ```no_run
/// # async fn demo<R: kasio_shell::AsyncRuntime>() -> Result<(), Box<dyn std::error::Error>> {
/// use kasio_shell::{Publisher, Record};
/// use std::time::Duration;
/// let publisher = Publisher::<R>::from_properties([
///     ("bootstrap.servers", "localhost:9092"),
///     ("publisher.retry.attempts", "5"),
/// ])?;
/// publisher.on_notice(|n| println!("{n:?}"));
/// let id = publisher.send(Record::new("orders").value(b"v"), None).await?;
/// publisher.flush(Duration::from_secs(30)).await?;
/// println!("{id}: {:?}", publisher.status(&id));
/// publisher.close().await;
/// # Ok(()) }
/// ```
pub struct Publisher<R: AsyncRuntime> {
    inner: Arc<Inner<R>>,
    _last: Arc<LastHandle<R>>,
}

impl<R: AsyncRuntime> Clone for Publisher<R> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            _last: self._last.clone(),
        }
    }
}

impl<R: AsyncRuntime> std::fmt::Debug for Publisher<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("unfinished", &self.unfinished())
            .finish_non_exhaustive()
    }
}

impl<R: AsyncRuntime> Publisher<R> {
    /// A publisher and its producer from properties: the producer's, and the
    /// `publisher.*` ones of the type's documentation. Its background loop starts on the
    /// runtime at once.
    ///
    /// # Errors
    /// [`ConfigError`] naming a bad value or an unknown key.
    pub fn from_properties<'a>(
        props: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ConfigError> {
        let mut producer_props = Vec::new();
        let mut retry = RetryPolicy::default();
        let mut dead_letter = Some("{topic}.dlt".to_string());
        let mut conventions = HeaderConventions::default();
        let mut max_unfinished = 100_000;
        let mut retention = Duration::from_secs(600);
        let mut max_finished = 100_000;
        let mut max_changes = 10_000;
        for (k, v) in props {
            if retry.try_set_under("publisher.retry.", k, v)? {
                continue;
            }
            match k {
                "publisher.dead.letter.topic" => {
                    dead_letter = props::topic_or_none(v);
                }
                "publisher.dead.letter.headers" => conventions = v.parse()?,
                "publisher.max.unfinished" => max_unfinished = props::count(k, v, 1)?,
                "publisher.tracking.retention.ms" => retention = props::millis(k, v)?,
                "publisher.tracking.max.finished" => max_finished = props::count(k, v, 0)?,
                "publisher.tracking.max.changes" => max_changes = props::count(k, v, 0)?,
                _ if k.starts_with("publisher.") => {
                    return Err(ConfigError::UnknownKey(k.into()));
                }
                _ => producer_props.push((k, v)),
            }
        }
        let producer = Producer::<R>::from_properties(producer_props)?;
        // `send` waits for room in the outbox as long as the producer waits for its own.
        let max_block = producer.max_block();
        let seed = R::seed();
        let outbox = Outbox::new(
            retry,
            dead_letter,
            conventions,
            DeliveryTracker::new(retention, max_finished, max_changes),
            seed,
        );
        let inner = Arc::new_cyclic(|weak: &Weak<Inner<R>>| {
            let weak = weak.clone();
            // Weak: the producer's driver must not keep the publisher alive.
            let on_delivery: OnDelivery = Arc::new(move |slot, result| {
                if let Some(inner) = weak.upgrade() {
                    let result = result
                        .map(|m| (m.partition, m.offset))
                        .map_err(|e| Failure::of_produce(&e));
                    inner.settle(slot, result);
                }
            });
            producer.on_delivery(on_delivery);
            Inner {
                producer,
                state: Mutex::new(State {
                    outbox,
                    closing: false,
                    done: false,
                    ids: 0,
                }),
                work: Event::new(),
                changed: Event::new(),
                on_notice: RwLock::new(None),
                counters: Counters::default(),
                max_unfinished,
                max_block,
                seed,
            }
        });
        R::spawn(background(inner.clone()));
        Ok(Self {
            _last: Arc::new(LastHandle(inner.clone())),
            inner,
        })
    }

    /// Calls `f` with every [`Notice`] (delivered, retry scheduled, dead-lettered,
    /// failed), from the producer's driver or the publisher's loop: keep it short. Set on
    /// any clone, at any time; it replaces the one before.
    pub fn on_notice(&self, f: impl Fn(&Notice) + Send + Sync + 'static) {
        *self
            .inner
            .on_notice
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(f));
    }

    /// Publishes `record` under `id` (a new UUIDv7 when `None`), returned once the
    /// producer has buffered its first try; its end is told by [`status`](Self::status),
    /// [`statuses`](Self::statuses) and the notices. The id rides in the
    /// `kasio.message.id` header (replacing one the record has).
    ///
    /// # Errors
    /// [`PublishError`]: the id is being published already, the publisher holds
    /// `publisher.max.unfinished` messages for all of `max.block.ms`, the producer
    /// refused the record at once, or the publisher is closing.
    pub async fn send(
        &self,
        record: Record<'_>,
        id: Option<&str>,
    ) -> Result<Arc<str>, PublishError> {
        let inner = &self.inner;
        let id: Arc<str> = id.map_or_else(|| self.new_id(), Into::into);
        // The first try carries what the outbox holds for later ones: the same headers
        // and create time.
        let header_refs: Vec<(&str, &[u8])> = record
            .headers
            .iter()
            .filter(|(k, _)| *k != MESSAGE_ID_HEADER)
            .copied()
            .chain(std::iter::once((MESSAGE_ID_HEADER, id.as_bytes())))
            .collect();
        let first_try = record
            .headers(&header_refs)
            .timestamp(record.timestamp.unwrap_or_else(R::unix_ms));
        let publication = Publication {
            id: id.clone(),
            topic: record.topic.to_string(),
            partition: record.partition,
            key: record.key.map(<[u8]>::to_vec),
            value: record.value.map(<[u8]>::to_vec),
            headers: header_refs
                .iter()
                .map(|(k, v)| ((*k).to_string(), v.to_vec()))
                .collect(),
            timestamp: first_try.timestamp.unwrap_or_default(),
        };
        let deadline = R::now() + inner.max_block;
        let mut publication = Some(publication);
        let slot = loop {
            let listener = inner.changed.listen();
            {
                let mut st = inner.lock();
                if st.closing {
                    return Err(PublishError::Closed);
                }
                if st.outbox.unfinished() < inner.max_unfinished {
                    let p = publication.take().expect("taken only here, once");
                    break st
                        .outbox
                        .submit(p, R::now())
                        .map_err(|DuplicateId(id)| PublishError::Duplicate(id))?;
                }
            }
            if R::now() >= deadline {
                return Err(PublishError::Full);
            }
            Inner::<R>::wait(listener, Some(deadline)).await;
        };
        inner.counters.sent.fetch_add(1, Ordering::Relaxed);
        match inner.producer.send_notify(first_try, slot).await {
            Ok(()) => Ok(id),
            Err(e @ SendError::Invalid(_)) => {
                // The record can never be written as it is: its dead letter, at once.
                inner.settle(slot, Err(Failure::of_send(&e)));
                Ok(id)
            }
            Err(e) => {
                inner
                    .lock()
                    .outbox
                    .withdraw(slot, &Failure::of_send(&e), R::now());
                inner.changed.notify(usize::MAX);
                Err(PublishError::Send(e))
            }
        }
    }

    /// A new message id (UUIDv7).
    fn new_id(&self) -> Arc<str> {
        let n = {
            let mut st = self.inner.lock();
            st.ids += 1;
            st.ids
        };
        message_id(
            R::unix_ms(),
            self.inner.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        )
        .into()
    }

    /// This publisher, serializing keys with `key` and values with `value`.
    pub fn typed<K: ?Sized, V: ?Sized, KS: Serializer<K>, VS: Serializer<V>>(
        self,
        key: KS,
        value: VS,
    ) -> TypedPublisher<R, K, V, KS, VS> {
        TypedPublisher {
            publisher: self,
            encoder: RecordEncoder::new(key, value),
        }
    }

    /// Waits until every message sent before has finished (delivered, dead-lettered or
    /// failed), at most `timeout`.
    ///
    /// # Errors
    /// [`FlushTimeout`] with how many were left.
    pub async fn flush(&self, timeout: Duration) -> Result<(), FlushTimeout> {
        let deadline = R::now() + timeout;
        // Sends what the producer lingers on now; the publisher waits on its own terms.
        drop(self.inner.producer.flush());
        loop {
            let listener = self.inner.changed.listen();
            let unfinished = self.unfinished();
            if unfinished == 0 {
                return Ok(());
            }
            if R::now() >= deadline {
                return Err(FlushTimeout { unfinished });
            }
            Inner::<R>::wait(listener, Some(deadline)).await;
        }
    }

    /// Stops taking messages, waits for every one held to finish (however long its
    /// retries take), then closes the producer.
    pub async fn close(&self) {
        self.close_within(None).await;
    }

    /// As [`close`](Self::close), but messages unfinished after `timeout` end `Failed`
    /// (one in flight may yet be written: its status cannot say) and the producer closes.
    pub async fn close_timeout(&self, timeout: Duration) {
        self.close_within(Some(timeout)).await;
    }

    async fn close_within(&self, timeout: Option<Duration>) {
        let inner = &self.inner;
        let deadline = timeout.map(|t| R::now() + t);
        inner.lock().closing = true;
        inner.work.notify(1);
        drop(inner.producer.flush());
        loop {
            let listener = inner.changed.listen();
            let notices = {
                let mut st = inner.lock();
                if st.done {
                    return;
                }
                let now = R::now();
                if deadline.is_some_and(|d| now >= d) && st.outbox.unfinished() > 0 {
                    let closed = Failure::new(
                        FailureKind::Terminal,
                        "Closed",
                        "the publisher closed before the message finished",
                    );
                    st.outbox.abandon(&closed, now);
                    let notices: Vec<Notice> =
                        std::iter::from_fn(|| st.outbox.poll_notice()).collect();
                    Some(notices)
                } else {
                    None
                }
            };
            if let Some(n) = notices {
                inner.report(&n);
                inner.work.notify(1);
                inner.changed.notify(usize::MAX);
                continue;
            }
            Inner::<R>::wait(listener, deadline).await;
        }
    }

    /// What became of message `id`, while it is remembered.
    #[must_use]
    pub fn status(&self, id: &str) -> Option<DeliveryStatus> {
        self.inner.lock().outbox.status(id).cloned()
    }

    /// Remembered messages in each status.
    #[must_use]
    pub fn status_counts(&self) -> StatusCounts {
        self.inner.lock().outbox.counts()
    }

    /// Messages held, not yet finished.
    #[must_use]
    pub fn unfinished(&self) -> usize {
        self.inner.lock().outbox.unfinished()
    }

    /// Statuses remembered, unfinished and finished: bounded by the tracking properties.
    #[must_use]
    pub fn remembered(&self) -> usize {
        self.inner.lock().outbox.remembered()
    }

    /// What the publisher has done so far.
    #[must_use]
    pub fn counters(&self) -> PublisherCounters {
        let c = &self.inner.counters;
        PublisherCounters {
            sent: c.sent.load(Ordering::Relaxed),
            delivered: c.delivered.load(Ordering::Relaxed),
            retried: c.retried.load(Ordering::Relaxed),
            dead_lettered: c.dead_lettered.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
        }
    }

    /// Every status change from now on, as a stream of `(id, status)`, ending once the
    /// publisher has closed. The changes are one queue: two streams share them out. A
    /// reader slower than `publisher.tracking.max.changes` misses the oldest
    /// ([`Statuses::missed`] counts them).
    #[must_use]
    pub fn statuses(&self) -> Statuses<R> {
        Statuses {
            inner: self.inner.clone(),
            buffered: VecDeque::new(),
            listener: None,
            missed: 0,
        }
    }
}

/// A [`Publisher`] of typed keys and values: a key or value that does not serialize is a
/// failure that cannot be retried, so its message ends `Failed` at once (with its
/// notice) and `send` says why.
///
/// ```no_run
/// # async fn demo<R: kasio_shell::AsyncRuntime>(publisher: kasio_shell::Publisher<R>) -> Result<(), Box<dyn std::error::Error>> {
/// use kasio_core::Record;
/// use kasio_serde::{Json, StringCodec};
/// #[derive(serde::Serialize)]
/// struct Order { id: i64 }
/// let mut orders = publisher.typed(StringCodec, Json::<Order>::new());
/// let id = orders.send(Record::new("orders"), Some("k"), Some(&Order { id: 1 }), None).await?;
/// # Ok(()) }
/// ```
pub struct TypedPublisher<R: AsyncRuntime, K: ?Sized, V: ?Sized, KS, VS> {
    publisher: Publisher<R>,
    encoder: RecordEncoder<K, V, KS, VS>,
}

impl<R: AsyncRuntime, K: ?Sized, V: ?Sized, KS, VS> std::fmt::Debug
    for TypedPublisher<R, K, V, KS, VS>
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedPublisher").finish_non_exhaustive()
    }
}

impl<R: AsyncRuntime, K: ?Sized, V: ?Sized, KS: Serializer<K>, VS: Serializer<V>>
    TypedPublisher<R, K, V, KS, VS>
{
    /// The publisher underneath: to flush, close, ask for statuses.
    pub fn publisher(&self) -> &Publisher<R> {
        &self.publisher
    }

    /// As [`Publisher::send`], with `key` and `value` serialized into `record` (its
    /// topic, partition, headers and timestamp; `None` a null key or a tombstone).
    ///
    /// # Errors
    /// [`PublishError::Encode`] when the key or value does not serialize; the others as
    /// [`Publisher::send`].
    pub async fn send(
        &mut self,
        record: Record<'_>,
        key: Option<&K>,
        value: Option<&V>,
        id: Option<&str>,
    ) -> Result<Arc<str>, PublishError> {
        let id: Arc<str> = id.map_or_else(|| self.publisher.new_id(), Into::into);
        match self.encoder.encode(record, key, value) {
            Ok(record) => self.publisher.send(record, Some(&id)).await,
            Err(error) => {
                let failure = Failure::new(
                    FailureKind::NonRetriable,
                    "kasio::EncodeError",
                    error.to_string(),
                );
                let inner = &self.publisher.inner;
                let notices = {
                    let mut st = inner.lock();
                    st.outbox
                        .refuse(id.clone(), failure, R::now())
                        .map_err(|DuplicateId(id)| PublishError::Duplicate(id))?;
                    std::iter::from_fn(|| st.outbox.poll_notice()).collect::<Vec<_>>()
                };
                inner.report(&notices);
                inner.changed.notify(usize::MAX);
                Err(PublishError::Encode { id, error })
            }
        }
    }
}

/// A stream of `(message id, status)` changes: see [`Publisher::statuses`].
pub struct Statuses<R: AsyncRuntime> {
    inner: Arc<Inner<R>>,
    buffered: VecDeque<(Arc<str>, DeliveryStatus)>,
    listener: Option<EventListener>,
    missed: u64,
}

impl<R: AsyncRuntime> Statuses<R> {
    /// Changes this reader missed by falling behind.
    #[must_use]
    pub fn missed(&self) -> u64 {
        self.missed
    }
}

impl<R: AsyncRuntime> std::fmt::Debug for Statuses<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Statuses")
            .field("buffered", &self.buffered.len())
            .field("missed", &self.missed)
            .finish_non_exhaustive()
    }
}

impl<R: AsyncRuntime> futures_core::Stream for Statuses<R> {
    type Item = (Arc<str>, DeliveryStatus);

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(change) = this.buffered.pop_front() {
                return Poll::Ready(Some(change));
            }
            let done = {
                let mut st = this.inner.lock();
                let (changes, missed) = st.outbox.drain_changes();
                this.missed += missed;
                this.buffered.extend(changes);
                st.done
            };
            if !this.buffered.is_empty() {
                continue;
            }
            if done {
                return Poll::Ready(None);
            }
            // Listening, then looking again, so a change in between is not missed.
            let Some(listener) = this.listener.as_mut() else {
                this.listener = Some(this.inner.changed.listen());
                continue;
            };
            match Pin::new(listener).poll(cx) {
                Poll::Ready(()) => this.listener = None,
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
