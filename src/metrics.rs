//! A lock-free histogram for metrics recorded on hot paths: an atomic counter per bucket,
//! quantiles read by walking the buckets.
//!
//! Buckets are log-linear: values below 8 have one bucket each, and every power of two above
//! is cut into 8 equal sub-buckets, so a reported quantile is at most 12.5% above the true
//! value (it is the bucket's upper bound, capped at the largest value seen). 496 buckets cover
//! all of `u64` (nanoseconds: up to 584 years) in 4 KiB, so nothing is ever out of range.
//!
//! Recording is one relaxed `fetch_add` on the value's bucket, plus a relaxed load (and a
//! `fetch_max` when the value is a new largest) for the maximum: no lock, no allocation.
//! Readers see each counter's latest value, not one instant across all of them; a quantile
//! read while values are recorded may miss the newest few.

use std::sync::atomic::{AtomicU64, Ordering};

/// Sub-buckets per power of two, as a power of two.
const SUB_BITS: u32 = 3;
const SUB: u64 = 1 << SUB_BITS;
/// Bucket count: the `SUB` exact values below `SUB`, then `SUB` per power of two from
/// `2^SUB_BITS` to `2^63`.
const BUCKETS: usize = (SUB as usize) * (64 - SUB_BITS as usize + 1);

/// The bucket of `v`.
fn index(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let exp = v.ilog2(); // >= SUB_BITS, as v >= SUB
    let sub = (v >> (exp - SUB_BITS)) & (SUB - 1);
    ((exp - SUB_BITS + 1) as usize) * SUB as usize + sub as usize
}

/// The largest value bucket `i` holds.
fn upper(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB {
        return i;
    }
    let exp = i / SUB + u64::from(SUB_BITS) - 1;
    let sub = i % SUB;
    let low = (SUB + sub) << (exp - u64::from(SUB_BITS));
    let width = 1u64 << (exp - u64::from(SUB_BITS));
    low.saturating_add(width - 1)
}

/// Counts of values in log-linear buckets, recorded from any number of threads at once.
pub(crate) struct Histogram {
    buckets: Box<[AtomicU64]>,
    max: AtomicU64,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.snapshot();
        f.debug_struct("Histogram")
            .field("count", &s.count())
            .field("max", &s.max)
            .finish_non_exhaustive()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            max: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    /// Counts one value.
    #[inline]
    pub(crate) fn record(&self, v: u64) {
        if let Some(b) = self.buckets.get(index(v)) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        // A load first: the maximum rarely changes, and a load does not take the cache line
        // for writing.
        if v > self.max.load(Ordering::Relaxed) {
            self.max.fetch_max(v, Ordering::Relaxed);
        }
    }

    /// The counts now.
    pub(crate) fn snapshot(&self) -> Snapshot {
        Snapshot {
            counts: self
                .buckets
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect(),
            max: self.max.load(Ordering::Relaxed),
        }
    }
}

/// A histogram's counts read at one time.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    counts: Vec<u64>,
    /// The largest value recorded (0 if none).
    pub(crate) max: u64,
}

impl Snapshot {
    /// How many values were recorded.
    pub(crate) fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The value at quantile `q` (0.5 for the median, 0.99 for p99; clamped to 0..=1): the
    /// upper bound of the bucket holding it, at most the largest value recorded. 0 when
    /// nothing was recorded.
    pub(crate) fn quantile(&self, q: f64) -> u64 {
        let total = self.count();
        if total == 0 {
            return 0;
        }
        // The rank of the value asked for, 1-based: ceil(q * total), at least 1.
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return upper(i).min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::cast_precision_loss)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_cover_u64() {
        assert_eq!(index(0), 0);
        assert_eq!(index(u64::MAX), BUCKETS - 1);
        assert_eq!(upper(BUCKETS - 1), u64::MAX);
        for i in 1..BUCKETS {
            // Bucket i starts right after bucket i - 1 ends.
            let start = upper(i - 1) + 1;
            assert_eq!(index(start), i, "start of bucket {i}");
            assert_eq!(index(upper(i)), i, "end of bucket {i}");
        }
    }

    #[test]
    fn a_bucket_is_at_most_an_eighth_of_its_values_wide() {
        for v in [
            8u64,
            9,
            100,
            1_000,
            12_345,
            1 << 20,
            987_654_321,
            u64::MAX / 3,
        ] {
            let hi = upper(index(v));
            assert!(hi >= v);
            assert!((hi - v) as f64 <= v as f64 / 8.0, "{v} reported as {hi}");
        }
    }

    #[test]
    fn quantiles_walk_the_buckets() {
        let h = Histogram::default();
        assert_eq!(h.snapshot().quantile(0.5), 0, "empty");
        for v in 1..=1000u64 {
            h.record(v * 1000); // 1 µs .. 1 ms
        }
        let s = h.snapshot();
        assert_eq!(s.count(), 1000);
        assert_eq!(s.max, 1_000_000);
        let p50 = s.quantile(0.5);
        let p99 = s.quantile(0.99);
        assert!((500_000..=562_500).contains(&p50), "p50 {p50}");
        assert!((990_000..=1_000_000).contains(&p99), "p99 {p99}");
        assert_eq!(s.quantile(1.0), 1_000_000, "capped at the largest value");
        assert_eq!(
            s.quantile(0.0),
            upper(index(1000)),
            "the smallest value's bucket"
        );
    }

    #[test]
    fn records_from_many_threads_all_count() {
        let h = std::sync::Arc::new(Histogram::default());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let h = std::sync::Arc::clone(&h);
                std::thread::spawn(move || {
                    for v in 0..10_000u64 {
                        h.record(v * (t + 1));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let s = h.snapshot();
        assert_eq!(s.count(), 40_000);
        assert_eq!(s.max, 9_999 * 4);
    }
}
