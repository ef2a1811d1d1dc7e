//! The producer: records in, Produce requests out, a delivery event per record back.

mod batch;
mod delivered;
mod held;
mod producer_id;
mod record;
mod sender;
mod topics;
mod transact;
mod txn;

pub use delivered::Delivered;
pub use record::{Event, ProduceError, Record, RecordMetadata, SendError};
pub(crate) use txn::Call as TxnCall;
pub use txn::{GroupMetadata, TxnError, TxnEvent, TxnOp, TxnState};

use crate::{
    config::ProducerConfig,
    conn::{CloseReason, ConnId, ConnectAction, Tag, Transmit},
    metadata::TopicMeta,
    network::{Earliest, Network, Timeout},
    partitioner::{Partitioner, key_partition},
    rng::Rng,
};
use batch::{OpenBatch, PartitionState};
use bytes::Bytes;
use producer_id::ProducerId;
use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
    time::{Duration, Instant},
};

/// The bytes a record's framing can add beyond its key, value and headers.
const RECORD_OVERHEAD: usize = 5 + 1 + 10 + 5 + 5 + 5 + 5;

/// A record waiting for its topic's metadata, copied because the caller's borrow ends.
#[derive(Debug)]
struct Pending<T> {
    partition: Option<i32>,
    key: Option<Bytes>,
    value: Option<Bytes>,
    headers: Vec<(String, Bytes)>,
    timestamp: i64,
    token: T,
    since: Instant,
}

impl<T> Pending<T> {
    /// A copy of `record`, which the caller's borrow cannot outlive.
    fn copy(record: &Record<'_>, timestamp: i64, token: T, since: Instant) -> Self {
        Self {
            partition: record.partition,
            key: record.key.map(Bytes::copy_from_slice),
            value: record.value.map(Bytes::copy_from_slice),
            headers: record
                .headers
                .iter()
                .map(|(k, v)| ((*k).to_string(), Bytes::copy_from_slice(v)))
                .collect(),
            timestamp,
            token,
            since,
        }
    }
}

#[derive(Debug)]
struct TopicState<T> {
    name: Arc<str>,
    meta: Option<TopicMeta>,
    partitions: Vec<PartitionState<T>>,
    pending: VecDeque<Pending<T>>,
    /// The partition records without a key stick to, and the bytes sent to it so far.
    sticky: Option<(i32, usize)>,
    round_robin: u32,
}

/// Where the producer is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lifecycle {
    Open,
    /// `close` was called: draining what is buffered.
    Closing,
    Closed,
}

/// The sans-IO Kafka producer. `T` is the caller's token per record, handed back in its
/// [`Event::Delivery`].
///
/// Inputs: [`handle_connected`](Self::handle_connected), [`handle_input`](Self::handle_input),
/// [`handle_closed`](Self::handle_closed) and [`handle_timeout`](Self::handle_timeout) (a
/// spurious call does nothing). Commands: [`send`](Self::send), [`flush`](Self::flush),
/// [`close`](Self::close). After each of them, drain the outputs in this order:
/// [`poll_connect`](Self::poll_connect) (dial or close sockets),
/// [`poll_transmit`](Self::poll_transmit) (write bytes, in order per connection),
/// [`poll_event`](Self::poll_event), then read [`poll_timeout`](Self::poll_timeout) and
/// call `handle_timeout` when it passes.
///
/// ```
/// use kasio_core::{ConnectAction, Producer, ProducerConfig, Record};
/// use std::time::Instant;
/// let now = Instant::now();
/// let config = ProducerConfig::new("localhost:9092")?;
/// let mut producer: Producer<u32> = Producer::new(config, now, 1_700_000_000_000, 42)?;
/// producer.send(Record::new("orders").key(b"k").value(b"v"), 1, now).map_err(|(e, _)| e)?;
/// // The producer wants a connection to the bootstrap server first.
/// let Some(ConnectAction::Open { host, port, .. }) = producer.poll_connect() else { panic!() };
/// assert_eq!((host.as_str(), port), ("localhost", 9092));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Producer<T> {
    config: ProducerConfig,
    rng: Rng,
    start: Instant,
    start_unix_ms: i64,
    now: Instant,
    /// Connections, the metadata cache and the bytes for the driver.
    net: Network,
    topics: topics::Topics<T>,
    producer_id: ProducerId,
    /// Produce requests in flight: the partitions each carries.
    requests: HashMap<u64, Vec<(Arc<str>, i32)>>,
    next_request: u64,
    buffered: usize,
    outstanding: usize,
    events: delivered::EventQueue<T>,
    flushing: bool,
    lifecycle: Lifecycle,
    fatal: Option<ProduceError>,
    /// A command created a deadline since the last `poll_timeout`.
    new_deadline: bool,
    /// Buffers of acknowledged batches, for new ones.
    free_buffers: batch::FreeBuffers,
    /// The transaction state, with a `transactional.id`.
    txn: Option<txn::Txn>,
    /// Records to send later (`send_at`).
    held: held::HeldRecords<T>,
    held_seq: u64,
}

