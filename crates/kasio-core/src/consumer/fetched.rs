//! What the consumer hands out: whole record batches that borrow the fetched bytes.

use bytes::Bytes;
use kasio_proto::{
    DecodeError,
    compression::{Compression, DEFAULT_MAX_DECOMPRESSED},
    records::{Headers, Record, RecordBatch, RecordView, Records},
};
use std::sync::Arc;

/// One consumed record, owned: its key, value and headers share the fetched batch's
/// bytes (no copy), and it names its topic and partition.
///
/// ```no_run
/// # fn demo(batch: &kasio_core::FetchedBatch) -> Result<(), kasio_proto::DecodeError> {
/// for record in batch.iter()? {
///     let record = record?;
///     println!("{}-{}@{}: {:?}", record.topic, record.partition, record.offset, record.value);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ConsumerRecord {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The record's offset.
    pub offset: i64,
    /// The record's timestamp (milliseconds since the Unix epoch).
    pub timestamp: i64,
    /// The key, or `None` for a null key.
    pub key: Option<Bytes>,
    /// The value, or `None` for a tombstone.
    pub value: Option<Bytes>,
    headers: Headers,
}

impl ConsumerRecord {
    pub(crate) fn new(topic: Arc<str>, partition: i32, record: Record) -> Self {
        Self {
            topic,
            partition,
            offset: record.offset,
            timestamp: record.timestamp,
            headers: record.headers(),
            key: record.key,
            value: record.value,
        }
    }

    /// The record's headers, decoded as they are iterated.
    pub fn headers(&self) -> Headers {
        self.headers.clone()
    }

    /// The headers as owned (key, value) pairs, a null value as empty, for writing the
    /// record again (as a dead letter, say). Headers that do not decode are left out:
    /// the record came through the consumer's checks, so only a damaged tail can be.
    #[must_use]
    pub fn header_pairs(&self) -> Vec<(String, Vec<u8>)> {
        self.headers()
            .map_while(Result::ok)
            .map(|h| {
                (
                    h.key.to_string(),
                    h.value.map(|v| v.to_vec()).unwrap_or_default(),
                )
            })
            .collect()
    }
}

/// The records of a [`FetchedBatch`], owned, decoded as they are iterated; see
/// [`FetchedBatch::iter`].
#[derive(Debug)]
pub struct FetchedRecords {
    topic: Arc<str>,
    partition: i32,
    records: Records,
    from: i64,
    until: i64,
}

impl Iterator for FetchedRecords {
    type Item = Result<ConsumerRecord, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let record = match self.records.next()? {
                Ok(r) => r,
                Err(e) => return Some(Err(e)),
            };
            if record.offset >= self.until {
                return None;
            }
            if record.offset >= self.from {
                return Some(Ok(ConsumerRecord::new(
                    self.topic.clone(),
                    self.partition,
                    record,
                )));
            }
        }
    }
}

/// One record batch of one partition, as fetched: its records are read straight out of the
/// response buffer (after decompression, for a compressed batch).
///
/// Records before the consumer's position when it fetched (a batch can start earlier) are
/// skipped by both accessors, and so are those past `max.poll.records` from the first: the
/// rest of a larger batch comes as the next one.
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
    /// The offset this piece ends before (`i64::MAX`: the batch's end).
    until: i64,
    /// The bytes the whole batch took off the wire, which the consumer's buffer counts.
    size: usize,
}

impl FetchedBatch {
    pub(crate) fn new(
        topic: Arc<str>,
        partition: i32,
        high_watermark: i64,
        batch: RecordBatch,
        from: i64,
    ) -> Self {
        let size = batch.records_data.len() + kasio_proto::records::BATCH_HEADER_LEN;
        Self {
            topic,
            partition,
            high_watermark,
            batch,
            from,
            until: i64::MAX,
            size,
        }
    }

