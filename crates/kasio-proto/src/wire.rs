//! Primitive encodings of the Kafka protocol, called by the generated message code.
//!
//! Decoders take `&mut Bytes` and advance it; strings and byte fields are sliced out of
//! it without copying. Every length and count is checked against what remains before
//! anything is allocated.

use crate::{
    ByteStr, Uuid,
    error::{DecodeError, DecodeErrorKind, EncodeError},
    tagged::RawTaggedField,
    varint,
};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use nom::IResult;

/// Upper bound, in bytes, on what is reserved ahead of decoding an array, whatever its count
/// says; past it the vector grows only as elements actually decode.
const MAX_PREALLOC_BYTES: usize = 4096;

/// Runs a nom parser over the front of `buf` and advances past what it consumed.
#[inline]
pub(crate) fn parse<T>(
    buf: &mut Bytes,
    needed: usize,
    p: impl for<'a> FnOnce(&'a [u8]) -> IResult<&'a [u8], T>,
) -> Result<T, DecodeError> {
    let len = buf.len();
    match p(buf.as_ref()) {
        Ok((rest, v)) => {
            let used = len - rest.len();
            buf.advance(used);
            Ok(v)
        }
        Err(nom::Err::Error(e) | nom::Err::Failure(e))
            if e.code == nom::error::ErrorKind::TooLarge =>
        {
            Err(DecodeErrorKind::VarintTooLong.into())
        }
        Err(_) => Err(DecodeError::truncated(needed, len)),
    }
}

macro_rules! fixed {
    ($name:ident, $t:ty, $get:ident) => {
        #[doc = concat!("Reads a big-endian `", stringify!($t), "`.")]
        #[inline]
        pub(crate) fn $name(buf: &mut Bytes) -> Result<$t, DecodeError> {
            // A length check and a plain read: the hottest path of message decoding.
            if buf.len() < size_of::<$t>() {
                return Err(DecodeError::truncated(size_of::<$t>(), buf.len()));
            }
            Ok(buf.$get())
        }
    };
}

fixed!(get_i8, i8, get_i8);
fixed!(get_i16, i16, get_i16);
fixed!(get_u16, u16, get_u16);
fixed!(get_i32, i32, get_i32);
fixed!(get_i64, i64, get_i64);
fixed!(get_f64, f64, get_f64);
// No current spec has a uint32 field; kept so a spec that adds one still generates.
#[allow(dead_code)]
mod unused {
    use super::*;
    fixed!(get_u32, u32, get_u32);
}
#[allow(unused_imports)]
pub(crate) use unused::get_u32;

/// Reads a boolean; any non-zero byte is true, as the Java client reads it.
#[inline]
pub(crate) fn get_bool(buf: &mut Bytes) -> Result<bool, DecodeError> {
    get_i8(buf).map(|b| b != 0)
}

/// Reads an unsigned varint.
#[inline]
pub(crate) fn get_uvarint(buf: &mut Bytes) -> Result<u32, DecodeError> {
    parse(buf, 1, varint::uvarint)
}

/// Reads a 16-byte UUID.
#[inline]
pub(crate) fn get_uuid(buf: &mut Bytes) -> Result<Uuid, DecodeError> {
    if buf.len() < 16 {
        return Err(DecodeError::truncated(16, buf.len()));
    }
    Ok(Uuid::from_u128(buf.get_u128()))
}

/// Reads a length prefix: `None` for null (-1), else the length checked against the input.
#[inline]
fn get_len(buf: &mut Bytes, flexible: bool, wide: bool) -> Result<Option<usize>, DecodeError> {
    let n: i64 = if flexible {
        i64::from(get_uvarint(buf)?) - 1
    } else if wide {
        i64::from(get_i32(buf)?)
    } else {
        i64::from(get_i16(buf)?)
    };
    if n == -1 {
        return Ok(None);
    }
    let Ok(len) = usize::try_from(n) else {
        return Err(DecodeErrorKind::InvalidLength(n).into());
    };
    if len > buf.len() {
        return Err(DecodeErrorKind::LengthExceedsInput {
            length: len,
            remaining: buf.len(),
        }
        .into());
    }
    Ok(Some(len))
}

/// Reads a nullable string.
pub(crate) fn get_nullable_string(
    buf: &mut Bytes,
    flexible: bool,
) -> Result<Option<ByteStr>, DecodeError> {
    let Some(len) = get_len(buf, flexible, false)? else {
        return Ok(None);
    };
    ByteStr::from_utf8(buf.split_to(len))
        .map(Some)
        .map_err(|_| DecodeErrorKind::InvalidUtf8.into())
}

