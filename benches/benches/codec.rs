//! kasio-proto against the `kafka-protocol` crate, on the same inputs in the same run.
//!
//! - record batches of 1,000 records (10-byte key, 100-byte value, one header) in each codec:
//!   encode from prepared records, and decode plus a walk over every key, value and header;
//! - a Metadata response (v12) with 10 topics of 100 partitions;
//! - a Fetch response (v16) holding 10 batches, decoded with every record walked.
//!
//! Both libraries decode the same bytes (written by kasio; each library reads the other's).

use bytes::{Bytes, BytesMut};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use indexmap::IndexMap;
use kafka_protocol::{
    protocol::{Decodable, StrBytes},
    records::{
        Compression as KpCompression, Record as KpRecord, RecordBatchDecoder, RecordBatchEncoder,
        RecordEncodeOptions, TimestampType as KpTimestampType,
    },
};
use kasio::proto::{
    Decode, Encode, Uuid,
    compression::Compression,
    messages::{
        FetchResponse, MetadataResponse,
        fetch_response::{FetchableTopicResponse, PartitionData},
        metadata_response::{
            MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
        },
    },
    records::{Batch, BatchBuilder, BatchOptions, Batches},
};
use std::hint::black_box;

const RECORDS: usize = 1000;
const CODECS: [(Compression, KpCompression); 5] = [
    (Compression::None, KpCompression::None),
    (Compression::Gzip, KpCompression::Gzip),
    (Compression::Snappy, KpCompression::Snappy),
    (Compression::Lz4, KpCompression::Lz4),
    (Compression::Zstd, KpCompression::Zstd),
];

struct Input {
    keys: Vec<Vec<u8>>,
    values: Vec<Vec<u8>>,
    trace: Vec<u8>,
    base_ts: i64,
}

fn input() -> Input {
    // Values vary a little, as real payloads do, so the codecs have something to work on.
    let values = (0..RECORDS)
        .map(|i| {
            let text = format!(
                "{{\"id\":{i},\"user\":\"user-{}\",\"amount\":{},\"status\":\"ok\"}}",
                i % 97,
                i * 13 % 1000
            );
            let mut v = text.into_bytes();
            v.resize(100, b' ');
            v
        })
        .collect();
    Input {
        keys: (0..RECORDS)
            .map(|i| format!("key-{i:06}").into_bytes())
            .collect(),
        values,
        trace: b"0123456789abcdef".to_vec(),
        base_ts: 1_700_000_000_000,
    }
}

fn kasio_encode(inp: &Input, codec: Compression) -> Bytes {
    kasio_encode_into(
        inp,
        BatchBuilder::new(BatchOptions {
            compression: codec,
            ..Default::default()
        }),
    )
}

fn kasio_encode_into(inp: &Input, mut b: BatchBuilder) -> Bytes {
    for i in 0..RECORDS {
        b.append(
            inp.base_ts + i as i64,
            Some(&inp.keys[i]),
            Some(&inp.values[i]),
            &[("trace-id", &inp.trace[..])],
        )
        .expect("append");
    }
    b.finish().expect("finish")
}

fn kp_records(inp: &Input) -> Vec<KpRecord> {
    (0..RECORDS)
        .map(|i| {
            let mut headers = IndexMap::new();
            headers.insert(
                StrBytes::from_static_str("trace-id"),
                Some(Bytes::from(inp.trace.clone())),
            );
            KpRecord {
                transactional: false,
                control: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: KpTimestampType::Creation,
                offset: i as i64,
                sequence: -1,
                timestamp: inp.base_ts + i as i64,
                key: Some(Bytes::from(inp.keys[i].clone())),
                value: Some(Bytes::from(inp.values[i].clone())),
                headers,
            }
        })
        .collect()
}

fn kp_encode(records: &[KpRecord], codec: KpCompression) -> BytesMut {
    kp_encode_into(records, codec, BytesMut::new())
}

