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
}

/// A node as the arena holds it, whatever its types.
pub(crate) trait ErasedNode: Send {
    fn as_any(&mut self) -> &mut dyn Any;

    fn flush(&mut self, cx: &mut Cx<'_>) -> Result<()>;
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
        let r = match node.as_any().downcast_mut::<Typed<K, V>>() {
            Some(t) => t.0.process(self, key, value),
            None => Err(internal("a node's record types do not match its parent's")),
        };
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