impl<T> Producer<T> {
    /// A producer with `config`, created at `now`, when the Unix clock read `unix_ms`;
    /// `seed` drives every random choice (jitter, sticky partitions).
    ///
    /// # Errors
    /// [`ConfigError`](crate::ConfigError) if the settings conflict.
    pub fn new(
        config: ProducerConfig,
        now: Instant,
        unix_ms: i64,
        seed: u64,
    ) -> Result<Self, crate::ConfigError> {
        config.validate()?;
        let free_buffers = batch::FreeBuffers::new(config.batch_size, config.buffer_memory);
        let net = Network::new(&config.network, config.security.build()?, now, seed);
        let txn = config
            .transactional_id
            .clone()
            .map(|id| txn::Txn::new(id, config.transaction_timeout));
        let mut p = Self {
            txn,
            producer_id: ProducerId::new(config.idempotent()),
            config,
            rng: Rng::new(seed),
            start: now,
            start_unix_ms: unix_ms,
            now,
            net,
            topics: topics::Topics::default(),
            requests: HashMap::new(),
            next_request: 1,
            buffered: 0,
            outstanding: 0,
            events: delivered::EventQueue::default(),
            flushing: false,
            lifecycle: Lifecycle::Open,
            fatal: None,
            new_deadline: false,
            free_buffers,
            held: held::HeldRecords::new(),
            held_seq: 0,
        };
        p.drain(now);
        Ok(p)
    }

    /// The configuration.
    pub fn config(&self) -> &ProducerConfig {
        &self.config
    }

    /// Records accepted whose delivery event has not yet been emitted.
    pub fn outstanding(&self) -> usize {
        self.outstanding
    }

