//! Committed offsets, stored as Kafka-format records in the internal topic
//! `__consumer_offsets` (one partition, compacted) and held in memory. The log is the source
//! of truth: the map is rebuilt from it at open, and every commit is one batch appended
//! (fdatasync'd) before the map changes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;

use super::offsets_codec::{GroupMetadata, OffsetKey, OffsetValue, OffsetsKey};
use crate::TopicPartition;
use crate::clock::now_ms;
use crate::error::Result;
use crate::partition::Partition;
use crate::record::BatchBuilder;

/// A committed offset: the next offset the group will read, with optional metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetAndMetadata {
    /// The next offset to read (Kafka's convention: last processed + 1).
    pub offset: i64,
    /// Free-form metadata stored with the commit (at most 4096 bytes, as Kafka).
    pub metadata: String,
    /// When it was committed, in ms since the epoch.
    pub commit_timestamp: i64,
}

impl OffsetAndMetadata {
    /// An offset with no metadata, stamped now.
    pub fn new(offset: i64) -> Self {
        OffsetAndMetadata {
            offset,
            metadata: String::new(),
            commit_timestamp: now_ms(),
        }
    }
}

type GroupOffsets = BTreeMap<TopicPartition, OffsetAndMetadata>;

#[derive(Debug, Default)]
struct State {
    offsets: BTreeMap<String, GroupOffsets>,
    generations: HashMap<String, i32>,
    /// Each group's latest metadata record as the load found it (members included), until
    /// the coordinator takes it to restore the members; later records do not update it.
    loaded: HashMap<String, GroupMetadata>,
    /// Offsets committed inside a transaction, by producer id: they become the group's
    /// committed offsets when the transaction's COMMIT marker is written, and are dropped on
    /// ABORT.
    pending: HashMap<i64, Vec<(String, TopicPartition, OffsetAndMetadata)>>,
}

/// The offsets store.
#[derive(Debug)]
pub(crate) struct OffsetStore {
    partition: Option<Arc<Partition>>,
    state: Mutex<State>,
    /// Groups named in batches the load skipped for a bad checksum: their latest commits may
    /// be lost (the recovery report names them).
    pub(crate) skipped_groups: Vec<String>,
}

impl OffsetStore {
    /// Rebuilds the store from the offsets topic's partition (none in a read-only open of a
    /// directory that never had one).
    pub(crate) fn load(partition: Option<Arc<Partition>>) -> Result<OffsetStore> {
        let mut state = State::default();
        let mut skipped_groups = Vec::new();
        if let Some(p) = &partition {
            let mut offset = p.log_start();
            loop {
                let res = p.read(offset, 1 << 20)?;
                let Some(next) = res.next_offset() else { break };
                for b in &res.batches {
                    // A damaged batch in an otherwise valid log stops nothing: skip it, but
                    // name the groups it held, so their loss is not silent.
                    if b.verify_crc().is_err() {
                        skipped_groups.extend(groups_named_in(b.as_bytes()));
                        continue;
                    }
                    let h = b.header();
                    if h.is_control() {
                        if let Some(Ok(crate::record::ControlRecord::EndTxn(m))) =
                            b.control_record()
                        {
                            complete(&mut state, h.producer_id, m.commit);
                        }
                        continue;
                    }
                    let Ok(records) = b.owned_records() else {
                        continue;
                    };
                    for r in records.flatten() {
                        let Some(key) = r.key.as_deref().and_then(|k| OffsetsKey::decode(k).ok())
                        else {
                            continue;
                        };
                        if h.is_transactional() {
                            hold(&mut state, h.producer_id, &key, r.value.as_deref());
                        } else {
                            apply(&mut state, &key, r.value.as_deref());
                        }
                    }
                }
                offset = next;
            }
        }
        skipped_groups.sort();
        skipped_groups.dedup();
        Ok(OffsetStore {
            partition,
            state: Mutex::new(state),
            skipped_groups,
        })
    }

    /// A store with no backing topic (read-only open of a directory without one).
    pub(crate) fn empty() -> OffsetStore {
        OffsetStore {
            partition: None,
            state: Mutex::new(State::default()),
            skipped_groups: Vec::new(),
        }
    }

