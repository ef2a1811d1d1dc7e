//! Topics: list, describe, create, delete, and add partitions.

use super::{
    Admin, AdminError, AdminOutput, ApiError, Named, NewTopic, OpId, PartitionInfo,
    TopicDescription, TopicListing, TopicRef, TopicResult,
    call::{Cx, Operation, Read, Single, Target, retriable, unexpected},
};
use kasio_proto::{
    AnyRequest, AnyResponse, ErrorCode, Uuid,
    messages::{
        CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest, MetadataRequest,
        create_partitions_request::{CreatePartitionsAssignment, CreatePartitionsTopic},
        create_topics_request::{CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig},
        delete_topics_request::DeleteTopicState,
        metadata_request::MetadataRequestTopic,
    },
};
use std::{collections::BTreeMap, sync::Arc, time::Instant};

/// Metadata for `topics` (every topic when `None`), without auto-creation.
pub(super) fn metadata_request(topics: Option<&[String]>) -> AnyRequest {
    MetadataRequest {
        topics: topics.map(|ts| {
            ts.iter()
                .map(|t| MetadataRequestTopic {
                    name: Some(t.as_str().into()),
                    ..Default::default()
                })
                .collect()
        }),
        allow_auto_topic_creation: false,
        ..Default::default()
    }
    .into()
}

fn describe(
    t: &kasio_proto::messages::metadata_response::MetadataResponseTopic,
) -> TopicDescription {
    let mut partitions: Vec<PartitionInfo> = t
        .partitions
        .iter()
        .map(|p| PartitionInfo {
            partition: p.partition_index,
            leader: (p.leader_id >= 0).then_some(p.leader_id),
            leader_epoch: p.leader_epoch,
            replicas: p.replica_nodes.clone(),
            isr: p.isr_nodes.clone(),
            offline_replicas: p.offline_replicas.clone(),
        })
        .collect();
    partitions.sort_by_key(|p| p.partition);
    TopicDescription {
        name: t.name.as_ref().map(ToString::to_string).unwrap_or_default(),
        id: t.topic_id,
        internal: t.is_internal,
        partitions,
    }
}

impl Admin {
    /// Lists the topics, with Kafka's internal ones when `include_internal`.
    pub fn list_topics(&mut self, include_internal: bool, now: Instant) -> OpId {
        let op = Single::new(
            Target::Any,
            |_| metadata_request(None),
            move |resp| {
                let AnyResponse::Metadata(r) = resp else {
                    return unexpected(&resp);
                };
                let mut topics: Vec<TopicListing> = r
                    .topics
                    .iter()
                    .filter(|t| include_internal || !t.is_internal)
                    .filter_map(|t| {
                        Some(TopicListing {
                            name: t.name.as_ref()?.to_string(),
                            id: t.topic_id,
                            internal: t.is_internal,
                        })
                    })
                    .collect();
                topics.sort_by(|a, b| a.name.cmp(&b.name));
                Read::Done(AdminOutput::TopicListings(topics))
            },
        );
        self.start(op, now)
    }

    /// Describes topics: partitions, leaders, replicas, in-sync replicas.
    pub fn describe_topics(&mut self, topics: &[&str], now: Instant) -> OpId {
        let names: Vec<String> = topics.iter().map(|t| (*t).to_string()).collect();
        let wanted = names.clone();
        let op = Single::new(
            Target::Any,
            move |_| metadata_request(Some(&names)),
            move |resp| {
                let AnyResponse::Metadata(r) = resp else {
                    return unexpected(&resp);
                };
                let mut out = Vec::new();
                for name in &wanted {
                    let t = r
                        .topics
                        .iter()
                        .find(|t| t.name.as_ref().is_some_and(|n| n == name.as_str()));
                    let result = match t {
                        None => Err(ApiError {
                            code: ErrorCode::UnknownTopicOrPartition,
                            message: None,
                        }),
                        Some(t) if t.error_code == ErrorCode::LeaderNotAvailable.code() => {
                            return Read::Retry;
                        }
                        Some(t) => ApiError::check(t.error_code, None).map(|()| describe(t)),
                    };
                    out.push(Named {
                        name: name.clone(),
                        result,
                    });
                }
                Read::Done(AdminOutput::TopicDescriptions(out))
            },
        );
        self.start(op, now)
    }

