//! Membership of a consumer group with the classic protocol (`group.protocol=classic`):
//! JoinGroup, the leader's assignment through SyncGroup, heartbeats, and rebalances: eager
//! (every partition given up before rejoining) or, with `cooperative-sticky`, incremental
//! (KIP-429: partitions kept through the rebalance, only those assigned elsewhere given up,
//! then a second rebalance hands them over).

use super::{
    ConsumeError, Consumer, ConsumerEvent, MemberState, Position, Tp,
    assignor::{self, Assignor, Member},
};
use crate::conn::{ConnId, InFlight, Node, Purpose, Tag};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kasio_proto::{
    ApiKey, Decode, Encode, ErrorCode, frame,
    messages::{
        ConsumerProtocolAssignment, ConsumerProtocolSubscription, HeartbeatRequest,
        HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
        LeaveGroupResponse, SyncGroupRequest, SyncGroupResponse,
        consumer_protocol_assignment::TopicPartition, consumer_protocol_subscription,
        join_group_request::JoinGroupRequestProtocol, leave_group_request::MemberIdentity,
        sync_group_request::SyncGroupRequestAssignment,
    },
};
use std::{collections::BTreeMap, sync::Arc, time::Instant};

/// Where a classic member is. `Joining` (JoinGroup) → `Syncing` (SyncGroup) → `Stable`
/// (heartbeats); an eager rebalance goes `Stable` → `Revoking` (give everything up, its
/// commit done) → `Joining`, a cooperative one `Stable` → `Joining` with the partitions
/// kept, and after SyncGroup → `Revoking` (the partitions assigned elsewhere) → `Joining`
/// when it gave any up; `unsubscribe` → `Leaving` → `Unsubscribed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Joining,
    Syncing,
    Stable,
    Revoking,
    Leaving,
    Unsubscribed,
}

#[derive(Debug)]
pub(super) struct Classic {
    stage: Stage,
    member_id: String,
    generation: i32,
    topics: Vec<Arc<str>>,
    protocol: String,
    /// As leader: every member's subscription, to assign once metadata has them all.
    leading: Option<BTreeMap<String, Member>>,
    in_flight: bool,
    next: Option<Instant>,
}

impl Classic {
    pub(super) fn new(topics: Vec<Arc<str>>, now: Instant) -> Self {
        Self {
            stage: Stage::Joining,
            member_id: String::new(),
            generation: -1,
            topics,
            protocol: String::new(),
            leading: None,
            in_flight: false,
            next: Some(now),
        }
    }

    pub(super) fn state(&self) -> MemberState {
        match self.stage {
            Stage::Joining | Stage::Syncing => MemberState::Joining,
            Stage::Stable => MemberState::Stable,
            Stage::Revoking => MemberState::Reconciling,
            Stage::Leaving => MemberState::Leaving,
            Stage::Unsubscribed => MemberState::Unsubscribed,
        }
    }

    pub(super) fn wants_coordinator(&self) -> bool {
        self.stage != Stage::Unsubscribed
    }

    /// Whether the group's protocol rebalances incrementally.
    fn cooperative(&self) -> bool {
        Assignor::parse(&self.protocol) == Some(Assignor::CooperativeSticky)
    }

    pub(super) fn commit_generation(&self) -> i32 {
        // A cooperative member keeps its partitions, and commits for them, while it
        // rejoins: its generation stays valid until the new one forms.
        let rejoining = self.stage == Stage::Joining && self.cooperative();
        if self.stage == Stage::Stable || self.stage == Stage::Revoking || rejoining {
            self.generation
        } else {
            -1
        }
    }

    pub(super) fn commit_member_id(&self) -> &str {
        if self.commit_generation() >= 0 {
            &self.member_id
        } else {
            ""
        }
    }

    pub(super) fn next_action(&self) -> Option<Instant> {
        if self.in_flight { None } else { self.next }
    }

