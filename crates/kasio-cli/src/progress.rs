//! A progress bar on stderr, drawn only when stderr is a terminal.

use std::{
    io::{IsTerminal, Write},
    time::{Duration, Instant},
};

pub(crate) struct Progress {
    label: &'static str,
    total: u64,
    start: Instant,
    last: Instant,
    on: bool,
}

impl Progress {
    pub(crate) fn new(label: &'static str, total: u64) -> Self {
        let now = Instant::now();
        Self {
            label,
            total,
            start: now,
            last: now,
            on: std::io::stderr().is_terminal(),
        }
    }

    /// Redraws at most ten times a second.
    pub(crate) fn set(&mut self, done: u64) {
        if !self.on || self.last.elapsed() < Duration::from_millis(100) {
            return;
        }
        self.last = Instant::now();
        self.draw(done);
    }

    fn draw(&self, done: u64) {
        const WIDTH: u64 = 30;
        let filled = (done.min(self.total) * WIDTH)
            .checked_div(self.total)
            .unwrap_or(WIDTH);
        let rate = done as f64 / self.start.elapsed().as_secs_f64().max(1e-3);
        let bar: String = (0..WIDTH)
            .map(|i| if i < filled { '#' } else { '-' })
            .collect();
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r{:<10} [{bar}] {done}/{} {:.0} records/s ",
            self.label, self.total, rate
        );
        let _ = err.flush();
    }

    /// Draws the final state and ends the line.
    pub(crate) fn finish(&self, done: u64) {
        if self.on {
            self.draw(done);
            eprintln!();
        }
    }
}
