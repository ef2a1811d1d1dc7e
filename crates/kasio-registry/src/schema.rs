//! What a registry holds: schemas, their references, and compatibility levels.

use std::sync::Arc;

/// The language of a schema, as the registry names it (`schemaType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SchemaType {
    /// Apache Avro (the registry's default when `schemaType` is absent).
    #[default]
    Avro,
    /// Protocol Buffers.
    Protobuf,
    /// JSON Schema.
    Json,
}

impl SchemaType {
    /// The registry's name for it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Avro => "AVRO",
            Self::Protobuf => "PROTOBUF",
            Self::Json => "JSON",
        }
    }

    pub(crate) fn parse(name: Option<&str>) -> Option<Self> {
        match name {
            None | Some("AVRO") => Some(Self::Avro),
            Some("PROTOBUF") => Some(Self::Protobuf),
            Some("JSON") => Some(Self::Json),
            Some(_) => None,
        }
    }
}

/// A schema another one imports: its name in the importing schema, and where it is
/// registered.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SchemaReference {
    /// The name the importing schema uses (an Avro full name, a `.proto` path, a URL).
    pub name: String,
    /// The subject it is registered under.
    pub subject: String,
    /// Its version there.
    pub version: i32,
}

/// A schema's text with its type and references: what is registered under an id.
///
/// ```
/// use kasio_registry::{Schema, SchemaType};
/// let schema = Schema::avro(r#"{"type":"string"}"#);
/// assert_eq!(schema.schema_type, SchemaType::Avro);
/// assert!(schema.references.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Schema {
    /// The language.
    pub schema_type: SchemaType,
    /// The schema's text, as registered.
    pub text: String,
    /// The schemas it imports.
    pub references: Vec<SchemaReference>,
}

impl Schema {
    /// A schema of `schema_type` with no references.
    #[must_use]
    pub fn new(schema_type: SchemaType, text: impl Into<String>) -> Self {
        Self {
            schema_type,
            text: text.into(),
            references: Vec::new(),
        }
    }

    /// An Avro schema.
    #[must_use]
    pub fn avro(text: impl Into<String>) -> Self {
        Self::new(SchemaType::Avro, text)
    }

    /// A Protobuf schema (a `.proto` file's text).
    #[must_use]
    pub fn protobuf(text: impl Into<String>) -> Self {
        Self::new(SchemaType::Protobuf, text)
    }

    /// A JSON Schema.
    #[must_use]
    pub fn json(text: impl Into<String>) -> Self {
        Self::new(SchemaType::Json, text)
    }

    /// The same schema importing `reference` too.
    #[must_use]
    pub fn reference(mut self, reference: SchemaReference) -> Self {
        self.references.push(reference);
        self
    }
}

/// A schema as registered under a subject: its id and version there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredSchema {
    /// The subject.
    pub subject: String,
    /// The registry-wide id of the schema.
    pub id: u32,
    /// Its version within the subject.
    pub version: i32,
    /// The schema.
    pub schema: Arc<Schema>,
}

/// Which version of a subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// The newest.
    Latest,
    /// That version.
    Number(i32),
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Latest => f.write_str("latest"),
            Self::Number(n) => write!(f, "{n}"),
        }
    }
}

/// A compatibility level: which changes a subject accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compatibility {
    /// Any change.
    None,
    /// Readers of the new schema read data of the last one.
    Backward,
    /// ... of every earlier one.
    BackwardTransitive,
    /// Readers of the last schema read data of the new one.
    Forward,
    /// Readers of every earlier schema read data of the new one.
    ForwardTransitive,
    /// Backward and forward with the last one.
    Full,
    /// Backward and forward with every earlier one.
    FullTransitive,
}

impl Compatibility {
    /// The registry's name for it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::Backward => "BACKWARD",
            Self::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Self::Forward => "FORWARD",
            Self::ForwardTransitive => "FORWARD_TRANSITIVE",
            Self::Full => "FULL",
            Self::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    /// The level named `name`, as the registry writes it.
    ///
    /// ```
    /// use kasio_registry::Compatibility;
    /// assert_eq!(Compatibility::parse("FULL_TRANSITIVE"), Some(Compatibility::FullTransitive));
    /// assert_eq!(Compatibility::parse("SIDEWAYS"), None);
    /// ```
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "NONE" => Self::None,
            "BACKWARD" => Self::Backward,
            "BACKWARD_TRANSITIVE" => Self::BackwardTransitive,
            "FORWARD" => Self::Forward,
            "FORWARD_TRANSITIVE" => Self::ForwardTransitive,
            "FULL" => Self::Full,
            "FULL_TRANSITIVE" => Self::FullTransitive,
            _ => return None,
        })
    }
}

/// The registry's verdict on a schema against a subject's versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompatibilityCheck {
    /// Whether the subject would accept it.
    pub is_compatible: bool,
    /// Why not, when the registry says (`verbose=true`).
    pub messages: Vec<String>,
}
