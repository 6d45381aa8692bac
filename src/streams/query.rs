//! Interactive queries: reading a running application's local stores from another thread
//! (Kafka's `KafkaStreams.store` with `QueryableStoreTypes.keyValueStore()` and
//! `windowStore()`).

use std::marker::PhantomData;
use std::sync::Arc;

use super::runtime::Shared;
use super::store::KvStore;
use super::window::{Window, Windowed};
use crate::error::{Error, Result};

/// A key-value store of a running [`Streams`](super::Streams), read across the tasks of this
/// client (Kafka's `ReadOnlyKeyValueStore`): each call reads the stores as they are between
/// two polls of each thread, including what was processed and not yet committed (as Kafka's
/// queries read the stores, not the changelog). Keys are ordered by their serialized bytes,
/// as Kafka orders them. Query from outside the topology: a processor that queries the
/// client it runs in waits on its own thread's tasks (use `ProcessorContext::key_value_store`
/// there).
pub struct ReadOnlyKeyValueStore<K, V> {
    shared: Arc<Shared>,
    name: String,
    types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> std::fmt::Debug for ReadOnlyKeyValueStore<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadOnlyKeyValueStore")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A window store of a running [`Streams`](super::Streams) (a windowed aggregation's), read
/// across the tasks of this client (Kafka's `ReadOnlyWindowStore`).
pub struct ReadOnlyWindowStore<K, V> {
    shared: Arc<Shared>,
    name: String,
    types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> std::fmt::Debug for ReadOnlyWindowStore<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadOnlyWindowStore")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

fn wrong_types(name: &str, what: &str) -> Error {
    Error::Streams {
        reason: format!(
            "the store '{name}' is not a {what} of these key and value types (query it with the \
             types of its serdes)"
        ),
    }
}

/// Calls `f` with the store `name` of each local task that holds it, as a `KvStore<K, V>`.
fn each_store<K: 'static, V: 'static>(
    shared: &Shared,
    name: &str,
    what: &str,
    mut f: impl FnMut(&mut KvStore<K, V>) -> Result<()>,
) -> Result<()> {
    shared.each_task(|task| match task.store_any(name) {
        None => Ok(()),
        Some(any) => match any.downcast_mut::<KvStore<K, V>>() {
            Some(store) => f(store),
            None => Err(wrong_types(name, what)),
        },
    })
}

impl<K: Clone + Send + 'static, V: Clone + Send + 'static> ReadOnlyKeyValueStore<K, V> {
    pub(crate) fn new(shared: Arc<Shared>, name: String) -> Self {
        ReadOnlyKeyValueStore {
            shared,
            name,
            types: PhantomData,
        }
    }

    /// The value of `key`, if a local task holds it.
    ///
    /// # Errors
    /// [`Error::Streams`] when the store holds other types; serde and file errors.
    pub fn get(&self, key: &K) -> Result<Option<V>> {
        let mut found = None;
        each_store::<K, V>(&self.shared, &self.name, "key-value store", |store| {
            if found.is_none()
                && let Some(bytes) = store.key_bytes(key)?
            {
                found = store.query(&bytes)?.map(|(v, _)| v);
            }
            Ok(())
        })?;
        Ok(found)
    }

    /// The entries whose keys are from `from` to `to` (both included), ordered by their
    /// serialized keys.
    ///
    /// # Errors
    /// As [`ReadOnlyKeyValueStore::get`].
    pub fn range(&self, from: &K, to: &K) -> Result<Vec<(K, V)>> {
        self.collect(Some(from), Some(to))
    }

    /// Every entry, ordered by serialized key.
    ///
    /// # Errors
    /// As [`ReadOnlyKeyValueStore::get`].
    pub fn all(&self) -> Result<Vec<(K, V)>> {
        self.collect(None, None)
    }

    /// About how many entries the local tasks hold (Kafka's `approximateNumEntries`).
    ///
    /// # Errors
    /// As [`ReadOnlyKeyValueStore::get`].
    pub fn approximate_num_entries(&self) -> Result<u64> {
        let mut n = 0;
        each_store::<K, V>(&self.shared, &self.name, "key-value store", |store| {
            n += store.approximate_len()?;
            Ok(())
        })?;
        Ok(n)
    }

    fn collect(&self, from: Option<&K>, to: Option<&K>) -> Result<Vec<(K, V)>> {
        let mut all: Vec<(Vec<u8>, K, V)> = Vec::new();
        each_store::<K, V>(&self.shared, &self.name, "key-value store", |store| {
            let from = match from {
                Some(k) => match store.key_bytes(k)? {
                    Some(b) => Some(b),
                    None => return Ok(()),
                },
                None => None,
            };
            let to = match to {
                Some(k) => match store.key_bytes(k)? {
                    Some(b) => Some(b),
                    None => return Ok(()),
                },
                None => None,
            };
            for (b, k, v, _) in store.scan(from.as_deref(), to.as_deref())? {
                all.push((b, k, v));
            }
            Ok(())
        })?;
        all.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(all.into_iter().map(|(_, k, v)| (k, v)).collect())
    }
}

impl<K: Clone + Send + PartialEq + 'static, V: Clone + Send + 'static> ReadOnlyWindowStore<K, V> {
    pub(crate) fn new(shared: Arc<Shared>, name: String) -> Self {
        ReadOnlyWindowStore {
            shared,
            name,
            types: PhantomData,
        }
    }

    /// The value of `key`'s window that starts at `start`, if one is held.
    ///
    /// # Errors
    /// [`Error::Streams`] when the store holds other types; serde errors.
    pub fn fetch(&self, key: &K, start: i64) -> Result<Option<V>> {
        Ok(self
            .fetch_range(key, start, start)?
            .into_iter()
            .next()
            .map(|(_, v)| v))
    }

    /// `key`'s windows that start from `from` to `to` (both included, ms), by start time
    /// (Kafka's `fetch(key, timeFrom, timeTo)`).
    ///
    /// # Errors
    /// As [`ReadOnlyWindowStore::fetch`].
    pub fn fetch_range(&self, key: &K, from: i64, to: i64) -> Result<Vec<(Window, V)>> {
        let mut out: Vec<(Window, V)> = self
            .windows(from, to)?
            .into_iter()
            .filter(|(w, _)| w.key == *key)
            .map(|(w, v)| (w.window, v))
            .collect();
        out.sort_by_key(|(w, _)| w.start);
        Ok(out)
    }

    /// Every key's windows that start from `from` to `to` (both included), by start time
    /// (Kafka's `fetchAll(timeFrom, timeTo)`).
    ///
    /// # Errors
    /// As [`ReadOnlyWindowStore::fetch`].
    pub fn fetch_all(&self, from: i64, to: i64) -> Result<Vec<(Windowed<K>, V)>> {
        self.windows(from, to)
    }

    /// Every window held.
    ///
    /// # Errors
    /// As [`ReadOnlyWindowStore::fetch`].
    pub fn all(&self) -> Result<Vec<(Windowed<K>, V)>> {
        self.windows(i64::MIN, i64::MAX)
    }

    fn windows(&self, from: i64, to: i64) -> Result<Vec<(Windowed<K>, V)>> {
        let mut out = Vec::new();
        each_store::<Windowed<K>, V>(&self.shared, &self.name, "window store", |store| {
            for (_, w, v, _) in store.scan(None, None)? {
                if w.window.start >= from && w.window.start <= to {
                    out.push((w, v));
                }
            }
            Ok(())
        })?;
        out.sort_by_key(|(w, _)| w.window.start);
        Ok(out)
    }
}
