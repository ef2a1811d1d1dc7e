//! Any bytes through each codec's decompressor: an error or at most the limit, never a panic.
#![no_main]

use kasio_proto::compression::Compression;
use libfuzzer_sys::fuzz_target;

const LIMIT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let [codec, rest @ ..] = data else { return };
    let Ok(codec) = Compression::from_id(codec % 5) else { return };
    if let Ok(out) = codec.decompress(rest, LIMIT) {
        assert!(out.len() <= LIMIT);
    }
});
