//! Producer configuration: a typed struct, and Kafka's property names on top of it.

use crate::partitioner::Partitioner;
use kasio_proto::compression::Compression;
use std::time::Duration;

/// How many replicas must have a record before the broker acknowledges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Acks {
    /// No acknowledgement: a record is delivered once written to the socket.
    None,
    /// The leader alone.
    Leader,
    /// Every in-sync replica (`acks=all`, the default).
    #[default]
    All,
}

impl Acks {
    pub(crate) fn wire(self) -> i16 {
        match self {
            Self::None => 0,
            Self::Leader => 1,
            Self::All => -1,
        }
    }
}

/// A broker address to bootstrap from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAddress {
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl std::fmt::Display for BrokerAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// A configuration key or value the client cannot use.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// No such configuration key.
    UnknownKey(String),
    /// The key exists but the value is not valid for it.
    InvalidValue {
        /// The key.
        key: String,
        /// The value given.
        value: String,
        /// What is expected.
        expected: &'static str,
    },
    /// Settings that cannot be combined.
    Conflict(String),
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UnknownKey(k) => write!(f, "unknown configuration key `{k}`"),
            Self::InvalidValue {
                key,
                value,
                expected,
            } => write!(
                f,
                "invalid value `{value}` for `{key}`: expected {expected}"
            ),
            Self::Conflict(why) => write!(f, "conflicting configuration: {why}"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Everything the producer can be told, with the Java client's defaults.
///
/// ```
/// use kasio_core::ProducerConfig;
/// let mut config = ProducerConfig::default();
/// config.set("bootstrap.servers", "localhost:9092,localhost:9093")?;
/// config.set("linger.ms", "20")?;
/// config.set("compression.type", "lz4")?;
/// assert_eq!(config.network.bootstrap_servers.len(), 2);
/// assert!(config.set("lingr.ms", "5").is_err());
/// config.validate()?;
/// # Ok::<(), kasio_core::ConfigError>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct ProducerConfig {
    /// TLS and SASL (`security.protocol`, `ssl.*`, `sasl.*`).
    pub security: crate::SecurityConfig,
    /// Where the cluster is and how to talk to it: the settings every client shares
    /// (`bootstrap.servers`, `client.id`, `request.timeout.ms`, the backoffs, ...).
    pub network: crate::NetworkConfig,
    /// `acks`.
    pub acks: Acks,
    /// `enable.idempotence`; `None` is the default (on, unless other settings rule it out).
    pub enable_idempotence: Option<bool>,
    /// `linger.ms`.
    pub linger: Duration,
    /// `batch.size`, in bytes.
    pub batch_size: usize,
    /// `buffer.memory`, in bytes.
    pub buffer_memory: usize,
    /// `max.block.ms`: how long a send may wait for room or for metadata.
    pub max_block: Duration,
    /// `max.request.size`, in bytes.
    pub max_request_size: usize,
    /// `compression.type`.
    pub compression: Compression,
    /// `delivery.timeout.ms`.
    pub delivery_timeout: Duration,
    /// `retries`.
    pub retries: u32,
    /// `retry.backoff.max.ms`.
    pub retry_backoff_max: Duration,
    /// `max.in.flight.requests.per.connection`.
    pub max_in_flight: usize,
    /// `connections.max.idle.ms`.
    pub connections_max_idle: Duration,
    /// `allow.auto.create.topics`.
    pub allow_auto_create_topics: bool,
    /// `partitioner.class` / `partitioner.ignore.keys`.
    pub partitioner: Partitioner,
    /// `transactional.id`: makes the producer transactional (and idempotent).
    pub transactional_id: Option<String>,
    /// `transaction.timeout.ms`: how long the coordinator lets a transaction stay open.
    pub transaction_timeout: Duration,
    /// `delay.tiers` (kasio's own): the delay tier topics a delayed send goes through
    /// (`1s,10s,1m,10m,1h,1d` by default); the relay must use the same.
    pub delay_tiers: crate::DelayTiers,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        Self {
            security: crate::SecurityConfig::default(),
            network: crate::NetworkConfig::default(),
            acks: Acks::All,
            enable_idempotence: None,
            linger: Duration::from_millis(5),
            batch_size: 16 * 1024,
            buffer_memory: 32 * 1024 * 1024,
            max_block: Duration::from_secs(60),
            max_request_size: 1024 * 1024,
            compression: Compression::None,
            delivery_timeout: Duration::from_secs(120),
            retries: i32::MAX as u32,
            retry_backoff_max: Duration::from_millis(1000),
            max_in_flight: 5,
            connections_max_idle: Duration::from_secs(540),
            allow_auto_create_topics: false,
            partitioner: Partitioner::Default,
            transactional_id: None,
            transaction_timeout: Duration::from_secs(60),
            delay_tiers: crate::DelayTiers::default(),
        }
    }
}

