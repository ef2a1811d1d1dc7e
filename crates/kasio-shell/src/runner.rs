//! The runner: N members of one consumer group, each feeding a [`Processor`] through the
//! core's [`Dispatcher`], committing only what every record before it has finished,
//! retrying failures and writing what gives up to a dead-letter topic.

use crate::{
    AsyncRuntime, Commit, Consumer, Fetched, Producer,
    processor::{Metric, ProcessError, Processor, Stop},
    props,
};
use kasio_core::{
    ConfigError, ConsumeError, ConsumerConfig, ConsumerEvent, ConsumerRecord, Decision, Dispatcher,
    FailureKind, FailureNote, HeaderConventions, Origin, ProcessingOrder, ProducerConfig, Record,
    RetryPolicy, SecurityError, Ticket, TopicPartition, TopicPartitionOffset, attempts_so_far,
    dead_letter_headers, retry_due, retry_headers,
};
use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering as AtomicOrdering},
    },
    task::Poll,
    time::{Duration, Instant},
};

/// The dead-letter topic unless `processing.dead.letter.topic` says otherwise; `{topic}`
/// stands for the record's topic.
pub const DEFAULT_DEAD_LETTER_TOPIC: &str = "{topic}.dlt";

/// Tries of the commit before a partition is released or the member stops.
const FIRM_COMMIT_TRIES: u32 = 3;

/// Why a member stopped before its stop signal.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RunError {
    /// The consumer or producer could not be built.
    Config(ConfigError),
    /// The group refused the member for good, or a partition stopped fetching.
    Consume(ConsumeError),
    /// TLS or SASL failed.
    Security(SecurityError),
    /// A fetched batch did not decode.
    Corrupt(String),
    /// A record's failure was terminal, or it could not be dead-lettered (none is
    /// configured, or the write failed for good): nothing was committed past it.
    Failed {
        /// The record's topic.
        topic: String,
        /// Its partition.
        partition: i32,
        /// Its offset.
        offset: i64,
        /// The failure.
        error: ProcessError,
    },
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Config(e) => write!(f, "runner configuration: {e}"),
            Self::Consume(e) => write!(f, "runner consumer failed: {e}"),
            Self::Security(e) => write!(f, "runner could not connect: {e}"),
            Self::Corrupt(e) => write!(f, "a fetched batch did not decode: {e}"),
            Self::Failed {
                topic,
                partition,
                offset,
                error,
            } => write!(f, "record {topic}-{partition}@{offset} failed: {error}"),
        }
    }
}

impl std::error::Error for RunError {}

impl From<ConfigError> for RunError {
    fn from(e: ConfigError) -> Self {
        Self::Config(e)
    }
}

/// What a runner's members have done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunnerCounters {
    /// Records processed successfully.
    pub processed: u64,
    /// Tries that failed and were tried again.
    pub retried: u64,
    /// Records written to the dead-letter topic.
    pub dead_lettered: u64,
    /// Commits that succeeded.
    pub commits: u64,
    /// Records whose failure stopped a member.
    pub failed: u64,
}

#[derive(Debug, Default)]
struct Counters {
    processed: AtomicU64,
    retried: AtomicU64,
    dead_lettered: AtomicU64,
    commits: AtomicU64,
    failed: AtomicU64,
}

type MetricFn = Arc<dyn Fn(&Metric) + Send + Sync>;

/// What every member and job shares.
struct Shared {
    consumer: ConsumerConfig,
    /// The dead-letter producer's properties (a `ProducerConfig` may hold a partitioner
    /// that is not `Sync`, so each member builds its own).
    producer: Vec<(String, String)>,
    topics: Vec<String>,
    workers: usize,
    ordering: ProcessingOrder,
    max_running: usize,
    max_waiting: usize,
    retry: RetryPolicy,
    /// The retry topic's name (`{topic}` the origin's) for non-blocking retries, or none
    /// for blocking ones.
    retry_topic: Option<String>,
    /// Retry copies go through the retry topic's delay tiers (a `DelayRelay` forwards
    /// them when due) rather than waiting in the member that reads them.
    retry_via_tiers: bool,
    dead_letter: Option<String>,
    conventions: HeaderConventions,
    commit_interval: Duration,
    shutdown_timeout: Duration,
    group: String,
    counters: Counters,
    /// Set by [`Runner::on_metric`] on any clone, at any time.
    metric: std::sync::RwLock<Option<MetricFn>>,
}

