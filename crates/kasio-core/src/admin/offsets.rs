//! Operations on partitions, sent to each partition's leader: list offsets and delete
//! records.

use super::{
    Admin, AdminError, AdminOutput, ApiError, ListedOffset, OffsetSpec, OpId, PartitionResult,
    call::{Cx, Operation, Target},
    topics::{metadata_request, ms},
};
use crate::IsolationLevel;
use kasio_proto::{
    AnyRequest, AnyResponse, ErrorCode,
    messages::{
        DeleteRecordsRequest, ListOffsetsRequest,
        delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic},
        list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic},
    },
};
use std::{collections::BTreeMap, fmt, time::Instant};

type Tp = (String, i32);

/// One partition's answer: a value, a final error, or a retriable error (the leader
/// moved) after which metadata is read again.
pub(super) enum Answer<R> {
    Value(R),
    Error(ApiError),
    Retry,
}

fn answer<R>(code: i16, value: R) -> Answer<R> {
    let code = ErrorCode::from_code(code);
    if code.is_ok() {
        Answer::Value(value)
    } else if code.is_retriable() {
        Answer::Retry
    } else {
        Answer::Error(ApiError {
            code,
            message: None,
        })
    }
}

type LeaderBuild<T> = fn(&[(Tp, T)], i16, &Extra) -> AnyRequest;
type LeaderRead<R> = fn(&AnyResponse) -> Option<Vec<(Tp, Answer<R>)>>;

/// Settings a leader request carries besides its partitions.
#[derive(Debug, Clone, Copy)]
pub(super) struct Extra {
    pub(super) isolation: i8,
    pub(super) timeout_ms: i32,
}

/// A request per partition leader: read the leaders, send each its partitions, and read
/// the leaders again for partitions whose leader moved.
pub(super) struct ByLeader<T, R> {
    order: Vec<Tp>,
    remaining: BTreeMap<Tp, T>,
    results: BTreeMap<Tp, Result<R, ApiError>>,
    outstanding: usize,
    extra: Extra,
    build: LeaderBuild<T>,
    read: LeaderRead<R>,
    output: fn(Vec<PartitionResult<R>>) -> AdminOutput,
}

impl<T, R> fmt::Debug for ByLeader<T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ByLeader")
            .field("order", &self.order)
            .field("outstanding", &self.outstanding)
            .finish_non_exhaustive()
    }
}

const METADATA: u32 = 0;

impl<T: Clone + Send + Sync + 'static, R: Clone + Send + 'static> ByLeader<T, R> {
    pub(super) fn new(
        items: Vec<(Tp, T)>,
        extra: Extra,
        build: LeaderBuild<T>,
        read: LeaderRead<R>,
        output: fn(Vec<PartitionResult<R>>) -> AdminOutput,
    ) -> Self {
        Self {
            order: items.iter().map(|(tp, _)| tp.clone()).collect(),
            remaining: items.into_iter().collect(),
            results: BTreeMap::new(),
            outstanding: 0,
            extra,
            build,
            read,
            output,
        }
    }

    fn ask_metadata(&self, cx: &mut Cx, later: bool) {
        let mut topics: Vec<String> = self.remaining.keys().map(|(t, _)| t.clone()).collect();
        topics.dedup();
        let build = move |_| metadata_request(Some(&topics));
        if later {
            cx.retry(METADATA, Target::Any, build);
        } else {
            cx.call(METADATA, Target::Any, build);
        }
    }

    fn finish(&mut self, cx: &mut Cx) {
        let out = self
            .order
            .iter()
            .map(|tp| PartitionResult {
                topic: tp.0.clone(),
                partition: tp.1,
                result: self.results.remove(tp).unwrap_or(Err(ApiError {
                    code: ErrorCode::UnknownServerError,
                    message: Some("the leader did not answer for this partition".into()),
                })),
            })
            .collect();
        cx.finish((self.output)(out));
    }

