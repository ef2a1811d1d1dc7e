//! The sans-IO share consumer (KIP-932): a member of a share group, which the broker
//! hands records one by one rather than partitions to own. Records come acquired, each
//! with a delivery count and under an acquisition lock; the member settles each one
//! (accept, release, reject, or renew its lock), and a record not settled in time goes to
//! another delivery.
//!
//! The parts: [`member`] (ShareGroupHeartbeat: the subscription out, the assignment
//! in), [`session`] (one share session per broker: its epochs and the partitions it
//! holds), [`acquired`] (a fetched partition cut into the batches of this member's
//! offsets, with the offsets that hold no record settled as gaps) and [`acks`] (what is
//! handed out and not yet settled, and the acknowledgement batches requests carry).
//! Acknowledgements ride on the next ShareFetch to their partition's leader; a commit,
//! a renewal, a close, or acknowledgements that waited `fetch.max.wait.ms` while no fetch
//! was due go in a ShareAcknowledge instead. [`dead_letter`] reads whether the broker
//! writes the group's rejected records to a dead-letter topic, for consumers that would
//! otherwise write them themselves.

mod acks;
mod acquired;
mod config;
mod dead_letter;
mod member;
mod session;

pub use acks::AcknowledgeType;
pub use acquired::{ShareBatch, ShareRecord, ShareRecords};
pub use config::{AcknowledgementMode, AcquireMode, ShareConsumerConfig};
pub use dead_letter::BrokerDeadLetter;
pub use member::ShareMemberState;

use crate::{
    CloseReason, CommitId, ConnId, ConnectAction, ConsumeError, SecurityError, Timeout,
    TopicPartition, Transmit,
    config::BrokerAddress,
    conn::{InFlight, Node, Purpose, Tag},
    metadata::TopicMeta,
    network::{Earliest, Network},
    rng::Rng,
};
use acks::{GAP, Pending, Ranges};
use bytes::Bytes;
use kasio_proto::{
    ApiKey, ErrorCode, Uuid, frame,
    messages::{
        DescribeConfigsResponse, FindCoordinatorResponse, MetadataResponse,
        ShareAcknowledgeRequest, ShareAcknowledgeResponse, ShareFetchRequest, ShareFetchResponse,
        ShareGroupHeartbeatResponse, share_acknowledge_request, share_fetch_request,
    },
};
use member::{Heard, Member};
use session::{FINAL, INITIAL, Session};
use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque},
    sync::Arc,
    time::Instant,
};

/// A topic id and a partition: how share requests name partitions.
type Tip = (Uuid, i32);

/// What happened to a share consumer, apart from records and acknowledgements.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShareEvent {
    /// The group's assignment for this member is now these partitions.
    Assigned {
        /// The partitions.
        partitions: Vec<TopicPartition>,
    },
    /// The group refused the member for good (it left the group).
    GroupError {
        /// Why.
        error: ConsumeError,
    },
    /// A partition's fetch failed in a way retrying will not mend (fetching it goes on
    /// after a backoff), or its bytes did not decode (those records were released).
    Error {
        /// The topic.
        topic: Arc<str>,
        /// The partition.
        partition: i32,
        /// What went wrong.
        error: ConsumeError,
    },
    /// TLS or SASL failed: the consumer stops dialling.
    Security(SecurityError),
}

/// Acknowledgements the broker answered, for one partition and one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acknowledged {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// `(first, last, type)`: the offsets and how they were settled.
    pub offsets: Vec<(i64, i64, AcknowledgeType)>,
    /// `None` if the broker took them; else why not (`InvalidRecordState`: the lock had
    /// expired and the record went to another delivery; `ShareSessionNotFound`: the
    /// session was lost; `NetworkException`: the answer never came).
    pub error: Option<ErrorCode>,
}

/// How a [`ShareConsumer::commit`] ended: every acknowledgement taken, or the first
/// error (the others are in the [`Acknowledged`] reports).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareCommit {
    /// The commit.
    pub id: CommitId,
    /// The first acknowledgement that failed, if one did.
    pub error: Option<ErrorCode>,
}

/// Why an acknowledgement was refused before it was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AcknowledgeError {
    /// The record is not one handed out to this member and not yet settled.
    NotAcquired {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The offset.
        offset: i64,
    },
    /// The consumer is closing.
    Closed,
}

impl std::fmt::Display for AcknowledgeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotAcquired {
                topic,
                partition,
                offset,
            } => write!(
                f,
                "{topic}-{partition}@{offset} was not handed out to this member, or is settled already"
            ),
            Self::Closed => f.write_str("the share consumer is closing"),
        }
    }
}

impl std::error::Error for AcknowledgeError {}

/// A partition this member is assigned, or still holds records of.
#[derive(Debug, Default)]
struct Part {
    assigned: bool,
    /// Acquired and buffered, not yet handed out.
    buffered: Ranges,
    /// Handed out and not yet settled.
    delivered: Ranges,
    pending: Pending,
    /// Since when acknowledgements wait.
    pending_since: Option<Instant>,
    /// A commit waits for its acknowledgements: they go at once.
    urgent: bool,
    /// After a fetch error, no fetch before this.
    retry_at: Option<Instant>,
}

#[derive(Debug)]
struct Request {
    node: i32,
    epoch: i32,
    added: Vec<Tip>,
    forgotten: Vec<Tip>,
    acks: Vec<(Tip, acks::Sent)>,
}

#[derive(Debug)]
struct Commit {
    id: CommitId,
    /// Partitions whose acknowledgements have not gone yet.
    unsent: BTreeSet<Tip>,
    /// Requests carrying its acknowledgements.
    requests: HashSet<u64>,
    error: Option<ErrorCode>,
    deadline: Instant,
}

/// The sans-IO share consumer.
///
/// Drive it like the other clients ([`Client`](crate::Client)); after each input, take
/// [`poll_batch`](Self::poll_batch) (acquired records),
/// [`poll_acknowledged`](Self::poll_acknowledged), [`poll_commit`](Self::poll_commit)
/// and [`poll_event`](Self::poll_event).
///
/// ```
/// use kasio_core::{AcknowledgeType, ShareConsumer, ShareConsumerConfig};
/// use std::time::Instant;
/// let now = Instant::now();
/// let mut queue = ShareConsumer::new(ShareConsumerConfig::new("localhost:9092", "jobs")?, now, 7)?;
/// queue.subscribe(&["jobs"], now);
/// // A command leaves work for the driver's next turn.
/// assert_eq!(queue.poll_timeout().map(|t| t.at), Some(now));
/// queue.handle_timeout(now);
/// assert!(queue.poll_connect().is_some(), "dials for metadata and the coordinator");
/// while let Some(batch) = queue.poll_batch() {
///     for record in batch.iter()? {
///         let record = record?;
///         let kind = if record.delivery_count > 3 { AcknowledgeType::Reject } else { AcknowledgeType::Accept };
///         queue.acknowledge(&record.record.topic, record.record.partition, record.record.offset, kind, now)?;
///     }
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ShareConsumer {
    config: ShareConsumerConfig,
    rng: Rng,
    now: Instant,
    net: Network,
    member: Member,
    coordinator: Option<i32>,
    finding: bool,
    coordinator_retry: Option<Instant>,
    /// Subscribed topics, with their metadata once known.
    topics: HashMap<Arc<str>, Option<TopicMeta>>,
    names: HashMap<Uuid, Arc<str>>,
    parts: BTreeMap<Tip, Part>,
    sessions: BTreeMap<i32, Session>,
    requests: HashMap<u64, Request>,
    next_request: u64,
    buffer: VecDeque<(ShareBatch, i32)>,
    /// Set by [`set_fetching`](Self::set_fetching): no fetch asks for records.
    fetch_stopped: bool,
    /// Whether the last fetch answered by each node brought records.
    brought: HashMap<i32, bool>,
    /// Buffered batches per node: a node is fetched from again once none are left.
    buffered_from: HashMap<i32, usize>,
    /// Partitions with records handed out and not settled (implicit mode settles them).
    delivered: BTreeSet<Tip>,
    commits: Vec<Commit>,
    next_commit: u64,
    commit_outcomes: VecDeque<ShareCommit>,
    acknowledged: VecDeque<Acknowledged>,
    events: VecDeque<ShareEvent>,
    closing: bool,
    /// An assignment not yet reported: it names topics metadata has not told of yet.
    unreported: bool,
    /// A command left work: the driver calls `handle_timeout` at once.
    due: bool,
    security_reported: bool,
    /// Records held back to be released later, their locks renewed meanwhile.
    delayed: Vec<Delayed>,
    /// The acquisition lock the broker last stated.
    lock: std::time::Duration,
    /// The broker's dead-letter topic for the group, read when asked for.
    dead_letter: dead_letter::Watch,
}

