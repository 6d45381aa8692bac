//! Stream–stream joins in windows (Kafka's `KStream#join(KStream, ValueJoiner,
//! JoinWindows)`, `leftJoin`, `outerJoin`): each side's records are kept, per key and time,
//! in a join store with a changelog; a record joins the other side's records of its key
//! whose times are within the window. Left and outer joins forward a record that found no
//! partner once no record can join it any more (as Kafka holds them back since 3.1, so
//! that no early, spurious result with a missing side goes out): when the stream time is
//! past its time plus the whole window and the grace period. A record whose own window
//! ended more than the grace period before the stream time is dropped and counted.
//!
//! Unlike Kafka: an unjoined record goes out once the stream time passes its time plus
//! `before + after + grace` (Kafka: its side's reach plus the grace, which can forward
//! a record alone and then join it); the join stores' changelog values begin with a joined
//! flag (a byte), and there is no shared outer store; the stream time is kept per task and
//! restored from the stores' records.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use foldhash::fast::RandomState;

use super::node::{Cx, Node, NodeId, Output, StoreId};
use super::serde::SharedSerde;
use super::store::{ErasedStore, KeyBytes};
use crate::error::Result;

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Kafka's `JoinWindows`: a record joins the other side's records of its key from
/// `before` earlier to `after` later (both the time difference unless set apart); records
/// arriving up to `grace` after their window's end (by stream time) still join, later ones
/// are dropped and counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinWindows {
    /// In ms, as the two below.
    before: i64,
    after: i64,
    grace: i64,
}

impl JoinWindows {
    /// Records at most `difference` apart join; records later than that by stream time are
    /// dropped (Kafka's `ofTimeDifferenceWithNoGrace`).
    pub fn of_time_difference_with_no_grace(difference: Duration) -> JoinWindows {
        JoinWindows::of_time_difference_and_grace(difference, Duration::ZERO)
    }

    /// Records at most `difference` apart join, with `grace` for late records (Kafka's
    /// `ofTimeDifferenceAndGrace`).
    pub fn of_time_difference_and_grace(difference: Duration, grace: Duration) -> JoinWindows {
        JoinWindows {
            before: ms(difference),
            after: ms(difference),
            grace: ms(grace),
        }
    }

    /// How much earlier the other side's records may be (Kafka's `before`).
    #[must_use]
    pub fn before(mut self, d: Duration) -> JoinWindows {
        self.before = ms(d);
        self
    }

    /// How much later the other side's records may be (Kafka's `after`).
    #[must_use]
    pub fn after(mut self, d: Duration) -> JoinWindows {
        self.after = ms(d);
        self
    }

    pub(crate) fn invalid(&self) -> Option<String> {
        (self.before < 0 || self.after < 0 || self.before.saturating_add(self.after) < 0)
            .then(|| "a join window's before and after must not be negative".into())
    }

    /// How long a store keeps a record: the whole window and the grace.
    pub(crate) fn retention_ms(&self) -> i64 {
        self.before
            .saturating_add(self.after)
            .saturating_add(self.grace)
    }
}

/// A kept record: its value and whether it has joined yet.
struct Kept<V> {
    value: V,
    joined: bool,
}

/// Records by key, then (time, sequence number) (one side of a join; a sliding window's
/// records), with a changelog whose keys
/// are Kafka's window store keys (key, time, sequence number) and whose values are a
/// joined flag (1 byte) and the value.
pub(crate) struct JoinStore<V> {
    map: HashMap<KeyBytes, BTreeMap<(i64, u32), Kept<V>>, RandomState>,
    seq: u32,
    /// Entries changed since the changelog was last written (`true`: deleted).
    dirty: Vec<(Vec<u8>, i64, u32, bool)>,
    /// Records that have not joined, by time (only for a side whose unjoined records are
    /// forwarded: left and outer joins).
    unjoined: BTreeSet<(i64, Vec<u8>, u32)>,
    /// Whether this side's unjoined records are forwarded (and so tracked, and their joined
    /// flag kept in the changelog).
    track: bool,
    /// The largest timestamp this side has seen.
    pub stream_time: i64,
    /// Records older than this are dropped already.
    expired_before: i64,
    changelog: String,
    value_serde: SharedSerde<V>,
    scratch: BytesMut,
}

