//! The shell's handles on a simulated runtime ([`sim::Sim`]): real producers, consumers and
//! admins, their real drivers and kasio-mock's cluster, in virtual time on one thread with
//! no sockets. What takes minutes of timeouts on a real clock runs here in milliseconds,
//! and every run is the same.

mod sim;

use kasio_mock::Fault;
use kasio_proto::ApiKey;
use kasio_shell::{
    Admin, AsyncRuntime, Consumer, ConsumerEvent, Fetched, Priority, PriorityConsumer,
    PriorityShareConsumer, ProduceError, Producer, Record, Runtime, Seek, SendError, ShareFetched,
    TxnError,
};
use sim::{Sim, World};
use std::time::{Duration, Instant};

const TOPIC: &str = "t";
const PARTITIONS: i32 = 6;

fn producer(world: &World, extra: &[(&str, &str)]) -> Producer<Sim> {
    let bootstrap = world.bootstrap();
    Producer::from_properties(
        [("bootstrap.servers", bootstrap.as_str())]
            .into_iter()
            .chain(extra.iter().copied()),
    )
    .expect("a valid producer config")
}

fn publisher(world: &World, extra: &[(&str, &str)]) -> kasio_shell::Publisher<Sim> {
    let bootstrap = world.bootstrap();
    kasio_shell::Publisher::from_properties(
        [("bootstrap.servers", bootstrap.as_str())]
            .into_iter()
            .chain(extra.iter().copied()),
    )
    .expect("a valid publisher config")
}

fn consumer(world: &World, extra: &[(&str, &str)]) -> Consumer<Sim> {
    let bootstrap = world.bootstrap();
    Consumer::from_properties(
        [("bootstrap.servers", bootstrap.as_str())]
            .into_iter()
            .chain(extra.iter().copied()),
    )
    .expect("a valid consumer config")
}

/// Records in the topic's log, over every partition (control records included).
fn written(world: &World) -> i64 {
    (0..PARTITIONS)
        .map(|p| {
            world
                .cluster
                .end_offset(TOPIC, p)
                .expect("the topic's partition")
        })
        .sum()
}

