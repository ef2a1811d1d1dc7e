//! A stream of typed records from one topic to another: `consumer.source().filter(..)
//! .map(..).to_kafka(producer, topic)`, committing each input offset only once what the
//! records before it turned into has been delivered (at least once: after a crash, the
//! records past the last commit are read again, and their outputs may be written twice).

use crate::{
    driver::AsyncRuntime,
    producer::Delivery,
    typed::{Message, Typed, TypedConsumer, TypedError, TypedProducer, TypedSendError},
};
use kasio_core::{ConsumeError, ConsumerEvent, ProduceError, Record, TopicPartitionOffset};
use kasio_serde::{Deserializer, Serializer, TypedRecord};
use std::{
    collections::{BTreeMap, VecDeque},
    sync::Arc,
    time::{Duration, Instant},
};

/// An input partition: its topic and number.
type Partition = (Arc<str>, i32);

/// Which input records are done, per partition, in offset order: a record is done once
/// the output it became is delivered (or at once, if it became none). The offset to
/// commit is the one after the last record of an unbroken run of done ones.
#[derive(Debug)]
pub(crate) struct Progress<D> {
    partitions: BTreeMap<Partition, VecDeque<(i64, Option<D>)>>,
    /// The next offset to commit per partition, once advanced past the last commit.
    ready: BTreeMap<Partition, i64>,
}

impl<D> Default for Progress<D> {
    fn default() -> Self {
        Self {
            partitions: BTreeMap::new(),
            ready: BTreeMap::new(),
        }
    }
}

impl<D> Progress<D> {
    /// Records input `offset` of `tp`, done already (`None`) or once `pending` is.
    pub(crate) fn push(&mut self, tp: (Arc<str>, i32), offset: i64, pending: Option<D>) {
        self.partitions
            .entry(tp)
            .or_default()
            .push_back((offset, pending));
    }

    /// Takes every finished record off the front of each partition, asking `done` of each
    /// pending one (`Ok(true)` delivered, `Ok(false)` not yet); the first failure stops it.
    pub(crate) fn advance<E>(
        &mut self,
        mut done: impl FnMut(&mut D) -> Result<bool, E>,
    ) -> Result<(), E> {
        for (tp, queue) in &mut self.partitions {
            while let Some((offset, pending)) = queue.front_mut() {
                if let Some(d) = pending
                    && !done(d)?
                {
                    break;
                }
                let next = *offset + 1;
                queue.pop_front();
                self.ready.insert(tp.clone(), next);
            }
        }
        Ok(())
    }

    /// The offsets to commit now (and forgets them).
    pub(crate) fn take_ready(&mut self) -> Vec<TopicPartitionOffset> {
        std::mem::take(&mut self.ready)
            .into_iter()
            .map(|((topic, partition), offset)| {
                TopicPartitionOffset::new(&*topic, partition, offset)
            })
            .collect()
    }

    /// The first record still waiting for its output, if any (after `advance`, the
    /// front of every partition that has one).
    pub(crate) fn first_pending(&mut self) -> Option<&mut Option<D>> {
        self.partitions
            .values_mut()
            .filter_map(|q| q.front_mut())
            .map(|(_, pending)| pending)
            .find(|pending| pending.is_some())
    }

    /// Forgets `partitions`' records (the group took them away: their next owner reads
    /// them again from the last commit).
    pub(crate) fn forget(&mut self, partitions: &[kasio_core::TopicPartition]) {
        for tp in partitions {
            let key = (tp.topic.clone(), tp.partition);
            self.partitions.remove(&key);
            self.ready.remove(&key);
        }
    }
}

/// Why a pipeline stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PipelineError {
    /// Reading failed (a bad record under `OnBadRecord::Fail`, the registry out of reach).
    Source(TypedError),
    /// An output could not be sent.
    Send(TypedSendError),
    /// An output was not delivered: its input and those after it are not committed.
    Delivery(ProduceError),
    /// A commit failed.
    Commit(ConsumeError),
    /// The consumer reported an error of the group or a partition.
    Consumer(String),
    /// The transactional session failed (exactly once).
    Transaction(kasio_core::TxnError),
}