    /// Bytes buffered against `buffer.memory`.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered
    }

    /// The producer id and epoch in use, once the broker has given them.
    pub fn producer_id(&self) -> Option<(i64, i16)> {
        (self.producer_id.id >= 0).then_some((self.producer_id.id, self.producer_id.epoch))
    }

    fn unix_ms(&self, now: Instant) -> i64 {
        let since = now.saturating_duration_since(self.start).as_millis();
        self.start_unix_ms + i64::try_from(since).unwrap_or(i64::MAX / 2)
    }

    /// Buffers a record; its [`Event::Delivery`] carries `token` back.
    ///
    /// # Errors
    /// [`SendError::BufferFull`] when `buffer.memory` is used up (wait for deliveries,
    /// then retry), [`SendError::Invalid`] for a record that can never be sent,
    /// [`SendError::Closed`] after `close` or a fatal error. The token comes back with it.
    pub fn send(
        &mut self,
        record: Record<'_>,
        token: T,
        now: Instant,
    ) -> Result<(), (SendError, T)> {
        if self.lifecycle != Lifecycle::Open {
            return Err((SendError::Closed, token));
        }
        if self.fatal.is_some() {
            return Err((SendError::Closed, token));
        }
        if let Some(txn) = &self.txn
            && txn.state != TxnState::InTransaction
        {
            let error = match (&txn.error, txn.state) {
                (Some(e), TxnState::AbortableError | TxnState::FatalError) => e.clone(),
                (_, state) => TxnError::InvalidState {
                    operation: "send outside a transaction",
                    state,
                },
            };
            return Err((SendError::Invalid(ProduceError::Transaction(error)), token));
        }
        let size = match self.room_for(&record) {
            Ok(size) => size,
            Err(e) => return Err((e, token)),
        };
        let timestamp = record.timestamp.unwrap_or_else(|| self.unix_ms(now));
        // The common case first: one lookup of a topic whose partitions are known.
        let token = match self.append(&record, timestamp, size, token, now) {
            Ok(closed) => {
                if closed {
                    self.drain(now);
                }
                return Ok(());
            }
            Err((Some(e), token)) => return Err((e, token)),
            Err((None, token)) => token,
        };
        if !self.topics.contains_key(record.topic) {
            self.new_topic(record.topic);
        }
        let Some(topic) = self.topics.get_mut(record.topic) else {
            return Err((SendError::Closed, token));
        };
        topic
            .pending
            .push_back(Pending::copy(&record, timestamp, token, now));
        self.buffered += size;
        self.outstanding += 1;
        // Its max.block.ms deadline, and a metadata request perhaps after a backoff.
        self.new_deadline = true;
        self.drain(now);
        Ok(())
    }

    /// The record's size if it fits a request and the buffer has room for it.
    fn room_for(&self, record: &Record<'_>) -> Result<usize, SendError> {
        let size = record_size(record);
        if size + kasio_proto::records::BATCH_HEADER_LEN > self.config.max_request_size {
            return Err(SendError::Invalid(ProduceError::RecordTooLarge { size }));
        }
        if self.buffered + size > self.config.buffer_memory && self.buffered > 0 {
            return Err(SendError::BufferFull);
        }
        Ok(size)
    }

    fn new_topic(&mut self, topic: &str) {
        {
            let name: Arc<str> = topic.into();
            self.topics.insert(
                name.clone(),
                TopicState {
                    name,
                    meta: None,
                    partitions: Vec::new(),
                    pending: VecDeque::new(),
                    sticky: None,
                    round_robin: 0,
                },
            );
            self.net.metadata.request_refresh();
        }
    }

    /// Partitions a record whose topic metadata is known and appends it to its partition's
    /// open batch: whether a batch closed (and so may be sent). The error is `None` while
    /// the topic's partitions are not known yet.
    fn append(
        &mut self,
        record: &Record<'_>,
        timestamp: i64,
        size: usize,
        token: T,
        now: Instant,
    ) -> Result<bool, (Option<SendError>, T)> {
        let batch_size = self.config.batch_size;
        let compression = self.config.compression;
        let transactional = self.txn.is_some();
        let Some(topic) = self
            .topics
            .get_mut(record.topic)
            .filter(|t| t.meta.is_some())
        else {
            return Err((None, token));
        };
        let count = topic.partitions.len();
        let Ok(count_i32) = i32::try_from(count) else {
            return Err((
                Some(SendError::Invalid(ProduceError::UnknownPartition)),
                token,
            ));
        };
        let partition = match record.partition {
            Some(p) => p,
            None => choose_partition(
                &mut self.config.partitioner,
                topic,
                record,
                count_i32,
                &mut self.rng,
            ),
        };
        let Some(ps) = usize::try_from(partition)
            .ok()
            .and_then(|i| topic.partitions.get_mut(i))
        else {
            return Err((
                Some(SendError::Invalid(ProduceError::UnknownPartition)),
                token,
            ));
        };
        let mut closed = false;
        if let Some(open) = &ps.open
            && !open.builder.is_empty()
            && open.builder.uncompressed_size() + size > batch_size
        {
            closed |= close_open(ps, self.config.delivery_timeout, &mut self.free_buffers);
        }
        if ps.open.is_none() {
            // A new batch brings a new linger deadline, possibly the earliest.
            self.new_deadline = true;
            let capacity = batch_size.max(size + kasio_proto::records::BATCH_HEADER_LEN);
            // A finished batch's buffer is reused: fresh pages cost more than the encoding.
            let buffer = self.free_buffers.take(capacity);
            // `size` is a record's most: half of it guesses the records a batch holds
            // without the list growing (copying) in most batches.
            let tokens = self
                .events
                .tokens((capacity / (size / 2).max(1)).min(16 * 1024));
            ps.open = Some(OpenBatch::new(
                compression,
                transactional,
                capacity,
                tokens,
                buffer,
                now,
            ));
        }
        let Some(open) = ps.open.as_mut() else {
            return Err((Some(SendError::Closed), token));
        };
        if open
            .builder
            .append(timestamp, record.key, record.value, record.headers)
            .is_err()
        {
            return Err((
                Some(SendError::Invalid(ProduceError::RecordTooLarge { size })),
                token,
            ));
        }
        open.tokens.push_back((token, timestamp));
        open.size += size;
        if open.builder.uncompressed_size() >= batch_size {
            closed |= close_open(ps, self.config.delivery_timeout, &mut self.free_buffers);
        }
        if let Some((_, bytes)) = &mut topic.sticky {
            *bytes += size;
            if *bytes >= batch_size {
                topic.sticky = None;
            }
        }
        self.buffered += size;
        self.outstanding += 1;
        Ok(closed)
    }

    /// Sends everything buffered without waiting for `linger.ms`; [`Event::Flushed`]
    /// follows once every record has its delivery event.
    pub fn flush(&mut self, now: Instant) {
        self.flushing = true;
        self.new_deadline = true;
        self.drain(now);
    }

    /// Stops accepting records, delivers what is buffered, then closes every connection
    /// and emits [`Event::Closed`].
    pub fn close(&mut self, now: Instant) {
        if self.lifecycle == Lifecycle::Open {
            self.lifecycle = Lifecycle::Closing;
        }
        self.flush(now);
    }

    /// Fails every buffered record with [`ProduceError::Closed`] and closes at once.
    pub fn abort(&mut self, now: Instant) {
        self.lifecycle = Lifecycle::Closing;
        self.fail_everything(&ProduceError::Closed);
        self.drain(now);
    }

    /// The shell opened the connection it was asked to.
    pub fn handle_connected(&mut self, conn: ConnId, now: Instant) {
        self.net.connected(conn, now);
        self.drain(now);
    }

    /// Bytes arrived on a connection; complete responses are handled.
    pub fn handle_input(&mut self, conn: ConnId, data: &[u8], now: Instant) {
        let received = self.net.receive(conn, data, now);
        for (req, frame) in received.responses {
            // A response may have closed the connection; what follows it is void.
            if !self.net.is_open(conn) {
                break;
            }
            self.on_response(conn, req, frame, now);
        }
        if received.error.is_some() {
            self.lose(conn, now, true);
        }
        self.drain(now);
    }

    /// The shell's socket closed (or its dial failed).
    pub fn handle_closed(&mut self, conn: ConnId, reason: CloseReason, now: Instant) {
        let _ = reason;
        self.lose(conn, now, false);
        self.drain(now);
    }

    /// Time has passed: requests time out, lingering batches go out, retries begin.
    pub fn handle_timeout(&mut self, now: Instant) {
        for id in self.net.timed_out(now) {
            self.lose(id, now, true);
        }
        self.drain(now);
    }

    /// The next socket to open or close.
    pub fn poll_connect(&mut self) -> Option<ConnectAction> {
        self.net.poll_connect()
    }

    /// The next bytes to write.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.net.poll_transmit()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event<T>> {
        self.events.pop_front()
    }

    /// The next events if they are the deliveries of one acknowledged batch, taken whole:
    /// cheaper than an [`Event::Delivery`] per record. Events keep their order whichever
    /// of this and [`poll_event`](Self::poll_event) takes them. Hand the emptied batch to
    /// [`reuse`](Self::reuse) to spare a new batch an allocation.
    pub fn poll_delivered(&mut self) -> Option<Delivered<T>> {
        self.events.pop_delivered()
    }

    /// Takes back a batch from [`poll_delivered`](Self::poll_delivered) for its memory;
    /// records still in it are dropped.
    pub fn reuse(&mut self, batch: Delivered<T>) {
        self.events.recycle(batch.into_tokens());
    }

    /// Whether a shell that is waiting elsewhere must come back now: output is waiting, or
    /// a command created a deadline it has not yet read from [`poll_timeout`](Self::poll_timeout).
    /// Cheaper than calling `poll_timeout` after every `send`.
    pub fn needs_attention(&self) -> bool {
        self.new_deadline || self.net.has_output() || !self.events.is_empty()
    }

    /// Forgets a connection and puts what was in flight on it back to be retried.
    fn lose(&mut self, conn: ConnId, now: Instant, close: bool) {
        let c = if close {
            self.net.pool.close(conn, now, &mut self.rng)
        } else {
            self.net.pool.forget(conn, now, &mut self.rng)
        };
        let Some(c) = c else {
            return;
        };
        for req in c.in_flight {
            match req.tag {
                Tag::ApiVersions
                | Tag::Fetch(_)
                | Tag::ListOffsets(_)
                | Tag::FindCoordinator
                | Tag::OffsetFetch(_)
                | Tag::OffsetCommit(_)
                | Tag::Heartbeat
                | Tag::Admin(_)
                | Tag::SaslHandshake
                | Tag::SaslAuthenticate
                | Tag::Classic
                | Tag::ShareFetch(_)
                | Tag::ShareAck(_)
                | Tag::ShareHeartbeat
                | Tag::GroupConfigs => {}
                Tag::Txn(code) => {
                    if let Some(call) = TxnCall::from_tag(code) {
                        self.txn_lost(call, now);
                    }
                }
                Tag::Metadata => self.net.metadata.failed(now),
                Tag::InitProducerId => {
                    let at = now + self.config.network.retry_backoff;
                    self.producer_id.failed(at);
                }
                Tag::Produce(id) => self.produce_lost(id, now),
            }
        }
        self.net.metadata.request_refresh();
    }

    fn fail_everything(&mut self, error: &ProduceError) {
        self.fail_held(error);
        let topics: Vec<Arc<str>> = self.topics.keys().cloned().collect();
        for name in topics {
            let Some(topic) = self.topics.get_mut(&name) else {
                continue;
            };
            let pending: Vec<Pending<T>> = topic.pending.drain(..).collect();
            let mut batches = Vec::new();
            for ps in &mut topic.partitions {
                if let Some(open) = ps.open.take() {
                    batches.push((open.tokens, open.size));
                }
                for b in ps.queue.drain(..) {
                    batches.push((b.tokens, b.size));
                }
            }
            for p in pending {
                self.outstanding -= 1;
                self.buffered = self.buffered.saturating_sub(pending_size(&p));
                self.events.push_back(Event::Delivery {
                    token: p.token,
                    result: Err(error.clone()),
                });
            }
            for (tokens, size) in batches {
                self.buffered = self.buffered.saturating_sub(size);
                for (token, _) in tokens {
                    self.outstanding -= 1;
                    self.events.push_back(Event::Delivery {
                        token,
                        result: Err(error.clone()),
                    });
                }
            }
        }
        self.requests.clear();
    }

    /// The earliest time `handle_timeout` has work to do.
    pub fn poll_timeout(&mut self) -> Option<Timeout> {
        self.new_deadline = false;
        self.next_timeout()
    }

    fn next_timeout(&self) -> Option<Timeout> {
        let now = self.now;
        let mut earliest = Earliest::new(now);
        self.net.offer_request_deadlines(&mut earliest);
        for c in self.net.pool.iter() {
            if c.in_flight.is_empty() {
                earliest.offer(
                    c.last_used + self.config.connections_max_idle,
                    "idle connection",
                );
            }
        }
        if self.lifecycle == Lifecycle::Closed {
            return earliest.best();
        }
        self.net.offer_metadata_deadlines(&mut earliest);
        self.offer_held_deadline(&mut earliest);
        if let Some(at) = self.producer_id.retry_at {
            earliest.offer(at, "producer id retry");
        }
        if let Some(at) = self.txn.as_ref().and_then(|t| t.retry_at) {
            earliest.offer(at, "transaction coordinator retry");
        }
        for topic in self.topics.values() {
            if let Some(p) = topic.pending.front() {
                earliest.offer(
                    p.since + self.config.max_block,
                    "metadata wait (max.block.ms)",
                );
            }
            for ps in &topic.partitions {
                if let Some(open) = &ps.open {
                    earliest.offer(open.created + self.config.linger, "linger.ms");
                    earliest.offer(
                        open.created + self.config.delivery_timeout,
                        "delivery.timeout.ms",
                    );
                }
                if let Some(at) = ps.retry_after {
                    earliest.offer(at, "retry backoff");
                }
                if let Some(b) = ps.queue.front() {
                    earliest.offer(b.deadline, "delivery.timeout.ms");
                }
            }
        }
        earliest.best()
    }
}