/// The virtual time since the world began lies in `span`, and the real time since
/// `started` is a fraction of it: the waits ran on the virtual clock.
fn took(world: &World, started: Instant, span: std::ops::Range<Duration>) {
    assert!(span.contains(&world.elapsed()), "{:?}", world.elapsed());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

fn values(range: std::ops::Range<u64>) -> Vec<String> {
    range.map(|i| i.to_string()).collect()
}

#[test]
fn send_batch_groups_each_resolve_with_their_count() {
    let mut world = World::new(3, TOPIC, PARTITIONS);
    let producer = producer(&world, &[("linger.ms", "5")]);
    let vals = values(0..3000);
    let counts = world.run(async {
        let mut groups = Vec::new();
        for chunk in vals.chunks(1000) {
            let records = chunk.iter().map(|v| Record::new(TOPIC).value(v.as_bytes()));
            groups.push(producer.send_batch(records).await.unwrap());
        }
        let mut counts = Vec::new();
        for g in groups {
            counts.push(g.await.unwrap());
        }
        counts
    });
    assert_eq!(counts, [1000, 1000, 1000]);
    assert_eq!(written(&world), 3000);

    // A group with a record for a topic that does not exist: the group reports the
    // failure once the record's time is up, and the other records are still written.
    let started = Instant::now();
    let result = world.run(async {
        let records = [
            Record::new(TOPIC).value(b"a"),
            Record::new("missing").value(b"b"),
        ];
        producer.send_batch(records).await.unwrap().await
    });
    assert!(
        matches!(
            result,
            Err(ProduceError::UnknownTopic | ProduceError::Timeout)
        ),
        "{result:?}"
    );
    took(&world, started, Duration::from_secs(60)..Duration::MAX);
    assert_eq!(written(&world), 3001);
    world.run(producer.close());
}

#[test]
fn transaction_waiters_complete_after_their_records() {
    let mut world = World::new(3, TOPIC, PARTITIONS);
    let producer = producer(&world, &[("transactional.id", "sim-txn")]);
    let committed = values(0..100);
    let aborted = values(100..150);
    world.run(async {
        // Asked before the producer is ready: a typed error at once, no waiting.
        let early = producer.commit_transaction().await;
        assert!(
            matches!(early, Err(TxnError::InvalidState { .. })),
            "{early:?}"
        );
        producer.init_transactions().await.unwrap();

        producer.begin_transaction().unwrap();
        let records = committed
            .iter()
            .map(|v| Record::new(TOPIC).value(v.as_bytes()));
        let group = producer.send_batch(records).await.unwrap();
        // The commit is asked for before any record is acknowledged; it completes only
        // once every one is, and so does the group.
        let commit = producer.commit_transaction();
        assert_eq!(commit.await, Ok(()));
        let mut group = group;
        assert_eq!(group.try_take(), Some(Ok(100)));

        producer.begin_transaction().unwrap();
        let records = aborted
            .iter()
            .map(|v| Record::new(TOPIC).value(v.as_bytes()));
        let group = producer.send_batch(records).await.unwrap();
        assert_eq!(producer.abort_transaction().await, Ok(()));
        // Sent before the abort (written, then aborted) or failed by it.
        let got = group.await;
        assert!(
            matches!(got, Ok(50) | Err(ProduceError::TransactionAborted)),
            "{got:?}"
        );
        producer.close().await;
    });

    // read_committed sees exactly the committed records, up to the end of every partition.
    let reader = consumer(&world, &[("isolation.level", "read_committed")]);
    reader.assign((0..PARTITIONS).map(|p| (TOPIC, p)));
    for p in 0..PARTITIONS {
        reader.seek(TOPIC, p, Seek::Beginning);
    }
    let ends: Vec<i64> = (0..PARTITIONS)
        .map(|p| world.cluster.end_offset(TOPIC, p).unwrap())
        .collect();
    let mut seen = Vec::new();
    world.run(async {
        while (0..PARTITIONS).any(|p| reader.position(TOPIC, p) != Some(ends[p as usize])) {
            if let Fetched::Batch(b) = reader.next().await {
                b.for_each(|r| seen.push(String::from_utf8(r.value.unwrap().to_vec()).unwrap()))
                    .unwrap();
            }
        }
        reader.close().await;
    });
    seen.sort_by_key(|v| v.parse::<u64>().unwrap());
    assert_eq!(seen, committed);
}

#[test]
fn close_delivers_what_is_buffered_without_waiting_for_linger() {
    let mut world = World::new(1, TOPIC, PARTITIONS);
    // A minute of linger: only close can make these records go before then.
    let producer = producer(&world, &[("linger.ms", "60000")]);
    let vals = values(0..500);
    world.run(async {
        let mut deliveries = Vec::new();
        for v in &vals {
            deliveries.push(
                producer
                    .send(Record::new(TOPIC).value(v.as_bytes()))
                    .await
                    .unwrap(),
            );
        }
        producer.close().await;
        for d in deliveries {
            d.await.unwrap();
        }
        let late = producer.send(Record::new(TOPIC).value(b"late")).await;
        assert!(matches!(late, Err(SendError::Closed)), "{late:?}");
    });
    assert_eq!(written(&world), 500);
    assert!(
        world.elapsed() < Duration::from_secs(1),
        "{:?}",
        world.elapsed()
    );
    assert_eq!(world.drivers(), 0, "the driver stops once close completes");
}

#[test]
fn dropped_handles_deliver_and_leave_their_group() {
    let mut world = World::new(3, TOPIC, PARTITIONS);
    let producer = producer(&world, &[("linger.ms", "60000")]);
    let vals = values(0..10_000);
    world.run(async {
        for v in &vals {
            // Nobody waits for any delivery.
            drop(
                producer
                    .send(Record::new(TOPIC).value(v.as_bytes()))
                    .await
                    .unwrap(),
            );
        }
    });
    drop(producer);
    assert!(world.run_until_stopped(Duration::from_secs(300)));
    assert_eq!(written(&world), 10_000);
    assert!(
        world.elapsed() < Duration::from_secs(1),
        "{:?}",
        world.elapsed()
    );

    let member = consumer(
        &world,
        &[("group.id", "sim-group"), ("auto.offset.reset", "earliest")],
    );
    member.subscribe(&[TOPIC]).unwrap();
    world.run(async {
        while !matches!(
            member.next().await,
            Fetched::Event(ConsumerEvent::Assigned { .. })
        ) {}
    });
    drop(member);
    assert!(world.run_until_stopped(Duration::from_secs(60)));

    let admin =
        Admin::<Sim>::from_properties([("bootstrap.servers", world.bootstrap().as_str())]).unwrap();
    let described = world.run(async {
        let d = admin.describe_groups(&["sim-group"]).await.unwrap();
        admin.close().await;
        d
    });
    let group = described[0].result.as_ref().unwrap();
    assert!(group.members.is_empty(), "{:?}", group.members);
}

#[test]
fn deliveries_time_out_on_the_virtual_clock() {
    let mut world = World::new(1, TOPIC, PARTITIONS);
    world.cluster.inject(Fault::Blackhole {
        api: ApiKey::Produce,
        count: u32::MAX,
    });
    let producer = producer(
        &world,
        &[
            ("delivery.timeout.ms", "120000"),
            ("request.timeout.ms", "30000"),
        ],
    );
    let started = Instant::now();
    let result = world.run(async {
        let d = producer
            .send(Record::new(TOPIC).value(b"lost"))
            .await
            .unwrap();
        d.await
    });
    assert_eq!(result, Err(ProduceError::Timeout));
    // Failed at delivery.timeout.ms by the virtual clock, in a fraction of it on the real.
    took(
        &world,
        started,
        Duration::from_secs(120)..Duration::from_secs(125),
    );
    world.run(producer.close());
}

/// A small seeded generator (xorshift64*) for fault schedules, and how many it drew.
struct Faults(u64, u32);

impl Faults {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// One fault on `api` or a broker, or none, as the seed says; one call in five may
    /// lose connections (a share group takes back what a lost session held, at the cost
    /// of a delivery: see the share test).
    fn inject(&mut self, world: &mut World, api: ApiKey) {
        let r = self.next();
        self.1 += 1;
        let count = 1 + u32::try_from(r >> 8 & 3).unwrap_or(0);
        let kind = if self.1.is_multiple_of(5) {
            r % 5
        } else {
            r % 2
        };
        let fault = match kind {
            0 => Fault::FailNext {
                api,
                count,
                error: kasio_proto::ErrorCode::NotLeaderOrFollower,
            },
            1 => Fault::Delay {
                api,
                count,
                by: Duration::from_millis(300),
            },
            2 => Fault::DropConnections {
                broker: 1 + i32::try_from(r >> 16 & 1).unwrap_or(0),
            },
            // Lost answers: the request timeout (1 s) fires.
            3 => Fault::Blackhole { api, count: 1 },
            _ => return,
        };
        world.cluster.inject(fault);
    }
}

/// `future`'s output, unless `limit` of virtual time passes first.
async fn within<F: std::future::Future>(limit: Duration, future: F) -> Option<F::Output> {
    let wait = Sim::sleep_until(Sim::now() + limit);
    futures_lite::future::or(async { Some(future.await) }, async {
        wait.await;
        None
    })
    .await
}

/// Priority level topics of `jobs`, 2 partitions each, and a backlog of `normal` and
/// `low` records.
fn priority_world(normal: usize, low: usize) -> (World, Producer<Sim>) {
    let mut world = World::new(2, TOPIC, 1);
    for t in Priority::topics("jobs") {
        world
            .cluster
            .create_topic(&t, 2)
            .expect("a new topic in a new cluster");
    }
    let producer = producer(&world, &[("linger.ms", "5")]);
    world.run(send_level(&producer, Priority::Normal, normal));
    world.run(send_level(&producer, Priority::Low, low));
    (world, producer)
}

async fn send_level(producer: &Producer<Sim>, level: Priority, n: usize) {
    let mut deliveries = Vec::new();
    for i in 0..n {
        let v = format!("{level}-{i}");
        let record = Record::new("jobs").value(v.as_bytes());
        deliveries.push(
            producer
                .send_priority(record, level)
                .await
                .expect("room in the producer"),
        );
    }
    for d in deliveries {
        d.await.expect("delivered");
    }
}

/// A priority consumer's properties in these runs: batches of 100, short waits, `extra`.
fn level_props<'a>(bootstrap: &'a str, extra: (&'a str, &'a str)) -> [(&'a str, &'a str); 6] {
    [
        ("bootstrap.servers", bootstrap),
        ("group.id", "workers"),
        ("max.poll.records", "100"),
        ("fetch.max.wait.ms", "100"),
        ("request.timeout.ms", "1000"),
        extra,
    ]
}

