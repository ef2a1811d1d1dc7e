//! Delayed delivery in virtual time: a producer sends records with delays of 0-30 s
//! through two delay tiers (1 s and 10 s) and kasio's sans-IO relay (a read_committed
//! group consumer and a transactional producer driven by `DelayRelay`) forwards them to
//! their topic, on kasio-mock, seeded, with faults (lost responses, dropped connections,
//! failed produces, leader moves) and relay crashes. A read_committed observer of the
//! topic checks that no record arrives before it is due and every record arrives once.
//!
//! `DELAY_SIM_SEEDS=N` runs N seeds (default 24); `DELAY_SIM_SEED=S` replays one.
#![allow(clippy::unwrap_used)]

mod pair;
mod seeded;

use kasio_core::{
    Consumer, ConsumerConfig, DUE_HEADER, DelayRelay, DelayTiers, ErrorCode, Producer,
    ProducerConfig, Record, Seek, TIMESTAMP_HEADER, TxnError, TxnEvent,
};
use kasio_mock::{ClusterConfig, Fault};
use kasio_proto::ApiKey;
use pair::Pair;
use seeded::Rng;
use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

const TARGET: &str = "out";
const TIERS: &str = "1s,10s";
const UNIX0: i64 = 1_700_000_000_000;
const RECORDS: u64 = 400;
/// Records are sent one every this long.
const SEND_EVERY: Duration = Duration::from_millis(20);
const MAX_DELAY_MS: u64 = 30_000;
const COMMIT_EVERY: Duration = Duration::from_millis(100);
/// How long faults are injected for.
const FAULTY: Duration = Duration::from_secs(60);

/// Where the relay's transaction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Txn {
    Initializing,
    Idle,
    Open(Instant),
    SendingOffsets,
    Committing,
    Aborting,
}

struct Sim {
    seed: u64,
    faults: bool,
    pair: Pair,
    start: Instant,
    tiers: DelayTiers,
    relay: DelayRelay,
    txn: Txn,
    doomed: bool,
    rng: Rng,
    log: Vec<String>,
    /// Due time of each record sent (Unix ms).
    due: Vec<i64>,
    /// When the observer got each record (Unix ms), every time it did.
    seen: BTreeMap<u64, Vec<i64>>,
    token: u64,
    restarts: u64,
    /// The relay's producer failed for good: it restarts.
    fatal: bool,
    next_fault: Duration,
    crashes: Vec<Duration>,
}

fn relay_producer(c: &mut ProducerConfig) {
    c.set("transactional.id", "relay-0").unwrap();
    c.set("linger.ms", "5").unwrap();
    c.set("request.timeout.ms", "5000").unwrap();
    c.set("transaction.timeout.ms", "10000").unwrap();
    c.set("delay.tiers", TIERS).unwrap();
}

fn relay_consumer_config() -> ConsumerConfig {
    let mut c = ConsumerConfig::new("127.0.0.1:9092").unwrap();
    for (k, v) in [
        ("group.id", "relay"),
        ("isolation.level", "read_committed"),
        ("enable.auto.commit", "false"),
        ("auto.offset.reset", "earliest"),
        ("session.timeout.ms", "6000"),
        ("heartbeat.interval.ms", "1000"),
        ("request.timeout.ms", "5000"),
        ("fetch.max.wait.ms", "100"),
    ] {
        c.set(k, v).unwrap();
    }
    c
}

