//! Typed handles: a producer that sends `K` and `V` through serializers, and a consumer
//! that hands out deserialized records, fetching writers' schemas from a Schema
//! Registry as records name them. The codec work is kasio-serde's sans-IO
//! [`RecordEncoder`] and [`RecordDecoder`]; these handles only wait.

use crate::{
    consumer::{Consumer, Fetched},
    driver::{AsyncRuntime, BlockingRuntime},
    producer::{Delivery, Producer},
    registry::SchemaRegistry,
};
use kasio_core::{ConsumerEvent, ConsumerRecord, Record, SendError};
use kasio_proto::DecodeError;
use kasio_registry::{RegistryError, Schema};
use kasio_serde::{
    BadRecord, Decoded, Deserializer, EncodeError, OnBadRecord, RecordDecoder, RecordEncoder,
    RecordError, SchemaSource, Serializer, Step, TypedRecord,
};
use std::{sync::Arc, time::Duration};

/// A registry's cache is where deserializers find writers' schemas: a miss is fetched by
/// the typed consumer, which then reads the record again.
impl<R> SchemaSource for SchemaRegistry<R> {
    fn schema(&self, id: u32) -> Option<Arc<Schema>> {
        self.cached_schema(id)
    }

    fn referenced(&self, subject: &str, version: i32) -> Option<Arc<Schema>> {
        self.cached_reference(subject, version)
    }
}

/// What a typed consumer hands out.
#[derive(Debug, Clone)]
pub enum Typed<K, V> {
    /// A record, deserialized.
    Record(TypedRecord<K, V>),
    /// A record that did not deserialize, raw, under [`OnBadRecord::Hand`].
    Bad(BadRecord),
    /// An event of the consumer: a partition's end, an assignment change, an error.
    Event(ConsumerEvent),
}

/// Why a typed consumer handed out no record.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TypedError {
    /// A record did not deserialize and the policy is [`OnBadRecord::Fail`]: every read
    /// returns this until [`TypedConsumer::skip_failed`].
    Record(RecordError),
    /// The registry could not be asked for a writer's schema (it is down, or answered
    /// 5xx past the retries): the record is kept, and the next read asks again.
    Registry(RegistryError),
    /// A fetched batch did not decode; the rest of it was dropped.
    Corrupt {
        /// The batch's topic.
        topic: Arc<str>,
        /// Its partition.
        partition: i32,
        /// What was wrong.
        error: DecodeError,
    },
}

impl std::fmt::Display for TypedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Record(e) => e.fmt(f),
            Self::Registry(e) => write!(f, "fetching a writer's schema: {e}"),
            Self::Corrupt {
                topic,
                partition,
                error,
            } => write!(f, "a batch of {topic}-{partition} did not decode: {error}"),
        }
    }
}

impl std::error::Error for TypedError {}

/// A consumer handing out deserialized records; see [`Consumer::typed`].
pub struct TypedConsumer<R, K, V, KD, VD> {
    consumer: Consumer<R>,
    registry: Option<SchemaRegistry<R>>,
    decoder: RecordDecoder<K, V, KD, VD>,
}

impl<R, K, V, KD, VD> std::fmt::Debug for TypedConsumer<R, K, V, KD, VD> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedConsumer")
            .field("decoder", &self.decoder)
            .finish_non_exhaustive()
    }
}

/// What one turn of the decoder left to do.
pub(crate) enum Next<K, V, R> {
    Done(Result<Typed<K, V>, TypedError>),
    /// The writer's schema with this id is being fetched: the call to wait for.
    Fetch(u32, crate::registry::RegistryCall<Arc<Schema>, R>),
    Empty,
}

