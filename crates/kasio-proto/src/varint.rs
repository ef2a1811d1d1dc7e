//! Variable-length integers: unsigned LEB128 and zigzag, as Kafka writes them.

use bytes::BufMut;
use nom::{IResult, Parser, error::ErrorKind};

/// Parses an unsigned varint of at most 5 bytes (32 bits).
#[inline]
pub(crate) fn uvarint(input: &[u8]) -> IResult<&[u8], u32> {
    uvarint_n::<5>(input).map(|(rest, v)| (rest, v as u32))
}

/// Parses an unsigned varint of at most 10 bytes (64 bits).
#[inline]
pub(crate) fn uvarlong(input: &[u8]) -> IResult<&[u8], u64> {
    uvarint_n::<10>(input)
}

/// Parses a zigzag-encoded signed 32-bit varint.
#[inline]
pub(crate) fn varint(input: &[u8]) -> IResult<&[u8], i32> {
    uvarint
        .map(|v| ((v >> 1) as i32) ^ -((v & 1) as i32))
        .parse(input)
}

/// Parses a zigzag-encoded signed 64-bit varint.
#[inline]
pub(crate) fn varlong(input: &[u8]) -> IResult<&[u8], i64> {
    uvarlong
        .map(|v| ((v >> 1) as i64) ^ -((v & 1) as i64))
        .parse(input)
}

#[inline]
fn uvarint_n<const MAX: usize>(input: &[u8]) -> IResult<&[u8], u64> {
    // Most lengths and deltas fit in one or two bytes.
    match input {
        [b0, rest @ ..] if *b0 < 0x80 => return Ok((rest, u64::from(*b0))),
        [b0, b1, rest @ ..] if *b1 < 0x80 => {
            return Ok((rest, u64::from(b0 & 0x7f) | (u64::from(*b1) << 7)));
        }
        _ => {}
    }
    let mut value = 0u64;
    for (i, &b) in input.iter().enumerate().take(MAX) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((&input[i + 1..], value));
        }
    }
    let kind = if input.len() >= MAX {
        ErrorKind::TooLarge
    } else {
        ErrorKind::Eof
    };
    Err(nom::Err::Error(nom::error::Error::new(input, kind)))
}

/// Writes an unsigned varint.
#[inline]
pub(crate) fn put_uvarint(buf: &mut impl BufMut, v: u32) {
    put_uvarlong(buf, u64::from(v));
}

/// Writes an unsigned 64-bit varint.
#[inline]
pub(crate) fn put_uvarlong(buf: &mut impl BufMut, mut v: u64) {
    if v < 0x80 {
        buf.put_u8(v as u8);
        return;
    }
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

/// Writes a zigzag-encoded signed 32-bit varint.
#[cfg(test)]
pub(crate) fn put_varint(buf: &mut impl BufMut, v: i32) {
    put_uvarint(buf, ((v << 1) ^ (v >> 31)) as u32);
}

/// Writes a zigzag-encoded signed 64-bit varint.
#[cfg(test)]
pub(crate) fn put_varlong(buf: &mut impl BufMut, v: i64) {
    put_uvarlong(buf, ((v << 1) ^ (v >> 63)) as u64);
}

/// How many bytes [`put_varint`] writes for `v`.
#[inline]
pub(crate) fn varint_len(v: i32) -> usize {
    uvarlong_len(u64::from(((v << 1) ^ (v >> 31)) as u32))
}

/// How many bytes [`put_varlong`] writes for `v`.
#[inline]
pub(crate) fn varlong_len(v: i64) -> usize {
    uvarlong_len(((v << 1) ^ (v >> 63)) as u64)
}

#[inline]
fn uvarlong_len(v: u64) -> usize {
    // Lengths and deltas are nearly always one or two bytes; skip the division for them.
    if v < 1 << 7 {
        return 1;
    }
    if v < 1 << 14 {
        return 2;
    }
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn zigzag_round_trips(v: i64, w: i32) {
            let mut buf = Vec::new();
            put_varlong(&mut buf, v);
            prop_assert_eq!(buf.len(), varlong_len(v));
            prop_assert_eq!(varlong(&buf).map(|(r, x)| (r.len(), x)), Ok((0, v)));
            let mut buf = Vec::new();
            put_varint(&mut buf, w);
            prop_assert_eq!(buf.len(), varint_len(w));
            prop_assert_eq!(varint(&buf).map(|(r, x)| (r.len(), x)), Ok((0, w)));
        }
    }

    #[test]
    fn known_encodings() {
        let mut buf = Vec::new();
        put_varint(&mut buf, -1);
        put_varint(&mut buf, 1);
        put_varint(&mut buf, 300);
        assert_eq!(buf, [0x01, 0x02, 0xd8, 0x04]);
    }

    #[test]
    fn overlong_and_truncated_are_errors() {
        assert!(uvarint(&[0xff; 6]).is_err());
        assert!(uvarint(&[0x80, 0x80]).is_err());
        assert!(uvarlong(&[0xff; 11]).is_err());
    }
}
