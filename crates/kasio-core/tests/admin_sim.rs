//! The admin client against a simulated cluster in virtual time: every operation the mock
//! serves, its retries on retriable errors and lost responses, and its timeout.
#![allow(clippy::unwrap_used)]

mod pair;

use kasio_core::{
    AdminError, AdminOutput, ErrorCode, IsolationLevel, NewTopic, OffsetSpec, Record, TopicRef,
};
use kasio_mock::Fault;
use kasio_proto::ApiKey;
use pair::Pair;
use std::time::Duration;

fn admin_pair(seed: u64) -> Pair {
    let mut pair = Pair::new(3, seed, |_| {});
    pair.add_admin(|_| {});
    pair
}

fn produce(pair: &mut Pair, topic: &str, n: u64) {
    let now = pair.now;
    let before = pair.delivered.len() as u64;
    for i in 0..n {
        let value = i.to_string();
        let key = format!("k{}", i % 11);
        let record = Record::new(topic)
            .key(key.as_bytes())
            .value(value.as_bytes());
        pair.producer.send(record, before + i, now).unwrap();
    }
    pair.producer.flush(now);
    pair.run_until(Duration::from_secs(60), |p| {
        p.delivered.len() as u64 == before + n
    });
}

#[test]
fn topics_are_created_described_grown_and_deleted() {
    let mut pair = admin_pair(1);
    let out = pair
        .admin_run(|a, now| {
            a.create_topics(
                &[NewTopic::new("orders", 3, 1), NewTopic::new("audit", 1, 1)],
                false,
                now,
            )
        })
        .unwrap();
    let AdminOutput::TopicResults(rs) = out else {
        panic!("{out:?}")
    };
    assert_eq!(rs.len(), 2);
    assert!(rs.iter().all(|r| r.error.is_none()), "{rs:?}");
    assert!(!rs[0].id.is_zero());

    // A second create reports the topic as existing, per topic.
    let out = pair
        .admin_run(|a, now| a.create_topics(&[NewTopic::new("orders", 3, 1)], false, now))
        .unwrap();
    let AdminOutput::TopicResults(rs) = out else {
        panic!("{out:?}")
    };
    assert_eq!(
        rs[0].error.as_ref().unwrap().code,
        ErrorCode::TopicAlreadyExists
    );

    let out = pair
        .admin_run(|a, now| a.describe_topics(&["orders", "missing"], now))
        .unwrap();
    let AdminOutput::TopicDescriptions(ds) = out else {
        panic!("{out:?}")
    };
    let orders = ds[0].result.as_ref().unwrap();
    assert_eq!(orders.partitions.len(), 3);
    for p in &orders.partitions {
        assert_eq!(p.leader, pair.cluster.leader("orders", p.partition));
    }
    assert_eq!(
        ds[1].result.as_ref().unwrap_err().code,
        ErrorCode::UnknownTopicOrPartition
    );

    let out = pair
        .admin_run(|a, now| a.create_partitions(&[("orders", 5)], false, now))
        .unwrap();
    let AdminOutput::TopicResults(rs) = out else {
        panic!("{out:?}")
    };
    assert!(rs[0].error.is_none(), "{rs:?}");
    assert_eq!(pair.cluster.end_offset("orders", 4), Some(0));

    let out = pair.admin_run(|a, now| a.list_topics(false, now)).unwrap();
    let AdminOutput::TopicListings(ts) = out else {
        panic!("{out:?}")
    };
    let names: Vec<&str> = ts.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["audit", "orders"]);

    let audit_id = ts[0].id;
    let out = pair
        .admin_run(|a, now| {
            a.delete_topics(
                &[TopicRef::Name("orders".into()), TopicRef::Id(audit_id)],
                now,
            )
        })
        .unwrap();
    let AdminOutput::TopicResults(rs) = out else {
        panic!("{out:?}")
    };
    assert!(rs.iter().all(|r| r.error.is_none()), "{rs:?}");
    let out = pair.admin_run(|a, now| a.list_topics(false, now)).unwrap();
    assert_eq!(out, AdminOutput::TopicListings(Vec::new()));
}

