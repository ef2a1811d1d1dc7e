//! The admin APIs: group listing, description and deletion, offset deletion, record
//! deletion, and configs.

use super::offsets::coordinator;
use crate::cluster::Cluster;
use kasio_proto::{
    ErrorCode,
    messages::{
        ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, DeleteGroupsRequest,
        DeleteGroupsResponse, DeleteRecordsRequest, DeleteRecordsResponse, DescribeConfigsRequest,
        DescribeConfigsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
        IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, ListGroupsRequest,
        ListGroupsResponse, OffsetDeleteRequest, OffsetDeleteResponse,
        consumer_group_describe_response::{self as cgd, Assignment, TopicPartitions},
        delete_groups_response::DeletableGroupResult,
        delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult},
        describe_configs_response::{DescribeConfigsResourceResult, DescribeConfigsResult},
        describe_groups_response::{DescribedGroup, DescribedGroupMember},
        incremental_alter_configs_response::AlterConfigsResourceResponse,
        list_groups_response::ListedGroup,
        offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic},
    },
};
use std::collections::{BTreeMap, BTreeSet};

/// Config resource types on the wire.
const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const GROUP: i8 = 32;

/// Config sources on the wire.
const SOURCE_TOPIC: i8 = 1;
const SOURCE_DYNAMIC_BROKER: i8 = 2;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_GROUP: i8 = 8;

/// Every group this broker coordinates: KIP-848 groups, and groups that only hold
/// committed offsets (classic groups of admin tools and assign-mode consumers).
fn groups_here(cluster: &Cluster, broker: i32) -> BTreeMap<String, (&'static str, &'static str)> {
    let mut out = BTreeMap::new();
    for id in cluster.offsets.keys() {
        out.insert(id.clone(), ("classic", "Empty"));
    }
    for (id, g) in &cluster.groups {
        let state = if g.members.is_empty() {
            "Empty"
        } else {
            "Stable"
        };
        out.insert(id.clone(), ("consumer", state));
    }
    for (id, g) in &cluster.classic {
        out.insert(id.clone(), ("classic", g.state.name()));
    }
    out.retain(|id, _| coordinator(cluster, id) == broker);
    out
}

pub(crate) fn list_groups(
    cluster: &Cluster,
    broker: i32,
    req: &ListGroupsRequest,
) -> ListGroupsResponse {
    let groups = groups_here(cluster, broker)
        .into_iter()
        .filter(|(_, (kind, state))| {
            (req.states_filter.is_empty()
                || req
                    .states_filter
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(state)))
                && (req.types_filter.is_empty()
                    || req
                        .types_filter
                        .iter()
                        .any(|t| t.eq_ignore_ascii_case(kind)))
        })
        .map(|(id, (kind, state))| ListedGroup {
            group_id: id.as_str().into(),
            protocol_type: "consumer".into(),
            group_state: state.into(),
            group_type: kind.into(),
            ..Default::default()
        })
        .collect();
    ListGroupsResponse {
        groups,
        ..Default::default()
    }
}

pub(crate) fn describe_groups(
    cluster: &Cluster,
    broker: i32,
    req: &DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let here = groups_here(cluster, broker);
    let groups = req
        .groups
        .iter()
        .map(|id| {
            let mut g = DescribedGroup {
                group_id: id.clone(),
                ..Default::default()
            };
            if coordinator(cluster, id) != broker {
                g.error_code = ErrorCode::NotCoordinator.code();
                return g;
            }
            match here.get(id.as_str()) {
                // Kafka describes a KIP-848 group through ConsumerGroupDescribe only.
                Some(("consumer", _)) => {
                    g.error_code = ErrorCode::GroupIdNotFound.code();
                    g.error_message = Some(format!("group {id} is not a classic group").into());
                }
                Some((_, state)) => {
                    g.group_state = (*state).into();
                    g.protocol_type = "consumer".into();
                    if let Some(c) = cluster.classic.get(id.as_str()) {
                        let protocol = c.protocol.clone().unwrap_or_default();
                        g.protocol_type = c.protocol_type.as_str().into();
                        g.protocol_data = protocol.as_str().into();
                        g.members = c
                            .members
                            .iter()
                            .map(|(mid, m)| DescribedGroupMember {
                                member_id: mid.as_str().into(),
                                group_instance_id: m.instance_id.as_deref().map(Into::into),
                                client_id: m.client_id.as_str().into(),
                                client_host: "/127.0.0.1".into(),
                                member_metadata: m.metadata(&protocol),
                                member_assignment: m.assignment.clone(),
                                ..Default::default()
                            })
                            .collect();
                    }
                }
                None => g.group_state = "Dead".into(),
            }
            g
        })
        .collect();
    DescribeGroupsResponse {
        groups,
        ..Default::default()
    }
}