    /// The bytes the batch took off the wire.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// At most `max` records' worth of offsets, and the rest as another piece of the same
    /// batch. A compressed batch is decompressed once here, so neither piece inflates it
    /// again.
    pub(crate) fn split(mut self, max: usize) -> (Self, Option<Self>) {
        let start = self.start_offset();
        let end = self.next_offset();
        let max = i64::try_from(max).unwrap_or(i64::MAX).max(1);
        if end - start <= max {
            return (self, None);
        }
        if let Ok(codec) = self.batch.attributes.compression()
            && codec != Compression::None
            && let Ok(data) = codec.decompress(&self.batch.records_data, DEFAULT_MAX_DECOMPRESSED)
        {
            self.batch.records_data = data;
            self.batch.attributes = self.batch.attributes.with_compression(Compression::None);
        }
        let cut = start + max;
        let mut rest = self.clone();
        rest.from = cut;
        self.until = cut;
        // The rest starts at its first record's bytes, so no piece walks the records of the
        // pieces before it.
        if let Ok(records) = self.batch.records() {
            let data = records.buffer().clone();
            let mut views = records.views();
            loop {
                let (bytes, left) = (views.remaining_bytes(), views.remaining());
                match views.next() {
                    Some(Ok(v)) if v.offset >= cut => {
                        rest.batch.records_data = data.slice(data.len() - bytes..);
                        rest.batch.record_count = i32::try_from(left).unwrap_or(i32::MAX);
                        break;
                    }
                    Some(Ok(_)) => {}
                    _ => break,
                }
            }
        }
        (self, Some(rest))
    }

    /// The batch as it came off the wire.
    pub fn batch(&self) -> &RecordBatch {
        &self.batch
    }

    /// The leader epoch its records were written in (every record of a batch shares it).
    pub fn leader_epoch(&self) -> i32 {
        self.batch.partition_leader_epoch
    }

    /// The first offset this batch hands out.
    pub fn start_offset(&self) -> i64 {
        self.from.max(self.batch.base_offset)
    }

    /// The offset after this batch: the partition's position once it is consumed.
    pub fn next_offset(&self) -> i64 {
        self.batch.next_offset().min(self.until)
    }

    /// Calls `f` with each record, borrowed from the batch: no per-record allocation.
    ///
    /// # Errors
    /// [`DecodeError`] for a malformed or undecompressible batch.
    pub fn for_each(&self, mut f: impl FnMut(RecordView<'_>)) -> Result<(), DecodeError> {
        let records = self.batch.records()?;
        for view in records.views() {
            let view = view?;
            if view.offset >= self.until {
                break;
            }
            if view.offset >= self.from {
                f(view);
            }
        }
        Ok(())
    }

    /// The records as an iterator of owned [`ConsumerRecord`]s (their keys, values and
    /// headers share the batch's bytes); [`for_each`](Self::for_each) is cheaper.
    ///
    /// # Errors
    /// [`DecodeError`] for a batch that cannot be decompressed; each item, for a record
    /// that does not decode.
    pub fn iter(&self) -> Result<FetchedRecords, DecodeError> {
        Ok(FetchedRecords {
            topic: self.topic.clone(),
            partition: self.partition,
            records: self.batch.records()?,
            from: self.from,
            until: self.until,
        })
    }

    /// How many records this batch hands out, at most (compacted batches may have fewer).
    pub fn len_hint(&self) -> usize {
        usize::try_from(self.next_offset() - self.start_offset()).unwrap_or(0)
    }

    /// The records as owned values (their keys and values still share the batch's bytes).
    ///
    /// # Errors
    /// [`DecodeError`] for a malformed or undecompressible batch.
    pub fn records(&self) -> Result<Vec<Record>, DecodeError> {
        let (from, until) = (self.from, self.until);
        self.batch
            .records()?
            .filter(|r| {
                r.as_ref()
                    .map_or(true, |r| r.offset >= from && r.offset < until)
            })
            .collect()
    }
}
