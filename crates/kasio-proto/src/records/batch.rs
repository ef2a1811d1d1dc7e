//! Record batches (magic v2): the header, CRC check, and the sequence of batches in a fetch.

use super::{legacy::LegacyBatch, record::Records};
use crate::{
    compression::{Compression, DEFAULT_MAX_DECOMPRESSED},
    error::{DecodeError, DecodeErrorKind},
};
use bytes::Bytes;
use nom::{IResult, Parser, number::complete as num};

/// Bytes before the batch's records: the fixed v2 header.
pub const BATCH_HEADER_LEN: usize = 61;
/// Where the CRC'd part of a v2 batch starts (the attributes).
pub(crate) const CRC_START: usize = 21;
/// The offset and length fields that precede every batch and legacy message.
pub(crate) const LOG_OVERHEAD: usize = 12;
/// Where the magic byte sits, in v2 batches and legacy messages alike.
pub(crate) const MAGIC_OFFSET: usize = 16;

/// Whether record timestamps were set by the producer or by the broker on append.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimestampType {
    /// The producer's create time.
    CreateTime,
    /// The broker's log-append time.
    LogAppendTime,
}

/// The attributes of a v2 batch.
///
/// ```
/// use kasio_proto::records::BatchAttributes;
/// let a = BatchAttributes::from_bits(0b0011_0100);
/// assert!(a.is_transactional() && a.is_control());
/// assert_eq!(a.compression_id(), 4);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct BatchAttributes(i16);

impl BatchAttributes {
    const COMPRESSION_MASK: i16 = 0x07;
    const TIMESTAMP_TYPE: i16 = 0x08;
    const TRANSACTIONAL: i16 = 0x10;
    const CONTROL: i16 = 0x20;
    const DELETE_HORIZON: i16 = 0x40;

    /// Attributes from their wire bits.
    pub const fn from_bits(bits: i16) -> Self {
        Self(bits)
    }

    /// The wire bits.
    pub const fn bits(self) -> i16 {
        self.0
    }

    /// The compression codec's id (see [`Compression::from_id`]).
    pub const fn compression_id(self) -> u8 {
        (self.0 & Self::COMPRESSION_MASK) as u8
    }

    /// The compression codec.
    ///
    /// # Errors
    /// [`DecodeErrorKind::UnknownCompression`] for an id kasio does not know.
    pub fn compression(self) -> Result<Compression, DecodeError> {
        Compression::from_id(self.compression_id())
    }

    /// Which clock set the timestamps.
    pub const fn timestamp_type(self) -> TimestampType {
        if self.0 & Self::TIMESTAMP_TYPE != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    /// Whether the batch belongs to a transaction.
    pub const fn is_transactional(self) -> bool {
        self.0 & Self::TRANSACTIONAL != 0
    }

    /// Whether the batch holds control records (transaction markers).
    pub const fn is_control(self) -> bool {
        self.0 & Self::CONTROL != 0
    }

    /// Whether the base timestamp is a delete horizon (set by log compaction).
    pub const fn has_delete_horizon(self) -> bool {
        self.0 & Self::DELETE_HORIZON != 0
    }

    pub(crate) const fn with(self, bit: i16, on: bool) -> Self {
        if on {
            Self(self.0 | bit)
        } else {
            Self(self.0 & !bit)
        }
    }

    /// These attributes with the codec set.
    #[must_use]
    pub const fn with_compression(self, c: Compression) -> Self {
        Self((self.0 & !Self::COMPRESSION_MASK) | c.id() as i16)
    }

    /// These attributes with the transactional flag set or cleared.
    #[must_use]
    pub const fn with_transactional(self, on: bool) -> Self {
        self.with(Self::TRANSACTIONAL, on)
    }

    /// These attributes with the control flag set or cleared.
    #[must_use]
    pub const fn with_control(self, on: bool) -> Self {
        self.with(Self::CONTROL, on)
    }

    /// These attributes with the timestamp type set.
    #[must_use]
    pub const fn with_timestamp_type(self, t: TimestampType) -> Self {
        self.with(
            Self::TIMESTAMP_TYPE,
            matches!(t, TimestampType::LogAppendTime),
        )
    }
}

/// One v2 record batch: its header, and its records still encoded (and maybe compressed).
///
/// Decoding the header copies nothing; [`RecordBatch::records`] then decompresses if needed
/// and iterates records whose keys, values and headers share the batch's buffer.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordBatch {
    /// The offset of the first record.
    pub base_offset: i64,
    /// The epoch of the leader that appended the batch.
    pub partition_leader_epoch: i32,
    /// The CRC32C stored in the batch.
    pub crc: u32,
    /// Compression, timestamp type, transactional and control flags.
    pub attributes: BatchAttributes,
    /// The offset of the last record, relative to `base_offset`.
    pub last_offset_delta: i32,
    /// The timestamp of the first record (or the delete horizon).
    pub base_timestamp: i64,
    /// The largest timestamp in the batch.
    pub max_timestamp: i64,
    /// The idempotent or transactional producer's id, or -1.
    pub producer_id: i64,
    /// The producer's epoch, or -1.
    pub producer_epoch: i16,
    /// The sequence number of the first record, or -1.
    pub base_sequence: i32,
    /// How many records the batch declares.
    pub record_count: i32,
    /// The records section as it was on the wire.
    pub records_data: Bytes,
}

