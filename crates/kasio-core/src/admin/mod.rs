//! The sans-IO admin client: topics, partitions, configs, groups, offsets, ACLs, SCRAM
//! credentials and client quotas, each call routed to the broker that must answer it.

mod acls;
mod call;
mod cluster;
mod config;
mod configs;
mod groups;
mod offsets;
mod quotas;
mod scram;
mod topics;
mod types;

pub use acls::{AclBinding, AclFilter, AclOperation, AclPermission, PatternType, ResourceType};
pub use config::AdminConfig;
pub use quotas::{QuotaChange, QuotaEntry, QuotaFilter, QuotaMatch};
pub use scram::{ScramChange, ScramCredential, ScramMechanism};
pub use types::*;

use crate::{
    config::ConfigError,
    conn::{CloseReason, ConnId, ConnectAction, InFlight, Node, Purpose, Tag, Transmit},
    network::{Earliest, Network, Timeout},
    rng::Rng,
};
use bytes::Bytes;
use call::{Call, Cx, Operation, Target};
use kasio_proto::{AnyRequest, AnyResponse, ErrorCode, frame, messages::MetadataResponse};
use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    time::Instant,
};

/// Names one operation; its [`AdminEvent`] carries the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpId(pub u64);

/// The result of an operation, typed by what the operation returns.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum AdminOutput {
    /// [`Admin::describe_cluster`].
    Cluster(ClusterDescription),
    /// [`Admin::api_versions`].
    ApiVersions(Vec<ApiSupport>),
    /// [`Admin::list_topics`].
    TopicListings(Vec<TopicListing>),
    /// [`Admin::describe_topics`].
    TopicDescriptions(Vec<Named<TopicDescription>>),
    /// [`Admin::create_topics`], [`Admin::delete_topics`], [`Admin::create_partitions`].
    TopicResults(Vec<TopicResult>),
    /// [`Admin::list_offsets`].
    Offsets(Vec<PartitionResult<ListedOffset>>),
    /// [`Admin::delete_records`] (the new low watermarks) and
    /// [`Admin::reset_group_offsets`] (the offsets committed).
    PartitionOffsets(Vec<PartitionResult<i64>>),
    /// [`Admin::describe_configs`].
    Configs(Vec<ResourceConfigs>),
    /// [`Admin::alter_configs`].
    ConfigResults(Vec<ResourceResult>),
    /// [`Admin::list_groups`].
    Groups(Vec<GroupListing>),
    /// [`Admin::describe_groups`].
    GroupDescriptions(Vec<Named<GroupDescription>>),
    /// [`Admin::delete_groups`], [`Admin::alter_scram_credentials`].
    NamedResults(Vec<Named<()>>),
    /// [`Admin::group_offsets`].
    Committed(Vec<CommittedOffset>),
    /// [`Admin::alter_group_offsets`], [`Admin::delete_group_offsets`].
    PartitionResults(Vec<PartitionResult<()>>),
    /// [`Admin::group_lag`].
    Lag(Vec<PartitionLag>),
    /// [`Admin::describe_acls`].
    Acls(Vec<AclBinding>),
    /// [`Admin::create_acls`] (one per binding), [`Admin::alter_client_quotas`] (one per
    /// entity).
    Results(Vec<Result<(), ApiError>>),
    /// [`Admin::delete_acls`]: the bindings each filter deleted.
    DeletedAcls(Vec<Result<Vec<AclBinding>, ApiError>>),
    /// [`Admin::describe_scram_credentials`].
    Scram(Vec<Named<Vec<ScramCredential>>>),
    /// [`Admin::describe_client_quotas`].
    Quotas(Vec<QuotaEntry>),
}

/// An operation finished.
#[derive(Debug, Clone, PartialEq)]
pub struct AdminEvent {
    /// Which one.
    pub id: OpId,
    /// What it returned.
    pub result: Result<AdminOutput, AdminError>,
}

#[derive(Debug)]
struct OpEntry {
    op: Box<dyn Operation>,
    deadline: Instant,
    pending: Vec<Call>,
}

