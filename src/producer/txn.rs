//! The transactional producer (Kafka's `transactional.id`): its state machine, and the calls
//! that drive the log's transaction coordinator.

use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::error::{Error, Result};
use crate::group::offsets::OffsetAndMetadata;
use crate::layout::OFFSETS_TOPIC;
use crate::txn::TxnCoordinator;
use crate::types::{ConsumerGroupMetadata, TopicPartition};

use super::Producer;

/// Where a transactional producer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// `init_transactions` not called yet.
    Uninitialized,
    /// Between transactions.
    Ready,
    /// Between `begin_transaction` and its end.
    InTransaction,
}

/// What a transactional producer holds: its id, epoch and phase behind a lock each send holds
/// (shared) across its checks and its append, so a commit or abort (exclusive) never ends a
/// transaction with a batch of it half sent.
#[derive(Debug)]
pub(crate) struct Txn {
    id: String,
    timeout_ms: i32,
    gate: RwLock<Gate>,
    /// Partitions this transaction added to the coordinator's state (a transaction touches
    /// few: a list, searched without allocating).
    added: Mutex<Vec<(String, i32)>>,
    /// A send in this transaction failed: only `abort_transaction` may follow.
    failed: Mutex<Option<String>>,
    /// The producer was fenced: every call fails with this.
    fenced: Mutex<Option<Error>>,
}

#[derive(Debug)]
struct Gate {
    producer_id: i64,
    epoch: i16,
    phase: Phase,
    coordinator: Option<Arc<TxnCoordinator>>,
}

/// A send's hold on the transaction: the producer id and epoch to write with.
pub(crate) struct SendGuard<'a> {
    _gate: parking_lot::RwLockReadGuard<'a, Gate>,
    pub(crate) producer_id: i64,
    pub(crate) epoch: i16,
}

impl Txn {
    pub(crate) fn new(id: String, timeout_ms: i32) -> Txn {
        Txn {
            id,
            timeout_ms,
            gate: RwLock::new(Gate {
                producer_id: -1,
                epoch: -1,
                phase: Phase::Uninitialized,
                coordinator: None,
            }),
            added: Mutex::new(Vec::new()),
            failed: Mutex::new(None),
            fenced: Mutex::new(None),
        }
    }

    fn refuse(&self, operation: &'static str, state: impl Into<String>) -> Error {
        Error::InvalidTxnState {
            transactional_id: self.id.clone(),
            operation,
            state: state.into(),
        }
    }

    /// Fails with the fence, if the producer was fenced.
    fn check_fenced(&self) -> Result<()> {
        match &*self.fenced.lock() {
            Some(e) => Err(e.duplicate()),
            None => Ok(()),
        }
    }

    /// Notes an error a call in the transaction got: a fence is fatal; anything else leaves
    /// only `abort_transaction`.
    fn note(&self, e: &Error) {
        match e {
            Error::Fenced { .. } => *self.fenced.lock() = Some(e.duplicate()),
            _ => {
                self.failed.lock().get_or_insert_with(|| e.to_string());
            }
        }
    }

    fn in_transaction(&self, gate: &Gate, operation: &'static str) -> Result<()> {
        self.check_fenced()?;
        match gate.phase {
            Phase::Uninitialized => Err(self.refuse(operation, "init_transactions was not called")),
            Phase::Ready => Err(self.refuse(operation, "no transaction was begun")),
            Phase::InTransaction => match &*self.failed.lock() {
                Some(why) => Err(self.refuse(
                    operation,
                    format!("a call in the transaction failed ({why}); abort it"),
                )),
                None => Ok(()),
            },
        }
    }