fn kp_encode_into(records: &[KpRecord], codec: KpCompression, mut buf: BytesMut) -> BytesMut {
    RecordBatchEncoder::encode(
        &mut buf,
        records,
        &RecordEncodeOptions {
            version: 2,
            compression: codec,
        },
    )
    .expect("encode");
    buf
}

/// Decodes a record set with kasio and touches every key, value and header.
fn kasio_walk(data: &Bytes) -> usize {
    let mut n = 0;
    for batch in Batches::new(data.clone()) {
        let Ok(Batch::V2(batch)) = batch else {
            panic!("bad batch")
        };
        for r in batch.records().expect("records") {
            let r = r.expect("record");
            n += r.key.as_ref().map_or(0, |k| k.len()) + r.value.as_ref().map_or(0, |v| v.len());
            for h in r.headers() {
                let h = h.expect("header");
                n += h.key.len() + h.value.map_or(0, |v| v.len());
            }
        }
    }
    n
}

/// The same walk over borrowed record views: no allocation and no reference counting.
fn kasio_walk_views(data: &Bytes) -> usize {
    let mut n = 0;
    for batch in Batches::new(data.clone()) {
        let Ok(Batch::V2(batch)) = batch else {
            panic!("bad batch")
        };
        let records = batch.records().expect("records");
        for r in records.views() {
            let r = r.expect("record");
            n += r.key.map_or(0, <[u8]>::len) + r.value.map_or(0, <[u8]>::len);
            for h in r.headers() {
                let h = h.expect("header");
                n += h.key.len() + h.value.map_or(0, <[u8]>::len);
            }
        }
    }
    n
}

fn kp_walk(data: &Bytes) -> usize {
    let mut n = 0;
    let mut buf = data.clone();
    for set in RecordBatchDecoder::decode_all(&mut buf).expect("decode") {
        for r in set.records {
            n += r.key.map_or(0, |k| k.len()) + r.value.map_or(0, |v| v.len());
            for (k, v) in r.headers {
                n += k.len() + v.map_or(0, |v| v.len());
            }
        }
    }
    n
}

fn record_batches(c: &mut Criterion) {
    let inp = input();
    let kp = kp_records(&inp);
    let mut g = c.benchmark_group("record_batch_encode");
    g.throughput(Throughput::Elements(RECORDS as u64));
    for (codec, kp_codec) in CODECS {
        g.bench_with_input(
            BenchmarkId::new("kasio", codec.name()),
            &codec,
            |b, &codec| b.iter(|| black_box(kasio_encode(&inp, codec))),
        );
        g.bench_with_input(
            BenchmarkId::new("kafka-protocol", codec.name()),
            &kp_codec,
            |b, &kp_codec| b.iter(|| black_box(kp_encode(&kp, kp_codec))),
        );
    }
    g.finish();

    // Both given the same pre-sized buffer, as a producer sizes batches by `batch.size`.
    let capacity = kasio_encode(&inp, Compression::None).len();
    let mut g = c.benchmark_group("record_batch_encode_presized");
    g.throughput(Throughput::Elements(RECORDS as u64));
    g.bench_function("kasio/none", |b| {
        b.iter(|| {
            let builder = BatchBuilder::with_capacity(BatchOptions::default(), capacity);
            black_box(kasio_encode_into(&inp, builder))
        })
    });
    g.bench_function("kafka-protocol/none", |b| {
        b.iter(|| {
            black_box(kp_encode_into(
                &kp,
                KpCompression::None,
                BytesMut::with_capacity(capacity),
            ))
        })
    });
    g.finish();

    let mut g = c.benchmark_group("record_batch_decode");
    g.throughput(Throughput::Elements(RECORDS as u64));
    for (codec, _) in CODECS {
        let bytes = kasio_encode(&inp, codec);
        assert_eq!(
            kasio_walk(&bytes),
            kp_walk(&bytes),
            "both decoders must see the same records"
        );
        assert_eq!(
            kasio_walk_views(&bytes),
            kp_walk(&bytes),
            "both decoders must see the same records"
        );
        g.bench_with_input(
            BenchmarkId::new("kasio", codec.name()),
            &bytes,
            |b, bytes| b.iter(|| black_box(kasio_walk_views(bytes))),
        );
        g.bench_with_input(
            BenchmarkId::new("kasio-owned", codec.name()),
            &bytes,
            |b, bytes| b.iter(|| black_box(kasio_walk(bytes))),
        );
        g.bench_with_input(
            BenchmarkId::new("kafka-protocol", codec.name()),
            &bytes,
            |b, bytes| b.iter(|| black_box(kp_walk(bytes))),
        );
    }
    g.finish();
}

