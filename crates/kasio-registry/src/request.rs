//! The registry calls: each one's HTTP method, path and body, and how its answer reads.

use crate::{
    Compatibility, CompatibilityCheck, RegisteredSchema, RegistryError, Schema, SchemaReference,
    SchemaType, Version, http::encode_segment,
};
use serde_json::{Value, json};
use std::sync::Arc;

/// A call to the registry (Confluent's REST API).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Request {
    /// The schema with this id (`GET /schemas/ids/{id}`); answers [`Answer::Schema`].
    SchemaById {
        /// The id.
        id: u32,
    },
    /// Registers `schema` under `subject` (`POST /subjects/{subject}/versions`), or finds
    /// it there if it already is; answers [`Answer::Id`].
    Register {
        /// The subject.
        subject: String,
        /// The schema.
        schema: Schema,
        /// Whether the registry should normalize it first (`normalize=true`).
        normalize: bool,
    },
    /// Finds `schema` among `subject`'s versions (`POST /subjects/{subject}`); answers
    /// [`Answer::Registered`].
    Lookup {
        /// The subject.
        subject: String,
        /// The schema.
        schema: Schema,
    },
    /// A version of a subject (`GET /subjects/{subject}/versions/{version}`); answers
    /// [`Answer::Registered`].
    Version {
        /// The subject.
        subject: String,
        /// Which version.
        version: Version,
    },
    /// A subject's versions (`GET /subjects/{subject}/versions`); answers
    /// [`Answer::Versions`].
    Versions {
        /// The subject.
        subject: String,
    },
    /// Every subject (`GET /subjects`); answers [`Answer::Subjects`].
    Subjects,
    /// Whether `subject` would accept `schema` against `version`
    /// (`POST /compatibility/subjects/{subject}/versions/{version}`); answers
    /// [`Answer::Compatibility`].
    TestCompatibility {
        /// The subject.
        subject: String,
        /// The version checked against (usually [`Version::Latest`]).
        version: Version,
        /// The schema.
        schema: Schema,
    },
    /// The compatibility level of a subject, or the global one (`GET /config[/subject]`);
    /// answers [`Answer::Level`].
    Config {
        /// The subject; `None` for the global level.
        subject: Option<String>,
    },
    /// Sets a compatibility level (`PUT /config[/subject]`); answers [`Answer::Level`].
    SetConfig {
        /// The subject; `None` for the global level.
        subject: Option<String>,
        /// The level.
        level: Compatibility,
    },
    /// Deletes a subject (`DELETE /subjects/{subject}`, soft unless `permanent`); answers
    /// [`Answer::Versions`] with the versions deleted.
    DeleteSubject {
        /// The subject.
        subject: String,
        /// A hard delete (the subject must be soft-deleted before).
        permanent: bool,
    },
    /// Deletes one version (`DELETE /subjects/{subject}/versions/{version}`); answers
    /// [`Answer::Version`].
    DeleteVersion {
        /// The subject.
        subject: String,
        /// The version.
        version: Version,
        /// A hard delete.
        permanent: bool,
    },
    /// The ids of the schemas that reference a version
    /// (`GET /subjects/{subject}/versions/{version}/referencedby`); answers
    /// [`Answer::Ids`].
    ReferencedBy {
        /// The subject.
        subject: String,
        /// The version.
        version: Version,
    },
}

/// What a call answers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Answer {
    /// A schema.
    Schema(Arc<Schema>),
    /// A schema's id.
    Id(u32),
    /// A schema as registered under a subject.
    Registered(RegisteredSchema),
    /// Version numbers.
    Versions(Vec<i32>),
    /// Subject names.
    Subjects(Vec<String>),
    /// A compatibility verdict.
    Compatibility(CompatibilityCheck),
    /// A compatibility level.
    Level(Compatibility),
    /// One version number.
    Version(i32),
    /// Schema ids.
    Ids(Vec<u32>),
}

/// A request as HTTP: method, path under the base URL (with its query), body.
pub(crate) struct Http {
    pub(crate) method: &'static str,
    pub(crate) path: String,
    pub(crate) body: Option<Vec<u8>>,
}

fn subject_path(subject: &str) -> String {
    format!("/subjects/{}", encode_segment(subject))
}

fn schema_body(schema: &Schema) -> Vec<u8> {
    let mut body = json!({ "schema": schema.text });
    if schema.schema_type != SchemaType::Avro {
        body["schemaType"] = json!(schema.schema_type.name());
    }
    if !schema.references.is_empty() {
        body["references"] = schema
            .references
            .iter()
            .map(|r| json!({"name": r.name, "subject": r.subject, "version": r.version}))
            .collect();
    }
    body.to_string().into_bytes()
}

