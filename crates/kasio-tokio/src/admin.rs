//! The admin handle: each method starts an operation in the core and awaits its result.

use crate::{
    driver::{Core, Shared},
    producer::seed,
};
use kasio_core::{
    AclBinding, AclFilter, AdminConfig, AdminError, AdminOutput, ApiError, ApiSupport, CloseReason,
    ClusterDescription, CommittedOffset, ConfigChange, ConfigError, ConfigResource, ConnId,
    ConnectAction, GroupDescription, GroupListing, IsolationLevel, ListedOffset, Named, NewTopic,
    OffsetSpec, OpId, PartitionLag, PartitionResult, QuotaChange, QuotaEntry, QuotaFilter,
    ResourceConfigs, ResourceResult, ScramChange, ScramCredential, TopicDescription, TopicListing,
    TopicRef, TopicResult, Transmit,
};
use std::{collections::HashMap, sync::Arc, time::Instant};
use tokio::sync::oneshot;

type Reply = oneshot::Sender<Result<AdminOutput, AdminError>>;

pub(crate) struct AdminCore {
    core: kasio_core::Admin,
    waiters: HashMap<OpId, Reply>,
    closing: bool,
}

impl Core for AdminCore {
    type Deferred = Vec<(Reply, Result<AdminOutput, AdminError>)>;

    fn connected(&mut self, conn: ConnId, now: Instant) {
        self.core.handle_connected(conn, now);
    }
    fn input(&mut self, conn: ConnId, data: &[u8], now: Instant) {
        self.core.handle_input(conn, data, now);
    }
    fn closed(&mut self, conn: ConnId, reason: CloseReason, now: Instant) {
        self.core.handle_closed(conn, reason, now);
    }
    fn timeout(&mut self, now: Instant) {
        self.core.handle_timeout(now);
    }
    fn next_connect(&mut self) -> Option<ConnectAction> {
        self.core.poll_connect()
    }
    fn next_transmit(&mut self) -> Option<Transmit> {
        self.core.poll_transmit()
    }
    fn deadline(&mut self) -> Option<Instant> {
        self.core.poll_timeout().map(|t| t.at)
    }
    fn take_events(&mut self, done: &mut Self::Deferred) -> bool {
        while let Some(ev) = self.core.poll_event() {
            if let Some(reply) = self.waiters.remove(&ev.id) {
                done.push((reply, ev.result));
            }
        }
        self.closing
    }
    fn complete(done: &mut Self::Deferred, _shared: &Shared<Self>) {
        for (reply, result) in done.drain(..) {
            let _ = reply.send(result);
        }
    }
}

/// Unwraps the output variant an operation returns.
macro_rules! output {
    ($result:expr, $variant:ident) => {
        match $result? {
            AdminOutput::$variant(v) => Ok(v),
            other => Err(AdminError::Malformed(format!(
                "unexpected output {other:?}"
            ))),
        }
    };
}

/// A Kafka admin client on tokio: topics, configs, groups, offsets, ACLs, SCRAM
/// credentials and quotas. Clones share one core; calls run concurrently.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use kasio_tokio::{Admin, NewTopic};
/// let admin = Admin::from_properties([("bootstrap.servers", "localhost:9092")])?;
/// for r in admin.create_topics(&[NewTopic::new("orders", 6, 1)], false).await? {
///     println!("{}: {:?}", r.name, r.error);
/// }
/// let cluster = admin.describe_cluster().await?;
/// println!("{} brokers", cluster.brokers.len());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Admin {
    shared: Arc<Shared<AdminCore>>,
}

