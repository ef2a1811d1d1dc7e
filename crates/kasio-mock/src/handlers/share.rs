//! Share groups (KIP-932): ShareGroupHeartbeat membership, share sessions per broker and
//! member, and share partitions whose records are acquired under a lock, acknowledged
//! (accept, release, reject, renew), delivered again when released or when their lock runs
//! out, and archived once their delivery count reaches the group's limit.
//!
//! As Kafka: a partition's acknowledgements in one request are taken all or none; a share
//! partition starts at the log end unless the group's `share.auto.offset.reset` is
//! `earliest`; a closed session (final epoch, or its connection gone) and a member that
//! leaves or expires release what they held. Unlike Kafka, every member is assigned every
//! subscribed partition (share groups allow it, and it makes members contend), records
//! are acquired one by one rather than by whole batches, and RENEW is not gated by
//! `share.renew.acknowledge.enable`.

use super::share_partition::{ShareOutcome, SharePartition};
use crate::cluster::{Cluster, ConnId};
use kasio_proto::{
    AnyResponse, ApiKey, ErrorCode, Uuid,
    messages::{
        RequestHeader, ShareAcknowledgeRequest, ShareAcknowledgeResponse, ShareFetchRequest,
        ShareFetchResponse, ShareGroupHeartbeatRequest, ShareGroupHeartbeatResponse,
        share_acknowledge_request, share_acknowledge_response, share_fetch_request,
        share_fetch_response, share_group_heartbeat_response,
    },
};
use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    time::{Duration, Instant},
};

type Tp = (String, i32);

/// `group.share.heartbeat.interval.ms` and `group.share.session.timeout.ms`.
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);
const SESSION_TIMEOUT: Duration = Duration::from_secs(45);

#[derive(Debug, Clone, Default)]
struct Member {
    epoch: i32,
    subscribed: Vec<String>,
    given: Option<BTreeSet<Tp>>,
    last_seen: Option<Instant>,
}

/// One share group: its members and its share partitions.
#[derive(Debug, Clone, Default)]
pub(crate) struct Group {
    members: BTreeMap<String, Member>,
    partitions: BTreeMap<Tp, SharePartition>,
}

/// A member's share session on one broker.
#[derive(Debug, Clone)]
struct Session {
    conn: ConnId,
    /// The epoch the next request must carry.
    next: i32,
    partitions: BTreeSet<Tp>,
}

/// A ShareFetch that acquired nothing, waiting for records or its `max_wait_ms`.
#[derive(Debug)]
struct Parked {
    conn: ConnId,
    header: RequestHeader,
    group: String,
    member: String,
    max_records: usize,
    deadline: Instant,
    lock: Duration,
}

/// Every share group, session and waiting fetch of the cluster.
#[derive(Debug, Default)]
pub(crate) struct Shares {
    groups: BTreeMap<String, Group>,
    /// By broker, group and member.
    sessions: BTreeMap<(i32, String, String), Session>,
    parked: Vec<Parked>,
    /// A parked fetch's acknowledgement outcomes, answered with its records.
    pending_acks: HashMap<ConnId, ShareFetchResponse>,
}

impl Shares {
    /// When a waiting fetch must be answered.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let members = self.groups.values().flat_map(|g| g.members.values());
        self.parked
            .iter()
            .map(|p| p.deadline)
            .chain(members.filter_map(|m| m.last_seen.map(|t| t + SESSION_TIMEOUT)))
            .min()
    }
}

type GroupConfigs = BTreeMap<String, BTreeMap<String, String>>;

fn group_config<'a>(cluster: &'a Cluster, group: &str, key: &str) -> Option<&'a str> {
    config_in(&cluster.group_configs, group, key)
}

fn config_in<'a>(configs: &'a GroupConfigs, group: &str, key: &str) -> Option<&'a str> {
    configs
        .get(group)
        .and_then(|c| c.get(key))
        .map(String::as_str)
}

fn lock_duration(cluster: &Cluster, group: &str) -> Duration {
    let ms = group_config(cluster, group, "share.record.lock.duration.ms")
        .and_then(|v| v.parse().ok())
        .unwrap_or(30_000);
    Duration::from_millis(ms)
}

