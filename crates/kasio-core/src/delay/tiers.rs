//! Delay tiers: which tier topics a delayed record passes through on its way to its topic,
//! and how long it waits in each.
//!
//! A record in a tier waits exactly the tier's length after its planned start (its
//! timestamp), so each tier partition's records become ready in the order they were
//! written, and a relay that pauses a partition until its head is ready delays nothing
//! behind it. A delay is split greedily into tier lengths (23 s with tiers of 1 s and
//! 10 s: 10 + 10 + 1 + 1 + 1); what is left below the shortest tier waits in the sending
//! producer before the record is written.

use crate::ConfigError;
use std::time::Duration;

/// The default tiers: 1 s, 10 s, 1 min, 10 min, 1 h and 1 day.
pub const DEFAULT_TIERS: &str = "1s,10s,1m,10m,1h,1d";

/// The delay tiers, shortest first.
///
/// ```
/// use kasio_core::DelayTiers;
/// let tiers = DelayTiers::parse("1s,10s,1m")?;
/// assert_eq!(tiers.topic("orders", 1), "orders.delay.10s");
/// assert_eq!(tiers.tier_of("orders.delay.1m"), Some(("orders", 2)));
/// // 23.5 s: half a second in the producer, then 10 s + 10 s + 1 s + 1 s + 1 s in tiers.
/// let plan = tiers.plan(1_000, 24_500);
/// assert_eq!((plan.start_ms, plan.first), (1_500, Some(1)));
/// # Ok::<(), kasio_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelayTiers {
    /// Lengths in milliseconds, ascending, distinct, each at least 1.
    tiers: Vec<i64>,
}

impl Default for DelayTiers {
    fn default() -> Self {
        Self {
            tiers: vec![1_000, 10_000, 60_000, 600_000, 3_600_000, 86_400_000],
        }
    }
}

/// Where a delayed record is written first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DelayPlan {
    /// The index of the first tier, or `None`: straight to the topic.
    pub first: Option<usize>,
    /// When the record may be written (Unix ms): its timestamp in the first tier. Until
    /// then it waits in the producer (the delay below the shortest tier).
    pub start_ms: i64,
}

impl DelayTiers {
    /// Tiers of the given lengths (any order; at least one, each at least 1 ms).
    ///
    /// # Errors
    /// [`ConfigError::InvalidValue`] for no tiers or a tier under 1 ms.
    pub fn new(lengths: impl IntoIterator<Item = Duration>) -> Result<Self, ConfigError> {
        let mut tiers = Vec::new();
        for d in lengths {
            let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
            if ms < 1 {
                return Err(invalid(&format!("{d:?}")));
            }
            tiers.push(ms);
        }
        tiers.sort_unstable();
        tiers.dedup();
        if tiers.is_empty() {
            return Err(invalid(""));
        }
        Ok(Self { tiers })
    }

