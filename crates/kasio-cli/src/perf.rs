//! `kasio perf`: producer and consumer throughput and latency, like Kafka's perf-test
//! tools.

use crate::{clients, latency::Latencies, output::Output, progress::Progress};
use clap::{Args, Subcommand};
use kasio::Fetched;
use kasio::{ConsumerEvent, Record, Seek};
use serde_json::json;
use std::time::{Duration, Instant};

#[derive(Subcommand, Debug)]
pub(crate) enum Perf {
    /// Sends records as fast as the producer takes them (or at --throughput).
    Produce(ProduceArgs),
    /// Reads records from the beginning of every partition.
    Consume(ConsumeArgs),
}

#[derive(Args, Debug)]
pub(crate) struct ProduceArgs {
    /// The topic.
    topic: String,
    /// How many records.
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// Each record's value size in bytes.
    #[arg(long, default_value_t = 100)]
    record_size: usize,
    /// At most this many records per second (0: no limit).
    #[arg(long, default_value_t = 0)]
    throughput: u64,
}

#[derive(Args, Debug)]
pub(crate) struct ConsumeArgs {
    /// The topic.
    topic: String,
    /// How many records to read.
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// Give up after this many seconds without a record.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
}

pub(crate) async fn run(cmd: Perf, props: &[(String, String)], out: &Output) -> Result<(), String> {
    match cmd {
        Perf::Produce(a) => produce(a, props, out).await,
        Perf::Consume(a) => consume(a, props, out).await,
    }
}

async fn produce(
    args: ProduceArgs,
    props: &[(String, String)],
    out: &Output,
) -> Result<(), String> {
    let admin = clients::helper_admin(props)?;
    let partitions = clients::partitions(&admin, &args.topic).await;
    admin.close().await;
    partitions?;
    let producer = clients::producer(props, &[])?;
    // A value that does not compress to nothing: a fixed pseudo-random pattern.
    let value: Vec<u8> = (0..args.record_size)
        .scan(0x2545_f491_u32, |s, _| {
            *s ^= *s << 13;
            *s ^= *s >> 17;
            *s ^= *s << 5;
            Some(b'a' + (*s % 26) as u8)
        })
        .collect();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(Instant, kasio::tokio::Delivery)>(65_536);
    let waiter = tokio::spawn(async move {
        let mut latencies = Vec::new();
        let mut first_error = None;
        while let Some((sent, d)) = rx.recv().await {
            match d.await {
                Ok(_) => latencies.push(sent.elapsed()),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        (latencies, first_error)
    });
    let mut bar = Progress::new("produce", args.records);
    let start = Instant::now();
    for i in 0..args.records {
        if args.throughput > 0 {
            let due = start + Duration::from_secs_f64(i as f64 / args.throughput as f64);
            if due > Instant::now() {
                tokio::time::sleep_until(due.into()).await;
            }
        }
        let d = producer
            .send(Record::new(&args.topic).value(&value))
            .await
            .map_err(|e| e.to_string())?;
        tx.send((Instant::now(), d))
            .await
            .map_err(|e| e.to_string())?;
        if i % 1024 == 0 {
            bar.set(i);
        }
    }
    drop(tx);
    let (latencies, first_error) = waiter.await.map_err(|e| e.to_string())?;
    let took = start.elapsed();
    bar.finish(args.records);
    producer.close().await;
    if let Some(e) = first_error {
        return Err(format!(
            "{} record(s) failed, the first with: {e}",
            args.records - latencies.len() as u64
        ));
    }
    let l = Latencies::new(latencies);
    let secs = took.as_secs_f64();
    let mb = (args.records as f64 * args.record_size as f64) / (1024.0 * 1024.0);
    if out.is_json() {
        println!(
            "{}",
            json!({"records": args.records, "seconds": secs, "records_per_sec": args.records as f64 / secs,
                   "mb_per_sec": mb / secs, "latency_ms": {"avg": l.mean().as_secs_f64() * 1e3,
                   "p50": l.at(0.5).as_secs_f64() * 1e3, "p95": l.at(0.95).as_secs_f64() * 1e3,
                   "p99": l.at(0.99).as_secs_f64() * 1e3, "p999": l.at(0.999).as_secs_f64() * 1e3,
                   "max": l.at(1.0).as_secs_f64() * 1e3}})
        );
    } else {
        println!(
            "{} records sent in {secs:.2} s: {:.0} records/s ({:.2} MB/s); latency {}",
            args.records,
            args.records as f64 / secs,
            mb / secs,
            l.summary()
        );
        print!(
            "latency histogram (send to acknowledgement):\n{}",
            l.histogram()
        );
    }
    Ok(())
}

async fn consume(
    args: ConsumeArgs,
    props: &[(String, String)],
    out: &Output,
) -> Result<(), String> {
    let admin = clients::helper_admin(props)?;
    let partitions = clients::partitions(&admin, &args.topic).await;
    admin.close().await;
    let partitions = partitions?;
    let consumer = clients::consumer(props, &[])?;
    let assignment: Vec<(&str, i32)> = partitions
        .iter()
        .map(|&p| (args.topic.as_str(), p))
        .collect();
    consumer.assign(&assignment);
    for p in &partitions {
        consumer.seek(&args.topic, *p, Seek::Beginning);
    }
    let mut bar = Progress::new("consume", args.records);
    let start = Instant::now();
    let (mut records, mut bytes) = (0u64, 0u64);
    let idle = Duration::from_secs(args.timeout);
    while records < args.records {
        let Ok(next) = tokio::time::timeout(idle, consumer.next()).await else {
            break;
        };
        match next {
            Fetched::Batch(b) => {
                b.for_each(|r| {
                    records += 1;
                    bytes += (r.value.map_or(0, <[u8]>::len) + r.key.map_or(0, <[u8]>::len)) as u64;
                })
                .map_err(|e| e.to_string())?;
                bar.set(records);
            }
            Fetched::Event(ConsumerEvent::Security(e)) => return Err(e.to_string()),
            Fetched::Event(ConsumerEvent::Error {
                partition, error, ..
            }) => {
                return Err(format!("partition {partition}: {error}"));
            }
            _ => {}
        }
    }
    let took = start.elapsed();
    bar.finish(records);
    consumer.close().await;
    let secs = took.as_secs_f64();
    let mb = bytes as f64 / (1024.0 * 1024.0);
    if out.is_json() {
        println!(
            "{}",
            json!({"records": records, "bytes": bytes, "seconds": secs, "records_per_sec": records as f64 / secs, "mb_per_sec": mb / secs})
        );
    } else {
        println!(
            "{records} records ({mb:.2} MB) read in {secs:.2} s: {:.0} records/s, {:.2} MB/s",
            records as f64 / secs,
            mb / secs
        );
    }
    if records < args.records {
        return Err(format!(
            "only {records} of {} records arrived within {} s of idle",
            args.records, args.timeout
        ));
    }
    Ok(())
}
