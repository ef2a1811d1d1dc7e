use super::*;
use crate::{compression::Compression, error::DecodeErrorKind};
use bytes::{Bytes, BytesMut};

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

fn sample(codec: Compression, n: usize) -> Bytes {
    let mut b = BatchBuilder::new(BatchOptions {
        compression: codec,
        producer_id: 42,
        producer_epoch: 3,
        base_sequence: 100,
        ..Default::default()
    });
    for i in 0..n {
        let key = format!("key-{i}");
        let value = vec![i as u8; 100];
        let key_opt = (i % 5 != 0).then_some(key.as_bytes());
        let hv = format!("h{i}");
        b.append(
            1_700_000_000_000 + (i as i64) * 3 - 50,
            key_opt,
            Some(&value),
            &[("trace", Some(hv.as_bytes())), ("null", None)],
        )
        .unwrap();
    }
    b.finish().unwrap()
}

#[test]
fn batches_round_trip_in_every_codec() {
    for codec in CODECS {
        let bytes = sample(codec, 500);
        let mut batches = Batches::new(bytes.clone());
        let Some(Ok(Batch::V2(batch))) = batches.next() else {
            panic!("{codec:?}: no batch")
        };
        assert!(batches.next().is_none());
        assert_eq!(batch.attributes.compression().unwrap(), codec);
        assert_eq!(
            (batch.producer_id, batch.producer_epoch, batch.base_sequence),
            (42, 3, 100)
        );
        assert_eq!(batch.record_count, 500);
        assert_eq!(batch.last_offset_delta, 499);
        assert_eq!(batch.max_timestamp, 1_700_000_000_000 + 499 * 3 - 50);
        let records: Vec<Record> = batch.records().unwrap().collect::<Result<_, _>>().unwrap();
        assert_eq!(records.len(), 500);
        for (i, r) in records.iter().enumerate() {
            assert_eq!(r.offset, i as i64);
            assert_eq!(r.timestamp, 1_700_000_000_000 + (i as i64) * 3 - 50);
            let want_key = format!("key-{i}");
            assert_eq!(
                r.key.as_deref(),
                (i % 5 != 0).then_some(want_key.as_bytes())
            );
            assert_eq!(r.value.as_deref(), Some(&vec![i as u8; 100][..]));
            let hs: Vec<Header> = r.headers().collect::<Result<_, _>>().unwrap();
            assert_eq!(hs.len(), 2);
            assert_eq!(hs[0].key, "trace");
            assert_eq!(hs[0].value.as_deref(), Some(format!("h{i}").as_bytes()));
            assert_eq!(hs[1].value, None);
        }
    }
}

#[test]
fn uncompressed_records_share_the_fetched_buffer() {
    let bytes = sample(Compression::None, 3);
    let range = bytes.as_ptr() as usize..bytes.as_ptr() as usize + bytes.len();
    let mut data = bytes.clone();
    let batch = RecordBatch::decode(&mut data).unwrap();
    for r in batch.records().unwrap() {
        let v = r.unwrap().value.unwrap();
        assert!(range.contains(&(v.as_ptr() as usize)), "value was copied");
    }
}

#[test]
fn every_flipped_bit_is_caught_by_the_crc() {
    let bytes = sample(Compression::None, 3);
    for i in 21..bytes.len() {
        let mut corrupt = BytesMut::from(&bytes[..]);
        corrupt[i] ^= 0x10;
        let err = RecordBatch::decode(&mut corrupt.freeze()).unwrap_err();
        assert!(
            matches!(err.kind(), DecodeErrorKind::CrcMismatch { .. }),
            "byte {i}: {err}"
        );
    }
}

#[test]
fn a_partial_batch_at_the_end_of_a_fetch_is_left_unread() {
    let one = sample(Compression::Lz4, 10);
    let mut fetched = BytesMut::new();
    fetched.extend_from_slice(&one);
    fetched.extend_from_slice(&one);
    fetched.extend_from_slice(&one[..one.len() - 7]);
    let mut batches = Batches::new(fetched.freeze());
    assert!(matches!(batches.next(), Some(Ok(Batch::V2(_)))));
    assert!(matches!(batches.next(), Some(Ok(Batch::V2(_)))));
    assert!(batches.next().is_none());
    assert_eq!(batches.partial_tail(), one.len() - 7);
}

#[test]
fn a_record_count_that_disagrees_with_the_bytes_is_an_error() {
    let bytes = sample(Compression::None, 4);
    let mut batch = RecordBatch::decode(&mut bytes.clone()).unwrap();
    batch.record_count = 5;
    let last = batch.records().unwrap().last().unwrap();
    assert!(last.is_err());
    batch.record_count = 3;
    let last = batch.records().unwrap().last().unwrap();
    assert!(matches!(
        last.unwrap_err().kind(),
        DecodeErrorKind::TrailingBytes(_)
    ));
    batch.record_count = -1;
    assert!(batch.records().is_err());
}

#[test]
fn control_markers_round_trip() {
    for kind in [ControlRecordType::Commit, ControlRecordType::Abort] {
        let bytes = ControlRecord::marker_batch(kind, 9, 1234, 5, 77, 1_700_000_000_000).unwrap();
        let batch = RecordBatch::decode(&mut bytes.clone()).unwrap();
        assert!(batch.attributes.is_control() && batch.attributes.is_transactional());
        assert_eq!(
            (batch.base_offset, batch.producer_id, batch.producer_epoch),
            (77, 1234, 5)
        );
        let record = batch.records().unwrap().next().unwrap().unwrap();
        assert_eq!(
            ControlRecord::parse(&record).unwrap(),
            ControlRecord {
                kind,
                coordinator_epoch: 9
            }
        );
    }
}

#[test]
fn an_empty_batch_cannot_be_built() {
    assert!(BatchBuilder::new(BatchOptions::default()).finish().is_err());
}

#[test]
fn record_size_predicts_the_growth_of_the_batch() {
    let mut b = BatchBuilder::new(BatchOptions::default());
    for i in 0..50i64 {
        let before = b.uncompressed_size();
        let value = vec![0u8; (i * 37 % 300) as usize];
        let h = [("k", &b"v"[..])];
        let predicted = b.record_size(1000 + i * 1000, Some(b"key"), Some(&value), &h);
        b.append(1000 + i * 1000, Some(b"key"), Some(&value), &h)
            .unwrap();
        assert_eq!(b.uncompressed_size() - before, predicted);
    }
}