/// An upper bound on what a record adds to a batch.
fn record_size(r: &Record<'_>) -> usize {
    RECORD_OVERHEAD
        + r.key.map_or(0, <[u8]>::len)
        + r.value.map_or(0, <[u8]>::len)
        + r.headers
            .iter()
            .map(|(k, v)| k.len() + v.len() + 10)
            .sum::<usize>()
}

fn pending_size<T>(p: &Pending<T>) -> usize {
    RECORD_OVERHEAD
        + p.key.as_ref().map_or(0, Bytes::len)
        + p.value.as_ref().map_or(0, Bytes::len)
        + p.headers
            .iter()
            .map(|(k, v)| k.len() + v.len() + 10)
            .sum::<usize>()
}

/// Closes the open batch into the queue; whether there was one.
fn close_open<T>(
    ps: &mut PartitionState<T>,
    delivery_timeout: Duration,
    free: &mut batch::FreeBuffers,
) -> bool {
    let Some(open) = ps.open.take() else {
        return false;
    };
    let deadline = open.created + delivery_timeout;
    // A builder with records always finishes; compression of in-memory bytes cannot fail.
    let Ok((data, spare)) = open.builder.finish_with_spare() else {
        return false;
    };
    if let Some(spare) = spare {
        free.keep(spare);
    }
    ps.queue.push_back(batch::Batch {
        data,
        tokens: open.tokens,
        size: open.size,
        deadline,
        attempts: 0,
        sequence: None,
        stamped: None,
        state: batch::BatchState::Queued,
        unknown: false,
    });
    true
}

