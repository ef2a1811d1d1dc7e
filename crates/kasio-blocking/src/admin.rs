//! The blocking admin client: every call returns a [`Call`](crate::Call) to wait for,
//! and `close` blocks until the driver has stopped.

use crate::Threads;
use kasio_shell::{AdminConfig, ConfigError};
use std::ops::Deref;

/// A Kafka admin client on a thread of its own; every call returns a [`Call`](crate::Call)
/// to [`wait`](kasio_shell::Call::wait) for. It has every method of [`kasio_shell::Admin`].
///
/// ```no_run
/// # fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let admin = kasio_blocking::Admin::from_properties([("bootstrap.servers", "localhost:9092")])?;
/// let cluster = admin.describe_cluster().wait()?;
/// println!("{} brokers", cluster.brokers.len());
/// admin.close();
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Admin(kasio_shell::Admin<Threads>);

impl Deref for Admin {
    type Target = kasio_shell::Admin<Threads>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Admin {
    /// Starts an admin client and its driver thread.
    ///
    /// # Errors
    /// [`ConfigError`] if the settings conflict.
    pub fn new(config: AdminConfig) -> Result<Self, ConfigError> {
        kasio_shell::Admin::new(config).map(Self)
    }

    /// Starts an admin client from Java-client property names.
    ///
    /// # Errors
    /// [`ConfigError`] naming an unknown key or bad value.
    pub fn from_properties<'a>(
        props: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ConfigError> {
        kasio_shell::Admin::from_properties(props).map(Self)
    }

    /// Fails the operations still running and stops the driver, blocking until it has.
    pub fn close(&self) {
        self.0.close().wait();
    }
}
