//! The admin commands: cluster, topics, configs, groups, ACLs, SCRAM, quotas.

use crate::{Command, output::Output, props};
use clap::{Args, Subcommand};
use kasio::tokio::Admin;
use kasio::{
    AclBinding, AclFilter, AclOperation, AclPermission, AdminConfig, ApiError, ConfigChange,
    ConfigResource, IsolationLevel, NewTopic, OffsetSpec, PatternType, QuotaChange, QuotaFilter,
    QuotaMatch, ResourceType, ScramChange, ScramMechanism, TopicRef,
};
use serde_json::{Value, json};
use std::time::Duration;

#[derive(Subcommand, Debug)]
pub(crate) enum Topics {
    /// Lists the topics.
    List {
        /// Include Kafka's internal topics.
        #[arg(long)]
        internal: bool,
    },
    /// Partitions, leaders, replicas and in-sync replicas of topics.
    Describe {
        /// The topics.
        #[arg(required = true)]
        topics: Vec<String>,
    },
    /// Creates a topic.
    Create {
        /// The topic.
        topic: String,
        /// Partitions (the broker's default when left out).
        #[arg(short, long, default_value_t = -1)]
        partitions: i32,
        /// Replication factor (the broker's default when left out).
        #[arg(short, long, default_value_t = -1)]
        replication_factor: i16,
        /// A topic config (repeatable), as `kafka-topics.sh --config` takes it.
        #[arg(
            short = 'c',
            long = "config",
            visible_alias = "topic-config",
            value_name = "KEY=VALUE"
        )]
        topic_config: Vec<String>,
        /// Replicas per partition, as Kafka's tools take them: partitions separated by
        /// commas, each partition's brokers by colons (`1:2,2:3,3:1`).
        #[arg(long, conflicts_with_all = ["partitions", "replication_factor"])]
        replica_assignment: Option<String>,
        /// Only check that the topic could be created.
        #[arg(long)]
        validate_only: bool,
    },
    /// Deletes topics.
    Delete {
        /// The topics (their ids with --by-id).
        #[arg(required = true)]
        topics: Vec<String>,
        /// Name the topics by id (as `topics list` prints them).
        #[arg(long)]
        by_id: bool,
    },
    /// Raises a topic's partition count.
    AddPartitions {
        /// The topic.
        topic: String,
        /// The new total.
        count: i32,
    },
    /// Deletes a partition's records before an offset.
    DeleteRecords {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The first offset to keep (-1: everything up to the high watermark).
        offset: i64,
    },
    /// Offsets of every partition of a topic.
    Offsets {
        /// The topic.
        topic: String,
        /// earliest, latest, max-timestamp, or a timestamp in ms.
        #[arg(long, default_value = "latest")]
        at: String,
    },
}

#[derive(Args, Debug)]
pub(crate) struct Resource {
    /// A topic's configs.
    #[arg(long, conflicts_with_all = ["broker", "group"])]
    topic: Option<String>,
    /// A broker's configs.
    #[arg(long, conflicts_with = "group")]
    broker: Option<i32>,
    /// A group's configs (share groups: lock duration, delivery limit, dead-letter topic).
    #[arg(long)]
    group: Option<String>,
}

impl Resource {
    fn get(&self) -> Result<ConfigResource, String> {
        match (&self.topic, self.broker, &self.group) {
            (Some(t), None, None) => Ok(ConfigResource::topic(t)),
            (None, Some(b), None) => Ok(ConfigResource::broker(b)),
            (None, None, Some(g)) => Ok(ConfigResource::group(g)),
            _ => Err("name a --topic, a --broker or a --group".into()),
        }
    }
}

#[derive(Subcommand, Debug)]
pub(crate) enum Configs {
    /// The configs of a topic, broker or group.
    Describe {
        #[command(flatten)]
        resource: Resource,
        /// Every config, not only those set on the resource.
        #[arg(long)]
        all: bool,
    },
    /// Sets or deletes configs of a topic, broker or group.
    Alter {
        #[command(flatten)]
        resource: Resource,
        /// Sets a config (repeatable).
        #[arg(long, visible_alias = "add-config", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Deletes a config, back to its default (repeatable).
        #[arg(
            long,
            visible_alias = "delete-config",
            value_name = "KEY[,...]",
            value_delimiter = ','
        )]
        delete: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum Groups {
    /// Lists the groups.
    List,
    /// Describes groups: state, members, assignments.
    Describe {
        /// The groups.
        #[arg(required = true)]
        groups: Vec<String>,
    },
    /// A group's committed offsets, with their metadata.
    Offsets {
        /// The group.
        group: String,
    },
    /// Committed offsets, log end offsets and lag of a group.
    Lag {
        /// The group.
        group: String,
    },
    /// Deletes groups.
    Delete {
        /// The groups.
        #[arg(required = true)]
        groups: Vec<String>,
    },
    /// Moves a group's committed offsets (the group must have no members).
    Reset {
        /// The group.
        group: String,
        /// earliest, latest, a timestamp in ms, or offset:N.
        #[arg(long)]
        to: String,
        /// Only these partitions (TOPIC:PARTITION, repeatable); by default every
        /// partition the group has committed.
        #[arg(long, value_name = "TOPIC:PARTITION")]
        partition: Vec<String>,
    },
    /// Deletes a group's committed offsets for partitions.
    DeleteOffsets {
        /// The group.
        group: String,
        /// TOPIC:PARTITION (repeatable).
        #[arg(required = true)]
        partitions: Vec<String>,
    },
}

