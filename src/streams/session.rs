//! Session windows (Kafka's `SessionWindows`): a key's records no more than an inactivity
//! gap apart form one session; a record that bridges two sessions merges them. Sessions
//! are kept per key in a session store whose changelog keys are Kafka's session keys (the
//! key's bytes, the session's end and start, 8 bytes big-endian each).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use foldhash::fast::RandomState;

use super::node::{Cx, Node, NodeId, Output, StoreId};
use super::ops::Step;
use super::serde::{Serde, SharedSerde, serde_error, serialize_through_buffer};
use super::store::{ErasedStore, KeyBytes};
use super::window::{Window, Windowed};
use crate::error::Result;

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Kafka's `SessionWindows`: sessions of a key's records at most `gap` apart; a record may
/// arrive up to `grace` after its session's end (by stream time), later ones are dropped
/// and counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionWindows {
    /// In ms, as below.
    gap: i64,
    grace: i64,
}

impl SessionWindows {
    /// Sessions with an inactivity gap of `gap`, closed at their end (Kafka's
    /// `ofInactivityGapWithNoGrace`).
    pub fn of_inactivity_gap_with_no_grace(gap: Duration) -> SessionWindows {
        SessionWindows::of_inactivity_gap_and_grace(gap, Duration::ZERO)
    }

    /// Sessions with an inactivity gap of `gap` and `grace` for late records (Kafka's
    /// `ofInactivityGapAndGrace`).
    pub fn of_inactivity_gap_and_grace(gap: Duration, grace: Duration) -> SessionWindows {
        SessionWindows {
            gap: ms(gap),
            grace: ms(grace),
        }
    }

    pub(crate) fn invalid(&self) -> Option<String> {
        (self.gap <= 0).then(|| "a session window's inactivity gap must be at least 1 ms".into())
    }

    /// How long after a session's end it may still change: a record on time (no more than
    /// the gap and the grace behind the stream time) may reach a gap back. What
    /// `suppress(until_window_closes)` waits for: twice the gap and the grace.
    pub(crate) fn close_after_ms(&self) -> i64 {
        self.gap.saturating_mul(2).saturating_add(self.grace)
    }

    /// How long the store keeps a session after its end: twice the gap and the grace (a
    /// record still on time may reach back a gap before a session that is still open,
    /// and bridge it to one that ended a gap earlier). Older sessions are forgotten: a
    /// record that would bridge to one starts a session of its own.
    pub(crate) fn retention_ms(&self) -> i64 {
        self.gap.saturating_mul(2).saturating_add(self.grace)
    }
}

/// Kafka's `SessionWindowedSerializer`/`SessionWindowedDeserializer`: the inner key's
/// bytes, then the session's end and its start, 8 bytes big-endian each.
/// [`super::Serdes::session_windowed`] makes one.
pub struct SessionWindowedSerde<K> {
    inner: SharedSerde<K>,
}

impl<K> SessionWindowedSerde<K> {
    /// Session-windowed keys of `inner` keys.
    pub fn new(inner: SharedSerde<K>) -> SessionWindowedSerde<K> {
        SessionWindowedSerde { inner }
    }
}

/// The session in the last 16 bytes of `data`: (key bytes, start, end).
fn split_session(data: &[u8]) -> Result<(&[u8], i64, i64)> {
    let Some(at) = data.len().checked_sub(16) else {
        return Err(serde_error(format!(
            "a session-windowed key holds at least 16 bytes, not {}",
            data.len()
        )));
    };
    let (key, tail) = data.split_at(at);
    let (mut end, mut start) = ([0u8; 8], [0u8; 8]);
    if let (Some(e), Some(s)) = (tail.get(..8), tail.get(8..16)) {
        end.copy_from_slice(e);
        start.copy_from_slice(s);
    }
    Ok((key, i64::from_be_bytes(start), i64::from_be_bytes(end)))
}

impl<K: 'static> Serde<Windowed<K>> for SessionWindowedSerde<K> {
    fn serialize(&self, topic: &str, value: &Windowed<K>) -> Result<Option<Bytes>> {
        serialize_through_buffer(self, topic, value)
    }

    fn serialize_into(&self, topic: &str, value: &Windowed<K>, buf: &mut BytesMut) -> Result<bool> {
        if !self.inner.serialize_into(topic, &value.key, buf)? {
            return Ok(false);
        }
        buf.put_i64(value.window.end);
        buf.put_i64(value.window.start);
        Ok(true)
    }

    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<Windowed<K>> {
        let Some(data) = data else {
            return Err(serde_error("a session-windowed key cannot be null"));
        };
        let (key, start, end) = split_session(data)?;
        Ok(Windowed {
            key: self.inner.deserialize(topic, Some(key))?,
            window: Window { start, end },
        })
    }
}

