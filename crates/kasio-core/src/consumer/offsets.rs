//! The group's committed offsets for a consumer that assigns its own partitions: finding
//! the coordinator, starting from committed offsets, and committing.

use super::{ConsumeError, Consumer, ConsumerEvent, OffsetReset, Position, Seek, Tp};
use crate::{
    config::BrokerAddress,
    conn::{ConnId, InFlight, Node, Purpose, Tag},
};
use bytes::Bytes;
use kasio_proto::{
    ApiKey, ErrorCode, frame,
    messages::{
        FindCoordinatorResponse, OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest,
        OffsetFetchResponse,
        offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic},
        offset_fetch_request::{
            OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
        },
    },
};
use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::Arc,
    time::Instant,
};

/// Where the group's offsets live, and the commits waiting to go there.
#[derive(Debug)]
pub(super) struct GroupOffsets {
    pub(super) id: String,
    pub(super) coordinator: Option<i32>,
    finding: bool,
    pub(super) retry_at: Option<Instant>,
    pub(super) commits: VecDeque<Commit>,
}

/// Names one commit, so its [`CommitOutcome`] can be told from the others'.
///
/// ```
/// # use kasio_core::{Consumer, ConsumerConfig};
/// # let now = std::time::Instant::now();
/// let mut config = ConsumerConfig::new("localhost:9092").unwrap();
/// config.set("group.id", "billing").unwrap();
/// let mut consumer = Consumer::new(config, now, 7).unwrap();
/// let id = consumer.commit(&[], now).unwrap();
/// // Nothing to commit: done at once.
/// let outcome = consumer.poll_commit().unwrap();
/// assert_eq!((outcome.id, outcome.error), (id, None));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommitId(pub(crate) u64);

/// How a commit ended: every offset stored, or the first error.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommitOutcome {
    /// Which commit: what [`Consumer::commit`] or [`Consumer::commit_positions`]
    /// returned; auto commits and a rebalance's commits have ids of their own.
    pub id: CommitId,
    /// What was committed.
    pub offsets: Vec<crate::TopicPartitionOffset>,
    /// The first error, if any.
    pub error: Option<ConsumeError>,
}

/// A commit queued or in flight.
#[derive(Debug)]
pub(super) struct Commit {
    id: CommitId,
    offsets: Vec<(Tp, i64)>,
    /// When an application's commit gives up (`default.api.timeout.ms` after it was
    /// asked for); the consumer's own commits (auto commit, rebalances) retry until done.
    expires: Option<Instant>,
}

/// The consumer's commits: those in flight by id, those ended and not yet polled, and
/// auto commit's schedule with what it last stored (so an unchanged position is not
/// committed again).
#[derive(Debug, Default)]
pub(super) struct Commits {
    pub(super) in_flight: HashMap<u64, Commit>,
    /// Commits that ended, for [`Consumer::poll_commit`].
    pub(super) outcomes: VecDeque<CommitOutcome>,
    /// The last [`CommitId`] given out.
    pub(super) next_id: u64,
    /// When the next auto commit is due.
    pub(super) next_auto: Option<Instant>,
    pub(super) auto_committed: BTreeMap<Tp, i64>,
}

impl GroupOffsets {
    pub(super) fn new(id: String) -> Self {
        Self {
            id,
            coordinator: None,
            finding: false,
            retry_at: None,
            commits: VecDeque::new(),
        }
    }

    pub(super) fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }
}

/// Errors after which the coordinator must be looked up again.
fn coordinator_moved(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable
    )
}

fn retry_later(code: ErrorCode) -> bool {
    coordinator_moved(code) || code == ErrorCode::CoordinatorLoadInProgress || code.is_retriable()
}

impl Consumer {
    /// The generation (classic) or member epoch (KIP-848) and member id that commits
    /// carry, so the coordinator can fence a zombie; -1 and empty outside a group.
    fn commit_identity(&self) -> (i32, String) {
        match (&self.member, &self.classic) {
            (Some(m), _) => (m.commit_epoch(), m.commit_member_id().to_string()),
            (None, Some(c)) => (c.commit_generation(), c.commit_member_id().to_string()),
            (None, None) => (-1, String::new()),
        }
    }

