//! `KTable::suppress`: hold a table's updates back and forward each key's latest once, when
//! its window closes (`until_window_closes`, Kafka's "emit final") or a time after its
//! first update (`until_time_limit`). The buffer is a store with a changelog, so what it
//! holds survives a restart.

use std::collections::BTreeSet;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};

use super::node::{Cx, Node, NodeId, StoreId};
use super::serde::{Serde, SharedSerde, serde_error, serialize_through_buffer};
use super::store::KvStore;
use super::window::Windowed;
use crate::error::{Error, Result};

/// What a full suppression buffer does (Kafka's `BufferConfig` full policies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BufferFull {
    /// The stream thread fails with [`Error::Streams`] (Kafka's `shutDownWhenFull`): no
    /// result is emitted before its time.
    ShutDown,
    /// The oldest keys are forwarded early to make room (Kafka's `emitEarlyWhenFull`;
    /// refused for `until_window_closes`, which promises one final result).
    EmitEarly,
}

/// The bounds of a suppression buffer (Kafka's `BufferConfig`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferConfig {
    max_records: Option<usize>,
    max_bytes: Option<usize>,
    full: BufferFull,
}

impl BufferConfig {
    /// No bound: the buffer holds what it must (Kafka's `unbounded`).
    pub fn unbounded() -> BufferConfig {
        BufferConfig {
            max_records: None,
            max_bytes: None,
            full: BufferFull::ShutDown,
        }
    }

    /// At most `n` keys (Kafka's `maxRecords`); when full, the oldest are forwarded early
    /// unless [`BufferConfig::shut_down_when_full`] says otherwise (as Kafka's).
    pub fn max_records(n: usize) -> BufferConfig {
        BufferConfig {
            max_records: Some(n),
            max_bytes: None,
            full: BufferFull::EmitEarly,
        }
    }

    /// At most `n` bytes of keys and values (Kafka's `maxBytes`); when full, as
    /// [`BufferConfig::max_records`].
    pub fn max_bytes(n: usize) -> BufferConfig {
        BufferConfig {
            max_records: None,
            max_bytes: Some(n),
            full: BufferFull::EmitEarly,
        }
    }

    /// Shut down when full (what `until_window_closes` needs).
    #[must_use]
    pub fn shut_down_when_full(mut self) -> BufferConfig {
        self.full = BufferFull::ShutDown;
        self
    }

    /// Forward the oldest keys early when full.
    #[must_use]
    pub fn emit_early_when_full(mut self) -> BufferConfig {
        self.full = BufferFull::EmitEarly;
        self
    }

    pub(crate) fn full_policy(&self) -> BufferFull {
        self.full
    }
}

/// When a suppressed table forwards a key (Kafka's `Suppressed`).
pub struct Suppressed<K> {
    pub(crate) due: Due<K>,
    pub(crate) final_results: bool,
    pub(crate) buffer: BufferConfig,
    pub(crate) name: Option<String>,
}

/// When a buffered key is due, from its key and the time of its first buffered update, and
/// the grace period of the windows upstream.
pub(crate) type Due<K> = Arc<dyn Fn(&K, i64, i64) -> i64 + Send + Sync>;

impl<K: 'static> Suppressed<Windowed<K>> {
    /// Forwards each window's final result once, when the window closes: its end plus the
    /// grace period of the windowed aggregation upstream is at or before the stream time
    /// (Kafka's `untilWindowCloses`). The buffer may not emit early.
    pub fn until_window_closes(buffer: BufferConfig) -> Suppressed<Windowed<K>> {
        Suppressed {
            due: Arc::new(|k: &Windowed<K>, _first: i64, grace: i64| {
                k.window.end.saturating_add(grace)
            }),
            final_results: true,
            buffer,
            name: None,
        }
    }
}

impl<K: 'static> Suppressed<K> {
    /// Forwards each key's latest value `limit` after its first update held back, by
    /// stream time (Kafka's `untilTimeLimit`).
    pub fn until_time_limit(limit: Duration, buffer: BufferConfig) -> Suppressed<K> {
        let limit = i64::try_from(limit.as_millis()).unwrap_or(i64::MAX);
        Suppressed {
            due: Arc::new(move |_: &K, first: i64, _grace: i64| first.saturating_add(limit)),
            final_results: false,
            buffer,
            name: None,
        }
    }

    /// Names the suppression (its node and its buffer's store and changelog).
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Suppressed<K> {
        self.name = Some(name.into());
        self
    }
}

