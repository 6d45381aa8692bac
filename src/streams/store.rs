//! State stores: key-value maps in memory, each backed by a compacted changelog topic.

use std::any::Any;
use std::collections::HashMap;

use bytes::Bytes;

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
    key: K,
    /// `None`: deleted, its tombstone not yet written.
    value: Option<V>,
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
        }
    }

    /// The key's bytes as the store keys it (`None` for a key that serializes to null).
    pub fn key_bytes(&self, key: &K) -> Result<Option<Bytes>> {
        self.key_serde.serialize(&self.changelog, key)
    }

    pub fn get(&self, key: &[u8]) -> Option<&V> {
        self.map.get(key).and_then(|e| e.value.as_ref())
    }

    pub fn get_entry(&self, key: &[u8]) -> Option<(&K, &V, i64)> {
        self.map
            .get(key)
            .and_then(|e| Some((&e.key, e.value.as_ref()?, e.timestamp)))
    }

    /// Sets `key` to `value` (`None` deletes it).
    pub fn put(&mut self, bytes: Bytes, key: K, value: Option<V>, timestamp: i64) {
        if let Some(e) = self.map.get_mut(&bytes) {
            e.key = key;
            e.value = value;
            e.timestamp = timestamp;
            if !e.dirty {
                e.dirty = true;
                self.dirty.push(bytes);
            }
            return;
        }
        self.dirty.push(bytes.clone());
        self.map.insert(
            bytes,
            Entry {
                key,
                value,
                dirty: true,
                pending: false,
                timestamp,
            },
        );
    }

    /// Sets `key` to `value` and marks it to be forwarded at the next emit; whether it was
    /// not marked yet.
    pub fn put_cached(&mut self, bytes: Bytes, key: K, value: V, timestamp: i64) -> bool {
        if let Some(e) = self.map.get_mut(&bytes) {
            e.key = key;
            e.value = Some(value);
            e.timestamp = timestamp;
            if !e.dirty {
                e.dirty = true;
                self.dirty.push(bytes.clone());
            }
            if e.pending {
                return false;
            }
            e.pending = true;
            self.pending.push(bytes);
            return true;
        }
        self.dirty.push(bytes.clone());
        self.pending.push(bytes.clone());
        self.map.insert(
            bytes,
            Entry {
                key,
                value: Some(value),
                dirty: true,
                pending: true,
                timestamp,
            },
        );
        true
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
                    bytes,
                    Entry {
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
