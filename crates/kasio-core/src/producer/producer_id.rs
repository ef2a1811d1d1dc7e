//! The idempotent producer's identity: obtaining a producer id and bumping its epoch when
//! sequences must restart (KIP-360).

use std::time::Instant;

/// Where the producer id stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdState {
    /// Not idempotent: batches carry no producer id.
    Disabled,
    /// An id is needed before anything can be sent.
    Needed,
    /// InitProducerId is in flight.
    Requesting,
    /// Batches may be sent with this id and epoch.
    Ready,
    /// Sequences broke (a batch failed or the broker lost our state): once nothing is in
    /// flight, the epoch is bumped and every partition's sequence restarts at 0.
    BumpNeeded,
    /// The bump's InitProducerId is in flight.
    Bumping,
}

#[derive(Debug, Clone)]
pub(crate) struct ProducerId {
    pub(crate) state: IdState,
    pub(crate) id: i64,
    pub(crate) epoch: i16,
    pub(crate) retry_at: Option<Instant>,
}

impl ProducerId {
    pub(crate) fn new(idempotent: bool) -> Self {
        Self {
            state: if idempotent {
                IdState::Needed
            } else {
                IdState::Disabled
            },
            id: -1,
            epoch: -1,
            retry_at: None,
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.state != IdState::Disabled
    }

    /// Whether batches may go out now.
    pub(crate) fn can_send(&self) -> bool {
        matches!(self.state, IdState::Disabled | IdState::Ready)
    }

    /// Sequences are broken: bump before sending more.
    pub(crate) fn bump(&mut self) {
        if matches!(self.state, IdState::Ready) {
            self.state = IdState::BumpNeeded;
        }
    }

    /// The request failed: ask again later.
    pub(crate) fn failed(&mut self, at: Instant) {
        self.state = match self.state {
            IdState::Bumping => IdState::BumpNeeded,
            IdState::Requesting => IdState::Needed,
            s => s,
        };
        self.retry_at = Some(at);
    }
}
