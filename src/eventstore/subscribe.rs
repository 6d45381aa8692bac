//! Catch-up subscriptions: what is in the log from a position, then new events as they are
//! appended (woken by the partitions' notifiers), with checkpoints in consumer-group offsets.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::group::offsets::OffsetAndMetadata;
use crate::types::TopicPartition;
use crate::wait::Notifier;

use super::{EventStore, ReadDirection, RecordedEvent};

/// Events fetched per read while catching up.
const FETCH: usize = 512;
/// The metadata prefix of a stream subscription's checkpoint.
const VERSION_PREFIX: &str = "es.next-version=";

/// A position in `$all`: the next offset to read in each partition of the event topic.
/// There is no total order across partitions; a topic with one partition has one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AllPosition {
    pub(super) offsets: Vec<i64>,
}

impl AllPosition {
    /// A position from per-partition offsets (the next offset to read in each).
    pub fn new(offsets: Vec<i64>) -> AllPosition {
        AllPosition { offsets }
    }

    /// The start of a topic with `partitions` partitions.
    pub fn start(partitions: i32) -> AllPosition {
        AllPosition {
            offsets: vec![0; partitions.max(0) as usize],
        }
    }

    /// The next offset to read in each partition.
    pub fn offsets(&self) -> &[i64] {
        &self.offsets
    }
}

enum Kind {
    Stream { stream: String, next: u64 },
    All { position: AllPosition },
}

/// A catch-up subscription ([`EventStore::subscribe_to_stream`],
/// [`EventStore::subscribe_to_all`]): [`Subscription::next`] returns the events in the log
/// from the subscription's position, then waits for new ones.
pub struct Subscription<'s, 'a> {
    store: &'s EventStore<'a>,
    kind: Kind,
    buffer: VecDeque<RecordedEvent>,
    notifier: Arc<Notifier>,
    partitions: Vec<i32>,
    name: Option<String>,
    /// For a stream subscription: the offset after the last event delivered.
    delivered_offset: Option<i64>,
}

impl std::fmt::Debug for Subscription<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("name", &self.name)
            .field("buffered", &self.buffer.len())
            .finish_non_exhaustive()
    }
}

impl<'s, 'a> Subscription<'s, 'a> {
    fn new(store: &'s EventStore<'a>, kind: Kind, partitions: Vec<i32>) -> Self {
        let notifier = Notifier::new();
        for &p in &partitions {
            if let Some(part) = store.parts.get(p as usize) {
                part.handle.register_notifier(&notifier);
            }
        }
        Subscription {
            store,
            kind,
            buffer: VecDeque::new(),
            notifier,
            partitions,
            name: None,
            delivered_offset: None,
        }
    }

    pub(super) fn to_stream(store: &'s EventStore<'a>, stream: &str, from: u64) -> Self {
        let p = store.partition_of(stream);
        Self::new(
            store,
            Kind::Stream {
                stream: stream.to_string(),
                next: from,
            },
            vec![p],
        )
    }

    pub(super) fn to_all(store: &'s EventStore<'a>, from: AllPosition) -> Self {
        let partitions = (0..store.partitions()).collect();
        Self::new(store, Kind::All { position: from }, partitions)
    }

    pub(super) fn named(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }

    /// The next event: at once when one is readable, else the first appended within
    /// `timeout`; `None` when none came.
    ///
    /// # Errors
    /// Read errors.
    pub fn next(&mut self, timeout: Duration) -> Result<Option<RecordedEvent>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.buffer.pop_front() {
                self.advance(&e);
                return Ok(Some(e));
            }
            // Registered before this read: an append after it notifies.
            let moved = self.fetch()?;
            if !self.buffer.is_empty() || moved {
                continue;
            }
            if !self.notifier.wait_until(deadline) {
                while self.fetch()? && self.buffer.is_empty() {}
                if self.buffer.is_empty() {
                    return Ok(None);
                }
            }
        }
    }

    fn advance(&mut self, e: &RecordedEvent) {
        if let Kind::Stream { next, .. } = &mut self.kind {
            *next = e.version + 1;
            self.delivered_offset = Some(e.position.offset + 1);
        }
    }

    /// Reads what follows the position into the buffer; whether the position moved past
    /// events it did not buffer (so there may be more to read at once).
    fn fetch(&mut self) -> Result<bool> {
        let mut moved = false;
        match &mut self.kind {
            Kind::Stream { stream, next } => {
                let got = self
                    .store
                    .read_stream(stream, *next, ReadDirection::Forwards, FETCH)?;
                // Events hidden by metadata or removed by retention are passed over: the
                // next read starts after what this one covered.
                if got.events.is_empty()
                    && let Some(v) = got.next_version
                    && v > *next
                {
                    *next = v;
                    moved = true;
                }
                self.buffer.extend(got.events);
            }
            Kind::All { position } => {
                // The position moves as the events are read: buffered events count as read.
                let (events, pos) = self.store.read_all(position, FETCH)?;
                moved = events.is_empty() && pos != *position;
                *position = pos;
                self.buffer.extend(events);
            }
        }
        Ok(moved)
    }

    /// Where the subscription resumes: for `$all`, the position after the events delivered.
    pub fn position(&self) -> Option<AllPosition> {
        match &self.kind {
            Kind::All { position } => {
                let mut pos = position.clone();
                // Buffered events were read but not delivered: resume at the first of them.
                for e in &self.buffer {
                    if let Some(o) = pos.offsets.get_mut(e.position.partition as usize)
                        && *o > e.position.offset
                    {
                        *o = e.position.offset;
                    }
                }
                Some(pos)
            }
            Kind::Stream { .. } => None,
        }
    }

    /// For a stream subscription: the version of the next event it delivers.
    pub fn next_version(&self) -> Option<u64> {
        match &self.kind {
            Kind::Stream { next, .. } => Some(*next),
            Kind::All { .. } => None,
        }
    }

    /// Saves where the subscription is (after the events delivered so far) as checkpoint
    /// `name`: committed offsets of the consumer group `name` on the event topic, fsynced
    /// (a stream subscription adds its next version in the commit's metadata). Resume with
    /// [`EventStore::subscribe_to_all_from_checkpoint`] or
    /// [`EventStore::subscribe_to_stream_from_checkpoint`]. Kafka tools see the group's
    /// offsets as usual.
    ///
    /// # Errors
    /// As [`Log::commit_group_offsets`](crate::Log::commit_group_offsets).
    pub fn checkpoint(&self, name: &str) -> Result<()> {
        let topic = self.store.topic();
        let offsets: Vec<(TopicPartition, OffsetAndMetadata)> = match &self.kind {
            Kind::All { .. } => {
                let pos = self.position().unwrap_or_else(|| AllPosition::start(0));
                pos.offsets
                    .iter()
                    .enumerate()
                    .map(|(p, &o)| {
                        (
                            TopicPartition::new(topic, p as i32),
                            OffsetAndMetadata::new(o),
                        )
                    })
                    .collect()
            }
            Kind::Stream { stream, .. } => {
                let p = self.store.partition_of(stream);
                let next = self.next_version_delivered();
                let offset = self.delivered_offset.unwrap_or(0);
                let mut om = OffsetAndMetadata::new(offset);
                om.metadata = format!("{VERSION_PREFIX}{next}");
                vec![(TopicPartition::new(topic, p), om)]
            }
        };
        self.store.log.commit_group_offsets(name, "", -1, &offsets)
    }

    fn next_version_delivered(&self) -> u64 {
        match &self.kind {
            Kind::Stream { next, .. } => {
                // Buffered events are not delivered yet.
                self.buffer.front().map_or(*next, |e| e.version)
            }
            Kind::All { .. } => 0,
        }
    }
}

impl Drop for Subscription<'_, '_> {
    fn drop(&mut self) {
        for &p in &self.partitions {
            if let Some(part) = self.store.parts.get(p as usize) {
                part.handle.unregister_notifier(&self.notifier);
            }
        }
    }
}

pub(super) fn load_all_checkpoint(store: &EventStore<'_>, name: &str) -> AllPosition {
    let tps: Vec<TopicPartition> = (0..store.partitions())
        .map(|p| TopicPartition::new(store.topic(), p))
        .collect();
    let got = store.log.committed_offsets(name, Some(&tps));
    AllPosition::new(
        got.into_iter()
            .map(|(_, om)| om.map_or(0, |o| o.offset))
            .collect(),
    )
}

pub(super) fn load_stream_checkpoint(
    store: &EventStore<'_>,
    name: &str,
    stream: &str,
) -> Result<u64> {
    let tp = TopicPartition::new(store.topic(), store.partition_of(stream));
    let got = store
        .log
        .committed_offsets(name, Some(std::slice::from_ref(&tp)));
    match got.into_iter().next().and_then(|(_, om)| om) {
        None => Ok(0),
        Some(om) => om
            .metadata
            .strip_prefix(VERSION_PREFIX)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| {
                Error::invalid_config(
                    "checkpoint",
                    format!("group '{name}' holds no stream subscription checkpoint"),
                )
            }),
    }
}
