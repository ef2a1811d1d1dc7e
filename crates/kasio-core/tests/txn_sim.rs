//! The transactional producer against kasio-mock's transaction coordinator in virtual
//! time: commits seen by read_committed, aborts never; offsets committed with the
//! transaction; coordinator moves and busy coordinators retried; a failed record or a
//! refused commit making the transaction abortable; fencing (injected, or by a second
//! producer with the same id) fatal; a stale epoch renewed after an abort; a transaction
//! timing out; every operation checked against every state.
#![allow(clippy::unwrap_used)]

mod pair;

use kasio_core::{
    AdminOutput, ConsumerEvent, ErrorCode, GroupMetadata, ProduceError, Record, TxnError, TxnEvent,
    TxnOp, TxnState,
};
use kasio_mock::Fault;
use kasio_proto::ApiKey;
use pair::Pair;
use std::time::Duration;

fn transactional() -> Pair {
    transactional_on(1)
}

/// A transactional producer, initialized, on a cluster whose finalized
/// `transaction.version` is `version`.
fn transactional_on(version: i16) -> Pair {
    let cluster = kasio_mock::ClusterConfig {
        brokers: 3,
        seed: 7,
        transaction_version: version,
        ..Default::default()
    };
    let mut pair = Pair::with_cluster(cluster, |c| {
        c.set("transactional.id", "copier").unwrap();
        c.set("linger.ms", "5").unwrap();
    });
    for t in ["a", "b", "in"] {
        pair.cluster.create_topic(t, 3).unwrap();
    }
    let now = pair.now;
    pair.producer.init_transactions(now).unwrap();
    pair.run_until(Duration::from_secs(10), |p| !p.txn_events.is_empty());
    assert_eq!(pair.txn_events.pop(), Some(TxnEvent::Initialized));
    pair
}

/// Sends `range` to topics a and b (both, "both or neither") in the open transaction.
fn send_both(pair: &mut Pair, range: std::ops::Range<u64>) {
    let now = pair.now;
    for i in range {
        let v = i.to_string();
        pair.producer
            .send(Record::new("a").value(v.as_bytes()), 2 * i, now)
            .unwrap();
        pair.producer
            .send(Record::new("b").value(v.as_bytes()), 2 * i + 1, now)
            .unwrap();
    }
}

fn finish(pair: &mut Pair, commit: bool) -> TxnEvent {
    let now = pair.now;
    let before = pair.txn_events.len();
    if commit {
        pair.producer.commit_transaction(now).unwrap();
    } else {
        pair.producer.abort_transaction(now).unwrap();
    }
    pair.run_until(Duration::from_secs(30), |p| p.txn_events.len() > before);
    pair.txn_events.last().cloned().unwrap()
}

/// What a read_committed consumer reads from `topic`: every value, sorted.
fn committed(pair: &mut Pair, topic: &str) -> Vec<u64> {
    pair.fetched.clear();
    pair.consumer_events.clear();
    pair.add_consumer(|c| {
        c.set("isolation.level", "read_committed").unwrap();
    });
    let now = pair.now;
    let parts: Vec<(&str, i32)> = (0..3).map(|p| (topic, p)).collect();
    let consumer = pair.consumer.as_mut().unwrap();
    consumer.assign(&parts, now);
    for p in 0..3 {
        consumer.seek(topic, p, kasio_core::Seek::Beginning, now);
    }
    pair.run_until(Duration::from_secs(30), |p| {
        p.consumer_events
            .iter()
            .filter(|e| matches!(e, ConsumerEvent::EndOfPartition { .. }))
            .count()
            == 3
    });
    let mut out = Vec::new();
    for b in &pair.fetched {
        b.for_each(|r| {
            out.push(
                std::str::from_utf8(r.value.unwrap())
                    .unwrap()
                    .parse()
                    .unwrap(),
            )
        })
        .unwrap();
    }
    out.sort_unstable();
    pair.consumer = None;
    out
}

