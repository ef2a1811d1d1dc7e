//! Fetched batches in, typed records out: the part of a typed consumer that does no I/O.
//!
//! A [`RecordDecoder`] takes the batches a consumer fetched and hands out one
//! [`TypedRecord`] at a time, its key and value deserialized. When a deserializer needs
//! a writer's schema it does not have yet, the decoder says so ([`Step::NeedSchema`])
//! and keeps the record; whoever drives it fetches the schema (a `SchemaRegistry`
//! call) and asks again. A record that does not deserialize goes to the
//! [`OnBadRecord`] policy.

use crate::{Context, DeserializeError, Deserializer, RecordError};
use kasio_core::{ConsumerRecord, FetchedBatch, FetchedRecords};
use kasio_proto::{DecodeError, records::Headers};
use std::{collections::HashSet, sync::Arc};

/// What a typed consumer does with a record whose key or value does not deserialize.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnBadRecord {
    /// Stop at it: every read returns its error until the application steps past it
    /// ([`RecordDecoder::skip_failed`]), as the Java consumer's
    /// `RecordDeserializationException` does until the application seeks.
    #[default]
    Fail,
    /// Step past it, counting it ([`RecordDecoder::skipped`]).
    Skip,
    /// Hand it to the application, raw, with the error ([`Decoded::Bad`]).
    Hand,
}

impl OnBadRecord {
    /// The policy a config value names: `fail`, `skip` or `hand`.
    ///
    /// ```
    /// use kasio_serde::OnBadRecord;
    /// assert_eq!(OnBadRecord::parse("skip"), Some(OnBadRecord::Skip));
    /// assert_eq!(OnBadRecord::parse("ignore"), None);
    /// ```
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "fail" => Some(Self::Fail),
            "skip" => Some(Self::Skip),
            "hand" => Some(Self::Hand),
            _ => None,
        }
    }
}

/// A consumed record with its key and value deserialized, and where it came from.
#[derive(Debug, Clone)]
pub struct TypedRecord<K, V> {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The record's offset.
    pub offset: i64,
    /// The record's timestamp (milliseconds since the Unix epoch).
    pub timestamp: i64,
    /// The key, or `None` for a null key.
    pub key: Option<K>,
    /// The value, or `None` for a tombstone.
    pub value: Option<V>,
    /// The record's headers, decoded as they are iterated.
    pub headers: Headers,
}

/// A record that did not deserialize, handed to the application raw.
#[derive(Debug, Clone)]
pub struct BadRecord {
    /// The record as fetched.
    pub record: ConsumerRecord,
    /// What was wrong, and where.
    pub error: RecordError,
}

/// A record out of the decoder.
#[derive(Debug, Clone)]
pub enum Decoded<K, V> {
    /// It deserialized.
    Record(TypedRecord<K, V>),
    /// It did not, and the policy is [`OnBadRecord::Hand`].
    Bad(BadRecord),
}

/// What the decoder has for its driver.
#[derive(Debug)]
pub enum Step<K, V> {
    /// A record.
    Ready(Decoded<K, V>),
    /// The record in hand needs the writer's schema with this id: fetch it, then ask
    /// again (or, if the registry has no such schema, call
    /// [`RecordDecoder::schema_missing`]).
    NeedSchema(u32),
    /// The record in hand did not deserialize and the policy is [`OnBadRecord::Fail`].
    Failed(RecordError),
    /// A fetched batch did not decode (it could not be decompressed, or a record in it
    /// is malformed): the rest of that batch is dropped, and the error names it.
    Corrupt {
        /// The batch's topic.
        topic: Arc<str>,
        /// Its partition.
        partition: i32,
        /// What was wrong.
        error: DecodeError,
    },
    /// Nothing left: push the next batch.
    Empty,
}

/// How many ids the decoder remembers the registry did not know, before it forgets them
/// all (so a hostile topic naming a new id in every record cannot grow it without end).
const MAX_MISSING: usize = 1024;

/// Turns fetched batches into typed records, one at a time; see the module's text.
///
/// ```
/// use kasio_serde::{Decoded, Json, OnBadRecord, RecordDecoder, Step, StringCodec};
/// let mut decoder = RecordDecoder::<String, u32, _, _>::new(StringCodec, Json::new(), OnBadRecord::Skip);
/// assert!(matches!(decoder.step(), Step::Empty));
/// // decoder.push(batch) with each batch the consumer fetched, then:
/// while let Step::Ready(Decoded::Record(record)) = decoder.step() {
///     println!("{:?} = {:?}", record.key, record.value);
/// }
/// ```
pub struct RecordDecoder<K, V, KD, VD> {
    key: KD,
    value: VD,
    policy: OnBadRecord,
    batches: std::collections::VecDeque<FetchedBatch>,
    /// The records of the batch being read, with its topic and partition.
    records: Option<(Arc<str>, i32, FetchedRecords)>,
    /// The record being decoded: waiting for a schema, or failed under `Fail`.
    held: Option<ConsumerRecord>,
    missing: HashSet<u32>,
    skipped: u64,
    kind: std::marker::PhantomData<fn() -> (K, V)>,
}

impl<K, V, KD, VD> std::fmt::Debug for RecordDecoder<K, V, KD, VD> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordDecoder")
            .field("policy", &self.policy)
            .field("batches", &self.batches.len())
            .field("held", &self.held.is_some())
            .field("skipped", &self.skipped)
            .finish_non_exhaustive()
    }
}