#[derive(Args, Debug)]
pub(crate) struct AclArgs {
    /// The principal (User:name).
    #[arg(long)]
    principal: Option<String>,
    /// A topic.
    #[arg(long)]
    topic: Option<String>,
    /// A group.
    #[arg(long)]
    group: Option<String>,
    /// The cluster.
    #[arg(long)]
    cluster: bool,
    /// read, write, create, delete, alter, describe, all, ...
    #[arg(long)]
    operation: Option<String>,
    /// allow or deny.
    #[arg(long)]
    permission: Option<String>,
    /// The host (* for any).
    #[arg(long)]
    host: Option<String>,
    /// Match names by prefix.
    #[arg(long)]
    prefixed: bool,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Acls {
    /// The ACLs matching the options (every ACL without any).
    List(AclArgs),
    /// Creates an ACL.
    Create(AclArgs),
    /// Deletes the ACLs matching the options.
    Delete(AclArgs),
}

#[derive(Subcommand, Debug)]
pub(crate) enum Scram {
    /// The SCRAM credentials of users (every user without any).
    Describe {
        /// The users.
        users: Vec<String>,
    },
    /// Sets a user's SCRAM credential.
    Set {
        /// The user.
        user: String,
        /// SCRAM-SHA-256 or SCRAM-SHA-512.
        #[arg(long, default_value = "SCRAM-SHA-256")]
        mechanism: String,
        /// PBKDF2 iterations.
        #[arg(long, default_value_t = 8192)]
        iterations: i32,
        /// The password.
        #[arg(long)]
        password: String,
    },
    /// Deletes a user's SCRAM credential.
    Delete {
        /// The user.
        user: String,
        /// SCRAM-SHA-256 or SCRAM-SHA-512.
        #[arg(long, default_value = "SCRAM-SHA-256")]
        mechanism: String,
    },
}

#[derive(Args, Debug)]
pub(crate) struct QuotaEntity {
    /// A user (empty for the default user).
    #[arg(long)]
    user: Option<String>,
    /// A client id (empty for the default client id).
    #[arg(long)]
    client_id: Option<String>,
}

impl QuotaEntity {
    fn entity(&self) -> Vec<(&str, Option<&str>)> {
        fn name(s: &str) -> Option<&str> {
            (!s.is_empty()).then_some(s)
        }
        let mut e = Vec::new();
        if let Some(u) = &self.user {
            e.push(("user", name(u)));
        }
        if let Some(c) = &self.client_id {
            e.push(("client-id", name(c)));
        }
        e
    }
}

#[derive(Subcommand, Debug)]
pub(crate) enum Quotas {
    /// The quotas of an entity (every entity without options).
    Describe(QuotaEntity),
    /// Sets or removes quotas of an entity.
    Alter {
        #[command(flatten)]
        entity: QuotaEntity,
        /// Sets a quota (repeatable), e.g. producer_byte_rate=1048576.
        #[arg(long, value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Removes a quota (repeatable).
        #[arg(long, value_name = "KEY")]
        remove: Vec<String>,
    },
}

fn connect(props: &[(String, String)]) -> Result<Admin, String> {
    if !props::has_bootstrap(props) {
        return Err("no brokers: pass --bootstrap HOST:PORT or set KASIO_BOOTSTRAP".into());
    }
    let mut config = AdminConfig::default();
    // A person at a terminal waits 15 s, not the Java client's 60, unless told otherwise.
    config.default_api_timeout = Duration::from_secs(15);
    for (k, v) in props {
        config.set(k, v).map_err(|e| e.to_string())?;
    }
    Admin::new(config).map_err(|e| e.to_string())
}

fn err(e: &ApiError) -> Value {
    json!({"code": e.code.name(), "message": e.to_string()})
}

fn status<T>(r: &Result<T, ApiError>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => e.to_string(),
    }
}

fn kv(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}

fn tp(s: &str) -> Result<(String, i32), String> {
    let (t, p) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("expected TOPIC:PARTITION, got {s:?}"))?;
    let p = p.parse().map_err(|_| format!("bad partition in {s:?}"))?;
    Ok((t.to_string(), p))
}

fn spec(s: &str) -> Result<OffsetSpec, String> {
    match s {
        "earliest" | "beginning" => Ok(OffsetSpec::Earliest),
        "latest" | "end" => Ok(OffsetSpec::Latest),
        "max-timestamp" => Ok(OffsetSpec::MaxTimestamp),
        ms => ms
            .parse()
            .map(OffsetSpec::Timestamp)
            .map_err(|_| format!("expected earliest, latest, max-timestamp or ms, got {s:?}")),
    }
}

/// Exits non-zero when any part failed, after printing every part.
fn all_ok<T>(parts: impl IntoIterator<Item = Result<T, ApiError>>) -> Result<(), String> {
    let failed = parts.into_iter().filter(Result::is_err).count();
    if failed == 0 {
        Ok(())
    } else {
        Err(format!("{failed} part(s) failed"))
    }
}

