//! MirrorMaker 2's internal records, in its key and value schemas (Kafka's protocol types:
//! big-endian integers, strings as an `int16` length and UTF-8 bytes), so that its tooling
//! (`RemoteClusterUtils`, `MirrorClient`) reads what topiclog writes, and the other way round.
//!
//! - offset syncs, in `mm2-offset-syncs.<source alias>.internal`: key `{topic: string,
//!   partition: int32}` (the *source* partition), value `{upstreamOffset: int64, offset:
//!   int64}`: the source record at `upstreamOffset` is the target's record at `offset`;
//! - checkpoints, in `<source alias>.checkpoints.internal`: key `{group: string, topic:
//!   string, partition: int32}` (the *target* partition), value `{version: int16 = 0,
//!   upstreamOffset: int64, offset: int64, metadata: string}`: the group's committed offset
//!   on the source and its translation on the target.

use std::collections::BTreeMap;

use crate::wire::{Reader, put_str};

/// The version MirrorMaker 2 writes at the front of a checkpoint's value.
pub const CHECKPOINT_VERSION: i16 = 0;

/// A record of MirrorMaker 2's schemas that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a MirrorMaker 2 {what} record: {why}")]
pub struct SchemaError {
    what: &'static str,
    why: &'static str,
}

/// One offset sync: the source record at `upstream` was written on the target at
/// `downstream`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetSync {
    /// The source topic.
    pub topic: String,
    /// The source partition.
    pub partition: i32,
    /// The record's offset on the source.
    pub upstream: i64,
    /// The same record's offset on the target.
    pub downstream: i64,
}

impl OffsetSync {
    /// The record key.
    pub fn key(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 + self.topic.len() + 4);
        put_str(&mut out, &self.topic);
        out.extend_from_slice(&self.partition.to_be_bytes());
        out
    }

    /// The record value.
    pub fn value(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16);
        out.extend_from_slice(&self.upstream.to_be_bytes());
        out.extend_from_slice(&self.downstream.to_be_bytes());
        out
    }

    /// Decodes a record of the offset-syncs topic.
    pub fn decode(key: &[u8], value: &[u8]) -> Result<OffsetSync, SchemaError> {
        let err = |why| SchemaError {
            what: "offset sync",
            why,
        };
        let mut k = Reader(key);
        let topic = k.string().ok_or_else(|| err("short key"))?;
        let partition = k.i32().ok_or_else(|| err("short key"))?;
        let mut v = Reader(value);
        let upstream = v.i64().ok_or_else(|| err("short value"))?;
        let downstream = v.i64().ok_or_else(|| err("short value"))?;
        Ok(OffsetSync {
            topic,
            partition,
            upstream,
            downstream,
        })
    }
}

/// One checkpoint: `group`'s committed offset `upstream` on the source partition mirrored to
/// `topic`/`partition`, translated to `downstream` there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The consumer group.
    pub group: String,
    /// The *target* topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The group's committed offset on the source.
    pub upstream: i64,
    /// Its translation on the target: never ahead of the records the group consumed.
    pub downstream: i64,
    /// The commit's metadata string.
    pub metadata: String,
}

impl Checkpoint {
    /// The record key.
    pub fn key(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + self.group.len() + self.topic.len() + 4);
        put_str(&mut out, &self.group);
        put_str(&mut out, &self.topic);
        out.extend_from_slice(&self.partition.to_be_bytes());
        out
    }

    /// The record value, led by the version.
    pub fn value(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 + 16 + 2 + self.metadata.len());
        out.extend_from_slice(&CHECKPOINT_VERSION.to_be_bytes());
        out.extend_from_slice(&self.upstream.to_be_bytes());
        out.extend_from_slice(&self.downstream.to_be_bytes());
        put_str(&mut out, &self.metadata);
        out
    }

    /// Decodes a record of a checkpoints topic.
    pub fn decode(key: &[u8], value: &[u8]) -> Result<Checkpoint, SchemaError> {
        let err = |why| SchemaError {
            what: "checkpoint",
            why,
        };
        let mut k = Reader(key);
        let group = k.string().ok_or_else(|| err("short key"))?;
        let topic = k.string().ok_or_else(|| err("short key"))?;
        let partition = k.i32().ok_or_else(|| err("short key"))?;
        let mut v = Reader(value);
        let version = v.i16().ok_or_else(|| err("short value"))?;
        if version != CHECKPOINT_VERSION {
            return Err(err("unknown version"));
        }
        let upstream = v.i64().ok_or_else(|| err("short value"))?;
        let downstream = v.i64().ok_or_else(|| err("short value"))?;
        let metadata = v.string().ok_or_else(|| err("short value"))?;
        Ok(Checkpoint {
            group,
            topic,
            partition,
            upstream,
            downstream,
            metadata,
        })
    }
}

