//! The producer against a simulated cluster in virtual time: every failure path Kafka can
//! produce, checked for loss, duplication and reordering.
#![allow(clippy::unwrap_used)]

mod pair;

use kasio_core::{ErrorCode, ProduceError, Record, SendError, partitioner::key_partition};
use kasio_mock::Fault;
use kasio_proto::ApiKey;
use pair::Pair;
use proptest::prelude::*;
use std::{collections::HashMap, time::Duration};

const TOPIC: &str = "events";

/// Sends records 0..n, keyed `key-{i % keys}`, value `i`; the token is `i`.
fn send_all(pair: &mut Pair, range: std::ops::Range<u64>, keys: u64) {
    for i in range {
        let key = format!("key-{}", i % keys);
        let value = i.to_string();
        let record = Record::new(TOPIC)
            .key(key.as_bytes())
            .value(value.as_bytes());
        let now = pair.now;
        loop {
            match pair.producer.send(record, i, now) {
                Ok(()) => break,
                Err((SendError::BufferFull, _)) => {
                    assert!(pair.step(), "stuck with a full buffer");
                }
                Err((e, _)) => panic!("send {i}: {e}"),
            }
        }
        pair.exchange();
    }
}

/// Checks the cluster holds every record of `0..n` exactly once, each partition in send
/// order, each key on its murmur2 partition, and every delivery report matches the log.
fn verify(pair: &Pair, n: u64, partitions: i32) {
    verify_allowing(pair, n, partitions, 0);
}

/// As [`verify`], but up to `ambiguous` records may instead have failed with an error that
/// says their fate is unknown; such a record is in the log at most once.
fn verify_allowing(pair: &Pair, n: u64, partitions: i32, ambiguous: usize) {
    let mut seen: HashMap<u64, (i32, i64)> = HashMap::new();
    for p in 0..partitions {
        let mut last: Option<u64> = None;
        for (offset, key, value) in pair.partition_log(TOPIC, p) {
            let i: u64 = String::from_utf8(value).unwrap().parse().unwrap();
            assert!(
                seen.insert(i, (p, offset)).is_none(),
                "record {i} written twice"
            );
            assert!(
                last.is_none_or(|l| l < i),
                "partition {p}: {i} after {last:?}"
            );
            last = Some(i);
            assert_eq!(
                key_partition(&key, partitions),
                p,
                "record {i} on the wrong partition"
            );
        }
    }
    let mut failed = 0;
    for i in 0..n {
        if let Err(e) = &pair.delivered[&i] {
            let ambiguous_error = matches!(
                e,
                ProduceError::Broker { message: Some(m), .. } if m.contains("may or may not")
            );
            assert!(ambiguous_error, "record {i} failed: {e}");
            failed += 1;
            continue;
        }
        let Some(&(p, offset)) = seen.get(&i) else {
            panic!("record {i} lost; delivery {:?}", pair.delivered.get(&i));
        };
        let meta = pair.delivered[&i].as_ref().unwrap();
        assert_eq!(
            (meta.partition, meta.offset),
            (p, offset),
            "record {i} report"
        );
    }
    assert!(failed <= ambiguous, "{failed} records failed");
}

fn setup(brokers: i32, partitions: i32, seed: u64) -> Pair {
    let mut pair = Pair::new(brokers, seed, |c| {
        c.linger = Duration::from_millis(5);
        c.batch_size = 2048;
        c.network.request_timeout = Duration::from_secs(5);
    });
    pair.cluster.create_topic(TOPIC, partitions).unwrap();
    pair
}

fn finish(pair: &mut Pair, n: u64) {
    pair.producer.flush(pair.now);
    pair.run_until(Duration::from_secs(300), |p| p.delivered.len() as u64 == n);
}

#[test]
fn delivers_keyed_records_in_order_across_brokers() {
    let mut pair = setup(3, 12, 1);
    send_all(&mut pair, 0..5000, 97);
    finish(&mut pair, 5000);
    verify(&pair, 5000, 12);
    assert!(
        pair.producer.producer_id().is_some(),
        "idempotent by default"
    );
}

#[test]
fn retries_not_leader_and_follows_a_moved_leader() {
    let mut pair = setup(3, 6, 2);
    send_all(&mut pair, 0..500, 13);
    pair.cluster.inject(Fault::FailNext {
        api: ApiKey::Produce,
        count: 3,
        error: ErrorCode::NotLeaderOrFollower,
    });
    for p in 0..6 {
        let next = pair.cluster.leader(TOPIC, p).unwrap() % 3 + 1;
        pair.cluster.move_leader(TOPIC, p, next).unwrap();
    }
    send_all(&mut pair, 500..2000, 13);
    finish(&mut pair, 2000);
    verify(&pair, 2000, 6);
}

