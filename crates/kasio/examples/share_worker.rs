//! A queue worker on a share group (KIP-932): takes records from TOPIC as a member of
//! share group GROUP and settles each one, printing a JSON line per decision:
//! `{"p":partition,"o":offset,"i":value,"n":delivery_count,"a":"accept|release|reject"}`.
//! Each acknowledgement the broker answers prints as `{"ok":bool,"p":partition,
//! "offsets":[...]}`. Values are decimal numbers; `release=N` releases the records whose value is a multiple
//! of N on their first delivery (so they come back), `reject=N` rejects those whose value
//! leaves 1 divided by N (so they never come back), `renew=MS` renews each record's lock
//! every MS while "processing" it for `work=MS`, `nack=MS` releases only MS after the
//! decision (renewing the lock until then). It runs on `tokio`, `smol` or `blocking`
//! threads, acknowledges each record explicitly (`mode=implicit` leaves accepting to the
//! next read), and stops after `idle=MS` without a record, closing.
//!
//! `prepare` first sets the group's `share.auto.offset.reset=earliest` (and
//! `share.renew.acknowledge.enable=true`, `share.record.lock.duration.ms=LOCK` with
//! `lock=LOCK`) through the admin client, as Kafka's `kafka-configs.sh --group` does.
//!
//! `cargo run -p kasio --example share_worker --features smol,blocking -- localhost:9092 jobs jobs tokio release=100 reject=100`

use kasio::{
    AcknowledgeType, AdminConfig, ConfigChange, ConfigResource, ConfigResourceType,
    ShareConsumerConfig,
    shell::{Acquired, AsyncRuntime, ShareConsumer, ShareFetched},
};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
struct Plan {
    release: i64,
    /// Releases go out this long after the decision, the lock renewed meanwhile.
    nack: Option<Duration>,
    reject: i64,
    renew: Option<Duration>,
    work: Duration,
    idle: Duration,
}

impl Plan {
    /// How the record with value `i` on its `n`th delivery is settled.
    fn decide(&self, i: i64, n: i16) -> AcknowledgeType {
        if self.reject > 0 && i % self.reject == 1 {
            AcknowledgeType::Reject
        } else if self.release > 0 && i % self.release == 0 && n == 1 {
            AcknowledgeType::Release
        } else {
            AcknowledgeType::Accept
        }
    }
}

fn value(record: &kasio::ConsumerRecord) -> i64 {
    record
        .value
        .as_deref()
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(-1)
}

fn print(acquired: &kasio::ConsumerRecord, i: i64, n: i16, a: AcknowledgeType) {
    let a = match a {
        AcknowledgeType::Accept => "accept",
        AcknowledgeType::Release => "release",
        AcknowledgeType::Reject => "reject",
        AcknowledgeType::Renew => "renew",
    };
    println!(
        r#"{{"p":{},"o":{},"i":{i},"n":{n},"a":"{a}"}}"#,
        acquired.partition, acquired.offset
    );
}

/// Settles one record, renewing its lock while it is worked on.
async fn settle<R: AsyncRuntime>(
    job: &Acquired<R>,
    plan: &Plan,
    explicit: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let record = job.record();
    let i = value(record);
    let kind = plan.decide(i, job.delivery_count());
    let mut left = plan.work;
    while !left.is_zero() {
        let step = plan.renew.unwrap_or(left).min(left);
        R::sleep_until(R::now() + step).await;
        left -= step;
        if plan.renew.is_some() && !left.is_zero() {
            job.renew()?;
        }
    }
    match (kind, plan.nack) {
        (AcknowledgeType::Release, Some(delay)) => job.nack(delay)?,
        _ if explicit || kind != AcknowledgeType::Accept => job.acknowledge(kind)?,
        _ => {}
    }
    print(record, i, job.delivery_count(), kind);
    Ok(())
}

async fn run_async<R: AsyncRuntime>(
    queue: ShareConsumer<R>,
    plan: Plan,
    explicit: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut last = Instant::now();
    let mut seen = 0u64;
    loop {
        let deadline = R::now() + plan.idle;
        let timed = futures_lite::future::or(async { Some(queue.next().await) }, async {
            R::sleep_until(deadline).await;
            None
        })
        .await;
        match timed {
            Some(ShareFetched::Record(job)) => {
                settle(&job, &plan, explicit).await?;
                seen += 1;
                last = Instant::now();
            }
            Some(ShareFetched::Event(e)) => eprintln!("event: {e:?}"),
            Some(_) => {}
            None if last.elapsed() >= plan.idle => break,
            None => {}
        }
    }
    queue.commit().await?;
    queue.close().await;
    eprintln!("{seen} records");
    Ok(())
}

