//! Many concurrent sends with batching and compression; prints a JSON summary.
//!
//! `cargo run --release -p kasio --example async_producer -- \
//!     --bootstrap localhost:9092 --topic t --count 1000000 --compression lz4`
//!
//! Record `i` has key `key-{i % keys}`, value `{i}` padded to `--size` bytes, and a header
//! `i` = `{i}`, so a reader can check every record.

use kasio::{ProducerConfig, Record, tokio::Producer};
use std::time::Instant;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut bootstrap = "localhost:9092".to_string();
    let mut topic = "kasio-example".to_string();
    let mut count: u64 = 100_000;
    let mut keys: u64 = 10_000;
    let mut size: usize = 0;
    let mut props: Vec<(String, String)> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--bootstrap" => bootstrap = value,
            "--topic" => topic = value,
            "--count" => count = value.parse()?,
            "--keys" => keys = value.parse()?,
            "--size" => size = value.parse()?,
            "--compression" => props.push(("compression.type".into(), value)),
            "-X" => {
                let (k, v) = value.split_once('=').ok_or("-X needs key=value")?;
                props.push((k.into(), v.into()));
            }
            _ => return Err(format!("unknown flag {flag}").into()),
        }
    }
    let mut config = ProducerConfig::new(&bootstrap)?;
    config.set("linger.ms", "5")?;
    config.set("batch.size", "262144")?;
    for (k, v) in &props {
        config.set(k, v)?;
    }
    let producer = Producer::new(config)?;
    let start = Instant::now();
    let mut deliveries = Vec::with_capacity(usize::try_from(count)?);
    let mut value = String::new();
    for i in 0..count {
        let key = format!("key-{}", i % keys.max(1));
        value.clear();
        value.push_str(&i.to_string());
        while value.len() < size {
            value.push('.');
        }
        let index = i.to_string();
        let headers = [("i", index.as_bytes())];
        let record = Record::new(&topic)
            .key(key.as_bytes())
            .value(value.as_bytes())
            .headers(&headers);
        deliveries.push(producer.send(record).await?);
    }
    producer.flush().await;
    let elapsed = start.elapsed();
    let mut failed = 0u64;
    for d in deliveries {
        if d.await.is_err() {
            failed += 1;
        }
    }
    producer.close().await;
    let secs = elapsed.as_secs_f64();
    println!(
        "{{\"records\": {count}, \"failed\": {failed}, \"seconds\": {secs:.3}, \"records_per_second\": {:.0}}}",
        count as f64 / secs
    );
    if failed > 0 {
        std::process::exit(1);
    }
    Ok(())
}
