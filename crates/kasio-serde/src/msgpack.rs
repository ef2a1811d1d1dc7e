//! MessagePack for any serde type.

use crate::{Context, DeserializeError, Deserializer, SerializeError, Serializer};
use serde::{Serialize, de::DeserializeOwned};
use std::marker::PhantomData;

/// MessagePack for any `T: Serialize`, structs as maps keyed by field name (as other
/// languages' MessagePack libraries read them), read back into any `T: DeserializeOwned`
/// (structs from maps or from arrays).
///
/// ```
/// use kasio_serde::{Context, Deserializer, MsgPack, Serializer};
/// #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
/// struct Point { x: i32, y: i32 }
/// let ctx = Context::value("points");
/// let mut out = Vec::new();
/// MsgPack::new().serialize(&Point { x: 1, y: -2 }, &ctx, &mut out)?;
/// assert_eq!(out[0], 0x82, "a map of two entries");
/// let back: Point = MsgPack::new().deserialize(&out, &ctx)?;
/// assert_eq!(back, Point { x: 1, y: -2 });
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct MsgPack<T>(PhantomData<fn() -> T>);

crate::codec::type_codec!(MsgPack);

impl<T: Serialize> Serializer<T> for MsgPack<T> {
    fn serialize(
        &self,
        value: &T,
        _: &Context<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), SerializeError> {
        value
            .serialize(&mut rmp_serde::Serializer::new(out).with_struct_map())
            .map_err(|e| SerializeError::MsgPack(e.to_string()))
    }
}

impl<T: DeserializeOwned> Deserializer<T> for MsgPack<T> {
    fn deserialize(&self, data: &[u8], _: &Context<'_>) -> Result<T, DeserializeError> {
        rmp_serde::from_slice(data).map_err(|e| DeserializeError::MsgPack(e.to_string()))
    }
}
