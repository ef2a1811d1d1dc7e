//! The consumer against a simulated cluster in virtual time.
#![allow(clippy::unwrap_used)]

mod pair;

use kasio_core::{CommitOutcome, ConsumeError, ConsumerEvent, ErrorCode, Record, Seek};
use kasio_mock::Fault;
use kasio_proto::ApiKey;
use pair::Pair;
use std::time::Duration;

const TOPIC: &str = "events";
const PARTITIONS: i32 = 6;

/// A cluster holding `n` keyed records produced by the kasio producer.
fn filled(n: u64, seed: u64) -> Pair {
    filled_in_batches(n, seed, 4096)
}

/// As [`filled`], with batches of about `batch_size` bytes.
fn filled_in_batches(n: u64, seed: u64, batch_size: usize) -> Pair {
    let mut pair = Pair::new(3, seed, |c| c.batch_size = batch_size);
    pair.cluster.create_topic(TOPIC, PARTITIONS).unwrap();
    write(&mut pair, 0, n);
    pair
}

/// Produces records `from..to` (keyed `key-{i % 37}`, valued `i`) and waits for them.
fn write(pair: &mut Pair, from: u64, to: u64) {
    let now = pair.now;
    for i in from..to {
        let (key, value) = (format!("key-{}", i % 37), i.to_string());
        let record = Record::new(TOPIC)
            .key(key.as_bytes())
            .value(value.as_bytes());
        pair.producer.send(record, i, now).unwrap();
    }
    pair.producer.flush(now);
    pair.run_until(Duration::from_secs(60), |p| p.delivered.len() as u64 == to);
}

fn assign_all(pair: &mut Pair) {
    let parts: Vec<(&str, i32)> = (0..PARTITIONS).map(|p| (TOPIC, p)).collect();
    let now = pair.now;
    pair.consumer.as_mut().unwrap().assign(&parts, now);
}

/// Every partition of the topic read from its beginning.
fn seek_all_to_beginning(pair: &mut Pair) {
    let now = pair.now;
    let consumer = pair.consumer.as_mut().unwrap();
    for p in 0..PARTITIONS {
        consumer.seek(TOPIC, p, Seek::Beginning, now);
    }
}

fn ends(pair: &Pair) -> usize {
    pair.consumer_events
        .iter()
        .filter(|e| matches!(e, ConsumerEvent::EndOfPartition { .. }))
        .count()
}

/// (partition, offset, value) of every record handed out, in hand-out order.
fn consumed(pair: &Pair) -> Vec<(i32, i64, String)> {
    let mut out = Vec::new();
    for b in &pair.fetched {
        b.for_each(|r| {
            out.push((
                b.partition,
                r.offset,
                String::from_utf8(r.value.unwrap().to_vec()).unwrap(),
            ));
        })
        .unwrap();
    }
    out
}

fn check_matches_log(pair: &Pair, from: &[i64]) {
    let got = consumed(pair);
    for p in 0..PARTITIONS {
        let mine: Vec<(i64, String)> = got
            .iter()
            .filter(|(q, _, _)| *q == p)
            .map(|(_, o, v)| (*o, v.clone()))
            .collect();
        let log: Vec<(i64, String)> = pair
            .partition_log(TOPIC, p)
            .into_iter()
            .filter(|(o, _, _)| *o >= from[p as usize])
            .map(|(o, _, v)| (o, String::from_utf8(v).unwrap()))
            .collect();
        assert_eq!(mine, log, "partition {p}");
    }
}

#[test]
fn reads_every_partition_from_the_beginning_exactly() {
    let mut pair = filled(5000, 1);
    pair.add_consumer(|c| {
        c.set("auto.offset.reset", "earliest").unwrap();
        c.set("max.partition.fetch.bytes", "8192").unwrap();
    });
    assign_all(&mut pair);
    pair.run_until(Duration::from_secs(60), |p| ends(p) == PARTITIONS as usize);
    check_matches_log(&pair, &[0; 6]);
    assert_eq!(consumed(&pair).len(), 5000);
    let c = pair.consumer.as_ref().unwrap();
    for p in 0..PARTITIONS {
        assert_eq!(
            c.position(TOPIC, p),
            pair.cluster.end_offset(TOPIC, p),
            "position at the end of {p}"
        );
    }
}

#[test]
fn latest_sees_only_new_records_and_a_waiting_fetch_wakes_for_them() {
    let mut pair = filled(1000, 2);
    pair.add_consumer(|_| {});
    assign_all(&mut pair);
    pair.run_until(Duration::from_secs(10), |p| ends(p) == PARTITIONS as usize);
    assert!(pair.fetched.is_empty(), "nothing old");
    let start: Vec<i64> = (0..PARTITIONS)
        .map(|p| pair.cluster.end_offset(TOPIC, p).unwrap())
        .collect();
    let now = pair.now;
    for i in 1000..1100u64 {
        let value = i.to_string();
        pair.producer
            .send(Record::new(TOPIC).key(b"k").value(value.as_bytes()), i, now)
            .unwrap();
    }
    pair.producer.flush(now);
    pair.run_until(Duration::from_secs(10), |p| consumed(p).len() == 100);
    check_matches_log(&pair, &start);
}

#[test]
fn seeks_to_an_offset_and_to_a_timestamp() {
    let mut pair = filled(2000, 3);
    pair.add_consumer(|_| {});
    let now = pair.now;
    let c = pair.consumer.as_mut().unwrap();
    c.assign(&[(TOPIC, 0), (TOPIC, 1)], now);
    c.seek(TOPIC, 0, Seek::Offset(10), now);
    c.seek(TOPIC, 1, Seek::Timestamp(0), now);
    pair.run_until(Duration::from_secs(10), |p| ends(p) == 2);
    let got = consumed(&pair);
    let first0 = got.iter().find(|(p, _, _)| *p == 0).unwrap();
    assert_eq!(first0.1, 10, "partition 0 starts at the offset asked for");
    let first1 = got.iter().find(|(p, _, _)| *p == 1).unwrap();
    assert_eq!(first1.1, 0, "every record is after timestamp 0");
}

/// A seek while the lookup for the position before it is still in flight: the stale
/// answer (the end, for `auto.offset.reset=latest`) must not be taken for the seek's
/// (the beginning), or the partition starts at its end and nothing is read.
#[test]
fn a_seek_during_a_lookup_is_not_answered_by_the_stale_lookup() {
    let mut pair = filled(500, 9);
    pair.add_consumer(|_| {});
    pair.cluster.inject(Fault::Delay {
        api: ApiKey::ListOffsets,
        count: 1,
        by: Duration::from_millis(500),
    });
    let now = pair.now;
    pair.consumer.as_mut().unwrap().assign(&[(TOPIC, 0)], now);
    // The lookup of the end goes out, and waits at the broker.
    pair.run_for(Duration::from_millis(100));
    let now = pair.now;
    pair.consumer
        .as_mut()
        .unwrap()
        .seek(TOPIC, 0, Seek::Beginning, now);
    pair.run_until(Duration::from_secs(10), |p| ends(p) == 1);
    let got = consumed(&pair);
    let log_end = pair.cluster.end_offset(TOPIC, 0).unwrap();
    assert!(log_end > 0, "the partition holds records");
    assert_eq!(
        got.first().map(|(_, offset, _)| *offset),
        Some(0),
        "read from the beginning"
    );
    assert_eq!(got.len(), usize::try_from(log_end).unwrap());
}

#[test]
fn out_of_range_with_reset_none_is_reported() {
    let mut pair = filled(100, 4);
    pair.add_consumer(|c| {
        c.set("auto.offset.reset", "none").unwrap();
    });
    let now = pair.now;
    let c = pair.consumer.as_mut().unwrap();
    c.assign(&[(TOPIC, 0)], now);
    c.seek(TOPIC, 0, Seek::Offset(1_000_000), now);
    pair.run_until(Duration::from_secs(10), |p| !p.consumer_events.is_empty());
    assert!(matches!(
        &pair.consumer_events[0],
        ConsumerEvent::Error {
            error: ConsumeError::OffsetOutOfRange { offset: 1_000_000 },
            ..
        }
    ));
}

