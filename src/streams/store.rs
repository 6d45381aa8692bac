//! State stores: key-value maps in memory, each backed by a compacted changelog topic.

use std::any::Any;
use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use bytes::BytesMut;
use foldhash::fast::RandomState;

use super::node::Output;
use super::persist::Backend;
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

    /// Keeps the store's entries in the file at `path` (a persistent store); the store
    /// keeps in memory only what changed since the last commit and a cache of the rest.
    fn open_backend(&mut self, _path: &std::path::Path) -> Result<()> {
        Ok(())
    }

    /// Whether the store keeps its entries in a file.
    fn is_persistent(&self) -> bool {
        false
    }

    /// The changelog offset a persistent store's file reflects (where its restore starts);
    /// `None` for an in-memory store or a file without a checkpoint.
    fn checkpoint(&self) -> Option<i64> {
        None
    }

    /// Drops every entry, and a persistent store's file's entries and checkpoint.
    fn wipe(&mut self) -> Result<()> {
        Ok(())
    }

    /// Records that the changelog was applied up to `next` (exclusive): a persistent store
    /// writes its file (with `next` as its checkpoint) when `done`, or when it holds more in
    /// memory than its cache.
    fn restored_to(&mut self, _next: i64, _done: bool) -> Result<()> {
        Ok(())
    }

    /// After a commit: a persistent store writes what its changelog has (up to `next`,
    /// exclusive) to its file, with `next` as its checkpoint, in one durable transaction.
    fn commit_local(&mut self, _next: i64) -> Result<()> {
        Ok(())
    }
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
    /// In the changelog, not yet in a persistent store's file.
    unsynced: bool,
    timestamp: i64,
}

/// A persistent store keeps at most about this many entries in memory beyond those changed
/// since its last commit (the rest are read from its file when needed).
const CACHED_ENTRIES: usize = 100_000;

/// An entry as a scan returns it: the key's bytes, the key, the value, its time.
pub(crate) type Scanned<K, V> = (Vec<u8>, K, V, i64);

/// A value's time, and where its bytes start and end in a buffer.
type ValueSpan = (i64, usize, usize);

