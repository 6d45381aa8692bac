//! Processors as a task runs them: typed nodes in an arena, records forwarded by node id.

use std::any::Any;

use super::store::ErasedStore;
use crate::error::{Error, Result};

/// A node's index in its topology.
pub(crate) type NodeId = usize;
/// A store's index in its topology.
pub(crate) type StoreId = usize;

/// Where a task's records go: output and internal topics (the producer, or the test driver).
pub(crate) trait Output {
    /// Sends a record, its key and value copied; `partition` `None` lets the key choose
    /// (Kafka's default partitioner).
    fn send(
        &mut self,
        topic: &str,
        partition: Option<i32>,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        timestamp: i64,
    ) -> Result<()>;
}

/// A processor of records with keys `K` and values `V`.
pub(crate) trait Node<K, V>: Send {
    /// Processes one record.
    fn process(&mut self, cx: &mut Cx<'_>, key: K, value: V) -> Result<()>;

    /// Forwards what it holds back (a cache) before a commit.
    fn flush(&mut self, cx: &mut Cx<'_>) -> Result<()> {
        let _ = cx;
        Ok(())
    }

    /// Called once when its task starts, after its stores are restored (a processor
    /// schedules its punctuations here).
    fn init(&mut self, cx: &mut Cx<'_>) -> Result<()> {
        let _ = cx;
        Ok(())
    }

    /// Runs a punctuation this node scheduled, at `time`.
    fn punctuate(&mut self, cx: &mut Cx<'_>, schedule: u32, time: i64) -> Result<()> {
        let _ = (cx, schedule, time);
        Ok(())
    }
}

/// A node as the arena holds it, whatever its types.
pub(crate) trait ErasedNode: Send {
    fn as_any(&mut self) -> &mut dyn Any;

    fn flush(&mut self, cx: &mut Cx<'_>) -> Result<()>;

    fn init(&mut self, cx: &mut Cx<'_>) -> Result<()> {
        let _ = cx;
        Ok(())
    }

    fn punctuate(&mut self, cx: &mut Cx<'_>, schedule: u32, time: i64) -> Result<()> {
        let _ = (cx, schedule, time);
        Ok(())
    }
}

pub(crate) fn internal(what: &str) -> Error {
    Error::Streams {
        reason: format!("internal: {what}"),
    }
}

/// A typed node in the arena.
pub(crate) struct Typed<K, V>(pub Box<dyn Node<K, V>>);

impl<K: 'static, V: 'static> ErasedNode for Typed<K, V> {
    fn as_any(&mut self) -> &mut dyn Any {
        self
    }

    fn flush(&mut self, cx: &mut Cx<'_>) -> Result<()> {
        self.0.flush(cx)
    }

    fn init(&mut self, cx: &mut Cx<'_>) -> Result<()> {
        self.0.init(cx)
    }

    fn punctuate(&mut self, cx: &mut Cx<'_>, schedule: u32, time: i64) -> Result<()> {
        self.0.punctuate(cx, schedule, time)
    }
}

/// When a punctuation runs (Kafka's `PunctuationType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PunctuationType {
    /// By stream time: when records move the task's stream time (the largest timestamp it
    /// has read) past the due time; a task that reads nothing does not punctuate.
    StreamTime,
    /// By the wall clock (the test driver's own clock, which `advance_wall_clock_time`
    /// moves).
    WallClockTime,
}

/// A punctuation a node scheduled.
pub(crate) struct Schedule {
    pub node: NodeId,
    pub interval: i64,
    pub kind: PunctuationType,
    /// When it next runs (`None`: a stream-time schedule made before any record; it is
    /// set from the first record's time).
    pub next: Option<i64>,
    pub cancelled: bool,
}

/// What a node sees while it processes: the task's other nodes and stores, the current
/// record's time and partition, and where records go.
pub(crate) struct Cx<'a> {
    pub nodes: &'a mut [Option<Box<dyn ErasedNode>>],
    pub stores: &'a mut [Option<Box<dyn ErasedStore>>],
    /// The current record's timestamp (outputs carry it, as Kafka's).
    pub timestamp: i64,
    pub out: &'a mut dyn Output,
    /// Kafka's `statestore.cache.max.bytes`: 0 forwards every update at once.
    pub cache_max_bytes: usize,
    /// The task's count of records dropped (late for their window, or without a valid
    /// timestamp): Kafka's `dropped-records` metric.
    pub dropped: &'a mut u64,
    /// The node being called (what a punctuation it schedules belongs to).
    pub node: NodeId,
    /// The task's punctuations.
    pub schedules: &'a mut Vec<Schedule>,
    /// The task's stream time: the largest timestamp it has read.
    pub stream_time: i64,
    /// The wall clock, in ms since the epoch (the test driver's own).
    pub wall_time: i64,
}

impl Cx<'_> {
    /// Forwards a record to each child (a copy for all but the last).
    pub fn forward<K: Clone + 'static, V: Clone + 'static>(
        &mut self,
        children: &[NodeId],
        key: K,
        value: V,
    ) -> Result<()> {
        let Some((last, rest)) = children.split_last() else {
            return Ok(());
        };
        for c in rest {
            self.call(*c, key.clone(), value.clone())?;
        }
        self.call(*last, key, value)
    }

    fn call<K: 'static, V: 'static>(&mut self, id: NodeId, key: K, value: V) -> Result<()> {
        let mut node = self
            .nodes
            .get_mut(id)
            .and_then(Option::take)
            .ok_or_else(|| internal("a node forwarded to itself or to no node"))?;
        let caller = std::mem::replace(&mut self.node, id);
        let r = match node.as_any().downcast_mut::<Typed<K, V>>() {
            Some(t) => t.0.process(self, key, value),
            None => Err(internal("a node's record types do not match its parent's")),
        };
        self.node = caller;
        if let Some(slot) = self.nodes.get_mut(id) {
            *slot = Some(node);
        }
        r
    }

    /// The store `id`, as its type.
    pub fn store<S: 'static>(&mut self, id: StoreId) -> Result<&mut S> {
        self.stores
            .get_mut(id)
            .and_then(Option::as_mut)
            .and_then(|s| s.as_any().downcast_mut::<S>())
            .ok_or_else(|| internal("a store is missing or of another type"))
    }
}
