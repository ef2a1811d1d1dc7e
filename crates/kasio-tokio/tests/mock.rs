//! The tokio producer over real sockets against kasio-mock, faults included.
#![allow(clippy::unwrap_used)]

use kasio_mock::{ClusterConfig, Fault, MockCluster};
use kasio_proto::{ApiKey, ErrorCode, records::Batches};
use kasio_tokio::{Admin, NewTopic, Producer, ProducerConfig, Record};
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produces_through_faults_exactly_once_in_order() {
    let cluster = MockCluster::start(ClusterConfig {
        brokers: 3,
        ..Default::default()
    })
    .unwrap();
    cluster
        .with(|c| c.create_topic("t", 6).map(|_| ()))
        .unwrap()
        .unwrap();
    let mut config = ProducerConfig::new(&cluster.bootstrap()).unwrap();
    config.set("linger.ms", "2").unwrap();
    config.set("request.timeout.ms", "2000").unwrap();
    config.set("delivery.timeout.ms", "60000").unwrap();
    let producer = Producer::new(config).unwrap();
    let mut deliveries = Vec::new();
    for i in 0..20_000u64 {
        if i % 4000 == 1000 {
            cluster.with(|c| {
                c.inject(Fault::FailNext {
                    api: ApiKey::Produce,
                    count: 2,
                    error: ErrorCode::NotLeaderOrFollower,
                });
                c.inject(Fault::DropConnections { broker: 2 });
                c.inject(Fault::Blackhole {
                    api: ApiKey::Produce,
                    count: 1,
                });
            });
        }
        let key = format!("k{}", i % 50);
        let value = i.to_string();
        let d = producer
            .send(Record::new("t").key(key.as_bytes()).value(value.as_bytes()))
            .await
            .unwrap();
        deliveries.push(d);
    }
    producer.flush().await;
    let mut placed = HashSet::new();
    for d in deliveries {
        let m = d.await.unwrap();
        assert!(placed.insert((m.partition, m.offset)));
    }
    producer.close().await;
    let logs = values(&cluster, "t", 6);
    let mut all: Vec<u64> = logs.iter().flatten().copied().collect();
    for log in &logs {
        assert!(
            log.windows(2).all(|w| w[0] < w[1]),
            "order kept per partition"
        );
    }
    all.sort_unstable();
    assert_eq!(
        all,
        (0..20_000).collect::<Vec<_>>(),
        "every record exactly once"
    );
    cluster.stop();
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

#[tokio::test]
async fn an_unreachable_bootstrap_fails_sends_after_max_block() {
    let producer = Producer::from_properties([
        ("bootstrap.servers", "127.0.0.1:1"),
        ("max.block.ms", "300"),
    ])
    .unwrap();
    let err = producer
        .send_and_wait(Record::new("t").value(b"x"))
        .await
        .unwrap_err();
    assert_eq!(err, kasio_tokio::ProduceError::UnknownTopic);
    producer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumes_what_was_produced_through_dropped_connections() {
    use kasio_tokio::{Consumer, ConsumerEvent, Fetched, Seek};
    let cluster = MockCluster::start(ClusterConfig {
        brokers: 2,
        ..Default::default()
    })
    .unwrap();
    cluster
        .with(|c| c.create_topic("c", 4).map(|_| ()))
        .unwrap()
        .unwrap();
    let producer =
        Producer::from_properties([("bootstrap.servers", cluster.bootstrap().as_str())]).unwrap();
    for i in 0..20_000u64 {
        let key = format!("k{}", i % 10);
        let value = i.to_string();
        // The flush below waits for every delivery.
        let _delivery = producer
            .send(Record::new("c").key(key.as_bytes()).value(value.as_bytes()))
            .await
            .unwrap();
    }
    producer.flush().await;
    producer.close().await;
    let consumer = Consumer::from_properties([
        ("bootstrap.servers", cluster.bootstrap().as_str()),
        ("max.partition.fetch.bytes", "4096"),
    ])
    .unwrap();
    consumer.assign(&[("c", 0), ("c", 1), ("c", 2), ("c", 3)]);
    for p in 0..4 {
        consumer.seek("c", p, Seek::Beginning);
    }
    let mut got: Vec<Vec<u64>> = vec![Vec::new(); 4];
    let mut ends = HashSet::new();
    let mut batches = 0;
    while ends.len() < 4 {
        match consumer.next().await {
            Fetched::Batch(b) => {
                batches += 1;
                if batches % 20 == 0 {
                    cluster.with(|c| c.inject(Fault::DropConnections { broker: 1 }));
                }
                let p = b.partition as usize;
                b.for_each(|r| {
                    got[p].push(
                        std::str::from_utf8(r.value.unwrap())
                            .unwrap()
                            .parse()
                            .unwrap(),
                    );
                })
                .unwrap();
            }
            Fetched::Event(ConsumerEvent::EndOfPartition { partition, .. }) => {
                ends.insert(partition);
            }
            other => panic!("{other:?}"),
        }
    }
    consumer.close();
    assert_eq!(
        got,
        values(&cluster, "c", 4),
        "every partition exactly as stored"
    );
    assert_eq!(got.iter().map(Vec::len).sum::<usize>(), 20_000);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_calls_run_concurrently_and_survive_dropped_connections() {
    let cluster = MockCluster::start(ClusterConfig {
        brokers: 3,
        ..Default::default()
    })
    .unwrap();
    let admin =
        Admin::from_properties([("bootstrap.servers", cluster.bootstrap().as_str())]).unwrap();
    let names: Vec<String> = (0..20).map(|i| format!("t{i}")).collect();
    // Twenty creations at once, with every connection to broker 1 dropped meanwhile and
    // the controller moving twice: each call still finishes, once.
    cluster.with(|c| {
        c.inject(Fault::FailNext {
            api: ApiKey::CreateTopics,
            count: 2,
            error: ErrorCode::NotController,
        });
    });
    let calls = names.iter().map(|n| {
        let admin = admin.clone();
        let n = n.clone();
        tokio::spawn(async move { admin.create_topics(&[NewTopic::new(&n, 2, 1)], false).await })
    });
    let handles: Vec<_> = calls.collect();
    cluster.with(|c| c.inject(Fault::DropConnections { broker: 1 }));
    for h in handles {
        let rs = h.await.unwrap().unwrap();
        assert!(rs[0].error.is_none(), "{rs:?}");
    }
    let listed = admin.list_topics(false).await.unwrap();
    let mut got: Vec<String> = listed.into_iter().map(|t| t.name).collect();
    got.sort();
    let mut want = names.clone();
    want.sort();
    assert_eq!(got, want);
    admin.close();
    assert_eq!(
        admin.describe_cluster().await,
        Err(kasio_tokio::AdminError::Closed)
    );
}
