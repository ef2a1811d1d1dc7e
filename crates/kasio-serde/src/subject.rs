//! Which registry subject a key's or value's schema is registered under.

use crate::{Context, Target};

/// How a serializer names the subject of a schema, as Confluent's serializers do
/// (`key.subject.name.strategy`, `value.subject.name.strategy`).
///
/// ```
/// use kasio_serde::{Context, SubjectNameStrategy};
/// let ctx = Context::value("orders");
/// assert_eq!(SubjectNameStrategy::Topic.subject(&ctx, None).as_deref(), Some("orders-value"));
/// assert_eq!(SubjectNameStrategy::Record.subject(&ctx, Some("shop.Order")).as_deref(), Some("shop.Order"));
/// assert_eq!(
///     SubjectNameStrategy::TopicRecord.subject(&ctx, Some("shop.Order")).as_deref(),
///     Some("orders-shop.Order")
/// );
/// assert_eq!(SubjectNameStrategy::Record.subject(&ctx, None), None, "a record name is needed");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SubjectNameStrategy {
    /// `<topic>-key` or `<topic>-value`: one schema (and its evolution) per topic.
    #[default]
    Topic,
    /// The record's fully qualified name: one schema per record type, on any topic.
    Record,
    /// `<topic>-<record name>`: several record types per topic, each evolving apart.
    TopicRecord,
}

impl SubjectNameStrategy {
    /// The subject for the key or value `ctx` names, whose schema's fully qualified
    /// record name is `record` (an Avro record's or a Protobuf message's); `None` when
    /// the strategy needs a record name and there is none.
    #[must_use]
    pub fn subject(self, ctx: &Context<'_>, record: Option<&str>) -> Option<String> {
        match self {
            Self::Topic => Some(format!(
                "{}-{}",
                ctx.topic,
                match ctx.target {
                    Target::Key => "key",
                    Target::Value => "value",
                }
            )),
            Self::Record => record.map(String::from),
            Self::TopicRecord => record.map(|r| format!("{}-{r}", ctx.topic)),
        }
    }

    /// The strategy a setting names: Confluent's class names (as the Java serializers
    /// take them) or their short forms.
    ///
    /// ```
    /// use kasio_serde::SubjectNameStrategy;
    /// let java = "io.confluent.kafka.serializers.subject.TopicRecordNameStrategy";
    /// assert_eq!(SubjectNameStrategy::parse(java), Some(SubjectNameStrategy::TopicRecord));
    /// assert_eq!(SubjectNameStrategy::parse("record"), Some(SubjectNameStrategy::Record));
    /// ```
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        let short = name.rsplit('.').next().unwrap_or(name);
        Some(match short.to_ascii_lowercase().as_str() {
            "topicnamestrategy" | "topic" => Self::Topic,
            "recordnamestrategy" | "record" => Self::Record,
            "topicrecordnamestrategy" | "topic_record" | "topic-record" => Self::TopicRecord,
            _ => return None,
        })
    }
}