impl Admin {
    /// Starts an admin client; its driver runs on the current tokio runtime.
    ///
    /// # Errors
    /// [`ConfigError`] if the settings conflict.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn new(config: AdminConfig) -> Result<Self, ConfigError> {
        let core = kasio_core::Admin::new(config, Instant::now(), seed())?;
        Ok(Self {
            shared: Shared::start(AdminCore {
                core,
                waiters: HashMap::new(),
                closing: false,
            }),
        })
    }

    /// Starts an admin client from Java-client property names.
    ///
    /// # Errors
    /// [`ConfigError`] naming an unknown key or bad value.
    pub fn from_properties<'a>(
        props: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ConfigError> {
        let mut config = AdminConfig::default();
        for (k, v) in props {
            config.set(k, v)?;
        }
        Self::new(config)
    }

    async fn run(
        &self,
        start: impl FnOnce(&mut kasio_core::Admin, Instant) -> OpId,
    ) -> Result<AdminOutput, AdminError> {
        let (tx, rx) = oneshot::channel();
        {
            let mut inner = self.shared.lock();
            if inner.closing {
                return Err(AdminError::Closed);
            }
            let id = start(&mut inner.core, Instant::now());
            inner.waiters.insert(id, tx);
        }
        self.shared.wake.notify_one();
        rx.await.unwrap_or(Err(AdminError::Closed))
    }

    /// The cluster's id, controller and brokers.
    ///
    /// # Errors
    /// [`AdminError`] if the operation failed as a whole.
    pub async fn describe_cluster(&self) -> Result<ClusterDescription, AdminError> {
        output!(self.run(|c, now| c.describe_cluster(now)).await, Cluster)
    }

    /// The API versions a broker supports.
    ///
    /// # Errors
    /// [`AdminError`] if the operation failed as a whole.
    pub async fn api_versions(&self, broker: i32) -> Result<Vec<ApiSupport>, AdminError> {
        output!(
            self.run(|c, now| c.api_versions(broker, now)).await,
            ApiVersions
        )
    }

    /// The topics, with Kafka's internal ones when `include_internal`.
    ///
    /// # Errors
    /// [`AdminError`] if the operation failed as a whole.
    pub async fn list_topics(
        &self,
        include_internal: bool,
    ) -> Result<Vec<TopicListing>, AdminError> {
        output!(
            self.run(|c, now| c.list_topics(include_internal, now))
                .await,
            TopicListings
        )
    }

    /// Describes topics: partitions, leaders, replicas, in-sync replicas.
    ///
    /// # Errors
    /// [`AdminError`] if the operation failed as a whole.
    pub async fn describe_topics(
        &self,
        topics: &[&str],
    ) -> Result<Vec<Named<TopicDescription>>, AdminError> {
        output!(
            self.run(|c, now| c.describe_topics(topics, now)).await,
            TopicDescriptions
        )
    }

    /// Creates topics; one result per topic.
    ///
    /// # Errors
    /// [`AdminError`] if the operation failed as a whole.
    pub async fn create_topics(
        &self,
        topics: &[NewTopic],
        validate_only: bool,
    ) -> Result<Vec<TopicResult>, AdminError> {
        output!(
            self.run(|c, now| c.create_topics(topics, validate_only, now))
                .await,
            TopicResults
        )
    }

    /// Deletes topics by name or id; one result per topic.
    ///
    /// # Errors
    /// [`AdminError`] if the operation failed as a whole.
    pub async fn delete_topics(&self, topics: &[TopicRef]) -> Result<Vec<TopicResult>, AdminError> {
        output!(
            self.run(|c, now| c.delete_topics(topics, now)).await,
            TopicResults
        )
    }

    /// Raises topics' partition counts to the totals given.
    ///
    /// # Errors
    /// [`AdminError`] if the operation failed as a whole.
    pub async fn create_partitions(
        &self,
        topics: &[(&str, i32)],
        validate_only: bool,
    ) -> Result<Vec<TopicResult>, AdminError> {
        output!(
            self.run(|c, now| c.create_partitions(topics, validate_only, now))
                .await,
            TopicResults
        )
    }

    /// Deletes the records before each offset; each result is the new low watermark.
    ///
    /// # Errors
    /// [`AdminError`] if the operation failed as a whole.
    pub async fn delete_records(
        &self,
        before: &[(&str, i32, i64)],
    ) -> Result<Vec<PartitionResult<i64>>, AdminError> {
        output!(
            self.run(|c, now| c.delete_records(before, now)).await,
            PartitionOffsets
        )
    }

    /// Looks up partition offsets.
    ///
    /// # Errors
    /// [`AdminError`] if the operation failed as a whole.
    pub async fn list_offsets(
        &self,
        specs: &[(&str, i32, OffsetSpec)],
        isolation: IsolationLevel,
    ) -> Result<Vec<PartitionResult<ListedOffset>>, AdminError> {
        output!(
            self.run(|c, now| c.list_offsets(specs, isolation, now))
                .await,
            Offsets
        )
    }

    /// Describes the configs of resources.
    ///
    /// # Errors
    /// [`AdminError`] if the operation failed as a whole.
    pub async fn describe_configs(
        &self,
        resources: &[ConfigResource],
    ) -> Result<Vec<ResourceConfigs>, AdminError> {
        output!(
            self.run(|c, now| c.describe_configs(resources, now)).await,
            Configs
        )
    }

    /// Changes configs key by key.
    ///
    /// # Errors
    /// [`AdminError`] if the operation failed as a whole.
    pub async fn alter_configs(
        &self,
        changes: &[(ConfigResource, Vec<ConfigChange>)],
        validate_only: bool,
    ) -> Result<Vec<ResourceResult>, AdminError> {
        output!(
            self.run(|c, now| c.alter_configs(changes, validate_only, now))
                .await,
            ConfigResults
        )
    }

    /// The groups of every broker.
    ///
    /// # Errors
    /// [`AdminError`] if the operation failed as a whole.
    pub async fn list_groups(&self) -> Result<Vec<GroupListing>, AdminError> {
        output!(self.run(|c, now| c.list_groups(now)).await, Groups)
    }

    /// Describes groups: state, members, assignments.
    ///
    /// # Errors
    /// [`AdminError`] if the operation failed as a whole.
    pub async fn describe_groups(
        &self,
        groups: &[&str],
    ) -> Result<Vec<Named<GroupDescription>>, AdminError> {
        output!(
            self.run(|c, now| c.describe_groups(groups, now)).await,
            GroupDescriptions
        )
    }

    /// Deletes groups.
    ///
    /// # Errors
    /// [`AdminError`] if the operation failed as a whole.
    pub async fn delete_groups(&self, groups: &[&str]) -> Result<Vec<Named<()>>, AdminError> {
        output!(
            self.run(|c, now| c.delete_groups(groups, now)).await,
            NamedResults
        )
    }

    /// The group's committed offsets.
    ///
    /// # Errors
    /// [`AdminError`] if the operation failed as a whole.
    pub async fn group_offsets(&self, group: &str) -> Result<Vec<CommittedOffset>, AdminError> {
        output!(
            self.run(|c, now| c.group_offsets(group, now)).await,
            Committed
        )
    }

    /// Sets the group's committed offsets.
    ///
    /// # Errors
    /// [`AdminError`] if the operation failed as a whole.
    pub async fn alter_group_offsets(
        &self,
        group: &str,
        offsets: &[(&str, i32, i64)],
    ) -> Result<Vec<PartitionResult<()>>, AdminError> {
        output!(
            self.run(|c, now| c.alter_group_offsets(group, offsets, now))
                .await,
            PartitionResults
        )
    }

    /// Moves the group's committed offsets to the earliest, latest or a timestamp's
    /// offset (every committed partition when `partitions` is empty).
    ///
    /// # Errors
    /// [`AdminError`] if the operation failed as a whole.
    pub async fn reset_group_offsets(
        &self,
        group: &str,
        partitions: &[(&str, i32)],
        to: OffsetSpec,
    ) -> Result<Vec<PartitionResult<i64>>, AdminError> {
        output!(
            self.run(|c, now| c.reset_group_offsets(group, partitions, to, now))
                .await,
            PartitionOffsets
        )
    }

    /// Deletes the group's committed offsets of some partitions.
    ///
    /// # Errors
    /// [`AdminError`] if the operation failed as a whole.
    pub async fn delete_group_offsets(
        &self,
        group: &str,
        partitions: &[(&str, i32)],
    ) -> Result<Vec<PartitionResult<()>>, AdminError> {
        output!(
            self.run(|c, now| c.delete_group_offsets(group, partitions, now))
                .await,
            PartitionResults
        )
    }

    /// The group's lag per committed partition.
    ///
    /// # Errors
    /// [`AdminError`] if the operation failed as a whole.
    pub async fn group_lag(&self, group: &str) -> Result<Vec<PartitionLag>, AdminError> {
        output!(self.run(|c, now| c.group_lag(group, now)).await, Lag)
    }

    /// The ACLs matching a filter.
    ///
    /// # Errors
    /// [`AdminError`] if the operation failed as a whole.
    pub async fn describe_acls(&self, filter: &AclFilter) -> Result<Vec<AclBinding>, AdminError> {
        output!(self.run(|c, now| c.describe_acls(filter, now)).await, Acls)
    }

    /// Creates ACLs; one result per binding.
    ///
    /// # Errors
    /// [`AdminError`] if the operation failed as a whole.
    pub async fn create_acls(
        &self,
        acls: &[AclBinding],
    ) -> Result<Vec<Result<(), ApiError>>, AdminError> {
        output!(self.run(|c, now| c.create_acls(acls, now)).await, Results)
    }

    /// Deletes the ACLs matching each filter.
    ///
    /// # Errors
    /// [`AdminError`] if the operation failed as a whole.
    pub async fn delete_acls(
        &self,
        filters: &[AclFilter],
    ) -> Result<Vec<Result<Vec<AclBinding>, ApiError>>, AdminError> {
        output!(
            self.run(|c, now| c.delete_acls(filters, now)).await,
            DeletedAcls
        )
    }

    /// The SCRAM credentials of users (every user with one, when empty).
    ///
    /// # Errors
    /// [`AdminError`] if the operation failed as a whole.
    pub async fn describe_scram_credentials(
        &self,
        users: &[&str],
    ) -> Result<Vec<Named<Vec<ScramCredential>>>, AdminError> {
        output!(
            self.run(|c, now| c.describe_scram_credentials(users, now))
                .await,
            Scram
        )
    }

    /// Sets or deletes SCRAM credentials.
    ///
    /// # Errors
    /// [`AdminError`] if the operation failed as a whole.
    pub async fn alter_scram_credentials(
        &self,
        changes: &[ScramChange],
    ) -> Result<Vec<Named<()>>, AdminError> {
        output!(
            self.run(|c, now| c.alter_scram_credentials(changes, now))
                .await,
            NamedResults
        )
    }

    /// The client quotas matching a filter.
    ///
    /// # Errors
    /// [`AdminError`] if the operation failed as a whole.
    pub async fn describe_client_quotas(
        &self,
        filter: &[QuotaFilter],
        strict: bool,
    ) -> Result<Vec<QuotaEntry>, AdminError> {
        output!(
            self.run(|c, now| c.describe_client_quotas(filter, strict, now))
                .await,
            Quotas
        )
    }

    /// Sets or removes client quotas; one result per entity.
    ///
    /// # Errors
    /// [`AdminError`] if the operation failed as a whole.
    pub async fn alter_client_quotas(
        &self,
        changes: &[QuotaChange],
        validate_only: bool,
    ) -> Result<Vec<Result<(), ApiError>>, AdminError> {
        output!(
            self.run(|c, now| c.alter_client_quotas(changes, validate_only, now))
                .await,
            Results
        )
    }

    /// Fails the operations still running and stops the driver.
    pub fn close(&self) {
        let mut inner = self.shared.lock();
        inner.core.close(Instant::now());
        inner.closing = true;
        drop(inner);
        self.shared.wake.notify_one();
    }
}
