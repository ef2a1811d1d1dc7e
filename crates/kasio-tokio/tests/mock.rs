//! The tokio producer over real sockets against kasio-mock, at volume. The scenarios every
//! runtime shares are in the workspace suite (`tests/runtimes.rs`).
#![allow(clippy::unwrap_used)]

use kasio_mock::{ClusterConfig, Fault, MockCluster};
use kasio_proto::{ApiKey, ErrorCode, records::Batches};
use kasio_tokio::{Producer, ProducerConfig, Record};
use std::collections::HashSet;

fn values(cluster: &MockCluster, topic: &'static str, partitions: i32) -> Vec<Vec<u64>> {
    (0..partitions)
        .map(|p| {
            let bytes = cluster
                .with(move |c| c.read(topic, p, 0))
                .flatten()
                .unwrap();
            let mut out = Vec::new();
            for b in Batches::new(bytes) {
                let kasio_proto::records::Batch::V2(b) = b.unwrap() else {
                    panic!("legacy batch");
                };
                for r in b.records().unwrap() {
                    let v = r.unwrap().value.unwrap();
                    out.push(std::str::from_utf8(&v).unwrap().parse().unwrap());
                }
            }
            out
        })
        .collect()
}

/// A mock cluster with the priority level topics of `jobs`, 2 partitions each.
fn level_cluster() -> MockCluster {
    let cluster = MockCluster::start(ClusterConfig::default()).unwrap();
    for t in kasio_tokio::Priority::topics("jobs") {
        cluster
            .with(move |c| c.create_topic(&t, 2).map(|_| ()))
            .unwrap()
            .unwrap();
    }
    cluster
}

/// Sends `n` records at `level` (values `<level>-<i>`) and waits for them all to land
/// in the level's topic.
async fn send_level(producer: &Producer, level: kasio_tokio::Priority, n: usize) {
    let mut deliveries = Vec::new();
    for i in 0..n {
        let v = format!("{level}-{i}");
        let record = Record::new("jobs").value(v.as_bytes());
        deliveries.push(producer.send_priority(record, level).await.unwrap());
    }
    for d in deliveries {
        assert!(d.await.unwrap().topic.ends_with(level.name()));
    }
}

/// A million keyed records while the cluster fails produce requests with
/// NOT_LEADER_OR_FOLLOWER, drops every connection and loses responses (request timeouts),
/// over and over: every record lands exactly once, in order per partition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_records_through_repeated_faults() {
    const N: u64 = 1_000_000;
    let cluster = MockCluster::start(ClusterConfig {
        brokers: 3,
        max_bytes_per_partition: 1 << 30,
        ..Default::default()
    })
    .unwrap();
    cluster
        .with(|c| c.create_topic("m", 12).map(|_| ()))
        .unwrap()
        .unwrap();
    let mut config = ProducerConfig::new(&cluster.bootstrap()).unwrap();
    config.set("batch.size", "65536").unwrap();
    config.set("request.timeout.ms", "1000").unwrap();
    let producer = Producer::new(config).unwrap();
    let mut deliveries = Vec::with_capacity(N as usize);
    let mut faults = 0;
    for i in 0..N {
        if i % 100_000 == 50_000 {
            faults += 1;
            let broker = 1 + (faults % 3);
            cluster.with(move |c| {
                c.inject(Fault::FailNext {
                    api: ApiKey::Produce,
                    count: 3,
                    error: ErrorCode::NotLeaderOrFollower,
                });
                c.inject(Fault::Blackhole {
                    api: ApiKey::Produce,
                    count: 1,
                });
                c.inject(Fault::DropConnections { broker });
            });
        }
        let key = format!("k{}", i % 1000);
        let value = i.to_string();
        let record = Record::new("m").key(key.as_bytes()).value(value.as_bytes());
        deliveries.push(producer.send(record).await.unwrap());
    }
    producer.flush().await;
    let mut placed = HashSet::with_capacity(N as usize);
    for d in deliveries {
        let m = d.await.unwrap();
        assert!(
            placed.insert((m.partition, m.offset)),
            "offset reported twice"
        );
    }
    producer.close().await;
    let logs = values(&cluster, "m", 12);
    for log in &logs {
        assert!(
            log.windows(2).all(|w| w[0] < w[1]),
            "order kept per partition"
        );
    }
    let mut seen = vec![false; N as usize];
    for &v in logs.iter().flatten() {
        assert!(
            !std::mem::replace(&mut seen[v as usize], true),
            "record {v} twice"
        );
    }
    assert!(seen.iter().all(|&s| s), "every record written");
    cluster.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_batch_reports_once_for_many_records() {
    let cluster = MockCluster::start(ClusterConfig::default()).unwrap();
    cluster
        .with(|c| c.create_topic("g", 2).map(|_| ()))
        .unwrap()
        .unwrap();
    let producer = Producer::from_properties([
        ("bootstrap.servers", cluster.bootstrap().as_str()),
        ("max.block.ms", "500"),
    ])
    .unwrap();
    let texts: Vec<String> = (0..10_000).map(|i| i.to_string()).collect();
    let mut groups = Vec::new();
    for chunk in texts.chunks(1000) {
        let records = chunk.iter().map(|v| Record::new("g").value(v.as_bytes()));
        groups.push(producer.send_batch(records).await.unwrap());
    }
    for g in groups {
        assert_eq!(g.await, Ok(1000));
    }
    let stored: Vec<u64> = values(&cluster, "g", 2).into_iter().flatten().collect();
    assert_eq!(stored.len(), 10_000);
    let missing = producer
        .send_batch((0..3).map(|_| Record::new("no-such-topic").value(b"x")))
        .await
        .unwrap();
    let asked = std::time::Instant::now();
    assert_eq!(missing.await, Err(kasio_tokio::ProduceError::UnknownTopic));
    assert!(
        asked.elapsed() < std::time::Duration::from_secs(2),
        "failed at max.block.ms"
    );
    producer.close().await;
    cluster.stop();
}

