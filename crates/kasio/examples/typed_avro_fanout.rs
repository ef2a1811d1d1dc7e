//! Avro records of a 10-field schema through a real broker and a real Schema Registry,
//! with the typed handles on tokio: a typed producer writes N records, the first half
//! with version 1 of the schema and the second half with version 2 (BACKWARD-compatible:
//! one more field, with a default); then C consumers of one group (KIP-848) read them
//! all at once with version 2 as their reader schema, sharing one registry client of
//! their own. Prints what it measured as one JSON line:
//!
//! ```text
//! typed_avro_fanout BOOTSTRAP REGISTRY_URL TOPIC N C
//! {"produced":N,"distinct":N,"defaulted":N/2,"schema_ids":[..],"registry_requests":2,...}
//! ```
//!
//! `registry_requests` is what the consumers' client sent: one per schema id however
//! many records and consumers, as concurrent misses of one id share one request.

use kasio::registry::Schema;
use kasio::serde::{AvroDeserializer, AvroSerializer, OnBadRecord, StringCodec};
use kasio::tokio::{Admin, Consumer, Producer, SchemaRegistry};
use kasio::{ConsumerConfig, NewTopic, Record, Typed};
use std::{
    collections::VecDeque,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

const FIELDS: &str = r#"
  {"name":"id","type":"long"},
  {"name":"customer","type":"string"},
  {"name":"item","type":"string"},
  {"name":"quantity","type":"int"},
  {"name":"price","type":"double"},
  {"name":"paid","type":"boolean"},
  {"name":"note","type":["null","string"],"default":null},
  {"name":"created","type":"long"},
  {"name":"region","type":"string"},
  {"name":"weight","type":"float"}"#;

fn schema(extra: &str) -> Schema {
    Schema::avro(format!(
        r#"{{"type":"record","name":"Order","namespace":"kasio.fanout","fields":[{FIELDS}{extra}]}}"#
    ))
}

#[derive(serde::Serialize)]
struct OrderV1 {
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

#[derive(serde::Serialize, serde::Deserialize)]
struct OrderV2 {
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
    channel: String,
}

fn order(id: i64) -> OrderV1 {
    OrderV1 {
        id,
        customer: format!("customer-{}", id % 1000),
        item: "tea".into(),
        quantity: (id % 7) as i32,
        price: id as f64 / 100.0,
        paid: id % 2 == 0,
        note: (id % 3 == 0).then(|| "gift".into()),
        created: 1_700_000_000_000 + id,
        region: "eu".into(),
        weight: 0.5,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bootstrap, url, topic, n, c] = &args[..] else {
        return Err("usage: typed_avro_fanout BOOTSTRAP REGISTRY_URL TOPIC N C".into());
    };
    let n: i64 = n.parse()?;
    let c: usize = c.parse()?;
    let admin = Admin::from_properties([("bootstrap.servers", bootstrap.as_str())])?;
    let partitions = i32::try_from(c * 2)?;
    admin
        .create_topics(&[NewTopic::new(topic, partitions, 1)], false)
        .await?;

    // The producer: both versions registered under the topic's value subject.
    let registry = SchemaRegistry::from_properties([("url", url.as_str())])?;
    let subject = format!("{topic}-value");
    let v1 = schema("");
    let v2 = schema(r#",{"name":"channel","type":"string","default":"web"}"#);
    let id1 = registry.register(&subject, v1.clone()).await?;
    let id2 = registry.register(&subject, v2.clone()).await?;
    let producer = Producer::from_properties([
        ("bootstrap.servers", bootstrap.as_str()),
        ("linger.ms", "5"),
    ])?;
    let mut old = producer
        .clone()
        .typed(StringCodec, AvroSerializer::<OrderV1>::new(id1, &v1)?);
    let mut new = producer
        .clone()
        .typed(StringCodec, AvroSerializer::<OrderV2>::new(id2, &v2)?);
    let started = Instant::now();
    let mut deliveries = VecDeque::new();
    for id in 0..n {
        let key = id.to_string();
        let record = Record::new(topic);
        let v = order(id);
        let delivery = if id < n / 2 {
            old.send(record, Some(key.as_str()), Some(&v)).await?
        } else {
            let v = OrderV2 {
                id: v.id,
                customer: v.customer,
                item: v.item,
                quantity: v.quantity,
                price: v.price,
                paid: v.paid,
                note: v.note,
                created: v.created,
                region: v.region,
                weight: v.weight,
                channel: "app".into(),
            };
            new.send(record, Some(key.as_str()), Some(&v)).await?
        };
        // A window of deliveries in flight: every one is checked, none is kept for long.
        deliveries.push_back(delivery);
        if deliveries.len() >= 50_000
            && let Some(oldest) = deliveries.pop_front()
        {
            oldest.await?;
        }
    }
    for d in deliveries {
        d.await?;
    }
    producer.close().await;
    let produce_s = started.elapsed().as_secs_f64();

    // The consumers: one registry client of their own, shared.
    let schemas = SchemaRegistry::from_properties([("url", url.as_str())])?;
    let seen = Arc::new(Mutex::new(vec![false; usize::try_from(n)?]));
    let distinct = Arc::new(AtomicU64::new(0));
    let defaulted = Arc::new(AtomicU64::new(0));
    let group = format!("{topic}-readers");
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..c {
        let mut config = ConsumerConfig::new(bootstrap)?;
        config
            .set("group.id", &group)?
            .set("group.protocol", "consumer")?
            .set("auto.offset.reset", "earliest")?;
        let consumer = Consumer::new(config)?;
        consumer.subscribe(&[topic.as_str()])?;
        let codec = AvroDeserializer::<OrderV2>::new(schemas.clone()).with_reader_schema(&v2)?;
        let mut orders = consumer
            .typed(StringCodec, codec)
            .with_registry(schemas.clone())
            .on_bad_record(OnBadRecord::Fail);
        let (seen, distinct, defaulted) = (seen.clone(), distinct.clone(), defaulted.clone());
        let total = u64::try_from(n)?;
        tasks.push(tokio::spawn(async move {
            while distinct.load(Ordering::SeqCst) < total {
                let next = tokio::time::timeout(Duration::from_millis(500), orders.next()).await;
                let Ok(got) = next else { continue };
                let Typed::Record(record) = got.map_err(|e| e.to_string())? else {
                    continue;
                };
                let Some(order) = record.value else {
                    return Err("a tombstone".to_string());
                };
                if record.key.as_deref() != Some(order.id.to_string().as_str()) {
                    return Err(format!("key {:?} for order {}", record.key, order.id));
                }
                let expected = if order.id < total as i64 / 2 {
                    "web"
                } else {
                    "app"
                };
                if order.channel != expected {
                    return Err(format!("order {} has channel {}", order.id, order.channel));
                }
                let first = {
                    let mut seen = seen.lock().map_err(|e| e.to_string())?;
                    let slot = usize::try_from(order.id)
                        .ok()
                        .and_then(|i| seen.get_mut(i))
                        .ok_or(format!("order {} out of range", order.id))?;
                    !std::mem::replace(slot, true)
                };
                if first {
                    distinct.fetch_add(1, Ordering::SeqCst);
                    if order.channel == "web" {
                        defaulted.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
            orders.consumer().close().await;
            Ok::<(), String>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let consume_s = started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "produced": n,
            "distinct": distinct.load(Ordering::SeqCst),
            "defaulted": defaulted.load(Ordering::SeqCst),
            "schema_ids": [id1, id2],
            "registry_requests": schemas.requests_sent(),
            "consumers": c,
            "produce_s": produce_s,
            "consume_s": consume_s,
        })
    );
    Ok(())
}
