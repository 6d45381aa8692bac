//! Records of `__transaction_state`, in the layout of Kafka's `TransactionLogKey` and
//! `TransactionLogValue` version 0: key `version:int16 = 0, transactional_id:string`; value
//! `version:int16 = 0, producer_id:int64, producer_epoch:int16, transaction_timeout_ms:int32,
//! transaction_status:int8, transaction_partitions:[topic:string, partition_ids:[int32]],
//! transaction_last_update_timestamp_ms:int64, transaction_start_timestamp_ms:int64`.

use std::collections::{BTreeMap, BTreeSet};

use crate::types::TopicPartition;
use crate::wire::{Reader, put_str};

/// A transaction's status (Kafka's `TransactionState` codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
}

impl Status {
    fn code(self) -> i8 {
        match self {
            Status::Empty => 0,
            Status::Ongoing => 1,
            Status::PrepareCommit => 2,
            Status::PrepareAbort => 3,
            Status::CompleteCommit => 4,
            Status::CompleteAbort => 5,
        }
    }

    fn from_code(code: i8) -> Option<Status> {
        Some(match code {
            0 => Status::Empty,
            1 => Status::Ongoing,
            2 => Status::PrepareCommit,
            3 => Status::PrepareAbort,
            4 => Status::CompleteCommit,
            5 => Status::CompleteAbort,
            _ => return None,
        })
    }

    /// A transaction is open (records may be written in it, no decision made).
    pub(crate) fn is_open(self) -> bool {
        self == Status::Ongoing
    }

    /// The decision of a prepared transaction: `Some(true)` to commit.
    pub(crate) fn prepared(self) -> Option<bool> {
        match self {
            Status::PrepareCommit => Some(true),
            Status::PrepareAbort => Some(false),
            _ => None,
        }
    }
}

/// One transactional id's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TxnRecord {
    pub(crate) producer_id: i64,
    pub(crate) epoch: i16,
    pub(crate) timeout_ms: i32,
    pub(crate) status: Status,
    pub(crate) partitions: BTreeSet<TopicPartition>,
    pub(crate) last_update_ms: i64,
    pub(crate) start_ms: i64,
}

const VERSION: i16 = 0;

/// The record key of a transactional id.
pub(crate) fn encode_key(id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + id.len());
    out.extend_from_slice(&VERSION.to_be_bytes());
    put_str(&mut out, id);
    out
}

/// The transactional id of a record key; `None` for a key of another layout.
pub(crate) fn decode_key(bytes: &[u8]) -> Option<String> {
    let mut r = Reader(bytes);
    if r.i16()? != VERSION {
        return None;
    }
    r.string()
}

impl TxnRecord {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(&VERSION.to_be_bytes());
        out.extend_from_slice(&self.producer_id.to_be_bytes());
        out.extend_from_slice(&self.epoch.to_be_bytes());
        out.extend_from_slice(&self.timeout_ms.to_be_bytes());
        out.extend_from_slice(&self.status.code().to_be_bytes());
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for tp in &self.partitions {
            by_topic.entry(&tp.topic).or_default().push(tp.partition);
        }
        out.extend_from_slice(&(by_topic.len() as i32).to_be_bytes());
        for (topic, ids) in by_topic {
            put_str(&mut out, topic);
            out.extend_from_slice(&(ids.len() as i32).to_be_bytes());
            for id in ids {
                out.extend_from_slice(&id.to_be_bytes());
            }
        }
        out.extend_from_slice(&self.last_update_ms.to_be_bytes());
        out.extend_from_slice(&self.start_ms.to_be_bytes());
        out
    }

    /// A record's value; `None` when it does not decode.
    pub(crate) fn decode(bytes: &[u8]) -> Option<TxnRecord> {
        let mut r = Reader(bytes);
        if r.i16()? != VERSION {
            return None;
        }
        let producer_id = r.i64()?;
        let epoch = r.i16()?;
        let timeout_ms = r.i32()?;
        let status = Status::from_code(r.i8()?)?;
        let mut partitions = BTreeSet::new();
        let topics = r.i32()?;
        for _ in 0..topics.max(0) {
            let topic = r.string()?;
            let n = r.i32()?;
            for _ in 0..n.max(0) {
                partitions.insert(TopicPartition::new(topic.clone(), r.i32()?));
            }
        }
        Some(TxnRecord {
            producer_id,
            epoch,
            timeout_ms,
            status,
            partitions,
            last_update_ms: r.i64()?,
            start_ms: r.i64()?,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let rec = TxnRecord {
            producer_id: 7,
            epoch: 3,
            timeout_ms: 60_000,
            status: Status::PrepareCommit,
            partitions: [
                TopicPartition::new("a", 0),
                TopicPartition::new("a", 2),
                TopicPartition::new("b", 1),
            ]
            .into_iter()
            .collect(),
            last_update_ms: 11,
            start_ms: 10,
        };
        assert_eq!(TxnRecord::decode(&rec.encode()), Some(rec.clone()));
        assert_eq!(
            decode_key(&encode_key("payments")).as_deref(),
            Some("payments")
        );
        let bytes = rec.encode();
        for cut in 0..bytes.len() {
            assert!(TxnRecord::decode(&bytes[..cut]).is_none());
        }
    }
}
