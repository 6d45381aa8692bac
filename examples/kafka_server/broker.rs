//! The request handler of the Kafka-protocol adapter: one decoded request in, one encoded
//! response out. The wire codec is the `kafka-protocol` crate; every storage, group and
//! offset decision is the library's (`Log`, `PartitionHandle::append_raw`,
//! `Log::join_group` and friends, `Error::kafka_error_code`).
//!
//! Shared by the server (`examples/kafka_server.rs`), its tests and its fuzz target.

// Every handler has the same shape (request by value, version, header; `Option` for
// "no response") so that one macro dispatches them all.
#![allow(
    clippy::needless_pass_by_value,
    clippy::unnecessary_wraps,
    clippy::unused_self
)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, BrokerId, CreateTopicsRequest,
    CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse, FetchRequest, FetchResponse,
    FindCoordinatorRequest, FindCoordinatorResponse, HeartbeatRequest, HeartbeatResponse,
    InitProducerIdRequest, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, ListOffsetsRequest, ListOffsetsResponse, MetadataRequest, MetadataResponse,
    OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse,
    ProduceRequest, ProduceResponse, ProducerId, RequestHeader, ResponseHeader, SyncGroupRequest,
    SyncGroupResponse, TopicName, api_versions_response, create_topics_response,
    delete_topics_response, fetch_response, find_coordinator_response, join_group_response,
    leave_group_response, list_offsets_response, metadata_response, offset_commit_response,
    offset_fetch_response, produce_response,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use topiclog::{BatchHeader, Compression, IsolationLevel};
use topiclog::{
    Error, JoinRequest, Log, Notifier, OffsetAndMetadata, PartitionHandle, TopicPartition,
};

#[path = "old_versions.rs"]
mod old_versions;

// The admin APIs, in their own file beside this one.
#[path = "admin.rs"]
mod admin;
#[path = "txn.rs"]
mod txn;

/// The cluster id Metadata and DescribeCluster give.
const CLUSTER_ID: &str = "topiclog";

/// Kafka's error codes used here (`Error::kafka_error_code` maps the library's errors).
mod code {
    pub const NONE: i16 = 0;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const INVALID_REQUIRED_ACKS: i16 = 21;
    pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
    pub const INVALID_GROUP_ID: i16 = 24;
    pub const UNKNOWN_MEMBER_ID: i16 = 25;
    pub const INVALID_SESSION_TIMEOUT: i16 = 26;
    pub const UNSUPPORTED_VERSION: i16 = 35;
    pub const INVALID_PARTITIONS: i16 = 37;
    pub const INVALID_REPLICATION_FACTOR: i16 = 38;
    pub const INVALID_REQUEST: i16 = 42;
    pub const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;
    pub const UNSUPPORTED_COMPRESSION_TYPE: i16 = 76;
    pub const UNKNOWN_TOPIC_ID: i16 = 100;
}

/// The APIs served and the version ranges advertised: from the oldest version Kafka 3.9
/// serves; up to the newest this adapter implements, capped by the codec's. Versions below
/// the codec's are read by `old_versions`. Produce and Fetch stop at the last versions that
/// name topics (v13 uses topic ids).
///
/// Produce v0-v2 and Fetch v0-v3 carry the old message formats (magic 0 and 1), which are
/// not stored here: they are answered with UNSUPPORTED_VERSION in their own layout. They
/// are advertised all the same, as by Kafka 3.9, because librdkafka 2.0 (Debian 12's kcat)
/// compresses with gzip, snappy or lz4 only for brokers that list Produce v0 (it then sends
/// the highest version both sides support).
const SERVED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 0, 12),
    (ApiKey::Fetch, 0, 12),
    (ApiKey::ListOffsets, 0, 7),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::OffsetCommit, 0, 8),
    (ApiKey::OffsetFetch, 0, 8),
    (ApiKey::FindCoordinator, 0, 5),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::CreateTopics, 0, 7),
    (ApiKey::DeleteTopics, 0, 5),
    (ApiKey::InitProducerId, 0, 4),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::DescribeCluster, 0, 1),
    // Transactions V1 (no `transaction.version` feature is advertised, so clients use V1):
    // AddPartitionsToTxn as clients send it (v4 and later are the broker's batched form),
    // and the versions before those KIP-890's Transactions V2 added.
    (ApiKey::AddPartitionsToTxn, 0, 3),
    (ApiKey::AddOffsetsToTxn, 0, 3),
    (ApiKey::EndTxn, 0, 4),
    (ApiKey::TxnOffsetCommit, 0, 4),
];

/// A fetched topic: its partitions with fetch offset and partition byte limit.
type FetchTopicPlan = (TopicName, Vec<(i32, i64, i32)>);
type FetchPlan = [FetchTopicPlan];
/// A topic's partitions in an OffsetCommit: `None` while part of the commit, else an error.
type CommitOutcome = (TopicName, Vec<(i32, Option<i16>)>);
/// A topic's committed offsets by partition.
type TopicOffsets = (TopicName, Vec<(i32, Option<OffsetAndMetadata>)>);

/// How the adapter presents itself and what it allows.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Host clients are told to connect to (Metadata, FindCoordinator).
    pub host: String,
    /// Port clients are told to connect to.
    pub port: i32,
    /// Create unknown topics named in Metadata requests that allow it.
    pub auto_create_topics: bool,
    /// Partitions of auto-created topics and of CreateTopics asking for the default (-1).
    pub default_partitions: i32,
    /// Largest request frame accepted; larger ones close the connection.
    pub max_frame_bytes: usize,
    /// Longest Fetch long poll honoured (a client's `max_wait_ms` is capped to it).
    pub max_fetch_wait: Duration,
}

