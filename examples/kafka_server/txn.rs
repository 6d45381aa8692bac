//! The adapter's transaction APIs (Kafka's Transactions V1): InitProducerId with a
//! transactional id, AddPartitionsToTxn (up to v3, the client's versions), AddOffsetsToTxn,
//! TxnOffsetCommit and EndTxn. Every decision is the library's (`Log::init_transactional_id`,
//! `Log::add_partitions_to_txn`, `Log::add_offsets_to_txn`, `Log::txn_offset_commit`,
//! `Log::end_txn`); this file turns them into Kafka's answers. Transactional batches arrive
//! by Produce (`PartitionHandle::append_raw`, which admits them only for partitions added to
//! their producer's ongoing transaction); Fetch and ListOffsets answer `read_committed`
//! clients with the last stable offset and the aborted transactions.

use std::time::Duration;

use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse, EndTxnRequest, EndTxnResponse, InitProducerIdRequest,
    InitProducerIdResponse, ProducerId, RequestHeader, TxnOffsetCommitRequest,
    TxnOffsetCommitResponse, add_partitions_to_txn_response, txn_offset_commit_response,
};
use topiclog::{ConsumerGroupMetadata, Error, OffsetAndMetadata, TopicPartition};

use super::{Broker, code};

/// Kafka's codes used only by the transaction APIs.
pub(super) mod txn_code {
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub const INVALID_PRODUCER_EPOCH: i16 = 47;
    pub const INVALID_TXN_STATE: i16 = 48;
    pub const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
    pub const INVALID_TRANSACTION_TIMEOUT: i16 = 50;
    pub const CONCURRENT_TRANSACTIONS: i16 = 51;
    pub const PRODUCER_FENCED: i16 = 90;
}

/// Kafka's code for a transaction call's error. `fenced_code`: the request's version knows
/// PRODUCER_FENCED (KIP-588); older ones get INVALID_PRODUCER_EPOCH for a fence, as from Kafka.
pub(super) fn txn_error_code(e: &Error, fenced_code: bool) -> i16 {
    match e {
        // A producer fenced by a newer instance: fatal for the client.
        Error::Fenced { .. } if fenced_code => txn_code::PRODUCER_FENCED,
        // A fence for a version before PRODUCER_FENCED; and a transaction the timeout
        // aborted, after which the client initializes again (KIP-360).
        Error::Fenced { .. } | Error::TransactionTimedOut { .. } => {
            txn_code::INVALID_PRODUCER_EPOCH
        }
        Error::InvalidTxnState { state, .. }
            if state.starts_with("the transaction is being")
                || state.starts_with("the transaction is already being") =>
        {
            txn_code::CONCURRENT_TRANSACTIONS
        }
        Error::InvalidTxnState { state, .. }
            if state.starts_with("it was never initialized")
                || state.contains("has no transactional id here") =>
        {
            txn_code::INVALID_PRODUCER_ID_MAPPING
        }
        Error::InvalidTxnState { .. } => txn_code::INVALID_TXN_STATE,
        Error::InvalidConfig { field, .. } if field == "transaction.timeout.ms" => {
            txn_code::INVALID_TRANSACTION_TIMEOUT
        }
        Error::Closed { .. } => txn_code::COORDINATOR_NOT_AVAILABLE,
        other => other.kafka_error_code(),
    }
}

impl Broker {
    pub(super) fn init_producer_id(
        &self,
        req: InitProducerIdRequest,
        version: i16,
        _h: &RequestHeader,
    ) -> Option<InitProducerIdResponse> {
        let mut r = InitProducerIdResponse::default();
        r.producer_id = ProducerId(-1);
        r.producer_epoch = -1;
        let result = match &req.transactional_id {
            // A client that asks again with its current id and epoch (KIP-360) gets the next
            // epoch the same way.
            Some(id) => {
                let timeout =
                    Duration::from_millis(u64::try_from(req.transaction_timeout_ms).unwrap_or(0));
                self.log.init_transactional_id(id.0.as_str(), timeout)
            }
            None => self.log.init_producer_id(None),
        };
        match result {
            Ok((id, epoch)) => {
                r.producer_id = ProducerId(id);
                r.producer_epoch = epoch;
            }
            Err(e) => r.error_code = txn_error_code(&e, version >= 3),
        }
        Some(r)
    }