/// What a priority run handed out, in order, with the virtual instant of each.
struct Run {
    order: Vec<(String, Instant)>,
    critical_sent: Instant,
}

impl Default for Run {
    fn default() -> Self {
        Self {
            order: Vec::new(),
            critical_sent: Sim::now(),
        }
    }
}

impl Run {
    fn last(&self, level: &str) -> usize {
        self.order
            .iter()
            .rposition(|(v, _)| v.starts_with(level))
            .expect("records of every level handed out")
    }

    /// Critical records all before the normal backlog drained, low at its share while
    /// normal had one; the longest a critical record waited.
    fn check(&self, seed: u64) -> Duration {
        let (critical, normal) = (self.last("critical"), self.last("normal"));
        assert!(
            critical < normal,
            "seed {seed}: the last critical record at {critical}, normal drained at {normal}"
        );
        let low = self.order[..normal]
            .iter()
            .filter(|(v, _)| v.starts_with("low"))
            .count();
        let share = low as f64 / normal as f64;
        assert!(share >= 0.09, "seed {seed}: low got {share:.3}");
        self.order
            .iter()
            .filter(|(v, _)| v.starts_with("critical"))
            .map(|(_, at)| *at - self.critical_sent)
            .max()
            .expect("critical records handed out")
    }
}

const SEEDS: u64 = 50;
const NORMAL: usize = 2_000;
const LOW: usize = 1_000;
const CRITICAL: usize = 200;

