//! Confluent's Schema Registry framing as confluent-kafka's own serializers write it
//! (`tests/fixtures/confluent-kafka/schema-ids.txt`, written by
//! `tests/peers/python/write_serde_fixtures.py`): kasio frames the same ids and message
//! paths to the same bytes, and parses those bytes back to them.

#![allow(clippy::unwrap_used)]

use kasio_serde::wire::{self, SchemaRef};
use std::path::PathBuf;

#[test]
fn framing_matches_confluent_kafka_byte_for_byte() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/confluent-kafka/schema-ids.txt");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut cases = 0;
    for line in text.lines() {
        let [schema, kind, indexes, hex] = line.split(' ').collect::<Vec<_>>()[..] else {
            panic!("bad fixture line {line:?}");
        };
        let schema = match schema.strip_prefix("guid:") {
            Some(guid) => SchemaRef::Guid(unhex(guid).try_into().unwrap()),
            None => SchemaRef::Id(schema.parse().unwrap()),
        };
        let theirs = unhex(hex);
        let mut ours = Vec::new();
        match schema {
            SchemaRef::Id(id) => wire::frame(id, &mut ours),
            SchemaRef::Guid(guid) => wire::frame_guid(guid, &mut ours),
        }
        let path: Option<Vec<i32>> =
            (indexes != "-").then(|| indexes.split(',').map(|i| i.parse().unwrap()).collect());
        if let Some(path) = &path {
            wire::write_message_path(path, &mut ours);
        }
        assert_eq!(ours, theirs, "{line}");

        let framed = wire::parse(&theirs).unwrap();
        assert_eq!(framed.schema, schema, "{line}");
        if kind == "PROTOBUF" {
            let (read, rest) = wire::read_message_path(framed.payload).unwrap();
            assert_eq!(Some(read), path, "{line}");
            assert!(rest.is_empty(), "{line}");
        } else {
            assert!(framed.payload.is_empty(), "{line}");
        }
        cases += 1;
    }
    assert_eq!(cases, 11);
}

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}
