//! `kasio quickstart`: a first minute with kasio. Produces records, consumes them back in a
//! consumer group and checks every one; with no brokers given, on the embedded kasio-mock
//! cluster.

use crate::{clients, latency::Latencies, output::Output, progress::Progress, props};
use clap::Args;
use kasio::Fetched;
use kasio::mock::{ClusterConfig, MockCluster};
use kasio::{ConsumerEvent, NewTopic, Record, core::partitioner::key_partition};
use serde_json::json;
use std::time::{Duration, Instant};

const PARTITIONS: i32 = 12;
const KEYS: u64 = 1000;

#[derive(Args, Debug)]
pub(crate) struct QuickstartArgs {
    /// How many records.
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
}

pub(crate) async fn run(
    args: QuickstartArgs,
    props: &[(String, String)],
    out: &Output,
) -> Result<(), String> {
    let mut props = props.to_vec();
    let mock = if props::has_bootstrap(&props) {
        None
    } else {
        let cluster = MockCluster::start(ClusterConfig {
            brokers: 3,
            ..Default::default()
        })
        .map_err(|e| format!("cannot start the embedded cluster: {e}"))?;
        eprintln!(
            "started the embedded kasio-mock cluster (3 brokers) at {}",
            cluster.bootstrap()
        );
        props.push(("bootstrap.servers".into(), cluster.bootstrap()));
        Some(cluster)
    };
    let result = tour(&args, &props, out).await;
    if let Some(m) = mock {
        m.stop();
    }
    result
}