impl<R> Consumer<R> {
    /// This consumer, handing out records with keys read by `key` and values by
    /// `value`; a record that does not deserialize stops it ([`OnBadRecord::Fail`])
    /// unless [`on_bad_record`](TypedConsumer::on_bad_record) says otherwise.
    ///
    /// ```no_run
    /// # async fn demo<R: kasio_shell::AsyncRuntime>(consumer: kasio_shell::Consumer<R>, registry: kasio_shell::SchemaRegistry<R>) {
    /// use kasio_serde::{AvroDeserializer, OnBadRecord, StringCodec};
    /// use kasio_shell::Typed;
    /// #[derive(serde::Deserialize, Debug)]
    /// struct Order { id: i64 }
    /// let mut orders = consumer
    ///     .typed(StringCodec, AvroDeserializer::<Order>::new(registry.clone()))
    ///     .with_registry(registry)
    ///     .on_bad_record(OnBadRecord::Skip);
    /// while let Ok(got) = orders.next().await {
    ///     if let Typed::Record(order) = got {
    ///         println!("{:?}: {:?}", order.key, order.value);
    ///     }
    /// }
    /// # }
    /// ```
    pub fn typed<K, V, KD: Deserializer<K>, VD: Deserializer<V>>(
        self,
        key: KD,
        value: VD,
    ) -> TypedConsumer<R, K, V, KD, VD> {
        TypedConsumer {
            consumer: self,
            registry: None,
            decoder: RecordDecoder::new(key, value, OnBadRecord::Fail),
        }
    }
}

impl<R, K, V, KD: Deserializer<K>, VD: Deserializer<V>> TypedConsumer<R, K, V, KD, VD> {
    /// The same, fetching writers' schemas its deserializers miss from `registry`.
    /// Without one, a record whose schema is not cached is a bad record.
    #[must_use]
    pub fn with_registry(mut self, registry: SchemaRegistry<R>) -> Self {
        self.registry = Some(registry);
        self
    }

    /// The same, with `policy` for records that do not deserialize.
    #[must_use]
    pub fn on_bad_record(mut self, policy: OnBadRecord) -> Self {
        self.decoder.set_policy(policy);
        self
    }

    /// The consumer underneath: to subscribe, commit, seek (then
    /// [`clear`](Self::clear)), pause or close.
    pub fn consumer(&self) -> &Consumer<R> {
        &self.consumer
    }

    /// Steps past the record a [`TypedError::Record`] stopped at, returning it raw.
    pub fn skip_failed(&mut self) -> Option<ConsumerRecord> {
        self.decoder.skip_failed()
    }

    /// How many bad records [`OnBadRecord::Skip`] stepped past.
    #[must_use]
    pub fn skipped(&self) -> u64 {
        self.decoder.skipped()
    }

    /// Drops the records fetched but not yet handed out (after a seek).
    pub fn clear(&mut self) {
        self.decoder.clear();
    }

    pub(crate) fn turn(&mut self) -> Next<K, V, R> {
        match self.decoder.step() {
            Step::Ready(Decoded::Record(r)) => Next::Done(Ok(Typed::Record(r))),
            Step::Ready(Decoded::Bad(b)) => Next::Done(Ok(Typed::Bad(b))),
            Step::Failed(e) => Next::Done(Err(TypedError::Record(e))),
            Step::Corrupt {
                topic,
                partition,
                error,
            } => Next::Done(Err(TypedError::Corrupt {
                topic,
                partition,
                error,
            })),
            Step::NeedSchema(id) if let Some(registry) = &self.registry => {
                Next::Fetch(id, registry.schema_by_id(id))
            }
            Step::NeedSchema(id) => {
                // Nobody to ask: the record is a bad one.
                self.decoder.schema_missing(id);
                self.turn()
            }
            Step::Empty => Next::Empty,
        }
    }

    /// What a schema fetch's outcome leaves to hand out, if anything.
    pub(crate) fn fetched(
        &mut self,
        id: u32,
        got: Result<Arc<Schema>, RegistryError>,
    ) -> Option<TypedError> {
        match got {
            Ok(_) => None,
            Err(e) if e.is_not_found() => {
                self.decoder.schema_missing(id);
                None
            }
            Err(e) => Some(TypedError::Registry(e)),
        }
    }

    pub(crate) fn take(&mut self, fetched: Fetched) -> Option<Typed<K, V>> {
        match fetched {
            Fetched::Batch(batch) => {
                self.decoder.push(batch);
                None
            }
            Fetched::Event(event) => {
                if let ConsumerEvent::Revoking { partitions }
                | ConsumerEvent::Revoked { partitions }
                | ConsumerEvent::Lost { partitions } = &event
                {
                    // Records of partitions the member no longer owns (or is giving up)
                    // are its next owner's to read.
                    self.decoder.drop_partitions(partitions);
                }
                Some(Typed::Event(event))
            }
        }
    }
}

