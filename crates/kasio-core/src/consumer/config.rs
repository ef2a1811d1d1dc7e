//! Consumer configuration, with the Java client's names and defaults.

use crate::config::{ConfigError, invalid, parse_bool, parse_bootstrap, parse_ms, parse_num};
use std::time::Duration;

/// Which records a read_committed consumer sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IsolationLevel {
    /// Every record, including those of open and aborted transactions.
    #[default]
    ReadUncommitted,
    /// Only records of committed transactions (and non-transactional ones), up to the last
    /// stable offset.
    ReadCommitted,
}

/// Where to start when a partition has no position or its position is out of range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OffsetReset {
    /// The first offset still in the log.
    Earliest,
    /// The end of the log: only new records.
    #[default]
    Latest,
    /// Report an error and stop fetching the partition.
    None,
}

/// `group.protocol`: how the member takes part in its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GroupProtocol {
    /// KIP-848: the coordinator assigns (Kafka 4.0 and later).
    Consumer,
    /// The classic JoinGroup/SyncGroup protocol: the leader member assigns (every Kafka;
    /// the Java client's default, and kasio's).
    #[default]
    Classic,
}

/// Everything the consumer can be told.
///
/// ```
/// use kasio_core::ConsumerConfig;
/// let mut config = ConsumerConfig::new("localhost:9092")?;
/// config.set("auto.offset.reset", "earliest")?;
/// config.set("isolation.level", "read_committed")?;
/// assert!(config.set("fetch.min.byte", "1").is_err());
/// # Ok::<(), kasio_core::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConsumerConfig {
    /// TLS and SASL (`security.protocol`, `ssl.*`, `sasl.*`).
    pub security: crate::SecurityConfig,
    /// Where the cluster is and how to talk to it: the settings every client shares
    /// (`bootstrap.servers`, `client.id`, `request.timeout.ms`, the backoffs, ...).
    pub network: crate::NetworkConfig,
    /// `group.id`: the group whose committed offsets the consumer starts from and commits
    /// to (membership and rebalancing are not implemented yet: partitions are assigned).
    pub group_id: Option<String>,
    /// `fetch.min.bytes`.
    pub fetch_min_bytes: i32,
    /// `fetch.max.bytes`: the most one Fetch response may carry, and the most the consumer
    /// buffers before it stops fetching.
    pub fetch_max_bytes: i32,
    /// `max.partition.fetch.bytes`.
    pub max_partition_fetch_bytes: i32,
    /// `fetch.max.wait.ms`.
    pub fetch_max_wait: Duration,
    /// `isolation.level`.
    pub isolation_level: IsolationLevel,
    /// `auto.offset.reset`.
    pub auto_offset_reset: OffsetReset,
    /// `default.api.timeout.ms`: how long the application's commits may take.
    pub default_api_timeout: Duration,
    /// `client.rack`.
    pub client_rack: String,
    /// `check.crcs`.
    pub check_crcs: bool,
    /// `group.protocol`.
    pub group_protocol: GroupProtocol,
    /// `enable.auto.commit`: commit, every `auto.commit.interval.ms`, the position after
    /// the batches the caller has finished with (every batch before the last one taken).
    pub enable_auto_commit: bool,
    /// `auto.commit.interval.ms`.
    pub auto_commit_interval: Duration,
    /// `group.instance.id`: a static member keeps its assignment across restarts (classic).
    pub group_instance_id: Option<String>,
    /// `partition.assignment.strategy`, in order of preference (classic).
    pub assignors: Vec<super::assignor::Assignor>,
    /// `session.timeout.ms` (classic).
    pub session_timeout: Duration,
    /// `heartbeat.interval.ms` (classic; KIP-848 takes the coordinator's).
    pub heartbeat_interval: Duration,
    /// `max.poll.interval.ms`: the rebalance timeout the member asks for.
    pub max_poll_interval: Duration,
    /// `max.poll.records`: the most records one handed-out batch holds (a larger batch is
    /// handed out in pieces). Unbounded unless set: the Java client's 500 keeps its poll
    /// loop alive for `max.poll.interval.ms`, which kasio's driver does not need, and
    /// pieces cost CPU (measured: lz4 reads at about half the speed with 500).
    pub max_poll_records: usize,
    /// Hold each revocation for the application (no Java property: the Java client's
    /// rebalance listener): [`ConsumerEvent::Revoking`](super::ConsumerEvent::Revoking)
    /// announces it while the member still owns the partitions, and the member gives them
    /// up on [`Consumer::release_revocation`](super::Consumer::release_revocation) or after
    /// half of `max.poll.interval.ms` (so it rejoins within the rebalance timeout). Off by
    /// default: revocations are only reported after.
    pub hold_revocations: bool,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        Self {
            security: crate::SecurityConfig::default(),
            network: crate::NetworkConfig::default(),
            group_id: None,
            fetch_min_bytes: 1,
            fetch_max_bytes: 52_428_800,
            max_partition_fetch_bytes: 1_048_576,
            fetch_max_wait: Duration::from_millis(500),
            isolation_level: IsolationLevel::ReadUncommitted,
            auto_offset_reset: OffsetReset::Latest,
            default_api_timeout: Duration::from_secs(60),
            client_rack: String::new(),
            check_crcs: true,
            group_protocol: GroupProtocol::Classic,
            enable_auto_commit: true,
            auto_commit_interval: Duration::from_secs(5),
            group_instance_id: None,
            // The Java client's default since Kafka 3.0: range, and cooperative-sticky so a
            // group can move to it member by member.
            assignors: vec![
                super::assignor::Assignor::Range,
                super::assignor::Assignor::CooperativeSticky,
            ],
            session_timeout: Duration::from_secs(45),
            heartbeat_interval: Duration::from_secs(3),
            max_poll_interval: Duration::from_secs(300),
            max_poll_records: usize::MAX,
            hold_revocations: false,
        }
    }
}