/// A record to release at `at`, renewed every half lock until then (a message queue's
/// `nack` with a delay).
#[derive(Debug, Clone, Copy)]
struct Delayed {
    tip: Tip,
    offset: i64,
    at: Instant,
    renew_at: Instant,
}

impl ShareConsumer {
    /// A share consumer with `config`, created at `now`; `seed` drives its random choices
    /// (its member id among them).
    ///
    /// # Errors
    /// [`ConfigError`](crate::ConfigError) if the settings conflict.
    pub fn new(
        config: ShareConsumerConfig,
        now: Instant,
        seed: u64,
    ) -> Result<Self, crate::ConfigError> {
        config.validate()?;
        let net = Network::new(&config.network, config.security.build()?, now, seed);
        let mut rng = Rng::new(seed);
        let id =
            Uuid::from_u128((u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64())).max(1));
        Ok(Self {
            member: Member::new(id),
            config,
            rng,
            now,
            net,
            coordinator: None,
            finding: false,
            coordinator_retry: None,
            topics: HashMap::new(),
            names: HashMap::new(),
            parts: BTreeMap::new(),
            sessions: BTreeMap::new(),
            requests: HashMap::new(),
            next_request: 1,
            buffer: VecDeque::new(),
            fetch_stopped: false,
            brought: HashMap::new(),
            buffered_from: HashMap::new(),
            delivered: BTreeSet::new(),
            commits: Vec::new(),
            next_commit: 1,
            commit_outcomes: VecDeque::new(),
            acknowledged: VecDeque::new(),
            events: VecDeque::new(),
            closing: false,
            unreported: false,
            due: true,
            security_reported: false,
            delayed: Vec::new(),
            lock: std::time::Duration::from_secs(30),
            dead_letter: dead_letter::Watch::default(),
        })
    }

    /// Reads the group's configs for the broker's dead-letter topic (KIP-1191), now and
    /// every `metadata.max.age.ms`: for a consumer that writes rejected records to a
    /// dead-letter topic of its own unless the broker writes them. The answer is
    /// [`broker_dead_letter`](Self::broker_dead_letter).
    pub fn watch_dead_letter(&mut self, now: Instant) {
        self.dead_letter.want(now);
        self.due |= self.dead_letter.due(now);
    }

    /// The group this consumer is a member of.
    #[must_use]
    pub fn group_id(&self) -> &str {
        &self.config.group_id
    }

    /// The broker's dead-letter topic for the group, as last read
    /// ([`watch_dead_letter`](Self::watch_dead_letter) starts the reading).
    #[must_use]
    pub fn broker_dead_letter(&self) -> &BrokerDeadLetter {
        &self.dead_letter.known
    }

    /// Joins the group subscribed to `topics` (or changes the subscription).
    pub fn subscribe(&mut self, topics: &[&str], now: Instant) {
        if self.closing {
            return;
        }
        let names: Vec<Arc<str>> = topics.iter().map(|&t| Arc::from(t)).collect();
        self.topics.retain(|t, _| names.contains(t));
        for n in &names {
            self.topics.entry(n.clone()).or_insert(None);
        }
        self.member.subscribe(names, now);
        self.net.metadata.request_refresh();
        self.due = true;
    }

    /// The member's id in its group.
    pub fn member_id(&self) -> &str {
        &self.member.id
    }

    /// Where the member is.
    pub fn member_state(&self) -> ShareMemberState {
        self.member.state
    }

    /// The partitions the group assigned this member (those whose topic is known).
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.parts
            .iter()
            .filter(|(_, p)| p.assigned)
            .filter_map(|((id, p), _)| Some(TopicPartition::new(self.names.get(id)?.clone(), *p)))
            .collect()
    }

    /// Stops (`false`) or starts again (`true`) asking for records: a share group has no
    /// paused partitions, so a member holding enough stops fetching instead.
    /// Acknowledgements and renewals still go, as `ShareAcknowledge` requests; a session
    /// lost (its connection closed) is opened again by one fetch, since they need one.
    pub fn set_fetching(&mut self, on: bool) {
        if self.fetch_stopped == on {
            self.fetch_stopped = !on;
            self.due = true;
        }
    }

    /// Whether the group has nothing more for this member as far as it knows: nothing
    /// buffered, and the last fetch from each broker leading an assigned partition came
    /// back empty (a broker not yet answered counts as having records).
    pub fn is_drained(&self) -> bool {
        self.buffer.is_empty()
            && self
                .parts
                .iter()
                .filter(|(_, p)| p.assigned)
                .filter_map(|(tip, _)| self.leader(tip))
                .all(|node| self.brought.get(&node) == Some(&false))
    }

    /// The next batch of acquired records. In implicit mode the records handed out
    /// before and not acknowledged are accepted first (the Java client's next `poll`).
    pub fn poll_batch(&mut self) -> Option<ShareBatch> {
        if self.config.acknowledgement_mode == AcknowledgementMode::Implicit {
            self.settle_delivered(AcknowledgeType::Accept);
        }
        let (batch, node) = self.buffer.pop_front()?;
        if let Some(n) = self.buffered_from.get_mut(&node) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                // The node may be fetched from again.
                self.due = true;
            }
        }
        if let Some(tip) = self.tip_of(&batch.topic, batch.partition)
            && let Some(part) = self.parts.get_mut(&tip)
        {
            for &(f, l, _) in batch.acquired() {
                part.buffered.remove_range(f, l);
                part.delivered.insert(f, l);
            }
            self.delivered.insert(tip);
        }
        Some(batch)
    }

    /// Settles the record at `offset` of `topic`-`partition` (one handed out by
    /// [`poll_batch`](Self::poll_batch)); [`AcknowledgeType::Renew`] keeps it this
    /// member's for another lock duration, to be settled later. The acknowledgement goes
    /// with the next request to the partition's leader; its outcome comes from
    /// [`poll_acknowledged`](Self::poll_acknowledged).
    ///
    /// # Errors
    /// [`AcknowledgeError::NotAcquired`] for a record not handed out to this member or
    /// settled already; [`AcknowledgeError::Closed`] once closing.
    pub fn acknowledge(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        kind: AcknowledgeType,
        now: Instant,
    ) -> Result<(), AcknowledgeError> {
        let tip = self.handed_out(topic, partition, offset)?;
        let Some(part) = self.parts.get_mut(&tip) else {
            return Err(not_acquired(topic, partition, offset));
        };
        if kind != AcknowledgeType::Renew {
            part.delivered.remove(offset);
        }
        part.pending.push(offset, offset, kind.code());
        // The first acknowledgement waiting wakes the driver, so it learns when they
        // must go at the latest; a renewal goes at once.
        if part.pending_since.is_none() || kind == AcknowledgeType::Renew {
            self.due = true;
        }
        part.pending_since.get_or_insert(now);
        Ok(())
    }

    /// Releases the record at `offset` once `delay` has passed, keeping it this member's
    /// until then by renewing its lock every half lock duration (the group must set
    /// `share.renew.acknowledge.enable`; without it the lock runs out and the record is
    /// delivered again sooner). A message queue's `nack(delay)`.
    ///
    /// # Errors
    /// As [`acknowledge`](Self::acknowledge).
    pub fn release_after(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        delay: std::time::Duration,
        now: Instant,
    ) -> Result<(), AcknowledgeError> {
        let tip = self.handed_out(topic, partition, offset)?;
        if self
            .delayed
            .iter()
            .any(|d| d.tip == tip && d.offset == offset)
        {
            return Err(not_acquired(topic, partition, offset));
        }
        self.delayed.push(Delayed {
            tip,
            offset,
            at: now + delay,
            renew_at: now + self.lock / 2,
        });
        self.due = true;
        Ok(())
    }

    /// The partition of a record handed out to this member and not yet settled.
    fn handed_out(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Result<Tip, AcknowledgeError> {
        if self.closing {
            return Err(AcknowledgeError::Closed);
        }
        self.tip_of(topic, partition)
            .filter(|tip| {
                self.parts
                    .get(tip)
                    .is_some_and(|p| p.delivered.contains(offset))
            })
            .ok_or_else(|| not_acquired(topic, partition, offset))
    }

    /// Releases the held-back records whose time came, and renews the others' locks.
    fn step_delayed(&mut self, now: Instant) {
        let half = self.lock / 2;
        let mut i = 0;
        while i < self.delayed.len() {
            let d = self.delayed[i];
            let Some(part) = self.parts.get_mut(&d.tip) else {
                self.delayed.swap_remove(i);
                continue;
            };
            if !part.delivered.contains(d.offset) {
                // Settled some other way meanwhile.
                self.delayed.swap_remove(i);
                continue;
            }
            if now >= d.at {
                part.delivered.remove(d.offset);
                part.pending
                    .push(d.offset, d.offset, AcknowledgeType::Release.code());
                part.pending_since.get_or_insert(now);
                part.urgent = true;
                self.delayed.swap_remove(i);
                continue;
            }
            if now >= d.renew_at {
                part.pending
                    .push(d.offset, d.offset, AcknowledgeType::Renew.code());
                part.pending_since.get_or_insert(now);
                self.delayed[i].renew_at = now + half;
            }
            i += 1;
        }
    }

    /// Sends every acknowledgement made so far (in implicit mode, accepting what was
    /// handed out first) without waiting for the next fetch; the outcome comes from
    /// [`poll_commit`](Self::poll_commit) once every one is answered, or fails with
    /// `RequestTimedOut` after `default.api.timeout.ms`.
    pub fn commit(&mut self, now: Instant) -> CommitId {
        if self.config.acknowledgement_mode == AcknowledgementMode::Implicit {
            self.settle_delivered(AcknowledgeType::Accept);
        }
        let id = CommitId(self.next_commit);
        self.next_commit += 1;
        let mut unsent = BTreeSet::new();
        for (tip, part) in &mut self.parts {
            if part.pending.has_acks() {
                part.urgent = true;
                unsent.insert(*tip);
            }
        }
        let requests: HashSet<u64> = self
            .requests
            .iter()
            .filter(|(_, r)| !r.acks.is_empty())
            .map(|(id, _)| *id)
            .collect();
        self.commits.push(Commit {
            id,
            unsent,
            requests,
            error: None,
            deadline: now + self.config.default_api_timeout,
        });
        self.due = true;
        self.finish_commits(now);
        id
    }

    /// Leaves the group: records handed out and not settled are accepted in implicit mode
    /// and released in explicit mode, records buffered are released, and each share
    /// session is closed with what it still carries. [`is_closed`](Self::is_closed) once
    /// done.
    pub fn close(&mut self, now: Instant) {
        if self.closing {
            return;
        }
        self.closing = true;
        let settle = match self.config.acknowledgement_mode {
            AcknowledgementMode::Implicit => AcknowledgeType::Accept,
            AcknowledgementMode::Explicit => AcknowledgeType::Release,
        };
        self.settle_delivered(settle);
        self.buffer.clear();
        self.buffered_from.clear();
        for part in self.parts.values_mut() {
            for (f, l) in part.buffered.take() {
                part.pending.push(f, l, AcknowledgeType::Release.code());
            }
            part.pending.drop_renews();
            part.pending_since.get_or_insert(now);
            part.urgent = true;
            part.assigned = false;
        }
        self.member.leave(now);
        self.due = true;
    }

    /// Whether the member has left its group and every share session is closed (or
    /// could not be), with nothing in flight.
    pub fn is_closed(&self) -> bool {
        self.closing
            && matches!(
                self.member.state,
                ShareMemberState::Left | ShareMemberState::Unsubscribed
            )
            && self.requests.is_empty()
            && self.sessions.values().all(|s| s.closed || !s.is_open())
    }

    /// How many records this member holds unsettled: handed out, and fetched but not yet
    /// handed out.
    pub fn unsettled(&self) -> (u64, u64) {
        let handed = self.parts.values().map(|p| p.delivered.count()).sum();
        let buffered = self.parts.values().map(|p| p.buffered.count()).sum();
        (handed, buffered)
    }

    /// The next acknowledgements the broker answered.
    pub fn poll_acknowledged(&mut self) -> Option<Acknowledged> {
        self.acknowledged.pop_front()
    }

    /// The next commit that ended.
    pub fn poll_commit(&mut self) -> Option<ShareCommit> {
        self.commit_outcomes.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ShareEvent> {
        self.events.pop_front()
    }

    /// The shell opened a connection.
    pub fn handle_connected(&mut self, conn: ConnId, now: Instant) {
        self.net.connected(conn, now);
        self.drain(now);
    }

    /// Bytes arrived on a connection.
    pub fn handle_input(&mut self, conn: ConnId, data: &[u8], now: Instant) {
        let received = self.net.receive(conn, data, now);
        for (req, frame) in received.responses {
            if !self.net.is_open(conn) {
                break;
            }
            self.on_response(conn, req, frame, now);
        }
        if received.error.is_some() {
            self.lose(conn, now, true);
        }
        self.drain(now);
    }

    /// A connection closed.
    pub fn handle_closed(&mut self, conn: ConnId, reason: CloseReason, now: Instant) {
        let _ = reason;
        self.lose(conn, now, false);
        self.drain(now);
    }

    /// Time passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        for id in self.net.timed_out(now) {
            self.lose(id, now, true);
        }
        self.drain(now);
    }

    /// The next socket to open or close.
    pub fn poll_connect(&mut self) -> Option<ConnectAction> {
        self.net.poll_connect()
    }

    /// The next bytes to write.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.net.poll_transmit()
    }

    /// Whether a waiting driver must come back now.
    pub fn needs_attention(&self) -> bool {
        self.due
            || self.net.has_output()
            || !self.buffer.is_empty()
            || !self.events.is_empty()
            || !self.acknowledged.is_empty()
            || !self.commit_outcomes.is_empty()
    }

    /// The earliest time `handle_timeout` has work to do.
    pub fn poll_timeout(&mut self) -> Option<Timeout> {
        let now = self.now;
        if self.due {
            return Some(Timeout {
                at: now,
                reason: "share consumer work queued",
            });
        }
        let mut earliest = Earliest::new(now);
        self.net.offer_request_deadlines(&mut earliest);
        self.net.offer_metadata_deadlines(&mut earliest);
        if let Some(at) = self.member.next_heartbeat() {
            earliest.offer(at, "share group heartbeat");
        }
        if let Some(at) = self.coordinator_retry {
            earliest.offer(at, "coordinator lookup backoff");
        }
        for s in self.sessions.values() {
            if let Some(at) = s.retry_at {
                earliest.offer(at, "share fetch backoff");
            }
        }
        for p in self.parts.values() {
            if let Some(at) = p.retry_at {
                earliest.offer(at, "partition backoff");
            }
            if let Some(since) = p.pending_since {
                earliest.offer(
                    since + self.config.fetch_max_wait,
                    "acknowledgements waiting",
                );
            }
        }
        for c in &self.commits {
            earliest.offer(c.deadline, "share commit timeout");
        }
        for d in &self.delayed {
            earliest.offer(d.at.min(d.renew_at), "delayed release");
        }
        // A reading due now waits for a connection, whose readiness wakes the driver.
        if let Some(at) = self.dead_letter.deadline().filter(|at| *at > now) {
            earliest.offer(at, "group configs reading");
        }
        earliest.best()
    }

    fn tip_of(&self, topic: &str, partition: i32) -> Option<Tip> {
        let meta = self.topics.get(topic)?.as_ref()?;
        Some((meta.id, partition))
    }

    fn leader(&self, tip: &Tip) -> Option<i32> {
        let name = self.names.get(&tip.0)?;
        self.topics
            .get(name)?
            .as_ref()?
            .partitions
            .get(usize::try_from(tip.1).ok()?)?
            .leader
    }

    /// Settles every record handed out and not yet settled as `kind`.
    fn settle_delivered(&mut self, kind: AcknowledgeType) {
        let now = self.now;
        for tip in std::mem::take(&mut self.delivered) {
            if let Some(part) = self.parts.get_mut(&tip) {
                for (f, l) in part.delivered.take() {
                    part.pending.push(f, l, kind.code());
                    if part.pending_since.is_none() {
                        self.due = true;
                    }
                    part.pending_since.get_or_insert(now);
                }
            }
        }
    }

    fn drain(&mut self, now: Instant) {
        self.now = now;
        self.due = false;
        if let Some(e) = &self.net.pool.fatal
            && !std::mem::replace(&mut self.security_reported, true)
        {
            self.events.push_back(ShareEvent::Security(e.clone()));
        }
        self.step_delayed(now);
        self.send_metadata(now);
        self.send_coordinator_lookup(now);
        self.send_group_configs(now);
        self.send_heartbeat(now);
        self.send_share_requests(now);
        self.finish_commits(now);
    }

    fn send_metadata(&mut self, now: Instant) {
        let unknown_topic = self.topics.values().any(Option::is_none);
        let unknown_leader = self
            .parts
            .iter()
            .any(|(tip, p)| (p.assigned || !p.pending.is_empty()) && self.leader(tip).is_none());
        if unknown_topic || unknown_leader {
            self.net.metadata.request_refresh();
        }
        if self.topics.is_empty() {
            return;
        }
        let names: Vec<Arc<str>> = self.topics.keys().cloned().collect();
        self.net.refresh_metadata(
            Some(names.iter().map(AsRef::as_ref)),
            false,
            &mut self.rng,
            now,
        );
    }

    fn send_coordinator_lookup(&mut self, now: Instant) {
        if self.coordinator.is_some()
            || self.finding
            || !self.member.wants_coordinator()
            || self.coordinator_retry.is_some_and(|t| t > now)
        {
            return;
        }
        let Some((id, version)) = self.control_ready(ApiKey::FindCoordinator, now) else {
            return;
        };
        let deadline = now + self.config.network.request_timeout;
        let req =
            crate::coordinator::request(&self.config.group_id, crate::coordinator::GROUP, version);
        if let Some(conn) = self.net.pool.get_mut(id)
            && conn
                .send(
                    &req,
                    Tag::FindCoordinator,
                    deadline,
                    &mut self.net.transmits,
                )
                .is_some()
        {
            self.finding = true;
        }
    }

    /// A connection for cluster-wide requests, ready to speak `api`, and its version.
    fn control_ready(&mut self, api: ApiKey, now: Instant) -> Option<(ConnId, i16)> {
        let id = self
            .net
            .metadata
            .control_conn(&mut self.net.pool, &mut self.rng, now)?;
        let version = self.net.pool.get_mut(id)?.version(api)?;
        Some((id, version))
    }

    fn send_group_configs(&mut self, now: Instant) {
        if self.closing || !self.dead_letter.due(now) {
            return;
        }
        // No connection ready yet: asked again once one is.
        let Some((id, _)) = self.control_ready(ApiKey::DescribeConfigs, now) else {
            return;
        };
        let deadline = now + self.config.network.request_timeout;
        let req = self.dead_letter.request(&self.config.group_id);
        let sent =
            self.net.pool.get_mut(id).and_then(|conn| {
                conn.send(&req, Tag::GroupConfigs, deadline, &mut self.net.transmits)
            });
        if sent.is_none() {
            self.dead_letter
                .failed(self.config.network.retry_backoff, now);
        }
    }

    fn send_heartbeat(&mut self, now: Instant) {
        if !self.member.due(now) {
            return;
        }
        let Some(node) = self.coordinator else {
            return;
        };
        let Some(addr) = self.net.metadata.address(Node::Broker(node)).cloned() else {
            return;
        };
        let deadline = now + self.config.network.request_timeout;
        let Some(conn) = self
            .net
            .pool
            .ensure(Node::Broker(node), Purpose::Control, &addr, now)
        else {
            return;
        };
        if conn.version(ApiKey::ShareGroupHeartbeat).is_none() {
            // The cluster has no share groups (share.version not enabled).
            self.member.state = ShareMemberState::Left;
            self.events.push_back(ShareEvent::GroupError {
                error: ConsumeError::Broker(ErrorCode::UnsupportedVersion),
            });
            return;
        }
        let req = self
            .member
            .request(&self.config.group_id, &self.config.client_rack);
        if conn
            .send(&req, Tag::ShareHeartbeat, deadline, &mut self.net.transmits)
            .is_none()
        {
            self.member.lost(now, self.config.network.retry_backoff);
        }
    }

    /// Which nodes lead the partitions to fetch, or that hold acknowledgements.
    fn nodes(&self) -> BTreeSet<i32> {
        let mut nodes: BTreeSet<i32> = self
            .parts
            .iter()
            .filter(|(_, p)| p.assigned || !p.pending.is_empty())
            .filter_map(|(tip, _)| self.leader(tip))
            .collect();
        // Sessions that hold partitions to forget, or that a close must end.
        nodes.extend(
            self.sessions
                .iter()
                .filter(|(_, s)| s.is_open() && !s.closed)
                .map(|(n, _)| *n),
        );
        nodes
    }

    fn send_share_requests(&mut self, now: Instant) {
        for node in self.nodes() {
            self.send_to(node, now);
        }
    }

    /// Sends what `node` needs next, if its session is free: a final acknowledgement
    /// when closing, acknowledgements that cannot wait, or a fetch.
    fn send_to(&mut self, node: i32, now: Instant) {
        let session = self.sessions.entry(node).or_default();
        if !session.ready(now) {
            return;
        }
        let open = session.is_open();
        let in_session = session.partitions.clone();
        // The partitions this node leads: to fetch, and holding acknowledgements.
        let mut wanted = BTreeSet::new();
        let mut with_acks = Vec::new();
        let (mut urgent, mut renews, mut stale) = (false, false, false);
        let mut unsettled = 0;
        let stable = self.member.state == ShareMemberState::Stable && !self.closing;
        for (tip, part) in &self.parts {
            if self.leader(tip) != Some(node) {
                continue;
            }
            unsettled += part.delivered.count();
            if stable && part.assigned && part.retry_at.is_none_or(|t| t <= now) {
                wanted.insert(*tip);
            }
            if !part.pending.is_empty() {
                with_acks.push(*tip);
                urgent |= part.urgent;
                renews |= part.pending.has_renews();
                stale |= part
                    .pending_since
                    .is_some_and(|t| now >= t + self.config.fetch_max_wait);
            }
        }
        // In implicit mode the next fetch goes out as the last batch is handed out, ahead
        // of its acceptance, unless that batch holds many records: the broker acquires no
        // more of a partition while `group.share.partition.max.record.locks` (2,000 by
        // default) of it are in flight, so such a fetch would wait out `fetch.max.wait.ms`
        // with the acceptances that free them queued behind it. Then it waits for them.
        let ahead = self.config.acknowledgement_mode == AcknowledgementMode::Explicit
            || unsettled < u64::try_from(self.config.max_poll_records).unwrap_or(0);
        // A stopped member still opens a session it lost: acknowledgements and renewals
        // need one.
        let fetch = ahead
            && (!self.fetch_stopped || !open)
            && !wanted.is_empty()
            && self.buffered_from.get(&node).is_none_or(|&n| n == 0);
        if self.closing {
            if open {
                self.send_acknowledge(node, FINAL, &with_acks, false, now);
            } else {
                self.fail_unsendable(&with_acks, ErrorCode::ShareSessionNotFound);
                if let Some(s) = self.sessions.get_mut(&node) {
                    s.closed = true;
                }
            }
            return;
        }
        if open && renews {
            self.send_acknowledge(
                node,
                session_epoch(&self.sessions, node),
                &with_acks,
                true,
                now,
            );
            return;
        }
        if open && !with_acks.is_empty() && (urgent || (!fetch && stale)) {
            self.send_acknowledge(
                node,
                session_epoch(&self.sessions, node),
                &with_acks,
                false,
                now,
            );
            return;
        }
        let forget: Vec<Tip> = in_session.difference(&wanted).copied().collect();
        if fetch || (open && !forget.is_empty()) {
            self.send_fetch(node, &wanted, &in_session, forget, &with_acks, now);
        }
    }

    /// Acknowledgements that cannot go (no session to carry them, at close): reported
    /// failed.
    fn fail_unsendable(&mut self, tips: &[Tip], code: ErrorCode) {
        for tip in tips {
            let Some(part) = self.parts.get_mut(tip) else {
                continue;
            };
            let mut sent = part.pending.take_acks();
            sent.0.extend(part.pending.take_renews().0);
            part.pending_since = None;
            part.urgent = false;
            self.report(*tip, &sent, Some(code));
            for c in &mut self.commits {
                if c.unsent.remove(tip) {
                    c.error.get_or_insert(code);
                }
            }
        }
    }

    /// A partition's acknowledgements to send: the renewals alone, or the rest. The
    /// broker takes a partition's acknowledgements in one request all or none, so a
    /// renewal refused (its lock ran out) must not take settled records down with it.
    fn take_acks(&mut self, tip: &Tip, renewals: bool) -> acks::Sent {
        let Some(part) = self.parts.get_mut(tip) else {
            return acks::Sent::default();
        };
        let sent = if renewals {
            part.pending.take_renews()
        } else {
            part.urgent = false;
            part.pending.take_acks()
        };
        if part.pending.is_empty() {
            part.pending_since = None;
        }
        sent
    }

    fn send_fetch(
        &mut self,
        node: i32,
        wanted: &BTreeSet<Tip>,
        in_session: &BTreeSet<Tip>,
        forgotten: Vec<Tip>,
        with_acks: &[Tip],
        now: Instant,
    ) {
        let Some(addr) = self.net.metadata.address(Node::Broker(node)).cloned() else {
            self.net.metadata.request_refresh();
            return;
        };
        let Some(conn) = self
            .net
            .pool
            .ensure(Node::Broker(node), Purpose::Fetch, &addr, now)
        else {
            return;
        };
        if conn.version(ApiKey::ShareFetch).is_none() {
            return;
        }
        let epoch = session_epoch(&self.sessions, node);
        // The first request of a session carries no acknowledgements (the broker
        // refuses them): they wait for the next.
        let carry: Vec<Tip> = if epoch == INITIAL {
            Vec::new()
        } else {
            with_acks.to_vec()
        };
        let added: Vec<Tip> = if epoch == INITIAL {
            wanted.iter().copied().collect()
        } else {
            wanted.difference(in_session).copied().collect()
        };
        let mut acks = Vec::new();
        for tip in &carry {
            let sent = self.take_acks(tip, false);
            if !sent.is_empty() {
                acks.push((*tip, sent));
            }
        }
        let mut listed: BTreeMap<Uuid, Vec<share_fetch_request::FetchPartition>> = BTreeMap::new();
        let listed_tips: BTreeSet<Tip> = added
            .iter()
            .copied()
            .chain(acks.iter().map(|(t, _)| *t))
            .collect();
        for tip in &listed_tips {
            let batches = acks
                .iter()
                .find(|(t, _)| t == tip)
                .map(|(_, s)| s.batches())
                .unwrap_or_default();
            listed
                .entry(tip.0)
                .or_default()
                .push(share_fetch_request::FetchPartition {
                    partition_index: tip.1,
                    acknowledgement_batches: batches,
                    ..Default::default()
                });
        }
        let mut forgotten_by_topic: BTreeMap<Uuid, Vec<i32>> = BTreeMap::new();
        for (id, p) in &forgotten {
            forgotten_by_topic.entry(*id).or_default().push(*p);
        }
        let req = ShareFetchRequest {
            group_id: Some(self.config.group_id.as_str().into()),
            member_id: Some(self.member.id.as_str().into()),
            share_session_epoch: epoch,
            max_wait_ms: i32::try_from(self.config.fetch_max_wait.as_millis()).unwrap_or(i32::MAX),
            min_bytes: self.config.fetch_min_bytes,
            max_bytes: self.config.fetch_max_bytes,
            max_records: self.config.max_poll_records,
            batch_size: self.config.max_poll_records,
            share_acquire_mode: match self.config.acquire_mode {
                AcquireMode::BatchOptimized => 0,
                AcquireMode::RecordLimit => 1,
            },
            is_renew_ack: false,
            topics: listed
                .into_iter()
                .map(|(topic_id, partitions)| share_fetch_request::FetchTopic {
                    topic_id,
                    partitions,
                    ..Default::default()
                })
                .collect(),
            forgotten_topics_data: forgotten_by_topic
                .into_iter()
                .map(
                    |(topic_id, partitions)| share_fetch_request::ForgottenTopic {
                        topic_id,
                        partitions,
                        ..Default::default()
                    },
                )
                .collect(),
            ..Default::default()
        };
        let id = self.next_request;
        let deadline = now + self.config.network.request_timeout + self.config.fetch_max_wait;
        let Some(conn) = self.net.pool.find(Node::Broker(node), Purpose::Fetch) else {
            return;
        };
        let sent = self
            .net
            .pool
            .get_mut(conn)
            .and_then(|c| c.send(&req, Tag::ShareFetch(id), deadline, &mut self.net.transmits));
        if sent.is_none() {
            self.restore(acks);
            return;
        }
        self.next_request += 1;
        self.track(id, &acks);
        if let Some(s) = self.sessions.get_mut(&node) {
            s.busy = true;
        }
        self.requests.insert(
            id,
            Request {
                node,
                epoch,
                added,
                forgotten,
                acks,
            },
        );
    }

    fn send_acknowledge(&mut self, node: i32, epoch: i32, tips: &[Tip], renew: bool, now: Instant) {
        let Some(addr) = self.net.metadata.address(Node::Broker(node)).cloned() else {
            self.net.metadata.request_refresh();
            return;
        };
        let Some(conn) = self
            .net
            .pool
            .ensure(Node::Broker(node), Purpose::Fetch, &addr, now)
        else {
            return;
        };
        let Some(version) = conn.version(ApiKey::ShareAcknowledge) else {
            return;
        };
        if renew && version < 2 {
            // RENEW needs ShareAcknowledge v2 (KIP-1222): refused here, not sent.
            let mut failed = Vec::new();
            for tip in tips {
                if let Some(part) = self.parts.get_mut(tip) {
                    failed.push((*tip, part.pending.take_renews()));
                }
            }
            for (tip, sent) in failed {
                self.report(tip, &sent, Some(ErrorCode::UnsupportedVersion));
            }
            return;
        }
        let mut acks = Vec::new();
        for tip in tips {
            let sent = self.take_acks(tip, renew);
            if !sent.is_empty() {
                acks.push((*tip, sent));
            }
        }
        if acks.is_empty() && epoch != FINAL {
            return;
        }
        let is_renew = acks.iter().any(|(_, s)| {
            s.0.iter()
                .any(|&(_, _, c)| c == AcknowledgeType::Renew.code())
        });
        let mut by_topic: BTreeMap<Uuid, Vec<share_acknowledge_request::AcknowledgePartition>> =
            BTreeMap::new();
        for (tip, sent) in &acks {
            by_topic.entry(tip.0).or_default().push(
                share_acknowledge_request::AcknowledgePartition {
                    partition_index: tip.1,
                    acknowledgement_batches: sent
                        .batches()
                        .into_iter()
                        .map(|b| share_acknowledge_request::AcknowledgementBatch {
                            first_offset: b.first_offset,
                            last_offset: b.last_offset,
                            acknowledge_types: b.acknowledge_types,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                },
            );
        }
        let req = ShareAcknowledgeRequest {
            group_id: Some(self.config.group_id.as_str().into()),
            member_id: Some(self.member.id.as_str().into()),
            share_session_epoch: epoch,
            is_renew_ack: is_renew,
            topics: by_topic
                .into_iter()
                .map(
                    |(topic_id, partitions)| share_acknowledge_request::AcknowledgeTopic {
                        topic_id,
                        partitions,
                        ..Default::default()
                    },
                )
                .collect(),
            ..Default::default()
        };
        let id = self.next_request;
        let deadline = now + self.config.network.request_timeout;
        let Some(conn) = self.net.pool.find(Node::Broker(node), Purpose::Fetch) else {
            self.restore(acks);
            return;
        };
        let sent = self
            .net
            .pool
            .get_mut(conn)
            .and_then(|c| c.send(&req, Tag::ShareAck(id), deadline, &mut self.net.transmits));
        if sent.is_none() {
            self.restore(acks);
            return;
        }
        self.next_request += 1;
        self.track(id, &acks);
        if let Some(s) = self.sessions.get_mut(&node) {
            s.busy = true;
        }
        self.requests.insert(
            id,
            Request {
                node,
                epoch,
                added: Vec::new(),
                forgotten: Vec::new(),
                acks,
            },
        );
    }

    /// Acknowledgements whose request did not go: back in line.
    fn restore(&mut self, acks: Vec<(Tip, acks::Sent)>) {
        for (tip, sent) in acks {
            if let Some(part) = self.parts.get_mut(&tip) {
                part.pending.restore(sent);
                part.pending_since.get_or_insert(self.now);
            }
        }
    }

    /// Commits waiting for these partitions' acknowledgements now wait for request `id`.
    fn track(&mut self, id: u64, acks: &[(Tip, acks::Sent)]) {
        for c in &mut self.commits {
            for (tip, _) in acks {
                if c.unsent.remove(tip) {
                    c.requests.insert(id);
                }
            }
        }
    }

    fn report(&mut self, tip: Tip, sent: &acks::Sent, error: Option<ErrorCode>) {
        let offsets = sent.settled();
        if offsets.is_empty() {
            return;
        }
        let Some(topic) = self.names.get(&tip.0).cloned() else {
            return;
        };
        self.acknowledged.push_back(Acknowledged {
            topic,
            partition: tip.1,
            offsets,
            error,
        });
    }

    fn finish_commits(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.commits.len() {
            let c = &self.commits[i];
            let timed_out = now >= c.deadline;
            if (c.unsent.is_empty() && c.requests.is_empty()) || timed_out {
                let c = self.commits.remove(i);
                let error = if c.unsent.is_empty() && c.requests.is_empty() {
                    c.error
                } else {
                    Some(ErrorCode::RequestTimedOut)
                };
                self.commit_outcomes
                    .push_back(ShareCommit { id: c.id, error });
            } else {
                i += 1;
            }
        }
    }

    /// Request `id` ended: its acknowledgements are reported, its commits move on.
    fn request_done(&mut self, id: u64, failed: Option<ErrorCode>) {
        for c in &mut self.commits {
            if c.requests.remove(&id)
                && let Some(code) = failed
            {
                c.error.get_or_insert(code);
            }
        }
    }

    fn lose(&mut self, conn: ConnId, now: Instant, close: bool) {
        let c = if close {
            self.net.pool.close(conn, now, &mut self.rng)
        } else {
            self.net.pool.forget(conn, now, &mut self.rng)
        };
        let Some(c) = c else {
            return;
        };
        for req in c.in_flight {
            match req.tag {
                Tag::Metadata => self.net.metadata.failed(now),
                Tag::FindCoordinator => {
                    self.finding = false;
                    self.coordinator_retry = Some(now + self.config.network.retry_backoff);
                }
                Tag::ShareHeartbeat => {
                    self.coordinator = None;
                    self.member.lost(now, self.config.network.retry_backoff);
                }
                Tag::ShareFetch(id) | Tag::ShareAck(id) => self.request_lost(id, now),
                Tag::GroupConfigs => self
                    .dead_letter
                    .failed(self.config.network.retry_backoff, now),
                _ => {}
            }
        }
        self.net.metadata.request_refresh();
    }

    /// A request's answer never came: its session may or may not have moved on, so a new
    /// one starts; its acknowledgements are reported failed (the records go to another
    /// delivery once their locks expire).
    fn request_lost(&mut self, id: u64, now: Instant) {
        let Some(r) = self.requests.remove(&id) else {
            return;
        };
        if let Some(s) = self.sessions.get_mut(&r.node) {
            s.busy = false;
            s.reset();
            s.retry_at = Some(now + self.config.network.retry_backoff);
            if r.epoch == FINAL {
                s.closed = true;
            }
        }
        for (tip, sent) in &r.acks {
            self.report(*tip, sent, Some(ErrorCode::NetworkException));
        }
        self.request_done(id, Some(ErrorCode::NetworkException));
    }

    fn on_response(&mut self, conn: ConnId, req: InFlight, frame: Bytes, now: Instant) {
        match req.tag {
            Tag::Metadata => {
                match frame::decode_response_as::<MetadataResponse>(req.version, frame) {
                    Ok((_, resp)) => self.on_metadata(&resp, now),
                    Err(_) => {
                        self.net.metadata.failed(now);
                        self.lose(conn, now, true);
                    }
                }
            }
            Tag::FindCoordinator => {
                match frame::decode_response_as::<FindCoordinatorResponse>(req.version, frame) {
                    Ok((_, r)) => self.on_find_coordinator(&r, req.version, now),
                    Err(_) => {
                        self.finding = false;
                        self.lose(conn, now, true);
                    }
                }
            }
            Tag::ShareHeartbeat => {
                match frame::decode_response_as::<ShareGroupHeartbeatResponse>(req.version, frame) {
                    Ok((_, r)) => self.on_heartbeat(&r, now),
                    Err(_) => {
                        self.member.lost(now, self.config.network.retry_backoff);
                        self.lose(conn, now, true);
                    }
                }
            }
            Tag::ShareFetch(id) => {
                match frame::decode_response_as::<ShareFetchResponse>(req.version, frame) {
                    Ok((_, r)) => self.on_share_fetch(id, r, now),
                    Err(_) => {
                        self.request_lost(id, now);
                        self.lose(conn, now, true);
                    }
                }
            }
            Tag::ShareAck(id) => {
                match frame::decode_response_as::<ShareAcknowledgeResponse>(req.version, frame) {
                    Ok((_, r)) => self.on_share_acknowledge(id, &r, now),
                    Err(_) => {
                        self.request_lost(id, now);
                        self.lose(conn, now, true);
                    }
                }
            }
            Tag::GroupConfigs => {
                let backoff = self.config.network.retry_backoff;
                match frame::decode_response_as::<DescribeConfigsResponse>(req.version, frame) {
                    Ok((_, r)) => {
                        let level = self.net.pool.get_mut(conn).map_or(0, |c| c.share_version);
                        let max_age = self.config.network.metadata_max_age;
                        self.dead_letter.answered(&r, level, backoff, max_age, now);
                    }
                    Err(_) => {
                        self.dead_letter.failed(backoff, now);
                        self.lose(conn, now, true);
                    }
                }
            }
            _ => {}
        }
    }

    fn on_metadata(&mut self, resp: &MetadataResponse, now: Instant) {
        self.net.metadata.update(resp, now);
        for t in &resp.topics {
            let Some(name) = t.name.as_deref() else {
                continue;
            };
            let Some(name) = self.topics.get_key_value(name).map(|(k, _)| k.clone()) else {
                continue;
            };
            if ErrorCode::from_code(t.error_code) != ErrorCode::None {
                continue;
            }
            let meta = TopicMeta::from_response(t);
            self.names.insert(meta.id, name.clone());
            self.topics.insert(name, Some(meta));
        }
        self.report_assignment();
    }

    fn report_assignment(&mut self) {
        let known = self
            .parts
            .iter()
            .all(|((id, _), p)| !p.assigned || self.names.contains_key(id));
        if self.unreported && known {
            self.unreported = false;
            let partitions = self.assignment();
            self.events.push_back(ShareEvent::Assigned { partitions });
        }
    }

    fn on_find_coordinator(&mut self, r: &FindCoordinatorResponse, version: i16, now: Instant) {
        self.finding = false;
        let (code, node, host, port) = crate::coordinator::answer(r, version);
        if code != ErrorCode::None || node < 0 {
            self.coordinator_retry = Some(now + self.config.network.retry_backoff);
            return;
        }
        self.coordinator = Some(node);
        self.coordinator_retry = None;
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

    fn on_heartbeat(&mut self, r: &ShareGroupHeartbeatResponse, now: Instant) {
        match self
            .member
            .on_response(r, now, self.config.network.retry_backoff)
        {
            Heard::Nothing | Heard::Left => {}
            Heard::FindCoordinator => self.coordinator = None,
            Heard::Fenced => {
                for p in self.parts.values_mut() {
                    p.assigned = false;
                }
            }
            Heard::Fatal(code) => {
                for p in self.parts.values_mut() {
                    p.assigned = false;
                }
                self.events.push_back(ShareEvent::GroupError {
                    error: ConsumeError::Broker(code),
                });
            }
            Heard::Assigned(assignment) => {
                let now_assigned: BTreeSet<Tip> = assignment
                    .iter()
                    .flat_map(|(id, ps)| ps.iter().map(|p| (*id, *p)))
                    .collect();
                for (tip, p) in &mut self.parts {
                    p.assigned = now_assigned.contains(tip);
                }
                for tip in &now_assigned {
                    self.parts.entry(*tip).or_default().assigned = true;
                }
                if assignment
                    .iter()
                    .any(|(id, _)| !self.names.contains_key(id))
                {
                    self.net.metadata.request_refresh();
                }
                let partitions = self.assignment();
                self.events.push_back(ShareEvent::Assigned { partitions });
            }
        }
    }

    /// The top-level error of a share request: whether the session goes on.
    fn session_error(&mut self, node: i32, code: ErrorCode, now: Instant) -> bool {
        let backoff = now + self.config.network.retry_backoff;
        let Some(s) = self.sessions.get_mut(&node) else {
            return false;
        };
        match code {
            ErrorCode::None => true,
            ErrorCode::ShareSessionNotFound | ErrorCode::InvalidShareSessionEpoch => {
                s.reset();
                false
            }
            code => {
                s.reset();
                s.retry_at = Some(backoff);
                if !code.is_retriable() {
                    self.events.push_back(ShareEvent::GroupError {
                        error: ConsumeError::Broker(code),
                    });
                }
                self.net.metadata.request_refresh();
                false
            }
        }
    }

    fn on_share_fetch(&mut self, id: u64, r: ShareFetchResponse, now: Instant) {
        let Some(req) = self.requests.remove(&id) else {
            return;
        };
        if let Some(s) = self.sessions.get_mut(&req.node) {
            s.busy = false;
        }
        let code = ErrorCode::from_code(r.error_code);
        if !self.session_error(req.node, code, now) {
            for (tip, sent) in &req.acks {
                self.report(*tip, sent, Some(code));
            }
            self.request_done(id, Some(code));
            return;
        }
        if let Some(s) = self.sessions.get_mut(&req.node) {
            s.answered(req.epoch, &req.added, &req.forgotten);
        }
        self.learn_endpoints(
            r.node_endpoints
                .iter()
                .map(|e| (e.node_id, e.host.to_string(), e.port)),
        );
        if let Ok(ms) = u64::try_from(r.acquisition_lock_timeout_ms)
            && ms > 0
        {
            self.lock = std::time::Duration::from_millis(ms);
        }
        let lock_until = now + self.lock;
        let mut answered: HashSet<Tip> = HashSet::new();
        let mut first_error = None;
        let mut brought = false;
        for topic in r.responses {
            for p in topic.partitions {
                let tip = (topic.topic_id, p.partition_index);
                answered.insert(tip);
                let ack_code = ErrorCode::from_code(p.acknowledge_error_code);
                if let Some((_, sent)) = req.acks.iter().find(|(t, _)| *t == tip) {
                    let error = (ack_code != ErrorCode::None).then_some(ack_code);
                    if let Some(e) = error {
                        first_error.get_or_insert(e);
                    }
                    self.report(tip, sent, error);
                }
                let fetch_code = ErrorCode::from_code(p.error_code);
                if fetch_code != ErrorCode::None {
                    self.partition_error(tip, fetch_code, now);
                    continue;
                }
                if p.acquired_records.is_empty() {
                    continue;
                }
                brought = true;
                self.take_records(tip, req.node, p.records, &p.acquired_records, lock_until);
            }
        }
        self.brought.insert(req.node, brought);
        for (tip, sent) in &req.acks {
            if !answered.contains(tip) {
                self.report(*tip, sent, None);
            }
        }
        self.request_done(id, first_error);
    }

    fn on_share_acknowledge(&mut self, id: u64, r: &ShareAcknowledgeResponse, now: Instant) {
        let Some(req) = self.requests.remove(&id) else {
            return;
        };
        if let Some(s) = self.sessions.get_mut(&req.node) {
            s.busy = false;
        }
        let code = ErrorCode::from_code(r.error_code);
        if !self.session_error(req.node, code, now) {
            if req.epoch == FINAL
                && let Some(s) = self.sessions.get_mut(&req.node)
            {
                s.closed = true;
            }
            for (tip, sent) in &req.acks {
                self.report(*tip, sent, Some(code));
            }
            self.request_done(id, Some(code));
            return;
        }
        if let Some(s) = self.sessions.get_mut(&req.node) {
            s.answered(req.epoch, &[], &[]);
        }
        self.learn_endpoints(
            r.node_endpoints
                .iter()
                .map(|e| (e.node_id, e.host.to_string(), e.port)),
        );
        let mut first_error = None;
        let mut answered: HashSet<Tip> = HashSet::new();
        for topic in &r.responses {
            for p in &topic.partitions {
                let tip = (topic.topic_id, p.partition_index);
                answered.insert(tip);
                let Some((_, sent)) = req.acks.iter().find(|(t, _)| *t == tip) else {
                    continue;
                };
                let code = ErrorCode::from_code(p.error_code);
                let error = (code != ErrorCode::None).then_some(code);
                if let Some(e) = error {
                    first_error.get_or_insert(e);
                    if matches!(
                        e,
                        ErrorCode::NotLeaderOrFollower | ErrorCode::FencedLeaderEpoch
                    ) {
                        self.net.metadata.request_refresh();
                    }
                }
                self.report(tip, sent, error);
            }
        }
        for (tip, sent) in &req.acks {
            if !answered.contains(tip) {
                self.report(*tip, sent, None);
            }
        }
        self.request_done(id, first_error);
    }

    /// Leaders the broker named: their addresses, before metadata says so.
    fn learn_endpoints(&mut self, endpoints: impl Iterator<Item = (i32, String, i32)>) {
        for (node, host, port) in endpoints {
            if let Ok(port) = u16::try_from(port) {
                self.net
                    .metadata
                    .brokers
                    .insert(node, BrokerAddress { host, port });
            }
        }
    }

    fn partition_error(&mut self, tip: Tip, code: ErrorCode, now: Instant) {
        let backoff = now + self.config.network.retry_backoff;
        if let Some(p) = self.parts.get_mut(&tip) {
            p.retry_at = Some(backoff);
        }
        match code {
            ErrorCode::NotLeaderOrFollower
            | ErrorCode::FencedLeaderEpoch
            | ErrorCode::UnknownLeaderEpoch
            | ErrorCode::UnknownTopicOrPartition
            | ErrorCode::UnknownTopicId
            | ErrorCode::KafkaStorageError => self.net.metadata.request_refresh(),
            code if code.is_retriable() => {}
            code => {
                if let Some(topic) = self.names.get(&tip.0).cloned() {
                    self.events.push_back(ShareEvent::Error {
                        topic,
                        partition: tip.1,
                        error: ConsumeError::Broker(code),
                    });
                }
            }
        }
    }

    /// A partition's acquired records: buffered as batches; offsets with no record are
    /// settled as gaps, and those in bytes that do not decode are released.
    fn take_records(
        &mut self,
        tip: Tip,
        node: i32,
        records: Bytes,
        acquired: &[kasio_proto::messages::share_fetch_response::AcquiredRecords],
        lock_until: Instant,
    ) {
        let Some(topic) = self.names.get(&tip.0).cloned() else {
            // Records of a topic this member cannot name: released at once.
            let part = self.parts.entry(tip).or_default();
            for a in acquired {
                part.pending.push(
                    a.first_offset,
                    a.last_offset,
                    AcknowledgeType::Release.code(),
                );
            }
            part.pending_since.get_or_insert(self.now);
            return;
        };
        let split = acquired::split(&topic, tip.1, records, acquired, lock_until);
        let part = self.parts.entry(tip).or_default();
        // Records delivered to this member again: what waits for their earlier delivery
        // would settle (or renew) the new one, or reach the broker twice in one request.
        let mut superseded = acks::Sent::default();
        for a in acquired {
            superseded
                .0
                .extend(part.pending.supersede(a.first_offset, a.last_offset).0);
        }
        for (f, l) in &split.gaps {
            part.pending.push(*f, *l, GAP);
        }
        for (f, l) in &split.undecodable {
            part.pending.push(*f, *l, AcknowledgeType::Release.code());
        }
        if !split.gaps.is_empty() || !split.undecodable.is_empty() {
            part.pending_since.get_or_insert(self.now);
        }
        for b in &split.batches {
            for &(f, l, _) in b.acquired() {
                part.buffered.insert(f, l);
            }
        }
        if let Some(e) = split.error {
            self.events.push_back(ShareEvent::Error {
                topic: topic.clone(),
                partition: tip.1,
                error: ConsumeError::Corrupt(e),
            });
        }
        if !superseded.is_empty() {
            let left = part.pending.has_acks();
            self.report(tip, &superseded, Some(ErrorCode::InvalidRecordState));
            for c in &mut self.commits {
                if c.unsent.contains(&tip) {
                    c.error.get_or_insert(ErrorCode::InvalidRecordState);
                    if !left {
                        c.unsent.remove(&tip);
                    }
                }
            }
        }
        let n = split.batches.len();
        if n > 0 {
            *self.buffered_from.entry(node).or_default() += n;
        }
        self.buffer
            .extend(split.batches.into_iter().map(|b| (b, node)));
    }
}

fn not_acquired(topic: &str, partition: i32, offset: i64) -> AcknowledgeError {
    AcknowledgeError::NotAcquired {
        topic: topic.into(),
        partition,
        offset,
    }
}

fn session_epoch(sessions: &BTreeMap<i32, Session>, node: i32) -> i32 {
    sessions.get(&node).map_or(INITIAL, |s| s.epoch)
}
