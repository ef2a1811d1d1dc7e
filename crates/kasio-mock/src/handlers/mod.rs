//! One handler per API the mock serves.

pub(crate) mod admin;
pub(crate) mod api_versions;
pub(crate) mod classic;
pub(crate) mod errors;
pub(crate) mod fetch;
pub(crate) mod fetch_session;
pub(crate) mod groups;
pub(crate) mod list_offsets;
pub(crate) mod metadata;
pub(crate) mod offsets;
pub(crate) mod produce;
pub(crate) mod producer_id;
pub(crate) mod sasl;
pub(crate) mod share;
pub(crate) mod share_partition;
pub(crate) mod topics;
pub(crate) mod txn;

use crate::cluster::{Cluster, ConnId};
use kasio_proto::{AnyRequest, AnyResponse, ErrorCode, messages::RequestHeader};
use std::time::Instant;

/// What a handler does with a request.
pub(crate) enum Outcome {
    /// Send this response now.
    Respond(Box<AnyResponse>),
    /// Send nothing (a Produce with acks=0).
    Silent,
    /// The response comes later (a Fetch waiting for data).
    Parked,
    /// The handler marked the connection busy itself and has answered, or will (a group
    /// join that may complete at once).
    Handled,
    /// Close the connection: the client sent an API the mock does not serve (and did not
    /// advertise).
    Close,
}

