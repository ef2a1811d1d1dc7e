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
#[expect(
    clippy::large_enum_variant,
    reason = "moved once per record; boxing the record would allocate once per record"
)]
enum Next<K, V> {
    Done(Result<Typed<K, V>, TypedError>),
    Fetch(u32),
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

    fn turn(&mut self) -> Next<K, V> {
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
            Step::NeedSchema(id) if self.registry.is_some() => Next::Fetch(id),
            Step::NeedSchema(id) => {
                // Nobody to ask: the record is a bad one.
                self.decoder.schema_missing(id);
                self.turn()
            }
            Step::Empty => Next::Empty,
        }
    }

    /// What a schema fetch's outcome leaves to hand out, if anything.
    fn fetched(&mut self, id: u32, got: Result<Arc<Schema>, RegistryError>) -> Option<TypedError> {
        match got {
            Ok(_) => None,
            Err(e) if e.is_not_found() => {
                self.decoder.schema_missing(id);
                None
            }
            Err(e) => Some(TypedError::Registry(e)),
        }
    }

    fn take(&mut self, fetched: Fetched) -> Option<Typed<K, V>> {
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
                Next::Fetch(id) => {
                    let Some(registry) = &self.registry else {
                        unreachable!("a fetch is asked for only with a registry")
                    };
                    let got = registry.schema_by_id(id).await;
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
                Next::Fetch(id) => {
                    let Some(registry) = &self.registry else {
                        unreachable!("a fetch is asked for only with a registry")
                    };
                    let got = registry.schema_by_id(id).wait();
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
}

impl std::fmt::Display for TypedSendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Encode(e) => write!(f, "cannot serialize the {e}"),
            Self::Send(e) => e.fmt(f),
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
