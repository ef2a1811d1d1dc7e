//! Priority delivery on a plain Kafka cluster: each priority level of a topic is a topic
//! of its own (`<topic>.p.<level>`), and a priority consumer reads them all, handing out
//! higher levels first.
//!
//! [`Priority`] names the levels and their topics; [`PriorityQueue`] is the consumer's
//! logic, sans-IO: it takes the batches a consumer of the level topics fetched and hands
//! them out by level, with the partitions to pause and resume and a starvation guard
//! for the lower levels. [`PriorityShareQueue`] does the same for members of a share
//! group, one per level, whose fetching it switches instead of pausing partitions.

mod guard;
mod level;
mod queue;
mod share;

pub use guard::MAX_MIN_SHARE;
pub use level::{Priority, UnknownPriority};
pub use queue::{LevelStats, PriorityQueue};
pub use share::{PriorityShareQueue, ShareLevelStats};
