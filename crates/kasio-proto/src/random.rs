//! Seeded random message values for property tests and structure-aware fuzzing.
//!
//! Every generated struct implements [`Random`], producing only values that are valid at the
//! requested version, so `decode(encode(x)) == x` must hold for each of them.

use crate::{ByteStr, Uuid, tagged::RawTaggedField};
use bytes::Bytes;

/// A small deterministic generator (SplitMix64); the same seed gives the same values.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// A random boolean.
    pub fn bool(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }
    /// A random `i8`.
    pub fn i8(&mut self) -> i8 {
        self.next_u64() as i8
    }
    /// A random `i16`.
    pub fn i16(&mut self) -> i16 {
        self.next_u64() as i16
    }
    /// A random `u16`.
    pub fn u16(&mut self) -> u16 {
        self.next_u64() as u16
    }
    /// A random `i32`.
    pub fn i32(&mut self) -> i32 {
        self.next_u64() as i32
    }
    /// A random `u32`.
    pub fn u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    /// A random `i64`.
    pub fn i64(&mut self) -> i64 {
        self.next_u64() as i64
    }
    /// A random finite `f64`.
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 1e6
    }
    /// A random UUID.
    pub fn uuid(&mut self) -> Uuid {
        Uuid::from_u128((u128::from(self.next_u64()) << 64) | u128::from(self.next_u64()))
    }

    /// A short string, sometimes with multi-byte characters.
    pub fn byte_str(&mut self) -> ByteStr {
        const PIECES: &[&str] = &["a", "topic", "-", "_", "0", "é", "ü", "日本", "."];
        let n = self.below(5);
        let s: String = (0..n)
            .map(|_| PIECES[self.below(PIECES.len() as u64) as usize])
            .collect();
        ByteStr::from(s)
    }

    /// A few random bytes.
    pub fn bytes(&mut self) -> Bytes {
        let n = self.below(12);
        (0..n)
            .map(|_| self.next_u64() as u8)
            .collect::<Vec<u8>>()
            .into()
    }

    /// Up to three elements.
    pub fn vec<T>(&mut self, mut f: impl FnMut(&mut Rng) -> T) -> Vec<T> {
        let n = self.below(4);
        (0..n).map(|_| f(self)).collect()
    }

    /// `None` one time in four.
    pub fn option<T>(&mut self, f: impl FnOnce(&mut Rng) -> T) -> Option<T> {
        (self.below(4) != 0).then(|| f(self))
    }

    /// Occasionally a tagged field no spec defines, to check that it is preserved.
    pub fn unknown_tagged(&mut self) -> Vec<RawTaggedField> {
        if self.below(4) != 0 {
            return Vec::new();
        }
        let tag = 1000 + self.below(1000) as u32;
        vec![RawTaggedField {
            tag,
            data: self.bytes(),
        }]
    }
}

/// A value that can be generated at random, valid at a given version.
pub trait Random {
    /// A random value valid at `version`.
    fn random(rng: &mut Rng, version: i16) -> Self;
}

/// Checks at every version of `T` that a random value survives encode then decode, that
/// decoding consumes every byte, and that re-encoding gives the same bytes.
#[cfg(test)]
pub(crate) fn round_trip<T: crate::Message + Random>(seed: u64) -> Result<usize, String> {
    let mut n = 0;
    for version in T::VERSIONS.iter() {
        let mut rng = Rng::new(seed ^ (u64::from(version as u16) << 48));
        let value = T::random(&mut rng, version);
        let mut buf = bytes::BytesMut::new();
        value
            .encode(version, &mut buf)
            .map_err(|e| format!("{} v{version}: encode: {e}: {value:?}", T::NAME))?;
        let encoded = buf.freeze();
        let mut input = encoded.clone();
        let back = T::decode(version, &mut input)
            .map_err(|e| format!("{} v{version}: decode: {e}: {value:?}", T::NAME))?;
        if !input.is_empty() {
            return Err(format!(
                "{} v{version}: {} bytes left after decode",
                T::NAME,
                input.len()
            ));
        }
        if back != value {
            return Err(format!(
                "{} v{version}: decoded {back:?}, expected {value:?}",
                T::NAME
            ));
        }
        let mut again = bytes::BytesMut::new();
        back.encode(version, &mut again)
            .map_err(|e| e.to_string())?;
        if again != encoded {
            return Err(format!("{} v{version}: re-encoding differs", T::NAME));
        }
        n += 1;
    }
    Ok(n)
}
