//! A revocation held for the application (`hold_revocations`): the group's decision to take
//! partitions away is announced with [`ConsumerEvent::Revoking`] while this member still
//! owns them, so an application that commits by hand can commit what it processed before
//! the partitions move, as the Java client's `onPartitionsRevoked` allows. The member gives
//! them up once the application calls [`Consumer::release_revocation`], or after half of
//! `max.poll.interval.ms` (the rebalance timeout the member asked for), in time to rejoin.

use super::{Consumer, ConsumerEvent, Position, Tp};
use std::time::Instant;

/// Partitions announced as revoking, not yet given up.
#[derive(Debug)]
pub(super) struct Hold {
    pub(super) partitions: Vec<Tp>,
    until: Instant,
    released: bool,
}

impl Hold {
    /// Whether the member still waits for the application.
    pub(super) fn waiting(&self, now: Instant) -> bool {
        !self.released && now < self.until
    }

    pub(super) fn until(&self) -> Instant {
        self.until
    }
}

impl Consumer {
    /// Announces that `parts` are being revoked and holds them until the application
    /// releases them; `false` (nothing held) without `hold_revocations` or partitions.
    ///
    /// The partitions stop fetching, their batches not yet taken are dropped and their
    /// positions go back to what was handed out, so a commit of the positions (by auto
    /// commit or the application) is exactly what the application saw.
    pub(super) fn begin_hold(&mut self, parts: &[Tp], now: Instant) -> bool {
        if !self.config.hold_revocations || parts.is_empty() {
            return false;
        }
        for tp in parts {
            let handed = self.handed_to(tp);
            if let Some(s) = self.partitions.get_mut(tp) {
                s.paused = true;
                if let Some(o) = handed {
                    s.position = Position::At(o);
                }
            }
        }
        self.drop_batches_of(parts);
        self.events.push_back(ConsumerEvent::Revoking {
            partitions: super::named(parts.iter().cloned()),
        });
        self.hold = Some(Hold {
            partitions: parts.to_vec(),
            // Half the rebalance timeout: the member still has time to rejoin before
            // the coordinator, whose timer may have started a heartbeat earlier, removes it.
            until: now + self.config.max_poll_interval / 2,
            released: false,
        });
        self.new_deadline = true;
        true
    }

    /// Whether a held revocation still waits for the application.
    pub(super) fn holding(&self, now: Instant) -> bool {
        self.hold.as_ref().is_some_and(|h| h.waiting(now))
    }

    /// Lets the member give up the partitions of the last
    /// [`ConsumerEvent::Revoking`](super::ConsumerEvent::Revoking), once commits made
    /// before this call are answered. Does nothing when no revocation is held.
    ///
    /// ```
    /// use kasio_core::{Consumer, ConsumerConfig};
    /// use std::time::Instant;
    /// let now = Instant::now();
    /// let mut config = ConsumerConfig::new("localhost:9092")?;
    /// config.set("group.id", "billing")?;
    /// config.hold_revocations = true;
    /// let mut consumer = Consumer::new(config, now, 1)?;
    /// consumer.subscribe(&["orders"], now)?;
    /// // On `ConsumerEvent::Revoking`: commit what was processed, then
    /// consumer.release_revocation(now);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn release_revocation(&mut self, now: Instant) {
        let Some(h) = &mut self.hold else {
            return;
        };
        h.released = true;
        self.wake_classic(now);
        self.new_deadline = true;
        self.drain(now);
    }

    /// Forgets a held revocation (the partitions were lost, or the member leaves).
    pub(super) fn drop_hold(&mut self) {
        self.hold = None;
    }
}
