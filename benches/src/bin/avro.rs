//! Avro records of a 10-field schema through a Schema Registry, produced or consumed by one
//! client: kasio's typed handles with its Avro codec and registry client, or rust-rdkafka
//! with schema_registry_converter (the usual Rust pairing). Prints a JSON line with the
//! throughput and the process's CPU time; `benches/run-avro` runs each in its own process.
//!
//! `avro CLIENT produce|consume BOOTSTRAP REGISTRY_URL TOPIC PARTITIONS COUNT`

use kasio_benches::cpu_seconds;
use std::{collections::VecDeque, time::Instant};

const SCHEMA: &str = r#"{"type":"record","name":"Order","namespace":"kasio.bench","fields":[
  {"name":"id","type":"long"},
  {"name":"customer","type":"string"},
  {"name":"item","type":"string"},
  {"name":"quantity","type":"int"},
  {"name":"price","type":"double"},
  {"name":"paid","type":"boolean"},
  {"name":"note","type":["null","string"],"default":null},
  {"name":"created","type":"long"},
  {"name":"region","type":"string"},
  {"name":"weight","type":"float"}]}"#;

#[derive(serde::Serialize, serde::Deserialize)]
struct Order {
    id: i64,
    customer: String,
    item: String,
    quantity: i32,
    price: f64,
    paid: bool,
    note: Option<String>,
    created: i64,
    region: String,
    weight: f32,
}

fn order(id: u64) -> Order {
    let id = id as i64;
    Order {
        id,
        customer: format!("customer-{}", id % 1000),
        item: "green tea, loose leaf".into(),
        quantity: (id % 7) as i32,
        price: id as f64 / 100.0,
        paid: id % 2 == 0,
        note: (id % 3 == 0).then(|| "gift wrap".into()),
        created: 1_700_000_000_000 + id,
        region: "eu-west".into(),
        weight: 0.5,
    }
}

/// Deliveries in flight before the oldest is awaited.
const WINDOW: usize = 100_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, client, phase, bootstrap, url, topic, partitions, count] = args.as_slice() else {
        return Err(
            "usage: avro CLIENT produce|consume BOOTSTRAP REGISTRY_URL TOPIC PARTITIONS COUNT"
                .into(),
        );
    };
    let partitions: i32 = partitions.parse()?;
    let count: u64 = count.parse()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let cpu0 = cpu_seconds();
    let start = Instant::now();
    let check = match (client.as_str(), phase.as_str()) {
        ("kasio", "produce") => runtime.block_on(kasio_produce(bootstrap, url, topic, count))?,
        ("kasio", "consume") => {
            runtime.block_on(kasio_consume(bootstrap, url, topic, partitions, count))?
        }
        ("rdkafka", "produce") => {
            runtime.block_on(rdkafka_produce(bootstrap, url, topic, count))?
        }
        ("rdkafka", "consume") => {
            runtime.block_on(rdkafka_consume(bootstrap, url, topic, partitions, count))?
        }
        other => return Err(format!("unknown client and phase {other:?}").into()),
    };
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    println!(
        "{{\"client\": \"{client}\", \"phase\": \"{phase}\", \"records\": {count}, \"check\": {check}, \"seconds\": {secs:.3}, \"records_per_second\": {:.0}, \"cpu_seconds\": {cpu:.2}, \"cpu_seconds_per_million\": {:.3}}}",
        count as f64 / secs,
        cpu / (count as f64 / 1e6)
    );
    Ok(())
}

/// The sum of the quantities read: every client must decode every record to know it.
fn quantity_sum(count: u64) -> u64 {
    (0..count).map(|id| id % 7).sum()
}

async fn kasio_produce(
    bootstrap: &str,
    url: &str,
    topic: &str,
    count: u64,
) -> Result<u64, Box<dyn std::error::Error>> {
    use kasio::Record;
    use kasio::registry::Schema;
    use kasio::serde::{AvroSerializer, StringCodec};
    use kasio::tokio::{Producer, SchemaRegistry};
    let registry = SchemaRegistry::from_properties([("url", url)])?;
    let schema = Schema::avro(SCHEMA);
    let id = registry
        .register(&format!("{topic}-value"), schema.clone())
        .await?;
    let producer = Producer::from_properties([
        ("bootstrap.servers", bootstrap),
        ("linger.ms", "5"),
        ("batch.size", "1048576"),
    ])?;
    let mut orders = producer
        .clone()
        .typed(StringCodec, AvroSerializer::<Order>::new(id, &schema)?);
    let mut window = VecDeque::new();
    for id in 0..count {
        let key = id.to_string();
        let d = orders
            .send(Record::new(topic), Some(key.as_str()), Some(&order(id)))
            .await?;
        window.push_back(d);
        if window.len() >= WINDOW
            && let Some(oldest) = window.pop_front()
        {
            oldest.await?;
        }
    }
    for d in window {
        d.await?;
    }
    producer.close().await;
    Ok(quantity_sum(count))
}

