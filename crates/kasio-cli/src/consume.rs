//! `kasio consume`: records to standard output, formatted or as JSON lines.

use crate::{
    clients,
    formats::{self, Decoder, FormatArgs},
    output::Output,
};
use clap::Args;
use kasio::Fetched;
use kasio::RecordView;
use kasio::serde::Context;
use kasio::{ConsumerEvent, Seek, TopicPartitionOffset};
use serde_json::json;
use std::{
    collections::{BTreeMap, BTreeSet},
    io::Write,
    sync::Arc,
    time::{Duration, Instant},
};

#[derive(Args, Debug)]
pub(crate) struct ConsumeArgs {
    /// The topic.
    topic: String,
    /// Consume as a member of this group (committing positions); without it, read the
    /// partitions directly.
    #[arg(short, long)]
    group: Option<String>,
    /// Where to start: beginning, end, an offset, or @UNIX_MS (a timestamp). In a group
    /// only beginning or end apply, where the group has no committed offset.
    #[arg(short, long, default_value = "end")]
    offset: String,
    /// Only these partitions (repeatable; not in a group).
    #[arg(short, long)]
    partition: Vec<i32>,
    /// Stop after this many records.
    #[arg(short, long)]
    count: Option<u64>,
    /// Stop once every partition has reached its end.
    #[arg(short, long)]
    exit: bool,
    /// Output format: %t topic, %p partition, %o offset, %k key, %s value, %T timestamp,
    /// %h headers (k=v,...), %K key length, %S value length; \n, \t and %% escapes.
    #[arg(short, long, default_value = "%s\\n")]
    format: String,
    #[command(flatten)]
    formats: FormatArgs,
}

/// The decoders of keys and values, when either is not plain text.
struct Decoders {
    key: Decoder,
    value: Decoder,
    registry: Option<kasio::tokio::SchemaRegistry>,
}

impl Decoders {
    /// Fetches the writers' schemas the batch's records name that are not cached yet.
    async fn prepare(&self, batch: &kasio::FetchedBatch) -> Result<(), String> {
        let Some(registry) = &self.registry else {
            return Ok(());
        };
        let mut missing = BTreeSet::new();
        batch
            .for_each(|r| {
                missing.extend(r.key.and_then(|k| self.key.missing(k)));
                missing.extend(r.value.and_then(|v| self.value.missing(v)));
            })
            .map_err(|e| format!("partition {}: malformed records: {e}", batch.partition))?;
        for id in missing {
            formats::fetch(registry, id).await?;
        }
        Ok(())
    }

    /// The record's key and value, decoded.
    fn decode(
        &self,
        topic: &str,
        partition: i32,
        r: &RecordView<'_>,
    ) -> Result<(Option<serde_json::Value>, Option<serde_json::Value>), String> {
        let key = r
            .key
            .map(|k| {
                self.key
                    .decode(k, &Context::key(topic).at(partition, r.offset))
            })
            .transpose()?;
        let value = r
            .value
            .map(|v| {
                self.value
                    .decode(v, &Context::value(topic).at(partition, r.offset))
            })
            .transpose()?;
        Ok((key, value))
    }
}

#[derive(Debug)]
enum Piece {
    Text(Vec<u8>),
    Field(char),
}

fn compile(format: &str) -> Result<Vec<Piece>, String> {
    let mut out = Vec::new();
    let mut text = Vec::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => text.push(b'\n'),
                Some('t') => text.push(b'\t'),
                Some('\\') => text.push(b'\\'),
                Some(o) => return Err(format!("unknown escape \\{o} in the format")),
                None => text.push(b'\\'),
            },
            '%' => match chars.next() {
                Some('%') => text.push(b'%'),
                Some(f @ ('t' | 'p' | 'o' | 'k' | 's' | 'T' | 'h' | 'K' | 'S')) => {
                    if !text.is_empty() {
                        out.push(Piece::Text(std::mem::take(&mut text)));
                    }
                    out.push(Piece::Field(f));
                }
                Some(o) => return Err(format!("unknown field %{o} in the format")),
                None => text.push(b'%'),
            },
            c => {
                let mut buf = [0; 4];
                text.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    if !text.is_empty() {
        out.push(Piece::Text(text));
    }
    Ok(out)
}