impl<V: Clone + Send + 'static> JoinStore<V> {
    pub fn new(changelog: String, value_serde: SharedSerde<V>, track: bool) -> JoinStore<V> {
        JoinStore {
            track,
            map: HashMap::default(),
            seq: 0,
            dirty: Vec::new(),
            unjoined: BTreeSet::new(),
            stream_time: i64::MIN,
            expired_before: i64::MIN,
            changelog,
            value_serde,
            scratch: BytesMut::new(),
        }
    }

    /// Keeps a record (`joined`: it found partners on arrival).
    pub(crate) fn put(&mut self, key: &[u8], at: i64, value: V, joined: bool) {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        self.map
            .entry(KeyBytes::new(key))
            .or_default()
            .insert((at, seq), Kept { value, joined });
        self.dirty.push((key.to_vec(), at, seq, false));
        if self.track && !joined {
            self.unjoined.insert((at, key.to_vec(), seq));
        }
    }

    /// The records of `key` from `from` to `to` (times included), each marked joined.
    pub(crate) fn join_range(&mut self, key: &[u8], from: i64, to: i64) -> Vec<(i64, V)> {
        let Some(records) = self.map.get_mut(key) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (&(at, seq), kept) in records.range_mut((from, 0)..=(to, u32::MAX)) {
            if self.track && !kept.joined {
                kept.joined = true;
                self.dirty.push((key.to_vec(), at, seq, false));
                self.unjoined.remove(&(at, key.to_vec(), seq));
            }
            out.push((at, kept.value.clone()));
        }
        out
    }

    /// Takes the unjoined records with times up to `until`, removing them (their window
    /// closed: nothing can join them any more).
    fn take_unjoined(&mut self, until: i64) -> Vec<(Vec<u8>, i64, V)> {
        let mut out = Vec::new();
        while let Some((at, key, seq)) = self.unjoined.first().cloned() {
            if at > until {
                break;
            }
            self.unjoined.pop_first();
            let kept = self
                .map
                .get_mut(key.as_slice())
                .and_then(|r| r.remove(&(at, seq)));
            if let Some(kept) = kept {
                self.dirty.push((key.clone(), at, seq, true));
                out.push((key, at, kept.value));
            }
        }
        out
    }

    /// Drops the records older than `before` (writing nothing: the changelog deletes them by
    /// retention), once `before` has moved `step` since the last time (no record older
    /// than the horizon can be joined, so dropping them later changes nothing but memory).
    /// Unjoined records still to be forwarded hold it back.
    pub(crate) fn expire(&mut self, before: i64, step: i64) {
        if before < self.expired_before.saturating_add(step)
            || self.unjoined.first().is_some_and(|(at, _, _)| *at < before)
        {
            return;
        }
        self.expired_before = before;
        self.map.retain(|_, records| {
            records.retain(|&(at, _), _| at >= before);
            !records.is_empty()
        });
    }
}

/// The changelog key: the key's bytes, the time and the sequence number, as Kafka's
/// `WindowKeySchema` writes a store key with duplicates.
fn changelog_key(buf: &mut BytesMut, key: &[u8], at: i64, seq: u32) {
    buf.extend_from_slice(key);
    buf.put_i64(at);
    buf.put_u32(seq);
}

