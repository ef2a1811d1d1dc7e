//! What can go wrong turning values into bytes and back.

use crate::{Context, Target, wire::WireError};

/// A value that could not be turned into bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SerializeError {
    /// serde_json refused the value (a map with non-string keys, say).
    Json(String),
    /// rmp-serde refused the value.
    MsgPack(String),
    /// The schema given does not parse, or is not of the codec's kind.
    Schema(String),
    /// The value does not fit the Avro schema.
    Avro(String),
    /// The value breaks its JSON Schema: where, and how.
    JsonSchema(String),
}

impl std::fmt::Display for SerializeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Json(why) => write!(f, "cannot encode as JSON: {why}"),
            Self::MsgPack(why) => write!(f, "cannot encode as MessagePack: {why}"),
            Self::Schema(why) => write!(f, "unusable schema: {why}"),
            Self::Avro(why) => write!(f, "cannot encode as Avro: {why}"),
            Self::JsonSchema(why) => write!(f, "not allowed by its JSON Schema: {why}"),
        }
    }
}

impl std::error::Error for SerializeError {}

/// Bytes that could not be turned into a value.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeserializeError {
    /// Confluent's framing was wrong (magic byte, short header, message indexes).
    Wire(WireError),
    /// Not UTF-8: the first `valid_up_to` bytes were.
    Utf8 {
        /// How many bytes were valid UTF-8.
        valid_up_to: usize,
    },
    /// Not the JSON the type expects.
    Json(String),
    /// Not the MessagePack the type expects.
    MsgPack(String),
    /// The writer's schema id is not known yet: fetch it from the registry and try again.
    UnknownSchema {
        /// The id in the record's header.
        id: u32,
    },
    /// The writer's (or the reader's) schema does not parse, or is of another kind.
    Schema(String),
    /// Not the Avro its writer's schema describes, or not resolvable to the reader's.
    Avro(String),
    /// Not the Protobuf message expected, or another message's path.
    Protobuf(String),
    /// JSON its writer's JSON Schema does not allow: where, and how.
    JsonSchema(String),
}

impl From<WireError> for DeserializeError {
    fn from(e: WireError) -> Self {
        Self::Wire(e)
    }
}

impl std::fmt::Display for DeserializeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Wire(e) => write!(f, "bad schema registry framing: {e}"),
            Self::Utf8 { valid_up_to } => {
                write!(f, "not UTF-8 (valid up to byte {valid_up_to})")
            }
            Self::Json(why) => write!(f, "not the JSON expected: {why}"),
            Self::MsgPack(why) => write!(f, "not the MessagePack expected: {why}"),
            Self::UnknownSchema { id } => write!(f, "schema id {id} is not known (yet)"),
            Self::Schema(why) => write!(f, "unusable schema: {why}"),
            Self::Avro(why) => write!(f, "not the Avro expected: {why}"),
            Self::Protobuf(why) => write!(f, "not the Protobuf expected: {why}"),
            Self::JsonSchema(why) => write!(f, "not allowed by its JSON Schema: {why}"),
        }
    }
}

impl std::error::Error for DeserializeError {}

/// A record's key or value that did not deserialize, with where the record is: the error
/// a typed consumer hands the application (or its bad-record policy).
///
/// ```
/// use kasio_serde::{Context, Deserializer, RecordError, StringCodec};
/// let ctx = Context::value("orders").at(2, 99);
/// let err = StringCodec.deserialize(&[0xff], &ctx).map_err(|e| RecordError::new(&ctx, e));
/// assert_eq!(
///     err.unwrap_err().to_string(),
///     "value of orders-2@99: not UTF-8 (valid up to byte 0)"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    /// The record's topic.
    pub topic: String,
    /// Its partition and offset, when it was fetched.
    pub position: Option<(i32, i64)>,
    /// Key or value.
    pub target: Target,
    /// What was wrong.
    pub error: DeserializeError,
}

impl RecordError {
    /// `error`, for the bytes `ctx` describes.
    #[must_use]
    pub fn new(ctx: &Context<'_>, error: DeserializeError) -> Self {
        Self {
            topic: ctx.topic.into(),
            position: ctx.position,
            target: ctx.target,
            error,
        }
    }
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ctx = Context {
            topic: &self.topic,
            target: self.target,
            position: self.position,
        };
        write!(f, "{ctx}: {}", self.error)
    }
}

impl std::error::Error for RecordError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}
