//! Protobuf through Confluent's framing: the message-index path taken from the schema's
//! text, bytes as confluent-kafka's `ProtobufSerializer` writes them, and hostile bytes.
#![cfg(feature = "protobuf")]
#![allow(clippy::unwrap_used)]

use kasio_registry::Schema;
use kasio_serde::{
    Context, DeserializeError, Deserializer, ProtobufDeserializer, ProtobufSerializer,
    SerializeError, Serializer, wire::WireError,
};
use proptest::prelude::*;

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

#[derive(Clone, PartialEq, prost::Message)]
struct Order {
    #[prost(int64, tag = "1")]
    id: i64,
    #[prost(string, tag = "2")]
    item: String,
    #[prost(message, repeated, tag = "3")]
    lines: Vec<Line>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Line {
    #[prost(string, tag = "1")]
    sku: String,
    #[prost(uint32, tag = "2")]
    qty: u32,
}

impl prost::Name for Order {
    const NAME: &'static str = "Order";
    const PACKAGE: &'static str = "kasio.lab";
}

fn order() -> Order {
    Order {
        id: 7,
        item: "tea".into(),
        lines: vec![Line {
            sku: "a".into(),
            qty: 2,
        }],
    }
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// What confluent-kafka 2.16.1's `ProtobufSerializer` wrote for `order()` as the second
/// message of the file, registered under id 1 (recorded against the lab's registry).
const CONFLUENT_ORDER: &str = "00000000010202080712037465611a050a01611002";

#[test]
fn writes_what_confluent_kafka_writes() {
    let schema = Schema::protobuf(SHOP);
    let by_type = ProtobufSerializer::<Order>::for_type(1, &schema).unwrap();
    let by_name = ProtobufSerializer::<Order>::for_message(1, &schema, "kasio.lab.Order").unwrap();
    let by_path = ProtobufSerializer::<Order>::new(1, &[1]).unwrap();
    for codec in [by_type, by_name, by_path] {
        let mut out = Vec::new();
        codec
            .serialize(&order(), &Context::value("orders"), &mut out)
            .unwrap();
        assert_eq!(out, hex(CONFLUENT_ORDER));
    }
}

#[test]
fn reads_what_confluent_kafka_writes() {
    let read = ProtobufDeserializer::<Order>::new()
        .deserialize(&hex(CONFLUENT_ORDER), &Context::value("orders"))
        .unwrap();
    assert_eq!(read, order());
    let checked = ProtobufDeserializer::<Order>::new().expecting(&[1]);
    assert_eq!(
        checked.deserialize(&hex(CONFLUENT_ORDER), &Context::value("orders")),
        Ok(order())
    );
}

#[test]
fn first_and_nested_messages_frame_their_paths() {
    let schema = Schema::protobuf(SHOP);
    let line = Line {
        sku: "b".into(),
        qty: 1,
    };
    let nested =
        ProtobufSerializer::<Line>::for_message(5, &schema, "kasio.lab.Order.Line").unwrap();
    let mut out = Vec::new();
    nested
        .serialize(&line, &Context::value("t"), &mut out)
        .unwrap();
    assert_eq!(out[..8], [0, 0, 0, 0, 5, 4, 2, 0]);
    let first = ProtobufSerializer::<Line>::new(5, &[0]).unwrap();
    let mut short = Vec::new();
    first
        .serialize(&line, &Context::value("t"), &mut short)
        .unwrap();
    // The first message's path is the single byte 0.
    assert_eq!(short[..6], [0, 0, 0, 0, 5, 0]);
    assert_eq!(out[8..], short[6..]);
    let back = ProtobufDeserializer::<Line>::new().expecting(&[1, 0]);
    assert_eq!(back.deserialize(&out, &Context::value("t")), Ok(line));
    assert!(matches!(
        back.deserialize(&short, &Context::value("t")),
        Err(DeserializeError::Protobuf(why)) if why.contains("[0] where [1, 0]")
    ));
}

#[test]
fn unusable_schemas_and_paths_are_refused() {
    let avro = Schema::avro(r#""string""#);
    assert!(matches!(
        ProtobufSerializer::<Order>::for_type(1, &avro),
        Err(SerializeError::Schema(why)) if why.contains("not Protobuf")
    ));
    assert!(matches!(
        ProtobufSerializer::<Order>::for_message(1, &Schema::protobuf(SHOP), "kasio.lab.Nope"),
        Err(SerializeError::Schema(why)) if why.contains("no message kasio.lab.Nope")
    ));
    assert!(matches!(
        ProtobufSerializer::<Order>::for_type(1, &Schema::protobuf("message Order {")),
        Err(SerializeError::Schema(why)) if why.contains("unbalanced")
    ));
    for path in [&[][..], &[-1], &[0; 101]] {
        assert!(
            ProtobufSerializer::<Order>::new(1, path).is_err(),
            "{path:?}"
        );
    }
}

#[test]
fn hostile_frames_are_typed_errors() {
    let codec = ProtobufDeserializer::<Order>::new();
    let ctx = Context::value("t").at(0, 1);
    let cases: [(&[u8], DeserializeError); 4] = [
        (
            &[2, 0, 0, 0, 1, 0],
            DeserializeError::Wire(WireError::Magic(2)),
        ),
        (
            &[0, 0, 0],
            DeserializeError::Wire(WireError::Short { len: 3, need: 5 }),
        ),
        // A path claiming 64 indexes with two bytes left.
        (
            &[0, 0, 0, 0, 1, 0x80, 0x01, 0, 0],
            DeserializeError::Wire(WireError::PathLength(64)),
        ),
        (
            &[0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff],
            DeserializeError::Wire(WireError::Varint),
        ),
    ];
    for (bytes, want) in cases {
        assert_eq!(codec.deserialize(bytes, &ctx), Err(want), "{bytes:?}");
    }
    // A field claiming more bytes than there are.
    assert!(matches!(
        codec.deserialize(&[0, 0, 0, 0, 1, 0, 0x12, 0x7f, b'x'], &ctx),
        Err(DeserializeError::Protobuf(_))
    ));
}

proptest! {
    #[test]
    fn round_trips(id in any::<i64>(), item in ".{0,40}", skus in proptest::collection::vec(("[a-z]{0,8}", any::<u32>()), 0..5), schema_id in any::<u32>()) {
        let value = Order { id, item, lines: skus.into_iter().map(|(sku, qty)| Line { sku, qty }).collect() };
        let mut out = Vec::new();
        ProtobufSerializer::<Order>::new(schema_id, &[1]).unwrap().serialize(&value, &Context::value("t"), &mut out).unwrap();
        prop_assert_eq!(ProtobufDeserializer::<Order>::new().deserialize(&out, &Context::value("t")), Ok(value));
    }

    #[test]
    fn any_bytes_decode_or_fail(data in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = ProtobufDeserializer::<Order>::new().deserialize(&data, &Context::value("t"));
    }
}
