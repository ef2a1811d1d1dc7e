//! The consumer: partitions assigned by the caller, fetched from their leaders, handed out
//! as whole record batches that borrow the fetched bytes.

mod assignor;
mod classic;
mod config;
mod fetch_session;
mod fetched;
mod fetching;
mod group;
mod offsets;
mod revocation;

use crate::TopicPartition;
pub use assignor::{Assignor, GroupSubscription, PartitionAssignor};
pub use config::{ConsumerConfig, GroupProtocol, IsolationLevel, OffsetReset};
pub use fetched::{ConsumerRecord, FetchedBatch, FetchedRecords};
pub use group::MemberState;
pub use offsets::{CommitId, CommitOutcome};

/// Names partitions for an event.
fn named(partitions: impl IntoIterator<Item = Tp>) -> Vec<TopicPartition> {
    partitions.into_iter().map(TopicPartition::from).collect()
}

use crate::{
    conn::{CloseReason, ConnId, ConnectAction, InFlight, Node, Purpose, Tag, Transmit},
    metadata::TopicMeta,
    network::{Earliest, Network, Timeout},
    rng::Rng,
};
use bytes::Bytes;
use kasio_proto::{
    ErrorCode, Uuid, frame,
    messages::{
        FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse, MetadataResponse,
        fetch_request::{FetchPartition, FetchTopic, ForgottenTopic},
        list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic},
    },
    records::{Batch, Batches, ControlRecord, ControlRecordType},
};
use std::{
    collections::{BTreeMap, HashMap, HashSet, VecDeque},
    sync::Arc,
    time::Instant,
};

/// Where to move a partition's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seek {
    /// This offset.
    Offset(i64),
    /// The first offset still in the log.
    Beginning,
    /// The end of the log.
    End,
    /// The first offset whose timestamp is at or after this (Unix milliseconds); the end
    /// if there is none.
    Timestamp(i64),
}

/// Why a partition stopped, or something it reached.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConsumerEvent {
    /// Everything up to the partition's end has been handed out.
    EndOfPartition {
        /// The topic.
        topic: Arc<str>,
        /// The partition.
        partition: i32,
        /// The position: the offset the next record will have.
        offset: i64,
    },
    /// The partition's log was truncated below the position (an unclean leader election,
    /// detected through the leader epochs, KIP-320): reading goes on from `to`, and the
    /// records already handed out from `to` up to `from` no longer exist.
    Truncated {
        /// The topic.
        topic: Arc<str>,
        /// The partition.
        partition: i32,
        /// The position the consumer had reached.
        from: i64,
        /// Where reading goes on: the end of the log the leader kept.
        to: i64,
    },
    /// The group gave this member partitions; they start from the committed offsets.
    Assigned {
        /// The partitions.
        partitions: Vec<TopicPartition>,
    },
    /// The group is taking these partitions away and, with
    /// [`hold_revocations`](ConsumerConfig::hold_revocations), waits for
    /// [`Consumer::release_revocation`]: the member still owns them, so offsets committed
    /// now (what the application processed) are where their next owner starts. Batches of
    /// them not yet taken are dropped. [`ConsumerEvent::Revoked`] follows the release.
    Revoking {
        /// The partitions.
        partitions: Vec<TopicPartition>,
    },
    /// The member gave partitions up; with `enable.auto.commit` their positions were
    /// committed first, without it committing is the application's (on
    /// [`ConsumerEvent::Revoking`] when revocations are held, or in the transaction that
    /// read them).
    Revoked {
        /// The partitions.
        partitions: Vec<TopicPartition>,
    },
    /// The coordinator fenced the member: these partitions were lost without a commit,
    /// and the member joins again.
    Lost {
        /// The partitions.
        partitions: Vec<TopicPartition>,
    },
    /// The group refused the member for good (the member left the group).
    GroupError {
        /// Why.
        error: ConsumeError,
    },
    /// TLS or SASL failed (wrong credentials, an untrusted certificate, ...): the
    /// consumer stops dialling.
    Security(crate::SecurityError),
    /// The partition stopped fetching; `seek` starts it again.
    Error {
        /// The topic.
        topic: Arc<str>,
        /// The partition.
        partition: i32,
        /// What went wrong.
        error: ConsumeError,
    },
}

/// Why a partition stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConsumeError {
    /// The position is outside the log and `auto.offset.reset` is `none`.
    OffsetOutOfRange {
        /// The position that was asked for.
        offset: i64,
    },
    /// The broker refused with a non-retriable error.
    Broker(ErrorCode),
    /// A fetched batch could not be decoded.
    Corrupt(String),
    /// The group has no committed offset for the partition and `auto.offset.reset` is
    /// `none`.
    NoOffset,
    /// Committing needs a `group.id`.
    NoGroup,
    /// A subscription pattern that is not a valid regular expression.
    InvalidPattern(String),
    /// The consumer closed before the operation ended.
    Closed,
    /// The application's commit was not stored within `default.api.timeout.ms` (the
    /// coordinator could not be reached, or kept answering with retriable errors).
    CommitTimeout(std::time::Duration),
    /// The partition's log was truncated below what was read (an unclean leader
    /// election, KIP-320) and `auto.offset.reset` is `none`.
    LogTruncation {
        /// The position the consumer had reached.
        offset: i64,
        /// Where the leader's log now ends for what was read.
        truncated_at: i64,
    },
}

impl ConsumerEvent {
    /// Whether the event changes what this member owns: `Assigned`, `Revoking`, `Revoked`
    /// or `Lost`, the events of the Java client's rebalance listener.
    ///
    /// ```
    /// use kasio_core::ConsumerEvent;
    /// let lost = ConsumerEvent::Lost { partitions: vec![("orders", 0).into()] };
    /// assert!(lost.is_rebalance());
    /// ```
    #[must_use]
    pub fn is_rebalance(&self) -> bool {
        matches!(
            self,
            Self::Assigned { .. }
                | Self::Revoking { .. }
                | Self::Revoked { .. }
                | Self::Lost { .. }
        )
    }
}