pub(crate) fn parse_ms(key: &str, value: &str) -> Result<Duration, ConfigError> {
    value
        .trim()
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| invalid(key, value, "milliseconds as a non-negative integer"))
}

pub(crate) fn parse_num<T: std::str::FromStr>(
    key: &str,
    value: &str,
    expected: &'static str,
) -> Result<T, ConfigError> {
    value
        .trim()
        .parse::<T>()
        .map_err(|_| invalid(key, value, expected))
}

pub(crate) fn parse_bool(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(key, value, "true or false")),
    }
}

pub(crate) fn invalid(key: &str, value: &str, expected: &'static str) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.into(),
        value: value.into(),
        expected,
    }
}

/// Parses `host:port,host:port`.
///
/// # Errors
/// [`ConfigError::InvalidValue`] for an empty list or an entry without a valid port.
pub fn parse_bootstrap(value: &str) -> Result<Vec<BrokerAddress>, ConfigError> {
    let key = "bootstrap.servers";
    let mut out = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let entry = entry.strip_prefix("PLAINTEXT://").unwrap_or(entry);
        let (host, port) = entry
            .rsplit_once(':')
            .ok_or_else(|| invalid(key, value, "host:port[,host:port...]"))?;
        let port = port
            .parse()
            .map_err(|_| invalid(key, value, "host:port[,host:port...]"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(invalid(key, value, "host:port[,host:port...]"));
        }
        out.push(BrokerAddress {
            host: host.into(),
            port,
        });
    }
    if out.is_empty() {
        return Err(invalid(key, value, "at least one host:port"));
    }
    Ok(out)
}

