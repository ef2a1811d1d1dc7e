//! The set of connections: which exist, which the shell is dialling, and when a broker
//! that failed may be dialled again.

use super::{ConnError, ConnId, ConnState, ConnectAction, Connection};
use crate::{
    config::BrokerAddress,
    rng::Rng,
    security::{Security, SecurityError},
};
use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
    time::{Duration, Instant},
};

/// Who a connection goes to: a bootstrap address (by index) or a broker (by node id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Node {
    Bootstrap(usize),
    Broker(i32),
}

/// What a connection carries: workloads get their own so one cannot block another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Purpose {
    /// Metadata and producer-id requests.
    Control,
    /// Produce requests.
    Produce,
    /// Fetch requests, which may wait at the broker and so block what follows them.
    Fetch,
}

#[derive(Debug, Clone, Copy)]
struct Backoff {
    failures: u32,
    until: Instant,
}

/// How many TLS handshakes cut short in a row make a fatal error.
const CUT_HANDSHAKES: u32 = 3;

#[derive(Debug)]
pub(crate) struct Pool {
    conns: HashMap<ConnId, Connection>,
    by_key: HashMap<(Node, Purpose), ConnId>,
    next_id: u64,
    pub(crate) actions: VecDeque<ConnectAction>,
    backoff: HashMap<Node, Backoff>,
    client_id: String,
    max_frame: usize,
    base: Duration,
    max: Duration,
    security: Option<Arc<Security>>,
    /// Nonces for SCRAM.
    rng: Rng,
    /// A TLS or SASL failure: the client stops dialling and reports it.
    pub(crate) fatal: Option<SecurityError>,
    /// TLS handshakes cut short in a row, with none completing in between.
    cut_handshakes: u32,
    /// Connections closed on their first request, in a row, with no response between.
    cut_first_requests: u32,
    /// Whether any connection ever had a response.
    answered: bool,
}

impl Pool {
    /// A pool whose connections use TLS and SASL as `security` says.
    pub(crate) fn secured(
        client_id: &str,
        max_frame: usize,
        base: Duration,
        max: Duration,
        security: Option<Arc<Security>>,
        seed: u64,
    ) -> Self {
        Self {
            security,
            rng: Rng::new(seed ^ 0x5ca1_ab1e),
            fatal: None,
            cut_handshakes: 0,
            cut_first_requests: 0,
            answered: false,
            conns: HashMap::new(),
            by_key: HashMap::new(),
            next_id: 1,
            actions: VecDeque::new(),
            backoff: HashMap::new(),
            client_id: client_id.into(),
            max_frame,
            base,
            max,
        }
    }

