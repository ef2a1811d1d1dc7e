//! kasio on tokio. A driver task moves bytes between sockets and the sans-IO
//! [`kasio_core::Producer`] and sleeps until its next deadline; everything Kafka-specific
//! happens in the core.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use kasio_tokio::{Producer, Record};
//! let producer = Producer::from_properties([("bootstrap.servers", "localhost:9092")])?;
//! let meta = producer.send_and_wait(Record::new("orders").key(b"k").value(b"v")).await?;
//! println!("written at {}:{}", meta.partition, meta.offset);
//! producer.close().await;
//! # Ok(()) }
//! ```

mod admin;
mod consumer;
mod driver;
mod producer;

pub use admin::Admin;
pub use consumer::{Consumer, Fetched};
pub use kasio_core::{
    Acks, AclBinding, AclFilter, AclOperation, AclPermission, AdminConfig, AdminError, ApiError,
    Compression, ConfigChange, ConfigError, ConfigResource, ConfigResourceType, ConfigSource,
    ConsumeError, ConsumerConfig, ConsumerEvent, FetchedBatch, IsolationLevel, MemberState,
    NewTopic, OffsetReset, OffsetSpec, PatternType, ProduceError, ProducerConfig, QuotaChange,
    QuotaFilter, QuotaMatch, Record, RecordMetadata, ResourceType, ScramChange, ScramMechanism,
    Seek, SendError, TopicRef,
};
pub use producer::{Delivery, GroupDelivery, Producer};
