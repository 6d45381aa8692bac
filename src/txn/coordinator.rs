//! The transaction coordinator: one entry per transactional id, each behind its own lock;
//! every change of status or partitions is a record appended to `__transaction_state` before
//! it takes effect.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::codec::{Status, TxnRecord, encode_key};
use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::layout::OFFSETS_TOPIC;
use crate::log::LogInner;
use crate::log::services::Service;
use crate::partition::Partition;
use crate::record::BatchBuilder;
use crate::types::TopicPartition;

/// One transactional id.
#[derive(Debug)]
pub(crate) struct Entry {
    id: String,
    /// The latest state written (none before the first `init`).
    pub(crate) rec: Option<TxnRecord>,
    /// When the open transaction began, for its timeout.
    started: Option<Instant>,
    /// The epoch whose open transaction the timeout aborted: that producer gets
    /// [`Error::TransactionTimedOut`] until it aborts.
    timed_out: Option<i16>,
}

/// The transaction coordinator of one log (a service of it: ticked for timeouts).
pub(crate) struct TxnCoordinator {
    log: Weak<LogInner>,
    /// `__transaction_state`'s partition (none in a read-only open without one).
    state: Option<Arc<Partition>>,
    txns: Mutex<HashMap<String, Arc<Mutex<Entry>>>>,
    /// The transactional id of each producer id (for batches clients append).
    by_producer: Mutex<HashMap<i64, String>>,
}

impl std::fmt::Debug for TxnCoordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxnCoordinator").finish_non_exhaustive()
    }
}

impl Entry {
    /// The transactional id.
    pub(crate) fn id(&self) -> &str {
        &self.id
    }
}

/// What completing a transaction did.
pub(crate) struct Completed {
    pub(crate) producer_id: i64,
    pub(crate) partitions: Vec<TopicPartition>,
}

impl TxnCoordinator {
    pub(crate) fn new(
        log: Weak<LogInner>,
        state: Option<Arc<Partition>>,
        loaded: HashMap<String, TxnRecord>,
    ) -> TxnCoordinator {
        let by_producer = loaded
            .iter()
            .map(|(id, rec)| (rec.producer_id, id.clone()))
            .collect();
        let txns = loaded
            .into_iter()
            .map(|(id, rec)| {
                let e = Entry {
                    id: id.clone(),
                    rec: Some(rec),
                    started: None,
                    timed_out: None,
                };
                (id, Arc::new(Mutex::new(e)))
            })
            .collect();
        TxnCoordinator {
            log,
            state,
            txns: Mutex::new(txns),
            by_producer: Mutex::new(by_producer),
        }
    }

    fn log(&self) -> Result<Arc<LogInner>> {
        self.log.upgrade().ok_or(Error::Closed { what: "the log" })
    }

    fn entry(&self, id: &str) -> Arc<Mutex<Entry>> {
        let mut txns = self.txns.lock();
        Arc::clone(txns.entry(id.to_string()).or_insert_with(|| {
            Arc::new(Mutex::new(Entry {
                id: id.to_string(),
                rec: None,
                started: None,
                timed_out: None,
            }))
        }))
    }

    /// Every entry (for the open's recovery and the timeout sweep).
    pub(crate) fn entries(&self) -> Vec<Arc<Mutex<Entry>>> {
        self.txns.lock().values().cloned().collect()
    }

    /// Appends `rec` as `id`'s state; synced when `sync`.
    fn write(&self, id: &str, rec: &TxnRecord, sync: bool) -> Result<()> {
        let Some(p) = &self.state else {
            return Err(Error::ReadOnly);
        };
        let mut b = BatchBuilder::new(crate::Compression::None);
        b.push(Some(&encode_key(id)), Some(&rec.encode()), &[], now_ms())?;
        let r = p.append_encoded(b.finish()?, None)?;
        if sync {
            p.sync_to(r.last_offset + 1)?;
        }
        Ok(())
    }

