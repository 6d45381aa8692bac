//! The processor API (Kafka's `Processor`, `ProcessorContext`, `Punctuator`): what the DSL
//! cannot say, as a processor that sees each record, forwards what it likes, keeps state
//! in key-value stores with changelogs, and runs punctuations by stream time or wall
//! clock.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use super::node::{Cx, Node, NodeId, PunctuationType, Schedule, StoreId};
use super::serde::SharedSerde;
use super::store::KvStore;
use crate::error::{Error, Result};

/// A punctuation a processor scheduled (Kafka's `Cancellable`): passed back to
/// [`Processor::punctuate`], and what [`ProcessorContext::cancel`] takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScheduleId(pub(crate) u32);

/// A processor of records with keys `K` and values `V` that forwards records with keys
/// `KR` and values `VR` (Kafka's `api.Processor`). One instance runs per task, on the
/// task's thread.
pub trait Processor<K, V, KR, VR>: Send {
    /// Called once when the task starts, after its stores are restored: schedule
    /// punctuations here. Forwarding is not allowed here.
    ///
    /// # Errors
    /// An error fails the stream thread (the uncaught-error handler decides).
    fn init(&mut self, ctx: &mut ProcessorContext<'_, '_, KR, VR>) -> Result<()> {
        let _ = ctx;
        Ok(())
    }

    /// Processes one record.
    ///
    /// # Errors
    /// As [`Processor::init`].
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, '_, KR, VR>,
        key: K,
        value: V,
    ) -> Result<()>;

    /// Called when its task closes or moves to another thread, after its last commit
    /// (Kafka's `close`).
    fn close(&mut self) {}

    /// Runs the punctuation `schedule` at `time` (the stream time or the wall clock, as it
    /// was scheduled; Kafka's `Punctuator.punctuate`).
    ///
    /// # Errors
    /// As [`Processor::init`].
    fn punctuate(
        &mut self,
        ctx: &mut ProcessorContext<'_, '_, KR, VR>,
        schedule: ScheduleId,
        time: i64,
    ) -> Result<()> {
        let _ = (ctx, schedule, time);
        Ok(())
    }
}

/// What a processor sees: where its records go, its stores, the times, and its
/// punctuations (Kafka's `api.ProcessorContext`).
pub struct ProcessorContext<'p, 'c, KR, VR> {
    cx: &'p mut Cx<'c>,
    children: &'p [NodeId],
    stores: &'p [(String, StoreId)],
    forwarding: bool,
    out: PhantomData<fn() -> (KR, VR)>,
}

impl<KR: Clone + 'static, VR: Clone + 'static> ProcessorContext<'_, '_, KR, VR> {
    /// Forwards a record downstream, with the current record's timestamp (in a punctuation,
    /// the punctuation's time).
    ///
    /// # Errors
    /// A downstream node's error; [`Error::Streams`] in [`Processor::init`].
    pub fn forward(&mut self, key: KR, value: VR) -> Result<()> {
        if !self.forwarding {
            return Err(Error::Streams {
                reason: "a processor cannot forward records from init".into(),
            });
        }
        self.cx.forward(self.children, key, value)
    }

    /// Forwards a record with `timestamp`.
    ///
    /// # Errors
    /// As [`ProcessorContext::forward`].
    pub fn forward_at(&mut self, key: KR, value: VR, timestamp: i64) -> Result<()> {
        let at = std::mem::replace(&mut self.cx.timestamp, timestamp);
        let r = self.forward(key, value);
        self.cx.timestamp = at;
        r
    }

    /// The current record's timestamp (in a punctuation, the punctuation's time).
    pub fn timestamp(&self) -> i64 {
        self.cx.timestamp
    }

    /// The task's stream time: the largest timestamp it has read (`i64::MIN` before any).
    pub fn stream_time(&self) -> i64 {
        self.cx.stream_time
    }

    /// The wall clock in ms since the epoch (the test driver's own clock under it).
    pub fn wall_clock_time(&self) -> i64 {
        self.cx.wall_time
    }

