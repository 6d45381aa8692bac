//! The adapter's admin APIs, what `kafka-consumer-groups.sh`, `kafka-configs.sh`, lag
//! monitors and UIs call: groups (ListGroups, DescribeGroups, DeleteGroups, OffsetDelete),
//! configs (DescribeConfigs, AlterConfigs, IncrementalAlterConfigs), topics
//! (CreatePartitions, DeleteRecords) and the cluster (DescribeCluster). Every decision is
//! the library's (`Log::list_groups`, `Log::describe_group`, `Log::delete_group`,
//! `Log::delete_group_offsets`, `Log::alter_topic_config`, `Log::add_partitions`,
//! `PartitionHandle::delete_records`); this file turns them into Kafka's answers.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, BrokerId, CreatePartitionsRequest,
    CreatePartitionsResponse, DeleteGroupsRequest, DeleteGroupsResponse, DeleteRecordsRequest,
    DeleteRecordsResponse, DescribeClusterRequest, DescribeClusterResponse, DescribeConfigsRequest,
    DescribeConfigsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, ListGroupsRequest,
    ListGroupsResponse, OffsetDeleteRequest, OffsetDeleteResponse, RequestHeader,
    alter_configs_response, create_partitions_response, delete_groups_response,
    delete_records_response, describe_cluster_response, describe_configs_response,
    describe_groups_response, incremental_alter_configs_response, list_groups_response,
    offset_delete_response,
};
use kafka_protocol::protocol::StrBytes;
use topiclog::{Error, GroupState, TopicConfig, TopicPartition};

use super::{Broker, CLUSTER_ID, code, sb};

/// Kafka's codes used only by the admin APIs.
mod admin_code {
    pub const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
    pub const INVALID_CONFIG: i16 = 40;
    pub const MISMATCHED_ENDPOINT_TYPE: i16 = 114;
    pub const UNSUPPORTED_ENDPOINT_TYPE: i16 = 115;
}

/// Kafka's `ConfigResource.Type` ids.
mod resource {
    pub const TOPIC: i8 = 2;
    pub const BROKER: i8 = 4;
}

/// Kafka's `DescribeConfigsResponse.ConfigSource` ids.
mod source {
    pub const TOPIC_CONFIG: i8 = 1;
    pub const STATIC_BROKER_CONFIG: i8 = 4;
    pub const DEFAULT_CONFIG: i8 = 5;
}

/// Kafka's topic configs and the broker configs that give their defaults
/// (`ServerTopicConfigSynonyms`): how a BROKER resource names the log's default topic config.
const BROKER_SYNONYMS: &[(&str, &str)] = &[
    ("cleanup.policy", "log.cleanup.policy"),
    ("compression.type", "compression.type"),
    ("delete.retention.ms", "log.cleaner.delete.retention.ms"),
    ("file.delete.delay.ms", "log.segment.delete.delay.ms"),
    ("flush.messages", "log.flush.interval.messages"),
    ("flush.ms", "log.flush.interval.ms"),
    ("index.interval.bytes", "log.index.interval.bytes"),
    ("local.retention.bytes", "log.local.retention.bytes"),
    ("local.retention.ms", "log.local.retention.ms"),
    ("max.compaction.lag.ms", "log.cleaner.max.compaction.lag.ms"),
    ("max.message.bytes", "message.max.bytes"),
    (
        "message.downconversion.enable",
        "log.message.downconversion.enable",
    ),
    (
        "message.timestamp.after.max.ms",
        "log.message.timestamp.after.max.ms",
    ),
    (
        "message.timestamp.before.max.ms",
        "log.message.timestamp.before.max.ms",
    ),
    (
        "message.timestamp.difference.max.ms",
        "log.message.timestamp.difference.max.ms",
    ),
    ("message.timestamp.type", "log.message.timestamp.type"),
    (
        "min.cleanable.dirty.ratio",
        "log.cleaner.min.cleanable.ratio",
    ),
    ("min.compaction.lag.ms", "log.cleaner.min.compaction.lag.ms"),
    ("min.insync.replicas", "min.insync.replicas"),
    ("preallocate", "log.preallocate"),
    ("retention.bytes", "log.retention.bytes"),
    ("retention.ms", "log.retention.ms"),
    ("segment.bytes", "log.segment.bytes"),
    ("segment.index.bytes", "log.index.size.max.bytes"),
    ("segment.jitter.ms", "log.roll.jitter.ms"),
    ("segment.ms", "log.roll.ms"),
    (
        "unclean.leader.election.enable",
        "unclean.leader.election.enable",
    ),
];

