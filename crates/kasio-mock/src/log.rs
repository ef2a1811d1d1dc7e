//! One partition's log: record batches in offset order, held in memory.

use bytes::{Bytes, BytesMut};
use kasio_proto::{
    DecodeError,
    records::{Batch, Batches},
};

/// A batch as stored: its offsets and the bytes to serve.
#[derive(Debug, Clone)]
struct Stored {
    base_offset: i64,
    last_offset: i64,
    max_timestamp: i64,
    bytes: Bytes,
}

/// A partition's log.
#[derive(Debug, Clone, Default)]
pub(crate) struct PartitionLog {
    batches: Vec<Stored>,
    log_start: i64,
    next_offset: i64,
    size: usize,
}

/// Why records could not be appended.
#[derive(Debug)]
pub(crate) enum AppendError {
    /// The records were not valid v2 batches.
    Corrupt(DecodeError),
    /// Legacy (v0/v1) message sets are refused, as Kafka 4 refuses them.
    UnsupportedFormat,
}

impl PartitionLog {
    /// The first offset still held.
    pub(crate) fn log_start(&self) -> i64 {
        self.log_start
    }

    /// The offset the next record gets (the high watermark: every append is committed).
    pub(crate) fn end(&self) -> i64 {
        self.next_offset
    }

    /// Appends every batch in `records`, assigning offsets. Returns the base offset.
    pub(crate) fn append(&mut self, records: &Bytes) -> Result<i64, AppendError> {
        let mut parsed = Vec::new();
        for batch in Batches::new(records.clone()) {
            match batch.map_err(AppendError::Corrupt)? {
                Batch::V2(b) => parsed.push(b),
                _ => return Err(AppendError::UnsupportedFormat),
            }
        }
        let base = self.next_offset;
        let mut rest = records.clone();
        for b in parsed {
            let len = 61 + b.records_data.len();
            let mut bytes = BytesMut::from(&rest.split_to(len)[..]);
            // The base offset sits outside the CRC, so the broker may rewrite it.
            bytes[0..8].copy_from_slice(&self.next_offset.to_be_bytes());
            let last = self.next_offset + i64::from(b.last_offset_delta);
            self.size += bytes.len();
            self.batches.push(Stored {
                base_offset: self.next_offset,
                last_offset: last,
                max_timestamp: b.max_timestamp,
                bytes: bytes.freeze(),
            });
            self.next_offset = last + 1;
        }
        Ok(base)
    }

    /// Whole batches from the one holding `offset`, at least one, then up to `max_bytes`.
    pub(crate) fn read(&self, offset: i64, max_bytes: usize) -> Bytes {
        let start = self.batches.partition_point(|b| b.last_offset < offset);
        let mut out = BytesMut::new();
        for b in &self.batches[start..] {
            if !out.is_empty() && out.len() + b.bytes.len() > max_bytes {
                break;
            }
            out.extend_from_slice(&b.bytes);
        }
        out.freeze()
    }

    /// The first offset whose batch has a timestamp at or after `timestamp`, and that
    /// timestamp; `None` if every record is older.
    pub(crate) fn offset_for_timestamp(&self, timestamp: i64) -> Option<(i64, i64)> {
        self.batches
            .iter()
            .find(|b| b.max_timestamp >= timestamp)
            .map(|b| (b.base_offset, b.max_timestamp))
    }

    /// The offset and timestamp of the record with the largest timestamp.
    pub(crate) fn max_timestamp(&self) -> Option<(i64, i64)> {
        self.batches
            .iter()
            .max_by_key(|b| b.max_timestamp)
            .map(|b| (b.last_offset, b.max_timestamp))
    }

    /// Drops whole batches from the front until the log holds at most `max_bytes`.
    pub(crate) fn trim_to(&mut self, max_bytes: usize) {
        while self.size > max_bytes && self.batches.len() > 1 {
            let b = self.batches.remove(0);
            self.size -= b.bytes.len();
            self.log_start = self.batches[0].base_offset;
        }
    }
}
