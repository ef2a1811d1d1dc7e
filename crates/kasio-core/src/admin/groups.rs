//! Groups: list, describe, delete, and their committed offsets (read, alter, reset,
//! delete, lag).

use super::{
    Admin, AdminError, AdminOutput, ApiError, CommittedOffset, GroupDescription, GroupListing,
    MemberDescription, Named, OffsetSpec, OpId, PartitionLag, PartitionResult,
    call::{Cx, Many, Operation, Read, Single, Target, as_api_error, drive, retriable, unexpected},
    offsets::{ByLeader, by_topic, list_offsets_op},
    topics::{metadata_request, ms},
};
use crate::IsolationLevel;
use bytes::Buf;
use kasio_proto::{
    AnyRequest, AnyResponse, Decode, ErrorCode,
    messages::{
        AlterShareGroupOffsetsRequest, ConsumerGroupDescribeRequest, ConsumerProtocolAssignment,
        DeleteGroupsRequest, DeleteShareGroupOffsetsRequest, DescribeGroupsRequest,
        DescribeShareGroupOffsetsRequest, ListGroupsRequest, OffsetCommitRequest,
        OffsetDeleteRequest, OffsetFetchRequest, ShareGroupDescribeRequest,
        alter_share_group_offsets_request::{
            AlterShareGroupOffsetsRequestPartition, AlterShareGroupOffsetsRequestTopic,
        },
        delete_share_group_offsets_request::DeleteShareGroupOffsetsRequestTopic,
        describe_share_group_offsets_request::DescribeShareGroupOffsetsRequestGroup,
        offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic},
        offset_delete_request::{OffsetDeleteRequestPartition, OffsetDeleteRequestTopic},
        offset_fetch_request::OffsetFetchRequestGroup,
    },
};
use std::{collections::BTreeMap, time::Instant};

type Tp = (String, i32);

/// One step of a sub-operation (boxed: a step may start the next sub-operation).
type Step<'a> = Box<dyn FnOnce(&mut dyn Operation, &mut Cx) + 'a>;

/// A response's top-level error as the operation reads it: a retriable one retries, any
/// other fails it.
fn answered(code: i16, message: Option<&kasio_proto::ByteStr>) -> Result<(), Read> {
    if retriable(ErrorCode::from_code(code)) {
        return Err(Read::Retry);
    }
    ApiError::check(code, message).map_err(|e| Read::Fail(AdminError::Api(e)))
}

fn coordinator(group: &str) -> Target {
    Target::Coordinator(group.to_string(), 0)
}

/// Every committed offset of `group`.
fn offset_fetch_request(group: &str, v: i16) -> AnyRequest {
    if v >= 8 {
        OffsetFetchRequest {
            groups: vec![OffsetFetchRequestGroup {
                group_id: group.into(),
                member_epoch: -1,
                topics: None,
                ..Default::default()
            }],
            ..Default::default()
        }
    } else {
        OffsetFetchRequest {
            group_id: group.into(),
            topics: None,
            ..Default::default()
        }
    }
    .into()
}

/// (topic, partition, committed offset, metadata, error code)
type Row = (String, i32, i64, String, i16);

fn read_committed(resp: &AnyResponse) -> Result<Vec<CommittedOffset>, Read> {
    let AnyResponse::OffsetFetch(r) = resp else {
        return Err(unexpected(resp));
    };
    let (code, rows): (i16, Vec<Row>) = match r.groups.first() {
        Some(g) => (
            g.error_code,
            g.topics
                .iter()
                .flat_map(|t| {
                    t.partitions.iter().map(move |p| {
                        let meta = p.metadata.as_ref().map(ToString::to_string);
                        let name = t.name.to_string();
                        (
                            name,
                            p.partition_index,
                            p.committed_offset,
                            meta.unwrap_or_default(),
                            p.error_code,
                        )
                    })
                })
                .collect(),
        ),
        None => (
            r.error_code,
            r.topics
                .iter()
                .flat_map(|t| {
                    t.partitions.iter().map(move |p| {
                        let meta = p.metadata.as_ref().map(ToString::to_string);
                        let name = t.name.to_string();
                        (
                            name,
                            p.partition_index,
                            p.committed_offset,
                            meta.unwrap_or_default(),
                            p.error_code,
                        )
                    })
                })
                .collect(),
        ),
    };
    let code = ErrorCode::from_code(code);
    if retriable(code) {
        return Err(Read::Retry);
    }
    if !code.is_ok() {
        return Err(Read::Fail(AdminError::Api(ApiError {
            code,
            message: None,
        })));
    }
    if rows.iter().any(|r| retriable(ErrorCode::from_code(r.4))) {
        return Err(Read::Retry);
    }
    let mut out: Vec<CommittedOffset> = rows
        .into_iter()
        .filter(|r| r.2 >= 0 && r.4 == 0)
        .map(|(topic, partition, offset, metadata, _)| CommittedOffset {
            topic,
            partition,
            offset,
            metadata,
        })
        .collect();
    out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    Ok(out)
}

