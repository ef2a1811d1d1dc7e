//! How a mock cluster is set up.

/// The mock cluster's settings.
///
/// ```
/// use kasio_mock::ClusterConfig;
/// let config = ClusterConfig { brokers: 3, ..Default::default() };
/// assert_eq!(config.default_partitions, 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// How many brokers (ids 1..=brokers).
    pub brokers: i32,
    /// The cluster id Metadata reports.
    pub cluster_id: String,
    /// Whether Metadata creates topics that do not exist (`auto.create.topics.enable`).
    pub auto_create_topics: bool,
    /// Partitions of a topic created without a count (`num.partitions`).
    pub default_partitions: i32,
    /// Bytes a partition keeps before dropping its oldest batches.
    pub max_bytes_per_partition: usize,
    /// The largest request frame accepted (`socket.request.max.bytes`).
    pub max_frame: usize,
    /// Seeds everything the cluster makes up (topic ids), so runs repeat.
    pub seed: u64,
    /// SASL users (name, password). With any, every connection must authenticate
    /// (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512) before anything but ApiVersions, as on a
    /// SASL_PLAINTEXT listener.
    pub sasl_users: Vec<(String, String)>,
    /// How long a SASL session lasts (Kafka's `connections.max.reauth.ms`): the client is
    /// told in SaslAuthenticate and must re-authenticate on the connection before then
    /// (KIP-368); a request other than SASL after it ends closes the connection.
    pub sasl_session_lifetime: Option<std::time::Duration>,
    /// The finalized `transaction.version` feature: 2 serves KIP-890's second transaction
    /// protocol (Produce adds partitions, TxnOffsetCommit adds offsets, EndTxn v5+ bumps
    /// the epoch) to clients that speak it; below 2 only the first.
    pub transaction_version: i16,
    /// Each broker's rack (`broker.rack`), by index: broker `i + 1` is in `racks[i]`.
    /// With racks, every partition is replicated on every broker, followers serve Fetch,
    /// and a leader asked by a consumer of another rack names the replica on that rack
    /// (`preferred_read_replica`, KIP-392, as Kafka's `RackAwareReplicaSelector`).
    pub racks: Vec<String>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            brokers: 1,
            cluster_id: "kasio-mock".into(),
            auto_create_topics: true,
            default_partitions: 1,
            max_bytes_per_partition: 256 << 20,
            max_frame: 100 << 20,
            seed: 0,
            sasl_users: Vec::new(),
            sasl_session_lifetime: None,
            transaction_version: 1,
            racks: Vec::new(),
        }
    }
}
