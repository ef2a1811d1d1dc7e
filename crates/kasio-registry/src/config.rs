//! The registry client's settings, under confluent-kafka's names.

use crate::http::base64;
use kasio_core::{ConfigError, SecurityConfig};
use std::time::Duration;

/// One base URL of the registry: `http://host:port/path` or `https://...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryUrl {
    /// Whether it is `https`.
    pub tls: bool,
    /// The host.
    pub host: String,
    /// The port (80 or 443 when the URL names none).
    pub port: u16,
    /// The path every request goes under, without a trailing `/` (`/apis/ccompat/v7`).
    pub path: String,
}

impl RegistryUrl {
    /// Parses one URL; user information in it (`http://user:pass@host`) is returned beside.
    ///
    /// ```
    /// use kasio_registry::RegistryUrl;
    /// let (url, _) = RegistryUrl::parse("https://sr.example.com/apis/ccompat/v7/")?;
    /// assert_eq!((url.tls, url.host.as_str(), url.port, url.path.as_str()),
    ///            (true, "sr.example.com", 443, "/apis/ccompat/v7"));
    /// # Ok::<(), kasio_core::ConfigError>(())
    /// ```
    ///
    /// # Errors
    /// [`ConfigError::InvalidValue`] for anything but an `http` or `https` URL with a host.
    pub fn parse(url: &str) -> Result<(Self, Option<String>), ConfigError> {
        let invalid = || ConfigError::InvalidValue {
            key: "url".into(),
            value: url.into(),
            expected: "http://host[:port][/path] or https://..., comma-separated",
        };
        let url = url.trim();
        let (tls, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(invalid());
        };
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((user, host)) => (Some(user.to_string()), host),
            None => (None, authority),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(invalid)?;
            (host, after.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        let port = match port {
            Some(p) => p.parse().map_err(|_| invalid())?,
            None if tls => 443,
            None => 80,
        };
        if host.is_empty() || path.contains(['?', '#']) {
            return Err(invalid());
        }
        let url = Self {
            tls,
            host: host.to_string(),
            port,
            path: path.trim_end_matches('/').to_string(),
        };
        Ok((url, userinfo))
    }

    /// The `Host` header's value.
    pub(crate) fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match (self.tls, self.port) {
            (true, 443) | (false, 80) => host,
            _ => format!("{host}:{}", self.port),
        }
    }
}

/// How requests prove who sends them.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Auth {
    /// No credentials.
    #[default]
    None,
    /// HTTP basic auth (`basic.auth.user.info` = `user:password`).
    Basic {
        /// The user.
        user: String,
        /// The password.
        password: String,
    },
    /// A static bearer token (`bearer.auth.credentials.source=STATIC_TOKEN`).
    Bearer {
        /// The token.
        token: String,
        /// `bearer.auth.logical.cluster`, sent as `target-sr-cluster`.
        logical_cluster: Option<String>,
        /// `bearer.auth.identity.pool.id`, sent as `Confluent-Identity-Pool-Id`.
        identity_pool: Option<String>,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Basic { user, .. } => {
                write!(f, "Basic {{ user: {user:?}, password: <redacted> }}")
            }
            Self::Bearer { .. } => f.write_str("Bearer { token: <redacted> }"),
        }
    }
}

impl Auth {
    /// The headers to send.
    pub(crate) fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::None => Vec::new(),
            Self::Basic { user, password } => vec![(
                "Authorization",
                format!("Basic {}", base64(format!("{user}:{password}").as_bytes())),
            )],
            Self::Bearer {
                token,
                logical_cluster,
                identity_pool,
            } => {
                let mut h = vec![("Authorization", format!("Bearer {token}"))];
                if let Some(c) = logical_cluster {
                    h.push(("target-sr-cluster", c.clone()));
                }
                if let Some(p) = identity_pool {
                    h.push(("Confluent-Identity-Pool-Id", p.clone()));
                }
                h
            }
        }
    }
}