fn delivery_limit(cluster: &Cluster, group: &str) -> i16 {
    limit_in(&cluster.group_configs, group)
}

/// `share.delivery.count.limit` (the configs apart from the cluster, so the share groups
/// can be borrowed mutably beside them).
fn limit_in(configs: &GroupConfigs, group: &str) -> i16 {
    config_in(configs, group, "share.delivery.count.limit")
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
}

fn heartbeat_error(code: ErrorCode) -> ShareGroupHeartbeatResponse {
    ShareGroupHeartbeatResponse {
        error_code: code.code(),
        member_epoch: -1,
        ..Default::default()
    }
}

/// Creates the share partitions of `parts` that do not exist yet, at the log end or (with
/// `share.auto.offset.reset=earliest`) at the log start.
fn initialize(cluster: &mut Cluster, group: &str, parts: &BTreeSet<Tp>) {
    let earliest = group_config(cluster, group, "share.auto.offset.reset") == Some("earliest");
    let starts: Vec<(Tp, i64)> = parts
        .iter()
        .filter_map(|(t, p)| {
            let log = &cluster
                .topics
                .get(t)?
                .partitions
                .get(usize::try_from(*p).ok()?)?
                .log;
            Some((
                (t.clone(), *p),
                if earliest { log.log_start() } else { log.end() },
            ))
        })
        .collect();
    let Some(g) = cluster.shares.groups.get_mut(group) else {
        return;
    };
    for (tp, start) in starts {
        g.partitions
            .entry(tp)
            .or_insert_with(|| SharePartition::new(start));
    }
}

/// A partition's leader moved: every lock on its records is gone.
pub(crate) fn leader_moved(cluster: &mut Cluster, topic: &str, partition: i32) {
    let tp = (topic.to_string(), partition);
    for (id, g) in &mut cluster.shares.groups {
        if let Some(p) = g.partitions.get_mut(&tp) {
            p.drop_locks(limit_in(&cluster.group_configs, id));
        }
    }
}

/// Lets go of everything `member` of `group` holds on partitions that `broker` leads (all
/// partitions for `None`).
fn release_member(cluster: &mut Cluster, group: &str, member: &str, broker: Option<i32>) {
    let limit = delivery_limit(cluster, group);
    let leaders: BTreeMap<Tp, i32> = cluster
        .topics
        .iter()
        .flat_map(|(t, x)| {
            x.partitions
                .iter()
                .enumerate()
                .map(move |(p, part)| ((t.clone(), i32::try_from(p).unwrap_or(0)), part.leader))
        })
        .collect();
    if let Some(g) = cluster.shares.groups.get_mut(group) {
        for (tp, part) in &mut g.partitions {
            if broker.is_none_or(|b| leaders.get(tp) == Some(&b)) {
                part.release_member(member, limit);
            }
        }
    }
}

