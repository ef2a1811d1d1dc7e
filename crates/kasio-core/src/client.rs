//! The contract between a sans-IO client and the code that drives it.

use crate::{CloseReason, ConnId, ConnectAction, Timeout, Transmit};
use std::time::Instant;

/// What a driver does for a sans-IO Kafka client ([`Producer`](crate::Producer),
/// [`Consumer`](crate::Consumer), [`Admin`](crate::Admin)): it owns the sockets and the
/// clock, the client owns everything Kafka. kasio's own runtimes drive the clients through
/// this trait, and so can any event loop.
///
/// # The loop
/// A driver repeats: feed the client what happened, then drain what it asks for, then
/// sleep until the next deadline or the next input.
///
/// 1. **Inputs** (`handle_*`), each with the current time:
///    - [`handle_connected`](Self::handle_connected) once a dial the client asked for is up;
///    - [`handle_input`](Self::handle_input) with the bytes read from a connection, in the
///      order read, cut anywhere (frames may span calls; several may come in one);
///    - [`handle_closed`](Self::handle_closed) once when a connection the client did not
///      close goes away, or its dial fails;
///    - [`handle_timeout`](Self::handle_timeout) once the deadline of
///      [`poll_timeout`](Self::poll_timeout) has passed. A call before it is harmless
///      (spurious calls do nothing), so a driver may call it on every wake-up.
/// 2. **Outputs**, drained after every input and after every command the application gave
///    the client (`send`, `commit`, `assign`, ...), in this order, each until `None`:
///    - [`poll_connect`](Self::poll_connect): [`ConnectAction::Open`] asks to dial
///      `host:port` for a connection named `conn` (answer later with `handle_connected`
///      or `handle_closed`); [`ConnectAction::Close`] asks to close `conn` at once and
///      report nothing more about it;
///    - [`poll_transmit`](Self::poll_transmit): bytes to write to `conn` (one the client
///      reported up with `handle_connected`), whole and in order, after everything
///      transmitted to it before;
///    - the client's own results: [`Producer::poll_delivered`](crate::Producer::poll_delivered)
///      and [`Producer::poll_event`](crate::Producer::poll_event);
///      [`Consumer::poll_rebalance_event`](crate::Consumer::poll_rebalance_event),
///      [`Consumer::poll_batch`](crate::Consumer::poll_batch),
///      [`Consumer::poll_event`](crate::Consumer::poll_event) and
///      [`Consumer::poll_commit`](crate::Consumer::poll_commit);
///      [`Admin::poll_event`](crate::Admin::poll_event). A driver that hands these to an
///      application may leave them in the client until the application asks;
///    - [`poll_timeout`](Self::poll_timeout) last: the earliest time the client wants
///      `handle_timeout`. It may lie in the past (work is due now): call
///      `handle_timeout` at once and drain again.
/// 3. **Wait** until that deadline or until a socket has input, whichever comes first.
///
/// # Rules
/// - Time never goes backwards: every `now` is at least the one before (the client
///   reads no clock of its own, so a test may run it in virtual time).
/// - A [`ConnId`] is the client's name for one connection. Input that arrives for a
///   connection after the client asked to close it, or after `handle_closed`, must be
///   dropped, not fed.
/// - Network failures are inputs (`handle_closed` with a [`CloseReason`]); the client
///   never blocks, never panics on bytes from the wire, and reports broker and network
///   failures through its results.
/// - [`needs_attention`](Self::needs_attention) says whether a command the application
///   gave the client (from another thread, say) left outputs or a new deadline waiting: a
///   driver that sleeps elsewhere wakes when it is true. Inputs always need a drain.
///
/// ```no_run
/// use kasio_core::{Client, ConnectAction, Producer, ProducerConfig, Record};
/// use std::time::Instant;
/// # fn dial(host: &str, port: u16) {}
/// # fn write(data: &[u8]) {}
/// let now = Instant::now();
/// let mut producer: Producer<u64> = Producer::new(ProducerConfig::new("localhost:9092")?, now, 1_700_000_000_000, 7)?;
/// producer.send(Record::new("orders").value(b"v"), 1, now).map_err(|(e, _)| e)?;
/// fn drain(client: &mut impl Client) -> Option<Instant> {
///     while let Some(action) = client.poll_connect() {
///         if let ConnectAction::Open { host, port, .. } = action {
///             dial(&host, port);
///         }
///     }
///     while let Some(t) = client.poll_transmit() {
///         write(&t.data);
///     }
///     client.poll_timeout().map(|t| t.at)
/// }
/// let sleep_until = drain(&mut producer);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Client {
    /// The dial of `conn` succeeded.
    fn handle_connected(&mut self, conn: ConnId, now: Instant);
    /// Bytes read from `conn`.
    fn handle_input(&mut self, conn: ConnId, data: &[u8], now: Instant);
    /// `conn` closed, or its dial failed.
    fn handle_closed(&mut self, conn: ConnId, reason: CloseReason, now: Instant);
    /// Time passed: act on what is due (nothing, if nothing is).
    fn handle_timeout(&mut self, now: Instant);
    /// The next socket to open or close.
    fn poll_connect(&mut self) -> Option<ConnectAction>;
    /// The next bytes to write.
    fn poll_transmit(&mut self) -> Option<Transmit>;
    /// When `handle_timeout` is next due, and why.
    fn poll_timeout(&mut self) -> Option<Timeout>;
    /// Whether a command left outputs or a new deadline for the driver.
    fn needs_attention(&self) -> bool;
}

/// Every client names its inputs and outputs alike; the trait only forwards to them.
macro_rules! client {
    ($($t:ty $(: $param:ident)?),*) => {$(
        impl$(<$param>)? Client for $t {
            fn handle_connected(&mut self, conn: ConnId, now: Instant) {
                Self::handle_connected(self, conn, now);
            }
            fn handle_input(&mut self, conn: ConnId, data: &[u8], now: Instant) {
                Self::handle_input(self, conn, data, now);
            }
            fn handle_closed(&mut self, conn: ConnId, reason: CloseReason, now: Instant) {
                Self::handle_closed(self, conn, reason, now);
            }
            fn handle_timeout(&mut self, now: Instant) {
                Self::handle_timeout(self, now);
            }
            fn poll_connect(&mut self) -> Option<ConnectAction> {
                Self::poll_connect(self)
            }
            fn poll_transmit(&mut self) -> Option<Transmit> {
                Self::poll_transmit(self)
            }
            fn poll_timeout(&mut self) -> Option<Timeout> {
                Self::poll_timeout(self)
            }
            fn needs_attention(&self) -> bool {
                Self::needs_attention(self)
            }
        }
    )*};
}

client!(crate::Producer<T>: T, crate::Consumer, crate::Admin, crate::ShareConsumer);