#[test]
fn fetch_faults_and_leader_moves_lose_and_repeat_nothing() {
    let mut pair = filled(3000, 5);
    pair.add_consumer(|c| {
        c.set("auto.offset.reset", "earliest").unwrap();
        c.set("max.partition.fetch.bytes", "2048").unwrap();
        c.set("request.timeout.ms", "3000").unwrap();
    });
    assign_all(&mut pair);
    for round in 0..6 {
        for _ in 0..5 {
            pair.step();
        }
        match round % 3 {
            0 => pair.cluster.inject(Fault::FailNext {
                api: ApiKey::Fetch,
                count: 2,
                error: ErrorCode::NotLeaderOrFollower,
            }),
            1 => pair.cluster.inject(Fault::DropConnections {
                broker: 1 + round % 3,
            }),
            _ => {
                let p = round % PARTITIONS;
                let next = pair.cluster.leader(TOPIC, p).unwrap() % 3 + 1;
                pair.cluster.move_leader(TOPIC, p, next).unwrap();
            }
        }
    }
    pair.run_until(Duration::from_secs(120), |p| consumed(p).len() == 3000);
    check_matches_log(&pair, &[0; 6]);
}

fn committed_events(pair: &Pair) -> Vec<&CommitOutcome> {
    pair.commits.iter().collect()
}

#[test]
fn a_commit_with_nothing_to_commit_ends_at_once() {
    let mut pair = filled(100, 6);
    pair.add_consumer(|c| {
        c.set("group.id", "idle").unwrap();
    });
    let now = pair.now;
    let consumer = pair.consumer.as_mut().unwrap();
    // No partitions yet: nothing to commit, so no request and no wait.
    let id = consumer.commit_positions(now).unwrap();
    let outcome = consumer.poll_commit().unwrap();
    assert_eq!(
        (outcome.id, outcome.offsets.len(), outcome.error),
        (id, 0, None)
    );
    let id = consumer.commit(&[], now).unwrap();
    assert_eq!(consumer.poll_commit().map(|o| o.id), Some(id));
    // Without a group there is nothing to commit to: an error at once.
    pair.add_consumer(|_| {});
    let consumer = pair.consumer.as_mut().unwrap();
    assert_eq!(consumer.commit(&[], now), Err(ConsumeError::NoGroup));
}

#[test]
fn a_commit_the_coordinator_never_stores_ends_after_default_api_timeout() {
    let mut pair = filled(100, 6);
    pair.add_consumer(|c| {
        c.set("group.id", "stuck").unwrap();
        c.set("default.api.timeout.ms", "3000").unwrap();
    });
    // The coordinator answers every commit with a retriable error.
    pair.cluster.inject(Fault::FailNext {
        api: ApiKey::OffsetCommit,
        count: 1_000_000,
        error: ErrorCode::CoordinatorLoadInProgress,
    });
    let now = pair.now;
    let id = pair
        .consumer
        .as_mut()
        .unwrap()
        .commit(&[(TOPIC, 0, 5)], now)
        .unwrap();
    pair.run_until(Duration::from_secs(10), |p| !p.commits.is_empty());
    let outcome = &pair.commits[0];
    assert_eq!(outcome.id, id);
    assert_eq!(
        outcome.error,
        Some(ConsumeError::CommitTimeout(Duration::from_secs(3)))
    );
    let waited = pair.now.duration_since(now);
    assert!(
        waited >= Duration::from_secs(3) && waited < Duration::from_secs(4),
        "ended after {waited:?}"
    );
}

#[test]
fn committed_offsets_are_where_the_next_consumer_of_the_group_starts() {
    let mut pair = filled(3000, 6);
    pair.add_consumer(|c| {
        c.set("group.id", "readers").unwrap();
        c.set("auto.offset.reset", "earliest").unwrap();
    });
    assign_all(&mut pair);
    pair.run_until(Duration::from_secs(30), |p| ends(p) == PARTITIONS as usize);
    assert_eq!(
        consumed(&pair).len(),
        3000,
        "no commits yet: from the beginning"
    );
    // Commit part way: 5 on every partition.
    let offsets: Vec<(&str, i32, i64)> = (0..PARTITIONS).map(|p| (TOPIC, p, 5)).collect();
    let now = pair.now;
    pair.consumer
        .as_mut()
        .unwrap()
        .commit(&offsets, now)
        .unwrap();
    // The coordinator moved once: the commit is retried there.
    pair.cluster.inject(Fault::FailNext {
        api: ApiKey::OffsetCommit,
        count: 1,
        error: ErrorCode::NotCoordinator,
    });
    pair.run_until(Duration::from_secs(10), |p| !committed_events(p).is_empty());
    assert!(matches!(
        committed_events(&pair)[0],
        CommitOutcome { error: None, offsets, .. } if offsets.len() == 6
    ));
    // A new consumer of the group starts at 5 on every partition.
    pair.fetched.clear();
    pair.consumer_events.clear();
    pair.add_consumer(|c| {
        c.set("group.id", "readers").unwrap();
    });
    assign_all(&mut pair);
    pair.run_until(Duration::from_secs(30), |p| ends(p) == PARTITIONS as usize);
    check_matches_log(&pair, &[5; 6]);
}

#[test]
fn a_group_without_offsets_and_reset_none_reports_it() {
    let mut pair = filled(10, 7);
    pair.add_consumer(|c| {
        c.set("group.id", "fresh").unwrap();
        c.set("auto.offset.reset", "none").unwrap();
    });
    let now = pair.now;
    pair.consumer.as_mut().unwrap().assign(&[(TOPIC, 0)], now);
    pair.run_until(Duration::from_secs(10), |p| !p.consumer_events.is_empty());
    assert!(matches!(
        &pair.consumer_events[0],
        ConsumerEvent::Error {
            error: ConsumeError::NoOffset,
            ..
        }
    ));
}

#[test]
fn committing_without_a_group_is_refused() {
    let mut pair = filled(1, 8);
    pair.add_consumer(|_| {});
    let now = pair.now;
    assert_eq!(
        pair.consumer
            .as_mut()
            .unwrap()
            .commit(&[(TOPIC, 0, 1)], now),
        Err(ConsumeError::NoGroup)
    );
}

/// Every value handed out by any consumer of the pair, with the partition and offset.
fn everything(pair: &Pair) -> Vec<(i32, i64, String)> {
    let mut out = consumed(pair);
    for e in &pair.more {
        for b in &e.fetched {
            b.for_each(|r| {
                out.push((
                    b.partition,
                    r.offset,
                    String::from_utf8(r.value.unwrap().to_vec()).unwrap(),
                ));
            })
            .unwrap();
        }
    }
    out
}

fn member(c: &mut kasio_core::ConsumerConfig) {
    c.set("group.protocol", "consumer").unwrap();
    c.set("group.id", "members").unwrap();
    c.set("auto.offset.reset", "earliest").unwrap();
    c.set("max.partition.fetch.bytes", "256").unwrap();
}

fn assigned(events: &[ConsumerEvent]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, ConsumerEvent::Assigned { .. }))
        .count()
}

#[test]
fn two_members_share_the_partitions_and_read_everything_once() {
    for seed in [9, 21, 33] {
        two_members(seed, member);
    }
}

fn classic_member(c: &mut kasio_core::ConsumerConfig) {
    member(c);
    c.set("group.protocol", "classic").unwrap();
}

#[test]
fn two_classic_members_rebalance_and_read_everything_once() {
    for seed in [9, 21, 33] {
        two_members(seed, classic_member);
    }
}

/// Subscribes the pair's consumer to the topic.
fn subscribe(pair: &mut Pair) {
    let now = pair.now;
    pair.consumer
        .as_mut()
        .unwrap()
        .subscribe(&[TOPIC], now)
        .unwrap();
}

/// Adds a member subscribed to the topic; its index in `more`.
fn join(pair: &mut Pair, member: fn(&mut kasio_core::ConsumerConfig)) -> usize {
    let b = pair.add_member(member);
    let now = pair.now;
    pair.more[b].consumer.subscribe(&[TOPIC], now).unwrap();
    b
}

/// `n` records in small batches, a member reading them (some latency, so partitions change
/// hands mid-stream) and, once it has read 300, a second member joining.
fn second_member_joins(n: u64, seed: u64, member: fn(&mut kasio_core::ConsumerConfig)) -> Pair {
    let mut pair = filled_in_batches(n, seed, 200);
    pair.latency = Duration::from_millis(20);
    pair.add_consumer(member);
    subscribe(&mut pair);
    pair.run_until(Duration::from_secs(30), |p| consumed(p).len() >= 300);
    join(&mut pair, member);
    pair
}