impl Sim {
    fn new(seed: u64, faults: bool) -> Self {
        let cluster = ClusterConfig {
            brokers: 3,
            seed,
            ..Default::default()
        };
        let mut pair = Pair::with_cluster(cluster, relay_producer);
        let tiers = DelayTiers::parse(TIERS).unwrap();
        for t in std::iter::once(TARGET.to_string()).chain(tiers.topics(TARGET)) {
            pair.cluster.create_topic(&t, 3).unwrap();
        }
        let start = pair.now;
        pair.add_rival(|c| {
            c.set("linger.ms", "5").unwrap();
            c.set("request.timeout.ms", "5000").unwrap();
        });
        let observer = pair.add_member(|c| {
            c.set("isolation.level", "read_committed").unwrap();
            c.set("fetch.max.wait.ms", "100").unwrap();
        });
        let now = pair.now;
        let parts: Vec<(&str, i32)> = (0..3).map(|p| (TARGET, p)).collect();
        let o = &mut pair.more[observer].consumer;
        o.assign(&parts, now);
        for p in 0..3 {
            o.seek(TARGET, p, Seek::Beginning, now);
        }
        let mut rng = Rng(seed);
        let crashes = if faults {
            let mut c: Vec<Duration> = (0..3)
                .map(|_| Duration::from_millis(3_000 + rng.below(35_000)))
                .collect();
            c.sort();
            c
        } else {
            Vec::new()
        };
        let relay = DelayRelay::new(tiers.clone(), &[TARGET]);
        let mut sim = Self {
            seed,
            faults,
            pair,
            start,
            tiers,
            relay,
            txn: Txn::Initializing,
            doomed: false,
            rng,
            log: Vec::new(),
            due: Vec::new(),
            seen: BTreeMap::new(),
            token: 0,
            restarts: 0,
            fatal: false,
            next_fault: Duration::from_secs(2),
            crashes,
        };
        sim.start_relay_consumer(Consumer::new(relay_consumer_config(), now, 99).unwrap());
        sim.pair.producer.init_transactions(now).unwrap();
        sim
    }

    fn start_relay_consumer(&mut self, mut consumer: Consumer) {
        let topics: Vec<&str> = self.relay.topics().iter().map(String::as_str).collect();
        consumer.subscribe(&topics, self.pair.now).unwrap();
        self.pair.consumer = Some(consumer);
    }

    fn unix(&self, at: Instant) -> i64 {
        UNIX0 + i64::try_from((at - self.start).as_millis()).unwrap()
    }

    fn elapsed(&self) -> Duration {
        self.pair.now - self.start
    }

    /// Sends the records whose time has come, as `send_delayed` plans them.
    fn send_due(&mut self) {
        while (self.due.len() as u64) < RECORDS
            && SEND_EVERY * u32::try_from(self.due.len()).unwrap() <= self.elapsed()
        {
            let i = self.due.len() as u64;
            let now = self.pair.now;
            let now_ms = self.unix(now);
            let due_ms = now_ms + i64::try_from(self.rng.below(MAX_DELAY_MS + 1)).unwrap();
            let plan = self.tiers.plan(now_ms, due_ms);
            let topic = plan
                .first
                .map_or_else(|| TARGET.to_string(), |t| self.tiers.topic(TARGET, t));
            let (due, ts, value) = (due_ms.to_string(), now_ms.to_string(), i.to_string());
            let headers = [
                (DUE_HEADER, due.as_bytes()),
                (TIMESTAMP_HEADER, ts.as_bytes()),
            ];
            let mut record = Record::new(&topic)
                .value(value.as_bytes())
                .key(value.as_bytes());
            record.headers = &headers;
            record.timestamp = plan.first.map(|_| plan.start_ms);
            let at = now + Duration::from_millis((plan.start_ms - now_ms).unsigned_abs());
            let rival = self.pair.rival.as_mut().unwrap();
            rival.producer.send_at(record, i, at, now).unwrap();
            self.due.push(due_ms);
        }
    }

