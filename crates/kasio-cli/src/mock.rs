//! `kasio mock`: the in-memory kasio-mock cluster, standalone.

use clap::Args;
use kasio_mock::{ClusterConfig, MockCluster};

#[derive(Args, Debug)]
pub(crate) struct MockArgs {
    /// How many brokers.
    #[arg(long, default_value_t = 1)]
    brokers: i32,
    /// A topic to create at start, NAME or NAME:PARTITIONS (repeatable).
    #[arg(long, value_name = "NAME[:PARTITIONS]")]
    topic: Vec<String>,
}

pub(crate) async fn run(args: MockArgs) -> Result<(), String> {
    if !(1..=64).contains(&args.brokers) {
        return Err("--brokers must be between 1 and 64".into());
    }
    let cluster = MockCluster::start(ClusterConfig {
        brokers: args.brokers,
        ..Default::default()
    })
    .map_err(|e| format!("cannot start the mock cluster: {e}"))?;
    for t in &args.topic {
        let (name, partitions) = match t.split_once(':') {
            Some((n, p)) => (
                n.to_string(),
                p.parse()
                    .map_err(|_| format!("bad partition count in {t:?}"))?,
            ),
            None => (t.clone(), 1),
        };
        let created = cluster.with(move |c| c.create_topic(&name, partitions).map(|_| ()));
        if !matches!(created, Some(Ok(()))) {
            return Err(format!("cannot create topic {t:?}"));
        }
    }
    // The first line is for scripts: the bootstrap servers.
    println!("{}", cluster.bootstrap());
    eprintln!(
        "kasio-mock: {} broker(s) running; Ctrl-C stops them",
        args.brokers
    );
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| format!("waiting for Ctrl-C: {e}"))?;
    cluster.stop();
    Ok(())
}
