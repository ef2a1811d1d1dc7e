//! A group member that commits by hand after processing: reads the topic as a stream
//! (`futures_core::Stream`), "processes" each batch (counts its records and bytes), and
//! commits what it has processed every COMMIT_EVERY batches, so a crash re-reads at most
//! that many batches and never skips one. It holds revocations: when the group takes
//! partitions away it commits what it processed of them first, so a rebalance re-reads
//! nothing. Stops after IDLE_MS without records, commits and leaves the group.
//!
//! `cargo run -p kasio --example async_consumer -- localhost:9092 my-topic my-group [IDLE_MS [KEY=VALUE...]]`

use futures_lite::StreamExt;
use kasio::{ConsumerConfig, ConsumerEvent, Fetched, TopicPartitionOffset, tokio::Consumer};
use std::{collections::BTreeMap, time::Duration};

/// Batches processed between commits.
const COMMIT_EVERY: u32 = 20;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let bootstrap = args.next().unwrap_or_else(|| "localhost:9092".into());
    let topic = args.next().unwrap_or_else(|| "kasio-example".into());
    let group = args.next().unwrap_or_else(|| "kasio-async-group".into());
    let idle = Duration::from_millis(args.next().map_or(Ok(5000), |a| a.parse())?);
    let mut config = ConsumerConfig::new(&bootstrap)?;
    config
        .set("group.id", &group)?
        .set("auto.offset.reset", "earliest")?
        // Committed below, once processed.
        .set("enable.auto.commit", "false")?;
    // Any other consumer property, as KEY=VALUE (group.protocol=consumer, say).
    for prop in std::env::args().skip(5) {
        let (k, v) = prop.split_once('=').ok_or("properties are KEY=VALUE")?;
        config.set(k, v)?;
    }
    config.hold_revocations = true;
    let consumer = Consumer::new(config)?;
    consumer.subscribe(&[topic.as_str()])?;
    let mut fetched = consumer.stream();
    // The next offset to read per partition, for the processed records.
    let mut done: BTreeMap<i32, i64> = BTreeMap::new();
    let (mut records, mut bytes, mut batches) = (0u64, 0u64, 0u32);
    let offsets = |done: &BTreeMap<i32, i64>| -> Vec<TopicPartitionOffset> {
        done.iter()
            .map(|(&p, &o)| TopicPartitionOffset::new(topic.as_str(), p, o))
            .collect()
    };
    while let Ok(Some(next)) = tokio::time::timeout(idle, fetched.next()).await {
        match next {
            Fetched::Batch(batch) => {
                batch.for_each(|r| {
                    records += 1;
                    bytes += r.value.map_or(0, <[u8]>::len) as u64;
                })?;
                done.insert(batch.partition, batch.next_offset());
                batches += 1;
                if batches % COMMIT_EVERY == 0
                    && let Err(error) = consumer.commit(offsets(&done)).await
                {
                    eprintln!("commit failed, the next one retries: {error}");
                }
            }
            Fetched::Event(ConsumerEvent::Revoking { partitions }) => {
                // Still ours: commit what was processed, so their next owner starts there.
                let theirs: Vec<TopicPartitionOffset> = partitions
                    .iter()
                    .filter_map(|tp| Some(tp.at(done.remove(&tp.partition)?)))
                    .collect();
                if let Err(error) = consumer.commit(theirs).await {
                    eprintln!("commit of revoked partitions failed: {error}");
                }
                consumer.release_revocation();
            }
            Fetched::Event(
                ConsumerEvent::Revoked { partitions } | ConsumerEvent::Lost { partitions },
            ) => {
                // Not ours any more (lost ones without a commit: their next owner starts
                // from the last one).
                for tp in partitions {
                    done.remove(&tp.partition);
                }
            }
            Fetched::Event(ConsumerEvent::GroupError { error }) => {
                return Err(format!("group: {error}").into());
            }
            _ => {}
        }
    }
    // The last commit is stored before the member leaves: the next owner of these
    // partitions starts from it.
    consumer.commit(offsets(&done)).await?;
    consumer.unsubscribe();
    while consumer.in_group() {
        if let Ok(Some(Fetched::Event(ConsumerEvent::Revoking { .. }))) =
            tokio::time::timeout(Duration::from_millis(200), fetched.next()).await
        {
            // Nothing is read any more: give them up at once.
            consumer.release_revocation();
        }
    }
    drop(fetched);
    consumer.close().await;
    println!("processed {records} records ({bytes} value bytes) in {batches} batches");
    Ok(())
}
