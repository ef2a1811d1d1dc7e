//! Consumer groups with the classic protocol: members join (JoinGroup), the coordinator
//! waits for every known member to rejoin, picks a protocol and a leader, the leader's
//! assignment is handed out through SyncGroup, and heartbeats keep members in; a member
//! silent for its session timeout is removed and the group rebalances.

use super::{Outcome, offsets::coordinator};
use crate::cluster::{Cluster, ConnId};
use bytes::Bytes;
use kasio_proto::{
    AnyResponse, ApiKey, ErrorCode,
    messages::{
        HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse,
        LeaveGroupRequest, LeaveGroupResponse, RequestHeader, SyncGroupRequest, SyncGroupResponse,
        join_group_response::JoinGroupResponseMember, leave_group_response::MemberResponse,
    },
};
use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant},
};

/// A response the coordinator owes a connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Owed {
    conn: ConnId,
    version: i16,
    correlation: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

impl State {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Empty => "Empty",
            Self::PreparingRebalance => "PreparingRebalance",
            Self::CompletingRebalance => "CompletingRebalance",
            Self::Stable => "Stable",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub(crate) client_id: String,
    pub(crate) instance_id: Option<String>,
    protocols: Vec<(String, Bytes)>,
    session: Duration,
    rebalance: Duration,
    last_seen: Instant,
    join: Option<Owed>,
    sync: Option<Owed>,
    pub(crate) assignment: Bytes,
}

impl Member {
    pub(crate) fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(n, _)| n == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone)]
pub(crate) struct ClassicGroup {
    pub(crate) state: State,
    pub(crate) generation: i32,
    pub(crate) protocol_type: String,
    pub(crate) protocol: Option<String>,
    leader: Option<String>,
    pub(crate) members: BTreeMap<String, Member>,
    /// Ids handed out with MEMBER_ID_REQUIRED, not yet joined.
    pending: BTreeSet<String>,
    rebalance_deadline: Option<Instant>,
}

impl ClassicGroup {
    fn new() -> Self {
        Self {
            state: State::Empty,
            generation: 0,
            protocol_type: String::new(),
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            pending: BTreeSet::new(),
            rebalance_deadline: None,
        }
    }
}

fn owed(conn: ConnId, header: &RequestHeader) -> Owed {
    Owed {
        conn,
        version: header.request_api_version,
        correlation: header.correlation_id,
    }
}

fn join_error(code: ErrorCode, member_id: &str) -> Outcome {
    Outcome::Respond(Box::new(AnyResponse::JoinGroup(JoinGroupResponse {
        error_code: code.code(),
        generation_id: -1,
        member_id: member_id.into(),
        ..Default::default()
    })))
}