#[test]
fn a_moved_controller_and_a_lost_response_are_retried() {
    let mut pair = admin_pair(2);
    pair.cluster.inject(Fault::FailNext {
        api: ApiKey::CreateTopics,
        count: 2,
        error: ErrorCode::NotController,
    });
    let out = pair
        .admin_run(|a, now| a.create_topics(&[NewTopic::new("t", 2, 1)], false, now))
        .unwrap();
    let AdminOutput::TopicResults(rs) = out else {
        panic!("{out:?}")
    };
    assert!(rs[0].error.is_none(), "{rs:?}");
    assert_eq!(pair.cluster.requests(ApiKey::CreateTopics), 3);

    // The response to the first attempt is lost: the request times out after 30 s and is
    // sent again on a new connection, inside the operation's 60 s.
    pair.cluster.inject(Fault::Blackhole {
        api: ApiKey::CreatePartitions,
        count: 1,
    });
    let start = pair.now;
    let out = pair
        .admin_run(|a, now| a.create_partitions(&[("t", 4)], false, now))
        .unwrap();
    let AdminOutput::TopicResults(rs) = out else {
        panic!("{out:?}")
    };
    // The lost attempt was carried out, so the retry finds the count already reached.
    let code = rs[0].error.as_ref().map(|e| e.code);
    assert!(
        code.is_none() || code == Some(ErrorCode::InvalidPartitions),
        "{rs:?}"
    );
    assert!(pair.now - start >= Duration::from_secs(30));
    assert_eq!(pair.cluster.end_offset("t", 3), Some(0));
}

#[test]
fn an_unreachable_cluster_times_out() {
    let mut pair = admin_pair(3);
    for b in 1..=3 {
        pair.cluster.inject(Fault::RefuseConnections {
            broker: b,
            refuse: true,
        });
    }
    let start = pair.now;
    let out = pair.admin_run(|a, now| a.describe_cluster(now));
    let Err(AdminError::Unreachable(why)) = out else {
        panic!("{out:?}")
    };
    assert!(
        why.contains("127.0.0.1:9092") && why.contains("refused"),
        "{why}"
    );
    let took = pair.now - start;
    assert!(
        took >= Duration::from_secs(60) && took < Duration::from_secs(62),
        "{took:?}"
    );
    assert_eq!(pair.admin.as_ref().unwrap().running(), 0);
}

#[test]
fn cluster_and_api_versions_are_described() {
    let mut pair = admin_pair(4);
    let out = pair.admin_run(|a, now| a.describe_cluster(now)).unwrap();
    let AdminOutput::Cluster(c) = out else {
        panic!("{out:?}")
    };
    let ids: Vec<i32> = c.brokers.iter().map(|b| b.id).collect();
    assert_eq!(ids, [1, 2, 3]);
    let out = pair.admin_run(|a, now| a.api_versions(2, now)).unwrap();
    let AdminOutput::ApiVersions(vs) = out else {
        panic!("{out:?}")
    };
    assert!(vs.iter().any(|v| v.name == Some("Produce")));
    // A broker the cluster does not have fails at once.
    let out = pair.admin_run(|a, now| a.api_versions(9, now));
    assert!(
        matches!(out, Err(AdminError::InvalidArgument(_))),
        "{out:?}"
    );
}

