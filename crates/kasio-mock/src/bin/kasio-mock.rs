//! Runs a mock cluster until its standard input closes: `kasio-mock [BROKERS]
//! [USER:PASSWORD...]` (with users, every connection must authenticate with SASL PLAIN or
//! SCRAM).
//!
//! Prints `bootstrap.servers` on the first line, then takes one command per line and answers
//! `ok` or `error: ...`, so tests in any language can inject faults:
//!
//! ```text
//! fail API COUNT ERROR_NAME     e.g. fail Produce 3 NOT_LEADER_OR_FOLLOWER
//! delay API COUNT MILLIS
//! blackhole API COUNT
//! drop BROKER                   close every connection to BROKER
//! refuse BROKER | accept BROKER
//! stop BROKER | start BROKER    crash a broker (its data kept) and bring it back
//! halfclose BROKER              connections stay open, the broker reads no more
//! throttle API COUNT MILLIS     Produce or Fetch answers say throttle_time_ms, held that long
//! move TOPIC PARTITION BROKER   make BROKER the partition's leader
//! ```

use kasio_mock::{ClusterConfig, Fault, MockCluster};
use kasio_proto::{ApiKey, ErrorCode};
use std::{
    io::{BufRead, Write},
    time::Duration,
};

fn api(name: &str) -> Result<ApiKey, String> {
    ApiKey::ALL
        .iter()
        .copied()
        .find(|k| k.name().eq_ignore_ascii_case(name))
        .ok_or(format!("unknown API {name}"))
}

fn error(name: &str) -> Result<ErrorCode, String> {
    (-1..=200)
        .map(ErrorCode::from_code)
        .find(|e| e.name().eq_ignore_ascii_case(name))
        .ok_or(format!("unknown error {name}"))
}

fn num<T: std::str::FromStr>(s: Option<&str>, what: &str) -> Result<T, String> {
    s.and_then(|s| s.parse().ok())
        .ok_or(format!("expected {what}"))
}

fn command(cluster: &MockCluster, line: &str) -> Result<(), String> {
    let mut w = line.split_whitespace();
    let fault = match w.next() {
        Some("fail") => {
            let api = api(w.next().unwrap_or(""))?;
            let count = num(w.next(), "a count")?;
            Fault::FailNext {
                api,
                count,
                error: error(w.next().unwrap_or(""))?,
            }
        }
        Some("delay") => {
            let api = api(w.next().unwrap_or(""))?;
            let count = num(w.next(), "a count")?;
            Fault::Delay {
                api,
                count,
                by: Duration::from_millis(num(w.next(), "milliseconds")?),
            }
        }
        Some("blackhole") => Fault::Blackhole {
            api: api(w.next().unwrap_or(""))?,
            count: num(w.next(), "a count")?,
        },
        Some("drop") => Fault::DropConnections {
            broker: num(w.next(), "a broker id")?,
        },
        Some("refuse") => Fault::RefuseConnections {
            broker: num(w.next(), "a broker id")?,
            refuse: true,
        },
        Some("accept") => Fault::RefuseConnections {
            broker: num(w.next(), "a broker id")?,
            refuse: false,
        },
        Some("throttle") => {
            let api = api(w.next().unwrap_or(""))?;
            let count = num(w.next(), "a count")?;
            Fault::Throttle {
                api,
                count,
                by: Duration::from_millis(num(w.next(), "milliseconds")?),
            }
        }
        Some("stop") => Fault::StopBroker {
            broker: num(w.next(), "a broker id")?,
        },
        Some("start") => Fault::StartBroker {
            broker: num(w.next(), "a broker id")?,
        },
        Some("halfclose") => Fault::HalfClose {
            broker: num(w.next(), "a broker id")?,
        },
        Some("move") => {
            let topic = w.next().ok_or("expected a topic")?.to_string();
            let partition = num(w.next(), "a partition")?;
            let broker = num(w.next(), "a broker id")?;
            return cluster
                .with(move |c| c.move_leader(&topic, partition, broker))
                .ok_or("the cluster stopped")?
                .map_err(|e| format!("{e:?}"));
        }
        _ => return Err(format!("unknown command: {line}")),
    };
    cluster
        .with(move |c| c.inject(fault))
        .ok_or_else(|| "the cluster stopped".to_string())
}

fn main() -> std::io::Result<()> {
    let brokers = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    // Further arguments USER:PASSWORD make it a SASL listener with those users.
    let sasl_users = std::env::args()
        .skip(2)
        .filter_map(|a| {
            a.split_once(':')
                .map(|(u, p)| (u.to_string(), p.to_string()))
        })
        .collect();
    let cluster = MockCluster::start(ClusterConfig {
        brokers,
        sasl_users,
        ..Default::default()
    })?;
    let mut out = std::io::stdout();
    writeln!(out, "{}", cluster.bootstrap())?;
    out.flush()?;
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        match command(&cluster, &line) {
            Ok(()) => writeln!(out, "ok")?,
            Err(e) => writeln!(out, "error: {e}")?,
        }
        out.flush()?;
    }
    cluster.stop();
    Ok(())
}
