//! Copies a topic into another exactly once (consume-transform-produce): a member of a
//! consumer group reads INPUT with read_committed and, in one transaction per batch of
//! reads, writes each record upper-cased to OUTPUT and commits the consumed offsets with
//! it. A rebalance or failure mid-transaction aborts it ("if we maybe should abort,
//! abort"), and reading resumes from the last committed offsets, so a copier killed and
//! started again (same `KASIO_TRANSACTIONAL_ID`, which fences the dead one) neither loses
//! nor repeats a record. Leaves the group once nothing has come for IDLE_MS.
//!
//! `cargo run -p kasio-tokio --example exactly_once_copy -- localhost:9092 input output copy-group [IDLE_MS]`

use kasio_tokio::{Consumer, ConsumerEvent, Fetched, Producer, Record, Seek};
use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

/// How long a transaction gathers reads before it commits.
const TRANSACTION_SPAN: Duration = Duration::from_millis(100);

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or_else(|| default.into());
    let bootstrap = arg(0, "localhost:9092");
    let (input, output, group) = (
        arg(1, "kasio-input"),
        arg(2, "kasio-output"),
        arg(3, "kasio-copy"),
    );
    let idle = Duration::from_millis(arg(4, "5000").parse()?);
    let id = std::env::var("KASIO_TRANSACTIONAL_ID").unwrap_or_else(|_| format!("{group}-copier"));
    // A static member (KASIO_GROUP_INSTANCE_ID) started again takes its partitions back at
    // once, instead of waiting for the dead one's session to time out.
    let instance = std::env::var("KASIO_GROUP_INSTANCE_ID").unwrap_or_default();
    let consumer = Consumer::from_properties([
        ("bootstrap.servers", bootstrap.as_str()),
        ("group.instance.id", instance.as_str()),
        ("group.id", group.as_str()),
        ("isolation.level", "read_committed"),
        ("enable.auto.commit", "false"),
        ("auto.offset.reset", "earliest"),
        ("session.timeout.ms", "6000"),
        ("heartbeat.interval.ms", "1000"),
    ])?;
    let producer = Producer::from_properties([
        ("bootstrap.servers", bootstrap.as_str()),
        ("transactional.id", id.as_str()),
        ("linger.ms", "5"),
    ])?;
    producer.init_transactions().await?;
    consumer.subscribe(&[input.as_str()])?;

    // The open transaction: where each partition's reads began and the next offset.
    let mut open: Option<Instant> = None;
    let mut started: BTreeMap<i32, i64> = BTreeMap::new();
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    let (mut copied, mut transactions, mut aborts) = (0u64, 0u64, 0u64);
    let mut last_read = Instant::now();
    loop {
        let wait = open.map_or(idle, |at| TRANSACTION_SPAN.saturating_sub(at.elapsed()));
        match tokio::time::timeout(wait, consumer.next()).await {
            Ok(Fetched::Batch(batch)) => {
                if open.is_none() {
                    producer.begin_transaction()?;
                    open = Some(Instant::now());
                }
                let mut sends = Vec::new();
                let mut last = None;
                batch.for_each(|r| {
                    let value = r.value.unwrap_or_default().to_ascii_uppercase();
                    sends.push((r.key.map(<[u8]>::to_vec), value));
                    started.entry(batch.partition).or_insert(r.offset);
                    last = Some(r.offset);
                })?;
                for (key, value) in &sends {
                    let mut record = Record::new(&output).value(value);
                    if let Some(k) = key {
                        record = record.key(k);
                    }
                    // The commit waits for every record of the transaction.
                    let _delivery = producer.send(record).await?;
                }
                copied += sends.len() as u64;
                if let Some(last) = last {
                    next.insert(batch.partition, last + 1);
                }
                last_read = Instant::now();
            }
            Ok(Fetched::Event(ConsumerEvent::Revoked { .. } | ConsumerEvent::Lost { .. })) => {
                if open.take().is_some() {
                    // Partitions are moving: what this transaction read may be read by
                    // another member now, so it must not commit.
                    producer.abort_transaction().await?;
                    aborts += 1;
                    started.clear();
                    next.clear();
                }
            }
            Ok(Fetched::Event(ConsumerEvent::GroupError { error })) => {
                return Err(format!("group: {error}").into());
            }
            Ok(_) => {}
            Err(_) if open.is_none() && last_read.elapsed() >= idle => break,
            Err(_) => {}
        }
        let Some(at) = open else {
            continue;
        };
        if at.elapsed() < TRANSACTION_SPAN {
            continue;
        }
        let offsets: Vec<(&str, i32, i64)> =
            next.iter().map(|(&p, &o)| (input.as_str(), p, o)).collect();
        let group_meta = consumer
            .group_metadata()
            .ok_or("the consumer has no group")?;
        let sent = producer
            .send_offsets_to_transaction(&offsets, group_meta)
            .await;
        let result = match sent {
            Ok(()) => producer.commit_transaction().await,
            Err(e) => Err(e),
        };
        open = None;
        match result {
            Ok(()) => transactions += 1,
            Err(e) => {
                eprintln!("transaction failed, aborting: {e}");
                producer.abort_transaction().await?;
                aborts += 1;
                // Read again what the aborted transaction had read.
                for (&p, &o) in &started {
                    consumer.seek(&input, p, Seek::Offset(o));
                }
            }
        }
        started.clear();
        next.clear();
    }
    consumer.unsubscribe();
    while consumer.in_group() {
        let _ = tokio::time::timeout(Duration::from_millis(200), consumer.next()).await;
    }
    consumer.close();
    producer.close().await;
    println!("copied {copied} records in {transactions} transactions ({aborts} aborted)");
    Ok(())
}
