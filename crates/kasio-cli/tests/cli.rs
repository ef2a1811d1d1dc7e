//! The `kasio` binary against the embedded kasio-mock cluster: JSON output parsed and
//! checked against the cluster's state, and one-line errors.
#![allow(clippy::unwrap_used)]

use kasio_mock::{ClusterConfig, MockCluster};
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
            "-c",
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