    /// The group membership a transactional producer's `send_offsets_to_transaction`
    /// needs (KIP-447), as of now; `None` without a `group.id`.
    #[must_use]
    pub fn group_metadata(&self) -> Option<crate::GroupMetadata> {
        let group_id = self.config.group_id.clone()?;
        let (generation_id, member_id) = self.commit_identity();
        Some(crate::GroupMetadata {
            group_id,
            generation_id,
            member_id,
            group_instance_id: self.config.group_instance_id.clone(),
        })
    }

    /// Commits offsets for the group (`group.id`): each is the offset of the next record
    /// to read. [`poll_commit`](Self::poll_commit) reports the outcome under the returned
    /// id: at once when `offsets` is empty, and at the latest `default.api.timeout.ms` after
    /// this call ([`ConsumeError::CommitTimeout`]) if the coordinator never stores them.
    ///
    /// # Errors
    /// [`ConsumeError::NoGroup`] without a `group.id`.
    pub fn commit(
        &mut self,
        offsets: &[(&str, i32, i64)],
        now: Instant,
    ) -> Result<CommitId, ConsumeError> {
        let list = offsets
            .iter()
            .map(|&(t, p, o)| ((Arc::<str>::from(t), p), o))
            .collect();
        self.commit_list(list, now)
    }

    /// Commits the position of every assigned partition that has one, as
    /// [`commit`](Self::commit) does; with no partitions, the commit is done at once.
    ///
    /// # Errors
    /// [`ConsumeError::NoGroup`] without a `group.id`.
    pub fn commit_positions(&mut self, now: Instant) -> Result<CommitId, ConsumeError> {
        let positions = self.handed_out(true);
        self.commit_list(positions, now)
    }

    /// The outcome of a commit, in the order they end.
    pub fn poll_commit(&mut self) -> Option<CommitOutcome> {
        self.commits.outcomes.pop_front()
    }

    fn commit_list(
        &mut self,
        offsets: Vec<(Tp, i64)>,
        now: Instant,
    ) -> Result<CommitId, ConsumeError> {
        if self.group.is_none() {
            return Err(ConsumeError::NoGroup);
        }
        let id = self.next_commit_id();
        if offsets.is_empty() {
            self.commits.outcomes.push_back(CommitOutcome {
                id,
                offsets: Vec::new(),
                error: None,
            });
            return Ok(id);
        }
        let expires = Some(now + self.config.default_api_timeout);
        if let Some(g) = &mut self.group {
            g.commits.push_back(Commit {
                id,
                offsets,
                expires,
            });
        }
        self.new_deadline = true;
        self.drain(now);
        Ok(id)
    }

    fn next_commit_id(&mut self) -> CommitId {
        self.commits.next_id += 1;
        CommitId(self.commits.next_id)
    }

    /// Ends the application's commits whose time is up, queued or in flight (an answer
    /// that comes later is ignored).
    pub(super) fn expire_commits(&mut self, now: Instant) {
        let expired = |c: &Commit| c.expires.is_some_and(|at| at <= now);
        let mut ended = Vec::new();
        if let Some(g) = &mut self.group
            && g.commits.iter().any(expired)
        {
            for c in std::mem::take(&mut g.commits) {
                if expired(&c) {
                    ended.push(c);
                } else {
                    g.commits.push_back(c);
                }
            }
        }
        let late: Vec<u64> = self
            .commits
            .in_flight
            .iter()
            .filter(|(_, c)| expired(c))
            .map(|(id, _)| *id)
            .collect();
        for id in late {
            if let Some(c) = self.commits.in_flight.remove(&id) {
                self.requests.remove(&id);
                ended.push(c);
            }
        }
        let timeout = self.config.default_api_timeout;
        for c in ended {
            self.commits.outcomes.push_back(CommitOutcome {
                id: c.id,
                offsets: c
                    .offsets
                    .into_iter()
                    .map(|((t, p), o)| (t, p, o).into())
                    .collect(),
                error: Some(ConsumeError::CommitTimeout(timeout)),
            });
        }
    }