/// What to do after a request.
#[derive(Debug)]
pub enum Reply {
    /// Send this response (without its size prefix).
    Send(Vec<u8>),
    /// Send nothing (Produce with acks = 0).
    Nothing,
    /// Close the connection, for this reason.
    Close(String),
}

/// The adapter's state: the log and its presentation.
pub struct Broker {
    log: Log,
    config: BrokerConfig,
}

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

fn topic_name(s: &str) -> TopicName {
    TopicName(sb(s))
}

fn served(key: ApiKey) -> Option<(i16, i16)> {
    SERVED
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|&(_, lo, hi)| (lo, hi.min(key.valid_versions().max)))
}

/// Encodes a response with its header.
fn encode<R: Encodable + HeaderVersion>(
    correlation_id: i32,
    header_version: i16,
    version: i16,
    response: &R,
) -> Reply {
    let mut buf = BytesMut::new();
    let mut header = ResponseHeader::default();
    header.correlation_id = correlation_id;
    match header
        .encode(&mut buf, header_version)
        .and_then(|()| response.encode(&mut buf, version))
    {
        Ok(()) => Reply::Send(buf.to_vec()),
        Err(e) => Reply::Close(format!("cannot encode the response: {e}")),
    }
}

impl Broker {
    /// An adapter over `log`.
    pub fn new(log: Log, config: BrokerConfig) -> Arc<Broker> {
        Arc::new(Broker { log, config })
    }

    /// The log served.
    #[allow(dead_code)] // used by the tests
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// The configuration.
    #[allow(dead_code)] // used by the tests
    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    /// Handles one request frame (the bytes after the size prefix).
    pub fn handle(&self, frame: Bytes) -> Reply {
        if frame.len() < 8 {
            return Reply::Close(format!(
                "a {}-byte frame cannot hold a request header",
                frame.len()
            ));
        }
        let mut peek = frame.clone();
        let raw_key = peek.get_i16();
        let version = peek.get_i16();
        let correlation_id = peek.get_i32();
        let Ok(key) = ApiKey::try_from(raw_key) else {
            return Reply::Close(format!("unknown API key {raw_key}"));
        };
        let Some((lo, hi)) = served(key) else {
            return Reply::Close(format!("API {key:?} is not served"));
        };
        if !(lo..=hi).contains(&version) {
            if key == ApiKey::ApiVersions {
                // KIP-511: answer in v0 with the supported ranges, and the client retries.
                let mut r = self.api_versions_response();
                r.error_code = code::UNSUPPORTED_VERSION;
                return encode(correlation_id, 0, 0, &r);
            }
            return Reply::Close(format!("{key:?} v{version} is not served (v{lo}-v{hi})"));
        }
        if version < key.valid_versions().min {
            return self.handle_old(key, version, correlation_id, frame);
        }
        let mut body = frame;
        let header = match RequestHeader::decode(&mut body, key.request_header_version(version)) {
            Ok(h) => h,
            Err(e) => return Reply::Close(format!("bad request header: {e}")),
        };
        let rh = key.response_header_version(version);
        macro_rules! serve {
            ($req:ty, $method:ident) => {{
                match <$req>::decode(&mut body, version) {
                    Ok(req) => match self.$method(req, version, &header) {
                        Some(resp) => encode(correlation_id, rh, version, &resp),
                        None => Reply::Nothing,
                    },
                    Err(e) => Reply::Close(format!("bad {key:?} v{version} request: {e}")),
                }
            }};
        }
        match key {
            ApiKey::ApiVersions => serve!(ApiVersionsRequest, api_versions),
            ApiKey::Metadata => serve!(MetadataRequest, metadata),
            ApiKey::Produce => serve!(ProduceRequest, produce),
            ApiKey::Fetch => serve!(FetchRequest, fetch),
            ApiKey::ListOffsets => serve!(ListOffsetsRequest, list_offsets),
            ApiKey::CreateTopics => serve!(CreateTopicsRequest, create_topics),
            ApiKey::DeleteTopics => serve!(DeleteTopicsRequest, delete_topics),
            ApiKey::FindCoordinator => serve!(FindCoordinatorRequest, find_coordinator),
            ApiKey::JoinGroup => serve!(JoinGroupRequest, join_group),
            ApiKey::SyncGroup => serve!(SyncGroupRequest, sync_group),
            ApiKey::Heartbeat => serve!(HeartbeatRequest, heartbeat),
            ApiKey::LeaveGroup => serve!(LeaveGroupRequest, leave_group),
            ApiKey::OffsetCommit => serve!(OffsetCommitRequest, offset_commit),
            ApiKey::OffsetFetch => serve!(OffsetFetchRequest, offset_fetch),
            ApiKey::InitProducerId => serve!(InitProducerIdRequest, init_producer_id),
            ApiKey::AddPartitionsToTxn => serve!(
                kafka_protocol::messages::AddPartitionsToTxnRequest,
                add_partitions_to_txn
            ),
            ApiKey::AddOffsetsToTxn => serve!(
                kafka_protocol::messages::AddOffsetsToTxnRequest,
                add_offsets_to_txn
            ),
            ApiKey::TxnOffsetCommit => serve!(
                kafka_protocol::messages::TxnOffsetCommitRequest,
                txn_offset_commit
            ),
            ApiKey::EndTxn => serve!(kafka_protocol::messages::EndTxnRequest, end_txn),
            ApiKey::ListGroups => serve!(kafka_protocol::messages::ListGroupsRequest, list_groups),
            ApiKey::DescribeGroups => serve!(
                kafka_protocol::messages::DescribeGroupsRequest,
                describe_groups
            ),
            ApiKey::DeleteGroups => {
                serve!(kafka_protocol::messages::DeleteGroupsRequest, delete_groups)
            }
            ApiKey::OffsetDelete => {
                serve!(kafka_protocol::messages::OffsetDeleteRequest, offset_delete)
            }
            ApiKey::DescribeConfigs => serve!(
                kafka_protocol::messages::DescribeConfigsRequest,
                describe_configs
            ),
            ApiKey::AlterConfigs => {
                serve!(kafka_protocol::messages::AlterConfigsRequest, alter_configs)
            }
            ApiKey::IncrementalAlterConfigs => {
                serve!(
                    kafka_protocol::messages::IncrementalAlterConfigsRequest,
                    incremental_alter_configs
                )
            }
            ApiKey::CreatePartitions => serve!(
                kafka_protocol::messages::CreatePartitionsRequest,
                create_partitions
            ),
            ApiKey::DeleteRecords => serve!(
                kafka_protocol::messages::DeleteRecordsRequest,
                delete_records
            ),
            ApiKey::DescribeCluster => serve!(
                kafka_protocol::messages::DescribeClusterRequest,
                describe_cluster
            ),
            _ => Reply::Close(format!("API {key:?} is not served")),
        }
    }

