//! `kasio priority`: the level topics of priority delivery and their backlog.

use crate::{clients, delay, output::Output};
use clap::Subcommand;
use kasio::Priority;
use serde_json::json;

/// Priority delivery.
#[derive(Subcommand, Debug)]
pub(crate) enum PriorityCmd {
    /// Creates TOPIC's level topics (`<topic>.p.critical`, `.high`, `.normal`, `.low`),
    /// with TOPIC's partition count unless told otherwise.
    Create(delay::CreateArgs),
    /// Records waiting at each level of TOPICs for a group of priority consumers.
    Stats {
        /// The topics.
        #[arg(required = true)]
        topics: Vec<String>,
        /// The consumers' group.
        #[arg(short = 'g', long)]
        group: String,
        /// GROUP is a share group (priority share consumers): the backlog is the share
        /// group's lag, for the partitions it has started reading.
        #[arg(long)]
        share: bool,
    },
}

pub(crate) async fn run(
    cmd: PriorityCmd,
    props: &[(String, String)],
    out: &Output,
) -> Result<(), String> {
    match cmd {
        PriorityCmd::Create(args) => {
            delay::create(&Priority::topics(&args.topic), &args, props, out).await
        }
        PriorityCmd::Stats {
            topics,
            group,
            share,
        } => {
            let admin = clients::helper_admin(props)?;
            let names: Vec<String> = topics.iter().flat_map(|t| Priority::topics(t)).collect();
            let backlogs = if share {
                share_backlogs(&admin, &group).await
            } else {
                delay::backlogs(&admin, &names, &group)
                    .await
                    .map(|b| b.into_iter().map(|(tp, b)| (tp, b.pending)).collect())
            };
            admin.close().await;
            let backlogs: Vec<((String, i32), i64)> = backlogs?;
            let mut rows = Vec::new();
            let mut value = Vec::new();
            for topic in &topics {
                for level in Priority::ALL {
                    let name = level.topic(topic);
                    let backlog: i64 = backlogs
                        .iter()
                        .filter(|((t, _), _)| *t == name)
                        .map(|(_, b)| *b)
                        .sum();
                    value.push(json!({"topic": topic, "level": level.name(), "level_topic": name, "backlog": backlog}));
                    rows.push(vec![
                        topic.clone(),
                        level.name().into(),
                        backlog.to_string(),
                    ]);
                }
            }
            out.show(&json!(value), &["TOPIC", "LEVEL", "BACKLOG"], rows);
            Ok(())
        }
    }
}

/// A share group's lag per partition: what it has not yet delivered and settled, from
/// its start offset (partitions it has not started reading have none).
async fn share_backlogs(
    admin: &kasio::tokio::Admin,
    group: &str,
) -> Result<Vec<((String, i32), i64)>, String> {
    let lags = admin
        .share_group_offsets(group)
        .await
        .map_err(|e| e.to_string())?;
    Ok(lags
        .into_iter()
        .map(|l| ((l.topic, l.partition), l.lag))
        .collect())
}
