//! The delay relay's loop: a read_committed group consumer of the delay tiers and a
//! transactional producer, driven by [`kasio_core::DelayRelay`].

use crate::{AsyncRuntime, Consumer, Fetched, Producer, Runtime, delay::unix_ms};
use kasio_core::{
    ConfigError, ConsumeError, ConsumerConfig, ConsumerEvent, DelayTiers, ProducerConfig,
    SendError, TxnError, TxnState,
};
use std::{
    future::Future,
    sync::{Arc, Mutex, MutexGuard},
    task::Poll,
    time::{Duration, Instant, SystemTime},
};

/// Why the relay stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RelayError {
    /// The producer's transaction failed for good (fenced by a newer relay with the same
    /// `transactional.id`, say).
    Transaction(TxnError),
    /// A record could not be written.
    Send(SendError),
    /// The consumer failed for good.
    Consume(ConsumeError),
    /// TLS or SASL failed.
    Security(kasio_core::SecurityError),
    /// A tier's batch did not decode.
    Corrupt(String),
    /// The consumer has no `group.id`: the tiers' offsets could not commit.
    NoGroup,
}

impl std::fmt::Display for RelayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Transaction(e) => write!(f, "delay relay transaction failed: {e}"),
            Self::Send(e) => write!(f, "delay relay could not write a record: {e}"),
            Self::Consume(e) => write!(f, "delay relay consumer failed: {e}"),
            Self::Security(e) => write!(f, "delay relay could not connect: {e}"),
            Self::Corrupt(e) => write!(f, "a delay tier batch did not decode: {e}"),
            Self::NoGroup => f.write_str("the delay relay's consumer needs a group.id"),
        }
    }
}

impl std::error::Error for RelayError {}

/// What the relay has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayCounters {
    /// Records delivered to their topics (in committed transactions).
    pub delivered: u64,
    /// Records moved to a shorter tier (in committed transactions).
    pub moved: u64,
    /// Transactions committed.
    pub commits: u64,
    /// Transactions aborted (their records were forwarded again).
    pub aborts: u64,
}

/// Records waiting in one delay tier, as the relay sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierStats {
    /// The tier topic.
    pub topic: String,
    /// The tier's length.
    pub length: Duration,
    /// Records in the tier not yet forwarded (held by the relay, or not yet fetched).
    pub pending: i64,
    /// When the earliest record the relay holds is due at its topic.
    pub next_due: Option<SystemTime>,
}

#[derive(Debug, Default)]
struct State {
    counters: RelayCounters,
    /// Forwards in the open transaction: (delivered, moved).
    open: (u64, u64),
}

/// Moves delayed records through the delay tiers to their topics, exactly once: each
/// tier partition is read with the partition paused until its head is ready, and every
/// forward is written in a transaction that also commits the tiers' offsets. Run as
/// many relays as the tiers have partitions, in one group, each with its own stable
/// `transactional.id` (a restarted relay fences and aborts what its predecessor left
/// open); the tiers must be the producers' `delay.tiers`.
///
/// ```no_run
/// # async fn demo<R: kasio_shell::AsyncRuntime>() -> Result<(), Box<dyn std::error::Error>> {
/// use kasio_shell::DelayRelay;
/// let relay = DelayRelay::<R>::from_properties(
///     [("bootstrap.servers", "localhost:9092"), ("transactional.id", "relay-0")],
///     &["reminders"],
/// )?;
/// relay.run(std::future::pending::<()>()).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct DelayRelay<R> {
    consumer: Consumer<R>,
    producer: Producer<R>,
    core: Arc<Mutex<kasio_core::DelayRelay>>,
    state: Arc<Mutex<State>>,
    commit_interval: Duration,
    owned: bool,
}

impl<R> Clone for DelayRelay<R> {
    fn clone(&self) -> Self {
        Self {
            consumer: self.consumer.clone(),
            producer: self.producer.clone(),
            core: self.core.clone(),
            state: self.state.clone(),
            commit_interval: self.commit_interval,
            owned: self.owned,
        }
    }
}

/// The group the relay's consumer joins unless told otherwise.
pub const DEFAULT_RELAY_GROUP: &str = "kasio-delay-relay";

