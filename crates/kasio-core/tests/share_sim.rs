//! Share groups (KIP-932) in virtual time: members of kasio's sans-IO share consumer and
//! kasio-mock's share coordinator stepped together, seeded, with faults (lost responses,
//! dropped connections, leader and coordinator moves, share-session errors, a member that
//! hangs). A checker then holds the history against the rules of share groups.
//!
//! `SHARE_SIM_SEEDS=N` runs N seeds (default 24); `SHARE_SIM_SEED=S` replays one.
#![allow(clippy::unwrap_used)]

mod seeded;
use bytes::Bytes;
use kasio_core::{
    AcknowledgeType, Acknowledged, CloseReason, ConnectAction, ShareConsumer, ShareConsumerConfig,
};
use kasio_mock::{Cluster, ClusterConfig, Fault, ShareOutcome};
use kasio_proto::{
    ApiKey, ErrorCode,
    records::{BatchBuilder, BatchOptions},
};
use seeded::Rng;
use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    time::{Duration, Instant},
};

const TOPIC: &str = "jobs";
const GROUP: &str = "workers";
const PARTITIONS: i32 = 2;
const BROKERS: i32 = 3;
const MEMBERS: usize = 4;
/// The member that hangs midway: it stops working (and speaking) with records in hand.
const HANGS: usize = 3;
const RECORDS_PER_PARTITION: i64 = 600;
const LOCK: Duration = Duration::from_secs(5);
const DELIVERY_LIMIT: i16 = 5;

type Key = (i32, i64);

/// What the application does with a record, by its offset (and delivery count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    Accept,
    /// Released on its first delivery, accepted on the next.
    ReleaseOnce,
    Reject,
    /// Released every time: archived at the delivery limit.
    Poison,
}

fn plan(offset: i64) -> Plan {
    match offset % 50 {
        7 => Plan::ReleaseOnce,
        13 => Plan::Reject,
        29 if offset % 100 == 29 => Plan::Poison,
        _ => Plan::Accept,
    }
}

struct Member {
    core: ShareConsumer,
    /// Stopped: neither stepped nor fed (a hung process whose sockets stay open).
    hung: bool,
    deadline: Option<Instant>,
}

/// One record handed to the application.
#[derive(Debug, Clone)]
struct Handed {
    member: usize,
    delivery: i16,
    at: Instant,
}

enum Wire {
    ToCluster(usize, kasio_core::ConnId, Bytes),
    ToClient(kasio_mock::ConnId, Bytes),
}

struct Sim {
    seed: u64,
    rng: Rng,
    cluster: Cluster,
    now: Instant,
    start: Instant,
    members: Vec<Member>,
    to_mock: HashMap<(usize, kasio_core::ConnId), kasio_mock::ConnId>,
    to_core: HashMap<kasio_mock::ConnId, (usize, kasio_core::ConnId)>,
    wire: VecDeque<(Instant, Wire)>,
    latency: Duration,
    /// The application's decisions, due at a time: (due, member, partition, offset, type).
    work: Vec<(Instant, usize, i32, i64, AcknowledgeType)>,
    handed: BTreeMap<Key, Vec<Handed>>,
    /// Every acknowledgement outcome the members reported: (member, report).
    reports: Vec<(usize, Acknowledged)>,
    faults: Vec<String>,
    /// The hanging member hangs once it next takes records, holding them.
    hang_armed: bool,
    hung_at: Option<Instant>,
}

impl Sim {
    fn new(seed: u64) -> Self {
        let now = Instant::now();
        let mut cluster = Cluster::new(ClusterConfig {
            brokers: BROKERS,
            seed,
            ..Default::default()
        });
        cluster.create_topic(TOPIC, PARTITIONS).unwrap();
        cluster.set_group_config(GROUP, "share.auto.offset.reset", "earliest");
        cluster.set_group_config(
            GROUP,
            "share.record.lock.duration.ms",
            &LOCK.as_millis().to_string(),
        );
        cluster.set_group_config(
            GROUP,
            "share.delivery.count.limit",
            &DELIVERY_LIMIT.to_string(),
        );
        let members = (0..MEMBERS)
            .map(|i| {
                let mut config = ShareConsumerConfig::new("127.0.0.1:9092", GROUP).unwrap();
                config
                    .set("share.acknowledgement.mode", "explicit")
                    .unwrap();
                config.set("request.timeout.ms", "3000").unwrap();
                config.set("max.poll.records", "50").unwrap();
                let mut core =
                    ShareConsumer::new(config, now, seed.wrapping_mul(31).wrapping_add(i as u64))
                        .unwrap();
                core.subscribe(&[TOPIC], now);
                Member {
                    core,
                    hung: false,
                    deadline: None,
                }
            })
            .collect();
        let mut rng = Rng(seed);
        let latency = Duration::from_micros(100 + rng.below(2_000));
        Self {
            seed,
            rng,
            cluster,
            now,
            start: now,
            members,
            to_mock: HashMap::new(),
            to_core: HashMap::new(),
            wire: VecDeque::new(),
            latency,
            work: Vec::new(),
            handed: BTreeMap::new(),
            reports: Vec::new(),
            faults: Vec::new(),
            hang_armed: false,
            hung_at: None,
        }
    }

    fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Appends `n` records to `partition`, one batch.
    fn produce(&mut self, partition: i32, n: usize) {
        let mut b = BatchBuilder::new(BatchOptions::default());
        for i in 0..n {
            let value = format!("r{i}");
            b.append::<(&str, Option<&[u8]>)>(0, None, Some(value.as_bytes()), &[])
                .unwrap();
        }
        let bytes = b.finish().unwrap();
        self.cluster
            .append(TOPIC, partition, &bytes, self.now)
            .unwrap();
    }

    /// Moves bytes, connections and the application's output until nothing moves.
    fn exchange(&mut self) -> bool {
        let mut moved = false;
        let now = self.now;
        let arrive = now + self.latency;
        for i in 0..self.members.len() {
            if self.members[i].hung {
                continue;
            }
            while let Some(a) = self.members[i].core.poll_connect() {
                moved = true;
                match a {
                    ConnectAction::Open { conn, port, .. } => {
                        let broker = i32::from(port) - 9092 + 1;
                        if self.cluster.accepts(broker) {
                            let m = self.cluster.connect(broker);
                            self.to_mock.insert((i, conn), m);
                            self.to_core.insert(m, (i, conn));
                            self.members[i].core.handle_connected(conn, now);
                        } else {
                            self.members[i].core.handle_closed(
                                conn,
                                CloseReason::ConnectFailed("refused".into()),
                                now,
                            );
                        }
                    }
                    ConnectAction::Close { conn } => {
                        if let Some(m) = self.to_mock.remove(&(i, conn)) {
                            self.to_core.remove(&m);
                            self.cluster.handle_closed(m);
                        }
                    }
                }
            }
            while let Some(t) = self.members[i].core.poll_transmit() {
                moved = true;
                self.wire
                    .push_back((arrive, Wire::ToCluster(i, t.conn, t.data)));
            }
        }
        while let Some(t) = self.cluster.poll_transmit() {
            moved = true;
            self.wire
                .push_back((arrive, Wire::ToClient(t.conn, t.data)));
        }
        while self.wire.front().is_some_and(|(at, _)| *at <= now) {
            moved = true;
            match self.wire.pop_front().map(|(_, w)| w) {
                Some(Wire::ToCluster(i, c, data)) => {
                    if let Some(&m) = self.to_mock.get(&(i, c)) {
                        self.cluster.handle_input(m, &data, now);
                    }
                }
                Some(Wire::ToClient(m, data)) => {
                    if let Some(&(i, c)) = self.to_core.get(&m)
                        && !self.members[i].hung
                    {
                        self.members[i].core.handle_input(c, &data, now);
                    }
                }
                None => {}
            }
        }
        while let Some(m) = self.cluster.poll_close() {
            moved = true;
            if let Some((i, c)) = self.to_core.remove(&m) {
                self.to_mock.remove(&(i, c));
                if !self.members[i].hung {
                    self.members[i]
                        .core
                        .handle_closed(c, CloseReason::PeerClosed, now);
                }
            }
        }
        for i in 0..self.members.len() {
            if self.members[i].hung {
                continue;
            }
            while let Some(batch) = self.members[i].core.poll_batch() {
                moved = true;
                let hangs = i == HANGS && self.hang_armed;
                for r in batch.iter().unwrap() {
                    let r = r.unwrap();
                    let key = (r.record.partition, r.record.offset);
                    self.handed.entry(key).or_default().push(Handed {
                        member: i,
                        delivery: r.delivery_count,
                        at: now,
                    });
                    if hangs {
                        continue;
                    }
                    let kind = match plan(key.1) {
                        Plan::Accept => AcknowledgeType::Accept,
                        Plan::ReleaseOnce if r.delivery_count == 1 => AcknowledgeType::Release,
                        Plan::ReleaseOnce => AcknowledgeType::Accept,
                        Plan::Reject => AcknowledgeType::Reject,
                        Plan::Poison => AcknowledgeType::Release,
                    };
                    // Work takes 0-40 ms; now and then a record is renewed first (it
                    // takes longer than its lock).
                    let mut due = now + Duration::from_millis(self.rng.below(40));
                    if self.rng.below(100) == 0 {
                        self.members[i]
                            .core
                            .acknowledge(TOPIC, key.0, key.1, AcknowledgeType::Renew, now)
                            .unwrap();
                        due += LOCK + LOCK / 2;
                        self.work
                            .push((now + LOCK / 2, i, key.0, key.1, AcknowledgeType::Renew));
                        self.work
                            .push((now + LOCK, i, key.0, key.1, AcknowledgeType::Renew));
                    }
                    self.work.push((due, i, key.0, key.1, kind));
                }
                if hangs {
                    self.members[i].hung = true;
                    self.hang_armed = false;
                    self.hung_at = Some(now);
                    break;
                }
            }
            if self.members[i].hung {
                continue;
            }
            while let Some(a) = self.members[i].core.poll_acknowledged() {
                moved = true;
                self.reports.push((i, a));
            }
            while self.members[i].core.poll_event().is_some() {
                moved = true;
            }
        }
        // The application's decisions that are due.
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.work)
            .into_iter()
            .partition(|w| w.0 <= now);
        self.work = later;
        for (_, i, p, o, kind) in due {
            if self.members[i].hung {
                continue;
            }
            moved = true;
            // A refusal (the record was taken back: the member's session ended, its
            // lock ran out) is the application's to live with; the checker judges.
            let _ = self.members[i].core.acknowledge(TOPIC, p, o, kind, now);
        }
        moved
    }

    /// One step: exchange, or jump to the next deadline.
    fn step(&mut self) -> bool {
        if self.exchange() {
            return true;
        }
        for m in &mut self.members {
            if !m.hung {
                m.deadline = m.core.poll_timeout().map(|t| t.at);
            }
        }
        let next = self
            .members
            .iter()
            .filter(|m| !m.hung)
            .filter_map(|m| m.deadline)
            .chain(self.cluster.poll_timeout())
            .chain(self.wire.front().map(|(at, _)| *at))
            .chain(self.work.iter().map(|w| w.0))
            .min();
        let Some(next) = next else {
            return false;
        };
        self.now = self.now.max(next);
        let now = self.now;
        for m in &mut self.members {
            if !m.hung {
                m.core.handle_timeout(now);
            }
        }
        self.cluster.handle_timeout(now);
        true
    }

    /// Runs until `until` of virtual time has passed since the start.
    fn run_to(&mut self, until: Duration) {
        let mut steps = 0u64;
        while self.elapsed() < until {
            steps += 1;
            assert!(steps < 20_000_000, "seed {}: a request storm?", self.seed);
            if !self.step() {
                break;
            }
        }
    }

    /// A random fault, as the seed picks it.
    fn fault(&mut self) {
        let broker = i32::try_from(self.rng.below(u64::try_from(BROKERS).unwrap())).unwrap() + 1;
        let partition = i32::try_from(self.rng.below(2)).unwrap();
        let what = match self.rng.below(8) {
            0 => {
                self.cluster.inject(Fault::Blackhole {
                    api: ApiKey::ShareFetch,
                    count: 1,
                });
                "lost ShareFetch response".to_string()
            }
            1 => {
                self.cluster.inject(Fault::Blackhole {
                    api: ApiKey::ShareAcknowledge,
                    count: 1,
                });
                "lost ShareAcknowledge response".to_string()
            }
            2 => {
                self.cluster.inject(Fault::DropConnections { broker });
                format!("connections to {broker} dropped")
            }
            3 => {
                let now = self.cluster.leader(TOPIC, partition).unwrap();
                let broker = now % BROKERS + 1;
                self.cluster.move_leader(TOPIC, partition, broker).unwrap();
                format!("leader of {partition} moved to {broker}")
            }
            4 => {
                self.cluster.move_coordinator(GROUP, broker).unwrap();
                format!("coordinator moved to {broker}")
            }
            5 => {
                self.cluster.inject(Fault::FailNext {
                    api: ApiKey::ShareFetch,
                    count: 1,
                    error: ErrorCode::ShareSessionNotFound,
                });
                "ShareFetch: SHARE_SESSION_NOT_FOUND".to_string()
            }
            6 => {
                self.cluster.inject(Fault::FailNext {
                    api: ApiKey::ShareFetch,
                    count: 1,
                    error: ErrorCode::InvalidShareSessionEpoch,
                });
                "ShareFetch: INVALID_SHARE_SESSION_EPOCH".to_string()
            }
            _ => {
                self.cluster.inject(Fault::FailNext {
                    api: ApiKey::ShareGroupHeartbeat,
                    count: 1,
                    error: ErrorCode::CoordinatorNotAvailable,
                });
                "ShareGroupHeartbeat: COORDINATOR_NOT_AVAILABLE".to_string()
            }
        };
        self.faults.push(format!("{:?}: {what}", self.elapsed()));
    }
}

