//! JSON validated against a JSON Schema registered in a Schema Registry, as a producer
//! and a consumer would use it: the producer registers the schema under the topic's value
//! subject and refuses values it does not allow; the consumer fetches the writer's schema
//! by the id in front of each record and validates before it deserializes. Uses the
//! blocking `SchemaRegistry`; tests/lab/test_registry.py runs it beside confluent-kafka's
//! `JSONSerializer` and `JSONDeserializer`.
//!
//! ```text
//! registry_json_schema write URL TOPIC SCHEMA JSON   registers SCHEMA for TOPIC, prints the framed hex
//! registry_json_schema read URL HEX                  prints {"schema_id": N, "value": V}
//! registry_json_schema produce BOOTSTRAP URL TOPIC SCHEMA JSON...   each JSON through the broker
//! registry_json_schema consume BOOTSTRAP URL TOPIC N                the first N values of partition 0, validated
//! ```
//!
//! `produce` and `consume` use the typed producer and consumer.
//!
//! A value the schema does not allow exits with status 2 and the typed error.

use kasio::blocking::{Consumer, Producer, SchemaRegistry};
use kasio::registry::Schema;
use kasio::serde::{
    Context, DeserializeError, Deserializer, JsonSchemaDeserializer, JsonSchemaSerializer,
    Serializer, StringCodec, SubjectNameStrategy, wire,
};
use kasio::{Record, Seek, Typed};
use serde_json::Value;
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["write", url, topic, schema, json] => write(url, topic, schema, json),
        ["read", url, hex] => read(url, hex),
        ["produce", bootstrap, url, topic, schema, ref values @ ..] => {
            produce(bootstrap, url, topic, schema, values);
        }
        ["consume", bootstrap, url, topic, n] => consume(bootstrap, url, topic, n),
        _ => fail("usage: registry_json_schema write URL TOPIC SCHEMA JSON | read URL HEX"),
    }
}

fn registry(url: &str) -> SchemaRegistry {
    SchemaRegistry::from_properties([("url", url), ("max.retries", "1")])
        .unwrap_or_else(|e| fail(&e.to_string()))
}

fn write(url: &str, topic: &str, schema: &str, json: &str) {
    let value: Value = serde_json::from_str(json).unwrap_or_else(|e| fail(&e.to_string()));
    let schema = Schema::json(schema);
    let ctx = Context::value(topic);
    let subject = SubjectNameStrategy::Topic
        .subject(&ctx, None)
        .unwrap_or_else(|| fail("the topic strategy needs no record name"));
    let id = registry(url)
        .register(&subject, schema.clone())
        .wait()
        .unwrap_or_else(|e| fail(&e.to_string()));
    let mut out = Vec::new();
    JsonSchemaSerializer::<Value>::new(id, &schema)
        .and_then(|codec| codec.serialize(&value, &ctx, &mut out))
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
    let codec = JsonSchemaDeserializer::<Value>::validating(move |id| cache.cached_schema(id));
    let ctx = Context::value("registry-json-schema");
    let value = match codec.deserialize(&bytes, &ctx) {
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
    let Ok(wire::Framed {
        schema: wire::SchemaRef::Id(id),
        ..
    }) = wire::parse(&bytes)
    else {
        unreachable!("it deserialized with a schema id")
    };
    println!("{}", serde_json::json!({"schema_id": id, "value": value}));
}

fn produce(bootstrap: &str, url: &str, topic: &str, schema: &str, values: &[&str]) {
    let schema = Schema::json(schema);
    let id = registry(url)
        .register(&format!("{topic}-value"), schema.clone())
        .wait()
        .unwrap_or_else(|e| fail(&e.to_string()));
    let codec =
        JsonSchemaSerializer::<Value>::new(id, &schema).unwrap_or_else(|e| fail(&e.to_string()));
    let producer = Producer::from_properties([("bootstrap.servers", bootstrap)])
        .unwrap_or_else(|e| fail(&e.to_string()));
    let mut typed = producer.typed(StringCodec, codec);
    for json in values {
        let value: Value = serde_json::from_str(json).unwrap_or_else(|e| fail(&e.to_string()));
        typed
            .send_blocking(Record::new(topic).partition(0), None::<&str>, Some(&value))
            .unwrap_or_else(|e| fail(&e.to_string()))
            .wait()
            .unwrap_or_else(|e| fail(&e.to_string()));
    }
    producer.close();
}

fn consume(bootstrap: &str, url: &str, topic: &str, n: &str) {
    let n: usize = n.parse().unwrap_or_else(|_| fail("N: a count"));
    let registry = registry(url);
    let consumer = Consumer::from_properties([("bootstrap.servers", bootstrap)])
        .unwrap_or_else(|e| fail(&e.to_string()));
    consumer.assign([(topic, 0)]);
    consumer.seek(topic, 0, Seek::Beginning);
    let mut typed = consumer
        .typed(
            StringCodec,
            JsonSchemaDeserializer::<Value>::validating(registry.clone()),
        )
        .with_registry(registry);
    let mut read = 0;
    while read < n {
        match typed.poll(Duration::from_secs(30)) {
            Some(Ok(Typed::Record(r))) => {
                println!("{}", serde_json::json!(r.value));
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
    eprintln!("registry_json_schema: {why}");
    std::process::exit(2)
}
