//! A length or count prefix of 2^31-1 followed by a few bytes must not allocate anything
//! large: every prefix is checked against the bytes that remain first.

#![allow(clippy::unwrap_used)]

use bytes::{BufMut, Bytes, BytesMut};
use kasio_proto::{
    AnyRequest, AnyResponse, ApiKey, Encode,
    frame::FrameDecoder,
    random::Rng,
    records::{Batch, Batches},
};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use std::alloc::System;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes allocated while `f` runs.
fn allocated(f: impl FnOnce()) -> usize {
    let region = Region::new(GLOBAL);
    f();
    region.change().bytes_allocated
}

fn huge_prefix_then(tail: usize) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i32(i32::MAX);
    b.put_bytes(0xab, tail);
    b.freeze()
}

/// The allocator's counts are process-wide, so the checks run one after another in one test.
#[test]
fn huge_prefixes_allocate_nothing_large() {
    a_huge_length_prefix_allocates_nothing_large();
    a_huge_prefix_inside_a_valid_message_allocates_nothing_large();
    a_huge_frame_or_batch_size_allocates_nothing_large();
}

fn a_huge_length_prefix_allocates_nothing_large() {
    let input = huge_prefix_then(10);
    let mut worst = (0, String::new());
    for &key in ApiKey::ALL {
        for version in key.versions().iter() {
            let n = allocated(|| {
                let _ = AnyRequest::decode(key, version, &mut input.clone());
                let _ = AnyResponse::decode(key, version, &mut input.clone());
            });
            if n > worst.0 {
                worst = (n, format!("{key:?} v{version}"));
            }
        }
    }
    println!(
        "worst with a bare prefix: {} allocated {} bytes",
        worst.1, worst.0
    );
    assert!(worst.0 < 1024, "{} allocated {} bytes", worst.1, worst.0);
}

fn a_huge_prefix_inside_a_valid_message_allocates_nothing_large() {
    // Overwrite each position of real encodings with 2^31-1, so the prefix lands on every
    // length and count field in turn.
    let mut worst = (0, String::new());
    for &key in ApiKey::ALL {
        for version in key.versions().iter() {
            let mut rng = Rng::new(u64::from(key.as_i16() as u16));
            let mut buf = BytesMut::new();
            AnyResponse::random(key, &mut rng, version)
                .encode(version, &mut buf)
                .unwrap();
            for at in 0..buf.len().saturating_sub(4) {
                let mut bad = buf.clone();
                bad[at..at + 4].copy_from_slice(&i32::MAX.to_be_bytes());
                let bad = bad.freeze();
                let n = allocated(|| {
                    let _ = AnyResponse::decode(key, version, &mut bad.clone());
                });
                if n > worst.0 {
                    worst = (n, format!("{key:?} v{version} at {at}"));
                }
            }
        }
    }
    println!(
        "worst inside a message: {} allocated {} bytes",
        worst.1, worst.0
    );
    assert!(
        worst.0 < 16 * 1024,
        "{} allocated {} bytes",
        worst.1,
        worst.0
    );
}

fn a_huge_frame_or_batch_size_allocates_nothing_large() {
    let input = huge_prefix_then(10);
    let n = allocated(|| {
        let mut stream = BytesMut::from(&input[..]);
        assert!(FrameDecoder::new(100 << 20).decode(&mut stream).is_err());
    });
    assert!(n < 1024, "frame decoder allocated {n} bytes");

    // A batch whose length field and record count are both 2^31-1.
    let mut batch = BytesMut::new();
    batch.put_i64(0);
    batch.put_i32(i32::MAX);
    batch.put_bytes(0, 61 - 12);
    batch[16] = 2;
    batch[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
    batch.put_bytes(0xab, 10);
    let batch = batch.freeze();
    let n = allocated(|| {
        for b in Batches::new(batch.clone()) {
            if let Ok(Batch::V2(b)) = b {
                let _ = b.records().map(|r| r.count());
            }
        }
    });
    assert!(n < 1024, "batch decoding allocated {n} bytes");
}
