//! Records inside a v2 batch, decoded lazily and without copying.
//!
//! One parser over `&[u8]` serves both ways of reading: [`RecordView`]s borrow the batch's
//! buffer (no allocation, no reference counting: the fast path), and owned [`Record`]s hold
//! `Bytes` slices of the same buffer, for keeping records past the batch.

use crate::{
    ByteStr,
    error::{DecodeError, DecodeErrorKind},
    varint,
};
use bytes::Bytes;

/// One record, borrowing the batch's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordView<'a> {
    /// The record's offset.
    pub offset: i64,
    /// The record's timestamp (milliseconds since the Unix epoch).
    pub timestamp: i64,
    /// The key, or `None` for a null key.
    pub key: Option<&'a [u8]>,
    /// The value, or `None` for a tombstone.
    pub value: Option<&'a [u8]>,
    headers: &'a [u8],
    header_count: usize,
}

/// One record header, borrowing the batch's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderView<'a> {
    /// The header's key.
    pub key: &'a str,
    /// The header's value, or `None` for null.
    pub value: Option<&'a [u8]>,
}

impl<'a> RecordView<'a> {
    /// How many headers the record has.
    pub fn header_count(&self) -> usize {
        self.header_count
    }

    /// The record's headers, decoded as they are iterated.
    pub fn headers(&self) -> HeaderViews<'a> {
        HeaderViews {
            rest: self.headers,
            left: self.header_count,
        }
    }

    /// The record as owned `Bytes` slices of `buffer`, the buffer this view borrows from.
    pub fn to_record(&self, buffer: &Bytes) -> Record {
        let slice = |s: &[u8]| {
            if s.is_empty() {
                Bytes::new()
            } else {
                buffer.slice_ref(s)
            }
        };
        Record {
            offset: self.offset,
            timestamp: self.timestamp,
            key: self.key.map(slice),
            value: self.value.map(slice),
            headers: slice(self.headers),
            header_count: self.header_count,
        }
    }
}

/// An iterator over a record view's headers.
#[derive(Debug, Clone)]
pub struct HeaderViews<'a> {
    rest: &'a [u8],
    left: usize,
}

impl<'a> Iterator for HeaderViews<'a> {
    type Item = Result<HeaderView<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let result = parse_header(&mut self.rest);
        if result.is_err() {
            self.left = 0;
        }
        Some(result)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left))
    }
}

fn parse_header<'a>(rest: &mut &'a [u8]) -> Result<HeaderView<'a>, DecodeError> {
    let key = take_bytes(rest)
        .map_err(|e| e.at("header key"))?
        .ok_or_else(|| DecodeError::new(DecodeErrorKind::UnexpectedNull).at("header key"))?;
    let key = std::str::from_utf8(key)
        .map_err(|_| DecodeError::new(DecodeErrorKind::InvalidUtf8).at("header key"))?;
    let value = take_bytes(rest).map_err(|e| e.at("header value"))?;
    Ok(HeaderView { key, value })
}

/// One record, holding `Bytes` slices of the batch's buffer (not copies).
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

/// One record header, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The header's key.
    pub key: ByteStr,
    /// The header's value, or `None` for null.
    pub value: Option<Bytes>,
}

impl Record {
    /// A record without headers, as the legacy formats hold them.
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
            data: self.headers.clone(),
            consumed: 0,
            left: self.header_count,
        }
    }
}

/// An iterator over a record's headers, as owned values.
#[derive(Debug, Clone)]
pub struct Headers {
    data: Bytes,
    consumed: usize,
    left: usize,
}

impl Iterator for Headers {
    type Item = Result<Header, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let mut rest = &self.data[self.consumed..];
        let result = parse_header(&mut rest).map(|h| Header {
            key: ByteStr::from_utf8(self.data.slice_ref(h.key.as_bytes())).unwrap_or_default(),
            value: h.value.map(|v| {
                if v.is_empty() {
                    Bytes::new()
                } else {
                    self.data.slice_ref(v)
                }
            }),
        });
        self.consumed = self.data.len() - rest.len();
        if result.is_err() {
            self.left = 0;
        }
        Some(result)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left))
    }
}

/// The records of one batch (decompressed if it was compressed), decoded as they are
/// iterated: as owned [`Record`]s by `Iterator`, or as borrowed [`RecordView`]s by
/// [`Records::views`].
///
/// Each record's length prefix bounds its fields; a malformed record, or a count that
/// disagrees with the bytes, yields an error and ends the iteration.
#[derive(Debug, Clone)]
pub struct Records {
    data: Bytes,
    consumed: usize,
    left: usize,
    base_offset: i64,
    base_timestamp: i64,
}

impl Records {
    pub(crate) fn new(data: Bytes, count: usize, base_offset: i64, base_timestamp: i64) -> Self {
        Self {
            data,
            consumed: 0,
            left: count,
            base_offset,
            base_timestamp,
        }
    }