impl std::fmt::Display for ConsumeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::OffsetOutOfRange { offset } => {
                write!(
                    f,
                    "offset {offset} is out of range and auto.offset.reset is none"
                )
            }
            Self::Broker(code) => write!(f, "broker error {}: {}", code.name(), code.message()),
            Self::Corrupt(why) => write!(f, "corrupt record batch: {why}"),
            Self::NoOffset => {
                f.write_str("no committed offset for the partition and auto.offset.reset is none")
            }
            Self::NoGroup => f.write_str("committing offsets needs a group.id"),
            Self::Closed => f.write_str("the consumer closed"),
            Self::CommitTimeout(t) => write!(
                f,
                "the commit was not stored within default.api.timeout.ms ({} ms)",
                t.as_millis()
            ),
            Self::InvalidPattern(why) => write!(f, "invalid subscription pattern: {why}"),
            Self::LogTruncation {
                offset,
                truncated_at,
            } => write!(
                f,
                "the log was truncated at {truncated_at}, below the position {offset}, and \
                 auto.offset.reset is none"
            ),
        }
    }
}

impl std::error::Error for ConsumeError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    /// Look the offset up with ListOffsets.
    Reset(Seek),
    /// ListOffsets `request` is in flight for this seek (asked again if it fails). Only
    /// that request's answer counts: a seek since may have sent another, and the
    /// answer to the one before it, still on its way, is for a different seek.
    Resetting { seek: Seek, request: u64 },
    /// Fetch from here.
    At(i64),
    /// Stopped by an error until the next seek.
    Failed,
    /// Start from the group's committed offset.
    Committed,
    /// OffsetFetch `request` is in flight; as with `Resetting`, only its answer counts.
    FetchingCommitted { request: u64 },
}

/// What a request in the consumer's table is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RequestKind {
    Fetch,
    ListOffsets,
    OffsetFetch,
    Commit,
}

#[derive(Debug)]
struct PartitionState {
    position: Position,
    paused: bool,
    fetching: bool,
    retry_after: Option<Instant>,
    end_reported: bool,
    /// The leader epoch of the last batch read (-1 until one is): Fetch v12+ sends it so
    /// the leader can say where its log diverged from what was read (KIP-320).
    last_epoch: i32,
    /// The end a reader can reach (high watermark, or last stable offset for
    /// read_committed) as the last Fetch answered; -1 before one did.
    end: i64,
    /// Assigned or moved since the last Fetch naming it was sent: its next Fetch must be a
    /// full one, since a fetch session leaves out of its answers a partition it thinks
    /// unchanged, and this one needs an answer (its end, at least).
    fresh: bool,
    /// The replica the leader named for this consumer's rack (KIP-392), and until when
    /// to fetch from it (`metadata.max.age.ms`, as the Java client).
    read_replica: Option<(i32, Instant)>,
}

impl PartitionState {
    fn new(position: Position) -> Self {
        Self {
            position,
            paused: false,
            fetching: false,
            read_replica: None,
            retry_after: None,
            end_reported: false,
            last_epoch: -1,
            end: -1,
            fresh: true,
        }
    }
}

type Tp = (Arc<str>, i32);

/// The sans-IO consumer for assigned partitions.
///
/// Inputs and outputs follow [`Producer`](crate::Producer): `handle_connected`,
/// `handle_input`, `handle_closed`, `handle_timeout` in; after each, drain `poll_connect`,
/// `poll_transmit`, then `poll_rebalance_event` (what this member owns changed),
/// `poll_batch` (records) and `poll_event`, then read `poll_timeout`.
///
/// ```
/// use kasio_core::{Consumer, ConsumerConfig, Seek};
/// use std::time::Instant;
/// let now = Instant::now();
/// let mut consumer = Consumer::new(ConsumerConfig::new("localhost:9092")?, now, 1)?;
/// consumer.assign(&[("orders", 0), ("orders", 1)], now);
/// consumer.seek("orders", 1, Seek::Beginning, now);
/// assert!(consumer.poll_connect().is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Consumer {
    config: ConsumerConfig,
    rng: Rng,
    now: Instant,
    /// Connections, the metadata cache and the bytes for the driver.
    net: Network,
    topics: HashMap<Arc<str>, Option<TopicMeta>>,
    /// A pattern subscription: the topics it matched when last applied.
    pattern: Option<(regex_lite::Regex, Option<Vec<Arc<str>>>)>,
    partitions: BTreeMap<Tp, PartitionState>,
    requests: HashMap<u64, (i32, Vec<Tp>, RequestKind)>,
    /// Commits in flight and ended, and auto commit's schedule.
    commits: offsets::Commits,
    group: Option<offsets::GroupOffsets>,
    member: Option<group::Membership>,
    classic: Option<classic::Classic>,
    /// A revocation waiting for the application.
    hold: Option<revocation::Hold>,
    /// Fetches in flight and batches fetched, not yet taken.
    fetching: fetching::Fetching,
    next_request: u64,
    events: VecDeque<ConsumerEvent>,
    new_deadline: bool,
    security_reported: bool,
}

impl Consumer {
    /// A consumer with `config`, created at `now`; `seed` drives its random choices.
    ///
    /// # Errors
    /// [`ConfigError`](crate::ConfigError) if the settings conflict.
    pub fn new(
        config: ConsumerConfig,
        now: Instant,
        seed: u64,
    ) -> Result<Self, crate::ConfigError> {
        config.validate()?;
        let net = Network::new(&config.network, config.security.build()?, now, seed);
        Ok(Self {
            group: config.group_id.clone().map(offsets::GroupOffsets::new),
            commits: offsets::Commits::default(),
            member: None,
            classic: None,
            hold: None,
            fetching: fetching::Fetching::new(usize::try_from(config.fetch_max_bytes).unwrap_or(0)),
            config,
            rng: Rng::new(seed),
            now,
            net,
            topics: HashMap::new(),
            pattern: None,
            partitions: BTreeMap::new(),
            requests: HashMap::new(),
            next_request: 1,
            events: VecDeque::new(),
            new_deadline: false,
            security_reported: false,
        })
    }

