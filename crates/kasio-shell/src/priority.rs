//! The priority consumer: a group consumer of a topic's priority levels, handing out
//! higher levels first through [`kasio_core::PriorityQueue`].

use crate::{AsyncRuntime, Commit, Consumer, Fetched, Runtime};
use kasio_core::{
    ConfigError, ConsumeError, ConsumerConfig, ConsumerEvent, LevelStats, Priority, PriorityQueue,
};
use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

/// The starvation guard's share unless `priority.min.share` says otherwise.
pub const DEFAULT_MIN_SHARE: f64 = 0.1;

/// Hands every property but `priority.min.share` to `set`; returns that share.
pub(crate) fn with_min_share<'a>(
    props: impl IntoIterator<Item = (&'a str, &'a str)>,
    mut set: impl FnMut(&str, &str) -> Result<(), ConfigError>,
) -> Result<f64, ConfigError> {
    let mut min_share = DEFAULT_MIN_SHARE;
    for (k, v) in props {
        if k == "priority.min.share" {
            min_share = v.parse().map_err(|_| ConfigError::InvalidValue {
                key: k.into(),
                value: v.into(),
                expected: "a share from 0 to 0.3",
            })?;
        } else {
            set(k, v)?;
        }
    }
    Ok(min_share)
}

#[derive(Debug)]
struct State {
    queue: PriorityQueue,
    /// Events to hand out after the queue has seen them.
    events: VecDeque<ConsumerEvent>,
    last_commit: Instant,
}

/// Reads every priority level of its topics (`<topic>.p.critical`, `.high`, `.normal`,
/// `.low`) in one group and hands out higher levels first: a lower level's partitions
/// are paused while a higher level has a backlog, and a starvation guard
/// (`priority.min.share`, 10% by default) hands out a lower level's records whenever it
/// got less than that share of the last 10,000 records. Batches are at most
/// `max.poll.records` (500 unless set) records, so a critical record waits for at most
/// that many of a lower level.
///
/// Offsets: with `enable.auto.commit` (the default) the consumer commits what it handed
/// out before the last [`next`](Self::next), every `auto.commit.interval.ms`, before a
/// partition is revoked and on [`close`](Self::close); otherwise commit
/// [`handed_out`](Self::handed_out) or offsets of your own.
///
/// ```no_run
/// # async fn demo<R: kasio_shell::AsyncRuntime>() -> Result<(), Box<dyn std::error::Error>> {
/// use kasio_shell::{Fetched, PriorityConsumer};
/// let jobs = PriorityConsumer::<R>::from_properties(
///     [("bootstrap.servers", "localhost:9092"), ("group.id", "workers")],
///     &["jobs"],
/// )?;
/// loop {
///     if let Fetched::Batch(batch) = jobs.next().await {
///         batch.for_each(|r| println!("{}: {:?}", batch.topic, r.value))?;
///     }
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct PriorityConsumer<R> {
    consumer: Consumer<R>,
    state: Arc<Mutex<State>>,
    topics: Vec<String>,
    /// Commits what was handed out this often, if set.
    auto_commit: Option<Duration>,
}

impl<R> Clone for PriorityConsumer<R> {
    fn clone(&self) -> Self {
        Self {
            consumer: self.consumer.clone(),
            state: self.state.clone(),
            topics: self.topics.clone(),
            auto_commit: self.auto_commit,
        }
    }
}

