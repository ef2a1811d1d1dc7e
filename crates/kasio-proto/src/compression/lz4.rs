//! LZ4 in the standard frame format, which Kafka uses from message format v1 on.

use super::{Compression, corrupt, read_limited};
use crate::error::{DecodeError, EncodeError};
use bytes::{BufMut, Bytes, BytesMut};
use lz4_flex::frame::{BlockMode, BlockSize, FrameDecoder, FrameEncoder, FrameInfo};
use std::io::Write;

pub(super) fn compress(input: &[u8], out: &mut BytesMut) -> Result<(), EncodeError> {
    // 64 KiB independent blocks, as the Java client writes them.
    let info = FrameInfo::new()
        .block_size(BlockSize::Max64KB)
        .block_mode(BlockMode::Independent);
    let mut enc = FrameEncoder::with_frame_info(info, out.writer());
    enc.write_all(input)
        .map_err(|e| EncodeError::Compression(format!("lz4: {e}")))?;
    enc.finish()
        .map(drop)
        .map_err(|e| EncodeError::Compression(format!("lz4: {e}")))
}

pub(super) fn decompress(input: &[u8], limit: usize) -> Result<Bytes, DecodeError> {
    if input.is_empty() {
        return Err(corrupt(Compression::Lz4, "empty input"));
    }
    read_limited(Compression::Lz4, FrameDecoder::new(input), limit)
}
