//! Topics: name rules, the default partitioner (Kafka's murmur2), sticky placement of keyless
//! records, and the per-topic state a `Log` keeps.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

use parking_lot::RwLock;

use crate::config::TopicConfig;
use crate::error::{Error, Result};
use crate::partition::Partition;

/// The most partitions a topic may have: a guard against a request (from an adapter's
/// client, say) that would create millions of directories. Each partition is a directory
/// with open files while active; see `LogOptions::max_open_files`.
pub const MAX_PARTITIONS: i32 = 100_000;

/// Kafka's murmur2 hash (`org.apache.kafka.common.utils.Utils.murmur2`): seed 0x9747b28c,
/// 4-byte little-endian chunks.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h: u32 = SEED ^ (len as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes(c.try_into().unwrap_or([0; 4]));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if let Some(&b) = tail.get(2) {
        h ^= u32::from(b) << 16;
    }
    if let Some(&b) = tail.get(1) {
        h ^= u32::from(b) << 8;
    }
    if let Some(&b) = tail.first() {
        h ^= u32::from(b);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition Kafka's Java client picks for `key`: `(murmur2(key) & 0x7fffffff) % n`.
///
/// # Panics
/// If `partitions` is not positive.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    assert!(partitions > 0, "a topic has at least one partition");
    (murmur2(key) & 0x7fff_ffff) % partitions
}

/// Keyless records stick to one partition until about `batch_size` bytes went there, then
/// move on (Kafka's sticky partitioner, KIP-480/794 without broker load weighting).
#[derive(Debug)]
pub(crate) struct Sticky {
    current: AtomicI32,
    bytes: AtomicU64,
    rng: AtomicU64,
}

const STICKY_SWITCH_BYTES: u64 = 16 * 1024;

impl Sticky {
    pub(crate) fn new() -> Sticky {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x2545_f491, |d| d.as_nanos() as u64)
            | 1;
        Sticky {
            current: AtomicI32::new(-1),
            bytes: AtomicU64::new(0),
            rng: AtomicU64::new(seed),
        }
    }

    fn random(&self) -> u64 {
        // xorshift64*: placement only needs to spread, not to be unpredictable.
        let mut x = self.rng.load(Ordering::Relaxed);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.store(x, Ordering::Relaxed);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// The partition for a keyless record of `size` bytes.
    pub(crate) fn partition(&self, partitions: i32, size: usize) -> i32 {
        let n = partitions.max(1);
        let mut cur = self.current.load(Ordering::Relaxed);
        let sent = self.bytes.fetch_add(size as u64, Ordering::Relaxed) + size as u64;
        if cur < 0 || cur >= n || sent > STICKY_SWITCH_BYTES {
            let mut next = (self.random() % n as u64) as i32;
            if n > 1 && next == cur {
                next = (next + 1) % n;
            }
            self.current.store(next, Ordering::Relaxed);
            self.bytes.store(size as u64, Ordering::Relaxed);
            cur = next;
        }
        cur
    }
}

/// A topic held by a `Log`.
#[derive(Debug)]
pub(crate) struct Topic {
    pub(crate) name: Arc<str>,
    pub(crate) config: RwLock<Arc<TopicConfig>>,
    pub(crate) partitions: RwLock<Vec<Arc<Partition>>>,
    pub(crate) sticky: Sticky,
    /// Its metadata was rebuilt from partition directories (`recovered=true`).
    pub(crate) recovered: bool,
}

impl Topic {
    pub(crate) fn new(
        name: Arc<str>,
        config: Arc<TopicConfig>,
        partitions: Vec<Arc<Partition>>,
    ) -> Self {
        Topic {
            name,
            config: RwLock::new(config),
            partitions: RwLock::new(partitions),
            sticky: Sticky::new(),
            recovered: false,
        }
    }

    pub(crate) fn partition(&self, id: i32) -> Result<Arc<Partition>> {
        usize::try_from(id)
            .ok()
            .and_then(|i| self.partitions.read().get(i).cloned())
            .ok_or_else(|| Error::PartitionNotFound {
                topic: self.name.to_string(),
                partition: id,
            })
    }

    pub(crate) fn partition_count(&self) -> i32 {
        self.partitions.read().len() as i32
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafka_test_vectors() {
        // From Kafka's UtilsTest.testMurmur2.
        let cases: &[(&[u8], i32)] = &[
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (input, expected) in cases {
            assert_eq!(
                murmur2(input),
                *expected,
                "murmur2({:?})",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn key_partition_is_positive_modulo() {
        for key in [&b"21"[..], b"foobar", b"x", b""] {
            let p = partition_for_key(key, 7);
            assert!((0..7).contains(&p));
            assert_eq!(p, (murmur2(key) & 0x7fff_ffff) % 7);
        }
    }

    #[test]
    fn sticky_spreads_and_sticks() {
        let s = Sticky::new();
        let first = s.partition(4, 100);
        assert_eq!(s.partition(4, 100), first, "small records stick");
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            seen.insert(s.partition(4, 10_000));
        }
        assert!(seen.len() > 1, "moves on after enough bytes");
    }
}