    /// Replaces the assignment. New partitions start from `auto.offset.reset` until a
    /// `seek`; partitions kept keep their position.
    pub fn assign(&mut self, partitions: &[(&str, i32)], now: Instant) {
        // A rare command: the shell re-reads the deadlines after it.
        self.new_deadline = true;
        let reset = match (&self.group, self.config.auto_offset_reset) {
            (Some(_), _) => Position::Committed,
            (None, OffsetReset::Earliest) => Position::Reset(Seek::Beginning),
            (None, OffsetReset::Latest | OffsetReset::None) => Position::Reset(Seek::End),
        };
        let wanted: HashSet<(&str, i32)> = partitions.iter().copied().collect();
        self.partitions
            .retain(|(t, p), _| wanted.contains(&(t.as_ref(), *p)));
        self.fetching.retain(|t, p| wanted.contains(&(t, p)));
        for &(topic, partition) in partitions {
            let name = match self.topics.get_key_value(topic) {
                Some((k, _)) => k.clone(),
                None => {
                    let k: Arc<str> = topic.into();
                    self.topics.insert(k.clone(), None);
                    self.net.metadata.request_refresh();
                    k
                }
            };
            self.partitions
                .entry((name, partition))
                .or_insert(PartitionState::new(reset));
        }
        self.drain(now);
    }

    /// Moves a partition's position; batches already fetched for it are dropped.
    pub fn seek(&mut self, topic: &str, partition: i32, to: Seek, now: Instant) {
        // A rare command: the shell re-reads the deadlines after it.
        self.new_deadline = true;
        let Some((key, state)) = self
            .partitions
            .iter_mut()
            .find(|((t, p), _)| t.as_ref() == topic && *p == partition)
        else {
            return;
        };
        state.position = match to {
            Seek::Offset(o) => Position::At(o),
            other => Position::Reset(other),
        };
        state.end_reported = false;
        state.last_epoch = -1;
        state.fresh = true;
        let key = key.clone();
        self.fetching
            .retain(|t, p| !(t == key.0.as_ref() && p == key.1));
        self.drain(now);
    }

    /// Stops (`true`) or restarts (`false`) fetching a partition.
    pub fn pause(&mut self, topic: &str, partition: i32, paused: bool, now: Instant) {
        // A rare command: the shell re-reads the deadlines after it.
        self.new_deadline = true;
        if let Some(s) = self
            .partitions
            .iter_mut()
            .find(|((t, p), _)| t.as_ref() == topic && *p == partition)
            .map(|(_, s)| s)
        {
            s.paused = paused;
        }
        self.drain(now);
    }

    /// The offset of the next record a partition will hand out, once known.
    pub fn position(&self, topic: &str, partition: i32) -> Option<i64> {
        self.partitions
            .iter()
            .find(|((t, p), _)| t.as_ref() == topic && *p == partition)
            .and_then(|(_, s)| match s.position {
                Position::At(o) => Some(o),
                _ => None,
            })
    }

    /// The partitions assigned, by the caller or the group.
    pub fn assignment(&self) -> Vec<(Arc<str>, i32)> {
        self.partitions.keys().cloned().collect()
    }