pub(crate) fn heartbeat(
    cluster: &mut Cluster,
    broker: i32,
    req: &ShareGroupHeartbeatRequest,
    now: Instant,
) -> ShareGroupHeartbeatResponse {
    if super::offsets::coordinator(cluster, &req.group_id) != broker {
        return heartbeat_error(ErrorCode::NotCoordinator);
    }
    let group_id = req.group_id.to_string();
    let member_id = req.member_id.to_string();
    if member_id.is_empty() {
        return heartbeat_error(ErrorCode::InvalidRequest);
    }
    let group = cluster.shares.groups.entry(group_id.clone()).or_default();
    match req.member_epoch {
        -1 => {
            group.members.remove(&member_id);
            release_member(cluster, &group_id, &member_id, None);
            wake(cluster, now, true);
            return ShareGroupHeartbeatResponse {
                member_id: Some(member_id.as_str().into()),
                member_epoch: -1,
                ..Default::default()
            };
        }
        0 => {
            group.members.entry(member_id.clone()).or_default();
        }
        epoch => match group.members.get(&member_id) {
            None => return heartbeat_error(ErrorCode::UnknownMemberId),
            Some(m) if epoch != m.epoch => return heartbeat_error(ErrorCode::FencedMemberEpoch),
            Some(_) => {}
        },
    }
    let Some(m) = group.members.get_mut(&member_id) else {
        return heartbeat_error(ErrorCode::UnknownMemberId);
    };
    m.last_seen = Some(now);
    if let Some(subscribed) = &req.subscribed_topic_names {
        m.subscribed = subscribed.iter().map(ToString::to_string).collect();
    }
    let subscribed = m.subscribed.clone();
    let give: BTreeSet<Tp> = cluster
        .topics
        .iter()
        .filter(|(t, _)| subscribed.contains(t))
        .flat_map(|(t, x)| (0..x.partitions.len()).map(move |p| (t.clone(), p)))
        .filter_map(|(t, p)| Some((t, i32::try_from(p).ok()?)))
        .collect();
    initialize(cluster, &group_id, &give);
    let Some(m) = cluster
        .shares
        .groups
        .get_mut(&group_id)
        .and_then(|g| g.members.get_mut(&member_id))
    else {
        return heartbeat_error(ErrorCode::UnknownMemberId);
    };
    let changed = m.given.as_ref() != Some(&give);
    if changed {
        m.epoch += 1;
        m.given = Some(give.clone());
    }
    let assignment = (changed || req.member_epoch == 0).then(|| {
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (t, p) in &give {
            by_topic.entry(t).or_default().push(*p);
        }
        share_group_heartbeat_response::Assignment {
            topic_partitions: by_topic
                .into_iter()
                .map(
                    |(t, partitions)| share_group_heartbeat_response::TopicPartitions {
                        topic_id: cluster.topics.get(t).map_or(Uuid::default(), |x| x.id),
                        partitions,
                        ..Default::default()
                    },
                )
                .collect(),
            ..Default::default()
        }
    });
    ShareGroupHeartbeatResponse {
        member_id: Some(member_id.as_str().into()),
        member_epoch: m.epoch,
        heartbeat_interval_ms: i32::try_from(HEARTBEAT_INTERVAL.as_millis()).unwrap_or(5000),
        assignment,
        ..Default::default()
    }
}

/// Removes members silent for longer than the session timeout, letting go of their records,
/// and lets go of locks that ran out.
pub(crate) fn expire(cluster: &mut Cluster, now: Instant) {
    let mut gone = Vec::new();
    for (id, g) in &mut cluster.shares.groups {
        g.members.retain(|m, x| {
            let keep = x.last_seen.is_none_or(|t| now < t + SESSION_TIMEOUT);
            if !keep {
                gone.push((id.clone(), m.clone()));
            }
            keep
        });
    }
    for (group, member) in gone {
        release_member(cluster, &group, &member, None);
    }
    for (id, g) in &mut cluster.shares.groups {
        let limit = limit_in(&cluster.group_configs, id);
        for p in g.partitions.values_mut() {
            p.expire(now, limit);
        }
    }
}

/// A connection closed: the share sessions opened on it end, releasing what their members
/// held on that broker's partitions (as Kafka does when a client disconnects).
pub(crate) fn connection_closed(cluster: &mut Cluster, conn: ConnId) {
    cluster.shares.pending_acks.remove(&conn);
    cluster.shares.parked.retain(|p| p.conn != conn);
    let ended: Vec<(i32, String, String)> = cluster
        .shares
        .sessions
        .iter()
        .filter(|(_, s)| s.conn == conn)
        .map(|(k, _)| k.clone())
        .collect();
    for key in ended {
        cluster.shares.sessions.remove(&key);
        let (broker, group, member) = key;
        release_member(cluster, &group, &member, Some(broker));
    }
}