pub(crate) async fn run(
    cmd: Command,
    props: &[(String, String)],
    out: &Output,
) -> Result<(), String> {
    let admin = connect(props)?;
    let result = dispatch(cmd, &admin, out).await;
    admin.close().await;
    result
}

async fn dispatch(cmd: Command, admin: &Admin, out: &Output) -> Result<(), String> {
    let e = |e: kasio::AdminError| e.to_string();
    match cmd {
        Command::Cluster => {
            let c = admin.describe_cluster().await.map_err(e)?;
            let brokers: Vec<Value> = c
                .brokers
                .iter()
                .map(|b| json!({"id": b.id, "host": b.host, "port": b.port, "rack": b.rack, "fenced": b.fenced}))
                .collect();
            let rows = c
                .brokers
                .iter()
                .map(|b| {
                    vec![
                        b.id.to_string(),
                        format!("{}:{}", b.host, b.port),
                        b.rack.clone().unwrap_or_default(),
                        if Some(b.id) == c.controller {
                            "controller".into()
                        } else {
                            String::new()
                        },
                    ]
                })
                .collect();
            if !out.is_json() {
                println!("cluster {}", c.cluster_id);
            }
            out.show(
                &json!({"cluster_id": c.cluster_id, "controller": c.controller, "brokers": brokers}),
                &["BROKER", "ADDRESS", "RACK", ""],
                rows,
            );
            Ok(())
        }
        Command::ApiVersions { broker } => {
            let vs = admin.api_versions(broker).await.map_err(e)?;
            let value: Vec<Value> = vs
                .iter()
                .map(|v| json!({"key": v.api_key, "name": v.name, "min": v.min_version, "max": v.max_version}))
                .collect();
            let rows = vs
                .iter()
                .map(|v| {
                    vec![
                        v.api_key.to_string(),
                        v.name.unwrap_or("?").to_string(),
                        format!("{}-{}", v.min_version, v.max_version),
                    ]
                })
                .collect();
            out.show(&json!(value), &["KEY", "API", "VERSIONS"], rows);
            Ok(())
        }
        Command::Topics(t) => topics(t, admin, out).await,
        Command::Configs(c) => configs(c, admin, out).await,
        Command::Groups(g) => groups(g, admin, out).await,
        Command::Acls(a) => acls(a, admin, out).await,
        Command::Scram(s) => scram(s, admin, out).await,
        Command::Quotas(q) => quotas(q, admin, out).await,
        Command::Quickstart(_)
        | Command::Produce(_)
        | Command::Consume(_)
        | Command::Share(_)
        | Command::Delay(_)
        | Command::Priority(_)
        | Command::Dlt(_)
        | Command::Perf(_)
        | Command::Mock(_) => Err("not an admin command".into()),
    }
}

