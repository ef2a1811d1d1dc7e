//! Sends ten records and prints where each landed.
//!
//! `cargo run -p kasio --example simple_producer -- localhost:9092 my-topic`

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let bootstrap = args.next().unwrap_or_else(|| "localhost:9092".into());
    let topic = args.next().unwrap_or_else(|| "kasio-example".into());
    let producer =
        kasio::tokio::Producer::from_properties([("bootstrap.servers", bootstrap.as_str())])?;
    for i in 0..10 {
        let key = format!("key-{i}");
        let value = format!("hello {i}");
        let record = kasio::Record::new(&topic)
            .key(key.as_bytes())
            .value(value.as_bytes());
        let meta = producer.send_and_wait(record).await?;
        println!(
            "{key} -> partition {} offset {}",
            meta.partition, meta.offset
        );
    }
    producer.close().await;
    Ok(())
}
