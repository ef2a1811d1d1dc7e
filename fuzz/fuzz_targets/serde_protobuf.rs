//! Any bytes through the Protobuf deserializer (a recursive message, so nesting is
//! exercised) and any text through the `.proto` declaration reader: a value or an error,
//! never a panic, a stack overflow or an allocation a length field asked for.
#![no_main]

use kasio_serde::{Context, Deserializer, ProtoFile, ProtobufDeserializer, wire};
use libfuzzer_sys::fuzz_target;

#[derive(Clone, PartialEq, prost::Message)]
struct Tree {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(message, repeated, tag = "2")]
    children: Vec<Tree>,
    #[prost(bytes = "vec", tag = "3")]
    data: Vec<u8>,
    #[prost(map = "string, int64", tag = "4")]
    counts: std::collections::HashMap<String, i64>,
    #[prost(sint32, repeated, tag = "5")]
    packed: Vec<i32>,
}

fuzz_target!(|data: &[u8]| {
    let ctx = Context::value("fuzz").at(0, 0);
    let read: Result<Tree, _> = ProtobufDeserializer::new().deserialize(data, &ctx);
    if read.is_ok() {
        // It had a frame and a path in front of the message.
        assert!(wire::parse(data).is_ok());
    }
    let text = String::from_utf8_lossy(data);
    if let Ok(file) = ProtoFile::parse(&text) {
        for (name, path) in file.messages() {
            assert_eq!(file.path(name).map(<[i32]>::len), Some(path.len()));
            assert!(!path.is_empty() && path.len() <= wire::MAX_MESSAGE_DEPTH);
        }
    }
});
