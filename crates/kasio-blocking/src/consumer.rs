//! The blocking consumer: `poll` with a timeout, or iterate; dropping the last clone
//! leaves the group and closes.

use crate::Threads;
use kasio_shell::{ConfigError, ConsumerConfig, Fetched};
use std::{
    ops::Deref,
    sync::Arc,
    time::{Duration, Instant},
};

/// How long closing waits for the coordinator to confirm that the member left.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(5);

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
        let consumer = &self.0;
        if consumer.in_group() {
            consumer.unsubscribe();
            let deadline = Instant::now() + LEAVE_TIMEOUT;
            while consumer.in_group() && Instant::now() < deadline {
                let _ = consumer.poll(Duration::from_millis(50));
            }
        }
        consumer.close();
    }
}

impl Deref for Consumer {
    type Target = kasio_shell::Consumer<Threads>;

    fn deref(&self) -> &Self::Target {
        &self.inner.0
    }
}

impl Consumer {
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
