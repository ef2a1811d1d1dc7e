//! What every kasio runtime adapter shares, written once: each sans-IO core behind its
//! lock, the drive loop's turn ([`Driver`]), and the handles ([`Producer`], [`Consumer`],
//! [`Admin`]) with their completions ([`Pending`], [`Call`]), which can be awaited on any
//! executor or waited for on a thread.
//!
//! An adapter supplies only a [`Runtime`]: how to run a [`Driver`] (a task or a thread,
//! with its own sockets and timer) and, for async handles, a sleep. `kasio-tokio`,
//! `kasio-smol` and `kasio-blocking` are such adapters; this crate has no async runtime in
//! its dependency tree.
//!
//! A runtime is either async ([`AsyncRuntime`]: completions are futures, no call blocks a
//! thread) or blocking ([`BlockingRuntime`]: completions are waited for); each handle
//! has the methods of its kind only.
//!
//! ```no_run
//! # async fn demo<R: kasio_shell::AsyncRuntime>() -> Result<(), Box<dyn std::error::Error>> {
//! use kasio_shell::{Producer, Record};
//! let producer = Producer::<R>::from_properties([("bootstrap.servers", "localhost:9092")])?;
//! let meta = producer.send(Record::new("orders").value(b"v")).await?.await?;
//! println!("written at {}:{}", meta.partition, meta.offset);
//! producer.close().await;
//! # Ok(()) }
//! ```

mod admin;
mod blocking_processor;
mod call;
mod consumer;
pub mod dead_letter;
mod delay;
mod driver;
mod names;
mod pending;
mod pipeline;
mod priority;
mod priority_share;
mod processor;
mod producer;
mod props;
mod publisher;
mod records;
mod registry;
mod relay;
mod runner;
mod session;
mod share;
mod typed;
mod undelivered;

pub use admin::Admin;
pub use blocking_processor::{BlockingProcessor, OnThreads};
pub use call::Call;
pub use consumer::{Commit, Consumer, FetchedStream};
pub use dead_letter::DeadLetter;
pub use delay::Delay;
pub use driver::{AsyncRuntime, BlockingRuntime, Driver, Inbox, Runtime, Sockets, Step};
pub use event_listener::{EventListener, Listener};
pub use kasio_core::{CloseReason, ConnId};
pub use pending::Pending;
pub use pipeline::Pipeline;
pub use priority::{DEFAULT_MIN_SHARE, PriorityConsumer};
pub use priority_share::PriorityShareConsumer;
pub use processor::{Metric, ProcessError, Processor, Stop};
pub use producer::Producer;
pub use producer::{Delivery, GroupDelivery};
pub use publisher::{Publisher, Statuses, TypedPublisher};
pub use records::PollError;
pub use registry::{RegistryCall, SchemaRegistry};
pub use relay::{DEFAULT_RELAY_GROUP, DelayRelay, RelayCounters, RelayError, TierStats};
pub use runner::{DEFAULT_DEAD_LETTER_TOPIC, RunError, Runner, RunnerCounters};
pub use session::TransactSession;
pub use share::{Acquired, ShareConsumer, ShareFetched};
pub use typed::{TypedConsumer, TypedProducer, TypedSink, TypedStream};
pub use types::*;
pub use undelivered::undelivered_on_drop;

/// Every type a user of an adapter's handles meets, for the adapters to re-export whole,
/// less the completions, which each adapter names for its runtime.
pub mod types {
    pub use crate::{
        consumer::Fetched,
        dead_letter::{DeadLettered, RejectError},
        delay::Delay,
        pipeline::{PipelineError, PipelineStats},
        processor::{Metric, ProcessError, Stop},
        publisher::{FlushTimeout, PublishError, PublisherCounters},
        records::PollError,
        relay::{RelayCounters, RelayError, TierStats},
        runner::{DEFAULT_DEAD_LETTER_TOPIC, RunError, RunnerCounters},
        typed::{Message, Typed, TypedError, TypedSendError},
    };
    pub use kasio_core::{
        AcknowledgeError, AcknowledgeType, Acknowledged, AcknowledgementMode, AcquireMode,
        BrokerDeadLetter, DUE_HEADER, Decision, DelayTiers, DeliveryStatus, Failure, FailureKind,
        HeaderConventions, LevelStats, MESSAGE_ID_HEADER, Notice, Origin, Priority,
        ProcessingOrder, RetryPolicy, ShareConsumerConfig, ShareEvent, ShareLevelStats,
        ShareMemberState, StatusCounts, UnknownPriority,
    };
    pub use kasio_core::{
        Acks, AclBinding, AclFilter, AclOperation, AclPermission, AdminConfig, AdminError,
        ApiError, ApiSupport, BrokerInfo, ClusterDescription, CommittedOffset, Compression,
        ConfigChange, ConfigEntry, ConfigError, ConfigResource, ConfigResourceType, ConfigSource,
        ConsumeError, ConsumerConfig, ConsumerEvent, ConsumerRecord, Ended, Ending, ErrorCode,
        FetchedBatch, FetchedRecords, GroupDescription, GroupListing, GroupMetadata, GroupProtocol,
        IsolationLevel, ListedOffset, MemberDescription, MemberState, Named, NewTopic, OffsetReset,
        OffsetSpec, PartitionInfo, PartitionLag, PartitionResult, PatternType, ProduceError,
        ProducerConfig, QuotaChange, QuotaEntry, QuotaFilter, QuotaMatch, ReadsState, Record,
        RecordMetadata, ResourceConfigs, ResourceResult, ResourceType, ScramChange,
        ScramCredential, ScramMechanism, SecurityError, SecurityErrorKind, Seek, SendError,
        TopicDescription, TopicListing, TopicPartition, TopicPartitionOffset, TopicRef,
        TopicResult, TxnError, TxnState, Uuid,
    };
}