#[test]
fn offsets_are_listed_committed_reset_and_lag_is_measured() {
    let mut pair = admin_pair(5);
    pair.cluster.create_topic("events", 3).unwrap();
    produce(&mut pair, "events", 300);
    let ends: Vec<i64> = (0..3)
        .map(|p| pair.cluster.end_offset("events", p).unwrap())
        .collect();
    assert_eq!(ends.iter().sum::<i64>(), 300);

    let specs: Vec<(&str, i32, OffsetSpec)> = (0..3)
        .map(|p| ("events", p, OffsetSpec::Latest))
        .chain([("events", 7, OffsetSpec::Earliest)])
        .collect();
    let out = pair
        .admin_run(|a, now| a.list_offsets(&specs, IsolationLevel::ReadUncommitted, now))
        .unwrap();
    let AdminOutput::Offsets(rows) = out else {
        panic!("{out:?}")
    };
    for (p, end) in ends.iter().enumerate() {
        assert_eq!(rows[p].result.as_ref().unwrap().offset, *end);
    }
    assert_eq!(
        rows[3].result.as_ref().unwrap_err().code,
        ErrorCode::UnknownTopicOrPartition
    );

    // Commit a third of each partition, with the coordinator moving once on the way.
    pair.cluster.inject(Fault::FailNext {
        api: ApiKey::OffsetCommit,
        count: 1,
        error: ErrorCode::NotCoordinator,
    });
    let commits: Vec<(&str, i32, i64)> = (0..3)
        .map(|p| ("events", p, ends[p as usize] / 3))
        .collect();
    let out = pair
        .admin_run(|a, now| a.alter_group_offsets("g", &commits, now))
        .unwrap();
    let AdminOutput::PartitionResults(rows) = out else {
        panic!("{out:?}")
    };
    assert!(rows.iter().all(|r| r.result.is_ok()), "{rows:?}");

    let out = pair.admin_run(|a, now| a.group_lag("g", now)).unwrap();
    let AdminOutput::Lag(lag) = out else {
        panic!("{out:?}")
    };
    assert_eq!(lag.len(), 3);
    for l in &lag {
        let end = ends[l.partition as usize];
        assert_eq!((l.committed, l.end, l.lag), (end / 3, end, end - end / 3));
    }

    let out = pair
        .admin_run(|a, now| a.reset_group_offsets("g", &[], OffsetSpec::Latest, now))
        .unwrap();
    let AdminOutput::PartitionOffsets(rows) = out else {
        panic!("{out:?}")
    };
    let reset: Vec<i64> = rows.iter().map(|r| *r.result.as_ref().unwrap()).collect();
    assert_eq!(reset, ends);
    let out = pair.admin_run(|a, now| a.group_offsets("g", now)).unwrap();
    let AdminOutput::Committed(rows) = out else {
        panic!("{out:?}")
    };
    let committed: Vec<i64> = rows.iter().map(|r| r.offset).collect();
    assert_eq!(committed, ends);
    let out = pair.admin_run(|a, now| a.group_lag("g", now)).unwrap();
    let AdminOutput::Lag(lag) = out else {
        panic!("{out:?}")
    };
    assert!(lag.iter().all(|l| l.lag == 0), "{lag:?}");
}

#[test]
fn groups_are_listed_described_and_deleted() {
    let mut pair = admin_pair(6);
    pair.cluster.create_topic("events", 4).unwrap();
    produce(&mut pair, "events", 100);
    // A KIP-848 member holding every partition, and a group that only has offsets.
    pair.add_consumer(|c| {
        c.group_id = Some("live".into());
        c.set("group.protocol", "consumer").unwrap();
    });
    let now = pair.now;
    pair.consumer
        .as_mut()
        .unwrap()
        .subscribe(&["events"], now)
        .unwrap();
    pair.run_for(Duration::from_secs(3));
    pair.admin_run(|a, now| a.alter_group_offsets("idle", &[("events", 0, 5)], now))
        .unwrap();

    let out = pair.admin_run(|a, now| a.list_groups(now)).unwrap();
    let AdminOutput::Groups(gs) = out else {
        panic!("{out:?}")
    };
    let listed: Vec<(&str, &str, &str)> = gs
        .iter()
        .map(|g| (g.id.as_str(), g.group_type.as_str(), g.state.as_str()))
        .collect();
    assert_eq!(
        listed,
        [("idle", "classic", "Empty"), ("live", "consumer", "Stable")]
    );

    let out = pair
        .admin_run(|a, now| a.describe_groups(&["live", "idle", "nobody"], now))
        .unwrap();
    let AdminOutput::GroupDescriptions(ds) = out else {
        panic!("{out:?}")
    };
    let live = ds[0].result.as_ref().unwrap();
    assert_eq!(
        (live.group_type.as_str(), live.state.as_str()),
        ("consumer", "Stable")
    );
    assert_eq!(live.members.len(), 1);
    assert_eq!(
        live.members[0].assignment,
        [("events".to_string(), vec![0, 1, 2, 3])]
    );
    let idle = ds[1].result.as_ref().unwrap();
    assert_eq!(
        (idle.group_type.as_str(), idle.state.as_str()),
        ("classic", "Empty")
    );
    assert_eq!(
        ds[2].result.as_ref().unwrap_err().code,
        ErrorCode::GroupIdNotFound
    );

    // A coordinator still loading is asked again.
    pair.cluster.inject(Fault::FailNext {
        api: ApiKey::ConsumerGroupDescribe,
        count: 2,
        error: ErrorCode::CoordinatorLoadInProgress,
    });
    let out = pair
        .admin_run(|a, now| a.describe_groups(&["live"], now))
        .unwrap();
    let AdminOutput::GroupDescriptions(ds) = out else {
        panic!("{out:?}")
    };
    assert!(ds[0].result.is_ok(), "{ds:?}");

    let out = pair
        .admin_run(|a, now| a.delete_group_offsets("idle", &[("events", 0)], now))
        .unwrap();
    let AdminOutput::PartitionResults(rs) = out else {
        panic!("{out:?}")
    };
    assert!(rs[0].result.is_ok(), "{rs:?}");
    let out = pair
        .admin_run(|a, now| a.group_offsets("idle", now))
        .unwrap();
    assert_eq!(out, AdminOutput::Committed(Vec::new()));

    let out = pair
        .admin_run(|a, now| a.delete_groups(&["live", "idle"], now))
        .unwrap();
    let AdminOutput::NamedResults(rs) = out else {
        panic!("{out:?}")
    };
    assert_eq!(
        rs[0].result.as_ref().unwrap_err().code,
        ErrorCode::NonEmptyGroup
    );
    assert!(rs[1].result.is_ok(), "{rs:?}");
}

