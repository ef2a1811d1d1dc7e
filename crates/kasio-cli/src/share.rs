//! `kasio share consume`: reads a topic as a member of a share group (KIP-932), settling
//! each record as `--ack` says, and prints it.

use crate::{clients, output::Output};
use clap::{Args, Subcommand, ValueEnum};
use kasio::{
    AcknowledgeType, ConfigChange, ConfigResource, ConfigResourceType, DeadLettered,
    ShareConsumerConfig,
    shell::ShareFetched,
    tokio::{DeadLetter, ShareConsumer},
};
use serde_json::json;
use std::time::Duration;

/// Share groups: queues over topics.
#[derive(Subcommand, Debug)]
pub(crate) enum Share {
    /// Reads TOPIC as a member of share group GROUP, settling each record (one line each:
    /// the value, or JSON with --json).
    Consume(ShareConsumeArgs),
}

/// How `share consume` settles each record.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub(crate) enum Ack {
    /// Processed: never delivered again.
    Accept,
    /// Not processed: delivered again (to any member), its delivery count one higher.
    Release,
    /// Unprocessable: never delivered again.
    Reject,
}

#[derive(Args, Debug)]
pub(crate) struct ShareConsumeArgs {
    /// The topic.
    topic: String,
    /// The share group.
    #[arg(short = 'g', long)]
    group: String,
    /// How each record is settled.
    #[arg(long, value_enum, default_value = "accept")]
    ack: Ack,
    /// Stops after this many records.
    #[arg(short = 'c', long)]
    count: Option<u64>,
    /// Stops once no record came for a while (3 s; a share group has no end to reach).
    #[arg(short = 'e', long)]
    exit: bool,
    /// Sets the group's `share.auto.offset.reset=earliest` first, so a new group starts
    /// at the oldest records (by default it starts at new ones).
    #[arg(long)]
    from_beginning: bool,
    /// With `--ack reject`: writes each rejected record to this topic first, with the
    /// broker's `__dlq.errors.*` headers and `--reason`, unless the broker writes the
    /// group's dead letters (KIP-1191) itself.
    #[arg(long, value_name = "TOPIC")]
    dead_letter: Option<String>,
    /// Writes to `--dead-letter` even where the broker has a dead-letter topic too.
    #[arg(long, requires = "dead_letter")]
    always_dead_letter: bool,
    /// Why records are rejected (the `__dlq.errors.message` header of the dead letter).
    #[arg(
        long,
        default_value = "rejected by kasio share consume",
        requires = "dead_letter"
    )]
    reason: String,
}

/// How long `-e` waits for a record before it stops.
const IDLE: Duration = Duration::from_secs(3);

pub(crate) async fn run(
    cmd: Share,
    props: &[(String, String)],
    out: &Output,
) -> Result<(), String> {
    let Share::Consume(args) = cmd;
    if args.from_beginning {
        let admin = clients::helper_admin(props)?;
        let resource = ConfigResource {
            kind: ConfigResourceType::Group,
            name: args.group.clone(),
        };
        let change = ConfigChange::Set("share.auto.offset.reset".into(), "earliest".into());
        let results = admin
            .alter_configs(&[(resource, vec![change])], false)
            .await;
        admin.close().await;
        for r in results.map_err(|e| e.to_string())? {
            if let Some(e) = r.error {
                return Err(format!(
                    "setting share.auto.offset.reset of {}: {e}",
                    args.group
                ));
            }
        }
    }
    let mut config = ShareConsumerConfig::default();
    config
        .set("group.id", &args.group)
        .map_err(|e| e.to_string())?;
    config
        .set("share.acknowledgement.mode", "explicit")
        .map_err(|e| e.to_string())?;
    for (k, v) in props {
        config.set(k, v).map_err(|e| e.to_string())?;
    }
    let queue = ShareConsumer::new(config).map_err(|e| e.to_string())?;
    let letters = match &args.dead_letter {
        Some(topic) => {
            let producer = clients::producer(&clients::connection_props(props), &[])?;
            let mut dl = DeadLetter::new(producer.clone(), topic);
            if args.always_dead_letter {
                dl = dl.always();
            }
            queue.dead_letter(dl);
            Some(producer)
        }
        None => None,
    };
    queue.subscribe(&[args.topic.as_str()]);
    let kind = match args.ack {
        Ack::Accept => AcknowledgeType::Accept,
        Ack::Release => AcknowledgeType::Release,
        Ack::Reject => AcknowledgeType::Reject,
    };
    let mut n = 0u64;
    let result = loop {
        if args.count.is_some_and(|c| n >= c) {
            break Ok(());
        }
        let next = if args.exit {
            match tokio::time::timeout(IDLE, queue.next()).await {
                Ok(got) => got,
                Err(_) => break Ok(()),
            }
        } else {
            queue.next().await
        };
        let job = match next {
            ShareFetched::Record(job) => job,
            ShareFetched::Event(kasio::ShareEvent::GroupError { error }) => {
                break Err(format!("share group {}: {error}", args.group));
            }
            _ => continue,
        };
        let mut letter = None;
        if letters.is_some() && kind == AcknowledgeType::Reject {
            match job.reject_with(&args.reason).await {
                Ok(to) => letter = Some(to),
                Err(e) => break Err(e.to_string()),
            }
        } else if let Err(e) = job.acknowledge(kind) {
            break Err(e.to_string());
        }
        let letter = letter.map(|to| match to {
            DeadLettered::Broker(t) => format!("broker:{t}"),
            DeadLettered::Client(m) => format!("client:{}:{}:{}", m.topic, m.partition, m.offset),
            _ => "rejected".to_string(),
        });
        let r = job.record();
        let text = |b: Option<&[u8]>| b.map(|v| String::from_utf8_lossy(v).into_owned());
        if out.is_json() {
            println!(
                "{}",
                json!({"topic": &*r.topic, "partition": r.partition, "offset": r.offset, "key": text(r.key.as_deref()),
                       "value": text(r.value.as_deref()), "delivery_count": job.delivery_count(), "ack": format!("{:?}", args.ack).to_lowercase(),
                       "dead_letter": letter})
            );
        } else {
            println!("{}", text(r.value.as_deref()).unwrap_or_default());
        }
        n += 1;
    };
    // What was settled goes before leaving; a failure is reported, not hidden.
    let committed = queue.commit().await;
    queue.close().await;
    if let Some(p) = letters {
        p.close().await;
    }
    result?;
    committed.map_err(|e| format!("settling the records: {e}"))
}
