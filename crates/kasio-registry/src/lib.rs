//! A client for Confluent's Schema Registry REST API, and registries that speak it
//! (Apicurio Registry's `/apis/ccompat/v7`), written sans-IO like the rest of kasio.
//!
//! [`Registry`] is a state machine: calls ([`Request`]) go in, HTTP/1.1 requests come out
//! as bytes for connections it asks the driver to open, responses go in, answers
//! ([`Answer`]) come out. It implements [`kasio_core::Client`], so kasio's runtimes drive
//! it exactly as they drive a producer (and so can any event loop); TLS is kasio's own.
//! Nothing here reads a clock, opens a socket or spawns a thread.
//!
//! What it does beyond moving requests: caches schemas by id, ids by subject and schema,
//! and versions ([`RegistryConfig::cache_capacity`] each); merges identical calls under
//! way at once into one request; retries connection failures, timeouts and 408, 429 and
//! 5xx answers with exponential backoff and full jitter, across several base URLs; caps
//! every response ([`RegistryConfig::max_response_bytes`]); and reports the registry's
//! own `error_code` in [`RegistryError::Api`].
//!
//! ```
//! use kasio_registry::{Compatibility, Request, Schema, Version};
//! // The calls a serializer and an operator make:
//! let register = Request::Register {
//!     subject: "orders-value".into(),
//!     schema: Schema::avro(r#"{"type":"record","name":"Order","fields":[]}"#),
//!     normalize: false,
//! };
//! let latest = Request::Version { subject: "orders-value".into(), version: Version::Latest };
//! let strict = Request::SetConfig { subject: None, level: Compatibility::FullTransitive };
//! # let _ = (register, latest, strict);
//! ```
#![forbid(unsafe_code)]

mod cache;
mod config;
mod error;
mod http;
mod registry;
mod request;
mod schema;

pub use config::{Auth, RegistryConfig, RegistryUrl};
pub use error::RegistryError;
pub use http::MAX_HEAD;
pub use registry::{CallId, MAX_REFERENCE_DEPTH, Registry};
pub use request::{Answer, Request};
pub use schema::{
    Compatibility, CompatibilityCheck, RegisteredSchema, Schema, SchemaReference, SchemaType,
    Version,
};