impl<R: AsyncRuntime, K, V, KD: Deserializer<K>, VD: Deserializer<V>>
    TypedConsumer<R, K, V, KD, VD>
{
    /// The next record or event, waiting for one.
    ///
    /// # Errors
    /// [`TypedError`]: a bad record under [`OnBadRecord::Fail`], the registry out of
    /// reach, or a batch that did not decode. None of them ends the consumer.
    pub async fn next(&mut self) -> Result<Typed<K, V>, TypedError> {
        loop {
            match self.turn() {
                Next::Done(got) => return got,
                Next::Fetch(id, call) => {
                    let got = call.await;
                    if let Some(e) = self.fetched(id, got) {
                        return Err(e);
                    }
                }
                Next::Empty => {
                    let fetched = self.consumer.next().await;
                    if let Some(event) = self.take(fetched) {
                        return Ok(event);
                    }
                }
            }
        }
    }
}

impl<R: BlockingRuntime, K, V, KD: Deserializer<K>, VD: Deserializer<V>>
    TypedConsumer<R, K, V, KD, VD>
{
    /// The next record or event, blocking the thread up to `timeout` for each fetch;
    /// `None` if nothing came. A schema fetch waits for the registry's own timeout.
    ///
    /// # Errors
    /// As the async `next`.
    pub fn poll(&mut self, timeout: Duration) -> Option<Result<Typed<K, V>, TypedError>> {
        loop {
            match self.turn() {
                Next::Done(got) => return Some(got),
                Next::Fetch(id, call) => {
                    let got = call.wait();
                    if let Some(e) = self.fetched(id, got) {
                        return Some(Err(e));
                    }
                }
                Next::Empty => {
                    let fetched = self.consumer.poll(timeout)?;
                    if let Some(event) = self.take(fetched) {
                        return Some(Ok(event));
                    }
                }
            }
        }
    }
}

/// Why a typed producer did not take a record.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TypedSendError {
    /// The key or the value did not serialize.
    Encode(EncodeError),
    /// The producer refused the record.
    Send(SendError),
    /// A record a sink took was not delivered.
    Delivery(kasio_core::ProduceError),
}

impl std::fmt::Display for TypedSendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Encode(e) => write!(f, "cannot serialize the {e}"),
            Self::Send(e) => e.fmt(f),
            Self::Delivery(e) => write!(f, "not delivered: {e}"),
        }
    }
}

impl std::error::Error for TypedSendError {}

/// A producer sending `K` keys and `V` values through serializers; see
/// [`Producer::typed`]. It keeps its own buffers for the bytes, so sending takes
/// `&mut self`; clone the producer underneath for another.
pub struct TypedProducer<R, K: ?Sized, V: ?Sized, KS, VS> {
    producer: Producer<R>,
    encoder: RecordEncoder<K, V, KS, VS>,
}

impl<R, K: ?Sized, V: ?Sized, KS, VS> std::fmt::Debug for TypedProducer<R, K, V, KS, VS> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedProducer").finish_non_exhaustive()
    }
}

impl<R> Producer<R> {
    /// This producer, serializing keys with `key` and values with `value`.
    ///
    /// ```no_run
    /// # async fn demo<R: kasio_shell::AsyncRuntime>(producer: kasio_shell::Producer<R>) -> Result<(), Box<dyn std::error::Error>> {
    /// use kasio_core::Record;
    /// use kasio_serde::{Json, StringCodec};
    /// #[derive(serde::Serialize)]
    /// struct Order { id: i64 }
    /// let mut orders = producer.typed(StringCodec, Json::<Order>::new());
    /// let delivery = orders.send(Record::new("orders"), Some("k"), Some(&Order { id: 1 })).await?;
    /// delivery.await?;
    /// # Ok(()) }
    /// ```
    pub fn typed<K: ?Sized, V: ?Sized, KS: Serializer<K>, VS: Serializer<V>>(
        self,
        key: KS,
        value: VS,
    ) -> TypedProducer<R, K, V, KS, VS> {
        TypedProducer {
            producer: self,
            encoder: RecordEncoder::new(key, value),
        }
    }
}

impl<R, K: ?Sized, V: ?Sized, KS: Serializer<K>, VS: Serializer<V>> TypedProducer<R, K, V, KS, VS> {
    /// The producer underneath: to flush, close or run transactions.
    pub fn producer(&self) -> &Producer<R> {
        &self.producer
    }