impl RecordBatch {
    /// The offset of the last record in the batch.
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    /// The offset after the batch, where the next fetch starts.
    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }

    /// Decodes one batch from the front of `buf` (which must hold all of it), checking its CRC.
    ///
    /// # Errors
    /// [`DecodeErrorKind::Truncated`] if the batch is incomplete,
    /// [`DecodeErrorKind::UnsupportedMagic`] if it is not v2, or
    /// [`DecodeErrorKind::CrcMismatch`] if its contents are corrupt.
    pub fn decode(buf: &mut Bytes) -> Result<RecordBatch, DecodeError> {
        let size = batch_size(buf)?;
        if size > buf.len() {
            return Err(DecodeError::truncated(size, buf.len()));
        }
        let whole = buf.split_to(size);
        Self::parse(whole)
    }

    fn parse(whole: Bytes) -> Result<RecordBatch, DecodeError> {
        let magic = whole.get(MAGIC_OFFSET).map_or(-1, |m| *m as i8);
        if magic != 2 {
            return Err(DecodeErrorKind::UnsupportedMagic(magic).into());
        }
        if whole.len() < BATCH_HEADER_LEN {
            return Err(DecodeError::truncated(BATCH_HEADER_LEN, whole.len()));
        }
        let (_, h) =
            header(&whole).map_err(|_| DecodeError::truncated(BATCH_HEADER_LEN, whole.len()))?;
        let computed = crc32c::crc32c(&whole[CRC_START..]);
        // Fuzzers cannot forge checksums; without this they would never reach the records.
        if computed != h.crc && !cfg!(fuzzing) {
            return Err(DecodeErrorKind::CrcMismatch {
                stored: h.crc,
                computed,
            }
            .into());
        }
        Ok(RecordBatch {
            base_offset: h.base_offset,
            partition_leader_epoch: h.partition_leader_epoch,
            crc: h.crc,
            attributes: BatchAttributes(h.attributes),
            last_offset_delta: h.last_offset_delta,
            base_timestamp: h.base_timestamp,
            max_timestamp: h.max_timestamp,
            producer_id: h.producer_id,
            producer_epoch: h.producer_epoch,
            base_sequence: h.base_sequence,
            record_count: h.record_count,
            records_data: whole.slice(BATCH_HEADER_LEN..),
        })
    }

    /// The batch's records, decompressed (within [`DEFAULT_MAX_DECOMPRESSED`]) if needed.
    ///
    /// # Errors
    /// As [`RecordBatch::records_with_limit`].
    pub fn records(&self) -> Result<Records, DecodeError> {
        self.records_with_limit(DEFAULT_MAX_DECOMPRESSED)
    }

    /// The batch's records, refusing to decompress to more than `max_decompressed` bytes.
    ///
    /// # Errors
    /// [`DecodeErrorKind::InvalidLength`] for a negative record count, or a decompression error.
    pub fn records_with_limit(&self, max_decompressed: usize) -> Result<Records, DecodeError> {
        let count = usize::try_from(self.record_count).map_err(|_| {
            DecodeError::new(DecodeErrorKind::InvalidLength(self.record_count.into()))
        })?;
        let data = match self.attributes.compression()? {
            Compression::None => self.records_data.clone(),
            codec => codec.decompress(&self.records_data, max_decompressed)?,
        };
        Ok(Records::new(
            data,
            count,
            self.base_offset,
            self.base_timestamp,
        ))
    }
}

