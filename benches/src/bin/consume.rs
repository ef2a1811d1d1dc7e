//! One consumer client reads COUNT records from the beginning of every partition of TOPIC
//! and prints a JSON line: throughput and the process's CPU time. `benches/run-consume`
//! runs each client in its own process against the same filled topic.
//!
//! `consume CLIENT BOOTSTRAP TOPIC PARTITIONS COUNT`

use kasio_benches::cpu_seconds;
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, client, bootstrap, topic, partitions, count] = args.as_slice() else {
        return Err("usage: consume CLIENT BOOTSTRAP TOPIC PARTITIONS COUNT".into());
    };
    let partitions: i32 = partitions.parse()?;
    let count: u64 = count.parse()?;
    let cpu0 = cpu_seconds();
    let start = Instant::now();
    // The tokio clients share one two-worker runtime; kasio on smol and on threads run
    // outside it, as their users would.
    let tokio = || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
    };
    let bytes = match client.as_str() {
        "kasio" => tokio()?.block_on(kasio::<kasio::tokio::Tokio>(
            bootstrap, topic, partitions, count,
        ))?,
        "kasio-smol" => smol::block_on(kasio::<kasio::smol::Smol>(
            bootstrap, topic, partitions, count,
        ))?,
        "kasio-blocking" => kasio_blocking(bootstrap, topic, partitions, count)?,
        "rdkafka" => rdkafka(bootstrap, topic, partitions, count)?,
        "confluent-kafka" => tokio()?.block_on(confluent(bootstrap, topic, partitions, count))?,
        "barnabas-tokio" => tokio()?.block_on(barnabas(bootstrap, topic, partitions, count))?,
        "krafka" => tokio()?.block_on(krafka(bootstrap, topic, partitions, count))?,
        other => return Err(format!("unknown client {other}").into()),
    };
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    println!(
        "{{\"client\": \"{client}\", \"records\": {count}, \"bytes\": {bytes}, \"seconds\": {secs:.3}, \"records_per_second\": {:.0}, \"cpu_seconds\": {cpu:.2}, \"cpu_seconds_per_million\": {:.3}}}",
        count as f64 / secs,
        cpu / (count as f64 / 1e6)
    );
    Ok(())
}

/// Every client counts the value bytes it was handed, so none can skip the records.
async fn kasio<R: kasio::shell::AsyncRuntime>(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    count: u64,
) -> Result<u64, Box<dyn std::error::Error>> {
    use kasio::shell::{Consumer, Fetched, Seek};
    let consumer = Consumer::<R>::from_properties([("bootstrap.servers", bootstrap)])?;
    consumer.assign((0..partitions).map(|p| (topic, p)));
    for p in 0..partitions {
        consumer.seek(topic, p, Seek::Beginning);
    }
    let (mut records, mut bytes) = (0u64, 0u64);
    while records < count {
        if let Fetched::Batch(b) = consumer.next().await {
            b.for_each(|r| {
                records += 1;
                bytes += r.value.map_or(0, <[u8]>::len) as u64;
            })?;
        }
    }
    consumer.close().await;
    Ok(bytes)
}

fn kasio_blocking(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    count: u64,
) -> Result<u64, Box<dyn std::error::Error>> {
    use kasio::{Fetched, Seek, blocking::Consumer};
    let consumer = Consumer::from_properties([("bootstrap.servers", bootstrap)])?;
    consumer.assign((0..partitions).map(|p| (topic, p)));
    for p in 0..partitions {
        consumer.seek(topic, p, Seek::Beginning);
    }
    let (mut records, mut bytes) = (0u64, 0u64);
    while records < count {
        let next = consumer
            .poll(Duration::from_secs(30))
            .ok_or("no batch in 30 s")?;
        if let Fetched::Batch(b) = next {
            b.for_each(|r| {
                records += 1;
                bytes += r.value.map_or(0, <[u8]>::len) as u64;
            })?;
        }
    }
    consumer.close();
    Ok(bytes)
}