    /// The records not yet iterated, as views borrowing the buffer.
    ///
    /// ```
    /// use kasio_proto::records::{BatchBuilder, BatchOptions, RecordBatch};
    /// let mut b = BatchBuilder::new(BatchOptions::default());
    /// b.append(0, Some(b"k"), Some(b"v"), &[("h", &b"x"[..])])?;
    /// let batch = RecordBatch::decode(&mut b.finish()?)?;
    /// let records = batch.records()?;
    /// for r in records.views() {
    ///     let r = r?;
    ///     assert_eq!(r.value, Some(&b"v"[..]));
    ///     assert_eq!(r.headers().next().unwrap()?.key, "h");
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn views(&self) -> RecordViews<'_> {
        RecordViews {
            rest: &self.data[self.consumed..],
            left: self.left,
            base_offset: self.base_offset,
            base_timestamp: self.base_timestamp,
        }
    }

    /// The buffer the records live in (for [`RecordView::to_record`]).
    pub fn buffer(&self) -> &Bytes {
        &self.data
    }
}

impl Iterator for Records {
    type Item = Result<Record, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut views = self.views();
        let item = views.next()?;
        let (left, rest_len) = (views.left, views.rest.len());
        let result = item.map(|v| v.to_record(&self.data));
        self.left = left;
        self.consumed = self.data.len() - rest_len;
        Some(result)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left + 1))
    }
}

/// An iterator over records as views borrowing their batch's buffer.
#[derive(Debug, Clone)]
pub struct RecordViews<'a> {
    rest: &'a [u8],
    left: usize,
    base_offset: i64,
    base_timestamp: i64,
}

impl<'a> RecordViews<'a> {
    /// The bytes of the records not yet iterated.
    #[must_use]
    pub fn remaining_bytes(&self) -> usize {
        self.rest.len()
    }

    /// How many records are not yet iterated, as the batch declares.
    #[must_use]
    pub fn remaining(&self) -> usize {
        self.left
    }

    fn parse_one(&mut self) -> Result<RecordView<'a>, DecodeError> {
        let len = take_varint(&mut self.rest)?;
        let len = usize::try_from(len)
            .map_err(|_| DecodeError::new(DecodeErrorKind::InvalidLength(len.into())))?;
        let Some((mut body, rest)) = self.rest.split_at_checked(len) else {
            return Err(DecodeErrorKind::LengthExceedsInput {
                length: len,
                remaining: self.rest.len(),
            }
            .into());
        };
        self.rest = rest;
        let Some((_attributes, after)) = body.split_first() else {
            return Err(DecodeError::truncated(1, 0).at("attributes"));
        };
        body = after;
        let timestamp_delta =
            take(&mut body, varint::varlong).map_err(|e| e.at("timestamp delta"))?;
        let offset_delta = take_varint(&mut body).map_err(|e| e.at("offset delta"))?;
        let key = take_bytes(&mut body).map_err(|e| e.at("key"))?;
        let value = take_bytes(&mut body).map_err(|e| e.at("value"))?;
        let count = take_varint(&mut body).map_err(|e| e.at("header count"))?;
        // Each header takes at least two bytes, so a count past that is a lie.
        let header_count = usize::try_from(count)
            .ok()
            .filter(|c| *c <= body.len() / 2)
            .ok_or_else(|| {
                DecodeError::new(DecodeErrorKind::InvalidLength(count.into())).at("header count")
            })?;
        Ok(RecordView {
            offset: self.base_offset.wrapping_add(i64::from(offset_delta)),
            timestamp: self.base_timestamp.wrapping_add(timestamp_delta),
            key,
            value,
            headers: body,
            header_count,
        })
    }
}

impl<'a> Iterator for RecordViews<'a> {
    type Item = Result<RecordView<'a>, DecodeError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            if self.rest.is_empty() {
                return None;
            }
            let extra = self.rest.len();
            self.rest = &[];
            return Some(Err(DecodeErrorKind::TrailingBytes(extra).into()));
        }
        self.left -= 1;
        let result = self.parse_one();
        if result.is_err() {
            self.left = 0;
            self.rest = &[];
        }
        Some(result)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left + 1))
    }
}

#[inline]
fn take<'a, T>(
    input: &mut &'a [u8],
    p: impl FnOnce(&'a [u8]) -> nom::IResult<&'a [u8], T>,
) -> Result<T, DecodeError> {
    match p(input) {
        Ok((rest, v)) => {
            *input = rest;
            Ok(v)
        }
        Err(nom::Err::Error(e) | nom::Err::Failure(e))
            if e.code == nom::error::ErrorKind::TooLarge =>
        {
            Err(DecodeErrorKind::VarintTooLong.into())
        }
        Err(_) => Err(DecodeError::truncated(1, input.len())),
    }
}

#[inline]
fn take_varint(input: &mut &[u8]) -> Result<i32, DecodeError> {
    take(input, varint::varint)
}

/// A varint-length-prefixed byte string; -1 is null.
#[inline]
fn take_bytes<'a>(input: &mut &'a [u8]) -> Result<Option<&'a [u8]>, DecodeError> {
    let len = take_varint(input)?;
    if len == -1 {
        return Ok(None);
    }
    let len = usize::try_from(len)
        .map_err(|_| DecodeError::new(DecodeErrorKind::InvalidLength(len.into())))?;
    let Some((bytes, rest)) = input.split_at_checked(len) else {
        return Err(DecodeErrorKind::LengthExceedsInput {
            length: len,
            remaining: input.len(),
        }
        .into());
    };
    *input = rest;
    Ok(Some(bytes))
}