    /// When the first of the application's commits gives up.
    pub(super) fn next_commit_expiry(&self) -> Option<Instant> {
        let queued = self
            .group
            .iter()
            .flat_map(|g| g.commits.iter())
            .filter_map(|c| c.expires);
        let in_flight = self.commits.in_flight.values().filter_map(|c| c.expires);
        queued.chain(in_flight).min()
    }

    /// Per partition, the offset after what the caller was handed (fetched batches not yet
    /// taken are not counted); without `with_last`, the last batch taken counts as not
    /// done yet.
    pub(super) fn handed_out(&self, with_last: bool) -> Vec<(Tp, i64)> {
        self.partitions
            .iter()
            .filter_map(|(tp, s)| {
                if !matches!(s.position, Position::At(_)) {
                    return None;
                }
                if !with_last
                    && let Some((held, start)) = self.fetching.in_hand()
                    && held == tp
                {
                    return Some((tp.clone(), *start));
                }
                Some((tp.clone(), self.handed_to(tp)?))
            })
            .collect()
    }

    /// `enable.auto.commit` on leaving the group, as the Java client on close: everything
    /// handed out, the last batch taken included, if it moved since the last auto commit.
    pub(super) fn commit_before_leaving(&mut self) {
        if self.config.enable_auto_commit && self.group.is_some() {
            self.commit_moved(true);
        }
    }

    /// Commits the handed-out positions that moved since the last auto commit.
    fn commit_moved(&mut self, with_last: bool) {
        let moved: Vec<(Tp, i64)> = self
            .handed_out(with_last)
            .into_iter()
            .filter(|(tp, o)| self.commits.auto_committed.get(tp) != Some(o))
            .collect();
        if moved.is_empty() {
            return;
        }
        for (tp, o) in &moved {
            self.commits.auto_committed.insert(tp.clone(), *o);
        }
        self.queue_commit(moved);
    }

    /// `enable.auto.commit`: every interval, what moved since the last auto commit.
    pub(super) fn auto_commit(&mut self, now: Instant) {
        if !self.config.enable_auto_commit || self.group.is_none() || self.partitions.is_empty() {
            self.commits.next_auto = None;
            return;
        }
        let Some(due) = self.commits.next_auto else {
            self.commits.next_auto = Some(now + self.config.auto_commit_interval);
            return;
        };
        if due > now {
            return;
        }
        self.commits.next_auto = Some(now + self.config.auto_commit_interval);
        self.commit_moved(false);
    }

    /// Sends what the group needs next: the coordinator's address, then committed
    /// offsets to look up, then the next commit in line.
    pub(super) fn send_group(&mut self, now: Instant) {
        let Some(group) = &self.group else {
            return;
        };
        let lookups = self
            .partitions
            .values()
            .any(|s| s.position == Position::Committed);
        let committing = self
            .requests
            .values()
            .any(|(_, _, kind)| *kind == super::RequestKind::Commit);
        let member = self.member.as_ref().is_some_and(|m| m.wants_coordinator())
            || self.classic.as_ref().is_some_and(|c| c.wants_coordinator());
        if !lookups && !member && (group.commits.is_empty() || committing) {
            return;
        }
        if group.retry_at.is_some_and(|t| t > now) {
            return;
        }
        let deadline = now + self.config.network.request_timeout;
        let Some(node) = group.coordinator else {
            if !group.finding {
                self.find_coordinator(deadline, now);
            }
            return;
        };
        let Some(addr) = self.net.metadata.address(Node::Broker(node)).cloned() else {
            if let Some(g) = &mut self.group {
                g.coordinator = None;
            }
            return;
        };
        let group_id = group.id.clone();
        if self
            .net
            .pool
            .ensure(Node::Broker(node), Purpose::Control, &addr, now)
            .is_none()
        {
            return;
        }
        if lookups {
            self.send_offset_fetch(node, &group_id, deadline);
        }
        if !committing {
            self.send_offset_commit(node, &group_id, deadline);
        }
    }

