//! Records a producer could not deliver because its driver was stopped under it: counted
//! for the process and reported on standard error, never lost silently.

use std::sync::atomic::{AtomicU64, Ordering};

static UNDELIVERED: AtomicU64 = AtomicU64::new(0);

/// Counts and reports `records` that were buffered when their producer's driver stopped
/// before it had closed.
pub(crate) fn count(records: usize) {
    let records = u64::try_from(records).unwrap_or(u64::MAX);
    let total = UNDELIVERED.fetch_add(records, Ordering::Relaxed) + records;
    eprintln!(
        "kasio: a producer's runtime stopped before its last handle's records were delivered: \
         {records} records not delivered ({total} in this process); close the producer, or \
         keep the runtime running until its drop has delivered them"
    );
}

/// How many records producers of this process could not deliver because their runtime
/// stopped their driver (a tokio runtime shut down, say) before the producer had closed.
/// Records that failed for any other reason are reported through their deliveries instead.
///
/// ```
/// assert_eq!(kasio_shell::undelivered_on_drop(), 0);
/// ```
#[must_use]
pub fn undelivered_on_drop() -> u64 {
    UNDELIVERED.load(Ordering::Relaxed)
}
