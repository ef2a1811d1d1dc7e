//! JSON for any serde type, as plain JSON text (no registry framing).

use crate::{Context, DeserializeError, Deserializer, SerializeError, Serializer};
use serde::{Serialize, de::DeserializeOwned};
use std::marker::PhantomData;

/// JSON text for any `T: Serialize`, read back into any `T: DeserializeOwned` (the
/// format of the Java client's `JsonSerializer` from Kafka Connect, without a schema).
///
/// ```
/// use kasio_serde::{Context, Deserializer, Json};
/// let ctx = Context::value("t").at(0, 5);
/// let bad: Result<Vec<u32>, _> = Json::new().deserialize(b"[1, \"two\"]", &ctx);
/// assert!(bad.unwrap_err().to_string().contains("line 1 column"));
/// ```
pub struct Json<T>(PhantomData<fn() -> T>);

crate::codec::type_codec!(Json);

impl<T: Serialize> Serializer<T> for Json<T> {
    fn serialize(
        &self,
        value: &T,
        _: &Context<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), SerializeError> {
        serde_json::to_writer(out, value).map_err(|e| SerializeError::Json(e.to_string()))
    }
}

impl<T: DeserializeOwned> Deserializer<T> for Json<T> {
    fn deserialize(&self, data: &[u8], _: &Context<'_>) -> Result<T, DeserializeError> {
        serde_json::from_slice(data).map_err(|e| DeserializeError::Json(e.to_string()))
    }
}
