//! ApiVersions: the APIs the mock serves, at every version the codec knows.

use kasio_proto::{
    ApiKey,
    messages::{ApiVersionsResponse, api_versions_response::ApiVersion},
};

/// The APIs the mock answers.
const SERVED: [ApiKey; 35] = [
    ApiKey::Produce,
    ApiKey::Fetch,
    ApiKey::ListOffsets,
    ApiKey::Metadata,
    ApiKey::ApiVersions,
    ApiKey::CreateTopics,
    ApiKey::InitProducerId,
    ApiKey::DeleteTopics,
    ApiKey::CreatePartitions,
    ApiKey::DescribeCluster,
    ApiKey::FindCoordinator,
    ApiKey::OffsetCommit,
    ApiKey::OffsetFetch,
    ApiKey::ConsumerGroupHeartbeat,
    ApiKey::ListGroups,
    ApiKey::DescribeGroups,
    ApiKey::ConsumerGroupDescribe,
    ApiKey::DeleteGroups,
    ApiKey::OffsetDelete,
    ApiKey::DeleteRecords,
    ApiKey::DescribeConfigs,
    ApiKey::IncrementalAlterConfigs,
    ApiKey::JoinGroup,
    ApiKey::SyncGroup,
    ApiKey::Heartbeat,
    ApiKey::LeaveGroup,
    ApiKey::AddPartitionsToTxn,
    ApiKey::AddOffsetsToTxn,
    ApiKey::TxnOffsetCommit,
    ApiKey::EndTxn,
    ApiKey::SaslHandshake,
    ApiKey::SaslAuthenticate,
    ApiKey::ShareGroupHeartbeat,
    ApiKey::ShareFetch,
    ApiKey::ShareAcknowledge,
];

pub(crate) fn served() -> Vec<ApiVersion> {
    SERVED
        .iter()
        .map(|k| ApiVersion {
            api_key: k.as_i16(),
            min_version: k.versions().min,
            max_version: k.stable_versions().max,
            ..Default::default()
        })
        .collect()
}

pub(crate) fn handle(transaction_version: i16) -> ApiVersionsResponse {
    ApiVersionsResponse {
        api_keys: served(),
        finalized_features_epoch: 1,
        finalized_features: vec![
            kasio_proto::messages::api_versions_response::FinalizedFeatureKey {
                name: "transaction.version".into(),
                max_version_level: transaction_version,
                min_version_level: transaction_version,
                ..Default::default()
            },
            // Share groups, without the dead-letter topics of level 2 (the mock writes none).
            kasio_proto::messages::api_versions_response::FinalizedFeatureKey {
                name: "share.version".into(),
                max_version_level: 1,
                min_version_level: 1,
                ..Default::default()
            },
        ],
        ..Default::default()
    }
}
