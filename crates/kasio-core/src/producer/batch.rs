//! A partition's records on their way out: the batch being filled, then closed batches
//! waiting, in flight or backing off.

use super::delivered::Tokens;
use bytes::{Bytes, BytesMut};
use kasio_proto::{
    compression::Compression,
    records::{BatchBuilder, BatchOptions},
};
use std::{collections::VecDeque, time::Instant};

/// The batch records are appended to.
#[derive(Debug)]
pub(crate) struct OpenBatch<T> {
    pub(crate) builder: BatchBuilder,
    /// Each record's token and timestamp, in order.
    pub(crate) tokens: Tokens<T>,
    /// Bytes accounted against `buffer.memory`.
    pub(crate) size: usize,
    pub(crate) created: Instant,
}

impl<T> OpenBatch<T> {
    /// A batch with room for `capacity` bytes, its records' tokens kept in `tokens`.
    pub(crate) fn new(
        compression: Compression,
        transactional: bool,
        capacity: usize,
        tokens: Tokens<T>,
        buffer: Option<BytesMut>,
        now: Instant,
    ) -> Self {
        let options = BatchOptions {
            compression,
            transactional,
            ..Default::default()
        };
        Self {
            builder: match buffer {
                Some(buf) => BatchBuilder::with_buffer(options, buf),
                None => BatchBuilder::with_capacity(options, capacity),
            },
            tokens,
            size: 0,
            created: now,
        }
    }
}

/// Where a closed batch is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BatchState {
    /// Waiting to be sent (again).
    Queued,
    /// Part of the Produce request with this id.
    InFlight(u64),
}

/// A closed, encoded batch.
#[derive(Debug)]
pub(crate) struct Batch<T> {
    pub(crate) data: Bytes,
    pub(crate) tokens: Tokens<T>,
    pub(crate) size: usize,
    pub(crate) deadline: Instant,
    pub(crate) attempts: u32,
    /// The base sequence, assigned when the batch is first sent by an idempotent producer.
    pub(crate) sequence: Option<i32>,
    /// The producer epoch the data carries.
    pub(crate) stamped: Option<(i64, i16, i32)>,
    pub(crate) state: BatchState,
    /// The last attempt's fate is unknown: it may have been written.
    pub(crate) unknown: bool,
}

/// One partition's records.
#[derive(Debug)]
pub(crate) struct PartitionState<T> {
    pub(crate) open: Option<OpenBatch<T>>,
    pub(crate) queue: VecDeque<Batch<T>>,
    pub(crate) next_sequence: i32,
    pub(crate) retry_after: Option<Instant>,
    /// The leader the batches in flight went to.
    pub(crate) in_flight_leader: Option<i32>,
    /// A batch has been acknowledged under the current producer id and epoch.
    pub(crate) acked: bool,
}

impl<T> Default for PartitionState<T> {
    fn default() -> Self {
        Self {
            open: None,
            queue: VecDeque::new(),
            next_sequence: 0,
            retry_after: None,
            in_flight_leader: None,
            acked: false,
        }
    }
}

impl<T> PartitionState<T> {
    pub(crate) fn in_flight(&self) -> usize {
        self.queue
            .iter()
            .filter(|b| matches!(b.state, BatchState::InFlight(_)))
            .count()
    }
}

/// How many finished batch buffers are kept for reuse.
const FREE_BUFFERS: usize = 64;

/// Buffers of finished batches kept for new ones, as the Java client's buffer pool keeps
/// them: with more batches in flight than buffers kept, every new batch lands on fresh
/// pages, whose faults cost more than encoding into them.
#[derive(Debug)]
pub(crate) struct FreeBuffers {
    buffers: Vec<BytesMut>,
    /// Smaller buffers are not kept: a batch could not use them.
    batch_size: usize,
    /// The capacity kept stays within `buffer.memory`.
    limit: usize,
    kept: usize,
}

impl FreeBuffers {
    pub(crate) fn new(batch_size: usize, limit: usize) -> Self {
        Self {
            buffers: Vec::new(),
            batch_size,
            limit,
            kept: 0,
        }
    }

    /// Keeps `buf`, emptied, if a batch can use it and there is room.
    pub(crate) fn keep(&mut self, mut buf: BytesMut) {
        let capacity = buf.capacity();
        if capacity >= self.batch_size
            && self.buffers.len() < FREE_BUFFERS
            && self.kept + capacity <= self.limit
        {
            buf.clear();
            self.kept += capacity;
            self.buffers.push(buf);
        }
    }

    /// A kept buffer of at least `capacity` bytes, if the last one kept is that large.
    pub(crate) fn take(&mut self, capacity: usize) -> Option<BytesMut> {
        if self.buffers.last()?.capacity() < capacity {
            return None;
        }
        let buf = self.buffers.pop()?;
        self.kept -= buf.capacity();
        Some(buf)
    }
}