#[test]
fn committed_transactions_are_read_and_aborted_ones_never() {
    for version in [1, 2] {
        let mut pair = transactional_on(version);
        pair.producer.begin_transaction().unwrap();
        send_both(&mut pair, 0..500);
        assert_eq!(finish(&mut pair, true), TxnEvent::Committed);
        assert!(pair.delivered.values().all(Result::is_ok));

        pair.producer.begin_transaction().unwrap();
        // The first half is written before the abort, the second is still buffered.
        send_both(&mut pair, 500..650);
        pair.run_until(Duration::from_secs(10), |p| p.delivered.len() == 1300);
        send_both(&mut pair, 650..800);
        assert_eq!(finish(&mut pair, false), TxnEvent::Aborted);
        let aborted = pair
            .delivered
            .values()
            .filter(|d| **d == Err(ProduceError::TransactionAborted))
            .count();
        assert_eq!(pair.delivered.len(), 1600, "every record has its answer");
        // Both kinds are in this abort: records written (then marked aborted) and dropped.
        assert_eq!(aborted, 300, "the buffered half dropped unsent");

        pair.producer.begin_transaction().unwrap();
        send_both(&mut pair, 800..1000);
        assert_eq!(finish(&mut pair, true), TxnEvent::Committed);
        let want: Vec<u64> = (0..500).chain(800..1000).collect();
        assert_eq!(committed(&mut pair, "a"), want, "{aborted} aborted unsent");
        assert_eq!(committed(&mut pair, "b"), want);
        assert_eq!(pair.producer.transaction_state(), Some(TxnState::Ready));
    }
}

#[test]
fn sending_outside_a_transaction_is_refused() {
    let mut pair = transactional();
    let now = pair.now;
    let Err((kasio_core::SendError::Invalid(ProduceError::Transaction(e)), _)) =
        pair.producer.send(Record::new("a").value(b"x"), 1, now)
    else {
        panic!("sent outside a transaction");
    };
    assert!(matches!(
        e,
        TxnError::InvalidState {
            state: TxnState::Ready,
            ..
        }
    ));
    assert!(pair.producer.commit_transaction(now).is_err());
    assert!(pair.producer.init_transactions(now).is_err());
}

