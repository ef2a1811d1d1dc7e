//! The cluster as a sans-IO state machine: request bytes and `now` in, response bytes and
//! deadlines out.

use crate::{
    config::ClusterConfig,
    faults::{Fault, Pending},
    handlers,
    log::PartitionLog,
};
use bytes::{Bytes, BytesMut};
use kasio_proto::{
    AnyResponse, ApiKey, ErrorCode, Uuid,
    frame::{self, FrameDecoder},
    messages::{ApiVersionsResponse, FetchRequest, RequestHeader},
};
use std::{
    collections::{BTreeMap, HashMap, HashSet, VecDeque},
    time::Instant,
};

/// A client connection to one of the cluster's brokers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// Bytes to send on a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Transmit {
    /// The connection to write to.
    pub conn: ConnId,
    /// One or more complete response frames.
    pub data: Bytes,
}

#[derive(Debug)]
struct Conn {
    broker: i32,
    inbox: BytesMut,
    /// A response is outstanding (a waiting Fetch, a delayed response): like Kafka, the
    /// connection reads no further request until it has gone, so responses stay in order.
    busy: bool,
    /// Half-closed by a fault: nothing more is read.
    deaf: bool,
    /// Where SASL authentication stands (when the cluster has SASL users).
    auth: handlers::sasl::Auth,
}

/// A response held back by an injected delay.
#[derive(Debug)]
struct Held {
    conn: ConnId,
    release: Instant,
    data: Bytes,
}

/// A broker's advertised address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BrokerInfo {
    pub(crate) id: i32,
    pub(crate) host: String,
    pub(crate) port: i32,
}

/// A topic and its partitions.
#[derive(Debug, Clone)]
pub(crate) struct Topic {
    pub(crate) id: Uuid,
    pub(crate) partitions: Vec<Partition>,
    /// Configs set on the topic (the rest are Kafka's defaults).
    pub(crate) configs: BTreeMap<String, String>,
}

/// A partition: its leader and its log.
#[derive(Debug, Clone)]
pub(crate) struct Partition {
    pub(crate) leader: i32,
    pub(crate) log: PartitionLog,
}

/// A Fetch waiting for data or for its `max_wait_ms` to pass.
#[derive(Debug)]
pub(crate) struct ParkedFetch {
    pub(crate) conn: ConnId,
    pub(crate) header: RequestHeader,
    pub(crate) request: FetchRequest,
    pub(crate) deadline: Instant,
    /// The fetch session the response belongs to.
    pub(crate) session: handlers::fetch_session::Mode,
}

