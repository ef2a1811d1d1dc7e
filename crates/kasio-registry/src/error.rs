//! What can go wrong asking the registry.

use kasio_core::SecurityError;

/// A registry call that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistryError {
    /// The registry answered with an error: its HTTP status, its `error_code` (Confluent's
    /// codes: 40401 subject not found, 40403 schema not found, 409 incompatible, 42201
    /// invalid schema; -1 when the body had none) and `message`.
    Api {
        /// The HTTP status.
        status: u16,
        /// The registry's `error_code`.
        error_code: i32,
        /// The registry's message.
        message: String,
    },
    /// No connection to the registry could be made or kept, after every retry.
    Unreachable(String),
    /// No answer within `request.timeout.ms`, after every retry.
    Timeout,
    /// The answer's body is larger than `max.response.bytes` (or its head than 64 KiB).
    TooLarge {
        /// The cap that was passed.
        limit: usize,
    },
    /// The answer is not the HTTP or JSON expected.
    Malformed(String),
    /// TLS failed: a certificate refused, a host name that does not match.
    Tls(SecurityError),
    /// The client closed before the call ended.
    Closed,
}

impl RegistryError {
    /// The registry's `error_code`, when it answered with one.
    #[must_use]
    pub fn error_code(&self) -> Option<i32> {
        match self {
            Self::Api { error_code, .. } => Some(*error_code),
            _ => None,
        }
    }

    /// Whether the subject, version or schema asked for does not exist (HTTP 404).
    ///
    /// ```
    /// use kasio_registry::RegistryError;
    /// let e = RegistryError::Api { status: 404, error_code: 40403, message: "Schema not found".into() };
    /// assert!(e.is_not_found() && !e.is_incompatible());
    /// ```
    #[must_use]
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Api { status: 404, .. })
    }

    /// Whether the schema was refused as incompatible with the subject's (HTTP 409).
    #[must_use]
    pub fn is_incompatible(&self) -> bool {
        matches!(self, Self::Api { status: 409, .. })
    }

    /// Whether trying again later may succeed.
    #[must_use]
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::Api { status, .. } => retriable_status(*status),
            Self::Unreachable(_) | Self::Timeout => true,
            _ => false,
        }
    }
}

/// The statuses confluent-kafka retries.
pub(crate) fn retriable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

impl std::fmt::Display for RegistryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Api {
                status,
                error_code,
                message,
            } => write!(
                f,
                "schema registry answered {status} (error code {error_code}): {message}"
            ),
            Self::Unreachable(why) => write!(f, "schema registry unreachable: {why}"),
            Self::Timeout => f.write_str("schema registry did not answer in time"),
            Self::TooLarge { limit } => {
                write!(f, "schema registry answer larger than {limit} bytes")
            }
            Self::Malformed(why) => write!(f, "schema registry answer malformed: {why}"),
            Self::Tls(e) => write!(f, "schema registry TLS: {e}"),
            Self::Closed => f.write_str("schema registry client closed"),
        }
    }
}

impl std::error::Error for RegistryError {}