/// Checks a request's session epoch and advances it: `Ok(true)` for a session closing.
fn session(
    cluster: &mut Cluster,
    key: &(i32, String, String),
    conn: ConnId,
    epoch: i32,
    opens: bool,
) -> Result<bool, ErrorCode> {
    match epoch {
        0 if opens => {
            cluster.shares.sessions.insert(
                key.clone(),
                Session {
                    conn,
                    next: 1,
                    partitions: BTreeSet::new(),
                },
            );
            Ok(false)
        }
        0 => Err(ErrorCode::InvalidShareSessionEpoch),
        -1 => match cluster.shares.sessions.get(key) {
            None => Err(ErrorCode::ShareSessionNotFound),
            Some(_) => Ok(true),
        },
        epoch => match cluster.shares.sessions.get_mut(key) {
            None => Err(ErrorCode::ShareSessionNotFound),
            Some(s) if s.next != epoch => Err(ErrorCode::InvalidShareSessionEpoch),
            Some(s) => {
                s.next = if epoch == i32::MAX { 1 } else { epoch + 1 };
                s.conn = conn;
                Ok(false)
            }
        },
    }
}

/// Applies one partition's acknowledgements; the error for its response.
fn apply(
    cluster: &mut Cluster,
    broker: i32,
    group: &str,
    member: &str,
    tp: &Tp,
    batches: &[(i64, i64, Vec<i8>)],
    now: Instant,
) -> ErrorCode {
    if let Some(code) = super::partition_error(cluster, &tp.0, tp.1, broker) {
        return code;
    }
    let (lock, limit) = (
        lock_duration(cluster, group),
        delivery_limit(cluster, group),
    );
    match cluster
        .shares
        .groups
        .get_mut(group)
        .and_then(|g| g.partitions.get_mut(tp))
    {
        None => ErrorCode::InvalidRecordState,
        Some(part) => {
            part.expire(now, limit);
            part.acknowledge(member, batches, now, lock, limit)
        }
    }
}

fn leader_of(cluster: &Cluster, tp: &Tp) -> (i32, i32) {
    cluster
        .topics
        .get(&tp.0)
        .and_then(|t| t.partitions.get(usize::try_from(tp.1).ok()?))
        .map_or((-1, -1), |p| (p.leader, p.log.leader_epoch()))
}

fn endpoints(cluster: &Cluster, ids: &BTreeSet<i32>) -> Vec<share_fetch_response::NodeEndpoint> {
    cluster
        .brokers
        .iter()
        .filter(|b| ids.contains(&b.id))
        .map(|b| share_fetch_response::NodeEndpoint {
            node_id: b.id,
            host: b.host.as_str().into(),
            port: b.port,
            ..Default::default()
        })
        .collect()
}