    fn api_versions_response(&self) -> ApiVersionsResponse {
        let mut r = ApiVersionsResponse::default();
        r.api_keys = SERVED
            .iter()
            .filter_map(|&(key, _, _)| {
                let (lo, hi) = served(key)?;
                let mut v = api_versions_response::ApiVersion::default();
                v.api_key = key as i16;
                v.min_version = lo;
                v.max_version = hi;
                Some(v)
            })
            .collect();
        r.finalized_features_epoch = -1;
        r
    }

    fn api_versions(
        &self,
        _req: ApiVersionsRequest,
        _version: i16,
        _h: &RequestHeader,
    ) -> Option<ApiVersionsResponse> {
        Some(self.api_versions_response())
    }

    fn broker_entry(&self) -> metadata_response::MetadataResponseBroker {
        let mut b = metadata_response::MetadataResponseBroker::default();
        b.node_id = BrokerId(0);
        b.host = sb(&self.config.host);
        b.port = self.config.port;
        b
    }

    fn metadata_topic(&self, name: &str) -> metadata_response::MetadataResponseTopic {
        let mut t = metadata_response::MetadataResponseTopic::default();
        t.name = Some(topic_name(name));
        t.is_internal = topiclog::is_internal_topic(name);
        t.topic_authorized_operations = i32::MIN;
        match self.log.partition_count(name) {
            Ok(n) => {
                t.partitions = (0..n)
                    .map(|p| {
                        let mut mp = metadata_response::MetadataResponsePartition::default();
                        mp.partition_index = p;
                        mp.leader_id = BrokerId(0);
                        mp.leader_epoch = -1;
                        mp.replica_nodes = vec![BrokerId(0)];
                        mp.isr_nodes = vec![BrokerId(0)];
                        mp
                    })
                    .collect();
            }
            Err(e) => t.error_code = e.kafka_error_code(),
        }
        t
    }

    fn metadata(
        &self,
        req: MetadataRequest,
        version: i16,
        _h: &RequestHeader,
    ) -> Option<MetadataResponse> {
        let mut r = MetadataResponse::default();
        r.brokers = vec![self.broker_entry()];
        r.cluster_id = Some(sb(CLUSTER_ID));
        r.controller_id = BrokerId(0);
        r.cluster_authorized_operations = i32::MIN;
        let all = match &req.topics {
            None => true,
            Some(t) => version == 0 && t.is_empty(),
        };
        if all {
            r.topics = self
                .log
                .all_topics()
                .iter()
                .map(|n| self.metadata_topic(n))
                .collect();
            return Some(r);
        }
        let may_create =
            self.config.auto_create_topics && (version < 4 || req.allow_auto_topic_creation);
        for wanted in req.topics.unwrap_or_default() {
            let Some(name) = wanted.name else {
                let mut t = metadata_response::MetadataResponseTopic::default();
                t.error_code = code::UNKNOWN_TOPIC_ID;
                t.topic_id = wanted.topic_id;
                r.topics.push(t);
                continue;
            };
            let name = name.0.as_str();
            if may_create
                && matches!(
                    self.log.partition_count(name),
                    Err(Error::TopicNotFound { .. })
                )
                && let Err(e) = self.log.create_topic(name, self.config.default_partitions)
                && !matches!(e, Error::TopicAlreadyExists { .. })
            {
                let mut t = metadata_response::MetadataResponseTopic::default();
                t.name = Some(topic_name(name));
                t.error_code = e.kafka_error_code();
                r.topics.push(t);
                continue;
            }
            r.topics.push(self.metadata_topic(name));
        }
        Some(r)
    }

    fn produce(
        &self,
        req: ProduceRequest,
        version: i16,
        _h: &RequestHeader,
    ) -> Option<ProduceResponse> {
        let acks = req.acks;
        let refuse = (!(-1..=1).contains(&acks)).then_some(code::INVALID_REQUIRED_ACKS);
        let mut r = ProduceResponse::default();
        for topic in req.topic_data {
            let name = topic.name.0.as_str().to_owned();
            let mut tr = produce_response::TopicProduceResponse::default();
            tr.name = topic.name.clone();
            for pd in topic.partition_data {
                let mut pr = produce_response::PartitionProduceResponse::default();
                pr.index = pd.index;
                pr.base_offset = -1;
                pr.log_append_time_ms = -1;
                pr.log_start_offset = -1;
                let outcome = match refuse {
                    Some(c) => Err((c, None)),
                    None => self.append_partition(&name, pd.index, pd.records, version),
                };
                match outcome {
                    Ok((res, log_append_time)) => {
                        pr.base_offset = res.base_offset;
                        pr.log_start_offset = res.log_start_offset;
                        if log_append_time {
                            pr.log_append_time_ms = res.timestamp;
                        }
                    }
                    Err((c, message)) => {
                        pr.error_code = c;
                        pr.error_message = message.map(StrBytes::from_string);
                    }
                }
                tr.partition_responses.push(pr);
            }
            r.responses.push(tr);
        }
        (acks != 0).then_some(r)
    }

