//! What only the blocking API has: closing on drop, and iterating over a consumer. The
//! scenarios every runtime shares are in the workspace suite (`tests/runtimes.rs`).
#![allow(clippy::unwrap_used)]

use kasio_blocking::{Consumer, ConsumerEvent, Fetched, Producer, Record, Seek};
use kasio_mock::{ClusterConfig, MockCluster};
use std::time::{Duration, Instant};

#[test]
fn dropping_the_last_producer_delivers_what_was_buffered() {
    let cluster = MockCluster::start(ClusterConfig::default()).unwrap();
    cluster
        .with(|c| c.create_topic("d", 2).map(|_| ()))
        .unwrap()
        .unwrap();
    let producer = Producer::from_properties([
        ("bootstrap.servers", cluster.bootstrap().as_str()),
        ("linger.ms", "1000"),
    ])
    .unwrap();
    let clone = producer.clone();
    let texts: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
    let batch = clone
        .send_batch(texts.iter().map(|t| Record::new("d").value(t.as_bytes())))
        .unwrap();
    drop(clone);
    assert!(producer.outstanding() > 0, "still lingering");
    let started = Instant::now();
    drop(producer);
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "close does not wait out linger.ms"
    );
    assert_eq!(batch.wait(), Ok(1000));
    let end = |p| {
        cluster
            .with(move |c| c.end_offset("d", p))
            .unwrap()
            .unwrap()
    };
    assert_eq!(end(0) + end(1), 1000);
    cluster.stop();
}

#[test]
fn a_consumer_iterates_until_the_caller_stops() {
    let cluster = MockCluster::start(ClusterConfig::default()).unwrap();
    cluster
        .with(|c| c.create_topic("i", 1).map(|_| ()))
        .unwrap()
        .unwrap();
    let producer =
        Producer::from_properties([("bootstrap.servers", cluster.bootstrap().as_str())]).unwrap();
    for i in 0..500 {
        // The flush below waits for every delivery.
        let _delivery = producer
            .send(Record::new("i").value(format!("{i}").as_bytes()))
            .unwrap();
    }
    producer.flush();
    let consumer =
        Consumer::from_properties([("bootstrap.servers", cluster.bootstrap().as_str())]).unwrap();
    consumer.assign([("i", 0)]);
    consumer.seek("i", 0, Seek::Beginning);
    let mut next = 0;
    for fetched in &consumer {
        match fetched {
            Fetched::Batch(b) => b
                .for_each(|r| {
                    assert_eq!(r.offset, next);
                    assert_eq!(r.value.unwrap(), format!("{next}").as_bytes());
                    next += 1;
                })
                .unwrap(),
            Fetched::Event(ConsumerEvent::EndOfPartition { .. }) => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(next, 500);
    assert!(
        consumer.poll(Duration::from_millis(50)).is_none(),
        "nothing more"
    );
    cluster.stop();
}

#[test]
fn closing_before_the_last_drop_does_not_hang() {
    let cluster = MockCluster::start(ClusterConfig::default()).unwrap();
    let producer =
        Producer::from_properties([("bootstrap.servers", cluster.bootstrap().as_str())]).unwrap();
    producer.close();
    producer.flush();
    producer.close();
    let started = Instant::now();
    drop(producer);
    assert!(started.elapsed() < Duration::from_secs(1));
    cluster.stop();
}

#[test]
fn a_share_consumer_writes_dead_letters_with_the_reason_then_rejects() {
    use kasio_blocking::{DeadLettered, ShareConsumer, ShareFetched};
    let cluster = MockCluster::start(ClusterConfig::default()).unwrap();
    cluster
        .with(|c| {
            c.create_topic("jobs", 1)?;
            c.create_topic("jobs.dlt", 1)?;
            c.set_group_config("workers", "share.auto.offset.reset", "earliest");
            // The mock's share.version is 1: a broker topic named here writes nothing, so
            // the client writes its own dead letters.
            c.set_group_config("workers", "errors.deadletterqueue.topic.name", "dlq.jobs");
            Ok::<_, kasio_mock::CreateTopicError>(())
        })
        .unwrap()
        .unwrap();
    let bootstrap = cluster.bootstrap();
    let producer = Producer::from_properties([("bootstrap.servers", bootstrap.as_str())]).unwrap();
    for i in 0..10 {
        let value = i.to_string();
        let _ = producer
            .send(
                Record::new("jobs")
                    .key(b"k")
                    .value(value.as_bytes())
                    .headers(&[("trace", b"t1")]),
            )
            .unwrap();
    }
    producer.flush();
    let queue = ShareConsumer::from_properties([
        ("bootstrap.servers", bootstrap.as_str()),
        ("group.id", "workers"),
        ("share.acknowledgement.mode", "explicit"),
    ])
    .unwrap();
    queue.dead_letter(producer.dead_letter("jobs.dlt"));
    queue.subscribe(&["jobs"]);
    let mut written = 0;
    let until = Instant::now() + Duration::from_secs(20);
    while written < 10 && Instant::now() < until {
        if let Some(ShareFetched::Record(job)) = queue.poll(Duration::from_millis(200)) {
            match job.reject_with_blocking("not a job") {
                Ok(DeadLettered::Client(meta)) => assert_eq!(&*meta.topic, "jobs.dlt"),
                other => panic!("{other:?}"),
            }
            written += 1;
        }
    }
    assert_eq!(written, 10);
    queue.commit_sync().unwrap();
    let outcomes = cluster
        .with(|c| c.share_outcomes("workers", "jobs", 0))
        .unwrap()
        .unwrap()
        .1;
    assert_eq!(outcomes.len(), 10);
    assert!(
        outcomes
            .values()
            .all(|o| *o == kasio_mock::ShareOutcome::Archived(1)),
        "{outcomes:?}"
    );
    let reader = Consumer::from_properties([("bootstrap.servers", bootstrap.as_str())]).unwrap();
    reader.assign([("jobs.dlt", 0)]);
    reader.seek("jobs.dlt", 0, Seek::Beginning);
    let mut letters = Vec::new();
    for fetched in &reader {
        match fetched {
            Fetched::Batch(b) => letters.extend(b.iter().unwrap().map(Result::unwrap)),
            Fetched::Event(ConsumerEvent::EndOfPartition { .. }) => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(letters.len(), 10);
    for (i, r) in letters.iter().enumerate() {
        assert_eq!(r.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(r.value.as_deref(), Some(i.to_string().as_bytes()));
        let headers: Vec<(String, Vec<u8>)> = r
            .headers()
            .map(|h| {
                let h = h.unwrap();
                (h.key.to_string(), h.value.unwrap_or_default().to_vec())
            })
            .collect();
        let get = |k: &str| {
            headers
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| String::from_utf8(v.clone()).unwrap())
        };
        assert_eq!(
            get("trace").as_deref(),
            Some("t1"),
            "the record's own headers"
        );
        assert_eq!(get("__dlq.errors.topic").as_deref(), Some("jobs"));
        assert_eq!(get("__dlq.errors.partition").as_deref(), Some("0"));
        assert_eq!(get("__dlq.errors.offset"), Some(i.to_string()));
        assert_eq!(get("__dlq.errors.group").as_deref(), Some("workers"));
        assert_eq!(get("__dlq.errors.delivery.count").as_deref(), Some("1"));
        assert_eq!(get("__dlq.errors.message").as_deref(), Some("not a job"));
    }
    drop(queue);
    cluster.stop();
}
