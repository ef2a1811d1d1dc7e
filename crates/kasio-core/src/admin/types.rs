//! What admin operations take and return.

use kasio_proto::{ErrorCode, Uuid};
use std::fmt;

/// An error the broker returned for one part of an operation (a topic, a partition, a
/// group, a resource), with its message when the broker sent one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// Kafka's error code.
    pub code: ErrorCode,
    /// The broker's explanation, if any.
    pub message: Option<String>,
}

impl ApiError {
    pub(crate) fn new(code: i16, message: Option<&kasio_proto::ByteStr>) -> Option<Self> {
        let code = ErrorCode::from_code(code);
        (!code.is_ok()).then(|| Self {
            code,
            message: message.map(ToString::to_string).filter(|m| !m.is_empty()),
        })
    }

    pub(crate) fn check(code: i16, message: Option<&kasio_proto::ByteStr>) -> Result<(), Self> {
        Self::new(code, message).map_or(Ok(()), Err)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.message {
            Some(m) => write!(f, "{}: {m}", self.code.name()),
            None => write!(f, "{}: {}", self.code.name(), self.code.message()),
        }
    }
}

impl std::error::Error for ApiError {}

/// Why a whole admin operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AdminError {
    /// `default.api.timeout.ms` passed before the operation finished.
    Timeout,
    /// `default.api.timeout.ms` passed without a connection to any broker; the last
    /// dial's address and failure.
    Unreachable(String),
    /// No broker that could serve the operation supports the API it needs.
    Unsupported(&'static str),
    /// The broker refused the whole request.
    Api(ApiError),
    /// A response that could not be read.
    Malformed(String),
    /// The arguments cannot make a valid request.
    InvalidArgument(String),
    /// The admin client was closed.
    Closed,
    /// TLS or SASL failed (wrong credentials, an untrusted certificate, ...).
    Security(crate::SecurityError),
}

impl fmt::Display for AdminError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout => f.write_str("the operation timed out (default.api.timeout.ms)"),
            Self::Unreachable(why) => write!(f, "no broker could be reached ({why})"),
            Self::Unsupported(api) => write!(f, "the broker does not support {api}"),
            Self::Api(e) => e.fmt(f),
            Self::Malformed(e) => write!(f, "malformed response: {e}"),
            Self::InvalidArgument(e) => write!(f, "invalid argument: {e}"),
            Self::Closed => f.write_str("the admin client is closed"),
            Self::Security(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for AdminError {}

/// A broker, as the cluster describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    /// Its node id.
    pub id: i32,
    /// The host it advertises.
    pub host: String,
    /// The port it advertises.
    pub port: u16,
    /// Its rack, if configured.
    pub rack: Option<String>,
    /// Whether the controller has fenced it.
    pub fenced: bool,
}

/// The cluster: its id, its controller and its brokers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDescription {
    /// The cluster id.
    pub cluster_id: String,
    /// The broker Kafka names as controller (in KRaft, a broker that forwards to it).
    pub controller: Option<i32>,
    /// The brokers, by id.
    pub brokers: Vec<BrokerInfo>,
}

/// One API and the versions a broker supports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiSupport {
    /// The API key.
    pub api_key: i16,
    /// Its name, when the client knows the key.
    pub name: Option<&'static str>,
    /// The lowest version the broker accepts.
    pub min_version: i16,
    /// The highest version the broker accepts.
    pub max_version: i16,
}

/// A topic in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicListing {
    /// The topic's name.
    pub name: String,
    /// Its id.
    pub id: Uuid,
    /// Whether Kafka keeps it for itself (`__consumer_offsets`, ...).
    pub internal: bool,
}

/// One partition of a described topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// The partition index.
    pub partition: i32,
    /// Its leader, if it has one.
    pub leader: Option<i32>,
    /// The leader epoch.
    pub leader_epoch: i32,
    /// Every replica.
    pub replicas: Vec<i32>,
    /// The in-sync replicas.
    pub isr: Vec<i32>,
    /// Replicas on offline log directories.
    pub offline_replicas: Vec<i32>,
}

/// A described topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDescription {
    /// The topic's name.
    pub name: String,
    /// Its id.
    pub id: Uuid,
    /// Whether Kafka keeps it for itself.
    pub internal: bool,
    /// Its partitions, by index.
    pub partitions: Vec<PartitionInfo>,
}

