//! A first program on smol (the same on async-std): creates a topic, produces to it, reads it back as a member of
//! a consumer group (pausing and resuming, committing after each call for records and
//! awaiting the commit), checks every record came exactly once and that the group's
//! committed offsets cover them all, then deletes the topic. On the embedded kasio-mock
//! cluster unless `KASIO_BOOTSTRAP` names brokers. `tour` and `tour_blocking` are the same
//! program on tokio and on threads.
//!
//! `cargo run -p kasio --features smol,mock --example tour_smol [RECORDS]`

use kasio::{
    NewTopic, Record, TopicRef,
    mock::{ClusterConfig, MockCluster},
    smol::{Admin, Consumer, Producer},
};
use std::{collections::BTreeSet, time::Duration};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    smol::block_on(tour())
}

async fn tour() -> Result<(), Box<dyn std::error::Error>> {
    let records: u64 = std::env::args().nth(1).map_or(Ok(10_000), |n| n.parse())?;
    let (bootstrap, _embedded) = match std::env::var("KASIO_BOOTSTRAP") {
        Ok(b) => (b, None),
        Err(_) => {
            let cluster = MockCluster::start(ClusterConfig::default())?;
            (cluster.bootstrap(), Some(cluster))
        }
    };
    let servers = ("bootstrap.servers", bootstrap.as_str());
    let topic = format!("tour-smol-{}", std::process::id());

    let admin = Admin::from_properties([servers])?;
    let created = admin
        .create_topics(&[NewTopic::new(&topic, 3, 1)], false)
        .await?;
    if let Some(e) = &created[0].error {
        return Err(format!("creating {topic}: {e}").into());
    }

    let producer = Producer::from_properties([servers, ("linger.ms", "5")])?;
    let mut deliveries = Vec::new();
    for i in 0..records {
        let value = i.to_string();
        let record = Record::new(&topic)
            .key(value.as_bytes())
            .value(value.as_bytes());
        deliveries.push(producer.send(record).await?);
    }
    for delivery in deliveries {
        delivery.await?;
    }
    producer.close().await;

    let group = format!("{topic}-group");
    let consumer = Consumer::from_properties([
        servers,
        ("group.id", group.as_str()),
        ("auto.offset.reset", "earliest"),
        ("enable.auto.commit", "false"),
    ])?;
    consumer.subscribe(&[topic.as_str()])?;
    let mut seen = BTreeSet::new();
    let mut paused = false;
    while seen.len() < usize::try_from(records)? {
        let batch = smol::future::or(async { Some(consumer.next_records(500).await) }, async {
            smol::Timer::after(Duration::from_secs(30)).await;
            None
        })
        .await
        .ok_or_else(|| {
            format!(
                "{} of {records} records read, then nothing for 30 s",
                seen.len()
            )
        })??;
        for record in &batch {
            let value = std::str::from_utf8(record.value.as_deref().unwrap_or_default())?;
            if !seen.insert(value.parse::<u64>()?) {
                return Err(format!("record {value} read twice").into());
            }
        }
        // Stored before more is read: a member that takes these partitions over starts here.
        consumer.commit_positions().await?;
        if !paused && seen.len() * 2 >= usize::try_from(records)? {
            // Half way: a pause and a resume, as an application under back-pressure would.
            paused = true;
            consumer.pause(consumer.assignment());
            smol::Timer::after(Duration::from_millis(200)).await;
            consumer.resume(consumer.assignment());
        }
    }
    let committed: i64 = admin
        .group_offsets(&group)
        .await?
        .iter()
        .map(|o| o.offset)
        .sum();
    if committed != i64::try_from(records)? {
        return Err(format!("the group committed {committed} of {records}").into());
    }
    consumer.close().await;

    admin
        .delete_topics(&[TopicRef::Name(topic.clone())])
        .await?;
    admin.close().await;
    println!("tour (smol): {records} records produced and read exactly once, all committed");
    Ok(())
}