/// A batch larger than `buffer.memory` waits for room as it goes, and its one result
/// still counts every record, all of them written in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_batch_waits_for_room_in_a_small_buffer() {
    let cluster = MockCluster::start(ClusterConfig::default()).unwrap();
    cluster
        .with(|c| c.create_topic("small", 1).map(|_| ()))
        .unwrap()
        .unwrap();
    let producer = Producer::from_properties([
        ("bootstrap.servers", cluster.bootstrap().as_str()),
        ("buffer.memory", "20000"),
        ("batch.size", "4000"),
    ])
    .unwrap();
    let texts: Vec<String> = (0..20_000).map(|i| i.to_string()).collect();
    let all = producer
        .send_batch(
            texts
                .iter()
                .map(|t| Record::new("small").value(t.as_bytes())),
        )
        .await
        .unwrap();
    assert_eq!(all.await, Ok(20_000));
    let stored: Vec<u64> = values(&cluster, "small", 1).into_iter().flatten().collect();
    assert_eq!(stored, (0..20_000).collect::<Vec<u64>>());
    producer.close().await;
    cluster.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_is_a_stream_of_what_it_fetches() {
    use futures_lite::StreamExt;
    use kasio_tokio::{Consumer, ConsumerEvent, Fetched, Seek};
    let cluster = MockCluster::start(ClusterConfig::default()).unwrap();
    cluster
        .with(|c| c.create_topic("s", 2).map(|_| ()))
        .unwrap()
        .unwrap();
    let producer =
        Producer::from_properties([("bootstrap.servers", cluster.bootstrap().as_str())]).unwrap();
    let texts: Vec<String> = (0..3000).map(|i| i.to_string()).collect();
    let all = producer
        .send_batch(texts.iter().map(|t| Record::new("s").value(t.as_bytes())))
        .await
        .unwrap();
    assert_eq!(all.await, Ok(3000));
    let consumer =
        Consumer::from_properties([("bootstrap.servers", cluster.bootstrap().as_str())]).unwrap();
    consumer.assign([("s", 0), ("s", 1)]);
    consumer.seek("s", 0, Seek::Beginning);
    consumer.seek("s", 1, Seek::Beginning);
    let mut stream = consumer.stream();
    let (mut records, mut ends) = (0, 0);
    while ends < 2 {
        match stream.next().await.unwrap() {
            Fetched::Batch(b) => b.for_each(|_| records += 1).unwrap(),
            Fetched::Event(ConsumerEvent::EndOfPartition { .. }) => ends += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(records, 3000);
    drop(stream);
    consumer.close().await;
    producer.close().await;
    cluster.stop();
}

/// Delayed records over real sockets: `send_delayed` with delays of 0-3 s through tiers of
/// 1 s and 2 s, and a `DelayRelay` forwarding them: each reaches its topic once, with its
/// due time in a header, and a read_committed consumer never sees one before it is due.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_records_arrive_once_and_never_early() {
    use kasio_tokio::{Consumer, DelayRelay, Fetched};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};
    const N: u64 = 200;
    let cluster = MockCluster::start(ClusterConfig::default()).unwrap();
    for t in ["late", "late.delay.1s", "late.delay.2s"] {
        cluster
            .with(move |c| c.create_topic(t, 2).map(|_| ()))
            .unwrap()
            .unwrap();
    }
    let bootstrap = cluster.bootstrap();
    let producer = Producer::from_properties([
        ("bootstrap.servers", bootstrap.as_str()),
        ("delay.tiers", "1s,2s"),
        ("linger.ms", "1"),
    ])
    .unwrap();
    let relay = DelayRelay::from_properties(
        [
            ("bootstrap.servers", bootstrap.as_str()),
            ("delay.tiers", "1s,2s"),
            ("transactional.id", "late-relay-0"),
            ("fetch.max.wait.ms", "50"),
        ],
        &["late"],
    )
    .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = {
        let relay = relay.clone();
        tokio::spawn(async move {
            relay
                .run(async {
                    let _ = stopped.await;
                })
                .await
        })
    };
    let consumer = Consumer::from_properties([
        ("bootstrap.servers", bootstrap.as_str()),
        ("group.id", "late-readers"),
        ("isolation.level", "read_committed"),
        ("auto.offset.reset", "earliest"),
        ("fetch.max.wait.ms", "50"),
    ])
    .unwrap();
    consumer.subscribe(&["late"]).unwrap();
    let mut deliveries = Vec::new();
    for i in 0..N {
        let v = i.to_string();
        let delay = Duration::from_millis(i * 3_000 / N);
        let d = producer
            .send_delayed(
                Record::new("late").key(v.as_bytes()).value(v.as_bytes()),
                delay,
            )
            .await
            .unwrap();
        deliveries.push(d);
    }
    for d in deliveries {
        d.await.unwrap();
    }
    let mut seen = HashSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while (seen.len() as u64) < N {
        assert!(
            tokio::time::Instant::now() < deadline,
            "got {} of {N}",
            seen.len()
        );
        let Ok(Fetched::Batch(batch)) =
            tokio::time::timeout(Duration::from_millis(200), consumer.next()).await
        else {
            continue;
        };
        let now = i64::try_from(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap();
        for r in batch.iter().unwrap() {
            let r = r.unwrap();
            let due: i64 = r
                .headers()
                .flatten()
                .find(|h| &*h.key == kasio_tokio::DUE_HEADER)
                .map(|h| {
                    std::str::from_utf8(&h.value.unwrap())
                        .unwrap()
                        .parse()
                        .unwrap()
                })
                .unwrap();
            assert!(now >= due, "{}ms early", due - now);
            let i: u64 = std::str::from_utf8(&r.value.unwrap())
                .unwrap()
                .parse()
                .unwrap();
            assert!(seen.insert(i), "record {i} twice");
        }
    }
    stop.send(()).unwrap();
    let counters = running.await.unwrap().unwrap();
    // Delays of a second or more go through the tiers; shorter ones wait in the producer.
    let through_tiers = (0..N).filter(|i| i * 3_000 / N >= 1_000).count() as u64;
    assert_eq!(counters.delivered, through_tiers, "{counters:?}");
    assert!(counters.commits > 0 && counters.aborts == 0, "{counters:?}");
    consumer.close().await;
    producer.close().await;
}

/// Priority levels over real sockets: a backlog of `normal` and `low` records, then
/// `critical` ones sent while it drains. The priority consumer hands out every critical
/// record before the normal backlog is done, keeps low at its 10% share meanwhile, and
/// hands out every record once, through fetch errors, delayed fetches, dropped
/// connections and a restart of the consumer midway (its close commits what it handed
/// out; the next one starts there).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn priority_levels_go_first_and_the_guard_keeps_low_going() {
    use kasio_tokio::{Fetched, Priority, PriorityConsumer};
    const NORMAL: usize = 6_000;
    const LOW: usize = 3_000;
    const CRITICAL: usize = 300;
    let cluster = level_cluster();
    let bootstrap = cluster.bootstrap();
    let producer = Producer::from_properties([("bootstrap.servers", bootstrap.as_str())]).unwrap();
    send_level(&producer, Priority::Normal, NORMAL).await;
    send_level(&producer, Priority::Low, LOW).await;
    let start = || {
        PriorityConsumer::from_properties(
            [
                ("bootstrap.servers", bootstrap.as_str()),
                ("group.id", "workers"),
                ("auto.offset.reset", "earliest"),
                ("max.poll.records", "100"),
                ("fetch.max.wait.ms", "50"),
                ("request.timeout.ms", "1000"),
            ],
            &["jobs"],
        )
        .unwrap()
    };
    let mut jobs = start();
    let mut batches = 0_i32;
    let mut order: Vec<String> = Vec::new();
    let mut sent_critical = false;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while order.len() < NORMAL + LOW + CRITICAL {
        assert!(
            tokio::time::Instant::now() < deadline,
            "got {}",
            order.len()
        );
        let Ok(Fetched::Batch(batch)) =
            tokio::time::timeout(std::time::Duration::from_millis(500), jobs.next()).await
        else {
            continue;
        };
        batch
            .for_each(|r| order.push(String::from_utf8(r.value.unwrap().to_vec()).unwrap()))
            .unwrap();
        batches += 1;
        if batches % 15 == 0 {
            let broker = 1 + (batches / 15 % 3);
            cluster.with(move |c| {
                c.inject(Fault::FailNext {
                    api: ApiKey::Fetch,
                    count: 2,
                    error: ErrorCode::NotLeaderOrFollower,
                });
                c.inject(Fault::Delay {
                    api: ApiKey::Fetch,
                    count: 2,
                    by: std::time::Duration::from_millis(100),
                });
                c.inject(Fault::DropConnections { broker });
            });
        }
        if batches == 40 {
            jobs.close().await.unwrap();
            jobs = start();
        }
        // A slow worker: the critical records come once a fifth of the backlog is done.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        if !sent_critical && order.len() >= NORMAL / 5 {
            sent_critical = true;
            send_level(&producer, Priority::Critical, CRITICAL).await;
        }
    }
    let unique: HashSet<&String> = order.iter().collect();
    assert_eq!(unique.len(), order.len(), "a record handed out twice");
    let last = |p: &str| order.iter().rposition(|v| v.starts_with(p)).unwrap();
    assert!(
        last("critical") < last("normal"),
        "the last critical record came at {} of {}, after the normal backlog ({})",
        last("critical"),
        order.len(),
        last("normal")
    );
    let normal_done = last("normal");
    let low = order[..normal_done]
        .iter()
        .filter(|v| v.starts_with("low"))
        .count();
    let share = low as f64 / normal_done as f64;
    assert!(
        share >= 0.09,
        "low got {share:.3} while normal had a backlog"
    );
    let stats = jobs.stats();
    assert!(stats.iter().all(|s| s.queued == 0), "{stats:?}");
    jobs.close().await.unwrap();
    producer.close().await;
}

