//! The event topic's compacted companions: `<topic>-snapshots` (the latest snapshot of each
//! stream) and `<topic>-metadata` (each stream's metadata, EventStoreDB's JSON keys).

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::config::{CleanupPolicy, TopicConfig};
use crate::error::{Error, Result};
use crate::log::topic::partition_for_key;
use crate::log::{Log, PartitionHandle};
use crate::record::{Header, Record};

use super::event::VERSION_HEADER;

/// Header of a snapshot holding the offset of the event it was taken at (8 bytes).
const OFFSET_HEADER: &str = "es.offset";

/// A stream's metadata, with EventStoreDB's meanings. Enforced by reads
/// ([`EventStore::read_stream`](super::EventStore::read_stream) and subscriptions to the
/// stream), not by removing events: the log removes events only by the topic's retention.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StreamMetadata {
    /// Only the last this-many events are read (`$maxCount`).
    #[serde(rename = "$maxCount", skip_serializing_if = "Option::is_none", default)]
    pub max_count: Option<u64>,
    /// Events older than this are not read (`$maxAge`, in seconds in the JSON).
    #[serde(
        rename = "$maxAge",
        skip_serializing_if = "Option::is_none",
        default,
        with = "seconds"
    )]
    pub max_age: Option<Duration>,
    /// Events below this version are not read (`$tb`, truncate before); a soft delete sets
    /// it past the last event.
    #[serde(rename = "$tb", skip_serializing_if = "Option::is_none", default)]
    pub truncate_before: Option<u64>,
}

impl StreamMetadata {
    /// The lowest version a read returns, for a stream whose last event is `last`.
    pub(super) fn floor(&self, last: u64) -> u64 {
        let by_count = self
            .max_count
            .map_or(0, |c| last.saturating_add(1).saturating_sub(c));
        self.truncate_before.unwrap_or(0).max(by_count)
    }
}

mod seconds {
    use std::time::Duration;

    #[allow(clippy::ref_option)] // serde's `with` passes the field by reference
    pub(super) fn serialize<S: serde::Serializer>(
        v: &Option<Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(d) => s.serialize_u64(d.as_secs()),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        let v: Option<u64> = serde::Deserialize::deserialize(d)?;
        Ok(v.map(Duration::from_secs))
    }
}

/// A stream's snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The version of the last event the snapshot reflects.
    pub version: u64,
    /// The snapshot's bytes.
    pub data: Bytes,
    /// When it was saved (ms since the epoch).
    pub timestamp: i64,
}

pub(super) struct Companions {
    snapshots: Vec<PartitionHandle>,
    metadata_parts: Vec<PartitionHandle>,
    /// Stream → (partition, offset) of its latest snapshot; built on first use.
    snapshot_index: Mutex<Option<HashMap<String, i64>>>,
    metadata: Mutex<HashMap<String, StreamMetadata>>,
}

fn compacted(log: &Log, topic: &str, partitions: i32) -> Result<Vec<PartitionHandle>> {
    let mut config = TopicConfig::new();
    config.cleanup_policy = CleanupPolicy::Compact;
    match log.create_topic_with(topic, partitions, config) {
        Ok(()) | Err(Error::TopicAlreadyExists { .. }) => {}
        Err(e) => return Err(e),
    }
    let n = log.describe_topic(topic)?.partitions.len() as i32;
    if n != partitions {
        return Err(Error::invalid_config(
            "event store",
            format!("'{topic}' has {n} partitions, the event topic {partitions}"),
        ));
    }
    (0..n).map(|p| log.partition(topic, p)).collect()
}

/// Calls `f` with each keyed record of `handle` (key, value, version header, offset).
fn scan(
    handle: &PartitionHandle,
    mut f: impl FnMut(&[u8], Option<&[u8]>, Option<u64>, i64, i64),
) -> Result<()> {
    let mut at = handle.log_start_offset();
    while at < handle.high_watermark() {
        let got = match handle.read(at, 1 << 20) {
            Ok(g) => g,
            Err(Error::OffsetOutOfRange { .. }) => {
                at = handle.log_start_offset();
                continue;
            }
            Err(e) => return Err(e),
        };
        if got.batches.is_empty() {
            break;
        }
        for b in &got.batches {
            if !b.header().is_control() {
                b.verify_crc()?;
                b.for_each_record(|r| {
                    if r.offset < at {
                        return;
                    }
                    if let Some(k) = r.key {
                        let version = r
                            .headers()
                            .find(|(k, _)| *k == VERSION_HEADER)
                            .and_then(|(_, v)| v)
                            .and_then(|v| <[u8; 8]>::try_from(v).ok())
                            .map(u64::from_be_bytes);
                        f(k, r.value, version, r.offset, r.timestamp);
                    }
                })?;
            }
            at = b.last_offset() + 1;
        }
    }
    Ok(())
}