impl<R: Runtime> DelayRelay<R> {
    /// A relay for the records delayed for `topics`, on a consumer and a producer built
    /// from Java-client property names: both take what applies to them (`group.id`
    /// defaults to `kasio-delay-relay`, `transactional.id` to `<group.id>-0`,
    /// `transaction.timeout.ms` to 10 s), and the relay sets what it needs
    /// (read_committed, no auto-commit, the earliest offsets). `delay.tiers` names the
    /// tiers and `commit.interval.ms` (100 by default) how long a transaction stays open.
    ///
    /// # Errors
    /// [`ConfigError`] naming a bad value.
    pub fn from_properties<'a>(
        props: impl IntoIterator<Item = (&'a str, &'a str)>,
        topics: &[&str],
    ) -> Result<Self, ConfigError> {
        let mut consumer = ConsumerConfig::default();
        let mut producer = ProducerConfig::default();
        producer.transaction_timeout = Duration::from_secs(10);
        consumer.set("group.id", DEFAULT_RELAY_GROUP)?;
        let mut commit_interval = Duration::from_millis(100);
        let mut transactional_id = None;
        for (k, v) in props {
            match k {
                "commit.interval.ms" => {
                    commit_interval = Duration::from_millis(v.parse().map_err(|_| {
                        ConfigError::InvalidValue {
                            key: k.into(),
                            value: v.into(),
                            expected: "milliseconds",
                        }
                    })?);
                }
                "transactional.id" => transactional_id = Some(v.to_string()),
                _ => {
                    crate::props::set_either(&mut consumer, &mut producer, k, v)?;
                }
            }
        }
        let group = consumer.group_id.clone().unwrap_or_default();
        producer.set(
            "transactional.id",
            &transactional_id.unwrap_or_else(|| format!("{group}-0")),
        )?;
        consumer.set("isolation.level", "read_committed")?;
        consumer.set("enable.auto.commit", "false")?;
        consumer.set("auto.offset.reset", "earliest")?;
        consumer.hold_revocations = true;
        let tiers = producer.delay_tiers.clone();
        let consumer = Consumer::new(consumer)?;
        let producer = Producer::new(producer)?;
        let mut relay = Self::with_tiers(&consumer, &producer, tiers, topics);
        relay.commit_interval = commit_interval;
        relay.owned = true;
        Ok(relay)
    }

    /// A relay on a consumer and a transactional producer of the caller's (clones of the
    /// handles; the caller closes them). The consumer should have a `group.id`,
    /// `isolation.level=read_committed`, `enable.auto.commit=false` and
    /// `hold_revocations`; the tiers are the producer's `delay.tiers`.
    #[must_use]
    pub fn new(consumer: &Consumer<R>, producer: &Producer<R>, topics: &[&str]) -> Self {
        let tiers = producer.delay_tiers();
        Self::with_tiers(consumer, producer, tiers, topics)
    }

    fn with_tiers(
        consumer: &Consumer<R>,
        producer: &Producer<R>,
        tiers: DelayTiers,
        topics: &[&str],
    ) -> Self {
        Self {
            consumer: consumer.clone(),
            producer: producer.clone(),
            core: Arc::new(Mutex::new(kasio_core::DelayRelay::new(tiers, topics))),
            state: Arc::default(),
            commit_interval: Duration::from_millis(100),
            owned: false,
        }
    }

    /// The tier topics the relay reads (they must exist: create them with the target
    /// topic's partition count or fewer).
    #[must_use]
    pub fn topics(&self) -> Vec<String> {
        self.core().topics().to_vec()
    }

    /// What the relay has done so far.
    #[must_use]
    pub fn counters(&self) -> RelayCounters {
        self.state().counters
    }

    /// Records waiting per tier partition the relay holds: those fetched and held plus
    /// those not yet fetched, and the earliest due time among those held, summed by tier.
    #[must_use]
    pub fn stats(&self) -> Vec<TierStats> {
        let core = self.core();
        let tiers = core.tiers().clone();
        let mut out: Vec<TierStats> = Vec::new();
        for p in core.stats() {
            let lag = self.consumer.lag(&p.topic, p.partition).unwrap_or(0);
            let due = p
                .head_due_ms
                .map(|ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms.max(0).unsigned_abs()));
            let entry = match out.iter_mut().find(|t| *t.topic == *p.topic) {
                Some(e) => e,
                None => {
                    out.push(TierStats {
                        topic: p.topic.to_string(),
                        length: Duration::from_millis(tiers.length_ms(p.tier).unsigned_abs()),
                        pending: 0,
                        next_due: None,
                    });
                    let last = out.len() - 1;
                    &mut out[last]
                }
            };
            entry.pending += i64::try_from(p.held).unwrap_or(i64::MAX) + lag;
            entry.next_due = match (entry.next_due, due) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        out
    }

    fn core(&self) -> MutexGuard<'_, kasio_core::DelayRelay> {
        self.core
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What woke the relay's loop.
enum Woke {
    Fetched(Fetched),
    Timer,
    Stop,
}

impl<R: AsyncRuntime> DelayRelay<R> {
    /// Relays until `stop` completes, then commits what it forwarded (and, if it built
    /// its own consumer and producer, closes them).
    ///
    /// # Errors
    /// [`RelayError`] when the relay cannot go on; what it forwarded in the open
    /// transaction is aborted and forwarded again by the next relay.
    pub async fn run(&self, stop: impl Future<Output = ()>) -> Result<RelayCounters, RelayError> {
        let result = self.relay(stop).await;
        if result.is_err() && self.producer.transaction_state() == Some(TxnState::InTransaction) {
            let _ = self.producer.abort_transaction().settled().await;
        }
        if self.owned {
            self.consumer.close().await;
            self.producer.close().await;
        }
        result.map(|()| self.counters())
    }