/// Who waits for a call in flight.
#[derive(Debug)]
enum Owner {
    Op(u64, Call),
    Find(String, i8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coordinator {
    Known(i32),
    Finding,
    RetryAt(Instant),
}

/// The sans-IO admin client.
///
/// Each command (`create_topics`, `describe_groups`, ...) starts an operation and returns
/// its [`OpId`]; the operation's [`AdminEvent`] comes out of `poll_event` when it is done,
/// after retries on the errors Kafka calls retriable, or when `default.api.timeout.ms`
/// ends it. Inputs and outputs follow [`Producer`](crate::Producer): `handle_connected`,
/// `handle_input`, `handle_closed`, `handle_timeout` in; after each, drain `poll_connect`,
/// `poll_transmit`, then `poll_event`, then read `poll_timeout`.
///
/// ```
/// use kasio_core::{Admin, AdminConfig, NewTopic};
/// use std::time::Instant;
/// let now = Instant::now();
/// let mut admin = Admin::new(AdminConfig::new("localhost:9092")?, now, 1)?;
/// let id = admin.create_topics(&[NewTopic::new("orders", 6, 3)], false, now);
/// assert!(admin.poll_connect().is_some()); // dial a bootstrap server first
/// # let _ = id;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Admin {
    config: AdminConfig,
    rng: Rng,
    now: Instant,
    /// Connections, the metadata cache and the bytes for the driver.
    net: Network,
    ops: BTreeMap<u64, OpEntry>,
    calls: HashMap<u64, Owner>,
    coordinators: HashMap<(String, i8), Coordinator>,
    next_id: u64,
    events: VecDeque<AdminEvent>,
    new_deadline: bool,
    /// Why the last dial failed, while no connection has come up since: an operation
    /// that times out then says the cluster was unreachable, and why.
    unreachable: Option<String>,
}

impl Admin {
    /// An admin client with `config`, created at `now`; `seed` drives its random choices
    /// (which broker to ask, SCRAM salts).
    ///
    /// # Errors
    /// [`ConfigError`] if the settings conflict.
    pub fn new(config: AdminConfig, now: Instant, seed: u64) -> Result<Self, ConfigError> {
        config.validate()?;
        let net = Network::new(&config.network, config.security.build()?, now, seed);
        Ok(Self {
            config,
            rng: Rng::new(seed),
            now,
            net,
            ops: BTreeMap::new(),
            calls: HashMap::new(),
            coordinators: HashMap::new(),
            next_id: 1,
            events: VecDeque::new(),
            new_deadline: false,
            unreachable: None,
        })
    }

    /// Starts an operation.
    fn start(&mut self, mut op: Box<dyn Operation>, now: Instant) -> OpId {
        let id = self.next_id;
        self.next_id += 1;
        self.new_deadline = true;
        let mut cx = self.cx(now);
        op.start(&mut cx);
        self.ops.insert(
            id,
            OpEntry {
                op,
                deadline: now + self.config.default_api_timeout,
                pending: Vec::new(),
            },
        );
        self.apply(id, cx);
        self.drain(now);
        OpId(id)
    }

    fn cx(&self, now: Instant) -> Cx {
        Cx {
            now,
            retry_backoff: self.config.network.retry_backoff,
            calls: Vec::new(),
            done: None,
            stale: Vec::new(),
            brokers: self.net.metadata.brokers.keys().copied().collect(),
        }
    }

    /// Takes what an operation asked for while it ran.
    fn apply(&mut self, id: u64, cx: Cx) {
        for key in cx.stale {
            self.coordinators.remove(&key);
        }
        if let Some(result) = cx.done {
            self.ops.remove(&id);
            self.events.push_back(AdminEvent {
                id: OpId(id),
                result,
            });
            return;
        }
        if let Some(entry) = self.ops.get_mut(&id) {
            entry.pending.extend(cx.calls);
        }
    }

    fn respond(&mut self, id: u64, key: u32, resp: Result<AnyResponse, AdminError>, now: Instant) {
        let mut cx = self.cx(now);
        let Some(entry) = self.ops.get_mut(&id) else {
            return;
        };
        entry.op.on_response(key, resp, &mut cx);
        self.apply(id, cx);
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
            self.on_response(req, frame, now);
        }
        if received.ready {
            self.unreachable = None;
        }
        if received.error.is_some() {
            self.lose(conn, now, true);
        }
        self.drain(now);
    }