impl Companions {
    pub(super) fn open(log: &Log, topic: &str, partitions: i32) -> Result<Companions> {
        let snapshots = compacted(log, &format!("{topic}-snapshots"), partitions)?;
        let metadata_parts = compacted(log, &format!("{topic}-metadata"), partitions)?;
        let mut metadata = HashMap::new();
        for h in &metadata_parts {
            scan(h, |k, v, _, _, _| {
                let key = String::from_utf8_lossy(k).into_owned();
                match v.map(serde_json::from_slice::<StreamMetadata>) {
                    Some(Ok(m)) => {
                        metadata.insert(key, m);
                    }
                    // A tombstone clears it; a value that is not metadata is ignored.
                    None => {
                        metadata.remove(&key);
                    }
                    Some(Err(_)) => {}
                }
            })?;
        }
        Ok(Companions {
            snapshots,
            metadata_parts,
            snapshot_index: Mutex::new(None),
            metadata: Mutex::new(metadata),
        })
    }

    fn handle<'h>(handles: &'h [PartitionHandle], stream: &str) -> Result<&'h PartitionHandle> {
        handles
            .get(partition_for_key(stream.as_bytes(), handles.len() as i32) as usize)
            .ok_or(Error::Closed {
                what: "the companion topic has no such partition",
            })
    }

    pub(super) fn metadata(&self, stream: &str) -> StreamMetadata {
        self.metadata
            .lock()
            .get(stream)
            .cloned()
            .unwrap_or_default()
    }

    pub(super) fn set_metadata(&self, stream: &str, meta: &StreamMetadata) -> Result<()> {
        let json = serde_json::to_vec(meta)
            .map_err(|e| Error::invalid_config("stream metadata", e.to_string()))?;
        let h = Self::handle(&self.metadata_parts, stream)?;
        let mut map = self.metadata.lock();
        h.append(&[Record::new(json).key(stream.as_bytes().to_vec())])?;
        map.insert(stream.to_string(), meta.clone());
        Ok(())
    }

    pub(super) fn save_snapshot(
        &self,
        stream: &str,
        version: u64,
        offset: i64,
        data: &[u8],
    ) -> Result<()> {
        let h = Self::handle(&self.snapshots, stream)?;
        let mut guard = self.snapshot_index.lock();
        let index = self.snapshot_index_of(&mut guard)?;
        let r = h.append(&[Record::new(data.to_vec())
            .key(stream.as_bytes().to_vec())
            .header(Header::new(VERSION_HEADER, version.to_be_bytes().to_vec()))
            .header(Header::new(OFFSET_HEADER, offset.to_be_bytes().to_vec()))])?;
        index.insert(stream.to_string(), r.base_offset);
        Ok(())
    }

    fn snapshot_index_of<'g>(
        &self,
        guard: &'g mut Option<HashMap<String, i64>>,
    ) -> Result<&'g mut HashMap<String, i64>> {
        if guard.is_none() {
            let mut map = HashMap::new();
            for h in &self.snapshots {
                scan(h, |k, v, _, offset, _| {
                    let key = String::from_utf8_lossy(k).into_owned();
                    if v.is_some() {
                        map.insert(key, offset);
                    } else {
                        map.remove(&key);
                    }
                })?;
            }
            *guard = Some(map);
        }
        guard.as_mut().ok_or(Error::Closed {
            what: "the snapshot index",
        })
    }

    /// The latest snapshot of `stream` with the offset of the event it was taken at.
    pub(super) fn load_snapshot(&self, stream: &str) -> Result<Option<(Snapshot, Option<i64>)>> {
        let h = Self::handle(&self.snapshots, stream)?;
        let offset = {
            let mut guard = self.snapshot_index.lock();
            match self.snapshot_index_of(&mut guard)?.get(stream) {
                Some(o) => *o,
                None => return Ok(None),
            }
        };
        let got = match h.read(offset, 1) {
            Ok(g) => g,
            // Compaction moved it past the offset we knew: look again.
            Err(Error::OffsetOutOfRange { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut found = None;
        for b in &got.batches {
            b.verify_crc()?;
            b.for_each_record(|r| {
                if r.offset == offset && r.key == Some(stream.as_bytes()) {
                    let header = |name: &str| {
                        r.headers()
                            .find(|(k, _)| *k == name)
                            .and_then(|(_, v)| v)
                            .and_then(|v| <[u8; 8]>::try_from(v).ok())
                    };
                    let version = header(VERSION_HEADER).map(u64::from_be_bytes);
                    let at = header(OFFSET_HEADER).map(i64::from_be_bytes);
                    if let (Some(version), Some(v)) = (version, r.value) {
                        found = Some((
                            Snapshot {
                                version,
                                data: Bytes::copy_from_slice(v),
                                timestamp: r.timestamp,
                            },
                            at,
                        ));
                    }
                }
            })?;
        }
        Ok(found)
    }
}