impl ProducerConfig {
    /// A configuration bootstrapping from `servers` (`host:port,...`), defaults otherwise.
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
        match key {
            "acks" => {
                self.acks = match value.trim() {
                    "0" => Acks::None,
                    "1" => Acks::Leader,
                    "all" | "-1" => Acks::All,
                    _ => return Err(invalid(key, value, "0, 1, all or -1")),
                }
            }
            "enable.idempotence" => self.enable_idempotence = Some(parse_bool(key, value)?),
            "transactional.id" => {
                self.transactional_id = (!value.is_empty()).then(|| value.to_string());
            }
            "transaction.timeout.ms" => self.transaction_timeout = parse_ms(key, value)?,
            "delay.tiers" => self.delay_tiers = crate::DelayTiers::parse(value)?,
            "linger.ms" => self.linger = parse_ms(key, value)?,
            "batch.size" => self.batch_size = parse_num(key, value, "a byte count")?,
            "buffer.memory" => self.buffer_memory = parse_num(key, value, "a byte count")?,
            "max.block.ms" => self.max_block = parse_ms(key, value)?,
            "max.request.size" => {
                self.max_request_size = parse_num(key, value, "a byte count")?;
            }
            "compression.type" => {
                self.compression = match value.trim() {
                    "none" => Compression::None,
                    "gzip" => Compression::Gzip,
                    "snappy" => Compression::Snappy,
                    "lz4" => Compression::Lz4,
                    "zstd" => Compression::Zstd,
                    _ => return Err(invalid(key, value, "none, gzip, snappy, lz4 or zstd")),
                }
            }
            "delivery.timeout.ms" => self.delivery_timeout = parse_ms(key, value)?,
            "retries" => {
                let n: i64 = parse_num(key, value, "a non-negative integer")?;
                self.retries = u32::try_from(n.clamp(0, i64::from(i32::MAX)))
                    .map_err(|_| invalid(key, value, "a non-negative integer"))?;
                if n < 0 {
                    return Err(invalid(key, value, "a non-negative integer"));
                }
            }
            "retry.backoff.max.ms" => self.retry_backoff_max = parse_ms(key, value)?,
            "max.in.flight.requests.per.connection" => {
                self.max_in_flight = parse_num(key, value, "a positive integer")?;
                if self.max_in_flight == 0 {
                    return Err(invalid(key, value, "a positive integer"));
                }
            }
            "connections.max.idle.ms" => self.connections_max_idle = parse_ms(key, value)?,
            "allow.auto.create.topics" => self.allow_auto_create_topics = parse_bool(key, value)?,
            "partitioner.ignore.keys" => {
                if parse_bool(key, value)? {
                    self.partitioner = Partitioner::IgnoreKeys;
                }
            }
            "partitioner.class" => {
                self.partitioner = match value.trim() {
                    ""
                    | "default"
                    | "org.apache.kafka.clients.producer.internals.DefaultPartitioner" => {
                        Partitioner::Default
                    }
                    "round_robin" | "org.apache.kafka.clients.producer.RoundRobinPartitioner" => {
                        Partitioner::RoundRobin
                    }
                    _ => return Err(invalid(key, value, "default or round_robin")),
                }
            }
            _ => return Err(ConfigError::UnknownKey(key.into())),
        }
        Ok(self)
    }

    /// Whether the producer is idempotent: on by default, off if turned off or if the
    /// default meets a setting it cannot work with (as in the Java client).
    pub fn idempotent(&self) -> bool {
        match self.enable_idempotence {
            Some(on) => on,
            None => {
                self.transactional_id.is_some()
                    || (self.acks == Acks::All && self.max_in_flight <= 5 && self.retries > 0)
            }
        }
    }

    /// Checks that the settings can work together.
    ///
    /// # Errors
    /// [`ConfigError::Conflict`] naming the settings, as the Java client rejects them.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.network.validate()?;
        if self.transactional_id.is_some() && self.enable_idempotence == Some(false) {
            return Err(ConfigError::Conflict(
                "transactional.id needs enable.idempotence (not false)".into(),
            ));
        }
        if self.enable_idempotence == Some(true) || self.transactional_id.is_some() {
            if self.acks != Acks::All {
                return Err(ConfigError::Conflict(
                    "enable.idempotence=true needs acks=all".into(),
                ));
            }
            if self.max_in_flight > 5 {
                return Err(ConfigError::Conflict(
                    "enable.idempotence=true needs max.in.flight.requests.per.connection <= 5"
                        .into(),
                ));
            }
            if self.retries == 0 {
                return Err(ConfigError::Conflict(
                    "enable.idempotence=true needs retries > 0".into(),
                ));
            }
        }
        if self.delivery_timeout < self.linger + self.network.request_timeout {
            return Err(ConfigError::Conflict(
                "delivery.timeout.ms must be at least linger.ms + request.timeout.ms".into(),
            ));
        }
        if self.batch_size == 0 || self.max_request_size < 64 {
            return Err(ConfigError::Conflict(
                "batch.size and max.request.size must be positive".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotence_follows_the_java_rules() {
        let mut c = ProducerConfig::new("h:1").unwrap();
        assert!(c.idempotent());
        c.set("acks", "1").unwrap();
        assert!(!c.idempotent(), "implicitly off with acks=1");
        c.validate().unwrap();
        c.set("enable.idempotence", "true").unwrap();
        assert!(matches!(c.validate(), Err(ConfigError::Conflict(_))));
    }

    #[test]
    fn errors_name_the_key() {
        let mut c = ProducerConfig::default();
        let e = c.set("linger.ms", "soon").unwrap_err();
        assert!(e.to_string().contains("linger.ms"), "{e}");
        let e = c.set("no.such.key", "1").unwrap_err();
        assert_eq!(e, ConfigError::UnknownKey("no.such.key".into()));
        assert!(parse_bootstrap("nohost").is_err());
        assert_eq!(
            parse_bootstrap("a:1, [::1]:2").unwrap()[1],
            BrokerAddress {
                host: "::1".into(),
                port: 2
            }
        );
    }
}
