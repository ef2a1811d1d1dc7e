//! What every client shares on its way to the cluster, written once for the producer,
//! the consumer and the admin client (and any client after them): the settings of
//! [`NetworkConfig`], the connections and the metadata cache with the queue of bytes to
//! write ([`Network`]), the Metadata request, and the search for the next deadline
//! ([`Earliest`]).

mod config;
mod deadline;

pub use config::NetworkConfig;
pub(crate) use deadline::Earliest;
pub use deadline::Timeout;

use crate::{
    conn::{ConnError, ConnId, ConnectAction, InFlight, Pool, Tag, Transmit},
    metadata::Metadata,
    rng::Rng,
    security::Security,
};
use bytes::Bytes;
use kasio_proto::messages::{MetadataRequest, metadata_request::MetadataRequestTopic};
use std::{
    collections::VecDeque,
    sync::Arc,
    time::{Duration, Instant},
};

/// A client's connections, its metadata cache and the bytes waiting for the driver.
#[derive(Debug)]
pub(crate) struct Network {
    pub(crate) pool: Pool,
    pub(crate) metadata: Metadata,
    pub(crate) transmits: VecDeque<Transmit>,
    request_timeout: Duration,
}

/// What one read from a connection gave: its complete responses, whether the connection
/// is ready (its handshakes done), and the error that ended it, if one did.
pub(crate) struct Received {
    pub(crate) responses: Vec<(InFlight, Bytes)>,
    pub(crate) ready: bool,
    pub(crate) error: Option<ConnError>,
}

impl Network {
    pub(crate) fn new(
        config: &NetworkConfig,
        security: Option<Arc<Security>>,
        now: Instant,
        seed: u64,
    ) -> Self {
        Self {
            pool: Pool::secured(
                &config.client_id,
                config.max_response_size,
                config.reconnect_backoff,
                config.reconnect_backoff_max,
                security,
                seed,
            ),
            metadata: Metadata::new(
                config.bootstrap_servers.clone(),
                config.metadata_max_age,
                config.retry_backoff,
                now,
            ),
            transmits: VecDeque::new(),
            request_timeout: config.request_timeout,
        }
    }

    /// The driver's dial of `conn` succeeded: its handshakes begin.
    pub(crate) fn connected(&mut self, conn: ConnId, now: Instant) {
        let deadline = now + self.request_timeout;
        if let Some(c) = self.pool.get_mut(conn) {
            c.connected(&mut self.transmits, deadline);
        }
    }

    /// Bytes read from `conn`.
    pub(crate) fn receive(&mut self, conn: ConnId, data: &[u8], now: Instant) -> Received {
        let (responses, ready, error) = self.pool.receive(conn, data, now, &mut self.transmits);
        Received {
            responses,
            ready,
            error,
        }
    }

    /// Whether `conn` is still open (a response handled before may have closed it).
    pub(crate) fn is_open(&mut self, conn: ConnId) -> bool {
        self.pool.get_mut(conn).is_some()
    }

    /// The connections whose oldest request has outlived `request.timeout.ms`.
    pub(crate) fn timed_out(&mut self, now: Instant) -> Vec<ConnId> {
        self.pool.timed_out(now, &mut self.transmits)
    }

    pub(crate) fn poll_connect(&mut self) -> Option<ConnectAction> {
        self.pool.actions.pop_front()
    }

    pub(crate) fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Whether sockets to open or close, or bytes to write, wait for the driver.
    pub(crate) fn has_output(&self) -> bool {
        !self.pool.actions.is_empty() || !self.transmits.is_empty()
    }

    /// Sends a Metadata request if a refresh is due and a control connection is ready
    /// (dialling one if none is): for `topics`, or every topic with `None`.
    pub(crate) fn refresh_metadata<'a>(
        &mut self,
        topics: Option<impl IntoIterator<Item = &'a str>>,
        allow_auto_topic_creation: bool,
        rng: &mut Rng,
        now: Instant,
    ) {
        if !self.metadata.due(now) {
            return;
        }
        let Some(id) = self.metadata.control_conn(&mut self.pool, rng, now) else {
            return;
        };
        let req = MetadataRequest {
            topics: topics.map(|names| {
                names
                    .into_iter()
                    .map(|name| MetadataRequestTopic {
                        name: Some(name.into()),
                        ..Default::default()
                    })
                    .collect()
            }),
            allow_auto_topic_creation,
            ..Default::default()
        };
        let deadline = now + self.request_timeout;
        if let Some(c) = self.pool.get_mut(id)
            && c.send(&req, Tag::Metadata, deadline, &mut self.transmits)
                .is_some()
        {
            self.metadata.sent(now);
        }
    }

    /// Offers the requests' timeouts.
    pub(crate) fn offer_request_deadlines(&self, earliest: &mut Earliest) {
        for c in self.pool.iter() {
            if let Some(d) = c.deadline() {
                earliest.offer(d, "request timeout");
            }
        }
    }

    /// Offers the metadata refresh and the end of the backoff of a broker it waits for.
    pub(crate) fn offer_metadata_deadlines(&self, earliest: &mut Earliest) {
        earliest.offer(self.metadata.refresh_at, "metadata refresh");
        if let Some(at) = self.metadata.next_dial(&self.pool, earliest.now()) {
            earliest.offer(at, "reconnect backoff");
        }
    }
}
