//! snappy: the xerial framing the Java client writes, and plain raw snappy.

use super::{Compression, corrupt, too_large};
use crate::error::{DecodeError, EncodeError};
use bytes::{BufMut, Bytes, BytesMut};

/// The xerial stream header: magic, then version 1 and minimum compatible version 1.
const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
const XERIAL_HEADER_LEN: usize = 16;
/// The block size of the Java client's `SnappyOutputStream`.
const BLOCK: usize = 32 * 1024;

pub(super) fn compress(input: &[u8], out: &mut BytesMut) -> Result<(), EncodeError> {
    out.put_slice(XERIAL_MAGIC);
    out.put_i32(1);
    out.put_i32(1);
    let mut enc = snap::raw::Encoder::new();
    let mut scratch = vec![0; snap::raw::max_compress_len(BLOCK)];
    for block in input.chunks(BLOCK) {
        let n = enc
            .compress(block, &mut scratch)
            .map_err(|e| EncodeError::Compression(format!("snappy: {e}")))?;
        out.put_i32(n as i32);
        out.put_slice(&scratch[..n]);
    }
    Ok(())
}

pub(super) fn decompress(input: &[u8], limit: usize) -> Result<Bytes, DecodeError> {
    if input.len() >= XERIAL_HEADER_LEN && input.starts_with(XERIAL_MAGIC) {
        return decompress_xerial(&input[XERIAL_HEADER_LEN..], limit);
    }
    let mut out = Vec::new();
    raw_block(input, &mut out, limit)?;
    Ok(out.into())
}

fn decompress_xerial(mut input: &[u8], limit: usize) -> Result<Bytes, DecodeError> {
    let mut out = Vec::new();
    while !input.is_empty() {
        let Some((len, rest)) = input.split_first_chunk::<4>() else {
            return Err(corrupt(Compression::Snappy, "truncated block length"));
        };
        let len = i32::from_be_bytes(*len);
        let Ok(len) = usize::try_from(len) else {
            return Err(corrupt(Compression::Snappy, "negative block length"));
        };
        if len > rest.len() {
            return Err(corrupt(Compression::Snappy, "block longer than the input"));
        }
        raw_block(&rest[..len], &mut out, limit)?;
        input = &rest[len..];
    }
    Ok(out.into())
}

/// Decompresses one raw snappy block onto the end of `out`, checking its declared size first.
fn raw_block(block: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(), DecodeError> {
    let n = snap::raw::decompress_len(block).map_err(|e| corrupt(Compression::Snappy, e))?;
    let total = out.len().saturating_add(n);
    if total > limit {
        return Err(too_large(total, limit));
    }
    let start = out.len();
    out.resize(total, 0);
    snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(|e| corrupt(Compression::Snappy, e))?;
    Ok(())
}