    /// A new subscription: rebalance.
    pub(super) fn resubscribe(&mut self, topics: Vec<Arc<str>>, now: Instant) {
        self.topics = topics;
        if matches!(self.stage, Stage::Stable | Stage::Syncing) {
            self.stage = Stage::Revoking;
        }
        self.next = Some(now);
    }

    /// The coordinator started a rebalance.
    fn rebalance(&mut self, now: Instant) {
        self.stage = if self.cooperative() {
            Stage::Joining
        } else {
            Stage::Revoking
        };
        self.next = Some(now);
    }

    pub(super) fn leave(&mut self, now: Instant) {
        if self.stage != Stage::Unsubscribed {
            self.stage = Stage::Leaving;
            self.next = Some(now);
        }
    }
}

/// The subscription a member joins with (v3, as the Java client sends it): its topics, the
/// partitions it owns and their generation, for the sticky assignors, and its rack.
fn subscription(topics: &[Arc<str>], owned: &[Tp], generation: i32, rack: &str) -> Bytes {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (t, p) in owned {
        by_topic.entry(t).or_default().push(*p);
    }
    let mut buf = BytesMut::new();
    buf.put_i16(3);
    let s = ConsumerProtocolSubscription {
        topics: topics.iter().map(|t| t.as_ref().into()).collect(),
        owned_partitions: by_topic
            .into_iter()
            .map(
                |(t, partitions)| consumer_protocol_subscription::TopicPartition {
                    topic: t.into(),
                    partitions,
                },
            )
            .collect(),
        generation_id: generation,
        rack_id: (!rack.is_empty()).then(|| rack.into()),
        ..Default::default()
    };
    // A subscription of valid names always encodes.
    let _ = s.encode(3, &mut buf);
    buf.freeze()
}

/// A member's subscription, of any version (a newer one read as the newest known, as
/// its format promises).
fn decode_subscription(mut b: Bytes) -> Member {
    if b.len() < 2 {
        return Member::default();
    }
    let v = b.get_i16().clamp(0, 3);
    ConsumerProtocolSubscription::decode(v, &mut b)
        .map(|s| Member {
            topics: s.topics.iter().map(ToString::to_string).collect(),
            owned: s
                .owned_partitions
                .iter()
                .flat_map(|t| t.partitions.iter().map(move |p| (t.topic.to_string(), *p)))
                .collect(),
            generation: if v >= 2 { s.generation_id } else { -1 },
        })
        .unwrap_or_default()
}

fn encode_assignment(parts: &BTreeMap<String, Vec<i32>>) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    let a = ConsumerProtocolAssignment {
        assigned_partitions: parts
            .iter()
            .map(|(t, ps)| TopicPartition {
                topic: t.as_str().into(),
                partitions: ps.clone(),
            })
            .collect(),
        ..Default::default()
    };
    let _ = a.encode(0, &mut buf);
    buf.freeze()
}

fn decode_assignment(mut b: Bytes) -> Option<Vec<(String, i32)>> {
    if b.is_empty() {
        return Some(Vec::new());
    }
    if b.len() < 2 {
        return None;
    }
    let v = b.get_i16().clamp(0, 3);
    let a = ConsumerProtocolAssignment::decode(v, &mut b).ok()?;
    Some(
        a.assigned_partitions
            .iter()
            .flat_map(|t| t.partitions.iter().map(move |p| (t.topic.to_string(), *p)))
            .collect(),
    )
}

