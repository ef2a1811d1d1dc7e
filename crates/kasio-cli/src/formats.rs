//! `--key-format` and `--value-format`: how `produce` turns text into a key or a value and
//! `consume` turns one back into text, through a Schema Registry for the schema formats
//! (JSON in, Avro on the wire, JSON out, as kcat's `-s avro -r URL`). A schema with
//! references is read with the schemas it imports, fetched with it.

use crate::proto::Proto;
use clap::{Args, ValueEnum};
use kasio::registry::{Schema, SchemaType, Version};
use kasio::serde::{
    AvroValueDeserializer, AvroValueSerializer, Context, DeserializeError, Deserializer,
    JsonSchemaDeserializer, JsonSchemaSerializer, MsgPack, Serializer, schema_imports, wire,
};
use kasio::tokio::SchemaRegistry;
use serde_json::Value;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

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
    /// Protobuf in Confluent's framing, through the registry: JSON in and out
    /// (Protobuf's JSON mapping); produce writes the schema's first message, or
    /// --key-message / --value-message.
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
    /// The Schema Registry (Confluent's REST API) for avro, json-schema and protobuf; its
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
    /// produce, protobuf: the key's message (its full name, or its name in the
    /// schema's package); without it, the schema's first message.
    #[arg(long, value_name = "NAME")]
    key_message: Option<String>,
    /// produce, protobuf: the value's message (as --key-message).
    #[arg(long, value_name = "NAME")]
    value_message: Option<String>,
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

    pub(crate) fn key_message(&self) -> Option<&str> {
        self.key_message.as_deref()
    }

    pub(crate) fn value_message(&self) -> Option<&str> {
        self.value_message.as_deref()
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
    if !args.key_format.needs_registry() && !args.value_format.needs_registry() {
        return Ok(None);
    }
    let url = args
        .schema_registry
        .as_deref()
        .ok_or("avro, json-schema and protobuf need --schema-registry URL")?;
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
    Avro(AvroValueSerializer),
    JsonSchema(JsonSchemaSerializer<Value>),
    Protobuf(Box<Proto>, u32, Vec<i32>),
}

impl Encoder {
    /// The encoder for `format` on `topic`'s key or value: a schema format registers the
    /// schema given (or takes the subject's latest).
    pub(crate) async fn new(
        format: Format,
        schema: Option<&str>,
        message: Option<&str>,
        registry: Option<&SchemaRegistry>,
        ctx: &Context<'_>,
    ) -> Result<Self, String> {
        let kind = match format {
            Format::String | Format::Bytes => return Ok(Self::Text),
            Format::Json => return Ok(Self::Json),
            Format::Msgpack => return Ok(Self::MsgPack),
            Format::Avro => SchemaType::Avro,
            Format::JsonSchema => SchemaType::Json,
            Format::Protobuf => SchemaType::Protobuf,
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
        // The subject's latest version may import others: fetching it by id fetches
        // them too.
        let imported = match schema.references.is_empty() {
            true => Vec::new(),
            false => {
                fetch(registry, id).await?;
                schema_imports(registry, &schema, id).map_err(|e| e.to_string())?
            }
        };
        let imports: Vec<(&str, &Schema)> =
            imported.iter().map(|(n, s)| (n.as_str(), &**s)).collect();
        let failed = |e: kasio::serde::SerializeError| format!("schema {id}: {e}");
        match kind {
            SchemaType::Avro => Ok(Self::Avro(
                AvroValueSerializer::importing(id, &schema, &imports).map_err(failed)?,
            )),
            SchemaType::Json => Ok(Self::JsonSchema(
                JsonSchemaSerializer::importing(id, &schema, &imports).map_err(failed)?,
            )),
            SchemaType::Protobuf => {
                let proto =
                    Proto::compile(&schema, &imported).map_err(|e| format!("schema {id}: {e}"))?;
                let path = proto.path_of(message)?;
                Ok(Self::Protobuf(Box::new(proto), id, path))
            }
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
            Self::Avro(codec) => codec.serialize_json(json, ctx, &mut out),
            Self::JsonSchema(codec) => codec.serialize(json, ctx, &mut out),
            Self::Protobuf(proto, id, path) => {
                return proto
                    .encode(*id, path, json)
                    .map_err(|e| format!("{ctx}: {e}"));
            }
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
    /// Compiled once per writer's schema id.
    Protobuf(Mutex<HashMap<u32, Arc<Proto>>>, SchemaRegistry),
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
            Format::Protobuf => {
                let registry = registry.ok_or("protobuf needs --schema-registry URL")?;
                Self::Protobuf(Mutex::default(), registry.clone())
            }
        })
    }

    /// The writer's schema id `bytes` name, if this decoder will want it from the
    /// registry and it is not cached.
    pub(crate) fn missing(&self, bytes: &[u8]) -> Option<u32> {
        let registry = match self {
            Self::Avro(_, registry)
            | Self::JsonSchema(_, registry)
            | Self::Protobuf(_, registry) => registry,
            _ => return None,
        };
        let wire::SchemaRef::Id(id) = wire::parse(bytes).ok()?.schema else {
            return None;
        };
        let known = registry
            .cached_schema(id)
            .is_some_and(|s| schema_imports(registry, &s, id).is_ok());
        (!known).then_some(id)
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
            Self::Protobuf(compiled, registry) => {
                let framed = wire::parse(bytes).map_err(|e| fail(e.into()))?;
                let wire::SchemaRef::Id(id) = framed.schema else {
                    return Err(format!("{ctx}: a schema named by GUID; ids only so far"));
                };
                let proto = proto_for(compiled, registry, id).map_err(|e| format!("{ctx}: {e}"))?;
                proto
                    .decode(framed.payload)
                    .map_err(|e| format!("{ctx}: {e}"))?
            }
        };
        Ok(json)
    }
}

/// The compiled schema `id`, compiling it (with its imports, from the registry's cache)
/// the first time.
fn proto_for(
    compiled: &Mutex<HashMap<u32, Arc<Proto>>>,
    registry: &SchemaRegistry,
    id: u32,
) -> Result<Arc<Proto>, String> {
    let mut compiled = compiled
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(proto) = compiled.get(&id) {
        return Ok(proto.clone());
    }
    let schema = registry
        .cached_schema(id)
        .ok_or_else(|| DeserializeError::UnknownSchema { id }.to_string())?;
    let imports = schema_imports(registry, &schema, id).map_err(|e| e.to_string())?;
    let proto =
        Arc::new(Proto::compile(&schema, &imports).map_err(|e| format!("schema {id}: {e}"))?);
    compiled.insert(id, proto.clone());
    Ok(proto)
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
