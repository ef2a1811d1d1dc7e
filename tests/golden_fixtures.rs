//! Golden bytes written by independent peers (the Apache Kafka Java client and kafka-python,
//! see `tests/peers/`) decode to the values they wrote, and re-encode byte for byte where
//! the format is canonical (uncompressed batches, control batches, request and response
//! frames).

#![allow(clippy::unwrap_used)]

use bytes::{Bytes, BytesMut};
use kasio_proto::{
    AnyRequest, AnyResponse, ApiKey, Uuid,
    compression::Compression,
    frame,
    records::{
        Batch, BatchBuilder, BatchOptions, Batches, ControlRecord, ControlRecordType, Record,
        RecordBatch,
    },
};
use std::path::PathBuf;

const PEERS: [&str; 2] = ["java", "kafka-python"];
const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];
const TOPIC_ID: Uuid = Uuid::from_u128(0x0123_4567_89ab_cdef_0fed_cba9_8765_4321);

fn fixture(peer: &str, name: &str) -> Bytes {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(peer)
        .join(name);
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into()
}

/// Record `i` of the pattern every peer writes.
fn expected(i: usize) -> (i64, Option<String>, String, String) {
    let key = (!i.is_multiple_of(4)).then(|| format!("key-{i}"));
    (
        1_700_000_000_000 + i as i64,
        key,
        format!("value-{i}").repeat(i + 1),
        format!("v-{i}"),
    )
}

fn check_record(r: &Record, i: usize, with_headers: bool, with_timestamp: bool, ctx: &str) {
    let (ts, key, value, header) = expected(i);
    assert_eq!(r.offset, i as i64, "{ctx} record {i}");
    if with_timestamp {
        assert_eq!(r.timestamp, ts, "{ctx} record {i}");
    }
    assert_eq!(
        r.key.as_deref(),
        key.as_ref().map(String::as_bytes),
        "{ctx} record {i}"
    );
    assert_eq!(
        r.value.as_deref(),
        Some(value.as_bytes()),
        "{ctx} record {i}"
    );
    let headers: Vec<_> = r.headers().collect::<Result<_, _>>().unwrap();
    if with_headers {
        assert_eq!(headers.len(), 1, "{ctx} record {i}");
        assert_eq!(headers[0].key, "h");
        assert_eq!(headers[0].value.as_deref(), Some(header.as_bytes()));
    } else {
        assert!(headers.is_empty());
    }
}

fn only_batch(bytes: Bytes) -> RecordBatch {
    let mut batches = Batches::new(bytes);
    let Some(Ok(Batch::V2(batch))) = batches.next() else {
        panic!("no v2 batch")
    };
    assert!(batches.next().is_none());
    assert_eq!(batches.partial_tail(), 0);
    batch
}

#[test]
fn record_batches_in_every_codec_from_both_peers() {
    for peer in PEERS {
        for codec in CODECS {
            let ctx = format!("{peer} {}", codec.name());
            let bytes = fixture(peer, &format!("batch-{}.bin", codec.name()));
            let batch = only_batch(bytes.clone());
            assert_eq!(batch.attributes.compression().unwrap(), codec, "{ctx}");
            assert_eq!(
                (batch.producer_id, batch.producer_epoch, batch.base_sequence),
                (1234, 5, 10),
                "{ctx}"
            );
            assert_eq!(
                (batch.record_count, batch.last_offset_delta),
                (10, 9),
                "{ctx}"
            );
            assert_eq!(batch.max_timestamp, 1_700_000_000_009, "{ctx}");
            let records: Vec<Record> = batch.records().unwrap().collect::<Result<_, _>>().unwrap();
            assert_eq!(records.len(), 10, "{ctx}");
            for (i, r) in records.iter().enumerate() {
                check_record(r, i, true, true, &ctx);
            }

            // Uncompressed batches have one encoding: kasio's must be the peer's, byte for byte.
            if codec == Compression::None {
                let mut b = BatchBuilder::new(BatchOptions {
                    partition_leader_epoch: batch.partition_leader_epoch,
                    producer_id: 1234,
                    producer_epoch: 5,
                    base_sequence: 10,
                    ..Default::default()
                });
                for i in 0..10 {
                    let (ts, key, value, header) = expected(i);
                    b.append(
                        ts,
                        key.as_ref().map(String::as_bytes),
                        Some(value.as_bytes()),
                        &[("h", header.as_bytes())],
                    )
                    .unwrap();
                }
                assert_eq!(b.finish().unwrap(), bytes, "{ctx}: re-encoding differs");
            }
        }
    }
}

#[test]
fn legacy_message_sets_from_kafka_python() {
    for magic in [0, 1] {
        for codec in ["none", "gzip", "snappy", "lz4"] {
            if magic == 0 && codec == "lz4" {
                continue;
            }
            let ctx = format!("legacy v{magic} {codec}");
            let mut records = Vec::new();
            for batch in Batches::new(fixture(
                "kafka-python",
                &format!("legacy-v{magic}-{codec}.bin"),
            )) {
                let Batch::Legacy(l) = batch.unwrap() else {
                    panic!("{ctx}: not legacy")
                };
                assert_eq!(l.magic, magic);
                records.extend(l.records().unwrap());
            }
            assert_eq!(records.len(), 10, "{ctx}");
            for (i, r) in records.iter().enumerate() {
                check_record(r, i, false, magic == 1, &ctx);
                if magic == 0 {
                    assert_eq!(r.timestamp, -1);
                }
            }
        }
    }
}

