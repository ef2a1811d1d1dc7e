//! The TCP shell: one listening socket per broker, one reader thread per connection, and
//! one driver thread that owns the [`Cluster`] and does all of its work. Only bytes cross
//! this layer.

use crate::{Cluster, ClusterConfig, ConnId};
use std::{
    collections::HashMap,
    io::{self, Read, Write},
    net::{Shutdown, SocketAddr, TcpListener, TcpStream},
    sync::mpsc::{self, RecvTimeoutError, Sender},
    thread::{self, JoinHandle},
    time::Instant,
};

/// Work for the driver thread, which alone touches the cluster.
type Control = Box<dyn FnOnce(&mut Cluster) + Send>;

enum Event {
    Accepted(i32, TcpStream),
    Input(ConnId, Vec<u8>),
    Closed(ConnId),
    Control(Control),
    Stop,
}

/// A running mock cluster: one listening socket per broker, on an ephemeral port of
/// 127.0.0.1 unless [`start_on`](Self::start_on) names the addresses.
///
/// ```no_run
/// use kasio_mock::{ClusterConfig, MockCluster};
/// let cluster = MockCluster::start(ClusterConfig::default())?;
/// println!("bootstrap.servers={}", cluster.bootstrap());
/// cluster.stop();
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct MockCluster {
    addrs: Vec<SocketAddr>,
    events: Sender<Event>,
    driver: Option<JoinHandle<()>>,
}

impl MockCluster {
    /// Starts the brokers and the driver.
    ///
    /// # Errors
    /// The I/O error if a listening socket cannot be bound.
    pub fn start(config: ClusterConfig) -> io::Result<MockCluster> {
        Self::start_on(config, &[])
    }

    /// Starts the brokers on the given addresses, broker 1 on the first (port 0 picks a free
    /// one); brokers without an address listen on an ephemeral port of 127.0.0.1. A broker
    /// bound to every interface (`0.0.0.0` or `::`) advertises the loopback address.
    ///
    /// ```no_run
    /// use kasio_mock::{ClusterConfig, MockCluster};
    /// let cluster = MockCluster::start_on(ClusterConfig::default(), &["127.0.0.1:39092".parse().unwrap()])?;
    /// assert_eq!(cluster.bootstrap(), "127.0.0.1:39092");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    /// The I/O error if a listening socket cannot be bound, or
    /// [`io::ErrorKind::InvalidInput`] if more addresses are given than brokers.
    pub fn start_on(config: ClusterConfig, listen: &[SocketAddr]) -> io::Result<MockCluster> {
        let mut cluster = Cluster::new(config);
        let ids: Vec<i32> = cluster.broker_ids().collect();
        if listen.len() > ids.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} listen addresses for {} broker(s)",
                    listen.len(),
                    ids.len()
                ),
            ));
        }
        let (tx, rx) = mpsc::channel::<Event>();
        let mut addrs = Vec::new();
        for (i, id) in ids.into_iter().enumerate() {
            let wanted = listen
                .get(i)
                .copied()
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
            let listener = TcpListener::bind(wanted)?;
            let mut addr = listener.local_addr()?;
            if addr.ip().is_unspecified() {
                addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            cluster.set_broker_address(id, &addr.ip().to_string(), addr.port());
            addrs.push(addr);
            let tx = tx.clone();
            thread::Builder::new()
                .name(format!("kasio-mock-accept-{id}"))
                .spawn(move || {
                    for stream in listener.incoming() {
                        let Ok(stream) = stream else { continue };
                        if tx.send(Event::Accepted(id, stream)).is_err() {
                            return;
                        }
                    }
                })?;
        }
        let events = tx.clone();
        let driver = thread::Builder::new()
            .name("kasio-mock-driver".into())
            .spawn(move || drive(cluster, rx, tx))?;
        Ok(MockCluster {
            addrs,
            events,
            driver: Some(driver),
        })
    }

    /// The brokers' addresses as `bootstrap.servers` takes them.
    pub fn bootstrap(&self) -> String {
        self.addrs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Broker `id`'s address.
    pub fn broker_addr(&self, id: i32) -> Option<SocketAddr> {
        usize::try_from(id - 1)
            .ok()
            .and_then(|i| self.addrs.get(i))
            .copied()
    }

    /// Runs `f` on the cluster between two events, while traffic flows: inject a fault, move
    /// a leader, inspect state. Returns what `f` returns.
    ///
    /// ```no_run
    /// use kasio_mock::{ClusterConfig, Fault, MockCluster};
    /// use kasio_proto::{ApiKey, ErrorCode};
    /// let cluster = MockCluster::start(ClusterConfig::default())?;
    /// cluster.with(|c| c.inject(Fault::FailNext { api: ApiKey::Produce, count: 3, error: ErrorCode::NotLeaderOrFollower }));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn with<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Cluster) -> R + Send + 'static,
    ) -> Option<R> {
        let (tx, rx) = mpsc::channel();
        let control: Control = Box::new(move |c: &mut Cluster| {
            let _ = tx.send(f(c));
        });
        self.events.send(Event::Control(control)).ok()?;
        rx.recv().ok()
    }

    /// Stops the driver and closes every connection.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let _ = self.events.send(Event::Stop);
        if let Some(d) = self.driver.take() {
            let _ = d.join();
        }
    }
}

impl Drop for MockCluster {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn drive(mut cluster: Cluster, rx: mpsc::Receiver<Event>, tx: Sender<Event>) {
    let mut streams: HashMap<ConnId, TcpStream> = HashMap::new();
    loop {
        let event = match cluster.poll_timeout() {
            Some(deadline) => {
                match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                    Ok(e) => Some(e),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
            None => match rx.recv() {
                Ok(e) => Some(e),
                Err(_) => return,
            },
        };
        let now = Instant::now();
        match event {
            None => cluster.handle_timeout(now),
            Some(Event::Accepted(broker, stream)) => {
                if !cluster.accepts(broker) {
                    let _ = stream.shutdown(Shutdown::Both);
                    continue;
                }
                let conn = cluster.connect(broker);
                let _ = stream.set_nodelay(true);
                let Ok(reader) = stream.try_clone() else {
                    continue;
                };
                streams.insert(conn, stream);
                let tx = tx.clone();
                let _ = thread::Builder::new()
                    .name(format!("kasio-mock-conn-{}", conn.0))
                    .spawn(move || read_loop(conn, reader, tx));
            }
            Some(Event::Input(conn, bytes)) => cluster.handle_input(conn, &bytes, now),
            Some(Event::Closed(conn)) => {
                cluster.handle_closed(conn);
                streams.remove(&conn);
            }
            Some(Event::Control(f)) => f(&mut cluster),
            Some(Event::Stop) => {
                for s in streams.values() {
                    let _ = s.shutdown(Shutdown::Both);
                }
                return;
            }
        }
        while let Some(t) = cluster.poll_transmit() {
            if let Some(s) = streams.get_mut(&t.conn)
                && s.write_all(&t.data).is_err()
            {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
        while let Some(conn) = cluster.poll_close() {
            if let Some(s) = streams.remove(&conn) {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }
}

fn read_loop(conn: ConnId, mut stream: TcpStream, tx: Sender<Event>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => {
                let _ = tx.send(Event::Closed(conn));
                return;
            }
            Ok(n) => {
                if tx.send(Event::Input(conn, buf[..n].to_vec())).is_err() {
                    return;
                }
            }
        }
    }
}
