//! CreateTopics, DeleteTopics and CreatePartitions.

use crate::{
    cluster::{Cluster, CreateTopicError, Partition},
    handlers::topic_name,
    log::PartitionLog,
};
use kasio_proto::{
    ErrorCode, Uuid,
    messages::{
        CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest,
        CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
        create_partitions_response::CreatePartitionsTopicResult,
        create_topics_response::CreatableTopicResult, delete_topics_response::DeletableTopicResult,
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
                let created = cluster
                    .create_topic(&t.name, partitions)
                    .map_err(|e| match e {
                        CreateTopicError::AlreadyExists => ErrorCode::TopicAlreadyExists,
                        CreateTopicError::Invalid => ErrorCode::InvalidTopicException,
                    });
                if created.is_ok()
                    && let Some(topic) = cluster.topics.get_mut(t.name.as_str())
                {
                    topic.configs = t
                        .configs
                        .iter()
                        .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
                        .collect();
                }
                created
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

/// DeleteTopics: by name (v1-5) or by name or id (v6+).
pub(crate) fn delete(cluster: &mut Cluster, req: &DeleteTopicsRequest) -> DeleteTopicsResponse {
    let by_name = req
        .topic_names
        .iter()
        .map(|n| (Some(n.clone()), Uuid::ZERO));
    let by_state = req.topics.iter().map(|t| (t.name.clone(), t.topic_id));
    let responses = by_name
        .chain(by_state)
        .map(|(name, id)| {
            let found = topic_name(cluster, name.as_deref().unwrap_or(""), id);
            let mut r = DeletableTopicResult {
                name: name.clone(),
                topic_id: id,
                ..Default::default()
            };
            match found.and_then(|n| cluster.topics.remove(&n).map(|t| (n, t))) {
                Some((n, t)) => {
                    r.name = Some(n.into());
                    r.topic_id = t.id;
                }
                None => {
                    let code = if id.is_zero() {
                        ErrorCode::UnknownTopicOrPartition
                    } else {
                        ErrorCode::UnknownTopicId
                    };
                    r.error_code = code.code();
                    r.error_message = Some(code.message().into());
                }
            }
            r
        })
        .collect();
    DeleteTopicsResponse {
        responses,
        ..Default::default()
    }
}

/// CreatePartitions: grows a topic to `count` partitions, new leaders spread over the brokers.
pub(crate) fn create_partitions(
    cluster: &mut Cluster,
    req: &CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let brokers: Vec<i32> = cluster.broker_ids().collect();
    let results = req
        .topics
        .iter()
        .map(|t| {
            let error = match cluster.topics.get_mut(t.name.as_str()) {
                None => Some(ErrorCode::UnknownTopicOrPartition),
                Some(topic) if t.count <= topic.partitions.len() as i32 || t.count > 100_000 => {
                    Some(ErrorCode::InvalidPartitions)
                }
                Some(_) if req.validate_only => None,
                Some(topic) => {
                    while (topic.partitions.len() as i32) < t.count {
                        let leader = brokers[topic.partitions.len() % brokers.len()];
                        topic.partitions.push(Partition {
                            leader,
                            log: PartitionLog::default(),
                        });
                    }
                    None
                }
            };
            CreatePartitionsTopicResult {
                name: t.name.clone(),
                error_code: error.map_or(0, ErrorCode::code),
                error_message: error.map(|e| e.message().into()),
                ..Default::default()
            }
        })
        .collect();
    CreatePartitionsResponse {
        results,
        ..Default::default()
    }
}