pub(crate) fn join(
    cluster: &mut Cluster,
    conn: ConnId,
    broker: i32,
    header: &RequestHeader,
    req: &JoinGroupRequest,
    now: Instant,
) -> Outcome {
    let id = req.group_id.to_string();
    if coordinator(cluster, &id) != broker {
        return join_error(ErrorCode::NotCoordinator, &req.member_id);
    }
    if cluster
        .groups
        .get(&id)
        .is_some_and(|g| !g.members.is_empty())
    {
        return join_error(ErrorCode::InconsistentGroupProtocol, &req.member_id);
    }
    let group = cluster
        .classic
        .entry(id.clone())
        .or_insert_with(ClassicGroup::new);
    let mut member_id = req.member_id.to_string();
    if member_id.is_empty() {
        let client = header
            .client_id
            .as_ref()
            .map_or("consumer".to_string(), ToString::to_string);
        member_id = format!("{client}-{:08x}", cluster.next_producer_id);
        cluster.next_producer_id += 1;
        if header.request_api_version >= 4 {
            // KIP-394: the member joins again with this id.
            group.pending.insert(member_id.clone());
            return join_error(ErrorCode::MemberIdRequired, &member_id);
        }
    } else if !group.members.contains_key(&member_id) && !group.pending.remove(&member_id) {
        return join_error(ErrorCode::UnknownMemberId, &member_id);
    }
    let protocols: Vec<(String, Bytes)> = req
        .protocols
        .iter()
        .map(|p| (p.name.to_string(), p.metadata.clone()))
        .collect();
    let shared = group.members.is_empty()
        || (group.protocol_type == req.protocol_type.as_str()
            && protocols.iter().any(|(n, _)| {
                group
                    .members
                    .iter()
                    .filter(|(m, _)| **m != member_id)
                    .all(|(_, m)| m.protocols.iter().any(|(x, _)| x == n))
            }));
    if !shared {
        return join_error(ErrorCode::InconsistentGroupProtocol, &member_id);
    }
    group.protocol_type = req.protocol_type.to_string();
    let member = Member {
        client_id: header
            .client_id
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        instance_id: req.group_instance_id.as_ref().map(ToString::to_string),
        protocols,
        session: Duration::from_millis(u64::try_from(req.session_timeout_ms).unwrap_or(45_000)),
        rebalance: Duration::from_millis(
            u64::try_from(req.rebalance_timeout_ms.max(req.session_timeout_ms)).unwrap_or(300_000),
        ),
        last_seen: now,
        join: Some(owed(conn, header)),
        sync: None,
        assignment: Bytes::new(),
    };
    group.members.insert(member_id, member);
    let owed_syncs = prepare(group, now);
    // Busy first: completing the join may answer this very request.
    cluster.set_busy(conn);
    answer_syncs_rebalancing(cluster, owed_syncs);
    complete_if_ready(cluster, &id, now);
    Outcome::Handled
}

/// Moves to PreparingRebalance; the syncs still waiting are answered REBALANCE_IN_PROGRESS.
fn prepare(group: &mut ClassicGroup, now: Instant) -> Vec<Owed> {
    let mut owed = Vec::new();
    if group.state != State::PreparingRebalance {
        group.state = State::PreparingRebalance;
        let longest = group
            .members
            .values()
            .map(|m| m.rebalance)
            .max()
            .unwrap_or_default();
        group.rebalance_deadline = Some(now + longest);
        for m in group.members.values_mut() {
            owed.extend(m.sync.take());
        }
    }
    owed
}

fn answer_syncs_rebalancing(cluster: &mut Cluster, owed: Vec<Owed>) {
    for o in owed {
        let resp = SyncGroupResponse {
            error_code: ErrorCode::RebalanceInProgress.code(),
            ..Default::default()
        };
        cluster.respond(
            o.conn,
            ApiKey::SyncGroup,
            o.version,
            o.correlation,
            &AnyResponse::SyncGroup(resp),
        );
        cluster.unblock(o.conn);
    }
}

/// Ends the join phase once every member has rejoined (or the deadline removed the rest).
fn complete_if_ready(cluster: &mut Cluster, id: &str, now: Instant) {
    let Some(group) = cluster.classic.get_mut(id) else {
        return;
    };
    if group.state != State::PreparingRebalance {
        return;
    }
    let late = group.rebalance_deadline.is_some_and(|d| d <= now);
    if !late && group.members.values().any(|m| m.join.is_none()) {
        return;
    }
    group.members.retain(|_, m| m.join.is_some());
    group.rebalance_deadline = None;
    if group.members.is_empty() {
        group.state = State::Empty;
        group.generation += 1;
        group.protocol = None;
        group.leader = None;
        return;
    }
    group.generation += 1;
    let first = group
        .members
        .values()
        .next()
        .map(|m| m.protocols.clone())
        .unwrap_or_default();
    group.protocol = first.iter().map(|(n, _)| n.clone()).find(|n| {
        group
            .members
            .values()
            .all(|m| m.protocols.iter().any(|(x, _)| x == n))
    });
    if group
        .leader
        .as_ref()
        .is_none_or(|l| !group.members.contains_key(l))
    {
        group.leader = group.members.keys().next().cloned();
    }
    group.state = State::CompletingRebalance;
    let protocol = group.protocol.clone().unwrap_or_default();
    let leader = group.leader.clone().unwrap_or_default();
    let listing: Vec<JoinGroupResponseMember> = group
        .members
        .iter()
        .map(|(mid, m)| JoinGroupResponseMember {
            member_id: mid.as_str().into(),
            group_instance_id: m.instance_id.as_deref().map(Into::into),
            metadata: m.metadata(&protocol),
            ..Default::default()
        })
        .collect();
    let generation = group.generation;
    let protocol_type = group.protocol_type.clone();
    let owed: Vec<(String, Owed)> = group
        .members
        .iter_mut()
        .filter_map(|(mid, m)| Some((mid.clone(), m.join.take()?)))
        .collect();
    for (mid, o) in owed {
        let resp = JoinGroupResponse {
            generation_id: generation,
            protocol_type: Some(protocol_type.as_str().into()),
            protocol_name: Some(protocol.as_str().into()),
            leader: leader.as_str().into(),
            member_id: mid.as_str().into(),
            members: if mid == leader {
                listing.clone()
            } else {
                Vec::new()
            },
            ..Default::default()
        };
        cluster.respond(
            o.conn,
            ApiKey::JoinGroup,
            o.version,
            o.correlation,
            &AnyResponse::JoinGroup(resp),
        );
        cluster.unblock(o.conn);
    }
}

