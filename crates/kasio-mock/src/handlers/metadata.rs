//! Metadata: brokers, and topics with their partitions' leaders.

use crate::{cluster::Cluster, handlers::topic_name};
use kasio_proto::{
    ErrorCode,
    messages::{
        DescribeClusterResponse, MetadataRequest, MetadataResponse,
        describe_cluster_response::DescribeClusterBroker,
        metadata_response::{
            MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
        },
    },
};

pub(crate) fn handle(
    cluster: &mut Cluster,
    req: &MetadataRequest,
    version: i16,
) -> MetadataResponse {
    let names: Vec<(Option<String>, kasio_proto::Uuid)> = match &req.topics {
        None => cluster
            .topics
            .keys()
            .map(|n| (Some(n.clone()), kasio_proto::Uuid::ZERO))
            .collect(),
        Some(list) => list
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.to_string()), t.topic_id))
            .collect(),
    };
    // Before v4 the request cannot say, and Kafka creates topics when configured to.
    let allow_create =
        cluster.config.auto_create_topics && (version < 4 || req.allow_auto_topic_creation);
    let mut topics = Vec::new();
    for (name, id) in names {
        let found = topic_name(cluster, name.as_deref().unwrap_or(""), id);
        let found = match (found, &name) {
            (Some(n), _) => Some(n),
            (None, Some(n)) if allow_create && id.is_zero() => {
                let partitions = cluster.config.default_partitions;
                cluster.create_topic(n, partitions).ok().map(|_| n.clone())
            }
            _ => None,
        };
        let Some(n) = found else {
            topics.push(MetadataResponseTopic {
                error_code: ErrorCode::UnknownTopicOrPartition.code(),
                name: name.map(Into::into),
                topic_id: id,
                ..Default::default()
            });
            continue;
        };
        let t = &cluster.topics[&n];
        topics.push(MetadataResponseTopic {
            name: Some(n.clone().into()),
            topic_id: t.id,
            partitions: t
                .partitions
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    // A stopped broker's partitions have no leader until it is back.
                    let down = cluster.stopped.contains(&p.leader);
                    MetadataResponsePartition {
                        error_code: if down {
                            ErrorCode::LeaderNotAvailable.code()
                        } else {
                            0
                        },
                        partition_index: i as i32,
                        leader_id: if down { -1 } else { p.leader },
                        leader_epoch: p.log.leader_epoch(),
                        replica_nodes: replicas(cluster, p.leader),
                        isr_nodes: if down { Vec::new() } else { vec![p.leader] },
                        offline_replicas: if down { vec![p.leader] } else { Vec::new() },
                        ..Default::default()
                    }
                })
                .collect(),
            ..Default::default()
        });
    }
    MetadataResponse {
        brokers: cluster
            .brokers
            .iter()
            .filter(|b| !cluster.stopped.contains(&b.id))
            .map(|b| MetadataResponseBroker {
                node_id: b.id,
                host: b.host.clone().into(),
                port: b.port,
                rack: rack(cluster, b.id),
                ..Default::default()
            })
            .collect(),
        cluster_id: Some(cluster.config.cluster_id.clone().into()),
        controller_id: cluster.brokers[0].id,
        topics,
        ..Default::default()
    }
}

/// DescribeCluster: the brokers, the controller and the cluster id.
pub(crate) fn describe_cluster(cluster: &Cluster) -> DescribeClusterResponse {
    DescribeClusterResponse {
        endpoint_type: 1,
        cluster_id: cluster.config.cluster_id.clone().into(),
        controller_id: cluster.brokers[0].id,
        brokers: cluster
            .brokers
            .iter()
            .map(|b| DescribeClusterBroker {
                broker_id: b.id,
                host: b.host.clone().into(),
                port: b.port,
                rack: rack(cluster, b.id),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// A partition's replicas, leader first: every broker when racks are configured.
fn replicas(cluster: &Cluster, leader: i32) -> Vec<i32> {
    if cluster.config.racks.is_empty() {
        return vec![leader];
    }
    std::iter::once(leader)
        .chain(
            cluster
                .brokers
                .iter()
                .map(|b| b.id)
                .filter(|&b| b != leader),
        )
        .collect()
}

/// A broker's rack, when racks are configured.
fn rack(cluster: &Cluster, broker: i32) -> Option<kasio_proto::ByteStr> {
    let i = usize::try_from(broker - 1).ok()?;
    cluster.config.racks.get(i).map(|r| r.as_str().into())
}