fn metadata_bytes() -> Bytes {
    let topics = (0..10)
        .map(|t| MetadataResponseTopic {
            name: Some(format!("topic-{t}").into()),
            topic_id: Uuid::from_u128(t as u128 + 1),
            partitions: (0..100)
                .map(|p| MetadataResponsePartition {
                    partition_index: p,
                    leader_id: p % 3,
                    leader_epoch: 7,
                    replica_nodes: vec![p % 3, (p + 1) % 3, (p + 2) % 3],
                    isr_nodes: vec![p % 3, (p + 1) % 3, (p + 2) % 3],
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    let resp = MetadataResponse {
        brokers: (0..3)
            .map(|n| MetadataResponseBroker {
                node_id: n,
                host: "127.0.0.1".into(),
                port: 9092 + n,
                ..Default::default()
            })
            .collect(),
        cluster_id: Some("bench-cluster".into()),
        topics,
        ..Default::default()
    };
    let mut buf = BytesMut::new();
    resp.encode(12, &mut buf).expect("encode");
    buf.freeze()
}

fn fetch_bytes(inp: &Input) -> Bytes {
    let batch = kasio_encode(inp, Compression::None);
    let resp = FetchResponse {
        responses: vec![FetchableTopicResponse {
            topic_id: Uuid::from_u128(1),
            partitions: (0..10)
                .map(|p| PartitionData {
                    partition_index: p,
                    high_watermark: 1000,
                    records: Some(batch.clone()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut buf = BytesMut::new();
    resp.encode(16, &mut buf).expect("encode");
    buf.freeze()
}

fn messages(c: &mut Criterion) {
    let md = metadata_bytes();
    let mut g = c.benchmark_group("metadata_response_decode_1000_partitions");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("kasio", |b| {
        b.iter(|| black_box(MetadataResponse::decode(12, &mut md.clone()).expect("decode")))
    });
    g.bench_function("kafka-protocol", |b| {
        b.iter(|| {
            black_box(
                kafka_protocol::messages::MetadataResponse::decode(&mut md.clone(), 12)
                    .expect("decode"),
            )
        })
    });
    g.finish();

    let inp = input();
    let fetch = fetch_bytes(&inp);
    let mut g = c.benchmark_group("fetch_response_decode_10_batches");
    g.throughput(Throughput::Elements(10 * RECORDS as u64));
    g.bench_function("kasio", |b| {
        b.iter(|| {
            let resp = FetchResponse::decode(16, &mut fetch.clone()).expect("decode");
            let mut n = 0;
            for t in &resp.responses {
                for p in &t.partitions {
                    n += kasio_walk_views(p.records.as_ref().expect("records"));
                }
            }
            black_box(n)
        })
    });
    g.bench_function("kafka-protocol", |b| {
        b.iter(|| {
            let resp = kafka_protocol::messages::FetchResponse::decode(&mut fetch.clone(), 16)
                .expect("decode");
            let mut n = 0;
            for t in &resp.responses {
                for p in &t.partitions {
                    n += kp_walk(p.records.as_ref().expect("records"));
                }
            }
            black_box(n)
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(std::time::Duration::from_millis(500)).measurement_time(std::time::Duration::from_secs(2));
    targets = record_batches, messages
}
criterion_main!(benches);
