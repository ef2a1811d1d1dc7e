//! The quick start: produces records to Kafka and checks every delivery. With no
//! `KASIO_BOOTSTRAP` it starts the embedded kasio-mock broker in-process, so nothing needs
//! to be installed.
//!
//! `cargo run --release -p kasio-tokio --example quickstart [-- RECORDS]`

use kasio_mock::{ClusterConfig, MockCluster};
use kasio_tokio::{Producer, ProducerConfig, Record};
use std::time::Instant;

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
            cluster.with(|c| {
                let _ = c.create_topic("quickstart", 12);
            });
            println!(
                "started the embedded kasio-mock cluster (3 brokers) at {}",
                cluster.bootstrap()
            );
            (cluster.bootstrap(), Some(cluster))
        }
    };
    let mut config = ProducerConfig::new(&bootstrap)?;
    config.set("batch.size", "262144")?;
    config.set("compression.type", "lz4")?;
    config.set("allow.auto.create.topics", "true")?;
    let producer = Producer::new(config)?;
    println!("producing {count} keyed records (acks=all, idempotent, lz4) to `quickstart`...");
    let start = Instant::now();
    let mut deliveries = Vec::with_capacity(usize::try_from(count)?);
    for i in 0..count {
        let key = format!("user-{}", i % 1000);
        let value = format!("event {i}");
        let record = Record::new("quickstart")
            .key(key.as_bytes())
            .value(value.as_bytes());
        deliveries.push((i, producer.send(record).await?));
    }
    producer.flush().await;
    let elapsed = start.elapsed();
    let mut offsets = std::collections::HashSet::with_capacity(deliveries.len());
    for (i, d) in deliveries {
        let meta = d.await.map_err(|e| format!("record {i}: {e}"))?;
        if !offsets.insert((meta.partition, meta.offset)) {
            return Err(format!("record {i}: offset {} reported twice", meta.offset).into());
        }
    }
    producer.close().await;
    let rate = count as f64 / elapsed.as_secs_f64();
    println!(
        "delivered and verified {count} records in {:.2} s ({rate:.0} records/s): each acknowledged once at its own offset",
        elapsed.as_secs_f64()
    );
    if let Some(m) = mock {
        let stored: i64 = m
            .with(|c| (0..12).filter_map(|p| c.end_offset("quickstart", p)).sum())
            .unwrap_or(0);
        if u64::try_from(stored)? != count {
            return Err(format!("the broker holds {stored} records, expected {count}").into());
        }
        println!("the broker holds exactly {stored} records");
        m.stop();
    }
    Ok(())
}