async fn topics(cmd: Topics, admin: &Admin, out: &Output) -> Result<(), String> {
    let e = |e: kasio::AdminError| e.to_string();
    match cmd {
        Topics::List { internal } => {
            let ts = admin.list_topics(internal).await.map_err(e)?;
            let value: Vec<Value> = ts
                .iter()
                .map(|t| json!({"name": t.name, "id": t.id.to_string(), "internal": t.internal}))
                .collect();
            let rows = ts
                .iter()
                .map(|t| vec![t.name.clone(), t.id.to_string()])
                .collect();
            out.show(&json!(value), &["TOPIC", "ID"], rows);
            Ok(())
        }
        Topics::Describe { topics } => {
            let names: Vec<&str> = topics.iter().map(String::as_str).collect();
            let ds = admin.describe_topics(&names).await.map_err(e)?;
            let mut value = Vec::new();
            let mut rows = Vec::new();
            for d in &ds {
                match &d.result {
                    Ok(t) => {
                        let parts: Vec<Value> = t
                            .partitions
                            .iter()
                            .map(|p| {
                                json!({"partition": p.partition, "leader": p.leader, "leader_epoch": p.leader_epoch,
                                       "replicas": p.replicas, "isr": p.isr, "offline": p.offline_replicas})
                            })
                            .collect();
                        value.push(json!({"name": t.name, "id": t.id.to_string(), "internal": t.internal, "partitions": parts}));
                        for p in &t.partitions {
                            rows.push(vec![
                                t.name.clone(),
                                p.partition.to_string(),
                                p.leader.map_or("none".into(), |l| l.to_string()),
                                join(&p.replicas),
                                join(&p.isr),
                            ]);
                        }
                    }
                    Err(er) => {
                        value.push(json!({"name": d.name, "error": err(er)}));
                        rows.push(vec![
                            d.name.clone(),
                            "-".into(),
                            er.to_string(),
                            String::new(),
                            String::new(),
                        ]);
                    }
                }
            }
            out.show(
                &json!(value),
                &["TOPIC", "PARTITION", "LEADER", "REPLICAS", "ISR"],
                rows,
            );
            all_ok(ds.into_iter().map(|d| d.result))
        }
        Topics::Create {
            topic,
            partitions,
            replication_factor,
            topic_config,
            replica_assignment,
            validate_only,
        } => {
            let mut t = match replica_assignment {
                Some(a) => NewTopic::with_assignment(&topic, assignment(&a)?),
                None => NewTopic::new(&topic, partitions, replication_factor),
            };
            for c in &topic_config {
                let (k, v) = kv(c)?;
                t = t.config(&k, &v);
            }
            let rs = admin.create_topics(&[t], validate_only).await.map_err(e)?;
            topic_results(&rs, out)
        }
        Topics::Delete { topics, by_id } => {
            let refs: Vec<TopicRef> = if by_id {
                topics
                    .iter()
                    .map(|t| {
                        kasio::Uuid::parse(t)
                            .map(TopicRef::Id)
                            .ok_or_else(|| format!("{t:?} is not a topic id"))
                    })
                    .collect::<Result<_, _>>()?
            } else {
                topics.iter().map(|t| TopicRef::Name(t.clone())).collect()
            };
            let rs = admin.delete_topics(&refs).await.map_err(e)?;
            topic_results(&rs, out)
        }
        Topics::AddPartitions { topic, count } => {
            let rs = admin
                .create_partitions(&[(&topic, count)], false)
                .await
                .map_err(e)?;
            topic_results(&rs, out)
        }
        Topics::DeleteRecords {
            topic,
            partition,
            offset,
        } => {
            let rs = admin
                .delete_records([(topic.as_str(), partition, offset)])
                .await
                .map_err(e)?;
            let value: Vec<Value> = rs
                .iter()
                .map(|r| match &r.result {
                    Ok(lw) => {
                        json!({"topic": r.topic, "partition": r.partition, "low_watermark": lw})
                    }
                    Err(er) => {
                        json!({"topic": r.topic, "partition": r.partition, "error": err(er)})
                    }
                })
                .collect();
            let rows = rs
                .iter()
                .map(|r| {
                    vec![
                        r.topic.clone(),
                        r.partition.to_string(),
                        r.result
                            .as_ref()
                            .map_or_else(ToString::to_string, ToString::to_string),
                    ]
                })
                .collect();
            out.show(
                &json!(value),
                &["TOPIC", "PARTITION", "LOW WATERMARK"],
                rows,
            );
            all_ok(rs.into_iter().map(|r| r.result))
        }
        Topics::Offsets { topic, at } => {
            let at = spec(&at)?;
            let d = admin.describe_topics(&[&topic]).await.map_err(e)?;
            let t = d
                .into_iter()
                .next()
                .ok_or("no answer for the topic")?
                .result
                .map_err(|er| format!("{topic}: {er}"))?;
            let specs = t
                .partitions
                .iter()
                .map(|p| ((topic.as_str(), p.partition), at));
            let rs = admin
                .list_offsets(specs, IsolationLevel::ReadUncommitted)
                .await
                .map_err(e)?;
            let value: Vec<Value> = rs
                .iter()
                .map(|r| match &r.result {
                    Ok(o) => json!({"topic": r.topic, "partition": r.partition, "offset": o.offset, "timestamp": o.timestamp}),
                    Err(er) => json!({"topic": r.topic, "partition": r.partition, "error": err(er)}),
                })
                .collect();
            let rows = rs
                .iter()
                .map(|r| {
                    vec![
                        r.topic.clone(),
                        r.partition.to_string(),
                        r.result
                            .as_ref()
                            .map_or_else(ToString::to_string, |o| o.offset.to_string()),
                    ]
                })
                .collect();
            out.show(&json!(value), &["TOPIC", "PARTITION", "OFFSET"], rows);
            all_ok(rs.into_iter().map(|r| r.result))
        }
    }
}

/// `1:2,2:3` to `[[1, 2], [2, 3]]`.
fn assignment(s: &str) -> Result<Vec<Vec<i32>>, String> {
    s.split(',')
        .map(|part| {
            part.split(':')
                .map(|b| {
                    b.trim()
                        .parse()
                        .map_err(|_| format!("bad broker id {b:?} in {s:?}"))
                })
                .collect()
        })
        .collect()
}