impl Consumer {
    pub(super) fn classic_step(&mut self, now: Instant) {
        let pending = self.commits_pending();
        let Some(c) = &mut self.classic else {
            return;
        };
        if c.in_flight || c.next.is_none_or(|t| t > now) || c.stage == Stage::Unsubscribed {
            return;
        }
        if c.stage == Stage::Leaving && pending {
            // The member's last commit goes while its generation still counts.
            return;
        }
        // A revocation held for the application: the member heartbeats meanwhile, so the
        // coordinator keeps it for the rebalance.
        let held = if c.stage == Stage::Revoking {
            let cooperative = c.cooperative();
            match self.classic_revoking(now, pending, cooperative) {
                Some(held) => held,
                None => return,
            }
        } else {
            false
        };
        let Some(node) = self.group.as_ref().and_then(|g| g.coordinator) else {
            return;
        };
        let Some(addr) = self.net.metadata.address(Node::Broker(node)).cloned() else {
            return;
        };
        let group_id = self
            .group
            .as_ref()
            .map(|g| g.id.clone())
            .unwrap_or_default();
        // The leader assigns once metadata holds every topic a member subscribes to.
        let Some(assignments) = self.leader_assignment() else {
            return;
        };
        let config = &self.config;
        let instance = config.group_instance_id.as_deref().map(Into::into);
        let session = i32::try_from(config.session_timeout.as_millis()).unwrap_or(i32::MAX);
        let rebalance = i32::try_from(config.max_poll_interval.as_millis()).unwrap_or(i32::MAX);
        let assignors = config.assignors.clone();
        let deadline = now + config.network.request_timeout.max(config.max_poll_interval);
        let Some(conn) = self
            .net
            .pool
            .ensure(Node::Broker(node), Purpose::Control, &addr, now)
        else {
            return;
        };
        let owned: Vec<Tp> = self.partitions.keys().cloned().collect();
        let Some(c) = &mut self.classic else {
            return;
        };
        // A held member heartbeats as a stable one does.
        let sent = match if held { Stage::Stable } else { c.stage } {
            Stage::Joining => {
                let metadata = subscription(&c.topics, &owned, c.generation, &config.client_rack);
                let req = JoinGroupRequest {
                    group_id: group_id.as_str().into(),
                    session_timeout_ms: session,
                    rebalance_timeout_ms: rebalance,
                    member_id: c.member_id.as_str().into(),
                    group_instance_id: instance,
                    protocol_type: "consumer".into(),
                    protocols: join_protocols(&assignors, &metadata),
                    ..Default::default()
                };
                // JoinGroup waits at the broker for the whole group: up to the rebalance
                // timeout, not the request timeout.
                conn.send(&req, Tag::Classic, deadline, &mut self.net.transmits)
            }
            Stage::Syncing => {
                // The protocol fields exist from v5 on; an older request cannot carry them.
                let named = conn.version(ApiKey::SyncGroup).is_some_and(|v| v >= 5);
                let req = SyncGroupRequest {
                    group_id: group_id.as_str().into(),
                    generation_id: c.generation,
                    member_id: c.member_id.as_str().into(),
                    group_instance_id: instance,
                    protocol_type: named.then(|| "consumer".into()),
                    protocol_name: named.then(|| c.protocol.as_str().into()),
                    assignments: sync_assignments(assignments.as_ref()),
                    ..Default::default()
                };
                conn.send(&req, Tag::Classic, deadline, &mut self.net.transmits)
            }
            Stage::Stable => {
                let req = heartbeat_request(&group_id, c, instance);
                conn.send(
                    &req,
                    Tag::Classic,
                    now + config.network.request_timeout,
                    &mut self.net.transmits,
                )
            }
            Stage::Leaving => {
                let batched = conn.version(ApiKey::LeaveGroup).is_some_and(|v| v >= 3);
                let req = leave_request(&group_id, &c.member_id, instance, batched);
                conn.send(
                    &req,
                    Tag::Classic,
                    now + config.network.request_timeout,
                    &mut self.net.transmits,
                )
            }
            Stage::Revoking | Stage::Unsubscribed => None,
        };
        match sent {
            Some(_) => c.in_flight = true,
            // The broker lacks the API (or a version that can carry the request): retrying
            // cannot help.
            None if c.stage != Stage::Revoking && c.stage != Stage::Unsubscribed => {
                self.classic_refused(ErrorCode::UnsupportedVersion);
            }
            None => {}
        }
    }

