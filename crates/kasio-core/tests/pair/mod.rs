//! A producer and a kasio-mock cluster stepped together in virtual time: no sockets, no
//! threads, and the same seed replays the same run.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use kasio_core::{
    CloseReason, ConnId, ConnectAction, Event, ProduceError, Producer, ProducerConfig,
    RecordMetadata,
};
use kasio_mock::{Cluster, ClusterConfig};
use kasio_proto::records::Batches;
use std::{
    collections::{HashMap, VecDeque},
    time::{Duration, Instant},
};

pub(crate) type Delivery = Result<RecordMetadata, ProduceError>;

pub(crate) struct Pair {
    pub(crate) producer: Producer<u64>,
    pub(crate) cluster: Cluster,
    pub(crate) now: Instant,
    start: Instant,
    to_mock: HashMap<ConnId, kasio_mock::ConnId>,
    to_core: HashMap<kasio_mock::ConnId, ConnId>,
    pub(crate) delivered: HashMap<u64, Delivery>,
    pub(crate) flushed: usize,
    pub(crate) closed: bool,
    /// One-way network delay: bytes sent at `t` arrive at `t + latency`.
    pub(crate) latency: Duration,
    wire: VecDeque<(Instant, Wire)>,
}

/// Bytes on their way, in either direction.
enum Wire {
    ToCluster(ConnId, Bytes),
    ToProducer(kasio_mock::ConnId, Bytes),
}

impl Pair {
    /// A producer bootstrapping from a cluster of `brokers` brokers.
    pub(crate) fn new(
        brokers: i32,
        seed: u64,
        configure: impl FnOnce(&mut ProducerConfig),
    ) -> Self {
        let now = Instant::now();
        let cluster = Cluster::new(ClusterConfig {
            brokers,
            seed,
            ..Default::default()
        });
        let mut config = ProducerConfig::new("127.0.0.1:9092").unwrap();
        configure(&mut config);
        let producer = Producer::new(config, now, 1_700_000_000_000, seed).unwrap();
        Self {
            producer,
            cluster,
            now,
            start: now,
            to_mock: HashMap::new(),
            to_core: HashMap::new(),
            delivered: HashMap::new(),
            flushed: 0,
            closed: false,
            latency: Duration::ZERO,
            wire: VecDeque::new(),
        }
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Moves every pending output across; whether anything moved.
    pub(crate) fn exchange(&mut self) -> bool {
        let mut moved = false;
        while let Some(action) = self.producer.poll_connect() {
            moved = true;
            match action {
                ConnectAction::Open { conn, port, .. } => {
                    let broker = i32::from(port) - 9092 + 1;
                    let known = self.cluster.broker_ids().any(|b| b == broker);
                    if known && self.cluster.accepts(broker) {
                        let m = self.cluster.connect(broker);
                        self.to_mock.insert(conn, m);
                        self.to_core.insert(m, conn);
                        self.producer.handle_connected(conn, self.now);
                    } else {
                        self.producer.handle_closed(
                            conn,
                            CloseReason::ConnectFailed("refused".into()),
                            self.now,
                        );
                    }
                }
                ConnectAction::Close { conn } => {
                    if let Some(m) = self.to_mock.remove(&conn) {
                        self.to_core.remove(&m);
                        self.cluster.handle_closed(m);
                    }
                }
            }
        }
        let arrive = self.now + self.latency;
        while let Some(t) = self.producer.poll_transmit() {
            moved = true;
            self.wire
                .push_back((arrive, Wire::ToCluster(t.conn, t.data)));
        }
        while let Some(t) = self.cluster.poll_transmit() {
            moved = true;
            self.wire
                .push_back((arrive, Wire::ToProducer(t.conn, t.data)));
        }
        // The wire keeps send order, so arrival times are in order too.
        while self.wire.front().is_some_and(|(at, _)| *at <= self.now) {
            moved = true;
            match self.wire.pop_front().map(|(_, w)| w) {
                Some(Wire::ToCluster(c, data)) => {
                    if let Some(&m) = self.to_mock.get(&c) {
                        self.cluster.handle_input(m, &data, self.now);
                    }
                }
                Some(Wire::ToProducer(m, data)) => {
                    if let Some(&c) = self.to_core.get(&m) {
                        self.producer.handle_input(c, &data, self.now);
                    }
                }
                None => {}
            }
        }
        while let Some(m) = self.cluster.poll_close() {
            moved = true;
            if let Some(c) = self.to_core.remove(&m) {
                self.to_mock.remove(&c);
                self.producer
                    .handle_closed(c, CloseReason::PeerClosed, self.now);
            }
        }
        while let Some(e) = self.producer.poll_event() {
            moved = true;
            match e {
                Event::Delivery { token, result } => {
                    assert!(
                        self.delivered.insert(token, result).is_none(),
                        "two delivery events for record {token}"
                    );
                }
                Event::Flushed => self.flushed += 1,
                Event::Closed => self.closed = true,
                _ => {}
            }
        }
        moved
    }

    /// One step: exchange outputs, or if there were none jump to the next deadline.
    /// Returns false when nothing is left to happen.
    pub(crate) fn step(&mut self) -> bool {
        if self.exchange() {
            return true;
        }
        let next = [
            self.producer.poll_timeout().map(|t| t.at),
            self.cluster.poll_timeout(),
            self.wire.front().map(|(at, _)| *at),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(next) = next else {
            return false;
        };
        self.now = self.now.max(next);
        self.producer.handle_timeout(self.now);
        self.cluster.handle_timeout(self.now);
        true
    }

    /// Steps until `done` holds, failing after `limit` of virtual time.
    pub(crate) fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Self) -> bool) {
        let end = self.now + limit;
        while !done(self) {
            assert!(self.now <= end, "not done after {limit:?} of virtual time");
            if !self.step() {
                panic!("nothing left to happen and not done");
            }
        }
    }

    /// Every record in a partition of the cluster: (offset, key, value).
    pub(crate) fn partition_log(
        &self,
        topic: &str,
        partition: i32,
    ) -> Vec<(i64, Vec<u8>, Vec<u8>)> {
        let Some(bytes) = self.cluster.read(topic, partition, 0) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for batch in Batches::new(bytes) {
            let batch = batch.unwrap();
            let kasio_proto::records::Batch::V2(b) = batch else {
                panic!("legacy batch")
            };
            for r in b.records().unwrap() {
                let r = r.unwrap();
                out.push((
                    r.offset,
                    r.key.map(|k| k.to_vec()).unwrap_or_default(),
                    r.value.map(|v| v.to_vec()).unwrap_or_default(),
                ));
            }
        }
        out
    }
}
