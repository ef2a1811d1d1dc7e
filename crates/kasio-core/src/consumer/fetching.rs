//! What the consumer has fetched and not yet handed out, and the fetches it has in
//! flight: one Fetch per leader at a time, a fetch session per leader (KIP-227), and a
//! buffer bounded by `fetch.max.bytes` that stops fetching while full.

use super::{FetchedBatch, Tp, fetch_session::FetchSession};
use kasio_proto::ErrorCode;
use std::collections::{BTreeMap, HashSet, VecDeque};

/// The fetch pipeline's own state; the consumer decides what to fetch, this holds what
/// is in flight and what came back.
#[derive(Debug)]
pub(crate) struct Fetching {
    /// Leaders with a Fetch in flight.
    in_flight: HashSet<i32>,
    sessions: BTreeMap<i32, FetchSession>,
    /// Fetched batches not yet taken, in fetch order (each partition in offset order).
    pub(super) batches: VecDeque<FetchedBatch>,
    /// Their size in bytes, held against `max_bytes`.
    pub(super) buffered: usize,
    /// `fetch.max.bytes`.
    max_bytes: usize,
    /// The batch the caller took last (partition, first offset): not yet done with.
    in_hand: Option<(Tp, i64)>,
    /// Batches were taken and freed room: fetching may resume at the next drain.
    resume_due: bool,
}

impl Fetching {
    pub(crate) fn new(max_bytes: usize) -> Self {
        Self {
            in_flight: HashSet::new(),
            sessions: BTreeMap::new(),
            batches: VecDeque::new(),
            buffered: 0,
            max_bytes,
            in_hand: None,
            resume_due: false,
        }
    }

    /// Whether the buffer holds `fetch.max.bytes`: no fetch goes out until batches are
    /// taken.
    pub(crate) fn is_full(&self) -> bool {
        self.buffered >= self.max_bytes
    }

    /// Whether a Fetch to `leader` is in flight.
    pub(crate) fn in_flight_to(&self, leader: i32) -> bool {
        self.in_flight.contains(&leader)
    }

    /// The fetch session with `leader`, begun if there is none.
    pub(crate) fn session(&mut self, leader: i32) -> &mut FetchSession {
        self.sessions.entry(leader).or_default()
    }

    /// A Fetch to `leader` went out.
    pub(crate) fn sent(&mut self, leader: i32) {
        self.in_flight.insert(leader);
    }

    /// The Fetch to `leader` could not be written: its session starts over.
    pub(crate) fn not_sent(&mut self, leader: i32) {
        if let Some(session) = self.sessions.get_mut(&leader) {
            session.reset();
        }
    }

    /// The Fetch to `leader` was answered, with the session id and top-level error.
    pub(crate) fn answered(&mut self, leader: i32, session_id: i32, error: ErrorCode) {
        self.in_flight.remove(&leader);
        if let Some(session) = self.sessions.get_mut(&leader) {
            session.answered(session_id, error);
        }
    }

    /// The Fetch to `leader` was lost with its connection: whether the broker saw it is
    /// unknown, and with it the session's epoch, so the session starts over.
    pub(crate) fn lost(&mut self, leader: i32) {
        self.in_flight.remove(&leader);
        self.not_sent(leader);
    }

    /// The next batch for the caller, at most `max` records of it (the rest is the next
    /// one handed out), and whether taking it freed room to fetch again.
    pub(crate) fn take(&mut self, max: usize) -> Option<(FetchedBatch, bool)> {
        let (b, rest) = self.batches.pop_front()?.split(max);
        // Taking a batch means the caller is done with the one before.
        self.in_hand = Some(((b.topic.clone(), b.partition), b.start_offset()));
        if let Some(rest) = rest {
            // The rest of the batch is next, still counted in the buffer.
            self.batches.push_front(rest);
            return Some((b, false));
        }
        self.buffered = self.buffered.saturating_sub(b.size());
        let room = self.buffered < self.max_bytes;
        if room {
            self.resume_due = true;
        }
        Some((b, room))
    }

    pub(crate) fn has_batches(&self) -> bool {
        !self.batches.is_empty()
    }

    /// Whether batches were taken since the last drain, freeing room.
    pub(crate) fn resume_due(&self) -> bool {
        self.resume_due
    }

    /// A drain is under way: it resumes whatever taking batches allowed.
    pub(crate) fn resumed(&mut self) {
        self.resume_due = false;
    }

    /// The last batch handed out: its partition and first offset.
    pub(crate) fn in_hand(&self) -> Option<&(Tp, i64)> {
        self.in_hand.as_ref()
    }

    /// Where the caller got to in `tp`, at `position` when nothing of it is buffered:
    /// the start of its first batch not yet taken.
    pub(crate) fn handed_to(&self, tp: &Tp, position: i64) -> i64 {
        self.batches
            .iter()
            .find(|b| b.topic == tp.0 && b.partition == tp.1)
            .map_or(position, FetchedBatch::start_offset)
    }

    /// Keeps the batches of the partitions `keep` approves, drops the others.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&str, i32) -> bool) {
        self.batches.retain(|b| keep(&b.topic, b.partition));
        self.buffered = self.batches.iter().map(FetchedBatch::size).sum();
    }

    /// Drops every batch.
    pub(crate) fn clear(&mut self) {
        self.batches.clear();
        self.buffered = 0;
    }
}
