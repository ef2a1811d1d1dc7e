//! `--key-format` and `--value-format`: how `produce` turns text into a key or a value and
//! `consume` turns one back into text, through a Schema Registry for the schema formats
//! (JSON in, Avro on the wire, JSON out, as kcat's `-s avro -r URL`).

use clap::{Args, ValueEnum};
use kasio::registry::{Schema, SchemaType, Version};
use kasio::serde::{
    AvroValueDeserializer, AvroValueSerializer, Context, DeserializeError, Deserializer,
    JsonSchemaDeserializer, JsonSchemaSerializer, MsgPack, Serializer, apache_avro, avro_from_json,
    wire,
};
use kasio::tokio::SchemaRegistry;
use serde_json::Value;
use std::sync::Arc;

/// How a key or a value is written.
#[derive(ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Format {
    /// UTF-8 text, as given.
    #[default]
    String,
    /// Bytes as they are (printed as text where they are UTF-8).
    Bytes,
    /// JSON text, checked.
    Json,
    /// MessagePack: JSON in and out.
    Msgpack,
    /// Avro in Confluent's framing, through the Schema Registry: JSON in and out.
    Avro,
    /// JSON validated by a JSON Schema in Confluent's framing, through the registry.
    JsonSchema,
    /// Protobuf in Confluent's framing (needs compiled message types: not from the CLI).
    Protobuf,
}

impl Format {
    fn needs_registry(self) -> bool {
        matches!(self, Self::Avro | Self::JsonSchema | Self::Protobuf)
    }
}

/// The format options `produce` and `consume` share.
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct FormatArgs {
    /// How keys are written: string, bytes, json, msgpack, avro, json-schema, protobuf.
    #[arg(long, value_enum, default_value = "string")]
    key_format: Format,
    /// How values are written (as --key-format).
    #[arg(long, value_enum, default_value = "string")]
    value_format: Format,
    /// The Schema Registry (Confluent's REST API) for avro and json-schema; its
    /// credentials as -X schema.registry.basic.auth.user.info=USER:PASSWORD (or
    /// bearer.auth.token).
    #[arg(long, value_name = "URL")]
    schema_registry: Option<String>,
    /// produce: the key's schema (its text, or @FILE), registered under TOPIC-key;
    /// without it, the subject's latest version.
    #[arg(long, value_name = "SCHEMA")]
    key_schema: Option<String>,
    /// produce: the value's schema (its text, or @FILE), registered under TOPIC-value;
    /// without it, the subject's latest version.
    #[arg(long, value_name = "SCHEMA")]
    value_schema: Option<String>,
}

impl FormatArgs {
    pub(crate) fn key(&self) -> Format {
        self.key_format
    }

    pub(crate) fn value(&self) -> Format {
        self.value_format
    }

    pub(crate) fn key_schema(&self) -> Option<&str> {
        self.key_schema.as_deref()
    }

    pub(crate) fn value_schema(&self) -> Option<&str> {
        self.value_schema.as_deref()
    }

    /// Whether either side is anything but text.
    pub(crate) fn any(&self) -> bool {
        self.key_format != Format::String || self.value_format != Format::String
    }
}

/// Whether a property is the registry's, not the Kafka client's.
pub(crate) fn is_registry_property(key: &str) -> bool {
    ["schema.registry.", "basic.auth.", "bearer.auth."]
        .iter()
        .any(|p| key.starts_with(p))
}

/// The registry client, if a format needs one.
pub(crate) fn registry(
    args: &FormatArgs,
    props: &[(String, String)],
) -> Result<Option<SchemaRegistry>, String> {
    for f in [args.key_format, args.value_format] {
        if f == Format::Protobuf {
            return Err("protobuf: the CLI has no compiled message types to read or write it with; use the library's ProtobufSerializer".into());
        }
    }
    if !args.key_format.needs_registry() && !args.value_format.needs_registry() {
        return Ok(None);
    }
    let url = args
        .schema_registry
        .as_deref()
        .ok_or("avro and json-schema need --schema-registry URL")?;
    let mut registry_props: Vec<(&str, &str)> = vec![("url", url)];
    registry_props.extend(
        props
            .iter()
            .filter(|(k, _)| is_registry_property(k))
            .map(|(k, v)| (k.as_str(), v.as_str())),
    );
    SchemaRegistry::from_properties(registry_props)
        .map(Some)
        .map_err(|e| format!("schema registry: {e}"))
}

/// One side's encoder for `produce`.
pub(crate) enum Encoder {
    Text,
    Json,
    MsgPack,
    Avro(AvroValueSerializer, Box<apache_avro::Schema>),
    JsonSchema(JsonSchemaSerializer<Value>),
}

