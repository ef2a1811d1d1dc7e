//! Control records: the commit and abort markers a transaction coordinator writes.

use super::{BatchBuilder, BatchOptions, Record};
use crate::error::{DecodeError, DecodeErrorKind, EncodeError};
use bytes::{Buf, BufMut, Bytes, BytesMut};

/// What a control record marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ControlRecordType {
    /// The transaction was aborted.
    Abort,
    /// The transaction was committed.
    Commit,
    /// Another control type (Kafka uses more for KRaft), by number.
    Other(i16),
}

/// A decoded control record.
///
/// ```
/// use kasio_proto::records::{ControlRecord, ControlRecordType, RecordBatch};
/// let mut bytes = ControlRecord::marker_batch(ControlRecordType::Commit, 5, 1000, 7, 0, 1_700_000_000_000)?;
/// let batch = RecordBatch::decode(&mut bytes)?;
/// assert!(batch.attributes.is_control());
/// let record = batch.records()?.next().ok_or("no record")??;
/// let marker = ControlRecord::parse(&record)?;
/// assert_eq!((marker.kind, marker.coordinator_epoch), (ControlRecordType::Commit, 5));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlRecord {
    /// The marker's type.
    pub kind: ControlRecordType,
    /// The coordinator epoch (for transaction markers).
    pub coordinator_epoch: i32,
}

impl ControlRecord {
    /// Reads the control record a record in a control batch holds.
    ///
    /// # Errors
    /// A [`DecodeError`] if the key or value is missing or too short.
    pub fn parse(record: &Record) -> Result<ControlRecord, DecodeError> {
        let mut key = record
            .key
            .clone()
            .ok_or_else(|| DecodeError::new(DecodeErrorKind::UnexpectedNull).at("control key"))?;
        if key.len() < 4 {
            return Err(DecodeError::truncated(4, key.len()).at("control key"));
        }
        let _version = key.get_i16();
        let kind = match key.get_i16() {
            0 => ControlRecordType::Abort,
            1 => ControlRecordType::Commit,
            other => ControlRecordType::Other(other),
        };
        let coordinator_epoch = match (&kind, record.value.as_ref()) {
            (ControlRecordType::Abort | ControlRecordType::Commit, Some(v)) if v.len() >= 6 => {
                let mut v = v.clone();
                let _version = v.get_i16();
                v.get_i32()
            }
            (ControlRecordType::Abort | ControlRecordType::Commit, _) => {
                return Err(
                    DecodeError::truncated(6, record.value.as_ref().map_or(0, Bytes::len))
                        .at("control value"),
                );
            }
            _ => -1,
        };
        Ok(ControlRecord {
            kind,
            coordinator_epoch,
        })
    }

    /// A control batch holding one transaction marker, as a coordinator writes it.
    ///
    /// # Errors
    /// As [`BatchBuilder::finish`].
    pub fn marker_batch(
        kind: ControlRecordType,
        coordinator_epoch: i32,
        producer_id: i64,
        producer_epoch: i16,
        base_offset: i64,
        timestamp: i64,
    ) -> Result<Bytes, EncodeError> {
        let code = match kind {
            ControlRecordType::Abort => 0,
            ControlRecordType::Commit => 1,
            ControlRecordType::Other(c) => c,
        };
        let mut key = BytesMut::with_capacity(4);
        key.put_i16(0);
        key.put_i16(code);
        let mut value = BytesMut::with_capacity(6);
        value.put_i16(0);
        value.put_i32(coordinator_epoch);
        let mut b = BatchBuilder::new(BatchOptions {
            base_offset,
            transactional: true,
            control: true,
            producer_id,
            producer_epoch,
            ..Default::default()
        });
        b.append(timestamp, Some(&key), Some(&value), super::NO_HEADERS)?;
        b.finish()
    }
}
