//! `kasio produce`: records from standard input, one per line.

use crate::{
    clients,
    formats::{self, Encoder, FormatArgs},
    output::Output,
};
use clap::Args;
use kasio::serde::Context;
use kasio::{DelayTiers, Priority, ProduceError, Record};
use serde_json::Value;
use std::{io::BufRead, time::Duration};

#[derive(Args, Debug)]
pub(crate) struct ProduceArgs {
    /// The topic.
    topic: String,
    /// Split each line into key and value at the first DELIMITER.
    #[arg(short = 'K', long, value_name = "DELIMITER")]
    key_delimiter: Option<String>,
    /// Write every record to this partition (by default the partitioner picks).
    #[arg(short, long)]
    partition: Option<i32>,
    /// A header on every record (repeatable).
    #[arg(short = 'H', long, value_name = "KEY=VALUE")]
    header: Vec<String>,
    /// Read JSON lines: {"key": "...", "value": "...", "headers": {"k": "v"}, "partition": 0};
    /// every field optional, null for a null key or value;
    /// with `"delay_ms": N` to delay that record, `"priority": "critical"` to send it at a
    /// level.
    #[arg(long)]
    json_input: bool,
    /// Delivers every record this long after it is sent (`30s`, `1500ms`, `2m`), through
    /// the topic's delay tiers (`kasio delay create`; `kasio delay relay` forwards them).
    #[arg(long, value_name = "DELAY", value_parser = parse_delay)]
    delay: Option<Duration>,
    /// Sends every record at this priority level (critical, high, normal, low): to
    /// `<topic>.p.<level>` (`kasio priority create` makes them).
    #[arg(long, value_name = "LEVEL", conflicts_with = "delay")]
    priority: Option<Priority>,
    #[command(flatten)]
    formats: FormatArgs,
}

/// A key or a value as read: text, or with --json-input a JSON value.
enum Field {
    Text(Vec<u8>),
    Json(Value),
}

/// One line's record, owned until it is sent.
struct Line {
    key: Option<Field>,
    value: Option<Field>,
    headers: Vec<(String, Vec<u8>)>,
    partition: Option<i32>,
    delay: Option<Duration>,
    priority: Option<Priority>,
}

fn parse_delay(s: &str) -> Result<Duration, String> {
    DelayTiers::parse_length(s)
        .ok_or_else(|| format!("{s:?} is not a delay such as 30s, 1500ms, 2m, 1h or 1d"))
}

fn parse(args: &ProduceArgs, line: &str, n: usize) -> Result<Line, String> {
    let fixed: Vec<(String, Vec<u8>)> = args
        .header
        .iter()
        .map(|h| {
            h.split_once('=')
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                .ok_or_else(|| format!("--header expects KEY=VALUE, got {h:?}"))
        })
        .collect::<Result<_, _>>()?;
    if args.json_input {
        let v: Value =
            serde_json::from_str(line).map_err(|e| format!("line {n}: not JSON: {e}"))?;
        let field = |f: &str| match v.get(f) {
            None | Some(Value::Null) => None,
            Some(other) => Some(Field::Json(other.clone())),
        };
        let mut headers = fixed;
        if let Some(Value::Object(h)) = v.get("headers") {
            for (k, hv) in h {
                let value = match hv {
                    Value::String(s) => s.as_bytes().to_vec(),
                    other => other.to_string().into_bytes(),
                };
                headers.push((k.clone(), value));
            }
        }
        let partition = match v.get("partition") {
            Some(p) => Some(
                p.as_i64()
                    .and_then(|p| i32::try_from(p).ok())
                    .ok_or_else(|| format!("line {n}: bad partition {p}"))?,
            ),
            None => args.partition,
        };
        let delay = match v.get("delay_ms") {
            Some(d) => Some(
                d.as_u64()
                    .map(Duration::from_millis)
                    .ok_or_else(|| format!("line {n}: bad delay_ms {d}"))?,
            ),
            None => args.delay,
        };
        let priority = match v.get("priority") {
            Some(p) => Some(
                p.as_str()
                    .ok_or_else(|| format!("line {n}: priority {p} is not a string"))?
                    .parse::<Priority>()
                    .map_err(|e| format!("line {n}: {e}"))?,
            ),
            None => args.priority,
        };
        return Ok(Line {
            key: field("key"),
            value: field("value"),
            headers,
            partition,
            delay,
            priority,
        });
    }
    let (key, value) = match &args.key_delimiter {
        Some(d) => match line.split_once(d.as_str()) {
            Some((k, v)) => (Some(Field::Text(k.as_bytes().to_vec())), v),
            None => (None, line),
        },
        None => (None, line),
    };
    Ok(Line {
        key,
        value: Some(Field::Text(value.as_bytes().to_vec())),
        headers: fixed,
        partition: args.partition,
        delay: args.delay,
        priority: args.priority,
    })
}