/// The group priority consumer in virtual time: a worker taking 20 µs a record, a fault
/// (failed, delayed or lost fetches, dropped connections) after every 100 records as
/// the seed draws it, 200 critical records sent once 400 are done. Every record handed
/// out once; critical before the normal backlog drains, within 3 s even through lost
/// fetches; low keeps its 10%.
#[test]
fn priority_consumer_through_seeded_faults() {
    for seed in 1..=SEEDS {
        let mut faults = Faults(seed, 0);
        let (mut world, producer) = priority_world(NORMAL, LOW);
        let bootstrap = world.bootstrap();
        let jobs = PriorityConsumer::<Sim>::from_properties(
            level_props(&bootstrap, ("auto.offset.reset", "earliest")),
            &["jobs"],
        )
        .unwrap();
        let mut run = Run::default();
        let mut sent = false;
        while run.order.len() < NORMAL + LOW + CRITICAL {
            let took = world.run(async {
                let mut took = Vec::new();
                while took.len() < 100 {
                    let Some(fetched) = within(Duration::from_secs(5), jobs.next()).await else {
                        break;
                    };
                    if let Fetched::Batch(b) = fetched {
                        let now = Sim::now();
                        b.for_each(|r| {
                            took.push((String::from_utf8(r.value.unwrap().to_vec()).unwrap(), now));
                        })
                        .unwrap();
                        let work = Duration::from_micros(20) * u32::try_from(b.len_hint()).unwrap();
                        Sim::sleep_until(Sim::now() + work).await;
                    }
                }
                took
            });
            run.order.extend(took);
            faults.inject(&mut world, ApiKey::Fetch);
            if !sent && run.order.len() >= 400 {
                sent = true;
                run.critical_sent = Sim::now();
                world.run(send_level(&producer, Priority::Critical, CRITICAL));
            }
        }
        let unique: std::collections::HashSet<&String> = run.order.iter().map(|(v, _)| v).collect();
        assert_eq!(
            unique.len(),
            run.order.len(),
            "seed {seed}: one handed out twice"
        );
        let waited = run.check(seed);
        assert!(
            waited < Duration::from_secs(3),
            "seed {seed}: a critical record waited {waited:?}"
        );
        world.run(async {
            jobs.close().await.unwrap();
            producer.close().await;
        });
    }
}

/// The priority consumer on a share group in virtual time, as the group one above, with
/// locks of 2 s (shorter than the run: held records live on renewals). Every record
/// ends accepted in the share partitions' state. Each lost session makes the broker take
/// back what the member held, a delivery spent: a lower level's records held while a
/// backlog drains live through every loss in that time, so with a loss every 100
/// records some reached the delivery limit and were archived; here a loss comes at most
/// every 500 records.
#[test]
fn priority_share_consumer_through_seeded_faults() {
    for seed in 1..=SEEDS {
        let mut faults = Faults(seed, 0);
        let (mut world, producer) = priority_world(NORMAL, LOW);
        world
            .cluster
            .set_group_config("workers", "share.auto.offset.reset", "earliest");
        world
            .cluster
            .set_group_config("workers", "share.record.lock.duration.ms", "2000");
        // Acknowledgements riding on a failed share fetch are lost and their records come
        // again when the lock runs out: at this density of faults a record may be
        // delivered more often than the default limit (5) allows before it is archived.
        world
            .cluster
            .set_group_config("workers", "share.delivery.count.limit", "10");
        let bootstrap = world.bootstrap();
        let jobs = PriorityShareConsumer::<Sim>::from_properties(
            level_props(&bootstrap, ("share.acknowledgement.mode", "explicit")),
            &["jobs"],
        )
        .unwrap();
        let mut run = Run::default();
        let mut seen = std::collections::HashSet::new();
        let mut sent = false;
        let total = NORMAL + LOW + CRITICAL;
        let started = Sim::now();
        while seen.len() < total {
            assert!(
                Sim::now() - started < Duration::from_secs(600),
                "seed {seed}: {} of {total} after 10 min: {:?}",
                seen.len(),
                jobs.stats()
            );
            let took = world.run(async {
                let mut took = Vec::new();
                while took.len() < 100 {
                    match within(Duration::from_secs(5), jobs.next()).await {
                        Some(ShareFetched::Record(job)) => {
                            let v = String::from_utf8(job.record().value.clone().unwrap().to_vec())
                                .unwrap();
                            // Taken back by the broker (a session lost) and delivered again:
                            // one of the two acknowledgements settles it.
                            let _ = job.ack();
                            took.push((v, Sim::now()));
                            Sim::sleep_until(Sim::now() + Duration::from_micros(20)).await;
                        }
                        Some(_) => {}
                        None => break,
                    }
                }
                took
            });
            for (v, at) in took {
                if seen.insert(v.clone()) {
                    run.order.push((v, at));
                }
            }
            faults.inject(&mut world, ApiKey::ShareFetch);
            if !sent && run.order.len() >= 400 {
                sent = true;
                run.critical_sent = Sim::now();
                world.run(send_level(&producer, Priority::Critical, CRITICAL));
            }
        }
        let waited = run.check(seed);
        assert!(
            waited < Duration::from_secs(3),
            "seed {seed}: a critical record waited {waited:?}"
        );
        // What the broker took back and delivered again is read until nothing comes.
        world.run(async {
            loop {
                match within(Duration::from_secs(5), jobs.next()).await {
                    Some(ShareFetched::Record(job)) => {
                        let _ = job.ack();
                    }
                    Some(_) => {}
                    None => break,
                }
            }
            let _ = jobs.commit().await;
            jobs.close().await;
            producer.close().await;
        });
        for t in Priority::topics("jobs") {
            for p in 0..2 {
                let outcomes = world
                    .cluster
                    .share_outcomes("workers", &t, p)
                    .map(|o| o.1)
                    .unwrap_or_default();
                let open: Vec<_> = outcomes
                    .iter()
                    .filter(|(_, o)| !matches!(o, kasio_mock::ShareOutcome::Accepted(_)))
                    .collect();
                assert!(
                    open.is_empty(),
                    "seed {seed}: {t}-{p}: {:?}",
                    &open[..open.len().min(5)]
                );
            }
        }
    }
}