impl std::fmt::Display for PipelineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Source(e) => write!(f, "reading: {e}"),
            Self::Send(e) => write!(f, "sending: {e}"),
            Self::Delivery(e) => write!(f, "an output was not delivered: {e}"),
            Self::Commit(e) => write!(f, "committing: {e}"),
            Self::Consumer(e) => write!(f, "consuming: {e}"),
            Self::Transaction(e) => write!(f, "the transaction: {e}"),
        }
    }
}

impl std::error::Error for PipelineError {}

/// What a finished pipeline did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PipelineStats {
    /// Input records read.
    pub read: u64,
    /// Outputs delivered.
    pub written: u64,
    /// Commits made (transactions committed, exactly once).
    pub commits: u64,
    /// Transactions aborted, their records to be read again (exactly once).
    pub aborts: u64,
}

type Step<K, V, T> = Box<dyn FnMut(TypedRecord<K, V>) -> Option<T> + Send>;

/// A typed consumer's records on their way to a topic; see [`TypedConsumer::source`].
pub struct Pipeline<R, K, V, KD, VD, T> {
    consumer: TypedConsumer<R, K, V, KD, VD>,
    step: Step<K, V, T>,
    limit: Option<u64>,
    commit_interval: Duration,
}

impl<R, K, V, KD, VD, T> std::fmt::Debug for Pipeline<R, K, V, KD, VD, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl<R, K: 'static, V: 'static, KD: Deserializer<K>, VD: Deserializer<V>>
    TypedConsumer<R, K, V, KD, VD>
{
    /// The start of a pipeline: this consumer's records, to filter, map and send on with
    /// [`Pipeline::to_kafka`]. The consumer's group commits are the pipeline's (set
    /// `enable.auto.commit=false`, or auto commit may store offsets whose outputs are not
    /// delivered yet).
    ///
    /// ```no_run
    /// # async fn demo<R: kasio_shell::AsyncRuntime>(consumer: kasio_shell::Consumer<R>, producer: kasio_shell::Producer<R>) -> Result<(), kasio_shell::types::PipelineError> {
    /// use kasio_serde::{Json, StringCodec};
    /// use kasio_shell::types::Message;
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct Order { id: u64, total: u64 }
    /// let large = consumer
    ///     .typed(StringCodec, Json::<Order>::new())
    ///     .source()
    ///     .filter(|r| r.value.as_ref().is_some_and(|o| o.total > 1000))
    ///     .map(|r| Message { key: r.key, value: r.value.map(|o| o.id), partition: None })
    ///     .to_kafka(producer.typed(StringCodec, Json::<u64>::new()), "large-orders")
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn source(self) -> Pipeline<R, K, V, KD, VD, TypedRecord<K, V>> {
        Pipeline {
            consumer: self,
            step: Box::new(Some),
            limit: None,
            commit_interval: Duration::from_secs(1),
        }
    }
}

impl<R, K: 'static, V: 'static, KD, VD, T: 'static> Pipeline<R, K, V, KD, VD, T> {
    /// Keeps only what `keep` accepts; the rest is done at once (its offset commits).
    #[must_use]
    pub fn filter(self, mut keep: impl FnMut(&T) -> bool + Send + 'static) -> Self {
        let mut step = self.step;
        Pipeline {
            consumer: self.consumer,
            step: Box::new(move |r| step(r).filter(|t| keep(t))),
            limit: self.limit,
            commit_interval: self.commit_interval,
        }
    }

    /// Turns each item into another.
    #[must_use]
    pub fn map<U: 'static>(
        self,
        mut f: impl FnMut(T) -> U + Send + 'static,
    ) -> Pipeline<R, K, V, KD, VD, U> {
        let mut step = self.step;
        Pipeline {
            consumer: self.consumer,
            step: Box::new(move |r| step(r).map(&mut f)),
            limit: self.limit,
            commit_interval: self.commit_interval,
        }
    }

    /// Stops after `records` input records, once their outputs are delivered and their
    /// offsets committed (by default it runs until an error).
    #[must_use]
    pub fn limit(mut self, records: u64) -> Self {
        self.limit = Some(records);
        self
    }

    /// How often delivered progress is committed (1 s by default, as auto commit).
    #[must_use]
    pub fn commit_interval(mut self, every: Duration) -> Self {
        self.commit_interval = every;
        self
    }
}

