//! The DSL: `StreamsBuilder`, `KStream`, `KGroupedStream`, `KTable` and their settings, in
//! Kafka Streams' vocabulary.

use bytes::BytesMut;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::Arc;

use super::graph::{
    Graph, Make, MakeStore, PartitionsOf, RepartitionDef, StoreType, TopicRef, Topology,
};
use super::join::{JoinLeft, JoinRight, JoinStore, JoinWindows, StreamJoinSide, StreamJoiner};
use super::node::{ErasedNode, NodeId, StoreId};
use super::ops::{
    self, Aggregate, Branch, Filter, FlatMap, FlatMapValues, Foreach, LeftOf, Map, MapValues,
    Materialize, Pass, Peek, Predicate, RightOf, SelectKey, Sink, SinkTopic, Source, SourceNode,
    StreamTableJoin, TableFilter, TableMapValues, TableSource, TableTableJoin, ToStream,
    WindowAggregate,
};
use super::processor::{ProcessNode, Processor, StoreBuilder};
use super::serde::SharedSerde;
use super::session::{
    Merger, SessionAggregate, SessionStore, SessionWindowedSerde, SessionWindows,
};
use super::sliding::{SlidingAggregate, SlidingWindows};
use super::store::KvStore;
use super::suppress::{BufferFull, Buffered, BufferedSerde, Suppress, Suppressed};
use super::window::{TimeWindowedSerde, TimeWindows, WindowStoreKeySerde, Windowed};
use crate::error::Result;

/// The serde of `A` as one of `B`, when they are one type (an operator that keeps the
/// type keeps the serde).
fn same_serde<A: 'static, B: 'static>(serde: Option<&SharedSerde<A>>) -> Option<SharedSerde<B>> {
    let any: Box<dyn std::any::Any> = Box::new(Arc::clone(serde?));
    any.downcast::<SharedSerde<B>>().ok().map(|b| *b)
}

/// What keys and values of the DSL are: cloned when a record goes to more than one place,
/// moved between threads with their tasks.
pub trait Data: Clone + Send + 'static {}

impl<T: Clone + Send + 'static> Data for T {}

/// How a source reads its topic: the key and value serdes (Kafka's `Consumed`).
pub struct Consumed<K, V> {
    key: SharedSerde<K>,
    value: SharedSerde<V>,
    name: Option<String>,
    extractor: Option<ops::Extractor<K, V>>,
}

impl<K, V> Consumed<K, V> {
    /// Reads keys and values with these serdes.
    pub fn with(key: SharedSerde<K>, value: SharedSerde<V>) -> Self {
        Consumed {
            key,
            value,
            name: None,
            extractor: None,
        }
    }

    /// Takes each record's event time from `f(key, value, record timestamp)` instead of
    /// its timestamp (Kafka's `TimestampExtractor`): windows, stream time and the
    /// timestamps of what the record leads to follow it. A negative time drops the record
    /// from windowed aggregations (counted in `dropped_records`). A table's deletes keep
    /// their record timestamp.
    #[must_use]
    pub fn with_timestamp_extractor(
        mut self,
        f: impl Fn(&K, &V, i64) -> i64 + Send + Sync + 'static,
    ) -> Self {
        self.extractor = Some(Arc::new(f));
        self
    }

    /// Names the source node.
    #[must_use]
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// How a sink writes: serdes for keys and values (Kafka's `Produced`). Without them, the
/// stream's own serdes (known when its types come from a source or a grouping).
pub struct Produced<K, V> {
    key: Option<SharedSerde<K>>,
    value: Option<SharedSerde<V>>,
    name: Option<String>,
}

impl<K, V> Default for Produced<K, V> {
    fn default() -> Self {
        Produced {
            key: None,
            value: None,
            name: None,
        }
    }
}

impl<K, V> Produced<K, V> {
    /// Writes keys and values with these serdes.
    pub fn with(key: SharedSerde<K>, value: SharedSerde<V>) -> Self {
        Produced {
            key: Some(key),
            value: Some(value),
            name: None,
        }
    }

    /// Names the sink node.
    #[must_use]
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// How a grouping repartitions: serdes and the repartition topic's name (Kafka's
/// `Grouped`).
pub struct Grouped<K, V> {
    key: Option<SharedSerde<K>>,
    value: Option<SharedSerde<V>>,
    name: Option<String>,
}

impl<K, V> Default for Grouped<K, V> {
    fn default() -> Self {
        Grouped {
            key: None,
            value: None,
            name: None,
        }
    }
}

impl<K, V> Grouped<K, V> {
    /// Repartitions (when needed) with these serdes.
    pub fn with(key: SharedSerde<K>, value: SharedSerde<V>) -> Self {
        Grouped {
            key: Some(key),
            value: Some(value),
            name: None,
        }
    }

    /// Names the repartition topic `<application.id>-<name>-repartition`.
    #[must_use]
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// A table's store: its name (and so its changelog `<application.id>-<name>-changelog`),
/// serdes and caching (Kafka's `Materialized`).
pub struct Materialized<K, V> {
    name: Option<String>,
    key: Option<SharedSerde<K>>,
    value: Option<SharedSerde<V>>,
    caching: bool,
    store_type: Option<StoreType>,
}

impl<K, V> Default for Materialized<K, V> {
    fn default() -> Self {
        Materialized {
            name: None,
            key: None,
            value: None,
            caching: true,
            store_type: None,
        }
    }
}

impl<K, V> Materialized<K, V> {
    /// A store named `name`, queryable by that name.
    pub fn named(name: impl Into<String>) -> Self {
        Materialized {
            name: Some(name.into()),
            ..Materialized::default()
        }
    }

    /// A store with these serdes (its changelog's format).
    pub fn with(key: SharedSerde<K>, value: SharedSerde<V>) -> Self {
        Materialized {
            key: Some(key),
            value: Some(value),
            ..Materialized::default()
        }
    }

    /// The key serde.
    #[must_use]
    pub fn with_key_serde(mut self, key: SharedSerde<K>) -> Self {
        self.key = Some(key);
        self
    }

    /// The value serde.
    #[must_use]
    pub fn with_value_serde(mut self, value: SharedSerde<V>) -> Self {
        self.value = Some(value);
        self
    }

    /// Forwards every update at once instead of the latest per key at each commit.
    #[must_use]
    pub fn with_caching_disabled(mut self) -> Self {
        self.caching = false;
        self
    }

    /// Where a key-value store keeps its entries (Kafka's `withStoreType`): by default the
    /// application's `default.dsl.store`. Window and session stores stay in memory.
    #[must_use]
    pub fn with_store_type(mut self, store_type: StoreType) -> Self {
        self.store_type = Some(store_type);
        self
    }
}

/// An explicit repartition: the topic's name, partition count and serdes (Kafka's
/// `Repartitioned`).
pub struct Repartitioned<K, V> {
    key: Option<SharedSerde<K>>,
    value: Option<SharedSerde<V>>,
    name: Option<String>,
    partitions: Option<i32>,
}

impl<K, V> Default for Repartitioned<K, V> {
    fn default() -> Self {
        Repartitioned {
            key: None,
            value: None,
            name: None,
            partitions: None,
        }
    }
}

impl<K, V> Repartitioned<K, V> {
    /// With these serdes.
    pub fn with(key: SharedSerde<K>, value: SharedSerde<V>) -> Self {
        Repartitioned {
            key: Some(key),
            value: Some(value),
            ..Repartitioned::default()
        }
    }

    /// The topic `<application.id>-<name>-repartition`.
    #[must_use]
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Its partition count (by default the most of the topics upstream).
    #[must_use]
    pub fn with_partitions(mut self, n: i32) -> Self {
        self.partitions = Some(n);
        self
    }
}

/// Serdes and a name for a stream–stream join's stores (Kafka's `StreamJoined`): the key,
/// this stream's values and the other's. Without them, the streams' own serdes serve.
pub struct StreamJoined<K, V, VO> {
    key: Option<SharedSerde<K>>,
    value: Option<SharedSerde<V>>,
    other: Option<SharedSerde<VO>>,
    name: Option<String>,
}

impl<K, V, VO> Default for StreamJoined<K, V, VO> {
    fn default() -> Self {
        StreamJoined {
            key: None,
            value: None,
            other: None,
            name: None,
        }
    }
}

impl<K, V, VO> StreamJoined<K, V, VO> {
    /// The join's serdes: keys, this stream's values, the other stream's values.
    pub fn with(key: SharedSerde<K>, value: SharedSerde<V>, other: SharedSerde<VO>) -> Self {
        StreamJoined {
            key: Some(key),
            value: Some(value),
            other: Some(other),
            name: None,
        }
    }

    /// Names the join's stores `<name>-this-join-store` and `<name>-other-join-store`
    /// (Kafka's `withStoreName`).
    #[must_use]
    pub fn with_store_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// Builds a topology (Kafka's `StreamsBuilder`).
///
/// ```
/// use topiclog::streams::{Consumed, Materialized, Produced, Serdes, StreamsBuilder};
/// let builder = StreamsBuilder::new();
/// builder
///     .stream("lines", Consumed::with(Serdes::unit(), Serdes::string()))
///     .flat_map_values(|line: String| {
///         line.to_lowercase().split(' ').map(str::to_string).collect::<Vec<_>>()
///     })
///     .group_by(|_, word: &String| word.clone(), Default::default())
///     .count(Materialized::named("counts").with_key_serde(Serdes::string()))
///     .to_stream()
///     .to("word-counts", Produced::with(Serdes::string(), Serdes::i64()));
/// let topology = builder.build()?;
/// assert!(topology.describe().contains("Sub-topology: 1"));
/// # Ok::<_, topiclog::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct StreamsBuilder {
    g: Rc<RefCell<Graph>>,
}

impl std::fmt::Debug for StreamsBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StreamsBuilder")
    }
}

impl StreamsBuilder {
    /// An empty builder.
    pub fn new() -> StreamsBuilder {
        StreamsBuilder::default()
    }