/// What the runner test's processors did, shared by every member.
#[derive(Default)]
struct Ledger {
    /// Records processed successfully or given up on (dead-lettered), per
    /// (partition, offset), with how often.
    finished: std::collections::HashMap<(i32, i64), u32>,
    /// Tries per (partition, offset).
    tries: std::collections::HashMap<(i32, i64), u32>,
    /// Records handed to the retry topic (non-blocking retries): finished in their own
    /// partition, whose commit may pass them.
    queued: std::collections::HashSet<(i32, i64)>,
    /// Keys of a topic's partition being processed now, to catch two at once.
    keys: std::collections::HashSet<(String, i32, Vec<u8>)>,
}

/// A processor that takes 0-20 ms of virtual time, fails 5% of records on their first
/// try (retriable) and 1% always (their tries run out: dead-lettered), drawn from the
/// record's value; and checks that one key of a partition never runs twice at once.
struct Flaky(std::sync::Arc<std::sync::Mutex<Ledger>>);

impl Flaky {
    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.0.lock().expect("the ledger's lock")
    }
}

/// The record's fate, drawn from its value (its index).
fn draw(value: &[u8]) -> u64 {
    let n: u64 = std::str::from_utf8(value)
        .expect("a number")
        .parse()
        .expect("a number");
    n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32
}

impl kasio_shell::Processor for Flaky {
    async fn process(
        &self,
        record: &kasio_shell::ConsumerRecord,
    ) -> Result<(), kasio_shell::ProcessError> {
        // A retry topic's copy counts as its origin: the same record tried again.
        let origin = kasio_shell::Origin::of(record);
        let at = (origin.partition, origin.offset);
        let key = (
            record.topic.to_string(),
            record.partition,
            record.key.as_deref().unwrap_or_default().to_vec(),
        );
        let tries = {
            let mut l = self.ledger();
            assert!(l.keys.insert(key.clone()), "key {key:?} runs twice at once");
            let t = l.tries.entry(at).or_insert(0);
            *t += 1;
            *t
        };
        let d = draw(record.value.as_deref().expect("a value"));
        Sim::sleep_until(Sim::now() + Duration::from_millis(d % 21)).await;
        let mut l = self.ledger();
        l.keys.remove(&key);
        if d % 100 == 7 {
            return Err(kasio_shell::ProcessError::permanent(std::io::Error::other(
                "bad record",
            )));
        }
        if tries == 1 && d % 20 == 3 {
            return Err(kasio_shell::ProcessError::retriable(std::io::Error::other(
                "service busy",
            )));
        }
        *l.finished.entry(at).or_insert(0) += 1;
        Ok(())
    }

    fn failed(
        &self,
        record: &kasio_shell::ConsumerRecord,
        _error: &kasio_shell::ProcessError,
        _attempt: u32,
        decision: kasio_shell::Decision,
    ) {
        let origin = kasio_shell::Origin::of(record);
        let at = (origin.partition, origin.offset);
        match decision {
            // Its offset is committed past once the dead letter is written, after this.
            kasio_shell::Decision::DeadLetter => {
                *self.ledger().finished.entry(at).or_insert(0) += 1
            }
            // With a retry topic, likewise once the copy is written.
            kasio_shell::Decision::Retry(_) => {
                self.ledger().queued.insert(at);
            }
            kasio_shell::Decision::Stop => {}
        }
    }
}

const RUNNER_SEEDS: u64 = 40;
const RUNNER_RECORDS: i64 = 1_200;
const RUNNER_PARTITIONS: i32 = 4;

type MemberRun<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), kasio_shell::RunError>> + 'a>>;

/// No committed offset of the group lies past a record that has not finished.
fn check_commits(world: &World, ledger: &Ledger, seed: u64) {
    for p in 0..RUNNER_PARTITIONS {
        let Some(committed) = world.cluster.committed("workers", "jobs", p) else {
            continue;
        };
        for o in 0..committed {
            assert!(
                ledger.finished.get(&(p, o)).is_some_and(|&n| n > 0)
                    || ledger.queued.contains(&(p, o)),
                "seed {seed}: jobs-{p} committed at {committed} past unfinished {o}"
            );
        }
    }
}

