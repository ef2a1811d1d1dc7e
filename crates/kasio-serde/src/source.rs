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
}

impl<F: Fn(u32) -> Option<Arc<Schema>> + Send + Sync> SchemaSource for F {
    fn schema(&self, id: u32) -> Option<Arc<Schema>> {
        self(id)
    }
}