#[test]
fn offsets_commit_with_the_transaction_only() {
    let mut pair = transactional();
    pair.add_admin(|_| {});
    let group = GroupMetadata::group("copy-group");
    pair.producer.begin_transaction().unwrap();
    send_both(&mut pair, 0..10);
    let now = pair.now;
    pair.producer
        .send_offsets_to_transaction(&[("in", 0, 42), ("in", 2, 7)], group.clone(), now)
        .unwrap();
    pair.run_until(Duration::from_secs(10), |p| !p.txn_events.is_empty());
    assert_eq!(pair.txn_events.last(), Some(&TxnEvent::OffsetsSent));
    let offsets = |pair: &mut Pair| match pair
        .admin_run(|a, now| a.group_offsets("copy-group", now))
        .unwrap()
    {
        AdminOutput::Committed(c) => c
            .iter()
            .map(|o| (o.partition, o.offset))
            .collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    assert!(offsets(&mut pair).is_empty(), "visible before the commit");
    assert_eq!(finish(&mut pair, true), TxnEvent::Committed);
    let mut got = offsets(&mut pair);
    got.sort_unstable();
    assert_eq!(got, vec![(0, 42), (2, 7)]);

    // Offsets of an aborted transaction never land.
    pair.producer.begin_transaction().unwrap();
    let now = pair.now;
    pair.producer
        .send_offsets_to_transaction(&[("in", 0, 99)], group, now)
        .unwrap();
    pair.run_until(Duration::from_secs(10), |p| p.txn_events.len() == 3);
    assert_eq!(pair.txn_events[2], TxnEvent::OffsetsSent);
    assert_eq!(finish(&mut pair, false), TxnEvent::Aborted);
    let mut got = offsets(&mut pair);
    got.sort_unstable();
    assert_eq!(got, vec![(0, 42), (2, 7)]);
}

#[test]
fn busy_and_moving_coordinators_are_retried() {
    for version in [1, 2] {
        let mut pair = transactional_on(version);
        pair.cluster.inject(Fault::FailNext {
            api: ApiKey::AddPartitionsToTxn,
            count: 3,
            error: ErrorCode::ConcurrentTransactions,
        });
        pair.cluster.inject(Fault::FailNext {
            api: ApiKey::EndTxn,
            count: 2,
            error: ErrorCode::NotCoordinator,
        });
        pair.cluster.inject(Fault::FailNext {
            api: ApiKey::FindCoordinator,
            count: 1,
            error: ErrorCode::CoordinatorNotAvailable,
        });
        pair.producer.begin_transaction().unwrap();
        send_both(&mut pair, 0..100);
        assert_eq!(finish(&mut pair, true), TxnEvent::Committed);
        assert_eq!(committed(&mut pair, "a"), (0..100).collect::<Vec<_>>());
        // The second protocol sends no AddPartitionsToTxn to fail.
        assert!(version == 2 || pair.cluster.requests(ApiKey::AddPartitionsToTxn) >= 4);
        assert!(pair.cluster.requests(ApiKey::EndTxn) >= 3);
    }
}

#[test]
fn a_failed_record_makes_the_transaction_abortable() {
    for version in [1, 2] {
        let mut pair = transactional_on(version);
        pair.producer.begin_transaction().unwrap();
        pair.cluster.inject(Fault::FailNext {
            api: ApiKey::Produce,
            count: 1,
            error: ErrorCode::TopicAuthorizationFailed,
        });
        send_both(&mut pair, 0..50);
        let now = pair.now;
        pair.producer.commit_transaction(now).unwrap_or(());
        pair.run_until(Duration::from_secs(30), |p| !p.txn_events.is_empty());
        let Some(TxnEvent::Failed {
            op: TxnOp::Commit,
            error: TxnError::Abortable { .. },
        }) = pair.txn_events.last()
        else {
            panic!("{:?}", pair.txn_events);
        };
        assert_eq!(
            pair.producer.transaction_state(),
            Some(TxnState::AbortableError)
        );
        assert_eq!(finish(&mut pair, false), TxnEvent::Aborted);
        assert!(committed(&mut pair, "a").is_empty());
        pair.producer.begin_transaction().unwrap();
        send_both(&mut pair, 50..60);
        assert_eq!(finish(&mut pair, true), TxnEvent::Committed);
        assert_eq!(committed(&mut pair, "b"), (50..60).collect::<Vec<_>>());
    }
}

#[test]
fn a_stale_epoch_is_renewed_by_the_abort() {
    for version in [1, 2] {
        let mut pair = transactional_on(version);
        let epoch = pair.producer.producer_id().unwrap().1;
        pair.producer.begin_transaction().unwrap();
        pair.cluster.inject(Fault::FailNext {
            api: ApiKey::Produce,
            count: 1,
            error: ErrorCode::InvalidProducerEpoch,
        });
        send_both(&mut pair, 0..20);
        pair.run_until(Duration::from_secs(10), |p| p.delivered.len() == 40);
        assert_eq!(
            pair.producer.transaction_state(),
            Some(TxnState::AbortableError)
        );
        assert_eq!(finish(&mut pair, false), TxnEvent::Aborted);
        assert!(
            pair.producer.producer_id().unwrap().1 > epoch,
            "a new epoch"
        );
        pair.producer.begin_transaction().unwrap();
        send_both(&mut pair, 20..30);
        assert_eq!(finish(&mut pair, true), TxnEvent::Committed);
        assert_eq!(committed(&mut pair, "a"), (20..30).collect::<Vec<_>>());
    }
}

#[test]
fn fencing_is_fatal() {
    let mut pair = transactional();
    pair.producer.begin_transaction().unwrap();
    send_both(&mut pair, 0..10);
    pair.cluster.inject(Fault::FailNext {
        api: ApiKey::EndTxn,
        count: 1,
        error: ErrorCode::ProducerFenced,
    });
    let Some(TxnEvent::Failed {
        op: TxnOp::Commit,
        error:
            TxnError::Fatal {
                code: ErrorCode::ProducerFenced,
                ..
            },
    }) = Some(finish(&mut pair, true))
    else {
        panic!("{:?}", pair.txn_events);
    };
    assert_eq!(
        pair.producer.transaction_state(),
        Some(TxnState::FatalError)
    );
    assert!(pair.producer.begin_transaction().is_err());
    assert!(pair.producer.abort_transaction(pair.now).is_err());
}

/// With `transaction.version` 2 the producer speaks KIP-890's second protocol: no
/// AddPartitionsToTxn or AddOffsetsToTxn (Produce and TxnOffsetCommit add implicitly), and
/// every EndTxn returns the next epoch, under which sequences start again.
#[test]
fn the_second_protocol_adds_implicitly_and_bumps_the_epoch_every_transaction() {
    let mut pair = transactional_on(2);
    pair.add_admin(|_| {});
    let first = pair.producer.producer_id().unwrap().1;
    let group = GroupMetadata::group("tv2-group");
    for (round, commit) in [(0u64, true), (1, false), (2, true)] {
        pair.producer.begin_transaction().unwrap();
        // Written in full, so the abort has records to hide.
        send_both(&mut pair, round * 100..round * 100 + 100);
        pair.run_until(Duration::from_secs(10), |p| {
            p.delivered.len() as u64 == (round + 1) * 200
        });
        let now = pair.now;
        let before = pair.txn_events.len();
        pair.producer
            .send_offsets_to_transaction(&[("in", 1, (round as i64 + 1) * 10)], group.clone(), now)
            .unwrap();
        pair.run_until(Duration::from_secs(10), |p| p.txn_events.len() > before);
        assert_eq!(pair.txn_events.last(), Some(&TxnEvent::OffsetsSent));
        let want = if commit {
            TxnEvent::Committed
        } else {
            TxnEvent::Aborted
        };
        assert_eq!(finish(&mut pair, commit), want);
        let epoch = pair.producer.producer_id().unwrap().1;
        assert_eq!(epoch, first + round as i16 + 1, "one epoch per transaction");
    }
    assert!(pair.delivered.values().all(Result::is_ok));
    assert_eq!(pair.cluster.requests(ApiKey::AddPartitionsToTxn), 0);
    assert_eq!(pair.cluster.requests(ApiKey::AddOffsetsToTxn), 0);
    let want: Vec<u64> = (0..100).chain(200..300).collect();
    assert_eq!(committed(&mut pair, "a"), want);
    assert_eq!(committed(&mut pair, "b"), want);
    let AdminOutput::Committed(c) = pair
        .admin_run(|a, now| a.group_offsets("tv2-group", now))
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(c.iter().map(|o| o.offset).collect::<Vec<_>>(), vec![30]);
}

/// The first protocol on a cluster with the second: the epoch stays across transactions
/// unless an abort must renew it.
#[test]
fn the_first_protocol_keeps_its_epoch() {
    let mut pair = transactional();
    let epoch = pair.producer.producer_id().unwrap().1;
    for round in 0..3u64 {
        pair.producer.begin_transaction().unwrap();
        send_both(&mut pair, round * 10..round * 10 + 10);
        assert_eq!(finish(&mut pair, true), TxnEvent::Committed);
    }
    assert_eq!(pair.producer.producer_id().unwrap().1, epoch);
    assert!(pair.cluster.requests(ApiKey::AddPartitionsToTxn) >= 3);
}

/// A newer producer with the same transactional id takes over: its InitProducerId aborts
/// the open transaction and fences the older producer, whose next records fail (an
/// abortable error, as the partition leader cannot tell fencing from a timeout) and whose
/// EndTxn is refused as fenced: fatal. The newer producer's transactions are the ones read.
#[test]
fn a_second_producer_with_the_same_id_fences_the_first() {
    for version in [1, 2] {
        let mut pair = transactional_on(version);
        pair.producer.begin_transaction().unwrap();
        send_both(&mut pair, 0..10);
        pair.run_until(Duration::from_secs(10), |p| p.delivered.len() == 20);

        pair.add_rival(|c| {
            c.set("transactional.id", "copier").unwrap();
        });
        let now = pair.now;
        let rival = pair.rival.as_mut().unwrap();
        rival.producer.init_transactions(now).unwrap();
        pair.run_until(Duration::from_secs(10), |p| {
            !p.rival.as_ref().unwrap().txn_events.is_empty()
        });
        let rival = pair.rival.as_mut().unwrap();
        assert_eq!(rival.txn_events.pop(), Some(TxnEvent::Initialized));

        // The first producer's later records are turned away...
        send_both(&mut pair, 10..20);
        pair.run_until(Duration::from_secs(10), |p| p.delivered.len() == 40);
        for token in 20..40 {
            assert!(
                matches!(
                    pair.delivered[&token],
                    Err(ProduceError::Broker {
                        code: ErrorCode::InvalidProducerEpoch,
                        ..
                    })
                ),
                "record {token}: {:?}",
                pair.delivered[&token]
            );
        }
        // ...its commit cannot happen, and its abort finds it fenced.
        assert!(matches!(
            pair.producer.commit_transaction(pair.now),
            Err(TxnError::Abortable { .. })
        ));
        let event = finish(&mut pair, false);
        let TxnEvent::Failed {
            op: TxnOp::Abort,
            error:
                TxnError::Fatal {
                    code: ErrorCode::ProducerFenced,
                    ..
                },
        } = event
        else {
            panic!("transaction.version {version}: {event:?}");
        };
        assert!(pair.producer.begin_transaction().is_err());

        // The newer producer carries on.
        let now = pair.now;
        let rival = pair.rival.as_mut().unwrap();
        rival.producer.begin_transaction().unwrap();
        for i in 100..110u64 {
            rival
                .producer
                .send(Record::new("a").value(i.to_string().as_bytes()), i, now)
                .unwrap();
        }
        rival.producer.commit_transaction(now).unwrap();
        pair.run_until(Duration::from_secs(10), |p| {
            !p.rival.as_ref().unwrap().txn_events.is_empty()
        });
        assert_eq!(
            pair.rival.as_mut().unwrap().txn_events.pop(),
            Some(TxnEvent::Committed)
        );
        assert_eq!(committed(&mut pair, "a"), (100..110).collect::<Vec<_>>());
    }
}

/// A transaction open longer than `transaction.timeout.ms` is aborted by the coordinator,
/// which moves the producer to a new epoch: the producer's next records fail, so the
/// transaction is abortable. Under the second protocol the abort learns the new epoch and
/// the producer goes on; under the first the coordinator refuses the old epoch as fenced,
/// which is fatal (what Apache Kafka 4.4 answers on each, measured in the lab).
#[test]
fn a_transaction_past_its_timeout_is_aborted_by_the_coordinator() {
    for version in [1, 2] {
        let cluster = kasio_mock::ClusterConfig {
            brokers: 3,
            seed: 11,
            transaction_version: version,
            ..Default::default()
        };
        let mut pair = Pair::with_cluster(cluster, |c| {
            c.set("transactional.id", "slow").unwrap();
            c.set("transaction.timeout.ms", "2000").unwrap();
        });
        for t in ["a", "b"] {
            pair.cluster.create_topic(t, 3).unwrap();
        }
        let now = pair.now;
        pair.producer.init_transactions(now).unwrap();
        pair.run_until(Duration::from_secs(10), |p| !p.txn_events.is_empty());
        assert_eq!(pair.txn_events.pop(), Some(TxnEvent::Initialized));

        pair.producer.begin_transaction().unwrap();
        send_both(&mut pair, 0..10);
        pair.run_until(Duration::from_secs(10), |p| p.delivered.len() == 20);
        assert!(pair.delivered.values().all(Result::is_ok));
        // Idle past the timeout: the coordinator aborts.
        pair.run_for(Duration::from_secs(5));
        assert!(pair.txn_events.is_empty(), "{:?}", pair.txn_events);

        send_both(&mut pair, 10..20);
        pair.run_until(Duration::from_secs(10), |p| p.delivered.len() == 40);
        assert!((20..40).all(|t| matches!(
            pair.delivered[&t],
            Err(ProduceError::Broker {
                code: ErrorCode::InvalidProducerEpoch,
                ..
            })
        )));
        assert!(matches!(
            pair.producer.commit_transaction(pair.now),
            Err(TxnError::Abortable {
                code: Some(ErrorCode::InvalidProducerEpoch),
                ..
            })
        ));
        let event = finish(&mut pair, false);
        if version == 1 {
            let TxnEvent::Failed {
                op: TxnOp::Abort,
                error: TxnError::Fatal { code, message },
            } = event
            else {
                panic!("{event:?}");
            };
            assert_eq!(code, ErrorCode::ProducerFenced);
            assert!(message.contains("transaction.timeout.ms"), "{message}");
            continue;
        }
        assert_eq!(event, TxnEvent::Aborted);
        pair.producer.begin_transaction().unwrap();
        send_both(&mut pair, 20..30);
        assert_eq!(finish(&mut pair, true), TxnEvent::Committed);
        assert!((40..60).all(|t| pair.delivered[&t].is_ok()));
        // Nothing of the timed-out transaction is read: neither what it wrote before the
        // timeout nor after.
        assert_eq!(committed(&mut pair, "a"), (20..30).collect::<Vec<_>>());
        assert_eq!(committed(&mut pair, "b"), (20..30).collect::<Vec<_>>());
    }
}

/// Every operation asked in a state that does not allow it is refused without effect, the
/// state unchanged; walked through every state the producer can be in, as the Java
/// client's TransactionManager allows them.
#[test]
fn every_operation_is_checked_against_the_state() {
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Op {
        Init,
        Begin,
        Send,
        SendOffsets,
        Commit,
        Abort,
    }
    use Op::*;
    const ALL: [Op; 6] = [Init, Begin, Send, SendOffsets, Commit, Abort];
    fn refused_except(pair: &mut Pair, state: TxnState, allowed: &[Op]) {
        assert_eq!(pair.producer.transaction_state(), Some(state));
        for op in ALL.into_iter().filter(|op| !allowed.contains(op)) {
            let now = pair.now;
            let p = &mut pair.producer;
            let refused = match op {
                Init => p.init_transactions(now).is_err(),
                Begin => p.begin_transaction().is_err(),
                Send => p.send(Record::new("a").value(b"x"), 999, now).is_err(),
                SendOffsets => p
                    .send_offsets_to_transaction(&[("in", 0, 1)], GroupMetadata::group("g"), now)
                    .is_err(),
                Commit => p.commit_transaction(now).is_err(),
                Abort => p.abort_transaction(now).is_err(),
            };
            assert!(refused, "{op:?} allowed while {state}");
            assert_eq!(
                pair.producer.transaction_state(),
                Some(state),
                "{op:?} while {state}"
            );
        }
    }
    let cluster = kasio_mock::ClusterConfig {
        brokers: 1,
        seed: 3,
        ..Default::default()
    };
    let mut pair = Pair::with_cluster(cluster, |c| {
        c.set("transactional.id", "states").unwrap();
    });
    pair.cluster.create_topic("a", 1).unwrap();
    pair.cluster.create_topic("in", 1).unwrap();
    let now = pair.now;

    refused_except(&mut pair, TxnState::Uninitialized, &[Init]);
    pair.producer.init_transactions(now).unwrap();
    refused_except(&mut pair, TxnState::Initializing, &[]);
    pair.run_until(Duration::from_secs(10), |p| !p.txn_events.is_empty());
    refused_except(&mut pair, TxnState::Ready, &[Begin]);
    pair.producer.begin_transaction().unwrap();
    refused_except(
        &mut pair,
        TxnState::InTransaction,
        &[Send, SendOffsets, Commit, Abort],
    );
    send_one(&mut pair, 1);
    pair.producer.commit_transaction(pair.now).unwrap();
    refused_except(&mut pair, TxnState::Committing, &[]);
    pair.run_until(Duration::from_secs(10), |p| p.txn_events.len() == 2);
    assert_eq!(pair.txn_events[1], TxnEvent::Committed);

    pair.producer.begin_transaction().unwrap();
    send_one(&mut pair, 2);
    // Written first, so the abort has to reach the coordinator.
    pair.run_until(Duration::from_secs(10), |p| p.delivered.len() == 2);
    pair.producer.abort_transaction(pair.now).unwrap();
    refused_except(&mut pair, TxnState::Aborting, &[]);
    pair.run_until(Duration::from_secs(10), |p| p.txn_events.len() == 3);
    assert_eq!(pair.txn_events[2], TxnEvent::Aborted);

    pair.producer.begin_transaction().unwrap();
    pair.cluster.inject(Fault::FailNext {
        api: ApiKey::Produce,
        count: 1,
        error: ErrorCode::TopicAuthorizationFailed,
    });
    send_one(&mut pair, 3);
    pair.run_until(Duration::from_secs(10), |p| p.delivered.len() == 3);
    refused_except(&mut pair, TxnState::AbortableError, &[Abort]);
    assert_eq!(finish(&mut pair, false), TxnEvent::Aborted);

    pair.producer.begin_transaction().unwrap();
    send_one(&mut pair, 4);
    pair.cluster.inject(Fault::FailNext {
        api: ApiKey::EndTxn,
        count: 1,
        error: ErrorCode::ProducerFenced,
    });
    assert!(matches!(
        finish(&mut pair, true),
        TxnEvent::Failed {
            error: TxnError::Fatal { .. },
            ..
        }
    ));
    refused_except(&mut pair, TxnState::FatalError, &[]);
}

fn send_one(pair: &mut Pair, token: u64) {
    let now = pair.now;
    pair.producer
        .send(Record::new("a").value(b"v"), token, now)
        .unwrap();
}

/// The coordinator refusing the commit itself with an abortable error (here KIP-890's
/// TRANSACTION_ABORTABLE, and a TxnOffsetCommit refused for a stale generation): the
/// commit fails abortable, the abort hides what was written, and the next transaction
/// commits.
#[test]
fn an_abortable_error_mid_commit_leaves_an_abort() {
    for (api, error) in [
        (ApiKey::EndTxn, ErrorCode::TransactionAbortable),
        (ApiKey::TxnOffsetCommit, ErrorCode::IllegalGeneration),
    ] {
        for version in [1, 2] {
            let mut pair = transactional_on(version);
            pair.producer.begin_transaction().unwrap();
            send_both(&mut pair, 0..20);
            let now = pair.now;
            pair.producer
                .send_offsets_to_transaction(&[("in", 0, 20)], GroupMetadata::group("g"), now)
                .unwrap();
            if api == ApiKey::TxnOffsetCommit {
                pair.cluster.inject(Fault::FailNext {
                    api,
                    count: 1,
                    error,
                });
            } else {
                pair.run_until(Duration::from_secs(10), |p| !p.txn_events.is_empty());
                assert_eq!(pair.txn_events.pop(), Some(TxnEvent::OffsetsSent));
                pair.cluster.inject(Fault::FailNext {
                    api,
                    count: 1,
                    error,
                });
            }
            let now = pair.now;
            // Refused at once when the offsets failed first, else failed by the coordinator.
            let failed = match pair.producer.commit_transaction(now) {
                Err(e) => e,
                Ok(()) => {
                    pair.run_until(Duration::from_secs(10), |p| !p.txn_events.is_empty());
                    match pair.txn_events.pop() {
                        Some(TxnEvent::Failed { error, .. }) => error,
                        other => panic!("{api:?} {error:?}: {other:?}"),
                    }
                }
            };
            let TxnError::Abortable { code, .. } = failed else {
                panic!("{api:?}: {failed:?}");
            };
            assert_eq!(code, Some(error), "{api:?}");
            pair.txn_events.clear();
            assert_eq!(finish(&mut pair, false), TxnEvent::Aborted);
            assert!(committed(&mut pair, "a").is_empty());
            pair.producer.begin_transaction().unwrap();
            send_both(&mut pair, 20..30);
            assert_eq!(finish(&mut pair, true), TxnEvent::Committed);
            assert_eq!(committed(&mut pair, "b"), (20..30).collect::<Vec<_>>());
        }
    }
}

/// Initializing → FatalError: InitProducerId refused for good (not authorized for the
/// transactional id) fails `init_transactions` and leaves nothing to do but close.
#[test]
fn an_init_refused_for_good_is_fatal() {
    let cluster = kasio_mock::ClusterConfig {
        brokers: 1,
        seed: 9,
        ..Default::default()
    };
    let mut pair = Pair::with_cluster(cluster, |c| {
        c.set("transactional.id", "not-mine").unwrap();
    });
    pair.cluster.inject(Fault::FailNext {
        api: ApiKey::InitProducerId,
        count: 1,
        error: ErrorCode::TransactionalIdAuthorizationFailed,
    });
    let now = pair.now;
    pair.producer.init_transactions(now).unwrap();
    pair.run_until(Duration::from_secs(10), |p| !p.txn_events.is_empty());
    assert!(matches!(
        pair.txn_events[0],
        TxnEvent::Failed {
            op: TxnOp::Init,
            error: TxnError::Fatal {
                code: ErrorCode::TransactionalIdAuthorizationFailed,
                ..
            }
        }
    ));
    assert_eq!(
        pair.producer.transaction_state(),
        Some(TxnState::FatalError)
    );
    assert!(pair.producer.begin_transaction().is_err());
}
