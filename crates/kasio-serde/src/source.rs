//! Where deserializers find writers' schemas by id.

use kasio_registry::Schema;
use std::sync::Arc;

/// Where a deserializer finds the writer's schema for an id: a registry client's cache,
/// without waiting. A miss is [`DeserializeError::UnknownSchema`](crate::DeserializeError::UnknownSchema); whoever drives the
/// consumer fetches the schema (`SchemaRegistry::schema_by_id`) and tries again.
///
/// Any `Fn(u32) -> Option<Arc<Schema>>` is one:
///
/// ```
/// use kasio_registry::Schema;
/// use kasio_serde::SchemaSource;
/// use std::sync::Arc;
/// let one = Arc::new(Schema::avro(r#""string""#));
/// let source = move |id: u32| (id == 1).then(|| one.clone());
/// assert!(source.schema(1).is_some() && source.schema(2).is_none());
/// ```
pub trait SchemaSource: Send + Sync {
    /// The schema registered under `id`, if it is known now.
    fn schema(&self, id: u32) -> Option<Arc<Schema>>;

    /// The schema registered as `subject`'s `version`, if it is known now: what a schema
    /// with references imports. None by default (a source of schemas without
    /// references).
    fn referenced(&self, subject: &str, version: i32) -> Option<Arc<Schema>> {
        let _ = (subject, version);
        None
    }
}

/// The schemas `schema` (registered under `id`) imports, transitively, each once and
/// after every one it imports (the order parsers resolve names in), with the names the
/// importing schemas use: what a serializer for a schema with references is built with.
///
/// ```
/// use kasio_registry::{Schema, SchemaReference};
/// use kasio_serde::{SchemaSource, schema_imports};
/// use std::sync::Arc;
/// struct Source(Arc<Schema>);
/// impl SchemaSource for Source {
///     fn schema(&self, _: u32) -> Option<Arc<Schema>> { None }
///     fn referenced(&self, subject: &str, version: i32) -> Option<Arc<Schema>> {
///         (subject == "money" && version == 1).then(|| self.0.clone())
///     }
/// }
/// let money = Arc::new(Schema::json(r#"{"type":"integer"}"#));
/// let order = Schema::json(r#"{"$ref":"money.json"}"#)
///     .reference(SchemaReference { name: "money.json".into(), subject: "money".into(), version: 1 });
/// let imports = schema_imports(&Source(money.clone()), &order, 7)?;
/// assert_eq!(imports, [("money.json".to_string(), money)]);
/// # Ok::<(), kasio_serde::DeserializeError>(())
/// ```
///
/// # Errors
/// [`UnknownSchema`](crate::DeserializeError::UnknownSchema) for `id` if one is not in
/// `source` (fetching `id` again fetches its references), or
/// [`Schema`](crate::DeserializeError::Schema) if they nest deeper than
/// [`MAX_REFERENCE_DEPTH`](kasio_registry::MAX_REFERENCE_DEPTH).
pub fn schema_imports(
    source: &dyn SchemaSource,
    schema: &Schema,
    id: u32,
) -> Result<Vec<(String, Arc<Schema>)>, crate::DeserializeError> {
    fn visit(
        source: &dyn SchemaSource,
        schema: &Schema,
        id: u32,
        depth: u8,
        seen: &mut std::collections::HashSet<(String, i32)>,
        out: &mut Vec<(String, Arc<Schema>)>,
    ) -> Result<(), crate::DeserializeError> {
        for r in &schema.references {
            if !seen.insert((r.subject.clone(), r.version)) {
                continue;
            }
            if depth >= kasio_registry::MAX_REFERENCE_DEPTH {
                return Err(crate::DeserializeError::Schema(format!(
                    "schema {id}: references nested deeper than {}",
                    kasio_registry::MAX_REFERENCE_DEPTH
                )));
            }
            let imported = source
                .referenced(&r.subject, r.version)
                .ok_or(crate::DeserializeError::UnknownSchema { id })?;
            visit(source, &imported, id, depth + 1, seen, out)?;
            out.push((r.name.clone(), imported));
        }
        Ok(())
    }
    let mut out = Vec::new();
    if !schema.references.is_empty() {
        visit(source, schema, id, 0, &mut Default::default(), &mut out)?;
    }
    Ok(out)
}

impl<F: Fn(u32) -> Option<Arc<Schema>> + Send + Sync> SchemaSource for F {
    fn schema(&self, id: u32) -> Option<Arc<Schema>> {
        self(id)
    }
}

/// What a deserializer made of each writer's schema (a parsed Avro schema, a compiled
/// JSON Schema validator), made once per id from a [`SchemaSource`].
#[cfg(any(feature = "avro", feature = "json-schema"))]
pub(crate) struct PerId<T>(std::sync::RwLock<std::collections::HashMap<u32, Arc<T>>>);

#[cfg(any(feature = "avro", feature = "json-schema"))]
impl<T> Default for PerId<T> {
    fn default() -> Self {
        Self(std::sync::RwLock::default())
    }
}

#[cfg(any(feature = "avro", feature = "json-schema"))]
impl<T> PerId<T> {
    /// The one made for `id`, making it with `make` from the schema `source` has and
    /// the schemas it imports, the first time.
    pub(crate) fn get(
        &self,
        source: &dyn SchemaSource,
        id: u32,
        make: impl FnOnce(&Schema, &[(String, Arc<Schema>)]) -> Result<T, String>,
    ) -> Result<Arc<T>, crate::DeserializeError> {
        use std::sync::PoisonError;
        if let Some(made) = self
            .0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
        {
            return Ok(made.clone());
        }
        let schema = source
            .schema(id)
            .ok_or(crate::DeserializeError::UnknownSchema { id })?;
        let imported = schema_imports(source, &schema, id)?;
        let made = Arc::new(
            make(&schema, &imported)
                .map_err(|why| crate::DeserializeError::Schema(format!("schema {id}: {why}")))?,
        );
        self.0
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, made.clone());
        Ok(made)
    }
}
