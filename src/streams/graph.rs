//! A topology as built: processor nodes, stores and internal topics, split into
//! sub-topologies (nodes joined by records or stores; cut at repartition topics).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Arc;

use super::node::{ErasedNode, NodeId, StoreId};
use super::store::ErasedStore;
use crate::error::{Error, Result};

/// A topic a node reads or writes: the user's, or an internal one named
/// `<application.id>-<suffix>` once the application is known.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TopicRef {
    User(String),
    Internal(String),
}

impl TopicRef {
    pub fn resolve(&self, app: &str) -> String {
        match self {
            TopicRef::User(t) => t.clone(),
            TopicRef::Internal(suffix) => format!("{app}-{suffix}"),
        }
    }
}

/// What a node's factory is told when a task instantiates it.
pub(crate) struct Make<'a> {
    pub children: &'a [NodeId],
    pub app: &'a str,
}

pub(crate) type MakeNode = Arc<dyn Fn(&Make<'_>) -> Box<dyn ErasedNode> + Send + Sync>;
pub(crate) type MakeStore = Arc<dyn Fn(String) -> Box<dyn ErasedStore> + Send + Sync>;

pub(crate) struct NodeDef {
    pub name: String,
    pub children: Vec<NodeId>,
    pub make: Option<MakeNode>,
    /// Topics a source node reads.
    pub sources: Vec<TopicRef>,
    /// Topics a sink node writes (`None` in the list: chosen per record).
    pub sinks: Vec<Option<TopicRef>>,
    pub stores: Vec<StoreId>,
}

pub(crate) struct StoreDef {
    pub name: String,
    pub make: MakeStore,
    /// A window store's retention in ms: its changelog is `compact,delete`, kept this long
    /// plus a day (Kafka's `windowstore.changelog.additional.retention.ms`).
    pub retention_ms: Option<i64>,
    /// A key-value store that may be persistent: `Some` its type as the topology set it,
    /// `None` (with `persistable`) the application's `default.dsl.store`.
    pub store_type: Option<StoreType>,
    /// A key-value store (an aggregation's, a table's, a processor's): it may be kept in a
    /// file. Window, session, join and suppression stores are kept in memory.
    pub persistable: bool,
}

/// Where a key-value store keeps its entries (Kafka's `Materialized.StoreType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreType {
    /// In memory, rebuilt from its changelog when its task starts (`IN_MEMORY`).
    InMemory,
    /// In a file under `state.dir` with the changelog offset it reflects, so a restart
    /// replays only the changelog's tail, and state may be larger than memory (Kafka's
    /// `ROCKS_DB`; here a redb file).
    Persistent,
}

impl StoreDef {
    /// Kafka's changelog name: `<application.id>-<store>-changelog`.
    pub fn changelog(&self) -> TopicRef {
        TopicRef::Internal(format!("{}-changelog", self.name))
    }
}

/// How many partitions a repartition topic gets.
#[derive(Debug, Clone, Copy)]
pub(crate) enum PartitionsOf {
    /// As many as the most of the sources upstream of this node.
    Upstream(NodeId),
    /// As many as the sources of this node's sub-topology (a join's table).
    SameAs(NodeId),
    Fixed(i32),
}

pub(crate) struct RepartitionDef {
    pub topic: TopicRef,
    pub partitions: PartitionsOf,
}

/// The topology under construction (shared by the builder's handles).
#[derive(Default)]
pub(crate) struct Graph {
    pub nodes: Vec<NodeDef>,
    /// Union-find over nodes: nodes with one root are one sub-topology.
    pub parent: Vec<NodeId>,
    pub stores: Vec<StoreDef>,
    pub repartitions: Vec<RepartitionDef>,
    /// Kafka's running index of generated names.
    pub counter: usize,
    /// Faults found while building, reported when the topology is built or started.
    pub errors: Vec<String>,
    pub names: BTreeSet<String>,
    /// Windowed aggregations' grace periods (ms), by node: what `suppress` downstream
    /// waits for.
    pub grace: BTreeMap<NodeId, i64>,
}