/// A session store: each key's sessions by (start, end), with their aggregates.
pub(crate) struct SessionStore<A> {
    map: HashMap<KeyBytes, BTreeMap<(i64, i64), A>, RandomState>,
    /// Sessions changed since the changelog was last written.
    dirty: Vec<(Vec<u8>, i64, i64)>,
    /// The latest session end restored (the stream time a restarted task resumes from).
    pub restored_time: i64,
    changelog: String,
    value_serde: SharedSerde<A>,
    scratch: BytesMut,
}

impl<A: Clone + Send + 'static> SessionStore<A> {
    pub fn new(changelog: String, value_serde: SharedSerde<A>) -> SessionStore<A> {
        SessionStore {
            map: HashMap::default(),
            dirty: Vec::new(),
            restored_time: i64::MIN,
            changelog,
            value_serde,
            scratch: BytesMut::new(),
        }
    }

    /// The sessions of `key` that end at or after `from` and start at or before `to`
    /// (sessions do not overlap: those ending at or after `from` are the last ones before
    /// `to`).
    fn overlapping(&self, key: &[u8], from: i64, to: i64) -> Vec<((i64, i64), A)> {
        self.map.get(key).map_or_else(Vec::new, |s| {
            let mut found: Vec<((i64, i64), A)> = s
                .range(..=(to, i64::MAX))
                .rev()
                .take_while(|((_, end), _)| *end >= from)
                .map(|(w, a)| (*w, a.clone()))
                .collect();
            found.reverse();
            found
        })
    }

    fn remove(&mut self, key: &[u8], window: (i64, i64)) {
        if let Some(s) = self.map.get_mut(key) {
            s.remove(&window);
            if s.is_empty() {
                self.map.remove(key);
            }
        }
        self.dirty.push((key.to_vec(), window.0, window.1));
    }

    fn put(&mut self, key: &[u8], window: (i64, i64), value: A) {
        self.map
            .entry(KeyBytes::new(key))
            .or_default()
            .insert(window, value);
        self.dirty.push((key.to_vec(), window.0, window.1));
    }

    /// Drops the sessions that ended before `before` (no tombstones: the changelog deletes
    /// them by retention).
    fn expire(&mut self, before: i64) {
        self.map.retain(|_, s| {
            s.retain(|(_, end), _| *end >= before);
            !s.is_empty()
        });
    }
}

impl<A: Clone + Send + 'static> ErasedStore for SessionStore<A> {
    fn as_any(&mut self) -> &mut dyn std::any::Any {
        self
    }

    fn flush_changelog(&mut self, partition: i32, out: &mut dyn Output) -> Result<()> {
        let mut written = std::collections::HashSet::new();
        for (key, start, end) in std::mem::take(&mut self.dirty).into_iter().rev() {
            if !written.insert((key.clone(), start, end)) {
                continue;
            }
            let value = self
                .map
                .get(key.as_slice())
                .and_then(|s| s.get(&(start, end)));
            self.scratch.clear();
            self.scratch.extend_from_slice(&key);
            self.scratch.put_i64(end);
            self.scratch.put_i64(start);
            let split = self.scratch.len();
            let has_value = match value {
                Some(v) => {
                    self.value_serde
                        .serialize_into(&self.changelog, v, &mut self.scratch)?
                }
                None => false,
            };
            let (k, v) = self.scratch.split_at(split);
            out.send(
                &self.changelog,
                Some(partition),
                Some(k),
                has_value.then_some(v),
                end,
            )?;
        }
        Ok(())
    }

    fn restore(&mut self, key: &[u8], value: Option<&[u8]>, _timestamp: i64) -> Result<()> {
        let (k, start, end) = split_session(key)?;
        self.restored_time = self.restored_time.max(end);
        match value {
            None => {
                if let Some(s) = self.map.get_mut(k) {
                    s.remove(&(start, end));
                    if s.is_empty() {
                        self.map.remove(k);
                    }
                }
            }
            Some(v) => {
                let value = self.value_serde.deserialize(&self.changelog, Some(v))?;
                self.map
                    .entry(KeyBytes::new(k))
                    .or_default()
                    .insert((start, end), value);
            }
        }
        Ok(())
    }

    fn changelog(&self) -> &str {
        &self.changelog
    }
}

/// Combines two sessions' aggregates when a record bridges them (Kafka's `Merger`).
pub(crate) type Merger<K, A> = Arc<dyn Fn(&K, A, A) -> A + Send + Sync>;

