//! A task: one sub-topology's processors and stores for one partition.

use std::any::Any;
use std::collections::{HashMap, VecDeque};

use bytes::Bytes;

use super::graph::{Make, StoreType, SubTopology, Topology};
use super::node::{Cx, ErasedNode, NodeId, Output, PunctuationType, Schedule, internal};
use super::ops::{Raw, SourceNode};
use super::store::ErasedStore;
use crate::error::Result;
use crate::record::Header;

/// A task's id: its sub-topology and partition (Kafka's `0_1`).
pub(crate) type TaskId = (usize, i32);

pub(crate) struct Task {
    pub id: TaskId,
    nodes: Vec<Option<Box<dyn ErasedNode>>>,
    stores: Vec<Option<Box<dyn ErasedStore>>>,
    /// Source topic (resolved) to the node that reads it.
    sources: HashMap<String, NodeId>,
    order: Vec<NodeId>,
    store_ids: Vec<usize>,
    store_names: HashMap<String, usize>,
    /// Key-value stores that may be kept in files: index, name, type as the topology set it.
    persistable: Vec<(usize, String, Option<StoreType>)>,
    /// Records read but not yet processed, by source topic: a task reading several
    /// partitions processes their records in timestamp order (a join's table before the
    /// stream records after it).
    pub held: HashMap<String, VecDeque<Held>>,
    /// Records dropped since the count was last taken (late, or with a negative timestamp).
    pub dropped: u64,
    /// The punctuations its processors scheduled.
    schedules: Vec<Schedule>,
    /// The largest timestamp it has read (`i64::MIN`: none yet).
    stream_time: i64,
    /// The wall clock its processors see (ms since the epoch; the driver's own clock).
    pub wall_time: i64,
}

/// A record held until it is its turn.
pub(crate) struct Held {
    pub offset: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub timestamp: i64,
    pub headers: Vec<Header>,
}

impl Held {
    pub fn of(r: &crate::ConsumerRecord<'_>) -> Held {
        Held {
            offset: r.offset(),
            key: r.key().map(Bytes::copy_from_slice),
            value: r.value().map(Bytes::copy_from_slice),
            timestamp: r.timestamp(),
            headers: r
                .headers()
                .map(|(k, v)| Header {
                    key: k.to_string(),
                    value: v.map(Bytes::copy_from_slice),
                })
                .collect(),
        }
    }
}

impl Task {
    pub fn new(topology: &Topology, sub: &SubTopology, partition: i32, app: &str) -> Task {
        let g = &topology.graph;
        let mut nodes: Vec<Option<Box<dyn ErasedNode>>> =
            (0..g.nodes.len()).map(|_| None).collect();
        for &n in &sub.nodes {
            if let (Some(def), Some(slot)) = (g.nodes.get(n), nodes.get_mut(n))
                && let Some(make) = &def.make
            {
                *slot = Some(make(&Make {
                    children: &def.children,
                    app,
                }));
            }
        }
        let mut stores: Vec<Option<Box<dyn ErasedStore>>> =
            (0..g.stores.len()).map(|_| None).collect();
        let mut store_names = HashMap::new();
        let mut persistable = Vec::new();
        for &s in &sub.stores {
            if let (Some(def), Some(slot)) = (g.stores.get(s), stores.get_mut(s)) {
                *slot = Some((def.make)(def.changelog().resolve(app)));
                store_names.insert(def.name.clone(), s);
                if def.persistable {
                    persistable.push((s, def.name.clone(), def.store_type));
                }
            }
        }
        let sources = sub
            .sources
            .iter()
            .map(|(t, n)| (t.resolve(app), *n))
            .collect();
        Task {
            id: (sub.id, partition),
            nodes,
            stores,
            sources,
            order: sub.nodes.clone(),
            store_ids: sub.stores.clone(),
            store_names,
            persistable,
            held: HashMap::new(),
            dropped: 0,
            schedules: Vec::new(),
            stream_time: i64::MIN,
            wall_time: 0,
        }
    }

    fn cx<'a>(&'a mut self, out: &'a mut dyn Output, timestamp: i64, cache: usize) -> Cx<'a> {
        Cx {
            nodes: &mut self.nodes,
            stores: &mut self.stores,
            timestamp,
            out,
            cache_max_bytes: cache,
            dropped: &mut self.dropped,
            node: usize::MAX,
            schedules: &mut self.schedules,
            stream_time: self.stream_time,
            wall_time: self.wall_time,
        }
    }

    /// Initializes its nodes (after its stores are restored), in topological order.
    pub fn init(&mut self, out: &mut dyn Output, cache: usize) -> Result<()> {
        for id in self.order.clone() {
            let Some(mut node) = self.nodes.get_mut(id).and_then(Option::take) else {
                continue;
            };
            let r = {
                let mut cx = self.cx(out, self.wall_time, cache);
                cx.node = id;
                node.init(&mut cx)
            };
            if let Some(slot) = self.nodes.get_mut(id) {
                *slot = Some(node);
            }
            r?;
        }
        Ok(())
    }

