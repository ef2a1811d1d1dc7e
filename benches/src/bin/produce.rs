//! One producer run for the side-by-side benchmark: `produce CLIENT BOOTSTRAP TOPIC COUNT
//! CODEC`. Sends COUNT records with 100-byte values and no key (acks=all, idempotent,
//! linger.ms=5, batch.size=1 MiB where the client has the knob), waits for every
//! acknowledgement, and prints one JSON line with the wall time and this process's CPU
//! time. `run-produce` runs every client against the same broker in one go.

use kasio_benches::cpu_seconds;
use std::time::{Duration, Instant};

const VALUE_LEN: usize = 100;
const LINGER_MS: u64 = 5;
const BATCH_SIZE: usize = 1024 * 1024;

fn value(i: u64) -> Vec<u8> {
    let mut v = format!("{i:020}").into_bytes();
    v.resize(VALUE_LEN, b'x');
    v
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, client, bootstrap, topic, count, codec] = args.as_slice() else {
        return Err("usage: produce CLIENT BOOTSTRAP TOPIC COUNT CODEC".into());
    };
    let count: u64 = count.parse()?;
    let values: Vec<Vec<u8>> = (0..count).map(value).collect();
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
    type OnTokio = kasio::tokio::Tokio;
    match client.as_str() {
        "kasio" => tokio()?.block_on(kasio::<OnTokio>(
            bootstrap, topic, &values, codec, false, None,
        ))?,
        "kasio-batch" => tokio()?.block_on(kasio::<OnTokio>(
            bootstrap, topic, &values, codec, true, None,
        ))?,
        "kasio-tls" => tokio()?.block_on(kasio::<OnTokio>(
            bootstrap,
            topic,
            &values,
            codec,
            false,
            Some(ca()?),
        ))?,
        "kasio-batch-tls" => tokio()?.block_on(kasio::<OnTokio>(
            bootstrap,
            topic,
            &values,
            codec,
            true,
            Some(ca()?),
        ))?,
        "kasio-smol" => smol::block_on(kasio::<kasio::smol::Smol>(
            bootstrap, topic, &values, codec, false, None,
        ))?,
        "kasio-smol-batch" => smol::block_on(kasio::<kasio::smol::Smol>(
            bootstrap, topic, &values, codec, true, None,
        ))?,
        "kasio-blocking" => kasio_blocking(bootstrap, topic, &values, codec, false)?,
        "kasio-blocking-batch" => kasio_blocking(bootstrap, topic, &values, codec, true)?,
        "rdkafka" => rdkafka(bootstrap, topic, &values, codec, None)?,
        "rdkafka-tls" => rdkafka(bootstrap, topic, &values, codec, Some(ca()?))?,
        "confluent-kafka" => tokio()?.block_on(confluent(bootstrap, topic, &values, codec))?,
        "barnabas" => tokio()?.block_on(barnabas(bootstrap, topic, &values, codec, false))?,
        "barnabas-batch" => tokio()?.block_on(barnabas(bootstrap, topic, &values, codec, true))?,
        "krafka" => tokio()?.block_on(krafka(bootstrap, topic, &values, codec))?,
        other => return Err(format!("unknown client {other}").into()),
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    println!(
        "{{\"client\": \"{client}\", \"codec\": \"{codec}\", \"records\": {count}, \"seconds\": {secs:.3}, \"records_per_second\": {:.0}, \"cpu_seconds\": {cpu:.2}, \"cpu_seconds_per_million\": {:.3}}}",
        count as f64 / secs,
        cpu / (count as f64 / 1e6)
    );
    Ok(())
}

/// The lab's CA file, for the clients that go over TLS (`*-tls`, on the SSL listener).
fn ca() -> Result<String, Box<dyn std::error::Error>> {
    Ok(std::env::var("KASIO_LAB_CA").map_err(|_| "KASIO_LAB_CA is not set")?)
}

