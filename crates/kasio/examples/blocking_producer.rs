//! Sends ten records and prints where each landed.
//!
//! `cargo run -p kasio --features blocking --example blocking_producer -- localhost:9092 my-topic`

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let bootstrap = args.next().unwrap_or_else(|| "localhost:9092".into());
    let topic = args.next().unwrap_or_else(|| "kasio-example".into());
    let producer =
        kasio::blocking::Producer::from_properties([("bootstrap.servers", bootstrap.as_str())])?;
    for i in 0..10 {
        let key = format!("key-{i}");
        let value = format!("hello {i}");
        let record = kasio::Record::new(&topic)
            .key(key.as_bytes())
            .value(value.as_bytes());
        let meta = producer.send_and_wait(record)?;
        println!(
            "{key} -> partition {} offset {}",
            meta.partition, meta.offset
        );
    }
    producer.close();
    Ok(())
}
