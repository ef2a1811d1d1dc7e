//! The blocking share consumer: `poll` with a timeout; dropping the last clone settles
//! what it holds, leaves the group and closes.

use crate::Threads;
use kasio_shell::{ConfigError, ConsumeError, ShareConsumerConfig};
use std::{ops::Deref, sync::Arc};

/// A share-group consumer (KIP-932) driven by a thread of its own. It has every method
/// of [`kasio_shell::ShareConsumer`] ([`poll`](kasio_shell::ShareConsumer::poll) with a
/// timeout, `subscribe`, `commit`, ...). The last clone dropped closes it.
///
/// ```no_run
/// # fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use kasio_blocking::{ShareConsumer, ShareFetched};
/// use std::time::Duration;
/// let queue = ShareConsumer::from_properties([
///     ("bootstrap.servers", "localhost:9092"),
///     ("group.id", "jobs"),
///     ("share.acknowledgement.mode", "explicit"),
/// ])?;
/// queue.subscribe(&["jobs"]);
/// while let Some(ShareFetched::Record(job)) = queue.poll(Duration::from_secs(1)) {
///     job.ack()?;
/// }
/// queue.commit_sync()?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct ShareConsumer {
    inner: Arc<Closing>,
}

/// Closes when the last clone goes.
#[derive(Debug)]
struct Closing(kasio_shell::ShareConsumer<Threads>);

impl Drop for Closing {
    fn drop(&mut self) {
        self.0.close().wait();
    }
}

impl Deref for ShareConsumer {
    type Target = kasio_shell::ShareConsumer<Threads>;

    fn deref(&self) -> &Self::Target {
        &self.inner.0
    }
}

impl ShareConsumer {
    /// Starts a share consumer and its driver thread.
    ///
    /// # Errors
    /// [`ConfigError`] if the settings conflict.
    pub fn new(config: ShareConsumerConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            inner: Arc::new(Closing(kasio_shell::ShareConsumer::new(config)?)),
        })
    }

    /// Starts a share consumer from Java-client property names.
    ///
    /// # Errors
    /// [`ConfigError`] naming an unknown key or bad value.
    pub fn from_properties<'a>(
        props: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            inner: Arc::new(Closing(kasio_shell::ShareConsumer::from_properties(props)?)),
        })
    }

    /// Sends every acknowledgement made so far and blocks until the broker answered, as
    /// the Java client's `commitSync`.
    ///
    /// # Errors
    /// The first acknowledgement that failed; [`ConsumeError::CommitTimeout`].
    pub fn commit_sync(&self) -> Result<(), ConsumeError> {
        self.inner.0.commit().wait()
    }

    /// Settles what it holds, leaves the group and closes, blocking until done (at most
    /// 5 s).
    pub fn close(&self) {
        self.inner.0.close().wait();
    }
}