impl<V: Clone + Send + 'static> ErasedStore for JoinStore<V> {
    fn as_any(&mut self) -> &mut dyn std::any::Any {
        self
    }

    fn flush_changelog(&mut self, partition: i32, out: &mut dyn Output) -> Result<()> {
        let mut written = std::collections::HashSet::new();
        for (key, at, seq, deleted) in std::mem::take(&mut self.dirty).into_iter().rev() {
            // The last change of a record is what it is now: written once.
            if !written.insert((key.clone(), at, seq)) {
                continue;
            }
            let kept = self.map.get(key.as_slice()).and_then(|r| r.get(&(at, seq)));
            self.scratch.clear();
            changelog_key(&mut self.scratch, &key, at, seq);
            let split = self.scratch.len();
            let value = match (kept, deleted) {
                (Some(k), false) => {
                    self.scratch.put_u8(u8::from(k.joined));
                    self.value_serde.serialize_into(
                        &self.changelog,
                        &k.value,
                        &mut self.scratch,
                    )?;
                    true
                }
                // Deleted, or expired meanwhile: a tombstone.
                _ => false,
            };
            let (k, v) = self.scratch.split_at(split);
            out.send(
                &self.changelog,
                Some(partition),
                Some(k),
                value.then_some(v),
                at,
            )?;
        }
        Ok(())
    }

    fn restore(&mut self, key: &[u8], value: Option<&[u8]>, _timestamp: i64) -> Result<()> {
        let Some(split) = key.len().checked_sub(12) else {
            return Ok(());
        };
        let (k, tail) = key.split_at(split);
        let (mut at, mut seq) = ([0u8; 8], [0u8; 4]);
        if let (Some(a), Some(s)) = (tail.get(..8), tail.get(8..12)) {
            at.copy_from_slice(a);
            seq.copy_from_slice(s);
        }
        let (at, seq) = (i64::from_be_bytes(at), u32::from_be_bytes(seq));
        self.seq = self.seq.max(seq);
        // The stream time comes back with the records (a record late before the restart
        // stays late).
        self.stream_time = self.stream_time.max(at);
        match value {
            None => {
                if let Some(r) = self.map.get_mut(k) {
                    r.remove(&(at, seq));
                }
                self.unjoined.remove(&(at, k.to_vec(), seq));
            }
            Some(v) => {
                let joined = v.first().is_some_and(|f| *f != 0);
                let value = self.value_serde.deserialize(&self.changelog, v.get(1..))?;
                self.map
                    .entry(KeyBytes::new(k))
                    .or_default()
                    .insert((at, seq), Kept { value, joined });
                if self.track && !joined {
                    self.unjoined.insert((at, k.to_vec(), seq));
                } else {
                    self.unjoined.remove(&(at, k.to_vec(), seq));
                }
            }
        }
        Ok(())
    }

    fn changelog(&self) -> &str {
        &self.changelog
    }
}

/// A stream–stream join's joiner: the left value and the right one (`None`: a record
/// without a partner, in left and outer joins) to the result (`None`: nothing, for a
/// side an inner join does not forward alone).
pub(crate) type StreamJoiner<V1, V2, VR> =
    Arc<dyn Fn(Option<&V1>, Option<&V2>) -> Option<VR> + Send + Sync>;

/// One side of a stream–stream join.
pub(crate) struct StreamJoinSide<K, V1, V2, VR> {
    /// Whether this is the left side (its values come first in the joiner).
    pub left: bool,
    /// This side's store and the other's.
    pub this: StoreId,
    pub other: StoreId,
    pub windows: JoinWindows,
    /// Forward this side's records that found no partner (a left join's left side; both
    /// sides of an outer join); and whether the other side's are (for its expiry).
    pub forward_unjoined: bool,
    pub other_forwards_unjoined: bool,
    pub joiner: StreamJoiner<V1, V2, VR>,
    pub key_serde: SharedSerde<K>,
    pub children: Vec<NodeId>,
    pub scratch: BytesMut,
    pub out: PhantomData<fn() -> (V1, V2)>,
}