impl Graph {
    /// The next generated name: `<prefix>-0000000007`, as Kafka's.
    pub fn next_name(&mut self, prefix: &str) -> String {
        let name = format!("{prefix}-{:010}", self.counter);
        self.counter += 1;
        name
    }

    /// `given`, or a generated name with `prefix`; a second node of one name is a fault.
    pub fn name(&mut self, given: Option<&str>, prefix: &str) -> String {
        let name = match given {
            Some(n) => {
                self.counter += 1;
                n.to_string()
            }
            None => self.next_name(prefix),
        };
        if !self.names.insert(name.clone()) {
            self.errors.push(format!(
                "two processors are named '{name}': names must be unique"
            ));
        }
        name
    }

    /// Adds a node (its factory may come later), child of `parents`, in their sub-topology.
    pub fn add(&mut self, name: String, parents: &[NodeId], make: Option<MakeNode>) -> NodeId {
        let id = self.nodes.len();
        self.nodes.push(NodeDef {
            name,
            children: Vec::new(),
            make,
            sources: Vec::new(),
            sinks: Vec::new(),
            stores: Vec::new(),
        });
        self.parent.push(id);
        for p in parents {
            if let Some(n) = self.nodes.get_mut(*p) {
                n.children.push(id);
            }
            self.union(*p, id);
        }
        id
    }

    /// The longest grace period of the windowed aggregations upstream of `node` (itself
    /// included; the nearest on each path), as Kafka finds it for `suppress`.
    pub fn grace_upstream(&self, node: NodeId) -> Option<i64> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![node];
        let mut found: Option<i64> = None;
        while let Some(n) = todo.pop() {
            if !seen.insert(n) {
                continue;
            }
            if let Some(g) = self.grace.get(&n) {
                found = Some(found.map_or(*g, |f| f.max(*g)));
                continue;
            }
            todo.extend(
                self.nodes
                    .iter()
                    .enumerate()
                    .filter(|(_, d)| d.children.contains(&n))
                    .map(|(p, _)| p),
            );
        }
        found
    }

    pub fn root(&self, mut n: NodeId) -> NodeId {
        while let Some(&p) = self.parent.get(n) {
            if p == n {
                break;
            }
            n = p;
        }
        n
    }

    pub fn union(&mut self, a: NodeId, b: NodeId) {
        let (ra, rb) = (self.root(a), self.root(b));
        if ra != rb
            && let Some(slot) = self.parent.get_mut(ra.max(rb))
        {
            *slot = ra.min(rb);
        }
    }

    pub fn add_store(&mut self, name: String, owner: NodeId, make: MakeStore) -> StoreId {
        let id = self.stores.len();
        if self.stores.iter().any(|s| s.name == name) {
            self.errors.push(format!(
                "two stores are named '{name}': names must be unique"
            ));
        }
        self.stores.push(StoreDef {
            name,
            make,
            retention_ms: None,
            store_type: None,
            persistable: false,
        });
        if let Some(n) = self.nodes.get_mut(owner) {
            n.stores.push(id);
        }
        id
    }
}

/// A sub-topology: its nodes (in id order, a topological order), its sources and stores.
#[derive(Debug, Clone)]
pub(crate) struct SubTopology {
    pub id: usize,
    pub nodes: Vec<NodeId>,
    /// Source topics and the node reading each.
    pub sources: Vec<(TopicRef, NodeId)>,
    pub stores: Vec<StoreId>,
}

/// A topology ready to run: what [`super::StreamsBuilder::build`] returns.
#[derive(Clone)]
pub struct Topology {
    pub(crate) graph: Arc<Graph>,
    pub(crate) subs: Arc<Vec<SubTopology>>,
}