    /// How many records of a partition are yet to be handed out: from the position the
    /// caller has reached to the end the last Fetch reported (the last stable offset with
    /// read_committed); `None` before both are known.
    pub fn lag(&self, topic: &str, partition: i32) -> Option<i64> {
        let (tp, s) = self
            .partitions
            .iter()
            .find(|((t, p), _)| t.as_ref() == topic && *p == partition)?;
        let Position::At(fetched) = s.position else {
            return None;
        };
        let handed = self.fetching.handed_to(tp, fetched);
        (s.end >= 0).then(|| (s.end - handed).max(0))
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
            // A response may have closed the connection; what follows it is void.
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

    /// Time passed: requests time out, backoffs end.
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

    /// The next fetched batch, in fetch order (each partition in offset order).
    pub fn poll_batch(&mut self) -> Option<FetchedBatch> {
        self.poll_batch_at_most(usize::MAX)
    }

    /// The next fetched batch, at most `max` records of it (and `max.poll.records`): the
    /// rest of a larger batch is the next one handed out.
    pub fn poll_batch_at_most(&mut self, max: usize) -> Option<FetchedBatch> {
        let (b, room) = self.fetching.take(max.min(self.config.max_poll_records))?;
        if room {
            // Room again: fetching may resume, at the drive loop's next `handle_timeout`.
            self.new_deadline = true;
        }
        Some(b)
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ConsumerEvent> {
        self.events.pop_front()
    }

    /// The next event that changes what this member owns ([`ConsumerEvent::is_rebalance`]),
    /// taken ahead of the other events, to be taken ahead of the batches: as the Java
    /// client's poll runs its rebalance listener before returning records, the application
    /// learns of a revocation without first working through the batches queued before it.
    /// Those batches are all of partitions still owned: a partition's unread batches go
    /// when the partition does.
    ///
    /// ```
    /// use kasio_core::{Consumer, ConsumerConfig};
    /// use std::time::Instant;
    /// let now = Instant::now();
    /// let mut consumer = Consumer::new(ConsumerConfig::new("localhost:9092")?, now, 1)?;
    /// while let Some(event) = consumer.poll_rebalance_event() {
    ///     println!("{event:?}");
    /// }
    /// while let Some(batch) = consumer.poll_batch() {
    ///     println!("partition {} from offset {}", batch.partition, batch.start_offset());
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn poll_rebalance_event(&mut self) -> Option<ConsumerEvent> {
        let at = self.events.iter().position(ConsumerEvent::is_rebalance)?;
        self.events.remove(at)
    }

    /// Whether a waiting shell must come back now (output waiting, or a new deadline).
    pub fn needs_attention(&self) -> bool {
        self.new_deadline
            || self.net.has_output()
            || self.fetching.has_batches()
            || !self.events.is_empty()
            || !self.commits.outcomes.is_empty()
    }

    /// Gives the consumer a chance to act after the caller took batches (fetching pauses
    /// while `fetch.max.bytes` of batches wait to be taken). A driver need not call it:
    /// after batches are taken, [`poll_timeout`](Self::poll_timeout) asks for
    /// `handle_timeout` at once, which does the same.
    pub fn resume_fetching(&mut self, now: Instant) {
        self.drain(now);
    }

    /// The earliest time `handle_timeout` has work to do.
    pub fn poll_timeout(&mut self) -> Option<Timeout> {
        self.new_deadline = false;
        let now = self.now;
        if self.fetching.resume_due() {
            return Some(Timeout {
                at: now,
                reason: "batches taken: fetching may resume",
            });
        }
        let mut earliest = Earliest::new(now);
        self.net.offer_request_deadlines(&mut earliest);
        self.net.offer_metadata_deadlines(&mut earliest);
        for s in self.partitions.values() {
            if let Some(at) = s.retry_after {
                earliest.offer(at, "retry backoff");
            }
        }
        if let Some(at) = self
            .group
            .as_ref()
            .and_then(offsets::GroupOffsets::retry_at)
        {
            earliest.offer(at, "group retry backoff");
        }
        if let Some(at) = self
            .member
            .as_ref()
            .and_then(group::Membership::next_heartbeat)
        {
            earliest.offer(at, "group heartbeat");
        }
        if let Some(at) = self
            .classic
            .as_ref()
            .and_then(classic::Classic::next_action)
        {
            earliest.offer(at, "classic group");
        }
        if let Some(at) = self.commits.next_auto {
            earliest.offer(at, "auto commit");
        }
        if let Some(at) = self.next_commit_expiry() {
            earliest.offer(at, "commit timeout");
        }
        if let Some(h) = &self.hold {
            earliest.offer(h.until(), "revocation held for the application");
        }
        earliest.best()
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
                Tag::Fetch(id) | Tag::ListOffsets(id) => self.request_lost(id, now),
                tag @ (Tag::FindCoordinator | Tag::OffsetFetch(_) | Tag::OffsetCommit(_)) => {
                    self.group_lost(tag, now);
                }
                Tag::Heartbeat => self.heartbeat_lost(now),
                Tag::Classic => self.classic_lost(now),
                _ => {}
            }
        }
        self.net.metadata.request_refresh();
    }

    fn request_lost(&mut self, id: u64, now: Instant) {
        let Some((broker, parts, kind)) = self.requests.remove(&id) else {
            return;
        };
        if kind == RequestKind::Fetch {
            self.fetching.lost(broker);
        }
        let backoff = now + self.config.network.retry_backoff;
        for tp in parts {
            if let Some(s) = self.partitions.get_mut(&tp) {
                s.fetching = false;
                s.retry_after = Some(backoff);
                if let Position::Resetting { seek, request } = s.position
                    && request == id
                {
                    s.position = Position::Reset(seek);
                }
            }
        }
    }

    /// Forgets every partition and the batches fetched for them: which partitions those were.
    fn give_up_all(&mut self) -> Vec<Tp> {
        let all = std::mem::take(&mut self.partitions).into_keys().collect();
        self.fetching.clear();
        all
    }

    fn drain(&mut self, now: Instant) {
        self.now = now;
        self.fetching.resumed();
        if let Some(e) = &self.net.pool.fatal
            && !std::mem::replace(&mut self.security_reported, true)
        {
            self.events.push_back(ConsumerEvent::Security(e.clone()));
        }
        self.expire_commits(now);
        self.send_metadata(now);
        self.reconcile(now);
        self.send_group(now);
        self.send_heartbeat(now);
        self.classic_step(now);
        if self.group.as_ref().is_some_and(|g| !g.commits.is_empty()) {
            // A rebalance's commit, queued just now: it goes before the member rejoins.
            self.send_group(now);
        }
        self.auto_commit(now);
        self.send_list_offsets(now);
        self.send_fetches(now);
    }

    /// Where the caller got to in a partition: the start of its first batch not yet taken,
    /// else its position; `None` without a position.
    fn handed_to(&self, tp: &Tp) -> Option<i64> {
        let Position::At(o) = self.partitions.get(tp)?.position else {
            return None;
        };
        Some(self.fetching.handed_to(tp, o))
    }

    /// Drops the fetched batches of `parts` not yet taken.
    fn drop_batches_of(&mut self, parts: &[Tp]) {
        self.fetching
            .retain(|t, p| !parts.iter().any(|tp| tp.0.as_ref() == t && tp.1 == p));
    }

    fn leader(&self, topic: &str, partition: i32) -> Option<i32> {
        self.topics
            .get(topic)?
            .as_ref()?
            .partitions
            .get(usize::try_from(partition).ok()?)?
            .leader
    }

    fn send_metadata(&mut self, now: Instant) {
        let missing = self
            .partitions
            .keys()
            .any(|(t, p)| self.leader(t, *p).is_none())
            || self.topics.values().any(Option::is_none);
        if missing {
            self.net.metadata.request_refresh();
        }
        // A pattern needs every topic's name, to match new ones as they appear.
        let named = self.pattern.is_none() && !self.broker_pattern();
        self.net.refresh_metadata(
            named.then(|| self.topics.keys().map(AsRef::as_ref)),
            false,
            &mut self.rng,
            now,
        );
    }

