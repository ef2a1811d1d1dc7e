//! Encoding v2 record batches: records go straight into the batch's buffer.

use super::batch::{BATCH_HEADER_LEN, BatchAttributes, CRC_START, LOG_OVERHEAD, TimestampType};
use crate::{compression::Compression, error::EncodeError, varint};
use bytes::{BufMut, Bytes, BytesMut};

/// Headers for a record that has none: `builder.append(ts, key, value, NO_HEADERS)`.
pub const NO_HEADERS: &[(&str, &[u8])] = &[];

/// The initial buffer of [`BatchBuilder::new`]: the default `batch.size`.
const DEFAULT_CAPACITY: usize = 16 * 1024;

/// How a batch is to be written: codec, flags and producer identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchOptions {
    /// The offset of the first record (the broker assigns real offsets; producers send 0).
    pub base_offset: i64,
    /// The leader epoch stamped by the broker; producers send -1.
    pub partition_leader_epoch: i32,
    /// The codec the records are compressed with.
    pub compression: Compression,
    /// Whether timestamps are the producer's or the broker's.
    pub timestamp_type: TimestampType,
    /// Whether the batch is part of a transaction.
    pub transactional: bool,
    /// Whether the batch holds control records.
    pub control: bool,
    /// The idempotent producer's id, or -1.
    pub producer_id: i64,
    /// The producer's epoch, or -1.
    pub producer_epoch: i16,
    /// The sequence number of the first record, or -1.
    pub base_sequence: i32,
}

impl Default for BatchOptions {
    fn default() -> Self {
        Self {
            base_offset: 0,
            partition_leader_epoch: -1,
            compression: Compression::None,
            timestamp_type: TimestampType::CreateTime,
            transactional: false,
            control: false,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
        }
    }
}

/// A header to write: anything with a string key and an optional byte value.
pub trait HeaderRef {
    /// The header's key.
    fn key(&self) -> &str;
    /// The header's value, or `None` for null.
    fn value(&self) -> Option<&[u8]>;
}

impl HeaderRef for (&str, Option<&[u8]>) {
    fn key(&self) -> &str {
        self.0
    }
    fn value(&self) -> Option<&[u8]> {
        self.1
    }
}

impl HeaderRef for (&str, &[u8]) {
    fn key(&self) -> &str {
        self.0
    }
    fn value(&self) -> Option<&[u8]> {
        Some(self.1)
    }
}

impl HeaderRef for super::Header {
    fn key(&self) -> &str {
        &self.key
    }
    fn value(&self) -> Option<&[u8]> {
        self.value.as_deref()
    }
}

/// Builds one v2 record batch, encoding each appended record directly into its buffer.
///
/// ```
/// use kasio_proto::{compression::Compression, records::{BatchBuilder, BatchOptions, RecordBatch}};
/// let mut b = BatchBuilder::new(BatchOptions { compression: Compression::Lz4, ..Default::default() });
/// for i in 0..3u8 {
///     b.append(1_700_000_000_000 + i64::from(i), Some(&[i]), Some(b"value"), &[("trace", &b"x"[..])])?;
/// }
/// let mut bytes = b.finish()?;
/// let batch = RecordBatch::decode(&mut bytes)?;
/// assert_eq!(batch.record_count, 3);
/// let records: Vec<_> = batch.records()?.collect::<Result<_, _>>()?;
/// assert_eq!(records[2].offset, 2);
/// assert_eq!(records[2].headers().next().unwrap()?.key, "trace");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct BatchBuilder {
    options: BatchOptions,
    /// Uncompressed: the header's space then the records. Compressed: the records alone.
    buf: BytesMut,
    count: i32,
    base_timestamp: i64,
    max_timestamp: i64,
}

impl BatchBuilder {
    /// An empty batch, its buffer sized for the Java client's default `batch.size` (16 KiB).
    pub fn new(options: BatchOptions) -> Self {
        Self::with_buffer(options, BytesMut::with_capacity(DEFAULT_CAPACITY))
    }