/// The runner's commit rule in virtual time, under rebalances: three members of one
/// group (per-key parallel processing, a retriable failure on 5% of first tries, 1%
/// dead-lettered), the second and third joining while the first works, the first stopped
/// and started again midway, faults on fetches and commits as the seed draws them; both
/// group protocols. Every 100 ms of virtual time, no committed offset may lie past a
/// record that has not finished; at the end every record finished and its offset is
/// committed, none was processed twice (every member stopped gracefully, committing
/// first), and the dead-letter topic holds the 1%.
#[test]
fn runner_commits_only_past_finished_records_through_rebalances() {
    use std::sync::{Arc, Mutex};
    for seed in 1..=RUNNER_SEEDS {
        let mut faults = Faults(seed, 0);
        let mut world = World::new(2, "jobs", RUNNER_PARTITIONS);
        world
            .cluster
            .create_topic("jobs.dlt", 1)
            .expect("a new topic");
        world
            .cluster
            .create_topic("jobs.retry", 2)
            .expect("a new topic");
        // Half the seeds retry through the retry topic rather than in place.
        let retry_topic = if seed % 4 >= 2 { "jobs.retry" } else { "none" };
        let producer = producer(&world, &[("linger.ms", "5")]);
        world.run(async {
            let mut deliveries = Vec::new();
            for i in 0..RUNNER_RECORDS {
                let key = format!("k{}", i % 37);
                let value = i.to_string();
                let record = Record::new("jobs")
                    .key(key.as_bytes())
                    .value(value.as_bytes());
                deliveries.push(producer.send(record).await.expect("room"));
            }
            for d in deliveries {
                d.await.expect("delivered");
            }
        });
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let bootstrap = world.bootstrap();
        let protocol = if seed % 2 == 0 { "consumer" } else { "classic" };
        let runner = || {
            let ledger = ledger.clone();
            kasio_shell::Runner::<Sim, _>::from_properties(
                [
                    ("bootstrap.servers", bootstrap.as_str()),
                    ("group.id", "workers"),
                    ("group.protocol", protocol),
                    ("auto.offset.reset", "earliest"),
                    ("auto.commit.interval.ms", "200"),
                    ("fetch.max.wait.ms", "100"),
                    ("request.timeout.ms", "1000"),
                    ("processing.ordering", "key"),
                    ("processing.retry.backoff.ms", "50"),
                    ("processing.retry.topic", retry_topic),
                    ("processing.max.waiting", "100"),
                ],
                &["jobs"],
                move |_| Flaky(ledger.clone()),
            )
            .expect("a valid runner config")
        };
        let runners = [runner(), runner(), runner(), runner()];
        let stops: Vec<kasio_shell::Stop> = (0..4).map(|_| kasio_shell::Stop::new()).collect();
        let mut members: Vec<Option<MemberRun<'_>>> = vec![None, None, None, None];
        members[0] = Some(Box::pin(runners[0].run_member(0, &stops[0])));
        let mut slices = 0u32;
        loop {
            slices += 1;
            assert!(slices < 3_000, "seed {seed}: the run did not finish");
            world.run(async {
                let mut wait =
                    std::pin::pin!(Sim::sleep_until(Sim::now() + Duration::from_millis(100)));
                std::future::poll_fn(|cx| {
                    for m in members.iter_mut().flatten() {
                        if let std::task::Poll::Ready(r) = m.as_mut().poll(cx) {
                            panic!("seed {seed}: a member stopped early: {r:?}");
                        }
                    }
                    wait.as_mut().poll(cx)
                })
                .await;
            });
            check_commits(&world, &ledger.lock().expect("lock"), seed);
            match slices {
                5 => members[1] = Some(Box::pin(runners[1].run_member(0, &stops[1]))),
                12 => members[2] = Some(Box::pin(runners[2].run_member(0, &stops[2]))),
                20 => {
                    // The first member stops gracefully while the others work on.
                    stops[0].stop();
                    let m = members[0].take().expect("the first member");
                    world.run(m).expect("a graceful stop");
                    check_commits(&world, &ledger.lock().expect("lock"), seed);
                }
                30 => members[3] = Some(Box::pin(runners[3].run_member(0, &stops[3]))),
                _ => {}
            }
            if slices.is_multiple_of(3) {
                let api = if slices.is_multiple_of(2) {
                    ApiKey::Fetch
                } else {
                    ApiKey::OffsetCommit
                };
                faults.inject(&mut world, api);
            }
            let done = ledger
                .lock()
                .expect("lock")
                .finished
                .values()
                .filter(|&&n| n > 0)
                .count();
            if done == RUNNER_RECORDS as usize && slices > 30 {
                break;
            }
        }
        for stop in &stops {
            stop.stop();
        }
        for m in members.into_iter().flatten() {
            world.run(m).expect("a graceful stop");
        }
        let l = ledger.lock().expect("lock");
        check_commits(&world, &l, seed);
        for p in 0..RUNNER_PARTITIONS {
            assert_eq!(
                world.cluster.committed("workers", "jobs", p),
                world.cluster.end_offset("jobs", p),
                "seed {seed}: jobs-{p} not committed to its end"
            );
        }
        let retried: i64 = (0..2)
            .map(|p| {
                let end = world.cluster.end_offset("jobs.retry", p).unwrap_or(0);
                if end > 0 {
                    assert_eq!(
                        world.cluster.committed("workers", "jobs.retry", p),
                        Some(end),
                        "seed {seed}: jobs.retry-{p} not committed to its end"
                    );
                }
                end
            })
            .sum();
        assert_eq!(
            retried > 0,
            retry_topic != "none",
            "seed {seed}: {retried} retries through the retry topic"
        );
        let twice: Vec<_> = l.finished.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            twice.is_empty(),
            "seed {seed}: processed twice: {:?}",
            &twice[..twice.len().min(5)]
        );
        let dead = (0..RUNNER_RECORDS)
            .filter(|i| draw(i.to_string().as_bytes()) % 100 == 7)
            .count();
        assert_eq!(
            world.cluster.end_offset("jobs.dlt", 0),
            Some(dead as i64),
            "seed {seed}: dead letters"
        );
        drop(l);
        world.run(producer.close());
    }
}