    /// Tiers from a list such as `1s,10s,1m,10m,1h,1d` (units `ms`, `s`, `m`, `h`, `d`).
    ///
    /// # Errors
    /// [`ConfigError::InvalidValue`] naming what did not parse.
    pub fn parse(list: &str) -> Result<Self, ConfigError> {
        let lengths = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| Self::parse_length(s).ok_or_else(|| invalid(list)))
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(lengths)
    }

    /// The tier lengths, shortest first.
    pub fn lengths(&self) -> impl Iterator<Item = Duration> + '_ {
        self.tiers
            .iter()
            .map(|&ms| Duration::from_millis(ms.unsigned_abs()))
    }

    /// How many tiers there are.
    #[must_use]
    pub fn len(&self) -> usize {
        self.tiers.len()
    }

    /// Never true: there is always a tier.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.tiers.is_empty()
    }

    /// Tier `tier`'s length in milliseconds.
    #[must_use]
    pub fn length_ms(&self, tier: usize) -> i64 {
        self.tiers.get(tier).copied().unwrap_or(i64::MAX)
    }

    /// Tier `tier`'s name in topic names: `1s`, `10s`, `1m`, `500ms`...
    #[must_use]
    pub fn name(&self, tier: usize) -> String {
        name_of(self.length_ms(tier))
    }

    /// The topic of tier `tier` for records bound for `topic`: `<topic>.delay.<name>`.
    #[must_use]
    pub fn topic(&self, topic: &str, tier: usize) -> String {
        format!("{topic}.delay.{}", self.name(tier))
    }

    /// Every tier topic of `topic`, shortest tier first.
    #[must_use]
    pub fn topics(&self, topic: &str) -> Vec<String> {
        (0..self.tiers.len())
            .map(|t| self.topic(topic, t))
            .collect()
    }

    /// The topic a tier topic delays for and the tier's index, if it is one of these tiers'.
    #[must_use]
    pub fn tier_of<'a>(&self, tier_topic: &'a str) -> Option<(&'a str, usize)> {
        let (topic, name) = tier_topic.rsplit_once(".delay.")?;
        let tier = (0..self.tiers.len()).find(|&t| self.name(t) == name)?;
        Some((topic, tier))
    }

    /// The longest tier not longer than `remaining_ms`, or `None` when even the shortest is.
    #[must_use]
    pub fn route(&self, remaining_ms: i64) -> Option<usize> {
        self.tiers.iter().rposition(|&t| t <= remaining_ms)
    }

    /// What a greedy split of `remaining_ms` into tier lengths leaves over.
    #[must_use]
    pub fn remainder(&self, remaining_ms: i64) -> i64 {
        self.tiers
            .iter()
            .rev()
            .fold(remaining_ms.max(0), |left, &t| left % t)
    }

    /// Where a record sent at `now_ms` and due at `due_ms` goes first, and when: the part
    /// of the delay below the shortest tier is spent before it is written, so the tiers
    /// take the rest exactly.
    #[must_use]
    pub fn plan(&self, now_ms: i64, due_ms: i64) -> DelayPlan {
        self.plan_for(now_ms, due_ms, true)
    }

    /// As [`plan`](Self::plan), for a writer that cannot wait (a transactional producer
    /// writes inside its transaction): the record is written now, its start moved back so
    /// the tiers cover the whole delay and it is never early. The cost: its first tier's
    /// partition is out of order by up to the shortest tier, which can make records
    /// behind it late by as much.
    #[must_use]
    pub fn plan_now(&self, now_ms: i64, due_ms: i64) -> DelayPlan {
        self.plan_for(now_ms, due_ms, false)
    }

    fn plan_for(&self, now_ms: i64, due_ms: i64, can_wait: bool) -> DelayPlan {
        let remaining = due_ms.saturating_sub(now_ms);
        let left = self.remainder(remaining);
        if remaining <= 0 || left == 0 || can_wait {
            return DelayPlan {
                first: self.route(remaining - left),
                start_ms: now_ms + left,
            };
        }
        // Round up to a whole number of shortest tiers, starting that much in the past.
        let covered = remaining - left + self.tiers[0];
        DelayPlan {
            first: self.route(covered),
            start_ms: due_ms - covered,
        }
    }

    /// One length as the tier list writes it: digits and a unit (`ms`, `s`, `m`, `h`,
    /// `d`); `None` when it is not one.
    ///
    /// ```
    /// use kasio_core::DelayTiers;
    /// use std::time::Duration;
    /// assert_eq!(DelayTiers::parse_length("90s"), Some(Duration::from_secs(90)));
    /// assert_eq!(DelayTiers::parse_length("0ms"), Some(Duration::ZERO));
    /// assert_eq!(DelayTiers::parse_length("soon"), None);
    /// ```
    #[must_use]
    pub fn parse_length(s: &str) -> Option<Duration> {
        let split = s.find(|c: char| !c.is_ascii_digit())?;
        let (n, unit) = s.split_at(split);
        let n: u64 = n.parse().ok()?;
        let ms = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return None,
        };
        n.checked_mul(ms).map(Duration::from_millis)
    }
}

fn invalid(value: &str) -> ConfigError {
    ConfigError::InvalidValue {
        key: "delay.tiers".into(),
        value: value.into(),
        expected: "a list of lengths such as 1s,10s,1m,10m,1h,1d",
    }
}

fn name_of(ms: i64) -> String {
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms % size == 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let tiers = DelayTiers::parse("250ms, 1s,90s,10m,1h,2d").unwrap();
        let names: Vec<String> = (0..tiers.len()).map(|t| tiers.name(t)).collect();
        assert_eq!(names, ["250ms", "1s", "90s", "10m", "1h", "2d"]);
        for t in 0..tiers.len() {
            assert_eq!(tiers.tier_of(&tiers.topic("a.b", t)), Some(("a.b", t)));
        }
        assert_eq!(tiers.tier_of("a.delay.7s"), None);
        assert!(DelayTiers::parse("1x").is_err());
        assert!(DelayTiers::parse("").is_err());
        assert!(DelayTiers::parse("0s").is_err());
        assert_eq!(
            DelayTiers::parse(DEFAULT_TIERS).unwrap(),
            DelayTiers::default()
        );
    }

    /// Following a plan through its tiers lands on the due time exactly, for any delay.
    #[test]
    fn plans_add_up_to_the_due_time() {
        let tiers = DelayTiers::parse("1s,10s,1m,7m").unwrap();
        for delay in (0..2_000_000).step_by(997).chain([1, 999, 1_000, 60_000]) {
            let now = 5_000;
            let due = now + delay;
            for (plan, exact) in [
                (tiers.plan(now, due), true),
                (tiers.plan_now(now, due), false),
            ] {
                let mut at = plan.start_ms;
                let mut tier = plan.first;
                if exact {
                    assert!(at >= now && at - now < 1_000, "{delay}: waits {}", at - now);
                } else {
                    assert!(at <= now && now - at < 1_000);
                }
                let mut hops = 0;
                while let Some(t) = tier {
                    at += tiers.length_ms(t);
                    assert!(at <= due, "{delay}: past due in tier {t}");
                    tier = tiers.route(due - at);
                    hops += 1;
                    assert!(hops < 100);
                }
                assert_eq!(at, due.max(now), "{delay}");
            }
        }
    }
}
