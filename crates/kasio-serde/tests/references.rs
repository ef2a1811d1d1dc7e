//! Schemas with references: the writer's schema imports others, found by subject and
//! version through the source, for Avro and JSON Schema.
#![cfg(all(feature = "avro", feature = "json-schema"))]
#![allow(clippy::unwrap_used)]

use kasio_registry::{Schema, SchemaReference};
use kasio_serde::{
    AvroDeserializer, AvroValueDeserializer, AvroValueSerializer, Context, DeserializeError,
    Deserializer, JsonSchemaDeserializer, JsonSchemaSerializer, SchemaSource, Serializer,
    apache_avro::types::Value,
};
use std::{collections::HashMap, sync::Arc};

/// A registry's cache: schemas by id and by subject and version.
#[derive(Default, Clone)]
struct Cache {
    ids: HashMap<u32, Arc<Schema>>,
    versions: HashMap<(String, i32), Arc<Schema>>,
}

impl SchemaSource for Cache {
    fn schema(&self, id: u32) -> Option<Arc<Schema>> {
        self.ids.get(&id).cloned()
    }
    fn referenced(&self, subject: &str, version: i32) -> Option<Arc<Schema>> {
        self.versions.get(&(subject.to_string(), version)).cloned()
    }
}

fn reference(name: &str, subject: &str) -> SchemaReference {
    SchemaReference {
        name: name.into(),
        subject: subject.into(),
        version: 1,
    }
}

const MONEY: &str = r#"{"type":"record","name":"Money","namespace":"shop","fields":[
    {"name":"cents","type":"long"},{"name":"currency","type":"shop.Currency"}]}"#;
const CURRENCY: &str =
    r#"{"type":"enum","name":"Currency","namespace":"shop","symbols":["EUR","USD"]}"#;
const ORDER: &str = r#"{"type":"record","name":"Order","namespace":"shop","fields":[
    {"name":"id","type":"long"},{"name":"total","type":"shop.Money"},
    {"name":"refund","type":["null","shop.Money"],"default":null}]}"#;

/// Order imports Money, which imports Currency.
fn avro_cache() -> (Cache, Schema, Schema, Schema) {
    let currency = Schema::avro(CURRENCY);
    let money = Schema::avro(MONEY).reference(reference("shop.Currency", "currency"));
    let order = Schema::avro(ORDER).reference(reference("shop.Money", "money"));
    let mut cache = Cache::default();
    cache.ids.insert(5, Arc::new(order.clone()));
    cache
        .versions
        .insert(("money".into(), 1), Arc::new(money.clone()));
    cache
        .versions
        .insert(("currency".into(), 1), Arc::new(currency.clone()));
    (cache, order, money, currency)
}

fn money(cents: i64) -> Value {
    Value::Record(vec![
        ("cents".into(), Value::Long(cents)),
        ("currency".into(), Value::Enum(1, "USD".into())),
    ])
}

#[test]
fn avro_with_nested_references_round_trips() {
    let (cache, order, m, currency) = avro_cache();
    let writer = AvroValueSerializer::importing(
        5,
        &order,
        &[("shop.Money", &m), ("shop.Currency", &currency)],
    )
    .unwrap();
    assert_eq!(writer.record_name().as_deref(), Some("shop.Order"));
    let value = Value::Record(vec![
        ("id".into(), Value::Long(7)),
        ("total".into(), money(250)),
        ("refund".into(), Value::Union(1, Box::new(money(50)))),
    ]);
    let ctx = Context::value("orders").at(0, 1);
    let mut bytes = Vec::new();
    writer.serialize(&value, &ctx, &mut bytes).unwrap();

    let reader = AvroValueDeserializer::new(cache.clone());
    assert_eq!(reader.deserialize(&bytes, &ctx).unwrap(), value);
    assert_eq!(
        reader.deserialize_json(&bytes, &ctx).unwrap(),
        serde_json::json!({"id": 7, "total": {"cents": 250, "currency": "USD"},
            "refund": {"cents": 50, "currency": "USD"}})
    );

    #[derive(Debug, PartialEq, serde::Deserialize)]
    enum Currency {
        #[serde(rename = "EUR")]
        Eur,
        #[serde(rename = "USD")]
        Usd,
    }
    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Money {
        cents: i64,
        currency: Currency,
    }
    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Order {
        id: i64,
        total: Money,
        refund: Option<Money>,
    }
    let typed = AvroDeserializer::<Order>::new(cache.clone());
    let got = typed.deserialize(&bytes, &ctx).unwrap();
    assert_eq!(got.total.currency, Currency::Usd);
    assert_eq!(got.id, 7);
    assert_eq!(got.refund.unwrap().cents, 50);

    // A reader schema importing the same types resolves to itself.
    let resolving = AvroValueDeserializer::new(cache)
        .with_reader_schema_importing(&order, &[("m", &m), ("c", &currency)])
        .unwrap();
    assert_eq!(resolving.deserialize(&bytes, &ctx).unwrap(), value);
}

