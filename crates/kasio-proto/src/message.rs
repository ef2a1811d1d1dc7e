//! The traits every generated message implements.

use crate::{
    ApiKey,
    error::{DecodeError, EncodeError},
};
use bytes::{Bytes, BytesMut};
use std::fmt;

/// An inclusive range of protocol versions.
///
/// ```
/// use kasio_proto::VersionRange;
/// let r = VersionRange::new(3, 9);
/// assert!(r.contains(5));
/// assert_eq!(r.intersect(VersionRange::new(0, 4)), Some(VersionRange::new(3, 4)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VersionRange {
    /// The lowest version.
    pub min: i16,
    /// The highest version.
    pub max: i16,
}

impl VersionRange {
    /// The versions `min..=max`.
    pub const fn new(min: i16, max: i16) -> Self {
        Self { min, max }
    }

    /// Whether `version` lies in the range.
    pub const fn contains(self, version: i16) -> bool {
        self.min <= version && version <= self.max
    }

    /// The versions both ranges hold, if any.
    pub fn intersect(self, other: VersionRange) -> Option<VersionRange> {
        let r = VersionRange::new(self.min.max(other.min), self.max.min(other.max));
        (r.min <= r.max).then_some(r)
    }

    /// Every version in the range, lowest first.
    pub fn iter(self) -> impl Iterator<Item = i16> {
        self.min..=self.max
    }
}

impl fmt::Display for VersionRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.min, self.max)
    }
}

/// A value that encodes to the wire at a given version.
pub trait Encode {
    /// Appends the value, encoded at `version`, to `buf`.
    ///
    /// # Errors
    /// [`EncodeError`] if the version does not exist or cannot carry the value; `buf` is
    /// then left as it was.
    fn encode(&self, version: i16, buf: &mut BytesMut) -> Result<(), EncodeError>;
}

/// A value that decodes from the wire at a given version.
pub trait Decode: Sized {
    /// Decodes a value at `version` from the front of `buf`, advancing past it. Strings and
    /// byte fields share `buf`'s storage.
    ///
    /// # Errors
    /// [`DecodeError`] with the failing field's path if the bytes are not a valid value.
    fn decode(version: i16, buf: &mut Bytes) -> Result<Self, DecodeError>;
}

/// A top-level message of the protocol: a request, a response, a header or a data schema.
///
/// ```
/// use bytes::BytesMut;
/// use kasio_proto::{Decode, Encode, Message, messages::MetadataRequest};
/// let req = MetadataRequest { allow_auto_topic_creation: false, ..Default::default() };
/// let mut buf = BytesMut::new();
/// req.encode(12, &mut buf).unwrap();
/// let back = MetadataRequest::decode(12, &mut buf.freeze()).unwrap();
/// assert_eq!(back, req);
/// assert!(MetadataRequest::VERSIONS.contains(12));
/// ```
pub trait Message: Encode + Decode + Default + Clone + fmt::Debug + PartialEq {
    /// The message's name in Kafka's specs.
    const NAME: &'static str;
    /// The versions the codec reads and writes.
    const VERSIONS: VersionRange;
    /// The first flexible version (compact encodings and tagged fields), if any.
    const FLEXIBLE_FROM: Option<i16>;
}

/// A request body.
pub trait Request: Message {
    /// The API this request belongs to.
    const API_KEY: ApiKey;
    /// The response the broker sends back.
    type Response: Response;
}

/// A response body.
pub trait Response: Message {
    /// The API this response belongs to.
    const API_KEY: ApiKey;
}
