//! Fetch sessions (KIP-227), one per leader: after a first full Fetch the broker remembers
//! the partitions and their fetch offsets, so each later Fetch names only the partitions
//! whose offset (or last epoch) changed and those to forget, and the answer carries only
//! the partitions with news. Idle partitions then cost nothing per fetch.

use super::Tp;
use kasio_proto::ErrorCode;
use std::collections::BTreeMap;

/// What the broker holds for a partition in the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sent {
    offset: i64,
    last_epoch: i32,
}

/// The session with one broker. `id` 0 means none: the next Fetch is full and asks for
/// one (epoch 0).
#[derive(Debug, Default)]
pub(super) struct FetchSession {
    id: i32,
    epoch: i32,
    /// The partitions the broker holds, as last sent.
    sent: BTreeMap<Tp, Sent>,
    /// The Fetch in flight was a full one.
    full: bool,
}

/// One Fetch's session fields and partitions.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Plan {
    pub(super) session_id: i32,
    pub(super) session_epoch: i32,
    /// The partitions to name, with their fetch offset and last epoch.
    pub(super) send: Vec<(Tp, i64, i32)>,
    /// The partitions the broker should drop from the session.
    pub(super) forget: Vec<Tp>,
}

impl FetchSession {
    /// The next Fetch for `wanted` (partition, fetch offset, last epoch): full without a
    /// session, else only what changed and what to forget. The session records it as sent;
    /// a Fetch that fails or is lost resets the session.
    pub(super) fn plan(&mut self, wanted: &[(Tp, i64, i32)]) -> Plan {
        let now: BTreeMap<Tp, Sent> = wanted
            .iter()
            .map(|(tp, offset, last_epoch)| {
                (
                    tp.clone(),
                    Sent {
                        offset: *offset,
                        last_epoch: *last_epoch,
                    },
                )
            })
            .collect();
        self.full = self.id == 0;
        let plan = if self.full {
            Plan {
                session_id: 0,
                session_epoch: 0,
                send: wanted.to_vec(),
                forget: Vec::new(),
            }
        } else {
            Plan {
                session_id: self.id,
                session_epoch: self.epoch,
                send: wanted
                    .iter()
                    .filter(|(tp, o, e)| {
                        self.sent.get(tp)
                            != Some(&Sent {
                                offset: *o,
                                last_epoch: *e,
                            })
                    })
                    .cloned()
                    .collect(),
                forget: self
                    .sent
                    .keys()
                    .filter(|tp| !now.contains_key(*tp))
                    .cloned()
                    .collect(),
            }
        };
        self.sent = now;
        plan
    }

    /// The broker answered the Fetch in flight: with `session_id` (a full Fetch's new
    /// session, 0 if it declined) and its top-level error.
    pub(super) fn answered(&mut self, session_id: i32, error: ErrorCode) {
        if error != ErrorCode::None {
            // FETCH_SESSION_ID_NOT_FOUND, INVALID_FETCH_SESSION_EPOCH and the rest: start
            // again with a full Fetch.
            self.reset();
            return;
        }
        if self.full {
            self.id = session_id;
            self.epoch = 1;
            if session_id == 0 {
                self.sent.clear();
            }
        } else {
            self.epoch = if self.epoch == i32::MAX {
                1
            } else {
                self.epoch + 1
            };
        }
    }

    /// The Fetch in flight was lost, or the broker went away: no session.
    pub(super) fn reset(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(p: i32) -> Tp {
        ("t".into(), p)
    }

    #[test]
    fn later_fetches_name_only_what_changed() {
        let mut s = FetchSession::default();
        let first = s.plan(&[(tp(0), 10, 0), (tp(1), 20, 0)]);
        assert_eq!((first.session_id, first.session_epoch), (0, 0));
        assert_eq!(first.send.len(), 2);
        s.answered(77, ErrorCode::None);
        // Partition 0 moved on; 1 is idle; 2 is new.
        let next = s.plan(&[(tp(0), 15, 0), (tp(1), 20, 0), (tp(2), 0, -1)]);
        assert_eq!((next.session_id, next.session_epoch), (77, 1));
        assert_eq!(next.send, vec![(tp(0), 15, 0), (tp(2), 0, -1)]);
        assert!(next.forget.is_empty());
        s.answered(77, ErrorCode::None);
        // Partition 1 is paused: forgotten.
        let third = s.plan(&[(tp(0), 15, 0), (tp(2), 0, -1)]);
        assert_eq!(third.session_epoch, 2);
        assert!(third.send.is_empty());
        assert_eq!(third.forget, vec![tp(1)]);
    }

    #[test]
    fn a_session_error_or_a_declined_session_means_full_fetches() {
        let mut s = FetchSession::default();
        s.plan(&[(tp(0), 1, 0)]);
        s.answered(5, ErrorCode::None);
        s.plan(&[(tp(0), 2, 0)]);
        s.answered(5, ErrorCode::InvalidFetchSessionEpoch);
        let again = s.plan(&[(tp(0), 2, 0)]);
        assert_eq!((again.session_id, again.session_epoch), (0, 0));
        assert_eq!(again.send.len(), 1);
        // The broker declined (session id 0): every Fetch stays full.
        s.answered(0, ErrorCode::None);
        let full = s.plan(&[(tp(0), 3, 0)]);
        assert_eq!(
            (full.session_id, full.session_epoch, full.send.len()),
            (0, 0, 1)
        );
    }
}