    /// Asks any broker where the group's coordinator is.
    fn find_coordinator(&mut self, deadline: Instant, now: Instant) {
        let Some(key) = self.group.as_ref().map(|g| g.id.clone()) else {
            return;
        };
        let Some(id) = self
            .net
            .metadata
            .control_conn(&mut self.net.pool, &mut self.rng, now)
        else {
            return;
        };
        let Some(conn) = self.net.pool.get_mut(id) else {
            return;
        };
        let Some(version) = conn.version(ApiKey::FindCoordinator) else {
            return;
        };
        let req = crate::coordinator::request(&key, crate::coordinator::GROUP, version);
        if conn
            .send(
                &req,
                Tag::FindCoordinator,
                deadline,
                &mut self.net.transmits,
            )
            .is_some()
            && let Some(g) = &mut self.group
        {
            g.finding = true;
        }
    }

    /// Looks up the committed offsets of the partitions that start from them.
    fn send_offset_fetch(&mut self, node: i32, group_id: &str, deadline: Instant) {
        let Some(conn) = self.net.pool.get_mut(conn_id(&self.net.pool, node)) else {
            return;
        };
        let Some(version) = conn.version(ApiKey::OffsetFetch) else {
            return;
        };
        let tps: Vec<Tp> = self
            .partitions
            .iter()
            .filter(|(_, s)| s.position == Position::Committed)
            .map(|(tp, _)| tp.clone())
            .collect();
        let mut names: Vec<(Arc<str>, Vec<i32>)> = Vec::new();
        for (t, p) in &tps {
            match names.iter_mut().find(|(n, _)| n == t) {
                Some((_, ps)) => ps.push(*p),
                None => names.push((t.clone(), vec![*p])),
            }
        }
        let req = offset_fetch_request(group_id, &names, version);
        let id = self.next_request;
        self.next_request += 1;
        if conn
            .send(
                &req,
                Tag::OffsetFetch(id),
                deadline,
                &mut self.net.transmits,
            )
            .is_some()
        {
            for tp in &tps {
                if let Some(s) = self.partitions.get_mut(tp) {
                    s.position = Position::FetchingCommitted { request: id };
                }
            }
            self.requests
                .insert(id, (node, tps, super::RequestKind::OffsetFetch));
        }
    }

    /// Sends the next commit in line, if any.
    fn send_offset_commit(&mut self, node: i32, group_id: &str, deadline: Instant) {
        let (generation, member_id) = self.commit_identity();
        let Some(conn) = self.net.pool.get_mut(conn_id(&self.net.pool, node)) else {
            return;
        };
        let Some(commit) = self.group.as_mut().and_then(|g| g.commits.pop_front()) else {
            return;
        };
        let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
        for ((t, p), o) in &commit.offsets {
            let part = OffsetCommitRequestPartition {
                partition_index: *p,
                committed_offset: *o,
                committed_leader_epoch: -1,
                committed_metadata: Some("".into()),
                ..Default::default()
            };
            match topics.iter_mut().find(|x| *x.name == **t) {
                Some(x) => x.partitions.push(part),
                None => topics.push(OffsetCommitRequestTopic {
                    name: t.as_ref().into(),
                    partitions: vec![part],
                    ..Default::default()
                }),
            }
        }
        let req = OffsetCommitRequest {
            group_id: group_id.into(),
            generation_id_or_member_epoch: generation,
            member_id: member_id.as_str().into(),
            retention_time_ms: -1,
            topics,
            ..Default::default()
        };
        let id = self.next_request;
        self.next_request += 1;
        if conn
            .send(
                &req,
                Tag::OffsetCommit(id),
                deadline,
                &mut self.net.transmits,
            )
            .is_some()
        {
            self.commits.in_flight.insert(id, commit);
            self.requests
                .insert(id, (node, Vec::new(), super::RequestKind::Commit));
        } else if let Some(g) = &mut self.group {
            g.commits.push_front(commit);
        }
    }

    /// A group request failed or its connection went: look again after the backoff.
    /// Queues a commit and returns the request id it will get... once sent; the revocation
    /// waits for the commit queued here (the next one in order).
    pub(super) fn queue_commit(&mut self, offsets: Vec<(Tp, i64)>) -> bool {
        if self.group.is_none() {
            return false;
        }
        let id = self.next_commit_id();
        if let Some(g) = &mut self.group {
            g.commits.push_back(Commit {
                id,
                offsets,
                expires: None,
            });
        }
        true
    }

