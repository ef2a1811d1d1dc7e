//! Bytes from the wire against every codec: they decode or fail with an error, never
//! panic, overflow the stack or allocate what a length field claims.

use kasio_serde::{
    BytesCodec, Context, DeserializeError, Deserializer, Json, MsgPack, Serializer, StringCodec,
};
use proptest::prelude::*;
use std::collections::BTreeMap;

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Order {
    id: u64,
    item: String,
    tags: Vec<String>,
    prices: BTreeMap<String, f64>,
    note: Option<String>,
}

fn ctx() -> Context<'static> {
    Context::value("orders").at(0, 1)
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let json = "[".repeat(100_000);
    let got: Result<serde_json::Value, _> = Json::new().deserialize(json.as_bytes(), &ctx());
    assert!(
        matches!(&got, Err(DeserializeError::Json(why)) if why.contains("recursion")),
        "{got:?}"
    );
    // MessagePack arrays of one element, nested 100,000 deep.
    let msgpack = vec![0x91; 100_000];
    let got: Result<rmpv_free::Nested, _> = MsgPack::new().deserialize(&msgpack, &ctx());
    assert!(
        matches!(&got, Err(DeserializeError::MsgPack(why)) if why.contains("depth")),
        "{got:?}"
    );
}

/// A recursive type for the nesting test, with no MessagePack value crate needed.
mod rmpv_free {
    #[derive(Debug, serde::Deserialize)]
    pub(crate) struct Nested(#[allow(dead_code)] pub(crate) Vec<Nested>);
}

#[test]
fn a_length_claiming_four_billion_allocates_nothing_of_the_kind() {
    // array32 and bin32 headers claiming u32::MAX entries, with nothing after them.
    for bytes in [
        vec![0xdd, 0xff, 0xff, 0xff, 0xff],
        vec![0xc6, 0xff, 0xff, 0xff, 0xff],
        vec![0xdb, 0xff, 0xff, 0xff, 0xff],
    ] {
        let got: Result<Vec<u64>, _> = MsgPack::new().deserialize(&bytes, &ctx());
        assert!(matches!(got, Err(DeserializeError::MsgPack(_))), "{got:?}");
        let got: Result<String, _> = MsgPack::new().deserialize(&bytes, &ctx());
        assert!(matches!(got, Err(DeserializeError::MsgPack(_))), "{got:?}");
    }
}

#[test]
fn json_and_msgpack_round_trip_a_record() {
    let order = Order {
        id: u64::MAX,
        item: "tea \u{1f375}".into(),
        tags: vec!["hot".into(), String::new()],
        prices: [("eur".to_string(), 2.5), ("usd".to_string(), -0.0)].into(),
        note: None,
    };
    let mut out = Vec::new();
    Json::new().serialize(&order, &ctx(), &mut out).unwrap();
    assert_eq!(
        Json::<Order>::new().deserialize(&out, &ctx()).unwrap(),
        order
    );
    out.clear();
    MsgPack::new().serialize(&order, &ctx(), &mut out).unwrap();
    assert_eq!(
        MsgPack::<Order>::new().deserialize(&out, &ctx()).unwrap(),
        order
    );
}

#[test]
fn serializers_append_to_a_reused_buffer() {
    let mut out = b"prefix".to_vec();
    StringCodec.serialize("a", &ctx(), &mut out).unwrap();
    BytesCodec.serialize(&b"b"[..], &ctx(), &mut out).unwrap();
    Json::new().serialize(&1u8, &ctx(), &mut out).unwrap();
    assert_eq!(out, b"prefixab1");
}

#[test]
fn json_that_cannot_be_written_is_a_typed_error() {
    // JSON object keys must be strings.
    let map: BTreeMap<(u8, u8), u8> = [((1, 2), 3)].into();
    let mut out = Vec::new();
    let got = Json::new().serialize(&map, &ctx(), &mut out);
    assert!(
        matches!(got, Err(kasio_serde::SerializeError::Json(_))),
        "{got:?}"
    );
}

proptest! {
    #[test]
    fn any_bytes_decode_or_fail(data in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _: Result<Order, _> = Json::new().deserialize(&data, &ctx());
        let _: Result<serde_json::Value, _> = Json::new().deserialize(&data, &ctx());
        let _: Result<Order, _> = MsgPack::new().deserialize(&data, &ctx());
        let _: Result<Vec<String>, _> = MsgPack::new().deserialize(&data, &ctx());
        let s: Result<String, _> = StringCodec.deserialize(&data, &ctx());
        prop_assert_eq!(s.is_ok(), std::str::from_utf8(&data).is_ok());
        let b: Vec<u8> = BytesCodec.deserialize(&data, &ctx()).unwrap();
        prop_assert_eq!(b, data);
    }
}
