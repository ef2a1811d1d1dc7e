//! What becomes of a record whose processing failed: tried again after a backoff that
//! grows exponentially with jitter, sent to the dead-letter topic, or the member stops.

use crate::{
    ErrorCode, ProduceError, SendError,
    config::{ConfigError, invalid, parse_ms, parse_num},
    rng::Rng,
};
use std::time::Duration;

/// How a failure is treated.
///
/// ```
/// use kasio_core::{ErrorCode, FailureKind};
/// assert_eq!(FailureKind::of_code(ErrorCode::RequestTimedOut), FailureKind::Retriable);
/// assert_eq!(FailureKind::of_code(ErrorCode::RecordListTooLarge), FailureKind::NonRetriable);
/// assert_eq!(FailureKind::of_code(ErrorCode::TopicAuthorizationFailed), FailureKind::Terminal);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// May succeed if tried again (a timeout, a leader moving, a service briefly down).
    Retriable,
    /// Will fail however often it is tried (a record too large, a value that does not
    /// deserialize): it goes to the dead-letter topic at once.
    NonRetriable,
    /// Nothing further can succeed (authorization, a fenced producer): the member stops,
    /// without committing past the record.
    Terminal,
}

impl FailureKind {
    /// The kind of a broker's error code: the codes the protocol marks retriable are
    /// retriable; authorization, fencing and unsupported features are terminal; the rest
    /// concern the record and are not retriable.
    #[must_use]
    pub fn of_code(code: ErrorCode) -> Self {
        use ErrorCode as E;
        if code.is_retriable() {
            return Self::Retriable;
        }
        match code {
            E::TopicAuthorizationFailed
            | E::GroupAuthorizationFailed
            | E::ClusterAuthorizationFailed
            | E::TransactionalIdAuthorizationFailed
            | E::SaslAuthenticationFailed
            | E::ProducerFenced
            | E::InvalidProducerEpoch
            | E::TransactionCoordinatorFenced
            | E::FencedInstanceId
            | E::UnsupportedVersion
            | E::UnsupportedForMessageFormat
            | E::InconsistentClusterId => Self::Terminal,
            _ => Self::NonRetriable,
        }
    }

    /// The kind of a failed write: timeouts, a full buffer, an unknown topic (it may be
    /// being created) and retriable codes are retriable; a record too large is not;
    /// a closed producer, a security failure and a failed transaction are terminal.
    ///
    /// ```
    /// use kasio_core::{FailureKind, ProduceError};
    /// assert_eq!(FailureKind::of_produce(&ProduceError::Timeout), FailureKind::Retriable);
    /// assert_eq!(FailureKind::of_produce(&ProduceError::Closed), FailureKind::Terminal);
    /// ```
    #[must_use]
    pub fn of_produce(error: &ProduceError) -> Self {
        match error {
            ProduceError::Broker { code, .. } => Self::of_code(*code),
            ProduceError::Timeout | ProduceError::UnknownTopic | ProduceError::UnknownPartition => {
                Self::Retriable
            }
            ProduceError::RecordTooLarge { .. } => Self::NonRetriable,
            _ => Self::Terminal,
        }
    }

    /// The kind of a send refused at once: a full buffer is retriable.
    #[must_use]
    pub fn of_send(error: &SendError) -> Self {
        match error {
            SendError::BufferFull => Self::Retriable,
            SendError::Invalid(e) => Self::of_produce(e),
            _ => Self::Terminal,
        }
    }
}

/// What to do with a failed record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Try again after this long.
    Retry(Duration),
    /// Give up on it: write it to the dead-letter topic with the failure in its headers.
    DeadLetter,
    /// Stop the member.
    Stop,
}

/// How often and how long apart failed records are tried again: `attempts` tries in all
/// (the first included), waits from `backoff` growing by `multiplier` up to `backoff_max`,
/// each spread by up to `jitter` of itself either way so that retries of many records do
/// not land together.
///
/// ```
/// use kasio_core::{Decision, FailureKind, RetryPolicy};
/// use std::time::Duration;
/// let mut policy = RetryPolicy::default();
/// policy.set("processing.retry.attempts", "3")?.set("processing.retry.jitter", "0")?;
/// assert_eq!(policy.decide(FailureKind::Retriable, 1, 7), Decision::Retry(Duration::from_secs(1)));
/// assert_eq!(policy.decide(FailureKind::Retriable, 2, 7), Decision::Retry(Duration::from_secs(2)));
/// assert_eq!(policy.decide(FailureKind::Retriable, 3, 7), Decision::DeadLetter);
/// assert_eq!(policy.decide(FailureKind::NonRetriable, 1, 7), Decision::DeadLetter);
/// # Ok::<(), kasio_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Tries in all, the first included (`processing.retry.attempts`, 3).
    pub attempts: u32,
    /// The first wait (`processing.retry.backoff.ms`, 1 s).
    pub backoff: Duration,
    /// The longest wait (`processing.retry.backoff.max.ms`, 30 s).
    pub backoff_max: Duration,
    /// Each wait is the last times this (`processing.retry.multiplier`, 2).
    pub multiplier: f64,
    /// Each wait is spread by up to this fraction of itself either way
    /// (`processing.retry.jitter`, 0.2).
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 3,
            backoff: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            multiplier: 2.0,
            jitter: 0.2,
        }
    }
}