fn sync_error(code: ErrorCode) -> Outcome {
    Outcome::Respond(Box::new(AnyResponse::SyncGroup(SyncGroupResponse {
        error_code: code.code(),
        ..Default::default()
    })))
}

pub(crate) fn sync(
    cluster: &mut Cluster,
    conn: ConnId,
    broker: i32,
    header: &RequestHeader,
    req: &SyncGroupRequest,
    now: Instant,
) -> Outcome {
    let id = req.group_id.to_string();
    if coordinator(cluster, &id) != broker {
        return sync_error(ErrorCode::NotCoordinator);
    }
    let Some(group) = cluster.classic.get_mut(&id) else {
        return sync_error(ErrorCode::UnknownMemberId);
    };
    let mid = req.member_id.to_string();
    if !group.members.contains_key(&mid) {
        return sync_error(ErrorCode::UnknownMemberId);
    }
    if req.generation_id != group.generation {
        return sync_error(ErrorCode::IllegalGeneration);
    }
    let protocol = group.protocol.clone().unwrap_or_default();
    let protocol_type = group.protocol_type.clone();
    let answer = |assignment: Bytes| SyncGroupResponse {
        protocol_type: Some(protocol_type.as_str().into()),
        protocol_name: Some(protocol.as_str().into()),
        assignment,
        ..Default::default()
    };
    if let Some(m) = group.members.get_mut(&mid) {
        m.last_seen = now;
    }
    match group.state {
        State::PreparingRebalance | State::Empty => sync_error(ErrorCode::RebalanceInProgress),
        State::Stable => {
            let a = group
                .members
                .get(&mid)
                .map(|m| m.assignment.clone())
                .unwrap_or_default();
            Outcome::Respond(Box::new(AnyResponse::SyncGroup(answer(a))))
        }
        State::CompletingRebalance => {
            if let Some(m) = group.members.get_mut(&mid) {
                m.sync = Some(owed(conn, header));
            }
            let leader = group.leader.as_deref() == Some(mid.as_str());
            // Busy first: the leader's sync answers this very request.
            cluster.set_busy(conn);
            let Some(group) = cluster.classic.get_mut(&id) else {
                return Outcome::Handled;
            };
            if leader {
                for a in &req.assignments {
                    if let Some(m) = group.members.get_mut(a.member_id.as_str()) {
                        m.assignment = a.assignment.clone();
                    }
                }
                group.state = State::Stable;
                let owed: Vec<(Owed, Bytes)> = group
                    .members
                    .values_mut()
                    .filter_map(|m| Some((m.sync.take()?, m.assignment.clone())))
                    .collect();
                for (o, a) in owed {
                    cluster.respond(
                        o.conn,
                        ApiKey::SyncGroup,
                        o.version,
                        o.correlation,
                        &AnyResponse::SyncGroup(answer(a)),
                    );
                    cluster.unblock(o.conn);
                }
            }
            Outcome::Handled
        }
    }
}

