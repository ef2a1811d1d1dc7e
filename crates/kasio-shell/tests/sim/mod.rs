//! A simulated runtime: the shell's real handles and drivers over kasio-mock's sans-IO
//! [`Cluster`], on one thread, in virtual time, with no sockets and no timers.
//!
//! [`Sim`] is a [`Runtime`] whose clock is virtual: `start` hands each driver to the
//! [`World`] running on this thread, `now` reads the world's clock, `sleep_until`
//! completes when the world's clock reaches it. [`World::run`] polls the test's future,
//! turns every driver, carries bytes between the drivers and the cluster, and when nothing
//! is left to do at this instant jumps the clock to the earliest deadline of any driver,
//! the cluster or a sleeper. A simulation that has nothing to do and no deadline has
//! stalled: a handle waits for something that can never come, and the test fails.

use kasio_mock::{Cluster, ClusterConfig};
use kasio_shell::{AsyncRuntime, CloseReason, ConnId, Driver, Inbox, Runtime, Sockets, Step};
use std::{
    cell::{Cell, RefCell},
    collections::HashMap,
    future::Future,
    pin::pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll, Wake, Waker},
    time::{Duration, Instant},
};

/// The Unix time, in milliseconds, at which every simulation starts.
const EPOCH_MS: i64 = 1_767_225_600_000;

/// Idle rounds at one instant, with nothing moving, before the world calls it a livelock
/// (a deadline reported as due that handling never clears).
const MAX_IDLE_AT_ONE_INSTANT: u32 = 10_000;

thread_local! {
    /// The virtual clock: the instant the world started, and how far it has run since.
    static CLOCK: Cell<Option<(Instant, Duration)>> = const { Cell::new(None) };
    /// Drivers started since the world last looked (handles made inside the test).
    static STARTED: RefCell<Vec<Driver>> = const { RefCell::new(Vec::new()) };
    /// Seeds handed to clients so far.
    static SEEDS: Cell<u64> = const { Cell::new(0) };
    /// Futures sleeping until an instant.
    static SLEEPERS: RefCell<Vec<(Instant, Waker)>> = const { RefCell::new(Vec::new()) };
    /// Tasks spawned by handles (a publisher's loop), each with the flag its waker sets.
    static TASKS: RefCell<Vec<Task>> = const { RefCell::new(Vec::new()) };
}

type Task = (std::pin::Pin<Box<dyn Future<Output = ()>>>, Arc<Flag>);

/// The simulated runtime. Its handles live on the thread whose [`World`] runs them.
#[derive(Debug)]
pub(crate) struct Sim;

impl Runtime for Sim {
    fn start(driver: Driver) {
        STARTED.with_borrow_mut(|s| s.push(driver));
    }

    fn now() -> Instant {
        let (start, elapsed) = CLOCK
            .get()
            .expect("a Sim handle used outside its World's thread");
        start + elapsed
    }

    fn unix_ms() -> i64 {
        let (_, elapsed) = CLOCK.get().expect("a Sim handle used outside its World");
        EPOCH_MS + i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
    }

    /// The same sequence every run, a seed of its own for each client (a share group
    /// tells its members apart by ids drawn from it).
    fn seed() -> u64 {
        SEEDS.with(|n| {
            n.set(n.get() + 1);
            0x5eed + n.get()
        })
    }
}

impl AsyncRuntime for Sim {
    fn sleep_until(at: Instant) -> impl Future<Output = ()> + Send {
        std::future::poll_fn(move |cx| {
            if Sim::now() >= at {
                Poll::Ready(())
            } else {
                SLEEPERS.with_borrow_mut(|s| s.push((at, cx.waker().clone())));
                Poll::Pending
            }
        })
    }

    fn spawn(task: impl Future<Output = ()> + Send + 'static) {
        TASKS.with_borrow_mut(|t| t.push((Box::pin(task), Arc::new(Flag(AtomicBool::new(true))))));
    }
}

/// A driver the world runs, and its connections into the cluster.
struct Running {
    driver: Driver,
    /// When its core next wants a turn, as of its last one.
    deadline: Option<Instant>,
    /// The driver's connection ids and the cluster's for the same connection.
    conns: HashMap<ConnId, kasio_mock::ConnId>,
}