    /// Creates topics (or only checks that they could be, when `validate_only`).
    pub fn create_topics(
        &mut self,
        topics: &[NewTopic],
        validate_only: bool,
        now: Instant,
    ) -> OpId {
        let timeout = ms(self.config.network.request_timeout);
        let items = topics
            .iter()
            .map(|t| {
                let creatable = CreatableTopic {
                    name: t.name.as_str().into(),
                    num_partitions: t.partitions,
                    replication_factor: t.replication_factor,
                    assignments: t
                        .assignment
                        .iter()
                        .zip(0..)
                        .map(|(brokers, i)| CreatableReplicaAssignment {
                            partition_index: i,
                            broker_ids: brokers.clone(),
                            ..Default::default()
                        })
                        .collect(),
                    configs: t
                        .configs
                        .iter()
                        .map(|(k, v)| CreatableTopicConfig {
                            name: k.as_str().into(),
                            value: Some(v.as_str().into()),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                };
                (t.name.clone(), creatable)
            })
            .collect();
        let op = PerTopic::new(items, move |items: &[CreatableTopic], _| {
            CreateTopicsRequest {
                topics: items.to_vec(),
                timeout_ms: timeout,
                validate_only,
                ..Default::default()
            }
            .into()
        });
        self.start(Box::new(op), now)
    }

    /// Deletes topics, by name or by id (ids need Kafka 2.8 or later).
    pub fn delete_topics(&mut self, topics: &[TopicRef], now: Instant) -> OpId {
        let timeout = ms(self.config.network.request_timeout);
        let by_id = topics.iter().any(|t| matches!(t, TopicRef::Id(_)));
        let items = topics
            .iter()
            .map(|t| {
                let key = match t {
                    TopicRef::Name(n) => n.clone(),
                    TopicRef::Id(id) => id.to_string(),
                };
                (key, t.clone())
            })
            .collect();
        let mut op = PerTopic::new(items, move |items: &[TopicRef], v| {
            let req = if v >= 6 {
                DeleteTopicsRequest {
                    topics: items
                        .iter()
                        .map(|t| match t {
                            TopicRef::Name(n) => DeleteTopicState {
                                name: Some(n.as_str().into()),
                                topic_id: Uuid::ZERO,
                                ..Default::default()
                            },
                            TopicRef::Id(id) => DeleteTopicState {
                                name: None,
                                topic_id: *id,
                                ..Default::default()
                            },
                        })
                        .collect(),
                    timeout_ms: timeout,
                    ..Default::default()
                }
            } else {
                DeleteTopicsRequest {
                    topic_names: items
                        .iter()
                        .filter_map(|t| match t {
                            TopicRef::Name(n) => Some(n.as_str().into()),
                            TopicRef::Id(_) => None,
                        })
                        .collect(),
                    timeout_ms: timeout,
                    ..Default::default()
                }
            };
            req.into()
        });
        if by_id {
            op.min_version = 6;
        }
        self.start(Box::new(op), now)
    }

    /// Raises topics' partition counts to the totals given.
    pub fn create_partitions(
        &mut self,
        topics: &[(&str, i32)],
        validate_only: bool,
        now: Instant,
    ) -> OpId {
        let timeout = ms(self.config.network.request_timeout);
        let items = topics
            .iter()
            .map(|&(name, count)| {
                (
                    name.to_string(),
                    CreatePartitionsTopic {
                        name: name.into(),
                        count,
                        assignments: None::<Vec<CreatePartitionsAssignment>>,
                        ..Default::default()
                    },
                )
            })
            .collect();
        let op = PerTopic::new(items, move |items: &[CreatePartitionsTopic], _| {
            CreatePartitionsRequest {
                topics: items.to_vec(),
                timeout_ms: timeout,
                validate_only,
                ..Default::default()
            }
            .into()
        });
        self.start(Box::new(op), now)
    }
}

pub(super) fn ms(d: std::time::Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

type TopicBuild<T> = Arc<dyn Fn(&[T], i16) -> AnyRequest + Send + Sync>;

/// A request about several topics whose per-topic retriable errors (the controller moved)
/// are retried for those topics only.
struct PerTopic<T> {
    order: Vec<String>,
    remaining: Vec<(String, T)>,
    results: BTreeMap<String, TopicResult>,
    build: TopicBuild<T>,
    min_version: i16,
}

impl<T> std::fmt::Debug for PerTopic<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerTopic")
            .field("order", &self.order)
            .finish_non_exhaustive()
    }
}

impl<T: Clone + Send + Sync + 'static> PerTopic<T> {
    fn new<B>(items: Vec<(String, T)>, build: B) -> Self
    where
        B: Fn(&[T], i16) -> AnyRequest + Send + Sync + 'static,
    {
        Self {
            order: items.iter().map(|(k, _)| k.clone()).collect(),
            remaining: items,
            results: BTreeMap::new(),
            build: Arc::new(build),
            min_version: 0,
        }
    }