async fn kasio_consume(
    bootstrap: &str,
    url: &str,
    topic: &str,
    partitions: i32,
    count: u64,
) -> Result<u64, Box<dyn std::error::Error>> {
    use kasio::serde::{AvroDeserializer, StringCodec};
    use kasio::tokio::{Consumer, SchemaRegistry};
    use kasio::{Seek, Typed};
    let registry = SchemaRegistry::from_properties([("url", url)])?;
    let consumer = Consumer::from_properties([("bootstrap.servers", bootstrap)])?;
    consumer.assign((0..partitions).map(|p| (topic, p)));
    for p in 0..partitions {
        consumer.seek(topic, p, Seek::Beginning);
    }
    let mut orders = consumer
        .typed(
            StringCodec,
            AvroDeserializer::<Order>::new(registry.clone()),
        )
        .with_registry(registry.clone());
    let (mut records, mut sum) = (0u64, 0u64);
    while records < count {
        if let Typed::Record(r) = orders.next().await? {
            records += 1;
            sum += r.value.map_or(0, |o| o.quantity as u64);
        }
    }
    orders.consumer().close().await;
    eprintln!("kasio: {} registry request(s)", registry.requests_sent());
    Ok(sum)
}

async fn rdkafka_produce(
    bootstrap: &str,
    url: &str,
    topic: &str,
    count: u64,
) -> Result<u64, Box<dyn std::error::Error>> {
    use rdkafka::{
        ClientConfig,
        producer::{FutureProducer, FutureRecord, Producer},
        util::Timeout,
    };
    use schema_registry_converter::{
        async_impl::{avro::AvroEncoder, schema_registry::SrSettings},
        schema_registry_common::{SchemaType, SubjectNameStrategy, SuppliedSchema},
    };
    let encoder = AvroEncoder::new(SrSettings::new(url.to_owned()));
    // Registered on first use, as kasio's run registers before it sends.
    let strategy = SubjectNameStrategy::TopicNameStrategyWithSchema(
        topic.to_owned(),
        false,
        SuppliedSchema::new(
            Some("kasio.bench.Order".into()),
            SchemaType::Avro,
            SCHEMA.into(),
        ),
    );
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .set("batch.size", "1048576")
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("queue.buffering.max.messages", "1000000")
        .create()?;
    let mut window = VecDeque::new();
    for id in 0..count {
        let key = id.to_string();
        let bytes = encoder.encode_struct(order(id), &strategy).await?;
        let d = producer
            .send_result(FutureRecord::to(topic).key(&key).payload(&bytes))
            .map_err(|(e, _)| e)?;
        window.push_back(d);
        if window.len() >= WINDOW
            && let Some(oldest) = window.pop_front()
        {
            oldest.await?.map_err(|(e, _)| e)?;
        }
    }
    for d in window {
        d.await?.map_err(|(e, _)| e)?;
    }
    producer.flush(Timeout::Never)?;
    Ok(quantity_sum(count))
}

async fn rdkafka_consume(
    bootstrap: &str,
    url: &str,
    topic: &str,
    partitions: i32,
    count: u64,
) -> Result<u64, Box<dyn std::error::Error>> {
    use rdkafka::{
        ClientConfig, Message, Offset, TopicPartitionList,
        consumer::{Consumer, StreamConsumer},
    };
    use schema_registry_converter::async_impl::{avro::AvroDecoder, schema_registry::SrSettings};
    let decoder = AvroDecoder::new(SrSettings::new(url.to_owned()));
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "bench-unused")
        .set("enable.auto.commit", "false")
        .create()?;
    let mut list = TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&list)?;
    let (mut records, mut sum) = (0u64, 0u64);
    while records < count {
        let message = consumer.recv().await?;
        let value = decoder.decode(message.payload()).await?.value;
        let order: Order = apache_avro::from_value(&value)?;
        records += 1;
        sum += order.quantity as u64;
    }
    Ok(sum)
}