/// A publisher whose only broker stops for 20 s while it sends: every message ends
/// delivered or, its tries spent, dead-lettered; the status stream and the notices agree
/// with the tracker; and the tracker remembers no more than its cap of finished messages.
#[test]
fn publisher_ends_every_message_through_a_stopped_broker() {
    use futures_lite::StreamExt;
    use kasio_shell::{DeliveryStatus, Notice};
    use std::{
        collections::HashMap,
        sync::{Arc, Mutex},
    };

    let mut world = World::new(1, TOPIC, PARTITIONS);
    world.cluster.create_topic("t.dlt", 1).expect("a new topic");
    let publisher = publisher(
        &world,
        &[
            ("delivery.timeout.ms", "3000"),
            ("request.timeout.ms", "1000"),
            ("linger.ms", "5"),
            ("reconnect.backoff.max.ms", "500"),
            ("publisher.retry.attempts", "3"),
            ("publisher.tracking.max.finished", "500"),
            ("publisher.tracking.max.changes", "100000"),
        ],
    );
    let finals: Arc<Mutex<HashMap<Arc<str>, &'static str>>> = Arc::default();
    let seen = finals.clone();
    publisher.on_notice(move |n| {
        let (id, end) = match n {
            Notice::Delivered { id, .. } => (id, "delivered"),
            Notice::DeadLettered { id, .. } => (id, "dead-lettered"),
            Notice::Failed { id, .. } => (id, "failed"),
            Notice::RetryScheduled { .. } => return,
        };
        let before = seen.lock().expect("not poisoned").insert(id.clone(), end);
        assert!(before.is_none(), "{id} ended twice");
    });
    let mut statuses = publisher.statuses();
    let send = |n: usize, gap: Duration| {
        let publisher = publisher.clone();
        async move {
            let mut ids = Vec::new();
            for i in 0..n {
                let value = format!("v{i}");
                let id = publisher
                    .send(Record::new(TOPIC).value(value.as_bytes()), None)
                    .await
                    .expect("taken");
                ids.push(id);
                Sim::sleep_until(Sim::now() + gap).await;
            }
            ids
        }
    };
    let mut ids = world.run(send(1000, Duration::from_millis(2)));
    world.cluster.inject(Fault::StopBroker { broker: 1 });
    // 20 s down: the messages sent first spend their three tries, and their dead letters
    // fail too until the broker is back.
    ids.extend(world.run(send(1000, Duration::from_millis(20))));
    world.cluster.inject(Fault::StartBroker { broker: 1 });
    ids.extend(world.run(send(200, Duration::from_millis(2))));
    world
        .run(publisher.flush(Duration::from_secs(120)))
        .expect("every message finished");
    // Records the broker refuses for good go to the dead-letter topic at once.
    world.cluster.inject(Fault::FailNext {
        api: ApiKey::Produce,
        count: 1,
        error: kasio_proto::ErrorCode::InvalidRecord,
    });
    ids.extend(world.run(send(200, Duration::from_millis(2))));
    world
        .run(publisher.flush(Duration::from_secs(120)))
        .expect("every message finished");
    let counters = publisher.counters();
    assert!(
        publisher.remembered() <= 500,
        "{} statuses remembered",
        publisher.remembered()
    );
    world.run(publisher.close());
    let changes: Vec<(Arc<str>, DeliveryStatus)> = world.run((&mut statuses).collect());
    assert_eq!(statuses.missed(), 0);

    let finals = finals.lock().expect("not poisoned");
    assert_eq!(finals.len(), ids.len(), "every message ended once");
    let mut last: HashMap<Arc<str>, DeliveryStatus> = HashMap::new();
    for (id, status) in changes {
        last.insert(id, status);
    }
    let (mut delivered, mut dead) = (0u64, 0u64);
    for id in &ids {
        let end = finals.get(id).copied();
        match (end, last.get(id)) {
            (Some("delivered"), Some(DeliveryStatus::Success { .. })) => delivered += 1,
            (Some("dead-lettered"), Some(DeliveryStatus::DeadLettered { .. })) => dead += 1,
            other => panic!("{id}: {other:?}"),
        }
    }
    assert_eq!(
        (delivered, dead),
        (counters.delivered, counters.dead_lettered)
    );
    assert!(
        counters.retried > 0,
        "the outage made retries: {counters:?}"
    );
    assert!(dead > 0, "refused records were dead-lettered: {counters:?}");
    let written: i64 = (0..PARTITIONS)
        .map(|p| world.cluster.end_offset(TOPIC, p).unwrap_or(0))
        .sum();
    let dead_letters = world.cluster.end_offset("t.dlt", 0).unwrap_or(0);
    assert!(
        written >= i64::try_from(delivered).expect("small"),
        "{written} written, {delivered} delivered"
    );
    assert!(dead_letters >= i64::try_from(dead).expect("small"));
    println!(
        "{} messages: {delivered} delivered, {dead} dead-lettered, {} retries; {written} records in {TOPIC}, {dead_letters} dead letters; {:?} virtual",
        ids.len(),
        counters.retried,
        world.elapsed()
    );
}

