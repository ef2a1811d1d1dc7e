//! The priority share consumer's logic: one share-group member per level, the records
//! they acquired held here until handed out highest level first, which members fetch,
//! and which held records' locks to renew.

use super::{Priority, guard::Guard};
use crate::ConfigError;
use std::{
    collections::VecDeque,
    time::{Duration, Instant},
};

const LEVELS: usize = Priority::ALL.len();

#[derive(Debug)]
struct Held<T> {
    item: T,
    lock_until: Instant,
    /// How long a lock lasts: what a renewal grants.
    lock: Duration,
}

impl<T> Held<T> {
    /// When its lock is half gone.
    fn renewal(&self) -> Instant {
        self.lock_until
            .checked_sub(self.lock / 2)
            .unwrap_or(self.lock_until)
    }
}

/// Records at one priority level of a priority share consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareLevelStats {
    /// The level.
    pub level: Priority,
    /// Records acquired and held, not yet handed out.
    pub held: u64,
    /// Records handed out so far.
    pub handed_out: u64,
    /// Records whose lock ran out while held: the group delivers them again.
    pub expired: u64,
    /// Whether the level's last fetches came back empty: it has no backlog.
    pub drained: bool,
}

/// The priority share consumer's logic, sans-IO. A share group cannot pause a partition
/// and its records are locked to the member holding them, so each level is read by a
/// member of its own and fetching is what gets switched: a level's member fetches
/// while it holds nothing, and stops once it holds records while a higher level has a
/// backlog (records held, or fetches not yet coming back empty) or once it holds
/// `max_held`. Records go in with [`push`](Self::push) and out with
/// [`pop`](Self::pop), highest level first under the same starvation guard as
/// [`PriorityQueue`](crate::PriorityQueue); the locks of records held wait are renewed
/// halfway through ([`renew_due`](Self::renew_due)), and a record whose lock ran out
/// anyway is not handed out (the group delivers it again).
///
/// ```
/// use kasio_core::{Priority, PriorityShareQueue};
/// use std::time::{Duration, Instant};
/// let now = Instant::now();
/// let mut queue = PriorityShareQueue::new(0.1, 500)?;
/// queue.push(Priority::Normal, "resize", now + Duration::from_secs(30), now);
/// queue.push(Priority::Critical, "page", now + Duration::from_secs(30), now);
/// assert_eq!(queue.pop(now), Some((Priority::Critical, "page")));
/// assert_eq!(queue.pop(now), Some((Priority::Normal, "resize")));
/// # Ok::<(), kasio_core::ConfigError>(())
/// ```
#[derive(Debug)]
pub struct PriorityShareQueue<T> {
    guard: Guard,
    levels: [VecDeque<Held<T>>; LEVELS],
    drained: [bool; LEVELS],
    fetching: [bool; LEVELS],
    max_held: usize,
    handed_out: [u64; LEVELS],
    expired: [u64; LEVELS],
    /// No held record is due a renewal before this: the per-record path skips the scan.
    renew_from: Option<Instant>,
}

impl<T> PriorityShareQueue<T> {
    /// A queue whose starvation guard keeps `min_share` (0 to 0.3) of the records for
    /// each lower level that has records held, and whose levels stop fetching at
    /// `max_held` records (`max.poll.records`).
    ///
    /// # Errors
    /// [`ConfigError::InvalidValue`] for a share outside 0-0.3 or a `max_held` of 0.
    pub fn new(min_share: f64, max_held: usize) -> Result<Self, ConfigError> {
        if max_held == 0 {
            return Err(ConfigError::InvalidValue {
                key: "max.poll.records".into(),
                value: "0".into(),
                expected: "a record count of at least 1",
            });
        }
        Ok(Self {
            guard: Guard::new(min_share)?,
            levels: Default::default(),
            // Until a level's fetch comes back empty it may have a backlog.
            drained: [false; LEVELS],
            fetching: [true; LEVELS],
            max_held,
            handed_out: [0; LEVELS],
            expired: [0; LEVELS],
            renew_from: None,
        })
    }

    /// Holds a record `level`'s member acquired, locked until `lock_until`.
    pub fn push(&mut self, level: Priority, item: T, lock_until: Instant, now: Instant) {
        let held = Held {
            item,
            lock_until,
            lock: lock_until.saturating_duration_since(now),
        };
        let due = held.renewal();
        self.renew_from = Some(self.renew_from.map_or(due, |at| at.min(due)));
        self.levels[level.rank()].push_back(held);
    }

    /// Tells whether `level`'s last fetches came back empty (its member drained what the
    /// group had for it), or brought records.
    pub fn set_drained(&mut self, level: Priority, drained: bool) {
        self.drained[level.rank()] = drained;
    }

    /// Hands out the next record: the highest level's, unless a lower level with records
    /// held got no more than its share of the recent records. Records whose lock ran out
    /// are let go first, counted in [`stats`](Self::stats).
    pub fn pop(&mut self, now: Instant) -> Option<(Priority, T)> {
        loop {
            let rank = self
                .guard
                .pick(self.levels.each_ref().map(|q| !q.is_empty()))?;
            let held = self.levels[rank].pop_front()?;
            // Let go as it comes to the front: no scan of what is held per record.
            if held.lock_until <= now {
                self.expired[rank] += 1;
                continue;
            }
            self.guard.served(rank, 1);
            self.handed_out[rank] += 1;
            return Some((Priority::ALL[rank], held.item));
        }
    }

