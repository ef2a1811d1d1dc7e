//! The response a request gets when an injected fault fails it: the request's own shape,
//! with the error on every partition (or at the top level where the API has no partitions).

use kasio_proto::{
    AnyRequest, AnyResponse, ErrorCode,
    messages::{
        AddOffsetsToTxnResponse, AddPartitionsToTxnResponse, ApiVersionsResponse,
        ConsumerGroupDescribeResponse, ConsumerGroupHeartbeatResponse, CreatePartitionsResponse,
        CreateTopicsResponse, DeleteGroupsResponse, DeleteTopicsResponse, DescribeClusterResponse,
        DescribeConfigsResponse, DescribeGroupsResponse, EndTxnResponse, FetchResponse,
        FindCoordinatorResponse, HeartbeatResponse, IncrementalAlterConfigsResponse,
        InitProducerIdResponse, JoinGroupResponse, LeaveGroupResponse, ListGroupsResponse,
        ListOffsetsResponse, MetadataResponse, OffsetCommitResponse, OffsetDeleteResponse,
        OffsetFetchResponse, ProduceResponse, SyncGroupResponse, TxnOffsetCommitResponse,
        add_partitions_to_txn_response, consumer_group_describe_response,
        create_partitions_response::CreatePartitionsTopicResult,
        create_topics_response::CreatableTopicResult, delete_groups_response,
        delete_topics_response::DeletableTopicResult, describe_configs_response,
        describe_groups_response, fetch_response, find_coordinator_response,
        incremental_alter_configs_response, list_offsets_response,
        metadata_response::MetadataResponseTopic, offset_commit_response, offset_fetch_response,
        produce_response, txn_offset_commit_response,
    },
};