/// Reads a string that may not be null.
pub(crate) fn get_string(buf: &mut Bytes, flexible: bool) -> Result<ByteStr, DecodeError> {
    get_nullable_string(buf, flexible)?.ok_or_else(|| DecodeErrorKind::UnexpectedNull.into())
}

/// Reads nullable bytes.
pub(crate) fn get_nullable_bytes(
    buf: &mut Bytes,
    flexible: bool,
) -> Result<Option<Bytes>, DecodeError> {
    Ok(get_len(buf, flexible, true)?.map(|len| buf.split_to(len)))
}

/// Reads bytes that may not be null.
pub(crate) fn get_bytes(buf: &mut Bytes, flexible: bool) -> Result<Bytes, DecodeError> {
    get_nullable_bytes(buf, flexible)?.ok_or_else(|| DecodeErrorKind::UnexpectedNull.into())
}

/// Reads a nullable array, each element with `elem`.
pub(crate) fn get_nullable_array<T>(
    buf: &mut Bytes,
    flexible: bool,
    mut elem: impl FnMut(&mut Bytes) -> Result<T, DecodeError>,
) -> Result<Option<Vec<T>>, DecodeError> {
    // A count is bounded by the bytes left, as the Java client bounds it.
    let Some(count) = get_len(buf, flexible, true)? else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(count.min(MAX_PREALLOC_BYTES / size_of::<T>().max(1)));
    for _ in 0..count {
        out.push(elem(buf)?);
    }
    Ok(Some(out))
}

/// Reads an array that may not be null.
pub(crate) fn get_array<T>(
    buf: &mut Bytes,
    flexible: bool,
    elem: impl FnMut(&mut Bytes) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    get_nullable_array(buf, flexible, elem)?.ok_or_else(|| DecodeErrorKind::UnexpectedNull.into())
}

/// Reads the presence marker of a nullable struct.
pub(crate) fn get_present(buf: &mut Bytes) -> Result<bool, DecodeError> {
    match get_i8(buf)? {
        -1 => Ok(false),
        1 => Ok(true),
        _ => Err(DecodeErrorKind::InvalidValue("nullable struct marker").into()),
    }
}

/// Reads the header of one tagged field and splits off its value.
pub(crate) fn get_tagged_field(buf: &mut Bytes) -> Result<(u32, Bytes), DecodeError> {
    let tag = get_uvarint(buf)?;
    let len = get_uvarint(buf)? as usize;
    if len > buf.len() {
        return Err(DecodeErrorKind::LengthExceedsInput {
            length: len,
            remaining: buf.len(),
        }
        .into());
    }
    Ok((tag, buf.split_to(len)))
}

/// Reads a tagged-field section of which no tag is known.
pub(crate) fn get_unknown_tagged(
    buf: &mut Bytes,
    unknown: &mut Vec<RawTaggedField>,
) -> Result<(), DecodeError> {
    let n = get_uvarint(buf)?;
    for _ in 0..n {
        let (tag, data) = get_tagged_field(buf)?;
        unknown.push(RawTaggedField { tag, data });
    }
    Ok(())
}

/// Decodes a tagged field's value and checks that it used exactly its bytes.
pub(crate) fn decode_tagged<T>(
    mut data: Bytes,
    f: impl FnOnce(&mut Bytes) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    let v = f(&mut data)?;
    if data.is_empty() {
        Ok(v)
    } else {
        Err(DecodeErrorKind::TrailingBytes(data.len()).into())
    }
}

/// Writes an unsigned varint.
#[inline]
pub(crate) fn put_uvarint(buf: &mut BytesMut, v: u32) {
    varint::put_uvarint(buf, v);
}

/// Writes a boolean.
#[inline]
pub(crate) fn put_bool(buf: &mut BytesMut, v: bool) {
    buf.put_u8(u8::from(v));
}

/// Writes a UUID.
#[inline]
pub(crate) fn put_uuid(buf: &mut BytesMut, v: &Uuid) {
    buf.put_slice(v.as_bytes());
}

