//! Confluent's Schema Registry wire format: the magic byte 0, the schema id as 4
//! big-endian bytes, then the payload; for Protobuf the payload starts with the path of
//! indexes naming the message within its `.proto` file. Newer Confluent serializers may
//! name the schema by its 16-byte GUID instead (magic byte 1), in front of the payload or
//! in a record header of its own ([`KEY_SCHEMA_ID_HEADER`], [`VALUE_SCHEMA_ID_HEADER`])
//! with the payload left bare; [`parse`] reads both magic bytes.
//!
//! ```
//! use kasio_serde::wire::{self, SchemaRef};
//! let mut out = Vec::new();
//! wire::frame(42, &mut out);
//! out.extend_from_slice(b"payload");
//! let framed = wire::parse(&out)?;
//! assert_eq!((framed.schema, framed.payload), (SchemaRef::Id(42), &b"payload"[..]));
//! # Ok::<(), kasio_serde::wire::WireError>(())
//! ```

/// The first byte of a payload framed with a schema id.
pub const MAGIC: u8 = 0;

/// The first byte of a schema reference by GUID.
pub const MAGIC_GUID: u8 = 1;

/// Magic byte and schema id.
pub const HEADER_LEN: usize = 5;

/// Magic byte and schema GUID.
pub const GUID_HEADER_LEN: usize = 17;

/// The record header that carries a key's schema reference when it is not in front of
/// the key (confluent-kafka's `header_schema_id_serializer`).
pub const KEY_SCHEMA_ID_HEADER: &str = "__key_schema_id";

/// The record header that carries a value's schema reference.
pub const VALUE_SCHEMA_ID_HEADER: &str = "__value_schema_id";

/// How framed bytes name the writer's schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchemaRef {
    /// The registry's numeric id (magic byte 0).
    Id(u32),
    /// The registry's GUID for the schema (magic byte 1).
    Guid([u8; 16]),
}

/// The deepest message path accepted: Protobuf allows nesting this deep and no real
/// schema comes near it, so a longer path is corrupt bytes, not a message.
pub const MAX_MESSAGE_DEPTH: usize = 100;

/// What is wrong with a framed payload.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireError {
    /// Fewer bytes than the header their magic byte announces.
    Short {
        /// How many there were.
        len: usize,
        /// How many the header takes.
        need: usize,
    },
    /// The first byte is neither [`MAGIC`] nor [`MAGIC_GUID`]: not written by a registry
    /// serializer.
    Magic(u8),
    /// A varint of the message path ran past the end or past 5 bytes.
    Varint,
    /// The message path is longer than [`MAX_MESSAGE_DEPTH`], or negative.
    PathLength(i32),
    /// A message index is negative.
    Index(i32),
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Short { len, need } => {
                write!(f, "{len} bytes, shorter than the {need}-byte header")
            }
            Self::Magic(b) => write!(f, "magic byte {b:#04x}, expected 0x00 or 0x01"),
            Self::Varint => f.write_str("a message index varint is cut short or too long"),
            Self::PathLength(n) => write!(
                f,
                "a message path of {n} indexes (0 to {MAX_MESSAGE_DEPTH} expected)"
            ),
            Self::Index(i) => write!(f, "message index {i} is negative"),
        }
    }
}

impl std::error::Error for WireError {}

/// A framed payload, parsed: borrowed from the record's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framed<'a> {
    /// The writer's schema.
    pub schema: SchemaRef,
    /// What follows the header.
    pub payload: &'a [u8],
}

/// Appends the header for `schema_id`; the payload goes after it.
pub fn frame(schema_id: u32, out: &mut Vec<u8>) {
    out.push(MAGIC);
    out.extend_from_slice(&schema_id.to_be_bytes());
}

/// Appends the reference to the schema with `guid` (in front of a payload, or as the
/// value of a schema-id record header).
pub fn frame_guid(guid: [u8; 16], out: &mut Vec<u8>) {
    out.push(MAGIC_GUID);
    out.extend_from_slice(&guid);
}