/// A buffered update: the value (`None`: a delete) and the time of the key's first update
/// in the buffer.
#[derive(Clone)]
pub(crate) struct Buffered<V> {
    pub value: Option<V>,
    pub first: i64,
}

/// The changelog format of a suppression buffer's values: the first update's time (8 bytes
/// big-endian), then 1 and the value's bytes, or 0 for a delete.
pub(crate) struct BufferedSerde<V>(pub SharedSerde<V>);

impl<V: 'static> Serde<Buffered<V>> for BufferedSerde<V> {
    fn serialize(&self, topic: &str, value: &Buffered<V>) -> Result<Option<Bytes>> {
        serialize_through_buffer(self, topic, value)
    }

    fn serialize_into(&self, topic: &str, value: &Buffered<V>, buf: &mut BytesMut) -> Result<bool> {
        buf.put_i64(value.first);
        let at = buf.len();
        buf.put_u8(0);
        if let Some(v) = &value.value
            && self.0.serialize_into(topic, v, buf)?
            && let Some(flag) = buf.get_mut(at)
        {
            *flag = 1;
        }
        Ok(true)
    }

    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<Buffered<V>> {
        let data = data.unwrap_or_default();
        let (Some(first), Some(flag)) = (data.get(..8), data.get(8)) else {
            return Err(serde_error(
                "a suppression buffer's value holds at least 9 bytes",
            ));
        };
        let mut n = [0u8; 8];
        n.copy_from_slice(first);
        let value = match flag {
            0 => None,
            _ => Some(self.0.deserialize(topic, data.get(9..))?),
        };
        Ok(Buffered {
            value,
            first: i64::from_be_bytes(n),
        })
    }
}

/// The suppression node: buffers each key's latest update in its store and forwards it when
/// due by the stream time it has seen.
pub(crate) struct Suppress<K, V> {
    pub store: StoreId,
    pub due: Due<K>,
    pub grace_ms: i64,
    pub buffer: BufferConfig,
    /// `until_window_closes`: deleted windows are dropped, not forwarded.
    pub final_results: bool,
    pub name: String,
    pub value_serde: SharedSerde<V>,
    pub children: Vec<NodeId>,
    /// The largest timestamp seen.
    pub stream_time: i64,
    /// The buffered keys by when each is due (rebuilt from the store after a restore).
    pub order: BTreeSet<(i64, Vec<u8>)>,
    /// Each buffered key's due time and size (what it counts against `max_bytes`).
    pub due_of: std::collections::HashMap<Vec<u8>, (i64, usize)>,
    /// Bytes held (keys and serialized values), when `max_bytes` bounds the buffer.
    pub bytes: usize,
    pub indexed: bool,
    pub scratch: BytesMut,
    pub out: PhantomData<fn() -> V>,
}

impl<K, V> Node<K, Option<V>> for Suppress<K, V>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    fn process(&mut self, cx: &mut Cx<'_>, key: K, value: Option<V>) -> Result<()> {
        if !self.indexed {
            self.index(cx)?;
        }
        let ts = cx.timestamp;
        self.stream_time = self.stream_time.max(ts);
        let Some(kb) = self.key_bytes(cx, &key)? else {
            return Ok(());
        };
        if value.is_none() && self.final_results {
            // A window deleted upstream (a session merged into another) has no final
            // result: it leaves the buffer, nothing goes downstream (as Kafka drops such
            // tombstones).
            if let Some((due, size)) = self.due_of.remove(&kb) {
                self.order.remove(&(due, kb.clone()));
                self.bytes = self.bytes.saturating_sub(size);
                cx.store::<KvStore<K, Buffered<V>>>(self.store)?
                    .delete_bytes(&kb)?;
            }
            return Ok(());
        }
        let first = match self.due_of.get(&kb) {
            Some(_) => self.first_of(cx, &kb)?.unwrap_or(ts),
            None => ts,
        };
        let due = (self.due)(&key, first, self.grace_ms);
        let size = self.size_of(&kb, value.as_ref())?;
        let store = cx.store::<KvStore<K, Buffered<V>>>(self.store)?;
        store.put(&key, Some(Buffered { value, first }), ts)?;
        if let Some((old, old_size)) = self.due_of.insert(kb.clone(), (due, size)) {
            self.order.remove(&(old, kb.clone()));
            self.bytes = self.bytes.saturating_sub(old_size);
        }
        self.order.insert((due, kb));
        self.bytes = self.bytes.saturating_add(size);
        // Everything due by the stream time goes, in due order (this update too, when it is
        // due already: a time limit passed).
        self.emit_due(cx)?;
        self.enforce_bounds(cx)
    }
}