    fn send_list_offsets(&mut self, now: Instant) {
        let mut per_leader: BTreeMap<i32, Vec<(Tp, Seek)>> = BTreeMap::new();
        for (tp, s) in &self.partitions {
            let Position::Reset(seek) = s.position else {
                continue;
            };
            if s.retry_after.is_some_and(|t| t > now) {
                continue;
            }
            if let Some(leader) = self.leader(&tp.0, tp.1) {
                per_leader
                    .entry(leader)
                    .or_default()
                    .push((tp.clone(), seek));
            }
        }
        let isolation = self.isolation();
        for (leader, parts) in per_leader {
            let Some(addr) = self.net.metadata.address(Node::Broker(leader)).cloned() else {
                continue;
            };
            let Some(conn) =
                self.net
                    .pool
                    .ensure(Node::Broker(leader), Purpose::Control, &addr, now)
            else {
                continue;
            };
            let mut topics: Vec<ListOffsetsTopic> = Vec::new();
            for ((topic, partition), seek) in &parts {
                let timestamp = match seek {
                    Seek::Beginning => -2,
                    Seek::Timestamp(t) => *t,
                    Seek::End | Seek::Offset(_) => -1,
                };
                let p = ListOffsetsPartition {
                    partition_index: *partition,
                    current_leader_epoch: -1,
                    timestamp,
                    ..Default::default()
                };
                match topics.iter_mut().find(|t| *t.name == **topic) {
                    Some(t) => t.partitions.push(p),
                    None => topics.push(ListOffsetsTopic {
                        name: topic.as_ref().into(),
                        partitions: vec![p],
                        ..Default::default()
                    }),
                }
            }
            let req = ListOffsetsRequest {
                replica_id: -1,
                isolation_level: isolation,
                topics,
                timeout_ms: i32::try_from(self.config.network.request_timeout.as_millis())
                    .unwrap_or(i32::MAX),
                ..Default::default()
            };
            let id = self.next_request;
            self.next_request += 1;
            let deadline = now + self.config.network.request_timeout;
            if conn
                .send(
                    &req,
                    Tag::ListOffsets(id),
                    deadline,
                    &mut self.net.transmits,
                )
                .is_some()
            {
                for (tp, seek) in &parts {
                    if let Some(s) = self.partitions.get_mut(tp) {
                        s.position = Position::Resetting {
                            seek: *seek,
                            request: id,
                        };
                    }
                }
                let tps: Vec<Tp> = parts.into_iter().map(|(tp, _)| tp).collect();
                self.requests
                    .insert(id, (leader, tps, RequestKind::ListOffsets));
            }
        }
    }

    fn isolation(&self) -> i8 {
        match self.config.isolation_level {
            IsolationLevel::ReadUncommitted => 0,
            IsolationLevel::ReadCommitted => 1,
        }
    }

    /// The partitions to fetch now, by the broker to fetch them from (leaders with a
    /// Fetch out wait for its answer), and the brokers whose fetch session must start
    /// again (a partition there moved or was sought).
    fn fetchable(&self, now: Instant) -> (BTreeMap<i32, Vec<ToFetch>>, HashSet<i32>) {
        let mut per_leader: BTreeMap<i32, Vec<ToFetch>> = BTreeMap::new();
        let mut fresh: HashSet<i32> = HashSet::new();
        for (tp, s) in &self.partitions {
            let Position::At(offset) = s.position else {
                continue;
            };
            if s.paused || s.fetching || s.retry_after.is_some_and(|t| t > now) {
                continue;
            }
            let Some(leader) = self.fetch_source(tp, s, now) else {
                continue;
            };
            if !self.fetching.in_flight_to(leader) {
                per_leader
                    .entry(leader)
                    .or_default()
                    .push((tp.clone(), offset, s.last_epoch));
                if s.fresh {
                    fresh.insert(leader);
                }
            }
        }
        (per_leader, fresh)
    }

