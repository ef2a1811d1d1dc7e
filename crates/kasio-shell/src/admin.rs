//! The admin handle: each method starts an operation in the core and returns its [`Call`].

use crate::{
    call::Call,
    driver::{Core, Handle, Runtime, Shared},
    names,
    pending::{Complete, Pending},
};
use event_listener::Event;
use kasio_core::{
    AclBinding, AclFilter, AdminConfig, AdminError, AdminOutput, ApiError, ApiSupport,
    ClusterDescription, CommittedOffset, ConfigChange, ConfigError, ConfigResource,
    GroupDescription, GroupListing, IsolationLevel, ListedOffset, Named, NewTopic, OffsetSpec,
    OpId, PartitionLag, PartitionResult, QuotaChange, QuotaEntry, QuotaFilter, ResourceConfigs,
    ResourceResult, ScramChange, ScramCredential, TopicDescription, TopicListing, TopicPartition,
    TopicPartitionOffset, TopicRef, TopicResult,
};
use std::{collections::HashMap, marker::PhantomData, sync::Arc, time::Instant};

type Reply = Complete<Result<AdminOutput, AdminError>>;

pub(crate) struct AdminCore {
    core: kasio_core::Admin,
    waiters: HashMap<OpId, Reply>,
    closing: bool,
}

impl Core for AdminCore {
    type Deferred = Vec<(Reply, Result<AdminOutput, AdminError>)>;

    type Client = kasio_core::Admin;

    fn client(&mut self) -> &mut Self::Client {
        &mut self.core
    }
    fn take_events(&mut self, done: &mut Self::Deferred, _now: Instant) -> bool {
        while let Some(ev) = self.core.poll_event() {
            if let Some(reply) = self.waiters.remove(&ev.id) {
                done.push((reply, ev.result));
            }
        }
        self.closing
    }
    fn abandon(&mut self, _now: Instant) {
        // Nobody waits for the calls still under way.
        self.closing = true;
    }
    fn complete(done: &mut Self::Deferred, _ready: &Event) {
        for (reply, result) in done.drain(..) {
            let _ = reply.send(result);
        }
    }
}

/// Unwraps the output variant an operation returns.
macro_rules! output {
    ($pending:expr, $variant:ident) => {
        Call::new($pending, |output| match output {
            AdminOutput::$variant(v) => Ok(v),
            other => Err(AdminError::Malformed(format!(
                "unexpected output {other:?}"
            ))),
        })
    };
}

type Outcome = Result<AdminOutput, AdminError>;

/// A Kafka admin client whose driver runs on runtime `R` (each adapter names its own
/// `Admin`): topics, configs, groups, offsets, ACLs, SCRAM credentials and quotas. Clones
/// share one core; calls run concurrently. Each call returns a [`Call`] to `.await` or to
/// [`wait`](Call::wait) for. [`close`](Self::close), or dropping the last clone, ends the
/// calls still running with [`AdminError::Closed`] and stops the driver.
///
/// ```no_run
/// # async fn demo<R: kasio_shell::AsyncRuntime>() -> Result<(), Box<dyn std::error::Error>> {
/// use kasio_shell::{Admin, NewTopic};
/// let admin = Admin::<R>::from_properties([("bootstrap.servers", "localhost:9092")])?;
/// for r in admin.create_topics(&[NewTopic::new("orders", 6, 1)], false).await? {
///     println!("{}: {:?}", r.name, r.error);
/// }
/// let cluster = admin.describe_cluster().await?;
/// println!("{} brokers", cluster.brokers.len());
/// # Ok(()) }
/// ```
pub struct Admin<R> {
    shared: Arc<Handle<AdminCore>>,
    runtime: PhantomData<fn() -> R>,
}

impl<R> Clone for Admin<R> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            runtime: PhantomData,
        }
    }
}

impl<R> std::fmt::Debug for Admin<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin").finish_non_exhaustive()
    }
}

