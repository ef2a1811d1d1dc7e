//! gzip, through flate2.

use super::{Compression, corrupt, read_limited};
use crate::error::{DecodeError, EncodeError};
use bytes::{BufMut, Bytes, BytesMut};
use flate2::{read::MultiGzDecoder, write::GzEncoder};
use std::io::Write;

pub(super) fn compress(input: &[u8], out: &mut BytesMut) -> Result<(), EncodeError> {
    let mut enc = GzEncoder::new(out.writer(), flate2::Compression::default());
    enc.write_all(input)
        .and_then(|()| enc.finish().map(drop))
        .map_err(|e| EncodeError::Compression(format!("gzip: {e}")))
}

pub(super) fn decompress(input: &[u8], limit: usize) -> Result<Bytes, DecodeError> {
    if input.is_empty() {
        return Err(corrupt(Compression::Gzip, "empty input"));
    }
    read_limited(Compression::Gzip, MultiGzDecoder::new(input), limit)
}