    /// Runs the punctuations of `kind` due at `now` (stream time or wall clock), each once
    /// at `now`, then due again one interval after the last due time past `now` (missed
    /// ones are skipped, as Kafka skips them).
    pub fn punctuate(
        &mut self,
        kind: PunctuationType,
        now: i64,
        out: &mut dyn Output,
        cache: usize,
    ) -> Result<()> {
        let mut i = 0;
        while let Some(s) = self.schedules.get_mut(i) {
            i += 1;
            if s.cancelled || s.kind != kind {
                continue;
            }
            let Some(due) = s.next else {
                // A stream-time schedule made before any record: due one interval after
                // the first.
                s.next = Some(now.saturating_add(s.interval));
                continue;
            };
            if due > now {
                continue;
            }
            let interval = s.interval.max(1);
            let missed = (now - due) / interval;
            s.next = Some(due.saturating_add(interval.saturating_mul(missed + 1)));
            let (node_id, schedule) = (s.node, u32::try_from(i - 1).unwrap_or(u32::MAX));
            let Some(mut node) = self.nodes.get_mut(node_id).and_then(Option::take) else {
                continue;
            };
            let r = {
                let mut cx = self.cx(out, now, cache);
                cx.node = node_id;
                node.punctuate(&mut cx, schedule, now)
            };
            if let Some(slot) = self.nodes.get_mut(node_id) {
                *slot = Some(node);
            }
            r?;
        }
        Ok(())
    }

    /// The node that reads `topic`.
    pub fn source(&self, topic: &str) -> Result<NodeId> {
        self.sources
            .get(topic)
            .copied()
            .ok_or_else(|| internal("a record of a topic this task does not read"))
    }

    /// The source topics (resolved).
    pub fn source_topics(&self) -> impl Iterator<Item = &str> {
        self.sources.keys().map(String::as_str)
    }

    /// Whether this task reads more than one topic (its records are then held and taken in
    /// timestamp order).
    pub fn reads_several(&self) -> bool {
        self.sources.len() > 1
    }

    /// Whether `topic` is read as a table.
    pub fn reads_as_table(&mut self, topic: &str) -> bool {
        let Some(&id) = self.sources.get(topic) else {
            return false;
        };
        self.nodes
            .get_mut(id)
            .and_then(Option::as_mut)
            .and_then(|n| n.as_any().downcast_mut::<SourceNode>())
            .is_some_and(|s| s.is_table())
    }

    /// Processes one record read from `topic`.
    pub fn process(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        timestamp: i64,
        out: &mut dyn Output,
        cache: usize,
    ) -> Result<Raw> {
        let id = self.source(topic)?;
        self.process_at(id, topic, key, value, timestamp, out, cache)
    }

    /// Processes one record read from `topic` by its source node `id`.
    #[allow(clippy::too_many_arguments)]
    pub fn process_at(
        &mut self,
        id: NodeId,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        timestamp: i64,
        out: &mut dyn Output,
        cache: usize,
    ) -> Result<Raw> {
        let mut node = self
            .nodes
            .get_mut(id)
            .and_then(Option::take)
            .ok_or_else(|| internal("a source node is missing"))?;
        let (r, at) = match node.as_any().downcast_mut::<SourceNode>() {
            Some(s) => {
                let mut cx = self.cx(out, timestamp, cache);
                let r = s.raw(&mut cx, topic, key, value);
                // A timestamp extractor may have set the record's event time.
                (r, cx.timestamp)
            }
            None => (Err(internal("a source is not a source node")), timestamp),
        };
        if let Some(slot) = self.nodes.get_mut(id) {
            *slot = Some(node);
        }
        let r = r?;
        // The stream time follows the records processed, by their (extracted) event time.
        if matches!(r, Raw::Done) && at >= 0 {
            self.stream_time = self.stream_time.max(at);
        }
        if !self.schedules.is_empty() {
            self.punctuate(PunctuationType::StreamTime, self.stream_time, out, cache)?;
        }
        Ok(r)
    }

    /// Forwards what caches hold (in topological order) and writes the stores' changes to
    /// their changelogs.
    pub fn flush(&mut self, out: &mut dyn Output, cache: usize) -> Result<()> {
        let order = self.order.clone();
        for id in order {
            let Some(mut node) = self.nodes.get_mut(id).and_then(Option::take) else {
                continue;
            };
            let r = {
                let mut cx = self.cx(out, 0, cache);
                node.flush(&mut cx)
            };
            if let Some(slot) = self.nodes.get_mut(id) {
                *slot = Some(node);
            }
            r?;
        }
        let partition = self.id.1;
        for &s in &self.store_ids {
            if let Some(Some(store)) = self.stores.get_mut(s) {
                store.flush_changelog(partition, out)?;
            }
        }
        Ok(())
    }

    /// The changelog topics of this task's stores, with each store's index.
    pub fn changelogs(&self) -> Vec<(usize, String)> {
        self.store_ids
            .iter()
            .filter_map(|&s| {
                self.stores
                    .get(s)
                    .and_then(Option::as_ref)
                    .map(|st| (s, st.changelog().to_string()))
            })
            .collect()
    }

    /// Opens the files of its persistent stores (those the topology made persistent, or, when
    /// it did not say, all key-value stores when `default` is persistent) under `dir`:
    /// `<dir>/<sub-topology>_<partition>/<store>.redb`, as Kafka names task directories.
    pub fn open_backends(&mut self, dir: &std::path::Path, default: StoreType) -> Result<()> {
        let task_dir = dir.join(format!("{}_{}", self.id.0, self.id.1));
        for (s, name, t) in &self.persistable {
            if t.unwrap_or(default) != StoreType::Persistent {
                continue;
            }
            if let Some(Some(store)) = self.stores.get_mut(*s) {
                store.open_backend(&task_dir.join(format!("{name}.redb")))?;
            }
        }
        Ok(())
    }

    /// Store `s`, whatever its types.
    pub fn store_mut(&mut self, s: usize) -> Option<&mut Box<dyn ErasedStore>> {
        self.stores.get_mut(s).and_then(Option::as_mut)
    }

    /// The store named `name`, as its concrete type.
    pub fn store_any(&mut self, name: &str) -> Option<&mut dyn Any> {
        let s = *self.store_names.get(name)?;
        self.stores
            .get_mut(s)
            .and_then(Option::as_mut)
            .map(|st| st.as_any())
    }
}