impl Encoder {
    /// The encoder for `format` on `topic`'s key or value: a schema format registers the
    /// schema given (or takes the subject's latest).
    pub(crate) async fn new(
        format: Format,
        schema: Option<&str>,
        registry: Option<&SchemaRegistry>,
        ctx: &Context<'_>,
    ) -> Result<Self, String> {
        let kind = match format {
            Format::String | Format::Bytes => return Ok(Self::Text),
            Format::Json => return Ok(Self::Json),
            Format::Msgpack => return Ok(Self::MsgPack),
            Format::Avro => SchemaType::Avro,
            Format::JsonSchema => SchemaType::Json,
            Format::Protobuf => return Err("protobuf is not available from the CLI".into()),
        };
        let registry = registry.ok_or("a schema format needs --schema-registry URL")?;
        let subject = format!("{}-{}", ctx.topic, ctx.target);
        let (id, schema) = match schema {
            Some(text) => {
                let text = match text.strip_prefix('@') {
                    Some(path) => std::fs::read_to_string(path)
                        .map_err(|e| format!("cannot read {path}: {e}"))?,
                    None => text.to_owned(),
                };
                let schema = Schema::new(kind, text);
                let id = registry
                    .register(&subject, schema.clone())
                    .await
                    .map_err(|e| format!("registering the schema under {subject}: {e}"))?;
                (id, schema)
            }
            None => {
                let latest = registry
                    .version(&subject, Version::Latest)
                    .await
                    .map_err(|e| format!("the latest schema of {subject}: {e}"))?;
                (latest.id, Schema::clone(&latest.schema))
            }
        };
        match kind {
            SchemaType::Avro => {
                let parsed = apache_avro::Schema::parse_str(&schema.text)
                    .map_err(|e| format!("schema {id}: {e}"))?;
                let codec = AvroValueSerializer::new(id, &schema).map_err(|e| e.to_string())?;
                Ok(Self::Avro(codec, Box::new(parsed)))
            }
            _ => Ok(Self::JsonSchema(
                JsonSchemaSerializer::new(id, &schema).map_err(|e| e.to_string())?,
            )),
        }
    }

    /// `text` (JSON for every format but text) as the bytes to send; text as it is.
    pub(crate) fn encode(&self, text: Vec<u8>, ctx: &Context<'_>) -> Result<Vec<u8>, String> {
        if let Self::Text = self {
            return Ok(text);
        }
        let json: Value =
            serde_json::from_slice(&text).map_err(|e| format!("{ctx}: not JSON: {e}"))?;
        self.encode_json(&json, ctx)
    }

    /// A JSON value as the bytes to send.
    pub(crate) fn encode_json(&self, json: &Value, ctx: &Context<'_>) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        let written = match self {
            Self::Text => {
                out = match json {
                    Value::String(s) => s.as_bytes().to_vec(),
                    other => other.to_string().into_bytes(),
                };
                Ok(())
            }
            Self::Json => serde_json::to_writer(&mut out, json)
                .map_err(|e| kasio::serde::SerializeError::Json(e.to_string())),
            Self::MsgPack => MsgPack::<Value>::new().serialize(json, ctx, &mut out),
            Self::Avro(codec, schema) => {
                let value = avro_from_json(json, schema).map_err(|e| format!("{ctx}: {e}"))?;
                codec.serialize(&value, ctx, &mut out)
            }
            Self::JsonSchema(codec) => codec.serialize(json, ctx, &mut out),
        };
        written.map_err(|e| format!("{ctx}: {e}"))?;
        Ok(out)
    }
}

/// One side's decoder for `consume`.
pub(crate) enum Decoder {
    Text,
    Json,
    MsgPack,
    Avro(AvroValueDeserializer, SchemaRegistry),
    JsonSchema(JsonSchemaDeserializer<Value>, SchemaRegistry),
}

impl Decoder {
    pub(crate) fn new(format: Format, registry: Option<&SchemaRegistry>) -> Result<Self, String> {
        Ok(match format {
            Format::String | Format::Bytes => Self::Text,
            Format::Json => Self::Json,
            Format::Msgpack => Self::MsgPack,
            Format::Avro => {
                let registry = registry.ok_or("avro needs --schema-registry URL")?.clone();
                Self::Avro(AvroValueDeserializer::new(registry.clone()), registry)
            }
            Format::JsonSchema => {
                let registry = registry.ok_or("json-schema needs --schema-registry URL")?;
                Self::JsonSchema(
                    JsonSchemaDeserializer::validating(registry.clone()),
                    registry.clone(),
                )
            }
            Format::Protobuf => return Err("protobuf is not available from the CLI".into()),
        })
    }

    /// The writer's schema id `bytes` name, if this decoder will want it from the
    /// registry and it is not cached.
    pub(crate) fn missing(&self, bytes: &[u8]) -> Option<u32> {
        let registry = match self {
            Self::Avro(_, registry) => registry,
            Self::JsonSchema(_, registry) => registry,
            _ => return None,
        };
        match wire::parse(bytes).ok()?.schema {
            wire::SchemaRef::Id(id) if registry.cached_schema(id).is_none() => Some(id),
            _ => None,
        }
    }

    /// The bytes as a JSON value (text as a string).
    pub(crate) fn decode(&self, bytes: &[u8], ctx: &Context<'_>) -> Result<Value, String> {
        let fail = |e: DeserializeError| format!("{ctx}: {e}");
        let json: Value = match self {
            Self::Text => return Ok(Value::String(String::from_utf8_lossy(bytes).into_owned())),
            Self::Json => serde_json::from_slice(bytes)
                .map_err(|e| fail(DeserializeError::Json(e.to_string())))?,
            Self::MsgPack => MsgPack::<Value>::new()
                .deserialize(bytes, ctx)
                .map_err(fail)?,
            Self::Avro(codec, _) => codec.deserialize_json(bytes, ctx).map_err(fail)?,
            Self::JsonSchema(codec, _) => codec.deserialize(bytes, ctx).map_err(fail)?,
        };
        Ok(json)
    }
}

/// A decoded key or value as text: a string as it is, anything else as JSON.
pub(crate) fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Fetches the writer's schema `id` once, so the decoders find it cached.
pub(crate) async fn fetch(registry: &SchemaRegistry, id: u32) -> Result<Arc<Schema>, String> {
    registry
        .schema_by_id(id)
        .await
        .map_err(|e| format!("schema {id}: {e}"))
}
