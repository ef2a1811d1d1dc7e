//! A worker on a topic's priority levels: reads `<TOPIC>.p.critical`, `.high`,
//! `.normal` and `.low` as a member of GROUP with a `PriorityConsumer`, highest level
//! first, "processing" each record for `work=MICROS`, and prints a line per record:
//! `LEVEL VALUE TIMESTAMP HANDED_OUT` (the record's timestamp and when it was handed out,
//! Unix milliseconds). Stops after `idle=MS` without a record (5,000 by default),
//! committing what it handed out. `share=F` sets the starvation guard
//! (`priority.min.share`, 0.1 by default). With `mode=share` GROUP is a share group read
//! by a `PriorityShareConsumer` (one member per level) that accepts each record once
//! printed; the worker first sets the group's `share.auto.offset.reset=earliest` and
//! `share.renew.acknowledge.enable=true`, and waits up to 30 s for its first record.
//!
//! `cargo run -p kasio --example priority_worker -- localhost:9092 workers jobs work=50`

use kasio::{
    AdminConfig, ConfigChange, ConfigResource, ConfigResourceType, Fetched, Priority,
    tokio::{Admin, PriorityConsumer, PriorityShareConsumer, ShareFetched},
};
use std::{
    io::Write,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bootstrap, group, topic, rest @ ..] = args.as_slice() else {
        return Err(
            "usage: priority_worker BOOTSTRAP GROUP TOPIC [work=MICROS] [idle=MS] [share=F] \
             [mode=group|share]"
                .into(),
        );
    };
    let option = |name: &str| {
        rest.iter()
            .find_map(|a| a.strip_prefix(name)?.strip_prefix('='))
    };
    let work = Duration::from_micros(option("work").map_or(Ok(0), str::parse)?);
    let idle = Duration::from_millis(option("idle").map_or(Ok(5_000), str::parse)?);
    let share = option("share").unwrap_or("0.1");
    if option("mode") == Some("share") {
        return share_group(bootstrap, group, topic, work, idle, share).await;
    }
    let jobs = PriorityConsumer::from_properties(
        [
            ("bootstrap.servers", bootstrap.as_str()),
            ("group.id", group.as_str()),
            ("auto.offset.reset", "earliest"),
            ("priority.min.share", share),
        ],
        &[topic.as_str()],
    )?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    loop {
        let batch = match tokio::time::timeout(idle, jobs.next()).await {
            Err(_) => break,
            Ok(Fetched::Batch(batch)) => batch,
            Ok(_) => continue,
        };
        let level = Priority::of_topic(&batch.topic).map_or("none", |(_, l)| l.name());
        let handed_out = unix_ms();
        let mut records = 0_u32;
        let mut failed = None;
        batch.for_each(|r| {
            records += 1;
            let value = String::from_utf8_lossy(r.value.unwrap_or_default());
            if let Err(e) = writeln!(out, "{level} {value} {} {handed_out}", r.timestamp) {
                failed.get_or_insert(e);
            }
        })?;
        if let Some(e) = failed {
            return Err(e.into());
        }
        out.flush()?;
        tokio::time::sleep(work * records).await;
    }
    jobs.close().await?;
    Ok(())
}

/// The longest the share worker waits for its first record.
const FIRST_RECORD: Duration = Duration::from_secs(30);

/// The worker on a share group: one record at a time, each accepted once printed.
async fn share_group(
    bootstrap: &str,
    group: &str,
    topic: &str,
    work: Duration,
    idle: Duration,
    share: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let admin = Admin::new(AdminConfig::new(bootstrap)?)?;
    let changes = vec![
        ConfigChange::Set("share.auto.offset.reset".into(), "earliest".into()),
        ConfigChange::Set("share.renew.acknowledge.enable".into(), "true".into()),
    ];
    let resource = ConfigResource {
        kind: ConfigResourceType::Group,
        name: group.into(),
    };
    for r in admin.alter_configs(&[(resource, changes)], false).await? {
        if let Some(e) = r.error {
            return Err(format!("group config: {e:?}").into());
        }
    }
    admin.close().await;
    let jobs = PriorityShareConsumer::from_properties(
        [
            ("bootstrap.servers", bootstrap),
            ("group.id", group),
            ("share.acknowledgement.mode", "explicit"),
            ("priority.min.share", share),
        ],
        &[topic],
    )?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    // Sleeps shorter than the timer's millisecond add up first.
    let mut owed = Duration::ZERO;
    // Joining a share group takes a heartbeat or two (5 s apart by default) on a busy
    // broker: the idle limit counts once records come.
    let mut wait = idle.max(FIRST_RECORD);
    loop {
        let job = match tokio::time::timeout(wait, jobs.next()).await {
            Err(_) => break,
            Ok(ShareFetched::Record(job)) => job,
            Ok(_) => continue,
        };
        wait = idle;
        let r = job.record();
        let level = Priority::of_topic(&r.topic).map_or("none", |(_, l)| l.name());
        let value = String::from_utf8_lossy(r.value.as_deref().unwrap_or_default());
        writeln!(out, "{level} {value} {} {}", r.timestamp, unix_ms())?;
        job.ack()?;
        owed += work;
        if owed >= Duration::from_millis(2) {
            out.flush()?;
            tokio::time::sleep(owed).await;
            owed = Duration::ZERO;
        }
    }
    out.flush()?;
    jobs.commit().await?;
    jobs.close().await;
    Ok(())
}