    /// A new epoch of `id` (fencing every older producer of it), after completing what the
    /// previous holder left: a prepared transaction with its decision, an open one aborted.
    /// Returns the producer id and epoch to use.
    pub(crate) fn init(&self, id: &str, timeout_ms: i32) -> Result<(i64, i16)> {
        let log = self.log()?;
        let entry = self.entry(id);
        let mut e = entry.lock();
        let (producer_id, epoch) = log.init_producer_id_of(Some(id), true)?;
        if let Some(rec) = e.rec.as_ref()
            && (rec.status.is_open() || rec.status.prepared().is_some())
        {
            let commit = rec.status.prepared().unwrap_or(false);
            // The markers carry the new epoch, so a batch the old producer still sends is
            // fenced by each partition; when the id moved to a new producer id (its epochs ran
            // out), the old id's last epoch, which fences every batch of it.
            let marker_epoch = if rec.producer_id == producer_id {
                epoch
            } else {
                i16::MAX
            };
            self.complete(&log, &mut e, commit, marker_epoch)?;
        }
        let rec = TxnRecord {
            producer_id,
            epoch,
            timeout_ms,
            status: Status::Empty,
            partitions: std::collections::BTreeSet::default(),
            last_update_ms: now_ms(),
            start_ms: -1,
        };
        self.write(id, &rec, false)?;
        e.rec = Some(rec);
        e.started = None;
        e.timed_out = None;
        self.by_producer.lock().insert(producer_id, id.to_string());
        Ok((producer_id, epoch))
    }

    /// Fails unless `producer_id` at `epoch` is `id`'s current producer.
    fn verify(e: &Entry, producer_id: i64, epoch: i16) -> Result<()> {
        let Some(rec) = &e.rec else {
            return Err(Error::InvalidTxnState {
                transactional_id: e.id.clone(),
                operation: "use the transactional id",
                state: "it was never initialized".into(),
            });
        };
        if rec.producer_id == producer_id && rec.epoch == epoch {
            return Ok(());
        }
        if e.timed_out == Some(epoch) {
            return Err(Error::TransactionTimedOut {
                transactional_id: e.id.clone(),
                timeout_ms: u64::try_from(rec.timeout_ms).unwrap_or(0),
            });
        }
        Err(Error::Fenced {
            producer_id,
            epoch,
            current_epoch: rec.epoch,
        })
    }

    /// Fails with [`Error::Fenced`] or [`Error::TransactionTimedOut`] when `producer_id` at
    /// `epoch` is no longer `id`'s producer, or its transaction timed out.
    pub(crate) fn check(&self, id: &str, producer_id: i64, epoch: i16) -> Result<()> {
        let entry = self.entry(id);
        let e = entry.lock();
        Self::verify(&e, producer_id, epoch)
    }

    /// Adds `tp` to `id`'s transaction (opening it if need be), durably before the first
    /// batch goes to `tp`: a crash after that batch then finds the partition in the state and
    /// ends its transaction there. Synced when `sync` (the partition syncs each batch).
    pub(crate) fn add_partition(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        tp: &TopicPartition,
        sync: bool,
    ) -> Result<()> {
        self.add_partitions(id, producer_id, epoch, std::slice::from_ref(tp), sync)
    }

    /// [`TxnCoordinator::add_partition`] for several partitions, in one state record.
    pub(crate) fn add_partitions(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        tps: &[TopicPartition],
        sync: bool,
    ) -> Result<()> {
        let entry = self.entry(id);
        let mut e = entry.lock();
        Self::verify(&e, producer_id, epoch)?;
        let Some(rec) = e.rec.as_mut() else {
            return Ok(());
        };
        if let Some(commit) = rec.status.prepared() {
            return Err(Error::InvalidTxnState {
                transactional_id: id.to_string(),
                operation: "add a partition",
                state: format!(
                    "the transaction is being {}",
                    if commit { "committed" } else { "aborted" }
                ),
            });
        }
        let mut next = rec.clone();
        if !next.status.is_open() {
            next.status = Status::Ongoing;
            next.partitions.clear();
            next.start_ms = now_ms();
        } else if tps.iter().all(|tp| next.partitions.contains(tp)) {
            return Ok(());
        }
        next.partitions.extend(tps.iter().cloned());
        next.last_update_ms = now_ms();
        self.write(id, &next, sync)?;
        if !rec.status.is_open() {
            e.started = Some(Instant::now());
        }
        e.rec = Some(next);
        Ok(())
    }

