//! The driver task: sockets in, bytes to a sans-IO core; the core's output out to sockets.
//! It holds no protocol logic, and serves the producer and the consumer alike.

use bytes::{Bytes, BytesMut};
use kasio_core::{CloseReason, ConnId, ConnectAction, Transmit};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, Weak},
    time::Instant,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::{Notify, mpsc},
    task::JoinHandle,
};

/// How many socket reads the driver feeds the core per wake-up, so one busy connection
/// cannot hold the lock against callers for long.
const READS_PER_WAKE: usize = 64;

/// What the driver needs of a sans-IO core and the state kept beside it.
pub(crate) trait Core: Send + 'static {
    /// Work to finish outside the lock (completing futures runs their wakers).
    type Deferred: Default + Send;

    fn connected(&mut self, conn: ConnId, now: Instant);
    fn input(&mut self, conn: ConnId, data: &[u8], now: Instant);
    fn closed(&mut self, conn: ConnId, reason: CloseReason, now: Instant);
    fn timeout(&mut self, now: Instant);
    fn next_connect(&mut self) -> Option<ConnectAction>;
    fn next_transmit(&mut self) -> Option<Transmit>;
    fn deadline(&mut self) -> Option<Instant>;
    /// Takes the events out; whether the core is finished and the driver should stop.
    fn take_events(&mut self, deferred: &mut Self::Deferred) -> bool;
    /// Finishes what `take_events` deferred, without the lock.
    fn complete(deferred: &mut Self::Deferred, shared: &Shared<Self>)
    where
        Self: Sized;
}

/// A core, its lock, and the two wake-ups around it.
pub(crate) struct Shared<C> {
    inner: Mutex<C>,
    /// Wakes the driver: a caller created output or an earlier deadline.
    pub(crate) wake: Notify,
    /// Wakes callers: deliveries freed room, or batches arrived.
    pub(crate) ready: Notify,
}

impl<C> std::fmt::Debug for Shared<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl<C: Core> Shared<C> {
    pub(crate) fn lock(&self) -> MutexGuard<'_, C> {
        // A panic while holding the lock leaves the core between two calls, which is a
        // consistent state, so poisoning is ignored.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts the driver for `core` on the current tokio runtime.
    pub(crate) fn start(core: C) -> Arc<Self> {
        let shared = Arc::new(Self {
            inner: Mutex::new(core),
            wake: Notify::new(),
            ready: Notify::new(),
        });
        tokio::spawn(run(Arc::downgrade(&shared)));
        shared
    }
}

enum Input {
    Connected(ConnId),
    Data(ConnId, Bytes),
    Closed(ConnId, CloseReason),
}

struct Socket {
    writer: mpsc::UnboundedSender<Bytes>,
    task: JoinHandle<()>,
}

async fn run<C: Core>(weak: Weak<Shared<C>>) {
    let (input_tx, mut input_rx) = mpsc::unbounded_channel::<Input>();
    let mut sockets: HashMap<ConnId, Socket> = HashMap::new();
    let mut pending: Vec<Input> = Vec::new();
    let mut deferred = C::Deferred::default();
    loop {
        let Some(shared) = weak.upgrade() else {
            break;
        };
        let (deadline, finished) = {
            let mut core = shared.lock();
            let now = Instant::now();
            for input in pending.drain(..) {
                match input {
                    Input::Connected(c) => core.connected(c, now),
                    Input::Data(c, d) => core.input(c, &d, now),
                    Input::Closed(c, r) => {
                        sockets.remove(&c);
                        core.closed(c, r, now);
                    }
                }
            }
            if core.deadline().is_some_and(|t| t <= now) {
                core.timeout(now);
            }
            while let Some(action) = core.next_connect() {
                match action {
                    ConnectAction::Open { conn, host, port } => {
                        let (tx, rx) = mpsc::unbounded_channel();
                        let task = tokio::spawn(connection(conn, host, port, rx, input_tx.clone()));
                        sockets.insert(conn, Socket { writer: tx, task });
                    }
                    ConnectAction::Close { conn } => {
                        if let Some(s) = sockets.remove(&conn) {
                            s.task.abort();
                        }
                    }
                }
            }
            while let Some(t) = core.next_transmit() {
                if let Some(s) = sockets.get(&t.conn) {
                    let _ = s.writer.send(t.data);
                }
            }
            let finished = core.take_events(&mut deferred);
            (core.deadline(), finished)
        };
        C::complete(&mut deferred, &shared);
        if finished {
            break;
        }
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            input = input_rx.recv() => {
                if let Some(input) = input {
                    pending.push(input);
                    while pending.len() < READS_PER_WAKE {
                        match input_rx.try_recv() {
                            Ok(i) => pending.push(i),
                            Err(_) => break,
                        }
                    }
                }
            }
            () = shared.wake.notified() => {}
            () = sleep => {}
        }
        drop(shared);
    }
    for (_, s) in sockets {
        s.task.abort();
    }
}

/// One socket: dial, then copy bytes both ways until either side stops.
async fn connection(
    conn: ConnId,
    host: String,
    port: u16,
    mut writes: mpsc::UnboundedReceiver<Bytes>,
    input: mpsc::UnboundedSender<Input>,
) {
    let stream = match TcpStream::connect((host.as_str(), port)).await {
        Ok(s) => s,
        Err(e) => {
            let _ = input.send(Input::Closed(
                conn,
                CloseReason::ConnectFailed(e.to_string()),
            ));
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    let _ = input.send(Input::Connected(conn));
    let read_input = input.clone();
    let reading = async move {
        let mut buf = BytesMut::with_capacity(64 * 1024);
        loop {
            buf.reserve(64 * 1024);
            match reader.read_buf(&mut buf).await {
                Ok(0) => return CloseReason::PeerClosed,
                Ok(_) => {
                    let data = buf.split().freeze();
                    if read_input.send(Input::Data(conn, data)).is_err() {
                        return CloseReason::PeerClosed;
                    }
                }
                Err(e) => return CloseReason::Io(e.to_string()),
            }
        }
    };
    let writing = async move {
        while let Some(data) = writes.recv().await {
            if let Err(e) = writer.write_all(&data).await {
                return CloseReason::Io(e.to_string());
            }
        }
        std::future::pending::<CloseReason>().await
    };
    let reason = tokio::select! {
        r = reading => r,
        r = writing => r,
    };
    let _ = input.send(Input::Closed(conn, reason));
}
