//! The blocking consumer: `poll` with a timeout, or iterate; dropping the last clone
//! leaves the group and closes.

use crate::{Commit, Threads};
use kasio_shell::{ConfigError, ConsumeError, ConsumerConfig, Fetched, TopicPartitionOffset};
use std::{ops::Deref, sync::Arc, time::Duration};

/// A Kafka consumer driven by a thread of its own. It has every method of
/// [`kasio_shell::Consumer`] (assign, subscribe, seek, commit, [`poll`](kasio_shell::Consumer::poll)
/// with a timeout, ...) and iterates over fetched batches and events. The last clone
/// dropped leaves its group and closes.
///
/// ```no_run
/// # fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use kasio_blocking::{Consumer, Fetched, Seek};
/// let consumer = Consumer::from_properties([("bootstrap.servers", "localhost:9092")])?;
/// consumer.assign(&[("orders", 0)]);
/// consumer.seek("orders", 0, Seek::Beginning);
/// for fetched in consumer.records() {
///     if let Fetched::Batch(batch) = fetched {
///         batch.for_each(|r| println!("{} {:?}", r.offset, r.value))?;
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Consumer {
    inner: Arc<Leaving>,
}

/// Leaves and closes when the last clone goes.
#[derive(Debug)]
struct Leaving(kasio_shell::Consumer<Threads>);

impl Drop for Leaving {
    fn drop(&mut self) {
        self.0.close().wait();
    }
}

impl Deref for Consumer {
    type Target = kasio_shell::Consumer<Threads>;

    fn deref(&self) -> &Self::Target {
        &self.inner.0
    }
}

impl Consumer {
    /// A typed consumer reading keys with `key` and values with `value`; see
    /// [`kasio_shell::TypedConsumer`]. It reads through this consumer, which must stay
    /// open (this handle or a clone alive) while it is used.
    pub fn typed<K, V, KD, VD>(
        &self,
        key: KD,
        value: VD,
    ) -> kasio_shell::TypedConsumer<Threads, K, V, KD, VD>
    where
        KD: kasio_serde::Deserializer<K>,
        VD: kasio_serde::Deserializer<V>,
    {
        self.inner.0.clone().typed(key, value)
    }

    /// Starts a consumer and its driver thread.
    ///
    /// # Errors
    /// [`ConfigError`] if the settings conflict.
    pub fn new(config: ConsumerConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            inner: Arc::new(Leaving(kasio_shell::Consumer::new(config)?)),
        })
    }

    /// Starts a consumer from Java-client property names.
    ///
    /// # Errors
    /// [`ConfigError`] naming an unknown key or bad value.
    pub fn from_properties<'a>(
        props: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            inner: Arc::new(Leaving(kasio_shell::Consumer::from_properties(props)?)),
        })
    }

    /// Commits offsets for the group and blocks until they are stored, as the Java
    /// client's `commitSync`; each is the offset of the next record to read.
    ///
    /// # Errors
    /// [`ConsumeError::NoGroup`] without a `group.id`; the coordinator's error;
    /// [`ConsumeError::CommitTimeout`] after `default.api.timeout.ms`.
    pub fn commit<O: Into<TopicPartitionOffset>>(
        &self,
        offsets: impl IntoIterator<Item = O>,
    ) -> Result<(), ConsumeError> {
        self.inner.0.commit(offsets).wait()
    }

    /// Commits offsets without waiting, as the Java client's `commitAsync`: the returned
    /// [`Commit`] can be waited for later, or dropped.
    pub fn commit_async<O: Into<TopicPartitionOffset>>(
        &self,
        offsets: impl IntoIterator<Item = O>,
    ) -> Commit {
        self.inner.0.commit(offsets)
    }

    /// Commits the position of every assigned partition and blocks until it is stored.
    ///
    /// # Errors
    /// As [`commit`](Self::commit).
    pub fn commit_positions(&self) -> Result<(), ConsumeError> {
        self.inner.0.commit_positions().wait()
    }

    /// Leaves the group, if in one (with `enable.auto.commit`, committing what was handed
    /// out first), and closes, blocking until done (at most 5 s for the coordinator).
    pub fn close(&self) {
        self.inner.0.close().wait();
    }

    /// An endless iterator of fetched batches and events, each waited for.
    #[must_use]
    pub fn records(&self) -> Records<'_> {
        Records { consumer: self }
    }
}

/// Fetched batches and events, blocking for each; see [`Consumer::records`].
#[derive(Debug)]
pub struct Records<'a> {
    consumer: &'a Consumer,
}

impl Iterator for Records<'_> {
    type Item = Fetched;

    fn next(&mut self) -> Option<Fetched> {
        loop {
            if let Some(f) = self.consumer.poll(Duration::from_secs(3600)) {
                return Some(f);
            }
        }
    }
}

impl<'a> IntoIterator for &'a Consumer {
    type Item = Fetched;
    type IntoIter = Records<'a>;

    fn into_iter(self) -> Records<'a> {
        self.records()
    }
}
