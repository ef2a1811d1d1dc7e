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
