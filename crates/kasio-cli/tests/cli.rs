//! The `kasio` binary against the embedded kasio-mock cluster: JSON output parsed and
//! checked against the cluster's state, and one-line errors.
#![allow(clippy::unwrap_used)]

use kasio::mock::{ClusterConfig, MockCluster};
use serde_json::Value;
use std::process::{Command, Output};

fn kasio(bootstrap: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kasio"))
        .args(["-b", bootstrap, "--json"])
        .args(args)
        .output()
        .unwrap()
}

fn json(bootstrap: &str, args: &[&str]) -> Value {
    let out = kasio(bootstrap, args);
    assert!(
        out.status.success(),
        "kasio {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn topics_groups_and_configs_through_the_binary() {
    let cluster = MockCluster::start(ClusterConfig {
        brokers: 3,
        ..Default::default()
    })
    .unwrap();
    let b = cluster.bootstrap();
    let c = json(&b, &["cluster"]);
    assert_eq!(c["brokers"].as_array().unwrap().len(), 3);

    let created = json(
        &b,
        &[
            "topics",
            "create",
            "orders",
            "-p",
            "4",
            "--config",
            "retention.ms=1000",
        ],
    );
    assert_eq!(created[0]["name"], "orders");
    assert_eq!(cluster.with(|c| c.end_offset("orders", 3)), Some(Some(0)));
    let described = json(&b, &["topics", "describe", "orders"]);
    let parts = described[0]["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 4);
    for p in parts {
        let i = i32::try_from(p["partition"].as_i64().unwrap()).unwrap();
        let leader = cluster.with(move |c| c.leader("orders", i)).flatten();
        assert_eq!(
            p["leader"].as_i64().map(|l| i32::try_from(l).unwrap()),
            leader
        );
    }
    let configs = json(&b, &["configs", "describe", "--topic", "orders"]);
    assert_eq!(configs[0]["name"], "retention.ms");
    assert_eq!(configs[0]["value"], "1000");
    json(
        &b,
        &[
            "configs",
            "alter",
            "--topic",
            "orders",
            "--set",
            "retention.ms=5",
        ],
    );
    let configs = json(&b, &["configs", "describe", "--topic", "orders"]);
    assert_eq!(configs[0]["value"], "5");

    json(
        &b,
        &[
            "groups",
            "reset",
            "g",
            "--to",
            "offset:0",
            "--partition",
            "orders:2",
        ],
    );
    let groups = json(&b, &["groups", "list"]);
    assert_eq!(groups[0]["group"], "g");
    let lag = json(&b, &["groups", "lag", "g"]);
    assert_eq!(lag[0]["partition"], 2);
    assert_eq!(lag[0]["lag"], 0);
    json(&b, &["groups", "delete", "g"]);
    assert_eq!(json(&b, &["groups", "list"]), Value::Array(Vec::new()));

    json(&b, &["topics", "delete", "orders"]);
    assert_eq!(json(&b, &["topics", "list"]), Value::Array(Vec::new()));
    let missing = kasio(&b, &["topics", "describe", "orders"]);
    assert!(!missing.status.success());
    let text = String::from_utf8_lossy(&missing.stdout);
    assert!(text.contains("UNKNOWN_TOPIC_OR_PARTITION"), "{text}");
}

#[test]
fn errors_are_one_line_without_a_backtrace() {
    let bad_key = kasio("127.0.0.1:1", &["-X", "linger.msx=5", "cluster"]);
    assert_eq!(bad_key.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&bad_key.stderr),
        "kasio: unknown configuration key `linger.msx`\n"
    );
    let unreachable = kasio(
        "127.0.0.1:1",
        &["-X", "default.api.timeout.ms=500", "topics", "list"],
    );
    assert_eq!(unreachable.status.code(), Some(1));
    let err = String::from_utf8_lossy(&unreachable.stderr);
    assert!(
        err.starts_with("kasio: no broker could be reached (127.0.0.1:1: ")
            && err.lines().count() == 1,
        "{err}"
    );
    // A properties file: comments and blank lines skipped, -X wins over it.
    let dir = std::env::temp_dir().join(format!("kasio-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("client.properties");
    std::fs::write(
        &file,
        "# a comment\n\nbootstrap.servers=127.0.0.1:1\ndefault.api.timeout.ms=300\n",
    )
    .unwrap();
    let from_file = Command::new(env!("CARGO_BIN_EXE_kasio"))
        .args(["--command-config", file.to_str().unwrap(), "cluster"])
        .env_remove("KASIO_BOOTSTRAP")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&from_file.stderr);
    assert!(
        err.starts_with("kasio: no broker could be reached (127.0.0.1:1"),
        "{err}"
    );
    std::fs::write(&file, "not a property\n").unwrap();
    let bad = Command::new(env!("CARGO_BIN_EXE_kasio"))
        .args(["--command-config", file.to_str().unwrap(), "cluster"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains(":1: expected key=value"), "{err}");
    let bad_protocol = kasio("127.0.0.1:1", &["-X", "security.protocol=TLS", "cluster"]);
    assert_eq!(
        String::from_utf8_lossy(&bad_protocol.stderr),
        "kasio: invalid value `TLS` for `security.protocol`: expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL\n"
    );
    let no_bootstrap = Command::new(env!("CARGO_BIN_EXE_kasio"))
        .args(["cluster"])
        .env_remove("KASIO_BOOTSTRAP")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&no_bootstrap.stderr),
        "kasio: no brokers: pass --bootstrap HOST:PORT or set KASIO_BOOTSTRAP\n"
    );
}

fn kasio_stdin(bootstrap: &str, args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_kasio"))
        .args(["-b", bootstrap])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn what_is_produced_from_stdin_is_consumed_back_exactly() {
    let cluster = MockCluster::start(ClusterConfig {
        brokers: 3,
        ..Default::default()
    })
    .unwrap();
    cluster.with(|c| c.create_topic("lines", 4).map(|_| ()));
    let b = cluster.bootstrap();
    let input: String = (0..5000)
        .map(|i| format!("key{}:value {i}\n", i % 13))
        .collect();
    let out = kasio_stdin(
        &b,
        &["produce", "lines", "-K", ":", "-H", "origin=cli"],
        &input,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = kasio(&b, &["consume", "lines", "-o", "beginning", "-e"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 5000);
    let mut values: Vec<u64> = rows
        .iter()
        .map(|r| {
            r["value"].as_str().unwrap()["value ".len()..]
                .parse()
                .unwrap()
        })
        .collect();
    values.sort_unstable();
    assert_eq!(values, (0..5000).collect::<Vec<_>>());
    for r in &rows {
        let i: u64 = r["value"].as_str().unwrap()["value ".len()..]
            .parse()
            .unwrap();
        assert_eq!(r["key"], format!("key{}", i % 13));
        assert_eq!(r["headers"]["origin"], "cli");
    }
    // Per partition, in the order written.
    for p in 0..4 {
        let mine: Vec<u64> = rows
            .iter()
            .filter(|r| r["partition"] == p)
            .map(|r| {
                r["value"].as_str().unwrap()["value ".len()..]
                    .parse()
                    .unwrap()
            })
            .collect();
        assert!(
            mine.windows(2).all(|w| w[0] < w[1]),
            "partition {p} out of order"
        );
    }

    // A format, a count, one partition.
    let out = Command::new(env!("CARGO_BIN_EXE_kasio"))
        .args([
            "-b",
            &b,
            "consume",
            "lines",
            "-o",
            "beginning",
            "-p",
            "2",
            "-c",
            "3",
        ])
        .args(["-f", "%p:%o %k=%s\\n"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0].starts_with("2:0 key"), "{text}");

    // In a group: a second run resumes where the first stopped.
    let first = kasio(
        &b,
        &[
            "consume",
            "lines",
            "-g",
            "g",
            "-o",
            "beginning",
            "-c",
            "1000",
        ],
    );
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let rest = kasio(
        &b,
        &["consume", "lines", "-g", "g", "-o", "beginning", "-e"],
    );
    assert!(
        rest.status.success(),
        "{}",
        String::from_utf8_lossy(&rest.stderr)
    );
    let count = |o: &Output| String::from_utf8_lossy(&o.stdout).lines().count();
    assert_eq!(count(&first) + count(&rest), 5000);
}

#[test]
fn the_quickstart_and_perf_run_on_the_embedded_cluster() {
    let out = Command::new(env!("CARGO_BIN_EXE_kasio"))
        .args(["--json", "quickstart", "--records", "50000"])
        .env_remove("KASIO_BOOTSTRAP")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verified"], true);
    assert_eq!(v["records"], 50000);

    let cluster = MockCluster::start(ClusterConfig::default()).unwrap();
    cluster.with(|c| c.create_topic("perf", 3).map(|_| ()));
    let b = cluster.bootstrap();
    let p = json(
        &b,
        &[
            "perf",
            "produce",
            "perf",
            "--records",
            "20000",
            "--record-size",
            "64",
        ],
    );
    assert_eq!(p["records"], 20000);
    assert!(p["latency_ms"]["p99"].as_f64().unwrap() > 0.0);
    let c = json(&b, &["perf", "consume", "perf", "--records", "20000"]);
    assert_eq!(c["records"], 20000);
    assert_eq!(c["bytes"], 20000 * 64);
}

#[test]
fn kasio_mock_serves_until_stopped() {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_kasio"))
        .args(["mock", "--brokers", "2", "--topic", "t:3"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let b = line.trim().to_string();
    let described = json(&b, &["topics", "describe", "t"]);
    assert_eq!(described[0]["partitions"].as_array().unwrap().len(), 3);
    assert_eq!(
        json(&b, &["cluster"])["brokers"].as_array().unwrap().len(),
        2
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn kasio_mock_listens_where_told_and_refuses_what_it_would_ignore() {
    use std::io::BufRead;
    // A free port: bound, read and released (another process could take it in between,
    // which is why the mock would then fail rather than move).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kasio"))
        .args(["mock", "--listen", &listen])
        .env_remove("KASIO_BOOTSTRAP")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), listen);
    let brokers = json(&listen, &["cluster"])["brokers"].clone();
    assert_eq!(brokers.as_array().unwrap().len(), 1);
    assert_eq!(brokers[0]["port"].as_i64(), Some(i64::from(port)));
    child.kill().unwrap();
    child.wait().unwrap();

    for (args, says) in [
        (&["mock", "-b", "127.0.0.1:39092"][..], "--listen"),
        (&["mock", "-X", "acks=1"][..], "takes no client properties"),
        (
            &[
                "mock",
                "--brokers",
                "1",
                "--listen",
                "127.0.0.1:0,127.0.0.1:0",
            ][..],
            "2 addresses for 1 broker",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_kasio"))
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