    /// Commits still queued or in flight.
    pub(super) fn commits_pending(&self) -> bool {
        !self.commits.in_flight.is_empty()
            || self.group.as_ref().is_some_and(|g| !g.commits.is_empty())
    }

    pub(super) fn group_lost(&mut self, tag: Tag, now: Instant) {
        let backoff = now + self.config.network.retry_backoff;
        match tag {
            Tag::FindCoordinator => {
                if let Some(g) = &mut self.group {
                    g.finding = false;
                    g.retry_at = Some(backoff);
                }
            }
            Tag::OffsetFetch(id) => {
                if let Some((_, tps, _)) = self.requests.remove(&id) {
                    for tp in tps {
                        if let Some(s) = self.partitions.get_mut(&tp)
                            && s.position == (Position::FetchingCommitted { request: id })
                        {
                            s.position = Position::Committed;
                        }
                    }
                }
                if let Some(g) = &mut self.group {
                    g.retry_at = Some(backoff);
                }
            }
            Tag::OffsetCommit(id) => {
                self.requests.remove(&id);
                if let Some(commit) = self.commits.in_flight.remove(&id)
                    && let Some(g) = &mut self.group
                {
                    g.commits.push_front(commit);
                    g.retry_at = Some(backoff);
                }
            }
            _ => {}
        }
    }

    pub(super) fn on_group_response(
        &mut self,
        conn: ConnId,
        req: InFlight,
        frame: Bytes,
        now: Instant,
    ) {
        let ok = match req.tag {
            Tag::FindCoordinator => {
                match frame::decode_response_as::<FindCoordinatorResponse>(req.version, frame) {
                    Ok((_, r)) => {
                        self.on_find_coordinator(&r, req.version, now);
                        true
                    }
                    Err(_) => false,
                }
            }
            Tag::OffsetFetch(id) => {
                match frame::decode_response_as::<OffsetFetchResponse>(req.version, frame) {
                    Ok((_, r)) => {
                        self.on_offset_fetch(id, r, req.version, now);
                        true
                    }
                    Err(_) => false,
                }
            }
            Tag::OffsetCommit(id) => {
                match frame::decode_response_as::<OffsetCommitResponse>(req.version, frame) {
                    Ok((_, r)) => {
                        self.on_offset_commit(id, &r, now);
                        true
                    }
                    Err(_) => false,
                }
            }
            _ => true,
        };
        if !ok {
            self.group_lost(req.tag, now);
            self.lose(conn, now, true);
        }
    }

    fn on_find_coordinator(&mut self, r: &FindCoordinatorResponse, version: i16, now: Instant) {
        let (code, node, host, port) = crate::coordinator::answer(r, version);
        let Some(g) = &mut self.group else {
            return;
        };
        g.finding = false;
        if code != ErrorCode::None || node < 0 {
            g.retry_at = Some(now + self.config.network.retry_backoff);
            return;
        }
        g.coordinator = Some(node);
        g.retry_at = None;
        if let Ok(port) = u16::try_from(port) {
            self.net
                .metadata
                .brokers
                .entry(node)
                .or_insert_with(|| BrokerAddress {
                    host: host.to_string(),
                    port,
                });
        }
    }

