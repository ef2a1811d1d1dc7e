//! Tagged fields that a message carried but this version of kasio does not know.

use bytes::Bytes;

/// One tagged field kept as raw bytes, so a message re-encodes with it intact.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RawTaggedField {
    /// The field's tag.
    pub tag: u32,
    /// The field's encoded value.
    pub data: Bytes,
}

/// The unknown tagged fields of one struct, in the order they were read.
pub type UnknownTaggedFields = Vec<RawTaggedField>;