    /// Checks that a send may go to `topic`-`partition` now, adding the partition to the
    /// transaction first; the returned guard is held across the append.
    pub(crate) fn begin_send(
        &self,
        topic: &str,
        partition: i32,
        sync: bool,
    ) -> Result<SendGuard<'_>> {
        let gate = self.gate.read();
        self.in_transaction(&gate, "send")?;
        let Some(coordinator) = gate.coordinator.clone() else {
            return Err(self.refuse("send", "init_transactions was not called"));
        };
        let r = self.add(&coordinator, &gate, topic, partition, sync);
        if let Err(e) = r {
            self.note(&e);
            return Err(e);
        }
        let (producer_id, epoch) = (gate.producer_id, gate.epoch);
        Ok(SendGuard {
            _gate: gate,
            producer_id,
            epoch,
        })
    }

    fn add(
        &self,
        coordinator: &TxnCoordinator,
        gate: &Gate,
        topic: &str,
        partition: i32,
        sync: bool,
    ) -> Result<()> {
        if self.is_added(topic, partition) {
            // The partition is in the transaction's state: a producer fenced since (a newer
            // instance, or the timeout) had this transaction ended with markers of a newer
            // epoch in every partition of it, so the partition itself refuses the batch.
            return Ok(());
        }
        let tp = TopicPartition::new(topic, partition);
        coordinator.add_partition(&self.id, gate.producer_id, gate.epoch, &tp, sync)?;
        self.added.lock().push((topic.to_string(), partition));
        Ok(())
    }

    fn is_added(&self, topic: &str, partition: i32) -> bool {
        self.added
            .lock()
            .iter()
            .any(|(t, p)| *p == partition && t == topic)
    }

    /// Adds the partitions a sender is about to write to the transaction in one state record
    /// (instead of one per partition as their first batches go out). A failure is left to
    /// the sends, which add their partitions one by one and report it.
    pub(crate) fn add_ahead(&self, partitions: &[(String, i32)], sync: bool) {
        let gate = self.gate.read();
        if self.in_transaction(&gate, "send").is_err() {
            return;
        }
        let Some(coordinator) = gate.coordinator.clone() else {
            return;
        };
        let new: Vec<TopicPartition> = partitions
            .iter()
            .filter(|(t, p)| !self.is_added(t, *p))
            .map(|(t, p)| TopicPartition::new(t.clone(), *p))
            .collect();
        if new.len() < 2 {
            return;
        }
        let added = coordinator.add_partitions(&self.id, gate.producer_id, gate.epoch, &new, sync);
        if added.is_ok() {
            self.added
                .lock()
                .extend(new.into_iter().map(|tp| (tp.topic, tp.partition)));
        }
    }

    /// Notes a send's failure (after the guard is dropped) and returns the error to report.
    /// A batch too large was not written: the producer splits it and sends the halves.
    pub(crate) fn send_failed(&self, e: Error) -> Error {
        if matches!(e, Error::RecordTooLarge { .. }) {
            return e;
        }
        // A partition fenced the batch: the coordinator says why (a newer instance, or the
        // transaction timed out).
        let e = match e {
            Error::Fenced { .. } => {
                let gate = self.gate.read();
                match &gate.coordinator {
                    Some(c) => c
                        .check(&self.id, gate.producer_id, gate.epoch)
                        .err()
                        .unwrap_or(e),
                    None => e,
                }
            }
            other => other,
        };
        self.note(&e);
        e
    }

    /// The producer id and epoch (-1, -1 before `init_transactions`).
    pub(crate) fn ids(&self) -> (i64, i16) {
        let g = self.gate.read();
        (g.producer_id, g.epoch)
    }

    /// Checks that a record may be queued for sending now (inside a transaction).
    pub(crate) fn check_send(&self) -> Result<()> {
        let gate = self.gate.read();
        self.in_transaction(&gate, "send")
    }
}

impl Producer {
    fn txn(&self, operation: &'static str) -> Result<&Txn> {
        self.inner
            .txn
            .as_ref()
            .ok_or_else(|| Error::InvalidTxnState {
                transactional_id: String::new(),
                operation,
                state: "the producer has no transactional id (ProducerConfig::transactional)"
                    .into(),
            })
    }

    /// Kafka's `initTransactions`: registers the transactional id with the log, moving it to
    /// a new epoch (persisted) that fences every older producer with the same id, in this
    /// process or from before a restart: their next call fails with [`Error::Fenced`]. A
    /// transaction the older producer left prepared is completed with its decision, an open
    /// one aborted. Call once, before the first transaction.
    ///
    /// # Errors
    /// [`Error::InvalidTxnState`] for a producer without a transactional id;
    /// [`Error::InvalidConfig`] when the id is already a producer `name`; I/O errors.
    pub fn init_transactions(&self) -> Result<()> {
        let txn = self.txn("init_transactions")?;
        txn.check_fenced()?;
        self.inner.log.check_writable()?;
        let coordinator = self
            .inner
            .log
            .services
            .get::<TxnCoordinator>()
            .ok_or(Error::Closed {
                what: "the transaction coordinator",
            })?;
        let mut gate = txn.gate.write();
        if gate.phase == Phase::InTransaction {
            return Err(txn.refuse("init_transactions", "a transaction is open"));
        }
        let (producer_id, epoch) = coordinator.init(&txn.id, txn.timeout_ms)?;
        *gate = Gate {
            producer_id,
            epoch,
            phase: Phase::Ready,
            coordinator: Some(coordinator),
        };
        txn.added.lock().clear();
        *txn.failed.lock() = None;
        Ok(())
    }