impl ConsumerConfig {
    /// A configuration bootstrapping from `servers`, defaults otherwise.
    ///
    /// # Errors
    /// [`ConfigError::InvalidValue`] for a malformed server list.
    pub fn new(servers: &str) -> Result<Self, ConfigError> {
        let mut config = Self::default();
        config.network.bootstrap_servers = parse_bootstrap(servers)?;
        Ok(config)
    }

    /// Sets one property by its Java client name.
    ///
    /// # Errors
    /// [`ConfigError::UnknownKey`] or [`ConfigError::InvalidValue`], naming the key.
    pub fn set(&mut self, key: &str, value: &str) -> Result<&mut Self, ConfigError> {
        if self.security.set(key, value)? || self.network.set(key, value)? {
            return Ok(self);
        }
        let positive = |key: &str, value: &str| -> Result<i32, ConfigError> {
            let n: i32 = parse_num(key, value, "a positive byte count")?;
            if n <= 0 {
                return Err(invalid(key, value, "a positive byte count"));
            }
            Ok(n)
        };
        match key {
            "group.id" => self.group_id = (!value.is_empty()).then(|| value.to_string()),
            "fetch.min.bytes" => self.fetch_min_bytes = positive(key, value)?,
            "fetch.max.bytes" => self.fetch_max_bytes = positive(key, value)?,
            "max.partition.fetch.bytes" => self.max_partition_fetch_bytes = positive(key, value)?,
            "fetch.max.wait.ms" => self.fetch_max_wait = parse_ms(key, value)?,
            "isolation.level" => {
                self.isolation_level = match value.trim() {
                    "read_uncommitted" => IsolationLevel::ReadUncommitted,
                    "read_committed" => IsolationLevel::ReadCommitted,
                    _ => return Err(invalid(key, value, "read_uncommitted or read_committed")),
                }
            }
            "auto.offset.reset" => {
                self.auto_offset_reset = match value.trim() {
                    "earliest" => OffsetReset::Earliest,
                    "latest" => OffsetReset::Latest,
                    "none" => OffsetReset::None,
                    _ => return Err(invalid(key, value, "earliest, latest or none")),
                }
            }
            "default.api.timeout.ms" => self.default_api_timeout = parse_ms(key, value)?,
            "client.rack" => self.client_rack = value.into(),
            "check.crcs" => self.check_crcs = parse_bool(key, value)?,
            "group.protocol" => {
                self.group_protocol = match value.trim().to_ascii_lowercase().as_str() {
                    "consumer" => GroupProtocol::Consumer,
                    "classic" => GroupProtocol::Classic,
                    _ => return Err(invalid(key, value, "consumer or classic")),
                }
            }
            "enable.auto.commit" => self.enable_auto_commit = parse_bool(key, value)?,
            "auto.commit.interval.ms" => self.auto_commit_interval = parse_ms(key, value)?,
            "group.instance.id" => {
                self.group_instance_id = (!value.is_empty()).then(|| value.to_string());
            }
            "partition.assignment.strategy" => {
                let list: Option<Vec<_>> = value
                    .split(',')
                    .filter(|s| !s.trim().is_empty())
                    .map(super::assignor::Assignor::parse)
                    .collect();
                match list {
                    Some(l) if !l.is_empty() => self.assignors = l,
                    _ => {
                        return Err(invalid(
                            key,
                            value,
                            "range, roundrobin and/or cooperative-sticky",
                        ));
                    }
                }
            }
            "session.timeout.ms" => self.session_timeout = parse_ms(key, value)?,
            "heartbeat.interval.ms" => self.heartbeat_interval = parse_ms(key, value)?,
            "max.poll.interval.ms" => self.max_poll_interval = parse_ms(key, value)?,
            "max.poll.records" => {
                self.max_poll_records = parse_num(key, value, "a record count")?;
                if self.max_poll_records == 0 {
                    return Err(invalid(key, value, "at least 1"));
                }
            }
            _ => return Err(ConfigError::UnknownKey(key.into())),
        }
        Ok(self)
    }

    /// Checks that the settings can work together.
    ///
    /// # Errors
    /// [`ConfigError::Conflict`] naming the problem.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.network.validate()?;
        if usize::try_from(self.fetch_max_bytes).unwrap_or(0) + 1024
            > self.network.max_response_size
        {
            return Err(ConfigError::Conflict(
                "fetch.max.bytes must leave room under receive.message.max.bytes".into(),
            ));
        }
        Ok(())
    }
}