fn two_members(seed: u64, member: fn(&mut kasio_core::ConsumerConfig)) {
    let mut pair = second_member_joins(6000, seed, member);
    pair.run_until(Duration::from_secs(600), |p| {
        everything(p).len() >= 6000 && assigned(&p.more[0].events) > 0
    });
    // Anything read twice would show up by now.
    let until = pair.now + Duration::from_secs(20);
    while pair.now < until && pair.step() {}
    let all = everything(&pair);
    let mut values: Vec<u64> = all.iter().map(|(_, _, v)| v.parse().unwrap()).collect();
    values.sort_unstable();
    assert_eq!(
        values,
        (0..6000).collect::<Vec<_>>(),
        "every record exactly once"
    );
    let revoked = pair
        .consumer_events
        .iter()
        .any(|e| matches!(e, ConsumerEvent::Revoked { .. }));
    assert!(revoked, "the first member gave partitions up to the second");
    assert!(
        !pair.more[0].fetched.is_empty(),
        "the second member read some of the stream"
    );
}

#[test]
fn a_rebalance_is_handed_out_ahead_of_the_batches_queued_before_it() {
    let mut pair = filled_in_batches(3000, 14, 200);
    pair.latency = Duration::from_millis(20);
    pair.add_consumer(member);
    // The application is busy: batches pile up untaken while the group moves on.
    pair.hold_batches = true;
    subscribe(&mut pair);
    pair.run_until(Duration::from_secs(30), |p| {
        assigned(&p.consumer_events) > 0
    });
    let until = pair.now + Duration::from_secs(2);
    while pair.now < until && pair.step() {}
    join(&mut pair, member);
    pair.run_until(Duration::from_secs(60), |p| {
        revoked_count(&p.consumer_events) > 0
    });
    let owned = owned(&pair.consumer_events);
    let revoked = handed(&pair.consumer_events, false);
    assert!(
        !revoked.is_empty() && !owned.is_empty(),
        "{owned:?} {revoked:?}"
    );
    let consumer = pair.consumer.as_mut().unwrap();
    let mut queued = 0;
    while let Some(b) = consumer.poll_batch() {
        queued += 1;
        let tp = (b.topic.to_string(), b.partition);
        assert!(
            owned.contains(&tp),
            "a batch of {tp:?}, not owned, was still queued"
        );
    }
    assert!(
        queued > 0,
        "batches fetched before the revocation were still queued"
    );
    while let Some(e) = consumer.poll_event() {
        assert!(!e.is_rebalance(), "{e:?} was left behind the batches");
    }
}

#[test]
fn a_fenced_member_loses_its_partitions_and_joins_again() {
    let mut pair = filled(600, 10);
    pair.add_consumer(member);
    subscribe(&mut pair);
    pair.run_until(Duration::from_secs(30), |p| {
        assigned(&p.consumer_events) == 1
    });
    pair.cluster.inject(Fault::FailNext {
        api: ApiKey::ConsumerGroupHeartbeat,
        count: 1,
        error: ErrorCode::FencedMemberEpoch,
    });
    pair.run_until(Duration::from_secs(30), |p| {
        assigned(&p.consumer_events) == 2
    });
    assert!(
        pair.consumer_events
            .iter()
            .any(|e| matches!(e, ConsumerEvent::Lost { partitions } if partitions.len() == 6))
    );
}

#[test]
fn a_stable_member_heartbeats_on_the_interval() {
    let mut pair = filled(60, 12);
    pair.add_consumer(member);
    subscribe(&mut pair);
    pair.run_until(Duration::from_secs(30), |p| {
        assigned(&p.consumer_events) == 1
    });
    let before = pair.cluster.requests(ApiKey::ConsumerGroupHeartbeat);
    pair.run_for(Duration::from_secs(60));
    let sent = pair.cluster.requests(ApiKey::ConsumerGroupHeartbeat) - before;
    // One every 5 s; a member that answers every response with another one would send
    // thousands.
    assert!((10..=14).contains(&sent), "{sent} heartbeats in 60 s");
}

#[test]
fn a_silent_member_expires_and_its_partitions_move() {
    let mut pair = filled(600, 11);
    pair.add_consumer(member);
    subscribe(&mut pair);
    join(&mut pair, member);
    pair.run_until(Duration::from_secs(60), |p| {
        assigned(&p.consumer_events) > 0 && assigned(&p.more[0].events) > 0
    });
    // The first member goes silent (its process died): after the session timeout the
    // coordinator gives everything to the second.
    pair.consumer = None;
    let start = pair.elapsed();
    pair.run_until(Duration::from_secs(120), |p| {
        p.more[0]
            .events
            .iter()
            .any(|e| matches!(e, ConsumerEvent::Assigned { .. }))
            && p.more[0]
                .fetched
                .iter()
                .map(|b| b.partition)
                .collect::<std::collections::BTreeSet<_>>()
                .len()
                == 6
    });
    assert!(
        pair.elapsed() - start >= Duration::from_secs(40),
        "after the session timeout"
    );
}

#[test]
fn a_classic_member_fenced_by_a_new_generation_rejoins() {
    let mut pair = filled(600, 13);
    pair.add_consumer(classic_member);
    subscribe(&mut pair);
    pair.run_until(Duration::from_secs(30), |p| {
        assigned(&p.consumer_events) == 1
    });
    pair.cluster.inject(Fault::FailNext {
        api: ApiKey::Heartbeat,
        count: 1,
        error: ErrorCode::IllegalGeneration,
    });
    pair.run_until(Duration::from_secs(30), |p| {
        assigned(&p.consumer_events) == 2
    });
    assert!(
        pair.consumer_events
            .iter()
            .any(|e| matches!(e, ConsumerEvent::Lost { partitions } if partitions.len() == 6))
    );
    // Rejoined under the same member id: the coordinator has one member.
    assert_eq!(
        pair.cluster.requests(ApiKey::JoinGroup),
        3,
        "MEMBER_ID_REQUIRED, join, rejoin"
    );
}

#[test]
fn a_stable_classic_member_heartbeats_every_heartbeat_interval() {
    let mut pair = filled(60, 14);
    pair.add_consumer(classic_member);
    subscribe(&mut pair);
    pair.run_until(Duration::from_secs(30), |p| {
        assigned(&p.consumer_events) == 1
    });
    let before = pair.cluster.requests(ApiKey::Heartbeat);
    pair.run_for(Duration::from_secs(60));
    let sent = pair.cluster.requests(ApiKey::Heartbeat) - before;
    // heartbeat.interval.ms defaults to 3 s.
    assert!((18..=22).contains(&sent), "{sent} heartbeats in 60 s");
}

#[test]
fn a_silent_classic_member_expires_and_its_partitions_move() {
    let mut pair = filled(600, 15);
    pair.add_consumer(|c| {
        classic_member(c);
        c.set("session.timeout.ms", "10000").unwrap();
    });
    subscribe(&mut pair);
    join(&mut pair, classic_member);
    pair.run_until(Duration::from_secs(60), |p| {
        assigned(&p.consumer_events) > 0 && assigned(&p.more[0].events) > 0
    });
    pair.consumer = None;
    let start = pair.elapsed();
    pair.run_until(Duration::from_secs(120), |p| {
        p.more[0]
            .fetched
            .iter()
            .map(|b| b.partition)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
            == 6
    });
    let took = pair.elapsed() - start;
    assert!(
        took >= Duration::from_secs(10) && took < Duration::from_secs(30),
        "{took:?}"
    );
}

/// The group's committed offsets, asked of the cluster by the pair's admin client: every
/// partition up to its end, except the one whose batch the caller took last, up to that
/// batch's first offset (auto commit counts it as not done yet).
fn assert_auto_committed(pair: &mut Pair, group: &str, what: &str) {
    let out = pair
        .admin_run(|a, now| a.group_offsets(group, now))
        .unwrap();
    let kasio_core::AdminOutput::Committed(rows) = out else {
        panic!("{out:?}")
    };
    let last = pair.fetched.last().unwrap();
    for p in 0..PARTITIONS {
        let end = pair.cluster.end_offset(TOPIC, p).unwrap();
        let committed = rows.iter().find(|r| r.partition == p).map(|r| r.offset);
        let want = if p == last.partition {
            last.start_offset()
        } else {
            end
        };
        if want > 0 {
            assert_eq!(committed, Some(want), "{what}: partition {p}");
        }
    }
}