impl Shared {
    /// Counts what happened and hands it to the metrics callback: the counters are the
    /// metrics summed.
    fn report(&self, metric: Metric) {
        let counter = match metric {
            Metric::Processed { .. } => &self.counters.processed,
            Metric::Retried { .. } => &self.counters.retried,
            Metric::DeadLettered { .. } => &self.counters.dead_lettered,
            Metric::Committed { .. } => &self.counters.commits,
            Metric::Failed { .. } => &self.counters.failed,
        };
        counter.fetch_add(1, AtomicOrdering::Relaxed);
        let f = self.metric.read().ok().and_then(|m| m.clone());
        if let Some(f) = f {
            f(&metric);
        }
    }
}

/// Runs a [`Processor`] in `processing.workers` members of one consumer group, each with
/// a processor of its own from the factory, until a [`Stop`] signal.
///
/// - **Offsets**: a member commits, every `auto.commit.interval.ms`, before giving a
///   partition up and when it stops, the offset below which every record has finished:
///   processed, or dead-lettered once its tries ran out. A record is never skipped
///   (at-least-once); one finished after the last commit is processed again by the
///   next owner only if the member died without committing.
/// - **Order** (`processing.ordering`): `partition` (the default) processes one record
///   of a partition at a time; `key` runs different keys of a partition in parallel and
///   one key's records in order; `unordered` runs any record at once. Up to
///   `processing.max.in.flight` (16) records run per member; a partition with more than
///   `processing.max.waiting` (1,000) fetched records waiting is paused.
/// - **Failures**: a [`ProcessError`] that is retriable is tried again after
///   `processing.retry.backoff.ms` growing by `processing.retry.multiplier` with
///   `processing.retry.jitter`, up to `processing.retry.attempts` tries. By default in
///   place (a blocking retry: the record's key, or partition, waits). With
///   `processing.retry.topic` (`{topic}.retry`, say; the topic must exist) the retry is
///   non-blocking: the record is written there with its tries, its due time and its
///   origin ([`kasio_core::retry_headers`]), its own partition moves on, and the runner,
///   which reads the retry topics too, tries it again once due: it waits out the due time
///   itself, or, with `processing.retry.topic.delay=tiers`, the copy goes through the
///   retry topic's delay tiers (`delay.tiers`; create them with `kasio delay create` and
///   run a [`DelayRelay`](crate::DelayRelay) for the retry topic) and arrives when due.
///   Then, as a non-retriable
///   failure at once, the record goes to the dead-letter topic (`processing.dead.letter.topic`, `{topic}.dlt`
///   by default; `none` for none, and such a failure stops the member) with the failure
///   in its headers ([`kasio_core::dead_letter_headers`], `processing.dead.letter.headers`
///   adding Connect's or Spring's names). A terminal error stops the member.
/// - **Stopping**: on the signal, no record starts; running ones finish (for at most
///   `processing.shutdown.timeout.ms`, 30 s), their offsets are committed and the member
///   leaves the group.
///
/// ```no_run
/// # async fn demo<R: kasio_shell::AsyncRuntime>() -> Result<(), Box<dyn std::error::Error>> {
/// use kasio_shell::{ProcessError, Processor, Runner, Stop};
/// struct Print;
/// impl Processor for Print {
///     async fn process(&self, r: &kasio_core::ConsumerRecord) -> Result<(), ProcessError> {
///         println!("{}@{}", r.partition, r.offset);
///         Ok(())
///     }
/// }
/// let runner = Runner::<R, _>::from_properties(
///     [("bootstrap.servers", "localhost:9092"), ("group.id", "printers"), ("processing.workers", "4")],
///     &["orders"],
///     |_member| Print,
/// )?;
/// let stop = Stop::new();
/// runner.run(&stop).await?;
/// # Ok(()) }
/// ```
pub struct Runner<R, P> {
    shared: Arc<Shared>,
    factory: Arc<dyn Fn(usize) -> P + Send + Sync>,
    _runtime: std::marker::PhantomData<fn() -> R>,
}