/// The producer settings every kasio runtime runs with.
fn kasio_props(bootstrap: &str, codec: &str, ca: Option<&str>) -> Vec<(String, String)> {
    let mut props = vec![
        ("bootstrap.servers", bootstrap),
        ("acks", "all"),
        ("enable.idempotence", "true"),
        ("compression.type", codec),
    ];
    if let Some(ca) = ca {
        props.push(("security.protocol", "SSL"));
        props.push(("ssl.ca.location", ca));
    }
    let mut props: Vec<(String, String)> = props
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    props.push(("linger.ms".into(), LINGER_MS.to_string()));
    props.push(("batch.size".into(), BATCH_SIZE.to_string()));
    props
}

async fn kasio<R: kasio::shell::AsyncRuntime>(
    bootstrap: &str,
    topic: &str,
    values: &[Vec<u8>],
    codec: &str,
    batches: bool,
    ca: Option<String>,
) -> Result<(), Box<dyn std::error::Error>> {
    let props = kasio_props(bootstrap, codec, ca.as_deref());
    let producer = kasio::shell::Producer::<R>::from_properties(
        props.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    )?;
    if batches {
        // The same shape as barnabas-batch: 1,000 records per call, one future per call.
        let mut groups = Vec::with_capacity(values.len() / 1000 + 1);
        for chunk in values.chunks(1000) {
            let records = chunk
                .iter()
                .map(|v| kasio::shell::Record::new(topic).value(v));
            groups.push(producer.send_batch(records).await?);
        }
        for g in groups {
            g.await?;
        }
    } else {
        let mut deliveries = Vec::with_capacity(values.len());
        for v in values {
            deliveries.push(
                producer
                    .send(kasio::shell::Record::new(topic).value(v))
                    .await?,
            );
        }
        for d in deliveries {
            d.await?;
        }
    }
    producer.close().await;
    Ok(())
}

fn kasio_blocking(
    bootstrap: &str,
    topic: &str,
    values: &[Vec<u8>],
    codec: &str,
    batches: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let props = kasio_props(bootstrap, codec, None);
    let producer = kasio::blocking::Producer::from_properties(
        props.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    )?;
    if batches {
        let mut groups = Vec::with_capacity(values.len() / 1000 + 1);
        for chunk in values.chunks(1000) {
            let records = chunk.iter().map(|v| kasio::Record::new(topic).value(v));
            groups.push(producer.send_batch(records)?);
        }
        for g in groups {
            g.wait()?;
        }
    } else {
        let mut deliveries = Vec::with_capacity(values.len());
        for v in values {
            deliveries.push(producer.send(kasio::Record::new(topic).value(v))?);
        }
        for d in deliveries {
            d.wait()?;
        }
    }
    producer.close();
    Ok(())
}

fn rdkafka(
    bootstrap: &str,
    topic: &str,
    values: &[Vec<u8>],
    codec: &str,
    ca: Option<String>,
) -> Result<(), Box<dyn std::error::Error>> {
    use rdkafka::{
        ClientConfig, ClientContext,
        error::{KafkaError, RDKafkaErrorCode},
        producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer},
    };
    use std::sync::atomic::{AtomicU64, Ordering};
    struct Counter(AtomicU64, AtomicU64);
    impl ClientContext for Counter {}
    impl ProducerContext for Counter {
        type DeliveryOpaque = ();
        fn delivery(&self, result: &DeliveryResult<'_>, (): ()) {
            match result {
                Ok(_) => self.0.fetch_add(1, Ordering::Relaxed),
                Err(_) => self.1.fetch_add(1, Ordering::Relaxed),
            };
        }
    }
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", LINGER_MS.to_string())
        .set("batch.size", BATCH_SIZE.to_string())
        .set("compression.type", codec)
        .set("queue.buffering.max.messages", "2000000")
        .set("queue.buffering.max.kbytes", "2097151");
    if let Some(ca) = &ca {
        config
            .set("security.protocol", "ssl")
            .set("ssl.ca.location", ca);
    }
    let producer: ThreadedProducer<Counter> =
        config.create_with_context(Counter(AtomicU64::new(0), AtomicU64::new(0)))?;
    for v in values {
        let mut record = BaseRecord::<(), [u8]>::to(topic).payload(&v[..]);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
    }
    producer.flush(Duration::from_secs(120))?;
    let ctx = producer.context();
    if ctx.1.load(Ordering::Relaxed) > 0 || ctx.0.load(Ordering::Relaxed) != values.len() as u64 {
        return Err("rdkafka: not every record was delivered".into());
    }
    Ok(())
}