    /// Schedules [`Processor::punctuate`] every `interval` by stream time or by wall
    /// clock, as Kafka's `schedule`: a stream-time punctuation runs on the next record
    /// processed, then whenever records move the stream time to the next multiple of the
    /// interval (once, however far: missed ones are skipped); a wall-clock one first runs
    /// an interval from now.
    pub fn schedule(&mut self, interval: Duration, kind: PunctuationType) -> ScheduleId {
        let interval = i64::try_from(interval.as_millis())
            .unwrap_or(i64::MAX)
            .max(1);
        let next = match kind {
            PunctuationType::StreamTime => 0,
            PunctuationType::WallClockTime => self.cx.wall_time.saturating_add(interval),
        };
        let id = ScheduleId(u32::try_from(self.cx.schedules.len()).unwrap_or(u32::MAX));
        self.cx.schedules.push(Schedule {
            node: self.cx.node,
            interval,
            kind,
            next: Some(next),
            cancelled: false,
        });
        id
    }

    /// Stops one of this processor's punctuations (Kafka's `Cancellable.cancel`).
    pub fn cancel(&mut self, schedule: ScheduleId) {
        let node = self.cx.node;
        if let Some(s) = usize::try_from(schedule.0)
            .ok()
            .and_then(|i| self.cx.schedules.get_mut(i))
            .filter(|s| s.node == node)
        {
            s.cancelled = true;
        }
    }

    /// The key-value store `name`, which the processor was connected to
    /// (`KStream::process`'s store names) and which holds keys `SK` and values `SV`.
    ///
    /// # Errors
    /// [`Error::Streams`] for a store the processor is not connected to, or of other types.
    pub fn key_value_store<SK: Clone + Send + 'static, SV: Clone + Send + 'static>(
        &mut self,
        name: &str,
    ) -> Result<KeyValueStore<'_, SK, SV>> {
        let Some(&(_, id)) = self.stores.iter().find(|(n, _)| n == name) else {
            return Err(Error::Streams {
                reason: format!("the processor is not connected to a store named '{name}'"),
            });
        };
        let timestamp = self.cx.timestamp;
        let store = self
            .cx
            .store::<KvStore<SK, SV>>(id)
            .map_err(|_| Error::Streams {
                reason: format!("the store '{name}' holds other key or value types"),
            })?;
        Ok(KeyValueStore { store, timestamp })
    }
}

/// A key-value store as a processor uses it (Kafka's `KeyValueStore`): its changes go to
/// its changelog at each commit, and it is restored from it when its task starts.
pub struct KeyValueStore<'s, K, V> {
    store: &'s mut KvStore<K, V>,
    timestamp: i64,
}

impl<K: Clone + Send + 'static, V: Clone + Send + 'static> KeyValueStore<'_, K, V> {
    /// The value of `key`.
    ///
    /// # Errors
    /// [`Error::Serde`] for a key the store's serde cannot write.
    pub fn get(&mut self, key: &K) -> Result<Option<V>> {
        Ok(self.store.get_by_key(key)?.cloned())
    }

    /// Sets `key` to `value`.
    ///
    /// # Errors
    /// As [`KeyValueStore::get`]; [`Error::Serde`] for a key that serializes to null.
    pub fn put(&mut self, key: &K, value: V) -> Result<()> {
        if self.store.put(key, Some(value), self.timestamp)? {
            return Ok(());
        }
        Err(Error::Serde {
            reason: "a key that serializes to null cannot be stored".into(),
        })
    }

    /// Deletes `key` (a tombstone in the changelog).
    ///
    /// # Errors
    /// As [`KeyValueStore::put`].
    pub fn delete(&mut self, key: &K) -> Result<()> {
        if self.store.put(key, None, self.timestamp)? {
            return Ok(());
        }
        Err(Error::Serde {
            reason: "a key that serializes to null cannot be stored".into(),
        })
    }

    /// Every entry, ordered by serialized key (as Kafka's stores order keys).
    ///
    /// # Errors
    /// [`Error::Serde`] for a stored key that does not deserialize; a persistent store's
    /// file errors.
    pub fn all(&mut self) -> Result<Vec<(K, V)>> {
        Ok(self
            .store
            .scan(None, None)?
            .into_iter()
            .map(|(_, k, v, _)| (k, v))
            .collect())
    }

    /// The entries whose keys are from `from` to `to` (both included), ordered by
    /// serialized key.
    ///
    /// # Errors
    /// As [`KeyValueStore::all`].
    pub fn range(&mut self, from: &K, to: &K) -> Result<Vec<(K, V)>> {
        let (Some(a), Some(b)) = (self.store.key_bytes(from)?, self.store.key_bytes(to)?) else {
            return Ok(Vec::new());
        };
        Ok(self
            .store
            .scan(Some(&a), Some(&b))?
            .into_iter()
            .map(|(_, k, v, _)| (k, v))
            .collect())
    }
}