impl<R, P> Clone for Runner<R, P> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            factory: self.factory.clone(),
            _runtime: std::marker::PhantomData,
        }
    }
}

impl<R, P> std::fmt::Debug for Runner<R, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("topics", &self.shared.topics)
            .field("group", &self.shared.group)
            .field("workers", &self.shared.workers)
            .field("ordering", &self.shared.ordering)
            .finish_non_exhaustive()
    }
}

impl<R: AsyncRuntime, P: Processor> Runner<R, P> {
    /// A runner of `topics` from Java-client property names (`group.id` is required;
    /// consumer and producer properties go to the consumers and to the dead-letter
    /// producer) and the `processing.*` properties of the type's documentation.
    ///
    /// # Errors
    /// [`ConfigError`] naming a bad value, an unknown key or a missing `group.id`.
    pub fn from_properties<'a>(
        props: impl IntoIterator<Item = (&'a str, &'a str)>,
        topics: &[&str],
        factory: impl Fn(usize) -> P + Send + Sync + 'static,
    ) -> Result<Self, ConfigError> {
        let mut consumer = ConsumerConfig::default();
        let mut producer = ProducerConfig::default();
        let mut producer_props = Vec::new();
        let mut retry = RetryPolicy::default();
        let mut workers = 1;
        let mut ordering = ProcessingOrder::Partition;
        let mut max_running = 16;
        let mut max_waiting = 1000;
        let mut dead_letter = Some(DEFAULT_DEAD_LETTER_TOPIC.to_string());
        let mut retry_topic = None;
        let mut retry_via_tiers = false;
        let mut conventions = HeaderConventions::default();
        let mut shutdown_timeout = Duration::from_secs(30);
        for (k, v) in props {
            if retry.try_set(k, v)? {
                continue;
            }
            match k {
                "processing.workers" => workers = props::count(k, v, 1)?,
                "processing.max.in.flight" => max_running = props::count(k, v, 1)?,
                "processing.max.waiting" => max_waiting = props::count(k, v, 1)?,
                "processing.ordering" => {
                    ordering = v.parse().map_err(|_| ConfigError::InvalidValue {
                        key: k.into(),
                        value: v.into(),
                        expected: "partition, key or unordered",
                    })?;
                }
                "processing.dead.letter.topic" => {
                    dead_letter = props::topic_or_none(v);
                }
                "processing.dead.letter.headers" => conventions = v.parse()?,
                "processing.retry.topic" => {
                    retry_topic = props::topic_or_none(v);
                }
                "processing.retry.topic.delay" => {
                    retry_via_tiers = match v.trim() {
                        "consumer" => false,
                        "tiers" => true,
                        _ => {
                            return Err(ConfigError::InvalidValue {
                                key: k.into(),
                                value: v.into(),
                                expected: "consumer or tiers",
                            });
                        }
                    };
                }
                "processing.shutdown.timeout.ms" => shutdown_timeout = props::millis(k, v)?,
                _ => {
                    if props::set_either(&mut consumer, &mut producer, k, v)? {
                        producer_props.push((k.to_string(), v.to_string()));
                    }
                }
            }
        }
        let Some(group) = consumer.group_id.clone() else {
            return Err(ConfigError::Conflict("a runner needs a group.id".into()));
        };
        let commit_interval = consumer.auto_commit_interval;
        consumer.enable_auto_commit = false;
        consumer.hold_revocations = true;
        Ok(Self {
            shared: Arc::new(Shared {
                consumer,
                producer: producer_props,
                topics: topics.iter().map(|t| (*t).to_string()).collect(),
                workers,
                ordering,
                max_running,
                max_waiting,
                retry,
                retry_topic,
                retry_via_tiers,
                dead_letter,
                conventions,
                commit_interval,
                shutdown_timeout,
                group,
                counters: Counters::default(),
                metric: std::sync::RwLock::new(None),
            }),
            factory: Arc::new(factory),
            _runtime: std::marker::PhantomData,
        })
    }

    /// Calls `f` with every [`Metric`] the members of this runner and its clones report
    /// from now on, in place of a callback set before.
    pub fn on_metric(&self, f: impl Fn(&Metric) + Send + Sync + 'static) {
        if let Ok(mut m) = self.shared.metric.write() {
            *m = Some(Arc::new(f));
        }
    }

    /// Members run by [`run`](Self::run).
    #[must_use]
    pub fn workers(&self) -> usize {
        self.shared.workers
    }

    /// What the members have done so far.
    #[must_use]
    pub fn counters(&self) -> RunnerCounters {
        let c = &self.shared.counters;
        RunnerCounters {
            processed: c.processed.load(AtomicOrdering::Relaxed),
            retried: c.retried.load(AtomicOrdering::Relaxed),
            dead_lettered: c.dead_lettered.load(AtomicOrdering::Relaxed),
            commits: c.commits.load(AtomicOrdering::Relaxed),
            failed: c.failed.load(AtomicOrdering::Relaxed),
        }
    }

    /// Runs every member in this future until `stop` (spawn
    /// [`run_member`](Self::run_member)s instead to spread them over threads): the first
    /// member's error, after every member has stopped.
    ///
    /// # Errors
    /// [`RunError`] of the first member that failed; the others are stopped then.
    pub async fn run(&self, stop: &Stop) -> Result<(), RunError> {
        // A member's failure stops the others, so no member runs on alone unnoticed.
        let inner = Stop::new();
        let outer = stop.clone();
        let relay = inner.clone();
        let mut forward = std::pin::pin!(async move {
            outer.wait().await;
            relay.stop();
        });
        let mut members: Vec<MemberFuture<'_>> = (0..self.shared.workers)
            .map(|i| {
                let inner = inner.clone();
                Box::pin(async move {
                    let result = self.run_member(i, &inner).await;
                    if result.is_err() {
                        inner.stop();
                    }
                    result
                }) as MemberFuture<'_>
            })
            .collect();
        let mut results: Vec<Option<Result<(), RunError>>> = vec![None; members.len()];
        std::future::poll_fn(|cx| {
            let _ = forward.as_mut().poll(cx);
            for (i, m) in members.iter_mut().enumerate() {
                if results[i].is_none()
                    && let Poll::Ready(r) = m.as_mut().poll(cx)
                {
                    results[i] = Some(r);
                }
            }
            if results.iter().all(Option::is_some) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
        results
            .into_iter()
            .flatten()
            .collect::<Result<Vec<()>, _>>()?;
        Ok(())
    }

    /// Runs member `member` (from 0) until `stop`: a consumer in the group, a processor
    /// from the factory and, with a dead-letter topic, a producer.
    ///
    /// # Errors
    /// [`RunError`]: why the member stopped before the signal.
    pub async fn run_member(&self, member: usize, stop: &Stop) -> Result<(), RunError> {
        let shared = &self.shared;
        let consumer = Consumer::<R>::new(shared.consumer.clone())?;
        let producer = match (&shared.dead_letter, &shared.retry_topic) {
            (Some(_), _) | (_, Some(_)) => {
                let mut config = ProducerConfig::default();
                for (k, v) in &shared.producer {
                    config.set(k, v)?;
                }
                Some(Producer::<R>::new(config)?)
            }
            (None, None) => None,
        };
        let processor = Arc::new((self.factory)(member));
        processor.created(member);
        // With non-blocking retries, each topic's retry topic is read too.
        let retry_topics: Vec<String> = shared
            .retry_topic
            .iter()
            .flat_map(|pattern| shared.topics.iter().map(|t| pattern.replace("{topic}", t)))
            .filter(|t| !shared.topics.contains(t))
            .collect();
        let topics: Vec<&str> = shared
            .topics
            .iter()
            .chain(&retry_topics)
            .map(String::as_str)
            .collect();
        let result = match consumer.subscribe(&topics) {
            Ok(()) => {
                processor.subscribed(&shared.topics);
                let mut m = Member {
                    shared: shared.clone(),
                    consumer: &consumer,
                    producer: producer.as_ref(),
                    processor,
                    dispatcher: Dispatcher::new(
                        shared.ordering,
                        shared.max_running,
                        shared.max_waiting,
                    ),
                    jobs: Vec::new(),
                    revoking: Vec::new(),
                    committing: None,
                    seed: R::seed(),
                };
                m.run(stop).await
            }
            Err(e) => Err(RunError::Consume(e)),
        };
        // Offsets were committed by the member; closing commits nothing more (no
        // auto-commit), so the positions of records never processed are not committed.
        consumer.close().await;
        if let Some(p) = producer {
            p.close().await;
        }
        result
    }
}

/// A member's run, as [`Runner::run`] drives several in one future.
type MemberFuture<'a> = Pin<Box<dyn Future<Output = Result<(), RunError>> + Send + 'a>>;

type Job = Pin<Box<dyn Future<Output = (Ticket, ConsumerRecord, Outcome)> + Send>>;

/// How a record's job ended.
#[derive(Debug)]
enum Outcome {
    Processed,
    /// Written to the retry topic, to be tried again from there.
    RetryQueued,
    DeadLettered,
    Failed(ProcessError),
}

enum Woke {
    Stop,
    Committed(Vec<TopicPartitionOffset>, Result<(), ConsumeError>),
    Jobs(Vec<(Ticket, ConsumerRecord, Outcome)>),
    Fetched(Fetched),
    Timer,
}

struct Member<'a, R, P> {
    shared: Arc<Shared>,
    consumer: &'a Consumer<R>,
    producer: Option<&'a Producer<R>>,
    processor: Arc<P>,
    dispatcher: Dispatcher,
    jobs: Vec<Job>,
    /// Partitions being revoked, released once their running records finish.
    revoking: Vec<TopicPartition>,
    /// The periodic commit under way, with its offsets: awaited beside the jobs, so a
    /// commit held up (by a rebalance, a slow coordinator) holds no record up.
    committing: Option<(Vec<TopicPartitionOffset>, Commit<R>)>,
    seed: u64,
}