impl<K, V1, V2, VR> StreamJoinSide<K, V1, V2, VR>
where
    K: Clone + Send + 'static,
    V1: Clone + Send + 'static,
    V2: Clone + Send + 'static,
    VR: Clone + 'static,
{
    /// (earlier, later): how far the other side's records may lie from one of this side's.
    fn reach(&self) -> (i64, i64) {
        if self.left {
            (self.windows.before, self.windows.after)
        } else {
            (self.windows.after, self.windows.before)
        }
    }

    /// Forwards `joiner(left, right)` for `key` at time `at`; `mine` is this side's value.
    fn emit(
        &self,
        cx: &mut Cx<'_>,
        key: K,
        mine: Option<&dyn Any>,
        theirs: Option<&dyn Any>,
        at: i64,
    ) -> Result<()> {
        let (l, r) = if self.left {
            (mine, theirs)
        } else {
            (theirs, mine)
        };
        let joined = (self.joiner)(
            l.and_then(|v| v.downcast_ref::<V1>()),
            r.and_then(|v| v.downcast_ref::<V2>()),
        );
        let Some(joined) = joined else {
            return Ok(());
        };
        let saved = cx.timestamp;
        cx.timestamp = at;
        let result = cx.forward(&self.children, key, joined);
        cx.timestamp = saved;
        result
    }

    /// Forwards the records of either side that found no partner and that no record can
    /// join any more (older than the stream time less the retention: the whole window and
    /// the grace), and drops what no record can join.
    fn close_windows<VT: Clone + Send + 'static, VO: Clone + Send + 'static>(
        &mut self,
        cx: &mut Cx<'_>,
        stream_time: i64,
    ) -> Result<()> {
        let horizon = stream_time.saturating_sub(self.windows.retention_ms());
        let until = horizon.saturating_sub(1);
        if self.forward_unjoined {
            let closed = cx.store::<JoinStore<VT>>(self.this)?.take_unjoined(until);
            for (kb, at, v) in closed {
                let key = self.key_serde.deserialize("", Some(&kb))?;
                let mine: &dyn Any = &v;
                self.emit(cx, key, Some(mine), None, at)?;
            }
        }
        if self.other_forwards_unjoined {
            let closed = cx.store::<JoinStore<VO>>(self.other)?.take_unjoined(until);
            for (kb, at, v) in closed {
                let key = self.key_serde.deserialize("", Some(&kb))?;
                let theirs: &dyn Any = &v;
                self.emit(cx, key, None, Some(theirs), at)?;
            }
        }
        let step = (self.windows.retention_ms() / 10).max(1000);
        cx.store::<JoinStore<VT>>(self.this)?.expire(horizon, step);
        cx.store::<JoinStore<VO>>(self.other)?.expire(horizon, step);
        Ok(())
    }

    fn side<VT: Clone + Send + 'static, VO: Clone + Send + 'static>(
        &mut self,
        cx: &mut Cx<'_>,
        key: &K,
        value: &VT,
    ) -> Result<()> {
        let at = cx.timestamp;
        let (earlier, later) = self.reach();
        self.scratch.clear();
        if !self.key_serde.serialize_into("", key, &mut self.scratch)? || at < 0 {
            // A null key joins nothing (Kafka drops it), nor does a record without a time.
            *cx.dropped += 1;
            return Ok(());
        }
        let kb = self.scratch.to_vec();
        let other_time = cx.store::<JoinStore<VO>>(self.other)?.stream_time;
        let mine = cx.store::<JoinStore<VT>>(self.this)?;
        mine.stream_time = mine.stream_time.max(at);
        let stream_time = mine.stream_time.max(other_time);
        // Too late: its window ended more than the grace period ago, by stream time.
        if at.saturating_add(later).saturating_add(self.windows.grace) < stream_time {
            *cx.dropped += 1;
            return Ok(());
        }
        let partners = cx.store::<JoinStore<VO>>(self.other)?.join_range(
            &kb,
            at.saturating_sub(earlier),
            at.saturating_add(later),
        );
        cx.store::<JoinStore<VT>>(self.this)?
            .put(&kb, at, value.clone(), !partners.is_empty());
        let mine: &dyn Any = value;
        for (t, v) in partners {
            let theirs: &dyn Any = &v;
            self.emit(cx, key.clone(), Some(mine), Some(theirs), at.max(t))?;
        }
        self.close_windows::<VT, VO>(cx, stream_time)
    }
}

/// The left side's node.
pub(crate) struct JoinLeft<K, V1, V2, VR>(pub StreamJoinSide<K, V1, V2, VR>);

/// The right side's node.
pub(crate) struct JoinRight<K, V1, V2, VR>(pub StreamJoinSide<K, V1, V2, VR>);

impl<K, V1, V2, VR> Node<K, V1> for JoinLeft<K, V1, V2, VR>
where
    K: Clone + Send + 'static,
    V1: Clone + Send + 'static,
    V2: Clone + Send + 'static,
    VR: Clone + 'static,
{
    fn process(&mut self, cx: &mut Cx<'_>, key: K, value: V1) -> Result<()> {
        self.0.side::<V1, V2>(cx, &key, &value)
    }
}

impl<K, V1, V2, VR> Node<K, V2> for JoinRight<K, V1, V2, VR>
where
    K: Clone + Send + 'static,
    V1: Clone + Send + 'static,
    V2: Clone + Send + 'static,
    VR: Clone + 'static,
{
    fn process(&mut self, cx: &mut Cx<'_>, key: K, value: V2) -> Result<()> {
        self.0.side::<V2, V1>(cx, &key, &value)
    }
}