    /// A member revoking before it rejoins: whether it holds the revocation for the
    /// application (and heartbeats meanwhile), or `None` while the commit of what it gave
    /// up is still to be answered.
    fn classic_revoking(&mut self, now: Instant, pending: bool, cooperative: bool) -> Option<bool> {
        // Eager: commit and give up everything before rejoining (a cooperative member
        // gave up what it had to when its assignment came, or holds it).
        if self.hold.is_none() && !self.partitions.is_empty() && !cooperative {
            let all: Vec<Tp> = self.partitions.keys().cloned().collect();
            if !self.begin_hold(&all, now) {
                self.classic_give_up(&all);
            }
        }
        if self.holding(now) {
            return Some(true);
        }
        if let Some(h) = self.hold.take() {
            self.classic_give_up(&h.partitions);
        }
        // The commit of what was given up goes first; its answer comes back here.
        if pending || self.commits_pending() {
            return None;
        }
        if let Some(c) = &mut self.classic {
            c.stage = Stage::Joining;
        }
        Some(false)
    }

    /// What the leader hands out in SyncGroup: `Some(None)` for a member that does not
    /// lead (or is not syncing), `None` while metadata still lacks a subscribed topic.
    fn leader_assignment(&mut self) -> Option<Option<assignor::Assignment>> {
        let assignments = match self.classic.as_ref().and_then(|c| c.leading.clone()) {
            Some(members)
                if self
                    .classic
                    .as_ref()
                    .is_some_and(|c| c.stage == Stage::Syncing) =>
            {
                let mut counts = BTreeMap::new();
                let mut missing = false;
                for t in members.values().flat_map(|m| &m.topics) {
                    match self.topics.get(t.as_str()) {
                        Some(Some(meta)) => {
                            counts.insert(
                                t.clone(),
                                i32::try_from(meta.partitions.len()).unwrap_or(0),
                            );
                        }
                        Some(None) => missing = true,
                        None => {
                            self.topics.insert(t.as_str().into(), None);
                            missing = true;
                        }
                    }
                }
                if missing {
                    self.net.metadata.request_refresh();
                    return None;
                }
                let protocol = self
                    .classic
                    .as_ref()
                    .map(|c| c.protocol.clone())
                    .unwrap_or_default();
                // The application's own assignor by its name, else a built-in one.
                let assignor = self
                    .config
                    .assignors
                    .iter()
                    .find(|a| a.name() == protocol)
                    .cloned()
                    .or_else(|| Assignor::parse(&protocol))
                    .unwrap_or(Assignor::Range);
                Some(assignor::assign(&assignor, &members, &counts))
            }
            _ => None,
        };
        Some(assignments)
    }

    pub(super) fn classic_lost(&mut self, now: Instant) {
        if let Some(c) = &mut self.classic {
            c.in_flight = false;
            c.next = Some(now + self.config.network.retry_backoff);
        }
    }

    /// Partitions gone without a commit (the member was fenced): join again.
    fn classic_fenced(&mut self, now: Instant, forget_id: bool) {
        self.drop_hold();
        let lost = self.give_up_all();
        if !lost.is_empty() {
            self.events.push_back(ConsumerEvent::Lost {
                partitions: super::named(lost),
            });
        }
        if let Some(c) = &mut self.classic {
            c.stage = Stage::Joining;
            c.generation = -1;
            c.leading = None;
            if forget_id {
                c.member_id.clear();
            }
            c.next = Some(now);
        }
    }