    /// The application's side of the relay: events, forwards, pauses, commits.
    fn relay_turn(&mut self) {
        let now = self.pair.now;
        for e in std::mem::take(&mut self.pair.txn_events) {
            match e {
                TxnEvent::Initialized | TxnEvent::Committed | TxnEvent::Aborted => {
                    if e == TxnEvent::Committed {
                        self.relay.committed();
                    }
                    if e == TxnEvent::Aborted {
                        let consumer = self.pair.consumer.as_mut().unwrap();
                        for (t, p, o) in self.relay.aborted() {
                            consumer.seek(&t, p, Seek::Offset(o), now);
                        }
                        self.doomed = false;
                    }
                    self.txn = Txn::Idle;
                }
                TxnEvent::OffsetsSent => {
                    self.pair.producer.commit_transaction(now).unwrap();
                    self.txn = Txn::Committing;
                }
                TxnEvent::Failed { op, error } => match error {
                    TxnError::Abortable { .. } => {
                        self.log.push(format!("{op:?} abortable: {error}"));
                        self.abort();
                    }
                    fatal => {
                        // The relay stops on a fatal error and its supervisor starts it
                        // again, as `kasio delay relay` under a service manager would.
                        self.log.push(format!("{op:?} fatal: {fatal}"));
                        self.fatal = true;
                    }
                },
                other => panic!("seed {}: unexpected {other:?}", self.seed),
            }
        }
        for b in std::mem::take(&mut self.pair.fetched) {
            self.relay.take(&b).unwrap();
        }
        for e in std::mem::take(&mut self.pair.consumer_events) {
            self.doomed |= self.relay.on_event(&e);
        }
        if self.doomed && matches!(self.txn, Txn::Open(_)) {
            self.abort();
        }
        if matches!(self.txn, Txn::Idle | Txn::Open(_)) && !self.doomed {
            let now_ms = self.unix(now);
            while let Some(f) = self.relay.poll(now_ms) {
                assert!(
                    f.due_ms <= now_ms || !f.delivers,
                    "seed {}: early",
                    self.seed
                );
                if self.txn == Txn::Idle {
                    self.pair.producer.begin_transaction().unwrap();
                    self.txn = Txn::Open(now);
                }
                let headers = f.header_refs();
                let record = f.record(&headers);
                self.token += 1;
                if self.pair.producer.send(record, self.token, now).is_err() {
                    self.abort();
                    break;
                }
            }
        }
        let consumer = self.pair.consumer.as_mut().unwrap();
        while let Some((tp, paused)) = self.relay.poll_pause() {
            consumer.pause(&tp.topic, tp.partition, paused, now);
        }
        if let Txn::Open(since) = self.txn
            && now >= since + COMMIT_EVERY
        {
            let offsets = self.relay.offsets();
            let triples: Vec<(&str, i32, i64)> =
                offsets.iter().map(|(t, p, o)| (&**t, *p, *o)).collect();
            let group = consumer.group_metadata().unwrap();
            match self
                .pair
                .producer
                .send_offsets_to_transaction(&triples, group, now)
            {
                Ok(()) => self.txn = Txn::SendingOffsets,
                Err(_) => self.abort(),
            }
        }
    }

    fn abort(&mut self) {
        let now = self.pair.now;
        self.log
            .push(format!("{:?}: abort from {:?}", self.elapsed(), self.txn));
        if self.pair.producer.abort_transaction(now).is_ok() {
            self.txn = Txn::Aborting;
        }
    }

    /// What the observer got since the last look.
    fn observe(&mut self) {
        let now_ms = self.unix(self.pair.now);
        for b in std::mem::take(&mut self.pair.more[0].fetched) {
            b.for_each(|r| {
                let i: u64 = std::str::from_utf8(r.value.unwrap())
                    .unwrap()
                    .parse()
                    .unwrap();
                self.seen.entry(i).or_default().push(now_ms);
            })
            .unwrap();
        }
    }

    /// A random fault, as the seed picks it.
    fn fault(&mut self) {
        let broker = i32::try_from(self.rng.below(3)).unwrap() + 1;
        let partition = i32::try_from(self.rng.below(3)).unwrap();
        let topic = self
            .tiers
            .topic(TARGET, usize::try_from(self.rng.below(2)).unwrap());
        let what = match self.rng.below(6) {
            0 => {
                self.pair.cluster.inject(Fault::DropConnections { broker });
                format!("connections to {broker} dropped")
            }
            1 => {
                self.pair.cluster.inject(Fault::Blackhole {
                    api: ApiKey::Produce,
                    count: 1,
                });
                "lost Produce response".into()
            }
            2 => {
                self.pair.cluster.inject(Fault::Blackhole {
                    api: ApiKey::Fetch,
                    count: 1,
                });
                "lost Fetch response".into()
            }
            3 => {
                self.pair.cluster.inject(Fault::FailNext {
                    api: ApiKey::Produce,
                    count: 1,
                    error: ErrorCode::NotLeaderOrFollower,
                });
                "Produce: NOT_LEADER_OR_FOLLOWER".into()
            }
            4 => {
                let leader = self.pair.cluster.leader(&topic, partition).unwrap();
                let to = leader % 3 + 1;
                self.pair
                    .cluster
                    .move_leader(&topic, partition, to)
                    .unwrap();
                format!("leader of {topic}-{partition} moved to {to}")
            }
            _ => {
                self.pair.cluster.inject(Fault::Blackhole {
                    api: ApiKey::EndTxn,
                    count: 1,
                });
                "lost EndTxn response".into()
            }
        };
        self.log.push(format!("{:?}: {what}", self.elapsed()));
    }

