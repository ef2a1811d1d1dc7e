//! kasio-mock: an in-memory Kafka cluster speaking the real protocol.
//!
//! At heart a sans-IO state machine, [`Cluster`]: request frames and `now` in, response
//! frames and deadlines out. The same model serves hermetic tests over real sockets
//! ([`MockCluster`], a thin TCP shell), deterministic simulation of kasio's client in
//! virtual time (drive [`Cluster`] directly), and the embedded broker of the quick start.
//!
//! Served so far: ApiVersions, Metadata (with auto-creation), DescribeCluster, CreateTopics,
//! DeleteTopics, CreatePartitions, Produce (acks 0,
//! 1 and all; idempotent sequences and epochs checked as Kafka checks them), InitProducerId
//! (idempotent producers), Fetch (with `min_bytes`/`max_wait_ms` waits; no fetch sessions)
//! and ListOffsets (earliest, latest, max timestamp, by timestamp). Partition leaders are
//! spread over the brokers, and a request to the wrong broker gets `NOT_LEADER_OR_FOLLOWER`.
//! Like Kafka, a connection handles one request at a time, so responses stay in order.
//! Malformed requests close the connection. [`Fault`]s fail, delay or lose responses, drop
//! or refuse connections; [`Cluster::move_leader`] moves a partition's leader. Share groups
//! (KIP-932): ShareGroupHeartbeat, ShareFetch and ShareAcknowledge with share sessions,
//! acquisition locks in virtual time, delivery counts and archiving
//! ([`Cluster::share_outcomes`] tells what became of each record).
#![forbid(unsafe_code)]

mod cluster;
mod config;
mod faults;
mod handlers;
mod log;
mod server;

pub use cluster::{Cluster, ConnId, CreateTopicError, MoveLeaderError, Transmit};
pub use config::ClusterConfig;
pub use faults::Fault;
pub use handlers::share_partition::ShareOutcome;
pub use server::MockCluster;
