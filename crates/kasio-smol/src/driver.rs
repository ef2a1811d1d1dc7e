//! The smol half of a driver: a task per core that turns the shell's [`Driver`], a task
//! per socket, and async-io's timer. It holds no protocol logic.

use bytes::{Bytes, BytesMut};
use kasio_core::{CloseReason, ConnId};
use kasio_shell::{Driver, Inbox, Sockets, Step};
use smol::{
    Task, Timer,
    channel::{Receiver, Sender, unbounded},
    future,
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use std::{collections::HashMap, sync::Arc, time::Instant};

/// The smol runtime for kasio's handles: drivers and sockets run as tasks on smol's
/// global executor, so handles work from any executor on the async-io reactor (smol's,
/// async-std's, or `smol::block_on` on a plain thread).
#[derive(Debug, Clone, Copy)]
pub struct Smol;

impl kasio_shell::Runtime for Smol {
    fn start(driver: Driver) {
        smol::spawn(run(driver)).detach();
    }
}

impl kasio_shell::AsyncRuntime for Smol {
    async fn sleep_until(at: Instant) {
        Timer::at(at).await;
    }

    fn spawn(task: impl std::future::Future<Output = ()> + Send + 'static) {
        smol::spawn(task).detach();
    }
}

struct Socket {
    writer: Sender<Bytes>,
    /// Dropping a smol task cancels it.
    _task: Task<()>,
}

struct SmolSockets {
    inbox: Arc<Inbox>,
    open: HashMap<ConnId, Socket>,
}

impl Sockets for SmolSockets {
    fn open(&mut self, conn: ConnId, host: &str, port: u16) {
        let (tx, rx) = unbounded();
        let task = smol::spawn(connection(
            conn,
            host.to_owned(),
            port,
            rx,
            self.inbox.clone(),
        ));
        self.open.insert(
            conn,
            Socket {
                writer: tx,
                _task: task,
            },
        );
    }

    fn close(&mut self, conn: ConnId) {
        self.open.remove(&conn);
    }

    fn send(&mut self, conn: ConnId, data: Bytes) {
        if let Some(s) = self.open.get(&conn) {
            let _ = s.writer.try_send(data);
        }
    }
}

async fn run(mut driver: Driver) {
    let mut sockets = SmolSockets {
        inbox: driver.inbox().clone(),
        open: HashMap::new(),
    };
    loop {
        let woken = driver.listen();
        match driver.turn(&mut sockets) {
            Step::Stop => break,
            Step::Again => future::yield_now().await,
            Step::Wait(deadline) => {
                let sleep = async {
                    match deadline {
                        Some(at) => {
                            Timer::at(at).await;
                        }
                        None => future::pending::<()>().await,
                    }
                };
                future::or(woken, sleep).await;
            }
        }
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
    writes: Receiver<Bytes>,
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
    inbox.connected(conn);
    let mut reader = stream.clone();
    let mut writer = stream;
    let reading = async {
        let mut buf = BytesMut::zeroed(READ_CHUNK);
        loop {
            match reader.read(&mut buf).await {
                Ok(0) => return CloseReason::PeerClosed,
                Ok(n) => {
                    inbox.data(conn, buf.split_to(n).freeze());
                    if buf.len() < 16 * 1024 {
                        buf = BytesMut::zeroed(READ_CHUNK);
                    }
                }
                Err(e) => return CloseReason::Io(e.to_string()),
            }
        }
    };
    let writing = async move {
        while let Ok(data) = writes.recv().await {
            if let Err(e) = writer.write_all(&data).await {
                return CloseReason::Io(e.to_string());
            }
        }
        future::pending::<CloseReason>().await
    };
    let reason = future::or(reading, writing).await;
    inbox.closed(conn, reason);
}
