//! JSON Schema in Confluent's framing: the schema id, then the JSON text, validated
//! against the schema when written and, if asked, when read.
//!
//! [`JsonSchemaSerializer`] refuses a value its schema does not allow, as Confluent's
//! serializers do; [`JsonSchemaDeserializer`] reads any framed JSON into a serde type,
//! and with a [`SchemaSource`] checks each record against its writer's schema first
//! (Confluent's `json.fail.invalid.schema`).

use crate::{
    Context, DeserializeError, Deserializer, SchemaSource, SerializeError, Serializer,
    source::PerId,
    wire::{self, SchemaRef},
};
use jsonschema::Validator;
use kasio_registry::{Schema, SchemaType};
use serde::{Serialize, de::DeserializeOwned};
use std::{marker::PhantomData, sync::Arc};

/// The schemas a schema imports, by the names its `$ref`s use: what a `$ref` outside the
/// schema resolves to. Nothing is fetched from the network or the disk.
struct Imports(Vec<(String, serde_json::Value)>);

impl jsonschema::Retrieve for Imports {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<serde_json::Value, Box<dyn std::error::Error + Send + Sync>> {
        // A reference's name is the `$ref` as written: absolute, or relative to the
        // importing schema's base (`$id`, else `json-schema:///`).
        let uri = uri.as_str();
        let found = self.0.iter().find(|(name, _)| {
            let name = name.trim_start_matches("./");
            uri == name
                || uri
                    .strip_suffix(name)
                    .is_some_and(|base| base.ends_with('/'))
        });
        match found {
            Some((_, schema)) => Ok(schema.clone()),
            None => Err(format!("{uri} is not among the schema's references").into()),
        }
    }
}

/// Compiles a JSON Schema's text, with the schemas it imports and their names.
fn compile<'a>(
    schema: &Schema,
    imports: impl IntoIterator<Item = (&'a str, &'a Schema)>,
) -> Result<Validator, String> {
    let json = |s: &Schema| {
        if s.schema_type != SchemaType::Json {
            return Err(format!("a {} schema, not JSON", s.schema_type.name()));
        }
        serde_json::from_str::<serde_json::Value>(&s.text).map_err(|e| format!("not JSON: {e}"))
    };
    let text = json(schema)?;
    let imports = imports
        .into_iter()
        .map(|(name, s)| {
            Ok((
                name.to_string(),
                json(s).map_err(|e| format!("{name}: {e}"))?,
            ))
        })
        .collect::<Result<Vec<_>, String>>()?;
    if imports.is_empty() && !schema.references.is_empty() {
        return Err("the schema has references: give the schemas it imports (importing)".into());
    }
    jsonschema::options()
        .with_retriever(Imports(imports))
        .build(&text)
        .map_err(|e| e.to_string())
}

/// The first way `value` breaks the schema, with where in the value.
fn check(validator: &Validator, value: &serde_json::Value) -> Result<(), String> {
    validator.validate(value).map_err(|e| {
        let at = e.instance_path().to_string();
        if at.is_empty() {
            e.to_string()
        } else {
            format!("at {at}: {e}")
        }
    })
}

/// Writes serde types as JSON with the schema registered under an id, refusing values
/// the schema does not allow.
///
/// ```
/// use kasio_registry::Schema;
/// use kasio_serde::{Context, JsonSchemaSerializer, SerializeError, Serializer};
/// #[derive(serde::Serialize)]
/// struct Order { id: i64, item: String }
/// let schema = Schema::json(r#"{"type":"object","properties":{"id":{"type":"integer","minimum":1}}}"#);
/// let codec = JsonSchemaSerializer::<Order>::new(3, &schema)?;
/// let mut out = Vec::new();
/// codec.serialize(&Order { id: 1, item: "tea".into() }, &Context::value("orders"), &mut out)?;
/// assert_eq!(out, b"\0\0\0\0\x03{\"id\":1,\"item\":\"tea\"}");
/// let refused = codec.serialize(&Order { id: 0, item: "tea".into() }, &Context::value("orders"), &mut out);
/// assert!(matches!(refused, Err(SerializeError::JsonSchema(why)) if why.starts_with("at /id")));
/// # Ok::<(), kasio_serde::SerializeError>(())
/// ```
pub struct JsonSchemaSerializer<T: ?Sized> {
    id: u32,
    validator: Validator,
    kind: PhantomData<fn(&T)>,
}