    fn send_fetches(&mut self, now: Instant) {
        if self.fetching.is_full() {
            return;
        }
        let (per_leader, fresh) = self.fetchable(now);
        let isolation = self.isolation();
        for (leader, parts) in per_leader {
            let Some(addr) = self.net.metadata.address(Node::Broker(leader)).cloned() else {
                continue;
            };
            let Some(conn) = self
                .net
                .pool
                .ensure(Node::Broker(leader), Purpose::Fetch, &addr, now)
            else {
                continue;
            };
            let Some(version) = conn.version(kasio_proto::ApiKey::Fetch) else {
                continue;
            };
            let session = self.fetching.session(leader);
            // Sessions exist from Fetch v7 on; before, every Fetch is full and sessionless.
            if fresh.contains(&leader) {
                session.reset();
            }
            let plan = if version >= 7 {
                session.plan(&parts)
            } else {
                session.reset();
                fetch_session::Plan {
                    session_id: 0,
                    session_epoch: -1,
                    send: parts.clone(),
                    forget: Vec::new(),
                }
            };
            let (topics, forgotten) = fetch_topics(
                &plan,
                &self.topics,
                version,
                self.config.max_partition_fetch_bytes,
            );
            let req = FetchRequest {
                replica_id: -1,
                max_wait_ms: i32::try_from(self.config.fetch_max_wait.as_millis())
                    .unwrap_or(i32::MAX),
                min_bytes: self.config.fetch_min_bytes,
                max_bytes: self.config.fetch_max_bytes,
                isolation_level: isolation,
                session_id: plan.session_id,
                session_epoch: plan.session_epoch,
                topics,
                forgotten_topics_data: forgotten,
                rack_id: self.config.client_rack.as_str().into(),
                ..Default::default()
            };
            let id = self.next_request;
            self.next_request += 1;
            let deadline = now + self.config.network.request_timeout + self.config.fetch_max_wait;
            let sent = conn
                .send(&req, Tag::Fetch(id), deadline, &mut self.net.transmits)
                .is_some();
            if !sent {
                self.fetching.not_sent(leader);
            }
            if sent {
                let tps: Vec<Tp> = parts.into_iter().map(|(tp, _, _)| tp).collect();
                for tp in &tps {
                    if let Some(s) = self.partitions.get_mut(tp) {
                        s.fetching = true;
                        s.fresh = false;
                    }
                }
                self.fetching.sent(leader);
                self.requests.insert(id, (leader, tps, RequestKind::Fetch));
            }
        }
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
            Tag::ListOffsets(id) => {
                match frame::decode_response_as::<ListOffsetsResponse>(req.version, frame) {
                    Ok((_, resp)) => self.on_list_offsets(id, &resp, now),
                    Err(_) => {
                        self.request_lost(id, now);
                        self.lose(conn, now, true);
                    }
                }
            }
            Tag::Fetch(id) => {
                match frame::decode_response_as::<FetchResponse>(req.version, frame) {
                    Ok((_, resp)) => self.on_fetch(id, resp, now),
                    Err(_) => {
                        self.request_lost(id, now);
                        self.lose(conn, now, true);
                    }
                }
            }
            Tag::FindCoordinator | Tag::OffsetFetch(_) | Tag::OffsetCommit(_) => {
                self.on_group_response(conn, req, frame, now);
            }
            Tag::Heartbeat => self.on_heartbeat(conn, req, frame, now),
            Tag::Classic => self.on_classic(conn, req, frame, now),
            _ => {}
        }
    }

    fn on_metadata(&mut self, resp: &MetadataResponse, now: Instant) {
        self.net.metadata.update(resp, now);
        self.match_pattern(resp, now);
        self.learn_assigned_topics(resp);
        for t in &resp.topics {
            let Some(name) = t.name.as_deref() else {
                continue;
            };
            let Some(slot) = self.topics.get_mut(name) else {
                continue;
            };
            if ErrorCode::from_code(t.error_code) != ErrorCode::None {
                continue;
            }
            *slot = Some(TopicMeta::from_response(t));
        }
    }

    fn on_list_offsets(&mut self, id: u64, resp: &ListOffsetsResponse, now: Instant) {
        let Some((_, parts, _)) = self.requests.remove(&id) else {
            return;
        };
        for tp in parts {
            let answer = resp
                .topics
                .iter()
                .filter(|t| *t.name == *tp.0)
                .flat_map(|t| t.partitions.iter())
                .find(|p| p.partition_index == tp.1);
            let Some(s) = self.partitions.get_mut(&tp) else {
                continue;
            };
            let Position::Resetting { seek, request } = s.position else {
                continue;
            };
            if request != id {
                // The answer to a lookup a seek has since replaced.
                continue;
            }
            // A failed lookup is asked again for the same seek: falling back to the end
            // would skip every record before it (a new topic's leader is often not ready
            // for the first ListOffsets).
            let Some(answer) = answer else {
                s.position = Position::Reset(seek);
                s.retry_after = Some(now + self.config.network.retry_backoff);
                continue;
            };
            let code = ErrorCode::from_code(answer.error_code);
            if code.is_ok() {
                s.fresh = true;
                // No record at or after a timestamp: start at the end.
                s.position = if answer.offset < 0 {
                    Position::Reset(Seek::End)
                } else {
                    Position::At(answer.offset)
                };
            } else if code.is_retriable() || code == ErrorCode::OffsetNotAvailable {
                s.position = Position::Reset(seek);
                s.retry_after = Some(now + self.config.network.retry_backoff);
                self.net.metadata.request_refresh();
            } else {
                s.position = Position::Failed;
                self.events.push_back(ConsumerEvent::Error {
                    topic: tp.0.clone(),
                    partition: tp.1,
                    error: ConsumeError::Broker(code),
                });
            }
        }
    }

    /// The broker to fetch a partition from: the replica its leader preferred for this
    /// consumer's rack while that holds and the broker is known, else the leader.
    fn fetch_source(&self, tp: &Tp, s: &PartitionState, now: Instant) -> Option<i32> {
        s.read_replica
            .filter(|&(broker, until)| {
                until > now && self.net.metadata.address(Node::Broker(broker)).is_some()
            })
            .map(|(broker, _)| broker)
            .or_else(|| self.leader(&tp.0, tp.1))
    }

    /// The broker a partition is fetched from: its leader, or the replica the leader
    /// preferred for `client.rack` (KIP-392); `None` before the leader is known.
    ///
    /// ```
    /// use kasio_core::{Consumer, ConsumerConfig};
    /// use std::time::Instant;
    /// let now = Instant::now();
    /// let mut consumer = Consumer::new(ConsumerConfig::new("localhost:9092")?, now, 1)?;
    /// consumer.assign(&[("orders", 0)], now);
    /// assert_eq!(consumer.fetching_from("orders", 0), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fetching_from(&self, topic: &str, partition: i32) -> Option<i32> {
        let (tp, s) = self
            .partitions
            .iter()
            .find(|((t, p), _)| t.as_ref() == topic && *p == partition)?;
        self.fetch_source(tp, s, self.now)
    }

    fn on_fetch(&mut self, id: u64, resp: FetchResponse, now: Instant) {
        let Some((broker, parts, _)) = self.requests.remove(&id) else {
            return;
        };
        for tp in &parts {
            if let Some(s) = self.partitions.get_mut(tp) {
                s.fetching = false;
            }
        }
        let top = ErrorCode::from_code(resp.error_code);
        self.fetching.answered(broker, resp.session_id, top);
        if !top.is_ok() {
            let backoff = now + self.config.network.retry_backoff;
            for tp in &parts {
                if let Some(s) = self.partitions.get_mut(tp) {
                    s.retry_after = Some(backoff);
                }
            }
            return;
        }
        for topic in resp.responses {
            let name: Option<Arc<str>> = if topic.topic.is_empty() {
                self.topics
                    .iter()
                    .find(|(_, m)| m.as_ref().is_some_and(|m| m.id == topic.topic_id))
                    .map(|(k, _)| k.clone())
            } else {
                self.topics
                    .get_key_value(topic.topic.as_ref())
                    .map(|(k, _)| k.clone())
            };
            let Some(name) = name else {
                continue;
            };
            for data in topic.partitions {
                self.on_partition_data(&name, data, broker, now);
            }
        }
    }

    /// A partition's fetch failed with `code`: reset, retry after `backoff`, or stop it.
    fn on_fetch_error(&mut self, tp: &Tp, code: ErrorCode, position: i64, backoff: Instant) {
        let reset = self.config.auto_offset_reset;
        let Some(s) = self.partitions.get_mut(tp) else {
            return;
        };
        let name = &tp.0;
        match code {
            ErrorCode::OffsetOutOfRange => {
                s.position = match reset {
                    OffsetReset::Earliest => Position::Reset(Seek::Beginning),
                    OffsetReset::Latest => Position::Reset(Seek::End),
                    OffsetReset::None => {
                        self.events.push_back(ConsumerEvent::Error {
                            topic: name.clone(),
                            partition: tp.1,
                            error: ConsumeError::OffsetOutOfRange { offset: position },
                        });
                        Position::Failed
                    }
                };
            }
            c if c.is_retriable()
                || matches!(
                    c,
                    ErrorCode::NotLeaderOrFollower
                        | ErrorCode::UnknownTopicOrPartition
                        | ErrorCode::FencedLeaderEpoch
                        | ErrorCode::UnknownLeaderEpoch
                        | ErrorCode::UnknownTopicId
                ) =>
            {
                s.retry_after = Some(backoff);
                self.net.metadata.request_refresh();
            }
            c => {
                s.position = Position::Failed;
                self.events.push_back(ConsumerEvent::Error {
                    topic: name.clone(),
                    partition: tp.1,
                    error: ConsumeError::Broker(c),
                });
            }
        }
    }

    /// KIP-320: the leader's log parted from what this consumer read at the end of
    /// `diverged.epoch`; records read past that point are gone (an unclean leader
    /// election truncated them).
    fn on_diverged(
        &mut self,
        tp: &Tp,
        diverged: &kasio_proto::messages::fetch_response::EpochEndOffset,
        position: i64,
    ) {
        let reset = self.config.auto_offset_reset;
        let Some(s) = self.partitions.get_mut(tp) else {
            return;
        };
        if diverged.end_offset < position {
            if reset == OffsetReset::None {
                s.position = Position::Failed;
                self.events.push_back(ConsumerEvent::Error {
                    topic: tp.0.clone(),
                    partition: tp.1,
                    error: ConsumeError::LogTruncation {
                        offset: position,
                        truncated_at: diverged.end_offset,
                    },
                });
                return;
            }
            s.position = Position::At(diverged.end_offset);
            s.fresh = true;
            self.events.push_back(ConsumerEvent::Truncated {
                topic: tp.0.clone(),
                partition: tp.1,
                from: position,
                to: diverged.end_offset,
            });
        }
        s.last_epoch = diverged.epoch;
    }

    fn on_partition_data(
        &mut self,
        name: &Arc<str>,
        data: kasio_proto::messages::fetch_response::PartitionData,
        broker: i32,
        now: Instant,
    ) {
        let tp = (name.clone(), data.partition_index);
        let read_committed = self.config.isolation_level == IsolationLevel::ReadCommitted;
        let backoff = now + self.config.network.retry_backoff;
        let Some(s) = self.partitions.get_mut(&tp) else {
            return;
        };
        let Position::At(position) = s.position else {
            return;
        };
        if s.paused {
            // Paused (by the caller, or because the group is taking the partition away)
            // while this fetch was out: its records are not handed out, and the position
            // stays where it was, so a commit made meanwhile still holds.
            return;
        }
        let code = ErrorCode::from_code(data.error_code);
        let from_follower = s.read_replica.is_some_and(|(b, _)| b == broker);
        if from_follower && !code.is_ok() {
            // The follower cannot serve the position (it lags, or stopped being a
            // replica): back to the leader, as the Java client does.
            s.read_replica = None;
            s.fresh = true;
            // Out of range included: the follower may lag the leader, which decides.
            s.retry_after = Some(backoff);
            self.net.metadata.request_refresh();
            return;
        }
        if data.preferred_read_replica >= 0 && data.preferred_read_replica != broker {
            // KIP-392: the leader names a replica closer to this consumer's rack; the
            // answer carries no records.
            s.read_replica = Some((
                data.preferred_read_replica,
                now + self.config.network.metadata_max_age,
            ));
            s.fresh = true;
            if self
                .net
                .metadata
                .address(Node::Broker(data.preferred_read_replica))
                .is_none()
            {
                // A broker this consumer does not know yet: learn it before fetching
                // again, rather than ask the leader over and over.
                s.retry_after = Some(backoff);
                self.net.metadata.request_refresh();
            }
            return;
        }
        if !code.is_ok() {
            self.on_fetch_error(&tp, code, position, backoff);
            return;
        }
        if data.diverging_epoch.end_offset >= 0 {
            self.on_diverged(&tp, &data.diverging_epoch, position);
            return;
        }
        let end = if read_committed && data.last_stable_offset >= 0 {
            data.last_stable_offset
        } else {
            data.high_watermark
        };
        s.end = end;
        let walked = walk_batches(
            Walk {
                topic: name,
                partition: tp.1,
                high_watermark: data.high_watermark,
                read_committed,
                aborted: data.aborted_transactions.unwrap_or_default(),
            },
            data.records.unwrap_or_default(),
            position,
            &mut self.fetching.batches,
            &mut self.fetching.buffered,
        );
        if let Some(epoch) = walked.last_epoch {
            s.last_epoch = epoch;
        }
        let (position, delivered, error) = (walked.position, walked.delivered, walked.error);
        s.position = Position::At(position);
        if let Some(error) = error {
            s.position = Position::Failed;
            self.events.push_back(ConsumerEvent::Error {
                topic: name.clone(),
                partition: tp.1,
                error,
            });
            return;
        }
        if delivered {
            s.end_reported = false;
        }
        // Also right after records that reach the end: a fetch session's later answers
        // leave out a partition with nothing new.
        if position >= end && !s.end_reported {
            s.end_reported = true;
            self.events.push_back(ConsumerEvent::EndOfPartition {
                topic: name.clone(),
                partition: tp.1,
                offset: position,
            });
        }
    }
}