/// Topic configs of Kafka's LIST type, the only ones IncrementalAlterConfigs may APPEND to
/// or SUBTRACT from.
const LIST_CONFIGS: &[&str] = &[
    "cleanup.policy",
    "follower.replication.throttled.replicas",
    "leader.replication.throttled.replicas",
];

/// Kafka's name for a group state.
fn state_name(s: GroupState) -> &'static str {
    match s {
        GroupState::PreparingRebalance => "PreparingRebalance",
        GroupState::CompletingRebalance => "CompletingRebalance",
        GroupState::Stable => "Stable",
        _ => "Empty",
    }
}

fn message(e: &Error) -> Option<StrBytes> {
    Some(StrBytes::from_string(e.to_string()))
}

/// An `InvalidConfig` naming `key`, for refusals the library's setters cannot make.
fn invalid_config(key: &str, reason: impl Into<String>) -> Error {
    Error::InvalidConfig {
        field: key.to_owned(),
        reason: reason.into(),
    }
}

/// One resource's outcome in an alter: an error code and message, or success.
type AlterOutcome = Result<(), (i16, String)>;

impl Broker {
    pub(super) fn list_groups(
        &self,
        req: ListGroupsRequest,
        _version: i16,
        _h: &RequestHeader,
    ) -> Option<ListGroupsResponse> {
        let mut r = ListGroupsResponse::default();
        let states: BTreeSet<String> = req
            .states_filter
            .iter()
            .map(|s| s.as_str().to_ascii_lowercase())
            .collect();
        // Every group here speaks the classic protocol.
        let classic_wanted = req.types_filter.is_empty()
            || req
                .types_filter
                .iter()
                .any(|t| t.as_str().eq_ignore_ascii_case("classic"));
        if !classic_wanted {
            return Some(r);
        }
        for group in self.log().list_groups() {
            // A group deleted since it was listed is no longer there to list.
            let Ok(d) = self.log().describe_group(&group) else {
                continue;
            };
            let state = state_name(d.state);
            if !states.is_empty() && !states.contains(&state.to_ascii_lowercase()) {
                continue;
            }
            let mut g = list_groups_response::ListedGroup::default();
            g.group_id = kafka_protocol::messages::GroupId(sb(&group));
            g.protocol_type = sb(d.protocol_type.as_deref().unwrap_or(""));
            g.group_state = sb(state);
            g.group_type = sb("classic");
            r.groups.push(g);
        }
        Some(r)
    }

    pub(super) fn describe_groups(
        &self,
        req: DescribeGroupsRequest,
        _version: i16,
        _h: &RequestHeader,
    ) -> Option<DescribeGroupsResponse> {
        let mut r = DescribeGroupsResponse::default();
        for id in req.groups {
            let mut g = describe_groups_response::DescribedGroup::default();
            match self.log().describe_group(id.0.as_str()) {
                Ok(d) => {
                    // As Kafka: members' metadata, assignments and the protocol only while
                    // the group is stable.
                    let stable = d.state == GroupState::Stable;
                    g.group_state = sb(state_name(d.state));
                    g.protocol_type = sb(d.protocol_type.as_deref().unwrap_or(""));
                    g.protocol_data = sb(if stable {
                        d.protocol.as_deref().unwrap_or("")
                    } else {
                        ""
                    });
                    for m in d.members {
                        let mut dm = describe_groups_response::DescribedGroupMember::default();
                        dm.member_id = StrBytes::from_string(m.member_id);
                        dm.client_id = StrBytes::from_string(m.client_id);
                        if stable {
                            dm.member_metadata = m.member_metadata;
                            dm.member_assignment = m.member_assignment;
                        }
                        g.members.push(dm);
                    }
                }
                // Kafka (up to v5) describes a group it does not know as Dead, without error.
                Err(Error::GroupNotFound { .. }) => g.group_state = sb("Dead"),
                Err(e) => {
                    g.error_code = e.kafka_error_code();
                    g.error_message = message(&e);
                }
            }
            g.group_id = id;
            r.groups.push(g);
        }
        Some(r)
    }