    fn send(&self, cx: &mut Cx, later: bool) {
        let items: Vec<T> = self.remaining.iter().map(|(_, t)| t.clone()).collect();
        let b = self.build.clone();
        let build = move |v| b(&items, v);
        if later {
            cx.retry(0, Target::Any, build);
        } else {
            cx.call_from(0, Target::Any, self.min_version, build);
        }
    }

    fn finish(&mut self, cx: &mut Cx) {
        let out = self
            .order
            .iter()
            .map(|k| {
                self.results.remove(k).unwrap_or_else(|| TopicResult {
                    name: k.clone(),
                    id: Uuid::ZERO,
                    error: Some(ApiError {
                        code: ErrorCode::UnknownServerError,
                        message: Some("the broker did not answer for this topic".into()),
                    }),
                })
            })
            .collect();
        cx.finish(AdminOutput::TopicResults(out));
    }
}

impl<T: Clone + Send + Sync + std::fmt::Debug + 'static> Operation for PerTopic<T> {
    fn start(&mut self, cx: &mut Cx) {
        if self.remaining.is_empty() {
            return self.finish(cx);
        }
        self.send(cx, false);
    }

    fn on_response(&mut self, _key: u32, resp: Result<AnyResponse, AdminError>, cx: &mut Cx) {
        let resp = match resp {
            Ok(r) => r,
            Err(e) => return cx.fail(e),
        };
        // (key the caller used, name, id, code, message)
        let answers: Vec<(String, String, Uuid, i16, Option<String>)> = match &resp {
            AnyResponse::CreateTopics(r) => r
                .topics
                .iter()
                .map(|t| {
                    let name = t.name.to_string();
                    (
                        name.clone(),
                        name,
                        t.topic_id,
                        t.error_code,
                        opt(&t.error_message),
                    )
                })
                .collect(),
            AnyResponse::DeleteTopics(r) => r
                .responses
                .iter()
                .map(|t| {
                    let name = t.name.as_ref().map(ToString::to_string).unwrap_or_default();
                    let key = if self.order.contains(&name) {
                        name.clone()
                    } else {
                        t.topic_id.to_string()
                    };
                    (key, name, t.topic_id, t.error_code, opt(&t.error_message))
                })
                .collect(),
            AnyResponse::CreatePartitions(r) => r
                .results
                .iter()
                .map(|t| {
                    let name = t.name.to_string();
                    (
                        name.clone(),
                        name,
                        Uuid::ZERO,
                        t.error_code,
                        opt(&t.error_message),
                    )
                })
                .collect(),
            other => {
                if let Read::Fail(e) = unexpected(other) {
                    cx.fail(e);
                }
                return;
            }
        };
        // A topic the broker left out of its answer would be retried until the timeout:
        // fail it now.
        let answered: Vec<&String> = answers.iter().map(|a| &a.0).collect();
        self.remaining.retain(|(k, _)| answered.contains(&k));
        for (key, name, id, code, message) in answers {
            if retriable(ErrorCode::from_code(code)) {
                continue;
            }
            let error = ApiError::new(code, None).map(|mut e| {
                e.message = message.filter(|m| !m.is_empty());
                e
            });
            self.remaining.retain(|(k, _)| *k != key);
            self.results.insert(key, TopicResult { name, id, error });
        }
        if self.remaining.is_empty() {
            self.finish(cx);
        } else {
            self.send(cx, true);
        }
    }
}

fn opt(s: &Option<kasio_proto::ByteStr>) -> Option<String> {
    s.as_ref().map(ToString::to_string)
}
