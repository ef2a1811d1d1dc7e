//! Security for every connection: TLS (rustls, driven in memory so every runtime gets the
//! same TLS) and SASL (PLAIN, SCRAM-SHA-256/512, OAUTHBEARER), configured with the Java
//! client's property names.

pub(crate) use kasio_proto::base64;
pub(crate) mod sasl;
pub(crate) mod scram;
pub(crate) mod tls;
pub use tls::{TlsConnector, TlsSession};

use crate::config::{ConfigError, invalid};
use std::{fmt, sync::Arc};

/// `security.protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SecurityProtocol {
    /// No TLS, no SASL.
    #[default]
    Plaintext,
    /// TLS.
    Ssl,
    /// SASL without TLS.
    SaslPlaintext,
    /// SASL over TLS.
    SaslSsl,
}

/// `sasl.mechanism`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SaslMechanism {
    /// PLAIN: user and password, sent as they are (use it over TLS).
    #[default]
    Plain,
    /// SCRAM-SHA-256 (RFC 7677).
    ScramSha256,
    /// SCRAM-SHA-512.
    ScramSha512,
    /// OAUTHBEARER with a bearer token (RFC 7628).
    OAuthBearer,
}

impl SaslMechanism {
    /// The name Kafka knows it by.
    pub fn name(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
            Self::OAuthBearer => "OAUTHBEARER",
        }
    }
}

/// A secret (password, key, token): never printed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "<redacted>"
        })
    }
}

/// TLS and SASL settings, shared by the producer, consumer and admin configs.
///
/// ```
/// use kasio_core::SecurityConfig;
/// let mut s = SecurityConfig::default();
/// s.set("security.protocol", "SASL_SSL")?;
/// s.set("sasl.mechanism", "SCRAM-SHA-512")?;
/// s.set("sasl.username", "alice")?;
/// s.set("sasl.password", "secret")?;
/// assert!(!format!("{s:?}").contains("secret"));
/// # Ok::<(), kasio_core::ConfigError>(())
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct SecurityConfig {
    /// `security.protocol`.
    pub protocol: SecurityProtocol,
    /// `sasl.mechanism`.
    pub sasl_mechanism: SaslMechanism,
    /// `sasl.username` (or from `sasl.jaas.config`).
    pub sasl_username: String,
    /// `sasl.password` (or from `sasl.jaas.config`).
    pub sasl_password: Secret,
    /// `sasl.oauthbearer.token`: the bearer token for OAUTHBEARER. Without one, an
    /// unsecured token (as Kafka's default validator accepts) is made for
    /// `sasl.oauthbearer.principal`, or for `sasl.username`.
    pub sasl_oauthbearer_token: Secret,
    /// `sasl.oauthbearer.principal`.
    pub sasl_oauthbearer_principal: String,
    /// Trusted CA certificates, PEM (`ssl.ca.location` reads a file, `ssl.ca.pem` takes
    /// them inline); without any, the Mozilla roots of webpki-roots.
    pub ssl_ca_pem: Option<Vec<u8>>,
    /// The client certificate chain, PEM (`ssl.certificate.location` / `ssl.certificate.pem`).
    pub ssl_certificate_pem: Option<Vec<u8>>,
    /// The client key, PEM (`ssl.key.location` / `ssl.key.pem`).
    pub ssl_key_pem: Option<Secret>,
    /// `ssl.endpoint.identification.algorithm`: `https` (the default) checks that the
    /// broker's certificate names the host dialled; empty turns the check off.
    pub verify_hostname: bool,
    /// Where OAUTHBEARER tokens come from, when set (see [`SecurityConfig::token_provider`]).
    oauth_provider: Option<sasl::TokenProvider>,
}

impl fmt::Debug for SecurityConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecurityConfig")
            .field("protocol", &self.protocol)
            .field("sasl_mechanism", &self.sasl_mechanism)
            .field("sasl_username", &self.sasl_username)
            .field("sasl_password", &self.sasl_password)
            .field("sasl_oauthbearer_token", &self.sasl_oauthbearer_token)
            .field(
                "sasl_oauthbearer_principal",
                &self.sasl_oauthbearer_principal,
            )
            .field("ssl_ca_pem", &self.ssl_ca_pem.as_ref().map(Vec::len))
            .field(
                "ssl_certificate_pem",
                &self.ssl_certificate_pem.as_ref().map(Vec::len),
            )
            .field("ssl_key_pem", &self.ssl_key_pem)
            .field("verify_hostname", &self.verify_hostname)
            .field("oauth_provider", &self.oauth_provider.is_some())
            .finish()
    }
}

impl Default for SecurityConfig {
    fn default() -> Self {
        Self {
            protocol: SecurityProtocol::Plaintext,
            sasl_mechanism: SaslMechanism::Plain,
            sasl_username: String::new(),
            sasl_password: Secret::default(),
            sasl_oauthbearer_token: Secret::default(),
            sasl_oauthbearer_principal: String::new(),
            ssl_ca_pem: None,
            ssl_certificate_pem: None,
            ssl_key_pem: None,
            verify_hostname: true,
            oauth_provider: None,
        }
    }
}

fn read(key: &str, path: &str) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path)
        .map_err(|e| ConfigError::Conflict(format!("{key}: cannot read {path}: {e}")))
}

/// `username="..." password="..."` out of a JAAS line, as the Java client takes them.
fn jaas(value: &str) -> (Option<String>, Option<String>) {
    let field = |name: &str| {
        let at = value.find(&format!("{name}="))? + name.len() + 1;
        let rest = &value[at..];
        let rest = rest.strip_prefix('"')?;
        let end = rest.find('"')?;
        Some(rest[..end].to_string())
    };
    (field("username"), field("password"))
}