impl RetryPolicy {
    /// Sets a `processing.retry.*` property; `Ok(false)` for a key it does not know.
    ///
    /// # Errors
    /// [`ConfigError::InvalidValue`] naming a bad value.
    pub fn set(&mut self, key: &str, value: &str) -> Result<&mut Self, ConfigError> {
        if !self.try_set(key, value)? {
            return Err(ConfigError::UnknownKey(key.into()));
        }
        Ok(self)
    }

    /// Sets the property if it is one of the policy's; whether it was.
    ///
    /// # Errors
    /// [`ConfigError::InvalidValue`] naming a bad value.
    pub fn try_set(&mut self, key: &str, value: &str) -> Result<bool, ConfigError> {
        self.try_set_under("processing.retry.", key, value)
    }

    /// As [`try_set`](Self::try_set), for the same properties under another prefix (a
    /// publisher's `publisher.retry.*`).
    ///
    /// # Errors
    /// [`ConfigError::InvalidValue`] naming a bad value.
    pub fn try_set_under(
        &mut self,
        prefix: &str,
        key: &str,
        value: &str,
    ) -> Result<bool, ConfigError> {
        let Some(name) = key.strip_prefix(prefix) else {
            return Ok(false);
        };
        match name {
            "attempts" => {
                self.attempts = parse_num(key, value, "a count of tries, at least 1")?;
                if self.attempts == 0 {
                    return Err(invalid(key, value, "a count of tries, at least 1"));
                }
            }
            "backoff.ms" => self.backoff = parse_ms(key, value)?,
            "backoff.max.ms" => self.backoff_max = parse_ms(key, value)?,
            "multiplier" => {
                self.multiplier = parse_num(key, value, "a factor of at least 1")?;
                if !(1.0..=1000.0).contains(&self.multiplier) {
                    return Err(invalid(key, value, "a factor of at least 1"));
                }
            }
            "jitter" => {
                self.jitter = parse_num(key, value, "a fraction from 0 to 1")?;
                if !(0.0..=1.0).contains(&self.jitter) {
                    return Err(invalid(key, value, "a fraction from 0 to 1"));
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The wait before try `attempt + 1`, after `attempt` tries failed (`seed` picks the
    /// jitter: the same seed, the same wait).
    #[must_use]
    pub fn backoff(&self, attempt: u32, seed: u64) -> Duration {
        let exp = self
            .multiplier
            .powi(i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX));
        let base = (self.backoff.as_secs_f64() * exp).min(self.backoff_max.as_secs_f64());
        let spread = if self.jitter > 0.0 {
            Rng::new(seed).between(1.0 - self.jitter, 1.0 + self.jitter)
        } else {
            1.0
        };
        Duration::from_secs_f64((base * spread).clamp(0.0, self.backoff_max.as_secs_f64()))
    }

    /// What to do after try `attempt` (1 for the first) failed with a failure of `kind`.
    #[must_use]
    pub fn decide(&self, kind: FailureKind, attempt: u32, seed: u64) -> Decision {
        match kind {
            FailureKind::Terminal => Decision::Stop,
            FailureKind::NonRetriable => Decision::DeadLetter,
            FailureKind::Retriable if attempt >= self.attempts => Decision::DeadLetter,
            FailureKind::Retriable => Decision::Retry(self.backoff(attempt, seed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap_within_its_jitter() {
        let policy = RetryPolicy {
            attempts: 10,
            ..RetryPolicy::default()
        };
        let mut last = Duration::ZERO;
        for attempt in 1..=10 {
            for seed in 0..200 {
                let wait = policy.backoff(attempt, seed);
                let base = (2f64.powi(attempt as i32 - 1)).min(30.0);
                assert!(
                    wait.as_secs_f64() >= base * 0.8 - 1e-9,
                    "{attempt}: {wait:?}"
                );
                assert!(wait <= policy.backoff_max, "{attempt}: {wait:?}");
            }
            let plain = RetryPolicy {
                jitter: 0.0,
                ..policy.clone()
            }
            .backoff(attempt, 0);
            assert!(plain >= last);
            last = plain;
        }
        assert_eq!(last, Duration::from_secs(30));
        // Jitter spreads: 200 seeds give many different waits.
        let waits: std::collections::HashSet<_> = (0..200).map(|s| policy.backoff(2, s)).collect();
        assert!(waits.len() > 100);
    }

    #[test]
    fn kinds_decide() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.decide(FailureKind::Terminal, 1, 0), Decision::Stop);
        assert!(matches!(
            policy.decide(FailureKind::Retriable, 2, 0),
            Decision::Retry(_)
        ));
        assert_eq!(
            policy.decide(FailureKind::Retriable, 3, 0),
            Decision::DeadLetter
        );
        assert!(
            RetryPolicy::default()
                .set("processing.retry.attempts", "0")
                .is_err()
        );
        assert!(
            RetryPolicy::default()
                .set("processing.retry.jitter", "2")
                .is_err()
        );
        assert!(RetryPolicy::default().set("nope", "1").is_err());
    }
}
