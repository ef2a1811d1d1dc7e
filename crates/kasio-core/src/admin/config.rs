//! Admin client configuration, with the Java client's names and defaults.

use crate::config::{BrokerAddress, ConfigError, invalid, parse_bootstrap, parse_ms, parse_num};
use std::time::Duration;

/// Everything the admin client can be told.
///
/// ```
/// use kasio_core::AdminConfig;
/// let mut config = AdminConfig::new("localhost:9092")?;
/// config.set("default.api.timeout.ms", "10000")?;
/// assert!(config.set("default.api.timeout", "1").is_err());
/// # Ok::<(), kasio_core::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AdminConfig {
    /// TLS and SASL (`security.protocol`, `ssl.*`, `sasl.*`).
    pub security: crate::SecurityConfig,
    /// `bootstrap.servers`.
    pub bootstrap_servers: Vec<BrokerAddress>,
    /// `client.id`.
    pub client_id: String,
    /// `request.timeout.ms`: how long one request may take before its connection is
    /// closed and the request retried.
    pub request_timeout: Duration,
    /// `default.api.timeout.ms`: how long one operation may take, retries included.
    pub default_api_timeout: Duration,
    /// `retry.backoff.ms`.
    pub retry_backoff: Duration,
    /// `reconnect.backoff.ms`.
    pub reconnect_backoff: Duration,
    /// `reconnect.backoff.max.ms`.
    pub reconnect_backoff_max: Duration,
    /// `metadata.max.age.ms`.
    pub metadata_max_age: Duration,
    /// The largest response frame accepted, in bytes.
    pub max_response_size: usize,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            bootstrap_servers: Vec::new(),
            security: crate::SecurityConfig::default(),
            client_id: "kasio-admin".into(),
            request_timeout: Duration::from_secs(30),
            default_api_timeout: Duration::from_secs(60),
            retry_backoff: Duration::from_millis(100),
            reconnect_backoff: Duration::from_millis(50),
            reconnect_backoff_max: Duration::from_millis(1000),
            metadata_max_age: Duration::from_secs(300),
            max_response_size: 100 * 1024 * 1024,
        }
    }
}

impl AdminConfig {
    /// A configuration bootstrapping from `servers`, defaults otherwise.
    ///
    /// # Errors
    /// [`ConfigError::InvalidValue`] for a malformed server list.
    pub fn new(servers: &str) -> Result<Self, ConfigError> {
        Ok(Self {
            bootstrap_servers: parse_bootstrap(servers)?,
            ..Self::default()
        })
    }

    /// Sets one property by its Java client name.
    ///
    /// # Errors
    /// [`ConfigError::UnknownKey`] or [`ConfigError::InvalidValue`], naming the key.
    pub fn set(&mut self, key: &str, value: &str) -> Result<&mut Self, ConfigError> {
        if self.security.set(key, value)? {
            return Ok(self);
        }
        match key {
            "bootstrap.servers" => self.bootstrap_servers = parse_bootstrap(value)?,
            "client.id" => self.client_id = value.into(),
            "request.timeout.ms" => self.request_timeout = parse_ms(key, value)?,
            "default.api.timeout.ms" => self.default_api_timeout = parse_ms(key, value)?,
            "retry.backoff.ms" => self.retry_backoff = parse_ms(key, value)?,
            "reconnect.backoff.ms" => self.reconnect_backoff = parse_ms(key, value)?,
            "reconnect.backoff.max.ms" => self.reconnect_backoff_max = parse_ms(key, value)?,
            "metadata.max.age.ms" => self.metadata_max_age = parse_ms(key, value)?,
            "receive.message.max.bytes" => {
                self.max_response_size = parse_num(key, value, "a byte count")?;
                if self.max_response_size < 1024 {
                    return Err(invalid(key, value, "at least 1024 bytes"));
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
        if self.bootstrap_servers.is_empty() {
            return Err(ConfigError::Conflict("bootstrap.servers is empty".into()));
        }
        Ok(())
    }
}
