//! The sans-IO Kafka client: no sockets, threads, clocks or randomness of its own. Bytes
//! and instants go in; bytes to send, the next deadline and events come out, so any event
//! loop (tokio, smol, plain threads, a simulation) can drive it.
//!
//! ```
//! use kasio_core::{Producer, ProducerConfig, Record};
//! use std::time::Instant;
//! let now = Instant::now();
//! let mut producer: Producer<()> = Producer::new(ProducerConfig::new("localhost:9092")?, now, 0, 7)?;
//! producer.send(Record::new("t").value(b"hello"), (), now).map_err(|(e, _)| e)?;
//! assert_eq!(producer.outstanding(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod admin;
mod client;
mod config;
mod conn;
mod consumer;
mod coordinator;
mod delay;
mod exactly_once;
#[cfg(feature = "_fuzz")]
#[doc(hidden)]
#[allow(missing_docs)]
pub mod fuzz;
mod hash;
mod metadata;
mod network;
pub mod partitioner;
mod priority;
mod process;
mod producer;
mod rng;
mod security;
mod share;
mod topic_partition;

pub use admin::{
    AclBinding, AclFilter, AclOperation, AclPermission, Admin, AdminConfig, AdminError, AdminEvent,
    AdminOutput, ApiError, ApiSupport, BrokerInfo, ClusterDescription, CommittedOffset,
    ConfigChange, ConfigEntry, ConfigResource, ConfigResourceType, ConfigSource, GroupDescription,
    GroupListing, ListedOffset, MemberDescription, Named, NewTopic, OffsetSpec, OpId,
    PartitionInfo, PartitionLag, PartitionResult, PatternType, QuotaChange, QuotaEntry,
    QuotaFilter, QuotaMatch, ResourceConfigs, ResourceResult, ResourceType, ScramChange,
    ScramCredential, ScramMechanism, TopicDescription, TopicListing, TopicRef, TopicResult,
};
pub use client::Client;
pub use config::{Acks, BrokerAddress, ConfigError, ProducerConfig, parse_bootstrap};
pub use conn::{CloseReason, ConnId, ConnectAction, Transmit};
pub use consumer::{
    Assignor, CommitId, CommitOutcome, ConsumeError, Consumer, ConsumerConfig, ConsumerEvent,
    ConsumerRecord, FetchedBatch, FetchedRecords, GroupProtocol, GroupSubscription, IsolationLevel,
    MemberState, OffsetReset, PartitionAssignor, Seek,
};
pub use delay::{
    DEFAULT_TIERS, DUE_HEADER, DelayPlan, DelayRelay, DelayTiers, Forward, PARTITION_HEADER,
    TIMESTAMP_HEADER, TierPartitionStats,
};
pub use exactly_once::{Ended, Ending, ReadsState, TransactionReads};
pub use kasio_proto::{ErrorCode, Uuid, compression::Compression};
pub use network::{NetworkConfig, Timeout};
pub use priority::{
    LevelStats, MAX_MIN_SHARE, Priority, PriorityQueue, PriorityShareQueue, ShareLevelStats,
    UnknownPriority,
};
pub use process::{
    ATTEMPTS_HEADER, DLQ_ATTEMPTS, DLQ_CLASS, DLQ_GROUP, DLQ_MESSAGE, DLQ_OFFSET, DLQ_PARTITION,
    DLQ_TIMESTAMP, DLQ_TOPIC, Decision, Dispatcher, FailureKind, FailureNote, HeaderConventions,
    Origin, ProcessingOrder, RETRY_DUE_HEADER, RETRY_ORIGIN_PREFIX, RetryPolicy, Ticket,
    attempts_so_far, dead_letter_headers, is_failure_header, retry_due, retry_headers,
};
pub use process::{
    DeliveryStatus, DeliveryTracker, DuplicateId, Failure, MESSAGE_ID_HEADER, Notice, Outbox,
    Outgoing, Publication, StatusCounts, message_id,
};
pub use producer::{
    Delivered, Event, GroupMetadata, ProduceError, Producer, Record, RecordMetadata, SendError,
    TxnError, TxnEvent, TxnOp, TxnState,
};
pub use security::{
    SaslMechanism, Secret, SecurityConfig, SecurityError, SecurityErrorKind, SecurityProtocol,
    TlsConnector, TlsSession, sasl::TokenProvider,
};
pub use share::{
    AcknowledgeError, AcknowledgeType, Acknowledged, AcknowledgementMode, AcquireMode,
    BrokerDeadLetter, ShareBatch, ShareCommit, ShareConsumer, ShareConsumerConfig, ShareEvent,
    ShareMemberState, ShareRecord, ShareRecords,
};
pub use topic_partition::{TopicPartition, TopicPartitionOffset};