/// The registry client's settings. Keys are confluent-kafka's (`url`,
/// `basic.auth.user.info`, `max.retries`, ...), also taken with the Java client's
/// `schema.registry.` in front; TLS takes kasio's `ssl.*` keys.
///
/// ```
/// use kasio_registry::RegistryConfig;
/// let config = RegistryConfig::from_properties([
///     ("url", "http://localhost:8081,http://localhost:8082"),
///     ("basic.auth.user.info", "alice:secret"),
///     ("max.retries", "5"),
/// ])?;
/// assert_eq!(config.urls.len(), 2);
/// assert!(!format!("{config:?}").contains("secret"));
/// # Ok::<(), kasio_core::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RegistryConfig {
    /// `url`: the registry's base URLs, tried in turn when one fails.
    pub urls: Vec<RegistryUrl>,
    /// Credentials.
    pub auth: Auth,
    /// `request.timeout.ms`: how long one attempt (connect, TLS, request, response) may
    /// take (30 s).
    pub request_timeout: Duration,
    /// `max.retries`: attempts after the first for a connection failure, a timeout, or a
    /// 408, 429, 500, 502, 503 or 504 answer (3).
    pub max_retries: u32,
    /// `retries.wait.ms`: the first retry's backoff ceiling, doubling per retry, with
    /// full jitter (1 s).
    pub retries_wait: Duration,
    /// `retries.max.wait.ms`: the largest backoff ceiling (20 s).
    pub retries_max_wait: Duration,
    /// `cache.capacity`: entries per cache (1,000).
    pub cache_capacity: usize,
    /// `cache.latest.ttl.sec`: how long a subject's latest version is cached; not at all
    /// when unset.
    pub cache_latest_ttl: Option<Duration>,
    /// `max.response.bytes`: the largest response body accepted (8 MiB).
    pub max_response_bytes: usize,
    /// `max.connections`: connections kept to the registry at most (4).
    pub max_connections: usize,
    /// `ssl.*`: TLS for `https` URLs.
    pub security: SecurityConfig,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            urls: Vec::new(),
            auth: Auth::None,
            request_timeout: Duration::from_secs(30),
            max_retries: 3,
            retries_wait: Duration::from_secs(1),
            retries_max_wait: Duration::from_secs(20),
            cache_capacity: 1000,
            cache_latest_ttl: None,
            max_response_bytes: 8 << 20,
            max_connections: 4,
            security: SecurityConfig::default(),
        }
    }
}

impl RegistryConfig {
    /// A config for the registry at `url` (comma-separated for several).
    ///
    /// # Errors
    /// [`ConfigError`] if a URL does not parse.
    pub fn new(url: &str) -> Result<Self, ConfigError> {
        let mut config = Self::default();
        config.set("url", url)?;
        Ok(config)
    }

    /// A config from `key`/`value` pairs.
    ///
    /// # Errors
    /// [`ConfigError`] naming an unknown key, a bad value, or no `url`.
    pub fn from_properties<'a>(
        props: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ConfigError> {
        let mut config = Self::default();
        for (k, v) in props {
            config.set(k, v)?;
        }
        config.check()?;
        Ok(config)
    }

