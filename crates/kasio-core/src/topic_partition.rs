//! The names of a partition and of a position in one, as the Java client's
//! `TopicPartition` and `OffsetAndMetadata` keyed by it.

use std::sync::Arc;

/// A partition of a topic.
///
/// ```
/// use kasio_core::TopicPartition;
/// let tp = TopicPartition::new("orders", 3);
/// assert_eq!(tp.to_string(), "orders-3");
/// assert_eq!(TopicPartition::from(("orders", 3)), tp);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
}

impl TopicPartition {
    /// Partition `partition` of `topic`.
    pub fn new(topic: impl Into<Arc<str>>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }

    /// This partition at `offset`.
    #[must_use]
    pub fn at(&self, offset: i64) -> TopicPartitionOffset {
        TopicPartitionOffset {
            topic: self.topic.clone(),
            partition: self.partition,
            offset,
        }
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// Tuples convert, whatever holds the topic's name: `("orders", 3)`, `(name, 3)` for a
/// `String` or `Arc<str>` name, or references to such tuples.
macro_rules! from_tuples {
    ($($name:ty),*) => {$(
        impl From<($name, i32)> for TopicPartition {
            fn from((topic, partition): ($name, i32)) -> Self {
                Self::new(AsRef::<str>::as_ref(&topic), partition)
            }
        }

        impl From<&($name, i32)> for TopicPartition {
            fn from((topic, partition): &($name, i32)) -> Self {
                Self::new(AsRef::<str>::as_ref(topic), *partition)
            }
        }

        impl From<($name, i32, i64)> for TopicPartitionOffset {
            fn from((topic, partition, offset): ($name, i32, i64)) -> Self {
                Self::new(AsRef::<str>::as_ref(&topic), partition, offset)
            }
        }

        impl From<&($name, i32, i64)> for TopicPartitionOffset {
            fn from((topic, partition, offset): &($name, i32, i64)) -> Self {
                Self::new(AsRef::<str>::as_ref(topic), *partition, *offset)
            }
        }
    )*};
}

from_tuples!(&str, String, &String, &Arc<str>);

impl From<(Arc<str>, i32)> for TopicPartition {
    fn from((topic, partition): (Arc<str>, i32)) -> Self {
        Self { topic, partition }
    }
}

impl From<&(Arc<str>, i32)> for TopicPartition {
    fn from((topic, partition): &(Arc<str>, i32)) -> Self {
        Self::new(topic.clone(), *partition)
    }
}

impl From<&TopicPartition> for TopicPartition {
    fn from(tp: &TopicPartition) -> Self {
        tp.clone()
    }
}

/// A position in a partition: the offset of the next record to read, as commits take it.
///
/// ```
/// use kasio_core::{TopicPartition, TopicPartitionOffset};
/// let next = TopicPartition::new("orders", 3).at(42);
/// assert_eq!(next, TopicPartitionOffset::new("orders", 3, 42));
/// assert_eq!(next.to_string(), "orders-3@42");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartitionOffset {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
}

impl TopicPartitionOffset {
    /// `offset` in partition `partition` of `topic`.
    pub fn new(topic: impl Into<Arc<str>>, partition: i32, offset: i64) -> Self {
        Self {
            topic: topic.into(),
            partition,
            offset,
        }
    }

    /// The partition.
    #[must_use]
    pub fn topic_partition(&self) -> TopicPartition {
        TopicPartition::new(self.topic.clone(), self.partition)
    }
}

impl std::fmt::Display for TopicPartitionOffset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}@{}", self.topic, self.partition, self.offset)
    }
}

impl From<(Arc<str>, i32, i64)> for TopicPartitionOffset {
    fn from((topic, partition, offset): (Arc<str>, i32, i64)) -> Self {
        Self {
            topic,
            partition,
            offset,
        }
    }
}

impl From<&(Arc<str>, i32, i64)> for TopicPartitionOffset {
    fn from((topic, partition, offset): &(Arc<str>, i32, i64)) -> Self {
        Self::new(topic.clone(), *partition, *offset)
    }
}

impl From<&TopicPartitionOffset> for TopicPartitionOffset {
    fn from(tpo: &TopicPartitionOffset) -> Self {
        tpo.clone()
    }
}