    /// The relay process dies and a new one starts with the same transactional id.
    fn crash(&mut self) {
        self.restarts += 1;
        let now = self.pair.now;
        let mut config = ProducerConfig::new("127.0.0.1:9092").unwrap();
        relay_producer(&mut config);
        let mut producer =
            Producer::new(config, now, self.unix(now), self.seed + self.restarts).unwrap();
        producer.init_transactions(now).unwrap();
        let consumer = Consumer::new(relay_consumer_config(), now, 99 + self.restarts).unwrap();
        self.pair.restart(producer, consumer);
        self.relay = DelayRelay::new(self.tiers.clone(), &[TARGET]);
        self.txn = Txn::Initializing;
        self.doomed = false;
        let topics: Vec<String> = self.relay.topics().to_vec();
        let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
        self.pair
            .consumer
            .as_mut()
            .unwrap()
            .subscribe(&topics, now)
            .unwrap();
        self.log
            .push(format!("{:?}: relay crashed and restarted", self.elapsed()));
    }

    fn run(&mut self) {
        let limit = Duration::from_secs(240);
        let mut steps = 0u64;
        while self.elapsed() < limit && !self.all_delivered(steps) {
            steps += 1;
            assert!(steps < 20_000_000, "seed {}: a request storm?", self.seed);
            self.send_due();
            // Faults for the first minute (the records' whole journey), then calm, so a
            // seed's end says whether the relay recovers rather than how long faults last.
            if self.faults && self.elapsed() >= self.next_fault && self.elapsed() < FAULTY {
                self.fault();
                self.next_fault =
                    self.elapsed() + Duration::from_millis(1_000 + self.rng.below(3_000));
            }
            if self.crashes.first().is_some_and(|&at| self.elapsed() >= at) {
                self.crashes.remove(0);
                self.crash();
            }
            self.relay_turn();
            if std::mem::take(&mut self.fatal) {
                self.crash();
                continue;
            }
            let now = self.pair.now;
            let now_ms = self.unix(now);
            let mut wake: Vec<Instant> = Vec::new();
            if let Some(ready) = self.relay.next_ready() {
                wake.push(now + Duration::from_millis((ready - now_ms).max(0).unsigned_abs()));
            }
            if let Txn::Open(since) = self.txn {
                wake.push(since + COMMIT_EVERY);
            }
            if (self.due.len() as u64) < RECORDS {
                wake.push(self.start + SEND_EVERY * u32::try_from(self.due.len()).unwrap());
            }
            if self.faults && self.next_fault < FAULTY {
                wake.push(self.start + self.next_fault);
            }
            if let Some(&at) = self.crashes.first() {
                wake.push(self.start + at);
            }
            self.pair.set_wake(wake.into_iter().min());
            if !self.pair.step() {
                break;
            }
            self.observe();
        }
        // Records still in flight when the last arrived: a little longer, for duplicates.
        let until = self.elapsed() + Duration::from_secs(3);
        while self.elapsed() < until {
            self.relay_turn();
            if std::mem::take(&mut self.fatal) {
                self.crash();
            }
            self.pair
                .set_wake(Some(self.pair.now + Duration::from_millis(50)));
            if !self.pair.step() {
                break;
            }
            self.observe();
        }
    }

    /// Whether every record is in the topic, committed.
    fn all_delivered(&self, steps: u64) -> bool {
        if (self.seen.len() as u64) == RECORDS {
            return true;
        }
        // The observer may lag; the log decides (read now and then: it costs a scan).
        if !steps.is_multiple_of(5_000) {
            return false;
        }
        let n: usize = (0..3)
            .map(|p| committed_values(&self.pair, TARGET, p).len())
            .sum();
        n as u64 >= RECORDS
    }