impl Request {
    pub(crate) fn http(&self) -> Http {
        let (method, path, body) = match self {
            Self::SchemaById { id } => ("GET", format!("/schemas/ids/{id}"), None),
            Self::Register {
                subject,
                schema,
                normalize,
            } => (
                "POST",
                format!(
                    "{}/versions{}",
                    subject_path(subject),
                    if *normalize { "?normalize=true" } else { "" }
                ),
                Some(schema_body(schema)),
            ),
            Self::Lookup { subject, schema } => {
                ("POST", subject_path(subject), Some(schema_body(schema)))
            }
            Self::Version { subject, version } => (
                "GET",
                format!("{}/versions/{version}", subject_path(subject)),
                None,
            ),
            Self::Versions { subject } => {
                ("GET", format!("{}/versions", subject_path(subject)), None)
            }
            Self::Subjects => ("GET", "/subjects".into(), None),
            Self::TestCompatibility {
                subject,
                version,
                schema,
            } => (
                "POST",
                format!(
                    "/compatibility{}/versions/{version}?verbose=true",
                    subject_path(subject)
                ),
                Some(schema_body(schema)),
            ),
            Self::Config { subject } => ("GET", config_path(subject.as_deref()), None),
            Self::SetConfig { subject, level } => (
                "PUT",
                config_path(subject.as_deref()),
                Some(
                    json!({ "compatibility": level.name() })
                        .to_string()
                        .into_bytes(),
                ),
            ),
            Self::DeleteSubject { subject, permanent } => (
                "DELETE",
                format!("{}{}", subject_path(subject), permanent_query(*permanent)),
                None,
            ),
            Self::DeleteVersion {
                subject,
                version,
                permanent,
            } => (
                "DELETE",
                format!(
                    "{}/versions/{version}{}",
                    subject_path(subject),
                    permanent_query(*permanent)
                ),
                None,
            ),
            Self::ReferencedBy { subject, version } => (
                "GET",
                format!("{}/versions/{version}/referencedby", subject_path(subject)),
                None,
            ),
        };
        Http { method, path, body }
    }

    /// Whether concurrent identical calls can share one request: reads, and registering
    /// or looking up the same schema (the registry answers both alike).
    pub(crate) fn mergeable(&self) -> bool {
        !matches!(
            self,
            Self::SetConfig { .. } | Self::DeleteSubject { .. } | Self::DeleteVersion { .. }
        )
    }

    /// Reads a successful answer's body.
    pub(crate) fn answer(&self, body: &[u8]) -> Result<Answer, RegistryError> {
        let v: Value =
            serde_json::from_slice(body).map_err(|e| malformed(format!("not JSON ({e})")))?;
        match self {
            Self::SchemaById { .. } => schema_of(&v).map(|s| Answer::Schema(Arc::new(s))),
            Self::Register { .. } => id_of(&v).map(Answer::Id),
            Self::Lookup { subject, .. } | Self::Version { subject, .. } => {
                registered(&v, subject).map(Answer::Registered)
            }
            Self::Versions { .. } | Self::DeleteSubject { .. } => {
                int_list(&v).map(Answer::Versions)
            }
            Self::Subjects => v
                .as_array()
                .and_then(|a| a.iter().map(|s| s.as_str().map(String::from)).collect())
                .map(Answer::Subjects)
                .ok_or_else(|| malformed("subjects: not a list of strings")),
            Self::TestCompatibility { .. } => {
                let is_compatible = v["is_compatible"]
                    .as_bool()
                    .ok_or_else(|| malformed("no is_compatible"))?;
                let messages = v["messages"]
                    .as_array()
                    .map(|m| {
                        m.iter()
                            .map(|s| s.as_str().map_or_else(|| s.to_string(), String::from))
                            .collect()
                    })
                    .unwrap_or_default();
                Ok(Answer::Compatibility(CompatibilityCheck {
                    is_compatible,
                    messages,
                }))
            }
            Self::Config { .. } | Self::SetConfig { .. } => {
                // Confluent's GET answers `compatibilityLevel`, its PUT `compatibility`.
                let name = v["compatibilityLevel"]
                    .as_str()
                    .or_else(|| v["compatibility"].as_str())
                    .ok_or_else(|| malformed("no compatibility level"))?;
                Compatibility::parse(name)
                    .map(Answer::Level)
                    .ok_or_else(|| malformed(format!("unknown compatibility level {name:.40}")))
            }
            Self::DeleteVersion { .. } => v
                .as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .map(Answer::Version)
                .ok_or_else(|| malformed("not a version number")),
            Self::ReferencedBy { .. } => int_list(&v)
                .and_then(|ids| {
                    ids.into_iter()
                        .map(|i| u32::try_from(i).map_err(|_| malformed("negative id")))
                        .collect()
                })
                .map(Answer::Ids),
        }
    }
}

fn config_path(subject: Option<&str>) -> String {
    match subject {
        Some(s) => format!("/config/{}", encode_segment(s)),
        None => "/config".into(),
    }
}

fn permanent_query(permanent: bool) -> &'static str {
    if permanent { "?permanent=true" } else { "" }
}

fn malformed(why: impl Into<String>) -> RegistryError {
    RegistryError::Malformed(why.into())
}

fn id_of(v: &Value) -> Result<u32, RegistryError> {
    v["id"]
        .as_u64()
        .and_then(|id| u32::try_from(id).ok())
        .ok_or_else(|| malformed("no schema id"))
}