    /// Sends `record` (its topic, partition, headers and timestamp) with `key` and
    /// `value` serialized, if there is room now.
    ///
    /// # Errors
    /// [`TypedSendError`], with [`SendError::BufferFull`] without waiting.
    pub fn try_send_now(
        &mut self,
        record: Record<'_>,
        key: Option<&K>,
        value: Option<&V>,
    ) -> Result<Delivery<R>, TypedSendError> {
        let record = self
            .encoder
            .encode(record, key, value)
            .map_err(TypedSendError::Encode)?;
        self.producer
            .try_send_now(record)
            .map_err(TypedSendError::Send)
    }
}

impl<R: AsyncRuntime, K: ?Sized, V: ?Sized, KS: Serializer<K>, VS: Serializer<V>>
    TypedProducer<R, K, V, KS, VS>
{
    /// Sends `record` with `key` and `value` serialized, waiting up to `max.block.ms`
    /// for room; returns the future of its delivery.
    ///
    /// # Errors
    /// [`TypedSendError`]: the key or value did not serialize, or the producer refused.
    pub async fn send(
        &mut self,
        record: Record<'_>,
        key: Option<&K>,
        value: Option<&V>,
    ) -> Result<Delivery<R>, TypedSendError> {
        let record = self
            .encoder
            .encode(record, key, value)
            .map_err(TypedSendError::Encode)?;
        self.producer
            .send(record)
            .await
            .map_err(TypedSendError::Send)
    }
}

impl<R: BlockingRuntime, K: ?Sized, V: ?Sized, KS: Serializer<K>, VS: Serializer<V>>
    TypedProducer<R, K, V, KS, VS>
{
    /// Sends `record` with `key` and `value` serialized, blocking up to `max.block.ms`
    /// for room; returns its delivery.
    ///
    /// # Errors
    /// As the async `send`.
    pub fn send_blocking(
        &mut self,
        record: Record<'_>,
        key: Option<&K>,
        value: Option<&V>,
    ) -> Result<Delivery<R>, TypedSendError> {
        let record = self
            .encoder
            .encode(record, key, value)
            .map_err(TypedSendError::Encode)?;
        self.producer
            .send_blocking(record)
            .map_err(TypedSendError::Send)
    }
}

/// A typed consumer's records and events as a [`futures_core::Stream`] of what
/// [`TypedConsumer::next`] returns; it never ends. See [`TypedConsumer::stream`].
pub struct TypedStream<'a, R, K, V, KD, VD> {
    consumer: &'a mut TypedConsumer<R, K, V, KD, VD>,
    /// The schema being fetched, and its call.
    fetching: Option<(u32, crate::registry::RegistryCall<Arc<Schema>, R>)>,
    /// Taken when nothing was ready, so a wake-up after the check is not missed.
    listener: Option<event_listener::EventListener>,
}

impl<R, K, V, KD, VD> std::fmt::Debug for TypedStream<'_, R, K, V, KD, VD> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedStream")
            .field("fetching", &self.fetching.as_ref().map(|(id, _)| id))
            .finish_non_exhaustive()
    }
}

impl<R: AsyncRuntime, K, V, KD: Deserializer<K>, VD: Deserializer<V>>
    TypedConsumer<R, K, V, KD, VD>
{
    /// The records and events as a [`futures_core::Stream`].
    ///
    /// ```no_run
    /// # async fn demo<R: kasio_shell::AsyncRuntime>(consumer: kasio_shell::Consumer<R>) {
    /// use futures_lite::StreamExt;
    /// use kasio_serde::{Json, StringCodec};
    /// let mut typed = consumer.typed(StringCodec, Json::<u64>::new());
    /// let mut records = typed.stream();
    /// while let Some(Ok(kasio_shell::Typed::Record(r))) = records.next().await {
    ///     println!("{:?}", r.value);
    /// }
    /// # }
    /// ```
    pub fn stream(&mut self) -> TypedStream<'_, R, K, V, KD, VD> {
        TypedStream {
            consumer: self,
            fetching: None,
            listener: None,
        }
    }
}

