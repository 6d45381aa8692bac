//! The wall clock every layer reads, in Kafka's unit (milliseconds since the Unix epoch). A
//! leaf, so the writer, the cleaner, the groups and the producer share one clock without
//! importing each other.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch; 0 if the clock reads before it.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
