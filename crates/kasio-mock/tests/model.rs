//! The cluster model driven in-process, in virtual time: no sockets, no sleeping.

#![allow(clippy::unwrap_used)]

use bytes::{Bytes, BytesMut};
use kasio_mock::{Cluster, ClusterConfig, ConnId, Fault};
use kasio_proto::{
    AnyResponse, ApiKey, ErrorCode, Request, frame,
    messages::{
        FetchRequest, ProduceRequest, RequestHeader,
        fetch_request::{FetchPartition, FetchTopic},
        produce_request::{PartitionProduceData, TopicProduceData},
    },
    records::{Batch, BatchBuilder, BatchOptions, Batches},
};
use std::time::{Duration, Instant};

fn send<R: Request>(
    cluster: &mut Cluster,
    conn: ConnId,
    version: i16,
    corr: i32,
    body: &R,
    now: Instant,
) {
    let header = RequestHeader {
        request_api_key: R::API_KEY.as_i16(),
        request_api_version: version,
        correlation_id: corr,
        client_id: Some("model-test".into()),
        ..Default::default()
    };
    let mut buf = BytesMut::new();
    frame::encode_request(&header, body, &mut buf).unwrap();
    cluster.handle_input(conn, &buf, now);
}

fn recv(cluster: &mut Cluster, api: ApiKey, version: i16) -> Option<(i32, AnyResponse)> {
    let t = cluster.poll_transmit()?;
    let (header, body) = frame::decode_response(api, version, t.data.slice(4..)).unwrap();
    Some((header.correlation_id, body))
}

fn batch(values: &[&str]) -> Bytes {
    let mut b = BatchBuilder::new(BatchOptions::default());
    for v in values {
        b.append(
            1_700_000_000_000,
            None,
            Some(v.as_bytes()),
            kasio_proto::records::NO_HEADERS,
        )
        .unwrap();
    }
    b.finish().unwrap()
}