fn join(v: &[i32]) -> String {
    v.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn topic_results(rs: &[kasio::TopicResult], out: &Output) -> Result<(), String> {
    let value: Vec<Value> = rs
        .iter()
        .map(|r| match &r.error {
            None => json!({"name": r.name, "id": r.id.to_string()}),
            Some(er) => json!({"name": r.name, "error": err(er)}),
        })
        .collect();
    let rows = rs
        .iter()
        .map(|r| {
            vec![
                r.name.clone(),
                r.error.as_ref().map_or("ok".into(), ToString::to_string),
            ]
        })
        .collect();
    out.show(&json!(value), &["TOPIC", "RESULT"], rows);
    all_ok(rs.iter().map(|r| r.error.clone().map_or(Ok(()), Err)))
}

async fn configs(cmd: Configs, admin: &Admin, out: &Output) -> Result<(), String> {
    let e = |e: kasio::AdminError| e.to_string();
    match cmd {
        Configs::Describe { resource, all } => {
            let r = resource.get()?;
            let rs = admin.describe_configs(&[r]).await.map_err(e)?;
            let mut value = Vec::new();
            let mut rows = Vec::new();
            for rc in &rs {
                match &rc.result {
                    Ok(entries) => {
                        for c in entries {
                            let set = !matches!(
                                c.source,
                                kasio::ConfigSource::Default | kasio::ConfigSource::StaticBroker
                            );
                            value.push(json!({"name": c.name, "value": c.value, "source": format!("{:?}", c.source),
                                              "read_only": c.read_only, "sensitive": c.sensitive}));
                            if all || set {
                                rows.push(vec![
                                    c.name.clone(),
                                    c.value.clone().unwrap_or_else(|| {
                                        if c.sensitive {
                                            "(sensitive)".into()
                                        } else {
                                            String::new()
                                        }
                                    }),
                                    format!("{:?}", c.source),
                                ]);
                            }
                        }
                    }
                    Err(er) => return Err(er.to_string()),
                }
            }
            out.show(&json!(value), &["NAME", "VALUE", "SOURCE"], rows);
            Ok(())
        }
        Configs::Alter {
            resource,
            set,
            delete,
        } => {
            let r = resource.get()?;
            let mut changes = Vec::new();
            for s in &set {
                let (k, v) = kv(s)?;
                changes.push(ConfigChange::Set(k, v));
            }
            changes.extend(delete.into_iter().map(ConfigChange::Delete));
            if changes.is_empty() {
                return Err("nothing to change: pass --set KEY=VALUE or --delete KEY".into());
            }
            let rs = admin
                .alter_configs(&[(r, changes)], false)
                .await
                .map_err(e)?;
            let value: Vec<Value> = rs
                .iter()
                .map(|r| json!({"resource": r.resource.name, "error": r.error.as_ref().map(err)}))
                .collect();
            let rows = rs
                .iter()
                .map(|r| {
                    vec![
                        r.resource.name.clone(),
                        r.error.as_ref().map_or("ok".into(), ToString::to_string),
                    ]
                })
                .collect();
            out.show(&json!(value), &["RESOURCE", "RESULT"], rows);
            all_ok(rs.into_iter().map(|r| r.error.map_or(Ok(()), Err)))
        }
    }
}

async fn groups(cmd: Groups, admin: &Admin, out: &Output) -> Result<(), String> {
    let e = |e: kasio::AdminError| e.to_string();
    match cmd {
        Groups::List => {
            let gs = admin.list_groups().await.map_err(e)?;
            let value: Vec<Value> = gs
                .iter()
                .map(|g| json!({"group": g.id, "protocol_type": g.protocol_type, "state": g.state, "type": g.group_type}))
                .collect();
            let rows = gs
                .iter()
                .map(|g| vec![g.id.clone(), g.group_type.clone(), g.state.clone()])
                .collect();
            out.show(&json!(value), &["GROUP", "TYPE", "STATE"], rows);
            Ok(())
        }
        Groups::Describe { groups } => {
            let names: Vec<&str> = groups.iter().map(String::as_str).collect();
            let ds = admin.describe_groups(&names).await.map_err(e)?;
            let mut value = Vec::new();
            let mut rows = Vec::new();
            for d in &ds {
                match &d.result {
                    Ok(g) => {
                        let members: Vec<Value> = g
                            .members
                            .iter()
                            .map(|m| {
                                let a: Vec<Value> = m.assignment.iter().map(|(t, ps)| json!({"topic": t, "partitions": ps})).collect();
                                json!({"member_id": m.member_id, "instance_id": m.instance_id, "client_id": m.client_id,
                                       "host": m.host, "assignment": a})
                            })
                            .collect();
                        value.push(json!({"group": g.id, "type": g.group_type, "state": g.state, "assignor": g.assignor, "members": members}));
                        for m in &g.members {
                            let a: Vec<String> = m
                                .assignment
                                .iter()
                                .map(|(t, ps)| format!("{t}:{}", join(ps)))
                                .collect();
                            rows.push(vec![
                                g.id.clone(),
                                g.state.clone(),
                                m.member_id.clone(),
                                m.client_id.clone(),
                                m.host.clone(),
                                a.join(" "),
                            ]);
                        }
                        if g.members.is_empty() {
                            rows.push(vec![
                                g.id.clone(),
                                g.state.clone(),
                                String::new(),
                                String::new(),
                                String::new(),
                                String::new(),
                            ]);
                        }
                    }
                    Err(er) => {
                        value.push(json!({"group": d.name, "error": err(er)}));
                        rows.push(vec![
                            d.name.clone(),
                            er.to_string(),
                            String::new(),
                            String::new(),
                            String::new(),
                            String::new(),
                        ]);
                    }
                }
            }
            out.show(
                &json!(value),
                &["GROUP", "STATE", "MEMBER", "CLIENT", "HOST", "ASSIGNMENT"],
                rows,
            );
            all_ok(ds.into_iter().map(|d| d.result))
        }
        Groups::Offsets { group } => {
            let rows = admin.group_offsets(&group).await.map_err(e)?;
            let value: Vec<Value> = rows
                .iter()
                .map(|c| json!({"topic": c.topic, "partition": c.partition, "offset": c.offset, "metadata": c.metadata}))
                .collect();
            let table = rows
                .iter()
                .map(|c| {
                    vec![
                        c.topic.clone(),
                        c.partition.to_string(),
                        c.offset.to_string(),
                        c.metadata.clone(),
                    ]
                })
                .collect();
            out.show(
                &json!(value),
                &["TOPIC", "PARTITION", "OFFSET", "METADATA"],
                table,
            );
            Ok(())
        }
        Groups::Lag { group } => {
            // A share group's lag counts from its start offset: records not yet settled.
            let share = admin
                .describe_groups(&[group.as_str()])
                .await
                .ok()
                .and_then(|d| d.into_iter().next())
                .and_then(|d| d.result.ok())
                .is_some_and(|g| g.group_type == "share");
            let lag = if share {
                admin.share_group_offsets(&group).await
            } else {
                admin.group_lag(&group).await
            }
            .map_err(e)?;
            let value: Vec<Value> = lag
                .iter()
                .map(|l| json!({"topic": l.topic, "partition": l.partition, "committed": l.committed, "end": l.end, "lag": l.lag}))
                .collect();
            let rows = lag
                .iter()
                .map(|l| {
                    vec![
                        l.topic.clone(),
                        l.partition.to_string(),
                        l.committed.to_string(),
                        l.end.to_string(),
                        l.lag.to_string(),
                    ]
                })
                .collect();
            out.show(
                &json!(value),
                &["TOPIC", "PARTITION", "COMMITTED", "LOG-END", "LAG"],
                rows,
            );
            Ok(())
        }
        Groups::Delete { groups } => {
            let names: Vec<&str> = groups.iter().map(String::as_str).collect();
            let rs = admin.delete_groups(&names).await.map_err(e)?;
            named_results(rs, out, "GROUP")
        }
        Groups::Reset {
            group,
            to,
            partition,
        } => {
            let parts: Vec<(String, i32)> =
                partition.iter().map(|s| tp(s)).collect::<Result<_, _>>()?;
            let refs: Vec<(&str, i32)> = parts.iter().map(|(t, p)| (t.as_str(), *p)).collect();
            let rs = if let Some(offset) = to.strip_prefix("offset:") {
                let o: i64 = offset
                    .parse()
                    .map_err(|_| format!("bad offset in {to:?}"))?;
                if refs.is_empty() {
                    return Err("--to offset:N needs --partition TOPIC:PARTITION".into());
                }
                let offsets: Vec<(&str, i32, i64)> = refs.iter().map(|&(t, p)| (t, p, o)).collect();
                admin
                    .alter_group_offsets(&group, &offsets)
                    .await
                    .map_err(e)?
                    .into_iter()
                    .map(|r| kasio::PartitionResult {
                        topic: r.topic,
                        partition: r.partition,
                        result: r.result.map(|()| o),
                    })
                    .collect()
            } else {
                admin
                    .reset_group_offsets(&group, &refs, spec(&to)?)
                    .await
                    .map_err(e)?
            };
            let value: Vec<Value> = rs
                .iter()
                .map(|r| match &r.result {
                    Ok(o) => json!({"topic": r.topic, "partition": r.partition, "offset": o}),
                    Err(er) => {
                        json!({"topic": r.topic, "partition": r.partition, "error": err(er)})
                    }
                })
                .collect();
            let rows = rs
                .iter()
                .map(|r| {
                    vec![
                        r.topic.clone(),
                        r.partition.to_string(),
                        r.result
                            .as_ref()
                            .map_or_else(ToString::to_string, ToString::to_string),
                    ]
                })
                .collect();
            out.show(&json!(value), &["TOPIC", "PARTITION", "NEW OFFSET"], rows);
            all_ok(rs.into_iter().map(|r| r.result))
        }
        Groups::DeleteOffsets { group, partitions } => {
            let parts: Vec<(String, i32)> =
                partitions.iter().map(|s| tp(s)).collect::<Result<_, _>>()?;
            let refs: Vec<(&str, i32)> = parts.iter().map(|(t, p)| (t.as_str(), *p)).collect();
            let rs = admin.delete_group_offsets(&group, &refs).await.map_err(e)?;
            let value: Vec<Value> = rs
                .iter()
                .map(|r| json!({"topic": r.topic, "partition": r.partition, "error": r.result.as_ref().err().map(err)}))
                .collect();
            let rows = rs
                .iter()
                .map(|r| vec![r.topic.clone(), r.partition.to_string(), status(&r.result)])
                .collect();
            out.show(&json!(value), &["TOPIC", "PARTITION", "RESULT"], rows);
            all_ok(rs.into_iter().map(|r| r.result))
        }
    }
}

fn named_results(rs: Vec<kasio::Named<()>>, out: &Output, what: &str) -> Result<(), String> {
    let value: Vec<Value> = rs
        .iter()
        .map(|r| json!({"name": r.name, "error": r.result.as_ref().err().map(err)}))
        .collect();
    let rows = rs
        .iter()
        .map(|r| vec![r.name.clone(), status(&r.result)])
        .collect();
    out.show(&json!(value), &[what, "RESULT"], rows);
    all_ok(rs.into_iter().map(|r| r.result))
}

fn operation(s: &str) -> Result<AclOperation, String> {
    Ok(
        match s.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
            "any" => AclOperation::Any,
            "all" => AclOperation::All,
            "read" => AclOperation::Read,
            "write" => AclOperation::Write,
            "create" => AclOperation::Create,
            "delete" => AclOperation::Delete,
            "alter" => AclOperation::Alter,
            "describe" => AclOperation::Describe,
            "clusteraction" => AclOperation::ClusterAction,
            "describeconfigs" => AclOperation::DescribeConfigs,
            "alterconfigs" => AclOperation::AlterConfigs,
            "idempotentwrite" => AclOperation::IdempotentWrite,
            _ => return Err(format!("unknown operation {s:?}")),
        },
    )
}

