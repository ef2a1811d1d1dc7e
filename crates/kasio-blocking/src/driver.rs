//! The threads of a driver: one that turns the shell's [`Driver`] and sleeps on its
//! deadline, and two per socket (one reads, one dials and writes), over `std::net`.
//! It holds no protocol logic.

use bytes::{Bytes, BytesMut};
use kasio_core::{CloseReason, ConnId};
use kasio_shell::{Driver, Inbox, Listener, Sockets, Step};
use std::{
    collections::HashMap,
    io::{Read, Write},
    net::{Shutdown, TcpStream, ToSocketAddrs},
    sync::{Arc, OnceLock, mpsc},
    thread,
    time::Duration,
};

/// How long one address may take to accept a connection before the next is tried.
const DIAL_TIMEOUT: Duration = Duration::from_secs(10);

/// Plain threads as kasio's runtime: each handle's driver runs on a thread of its own.
#[derive(Debug, Clone, Copy)]
pub struct Threads;

impl kasio_shell::BlockingRuntime for Threads {}

impl kasio_shell::Runtime for Threads {
    fn start(driver: Driver) {
        let spawned = thread::Builder::new()
            .name("kasio-driver".into())
            .spawn(move || run(driver));
        if let Err(e) = spawned {
            // Without its driver the handle could never make progress; the process is
            // out of threads, as with any other failed spawn.
            panic!("kasio: cannot start the driver thread: {e}");
        }
    }
}

struct Socket {
    writer: mpsc::Sender<Bytes>,
    /// Set once dialled, so a close can unblock both of its threads.
    stream: Arc<OnceLock<TcpStream>>,
}

impl Drop for Socket {
    fn drop(&mut self) {
        if let Some(s) = self.stream.get() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

struct ThreadSockets {
    inbox: Arc<Inbox>,
    open: HashMap<ConnId, Socket>,
}

impl Sockets for ThreadSockets {
    fn open(&mut self, conn: ConnId, host: &str, port: u16) {
        let (tx, rx) = mpsc::channel();
        let stream = Arc::new(OnceLock::new());
        let dial = Dial {
            conn,
            host: host.to_owned(),
            port,
            inbox: self.inbox.clone(),
            stream: stream.clone(),
        };
        let spawned = thread::Builder::new()
            .name(format!("kasio-conn-{}", conn.0))
            .spawn(move || dial.run(rx));
        if let Err(e) = spawned {
            self.inbox
                .closed(conn, CloseReason::ConnectFailed(format!("no thread: {e}")));
            return;
        }
        self.open.insert(conn, Socket { writer: tx, stream });
    }

    fn close(&mut self, conn: ConnId) {
        self.open.remove(&conn);
    }

    fn send(&mut self, conn: ConnId, data: Bytes) {
        if let Some(s) = self.open.get(&conn) {
            let _ = s.writer.send(data);
        }
    }
}

fn run(mut driver: Driver) {
    let mut sockets = ThreadSockets {
        inbox: driver.inbox().clone(),
        open: HashMap::new(),
    };
    loop {
        let woken = driver.listen();
        match driver.turn(&mut sockets) {
            Step::Stop => break,
            Step::Again => {}
            Step::Wait(Some(at)) => {
                let _ = woken.wait_deadline(at);
            }
            Step::Wait(None) => woken.wait(),
        }
    }
}

/// One socket's writing thread, which dials first and starts the reading thread.
struct Dial {
    conn: ConnId,
    host: String,
    port: u16,
    inbox: Arc<Inbox>,
    stream: Arc<OnceLock<TcpStream>>,
}

impl Dial {
    fn run(self, writes: mpsc::Receiver<Bytes>) {
        let conn = self.conn;
        let stream = match self.dial() {
            Ok(s) => s,
            Err(e) => {
                self.inbox
                    .closed(conn, CloseReason::ConnectFailed(e.to_string()));
                return;
            }
        };
        let _ = stream.set_nodelay(true);
        let reader = match stream.try_clone() {
            Ok(r) => r,
            Err(e) => {
                self.inbox.closed(conn, CloseReason::Io(e.to_string()));
                return;
            }
        };
        let mut writer = match stream.try_clone() {
            Ok(w) => w,
            Err(e) => {
                self.inbox.closed(conn, CloseReason::Io(e.to_string()));
                return;
            }
        };
        let _ = self.stream.set(stream);
        self.inbox.connected(conn);
        let inbox = self.inbox.clone();
        let spawned = thread::Builder::new()
            .name(format!("kasio-read-{}", conn.0))
            .spawn(move || read(conn, reader, &inbox));
        if let Err(e) = spawned {
            self.inbox
                .closed(conn, CloseReason::Io(format!("no thread: {e}")));
            return;
        }
        // Ends when the driver drops the sender (close) or a write fails; either way the
        // socket is shut down, which also ends the reading thread.
        while let Ok(data) = writes.recv() {
            if let Err(e) = writer.write_all(&data) {
                self.inbox.closed(conn, CloseReason::Io(e.to_string()));
                break;
            }
        }
        let _ = writer.shutdown(Shutdown::Both);
    }

    fn dial(&self) -> std::io::Result<TcpStream> {
        let mut last = None;
        for addr in (self.host.as_str(), self.port).to_socket_addrs()? {
            match TcpStream::connect_timeout(&addr, DIAL_TIMEOUT) {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, "no address for host")
        }))
    }
}

/// The most one socket read takes. Large fetch responses arrive in fewer pieces, each a
/// wake-up of the driver, the larger this is.
const READ_CHUNK: usize = 256 * 1024;

fn read(conn: ConnId, mut stream: TcpStream, inbox: &Inbox) {
    let mut buf = BytesMut::zeroed(READ_CHUNK);
    let reason = loop {
        match stream.read(&mut buf) {
            Ok(0) => break CloseReason::PeerClosed,
            Ok(n) => {
                inbox.data(conn, buf.split_to(n).freeze());
                if buf.len() < 16 * 1024 {
                    buf = BytesMut::zeroed(READ_CHUNK);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => break CloseReason::Io(e.to_string()),
        }
    };
    inbox.closed(conn, reason);
}
