//! Consumes a topic as a member of a consumer group (KIP-848, `group.protocol=consumer`,
//! unless a property says otherwise): prints each record as `partition offset key value`
//! and each assignment change on stderr with the Unix time in milliseconds
//! (`assigned at 1700000000000: [0, 1]`), and leaves the group once it has had partitions
//! and no record has come for IDLE_MS (or after 60 s without partitions). Its output is
//! flushed after every batch, before the next is taken, so what auto commit stores (what
//! was handed out before) has been written; with `enable.auto.commit=false` it commits its
//! positions itself every second, after writing. Any further `key=value` arguments are
//! consumer properties.
//!
//! `cargo run -p kasio-tokio --example group_consumer -- localhost:9092 my-topic my-group [IDLE_MS] [key=value ...]`

use kasio_tokio::{Consumer, ConsumerEvent, Fetched};
use std::{
    io::Write,
    time::{Duration, Instant, SystemTime},
};

/// Milliseconds since the Unix epoch, comparable between processes.
fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let bootstrap = args.next().unwrap_or_else(|| "localhost:9092".into());
    let topic = args.next().unwrap_or_else(|| "kasio-example".into());
    let group = args.next().unwrap_or_else(|| "kasio-example-group".into());
    let idle = Duration::from_millis(args.next().map_or(Ok(5000), |a| a.parse())?);
    let extra: Vec<(String, String)> = args
        .map(|a| match a.split_once('=') {
            Some((k, v)) => Ok((k.to_string(), v.to_string())),
            None => Err(format!("not key=value: {a}")),
        })
        .collect::<Result<_, _>>()?;
    let mut props = vec![
        ("bootstrap.servers", bootstrap.as_str()),
        ("group.id", group.as_str()),
        ("group.protocol", "consumer"),
        ("auto.offset.reset", "earliest"),
    ];
    props.extend(extra.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let manual = extra
        .iter()
        .any(|(k, v)| k == "enable.auto.commit" && v == "false");
    let consumer = Consumer::from_properties(props)?;
    consumer.subscribe(&[topic.as_str()])?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut assigned = false;
    let mut committed_at = Instant::now();
    let parts = |partitions: &[(std::sync::Arc<str>, i32)]| {
        partitions.iter().map(|(_, p)| *p).collect::<Vec<_>>()
    };
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
            Fetched::Batch(batch) => {
                batch.for_each(|r| {
                    let key = String::from_utf8_lossy(r.key.unwrap_or_default());
                    let value = String::from_utf8_lossy(r.value.unwrap_or_default());
                    let _ = writeln!(out, "{} {} {key} {value}", batch.partition, r.offset);
                })?;
                out.flush()?;
                if manual && committed_at.elapsed() >= Duration::from_secs(1) {
                    // Everything handed out so far is written: commit it.
                    consumer.commit_positions()?;
                    committed_at = Instant::now();
                }
            }
            Fetched::Event(ConsumerEvent::Assigned { partitions }) => {
                assigned = true;
                eprintln!("assigned at {}: {:?}", unix_ms(), parts(&partitions));
            }
            Fetched::Event(ConsumerEvent::Revoked { partitions }) => {
                eprintln!("revoked at {}: {:?}", unix_ms(), parts(&partitions));
            }
            Fetched::Event(ConsumerEvent::Lost { partitions }) => {
                eprintln!("lost at {}: {:?}", unix_ms(), parts(&partitions));
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
