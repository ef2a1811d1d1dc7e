//! Runs a mock cluster until killed: `kasio-mock [BROKERS]`. Prints `bootstrap.servers`.

use kasio_mock::{ClusterConfig, MockCluster};
use std::io::Write;

fn main() -> std::io::Result<()> {
    let brokers = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let cluster = MockCluster::start(ClusterConfig {
        brokers,
        ..Default::default()
    })?;
    println!("{}", cluster.bootstrap());
    std::io::stdout().flush()?;
    loop {
        std::thread::park();
    }
}