    /// Validates and appends one partition's batch; returns the append result and whether
    /// the topic stamps LogAppendTime.
    fn append_partition(
        &self,
        topic: &str,
        partition: i32,
        records: Option<Bytes>,
        version: i16,
    ) -> Result<(topiclog::AppendResult, bool), (i16, Option<String>)> {
        let fail = |e: Error| (e.kafka_error_code(), Some(e.to_string()));
        let handle = self.log.partition(topic, partition).map_err(fail)?;
        let Some(records) = records else {
            return Err(fail(Error::InvalidBatch {
                reason: "no records".into(),
            }));
        };
        let header = BatchHeader::parse(&records).map_err(fail)?;
        if version < 7 && header.compression().ok() == Some(Compression::Zstd) {
            return Err((
                code::UNSUPPORTED_COMPRESSION_TYPE,
                Some("zstd needs Produce v7 or later".into()),
            ));
        }
        let mut batch = records.to_vec();
        let res = handle.append_raw(&mut batch).map_err(fail)?;
        let log_append_time = self
            .log
            .describe_topic(topic)
            .is_ok_and(|d| d.config.timestamp_type == topiclog::TimestampType::LogAppendTime);
        Ok((res, log_append_time))
    }

    fn fetch(&self, req: FetchRequest, version: i16, _h: &RequestHeader) -> Option<FetchResponse> {
        let mut r = FetchResponse::default();
        if version >= 7 && (req.session_id != 0 || req.session_epoch > 0) {
            // No fetch sessions: a client that asks for one gets "no such session" and
            // falls back to full fetches.
            r.error_code = code::FETCH_SESSION_ID_NOT_FOUND;
            return Some(r);
        }
        // Resolve the partitions once; register one notifier on all of them before the
        // first read, so that an append after a read always wakes the wait below.
        let mut targets: Vec<(usize, Result<PartitionHandle, Error>)> = Vec::new();
        let mut topics: Vec<FetchTopicPlan> = Vec::new();
        for t in &req.topics {
            let parts = t
                .partitions
                .iter()
                .map(|p| (p.partition, p.fetch_offset, p.partition_max_bytes))
                .collect::<Vec<_>>();
            // isolation_level 1 (v4 and later): read_committed, up to the last stable offset.
            let level = if req.isolation_level == 1 {
                IsolationLevel::ReadCommitted
            } else {
                IsolationLevel::ReadUncommitted
            };
            for p in &parts {
                let handle = self
                    .log
                    .partition(t.topic.0.as_str(), p.0)
                    .map(|h| h.with_isolation_level(level));
                targets.push((topics.len(), handle));
            }
            topics.push((t.topic.clone(), parts));
        }
        let notifier = Notifier::new();
        for (_, h) in &targets {
            if let Ok(h) = h {
                h.register_notifier(&notifier);
            }
        }
        let wait = Duration::from_millis(u64::try_from(req.max_wait_ms).unwrap_or(0))
            .min(self.config.max_fetch_wait);
        let deadline = Instant::now() + wait;
        let min_bytes = usize::try_from(req.min_bytes).unwrap_or(0);
        let max_bytes = usize::try_from(req.max_bytes).unwrap_or(0);
        let response = loop {
            notifier.reset();
            let (responses, total, any_error) =
                self.fetch_once(&topics, &targets, max_bytes, version);
            if total >= min_bytes || any_error || Instant::now() >= deadline {
                break responses;
            }
            notifier.wait_until(deadline);
        };
        for (_, h) in &targets {
            if let Ok(h) = h {
                h.unregister_notifier(&notifier);
            }
        }
        r.responses = response;
        Some(r)
    }

