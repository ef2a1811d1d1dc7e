//! kasio's share consumer (KIP-932) reading COUNT records of TOPIC as a member of share
//! group GROUP, in implicit acknowledgement mode (as Kafka's
//! `kafka-share-consumer-perf-test` does), printing a JSON line: throughput and CPU time,
//! from the consumer's start to its COUNT-th record. `prepare` sets the group up (earliest
//! start, and one member's join and leave, so the group's share partitions exist and the
//! measured member is assigned at its first heartbeat, as a peer joining later would be).
//!
//! `share prepare BOOTSTRAP GROUP TOPIC` · `share consume BOOTSTRAP GROUP TOPIC COUNT`

use kasio::{
    AdminConfig, ConfigChange, ConfigResource, ConfigResourceType, ShareConsumerConfig,
    shell::ShareFetched,
};
use kasio_benches::cpu_seconds;
use std::time::{Duration, Instant};

fn prepare(bootstrap: &str, group: &str, topic: &str) -> Result<(), Box<dyn std::error::Error>> {
    let admin = kasio::blocking::Admin::new(AdminConfig::new(bootstrap)?)?;
    let resource = ConfigResource {
        kind: ConfigResourceType::Group,
        name: group.into(),
    };
    let change = ConfigChange::Set("share.auto.offset.reset".into(), "earliest".into());
    for r in admin
        .alter_configs(&[(resource, vec![change])], false)
        .wait()?
    {
        if let Some(e) = r.error {
            return Err(format!("group config: {e:?}").into());
        }
    }
    let queue = kasio::blocking::ShareConsumer::new(ShareConsumerConfig::new(bootstrap, group)?)?;
    queue.subscribe(&[topic]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while queue.assignment().is_empty() && Instant::now() < deadline {
        let _ = queue.poll(Duration::from_millis(100));
    }
    queue.close();
    Ok(())
}

async fn consume(
    bootstrap: &str,
    group: &str,
    topic: &str,
    count: u64,
) -> Result<u64, Box<dyn std::error::Error>> {
    let queue = kasio::tokio::ShareConsumer::new(ShareConsumerConfig::new(bootstrap, group)?)?;
    queue.subscribe(&[topic]);
    let (mut n, mut bytes) = (0u64, 0u64);
    while n < count {
        let got = queue.next().await;
        if let ShareFetched::Record(r) = got {
            n += 1;
            bytes += r.record().value.as_ref().map_or(0, |v| v.len() as u64);
        }
    }
    queue.close().await;
    Ok(bytes)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    match args.as_slice() {
        [_, mode, bootstrap, group, topic] if mode == "prepare" => prepare(bootstrap, group, topic),
        [_, mode, bootstrap, group, topic, count] if mode == "consume" => {
            let count: u64 = count.parse()?;
            let cpu0 = cpu_seconds();
            let start = Instant::now();
            let bytes = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?
                .block_on(consume(bootstrap, group, topic, count))?;
            let secs = start.elapsed().as_secs_f64();
            let cpu = cpu_seconds() - cpu0;
            println!(
                "{{\"client\": \"kasio\", \"records\": {count}, \"bytes\": {bytes}, \"seconds\": {secs:.3}, \"records_per_second\": {:.0}, \"cpu_seconds\": {cpu:.2}, \"cpu_seconds_per_million\": {:.3}}}",
                count as f64 / secs,
                cpu / (count as f64 / 1e6)
            );
            Ok(())
        }
        _ => Err("usage: share prepare BOOTSTRAP GROUP TOPIC | share consume BOOTSTRAP GROUP TOPIC COUNT".into()),
    }
}
