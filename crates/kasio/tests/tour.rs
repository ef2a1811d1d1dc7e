//! The tour examples, a first user's program on each runtime, and `hand_loop`, the core
//! driven by a loop of its own, run as a user would run them:
//! on the embedded kasio-mock cluster here, and against the real broker in the lab
//! (`tests/lab/test_tour.py`).
#![allow(clippy::unwrap_used, missing_docs)]

use std::{path::PathBuf, process::Command};

/// Where cargo put the examples it built for this test run.
fn example(name: &str) -> PathBuf {
    let mut dir = std::env::current_exe().unwrap();
    dir.pop();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join("examples").join(name)
}

/// Runs an example on the embedded cluster and checks it said `done`.
fn run(name: &str, args: &[&str], done: &str) {
    let path = example(name);
    assert!(path.exists(), "{} was not built", path.display());
    let out = Command::new(&path)
        .args(args)
        .env_remove("KASIO_BOOTSTRAP")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{name}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(done), "{name}: {stdout}");
}

fn tour(name: &str) {
    run(
        name,
        &["20000"],
        "20000 records produced and read exactly once, all committed",
    );
}

#[test]
fn tour_on_tokio() {
    tour("tour");
}

#[test]
fn tour_on_smol() {
    tour("tour_smol");
}

#[test]
fn tour_on_threads() {
    tour("tour_blocking");
}

#[test]
fn hand_loop_drives_the_core_without_a_runtime() {
    run(
        "hand_loop",
        &["hand-loop", "3", "100000"],
        "100000 records produced and read back, each once",
    );
}