    /// One pass over the fetched partitions: responses, bytes returned, whether any
    /// partition answered with an error.
    fn fetch_once(
        &self,
        topics: &FetchPlan,
        targets: &[(usize, Result<PartitionHandle, Error>)],
        max_bytes: usize,
        version: i16,
    ) -> (Vec<fetch_response::FetchableTopicResponse>, usize, bool) {
        let mut out = Vec::with_capacity(topics.len());
        let mut total = 0usize;
        let mut any_error = false;
        let mut handles = targets.iter().map(|(_, h)| h);
        for (name, parts) in topics {
            let mut tr = fetch_response::FetchableTopicResponse::default();
            tr.topic = name.clone();
            for &(partition, offset, part_max) in parts {
                let mut pd = fetch_response::PartitionData::default();
                pd.partition_index = partition;
                pd.high_watermark = -1;
                pd.last_stable_offset = -1;
                pd.log_start_offset = -1;
                pd.preferred_read_replica = BrokerId(-1);
                pd.aborted_transactions = Some(Vec::new());
                let handle = handles.next();
                if let Some(Ok(h)) = handle {
                    pd.high_watermark = h.high_watermark();
                    pd.last_stable_offset = h.last_stable_offset();
                    pd.log_start_offset = h.log_start_offset();
                }
                // The first batch is returned whole even past the limits; once the response
                // is full, the remaining partitions get nothing.
                let budget = if total > 0 && total >= max_bytes {
                    0
                } else {
                    usize::try_from(part_max)
                        .unwrap_or(0)
                        .min(max_bytes.saturating_sub(total))
                        .max(1)
                };
                let result = match handle {
                    Some(Ok(_)) if budget == 0 => Ok(None),
                    Some(Ok(h)) => h
                        .read_contiguous(offset, budget)
                        .map(Some)
                        .map_err(|e| e.kafka_error_code()),
                    Some(Err(e)) => Err(e.kafka_error_code()),
                    None => Err(code::UNKNOWN_TOPIC_OR_PARTITION),
                };
                match result {
                    Ok(Some(read)) => {
                        pd.high_watermark = read.high_watermark;
                        pd.last_stable_offset = read.last_stable_offset;
                        pd.log_start_offset = read.log_start_offset;
                        // For read_committed: the aborted transactions with records in what
                        // is returned, whose batches the client drops.
                        pd.aborted_transactions = Some(
                            read.aborted_transactions
                                .iter()
                                .map(|t| {
                                    let mut a = fetch_response::AbortedTransaction::default();
                                    a.producer_id = ProducerId(t.producer_id);
                                    a.first_offset = t.first_offset;
                                    a
                                })
                                .collect(),
                        );
                        let zstd = read.contiguous().iter().any(|run| holds_zstd(run));
                        if zstd && version < 10 {
                            pd.error_code = code::UNSUPPORTED_COMPRESSION_TYPE;
                            any_error = true;
                        } else {
                            // Served as stored: a view of the mapped segment when the
                            // batches come from one segment, else the segments' runs joined.
                            let records = match read.contiguous() {
                                [one] => one.clone(),
                                runs => {
                                    let size = runs.iter().map(Bytes::len).sum();
                                    let mut joined = BytesMut::with_capacity(size);
                                    for r in runs {
                                        joined.extend_from_slice(r);
                                    }
                                    joined.freeze()
                                }
                            };
                            total += records.len();
                            pd.records = Some(records);
                        }
                    }
                    Ok(None) => pd.records = Some(Bytes::new()),
                    Err(c) => {
                        pd.error_code = c;
                        any_error = true;
                    }
                }
                tr.partitions.push(pd);
            }
            out.push(tr);
        }
        (out, total, any_error)
    }

    fn list_offsets(
        &self,
        req: ListOffsetsRequest,
        _version: i16,
        _h: &RequestHeader,
    ) -> Option<ListOffsetsResponse> {
        let mut r = ListOffsetsResponse::default();
        for t in req.topics {
            let mut tr = list_offsets_response::ListOffsetsTopicResponse::default();
            tr.name = t.name.clone();
            for p in t.partitions {
                let mut pr = list_offsets_response::ListOffsetsPartitionResponse::default();
                pr.partition_index = p.partition_index;
                pr.timestamp = -1;
                pr.offset = -1;
                pr.leader_epoch = -1;
                let found = self
                    .log
                    .partition(t.name.0.as_str(), p.partition_index)
                    .and_then(|h| match p.timestamp {
                        -2 => Ok(Some((h.log_start_offset(), -1))),
                        // Latest: the last stable offset for read_committed (isolation level 1).
                        -1 if req.isolation_level == 1 => Ok(Some((h.last_stable_offset(), -1))),
                        -1 => Ok(Some((h.high_watermark(), -1))),
                        -3 => h.max_timestamp_offset(),
                        ts if ts >= 0 => h.offset_for_timestamp(ts),
                        other => Err(Error::InvalidConfig {
                            field: "timestamp".into(),
                            reason: format!("ListOffsets timestamp {other} is not served"),
                        }),
                    });
                match found {
                    Ok(Some((offset, ts))) => {
                        pr.offset = offset;
                        pr.timestamp = ts;
                    }
                    Ok(None) => {}
                    Err(Error::InvalidConfig { .. }) => pr.error_code = code::INVALID_REQUEST,
                    Err(e) => pr.error_code = e.kafka_error_code(),
                }
                tr.partitions.push(pr);
            }
            r.topics.push(tr);
        }
        Some(r)
    }

    fn create_topics(
        &self,
        req: CreateTopicsRequest,
        _version: i16,
        _h: &RequestHeader,
    ) -> Option<CreateTopicsResponse> {
        let mut r = CreateTopicsResponse::default();
        for t in req.topics {
            let mut tr = create_topics_response::CreatableTopicResult::default();
            tr.name = t.name.clone();
            let name = t.name.0.as_str();
            let outcome = self.create_one(name, &t, req.validate_only);
            match outcome {
                Ok(partitions) => {
                    tr.num_partitions = partitions;
                    tr.replication_factor = 1;
                }
                Err((c, message)) => {
                    tr.error_code = c;
                    tr.error_message = Some(StrBytes::from_string(message));
                    tr.num_partitions = -1;
                    tr.replication_factor = -1;
                }
            }
            r.topics.push(tr);
        }
        Some(r)
    }

    fn create_one(
        &self,
        name: &str,
        t: &kafka_protocol::messages::create_topics_request::CreatableTopic,
        validate_only: bool,
    ) -> Result<i32, (i16, String)> {
        let fail = |e: Error| (e.kafka_error_code(), e.to_string());
        if !matches!(t.replication_factor, -1 | 1) {
            return Err((
                code::INVALID_REPLICATION_FACTOR,
                "a single node keeps one replica".into(),
            ));
        }
        let partitions = match (t.num_partitions, t.assignments.len()) {
            (-1, 0) => self.config.default_partitions,
            (-1, n) => i32::try_from(n).unwrap_or(i32::MAX),
            (n, 0) if n > 0 => n,
            _ => {
                return Err((
                    code::INVALID_PARTITIONS,
                    "give a partition count or replica assignments, not both".into(),
                ));
            }
        };
        let mut config = self.log.default_topic_config();
        for c in &t.configs {
            if let Some(v) = &c.value {
                config.set(c.name.as_str(), v.as_str()).map_err(fail)?;
            }
        }
        if validate_only {
            topiclog::validate_topic_name(name).map_err(fail)?;
            config.validate().map_err(fail)?;
            if self.log.partition_count(name).is_ok() {
                return Err(fail(Error::TopicAlreadyExists {
                    topic: name.to_owned(),
                }));
            }
            return Ok(partitions);
        }
        self.log
            .create_topic_with(name, partitions, config)
            .map_err(fail)?;
        Ok(partitions)
    }