impl<R: AsyncRuntime, P: Processor> Member<'_, R, P> {
    async fn run(&mut self, stop: &Stop) -> Result<(), RunError> {
        let mut next_commit = R::now() + self.shared.commit_interval;
        let mut stopping: Option<Instant> = None;
        loop {
            // Stopping, only records below one started are left to start.
            self.start_jobs();
            self.release_revoked().await;
            if let Some(deadline) = stopping
                && (self.jobs.is_empty() || R::now() >= deadline)
            {
                self.commit().await;
                return Ok(());
            }
            let now = R::now();
            if now >= next_commit {
                let points = self.dispatcher.commit_points();
                // One periodic commit at a time: while one is under way, this round is
                // skipped.
                if !points.is_empty() && self.committing.is_none() {
                    let commit = self.consumer.commit(points.clone());
                    self.committing = Some((points, commit));
                }
                next_commit = now + self.shared.commit_interval;
            }
            let wake = stopping.map_or(next_commit, |d| d.min(next_commit));
            match self.wait(stop, stopping.is_some(), wake).await {
                Woke::Stop => {
                    stopping = Some(R::now() + self.shared.shutdown_timeout);
                    self.processor.stopping();
                    // What waits is dropped, so the commit point stays below it; fetching
                    // stops.
                    let owned = self.dispatcher.owned();
                    self.dispatcher.revoke(&owned);
                    self.consumer.pause(owned);
                }
                Woke::Committed(points, result) => {
                    // A failed periodic commit is tried again at the next interval; the
                    // group keeps the last one, never past an unfinished record either.
                    if result.is_ok() {
                        for p in &points {
                            self.dispatcher.confirm(p);
                        }
                        self.shared.report(Metric::Committed {
                            partitions: points.len(),
                        });
                    }
                }
                Woke::Timer => {}
                Woke::Jobs(done) => {
                    for (ticket, record, outcome) in done {
                        if let Outcome::Failed(error) = outcome {
                            // Commit below it: the next owner starts at this record.
                            self.shared.report(Metric::Failed {
                                topic: record.topic.clone(),
                            });
                            self.commit().await;
                            return Err(RunError::Failed {
                                topic: record.topic.to_string(),
                                partition: record.partition,
                                offset: record.offset,
                                error,
                            });
                        }
                        self.dispatcher.finish(ticket);
                    }
                }
                Woke::Fetched(Fetched::Batch(batch)) => {
                    if stopping.is_some() {
                        continue;
                    }
                    let records = batch.iter().map_err(|e| RunError::Corrupt(e.to_string()))?;
                    for record in records {
                        let record = record.map_err(|e| RunError::Corrupt(e.to_string()))?;
                        self.dispatcher.push(record);
                    }
                    let (pause, resume) = self.dispatcher.flow();
                    if !pause.is_empty() {
                        self.consumer.pause(pause);
                    }
                    if !resume.is_empty() {
                        self.consumer.resume(resume);
                    }
                }
                Woke::Fetched(Fetched::Event(event)) => self.on_event(event)?,
            }
        }
    }

    fn start_jobs(&mut self) {
        while let Some((ticket, record)) = self.dispatcher.next_job() {
            let job = run_job::<R, P>(
                self.shared.clone(),
                self.processor.clone(),
                self.producer.cloned(),
                record,
                self.seed ^ (ticket.offset() as u64).rotate_left(17),
            );
            self.jobs.push(Box::pin(async move {
                let (record, outcome) = job.await;
                (ticket, record, outcome)
            }));
        }
    }

    fn on_event(&mut self, event: ConsumerEvent) -> Result<(), RunError> {
        match event {
            ConsumerEvent::Assigned { partitions } => {
                self.dispatcher.assigned(&partitions);
                self.processor.assigned(&partitions);
            }
            ConsumerEvent::Revoking { partitions } => {
                self.dispatcher.revoke(&partitions);
                self.revoking.extend(partitions);
            }
            ConsumerEvent::Lost { partitions } => {
                self.dispatcher.lose(&partitions);
                self.revoking.retain(|p| !partitions.contains(p));
                self.processor.revoked(&partitions, true);
            }
            ConsumerEvent::EndOfPartition {
                topic,
                partition,
                offset,
            } => self.processor.end_of_partition(&topic, partition, offset),
            ConsumerEvent::Truncated {
                topic,
                partition,
                to,
                ..
            } => self
                .dispatcher
                .truncated(&TopicPartition::new(topic, partition), to),
            ConsumerEvent::GroupError { error } | ConsumerEvent::Error { error, .. } => {
                return Err(RunError::Consume(error));
            }
            ConsumerEvent::Security(e) => return Err(RunError::Security(e)),
            _ => {}
        }
        Ok(())
    }

    /// Lets revoked partitions go once none of their records runs, committing first.
    async fn release_revoked(&mut self) {
        if self.revoking.is_empty() || !self.dispatcher.is_idle(&self.revoking) {
            return;
        }
        let partitions = std::mem::take(&mut self.revoking);
        // An older periodic commit landing after this one would move the group back.
        if let Some((points, pending)) = self.committing.take()
            && pending.await.is_ok()
        {
            for p in &points {
                self.dispatcher.confirm(p);
            }
        }
        let commits = self.dispatcher.release(&partitions);
        if !commits.is_empty() && commit_firmly(self.consumer, &commits).await {
            self.shared.report(Metric::Committed {
                partitions: commits.len(),
            });
        }
        self.consumer.release_revocation();
        self.processor.revoked(&partitions, false);
    }

    /// Commits how far every partition has finished, firmly: the last commit before
    /// the member stops. A periodic commit under way lands first, so this one is last.
    async fn commit(&mut self) {
        if let Some((_, pending)) = self.committing.take() {
            let _ = pending.await;
        }
        let points = self.dispatcher.commit_points();
        if points.is_empty() {
            return;
        }
        if commit_firmly(self.consumer, &points).await {
            for p in &points {
                self.dispatcher.confirm(p);
            }
            self.shared.report(Metric::Committed {
                partitions: points.len(),
            });
        }
    }

    async fn wait(&mut self, stop: &Stop, stopping: bool, wake: Instant) -> Woke {
        let mut stopped = std::pin::pin!(stop.wait());
        let mut fetched = std::pin::pin!(self.consumer.next());
        let mut timer = std::pin::pin!(R::sleep_until(wake));
        let jobs = &mut self.jobs;
        let committing = &mut self.committing;
        std::future::poll_fn(|cx| {
            if !stopping && stopped.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Woke::Stop);
            }
            if let Some((_, pending)) = committing
                && let Poll::Ready(result) = Pin::new(pending).poll(cx)
            {
                let (points, _) = committing.take().expect("a commit under way");
                return Poll::Ready(Woke::Committed(points, result));
            }
            let mut done = Vec::new();
            let mut i = 0;
            while i < jobs.len() {
                if let Poll::Ready(d) = jobs[i].as_mut().poll(cx) {
                    drop(jobs.swap_remove(i));
                    done.push(d);
                } else {
                    i += 1;
                }
            }
            if !done.is_empty() {
                return Poll::Ready(Woke::Jobs(done));
            }
            if let Poll::Ready(f) = fetched.as_mut().poll(cx) {
                return Poll::Ready(Woke::Fetched(f));
            }
            if timer.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Woke::Timer);
            }
            Poll::Pending
        })
        .await
    }
}

