//! Protobuf in Confluent's framing: the schema id, the message's index path in its
//! `.proto` file, then the message.
//!
//! [`ProtobufSerializer`] writes any [`prost::Message`]; [`ProtobufDeserializer`] reads
//! one back. The path says which of the file's messages the bytes hold (`[0]` the first,
//! `[1, 0]` the first message nested in the second): a serializer takes it from the
//! schema's text by the message's full name ([`ProtobufSerializer::for_message`]), or as
//! given.

use crate::{
    Context, DeserializeError, Deserializer, ProtoFile, SerializeError, Serializer,
    wire::{self, SchemaRef},
};
use kasio_registry::{Schema, SchemaType};
use std::marker::PhantomData;

/// Writes prost messages with the schema registered under an id, framed for the
/// registry.
///
/// ```
/// use kasio_registry::Schema;
/// use kasio_serde::{Context, ProtobufSerializer, Serializer};
/// #[derive(Clone, PartialEq, prost::Message)]
/// struct Line {
///     #[prost(string, tag = "1")]
///     sku: String,
/// }
/// let schema = Schema::protobuf(
///     "syntax = \"proto3\"; package shop; message Order { message Line { string sku = 1; } }",
/// );
/// let codec = ProtobufSerializer::<Line>::for_message(9, &schema, "shop.Order.Line")?;
/// let mut out = Vec::new();
/// codec.serialize(&Line { sku: "a".into() }, &Context::value("lines"), &mut out)?;
/// // Magic byte, id 9, the path [0, 0] (length 2, zigzag), then the message.
/// assert_eq!(out, [0, 0, 0, 0, 9, 4, 0, 0, 10, 1, b'a']);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ProtobufSerializer<T> {
    id: u32,
    /// The framing header and the path, written in front of every message.
    header: Vec<u8>,
    kind: PhantomData<fn(&T)>,
}

impl<T> std::fmt::Debug for ProtobufSerializer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProtobufSerializer")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl<T> ProtobufSerializer<T> {
    /// A serializer for the message at `path` in the file registered under `id`.
    ///
    /// # Errors
    /// [`SerializeError::Schema`] if the path is empty or has a negative index.
    pub fn new(id: u32, path: &[i32]) -> Result<Self, SerializeError> {
        if path.is_empty() || path.len() > wire::MAX_MESSAGE_DEPTH || path.iter().any(|&i| i < 0) {
            return Err(SerializeError::Schema(format!(
                "{path:?} is not a message path"
            )));
        }
        let mut header = Vec::with_capacity(wire::HEADER_LEN + 1 + path.len());
        wire::frame(id, &mut header);
        wire::write_message_path(path, &mut header);
        Ok(Self {
            id,
            header,
            kind: PhantomData,
        })
    }

    /// A serializer for the message named `message` (`package.Outer.Inner`) in the
    /// `.proto` file `schema`, registered under `id`.
    ///
    /// # Errors
    /// [`SerializeError::Schema`] if `schema` is not Protobuf, does not read, or does
    /// not declare `message`.
    pub fn for_message(id: u32, schema: &Schema, message: &str) -> Result<Self, SerializeError> {
        let file = proto_file(schema).map_err(SerializeError::Schema)?;
        let path = file.path(message).ok_or_else(|| {
            SerializeError::Schema(format!("the schema declares no message {message}"))
        })?;
        Self::new(id, path)
    }

    /// The schema id written in front of each message.
    #[must_use]
    pub fn id(&self) -> u32 {
        self.id
    }
}

impl<T: prost::Name> ProtobufSerializer<T> {
    /// A serializer for `T`, found in `schema` by its full name ([`prost::Name`], which
    /// prost-build generates with `enable_type_names`).
    ///
    /// # Errors
    /// As [`for_message`](Self::for_message).
    pub fn for_type(id: u32, schema: &Schema) -> Result<Self, SerializeError> {
        Self::for_message(id, schema, &T::full_name())
    }
}

impl<T: prost::Message> Serializer<T> for ProtobufSerializer<T> {
    fn serialize(
        &self,
        value: &T,
        _: &Context<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), SerializeError> {
        out.reserve(self.header.len() + value.encoded_len());
        out.extend_from_slice(&self.header);
        // Encoding into a Vec cannot run out of room: it grows.
        value.encode_raw(out);
        Ok(())
    }
}

/// The declarations of a registered Protobuf schema.
fn proto_file(schema: &Schema) -> Result<ProtoFile, String> {
    if schema.schema_type != SchemaType::Protobuf {
        return Err(format!(
            "a {} schema, not Protobuf",
            schema.schema_type.name()
        ));
    }
    ProtoFile::parse(&schema.text).map_err(|e| e.to_string())
}

/// Reads Confluent-framed Protobuf into a prost message.
///
/// The message's type is known at compile time, so no schema is fetched; the path in
/// front of the message is read past, and checked if the deserializer was told which
/// path to expect ([`expecting`](Self::expecting)): Confluent's own deserializer for a
/// generated class does not check it, so by default neither does this one.
///
/// ```
/// use kasio_serde::{Context, Deserializer, ProtobufDeserializer};
/// #[derive(Clone, PartialEq, prost::Message)]
/// struct Line {
///     #[prost(string, tag = "1")]
///     sku: String,
/// }
/// let codec = ProtobufDeserializer::<Line>::new();
/// let line = codec.deserialize(&[0, 0, 0, 0, 9, 4, 0, 0, 10, 1, b'a'], &Context::value("lines"))?;
/// assert_eq!(line.sku, "a");
/// # Ok::<(), kasio_serde::DeserializeError>(())
/// ```
pub struct ProtobufDeserializer<T> {
    expect: Option<Vec<i32>>,
    kind: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for ProtobufDeserializer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProtobufDeserializer")
            .field("expect", &self.expect)
            .finish()
    }
}

impl<T> Default for ProtobufDeserializer<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> ProtobufDeserializer<T> {
    /// A deserializer reading any path.
    #[must_use]
    pub fn new() -> Self {
        Self {
            expect: None,
            kind: PhantomData,
        }
    }

    /// The same, refusing records whose path is not `path`
    /// ([`DeserializeError::Protobuf`]): for a topic carrying several message types.
    #[must_use]
    pub fn expecting(mut self, path: &[i32]) -> Self {
        self.expect = Some(path.to_vec());
        self
    }
}

impl<T: prost::Message + Default> Deserializer<T> for ProtobufDeserializer<T> {
    fn deserialize(&self, data: &[u8], _: &Context<'_>) -> Result<T, DeserializeError> {
        let framed = wire::parse(data)?;
        // Any schema reference will do: the type is compiled in.
        let (SchemaRef::Id(_) | SchemaRef::Guid(_)) = framed.schema;
        let (path, message) = wire::read_message_path(framed.payload)?;
        if let Some(expect) = &self.expect
            && *expect != path
        {
            return Err(DeserializeError::Protobuf(format!(
                "message path {path:?} where {expect:?} was expected"
            )));
        }
        T::decode(message).map_err(|e| DeserializeError::Protobuf(e.to_string()))
    }
}