    fn delete_topics(
        &self,
        req: DeleteTopicsRequest,
        _version: i16,
        _h: &RequestHeader,
    ) -> Option<DeleteTopicsResponse> {
        let mut r = DeleteTopicsResponse::default();
        for name in req.topic_names {
            let mut tr = delete_topics_response::DeletableTopicResult::default();
            let result = if topiclog::is_internal_topic(name.0.as_str()) {
                Err((
                    code::INVALID_REQUEST,
                    "internal topics cannot be deleted".to_owned(),
                ))
            } else {
                self.log
                    .delete_topic(name.0.as_str())
                    .map_err(|e| (e.kafka_error_code(), e.to_string()))
            };
            if let Err((c, m)) = result {
                tr.error_code = c;
                tr.error_message = Some(StrBytes::from_string(m));
            }
            tr.name = Some(name);
            r.responses.push(tr);
        }
        Some(r)
    }

    fn find_coordinator(
        &self,
        req: FindCoordinatorRequest,
        version: i16,
        _h: &RequestHeader,
    ) -> Option<FindCoordinatorResponse> {
        let mut r = FindCoordinatorResponse::default();
        // One node: it coordinates every group (key type 0) and every transactional id
        // (key type 1).
        let answer = |key: &StrBytes| -> (i16, Option<&'static str>) {
            if req.key_type > 1 {
                (code::INVALID_REQUEST, Some("unknown coordinator key type"))
            } else if key.as_str().is_empty() && req.key_type == 0 {
                (code::INVALID_GROUP_ID, Some("the group id is empty"))
            } else if key.as_str().is_empty() {
                (code::INVALID_REQUEST, Some("the transactional id is empty"))
            } else {
                (code::NONE, None)
            }
        };
        if version < 4 {
            let (c, m) = answer(&req.key);
            r.error_code = c;
            r.error_message = m.map(StrBytes::from_static_str);
            r.node_id = BrokerId(if c == code::NONE { 0 } else { -1 });
            r.host = sb(if c == code::NONE {
                &self.config.host
            } else {
                ""
            });
            r.port = if c == code::NONE {
                self.config.port
            } else {
                -1
            };
        } else {
            for key in &req.coordinator_keys {
                let (c, m) = answer(key);
                let mut co = find_coordinator_response::Coordinator::default();
                co.key = key.clone();
                co.error_code = c;
                co.error_message = m.map(StrBytes::from_static_str);
                co.node_id = BrokerId(if c == code::NONE { 0 } else { -1 });
                co.host = sb(if c == code::NONE {
                    &self.config.host
                } else {
                    ""
                });
                co.port = if c == code::NONE {
                    self.config.port
                } else {
                    -1
                };
                r.coordinators.push(co);
            }
        }
        Some(r)
    }

    fn join_group(
        &self,
        req: JoinGroupRequest,
        version: i16,
        h: &RequestHeader,
    ) -> Option<JoinGroupResponse> {
        let mut r = JoinGroupResponse::default();
        r.generation_id = -1;
        r.member_id = req.member_id.clone();
        let ms = |v: i32| Duration::from_millis(u64::try_from(v).unwrap_or(0));
        let request = JoinRequest {
            group: req.group_id.0.as_str().to_owned(),
            member_id: req.member_id.as_str().to_owned(),
            client_id: h
                .client_id
                .as_ref()
                .map_or_else(|| "client".to_owned(), |c| c.as_str().to_owned()),
            protocol_type: req.protocol_type.as_str().to_owned(),
            protocols: req
                .protocols
                .iter()
                .map(|p| (p.name.as_str().to_owned(), p.metadata.clone()))
                .collect(),
            session_timeout: ms(req.session_timeout_ms),
            rebalance_timeout: ms(if version >= 1 {
                req.rebalance_timeout_ms
            } else {
                req.session_timeout_ms
            }),
        };
        if request.protocol_type.is_empty() {
            r.error_code = code::INCONSISTENT_GROUP_PROTOCOL;
            return Some(r);
        }
        match self.log.join_group(&request) {
            Ok(j) => {
                r.generation_id = j.generation;
                r.member_id = sb(&j.member_id);
                r.leader = sb(&j.leader);
                r.protocol_type = Some(sb(&request.protocol_type));
                r.protocol_name = Some(sb(&j.protocol));
                r.members = j
                    .members
                    .into_iter()
                    .map(|(id, meta)| {
                        let mut m = join_group_response::JoinGroupResponseMember::default();
                        m.member_id = StrBytes::from_string(id);
                        m.metadata = meta;
                        m
                    })
                    .collect();
            }
            Err(e) => r.error_code = group_error(&e),
        }
        Some(r)
    }

    fn sync_group(
        &self,
        req: SyncGroupRequest,
        _version: i16,
        _h: &RequestHeader,
    ) -> Option<SyncGroupResponse> {
        let mut r = SyncGroupResponse::default();
        r.protocol_type.clone_from(&req.protocol_type);
        r.protocol_name.clone_from(&req.protocol_name);
        let assignments = req
            .assignments
            .iter()
            .map(|a| (a.member_id.as_str().to_owned(), a.assignment.clone()))
            .collect();
        match self.log.sync_group(
            req.group_id.0.as_str(),
            req.member_id.as_str(),
            req.generation_id,
            Some(assignments),
        ) {
            Ok(a) => r.assignment = a,
            Err(e) => r.error_code = group_error(&e),
        }
        Some(r)
    }