fn assignment(parts: &BTreeSet<(String, i32)>, cluster: &Cluster) -> Assignment {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (t, p) in parts {
        by_topic.entry(t).or_default().push(*p);
    }
    Assignment {
        topic_partitions: by_topic
            .into_iter()
            .map(|(t, ps)| TopicPartitions {
                topic_id: cluster.topics.get(t).map(|x| x.id).unwrap_or_default(),
                topic_name: t.into(),
                partitions: ps,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

pub(crate) fn consumer_group_describe(
    cluster: &Cluster,
    broker: i32,
    req: &ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    let groups = req
        .group_ids
        .iter()
        .map(|id| {
            let mut out = cgd::DescribedGroup {
                group_id: id.clone(),
                ..Default::default()
            };
            if coordinator(cluster, id) != broker {
                out.error_code = ErrorCode::NotCoordinator.code();
                return out;
            }
            let Some(g) = cluster.groups.get(id.as_str()) else {
                out.error_code = ErrorCode::GroupIdNotFound.code();
                out.error_message = Some(format!("group {id} is not a consumer group").into());
                return out;
            };
            let epoch = g.members.values().map(|m| m.epoch).max().unwrap_or(0);
            out.group_state = if g.members.is_empty() {
                "Empty"
            } else {
                "Stable"
            }
            .into();
            out.group_epoch = epoch;
            out.assignment_epoch = epoch;
            out.assignor_name = "range".into();
            out.members = g
                .members
                .iter()
                .map(|(member_id, m)| {
                    let target = m.given.clone().unwrap_or_default();
                    cgd::Member {
                        member_id: member_id.as_str().into(),
                        member_epoch: m.epoch,
                        client_id: "kasio".into(),
                        client_host: "/127.0.0.1".into(),
                        subscribed_topic_names: m
                            .subscribed
                            .iter()
                            .map(|t| t.as_str().into())
                            .collect(),
                        assignment: assignment(&m.owned, cluster),
                        target_assignment: assignment(&target, cluster),
                        ..Default::default()
                    }
                })
                .collect();
            out
        })
        .collect();
    ConsumerGroupDescribeResponse {
        groups,
        ..Default::default()
    }
}

pub(crate) fn delete_groups(
    cluster: &mut Cluster,
    broker: i32,
    req: &DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let results = req
        .groups_names
        .iter()
        .map(|id| {
            let known = cluster.offsets.contains_key(id.as_str())
                || cluster.groups.contains_key(id.as_str());
            let code = if coordinator(cluster, id) != broker {
                ErrorCode::NotCoordinator
            } else if !known {
                ErrorCode::GroupIdNotFound
            } else if cluster
                .groups
                .get(id.as_str())
                .is_some_and(|g| !g.members.is_empty())
            {
                ErrorCode::NonEmptyGroup
            } else {
                cluster.offsets.remove(id.as_str());
                cluster.groups.remove(id.as_str());
                ErrorCode::None
            };
            DeletableGroupResult {
                group_id: id.clone(),
                error_code: code.code(),
                ..Default::default()
            }
        })
        .collect();
    DeleteGroupsResponse {
        results,
        ..Default::default()
    }
}

pub(crate) fn offset_delete(
    cluster: &mut Cluster,
    broker: i32,
    req: &OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    let group = req.group_id.to_string();
    let top = if coordinator(cluster, &group) != broker {
        ErrorCode::NotCoordinator
    } else if !cluster.offsets.contains_key(&group) && !cluster.groups.contains_key(&group) {
        ErrorCode::GroupIdNotFound
    } else {
        ErrorCode::None
    };
    if top != ErrorCode::None {
        return OffsetDeleteResponse {
            error_code: top.code(),
            ..Default::default()
        };
    }
    let subscribed: BTreeSet<String> = cluster
        .groups
        .get(&group)
        .map(|g| {
            g.members
                .values()
                .flat_map(|m| m.subscribed.clone())
                .collect()
        })
        .unwrap_or_default();
    let topics = req
        .topics
        .iter()
        .map(|t| OffsetDeleteResponseTopic {
            name: t.name.clone(),
            partitions: t
                .partitions
                .iter()
                .map(|p| {
                    let code = if subscribed.contains(t.name.as_str()) {
                        ErrorCode::GroupSubscribedToTopic
                    } else {
                        if let Some(offsets) = cluster.offsets.get_mut(&group) {
                            offsets.remove(&(t.name.to_string(), p.partition_index));
                        }
                        ErrorCode::None
                    };
                    OffsetDeleteResponsePartition {
                        partition_index: p.partition_index,
                        error_code: code.code(),
                    }
                })
                .collect(),
        })
        .collect();
    OffsetDeleteResponse {
        topics,
        ..Default::default()
    }
}

pub(crate) fn delete_records(
    cluster: &mut Cluster,
    broker: i32,
    req: &DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let topics = req
        .topics
        .iter()
        .map(|t| DeleteRecordsTopicResult {
            name: t.name.clone(),
            partitions: t
                .partitions
                .iter()
                .map(|p| {
                    let mut r = DeleteRecordsPartitionResult {
                        partition_index: p.partition_index,
                        low_watermark: -1,
                        ..Default::default()
                    };
                    if let Some(code) =
                        super::partition_error(cluster, &t.name, p.partition_index, broker)
                    {
                        r.error_code = code.code();
                        return r;
                    }
                    let Some(part) = cluster.topics.get_mut(t.name.as_str()).and_then(|x| {
                        usize::try_from(p.partition_index)
                            .ok()
                            .and_then(|i| x.partitions.get_mut(i))
                    }) else {
                        r.error_code = ErrorCode::UnknownTopicOrPartition.code();
                        return r;
                    };
                    let end = part.log.end();
                    let to = if p.offset == -1 { end } else { p.offset };
                    if to < 0 || to > end {
                        r.error_code = ErrorCode::OffsetOutOfRange.code();
                        return r;
                    }
                    part.log.delete_before(to);
                    r.low_watermark = part.log.log_start();
                    r
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    DeleteRecordsResponse {
        topics,
        ..Default::default()
    }
}

fn entry(name: &str, value: &str, source: i8, read_only: bool) -> DescribeConfigsResourceResult {
    DescribeConfigsResourceResult {
        name: name.into(),
        value: Some(value.into()),
        read_only,
        config_source: source,
        ..Default::default()
    }
}

pub(crate) fn describe_configs(
    cluster: &Cluster,
    broker: i32,
    req: &DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let results = req
        .resources
        .iter()
        .map(|r| {
            let mut out = DescribeConfigsResult {
                resource_type: r.resource_type,
                resource_name: r.resource_name.clone(),
                ..Default::default()
            };
            let wanted = |k: &str| {
                r.configuration_keys
                    .as_ref()
                    .is_none_or(|keys| keys.iter().any(|x| x == k))
            };
            match r.resource_type {
                TOPIC => match cluster.topics.get(r.resource_name.as_str()) {
                    Some(t) => {
                        out.configs = t
                            .configs
                            .iter()
                            .filter(|(k, _)| wanted(k))
                            .map(|(k, v)| entry(k, v, SOURCE_TOPIC, false))
                            .collect();
                    }
                    None => out.error_code = ErrorCode::UnknownTopicOrPartition.code(),
                },
                BROKER if r.resource_name.parse() == Ok(broker) => {
                    let id = broker.to_string();
                    let mut configs = vec![entry("node.id", &id, SOURCE_STATIC_BROKER, true)];
                    if let Some(dynamic) = cluster.broker_configs.get(&broker) {
                        configs.extend(
                            dynamic
                                .iter()
                                .map(|(k, v)| entry(k, v, SOURCE_DYNAMIC_BROKER, false)),
                        );
                    }
                    out.configs = configs.into_iter().filter(|c| wanted(&c.name)).collect();
                }
                BROKER => out.error_code = ErrorCode::InvalidRequest.code(),
                GROUP => {
                    if let Some(configs) = cluster.group_configs.get(r.resource_name.as_str()) {
                        out.configs = configs
                            .iter()
                            .filter(|(k, _)| wanted(k))
                            .map(|(k, v)| entry(k, v, SOURCE_GROUP, false))
                            .collect();
                    }
                }
                _ => out.error_code = ErrorCode::InvalidRequest.code(),
            }
            out
        })
        .collect();
    DescribeConfigsResponse {
        results,
        ..Default::default()
    }
}

pub(crate) fn alter_configs(
    cluster: &mut Cluster,
    broker: i32,
    req: &IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let responses = req
        .resources
        .iter()
        .map(|r| {
            let target = match r.resource_type {
                TOPIC => cluster
                    .topics
                    .get_mut(r.resource_name.as_str())
                    .map(|t| &mut t.configs)
                    .ok_or(ErrorCode::UnknownTopicOrPartition),
                BROKER if r.resource_name.parse() == Ok(broker) => {
                    Ok(cluster.broker_configs.entry(broker).or_default())
                }
                GROUP => Ok(cluster
                    .group_configs
                    .entry(r.resource_name.to_string())
                    .or_default()),
                _ => Err(ErrorCode::InvalidRequest),
            };
            let code = match target {
                Err(code) => code,
                Ok(_) if req.validate_only => ErrorCode::None,
                Ok(configs) => {
                    for c in &r.configs {
                        let key = c.name.to_string();
                        let value = c
                            .value
                            .as_ref()
                            .map(ToString::to_string)
                            .unwrap_or_default();
                        match c.config_operation {
                            0 => {
                                configs.insert(key, value);
                            }
                            1 => {
                                configs.remove(&key);
                            }
                            2 => {
                                let slot = configs.entry(key).or_default();
                                if !slot.is_empty() {
                                    slot.push(',');
                                }
                                slot.push_str(&value);
                            }
                            _ => {
                                if let Some(slot) = configs.get_mut(&key) {
                                    *slot = slot
                                        .split(',')
                                        .filter(|x| *x != value)
                                        .collect::<Vec<_>>()
                                        .join(",");
                                }
                            }
                        }
                    }
                    ErrorCode::None
                }
            };
            AlterConfigsResourceResponse {
                error_code: code.code(),
                resource_type: r.resource_type,
                resource_name: r.resource_name.clone(),
                ..Default::default()
            }
        })
        .collect();
    IncrementalAlterConfigsResponse {
        responses,
        ..Default::default()
    }
}