/// One simulation: the cluster, the drivers, the clock.
pub(crate) struct World {
    pub(crate) cluster: Cluster,
    start: Instant,
    running: Vec<Running>,
    /// Where the cluster's bytes for each of its connections go.
    routes: HashMap<kasio_mock::ConnId, (Arc<Inbox>, ConnId)>,
}

impl World {
    /// A cluster of `brokers` with `topic` of `partitions`, and the clock at zero.
    pub(crate) fn new(brokers: i32, topic: &str, partitions: i32) -> Self {
        assert!(
            CLOCK.get().is_none(),
            "one World per thread at a time (the clock is the thread's)"
        );
        let mut cluster = Cluster::new(ClusterConfig {
            brokers,
            // A topic exists only when a test makes it.
            auto_create_topics: false,
            ..ClusterConfig::default()
        });
        cluster
            .create_topic(topic, partitions)
            .expect("a new topic in a new cluster");
        let start = Instant::now();
        CLOCK.set(Some((start, Duration::ZERO)));
        Self {
            cluster,
            start,
            running: Vec::new(),
            routes: HashMap::new(),
        }
    }

    /// The bootstrap address of the cluster's first broker.
    pub(crate) fn bootstrap(&self) -> String {
        "127.0.0.1:9092".into()
    }

    /// Virtual time since the world started.
    pub(crate) fn elapsed(&self) -> Duration {
        Sim::now() - self.start
    }

    /// Drivers still running (a handle, or a core finishing after its handles went).
    pub(crate) fn drivers(&self) -> usize {
        self.running.len() + STARTED.with_borrow(Vec::len)
    }

    /// Runs `future` to its end, and the world with it.
    ///
    /// # Panics
    /// If the simulation stalls (nothing to do, no deadline) or livelocks.
    pub(crate) fn run<F: Future>(&mut self, future: F) -> F::Output {
        let woken = Arc::new(Flag(AtomicBool::new(true)));
        let waker = Waker::from(woken.clone());
        let mut cx = Context::from_waker(&waker);
        let mut future = pin!(future);
        let mut idle = 0;
        loop {
            if woken.0.swap(false, Ordering::AcqRel)
                && let Poll::Ready(out) = future.as_mut().poll(&mut cx)
            {
                return out;
            }
            if self.step() || woken.0.load(Ordering::Acquire) {
                idle = 0;
                continue;
            }
            idle += 1;
            assert!(
                idle < MAX_IDLE_AT_ONE_INSTANT,
                "livelock at {:?}: deadlines come due and nothing moves",
                self.elapsed()
            );
            self.advance(None);
        }
    }

    /// Runs the world alone until every driver has stopped (the handles are gone and
    /// their cores finished), or `limit` of virtual time has passed; whether they stopped.
    pub(crate) fn run_until_stopped(&mut self, limit: Duration) -> bool {
        let until = Sim::now() + limit;
        let mut idle = 0;
        loop {
            if self.drivers() == 0 {
                return true;
            }
            if Sim::now() >= until {
                return false;
            }
            if self.step() {
                idle = 0;
                continue;
            }
            idle += 1;
            assert!(
                idle < MAX_IDLE_AT_ONE_INSTANT,
                "livelock at {:?}",
                self.elapsed()
            );
            self.advance(Some(until));
        }
    }