/// Commits `offsets`, trying again a few times: the last commit before a partition goes
/// (or the member stops) decides what its next owner processes again.
async fn commit_firmly<R: AsyncRuntime>(
    consumer: &Consumer<R>,
    offsets: &[TopicPartitionOffset],
) -> bool {
    for _ in 0..FIRM_COMMIT_TRIES {
        if consumer.commit(offsets.to_vec()).await.is_ok() {
            return true;
        }
    }
    false
}

/// One record's job: tries until it succeeds or its tries run out, then the dead letter.
async fn run_job<R: AsyncRuntime, P: Processor>(
    shared: Arc<Shared>,
    processor: Arc<P>,
    producer: Option<Producer<R>>,
    record: ConsumerRecord,
    seed: u64,
) -> (ConsumerRecord, Outcome) {
    let mut attempt = attempts_so_far(&record);
    if let Some(due) = retry_due(&record) {
        // A retry topic's record waits out its backoff here: its retry topic's partition
        // (or key) waits, the partition it came from does not. Never longer than the
        // longest backoff, whatever the header says.
        let wait = u64::try_from(due.saturating_sub(R::unix_ms())).unwrap_or(0);
        let wait = Duration::from_millis(wait).min(shared.retry.backoff_max);
        if !wait.is_zero() {
            R::sleep_until(R::now() + wait).await;
        }
    }
    let error = loop {
        attempt += 1;
        let started = R::now();
        let error = match processor.process(&record).await {
            Ok(()) => {
                shared.report(Metric::Processed {
                    topic: record.topic.clone(),
                    elapsed: R::now().saturating_duration_since(started),
                });
                return (record, Outcome::Processed);
            }
            Err(e) => e,
        };
        let decision =
            shared
                .retry
                .decide(error.kind(), attempt, seed.wrapping_add(u64::from(attempt)));
        processor.failed(&record, &error, attempt, decision);
        match decision {
            Decision::Retry(wait) => {
                shared.report(Metric::Retried {
                    topic: record.topic.clone(),
                });
                if let (Some(producer), Some(pattern)) = (&producer, &shared.retry_topic) {
                    let due = R::unix_ms()
                        .saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX));
                    let headers = retry_headers(&record, attempt, due);
                    let topic = pattern.replace("{topic}", &Origin::of(&record).topic);
                    let via_tiers = shared.retry_via_tiers.then_some(due);
                    return match write::<R>(
                        &shared, producer, &topic, &record, &headers, via_tiers, seed,
                    )
                    .await
                    {
                        Ok(()) => (record, Outcome::RetryQueued),
                        Err(e) => (record, Outcome::Failed(e)),
                    };
                }
                R::sleep_until(R::now() + wait).await;
            }
            Decision::DeadLetter => break error,
            Decision::Stop => return (record, Outcome::Failed(error)),
        }
    };
    let (Some(producer), Some(pattern)) = (producer, shared.dead_letter.as_deref()) else {
        return (record, Outcome::Failed(error));
    };
    match dead_letter::<R>(&shared, &producer, pattern, &record, &error, attempt, seed).await {
        Ok(()) => {
            shared.report(Metric::DeadLettered {
                topic: record.topic.clone(),
            });
            (record, Outcome::DeadLettered)
        }
        Err(e) => (record, Outcome::Failed(e)),
    }
}