/// A session-windowed aggregation, as Kafka's `KStreamSessionWindowAggregate`: a record's
/// session is the sessions of its key within the gap of its time, merged (`merge`, from
/// the initializer when there is one, as Kafka's), and the record aggregated in (`step`).
/// A merged-away session is deleted (a tombstone goes downstream, at its end); the merged
/// one goes out at its end. Every change goes downstream at once (no cache).
///
/// Unlike Kafka, lateness is judged by the record's own time: a record more than the gap
/// and the grace behind the stream time is dropped and counted (Kafka judges the merged
/// session's end, which lets a record reach sessions already emitted as final). So a
/// session is final once the stream time is twice the gap and the grace past its end.
pub(crate) struct SessionAggregate<K, V, A> {
    pub store: StoreId,
    pub windows: SessionWindows,
    pub step: Step<K, V, A>,
    /// What the merge of found sessions starts from (Kafka's initializer: `aggregate`);
    /// `None` starts from the first session (`count`, `reduce`).
    pub init: Option<Arc<dyn Fn() -> A + Send + Sync>>,
    pub merge: Merger<K, A>,
    pub key_serde: SharedSerde<K>,
    pub children: Vec<NodeId>,
    pub stream_time: i64,
    pub expired_before: i64,
    pub scratch: BytesMut,
}

impl<K, V, A> Node<K, V> for SessionAggregate<K, V, A>
where
    K: Clone + Send + 'static,
    V: 'static,
    A: Clone + Send + 'static,
{
    fn process(&mut self, cx: &mut Cx<'_>, key: K, value: V) -> Result<()> {
        let ts = cx.timestamp;
        self.scratch.clear();
        if ts < 0 || !self.key_serde.serialize_into("", &key, &mut self.scratch)? {
            // No event time, or a null key: Kafka drops both.
            *cx.dropped += 1;
            return Ok(());
        }
        let kb = self.scratch.to_vec();
        let gap = self.windows.gap;
        let store = cx.store::<SessionStore<A>>(self.store)?;
        self.stream_time = self.stream_time.max(store.restored_time).max(ts);
        // Late: more than the gap and the grace behind the stream time (a record that
        // could only reach sessions that may have gone out as final).
        let close = self
            .stream_time
            .saturating_sub(self.windows.gap)
            .saturating_sub(self.windows.grace);
        let horizon = self.stream_time.saturating_sub(self.windows.retention_ms());
        let found = store.overlapping(
            &kb,
            ts.saturating_sub(gap).max(horizon),
            ts.saturating_add(gap),
        );
        if ts < close {
            *cx.dropped += 1;
            return Ok(());
        }
        let start = found.iter().map(|((s, _), _)| *s).fold(ts, i64::min);
        let end = found.iter().map(|((_, e), _)| *e).fold(ts, i64::max);
        let mut merged: Option<A> = if found.is_empty() {
            None
        } else {
            self.init.as_ref().map(|f| f())
        };
        for (_, a) in &found {
            merged = Some(match merged {
                Some(m) => (self.merge)(&key, m, a.clone()),
                None => a.clone(),
            });
        }
        let new = (self.step)(&key, value, merged);
        for (w, _) in &found {
            if *w != (start, end) {
                store.remove(&kb, *w);
            }
        }
        store.put(&kb, (start, end), new.clone());
        // Each change goes out at its session's end (as Kafka stamps them).
        let at = cx.timestamp;
        for (w, _) in found {
            if w != (start, end) {
                let gone = Windowed {
                    key: key.clone(),
                    window: Window {
                        start: w.0,
                        end: w.1,
                    },
                };
                cx.timestamp = w.1;
                let r = cx.forward::<Windowed<K>, Option<A>>(&self.children, gone, None);
                cx.timestamp = at;
                r?;
            }
        }
        let session = Windowed {
            key,
            window: Window { start, end },
        };
        cx.timestamp = end;
        let r = cx.forward(&self.children, session, Some(new));
        cx.timestamp = at;
        r?;
        self.expire(cx)
    }
}

impl<K, V, A> SessionAggregate<K, V, A>
where
    A: Clone + Send + 'static,
{
    /// Drops the sessions no record can reach any more, once the stream time has moved a
    /// tenth of the retention (or a second) since the last time.
    fn expire(&mut self, cx: &mut Cx<'_>) -> Result<()> {
        let cutoff = self.stream_time.saturating_sub(self.windows.retention_ms());
        let step = (self.windows.retention_ms() / 10).max(1000);
        if cutoff < self.expired_before.saturating_add(step) {
            return Ok(());
        }
        self.expired_before = cutoff;
        cx.store::<SessionStore<A>>(self.store)?.expire(cutoff);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::streams::Serdes;

    #[test]
    fn session_keys_are_the_key_then_end_then_start() {
        let serde = SessionWindowedSerde::new(Serdes::string());
        let w = Windowed {
            key: "u".to_string(),
            window: Window { start: 5, end: 900 },
        };
        let bytes = serde.serialize("t", &w).unwrap().unwrap();
        let mut expected = b"u".to_vec();
        expected.extend_from_slice(&900_i64.to_be_bytes());
        expected.extend_from_slice(&5_i64.to_be_bytes());
        assert_eq!(&bytes[..], &expected[..]);
        assert_eq!(serde.deserialize("t", Some(&bytes)).unwrap(), w);
        assert!(serde.deserialize("t", Some(b"short")).is_err());
    }
}