async fn tour(
    args: &QuickstartArgs,
    props: &[(String, String)],
    out: &Output,
) -> Result<(), String> {
    let count = args.records;
    let topic = format!("kasio-quickstart-{}", std::process::id());
    let admin = clients::helper_admin(props)?;
    let created = admin
        .create_topics(&[NewTopic::new(&topic, PARTITIONS, -1)], false)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(e) = created.first().and_then(|r| r.error.as_ref()) {
        admin.close().await;
        return Err(format!("creating {topic}: {e}"));
    }
    // A real cluster publishes a new topic to its brokers a moment later.
    let deadline = Instant::now() + Duration::from_secs(30);
    while clients::partitions(&admin, &topic)
        .await
        .map_or(0, |p| p.len())
        < PARTITIONS as usize
    {
        if Instant::now() > deadline {
            admin.close().await;
            return Err(format!("{topic} did not appear in the cluster's metadata"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let producer = clients::producer(
        props,
        &[
            ("batch.size", "262144"),
            ("compression.type", "lz4"),
            ("acks", "all"),
            ("enable.idempotence", "true"),
        ],
    )?;
    eprintln!("producing {count} keyed records (acks=all, idempotent, lz4) to {topic}");
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(Instant, kasio::tokio::Delivery)>(65_536);
    let waiter = tokio::spawn(async move {
        let mut latencies = Vec::new();
        while let Some((sent, delivery)) = rx.recv().await {
            delivery.await?;
            latencies.push(sent.elapsed());
        }
        Ok::<_, kasio::ProduceError>(latencies)
    });
    let mut bar = Progress::new("produce", count);
    let start = Instant::now();
    for i in 0..count {
        let key = format!("user-{}", i % KEYS);
        let value = format!("event {i}");
        let record = Record::new(&topic)
            .key(key.as_bytes())
            .value(value.as_bytes());
        let delivery = producer.send(record).await.map_err(|e| e.to_string())?;
        tx.send((Instant::now(), delivery))
            .await
            .map_err(|e| e.to_string())?;
        if i % 4096 == 0 {
            bar.set(i);
        }
    }
    drop(tx);
    let latencies = waiter
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("a record was not delivered: {e}"))?;
    let produced = start.elapsed();
    bar.finish(count);
    producer.close().await;
    let l = Latencies::new(latencies);
    if !out.is_json() {
        println!(
            "produced {count} records in {:.2} s ({:.0} records/s); delivery latency {}",
            produced.as_secs_f64(),
            count as f64 / produced.as_secs_f64(),
            l.summary()
        );
    }

    let group = format!("{topic}-group");
    let consumer = clients::consumer(
        props,
        &[
            ("group.id", &group),
            ("auto.offset.reset", "earliest"),
            ("enable.auto.commit", "false"),
        ],
    )?;
    consumer
        .subscribe(&[topic.as_str()])
        .map_err(|e| e.to_string())?;
    eprintln!("consuming them back as a member of group {group}");
    let mut bar = Progress::new("consume", count);
    let start = Instant::now();
    let mut seen = vec![false; usize::try_from(count).map_err(|e| e.to_string())?];
    let (mut got, mut missing_key, mut twice, mut strays) = (0u64, 0u64, 0u64, 0u64);
    while got < count {
        let next = tokio::time::timeout(Duration::from_secs(60), consumer.next())
            .await
            .map_err(|_| format!("no record for 60 s after {got} of {count}"))?;
        match next {
            Fetched::Batch(batch) => {
                batch
                    .for_each(|r| {
                        let value = std::str::from_utf8(r.value.unwrap_or_default()).unwrap_or("");
                        let Some(i) = value
                            .strip_prefix("event ")
                            .and_then(|n| n.parse::<u64>().ok())
                        else {
                            strays += 1;
                            return;
                        };
                        let key = format!("user-{}", i % KEYS);
                        let right = key_partition(key.as_bytes(), PARTITIONS) == batch.partition;
                        match seen.get_mut(usize::try_from(i).unwrap_or(usize::MAX)) {
                            None => strays += 1,
                            Some(slot) if *slot => twice += 1,
                            Some(slot) => {
                                *slot = true;
                                got += 1;
                                if r.key != Some(key.as_bytes()) || !right {
                                    missing_key += 1;
                                }
                            }
                        }
                    })
                    .map_err(|e| e.to_string())?;
                bar.set(got);
            }
            Fetched::Event(ConsumerEvent::GroupError { error }) => {
                return Err(format!("group: {error}"));
            }
            Fetched::Event(ConsumerEvent::Security(e)) => return Err(e.to_string()),
            Fetched::Event(ConsumerEvent::Error {
                partition, error, ..
            }) => {
                return Err(format!("partition {partition}: {error}"));
            }
            _ => {}
        }
    }
    let consumed = start.elapsed();
    bar.finish(got);
    if let Err(e) = consumer.commit_positions().await {
        eprintln!("kasio: commit failed: {e}");
    }
    consumer.close().await;
    let _ = admin.delete_groups(&[&group]).await;
    let _ = admin
        .delete_topics(&[kasio::TopicRef::Name(topic.clone())])
        .await;
    admin.close().await;

    let verified = missing_key == 0 && twice == 0 && strays == 0 && got == count;
    if out.is_json() {
        println!(
            "{}",
            json!({"records": count, "produce_seconds": produced.as_secs_f64(), "consume_seconds": consumed.as_secs_f64(),
                   "latency_ms": {"p50": l.at(0.5).as_secs_f64() * 1e3, "p99": l.at(0.99).as_secs_f64() * 1e3,
                                  "max": l.at(1.0).as_secs_f64() * 1e3},
                   "verified": verified, "duplicates": twice, "wrong_key_or_partition": missing_key, "unexpected": strays})
        );
    } else {
        println!(
            "consumed {got} records in {:.2} s ({:.0} records/s)",
            consumed.as_secs_f64(),
            got as f64 / consumed.as_secs_f64()
        );
    }
    if !verified {
        return Err(format!(
            "verification failed: {twice} read twice, {missing_key} with the wrong key or partition, {strays} unexpected"
        ));
    }
    if !out.is_json() {
        println!(
            "verified all {count} records: each exactly once, with its key, on the partition the Java client would pick"
        );
    }
    Ok(())
}