/// Writes the record to its dead-letter topic, trying again while the failure is
/// retriable (a broker down for a while): the record is committed past only once the
/// dead letter is written.
async fn dead_letter<R: AsyncRuntime>(
    shared: &Shared,
    producer: &Producer<R>,
    pattern: &str,
    record: &ConsumerRecord,
    error: &ProcessError,
    attempts: u32,
    seed: u64,
) -> Result<(), ProcessError> {
    let topic = pattern.replace("{topic}", &Origin::of(record).topic);
    let note = FailureNote {
        group: &shared.group,
        class: error.class(),
        message: error.message(),
        attempts,
    };
    let headers = dead_letter_headers(record, &note, shared.conventions);
    write::<R>(shared, producer, &topic, record, &headers, None, seed).await
}

/// Writes a copy of `record` with `headers` to `topic`, trying again while the failure
/// is retriable (a broker down for a while): the record is committed past only once the
/// copy is written.
async fn write<R: AsyncRuntime>(
    shared: &Shared,
    producer: &Producer<R>,
    topic: &str,
    record: &ConsumerRecord,
    headers: &[(String, Vec<u8>)],
    due_ms: Option<i64>,
    seed: u64,
) -> Result<(), ProcessError> {
    let refs: Vec<(&str, &[u8])> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_slice()))
        .collect();
    let mut out = Record::new(topic).headers(&refs);
    out.key = record.key.as_deref();
    out.value = record.value.as_deref();
    let mut tries = 0u32;
    loop {
        tries += 1;
        let sent = match due_ms {
            // Through the delay tiers: what is left of the wait, however long the tries took.
            Some(due) => {
                let left = u64::try_from(due.saturating_sub(R::unix_ms())).unwrap_or(0);
                producer
                    .send_delayed(out, Duration::from_millis(left))
                    .await
            }
            None => producer.send(out).await,
        };
        let kind = match sent {
            Ok(delivery) => match delivery.await {
                Ok(_) => return Ok(()),
                Err(e) => (FailureKind::of_produce(&e), e.to_string()),
            },
            Err(e) => (FailureKind::of_send(&e), e.to_string()),
        };
        if kind.0 != FailureKind::Retriable {
            return Err(ProcessError::new(
                FailureKind::Terminal,
                "kasio::Write",
                format!("writing to {topic} failed: {}", kind.1),
            ));
        }
        let wait = shared
            .retry
            .backoff(tries, seed.wrapping_add(u64::from(tries)));
        R::sleep_until(R::now() + wait).await;
    }
}
