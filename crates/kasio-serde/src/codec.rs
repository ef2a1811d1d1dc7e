//! The two traits every codec implements, and the codecs that need no schema.

use crate::{Context, DeserializeError, SerializeError};

/// Turns a `T` into the bytes of a record's key or value.
///
/// It writes into `out` (appending), so a caller producing many records reuses one
/// buffer instead of allocating one per record.
///
/// ```
/// use kasio_serde::{Context, Serializer, StringCodec};
/// let mut out = Vec::new();
/// StringCodec.serialize("hello", &Context::key("greetings"), &mut out)?;
/// assert_eq!(out, b"hello");
/// # Ok::<(), kasio_serde::SerializeError>(())
/// ```
pub trait Serializer<T: ?Sized> {
    /// Appends the bytes of `value` to `out`.
    ///
    /// # Errors
    /// [`SerializeError`] if the value cannot be represented.
    fn serialize(
        &self,
        value: &T,
        ctx: &Context<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), SerializeError>;
}

/// Turns the bytes of a record's key or value into a `T`.
///
/// ```
/// use kasio_serde::{Context, Deserializer, StringCodec};
/// let s: String = StringCodec.deserialize(b"hello", &Context::value("greetings"))?;
/// assert_eq!(s, "hello");
/// # Ok::<(), kasio_serde::DeserializeError>(())
/// ```
pub trait Deserializer<T> {
    /// The value `data` holds.
    ///
    /// # Errors
    /// [`DeserializeError`] naming what was wrong with the bytes; never a panic.
    fn deserialize(&self, data: &[u8], ctx: &Context<'_>) -> Result<T, DeserializeError>;
}

/// UTF-8 text, checked on the way in (the Java client's `StringSerializer` with UTF-8).
///
/// ```
/// use kasio_serde::{Context, Deserializer, DeserializeError, StringCodec};
/// let ctx = Context::value("t");
/// let bad: Result<String, _> = StringCodec.deserialize(b"ok\xff", &ctx);
/// assert_eq!(bad, Err(DeserializeError::Utf8 { valid_up_to: 2 }));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct StringCodec;

impl Serializer<str> for StringCodec {
    fn serialize(
        &self,
        value: &str,
        _: &Context<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), SerializeError> {
        out.extend_from_slice(value.as_bytes());
        Ok(())
    }
}

impl Serializer<String> for StringCodec {
    fn serialize(
        &self,
        value: &String,
        ctx: &Context<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), SerializeError> {
        self.serialize(value.as_str(), ctx, out)
    }
}

impl Deserializer<String> for StringCodec {
    fn deserialize(&self, data: &[u8], _: &Context<'_>) -> Result<String, DeserializeError> {
        std::str::from_utf8(data)
            .map(str::to_owned)
            .map_err(|e| DeserializeError::Utf8 {
                valid_up_to: e.valid_up_to(),
            })
    }
}

/// Bytes as they are.
///
/// ```
/// use kasio_serde::{BytesCodec, Context, Deserializer, Serializer};
/// let mut out = Vec::new();
/// BytesCodec.serialize(&[1u8, 2, 3][..], &Context::value("t"), &mut out)?;
/// let back: Vec<u8> = BytesCodec.deserialize(&out, &Context::value("t"))?;
/// assert_eq!(back, [1, 2, 3]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct BytesCodec;

impl Serializer<[u8]> for BytesCodec {
    fn serialize(
        &self,
        value: &[u8],
        _: &Context<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), SerializeError> {
        out.extend_from_slice(value);
        Ok(())
    }
}

impl Serializer<Vec<u8>> for BytesCodec {
    fn serialize(
        &self,
        value: &Vec<u8>,
        ctx: &Context<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), SerializeError> {
        self.serialize(value.as_slice(), ctx, out)
    }
}

impl Deserializer<Vec<u8>> for BytesCodec {
    fn deserialize(&self, data: &[u8], _: &Context<'_>) -> Result<Vec<u8>, DeserializeError> {
        Ok(data.to_vec())
    }
}

/// What a codec for any serde type needs beside its (de)serializing: a constructor, and
/// `Default`, `Clone` and `Debug` without bounds on the type it codes (a derive would
/// ask them of `T`).
macro_rules! type_codec {
    ($codec:ident) => {
        impl<T> $codec<T> {
            /// The codec.
            #[must_use]
            pub fn new() -> Self {
                Self(PhantomData)
            }
        }

        impl<T> Default for $codec<T> {
            fn default() -> Self {
                Self::new()
            }
        }

        impl<T> Clone for $codec<T> {
            fn clone(&self) -> Self {
                Self::new()
            }
        }

        impl<T> std::fmt::Debug for $codec<T> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(stringify!($codec))
            }
        }
    };
}
pub(crate) use type_codec;
