//! Typed keys and values in, a record to send out: the part of a typed producer that
//! does no I/O.

use crate::{Context, SerializeError, Serializer, Target};
use kasio_core::Record;

/// Serializes a key and a value into buffers it keeps, so a producer sending many
/// records allocates nothing per record once the buffers have grown to the largest.
///
/// ```
/// use kasio_core::Record;
/// use kasio_serde::{Json, RecordEncoder, StringCodec};
/// #[derive(serde::Serialize)]
/// struct Order { id: u64 }
/// let mut encoder = RecordEncoder::<str, Order, _, _>::new(StringCodec, Json::new());
/// let record = encoder.encode(Record::new("orders").partition(2), Some("k1"), Some(&Order { id: 7 }))?;
/// assert_eq!((record.key, record.value), (Some(&b"k1"[..]), Some(&br#"{"id":7}"#[..])));
/// assert_eq!(record.partition, Some(2));
/// # Ok::<(), kasio_serde::EncodeError>(())
/// ```
pub struct RecordEncoder<K: ?Sized, V: ?Sized, KS, VS> {
    key: KS,
    value: VS,
    key_buf: Vec<u8>,
    value_buf: Vec<u8>,
    kind: std::marker::PhantomData<fn(&K, &V)>,
}

impl<K: ?Sized, V: ?Sized, KS, VS> std::fmt::Debug for RecordEncoder<K, V, KS, VS> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordEncoder").finish_non_exhaustive()
    }
}

/// A key or a value that could not be serialized, and which.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeError {
    /// The record's topic.
    pub topic: String,
    /// Key or value.
    pub target: Target,
    /// What was wrong.
    pub error: SerializeError,
}

impl std::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} for {}: {}", self.target, self.topic, self.error)
    }
}

impl std::error::Error for EncodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl<K: ?Sized, V: ?Sized, KS: Serializer<K>, VS: Serializer<V>> RecordEncoder<K, V, KS, VS> {
    /// An encoder writing keys with `key` and values with `value`.
    pub fn new(key: KS, value: VS) -> Self {
        Self {
            key,
            value,
            key_buf: Vec::new(),
            value_buf: Vec::new(),
            kind: std::marker::PhantomData,
        }
    }

    /// `record` (its topic, partition, headers and timestamp) with `key` and `value`
    /// serialized; `None` is a null key or a tombstone. The record borrows the encoder's
    /// buffers until it is sent.
    ///
    /// # Errors
    /// [`EncodeError`] naming the key or the value that did not serialize.
    pub fn encode<'a>(
        &'a mut self,
        record: Record<'a>,
        key: Option<&K>,
        value: Option<&V>,
    ) -> Result<Record<'a>, EncodeError> {
        let fail = |target, error| EncodeError {
            topic: record.topic.to_owned(),
            target,
            error,
        };
        self.key_buf.clear();
        self.value_buf.clear();
        if let Some(key) = key {
            self.key
                .serialize(key, &Context::key(record.topic), &mut self.key_buf)
                .map_err(|e| fail(Target::Key, e))?;
        }
        if let Some(value) = value {
            self.value
                .serialize(value, &Context::value(record.topic), &mut self.value_buf)
                .map_err(|e| fail(Target::Value, e))?;
        }
        let mut record = record;
        record.key = key.map(|_| self.key_buf.as_slice());
        record.value = value.map(|_| self.value_buf.as_slice());
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Json, StringCodec};
    use std::collections::HashMap;

    #[test]
    fn a_value_that_does_not_serialize_is_named_and_the_buffers_are_reused() {
        let mut encoder =
            RecordEncoder::<str, HashMap<(u8, u8), u8>, _, _>::new(StringCodec, Json::new());
        let bad = HashMap::from([((1, 2), 3)]);
        let err = encoder
            .encode(Record::new("t"), Some("k"), Some(&bad))
            .unwrap_err();
        assert_eq!((err.topic.as_str(), err.target), ("t", Target::Value));
        assert!(
            err.to_string()
                .starts_with("value for t: cannot encode as JSON")
        );
        let empty = HashMap::new();
        let record = encoder
            .encode(Record::new("t"), None, Some(&empty))
            .unwrap();
        assert_eq!((record.key, record.value), (None, Some(&b"{}"[..])));
        let tombstone = encoder.encode(Record::new("t"), Some("k"), None).unwrap();
        assert_eq!((tombstone.key, tombstone.value), (Some(&b"k"[..]), None));
    }
}
