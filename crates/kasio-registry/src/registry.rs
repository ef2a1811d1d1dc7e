//! The sans-IO registry client: calls in, HTTP over connections the driver opens, answers
//! out; caches, merged misses, retries with backoff, several base URLs.

use crate::{
    Answer, RegisteredSchema, RegistryConfig, RegistryError, Request, Schema,
    cache::Cache,
    error::retriable_status,
    http::{HttpError, Response, ResponseReader, write_request},
    request::api_error,
};
use kasio_core::{
    Client, CloseReason, ConfigError, ConnId, ConnectAction, Timeout, TlsConnector, TlsSession,
    Transmit,
};
use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
    time::{Duration, Instant},
};

/// The registry's name for one call, to match its answer with [`Registry::poll_answer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(pub u64);

/// How long an idle connection is kept.
const IDLE: Duration = Duration::from_secs(60);

/// How deep references may chain (a schema importing one importing one ...) before a
/// fetch by id gives up: a registry answering with an endless chain must not keep the
/// client fetching.
pub const MAX_REFERENCE_DEPTH: u8 = 16;

/// Who waits for a request's answer: a caller, or a request whose schema imports the one
/// this request fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiter {
    Call(CallId),
    Op(u64),
}

/// Where one request (the calls merged into it) stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpState {
    /// Waiting for a connection.
    Queued,
    /// Waiting to retry.
    Backoff { until: Instant },
    /// Written to (or waiting for the dial of) a connection.
    Sent { conn: ConnId },
    /// Answered; the answer waits for this many fetches of schemas it references.
    Resolving { missing: usize },
}