/// A partition to fetch: where from, and the leader epoch of the last batch read there.
type ToFetch = (Tp, i64, i32);

/// A Fetch's topics and forgotten topics for `plan`, by name before v13 and by id from it.
fn fetch_topics(
    plan: &fetch_session::Plan,
    known: &HashMap<Arc<str>, Option<TopicMeta>>,
    version: i16,
    max_partition_bytes: i32,
) -> (Vec<FetchTopic>, Vec<ForgottenTopic>) {
    let topic_id = |topics: &HashMap<Arc<str>, Option<TopicMeta>>, name: &str| {
        topics
            .get(name)
            .and_then(Option::as_ref)
            .map_or(Uuid::default(), |m| m.id)
    };
    let mut forgotten: Vec<ForgottenTopic> = Vec::new();
    for (topic, partition) in &plan.forget {
        match forgotten.iter_mut().find(|f| *f.topic == **topic) {
            Some(f) => f.partitions.push(*partition),
            None => forgotten.push(ForgottenTopic {
                topic: topic.as_ref().into(),
                topic_id: topic_id(known, topic),
                partitions: vec![*partition],
                ..Default::default()
            }),
        }
    }
    if version >= 13 {
        for f in &mut forgotten {
            f.topic = "".into();
        }
    }
    let mut topics: Vec<FetchTopic> = Vec::new();
    for ((topic, partition), offset, last_epoch) in &plan.send {
        let meta = known.get(topic).and_then(Option::as_ref);
        let topic_id = meta.map_or(Uuid::default(), |m| m.id);
        let epoch = meta
            .and_then(|m| m.partitions.get(usize::try_from(*partition).ok()?))
            .map_or(-1, |p| p.leader_epoch);
        let p = FetchPartition {
            partition: *partition,
            current_leader_epoch: epoch,
            fetch_offset: *offset,
            last_fetched_epoch: *last_epoch,
            log_start_offset: -1,
            partition_max_bytes: max_partition_bytes,
            ..Default::default()
        };
        match topics.iter_mut().find(|t| *t.topic == **topic) {
            Some(t) => t.partitions.push(p),
            None => topics.push(FetchTopic {
                topic: if version >= 13 {
                    "".into()
                } else {
                    topic.as_ref().into()
                },
                topic_id,
                partitions: vec![p],
                ..Default::default()
            }),
        }
    }
    (topics, forgotten)
}