    fn heartbeat(
        &self,
        req: HeartbeatRequest,
        _version: i16,
        _h: &RequestHeader,
    ) -> Option<HeartbeatResponse> {
        let mut r = HeartbeatResponse::default();
        if let Err(e) = self.log.heartbeat_group(
            req.group_id.0.as_str(),
            req.member_id.as_str(),
            req.generation_id,
        ) {
            r.error_code = group_error(&e);
        }
        Some(r)
    }

    fn leave_group(
        &self,
        req: LeaveGroupRequest,
        version: i16,
        _h: &RequestHeader,
    ) -> Option<LeaveGroupResponse> {
        let mut r = LeaveGroupResponse::default();
        let group = req.group_id.0.as_str();
        if version < 3 {
            if let Err(e) = self.log.leave_group(group, req.member_id.as_str()) {
                r.error_code = group_error(&e);
            }
        } else {
            for m in req.members {
                let mut mr = leave_group_response::MemberResponse::default();
                if let Err(e) = self.log.leave_group(group, m.member_id.as_str()) {
                    mr.error_code = group_error(&e);
                }
                mr.member_id = m.member_id;
                mr.group_instance_id = m.group_instance_id;
                r.members.push(mr);
            }
        }
        Some(r)
    }

    fn offset_commit(
        &self,
        req: OffsetCommitRequest,
        _version: i16,
        _h: &RequestHeader,
    ) -> Option<OffsetCommitResponse> {
        let topics = req
            .topics
            .into_iter()
            .map(|t| {
                let parts = t
                    .partitions
                    .into_iter()
                    .map(|p| {
                        let mut om = OffsetAndMetadata::new(p.committed_offset);
                        om.metadata = p
                            .committed_metadata
                            .map(|m| m.as_str().to_owned())
                            .unwrap_or_default();
                        (p.partition_index, om)
                    })
                    .collect();
                (t.name, parts)
            })
            .collect();
        Some(self.commit_offsets(
            req.group_id.0.as_str(),
            req.member_id.as_str(),
            req.generation_id_or_member_epoch,
            topics,
        ))
    }

    /// Commits `topics` for a member of `group` (or a standalone client: empty member id,
    /// generation -1); a partition that does not exist gets its own error, the others share
    /// the commit's outcome.
    fn commit_offsets(
        &self,
        group: &str,
        member: &str,
        generation: i32,
        topics: Vec<(TopicName, Vec<(i32, OffsetAndMetadata)>)>,
    ) -> OffsetCommitResponse {
        let mut commits = Vec::new();
        // Per partition: None while it is part of the commit, or its own error.
        let mut outcome: Vec<CommitOutcome> = Vec::new();
        for (name, partitions) in topics {
            let topic = name.0.as_str();
            let count = self.log.partition_count(topic).unwrap_or(0);
            let mut parts = Vec::new();
            for (index, om) in partitions {
                if index < 0 || index >= count {
                    parts.push((index, Some(code::UNKNOWN_TOPIC_OR_PARTITION)));
                    continue;
                }
                commits.push((TopicPartition::new(topic, index), om));
                parts.push((index, None));
            }
            outcome.push((name, parts));
        }
        let shared = if commits.is_empty() {
            code::NONE
        } else {
            match self
                .log
                .commit_group_offsets(group, member, generation, &commits)
            {
                Ok(()) => code::NONE,
                Err(e) => group_error(&e),
            }
        };
        let mut r = OffsetCommitResponse::default();
        for (name, parts) in outcome {
            let mut tr = offset_commit_response::OffsetCommitResponseTopic::default();
            tr.name = name;
            for (index, own) in parts {
                let mut pr = offset_commit_response::OffsetCommitResponsePartition::default();
                pr.partition_index = index;
                pr.error_code = own.unwrap_or(shared);
                tr.partitions.push(pr);
            }
            r.topics.push(tr);
        }
        r
    }

    /// Committed offsets of `group`, per topic, for the asked partitions (all when `None`).
    fn fetch_group_offsets(
        &self,
        group: &str,
        topics: Option<Vec<(TopicName, Vec<i32>)>>,
    ) -> Vec<TopicOffsets> {
        let mut by_topic: BTreeMap<String, Vec<(i32, Option<OffsetAndMetadata>)>> = BTreeMap::new();
        match topics {
            Some(topics) => {
                let mut order = Vec::new();
                for (name, parts) in topics {
                    let tps: Vec<TopicPartition> = parts
                        .iter()
                        .map(|&p| TopicPartition::new(name.0.as_str(), p))
                        .collect();
                    let found = self.log.committed_offsets(group, Some(&tps));
                    order.push((
                        name,
                        found
                            .into_iter()
                            .map(|(tp, om)| (tp.partition, om))
                            .collect(),
                    ));
                }
                return order;
            }
            None => {
                for (tp, om) in self.log.committed_offsets(group, None) {
                    by_topic
                        .entry(tp.topic)
                        .or_default()
                        .push((tp.partition, om));
                }
            }
        }
        by_topic
            .into_iter()
            .map(|(t, parts)| (topic_name(&t), parts))
            .collect()
    }