pub(crate) async fn run(
    args: ProduceArgs,
    props: &[(String, String)],
    out: &Output,
) -> Result<(), String> {
    // An unknown topic fails at once, not after max.block.ms.
    let admin = clients::helper_admin(props)?;
    // Records at a level go to its topic; the topic itself need not exist then.
    let checked = args
        .priority
        .map_or_else(|| args.topic.clone(), |l| l.topic(&args.topic));
    let mut partitions = clients::partitions(&admin, &checked).await;
    if partitions.is_err() && args.json_input && args.priority.is_none() {
        let levels = clients::partitions(&admin, &Priority::Normal.topic(&args.topic)).await;
        if levels.is_ok() {
            partitions = levels;
        }
    }
    admin.close().await;
    let partitions = partitions?;
    if let Some(p) = args.partition
        && !partitions.contains(&p)
    {
        return Err(format!("topic {} has no partition {p}", args.topic));
    }
    let registry = formats::registry(&args.formats, props)?;
    let (key_ctx, value_ctx) = (Context::key(&args.topic), Context::value(&args.topic));
    let key_codec = Encoder::new(
        args.formats.key(),
        args.formats.key_schema(),
        args.formats.key_message(),
        registry.as_ref(),
        &key_ctx,
    )
    .await?;
    let value_codec = Encoder::new(
        args.formats.value(),
        args.formats.value_schema(),
        args.formats.value_message(),
        registry.as_ref(),
        &value_ctx,
    )
    .await?;
    let encode = |codec: &Encoder, field: Option<Field>, ctx: &Context<'_>| match field {
        None => Ok(None),
        Some(Field::Text(text)) => codec.encode(text, ctx).map(Some),
        Some(Field::Json(json)) => codec.encode_json(&json, ctx).map(Some),
    };
    let kafka: Vec<(String, String)> = props
        .iter()
        .filter(|(k, _)| !formats::is_registry_property(k))
        .cloned()
        .collect();
    let producer = clients::producer(&kafka, &[])?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<kasio::tokio::Delivery>(65_536);
    let waiter = tokio::spawn(async move {
        let (mut ok, mut failed, mut first): (u64, u64, Option<ProduceError>) = (0, 0, None);
        while let Some(d) = rx.recv().await {
            match d.await {
                Ok(_) => ok += 1,
                Err(e) => {
                    failed += 1;
                    first.get_or_insert(e);
                }
            }
        }
        (ok, failed, first)
    });
    let stdin = std::io::stdin();
    // A line that cannot be sent stops the input, after what came before it is delivered.
    let mut stopped: Option<String> = None;
    let mut tiers_checked = false;
    for (n, line) in stdin.lock().lines().enumerate() {
        let line = match line {
            Ok(line) => line,
            Err(e) => {
                stopped = Some(format!("reading standard input: {e}"));
                break;
            }
        };
        if args.json_input && line.trim().is_empty() {
            continue;
        }
        let encoded = parse(&args, &line, n + 1).and_then(|l| {
            let at = |e| format!("line {}: {e}", n + 1);
            let key = encode(&key_codec, l.key, &key_ctx).map_err(at)?;
            let value = encode(&value_codec, l.value, &value_ctx).map_err(at)?;
            Ok((key, value, l.headers, l.partition, (l.delay, l.priority)))
        });
        let (key, value, headers, partition, (delay, priority)) = match encoded {
            Ok(parts) => parts,
            Err(e) => {
                stopped = Some(e);
                break;
            }
        };
        let headers: Vec<(&str, &[u8])> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
            .collect();
        let mut record = Record::new(&args.topic).headers(&headers);
        if let Some(k) = &key {
            record = record.key(k);
        }
        if let Some(v) = &value {
            record = record.value(v);
        }
        if let Some(p) = partition {
            record = record.partition(p);
        }
        let sent = match (delay, priority) {
            (_, Some(level)) => producer.send_priority(record, level).await,
            (Some(d), None) => {
                if !tiers_checked {
                    check_tiers(props, &args.topic, &producer.delay_tiers()).await?;
                    tiers_checked = true;
                }
                producer.send_delayed(record, d).await
            }
            (None, None) => producer.send(record).await,
        };
        let delivery = match sent {
            Ok(d) => d,
            Err(e) => {
                stopped = Some(e.to_string());
                break;
            }
        };
        if tx.send(delivery).await.is_err() {
            break;
        }
    }
    drop(tx);
    let (ok, failed, first) = waiter.await.map_err(|e| e.to_string())?;
    producer.close().await;
    if out.is_json() {
        println!(
            "{}",
            serde_json::json!({"topic": args.topic, "produced": ok, "failed": failed})
        );
    } else {
        eprintln!("produced {ok} record(s) to {}", args.topic);
    }
    match (stopped, first) {
        (Some(e), _) => Err(e),
        (None, Some(e)) => Err(format!("{failed} record(s) failed, the first with: {e}")),
        (None, None) => Ok(()),
    }
}

/// A delayed record waits for its tier topic up to `max.block.ms` and then fails: a
/// missing tier is named at once instead.
async fn check_tiers(
    props: &[(String, String)],
    topic: &str,
    tiers: &DelayTiers,
) -> Result<(), String> {
    let admin = clients::helper_admin(props)?;
    let names = tiers.topics(topic);
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let described = admin.describe_topics(&refs).await;
    admin.close().await;
    let missing: Vec<String> = described
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|d| d.result.is_err())
        .map(|d| d.name)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{topic} lacks delay tier topics ({}): create them with `kasio delay create {topic}`",
            missing.join(", ")
        ))
    }
}
