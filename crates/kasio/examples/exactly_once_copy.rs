//! Copies a topic into another exactly once (consume-transform-produce): a member of a
//! consumer group reads INPUT with read_committed and, in one transaction per batch of
//! reads, writes each record upper-cased to OUTPUT and commits the consumed offsets with
//! it, through a `TransactSession`. A rebalance or failure mid-transaction aborts it ("if
//! we maybe should abort, abort"), and reading resumes from where it began, so a copier killed and
//! started again (same `KASIO_TRANSACTIONAL_ID`, which fences the dead one) neither loses
//! nor repeats a record. Leaves the group once nothing has come for IDLE_MS.
//!
//! `cargo run -p kasio --example exactly_once_copy -- localhost:9092 input output copy-group [IDLE_MS]`

use kasio::{
    ConsumerEvent, Ended, Ending, Fetched, Record,
    tokio::{Consumer, Producer, TransactSession},
};
use std::time::{Duration, Instant};

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
    let session = TransactSession::new(&consumer, &producer);

    // When the open transaction began, and how many records it copied.
    let mut open: Option<(Instant, u64)> = None;
    let (mut copied, mut transactions, mut aborts) = (0u64, 0u64, 0u64);
    let mut last_read = Instant::now();
    loop {
        let wait = open.map_or(idle, |(at, _)| {
            TRANSACTION_SPAN.saturating_sub(at.elapsed())
        });
        match tokio::time::timeout(wait, session.next()).await {
            Ok(Ok(Fetched::Batch(batch))) => {
                let mut sends = Vec::new();
                batch.for_each(|r| {
                    let value = r.value.unwrap_or_default().to_ascii_uppercase();
                    sends.push((r.key.map(<[u8]>::to_vec), value));
                })?;
                for (key, value) in &sends {
                    let mut record = Record::new(&output).value(value);
                    if let Some(k) = key {
                        record = record.key(k);
                    }
                    // The commit waits for every record of the transaction.
                    let _delivery = producer.send(record).await?;
                }
                open.get_or_insert((Instant::now(), 0)).1 += sends.len() as u64;
                last_read = Instant::now();
            }
            Ok(Ok(Fetched::Event(ConsumerEvent::GroupError { error }))) => {
                return Err(format!("group: {error}").into());
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e.into()),
            Err(_) if open.is_none() && last_read.elapsed() >= idle => break,
            Err(_) => {}
        }
        let Some((at, n)) = open else {
            continue;
        };
        if at.elapsed() < TRANSACTION_SPAN {
            continue;
        }
        open = None;
        match session.end(Ending::TryCommit).await? {
            Ended::Committed => {
                transactions += 1;
                copied += n;
            }
            Ended::Aborted => aborts += 1,
            _ => {}
        }
    }
    consumer.unsubscribe();
    while consumer.in_group() {
        let _ = tokio::time::timeout(Duration::from_millis(200), consumer.next()).await;
    }
    consumer.close().await;
    producer.close().await;
    println!("copied {copied} records in {transactions} transactions ({aborts} aborted)");
    Ok(())
}