    /// One round at the current instant; whether anything moved.
    fn step(&mut self) -> bool {
        let now = Sim::now();
        let mut moved = false;
        self.running.extend(
            STARTED
                .with_borrow_mut(std::mem::take)
                .into_iter()
                .map(|driver| {
                    moved = true;
                    Running {
                        driver,
                        deadline: None,
                        conns: HashMap::new(),
                    }
                }),
        );
        let mut stopped = Vec::new();
        for (i, run) in self.running.iter_mut().enumerate() {
            let inbox = run.driver.inbox().clone();
            let mut net = Net {
                cluster: &mut self.cluster,
                routes: &mut self.routes,
                conns: &mut run.conns,
                inbox: &inbox,
                now,
                moved: false,
            };
            loop {
                match run.driver.turn(&mut net) {
                    Step::Again => net.moved = true,
                    Step::Wait(deadline) => {
                        run.deadline = deadline;
                        break;
                    }
                    Step::Stop => {
                        stopped.push(i);
                        break;
                    }
                }
            }
            moved |= net.moved;
        }
        for i in stopped.into_iter().rev() {
            let run = self.running.remove(i);
            for (_, theirs) in run.conns {
                self.routes.remove(&theirs);
                self.cluster.handle_closed(theirs);
            }
            moved = true;
        }
        if self.cluster.poll_timeout().is_some_and(|t| t <= now) {
            self.cluster.handle_timeout(now);
        }
        while let Some(t) = self.cluster.poll_transmit() {
            if let Some((inbox, conn)) = self.routes.get(&t.conn) {
                inbox.data(*conn, t.data);
                moved = true;
            }
        }
        while let Some(theirs) = self.cluster.poll_close() {
            if let Some((inbox, conn)) = self.routes.remove(&theirs) {
                inbox.closed(conn, CloseReason::PeerClosed);
                moved = true;
            }
        }
        let due: Vec<Waker> = SLEEPERS.with_borrow_mut(|s| {
            let (due, later) = std::mem::take(s)
                .into_iter()
                .partition(|(at, _)| *at <= now);
            *s = later;
            due.into_iter().map(|(_, w)| w).collect()
        });
        moved |= !due.is_empty();
        due.into_iter().for_each(Waker::wake);
        // Polled with the list taken, so a task may spawn another.
        let mut tasks = TASKS.with_borrow_mut(std::mem::take);
        tasks.retain_mut(|(task, woken)| {
            if !woken.0.swap(false, Ordering::AcqRel) {
                return true;
            }
            moved = true;
            let waker = Waker::from(woken.clone());
            task.as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
        });
        TASKS.with_borrow_mut(|t| tasks.append(t));
        TASKS.set(tasks);
        moved
    }

    /// Moves the clock to the earliest deadline of anyone in the world (or `bound`).
    fn advance(&mut self, bound: Option<Instant>) {
        let now = Sim::now();
        let sleepers = SLEEPERS.with_borrow(|s| s.iter().map(|(at, _)| *at).min());
        let next = self
            .running
            .iter()
            .filter_map(|r| r.deadline)
            .chain(self.cluster.poll_timeout())
            .chain(sleepers)
            .chain(bound)
            .min()
            .unwrap_or_else(|| {
                panic!(
                    "the simulation stalled at {:?}: nothing to do and no deadline",
                    self.elapsed()
                )
            });
        if next > now {
            CLOCK.set(Some((self.start, next - self.start)));
        }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        STARTED.with_borrow_mut(Vec::clear);
        SLEEPERS.with_borrow_mut(Vec::clear);
        TASKS.with_borrow_mut(Vec::clear);
        SEEDS.set(0);
        CLOCK.set(None);
    }
}

struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::Release);
    }
}

/// One driver's sockets: connections into the cluster, by the brokers' advertised ports.
struct Net<'a> {
    cluster: &'a mut Cluster,
    routes: &'a mut HashMap<kasio_mock::ConnId, (Arc<Inbox>, ConnId)>,
    conns: &'a mut HashMap<ConnId, kasio_mock::ConnId>,
    inbox: &'a Arc<Inbox>,
    now: Instant,
    moved: bool,
}

impl Sockets for Net<'_> {
    fn open(&mut self, conn: ConnId, host: &str, port: u16) {
        self.moved = true;
        let broker = i32::from(port) - 9092 + 1;
        let known = host == "127.0.0.1" && self.cluster.broker_ids().any(|id| id == broker);
        if !known || !self.cluster.accepts(broker) {
            self.inbox.closed(
                conn,
                CloseReason::ConnectFailed(format!("{host}:{port} refused")),
            );
            return;
        }
        let theirs = self.cluster.connect(broker);
        self.conns.insert(conn, theirs);
        self.routes.insert(theirs, (self.inbox.clone(), conn));
        self.inbox.connected(conn);
    }

    fn close(&mut self, conn: ConnId) {
        self.moved = true;
        if let Some(theirs) = self.conns.remove(&conn) {
            self.routes.remove(&theirs);
            self.cluster.handle_closed(theirs);
        }
    }

    fn send(&mut self, conn: ConnId, data: bytes::Bytes) {
        self.moved = true;
        if let Some(theirs) = self.conns.get(&conn) {
            self.cluster.handle_input(*theirs, &data, self.now);
        }
    }
}