#[test]
fn lost_responses_time_out_and_are_deduplicated() {
    let mut pair = setup(1, 4, 3);
    send_all(&mut pair, 0..300, 7);
    pair.cluster.inject(Fault::Blackhole {
        api: ApiKey::Produce,
        count: 2,
    });
    send_all(&mut pair, 300..1000, 7);
    finish(&mut pair, 1000);
    verify(&pair, 1000, 4);
}

#[test]
fn a_lost_last_response_waits_for_the_request_timeout() {
    let mut pair = setup(1, 1, 12);
    send_all(&mut pair, 0..10, 1);
    finish(&mut pair, 10);
    pair.cluster.inject(Fault::Blackhole {
        api: ApiKey::Produce,
        count: 1,
    });
    let start = pair.elapsed();
    send_all(&mut pair, 10..20, 1);
    finish(&mut pair, 20);
    verify(&pair, 20, 1);
    // Nothing else arrives on the connection, so only the 5 s request timeout reveals
    // the loss; the retry is then deduplicated by its sequence number.
    assert!(pair.elapsed() - start >= Duration::from_secs(5));
}

#[test]
fn dropped_connections_with_batches_in_flight_lose_nothing() {
    let mut pair = setup(2, 4, 4);
    for round in 0..10u64 {
        send_all(&mut pair, round * 200..(round + 1) * 200, 11);
        for _ in 0..3 {
            pair.step();
        }
        pair.cluster.inject(Fault::DropConnections {
            broker: 1 + (round % 2) as i32,
        });
    }
    finish(&mut pair, 2000);
    verify(&pair, 2000, 4);
}

#[test]
fn refused_connections_are_retried_with_backoff() {
    let mut pair = setup(1, 2, 5);
    pair.cluster.inject(Fault::RefuseConnections {
        broker: 1,
        refuse: true,
    });
    send_all(&mut pair, 0..100, 3);
    pair.run_until(Duration::from_secs(2), |p| {
        p.elapsed() >= Duration::from_secs(1)
    });
    assert!(pair.delivered.is_empty());
    pair.cluster.inject(Fault::RefuseConnections {
        broker: 1,
        refuse: false,
    });
    finish(&mut pair, 100);
    verify(&pair, 100, 2);
}

#[test]
fn out_of_order_sequence_bumps_the_epoch_without_loss() {
    let mut pair = setup(1, 3, 6);
    send_all(&mut pair, 0..200, 5);
    finish(&mut pair, 200);
    let (_, epoch) = pair.producer.producer_id().unwrap();
    pair.cluster.inject(Fault::FailNext {
        api: ApiKey::Produce,
        count: 1,
        error: ErrorCode::OutOfOrderSequenceNumber,
    });
    send_all(&mut pair, 200..400, 5);
    finish(&mut pair, 400);
    verify(&pair, 400, 3);
    assert!(
        pair.producer.producer_id().unwrap().1 > epoch,
        "epoch bumped"
    );
}

#[test]
fn a_non_retriable_error_fails_only_its_records() {
    let mut pair = setup(1, 1, 7);
    send_all(&mut pair, 0..50, 1);
    finish(&mut pair, 50);
    pair.cluster.inject(Fault::FailNext {
        api: ApiKey::Produce,
        count: 1,
        error: ErrorCode::InvalidRecord,
    });
    send_all(&mut pair, 50..60, 1);
    finish(&mut pair, 60);
    send_all(&mut pair, 60..100, 1);
    finish(&mut pair, 100);
    let failed: Vec<u64> = (0..100).filter(|i| pair.delivered[i].is_err()).collect();
    assert_eq!(failed, (50..60).collect::<Vec<_>>());
    assert!(matches!(
        pair.delivered[&50],
        Err(ProduceError::Broker {
            code: ErrorCode::InvalidRecord,
            ..
        })
    ));
    let values: Vec<u64> = pair
        .partition_log(TOPIC, 0)
        .into_iter()
        .map(|(_, _, v)| String::from_utf8(v).unwrap().parse().unwrap())
        .collect();
    assert_eq!(values, (0..50).chain(60..100).collect::<Vec<_>>());
}

#[test]
fn an_unknown_topic_fails_after_max_block() {
    let mut pair = Pair::new(1, 8, |c| c.max_block = Duration::from_secs(2));
    let now = pair.now;
    pair.producer
        .send(Record::new("missing").value(b"x"), 0, now)
        .unwrap();
    pair.run_until(Duration::from_secs(10), |p| !p.delivered.is_empty());
    assert_eq!(pair.delivered[&0], Err(ProduceError::UnknownTopic));
    assert!(pair.elapsed() >= Duration::from_secs(2));
}

