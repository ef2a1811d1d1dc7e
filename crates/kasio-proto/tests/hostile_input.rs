//! Truncated, corrupted and random input: every decoder returns an error or a value, never
//! panics, and stops.

#![allow(clippy::unwrap_used)]

use bytes::{Bytes, BytesMut};
use kasio_proto::{
    AnyRequest, AnyResponse, ApiKey, Encode,
    compression::Compression,
    frame::{self, FrameDecoder},
    random::Rng,
    records::{Batch, BatchBuilder, BatchOptions, Batches},
};
use proptest::prelude::*;

/// Decodes `data` every way kasio can, checking only that nothing panics.
fn decode_everything(data: &Bytes) {
    for &key in ApiKey::ALL {
        for version in key.versions().iter() {
            let _ = AnyRequest::decode(key, version, &mut data.clone());
            let _ = AnyResponse::decode(key, version, &mut data.clone());
        }
    }
    let _ = frame::decode_request(data.clone());
    drain_batches(data.clone());
    let _ = FrameDecoder::new(1 << 20).decode(&mut BytesMut::from(&data[..]));
}

fn drain_batches(data: Bytes) -> usize {
    let mut n = 0;
    for batch in Batches::new(data) {
        match batch {
            Ok(Batch::V2(b)) => {
                if let Ok(records) = b.records_with_limit(1 << 20) {
                    for r in records.flatten() {
                        n += r.headers().count();
                    }
                }
            }
            Ok(Batch::Legacy(l)) => n += l.records().map(|r| r.len()).unwrap_or(0),
            Ok(_) | Err(_) => {}
        }
    }
    n
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        decode_everything(&Bytes::from(data));
    }

    #[test]
    fn random_bytes_behind_a_valid_batch_header_never_panic(
        tail in proptest::collection::vec(any::<u8>(), 0..300),
        codec in 0u8..5,
    ) {
        // A real header with a valid CRC over random records, so iteration reaches the records.
        let mut b = BatchBuilder::new(BatchOptions { compression: Compression::from_id(codec).unwrap(), ..Default::default() });
        b.append(0, None, Some(&tail), kasio_proto::records::NO_HEADERS).unwrap();
        let good = b.finish().unwrap();
        let mut bad = BytesMut::from(&good[..61]);
        bad.extend_from_slice(&tail);
        let len = (bad.len() - 12) as i32;
        bad[8..12].copy_from_slice(&len.to_be_bytes());
        let crc = crc32c::crc32c(&bad[21..]);
        bad[17..21].copy_from_slice(&crc.to_be_bytes());
        drain_batches(bad.freeze());
    }
}

/// Every strict prefix of a valid encoding must fail to decode (the decoder needs bytes past
/// it), and decoding must not panic on any of them.
#[test]
fn every_truncation_of_every_message_is_an_error() {
    let mut checked = 0;
    for &key in ApiKey::ALL {
        for version in key.versions().iter() {
            for seed in 0..3 {
                let mut rng = Rng::new(seed * 7919 + key.as_i16() as u64);
                let req = AnyRequest::random(key, &mut rng, version);
                let resp = AnyResponse::random(key, &mut rng, version);
                let mut rb = BytesMut::new();
                req.encode(version, &mut rb).unwrap();
                let mut pb = BytesMut::new();
                resp.encode(version, &mut pb).unwrap();
                let (rb, pb) = (rb.freeze(), pb.freeze());
                for cut in 0..rb.len() {
                    assert!(
                        AnyRequest::decode(key, version, &mut rb.slice(..cut)).is_err(),
                        "{key:?} v{version} request cut at {cut}"
                    );
                }
                for cut in 0..pb.len() {
                    assert!(
                        AnyResponse::decode(key, version, &mut pb.slice(..cut)).is_err(),
                        "{key:?} v{version} response cut at {cut}"
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 1000, "{checked}");
}

/// Flipping bytes of valid encodings never panics (the result may be an error or a value).
#[test]
fn corrupted_messages_never_panic() {
    for &key in ApiKey::ALL {
        for version in key.versions().iter() {
            let mut rng = Rng::new(key.as_i16() as u64 ^ (version as u64) << 20);
            let mut buf = BytesMut::new();
            AnyResponse::random(key, &mut rng, version)
                .encode(version, &mut buf)
                .unwrap();
            for _ in 0..20 {
                let mut bad = buf.clone();
                if bad.is_empty() {
                    break;
                }
                let at = rng.below(bad.len() as u64) as usize;
                bad[at] = rng.next_u64() as u8;
                let _ = AnyResponse::decode(key, version, &mut bad.freeze());
            }
        }
    }
}

#[test]
fn errors_name_the_field_that_failed() {
    use kasio_proto::{Decode, messages::MetadataResponse};
    // throttle (4 bytes), then a brokers count of 1 and a node id cut short.
    let bytes = Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0, 1, 0, 0]);
    let err = MetadataResponse::decode(4, &mut bytes.clone()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Brokers.NodeId: truncated: needed 4 bytes, 2 remaining"
    );
}