/// Runs one seed and checks its history; the failure names the seed.
fn run(seed: u64) {
    let mut sim = Sim::new(seed);
    // The members join, then records arrive in batches while faults strike.
    sim.run_to(Duration::from_secs(12));
    let mut produced = [0i64; 2];
    let mut t = Duration::from_secs(12);
    let mut armed = false;
    while produced.iter().any(|&n| n < RECORDS_PER_PARTITION) {
        for (p, count) in produced.iter_mut().enumerate() {
            let n =
                (RECORDS_PER_PARTITION - *count).min(1 + i64::try_from(sim.rng.below(40)).unwrap());
            if n > 0 {
                sim.produce(i32::try_from(p).unwrap(), usize::try_from(n).unwrap());
                *count += n;
            }
        }
        if sim.rng.below(6) == 0 {
            sim.fault();
        }
        if !armed && produced[0] >= RECORDS_PER_PARTITION / 2 {
            sim.hang_armed = true;
            armed = true;
        }
        t += Duration::from_millis(100 + sim.rng.below(200));
        sim.run_to(t);
    }
    // Everything settles: locks run out, members expire, the rest is worked off.
    sim.run_to(t + Duration::from_secs(90));
    let hung_at = sim.hung_at;
    assert!(hung_at.is_some(), "seed {seed}: the member never hung");
    check(&sim, hung_at.unwrap());
}

