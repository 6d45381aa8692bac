//! The adapter's admin APIs, what `kafka-consumer-groups.sh`, `kafka-configs.sh`, lag
//! monitors and UIs call: groups (ListGroups, DescribeGroups, DeleteGroups, OffsetDelete),
//! topics (CreatePartitions, DeleteRecords) and the cluster (DescribeCluster) here, configs
//! (DescribeConfigs, AlterConfigs, IncrementalAlterConfigs) in `configs.rs` beside it. Every
//! decision is the library's (`Log::list_groups`, `Log::describe_group`, `Log::delete_group`,
//! `Log::delete_group_offsets`, `Log::add_partitions`, `PartitionHandle::delete_records`);
//! these files turn them into Kafka's answers.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::messages::{
    BrokerId, CreatePartitionsRequest, CreatePartitionsResponse, DeleteGroupsRequest,
    DeleteGroupsResponse, DeleteRecordsRequest, DeleteRecordsResponse, DescribeClusterRequest,
    DescribeClusterResponse, DescribeGroupsRequest, DescribeGroupsResponse, ListGroupsRequest,
    ListGroupsResponse, OffsetDeleteRequest, OffsetDeleteResponse, RequestHeader,
    create_partitions_response, delete_groups_response, delete_records_response,
    describe_cluster_response, describe_groups_response, list_groups_response,
    offset_delete_response,
};
use kafka_protocol::protocol::StrBytes;
use topiclog::{Error, GroupState, TopicPartition};

use super::{Broker, CLUSTER_ID, code, sb};

#[path = "configs.rs"]
mod configs;

/// Kafka's codes used only by the admin APIs.
mod admin_code {
    pub const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
    pub const MISMATCHED_ENDPOINT_TYPE: i16 = 114;
    pub const UNSUPPORTED_ENDPOINT_TYPE: i16 = 115;
}

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

/// One resource's outcome in a change: an error code and message, or success.
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
        if req.group_id.0.is_empty() {
            r.error_code = code::INVALID_GROUP_ID;
            return Some(r);
        }
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
