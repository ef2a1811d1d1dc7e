//! Group offsets without membership: FindCoordinator, OffsetCommit and OffsetFetch, for
//! consumers that assign their own partitions and commit with generation -1 (as Kafka
//! allows for a group with no members).

use crate::cluster::Cluster;
use kasio_proto::{
    ErrorCode,
    messages::{
        FindCoordinatorRequest, FindCoordinatorResponse, OffsetCommitRequest, OffsetCommitResponse,
        OffsetFetchRequest, OffsetFetchResponse,
        find_coordinator_response::Coordinator,
        offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic},
        offset_fetch_response::{
            OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
            OffsetFetchResponseTopic, OffsetFetchResponseTopics,
        },
    },
};

/// A committed offset and its metadata string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Committed {
    pub(crate) offset: i64,
    pub(crate) metadata: Option<String>,
}

/// The broker that coordinates a group: spread by a stable hash of its name.
pub(crate) fn coordinator(cluster: &Cluster, group: &str) -> i32 {
    if let Some(&moved) = cluster.coordinators.get(group) {
        return moved;
    }
    let hash = group
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    let ids: Vec<i32> = cluster.broker_ids().collect();
    ids.get((hash as usize) % ids.len().max(1))
        .copied()
        .unwrap_or(-1)
}

pub(crate) fn find_coordinator(
    cluster: &Cluster,
    req: &FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    // Key type 0 is a consumer group, 1 a transactional id; share groups (2) are not served.
    let locate = |key: &str| -> (ErrorCode, i32, String, i32) {
        if req.key_type > 1 {
            return (ErrorCode::InvalidRequest, -1, String::new(), -1);
        }
        let id = coordinator(cluster, key);
        let b = cluster.brokers.iter().find(|b| b.id == id);
        b.map_or(
            (ErrorCode::CoordinatorNotAvailable, -1, String::new(), -1),
            |b| (ErrorCode::None, b.id, b.host.clone(), b.port),
        )
    };
    if version >= 4 {
        let coordinators = req
            .coordinator_keys
            .iter()
            .map(|k| {
                let (code, node_id, host, port) = locate(k);
                Coordinator {
                    key: k.clone(),
                    node_id,
                    host: host.as_str().into(),
                    port,
                    error_code: code.code(),
                    ..Default::default()
                }
            })
            .collect();
        return FindCoordinatorResponse {
            coordinators,
            ..Default::default()
        };
    }
    let (code, node_id, host, port) = locate(&req.key);
    FindCoordinatorResponse {
        error_code: code.code(),
        node_id,
        host: host.as_str().into(),
        port,
        ..Default::default()
    }
}

fn topic_name(cluster: &Cluster, name: &str, id: kasio_proto::Uuid) -> Option<String> {
    if !name.is_empty() {
        return Some(name.to_string());
    }
    cluster
        .topics
        .iter()
        .find(|(_, t)| t.id == id)
        .map(|(n, _)| n.clone())
}

pub(crate) fn offset_commit(
    cluster: &mut Cluster,
    broker: i32,
    req: &OffsetCommitRequest,
) -> OffsetCommitResponse {
    let group_error = if coordinator(cluster, &req.group_id) != broker {
        Some(ErrorCode::NotCoordinator)
    } else if req.generation_id_or_member_epoch >= 0 || !req.member_id.is_empty() {
        // A member: of a classic group (its generation), or of a KIP-848 group (its epoch).
        let code = super::classic::commit_allowed(
            cluster,
            &req.group_id,
            &req.member_id,
            req.generation_id_or_member_epoch,
        )
        .unwrap_or_else(|| {
            super::groups::commit_allowed(
                cluster,
                &req.group_id,
                &req.member_id,
                req.generation_id_or_member_epoch,
            )
        });
        (code != ErrorCode::None).then_some(code)
    } else {
        None
    };
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let name = topic_name(cluster, &t.name, t.topic_id);
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let code = group_error.unwrap_or_else(|| {
                        let exists = name
                            .as_ref()
                            .and_then(|n| cluster.topics.get(n))
                            .is_some_and(|topic| {
                                usize::try_from(p.partition_index)
                                    .is_ok_and(|i| i < topic.partitions.len())
                            });
                        if !exists {
                            return ErrorCode::UnknownTopicOrPartition;
                        }
                        if let Some(n) = &name {
                            cluster
                                .offsets
                                .entry(req.group_id.to_string())
                                .or_default()
                                .insert(
                                    (n.clone(), p.partition_index),
                                    Committed {
                                        offset: p.committed_offset,
                                        metadata: p
                                            .committed_metadata
                                            .as_deref()
                                            .map(str::to_string),
                                    },
                                );
                        }
                        ErrorCode::None
                    });
                    OffsetCommitResponsePartition {
                        partition_index: p.partition_index,
                        error_code: code.code(),
                        ..Default::default()
                    }
                })
                .collect();
            OffsetCommitResponseTopic {
                name: t.name.clone(),
                topic_id: t.topic_id,
                partitions,
                ..Default::default()
            }
        })
        .collect();
    OffsetCommitResponse {
        topics,
        ..Default::default()
    }
}

