//! kasio's sans-IO core driven by hand: a producer, then a consumer, each run by a loop of
//! this file's own over non-blocking `std`-style sockets (mio), with no async runtime. It
//! follows the contract of [`kasio::core::Client`]: feed inputs, drain outputs, sleep until
//! the next deadline or socket readiness. Produces RECORDS records (their values 0, 1, ...)
//! to TOPIC and reads them back from the beginning of every partition, checking each
//! arrived once. On the embedded cluster unless `KASIO_BOOTSTRAP` names brokers (the topic
//! must then exist).
//!
//! `cargo run -p kasio --features mock --example hand_loop -- TOPIC PARTITIONS RECORDS`

use kasio::core::{
    Client, CloseReason, ConnId, ConnectAction, Consumer, ConsumerConfig, Event, Producer,
    ProducerConfig, Record, SendError,
};
use mio::{Events, Interest, Poll, Token, net::TcpStream};
use std::{
    collections::HashMap,
    io::{ErrorKind, Read, Write},
    net::ToSocketAddrs,
    time::{Duration, Instant, SystemTime},
};

/// One socket and the bytes still to write to it.
struct Socket {
    stream: TcpStream,
    connected: bool,
    out: Vec<u8>,
}

/// The sockets of one client, and the poller that says which are ready.
struct Net {
    poll: Poll,
    sockets: HashMap<ConnId, Socket>,
    buf: Vec<u8>,
}

impl Net {
    fn new() -> std::io::Result<Self> {
        Ok(Self {
            poll: Poll::new()?,
            sockets: HashMap::new(),
            buf: vec![0; 256 * 1024],
        })
    }

    /// Carries out what the client asks: dials, closes and writes.
    fn drain(&mut self, client: &mut impl Client, now: Instant) {
        while let Some(action) = client.poll_connect() {
            match action {
                ConnectAction::Open { conn, host, port } => {
                    let dialled = (host.as_str(), port)
                        .to_socket_addrs()
                        .and_then(|mut a| a.next().ok_or(ErrorKind::NotFound.into()))
                        .and_then(TcpStream::connect)
                        .and_then(|mut stream| {
                            let interest = Interest::READABLE | Interest::WRITABLE;
                            self.poll.registry().register(
                                &mut stream,
                                Token(conn.0 as usize),
                                interest,
                            )?;
                            Ok(stream)
                        });
                    match dialled {
                        Ok(stream) => drop(self.sockets.insert(
                            conn,
                            Socket {
                                stream,
                                connected: false,
                                out: Vec::new(),
                            },
                        )),
                        Err(e) => client.handle_closed(
                            conn,
                            CloseReason::ConnectFailed(e.to_string()),
                            now,
                        ),
                    }
                }
                ConnectAction::Close { conn } => drop(self.sockets.remove(&conn)),
            }
        }
        while let Some(t) = client.poll_transmit() {
            if let Some(socket) = self.sockets.get_mut(&t.conn) {
                socket.out.extend_from_slice(&t.data);
                let _ = flush(socket);
            }
        }
    }

    /// Waits for readiness or `deadline`, then feeds the client what happened.
    fn wait(&mut self, client: &mut impl Client, deadline: Option<Instant>) -> std::io::Result<()> {
        let mut events = Events::with_capacity(64);
        let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        self.poll
            .poll(&mut events, timeout.or(Some(Duration::from_secs(1))))?;
        let now = Instant::now();
        for event in &events {
            let conn = ConnId(event.token().0 as u64);
            let Some(socket) = self.sockets.get_mut(&conn) else {
                continue;
            };
            let mut closed = None;
            if !socket.connected && event.is_writable() {
                match socket.stream.take_error() {
                    Ok(None) if socket.stream.peer_addr().is_ok() => {
                        socket.connected = true;
                        client.handle_connected(conn, now);
                    }
                    Ok(None) => continue,
                    Ok(Some(e)) | Err(e) => {
                        closed = Some(CloseReason::ConnectFailed(e.to_string()))
                    }
                }
            }
            while closed.is_none() && socket.connected {
                match socket.stream.read(&mut self.buf) {
                    Ok(0) => closed = Some(CloseReason::PeerClosed),
                    Ok(n) => client.handle_input(conn, &self.buf[..n], now),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => closed = Some(CloseReason::Io(e.to_string())),
                }
            }
            if closed.is_none()
                && let Err(e) = flush(socket)
            {
                closed = Some(CloseReason::Io(e.to_string()));
            }
            if let Some(reason) = closed {
                self.sockets.remove(&conn);
                client.handle_closed(conn, reason, now);
            }
        }
        client.handle_timeout(now); // spurious calls do nothing
        Ok(())
    }
}

