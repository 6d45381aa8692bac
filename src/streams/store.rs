//! State stores: key-value maps in memory, each backed by a compacted changelog topic.

use std::any::Any;
use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use bytes::BytesMut;
use foldhash::fast::RandomState;

use super::node::Output;
use super::serde::SharedSerde;
use crate::error::Result;

/// A store as a task holds it, whatever its types.
pub(crate) trait ErasedStore: Send {
    fn as_any(&mut self) -> &mut dyn Any;

    /// Writes the entries changed since the last call to the changelog (the latest value of
    /// each key once; a tombstone for a deleted key).
    fn flush_changelog(&mut self, partition: i32, out: &mut dyn Output) -> Result<()>;

    /// Applies one changelog record (a restore).
    fn restore(&mut self, key: &[u8], value: Option<&[u8]>, timestamp: i64) -> Result<()>;

    /// The changelog topic.
    fn changelog(&self) -> &str;
}

/// A key's bytes as a store holds them: inline up to 22 bytes (most keys: a lookup then
/// reads no second allocation), shared beyond.
#[derive(Clone)]
pub(crate) enum KeyBytes {
    Inline(u8, [u8; INLINE]),
    Shared(Arc<[u8]>),
}

const INLINE: usize = 22;

impl KeyBytes {
    pub fn new(bytes: &[u8]) -> KeyBytes {
        match u8::try_from(bytes.len()) {
            Ok(n) if bytes.len() <= INLINE => {
                let mut buf = [0; INLINE];
                if let Some(head) = buf.get_mut(..bytes.len()) {
                    head.copy_from_slice(bytes);
                }
                KeyBytes::Inline(n, buf)
            }
            _ => KeyBytes::Shared(Arc::from(bytes)),
        }
    }

    pub fn as_slice(&self) -> &[u8] {
        match self {
            KeyBytes::Inline(n, buf) => buf.get(..usize::from(*n)).unwrap_or_default(),
            KeyBytes::Shared(b) => b,
        }
    }
}

impl Borrow<[u8]> for KeyBytes {
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}

// Hashed and compared as its bytes, as `Borrow<[u8]>` requires.
impl Hash for KeyBytes {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

impl PartialEq for KeyBytes {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for KeyBytes {}

/// A store's entry; the key is the map's (its bytes: a typed key is deserialized when one is
/// forwarded or read, as Kafka's caching layer does, so an entry stays small and a lookup
/// touches little memory).
struct Entry<V> {
    /// `None`: deleted, its tombstone not yet written.
    value: Option<V>,
    /// Changed since the changelog was last written.
    dirty: bool,
    /// Updated since its aggregate was last forwarded (the cache).
    pending: bool,
    timestamp: i64,
}

/// A key-value store of one task: entries by their key's bytes (Kafka compares keys as
/// bytes), with the typed value.
pub(crate) struct KvStore<K, V> {
    /// Hashed with foldhash (seeded per store): a third of SipHash's cost on short keys.
    map: HashMap<KeyBytes, Entry<V>, RandomState>,
    dirty: Vec<KeyBytes>,
    pending: Vec<KeyBytes>,
    changelog: String,
    key_serde: SharedSerde<K>,
    value_serde: SharedSerde<V>,
    /// A key's bytes while it is looked up.
    scratch: BytesMut,
}

impl<K: Clone + Send + 'static, V: Clone + Send + 'static> KvStore<K, V> {
    pub fn new(changelog: String, key_serde: SharedSerde<K>, value_serde: SharedSerde<V>) -> Self {
        KvStore {
            map: HashMap::default(),
            dirty: Vec::new(),
            pending: Vec::new(),
            changelog,
            key_serde,
            value_serde,
            scratch: BytesMut::new(),
        }
    }

    /// Serializes `key` into the scratch buffer; `false` for a key that serializes to null.
    fn scratch_key(&mut self, key: &K) -> Result<bool> {
        self.scratch.clear();
        self.key_serde
            .serialize_into(&self.changelog, key, &mut self.scratch)
    }

    /// The value of `key` (`None` also for a null key).
    pub fn get_by_key(&mut self, key: &K) -> Result<Option<&V>> {
        if !self.scratch_key(key)? {
            return Ok(None);
        }
        Ok(self
            .map
            .get(&self.scratch[..])
            .and_then(|e| e.value.as_ref()))
    }

    /// The value, key and time of the entry with these bytes.
    pub fn get_entry(&self, key: &[u8]) -> Result<Option<(K, V, i64)>> {
        let Some((value, ts)) = self
            .map
            .get(key)
            .and_then(|e| Some((e.value.as_ref()?, e.timestamp)))
        else {
            return Ok(None);
        };
        let k = self.key_serde.deserialize(&self.changelog, Some(key))?;
        Ok(Some((k, value.clone(), ts)))
    }

    /// Sets `key` to `f(old value)` with one lookup, marking it for the changelog (and, with
    /// `pending`, to be forwarded at the next emit). Whether the key was newly marked
    /// pending, and (with `want`) a copy of the new value; `None` for a key that serializes
    /// to null (not stored).
    pub fn upsert(
        &mut self,
        key: &K,
        timestamp: i64,
        pending: bool,
        want: bool,
        f: impl FnOnce(Option<V>) -> V,
    ) -> Result<Option<(bool, Option<V>)>> {
        if !self.scratch_key(key)? {
            return Ok(None);
        }
        if let Some(e) = self.map.get_mut(&self.scratch[..]) {
            let new = f(e.value.take());
            let copy = want.then(|| new.clone());
            e.value = Some(new);
            e.timestamp = timestamp;
            if !e.dirty {
                e.dirty = true;
                self.dirty.push(KeyBytes::new(&self.scratch));
            }
            let fresh = pending && !e.pending;
            if fresh {
                e.pending = true;
                self.pending.push(KeyBytes::new(&self.scratch));
            }
            return Ok(Some((fresh, copy)));
        }
        let bytes = KeyBytes::new(&self.scratch);
        self.dirty.push(bytes.clone());
        if pending {
            self.pending.push(bytes.clone());
        }
        let new = f(None);
        let copy = want.then(|| new.clone());
        self.map.insert(
            bytes,
            Entry {
                value: Some(new),
                dirty: true,
                pending,
                timestamp,
            },
        );
        Ok(Some((pending, copy)))
    }