    pub(super) fn delete_groups(
        &self,
        req: DeleteGroupsRequest,
        _version: i16,
        _h: &RequestHeader,
    ) -> Option<DeleteGroupsResponse> {
        let mut r = DeleteGroupsResponse::default();
        for id in req.groups_names {
            let mut g = delete_groups_response::DeletableGroupResult::default();
            if let Err(e) = self.log().delete_group(id.0.as_str()) {
                g.error_code = e.kafka_error_code();
            }
            g.group_id = id;
            r.results.push(g);
        }
        Some(r)
    }

    pub(super) fn offset_delete(
        &self,
        req: OffsetDeleteRequest,
        _version: i16,
        _h: &RequestHeader,
    ) -> Option<OffsetDeleteResponse> {
        let mut r = OffsetDeleteResponse::default();
        // As Kafka's broker: partitions of unknown topics are answered before the group is
        // asked.
        let mut unknown: BTreeSet<(String, i32)> = BTreeSet::new();
        let mut asked = Vec::new();
        for t in &req.topics {
            let name = t.name.0.as_str();
            let known = self.log().partition_count(name).is_ok();
            for p in &t.partitions {
                if known {
                    asked.push(TopicPartition::new(name, p.partition_index));
                } else {
                    unknown.insert((name.to_owned(), p.partition_index));
                }
            }
        }
        let outcome: BTreeMap<TopicPartition, i16> = match self
            .log()
            .delete_group_offsets(req.group_id.0.as_str(), &asked)
        {
            Ok(results) => results
                .into_iter()
                .map(|(tp, res)| (tp, res.err().map_or(code::NONE, |e| e.kafka_error_code())))
                .collect(),
            Err(e) => {
                r.error_code = e.kafka_error_code();
                return Some(r);
            }
        };
        for t in req.topics {
            let mut tr = offset_delete_response::OffsetDeleteResponseTopic::default();
            for p in t.partitions {
                let mut pr = offset_delete_response::OffsetDeleteResponsePartition::default();
                pr.partition_index = p.partition_index;
                let tp = TopicPartition::new(t.name.0.as_str(), p.partition_index);
                pr.error_code = if unknown.contains(&(tp.topic.clone(), tp.partition)) {
                    code::UNKNOWN_TOPIC_OR_PARTITION
                } else {
                    outcome.get(&tp).copied().unwrap_or(code::NONE)
                };
                tr.partitions.push(pr);
            }
            tr.name = t.name;
            r.topics.push(tr);
        }
        Some(r)
    }

    pub(super) fn describe_configs(
        &self,
        req: DescribeConfigsRequest,
        _version: i16,
        _h: &RequestHeader,
    ) -> Option<DescribeConfigsResponse> {
        let mut r = DescribeConfigsResponse::default();
        for res in req.resources {
            let mut out = describe_configs_response::DescribeConfigsResult::default();
            out.resource_type = res.resource_type;
            let wanted: Option<BTreeSet<&str>> = res
                .configuration_keys
                .as_ref()
                .map(|keys| keys.iter().map(StrBytes::as_str).collect());
            let entries = match res.resource_type {
                resource::TOPIC => self.topic_config_entries(res.resource_name.as_str()),
                resource::BROKER => self.broker_config_entries(res.resource_name.as_str()),
                other => Err((
                    code::INVALID_REQUEST,
                    format!(
                        "config resource type {other} is not served (TOPIC 2 and BROKER 4 are)"
                    ),
                )),
            };
            match entries {
                Ok(entries) => {
                    for (name, value, src, read_only, synonyms) in entries {
                        if wanted.as_ref().is_some_and(|w| !w.contains(name.as_str())) {
                            continue;
                        }
                        let mut c =
                            describe_configs_response::DescribeConfigsResourceResult::default();
                        c.value = Some(StrBytes::from_string(value));
                        c.config_source = src;
                        c.read_only = read_only;
                        if req.include_synonyms {
                            c.synonyms = synonyms
                                .into_iter()
                                .map(|(n, v, s)| {
                                    let mut y =
                                        describe_configs_response::DescribeConfigsSynonym::default(
                                        );
                                    y.name = sb(n);
                                    y.value = Some(StrBytes::from_string(v));
                                    y.source = s;
                                    y
                                })
                                .collect();
                        }
                        c.name = StrBytes::from_string(name);
                        out.configs.push(c);
                    }
                }
                Err((c, m)) => {
                    out.error_code = c;
                    out.error_message = Some(StrBytes::from_string(m));
                }
            }
            out.resource_name = res.resource_name;
            r.results.push(out);
        }
        Some(r)
    }