fn headers_text(r: &RecordView<'_>) -> String {
    r.headers()
        .filter_map(Result::ok)
        .map(|h| {
            format!(
                "{}={}",
                h.key,
                String::from_utf8_lossy(h.value.unwrap_or_default())
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn render(
    pieces: &[Piece],
    topic: &str,
    partition: i32,
    r: &RecordView<'_>,
    w: &mut impl Write,
) -> std::io::Result<()> {
    for p in pieces {
        match p {
            Piece::Text(t) => w.write_all(t)?,
            Piece::Field('t') => w.write_all(topic.as_bytes())?,
            Piece::Field('p') => write!(w, "{partition}")?,
            Piece::Field('o') => write!(w, "{}", r.offset)?,
            Piece::Field('k') => w.write_all(r.key.unwrap_or_default())?,
            Piece::Field('s') => w.write_all(r.value.unwrap_or_default())?,
            Piece::Field('T') => write!(w, "{}", r.timestamp)?,
            Piece::Field('h') => w.write_all(headers_text(r).as_bytes())?,
            Piece::Field('K') => write!(w, "{}", r.key.map_or(-1, |k| k.len() as i64))?,
            Piece::Field('S') => write!(w, "{}", r.value.map_or(-1, |v| v.len() as i64))?,
            Piece::Field(_) => {}
        }
    }
    Ok(())
}

fn json_line(
    topic: &str,
    partition: i32,
    r: &RecordView<'_>,
    decoded: Option<(Option<serde_json::Value>, Option<serde_json::Value>)>,
    w: &mut impl Write,
) -> std::io::Result<()> {
    let text = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned());
    if let Some((key, value)) = decoded {
        let headers: serde_json::Map<String, serde_json::Value> = r
            .headers()
            .filter_map(Result::ok)
            .map(|h| (h.key.to_string(), json!(text(h.value))))
            .collect();
        let v = json!({"topic": topic, "partition": partition, "offset": r.offset, "timestamp": r.timestamp,
                       "key": key, "value": value, "headers": headers});
        return writeln!(w, "{v}");
    }
    let headers: serde_json::Map<String, serde_json::Value> = r
        .headers()
        .filter_map(Result::ok)
        .map(|h| (h.key.to_string(), json!(text(h.value))))
        .collect();
    let v = json!({"topic": topic, "partition": partition, "offset": r.offset, "timestamp": r.timestamp,
                   "key": text(r.key), "value": text(r.value), "headers": headers});
    writeln!(w, "{v}")
}

fn start(offset: &str) -> Result<Seek, String> {
    match offset {
        "beginning" | "earliest" => Ok(Seek::Beginning),
        "end" | "latest" => Ok(Seek::End),
        o => match o.strip_prefix('@') {
            Some(ts) => ts.parse().map(Seek::Timestamp),
            None => o.parse().map(Seek::Offset),
        }
        .map_err(|_| {
            format!("--offset: expected beginning, end, an offset or @UNIX_MS, got {o:?}")
        }),
    }
}

pub(crate) async fn run(
    args: ConsumeArgs,
    props: &[(String, String)],
    out: &Output,
) -> Result<(), String> {
    let pieces = compile(&args.format)?;
    let seek = start(&args.offset)?;
    let registry_props = props;
    let kafka: Vec<(String, String)> = props
        .iter()
        .filter(|(k, _)| !formats::is_registry_property(k))
        .cloned()
        .collect();
    let props = kafka.as_slice();
    let admin = clients::helper_admin(props)?;
    let all = clients::partitions(&admin, &args.topic).await;
    admin.close().await;
    let all = all?;
    let consumer = match &args.group {
        Some(group) => {
            if !args.partition.is_empty() {
                return Err("--partition reads partitions directly: leave out --group".into());
            }
            let reset = match seek {
                Seek::Beginning => "earliest",
                Seek::End => "latest",
                _ => return Err("in a group, --offset is beginning or end".into()),
            };
            // It commits what it printed itself.
            let c = clients::consumer(
                props,
                &[
                    ("group.id", group),
                    ("auto.offset.reset", reset),
                    ("enable.auto.commit", "false"),
                ],
            )?;
            c.subscribe(&[args.topic.as_str()])
                .map_err(|e| e.to_string())?;
            c
        }
        None => {
            let parts: Vec<i32> = if args.partition.is_empty() {
                all.clone()
            } else {
                args.partition.clone()
            };
            if let Some(p) = parts.iter().find(|p| !all.contains(p)) {
                return Err(format!("topic {} has no partition {p}", args.topic));
            }
            let c = clients::consumer(props, &[])?;
            let assignment: Vec<(&str, i32)> =
                parts.iter().map(|&p| (args.topic.as_str(), p)).collect();
            c.assign(&assignment);
            for p in &parts {
                c.seek(&args.topic, *p, seek);
            }
            c
        }
    };
    let parts: BTreeSet<i32> = match &args.group {
        Some(_) => BTreeSet::new(),
        None if args.partition.is_empty() => all.iter().copied().collect(),
        None => args.partition.iter().copied().collect(),
    };
    let decoders = if args.formats.any() {
        let registry = formats::registry(&args.formats, registry_props)?;
        Some(Decoders {
            key: Decoder::new(args.formats.key(), registry.as_ref())?,
            value: Decoder::new(args.formats.value(), registry.as_ref())?,
            registry,
        })
    } else {
        None
    };
    let mut printed = BTreeMap::new();
    let result = read(
        &args,
        &pieces,
        &consumer,
        decoders.as_ref(),
        out,
        parts,
        &mut printed,
    )
    .await;
    if args.group.is_some() {
        leave(&args.topic, &consumer, &printed).await;
    }
    consumer.close().await;
    result
}

/// Commits the offset after the last record printed per partition, then leaves the group.
async fn leave(topic: &str, consumer: &kasio::tokio::Consumer, printed: &BTreeMap<i32, i64>) {
    let offsets: Vec<TopicPartitionOffset> = printed
        .iter()
        .map(|(&p, &o)| TopicPartitionOffset::new(topic, p, o + 1))
        .collect();
    let wait = tokio::time::Instant::now() + Duration::from_secs(5);
    match tokio::time::timeout_at(wait, consumer.commit(offsets)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("kasio: commit failed: {e}"),
        Err(_) => eprintln!("kasio: the commit was not answered within 5 s"),
    }
    consumer.unsubscribe();
    while consumer.in_group() && tokio::time::Instant::now() < wait {
        let _ = tokio::time::timeout(Duration::from_millis(100), consumer.next()).await;
    }
}

/// Whether an output error means the reader went away (`kasio consume | head`).
fn gone(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::BrokenPipe
}

async fn read(
    args: &ConsumeArgs,
    pieces: &[Piece],
    consumer: &kasio::tokio::Consumer,
    decoders: Option<&Decoders>,
    out: &Output,
    mut assigned: BTreeSet<i32>,
    printed: &mut BTreeMap<i32, i64>,
) -> Result<(), String> {
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut count = 0u64;
    let mut ended: BTreeSet<i32> = BTreeSet::new();
    let mut last_commit = Instant::now();
    let limit = args.count.unwrap_or(u64::MAX);
    let topic: Arc<str> = args.topic.as_str().into();
    loop {
        if count >= limit || (args.exit && !assigned.is_empty() && ended.is_superset(&assigned)) {
            break;
        }
        let next = match tokio::time::timeout(Duration::from_millis(200), consumer.next()).await {
            Ok(n) => n,
            Err(_) => {
                // Nothing for a while: let a reader see what came so far.
                if let Err(e) = w.flush() {
                    return if gone(&e) { Ok(()) } else { Err(e.to_string()) };
                }
                continue;
            }
        };
        match next {
            Fetched::Batch(b) => {
                ended.remove(&b.partition);
                if let Some(d) = decoders {
                    d.prepare(&b).await?;
                }
                let mut failed: Option<std::io::Error> = None;
                let mut bad: Option<String> = None;
                b.for_each(|r| {
                    if count >= limit || failed.is_some() || bad.is_some() {
                        return;
                    }
                    let decoded = match decoders.map(|d| d.decode(&topic, b.partition, &r)) {
                        None => None,
                        Some(Ok(kv)) => Some(kv),
                        Some(Err(e)) => {
                            bad = Some(e);
                            return;
                        }
                    };
                    let written = match decoded {
                        _ if out.is_json() => json_line(&topic, b.partition, &r, decoded, &mut w),
                        Some((key, value)) => {
                            let (key, value) = (
                                key.map(|k| formats::text(&k)),
                                value.map(|v| formats::text(&v)),
                            );
                            let mut view = r;
                            view.key = key.as_deref().map(str::as_bytes);
                            view.value = value.as_deref().map(str::as_bytes);
                            render(pieces, &topic, b.partition, &view, &mut w)
                        }
                        None => render(pieces, &topic, b.partition, &r, &mut w),
                    };
                    match written {
                        Ok(()) => {
                            count += 1;
                            printed.insert(b.partition, r.offset);
                        }
                        Err(e) => failed = Some(e),
                    }
                })
                .map_err(|e| format!("partition {}: malformed records: {e}", b.partition))?;
                if let Some(e) = failed {
                    return if gone(&e) { Ok(()) } else { Err(e.to_string()) };
                }
                if let Some(e) = bad {
                    // What was printed so far stays printed (and, in a group, committed).
                    let _ = w.flush();
                    return Err(e);
                }
            }
            Fetched::Event(ConsumerEvent::EndOfPartition { partition, .. }) => {
                ended.insert(partition);
            }
            Fetched::Event(ConsumerEvent::Assigned { partitions }) => {
                assigned.extend(
                    partitions
                        .iter()
                        .filter(|tp| tp.topic == topic)
                        .map(|tp| tp.partition),
                );
            }
            Fetched::Event(
                ConsumerEvent::Revoked { partitions } | ConsumerEvent::Lost { partitions },
            ) => {
                for tp in &partitions {
                    assigned.remove(&tp.partition);
                    ended.remove(&tp.partition);
                }
            }
            Fetched::Event(ConsumerEvent::GroupError { error }) => {
                return Err(format!("group: {error}"));
            }
            Fetched::Event(ConsumerEvent::Security(e)) => return Err(e.to_string()),
            Fetched::Event(ConsumerEvent::Error {
                partition, error, ..
            }) => {
                return Err(format!("partition {partition}: {error}"));
            }
            _ => {}
        }
        if args.group.is_some()
            && last_commit.elapsed() > Duration::from_secs(5)
            && !printed.is_empty()
        {
            last_commit = Instant::now();
            let offsets: Vec<(&str, i32, i64)> = printed
                .iter()
                .map(|(&p, &o)| (args.topic.as_str(), p, o + 1))
                .collect();
            // Not waited for (the Java client's commitAsync): the commit on leaving is.
            drop(consumer.commit(&offsets));
        }
    }
    match w.flush() {
        Err(e) if !gone(&e) => Err(e.to_string()),
        _ => Ok(()),
    }
}