/// A topic and, per asked partition, its committed offset if there is one.
type TopicOffsets = (String, Vec<(i32, Option<Committed>)>);

/// A group's committed offsets for the asked partitions (all of them for `None`).
fn committed(
    cluster: &Cluster,
    group: &str,
    asked: Option<Vec<(String, Vec<i32>)>>,
) -> Vec<TopicOffsets> {
    let stored = cluster.offsets.get(group);
    match asked {
        Some(topics) => topics
            .into_iter()
            .map(|(name, parts)| {
                let found = parts
                    .into_iter()
                    .map(|p| (p, stored.and_then(|s| s.get(&(name.clone(), p)).cloned())))
                    .collect();
                (name, found)
            })
            .collect(),
        None => {
            let mut out: Vec<TopicOffsets> = Vec::new();
            for ((t, p), c) in stored.into_iter().flatten() {
                match out.iter_mut().find(|(n, _)| n == t) {
                    Some((_, v)) => v.push((*p, Some(c.clone()))),
                    None => out.push((t.clone(), vec![(*p, Some(c.clone()))])),
                }
            }
            out
        }
    }
}

pub(crate) fn offset_fetch(
    cluster: &Cluster,
    broker: i32,
    req: &OffsetFetchRequest,
    version: i16,
) -> OffsetFetchResponse {
    if version >= 8 {
        let groups = req
            .groups
            .iter()
            .map(|g| {
                if coordinator(cluster, &g.group_id) != broker {
                    return OffsetFetchResponseGroup {
                        group_id: g.group_id.clone(),
                        error_code: ErrorCode::NotCoordinator.code(),
                        ..Default::default()
                    };
                }
                let asked = g.topics.as_ref().map(|ts| {
                    ts.iter()
                        .map(|t| {
                            let name = topic_name(cluster, &t.name, t.topic_id).unwrap_or_default();
                            (name, t.partition_indexes.clone())
                        })
                        .collect()
                });
                let topics = committed(cluster, &g.group_id, asked)
                    .into_iter()
                    .map(|(name, parts)| OffsetFetchResponseTopics {
                        topic_id: cluster.topics.get(&name).map(|t| t.id).unwrap_or_default(),
                        name: if version >= 10 {
                            "".into()
                        } else {
                            name.as_str().into()
                        },
                        partitions: parts
                            .into_iter()
                            .map(|(p, c)| OffsetFetchResponsePartitions {
                                partition_index: p,
                                committed_offset: c.as_ref().map_or(-1, |c| c.offset),
                                committed_leader_epoch: -1,
                                metadata: c.and_then(|c| c.metadata).map(|m| m.as_str().into()),
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    })
                    .collect();
                OffsetFetchResponseGroup {
                    group_id: g.group_id.clone(),
                    topics,
                    ..Default::default()
                }
            })
            .collect();
        return OffsetFetchResponse {
            groups,
            ..Default::default()
        };
    }
    if coordinator(cluster, &req.group_id) != broker {
        return OffsetFetchResponse {
            error_code: ErrorCode::NotCoordinator.code(),
            ..Default::default()
        };
    }
    let asked = req.topics.as_ref().map(|ts| {
        ts.iter()
            .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
            .collect()
    });
    let topics = committed(cluster, &req.group_id, asked)
        .into_iter()
        .map(|(name, parts)| OffsetFetchResponseTopic {
            name: name.as_str().into(),
            partitions: parts
                .into_iter()
                .map(|(p, c)| OffsetFetchResponsePartition {
                    partition_index: p,
                    committed_offset: c.as_ref().map_or(-1, |c| c.offset),
                    committed_leader_epoch: -1,
                    metadata: c.and_then(|c| c.metadata).map(|m| m.as_str().into()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    OffsetFetchResponse {
        topics,
        ..Default::default()
    }
}
