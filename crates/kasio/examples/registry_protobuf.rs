//! Protobuf messages through a Schema Registry, as a producer and a consumer frame them:
//! the `.proto` file registered under the topic's value subject, the schema id and the
//! message's index path in front of each message. Uses the blocking `SchemaRegistry`;
//! the lab test (tests/lab/test_registry.py) runs it beside confluent-kafka's
//! `ProtobufSerializer` and `ProtobufDeserializer`.
//!
//! ```text
//! registry_protobuf write URL TOPIC MESSAGE JSON   registers shop.proto for TOPIC, prints the framed hex
//! registry_protobuf read MESSAGE HEX               prints {"schema_id": N, "path": [..], "value": {...}}
//! registry_protobuf produce BOOTSTRAP URL TOPIC MESSAGE JSON...   each JSON through the broker
//! registry_protobuf consume BOOTSTRAP TOPIC MESSAGE N             the first N values of partition 0, as JSON lines
//! ```
//!
//! `produce` and `consume` use the typed producer and consumer.
//!
//! MESSAGE is `kasio.lab.Order` (the file's second message) or `kasio.lab.Order.Line`
//! (nested in it): neither has the path `[0]`.

use kasio::blocking::{Consumer, Producer, SchemaRegistry};
use kasio::registry::Schema;
use kasio::serde::{
    Context, Deserializer, ProtobufDeserializer, ProtobufSerializer, Serializer, StringCodec,
    SubjectNameStrategy, wire,
};
use kasio::{Record, Seek, Typed};
use std::time::Duration;

/// The file both sides use.
const SHOP: &str = r#"syntax = "proto3";
package kasio.lab;

message Header {
  string source = 1;
}
message Order {
  int64 id = 1;
  string item = 2;
  repeated Line lines = 3;
  message Line {
    string sku = 1;
    uint32 qty = 2;
  }
}
"#;

#[derive(Clone, PartialEq, prost::Message, serde::Serialize, serde::Deserialize)]
struct Order {
    #[prost(int64, tag = "1")]
    #[serde(default)]
    id: i64,
    #[prost(string, tag = "2")]
    #[serde(default)]
    item: String,
    #[prost(message, repeated, tag = "3")]
    #[serde(default)]
    lines: Vec<Line>,
}

#[derive(Clone, PartialEq, prost::Message, serde::Serialize, serde::Deserialize)]
struct Line {
    #[prost(string, tag = "1")]
    #[serde(default)]
    sku: String,
    #[prost(uint32, tag = "2")]
    #[serde(default)]
    qty: u32,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["write", url, topic, message, json] => write(url, topic, message, json),
        ["read", message, hex] => read(message, hex),
        ["produce", bootstrap, url, topic, message, ref values @ ..] => {
            produce(bootstrap, url, topic, message, values);
        }
        ["consume", bootstrap, topic, message, n] => consume(bootstrap, topic, message, n),
        _ => fail("usage: registry_protobuf write URL TOPIC MESSAGE JSON | read MESSAGE HEX"),
    }
}

fn write(url: &str, topic: &str, message: &str, json: &str) {
    let registry = SchemaRegistry::from_properties([("url", url), ("max.retries", "1")])
        .unwrap_or_else(|e| fail(&e.to_string()));
    let schema = Schema::protobuf(SHOP);
    let ctx = Context::value(topic);
    let subject = SubjectNameStrategy::Topic
        .subject(&ctx, None)
        .unwrap_or_else(|| fail("the topic strategy needs no record name"));
    let id = registry
        .register(&subject, schema.clone())
        .wait()
        .unwrap_or_else(|e| fail(&e.to_string()));
    let mut out = Vec::new();
    match message {
        "kasio.lab.Order" => encode::<Order>(id, &schema, message, json, &ctx, &mut out),
        "kasio.lab.Order.Line" => encode::<Line>(id, &schema, message, json, &ctx, &mut out),
        _ => fail("MESSAGE: kasio.lab.Order or kasio.lab.Order.Line"),
    }
    println!(
        "{}",
        out.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
}

fn encode<T: prost::Message + serde::de::DeserializeOwned>(
    id: u32,
    schema: &Schema,
    message: &str,
    json: &str,
    ctx: &Context<'_>,
    out: &mut Vec<u8>,
) {
    let value: T = serde_json::from_str(json).unwrap_or_else(|e| fail(&e.to_string()));
    ProtobufSerializer::<T>::for_message(id, schema, message)
        .and_then(|codec| codec.serialize(&value, ctx, out))
        .unwrap_or_else(|e| fail(&e.to_string()));
}

fn read(message: &str, hex: &str) {
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("zz"), 16))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|_| fail("not hex"));
    let ctx = Context::value("registry-protobuf");
    let value = match message {
        "kasio.lab.Order" => decode::<Order>(&bytes, &[1], &ctx),
        "kasio.lab.Order.Line" => decode::<Line>(&bytes, &[1, 0], &ctx),
        _ => fail("MESSAGE: kasio.lab.Order or kasio.lab.Order.Line"),
    };
    let framed = wire::parse(&bytes).unwrap_or_else(|e| fail(&e.to_string()));
    let wire::SchemaRef::Id(id) = framed.schema else {
        fail("a schema GUID; this example reads ids")
    };
    let (path, _) =
        wire::read_message_path(framed.payload).unwrap_or_else(|e| fail(&e.to_string()));
    println!(
        "{}",
        serde_json::json!({"schema_id": id, "path": path, "value": value})
    );
}

