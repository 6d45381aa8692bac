//! Retention with Kafka's semantics: whole segments, oldest first, each rule stopping at the
//! first segment that does not qualify; only segments wholly below the high watermark.

use std::sync::Arc;

use crate::error::Result;
use crate::partition::Partition;

/// Which rules a retention pass applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rules {
    /// Time, size and log start offset (a maintenance pass).
    All,
    /// Only segments wholly below the log start offset (after delete-records).
    LogStartOnly,
}

/// Applies `retention_ms`, `retention_bytes` (for topics whose cleanup policy deletes) and
/// the log-start-offset rule (for every topic) to one partition. Returns (segments, bytes)
/// deleted.
pub(crate) fn apply(p: &Arc<Partition>, now_ms: i64, rules: Rules) -> Result<(usize, u64)> {
    let cfg = p.config();
    let segs = p.segments();
    let n = segs.len();
    if n == 0 {
        return Ok((0, 0));
    }
    let hw = p.high_watermark();
    let start = p.log_start();
    let end = p.log_end();
    let upper = |i: usize| segs.get(i + 1).map_or(end, |s| s.base_offset);
    let below_hw = |i: usize| upper(i) <= hw;
    // A segment whose successor starts at or below the log start offset holds nothing
    // readable (delete-records), whatever the policy.
    let mut count = 0;
    while count + 1 < n && segs.get(count + 1).is_some_and(|s| s.base_offset <= start) {
        count += 1;
    }
    if rules == Rules::All && cfg.cleanup_policy.deletes() {
        if let Some(limit) = cfg.retention_ms {
            let mut c = 0;
            while let Some(s) = segs.get(c)
                && below_hw(c)
                && !s.is_empty()
                && now_ms.saturating_sub(s.largest_timestamp()?) > limit as i64
            {
                c += 1;
            }
            count = count.max(c);
        }
        if let Some(limit) = cfg.retention_bytes {
            let total: u64 = segs.iter().skip(count).map(|s| s.size()).sum();
            let mut excess = total.saturating_sub(limit);
            let mut c = count;
            while c < n && below_hw(c) {
                let size = segs.get(c).map_or(0, |s| s.size());
                if size == 0 || size > excess {
                    break;
                }
                excess -= size;
                c += 1;
            }
            count = count.max(c);
        }
    }
    if count == 0 {
        return Ok((0, 0));
    }
    if count >= n {
        // Everything qualifies, the active segment too: roll an empty one first so a segment
        // always remains (Kafka's rule).
        p.roll_if_not_empty()?;
    }
    p.delete_oldest(count)
}
