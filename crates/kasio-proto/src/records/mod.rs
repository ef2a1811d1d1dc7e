//! Record batches: what Produce requests carry and Fetch responses return.
//!
//! [`Batches`] walks a record set; each v2 [`RecordBatch`] yields [`Records`] whose keys,
//! values and headers are slices of the fetched buffer. [`BatchBuilder`] writes a batch.

mod batch;
mod builder;
mod control;
mod legacy;
mod producer_state;
mod record;

pub use batch::{BATCH_HEADER_LEN, Batch, BatchAttributes, Batches, RecordBatch, TimestampType};
pub use builder::{BatchBuilder, BatchOptions, HeaderRef, NO_HEADERS};
pub use control::{ControlRecord, ControlRecordType};
pub use legacy::LegacyBatch;
pub use producer_state::set_producer_state;
pub use record::{
    Header, HeaderView, HeaderViews, Headers, Record, RecordView, RecordViews, Records,
};

#[cfg(test)]
mod tests;
