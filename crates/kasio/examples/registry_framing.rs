//! Confluent's Schema Registry framing with kasio's codecs, for checking against other
//! clients' serializers (the lab's `tests/lab/test_registry.py` runs it beside
//! confluent-kafka's JSON Schema serializer and a real registry):
//!
//! ```text
//! registry_framing read HEX        a framed JSON value: prints {"schema_id": N, "value": V}
//!                                  ({"schema_guid": HEX, ...} for a GUID)
//! registry_framing write ID JSON   frames the JSON value for schema ID: prints the hex
//! ```
//!
//! A bad frame or payload exits with status 2 and the typed error on standard error.

use kasio::serde::{Context, Deserializer, Json, Serializer, wire};
use serde_json::Value;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let ctx = Context::value("registry-framing");
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["read", text] => {
            let Some(bytes) = unhex(text) else {
                fail("not hex");
            };
            let framed = wire::parse(&bytes).unwrap_or_else(|e| fail(&e.to_string()));
            let value: Value = Json::new()
                .deserialize(framed.payload, &ctx)
                .unwrap_or_else(|e| fail(&e.to_string()));
            let read = match framed.schema {
                wire::SchemaRef::Id(id) => serde_json::json!({"schema_id": id, "value": value}),
                wire::SchemaRef::Guid(guid) => {
                    serde_json::json!({"schema_guid": hex(&guid), "value": value})
                }
            };
            println!("{read}");
        }
        ["write", id, json] => {
            let id: u32 = id.parse().unwrap_or_else(|_| fail("the id is not a u32"));
            let value: Value = serde_json::from_str(json).unwrap_or_else(|e| fail(&e.to_string()));
            let mut out = Vec::new();
            wire::frame(id, &mut out);
            Json::new()
                .serialize(&value, &ctx, &mut out)
                .unwrap_or_else(|e| fail(&e.to_string()));
            println!("{}", hex(&out));
        }
        _ => fail("usage: registry_framing read HEX | write ID JSON"),
    }
}

fn unhex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn fail(why: &str) -> ! {
    eprintln!("registry_framing: {why}");
    std::process::exit(2)
}
