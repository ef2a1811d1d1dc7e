//! `kasio`: Kafka from the command line, on kasio's own client.
//!
//! Every failure prints one line, `kasio: <what went wrong>`, and exits non-zero.

mod admin;
mod clients;
mod consume;
mod delay;
mod dlt;
mod formats;
mod latency;
mod mock;
mod output;
mod perf;
mod priority;
mod produce;
mod progress;
mod props;
mod proto;
mod quickstart;
mod share;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::{path::PathBuf, process::ExitCode};

#[derive(Parser, Debug)]
#[command(name = "kasio", version, about = "Kafka from the command line", long_about = None)]
struct Cli {
    /// Brokers to bootstrap from (host:port,...).
    #[arg(short = 'b', long, global = true, env = "KASIO_BOOTSTRAP")]
    bootstrap: Option<String>,
    /// A client property, by its Java client name (repeatable).
    #[arg(short = 'X', global = true, value_name = "KEY=VALUE")]
    property: Vec<String>,
    /// A client properties file (key=value lines; -X wins over it), as Kafka's tools
    /// take it.
    #[arg(long, global = true, value_name = "FILE")]
    command_config: Option<PathBuf>,
    /// Print JSON for scripts instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Produces records, consumes them back in a group and checks every one, on the
    /// embedded kasio-mock cluster unless brokers are given.
    Quickstart(quickstart::QuickstartArgs),
    /// Produces records from standard input, one per line.
    Produce(produce::ProduceArgs),
    /// Consumes records to standard output.
    Consume(consume::ConsumeArgs),
    /// Throughput and latency of the producer or consumer.
    #[command(subcommand)]
    Perf(perf::Perf),
    /// Runs the in-memory kasio-mock cluster until Ctrl-C.
    Mock(mock::MockArgs),
    /// The cluster: id, controller, brokers.
    Cluster,
    /// The API versions a broker supports.
    ApiVersions {
        /// The broker id.
        broker: i32,
    },
    /// Topics: list, describe, create, delete, grow, trim, offsets.
    #[command(subcommand)]
    Topics(admin::Topics),
    /// Topic, broker and group configs.
    #[command(subcommand)]
    Configs(admin::Configs),
    /// Consumer and share groups: list, describe, lag, delete, offsets.
    #[command(subcommand)]
    Groups(admin::Groups),
    /// Share groups (KIP-932): consume as a queue.
    #[command(subcommand)]
    Share(share::Share),
    /// Delayed delivery: tier topics, the relay, what waits.
    #[command(subcommand)]
    Delay(delay::Delay),
    /// Priority delivery: level topics and their backlog.
    #[command(subcommand)]
    Priority(priority::PriorityCmd),
    /// Dead-letter topics: replay what a processing runner dead-lettered.
    #[command(subcommand)]
    Dlt(dlt::Dlt),
    /// Access control lists.
    #[command(subcommand)]
    Acls(admin::Acls),
    /// SCRAM credentials.
    #[command(subcommand)]
    Scram(admin::Scram),
    /// Client quotas.
    #[command(subcommand)]
    Quotas(admin::Quotas),
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    // `kasio mock` refuses -b, but not KASIO_BOOTSTRAP left in the environment.
    let bootstrap_flag =
        matches.value_source("bootstrap") == Some(clap::parser::ValueSource::CommandLine);
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(&format!("cannot start the runtime: {e}")),
    };
    match runtime.block_on(run(cli, bootstrap_flag)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("kasio: {message}");
    ExitCode::FAILURE
}

async fn run(cli: Cli, bootstrap_flag: bool) -> Result<(), String> {
    let command = match cli.command {
        Command::Mock(a) => {
            let unused = mock::Unused {
                bootstrap: bootstrap_flag,
                properties: !cli.property.is_empty(),
                command_config: cli.command_config.is_some(),
            };
            return mock::run(a, unused).await;
        }
        other => other,
    };
    let props = props::collect(
        cli.bootstrap.as_deref(),
        cli.command_config.as_deref(),
        &cli.property,
    )?;
    let out = output::Output::new(cli.json);
    match command {
        Command::Quickstart(a) => quickstart::run(a, &props, &out).await,
        Command::Produce(a) => produce::run(a, &props, &out).await,
        Command::Consume(a) => consume::run(a, &props, &out).await,
        Command::Share(s) => share::run(s, &props, &out).await,
        Command::Delay(d) => delay::run(d, &props, &out).await,
        Command::Priority(p) => priority::run(p, &props, &out).await,
        Command::Dlt(d) => dlt::run(d, &props, &out).await,
        Command::Perf(p) => perf::run(p, &props, &out).await,
        admin => admin::run(admin, &props, &out).await,
    }
}