#[test]
fn a_missing_reference_is_an_unknown_schema_and_a_schema_without_its_imports_is_refused() {
    let (cache, order, m, _) = avro_cache();
    let mut partial = Cache::default();
    partial.ids.insert(5, cache.ids[&5].clone());
    partial
        .versions
        .insert(("money".into(), 1), Arc::new(m.clone()));
    let reader = AvroValueDeserializer::new(partial);
    let bytes = [0, 0, 0, 0, 5, 14, 0xf4, 0x03, 2, 0];
    assert_eq!(
        reader.deserialize(&bytes, &Context::value("orders")),
        Err(DeserializeError::UnknownSchema { id: 5 })
    );
    let refused = AvroValueSerializer::new(5, &order).unwrap_err().to_string();
    assert!(refused.contains("references"), "{refused}");
    let refused = AvroValueSerializer::importing(5, &order, &[("shop.Money", &m)])
        .unwrap_err()
        .to_string();
    assert!(refused.contains("Currency"), "{refused}");
}

#[test]
fn references_in_a_cycle_or_too_deep_end() {
    // a imports b imports a: each once.
    let mut cache = Cache::default();
    let a = Schema::avro(r#"{"type":"enum","name":"A","symbols":["X"]}"#)
        .reference(reference("B", "b"));
    let b = Schema::avro(r#"{"type":"enum","name":"B","symbols":["Y"]}"#)
        .reference(reference("A", "a"));
    let main = Schema::avro(
        r#"{"type":"record","name":"M","fields":[{"name":"a","type":"A"},{"name":"b","type":"B"}]}"#,
    )
    .reference(reference("A", "a"));
    cache.ids.insert(1, Arc::new(main));
    cache.versions.insert(("a".into(), 1), Arc::new(a));
    cache.versions.insert(("b".into(), 1), Arc::new(b));
    let reader = AvroValueDeserializer::new(cache);
    assert_eq!(
        reader
            .deserialize_json(&[0, 0, 0, 0, 1, 0, 0], &Context::value("t"))
            .unwrap(),
        serde_json::json!({"a": "X", "b": "Y"})
    );

    // A chain longer than the cap.
    let mut cache = Cache::default();
    cache.ids.insert(
        1,
        Arc::new(Schema::avro(r#""int""#).reference(reference("s0", "s0"))),
    );
    for n in 0..40 {
        let next = reference(&format!("s{}", n + 1), &format!("s{}", n + 1));
        cache.versions.insert(
            (format!("s{n}"), 1),
            Arc::new(Schema::avro(r#""int""#).reference(next)),
        );
    }
    let reader = AvroValueDeserializer::new(cache);
    let error = reader
        .deserialize(&[0, 0, 0, 0, 1, 2], &Context::value("t"))
        .unwrap_err();
    assert!(error.to_string().contains("deeper"), "{error}");
}

#[test]
fn json_schema_with_references_validates_both_ways() {
    let address = Schema::json(
        r#"{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}"#,
    );
    let customer = Schema::json(
        r#"{"$id":"https://example.com/customer.json","type":"object",
            "properties":{"name":{"type":"string"},"address":{"$ref":"address.json"}}}"#,
    )
    .reference(reference("address.json", "address"));
    let relative = Schema::json(r#"{"type":"array","items":{"$ref":"address.json"}}"#)
        .reference(reference("address.json", "address"));
    let mut cache = Cache::default();
    cache.ids.insert(3, Arc::new(customer.clone()));
    cache.ids.insert(4, Arc::new(relative));
    cache
        .versions
        .insert(("address".into(), 1), Arc::new(address.clone()));
    let writer = JsonSchemaSerializer::<serde_json::Value>::importing(
        3,
        &customer,
        &[("address.json", &address)],
    )
    .unwrap();
    let ctx = Context::value("customers");
    let mut out = Vec::new();
    let good = serde_json::json!({"name": "Ada", "address": {"city": "London"}});
    writer.serialize(&good, &ctx, &mut out).unwrap();
    let bad = serde_json::json!({"name": "Ada", "address": {}});
    let refused = writer.serialize(&bad, &ctx, &mut Vec::new()).unwrap_err();
    assert!(refused.to_string().contains("/address"), "{refused}");

    let reader = JsonSchemaDeserializer::<serde_json::Value>::validating(cache);
    assert_eq!(reader.deserialize(&out, &ctx).unwrap(), good);
    let mut framed = vec![0, 0, 0, 0, 3];
    serde_json::to_writer(&mut framed, &bad).unwrap();
    assert!(matches!(
        reader.deserialize(&framed, &ctx),
        Err(DeserializeError::JsonSchema(_))
    ));
    let mut framed = vec![0, 0, 0, 0, 4];
    framed.extend_from_slice(br#"[{"city":"Oslo"},{"town":"x"}]"#);
    assert!(matches!(
        reader.deserialize(&framed, &ctx),
        Err(DeserializeError::JsonSchema(why)) if why.starts_with("at /1")
    ));

    // A `$ref` to what is not among the references fails to compile, without a fetch.
    let elsewhere = Schema::json(r#"{"$ref":"https://example.com/other.json"}"#)
        .reference(reference("address.json", "address"));
    let error = JsonSchemaSerializer::<serde_json::Value>::importing(
        1,
        &elsewhere,
        &[("address.json", &address)],
    )
    .unwrap_err();
    assert!(error.to_string().contains("other.json"), "{error}");
}
