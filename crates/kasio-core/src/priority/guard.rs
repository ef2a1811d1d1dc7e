//! The starvation guard both priority consumers share: which level goes next, given
//! which levels have records waiting and what each got of the recent hand-outs.

use super::Priority;
use crate::ConfigError;
use std::collections::VecDeque;

/// How many recent records the guard measures shares over.
const WINDOW_RECORDS: u64 = 10_000;

/// The largest `priority.min.share`: three lower levels each keeping it still leave the
/// highest most of the records.
pub const MAX_MIN_SHARE: f64 = 0.3;

const LEVELS: usize = Priority::ALL.len();

#[derive(Debug)]
pub(crate) struct Guard {
    min_share: f64,
    /// Recent hand-outs: (level rank, records), oldest first.
    window: VecDeque<(usize, u64)>,
    total: u64,
    served: [u64; LEVELS],
}

impl Guard {
    pub(crate) fn new(min_share: f64) -> Result<Self, ConfigError> {
        if !(0.0..=MAX_MIN_SHARE).contains(&min_share) {
            return Err(ConfigError::InvalidValue {
                key: "priority.min.share".into(),
                value: min_share.to_string(),
                expected: "a share from 0 to 0.3",
            });
        }
        Ok(Self {
            min_share,
            window: VecDeque::new(),
            total: 0,
            served: [0; LEVELS],
        })
    }

    /// The rank of the level to serve next among those `waiting`: the highest, unless a
    /// lower one got no more than its share of the recent records.
    pub(crate) fn pick(&self, waiting: [bool; LEVELS]) -> Option<usize> {
        let top = waiting.iter().position(|&w| w)?;
        if self.total > 0 && self.min_share > 0.0 {
            #[allow(clippy::cast_precision_loss)]
            let floor = self.min_share * self.total as f64;
            for (rank, &served) in self.served.iter().enumerate().skip(top + 1) {
                #[allow(clippy::cast_precision_loss)]
                let served = served as f64;
                if waiting[rank] && served <= floor {
                    return Some(rank);
                }
            }
        }
        Some(top)
    }

    /// Counts `records` handed out of level `rank`.
    pub(crate) fn served(&mut self, rank: usize, records: u64) {
        self.window.push_back((rank, records));
        self.total += records;
        self.served[rank] += records;
        while let Some(&(r, n)) = self.window.front() {
            if self.total - n < WINDOW_RECORDS {
                break;
            }
            self.window.pop_front();
            self.total -= n;
            self.served[r] -= n;
        }
    }
}
