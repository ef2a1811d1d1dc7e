//! The driver task: sockets in, bytes to the core; the core's output out to sockets and
//! delivery futures. It holds no protocol logic.

use bytes::{Bytes, BytesMut};
use kasio_core::{
    CloseReason, ConfigError, ConnId, ConnectAction, Event, ProduceError, Producer as Core,
    ProducerConfig, Record, RecordMetadata, SendError,
};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant, SystemTime},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::{Notify, mpsc, oneshot},
    task::JoinHandle,
};

pub(crate) type Token = oneshot::Sender<Result<RecordMetadata, ProduceError>>;

/// How many socket reads the driver feeds the core per wake-up, so one busy connection
/// cannot hold the lock against senders for long.
const READS_PER_WAKE: usize = 64;

enum Input {
    Connected(ConnId),
    Data(ConnId, Bytes),
    Closed(ConnId, CloseReason),
}

struct Inner {
    core: Core<Token>,
    flush_waiters: Vec<oneshot::Sender<()>>,
    close_waiters: Vec<oneshot::Sender<()>>,
}

pub(crate) struct Shared {
    inner: Mutex<Inner>,
    wake: Notify,
    pub(crate) room: Notify,
    pub(crate) max_block: Duration,
    pub(crate) started: Instant,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves the core as it was between two calls,
        // which is always a consistent state, so poisoning is ignored.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn try_send(
        &self,
        record: Record<'_>,
        token: Token,
    ) -> Result<(), (SendError, Token)> {
        let mut inner = self.lock();
        inner.core.send(record, token, Instant::now())?;
        let wake = inner.core.needs_attention();
        drop(inner);
        if wake {
            self.wake.notify_one();
        }
        Ok(())
    }

    pub(crate) fn flush(&self, close: bool) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        let mut inner = self.lock();
        if close {
            inner.close_waiters.push(tx);
            inner.core.close(Instant::now());
        } else {
            inner.flush_waiters.push(tx);
            inner.core.flush(Instant::now());
        }
        drop(inner);
        self.wake.notify_one();
        rx
    }

    pub(crate) fn outstanding(&self) -> usize {
        self.lock().core.outstanding()
    }
}

pub(crate) fn start(config: ProducerConfig) -> Result<Arc<Shared>, ConfigError> {
    let now = Instant::now();
    let unix_ms = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let seed = u64::try_from(unix_ms).unwrap_or(0) ^ u64::from(std::process::id()).rotate_left(32);
    let max_block = config.max_block;
    let core = Core::new(config, now, unix_ms, seed)?;
    let shared = Arc::new(Shared {
        inner: Mutex::new(Inner {
            core,
            flush_waiters: Vec::new(),
            close_waiters: Vec::new(),
        }),
        wake: Notify::new(),
        room: Notify::new(),
        max_block,
        started: now,
    });
    tokio::spawn(run(Arc::downgrade(&shared)));
    Ok(shared)
}

struct Socket {
    writer: mpsc::UnboundedSender<Bytes>,
    task: JoinHandle<()>,
}

async fn run(weak: std::sync::Weak<Shared>) {
    let (input_tx, mut input_rx) = mpsc::unbounded_channel::<Input>();
    let mut sockets: HashMap<ConnId, Socket> = HashMap::new();
    let mut pending: Vec<Input> = Vec::new();
    let mut deliveries: Vec<(Token, Result<RecordMetadata, ProduceError>)> = Vec::new();
    loop {
        let Some(shared) = weak.upgrade() else {
            break;
        };
        let (deadline, closed, freed) = {
            let mut inner = shared.lock();
            let now = Instant::now();
            for input in pending.drain(..) {
                match input {
                    Input::Connected(c) => inner.core.handle_connected(c, now),
                    Input::Data(c, d) => inner.core.handle_input(c, &d, now),
                    Input::Closed(c, r) => {
                        sockets.remove(&c);
                        inner.core.handle_closed(c, r, now);
                    }
                }
            }
            if inner.core.poll_timeout().is_some_and(|t| t.at <= now) {
                inner.core.handle_timeout(now);
            }
            while let Some(action) = inner.core.poll_connect() {
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
            while let Some(t) = inner.core.poll_transmit() {
                if let Some(s) = sockets.get(&t.conn) {
                    let _ = s.writer.send(t.data);
                }
            }
            let mut freed = false;
            let mut closed = false;
            while let Some(event) = inner.core.poll_event() {
                match event {
                    Event::Delivery { token, result } => {
                        freed = true;
                        deliveries.push((token, result));
                    }
                    Event::Flushed => {
                        for w in inner.flush_waiters.drain(..) {
                            let _ = w.send(());
                        }
                    }
                    Event::Closed => closed = true,
                    _ => {}
                }
            }
            let deadline = inner.core.poll_timeout().map(|t| t.at);
            if closed {
                for w in inner.close_waiters.drain(..) {
                    let _ = w.send(());
                }
            }
            (deadline, closed, freed)
        };
        // Delivery futures are completed outside the lock: their wakers may run code.
        for (token, result) in deliveries.drain(..) {
            let _ = token.send(result);
        }
        if freed {
            shared.room.notify_waiters();
        }
        if closed {
            for (_, s) in sockets.drain() {
                s.task.abort();
            }
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
