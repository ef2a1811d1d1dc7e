//! A share session with one broker (KIP-932): a ShareFetch at epoch 0 opens it, each
//! request after carries the next epoch, and -1 closes it. The broker's session keeps the
//! partitions fetched, so a request names only partitions to add (and those carrying
//! acknowledgements) and the ones to forget. Requests on a session go one at a time:
//! their epochs must arrive in order.

use kasio_proto::Uuid;
use std::{collections::BTreeSet, time::Instant};

/// The epoch that opens a session.
pub(crate) const INITIAL: i32 = 0;
/// The epoch that closes one.
pub(crate) const FINAL: i32 = -1;

#[derive(Debug, Default)]
pub(crate) struct Session {
    /// The epoch of the next request.
    pub(crate) epoch: i32,
    /// The partitions the broker's session holds.
    pub(crate) partitions: BTreeSet<(Uuid, i32)>,
    /// A request is in flight.
    pub(crate) busy: bool,
    /// After an error, no request before this.
    pub(crate) retry_at: Option<Instant>,
    /// Closed with the final epoch: nothing more is sent.
    pub(crate) closed: bool,
}

impl Session {
    /// Whether the broker holds a session for this member (acknowledgements need one).
    pub(crate) fn is_open(&self) -> bool {
        self.epoch > INITIAL
    }

    /// A request sent at `sent` was answered without a session error: the next epoch,
    /// and the partitions added and forgotten take effect.
    pub(crate) fn answered(&mut self, sent: i32, added: &[(Uuid, i32)], forgotten: &[(Uuid, i32)]) {
        match sent {
            FINAL => {
                self.closed = true;
                self.epoch = INITIAL;
                self.partitions.clear();
                return;
            }
            INITIAL => self.partitions.clear(),
            _ => {}
        }
        self.epoch = if sent == i32::MAX { 1 } else { sent + 1 };
        self.partitions.extend(added.iter().copied());
        for p in forgotten {
            self.partitions.remove(p);
        }
    }

    /// The broker lost the session, or its answer was lost: the next request opens a
    /// new one (with epoch 0 the broker replaces any session it still holds).
    pub(crate) fn reset(&mut self) {
        self.epoch = INITIAL;
        self.partitions.clear();
    }

    pub(crate) fn ready(&self, now: Instant) -> bool {
        !self.busy && !self.closed && self.retry_at.is_none_or(|t| t <= now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_open_increment_wrap_and_close() {
        let a = (Uuid::from_u128(1), 0);
        let b = (Uuid::from_u128(1), 1);
        let mut s = Session::default();
        assert!(!s.is_open());
        s.answered(INITIAL, &[a, b], &[]);
        assert_eq!((s.epoch, s.partitions.len()), (1, 2));
        s.answered(1, &[], &[b]);
        assert_eq!((s.epoch, s.partitions.len()), (2, 1));
        s.epoch = i32::MAX;
        s.answered(i32::MAX, &[], &[]);
        assert_eq!(s.epoch, 1, "after the largest epoch comes 1, not 0");
        s.reset();
        assert!(!s.is_open() && s.partitions.is_empty());
        s.answered(INITIAL, &[a], &[]);
        s.answered(FINAL, &[], &[]);
        assert!(s.closed && !s.ready(Instant::now()));
    }
}