impl<R: AsyncRuntime, K, V, KD: Deserializer<K>, VD: Deserializer<V>, K2, V2>
    Pipeline<R, K, V, KD, VD, Message<K2, V2>>
{
    /// Sends every message to `topic` through `producer`, committing the input offsets
    /// whose outputs are delivered; returns when the limit is reached, or on the first
    /// error (what was delivered before it is committed first).
    ///
    /// # Errors
    /// [`PipelineError`]: the records after the last commit are read again by whoever
    /// consumes the partitions next.
    pub async fn to_kafka<KS: Serializer<K2>, VS: Serializer<V2>>(
        mut self,
        mut producer: TypedProducer<R, K2, V2, KS, VS>,
        topic: &str,
    ) -> Result<PipelineStats, PipelineError> {
        let mut progress = Progress::<Delivery<R>>::default();
        let mut stats = PipelineStats::default();
        let mut last_commit = Instant::now();
        let result = loop {
            if self.limit.is_some_and(|n| stats.read >= n) {
                break Ok(());
            }
            if let Err(e) = progress.advance(|d| match d.try_take() {
                None => Ok(false),
                Some(Ok(_)) => {
                    stats.written += 1;
                    Ok(true)
                }
                Some(Err(e)) => Err(PipelineError::Delivery(e)),
            }) {
                break Err(e);
            }
            if last_commit.elapsed() >= self.commit_interval {
                last_commit = Instant::now();
                if let Err(e) = self.commit(&mut progress, &mut stats, false).await {
                    break Err(e);
                }
            }
            // Wake for the next commit even when no record comes.
            let next = self.consumer.next();
            let timer = R::sleep_until(last_commit + self.commit_interval);
            let Some(got) = within(next, timer).await else {
                continue;
            };
            let record = match got {
                Ok(Typed::Record(r)) => r,
                Ok(Typed::Bad(bad)) => {
                    // Handed out under OnBadRecord::Hand: nothing to send, done at once.
                    stats.read += 1;
                    let r = bad.record;
                    progress.push((r.topic.clone(), r.partition), r.offset, None);
                    continue;
                }
                Ok(Typed::Event(
                    ConsumerEvent::Revoking { partitions }
                    | ConsumerEvent::Revoked { partitions }
                    | ConsumerEvent::Lost { partitions },
                )) => {
                    // What is delivered of the partitions going away commits now; the
                    // rest is their next owner's to read again.
                    if let Err(e) = self.settle(&mut progress, &mut stats).await {
                        break Err(e);
                    }
                    progress.forget(&partitions);
                    self.consumer.consumer().release_revocation();
                    continue;
                }
                Ok(Typed::Event(ConsumerEvent::GroupError { error })) => {
                    break Err(PipelineError::Consumer(error.to_string()));
                }
                Ok(Typed::Event(ConsumerEvent::Error {
                    topic: t,
                    partition,
                    error,
                })) => {
                    break Err(PipelineError::Consumer(format!("{t}-{partition}: {error}")));
                }
                Ok(Typed::Event(_)) => continue,
                Err(e) => break Err(PipelineError::Source(e)),
            };
            stats.read += 1;
            let tp = (record.topic.clone(), record.partition);
            let offset = record.offset;
            let delivery = match (self.step)(record) {
                None => None,
                Some(message) => {
                    let mut out = Record::new(topic);
                    if let Some(p) = message.partition {
                        out = out.partition(p);
                    }
                    match producer
                        .send(out, message.key.as_ref(), message.value.as_ref())
                        .await
                    {
                        Ok(d) => Some(d),
                        Err(e) => break Err(PipelineError::Send(e)),
                    }
                }
            };
            progress.push(tp, offset, delivery);
        };
        // Whatever the outcome, what was delivered is committed.
        let settled = self.settle(&mut progress, &mut stats).await;
        result.and(settled).map(|()| stats)
    }

    /// Waits for every output sent, then commits what is delivered.
    async fn settle(
        &mut self,
        progress: &mut Progress<Delivery<R>>,
        stats: &mut PipelineStats,
    ) -> Result<(), PipelineError> {
        let mut failed = None;
        loop {
            let advanced = progress.advance(|d| match d.try_take() {
                None => Ok(false),
                Some(Ok(_)) => {
                    stats.written += 1;
                    Ok(true)
                }
                Some(Err(e)) => Err(e),
            });
            if let Err(e) = advanced {
                failed = Some(e);
                break;
            }
            let Some(slot) = progress.first_pending() else {
                break;
            };
            let Some(delivery) = slot.as_mut() else {
                break;
            };
            let outcome = delivery.await;
            // Awaited: its outcome is taken, so the slot is marked done by hand.
            *slot = None;
            match outcome {
                Ok(_) => stats.written += 1,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        self.commit(progress, stats, true).await?;
        failed.map_or(Ok(()), |e| Err(PipelineError::Delivery(e)))
    }

    async fn commit(
        &mut self,
        progress: &mut Progress<Delivery<R>>,
        stats: &mut PipelineStats,
        wait: bool,
    ) -> Result<(), PipelineError> {
        let offsets = progress.take_ready();
        if offsets.is_empty() {
            return Ok(());
        }
        stats.commits += 1;
        let commit = self.consumer.consumer().commit(offsets);
        if wait {
            commit.await.map_err(PipelineError::Commit)
        } else {
            // Not waited for, as the Java client's commitAsync; the last one is.
            drop(commit);
            Ok(())
        }
    }
}

impl<R: AsyncRuntime, K, V, KD: Deserializer<K>, VD: Deserializer<V>, K2, V2>
    Pipeline<R, K, V, KD, VD, Message<K2, V2>>
{
    /// Sends every message to `topic` through `producer`, exactly once: the outputs of
    /// what is read and the offsets read are committed together in one transaction every
    /// `commit_interval`, or neither (then the records are read again). The consumer must
    /// be in a group with `isolation.level=read_committed` and `enable.auto.commit=false`,
    /// and the producer transactional with `init_transactions` done. With a limit it
    /// stops at the first transaction that reaches it (whole fetched batches belong to a
    /// transaction, so it may read a little past the limit).
    ///
    /// # Errors
    /// [`PipelineError`]: the open transaction is aborted first.
    pub async fn to_kafka_exactly_once<KS: Serializer<K2>, VS: Serializer<V2>>(
        mut self,
        mut producer: TypedProducer<R, K2, V2, KS, VS>,
        topic: &str,
    ) -> Result<PipelineStats, PipelineError> {
        use crate::{consumer::Fetched, session::TransactSession};
        use kasio_core::{Ended, Ending};
        let session = TransactSession::new(self.consumer.consumer(), producer.producer());
        let mut stats = PipelineStats::default();
        // What the open transaction holds, counted into the stats once it commits.
        let (mut read, mut written) = (0u64, 0u64);
        let mut last_commit = Instant::now();
        let result = loop {
            let reached = self.limit.is_some_and(|n| stats.read + read >= n);
            if read > 0 && (reached || last_commit.elapsed() >= self.commit_interval) {
                last_commit = Instant::now();
                match session.end(Ending::TryCommit).await {
                    Ok(Ended::Aborted) => {
                        // The session reads them again from where the transaction began.
                        self.consumer.clear();
                        stats.aborts += 1;
                    }
                    Ok(_) => {
                        stats.commits += 1;
                        stats.read += read;
                        stats.written += written;
                    }
                    Err(e) => break Err(PipelineError::Transaction(e)),
                }
                (read, written) = (0, 0);
                continue;
            }
            if reached {
                break Ok(());
            }
            let timer = R::sleep_until(last_commit + self.commit_interval);
            let Some(got) = within(session.next(), timer).await else {
                continue;
            };
            match got {
                Ok(Fetched::Batch(batch)) => {
                    self.consumer.take(Fetched::Batch(batch));
                    // Every record of the batch is sent before the transaction may end.
                    if let Err(e) = self
                        .drain(&mut producer, topic, &mut read, &mut written)
                        .await
                    {
                        break Err(e);
                    }
                }
                Ok(Fetched::Event(event)) => {
                    if let ConsumerEvent::GroupError { error } = &event {
                        break Err(PipelineError::Consumer(error.to_string()));
                    }
                    // Drops what is queued of partitions going away (the session dooms
                    // the transaction that read them).
                    self.consumer.take(Fetched::Event(event));
                }
                Err(e) => break Err(PipelineError::Transaction(e)),
            }
        };
        if result.is_err() && read > 0 {
            let _ = session.end(Ending::Abort).await;
        }
        result.map(|()| stats)
    }

    /// Decodes, steps and sends every record queued.
    async fn drain<KS: Serializer<K2>, VS: Serializer<V2>>(
        &mut self,
        producer: &mut TypedProducer<R, K2, V2, KS, VS>,
        topic: &str,
        read: &mut u64,
        written: &mut u64,
    ) -> Result<(), PipelineError> {
        use crate::typed::Next;
        loop {
            match self.consumer.turn() {
                Next::Empty => return Ok(()),
                Next::Fetch(id, call) => {
                    let got = call.await;
                    if let Some(e) = self.consumer.fetched(id, got) {
                        return Err(PipelineError::Source(e));
                    }
                }
                Next::Done(Err(e)) => return Err(PipelineError::Source(e)),
                Next::Done(Ok(Typed::Bad(_) | Typed::Event(_))) => *read += 1,
                Next::Done(Ok(Typed::Record(record))) => {
                    *read += 1;
                    let Some(message) = (self.step)(record) else {
                        continue;
                    };
                    let mut out = Record::new(topic);
                    if let Some(p) = message.partition {
                        out = out.partition(p);
                    }
                    // The transaction's commit waits for every record it holds.
                    let delivery = producer
                        .send(out, message.key.as_ref(), message.value.as_ref())
                        .await
                        .map_err(PipelineError::Send)?;
                    drop(delivery);
                    *written += 1;
                }
            }
        }
    }
}

/// The value of `f` if it completes before `timer`.
async fn within<T>(
    f: impl std::future::Future<Output = T>,
    timer: impl std::future::Future<Output = ()>,
) -> Option<T> {
    let mut f = std::pin::pin!(f);
    let mut timer = std::pin::pin!(timer);
    std::future::poll_fn(|cx| {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(cx) {
            return std::task::Poll::Ready(Some(v));
        }
        timer.as_mut().poll(cx).map(|()| None)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_stop_at_the_first_output_not_delivered() {
        let mut p = Progress::<bool>::default();
        let a: (Arc<str>, i32) = (Arc::from("in"), 0);
        let b: (Arc<str>, i32) = (Arc::from("in"), 1);
        p.push(a.clone(), 10, Some(true));
        p.push(a.clone(), 11, None);
        p.push(a.clone(), 12, Some(false));
        p.push(a.clone(), 13, None);
        p.push(b.clone(), 5, None);
        p.advance(|d| Ok::<bool, ()>(*d)).unwrap();
        let ready = p.take_ready();
        assert_eq!(
            ready,
            [
                TopicPartitionOffset::new("in", 0, 12),
                TopicPartitionOffset::new("in", 1, 6)
            ]
        );
        assert!(p.take_ready().is_empty(), "taken once");
        assert_eq!(p.first_pending(), Some(&mut Some(false)));
        // Delivered now: the run goes on past the record that was done early.
        p.advance(|_| Ok::<bool, ()>(true)).unwrap();
        assert_eq!(p.take_ready(), [TopicPartitionOffset::new("in", 0, 14)]);
        assert_eq!(p.first_pending(), None);
        // A failure stops the advance where it is.
        p.push(a.clone(), 14, Some(false));
        assert_eq!(p.advance(|_| Err::<bool, &str>("lost")), Err("lost"));
        assert!(p.take_ready().is_empty());
        p.forget(&[kasio_core::TopicPartition::from(("in", 0))]);
        assert_eq!(p.first_pending(), None);
    }
}