pub(crate) fn fetch(
    cluster: &mut Cluster,
    conn: ConnId,
    broker: i32,
    header: RequestHeader,
    req: ShareFetchRequest,
    now: Instant,
) -> super::Outcome {
    let respond =
        |r: ShareFetchResponse| super::Outcome::Respond(Box::new(AnyResponse::ShareFetch(r)));
    let top = |code: ErrorCode| ShareFetchResponse {
        error_code: code.code(),
        ..Default::default()
    };
    let (Some(group), Some(member)) = (req.group_id.as_deref(), req.member_id.as_deref()) else {
        return respond(top(ErrorCode::InvalidRequest));
    };
    let (group, member) = (group.to_string(), member.to_string());
    let key = (broker, group.clone(), member.clone());
    let closing = match session(cluster, &key, conn, req.share_session_epoch, true) {
        Ok(c) => c,
        Err(code) => return respond(top(code)),
    };
    let mut names = BTreeMap::new();
    let mut acks: BTreeMap<Tp, Vec<(i64, i64, Vec<i8>)>> = BTreeMap::new();
    let mut unknown = BTreeSet::new();
    for t in &req.topics {
        let Some(name) = super::topic_name(cluster, "", t.topic_id) else {
            for p in &t.partitions {
                unknown.insert((t.topic_id, p.partition_index));
            }
            continue;
        };
        names.insert(name.clone(), t.topic_id);
        for p in &t.partitions {
            let tp = (name.clone(), p.partition_index);
            let list = acks.entry(tp).or_default();
            list.extend(ack_batches(&p.acknowledgement_batches));
        }
    }
    let forgotten: Vec<Tp> = req
        .forgotten_topics_data
        .iter()
        .filter_map(|t| Some((super::topic_name(cluster, "", t.topic_id)?, t)))
        .flat_map(|(n, t)| t.partitions.iter().map(move |p| (n.clone(), *p)))
        .collect();
    let mut errors: BTreeMap<Tp, ErrorCode> = BTreeMap::new();
    for (tp, batches) in &acks {
        if !batches.is_empty() {
            let code = apply(cluster, broker, &group, &member, tp, batches, now);
            errors.insert(tp.clone(), code);
        }
    }
    if closing {
        cluster.shares.sessions.remove(&key);
        release_member(cluster, &group, &member, Some(broker));
    } else if let Some(s) = cluster.shares.sessions.get_mut(&key) {
        s.partitions.extend(acks.keys().cloned());
        for tp in &forgotten {
            s.partitions.remove(tp);
        }
    }
    wake(cluster, now, true);
    let lock = lock_duration(cluster, &group);
    let max_records = usize::try_from(req.max_records)
        .ok()
        .filter(|&m| m > 0)
        .unwrap_or(500);
    let mut response = if closing {
        ShareFetchResponse::default()
    } else {
        acquire(cluster, broker, &group, &member, max_records, now, lock)
    };
    response.acquisition_lock_timeout_ms = i32::try_from(lock.as_millis()).unwrap_or(i32::MAX);
    // Acknowledgement outcomes for partitions the fetch did not answer.
    for (tp, code) in errors {
        let topic_id = names.get(&tp.0).copied().unwrap_or_default();
        let part = part_mut(&mut response, topic_id, tp.1);
        part.acknowledge_error_code = code.code();
    }
    for (topic_id, p) in unknown {
        part_mut(&mut response, topic_id, p).error_code = ErrorCode::UnknownTopicId.code();
    }
    let has_records = response
        .responses
        .iter()
        .flat_map(|t| &t.partitions)
        .any(|p| !p.acquired_records.is_empty() || p.error_code != 0);
    if has_records || closing || req.max_wait_ms <= 0 {
        return respond(response);
    }
    // Nothing to hand out: wait for records, their acknowledgement outcomes kept.
    let wait = Duration::from_millis(u64::try_from(req.max_wait_ms).unwrap_or(0));
    cluster.shares.parked.push(Parked {
        conn,
        header,
        group,
        member,
        max_records,
        deadline: now + wait,
        lock,
    });
    cluster.shares.pending_acks.insert(conn, response);
    super::Outcome::Parked
}

fn ack_batches<'a, B: AckBatch + 'a>(
    batches: impl IntoIterator<Item = &'a B>,
) -> Vec<(i64, i64, Vec<i8>)> {
    batches
        .into_iter()
        .map(|b| (b.first(), b.last(), b.types().to_vec()))
        .collect()
}

/// A ShareFetch or ShareAcknowledge acknowledgement batch.
trait AckBatch {
    fn first(&self) -> i64;
    fn last(&self) -> i64;
    fn types(&self) -> &[i8];
}

// ShareFetch and ShareAcknowledge carry the same batch under two generated types.
macro_rules! ack_batch {
    ($($t:ty),*) => {$(
        impl AckBatch for $t {
            fn first(&self) -> i64 {
                self.first_offset
            }
            fn last(&self) -> i64 {
                self.last_offset
            }
            fn types(&self) -> &[i8] {
                &self.acknowledge_types
            }
        }
    )*};
}

ack_batch!(
    share_fetch_request::AcknowledgementBatch,
    share_acknowledge_request::AcknowledgementBatch
);

/// The response's entry for a partition, added if missing.
fn part_mut(
    response: &mut ShareFetchResponse,
    topic_id: Uuid,
    partition: i32,
) -> &mut share_fetch_response::PartitionData {
    let topic = find_or_push(
        &mut response.responses,
        |t| t.topic_id == topic_id,
        || share_fetch_response::ShareFetchableTopicResponse {
            topic_id,
            ..Default::default()
        },
    );
    find_or_push(
        &mut topic.partitions,
        |p| p.partition_index == partition,
        || share_fetch_response::PartitionData {
            partition_index: partition,
            current_leader: share_fetch_response::LeaderIdAndEpoch {
                leader_id: -1,
                leader_epoch: -1,
                ..Default::default()
            },
            ..Default::default()
        },
    )
}

