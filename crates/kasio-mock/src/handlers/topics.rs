//! CreateTopics.

use crate::cluster::{Cluster, CreateTopicError};
use kasio_proto::{
    ErrorCode,
    messages::{
        CreateTopicsRequest, CreateTopicsResponse, create_topics_response::CreatableTopicResult,
    },
};

pub(crate) fn create(cluster: &mut Cluster, req: &CreateTopicsRequest) -> CreateTopicsResponse {
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let partitions = if t.num_partitions == -1 {
                cluster.config.default_partitions
            } else {
                t.num_partitions
            };
            let rf = if t.replication_factor == -1 {
                1
            } else {
                t.replication_factor
            };
            let result = if i32::from(rf) > cluster.config.brokers || rf < 1 {
                Err(ErrorCode::InvalidReplicationFactor)
            } else if req.validate_only {
                match cluster.topics.contains_key(t.name.as_str()) {
                    true => Err(ErrorCode::TopicAlreadyExists),
                    false => Ok(kasio_proto::Uuid::ZERO),
                }
            } else {
                cluster
                    .create_topic(&t.name, partitions)
                    .map_err(|e| match e {
                        CreateTopicError::AlreadyExists => ErrorCode::TopicAlreadyExists,
                        CreateTopicError::Invalid => ErrorCode::InvalidTopicException,
                    })
            };
            match result {
                Ok(id) => CreatableTopicResult {
                    name: t.name.clone(),
                    topic_id: id,
                    num_partitions: partitions,
                    replication_factor: rf,
                    ..Default::default()
                },
                Err(code) => CreatableTopicResult {
                    name: t.name.clone(),
                    error_code: code.code(),
                    error_message: Some(code.message().into()),
                    num_partitions: -1,
                    replication_factor: -1,
                    ..Default::default()
                },
            }
        })
        .collect();
    CreateTopicsResponse {
        topics,
        ..Default::default()
    }
}