    /// Whether the settings can work together: a URL is given.
    ///
    /// # Errors
    /// [`ConfigError::Conflict`] when no URL is set.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.urls.is_empty() {
            return Err(ConfigError::Conflict("url: no registry URL is set".into()));
        }
        Ok(())
    }

    /// Sets one key.
    ///
    /// # Errors
    /// [`ConfigError`] for an unknown key or a bad value.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        let bare = key.strip_prefix("schema.registry.").unwrap_or(key);
        let invalid = |expected| ConfigError::InvalidValue {
            key: key.into(),
            value: value.into(),
            expected,
        };
        let number = |expected| value.trim().parse::<u64>().map_err(|_| invalid(expected));
        match bare {
            "url" => {
                self.urls.clear();
                for one in value.split(',').filter(|u| !u.trim().is_empty()) {
                    let (url, userinfo) = RegistryUrl::parse(one)?;
                    if let Some((user, password)) =
                        userinfo.as_deref().and_then(|u| u.split_once(':'))
                    {
                        self.auth = Auth::Basic {
                            user: user.into(),
                            password: password.into(),
                        };
                    }
                    self.urls.push(url);
                }
            }
            "basic.auth.user.info" => {
                let (user, password) = value
                    .split_once(':')
                    .ok_or_else(|| invalid("user:password"))?;
                self.auth = Auth::Basic {
                    user: user.into(),
                    password: password.into(),
                };
            }
            "basic.auth.credentials.source" => {
                if !matches!(value, "USER_INFO" | "URL") {
                    return Err(invalid("USER_INFO or URL"));
                }
            }
            "bearer.auth.credentials.source" => {
                if value != "STATIC_TOKEN" {
                    return Err(invalid("STATIC_TOKEN"));
                }
            }
            "bearer.auth.token" => {
                let (logical_cluster, identity_pool) = match &self.auth {
                    Auth::Bearer {
                        logical_cluster,
                        identity_pool,
                        ..
                    } => (logical_cluster.clone(), identity_pool.clone()),
                    _ => (None, None),
                };
                self.auth = Auth::Bearer {
                    token: value.into(),
                    logical_cluster,
                    identity_pool,
                };
            }
            "bearer.auth.logical.cluster" | "bearer.auth.identity.pool.id" => {
                let Auth::Bearer {
                    logical_cluster,
                    identity_pool,
                    ..
                } = &mut self.auth
                else {
                    return Err(ConfigError::Conflict(format!(
                        "{key}: set bearer.auth.token first"
                    )));
                };
                if bare == "bearer.auth.logical.cluster" {
                    *logical_cluster = Some(value.into());
                } else {
                    *identity_pool = Some(value.into());
                }
            }
            "request.timeout.ms" => {
                self.request_timeout =
                    Duration::from_millis(number("milliseconds, above 0")?.max(1));
            }
            "max.retries" => {
                self.max_retries =
                    u32::try_from(number("a count")?).map_err(|_| invalid("a count"))?;
            }
            "retries.wait.ms" => self.retries_wait = Duration::from_millis(number("milliseconds")?),
            "retries.max.wait.ms" => {
                self.retries_max_wait = Duration::from_millis(number("milliseconds")?);
            }
            "cache.capacity" => self.cache_capacity = number("a count")? as usize,
            "cache.latest.ttl.sec" => {
                self.cache_latest_ttl = Some(Duration::from_secs(number("seconds")?));
            }
            "max.response.bytes" => {
                self.max_response_bytes = (number("bytes")? as usize).max(1024);
            }
            "max.connections" => {
                self.max_connections = (number("a count, at least 1")? as usize).max(1);
            }
            _ if bare.starts_with("ssl.") => {
                if !self.security.set(bare, value)? {
                    return Err(ConfigError::UnknownKey(key.into()));
                }
            }
            _ => return Err(ConfigError::UnknownKey(key.into())),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn urls_parse() {
        let (u, info) = RegistryUrl::parse("http://bob:pw@[::1]:8081/base/").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str(), info.as_deref()),
            ("::1", 8081, "/base", Some("bob:pw"))
        );
        assert_eq!(u.authority(), "[::1]:8081");
        let (u, _) = RegistryUrl::parse("http://sr").unwrap();
        assert_eq!(
            (u.port, u.path.as_str(), u.authority()),
            (80, "", "sr".to_string())
        );
        for bad in [
            "ftp://x",
            "http://",
            "http://h:99999",
            "http://h:x",
            "http://h/p?q",
            "localhost:8081",
        ] {
            assert!(RegistryUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_take_both_spellings_and_refuse_strangers() {
        let mut c = RegistryConfig::new("http://a:1").unwrap();
        c.set("schema.registry.max.retries", "0").unwrap();
        assert_eq!(c.max_retries, 0);
        c.set("bearer.auth.token", "t").unwrap();
        c.set("bearer.auth.logical.cluster", "lsrc-1").unwrap();
        assert_eq!(
            c.auth.headers(),
            [
                ("Authorization", "Bearer t".into()),
                ("target-sr-cluster", "lsrc-1".into())
            ]
        );
        assert!(matches!(
            c.set("no.such.key", "1"),
            Err(ConfigError::UnknownKey(_))
        ));
        assert!(matches!(
            c.set("max.retries", "many"),
            Err(ConfigError::InvalidValue { .. })
        ));
        assert!(RegistryConfig::from_properties([("max.retries", "1")]).is_err());
        let c = RegistryConfig::new("http://u:p@h:1").unwrap();
        assert_eq!(
            c.auth.headers(),
            [("Authorization", format!("Basic {}", base64(b"u:p")))]
        );
    }
}
