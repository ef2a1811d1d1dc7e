//! A producer and a kasio-mock cluster stepped together in virtual time: no sockets, no
//! threads, and the same seed replays the same run.
#![allow(clippy::unwrap_used)]
// Each test binary uses part of the harness.
#![allow(dead_code)]

use bytes::Bytes;
use kasio_core::{
    Admin, AdminConfig, AdminEvent, Client, CloseReason, CommitOutcome, ConnId, ConnectAction,
    Consumer, ConsumerConfig, ConsumerEvent, Event, FetchedBatch, ProduceError, Producer,
    ProducerConfig, RecordMetadata,
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
    /// A consumer on the same cluster, once a test adds one.
    pub(crate) consumer: Option<Consumer>,
    pub(crate) cluster: Cluster,
    pub(crate) now: Instant,
    start: Instant,
    to_mock: HashMap<(Side, ConnId), kasio_mock::ConnId>,
    to_core: HashMap<kasio_mock::ConnId, (Side, ConnId)>,
    pub(crate) delivered: HashMap<u64, Delivery>,
    pub(crate) flushed: usize,
    /// How many records had their delivery when each `Flushed` came.
    pub(crate) delivered_at_flush: Vec<usize>,
    /// Drains of the producer's output so far: every other one takes acknowledged
    /// batches whole, so both ways of taking deliveries meet every failure path.
    drains: u64,
    pub(crate) closed: bool,
    /// What the consumer handed out.
    pub(crate) fetched: Vec<FetchedBatch>,
    pub(crate) consumer_events: Vec<ConsumerEvent>,
    /// The consumer's commit outcomes.
    pub(crate) commits: Vec<CommitOutcome>,
    /// Further consumers (group members), each with what it handed out.
    pub(crate) more: Vec<Extra>,
    /// An admin client, once a test adds one, and its finished operations.
    pub(crate) admin: Option<Admin>,
    pub(crate) admin_events: Vec<AdminEvent>,
    admin_deadline: Option<Instant>,
    /// One-way network delay: bytes sent at `t` arrive at `t + latency`.
    pub(crate) latency: Duration,
    wire: VecDeque<(Instant, Wire)>,
    /// The clients' deadlines as a shell holds them: re-read after every input the pair
    /// feeds, but after a test's own commands only if the client asks for attention, so a
    /// command that forgets to say it made a deadline shows up as a stall.
    deadlines: Vec<Option<Instant>>,
    stale: bool,
    /// Connections the clients asked to open.
    pub(crate) dials: u64,
    /// The producer's transactional events, in order.
    pub(crate) txn_events: Vec<kasio_core::TxnEvent>,
    /// A second producer, once a test adds one (a newer instance with the same
    /// transactional id, say).
    pub(crate) rival: Option<Rival>,
    /// Whether the pair takes only rebalance events from `consumer`, leaving its batches
    /// and other events queued (an application busy elsewhere).
    pub(crate) hold_batches: bool,
    /// A deadline of the test's own, for `step` to stop at.
    wake: Option<Instant>,
}

/// A second producer on the cluster and what it heard.
pub(crate) struct Rival {
    pub(crate) producer: Producer<u64>,
    pub(crate) delivered: HashMap<u64, Delivery>,
    pub(crate) txn_events: Vec<kasio_core::TxnEvent>,
    deadline: Option<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Side {
    Producer,
    /// 0 is `consumer`, n is `more[n - 1]`.
    Consumer(usize),
    Admin,
    Rival,
}

/// Another consumer on the cluster.
pub(crate) struct Extra {
    pub(crate) consumer: Consumer,
    pub(crate) fetched: Vec<FetchedBatch>,
    pub(crate) events: Vec<ConsumerEvent>,
    pub(crate) commits: Vec<CommitOutcome>,
}

/// Bytes on their way, in either direction.
enum Wire {
    ToCluster(Side, ConnId, Bytes),
    ToClient(kasio_mock::ConnId, Bytes),
}

impl Pair {
    /// A producer bootstrapping from a cluster of `brokers` brokers.
    pub(crate) fn new(
        brokers: i32,
        seed: u64,
        configure: impl FnOnce(&mut ProducerConfig),
    ) -> Self {
        Self::with_cluster(
            ClusterConfig {
                brokers,
                seed,
                ..Default::default()
            },
            configure,
        )
    }