    pub(crate) fn get_mut(&mut self, id: ConnId) -> Option<&mut Connection> {
        self.conns.get_mut(&id)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Connection> {
        self.conns.values()
    }

    pub(crate) fn find(&self, node: Node, purpose: Purpose) -> Option<ConnId> {
        self.by_key.get(&(node, purpose)).copied()
    }

    /// The ready connection for `node` and `purpose`, dialling it if there is none and the
    /// node is not backing off.
    pub(crate) fn ensure(
        &mut self,
        node: Node,
        purpose: Purpose,
        addr: &BrokerAddress,
        now: Instant,
    ) -> Option<&mut Connection> {
        if let Some(id) = self.by_key.get(&(node, purpose)) {
            let conn = self.conns.get_mut(id)?;
            return conn.is_ready().then_some(conn);
        }
        if self.fatal.is_some() || self.backoff_until(node).is_some_and(|t| t > now) {
            return None;
        }
        let id = ConnId(self.next_id);
        self.next_id += 1;
        let nonce = [self.rng.next_u64(), self.rng.next_u64()];
        let security = self.security.clone();
        let conn = Connection::secured(
            id,
            node,
            purpose,
            &self.client_id,
            self.max_frame,
            now,
            security.as_deref().map(|s| (s, addr.host.as_str(), nonce)),
        );
        if let Some(e) = &conn.failed {
            self.fatal = Some(e.clone());
            return None;
        }
        self.conns.insert(id, conn);
        self.by_key.insert((node, purpose), id);
        self.actions.push_back(ConnectAction::Open {
            conn: id,
            host: addr.host.clone(),
            port: addr.port,
        });
        None
    }

    /// When `node` may be dialled again, if it is backing off.
    pub(crate) fn backoff_until(&self, node: Node) -> Option<Instant> {
        self.backoff.get(&node).map(|b| b.until)
    }

    /// Whether `node` failed its last dial and is waiting.
    pub(crate) fn is_backing_off(&self, node: Node, now: Instant) -> bool {
        self.backoff_until(node).is_some_and(|t| t > now)
    }

    /// A connection finished negotiating: its node is healthy again.
    pub(crate) fn healthy(&mut self, node: Node) {
        self.cut_handshakes = 0;
        self.backoff.remove(&node);
    }

    /// Forgets a connection the core decided to close, and asks the shell to close it.
    pub(crate) fn close(&mut self, id: ConnId, now: Instant, rng: &mut Rng) -> Option<Connection> {
        let conn = self.forget(id, now, rng)?;
        self.actions.push_back(ConnectAction::Close { conn: id });
        Some(conn)
    }

    /// Forgets a connection the shell reports closed; the node backs off before the next
    /// dial, exponentially with jitter while failures repeat.
    pub(crate) fn forget(&mut self, id: ConnId, now: Instant, rng: &mut Rng) -> Option<Connection> {
        let conn = self.conns.remove(&id)?;
        // Only a client that never had a single answer from any broker counts: one that
        // had answers before is seeing faults, not a listener that wants SASL.
        if conn.responses > 0 {
            self.answered = true;
        } else if conn.refused_unauthenticated()
            && !self.answered
            && !self.conns.values().any(|c| c.responses > 0)
        {
            self.cut_first_requests += 1;
            if self.cut_first_requests >= CUT_HANDSHAKES {
                self.fatal.get_or_insert_with(|| SecurityError {
                    kind: crate::SecurityErrorKind::Mechanism,
                    message: format!(
                        "the broker closed the connection on the first request {CUT_HANDSHAKES} times in a row: does the listener expect SASL?"
                    ),
                });
            }
        }
        // A broker that closes every TLS handshake is most likely a plaintext listener:
        // after a few, stop retrying and say so.
        if conn.in_tls_handshake() {
            self.cut_handshakes += 1;
            if self.cut_handshakes >= CUT_HANDSHAKES {
                self.fatal.get_or_insert_with(|| SecurityError {
                    kind: crate::SecurityErrorKind::Tls,
                    message: format!(
                        "the broker closed the connection during {CUT_HANDSHAKES} TLS handshakes in a row: is the listener TLS?"
                    ),
                });
            }
        }
        self.by_key.remove(&(conn.node, conn.purpose));
        let failures = match self.backoff.get(&conn.node) {
            Some(b) => b.failures + 1,
            None if conn.state == ConnState::Connecting => 1,
            None => 0,
        };
        let exp = self
            .base
            .saturating_mul(1u32 << failures.min(20))
            .min(self.max);
        let delay = exp.mul_f64(rng.between(0.8, 1.2));
        self.backoff.insert(
            conn.node,
            Backoff {
                failures,
                until: now + delay,
            },
        );
        Some(conn)
    }

    /// Connections with a request past its deadline. Like the Java client, the caller
    /// closes them: a request that timed out poisons its connection.
    ///
    /// SASL sessions due for renewal start re-authenticating here (KIP-368). One that
    /// ended anyway is closed: idle, here without a backoff (the next request dials and
    /// authenticates again); with requests in flight, by the caller, as if they were late.
    pub(crate) fn timed_out(
        &mut self,
        now: Instant,
        out: &mut VecDeque<super::Transmit>,
    ) -> Vec<ConnId> {
        let mut retire = Vec::new();
        let mut late = Vec::new();
        let mut failed = None;
        for c in self.conns.values_mut() {
            if c.request_deadline().is_some_and(|d| d <= now) {
                late.push(c.id);
            } else if c.expires_at.is_some_and(|t| t <= now) {
                if c.in_flight.is_empty() {
                    retire.push(c.id);
                } else {
                    late.push(c.id);
                }
            } else if let Err(e) = c.reauthenticate_if_due(now, out) {
                failed.get_or_insert(e);
                late.push(c.id);
            }
        }
        if let Some(e) = failed {
            self.note(&e);
        }
        for id in retire {
            if let Some(c) = self.conns.remove(&id) {
                self.by_key.remove(&(c.node, c.purpose));
                self.actions.push_back(ConnectAction::Close { conn: id });
            }
        }
        late
    }

    /// Feeds bytes that arrived on `conn` and takes out every whole response, in order,
    /// with the error that broke the connection, if one did (the caller then loses it).
    /// The second value says whether the connection is ready (negotiated and
    /// authenticated), which makes its node healthy again.
    pub(crate) fn receive(
        &mut self,
        conn: ConnId,
        data: &[u8],
        now: Instant,
        out: &mut VecDeque<super::Transmit>,
    ) -> (
        Vec<(super::InFlight, bytes::Bytes)>,
        bool,
        Option<ConnError>,
    ) {
        let mut responses = Vec::new();
        let Some(c) = self.conns.get_mut(&conn) else {
            return (responses, false, None);
        };
        c.feed(data, now, out);
        loop {
            match c.next_response(out) {
                Ok(Some(r)) => responses.push(r),
                Ok(None) => break,
                Err(e) => {
                    self.note(&e);
                    return (responses, false, Some(e));
                }
            }
        }
        if let Err(e) = c.reauthenticate_if_due(now, out) {
            self.note(&e);
            return (responses, false, Some(e));
        }
        let ready = c.is_ready();
        if ready {
            let node = c.node;
            self.healthy(node);
        }
        (responses, ready, None)
    }

    /// Notes a fatal TLS or SASL failure.
    pub(crate) fn note(&mut self, error: &ConnError) {
        if let ConnError::Security(e) = error {
            self.fatal.get_or_insert_with(|| e.clone());
        }
    }

    pub(crate) fn ids(&self) -> Vec<ConnId> {
        self.conns.keys().copied().collect()
    }
}