impl AclArgs {
    fn resource(&self) -> (ResourceType, Option<String>) {
        match (&self.topic, &self.group, self.cluster) {
            (Some(t), _, _) => (ResourceType::Topic, Some(t.clone())),
            (_, Some(g), _) => (ResourceType::Group, Some(g.clone())),
            (_, _, true) => (ResourceType::Cluster, Some("kafka-cluster".into())),
            _ => (ResourceType::Any, None),
        }
    }

    fn filter(&self) -> Result<AclFilter, String> {
        let (resource_type, name) = self.resource();
        Ok(AclFilter {
            resource_type,
            name,
            pattern: if self.prefixed {
                PatternType::Prefixed
            } else {
                PatternType::Any
            },
            principal: self.principal.clone(),
            host: self.host.clone(),
            operation: self
                .operation
                .as_deref()
                .map_or(Ok(AclOperation::Any), operation)?,
            permission: match self.permission.as_deref() {
                None => AclPermission::Any,
                Some(p) => permission(p)?,
            },
        })
    }

    fn binding(&self) -> Result<AclBinding, String> {
        let (resource_type, name) = self.resource();
        let name = name.ok_or("name a --topic, --group or --cluster")?;
        Ok(AclBinding {
            resource_type,
            name,
            pattern: if self.prefixed {
                PatternType::Prefixed
            } else {
                PatternType::Literal
            },
            principal: self.principal.clone().ok_or("--principal is required")?,
            host: self.host.clone().unwrap_or_else(|| "*".into()),
            operation: operation(self.operation.as_deref().ok_or("--operation is required")?)?,
            permission: permission(self.permission.as_deref().unwrap_or("allow"))?,
        })
    }
}