/// A topic to create.
///
/// ```
/// use kasio_core::NewTopic;
/// let t = NewTopic::new("orders", 6, 3).config("cleanup.policy", "compact");
/// assert_eq!(t.configs.len(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewTopic {
    /// The name.
    pub name: String,
    /// The partition count, or -1 for the broker's `num.partitions`.
    pub partitions: i32,
    /// The replication factor, or -1 for the broker's `default.replication.factor`.
    pub replication_factor: i16,
    /// An explicit replica list per partition (partition `i` gets `assignment[i]`); when
    /// set, `partitions` and `replication_factor` must be -1.
    pub assignment: Vec<Vec<i32>>,
    /// Topic configs.
    pub configs: Vec<(String, String)>,
}

impl NewTopic {
    /// A topic with a partition count and replication factor (-1 for the broker's
    /// defaults).
    pub fn new(name: &str, partitions: i32, replication_factor: i16) -> Self {
        Self {
            name: name.into(),
            partitions,
            replication_factor,
            assignment: Vec::new(),
            configs: Vec::new(),
        }
    }

    /// A topic whose partition `i` is placed on the brokers `assignment[i]`.
    pub fn with_assignment(name: &str, assignment: Vec<Vec<i32>>) -> Self {
        Self {
            assignment,
            ..Self::new(name, -1, -1)
        }
    }

    /// Adds a topic config.
    #[must_use]
    pub fn config(mut self, key: &str, value: &str) -> Self {
        self.configs.push((key.into(), value.into()));
        self
    }
}

/// The outcome for one topic of a create or delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicResult {
    /// The topic's name (empty when deleted by an id the broker did not know).
    pub name: String,
    /// Its id, when known.
    pub id: Uuid,
    /// Why it failed, if it did.
    pub error: Option<ApiError>,
}

/// A topic, by name or by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicRef {
    /// By name.
    Name(String),
    /// By id.
    Id(Uuid),
}

/// Which offset of a partition to look up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The first offset still in the log.
    Earliest,
    /// The offset the next record will get (for read_committed, the last stable offset).
    Latest,
    /// The first offset whose timestamp is at or after this many ms since the epoch.
    Timestamp(i64),
    /// The offset of the record with the highest timestamp.
    MaxTimestamp,
}

impl OffsetSpec {
    pub(crate) fn wire(self) -> i64 {
        match self {
            Self::Earliest => -2,
            Self::Latest => -1,
            Self::Timestamp(t) => t,
            Self::MaxTimestamp => -3,
        }
    }
}

/// The outcome for one partition of an operation on partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionResult<T> {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The value, or why it failed.
    pub result: Result<T, ApiError>,
}

/// A partition's offset as ListOffsets reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedOffset {
    /// The offset (-1 when no record matches a timestamp).
    pub offset: i64,
    /// The record's timestamp, or -1.
    pub timestamp: i64,
    /// The leader epoch of the record, or -1.
    pub leader_epoch: i32,
}

/// What kind of thing a config belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConfigResourceType {
    /// A topic.
    Topic,
    /// A broker (its id as the name; an empty name for the cluster-wide default).
    Broker,
    /// A broker's loggers.
    BrokerLogger,
    /// A client metrics subscription.
    ClientMetrics,
    /// A group.
    Group,
}

impl ConfigResourceType {
    pub(crate) fn wire(self) -> i8 {
        match self {
            Self::Topic => 2,
            Self::Broker => 4,
            Self::BrokerLogger => 8,
            Self::ClientMetrics => 16,
            Self::Group => 32,
        }
    }

    pub(crate) fn from_wire(v: i8) -> Option<Self> {
        Some(match v {
            2 => Self::Topic,
            4 => Self::Broker,
            8 => Self::BrokerLogger,
            16 => Self::ClientMetrics,
            32 => Self::Group,
            _ => return None,
        })
    }
}

/// A resource whose configs are described or altered.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConfigResource {
    /// Its type.
    pub kind: ConfigResourceType,
    /// Its name: a topic name, a broker id, ...
    pub name: String,
}

impl ConfigResource {
    /// A topic's configs.
    pub fn topic(name: &str) -> Self {
        Self {
            kind: ConfigResourceType::Topic,
            name: name.into(),
        }
    }

    /// A broker's configs.
    pub fn broker(id: i32) -> Self {
        Self {
            kind: ConfigResourceType::Broker,
            name: id.to_string(),
        }
    }

