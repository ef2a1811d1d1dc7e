//! A tour of kasio-proto: a producer's Produce request carrying 100,000 records in each
//! codec is framed, read back as a broker reads it, and every record is checked.
//!
//! `cargo run --release -p kasio-proto --example codec_tour`

use bytes::BytesMut;
use kasio_proto::{
    AnyRequest, ApiKey, Request,
    compression::Compression,
    frame::{self, FrameDecoder},
    messages::{
        ProduceRequest, RequestHeader,
        produce_request::{PartitionProduceData, TopicProduceData},
    },
    records::{Batch, BatchBuilder, BatchOptions, Batches},
};
use std::{error::Error, time::Instant};

const RECORDS: usize = 100_000;
const PER_BATCH: usize = 1_000;

fn main() -> Result<(), Box<dyn Error>> {
    println!(
        "kasio-proto tour: {RECORDS} records of 100 bytes, {PER_BATCH} per batch, Produce v13\n"
    );
    // Encoding times include making up each record's key and value, as a producer would.
    println!(
        "{:<8} {:>12} {:>12} {:>14} {:>14}",
        "codec", "wire bytes", "vs none", "encode rec/s", "decode rec/s"
    );
    let mut uncompressed = 0;
    for codec in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let started = Instant::now();
        let mut batches = BytesMut::new();
        for first in (0..RECORDS).step_by(PER_BATCH) {
            let mut b = BatchBuilder::new(BatchOptions {
                compression: codec,
                producer_id: 7,
                producer_epoch: 0,
                base_sequence: first as i32,
                ..Default::default()
            });
            for i in first..first + PER_BATCH {
                let key = format!("user-{}", i % 1000);
                let value = format!(
                    "{{\"order\":{i},\"amount\":{},\"currency\":\"EUR\",\"note\":\"tour\"}}",
                    i % 977
                );
                b.append(
                    1_700_000_000_000 + i as i64,
                    Some(key.as_bytes()),
                    Some(format!("{value:<100}").as_bytes()),
                    &[("source", &b"tour"[..])],
                )?;
            }
            batches.extend_from_slice(&b.finish()?);
        }
        let request = ProduceRequest {
            acks: -1,
            timeout_ms: 30_000,
            topic_data: vec![TopicProduceData {
                name: "orders".into(),
                partition_data: vec![PartitionProduceData {
                    index: 0,
                    records: Some(batches.freeze()),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let header = RequestHeader {
            request_api_key: ProduceRequest::API_KEY.as_i16(),
            request_api_version: 13,
            correlation_id: 1,
            client_id: Some("kasio-tour".into()),
            ..Default::default()
        };
        let mut stream = BytesMut::new();
        frame::encode_request(&header, &request, &mut stream)?;
        let encoded = started.elapsed();
        let wire = stream.len();

        // The broker's side: split the stream into frames, decode, walk every record.
        let started = Instant::now();
        let frame = FrameDecoder::default()
            .decode(&mut stream)?
            .ok_or("incomplete frame")?;
        let (header, body) = frame::decode_request(frame)?;
        assert_eq!(header.request_api_key, ApiKey::Produce.as_i16());
        let AnyRequest::Produce(produce) = body else {
            return Err("not a Produce request".into());
        };
        let records = produce.topic_data[0].partition_data[0]
            .records
            .clone()
            .ok_or("no records")?;
        let mut seen = 0usize;
        for batch in Batches::new(records) {
            let Batch::V2(batch) = batch? else {
                return Err("legacy batch".into());
            };
            let decoded = batch.records()?;
            for record in decoded.views() {
                let record = record?;
                assert_eq!(record.offset, (seen % PER_BATCH) as i64);
                assert_eq!(record.key, Some(format!("user-{}", seen % 1000).as_bytes()));
                assert_eq!(
                    record.headers().next().ok_or("no header")??.value,
                    Some(&b"tour"[..])
                );
                seen += 1;
            }
        }
        let decoded = started.elapsed();
        assert_eq!(seen, RECORDS, "every record comes back");
        if codec == Compression::None {
            uncompressed = wire;
        }
        println!(
            "{:<8} {:>12} {:>11.2}x {:>14.0} {:>14.0}",
            codec.name(),
            wire,
            wire as f64 / uncompressed as f64,
            RECORDS as f64 / encoded.as_secs_f64(),
            RECORDS as f64 / decoded.as_secs_f64()
        );
    }
    println!("\nall {RECORDS} records verified in every codec");
    Ok(())
}