    async fn relay(&self, stop: impl Future<Output = ()>) -> Result<(), RelayError> {
        self.producer
            .init_transactions()
            .settled()
            .await
            .map_err(RelayError::Transaction)?;
        let topics = self.topics();
        let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
        self.consumer
            .subscribe(&topics)
            .map_err(RelayError::Consume)?;
        let mut stop = std::pin::pin!(stop);
        let mut opened: Option<Instant> = None;
        loop {
            self.forward(&mut opened).await?;
            if let Some(at) = opened
                && at.elapsed() >= self.commit_interval
            {
                self.end().await?;
                opened = None;
            }
            let now_ms = unix_ms(SystemTime::now());
            let mut wake = opened.map(|at| at + self.commit_interval);
            if let Some(ready) = self.core().next_ready() {
                let at = Instant::now()
                    + Duration::from_millis(ready.saturating_sub(now_ms).max(0).unsigned_abs());
                wake = Some(wake.map_or(at, |w| w.min(at)));
            }
            let woke = {
                let mut fetched = std::pin::pin!(self.consumer.next());
                let mut timer = std::pin::pin!(async {
                    match wake {
                        Some(at) => R::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                });
                std::future::poll_fn(|cx| {
                    if stop.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Woke::Stop);
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
            };
            match woke {
                Woke::Stop => return self.end().await,
                Woke::Timer => {}
                Woke::Fetched(Fetched::Batch(batch)) => {
                    self.core()
                        .take(&batch)
                        .map_err(|e| RelayError::Corrupt(e.to_string()))?;
                }
                Woke::Fetched(Fetched::Event(event)) => {
                    if self.on_event(&event).await? {
                        opened = None;
                    }
                }
            }
        }
    }

    /// Handles a consumer event; whether the open transaction ended.
    async fn on_event(&self, event: &ConsumerEvent) -> Result<bool, RelayError> {
        match event {
            ConsumerEvent::Revoking { .. } => {
                // Commit while the partitions are still ours, then let them go.
                self.end().await?;
                self.core().on_event(event);
                self.consumer.release_revocation();
                Ok(true)
            }
            ConsumerEvent::Security(e) => Err(RelayError::Security(e.clone())),
            _ => {
                if self.core().on_event(event) {
                    self.abort().await?;
                    return Ok(true);
                }
                Ok(false)
            }
        }
    }

    /// Writes every forward that is ready, opening a transaction for the first.
    async fn forward(&self, opened: &mut Option<Instant>) -> Result<(), RelayError> {
        loop {
            let now_ms = unix_ms(SystemTime::now());
            let Some(f) = self.core().poll(now_ms) else {
                break;
            };
            if self.producer.transaction_state() != Some(TxnState::InTransaction) {
                self.producer
                    .begin_transaction()
                    .map_err(RelayError::Transaction)?;
            }
            opened.get_or_insert_with(Instant::now);
            let headers = f.header_refs();
            let record = f.record(&headers);
            match self.producer.send(record).await {
                // The transaction's commit reports a failed record.
                Ok(_delivery) => {}
                Err(SendError::Invalid(_)) => {
                    // The transaction cannot take it (abortable): forward it again later.
                    self.abort().await?;
                    *opened = None;
                    return Ok(());
                }
                Err(e) => return Err(RelayError::Send(e)),
            }
            let mut state = self.state();
            if f.delivers {
                state.open.0 += 1;
            } else {
                state.open.1 += 1;
            }
        }
        while let Some((tp, pause)) = self.core().poll_pause() {
            if pause {
                self.consumer.pause([tp]);
            } else {
                self.consumer.resume([tp]);
            }
        }
        Ok(())
    }

    /// Commits the open transaction with the tiers' offsets, or aborts it if it may not.
    async fn end(&self) -> Result<(), RelayError> {
        let offsets = self.core().offsets();
        if offsets.is_empty() {
            return Ok(());
        }
        let group = self.consumer.group_metadata().ok_or(RelayError::NoGroup)?;
        let offsets: Vec<(&str, i32, i64)> =
            offsets.iter().map(|(t, p, o)| (&**t, *p, *o)).collect();
        let mut result = self
            .producer
            .send_offsets_to_transaction(&offsets, group)
            .settled()
            .await;
        if result.is_ok() {
            result = self.producer.commit_transaction().settled().await;
        }
        match result {
            Ok(()) => {
                self.core().committed();
                let mut state = self.state();
                let (delivered, moved) = std::mem::take(&mut state.open);
                state.counters.delivered += delivered;
                state.counters.moved += moved;
                state.counters.commits += 1;
                Ok(())
            }
            Err(TxnError::Abortable { .. }) => self.abort().await,
            Err(e) => Err(RelayError::Transaction(e)),
        }
    }

    /// Aborts the open transaction; its tiers' records are read and forwarded again.
    async fn abort(&self) -> Result<(), RelayError> {
        self.producer
            .abort_transaction()
            .settled()
            .await
            .map_err(RelayError::Transaction)?;
        let seeks = self.core().aborted();
        for (topic, partition, offset) in seeks {
            self.consumer
                .seek(&topic, partition, kasio_core::Seek::Offset(offset));
        }
        let mut state = self.state();
        state.open = (0, 0);
        state.counters.aborts += 1;
        Ok(())
    }
}