fn check(sim: &Sim, hung_at: Instant) {
    let seed = sim.seed;
    let ctx = || {
        format!(
            "seed {seed} (replay: SHARE_SIM_SEED={seed} cargo test -p kasio-core --test share_sim); faults: {:?}",
            sim.faults
        )
    };
    // Accepts the broker confirmed, per record.
    let mut accepted: HashMap<Key, u32> = HashMap::new();
    for (_, a) in sim.reports.iter().filter(|(_, a)| a.error.is_none()) {
        for &(first, last, kind) in &a.offsets {
            if kind == AcknowledgeType::Accept {
                for o in first..=last {
                    *accepted.entry((a.partition, o)).or_default() += 1;
                }
            }
        }
    }
    let (mut hung_redelivered, mut worn_out) = (0, 0);
    for p in 0..PARTITIONS {
        let (start, outcomes) = sim.cluster.share_outcomes(GROUP, TOPIC, p).unwrap();
        assert_eq!(
            start,
            RECORDS_PER_PARTITION,
            "partition {p} not worked off: {}",
            ctx()
        );
        for o in 0..RECORDS_PER_PARTITION {
            let key = (p, o);
            let outcome = outcomes.get(&o).copied();
            let handed = sim.handed.get(&key).cloned().unwrap_or_default();
            // Each delivery handed out once.
            let mut counts: Vec<i16> = handed.iter().map(|h| h.delivery).collect();
            // (A member may still hold an earlier delivery, its lock gone with a leader
            // move, when another gets the next one: handed out at the same moment.)
            counts.sort_unstable();
            assert!(
                counts.windows(2).all(|w| w[1] > w[0]) && counts.first().is_some_and(|&c| c >= 1),
                "{key:?} handed out as {handed:?}: {}",
                ctx()
            );
            assert!(
                accepted.get(&key).copied().unwrap_or(0) <= 1,
                "{key:?} accepted twice: handed out as {handed:?}, reports {:?}: {}",
                sim.reports
                    .iter()
                    .filter(|(_, a)| a.partition == key.0
                        && a.offsets.iter().any(|&(f, l, _)| (f..=l).contains(&key.1)))
                    .collect::<Vec<_>>(),
                ctx()
            );
            if handed.iter().any(|h| h.member == HANGS && h.at <= hung_at)
                && handed.iter().any(|h| h.at > hung_at && h.member != HANGS)
            {
                hung_redelivered += 1;
            }
            let last = *counts.last().unwrap();
            match plan(o) {
                Plan::Accept | Plan::ReleaseOnce => {
                    // Accepted at its last delivery; or, when deliveries were lost on the
                    // way (a response lost, a hung member's fetch answered) until the
                    // limit, archived without an accept, as Kafka would.
                    let archived = outcome == Some(ShareOutcome::Archived(DELIVERY_LIMIT))
                        && last <= DELIVERY_LIMIT
                        && !accepted.contains_key(&key);
                    if archived {
                        worn_out += 1;
                        if std::env::var("SHARE_SIM_TRACE").is_ok() {
                            eprintln!(
                                "worn out {key:?}: {:?}",
                                handed
                                    .iter()
                                    .map(|h| (h.member, h.delivery, h.at - sim.start))
                                    .collect::<Vec<_>>()
                            );
                        }
                    } else {
                        assert_eq!(
                            outcome,
                            Some(ShareOutcome::Accepted(last)),
                            "{key:?} ({:?}) handed out as {handed:?}: {}",
                            plan(o),
                            ctx()
                        );
                    }
                    if plan(o) == Plan::ReleaseOnce && counts[0] == 1 {
                        // Released on its first delivery: back with a higher count (the
                        // next, unless a delivery in between was lost on the way).
                        assert!(
                            counts.len() >= 2 && counts[1] > 1,
                            "{key:?} released: {handed:?}: {}",
                            ctx()
                        );
                    }
                }
                Plan::Reject => {
                    // Archived at the delivery it was last handed out in: never again after
                    // the rejection the broker took.
                    assert_eq!(
                        outcome,
                        Some(ShareOutcome::Archived(last)),
                        "{key:?} rejected: {handed:?}: {}",
                        ctx()
                    );
                }
                Plan::Poison => {
                    assert_eq!(
                        outcome,
                        Some(ShareOutcome::Archived(DELIVERY_LIMIT)),
                        "{key:?} released every time: {handed:?}: {}",
                        ctx()
                    );
                    assert!(last <= DELIVERY_LIMIT, "{key:?}: {handed:?}: {}", ctx());
                }
            }
        }
    }
    if std::env::var("SHARE_SIM_TRACE").is_ok() {
        let handouts: usize = sim.handed.values().map(Vec::len).sum();
        let again = sim.handed.values().filter(|h| h.len() > 1).count();
        let failed = sim
            .reports
            .iter()
            .filter(|(_, a)| a.error.is_some())
            .count();
        eprintln!(
            "seed {seed}: {handouts} handouts, {again} records delivered more than once, {hung_redelivered} held by the hung member delivered again, {failed} failed reports of {}, {worn_out} worn out, {} faults, {:?} virtual",
            sim.reports.len(),
            sim.faults.len(),
            sim.elapsed()
        );
    }
    // Wearing out is for records caught in several faults, never the common case.
    assert!(
        worn_out <= 3,
        "{worn_out} records archived without an accept: {}",
        ctx()
    );
    assert!(
        hung_redelivered > 0,
        "nothing the hung member held was delivered again: {}",
        ctx()
    );
}