async fn confluent(
    bootstrap: &str,
    topic: &str,
    values: &[Vec<u8>],
    codec: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    use confluent_kafka::{
        common::serialization::ByteArraySerializer,
        producer::{KafkaProducer, Producer, ProducerConfig, ProducerRecord},
    };
    let props = std::collections::HashMap::from([
        ("bootstrap.servers".to_string(), bootstrap.to_string()),
        ("acks".to_string(), "all".to_string()),
        ("enable.idempotence".to_string(), "true".to_string()),
        ("linger.ms".to_string(), LINGER_MS.to_string()),
        ("batch.size".to_string(), BATCH_SIZE.to_string()),
        ("compression.type".to_string(), codec.to_string()),
        ("buffer.memory".to_string(), (256u64 << 20).to_string()),
    ]);
    let producer = KafkaProducer::<Vec<u8>, Vec<u8>>::new(
        ProducerConfig::new(&props)?,
        ByteArraySerializer::default(),
        ByteArraySerializer::default(),
    )?;
    let mut futures = Vec::with_capacity(values.len());
    for v in values {
        let record = ProducerRecord::<&[u8], &[u8]>::new(topic.to_string(), Some(&v[..]));
        futures.push(producer.send(record, None).await?);
    }
    producer.flush().await?;
    for f in futures {
        f.get().await?;
    }
    producer.close().await?;
    Ok(())
}

async fn barnabas(
    bootstrap: &str,
    topic: &str,
    values: &[Vec<u8>],
    codec: &str,
    batches: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    use kafka_protocol::records::Compression;
    let mut producer = barnabas_tokio::Producer::idempotent(
        barnabas_tokio::Tokio,
        &[bootstrap.to_string()],
        "bench",
    )
    .await?;
    producer.set_compression(match codec {
        "lz4" => Compression::Lz4,
        "none" => Compression::None,
        other => return Err(format!("codec {other} not benchmarked").into()),
    });
    producer.set_linger(Duration::from_millis(LINGER_MS));
    producer.set_batch_size(BATCH_SIZE);
    let record = |v: &Vec<u8>| {
        barnabas_tokio::ProducerRecord::new(None, Some(bytes::Bytes::copy_from_slice(v)))
    };
    if batches {
        // Its fastest documented use: 1,000 records per call, several calls pipelined.
        let partitions = 6;
        for (n, chunk) in values.chunks(1000).enumerate() {
            let records: Vec<_> = chunk.iter().map(record).collect();
            producer
                .enqueue(topic, (n % partitions) as i32, &records)
                .await?;
            if n % 5 == 4 {
                producer.flush().await?;
            }
        }
    } else {
        for v in values {
            producer.produce(topic, record(v)).await?;
        }
    }
    producer.flush().await?;
    Ok(())
}

async fn krafka(
    bootstrap: &str,
    topic: &str,
    values: &[Vec<u8>],
    codec: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    use krafka::{Compression, Kafka, Record, producer::Acks};
    let kafka = Kafka::builder(bootstrap)
        .client_id("bench")
        .connect()
        .await?;
    let producer = kafka
        .producer()
        .acks(Acks::All)
        .idempotent(true)
        .linger(Duration::from_millis(LINGER_MS))
        .batch_size(BATCH_SIZE)
        .compression(match codec {
            "lz4" => Compression::Lz4,
            "none" => Compression::None,
            other => return Err(format!("codec {other} not benchmarked").into()),
        })
        .build()
        .await?;
    let mut handles = Vec::with_capacity(values.len());
    for v in values {
        handles.push(producer.enqueue(Record::new(topic, v.clone())).await?);
    }
    for h in handles {
        let _meta = h.await?;
    }
    producer.close().await?;
    Ok(())
}