struct Header {
    base_offset: i64,
    partition_leader_epoch: i32,
    crc: u32,
    attributes: i16,
    last_offset_delta: i32,
    base_timestamp: i64,
    max_timestamp: i64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    record_count: i32,
}

fn header(input: &[u8]) -> IResult<&[u8], Header> {
    let (input, (base_offset, _len, partition_leader_epoch, _magic, crc, attributes)) = (
        num::be_i64,
        num::be_i32,
        num::be_i32,
        num::be_i8,
        num::be_u32,
        num::be_i16,
    )
        .parse(input)?;
    let (input, (last_offset_delta, base_timestamp, max_timestamp, producer_id, producer_epoch)) =
        (
            num::be_i32,
            num::be_i64,
            num::be_i64,
            num::be_i64,
            num::be_i16,
        )
            .parse(input)?;
    let (input, (base_sequence, record_count)) = (num::be_i32, num::be_i32).parse(input)?;
    Ok((
        input,
        Header {
            base_offset,
            partition_leader_epoch,
            crc,
            attributes,
            last_offset_delta,
            base_timestamp,
            max_timestamp,
            producer_id,
            producer_epoch,
            base_sequence,
            record_count,
        },
    ))
}

/// The full size of the batch or legacy message at the front of `buf`, from its length field.
fn batch_size(buf: &[u8]) -> Result<usize, DecodeError> {
    let (_, (_offset, len)) = (num::be_i64::<_, nom::error::Error<&[u8]>>, num::be_i32)
        .parse(buf)
        .map_err(|_| DecodeError::truncated(LOG_OVERHEAD, buf.len()))?;
    // The smallest legacy message (v0, null key and value) is 14 bytes after the length.
    let len = usize::try_from(len)
        .ok()
        .filter(|l| *l >= 14)
        .ok_or_else(|| DecodeError::new(DecodeErrorKind::InvalidLength(len.into())))?;
    Ok(LOG_OVERHEAD + len)
}

/// A batch as found in a fetched record set: v2, or a legacy (v0/v1) message.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Batch {
    /// A v2 record batch.
    V2(RecordBatch),
    /// A legacy message, possibly a compressed wrapper of several.
    Legacy(LegacyBatch),
}

/// The batches of a record set, as a Fetch response or a log segment holds them.
///
/// A fetch may end in a partial batch (the broker cuts at `max_bytes`); iteration stops
/// before it without an error, and [`Batches::partial_tail`] says how many bytes it had.
///
/// ```
/// use bytes::Bytes;
/// use kasio_proto::records::{Batch, BatchBuilder, BatchOptions, Batches, NO_HEADERS};
/// let mut b = BatchBuilder::new(BatchOptions::default());
/// b.append(1_700_000_000_000, Some(b"k"), Some(b"v"), NO_HEADERS).unwrap();
/// let bytes = b.finish().unwrap();
/// let mut batches = Batches::new(bytes);
/// let Some(Ok(Batch::V2(batch))) = batches.next() else { panic!() };
/// let record = batch.records().unwrap().next().unwrap().unwrap();
/// assert_eq!(record.value.as_deref(), Some(&b"v"[..]));
/// ```
#[derive(Debug, Clone)]
pub struct Batches {
    rest: Bytes,
    failed: bool,
}

impl Batches {
    /// Iterates the batches in `data`.
    pub fn new(data: Bytes) -> Self {
        Self {
            rest: data,
            failed: false,
        }
    }

    /// Bytes left unread: a partial batch at the end of a fetch, or what follows an error.
    pub fn partial_tail(&self) -> usize {
        self.rest.len()
    }
}

impl Iterator for Batches {
    type Item = Result<Batch, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.len() < LOG_OVERHEAD {
            return None;
        }
        let size = match batch_size(&self.rest) {
            Ok(s) => s,
            Err(e) => {
                self.failed = true;
                return Some(Err(e));
            }
        };
        if size > self.rest.len() || self.rest.len() <= MAGIC_OFFSET {
            return None;
        }
        let whole = self.rest.split_to(size);
        let result = match whole[MAGIC_OFFSET] {
            2 => RecordBatch::parse(whole).map(Batch::V2),
            0 | 1 => LegacyBatch::parse(whole).map(Batch::Legacy),
            m => Err(DecodeErrorKind::UnsupportedMagic(m as i8).into()),
        };
        self.failed = result.is_err();
        Some(result)
    }
}