    /// A producer bootstrapping from a cluster configured as `cluster` says.
    pub(crate) fn with_cluster(
        cluster: ClusterConfig,
        configure: impl FnOnce(&mut ProducerConfig),
    ) -> Self {
        let now = Instant::now();
        let seed = cluster.seed;
        let cluster = Cluster::new(cluster);
        let mut config = ProducerConfig::new("127.0.0.1:9092").unwrap();
        configure(&mut config);
        let producer = Producer::new(config, now, 1_700_000_000_000, seed).unwrap();
        Self {
            producer,
            consumer: None,
            cluster,
            now,
            start: now,
            to_mock: HashMap::new(),
            to_core: HashMap::new(),
            delivered: HashMap::new(),
            flushed: 0,
            delivered_at_flush: Vec::new(),
            drains: 0,
            closed: false,
            fetched: Vec::new(),
            consumer_events: Vec::new(),
            commits: Vec::new(),
            more: Vec::new(),
            admin: None,
            admin_events: Vec::new(),
            admin_deadline: None,
            latency: Duration::ZERO,
            wire: VecDeque::new(),
            deadlines: vec![None; 2],
            stale: true,
            dials: 0,
            txn_events: Vec::new(),
            rival: None,
            hold_batches: false,
            wake: None,
        }
    }

    /// Adds a second producer bootstrapping from the same cluster.
    pub(crate) fn add_rival(&mut self, configure: impl FnOnce(&mut ProducerConfig)) {
        let mut config = ProducerConfig::new("127.0.0.1:9092").unwrap();
        configure(&mut config);
        self.rival = Some(Rival {
            producer: Producer::new(config, self.now, 1_700_000_000_000, 1234).unwrap(),
            delivered: HashMap::new(),
            txn_events: Vec::new(),
            deadline: None,
        });
    }

    /// Adds a consumer bootstrapping from the same cluster.
    pub(crate) fn add_consumer(&mut self, configure: impl FnOnce(&mut ConsumerConfig)) {
        let mut config = ConsumerConfig::new("127.0.0.1:9092").unwrap();
        configure(&mut config);
        self.consumer = Some(Consumer::new(config, self.now, 99).unwrap());
    }

    /// Adds another consumer; its index in `more`.
    pub(crate) fn add_member(&mut self, configure: impl FnOnce(&mut ConsumerConfig)) -> usize {
        let mut config = ConsumerConfig::new("127.0.0.1:9092").unwrap();
        configure(&mut config);
        let seed = 100 + self.more.len() as u64;
        self.more.push(Extra {
            consumer: Consumer::new(config, self.now, seed).unwrap(),
            fetched: Vec::new(),
            events: Vec::new(),
            commits: Vec::new(),
        });
        self.deadlines.push(None);
        self.more.len() - 1
    }

    /// Adds an admin client bootstrapping from the same cluster.
    pub(crate) fn add_admin(&mut self, configure: impl FnOnce(&mut AdminConfig)) {
        let mut config = AdminConfig::new("127.0.0.1:9092").unwrap();
        configure(&mut config);
        self.admin = Some(Admin::new(config, self.now, 7).unwrap());
    }

    /// Runs an admin operation to its end; its result.
    pub(crate) fn admin_run(
        &mut self,
        start: impl FnOnce(&mut Admin, Instant) -> kasio_core::OpId,
    ) -> Result<kasio_core::AdminOutput, kasio_core::AdminError> {
        let now = self.now;
        let id = start(self.admin.as_mut().unwrap(), now);
        self.run_until(Duration::from_secs(120), |p| {
            p.admin_events.iter().any(|e| e.id == id)
        });
        let i = self.admin_events.iter().position(|e| e.id == id).unwrap();
        self.admin_events.remove(i).result
    }

