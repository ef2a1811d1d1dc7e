//! Protobuf messages through a Schema Registry, as a producer and a consumer frame them:
//! the `.proto` file registered under the topic's value subject, the schema id and the
//! message's index path in front of each message. Uses the blocking `SchemaRegistry`;
//! the lab test (tests/lab/test_registry.py) runs it beside confluent-kafka's
//! `ProtobufSerializer` and `ProtobufDeserializer`.
//!
//! ```text
//! registry_protobuf write URL TOPIC MESSAGE JSON   registers shop.proto for TOPIC, prints the framed hex
//! registry_protobuf read MESSAGE HEX               prints {"schema_id": N, "path": [..], "value": {...}}
//! ```
//!
//! MESSAGE is `kasio.lab.Order` (the file's second message) or `kasio.lab.Order.Line`
//! (nested in it): neither has the path `[0]`.

use kasio::blocking::SchemaRegistry;
use kasio::registry::Schema;
use kasio::serde::{
    Context, Deserializer, ProtobufDeserializer, ProtobufSerializer, Serializer,
    SubjectNameStrategy, wire,
};

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

fn fail(why: &str) -> ! {
    eprintln!("registry_protobuf: {why}");
    std::process::exit(2)
}