    pub(super) fn add_partitions_to_txn(
        &self,
        req: AddPartitionsToTxnRequest,
        version: i16,
        _h: &RequestHeader,
    ) -> Option<AddPartitionsToTxnResponse> {
        let id = req.v3_and_below_transactional_id.0.as_str();
        let (pid, epoch) = (
            req.v3_and_below_producer_id.0,
            req.v3_and_below_producer_epoch,
        );
        // Unknown partitions fail alone; the others join in one call (all or none, as
        // Kafka's coordinator adds them).
        let mut known = Vec::new();
        let mut unknown = Vec::new();
        for t in &req.v3_and_below_topics {
            for &p in &t.partitions {
                let tp = TopicPartition::new(t.name.0.as_str(), p);
                match self.log.partition(&tp.topic, p) {
                    Ok(_) => known.push(tp),
                    Err(_) => unknown.push(tp),
                }
            }
        }
        let outcome = if unknown.is_empty() {
            match self.log.add_partitions_to_txn(id, pid, epoch, &known) {
                Ok(()) => code::NONE,
                Err(e) => txn_error_code(&e, version >= 2),
            }
        } else {
            // Kafka answers the others OPERATION_NOT_ATTEMPTED.
            65
        };
        let mut r = AddPartitionsToTxnResponse::default();
        for t in req.v3_and_below_topics {
            let mut tr = add_partitions_to_txn_response::AddPartitionsToTxnTopicResult::default();
            tr.name = t.name.clone();
            for p in t.partitions {
                let mut pr =
                    add_partitions_to_txn_response::AddPartitionsToTxnPartitionResult::default();
                pr.partition_index = p;
                let missing = unknown
                    .iter()
                    .any(|tp| tp.partition == p && tp.topic == t.name.0.as_str());
                pr.partition_error_code = if missing {
                    code::UNKNOWN_TOPIC_OR_PARTITION
                } else {
                    outcome
                };
                tr.results_by_partition.push(pr);
            }
            r.results_by_topic_v3_and_below.push(tr);
        }
        Some(r)
    }

    pub(super) fn add_offsets_to_txn(
        &self,
        req: AddOffsetsToTxnRequest,
        version: i16,
        _h: &RequestHeader,
    ) -> Option<AddOffsetsToTxnResponse> {
        let mut r = AddOffsetsToTxnResponse::default();
        if let Err(e) = self.log.add_offsets_to_txn(
            req.transactional_id.0.as_str(),
            req.producer_id.0,
            req.producer_epoch,
        ) {
            r.error_code = txn_error_code(&e, version >= 2);
        }
        Some(r)
    }

    pub(super) fn txn_offset_commit(
        &self,
        req: TxnOffsetCommitRequest,
        version: i16,
        _h: &RequestHeader,
    ) -> Option<TxnOffsetCommitResponse> {
        let group = ConsumerGroupMetadata::member(
            req.group_id.0.as_str(),
            req.generation_id,
            req.member_id.as_str(),
        );
        let offsets: Vec<(TopicPartition, OffsetAndMetadata)> = req
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(|p| {
                    let mut om = OffsetAndMetadata::new(p.committed_offset);
                    om.metadata = p
                        .committed_metadata
                        .as_ref()
                        .map(|m| m.as_str().to_owned())
                        .unwrap_or_default();
                    (
                        TopicPartition::new(t.name.0.as_str(), p.partition_index),
                        om,
                    )
                })
            })
            .collect();
        let outcome = match self.log.txn_offset_commit(
            req.transactional_id.0.as_str(),
            req.producer_id.0,
            req.producer_epoch,
            &group,
            &offsets,
        ) {
            Ok(()) => code::NONE,
            Err(e @ Error::StaleMember { .. }) => e.kafka_error_code(),
            Err(e) => txn_error_code(&e, version >= 3),
        };
        let mut r = TxnOffsetCommitResponse::default();
        for t in req.topics {
            let mut tr = txn_offset_commit_response::TxnOffsetCommitResponseTopic::default();
            tr.name = t.name.clone();
            for p in t.partitions {
                let mut pr =
                    txn_offset_commit_response::TxnOffsetCommitResponsePartition::default();
                pr.partition_index = p.partition_index;
                pr.error_code = outcome;
                tr.partitions.push(pr);
            }
            r.topics.push(tr);
        }
        Some(r)
    }

    pub(super) fn end_txn(
        &self,
        req: EndTxnRequest,
        version: i16,
        _h: &RequestHeader,
    ) -> Option<EndTxnResponse> {
        let mut r = EndTxnResponse::default();
        r.producer_id = ProducerId(-1);
        r.producer_epoch = -1;
        if let Err(e) = self.log.end_txn(
            req.transactional_id.0.as_str(),
            req.producer_id.0,
            req.producer_epoch,
            req.committed,
        ) {
            r.error_code = txn_error_code(&e, version >= 2);
        }
        Some(r)
    }
}