#[test]
fn auto_commit_stores_what_the_caller_is_done_with() {
    let mut pair = filled(600, 16);
    pair.add_consumer(|c| {
        c.set("group.id", "auto").unwrap();
        c.set("auto.offset.reset", "earliest").unwrap();
    });
    pair.add_admin(|_| {});
    assign_all(&mut pair);
    pair.run_until(Duration::from_secs(30), |p| consumed(p).len() == 600);
    pair.run_for(Duration::from_secs(6));
    assert_auto_committed(&mut pair, "auto", "auto commit");
    // Only what moved is committed again: an idle consumer sends no more commits.
    let commits = pair.cluster.requests(ApiKey::OffsetCommit);
    pair.run_for(Duration::from_secs(20));
    assert_eq!(pair.cluster.requests(ApiKey::OffsetCommit), commits);
}

#[test]
fn auto_commit_can_be_turned_off() {
    let mut pair = filled(100, 17);
    pair.add_consumer(|c| {
        c.set("group.id", "manual").unwrap();
        c.set("auto.offset.reset", "earliest").unwrap();
        c.set("enable.auto.commit", "false").unwrap();
    });
    assign_all(&mut pair);
    pair.run_until(Duration::from_secs(30), |p| consumed(p).len() == 100);
    pair.run_for(Duration::from_secs(20));
    assert_eq!(pair.cluster.requests(ApiKey::OffsetCommit), 0);
}

#[test]
fn a_classic_member_leaves_at_once() {
    let mut pair = filled(60, 18);
    pair.add_consumer(classic_member);
    subscribe(&mut pair);
    pair.run_until(Duration::from_secs(30), |p| {
        assigned(&p.consumer_events) == 1
    });
    let now = pair.now;
    pair.consumer
        .as_mut()
        .unwrap()
        .commit_positions(now)
        .unwrap();
    pair.consumer.as_mut().unwrap().unsubscribe(now);
    let start = pair.now;
    pair.run_until(Duration::from_secs(30), |p| {
        p.consumer.as_ref().unwrap().member_state() == Some(kasio_core::MemberState::Unsubscribed)
    });
    assert!(
        pair.now - start < Duration::from_secs(1),
        "{:?}",
        pair.now - start
    );
    assert_eq!(pair.cluster.requests(ApiKey::LeaveGroup), 1);
}

/// An unsubscribe while the member's JoinGroup or SyncGroup is on its way: the answer is
/// not taken up (that would rejoin and lose the leave); the member leaves.
#[test]
fn a_classic_member_unsubscribing_mid_join_still_leaves() {
    for api in [ApiKey::JoinGroup, ApiKey::SyncGroup] {
        let mut pair = filled(60, 19);
        pair.latency = Duration::from_millis(20);
        pair.add_consumer(classic_member);
        subscribe(&mut pair);
        pair.run_until(Duration::from_secs(30), |p| p.cluster.requests(api) > 0);
        let now = pair.now;
        pair.consumer.as_mut().unwrap().unsubscribe(now);
        pair.run_until(Duration::from_secs(10), |p| {
            p.consumer.as_ref().unwrap().member_state()
                == Some(kasio_core::MemberState::Unsubscribed)
        });
        assert!(
            pair.cluster.requests(ApiKey::LeaveGroup) >= 1,
            "{api:?}: no LeaveGroup"
        );
    }
}

/// Without `enable.auto.commit` the application commits (in a transaction, say), so a
/// rebalance taking partitions away commits nothing on its behalf: a commit of positions
/// it had not committed would skip the records of an aborted transaction.
#[test]
fn without_auto_commit_a_rebalance_commits_nothing() {
    fn manual(c: &mut kasio_core::ConsumerConfig) {
        member(c);
        c.set("enable.auto.commit", "false").unwrap();
    }
    fn classic_manual(c: &mut kasio_core::ConsumerConfig) {
        classic_member(c);
        c.set("enable.auto.commit", "false").unwrap();
    }
    for member in [manual as fn(&mut _), classic_manual] {
        let mut pair = second_member_joins(3000, 5, member);
        pair.run_until(Duration::from_secs(120), |p| {
            assigned(&p.more[0].events) > 0
                && p.consumer_events
                    .iter()
                    .any(|e| matches!(e, ConsumerEvent::Revoked { .. }))
        });
        assert_eq!(pair.cluster.requests(ApiKey::OffsetCommit), 0);
    }
}

fn cooperative_member(c: &mut kasio_core::ConsumerConfig) {
    classic_member(c);
    c.set("partition.assignment.strategy", "cooperative-sticky")
        .unwrap();
}

#[test]
fn two_cooperative_members_rebalance_and_read_everything_once() {
    for seed in [9, 21, 33] {
        two_members(seed, cooperative_member);
    }
}

/// Who owns what, from a member's events so far.
fn owned(events: &[ConsumerEvent]) -> std::collections::BTreeSet<(String, i32)> {
    let mut owned = std::collections::BTreeSet::new();
    for e in events {
        match e {
            ConsumerEvent::Assigned { partitions } => {
                owned.extend(
                    partitions
                        .iter()
                        .map(|tp| (tp.topic.to_string(), tp.partition)),
                );
            }
            ConsumerEvent::Revoked { partitions } | ConsumerEvent::Lost { partitions } => {
                for tp in partitions {
                    owned.remove(&(tp.topic.to_string(), tp.partition));
                }
            }
            _ => {}
        }
    }
    owned
}

/// The partitions of every `Assigned` event (`assigned`), or of every `Revoked` one.
fn handed(events: &[ConsumerEvent], assigned: bool) -> Vec<(String, i32)> {
    events
        .iter()
        .filter_map(|e| match (e, assigned) {
            (ConsumerEvent::Assigned { partitions }, true)
            | (ConsumerEvent::Revoked { partitions }, false) => Some(partitions),
            _ => None,
        })
        .flatten()
        .map(|tp| (tp.topic.to_string(), tp.partition))
        .collect()
}

fn revoked_count(events: &[ConsumerEvent]) -> usize {
    events
        .iter()
        .map(|e| match e {
            ConsumerEvent::Revoked { partitions } => partitions.len(),
            _ => 0,
        })
        .sum()
}

/// Steps the pair until `done`, checking after every step that no partition is owned by
/// two members at once (as their events tell it).
fn run_checking_ownership(pair: &mut Pair, limit: Duration, done: impl Fn(&Pair) -> bool) {
    let end = pair.now + limit;
    while !done(pair) {
        assert!(pair.now <= end, "not done after {limit:?}");
        assert!(pair.step(), "nothing left to happen");
        let mut seen = std::collections::BTreeSet::new();
        let all = std::iter::once(&pair.consumer_events).chain(pair.more.iter().map(|e| &e.events));
        for events in all {
            for tp in owned(events) {
                assert!(seen.insert(tp.clone()), "{tp:?} owned twice");
            }
        }
    }
}

/// cooperative-sticky (KIP-429): members join one by one and one leaves while all read;
/// no partition is ever owned by two members, a member gives up only what moves (a
/// second member takes half of the first's partitions, not all of them), and with auto
/// commit every record is read.
#[test]
fn cooperative_members_never_share_a_partition_and_move_only_what_they_must() {
    let mut pair = filled_in_batches(6000, 4, 200);
    pair.latency = Duration::from_millis(5);
    pair.add_consumer(cooperative_member);
    subscribe(&mut pair);
    run_checking_ownership(&mut pair, Duration::from_secs(30), |p| {
        owned(&p.consumer_events).len() == PARTITIONS as usize && consumed(p).len() >= 300
    });
    join(&mut pair, cooperative_member);
    run_checking_ownership(&mut pair, Duration::from_secs(120), |p| {
        owned(&p.more[0].events).len() == 3
    });
    // Half moved; the first member kept the other half throughout.
    assert_eq!(revoked_count(&pair.consumer_events), 3);
    assert_eq!(owned(&pair.consumer_events).len(), 3);

    join(&mut pair, cooperative_member);
    run_checking_ownership(&mut pair, Duration::from_secs(120), |p| {
        owned(&p.more[1].events).len() == 2
    });
    assert_eq!(revoked_count(&pair.consumer_events), 4);
    assert_eq!(revoked_count(&pair.more[0].events), 1);

    // The second member leaves: the others split its partitions.
    let now = pair.now;
    pair.more[0].consumer.unsubscribe(now);
    run_checking_ownership(&mut pair, Duration::from_secs(120), |p| {
        owned(&p.consumer_events).len() == 3 && owned(&p.more[1].events).len() == 3
    });
    run_checking_ownership(&mut pair, Duration::from_secs(600), |p| {
        let mut values: Vec<u64> = everything(p)
            .iter()
            .map(|(_, _, v)| v.parse().unwrap())
            .collect();
        values.sort_unstable();
        values.dedup();
        values.len() == 6000
    });
}

