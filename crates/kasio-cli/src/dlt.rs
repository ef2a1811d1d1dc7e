//! `kasio dlt`: dead-letter topics, as a `Runner` (or a share consumer) writes them.

use crate::{clients, output::Output};
use clap::Subcommand;
use kasio::{
    ConsumerEvent, Fetched, Record,
    core::{DLQ_TOPIC, is_failure_header},
};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

/// Dead-letter topics.
#[derive(Subcommand, Debug)]
pub(crate) enum Dlt {
    /// Sends TOPIC's dead letters back to the topics they came from (their
    /// `__dlq.errors.topic` header), without the failure headers, so they are processed
    /// again; as group GROUP, whose committed offsets say where the last replay stopped,
    /// so a replay run twice sends nothing twice. Reads to the end of TOPIC and stops.
    Replay {
        /// The dead-letter topic.
        topic: String,
        /// Sends every record here instead.
        #[arg(long)]
        to: Option<String>,
        /// The group whose offsets in TOPIC mark what was replayed.
        #[arg(short = 'g', long, default_value = "kasio-dlt-replay")]
        group: String,
        /// Only counts what would be sent, per destination.
        #[arg(long)]
        dry_run: bool,
    },
}

pub(crate) async fn run(cmd: Dlt, props: &[(String, String)], out: &Output) -> Result<(), String> {
    match cmd {
        Dlt::Replay {
            topic,
            to,
            group,
            dry_run,
        } => replay(&topic, to.as_deref(), &group, dry_run, props, out).await,
    }
}

async fn replay(
    topic: &str,
    to: Option<&str>,
    group: &str,
    dry_run: bool,
    props: &[(String, String)],
    out: &Output,
) -> Result<(), String> {
    let admin = clients::helper_admin(props)?;
    let partitions = clients::partitions(&admin, topic).await;
    admin.close().await;
    let partitions = partitions?;
    let connection = clients::connection_props(props);
    let consumer = clients::consumer(
        &connection,
        &[
            ("group.id", group),
            ("enable.auto.commit", "false"),
            ("auto.offset.reset", "earliest"),
        ],
    )?;
    let producer = clients::producer(&connection, &[("enable.idempotence", "true")])?;
    // Assigned with a group id, each partition starts at the group's committed offset.
    consumer.assign(partitions.iter().map(|&p| (topic, p)));
    let mut ended: BTreeSet<i32> = BTreeSet::new();
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    let mut sent: BTreeMap<String, u64> = BTreeMap::new();
    let mut deliveries = Vec::new();
    let mut failure = None;
    while ended.len() < partitions.len() {
        match consumer.next().await {
            Fetched::Batch(batch) => {
                ended.remove(&batch.partition);
                for record in batch.iter().map_err(|e| e.to_string())? {
                    let record = record.map_err(|e| e.to_string())?;
                    next.insert(record.partition, record.offset + 1);
                    let headers = record.header_pairs();
                    let origin = headers
                        .iter()
                        .rev()
                        .find(|(k, _)| k == DLQ_TOPIC)
                        .and_then(|(_, v)| String::from_utf8(v.clone()).ok());
                    let Some(dest) = to.map(str::to_string).or(origin) else {
                        failure = Some(format!(
                            "{topic}-{}@{}: no {DLQ_TOPIC} header; name a destination with --to",
                            record.partition, record.offset
                        ));
                        break;
                    };
                    *sent.entry(dest.clone()).or_default() += 1;
                    if dry_run {
                        continue;
                    }
                    let kept: Vec<(&str, &[u8])> = headers
                        .iter()
                        .filter(|(k, _)| !is_failure_header(k))
                        .map(|(k, v)| (k.as_str(), v.as_slice()))
                        .collect();
                    let mut copy = Record::new(&dest).headers(&kept);
                    copy.key = record.key.as_deref();
                    copy.value = record.value.as_deref();
                    deliveries.push(producer.send(copy).await.map_err(|e| e.to_string())?);
                }
                if failure.is_some() {
                    break;
                }
            }
            Fetched::Event(ConsumerEvent::EndOfPartition { partition, .. }) => {
                ended.insert(partition);
            }
            Fetched::Event(ConsumerEvent::Error {
                partition, error, ..
            }) => {
                failure = Some(format!("{topic}-{partition}: {error}"));
                break;
            }
            Fetched::Event(ConsumerEvent::Security(e)) => {
                failure = Some(e.to_string());
                break;
            }
            _ => {}
        }
    }
    // Offsets are committed only past what was delivered: a failed send leaves the
    // replay to be run again from there.
    let mut delivered = true;
    for d in deliveries {
        if let Err(e) = d.await {
            failure.get_or_insert(format!("a replayed record was not delivered: {e}"));
            delivered = false;
        }
    }
    producer.close().await;
    if !dry_run && delivered && !next.is_empty() {
        let offsets: Vec<(&str, i32, i64)> = next.iter().map(|(&p, &o)| (topic, p, o)).collect();
        if let Err(e) = consumer.commit(offsets).await {
            failure.get_or_insert(format!("committing the replay's offsets failed: {e}"));
        }
    }
    consumer.close().await;
    if let Some(e) = failure {
        return Err(e);
    }
    let total: u64 = sent.values().sum();
    let rows = sent
        .iter()
        .map(|(t, n)| vec![t.clone(), n.to_string()])
        .collect();
    let verb = if dry_run { "would send" } else { "sent" };
    out.show(
        &json!({"topic": topic, "dry_run": dry_run, "records": total, "to": sent}),
        &["TO", verb],
        rows,
    );
    Ok(())
}