/// Syncs kept per partition for translation.
pub const SYNCS_KEPT: usize = 4096;

/// The offset syncs of every mirrored source partition, for resuming and for translating
/// group offsets.
#[derive(Debug, Default, Clone)]
pub struct OffsetSyncs {
    /// Per source (topic, partition): upstream offset → downstream offset, ascending.
    by_partition: BTreeMap<(String, i32), BTreeMap<i64, i64>>,
}

impl OffsetSyncs {
    /// Adds a sync (a later one for the same upstream offset replaces the earlier). At most
    /// [`SYNCS_KEPT`] per partition are kept, the newest: a group offset older than all of
    /// them does not translate (as in MirrorMaker 2, which keeps 64).
    pub fn add(&mut self, sync: &OffsetSync) {
        let syncs = self
            .by_partition
            .entry((sync.topic.clone(), sync.partition))
            .or_default();
        syncs.insert(sync.upstream, sync.downstream);
        while syncs.len() > SYNCS_KEPT {
            syncs.pop_first();
        }
    }

    /// The last sync of a source partition: `(upstream, downstream)`.
    pub fn last(&self, topic: &str, partition: i32) -> Option<(i64, i64)> {
        self.by_partition
            .get(&(topic.to_owned(), partition))?
            .last_key_value()
            .map(|(u, d)| (*u, *d))
    }

    /// Where mirroring of a source partition resumes: after the last record a sync names.
    pub fn resume_at(&self, topic: &str, partition: i32) -> Option<i64> {
        self.last(topic, partition).map(|(u, _)| u + 1)
    }

    /// Translates a consumer group's committed offset on the source (the next record it
    /// would read) to the target, as MirrorMaker 2 does: from the latest sync at or before
    /// it, its downstream offset when they are equal, else one past it. Never ahead: every
    /// record the group has not consumed is at or after the translation. `None` when no
    /// sync precedes the offset.
    pub fn translate(&self, topic: &str, partition: i32, upstream: i64) -> Option<i64> {
        let syncs = self.by_partition.get(&(topic.to_owned(), partition))?;
        let (u, d) = syncs.range(..=upstream).next_back()?;
        Some(if *u == upstream { *d } else { d + 1 })
    }

    /// Number of syncs held.
    pub fn len(&self) -> usize {
        self.by_partition.values().map(BTreeMap::len).sum()
    }

    /// True when no sync is held.
    pub fn is_empty(&self) -> bool {
        self.by_partition.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn offset_sync_bytes_are_mirrormaker_2s() {
        let s = OffsetSync {
            topic: "orders".into(),
            partition: 2,
            upstream: 7,
            downstream: 5,
        };
        assert_eq!(s.key(), b"\x00\x06orders\x00\x00\x00\x02");
        assert_eq!(s.value(), [0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 5]);
        assert_eq!(OffsetSync::decode(&s.key(), &s.value()), Ok(s));
        assert!(OffsetSync::decode(b"\x00\x09orders", &[]).is_err());
    }

    #[test]
    fn checkpoint_bytes_lead_with_the_version() {
        let c = Checkpoint {
            group: "g".into(),
            topic: "src.orders".into(),
            partition: 0,
            upstream: 10,
            downstream: 8,
            metadata: "m".into(),
        };
        assert_eq!(c.key(), b"\x00\x01g\x00\x0asrc.orders\x00\x00\x00\x00");
        let v = c.value();
        assert_eq!(&v[..2], [0, 0]);
        assert_eq!(v.len(), 2 + 8 + 8 + 2 + 1);
        assert_eq!(Checkpoint::decode(&c.key(), &v), Ok(c));
        let mut bad = v.clone();
        bad[1] = 1;
        assert!(Checkpoint::decode(b"\x00\x01g\x00\x01t\x00\x00\x00\x00", &bad).is_err());
    }

    #[test]
    fn translation_is_never_ahead() {
        let mut syncs = OffsetSyncs::default();
        // Source offsets 0..=9 copied to 100..=109 with a gap: 4 and 5 were compacted away.
        for (u, d) in [(3, 103), (9, 107)] {
            syncs.add(&OffsetSync {
                topic: "t".into(),
                partition: 0,
                upstream: u,
                downstream: d,
            });
        }
        assert_eq!(syncs.translate("t", 0, 2), None);
        assert_eq!(syncs.translate("t", 0, 3), Some(103));
        assert_eq!(syncs.translate("t", 0, 4), Some(104));
        assert_eq!(syncs.translate("t", 0, 9), Some(107));
        assert_eq!(syncs.translate("t", 0, 10), Some(108));
        assert_eq!(syncs.translate("t", 1, 10), None);
        assert_eq!(syncs.resume_at("t", 0), Some(10));
    }
}