    /// Appends one batch of (key, value) records; a `None` value is a tombstone.
    fn append(&self, records: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<()> {
        let Some(p) = &self.partition else {
            return Err(crate::Error::ReadOnly);
        };
        let mut b = BatchBuilder::new(crate::Compression::None);
        let now = now_ms();
        for (k, v) in records {
            b.push(Some(k), v.as_deref(), &[], now)?;
        }
        p.append_encoded(b.finish()?, None)?;
        Ok(())
    }

    /// Stores commits for `group` (one batch, so all or none).
    pub(crate) fn commit(
        &self,
        group: &str,
        offsets: &[(TopicPartition, OffsetAndMetadata)],
    ) -> Result<()> {
        if offsets.is_empty() {
            return Ok(());
        }
        let records: Vec<_> = offsets
            .iter()
            .map(|(tp, om)| {
                let (key, value) = offset_record(group, tp, om);
                (key, Some(value))
            })
            .collect();
        self.append(&records)?;
        let mut st = self.state.lock();
        let g = st.offsets.entry(group.to_string()).or_default();
        for (tp, om) in offsets {
            g.insert(tp.clone(), om.clone());
        }
        Ok(())
    }

    /// Stores commits for `group` inside producer `producer_id`'s transaction (one
    /// transactional batch): they are the group's only once [`OffsetStore::complete_txn`]
    /// commits them.
    pub(crate) fn commit_txn(
        &self,
        producer_id: i64,
        epoch: i16,
        group: &str,
        offsets: &[(TopicPartition, OffsetAndMetadata)],
    ) -> Result<()> {
        if offsets.is_empty() {
            return Ok(());
        }
        let Some(p) = &self.partition else {
            return Err(crate::Error::ReadOnly);
        };
        let mut b = BatchBuilder::new(crate::Compression::None);
        let now = now_ms();
        for (tp, om) in offsets {
            let (key, value) = offset_record(group, tp, om);
            b.push(Some(&key), Some(&value), &[], now)?;
        }
        b.set_producer(producer_id, epoch, 0);
        b.set_transactional(true);
        // Held across the append: a marker written meanwhile (the transaction's timeout, a
        // newer instance) completes after the offsets are held, so it drops them, instead of
        // finding nothing and leaving them for a later commit of the same producer.
        let mut st = self.state.lock();
        p.append_sequenced(b.finish_unchecked()?)?;
        let held = st.pending.entry(producer_id).or_default();
        for (tp, om) in offsets {
            held.push((group.to_string(), tp.clone(), om.clone()));
        }
        Ok(())
    }

    /// Applies (on COMMIT) or drops (on ABORT) the offsets producer `producer_id` committed in
    /// its transaction, once the marker is written to the offsets partition.
    pub(crate) fn complete_txn(&self, producer_id: i64, commit: bool) {
        complete(&mut self.state.lock(), producer_id, commit);
    }

    /// Persists a group's generation (so generations never repeat across restarts).
    pub(crate) fn record_generation(&self, group: &str, meta: &GroupMetadata) -> Result<()> {
        let key = OffsetsKey::Group(group.to_string()).encode();
        self.append(&[(key, Some(meta.encode()))])?;
        self.state
            .lock()
            .generations
            .insert(group.to_string(), meta.generation);
        Ok(())
    }

    /// The groups' metadata as the load found it (taken once, by the coordinator, to restore
    /// the members each group had when the log last wrote it).
    pub(crate) fn take_loaded(&self) -> HashMap<String, GroupMetadata> {
        std::mem::take(&mut self.state.lock().loaded)
    }

    pub(crate) fn generation(&self, group: &str) -> i32 {
        self.state
            .lock()
            .generations
            .get(group)
            .copied()
            .unwrap_or(0)
    }

    pub(crate) fn committed(&self, group: &str, tp: &TopicPartition) -> Option<OffsetAndMetadata> {
        self.state.lock().offsets.get(group)?.get(tp).cloned()
    }

    pub(crate) fn group_offsets(&self, group: &str) -> GroupOffsets {
        self.state
            .lock()
            .offsets
            .get(group)
            .cloned()
            .unwrap_or_default()
    }

    /// Whether the group has committed offsets or a generation.
    pub(crate) fn knows(&self, group: &str) -> bool {
        let st = self.state.lock();
        st.offsets.contains_key(group) || st.generations.contains_key(group)
    }

    pub(crate) fn groups(&self) -> Vec<String> {
        let st = self.state.lock();
        let mut g: Vec<String> = st.offsets.keys().cloned().collect();
        g.extend(st.generations.keys().cloned());
        g.sort();
        g.dedup();
        g
    }

    /// Deletes a group's offsets of `partitions` (tombstones, one batch, for those it has);
    /// returns how many it had.
    pub(crate) fn delete_partitions(
        &self,
        group: &str,
        partitions: &[TopicPartition],
    ) -> Result<usize> {
        let held = self.group_offsets(group);
        let mut gone: Vec<&TopicPartition> = partitions
            .iter()
            .filter(|tp| held.contains_key(tp))
            .collect();
        gone.sort();
        gone.dedup();
        let records = offset_tombstones(group, gone.iter().copied());
        if records.is_empty() {
            return Ok(0);
        }
        self.append(&records)?;
        let mut st = self.state.lock();
        if let Some(g) = st.offsets.get_mut(group) {
            for tp in &gone {
                g.remove(*tp);
            }
            if g.is_empty() {
                st.offsets.remove(group);
            }
        }
        Ok(gone.len())
    }

    /// Deletes a group's offsets (tombstones) and, with `forget_group`, its generation too.
    pub(crate) fn delete(&self, group: &str, forget_group: bool) -> Result<usize> {
        let tps: Vec<TopicPartition> = self.group_offsets(group).into_keys().collect();
        let mut records = offset_tombstones(group, &tps);
        if forget_group && self.state.lock().generations.contains_key(group) {
            records.push((OffsetsKey::Group(group.to_string()).encode(), None));
        }
        if records.is_empty() {
            return Ok(0);
        }
        self.append(&records)?;
        let mut st = self.state.lock();
        st.offsets.remove(group);
        if forget_group {
            st.generations.remove(group);
        }
        Ok(tps.len())
    }
}

/// The key and value of one offset commit record.
fn offset_record(group: &str, tp: &TopicPartition, om: &OffsetAndMetadata) -> (Vec<u8>, Vec<u8>) {
    let key = OffsetsKey::Offset(OffsetKey {
        group: group.to_string(),
        topic: tp.topic.clone(),
        partition: tp.partition,
    });
    let value = OffsetValue {
        offset: om.offset,
        leader_epoch: -1,
        metadata: om.metadata.clone(),
        commit_timestamp: om.commit_timestamp,
    };
    (key.encode(), value.encode())
}

/// Holds an offset commit read from a transactional batch until its marker.
fn hold(state: &mut State, producer_id: i64, key: &OffsetsKey, value: Option<&[u8]>) {
    let OffsetsKey::Offset(k) = key else { return };
    let Some(Ok(v)) = value.map(OffsetValue::decode) else {
        return;
    };
    state.pending.entry(producer_id).or_default().push((
        k.group.clone(),
        TopicPartition::new(k.topic.clone(), k.partition),
        OffsetAndMetadata {
            offset: v.offset,
            metadata: v.metadata,
            commit_timestamp: v.commit_timestamp,
        },
    ));
}

/// Ends producer `producer_id`'s transaction in the offsets: COMMIT applies what it held.
fn complete(state: &mut State, producer_id: i64, commit: bool) {
    let Some(held) = state.pending.remove(&producer_id) else {
        return;
    };
    if commit {
        for (group, tp, om) in held {
            state.offsets.entry(group).or_default().insert(tp, om);
        }
    }
}

fn apply(state: &mut State, key: &OffsetsKey, value: Option<&[u8]>) {
    match key {
        OffsetsKey::Offset(k) => {
            let tp = TopicPartition::new(k.topic.clone(), k.partition);
            match value.map(OffsetValue::decode) {
                Some(Ok(v)) => {
                    state.offsets.entry(k.group.clone()).or_default().insert(
                        tp,
                        OffsetAndMetadata {
                            offset: v.offset,
                            metadata: v.metadata,
                            commit_timestamp: v.commit_timestamp,
                        },
                    );
                }
                Some(Err(_)) => {}
                None => {
                    if let Some(g) = state.offsets.get_mut(&k.group) {
                        g.remove(&tp);
                        if g.is_empty() {
                            state.offsets.remove(&k.group);
                        }
                    }
                }
            }
        }
        OffsetsKey::Group(g) => match value.map(GroupMetadata::decode) {
            Some(Ok(m)) => {
                state.generations.insert(g.clone(), m.generation);
                state.loaded.insert(g.clone(), m);
            }
            Some(Err(_)) => {}
            None => {
                state.generations.remove(g);
                state.loaded.remove(g);
            }
        },
    }
}

/// The groups named by commits in `bytes`, a damaged stretch of an offsets-topic log: every
/// position where a batch header parses and its records decode (checksums are not required:
/// the point is to name who may have lost a commit, not to trust the values), stepping one
/// byte on past anything that does not parse, so one bad header does not hide the rest.
pub(crate) fn groups_named_in(bytes: &[u8]) -> Vec<String> {
    use crate::record::batch::{BATCH_HEADER_LEN, BatchHeader};
    let mut groups = std::collections::BTreeSet::new();
    let mut pos = 0usize;
    while let Some(rest) = bytes.get(pos..).filter(|r| r.len() >= BATCH_HEADER_LEN) {
        let batch = BatchHeader::parse(rest)
            .ok()
            .and_then(|h| rest.get(..h.size()))
            .and_then(|b| crate::record::Batch::new(bytes::Bytes::copy_from_slice(b)).ok());
        let mut named = false;
        if let Some(records) = batch.as_ref().and_then(|b| b.owned_records().ok()) {
            for r in records.flatten() {
                named = true;
                match r.key.as_deref().map(OffsetsKey::decode) {
                    Some(Ok(OffsetsKey::Offset(k))) => {
                        groups.insert(k.group);
                    }
                    Some(Ok(OffsetsKey::Group(g))) => {
                        groups.insert(g);
                    }
                    _ => {}
                }
            }
        }
        pos += match batch {
            Some(b) if named => b.len(),
            _ => 1,
        };
    }
    groups.into_iter().collect()
}

/// Tombstones of `group`'s committed offsets of `tps` (key, null value).
fn offset_tombstones<'a>(
    group: &str,
    tps: impl IntoIterator<Item = &'a TopicPartition>,
) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    tps.into_iter()
        .map(|tp| {
            let key = OffsetsKey::Offset(OffsetKey {
                group: group.to_string(),
                topic: tp.topic.clone(),
                partition: tp.partition,
            });
            (key.encode(), None)
        })
        .collect()
}