    /// A connection closed.
    pub fn handle_closed(&mut self, conn: ConnId, reason: CloseReason, now: Instant) {
        if let CloseReason::ConnectFailed(why) = reason
            && !self.net.pool.iter().any(|c| c.is_ready())
        {
            let addr = self
                .net
                .pool
                .iter()
                .find(|c| c.id == conn)
                .and_then(|c| self.net.metadata.address(c.node))
                .map(|a| format!("{}:{}", a.host, a.port))
                .unwrap_or_default();
            self.unreachable = Some(format!("{addr}: {why}"));
        }
        self.lose(conn, now, false);
        self.drain(now);
    }

    /// Time passed: requests and operations time out, backoffs end.
    pub fn handle_timeout(&mut self, now: Instant) {
        for id in self.net.timed_out(now) {
            self.lose(id, now, true);
        }
        let expired: Vec<u64> = self
            .ops
            .iter()
            .filter(|(_, e)| e.deadline <= now)
            .map(|(&id, _)| id)
            .collect();
        for id in expired {
            self.ops.remove(&id);
            let error = match &self.unreachable {
                Some(why) => AdminError::Unreachable(why.clone()),
                None => AdminError::Timeout,
            };
            self.events.push_back(AdminEvent {
                id: OpId(id),
                result: Err(error),
            });
        }
        self.drain(now);
    }

    /// Fails every operation still running with [`AdminError::Closed`] and closes every
    /// connection.
    pub fn close(&mut self, now: Instant) {
        self.now = now;
        for id in std::mem::take(&mut self.ops).into_keys() {
            self.events.push_back(AdminEvent {
                id: OpId(id),
                result: Err(AdminError::Closed),
            });
        }
        for id in self.net.pool.ids() {
            let _ = self.net.pool.close(id, now, &mut self.rng);
        }
        self.calls.clear();
    }

    /// The next socket to open or close.
    pub fn poll_connect(&mut self) -> Option<ConnectAction> {
        self.net.poll_connect()
    }