impl std::fmt::Debug for Topology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Topology {
    pub(crate) fn new(graph: Graph) -> Result<Topology> {
        if !graph.errors.is_empty() {
            return Err(Error::Streams {
                reason: format!("invalid topology: {}", graph.errors.join("; ")),
            });
        }
        if graph.nodes.is_empty() {
            return Err(Error::Streams {
                reason: "invalid topology: it has no source (call stream or table)".into(),
            });
        }
        if let Some(n) = graph.nodes.iter().find(|n| n.make.is_none()) {
            return Err(Error::Streams {
                reason: format!(
                    "invalid topology: '{}' was left unfinished (a split needs its branches)",
                    n.name
                ),
            });
        }
        // A topic is read by one source, as Kafka requires.
        let mut read: BTreeMap<&TopicRef, &str> = BTreeMap::new();
        for n in &graph.nodes {
            for t in &n.sources {
                if let Some(first) = read.insert(t, &n.name) {
                    return Err(Error::Streams {
                        reason: format!(
                            "invalid topology: the topic '{}' is read by two sources ({first} \
                             and {}): read it once and share the stream",
                            topic_text(t),
                            n.name
                        ),
                    });
                }
            }
        }
        let mut by_root: BTreeMap<NodeId, Vec<NodeId>> = BTreeMap::new();
        for id in 0..graph.nodes.len() {
            by_root.entry(graph.root(id)).or_default().push(id);
        }
        let subs = by_root
            .into_values()
            .enumerate()
            .map(|(i, nodes)| {
                let mut sources = Vec::new();
                let mut stores = Vec::new();
                for &n in &nodes {
                    if let Some(def) = graph.nodes.get(n) {
                        sources.extend(def.sources.iter().map(|t| (t.clone(), n)));
                        stores.extend(def.stores.iter().copied());
                    }
                }
                stores.sort_unstable();
                stores.dedup();
                SubTopology {
                    id: i,
                    nodes,
                    sources,
                    stores,
                }
            })
            .collect();
        Ok(Topology {
            graph: Arc::new(graph),
            subs: Arc::new(subs),
        })
    }

    /// The topology as Kafka's `TopologyDescription` prints it: sub-topologies, their
    /// sources, processors, sinks and stores (internal topics with their suffix).
    pub fn describe(&self) -> String {
        let g = &self.graph;
        let mut out = String::from("Topologies:\n");
        for sub in self.subs.iter() {
            let _ = writeln!(out, "   Sub-topology: {}", sub.id);
            for &n in &sub.nodes {
                let Some(def) = g.nodes.get(n) else {
                    continue;
                };
                let children: Vec<&str> = def
                    .children
                    .iter()
                    .filter_map(|c| g.nodes.get(*c).map(|d| d.name.as_str()))
                    .collect();
                let stores: Vec<&str> = def
                    .stores
                    .iter()
                    .filter_map(|s| g.stores.get(*s).map(|d| d.name.as_str()))
                    .collect();
                if !def.sources.is_empty() {
                    let topics: Vec<String> = def.sources.iter().map(topic_text).collect();
                    let _ = writeln!(
                        out,
                        "    Source: {} (topics: [{}])",
                        def.name,
                        topics.join(", ")
                    );
                } else if !def.sinks.is_empty() {
                    let topics: Vec<String> = def
                        .sinks
                        .iter()
                        .map(|t| {
                            t.as_ref()
                                .map_or_else(|| "<chosen per record>".into(), topic_text)
                        })
                        .collect();
                    let _ = writeln!(out, "    Sink: {} (topic: {})", def.name, topics.join(", "));
                } else {
                    let _ = writeln!(
                        out,
                        "    Processor: {} (stores: [{}])",
                        def.name,
                        stores.join(", ")
                    );
                }
                if !children.is_empty() {
                    let _ = writeln!(out, "      --> {}", children.join(", "));
                }
            }
        }
        out
    }

    /// The store names, in the order they were added.
    pub fn store_names(&self) -> Vec<String> {
        self.graph.stores.iter().map(|s| s.name.clone()).collect()
    }
}

fn topic_text(t: &TopicRef) -> String {
    match t {
        TopicRef::User(t) => t.clone(),
        TopicRef::Internal(s) => format!("<application.id>-{s}"),
    }
}
