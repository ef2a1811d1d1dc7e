//! Avro through Confluent's framing: serde types and generic values, unions, maps and
//! decimals, writer-to-reader resolution, and hostile bytes.
#![cfg(feature = "avro")]
#![allow(clippy::unwrap_used)]

use kasio_registry::Schema;
use kasio_serde::{
    AvroDeserializer, AvroSerializer, AvroValueDeserializer, AvroValueSerializer, Context,
    DeserializeError, Deserializer, Serializer,
    apache_avro::{Decimal, types::Value},
};
use std::{collections::HashMap, sync::Arc};

const V1: &str = r#"{"type":"record","name":"Order","namespace":"shop","fields":[
    {"name":"id","type":"long"},
    {"name":"item","type":"string"},
    {"name":"note","type":["null","string"],"default":null},
    {"name":"tags","type":{"type":"map","values":"int"}},
    {"name":"price","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}}
]}"#;

/// V1 plus a field with a default, less `tags`: BACKWARD-compatible.
const V2: &str = r#"{"type":"record","name":"Order","namespace":"shop","fields":[
    {"name":"id","type":"long"},
    {"name":"item","type":"string"},
    {"name":"note","type":["null","string"],"default":null},
    {"name":"price","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}},
    {"name":"channel","type":"string","default":"web"}
]}"#;

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Order {
    id: i64,
    item: String,
    note: Option<String>,
    tags: HashMap<String, i32>,
    #[serde(with = "serde_bytes")]
    price: Vec<u8>,
}

#[derive(Debug, PartialEq, serde::Deserialize)]
struct OrderV2 {
    id: i64,
    item: String,
    note: Option<String>,
    price: Decimal,
    channel: String,
}

fn source() -> impl Fn(u32) -> Option<Arc<Schema>> + Send + Sync {
    let v1 = Arc::new(Schema::avro(V1));
    let v2 = Arc::new(Schema::avro(V2));
    move |id| match id {
        1 => Some(v1.clone()),
        2 => Some(v2.clone()),
        _ => None,
    }
}

fn order(note: Option<&str>) -> Order {
    Order {
        id: -7,
        item: "tea".into(),
        note: note.map(String::from),
        tags: HashMap::from([("hot".into(), 1), ("green".into(), -2)]),
        price: vec![0x01, 0x2c], // 3.00 at scale 2
    }
}

#[test]
fn serde_types_round_trip_with_unions_maps_and_decimals() {
    let ctx = Context::value("orders").at(0, 5);
    let ser = AvroSerializer::<Order>::new(1, &Schema::avro(V1)).unwrap();
    let de = AvroDeserializer::<Order>::new(source());
    for note in [None, Some("with milk")] {
        let mut out = Vec::new();
        ser.serialize(&order(note), &ctx, &mut out).unwrap();
        assert_eq!(out[..5], [0, 0, 0, 0, 1]);
        assert_eq!(de.deserialize(&out, &ctx).unwrap(), order(note));
    }
}

#[test]
fn generic_values_round_trip() {
    let ctx = Context::value("orders");
    let value = Value::Record(vec![
        ("id".into(), Value::Long(1)),
        ("item".into(), Value::String("cake".into())),
        (
            "note".into(),
            Value::Union(1, Box::new(Value::String("n".into()))),
        ),
        (
            "tags".into(),
            Value::Map(HashMap::from([("a".into(), Value::Int(3))])),
        ),
        (
            "price".into(),
            Value::Decimal(Decimal::from(vec![0x04, 0xd2])),
        ),
    ]);
    let mut out = Vec::new();
    AvroValueSerializer::new(1, &Schema::avro(V1))
        .unwrap()
        .serialize(&value, &ctx, &mut out)
        .unwrap();
    let back = AvroValueDeserializer::new(source())
        .deserialize(&out, &ctx)
        .unwrap();
    assert_eq!(back, value);
    let bad = Value::Record(vec![("id".into(), Value::String("x".into()))]);
    let mut out = vec![9];
    let err = AvroValueSerializer::new(1, &Schema::avro(V1))
        .unwrap()
        .serialize(&bad, &ctx, &mut out);
    assert!(err.is_err());
    assert_eq!(out, [9], "a refused value leaves the buffer as it was");
}

#[test]
fn a_reader_on_the_new_schema_reads_old_and_new_records() {
    let ctx = Context::value("orders");
    let de = AvroDeserializer::<OrderV2>::new(source())
        .with_reader_schema(&Schema::avro(V2))
        .unwrap();
    let mut old = Vec::new();
    AvroSerializer::<Order>::new(1, &Schema::avro(V1))
        .unwrap()
        .serialize(&order(None), &ctx, &mut old)
        .unwrap();
    let read = de.deserialize(&old, &ctx).unwrap();
    assert_eq!(
        (read.id, read.channel.as_str(), read.price),
        (-7, "web", Decimal::from(vec![0x01, 0x2c]))
    );

    #[derive(serde::Serialize)]
    struct New<'a> {
        id: i64,
        item: &'a str,
        note: Option<&'a str>,
        #[serde(with = "serde_bytes")]
        price: &'a [u8],
        channel: &'a str,
    }
    let mut new = Vec::new();
    AvroSerializer::<New<'_>>::new(2, &Schema::avro(V2))
        .unwrap()
        .serialize(
            &New {
                id: 8,
                item: "pie",
                note: Some("x"),
                price: &[1],
                channel: "app",
            },
            &ctx,
            &mut new,
        )
        .unwrap();
    assert_eq!(de.deserialize(&new, &ctx).unwrap().channel, "app");
}

#[test]
fn bad_records_are_typed_errors() {
    let ctx = Context::value("orders").at(1, 2);
    let de = AvroDeserializer::<Order>::new(source());
    assert_eq!(
        de.deserialize(&[0, 0, 0, 0, 77, 0], &ctx),
        Err(DeserializeError::UnknownSchema { id: 77 })
    );
    assert!(matches!(
        de.deserialize(&[5, 0, 0, 0, 1], &ctx),
        Err(DeserializeError::Wire(_))
    ));
    assert!(matches!(
        de.deserialize(&[0, 0, 0], &ctx),
        Err(DeserializeError::Wire(_))
    ));
    // A string claiming a billion bytes, in a 12-byte record.
    assert!(matches!(
        de.deserialize(
            &[0, 0, 0, 0, 1, 2, 0x80, 0xa8, 0xd6, 0xb9, 0x07, b'x'],
            &ctx
        ),
        Err(DeserializeError::Avro(_))
    ));
    let not_avro = |id| (id == 9).then(|| Arc::new(Schema::json("{}")));
    let err = AvroDeserializer::<Order>::new(not_avro).deserialize(&[0, 0, 0, 0, 9], &ctx);
    assert!(matches!(err, Err(DeserializeError::Schema(_))), "{err:?}");
    assert!(AvroSerializer::<Order>::new(1, &Schema::avro("{not json")).is_err());
}

proptest::proptest! {
    #[test]
    fn any_bytes_decode_or_fail(mut data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
        let de = AvroValueDeserializer::new(source());
        let _ = de.deserialize(&data, &Context::value("t"));
        if data.len() >= 5 {
            data[..5].copy_from_slice(&[0, 0, 0, 0, 1]);
            let _ = de.deserialize(&data, &Context::value("t"));
        }
    }
}