    /// A group's configs (share groups keep theirs here: `share.record.lock.duration.ms`,
    /// `errors.deadletterqueue.topic.name`, ...).
    ///
    /// ```
    /// use kasio_core::{ConfigResource, ConfigResourceType};
    /// let jobs = ConfigResource::group("jobs");
    /// assert_eq!(jobs.kind, ConfigResourceType::Group);
    /// ```
    pub fn group(name: &str) -> Self {
        Self {
            kind: ConfigResourceType::Group,
            name: name.into(),
        }
    }

    /// The broker that must answer for this resource, if one must.
    pub(crate) fn broker_id(&self) -> Option<i32> {
        match self.kind {
            ConfigResourceType::Broker | ConfigResourceType::BrokerLogger => self.name.parse().ok(),
            _ => None,
        }
    }
}

/// Where a config's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigSource {
    /// Set on this topic.
    Topic,
    /// Set dynamically on this broker.
    DynamicBroker,
    /// Set dynamically as the default of every broker.
    DynamicDefaultBroker,
    /// Set in the broker's properties file.
    StaticBroker,
    /// Kafka's default.
    Default,
    /// Set dynamically on a broker's logger.
    DynamicBrokerLogger,
    /// Set on a client metrics subscription.
    ClientMetrics,
    /// Set on a group.
    Group,
    /// A source this client does not know.
    Unknown,
}

impl ConfigSource {
    pub(crate) fn from_wire(v: i8) -> Self {
        match v {
            1 => Self::Topic,
            2 => Self::DynamicBroker,
            3 => Self::DynamicDefaultBroker,
            4 => Self::StaticBroker,
            5 => Self::Default,
            6 => Self::DynamicBrokerLogger,
            7 => Self::ClientMetrics,
            8 => Self::Group,
            _ => Self::Unknown,
        }
    }
}

/// One config entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// The key.
    pub name: String,
    /// The value (`None` for a sensitive one).
    pub value: Option<String>,
    /// Where it comes from.
    pub source: ConfigSource,
    /// Whether it can be altered.
    pub read_only: bool,
    /// Whether the broker hides its value.
    pub sensitive: bool,
}

/// The configs of one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceConfigs {
    /// The resource.
    pub resource: ConfigResource,
    /// Its entries, or why they could not be described.
    pub result: Result<Vec<ConfigEntry>, ApiError>,
}

/// One change of an incremental config alteration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigChange {
    /// Sets a value.
    Set(String, String),
    /// Removes a value, back to its default.
    Delete(String),
    /// Appends to a list value.
    Append(String, String),
    /// Removes from a list value.
    Subtract(String, String),
}

/// The outcome for one resource of a config alteration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceResult {
    /// The resource.
    pub resource: ConfigResource,
    /// Why it failed, if it did.
    pub error: Option<ApiError>,
}

/// A group in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// The group id.
    pub id: String,
    /// The protocol type (`consumer` for consumer groups, empty for some).
    pub protocol_type: String,
    /// Its state (`Stable`, `Empty`, ...), when the broker says.
    pub state: String,
    /// Its type (`classic`, `consumer`, `share`, ...), when the broker says.
    pub group_type: String,
}

/// A member of a described group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    /// The member id.
    pub member_id: String,
    /// Its static instance id (`group.instance.id`), if any.
    pub instance_id: Option<String>,
    /// Its client id.
    pub client_id: String,
    /// The host it connects from.
    pub host: String,
    /// The partitions assigned to it, by topic.
    pub assignment: Vec<(String, Vec<i32>)>,
}

/// A described group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// The group id.
    pub id: String,
    /// Its type: `classic` or `consumer` (KIP-848).
    pub group_type: String,
    /// Its state.
    pub state: String,
    /// The assignor (for KIP-848 groups) or protocol (classic groups).
    pub assignor: String,
    /// Its members.
    pub members: Vec<MemberDescription>,
}

/// The outcome for one named thing: a topic, a group, a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named<T> {
    /// Its name.
    pub name: String,
    /// The value, or why it failed.
    pub result: Result<T, ApiError>,
}

/// A committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset of the next record to read.
    pub offset: i64,
    /// The metadata committed with it.
    pub metadata: String,
}

/// A partition's lag in a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The group's committed offset.
    pub committed: i64,
    /// The log end offset.
    pub end: i64,
    /// `end - committed`, never negative.
    pub lag: i64,
}