impl<R: AsyncRuntime, K, V, KD: Deserializer<K>, VD: Deserializer<V>> futures_core::Stream
    for TypedStream<'_, R, K, V, KD, VD>
{
    type Item = Result<Typed<K, V>, TypedError>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::{future::Future, pin::Pin, task::Poll};
        let this = self.get_mut();
        loop {
            if let Some((id, call)) = &mut this.fetching {
                let Poll::Ready(got) = Pin::new(call).poll(cx) else {
                    return Poll::Pending;
                };
                let id = *id;
                this.fetching = None;
                if let Some(e) = this.consumer.fetched(id, got) {
                    return Poll::Ready(Some(Err(e)));
                }
            }
            match this.consumer.turn() {
                Next::Done(got) => return Poll::Ready(Some(got)),
                Next::Fetch(id, call) => {
                    this.fetching = Some((id, call));
                }
                Next::Empty => {
                    if let Some(listener) = &mut this.listener {
                        if Pin::new(listener).poll(cx).is_pending() {
                            return Poll::Pending;
                        }
                        this.listener = None;
                    }
                    if let Some(fetched) = this.consumer.consumer.try_next() {
                        if let Some(event) = this.consumer.take(fetched) {
                            return Poll::Ready(Some(Ok(event)));
                        }
                        continue;
                    }
                    let listener = this.consumer.consumer.listen();
                    // Something may have come between the check and the listening.
                    if let Some(fetched) = this.consumer.consumer.try_next() {
                        if let Some(event) = this.consumer.take(fetched) {
                            return Poll::Ready(Some(Ok(event)));
                        }
                        continue;
                    }
                    this.listener = Some(listener);
                }
            }
        }
    }
}

/// What a [`TypedSink`] takes: a key and a value (either may be `None`: a null key, a
/// tombstone), optionally for a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<K, V> {
    /// The key.
    pub key: Option<K>,
    /// The value.
    pub value: Option<V>,
    /// The partition (by default the partitioner picks).
    pub partition: Option<i32>,
}

impl<K, V> Message<K, V> {
    /// A keyed value.
    pub fn new(key: K, value: V) -> Self {
        Self {
            key: Some(key),
            value: Some(value),
            partition: None,
        }
    }

    /// A value without a key.
    pub fn value(value: V) -> Self {
        Self {
            key: None,
            value: Some(value),
            partition: None,
        }
    }
}

/// A typed producer as a [`futures_sink::Sink`] of [`Message`]s to one topic; see
/// [`TypedProducer::into_sink`]. It pushes back when `buffer.memory` is full (a message
/// is taken only when there is room), and [`flush`](futures_sink::Sink::poll_flush) and
/// [`close`](futures_sink::Sink::poll_close) complete once everything taken has been
/// delivered, failing with the first record that was not.
pub struct TypedSink<R, K, V, KS, VS> {
    producer: TypedProducer<R, K, V, KS, VS>,
    topic: String,
    /// A message taken while there was no room, serialized, waiting for room.
    waiting: Option<Waiting>,
    /// Deliveries in the order they were sent.
    deliveries: std::collections::VecDeque<Delivery<R>>,
    listener: Option<event_listener::EventListener>,
}

/// A serialized message waiting for room: key, value, partition.
type Waiting = (Option<Vec<u8>>, Option<Vec<u8>>, Option<i32>);

// Nothing in a sink is structurally pinned: its deliveries and listener are `Unpin`, and
// the codecs are only borrowed.
impl<R, K, V, KS, VS> Unpin for TypedSink<R, K, V, KS, VS> {}

impl<R, K, V, KS, VS> std::fmt::Debug for TypedSink<R, K, V, KS, VS> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedSink")
            .field("topic", &self.topic)
            .field("in_flight", &self.deliveries.len())
            .finish_non_exhaustive()
    }
}

