//! `kasio mock`: the in-memory kasio-mock cluster, standalone.

use clap::Args;
use kasio::mock::{ClusterConfig, MockCluster};
use std::net::{SocketAddr, ToSocketAddrs};

#[derive(Args, Debug)]
pub(crate) struct MockArgs {
    /// How many brokers (default: one per --listen address, else 1).
    #[arg(long)]
    brokers: Option<i32>,
    /// Where the brokers listen, broker 1 first (port 0 picks a free one); brokers without
    /// an address take an ephemeral port of 127.0.0.1.
    #[arg(long, value_name = "HOST:PORT[,...]", value_delimiter = ',')]
    listen: Vec<String>,
    /// A topic to create at start, NAME or NAME:PARTITIONS (repeatable).
    #[arg(long, value_name = "NAME[:PARTITIONS]")]
    topic: Vec<String>,
}

/// The global flags `kasio mock` has no use for: each is refused rather than ignored.
#[derive(Debug, Default)]
pub(crate) struct Unused {
    pub(crate) bootstrap: bool,
    pub(crate) properties: bool,
    pub(crate) command_config: bool,
}

pub(crate) async fn run(args: MockArgs, unused: Unused) -> Result<(), String> {
    if unused.bootstrap {
        return Err(
            "kasio mock serves brokers, it does not connect to any: give --listen HOST:PORT \
             instead of -b/--bootstrap (or unset KASIO_BOOTSTRAP)"
                .into(),
        );
    }
    if unused.properties || unused.command_config {
        return Err("kasio mock takes no client properties (-X, --command-config)".into());
    }
    let listen = resolve(&args.listen)?;
    let brokers = args
        .brokers
        .unwrap_or_else(|| i32::try_from(listen.len()).unwrap_or(i32::MAX).max(1));
    if !(1..=64).contains(&brokers) {
        return Err("--brokers must be between 1 and 64".into());
    }
    if listen.len() > usize::try_from(brokers).unwrap_or(0) {
        return Err(format!(
            "--listen names {} addresses for {brokers} broker(s)",
            listen.len()
        ));
    }
    let cluster = MockCluster::start_on(
        ClusterConfig {
            brokers,
            ..Default::default()
        },
        &listen,
    )
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
    eprintln!("kasio-mock: {brokers} broker(s) running; Ctrl-C stops them");
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| format!("waiting for Ctrl-C: {e}"))?;
    cluster.stop();
    Ok(())
}

/// The `--listen` addresses, each resolved to its first socket address.
fn resolve(listen: &[String]) -> Result<Vec<SocketAddr>, String> {
    listen
        .iter()
        .map(|a| {
            a.to_socket_addrs()
                .map_err(|e| format!("--listen {a:?}: {e}"))?
                .next()
                .ok_or_else(|| format!("--listen {a:?}: no address"))
        })
        .collect()
}