pub(crate) fn error_response(request: &AnyRequest, error: ErrorCode) -> Option<AnyResponse> {
    let code = error.code();
    Some(match request {
        AnyRequest::Produce(r) => AnyResponse::Produce(ProduceResponse {
            responses: r
                .topic_data
                .iter()
                .map(|t| produce_response::TopicProduceResponse {
                    name: t.name.clone(),
                    topic_id: t.topic_id,
                    partition_responses: t
                        .partition_data
                        .iter()
                        .map(|p| produce_response::PartitionProduceResponse {
                            index: p.index,
                            error_code: code,
                            base_offset: -1,
                            log_append_time_ms: -1,
                            log_start_offset: -1,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        AnyRequest::Fetch(r) => AnyResponse::Fetch(FetchResponse {
            responses: r
                .topics
                .iter()
                .map(|t| fetch_response::FetchableTopicResponse {
                    topic: t.topic.clone(),
                    topic_id: t.topic_id,
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| super::fetch::empty_partition(p.partition, code))
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        AnyRequest::ListOffsets(r) => AnyResponse::ListOffsets(ListOffsetsResponse {
            topics: r
                .topics
                .iter()
                .map(|t| list_offsets_response::ListOffsetsTopicResponse {
                    name: t.name.clone(),
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| list_offsets_response::ListOffsetsPartitionResponse {
                            partition_index: p.partition_index,
                            error_code: code,
                            timestamp: -1,
                            offset: -1,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        AnyRequest::Metadata(r) => AnyResponse::Metadata(MetadataResponse {
            topics: r
                .topics
                .iter()
                .flatten()
                .map(|t| MetadataResponseTopic {
                    error_code: code,
                    name: t.name.clone(),
                    topic_id: t.topic_id,
                    ..Default::default()
                })
                .collect(),
            error_code: code,
            ..Default::default()
        }),
        AnyRequest::CreateTopics(r) => AnyResponse::CreateTopics(CreateTopicsResponse {
            topics: r
                .topics
                .iter()
                .map(|t| CreatableTopicResult {
                    name: t.name.clone(),
                    error_code: code,
                    num_partitions: -1,
                    replication_factor: -1,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        AnyRequest::InitProducerId(_) => AnyResponse::InitProducerId(InitProducerIdResponse {
            error_code: code,
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        }),
        AnyRequest::DeleteTopics(r) => AnyResponse::DeleteTopics(DeleteTopicsResponse {
            responses: r
                .topic_names
                .iter()
                .map(|n| (Some(n.clone()), kasio_proto::Uuid::ZERO))
                .chain(r.topics.iter().map(|t| (t.name.clone(), t.topic_id)))
                .map(|(name, topic_id)| DeletableTopicResult {
                    name,
                    topic_id,
                    error_code: code,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        AnyRequest::CreatePartitions(r) => {
            AnyResponse::CreatePartitions(CreatePartitionsResponse {
                results: r
                    .topics
                    .iter()
                    .map(|t| CreatePartitionsTopicResult {
                        name: t.name.clone(),
                        error_code: code,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
        }
        AnyRequest::DescribeCluster(_) => AnyResponse::DescribeCluster(DescribeClusterResponse {
            error_code: code,
            endpoint_type: 1,
            ..Default::default()
        }),
        AnyRequest::ApiVersions(_) => AnyResponse::ApiVersions(ApiVersionsResponse {
            error_code: code,
            ..Default::default()
        }),
        AnyRequest::FindCoordinator(r) => AnyResponse::FindCoordinator(FindCoordinatorResponse {
            error_code: code,
            node_id: -1,
            coordinators: r
                .coordinator_keys
                .iter()
                .map(|k| find_coordinator_response::Coordinator {
                    key: k.clone(),
                    node_id: -1,
                    error_code: code,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        AnyRequest::OffsetCommit(r) => AnyResponse::OffsetCommit(OffsetCommitResponse {
            topics: r
                .topics
                .iter()
                .map(|t| offset_commit_response::OffsetCommitResponseTopic {
                    name: t.name.clone(),
                    topic_id: t.topic_id,
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| offset_commit_response::OffsetCommitResponsePartition {
                            partition_index: p.partition_index,
                            error_code: code,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        AnyRequest::ShareGroupHeartbeat(_) => {
            AnyResponse::ShareGroupHeartbeat(kasio_proto::messages::ShareGroupHeartbeatResponse {
                error_code: code,
                member_epoch: -1,
                ..Default::default()
            })
        }
        AnyRequest::ShareFetch(_) => {
            AnyResponse::ShareFetch(kasio_proto::messages::ShareFetchResponse {
                error_code: code,
                ..Default::default()
            })
        }
        AnyRequest::ShareAcknowledge(_) => {
            AnyResponse::ShareAcknowledge(kasio_proto::messages::ShareAcknowledgeResponse {
                error_code: code,
                ..Default::default()
            })
        }
        AnyRequest::ConsumerGroupHeartbeat(_) => {
            AnyResponse::ConsumerGroupHeartbeat(ConsumerGroupHeartbeatResponse {
                error_code: code,
                member_epoch: -1,
                ..Default::default()
            })
        }
        AnyRequest::OffsetFetch(r) => AnyResponse::OffsetFetch(OffsetFetchResponse {
            error_code: code,
            groups: r
                .groups
                .iter()
                .map(|g| offset_fetch_response::OffsetFetchResponseGroup {
                    group_id: g.group_id.clone(),
                    error_code: code,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        AnyRequest::JoinGroup(r) => AnyResponse::JoinGroup(JoinGroupResponse {
            error_code: code,
            generation_id: -1,
            member_id: r.member_id.clone(),
            ..Default::default()
        }),
        AnyRequest::SyncGroup(_) => AnyResponse::SyncGroup(SyncGroupResponse {
            error_code: code,
            ..Default::default()
        }),
        AnyRequest::Heartbeat(_) => AnyResponse::Heartbeat(HeartbeatResponse {
            error_code: code,
            ..Default::default()
        }),
        AnyRequest::LeaveGroup(_) => AnyResponse::LeaveGroup(LeaveGroupResponse {
            error_code: code,
            ..Default::default()
        }),
        AnyRequest::ListGroups(_) => AnyResponse::ListGroups(ListGroupsResponse {
            error_code: code,
            ..Default::default()
        }),
        AnyRequest::DescribeGroups(r) => AnyResponse::DescribeGroups(DescribeGroupsResponse {
            groups: r
                .groups
                .iter()
                .map(|g| describe_groups_response::DescribedGroup {
                    group_id: g.clone(),
                    error_code: code,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        AnyRequest::ConsumerGroupDescribe(r) => {
            AnyResponse::ConsumerGroupDescribe(ConsumerGroupDescribeResponse {
                groups: r
                    .group_ids
                    .iter()
                    .map(|g| consumer_group_describe_response::DescribedGroup {
                        group_id: g.clone(),
                        error_code: code,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
        }
        AnyRequest::DeleteGroups(r) => AnyResponse::DeleteGroups(DeleteGroupsResponse {
            results: r
                .groups_names
                .iter()
                .map(|g| delete_groups_response::DeletableGroupResult {
                    group_id: g.clone(),
                    error_code: code,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        AnyRequest::OffsetDelete(_) => AnyResponse::OffsetDelete(OffsetDeleteResponse {
            error_code: code,
            ..Default::default()
        }),
        AnyRequest::DescribeConfigs(r) => AnyResponse::DescribeConfigs(DescribeConfigsResponse {
            results: r
                .resources
                .iter()
                .map(|x| describe_configs_response::DescribeConfigsResult {
                    error_code: code,
                    resource_type: x.resource_type,
                    resource_name: x.resource_name.clone(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        AnyRequest::IncrementalAlterConfigs(r) => {
            AnyResponse::IncrementalAlterConfigs(IncrementalAlterConfigsResponse {
                responses: r
                    .resources
                    .iter()
                    .map(
                        |x| incremental_alter_configs_response::AlterConfigsResourceResponse {
                            error_code: code,
                            resource_type: x.resource_type,
                            resource_name: x.resource_name.clone(),
                            ..Default::default()
                        },
                    )
                    .collect(),
                ..Default::default()
            })
        }
        AnyRequest::AddPartitionsToTxn(r) => {
            AnyResponse::AddPartitionsToTxn(AddPartitionsToTxnResponse {
                results_by_topic_v3_and_below: r
                    .v3_and_below_topics
                    .iter()
                    .map(
                        |t| {
                            add_partitions_to_txn_response::AddPartitionsToTxnTopicResult {
                        name: t.name.clone(),
                        results_by_partition: t
                            .partitions
                            .iter()
                            .map(|&p| {
                                add_partitions_to_txn_response::AddPartitionsToTxnPartitionResult {
                                    partition_index: p,
                                    partition_error_code: code,
                                    ..Default::default()
                                }
                            })
                            .collect(),
                        ..Default::default()
                    }
                        },
                    )
                    .collect(),
                ..Default::default()
            })
        }
        AnyRequest::AddOffsetsToTxn(_) => AnyResponse::AddOffsetsToTxn(AddOffsetsToTxnResponse {
            error_code: code,
            ..Default::default()
        }),
        AnyRequest::EndTxn(_) => AnyResponse::EndTxn(EndTxnResponse {
            error_code: code,
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        }),
        AnyRequest::TxnOffsetCommit(r) => AnyResponse::TxnOffsetCommit(TxnOffsetCommitResponse {
            topics: r
                .topics
                .iter()
                .map(
                    |t| txn_offset_commit_response::TxnOffsetCommitResponseTopic {
                        name: t.name.clone(),
                        partitions: t
                            .partitions
                            .iter()
                            .map(
                                |p| txn_offset_commit_response::TxnOffsetCommitResponsePartition {
                                    partition_index: p.partition_index,
                                    error_code: code,
                                    ..Default::default()
                                },
                            )
                            .collect(),
                        ..Default::default()
                    },
                )
                .collect(),
            ..Default::default()
        }),
        _ => return None,
    })
}
