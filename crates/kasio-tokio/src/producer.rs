//! The producer handle: cloneable, usable from any task.

use crate::driver::{self, Shared, Token};
use kasio_core::{ConfigError, ProduceError, ProducerConfig, Record, RecordMetadata, SendError};
use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};
use tokio::sync::oneshot;

/// A Kafka producer on tokio. Clones share one core and one set of connections.
///
/// The core sits behind a mutex rather than a channel: `send` encodes the record straight
/// into its batch under the lock, so a record is copied once and never queued as a message.
/// The driver task takes the same lock only to feed input and drain output.
#[derive(Clone, Debug)]
pub struct Producer {
    shared: Arc<Shared>,
}

/// Resolves to a record's delivery result.
#[derive(Debug)]
#[must_use = "a delivery reports whether the record was written"]
pub struct Delivery {
    rx: oneshot::Receiver<Result<RecordMetadata, ProduceError>>,
}

impl Future for Delivery {
    type Output = Result<RecordMetadata, ProduceError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(ProduceError::Closed)))
    }
}

impl Producer {
    /// Starts a producer; its driver runs on the current tokio runtime.
    ///
    /// # Errors
    /// [`ConfigError`] if the settings conflict.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn new(config: ProducerConfig) -> Result<Self, ConfigError> {
        let shared = driver::start(config)?;
        Ok(Self { shared })
    }

    /// Starts a producer from Java-client property names.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), kasio_tokio::ConfigError> {
    /// let p = kasio_tokio::Producer::from_properties([
    ///     ("bootstrap.servers", "localhost:9092"),
    ///     ("linger.ms", "10"),
    ///     ("compression.type", "lz4"),
    /// ])?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`ConfigError`] naming an unknown key or bad value.
    pub fn from_properties<'a>(
        props: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ConfigError> {
        let mut config = ProducerConfig::default();
        for (k, v) in props {
            config.set(k, v)?;
        }
        Self::new(config)
    }

    /// Buffers a record, waiting up to `max.block.ms` for room, and returns the future of
    /// its delivery.
    ///
    /// # Errors
    /// [`SendError::BufferFull`] if no room came within `max.block.ms`;
    /// [`SendError::Invalid`] or [`SendError::Closed`] as the core reports them.
    pub async fn send(&self, record: Record<'_>) -> Result<Delivery, SendError> {
        let (tx, rx) = oneshot::channel();
        let mut token: Token = tx;
        let deadline = tokio::time::Instant::now() + self.shared.max_block;
        loop {
            let room = self.shared.room.notified();
            match self.shared.try_send(record, token) {
                Ok(()) => return Ok(Delivery { rx }),
                Err((SendError::BufferFull, t)) => token = t,
                Err((e, _)) => return Err(e),
            }
            if tokio::time::timeout_at(deadline, room).await.is_err() {
                return Err(SendError::BufferFull);
            }
        }
    }

    /// Sends a record and waits for its delivery.
    ///
    /// # Errors
    /// [`ProduceError`] if it was not delivered (or could not be buffered).
    pub async fn send_and_wait(&self, record: Record<'_>) -> Result<RecordMetadata, ProduceError> {
        match self.send(record).await {
            Ok(d) => d.await,
            Err(SendError::Invalid(e)) => Err(e),
            Err(SendError::BufferFull) => Err(ProduceError::Timeout),
            Err(_) => Err(ProduceError::Closed),
        }
    }

    /// Sends everything buffered now and waits until every record sent before has its
    /// delivery result.
    pub async fn flush(&self) {
        let rx = self.shared.flush(false);
        let _ = rx.await;
    }

    /// Delivers what is buffered, then closes every connection and stops the driver.
    pub async fn close(&self) {
        let rx = self.shared.flush(true);
        let _ = rx.await;
    }

    /// Records accepted and not yet reported.
    pub fn outstanding(&self) -> usize {
        self.shared.outstanding()
    }

    /// When the producer started, by the clock it gives the core.
    pub fn started(&self) -> Instant {
        self.shared.started
    }
}
