//! Any bytes through the Schema Registry wire-format parsers and the codecs that read
//! record values: a value or an error, never a panic, a stack overflow or an allocation
//! a length field asked for.
#![no_main]

use kasio_serde::{Context, Deserializer, Json, MsgPack, StringCodec, wire};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let ctx = Context::value("fuzz").at(0, 0);
    if let Ok(framed) = wire::parse(data) {
        let header = match framed.schema {
            wire::SchemaRef::Id(_) => wire::HEADER_LEN,
            wire::SchemaRef::Guid(_) => wire::GUID_HEADER_LEN,
        };
        assert_eq!(framed.payload.len() + header, data.len());
        if let Ok((path, rest)) = wire::read_message_path(framed.payload) {
            assert!(!path.is_empty() && path.len() <= wire::MAX_MESSAGE_DEPTH);
            assert!(path.iter().all(|&i| i >= 0));
            assert!(rest.len() < framed.payload.len());
        }
    }
    let _: Result<serde_json::Value, _> = Json::new().deserialize(data, &ctx);
    let _: Result<Vec<Option<String>>, _> = MsgPack::new().deserialize(data, &ctx);
    let _: Result<String, _> = StringCodec.deserialize(data, &ctx);
});