    /// Sets `key` to `value` (`None` deletes it); `false` for a key that serializes to null
    /// (not stored).
    pub fn put(&mut self, key: &K, value: Option<V>, timestamp: i64) -> Result<bool> {
        if !self.scratch_key(key)? {
            return Ok(false);
        }
        if let Some(e) = self.map.get_mut(&self.scratch[..]) {
            e.value = value;
            e.timestamp = timestamp;
            if !e.dirty {
                e.dirty = true;
                self.dirty.push(KeyBytes::new(&self.scratch));
            }
            return Ok(true);
        }
        let bytes = KeyBytes::new(&self.scratch);
        self.dirty.push(bytes.clone());
        self.map.insert(
            bytes,
            Entry {
                value,
                dirty: true,
                pending: false,
                timestamp,
            },
        );
        Ok(true)
    }

    /// The latest time of any entry (`i64::MIN` for none): a restored store's stream time.
    pub fn max_timestamp(&self) -> i64 {
        self.map
            .values()
            .map(|e| e.timestamp)
            .max()
            .unwrap_or(i64::MIN)
    }

    /// The value of `key` with the time of its last update.
    pub fn get_with_time(&mut self, key: &K) -> Result<Option<(&V, i64)>> {
        if !self.scratch_key(key)? {
            return Ok(None);
        }
        Ok(self
            .map
            .get(&self.scratch[..])
            .and_then(|e| Some((e.value.as_ref()?, e.timestamp))))
    }

    /// The bytes `key` is stored under (`None` for a key that serializes to null).
    pub fn key_bytes(&mut self, key: &K) -> Result<Option<Vec<u8>>> {
        Ok(self.scratch_key(key)?.then(|| self.scratch.to_vec()))
    }

    /// Every live entry: its key's bytes, the key and the value.
    pub fn entries(&self) -> Result<Vec<(Vec<u8>, K, V)>> {
        let mut out = Vec::with_capacity(self.map.len());
        for (k, e) in &self.map {
            if let Some(v) = &e.value {
                let key = self
                    .key_serde
                    .deserialize(&self.changelog, Some(k.as_slice()))?;
                out.push((k.as_slice().to_vec(), key, v.clone()));
            }
        }
        Ok(out)
    }

    /// Deletes the entry stored under `key` (a tombstone at the next changelog write).
    pub fn delete_bytes(&mut self, key: &[u8]) {
        if let Some(e) = self.map.get_mut(key) {
            e.value = None;
            if !e.dirty {
                e.dirty = true;
                self.dirty.push(KeyBytes::new(key));
            }
        }
    }

    /// Drops the entries whose key bytes `keep` refuses, writing nothing to the changelog
    /// (a window store's expired windows: its changelog deletes them by retention). An
    /// entry whose last update is not yet in the changelog, or not yet forwarded, stays
    /// until a later call.
    pub fn expire(&mut self, keep: impl Fn(&[u8]) -> bool) {
        self.map
            .retain(|k, e| e.dirty || e.pending || keep(k.as_slice()));
    }

    /// The keys marked since the last emit, unmarked.
    pub fn take_pending(&mut self) -> Vec<KeyBytes> {
        let keys = std::mem::take(&mut self.pending);
        for k in &keys {
            if let Some(e) = self.map.get_mut(k.as_slice()) {
                e.pending = false;
            }
        }
        keys
    }

    /// Every live entry, in no order.
    pub fn all(&self) -> Result<Vec<(K, V)>> {
        Ok(self
            .entries()?
            .into_iter()
            .map(|(_, k, v)| (k, v))
            .collect())
    }
}

impl<K: Clone + Send + 'static, V: Clone + Send + 'static> ErasedStore for KvStore<K, V> {
    fn as_any(&mut self) -> &mut dyn Any {
        self
    }

    fn flush_changelog(&mut self, partition: i32, out: &mut dyn Output) -> Result<()> {
        for bytes in std::mem::take(&mut self.dirty) {
            let Some(e) = self.map.get_mut(bytes.as_slice()) else {
                continue;
            };
            e.dirty = false;
            let key = bytes.as_slice();
            let buf = &mut self.scratch;
            buf.clear();
            let value = match &e.value {
                Some(v) => self
                    .value_serde
                    .serialize_into(&self.changelog, v, buf)?
                    .then_some(&buf[..]),
                None => None,
            };
            let deleted = value.is_none();
            out.send(
                &self.changelog,
                Some(partition),
                Some(key),
                value,
                e.timestamp,
            )?;
            if deleted {
                self.map.remove(bytes.as_slice());
            }
        }
        Ok(())
    }

    fn restore(&mut self, key: &[u8], value: Option<&[u8]>, timestamp: i64) -> Result<()> {
        let bytes = KeyBytes::new(key);
        match value {
            None => {
                self.map.remove(key);
            }
            Some(v) => {
                let v = self.value_serde.deserialize(&self.changelog, Some(v))?;
                self.map.insert(
                    bytes,
                    Entry {
                        value: Some(v),
                        dirty: false,
                        pending: false,
                        timestamp,
                    },
                );
            }
        }
        Ok(())
    }

    fn changelog(&self) -> &str {
        &self.changelog
    }
}