    /// A deadline of the test's own (an application's timer): stepping stops there.
    pub(crate) fn set_wake(&mut self, at: Option<Instant>) {
        self.wake = at;
    }

    /// Replaces the producer and the first consumer as a crash and restart would: their
    /// connections close (what they had on the wire is lost) and new ones take over.
    pub(crate) fn restart(&mut self, producer: Producer<u64>, consumer: Consumer) {
        let dead: Vec<(Side, ConnId)> = self
            .to_mock
            .keys()
            .filter(|(side, _)| matches!(side, Side::Producer | Side::Consumer(0)))
            .copied()
            .collect();
        for key in dead {
            if let Some(m) = self.to_mock.remove(&key) {
                self.to_core.remove(&m);
                self.cluster.handle_closed(m);
            }
        }
        self.wire.retain(|(_, w)| {
            !matches!(w, Wire::ToCluster(Side::Producer | Side::Consumer(0), _, _))
        });
        self.producer = producer;
        self.consumer = Some(consumer);
        self.delivered.clear();
        self.txn_events.clear();
        self.fetched.clear();
        self.consumer_events.clear();
        self.stale = true;
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    fn client(&mut self, side: Side) -> Option<&mut dyn Client> {
        match side {
            Side::Producer => Some(&mut self.producer),
            Side::Consumer(0) => self.consumer.as_mut().map(|c| c as &mut dyn Client),
            Side::Consumer(n) => self
                .more
                .get_mut(n - 1)
                .map(|e| &mut e.consumer as &mut dyn Client),
            Side::Admin => self.admin.as_mut().map(|a| a as &mut dyn Client),
            Side::Rival => self
                .rival
                .as_mut()
                .map(|r| &mut r.producer as &mut dyn Client),
        }
    }

    /// Moves every pending output across; whether anything moved.
    pub(crate) fn exchange(&mut self) -> bool {
        let moved = self.exchange_once();
        self.stale |= moved;
        moved
    }

    fn exchange_once(&mut self) -> bool {
        let mut moved = false;
        let sides: Vec<Side> = [Side::Producer]
            .into_iter()
            .chain((0..=self.more.len()).map(Side::Consumer))
            .chain([Side::Admin, Side::Rival])
            .collect();
        for side in sides {
            let now = self.now;
            let arrive = self.now + self.latency;
            let Some(client) = self.client(side) else {
                continue;
            };
            let mut actions = Vec::new();
            while let Some(a) = client.poll_connect() {
                actions.push(a);
            }
            let mut transmits = Vec::new();
            while let Some(t) = client.poll_transmit() {
                transmits.push(t);
            }
            for action in actions {
                moved = true;
                match action {
                    ConnectAction::Open { conn, port, .. } => {
                        self.dials += 1;
                        let broker = i32::from(port) - 9092 + 1;
                        let known = self.cluster.broker_ids().any(|b| b == broker);
                        if known && self.cluster.accepts(broker) {
                            let m = self.cluster.connect(broker);
                            self.to_mock.insert((side, conn), m);
                            self.to_core.insert(m, (side, conn));
                            if let Some(c) = self.client(side) {
                                c.handle_connected(conn, now);
                            }
                        } else if let Some(c) = self.client(side) {
                            c.handle_closed(
                                conn,
                                CloseReason::ConnectFailed("refused".into()),
                                now,
                            );
                        }
                    }
                    ConnectAction::Close { conn } => {
                        if let Some(m) = self.to_mock.remove(&(side, conn)) {
                            self.to_core.remove(&m);
                            self.cluster.handle_closed(m);
                        }
                    }
                }
            }
            for t in transmits {
                moved = true;
                self.wire
                    .push_back((arrive, Wire::ToCluster(side, t.conn, t.data)));
            }
            let mut later = Vec::new();
            if let Some(c) = self.client(side) {
                while let Some(t) = c.poll_transmit() {
                    later.push(t);
                }
            }
            for t in later {
                moved = true;
                self.wire
                    .push_back((arrive, Wire::ToCluster(side, t.conn, t.data)));
            }
        }
        let arrive = self.now + self.latency;
        while let Some(t) = self.cluster.poll_transmit() {
            moved = true;
            self.wire
                .push_back((arrive, Wire::ToClient(t.conn, t.data)));
        }
        // The wire keeps send order, so arrival times are in order too.
        while self.wire.front().is_some_and(|(at, _)| *at <= self.now) {
            moved = true;
            let now = self.now;
            match self.wire.pop_front().map(|(_, w)| w) {
                Some(Wire::ToCluster(side, c, data)) => {
                    if let Some(&m) = self.to_mock.get(&(side, c)) {
                        self.cluster.handle_input(m, &data, now);
                    }
                }
                Some(Wire::ToClient(m, data)) => {
                    if let Some(&(side, c)) = self.to_core.get(&m)
                        && let Some(client) = self.client(side)
                    {
                        client.handle_input(c, &data, now);
                    }
                }
                None => {}
            }
        }
        while let Some(m) = self.cluster.poll_close() {
            moved = true;
            let now = self.now;
            if let Some((side, c)) = self.to_core.remove(&m) {
                self.to_mock.remove(&(side, c));
                if let Some(client) = self.client(side) {
                    client.handle_closed(c, CloseReason::PeerClosed, now);
                }
            }
        }
        self.drains += 1;
        loop {
            if self.drains.is_multiple_of(2)
                && let Some(mut batch) = self.producer.poll_delivered()
            {
                moved = true;
                while let Some((token, offset, timestamp)) = batch.pop() {
                    let meta = batch.metadata(offset, timestamp);
                    assert!(
                        self.delivered.insert(token, Ok(meta)).is_none(),
                        "two delivery events for record {token}"
                    );
                }
                self.producer.reuse(batch);
                continue;
            }
            let Some(e) = self.producer.poll_event() else {
                break;
            };
            moved = true;
            match e {
                Event::Delivery { token, result } => {
                    assert!(
                        self.delivered.insert(token, result).is_none(),
                        "two delivery events for record {token}"
                    );
                }
                Event::Flushed => {
                    self.flushed += 1;
                    self.delivered_at_flush.push(self.delivered.len());
                }
                Event::Closed => self.closed = true,
                Event::Transaction(e) => self.txn_events.push(e),
                _ => {}
            }
        }
        if let Some(consumer) = self.consumer.as_mut().filter(|_| self.hold_batches) {
            while let Some(e) = consumer.poll_rebalance_event() {
                moved = true;
                self.consumer_events.push(e);
            }
            while let Some(c) = consumer.poll_commit() {
                moved = true;
                self.commits.push(c);
            }
        } else if let Some(consumer) = &mut self.consumer {
            let mut took = false;
            while let Some(b) = consumer.poll_batch() {
                moved = true;
                took = true;
                self.fetched.push(b);
            }
            while let Some(e) = consumer.poll_event() {
                moved = true;
                self.consumer_events.push(e);
            }
            while let Some(c) = consumer.poll_commit() {
                moved = true;
                self.commits.push(c);
            }
            if took {
                consumer.resume_fetching(self.now);
            }
        }
        if let Some(admin) = &mut self.admin {
            while let Some(e) = admin.poll_event() {
                moved = true;
                self.admin_events.push(e);
            }
        }
        if let Some(rival) = &mut self.rival {
            while let Some(e) = rival.producer.poll_event() {
                moved = true;
                match e {
                    Event::Delivery { token, result } => {
                        rival.delivered.insert(token, result);
                    }
                    Event::Transaction(e) => rival.txn_events.push(e),
                    _ => {}
                }
            }
        }
        let now = self.now;
        for extra in &mut self.more {
            let mut took = false;
            while let Some(b) = extra.consumer.poll_batch() {
                moved = true;
                took = true;
                extra.fetched.push(b);
            }
            while let Some(e) = extra.consumer.poll_event() {
                moved = true;
                extra.events.push(e);
            }
            while let Some(c) = extra.consumer.poll_commit() {
                moved = true;
                extra.commits.push(c);
            }
            if took {
                extra.consumer.resume_fetching(now);
            }
        }
        moved
    }

    /// Lets the shell go to sleep: it reads the deadlines and waits, so a later command
    /// must ask for attention to be noticed.
    pub(crate) fn sleep(&mut self) {
        while self.exchange() {}
        self.deadlines[0] = self.producer.poll_timeout().map(|t| t.at);
        if let Some(c) = &mut self.consumer {
            self.deadlines[1] = c.poll_timeout().map(|t| t.at);
        }
        for (i, e) in self.more.iter_mut().enumerate() {
            self.deadlines[2 + i] = e.consumer.poll_timeout().map(|t| t.at);
        }
        if let Some(a) = &mut self.admin {
            self.admin_deadline = a.poll_timeout().map(|t| t.at);
        }
        if let Some(r) = &mut self.rival {
            r.deadline = r.producer.poll_timeout().map(|t| t.at);
        }
        self.stale = false;
    }

    /// One step: exchange outputs, or if there were none jump to the next deadline.
    /// Returns false when nothing is left to happen.
    pub(crate) fn step(&mut self) -> bool {
        if self.exchange() {
            return true;
        }
        if self.stale || self.producer.needs_attention() {
            self.deadlines[0] = self.producer.poll_timeout().map(|t| t.at);
        }
        if let Some(c) = &mut self.consumer
            && (self.stale || c.needs_attention())
        {
            self.deadlines[1] = c.poll_timeout().map(|t| t.at);
        }
        for (i, e) in self.more.iter_mut().enumerate() {
            if self.stale || e.consumer.needs_attention() {
                self.deadlines[2 + i] = e.consumer.poll_timeout().map(|t| t.at);
            }
        }
        if let Some(a) = &mut self.admin
            && (self.stale || a.needs_attention())
        {
            self.admin_deadline = a.poll_timeout().map(|t| t.at);
        }
        if let Some(r) = &mut self.rival
            && (self.stale || r.producer.needs_attention())
        {
            r.deadline = r.producer.poll_timeout().map(|t| t.at);
        }
        self.stale = false;
        let next = self
            .deadlines
            .iter()
            .copied()
            .chain([
                self.admin_deadline,
                self.rival.as_ref().and_then(|r| r.deadline),
                self.cluster.poll_timeout(),
                self.wire.front().map(|(at, _)| *at),
                self.wake.filter(|at| *at > self.now),
            ])
            .flatten()
            .min();
        let Some(next) = next else {
            return false;
        };
        self.now = self.now.max(next);
        self.stale = true;
        let now = self.now;
        self.producer.handle_timeout(now);
        if let Some(c) = &mut self.consumer {
            c.handle_timeout(now);
        }
        for e in &mut self.more {
            e.consumer.handle_timeout(now);
        }
        if let Some(a) = &mut self.admin {
            a.handle_timeout(now);
        }
        if let Some(r) = &mut self.rival {
            r.producer.handle_timeout(now);
        }
        self.cluster.handle_timeout(now);
        true
    }

    /// Lets `duration` of virtual time pass (failing on a request storm).
    pub(crate) fn run_for(&mut self, duration: Duration) {
        let until = self.now + duration;
        self.run_until(duration + Duration::from_secs(1), |p| p.now >= until);
    }

    /// Steps until `done` holds, failing after `limit` of virtual time.
    pub(crate) fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Self) -> bool) {
        let end = self.now + limit;
        let mut steps = 0u64;
        while !done(self) {
            assert!(self.now <= end, "not done after {limit:?} of virtual time");
            steps += 1;
            // A client that keeps sending without time passing (a request storm) fails
            // here instead of hanging the test.
            assert!(
                steps < 5_000_000,
                "5,000,000 steps and not done: a request storm?"
            );
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