fn rdkafka(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    count: u64,
) -> Result<u64, Box<dyn std::error::Error>> {
    use rdkafka::{
        ClientConfig, Message, Offset, TopicPartitionList,
        consumer::{BaseConsumer, Consumer},
    };
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "bench-unused")
        .set("enable.auto.commit", "false")
        .create()?;
    let mut list = TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&list)?;
    let (mut records, mut bytes) = (0u64, 0u64);
    let deadline = Instant::now() + Duration::from_secs(120);
    while records < count && Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            let m = m?;
            records += 1;
            bytes += m.payload().map_or(0, <[u8]>::len) as u64;
        }
    }
    Ok(bytes)
}

async fn confluent(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    count: u64,
) -> Result<u64, Box<dyn std::error::Error>> {
    use confluent_kafka::{
        common::{TopicPartition, serialization::ByteArrayDeserializer},
        consumer::{Consumer, ConsumerConfig, KafkaConsumer},
    };
    let props = std::collections::HashMap::from([
        ("bootstrap.servers".to_string(), bootstrap.to_string()),
        ("enable.auto.commit".to_string(), "false".to_string()),
        // This client serves only the KIP-848 protocol.
        ("group.protocol".to_string(), "consumer".to_string()),
    ]);
    let mut consumer = KafkaConsumer::<Vec<u8>, Vec<u8>>::new(
        ConsumerConfig::new(&props)?,
        ByteArrayDeserializer::default(),
        ByteArrayDeserializer::default(),
    )?;
    let parts: Vec<TopicPartition> = (0..partitions)
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    consumer.assign(parts.clone()).await?;
    consumer.seek_to_beginning(&parts).await?;
    let (mut records, mut bytes) = (0u64, 0u64);
    let deadline = Instant::now() + Duration::from_secs(120);
    while records < count && Instant::now() < deadline {
        let batch = consumer.poll(Duration::from_millis(100)).await?;
        for r in &batch {
            records += 1;
            bytes += r.value().map_or(0, Vec::len) as u64;
        }
    }
    consumer.close().await?;
    Ok(bytes)
}

async fn barnabas(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    count: u64,
) -> Result<u64, Box<dyn std::error::Error>> {
    use barnabas_client::{Consumer, EARLIEST};
    let mut consumer = Consumer::new(
        barnabas_tokio::Tokio,
        &[bootstrap.to_string()],
        "bench",
        barnabas_core::IsolationLevel::ReadUncommitted,
    )
    .await?;
    for p in 0..partitions {
        consumer.assign(topic, p, EARLIEST).await?;
    }
    let (mut records, mut bytes) = (0u64, 0u64);
    let deadline = Instant::now() + Duration::from_secs(120);
    while records < count && Instant::now() < deadline {
        for part in consumer.poll().await? {
            for r in part.iter() {
                records += 1;
                bytes += r.value().map_or(0, |v| v.len()) as u64;
            }
        }
    }
    Ok(bytes)
}

async fn krafka(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    count: u64,
) -> Result<u64, Box<dyn std::error::Error>> {
    use krafka::Kafka;
    let kafka = Kafka::builder(bootstrap)
        .client_id("bench")
        .connect()
        .await?;
    let consumer = kafka.consumer_without_group().build().await?;
    consumer.assign(topic, (0..partitions).collect()).await?;
    for p in 0..partitions {
        consumer.seek_to_beginning(topic, p).await?;
    }
    let (mut records, mut bytes) = (0u64, 0u64);
    let deadline = Instant::now() + Duration::from_secs(120);
    while records < count && Instant::now() < deadline {
        for r in consumer.poll(Duration::from_millis(100)).await? {
            records += 1;
            bytes += r.value.as_ref().map_or(0, |v| v.len()) as u64;
        }
    }
    consumer.close().await?;
    Ok(bytes)
}