#[test]
fn records_are_deleted_at_each_leader_and_configs_go_where_they_live() {
    let mut pair = admin_pair(7);
    pair.cluster.create_topic("events", 3).unwrap();
    produce(&mut pair, "events", 300);
    let ends: Vec<i64> = (0..3)
        .map(|p| pair.cluster.end_offset("events", p).unwrap())
        .collect();
    let out = pair
        .admin_run(|a, now| {
            a.delete_records(
                &[
                    ("events", 0, 10),
                    ("events", 1, -1),
                    ("events", 2, 1_000_000),
                ],
                now,
            )
        })
        .unwrap();
    let AdminOutput::PartitionOffsets(rs) = out else {
        panic!("{out:?}")
    };
    assert_eq!(*rs[0].result.as_ref().unwrap(), 10);
    assert_eq!(*rs[1].result.as_ref().unwrap(), ends[1]);
    assert_eq!(
        rs[2].result.as_ref().unwrap_err().code,
        ErrorCode::OffsetOutOfRange
    );
    let out = pair
        .admin_run(|a, now| {
            a.list_offsets(
                &[("events", 0, OffsetSpec::Earliest)],
                IsolationLevel::ReadUncommitted,
                now,
            )
        })
        .unwrap();
    let AdminOutput::Offsets(rs) = out else {
        panic!("{out:?}")
    };
    assert_eq!(rs[0].result.as_ref().unwrap().offset, 10);

    use kasio_core::{ConfigChange, ConfigResource};
    let topic = ConfigResource::topic("events");
    let changes = vec![
        (
            topic.clone(),
            vec![
                ConfigChange::Set("retention.ms".into(), "1000".into()),
                ConfigChange::Append("cleanup.policy".into(), "compact".into()),
            ],
        ),
        (
            ConfigResource::broker(2),
            vec![ConfigChange::Set("log.cleaner.threads".into(), "2".into())],
        ),
        (
            ConfigResource::topic("missing"),
            vec![ConfigChange::Delete("retention.ms".into())],
        ),
    ];
    let out = pair
        .admin_run(|a, now| a.alter_configs(&changes, false, now))
        .unwrap();
    let AdminOutput::ConfigResults(rs) = out else {
        panic!("{out:?}")
    };
    assert!(rs[0].error.is_none() && rs[1].error.is_none(), "{rs:?}");
    assert_eq!(
        rs[2].error.as_ref().unwrap().code,
        ErrorCode::UnknownTopicOrPartition
    );

    let resources = [topic, ConfigResource::broker(2), ConfigResource::broker(3)];
    let out = pair
        .admin_run(|a, now| a.describe_configs(&resources, now))
        .unwrap();
    let AdminOutput::Configs(rs) = out else {
        panic!("{out:?}")
    };
    let value = |i: usize, k: &str| {
        rs[i]
            .result
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.name == k)
            .and_then(|c| c.value.clone())
    };
    assert_eq!(rs[0].resource, resources[0]);
    assert_eq!(value(0, "retention.ms").as_deref(), Some("1000"));
    assert_eq!(value(0, "cleanup.policy").as_deref(), Some("compact"));
    // Each broker describes only itself: the answers prove where the requests went.
    assert_eq!(value(1, "node.id").as_deref(), Some("2"));
    assert_eq!(value(1, "log.cleaner.threads").as_deref(), Some("2"));
    assert_eq!(value(2, "node.id").as_deref(), Some("3"));
    assert_eq!(value(2, "log.cleaner.threads"), None);
}