impl<R: Runtime> Admin<R> {
    /// Starts an admin client and its driver.
    ///
    /// # Errors
    /// [`ConfigError`] if the settings conflict.
    pub fn new(config: AdminConfig) -> Result<Self, ConfigError> {
        let core = kasio_core::Admin::new(config, R::now(), R::seed())?;
        Ok(Self {
            shared: Shared::start::<R>(AdminCore {
                core,
                waiters: HashMap::new(),
                closing: false,
            }),
            runtime: PhantomData,
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
}

impl<R> Admin<R> {
    fn run(
        &self,
        start: impl FnOnce(&mut kasio_core::Admin, Instant) -> OpId,
    ) -> Pending<Outcome, ()> {
        let (tx, pending) = Pending::channel(|| Err(AdminError::Closed));
        {
            let mut inner = self.shared.lock();
            if inner.closing {
                return Pending::ready(Err(AdminError::Closed));
            }
            let id = start(&mut inner.core, self.shared.now());
            inner.waiters.insert(id, tx);
        }
        self.shared.wake();
        pending
    }

    /// The cluster's id, controller and brokers.
    ///
    /// The call fails with [`AdminError`] if the operation failed as a whole.
    pub fn describe_cluster(&self) -> Call<ClusterDescription, R> {
        output!(self.run(|c, now| c.describe_cluster(now)), Cluster)
    }

    /// The API versions a broker supports.
    ///
    /// The call fails with [`AdminError`] if the operation failed as a whole.
    pub fn api_versions(&self, broker: i32) -> Call<Vec<ApiSupport>, R> {
        output!(self.run(|c, now| c.api_versions(broker, now)), ApiVersions)
    }

    /// The topics, with Kafka's internal ones when `include_internal`.
    ///
    /// The call fails with [`AdminError`] if the operation failed as a whole.
    pub fn list_topics(&self, include_internal: bool) -> Call<Vec<TopicListing>, R> {
        output!(
            self.run(|c, now| c.list_topics(include_internal, now)),
            TopicListings
        )
    }

    /// Describes topics: partitions, leaders, replicas, in-sync replicas.
    ///
    /// The call fails with [`AdminError`] if the operation failed as a whole.
    pub fn describe_topics(&self, topics: &[&str]) -> Call<Vec<Named<TopicDescription>>, R> {
        output!(
            self.run(|c, now| c.describe_topics(topics, now)),
            TopicDescriptions
        )
    }

    /// Creates topics; one result per topic.
    ///
    /// The call fails with [`AdminError`] if the operation failed as a whole.
    pub fn create_topics(
        &self,
        topics: &[NewTopic],
        validate_only: bool,
    ) -> Call<Vec<TopicResult>, R> {
        output!(
            self.run(|c, now| c.create_topics(topics, validate_only, now)),
            TopicResults
        )
    }

    /// Deletes topics by name or id; one result per topic.
    ///
    /// The call fails with [`AdminError`] if the operation failed as a whole.
    pub fn delete_topics(&self, topics: &[TopicRef]) -> Call<Vec<TopicResult>, R> {
        output!(
            self.run(|c, now| c.delete_topics(topics, now)),
            TopicResults
        )
    }

    /// Raises topics' partition counts to the totals given.
    ///
    /// The call fails with [`AdminError`] if the operation failed as a whole.
    pub fn create_partitions(
        &self,
        topics: &[(&str, i32)],
        validate_only: bool,
    ) -> Call<Vec<TopicResult>, R> {
        output!(
            self.run(|c, now| c.create_partitions(topics, validate_only, now)),
            TopicResults
        )
    }

    /// Deletes the records before each offset; each result is the new low watermark.
    ///
    /// The call fails with [`AdminError`] if the operation failed as a whole.
    pub fn delete_records<O: Into<TopicPartitionOffset>>(
        &self,
        before: impl IntoIterator<Item = O>,
    ) -> Call<Vec<PartitionResult<i64>>, R> {
        let before = names::offsets(before);
        output!(
            self.run(|c, now| c.delete_records(&names::triples(&before), now)),
            PartitionOffsets
        )
    }

    /// Looks up partition offsets.
    ///
    /// The call fails with [`AdminError`] if the operation failed as a whole.
    pub fn list_offsets<P: Into<TopicPartition>>(
        &self,
        specs: impl IntoIterator<Item = (P, OffsetSpec)>,
        isolation: IsolationLevel,
    ) -> Call<Vec<PartitionResult<ListedOffset>>, R> {
        let specs: Vec<(TopicPartition, OffsetSpec)> =
            specs.into_iter().map(|(p, s)| (p.into(), s)).collect();
        let specs: Vec<(&str, i32, OffsetSpec)> = specs
            .iter()
            .map(|(tp, s)| (&*tp.topic, tp.partition, *s))
            .collect();
        output!(
            self.run(|c, now| c.list_offsets(&specs, isolation, now)),
            Offsets
        )
    }

    /// Describes the configs of resources.
    ///
    /// The call fails with [`AdminError`] if the operation failed as a whole.
    pub fn describe_configs(&self, resources: &[ConfigResource]) -> Call<Vec<ResourceConfigs>, R> {
        output!(
            self.run(|c, now| c.describe_configs(resources, now)),
            Configs
        )
    }

    /// Changes configs key by key.
    ///
    /// The call fails with [`AdminError`] if the operation failed as a whole.
    pub fn alter_configs(
        &self,
        changes: &[(ConfigResource, Vec<ConfigChange>)],
        validate_only: bool,
    ) -> Call<Vec<ResourceResult>, R> {
        output!(
            self.run(|c, now| c.alter_configs(changes, validate_only, now)),
            ConfigResults
        )
    }

    /// The groups of every broker.
    ///
    /// The call fails with [`AdminError`] if the operation failed as a whole.
    pub fn list_groups(&self) -> Call<Vec<GroupListing>, R> {
        output!(self.run(|c, now| c.list_groups(now)), Groups)
    }

    /// Describes groups: state, members, assignments.
    ///
    /// The call fails with [`AdminError`] if the operation failed as a whole.
    pub fn describe_groups(&self, groups: &[&str]) -> Call<Vec<Named<GroupDescription>>, R> {
        output!(
            self.run(|c, now| c.describe_groups(groups, now)),
            GroupDescriptions
        )
    }

    /// Deletes groups.
    ///
    /// The call fails with [`AdminError`] if the operation failed as a whole.
    pub fn delete_groups(&self, groups: &[&str]) -> Call<Vec<Named<()>>, R> {
        output!(
            self.run(|c, now| c.delete_groups(groups, now)),
            NamedResults
        )
    }

    /// The group's committed offsets.
    ///
    /// The call fails with [`AdminError`] if the operation failed as a whole.
    pub fn group_offsets(&self, group: &str) -> Call<Vec<CommittedOffset>, R> {
        output!(self.run(|c, now| c.group_offsets(group, now)), Committed)
    }

    /// Sets the group's committed offsets.
    ///
    /// The call fails with [`AdminError`] if the operation failed as a whole.
    pub fn alter_group_offsets<O: Into<TopicPartitionOffset>>(
        &self,
        group: &str,
        offsets: impl IntoIterator<Item = O>,
    ) -> Call<Vec<PartitionResult<()>>, R> {
        let offsets = names::offsets(offsets);
        output!(
            self.run(|c, now| c.alter_group_offsets(group, &names::triples(&offsets), now)),
            PartitionResults
        )
    }

    /// Moves the group's committed offsets to the earliest, latest or a timestamp's
    /// offset (every committed partition when `partitions` is empty).
    ///
    /// The call fails with [`AdminError`] if the operation failed as a whole.
    pub fn reset_group_offsets<P: Into<TopicPartition>>(
        &self,
        group: &str,
        partitions: impl IntoIterator<Item = P>,
        to: OffsetSpec,
    ) -> Call<Vec<PartitionResult<i64>>, R> {
        let partitions = names::partitions(partitions);
        output!(
            self.run(|c, now| c.reset_group_offsets(group, &names::pairs(&partitions), to, now)),
            PartitionOffsets
        )
    }

    /// Deletes the group's committed offsets of some partitions.
    ///
    /// The call fails with [`AdminError`] if the operation failed as a whole.
    pub fn delete_group_offsets<P: Into<TopicPartition>>(
        &self,
        group: &str,
        partitions: impl IntoIterator<Item = P>,
    ) -> Call<Vec<PartitionResult<()>>, R> {
        let partitions = names::partitions(partitions);
        output!(
            self.run(|c, now| c.delete_group_offsets(group, &names::pairs(&partitions), now)),
            PartitionResults
        )
    }

    /// The group's lag per committed partition.
    ///
    /// The call fails with [`AdminError`] if the operation failed as a whole.
    pub fn group_lag(&self, group: &str) -> Call<Vec<PartitionLag>, R> {
        output!(self.run(|c, now| c.group_lag(group, now)), Lag)
    }

    /// A share group's start offset and lag per partition (`committed` is the start
    /// offset, `end` the start plus the lag).
    ///
    /// The call fails with [`AdminError`] if the operation failed as a whole.
    pub fn share_group_offsets(&self, group: &str) -> Call<Vec<PartitionLag>, R> {
        output!(self.run(|c, now| c.share_group_offsets(group, now)), Lag)
    }

    /// Sets a share group's start offsets (the group must have no active members).
    ///
    /// The call fails with [`AdminError`] if the operation failed as a whole.
    pub fn alter_share_group_offsets<O: Into<TopicPartitionOffset>>(
        &self,
        group: &str,
        offsets: impl IntoIterator<Item = O>,
    ) -> Call<Vec<PartitionResult<()>>, R> {
        let offsets = names::offsets(offsets);
        output!(
            self.run(|c, now| c.alter_share_group_offsets(group, &names::triples(&offsets), now)),
            PartitionResults
        )
    }

    /// Deletes a share group's start offsets for whole topics (the group must have no
    /// active members); a result per topic.
    ///
    /// The call fails with [`AdminError`] if the operation failed as a whole.
    pub fn delete_share_group_offsets(
        &self,
        group: &str,
        topics: &[&str],
    ) -> Call<Vec<Named<()>>, R> {
        output!(
            self.run(|c, now| c.delete_share_group_offsets(group, topics, now)),
            NamedResults
        )
    }

    /// The ACLs matching a filter.
    ///
    /// The call fails with [`AdminError`] if the operation failed as a whole.
    pub fn describe_acls(&self, filter: &AclFilter) -> Call<Vec<AclBinding>, R> {
        output!(self.run(|c, now| c.describe_acls(filter, now)), Acls)
    }

    /// Creates ACLs; one result per binding.
    ///
    /// The call fails with [`AdminError`] if the operation failed as a whole.
    pub fn create_acls(&self, acls: &[AclBinding]) -> Call<Vec<Result<(), ApiError>>, R> {
        output!(self.run(|c, now| c.create_acls(acls, now)), Results)
    }

    /// Deletes the ACLs matching each filter.
    ///
    /// The call fails with [`AdminError`] if the operation failed as a whole.
    pub fn delete_acls(
        &self,
        filters: &[AclFilter],
    ) -> Call<Vec<Result<Vec<AclBinding>, ApiError>>, R> {
        output!(self.run(|c, now| c.delete_acls(filters, now)), DeletedAcls)
    }

    /// The SCRAM credentials of users (every user with one, when empty).
    ///
    /// The call fails with [`AdminError`] if the operation failed as a whole.
    pub fn describe_scram_credentials(
        &self,
        users: &[&str],
    ) -> Call<Vec<Named<Vec<ScramCredential>>>, R> {
        output!(
            self.run(|c, now| c.describe_scram_credentials(users, now)),
            Scram
        )
    }

    /// Sets or deletes SCRAM credentials.
    ///
    /// The call fails with [`AdminError`] if the operation failed as a whole.
    pub fn alter_scram_credentials(&self, changes: &[ScramChange]) -> Call<Vec<Named<()>>, R> {
        output!(
            self.run(|c, now| c.alter_scram_credentials(changes, now)),
            NamedResults
        )
    }

    /// The client quotas matching a filter.
    ///
    /// The call fails with [`AdminError`] if the operation failed as a whole.
    pub fn describe_client_quotas(
        &self,
        filter: &[QuotaFilter],
        strict: bool,
    ) -> Call<Vec<QuotaEntry>, R> {
        output!(
            self.run(|c, now| c.describe_client_quotas(filter, strict, now)),
            Quotas
        )
    }

    /// Sets or removes client quotas; one result per entity.
    ///
    /// The call fails with [`AdminError`] if the operation failed as a whole.
    pub fn alter_client_quotas(
        &self,
        changes: &[QuotaChange],
        validate_only: bool,
    ) -> Call<Vec<Result<(), ApiError>>, R> {
        output!(
            self.run(|c, now| c.alter_client_quotas(changes, validate_only, now)),
            Results
        )
    }

    /// Fails the operations still running and stops the driver; completes once it has
    /// stopped. `.await` it, or [`wait`](Pending::wait) for it on threads.
    pub fn close(&self) -> Pending<(), R> {
        let mut inner = self.shared.lock();
        inner.core.close(self.shared.now());
        inner.closing = true;
        drop(inner);
        let done = self.shared.finished();
        self.shared.wake();
        done
    }
}
