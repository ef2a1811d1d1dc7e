//! `kasio delay`: the delay tier topics of delayed delivery, the relay that forwards
//! their records when due, and what waits in them.

use crate::{clients, output::Output};
use clap::{Args, Subcommand};
use kasio::{
    ConsumerEvent, DUE_HEADER, DelayTiers, IsolationLevel, NewTopic, OffsetSpec, Seek,
    shell::{DEFAULT_RELAY_GROUP, Fetched},
    tokio::DelayRelay,
};
use serde_json::json;
use std::{
    collections::BTreeMap,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

/// Delayed delivery.
#[derive(Subcommand, Debug)]
pub(crate) enum Delay {
    /// Creates TOPIC's delay tier topics (`<topic>.delay.<tier>`, one per tier of
    /// `delay.tiers`), with TOPIC's partition count unless told otherwise.
    Create(CreateArgs),
    /// Forwards the records delayed for TOPICs to them once due, exactly once, until
    /// Ctrl-C or SIGTERM.
    Relay(RelayArgs),
    /// Records waiting in each delay tier of TOPICs, and when the next ones leave.
    Stats {
        /// The topics records are delayed for.
        #[arg(required = true)]
        topics: Vec<String>,
        /// The relays' group.
        #[arg(short = 'g', long, default_value = DEFAULT_RELAY_GROUP)]
        group: String,
    },
}

/// The topics a delay or priority topic is spread over, and how to make them.
#[derive(Args, Debug)]
pub(crate) struct CreateArgs {
    /// The topic.
    pub(crate) topic: String,
    /// Partitions of each topic made (by default TOPIC's count).
    #[arg(short, long)]
    partitions: Option<i32>,
    /// Replicas per partition (-1: the broker's default).
    #[arg(short = 'r', long, default_value_t = -1)]
    replication_factor: i16,
}

#[derive(Args, Debug)]
pub(crate) struct RelayArgs {
    /// The topics records are delayed for.
    #[arg(required = true)]
    topics: Vec<String>,
    /// The relays' group.
    #[arg(short = 'g', long, default_value = DEFAULT_RELAY_GROUP)]
    group: String,
    /// This relay's number in the group: `<group>-<instance>` is its `transactional.id`
    /// and `group.instance.id`, so a restarted relay fences what its predecessor left
    /// open and takes its partitions back at once. Give every relay its own.
    #[arg(long, default_value_t = 0)]
    instance: u32,
}

pub(crate) async fn run(
    cmd: Delay,
    props: &[(String, String)],
    out: &Output,
) -> Result<(), String> {
    let tiers = tiers(props)?;
    match cmd {
        Delay::Create(args) => create(&tiers.topics(&args.topic), &args, props, out).await,
        Delay::Relay(args) => relay(args, props, out).await,
        Delay::Stats { topics, group } => stats(&tiers, &topics, &group, props, out).await,
    }
}

/// The tiers `delay.tiers` names, or the default ones.
fn tiers(props: &[(String, String)]) -> Result<DelayTiers, String> {
    match props.iter().rev().find(|(k, _)| k == "delay.tiers") {
        Some((_, v)) => DelayTiers::parse(v).map_err(|e| e.to_string()),
        None => Ok(DelayTiers::default()),
    }
}

/// Creates the topics `names`, with the partitions `args` asks for or as many as its
/// topic has.
pub(crate) async fn create(
    names: &[String],
    args: &CreateArgs,
    props: &[(String, String)],
    out: &Output,
) -> Result<(), String> {
    let replication_factor = args.replication_factor;
    let admin = clients::helper_admin(props)?;
    let result = async {
        let partitions = match args.partitions {
            Some(n) => n,
            None => i32::try_from(clients::partitions(&admin, &args.topic).await?.len())
                .map_err(|e| e.to_string())?,
        };
        let new: Vec<NewTopic> = names
            .iter()
            .map(|t| NewTopic::new(t, partitions, replication_factor))
            .collect();
        admin
            .create_topics(&new, false)
            .await
            .map_err(|e| e.to_string())
    }
    .await;
    admin.close().await;
    let results = result?;
    let mut failed = None;
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|r| {
            let status = match &r.error {
                None => "created".to_string(),
                Some(e) if e.code == kasio::ErrorCode::TopicAlreadyExists => "exists".into(),
                Some(e) => {
                    failed.get_or_insert_with(|| format!("{}: {e}", r.name));
                    e.to_string()
                }
            };
            vec![r.name.clone(), status]
        })
        .collect();
    let value: Vec<_> = rows
        .iter()
        .map(|r| json!({"topic": r[0], "status": r[1]}))
        .collect();
    out.show(&json!(value), &["TOPIC", "STATUS"], rows);
    failed.map_or(Ok(()), Err)
}