#[derive(Debug)]
struct Op {
    request: Request,
    state: OpState,
    /// Failed attempts so far.
    failures: u32,
    /// The base URL the next attempt goes to.
    url: usize,
    waiters: Vec<Waiter>,
    merge_key: Option<String>,
    /// Whether the schema it fetches is answered only once the schemas it references
    /// (transitively) are cached: a fetch by id, and the fetches of its references.
    resolves: bool,
    /// How many references deep this fetch is (0 for the one a caller asked for).
    depth: u8,
    /// The answer, held while the references it names are fetched.
    held: Option<Answer>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConnState {
    /// Dialing; the request waits.
    Dialing,
    /// Up, serving `op` or idle.
    Open,
}

#[derive(Debug)]
struct Conn {
    url: usize,
    state: ConnState,
    tls: Option<TlsSession>,
    reader: ResponseReader,
    op: Option<u64>,
    /// Whether it carried a request before the current one (a server may close a
    /// keep-alive connection just as a request goes out).
    reused: bool,
    /// When the current attempt gives up, or when the idle connection is closed.
    deadline: Instant,
}

/// What the registry holds that is cached here.
#[derive(Debug)]
struct Caches {
    by_id: Cache<u32, Arc<Schema>>,
    ids: Cache<(String, Arc<Schema>), u32>,
    versions: Cache<(String, i32), RegisteredSchema>,
    latest: Cache<String, (RegisteredSchema, Instant)>,
}

/// A client for Confluent's Schema Registry REST API, sans-IO: drive it like any kasio
/// client through [`Client`] (it asks for connections to the registry's host and moves
/// HTTP/1.1, with TLS for `https` URLs), give it calls with [`request`](Self::request),
/// and take their answers from [`poll_answer`](Self::poll_answer).
///
/// Schemas by id, ids by subject and schema, and versions are cached
/// ([`schema`](Self::schema) reads the cache without a call); identical calls under way
/// at once share one request; connection failures, timeouts and 408, 429 and 5xx answers
/// are retried with exponential backoff and full jitter, moving to the next base URL.
///
/// ```
/// use kasio_core::{Client, ConnectAction};
/// use kasio_registry::{Answer, Registry, RegistryConfig, Request};
/// use std::time::Instant;
/// let now = Instant::now();
/// let mut registry = Registry::new(RegistryConfig::new("http://localhost:8081")?, now, 7)?;
/// let call = registry.request(Request::SchemaById { id: 1 }, now);
/// let Some(ConnectAction::Open { conn, host, port }) = registry.poll_connect() else { panic!() };
/// assert_eq!((host.as_str(), port), ("localhost", 8081));
/// registry.handle_connected(conn, now);
/// let sent = registry.poll_transmit().unwrap();
/// assert!(sent.data.starts_with(b"GET /schemas/ids/1 HTTP/1.1\r\n"));
/// let body = r#"{"schema":"\"int\""}"#;
/// let response = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
/// registry.handle_input(conn, response.as_bytes(), now);
/// let (id, answer) = registry.poll_answer().unwrap();
/// assert_eq!(id, call);
/// assert!(matches!(answer, Ok(Answer::Schema(s)) if s.text == "\"int\""));
/// assert!(registry.schema(1).is_some(), "cached");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Registry {
    config: RegistryConfig,
    tls: Option<TlsConnector>,
    headers: Vec<(&'static str, String)>,
    ops: HashMap<u64, Op>,
    queue: VecDeque<u64>,
    merging: HashMap<String, u64>,
    conns: HashMap<ConnId, Conn>,
    caches: Caches,
    answers: VecDeque<(CallId, Result<Answer, RegistryError>)>,
    actions: VecDeque<ConnectAction>,
    transmits: VecDeque<Transmit>,
    next_call: u64,
    next_op: u64,
    next_conn: u64,
    rng: u64,
    attention: bool,
    closed: bool,
    requests_sent: u64,
}

impl Registry {
    /// A client for the registry `config` names; `seed` feeds the backoff's jitter.
    ///
    /// # Errors
    /// [`ConfigError`] if no URL is set or the TLS settings do not load.
    pub fn new(config: RegistryConfig, _now: Instant, seed: u64) -> Result<Self, ConfigError> {
        config.check()?;
        let tls = if config.urls.iter().any(|u| u.tls) {
            Some(TlsConnector::new(&config.security)?)
        } else {
            None
        };
        let mut headers = vec![
            ("User-Agent", format!("kasio/{}", env!("CARGO_PKG_VERSION"))),
            (
                "Accept",
                "application/vnd.schemaregistry.v1+json, application/vnd.schemaregistry+json, application/json".into(),
            ),
        ];
        headers.extend(config.auth.headers());
        let capacity = config.cache_capacity;
        Ok(Self {
            config,
            tls,
            headers,
            ops: HashMap::new(),
            queue: VecDeque::new(),
            merging: HashMap::new(),
            conns: HashMap::new(),
            caches: Caches {
                by_id: Cache::new(capacity),
                ids: Cache::new(capacity),
                versions: Cache::new(capacity),
                latest: Cache::new(capacity),
            },
            answers: VecDeque::new(),
            actions: VecDeque::new(),
            transmits: VecDeque::new(),
            next_call: 0,
            next_op: 0,
            next_conn: 0,
            rng: seed | 1,
            attention: false,
            closed: false,
            requests_sent: 0,
        })
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    /// The schema with `id`, if it is cached.
    #[must_use]
    pub fn schema(&self, id: u32) -> Option<Arc<Schema>> {
        self.caches.by_id.get(&id).cloned()
    }

    /// The id of `schema` under `subject`, if it is cached (from a register or lookup).
    #[must_use]
    pub fn cached_id(&self, subject: &str, schema: &Schema) -> Option<u32> {
        // Keys own their parts; a lookup builds one (this is off the per-record path:
        // serializers keep the id they were given).
        let key = (subject.to_string(), Arc::new(schema.clone()));
        self.caches.ids.get(&key).copied()
    }

    /// How many HTTP requests have been written (retries included): what the caches
    /// and merging save shows here.
    #[must_use]
    pub fn requests_sent(&self) -> u64 {
        self.requests_sent
    }

    /// Starts a call; its answer comes from [`poll_answer`](Self::poll_answer) (at once
    /// when the cache holds it).
    pub fn request(&mut self, request: Request, now: Instant) -> CallId {
        let call = CallId(self.next_call);
        self.next_call += 1;
        self.attention = true;
        if self.closed {
            self.answers.push_back((call, Err(RegistryError::Closed)));
            return call;
        }
        if let Some(answer) = self.cached(&request, now) {
            self.answers.push_back((call, Ok(answer)));
            return call;
        }
        self.forget_cached(&request);
        let merge_key = merge_key(&request);
        if let Some(op) = merge_key
            .as_ref()
            .and_then(|k| self.merging.get(k))
            .and_then(|op| self.ops.get_mut(op))
        {
            op.waiters.push(Waiter::Call(call));
            return call;
        }
        let resolves = matches!(request, Request::SchemaById { .. });
        self.start(request, merge_key, Waiter::Call(call), resolves, 0);
        self.dispatch(now);
        call
    }

    /// Queues a new request for `waiter`.
    fn start(
        &mut self,
        request: Request,
        merge_key: Option<String>,
        waiter: Waiter,
        resolves: bool,
        depth: u8,
    ) {
        let id = self.next_op;
        self.next_op += 1;
        if let Some(key) = &merge_key {
            self.merging.insert(key.clone(), id);
        }
        self.ops.insert(
            id,
            Op {
                request,
                state: OpState::Queued,
                failures: 0,
                url: 0,
                waiters: vec![waiter],
                merge_key,
                resolves,
                depth,
                held: None,
            },
        );
        self.queue.push_back(id);
    }

    /// The schema `reference` names (a subject's version), if it is cached: what a codec
    /// parses a schema importing it with.
    #[must_use]
    pub fn referenced(&self, subject: &str, version: i32) -> Option<Arc<Schema>> {
        // Keys own their parts; a lookup builds one (once per schema parsed, not per
        // record).
        let key = (subject.to_string(), version);
        self.caches.versions.get(&key).map(|r| r.schema.clone())
    }

    /// Whether every schema `schema` references, and every one those reference, is
    /// cached.
    fn references_cached(&self, schema: &Schema, depth: u8) -> bool {
        schema.references.iter().all(|r| {
            depth < MAX_REFERENCE_DEPTH
                && self
                    .referenced(&r.subject, r.version)
                    .is_some_and(|s| self.references_cached(&s, depth + 1))
        })
    }

    /// The next call that ended, with its answer.
    pub fn poll_answer(&mut self) -> Option<(CallId, Result<Answer, RegistryError>)> {
        self.answers.pop_front()
    }

    /// Ends every call under way with [`RegistryError::Closed`] and closes the
    /// connections; later calls end the same way.
    pub fn close(&mut self) {
        self.closed = true;
        self.attention = true;
        let ids: Vec<u64> = self.ops.keys().copied().collect();
        for id in ids {
            self.finish(id, Err(RegistryError::Closed));
        }
        for conn in std::mem::take(&mut self.conns).into_keys() {
            self.actions.push_back(ConnectAction::Close { conn });
        }
    }

    /// Whether no call is under way and nothing waits to be taken or sent.
    #[must_use]
    pub fn is_idle(&self) -> bool {
        self.ops.is_empty()
            && self.answers.is_empty()
            && self.actions.is_empty()
            && self.transmits.is_empty()
    }

    fn cached(&self, request: &Request, now: Instant) -> Option<Answer> {
        match request {
            Request::SchemaById { id } => self
                .schema(*id)
                .filter(|s| self.references_cached(s, 0))
                .map(Answer::Schema),
            Request::Register {
                subject, schema, ..
            } => self.cached_id(subject, schema).map(Answer::Id),
            Request::Version {
                subject,
                version: crate::Version::Number(v),
            } => self
                .caches
                .versions
                .get(&(subject.clone(), *v))
                .cloned()
                .map(Answer::Registered),
            Request::Version {
                subject,
                version: crate::Version::Latest,
            } => {
                let ttl = self.config.cache_latest_ttl?;
                let (registered, at) = self.caches.latest.get(subject)?;
                (now.saturating_duration_since(*at) < ttl)
                    .then(|| Answer::Registered(registered.clone()))
            }
            _ => None,
        }
    }

    /// A change to a subject makes what is cached about it stale.
    fn forget_cached(&mut self, request: &Request) {
        let subject = match request {
            Request::DeleteSubject { subject, .. } | Request::DeleteVersion { subject, .. } => {
                subject
            }
            Request::Register { subject, .. } => {
                self.caches.latest.remove_where(|s| s == subject);
                return;
            }
            _ => return,
        };
        self.caches.versions.remove_where(|(s, _)| s == subject);
        self.caches.ids.remove_where(|(s, _)| s == subject);
        self.caches.latest.remove_where(|s| s == subject);
    }

    fn remember(&mut self, request: &Request, answer: &Answer, now: Instant) {
        match (request, answer) {
            (Request::SchemaById { id }, Answer::Schema(schema)) => {
                self.caches.by_id.insert(*id, schema.clone());
            }
            (
                Request::Register {
                    subject, schema, ..
                },
                Answer::Id(id),
            ) => {
                let schema = Arc::new(schema.clone());
                self.caches
                    .ids
                    .insert((subject.clone(), schema.clone()), *id);
                if self.caches.by_id.get(id).is_none() {
                    self.caches.by_id.insert(*id, schema);
                }
            }
            (
                Request::Lookup { subject, .. } | Request::Version { subject, .. },
                Answer::Registered(r),
            ) => {
                match request {
                    Request::Lookup { schema, .. } => {
                        let key = (subject.clone(), Arc::new(schema.clone()));
                        self.caches.ids.insert(key, r.id);
                    }
                    Request::Version {
                        version: crate::Version::Latest,
                        ..
                    } => self.caches.latest.insert(subject.clone(), (r.clone(), now)),
                    _ => {}
                }
                if self.caches.by_id.get(&r.id).is_none() {
                    self.caches.by_id.insert(r.id, r.schema.clone());
                }
                let key = (r.subject.clone(), r.version);
                self.caches.versions.insert(key, r.clone());
            }
            _ => {}
        }
    }

    fn finish(&mut self, op_id: u64, result: Result<Answer, RegistryError>) {
        let Some(op) = self.ops.remove(&op_id) else {
            return;
        };
        if let Some(key) = &op.merge_key
            && self.merging.get(key) == Some(&op_id)
        {
            self.merging.remove(key);
        }
        for waiter in op.waiters {
            match waiter {
                Waiter::Call(call) => self.answers.push_back((call, result.clone())),
                Waiter::Op(parent) => self.reference_fetched(parent, &result),
            }
        }
    }

    /// One of the references `parent`'s schema imports was fetched (or failed to be).
    fn reference_fetched(&mut self, parent: u64, result: &Result<Answer, RegistryError>) {
        let Some(op) = self.ops.get_mut(&parent) else {
            // It failed already through another of its references.
            return;
        };
        if let Err(e) = result {
            self.finish(parent, Err(e.clone()));
            return;
        }
        let OpState::Resolving { missing } = &mut op.state else {
            return;
        };
        *missing = missing.saturating_sub(1);
        if *missing == 0
            && let Some(answer) = op.held.take()
        {
            self.finish(parent, Ok(answer));
        }
    }

    /// `op` fetched `schema`: fetches the references it imports that are not cached,
    /// holding its answer until they are; whether it must wait.
    fn fetch_references(&mut self, op_id: u64, schema: &Schema) -> Result<bool, RegistryError> {
        let Some(depth) = self.ops.get(&op_id).map(|op| op.depth) else {
            return Ok(false);
        };
        let mut missing: Vec<&crate::SchemaReference> = schema
            .references
            .iter()
            .filter(|r| self.referenced(&r.subject, r.version).is_none())
            .collect();
        missing.dedup_by(|a, b| a.subject == b.subject && a.version == b.version);
        if missing.is_empty() {
            return Ok(false);
        }
        if depth >= MAX_REFERENCE_DEPTH {
            return Err(RegistryError::Malformed(format!(
                "schema references nested deeper than {MAX_REFERENCE_DEPTH}"
            )));
        }
        let count = missing.len();
        for r in missing {
            let request = Request::Version {
                subject: r.subject.clone(),
                version: crate::Version::Number(r.version),
            };
            let key = merge_key(&request);
            match key
                .as_ref()
                .and_then(|k| self.merging.get(k))
                .and_then(|op| self.ops.get_mut(op))
            {
                Some(op) => {
                    op.resolves = true;
                    op.waiters.push(Waiter::Op(op_id));
                }
                None => self.start(request, key, Waiter::Op(op_id), true, depth + 1),
            }
        }
        if let Some(op) = self.ops.get_mut(&op_id) {
            op.state = OpState::Resolving { missing: count };
        }
        Ok(true)
    }

    /// Full jitter: a uniform wait up to `retries.wait.ms` doubled per earlier failure,
    /// capped at `retries.max.wait.ms`.
    fn backoff(&mut self, failures: u32) -> Duration {
        // splitmix64: the core reads no randomness of its own.
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let ceiling = self
            .config
            .retries_wait
            .saturating_mul(1 << failures.saturating_sub(1).min(20))
            .min(self.config.retries_max_wait);
        let fraction = (z >> 11) as f64 / (1u64 << 53) as f64;
        ceiling.mul_f64(fraction)
    }

    /// An attempt failed in a way a later one may not: retry after a backoff, or give up.
    fn failed(&mut self, op_id: u64, error: RegistryError, now: Instant) {
        let retries = self.config.max_retries;
        let urls = self.config.urls.len();
        let Some(op) = self.ops.get_mut(&op_id) else {
            return;
        };
        op.failures += 1;
        if op.failures > retries {
            self.finish(op_id, Err(error));
            return;
        }
        op.url = (op.url + 1) % urls;
        let failures = op.failures;
        let until = now + self.backoff(failures);
        if let Some(op) = self.ops.get_mut(&op_id) {
            op.state = OpState::Backoff { until };
        }
    }

    /// Puts queued requests on idle connections, or dials for them.
    fn dispatch(&mut self, now: Instant) {
        let mut waiting = VecDeque::new();
        while let Some(id) = self.queue.pop_front() {
            let Some(url) = self.ops.get(&id).map(|op| op.url) else {
                continue;
            };
            let idle = self
                .conns
                .iter()
                .find(|(_, c)| c.url == url && c.state == ConnState::Open && c.op.is_none())
                .map(|(id, _)| *id);
            if let Some(conn) = idle {
                self.send(id, conn, now);
                continue;
            }
            if self.conns.len() >= self.config.max_connections {
                // Room only if an idle connection to another URL can go.
                let other = self
                    .conns
                    .iter()
                    .find(|(_, c)| c.state == ConnState::Open && c.op.is_none())
                    .map(|(id, _)| *id);
                match other {
                    Some(conn) => self.drop_conn(conn),
                    None => {
                        waiting.push_back(id);
                        continue;
                    }
                }
            }
            self.dial(id, url, now);
        }
        self.queue = waiting;
    }

    fn dial(&mut self, op: u64, url: usize, now: Instant) {
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        let target = &self.config.urls[url];
        let tls = match (&self.tls, target.tls) {
            (Some(tls), true) => match tls.session(&target.host) {
                Ok(session) => Some(session),
                Err(e) => {
                    self.finish(op, Err(RegistryError::Tls(e)));
                    return;
                }
            },
            _ => None,
        };
        self.actions.push_back(ConnectAction::Open {
            conn,
            host: target.host.clone(),
            port: target.port,
        });
        self.conns.insert(
            conn,
            Conn {
                url,
                state: ConnState::Dialing,
                tls,
                reader: ResponseReader::new(self.config.max_response_bytes),
                op: Some(op),
                reused: false,
                deadline: now + self.config.request_timeout,
            },
        );
        if let Some(op) = self.ops.get_mut(&op) {
            op.state = OpState::Sent { conn };
        }
    }

    /// Writes `op`'s request to `conn`.
    fn send(&mut self, op_id: u64, conn_id: ConnId, now: Instant) {
        let (Some(op), Some(conn)) = (self.ops.get_mut(&op_id), self.conns.get_mut(&conn_id))
        else {
            return;
        };
        op.state = OpState::Sent { conn: conn_id };
        let url = &self.config.urls[conn.url];
        let http = op.request.http();
        let authority = url.authority();
        let headers: Vec<(&str, &str)> = std::iter::once(("Host", authority.as_str()))
            .chain(self.headers.iter().map(|(k, v)| (*k, v.as_str())))
            .collect();
        let mut bytes = Vec::with_capacity(256 + http.body.as_ref().map_or(0, Vec::len));
        let target = format!("{}{}", url.path, http.path);
        write_request(
            &mut bytes,
            http.method,
            &target,
            &headers,
            http.body.as_deref(),
        );
        conn.op = Some(op_id);
        conn.reader = ResponseReader::new(self.config.max_response_bytes);
        conn.deadline = now + self.config.request_timeout;
        self.requests_sent += 1;
        match &mut conn.tls {
            Some(tls) => {
                tls.write(&bytes);
                if let Some(data) = tls.take_output() {
                    self.transmits.push_back(Transmit {
                        conn: conn_id,
                        data: data.into(),
                    });
                }
            }
            None => self.transmits.push_back(Transmit {
                conn: conn_id,
                data: bytes.into(),
            }),
        }
    }

    fn drop_conn(&mut self, conn: ConnId) {
        if self.conns.remove(&conn).is_some() {
            self.actions.push_back(ConnectAction::Close { conn });
        }
    }

    /// A response for `op` arrived.
    fn answered(&mut self, op_id: u64, response: Response, now: Instant) {
        let Some(op) = self.ops.get(&op_id) else {
            return;
        };
        if (200..300).contains(&response.status) {
            let request = op.request.clone();
            let resolves = op.resolves;
            let result = request.answer(&response.body);
            if let Ok(answer) = &result {
                self.remember(&request, answer, now);
            }
            let schema = match &result {
                Ok(Answer::Schema(s)) if resolves => Some(s.clone()),
                Ok(Answer::Registered(r)) if resolves => Some(r.schema.clone()),
                _ => None,
            };
            if let Some(schema) = schema {
                match self.fetch_references(op_id, &schema) {
                    Ok(false) => {}
                    Ok(true) => {
                        // Answered, but held: a new call for the same thing starts its own
                        // request rather than wait on one that may wait on it.
                        if let Some(op) = self.ops.get_mut(&op_id) {
                            op.held = result.ok();
                            if let Some(key) = op.merge_key.take() {
                                self.merging.remove(&key);
                            }
                        }
                        return;
                    }
                    Err(e) => {
                        self.finish(op_id, Err(e));
                        return;
                    }
                }
            }
            self.finish(op_id, result);
        } else if retriable_status(response.status) {
            self.failed(op_id, api_error(response.status, &response.body), now);
        } else {
            self.finish(op_id, Err(api_error(response.status, &response.body)));
        }
    }

    /// The connection's attempt ended without an answer.
    fn lost(&mut self, conn: Conn, error: RegistryError, now: Instant) {
        let Some(op) = conn.op else {
            return;
        };
        if conn.reused && !conn.reader.started() && matches!(error, RegistryError::Unreachable(_)) {
            // The server closed a kept-alive connection as the request went out: not a
            // failure of the registry, so it costs no retry.
            if let Some(o) = self.ops.get_mut(&op) {
                o.state = OpState::Queued;
                self.queue.push_back(op);
            }
            return;
        }
        self.failed(op, error, now);
    }
}

/// The key identical calls under way at once share one request by, for calls that may.
fn merge_key(request: &Request) -> Option<String> {
    request.mergeable().then(|| {
        let http = request.http();
        let body = http.body.as_deref().map(String::from_utf8_lossy);
        format!("{} {} {}", http.method, http.path, body.unwrap_or_default())
    })
}

impl Client for Registry {
    fn handle_connected(&mut self, conn_id: ConnId, now: Instant) {
        let Some(conn) = self.conns.get_mut(&conn_id) else {
            return;
        };
        conn.state = ConnState::Open;
        if let Some(data) = conn.tls.as_mut().and_then(TlsSession::take_output) {
            self.transmits.push_back(Transmit {
                conn: conn_id,
                data: data.into(),
            });
        }
        if let Some(op) = conn.op {
            self.send(op, conn_id, now);
        }
        self.dispatch(now);
    }