    /// A stream of the records of `topic` (a comma-free topic name).
    pub fn stream<K: Data, V: Data>(&self, topic: &str, consumed: Consumed<K, V>) -> KStream<K, V> {
        self.stream_of(&[topic], consumed)
    }

    /// A stream of the records of several topics (one source; they must be co-partitioned
    /// when the stream feeds a store).
    pub fn stream_of<K: Data, V: Data>(
        &self,
        topics: &[&str],
        consumed: Consumed<K, V>,
    ) -> KStream<K, V> {
        let Consumed {
            key,
            value,
            name,
            extractor,
        } = consumed;
        let mut g = self.g.borrow_mut();
        let name = g.name(name.as_deref(), "KSTREAM-SOURCE");
        let (k, v) = (Arc::clone(&key), Arc::clone(&value));
        let id = g.add(
            name,
            &[],
            Some(Arc::new(move |m: &Make<'_>| -> Box<dyn ErasedNode> {
                Box::new(SourceNode(Box::new(Source {
                    key: Arc::clone(&k),
                    value: Arc::clone(&v),
                    children: m.children.to_vec(),
                    extractor: extractor.clone(),
                })))
            })),
        );
        if let Some(n) = g.nodes.get_mut(id) {
            n.sources = topics
                .iter()
                .map(|t| TopicRef::User((*t).to_string()))
                .collect();
        }
        drop(g);
        KStream {
            g: Rc::clone(&self.g),
            node: id,
            key_serde: Some(key),
            value_serde: Some(value),
            key_changed: false,
            next_name: None,
        }
    }

    /// A table of the latest value of each key of `topic` (a null value deletes the key),
    /// kept in a store (`Materialized`'s name, or a generated one) with a changelog.
    pub fn table<K: Data, V: Data>(
        &self,
        topic: &str,
        consumed: Consumed<K, V>,
        materialized: Materialized<K, V>,
    ) -> KTable<K, V> {
        let Consumed {
            key,
            value,
            name,
            extractor,
        } = consumed;
        let mut g = self.g.borrow_mut();
        let source_name = g.name(name.as_deref(), "KTABLE-SOURCE");
        let (k, v) = (Arc::clone(&key), Arc::clone(&value));
        let source = g.add(
            source_name,
            &[],
            Some(Arc::new(move |m: &Make<'_>| -> Box<dyn ErasedNode> {
                Box::new(SourceNode(Box::new(TableSource {
                    key: Arc::clone(&k),
                    value: Arc::clone(&v),
                    children: m.children.to_vec(),
                    extractor: extractor.clone(),
                })))
            })),
        );
        if let Some(n) = g.nodes.get_mut(source) {
            n.sources = vec![TopicRef::User(topic.to_string())];
        }
        let store_name = match &materialized.name {
            Some(n) => n.clone(),
            None => g.next_name(&format!("{topic}-STATE-STORE")),
        };
        let key = materialized.key.unwrap_or(key);
        let value = materialized.value.unwrap_or(value);
        let (node, store) = materialize_node(&mut g, source, store_name, &key, &value);
        persistable(&mut g, store, materialized.store_type);
        drop(g);
        KTable {
            g: Rc::clone(&self.g),
            node,
            store: Some(store),
            key_serde: Some(key),
            value_serde: Some(value),
            next_name: None,
        }
    }

    /// Adds a key-value store for processors (Kafka's `addStateStore`), with a changelog
    /// `<application.id>-<name>-changelog`; `KStream::process` connects it by name.
    pub fn add_state_store<K: Data, V: Data>(&self, store: StoreBuilder<K, V>) {
        let mut g = self.g.borrow_mut();
        // Owned by no node until a processor connects it.
        let id = add_kv_store(&mut g, store.name, usize::MAX, &store.key, &store.value);
        persistable(&mut g, id, store.store_type);
    }

    /// The topology built so far.
    ///
    /// # Errors
    /// [`crate::Error::Streams`] for a topology that cannot run: no source, two processors
    /// or stores of one name, a sink or grouping whose serdes are unknown, an unfinished
    /// split.
    pub fn build(&self) -> Result<Topology> {
        let g = std::mem::take(&mut *self.g.borrow_mut());
        Topology::new(g)
    }
}

/// Adds a node that keeps a table in a new store, child of `parent`.
fn materialize_node<K: Data, V: Data>(
    g: &mut Graph,
    parent: NodeId,
    store_name: String,
    key: &SharedSerde<K>,
    value: &SharedSerde<V>,
) -> (NodeId, StoreId) {
    let name = g.next_name("KTABLE-MATERIALIZE");
    let id = g.add(name, &[parent], None);
    let store = add_kv_store(g, store_name, id, key, value);
    set_make(g, id, move |m| {
        ops::boxed::<K, Option<V>>(Materialize::<K, V> {
            store,
            children: m.children.to_vec(),
            out: PhantomData,
        })
    });
    (id, store)
}

fn add_kv_store<K: Data, V: Data>(
    g: &mut Graph,
    name: String,
    owner: NodeId,
    key: &SharedSerde<K>,
    value: &SharedSerde<V>,
) -> StoreId {
    g.add_store(name, owner, kv_store(key, value))
}

/// Marks a key-value store as one that may be kept in a file (`store_type`: as the
/// topology set it; `None`: the application's `default.dsl.store`).
fn persistable(g: &mut Graph, store: StoreId, store_type: Option<StoreType>) {
    if let Some(def) = g.stores.get_mut(store) {
        def.persistable = true;
        def.store_type = store_type;
    }
}

/// What makes a key-value store of these serdes in each task.
fn kv_store<K: Data, V: Data>(key: &SharedSerde<K>, value: &SharedSerde<V>) -> MakeStore {
    let (k, v) = (Arc::clone(key), Arc::clone(value));
    Arc::new(
        move |changelog: String| -> Box<dyn super::store::ErasedStore> {
            Box::new(KvStore::<K, V>::new(
                changelog,
                Arc::clone(&k),
                Arc::clone(&v),
            ))
        },
    )
}