/// An in-memory Kafka cluster of one or more brokers.
///
/// Driving it (the order a shell follows):
/// 1. `connect(broker)` when a client connects to a broker, `handle_closed` when it leaves;
/// 2. `handle_input(conn, bytes, now)` with whatever bytes arrived;
/// 3. `handle_timeout(now)` once `poll_timeout()` has passed (spurious calls do nothing);
/// 4. after each of these, drain `poll_transmit()` (write the bytes), then `poll_close()`
///    (close those connections: they sent something malformed), then read `poll_timeout()`.
///
/// ```
/// use kasio_mock::{Cluster, ClusterConfig};
/// use std::time::Instant;
/// let mut cluster = Cluster::new(ClusterConfig::default());
/// cluster.create_topic("orders", 3).unwrap();
/// let conn = cluster.connect(1);
/// cluster.handle_input(conn, &[0, 0, 0, 0], Instant::now()); // an empty frame: malformed
/// assert!(cluster.poll_transmit().is_none());
/// assert_eq!(cluster.poll_close(), Some(conn));
/// ```
#[derive(Debug)]
pub struct Cluster {
    pub(crate) config: ClusterConfig,
    pub(crate) brokers: Vec<BrokerInfo>,
    pub(crate) topics: BTreeMap<String, Topic>,
    conns: HashMap<ConnId, Conn>,
    next_conn: u64,
    next_topic_id: u128,
    transmits: VecDeque<Transmit>,
    closes: VecDeque<ConnId>,
    pub(crate) parked: Vec<ParkedFetch>,
    held: Vec<Held>,
    ready: VecDeque<ConnId>,
    decoder: FrameDecoder,
    faults: Pending,
    refused: HashSet<i32>,
    /// Brokers stopped by a fault (their data kept).
    pub(crate) stopped: HashSet<i32>,
    pub(crate) producer_epochs: HashMap<i64, i16>,
    /// Committed offsets by group, then (topic, partition).
    pub(crate) offsets: BTreeMap<String, BTreeMap<(String, i32), handlers::offsets::Committed>>,
    /// Requests received, by API key.
    served: HashMap<i16, u64>,
    /// Fetches that named only what changed in their session (KIP-227).
    pub(crate) incremental_fetches: u64,
    /// Consumer groups (KIP-848) by id.
    pub(crate) groups: BTreeMap<String, handlers::groups::Group>,
    /// Fetch sessions by id, and the next id.
    pub(crate) fetch_sessions: BTreeMap<i32, handlers::fetch_session::Session>,
    pub(crate) next_session: i32,
    /// Transactions by transactional id.
    pub(crate) txns: BTreeMap<String, handlers::txn::Txn>,
    /// Classic-protocol groups by id.
    pub(crate) classic: BTreeMap<String, handlers::classic::ClassicGroup>,
    /// Configs set dynamically on each broker.
    pub(crate) broker_configs: BTreeMap<i32, BTreeMap<String, String>>,
    /// Configs set on each group (a share group's `share.*` settings).
    pub(crate) group_configs: BTreeMap<String, BTreeMap<String, String>>,
    /// Groups whose coordinator was moved away from where the hash puts it.
    pub(crate) coordinators: BTreeMap<String, i32>,
    /// Share groups (KIP-932), their sessions and waiting share fetches.
    pub(crate) shares: handlers::share::Shares,
    pub(crate) next_producer_id: i64,
}

/// Why a partition's leader could not be moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveLeaderError {
    /// No such topic or partition.
    UnknownPartition,
    /// No such broker.
    UnknownBroker,
}

/// Why a topic could not be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateTopicError {
    /// A topic of that name exists.
    AlreadyExists,
    /// The name or partition count is not valid.
    Invalid,
}

impl Cluster {
    /// A cluster with `config.brokers` brokers and no topics.
    pub fn new(config: ClusterConfig) -> Self {
        let brokers = (1..=config.brokers)
            .map(|id| BrokerInfo {
                id,
                host: "127.0.0.1".into(),
                port: 9092 + id - 1,
            })
            .collect();
        Self {
            decoder: FrameDecoder::new(config.max_frame),
            next_topic_id: u128::from(config.seed) << 64 | 1,
            config,
            brokers,
            topics: BTreeMap::new(),
            conns: HashMap::new(),
            next_conn: 1,
            transmits: VecDeque::new(),
            closes: VecDeque::new(),
            parked: Vec::new(),
            held: Vec::new(),
            ready: VecDeque::new(),
            faults: Pending::default(),
            refused: HashSet::new(),
            stopped: HashSet::new(),
            producer_epochs: HashMap::new(),
            offsets: BTreeMap::new(),
            groups: BTreeMap::new(),
            broker_configs: BTreeMap::new(),
            group_configs: BTreeMap::new(),
            coordinators: BTreeMap::new(),
            shares: handlers::share::Shares::default(),
            classic: BTreeMap::new(),
            txns: BTreeMap::new(),
            fetch_sessions: BTreeMap::new(),
            next_session: 1,
            served: HashMap::new(),
            incremental_fetches: 0,
            next_producer_id: 1000,
        }
    }