/// Writes what the socket takes now; the rest waits for the next writable event.
fn flush(socket: &mut Socket) -> std::io::Result<()> {
    while socket.connected && !socket.out.is_empty() {
        match socket.stream.write(&socket.out) {
            Ok(n) => drop(socket.out.drain(..n)),
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let topic = args.next().unwrap_or_else(|| "hand-loop".into());
    let partitions: i32 = args.next().map_or(Ok(3), |p| p.parse())?;
    let records: u64 = args.next().map_or(Ok(100_000), |n| n.parse())?;
    let (bootstrap, _embedded) = match std::env::var("KASIO_BOOTSTRAP") {
        Ok(b) => (b, None),
        Err(_) => {
            let cluster = kasio::mock::MockCluster::start(Default::default())?;
            let (name, count) = (topic.clone(), partitions);
            cluster
                .with(move |c| c.create_topic(&name, count).map(drop))
                .ok_or("mock stopped")?
                .map_err(|e| format!("{e:?}"))?;
            (cluster.bootstrap(), Some(cluster))
        }
    };
    let unix_ms = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)?
        .as_millis();
    let mut producer = Producer::new(
        ProducerConfig::new(&bootstrap)?,
        Instant::now(),
        i64::try_from(unix_ms)?,
        7,
    )?;
    let (mut net, mut next, mut delivered) = (Net::new()?, 0u64, 0u64);
    loop {
        let now = Instant::now();
        while next < records {
            let value = next.to_string();
            match producer.send(Record::new(&topic).value(value.as_bytes()), next, now) {
                Ok(()) => next += 1,
                Err((SendError::BufferFull, _)) => break,
                Err((e, _)) => return Err(e.into()),
            }
            if next == records {
                producer.close(now); // delivers the rest, then reports Closed
            }
        }
        net.drain(&mut producer, now);
        while let Some(mut batch) = producer.poll_delivered() {
            delivered += batch.len() as u64;
            while batch.pop().is_some() {}
            producer.reuse(batch);
        }
        let mut closed = false;
        while let Some(event) = producer.poll_event() {
            match event {
                Event::Delivery {
                    result: Err(e),
                    token,
                } => return Err(format!("record {token}: {e}").into()),
                Event::Delivery { .. } => delivered += 1,
                Event::Closed => closed = true,
                _ => {}
            }
        }
        if closed {
            break;
        }
        let deadline = producer.poll_timeout().map(|t| t.at);
        net.wait(&mut producer, deadline)?;
    }
    assert_eq!(delivered, records, "every record delivered");

    let mut consumer = Consumer::new(ConsumerConfig::new(&bootstrap)?, Instant::now(), 8)?;
    let assignment: Vec<(&str, i32)> = (0..partitions).map(|p| (topic.as_str(), p)).collect();
    consumer.assign(&assignment, Instant::now());
    for p in 0..partitions {
        consumer.seek(&topic, p, kasio::Seek::Beginning, Instant::now());
    }
    let (mut net, mut seen) = (Net::new()?, vec![false; usize::try_from(records)?]);
    let mut read = 0u64;
    while read < records {
        let now = Instant::now();
        net.drain(&mut consumer, now);
        while let Some(batch) = consumer.poll_batch() {
            let mut twice = None;
            batch.for_each(|r| {
                let value = std::str::from_utf8(r.value.unwrap_or_default()).ok();
                let value: usize = value.and_then(|v| v.parse().ok()).unwrap_or(usize::MAX);
                match seen.get_mut(value) {
                    Some(s) if !*s => {
                        *s = true;
                        read += 1;
                    }
                    _ => twice = Some(value),
                }
            })?;
            if let Some(value) = twice {
                return Err(format!("record {value} read twice, or not one of ours").into());
            }
        }
        while let Some(event) = consumer.poll_event() {
            if let kasio::ConsumerEvent::Error { error, .. } = event {
                return Err(error.into());
            }
        }
        let deadline = consumer.poll_timeout().map(|t| t.at);
        net.wait(&mut consumer, deadline)?;
    }
    assert!(seen.iter().all(|s| *s), "every record read");
    println!("hand_loop: {records} records produced and read back, each once");
    Ok(())
}