    fn offset_fetch(
        &self,
        req: OffsetFetchRequest,
        version: i16,
        _h: &RequestHeader,
    ) -> Option<OffsetFetchResponse> {
        let mut r = OffsetFetchResponse::default();
        let committed = |om: &Option<OffsetAndMetadata>| match om {
            Some(om) => (om.offset, Some(sb(&om.metadata))),
            None => (-1, Some(StrBytes::new())),
        };
        if version < 8 {
            let topics = req.topics.map(|ts| {
                ts.into_iter()
                    .map(|t| (t.name, t.partition_indexes))
                    .collect()
            });
            for (name, parts) in self.fetch_group_offsets(req.group_id.0.as_str(), topics) {
                let mut tr = offset_fetch_response::OffsetFetchResponseTopic::default();
                tr.name = name;
                for (index, om) in parts {
                    let mut pr = offset_fetch_response::OffsetFetchResponsePartition::default();
                    pr.partition_index = index;
                    (pr.committed_offset, pr.metadata) = committed(&om);
                    pr.committed_leader_epoch = -1;
                    tr.partitions.push(pr);
                }
                r.topics.push(tr);
            }
        } else {
            for g in req.groups {
                let mut gr = offset_fetch_response::OffsetFetchResponseGroup::default();
                let topics = g.topics.map(|ts| {
                    ts.into_iter()
                        .map(|t| (t.name, t.partition_indexes))
                        .collect()
                });
                for (name, parts) in self.fetch_group_offsets(g.group_id.0.as_str(), topics) {
                    let mut tr = offset_fetch_response::OffsetFetchResponseTopics::default();
                    tr.name = name;
                    for (index, om) in parts {
                        let mut pr =
                            offset_fetch_response::OffsetFetchResponsePartitions::default();
                        pr.partition_index = index;
                        (pr.committed_offset, pr.metadata) = committed(&om);
                        pr.committed_leader_epoch = -1;
                        tr.partitions.push(pr);
                    }
                    gr.topics.push(tr);
                }
                gr.group_id = g.group_id;
                r.groups.push(gr);
            }
        }
        Some(r)
    }
}

/// Kafka's code for a group call's error.
/// Whether a run of whole stored batches holds a zstd batch (which fetch versions before 10
/// may not carry), read from the batch headers.
fn holds_zstd(run: &[u8]) -> bool {
    let mut rest = run;
    while let Ok(h) = BatchHeader::parse(rest) {
        if h.compression().ok() == Some(Compression::Zstd) {
            return true;
        }
        match rest.get(h.size()..) {
            Some(next) => rest = next,
            None => break,
        }
    }
    false
}

fn group_error(e: &Error) -> i16 {
    match e {
        Error::InvalidConfig { field, .. } if field == "session_timeout" => {
            code::INVALID_SESSION_TIMEOUT
        }
        Error::InvalidConfig { field, .. } if field == "protocols" || field == "protocol_type" => {
            code::INCONSISTENT_GROUP_PROTOCOL
        }
        Error::InvalidConfig { field, .. } if field == "group" => code::INVALID_GROUP_ID,
        Error::GroupNotFound { .. } => code::UNKNOWN_MEMBER_ID,
        other => other.kafka_error_code(),
    }
}

fn is_disconnect(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
    )
}

/// Reads one size-prefixed frame; `Ok(None)` at a clean end of stream.
pub fn read_frame(
    stream: &mut impl std::io::Read,
    max_frame_bytes: usize,
) -> Result<Option<Bytes>, String> {
    let mut size = [0u8; 4];
    match stream.read_exact(&mut size) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof || is_disconnect(&e) => {
            return Ok(None);
        }
        Err(e) => return Err(format!("read failed: {e}")),
    }
    let size = i32::from_be_bytes(size);
    let Ok(len) = usize::try_from(size) else {
        return Err(format!("negative frame size {size}"));
    };
    if len > max_frame_bytes {
        return Err(format!(
            "frame of {len} bytes exceeds the {max_frame_bytes}-byte limit"
        ));
    }
    let mut buf = vec![0u8; len];
    stream
        .read_exact(&mut buf)
        .map_err(|e| format!("truncated frame: {e}"))?;
    Ok(Some(Bytes::from(buf)))
}

/// Serves one connection until the client closes it or sends something that ends it.
pub fn serve_connection(broker: &Broker, mut stream: std::net::TcpStream) -> Result<(), String> {
    use std::io::Write as _;
    let _ = stream.set_nodelay(true);
    loop {
        let Some(frame) = read_frame(&mut stream, broker.config.max_frame_bytes)? else {
            return Ok(());
        };
        match broker.handle(frame) {
            Reply::Send(body) => {
                let size = u32::try_from(body.len())
                    .map_err(|_| "response larger than 4 GiB".to_owned())?;
                let mut out = Vec::with_capacity(body.len() + 4);
                out.extend_from_slice(&size.to_be_bytes());
                out.extend_from_slice(&body);
                match stream.write_all(&out) {
                    Ok(()) => {}
                    // The client went away: an ordinary end of the connection.
                    Err(e) if is_disconnect(&e) => return Ok(()),
                    Err(e) => return Err(format!("write failed: {e}")),
                }
            }
            Reply::Nothing => {}
            Reply::Close(why) => return Err(why),
        }
    }
}

/// Accepts connections forever, a thread each.
pub fn serve(broker: Arc<Broker>, listener: std::net::TcpListener) -> std::io::Result<()> {
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                eprintln!("accept failed: {e}");
                continue;
            }
        };
        let broker = Arc::clone(&broker);
        let peer = stream
            .peer_addr()
            .map_or_else(|_| "?".to_owned(), |a| a.to_string());
        std::thread::Builder::new()
            .name(format!("conn {peer}"))
            .spawn(move || {
                if let Err(why) = serve_connection(&broker, stream) {
                    eprintln!("closing connection from {peer}: {why}");
                }
            })?;
    }
    Ok(())
}