/// One message, its first try timed out (its broker down) while nothing else is held: its retry comes due
/// on the publisher's loop's own timer, and it is delivered.
#[test]
fn publisher_retries_a_lone_message_on_its_timer() {
    use kasio_shell::DeliveryStatus;

    let mut world = World::new(1, TOPIC, PARTITIONS);
    let publisher = publisher(
        &world,
        &[
            ("delivery.timeout.ms", "3000"),
            ("request.timeout.ms", "1000"),
            ("linger.ms", "0"),
            ("publisher.retry.backoff.ms", "2000"),
            ("publisher.retry.jitter", "0"),
        ],
    );
    // Metadata first, so the record's only trouble is the broker being down.
    world.run(async {
        publisher
            .send(Record::new(TOPIC).value(b"warm-up"), None)
            .await
            .expect("taken");
        publisher
            .flush(Duration::from_secs(10))
            .await
            .expect("delivered");
    });
    world.cluster.inject(Fault::StopBroker { broker: 1 });
    let id = world.run(async {
        publisher
            .send(Record::new(TOPIC).value(b"lone"), None)
            .await
            .expect("taken")
    });
    world.run(Sim::sleep_until(Sim::now() + Duration::from_secs(4)));
    assert!(
        matches!(
            publisher.status(&id),
            Some(DeliveryStatus::RetryScheduled { attempt: 1, .. })
        ),
        "{:?}",
        publisher.status(&id)
    );
    // The broker is back before the retry is due (at 5 s).
    world.cluster.inject(Fault::StartBroker { broker: 1 });
    world
        .run(publisher.flush(Duration::from_secs(30)))
        .expect("the retry went on its own timer");
    assert!(matches!(
        publisher.status(&id),
        Some(DeliveryStatus::Success { .. })
    ));
    world.run(publisher.close());
}

/// Dropping a publisher's last handle without closing it loses nothing: its loop
/// delivers what it holds, then closes the producer, and the driver stops.
#[test]
fn a_dropped_publisher_delivers_what_it_holds_then_stops() {
    let mut world = World::new(1, TOPIC, PARTITIONS);
    let publisher = publisher(&world, &[("linger.ms", "50")]);
    world.run(async {
        for i in 0..100 {
            let value = i.to_string();
            publisher
                .send(Record::new(TOPIC).value(value.as_bytes()), None)
                .await
                .expect("taken");
        }
    });
    drop(publisher);
    assert!(world.run_until_stopped(Duration::from_secs(60)));
    let written: i64 = (0..PARTITIONS)
        .map(|p| world.cluster.end_offset(TOPIC, p).unwrap_or(0))
        .sum();
    assert_eq!(written, 100);
}

/// A typed publisher's value that does not serialize ends `Failed` at once, with its
/// notice and no try; the others are delivered.
#[test]
fn a_typed_publisher_fails_what_does_not_serialize() {
    use kasio_serde::{Context, SerializeError, Serializer, StringCodec};
    use kasio_shell::{DeliveryStatus, Notice, PublishError};
    use std::sync::{Arc, Mutex};

    /// Serializes even numbers only.
    struct Even;
    impl Serializer<u32> for Even {
        fn serialize(
            &self,
            value: &u32,
            _ctx: &Context<'_>,
            out: &mut Vec<u8>,
        ) -> Result<(), SerializeError> {
            if value % 2 == 1 {
                return Err(SerializeError::Json(format!("{value} is odd")));
            }
            out.extend_from_slice(value.to_string().as_bytes());
            Ok(())
        }
    }

    let mut world = World::new(1, TOPIC, PARTITIONS);
    let publisher = publisher(&world, &[]);
    let failed: Arc<Mutex<Vec<u32>>> = Arc::default();
    let seen = failed.clone();
    publisher.on_notice(move |n| {
        if let Notice::Failed { attempts, .. } = n {
            seen.lock().expect("not poisoned").push(*attempts);
        }
    });
    let mut typed = publisher.clone().typed(StringCodec, Even);
    let ids = world.run(async {
        let mut ids = Vec::new();
        for n in 0..10u32 {
            let sent = typed
                .send(Record::new(TOPIC), Some("k"), Some(&n), None)
                .await;
            match sent {
                Ok(id) => ids.push((n, id)),
                Err(PublishError::Encode { id, error }) => {
                    assert_eq!(n % 2, 1, "{error}");
                    ids.push((n, id));
                }
                Err(e) => panic!("{e}"),
            }
        }
        publisher
            .flush(Duration::from_secs(10))
            .await
            .expect("all ended");
        ids
    });
    for (n, id) in &ids {
        let status = publisher.status(id);
        if n % 2 == 0 {
            assert!(
                matches!(status, Some(DeliveryStatus::Success { .. })),
                "{n}: {status:?}"
            );
        } else {
            assert!(
                matches!(status, Some(DeliveryStatus::Failed { .. })),
                "{n}: {status:?}"
            );
        }
    }
    assert_eq!(
        *failed.lock().expect("not poisoned"),
        vec![0; 5],
        "five failed, untried"
    );
    world.run(publisher.close());
}
