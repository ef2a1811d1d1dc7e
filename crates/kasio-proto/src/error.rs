//! Typed errors for encoding and decoding.

use std::fmt;

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The input ended before a value was complete.
    Truncated {
        /// Bytes the value needed.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A length or count prefix was negative (and not the null marker) or absurd.
    InvalidLength(i64),
    /// A length or count prefix claims more than the input holds.
    LengthExceedsInput {
        /// What the prefix claimed (bytes, or elements for arrays).
        length: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A length exceeds a configured cap.
    LengthExceedsLimit {
        /// What the prefix claimed.
        length: usize,
        /// The cap in force.
        limit: usize,
    },
    /// A variable-length integer ran past its maximum width.
    VarintTooLong,
    /// A string was not valid UTF-8.
    InvalidUtf8,
    /// A null was found where this version does not allow one.
    UnexpectedNull,
    /// The message does not exist at this version.
    UnsupportedVersion {
        /// The version asked for.
        version: i16,
    },
    /// The API key is not one kasio knows.
    UnknownApiKey(i16),
    /// A record batch's CRC32C did not match its contents.
    CrcMismatch {
        /// The checksum stored in the batch.
        stored: u32,
        /// The checksum of the bytes received.
        computed: u32,
    },
    /// A record batch or message set used a magic byte kasio cannot read.
    UnsupportedMagic(i8),
    /// The batch names a compression codec kasio does not know.
    UnknownCompression(u8),
    /// Decompression failed.
    Decompression(String),
    /// Bytes were left over where a value should have used them all.
    TrailingBytes(usize),
    /// A value was out of its valid range.
    InvalidValue(&'static str),
}

/// A decoding failure: what went wrong and where.
///
/// The path names the fields from the outermost inwards, so a failure reads like
/// `Topics.Partitions.ErrorCode: truncated: needed 2 bytes, 1 remaining`.
///
/// One pointer wide, so the `Result` of every primitive read stays in registers; the box is
/// allocated only when decoding fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(Box<Failure>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Failure {
    kind: DecodeErrorKind,
    path: Vec<&'static str>,
}

impl DecodeError {
    /// An error of this kind, with no location yet.
    #[cold]
    pub fn new(kind: DecodeErrorKind) -> Self {
        Self(Box::new(Failure {
            kind,
            path: Vec::new(),
        }))
    }

    /// What went wrong.
    pub fn kind(&self) -> &DecodeErrorKind {
        &self.0.kind
    }

    /// The fields leading to the failure, outermost first.
    pub fn path(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.path.iter().rev().copied()
    }

    /// Records that the failure happened inside `field`.
    #[must_use]
    #[cold]
    pub fn at(mut self, field: &'static str) -> Self {
        self.0.path.push(field);
        self
    }

    #[cold]
    pub(crate) fn truncated(needed: usize, remaining: usize) -> Self {
        Self::new(DecodeErrorKind::Truncated { needed, remaining })
    }
}

impl From<DecodeErrorKind> for DecodeError {
    fn from(kind: DecodeErrorKind) -> Self {
        Self::new(kind)
    }
}

/// Adds `field` to the path of an error passing through; for `map_err`.
pub(crate) fn at(field: &'static str) -> impl Fn(DecodeError) -> DecodeError {
    move |e| e.at(field)
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { needed, remaining } => {
                write!(f, "truncated: needed {needed} bytes, {remaining} remaining")
            }
            Self::InvalidLength(n) => write!(f, "invalid length or count {n}"),
            Self::LengthExceedsInput { length, remaining } => {
                write!(f, "length {length} exceeds the {remaining} bytes remaining")
            }
            Self::LengthExceedsLimit { length, limit } => {
                write!(f, "length {length} exceeds the limit of {limit}")
            }
            Self::VarintTooLong => f.write_str("variable-length integer is too long"),
            Self::InvalidUtf8 => f.write_str("string is not valid UTF-8"),
            Self::UnexpectedNull => f.write_str("null where this version does not allow one"),
            Self::UnsupportedVersion { version } => write!(f, "unsupported version {version}"),
            Self::UnknownApiKey(k) => write!(f, "unknown API key {k}"),
            Self::CrcMismatch { stored, computed } => {
                write!(
                    f,
                    "CRC mismatch: stored {stored:#010x}, computed {computed:#010x}"
                )
            }
            Self::UnsupportedMagic(m) => write!(f, "unsupported magic byte {m}"),
            Self::UnknownCompression(c) => write!(f, "unknown compression codec {c}"),
            Self::Decompression(why) => write!(f, "decompression failed: {why}"),
            Self::TrailingBytes(n) => write!(f, "{n} unexpected trailing bytes"),
            Self::InvalidValue(what) => write!(f, "invalid value: {what}"),
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for field in self.path() {
            if !first {
                f.write_str(".")?;
            }
            f.write_str(field)?;
            first = false;
        }
        if !first {
            f.write_str(": ")?;
        }
        self.0.kind.fmt(f)
    }
}

impl std::error::Error for DecodeError {}

/// Why a value could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// The message does not exist at this version.
    UnsupportedVersion {
        /// The message's name.
        message: &'static str,
        /// The version asked for.
        version: i16,
    },
    /// A field that this version lacks holds a value other than its default.
    FieldNotInVersion {
        /// The field's name.
        field: &'static str,
        /// The version asked for.
        version: i16,
    },
    /// A field holds null where this version does not allow it.
    NullNotAllowed {
        /// The field's name.
        field: &'static str,
        /// The version asked for.
        version: i16,
    },
    /// Tagged fields were set but this version has none.
    TaggedFieldsNotInVersion {
        /// The version asked for.
        version: i16,
    },
    /// A string, byte array or array is longer than its length prefix can say.
    TooLong {
        /// The length of the value.
        length: usize,
        /// The most the prefix can hold.
        max: usize,
    },
    /// Compression failed.
    Compression(String),
    /// A value was out of its valid range.
    InvalidValue(&'static str),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnsupportedVersion { message, version } => {
                write!(f, "{message} has no version {version}")
            }
            Self::FieldNotInVersion { field, version } => write!(
                f,
                "field {field} is not in version {version} but holds a non-default value"
            ),
            Self::NullNotAllowed { field, version } => {
                write!(f, "field {field} cannot be null in version {version}")
            }
            Self::TaggedFieldsNotInVersion { version } => {
                write!(f, "tagged fields were set but version {version} has none")
            }
            Self::TooLong { length, max } => {
                write!(f, "length {length} exceeds the maximum of {max}")
            }
            Self::Compression(why) => write!(f, "compression failed: {why}"),
            Self::InvalidValue(what) => write!(f, "invalid value: {what}"),
        }
    }
}

impl std::error::Error for EncodeError {}
