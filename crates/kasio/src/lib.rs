//! kasio: an Apache Kafka client for Rust, built as a sans-IO protocol core with pluggable
//! runtimes.
//!
//! The producer (idempotent and transactional), the consumer (assigned partitions, classic
//! and KIP-848 groups), the admin client, TLS and SASL all live in a deterministic core
//! ([`core`]) that reads no clock and owns no socket; thin drivers run it on a runtime:
//!
//! | feature | module | handles |
//! | --- | --- | --- |
//! | `tokio` (default) | [`tokio`] | async: completions are futures |
//! | `smol` | [`smol`] | async, on smol's and async-std's reactor |
//! | `blocking` | [`blocking`] | plain threads and `std::net`, no async runtime |
//! | `mock` | [`mock`] | kasio-mock, an in-memory Kafka cluster for tests and demos |
//! | `serde` | [`serde`] | typed keys and values: codecs and Schema Registry framing |
//! | `avro`, `protobuf`, `json-schema` | [`serde`] | the schema codecs, each with `serde` |
//!
//! Every runtime module has the same handles (`Producer`, `Consumer`, `Admin`,
//! `TransactSession`) with the same methods; async handles have no call that blocks a
//! thread, blocking handles no future. The types every handle shares (records, configs,
//! events, errors, admin results) are at the crate's root. Embedders who drive the core
//! from their own event loop use [`core`] (and the wire codec, [`proto`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use kasio::{Record, tokio::Producer};
//! let producer = Producer::from_properties([("bootstrap.servers", "localhost:9092")])?;
//! let meta = producer.send_and_wait(Record::new("orders").key(b"k").value(b"v")).await?;
//! println!("written at {}-{}@{}", meta.topic, meta.partition, meta.offset);
//! producer.close().await;
//! # Ok(()) }
//! ```
//!
//! # Closing and dropping
//! `close()` delivers what a producer buffered (a consumer: leaves its group, committing
//! first with `enable.auto.commit`) and completes once the driver has stopped: a future on
//! the async runtimes, a blocking call on threads. Dropping the last handle does the same
//! in the background, as long as the runtime runs: records buffered by a producer whose
//! runtime stops first are counted ([`undelivered_on_drop`]) and reported on standard
//! error, never lost silently.

#![forbid(unsafe_code)]

pub use kasio_core as core;
pub use kasio_proto as proto;
/// Confluent's Schema Registry: its schemas, calls and errors, and the sans-IO client
/// ([`registry::Registry`]) that each runtime's `SchemaRegistry` handle drives.
pub use kasio_registry as registry;
/// Typed keys and values: [`Serializer`](serde::Serializer) and
/// [`Deserializer`](serde::Deserializer), codecs (String, bytes, JSON, MessagePack, and
/// with their features Avro, Protobuf and JSON Schema) and Confluent's Schema Registry
/// wire format ([`serde::wire`]).
#[cfg(feature = "serde")]
pub use kasio_serde as serde;
/// The handles written once for every runtime, generic over it: for code generic over the
/// runtime, and for a runtime adapter of one's own (a [`shell::Runtime`] runs a
/// [`shell::Driver`]). The runtime modules name these for their runtime.
pub use kasio_shell as shell;

pub use kasio_proto::{
    DecodeError,
    records::{Header, HeaderView, Headers, RecordView},
};
pub use kasio_shell::types::*;
pub use kasio_shell::undelivered_on_drop;
pub use kasio_shell::{BlockingProcessor, OnThreads, Processor};

/// The handles on tokio: their drivers run as tasks on the runtime current when a handle
/// is created (creating one outside a tokio runtime panics).
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use kasio::tokio::Consumer;
/// let consumer = Consumer::from_properties([
///     ("bootstrap.servers", "localhost:9092"),
///     ("group.id", "billing"),
/// ])?;
/// consumer.subscribe(&["orders"])?;
/// let records = consumer.next_records(500).await?;
/// // ... process them ...
/// consumer.commit_positions().await?;
/// consumer.close().await;
/// # Ok(()) }
/// ```
#[cfg(feature = "tokio")]
pub mod tokio {
    pub use kasio_tokio::{
        Acquired, Admin, Call, Consumer, DeadLetter, DelayRelay, Delivery, GroupDelivery, Pending,
        PriorityConsumer, PriorityShareConsumer, Producer, Publisher, RegistryCall, Runner,
        SchemaRegistry, ShareConsumer, ShareFetched, Statuses, Tokio, TransactSession,
        TypedPublisher,
    };