impl SecurityConfig {
    /// Sets one security property; `Ok(false)` if the key is not a security key.
    ///
    /// # Errors
    /// [`ConfigError::InvalidValue`] naming the key.
    pub fn set(&mut self, key: &str, value: &str) -> Result<bool, ConfigError> {
        match key {
            "security.protocol" => {
                self.protocol = match value.trim().to_ascii_uppercase().as_str() {
                    "PLAINTEXT" => SecurityProtocol::Plaintext,
                    "SSL" => SecurityProtocol::Ssl,
                    "SASL_PLAINTEXT" => SecurityProtocol::SaslPlaintext,
                    "SASL_SSL" => SecurityProtocol::SaslSsl,
                    _ => {
                        return Err(invalid(
                            key,
                            value,
                            "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
                        ));
                    }
                }
            }
            "sasl.mechanism" | "sasl.mechanisms" => {
                self.sasl_mechanism = match value.trim().to_ascii_uppercase().as_str() {
                    "PLAIN" => SaslMechanism::Plain,
                    "SCRAM-SHA-256" => SaslMechanism::ScramSha256,
                    "SCRAM-SHA-512" => SaslMechanism::ScramSha512,
                    "OAUTHBEARER" => SaslMechanism::OAuthBearer,
                    _ => {
                        return Err(invalid(
                            key,
                            value,
                            "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER",
                        ));
                    }
                }
            }
            "sasl.username" => self.sasl_username = value.into(),
            "sasl.password" => self.sasl_password = Secret::new(value),
            "sasl.jaas.config" => {
                let (user, password) = jaas(value);
                if let Some(u) = user {
                    self.sasl_username = u;
                }
                if let Some(p) = password {
                    self.sasl_password = Secret::new(p);
                }
            }
            "sasl.oauthbearer.token" => self.sasl_oauthbearer_token = Secret::new(value),
            "sasl.oauthbearer.principal" => self.sasl_oauthbearer_principal = value.into(),
            "ssl.ca.location" => self.ssl_ca_pem = Some(read(key, value)?),
            "ssl.ca.pem" => self.ssl_ca_pem = Some(value.as_bytes().to_vec()),
            "ssl.certificate.location" => self.ssl_certificate_pem = Some(read(key, value)?),
            "ssl.certificate.pem" => self.ssl_certificate_pem = Some(value.as_bytes().to_vec()),
            "ssl.key.location" => {
                let pem = read(key, value)?;
                self.ssl_key_pem = Some(Secret::new(String::from_utf8_lossy(&pem)));
            }
            "ssl.key.pem" => self.ssl_key_pem = Some(Secret::new(value)),
            "ssl.endpoint.identification.algorithm" => {
                self.verify_hostname = match value.trim().to_ascii_lowercase().as_str() {
                    "https" => true,
                    "" | "none" => false,
                    _ => return Err(invalid(key, value, "https, or empty to turn the check off")),
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Takes OAUTHBEARER tokens from `provider`, called for every new connection (a
    /// connection re-authenticates by reconnecting before its session expires).
    pub fn token_provider(
        &mut self,
        provider: impl Fn() -> Result<Secret, String> + Send + Sync + 'static,
    ) {
        self.oauth_provider = Some(Arc::new(provider));
    }

    fn tls(&self) -> bool {
        matches!(
            self.protocol,
            SecurityProtocol::Ssl | SecurityProtocol::SaslSsl
        )
    }

    fn sasl(&self) -> bool {
        matches!(
            self.protocol,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }

    /// What connections need: the TLS configuration and the SASL credentials.
    ///
    /// # Errors
    /// [`ConfigError`] for certificates or keys that do not parse, or missing credentials.
    pub(crate) fn build(&self) -> Result<Option<Arc<Security>>, ConfigError> {
        if self.protocol == SecurityProtocol::Plaintext {
            return Ok(None);
        }
        let tls = if self.tls() {
            Some(tls::client_config(self)?)
        } else {
            None
        };
        let sasl = if self.sasl() {
            let needs_password = self.sasl_mechanism != SaslMechanism::OAuthBearer;
            if needs_password && (self.sasl_username.is_empty() || self.sasl_password.is_empty()) {
                return Err(ConfigError::Conflict(format!(
                    "{} needs sasl.username and sasl.password",
                    self.sasl_mechanism.name()
                )));
            }
            Some(sasl::Credentials::from_config(self)?)
        } else {
            None
        };
        Ok(Some(Arc::new(Security { tls, sasl })))
    }
}

/// The built form connections use.
#[derive(Debug)]
pub(crate) struct Security {
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
    pub(crate) sasl: Option<sasl::Credentials>,
}

/// What kind of security failure ended a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecurityErrorKind {
    /// The broker refused the credentials.
    Authentication,
    /// The broker's certificate is not trusted (unknown issuer, expired, ...).
    Certificate,
    /// The broker's certificate does not name the host dialled.
    Hostname,
    /// The broker does not enable the SASL mechanism (or the listener speaks no SASL).
    Mechanism,
    /// Another TLS failure.
    Tls,
}

/// A security failure: fatal for the client, which stops retrying and reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityError {
    /// What failed.
    pub kind: SecurityErrorKind,
    /// The details, never a secret.
    pub message: String,
}

impl fmt::Display for SecurityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            SecurityErrorKind::Authentication => "authentication failed",
            SecurityErrorKind::Certificate => "the broker's certificate is not trusted",
            SecurityErrorKind::Hostname => "the broker's certificate is for another host",
            SecurityErrorKind::Mechanism => "SASL mechanism refused",
            SecurityErrorKind::Tls => "TLS failed",
        };
        write!(f, "{what}: {}", self.message)
    }
}

impl std::error::Error for SecurityError {}