pub(crate) fn handle(
    cluster: &mut Cluster,
    conn: ConnId,
    broker: i32,
    header: &RequestHeader,
    body: AnyRequest,
    now: Instant,
) -> Outcome {
    let version = header.request_api_version;
    match body {
        AnyRequest::ApiVersions(_) => Outcome::Respond(Box::new(AnyResponse::ApiVersions(
            api_versions::handle(cluster.config.transaction_version),
        ))),
        AnyRequest::Metadata(r) => Outcome::Respond(Box::new(AnyResponse::Metadata(
            metadata::handle(cluster, &r, version),
        ))),
        AnyRequest::CreateTopics(r) => Outcome::Respond(Box::new(AnyResponse::CreateTopics(
            topics::create(cluster, &r),
        ))),
        AnyRequest::Produce(r) => produce::handle(cluster, broker, &r, now),
        AnyRequest::Fetch(r) => fetch::handle(cluster, conn, broker, header.clone(), r, now),
        AnyRequest::ListOffsets(r) => Outcome::Respond(Box::new(AnyResponse::ListOffsets(
            list_offsets::handle(cluster, broker, &r),
        ))),
        AnyRequest::InitProducerId(r) => {
            let resp = match r.transactional_id.as_deref() {
                Some(id) if !id.is_empty() => {
                    txn::init(cluster, broker, id, r.transaction_timeout_ms)
                }
                _ => producer_id::handle(cluster, &r),
            };
            Outcome::Respond(Box::new(AnyResponse::InitProducerId(resp)))
        }
        AnyRequest::AddPartitionsToTxn(r) => Outcome::Respond(Box::new(
            AnyResponse::AddPartitionsToTxn(txn::add_partitions(cluster, broker, &r, now)),
        )),
        AnyRequest::AddOffsetsToTxn(r) => Outcome::Respond(Box::new(AnyResponse::AddOffsetsToTxn(
            txn::add_offsets(cluster, broker, &r, now),
        ))),
        AnyRequest::TxnOffsetCommit(r) => Outcome::Respond(Box::new(AnyResponse::TxnOffsetCommit(
            txn::commit_offsets(cluster, broker, &r, now),
        ))),
        AnyRequest::EndTxn(r) => {
            let version = header.request_api_version;
            Outcome::Respond(Box::new(AnyResponse::EndTxn(txn::end(
                cluster, broker, &r, version,
            ))))
        }
        AnyRequest::DeleteTopics(r) => Outcome::Respond(Box::new(AnyResponse::DeleteTopics(
            topics::delete(cluster, &r),
        ))),
        AnyRequest::CreatePartitions(r) => Outcome::Respond(Box::new(
            AnyResponse::CreatePartitions(topics::create_partitions(cluster, &r)),
        )),
        AnyRequest::DescribeCluster(_) => Outcome::Respond(Box::new(AnyResponse::DescribeCluster(
            metadata::describe_cluster(cluster),
        ))),
        AnyRequest::FindCoordinator(r) => Outcome::Respond(Box::new(AnyResponse::FindCoordinator(
            offsets::find_coordinator(cluster, &r, version),
        ))),
        AnyRequest::OffsetCommit(r) => Outcome::Respond(Box::new(AnyResponse::OffsetCommit(
            offsets::offset_commit(cluster, broker, &r),
        ))),
        AnyRequest::OffsetFetch(r) => Outcome::Respond(Box::new(AnyResponse::OffsetFetch(
            offsets::offset_fetch(cluster, broker, &r, version),
        ))),
        AnyRequest::ShareGroupHeartbeat(r) => Outcome::Respond(Box::new(
            AnyResponse::ShareGroupHeartbeat(share::heartbeat(cluster, broker, &r, now)),
        )),
        AnyRequest::ShareFetch(r) => share::fetch(cluster, conn, broker, header.clone(), r, now),
        AnyRequest::ShareAcknowledge(r) => Outcome::Respond(Box::new(
            AnyResponse::ShareAcknowledge(share::acknowledge(cluster, conn, broker, &r, now)),
        )),
        AnyRequest::ConsumerGroupHeartbeat(r) => Outcome::Respond(Box::new(
            AnyResponse::ConsumerGroupHeartbeat(groups::heartbeat(cluster, broker, &r, now)),
        )),
        AnyRequest::JoinGroup(r) => classic::join(cluster, conn, broker, header, &r, now),
        AnyRequest::SyncGroup(r) => classic::sync(cluster, conn, broker, header, &r, now),
        AnyRequest::Heartbeat(r) => Outcome::Respond(Box::new(AnyResponse::Heartbeat(
            classic::heartbeat(cluster, broker, &r, now),
        ))),
        AnyRequest::LeaveGroup(r) => Outcome::Respond(Box::new(AnyResponse::LeaveGroup(
            classic::leave(cluster, broker, &r, now),
        ))),
        AnyRequest::SaslHandshake(r) => Outcome::Respond(Box::new(AnyResponse::SaslHandshake(
            sasl::handshake(cluster, conn, &r),
        ))),
        AnyRequest::SaslAuthenticate(r) => sasl::authenticate(cluster, conn, &r, now),
        AnyRequest::ListGroups(r) => Outcome::Respond(Box::new(AnyResponse::ListGroups(
            admin::list_groups(cluster, broker, &r),
        ))),
        AnyRequest::DescribeGroups(r) => Outcome::Respond(Box::new(AnyResponse::DescribeGroups(
            admin::describe_groups(cluster, broker, &r),
        ))),
        AnyRequest::ConsumerGroupDescribe(r) => Outcome::Respond(Box::new(
            AnyResponse::ConsumerGroupDescribe(admin::consumer_group_describe(cluster, broker, &r)),
        )),
        AnyRequest::DeleteGroups(r) => Outcome::Respond(Box::new(AnyResponse::DeleteGroups(
            admin::delete_groups(cluster, broker, &r),
        ))),
        AnyRequest::OffsetDelete(r) => Outcome::Respond(Box::new(AnyResponse::OffsetDelete(
            admin::offset_delete(cluster, broker, &r),
        ))),
        AnyRequest::DeleteRecords(r) => Outcome::Respond(Box::new(AnyResponse::DeleteRecords(
            admin::delete_records(cluster, broker, &r),
        ))),
        AnyRequest::DescribeConfigs(r) => Outcome::Respond(Box::new(AnyResponse::DescribeConfigs(
            admin::describe_configs(cluster, broker, &r),
        ))),
        AnyRequest::IncrementalAlterConfigs(r) => Outcome::Respond(Box::new(
            AnyResponse::IncrementalAlterConfigs(admin::alter_configs(cluster, broker, &r)),
        )),
        _ => Outcome::Close,
    }
}

/// The error for a partition that does not exist or that another broker leads.
pub(crate) fn partition_error(
    cluster: &Cluster,
    topic: &str,
    partition: i32,
    broker: i32,
) -> Option<ErrorCode> {
    let Some(t) = cluster.topics.get(topic) else {
        return Some(ErrorCode::UnknownTopicOrPartition);
    };
    let Some(p) = usize::try_from(partition)
        .ok()
        .and_then(|p| t.partitions.get(p))
    else {
        return Some(ErrorCode::UnknownTopicOrPartition);
    };
    (p.leader != broker).then_some(ErrorCode::NotLeaderOrFollower)
}

/// The topic's name given a name or (from the versions that use them) an id.
pub(crate) fn topic_name(cluster: &Cluster, name: &str, id: kasio_proto::Uuid) -> Option<String> {
    if !id.is_zero() {
        return cluster
            .topics
            .iter()
            .find(|(_, t)| t.id == id)
            .map(|(n, _)| n.clone());
    }
    cluster.topics.contains_key(name).then(|| name.to_string())
}