/// A pattern subscription takes every matching topic, and topics created later that match
/// join it at the next metadata refresh; others never do. Both group protocols.
#[test]
fn a_pattern_subscription_follows_the_topics_that_match() {
    for protocol in ["classic", "consumer"] {
        let mut pair = Pair::new(3, 8, |_| {});
        for t in ["orders-eu", "orders-us", "audit"] {
            pair.cluster.create_topic(t, 2).unwrap();
        }
        let now = pair.now;
        let send = |pair: &mut Pair, topic: &str, token: u64| {
            let now = pair.now;
            pair.producer
                .send(Record::new(topic).value(topic.as_bytes()), token, now)
                .unwrap();
        };
        send(&mut pair, "orders-eu", 0);
        send(&mut pair, "orders-us", 1);
        send(&mut pair, "audit", 2);
        pair.producer.flush(now);
        pair.run_until(Duration::from_secs(10), |p| p.delivered.len() == 3);
        pair.add_consumer(|c| {
            c.set("group.id", "pattern").unwrap();
            c.set("group.protocol", protocol).unwrap();
            c.set("auto.offset.reset", "earliest").unwrap();
            c.set("metadata.max.age.ms", "2000").unwrap();
        });
        let now = pair.now;
        let consumer = pair.consumer.as_mut().unwrap();
        assert!(matches!(
            consumer.subscribe_pattern("orders-(", now),
            Err(ConsumeError::InvalidPattern(_))
        ));
        consumer.subscribe_pattern("orders-.*", now).unwrap();
        let values = |p: &Pair| -> Vec<String> {
            let mut v: Vec<String> = consumed(p).into_iter().map(|(_, _, v)| v).collect();
            v.sort();
            v
        };
        pair.run_until(Duration::from_secs(60), |p| values(p).len() == 2);
        assert_eq!(values(&pair), ["orders-eu", "orders-us"], "{protocol}");

        // A new matching topic joins the subscription; a new other one does not.
        pair.cluster.create_topic("orders-asia", 3).unwrap();
        pair.cluster.create_topic("audit-2", 1).unwrap();
        send(&mut pair, "orders-asia", 3);
        send(&mut pair, "audit-2", 4);
        let now = pair.now;
        pair.producer.flush(now);
        pair.run_until(Duration::from_secs(60), |p| values(p).len() == 3);
        pair.run_for(Duration::from_secs(5));
        assert_eq!(
            values(&pair),
            ["orders-asia", "orders-eu", "orders-us"],
            "{protocol}"
        );
        let assigned: Vec<String> = handed(&pair.consumer_events, true)
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        assert!(
            assigned.iter().all(|t| t.starts_with("orders-")),
            "{assigned:?}"
        );
    }
}

/// A lookup of the beginning that fails with a retriable error (a new topic's leader not
/// ready yet) is asked again for the beginning, not the end: no record is skipped.
#[test]
fn a_failed_reset_to_the_beginning_is_retried_for_the_beginning() {
    let mut pair = filled(300, 12);
    pair.add_consumer(|_| {});
    pair.cluster.inject(Fault::FailNext {
        api: ApiKey::ListOffsets,
        count: 2,
        error: ErrorCode::NotLeaderOrFollower,
    });
    let parts: Vec<(&str, i32)> = (0..PARTITIONS).map(|p| (TOPIC, p)).collect();
    let now = pair.now;
    let consumer = pair.consumer.as_mut().unwrap();
    consumer.assign(&parts, now);
    for p in 0..PARTITIONS {
        consumer.seek(TOPIC, p, Seek::Beginning, now);
    }
    pair.run_until(Duration::from_secs(30), |p| ends(p) == PARTITIONS as usize);
    assert_eq!(
        consumed(&pair).len(),
        300,
        "every record from the beginning"
    );
}

/// KIP-320: the leader's log is truncated below what the consumer read (an unclean
/// leader election) and goes on in a new epoch. The consumer's next fetch carries the
/// epoch it last read, the leader answers where that epoch now ends, and the consumer
/// reports the truncation and reads on from there: the records written after it, none
/// skipped. With `auto.offset.reset=none` it stops with an error instead.
#[test]
fn a_truncated_log_is_detected_through_leader_epochs() {
    for reset in ["earliest", "none"] {
        let mut pair = Pair::new(1, 30, |c| c.batch_size = 300);
        pair.cluster.create_topic("t", 1).unwrap();
        let send = |pair: &mut Pair, range: std::ops::Range<u64>| {
            let now = pair.now;
            for i in range.clone() {
                pair.producer
                    .send(Record::new("t").value(i.to_string().as_bytes()), i, now)
                    .unwrap();
            }
            pair.producer.flush(now);
            pair.run_until(Duration::from_secs(30), |p| {
                p.delivered.len() as u64 == range.end
            });
        };
        send(&mut pair, 0..300);
        pair.add_consumer(|c| {
            c.set("auto.offset.reset", reset).unwrap();
        });
        let now = pair.now;
        let consumer = pair.consumer.as_mut().unwrap();
        consumer.assign(&[("t", 0)], now);
        consumer.seek("t", 0, Seek::Beginning, now);
        pair.run_until(Duration::from_secs(30), |p| consumed(p).len() == 300);

        pair.cluster.truncate("t", 0, 200).unwrap();
        let kept = pair.cluster.end_offset("t", 0).unwrap();
        assert!(kept <= 200 && kept > 0, "{kept}");
        send(&mut pair, 300..350);
        if reset == "none" {
            pair.run_until(Duration::from_secs(30), |p| {
                p.consumer_events.iter().any(|e| {
                    matches!(
                        e,
                        ConsumerEvent::Error {
                            error: ConsumeError::LogTruncation { offset: 300, truncated_at },
                            ..
                        } if *truncated_at == kept
                    )
                })
            });
            assert_eq!(
                consumed(&pair).len(),
                300,
                "nothing read past the truncation"
            );
            continue;
        }
        pair.run_until(Duration::from_secs(30), |p| consumed(p).len() == 350);
        assert!(
            pair.consumer_events.contains(&ConsumerEvent::Truncated {
                topic: "t".into(),
                partition: 0,
                from: 300,
                to: kept,
            }),
            "{:?}",
            pair.consumer_events
        );
        let after: Vec<(i64, String)> = consumed(&pair)[300..]
            .iter()
            .map(|(_, o, v)| (*o, v.clone()))
            .collect();
        let want: Vec<(i64, String)> = (0..50).map(|i| (kept + i, (300 + i).to_string())).collect();
        assert_eq!(
            after, want,
            "the new epoch's records, from where the log now ends"
        );
        // The batches tell the epoch their records were written in: the new one after.
        let first = pair.fetched.first().unwrap().leader_epoch();
        let last = pair.fetched.last().unwrap().leader_epoch();
        assert!(last > first, "epochs {first} then {last}");
    }
}

/// Fetch sessions (KIP-227): after the first full Fetch each leader gets incremental ones
/// naming only what changed, and everything is still read exactly once, through a seek
/// (a changed offset) and a pause (a partition forgotten, then added back). A partition
/// newly assigned or moved gets a full Fetch, whose answer names it even unchanged.
#[test]
fn fetches_after_the_first_are_incremental() {
    let mut pair = filled(12_000, 40);
    pair.add_consumer(|c| {
        c.set("max.partition.fetch.bytes", "2000").unwrap();
    });
    assign_all(&mut pair);
    let now = pair.now;
    let consumer = pair.consumer.as_mut().unwrap();
    for p in 0..PARTITIONS {
        consumer.seek(TOPIC, p, Seek::Beginning, now);
    }
    consumer.pause(TOPIC, 1, true, now);
    pair.run_until(Duration::from_secs(30), |p| consumed(p).len() > 4000);
    let now = pair.now;
    pair.consumer.as_mut().unwrap().pause(TOPIC, 1, false, now);
    pair.run_until(Duration::from_secs(60), |p| ends(p) == PARTITIONS as usize);
    let fetches = pair.cluster.requests(ApiKey::Fetch);
    let incremental = pair.cluster.incremental_fetches();
    assert!(
        incremental * 10 >= fetches * 8,
        "{incremental} of {fetches} fetches incremental"
    );
    check_matches_log(&pair, &[0; PARTITIONS as usize]);
}

