//! Writes to two topics in transactions, "both or neither": each transaction sends
//! RECORDS records to each topic, and every ABORT_EVERY-th transaction is written in full
//! and then aborted instead of committed, so a read_committed consumer sees the committed
//! ones only, on both topics (and read_uncommitted every one).
//! Prints one line per transaction (`committed 3` or `aborted 2`).
//!
//! `cargo run -p kasio --example transactional_producer -- localhost:9092 orders audit 10 100 3`

use kasio::{Record, tokio::Producer};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or_else(|| default.into());
    let bootstrap = arg(0, "localhost:9092");
    let (first, second) = (arg(1, "kasio-orders"), arg(2, "kasio-audit"));
    let transactions: u32 = arg(3, "10").parse()?;
    let records: u32 = arg(4, "100").parse()?;
    let abort_every: u32 = arg(5, "0").parse()?;
    let id = std::env::var("KASIO_TRANSACTIONAL_ID").unwrap_or_else(|_| "kasio-example".into());
    let producer = Producer::from_properties([
        ("bootstrap.servers", bootstrap.as_str()),
        ("transactional.id", id.as_str()),
    ])?;
    producer.init_transactions().await?;
    if let Some(v) = producer.transaction_protocol() {
        println!("transaction protocol {v}");
    }
    for t in 0..transactions {
        producer.begin_transaction()?;
        for r in 0..records {
            let value = format!("txn-{t}-{r}");
            for topic in [&first, &second] {
                // The commit waits for every record of the transaction.
                let _delivery = producer
                    .send(
                        Record::new(topic)
                            .key(value.as_bytes())
                            .value(value.as_bytes()),
                    )
                    .await?;
            }
        }
        if abort_every > 0 && t % abort_every == abort_every - 1 {
            // Written in full first, so the abort has records to hide.
            producer.flush().await;
            producer.abort_transaction().await?;
            println!("aborted {t}");
        } else if let Err(e) = producer.commit_transaction().await {
            // An abortable error dooms only this transaction.
            producer.abort_transaction().await?;
            println!("aborted {t} ({e})");
        } else {
            println!("committed {t}");
        }
    }
    producer.close().await;
    Ok(())
}