    /// Injects a fault; it takes effect on the next request it applies to.
    pub fn inject(&mut self, fault: Fault) {
        match fault {
            Fault::DropConnections { broker } => {
                let conns: Vec<ConnId> = self
                    .conns
                    .iter()
                    .filter(|(_, c)| c.broker == broker)
                    .map(|(id, _)| *id)
                    .collect();
                for conn in conns {
                    self.close(conn);
                }
            }
            Fault::StopBroker { broker } => {
                self.stopped.insert(broker);
                self.refused.insert(broker);
                self.inject(Fault::DropConnections { broker });
            }
            Fault::StartBroker { broker } => {
                self.stopped.remove(&broker);
                self.refused.remove(&broker);
            }
            Fault::HalfClose { broker } => {
                for c in self.conns.values_mut().filter(|c| c.broker == broker) {
                    c.deaf = true;
                }
            }
            Fault::RefuseConnections { broker, refuse } => {
                if refuse {
                    self.refused.insert(broker);
                } else {
                    self.refused.remove(&broker);
                }
            }
            other => self.faults.add(&other),
        }
    }

    /// Whether broker `id` accepts new connections (the shell closes refused ones at once).
    pub fn accepts(&self, broker: i32) -> bool {
        !self.refused.contains(&broker)
    }

    /// Makes `broker` the leader of a partition; the old leader answers
    /// `NOT_LEADER_OR_FOLLOWER` from then on.
    ///
    /// # Errors
    /// [`MoveLeaderError`] for an unknown partition or broker.
    pub fn move_leader(
        &mut self,
        topic: &str,
        partition: i32,
        broker: i32,
    ) -> Result<(), MoveLeaderError> {
        if !self.brokers.iter().any(|b| b.id == broker) {
            return Err(MoveLeaderError::UnknownBroker);
        }
        let p = self
            .partition_mut(topic, partition)
            .ok_or(MoveLeaderError::UnknownPartition)?;
        p.leader = broker;
        p.log.new_epoch();
        // Acquisition locks live in the leader's memory only (Kafka persists the rest of
        // a share partition's state): the new leader starts without them.
        handlers::share::leader_moved(self, topic, partition);
        Ok(())
    }

    /// Appends record batches (v2, as a producer sends them) to a partition as its leader
    /// would, waking fetches that wait for data; the base offset, or `None` for an unknown
    /// partition or bytes that are not valid batches.
    ///
    /// ```
    /// use kasio_mock::{Cluster, ClusterConfig};
    /// use kasio_proto::records::{BatchBuilder, BatchOptions};
    /// use std::time::Instant;
    /// let mut cluster = Cluster::new(ClusterConfig::default());
    /// cluster.create_topic("jobs", 1).unwrap();
    /// let mut batch = BatchBuilder::new(BatchOptions::default());
    /// batch.append::<(&str, Option<&[u8]>)>(0, None, Some(b"one"), &[]).unwrap();
    /// let bytes = batch.finish().unwrap();
    /// assert_eq!(cluster.append("jobs", 0, &bytes, Instant::now()), Some(0));
    /// assert_eq!(cluster.append("jobs", 0, &bytes, Instant::now()), Some(1));
    /// ```
    pub fn append(
        &mut self,
        topic: &str,
        partition: i32,
        batches: &Bytes,
        now: Instant,
    ) -> Option<i64> {
        let base = self
            .partition_mut(topic, partition)?
            .log
            .append(batches)
            .ok()?;
        handlers::fetch::wake(self, now, true);
        handlers::share::wake(self, now, true);
        Some(base)
    }

    /// Sets a group config (for a share group: `share.auto.offset.reset`,
    /// `share.record.lock.duration.ms`, `share.delivery.count.limit`), as an
    /// IncrementalAlterConfigs on the group would.
    pub fn set_group_config(&mut self, group: &str, key: &str, value: &str) {
        self.group_configs
            .entry(group.to_string())
            .or_default()
            .insert(key.to_string(), value.to_string());
    }

    /// Makes `broker` the coordinator of `group` (a coordinator move): the old one answers
    /// `NOT_COORDINATOR` from then on.
    ///
    /// # Errors
    /// [`MoveLeaderError::UnknownBroker`].
    pub fn move_coordinator(&mut self, group: &str, broker: i32) -> Result<(), MoveLeaderError> {
        if !self.brokers.iter().any(|b| b.id == broker) {
            return Err(MoveLeaderError::UnknownBroker);
        }
        self.coordinators.insert(group.to_string(), broker);
        Ok(())
    }