/// A restore writes the file every this many keys replayed (bounding what it holds in
/// memory; each write is one redb transaction).
const RESTORE_BATCH: usize = 500_000;

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
    /// A persistent store's file.
    backend: Option<Backend>,
    /// Keys in the changelog and not yet in the file.
    unsynced: Vec<KeyBytes>,
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
            backend: None,
            unsynced: Vec::new(),
        }
    }

    /// A persistent store: reads the entry under the scratch key from the file into memory
    /// when memory does not hold it.
    fn load_scratch(&mut self) -> Result<()> {
        let Some(backend) = self.backend.as_mut() else {
            return Ok(());
        };
        if self.map.contains_key(&self.scratch[..]) {
            return Ok(());
        }
        if let Some((timestamp, bytes)) = backend.get(&self.scratch)? {
            let value = self
                .value_serde
                .deserialize(&self.changelog, Some(&bytes))?;
            self.map.insert(
                KeyBytes::new(&self.scratch),
                Entry {
                    value: Some(value),
                    dirty: false,
                    pending: false,
                    unsynced: false,
                    timestamp,
                },
            );
        }
        Ok(())
    }

    /// The value and time under `key`'s bytes, from memory or a persistent store's file,
    /// without caching what the file held (a query from another thread).
    pub fn query(&mut self, key: &[u8]) -> Result<Option<(V, i64)>> {
        if let Some(e) = self.map.get(key) {
            return Ok(e.value.clone().map(|v| (v, e.timestamp)));
        }
        let Some(backend) = self.backend.as_mut() else {
            return Ok(None);
        };
        match backend.get(key)? {
            Some((t, bytes)) => Ok(Some((
                self.value_serde
                    .deserialize(&self.changelog, Some(&bytes))?,
                t,
            ))),
            None => Ok(None),
        }
    }

    /// Every live entry whose key's bytes are in `from..=to` (`None`: unbounded), in the
    /// order of their bytes (as Kafka's stores order keys), from memory and a persistent
    /// store's file.
    pub fn scan(&mut self, from: Option<&[u8]>, to: Option<&[u8]>) -> Result<Vec<Scanned<K, V>>> {
        let inside = |k: &[u8]| from.is_none_or(|f| k >= f) && to.is_none_or(|t| k <= t);
        let mut out: Vec<Scanned<K, V>> = Vec::new();
        for (k, e) in &self.map {
            if let Some(v) = &e.value
                && inside(k.as_slice())
            {
                let key = self
                    .key_serde
                    .deserialize(&self.changelog, Some(k.as_slice()))?;
                out.push((k.as_slice().to_vec(), key, v.clone(), e.timestamp));
            }
        }
        if let Some(backend) = self.backend.as_mut() {
            let (map, ks, vs, topic) = (
                &self.map,
                &self.key_serde,
                &self.value_serde,
                &self.changelog,
            );
            backend.scan(from, to, |k, t, v| {
                // Memory holds the newer state of a key it has (a deletion among them).
                if !map.contains_key(k) {
                    out.push((
                        k.to_vec(),
                        ks.deserialize(topic, Some(k))?,
                        vs.deserialize(topic, Some(v))?,
                        t,
                    ));
                }
                Ok(())
            })?;
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// How many live entries the store holds (memory and file; approximate for a
    /// persistent store, as Kafka's `approximateNumEntries`).
    pub fn approximate_len(&mut self) -> Result<u64> {
        let live = self.map.values().filter(|e| e.value.is_some()).count() as u64;
        match self.backend.as_mut() {
            Some(b) => Ok(b.len()?.max(live)),
            None => Ok(live),
        }
    }

    /// Writes the entries not yet in the file, and `next` as the checkpoint, then keeps at
    /// most about [`CACHED_ENTRIES`] unchanged entries in memory.
    fn sync(&mut self, next: i64) -> Result<()> {
        let Some(backend) = self.backend.as_mut() else {
            return Ok(());
        };
        if self.unsynced.is_empty() && backend.checkpoint() == Some(next) {
            return Ok(());
        }
        let keys = std::mem::take(&mut self.unsynced);
        // Each value's bytes, after each other in one buffer.
        let mut data = BytesMut::new();
        // Each key's index with its value's time and place in `data` (`None`: a deletion).
        let mut spans: Vec<(usize, Option<ValueSpan>)> = Vec::with_capacity(keys.len());
        for (i, k) in keys.iter().enumerate() {
            let Some(e) = self.map.get(k.as_slice()) else {
                continue;
            };
            let span = match &e.value {
                Some(v) => {
                    let at = data.len();
                    let mut buf = data.split_off(at);
                    let present = self
                        .value_serde
                        .serialize_into(&self.changelog, v, &mut buf)?;
                    let n = buf.len();
                    data.unsplit(buf);
                    present.then_some((e.timestamp, at, at + n))
                }
                None => None,
            };
            spans.push((i, span));
        }
        let changes = spans.iter().filter_map(|(i, span)| {
            let key = keys.get(*i)?.as_slice();
            Some(match span {
                Some((t, a, b)) => (key, Some((*t, data.get(*a..*b).unwrap_or_default()))),
                None => (key, None),
            })
        });
        if let Err(e) = backend.write(changes, next) {
            // Not in the file: still to write at the next commit.
            self.unsynced = keys;
            return Err(e);
        }
        for k in &keys {
            let gone = match self.map.get_mut(k.as_slice()) {
                Some(e) => {
                    e.unsynced = false;
                    e.value.is_none() && !e.dirty
                }
                None => false,
            };
            if gone {
                self.map.remove(k.as_slice());
            }
        }
        let len = self.map.len();
        if len > CACHED_ENTRIES {
            let mut excess = len - CACHED_ENTRIES / 2;
            self.map.retain(|_, e| {
                if excess > 0 && !e.dirty && !e.pending && !e.unsynced {
                    excess -= 1;
                    return false;
                }
                true
            });
        }
        Ok(())
    }

    fn mark_unsynced(&mut self, key: &[u8]) {
        if self.backend.is_none() {
            return;
        }
        if let Some(e) = self.map.get_mut(key)
            && !e.unsynced
        {
            e.unsynced = true;
            self.unsynced.push(KeyBytes::new(key));
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
        self.load_scratch()?;
        Ok(self
            .map
            .get(&self.scratch[..])
            .and_then(|e| e.value.as_ref()))
    }

    /// The value, key and time of the entry with these bytes.
    pub fn get_entry(&mut self, key: &[u8]) -> Result<Option<(K, V, i64)>> {
        if self.backend.is_some() && !self.map.contains_key(key) {
            self.scratch.clear();
            self.scratch.extend_from_slice(key);
            self.load_scratch()?;
        }
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
        self.load_scratch()?;
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
                unsynced: false,
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
        self.load_scratch()?;
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
                unsynced: false,
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
        self.load_scratch()?;
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
    pub fn entries(&mut self) -> Result<Vec<(Vec<u8>, K, V)>> {
        if self.backend.is_some() {
            return Ok(self
                .scan(None, None)?
                .into_iter()
                .map(|(b, k, v, _)| (b, k, v))
                .collect());
        }
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
    pub fn delete_bytes(&mut self, key: &[u8]) -> Result<()> {
        if self.backend.is_some() && !self.map.contains_key(key) {
            self.scratch.clear();
            self.scratch.extend_from_slice(key);
            self.load_scratch()?;
        }
        if let Some(e) = self.map.get_mut(key) {
            e.value = None;
            if !e.dirty {
                e.dirty = true;
                self.dirty.push(KeyBytes::new(key));
            }
        }
        Ok(())
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
    pub fn all(&mut self) -> Result<Vec<(K, V)>> {
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
            if self.backend.is_some() {
                // In the changelog: the file takes it at the commit (a deletion stays in
                // memory until then, hiding what the file holds).
                if !e.unsynced {
                    e.unsynced = true;
                    self.unsynced.push(bytes);
                }
            } else if deleted {
                self.map.remove(bytes.as_slice());
            }
        }
        Ok(())
    }

    fn restore(&mut self, key: &[u8], value: Option<&[u8]>, timestamp: i64) -> Result<()> {
        let value = match value {
            Some(v) => Some(self.value_serde.deserialize(&self.changelog, Some(v))?),
            None if self.backend.is_none() => {
                self.map.remove(key);
                return Ok(());
            }
            None => None,
        };
        if let Some(e) = self.map.get_mut(key) {
            e.value = value;
            e.timestamp = timestamp;
        } else {
            self.map.insert(
                KeyBytes::new(key),
                Entry {
                    value,
                    dirty: false,
                    pending: false,
                    unsynced: false,
                    timestamp,
                },
            );
        }
        self.mark_unsynced(key);
        Ok(())
    }

    fn changelog(&self) -> &str {
        &self.changelog
    }

    fn open_backend(&mut self, path: &std::path::Path) -> Result<()> {
        self.backend = Some(Backend::open(path)?);
        Ok(())
    }

    fn is_persistent(&self) -> bool {
        self.backend.is_some()
    }

    fn checkpoint(&self) -> Option<i64> {
        self.backend.as_ref().and_then(Backend::checkpoint)
    }

    fn wipe(&mut self) -> Result<()> {
        self.map.clear();
        self.dirty.clear();
        self.pending.clear();
        self.unsynced.clear();
        if let Some(b) = self.backend.as_mut() {
            eprintln!(
                "streams: the state store file {} does not match its changelog '{}'; it is \
                 rebuilt from the changelog",
                b.path().display(),
                self.changelog
            );
            b.wipe()?;
        }
        Ok(())
    }

    fn restored_to(&mut self, next: i64, done: bool) -> Result<()> {
        if self.backend.is_some() && (done || self.unsynced.len() >= RESTORE_BATCH) {
            self.sync(next)?;
        }
        Ok(())
    }

    fn commit_local(&mut self, next: i64) -> Result<()> {
        self.sync(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::streams::Serdes;

    /// Counts the changelog records a store writes.
    struct Counting(usize);

    impl Output for Counting {
        fn send(
            &mut self,
            _topic: &str,
            _partition: Option<i32>,
            _key: Option<&[u8]>,
            _value: Option<&[u8]>,
            _timestamp: i64,
        ) -> Result<()> {
            self.0 += 1;
            Ok(())
        }
    }

    /// A persistent store holds more keys than it keeps in memory: after a commit, memory
    /// holds at most its cache, and every key reads back (from the file), deletions too.
    #[test]
    fn a_persistent_store_keeps_more_keys_than_memory_holds() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| crate::Error::Streams {
            reason: e.to_string(),
        })?;
        let mut store = KvStore::new("c".into(), Serdes::string(), Serdes::i64());
        store.open_backend(&dir.path().join("0_0").join("c.redb"))?;
        let n = CACHED_ENTRIES + CACHED_ENTRIES / 2;
        for i in 0..n {
            store.put(&format!("k{i}"), Some(i as i64), 7)?;
        }
        let mut out = Counting(0);
        store.flush_changelog(0, &mut out)?;
        assert_eq!(out.0, n);
        store.commit_local(n as i64)?;
        assert!(
            store.map.len() <= CACHED_ENTRIES,
            "{} in memory",
            store.map.len()
        );
        assert_eq!(store.checkpoint(), Some(n as i64));
        // Deleted, not yet committed: hidden from reads though the file has it.
        let gone = KeyBytes::new(b"k0");
        store.delete_bytes(gone.as_slice())?;
        assert_eq!(store.get_by_key(&"k0".to_string())?, None);
        assert_eq!(store.get_by_key(&"k1".to_string())?, Some(&1));
        assert_eq!(
            store.get_by_key(&format!("k{}", n - 1))?,
            Some(&(n as i64 - 1))
        );
        assert_eq!(store.scan(None, None)?.len(), n - 1);
        store.flush_changelog(0, &mut out)?;
        store.commit_local(n as i64 + 1)?;
        // Reopened: the file alone.
        drop(store);
        let mut store = KvStore::new("c".into(), Serdes::string(), Serdes::i64());
        store.open_backend(&dir.path().join("0_0").join("c.redb"))?;
        assert_eq!(store.checkpoint(), Some(n as i64 + 1));
        assert_eq!(store.approximate_len()?, (n - 1) as u64);
        assert_eq!(store.get_by_key(&"k0".to_string())?, None);
        assert_eq!(store.get_by_key(&"k7".to_string())?, Some(&7));
        Ok(())
    }
}
