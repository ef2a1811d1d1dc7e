//! The four compression codecs of Kafka record batches.
//!
//! Decompression writes into a buffer that may never exceed a caller-given limit, so a small
//! compressed input cannot expand into unbounded memory (a "compression bomb" is an error).

mod gzip;
mod lz4;
mod snappy;
mod zstd;

use crate::error::{DecodeError, DecodeErrorKind, EncodeError};
use bytes::{Bytes, BytesMut};
use std::io::Read;

/// The default cap on the decompressed size of one batch: 64 MiB.
pub const DEFAULT_MAX_DECOMPRESSED: usize = 64 << 20;

/// A record batch's compression codec (the low three bits of its attributes).
///
/// ```
/// use kasio_proto::compression::Compression;
/// use bytes::BytesMut;
/// let mut out = BytesMut::new();
/// Compression::Zstd.compress(b"hello hello hello hello", &mut out).unwrap();
/// let back = Compression::Zstd.decompress(&out, 1 << 20).unwrap();
/// assert_eq!(&back[..], b"hello hello hello hello");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Compression {
    /// Uncompressed.
    #[default]
    None,
    /// gzip (RFC 1952).
    Gzip,
    /// snappy, in the xerial framing the Java client writes (raw snappy also read).
    Snappy,
    /// LZ4 in the standard frame format.
    Lz4,
    /// Zstandard.
    Zstd,
}

impl Compression {
    /// The codec with this attribute id.
    ///
    /// # Errors
    /// [`DecodeErrorKind::UnknownCompression`] for ids other than 0 to 4.
    pub fn from_id(id: u8) -> Result<Self, DecodeError> {
        Ok(match id {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            other => return Err(DecodeErrorKind::UnknownCompression(other).into()),
        })
    }

    /// The codec's attribute id.
    pub const fn id(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// The codec's name as `compression.type` spells it.
    pub const fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }

    /// The codec named as `compression.type` names it.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::None, Self::Gzip, Self::Snappy, Self::Lz4, Self::Zstd]
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(name))
    }

    /// Appends `input` compressed with this codec to `out`.
    ///
    /// # Errors
    /// [`EncodeError::Compression`] if the codec fails.
    pub fn compress(self, input: &[u8], out: &mut BytesMut) -> Result<(), EncodeError> {
        match self {
            Compression::None => {
                out.extend_from_slice(input);
                Ok(())
            }
            Compression::Gzip => gzip::compress(input, out),
            Compression::Snappy => snappy::compress(input, out),
            Compression::Lz4 => lz4::compress(input, out),
            Compression::Zstd => zstd::compress(input, out),
        }
    }

    /// Decompresses `input`, failing if the output would exceed `limit` bytes.
    ///
    /// # Errors
    /// [`DecodeErrorKind::Decompression`] for corrupt input,
    /// [`DecodeErrorKind::LengthExceedsLimit`] when the output passes `limit`.
    pub fn decompress(self, input: &[u8], limit: usize) -> Result<Bytes, DecodeError> {
        match self {
            Compression::None => {
                if input.len() > limit {
                    return Err(too_large(input.len(), limit));
                }
                Ok(Bytes::copy_from_slice(input))
            }
            Compression::Gzip => gzip::decompress(input, limit),
            Compression::Snappy => snappy::decompress(input, limit),
            Compression::Lz4 => lz4::decompress(input, limit),
            Compression::Zstd => zstd::decompress(input, limit),
        }
    }
}

fn too_large(length: usize, limit: usize) -> DecodeError {
    DecodeErrorKind::LengthExceedsLimit { length, limit }.into()
}

fn corrupt(codec: Compression, e: impl std::fmt::Display) -> DecodeError {
    DecodeErrorKind::Decompression(format!("{}: {e}", codec.name())).into()
}

/// Reads a decompressing stream to its end, never holding more than `limit` bytes.
fn read_limited(codec: Compression, reader: impl Read, limit: usize) -> Result<Bytes, DecodeError> {
    let mut out = Vec::new();
    let read = reader
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| corrupt(codec, e))?;
    if read > limit {
        return Err(too_large(read, limit));
    }
    Ok(out.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    #[test]
    fn every_codec_round_trips() {
        let input: Vec<u8> = (0..200_000u32)
            .map(|i| (i % 251) as u8 ^ (i / 7) as u8)
            .collect();
        for codec in ALL {
            let mut out = BytesMut::new();
            codec.compress(&input, &mut out).unwrap();
            let back = codec.decompress(&out, input.len()).unwrap();
            assert_eq!(&back[..], &input[..], "{codec:?}");
        }
    }

    #[test]
    fn a_compression_bomb_is_refused() {
        let input = vec![0u8; 8 << 20];
        for codec in ALL {
            let mut out = BytesMut::new();
            codec.compress(&input, &mut out).unwrap();
            let err = codec.decompress(&out, 1 << 20).unwrap_err();
            assert!(
                matches!(err.kind(), DecodeErrorKind::LengthExceedsLimit { .. }),
                "{codec:?}: {err}"
            );
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut seed = 1u64;
        for len in 0..300 {
            let junk: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                    (seed >> 33) as u8
                })
                .collect();
            for codec in ALL {
                let _ = codec.decompress(&junk, 1 << 16);
            }
        }
    }
}