    pub(super) fn on_classic(&mut self, conn: ConnId, req: InFlight, frame: Bytes, now: Instant) {
        let backoff = now + self.config.network.retry_backoff;
        if let Some(c) = &mut self.classic {
            c.in_flight = false;
            if c.stage == Stage::Leaving
                && matches!(
                    req.api,
                    ApiKey::JoinGroup | ApiKey::SyncGroup | ApiKey::Heartbeat
                )
            {
                // Asked before the application unsubscribed: whatever the answer, the
                // member leaves now (taking it up would rejoin and lose the leave).
                c.next = Some(now);
                return;
            }
        }
        let decoded = match req.api {
            ApiKey::JoinGroup => frame::decode_response_as::<JoinGroupResponse>(req.version, frame)
                .map(|(_, r)| self.on_join_group(&r, now, backoff)),
            ApiKey::SyncGroup => frame::decode_response_as::<SyncGroupResponse>(req.version, frame)
                .map(|(_, r)| self.on_sync_group(&r, now, backoff)),
            ApiKey::Heartbeat => frame::decode_response_as::<HeartbeatResponse>(req.version, frame)
                .map(|(_, r)| self.on_classic_heartbeat(&r, now, backoff)),
            ApiKey::LeaveGroup => {
                // Whatever the answer, the member is out; the coordinator expires it if
                // the leave did not arrive.
                let _ = frame::decode_response_as::<LeaveGroupResponse>(req.version, frame);
                self.on_left();
                Ok(())
            }
            _ => Ok(()),
        };
        if decoded.is_err() {
            self.classic_lost(now);
            self.lose(conn, now, true);
        }
    }

    /// The coordinator moved: find it again after the backoff.
    fn classic_coordinator_moved(&mut self, backoff: Instant) {
        if let Some(g) = &mut self.group {
            g.coordinator = None;
            g.retry_at = Some(backoff);
        }
        if let Some(c) = &mut self.classic {
            c.next = Some(backoff);
        }
    }

    fn on_join_group(&mut self, r: &JoinGroupResponse, now: Instant, backoff: Instant) {
        match ErrorCode::from_code(r.error_code) {
            ErrorCode::None => {}
            ErrorCode::MemberIdRequired => {
                // KIP-394: join again with the id the coordinator gave.
                if let Some(c) = &mut self.classic {
                    c.member_id = r.member_id.to_string();
                    c.next = Some(now);
                }
                return;
            }
            ErrorCode::UnknownMemberId => return self.classic_fenced(now, true),
            ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable => {
                return self.classic_coordinator_moved(backoff);
            }
            ErrorCode::CoordinatorLoadInProgress | ErrorCode::RebalanceInProgress => {
                if let Some(c) = &mut self.classic {
                    c.next = Some(backoff);
                }
                return;
            }
            other => return self.classic_refused(other),
        }
        let Some(c) = &mut self.classic else {
            return;
        };
        if c.stage != Stage::Joining {
            return;
        }
        c.member_id = r.member_id.to_string();
        c.generation = r.generation_id;
        c.protocol = r
            .protocol_name
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        c.leading = (r.leader == r.member_id).then(|| {
            r.members
                .iter()
                .map(|m| {
                    (
                        m.member_id.to_string(),
                        decode_subscription(m.metadata.clone()),
                    )
                })
                .collect()
        });
        c.stage = Stage::Syncing;
        c.next = Some(now);
    }