fn permission(s: &str) -> Result<AclPermission, String> {
    match s.to_ascii_lowercase().as_str() {
        "allow" => Ok(AclPermission::Allow),
        "deny" => Ok(AclPermission::Deny),
        _ => Err(format!("expected allow or deny, got {s:?}")),
    }
}

fn acl_json(a: &AclBinding) -> Value {
    json!({"resource_type": format!("{:?}", a.resource_type), "name": a.name, "pattern": format!("{:?}", a.pattern),
           "principal": a.principal, "host": a.host, "operation": format!("{:?}", a.operation),
           "permission": format!("{:?}", a.permission)})
}

fn acl_row(a: &AclBinding) -> Vec<String> {
    vec![
        format!("{:?}:{}", a.resource_type, a.name),
        format!("{:?}", a.pattern),
        a.principal.clone(),
        a.host.clone(),
        format!("{:?}", a.operation),
        format!("{:?}", a.permission),
    ]
}

const ACL_HEADERS: [&str; 6] = [
    "RESOURCE",
    "PATTERN",
    "PRINCIPAL",
    "HOST",
    "OPERATION",
    "PERMISSION",
];

async fn acls(cmd: Acls, admin: &Admin, out: &Output) -> Result<(), String> {
    let e = |e: kasio::AdminError| e.to_string();
    match cmd {
        Acls::List(args) => {
            let acls = admin.describe_acls(&args.filter()?).await.map_err(e)?;
            let value: Vec<Value> = acls.iter().map(acl_json).collect();
            out.show(
                &json!(value),
                &ACL_HEADERS,
                acls.iter().map(acl_row).collect(),
            );
            Ok(())
        }
        Acls::Create(args) => {
            let b = args.binding()?;
            let rs = admin
                .create_acls(std::slice::from_ref(&b))
                .await
                .map_err(e)?;
            let value: Vec<Value> = rs
                .iter()
                .map(|r| json!({"acl": acl_json(&b), "error": r.as_ref().err().map(err)}))
                .collect();
            let rows = rs
                .iter()
                .map(|r| {
                    let mut row = acl_row(&b);
                    row.push(status(r));
                    row
                })
                .collect();
            let mut headers = ACL_HEADERS.to_vec();
            headers.push("RESULT");
            out.show(&json!(value), &headers, rows);
            all_ok(rs)
        }
        Acls::Delete(args) => {
            let rs = admin.delete_acls(&[args.filter()?]).await.map_err(e)?;
            let mut value = Vec::new();
            let mut rows = Vec::new();
            for r in &rs {
                match r {
                    Ok(deleted) => {
                        value.extend(deleted.iter().map(acl_json));
                        rows.extend(deleted.iter().map(acl_row));
                    }
                    Err(er) => return Err(er.to_string()),
                }
            }
            out.show(&json!(value), &ACL_HEADERS, rows);
            Ok(())
        }
    }
}

