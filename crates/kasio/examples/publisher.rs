//! A publisher under load: sends COUNT messages (`m-0`, `m-1`, ...) to TOPIC at up to
//! RATE per second with a `Publisher`, whose failed deliveries are tried again and at last
//! dead-lettered to `TOPIC.dlt`, then waits for every message to finish. Further
//! arguments are `key=value` properties (the producer's and `publisher.*`).
//!
//! Once a second it prints to standard error what it holds (`sent`, `unfinished`,
//! `remembered` statuses, the process's resident memory); at the end one line per message
//! to standard output, `END ID VALUE STATUS TOPIC PARTITION OFFSET` (partition and offset
//! `-` unless delivered), then `SUMMARY` with the counters, the peak resident memory, and
//! how the ends the status stream told (`tracked`) agree with the notices (`disagree`).
//!
//! `cargo run -p kasio --example publisher -- localhost:9092 orders 100000 20000 delivery.timeout.ms=5000`

use kasio::{DeliveryStatus, Notice, Record, tokio::Publisher};
use std::{
    collections::HashMap,
    io::Write,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

/// A field of /proc/self/status in KiB (`VmRSS`, `VmHWM`), 0 where there is none.
fn memory_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bootstrap, topic, count, rate, rest @ ..] = args.as_slice() else {
        eprintln!("usage: publisher BOOTSTRAP TOPIC COUNT RATE [key=value ...]");
        std::process::exit(2);
    };
    let count: usize = count.parse()?;
    let rate: f64 = rate.parse()?;
    let mut props = vec![("bootstrap.servers", bootstrap.as_str())];
    for p in rest {
        let (k, v) = p.split_once('=').ok_or("properties are key=value")?;
        props.push((k, v));
    }
    let publisher = Publisher::from_properties(props)?;
    // Each message's end, by id: (status, topic, partition, offset).
    let ends: Arc<Mutex<HashMap<Arc<str>, String>>> = Arc::default();
    let seen = ends.clone();
    publisher.on_notice(move |n| {
        let (id, end) = match n {
            Notice::Delivered {
                id,
                topic,
                partition,
                offset,
            } => (id, format!("delivered {topic} {partition} {offset}")),
            Notice::DeadLettered { id, topic, .. } => (id, format!("dead-lettered {topic} - -")),
            Notice::Failed { id, .. } => (id, "failed - - -".to_string()),
            Notice::RetryScheduled { .. } => return,
        };
        seen.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id.clone(), end);
    });

    // The same ends as the tracker streams them: they must agree with the notices.
    let tracked = {
        let mut statuses = publisher.statuses();
        tokio::spawn(async move {
            use futures_lite::StreamExt;
            let mut ends: HashMap<Arc<str>, &'static str> = HashMap::new();
            while let Some((id, status)) = statuses.next().await {
                let end = match status {
                    DeliveryStatus::Success { .. } => "delivered",
                    DeliveryStatus::DeadLettered { .. } => "dead-lettered",
                    DeliveryStatus::Failed { .. } => "failed",
                    _ => continue,
                };
                ends.insert(id, end);
            }
            (ends, statuses.missed())
        })
    };
    let started = Instant::now();
    let watch = {
        let publisher = publisher.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let c = publisher.counters();
                eprintln!(
                    "t={:.0}s sent={} delivered={} retried={} dead_lettered={} failed={} unfinished={} remembered={} rss_kib={}",
                    started.elapsed().as_secs_f64(),
                    c.sent,
                    c.delivered,
                    c.retried,
                    c.dead_lettered,
                    c.failed,
                    publisher.unfinished(),
                    publisher.remembered(),
                    memory_kib("VmRSS:")
                );
            }
        })
    };
    let mut ids = Vec::with_capacity(count);
    for i in 0..count {
        let due = started + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        let value = format!("m-{i}");
        let id = publisher
            .send(Record::new(topic).value(value.as_bytes()), None)
            .await?;
        ids.push((id, value));
    }
    let flushed = publisher.flush(Duration::from_secs(600)).await;
    let c = publisher.counters();
    let remembered = publisher.remembered();
    publisher.close().await;
    watch.abort();
    let (tracked, missed) = tracked.await?;
    let ends = ends
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let disagree = ids
        .iter()
        .filter(|(id, _)| {
            let noticed = ends.get(id).and_then(|e| e.split(' ').next());
            noticed != tracked.get(id).copied()
        })
        .count();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for (id, value) in &ids {
        let end = ends.get(id).map_or("unfinished - - -", String::as_str);
        writeln!(out, "END {id} {value} {end}")?;
    }
    writeln!(
        out,
        "SUMMARY sent={} delivered={} retried={} dead_lettered={} failed={} remembered={remembered} peak_rss_kib={} seconds={:.1} flushed={} tracked={} tracking_missed={missed} disagree={disagree}",
        c.sent,
        c.delivered,
        c.retried,
        c.dead_lettered,
        c.failed,
        memory_kib("VmHWM:"),
        started.elapsed().as_secs_f64(),
        flushed.is_ok(),
        tracked.len()
    )?;
    Ok(())
}
