//! The next deadline: each client offers every time it waits for, and the earliest one
//! still ahead is what `poll_timeout` reports.

use std::time::Instant;

/// The next time a client wants `handle_timeout`, and why (for debugging).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout {
    /// When.
    pub at: Instant,
    /// What for.
    pub reason: &'static str,
}

/// The earliest of the deadlines offered that lies after `now`.
#[derive(Debug)]
pub(crate) struct Earliest {
    now: Instant,
    best: Option<Timeout>,
}

impl Earliest {
    pub(crate) fn new(now: Instant) -> Self {
        Self { now, best: None }
    }

    pub(crate) fn now(&self) -> Instant {
        self.now
    }

    /// Considers `at`; a time not after `now` is already being handled and is ignored.
    pub(crate) fn offer(&mut self, at: Instant, reason: &'static str) {
        if at > self.now && self.best.is_none_or(|b| at < b.at) {
            self.best = Some(Timeout { at, reason });
        }
    }

    pub(crate) fn best(self) -> Option<Timeout> {
        self.best
    }
}