/// What a partition's answer says about the records it carries.
struct Walk<'a> {
    topic: &'a Arc<str>,
    partition: i32,
    high_watermark: i64,
    read_committed: bool,
    aborted: Vec<kasio_proto::messages::fetch_response::AbortedTransaction>,
}

/// Where walking a partition's batches ended.
struct Walked {
    /// The position after the last batch handed out or skipped.
    position: i64,
    /// The leader epoch of the last batch at or past the position.
    last_epoch: Option<i32>,
    /// Whether any batch was handed out.
    delivered: bool,
    /// What stopped the walk: a malformed or legacy batch.
    error: Option<ConsumeError>,
}

/// Queues the batches of a partition's records that hold something past `position` for
/// the caller, skipping control batches and, with read_committed, the batches of aborted
/// transactions (from the answer's aborted list and the abort markers among the batches).
fn walk_batches(
    walk: Walk<'_>,
    records: Bytes,
    mut position: i64,
    out: &mut VecDeque<FetchedBatch>,
    buffered: &mut usize,
) -> Walked {
    let mut aborted: Vec<(i64, i64)> = walk
        .aborted
        .iter()
        .map(|a| (a.first_offset, a.producer_id))
        .collect();
    aborted.sort_unstable();
    let mut next_aborted = 0;
    let mut active: HashSet<i64> = HashSet::new();
    let (mut delivered, mut error, mut last_epoch) = (false, None, None);
    for batch in Batches::new(records) {
        let b = match batch {
            Ok(Batch::V2(b)) => b,
            Ok(_) => {
                error = Some(ConsumeError::Corrupt(
                    "a legacy (v0/v1) message set; Kafka 4 brokers never send one".into(),
                ));
                break;
            }
            Err(e) => {
                error = Some(ConsumeError::Corrupt(e.to_string()));
                break;
            }
        };
        if b.next_offset() <= position {
            continue;
        }
        last_epoch = Some(b.partition_leader_epoch);
        if walk.read_committed {
            while let Some(&(first, pid)) = aborted.get(next_aborted)
                && first <= b.last_offset()
            {
                active.insert(pid);
                next_aborted += 1;
            }
            if b.attributes.is_control() {
                let abort = b
                    .records()
                    .ok()
                    .and_then(|mut r| r.next())
                    .and_then(Result::ok)
                    .and_then(|r| ControlRecord::parse(&r).ok())
                    .is_some_and(|c| c.kind == ControlRecordType::Abort);
                if abort {
                    active.remove(&b.producer_id);
                }
                position = b.next_offset();
                continue;
            }
            if b.attributes.is_transactional() && active.contains(&b.producer_id) {
                position = b.next_offset();
                continue;
            }
        } else if b.attributes.is_control() {
            position = b.next_offset();
            continue;
        }
        let next = b.next_offset();
        let fetched = FetchedBatch::new(
            walk.topic.clone(),
            walk.partition,
            walk.high_watermark,
            b,
            position,
        );
        *buffered += batch_bytes(&fetched);
        out.push_back(fetched);
        position = next;
        delivered = true;
    }
    Walked {
        position,
        last_epoch,
        delivered,
        error,
    }
}

pub(crate) fn batch_bytes(b: &FetchedBatch) -> usize {
    b.size()
}
