//! The DSL's processors: one small node type per operator.

use std::marker::PhantomData;
use std::sync::Arc;

use bytes::BytesMut;

use super::node::{Cx, ErasedNode, Node, NodeId, StoreId, Typed};
use super::serde::SharedSerde;
use super::store::KvStore;
use crate::error::Result;

/// What a source node reports of one record.
pub(crate) enum Raw {
    Done,
    /// The record did not deserialize (the deserialization handler decides).
    BadInput(crate::Error),
}

/// A timestamp extractor: a record's event time from its key, value and timestamp.
pub(crate) type Extractor<K, V> = Arc<dyn Fn(&K, &V, i64) -> i64 + Send + Sync>;

/// Reads a topic's records as `(K, V)`.
pub(crate) struct Source<K, V> {
    pub key: SharedSerde<K>,
    pub value: SharedSerde<V>,
    pub children: Vec<NodeId>,
    pub extractor: Option<Extractor<K, V>>,
}

impl<K: Clone + Send + 'static, V: Clone + Send + 'static> Source<K, V> {
    pub fn raw(
        &mut self,
        cx: &mut Cx<'_>,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> Result<Raw> {
        let read = self.key.deserialize(topic, key).and_then(|k| {
            let v = self.value.deserialize(topic, value)?;
            Ok((k, v))
        });
        match read {
            Ok((k, v)) => {
                if let Some(f) = &self.extractor {
                    cx.timestamp = f(&k, &v, cx.timestamp);
                }
                if cx.timestamp >= 0 {
                    cx.stream_time = cx.stream_time.max(cx.timestamp);
                }
                cx.forward(&self.children, k, v).map(|()| Raw::Done)
            }
            Err(e) => Ok(Raw::BadInput(e)),
        }
    }
}

/// Reads a topic as a table: a null value deletes its key.
pub(crate) struct TableSource<K, V> {
    pub key: SharedSerde<K>,
    pub value: SharedSerde<V>,
    pub children: Vec<NodeId>,
    pub extractor: Option<Extractor<K, V>>,
}

impl<K: Clone + Send + 'static, V: Clone + Send + 'static> TableSource<K, V> {
    pub fn raw(
        &mut self,
        cx: &mut Cx<'_>,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> Result<Raw> {
        // A null value is a delete, not a value to deserialize.
        let read = self.key.deserialize(topic, key).and_then(|k| {
            let v = value
                .map(|b| self.value.deserialize(topic, Some(b)))
                .transpose()?;
            Ok((k, v))
        });
        match read {
            Ok((k, v)) => {
                if let (Some(f), Some(value)) = (&self.extractor, &v) {
                    cx.timestamp = f(&k, value, cx.timestamp);
                }
                if cx.timestamp >= 0 {
                    cx.stream_time = cx.stream_time.max(cx.timestamp);
                }
                cx.forward(&self.children, k, v).map(|()| Raw::Done)
            }
            Err(e) => Ok(Raw::BadInput(e)),
        }
    }
}

/// A source in the arena: a node that reads bytes.
pub(crate) struct SourceNode(pub Box<dyn RawSource>);

/// A source of either kind, typed inside.
pub(crate) trait RawSource: Send {
    fn raw(
        &mut self,
        cx: &mut Cx<'_>,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> Result<Raw>;

    /// Whether it reads its topic as a table.
    fn is_table(&self) -> bool {
        false
    }
}

impl<K: Clone + Send + 'static, V: Clone + Send + 'static> RawSource for Source<K, V> {
    fn raw(
        &mut self,
        cx: &mut Cx<'_>,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> Result<Raw> {
        Source::raw(self, cx, topic, key, value)
    }
}

impl<K: Clone + Send + 'static, V: Clone + Send + 'static> RawSource for TableSource<K, V> {
    fn raw(
        &mut self,
        cx: &mut Cx<'_>,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> Result<Raw> {
        TableSource::raw(self, cx, topic, key, value)
    }

    fn is_table(&self) -> bool {
        true
    }
}

impl ErasedNode for SourceNode {
    fn as_any(&mut self) -> &mut dyn std::any::Any {
        self
    }

    fn flush(&mut self, _cx: &mut Cx<'_>) -> Result<()> {
        Ok(())
    }
}

impl SourceNode {
    pub fn raw(
        &mut self,
        cx: &mut Cx<'_>,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> Result<Raw> {
        self.0.raw(cx, topic, key, value)
    }

