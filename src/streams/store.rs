//! State stores: key-value maps in memory, each backed by a compacted changelog topic.

use std::any::Any;
use std::collections::HashMap;

use bytes::{Bytes, BytesMut};

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
    fn restore(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<()>;

    /// The changelog topic.
    fn changelog(&self) -> &str;
}

struct Entry<K, V> {
    /// The key's bytes (the map's key, shared).
    bytes: Bytes,
    key: K,
    /// `None`: deleted, its tombstone not yet written.
    value: Option<V>,
    /// Changed since the changelog was last written.
    dirty: bool,
    /// Updated since its aggregate was last forwarded (the cache).
    pending: bool,
    timestamp: i64,
}

/// A key-value store of one task: entries by their key's bytes (Kafka compares keys as
/// bytes), with the typed key and value.
pub(crate) struct KvStore<K, V> {
    map: HashMap<Bytes, Entry<K, V>>,
    dirty: Vec<Bytes>,
    pending: Vec<Bytes>,
    changelog: String,
    key_serde: SharedSerde<K>,
    value_serde: SharedSerde<V>,
    /// A key's bytes while it is looked up.
    scratch: BytesMut,
}

impl<K: Clone + Send + 'static, V: Clone + Send + 'static> KvStore<K, V> {
    pub fn new(changelog: String, key_serde: SharedSerde<K>, value_serde: SharedSerde<V>) -> Self {
        KvStore {
            map: HashMap::new(),
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
    pub fn get_entry(&self, key: &[u8]) -> Option<(&K, &V, i64)> {
        self.map
            .get(key)
            .and_then(|e| Some((&e.key, e.value.as_ref()?, e.timestamp)))
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
                self.dirty.push(e.bytes.clone());
            }
            let fresh = pending && !e.pending;
            if fresh {
                e.pending = true;
                self.pending.push(e.bytes.clone());
            }
            return Ok(Some((fresh, copy)));
        }
        let bytes = Bytes::copy_from_slice(&self.scratch);
        self.dirty.push(bytes.clone());
        if pending {
            self.pending.push(bytes.clone());
        }
        let new = f(None);
        let copy = want.then(|| new.clone());
        self.map.insert(
            bytes.clone(),
            Entry {
                bytes,
                key: key.clone(),
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
            e.key = key.clone();
            e.value = value;
            e.timestamp = timestamp;
            if !e.dirty {
                e.dirty = true;
                self.dirty.push(e.bytes.clone());
            }
            return Ok(true);
        }
        let bytes = Bytes::copy_from_slice(&self.scratch);
        self.dirty.push(bytes.clone());
        self.map.insert(
            bytes.clone(),
            Entry {
                bytes,
                key: key.clone(),
                value,
                dirty: true,
                pending: false,
                timestamp,
            },
        );
        Ok(true)
    }

    /// The keys marked since the last emit, unmarked.
    pub fn take_pending(&mut self) -> Vec<Bytes> {
        let keys = std::mem::take(&mut self.pending);
        for k in &keys {
            if let Some(e) = self.map.get_mut(k) {
                e.pending = false;
            }
        }
        keys
    }

    /// Every live entry, in no order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.map
            .values()
            .filter_map(|e| Some((&e.key, e.value.as_ref()?)))
    }
}

impl<K: Clone + Send + 'static, V: Clone + Send + 'static> ErasedStore for KvStore<K, V> {
    fn as_any(&mut self) -> &mut dyn Any {
        self
    }

    fn flush_changelog(&mut self, partition: i32, out: &mut dyn Output) -> Result<()> {
        for bytes in std::mem::take(&mut self.dirty) {
            let Some(e) = self.map.get_mut(&bytes) else {
                continue;
            };
            e.dirty = false;
            let value = match &e.value {
                Some(v) => self.value_serde.serialize(&self.changelog, v)?,
                None => None,
            };
            let deleted = value.is_none();
            out.send(
                &self.changelog,
                Some(partition),
                Some(bytes.clone()),
                value,
                e.timestamp,
            )?;
            if deleted {
                self.map.remove(&bytes);
            }
        }
        Ok(())
    }

    fn restore(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<()> {
        let bytes = Bytes::copy_from_slice(key);
        match value {
            None => {
                self.map.remove(&bytes);
            }
            Some(v) => {
                let k = self.key_serde.deserialize(&self.changelog, Some(key))?;
                let v = self.value_serde.deserialize(&self.changelog, Some(v))?;
                self.map.insert(
                    bytes.clone(),
                    Entry {
                        bytes,
                        key: k,
                        value: Some(v),
                        dirty: false,
                        pending: false,
                        timestamp: 0,
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