#[test]
fn a_full_buffer_refuses_until_deliveries_free_it() {
    let mut pair = Pair::new(1, 9, |c| {
        c.buffer_memory = 64 * 1024;
        c.linger = Duration::from_millis(50);
    });
    pair.cluster.create_topic(TOPIC, 1).unwrap();
    let value = vec![7u8; 1000];
    let now = pair.now;
    let mut accepted = 0u64;
    while pair
        .producer
        .send(Record::new(TOPIC).value(&value), accepted, now)
        .is_ok()
    {
        accepted += 1;
    }
    assert!((50..70).contains(&accepted), "accepted {accepted}");
    pair.producer.flush(now);
    pair.run_until(Duration::from_secs(10), |p| {
        p.delivered.len() as u64 == accepted
    });
    assert_eq!(pair.producer.buffered_bytes(), 0);
    assert!(
        pair.producer
            .send(Record::new(TOPIC).value(&value), 999, pair.now)
            .is_ok()
    );
}

#[test]
fn flushed_comes_after_every_delivery_however_they_are_taken() {
    for seed in 0..4 {
        let mut pair = setup(2, 4, 40 + seed);
        send_all(&mut pair, 0..3000, 13);
        pair.producer.flush(pair.now);
        pair.run_until(Duration::from_secs(60), |p| p.flushed == 1);
        assert_eq!(pair.delivered_at_flush, [3000], "seed {seed}");
        verify(&pair, 3000, 4);
    }
}

#[test]
fn close_drains_then_closes() {
    let mut pair = setup(1, 2, 10);
    send_all(&mut pair, 0..100, 4);
    pair.producer.close(pair.now);
    pair.run_until(Duration::from_secs(10), |p| p.closed);
    assert_eq!(pair.delivered.len(), 100);
    assert!(pair.delivered.values().all(Result::is_ok));
    let now = pair.now;
    assert!(matches!(
        pair.producer.send(Record::new(TOPIC), 1000, now),
        Err((SendError::Closed, 1000))
    ));
}

#[test]
fn the_same_seed_replays_the_same_run() {
    let run = |seed| {
        let mut pair = setup(3, 6, seed);
        pair.cluster.inject(Fault::Blackhole {
            api: ApiKey::Produce,
            count: 1,
        });
        send_all(&mut pair, 0..300, 300);
        finish(&mut pair, 300);
        let mut placement: Vec<(u64, i32, i64)> = pair
            .delivered
            .iter()
            .map(|(i, m)| {
                let m = m.as_ref().unwrap();
                (*i, m.partition, m.offset)
            })
            .collect();
        placement.sort_unstable();
        (placement, pair.elapsed())
    };
    assert_eq!(run(11), run(11));
}

#[derive(Debug, Clone)]
enum Step {
    Send(u16),
    Fail(u8, u8),
    Blackhole,
    Delay(u16),
    Drop(u8),
    MoveLeader(u8, u8),
    Wait(u16),
}

fn step_strategy() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (1u16..200).prop_map(Step::Send),
        1 => (0u8..8, 1u8..3).prop_map(|(e, n)| Step::Fail(e, n)),
        1 => Just(Step::Blackhole),
        1 => (1u16..3000).prop_map(Step::Delay),
        1 => (1u8..=3).prop_map(Step::Drop),
        1 => (0u8..6, 1u8..=3).prop_map(|(p, b)| Step::MoveLeader(p, b)),
        2 => (1u16..2000).prop_map(Step::Wait),
    ]
}

/// Errors a Produce can get that leave nothing written; the last two make an idempotent
/// producer bump its epoch.
const RETRIABLE: [ErrorCode; 8] = [
    ErrorCode::NotLeaderOrFollower,
    ErrorCode::RequestTimedOut,
    ErrorCode::NotEnoughReplicas,
    ErrorCode::NotEnoughReplicasAfterAppend,
    ErrorCode::NetworkException,
    ErrorCode::CorruptMessage,
    ErrorCode::OutOfOrderSequenceNumber,
    ErrorCode::UnknownProducerId,
];