fn find_or_push<T>(list: &mut Vec<T>, is: impl Fn(&T) -> bool, make: impl FnOnce() -> T) -> &mut T {
    let i = match list.iter().position(is) {
        Some(i) => i,
        None => {
            list.push(make());
            list.len() - 1
        }
    };
    &mut list[i]
}

/// Acquires records of the member's session partitions led by `broker`, up to
/// `max_records` in all.
fn acquire(
    cluster: &mut Cluster,
    broker: i32,
    group: &str,
    member: &str,
    max_records: usize,
    now: Instant,
    lock: Duration,
) -> ShareFetchResponse {
    let mut response = ShareFetchResponse::default();
    let key = (broker, group.to_string(), member.to_string());
    let parts: Vec<Tp> = cluster
        .shares
        .sessions
        .get(&key)
        .map(|s| s.partitions.iter().cloned().collect())
        .unwrap_or_default();
    let limit = delivery_limit(cluster, group);
    let mut left = max_records;
    let mut moved = BTreeSet::new();
    for tp in parts {
        let Some(topic_id) = cluster.topics.get(&tp.0).map(|t| t.id) else {
            continue;
        };
        if let Some(code) = super::partition_error(cluster, &tp.0, tp.1, broker) {
            let (leader, epoch) = leader_of(cluster, &tp);
            if leader >= 0 {
                moved.insert(leader);
            }
            let part = part_mut(&mut response, topic_id, tp.1);
            part.error_code = code.code();
            part.current_leader.leader_id = leader;
            part.current_leader.leader_epoch = epoch;
            continue;
        }
        let Some(log) = cluster
            .topics
            .get(&tp.0)
            .and_then(|t| t.partitions.get(usize::try_from(tp.1).ok()?))
            .map(|p| (p.log.log_start(), p.log.end()))
        else {
            continue;
        };
        let Some(share) = cluster
            .shares
            .groups
            .get_mut(group)
            .and_then(|g| g.partitions.get_mut(&tp))
        else {
            // Not assigned to the group yet: nothing to acquire.
            continue;
        };
        share.expire(now, limit);
        if left == 0 {
            continue;
        }
        let ranges = share.acquire(member, left, log.0, log.1, now + lock);
        if ranges.is_empty() {
            continue;
        }
        left -= ranges
            .iter()
            .map(|r| usize::try_from(r.1 - r.0 + 1).unwrap_or(0))
            .sum::<usize>();
        let (first, last) = (ranges[0].0, ranges[ranges.len() - 1].1);
        let records = cluster
            .topics
            .get(&tp.0)
            .and_then(|t| t.partitions.get(usize::try_from(tp.1).ok()?))
            .map(|p| p.log.read_until(first, usize::MAX, last + 1))
            .unwrap_or_default();
        let (leader, epoch) = leader_of(cluster, &tp);
        let part = part_mut(&mut response, topic_id, tp.1);
        part.records = records;
        part.current_leader.leader_id = leader;
        part.current_leader.leader_epoch = epoch;
        part.acquired_records = ranges
            .into_iter()
            .map(|(f, l, d)| share_fetch_response::AcquiredRecords {
                first_offset: f,
                last_offset: l,
                delivery_count: d,
                ..Default::default()
            })
            .collect();
    }
    response.node_endpoints = endpoints(cluster, &moved);
    response
}

/// Answers waiting share fetches that can now acquire records, or (when `data_only` is
/// false) whose wait is over.
pub(crate) fn wake(cluster: &mut Cluster, now: Instant, data_only: bool) {
    let parked = std::mem::take(&mut cluster.shares.parked);
    for p in parked {
        let Some(broker) = cluster.broker_of(p.conn) else {
            cluster.shares.pending_acks.remove(&p.conn);
            continue;
        };
        let mut response = acquire(
            cluster,
            broker,
            &p.group,
            &p.member,
            p.max_records,
            now,
            p.lock,
        );
        let got = response
            .responses
            .iter()
            .flat_map(|t| &t.partitions)
            .any(|x| !x.acquired_records.is_empty() || x.error_code != 0);
        if got || (!data_only && now >= p.deadline) {
            if let Some(acked) = cluster.shares.pending_acks.remove(&p.conn) {
                merge_acks(&mut response, acked);
            }
            response.acquisition_lock_timeout_ms =
                i32::try_from(p.lock.as_millis()).unwrap_or(i32::MAX);
            cluster.respond(
                p.conn,
                ApiKey::ShareFetch,
                p.header.request_api_version,
                p.header.correlation_id,
                &AnyResponse::ShareFetch(response),
            );
            cluster.unblock(p.conn);
        } else {
            cluster.shares.parked.push(p);
        }
    }
}