fn mechanism(s: &str) -> Result<ScramMechanism, String> {
    match s.to_ascii_uppercase().as_str() {
        "SCRAM-SHA-256" => Ok(ScramMechanism::Sha256),
        "SCRAM-SHA-512" => Ok(ScramMechanism::Sha512),
        _ => Err(format!(
            "expected SCRAM-SHA-256 or SCRAM-SHA-512, got {s:?}"
        )),
    }
}

fn mechanism_name(m: ScramMechanism) -> &'static str {
    match m {
        ScramMechanism::Sha256 => "SCRAM-SHA-256",
        ScramMechanism::Sha512 => "SCRAM-SHA-512",
        _ => "unknown",
    }
}

async fn scram(cmd: Scram, admin: &Admin, out: &Output) -> Result<(), String> {
    let e = |e: kasio::AdminError| e.to_string();
    match cmd {
        Scram::Describe { users } => {
            let names: Vec<&str> = users.iter().map(String::as_str).collect();
            let rs = admin.describe_scram_credentials(&names).await.map_err(e)?;
            let mut value = Vec::new();
            let mut rows = Vec::new();
            for u in &rs {
                match &u.result {
                    Ok(creds) => {
                        let c: Vec<Value> = creds
                            .iter()
                            .map(|c| json!({"mechanism": mechanism_name(c.mechanism), "iterations": c.iterations}))
                            .collect();
                        value.push(json!({"user": u.name, "credentials": c}));
                        for c in creds {
                            rows.push(vec![
                                u.name.clone(),
                                mechanism_name(c.mechanism).into(),
                                c.iterations.to_string(),
                            ]);
                        }
                    }
                    Err(er) => {
                        value.push(json!({"user": u.name, "error": err(er)}));
                        rows.push(vec![u.name.clone(), er.to_string(), String::new()]);
                    }
                }
            }
            out.show(&json!(value), &["USER", "MECHANISM", "ITERATIONS"], rows);
            all_ok(rs.into_iter().map(|u| u.result))
        }
        Scram::Set {
            user,
            mechanism: m,
            iterations,
            password,
        } => {
            let change = ScramChange::Upsert {
                user,
                mechanism: mechanism(&m)?,
                iterations,
                password: password.into_bytes(),
            };
            let rs = admin.alter_scram_credentials(&[change]).await.map_err(e)?;
            named_results(rs, out, "USER")
        }
        Scram::Delete { user, mechanism: m } => {
            let change = ScramChange::Delete {
                user,
                mechanism: mechanism(&m)?,
            };
            let rs = admin.alter_scram_credentials(&[change]).await.map_err(e)?;
            named_results(rs, out, "USER")
        }
    }
}

async fn quotas(cmd: Quotas, admin: &Admin, out: &Output) -> Result<(), String> {
    let e = |e: kasio::AdminError| e.to_string();
    match cmd {
        Quotas::Describe(entity) => {
            let filter: Vec<QuotaFilter> = entity
                .entity()
                .into_iter()
                .map(|(t, n)| QuotaFilter {
                    entity_type: t.into(),
                    matching: n.map_or(QuotaMatch::Default, |n| QuotaMatch::Exact(n.into())),
                })
                .collect();
            let qs = admin
                .describe_client_quotas(&filter, false)
                .await
                .map_err(e)?;
            let value: Vec<Value> = qs
                .iter()
                .map(|q| {
                    let entity: serde_json::Map<String, Value> = q
                        .entity
                        .iter()
                        .map(|(t, n)| (t.clone(), json!(n)))
                        .collect();
                    let values: serde_json::Map<String, Value> = q
                        .values
                        .iter()
                        .map(|(k, v)| (k.clone(), json!(v)))
                        .collect();
                    json!({"entity": entity, "values": values})
                })
                .collect();
            let mut rows = Vec::new();
            for q in &qs {
                let entity: Vec<String> = q
                    .entity
                    .iter()
                    .map(|(t, n)| format!("{t}={}", n.as_deref().unwrap_or("<default>")))
                    .collect();
                for (k, v) in &q.values {
                    rows.push(vec![entity.join(","), k.clone(), v.to_string()]);
                }
            }
            out.show(&json!(value), &["ENTITY", "QUOTA", "VALUE"], rows);
            Ok(())
        }
        Quotas::Alter {
            entity,
            set,
            remove,
        } => {
            let parts = entity.entity();
            if parts.is_empty() {
                return Err("name a --user or a --client-id".into());
            }
            let mut change = QuotaChange::new(&parts);
            for s in &set {
                let (k, v) = kv(s)?;
                let v: f64 = v
                    .parse()
                    .map_err(|_| format!("{k}: expected a number, got {v:?}"))?;
                change = change.set(&k, v);
            }
            for k in &remove {
                change = change.remove(k);
            }
            let rs = admin
                .alter_client_quotas(&[change], false)
                .await
                .map_err(e)?;
            let value: Vec<Value> = rs
                .iter()
                .map(|r| json!({"error": r.as_ref().err().map(err)}))
                .collect();
            let rows = rs.iter().map(|r| vec![status(r)]).collect();
            out.show(&json!(value), &["RESULT"], rows);
            all_ok(rs)
        }
    }
}
