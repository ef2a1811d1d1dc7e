//! Records the caller asked to be written later (a delayed record's wait below the
//! shortest delay tier): held, copied, until their time, then sent as any other.

use super::{Pending, ProduceError, Producer, Record, SendError, TxnError, pending_size};
use crate::network::Earliest;
use std::{sync::Arc, time::Instant};

/// Held records by release time (and arrival, to keep their order).
pub(super) type HeldRecords<T> = std::collections::BTreeMap<(Instant, u64), (Arc<str>, Pending<T>)>;

impl<T> Producer<T> {
    /// Buffers a record to be sent at `at` rather than now: it is held (copied) until then,
    /// counts against `buffer.memory`, and [`flush`](Self::flush) and
    /// [`close`](Self::close) wait for it. Its timestamp, unless set, is the time it is
    /// sent. A transactional producer cannot hold records (they would leave its
    /// transaction).
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn send_at(
        &mut self,
        record: Record<'_>,
        token: T,
        at: Instant,
        now: Instant,
    ) -> Result<(), (SendError, T)> {
        if at <= now {
            return self.send(record, token, now);
        }
        if self.lifecycle != super::Lifecycle::Open || self.fatal.is_some() {
            return Err((SendError::Closed, token));
        }
        if let Some(txn) = &self.txn {
            let error = TxnError::InvalidState {
                operation: "holding a record in a transactional producer",
                state: txn.state,
            };
            return Err((SendError::Invalid(ProduceError::Transaction(error)), token));
        }
        let size = match self.room_for(&record) {
            Ok(size) => size,
            Err(e) => return Err((e, token)),
        };
        let timestamp = record.timestamp.unwrap_or_else(|| self.unix_ms(at));
        let pending = Pending::copy(&record, timestamp, token, at);
        self.held_seq += 1;
        self.held
            .insert((at, self.held_seq), (record.topic.into(), pending));
        self.buffered += size;
        self.outstanding += 1;
        self.new_deadline = true;
        Ok(())
    }

    /// Records held for later, not yet sent.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Moves the held records whose time has come to their topics, in order.
    pub(super) fn release_held(&mut self, now: Instant) {
        while let Some(entry) = self.held.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let (topic, mut pending) = entry.remove();
            pending.since = now;
            if !self.topics.contains_key(&topic) {
                self.new_topic(&topic);
            }
            let known = match self.topics.get_mut(&topic) {
                Some(state) => {
                    state.pending.push_back(pending);
                    state.meta.is_some()
                }
                None => continue,
            };
            if known {
                self.release_pending(&topic, now);
            }
        }
    }

    /// Fails every held record with `error`.
    pub(super) fn fail_held(&mut self, error: &ProduceError) {
        for (_, (_, p)) in std::mem::take(&mut self.held) {
            self.outstanding -= 1;
            self.buffered = self.buffered.saturating_sub(pending_size(&p));
            self.events.push_back(super::Event::Delivery {
                token: p.token,
                result: Err(error.clone()),
            });
        }
    }

    pub(super) fn offer_held_deadline(&self, earliest: &mut Earliest) {
        if let Some(&(at, _)) = self.held.keys().next() {
            earliest.offer(at, "held record");
        }
    }
}
