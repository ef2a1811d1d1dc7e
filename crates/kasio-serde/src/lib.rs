//! Typed Kafka records: serializers and deserializers for keys and values, and the wire
//! format of Confluent's Schema Registry.
//!
//! A [`Serializer`] turns a `T` into the bytes of a key or a value; a [`Deserializer`]
//! turns bytes back, each told where the bytes belong by a [`Context`] (topic, key or
//! value, and on the way in the partition and offset, so an error can name the record).
//! Codecs: [`StringCodec`] (UTF-8 checked), [`BytesCodec`], [`Json`] (any serde type) and
//! [`MsgPack`] (MessagePack, any serde type); with their features, the schema codecs in
//! Confluent's framing: `avro` (apache-avro: serde types and generic values, resolved
//! to a reader schema), `protobuf` (prost messages, with the message-index path found
//! in the `.proto` text by [`ProtoFile`]) and `json-schema` (jsonschema: validated when
//! written and, if asked, when read). [`wire`] frames and parses Confluent's format
//! (magic byte 0, a 4-byte schema id, and for Protobuf the message-index path).
//!
//! Bad bytes are never a panic: every length is checked against what remains and
//! against caps, and each error says what was wrong.
//!
//! ```
//! use kasio_serde::{Context, Deserializer, Json, Serializer};
//! #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
//! struct Order { id: u64, item: String }
//!
//! let codec = Json::<Order>::new();
//! let order = Order { id: 7, item: "tea".into() };
//! let mut bytes = Vec::new();
//! codec.serialize(&order, &Context::value("orders"), &mut bytes)?;
//! assert_eq!(bytes, br#"{"id":7,"item":"tea"}"#);
//! let back: Order = codec.deserialize(&bytes, &Context::value("orders"))?;
//! assert_eq!(back, order);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

#[cfg(feature = "avro")]
mod avro;
#[cfg(feature = "avro")]
mod avro_json;
mod codec;
mod context;
mod decoder;
mod encoder;
mod error;
mod json;
#[cfg(feature = "json-schema")]
mod json_schema;
mod msgpack;
mod proto_file;
#[cfg(feature = "protobuf")]
mod protobuf;
mod source;
mod subject;
pub mod wire;

/// Avro itself, for its schemas and generic values.
#[cfg(feature = "avro")]
pub use apache_avro;
#[cfg(feature = "avro")]
pub use avro::{
    AvroDeserializer, AvroSerializer, AvroValueDeserializer, AvroValueSerializer, Generic,
};
#[cfg(feature = "avro")]
#[cfg(feature = "avro")]
pub use avro_json::{avro_from_json, avro_to_json};
pub use codec::{BytesCodec, Deserializer, Serializer, StringCodec};
pub use context::{Context, Target};
pub use decoder::{BadRecord, Decoded, OnBadRecord, RecordDecoder, Step, TypedRecord};
pub use encoder::{EncodeError, RecordEncoder};
pub use error::{DeserializeError, RecordError, SerializeError};
pub use json::Json;
#[cfg(feature = "json-schema")]
pub use json_schema::{JsonSchemaDeserializer, JsonSchemaSerializer};
/// jsonschema, which validates JSON against its schema.
#[cfg(feature = "json-schema")]
pub use jsonschema;
pub use msgpack::MsgPack;
/// prost, whose messages the Protobuf codecs read and write.
#[cfg(feature = "protobuf")]
pub use prost;
pub use proto_file::{ProtoFile, ProtoFileError};
#[cfg(feature = "protobuf")]
pub use protobuf::{ProtobufDeserializer, ProtobufSerializer};
pub use source::{SchemaSource, schema_imports};
pub use subject::SubjectNameStrategy;