impl<K, V> Suppress<K, V>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    /// The key's bytes as the buffer's store keys it (`None`: a null key, not buffered).
    fn key_bytes(&mut self, cx: &mut Cx<'_>, key: &K) -> Result<Option<Vec<u8>>> {
        let store = cx.store::<KvStore<K, Buffered<V>>>(self.store)?;
        store.key_bytes(key)
    }

    fn first_of(&mut self, cx: &mut Cx<'_>, kb: &[u8]) -> Result<Option<i64>> {
        let store = cx.store::<KvStore<K, Buffered<V>>>(self.store)?;
        Ok(store.get_entry(kb)?.map(|(_, b, _)| b.first))
    }

    /// What a buffered update counts against `max_bytes` (0 when no byte bound is set).
    fn size_of(&mut self, kb: &[u8], value: Option<&V>) -> Result<usize> {
        if self.buffer.max_bytes.is_none() {
            return Ok(0);
        }
        self.scratch.clear();
        if let Some(v) = value {
            self.value_serde
                .serialize_into(&self.name, v, &mut self.scratch)?;
        }
        Ok(kb.len() + self.scratch.len() + 8)
    }

    /// Takes the keys of a store restored from its changelog into the due order, and the
    /// stream time from their times.
    fn index(&mut self, cx: &mut Cx<'_>) -> Result<()> {
        self.indexed = true;
        let store = cx.store::<KvStore<K, Buffered<V>>>(self.store)?;
        self.stream_time = self.stream_time.max(store.max_timestamp());
        for (kb, key, b) in store.entries()? {
            let due = (self.due)(&key, b.first, self.grace_ms);
            let size = self.size_of(&kb, b.value.as_ref())?;
            self.bytes = self.bytes.saturating_add(size);
            self.due_of.insert(kb.clone(), (due, size));
            self.order.insert((due, kb));
        }
        Ok(())
    }

    /// Forwards the oldest buffered key (its latest value), removing it.
    fn emit_first(&mut self, cx: &mut Cx<'_>) -> Result<bool> {
        let Some((_, kb)) = self.order.pop_first() else {
            return Ok(false);
        };
        if let Some((_, size)) = self.due_of.remove(&kb) {
            self.bytes = self.bytes.saturating_sub(size);
        }
        let store = cx.store::<KvStore<K, Buffered<V>>>(self.store)?;
        let entry = store.get_entry(&kb)?;
        store.delete_bytes(&kb)?;
        if let Some((key, b, ts)) = entry {
            let at = cx.timestamp;
            cx.timestamp = ts;
            let r = cx.forward(&self.children, key, b.value);
            cx.timestamp = at;
            r?;
        }
        Ok(true)
    }

    /// Forwards every key due by the stream time.
    fn emit_due(&mut self, cx: &mut Cx<'_>) -> Result<()> {
        while self
            .order
            .first()
            .is_some_and(|(due, _)| *due <= self.stream_time)
        {
            self.emit_first(cx)?;
        }
        Ok(())
    }

    fn over(&self) -> bool {
        self.buffer
            .max_records
            .is_some_and(|n| self.order.len() > n)
            || self.buffer.max_bytes.is_some_and(|n| self.bytes > n)
    }

    fn enforce_bounds(&mut self, cx: &mut Cx<'_>) -> Result<()> {
        while self.over() {
            match self.buffer.full {
                BufferFull::EmitEarly => {
                    if !self.emit_first(cx)? {
                        break;
                    }
                }
                BufferFull::ShutDown => {
                    return Err(Error::Streams {
                        reason: format!(
                            "the suppression buffer '{}' is full ({} keys, {} bytes held): \
                             raise its BufferConfig bound, or emit early where a final \
                             result is not required",
                            self.name,
                            self.order.len(),
                            self.bytes
                        ),
                    });
                }
            }
        }
        Ok(())
    }
}
