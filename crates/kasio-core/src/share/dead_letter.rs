//! Whether the broker keeps a dead-letter topic for the group (KIP-1191), read from the
//! group's configs and read again every `metadata.max.age.ms`: a record rejected with a
//! reason then goes to one dead-letter topic, the broker's where it writes one, else the
//! client's.

use kasio_proto::{
    ErrorCode,
    messages::{
        DescribeConfigsRequest, DescribeConfigsResponse,
        describe_configs_request::DescribeConfigsResource,
    },
};
use std::time::{Duration, Instant};

/// The group config that names the broker's dead-letter topic.
pub(crate) const TOPIC_CONFIG: &str = "errors.deadletterqueue.topic.name";
/// The `share.version` from which brokers write dead-letter records.
const SHARE_VERSION: i16 = 2;
/// `ConfigResource` type of a group on the wire.
const GROUP: i8 = 32;

/// What the consumer knows of the broker's dead-letter topic for its group.
///
/// ```
/// use kasio_core::BrokerDeadLetter;
/// let known = BrokerDeadLetter::Topic("dlq.jobs".into());
/// assert_eq!(known.topic(), Some("dlq.jobs"));
/// assert!(!BrokerDeadLetter::Unknown.is_known());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum BrokerDeadLetter {
    /// Not read yet (or the answer has not come).
    #[default]
    Unknown,
    /// The broker writes none: the group names no topic, the cluster's `share.version` is
    /// below 2, or the group's configs may not be read.
    None,
    /// The broker writes every rejected record of the group to this topic.
    Topic(String),
}

impl BrokerDeadLetter {
    /// The broker's dead-letter topic, if it writes one.
    #[must_use]
    pub fn topic(&self) -> Option<&str> {
        match self {
            Self::Topic(t) => Some(t),
            _ => None,
        }
    }

    /// Whether the group's configs were read.
    #[must_use]
    pub fn is_known(&self) -> bool {
        !matches!(self, Self::Unknown)
    }
}

/// The reading of the group's dead-letter config, asked for only by consumers that
/// publish dead letters themselves (others need no right to describe the group's configs).
#[derive(Debug, Default)]
pub(crate) struct Watch {
    pub(crate) known: BrokerDeadLetter,
    wanted: bool,
    asking: bool,
    next_at: Option<Instant>,
}

impl Watch {
    /// Starts reading, at once.
    pub(crate) fn want(&mut self, now: Instant) {
        if !self.wanted {
            self.wanted = true;
            self.next_at = Some(now);
        }
    }

    /// When the next reading is due, if one is waited for.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        if self.asking { None } else { self.next_at }
    }

    pub(crate) fn due(&self, now: Instant) -> bool {
        self.wanted && self.deadline().is_some_and(|at| at <= now)
    }

    pub(crate) fn request(&mut self, group: &str) -> DescribeConfigsRequest {
        self.asking = true;
        DescribeConfigsRequest {
            resources: vec![DescribeConfigsResource {
                resource_type: GROUP,
                resource_name: group.into(),
                configuration_keys: Some(vec![TOPIC_CONFIG.into()]),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    /// The answer came; `share_version` is the answering broker's finalized level.
    pub(crate) fn answered(
        &mut self,
        r: &DescribeConfigsResponse,
        share_version: i16,
        backoff: Duration,
        max_age: Duration,
        now: Instant,
    ) {
        self.asking = false;
        let Some(res) = r.results.first() else {
            return self.failed(backoff, now);
        };
        let code = ErrorCode::from_code(res.error_code);
        if code.is_retriable() {
            return self.failed(backoff, now);
        }
        let topic = res
            .configs
            .iter()
            .find(|c| &*c.name == TOPIC_CONFIG)
            .and_then(|c| c.value.as_deref())
            .filter(|t| !t.is_empty());
        // A refusal (no right to describe the group's configs, a broker without group
        // configs) counts as no broker dead-letter topic: the client's copy keeps the
        // record, where trusting a topic not known would lose it.
        self.known = match topic {
            Some(t) if code.is_ok() && share_version >= SHARE_VERSION => {
                BrokerDeadLetter::Topic(t.to_string())
            }
            _ => BrokerDeadLetter::None,
        };
        self.next_at = Some(now + max_age);
    }

    /// No answer (lost, or a retriable error): asked again after `backoff`.
    pub(crate) fn failed(&mut self, backoff: Duration, now: Instant) {
        self.asking = false;
        self.next_at = Some(now + backoff);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kasio_proto::messages::describe_configs_response::{
        DescribeConfigsResourceResult, DescribeConfigsResult,
    };

    fn response(code: ErrorCode, value: Option<&str>) -> DescribeConfigsResponse {
        DescribeConfigsResponse {
            results: vec![DescribeConfigsResult {
                error_code: code.code(),
                resource_type: GROUP,
                resource_name: "jobs".into(),
                configs: value
                    .map(|v| DescribeConfigsResourceResult {
                        name: TOPIC_CONFIG.into(),
                        value: Some(v.into()),
                        ..Default::default()
                    })
                    .into_iter()
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    const SECOND: Duration = Duration::from_secs(1);
    const AGE: Duration = Duration::from_secs(300);

    #[test]
    fn reads_only_when_wanted_and_again_after_the_max_age() {
        let t0 = Instant::now();
        let mut w = Watch::default();
        assert!(!w.due(t0));
        w.want(t0);
        assert!(w.due(t0));
        let req = w.request("jobs");
        assert_eq!(req.resources[0].resource_type, GROUP);
        assert!(!w.due(t0), "one question at a time");
        w.answered(
            &response(ErrorCode::None, Some("dlq.jobs")),
            2,
            SECOND,
            AGE,
            t0,
        );
        assert_eq!(w.known.topic(), Some("dlq.jobs"));
        assert!(!w.due(t0 + SECOND));
        assert!(w.due(t0 + AGE));
    }

    #[test]
    fn a_blank_topic_an_old_cluster_or_a_refusal_mean_none() {
        let t0 = Instant::now();
        for (code, value, level) in [
            (ErrorCode::None, Some(""), 2),
            (ErrorCode::None, None, 2),
            (ErrorCode::None, Some("dlq.jobs"), 1),
            (ErrorCode::GroupAuthorizationFailed, Some("dlq.jobs"), 2),
            (ErrorCode::InvalidRequest, None, 2),
        ] {
            let mut w = Watch::default();
            w.want(t0);
            let _ = w.request("jobs");
            w.answered(&response(code, value), level, SECOND, AGE, t0);
            assert_eq!(
                w.known,
                BrokerDeadLetter::None,
                "{code:?} {value:?} {level}"
            );
        }
    }

    #[test]
    fn retriable_errors_and_losses_ask_again_after_the_backoff() {
        let t0 = Instant::now();
        let mut w = Watch::default();
        w.want(t0);
        let _ = w.request("jobs");
        w.answered(
            &response(ErrorCode::RequestTimedOut, None),
            2,
            SECOND,
            AGE,
            t0,
        );
        assert_eq!(w.known, BrokerDeadLetter::Unknown);
        assert!(w.due(t0 + SECOND));
        let _ = w.request("jobs");
        w.failed(SECOND, t0 + SECOND);
        assert!(!w.due(t0 + SECOND));
        assert!(w.due(t0 + 2 * SECOND));
    }
}
