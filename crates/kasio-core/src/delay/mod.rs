//! Delayed delivery on a plain Kafka cluster: a record sent with a delay goes to delay
//! tier topics (`<topic>.delay.<tier>`) and a relay forwards it to its topic once it is
//! due, exactly once.
//!
//! [`DelayTiers`] plans a record's way through the tiers; [`DelayRelay`] is the relay's
//! logic, sans-IO: it takes the batches a read_committed group consumer of the tier
//! topics fetched, and hands out the records to forward (to the next tier or to the
//! topic) as they become ready, the partitions to pause and resume, and the offsets for
//! the transaction that writes the forwards.

mod relay;
mod tiers;

pub use relay::{DelayRelay, Forward, TierPartitionStats};
pub use tiers::{DEFAULT_TIERS, DelayPlan, DelayTiers};

/// Header holding a delayed record's due time (Unix milliseconds, decimal); it stays on
/// the record delivered to its topic.
pub const DUE_HEADER: &str = "kasio.delay.due";
/// Header holding a delayed record's own timestamp while it passes through the tiers
/// (whose timestamps are planned starts); it becomes the delivered record's timestamp.
pub const TIMESTAMP_HEADER: &str = "kasio.delay.timestamp";
/// Header holding the partition a delayed record was sent to, if the sender chose one.
pub const PARTITION_HEADER: &str = "kasio.delay.partition";