fn choose_partition<T>(
    partitioner: &mut Partitioner,
    topic: &mut TopicState<T>,
    record: &Record<'_>,
    count: i32,
    rng: &mut Rng,
) -> i32 {
    let sticky = |topic: &mut TopicState<T>, rng: &mut Rng| -> i32 {
        if let Some((p, _)) = topic.sticky
            && p < count
        {
            return p;
        }
        // KIP-794: a new sticky partition, preferring ones with a leader.
        let available: Vec<i32> = topic
            .meta
            .as_ref()
            .map(|m| {
                m.partitions
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| p.leader.is_some())
                    .filter_map(|(i, _)| i32::try_from(i).ok())
                    .collect()
            })
            .unwrap_or_default();
        let p = if available.is_empty() {
            i32::try_from(rng.below(u64::try_from(count).unwrap_or(1))).unwrap_or(0)
        } else {
            let len = u64::try_from(available.len()).unwrap_or(1);
            available[usize::try_from(rng.below(len)).unwrap_or(0)]
        };
        topic.sticky = Some((p, 0));
        p
    };
    match partitioner {
        Partitioner::Default => match record.key {
            Some(key) => key_partition(key, count),
            None => sticky(topic, rng),
        },
        Partitioner::IgnoreKeys => sticky(topic, rng),
        Partitioner::RoundRobin => {
            let p = topic.round_robin % u32::try_from(count).unwrap_or(1).max(1);
            topic.round_robin = topic.round_robin.wrapping_add(1);
            i32::try_from(p).unwrap_or(0)
        }
        Partitioner::Custom(custom) => custom
            .partition(&topic.name, record.key, record.value, count)
            .unwrap_or_else(|| match record.key {
                Some(key) => key_partition(key, count),
                None => sticky(topic, rng),
            }),
    }
}
