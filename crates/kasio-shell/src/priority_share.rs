//! The priority share consumer: members of one share group, one per priority level,
//! handing out higher levels first through [`kasio_core::PriorityShareQueue`].

use crate::{Acquired, AsyncRuntime, Runtime, ShareConsumer, ShareFetched};
use kasio_core::{
    AcknowledgeType, AcknowledgementMode, ConfigError, ConsumeError, Priority, PriorityShareQueue,
    ShareConsumerConfig, ShareEvent, ShareLevelStats,
};
use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, MutexGuard},
};

/// A record handed out in implicit mode: accepted by the next read unless settled.
#[derive(Debug)]
struct Outstanding {
    rank: usize,
    topic: Arc<str>,
    partition: i32,
    offset: i64,
}

#[derive(Debug)]
struct State<R> {
    queue: PriorityShareQueue<Acquired<R>>,
    events: VecDeque<ShareEvent>,
    outstanding: Vec<Outstanding>,
}

/// Reads every priority level of its topics (`<topic>.p.critical`, `.high`, `.normal`,
/// `.low`) in one share group and hands out higher levels first: a queue with
/// priorities, many processes reading it, each record settled on its own.
///
/// A share group cannot pause partitions and locks each acquired record to its member,
/// so each level has a member of its own in the group, and a lower level's member stops
/// fetching once it holds records while a higher level has a backlog: it holds at most
/// one fetch (`max.poll.records`, 500 unless set), whose locks are renewed halfway
/// through while they wait (the group must set `share.renew.acknowledge.enable`; a
/// record whose lock ran out anyway is not handed out, and the group delivers it
/// again). The starvation guard (`priority.min.share`, 10% by default) hands out a lower
/// level's records whenever it got no more than that share of the last 10,000 records.
///
/// `share.acknowledgement.mode` works as on a [`ShareConsumer`]: in implicit mode (the
/// default) a record not settled is accepted by the next read; in explicit mode settle
/// each with [`Acquired::ack`] and the like.
///
/// ```no_run
/// # async fn demo<R: kasio_shell::AsyncRuntime>() -> Result<(), Box<dyn std::error::Error>> {
/// use kasio_shell::{PriorityShareConsumer, ShareFetched};
/// let jobs = PriorityShareConsumer::<R>::from_properties(
///     [
///         ("bootstrap.servers", "localhost:9092"),
///         ("group.id", "workers"),
///         ("share.acknowledgement.mode", "explicit"),
///     ],
///     &["jobs"],
/// )?;
/// while let ShareFetched::Record(job) = jobs.next().await {
///     println!("{:?}", job.record().value);
///     job.ack()?;
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct PriorityShareConsumer<R> {
    /// One member per level, highest first.
    members: Arc<[ShareConsumer<R>]>,
    state: Arc<Mutex<State<R>>>,
    topics: Vec<String>,
    implicit: bool,
}

impl<R> Clone for PriorityShareConsumer<R> {
    fn clone(&self) -> Self {
        Self {
            members: self.members.clone(),
            state: self.state.clone(),
            topics: self.topics.clone(),
            implicit: self.implicit,
        }
    }
}

impl<R: Runtime> PriorityShareConsumer<R> {
    /// A priority share consumer of `topics` from Java-client property names
    /// (`group.id` is required) and `priority.min.share` (0 to 0.3).
    ///
    /// # Errors
    /// [`ConfigError`] naming a bad value or a missing `group.id`.
    pub fn from_properties<'a>(
        props: impl IntoIterator<Item = (&'a str, &'a str)>,
        topics: &[&str],
    ) -> Result<Self, ConfigError> {
        let mut config = ShareConsumerConfig::default();
        let min_share =
            crate::priority::with_min_share(props, |k, v| config.set(k, v).map(|_| ()))?;
        Self::new(config, min_share, topics)
    }

    /// A priority share consumer of `topics`: one member of `config`'s group per level.
    ///
    /// # Errors
    /// [`ConfigError`] naming a bad value or a missing `group.id`.
    pub fn new(
        mut config: ShareConsumerConfig,
        min_share: f64,
        topics: &[&str],
    ) -> Result<Self, ConfigError> {
        if config.group_id.is_empty() {
            return Err(ConfigError::Conflict(
                "a priority share consumer needs a group.id".into(),
            ));
        }
        let max_held = usize::try_from(config.max_poll_records).unwrap_or(1);
        let queue = PriorityShareQueue::new(min_share, max_held)?;
        let implicit = config.acknowledgement_mode == AcknowledgementMode::Implicit;
        // The members hand records to this consumer, not to the caller: the caller's
        // implicit mode is kept here.
        config.acknowledgement_mode = AcknowledgementMode::Explicit;
        let mut members = Vec::with_capacity(Priority::ALL.len());
        for level in Priority::ALL {
            let member = ShareConsumer::new(config.clone())?;
            let level_topics: Vec<String> = topics.iter().map(|t| level.topic(t)).collect();
            let refs: Vec<&str> = level_topics.iter().map(String::as_str).collect();
            member.subscribe(&refs);
            members.push(member);
        }
        Ok(Self {
            members: members.into(),
            state: Arc::new(Mutex::new(State {
                queue,
                events: VecDeque::new(),
                outstanding: Vec::new(),
            })),
            topics: topics.iter().flat_map(|t| Priority::topics(t)).collect(),
            implicit,
        })
    }
}