fn put_len(
    buf: &mut BytesMut,
    len: Option<usize>,
    flexible: bool,
    wide: bool,
) -> Result<(), EncodeError> {
    let max = if wide {
        i32::MAX as usize
    } else {
        i16::MAX as usize
    };
    match len {
        None if flexible => put_uvarint(buf, 0),
        None if wide => buf.put_i32(-1),
        None => buf.put_i16(-1),
        Some(n) if n > max => return Err(EncodeError::TooLong { length: n, max }),
        Some(n) if flexible => put_uvarint(buf, n as u32 + 1),
        Some(n) if wide => buf.put_i32(n as i32),
        Some(n) => buf.put_i16(n as i16),
    }
    Ok(())
}

/// Writes a nullable string.
pub(crate) fn put_nullable_string(
    buf: &mut BytesMut,
    v: Option<&str>,
    flexible: bool,
) -> Result<(), EncodeError> {
    put_len(buf, v.map(str::len), flexible, false)?;
    if let Some(s) = v {
        buf.put_slice(s.as_bytes());
    }
    Ok(())
}

/// Writes a string.
pub(crate) fn put_string(buf: &mut BytesMut, v: &str, flexible: bool) -> Result<(), EncodeError> {
    put_nullable_string(buf, Some(v), flexible)
}

/// Writes nullable bytes.
pub(crate) fn put_nullable_bytes(
    buf: &mut BytesMut,
    v: Option<&[u8]>,
    flexible: bool,
) -> Result<(), EncodeError> {
    put_len(buf, v.map(<[u8]>::len), flexible, true)?;
    if let Some(b) = v {
        buf.put_slice(b);
    }
    Ok(())
}

/// Writes bytes.
pub(crate) fn put_bytes(buf: &mut BytesMut, v: &[u8], flexible: bool) -> Result<(), EncodeError> {
    put_nullable_bytes(buf, Some(v), flexible)
}

/// Writes a nullable array, each element with `elem`.
pub(crate) fn put_nullable_array<T>(
    buf: &mut BytesMut,
    v: Option<&[T]>,
    flexible: bool,
    mut elem: impl FnMut(&mut BytesMut, &T) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    put_len(buf, v.map(<[T]>::len), flexible, true)?;
    for e in v.unwrap_or_default() {
        elem(buf, e)?;
    }
    Ok(())
}

/// Writes an array.
pub(crate) fn put_array<T>(
    buf: &mut BytesMut,
    v: &[T],
    flexible: bool,
    elem: impl FnMut(&mut BytesMut, &T) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    put_nullable_array(buf, Some(v), flexible, elem)
}

/// Collects a struct's tagged fields, known and unknown, and writes them in tag order.
pub(crate) struct TaggedWriter<'a> {
    known: Vec<(u32, BytesMut)>,
    unknown: &'a [RawTaggedField],
}

impl<'a> TaggedWriter<'a> {
    pub(crate) fn new(unknown: &'a [RawTaggedField]) -> Self {
        Self {
            known: Vec::new(),
            unknown,
        }
    }

    /// Encodes one known field with `f` and keeps it for [`TaggedWriter::finish`].
    pub(crate) fn field(
        &mut self,
        tag: u32,
        f: impl FnOnce(&mut BytesMut) -> Result<(), EncodeError>,
    ) -> Result<(), EncodeError> {
        let mut data = BytesMut::new();
        f(&mut data)?;
        self.known.push((tag, data));
        Ok(())
    }

    pub(crate) fn finish(self, buf: &mut BytesMut) -> Result<(), EncodeError> {
        let mut all: Vec<(u32, &[u8])> = self
            .known
            .iter()
            .map(|(t, d)| (*t, &d[..]))
            .chain(self.unknown.iter().map(|f| (f.tag, &f.data[..])))
            .collect();
        all.sort_by_key(|(t, _)| *t);
        put_uvarint(buf, all.len() as u32);
        for (tag, data) in all {
            put_uvarint(buf, tag);
            put_uvarint(
                buf,
                u32::try_from(data.len()).map_err(|_| EncodeError::TooLong {
                    length: data.len(),
                    max: u32::MAX as usize,
                })?,
            );
            buf.put_slice(data);
        }
        Ok(())
    }
}

/// Writes a tagged-field section holding only unknown fields, or refuses them where the
/// version has no tagged fields.
pub(crate) fn put_unknown_tagged(
    buf: &mut BytesMut,
    unknown: &[RawTaggedField],
    flexible: bool,
    version: i16,
) -> Result<(), EncodeError> {
    if flexible {
        TaggedWriter::new(unknown).finish(buf)
    } else if unknown.is_empty() {
        Ok(())
    } else {
        Err(EncodeError::TaggedFieldsNotInVersion { version })
    }
}
