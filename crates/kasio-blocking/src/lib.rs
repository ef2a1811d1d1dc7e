//! kasio on plain threads: a blocking producer, consumer and admin client over
//! `std::net`, with no async runtime anywhere in the dependency tree. A driver thread per
//! handle moves bytes between sockets and a sans-IO core from `kasio-core`; everything
//! Kafka-specific happens in the core, and the handles are `kasio-shell`'s, shared with
//! every other runtime.
//!
//! ```no_run
//! # fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use kasio_blocking::{Producer, Record};
//! let producer = Producer::from_properties([("bootstrap.servers", "localhost:9092")])?;
//! let meta = producer.send(Record::new("orders").key(b"k").value(b"v"))?.wait()?;
//! println!("written at {}:{}", meta.partition, meta.offset);
//! // Dropping the last clone delivers what is buffered and closes.
//! # Ok(()) }
//! ```

mod admin;
mod consumer;
mod driver;
mod producer;
mod session;
mod share;

pub use consumer::{Consumer, Records};
pub use driver::Threads;
pub use kasio_shell::types::*;
pub use producer::Producer;
pub use session::TransactSession;
pub use share::ShareConsumer;
/// A record a share group handed out, to settle; see [`kasio_shell::Acquired`].
pub type Acquired = kasio_shell::Acquired<Threads>;
/// Where a share consumer writes the records it rejects with a reason; see
/// [`kasio_shell::DeadLetter`].
pub type DeadLetter = kasio_shell::DeadLetter<Threads>;
/// What [`ShareConsumer`]'s `poll` returns; see [`kasio_shell::ShareFetched`].
pub type ShareFetched = kasio_shell::ShareFetched<Threads>;

/// A record's delivery result, to [`wait`](kasio_shell::Pending::wait) for.
pub type Delivery = kasio_shell::Delivery<Threads>;
/// The result of a `send_batch`: how many records were delivered, or the first error.
pub type GroupDelivery = kasio_shell::GroupDelivery<Threads>;
/// A result the driver completes later, to [`wait`](kasio_shell::Pending::wait) for.
pub type Pending<T> = kasio_shell::Pending<T, Threads>;
/// An admin operation under way, to [`wait`](kasio_shell::Call::wait) for.
pub type Call<T> = kasio_shell::Call<T, Threads>;
/// A commit's outcome, to [`wait`](kasio_shell::Pending::wait) for.
pub type Commit = kasio_shell::Commit<Threads>;
/// A Schema Registry client on a thread of its own; see [`kasio_shell::SchemaRegistry`].
pub type SchemaRegistry = kasio_shell::SchemaRegistry<Threads>;
/// A Schema Registry call under way, to [`wait`](kasio_shell::RegistryCall::wait) for.
pub type RegistryCall<T> = kasio_shell::RegistryCall<T, Threads>;

pub use admin::Admin;