/// A group member through each error its coordinator can answer, on both protocols:
/// coordinator moves and loading (retried, after finding the coordinator again), a
/// rebalance or a load in progress during a commit (retried), and fencing (UNKNOWN_MEMBER_ID,
/// FENCED_MEMBER_EPOCH, ILLEGAL_GENERATION: partitions lost, joined again). Each time
/// every record is read (at least once), the member ends up owning every partition, and
/// its last commit covers everything.
#[test]
fn a_member_gets_through_every_coordinator_error() {
    let classic = [
        (ApiKey::JoinGroup, ErrorCode::CoordinatorLoadInProgress),
        (ApiKey::JoinGroup, ErrorCode::NotCoordinator),
        (ApiKey::SyncGroup, ErrorCode::RebalanceInProgress),
        (ApiKey::Heartbeat, ErrorCode::NotCoordinator),
        (ApiKey::Heartbeat, ErrorCode::UnknownMemberId),
        (ApiKey::Heartbeat, ErrorCode::IllegalGeneration),
        (ApiKey::OffsetFetch, ErrorCode::CoordinatorLoadInProgress),
        (ApiKey::OffsetCommit, ErrorCode::RebalanceInProgress),
        (ApiKey::OffsetCommit, ErrorCode::CoordinatorLoadInProgress),
        (ApiKey::FindCoordinator, ErrorCode::CoordinatorNotAvailable),
    ];
    let consumer = [
        (
            ApiKey::ConsumerGroupHeartbeat,
            ErrorCode::CoordinatorLoadInProgress,
        ),
        (ApiKey::ConsumerGroupHeartbeat, ErrorCode::NotCoordinator),
        (ApiKey::ConsumerGroupHeartbeat, ErrorCode::UnknownMemberId),
        (ApiKey::ConsumerGroupHeartbeat, ErrorCode::FencedMemberEpoch),
        (ApiKey::OffsetFetch, ErrorCode::CoordinatorLoadInProgress),
        (ApiKey::OffsetCommit, ErrorCode::RebalanceInProgress),
        (ApiKey::OffsetCommit, ErrorCode::NotCoordinator),
    ];
    let cases = classic
        .iter()
        .map(|c| ("classic", c))
        .chain(consumer.iter().map(|c| ("consumer", c)));
    for (protocol, &(api, error)) in cases {
        let mut pair = filled_in_batches(600, 50, 300);
        pair.add_consumer(|c| {
            c.set("group.id", "errors").unwrap();
            c.set("group.protocol", protocol).unwrap();
            c.set("auto.offset.reset", "earliest").unwrap();
            c.set("auto.commit.interval.ms", "200").unwrap();
        });
        pair.cluster.inject(Fault::FailNext {
            api,
            count: 1,
            error,
        });
        subscribe(&mut pair);
        let what = format!("{protocol} {api:?} {error:?}");
        pair.run_until(Duration::from_secs(120), |p| {
            let mut values: Vec<String> = consumed(p).into_iter().map(|(_, _, v)| v).collect();
            values.sort();
            values.dedup();
            values.len() == 600 && owned(&p.consumer_events).len() == PARTITIONS as usize
        });
        // Fencing costs the partitions once; the rest keep them.
        let lost = pair
            .consumer_events
            .iter()
            .filter(|e| matches!(e, ConsumerEvent::Lost { .. }))
            .count();
        let fencing = matches!(
            error,
            ErrorCode::UnknownMemberId
                | ErrorCode::FencedMemberEpoch
                | ErrorCode::IllegalGeneration
        );
        assert!(lost <= usize::from(fencing), "{what}: {lost} losses");
        // Auto commit gets everything handed out but the last batch in, errors or not.
        pair.run_for(Duration::from_secs(2));
        pair.add_admin(|_| {});
        assert_auto_committed(&mut pair, "errors", &what);
    }
}

/// A static member (`group.instance.id`) told FENCED_INSTANCE_ID has been replaced by a
/// newer instance with the same id: it loses its partitions and stops with a group error
/// instead of rejoining (which would fence the newer one in turn).
#[test]
fn a_fenced_static_member_stops() {
    let mut pair = filled(300, 51);
    pair.add_consumer(|c| {
        classic_member(c);
        c.set("group.instance.id", "static-1").unwrap();
    });
    subscribe(&mut pair);
    pair.run_until(Duration::from_secs(30), |p| {
        owned(&p.consumer_events).len() == PARTITIONS as usize
    });
    pair.cluster.inject(Fault::FailNext {
        api: ApiKey::Heartbeat,
        count: 1,
        error: ErrorCode::FencedInstanceId,
    });
    pair.run_until(Duration::from_secs(30), |p| {
        p.consumer_events.iter().any(|e| {
            matches!(
                e,
                ConsumerEvent::GroupError {
                    error: ConsumeError::Broker(ErrorCode::FencedInstanceId)
                }
            )
        })
    });
    assert!(owned(&pair.consumer_events).is_empty());
    let joins = pair.cluster.requests(ApiKey::JoinGroup);
    pair.run_for(Duration::from_secs(30));
    assert_eq!(
        pair.cluster.requests(ApiKey::JoinGroup),
        joins,
        "it does not rejoin"
    );
    assert!(
        !pair
            .consumer
            .as_ref()
            .unwrap()
            .member_state()
            .is_some_and(|s| s == kasio_core::MemberState::Stable)
    );
}

/// `max.poll.records`: no handed-out batch holds more records; a larger batch comes in
/// pieces (a compressed one inflated once), and every record is read once, in order.
#[test]
fn max_poll_records_bounds_each_batch_handed_out() {
    for codec in ["none", "lz4"] {
        let mut pair = Pair::new(3, 60, |c| {
            c.batch_size = 16_384;
            c.set("compression.type", codec).unwrap();
            c.set("linger.ms", "50").unwrap();
        });
        pair.cluster.create_topic(TOPIC, PARTITIONS).unwrap();
        write(&mut pair, 0, 3000);
        pair.add_consumer(|c| {
            c.set("max.poll.records", "7").unwrap();
        });
        assign_all(&mut pair);
        seek_all_to_beginning(&mut pair);
        pair.run_until(Duration::from_secs(60), |p| consumed(p).len() == 3000);
        let mut biggest = 0;
        for b in &pair.fetched {
            let mut n = 0;
            b.for_each(|_| n += 1).unwrap();
            biggest = biggest.max(n);
            assert_eq!(b.records().unwrap().len(), n);
        }
        assert_eq!(biggest, 7, "{codec}");
        check_matches_log(&pair, &[0; PARTITIONS as usize]);
    }
}

/// Every partition to the member whose id sorts first, and some nonsense (a partition that
/// does not exist, one given twice, a member not in the group) that the leader drops.
#[derive(Debug)]
struct AllToFirst;

impl kasio_core::PartitionAssignor for AllToFirst {
    fn name(&self) -> &str {
        "all-to-first"
    }

    fn assign(
        &self,
        members: &std::collections::BTreeMap<String, kasio_core::GroupSubscription>,
        partitions: &std::collections::BTreeMap<String, i32>,
    ) -> std::collections::BTreeMap<String, Vec<(String, i32)>> {
        let mut out: std::collections::BTreeMap<String, Vec<(String, i32)>> =
            members.keys().map(|m| (m.clone(), Vec::new())).collect();
        let ids: Vec<String> = out.keys().cloned().collect();
        for (topic, &count) in partitions {
            out.get_mut(&ids[0])
                .unwrap()
                .extend((0..=count).map(|p| (topic.clone(), p)));
            if let Some(second) = ids.get(1) {
                out.get_mut(second).unwrap().push((topic.clone(), 0));
            }
        }
        out.insert("nobody".into(), vec![(TOPIC.into(), 1)]);
        out
    }
}