    /// Runs `f` while `id`'s ongoing transaction, of `producer_id` at `epoch`, holds `tp`,
    /// under the transaction's lock (it cannot end meanwhile).
    ///
    /// # Errors
    /// [`Error::Fenced`], [`Error::TransactionTimedOut`]; [`Error::InvalidTxnState`] when no
    /// transaction is ongoing or it does not hold `tp`; `f`'s error.
    pub(crate) fn within<T>(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        tp: &TopicPartition,
        f: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let entry = self.entry(id);
        let e = entry.lock();
        Self::verify(&e, producer_id, epoch)?;
        let holds = e
            .rec
            .as_ref()
            .is_some_and(|r| r.status.is_open() && r.partitions.contains(tp));
        if !holds {
            return Err(Error::InvalidTxnState {
                transactional_id: id.to_string(),
                operation: "write",
                state: format!("{tp} was not added to an ongoing transaction"),
            });
        }
        f()
    }

    /// Commits or aborts `id`'s transaction. `Ok(None)` when it is done; `Ok(Some(id,
    /// epoch))` when the producer's timed-out transaction was already aborted by the log and
    /// it goes on at this new epoch.
    pub(crate) fn end(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> Result<Option<(i64, i16)>> {
        let log = self.log()?;
        let entry = self.entry(id);
        let mut e = entry.lock();
        if e.timed_out == Some(epoch)
            && let Some(rec) = &e.rec
        {
            if commit {
                return Err(Error::TransactionTimedOut {
                    transactional_id: id.to_string(),
                    timeout_ms: u64::try_from(rec.timeout_ms).unwrap_or(0),
                });
            }
            let next = (rec.producer_id, rec.epoch);
            e.timed_out = None;
            return Ok(Some(next));
        }
        Self::verify(&e, producer_id, epoch)?;
        let Some(rec) = &e.rec else { return Ok(None) };
        match rec.status.prepared() {
            Some(decided) if decided != commit => {
                return Err(Error::InvalidTxnState {
                    transactional_id: id.to_string(),
                    operation: if commit { "commit" } else { "abort" },
                    state: format!(
                        "the transaction is already being {}",
                        if decided { "committed" } else { "aborted" }
                    ),
                });
            }
            Some(_) => {}
            None if rec.status.is_open() => {}
            // Nothing was written in it: nothing to end.
            None => return Ok(None),
        }
        self.complete(&log, &mut e, commit, epoch)?;
        Ok(None)
    }

    /// Ends the entry's transaction: the Prepare record (synced when a partition of it syncs
    /// each batch), a marker in every partition, then the Complete record. A failure leaves
    /// the Prepare record: the next `end`, `init` or open finishes it.
    pub(crate) fn complete(
        &self,
        log: &LogInner,
        e: &mut Entry,
        commit: bool,
        marker_epoch: i16,
    ) -> Result<Completed> {
        let Some(rec) = e.rec.as_mut() else {
            return Ok(Completed {
                producer_id: -1,
                partitions: Vec::new(),
            });
        };
        let parts: Vec<(TopicPartition, Option<Arc<Partition>>)> = rec
            .partitions
            .iter()
            .map(|tp| {
                let p = log.topic(&tp.topic).and_then(|t| t.partition(tp.partition));
                (tp.clone(), p.ok())
            })
            .collect();
        // The markers' epoch goes into the Prepare record: a completion that the crash (or a
        // failed write) interrupted is finished at that epoch, which the partitions that got
        // a marker already have.
        let marker_epoch = marker_epoch.max(rec.epoch);
        if rec.status.is_open() {
            let syncs = parts.iter().any(|(_, p)| {
                p.as_ref()
                    .is_some_and(|p| p.config().flush_policy.syncs_each_batch())
            });
            let mut prepared = rec.clone();
            prepared.status = if commit {
                Status::PrepareCommit
            } else {
                Status::PrepareAbort
            };
            prepared.epoch = marker_epoch;
            prepared.last_update_ms = now_ms();
            self.write(&e.id, &prepared, syncs)?;
            *rec = prepared;
        }
        let mut done = Vec::with_capacity(parts.len());
        for (tp, p) in parts {
            // A partition deleted since needs no marker.
            let Some(p) = p else { continue };
            match p.write_marker(rec.producer_id, marker_epoch, commit) {
                // A marker of a newer epoch is there already (`Fenced`): it ended whatever
                // this producer had open in the partition.
                Ok(_) | Err(Error::Fenced { .. }) => {}
                Err(e) => return Err(e),
            }
            if tp.topic == OFFSETS_TOPIC {
                log.coordinator()
                    .offsets
                    .complete_txn(rec.producer_id, commit);
            }
            done.push(tp);
        }
        let mut complete = rec.clone();
        complete.status = if commit {
            Status::CompleteCommit
        } else {
            Status::CompleteAbort
        };
        complete.epoch = marker_epoch.max(complete.epoch);
        complete.last_update_ms = now_ms();
        self.write(&e.id, &complete, false)?;
        let producer_id = complete.producer_id;
        *rec = complete;
        e.started = None;
        Ok(Completed {
            producer_id,
            partitions: done,
        })
    }

    /// Aborts transactions open past their timeout. The id moves to a new epoch first and the
    /// ABORT markers carry it, so a batch its producer still sends is fenced by each
    /// partition; the producer's next call gets [`Error::TransactionTimedOut`].
    fn expire(&self) -> Result<()> {
        let log = self.log()?;
        for entry in self.entries() {
            let Some(mut e) = entry.try_lock() else {
                continue;
            };
            let (Some(rec), Some(started)) = (&e.rec, e.started) else {
                continue;
            };
            let timeout = Duration::from_millis(u64::try_from(rec.timeout_ms).unwrap_or(0));
            if !rec.status.is_open() || started.elapsed() <= timeout {
                continue;
            }
            let (old_id, old_epoch) = (rec.producer_id, rec.epoch);
            let id = e.id.clone();
            let (producer_id, epoch) = log.init_producer_id_of(Some(&id), true)?;
            let marker_epoch = if producer_id == old_id {
                epoch
            } else {
                i16::MAX
            };
            self.complete(&log, &mut e, false, marker_epoch)?;
            if let Some(rec) = e.rec.as_mut() {
                rec.producer_id = producer_id;
                rec.epoch = epoch;
            }
            e.timed_out = Some(old_epoch);
            self.by_producer.lock().insert(producer_id, id);
        }
        Ok(())
    }
}

impl Service for TxnCoordinator {
    fn append_transactional(
        &self,
        topic: &str,
        partition: i32,
        producer_id: i64,
        epoch: i16,
        append: &mut dyn FnMut() -> Result<crate::partition::AppendResult>,
    ) -> Option<Result<crate::partition::AppendResult>> {
        let id = self.by_producer.lock().get(&producer_id).cloned();
        let Some(id) = id else {
            return Some(Err(Error::InvalidTxnState {
                transactional_id: String::new(),
                operation: "write a transactional batch",
                state: format!("producer {producer_id} has no transactional id here"),
            }));
        };
        let tp = TopicPartition::new(topic, partition);
        Some(self.within(&id, producer_id, epoch, &tp, append))
    }

    fn tick(&self) {
        // A failure here (a closed log, a write error) is met again by the next tick or by
        // the producer's next call.
        let _ = self.expire();
    }

    fn close(&self) {}
}