impl<T: ?Sized> std::fmt::Debug for JsonSchemaSerializer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonSchemaSerializer")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl<T: ?Sized> JsonSchemaSerializer<T> {
    /// A serializer validating against `schema`, registered under `id`.
    ///
    /// # Errors
    /// [`SerializeError::Schema`] if `schema` is not a JSON Schema that compiles.
    pub fn new(id: u32, schema: &Schema) -> Result<Self, SerializeError> {
        Self::importing(id, schema, &[])
    }

    /// A serializer validating against `schema`, registered under `id`, whose `$ref`s
    /// name the schemas of `imports` by their names (the names its references give).
    ///
    /// ```
    /// use kasio_registry::{Schema, SchemaReference};
    /// use kasio_serde::{Context, JsonSchemaSerializer, SerializeError, Serializer};
    /// let money = Schema::json(r#"{"type":"integer","minimum":0}"#);
    /// let order = Schema::json(r#"{"type":"object","properties":{"total":{"$ref":"money.json"}}}"#)
    ///     .reference(SchemaReference { name: "money.json".into(), subject: "money".into(), version: 1 });
    /// let codec = JsonSchemaSerializer::<serde_json::Value>::importing(4, &order, &[("money.json", &money)])?;
    /// let mut out = Vec::new();
    /// codec.serialize(&serde_json::json!({"total": 250}), &Context::value("orders"), &mut out)?;
    /// let refused = codec.serialize(&serde_json::json!({"total": -1}), &Context::value("orders"), &mut out);
    /// assert!(matches!(refused, Err(SerializeError::JsonSchema(why)) if why.starts_with("at /total")));
    /// # Ok::<(), kasio_serde::SerializeError>(())
    /// ```
    ///
    /// # Errors
    /// [`SerializeError::Schema`] if `schema` and `imports` are not JSON Schemas that
    /// compile together.
    pub fn importing(
        id: u32,
        schema: &Schema,
        imports: &[(&str, &Schema)],
    ) -> Result<Self, SerializeError> {
        Ok(Self {
            id,
            validator: compile(schema, imports.iter().copied()).map_err(SerializeError::Schema)?,
            kind: PhantomData,
        })
    }

    /// The schema id written in front of each value.
    #[must_use]
    pub fn id(&self) -> u32 {
        self.id
    }
}

impl<T: Serialize + ?Sized> Serializer<T> for JsonSchemaSerializer<T> {
    fn serialize(
        &self,
        value: &T,
        _: &Context<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), SerializeError> {
        // Validation needs the value as JSON; the text is written from that same tree.
        let json = serde_json::to_value(value).map_err(|e| SerializeError::Json(e.to_string()))?;
        check(&self.validator, &json).map_err(SerializeError::JsonSchema)?;
        let start = out.len();
        wire::frame(self.id, out);
        serde_json::to_writer(&mut *out, &json).map_err(|e| {
            out.truncate(start);
            SerializeError::Json(e.to_string())
        })
    }
}

/// Reads Confluent-framed JSON into a serde type; with a [`SchemaSource`], validates
/// each record against its writer's schema first.
///
/// ```
/// use kasio_registry::Schema;
/// use kasio_serde::{Context, Deserializer, DeserializeError, JsonSchemaDeserializer};
/// use std::sync::Arc;
/// let positive = Arc::new(Schema::json(r#"{"type":"integer","minimum":1}"#));
/// let lax = JsonSchemaDeserializer::<i64>::new();
/// let strict = JsonSchemaDeserializer::<i64>::validating(move |id| (id == 3).then(|| positive.clone()));
/// let ctx = Context::value("counts");
/// assert_eq!(lax.deserialize(b"\0\0\0\0\x03-5", &ctx)?, -5);
/// assert!(matches!(strict.deserialize(b"\0\0\0\0\x03-5", &ctx), Err(DeserializeError::JsonSchema(_))));
/// assert_eq!(strict.deserialize(b"\0\0\0\0\x03 7", &ctx)?, 7);
/// assert_eq!(strict.deserialize(b"\0\0\0\0\x04 7", &ctx), Err(DeserializeError::UnknownSchema { id: 4 }));
/// # Ok::<(), kasio_serde::DeserializeError>(())
/// ```
pub struct JsonSchemaDeserializer<T> {
    source: Option<Box<dyn SchemaSource>>,
    compiled: PerId<Validator>,
    kind: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for JsonSchemaDeserializer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonSchemaDeserializer")
            .field("validating", &self.source.is_some())
            .finish_non_exhaustive()
    }
}

impl<T> Default for JsonSchemaDeserializer<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> JsonSchemaDeserializer<T> {
    /// A deserializer that reads without validating (the JSON names its own fields).
    #[must_use]
    pub fn new() -> Self {
        Self {
            source: None,
            compiled: PerId::default(),
            kind: PhantomData,
        }
    }

    /// A deserializer validating each record against the schema its id names, found in
    /// `source` and compiled once per id.
    pub fn validating(source: impl SchemaSource + 'static) -> Self {
        Self {
            source: Some(Box::new(source)),
            ..Self::new()
        }
    }

    fn validator(
        &self,
        source: &dyn SchemaSource,
        id: u32,
    ) -> Result<Arc<Validator>, DeserializeError> {
        self.compiled.get(source, id, |schema, imports| {
            compile(schema, imports.iter().map(|(n, s)| (n.as_str(), &**s)))
        })
    }
}

impl<T: DeserializeOwned> Deserializer<T> for JsonSchemaDeserializer<T> {
    fn deserialize(&self, data: &[u8], _: &Context<'_>) -> Result<T, DeserializeError> {
        let framed = wire::parse(data)?;
        let json = |e: serde_json::Error| DeserializeError::Json(e.to_string());
        let Some(source) = &self.source else {
            return serde_json::from_slice(framed.payload).map_err(json);
        };
        let SchemaRef::Id(id) = framed.schema else {
            return Err(DeserializeError::Schema(
                "a schema named by GUID; ids only so far".into(),
            ));
        };
        let validator = self.validator(source.as_ref(), id)?;
        let value: serde_json::Value = serde_json::from_slice(framed.payload).map_err(json)?;
        check(&validator, &value).map_err(DeserializeError::JsonSchema)?;
        serde_json::from_value(value).map_err(json)
    }
}