fn committed_op(group: &str) -> Box<Single> {
    let g = group.to_string();
    Single::new(
        coordinator(group),
        move |v| offset_fetch_request(&g, v),
        |resp| match read_committed(&resp) {
            Ok(rows) => Read::Done(AdminOutput::Committed(rows)),
            Err(read) => read,
        },
    )
}

/// Commits offsets as an admin (no member, no generation): Kafka accepts this only while
/// the group has no active members.
fn commit_request(group: &str, offsets: &[(Tp, i64)]) -> AnyRequest {
    OffsetCommitRequest {
        group_id: group.into(),
        generation_id_or_member_epoch: -1,
        member_id: "".into(),
        retention_time_ms: -1,
        topics: by_topic(offsets)
            .into_iter()
            .map(|(name, ps)| OffsetCommitRequestTopic {
                name: name.into(),
                partitions: ps
                    .into_iter()
                    .map(|(p, o)| OffsetCommitRequestPartition {
                        partition_index: p,
                        committed_offset: o,
                        committed_leader_epoch: -1,
                        committed_metadata: Some("".into()),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
    .into()
}

fn read_commit(resp: &AnyResponse) -> Result<Vec<PartitionResult<()>>, Read> {
    let AnyResponse::OffsetCommit(r) = resp else {
        return Err(unexpected(resp));
    };
    let mut out = Vec::new();
    for t in &r.topics {
        for p in &t.partitions {
            let code = ErrorCode::from_code(p.error_code);
            if retriable(code) && code != ErrorCode::UnknownTopicOrPartition {
                return Err(Read::Retry);
            }
            out.push(PartitionResult {
                topic: t.name.to_string(),
                partition: p.partition_index,
                result: ApiError::check(p.error_code, None),
            });
        }
    }
    Ok(out)
}

fn commit_op(group: &str, offsets: Vec<(Tp, i64)>) -> Box<Single> {
    let g = group.to_string();
    Single::new(
        coordinator(group),
        move |_| commit_request(&g, &offsets),
        |resp| match read_commit(&resp) {
            Ok(rows) => Read::Done(AdminOutput::PartitionResults(rows)),
            Err(read) => read,
        },
    )
}

impl Admin {
    /// Lists the groups of every broker.
    pub fn list_groups(&mut self, now: Instant) -> OpId {
        self.start(Box::new(ListGroups::default()), now)
    }

    /// Describes groups, classic and KIP-848 alike: state, members and assignments.
    pub fn describe_groups(&mut self, groups: &[&str], now: Instant) -> OpId {
        let subs = groups
            .iter()
            .map(|g| {
                Box::new(DescribeGroup {
                    group: (*g).to_string(),
                }) as Box<dyn Operation>
            })
            .collect();
        let op = Many::new(subs, |outs| {
            AdminOutput::GroupDescriptions(
                outs.into_iter()
                    .flat_map(|o| match o {
                        Ok(AdminOutput::GroupDescriptions(v)) => v,
                        _ => Vec::new(),
                    })
                    .collect(),
            )
        });
        self.start(op, now)
    }

    /// Deletes groups (each must have no active members).
    pub fn delete_groups(&mut self, groups: &[&str], now: Instant) -> OpId {
        let subs = groups
            .iter()
            .map(|g| {
                let name = (*g).to_string();
                let wanted = name.clone();
                Single::new(
                    coordinator(g),
                    move |_| {
                        DeleteGroupsRequest {
                            groups_names: vec![name.as_str().into()],
                            ..Default::default()
                        }
                        .into()
                    },
                    move |resp| {
                        let AnyResponse::DeleteGroups(r) = &resp else {
                            return unexpected(&resp);
                        };
                        let Some(res) = r.results.iter().find(|x| x.group_id == wanted.as_str())
                        else {
                            return unexpected(&resp);
                        };
                        if retriable(ErrorCode::from_code(res.error_code)) {
                            return Read::Retry;
                        }
                        Read::Done(AdminOutput::NamedResults(vec![Named {
                            name: wanted.clone(),
                            result: ApiError::check(res.error_code, res.error_message.as_ref()),
                        }]))
                    },
                ) as Box<dyn Operation>
            })
            .collect();
        let names: Vec<String> = groups.iter().map(|g| (*g).to_string()).collect();
        let op = Many::new(subs, move |outs| {
            AdminOutput::NamedResults(
                outs.into_iter()
                    .zip(&names)
                    .flat_map(|(o, name)| match o {
                        Ok(AdminOutput::NamedResults(v)) => v,
                        Err(e) => vec![Named {
                            name: name.clone(),
                            result: Err(as_api_error(e)),
                        }],
                        Ok(_) => Vec::new(),
                    })
                    .collect(),
            )
        });
        self.start(op, now)
    }

    /// A share group's start offset and lag per partition (DescribeShareGroupOffsets): where
    /// its members' deliveries start, and how many records from there are not yet settled
    /// (`committed` is the start offset, `end` is `start + lag`).
    pub fn share_group_offsets(&mut self, group: &str, now: Instant) -> OpId {
        let g = group.to_string();
        let op = Single::new(
            coordinator(group),
            move |_| {
                DescribeShareGroupOffsetsRequest {
                    groups: vec![DescribeShareGroupOffsetsRequestGroup {
                        group_id: g.as_str().into(),
                        topics: None,
                        ..Default::default()
                    }],
                    ..Default::default()
                }
                .into()
            },
            |resp| {
                let AnyResponse::DescribeShareGroupOffsets(r) = &resp else {
                    return unexpected(&resp);
                };
                let Some(g) = r.groups.first() else {
                    return unexpected(&resp);
                };
                if let Err(read) = answered(g.error_code, g.error_message.as_ref()) {
                    return read;
                }
                let mut out = Vec::new();
                for t in &g.topics {
                    for p in &t.partitions {
                        if p.error_code != 0 || p.start_offset < 0 {
                            continue;
                        }
                        let lag = p.lag.max(0);
                        out.push(PartitionLag {
                            topic: t.topic_name.to_string(),
                            partition: p.partition_index,
                            committed: p.start_offset,
                            end: p.start_offset + lag,
                            lag,
                        });
                    }
                }
                out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
                Read::Done(AdminOutput::Lag(out))
            },
        );
        self.start(op, now)
    }

    /// Sets a share group's start offsets (the group must have no active members): its
    /// next deliveries start there.
    pub fn alter_share_group_offsets(
        &mut self,
        group: &str,
        offsets: &[(&str, i32, i64)],
        now: Instant,
    ) -> OpId {
        let g = group.to_string();
        let by: Vec<((String, i32), i64)> = offsets
            .iter()
            .map(|&(t, p, o)| ((t.to_string(), p), o))
            .collect();
        let op = Single::new(
            coordinator(group),
            move |_| {
                AlterShareGroupOffsetsRequest {
                    group_id: g.as_str().into(),
                    topics: by_topic(&by)
                        .into_iter()
                        .map(|(name, ps)| AlterShareGroupOffsetsRequestTopic {
                            topic_name: name.into(),
                            partitions: ps
                                .into_iter()
                                .map(|(p, o)| AlterShareGroupOffsetsRequestPartition {
                                    partition_index: p,
                                    start_offset: o,
                                    ..Default::default()
                                })
                                .collect(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }
                .into()
            },
            |resp| {
                let AnyResponse::AlterShareGroupOffsets(r) = &resp else {
                    return unexpected(&resp);
                };
                if let Err(read) = answered(r.error_code, r.error_message.as_ref()) {
                    return read;
                }
                let mut out = Vec::new();
                for t in &r.responses {
                    for p in &t.partitions {
                        out.push(PartitionResult {
                            topic: t.topic_name.to_string(),
                            partition: p.partition_index,
                            result: ApiError::check(p.error_code, p.error_message.as_ref()),
                        });
                    }
                }
                Read::Done(AdminOutput::PartitionResults(out))
            },
        );
        self.start(op, now)
    }

    /// Deletes a share group's start offsets for `topics` (the group must have no active
    /// members): a result per topic.
    pub fn delete_share_group_offsets(
        &mut self,
        group: &str,
        topics: &[&str],
        now: Instant,
    ) -> OpId {
        let g = group.to_string();
        let names: Vec<String> = topics.iter().map(|t| (*t).to_string()).collect();
        let op = Single::new(
            coordinator(group),
            move |_| {
                DeleteShareGroupOffsetsRequest {
                    group_id: g.as_str().into(),
                    topics: names
                        .iter()
                        .map(|t| DeleteShareGroupOffsetsRequestTopic {
                            topic_name: t.as_str().into(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }
                .into()
            },
            |resp| {
                let AnyResponse::DeleteShareGroupOffsets(r) = &resp else {
                    return unexpected(&resp);
                };
                if let Err(read) = answered(r.error_code, r.error_message.as_ref()) {
                    return read;
                }
                Read::Done(AdminOutput::NamedResults(
                    r.responses
                        .iter()
                        .map(|t| Named {
                            name: t.topic_name.to_string(),
                            result: ApiError::check(t.error_code, t.error_message.as_ref()),
                        })
                        .collect(),
                ))
            },
        );
        self.start(op, now)
    }

    /// The group's committed offsets.
    pub fn group_offsets(&mut self, group: &str, now: Instant) -> OpId {
        self.start(committed_op(group), now)
    }

    /// Sets the group's committed offsets (the group must have no active members).
    pub fn alter_group_offsets(
        &mut self,
        group: &str,
        offsets: &[(&str, i32, i64)],
        now: Instant,
    ) -> OpId {
        let offsets = offsets
            .iter()
            .map(|&(t, p, o)| ((t.to_string(), p), o))
            .collect();
        self.start(commit_op(group, offsets), now)
    }

    /// Moves the group's committed offsets to the earliest, the latest or a timestamp's
    /// offset; with no partitions given, every partition the group has committed. Each
    /// result is the offset committed.
    pub fn reset_group_offsets(
        &mut self,
        group: &str,
        partitions: &[(&str, i32)],
        to: OffsetSpec,
        now: Instant,
    ) -> OpId {
        let op = Reset {
            group: group.to_string(),
            partitions: partitions
                .iter()
                .map(|&(t, p)| (t.to_string(), p))
                .collect(),
            to,
            timeout_ms: ms(self.config.network.request_timeout),
            stage: Stage::Committed,
            sub: None,
            offsets: Vec::new(),
            failed: Vec::new(),
        };
        self.start(Box::new(op), now)
    }

    /// Deletes the group's committed offsets of some partitions.
    pub fn delete_group_offsets(
        &mut self,
        group: &str,
        partitions: &[(&str, i32)],
        now: Instant,
    ) -> OpId {
        let g = group.to_string();
        let parts: Vec<(Tp, ())> = partitions
            .iter()
            .map(|&(t, p)| ((t.to_string(), p), ()))
            .collect();
        let op = Single::new(
            coordinator(group),
            move |_| {
                OffsetDeleteRequest {
                    group_id: g.as_str().into(),
                    topics: by_topic(&parts)
                        .into_iter()
                        .map(|(name, ps)| OffsetDeleteRequestTopic {
                            name: name.into(),
                            partitions: ps
                                .into_iter()
                                .map(|(p, ())| OffsetDeleteRequestPartition { partition_index: p })
                                .collect(),
                        })
                        .collect(),
                }
                .into()
            },
            |resp| {
                let AnyResponse::OffsetDelete(r) = &resp else {
                    return unexpected(&resp);
                };
                if let Err(read) = answered(r.error_code, None) {
                    return read;
                }
                Read::Done(AdminOutput::PartitionResults(
                    r.topics
                        .iter()
                        .flat_map(|t| {
                            t.partitions.iter().map(move |p| PartitionResult {
                                topic: t.name.to_string(),
                                partition: p.partition_index,
                                result: ApiError::check(p.error_code, None),
                            })
                        })
                        .collect(),
                ))
            },
        );
        self.start(op, now)
    }

    /// The group's lag per committed partition: the log end offset minus the committed
    /// offset, as Kafka's `kafka-consumer-groups --describe` reports it.
    pub fn group_lag(&mut self, group: &str, now: Instant) -> OpId {
        let op = Lag {
            group: group.to_string(),
            timeout_ms: ms(self.config.network.request_timeout),
            committed: Vec::new(),
            sub: None,
        };
        self.start(Box::new(op), now)
    }
}

/// ListGroups at every broker: each coordinates some of the groups.
#[derive(Debug, Default)]
struct ListGroups {
    outstanding: usize,
    groups: BTreeMap<String, GroupListing>,
}

impl ListGroups {
    fn ask(&mut self, broker: i32, cx: &mut Cx, later: bool) {
        let key = u32::try_from(broker).unwrap_or(0) + 1;
        let build = |_| ListGroupsRequest::default().into();
        if later {
            cx.retry(key, Target::Broker(broker), build);
        } else {
            cx.call(key, Target::Broker(broker), build);
        }
    }
}

impl Operation for ListGroups {
    fn start(&mut self, cx: &mut Cx) {
        cx.call(0, Target::Any, |_| metadata_request(Some(&[])));
    }

    fn on_response(&mut self, key: u32, resp: Result<AnyResponse, AdminError>, cx: &mut Cx) {
        let resp = match resp {
            Ok(r) => r,
            Err(e) => return cx.fail(e),
        };
        match (key, &resp) {
            (0, AnyResponse::Metadata(m)) => {
                for b in &m.brokers {
                    self.outstanding += 1;
                    self.ask(b.node_id, cx, false);
                }
                if self.outstanding == 0 {
                    cx.finish(AdminOutput::Groups(Vec::new()));
                }
            }
            (k, AnyResponse::ListGroups(r)) if k > 0 => {
                let code = ErrorCode::from_code(r.error_code);
                if retriable(code) {
                    let broker = i32::try_from(k - 1).unwrap_or(0);
                    return self.ask(broker, cx, true);
                }
                if let Err(e) = ApiError::check(r.error_code, None) {
                    return cx.fail(AdminError::Api(e));
                }
                for g in &r.groups {
                    self.groups.insert(
                        g.group_id.to_string(),
                        GroupListing {
                            id: g.group_id.to_string(),
                            protocol_type: g.protocol_type.to_string(),
                            state: g.group_state.to_string(),
                            group_type: g.group_type.to_string(),
                        },
                    );
                }
                self.outstanding = self.outstanding.saturating_sub(1);
                if self.outstanding == 0 {
                    let groups = std::mem::take(&mut self.groups).into_values().collect();
                    cx.finish(AdminOutput::Groups(groups));
                }
            }
            _ => {
                if let Read::Fail(e) = unexpected(&resp) {
                    cx.fail(e);
                }
            }
        }
    }
}

/// One group: ConsumerGroupDescribe (KIP-848) first, DescribeGroups for classic groups
/// and older brokers.
#[derive(Debug)]
struct DescribeGroup {
    group: String,
}

const KIP848: u32 = 0;
const CLASSIC: u32 = 1;
const SHARE: u32 = 2;

/// The protocol to ask when `key`'s says the group is not of its kind: KIP-848, then share,
/// then classic.
fn next(key: u32) -> u32 {
    if key == KIP848 { SHARE } else { CLASSIC }
}

impl DescribeGroup {
    fn ask(&self, key: u32, cx: &mut Cx, later: bool) {
        let g = self.group.clone();
        let build = move |_| -> AnyRequest {
            if key == KIP848 {
                ConsumerGroupDescribeRequest {
                    group_ids: vec![g.as_str().into()],
                    ..Default::default()
                }
                .into()
            } else if key == SHARE {
                ShareGroupDescribeRequest {
                    group_ids: vec![g.as_str().into()],
                    ..Default::default()
                }
                .into()
            } else {
                DescribeGroupsRequest {
                    groups: vec![g.as_str().into()],
                    ..Default::default()
                }
                .into()
            }
        };
        if later {
            cx.coordinator_moved(&self.group, 0);
            cx.retry(key, coordinator(&self.group), build);
        } else {
            cx.call(key, coordinator(&self.group), build);
        }
    }

    /// Acts on a ConsumerGroupDescribe or ShareGroupDescribe answer's error (`None`: no
    /// group in it): retries, moves on to the next protocol when the group is not of this
    /// kind (a share group, a classic group, or none: the next answer says which), or
    /// fails. False when the group was described.
    fn handled(
        &self,
        key: u32,
        error: Option<(i16, Option<&kasio_proto::ByteStr>)>,
        cx: &mut Cx,
    ) -> bool {
        let Some((error_code, message)) = error else {
            self.ask(next(key), cx, false);
            return true;
        };
        let code = ErrorCode::from_code(error_code);
        if retriable(code) {
            self.ask(key, cx, true);
        } else if code == ErrorCode::GroupIdNotFound || code == ErrorCode::UnsupportedVersion {
            self.ask(next(key), cx, false);
        } else if let Err(e) = ApiError::check(error_code, message) {
            self.done(cx, Err(e));
        } else {
            return false;
        }
        true
    }

    fn done(&self, cx: &mut Cx, result: Result<GroupDescription, ApiError>) {
        cx.finish(AdminOutput::GroupDescriptions(vec![Named {
            name: self.group.clone(),
            result,
        }]));
    }
}

impl Operation for DescribeGroup {
    fn start(&mut self, cx: &mut Cx) {
        self.ask(KIP848, cx, false);
    }

    fn on_response(&mut self, key: u32, resp: Result<AnyResponse, AdminError>, cx: &mut Cx) {
        let resp = match resp {
            Ok(r) => r,
            Err(AdminError::Unsupported(_)) if key != CLASSIC => {
                return self.ask(next(key), cx, false);
            }
            Err(e) => return self.done(cx, Err(as_api_error(e))),
        };
        match &resp {
            AnyResponse::ConsumerGroupDescribe(r) => {
                let first = r.groups.first();
                if self.handled(
                    KIP848,
                    first.map(|g| (g.error_code, g.error_message.as_ref())),
                    cx,
                ) {
                    return;
                }
                let Some(g) = first else { return };
                let members = g
                    .members
                    .iter()
                    .map(|m| MemberDescription {
                        member_id: m.member_id.to_string(),
                        instance_id: m.instance_id.as_ref().map(ToString::to_string),
                        client_id: m.client_id.to_string(),
                        host: m.client_host.to_string(),
                        assignment: m
                            .assignment
                            .topic_partitions
                            .iter()
                            .map(|t| (t.topic_name.to_string(), t.partitions.clone()))
                            .collect(),
                    })
                    .collect();
                self.done(
                    cx,
                    Ok(GroupDescription {
                        id: g.group_id.to_string(),
                        group_type: "consumer".into(),
                        state: g.group_state.to_string(),
                        assignor: g.assignor_name.to_string(),
                        members,
                    }),
                );
            }
            AnyResponse::ShareGroupDescribe(r) => {
                let first = r.groups.first();
                if self.handled(
                    SHARE,
                    first.map(|g| (g.error_code, g.error_message.as_ref())),
                    cx,
                ) {
                    return;
                }
                let Some(g) = first else { return };
                let members = g
                    .members
                    .iter()
                    .map(|m| MemberDescription {
                        member_id: m.member_id.to_string(),
                        instance_id: None,
                        client_id: m.client_id.to_string(),
                        host: m.client_host.to_string(),
                        assignment: m
                            .assignment
                            .topic_partitions
                            .iter()
                            .map(|t| (t.topic_name.to_string(), t.partitions.clone()))
                            .collect(),
                    })
                    .collect();
                self.done(
                    cx,
                    Ok(GroupDescription {
                        id: g.group_id.to_string(),
                        group_type: "share".into(),
                        state: g.group_state.to_string(),
                        assignor: g.assignor_name.to_string(),
                        members,
                    }),
                );
            }
            AnyResponse::DescribeGroups(r) => {
                let Some(g) = r.groups.first() else {
                    return self.done(
                        cx,
                        Err(ApiError {
                            code: ErrorCode::GroupIdNotFound,
                            message: None,
                        }),
                    );
                };
                if retriable(ErrorCode::from_code(g.error_code)) {
                    return self.ask(CLASSIC, cx, true);
                }
                if let Err(e) = ApiError::check(g.error_code, g.error_message.as_ref()) {
                    return self.done(cx, Err(e));
                }
                let consumer = g.protocol_type == "consumer";
                let members = g
                    .members
                    .iter()
                    .map(|m| MemberDescription {
                        member_id: m.member_id.to_string(),
                        instance_id: m.group_instance_id.as_ref().map(ToString::to_string),
                        client_id: m.client_id.to_string(),
                        host: m.client_host.to_string(),
                        assignment: if consumer {
                            decode_assignment(m.member_assignment.clone())
                        } else {
                            Vec::new()
                        },
                    })
                    .collect();
                let state = g.group_state.to_string();
                // Kafka answers DescribeGroups for a group it does not know with state Dead.
                if state == "Dead" {
                    return self.done(
                        cx,
                        Err(ApiError {
                            code: ErrorCode::GroupIdNotFound,
                            message: Some(format!("group {} does not exist", self.group)),
                        }),
                    );
                }
                self.done(
                    cx,
                    Ok(GroupDescription {
                        id: g.group_id.to_string(),
                        group_type: "classic".into(),
                        state,
                        assignor: g.protocol_data.to_string(),
                        members,
                    }),
                );
            }
            other => {
                if let Read::Fail(e) = unexpected(other) {
                    self.done(cx, Err(as_api_error(e)));
                }
            }
        }
    }
}

/// A classic consumer's assignment (ConsumerProtocolAssignment after its version); empty
/// when the bytes are not one.
fn decode_assignment(mut bytes: bytes::Bytes) -> Vec<(String, Vec<i32>)> {
    if bytes.len() < 2 {
        return Vec::new();
    }
    let version = bytes.get_i16();
    match ConsumerProtocolAssignment::decode(version.clamp(0, 3), &mut bytes) {
        Ok(a) => a
            .assigned_partitions
            .iter()
            .map(|t| (t.topic.to_string(), t.partitions.clone()))
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Committed,
    Offsets,
    Commit,
}

/// Reset: (the committed partitions,) their target offsets, then the commit.
#[derive(Debug)]
struct Reset {
    group: String,
    partitions: Vec<Tp>,
    to: OffsetSpec,
    timeout_ms: i32,
    stage: Stage,
    sub: Option<Box<dyn Operation>>,
    offsets: Vec<(Tp, i64)>,
    failed: Vec<PartitionResult<i64>>,
}

impl Reset {
    fn run(&mut self, cx: &mut Cx, step: Step<'_>) {
        let Some(sub) = self.sub.as_mut() else {
            return;
        };
        let Some(done) = drive(sub.as_mut(), cx, step) else {
            return;
        };
        self.sub = None;
        let out = match done {
            Ok(out) => out,
            Err(e) => return cx.fail(e),
        };
        match (self.stage, out) {
            (Stage::Committed, AdminOutput::Committed(rows)) => {
                self.partitions = rows.into_iter().map(|r| (r.topic, r.partition)).collect();
                self.lookup(cx);
            }
            (Stage::Offsets, AdminOutput::Offsets(rows)) => {
                for r in rows {
                    match r.result {
                        Ok(o) if o.offset >= 0 => {
                            self.offsets.push(((r.topic, r.partition), o.offset))
                        }
                        Ok(_) => self.failed.push(PartitionResult {
                            topic: r.topic,
                            partition: r.partition,
                            result: Err(ApiError {
                                code: ErrorCode::OffsetNotAvailable,
                                message: Some("no offset matches the timestamp".into()),
                            }),
                        }),
                        Err(e) => self.failed.push(PartitionResult {
                            topic: r.topic,
                            partition: r.partition,
                            result: Err(e),
                        }),
                    }
                }
                if self.offsets.is_empty() {
                    let out = std::mem::take(&mut self.failed);
                    return cx.finish(AdminOutput::PartitionOffsets(out));
                }
                self.stage = Stage::Commit;
                self.sub = Some(commit_op(&self.group, self.offsets.clone()));
                self.run(cx, Box::new(|op, cx| op.start(cx)));
            }
            (Stage::Commit, AdminOutput::PartitionResults(rows)) => {
                let mut out = std::mem::take(&mut self.failed);
                for r in rows {
                    let offset = self
                        .offsets
                        .iter()
                        .find(|(tp, _)| tp.0 == r.topic && tp.1 == r.partition)
                        .map_or(-1, |(_, o)| *o);
                    out.push(PartitionResult {
                        topic: r.topic,
                        partition: r.partition,
                        result: r.result.map(|()| offset),
                    });
                }
                out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
                cx.finish(AdminOutput::PartitionOffsets(out));
            }
            _ => cx.fail(AdminError::Malformed("unexpected step result".into())),
        }
    }

    fn lookup(&mut self, cx: &mut Cx) {
        self.stage = Stage::Offsets;
        let specs = self
            .partitions
            .iter()
            .map(|tp| (tp.clone(), self.to))
            .collect();
        self.sub = Some(Box::new(list_offsets_op(
            specs,
            IsolationLevel::ReadUncommitted,
            self.timeout_ms,
        )));
        self.run(cx, Box::new(|op, cx| op.start(cx)));
    }
}

impl Operation for Reset {
    fn start(&mut self, cx: &mut Cx) {
        if self.partitions.is_empty() {
            self.sub = Some(committed_op(&self.group));
            self.run(cx, Box::new(|op, cx| op.start(cx)));
        } else {
            self.lookup(cx);
        }
    }

    fn on_response(&mut self, key: u32, resp: Result<AnyResponse, AdminError>, cx: &mut Cx) {
        self.run(cx, Box::new(move |op, cx| op.on_response(key, resp, cx)));
    }
}

/// Lag: the committed offsets, then the log end offsets of their partitions.
#[derive(Debug)]
struct Lag {
    group: String,
    timeout_ms: i32,
    committed: Vec<CommittedOffset>,
    sub: Option<Box<dyn Operation>>,
}

impl Lag {
    fn run(&mut self, cx: &mut Cx, step: Step<'_>) {
        let Some(sub) = self.sub.as_mut() else {
            return;
        };
        let Some(done) = drive(sub.as_mut(), cx, step) else {
            return;
        };
        self.sub = None;
        match done {
            Ok(AdminOutput::Committed(rows)) => {
                self.committed = rows;
                let specs: Vec<(Tp, OffsetSpec)> = self
                    .committed
                    .iter()
                    .map(|c| ((c.topic.clone(), c.partition), OffsetSpec::Latest))
                    .collect();
                let op: ByLeader<OffsetSpec, _> =
                    list_offsets_op(specs, IsolationLevel::ReadUncommitted, self.timeout_ms);
                self.sub = Some(Box::new(op));
                self.run(cx, Box::new(|op, cx| op.start(cx)));
            }
            Ok(AdminOutput::Offsets(ends)) => {
                let mut out = Vec::new();
                for c in &self.committed {
                    let end = ends
                        .iter()
                        .find(|e| e.topic == c.topic && e.partition == c.partition)
                        .and_then(|e| e.result.as_ref().ok())
                        .map(|o| o.offset);
                    let Some(end) = end else {
                        continue;
                    };
                    out.push(PartitionLag {
                        topic: c.topic.clone(),
                        partition: c.partition,
                        committed: c.offset,
                        end,
                        lag: (end - c.offset).max(0),
                    });
                }
                cx.finish(AdminOutput::Lag(out));
            }
            Ok(_) => cx.fail(AdminError::Malformed("unexpected step result".into())),
            Err(e) => cx.fail(e),
        }
    }
}

impl Operation for Lag {
    fn start(&mut self, cx: &mut Cx) {
        self.sub = Some(committed_op(&self.group));
        self.run(cx, Box::new(|op, cx| op.start(cx)));
    }

    fn on_response(&mut self, key: u32, resp: Result<AnyResponse, AdminError>, cx: &mut Cx) {
        self.run(cx, Box::new(move |op, cx| op.on_response(key, resp, cx)));
    }
}