/// Carries the acknowledgement outcomes of a parked fetch into its late response.
fn merge_acks(response: &mut ShareFetchResponse, acked: ShareFetchResponse) {
    for t in acked.responses {
        for p in t.partitions {
            let part = part_mut(response, t.topic_id, p.partition_index);
            part.acknowledge_error_code = p.acknowledge_error_code;
            if p.error_code != 0 {
                part.error_code = p.error_code;
            }
        }
    }
}

pub(crate) fn acknowledge(
    cluster: &mut Cluster,
    conn: ConnId,
    broker: i32,
    req: &ShareAcknowledgeRequest,
    now: Instant,
) -> ShareAcknowledgeResponse {
    let top = |code: ErrorCode| ShareAcknowledgeResponse {
        error_code: code.code(),
        ..Default::default()
    };
    let (Some(group), Some(member)) = (req.group_id.as_deref(), req.member_id.as_deref()) else {
        return top(ErrorCode::InvalidRequest);
    };
    let (group, member) = (group.to_string(), member.to_string());
    let key = (broker, group.clone(), member.clone());
    let closing = match session(cluster, &key, conn, req.share_session_epoch, false) {
        Ok(c) => c,
        Err(code) => return top(code),
    };
    let mut responses = Vec::new();
    let mut moved = BTreeSet::new();
    for t in &req.topics {
        let name = super::topic_name(cluster, "", t.topic_id);
        let mut partitions = Vec::new();
        for p in &t.partitions {
            let code = match &name {
                None => ErrorCode::UnknownTopicId,
                Some(n) => {
                    let tp = (n.clone(), p.partition_index);
                    let batches = ack_batches(&p.acknowledgement_batches);
                    apply(cluster, broker, &group, &member, &tp, &batches, now)
                }
            };
            let (leader, epoch) = name.as_ref().map_or((-1, -1), |n| {
                leader_of(cluster, &(n.clone(), p.partition_index))
            });
            if code == ErrorCode::NotLeaderOrFollower && leader >= 0 {
                moved.insert(leader);
            }
            partitions.push(share_acknowledge_response::PartitionData {
                partition_index: p.partition_index,
                error_code: code.code(),
                current_leader: share_acknowledge_response::LeaderIdAndEpoch {
                    leader_id: leader,
                    leader_epoch: epoch,
                    ..Default::default()
                },
                ..Default::default()
            });
        }
        responses.push(share_acknowledge_response::ShareAcknowledgeTopicResponse {
            topic_id: t.topic_id,
            partitions,
            ..Default::default()
        });
    }
    if closing {
        cluster.shares.sessions.remove(&key);
        release_member(cluster, &group, &member, Some(broker));
    }
    wake(cluster, now, true);
    let lock = lock_duration(cluster, &group);
    ShareAcknowledgeResponse {
        acquisition_lock_timeout_ms: i32::try_from(lock.as_millis()).unwrap_or(i32::MAX),
        responses,
        node_endpoints: endpoints(cluster, &moved)
            .into_iter()
            .map(|e| share_acknowledge_response::NodeEndpoint {
                node_id: e.node_id,
                host: e.host,
                port: e.port,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// The start offset of `group`'s share partition `topic`-`partition` and what became of
/// each record delivered from it.
pub(crate) fn outcomes(
    cluster: &Cluster,
    group: &str,
    topic: &str,
    partition: i32,
) -> Option<(i64, BTreeMap<i64, ShareOutcome>)> {
    let p = cluster
        .shares
        .groups
        .get(group)?
        .partitions
        .get(&(topic.to_string(), partition))?;
    Some(p.outcomes())
}