    /// A commit's outcome, to `.await`: awaiting it is the Java client's `commitSync`,
    /// dropping it `commitAsync`.
    pub type Commit = kasio_shell::Commit<Tokio>;
    /// A consumer's fetched batches and events as a `futures_core::Stream`.
    pub type FetchedStream<'a> = kasio_shell::FetchedStream<'a, Tokio>;
    /// A consumer handing out deserialized records; see [`kasio_shell::TypedConsumer`].
    pub type TypedConsumer<K, V, KD, VD> = kasio_shell::TypedConsumer<Tokio, K, V, KD, VD>;
    /// A producer sending typed keys and values; see [`kasio_shell::TypedProducer`].
    pub type TypedProducer<K, V, KS, VS> = kasio_shell::TypedProducer<Tokio, K, V, KS, VS>;
    /// A typed producer as a `futures::Sink`; see [`kasio_shell::TypedSink`].
    pub type TypedSink<K, V, KS, VS> = kasio_shell::TypedSink<Tokio, K, V, KS, VS>;
    /// A typed consumer as a `futures_core::Stream`; see [`kasio_shell::TypedStream`].
    pub type TypedStream<'a, K, V, KD, VD> = kasio_shell::TypedStream<'a, Tokio, K, V, KD, VD>;
}

/// The handles on smol: drivers and sockets run on smol's global executor, so the handles
/// work from any executor on the async-io reactor (smol's, async-std's, or
/// `smol::block_on` on a plain thread).
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use kasio::{Record, smol::Producer};
/// let producer = Producer::from_properties([("bootstrap.servers", "localhost:9092")])?;
/// producer.send(Record::new("orders").value(b"v")).await?.await?;
/// producer.close().await;
/// # Ok(()) }
/// ```
#[cfg(feature = "smol")]
pub mod smol {
    pub use kasio_smol::{
        Acquired, Admin, Call, Consumer, DeadLetter, DelayRelay, Delivery, GroupDelivery, Pending,
        PriorityConsumer, PriorityShareConsumer, Producer, Publisher, RegistryCall, Runner,
        SchemaRegistry, ShareConsumer, ShareFetched, Smol, Statuses, TransactSession,
        TypedPublisher,
    };

    /// A commit's outcome, to `.await`: awaiting it is the Java client's `commitSync`,
    /// dropping it `commitAsync`.
    pub type Commit = kasio_shell::Commit<Smol>;
    /// A consumer's fetched batches and events as a `futures_core::Stream`.
    pub type FetchedStream<'a> = kasio_shell::FetchedStream<'a, Smol>;
    /// A consumer handing out deserialized records; see [`kasio_shell::TypedConsumer`].
    pub type TypedConsumer<K, V, KD, VD> = kasio_shell::TypedConsumer<Smol, K, V, KD, VD>;
    /// A producer sending typed keys and values; see [`kasio_shell::TypedProducer`].
    pub type TypedProducer<K, V, KS, VS> = kasio_shell::TypedProducer<Smol, K, V, KS, VS>;
    /// A typed producer as a `futures::Sink`; see [`kasio_shell::TypedSink`].
    pub type TypedSink<K, V, KS, VS> = kasio_shell::TypedSink<Smol, K, V, KS, VS>;
    /// A typed consumer as a `futures_core::Stream`; see [`kasio_shell::TypedStream`].
    pub type TypedStream<'a, K, V, KD, VD> = kasio_shell::TypedStream<'a, Smol, K, V, KD, VD>;
}

/// The handles on plain threads and `std::net`, with no async runtime anywhere in the
/// dependency tree: every call that waits blocks the calling thread.
///
/// ```no_run
/// # fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use kasio::{Record, blocking::{Consumer, Producer}};
/// use std::time::Duration;
/// let producer = Producer::from_properties([("bootstrap.servers", "localhost:9092")])?;
/// producer.send(Record::new("orders").value(b"v"))?.wait()?;
/// producer.close();
/// let consumer = Consumer::from_properties([
///     ("bootstrap.servers", "localhost:9092"),
///     ("group.id", "billing"),
/// ])?;
/// consumer.subscribe(&["orders"])?;
/// let records = consumer.poll_records(500, Duration::from_secs(1))?;
/// consumer.commit_positions()?;
/// # Ok(()) }
/// ```
#[cfg(feature = "blocking")]
pub mod blocking {
    pub use kasio_blocking::{
        Acquired, Admin, Call, Commit, Consumer, DeadLetter, Delivery, GroupDelivery, Pending,
        Producer, Records, RegistryCall, SchemaRegistry, ShareConsumer, ShareFetched, Threads,
        TransactSession,
    };

    /// A consumer handing out deserialized records; see [`kasio_shell::TypedConsumer`].
    pub type TypedConsumer<K, V, KD, VD> = kasio_shell::TypedConsumer<Threads, K, V, KD, VD>;
    /// A producer sending typed keys and values; see [`kasio_shell::TypedProducer`].
    pub type TypedProducer<K, V, KS, VS> = kasio_shell::TypedProducer<Threads, K, V, KS, VS>;
}

/// kasio-mock, an in-memory Kafka cluster on the real protocol, with fault injection: for
/// tests and demos that need no broker.
///
/// ```no_run
/// use kasio::mock::{ClusterConfig, MockCluster};
/// let cluster = MockCluster::start(ClusterConfig::default())?;
/// println!("bootstrap.servers={}", cluster.bootstrap());
/// # Ok::<(), std::io::Error>(())
/// ```
#[cfg(feature = "mock")]
pub mod mock {
    pub use kasio_mock::*;
}

/// The README's examples, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct Readme;