    fn on_metadata(&mut self, resp: &AnyResponse, cx: &mut Cx) {
        let AnyResponse::Metadata(m) = resp else {
            return cx.fail(AdminError::Malformed("expected a Metadata response".into()));
        };
        let mut per_leader: BTreeMap<i32, Vec<(Tp, T)>> = BTreeMap::new();
        let mut waiting = false;
        for (tp, value) in std::mem::take(&mut self.remaining) {
            let topic = m
                .topics
                .iter()
                .find(|t| t.name.as_ref().is_some_and(|n| *n == tp.0.as_str()));
            let Some(topic) = topic else {
                self.remaining.insert(tp, value);
                waiting = true;
                continue;
            };
            let code = ErrorCode::from_code(topic.error_code);
            if !code.is_ok() && !code.is_retriable() || code == ErrorCode::UnknownTopicOrPartition {
                self.results.insert(
                    tp,
                    Err(ApiError {
                        code,
                        message: None,
                    }),
                );
                continue;
            }
            let leader = topic
                .partitions
                .iter()
                .find(|p| p.partition_index == tp.1)
                .map(|p| p.leader_id);
            match leader {
                None if code.is_ok() => {
                    self.results.insert(
                        tp,
                        Err(ApiError {
                            code: ErrorCode::UnknownTopicOrPartition,
                            message: Some("the topic has no such partition".into()),
                        }),
                    );
                }
                Some(l) if l >= 0 => per_leader.entry(l).or_default().push((tp, value)),
                _ => {
                    self.remaining.insert(tp, value);
                    waiting = true;
                }
            }
        }
        for (leader, parts) in per_leader {
            self.outstanding += 1;
            let build = self.build;
            let extra = self.extra;
            for (tp, v) in &parts {
                self.remaining.insert(tp.clone(), v.clone());
            }
            let key = u32::try_from(leader).unwrap_or(0) + 1;
            cx.call(key, Target::Broker(leader), move |v| {
                build(&parts, v, &extra)
            });
        }
        if self.outstanding == 0 {
            if waiting {
                self.ask_metadata(cx, true);
            } else {
                self.finish(cx);
            }
        }
    }
}

impl<T, R> Operation for ByLeader<T, R>
where
    T: Clone + Send + Sync + 'static,
    R: Clone + Send + 'static,
{
    fn start(&mut self, cx: &mut Cx) {
        if self.remaining.is_empty() {
            return self.finish(cx);
        }
        self.ask_metadata(cx, false);
    }

    fn on_response(&mut self, key: u32, resp: Result<AnyResponse, AdminError>, cx: &mut Cx) {
        let resp = match resp {
            Ok(r) => r,
            Err(e) => return cx.fail(e),
        };
        if key == METADATA {
            return self.on_metadata(&resp, cx);
        }
        self.outstanding = self.outstanding.saturating_sub(1);
        let Some(answers) = (self.read)(&resp) else {
            return cx.fail(AdminError::Malformed(format!(
                "unexpected {} response",
                resp.api_key().name()
            )));
        };
        for (tp, a) in answers {
            if !self.remaining.contains_key(&tp) {
                continue;
            }
            match a {
                Answer::Value(v) => {
                    self.remaining.remove(&tp);
                    self.results.insert(tp, Ok(v));
                }
                Answer::Error(e) => {
                    self.remaining.remove(&tp);
                    self.results.insert(tp, Err(e));
                }
                Answer::Retry => {}
            }
        }
        if self.outstanding > 0 {
            return;
        }
        if self.remaining.is_empty() {
            self.finish(cx);
        } else {
            self.ask_metadata(cx, true);
        }
    }
}

/// Groups `(topic, partition, value)` by topic, in first-seen order.
pub(super) fn by_topic<T: Clone>(parts: &[(Tp, T)]) -> Vec<(String, Vec<(i32, T)>)> {
    let mut out: Vec<(String, Vec<(i32, T)>)> = Vec::new();
    for ((t, p), v) in parts {
        match out.iter_mut().find(|(n, _)| n == t) {
            Some((_, ps)) => ps.push((*p, v.clone())),
            None => out.push((t.clone(), vec![(*p, v.clone())])),
        }
    }
    out
}

