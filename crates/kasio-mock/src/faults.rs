//! Faults a test injects while traffic flows.

use kasio_proto::{ApiKey, ErrorCode};
use std::time::Duration;

/// A fault to inject into the cluster.
///
/// ```
/// use kasio_mock::{Cluster, ClusterConfig, Fault};
/// use kasio_proto::{ApiKey, ErrorCode};
/// let mut cluster = Cluster::new(ClusterConfig::default());
/// cluster.inject(Fault::FailNext { api: ApiKey::Produce, count: 2, error: ErrorCode::NotLeaderOrFollower });
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer the next `count` requests of `api` with `error` on every partition (or at the
    /// top level), without carrying them out: a failed Produce appends nothing.
    FailNext {
        /// The API to fail.
        api: ApiKey,
        /// How many requests.
        count: u32,
        /// The error they get.
        error: ErrorCode,
    },
    /// Hold the responses to the next `count` requests of `api` for `by`.
    Delay {
        /// The API to slow down.
        api: ApiKey,
        /// How many requests.
        count: u32,
        /// How long each response is held.
        by: Duration,
    },
    /// Carry out the next `count` requests of `api` but never answer them, as if the
    /// response were lost: the client's request timeout fires.
    Blackhole {
        /// The API whose responses are lost.
        api: ApiKey,
        /// How many requests.
        count: u32,
    },
    /// Close every connection to `broker` now.
    DropConnections {
        /// The broker.
        broker: i32,
    },
    /// Refuse (`true`) or accept again (`false`) new connections to `broker`.
    RefuseConnections {
        /// The broker.
        broker: i32,
        /// Whether to refuse.
        refuse: bool,
    },
    /// Stop `broker` as a crash would: its connections close, new ones are refused, and
    /// metadata shows its partitions without a leader (and the broker gone) until
    /// [`Fault::StartBroker`]; its logs and offsets are kept.
    StopBroker {
        /// The broker.
        broker: i32,
    },
    /// Start a stopped broker again, with the data it had.
    StartBroker {
        /// The broker.
        broker: i32,
    },
    /// Half-close every connection to `broker` now: they stay open but the broker reads
    /// nothing more from them, so requests on them time out.
    HalfClose {
        /// The broker.
        broker: i32,
    },
    /// Throttle the next `count` Produce or Fetch requests: their responses say
    /// `throttle_time_ms` and are held that long (KIP-219), as a quota would.
    Throttle {
        /// Produce or Fetch.
        api: ApiKey,
        /// How many requests.
        count: u32,
        /// The throttle time.
        by: Duration,
    },
}

/// Faults waiting to fire, by API.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    fail: Vec<(ApiKey, u32, ErrorCode)>,
    delay: Vec<(ApiKey, u32, Duration)>,
    blackhole: Vec<(ApiKey, u32)>,
    throttle: Vec<(ApiKey, u32, Duration)>,
}

fn take<T: Copy>(list: &mut Vec<(ApiKey, u32, T)>, api: ApiKey) -> Option<T> {
    let i = list.iter().position(|(a, n, _)| *a == api && *n > 0)?;
    list[i].1 -= 1;
    let value = list[i].2;
    if list[i].1 == 0 {
        list.remove(i);
    }
    Some(value)
}

impl Pending {
    pub(crate) fn add(&mut self, fault: &Fault) {
        match *fault {
            Fault::FailNext { api, count, error } => self.fail.push((api, count, error)),
            Fault::Delay { api, count, by } => self.delay.push((api, count, by)),
            Fault::Blackhole { api, count } => self.blackhole.push((api, count)),
            Fault::Throttle { api, count, by } => self.throttle.push((api, count, by)),
            // Connection faults act at once, in the cluster.
            Fault::DropConnections { .. }
            | Fault::RefuseConnections { .. }
            | Fault::StopBroker { .. }
            | Fault::StartBroker { .. }
            | Fault::HalfClose { .. } => {}
        }
    }

    pub(crate) fn fail(&mut self, api: ApiKey) -> Option<ErrorCode> {
        take(&mut self.fail, api)
    }

    pub(crate) fn delay(&mut self, api: ApiKey) -> Option<Duration> {
        take(&mut self.delay, api)
    }

    pub(crate) fn throttle(&mut self, api: ApiKey) -> Option<Duration> {
        take(&mut self.throttle, api)
    }

    pub(crate) fn blackhole(&mut self, api: ApiKey) -> bool {
        let Some(i) = self.blackhole.iter().position(|(a, n)| *a == api && *n > 0) else {
            return false;
        };
        self.blackhole[i].1 -= 1;
        if self.blackhole[i].1 == 0 {
            self.blackhole.remove(i);
        }
        true
    }
}