/// A user-supplied assignor, run by whichever member leads: its assignment is what the
/// members get, with what makes no sense left out.
#[test]
fn a_user_supplied_assignor_decides_the_assignment() {
    fn custom(c: &mut kasio_core::ConsumerConfig) {
        classic_member(c);
        c.assignors = vec![kasio_core::Assignor::Custom(std::sync::Arc::new(
            AllToFirst,
        ))];
    }
    let mut pair = filled(600, 70);
    pair.add_consumer(custom);
    subscribe(&mut pair);
    pair.run_until(Duration::from_secs(30), |p| consumed(p).len() == 600);
    join(&mut pair, custom);
    let stable =
        |c: &kasio_core::Consumer| c.member_state() == Some(kasio_core::MemberState::Stable);
    pair.run_until(Duration::from_secs(60), |p| {
        stable(&p.more[0].consumer) && stable(p.consumer.as_ref().unwrap())
    });
    pair.run_for(Duration::from_secs(10));
    // The second member's join made a new generation, which the assignor dealt.
    assert!(revoked_count(&pair.consumer_events) > 0);
    let (a, b) = (owned(&pair.consumer_events), owned(&pair.more[0].events));
    // One member has every partition (each once), the other none.
    let (all, none) = if a.len() > b.len() { (a, b) } else { (b, a) };
    assert_eq!(all.len(), PARTITIONS as usize);
    assert!(none.is_empty(), "{none:?}");
}

/// `assignment` lists the partitions; `lag` counts what is not handed out yet, from the
/// caller's position to the partition's end, reaching 0 once everything was taken.
#[test]
fn lag_counts_what_is_left_to_hand_out() {
    let mut pair = filled(600, 80);
    pair.add_consumer(|_| {});
    assign_all(&mut pair);
    let now = pair.now;
    let consumer = pair.consumer.as_mut().unwrap();
    assert_eq!(consumer.assignment().len(), PARTITIONS as usize);
    for p in 0..PARTITIONS {
        consumer.seek(TOPIC, p, Seek::Beginning, now);
        assert_eq!(consumer.lag(TOPIC, p), None, "unknown before a fetch");
    }
    pair.run_until(Duration::from_secs(30), |p| ends(p) == PARTITIONS as usize);
    let consumer = pair.consumer.as_ref().unwrap();
    for p in 0..PARTITIONS {
        assert_eq!(consumer.lag(TOPIC, p), Some(0), "partition {p}");
    }
    // New records, read as they come: no lag once they are taken.
    let now = pair.now;
    for i in 0..50u64 {
        pair.producer
            .send(Record::new(TOPIC).partition(0).value(b"x"), 1000 + i, now)
            .unwrap();
    }
    pair.producer.flush(now);
    pair.run_until(Duration::from_secs(30), |p| consumed(p).len() == 650);
    let consumer = pair.consumer.as_ref().unwrap();
    assert!((0..PARTITIONS).all(|p| consumer.lag(TOPIC, p) == Some(0)));
}

/// A member that commits by hand and holds revocations: on `Revoking` it commits the next
/// offset of what it read of those partitions, and releases them `delay` later (a slow
/// rebalance listener).
struct Listener {
    /// Per member: events looked at so far, and when to release.
    members: Vec<(usize, Option<std::time::Instant>)>,
    delay: Duration,
}

impl Listener {
    fn answer(&mut self, pair: &mut Pair) {
        let now = pair.now;
        self.members.resize(1 + pair.more.len(), (0, None));
        for (i, (seen, release)) in self.members.iter_mut().enumerate() {
            let (consumer, events, fetched) = if i == 0 {
                (
                    pair.consumer.as_mut().unwrap(),
                    &pair.consumer_events,
                    &pair.fetched,
                )
            } else {
                let e = &mut pair.more[i - 1];
                (&mut e.consumer, &e.events, &e.fetched)
            };
            for e in &events[*seen..] {
                if let ConsumerEvent::Revoking { partitions } = e {
                    let offsets: Vec<(&str, i32, i64)> = partitions
                        .iter()
                        .filter_map(|tp| {
                            let next = fetched
                                .iter()
                                .filter(|b| b.partition == tp.partition)
                                .map(kasio_core::FetchedBatch::next_offset)
                                .max()?;
                            Some((tp.topic.as_ref(), tp.partition, next))
                        })
                        .collect();
                    consumer.commit(&offsets, now).unwrap();
                    *release = Some(now + self.delay);
                }
            }
            *seen = events.len();
            if release.is_some_and(|at| now >= at) {
                consumer.release_revocation(now);
                *release = None;
            }
        }
    }
}

/// With revocations held, a member that commits by hand commits what it processed before
/// its partitions move, so through rebalances (the second member joining, then leaving)
/// every record is read exactly once, on both protocols and both kinds of rebalance, even
/// when the application takes its time.
#[test]
fn held_revocations_let_a_manual_commit_member_read_everything_exactly_once() {
    fn holding(c: &mut kasio_core::ConsumerConfig) {
        c.set("enable.auto.commit", "false").unwrap();
        c.hold_revocations = true;
    }
    fn consumer(c: &mut kasio_core::ConsumerConfig) {
        member(c);
        holding(c);
    }
    fn classic(c: &mut kasio_core::ConsumerConfig) {
        classic_member(c);
        holding(c);
    }
    fn cooperative(c: &mut kasio_core::ConsumerConfig) {
        cooperative_member(c);
        holding(c);
    }
    for (name, member) in [
        ("consumer", consumer as fn(&mut _)),
        ("classic", classic),
        ("cooperative", cooperative),
    ] {
        for seed in [4, 17] {
            let mut pair = filled_in_batches(6000, seed, 200);
            pair.latency = Duration::from_millis(20);
            pair.add_consumer(member);
            subscribe(&mut pair);
            let mut listener = Listener {
                members: Vec::new(),
                delay: Duration::from_secs(2),
            };
            pair.run_until(Duration::from_secs(30), |p| consumed(p).len() >= 300);
            join(&mut pair, member);
            let end = pair.now + Duration::from_secs(600);
            while !(everything(&pair).len() >= 6000 && assigned(&pair.more[0].events) > 0) {
                assert!(pair.now < end, "{name}: not done");
                assert!(pair.step());
                listener.answer(&mut pair);
            }
            let revoking = pair
                .consumer_events
                .iter()
                .position(|e| matches!(e, ConsumerEvent::Revoking { .. }));
            let revoked = pair
                .consumer_events
                .iter()
                .position(|e| matches!(e, ConsumerEvent::Revoked { .. }));
            assert!(
                revoking.is_some() && revoking < revoked,
                "{name}: Revoking, then Revoked: {:?}",
                pair.consumer_events
            );
            // Anything read twice would show up by now.
            let until = pair.now + Duration::from_secs(20);
            while pair.now < until && pair.step() {
                listener.answer(&mut pair);
            }
            let mut values: Vec<u64> = everything(&pair)
                .iter()
                .map(|(_, _, v)| v.parse().unwrap())
                .collect();
            values.sort_unstable();
            let read = values.len();
            values.dedup();
            assert_eq!(
                (read, values.len()),
                (6000, 6000),
                "{name} seed {seed}: (records read, distinct ones): every record exactly once"
            );
            for (events, commits) in [
                (&pair.consumer_events, &pair.commits),
                (&pair.more[0].events, &pair.more[0].commits),
            ] {
                assert!(
                    !events
                        .iter()
                        .any(|e| matches!(e, ConsumerEvent::Lost { .. }))
                        && !commits.iter().any(|c| c.error.is_some()),
                    "{name}: {events:?} {commits:?}"
                );
            }
        }
    }
}

/// A revocation the application never releases ends after half of `max.poll.interval.ms`
/// (the rebalance timeout), leaving the member time to rejoin: the group goes on.
#[test]
fn a_revocation_never_released_ends_after_the_rebalance_timeout() {
    fn holding(c: &mut kasio_core::ConsumerConfig) {
        classic_member(c);
        c.hold_revocations = true;
        c.set("max.poll.interval.ms", "20000").unwrap();
    }
    let mut pair = second_member_joins(3000, 3, holding);
    pair.run_until(Duration::from_secs(30), |p| {
        p.consumer_events
            .iter()
            .any(|e| matches!(e, ConsumerEvent::Revoking { .. }))
    });
    let held_at = pair.now;
    pair.run_until(Duration::from_secs(60), |p| {
        assigned(&p.more[0].events) > 0
            && p.consumer_events
                .iter()
                .any(|e| matches!(e, ConsumerEvent::Revoked { .. }))
    });
    let waited = pair.now - held_at;
    assert!(
        waited >= Duration::from_secs(10),
        "released after {waited:?}"
    );
    let lost = |events: &[ConsumerEvent]| {
        events
            .iter()
            .any(|e| matches!(e, ConsumerEvent::Lost { .. }))
    };
    assert!(!lost(&pair.consumer_events) && !lost(&pair.more[0].events));
}