/// A key-value store for processors, named, with its serdes (Kafka's
/// `Stores.keyValueStoreBuilder`; in memory, or in a file with
/// [`StoreBuilder::persistent_key_value`] or `default.dsl.store`): add it with
/// `StreamsBuilder::add_state_store`, connect it with `KStream::process`.
pub struct StoreBuilder<K, V> {
    pub(crate) name: String,
    pub(crate) key: SharedSerde<K>,
    pub(crate) value: SharedSerde<V>,
    pub(crate) store_type: Option<super::graph::StoreType>,
}

impl<K, V> StoreBuilder<K, V> {
    /// A key-value store `name` (its changelog: `<application.id>-<name>-changelog`).
    pub fn key_value(name: impl Into<String>, key: SharedSerde<K>, value: SharedSerde<V>) -> Self {
        StoreBuilder {
            name: name.into(),
            key,
            value,
            store_type: None,
        }
    }

    /// A key-value store `name` kept in a file under `state.dir` (Kafka's
    /// `Stores.persistentKeyValueStore`): restarts replay only its changelog's tail.
    pub fn persistent_key_value(
        name: impl Into<String>,
        key: SharedSerde<K>,
        value: SharedSerde<V>,
    ) -> Self {
        StoreBuilder {
            store_type: Some(super::graph::StoreType::Persistent),
            ..StoreBuilder::key_value(name, key, value)
        }
    }

    /// A key-value store `name` in memory, rebuilt from its changelog when its task starts
    /// (Kafka's `Stores.inMemoryKeyValueStore`).
    pub fn in_memory_key_value(
        name: impl Into<String>,
        key: SharedSerde<K>,
        value: SharedSerde<V>,
    ) -> Self {
        StoreBuilder {
            store_type: Some(super::graph::StoreType::InMemory),
            ..StoreBuilder::key_value(name, key, value)
        }
    }
}

/// A processor as a node: builds the context around each call.
pub(crate) struct ProcessNode<K, V, KR, VR> {
    pub processor: Box<dyn Processor<K, V, KR, VR>>,
    pub children: Vec<NodeId>,
    pub stores: Arc<Vec<(String, StoreId)>>,
}

impl<K, V, KR, VR> ProcessNode<K, V, KR, VR> {
    fn context<'p, 'c>(
        cx: &'p mut Cx<'c>,
        children: &'p [NodeId],
        stores: &'p [(String, StoreId)],
        forwarding: bool,
    ) -> ProcessorContext<'p, 'c, KR, VR> {
        ProcessorContext {
            cx,
            children,
            stores,
            forwarding,
            out: PhantomData,
        }
    }
}

impl<K, V, KR, VR> Drop for ProcessNode<K, V, KR, VR> {
    fn drop(&mut self) {
        self.processor.close();
    }
}

impl<K, V, KR, VR> Node<K, V> for ProcessNode<K, V, KR, VR>
where
    K: 'static,
    V: 'static,
    KR: Clone + 'static,
    VR: Clone + 'static,
{
    fn process(&mut self, cx: &mut Cx<'_>, key: K, value: V) -> Result<()> {
        let mut ctx = Self::context(cx, &self.children, &self.stores, true);
        self.processor.process(&mut ctx, key, value)
    }

    fn init(&mut self, cx: &mut Cx<'_>) -> Result<()> {
        let mut ctx = Self::context(cx, &self.children, &self.stores, false);
        self.processor.init(&mut ctx)
    }

    fn punctuate(&mut self, cx: &mut Cx<'_>, schedule: u32, time: i64) -> Result<()> {
        let mut ctx = Self::context(cx, &self.children, &self.stores, true);
        self.processor
            .punctuate(&mut ctx, ScheduleId(schedule), time)
    }
}