    /// An unclean leader election on a partition: its log loses the batches from `offset`
    /// on (the one holding `offset` too) and a new leader epoch begins, so consumers that
    /// read past the new end learn of it through the epochs (KIP-320).
    ///
    /// # Errors
    /// [`MoveLeaderError::UnknownPartition`].
    pub fn truncate(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Result<(), MoveLeaderError> {
        self.partition_mut(topic, partition)
            .ok_or(MoveLeaderError::UnknownPartition)?
            .log
            .truncate(offset);
        Ok(())
    }

    fn partition_mut(&mut self, topic: &str, partition: i32) -> Option<&mut Partition> {
        let i = usize::try_from(partition).ok()?;
        self.topics.get_mut(topic)?.partitions.get_mut(i)
    }

    /// A partition's stored record batches from `offset` on (whole batches, so the first
    /// may start before it), for tests to check what was written.
    pub fn read(&self, topic: &str, partition: i32, offset: i64) -> Option<Bytes> {
        let t = self.topics.get(topic)?;
        let p = t.partitions.get(usize::try_from(partition).ok()?)?;
        Some(p.log.read(offset, usize::MAX))
    }

    /// A group's committed offset for a partition, for tests to check what was
    /// committed.
    pub fn committed(&self, group: &str, topic: &str, partition: i32) -> Option<i64> {
        self.offsets
            .get(group)?
            .get(&(topic.to_string(), partition))
            .map(|c| c.offset)
    }

    /// The offset the next record appended to a partition gets.
    pub fn end_offset(&self, topic: &str, partition: i32) -> Option<i64> {
        let t = self.topics.get(topic)?;
        Some(
            t.partitions
                .get(usize::try_from(partition).ok()?)?
                .log
                .end(),
        )
    }

    /// The start offset of `group`'s share partition `topic`-`partition` (KIP-932) and what
    /// became of each record delivered from it; `None` before the group was assigned it.
    ///
    /// ```
    /// use kasio_mock::{Cluster, ClusterConfig};
    /// let cluster = Cluster::new(ClusterConfig::default());
    /// assert!(cluster.share_outcomes("queue", "jobs", 0).is_none());
    /// ```
    #[must_use]
    pub fn share_outcomes(
        &self,
        group: &str,
        topic: &str,
        partition: i32,
    ) -> Option<(i64, BTreeMap<i64, handlers::share_partition::ShareOutcome>)> {
        handlers::share::outcomes(self, group, topic, partition)
    }

    /// How many requests of `api` the cluster has received (malformed ones aside).
    pub fn requests(&self, api: ApiKey) -> u64 {
        self.served.get(&api.as_i16()).copied().unwrap_or(0)
    }

    /// How many Fetches came as incremental fetches of a session (KIP-227).
    pub fn incremental_fetches(&self) -> u64 {
        self.incremental_fetches
    }

    /// The leader of a partition.
    pub fn leader(&self, topic: &str, partition: i32) -> Option<i32> {
        let t = self.topics.get(topic)?;
        Some(t.partitions.get(usize::try_from(partition).ok()?)?.leader)
    }

    /// Sets the address broker `id` advertises in metadata (the shell's listening socket).
    pub fn set_broker_address(&mut self, id: i32, host: &str, port: u16) {
        if let Some(b) = self.brokers.iter_mut().find(|b| b.id == id) {
            b.host = host.to_string();
            b.port = i32::from(port);
        }
    }

    /// The broker ids.
    pub fn broker_ids(&self) -> impl Iterator<Item = i32> + '_ {
        self.brokers.iter().map(|b| b.id)
    }