impl<R> PriorityShareConsumer<R> {
    /// The level topics read, highest level first per topic.
    #[must_use]
    pub fn topics(&self) -> &[String] {
        &self.topics
    }

    /// The group member reading `level` (for its member id and assignment).
    #[must_use]
    pub fn member(&self, level: Priority) -> &ShareConsumer<R> {
        &self.members[level.rank()]
    }

    /// Records held, handed out and let go (their lock ran out) per level, highest
    /// first.
    #[must_use]
    pub fn stats(&self) -> Vec<ShareLevelStats> {
        self.state().queue.stats()
    }

    /// The next record or event if one is ready, without waiting. In implicit mode,
    /// asking for the next record accepts the ones handed out before.
    #[must_use]
    pub fn try_next(&self) -> Option<ShareFetched<R>> {
        let now = self.members[0].now();
        let mut state = self.state();
        self.accept_outstanding(&mut state);
        for (rank, member) in self.members.iter().enumerate() {
            let level = Priority::ALL[rank];
            while let Some(got) = member.try_next() {
                match got {
                    ShareFetched::Record(r) => {
                        let lock_until = r.lock_until();
                        state.queue.push(level, r, lock_until, now);
                    }
                    ShareFetched::Event(e) => state.events.push_back(e),
                }
            }
            state.queue.set_drained(level, member.is_drained());
        }
        state.queue.renew_due(now, |r| r.renew().is_ok());
        let got = match state.events.pop_front() {
            Some(e) => Some(ShareFetched::Event(e)),
            None => state.queue.pop(now).map(|(level, r)| {
                if self.implicit {
                    let rec = r.record();
                    state.outstanding.push(Outstanding {
                        rank: level.rank(),
                        topic: rec.topic.clone(),
                        partition: rec.partition,
                        offset: rec.offset,
                    });
                }
                ShareFetched::Record(r)
            }),
        };
        for (level, on) in state.queue.fetching() {
            self.members[level.rank()].set_fetching(on);
        }
        got
    }

    /// In implicit mode, accepts what was handed out and not settled since.
    fn accept_outstanding(&self, state: &mut State<R>) {
        for o in state.outstanding.drain(..) {
            // Settled by the caller already: nothing left to accept.
            let _ = self.members[o.rank].settle(
                &o.topic,
                o.partition,
                o.offset,
                AcknowledgeType::Accept,
            );
        }
    }

    fn state(&self) -> MutexGuard<'_, State<R>> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl<R: AsyncRuntime> PriorityShareConsumer<R> {
    /// The next record, highest level first, or an event of a member's, waiting for
    /// one.
    pub async fn next(&self) -> ShareFetched<R> {
        loop {
            let listeners: Vec<_> = self.members.iter().map(ShareConsumer::listen).collect();
            if let Some(got) = self.try_next() {
                return got;
            }
            let renewal = self.state().queue.next_renewal();
            // Held records' locks are renewed on time even when no member has news.
            let mut timer = std::pin::pin!(async {
                match renewal {
                    Some(at) => R::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            });
            let mut listeners = listeners;
            std::future::poll_fn(|cx| {
                for l in &mut listeners {
                    if std::pin::Pin::new(l).poll(cx).is_ready() {
                        return std::task::Poll::Ready(());
                    }
                }
                timer.as_mut().poll(cx)
            })
            .await;
        }
    }

    /// Sends every acknowledgement made so far (in implicit mode, accepting what was
    /// handed out) and waits for the broker's answers.
    ///
    /// # Errors
    /// The first member's error, as [`ShareConsumer::commit`].
    pub async fn commit(&self) -> Result<(), ConsumeError> {
        self.accept_outstanding(&mut self.state());
        let commits: Vec<_> = self.members.iter().map(ShareConsumer::commit).collect();
        let mut first = Ok(());
        for c in commits {
            let result = c.await;
            if first.is_ok() {
                first = result;
            }
        }
        first
    }

    /// Settles what was handed out (accepted in implicit mode, released in explicit
    /// mode, as a share consumer does), releases what is held, and closes every member.
    pub async fn close(&self) {
        let held = {
            let mut state = self.state();
            self.accept_outstanding(&mut state);
            state.queue.drain()
        };
        for r in held {
            // Released so another member gets it at once rather than after its lock.
            let _ = r.release();
        }
        let closing: Vec<_> = self.members.iter().map(ShareConsumer::close).collect();
        for c in closing {
            c.await;
        }
    }
}