fn int_list(v: &Value) -> Result<Vec<i32>, RegistryError> {
    v.as_array()
        .and_then(|a| {
            a.iter()
                .map(|n| n.as_i64().and_then(|n| i32::try_from(n).ok()))
                .collect()
        })
        .ok_or_else(|| malformed("not a list of numbers"))
}

fn schema_of(v: &Value) -> Result<Schema, RegistryError> {
    let text = v["schema"]
        .as_str()
        .ok_or_else(|| malformed("no schema text"))?;
    let kind = v["schemaType"].as_str();
    let schema_type =
        SchemaType::parse(kind).ok_or_else(|| malformed(format!("schema type {kind:?}")))?;
    let mut references = Vec::new();
    for r in v["references"].as_array().map_or(&[][..], Vec::as_slice) {
        let (Some(name), Some(subject), Some(version)) = (
            r["name"].as_str(),
            r["subject"].as_str(),
            r["version"].as_i64().and_then(|n| i32::try_from(n).ok()),
        ) else {
            return Err(malformed("a reference without name, subject or version"));
        };
        references.push(SchemaReference {
            name: name.into(),
            subject: subject.into(),
            version,
        });
    }
    Ok(Schema {
        schema_type,
        text: text.into(),
        references,
    })
}

fn registered(v: &Value, subject: &str) -> Result<RegisteredSchema, RegistryError> {
    Ok(RegisteredSchema {
        subject: v["subject"].as_str().unwrap_or(subject).into(),
        id: id_of(v)?,
        version: v["version"]
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .ok_or_else(|| malformed("no version"))?,
        schema: Arc::new(schema_of(v)?),
    })
}

/// The error an unsuccessful answer carries: `{"error_code": N, "message": "..."}`, or
/// the body's start when it is not that.
pub(crate) fn api_error(status: u16, body: &[u8]) -> RegistryError {
    let v: Option<Value> = serde_json::from_slice(body).ok();
    let code = v
        .as_ref()
        .and_then(|v| v["error_code"].as_i64())
        .and_then(|c| i32::try_from(c).ok());
    let message = v
        .as_ref()
        .and_then(|v| v["message"].as_str().map(String::from))
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
    RegistryError::Api {
        status,
        error_code: code.unwrap_or(-1),
        message,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn paths_and_bodies() {
        let schema = Schema::protobuf("syntax = \"proto3\";").reference(SchemaReference {
            name: "dep.proto".into(),
            subject: "dep".into(),
            version: 2,
        });
        let http = Request::Register {
            subject: "a b".into(),
            schema,
            normalize: true,
        }
        .http();
        assert_eq!(
            (http.method, http.path.as_str()),
            ("POST", "/subjects/a%20b/versions?normalize=true")
        );
        let body: Value = serde_json::from_slice(&http.body.unwrap()).unwrap();
        assert_eq!(body["schemaType"], "PROTOBUF");
        assert_eq!(body["references"][0]["version"], 2);
        let http = Request::DeleteVersion {
            subject: "s".into(),
            version: Version::Latest,
            permanent: true,
        }
        .http();
        assert_eq!(
            (http.method, http.path.as_str()),
            ("DELETE", "/subjects/s/versions/latest?permanent=true")
        );
        assert_eq!(Request::Config { subject: None }.http().path, "/config");
    }

    #[test]
    fn answers_read_both_registries_spellings() {
        let set = Request::SetConfig {
            subject: None,
            level: Compatibility::Full,
        };
        assert_eq!(
            set.answer(br#"{"compatibility":"FULL"}"#),
            Ok(Answer::Level(Compatibility::Full))
        );
        let get = Request::Config { subject: None };
        assert_eq!(
            get.answer(br#"{"compatibilityLevel":"NONE"}"#),
            Ok(Answer::Level(Compatibility::None))
        );
        let by_id = Request::SchemaById { id: 1 };
        assert_eq!(
            by_id.answer(br#"{"schema":"\"int\""}"#),
            Ok(Answer::Schema(Arc::new(Schema::avro("\"int\""))))
        );
        assert!(matches!(
            by_id.answer(br#"{"schema":1}"#),
            Err(RegistryError::Malformed(_))
        ));
        assert!(matches!(
            by_id.answer(br#"{"schema":"x","schemaType":"XML"}"#),
            Err(RegistryError::Malformed(_))
        ));
        assert!(matches!(
            by_id.answer(b"<html>"),
            Err(RegistryError::Malformed(_))
        ));
        assert!(matches!(
            Request::Subjects.answer(br#"["a",1]"#),
            Err(RegistryError::Malformed(_))
        ));
    }

    #[test]
    fn errors_carry_the_registrys_code() {
        assert_eq!(
            api_error(404, br#"{"error_code":40403,"message":"Schema not found"}"#),
            RegistryError::Api {
                status: 404,
                error_code: 40403,
                message: "Schema not found".into()
            }
        );
        assert_eq!(
            api_error(502, b"Bad Gateway"),
            RegistryError::Api {
                status: 502,
                error_code: -1,
                message: "Bad Gateway".into()
            }
        );
    }
}
