//! The Kafka wire protocol as pure functions over bytes.
//!
//! - [`messages`]: every request and response of every API at every version, generated from
//!   Kafka's JSON message specs, each implementing [`Encode`], [`Decode`] and [`Message`];
//!   [`AnyRequest`] and [`AnyResponse`] dispatch on an [`ApiKey`] at run time.
//! - [`frame`]: size-prefixed framing, request and response headers.
//! - [`records`]: record batches (magic v2) that borrow the fetched buffer, their encoder,
//!   and the legacy message sets (decode only).
//! - [`compression`]: gzip, snappy, lz4 and zstd, with a cap on decompressed size.
//! - [`ErrorCode`]: every Kafka error code with its name, message and retriable flag.
//!
//! Nothing here does I/O, reads a clock or panics on bad input: every length and count read
//! from the wire is checked against the bytes that remain before anything is allocated.
//!
//! ```
//! use bytes::BytesMut;
//! use kasio_proto::{Decode, Encode, messages::{ApiVersionsRequest, ApiVersionsResponse}};
//! let req = ApiVersionsRequest {
//!     client_software_name: "kasio".into(),
//!     client_software_version: "0.1.0".into(),
//!     ..Default::default()
//! };
//! let mut buf = BytesMut::new();
//! req.encode(3, &mut buf)?;
//! assert_eq!(ApiVersionsRequest::decode(3, &mut buf.freeze())?, req);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

pub mod base64;
mod byte_str;
pub mod compression;
mod error;
pub mod frame;
mod message;
pub mod records;
mod tagged;
mod uuid;
mod varint;
mod wire;

#[cfg(any(test, feature = "_random"))]
pub mod random;

#[allow(
    missing_docs,
    unused_variables,
    unused_mut,
    unused_imports,
    unused_parens,
    unreachable_patterns,
    clippy::all,
    rustdoc::broken_intra_doc_links,
    rustdoc::invalid_html_tags,
    rustdoc::bare_urls
)]
#[rustfmt::skip]
mod generated;

pub use byte_str::ByteStr;
pub use error::{DecodeError, DecodeErrorKind, EncodeError};
pub use generated::error_code::ErrorCode;
pub use generated::{AnyRequest, AnyResponse, ApiKey};
pub use message::{Decode, Encode, Message, Request, Response, VersionRange};
pub use tagged::{RawTaggedField, UnknownTaggedFields};
pub use uuid::Uuid;

/// Every message type, by name; each module also holds the message's nested structs.
pub mod messages {
    pub use crate::generated::*;
}

/// The codec example of docs/ARCHITECTURE.md, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/ARCHITECTURE.md")]
struct ArchitectureDoctests;

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn every_message_round_trips_at_every_version(seed: u64) {
            match crate::generated::round_trip_every_message(seed) {
                Ok(n) => prop_assert_eq!(n, crate::generated::MESSAGE_VERSIONS),
                Err(e) => prop_assert!(false, "{e}"),
            }
        }
    }
}