/// The priority consumer on a share group: 300 critical records sent once a fifth of a
/// normal backlog is done all come before that backlog drains, low keeps its 10% while
/// normal has a backlog, and every record ends accepted, through failed and delayed
/// share fetches, dropped connections (the broker lets go of what the member held),
/// locks shorter than the run (held records are renewed) and a restart midway (its close
/// releases what it held).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn priority_share_consumer_goes_by_level_through_faults() {
    use kasio_mock::ShareOutcome;
    use kasio_tokio::{Priority, PriorityShareConsumer, ShareFetched};
    const NORMAL: usize = 3_000;
    const LOW: usize = 1_500;
    const CRITICAL: usize = 300;
    let cluster = level_cluster();
    cluster
        .with(|c| {
            c.set_group_config("workers", "share.auto.offset.reset", "earliest");
            // Shorter than the run: held records live on renewals.
            c.set_group_config("workers", "share.record.lock.duration.ms", "2000");
        })
        .unwrap();
    let bootstrap = cluster.bootstrap();
    let producer = Producer::from_properties([("bootstrap.servers", bootstrap.as_str())]).unwrap();
    send_level(&producer, Priority::Normal, NORMAL).await;
    send_level(&producer, Priority::Low, LOW).await;
    let start = || {
        PriorityShareConsumer::from_properties(
            [
                ("bootstrap.servers", bootstrap.as_str()),
                ("group.id", "workers"),
                ("share.acknowledgement.mode", "explicit"),
                ("max.poll.records", "100"),
                ("fetch.max.wait.ms", "50"),
                ("request.timeout.ms", "1000"),
            ],
            &["jobs"],
        )
        .unwrap()
    };
    let mut jobs = start();
    // Started in one millisecond, the members still get ids of their own.
    let ids: HashSet<String> = Priority::ALL
        .iter()
        .map(|l| jobs.member(*l).member_id())
        .collect();
    assert_eq!(ids.len(), Priority::ALL.len(), "{ids:?}");
    let mut order: Vec<String> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let (mut sent_critical, mut restarted) = (false, false);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while seen.len() < NORMAL + LOW + CRITICAL {
        if tokio::time::Instant::now() >= deadline {
            break;
        }
        let Ok(ShareFetched::Record(job)) =
            tokio::time::timeout(std::time::Duration::from_millis(500), jobs.next()).await
        else {
            continue;
        };
        let value = String::from_utf8(job.record().value.clone().unwrap().to_vec()).unwrap();
        // A record the broker took back (its session closed) and delivered again comes
        // twice; one of the two acknowledgements settles it.
        let _ = job.ack();
        let new = seen.insert(value.clone());
        if new {
            order.push(value);
        }
        if new && order.len().is_multiple_of(400) {
            let broker = 1 + i32::try_from(order.len() / 400 % 3).unwrap();
            cluster.with(move |c| {
                c.inject(Fault::FailNext {
                    api: ApiKey::ShareFetch,
                    count: 2,
                    error: ErrorCode::NotLeaderOrFollower,
                });
                c.inject(Fault::Delay {
                    api: ApiKey::ShareFetch,
                    count: 2,
                    by: std::time::Duration::from_millis(100),
                });
                c.inject(Fault::DropConnections { broker });
            });
        }
        if !restarted && order.len() >= NORMAL / 2 {
            restarted = true;
            jobs.close().await;
            jobs = start();
        }
        // A slow worker: held lower levels wait several lock lengths.
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        if !sent_critical && order.len() >= NORMAL / 5 {
            sent_critical = true;
            send_level(&producer, Priority::Critical, CRITICAL).await;
        }
    }
    // Records seen once whose acknowledgement the broker refused (it had taken them
    // back) come again: the queue is read until nothing more comes.
    let mut quiet = 0;
    while quiet < 3 {
        match tokio::time::timeout(std::time::Duration::from_millis(500), jobs.next()).await {
            Ok(ShareFetched::Record(job)) => {
                quiet = 0;
                let _ = job.ack();
            }
            Ok(_) => {}
            Err(_) => quiet += 1,
        }
    }
    let stats = jobs.stats();
    // Answers of acknowledgements the broker refused come as the commit's error.
    let _ = jobs.commit().await;
    jobs.close().await;
    for t in Priority::topics("jobs") {
        for p in 0..2 {
            let t2 = t.clone();
            let outcomes = cluster
                .with(move |c| c.share_outcomes("workers", &t2, p))
                .unwrap()
                .map(|o| o.1)
                .unwrap_or_default();
            assert!(
                outcomes
                    .values()
                    .all(|o| matches!(o, ShareOutcome::Accepted(_))),
                "{t}-{p}: {:?} ({stats:?})",
                outcomes
                    .iter()
                    .filter(|(_, o)| !matches!(o, ShareOutcome::Accepted(_)))
                    .take(5)
                    .collect::<Vec<_>>()
            );
        }
    }
    assert_eq!(seen.len(), NORMAL + LOW + CRITICAL, "{stats:?}");
    let last = |p: &str| order.iter().rposition(|v| v.starts_with(p)).unwrap();
    assert!(
        last("critical") < last("normal"),
        "the last critical record came at {} of {}, after the normal backlog ({})",
        last("critical"),
        order.len(),
        last("normal")
    );
    let normal_done = last("normal");
    let low = order[..normal_done]
        .iter()
        .filter(|v| v.starts_with("low"))
        .count();
    let share = low as f64 / normal_done as f64;
    assert!(
        share >= 0.09,
        "low got {share:.3} while normal had a backlog"
    );
    producer.close().await;
}