impl<R: Runtime> PriorityConsumer<R> {
    /// A priority consumer of `topics`, subscribed to their level topics, on a consumer
    /// built from Java-client property names (`group.id` is required) and
    /// `priority.min.share` (0 to 0.3).
    ///
    /// # Errors
    /// [`ConfigError`] naming a bad value or a missing `group.id`.
    pub fn from_properties<'a>(
        props: impl IntoIterator<Item = (&'a str, &'a str)>,
        topics: &[&str],
    ) -> Result<Self, ConfigError> {
        let mut config = ConsumerConfig::default();
        config.set("max.poll.records", "500")?;
        let min_share = with_min_share(props, |k, v| config.set(k, v).map(|_| ()))?;
        Self::new(config, min_share, topics)
    }

    /// A priority consumer on a consumer of this config (it takes over committing and
    /// revocations: see the type's documentation).
    ///
    /// # Errors
    /// [`ConfigError`] naming a bad value or a missing `group.id`.
    pub fn new(
        mut config: ConsumerConfig,
        min_share: f64,
        topics: &[&str],
    ) -> Result<Self, ConfigError> {
        if config.group_id.is_none() {
            return Err(ConfigError::Conflict(
                "a priority consumer needs a group.id".into(),
            ));
        }
        let queue = PriorityQueue::new(min_share)?;
        let auto_commit = config
            .enable_auto_commit
            .then_some(config.auto_commit_interval);
        config.enable_auto_commit = false;
        config.hold_revocations = true;
        let consumer = Consumer::new(config)?;
        let levels: Vec<String> = topics.iter().flat_map(|t| Priority::topics(t)).collect();
        let refs: Vec<&str> = levels.iter().map(String::as_str).collect();
        consumer
            .subscribe(&refs)
            .map_err(|e| ConfigError::Conflict(e.to_string()))?;
        Ok(Self {
            consumer,
            state: Arc::new(Mutex::new(State {
                queue,
                events: VecDeque::new(),
                last_commit: Instant::now(),
            })),
            topics: levels,
            auto_commit,
        })
    }

    /// The level topics read, highest level first per topic.
    #[must_use]
    pub fn topics(&self) -> &[String] {
        &self.topics
    }

    /// The consumer underneath (for its position, lag and group metadata).
    #[must_use]
    pub fn consumer(&self) -> &Consumer<R> {
        &self.consumer
    }

    /// Records waiting per topic and level: fetched and queued, and the backlog (queued
    /// plus not yet fetched, as of the last fetch).
    #[must_use]
    pub fn stats(&self) -> Vec<LevelStats> {
        self.state().queue.stats()
    }

    /// The offsets after what was handed out, per level partition: what to commit.
    #[must_use]
    pub fn handed_out(&self) -> Vec<kasio_core::TopicPartitionOffset> {
        self.state().queue.handed_out()
    }

    /// Commits what was handed out.
    pub fn commit(&self) -> Commit<R> {
        let offsets = self.handed_out();
        self.consumer.commit(offsets)
    }

    /// Takes what the consumer fetched or reported into the queue; revocations commit
    /// what was handed out of the partitions and let them go.
    fn take(&self, fetched: Fetched) {
        let mut state = self.state();
        match fetched {
            Fetched::Batch(b) => state.queue.push(b),
            Fetched::Event(e) => {
                let commit = state.queue.on_event(&e);
                if matches!(e, ConsumerEvent::Revoking { .. }) {
                    drop(state);
                    if self.auto_commit.is_some() && !commit.is_empty() {
                        // Answered before the revocation completes: no wait here.
                        drop(self.consumer.commit(commit));
                    }
                    self.consumer.release_revocation();
                    state = self.state();
                }
                state.events.push_back(e);
            }
        }
    }

    /// The next batch or event ready, after taking in what the consumer has.
    fn ready(&self) -> Option<Fetched> {
        while let Some(f) = self.consumer.try_next() {
            self.take(f);
        }
        let mut state = self.state();
        if let Some(interval) = self.auto_commit
            && state.last_commit.elapsed() >= interval
        {
            state.last_commit = Instant::now();
            // What went out before this call is done with, as the Java client deems it.
            drop(self.consumer.commit(state.queue.handed_out()));
        }
        let got = match state.events.pop_front() {
            Some(e) => Some(Fetched::Event(e)),
            None => state.queue.pop().map(Fetched::Batch),
        };
        let changes = state.queue.pauses();
        drop(state);
        for (tp, pause) in changes {
            if pause {
                self.consumer.pause([tp]);
            } else {
                self.consumer.resume([tp]);
            }
        }
        got
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl<R: AsyncRuntime> PriorityConsumer<R> {
    /// The next batch, highest level first, or an event of the consumer's, waiting for
    /// one.
    pub async fn next(&self) -> Fetched {
        loop {
            if let Some(got) = self.ready() {
                return got;
            }
            let fetched = self.consumer.next().await;
            self.take(fetched);
        }
    }

    /// Commits what was handed out (with `enable.auto.commit`) and closes the consumer.
    ///
    /// # Errors
    /// The commit's [`ConsumeError`]; the consumer is closed all the same.
    pub async fn close(&self) -> Result<(), ConsumeError> {
        let committed = if self.auto_commit.is_some() {
            self.commit().await
        } else {
            Ok(())
        };
        self.consumer.close().await;
        committed
    }
}