    /// The next bytes to write.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.net.poll_transmit()
    }

    /// The next finished operation.
    pub fn poll_event(&mut self) -> Option<AdminEvent> {
        self.events.pop_front()
    }

    /// Whether a waiting shell must come back now (output waiting, or a new deadline).
    pub fn needs_attention(&self) -> bool {
        self.new_deadline || self.net.has_output() || !self.events.is_empty()
    }

    /// How many operations are running.
    pub fn running(&self) -> usize {
        self.ops.len()
    }

    /// The earliest time `handle_timeout` has work to do.
    pub fn poll_timeout(&mut self) -> Option<Timeout> {
        self.new_deadline = false;
        let now = self.now;
        let mut earliest = Earliest::new(now);
        self.net.offer_request_deadlines(&mut earliest);
        if self.ops.is_empty() {
            return earliest.best();
        }
        self.net.offer_metadata_deadlines(&mut earliest);
        for e in self.ops.values() {
            earliest.offer(e.deadline, "operation timeout");
            for c in &e.pending {
                if let Some(at) = c.not_before {
                    earliest.offer(at, "retry backoff");
                }
                if let Target::Broker(id) = c.target
                    && let Some(at) = self.net.pool.backoff_until(Node::Broker(id))
                {
                    earliest.offer(at, "reconnect backoff");
                }
            }
        }
        for c in self.coordinators.values() {
            if let Coordinator::RetryAt(at) = *c {
                earliest.offer(at, "coordinator retry backoff");
            }
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
                Tag::Admin(call) => match self.calls.remove(&call) {
                    Some(Owner::Op(op, mut call)) => {
                        if let Target::Coordinator(k, t) = &call.target {
                            self.coordinators.remove(&(k.clone(), *t));
                        }
                        call.not_before = Some(now + self.config.network.retry_backoff);
                        if let Some(e) = self.ops.get_mut(&op) {
                            e.pending.push(call);
                        }
                    }
                    Some(Owner::Find(k, t)) => {
                        self.coordinators.remove(&(k, t));
                    }
                    None => {}
                },
                _ => {}
            }
        }
        self.net.metadata.request_refresh();
    }

    fn on_response(&mut self, req: InFlight, frame: Bytes, now: Instant) {
        match req.tag {
            Tag::Metadata => {
                match frame::decode_response_as::<MetadataResponse>(req.version, frame) {
                    Ok((_, resp)) => self.net.metadata.update(&resp, now),
                    Err(_) => self.net.metadata.failed(now),
                }
            }
            Tag::Admin(call) => {
                let decoded = frame::decode_response(req.api, req.version, frame)
                    .map(|(_, body)| body)
                    .map_err(|e| AdminError::Malformed(e.to_string()));
                match self.calls.remove(&call) {
                    Some(Owner::Op(op, call)) => self.respond(op, call.key, decoded, now),
                    Some(Owner::Find(k, t)) => self.found(k, t, decoded, now),
                    None => {}
                }
            }
            _ => {}
        }
    }

    /// A FindCoordinator answer.
    fn found(
        &mut self,
        key: String,
        key_type: i8,
        resp: Result<AnyResponse, AdminError>,
        now: Instant,
    ) {
        let outcome = match resp {
            Ok(AnyResponse::FindCoordinator(r)) => match r.coordinators.first() {
                Some(c) => {
                    ApiError::check(c.error_code, c.error_message.as_ref()).map(|()| c.node_id)
                }
                None => ApiError::check(r.error_code, r.error_message.as_ref()).map(|()| r.node_id),
            },
            _ => Err(ApiError {
                code: ErrorCode::UnknownServerError,
                message: Some("malformed FindCoordinator response".into()),
            }),
        };
        let slot = (key, key_type);
        match outcome {
            Ok(node) => {
                self.coordinators.insert(slot, Coordinator::Known(node));
                if !self.net.metadata.brokers.contains_key(&node) {
                    self.net.metadata.request_refresh();
                }
            }
            Err(e) if e.code.is_retriable() || e.code == ErrorCode::CoordinatorNotAvailable => {
                self.coordinators.insert(
                    slot,
                    Coordinator::RetryAt(now + self.config.network.retry_backoff),
                );
            }
            Err(e) => {
                // Not retriable (say, authorization): every call waiting for this
                // coordinator fails with it.
                self.coordinators.remove(&slot);
                let target = Target::Coordinator(slot.0, slot.1);
                let mut failed = Vec::new();
                for (&id, entry) in &mut self.ops {
                    let (hit, keep): (Vec<Call>, Vec<Call>) =
                        entry.pending.drain(..).partition(|c| c.target == target);
                    entry.pending = keep;
                    failed.extend(hit.into_iter().map(|c| (id, c.key)));
                }
                for (id, key) in failed {
                    self.respond(id, key, Err(AdminError::Api(e.clone())), now);
                }
            }
        }
    }

    fn drain(&mut self, now: Instant) {
        self.now = now;
        if let Some(e) = self.net.pool.fatal.clone() {
            // TLS or SASL failed: retrying cannot help, so every operation ends now.
            for id in std::mem::take(&mut self.ops).into_keys() {
                self.events.push_back(AdminEvent {
                    id: OpId(id),
                    result: Err(AdminError::Security(e.clone())),
                });
            }
            self.calls.clear();
            return;
        }
        self.send_metadata(now);
        let ids: Vec<u64> = self.ops.keys().copied().collect();
        for id in ids {
            // An operation answers a failed call at once, perhaps with a fallback call;
            // a few rounds send those too.
            for _ in 0..4 {
                if !self.send_calls(id, now) {
                    break;
                }
            }
        }
    }

    fn send_metadata(&mut self, now: Instant) {
        if self.ops.is_empty() && !self.net.metadata.brokers.is_empty() {
            return;
        }
        self.net
            .refresh_metadata(Some(std::iter::empty()), false, &mut self.rng, now);
    }

    /// Sends what an operation waits for, where a connection is ready.
    /// Whether a call failed before it was sent (the operation may have asked for more).
    fn send_calls(&mut self, id: u64, now: Instant) -> bool {
        let Some(entry) = self.ops.get_mut(&id) else {
            return false;
        };
        let pending = std::mem::take(&mut entry.pending);
        let mut keep = Vec::new();
        let mut failed = Vec::new();
        for call in pending {
            if call.not_before.is_some_and(|t| t > now) {
                keep.push(call);
                continue;
            }
            let conn = match self.resolve(&call.target, now) {
                Resolved::Conn(c) => c,
                Resolved::Wait => {
                    keep.push(call);
                    continue;
                }
                Resolved::Fail(e) => {
                    failed.push((call.key, e));
                    continue;
                }
            };
            let Some(c) = self.net.pool.get_mut(conn) else {
                keep.push(call);
                continue;
            };
            let version = match c.version(call.api) {
                Some(v) if v >= call.min_version => v,
                _ => {
                    failed.push((call.key, AdminError::Unsupported(call.api.name())));
                    continue;
                }
            };
            let call_id = self.next_id;
            self.next_id += 1;
            let req: AnyRequest = (call.build)(version);
            let deadline = now + self.config.network.request_timeout;
            match c.send_any(
                &req,
                version,
                Tag::Admin(call_id),
                deadline,
                &mut self.net.transmits,
            ) {
                Ok(()) => {
                    self.calls.insert(call_id, Owner::Op(id, call));
                }
                Err(e) => failed.push((call.key, AdminError::InvalidArgument(e.to_string()))),
            }
        }
        if let Some(entry) = self.ops.get_mut(&id) {
            entry.pending.extend(keep);
        }
        let any_failed = !failed.is_empty();
        for (key, e) in failed {
            self.respond(id, key, Err(e), now);
        }
        any_failed
    }

    fn resolve(&mut self, target: &Target, now: Instant) -> Resolved {
        match target {
            Target::Any => self
                .net
                .metadata
                .control_conn(&mut self.net.pool, &mut self.rng, now)
                .map_or(Resolved::Wait, Resolved::Conn),
            Target::Broker(node) => self.broker_conn(*node, true, now),
            Target::Coordinator(key, key_type) => {
                let slot = (key.clone(), *key_type);
                match self.coordinators.get(&slot).copied() {
                    Some(Coordinator::Known(node)) => self.broker_conn(node, false, now),
                    Some(Coordinator::Finding) => Resolved::Wait,
                    Some(Coordinator::RetryAt(t)) if t > now => Resolved::Wait,
                    _ => {
                        self.find_coordinator(slot, now);
                        Resolved::Wait
                    }
                }
            }
        }
    }

    /// A connection to broker `node`; if the cluster does not know it, a `strict` caller
    /// (who named the broker) fails, others wait for fresher metadata.
    fn broker_conn(&mut self, node: i32, strict: bool, now: Instant) -> Resolved {
        let Some(addr) = self.net.metadata.brokers.get(&node).cloned() else {
            if !strict || self.net.metadata.brokers.is_empty() || self.net.metadata.in_flight {
                self.net.metadata.request_refresh();
                return Resolved::Wait;
            }
            return Resolved::Fail(AdminError::InvalidArgument(format!(
                "the cluster has no broker {node}"
            )));
        };
        match self
            .net
            .pool
            .ensure(Node::Broker(node), Purpose::Control, &addr, now)
        {
            Some(c) => Resolved::Conn(c.id),
            None => Resolved::Wait,
        }
    }

    fn find_coordinator(&mut self, slot: (String, i8), now: Instant) {
        let Some(conn) = self
            .net
            .metadata
            .control_conn(&mut self.net.pool, &mut self.rng, now)
        else {
            return;
        };
        let Some(c) = self.net.pool.get_mut(conn) else {
            return;
        };
        let Some(version) = c.version(kasio_proto::ApiKey::FindCoordinator) else {
            return;
        };
        let req = crate::coordinator::request(&slot.0, slot.1, version);
        let call_id = self.next_id;
        self.next_id += 1;
        let deadline = now + self.config.network.request_timeout;
        if c.send_any(
            &req.into(),
            version,
            Tag::Admin(call_id),
            deadline,
            &mut self.net.transmits,
        )
        .is_ok()
        {
            self.calls
                .insert(call_id, Owner::Find(slot.0.clone(), slot.1));
            self.coordinators.insert(slot, Coordinator::Finding);
        }
    }
}

enum Resolved {
    Conn(ConnId),
    Wait,
    Fail(AdminError),
}