    fn handle_input(&mut self, conn_id: ConnId, data: &[u8], now: Instant) {
        let Some(conn) = self.conns.get_mut(&conn_id) else {
            return;
        };
        let plain;
        let data = match &mut conn.tls {
            Some(tls) => {
                let mut buf = bytes::BytesMut::new();
                let result = tls.receive(data, &mut buf);
                if let Some(out) = tls.take_output() {
                    self.transmits.push_back(Transmit {
                        conn: conn_id,
                        data: out.into(),
                    });
                }
                if let Err(e) = result {
                    let conn = self.conns.remove(&conn_id);
                    self.actions
                        .push_back(ConnectAction::Close { conn: conn_id });
                    if let Some(op) = conn.and_then(|c| c.op) {
                        self.finish(op, Err(RegistryError::Tls(e)));
                    }
                    self.dispatch(now);
                    return;
                }
                plain = buf;
                &plain[..]
            }
            None => data,
        };
        if data.is_empty() {
            return;
        }
        let Some(op) = conn.op else {
            // Nothing was asked on this connection: whatever it says, it is no longer
            // in step with us.
            self.drop_conn(conn_id);
            return;
        };
        match conn.reader.feed(data) {
            Ok(None) => {}
            Ok(Some(response)) => {
                let keep = response.keep_alive && !self.closed;
                if keep {
                    conn.op = None;
                    conn.reused = true;
                    conn.deadline = now + IDLE;
                } else {
                    self.drop_conn(conn_id);
                }
                self.answered(op, response, now);
            }
            Err(e) => {
                self.drop_conn(conn_id);
                let error = match e {
                    HttpError::TooLarge(limit) => RegistryError::TooLarge { limit },
                    HttpError::Malformed(why) => RegistryError::Malformed(why),
                };
                self.finish(op, Err(error));
            }
        }
        self.dispatch(now);
    }