    /// Every record arrived once and none before its due time; the lateness (ms) of each.
    fn check(&self) -> Vec<i64> {
        let context = || {
            format!(
                "seed {} (faults: {}); relay {:?}, {:?}, assigned {:?}; log:\n{}",
                self.seed,
                self.faults,
                self.txn,
                self.relay.stats(),
                self.pair.consumer.as_ref().map(Consumer::assignment),
                self.log.join("\n")
            )
        };
        // Exactly once, as the log holds it: committed transactions and plain writes.
        let mut count = vec![0u32; usize::try_from(RECORDS).unwrap()];
        for p in 0..3 {
            for i in committed_values(&self.pair, TARGET, p) {
                count[usize::try_from(i).unwrap()] += 1;
            }
        }
        let wrong: Vec<(usize, u32)> = count
            .iter()
            .enumerate()
            .filter(|(_, n)| **n != 1)
            .map(|(i, &n)| (i, n))
            .collect();
        assert!(
            wrong.is_empty(),
            "(record, times in the topic): {wrong:?}\n{}",
            context()
        );
        // Never early, as a read_committed reader sees it.
        let mut late = Vec::new();
        for (&i, arrivals) in &self.seen {
            assert_eq!(
                arrivals.len(),
                1,
                "record {i} arrived {arrivals:?}\n{}",
                context()
            );
            let due = self.due[usize::try_from(i).unwrap()];
            assert!(
                arrivals[0] >= due,
                "record {i} arrived {} ms early\n{}",
                due - arrivals[0],
                context()
            );
            late.push(arrivals[0] - due);
        }
        late.sort_unstable();
        late
    }
}

/// The values of a partition's records a read_committed reader would get, read from the
/// cluster's log: plain writes, and transactional ones whose transaction committed.
fn committed_values(pair: &Pair, topic: &str, partition: i32) -> Vec<u64> {
    use kasio_proto::records::{Batch, Batches};
    let Some(bytes) = pair.cluster.read(topic, partition, 0) else {
        return Vec::new();
    };
    let mut open: BTreeMap<i64, Vec<u64>> = BTreeMap::new();
    let mut out = Vec::new();
    for batch in Batches::new(bytes) {
        let Batch::V2(b) = batch.unwrap() else {
            panic!("legacy batch")
        };
        let records: Vec<_> = b.records().unwrap().map(Result::unwrap).collect();
        if b.attributes.is_control() {
            let commit = records[0].key.as_deref() == Some(&[0, 0, 0, 1][..]);
            let values = open.remove(&b.producer_id).unwrap_or_default();
            if commit {
                out.extend(values);
            }
            continue;
        }
        let values = records.iter().map(|r| {
            std::str::from_utf8(r.value.as_deref().unwrap())
                .unwrap()
                .parse::<u64>()
                .unwrap()
        });
        if b.attributes.is_transactional() {
            open.entry(b.producer_id).or_default().extend(values);
        } else {
            out.extend(values);
        }
    }
    out
}

fn percentile(sorted: &[i64], p: usize) -> i64 {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

/// Without faults the lateness stays within the commit interval and a fetch wait.
#[test]
fn nothing_is_early_and_lateness_is_small() {
    let mut sim = Sim::new(1, false);
    sim.run();
    let late = sim.check();
    let (p50, p99, max) = (
        percentile(&late, 50),
        percentile(&late, 99),
        late[late.len() - 1],
    );
    println!("lateness ms: p50 {p50}, p99 {p99}, max {max}");
    assert!(max <= 400, "lateness p50 {p50}, p99 {p99}, max {max}");
}

/// With faults and relay crashes, every record arrives exactly once and never early.
#[test]
fn exactly_once_through_faults_and_crashes() {
    let seeds: Vec<u64> = match std::env::var("DELAY_SIM_SEED") {
        Ok(s) => vec![s.parse().unwrap()],
        Err(_) => {
            let n = std::env::var("DELAY_SIM_SEEDS").map_or(24, |s| s.parse().unwrap());
            (1..=n).collect()
        }
    };
    for seed in seeds {
        let mut sim = Sim::new(seed, true);
        sim.run();
        let late = sim.check();
        println!(
            "seed {seed}: {} restarts, lateness ms p50 {} p99 {} max {}",
            sim.restarts,
            percentile(&late, 50),
            percentile(&late, 99),
            late[late.len() - 1]
        );
    }
}