    /// Where a log-default value comes from: the server's options, or Kafka's default.
    fn default_source(key: &str, value: &str) -> i8 {
        if TopicConfig::default()
            .to_properties()
            .get(key)
            .is_some_and(|v| v == value)
        {
            source::DEFAULT_CONFIG
        } else {
            source::STATIC_BROKER_CONFIG
        }
    }

    /// A topic's configs: name, value, source, read-only, synonyms (most specific first).
    fn topic_config_entries(&self, topic: &str) -> Result<Vec<ConfigEntry>, (i16, String)> {
        let d = self
            .log()
            .describe_topic(topic)
            .map_err(|e| (e.kafka_error_code(), e.to_string()))?;
        let defaults = self.log().default_topic_config().to_properties();
        let mut out = Vec::new();
        for (key, value) in d.config.to_properties() {
            let default = defaults.get(key);
            let default_src =
                default.map_or(source::DEFAULT_CONFIG, |v| Self::default_source(key, v));
            let mut synonyms = Vec::new();
            let src = if default.is_some_and(|v| *v == value) {
                default_src
            } else {
                synonyms.push((key, value.clone(), source::TOPIC_CONFIG));
                source::TOPIC_CONFIG
            };
            if let (Some(broker_key), Some(v)) = (broker_synonym(key), default) {
                synonyms.push((broker_key, v.clone(), default_src));
            } else if src != source::TOPIC_CONFIG {
                synonyms.push((key, value.clone(), src));
            }
            out.push((key.to_owned(), value, src, false, synonyms));
        }
        Ok(out)
    }

