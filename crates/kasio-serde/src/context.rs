//! Where the bytes being (de)serialized belong.

/// Whether the bytes are a record's key or its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// The record's key.
    Key,
    /// The record's value.
    Value,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Key => "key",
            Self::Value => "value",
        })
    }
}

/// What a serializer or deserializer is told about the bytes: the topic, key or value
/// (a registry's subject is named after them), and for a fetched record its partition
/// and offset, so an error names the record.
///
/// ```
/// use kasio_serde::{Context, Target};
/// let ctx = Context::value("orders").at(3, 1_042);
/// assert_eq!(ctx.target, Target::Value);
/// assert_eq!(ctx.to_string(), "value of orders-3@1042");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Context<'a> {
    /// The record's topic.
    pub topic: &'a str,
    /// Key or value.
    pub target: Target,
    /// The fetched record's partition and offset; `None` on the way out.
    pub position: Option<(i32, i64)>,
}

impl<'a> Context<'a> {
    /// The key of a record for `topic`.
    #[must_use]
    pub fn key(topic: &'a str) -> Self {
        Self {
            topic,
            target: Target::Key,
            position: None,
        }
    }

    /// The value of a record for `topic`.
    #[must_use]
    pub fn value(topic: &'a str) -> Self {
        Self {
            topic,
            target: Target::Value,
            position: None,
        }
    }

    /// The same, for the record fetched from `partition` at `offset`.
    #[must_use]
    pub fn at(self, partition: i32, offset: i64) -> Self {
        Self {
            position: Some((partition, offset)),
            ..self
        }
    }
}

impl std::fmt::Display for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} of {}", self.target, self.topic)?;
        if let Some((partition, offset)) = self.position {
            write!(f, "-{partition}@{offset}")?;
        }
        Ok(())
    }
}
