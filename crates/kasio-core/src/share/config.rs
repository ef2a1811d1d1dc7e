//! Share consumer configuration, with the Java client's names and defaults.

use crate::config::{ConfigError, invalid, parse_bootstrap, parse_ms, parse_num};
use std::time::Duration;

/// `share.acknowledgement.mode`: who settles the records handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AcknowledgementMode {
    /// Records handed out and not acknowledged are accepted when the next batch is
    /// taken, on a commit, and on close (the Java client's default).
    #[default]
    Implicit,
    /// The application acknowledges each record; close releases what it did not.
    Explicit,
}

/// `share.acquire.mode`: how the broker counts records against `max.poll.records`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AcquireMode {
    /// Whole batches, which may pass the limit (the default).
    #[default]
    BatchOptimized,
    /// At most the limit, cutting batches.
    RecordLimit,
}

/// Everything the share consumer can be told.
///
/// ```
/// use kasio_core::{AcknowledgementMode, ShareConsumerConfig};
/// let mut config = ShareConsumerConfig::new("localhost:9092", "queue")?;
/// config.set("share.acknowledgement.mode", "explicit")?;
/// assert_eq!(config.acknowledgement_mode, AcknowledgementMode::Explicit);
/// assert!(config.set("share.acknowledgement.mode", "sometimes").is_err());
/// # Ok::<(), kasio_core::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ShareConsumerConfig {
    /// TLS and SASL (`security.protocol`, `ssl.*`, `sasl.*`).
    pub security: crate::SecurityConfig,
    /// The settings every client shares (`bootstrap.servers`, `client.id`, ...).
    pub network: crate::NetworkConfig,
    /// `group.id`: the share group.
    pub group_id: String,
    /// `share.acknowledgement.mode`.
    pub acknowledgement_mode: AcknowledgementMode,
    /// `share.acquire.mode`.
    pub acquire_mode: AcquireMode,
    /// `max.poll.records`: the most records one fetch acquires (500).
    pub max_poll_records: i32,
    /// `fetch.min.bytes`.
    pub fetch_min_bytes: i32,
    /// `fetch.max.bytes`.
    pub fetch_max_bytes: i32,
    /// `fetch.max.wait.ms`.
    pub fetch_max_wait: Duration,
    /// `client.rack`.
    pub client_rack: String,
    /// `default.api.timeout.ms`: how long a commit may take.
    pub default_api_timeout: Duration,
}

impl Default for ShareConsumerConfig {
    fn default() -> Self {
        Self {
            security: crate::SecurityConfig::default(),
            network: crate::NetworkConfig::default(),
            group_id: String::new(),
            acknowledgement_mode: AcknowledgementMode::Implicit,
            acquire_mode: AcquireMode::BatchOptimized,
            max_poll_records: 500,
            fetch_min_bytes: 1,
            fetch_max_bytes: 52_428_800,
            fetch_max_wait: Duration::from_millis(500),
            client_rack: String::new(),
            default_api_timeout: Duration::from_secs(60),
        }
    }
}

impl ShareConsumerConfig {
    /// A configuration for share group `group` bootstrapping from `servers`.
    ///
    /// # Errors
    /// [`ConfigError::InvalidValue`] for a malformed server list or an empty group.
    pub fn new(servers: &str, group: &str) -> Result<Self, ConfigError> {
        let mut config = Self::default();
        config.network.bootstrap_servers = parse_bootstrap(servers)?;
        config.set("group.id", group)?;
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
        let positive = |key: &str, value: &str, what: &'static str| -> Result<i32, ConfigError> {
            let n: i32 = parse_num(key, value, what)?;
            if n <= 0 {
                return Err(invalid(key, value, what));
            }
            Ok(n)
        };
        match key {
            "group.id" => {
                if value.trim().is_empty() {
                    return Err(invalid(key, value, "a share group's name"));
                }
                self.group_id = value.into();
            }
            "share.acknowledgement.mode" => {
                self.acknowledgement_mode = match value.trim().to_ascii_lowercase().as_str() {
                    "implicit" => AcknowledgementMode::Implicit,
                    "explicit" => AcknowledgementMode::Explicit,
                    _ => return Err(invalid(key, value, "implicit or explicit")),
                }
            }
            "share.acquire.mode" => {
                self.acquire_mode = match value.trim().to_ascii_lowercase().as_str() {
                    "batch_optimized" => AcquireMode::BatchOptimized,
                    "record_limit" => AcquireMode::RecordLimit,
                    _ => return Err(invalid(key, value, "batch_optimized or record_limit")),
                }
            }
            "max.poll.records" => self.max_poll_records = positive(key, value, "a record count")?,
            "fetch.min.bytes" => self.fetch_min_bytes = positive(key, value, "a byte count")?,
            "fetch.max.bytes" => self.fetch_max_bytes = positive(key, value, "a byte count")?,
            "fetch.max.wait.ms" => self.fetch_max_wait = parse_ms(key, value)?,
            "client.rack" => self.client_rack = value.into(),
            "default.api.timeout.ms" => self.default_api_timeout = parse_ms(key, value)?,
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
        if self.group_id.is_empty() {
            return Err(ConfigError::Conflict(
                "a share consumer needs group.id".into(),
            ));
        }
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