pub(crate) fn heartbeat(
    cluster: &mut Cluster,
    broker: i32,
    req: &HeartbeatRequest,
    now: Instant,
) -> HeartbeatResponse {
    let id = req.group_id.to_string();
    let code = if coordinator(cluster, &id) != broker {
        ErrorCode::NotCoordinator
    } else {
        match cluster.classic.get_mut(&id) {
            None => ErrorCode::UnknownMemberId,
            Some(g) => match g.members.get_mut(req.member_id.as_str()) {
                None => ErrorCode::UnknownMemberId,
                Some(_) if req.generation_id != g.generation => ErrorCode::IllegalGeneration,
                Some(m) => {
                    m.last_seen = now;
                    if g.state == State::PreparingRebalance {
                        ErrorCode::RebalanceInProgress
                    } else {
                        ErrorCode::None
                    }
                }
            },
        }
    };
    HeartbeatResponse {
        error_code: code.code(),
        ..Default::default()
    }
}

pub(crate) fn leave(
    cluster: &mut Cluster,
    broker: i32,
    req: &LeaveGroupRequest,
    now: Instant,
) -> LeaveGroupResponse {
    let id = req.group_id.to_string();
    if coordinator(cluster, &id) != broker {
        return LeaveGroupResponse {
            error_code: ErrorCode::NotCoordinator.code(),
            ..Default::default()
        };
    }
    let ids: Vec<String> = if req.members.is_empty() {
        vec![req.member_id.to_string()]
    } else {
        req.members
            .iter()
            .map(|m| m.member_id.to_string())
            .collect()
    };
    let mut members = Vec::new();
    let mut owed = Vec::new();
    if let Some(g) = cluster.classic.get_mut(&id) {
        for mid in &ids {
            let code = match g.members.remove(mid) {
                Some(m) => {
                    owed.extend(m.join);
                    owed.extend(m.sync);
                    ErrorCode::None
                }
                None => ErrorCode::UnknownMemberId,
            };
            members.push(MemberResponse {
                member_id: mid.as_str().into(),
                error_code: code.code(),
                ..Default::default()
            });
        }
        let syncs = if g.members.is_empty() {
            g.state = State::Empty;
            Vec::new()
        } else {
            prepare(g, now)
        };
        answer_syncs_rebalancing(cluster, syncs);
        complete_if_ready(cluster, &id, now);
    }
    for o in owed {
        cluster.unblock(o.conn);
    }
    LeaveGroupResponse {
        members: if req.members.is_empty() {
            Vec::new()
        } else {
            members
        },
        ..Default::default()
    }
}

/// Removes silent members and ends join phases whose time is up.
pub(crate) fn expire(cluster: &mut Cluster, now: Instant) {
    let ids: Vec<String> = cluster.classic.keys().cloned().collect();
    for id in ids {
        let Some(g) = cluster.classic.get_mut(&id) else {
            continue;
        };
        let before = g.members.len();
        g.members
            .retain(|_, m| m.join.is_some() || m.last_seen + m.session > now);
        let syncs = if g.members.len() < before {
            if g.members.is_empty() {
                g.state = State::Empty;
                Vec::new()
            } else {
                prepare(g, now)
            }
        } else {
            Vec::new()
        };
        answer_syncs_rebalancing(cluster, syncs);
        complete_if_ready(cluster, &id, now);
    }
}

/// When `expire` next has work.
pub(crate) fn next_expiry(cluster: &Cluster) -> Option<Instant> {
    cluster
        .classic
        .values()
        .flat_map(|g| {
            g.members
                .values()
                .filter(|m| m.join.is_none())
                .map(|m| m.last_seen + m.session)
                .chain(g.rebalance_deadline)
        })
        .min()
}

/// Whether a commit from this member at this generation is accepted.
pub(crate) fn commit_allowed(
    cluster: &Cluster,
    group: &str,
    member: &str,
    generation: i32,
) -> Option<ErrorCode> {
    let g = cluster.classic.get(group)?;
    Some(match g.members.get(member) {
        None => ErrorCode::UnknownMemberId,
        Some(_) if generation != g.generation => ErrorCode::IllegalGeneration,
        Some(_) => ErrorCode::None,
    })
}