fn run_blocking(
    queue: kasio::blocking::ShareConsumer,
    plan: Plan,
    explicit: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut seen = 0u64;
    while let Some(got) = queue.poll(plan.idle) {
        let ShareFetched::Record(job) = got else {
            continue;
        };
        let record = job.record();
        let i = value(record);
        let kind = plan.decide(i, job.delivery_count());
        let mut left = plan.work;
        while !left.is_zero() {
            let step = plan.renew.unwrap_or(left).min(left);
            std::thread::sleep(step);
            left -= step;
            if plan.renew.is_some() && !left.is_zero() {
                job.renew()?;
            }
        }
        match (kind, plan.nack) {
            (AcknowledgeType::Release, Some(delay)) => job.nack(delay)?,
            _ if explicit || kind != AcknowledgeType::Accept => job.acknowledge(kind)?,
            _ => {}
        }
        print(record, i, job.delivery_count(), kind);
        seen += 1;
    }
    queue.commit_sync()?;
    queue.close();
    eprintln!("{seen} records");
    Ok(())
}

/// Prints what the broker answered for acknowledgements, an offset at a time.
/// Renewals print as `{"renewed":bool,...}`, apart from the acknowledgements that settle.
fn confirmed(a: &kasio::Acknowledged) {
    for renewals in [false, true] {
        let offsets: Vec<String> = a
            .offsets
            .iter()
            .filter(|&&(_, _, t)| (t == AcknowledgeType::Renew) == renewals)
            .flat_map(|&(f, l, _)| f..=l)
            .map(|o| o.to_string())
            .collect();
        if offsets.is_empty() {
            continue;
        }
        println!(
            r#"{{"{}":{},"p":{},"offsets":[{}],"error":"{}"}}"#,
            if renewals { "renewed" } else { "ok" },
            a.error.is_none(),
            a.partition,
            offsets.join(","),
            a.error.map(|e| format!("{e:?}")).unwrap_or_default()
        );
    }
}

fn prepare(
    bootstrap: &str,
    group: &str,
    lock: Option<&str>,
) -> Result<(), Box<dyn std::error::Error>> {
    let admin = kasio::blocking::Admin::new(AdminConfig::new(bootstrap)?)?;
    let mut changes = vec![
        ConfigChange::Set("share.auto.offset.reset".into(), "earliest".into()),
        ConfigChange::Set("share.renew.acknowledge.enable".into(), "true".into()),
    ];
    if let Some(ms) = lock {
        changes.push(ConfigChange::Set(
            "share.record.lock.duration.ms".into(),
            ms.into(),
        ));
    }
    let resource = ConfigResource {
        kind: ConfigResourceType::Group,
        name: group.into(),
    };
    for r in admin.alter_configs(&[(resource, changes)], false).wait()? {
        if let Some(e) = r.error {
            return Err(format!("group config: {e:?}").into());
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bootstrap, group, topic, runtime, rest @ ..] = args.as_slice() else {
        return Err("share_worker BOOTSTRAP GROUP TOPIC tokio|smol|blocking|prepare [release=N] [reject=N] [renew=MS] [work=MS] [idle=MS] [mode=implicit] [prepare] [lock=MS] [KEY=VALUE...]".into());
    };
    let mut plan = Plan {
        release: 0,
        nack: None,
        reject: 0,
        renew: None,
        work: Duration::ZERO,
        idle: Duration::from_secs(5),
    };
    let mut config = ShareConsumerConfig::new(bootstrap, group)?;
    config.set("share.acknowledgement.mode", "explicit")?;
    let (mut explicit, mut lock, mut prep) = (true, None, false);
    let ms = |v: &str| v.parse::<u64>().map(Duration::from_millis);
    for arg in rest {
        match arg.split_once('=') {
            Some(("release", n)) => plan.release = n.parse()?,
            Some(("reject", n)) => plan.reject = n.parse()?,
            Some(("nack", n)) => plan.nack = Some(ms(n)?),
            Some(("renew", n)) => plan.renew = Some(ms(n)?),
            Some(("work", n)) => plan.work = ms(n)?,
            Some(("idle", n)) => plan.idle = ms(n)?,
            Some(("lock", n)) => lock = Some(n.to_string()),
            Some(("mode", "implicit")) => {
                explicit = false;
                config.set("share.acknowledgement.mode", "implicit")?;
            }
            Some((k, v)) => {
                config.set(k, v)?;
            }
            None if arg == "prepare" => prep = true,
            None => return Err(format!("unknown argument {arg}").into()),
        }
    }
    if prep {
        prepare(bootstrap, group, lock.as_deref())?;
    }
    if runtime == "prepare" {
        return Ok(());
    }
    match runtime.as_str() {
        "tokio" => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(async {
                let queue = kasio::tokio::ShareConsumer::new(config)?;
                queue.on_acknowledged(confirmed);
                queue.subscribe(&[topic.as_str()]);
                run_async(queue, plan, explicit).await
            }),
        "smol" => smol::block_on(async {
            let queue = kasio::smol::ShareConsumer::new(config)?;
            queue.on_acknowledged(confirmed);
            queue.subscribe(&[topic.as_str()]);
            run_async(queue, plan, explicit).await
        }),
        "blocking" => {
            let queue = kasio::blocking::ShareConsumer::new(config)?;
            queue.on_acknowledged(confirmed);
            queue.subscribe(&[topic.as_str()]);
            run_blocking(queue, plan, explicit)
        }
        other => Err(format!("unknown runtime {other}").into()),
    }
}