    /// Calls `renew` for each held record past half its lock; where it returns `true`
    /// (the renewal went out) the lock counts as started over.
    pub fn renew_due(&mut self, now: Instant, mut renew: impl FnMut(&T) -> bool) {
        if self.renew_from.is_none_or(|at| now < at) {
            return;
        }
        let mut next: Option<Instant> = None;
        for h in self.levels.iter_mut().flatten() {
            if h.lock_until > now && h.renewal() <= now && renew(&h.item) {
                h.lock_until = now + h.lock;
            }
            if h.lock_until > now {
                let due = h.renewal();
                next = Some(next.map_or(due, |at| at.min(due)));
            }
        }
        self.renew_from = next;
    }

    /// When the next held record is due a renewal (no later: one handed out since may
    /// have been the next).
    #[must_use]
    pub fn next_renewal(&self) -> Option<Instant> {
        self.renew_from
    }

    /// The levels whose member should start (`true`) or stop (`false`) fetching now.
    pub fn fetching(&mut self) -> Vec<(Priority, bool)> {
        let mut changes = Vec::new();
        let mut higher_busy = false;
        for rank in 0..LEVELS {
            let held = self.levels[rank].len();
            let fetch = held == 0 || (held < self.max_held && !higher_busy);
            if fetch != self.fetching[rank] {
                self.fetching[rank] = fetch;
                changes.push((Priority::ALL[rank], fetch));
            }
            higher_busy |= held > 0 || !self.drained[rank];
        }
        changes
    }

    /// Lets go of every held record (to release them), lowest level last.
    pub fn drain(&mut self) -> Vec<T> {
        self.levels
            .iter_mut()
            .flat_map(|q| q.drain(..).map(|h| h.item))
            .collect()
    }

    /// Records held, handed out and expired per level, highest first.
    #[must_use]
    pub fn stats(&self) -> Vec<ShareLevelStats> {
        Priority::ALL
            .iter()
            .enumerate()
            .map(|(rank, &level)| ShareLevelStats {
                level,
                held: self.levels[rank].len() as u64,
                handed_out: self.handed_out[rank],
                expired: self.expired[rank],
                drained: self.drained[rank],
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const LOCK: Duration = Duration::from_secs(30);

    #[test]
    fn higher_levels_go_first_and_each_level_in_order() {
        let now = Instant::now();
        let mut q = PriorityShareQueue::new(0.0, 10).unwrap();
        for (level, n) in [
            (Priority::Low, 1),
            (Priority::Normal, 2),
            (Priority::Normal, 3),
            (Priority::Critical, 4),
        ] {
            q.push(level, n, now + LOCK, now);
        }
        let out: Vec<i32> = std::iter::from_fn(|| q.pop(now)).map(|(_, n)| n).collect();
        assert_eq!(out, [4, 2, 3, 1]);
    }

    #[test]
    fn lower_levels_stop_fetching_while_a_higher_one_has_a_backlog() {
        let now = Instant::now();
        let mut q = PriorityShareQueue::new(0.1, 3).unwrap();
        assert!(q.fetching().is_empty(), "every level starts fetching");
        q.push(Priority::Normal, 1, now + LOCK, now);
        assert_eq!(
            q.fetching(),
            [(Priority::Normal, false)],
            "critical has not come back empty yet"
        );
        for level in [Priority::Critical, Priority::High] {
            q.set_drained(level, true);
        }
        assert_eq!(q.fetching(), [(Priority::Normal, true)]);
        q.push(Priority::Critical, 2, now + LOCK, now);
        q.set_drained(Priority::Critical, false);
        assert_eq!(q.fetching(), [(Priority::Normal, false)]);
        q.push(Priority::Critical, 3, now + LOCK, now);
        q.push(Priority::Critical, 4, now + LOCK, now);
        assert_eq!(
            q.fetching(),
            [(Priority::Critical, false)],
            "at max_held even the top level stops"
        );
        while q.pop(now).is_some() {}
        assert_eq!(
            q.fetching(),
            [(Priority::Critical, true), (Priority::Normal, true)],
            "nothing held: everyone fetches"
        );
    }

    #[test]
    fn locks_are_renewed_halfway_and_expired_records_are_not_handed_out() {
        let now = Instant::now();
        let mut q = PriorityShareQueue::new(0.1, 10).unwrap();
        q.push(Priority::Low, "kept", now + LOCK, now);
        q.push(Priority::Low, "refused", now + LOCK, now);
        assert_eq!(q.next_renewal(), Some(now + LOCK / 2));
        let mut asked = Vec::new();
        q.renew_due(now + LOCK / 4, |r| {
            asked.push(*r);
            true
        });
        assert!(asked.is_empty(), "too early");
        let later = now + LOCK / 2;
        q.renew_due(later, |r| {
            asked.push(*r);
            *r == "kept"
        });
        assert_eq!(asked, ["kept", "refused"]);
        let past = now + LOCK + Duration::from_millis(1);
        assert_eq!(q.pop(past), Some((Priority::Low, "kept")));
        assert_eq!(q.pop(past), None);
        let low = q.stats()[3].clone();
        assert_eq!((low.handed_out, low.expired, low.held), (1, 1, 0));
    }

    #[test]
    fn the_guard_keeps_a_lower_levels_share() {
        let now = Instant::now();
        let mut q = PriorityShareQueue::new(0.1, 10).unwrap();
        let mut served = [0_u32; LEVELS];
        for _ in 0..20_000 {
            for level in [Priority::High, Priority::Low] {
                if q.levels[level.rank()].is_empty() {
                    q.push(level, (), now + LOCK, now);
                }
            }
            served[q.pop(now).unwrap().0.rank()] += 1;
        }
        let share = f64::from(served[3]) / f64::from(served[1] + served[3]);
        assert!((0.1..0.101).contains(&share), "low got {share}");
        assert_eq!(q.drain().len(), 1, "the level not served last");
        assert!(PriorityShareQueue::<()>::new(0.1, 0).is_err());
    }
}
