//! Consumes a topic as a member of a consumer group (KIP-848, `group.protocol=consumer`,
//! unless a property says otherwise): prints each record as `partition offset key value`
//! and each assignment change on stderr with the Unix time in milliseconds
//! (`assigned at 1700000000000: [0, 1]`), and leaves the group once it has had partitions
//! and no record has come for IDLE_MS (or after 60 s without partitions). It holds
//! revocations, as the Java client's rebalance listener does: `revoked at` is printed while
//! the member still owns the partitions, before the group may give them to another. Its output is
//! flushed after every batch, before the next is taken, so what auto commit stores (what
//! was handed out before) has been written; with `enable.auto.commit=false` it commits its
//! positions itself every second, after writing. Any further `key=value` arguments are
//! consumer properties.
//!
//! `cargo run -p kasio --example group_consumer -- localhost:9092 my-topic my-group [IDLE_MS] [key=value ...]`

use kasio::{ConsumerConfig, ConsumerEvent, Fetched, TopicPartition, tokio::Consumer};
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
    let mut config = ConsumerConfig::new(&bootstrap)?;
    config
        .set("group.id", &group)?
        .set("group.protocol", "consumer")?
        .set("auto.offset.reset", "earliest")?;
    for (k, v) in &extra {
        config.set(k, v)?;
    }
    config.hold_revocations = true;
    let manual = !config.enable_auto_commit;
    let consumer = Consumer::new(config)?;
    consumer.subscribe(&[topic.as_str()])?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut assigned = false;
    let mut committed_at = Instant::now();
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
                    if let Err(e) = consumer.commit_positions().await {
                        eprintln!("commit failed, the next one retries: {e}");
                    }
                    committed_at = Instant::now();
                }
            }
            Fetched::Event(event) => {
                assigned |= matches!(event, ConsumerEvent::Assigned { .. });
                if let Some(done) = on_event(&consumer, event, manual).await {
                    return Err(done.into());
                }
            }
            _ => {}
        }
    }
    out.flush()?;
    consumer
        .commit_positions()
        .await
        .map_err(|e| format!("commit: {e}"))?;
    // Leaving gives everything up: said while the member still owns it, as the Java
    // client's listener hears of it before the member leaves.
    let owned = consumer.assignment();
    if !owned.is_empty() {
        eprintln!("revoked at {}: {:?}", unix_ms(), parts(&owned));
    }
    consumer.unsubscribe();
    while consumer.in_group() {
        if let Ok(Fetched::Event(ConsumerEvent::Revoking { .. })) =
            tokio::time::timeout(Duration::from_millis(200), consumer.next()).await
        {
            consumer.release_revocation();
        }
    }
    consumer.close().await;
    Ok(())
}

fn parts(partitions: &[TopicPartition]) -> Vec<i32> {
    partitions.iter().map(|tp| tp.partition).collect()
}

/// Reports a rebalance event on stderr; a revocation is reported while the member still
/// owns the partitions, committed first when committing is by hand, and then released.
/// `Some(reason)` when the member cannot go on.
async fn on_event(consumer: &Consumer, event: ConsumerEvent, manual: bool) -> Option<String> {
    match event {
        ConsumerEvent::Assigned { partitions } => {
            eprintln!("assigned at {}: {:?}", unix_ms(), parts(&partitions));
        }
        ConsumerEvent::Revoking { partitions } => {
            eprintln!("revoked at {}: {:?}", unix_ms(), parts(&partitions));
            if manual && let Err(e) = consumer.commit_positions().await {
                // Everything handed out is written: its next owner starts after it.
                eprintln!("commit before giving partitions up failed: {e}");
            }
            consumer.release_revocation();
        }
        ConsumerEvent::Revoked { partitions } => {
            eprintln!("gave up at {}: {:?}", unix_ms(), parts(&partitions));
        }
        ConsumerEvent::Lost { partitions } => {
            eprintln!("lost at {}: {:?}", unix_ms(), parts(&partitions));
        }
        ConsumerEvent::GroupError { error } => return Some(format!("group: {error}")),
        _ => {}
    }
    None
}
