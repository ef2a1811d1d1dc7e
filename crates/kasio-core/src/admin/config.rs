//! Admin client configuration, with the Java client's names and defaults.

use crate::config::{ConfigError, parse_bootstrap, parse_ms};
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
    /// Where the cluster is and how to talk to it: the settings every client shares
    /// (`bootstrap.servers`, `client.id`, `request.timeout.ms`, the backoffs, ...).
    pub network: crate::NetworkConfig,
    /// `default.api.timeout.ms`: how long one operation may take, retries included.
    pub default_api_timeout: Duration,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            security: crate::SecurityConfig::default(),
            network: crate::NetworkConfig {
                client_id: "kasio-admin".into(),
                ..crate::NetworkConfig::default()
            },
            default_api_timeout: Duration::from_secs(60),
        }
    }
}

impl AdminConfig {
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
        match key {
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
        Ok(())
    }
}
