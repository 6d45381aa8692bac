//! Windows by event time: Kafka's `TimeWindows` (tumbling and hopping, with a grace
//! period), the windowed key, and Kafka's windowed key formats.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};

use super::serde::{Serde, SharedSerde, serde_error, serialize_through_buffer};
use crate::error::Result;

/// A window's bounds in ms since the epoch: from `start` (included) to `end` (excluded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Window {
    /// The first instant in the window.
    pub start: i64,
    /// The first instant after it.
    pub end: i64,
}

/// A key with the window its value belongs to (Kafka's `Windowed<K>`): the key of a windowed
/// aggregation's table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Windowed<K> {
    /// The record's key.
    pub key: K,
    /// Its window.
    pub window: Window,
}

/// Kafka's `TimeWindows`: windows of a fixed size by event time, a new one every `advance`
/// (tumbling windows when it equals the size, hopping windows when it is shorter). A record
/// counts in every window that holds its timestamp; a window closes `grace` after its end,
/// by stream time (the largest timestamp seen), and a record for a closed window is dropped
/// and counted (`Streams::dropped_records`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindows {
    /// In ms, as the three below.
    size: i64,
    advance: i64,
    grace: i64,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl TimeWindows {
    /// Tumbling windows of `size` that close at their end: a record later than that is
    /// dropped (Kafka's `ofSizeWithNoGrace`).
    pub fn of_size_with_no_grace(size: Duration) -> TimeWindows {
        TimeWindows::of_size_and_grace(size, Duration::ZERO)
    }

    /// Tumbling windows of `size` that take records up to `grace` after their end (Kafka's
    /// `ofSizeAndGrace`).
    pub fn of_size_and_grace(size: Duration, grace: Duration) -> TimeWindows {
        let size = ms(size);
        TimeWindows {
            size,
            advance: size,
            grace: ms(grace),
        }
    }

    /// Hopping windows: a new window every `advance` (at most the size; Kafka's
    /// `advanceBy`).
    #[must_use]
    pub fn advance_by(mut self, advance: Duration) -> TimeWindows {
        self.advance = ms(advance);
        self
    }

    /// The windows' size.
    pub fn size(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.size).unwrap_or(0))
    }

    /// How long after its end a window still takes records.
    pub fn grace(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.grace).unwrap_or(0))
    }

    pub(crate) fn size_ms(&self) -> i64 {
        self.size
    }

    pub(crate) fn grace_ms(&self) -> i64 {
        self.grace
    }

    /// Why these windows cannot be used, if they cannot (Kafka's `IllegalArgumentException`
    /// cases).
    pub(crate) fn invalid(&self) -> Option<String> {
        if self.size <= 0 {
            return Some("a window's size must be at least 1 ms".into());
        }
        if self.advance <= 0 || self.advance > self.size {
            return Some(format!(
                "a window's advance must be from 1 ms to its size ({} ms), not {} ms",
                self.size, self.advance
            ));
        }
        None
    }

    /// The windows holding `timestamp`, oldest first (as Kafka's `TimeWindows.windowsFor`);
    /// none for a negative timestamp.
    pub(crate) fn windows_for(&self, timestamp: i64) -> impl Iterator<Item = Window> + use<> {
        let (size, advance) = (self.size, self.advance.max(1));
        let first =
            (timestamp.saturating_sub(size).saturating_add(advance)).max(0) / advance * advance;
        // The last window starts at the latest multiple of the advance at or before it.
        let last = if timestamp < 0 {
            -1
        } else {
            timestamp - timestamp % advance
        };
        (0..)
            .map_while(move |i: i64| i.checked_mul(advance).and_then(|d| first.checked_add(d)))
            .take_while(move |start| *start <= last)
            .map(move |start| Window {
                start,
                end: start.saturating_add(size),
            })
    }
}

/// Kafka's `TimeWindowedSerializer`/`TimeWindowedDeserializer`: the inner key's bytes, then
/// the window's start as 8 bytes big-endian; the end is the start plus the window size
/// (which the bytes do not hold). [`super::Serdes::time_windowed`] makes one.
pub struct TimeWindowedSerde<K> {
    inner: SharedSerde<K>,
    size_ms: i64,
}

impl<K> TimeWindowedSerde<K> {
    /// Windowed keys of `inner` keys in windows of `size`.
    pub fn new(inner: SharedSerde<K>, size: Duration) -> TimeWindowedSerde<K> {
        TimeWindowedSerde {
            inner,
            size_ms: ms(size),
        }
    }
}

/// Splits windowed key bytes into the inner key's bytes and the big-endian number in the
/// `tail` bytes after them.
fn split_tail<'a>(data: &'a [u8], tail: usize, what: &str) -> Result<(&'a [u8], i64)> {
    let Some(at) = data.len().checked_sub(tail) else {
        return Err(serde_error(format!(
            "a {what} holds at least {tail} bytes, not {}",
            data.len()
        )));
    };
    let (key, rest) = data.split_at(at);
    let mut n = [0u8; 8];
    if let Some(b) = rest.get(..8) {
        n.copy_from_slice(b);
    }
    Ok((key, i64::from_be_bytes(n)))
}

