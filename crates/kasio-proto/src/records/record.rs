//! Records inside a v2 batch, decoded lazily and without copying.

use crate::{
    ByteStr,
    error::{DecodeError, DecodeErrorKind},
    varint,
};
use bytes::Bytes;

/// One record. Key, value and headers are slices of the batch's buffer, not copies.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The record's offset.
    pub offset: i64,
    /// The record's timestamp (milliseconds since the Unix epoch).
    pub timestamp: i64,
    /// The key, or `None` for a null key.
    pub key: Option<Bytes>,
    /// The value, or `None` for a tombstone.
    pub value: Option<Bytes>,
    headers: Bytes,
    header_count: usize,
}

/// One record header. Kafka allows repeated keys, so headers are a list, not a map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The header's key.
    pub key: ByteStr,
    /// The header's value, or `None` for null.
    pub value: Option<Bytes>,
}

impl Record {
    /// A record, for tests and for the legacy formats (which have no headers).
    pub fn new(offset: i64, timestamp: i64, key: Option<Bytes>, value: Option<Bytes>) -> Self {
        Self {
            offset,
            timestamp,
            key,
            value,
            headers: Bytes::new(),
            header_count: 0,
        }
    }

    /// How many headers the record has.
    pub fn header_count(&self) -> usize {
        self.header_count
    }

    /// The record's headers, decoded as they are iterated.
    pub fn headers(&self) -> Headers {
        Headers {
            rest: self.headers.clone(),
            left: self.header_count,
        }
    }
}

/// An iterator over a record's headers.
#[derive(Debug, Clone)]
pub struct Headers {
    rest: Bytes,
    left: usize,
}

impl Iterator for Headers {
    type Item = Result<Header, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let result = (|| {
            let key = take_bytes(&mut self.rest)?.ok_or_else(|| {
                DecodeError::new(DecodeErrorKind::UnexpectedNull).at("header key")
            })?;
            let key = ByteStr::from_utf8(key)
                .map_err(|_| DecodeError::new(DecodeErrorKind::InvalidUtf8).at("header key"))?;
            let value = take_bytes(&mut self.rest).map_err(|e| e.at("header value"))?;
            Ok(Header { key, value })
        })();
        if result.is_err() {
            self.left = 0;
        }
        Some(result)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left))
    }
}

/// The records of one batch, decoded as they are iterated.
///
/// Each record's length prefix bounds its fields; a record that is malformed, or a count
/// that disagrees with the bytes, yields an error and ends the iteration.
#[derive(Debug, Clone)]
pub struct Records {
    rest: Bytes,
    left: usize,
    base_offset: i64,
    base_timestamp: i64,
}

impl Records {
    pub(crate) fn new(data: Bytes, count: usize, base_offset: i64, base_timestamp: i64) -> Self {
        Self {
            rest: data,
            left: count,
            base_offset,
            base_timestamp,
        }
    }

    fn decode_one(&mut self) -> Result<Record, DecodeError> {
        let len = take_varint(&mut self.rest)?;
        let len = usize::try_from(len)
            .map_err(|_| DecodeError::new(DecodeErrorKind::InvalidLength(len.into())))?;
        if len > self.rest.len() {
            return Err(DecodeErrorKind::LengthExceedsInput {
                length: len,
                remaining: self.rest.len(),
            }
            .into());
        }
        let mut body = self.rest.split_to(len);
        let input: &[u8] = &body;
        let (input, _attributes) =
            nom::number::complete::be_i8::<_, nom::error::Error<&[u8]>>(input)
                .map_err(|_| DecodeError::truncated(1, 0))?;
        let (input, timestamp_delta) =
            varint::varlong(input).map_err(|_| DecodeError::new(DecodeErrorKind::VarintTooLong))?;
        let (input, offset_delta) =
            varint::varint(input).map_err(|_| DecodeError::new(DecodeErrorKind::VarintTooLong))?;
        let used = body.len() - input.len();
        bytes::Buf::advance(&mut body, used);
        let key = take_bytes(&mut body).map_err(|e| e.at("key"))?;
        let value = take_bytes(&mut body).map_err(|e| e.at("value"))?;
        let count = take_varint(&mut body).map_err(|e| e.at("header count"))?;
        // Each header takes at least two bytes, so a count past that is a lie.
        let header_count = usize::try_from(count)
            .ok()
            .filter(|c| *c <= body.len() / 2)
            .ok_or(
                DecodeError::new(DecodeErrorKind::InvalidLength(count.into())).at("header count"),
            )?;
        Ok(Record {
            offset: self.base_offset.wrapping_add(i64::from(offset_delta)),
            timestamp: self.base_timestamp.wrapping_add(timestamp_delta),
            key,
            value,
            headers: body,
            header_count,
        })
    }
}

impl Iterator for Records {
    type Item = Result<Record, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            if self.rest.is_empty() {
                return None;
            }
            let extra = self.rest.len();
            self.rest = Bytes::new();
            return Some(Err(DecodeErrorKind::TrailingBytes(extra).into()));
        }
        self.left -= 1;
        let result = self.decode_one();
        if result.is_err() {
            self.left = 0;
            self.rest = Bytes::new();
        }
        Some(result)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left + 1))
    }
}

fn take_varint(buf: &mut Bytes) -> Result<i32, DecodeError> {
    crate::wire::parse(buf, 1, varint::varint)
}

/// A varint-length-prefixed byte string; -1 is null.
fn take_bytes(buf: &mut Bytes) -> Result<Option<Bytes>, DecodeError> {
    let len = take_varint(buf)?;
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