    /// Creates a topic with `partitions` partitions, leaders spread over the brokers.
    ///
    /// # Errors
    /// [`CreateTopicError`] if the topic exists or the request is invalid.
    pub fn create_topic(&mut self, name: &str, partitions: i32) -> Result<Uuid, CreateTopicError> {
        if self.topics.contains_key(name) {
            return Err(CreateTopicError::AlreadyExists);
        }
        let valid_name = !name.is_empty()
            && name.len() <= 249
            && name != "."
            && name != ".."
            && name
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"._-".contains(&c));
        if !valid_name || !(1..=100_000).contains(&partitions) {
            return Err(CreateTopicError::Invalid);
        }
        let id = Uuid::from_u128(self.next_topic_id);
        self.next_topic_id += 1;
        let offset = self.topics.len();
        let partitions = (0..partitions as usize)
            .map(|p| Partition {
                leader: self.brokers[(p + offset) % self.brokers.len()].id,
                log: PartitionLog::default(),
            })
            .collect();
        self.topics.insert(
            name.to_string(),
            Topic {
                id,
                partitions,
                configs: BTreeMap::new(),
            },
        );
        Ok(id)
    }

    /// Registers a new connection to broker `broker`.
    pub fn connect(&mut self, broker: i32) -> ConnId {
        let id = ConnId(self.next_conn);
        self.next_conn += 1;
        self.conns.insert(
            id,
            Conn {
                broker,
                inbox: BytesMut::new(),
                busy: false,
                deaf: false,
                auth: handlers::sasl::Auth::None,
            },
        );
        id
    }

    /// Forgets a connection the client closed.
    pub fn handle_closed(&mut self, conn: ConnId) {
        handlers::share::connection_closed(self, conn);
        self.conns.remove(&conn);
        self.parked.retain(|p| p.conn != conn);
        self.held.retain(|h| h.conn != conn);
    }

    /// Feeds bytes received on `conn`; complete requests are answered.
    pub fn handle_input(&mut self, conn: ConnId, data: &[u8], now: Instant) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.inbox.extend_from_slice(data);
        self.ready.push_back(conn);
        self.run_ready(now);
    }

    /// Answers waiting fetches and releases delayed responses whose time has come.
    pub fn handle_timeout(&mut self, now: Instant) {
        handlers::groups::expire(self, now);
        handlers::classic::expire(self, now);
        handlers::txn::expire(self, now);
        handlers::share::expire(self, now);
        handlers::fetch::wake(self, now, false);
        handlers::share::wake(self, now, false);
        let (due, later): (Vec<Held>, Vec<Held>) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|h| h.release <= now);
        self.held = later;
        for h in due {
            self.transmits.push_back(Transmit {
                conn: h.conn,
                data: h.data,
            });
            self.unblock(h.conn);
        }
        self.run_ready(now);
    }

    pub(crate) fn set_busy(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.busy = true;
        }
    }

    /// Marks a connection's outstanding response as sent, so it reads requests again.
    pub(crate) fn unblock(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.busy = false;
            self.ready.push_back(conn);
        }
    }

    /// Handles the buffered requests of every connection that can take one.
    fn run_ready(&mut self, now: Instant) {
        while let Some(conn) = self.ready.pop_front() {
            while let Some(c) = self.conns.get_mut(&conn).filter(|c| !c.busy && !c.deaf) {
                let broker = c.broker;
                match self.decoder.decode(&mut c.inbox) {
                    Ok(Some(frame)) => {
                        if !self.handle_frame(conn, broker, frame, now) {
                            self.close(conn);
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(_) => {
                        self.close(conn);
                        break;
                    }
                }
            }
        }
    }

    /// The next bytes to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next connection the cluster wants closed.
    pub fn poll_close(&mut self) -> Option<ConnId> {
        self.closes.pop_front()
    }

    /// When `handle_timeout` should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let parked = self.parked.iter().map(|p| p.deadline);
        parked
            .chain(self.held.iter().map(|h| h.release))
            .chain(handlers::groups::next_expiry(self))
            .chain(handlers::classic::next_expiry(self))
            .chain(handlers::txn::next_expiry(self))
            .chain(self.shares.next_deadline())
            .min()
    }

    pub(crate) fn auth_mut(&mut self, conn: ConnId) -> Option<&mut handlers::sasl::Auth> {
        self.conns.get_mut(&conn).map(|c| &mut c.auth)
    }

    /// Whether a connection may send any request: SASL is off, or it authenticated and
    /// its session has not ended.
    fn authenticated(&self, conn: ConnId, now: Instant) -> bool {
        self.config.sasl_users.is_empty()
            || self.conns.get(&conn).is_some_and(|c| {
                matches!(c.auth, handlers::sasl::Auth::Done { until } if until.is_none_or(|u| now < u))
            })
    }

    pub(crate) fn broker_of(&self, conn: ConnId) -> Option<i32> {
        self.conns.get(&conn).map(|c| c.broker)
    }

    fn close(&mut self, conn: ConnId) {
        self.handle_closed(conn);
        self.closes.push_back(conn);
    }

    /// Decodes and answers one request; false if the frame was malformed.
    fn handle_frame(&mut self, conn: ConnId, broker: i32, frame: Bytes, now: Instant) -> bool {
        if frame.len() < 8 {
            return false;
        }
        let key = i16::from_be_bytes([frame[0], frame[1]]);
        let version = i16::from_be_bytes([frame[2], frame[3]]);
        let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
        // A client asking for an ApiVersions version we lack gets v0 and the error, so it
        // can retry with one we have (as Kafka answers).
        if key == ApiKey::ApiVersions.as_i16() && !ApiKey::ApiVersions.versions().contains(version)
        {
            let body = ApiVersionsResponse {
                error_code: ErrorCode::UnsupportedVersion.code(),
                api_keys: handlers::api_versions::served(),
                ..Default::default()
            };
            self.respond(
                conn,
                ApiKey::ApiVersions,
                0,
                correlation_id,
                &AnyResponse::ApiVersions(body),
            );
            return true;
        }
        let Ok((header, body)) = frame::decode_request(frame) else {
            return false;
        };
        let api = body.api_key();
        *self.served.entry(api.as_i16()).or_default() += 1;
        // A SASL listener answers nothing but negotiation and authentication first, and
        // closes the connection of a client that skips it (as Kafka does).
        if !matches!(
            api,
            ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate
        ) && !self.authenticated(conn, now)
        {
            return false;
        }
        let (version, corr) = (header.request_api_version, header.correlation_id);
        if let Some(error) = self.faults.fail(api)
            && let Some(resp) = handlers::errors::error_response(&body, error)
        {
            self.respond(conn, api, version, corr, &resp);
            return true;
        }
        match handlers::handle(self, conn, broker, &header, body, now) {
            handlers::Outcome::Respond(mut resp) => {
                if self.faults.blackhole(api) {
                    return true;
                }
                let throttle = self.faults.throttle(api);
                if let Some(by) = throttle {
                    let ms = i32::try_from(by.as_millis()).unwrap_or(i32::MAX);
                    match resp.as_mut() {
                        AnyResponse::Produce(r) => r.throttle_time_ms = ms,
                        AnyResponse::Fetch(r) => r.throttle_time_ms = ms,
                        _ => {}
                    }
                }
                match throttle.or_else(|| self.faults.delay(api)) {
                    None => self.respond(conn, api, version, corr, &resp),
                    Some(by) => {
                        if let Some(data) = self.encode(conn, api, version, corr, &resp) {
                            self.held.push(Held {
                                conn,
                                release: now + by,
                                data,
                            });
                            self.set_busy(conn);
                        }
                    }
                }
            }
            handlers::Outcome::Parked => self.set_busy(conn),
            handlers::Outcome::Handled => {}
            handlers::Outcome::Silent => {}
            handlers::Outcome::Close => return false,
        }
        true
    }

    pub(crate) fn respond(
        &mut self,
        conn: ConnId,
        api: ApiKey,
        version: i16,
        correlation_id: i32,
        body: &AnyResponse,
    ) {
        if let Some(data) = self.encode(conn, api, version, correlation_id, body) {
            self.transmits.push_back(Transmit { conn, data });
        }
    }

    /// A response frame, or `None` with the connection closed if it cannot be encoded (the
    /// handlers only build what the version can carry, so that is a handler bug, and closing
    /// the connection is the honest answer).
    fn encode(
        &mut self,
        conn: ConnId,
        api: ApiKey,
        version: i16,
        correlation_id: i32,
        body: &AnyResponse,
    ) -> Option<Bytes> {
        let mut buf = BytesMut::new();
        if frame::encode_response(api, version, correlation_id, body, &mut buf).is_err() {
            self.close(conn);
            return None;
        }
        Some(buf.freeze())
    }
}