impl<K, V, KD: Deserializer<K>, VD: Deserializer<V>> RecordDecoder<K, V, KD, VD> {
    /// A decoder reading keys with `key` and values with `value`.
    pub fn new(key: KD, value: VD, policy: OnBadRecord) -> Self {
        Self {
            key,
            value,
            policy,
            batches: std::collections::VecDeque::new(),
            records: None,
            held: None,
            missing: HashSet::new(),
            skipped: 0,
            kind: std::marker::PhantomData,
        }
    }

    /// Changes the policy for bad records from here on.
    pub fn set_policy(&mut self, policy: OnBadRecord) {
        self.policy = policy;
    }

    /// Queues a fetched batch behind those already pushed.
    pub fn push(&mut self, batch: FetchedBatch) {
        self.batches.push_back(batch);
    }

    /// Whether there is nothing left to decode (a [`step`](Self::step) would be
    /// [`Step::Empty`]).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.held.is_none() && self.records.is_none() && self.batches.is_empty()
    }

    /// How many bad records [`OnBadRecord::Skip`] stepped past.
    #[must_use]
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// The registry has no schema `id`: a record naming it is a bad record
    /// ([`DeserializeError::UnknownSchema`]) rather than one to wait for.
    pub fn schema_missing(&mut self, id: u32) {
        if self.missing.len() >= MAX_MISSING {
            self.missing.clear();
        }
        self.missing.insert(id);
    }

    /// Steps past the record [`Step::Failed`] stopped at, returning it.
    pub fn skip_failed(&mut self) -> Option<ConsumerRecord> {
        self.held.take()
    }

    /// Drops what is queued of `partitions` (the group took them away): their next owner
    /// reads those records from the committed offsets. Returns how many batches went.
    pub fn drop_partitions(&mut self, partitions: &[kasio_core::TopicPartition]) -> usize {
        let gone = |topic: &str, partition: i32| {
            partitions
                .iter()
                .any(|tp| &*tp.topic == topic && tp.partition == partition)
        };
        if self
            .held
            .as_ref()
            .is_some_and(|r| gone(&r.topic, r.partition))
        {
            self.held = None;
        }
        let mut dropped = 0;
        if self
            .records
            .as_ref()
            .is_some_and(|(topic, partition, _)| gone(topic, *partition))
        {
            self.records = None;
            dropped += 1;
        }
        let before = self.batches.len();
        self.batches.retain(|b| !gone(&b.topic, b.partition));
        dropped + before - self.batches.len()
    }

    /// Drops everything queued (after a seek or a lost partition), returning how many
    /// batches were dropped; a held record goes too.
    pub fn clear(&mut self) -> usize {
        self.held = None;
        self.records = None;
        let dropped = self.batches.len();
        self.batches.clear();
        dropped
    }

    /// The next step; see [`Step`].
    pub fn step(&mut self) -> Step<K, V> {
        loop {
            let record = match self.held.take() {
                Some(record) => record,
                None => match self.next_record() {
                    Ok(Some(record)) => record,
                    Ok(None) => return Step::Empty,
                    Err((topic, partition, error)) => {
                        return Step::Corrupt {
                            topic,
                            partition,
                            error,
                        };
                    }
                },
            };
            match self.decode(&record) {
                Ok(typed) => return Step::Ready(Decoded::Record(typed)),
                Err(error) => {
                    if let DeserializeError::UnknownSchema { id } = error.error
                        && !self.missing.contains(&id)
                    {
                        self.held = Some(record);
                        return Step::NeedSchema(id);
                    }
                    match self.policy {
                        OnBadRecord::Skip => self.skipped += 1,
                        OnBadRecord::Hand => {
                            return Step::Ready(Decoded::Bad(BadRecord { record, error }));
                        }
                        OnBadRecord::Fail => {
                            self.held = Some(record);
                            return Step::Failed(error);
                        }
                    }
                }
            }
        }
    }

    /// The next raw record of the queued batches; a batch that does not decode is a
    /// [`Step::Corrupt`], and the rest of it is dropped.
    fn next_record(&mut self) -> Result<Option<ConsumerRecord>, (Arc<str>, i32, DecodeError)> {
        loop {
            if let Some((topic, partition, records)) = &mut self.records {
                match records.next() {
                    Some(Ok(record)) => return Ok(Some(record)),
                    Some(Err(error)) => {
                        let at = (topic.clone(), *partition);
                        self.records = None;
                        return Err((at.0, at.1, error));
                    }
                    None => self.records = None,
                }
            }
            let Some(batch) = self.batches.pop_front() else {
                return Ok(None);
            };
            match batch.iter() {
                Ok(records) => self.records = Some((batch.topic.clone(), batch.partition, records)),
                Err(error) => return Err((batch.topic.clone(), batch.partition, error)),
            }
        }
    }

    fn decode(&self, record: &ConsumerRecord) -> Result<TypedRecord<K, V>, RecordError> {
        let at = (record.partition, record.offset);
        let key = match &record.key {
            None => None,
            Some(bytes) => {
                let ctx = Context::key(&record.topic).at(at.0, at.1);
                Some(
                    self.key
                        .deserialize(bytes, &ctx)
                        .map_err(|e| RecordError::new(&ctx, e))?,
                )
            }
        };
        let value = match &record.value {
            None => None,
            Some(bytes) => {
                let ctx = Context::value(&record.topic).at(at.0, at.1);
                Some(
                    self.value
                        .deserialize(bytes, &ctx)
                        .map_err(|e| RecordError::new(&ctx, e))?,
                )
            }
        };
        Ok(TypedRecord {
            topic: record.topic.clone(),
            partition: record.partition,
            offset: record.offset,
            timestamp: record.timestamp,
            key,
            value,
            headers: record.headers(),
        })
    }
}