impl<K: 'static> Serde<Windowed<K>> for TimeWindowedSerde<K> {
    fn serialize(&self, topic: &str, value: &Windowed<K>) -> Result<Option<Bytes>> {
        serialize_through_buffer(self, topic, value)
    }

    fn serialize_into(&self, topic: &str, value: &Windowed<K>, buf: &mut BytesMut) -> Result<bool> {
        if !self.inner.serialize_into(topic, &value.key, buf)? {
            return Ok(false);
        }
        buf.put_i64(value.window.start);
        Ok(true)
    }

    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<Windowed<K>> {
        let Some(data) = data else {
            return Err(serde_error("a windowed key cannot be null"));
        };
        let (key, start) = split_tail(data, 8, "time-windowed key")?;
        Ok(Windowed {
            key: self.inner.deserialize(topic, Some(key))?,
            window: Window {
                start,
                end: start.saturating_add(self.size_ms),
            },
        })
    }
}

/// The key of a window store's entries and changelog records, as Kafka's `WindowKeySchema`
/// writes them: the inner key's bytes, the window's start (8 bytes big-endian) and a
/// sequence number (4 bytes, 0: a store that keeps one value per key and window).
pub(crate) struct WindowStoreKeySerde<K> {
    pub inner: SharedSerde<K>,
    pub size_ms: i64,
}

/// Where a window store key's start sits, from its end.
pub(crate) const STORE_KEY_TAIL: usize = 12;

/// The window start in a window store key's bytes.
pub(crate) fn store_key_start(bytes: &[u8]) -> Option<i64> {
    split_tail(bytes, STORE_KEY_TAIL, "window store key")
        .ok()
        .map(|(_, start)| start)
}

impl<K: 'static> Serde<Windowed<K>> for WindowStoreKeySerde<K> {
    fn serialize(&self, topic: &str, value: &Windowed<K>) -> Result<Option<Bytes>> {
        serialize_through_buffer(self, topic, value)
    }

    fn serialize_into(&self, topic: &str, value: &Windowed<K>, buf: &mut BytesMut) -> Result<bool> {
        if !self.inner.serialize_into(topic, &value.key, buf)? {
            return Ok(false);
        }
        buf.put_i64(value.window.start);
        buf.put_i32(0);
        Ok(true)
    }

    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<Windowed<K>> {
        let Some(data) = data else {
            return Err(serde_error("a window store key cannot be null"));
        };
        let (key, start) = split_tail(data, STORE_KEY_TAIL, "window store key")?;
        Ok(Windowed {
            key: self.inner.deserialize(topic, Some(key))?,
            window: Window {
                start,
                end: start.saturating_add(self.size_ms),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use super::*;
    use crate::streams::Serdes;

    fn starts(w: &TimeWindows, ts: i64) -> Vec<i64> {
        w.windows_for(ts).map(|w| w.start).collect()
    }

    #[test]
    fn tumbling_and_hopping_windows_hold_a_timestamp_as_kafkas() {
        let tumbling = TimeWindows::of_size_with_no_grace(Duration::from_millis(100));
        assert_eq!(starts(&tumbling, 0), [0]);
        assert_eq!(starts(&tumbling, 99), [0]);
        assert_eq!(starts(&tumbling, 100), [100]);
        let hopping = TimeWindows::of_size_and_grace(Duration::from_millis(100), Duration::ZERO)
            .advance_by(Duration::from_millis(25));
        assert_eq!(starts(&hopping, 10), [0]);
        assert_eq!(starts(&hopping, 130), [50, 75, 100, 125]);
        assert_eq!(starts(&hopping, 100), [25, 50, 75, 100]);
        assert!(hopping.invalid().is_none());
        // The largest time ends the windows (no endless run past it).
        assert_eq!(starts(&tumbling, i64::MAX), [i64::MAX - i64::MAX % 100]);
        assert!(starts(&tumbling, -5).is_empty());
        assert!(
            tumbling
                .advance_by(Duration::from_millis(200))
                .invalid()
                .is_some()
        );
        assert!(
            TimeWindows::of_size_with_no_grace(Duration::ZERO)
                .invalid()
                .is_some()
        );
    }

    #[test]
    fn windowed_keys_are_the_inner_key_then_the_start() {
        let serde = TimeWindowedSerde::new(Serdes::string(), Duration::from_mins(1));
        let w = Windowed {
            key: "page".to_string(),
            window: Window {
                start: 120_000,
                end: 180_000,
            },
        };
        let bytes = serde.serialize("t", &w).unwrap().unwrap();
        let mut expected = b"page".to_vec();
        expected.extend_from_slice(&120_000_i64.to_be_bytes());
        assert_eq!(&bytes[..], &expected[..]);
        assert_eq!(serde.deserialize("t", Some(&bytes)).unwrap(), w);
        assert!(serde.deserialize("t", Some(b"short")).is_err());
        let store = WindowStoreKeySerde {
            inner: Arc::clone(&Serdes::string()),
            size_ms: 60_000,
        };
        let bytes = store.serialize("t", &w).unwrap().unwrap();
        expected.extend_from_slice(&0_i32.to_be_bytes());
        assert_eq!(&bytes[..], &expected[..]);
        assert_eq!(store_key_start(&bytes), Some(120_000));
        assert_eq!(store.deserialize("t", Some(&bytes)).unwrap(), w);
    }
}
