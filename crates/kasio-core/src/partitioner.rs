//! Choosing a partition for a record: the Java client's murmur2 for keys, sticky for
//! records without one, round robin, or the user's own.

/// Kafka's murmur2 hash, bit for bit as the Java client computes it.
///
/// ```
/// assert_eq!(kasio_core::partitioner::murmur2(b"21"), -973932308);
/// ```
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    #[allow(clippy::cast_possible_truncation)] // Java truncates the length the same way
    let mut h = SEED ^ (len as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition the Java client's default partitioner picks for `key`.
///
/// ```
/// assert_eq!(kasio_core::partitioner::key_partition(b"order-7", 12), kasio_core::partitioner::key_partition(b"order-7", 12));
/// ```
pub fn key_partition(key: &[u8], partitions: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) % partitions.max(1)
}

/// A user-supplied partitioner.
///
/// ```
/// use kasio_core::partitioner::Partition;
/// struct First;
/// impl Partition for First {
///     fn partition(&mut self, _topic: &str, _key: Option<&[u8]>, _value: Option<&[u8]>, _partitions: i32) -> Option<i32> {
///         Some(0)
///     }
/// }
/// assert_eq!(First.partition("t", None, None, 3), Some(0));
/// ```
pub trait Partition: Send {
    /// The partition for a record of `topic`, which has `partitions` partitions; `None`
    /// falls back to the built-in choice for the key.
    fn partition(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        partitions: i32,
    ) -> Option<i32>;
}

/// How records without an explicit partition are placed.
#[derive(Default)]
#[non_exhaustive]
pub enum Partitioner {
    /// The Java client's default: murmur2 of the key; records without a key stick to one
    /// partition until `batch.size` bytes have gone to it, then move on (KIP-794).
    #[default]
    Default,
    /// The default for keyed records, but records without a key stick regardless of the
    /// key (`partitioner.ignore.keys=true`).
    IgnoreKeys,
    /// Every record to the next partition in turn.
    RoundRobin,
    /// The user's choice.
    Custom(Box<dyn Partition>),
}

impl std::fmt::Debug for Partitioner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Default => "Default",
            Self::IgnoreKeys => "IgnoreKeys",
            Self::RoundRobin => "RoundRobin",
            Self::Custom(_) => "Custom",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_the_java_client() {
        // Values from the Java client's own tests of Utils.murmur2.
        let cases: [(&str, i32); 6] = [
            ("21", -973_932_308),
            ("foobar", -790_332_482),
            ("a-little-bit-long-string", -985_981_536),
            ("a-little-bit-longer-string", -1_486_304_829),
            (
                "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            ("abc", 479_470_107),
        ];
        for (input, expected) in cases {
            assert_eq!(murmur2(input.as_bytes()), expected, "{input}");
        }
    }

    #[test]
    fn key_partition_is_non_negative() {
        for i in 0..1000u32 {
            let p = key_partition(&i.to_be_bytes(), 7);
            assert!((0..7).contains(&p));
        }
    }
}
