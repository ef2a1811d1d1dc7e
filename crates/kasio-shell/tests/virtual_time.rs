//! The shell's handles on a simulated runtime ([`sim::Sim`]): real producers, consumers and
//! admins, their real drivers and kasio-mock's cluster, in virtual time on one thread with
//! no sockets. What takes minutes of timeouts on a real clock runs here in milliseconds,
//! and every run is the same.

mod sim;

use kasio_mock::Fault;
use kasio_proto::ApiKey;
use kasio_shell::{
    Admin, Consumer, ConsumerEvent, Fetched, ProduceError, Producer, Record, Seek, SendError,
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
