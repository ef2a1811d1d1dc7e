//! The quick start: produces records, consumes them back and checks every one. With no
//! `KASIO_BOOTSTRAP` it starts the embedded kasio-mock broker in-process, so nothing needs
//! to be installed.
//!
//! `cargo run --release -p kasio-tokio --example quickstart [-- RECORDS]`

use kasio_core::partitioner::key_partition;
use kasio_mock::{ClusterConfig, MockCluster};
use kasio_tokio::{Consumer, ConsumerEvent, Fetched, Producer, ProducerConfig, Record, Seek};
use std::time::{Duration, Instant};

const TOPIC: &str = "quickstart";
const PARTITIONS: i32 = 12;
const KEYS: u64 = 1000;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let count: u64 = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => 1_000_000,
    };
    let (bootstrap, mock) = match std::env::var("KASIO_BOOTSTRAP") {
        Ok(b) => (b, None),
        Err(_) => {
            let cluster = MockCluster::start(ClusterConfig {
                brokers: 3,
                ..Default::default()
            })?;
            println!(
                "started the embedded kasio-mock cluster (3 brokers) at {}",
                cluster.bootstrap()
            );
            (cluster.bootstrap(), Some(cluster))
        }
    };
    let topic = match &mock {
        Some(m) => {
            m.with(|c| c.create_topic(TOPIC, PARTITIONS).map(|_| ()));
            TOPIC.to_string()
        }
        // A fresh topic on a real cluster, auto-created with the broker's default partitions.
        None => format!("{TOPIC}-{}", std::process::id()),
    };

    let mut config = ProducerConfig::new(&bootstrap)?;
    config.set("batch.size", "262144")?;
    config.set("compression.type", "lz4")?;
    config.set("allow.auto.create.topics", "true")?;
    let producer = Producer::new(config)?;
    println!("producing {count} keyed records (acks=all, idempotent, lz4) to `{topic}`...");
    // Deliveries are awaited in order by a second task, which notes each one's latency.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(Instant, kasio_tokio::Delivery)>(65_536);
    let waiter = tokio::spawn(async move {
        let mut latencies = Vec::new();
        let mut partitions = std::collections::HashMap::new();
        while let Some((sent, delivery)) = rx.recv().await {
            let meta = delivery.await?;
            latencies.push(sent.elapsed());
            *partitions.entry(meta.partition).or_insert(0u64) += 1;
        }
        Ok::<_, kasio_tokio::ProduceError>((latencies, partitions))
    });
    let start = Instant::now();
    for i in 0..count {
        let key = format!("user-{}", i % KEYS);
        let value = format!("event {i}");
        let record = Record::new(&topic)
            .key(key.as_bytes())
            .value(value.as_bytes());
        let delivery = producer.send(record).await?;
        tx.send((Instant::now(), delivery)).await?;
    }
    drop(tx);
    let (mut latencies, placed) = waiter.await??;
    let produced = start.elapsed();
    producer.close().await;
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p) as usize];
    println!(
        "produced {count} records in {:.2} s ({:.0} records/s); delivery latency p50 {:?}, p99 {:?}, max {:?}",
        produced.as_secs_f64(),
        count as f64 / produced.as_secs_f64(),
        pct(0.50),
        pct(0.99),
        pct(1.0),
    );

    let partitions = placed.keys().max().map_or(0, |p| p + 1).max(1);
    let consumer = Consumer::from_properties([("bootstrap.servers", bootstrap.as_str())])?;
    let assignment: Vec<(&str, i32)> = (0..partitions).map(|p| (topic.as_str(), p)).collect();
    consumer.assign(&assignment);
    for p in 0..partitions {
        consumer.seek(&topic, p, Seek::Beginning);
    }
    println!("consuming them back from {partitions} partitions...");
    let start = Instant::now();
    let mut seen = vec![false; usize::try_from(count)?];
    let mut ends = 0;
    let mut problems = Vec::new();
    while ends < partitions {
        match tokio::time::timeout(Duration::from_secs(30), consumer.next()).await? {
            Fetched::Batch(batch) => batch.for_each(|r| {
                let value = std::str::from_utf8(r.value.unwrap_or_default()).unwrap_or("");
                let Some(i) = value
                    .strip_prefix("event ")
                    .and_then(|n| n.parse::<u64>().ok())
                else {
                    problems.push(format!("unexpected value {value:?}"));
                    return;
                };
                let key = format!("user-{}", i % KEYS);
                let right_partition = key_partition(key.as_bytes(), partitions) == batch.partition;
                let Some(slot) = seen.get_mut(usize::try_from(i).unwrap_or(usize::MAX)) else {
                    problems.push(format!("record {i} was never sent"));
                    return;
                };
                if std::mem::replace(slot, true) {
                    problems.push(format!("record {i} read twice"));
                } else if r.key != Some(key.as_bytes()) || !right_partition {
                    problems.push(format!("record {i}: wrong key or partition"));
                }
            })?,
            Fetched::Event(ConsumerEvent::EndOfPartition { .. }) => ends += 1,
            Fetched::Event(e) => return Err(format!("consumer: {e:?}").into()),
            _ => {}
        }
    }
    let consumed = start.elapsed();
    consumer.close();
    let missing = seen.iter().filter(|s| !**s).count();
    if missing > 0 || !problems.is_empty() {
        return Err(format!(
            "{missing} records missing; {} problems, first: {:?}",
            problems.len(),
            problems.first()
        )
        .into());
    }
    println!(
        "consumed and verified all {count} records in {:.2} s ({:.0} records/s): each once, with its key, on the partition the Java client would pick",
        consumed.as_secs_f64(),
        count as f64 / consumed.as_secs_f64()
    );
    if let Some(m) = mock {
        m.stop();
    }
    Ok(())
}