/// Splits framed bytes into the schema they name and what follows: the payload, or for
/// the value of a schema-id header, nothing (or a Protobuf message path).
///
/// ```
/// use kasio_serde::wire::{self, SchemaRef};
/// let mut header = Vec::new();
/// wire::frame_guid([7; 16], &mut header);
/// assert_eq!(wire::parse(&header)?.schema, SchemaRef::Guid([7; 16]));
/// # Ok::<(), kasio_serde::wire::WireError>(())
/// ```
///
/// # Errors
/// [`WireError::Short`] or [`WireError::Magic`].
pub fn parse(data: &[u8]) -> Result<Framed<'_>, WireError> {
    let short = |need| WireError::Short {
        len: data.len(),
        need,
    };
    match data.first() {
        None => Err(short(HEADER_LEN)),
        Some(&MAGIC) => {
            let (header, payload) = data
                .split_first_chunk::<HEADER_LEN>()
                .ok_or(short(HEADER_LEN))?;
            let id = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
            Ok(Framed {
                schema: SchemaRef::Id(id),
                payload,
            })
        }
        Some(&MAGIC_GUID) => {
            let (header, payload) = data
                .split_first_chunk::<GUID_HEADER_LEN>()
                .ok_or(short(GUID_HEADER_LEN))?;
            let mut guid = [0; 16];
            guid.copy_from_slice(&header[1..]);
            Ok(Framed {
                schema: SchemaRef::Guid(guid),
                payload,
            })
        }
        Some(&other) => Err(WireError::Magic(other)),
    }
}

/// Appends a Protobuf message's path (its index in the file, then in each enclosing
/// message) as Confluent's serializer writes it: the first message of the file, `[0]`,
/// as the single byte 0; any other as the path's length and then each index, all as
/// zigzag varints.
///
/// ```
/// use kasio_serde::wire;
/// let mut out = Vec::new();
/// wire::write_message_path(&[0], &mut out);
/// assert_eq!(out, [0x00]);
/// out.clear();
/// wire::write_message_path(&[1, 0], &mut out);
/// assert_eq!(out, [0x04, 0x02, 0x00]);
/// ```
pub fn write_message_path(path: &[i32], out: &mut Vec<u8>) {
    if path == [0] {
        out.push(0);
        return;
    }
    write_zigzag(i32::try_from(path.len()).unwrap_or(i32::MAX), out);
    for &index in path {
        write_zigzag(index, out);
    }
}

/// Reads a Protobuf message's path from the start of a payload: the path and the
/// message bytes after it. A length of 0 is the file's first message, `[0]`.
///
/// ```
/// use kasio_serde::wire;
/// let (path, rest) = wire::read_message_path(&[0x04, 0x02, 0x00, 0xaa])?;
/// assert_eq!((path, rest), (vec![1, 0], &[0xaa][..]));
/// # Ok::<(), kasio_serde::wire::WireError>(())
/// ```
///
/// # Errors
/// [`WireError::Varint`], [`WireError::PathLength`] or [`WireError::Index`]; the length
/// is checked against the cap and against the bytes left before anything is allocated.
pub fn read_message_path(data: &[u8]) -> Result<(Vec<i32>, &[u8]), WireError> {
    let (len, mut rest) = read_zigzag(data)?;
    if len == 0 {
        return Ok((vec![0], rest));
    }
    let count = usize::try_from(len).map_err(|_| WireError::PathLength(len))?;
    // Each index takes at least one byte.
    if count > MAX_MESSAGE_DEPTH || count > rest.len() {
        return Err(WireError::PathLength(len));
    }
    let mut path = Vec::with_capacity(count);
    for _ in 0..count {
        let (index, after) = read_zigzag(rest)?;
        if index < 0 {
            return Err(WireError::Index(index));
        }
        path.push(index);
        rest = after;
    }
    Ok((path, rest))
}