    /// An empty batch with room for `capacity` bytes (a producer passes its `batch.size`).
    pub fn with_capacity(options: BatchOptions, capacity: usize) -> Self {
        Self::with_buffer(options, BytesMut::with_capacity(capacity))
    }

    /// An empty batch writing into `buf` (cleared first), to reuse its allocation.
    pub fn with_buffer(options: BatchOptions, mut buf: BytesMut) -> Self {
        buf.clear();
        if options.compression == Compression::None {
            buf.put_bytes(0, BATCH_HEADER_LEN);
        }
        Self {
            options,
            buf,
            count: 0,
            base_timestamp: 0,
            max_timestamp: -1,
        }
    }

    /// How many records have been appended.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether no record has been appended.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The batch's size so far before compression, header included.
    pub fn uncompressed_size(&self) -> usize {
        match self.options.compression {
            Compression::None => self.buf.len(),
            _ => BATCH_HEADER_LEN + self.buf.len(),
        }
    }

    /// The bytes a record would add to the batch.
    pub fn record_size<H: HeaderRef>(
        &self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[H],
    ) -> usize {
        let body = self.body_len(timestamp, key, value, headers);
        varint::varint_len(body as i32) + body
    }

    fn body_len<H: HeaderRef>(
        &self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[H],
    ) -> usize {
        let ts_delta = if self.count == 0 {
            0
        } else {
            timestamp.wrapping_sub(self.base_timestamp)
        };
        let mut n = 1
            + varint::varlong_len(ts_delta)
            + varint::varint_len(self.count)
            + bytes_len(key)
            + bytes_len(value)
            + varint::varint_len(headers.len() as i32);
        for h in headers {
            n += bytes_len(Some(h.key().as_bytes())) + bytes_len(h.value());
        }
        n
    }

    /// Appends a record with the given timestamp (milliseconds since the Unix epoch).
    ///
    /// # Errors
    /// [`EncodeError::TooLong`] if the record or the batch outgrows what Kafka's length
    /// fields can hold.
    pub fn append<H: HeaderRef>(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[H],
    ) -> Result<(), EncodeError> {
        if self.count == i32::MAX {
            return Err(EncodeError::TooLong {
                length: self.count as usize + 1,
                max: i32::MAX as usize,
            });
        }
        if self.count == 0 {
            self.base_timestamp = timestamp;
        }
        let body = self.body_len(timestamp, key, value, headers);
        if body > i32::MAX as usize || self.uncompressed_size() + body > i32::MAX as usize {
            return Err(EncodeError::TooLong {
                length: body,
                max: i32::MAX as usize,
            });
        }
        // The record's size is known, so it is written into exactly that much room, without
        // the capacity checks of a growing buffer.
        let total = varint::varint_len(body as i32) + body;
        let start = self.buf.len();
        self.buf.resize(start + total, 0);
        let mut w = SliceWriter {
            out: &mut self.buf[start..],
            pos: 0,
        };
        w.varint(body as i32);
        w.byte(0);
        w.varlong(timestamp.wrapping_sub(self.base_timestamp));
        w.varint(self.count);
        w.bytes(key);
        w.bytes(value);
        w.varint(headers.len() as i32);
        for h in headers {
            w.bytes(Some(h.key().as_bytes()));
            w.bytes(h.value());
        }
        debug_assert_eq!(w.pos, total);
        self.count += 1;
        self.max_timestamp = self.max_timestamp.max(timestamp);
        Ok(())
    }

    /// Completes the batch: compresses the records if asked, fills in the header and CRC.
    ///
    /// # Errors
    /// [`EncodeError::InvalidValue`] for a batch with no records, or a compression error.
    pub fn finish(self) -> Result<Bytes, EncodeError> {
        self.finish_with_spare().map(|(batch, _)| batch)
    }

