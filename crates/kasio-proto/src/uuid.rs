//! `Uuid`: Kafka's 128-bit topic and directory identifiers.

use std::fmt;

/// A 128-bit identifier as Kafka puts it on the wire (big-endian, 16 bytes).
///
/// Displays in Kafka's URL-safe base64 form, as the broker's tools print topic ids.
///
/// ```
/// use kasio_proto::Uuid;
/// let id = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
/// assert_eq!(id.as_u128(), 0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
/// assert!(Uuid::ZERO.is_zero());
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Uuid([u8; 16]);

impl Uuid {
    /// The all-zero id, which Kafka uses for "none".
    pub const ZERO: Uuid = Uuid([0; 16]);

    /// An id from its 16 bytes.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// An id from a 128-bit integer (most significant bits first on the wire).
    pub const fn from_u128(v: u128) -> Self {
        Self(v.to_be_bytes())
    }

    /// The 16 bytes.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// As a 128-bit integer.
    pub const fn as_u128(&self) -> u128 {
        u128::from_be_bytes(self.0)
    }

    /// Whether this is [`Uuid::ZERO`].
    pub const fn is_zero(&self) -> bool {
        self.as_u128() == 0
    }

    /// Reads the form Kafka prints (and [`Display`](fmt::Display) writes): 22 characters
    /// of URL-safe base64 without padding.
    ///
    /// ```
    /// use kasio_proto::Uuid;
    /// let id = Uuid::from_u128(0x0123_4567_89ab_cdef_0011_2233_4455_6677);
    /// assert_eq!(Uuid::parse(&id.to_string()), Some(id));
    /// assert_eq!(Uuid::parse("not an id"), None);
    /// ```
    pub fn parse(s: &str) -> Option<Self> {
        if s.len() != 22 {
            return None;
        }
        let mut bits: u128 = 0;
        for (i, c) in s.bytes().enumerate() {
            let v = match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'-' => 62,
                b'_' => 63,
                _ => return None,
            };
            if i == 21 {
                // The last character carries the final 2 bits; the rest must be zero.
                if v & 0xf != 0 {
                    return None;
                }
                bits = (bits << 2) | u128::from(v >> 4);
            } else {
                bits = (bits << 6) | u128::from(v);
            }
        }
        Some(Self::from_u128(bits))
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::with_capacity(22);
        for chunk in self.0.chunks(3) {
            let mut n = 0u32;
            for (i, b) in chunk.iter().enumerate() {
                n |= u32::from(*b) << (16 - 8 * i);
            }
            for i in 0..=chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            }
        }
        f.write_str(&out)
    }
}

impl fmt::Debug for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uuid({self})")
    }
}