    fn on_offset_fetch(&mut self, id: u64, r: OffsetFetchResponse, version: i16, now: Instant) {
        let Some((_, tps, _)) = self.requests.remove(&id) else {
            return;
        };
        let (code, found): (i16, Vec<(String, i32, i64, i16)>) = if version >= 8 {
            let Some(g) = r.groups.into_iter().next() else {
                self.group_lost(Tag::OffsetFetch(id), now);
                return;
            };
            let found = g
                .topics
                .iter()
                .flat_map(|t| {
                    t.partitions.iter().map(|p| {
                        (
                            t.name.to_string(),
                            p.partition_index,
                            p.committed_offset,
                            p.error_code,
                        )
                    })
                })
                .collect();
            (g.error_code, found)
        } else {
            let found = r
                .topics
                .iter()
                .flat_map(|t| {
                    t.partitions.iter().map(|p| {
                        (
                            t.name.to_string(),
                            p.partition_index,
                            p.committed_offset,
                            p.error_code,
                        )
                    })
                })
                .collect();
            (r.error_code, found)
        };
        let code = ErrorCode::from_code(code);
        if code != ErrorCode::None {
            if let Some(g) = &mut self.group {
                if coordinator_moved(code) {
                    g.coordinator = None;
                }
                g.retry_at = Some(now + self.config.network.retry_backoff);
            }
            for tp in &tps {
                if let Some(s) = self.partitions.get_mut(tp)
                    && s.position == (Position::FetchingCommitted { request: id })
                {
                    s.position = if retry_later(code) {
                        Position::Committed
                    } else {
                        Position::Failed
                    };
                }
            }
            if !retry_later(code) {
                for tp in tps {
                    self.events.push_back(ConsumerEvent::Error {
                        topic: tp.0,
                        partition: tp.1,
                        error: ConsumeError::Broker(code),
                    });
                }
            }
            return;
        }
        let reset = self.config.auto_offset_reset;
        for tp in tps {
            let Some(s) = self.partitions.get_mut(&tp) else {
                continue;
            };
            if s.position != (Position::FetchingCommitted { request: id }) {
                continue;
            }
            let offset = found
                .iter()
                .find(|(n, p, _, _)| *n == *tp.0 && *p == tp.1)
                .map_or(-1, |f| f.2);
            s.fresh = true;
            s.position = if offset >= 0 {
                Position::At(offset)
            } else {
                match reset {
                    OffsetReset::Earliest => Position::Reset(Seek::Beginning),
                    OffsetReset::Latest => Position::Reset(Seek::End),
                    OffsetReset::None => {
                        self.events.push_back(ConsumerEvent::Error {
                            topic: tp.0.clone(),
                            partition: tp.1,
                            error: ConsumeError::NoOffset,
                        });
                        Position::Failed
                    }
                }
            };
        }
    }

    fn on_offset_commit(&mut self, id: u64, r: &OffsetCommitResponse, now: Instant) {
        self.requests.remove(&id);
        let Some(commit) = self.commits.in_flight.remove(&id) else {
            return;
        };
        let first_error = r
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .map(|p| ErrorCode::from_code(p.error_code))
            .find(|c| *c != ErrorCode::None);
        if let Some(code) = first_error
            && retry_later(code)
        {
            if let Some(g) = &mut self.group {
                if coordinator_moved(code) {
                    g.coordinator = None;
                }
                g.retry_at = Some(now + self.config.network.retry_backoff);
                g.commits.push_front(commit);
            }
            return;
        }

        if first_error.is_some() {
            // Not stored: the next auto commit sends these again even if nothing moves.
            for (tp, o) in &commit.offsets {
                if self.commits.auto_committed.get(tp) == Some(o) {
                    self.commits.auto_committed.remove(tp);
                }
            }
        }
        self.commits.outcomes.push_back(CommitOutcome {
            id: commit.id,
            offsets: commit
                .offsets
                .into_iter()
                .map(|((t, p), o)| (t, p, o).into())
                .collect(),
            error: first_error.map(ConsumeError::Broker),
        });
    }
}

/// OffsetFetch for `names` in the shape `version` takes: one group per request from v8 on.
fn offset_fetch_request(
    group_id: &str,
    names: &[(Arc<str>, Vec<i32>)],
    version: i16,
) -> OffsetFetchRequest {
    if version >= 8 {
        OffsetFetchRequest {
            groups: vec![OffsetFetchRequestGroup {
                group_id: group_id.into(),
                member_epoch: -1,
                topics: Some(
                    names
                        .iter()
                        .map(|(n, ps)| OffsetFetchRequestTopics {
                            name: n.as_ref().into(),
                            partition_indexes: ps.clone(),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }],
            ..Default::default()
        }
    } else {
        OffsetFetchRequest {
            group_id: group_id.into(),
            topics: Some(
                names
                    .iter()
                    .map(|(n, ps)| OffsetFetchRequestTopic {
                        name: n.as_ref().into(),
                        partition_indexes: ps.clone(),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }
    }
}

fn conn_id(pool: &crate::conn::Pool, node: i32) -> ConnId {
    pool.find(Node::Broker(node), Purpose::Control)
        .unwrap_or(ConnId(0))
}
