//! Avro records through a Schema Registry, as a producer and a consumer would frame them:
//! the schema registered under the topic's value subject (Confluent's TopicNameStrategy),
//! its id in front of each datum, the writer's schema fetched by that id when reading.
//! Uses the blocking `SchemaRegistry`; the lab test (tests/lab/test_registry.py) runs it
//! beside confluent-kafka's `AvroSerializer` and `AvroDeserializer`.
//!
//! ```text
//! registry_avro write URL TOPIC JSON   registers the Order schema for TOPIC, prints the framed hex
//! registry_avro read URL HEX           prints {"schema_id": N, "value": {...}}
//! ```
//!
//! An order's `price` is a decimal (precision 9, scale 2) written as a string, "12.50".

use kasio::blocking::SchemaRegistry;
use kasio::registry::Schema;
use kasio::serde::{
    AvroDeserializer, AvroSerializer, Context, DeserializeError, Deserializer, Serializer,
    SubjectNameStrategy, apache_avro::Decimal, wire,
};
use std::collections::BTreeMap;

/// The schema both sides use: a union, a map and a decimal.
const ORDER: &str = r#"{"type":"record","name":"Order","namespace":"kasio.lab","fields":[
  {"name":"id","type":"long"},
  {"name":"item","type":"string"},
  {"name":"note","type":["null","string"],"default":null},
  {"name":"tags","type":{"type":"map","values":"int"}},
  {"name":"price","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}}
]}"#;

#[derive(serde::Serialize, serde::Deserialize)]
struct Order {
    id: i64,
    item: String,
    note: Option<String>,
    tags: BTreeMap<String, i32>,
    price: Decimal,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["write", url, topic, json] => write(url, topic, json),
        ["read", url, hex] => read(url, hex),
        _ => fail("usage: registry_avro write URL TOPIC JSON | read URL HEX"),
    }
}

fn registry(url: &str) -> SchemaRegistry {
    SchemaRegistry::from_properties([("url", url), ("max.retries", "1")])
        .unwrap_or_else(|e| fail(&e.to_string()))
}

/// An order as JSON lines carry it: the price as text.
#[derive(serde::Deserialize)]
struct OrderLine {
    id: i64,
    item: String,
    note: Option<String>,
    tags: BTreeMap<String, i32>,
    price: String,
}

fn write(url: &str, topic: &str, json: &str) {
    let line: OrderLine = serde_json::from_str(json).unwrap_or_else(|e| fail(&e.to_string()));
    let order = Order {
        id: line.id,
        item: line.item,
        note: line.note,
        tags: line.tags,
        price: decimal(&line.price),
    };
    let schema = Schema::avro(ORDER);
    let registry = registry(url);
    let ctx = Context::value(topic);
    let subject = SubjectNameStrategy::Topic
        .subject(&ctx, None)
        .unwrap_or_else(|| fail("the topic strategy needs no record name"));
    let id = registry
        .register(&subject, schema.clone())
        .wait()
        .unwrap_or_else(|e| fail(&e.to_string()));
    let codec = AvroSerializer::<Order>::new(id, &schema).unwrap_or_else(|e| fail(&e.to_string()));
    let mut out = Vec::new();
    codec
        .serialize(&order, &ctx, &mut out)
        .unwrap_or_else(|e| fail(&e.to_string()));
    println!(
        "{}",
        out.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
}

fn read(url: &str, hex: &str) {
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("zz"), 16))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|_| fail("not hex"));
    let registry = registry(url);
    let cache = registry.clone();
    let codec = AvroDeserializer::<Order>::new(move |id| cache.cached_schema(id));
    let ctx = Context::value("registry-avro");
    let order = match codec.deserialize(&bytes, &ctx) {
        // The consumer's part: fetch the writer's schema once, then read again.
        Err(DeserializeError::UnknownSchema { id }) => {
            registry
                .schema_by_id(id)
                .wait()
                .unwrap_or_else(|e| fail(&e.to_string()));
            codec.deserialize(&bytes, &ctx)
        }
        other => other,
    }
    .unwrap_or_else(|e| fail(&e.to_string()));
    let Ok(framed) = wire::parse(&bytes) else {
        unreachable!("it deserialized")
    };
    let wire::SchemaRef::Id(id) = framed.schema else {
        unreachable!("ids only")
    };
    let value = serde_json::json!({
        "id": order.id, "item": order.item, "note": order.note, "tags": order.tags,
        "price": price_text(&order.price),
    });
    println!("{}", serde_json::json!({"schema_id": id, "value": value}));
}

/// "12.50" as the scale-2 decimal's two's-complement bytes.
fn decimal(text: &str) -> Decimal {
    let (whole, cents) = text.split_once('.').unwrap_or((text, "00"));
    let negative = whole.starts_with('-');
    let units: i64 = format!("{}{cents:0<2}", whole.trim_start_matches('-'))
        .parse()
        .unwrap_or_else(|_| fail("price: a decimal with at most 2 places"));
    let units = if negative { -units } else { units };
    let bytes = units.to_be_bytes();
    // The shortest two's complement, as Java's BigInteger writes it.
    let skip = bytes
        .windows(2)
        .take_while(|w| (w[0] == 0 && w[1] & 0x80 == 0) || (w[0] == 0xff && w[1] & 0x80 != 0))
        .count();
    Decimal::from(&bytes[skip..])
}

fn price_text(price: &Decimal) -> String {
    let bytes = Vec::<u8>::try_from(price).unwrap_or_else(|e| fail(&e.to_string()));
    if bytes.len() > 8 {
        fail("price: too large for this example");
    }
    let fill = if bytes.first().is_some_and(|b| b & 0x80 != 0) {
        0xff
    } else {
        0
    };
    let mut wide = [fill; 8];
    wide[8 - bytes.len()..].copy_from_slice(&bytes);
    let units = i64::from_be_bytes(wide);
    let sign = if units < 0 { "-" } else { "" };
    format!(
        "{sign}{}.{:02}",
        units.unsigned_abs() / 100,
        units.unsigned_abs() % 100
    )
}

fn fail(why: &str) -> ! {
    eprintln!("registry_avro: {why}");
    std::process::exit(2)
}