    /// Kafka's `beginTransaction`: what this producer sends until the commit or abort is one
    /// transaction.
    ///
    /// # Errors
    /// [`Error::InvalidTxnState`] before `init_transactions` or inside a transaction;
    /// [`Error::Fenced`] once fenced.
    pub fn begin_transaction(&self) -> Result<()> {
        let txn = self.txn("begin_transaction")?;
        txn.check_fenced()?;
        let mut gate = txn.gate.write();
        match gate.phase {
            Phase::Uninitialized => {
                Err(txn.refuse("begin_transaction", "init_transactions was not called"))
            }
            Phase::InTransaction => {
                Err(txn.refuse("begin_transaction", "a transaction is already open"))
            }
            Phase::Ready => {
                gate.phase = Phase::InTransaction;
                Ok(())
            }
        }
    }

    /// Kafka's `sendOffsetsToTransaction`: commits `offsets` for the consumer's group as part
    /// of this transaction (written to `__consumer_offsets` with the transaction's producer
    /// id). [`Consumer::committed`](crate::Consumer::committed) sees them only once the
    /// transaction commits; an abort drops them. `group` is the consuming member's
    /// [`Consumer::group_metadata`](crate::Consumer::group_metadata): offsets from a member
    /// a rebalance replaced are refused (KIP-447).
    ///
    /// # Errors
    /// [`Error::InvalidTxnState`] outside a transaction; [`Error::StaleMember`] for a
    /// member or generation the group no longer has; [`Error::Fenced`]; I/O errors.
    pub fn send_offsets_to_transaction(
        &self,
        offsets: &[(TopicPartition, OffsetAndMetadata)],
        group: &ConsumerGroupMetadata,
    ) -> Result<()> {
        let txn = self.txn("send_offsets_to_transaction")?;
        self.inner.log.check_open()?;
        let guard = txn.begin_send(OFFSETS_TOPIC, 0, true)?;
        let r = self.inner.log.coordinator().commit_txn(
            &group.group_id,
            &group.member_id,
            group.generation_id,
            (guard.producer_id, guard.epoch),
            offsets,
        );
        drop(guard);
        if let Err(e) = &r {
            txn.note(e);
        }
        r
    }

    /// Kafka's `commitTransaction`: sends what `send_async` queued, then makes the whole
    /// transaction visible to `read_committed` readers at once. The decision is durable
    /// before the first partition's marker (see `docs/durability.md`).
    ///
    /// # Errors
    /// [`Error::InvalidTxnState`] outside a transaction or after a failed send in it (abort
    /// then); [`Error::SendFailed`] when a queued record failed (the transaction must be
    /// aborted); [`Error::TransactionTimedOut`]; [`Error::Fenced`]; I/O errors (the
    /// transaction stays prepared: call `commit_transaction` again, or it completes at the
    /// next open).
    pub fn commit_transaction(&self) -> Result<()> {
        self.end(true)
    }

    /// Kafka's `abortTransaction`: discards the transaction (records queued by `send_async`
    /// are sent first and discarded with it). `read_committed` readers never see it.
    ///
    /// # Errors
    /// [`Error::InvalidTxnState`] outside a transaction; [`Error::Fenced`]; I/O errors.
    pub fn abort_transaction(&self) -> Result<()> {
        self.end(false)
    }

    fn end(&self, commit: bool) -> Result<()> {
        let operation = if commit {
            "commit_transaction"
        } else {
            "abort_transaction"
        };
        let txn = self.txn(operation)?;
        {
            let gate = txn.gate.read();
            if commit {
                txn.in_transaction(&gate, operation)?;
            } else {
                txn.check_fenced()?;
                if gate.phase != Phase::InTransaction {
                    return Err(txn.refuse(operation, "no transaction was begun"));
                }
            }
        }
        // What `send_async` queued goes out first (the sender takes the gate shared, so this
        // waits without holding it).
        let mut flushed = self.flush();
        let mut gate = loop {
            let gate = txn.gate.write();
            if self.inner.queues.lock().in_flight == 0 {
                break gate;
            }
            drop(gate);
            flushed = flushed.and(self.flush());
        };
        if let Err(e) = flushed {
            txn.note(&e);
            if commit {
                return Err(e);
            }
        }
        if commit && let Some(why) = &*txn.failed.lock() {
            return Err(txn.refuse(
                operation,
                format!("a call in the transaction failed ({why}); abort it"),
            ));
        }
        let Some(coordinator) = gate.coordinator.clone() else {
            return Err(txn.refuse(operation, "init_transactions was not called"));
        };
        match coordinator.end(&txn.id, gate.producer_id, gate.epoch, commit) {
            Ok(next) => {
                if let Some((producer_id, epoch)) = next {
                    gate.producer_id = producer_id;
                    gate.epoch = epoch;
                }
                gate.phase = Phase::Ready;
                txn.added.lock().clear();
                *txn.failed.lock() = None;
                Ok(())
            }
            Err(e) => {
                txn.note(&e);
                Err(e)
            }
        }
    }
}