fn decode<T: prost::Message + Default + serde::Serialize>(
    bytes: &[u8],
    path: &[i32],
    ctx: &Context<'_>,
) -> serde_json::Value {
    let value: T = ProtobufDeserializer::new()
        .expecting(path)
        .deserialize(bytes, ctx)
        .unwrap_or_else(|e| fail(&e.to_string()));
    serde_json::to_value(value).unwrap_or_else(|e| fail(&e.to_string()))
}

fn produce(bootstrap: &str, url: &str, topic: &str, message: &str, values: &[&str]) {
    let registry = SchemaRegistry::from_properties([("url", url), ("max.retries", "1")])
        .unwrap_or_else(|e| fail(&e.to_string()));
    let schema = Schema::protobuf(SHOP);
    let id = registry
        .register(&format!("{topic}-value"), schema.clone())
        .wait()
        .unwrap_or_else(|e| fail(&e.to_string()));
    let producer = Producer::from_properties([("bootstrap.servers", bootstrap)])
        .unwrap_or_else(|e| fail(&e.to_string()));
    match message {
        "kasio.lab.Order" => send::<Order>(&producer, id, &schema, topic, message, values),
        "kasio.lab.Order.Line" => send::<Line>(&producer, id, &schema, topic, message, values),
        _ => fail("MESSAGE: kasio.lab.Order or kasio.lab.Order.Line"),
    }
    producer.close();
}

fn send<T: prost::Message + serde::de::DeserializeOwned>(
    producer: &Producer,
    id: u32,
    schema: &Schema,
    topic: &str,
    message: &str,
    values: &[&str],
) {
    let codec = ProtobufSerializer::<T>::for_message(id, schema, message)
        .unwrap_or_else(|e| fail(&e.to_string()));
    let mut typed = producer.typed(StringCodec, codec);
    for json in values {
        let value: T = serde_json::from_str(json).unwrap_or_else(|e| fail(&e.to_string()));
        typed
            .send_blocking(Record::new(topic).partition(0), None::<&str>, Some(&value))
            .unwrap_or_else(|e| fail(&e.to_string()))
            .wait()
            .unwrap_or_else(|e| fail(&e.to_string()));
    }
}

fn consume(bootstrap: &str, topic: &str, message: &str, n: &str) {
    let n: usize = n.parse().unwrap_or_else(|_| fail("N: a count"));
    match message {
        "kasio.lab.Order" => receive::<Order>(bootstrap, topic, &[1], n),
        "kasio.lab.Order.Line" => receive::<Line>(bootstrap, topic, &[1, 0], n),
        _ => fail("MESSAGE: kasio.lab.Order or kasio.lab.Order.Line"),
    }
}

fn receive<T: prost::Message + Default + serde::Serialize>(
    bootstrap: &str,
    topic: &str,
    path: &[i32],
    n: usize,
) {
    let consumer = Consumer::from_properties([("bootstrap.servers", bootstrap)])
        .unwrap_or_else(|e| fail(&e.to_string()));
    consumer.assign([(topic, 0)]);
    consumer.seek(topic, 0, Seek::Beginning);
    let mut typed = consumer.typed(
        StringCodec,
        ProtobufDeserializer::<T>::new().expecting(path),
    );
    let mut read = 0;
    while read < n {
        match typed.poll(Duration::from_secs(30)) {
            Some(Ok(Typed::Record(r))) => {
                let value = r.value.map(|v| serde_json::to_value(v).unwrap_or_default());
                println!("{}", serde_json::json!(value));
                read += 1;
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => fail(&e.to_string()),
            None => fail("no record in 30 s"),
        }
    }
    drop(typed);
    consumer.close();
}

fn fail(why: &str) -> ! {
    eprintln!("registry_protobuf: {why}");
    std::process::exit(2)
}