fn produce(topic: &str, partition: i32, records: Bytes) -> ProduceRequest {
    ProduceRequest {
        acks: -1,
        timeout_ms: 1000,
        topic_data: vec![TopicProduceData {
            name: topic.into(),
            partition_data: vec![PartitionProduceData {
                index: partition,
                records: Some(records),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn fetch(topic: &str, partition: i32, offset: i64, wait_ms: i32) -> FetchRequest {
    FetchRequest {
        max_wait_ms: wait_ms,
        min_bytes: 1,
        max_bytes: 1 << 20,
        session_epoch: -1,
        topics: vec![FetchTopic {
            topic: topic.into(),
            partitions: vec![FetchPartition {
                partition,
                fetch_offset: offset,
                partition_max_bytes: 1 << 20,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn values(records: &Bytes) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    for b in Batches::new(records.clone()) {
        let Batch::V2(b) = b.unwrap() else { panic!() };
        for r in b.records().unwrap() {
            let r = r.unwrap();
            out.push((
                r.offset,
                String::from_utf8(r.value.unwrap().to_vec()).unwrap(),
            ));
        }
    }
    out
}

#[test]
fn produced_records_are_fetched_with_offsets_assigned() {
    let t0 = Instant::now();
    let mut cluster = Cluster::new(ClusterConfig::default());
    cluster.create_topic("orders", 1).unwrap();
    let conn = cluster.connect(1);
    send(
        &mut cluster,
        conn,
        11,
        1,
        &produce("orders", 0, batch(&["a", "b"])),
        t0,
    );
    send(
        &mut cluster,
        conn,
        11,
        2,
        &produce("orders", 0, batch(&["c"])),
        t0,
    );
    for (corr, base) in [(1, 0), (2, 2)] {
        let (c, AnyResponse::Produce(r)) = recv(&mut cluster, ApiKey::Produce, 11).unwrap() else {
            panic!()
        };
        assert_eq!(c, corr);
        let p = &r.responses[0].partition_responses[0];
        assert_eq!((p.error_code, p.base_offset), (0, base));
    }
    send(&mut cluster, conn, 12, 3, &fetch("orders", 0, 1, 500), t0);
    let (_, AnyResponse::Fetch(f)) = recv(&mut cluster, ApiKey::Fetch, 12).unwrap() else {
        panic!()
    };
    let p = &f.responses[0].partitions[0];
    assert_eq!(p.high_watermark, 3);
    // Whole batches come back from the one holding offset 1.
    assert_eq!(
        values(p.records.as_ref().unwrap()),
        [(0, "a".into()), (1, "b".into()), (2, "c".into())]
    );
}

#[test]
fn an_empty_fetch_waits_for_data_or_its_deadline_in_virtual_time() {
    let t0 = Instant::now();
    let mut cluster = Cluster::new(ClusterConfig::default());
    cluster.create_topic("t", 1).unwrap();
    let consumer = cluster.connect(1);
    let producer = cluster.connect(1);

    send(&mut cluster, consumer, 12, 1, &fetch("t", 0, 0, 500), t0);
    assert!(cluster.poll_transmit().is_none(), "nothing to return yet");
    assert_eq!(
        cluster.poll_timeout(),
        Some(t0 + Duration::from_millis(500))
    );
    cluster.handle_timeout(t0 + Duration::from_millis(100)); // spurious: too early
    assert!(cluster.poll_transmit().is_none());

    // Data arriving wakes the fetch before its deadline.
    send(
        &mut cluster,
        producer,
        11,
        9,
        &produce("t", 0, batch(&["x"])),
        t0 + Duration::from_millis(200),
    );
    let first = cluster.poll_transmit().unwrap();
    let second = cluster.poll_transmit().unwrap();
    let fetch_reply = if first.conn == consumer {
        first
    } else {
        second
    };
    let (_, body) = frame::decode_response(ApiKey::Fetch, 12, fetch_reply.data.slice(4..)).unwrap();
    let AnyResponse::Fetch(f) = body else {
        panic!()
    };
    assert_eq!(
        values(f.responses[0].partitions[0].records.as_ref().unwrap()),
        [(0, "x".into())]
    );

    // With nothing new, the deadline answers it empty.
    send(
        &mut cluster,
        consumer,
        12,
        2,
        &fetch("t", 0, 1, 500),
        t0 + Duration::from_secs(1),
    );
    assert!(cluster.poll_transmit().is_none());
    cluster.handle_timeout(t0 + Duration::from_millis(1500));
    let (corr, AnyResponse::Fetch(f)) = recv(&mut cluster, ApiKey::Fetch, 12).unwrap() else {
        panic!()
    };
    assert_eq!(corr, 2);
    assert!(
        f.responses[0].partitions[0]
            .records
            .as_ref()
            .unwrap()
            .is_empty()
    );
    assert_eq!(cluster.poll_timeout(), None);
}

#[test]
fn the_wrong_broker_answers_not_leader() {
    let t0 = Instant::now();
    let mut cluster = Cluster::new(ClusterConfig {
        brokers: 3,
        ..Default::default()
    });
    cluster.create_topic("t", 3).unwrap();
    let conns: Vec<ConnId> = (1..=3).map(|b| cluster.connect(b)).collect();
    let mut leaders = 0;
    for (i, conn) in conns.iter().enumerate() {
        send(
            &mut cluster,
            *conn,
            11,
            i as i32,
            &produce("t", 0, batch(&["v"])),
            t0,
        );
        let (_, AnyResponse::Produce(r)) = recv(&mut cluster, ApiKey::Produce, 11).unwrap() else {
            panic!()
        };
        match r.responses[0].partition_responses[0].error_code {
            0 => leaders += 1,
            code => assert_eq!(code, ErrorCode::NotLeaderOrFollower.code()),
        }
    }
    assert_eq!(leaders, 1);
}

#[test]
fn garbage_closes_the_connection_without_a_response() {
    let mut cluster = Cluster::new(ClusterConfig::default());
    let conn = cluster.connect(1);
    let mut junk = BytesMut::new();
    junk.extend_from_slice(&12i32.to_be_bytes());
    junk.extend_from_slice(&[0xff; 12]);
    cluster.handle_input(conn, &junk, Instant::now());
    assert!(cluster.poll_transmit().is_none());
    assert_eq!(cluster.poll_close(), Some(conn));
}

fn produce_idempotent(
    topic: &str,
    pid: i64,
    epoch: i16,
    seq: i32,
    values: &[&str],
) -> ProduceRequest {
    let mut b = BatchBuilder::new(BatchOptions {
        producer_id: pid,
        producer_epoch: epoch,
        base_sequence: seq,
        ..Default::default()
    });
    for v in values {
        b.append(
            1_700_000_000_000,
            None,
            Some(v.as_bytes()),
            kasio_proto::records::NO_HEADERS,
        )
        .unwrap();
    }
    produce(topic, 0, b.finish().unwrap())
}

fn produce_result(cluster: &mut Cluster) -> (i16, i64) {
    let (_, AnyResponse::Produce(r)) = recv(cluster, ApiKey::Produce, 11).unwrap() else {
        panic!()
    };
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

#[test]
fn responses_on_a_connection_stay_in_request_order() {
    let t0 = Instant::now();
    let mut cluster = Cluster::new(ClusterConfig::default());
    cluster.create_topic("t", 1).unwrap();
    let conn = cluster.connect(1);
    send(&mut cluster, conn, 12, 1, &fetch("t", 0, 0, 300), t0);
    send(
        &mut cluster,
        conn,
        12,
        2,
        &kasio_proto::messages::MetadataRequest::default(),
        t0,
    );
    assert!(
        cluster.poll_transmit().is_none(),
        "the metadata answer must wait behind the fetch"
    );
    cluster.handle_timeout(t0 + Duration::from_millis(300));
    assert_eq!(recv(&mut cluster, ApiKey::Fetch, 12).unwrap().0, 1);
    assert_eq!(recv(&mut cluster, ApiKey::Metadata, 12).unwrap().0, 2);
}

#[test]
fn an_injected_produce_failure_appends_nothing() {
    let t0 = Instant::now();
    let mut cluster = Cluster::new(ClusterConfig::default());
    cluster.create_topic("t", 1).unwrap();
    let conn = cluster.connect(1);
    cluster.inject(Fault::FailNext {
        api: ApiKey::Produce,
        count: 2,
        error: ErrorCode::NotLeaderOrFollower,
    });
    for corr in 0..3 {
        send(
            &mut cluster,
            conn,
            11,
            corr,
            &produce("t", 0, batch(&["v"])),
            t0,
        );
    }
    let results: Vec<(i16, i64)> = (0..3).map(|_| produce_result(&mut cluster)).collect();
    let nl = ErrorCode::NotLeaderOrFollower.code();
    assert_eq!(results, [(nl, -1), (nl, -1), (0, 0)]);
}

#[test]
fn delayed_and_lost_responses() {
    let t0 = Instant::now();
    let mut cluster = Cluster::new(ClusterConfig::default());
    cluster.create_topic("t", 1).unwrap();
    let conn = cluster.connect(1);
    cluster.inject(Fault::Delay {
        api: ApiKey::Produce,
        count: 1,
        by: Duration::from_millis(250),
    });
    send(
        &mut cluster,
        conn,
        11,
        1,
        &produce("t", 0, batch(&["a"])),
        t0,
    );
    assert!(cluster.poll_transmit().is_none());
    assert_eq!(
        cluster.poll_timeout(),
        Some(t0 + Duration::from_millis(250))
    );
    cluster.handle_timeout(t0 + Duration::from_millis(250));
    assert_eq!(produce_result(&mut cluster), (0, 0));

    cluster.inject(Fault::Blackhole {
        api: ApiKey::Produce,
        count: 1,
    });
    send(
        &mut cluster,
        conn,
        11,
        2,
        &produce("t", 0, batch(&["b"])),
        t0,
    );
    assert!(cluster.poll_transmit().is_none(), "the response is lost");
    send(
        &mut cluster,
        conn,
        11,
        3,
        &produce("t", 0, batch(&["c"])),
        t0,
    );
    assert_eq!(
        produce_result(&mut cluster),
        (0, 2),
        "but the lost request was carried out"
    );
}

#[test]
fn idempotent_producers_are_checked_as_kafka_checks_them() {
    let t0 = Instant::now();
    let mut cluster = Cluster::new(ClusterConfig::default());
    cluster.create_topic("t", 1).unwrap();
    let conn = cluster.connect(1);
    send(
        &mut cluster,
        conn,
        5,
        1,
        &kasio_proto::messages::InitProducerIdRequest {
            transactional_id: None,
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        },
        t0,
    );
    let (_, AnyResponse::InitProducerId(init)) =
        recv(&mut cluster, ApiKey::InitProducerId, 5).unwrap()
    else {
        panic!()
    };
    let (pid, epoch) = (init.producer_id, init.producer_epoch);
    assert!(pid >= 0 && epoch == 0 && init.error_code == 0);

    let mut produce = |corr, epoch, seq, values: &[&str]| {
        send(
            &mut cluster,
            conn,
            11,
            corr,
            &produce_idempotent("t", pid, epoch, seq, values),
            t0,
        );
        produce_result(&mut cluster)
    };
    assert_eq!(produce(2, 0, 0, &["a", "b"]), (0, 0));
    // A retry of the same batch is recognised: its first offset again, nothing appended.
    assert_eq!(produce(3, 0, 0, &["a", "b"]), (0, 0));
    // A gap in the sequence is refused.
    assert_eq!(
        produce(4, 0, 5, &["x"]).0,
        ErrorCode::OutOfOrderSequenceNumber.code()
    );
    assert_eq!(produce(5, 0, 2, &["c"]), (0, 2));

    // Bumping the epoch (KIP-360) restarts sequences and fences the old epoch.
    send(
        &mut cluster,
        conn,
        5,
        6,
        &kasio_proto::messages::InitProducerIdRequest {
            transactional_id: None,
            producer_id: pid,
            producer_epoch: 0,
            ..Default::default()
        },
        t0,
    );
    let (_, AnyResponse::InitProducerId(bumped)) =
        recv(&mut cluster, ApiKey::InitProducerId, 5).unwrap()
    else {
        panic!()
    };
    assert_eq!((bumped.producer_id, bumped.producer_epoch), (pid, 1));
    send(
        &mut cluster,
        conn,
        11,
        7,
        &produce_idempotent("t", pid, 1, 0, &["d"]),
        t0,
    );
    assert_eq!(produce_result(&mut cluster), (0, 3));
    send(
        &mut cluster,
        conn,
        11,
        8,
        &produce_idempotent("t", pid, 0, 3, &["e"]),
        t0,
    );
    assert_eq!(
        produce_result(&mut cluster).0,
        ErrorCode::InvalidProducerEpoch.code()
    );

    send(&mut cluster, conn, 12, 9, &fetch("t", 0, 0, 0), t0);
    let (_, AnyResponse::Fetch(f)) = recv(&mut cluster, ApiKey::Fetch, 12).unwrap() else {
        panic!()
    };
    let got: Vec<String> = values(f.responses[0].partitions[0].records.as_ref().unwrap())
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert_eq!(got, ["a", "b", "c", "d"]);
}

#[test]
fn leaders_move_and_connections_drop_on_demand() {
    let t0 = Instant::now();
    let mut cluster = Cluster::new(ClusterConfig {
        brokers: 2,
        ..Default::default()
    });
    cluster.create_topic("t", 1).unwrap();
    let old = cluster.leader("t", 0).unwrap();
    let new = if old == 1 { 2 } else { 1 };
    cluster.move_leader("t", 0, new).unwrap();
    let conn = cluster.connect(old);
    send(
        &mut cluster,
        conn,
        11,
        1,
        &produce("t", 0, batch(&["v"])),
        t0,
    );
    assert_eq!(
        produce_result(&mut cluster).0,
        ErrorCode::NotLeaderOrFollower.code()
    );

    let other = cluster.connect(new);
    cluster.inject(Fault::DropConnections { broker: new });
    assert_eq!(cluster.poll_close(), Some(other));
    cluster.inject(Fault::RefuseConnections {
        broker: new,
        refuse: true,
    });
    assert!(!cluster.accepts(new) && cluster.accepts(old));
}

#[test]
fn topics_are_deleted_and_grown_and_the_cluster_described() {
    use kasio_proto::messages::{
        CreatePartitionsRequest, DeleteTopicsRequest, DescribeClusterRequest,
        create_partitions_request::CreatePartitionsTopic,
    };
    let t0 = Instant::now();
    let mut cluster = Cluster::new(ClusterConfig {
        brokers: 3,
        ..Default::default()
    });
    cluster.create_topic("grow", 1).unwrap();
    cluster.create_topic("gone", 2).unwrap();
    let conn = cluster.connect(1);

    let grow = CreatePartitionsRequest {
        topics: vec![
            CreatePartitionsTopic {
                name: "grow".into(),
                count: 4,
                assignments: None,
                ..Default::default()
            },
            CreatePartitionsTopic {
                name: "grow".into(),
                count: 2,
                assignments: None,
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    send(&mut cluster, conn, 3, 1, &grow, t0);
    let (_, AnyResponse::CreatePartitions(r)) =
        recv(&mut cluster, ApiKey::CreatePartitions, 3).unwrap()
    else {
        panic!()
    };
    assert_eq!(r.results[0].error_code, 0);
    assert_eq!(
        r.results[1].error_code,
        ErrorCode::InvalidPartitions.code(),
        "a topic cannot shrink"
    );
    let leaders: Vec<i32> = (0..4).map(|p| cluster.leader("grow", p).unwrap()).collect();
    assert_eq!(
        leaders
            .iter()
            .collect::<std::collections::HashSet<_>>()
            .len(),
        3,
        "{leaders:?}"
    );

    let delete = DeleteTopicsRequest {
        topic_names: vec!["gone".into(), "never".into()],
        ..Default::default()
    };
    send(&mut cluster, conn, 5, 2, &delete, t0);
    let (_, AnyResponse::DeleteTopics(r)) = recv(&mut cluster, ApiKey::DeleteTopics, 5).unwrap()
    else {
        panic!()
    };
    let codes: Vec<i16> = r.responses.iter().map(|t| t.error_code).collect();
    assert_eq!(codes, [0, ErrorCode::UnknownTopicOrPartition.code()]);
    assert_eq!(cluster.leader("gone", 0), None);

    send(
        &mut cluster,
        conn,
        2,
        3,
        &DescribeClusterRequest::default(),
        t0,
    );
    let (_, AnyResponse::DescribeCluster(r)) =
        recv(&mut cluster, ApiKey::DescribeCluster, 2).unwrap()
    else {
        panic!()
    };
    assert_eq!(
        r.brokers.iter().map(|b| b.broker_id).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(r.cluster_id, "kasio-mock");
}

#[test]
fn metadata_for_a_deleted_topic_reports_it_unknown() {
    use kasio_proto::messages::{
        DeleteTopicsRequest, MetadataRequest, metadata_request::MetadataRequestTopic,
    };
    let t0 = Instant::now();
    let mut cluster = Cluster::new(ClusterConfig::default());
    let id = cluster.create_topic("gone", 1).unwrap();
    let conn = cluster.connect(1);
    // Names go in `topic_names` up to v5 (as librdkafka sends them).
    send(
        &mut cluster,
        conn,
        4,
        1,
        &DeleteTopicsRequest {
            topic_names: vec!["gone".into()],
            ..Default::default()
        },
        t0,
    );
    recv(&mut cluster, ApiKey::DeleteTopics, 4).unwrap();
    for (corr, topic) in [
        (
            2,
            MetadataRequestTopic {
                name: Some("gone".into()),
                topic_id: kasio_proto::Uuid::ZERO,
                ..Default::default()
            },
        ),
        (
            3,
            MetadataRequestTopic {
                name: None,
                topic_id: id,
                ..Default::default()
            },
        ),
    ] {
        let req = MetadataRequest {
            topics: Some(vec![topic]),
            allow_auto_topic_creation: false,
            ..Default::default()
        };
        send(&mut cluster, conn, 13, corr, &req, t0);
        assert_eq!(
            cluster.poll_close(),
            None,
            "request {corr} closed the connection"
        );
        let (_, AnyResponse::Metadata(m)) = recv(&mut cluster, ApiKey::Metadata, 13).unwrap()
        else {
            panic!()
        };
        assert_ne!(m.topics[0].error_code, 0);
    }
}

#[test]
fn a_fetch_session_answers_only_what_changed() {
    let mut cluster = Cluster::new(ClusterConfig::default());
    cluster.create_topic("s", 2).unwrap();
    let now = Instant::now();
    let conn = cluster.connect(1);
    send(
        &mut cluster,
        conn,
        9,
        1,
        &produce("s", 0, batch(&["a"])),
        now,
    );
    let _ = recv(&mut cluster, ApiKey::Produce, 9);
    // Open a session with both partitions (epoch 0): a full answer and a session id.
    let mut open = fetch("s", 0, 0, 0);
    open.session_epoch = 0;
    open.topics[0].partitions.push(FetchPartition {
        partition: 1,
        fetch_offset: 0,
        partition_max_bytes: 1 << 20,
        ..Default::default()
    });
    send(&mut cluster, conn, 12, 2, &open, now);
    let (_, AnyResponse::Fetch(r)) = recv(&mut cluster, ApiKey::Fetch, 12).unwrap() else {
        panic!()
    };
    assert_ne!(r.session_id, 0);
    assert_eq!(r.responses[0].partitions.len(), 2);
    let session = r.session_id;
    // Epoch 1 moves partition 0 on and names nothing else: partition 1 has nothing new, so
    // only partition 0's answer (its offset moved) comes back.
    send(
        &mut cluster,
        conn,
        9,
        3,
        &produce("s", 1, batch(&["b"])),
        now,
    );
    let _ = recv(&mut cluster, ApiKey::Produce, 9);
    let mut next = fetch("s", 0, 1, 0);
    next.session_id = session;
    next.session_epoch = 1;
    send(&mut cluster, conn, 12, 4, &next, now);
    let (_, AnyResponse::Fetch(r)) = recv(&mut cluster, ApiKey::Fetch, 12).unwrap() else {
        panic!()
    };
    assert_eq!(r.session_id, session);
    let parts: Vec<i32> = r
        .responses
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.partition_index))
        .collect();
    assert_eq!(
        parts,
        [1],
        "partition 1 got a record; partition 0 has nothing new"
    );
    // A wrong epoch is refused.
    next.session_epoch = 7;
    send(&mut cluster, conn, 12, 5, &next, now);
    let (_, AnyResponse::Fetch(r)) = recv(&mut cluster, ApiKey::Fetch, 12).unwrap() else {
        panic!()
    };
    assert_eq!(
        r.error_code,
        kasio_proto::ErrorCode::InvalidFetchSessionEpoch.code()
    );
}
