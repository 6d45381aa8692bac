//! Sliding windows (Kafka's `SlidingWindows`): windows of a fixed time difference that the
//! records define. Each record ends a window (from the difference before it to it) and
//! starts one (from just after it, the difference long) that exists while a later record
//! falls in it; a window's aggregate covers the records whose times it holds, both ends
//! included.
//!
//! The records themselves are kept (per key, within the difference and the grace, in a
//! store with a changelog) and each window a record changes is aggregated again from them:
//! no merger is needed, and a window's value never depends on the order records arrived
//! in. The cost per record grows with the square of the records of its key within the
//! difference.

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::BytesMut;

use super::join::JoinStore;
use super::node::{Cx, Node, NodeId, StoreId};
use super::ops::Step;
use super::serde::SharedSerde;
use super::window::{Window, Windowed};
use crate::error::Result;

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Kafka's `SlidingWindows`: windows `difference` long (both ends included) that records
/// define; a window takes records while the stream time is at most `grace` past its end.
/// Unlike Kafka, windows are not clamped at the epoch: a record less than the difference
/// after it gets a window that starts before it (Kafka gathers such records in one window
/// from 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlidingWindows {
    /// In ms, as below.
    difference: i64,
    grace: i64,
}

impl SlidingWindows {
    /// Windows of `difference`, closed at their end (Kafka's
    /// `ofTimeDifferenceWithNoGrace`).
    pub fn of_time_difference_with_no_grace(difference: Duration) -> SlidingWindows {
        SlidingWindows::of_time_difference_and_grace(difference, Duration::ZERO)
    }

    /// Windows of `difference` that take records up to `grace` after their end (Kafka's
    /// `ofTimeDifferenceAndGrace`).
    pub fn of_time_difference_and_grace(difference: Duration, grace: Duration) -> SlidingWindows {
        SlidingWindows {
            difference: ms(difference),
            grace: ms(grace),
        }
    }

    /// The windows' length: the time difference.
    pub fn size(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.difference).unwrap_or(0))
    }

    pub(crate) fn grace_ms(&self) -> i64 {
        self.grace
    }

    /// How long records are kept: a window still open may reach this far back.
    pub(crate) fn retention_ms(&self) -> i64 {
        self.difference.saturating_add(self.grace).saturating_add(1)
    }
}

/// A sliding-window aggregation: keeps each record and, for each window still open that
/// holds a new record or that the record starts (just after it, when a later record falls
/// in it), forwards the window's aggregate of its records (oldest first, through `step`
/// from nothing), stamped with its latest record's time. A record is dropped and counted
/// when every window that could hold it has closed.
pub(crate) struct SlidingAggregate<K, V, A> {
    pub store: StoreId,
    pub windows: SlidingWindows,
    pub step: Step<K, V, A>,
    pub key_serde: SharedSerde<K>,
    pub children: Vec<NodeId>,
    pub scratch: BytesMut,
}

impl<K, V, A> Node<K, V> for SlidingAggregate<K, V, A>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
    A: Clone + Send + 'static,
{
    fn process(&mut self, cx: &mut Cx<'_>, key: K, value: V) -> Result<()> {
        let at = cx.timestamp;
        self.scratch.clear();
        if at < 0 || !self.key_serde.serialize_into("", &key, &mut self.scratch)? {
            *cx.dropped += 1;
            return Ok(());
        }
        let kb = self.scratch.to_vec();
        let (d, grace) = (self.windows.difference, self.windows.grace);
        let store = cx.store::<JoinStore<V>>(self.store)?;
        store.stream_time = store.stream_time.max(at);
        let st = store.stream_time;
        // A window is open while the stream time is at most the grace past its end (its
        // end is in it).
        let open = |end: i64| end.saturating_add(grace) >= st;
        // The last window the record defines (just after it) ends the difference and 1 ms
        // after it: dropped when that one has closed.
        if !open(at.saturating_add(d).saturating_add(1)) {
            *cx.dropped += 1;
            return Ok(());
        }
        store.put(&kb, at, value, true);
        // The records near it define the windows that hold it.
        let near = store.join_range(
            &kb,
            at.saturating_sub(d).saturating_sub(1),
            at.saturating_add(d).saturating_add(1),
        );
        let mut starts = BTreeSet::new();
        // Its own window, ending at it.
        starts.insert(at.saturating_sub(d));
        // The window starting just after it, if a later record falls in it.
        if near
            .iter()
            .any(|(t, _)| *t > at && *t <= at.saturating_add(d).saturating_add(1))
        {
            starts.insert(at.saturating_add(1));
        }
        for (t, _) in &near {
            // A later record's window, ending at it, holds this one.
            if *t >= at && *t <= at.saturating_add(d) {
                starts.insert(t.saturating_sub(d));
            }
            // An earlier record's window, starting just after it, holds this one.
            if *t < at && at <= t.saturating_add(1).saturating_add(d) {
                starts.insert(t.saturating_add(1));
            }
        }
        let saved = cx.timestamp;
        for start in starts {
            let end = start.saturating_add(d);
            if !open(end) {
                continue;
            }
            let records = cx
                .store::<JoinStore<V>>(self.store)?
                .join_range(&kb, start, end);
            let mut agg: Option<A> = None;
            let mut latest = start;
            for (t, v) in records {
                latest = latest.max(t);
                agg = Some((self.step)(&key, v, agg));
            }
            let Some(agg) = agg else {
                continue;
            };
            let window = Windowed {
                key: key.clone(),
                window: Window { start, end },
            };
            // Kafka stamps a window's result with its latest record's time.
            cx.timestamp = latest;
            let r = cx.forward(&self.children, window, Some(agg));
            cx.timestamp = saved;
            r?;
        }
        let horizon = st.saturating_sub(self.windows.retention_ms());
        let step = (self.windows.retention_ms() / 10).max(1000);
        cx.store::<JoinStore<V>>(self.store)?.expire(horizon, step);
        Ok(())
    }
}