fn list_offsets_request(parts: &[(Tp, OffsetSpec)], _v: i16, extra: &Extra) -> AnyRequest {
    ListOffsetsRequest {
        replica_id: -1,
        isolation_level: extra.isolation,
        topics: by_topic(parts)
            .into_iter()
            .map(|(name, ps)| ListOffsetsTopic {
                name: name.into(),
                partitions: ps
                    .into_iter()
                    .map(|(p, spec)| ListOffsetsPartition {
                        partition_index: p,
                        current_leader_epoch: -1,
                        timestamp: spec.wire(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        timeout_ms: extra.timeout_ms,
        ..Default::default()
    }
    .into()
}

fn list_offsets_read(resp: &AnyResponse) -> Option<Vec<(Tp, Answer<ListedOffset>)>> {
    let AnyResponse::ListOffsets(r) = resp else {
        return None;
    };
    Some(
        r.topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(move |p| {
                    let value = ListedOffset {
                        offset: p.offset,
                        timestamp: p.timestamp,
                        leader_epoch: p.leader_epoch,
                    };
                    (
                        (t.name.to_string(), p.partition_index),
                        answer(p.error_code, value),
                    )
                })
            })
            .collect(),
    )
}

/// The operation behind [`Admin::list_offsets`], also a step of group offset resets and
/// lag.
pub(super) fn list_offsets_op(
    specs: Vec<(Tp, OffsetSpec)>,
    isolation: IsolationLevel,
    timeout_ms: i32,
) -> ByLeader<OffsetSpec, ListedOffset> {
    let isolation = match isolation {
        IsolationLevel::ReadUncommitted => 0,
        IsolationLevel::ReadCommitted => 1,
    };
    ByLeader::new(
        specs,
        Extra {
            isolation,
            timeout_ms,
        },
        list_offsets_request,
        list_offsets_read,
        AdminOutput::Offsets,
    )
}

impl Admin {
    /// Looks up offsets: the earliest, the latest, the first at a timestamp, or the one of
    /// the highest timestamp, per partition.
    pub fn list_offsets(
        &mut self,
        specs: &[(&str, i32, OffsetSpec)],
        isolation: IsolationLevel,
        now: Instant,
    ) -> OpId {
        let specs = specs
            .iter()
            .map(|&(t, p, s)| ((t.to_string(), p), s))
            .collect();
        let op = list_offsets_op(specs, isolation, ms(self.config.network.request_timeout));
        self.start(Box::new(op), now)
    }

    /// Deletes every record before the given offset of each partition (-1 for the high
    /// watermark); each result is the partition's new low watermark.
    pub fn delete_records(&mut self, before: &[(&str, i32, i64)], now: Instant) -> OpId {
        let items = before
            .iter()
            .map(|&(t, p, o)| ((t.to_string(), p), o))
            .collect();
        let extra = Extra {
            isolation: 0,
            timeout_ms: ms(self.config.network.request_timeout),
        };
        let op = ByLeader::new(
            items,
            extra,
            |parts: &[(Tp, i64)], _, extra| {
                DeleteRecordsRequest {
                    topics: by_topic(parts)
                        .into_iter()
                        .map(|(name, ps)| DeleteRecordsTopic {
                            name: name.into(),
                            partitions: ps
                                .into_iter()
                                .map(|(p, offset)| DeleteRecordsPartition {
                                    partition_index: p,
                                    offset,
                                    ..Default::default()
                                })
                                .collect(),
                            ..Default::default()
                        })
                        .collect(),
                    timeout_ms: extra.timeout_ms,
                    ..Default::default()
                }
                .into()
            },
            |resp| {
                let AnyResponse::DeleteRecords(r) = resp else {
                    return None;
                };
                Some(
                    r.topics
                        .iter()
                        .flat_map(|t| {
                            t.partitions.iter().map(move |p| {
                                (
                                    (t.name.to_string(), p.partition_index),
                                    answer(p.error_code, p.low_watermark),
                                )
                            })
                        })
                        .collect(),
                )
            },
            AdminOutput::PartitionOffsets,
        );
        self.start(Box::new(op), now)
    }
}