async fn relay(args: RelayArgs, props: &[(String, String)], out: &Output) -> Result<(), String> {
    if !crate::props::has_bootstrap(props) {
        return Err("no brokers: pass --bootstrap HOST:PORT or set KASIO_BOOTSTRAP".into());
    }
    let id = format!("{}-{}", args.group, args.instance);
    let mut all: Vec<(&str, &str)> = vec![
        ("group.id", &args.group),
        ("transactional.id", &id),
        ("group.instance.id", &id),
    ];
    all.extend(props.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let topics: Vec<&str> = args.topics.iter().map(String::as_str).collect();
    let relay = DelayRelay::from_properties(all, &topics).map_err(|e| e.to_string())?;
    eprintln!(
        "kasio: relaying {} as {id} (group {}); Ctrl-C stops",
        relay.topics().join(", "),
        args.group
    );
    let counters = relay.run(stop_signal()).await.map_err(|e| e.to_string())?;
    let value = json!({
        "delivered": counters.delivered,
        "moved": counters.moved,
        "commits": counters.commits,
        "aborts": counters.aborts,
    });
    if out.is_json() {
        println!("{value}");
    } else {
        eprintln!(
            "relayed: {} delivered, {} moved to a shorter tier, {} transactions committed, {} aborted",
            counters.delivered, counters.moved, counters.commits, counters.aborts
        );
    }
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM (a service manager's stop).
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// One tier partition's backlog.
#[derive(Debug, Default)]
pub(crate) struct Backlog {
    /// Where the group reads next.
    from: i64,
    /// Offsets from there to the end: the records, and the transaction markers among
    /// them (as consumer lag counts), except that a tier holding only markers counts 0.
    pub(crate) pending: i64,
    /// When the head leaves the tier (its timestamp, the planned start, plus the tier).
    ready_ms: Option<i64>,
    /// When the head is due at its topic.
    due_ms: Option<i64>,
}

/// How long the heads of the tier partitions are read for.
const HEAD_WAIT: Duration = Duration::from_secs(5);

async fn stats(
    tiers: &DelayTiers,
    topics: &[String],
    group: &str,
    props: &[(String, String)],
    out: &Output,
) -> Result<(), String> {
    let admin = clients::helper_admin(props)?;
    let names: Vec<String> = topics.iter().flat_map(|t| tiers.topics(t)).collect();
    let backlogs = backlogs(&admin, &names, group).await;
    admin.close().await;
    let mut backlogs = backlogs?;
    read_heads(&mut backlogs, tiers, props).await?;
    let mut rows = Vec::new();
    let mut value = Vec::new();
    for topic in topics {
        for tier in 0..tiers.len() {
            let name = tiers.topic(topic, tier);
            let parts: Vec<&Backlog> = backlogs
                .iter()
                .filter(|((t, _), _)| *t == name)
                .map(|(_, b)| b)
                .collect();
            let pending: i64 = parts.iter().map(|b| b.pending).sum();
            let ready = parts.iter().filter_map(|b| b.ready_ms).min();
            let due = parts.iter().filter_map(|b| b.due_ms).min();
            value.push(json!({
                "topic": topic, "tier": name, "length_ms": tiers.length_ms(tier),
                "pending": pending, "next_ready_ms": ready, "next_due_ms": due,
            }));
            rows.push(vec![
                name,
                tiers.name(tier),
                pending.to_string(),
                ready.map_or_else(|| "-".into(), from_now),
                due.map_or_else(|| "-".into(), from_now),
            ]);
        }
    }
    out.show(
        &json!(value),
        &["TIER", "LENGTH", "PENDING", "NEXT LEAVES", "NEXT DUE"],
        rows,
    );
    Ok(())
}

pub(crate) type Backlogs = BTreeMap<(String, i32), Backlog>;

/// Each partition of `names`: the group's committed offset (the log start without one)
/// and what lies after it, up to the last stable offset.
pub(crate) async fn backlogs(
    admin: &kasio::tokio::Admin,
    names: &[String],
    group: &str,
) -> Result<Backlogs, String> {
    let mut out = Backlogs::new();
    for name in names {
        for p in clients::partitions(admin, name).await? {
            out.insert((name.clone(), p), Backlog::default());
        }
    }
    let committed = admin
        .group_offsets(group)
        .await
        .map_err(|e| e.to_string())?;
    let offsets = |spec: OffsetSpec| {
        admin.list_offsets(
            out.keys().map(|(t, p)| ((t.as_str(), *p), spec)),
            IsolationLevel::ReadCommitted,
        )
    };
    let (earliest, latest) = (offsets(OffsetSpec::Earliest), offsets(OffsetSpec::Latest));
    let (earliest, latest) = (
        earliest.await.map_err(|e| e.to_string())?,
        latest.await.map_err(|e| e.to_string())?,
    );
    for r in earliest {
        let offset = r
            .result
            .map_err(|e| format!("{} {}: {e}", r.topic, r.partition))?;
        if let Some(b) = out.get_mut(&(r.topic, r.partition)) {
            b.from = offset.offset;
        }
    }
    for c in committed {
        if let Some(b) = out.get_mut(&(c.topic, c.partition)) {
            // Records before the log start are gone (retention): the relay starts there.
            b.from = b.from.max(c.offset);
        }
    }
    for r in latest {
        let end = r
            .result
            .map_err(|e| format!("{} {}: {e}", r.topic, r.partition))?;
        if let Some(b) = out.get_mut(&(r.topic, r.partition)) {
            b.pending = (end.offset - b.from).max(0);
        }
    }
    Ok(out)
}

/// Reads the first record of every tier partition with a backlog: when it leaves the
/// tier and when it is due.
async fn read_heads(
    backlogs: &mut Backlogs,
    tiers: &DelayTiers,
    props: &[(String, String)],
) -> Result<(), String> {
    let waiting: Vec<(String, i32, i64)> = backlogs
        .iter()
        .filter(|(_, b)| b.pending > 0)
        .map(|((t, p), b)| (t.clone(), *p, b.from))
        .collect();
    if waiting.is_empty() {
        return Ok(());
    }
    let consumer = clients::consumer(
        &clients::connection_props(props),
        &[("isolation.level", "read_committed")],
    )?;
    consumer.assign(waiting.iter().map(|(t, p, _)| (t.as_str(), *p)));
    for (t, p, from) in &waiting {
        consumer.seek(t, *p, Seek::Offset(*from));
    }
    let mut left = waiting.len();
    let deadline = tokio::time::Instant::now() + HEAD_WAIT;
    while left > 0 {
        let Ok(next) = tokio::time::timeout_at(deadline, consumer.next()).await else {
            break;
        };
        match next {
            Fetched::Batch(b) => {
                let key = (b.topic.to_string(), b.partition);
                let Some(backlog) = backlogs.get_mut(&key) else {
                    continue;
                };
                if backlog.ready_ms.is_some() {
                    continue;
                }
                let length = tiers
                    .tier_of(&b.topic)
                    .map_or(0, |(_, tier)| tiers.length_ms(tier));
                let mut head = None;
                b.for_each(|r| {
                    if head.is_none() && r.offset >= backlog.from {
                        let due = r
                            .headers()
                            .filter_map(Result::ok)
                            .find(|h| h.key == DUE_HEADER)
                            .and_then(|h| std::str::from_utf8(h.value?).ok()?.parse().ok());
                        head = Some((r.timestamp + length, due));
                    }
                })
                .map_err(|e| format!("{} {}: {e}", b.topic, b.partition))?;
                if let Some((ready, due)) = head {
                    backlog.ready_ms = Some(ready);
                    backlog.due_ms = due;
                    left -= 1;
                }
            }
            Fetched::Event(ConsumerEvent::EndOfPartition {
                topic, partition, ..
            }) => {
                // Only transaction markers were left: nothing waits.
                if let Some(b) = backlogs.get_mut(&(topic.to_string(), partition))
                    && b.ready_ms.is_none()
                    && b.pending > 0
                {
                    b.pending = 0;
                    left -= 1;
                }
            }
            Fetched::Event(ConsumerEvent::Security(e)) => {
                consumer.close().await;
                return Err(e.to_string());
            }
            _ => {}
        }
    }
    consumer.close().await;
    Ok(())
}

/// A Unix time in milliseconds as seen from now: `in 4.2s`, `1.3s ago`.
fn from_now(ms: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let d = ms - now;
    #[allow(clippy::cast_precision_loss)]
    let secs = d.abs() as f64 / 1000.0;
    if d >= 0 {
        format!("in {secs:.1}s")
    } else {
        format!("{secs:.1}s ago")
    }
}
