//! Any bytes as a framed Avro record, read with a schema that has a union, a map, an
//! array, a decimal and a nested record, with and without resolution to a newer reader
//! schema: a value or an error, never a panic or an allocation a length field asked for.
#![no_main]

use kasio_registry::Schema;
use kasio_serde::{AvroValueDeserializer, Context, Deserializer};
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, LazyLock};

const WRITER: &str = r#"{"type":"record","name":"R","fields":[
  {"name":"a","type":["null","string","long"]},
  {"name":"m","type":{"type":"map","values":{"type":"array","items":"double"}}},
  {"name":"d","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}},
  {"name":"e","type":{"type":"enum","name":"E","symbols":["X","Y"]}},
  {"name":"n","type":{"type":"record","name":"N","fields":[{"name":"f","type":{"type":"fixed","name":"F","size":4}}]}}
]}"#;

const READER: &str = r#"{"type":"record","name":"R","fields":[
  {"name":"a","type":["null","string","long"]},
  {"name":"d","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}},
  {"name":"extra","type":"int","default":7}
]}"#;

static PLAIN: LazyLock<AvroValueDeserializer> = LazyLock::new(|| {
    let writer = Arc::new(Schema::avro(WRITER));
    AvroValueDeserializer::new(move |_| Some(writer.clone()))
});

static RESOLVING: LazyLock<AvroValueDeserializer> = LazyLock::new(|| {
    let writer = Arc::new(Schema::avro(WRITER));
    AvroValueDeserializer::new(move |_| Some(writer.clone()))
        .with_reader_schema(&Schema::avro(READER))
        .expect("the reader schema parses")
});

fuzz_target!(|data: &[u8]| {
    let mut framed = vec![0, 0, 0, 0, 1];
    framed.extend_from_slice(data);
    let ctx = Context::value("fuzz").at(0, 0);
    let _ = PLAIN.deserialize(&framed, &ctx);
    let _ = RESOLVING.deserialize(&framed, &ctx);
});
