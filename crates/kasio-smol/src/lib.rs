//! kasio on smol, and on async-std (which runs on the same async-io reactor). A
//! driver task on smol's global executor moves bytes between sockets and a sans-IO core from
//! `kasio-core` and sleeps until its next deadline; everything Kafka-specific happens in
//! the core, and the handles are `kasio-shell`'s, shared with every other runtime.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use kasio_smol::{Producer, Record};
//! let producer = Producer::from_properties([("bootstrap.servers", "localhost:9092")])?;
//! let meta = producer.send_and_wait(Record::new("orders").key(b"k").value(b"v")).await?;
//! println!("written at {}:{}", meta.partition, meta.offset);
//! producer.close().await;
//! # Ok(()) }
//! ```

mod driver;

pub use driver::Smol;
pub use kasio_shell::types::*;

/// A record's delivery result, to `.await`.
pub type Delivery = kasio_shell::Delivery<Smol>;
/// The result of a `send_batch`: how many records were delivered, or the first error.
pub type GroupDelivery = kasio_shell::GroupDelivery<Smol>;
/// A result the driver completes later (flush, close, transactions), to `.await`.
pub type Pending<T> = kasio_shell::Pending<T, Smol>;
/// An admin operation under way, to `.await`.
pub type Call<T> = kasio_shell::Call<T, Smol>;
/// A Kafka producer on smol; see [`kasio_shell::Producer`].
pub type Producer = kasio_shell::Producer<Smol>;
/// A Kafka consumer on smol; see [`kasio_shell::Consumer`].
pub type Consumer = kasio_shell::Consumer<Smol>;
/// A share-group consumer (KIP-932) on smol; see [`kasio_shell::ShareConsumer`].
pub type ShareConsumer = kasio_shell::ShareConsumer<Smol>;
/// A record a share group handed out, to settle; see [`kasio_shell::Acquired`].
pub type Acquired = kasio_shell::Acquired<Smol>;
/// Where a share consumer writes the records it rejects with a reason; see
/// [`kasio_shell::DeadLetter`].
pub type DeadLetter = kasio_shell::DeadLetter<Smol>;
/// What [`ShareConsumer`]'s `next` returns; see [`kasio_shell::ShareFetched`].
pub type ShareFetched = kasio_shell::ShareFetched<Smol>;
/// A Kafka admin client on smol; see [`kasio_shell::Admin`].
pub type Admin = kasio_shell::Admin<Smol>;
/// A Schema Registry client on this runtime; see [`kasio_shell::SchemaRegistry`].
pub type SchemaRegistry = kasio_shell::SchemaRegistry<Smol>;
/// A Schema Registry call under way; see [`kasio_shell::RegistryCall`].
pub type RegistryCall<T> = kasio_shell::RegistryCall<T, Smol>;
/// Consume-transform-produce exactly once: a group consumer and a transactional producer
/// committing together. See [`kasio_shell::TransactSession`].
pub type TransactSession = kasio_shell::TransactSession<Smol>;
/// Moves delayed records through the delay tiers to their topics, exactly once. See
/// [`kasio_shell::DelayRelay`].
pub type DelayRelay = kasio_shell::DelayRelay<Smol>;
/// A consumer of a topic's priority levels, highest first; see
/// [`kasio_shell::PriorityConsumer`].
pub type PriorityConsumer = kasio_shell::PriorityConsumer<Smol>;
/// Runs a processor in members of one consumer group, with retries and a dead-letter
/// topic; see [`kasio_shell::Runner`].
pub type Runner<P> = kasio_shell::Runner<Smol, P>;
/// A producer whose failed deliveries are retried, then dead-lettered, each message
/// tracked by id; see [`kasio_shell::Publisher`].
pub type Publisher = kasio_shell::Publisher<Smol>;
/// A publisher's status changes as a stream; see [`kasio_shell::Statuses`].
pub type Statuses = kasio_shell::Statuses<Smol>;
/// A publisher of typed keys and values; see [`kasio_shell::TypedPublisher`].
pub type TypedPublisher<K, V, KS, VS> = kasio_shell::TypedPublisher<Smol, K, V, KS, VS>;
/// A priority consumer on a share group; see
/// [`kasio_shell::PriorityShareConsumer`].
pub type PriorityShareConsumer = kasio_shell::PriorityShareConsumer<Smol>;