#[test]
fn transactional_and_control_batches_from_java() {
    let batch = only_batch(fixture("java", "batch-transactional-zstd.bin"));
    assert!(batch.attributes.is_transactional() && !batch.attributes.is_control());
    assert_eq!(
        (batch.producer_id, batch.producer_epoch, batch.record_count),
        (99, 1, 3)
    );

    let bytes = fixture("java", "control-commit.bin");
    let batch = only_batch(bytes.clone());
    assert!(batch.attributes.is_control() && batch.attributes.is_transactional());
    let record = batch.records().unwrap().next().unwrap().unwrap();
    let marker = ControlRecord::parse(&record).unwrap();
    assert_eq!(
        marker,
        ControlRecord {
            kind: ControlRecordType::Commit,
            coordinator_epoch: 7
        }
    );
    let ours =
        ControlRecord::marker_batch(ControlRecordType::Commit, 7, 99, 1, 0, 1_700_000_000_000)
            .unwrap();
    assert_eq!(ours, bytes, "control batch re-encoding differs");
}

/// Decodes a request frame (header and body) and checks it re-encodes to the same bytes.
fn request(peer: &str, name: &str) -> (kasio_proto::messages::RequestHeader, AnyRequest) {
    let bytes = fixture(peer, name);
    let (header, body) =
        frame::decode_request(bytes.clone()).unwrap_or_else(|e| panic!("{peer} {name}: {e}"));
    let mut again = BytesMut::new();
    frame::encode_request(&header, &body, &mut again).unwrap();
    assert_eq!(
        &again[4..],
        &bytes[..],
        "{peer} {name}: re-encoding differs"
    );
    (header, body)
}

fn response(peer: &str, name: &str, key: ApiKey, version: i16) -> (i32, AnyResponse) {
    let bytes = fixture(peer, name);
    let (header, body) = frame::decode_response(key, version, bytes.clone())
        .unwrap_or_else(|e| panic!("{peer} {name}: {e}"));
    let mut again = BytesMut::new();
    frame::encode_response(key, version, header.correlation_id, &body, &mut again).unwrap();
    assert_eq!(
        &again[4..],
        &bytes[..],
        "{peer} {name}: re-encoding differs"
    );
    (header.correlation_id, body)
}

#[test]
fn request_frames_from_both_peers() {
    for peer in PEERS {
        let (h, body) = request(peer, "request-api-versions-v4.bin");
        assert_eq!(
            (h.request_api_key, h.request_api_version, h.correlation_id),
            (18, 4, 1)
        );
        assert_eq!(
            h.client_id.as_deref(),
            Some(if peer == "java" {
                "java-peer"
            } else {
                "kafka-python"
            })
        );
        let AnyRequest::ApiVersions(av) = body else {
            panic!()
        };
        assert_eq!(
            av.client_software_name,
            if peer == "java" {
                "java-peer"
            } else {
                "kafka-python"
            }
        );

        let (h, body) = request(peer, "request-metadata-v12.bin");
        assert_eq!((h.request_api_version, h.correlation_id), (12, 2));
        let AnyRequest::Metadata(md) = body else {
            panic!()
        };
        assert!(!md.allow_auto_topic_creation);
        let topics = md.topics.expect("topics");
        assert_eq!(topics.len(), 2);
        assert_eq!(
            (topics[0].name.as_deref(), topics[0].topic_id),
            (Some("orders"), TOPIC_ID)
        );
        assert_eq!(
            (topics[1].name.as_deref(), topics[1].topic_id),
            (Some("payments"), Uuid::ZERO)
        );
    }

    let (_, body) = request("java", "request-produce-v11.bin");
    let AnyRequest::Produce(p) = body else {
        panic!()
    };
    assert_eq!((p.acks, p.timeout_ms), (-1, 30000));
    let part = &p.topic_data[0].partition_data[0];
    assert_eq!((p.topic_data[0].name.as_str(), part.index), ("orders", 3));
    let batch = only_batch(part.records.clone().expect("records"));
    assert_eq!(batch.attributes.compression().unwrap(), Compression::Lz4);
    for (i, r) in batch.records().unwrap().enumerate() {
        check_record(&r.unwrap(), i, true, true, "java produce");
    }
}

#[test]
fn response_frames_from_both_peers() {
    for peer in PEERS {
        let (corr, body) = response(peer, "response-metadata-v12.bin", ApiKey::Metadata, 12);
        assert_eq!(corr, 2);
        let AnyResponse::Metadata(m) = body else {
            panic!()
        };
        assert_eq!(m.cluster_id.as_deref(), Some("kasio-cluster"));
        assert_eq!(m.controller_id, 1);
        assert_eq!(
            (
                m.brokers[0].node_id,
                m.brokers[0].host.as_str(),
                m.brokers[0].port
            ),
            (1, "127.0.0.1", 9092)
        );
        assert_eq!(m.brokers[0].rack.as_deref(), Some("r1"));
        let t = &m.topics[0];
        assert_eq!(
            (t.name.as_deref(), t.topic_id, t.partitions.len()),
            (Some("orders"), TOPIC_ID, 3)
        );
        assert_eq!(
            (
                t.partitions[2].partition_index,
                t.partitions[2].leader_epoch
            ),
            (2, 2)
        );
    }

    // Tagged fields: supported and finalized features and their epoch are all tagged in v3.
    let (corr, body) = response(
        "java",
        "response-api-versions-v3.bin",
        ApiKey::ApiVersions,
        3,
    );
    assert_eq!(corr, 1);
    let AnyResponse::ApiVersions(av) = body else {
        panic!()
    };
    assert_eq!(av.api_keys.len(), 2);
    assert_eq!(
        (av.api_keys[1].api_key, av.api_keys[1].max_version),
        (3, 13)
    );
    assert_eq!(av.finalized_features_epoch, 42);
    assert_eq!(av.supported_features[0].name, "transaction.version");
    assert_eq!(av.supported_features[0].max_version, 2);
    assert_eq!(av.finalized_features[0].max_version_level, 2);
}