    fn handle_closed(&mut self, conn_id: ConnId, reason: CloseReason, now: Instant) {
        let Some(mut conn) = self.conns.remove(&conn_id) else {
            return;
        };
        if let (Some(op), Some(response)) = (conn.op, conn.reader.closed()) {
            self.answered(op, response, now);
        } else {
            let why = match reason {
                CloseReason::ConnectFailed(e) => format!("connect failed: {e}"),
                CloseReason::PeerClosed => "the registry closed the connection".into(),
                CloseReason::Io(e) => e,
                other => format!("{other:?}"),
            };
            self.lost(conn, RegistryError::Unreachable(why), now);
        }
        self.dispatch(now);
    }

    fn handle_timeout(&mut self, now: Instant) {
        let expired: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some(conn) = self.conns.remove(&id) {
                self.actions.push_back(ConnectAction::Close { conn: id });
                self.lost(conn, RegistryError::Timeout, now);
            }
        }
        let due: Vec<u64> = self
            .ops
            .iter()
            .filter(|(_, op)| matches!(op.state, OpState::Backoff { until } if until <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            if let Some(op) = self.ops.get_mut(&id) {
                op.state = OpState::Queued;
                self.queue.push_back(id);
            }
        }
        self.dispatch(now);
    }

    fn poll_connect(&mut self) -> Option<ConnectAction> {
        self.actions.pop_front()
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    fn poll_timeout(&mut self) -> Option<Timeout> {
        self.attention = false;
        let conns = self.conns.values().map(|c| Timeout {
            at: c.deadline,
            reason: if c.op.is_some() {
                "registry request timeout"
            } else {
                "idle registry connection"
            },
        });
        let backoffs = self.ops.values().filter_map(|op| match op.state {
            OpState::Backoff { until } => Some(Timeout {
                at: until,
                reason: "registry retry backoff",
            }),
            _ => None,
        });
        conns.chain(backoffs).min_by_key(|t| t.at)
    }

    fn needs_attention(&self) -> bool {
        self.attention
    }
}
