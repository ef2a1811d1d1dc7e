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
        PriorityCmd::Stats { topics, group } => {
            let admin = clients::helper_admin(props)?;
            let names: Vec<String> = topics.iter().flat_map(|t| Priority::topics(t)).collect();
            let backlogs = delay::backlogs(&admin, &names, &group).await;
            admin.close().await;
            let backlogs = backlogs?;
            let mut rows = Vec::new();
            let mut value = Vec::new();
            for topic in &topics {
                for level in Priority::ALL {
                    let name = level.topic(topic);
                    let backlog: i64 = backlogs
                        .iter()
                        .filter(|((t, _), _)| *t == name)
                        .map(|(_, b)| b.pending)
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