    /// As [`finish`](Self::finish), also handing back the buffer the records were encoded
    /// into when they were compressed into another, emptied, for the next batch.
    ///
    /// ```
    /// use kasio_proto::{compression::Compression, records::{BatchBuilder, BatchOptions}};
    /// let options = BatchOptions { compression: Compression::Lz4, ..Default::default() };
    /// let mut b = BatchBuilder::with_capacity(options, 1024);
    /// b.append::<(&str, &[u8])>(0, None, Some(b"v"), &[])?;
    /// let (batch, spare) = b.finish_with_spare()?;
    /// assert!(!batch.is_empty());
    /// assert!(spare.is_some_and(|s| s.is_empty() && s.capacity() >= 1024));
    /// # Ok::<(), kasio_proto::EncodeError>(())
    /// ```
    ///
    /// # Errors
    /// As [`finish`](Self::finish).
    pub fn finish_with_spare(self) -> Result<(Bytes, Option<BytesMut>), EncodeError> {
        if self.count == 0 {
            return Err(EncodeError::InvalidValue(
                "a record batch needs at least one record",
            ));
        }
        let (mut out, spare) = match self.options.compression {
            Compression::None => (self.buf, None),
            codec => {
                let mut out = BytesMut::with_capacity(BATCH_HEADER_LEN + self.buf.len() / 2);
                out.put_bytes(0, BATCH_HEADER_LEN);
                codec.compress(&self.buf, &mut out)?;
                let mut spare = self.buf;
                spare.clear();
                (out, Some(spare))
            }
        };
        let total = out.len();
        let o = &self.options;
        let attributes = BatchAttributes::default()
            .with_compression(o.compression)
            .with_timestamp_type(o.timestamp_type)
            .with_transactional(o.transactional)
            .with_control(o.control);
        let mut h = &mut out[..BATCH_HEADER_LEN];
        h.put_i64(o.base_offset);
        h.put_i32((total - LOG_OVERHEAD) as i32);
        h.put_i32(o.partition_leader_epoch);
        h.put_i8(2);
        h.put_u32(0);
        h.put_i16(attributes.bits());
        h.put_i32(self.count - 1);
        h.put_i64(self.base_timestamp);
        h.put_i64(self.max_timestamp);
        h.put_i64(o.producer_id);
        h.put_i16(o.producer_epoch);
        h.put_i32(o.base_sequence);
        h.put_i32(self.count);
        let crc = crc32c::crc32c(&out[CRC_START..]);
        out[17..21].copy_from_slice(&crc.to_be_bytes());
        Ok((out.freeze(), spare))
    }
}

fn bytes_len(b: Option<&[u8]>) -> usize {
    match b {
        None => 1,
        Some(b) => varint::varint_len(b.len() as i32) + b.len(),
    }
}

/// Writes into a slice sized beforehand to hold exactly what is written.
struct SliceWriter<'a> {
    out: &'a mut [u8],
    pos: usize,
}

impl SliceWriter<'_> {
    #[inline]
    fn byte(&mut self, b: u8) {
        self.out[self.pos] = b;
        self.pos += 1;
    }

    #[inline]
    fn uvarlong(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.byte((v as u8) | 0x80);
            v >>= 7;
        }
        self.byte(v as u8);
    }

    #[inline]
    fn varint(&mut self, v: i32) {
        self.uvarlong(u64::from(((v << 1) ^ (v >> 31)) as u32));
    }

    #[inline]
    fn varlong(&mut self, v: i64) {
        self.uvarlong(((v << 1) ^ (v >> 63)) as u64);
    }

    #[inline]
    fn bytes(&mut self, b: Option<&[u8]>) {
        match b {
            None => self.varint(-1),
            Some(b) => {
                self.varint(b.len() as i32);
                self.out[self.pos..self.pos + b.len()].copy_from_slice(b);
                self.pos += b.len();
            }
        }
    }
}
