//! Starting the coordinator when a log opens: load `__transaction_state`, finish every
//! transaction a crash left (prepared ones with their decision, open ones aborted), then end
//! any transaction a partition still holds open that the state does not (its marker was lost
//! in a damaged or torn range), all before the open returns, so no reader sees past them.

use std::collections::HashMap;
use std::sync::Arc;

use super::codec::{Status, TxnRecord, decode_key};
use super::coordinator::TxnCoordinator;
use crate::error::Result;
use crate::layout::{OFFSETS_TOPIC, TRANSACTION_STATE_TOPIC};
use crate::log::{LogInner, RecoveryReport, TxnCompleted};
use crate::partition::Partition;
use crate::types::TopicPartition;

/// Loads the transaction state, registers the coordinator and (unless read-only) completes
/// what a crash left.
pub(crate) fn start(log: &Arc<LogInner>, report: &mut RecoveryReport) -> Result<()> {
    let partition = log
        .topics
        .read()
        .get(TRANSACTION_STATE_TOPIC)
        .and_then(|t| t.partition(0).ok());
    let loaded = match &partition {
        Some(p) => load(p)?,
        None => HashMap::new(),
    };
    let weak = Arc::downgrade(log);
    let coordinator = log
        .services
        .get_or_register(move || TxnCoordinator::new(weak, partition, loaded));
    if log.shared.read_only {
        return Ok(());
    }
    recover(log, &coordinator, report)
}

/// The latest record of each transactional id.
fn load(p: &Arc<Partition>) -> Result<HashMap<String, TxnRecord>> {
    let mut out = HashMap::new();
    let mut offset = p.log_start();
    loop {
        let res = p.read(offset, 1 << 20)?;
        let Some(next) = res.next_offset() else { break };
        for b in &res.batches {
            // A damaged record is skipped: the partitions' own open transactions are ended
            // by the sweep below whatever the state says.
            if b.verify_crc().is_err() {
                continue;
            }
            let Ok(records) = b.owned_records() else {
                continue;
            };
            for r in records.flatten() {
                let Some(id) = r.key.as_deref().and_then(decode_key) else {
                    continue;
                };
                match r.value.as_deref().map(TxnRecord::decode) {
                    Some(Some(rec)) => {
                        out.insert(id, rec);
                    }
                    Some(None) => {}
                    None => {
                        out.remove(&id);
                    }
                }
            }
        }
        offset = next;
    }
    Ok(out)
}

fn recover(
    log: &Arc<LogInner>,
    coordinator: &TxnCoordinator,
    report: &mut RecoveryReport,
) -> Result<()> {
    let mut by_producer: HashMap<i64, (String, TxnRecord)> = HashMap::new();
    for entry in coordinator.entries() {
        let mut e = entry.lock();
        let Some(rec) = e.rec.clone() else { continue };
        let decided = rec.status.prepared();
        if rec.status.is_open() || decided.is_some() {
            let commit = decided.unwrap_or(false);
            let done = coordinator.complete(log, &mut e, commit, rec.epoch)?;
            report.transactions_completed.push(TxnCompleted {
                transactional_id: Some(id_of(&e)),
                producer_id: done.producer_id,
                committed: commit,
                partitions: done.partitions,
                reason: match decided {
                    Some(true) => "prepared commit",
                    Some(false) => "prepared abort",
                    None => "open at the crash",
                },
            });
        }
        if let Some(rec) = e.rec.clone() {
            by_producer.insert(rec.producer_id, (id_of(&e), rec));
        }
    }
    for p in log.all_partitions() {
        for (producer_id, epoch, _first) in p.open_transactions() {
            let tp = TopicPartition::new(p.topic.to_string(), p.id);
            let known = by_producer.get(&producer_id);
            let commit = known.is_some_and(|(_, rec)| {
                rec.status == Status::CompleteCommit
                    && rec.epoch == epoch
                    && rec.partitions.contains(&tp)
            });
            p.write_marker(producer_id, epoch, commit)?;
            if tp.topic == OFFSETS_TOPIC {
                log.coordinator().offsets.complete_txn(producer_id, commit);
            }
            report.transactions_completed.push(TxnCompleted {
                transactional_id: known.map(|(id, _)| id.clone()),
                producer_id,
                committed: commit,
                partitions: vec![tp],
                reason: "marker missing",
            });
        }
    }
    Ok(())
}

fn id_of(e: &super::coordinator::Entry) -> String {
    e.id().to_string()
}