/// Runs a fault schedule and checks that nothing was lost, duplicated or reordered.
fn run_schedule(seed: u64, latency: Duration, steps: &[Step]) {
    let mut pair = setup(3, 6, seed);
    pair.latency = latency;
    let mut sent = 0u64;
    for step in steps {
        match *step {
            Step::Send(n) => {
                let n = u64::from(n);
                send_all(&mut pair, sent..sent + n, 23);
                sent += n;
            }
            Step::Fail(e, count) => pair.cluster.inject(Fault::FailNext {
                api: ApiKey::Produce,
                count: u32::from(count),
                error: RETRIABLE[usize::from(e)],
            }),
            Step::Blackhole => pair.cluster.inject(Fault::Blackhole {
                api: ApiKey::Produce,
                count: 1,
            }),
            Step::Delay(ms) => pair.cluster.inject(Fault::Delay {
                api: ApiKey::Produce,
                count: 1,
                by: Duration::from_millis(u64::from(ms)),
            }),
            Step::Drop(b) => pair.cluster.inject(Fault::DropConnections {
                broker: i32::from(b),
            }),
            Step::MoveLeader(p, b) => pair
                .cluster
                .move_leader(TOPIC, i32::from(p), i32::from(b))
                .unwrap(),
            Step::Wait(ms) => {
                let until = pair.now + Duration::from_millis(u64::from(ms));
                while pair.now < until && pair.step() {}
            }
        }
    }
    finish(&mut pair, sent);
    // A lost response followed by an injected sequence error is the one ambiguous case:
    // such a batch fails with an error saying so, and is never written twice.
    verify_allowing(&pair, sent, 6, sent as usize);
}

#[test]
fn a_lost_response_then_a_sequence_error_resolves_before_the_bump() {
    // Found by the proptest below: a refused batch ahead of one whose outcome was unknown
    // once deadlocked the epoch bump.
    let steps = [
        Step::Send(1),
        Step::Wait(6),
        Step::Blackhole,
        Step::Send(164),
        Step::Send(194),
        Step::Blackhole,
        Step::Fail(6, 1),
    ];
    run_schedule(0, Duration::from_micros(1), &steps);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Random fault schedules never lose, duplicate or reorder an idempotent producer's
    /// records.
    #[test]
    fn random_faults_keep_exactly_once_in_order(
        seed in any::<u64>(),
        latency_us in 0u64..3000,
        steps in proptest::collection::vec(step_strategy(), 1..40),
    ) {
        run_schedule(seed, Duration::from_micros(latency_us), &steps);
    }
}

#[test]
fn a_failed_first_batch_is_not_overtaken() {
    // A broker takes any first sequence from a producer it has no state for, so a second
    // batch in flight would be written before the first one's retry.
    let mut pair = setup(1, 1, 13);
    pair.cluster.inject(Fault::FailNext {
        api: ApiKey::Produce,
        count: 1,
        error: ErrorCode::NotLeaderOrFollower,
    });
    // Buffered before anything connects, so the first drain pipelines several batches.
    let now = pair.now;
    for i in 0..2000u64 {
        let value = i.to_string();
        let record = Record::new(TOPIC).key(b"key-0").value(value.as_bytes());
        pair.producer.send(record, i, now).unwrap();
    }
    finish(&mut pair, 2000);
    verify(&pair, 2000, 1);
}

#[test]
fn an_unknown_topic_fails_after_max_block_beside_a_known_one() {
    let mut pair = setup(1, 14, 1);
    send_all(&mut pair, 0..10, 1);
    finish(&mut pair, 10);
    // The shell sleeps; the send must wake it for the max.block.ms deadline it creates.
    pair.sleep();
    let start = pair.elapsed();
    let now = pair.now;
    pair.producer
        .send(Record::new("missing").value(b"x"), 10, now)
        .unwrap();
    pair.run_until(Duration::from_secs(100), |p| p.delivered.len() == 11);
    assert_eq!(pair.delivered[&10], Err(ProduceError::UnknownTopic));
    let waited = pair.elapsed() - start;
    assert!(
        waited >= Duration::from_secs(60) && waited < Duration::from_secs(61),
        "{waited:?}"
    );
}

#[test]
fn a_broker_stopped_and_started_again_loses_and_repeats_nothing() {
    let mut pair = setup(3, 6, 21);
    send_all(&mut pair, 0..1000, 31);
    pair.run_for(Duration::from_millis(20));
    // Broker 2 crashes with batches in flight, and comes back with its data 10 s later.
    pair.cluster.inject(Fault::StopBroker { broker: 2 });
    send_all(&mut pair, 1000..2000, 31);
    pair.run_for(Duration::from_secs(10));
    pair.cluster.inject(Fault::StartBroker { broker: 2 });
    send_all(&mut pair, 2000..3000, 31);
    finish(&mut pair, 3000);
    verify(&pair, 3000, 6);
}

#[test]
fn a_half_closed_connection_times_out_and_is_replaced() {
    let mut pair = setup(1, 2, 22);
    send_all(&mut pair, 0..200, 5);
    finish(&mut pair, 200);
    pair.cluster.inject(Fault::HalfClose { broker: 1 });
    let start = pair.elapsed();
    send_all(&mut pair, 200..400, 5);
    finish(&mut pair, 400);
    verify(&pair, 400, 2);
    // Nothing answered until the request timeout (5 s here) closed the connection.
    assert!(pair.elapsed() - start >= Duration::from_secs(5));
}
