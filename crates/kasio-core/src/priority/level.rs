//! Priority levels and the topics that hold them.

use std::{fmt, str::FromStr};

/// How urgent a record is. Each level of a topic is a topic of its own,
/// `<topic>.p.<level>`; a priority consumer reads all of them and hands out higher levels
/// first.
///
/// ```
/// use kasio_core::Priority;
/// assert_eq!(Priority::Critical.topic("orders"), "orders.p.critical");
/// assert_eq!(Priority::of_topic("orders.p.low"), Some(("orders", Priority::Low)));
/// assert!(Priority::Critical > Priority::Normal);
/// assert_eq!("high".parse::<Priority>(), Ok(Priority::High));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Priority {
    /// Handed out after every other level.
    Low,
    /// The level of a record sent without one.
    #[default]
    Normal,
    /// Before `normal` and `low`.
    High,
    /// Before every other level.
    Critical,
}

impl Priority {
    /// Every level, highest first.
    pub const ALL: [Self; 4] = [Self::Critical, Self::High, Self::Normal, Self::Low];

    /// The level's name: `critical`, `high`, `normal` or `low`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::High => "high",
            Self::Normal => "normal",
            Self::Low => "low",
        }
    }

    /// The topic holding `topic`'s records of this level.
    #[must_use]
    pub fn topic(self, topic: &str) -> String {
        format!("{topic}.p.{}", self.name())
    }

    /// Every level's topic of `topic`, highest first.
    #[must_use]
    pub fn topics(topic: &str) -> Vec<String> {
        Self::ALL.iter().map(|l| l.topic(topic)).collect()
    }

    /// The topic and level a level topic holds, if `level_topic` is one.
    #[must_use]
    pub fn of_topic(level_topic: &str) -> Option<(&str, Self)> {
        let (topic, level) = level_topic.rsplit_once(".p.")?;
        Some((topic, level.parse().ok()?))
    }

    /// The level's place, highest first: its index in [`Priority::ALL`].
    ///
    /// ```
    /// use kasio_core::Priority;
    /// assert_eq!(Priority::ALL[Priority::Low.rank()], Priority::Low);
    /// ```
    #[must_use]
    pub const fn rank(self) -> usize {
        match self {
            Self::Critical => 0,
            Self::High => 1,
            Self::Normal => 2,
            Self::Low => 3,
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not a priority level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownPriority(pub String);

impl fmt::Display for UnknownPriority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not a priority (critical, high, normal or low)",
            self.0
        )
    }
}

impl std::error::Error for UnknownPriority {}

impl FromStr for Priority {
    type Err = UnknownPriority;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|l| l.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownPriority(s.to_string()))
    }
}