/// A broker-side pattern (KIP-848's `SubscribedTopicRegex`): the coordinator matches the
/// topics, new ones included, and the member learns the names of the topic ids it is
/// assigned; subscribing by names afterwards withdraws the regex. The classic protocol
/// refuses it, and the coordinator a regex it cannot parse.
#[test]
fn a_broker_side_pattern_is_matched_by_the_coordinator() {
    let mut pair = Pair::new(3, 12, |_| {});
    for t in ["orders-eu", "orders-us", "audit"] {
        pair.cluster.create_topic(t, 2).unwrap();
    }
    let send = |pair: &mut Pair, topic: &str, token: u64| {
        let now = pair.now;
        pair.producer
            .send(Record::new(topic).value(topic.as_bytes()), token, now)
            .unwrap();
        pair.producer.flush(now);
    };
    send(&mut pair, "orders-eu", 0);
    send(&mut pair, "orders-us", 1);
    send(&mut pair, "audit", 2);
    pair.run_until(Duration::from_secs(10), |p| p.delivered.len() == 3);
    pair.add_consumer(|c| {
        c.set("group.id", "broker-pattern").unwrap();
        c.set("group.protocol", "consumer").unwrap();
        c.set("auto.offset.reset", "earliest").unwrap();
        c.set("metadata.max.age.ms", "2000").unwrap();
    });
    let now = pair.now;
    pair.consumer
        .as_mut()
        .unwrap()
        .subscribe_broker_pattern("orders-.*", now)
        .unwrap();
    let values = |p: &Pair| -> Vec<String> {
        let mut v: Vec<String> = consumed(p).into_iter().map(|(_, _, v)| v).collect();
        v.sort();
        v
    };
    pair.run_until(Duration::from_secs(60), |p| values(p).len() == 2);
    assert_eq!(values(&pair), ["orders-eu", "orders-us"]);

    pair.cluster.create_topic("orders-asia", 3).unwrap();
    pair.cluster.create_topic("audit-2", 1).unwrap();
    send(&mut pair, "orders-asia", 3);
    send(&mut pair, "audit-2", 4);
    pair.run_until(Duration::from_secs(60), |p| values(p).len() == 3);
    pair.run_for(Duration::from_secs(5));
    assert_eq!(values(&pair), ["orders-asia", "orders-eu", "orders-us"]);

    // Names replace the regex: the coordinator is told to drop it.
    let now = pair.now;
    pair.consumer
        .as_mut()
        .unwrap()
        .subscribe(&["audit"], now)
        .unwrap();
    pair.run_until(Duration::from_secs(60), |p| values(p).len() == 4);
    pair.run_for(Duration::from_secs(10));
    let consumer = pair.consumer.as_ref().unwrap();
    let owned: Vec<String> = consumer
        .assignment()
        .iter()
        .map(|(t, p)| format!("{t}-{p}"))
        .collect();
    assert_eq!(owned, ["audit-0", "audit-1"]);

    // A regex the coordinator cannot parse ends the membership with its error.
    let now = pair.now;
    pair.consumer
        .as_mut()
        .unwrap()
        .subscribe_broker_pattern("orders-(", now)
        .unwrap();
    pair.run_until(Duration::from_secs(30), |p| {
        p.consumer_events.iter().any(|e| {
            matches!(
                e,
                ConsumerEvent::GroupError {
                    error: ConsumeError::Broker(ErrorCode::InvalidRegularExpression)
                }
            )
        })
    });

    pair.add_member(|c| {
        c.set("group.id", "classic").unwrap();
    });
    let now = pair.now;
    assert!(matches!(
        pair.more[0]
            .consumer
            .subscribe_broker_pattern("orders-.*", now),
        Err(ConsumeError::InvalidPattern(_))
    ));
}

/// Follower fetching (KIP-392): with `client.rack`, the leaders name the replica on the
/// consumer's rack and the consumer fetches from it; when that broker stops, fetching goes
/// back to the leaders without losing or repeating a record, and returns to the rack's
/// broker once it is back.
#[test]
fn a_consumer_fetches_from_the_replica_on_its_rack() {
    let mut pair = Pair::with_cluster(
        kasio_mock::ClusterConfig {
            brokers: 3,
            seed: 31,
            racks: vec!["r1".into(), "r2".into(), "r3".into()],
            ..Default::default()
        },
        |c| c.batch_size = 200,
    );
    pair.cluster.create_topic(TOPIC, PARTITIONS).unwrap();
    write(&mut pair, 0, 3000);
    let leaders: Vec<i32> = (0..PARTITIONS)
        .map(|p| pair.cluster.leader(TOPIC, p).unwrap())
        .collect();
    assert!(leaders.iter().any(|&l| l != 2), "{leaders:?}");
    pair.add_consumer(|c| {
        c.set("client.rack", "r2").unwrap();
        c.set("max.partition.fetch.bytes", "512").unwrap();
        c.set("metadata.max.age.ms", "3000").unwrap();
    });
    assign_all(&mut pair);
    seek_all_to_beginning(&mut pair);
    let from = |pair: &Pair| -> Vec<Option<i32>> {
        let c = pair.consumer.as_ref().unwrap();
        (0..PARTITIONS).map(|p| c.fetching_from(TOPIC, p)).collect()
    };
    pair.run_until(Duration::from_secs(30), |p| consumed(p).len() >= 600);
    assert_eq!(from(&pair), vec![Some(2); PARTITIONS as usize]);

    // Broker 2 stops (its partitions' leadership moved first): back to the leaders.
    for p in 0..PARTITIONS {
        if leaders[p as usize] == 2 {
            pair.cluster.move_leader(TOPIC, p, 1).unwrap();
        }
    }
    pair.cluster.inject(Fault::StopBroker { broker: 2 });
    pair.run_until(Duration::from_secs(120), |p| consumed(p).len() >= 3000);
    assert!(
        from(&pair).iter().all(|b| *b != Some(2)),
        "{:?}",
        from(&pair)
    );

    // Back: the leaders name it again.
    pair.cluster.inject(Fault::StartBroker { broker: 2 });
    write(&mut pair, 3000, 3600);
    pair.run_until(Duration::from_secs(120), |p| {
        consumed(p).len() >= 3600 && from(p) == vec![Some(2); PARTITIONS as usize]
    });
    check_matches_log(&pair, &[0; PARTITIONS as usize]);
}

/// With auto commit, leaving the group commits everything handed out first (as the Java
/// client on close), on both protocols, before the leave: the next member starts there.
#[test]
fn auto_commit_commits_on_leaving() {
    for protocol in ["classic", "consumer"] {
        let mut pair = filled(600, 19);
        let group = format!("leaving-{protocol}");
        pair.add_consumer(|c| {
            c.set("group.id", &group).unwrap();
            c.set("group.protocol", protocol).unwrap();
            c.set("auto.offset.reset", "earliest").unwrap();
            // Longer than the test: only the leave can have committed.
            c.set("auto.commit.interval.ms", "600000").unwrap();
        });
        pair.add_admin(|_| {});
        subscribe(&mut pair);
        pair.run_until(Duration::from_secs(30), |p| consumed(p).len() == 600);
        assert_eq!(pair.cluster.requests(ApiKey::OffsetCommit), 0, "{protocol}");
        let now = pair.now;
        pair.consumer.as_mut().unwrap().unsubscribe(now);
        pair.run_until(Duration::from_secs(30), |p| {
            p.consumer.as_ref().unwrap().member_state()
                == Some(kasio_core::MemberState::Unsubscribed)
        });
        let out = pair
            .admin_run(|a, now| a.group_offsets(&group, now))
            .unwrap();
        let kasio_core::AdminOutput::Committed(rows) = out else {
            panic!("{out:?}")
        };
        for p in 0..PARTITIONS {
            let end = pair.cluster.end_offset(TOPIC, p).unwrap();
            let committed = rows.iter().find(|r| r.partition == p).map(|r| r.offset);
            if end > 0 {
                assert_eq!(committed, Some(end), "{protocol}: partition {p}");
            }
        }
    }
}