    /// The broker's configs: the log's default topic config by its broker names, and the
    /// server's own settings. `name` is this broker's id ("0"), or empty for the cluster-wide
    /// dynamic defaults, of which there are none.
    fn broker_config_entries(&self, name: &str) -> Result<Vec<ConfigEntry>, (i16, String)> {
        if name.is_empty() {
            return Ok(Vec::new());
        }
        if name != "0" {
            return Err((
                code::INVALID_REQUEST,
                format!(
                    "unexpected broker id, expected 0 or the empty string, but received {name}"
                ),
            ));
        }
        let cfg = self.config();
        let statics = [
            ("broker.id", "0".to_owned()),
            ("node.id", "0".to_owned()),
            (
                "advertised.listeners",
                format!("PLAINTEXT://{}:{}", cfg.host, cfg.port),
            ),
            (
                "auto.create.topics.enable",
                cfg.auto_create_topics.to_string(),
            ),
            ("num.partitions", cfg.default_partitions.to_string()),
            ("default.replication.factor", "1".to_owned()),
            ("socket.request.max.bytes", cfg.max_frame_bytes.to_string()),
            ("log.dirs", self.log().dir().display().to_string()),
        ];
        let mut out: Vec<ConfigEntry> = statics
            .into_iter()
            .map(|(k, v)| {
                let syn = vec![(k, v.clone(), source::STATIC_BROKER_CONFIG)];
                (k.to_owned(), v, source::STATIC_BROKER_CONFIG, true, syn)
            })
            .collect();
        for (key, value) in self.log().default_topic_config().to_properties() {
            if let Some(broker_key) = broker_synonym(key) {
                let src = Self::default_source(key, &value);
                let syn = vec![(broker_key, value.clone(), src)];
                out.push((broker_key.to_owned(), value, src, true, syn));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    pub(super) fn alter_configs(
        &self,
        req: AlterConfigsRequest,
        _version: i16,
        _h: &RequestHeader,
    ) -> Option<AlterConfigsResponse> {
        let mut r = AlterConfigsResponse::default();
        for res in req.resources {
            let outcome = match res.resource_type {
                resource::TOPIC => {
                    // The whole set of a topic's configs is replaced: keys not given go back
                    // to their defaults.
                    let mut config = self.log().default_topic_config();
                    let topic = res.resource_name.as_str();
                    let set = res.configs.iter().try_for_each(|c| {
                        if let Some(v) = &c.value {
                            config.set(c.name.as_str(), v.as_str())?;
                        }
                        Ok(())
                    });
                    self.apply_topic_config(topic, set.map(|()| config), req.validate_only)
                }
                other => refuse_alter(other),
            };
            let mut out = alter_configs_response::AlterConfigsResourceResponse::default();
            if let Err((c, m)) = outcome {
                out.error_code = c;
                out.error_message = Some(StrBytes::from_string(m));
            }
            out.resource_type = res.resource_type;
            out.resource_name = res.resource_name;
            r.responses.push(out);
        }
        Some(r)
    }

    pub(super) fn incremental_alter_configs(
        &self,
        req: IncrementalAlterConfigsRequest,
        _version: i16,
        _h: &RequestHeader,
    ) -> Option<IncrementalAlterConfigsResponse> {
        let mut r = IncrementalAlterConfigsResponse::default();
        for res in req.resources {
            let outcome = match res.resource_type {
                resource::TOPIC => {
                    let topic = res.resource_name.as_str();
                    let changes: Vec<(&str, i8, Option<&str>)> = res
                        .configs
                        .iter()
                        .map(|c| {
                            (
                                c.name.as_str(),
                                c.config_operation,
                                c.value.as_ref().map(StrBytes::as_str),
                            )
                        })
                        .collect();
                    match self.log().describe_topic(topic) {
                        Ok(d) => match incremental(
                            d.config,
                            &self.log().default_topic_config(),
                            &changes,
                        ) {
                            Ok(config) => {
                                self.apply_topic_config(topic, Ok(config), req.validate_only)
                            }
                            Err(failure) => Err(failure),
                        },
                        Err(e) => Err((e.kafka_error_code(), e.to_string())),
                    }
                }
                other => refuse_alter(other),
            };
            let mut out =
                incremental_alter_configs_response::AlterConfigsResourceResponse::default();
            if let Err((c, m)) = outcome {
                out.error_code = c;
                out.error_message = Some(StrBytes::from_string(m));
            }
            out.resource_type = res.resource_type;
            out.resource_name = res.resource_name;
            r.responses.push(out);
        }
        Some(r)
    }

    /// Validates a topic's new config and, unless `validate_only`, puts it in force.
    fn apply_topic_config(
        &self,
        topic: &str,
        config: Result<TopicConfig, Error>,
        validate_only: bool,
    ) -> AlterOutcome {
        let fail = |e: Error| (e.kafka_error_code(), e.to_string());
        let config = config.map_err(fail)?;
        if validate_only {
            self.log().partition_count(topic).map_err(fail)?;
            return config.validate().map_err(fail);
        }
        self.log().alter_topic_config(topic, config).map_err(fail)
    }

    pub(super) fn create_partitions(
        &self,
        req: CreatePartitionsRequest,
        _version: i16,
        _h: &RequestHeader,
    ) -> Option<CreatePartitionsResponse> {
        let mut r = CreatePartitionsResponse::default();
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for t in &req.topics {
            *seen.entry(t.name.0.as_str()).or_default() += 1;
        }
        let duplicated: BTreeSet<String> = seen
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|(t, _)| t.to_owned())
            .collect();
        for t in req.topics {
            let name = t.name.0.as_str();
            let outcome = if duplicated.contains(name) {
                Err((
                    code::INVALID_REQUEST,
                    "duplicate topic in request".to_owned(),
                ))
            } else {
                self.grow_topic(name, t.count, t.assignments.as_deref(), req.validate_only)
            };
            let mut tr = create_partitions_response::CreatePartitionsTopicResult::default();
            if let Err((c, m)) = outcome {
                tr.error_code = c;
                tr.error_message = Some(StrBytes::from_string(m));
            }
            tr.name = t.name;
            r.results.push(tr);
        }
        Some(r)
    }

    fn grow_topic(
        &self,
        name: &str,
        count: i32,
        assignments: Option<
            &[kafka_protocol::messages::create_partitions_request::CreatePartitionsAssignment],
        >,
        validate_only: bool,
    ) -> AlterOutcome {
        let fail = |e: Error| match e {
            // The library refuses a count that does not grow the topic as a bad setting;
            // Kafka says INVALID_PARTITIONS.
            Error::InvalidConfig { ref field, .. } if field == "partitions" => {
                (code::INVALID_PARTITIONS, e.to_string())
            }
            e => (e.kafka_error_code(), e.to_string()),
        };
        let current = self.log().partition_count(name).map_err(fail)?;
        // Kafka's messages for a count that does not grow the topic.
        if count < current {
            return Err((
                code::INVALID_PARTITIONS,
                format!(
                    "Topic currently has {current} partitions, which is higher than the requested {count}."
                ),
            ));
        }
        if count == current {
            return Err((
                code::INVALID_PARTITIONS,
                format!("Topic already has {current} partitions."),
            ));
        }
        if let Some(a) = assignments {
            let new = usize::try_from(count - current).unwrap_or(0);
            if a.len() != new {
                return Err((
                    admin_code::INVALID_REPLICA_ASSIGNMENT,
                    format!("{} replica assignments for {new} new partitions", a.len()),
                ));
            }
            if let Some(bad) = a.iter().find(|p| p.broker_ids != [BrokerId(0)]) {
                return Err((
                    admin_code::INVALID_REPLICA_ASSIGNMENT,
                    format!(
                        "replica assignment {:?}: this single node is broker 0, with one replica",
                        bad.broker_ids.iter().map(|b| b.0).collect::<Vec<_>>()
                    ),
                ));
            }
        }
        if validate_only {
            if topiclog::is_internal_topic(name) {
                return Err(fail(Error::InternalTopic {
                    topic: name.to_owned(),
                    operation: "add partitions",
                }));
            }
            if count > topiclog::MAX_PARTITIONS {
                return Err((
                    code::INVALID_PARTITIONS,
                    format!(
                        "a topic has at most {} partitions",
                        topiclog::MAX_PARTITIONS
                    ),
                ));
            }
            return Ok(());
        }
        self.log().add_partitions(name, count).map_err(fail)
    }

    pub(super) fn delete_records(
        &self,
        req: DeleteRecordsRequest,
        _version: i16,
        _h: &RequestHeader,
    ) -> Option<DeleteRecordsResponse> {
        let mut r = DeleteRecordsResponse::default();
        for t in req.topics {
            let mut tr = delete_records_response::DeleteRecordsTopicResult::default();
            for p in t.partitions {
                let mut pr = delete_records_response::DeleteRecordsPartitionResult::default();
                pr.partition_index = p.partition_index;
                pr.low_watermark = -1;
                match self
                    .log()
                    .partition(t.name.0.as_str(), p.partition_index)
                    .and_then(|h| h.delete_records(p.offset))
                {
                    Ok(start) => pr.low_watermark = start,
                    Err(e) => pr.error_code = e.kafka_error_code(),
                }
                tr.partitions.push(pr);
            }
            tr.name = t.name;
            r.topics.push(tr);
        }
        Some(r)
    }

    pub(super) fn describe_cluster(
        &self,
        req: DescribeClusterRequest,
        version: i16,
        _h: &RequestHeader,
    ) -> Option<DescribeClusterResponse> {
        let mut r = DescribeClusterResponse::default();
        r.endpoint_type = 1;
        r.controller_id = BrokerId(-1);
        // As Kafka's broker: only its brokers endpoint is served; v0 has no endpoint type
        // and says INVALID_REQUEST where later versions are precise.
        let refuse = match req.endpoint_type {
            1 => None,
            2 => Some((
                admin_code::MISMATCHED_ENDPOINT_TYPE,
                "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER",
            )),
            _ => Some((
                admin_code::UNSUPPORTED_ENDPOINT_TYPE,
                "Unsupported endpoint type",
            )),
        };
        if let Some((c, m)) = refuse {
            r.error_code = if version == 0 {
                code::INVALID_REQUEST
            } else {
                c
            };
            r.error_message = Some(sb(m));
            return Some(r);
        }
        let broker = self.broker_entry();
        let mut b = describe_cluster_response::DescribeClusterBroker::default();
        b.broker_id = broker.node_id;
        b.host = broker.host;
        b.port = broker.port;
        b.rack = broker.rack;
        r.brokers = vec![b];
        r.cluster_id = sb(CLUSTER_ID);
        r.controller_id = BrokerId(0);
        r.cluster_authorized_operations = i32::MIN;
        Some(r)
    }
}

/// A config entry for DescribeConfigs: name, value, source, read-only, synonyms.
type ConfigEntry = (String, String, i8, bool, Vec<(&'static str, String, i8)>);

fn broker_synonym(key: &str) -> Option<&'static str> {
    BROKER_SYNONYMS
        .iter()
        .find(|(topic, _)| *topic == key)
        .map(|(_, broker)| *broker)
}

/// Alters of resources other than topics: the broker's settings are fixed when it starts.
fn refuse_alter(resource_type: i8) -> AlterOutcome {
    Err((
        code::INVALID_REQUEST,
        if resource_type == resource::BROKER {
            "broker configs are set when the server starts and cannot be altered".to_owned()
        } else {
            format!("config resource type {resource_type} is not served (TOPIC 2 is)")
        },
    ))
}

/// Applies IncrementalAlterConfigs operations (SET 0, DELETE 1, APPEND 2, SUBTRACT 3) to
/// `config`, as Kafka does: DELETE returns a key to the log's default, APPEND and SUBTRACT
/// work on LIST configs only, a key may appear once.
fn incremental(
    mut config: TopicConfig,
    defaults: &TopicConfig,
    changes: &[(&str, i8, Option<&str>)],
) -> Result<TopicConfig, (i16, String)> {
    let fail = |e: Error| (e.kafka_error_code(), e.to_string());
    let mut keys = BTreeSet::new();
    for &(key, _, _) in changes {
        if !keys.insert(key) {
            return Err((
                code::INVALID_REQUEST,
                format!("Error due to duplicate config keys: {key}"),
            ));
        }
    }
    let default_props = defaults.to_properties();
    for &(key, op, value) in changes {
        match op {
            0 => {
                let v = value.ok_or((
                    code::INVALID_REQUEST,
                    format!("Null value not supported for: {key}"),
                ))?;
                config.set(key, v).map_err(fail)?;
            }
            1 => {
                // Kafka's flush.messages and flush.ms are one setting here, flush.policy.
                let stored = if matches!(key, "flush.messages" | "flush.ms") {
                    "flush.policy"
                } else {
                    key
                };
                let default = default_props
                    .get(stored)
                    .ok_or_else(|| fail(invalid_config(key, "unknown topic setting")))?;
                config.set(stored, default).map_err(fail)?;
            }
            2 | 3 => {
                if !LIST_CONFIGS.contains(&key) {
                    let verb = if op == 2 { "append" } else { "subtract" };
                    return Err((
                        admin_code::INVALID_CONFIG,
                        format!("Config value {verb} is not allowed for config key: {key}"),
                    ));
                }
                let current = config
                    .to_properties()
                    .get(key)
                    .cloned()
                    .ok_or_else(|| fail(invalid_config(key, "unknown topic setting")))?;
                let mut items: Vec<String> = current
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect();
                for v in value
                    .unwrap_or("")
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                {
                    if op == 2 {
                        if !items.iter().any(|i| i == v) {
                            items.push(v.to_owned());
                        }
                    } else {
                        items.retain(|i| i != v);
                    }
                }
                config.set(key, &items.join(",")).map_err(fail)?;
            }
            other => {
                return Err((
                    code::INVALID_REQUEST,
                    format!("unknown config operation {other} for {key}"),
                ));
            }
        }
    }
    Ok(config)
}
