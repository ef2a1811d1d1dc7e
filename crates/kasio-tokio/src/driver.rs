//! The tokio half of a driver: a task per core that turns the shell's [`Driver`], a task
//! per socket, and tokio's timer. It holds no protocol logic.

use bytes::{Bytes, BytesMut};
use kasio_core::{CloseReason, ConnId};
use kasio_shell::{Driver, Inbox, Sockets, Step};
use std::{collections::HashMap, sync::Arc, time::Instant};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::mpsc,
    task::JoinHandle,
};

/// The tokio runtime for kasio's handles: drivers run as tasks on the runtime current
/// when a handle is created (creating one outside a tokio runtime panics).
#[derive(Debug, Clone, Copy)]
pub struct Tokio;

impl kasio_shell::Runtime for Tokio {
    fn start(driver: Driver) {
        tokio::spawn(run(driver));
    }
}

impl kasio_shell::AsyncRuntime for Tokio {
    fn sleep_until(at: Instant) -> impl std::future::Future<Output = ()> + Send {
        tokio::time::sleep_until(at.into())
    }

    fn spawn(task: impl std::future::Future<Output = ()> + Send + 'static) {
        tokio::spawn(task);
    }
}

struct Socket {
    writer: mpsc::UnboundedSender<Bytes>,
    task: JoinHandle<()>,
}

struct TokioSockets {
    inbox: Arc<Inbox>,
    open: HashMap<ConnId, Socket>,
}

impl Sockets for TokioSockets {
    fn open(&mut self, conn: ConnId, host: &str, port: u16) {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(connection(
            conn,
            host.to_owned(),
            port,
            rx,
            self.inbox.clone(),
        ));
        self.open.insert(conn, Socket { writer: tx, task });
    }

    fn close(&mut self, conn: ConnId) {
        if let Some(s) = self.open.remove(&conn) {
            s.task.abort();
        }
    }

    fn send(&mut self, conn: ConnId, data: Bytes) {
        if let Some(s) = self.open.get(&conn) {
            let _ = s.writer.send(data);
        }
    }
}

async fn run(mut driver: Driver) {
    let mut sockets = TokioSockets {
        inbox: driver.inbox().clone(),
        open: HashMap::new(),
    };
    loop {
        let woken = driver.listen();
        match driver.turn(&mut sockets) {
            Step::Stop => break,
            Step::Again => tokio::task::yield_now().await,
            Step::Wait(deadline) => {
                let sleep = async {
                    match deadline {
                        Some(at) => tokio::time::sleep_until(at.into()).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    () = woken => {}
                    () = sleep => {}
                }
            }
        }
    }
    for (_, s) in sockets.open {
        s.task.abort();
    }
}

/// The most one socket read takes. Large fetch responses arrive in fewer pieces, each a
/// wake-up of the driver, the larger this is.
const READ_CHUNK: usize = 256 * 1024;

/// One socket: dial, then copy bytes both ways until either side stops.
async fn connection(
    conn: ConnId,
    host: String,
    port: u16,
    mut writes: mpsc::UnboundedReceiver<Bytes>,
    inbox: Arc<Inbox>,
) {
    let stream = match TcpStream::connect((host.as_str(), port)).await {
        Ok(s) => s,
        Err(e) => {
            inbox.closed(conn, CloseReason::ConnectFailed(e.to_string()));
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    inbox.connected(conn);
    let reading = async {
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        loop {
            // Small reads (produce acknowledgements) go on filling the same allocation;
            // a new one once half of it is used, so a large read still has room.
            if buf.capacity() < READ_CHUNK / 2 {
                buf.reserve(READ_CHUNK);
            }
            match reader.read_buf(&mut buf).await {
                Ok(0) => return CloseReason::PeerClosed,
                Ok(_) => inbox.data(conn, buf.split().freeze()),
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
    inbox.closed(conn, reason);
}
