//! Legacy message sets (magic v0 and v1), which brokers may still return: decode only.

use super::{Record, batch::LOG_OVERHEAD};
use crate::{
    compression::{Compression, DEFAULT_MAX_DECOMPRESSED},
    error::{DecodeError, DecodeErrorKind},
};
use bytes::{Buf, Bytes};

/// One legacy message; if compressed, a wrapper whose value is a whole inner message set.
#[derive(Debug, Clone, PartialEq)]
pub struct LegacyBatch {
    /// The message's offset (for a v1 wrapper, the offset of its last inner message).
    pub offset: i64,
    /// 0 or 1.
    pub magic: i8,
    /// Compression in the low bits; bit 3 is the timestamp type in v1.
    pub attributes: i8,
    /// The timestamp (v1 only).
    pub timestamp: Option<i64>,
    /// The key.
    pub key: Option<Bytes>,
    /// The value.
    pub value: Option<Bytes>,
}

impl LegacyBatch {
    pub(crate) fn parse(mut whole: Bytes) -> Result<LegacyBatch, DecodeError> {
        let offset = whole.get_i64();
        let _size = whole.get_i32();
        if whole.len() < 6 {
            return Err(DecodeError::truncated(6, whole.len()));
        }
        let crc = whole.get_u32();
        let mut hasher = flate2::Crc::new();
        hasher.update(&whole);
        if hasher.sum() != crc && !cfg!(fuzzing) {
            return Err(DecodeErrorKind::CrcMismatch {
                stored: crc,
                computed: hasher.sum(),
            }
            .into());
        }
        let magic = whole.get_i8();
        let attributes = whole.get_i8();
        let timestamp = if magic >= 1 {
            if whole.len() < 8 {
                return Err(DecodeError::truncated(8, whole.len()));
            }
            Some(whole.get_i64())
        } else {
            None
        };
        let key = take(&mut whole).map_err(|e| e.at("key"))?;
        let value = take(&mut whole).map_err(|e| e.at("value"))?;
        if !whole.is_empty() {
            return Err(DecodeErrorKind::TrailingBytes(whole.len()).into());
        }
        Ok(LegacyBatch {
            offset,
            magic,
            attributes,
            timestamp,
            key,
            value,
        })
    }

    /// The message's compression codec.
    ///
    /// # Errors
    /// [`DecodeErrorKind::UnknownCompression`] for a codec legacy messages cannot use.
    pub fn compression(&self) -> Result<Compression, DecodeError> {
        match self.attributes & 0x07 {
            c @ 0..=3 => Compression::from_id(c as u8),
            c => Err(DecodeErrorKind::UnknownCompression(c as u8).into()),
        }
    }

    fn log_append_time(&self) -> bool {
        self.magic >= 1 && self.attributes & 0x08 != 0
    }

    /// The records the message holds: itself, or the inner messages of a compressed wrapper.
    ///
    /// # Errors
    /// A decompression error, a corrupt inner message, or a nested compressed wrapper.
    pub fn records(&self) -> Result<Vec<Record>, DecodeError> {
        let ts = self.timestamp.unwrap_or(-1);
        let codec = self.compression()?;
        if codec == Compression::None {
            return Ok(vec![Record::new(
                self.offset,
                ts,
                self.key.clone(),
                self.value.clone(),
            )]);
        }
        let value = self
            .value
            .as_ref()
            .ok_or_else(|| DecodeError::new(DecodeErrorKind::UnexpectedNull).at("wrapper value"))?;
        let inner = codec.decompress(value, DEFAULT_MAX_DECOMPRESSED)?;
        let mut out = Vec::new();
        let mut rest = inner;
        while rest.len() >= LOG_OVERHEAD {
            let size = i32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]]);
            let size = usize::try_from(size)
                .map_err(|_| DecodeError::new(DecodeErrorKind::InvalidLength(size.into())))?;
            if LOG_OVERHEAD + size > rest.len() {
                return Err(DecodeError::truncated(LOG_OVERHEAD + size, rest.len()));
            }
            let m = LegacyBatch::parse(rest.split_to(LOG_OVERHEAD + size))?;
            if m.attributes & 0x07 != 0 {
                return Err(DecodeErrorKind::InvalidValue("nested compressed message").into());
            }
            let ts = if self.log_append_time() {
                ts
            } else {
                m.timestamp.unwrap_or(-1)
            };
            out.push(Record::new(m.offset, ts, m.key, m.value));
        }
        // A v1 wrapper written by a broker carries relative inner offsets and the absolute
        // offset of the last one. A producer's wrapper (offset 0) gives a negative base:
        // then the inner offsets stand as they are, as the Java client reads them.
        if self.magic >= 1
            && let Some(last) = out.last().map(|r| r.offset)
        {
            let base = self.offset.wrapping_sub(last);
            if base >= 0 {
                for r in &mut out {
                    r.offset = base.wrapping_add(r.offset);
                }
            }
        }
        Ok(out)
    }
}

fn take(buf: &mut Bytes) -> Result<Option<Bytes>, DecodeError> {
    if buf.len() < 4 {
        return Err(DecodeError::truncated(4, buf.len()));
    }
    let len = buf.get_i32();
    if len == -1 {
        return Ok(None);
    }
    let len = usize::try_from(len)
        .map_err(|_| DecodeError::new(DecodeErrorKind::InvalidLength(len.into())))?;
    if len > buf.len() {
        return Err(DecodeErrorKind::LengthExceedsInput {
            length: len,
            remaining: buf.len(),
        }
        .into());
    }
    Ok(Some(buf.split_to(len)))
}
