//! Zstandard, through the zstd crate.

use super::{Compression, corrupt, read_limited};
use crate::error::{DecodeError, EncodeError};
use bytes::{Bytes, BytesMut};

/// The level the Java client uses by default.
const LEVEL: i32 = 3;

pub(super) fn compress(input: &[u8], out: &mut BytesMut) -> Result<(), EncodeError> {
    let compressed = ::zstd::bulk::compress(input, LEVEL)
        .map_err(|e| EncodeError::Compression(format!("zstd: {e}")))?;
    out.extend_from_slice(&compressed);
    Ok(())
}

pub(super) fn decompress(input: &[u8], limit: usize) -> Result<Bytes, DecodeError> {
    let decoder = ::zstd::stream::read::Decoder::with_buffer(input)
        .map_err(|e| corrupt(Compression::Zstd, e))?;
    read_limited(Compression::Zstd, decoder, limit)
}