    fn on_sync_group(&mut self, r: &SyncGroupResponse, now: Instant, backoff: Instant) {
        match ErrorCode::from_code(r.error_code) {
            ErrorCode::None => {}
            ErrorCode::RebalanceInProgress => {
                if let Some(c) = &mut self.classic {
                    c.stage = Stage::Joining;
                    c.next = Some(now);
                }
                return;
            }
            ErrorCode::UnknownMemberId => return self.classic_fenced(now, true),
            ErrorCode::IllegalGeneration => return self.classic_fenced(now, false),
            ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable => {
                self.classic_coordinator_moved(backoff);
                if let Some(c) = &mut self.classic {
                    c.stage = Stage::Joining;
                }
                return;
            }
            other => return self.classic_refused(other),
        }
        let Some(parts) = decode_assignment(r.assignment.clone()) else {
            return self.classic_refused(ErrorCode::InconsistentGroupProtocol);
        };
        let mut assigned = Vec::new();
        for (t, p) in parts {
            let name: Arc<str> = match self.topics.get_key_value(t.as_str()) {
                Some((k, _)) => k.clone(),
                None => {
                    let k: Arc<str> = t.as_str().into();
                    self.topics.insert(k.clone(), None);
                    self.net.metadata.request_refresh();
                    k
                }
            };
            assigned.push((name, p));
        }
        // Kept partitions go on as they were; what is no longer ours is given up
        // first, then the new ones start from their committed offsets.
        let revoked: Vec<Tp> = self
            .partitions
            .keys()
            .filter(|tp| !assigned.contains(tp))
            .cloned()
            .collect();
        if !revoked.is_empty() && !self.begin_hold(&revoked, now) {
            self.classic_give_up(&revoked);
        }
        let mut added = Vec::new();
        for tp in assigned {
            if self.partitions.contains_key(&tp) {
                continue;
            }
            self.partitions
                .insert(tp.clone(), super::PartitionState::new(Position::Committed));
            added.push(tp);
        }
        if !added.is_empty() {
            self.events.push_back(ConsumerEvent::Assigned {
                partitions: super::named(added),
            });
        }
        if let Some(c) = &mut self.classic {
            c.leading = None;
            if !revoked.is_empty() && c.cooperative() {
                // KIP-429: what this member gave up goes to its new owner in the
                // rebalance its rejoining starts.
                c.stage = Stage::Revoking;
                c.next = Some(now);
            } else {
                c.stage = Stage::Stable;
                c.next = Some(now + self.config.heartbeat_interval);
            }
        }
    }

    fn on_classic_heartbeat(&mut self, r: &HeartbeatResponse, now: Instant, backoff: Instant) {
        let Some(c) = &mut self.classic else {
            return;
        };
        let hold_until = self
            .hold
            .as_ref()
            .filter(|h| h.waiting(now))
            .map(super::revocation::Hold::until);
        match ErrorCode::from_code(r.error_code) {
            // Holding a revocation, the member is in the rebalance already: it
            // heartbeats until the application releases it.
            ErrorCode::None | ErrorCode::RebalanceInProgress if c.stage == Stage::Revoking => {
                // Released meanwhile: go on at once.
                let at = now + self.config.heartbeat_interval;
                c.next = Some(hold_until.map_or(now, |u| u.min(at)));
            }
            ErrorCode::None => {
                if c.stage == Stage::Stable {
                    c.next = Some(now + self.config.heartbeat_interval);
                }
            }
            ErrorCode::RebalanceInProgress => {
                if c.stage == Stage::Stable {
                    c.rebalance(now);
                }
            }
            ErrorCode::UnknownMemberId => self.classic_fenced(now, true),
            ErrorCode::IllegalGeneration => self.classic_fenced(now, false),
            ErrorCode::FencedInstanceId => {
                // Another instance with this group.instance.id took over: this one
                // stops for good (fatal for the Java client too), its partitions
                // lost, rather than fence the newer one in turn.
                self.classic_fenced(now, false);
                self.classic_refused(ErrorCode::FencedInstanceId);
            }
            ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable => {
                self.classic_coordinator_moved(backoff)
            }
            _ => c.next = Some(backoff),
        }
    }

    /// The member left (whatever the coordinator answered): everything is given up.
    fn on_left(&mut self) {
        self.drop_hold();
        let left = self.give_up_all();
        if !left.is_empty() {
            self.events.push_back(ConsumerEvent::Revoked {
                partitions: super::named(left),
            });
        }
        if let Some(c) = &mut self.classic {
            c.stage = Stage::Unsubscribed;
            c.next = None;
            c.generation = -1;
        }
    }

    /// Gives partitions up: with auto commit, their handed-out positions are committed
    /// first; their unread batches go.
    fn classic_give_up(&mut self, parts: &[Tp]) {
        // Records fetched but not yet handed out are read again by the next owner: commit
        // where the caller got to, not where fetching got to.
        let offsets: Vec<(Tp, i64)> = parts
            .iter()
            .filter_map(|tp| Some((tp.clone(), self.handed_to(tp)?)))
            .collect();
        // Without auto commit the application commits (in a transaction, say): positions
        // it has not committed must not be committed for it.
        if !offsets.is_empty() && self.config.enable_auto_commit {
            self.queue_commit(offsets);
        }
        for tp in parts {
            self.partitions.remove(tp);
        }
        self.drop_batches_of(parts);
        self.events.push_back(ConsumerEvent::Revoked {
            partitions: super::named(parts.iter().cloned()),
        });
    }

