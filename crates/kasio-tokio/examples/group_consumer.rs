//! Consumes a topic as a member of a consumer group (KIP-848, `group.protocol=consumer`):
//! prints each record as `partition offset key value` and each assignment change on stderr,
//! commits its positions and leaves the group once it has had partitions and no record has
//! come for IDLE_MS (or after 60 s without partitions).
//!
//! `cargo run -p kasio-tokio --example group_consumer -- localhost:9092 my-topic my-group [IDLE_MS]`

use kasio_tokio::{Consumer, ConsumerEvent, Fetched};
use std::{io::Write, time::Duration};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let bootstrap = args.next().unwrap_or_else(|| "localhost:9092".into());
    let topic = args.next().unwrap_or_else(|| "kasio-example".into());
    let group = args.next().unwrap_or_else(|| "kasio-example-group".into());
    let idle = Duration::from_millis(args.next().map_or(Ok(5000), |a| a.parse())?);
    let consumer = Consumer::from_properties([
        ("bootstrap.servers", bootstrap.as_str()),
        ("group.id", group.as_str()),
        ("group.protocol", "consumer"),
        // This member commits itself, once it has written what it read.
        ("enable.auto.commit", "false"),
        ("auto.offset.reset", "earliest"),
    ])?;
    consumer.subscribe(&[topic.as_str()])?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut assigned = false;
    loop {
        // Before the first assignment the coordinator may be waiting for another member
        // to give partitions up, which takes up to a heartbeat interval or two.
        let wait = if assigned {
            idle
        } else {
            Duration::from_secs(60)
        };
        let Ok(next) = tokio::time::timeout(wait, consumer.next()).await else {
            break;
        };
        match next {
            Fetched::Batch(batch) => batch.for_each(|r| {
                let key = String::from_utf8_lossy(r.key.unwrap_or_default());
                let value = String::from_utf8_lossy(r.value.unwrap_or_default());
                let _ = writeln!(out, "{} {} {key} {value}", batch.partition, r.offset);
            })?,
            Fetched::Event(ConsumerEvent::Assigned { partitions }) => {
                assigned = true;
                eprintln!(
                    "assigned {:?}",
                    partitions.iter().map(|(_, p)| p).collect::<Vec<_>>()
                );
            }
            Fetched::Event(ConsumerEvent::Revoked { partitions }) => {
                eprintln!(
                    "revoked {:?}",
                    partitions.iter().map(|(_, p)| p).collect::<Vec<_>>()
                );
            }
            Fetched::Event(ConsumerEvent::Lost { partitions }) => {
                eprintln!(
                    "lost {:?}",
                    partitions.iter().map(|(_, p)| p).collect::<Vec<_>>()
                );
            }
            Fetched::Event(ConsumerEvent::Committed { offsets, error }) => {
                eprintln!("committed {} offsets, error {error:?}", offsets.len());
            }
            Fetched::Event(ConsumerEvent::GroupError { error }) => {
                return Err(format!("group: {error}").into());
            }
            Fetched::Event(_) => {}
            _ => {}
        }
    }
    out.flush()?;
    consumer.commit_positions()?;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), consumer.next()).await? {
            Fetched::Event(ConsumerEvent::Committed { error: None, .. }) => break,
            Fetched::Event(ConsumerEvent::Committed { error: Some(e), .. }) => {
                return Err(format!("commit: {e}").into());
            }
            _ => {}
        }
    }
    consumer.unsubscribe();
    while consumer.in_group() {
        let _ = tokio::time::timeout(Duration::from_millis(200), consumer.next()).await;
    }
    consumer.close();
    Ok(())
}
