//! Reads partitions `0..PARTITIONS` of a topic to their current end and prints each record
//! as `partition offset key value` (keys and values as UTF-8, lossily). Without a group it
//! reads from the beginning; with one it starts from the group's committed offsets (the
//! beginning where there are none) and commits its positions at the end.
//!
//! `cargo run -p kasio --example simple_consumer -- localhost:9092 my-topic 3 [read_committed [GROUP]]`

use kasio::{ConsumerEvent, Fetched, Seek, TopicPartition, tokio::Consumer};
use std::io::Write;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let bootstrap = args.next().unwrap_or_else(|| "localhost:9092".into());
    let topic = args.next().unwrap_or_else(|| "kasio-example".into());
    let partitions: i32 = args.next().map_or(Ok(1), |p| p.parse())?;
    let isolation = args.next().unwrap_or_else(|| "read_uncommitted".into());
    let group = args.next().unwrap_or_default();
    let consumer = Consumer::from_properties([
        ("bootstrap.servers", bootstrap.as_str()),
        ("isolation.level", isolation.as_str()),
        ("group.id", group.as_str()),
        ("auto.offset.reset", "earliest"),
        // It commits its positions itself, once it has read everything.
        ("enable.auto.commit", "false"),
    ])?;
    let assignment: Vec<TopicPartition> = (0..partitions)
        .map(|p| TopicPartition::new(topic.as_str(), p))
        .collect();
    consumer.assign(&assignment);
    if group.is_empty() {
        for p in 0..partitions {
            consumer.seek(&topic, p, Seek::Beginning);
        }
    }
    let mut at_end = std::collections::HashSet::new();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    while at_end.len() < assignment.len() {
        match consumer.next().await {
            Fetched::Batch(batch) => batch.for_each(|r| {
                let key = String::from_utf8_lossy(r.key.unwrap_or_default());
                let value = String::from_utf8_lossy(r.value.unwrap_or_default());
                let _ = writeln!(out, "{} {} {key} {value}", batch.partition, r.offset);
            })?,
            Fetched::Event(ConsumerEvent::EndOfPartition { partition, .. }) => {
                at_end.insert(partition);
            }
            Fetched::Event(ConsumerEvent::Error {
                partition, error, ..
            }) => {
                return Err(format!("partition {partition}: {error}").into());
            }
            Fetched::Event(_) => {}
            _ => {}
        }
    }
    out.flush()?;
    if !group.is_empty() {
        consumer
            .commit_positions()
            .await
            .map_err(|e| format!("commit: {e}"))?;
    }
    consumer.close().await;
    Ok(())
}
