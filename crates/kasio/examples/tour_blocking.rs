//! A first program on plain threads, with no async runtime: creates a topic, produces to it, reads it back as a member of
//! a consumer group (pausing and resuming, committing after each call for records and
//! awaiting the commit), checks every record came exactly once and that the group's
//! committed offsets cover them all, then deletes the topic. On the embedded kasio-mock
//! cluster unless `KASIO_BOOTSTRAP` names brokers. `tour` and `tour_smol` are the same
//! program on tokio and smol.
//!
//! `cargo run -p kasio --features blocking,mock --example tour_blocking [RECORDS]`

use kasio::{
    NewTopic, Record, TopicRef,
    blocking::{Admin, Consumer, Producer},
    mock::{ClusterConfig, MockCluster},
};
use std::{collections::BTreeSet, time::Duration};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let records: u64 = std::env::args().nth(1).map_or(Ok(10_000), |n| n.parse())?;
    let (bootstrap, _embedded) = match std::env::var("KASIO_BOOTSTRAP") {
        Ok(b) => (b, None),
        Err(_) => {
            let cluster = MockCluster::start(ClusterConfig::default())?;
            (cluster.bootstrap(), Some(cluster))
        }
    };
    let servers = ("bootstrap.servers", bootstrap.as_str());
    let topic = format!("tour-blocking-{}", std::process::id());

    let admin = Admin::from_properties([servers])?;
    let created = admin
        .create_topics(&[NewTopic::new(&topic, 3, 1)], false)
        .wait()?;
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
        deliveries.push(producer.send(record)?);
    }
    for delivery in deliveries {
        delivery.wait()?;
    }
    producer.close();

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
        let batch = consumer.poll_records(500, Duration::from_secs(30))?;
        if batch.is_empty() {
            return Err(format!(
                "{} of {records} records read, then nothing for 30 s",
                seen.len()
            )
            .into());
        }
        for record in &batch {
            let value = std::str::from_utf8(record.value.as_deref().unwrap_or_default())?;
            if !seen.insert(value.parse::<u64>()?) {
                return Err(format!("record {value} read twice").into());
            }
        }
        // Stored before more is read: a member that takes these partitions over starts here.
        consumer.commit_positions()?;
        if !paused && seen.len() * 2 >= usize::try_from(records)? {
            // Half way: a pause and a resume, as an application under back-pressure would.
            paused = true;
            consumer.pause(consumer.assignment());
            std::thread::sleep(Duration::from_millis(200));
            consumer.resume(consumer.assignment());
        }
    }
    let committed: i64 = admin
        .group_offsets(&group)
        .wait()?
        .iter()
        .map(|o| o.offset)
        .sum();
    if committed != i64::try_from(records)? {
        return Err(format!("the group committed {committed} of {records}").into());
    }
    consumer.close();

    admin
        .delete_topics(&[TopicRef::Name(topic.clone())])
        .wait()?;
    admin.close();
    println!("tour (threads): {records} records produced and read exactly once, all committed");
    Ok(())
}