    /// Has the classic member act at once (a held revocation was released).
    pub(super) fn wake_classic(&mut self, now: Instant) {
        if let Some(c) = &mut self.classic
            && c.stage == Stage::Revoking
            && !c.in_flight
        {
            c.next = Some(now);
        }
    }

    fn classic_refused(&mut self, code: ErrorCode) {
        if let Some(c) = &mut self.classic {
            c.stage = Stage::Unsubscribed;
            c.next = None;
        }
        self.events.push_back(ConsumerEvent::GroupError {
            error: ConsumeError::Broker(code),
        });
    }
}

/// One JoinGroup protocol per assignor, each with the member's subscription.
fn join_protocols(assignors: &[Assignor], metadata: &Bytes) -> Vec<JoinGroupRequestProtocol> {
    assignors
        .iter()
        .map(|a| JoinGroupRequestProtocol {
            name: a.name().into(),
            metadata: metadata.clone(),
            ..Default::default()
        })
        .collect()
}

/// The leader's SyncGroup assignments, each member's encoded (none from a follower).
fn sync_assignments(assignments: Option<&assignor::Assignment>) -> Vec<SyncGroupRequestAssignment> {
    assignments
        .into_iter()
        .flatten()
        .map(|(m, parts)| SyncGroupRequestAssignment {
            member_id: m.as_str().into(),
            assignment: encode_assignment(parts),
            ..Default::default()
        })
        .collect()
}

/// A member's Heartbeat in its generation.
fn heartbeat_request(
    group_id: &str,
    c: &Classic,
    instance: Option<kasio_proto::ByteStr>,
) -> HeartbeatRequest {
    HeartbeatRequest {
        group_id: group_id.into(),
        generation_id: c.generation,
        member_id: c.member_id.as_str().into(),
        group_instance_id: instance,
        ..Default::default()
    }
}

/// LeaveGroup: v3 and later name the leaving members in a list; earlier ones carry one
/// member id at the top.
fn leave_request(
    group_id: &str,
    member_id: &str,
    instance: Option<kasio_proto::ByteStr>,
    batched: bool,
) -> LeaveGroupRequest {
    if batched {
        LeaveGroupRequest {
            group_id: group_id.into(),
            members: vec![MemberIdentity {
                member_id: member_id.into(),
                group_instance_id: instance,
                ..Default::default()
            }],
            ..Default::default()
        }
    } else {
        LeaveGroupRequest {
            group_id: group_id.into(),
            member_id: member_id.into(),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_and_assignments_round_trip() {
        let topics: Vec<Arc<str>> = vec!["a".into(), "b".into()];
        let owned = vec![("a".into(), 1), ("a".into(), 0), ("b".into(), 4)];
        let m = decode_subscription(subscription(&topics, &owned, 7, "r1"));
        assert_eq!(m.topics, ["a", "b"]);
        assert_eq!(
            m.owned,
            [
                ("a".to_string(), 1),
                ("a".to_string(), 0),
                ("b".to_string(), 4)
            ]
        );
        assert_eq!(m.generation, 7);
        let mut parts = BTreeMap::new();
        parts.insert("a".to_string(), vec![0, 2]);
        let got = decode_assignment(encode_assignment(&parts)).unwrap();
        assert_eq!(got, [("a".to_string(), 0), ("a".to_string(), 2)]);
        assert_eq!(decode_assignment(Bytes::new()), Some(Vec::new()));
        assert_eq!(decode_assignment(Bytes::from_static(&[0])), None);
    }
}