#[test]
fn share_group_members_under_faults_keep_the_rules_of_share_groups() {
    if let Ok(seed) = std::env::var("SHARE_SIM_SEED") {
        run(seed.parse().unwrap());
        return;
    }
    let seeds: u64 = std::env::var("SHARE_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(24);
    for seed in 1..=seeds {
        run(seed);
    }
}

/// A member that writes dead letters itself reads the group's configs through a lost
/// answer; the mock's `share.version` (1) has no broker dead-letter topics, so the group's
/// `errors.deadletterqueue.topic.name` does not count and the answer is none.
#[test]
fn the_dead_letter_reading_survives_a_lost_answer_and_heeds_the_share_version() {
    let mut sim = Sim::new(7);
    sim.cluster
        .set_group_config(GROUP, "errors.deadletterqueue.topic.name", "dlq.jobs");
    sim.cluster.inject(Fault::Blackhole {
        api: ApiKey::DescribeConfigs,
        count: 1,
    });
    let now = sim.now;
    sim.members[0].core.watch_dead_letter(now);
    sim.run_to(Duration::from_secs(2));
    assert!(
        !sim.members[0].core.broker_dead_letter().is_known(),
        "the first answer was lost: the request times out after 3 s"
    );
    sim.run_to(Duration::from_secs(10));
    assert_eq!(
        sim.members[0].core.broker_dead_letter(),
        &kasio_core::BrokerDeadLetter::None
    );
    assert!(
        !sim.members[1].core.broker_dead_letter().is_known(),
        "asked only when wanted"
    );
}