    pub fn is_table(&self) -> bool {
        self.0.is_table()
    }
}

/// Boxes a typed node for the arena.
pub(crate) fn boxed<K: 'static, V: 'static>(n: impl Node<K, V> + 'static) -> Box<dyn ErasedNode> {
    Box::new(Typed::<K, V>(Box::new(n)))
}

/// Passes records through (a merge, a branch's output).
pub(crate) struct Pass {
    pub children: Vec<NodeId>,
}

impl<K: Clone + 'static, V: Clone + 'static> Node<K, V> for Pass {
    fn process(&mut self, cx: &mut Cx<'_>, key: K, value: V) -> Result<()> {
        cx.forward(&self.children, key, value)
    }
}

pub(crate) struct Filter<F> {
    pub f: Arc<F>,
    pub keep: bool,
    pub children: Vec<NodeId>,
}

impl<K, V, F> Node<K, V> for Filter<F>
where
    K: Clone + 'static,
    V: Clone + 'static,
    F: Fn(&K, &V) -> bool + Send + Sync,
{
    fn process(&mut self, cx: &mut Cx<'_>, key: K, value: V) -> Result<()> {
        if (self.f)(&key, &value) == self.keep {
            cx.forward(&self.children, key, value)?;
        }
        Ok(())
    }
}

pub(crate) struct Map<F, KR, VR> {
    pub f: Arc<F>,
    pub children: Vec<NodeId>,
    pub out: PhantomData<fn() -> (KR, VR)>,
}

impl<K, V, KR, VR, F> Node<K, V> for Map<F, KR, VR>
where
    KR: Clone + 'static,
    VR: Clone + 'static,
    F: Fn(K, V) -> (KR, VR) + Send + Sync,
{
    fn process(&mut self, cx: &mut Cx<'_>, key: K, value: V) -> Result<()> {
        let (k, v) = (self.f)(key, value);
        cx.forward(&self.children, k, v)
    }
}

pub(crate) struct MapValues<F, VR> {
    pub f: Arc<F>,
    pub children: Vec<NodeId>,
    pub out: PhantomData<fn() -> VR>,
}

impl<K, V, VR, F> Node<K, V> for MapValues<F, VR>
where
    K: Clone + 'static,
    VR: Clone + 'static,
    F: Fn(V) -> VR + Send + Sync,
{
    fn process(&mut self, cx: &mut Cx<'_>, key: K, value: V) -> Result<()> {
        let v = (self.f)(value);
        cx.forward(&self.children, key, v)
    }
}

pub(crate) struct FlatMap<F, I> {
    pub f: Arc<F>,
    pub children: Vec<NodeId>,
    pub out: PhantomData<fn() -> I>,
}

impl<K, V, KR, VR, I, F> Node<K, V> for FlatMap<F, I>
where
    KR: Clone + 'static,
    VR: Clone + 'static,
    I: IntoIterator<Item = (KR, VR)>,
    F: Fn(K, V) -> I + Send + Sync,
{
    fn process(&mut self, cx: &mut Cx<'_>, key: K, value: V) -> Result<()> {
        for (k, v) in (self.f)(key, value) {
            cx.forward(&self.children, k, v)?;
        }
        Ok(())
    }
}

pub(crate) struct FlatMapValues<F, I> {
    pub f: Arc<F>,
    pub children: Vec<NodeId>,
    pub out: PhantomData<fn() -> I>,
}

impl<K, V, VR, I, F> Node<K, V> for FlatMapValues<F, I>
where
    K: Clone + 'static,
    VR: Clone + 'static,
    I: IntoIterator<Item = VR>,
    F: Fn(V) -> I + Send + Sync,
{
    fn process(&mut self, cx: &mut Cx<'_>, key: K, value: V) -> Result<()> {
        for v in (self.f)(value) {
            cx.forward(&self.children, key.clone(), v)?;
        }
        Ok(())
    }
}

pub(crate) struct SelectKey<F, KR> {
    pub f: Arc<F>,
    pub children: Vec<NodeId>,
    pub out: PhantomData<fn() -> KR>,
}

impl<K, V, KR, F> Node<K, V> for SelectKey<F, KR>
where
    V: Clone + 'static,
    KR: Clone + 'static,
    F: Fn(&K, &V) -> KR + Send + Sync,
{
    fn process(&mut self, cx: &mut Cx<'_>, key: K, value: V) -> Result<()> {
        let k = (self.f)(&key, &value);
        cx.forward(&self.children, k, value)
    }
}

pub(crate) struct Peek<F> {
    pub f: Arc<F>,
    pub children: Vec<NodeId>,
}

impl<K, V, F> Node<K, V> for Peek<F>
where
    K: Clone + 'static,
    V: Clone + 'static,
    F: Fn(&K, &V) + Send + Sync,
{
    fn process(&mut self, cx: &mut Cx<'_>, key: K, value: V) -> Result<()> {
        (self.f)(&key, &value);
        cx.forward(&self.children, key, value)
    }
}

pub(crate) struct Foreach<F> {
    pub f: Arc<F>,
}

impl<K, V, F> Node<K, V> for Foreach<F>
where
    F: Fn(K, V) + Send + Sync,
{
    fn process(&mut self, _cx: &mut Cx<'_>, key: K, value: V) -> Result<()> {
        (self.f)(key, value);
        Ok(())
    }
}

/// A predicate of a split, shared by its tasks.
pub(crate) type Predicate<K, V> = Arc<dyn Fn(&K, &V) -> bool + Send + Sync>;

/// `split()`: each record to the first branch whose predicate holds, else the default.
pub(crate) struct Branch<K, V> {
    pub branches: Vec<(Predicate<K, V>, NodeId)>,
    pub default: Option<NodeId>,
}

impl<K: Clone + 'static, V: Clone + 'static> Node<K, V> for Branch<K, V> {
    fn process(&mut self, cx: &mut Cx<'_>, key: K, value: V) -> Result<()> {
        let to = self
            .branches
            .iter()
            .find(|(p, _)| p(&key, &value))
            .map(|(_, n)| *n)
            .or(self.default);
        match to {
            Some(n) => cx.forward(&[n], key, value),
            None => Ok(()),
        }
    }
}

/// Names the topic of a record (Kafka's `TopicNameExtractor`).
pub(crate) type TopicChooser<K, V> = Arc<dyn Fn(&K, &V) -> String + Send + Sync>;

/// Where a sink writes: one topic, or one chosen per record.
pub(crate) enum SinkTopic<K, V> {
    Fixed(String),
    Chosen(TopicChooser<K, V>),
}

pub(crate) struct Sink<K, V> {
    pub topic: SinkTopic<K, V>,
    pub key: SharedSerde<K>,
    pub value: SharedSerde<V>,
    /// A repartition sink drops records whose key is null (they cannot be grouped).
    pub drop_null_keys: bool,
    /// The record's key and value, serialized (reused: no allocation per record).
    pub buf: BytesMut,
}

impl<K: 'static, V: 'static> Node<K, V> for Sink<K, V> {
    fn process(&mut self, cx: &mut Cx<'_>, key: K, value: V) -> Result<()> {
        let chosen;
        let topic = match &self.topic {
            SinkTopic::Fixed(t) => t.as_str(),
            SinkTopic::Chosen(f) => {
                chosen = f(&key, &value);
                chosen.as_str()
            }
        };
        let buf = &mut self.buf;
        buf.clear();
        let has_key = self.key.serialize_into(topic, &key, buf)?;
        if !has_key && self.drop_null_keys {
            return Ok(());
        }
        let split = buf.len();
        let has_value = self.value.serialize_into(topic, &value, buf)?;
        let (k, v) = buf.split_at(split);
        cx.out.send(
            topic,
            None,
            has_key.then_some(k),
            has_value.then_some(v),
            cx.timestamp,
        )
    }
}

/// One step of an aggregation: the new aggregate of a key from its value and the old one.
pub(crate) type Step<K, V, A> = Arc<dyn Fn(&K, V, Option<A>) -> A + Send + Sync>;

/// `count`, `reduce`, `aggregate`: updates the store and forwards the new aggregate, at
/// once or (with the cache) once per key per commit.
pub(crate) struct Aggregate<K, V, A> {
    pub store: StoreId,
    pub step: Step<K, V, A>,
    /// `Materialized`'s caching (on unless disabled).
    pub caching: bool,
    pub children: Vec<NodeId>,
    pub pending_bytes: usize,
}

impl<K, V, A> Node<K, V> for Aggregate<K, V, A>
where
    K: Clone + Send + 'static,
    V: 'static,
    A: Clone + Send + 'static,
{
    fn process(&mut self, cx: &mut Cx<'_>, key: K, value: V) -> Result<()> {
        let ts = cx.timestamp;
        let cache = self.caching && cx.cache_max_bytes > 0;
        let step = &self.step;
        let s = cx.store::<KvStore<K, A>>(self.store)?;
        // A null key cannot be grouped: dropped, as Kafka drops it.
        let Some((fresh, new)) = s.upsert(&key, ts, cache, !cache, |old| step(&key, value, old))?
        else {
            return Ok(());
        };
        if let Some(new) = new {
            return cx.forward(&self.children, key, Some(new));
        }
        if fresh {
            self.pending_bytes += 64;
            if self.pending_bytes > cx.cache_max_bytes {
                self.emit(cx)?;
            }
        }
        Ok(())
    }

    fn flush(&mut self, cx: &mut Cx<'_>) -> Result<()> {
        self.emit(cx)
    }
}

impl<K: Clone + Send + 'static, V, A: Clone + Send + 'static> Aggregate<K, V, A> {
    /// Forwards the latest aggregate of each key updated since the last emit.
    fn emit(&mut self, cx: &mut Cx<'_>) -> Result<()> {
        self.pending_bytes = 0;
        let keys = cx.store::<KvStore<K, A>>(self.store)?.take_pending();
        let at = cx.timestamp;
        for kb in keys {
            let Some((k, v, ts)) = cx
                .store::<KvStore<K, A>>(self.store)?
                .get_entry(kb.as_slice())?
            else {
                continue;
            };
            cx.timestamp = ts;
            cx.forward(&self.children, k, Some(v))?;
        }
        cx.timestamp = at;
        Ok(())
    }
}

/// Keeps a table's latest values in its store and forwards each change.
pub(crate) struct Materialize<K, V> {
    pub store: StoreId,
    pub children: Vec<NodeId>,
    pub out: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Node<K, Option<V>> for Materialize<K, V>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    fn process(&mut self, cx: &mut Cx<'_>, key: K, value: Option<V>) -> Result<()> {
        let ts = cx.timestamp;
        let s = cx.store::<KvStore<K, V>>(self.store)?;
        // A null key cannot be a row: dropped, as Kafka drops it.
        if !s.put(&key, value.clone(), ts)? {
            return Ok(());
        }
        cx.forward(&self.children, key, value)
    }
}

/// A table's filter: a value that fails it becomes a delete.
pub(crate) struct TableFilter<F> {
    pub f: Arc<F>,
    pub keep: bool,
    pub children: Vec<NodeId>,
}

impl<K, V, F> Node<K, Option<V>> for TableFilter<F>
where
    K: Clone + 'static,
    V: Clone + 'static,
    F: Fn(&K, &V) -> bool + Send + Sync,
{
    fn process(&mut self, cx: &mut Cx<'_>, key: K, value: Option<V>) -> Result<()> {
        let value = value.filter(|v| (self.f)(&key, v) == self.keep);
        cx.forward(&self.children, key, value)
    }
}

pub(crate) struct TableMapValues<F, VR> {
    pub f: Arc<F>,
    pub children: Vec<NodeId>,
    pub out: PhantomData<fn() -> VR>,
}

impl<K, V, VR, F> Node<K, Option<V>> for TableMapValues<F, VR>
where
    K: Clone + 'static,
    VR: Clone + 'static,
    F: Fn(V) -> VR + Send + Sync,
{
    fn process(&mut self, cx: &mut Cx<'_>, key: K, value: Option<V>) -> Result<()> {
        let value = value.map(|v| (self.f)(v));
        cx.forward(&self.children, key, value)
    }
}

/// A table's changes as a stream: updates only, or with deletes as `None`.
pub(crate) struct ToStream<V> {
    pub tombstones: bool,
    pub children: Vec<NodeId>,
    pub out: PhantomData<fn() -> V>,
}

impl<K: Clone + 'static, V: Clone + 'static> Node<K, Option<V>> for ToStream<V> {
    fn process(&mut self, cx: &mut Cx<'_>, key: K, value: Option<V>) -> Result<()> {
        if self.tombstones {
            return cx.forward(&self.children, key, value);
        }
        match value {
            Some(v) => cx.forward(&self.children, key, v),
            None => Ok(()),
        }
    }
}

/// A stream–table join's joiner: the stream's value and the table's (if any) to the result
/// (`None`: no output, an inner join without a match).
pub(crate) type Joiner<V, VT, VR> = Arc<dyn Fn(&V, Option<&VT>) -> Option<VR> + Send + Sync>;

/// Joins each stream record with the table's current value of its key.
pub(crate) struct StreamTableJoin<K, VT, V, VR> {
    pub store: StoreId,
    pub joiner: Joiner<V, VT, VR>,
    pub children: Vec<NodeId>,
    pub out: PhantomData<fn() -> K>,
}

impl<K, V, VT, VR> Node<K, V> for StreamTableJoin<K, VT, V, VR>
where
    K: Clone + Send + 'static,
    V: 'static,
    VT: Clone + Send + 'static,
    VR: Clone + 'static,
{
    fn process(&mut self, cx: &mut Cx<'_>, key: K, value: V) -> Result<()> {
        let s = cx.store::<KvStore<K, VT>>(self.store)?;
        // A null key matches nothing (an inner join drops the record).
        let joined = (self.joiner)(&value, s.get_by_key(&key)?);
        match joined {
            Some(v) => cx.forward(&self.children, key, v),
            None => Ok(()),
        }
    }
}

/// A table–table join's joiner: each side's current value (`None`: no row) to the result
/// (`None`: no row, forwarded as a delete: also when the key had no row before, which a
/// table downstream takes as nothing to do; Kafka, which tracks old values, sends none).
pub(crate) type TableJoiner<V1, V2, VR> =
    Arc<dyn Fn(Option<&V1>, Option<&V2>) -> Option<VR> + Send + Sync>;

/// One side of a table–table join: an update of this side's table joined with the other
/// side's current row of the key (the joiner takes the left table's value first).
pub(crate) struct TableTableJoin<K, V1, V2, VR> {
    /// The other side's store.
    pub other: StoreId,
    pub joiner: TableJoiner<V1, V2, VR>,
    pub children: Vec<NodeId>,
    pub out: PhantomData<JoinTypes<K, V1, V2>>,
}

/// The types a table–table join node carries.
type JoinTypes<K, V1, V2> = fn() -> (K, V1, V2);

impl<K, V1, V2, VR> TableTableJoin<K, V1, V2, VR>
where
    K: Clone + Send + 'static,
    V1: Clone + Send + 'static,
    V2: Clone + Send + 'static,
    VR: Clone + 'static,
{
    /// Forwards the row for `key` at the later of the two sides' times (as Kafka's).
    fn forward(&self, cx: &mut Cx<'_>, key: K, joined: Option<VR>, other_time: i64) -> Result<()> {
        let at = cx.timestamp;
        cx.timestamp = at.max(other_time);
        let r = cx.forward(&self.children, key, joined);
        cx.timestamp = at;
        r
    }

    fn join_left(&self, cx: &mut Cx<'_>, key: K, value: Option<&V1>) -> Result<()> {
        let other = cx.store::<KvStore<K, V2>>(self.other)?;
        let (theirs, t) = other
            .get_with_time(&key)?
            .map_or((None, i64::MIN), |(v, t)| (Some(v), t));
        let joined = (self.joiner)(value, theirs);
        self.forward(cx, key, joined, t)
    }

    fn join_right(&self, cx: &mut Cx<'_>, key: K, value: Option<&V2>) -> Result<()> {
        let other = cx.store::<KvStore<K, V1>>(self.other)?;
        let (theirs, t) = other
            .get_with_time(&key)?
            .map_or((None, i64::MIN), |(v, t)| (Some(v), t));
        let joined = (self.joiner)(theirs, value);
        self.forward(cx, key, joined, t)
    }
}

/// The left side's node: updates of the left table.
pub(crate) struct LeftOf<K, V1, V2, VR>(pub TableTableJoin<K, V1, V2, VR>);

/// The right side's node: updates of the right table.
pub(crate) struct RightOf<K, V1, V2, VR>(pub TableTableJoin<K, V1, V2, VR>);

impl<K, V1, V2, VR> Node<K, Option<V1>> for LeftOf<K, V1, V2, VR>
where
    K: Clone + Send + 'static,
    V1: Clone + Send + 'static,
    V2: Clone + Send + 'static,
    VR: Clone + 'static,
{
    fn process(&mut self, cx: &mut Cx<'_>, key: K, value: Option<V1>) -> Result<()> {
        self.0.join_left(cx, key, value.as_ref())
    }
}

impl<K, V1, V2, VR> Node<K, Option<V2>> for RightOf<K, V1, V2, VR>
where
    K: Clone + Send + 'static,
    V1: Clone + Send + 'static,
    V2: Clone + Send + 'static,
    VR: Clone + 'static,
{
    fn process(&mut self, cx: &mut Cx<'_>, key: K, value: Option<V2>) -> Result<()> {
        self.0.join_right(cx, key, value.as_ref())
    }
}

/// A windowed aggregation (`windowed_by(TimeWindows)` then `count`, `reduce`, `aggregate`):
/// each record updates the aggregate of its key in every window that holds its timestamp,
/// through an [`Aggregate`] keyed by `Windowed<K>` (the store's keys are Kafka's window
/// store keys). A record for a window that closed (its end plus the grace period is at or
/// before the stream time this node has seen) is dropped and counted, as Kafka's
/// `KStreamWindowAggregate` drops it; windows past the store's retention are expired.
pub(crate) struct WindowAggregate<K, V, A> {
    pub windows: super::window::TimeWindows,
    pub inner: Aggregate<super::window::Windowed<K>, V, A>,
    /// The largest timestamp seen (Kafka's observed stream time).
    pub stream_time: i64,
    /// Kafka's window store retention: a window whose start is this far behind the stream
    /// time is dropped from the store (at least the window size plus the grace period,
    /// so only closed windows go).
    pub retention_ms: i64,
    /// Windows that start before this are expired already.
    pub expired_before: i64,
}

impl<K, V, A> Node<K, V> for WindowAggregate<K, V, A>
where
    K: Clone + Send + 'static,
    V: Clone + 'static,
    A: Clone + Send + 'static,
{
    fn process(&mut self, cx: &mut Cx<'_>, key: K, value: V) -> Result<()> {
        let ts = cx.timestamp;
        if ts < 0 {
            // No valid event time (Kafka's extractors refuse a negative timestamp).
            *cx.dropped += 1;
            return Ok(());
        }
        if self.stream_time == i64::MIN {
            // A task that restored its store: its stream time is where the store left off
            // (a window that had closed stays closed).
            let store = cx.store::<KvStore<super::window::Windowed<K>, A>>(self.inner.store)?;
            self.stream_time = store.max_timestamp();
        }
        self.stream_time = self.stream_time.max(ts);
        let closed_until = self.stream_time.saturating_sub(self.windows.grace_ms());
        for window in self.windows.windows_for(ts) {
            if window.end <= closed_until {
                *cx.dropped += 1;
                continue;
            }
            let key = super::window::Windowed {
                key: key.clone(),
                window,
            };
            self.inner.process(cx, key, value.clone())?;
        }
        self.expire(cx)
    }

    fn flush(&mut self, cx: &mut Cx<'_>) -> Result<()> {
        self.inner.flush(cx)
    }
}

impl<K, V, A> WindowAggregate<K, V, A>
where
    K: Clone + Send + 'static,
    A: Clone + Send + 'static,
{
    /// Drops the windows that start before the stream time less the retention, once the
    /// stream time has moved a tenth of the retention (or a second) since the last time.
    fn expire(&mut self, cx: &mut Cx<'_>) -> Result<()> {
        let cutoff = self.stream_time.saturating_sub(self.retention_ms);
        let step = (self.retention_ms / 10).max(1000);
        if cutoff < self.expired_before.saturating_add(step) {
            return Ok(());
        }
        self.expired_before = cutoff;
        let store = cx.store::<KvStore<super::window::Windowed<K>, A>>(self.inner.store)?;
        store.expire(|bytes| {
            super::window::store_key_start(bytes).is_none_or(|start| start >= cutoff)
        });
        Ok(())
    }
}