fn write_zigzag(value: i32, out: &mut Vec<u8>) {
    let mut v = ((value << 1) ^ (value >> 31)).cast_unsigned();
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn read_zigzag(data: &[u8]) -> Result<(i32, &[u8]), WireError> {
    let mut value: u32 = 0;
    for (i, &b) in data.iter().enumerate().take(5) {
        // The fifth byte holds the top 4 bits of 32; more is not an i32.
        if i == 4 && b > 0x0f {
            return Err(WireError::Varint);
        }
        value |= u32::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            let signed = (value >> 1).cast_signed() ^ -((value & 1).cast_signed());
            return Ok((signed, &data[i + 1..]));
        }
    }
    Err(WireError::Varint)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn headers_are_checked() {
        assert_eq!(parse(&[0, 0, 0]), Err(WireError::Short { len: 3, need: 5 }));
        assert_eq!(parse(&[]), Err(WireError::Short { len: 0, need: 5 }));
        assert_eq!(
            parse(&[1, 0, 0, 0, 1]),
            Err(WireError::Short { len: 5, need: 17 })
        );
        assert_eq!(parse(&[2, 0, 0, 0, 1]), Err(WireError::Magic(2)));
        assert_eq!(
            parse(&[0, 0, 0, 1, 0]),
            Ok(Framed {
                schema: SchemaRef::Id(256),
                payload: &[]
            })
        );
        assert_eq!(
            parse(&[0, 0xff, 0xff, 0xff, 0xff, 9]).map(|f| f.schema),
            Ok(SchemaRef::Id(u32::MAX))
        );
        let mut guid = vec![1];
        guid.extend(1..=16u8);
        guid.push(0xaa);
        let framed = parse(&guid).unwrap();
        assert_eq!(framed.payload, [0xaa]);
        assert_eq!(
            framed.schema,
            SchemaRef::Guid(std::array::from_fn(|i| i as u8 + 1))
        );
    }

    #[test]
    fn message_paths_match_confluents_bytes() {
        // [0] as one byte; [1] as length 1 (zigzag 2) and index 1 (zigzag 2); a nested
        // path; and an index past one varint byte (64 zigzags to 128: 0x80 0x01).
        for (path, bytes) in [
            (vec![0], vec![0x00]),
            (vec![1], vec![0x02, 0x02]),
            (vec![2, 0, 3], vec![0x06, 0x04, 0x00, 0x06]),
            (vec![64], vec![0x02, 0x80, 0x01]),
        ] {
            let mut out = Vec::new();
            write_message_path(&path, &mut out);
            assert_eq!(out, bytes, "{path:?}");
            assert_eq!(read_message_path(&bytes), Ok((path, &[][..])));
        }
        // A reader also takes [0] written long-hand, as other serializers write it.
        assert_eq!(read_message_path(&[0x02, 0x00]), Ok((vec![0], &[][..])));
    }

    #[test]
    fn hostile_paths_are_refused_before_allocating() {
        // A length of a billion with three bytes left.
        let mut huge = Vec::new();
        write_zigzag(1_000_000_000, &mut huge);
        huge.extend_from_slice(&[0, 0, 0]);
        assert_eq!(
            read_message_path(&huge),
            Err(WireError::PathLength(1_000_000_000))
        );
        assert_eq!(read_message_path(&[0x01]), Err(WireError::PathLength(-1)));
        assert_eq!(read_message_path(&[0x02, 0x01]), Err(WireError::Index(-1)));
        assert_eq!(read_message_path(&[0x02]), Err(WireError::PathLength(1)));
        assert_eq!(read_message_path(&[0x80]), Err(WireError::Varint));
        assert_eq!(
            read_message_path(&[0xff, 0xff, 0xff, 0xff, 0x7f]),
            Err(WireError::Varint),
            "more than 32 bits"
        );
        assert_eq!(read_message_path(&[]), Err(WireError::Varint));
    }

    proptest! {
        #[test]
        fn any_bytes_parse_or_fail_without_panicking(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse(&data);
            if let Ok((path, rest)) = read_message_path(&data) {
                prop_assert!(path.len() <= MAX_MESSAGE_DEPTH);
                prop_assert!(rest.len() < data.len());
            }
        }

        #[test]
        fn paths_round_trip(path in proptest::collection::vec(0i32..i32::MAX, 1..MAX_MESSAGE_DEPTH)) {
            let mut out = Vec::new();
            write_message_path(&path, &mut out);
            out.push(0xaa);
            let (back, rest) = read_message_path(&out).unwrap();
            prop_assert_eq!(back, path);
            prop_assert_eq!(rest, &[0xaa][..]);
        }
    }
}
