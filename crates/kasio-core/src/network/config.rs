//! The settings every client shares: where the cluster is and how to talk to it. Parsed
//! here once for the producer, the consumer and the admin client.

use crate::config::{BrokerAddress, ConfigError, invalid, parse_bootstrap, parse_ms, parse_num};
use std::time::Duration;

/// How a client reaches the cluster and paces its requests: the Java client's common
/// settings, with its names and defaults. Every client's config holds one as `network`.
///
/// ```
/// use kasio_core::ProducerConfig;
/// use std::time::Duration;
/// let mut config = ProducerConfig::new("localhost:9092")?;
/// config.set("request.timeout.ms", "5000")?;
/// assert_eq!(config.network.request_timeout, Duration::from_secs(5));
/// # Ok::<(), kasio_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NetworkConfig {
    /// `bootstrap.servers`.
    pub bootstrap_servers: Vec<BrokerAddress>,
    /// `client.id`.
    pub client_id: String,
    /// `request.timeout.ms`: how long one request may take before its connection is
    /// closed and the request retried.
    pub request_timeout: Duration,
    /// `retry.backoff.ms`.
    pub retry_backoff: Duration,
    /// `reconnect.backoff.ms`.
    pub reconnect_backoff: Duration,
    /// `reconnect.backoff.max.ms`.
    pub reconnect_backoff_max: Duration,
    /// `metadata.max.age.ms`.
    pub metadata_max_age: Duration,
    /// `receive.message.max.bytes`: the largest response frame accepted, in bytes.
    pub max_response_size: usize,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            bootstrap_servers: Vec::new(),
            client_id: "kasio".into(),
            request_timeout: Duration::from_secs(30),
            retry_backoff: Duration::from_millis(100),
            reconnect_backoff: Duration::from_millis(50),
            reconnect_backoff_max: Duration::from_millis(1000),
            metadata_max_age: Duration::from_secs(300),
            max_response_size: 100 * 1024 * 1024,
        }
    }
}

impl NetworkConfig {
    /// Sets `key` if it is one of these settings; whether it was.
    pub(crate) fn set(&mut self, key: &str, value: &str) -> Result<bool, ConfigError> {
        match key {
            "bootstrap.servers" => self.bootstrap_servers = parse_bootstrap(value)?,
            "client.id" => self.client_id = value.into(),
            "request.timeout.ms" => self.request_timeout = parse_ms(key, value)?,
            "retry.backoff.ms" => self.retry_backoff = parse_ms(key, value)?,
            "reconnect.backoff.ms" => self.reconnect_backoff = parse_ms(key, value)?,
            "reconnect.backoff.max.ms" => self.reconnect_backoff_max = parse_ms(key, value)?,
            "metadata.max.age.ms" => self.metadata_max_age = parse_ms(key, value)?,
            // The second name is librdkafka's, kept for the producer that accepted it.
            "receive.message.max.bytes" | "fetch.max.response.size" => {
                self.max_response_size = parse_num(key, value, "a byte count")?;
                // Smaller than any response a broker sends: every request would fail.
                if self.max_response_size < 1024 {
                    return Err(invalid(key, value, "at least 1024 bytes"));
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Checks what no client can work without.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.bootstrap_servers.is_empty() {
            return Err(ConfigError::Conflict("bootstrap.servers is empty".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_keys_are_parsed_once_for_every_client() {
        let mut n = NetworkConfig::default();
        for (key, value) in [
            ("bootstrap.servers", "a:1,b:2"),
            ("client.id", "me"),
            ("request.timeout.ms", "1000"),
            ("retry.backoff.ms", "2"),
            ("reconnect.backoff.ms", "3"),
            ("reconnect.backoff.max.ms", "4"),
            ("metadata.max.age.ms", "5"),
            ("receive.message.max.bytes", "2048"),
        ] {
            assert!(n.set(key, value).unwrap(), "{key}");
        }
        assert_eq!(n.bootstrap_servers.len(), 2);
        assert_eq!(n.client_id, "me");
        assert_eq!(n.request_timeout, Duration::from_secs(1));
        assert_eq!(n.retry_backoff, Duration::from_millis(2));
        assert_eq!(n.reconnect_backoff, Duration::from_millis(3));
        assert_eq!(n.reconnect_backoff_max, Duration::from_millis(4));
        assert_eq!(n.metadata_max_age, Duration::from_millis(5));
        assert_eq!(n.max_response_size, 2048);
        assert!(!n.set("linger.ms", "5").unwrap(), "not a shared key");
        let e = n.set("receive.message.max.bytes", "10").unwrap_err();
        assert!(e.to_string().contains("receive.message.max.bytes"), "{e}");
    }
}