fn set_make(
    g: &mut Graph,
    id: NodeId,
    make: impl Fn(&Make<'_>) -> Box<dyn ErasedNode> + Send + Sync + 'static,
) {
    if let Some(n) = g.nodes.get_mut(id) {
        n.make = Some(Arc::new(make));
    }
}

/// A stream of records (Kafka's `KStream`).
pub struct KStream<K, V> {
    g: Rc<RefCell<Graph>>,
    node: NodeId,
    key_serde: Option<SharedSerde<K>>,
    value_serde: Option<SharedSerde<V>>,
    /// The key was changed since the source: a grouping or join repartitions first.
    key_changed: bool,
    next_name: Option<String>,
}

impl<K, V> Clone for KStream<K, V> {
    fn clone(&self) -> Self {
        KStream {
            g: Rc::clone(&self.g),
            node: self.node,
            key_serde: self.key_serde.clone(),
            value_serde: self.value_serde.clone(),
            key_changed: self.key_changed,
            next_name: None,
        }
    }
}

impl<K: Data, V: Data> KStream<K, V> {
    /// Names the next operator's node (Kafka's `Named`).
    #[must_use]
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.next_name = Some(name.into());
        self
    }

    /// A child node of this stream made by `make` (with its children's ids).
    fn child<K2: Data, V2: Data>(
        &mut self,
        prefix: &str,
        key_serde: Option<SharedSerde<K2>>,
        value_serde: Option<SharedSerde<V2>>,
        key_changed: bool,
        make: impl Fn(&Make<'_>) -> Box<dyn ErasedNode> + Send + Sync + 'static,
    ) -> KStream<K2, V2> {
        let mut g = self.g.borrow_mut();
        let name = g.name(self.next_name.take().as_deref(), prefix);
        let id = g.add(name, &[self.node], Some(Arc::new(make)));
        drop(g);
        KStream {
            g: Rc::clone(&self.g),
            node: id,
            key_serde,
            value_serde,
            key_changed,
            next_name: None,
        }
    }

    /// The records for which `predicate` holds.
    #[must_use]
    pub fn filter(self, predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> Self {
        self.filter_keeping(predicate, true)
    }

    /// The records for which `predicate` does not hold.
    #[must_use]
    pub fn filter_not(self, predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> Self {
        self.filter_keeping(predicate, false)
    }

    /// The records whose `predicate` is `keep`.
    fn filter_keeping(
        mut self,
        predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
        keep: bool,
    ) -> Self {
        let f = Arc::new(predicate);
        let (ks, vs, kc) = (
            self.key_serde.clone(),
            self.value_serde.clone(),
            self.key_changed,
        );
        self.child("KSTREAM-FILTER", ks, vs, kc, move |m| {
            ops::boxed::<K, V>(Filter {
                f: Arc::clone(&f),
                keep,
                children: m.children.to_vec(),
            })
        })
    }

    /// Each record as a new key and value (the key changes: a later grouping or join
    /// repartitions).
    #[must_use]
    pub fn map<KR: Data, VR: Data>(
        mut self,
        f: impl Fn(K, V) -> (KR, VR) + Send + Sync + 'static,
    ) -> KStream<KR, VR> {
        let f = Arc::new(f);
        let ks = same_serde(self.key_serde.as_ref());
        let vs = same_serde(self.value_serde.as_ref());
        self.child("KSTREAM-MAP", ks, vs, true, move |m| {
            ops::boxed::<K, V>(Map::<_, KR, VR> {
                f: Arc::clone(&f),
                children: m.children.to_vec(),
                out: PhantomData,
            })
        })
    }

    /// Each record's value mapped (the key is kept).
    #[must_use]
    pub fn map_values<VR: Data>(
        mut self,
        f: impl Fn(V) -> VR + Send + Sync + 'static,
    ) -> KStream<K, VR> {
        let f = Arc::new(f);
        let (ks, kc) = (self.key_serde.clone(), self.key_changed);
        let vs = same_serde(self.value_serde.as_ref());
        self.child("KSTREAM-MAPVALUES", ks, vs, kc, move |m| {
            ops::boxed::<K, V>(MapValues::<_, VR> {
                f: Arc::clone(&f),
                children: m.children.to_vec(),
                out: PhantomData,
            })
        })
    }

    /// Each record as zero or more records (the key changes).
    #[must_use]
    pub fn flat_map<KR: Data, VR: Data, I>(
        mut self,
        f: impl Fn(K, V) -> I + Send + Sync + 'static,
    ) -> KStream<KR, VR>
    where
        I: IntoIterator<Item = (KR, VR)> + 'static,
    {
        let f = Arc::new(f);
        let ks = same_serde(self.key_serde.as_ref());
        let vs = same_serde(self.value_serde.as_ref());
        self.child("KSTREAM-FLATMAP", ks, vs, true, move |m| {
            ops::boxed::<K, V>(FlatMap::<_, I> {
                f: Arc::clone(&f),
                children: m.children.to_vec(),
                out: PhantomData,
            })
        })
    }

    /// Each record's value as zero or more values, each with the record's key.
    #[must_use]
    pub fn flat_map_values<VR: Data, I>(
        mut self,
        f: impl Fn(V) -> I + Send + Sync + 'static,
    ) -> KStream<K, VR>
    where
        I: IntoIterator<Item = VR> + 'static,
    {
        let f = Arc::new(f);
        let (ks, kc) = (self.key_serde.clone(), self.key_changed);
        let vs = same_serde(self.value_serde.as_ref());
        self.child("KSTREAM-FLATMAPVALUES", ks, vs, kc, move |m| {
            ops::boxed::<K, V>(FlatMapValues::<_, I> {
                f: Arc::clone(&f),
                children: m.children.to_vec(),
                out: PhantomData,
            })
        })
    }

    /// A new key for each record (a later grouping or join repartitions).
    #[must_use]
    pub fn select_key<KR: Data>(
        mut self,
        f: impl Fn(&K, &V) -> KR + Send + Sync + 'static,
    ) -> KStream<KR, V> {
        let f = Arc::new(f);
        let vs = self.value_serde.clone();
        let ks = same_serde(self.key_serde.as_ref());
        self.child("KSTREAM-KEY-SELECT", ks, vs, true, move |m| {
            ops::boxed::<K, V>(SelectKey::<_, KR> {
                f: Arc::clone(&f),
                children: m.children.to_vec(),
                out: PhantomData,
            })
        })
    }

    /// Calls `f` on each record and passes it on.
    #[must_use]
    pub fn peek(mut self, f: impl Fn(&K, &V) + Send + Sync + 'static) -> KStream<K, V> {
        let f = Arc::new(f);
        let (ks, vs, kc) = (
            self.key_serde.clone(),
            self.value_serde.clone(),
            self.key_changed,
        );
        self.child("KSTREAM-PEEK", ks, vs, kc, move |m| {
            ops::boxed::<K, V>(Peek {
                f: Arc::clone(&f),
                children: m.children.to_vec(),
            })
        })
    }

    /// Calls `f` on each record (the stream ends here).
    pub fn foreach(mut self, f: impl Fn(K, V) + Send + Sync + 'static) {
        let f = Arc::new(f);
        let _: KStream<K, V> = self.child("KSTREAM-FOREACH", None, None, false, move |_| {
            ops::boxed::<K, V>(Foreach { f: Arc::clone(&f) })
        });
    }

    /// Splits the stream into branches by predicates (Kafka's `split()`): each record goes
    /// to the first branch whose predicate holds.
    #[must_use]
    pub fn split(mut self) -> BranchedStream<K, V> {
        let mut g = self.g.borrow_mut();
        let prefix = self.next_name.take();
        let name = g.name(prefix.as_deref(), "KSTREAM-BRANCH");
        let id = g.add(name.clone(), &[self.node], None);
        drop(g);
        BranchedStream {
            parent: self,
            node: id,
            prefix: prefix.unwrap_or(name),
            branches: Vec::new(),
        }
    }

    /// This stream and `other` as one.
    #[must_use]
    pub fn merge(mut self, other: &KStream<K, V>) -> KStream<K, V> {
        let mut g = self.g.borrow_mut();
        let name = g.name(self.next_name.take().as_deref(), "KSTREAM-MERGE");
        let id = g.add(name, &[self.node, other.node], None);
        set_make(&mut g, id, |m| {
            ops::boxed::<K, V>(Pass {
                children: m.children.to_vec(),
            })
        });
        drop(g);
        KStream {
            g: Rc::clone(&self.g),
            node: id,
            key_serde: self.key_serde.clone().or_else(|| other.key_serde.clone()),
            value_serde: self
                .value_serde
                .clone()
                .or_else(|| other.value_serde.clone()),
            key_changed: self.key_changed || other.key_changed,
            next_name: None,
        }
    }

    /// The serdes to write with: `given`, else the stream's own; a fault when neither is
    /// known.
    fn serdes(
        &self,
        key: Option<SharedSerde<K>>,
        value: Option<SharedSerde<V>>,
        what: &str,
    ) -> Option<(SharedSerde<K>, SharedSerde<V>)> {
        let key = key.or_else(|| self.key_serde.clone());
        let value = value.or_else(|| self.value_serde.clone());
        if let (Some(k), Some(v)) = (key, value) {
            return Some((k, v));
        }
        self.g.borrow_mut().errors.push(format!(
            "{what} needs serdes for its keys and values: the stream's types changed since its \
             source, so give them (Produced::with, Grouped::with, Repartitioned::with)"
        ));
        None
    }

    /// Writes each record to `topic`.
    pub fn to(mut self, topic: &str, produced: Produced<K, V>) {
        let Produced { key, value, name } = produced;
        let what = format!("the sink to '{topic}'");
        let Some((ks, vs)) = self.serdes(key, value, &what) else {
            return;
        };
        if name.is_some() {
            self.next_name = name;
        }
        let t = topic.to_string();
        let sink: KStream<K, V> = self.child("KSTREAM-SINK", None, None, false, move |_| {
            ops::boxed::<K, V>(Sink {
                topic: SinkTopic::Fixed(t.clone()),
                key: Arc::clone(&ks),
                value: Arc::clone(&vs),
                drop_null_keys: false,
                buf: BytesMut::new(),
            })
        });
        if let Some(n) = self.g.borrow_mut().nodes.get_mut(sink.node) {
            n.sinks = vec![Some(TopicRef::User(topic.to_string()))];
        }
    }

    /// Writes each record to the topic `choose` names for it (Kafka's
    /// `TopicNameExtractor`); the topics must exist.
    pub fn to_topic_of(
        mut self,
        choose: impl Fn(&K, &V) -> String + Send + Sync + 'static,
        produced: Produced<K, V>,
    ) {
        let Produced { key, value, name } = produced;
        let Some((ks, vs)) = self.serdes(key, value, "a sink with topics chosen per record") else {
            return;
        };
        if name.is_some() {
            self.next_name = name;
        }
        let choose: ops::TopicChooser<K, V> = Arc::new(choose);
        let sink: KStream<K, V> = self.child("KSTREAM-SINK", None, None, false, move |_| {
            ops::boxed::<K, V>(Sink {
                topic: SinkTopic::Chosen(Arc::clone(&choose)),
                key: Arc::clone(&ks),
                value: Arc::clone(&vs),
                drop_null_keys: false,
                buf: BytesMut::new(),
            })
        });
        if let Some(n) = self.g.borrow_mut().nodes.get_mut(sink.node) {
            n.sinks = vec![None];
        }
    }

    /// Sends the stream through the internal topic `<application.id>-<name>-repartition`,
    /// so records are partitioned by their current key, and reads it back (a new
    /// sub-topology).
    #[must_use]
    pub fn repartition(self, repartitioned: Repartitioned<K, V>) -> KStream<K, V> {
        let Repartitioned {
            key,
            value,
            name,
            partitions,
        } = repartitioned;
        let base = match name {
            Some(n) => n,
            None => self.g.borrow_mut().next_name("KSTREAM-REPARTITION"),
        };
        let serdes = self.serdes(key, value, &format!("the repartition '{base}'"));
        let how = partitions.map_or(PartitionsOf::Upstream(self.node), PartitionsOf::Fixed);
        self.through_repartition(&base, serdes, how)
    }

    /// A sink to the repartition topic `<base>-repartition` and a source reading it back.
    fn through_repartition(
        self,
        base: &str,
        serdes: Option<(SharedSerde<K>, SharedSerde<V>)>,
        partitions: PartitionsOf,
    ) -> KStream<K, V> {
        let Some((ks, vs)) = serdes else {
            return self;
        };
        let topic = TopicRef::Internal(format!("{base}-repartition"));
        let mut g = self.g.borrow_mut();
        let sink_name = g.next_name("KSTREAM-SINK");
        let (k, v, t) = (Arc::clone(&ks), Arc::clone(&vs), topic.clone());
        let sink = g.add(
            sink_name,
            &[self.node],
            Some(Arc::new(move |m: &Make<'_>| {
                ops::boxed::<K, V>(Sink {
                    topic: SinkTopic::Fixed(t.resolve(m.app)),
                    key: Arc::clone(&k),
                    value: Arc::clone(&v),
                    drop_null_keys: true,
                    buf: BytesMut::new(),
                })
            })),
        );
        if let Some(n) = g.nodes.get_mut(sink) {
            n.sinks = vec![Some(topic.clone())];
        }
        g.repartitions.push(RepartitionDef {
            topic: topic.clone(),
            partitions,
        });
        let source_name = g.next_name("KSTREAM-SOURCE");
        let (k, v) = (Arc::clone(&ks), Arc::clone(&vs));
        let source = g.add(
            source_name,
            &[],
            Some(Arc::new(move |m: &Make<'_>| -> Box<dyn ErasedNode> {
                Box::new(SourceNode(Box::new(Source {
                    key: Arc::clone(&k),
                    value: Arc::clone(&v),
                    children: m.children.to_vec(),
                    extractor: None,
                })))
            })),
        );
        if let Some(n) = g.nodes.get_mut(source) {
            n.sources = vec![topic];
        }
        drop(g);
        KStream {
            g: Rc::clone(&self.g),
            node: source,
            key_serde: Some(ks),
            value_serde: Some(vs),
            key_changed: false,
            next_name: None,
        }
    }

    /// Groups records by a new key (Kafka's `groupBy`): the aggregation that follows reads
    /// them through a repartition topic.
    #[must_use]
    pub fn group_by<KR: Data>(
        self,
        f: impl Fn(&K, &V) -> KR + Send + Sync + 'static,
        grouped: Grouped<KR, V>,
    ) -> KGroupedStream<KR, V> {
        self.select_key(f).group_by_key(grouped)
    }

    /// Groups records by their key (Kafka's `groupByKey`); repartitions first only if the
    /// key changed since the source.
    #[must_use]
    pub fn group_by_key(self, grouped: Grouped<K, V>) -> KGroupedStream<K, V> {
        let Grouped { key, value, name } = grouped;
        KGroupedStream {
            key: key.or_else(|| self.key_serde.clone()),
            value: value.or_else(|| self.value_serde.clone()),
            name,
            stream: self,
        }
    }

    /// Joins each record with the table's value for its key; records without one are
    /// dropped (an inner join). The stream and the table must be co-partitioned: the stream
    /// is repartitioned first if its key changed.
    #[must_use]
    pub fn join<VT: Data, VR: Data>(
        self,
        table: &KTable<K, VT>,
        joiner: impl Fn(&V, &VT) -> VR + Send + Sync + 'static,
    ) -> KStream<K, VR> {
        self.table_join(
            table,
            Arc::new(move |v: &V, t: Option<&VT>| t.map(|t| joiner(v, t))),
        )
    }

    /// As [`KStream::join`], keeping records without a table value (`None`).
    #[must_use]
    pub fn left_join<VT: Data, VR: Data>(
        self,
        table: &KTable<K, VT>,
        joiner: impl Fn(&V, Option<&VT>) -> VR + Send + Sync + 'static,
    ) -> KStream<K, VR> {
        self.table_join(
            table,
            Arc::new(move |v: &V, t: Option<&VT>| Some(joiner(v, t))),
        )
    }

    fn table_join<VT: Data, VR: Data>(
        mut self,
        table: &KTable<K, VT>,
        joiner: ops::Joiner<V, VT, VR>,
    ) -> KStream<K, VR> {
        let Some(store) = table.store else {
            self.g.borrow_mut().errors.push(
                "a stream-table join needs a materialized table (a source table, an \
                 aggregation, or filter/map_values with Materialized)"
                    .into(),
            );
            return KStream {
                g: Rc::clone(&self.g),
                node: self.node,
                key_serde: self.key_serde,
                value_serde: None,
                key_changed: self.key_changed,
                next_name: None,
            };
        };
        let name = self
            .next_name
            .take()
            .unwrap_or_else(|| self.g.borrow_mut().next_name("KSTREAM-JOIN"));
        let mut stream = if self.key_changed {
            let key = self.key_serde.clone().or_else(|| table.key_serde.clone());
            let serdes = self.serdes(key, None, &format!("the join '{name}'"));
            self.through_repartition(
                &format!("{name}-left"),
                serdes,
                PartitionsOf::SameAs(table.node),
            )
        } else {
            self
        };
        let mut g = stream.g.borrow_mut();
        let id = g.add(name, &[stream.node], None);
        g.union(id, table.node);
        if let Some(n) = g.nodes.get_mut(id) {
            n.stores.push(store);
        }
        set_make(&mut g, id, move |m| {
            ops::boxed::<K, V>(StreamTableJoin::<K, VT, V, VR> {
                store,
                joiner: Arc::clone(&joiner),
                children: m.children.to_vec(),
                out: PhantomData,
            })
        });
        drop(g);
        stream.next_name = None;
        KStream {
            g: Rc::clone(&stream.g),
            node: id,
            key_serde: stream.key_serde.clone(),
            value_serde: same_serde(stream.value_serde.as_ref()),
            key_changed: false,
            next_name: None,
        }
    }
}

impl<K: Data, V: Data> KStream<K, V> {
    /// Joins each record with the other stream's records of its key at most the window's
    /// time difference apart (Kafka's `KStream#join(KStream, ValueJoiner, JoinWindows,
    /// StreamJoined)`): one result per pair, at the later of the two times. Each side is
    /// kept in a join store with a changelog (`compact,delete`, kept for the window and
    /// the grace plus a day); both streams are repartitioned first if their keys changed,
    /// and must be co-partitioned.
    #[must_use]
    pub fn join_windowed<VO: Data, VR: Data>(
        self,
        other: &KStream<K, VO>,
        joiner: impl Fn(&V, &VO) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
        joined: StreamJoined<K, V, VO>,
    ) -> KStream<K, VR> {
        self.stream_join(
            other,
            ("KSTREAM-JOINTHIS", "KSTREAM-JOINOTHER"),
            (false, false),
            windows,
            joined,
            &(Arc::new(move |a: Option<&V>, b: Option<&VO>| Some(joiner(a?, b?)))
                as StreamJoiner<V, VO, VR>),
        )
    }

    /// As [`KStream::join_windowed`], and each record of this stream that joined nothing
    /// with `None`, once no record can join it any more (Kafka's `leftJoin`).
    #[must_use]
    pub fn left_join_windowed<VO: Data, VR: Data>(
        self,
        other: &KStream<K, VO>,
        joiner: impl Fn(&V, Option<&VO>) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
        joined: StreamJoined<K, V, VO>,
    ) -> KStream<K, VR> {
        self.stream_join(
            other,
            ("KSTREAM-JOINTHIS", "KSTREAM-OUTEROTHER"),
            (true, false),
            windows,
            joined,
            &(Arc::new(move |a: Option<&V>, b: Option<&VO>| Some(joiner(a?, b)))
                as StreamJoiner<V, VO, VR>),
        )
    }

    /// As [`KStream::left_join_windowed`], for the records of both streams (Kafka's
    /// `outerJoin`).
    #[must_use]
    pub fn outer_join_windowed<VO: Data, VR: Data>(
        self,
        other: &KStream<K, VO>,
        joiner: impl Fn(Option<&V>, Option<&VO>) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
        joined: StreamJoined<K, V, VO>,
    ) -> KStream<K, VR> {
        self.stream_join(
            other,
            ("KSTREAM-OUTERTHIS", "KSTREAM-OUTEROTHER"),
            (true, true),
            windows,
            joined,
            &(Arc::new(move |a: Option<&V>, b: Option<&VO>| Some(joiner(a, b)))
                as StreamJoiner<V, VO, VR>),
        )
    }

    #[allow(clippy::too_many_lines)]
    fn stream_join<VO: Data, VR: Data>(
        self,
        other: &KStream<K, VO>,
        prefixes: (&str, &str),
        unjoined: (bool, bool),
        windows: JoinWindows,
        joined: StreamJoined<K, V, VO>,
        joiner: &StreamJoiner<V, VO, VR>,
    ) -> KStream<K, VR> {
        let g = Rc::clone(&self.g);
        if let Some(e) = windows.invalid() {
            g.borrow_mut().errors.push(e);
        }
        let StreamJoined {
            key,
            value,
            other: other_value,
            name,
        } = joined;
        let key = key
            .or_else(|| self.key_serde.clone())
            .or_else(|| other.key_serde.clone());
        let value = value.or_else(|| self.value_serde.clone());
        let other_value = other_value.or_else(|| other.value_serde.clone());
        let (Some(key), Some(value), Some(other_value)) = (key, value, other_value) else {
            g.borrow_mut().errors.push(
                "a stream-stream join needs serdes for its key and both streams' values \
                 (StreamJoined::with)"
                    .into(),
            );
            return KStream {
                g: Rc::clone(&g),
                node: self.node,
                key_serde: None,
                value_serde: None,
                key_changed: false,
                next_name: None,
            };
        };
        let this_name = g.borrow_mut().next_name(prefixes.0);
        // A side repartitioned alone takes the other side's partition count.
        let (left_changed, right_changed) = (self.key_changed, other.key_changed);
        let (left_up, right_up) = (self.node, other.node);
        let left = if left_changed {
            let partitions = if right_changed {
                PartitionsOf::Upstream(left_up)
            } else {
                PartitionsOf::SameAs(right_up)
            };
            self.through_repartition(
                &format!("{this_name}-left"),
                Some((Arc::clone(&key), Arc::clone(&value))),
                partitions,
            )
        } else {
            self
        };
        let right = if right_changed {
            let partitions = if left_changed {
                PartitionsOf::Upstream(right_up)
            } else {
                PartitionsOf::SameAs(left_up)
            };
            other.clone().through_repartition(
                &format!("{this_name}-right"),
                Some((Arc::clone(&key), Arc::clone(&other_value))),
                partitions,
            )
        } else {
            other.clone()
        };
        let mut gb = g.borrow_mut();
        let other_name = gb.next_name(prefixes.1);
        let outer = if unjoined.0 || unjoined.1 {
            "outer-"
        } else {
            ""
        };
        let (this_store_name, other_store_name) = match &name {
            Some(n) => (
                format!("{n}-{outer}this-join-store"),
                format!("{n}-{outer}other-join-store"),
            ),
            None => (format!("{this_name}-store"), format!("{other_name}-store")),
        };
        let left_node = gb.add(this_name, &[left.node], None);
        let right_node = gb.add(other_name, &[right.node], None);
        let merge_name = gb.next_name("KSTREAM-MERGE");
        let merge = gb.add(merge_name, &[left_node, right_node], None);
        let vs = Arc::clone(&value);
        let this_store = gb.add_store(
            this_store_name,
            left_node,
            Arc::new(
                move |changelog: String| -> Box<dyn super::store::ErasedStore> {
                    Box::new(JoinStore::<V>::new(changelog, Arc::clone(&vs), unjoined.0))
                },
            ),
        );
        let os = Arc::clone(&other_value);
        let other_store = gb.add_store(
            other_store_name,
            right_node,
            Arc::new(
                move |changelog: String| -> Box<dyn super::store::ErasedStore> {
                    Box::new(JoinStore::<VO>::new(changelog, Arc::clone(&os), unjoined.1))
                },
            ),
        );
        for st in [this_store, other_store] {
            if let Some(def) = gb.stores.get_mut(st) {
                def.retention_ms = Some(windows.retention_ms());
            }
        }
        // Each side reads the other's store: one task.
        for (n, st) in [(left_node, other_store), (right_node, this_store)] {
            if let Some(d) = gb.nodes.get_mut(n) {
                d.stores.push(st);
            }
        }
        let side = |is_left: bool| {
            let (joiner, key) = (Arc::clone(joiner), Arc::clone(&key));
            move || StreamJoinSide::<K, V, VO, VR> {
                left: is_left,
                this: if is_left { this_store } else { other_store },
                other: if is_left { other_store } else { this_store },
                windows,
                forward_unjoined: if is_left { unjoined.0 } else { unjoined.1 },
                other_forwards_unjoined: if is_left { unjoined.1 } else { unjoined.0 },
                joiner: Arc::clone(&joiner),
                key_serde: Arc::clone(&key),
                children: Vec::new(),
                scratch: BytesMut::new(),
                out: PhantomData,
            }
        };
        let make_left = side(true);
        set_make(&mut gb, left_node, move |m| {
            let mut s = make_left();
            s.children = m.children.to_vec();
            ops::boxed::<K, V>(JoinLeft(s))
        });
        let make_right = side(false);
        set_make(&mut gb, right_node, move |m| {
            let mut s = make_right();
            s.children = m.children.to_vec();
            ops::boxed::<K, VO>(JoinRight(s))
        });
        set_make(&mut gb, merge, move |m| {
            ops::boxed::<K, VR>(Pass {
                children: m.children.to_vec(),
            })
        });
        drop(gb);
        KStream {
            g,
            node: merge,
            key_serde: Some(key),
            value_serde: None,
            key_changed: false,
            next_name: None,
        }
    }
}

impl<K: Data, V: Data> KStream<K, V> {
    /// Runs a processor on each record (Kafka's `KStream#process`): `supplier` makes one
    /// per task; `stores` names the state stores it uses (added with
    /// `StreamsBuilder::add_state_store`). What it forwards is a stream of `KR` keys and
    /// `VR` values; a grouping or join downstream repartitions it (the key may have
    /// changed).
    pub fn process<KR: Data, VR: Data, P>(
        mut self,
        supplier: impl Fn() -> P + Send + Sync + 'static,
        stores: &[&str],
    ) -> KStream<KR, VR>
    where
        P: Processor<K, V, KR, VR> + 'static,
    {
        let mut g = self.g.borrow_mut();
        let name = g.name(self.next_name.take().as_deref(), "KSTREAM-PROCESSOR");
        let id = g.add(name.clone(), &[self.node], None);
        let mut connected = Vec::new();
        for s in stores {
            match g.stores.iter().position(|d| d.name == *s) {
                Some(store) => {
                    connected.push(((*s).to_string(), store));
                    // Every user of a store is in one sub-topology (one task holds it).
                    let users: Vec<NodeId> = (0..g.nodes.len())
                        .filter(|&n| g.nodes.get(n).is_some_and(|d| d.stores.contains(&store)))
                        .collect();
                    for n in users {
                        g.union(n, id);
                    }
                    if let Some(n) = g.nodes.get_mut(id) {
                        n.stores.push(store);
                    }
                }
                None => g.errors.push(format!(
                    "the processor '{name}' names the store '{s}', which was not added \
                     (StreamsBuilder::add_state_store)"
                )),
            }
        }
        let connected = Arc::new(connected);
        set_make(&mut g, id, move |m| {
            ops::boxed::<K, V>(ProcessNode::<K, V, KR, VR> {
                processor: Box::new(supplier()),
                children: m.children.to_vec(),
                stores: Arc::clone(&connected),
            })
        });
        drop(g);
        KStream {
            g: Rc::clone(&self.g),
            node: id,
            key_serde: None,
            value_serde: None,
            key_changed: true,
            next_name: None,
        }
    }
}

/// A stream being split (Kafka's `BranchedKStream`).
pub struct BranchedStream<K, V> {
    parent: KStream<K, V>,
    node: NodeId,
    prefix: String,
    branches: Vec<(Predicate<K, V>, String, NodeId)>,
}

impl<K: Data, V: Data> BranchedStream<K, V> {
    /// A branch named `<split name><name>` of the records for which `predicate` holds (and
    /// no earlier branch's did).
    #[must_use]
    pub fn branch(
        mut self,
        name: &str,
        predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
    ) -> Self {
        let id = self.add_child(name);
        self.branches
            .push((Arc::new(predicate), format!("{}{name}", self.prefix), id));
        self
    }

    fn add_child(&self, name: &str) -> NodeId {
        let mut g = self.parent.g.borrow_mut();
        let child = format!("{}{name}", self.prefix);
        let child = g.name(Some(&child), "KSTREAM-BRANCHCHILD");
        let id = g.add(child, &[self.node], None);
        set_make(&mut g, id, |m| {
            ops::boxed::<K, V>(Pass {
                children: m.children.to_vec(),
            })
        });
        id
    }

    /// The branches by name, with a last branch `<split name><name>` for the records no
    /// predicate took.
    pub fn default_branch(self, name: &str) -> BTreeMap<String, KStream<K, V>> {
        let id = self.add_child(name);
        let default = (format!("{}{name}", self.prefix), id);
        self.finish(Some(default))
    }

    /// The branches by name; records no predicate took are dropped.
    pub fn no_default_branch(self) -> BTreeMap<String, KStream<K, V>> {
        self.finish(None)
    }

    fn finish(self, default: Option<(String, NodeId)>) -> BTreeMap<String, KStream<K, V>> {
        let routes: Vec<(Predicate<K, V>, NodeId)> = self
            .branches
            .iter()
            .map(|(p, _, id)| (Arc::clone(p), *id))
            .collect();
        let default_id = default.as_ref().map(|(_, id)| *id);
        set_make(&mut self.parent.g.borrow_mut(), self.node, move |_| {
            ops::boxed::<K, V>(Branch {
                branches: routes.clone(),
                default: default_id,
            })
        });
        let mut out = BTreeMap::new();
        for (name, id) in self
            .branches
            .iter()
            .map(|(_, n, id)| (n.clone(), *id))
            .chain(default)
        {
            out.insert(
                name,
                KStream {
                    g: Rc::clone(&self.parent.g),
                    node: id,
                    key_serde: self.parent.key_serde.clone(),
                    value_serde: self.parent.value_serde.clone(),
                    key_changed: self.parent.key_changed,
                    next_name: None,
                },
            );
        }
        out
    }
}

/// A stream grouped by key, to aggregate (Kafka's `KGroupedStream`).
pub struct KGroupedStream<K, V> {
    stream: KStream<K, V>,
    key: Option<SharedSerde<K>>,
    value: Option<SharedSerde<V>>,
    name: Option<String>,
}

impl<K: Data, V: Data> KGroupedStream<K, V> {
    /// The number of records of each key, in a store (its changelog in `i64`s, Kafka's
    /// `LongSerde`).
    pub fn count(self, materialized: Materialized<K, i64>) -> KTable<K, i64> {
        let materialized = if materialized.value.is_none() {
            materialized.with_value_serde(super::serde::Serdes::i64())
        } else {
            materialized
        };
        self.aggregate_with(
            "KSTREAM-AGGREGATE",
            Arc::new(|_: &K, _: V, old: Option<i64>| old.unwrap_or(0) + 1),
            materialized,
        )
    }

    /// Each key's values combined by `reducer` (the first value as it is).
    pub fn reduce(
        self,
        reducer: impl Fn(V, V) -> V + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> KTable<K, V> {
        let materialized = match (&materialized.value, &self.value) {
            (None, Some(v)) => materialized.with_value_serde(Arc::clone(v)),
            _ => materialized,
        };
        self.aggregate_with(
            "KSTREAM-REDUCE",
            Arc::new(move |_: &K, v: V, old: Option<V>| match old {
                Some(a) => reducer(a, v),
                None => v,
            }),
            materialized,
        )
    }

    /// Each key's aggregate: `initializer()` updated by `aggregator` with each value.
    pub fn aggregate<A: Data>(
        self,
        initializer: impl Fn() -> A + Send + Sync + 'static,
        aggregator: impl Fn(&K, V, A) -> A + Send + Sync + 'static,
        materialized: Materialized<K, A>,
    ) -> KTable<K, A> {
        self.aggregate_with(
            "KSTREAM-AGGREGATE",
            Arc::new(move |k: &K, v: V, old: Option<A>| {
                aggregator(k, v, old.unwrap_or_else(&initializer))
            }),
            materialized,
        )
    }

    fn aggregate_with<A: Data>(
        self,
        prefix: &str,
        step: ops::Step<K, V, A>,
        materialized: Materialized<K, A>,
    ) -> KTable<K, A> {
        self.aggregate_node(
            prefix,
            materialized,
            &|k, v| kv_store(k, v),
            &|k| Arc::clone(k),
            None,
            move |store, caching, _key, m| {
                ops::boxed::<K, V>(Aggregate::<K, V, A> {
                    store,
                    step: Arc::clone(&step),
                    caching,
                    children: m.children.to_vec(),
                    pending_bytes: 0,
                })
            },
        )
    }

    /// Windows of `windows` for the next aggregation (Kafka's `windowedBy`): its table is
    /// keyed by `Windowed<K>`.
    pub fn windowed_by(self, windows: TimeWindows) -> TimeWindowedKStream<K, V> {
        if let Some(e) = windows.invalid() {
            self.stream.g.borrow_mut().errors.push(e);
        }
        TimeWindowedKStream {
            grouped: self,
            windows,
        }
    }

    /// Sliding windows for the next aggregation (Kafka's `windowedBy(SlidingWindows)`): its
    /// table is keyed by `Windowed<K>`, each window the time difference long.
    pub fn windowed_by_sliding(self, windows: SlidingWindows) -> SlidingWindowedKStream<K, V> {
        SlidingWindowedKStream {
            grouped: self,
            windows,
        }
    }

    /// Session windows for the next aggregation (Kafka's `windowedBy(SessionWindows)`):
    /// its table is keyed by `Windowed<K>` with each session's bounds.
    pub fn windowed_by_session(self, windows: SessionWindows) -> SessionWindowedKStream<K, V> {
        if let Some(e) = windows.invalid() {
            self.stream.g.borrow_mut().errors.push(e);
        }
        SessionWindowedKStream {
            grouped: self,
            windows,
        }
    }

    /// The aggregation's node and store: through a repartition topic when the key changed
    /// upstream, the store `make_store` makes from the key and value serdes (`retention`: a
    /// window or session store's, in ms), and the table keyed with `table_key`.
    #[allow(clippy::type_complexity)]
    fn aggregate_node<KT: Data, A: Data>(
        self,
        prefix: &str,
        materialized: Materialized<K, A>,
        make_store: &dyn Fn(&SharedSerde<K>, &SharedSerde<A>) -> MakeStore,
        table_key: &dyn Fn(&SharedSerde<K>) -> SharedSerde<KT>,
        retention: Option<i64>,
        node: impl Fn(StoreId, bool, &SharedSerde<K>, &Make<'_>) -> Box<dyn ErasedNode>
        + Send
        + Sync
        + 'static,
    ) -> KTable<KT, A> {
        let Materialized {
            name: store,
            key: materialized_key,
            value: store_value,
            caching,
            store_type,
        } = materialized;
        let KGroupedStream {
            stream,
            key,
            value,
            name,
        } = self;
        let g = Rc::clone(&stream.g);
        let store_name = match &store {
            Some(n) => n.clone(),
            None => g.borrow_mut().next_name(&format!("{prefix}-STATE-STORE")),
        };
        // The store's key serde serves the repartition topic too (one key type).
        let key = key.or_else(|| materialized_key.clone());
        // The repartition topic is named after the grouping, else the store.
        let stream = if stream.key_changed {
            let base = name.clone().unwrap_or_else(|| store_name.clone());
            let serdes = stream.serdes(key.clone(), value, &format!("the grouping '{base}'"));
            let upstream = stream.node;
            stream.through_repartition(&base, serdes, PartitionsOf::Upstream(upstream))
        } else {
            stream
        };
        let key = materialized_key.or(key);
        let Some(key) = key else {
            g.borrow_mut().errors.push(format!(
                "the store '{store_name}' needs a key serde (Grouped::with or Materialized)"
            ));
            return KTable::broken(&g, stream.node);
        };
        let Some(value) = store_value else {
            g.borrow_mut().errors.push(format!(
                "the store '{store_name}' needs a value serde (Materialized::with)"
            ));
            return KTable::broken(&g, stream.node);
        };
        let mut gb = g.borrow_mut();
        let node_name = gb.next_name(prefix);
        let id = gb.add(node_name, &[stream.node], None);
        let store = gb.add_store(store_name, id, make_store(&key, &value));
        if let (Some(r), Some(def)) = (retention, gb.stores.get_mut(store)) {
            def.retention_ms = Some(r);
        }
        // A key-value aggregation's store may be kept in a file; windowed ones stay in memory.
        if retention.is_none() {
            persistable(&mut gb, store, store_type);
        }
        let node_key = Arc::clone(&key);
        set_make(&mut gb, id, move |m| node(store, caching, &node_key, m));
        drop(gb);
        KTable {
            g,
            node: id,
            store: Some(store),
            key_serde: Some(table_key(&key)),
            value_serde: Some(value),
            next_name: None,
        }
    }
}

/// A grouped stream with windows (Kafka's `TimeWindowedKStream`): its aggregations keep one
/// value per key and window, in a window store whose changelog is `compact,delete` with
/// the store's retention plus a day, as Kafka's.
pub struct TimeWindowedKStream<K, V> {
    grouped: KGroupedStream<K, V>,
    windows: TimeWindows,
}

impl<K: Data, V: Data> TimeWindowedKStream<K, V> {
    /// The number of records of each key in each window.
    pub fn count(self, materialized: Materialized<K, i64>) -> KTable<Windowed<K>, i64> {
        let materialized = if materialized.value.is_none() {
            materialized.with_value_serde(super::serde::Serdes::i64())
        } else {
            materialized
        };
        self.aggregate_with(
            "KSTREAM-AGGREGATE",
            Arc::new(|_: &K, _: V, old: Option<i64>| old.unwrap_or(0) + 1),
            materialized,
        )
    }

    /// Each key's values in each window combined by `reducer`.
    pub fn reduce(
        self,
        reducer: impl Fn(V, V) -> V + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> KTable<Windowed<K>, V> {
        let materialized = match (&materialized.value, &self.grouped.value) {
            (None, Some(v)) => materialized.with_value_serde(Arc::clone(v)),
            _ => materialized,
        };
        self.aggregate_with(
            "KSTREAM-REDUCE",
            Arc::new(move |_: &K, v: V, old: Option<V>| match old {
                Some(a) => reducer(a, v),
                None => v,
            }),
            materialized,
        )
    }

    /// Each key's aggregate in each window: `initializer()` updated by `aggregator`.
    pub fn aggregate<A: Data>(
        self,
        initializer: impl Fn() -> A + Send + Sync + 'static,
        aggregator: impl Fn(&K, V, A) -> A + Send + Sync + 'static,
        materialized: Materialized<K, A>,
    ) -> KTable<Windowed<K>, A> {
        self.aggregate_with(
            "KSTREAM-AGGREGATE",
            Arc::new(move |k: &K, v: V, old: Option<A>| {
                aggregator(k, v, old.unwrap_or_else(&initializer))
            }),
            materialized,
        )
    }

    fn aggregate_with<A: Data>(
        self,
        prefix: &str,
        step: ops::Step<K, V, A>,
        materialized: Materialized<K, A>,
    ) -> KTable<Windowed<K>, A> {
        let windows = self.windows;
        let size = windows.size_ms();
        // Kafka's default retention: the window size plus the grace period.
        let retention = size.saturating_add(windows.grace_ms());
        let store = move |k: &SharedSerde<K>, v: &SharedSerde<A>| -> MakeStore {
            let key: SharedSerde<Windowed<K>> = Arc::new(WindowStoreKeySerde {
                inner: Arc::clone(k),
                size_ms: size,
            });
            kv_store(&key, v)
        };
        let table_key = move |k: &SharedSerde<K>| -> SharedSerde<Windowed<K>> {
            Arc::new(TimeWindowedSerde::new(Arc::clone(k), windows.size()))
        };
        let grace = windows.grace_ms();
        let table = self.grouped.aggregate_node(
            prefix,
            materialized,
            &store,
            &table_key,
            Some(retention),
            move |store, caching, _key, m| {
                let step = Arc::clone(&step);
                let inner: ops::Step<Windowed<K>, V, A> =
                    Arc::new(move |k: &Windowed<K>, v: V, old: Option<A>| step(&k.key, v, old));
                ops::boxed::<K, V>(WindowAggregate::<K, V, A> {
                    windows,
                    inner: Aggregate {
                        store,
                        step: inner,
                        caching,
                        children: m.children.to_vec(),
                        pending_bytes: 0,
                    },
                    stream_time: i64::MIN,
                    retention_ms: retention,
                    expired_before: i64::MIN,
                })
            },
        );
        table.g.borrow_mut().grace.insert(table.node, grace);
        table
    }
}

/// A grouped stream with session windows (Kafka's `SessionWindowedKStream`): its
/// aggregations keep one value per key and session, in a session store whose changelog is
/// `compact,delete` with the gap and grace plus a day. Each change goes downstream at once
/// (no record cache): a session merged into another is deleted (a tombstone), the merged
/// one updated.
pub struct SessionWindowedKStream<K, V> {
    grouped: KGroupedStream<K, V>,
    windows: SessionWindows,
}

impl<K: Data, V: Data> SessionWindowedKStream<K, V> {
    /// The number of records of each key in each session.
    pub fn count(self, materialized: Materialized<K, i64>) -> KTable<Windowed<K>, i64> {
        let materialized = if materialized.value.is_none() {
            materialized.with_value_serde(super::serde::Serdes::i64())
        } else {
            materialized
        };
        self.aggregate_with(
            "KSTREAM-AGGREGATE",
            Arc::new(|_: &K, _: V, old: Option<i64>| old.unwrap_or(0) + 1),
            None,
            Arc::new(|_: &K, a: i64, b: i64| a + b),
            materialized,
        )
    }

    /// Each key's values in each session combined by `reducer` (which also merges two
    /// sessions' results).
    pub fn reduce(
        self,
        reducer: impl Fn(V, V) -> V + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> KTable<Windowed<K>, V> {
        let materialized = match (&materialized.value, &self.grouped.value) {
            (None, Some(v)) => materialized.with_value_serde(Arc::clone(v)),
            _ => materialized,
        };
        let reducer = Arc::new(reducer);
        let merge = Arc::clone(&reducer);
        self.aggregate_with(
            "KSTREAM-REDUCE",
            Arc::new(move |_: &K, v: V, old: Option<V>| match old {
                Some(a) => reducer(a, v),
                None => v,
            }),
            None,
            Arc::new(move |_: &K, a: V, b: V| merge(a, b)),
            materialized,
        )
    }

    /// Each key's aggregate in each session: `initializer()` updated by `aggregator`; the
    /// sessions a record reaches are combined by `merger` (Kafka's `Merger`), starting from
    /// `initializer()`, as Kafka's.
    pub fn aggregate<A: Data>(
        self,
        initializer: impl Fn() -> A + Send + Sync + 'static,
        aggregator: impl Fn(&K, V, A) -> A + Send + Sync + 'static,
        merger: impl Fn(&K, A, A) -> A + Send + Sync + 'static,
        materialized: Materialized<K, A>,
    ) -> KTable<Windowed<K>, A> {
        let initializer: Arc<dyn Fn() -> A + Send + Sync> = Arc::new(initializer);
        let init = Arc::clone(&initializer);
        self.aggregate_with(
            "KSTREAM-AGGREGATE",
            Arc::new(move |k: &K, v: V, old: Option<A>| {
                aggregator(k, v, old.unwrap_or_else(|| init()))
            }),
            Some(initializer),
            Arc::new(merger),
            materialized,
        )
    }

    #[allow(clippy::type_complexity)]
    fn aggregate_with<A: Data>(
        self,
        prefix: &str,
        step: ops::Step<K, V, A>,
        init: Option<Arc<dyn Fn() -> A + Send + Sync>>,
        merge: Merger<K, A>,
        materialized: Materialized<K, A>,
    ) -> KTable<Windowed<K>, A> {
        let windows = self.windows;
        let make_store = |_: &SharedSerde<K>, v: &SharedSerde<A>| -> MakeStore {
            let v = Arc::clone(v);
            Arc::new(
                move |changelog: String| -> Box<dyn super::store::ErasedStore> {
                    Box::new(SessionStore::<A>::new(changelog, Arc::clone(&v)))
                },
            )
        };
        let table_key = |k: &SharedSerde<K>| -> SharedSerde<Windowed<K>> {
            Arc::new(SessionWindowedSerde::new(Arc::clone(k)))
        };
        let table = self.grouped.aggregate_node(
            prefix,
            materialized,
            &make_store,
            &table_key,
            Some(windows.retention_ms()),
            move |store, _caching, key, m| {
                ops::boxed::<K, V>(SessionAggregate::<K, V, A> {
                    store,
                    windows,
                    step: Arc::clone(&step),
                    init: init.clone(),
                    merge: Arc::clone(&merge),
                    key_serde: Arc::clone(key),
                    children: m.children.to_vec(),
                    stream_time: i64::MIN,
                    expired_before: i64::MIN,
                    scratch: BytesMut::new(),
                })
            },
        );
        // What `suppress(until_window_closes)` downstream waits for.
        table
            .g
            .borrow_mut()
            .grace
            .insert(table.node, windows.close_after_ms());
        // Its store holds sessions, not rows: a join or processor cannot read it as a table.
        KTable {
            store: None,
            ..table
        }
    }
}

/// A grouped stream with sliding windows (Kafka's `TimeWindowedKStream` over
/// `SlidingWindows`): the records are kept in a store with a `compact,delete` changelog
/// (the difference and grace, plus a day), and each open window a record falls in goes
/// downstream with its aggregate, at once (no record cache).
pub struct SlidingWindowedKStream<K, V> {
    grouped: KGroupedStream<K, V>,
    windows: SlidingWindows,
}

impl<K: Data, V: Data> SlidingWindowedKStream<K, V> {
    /// The number of records of each key in each window.
    pub fn count(self, materialized: Materialized<K, i64>) -> KTable<Windowed<K>, i64> {
        let materialized = if materialized.value.is_none() {
            materialized.with_value_serde(super::serde::Serdes::i64())
        } else {
            materialized
        };
        self.aggregate_with(
            "KSTREAM-AGGREGATE",
            Arc::new(|_: &K, _: V, old: Option<i64>| old.unwrap_or(0) + 1),
            materialized,
        )
    }

    /// Each key's values in each window combined by `reducer`.
    pub fn reduce(
        self,
        reducer: impl Fn(V, V) -> V + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> KTable<Windowed<K>, V> {
        let materialized = match (&materialized.value, &self.grouped.value) {
            (None, Some(v)) => materialized.with_value_serde(Arc::clone(v)),
            _ => materialized,
        };
        self.aggregate_with(
            "KSTREAM-REDUCE",
            Arc::new(move |_: &K, v: V, old: Option<V>| match old {
                Some(a) => reducer(a, v),
                None => v,
            }),
            materialized,
        )
    }

    /// Each key's aggregate in each window: `initializer()` updated by `aggregator` with
    /// the window's records, oldest first.
    pub fn aggregate<A: Data>(
        self,
        initializer: impl Fn() -> A + Send + Sync + 'static,
        aggregator: impl Fn(&K, V, A) -> A + Send + Sync + 'static,
        materialized: Materialized<K, A>,
    ) -> KTable<Windowed<K>, A> {
        self.aggregate_with(
            "KSTREAM-AGGREGATE",
            Arc::new(move |k: &K, v: V, old: Option<A>| {
                aggregator(k, v, old.unwrap_or_else(&initializer))
            }),
            materialized,
        )
    }

    fn aggregate_with<A: Data>(
        self,
        prefix: &str,
        step: ops::Step<K, V, A>,
        materialized: Materialized<K, A>,
    ) -> KTable<Windowed<K>, A> {
        let windows = self.windows;
        let g = Rc::clone(&self.grouped.stream.g);
        let Some(values) = self
            .grouped
            .value
            .clone()
            .or_else(|| self.grouped.stream.value_serde.clone())
        else {
            g.borrow_mut().errors.push(
                "a sliding-window aggregation keeps its records: it needs the stream's value \
                 serde (Grouped::with)"
                    .into(),
            );
            return KTable::broken(&g, self.grouped.stream.node);
        };
        let make_store = move |_: &SharedSerde<K>, _: &SharedSerde<A>| -> MakeStore {
            let v = Arc::clone(&values);
            Arc::new(
                move |changelog: String| -> Box<dyn super::store::ErasedStore> {
                    Box::new(JoinStore::<V>::new(changelog, Arc::clone(&v), false))
                },
            )
        };
        let table_key = move |k: &SharedSerde<K>| -> SharedSerde<Windowed<K>> {
            Arc::new(TimeWindowedSerde::new(Arc::clone(k), windows.size()))
        };
        let table = self.grouped.aggregate_node(
            prefix,
            materialized,
            &make_store,
            &table_key,
            Some(windows.retention_ms()),
            move |store, _caching, key, m| {
                ops::boxed::<K, V>(SlidingAggregate::<K, V, A> {
                    store,
                    windows,
                    step: Arc::clone(&step),
                    key_serde: Arc::clone(key),
                    children: m.children.to_vec(),
                    scratch: BytesMut::new(),
                })
            },
        );
        table
            .g
            .borrow_mut()
            .grace
            .insert(table.node, windows.grace_ms());
        // Its store holds records, not rows: a join or processor cannot read it as a table.
        KTable {
            store: None,
            ..table
        }
    }
}

/// A table: the latest value of each key (Kafka's `KTable`).
pub struct KTable<K, V> {
    g: Rc<RefCell<Graph>>,
    node: NodeId,
    store: Option<StoreId>,
    key_serde: Option<SharedSerde<K>>,
    value_serde: Option<SharedSerde<V>>,
    next_name: Option<String>,
}

impl<K, V> Clone for KTable<K, V> {
    fn clone(&self) -> Self {
        KTable {
            g: Rc::clone(&self.g),
            node: self.node,
            store: self.store,
            key_serde: self.key_serde.clone(),
            value_serde: self.value_serde.clone(),
            next_name: None,
        }
    }
}

impl<K: Data, V: Data> KTable<K, V> {
    fn broken(g: &Rc<RefCell<Graph>>, node: NodeId) -> KTable<K, V> {
        KTable {
            g: Rc::clone(g),
            node,
            store: None,
            key_serde: None,
            value_serde: None,
            next_name: None,
        }
    }

    /// Names the next operator's node.
    #[must_use]
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.next_name = Some(name.into());
        self
    }

    /// The name of the table's store, when it has one.
    pub fn store_name(&self) -> Option<String> {
        let g = self.g.borrow();
        self.store
            .and_then(|s| g.stores.get(s).map(|d| d.name.clone()))
    }

    fn child_table<V2: Data>(
        &mut self,
        prefix: &str,
        value_serde: Option<SharedSerde<V2>>,
        make: impl Fn(&Make<'_>) -> Box<dyn ErasedNode> + Send + Sync + 'static,
        materialized: Option<Materialized<K, V2>>,
    ) -> KTable<K, V2> {
        let mut g = self.g.borrow_mut();
        let name = g.name(self.next_name.take().as_deref(), prefix);
        let id = g.add(name, &[self.node], Some(Arc::new(make)));
        let mut node = id;
        let mut store = None;
        let mut value_serde = value_serde;
        if let Some(m) = materialized {
            let store_name = match &m.name {
                Some(n) => n.clone(),
                None => g.next_name(&format!("{prefix}-STATE-STORE")),
            };
            let key = m.key.clone().or_else(|| self.key_serde.clone());
            let value = m.value.clone().or_else(|| value_serde.clone());
            match (key, value) {
                (Some(key), Some(value)) => {
                    let (kept, in_store) =
                        materialize_node(&mut g, id, store_name, &key, &value);
                    persistable(&mut g, in_store, m.store_type);
                    node = kept;
                    store = Some(in_store);
                    value_serde = Some(value);
                }
                _ => g.errors.push(format!(
                    "the store '{store_name}' needs serdes for its keys and values (Materialized::with)"
                )),
            }
        }
        drop(g);
        KTable {
            g: Rc::clone(&self.g),
            node,
            store,
            key_serde: self.key_serde.clone(),
            value_serde,
            next_name: None,
        }
    }

    /// Holds the table's updates back and forwards each key's latest once it is due
    /// (Kafka's `suppress`): `Suppressed::until_window_closes` forwards one final result
    /// per window of a windowed aggregation upstream, `Suppressed::until_time_limit` a
    /// key's latest value a time after its first update held. The buffer is a store with a
    /// changelog (`<application.id>-<name>-store-changelog` when named), restored with its
    /// task; a full buffer shuts the thread down or emits early, as its `BufferConfig` says.
    #[must_use]
    pub fn suppress(mut self, suppressed: Suppressed<K>) -> KTable<K, V> {
        let Suppressed {
            due,
            final_results,
            buffer,
            name,
        } = suppressed;
        let mut g = self.g.borrow_mut();
        let grace = g.grace_upstream(self.node);
        if final_results {
            if buffer.full_policy() == BufferFull::EmitEarly {
                g.errors.push(
                    "suppress(until_window_closes) cannot emit early: it promises one final                      result per window (use shut_down_when_full)"
                        .into(),
                );
            }
            if grace.is_none() {
                g.errors.push(
                    "suppress(until_window_closes) needs a windowed aggregation upstream".into(),
                );
            }
        }
        let node_name = match &name {
            Some(n) => n.clone(),
            None => g.name(self.next_name.take().as_deref(), "KTABLE-SUPPRESS"),
        };
        let id = g.add(node_name.clone(), &[self.node], None);
        let (Some(key), Some(value)) = (self.key_serde.clone(), self.value_serde.clone()) else {
            g.errors.push(format!(
                "the suppression '{node_name}' needs the table's key and value serdes \
                 (Materialized::with upstream)"
            ));
            drop(g);
            return KTable::broken(&self.g, id);
        };
        let store_name = match &name {
            Some(n) => format!("{n}-store"),
            None => g.next_name("KTABLE-SUPPRESS-STATE-STORE"),
        };
        let buffered: SharedSerde<Buffered<V>> = Arc::new(BufferedSerde(Arc::clone(&value)));
        let store = add_kv_store(&mut g, store_name, id, &key, &buffered);
        let grace_ms = grace.unwrap_or(0);
        let value_serde = Arc::clone(&value);
        set_make(&mut g, id, move |m| {
            ops::boxed::<K, Option<V>>(Suppress::<K, V> {
                store,
                due: Arc::clone(&due),
                grace_ms,
                buffer,
                final_results,
                name: node_name.clone(),
                value_serde: Arc::clone(&value_serde),
                children: m.children.to_vec(),
                stream_time: i64::MIN,
                order: std::collections::BTreeSet::new(),
                due_of: std::collections::HashMap::new(),
                bytes: 0,
                indexed: false,
                scratch: BytesMut::new(),
                out: PhantomData,
            })
        });
        drop(g);
        KTable {
            g: Rc::clone(&self.g),
            node: id,
            store: None,
            key_serde: Some(key),
            value_serde: Some(value),
            next_name: None,
        }
    }

    /// Joins this table with `other` on the key (Kafka's `KTable#join`): a row wherever
    /// both tables have one, `joiner(left, right)`, updated when either side changes (a
    /// row that loses its match is deleted). Both tables need stores (a source table, an
    /// aggregation, or `filter`/`map_values` with `Materialized`) and co-partitioned topics.
    #[must_use]
    pub fn join<V2: Data, VR: Data>(
        self,
        other: &KTable<K, V2>,
        joiner: impl Fn(&V, &V2) -> VR + Send + Sync + 'static,
    ) -> KTable<K, VR> {
        self.table_join(
            other,
            "KTABLE-JOIN",
            Arc::new(move |a: Option<&V>, b: Option<&V2>| Some(joiner(a?, b?))),
        )
    }

    /// As [`KTable::join`], with a row for every row of this table (`None` for the other
    /// side when it has none; Kafka's `leftJoin`).
    #[must_use]
    pub fn left_join<V2: Data, VR: Data>(
        self,
        other: &KTable<K, V2>,
        joiner: impl Fn(&V, Option<&V2>) -> VR + Send + Sync + 'static,
    ) -> KTable<K, VR> {
        self.table_join(
            other,
            "KTABLE-LEFTJOIN",
            Arc::new(move |a: Option<&V>, b: Option<&V2>| Some(joiner(a?, b))),
        )
    }

    /// As [`KTable::join`], with a row wherever either table has one (Kafka's
    /// `outerJoin`).
    #[must_use]
    pub fn outer_join<V2: Data, VR: Data>(
        self,
        other: &KTable<K, V2>,
        joiner: impl Fn(Option<&V>, Option<&V2>) -> VR + Send + Sync + 'static,
    ) -> KTable<K, VR> {
        self.table_join(
            other,
            "KTABLE-OUTERJOIN",
            Arc::new(move |a: Option<&V>, b: Option<&V2>| {
                (a.is_some() || b.is_some()).then(|| joiner(a, b))
            }),
        )
    }

    fn table_join<V2: Data, VR: Data>(
        mut self,
        other: &KTable<K, V2>,
        prefix: &str,
        joiner: ops::TableJoiner<V, V2, VR>,
    ) -> KTable<K, VR> {
        let mut g = self.g.borrow_mut();
        let name = g.name(self.next_name.take().as_deref(), prefix);
        let (Some(mine), Some(theirs)) = (self.store, other.store) else {
            g.errors.push(format!(
                "the table join '{name}' needs both tables in stores (a source table, an \
                 aggregation, or filter/map_values with Materialized)"
            ));
            drop(g);
            return KTable::broken(&self.g, self.node);
        };
        let left = g.add(format!("{name}-left"), &[self.node], None);
        let right = g.add(format!("{name}-right"), &[other.node], None);
        let merge = g.add(format!("{name}-merge"), &[left, right], None);
        // Each side reads the other's store: one task (co-partitioned inputs).
        for (n, s) in [(left, theirs), (right, mine)] {
            if let Some(d) = g.nodes.get_mut(n) {
                d.stores.push(s);
            }
        }
        let j = Arc::clone(&joiner);
        set_make(&mut g, left, move |m| {
            ops::boxed::<K, Option<V>>(LeftOf(TableTableJoin::<K, V, V2, VR> {
                other: theirs,
                joiner: Arc::clone(&j),
                children: m.children.to_vec(),
                out: PhantomData,
            }))
        });
        set_make(&mut g, right, move |m| {
            ops::boxed::<K, Option<V2>>(RightOf(TableTableJoin::<K, V, V2, VR> {
                other: mine,
                joiner: Arc::clone(&joiner),
                children: m.children.to_vec(),
                out: PhantomData,
            }))
        });
        set_make(&mut g, merge, move |m| {
            ops::boxed::<K, Option<VR>>(Pass {
                children: m.children.to_vec(),
            })
        });
        drop(g);
        KTable {
            g: Rc::clone(&self.g),
            node: merge,
            store: None,
            key_serde: self.key_serde.clone(),
            value_serde: None,
            next_name: None,
        }
    }

    /// The rows for which `predicate` holds; a row that stops matching is deleted.
    #[must_use]
    pub fn filter(
        mut self,
        predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
    ) -> KTable<K, V> {
        let f = Arc::new(predicate);
        let vs = self.value_serde.clone();
        self.child_table(
            "KTABLE-FILTER",
            vs,
            move |m| {
                ops::boxed::<K, Option<V>>(TableFilter {
                    f: Arc::clone(&f),
                    keep: true,
                    children: m.children.to_vec(),
                })
            },
            None,
        )
    }

    /// As [`KTable::filter`], kept in a store (so it can be joined or queried).
    #[must_use]
    pub fn filter_materialized(
        mut self,
        predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> KTable<K, V> {
        let f = Arc::new(predicate);
        let vs = self.value_serde.clone();
        self.child_table(
            "KTABLE-FILTER",
            vs,
            move |m| {
                ops::boxed::<K, Option<V>>(TableFilter {
                    f: Arc::clone(&f),
                    keep: true,
                    children: m.children.to_vec(),
                })
            },
            Some(materialized),
        )
    }

    /// Each row's value mapped.
    #[must_use]
    pub fn map_values<VR: Data>(
        mut self,
        f: impl Fn(V) -> VR + Send + Sync + 'static,
    ) -> KTable<K, VR> {
        let f = Arc::new(f);
        let vs = same_serde(self.value_serde.as_ref());
        self.child_table(
            "KTABLE-MAPVALUES",
            vs,
            move |m| {
                ops::boxed::<K, Option<V>>(TableMapValues::<_, VR> {
                    f: Arc::clone(&f),
                    children: m.children.to_vec(),
                    out: PhantomData,
                })
            },
            None,
        )
    }

    /// As [`KTable::map_values`], kept in a store.
    #[must_use]
    pub fn map_values_materialized<VR: Data>(
        mut self,
        f: impl Fn(V) -> VR + Send + Sync + 'static,
        materialized: Materialized<K, VR>,
    ) -> KTable<K, VR> {
        let f = Arc::new(f);
        let vs = same_serde(self.value_serde.as_ref());
        self.child_table(
            "KTABLE-MAPVALUES",
            vs,
            move |m| {
                ops::boxed::<K, Option<V>>(TableMapValues::<_, VR> {
                    f: Arc::clone(&f),
                    children: m.children.to_vec(),
                    out: PhantomData,
                })
            },
            Some(materialized),
        )
    }

    /// The table's updates as a stream (deletes are left out; see
    /// [`KTable::to_stream_with_tombstones`]).
    #[must_use]
    pub fn to_stream(mut self) -> KStream<K, V> {
        let id = self.changes(false);
        KStream {
            g: Rc::clone(&self.g),
            node: id,
            key_serde: self.key_serde.clone(),
            value_serde: self.value_serde.clone(),
            key_changed: false,
            next_name: None,
        }
    }

    /// The table's changes as a stream, a delete as `None` (written as a tombstone).
    #[must_use]
    pub fn to_stream_with_tombstones(mut self) -> KStream<K, Option<V>> {
        let id = self.changes(true);
        KStream {
            g: Rc::clone(&self.g),
            node: id,
            key_serde: self.key_serde.clone(),
            value_serde: self.value_serde.clone().map(super::serde::Serdes::nullable),
            key_changed: false,
            next_name: None,
        }
    }

    fn changes(&mut self, tombstones: bool) -> NodeId {
        let mut g = self.g.borrow_mut();
        let name = g.name(self.next_name.take().as_deref(), "KTABLE-TOSTREAM");
        let id = g.add(name, &[self.node], None);
        set_make(&mut g, id, move |m| {
            ops::boxed::<K, Option<V>>(ToStream::<V> {
                tombstones,
                children: m.children.to_vec(),
                out: PhantomData,
            })
        });
        id
    }
}
