//! What the consumer hands out: whole record batches that borrow the fetched bytes.

use kasio_proto::{
    DecodeError,
    records::{Record, RecordBatch, RecordView},
};
use std::sync::Arc;

/// One record batch of one partition, as fetched: its records are read straight out of the
/// response buffer (after decompression, for a compressed batch).
///
/// Records before the consumer's position when it fetched (a batch can start earlier) are
/// skipped by both accessors.
#[derive(Debug, Clone)]
pub struct FetchedBatch {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The partition's high watermark when it was fetched.
    pub high_watermark: i64,
    batch: RecordBatch,
    from: i64,
}

impl FetchedBatch {
    pub(crate) fn new(
        topic: Arc<str>,
        partition: i32,
        high_watermark: i64,
        batch: RecordBatch,
        from: i64,
    ) -> Self {
        Self {
            topic,
            partition,
            high_watermark,
            batch,
            from,
        }
    }

    /// The batch as it came off the wire.
    pub fn batch(&self) -> &RecordBatch {
        &self.batch
    }

    /// The first offset this batch hands out.
    pub fn start_offset(&self) -> i64 {
        self.from.max(self.batch.base_offset)
    }

    /// The offset after this batch: the partition's position once it is consumed.
    pub fn next_offset(&self) -> i64 {
        self.batch.next_offset()
    }

    /// Calls `f` with each record, borrowed from the batch: no per-record allocation.
    ///
    /// # Errors
    /// [`DecodeError`] for a malformed or undecompressible batch.
    pub fn for_each(&self, mut f: impl FnMut(RecordView<'_>)) -> Result<(), DecodeError> {
        let records = self.batch.records()?;
        for view in records.views() {
            let view = view?;
            if view.offset >= self.from {
                f(view);
            }
        }
        Ok(())
    }

    /// The records as owned values (their keys and values still share the batch's bytes).
    ///
    /// # Errors
    /// [`DecodeError`] for a malformed or undecompressible batch.
    pub fn records(&self) -> Result<Vec<Record>, DecodeError> {
        let from = self.from;
        self.batch
            .records()?
            .filter(|r| r.as_ref().map_or(true, |r| r.offset >= from))
            .collect()
    }
}