impl<R, K, V, KS: Serializer<K>, VS: Serializer<V>> TypedProducer<R, K, V, KS, VS> {
    /// This producer as a sink of [`Message`]s to `topic`.
    ///
    /// ```no_run
    /// # async fn demo<R: kasio_shell::AsyncRuntime>(producer: kasio_shell::Producer<R>) -> Result<(), kasio_shell::TypedSendError> {
    /// use futures_lite::stream;
    /// use futures_util::SinkExt;
    /// use kasio_serde::{Json, StringCodec};
    /// use kasio_shell::Message;
    /// let mut sink = producer.typed(StringCodec, Json::<u64>::new()).into_sink("counts");
    /// let mut counts = stream::iter((0..100u64).map(|n| Ok(Message::new(n.to_string(), n))));
    /// sink.send_all(&mut counts).await?; // flushed: every record delivered
    /// # Ok(()) }
    /// ```
    pub fn into_sink(self, topic: impl Into<String>) -> TypedSink<R, K, V, KS, VS> {
        TypedSink {
            producer: self,
            topic: topic.into(),
            waiting: None,
            deliveries: std::collections::VecDeque::new(),
            listener: None,
        }
    }
}

impl<R: AsyncRuntime, K, V, KS: Serializer<K>, VS: Serializer<V>> TypedSink<R, K, V, KS, VS> {
    /// Sends the waiting message if there is room: ready once nothing waits.
    fn poll_room(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), TypedSendError>> {
        use std::{future::Future, pin::Pin, task::Poll};
        loop {
            let Some((key, value, partition)) = &self.waiting else {
                return Poll::Ready(Ok(()));
            };
            let mut record = Record::new(&self.topic);
            record.key = key.as_deref();
            record.value = value.as_deref();
            record.partition = *partition;
            match self.producer.producer.try_send_now(record) {
                Ok(delivery) => {
                    self.waiting = None;
                    self.listener = None;
                    self.deliveries.push_back(delivery);
                    return Poll::Ready(Ok(()));
                }
                Err(SendError::BufferFull) => {}
                Err(e) => {
                    self.waiting = None;
                    return Poll::Ready(Err(TypedSendError::Send(e)));
                }
            }
            match &mut self.listener {
                Some(listener) => {
                    if Pin::new(listener).poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    self.listener = None;
                }
                None => self.listener = Some(self.producer.producer.listen()),
            }
        }
    }

    /// Drops the deliveries at the front that completed, failing on the first that did
    /// not deliver; with `all`, waits for every one.
    fn poll_delivered(
        &mut self,
        cx: &mut std::task::Context<'_>,
        all: bool,
    ) -> std::task::Poll<Result<(), TypedSendError>> {
        use std::{future::Future, pin::Pin, task::Poll};
        while let Some(front) = self.deliveries.front_mut() {
            match Pin::new(front).poll(cx) {
                Poll::Ready(Ok(_)) => {
                    self.deliveries.pop_front();
                }
                Poll::Ready(Err(e)) => {
                    self.deliveries.pop_front();
                    return Poll::Ready(Err(TypedSendError::Delivery(e)));
                }
                Poll::Pending if all => return Poll::Pending,
                Poll::Pending => break,
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<R: AsyncRuntime, K, V, KS: Serializer<K>, VS: Serializer<V>> futures_sink::Sink<Message<K, V>>
    for TypedSink<R, K, V, KS, VS>
{
    type Error = TypedSendError;

    fn poll_ready(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        let this = self.get_mut();
        // Failures surface as soon as they are known, not only at the flush.
        if let std::task::Poll::Ready(Err(e)) = this.poll_delivered(cx, false) {
            return std::task::Poll::Ready(Err(e));
        }
        this.poll_room(cx)
    }

    fn start_send(self: std::pin::Pin<&mut Self>, item: Message<K, V>) -> Result<(), Self::Error> {
        let this = self.get_mut();
        let mut record = Record::new(&this.topic);
        if let Some(p) = item.partition {
            record = record.partition(p);
        }
        let record = this
            .producer
            .encoder
            .encode(record, item.key.as_ref(), item.value.as_ref())
            .map_err(TypedSendError::Encode)?;
        match this.producer.producer.try_send_now(record) {
            Ok(delivery) => {
                this.deliveries.push_back(delivery);
                Ok(())
            }
            Err(SendError::BufferFull) => {
                // Kept, serialized, until there is room: the next poll_ready sends it.
                this.waiting = Some((
                    record.key.map(<[u8]>::to_vec),
                    record.value.map(<[u8]>::to_vec),
                    record.partition,
                ));
                Ok(())
            }
            Err(e) => Err(TypedSendError::Send(e)),
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_room(cx))?;
        this.poll_delivered(cx, true)
    }

    fn poll_close(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.poll_flush(cx)
    }
}
