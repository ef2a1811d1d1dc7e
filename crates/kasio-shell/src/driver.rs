//! The drive loop's turn, written once: every adapter's loop is "listen, turn, wait for the
//! listener or the deadline", with the runtime's own sockets and timer around it.

use crate::pending::{Complete, Pending};
use bytes::Bytes;
use event_listener::{Event, EventListener};
use kasio_core::{Client, CloseReason, ConnId, ConnectAction};
use std::{
    collections::{HashSet, VecDeque},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Instant, SystemTime},
};

/// How many socket inputs one turn feeds the core, so one busy connection cannot hold the
/// lock against callers for long.
const INPUTS_PER_TURN: usize = 64;

/// Where an adapter's socket tasks (or threads) leave what they read; it wakes the driver.
#[derive(Debug, Default)]
pub struct Inbox {
    queue: Mutex<VecDeque<Input>>,
    wake: Event,
}

#[derive(Debug)]
enum Input {
    Connected(ConnId),
    Data(ConnId, Bytes),
    Closed(ConnId, CloseReason),
}

impl Inbox {
    fn push(&self, input: Input) {
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_back(input);
        self.wake.notify(1);
    }

    /// The dial of `conn` succeeded.
    pub fn connected(&self, conn: ConnId) {
        self.push(Input::Connected(conn));
    }

    /// Bytes read from `conn`.
    pub fn data(&self, conn: ConnId, data: Bytes) {
        self.push(Input::Data(conn, data));
    }

    /// `conn` failed to dial, or closed.
    pub fn closed(&self, conn: ConnId, reason: CloseReason) {
        self.push(Input::Closed(conn, reason));
    }

    /// Wakes the driver.
    pub(crate) fn wake(&self) {
        self.wake.notify(1);
    }
}

/// What the shell needs of a sans-IO core and the state kept beside it.
pub(crate) trait Core: Send + 'static {
    /// Work to finish outside the lock (completing deliveries runs their wakers).
    type Deferred: Default + Send;
    /// The sans-IO client the driver moves bytes for.
    type Client: Client;

    fn client(&mut self) -> &mut Self::Client;
    /// Takes the events out; whether the core is finished and the driver should stop.
    fn take_events(&mut self, deferred: &mut Self::Deferred, now: Instant) -> bool;
    /// A deadline of the shell's own beside the core's (a close that gives up).
    fn shell_deadline(&self) -> Option<Instant> {
        None
    }
    /// Every handle is gone: finish what the handles started (deliver what is buffered,
    /// leave the group) so that [`take_events`](Self::take_events) soon reports the core
    /// finished. The driver keeps turning until then.
    fn abandon(&mut self, now: Instant);
    /// Finishes what `take_events` deferred, without the lock.
    fn complete(deferred: &mut Self::Deferred, ready: &Event);
}

/// A core, its lock, and the two wake-ups around it.
pub(crate) struct Shared<C: Core> {
    inner: Mutex<C>,
    deferred: Mutex<C::Deferred>,
    /// Who waits for the core to finish; `None` once it has.
    finished: Mutex<Option<Vec<Complete<()>>>>,
    /// The runtime's clock ([`Runtime::now`]): the shell reads time nowhere else.
    clock: fn() -> Instant,
    pub(crate) inbox: Arc<Inbox>,
    /// Wakes callers: deliveries freed room, or batches arrived.
    pub(crate) ready: Event,
}

impl<C: Core> std::fmt::Debug for Shared<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

/// What the handles of one core share: the core, and the promise that when the last of
/// them goes the core is told to finish ([`Core::abandon`]) while its driver, which holds
/// the core too, carries that out. So dropping a handle without `close` loses nothing, on
/// every runtime, as long as the runtime runs.
pub(crate) struct Handle<C: Core>(Arc<Shared<C>>);

impl<C: Core> std::ops::Deref for Handle<C> {
    type Target = Shared<C>;

    fn deref(&self) -> &Shared<C> {
        &self.0
    }
}

impl<C: Core> std::fmt::Debug for Handle<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Handle").finish_non_exhaustive()
    }
}

impl<C: Core> Drop for Handle<C> {
    fn drop(&mut self) {
        let now = self.0.now();
        self.0.lock().abandon(now);
        self.0.wake();
    }
}

impl<C: Core> Shared<C> {
    /// Puts `core` behind its lock and starts its driver on runtime `R`; the handles
    /// share what this returns.
    pub(crate) fn start<R: Runtime>(core: C) -> Arc<Handle<C>> {
        let shared = Arc::new(Self {
            inner: Mutex::new(core),
            deferred: Mutex::default(),
            finished: Mutex::new(Some(Vec::new())),
            clock: R::now,
            inbox: Arc::default(),
            ready: Event::new(),
        });
        R::start(Driver {
            shared: shared.clone(),
            inbox: shared.inbox.clone(),
            open: HashSet::new(),
            batch: Vec::with_capacity(INPUTS_PER_TURN),
        });
        Arc::new(Handle(shared))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, C> {
        // A panic while holding the lock leaves the core between two calls, which is a
        // consistent state, so poisoning is ignored.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes the driver after a caller gave the core work.
    pub(crate) fn wake(&self) {
        self.inbox.wake();
    }

    /// The time now, by the runtime's clock.
    pub(crate) fn now(&self) -> Instant {
        (self.clock)()
    }

    /// Completes once the core has finished and its driver stopped.
    pub(crate) fn finished<R>(&self) -> Pending<(), R> {
        let mut finished = self.finished.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(waiters) = finished.as_mut() else {
            return Pending::ready(());
        };
        let (tx, done) = Pending::channel(|| ());
        waiters.push(tx);
        done
    }
}

/// The core's side of a turn, behind a trait object so [`Driver`] is one type.
trait Turn: Send + Sync {
    fn turn(&self, inputs: &mut Vec<Input>, sockets: &mut dyn Sockets) -> (Option<Instant>, bool);
}

impl<C: Core> Turn for Shared<C> {
    fn turn(&self, inputs: &mut Vec<Input>, sockets: &mut dyn Sockets) -> (Option<Instant>, bool) {
        let mut deferred = self.deferred.lock().unwrap_or_else(PoisonError::into_inner);
        let (deadline, finished) = {
            let mut core = self.lock();
            let now = (self.clock)();
            let client = core.client();
            for input in inputs.drain(..) {
                match input {
                    Input::Connected(c) => client.handle_connected(c, now),
                    Input::Data(c, d) => client.handle_input(c, &d, now),
                    Input::Closed(c, r) => client.handle_closed(c, r, now),
                }
            }
            // Spurious calls do nothing, but they cost a drain: only when something is due.
            if client.poll_timeout().is_some_and(|t| t.at <= now) {
                client.handle_timeout(now);
            }
            while let Some(action) = client.poll_connect() {
                match action {
                    ConnectAction::Open { conn, host, port } => sockets.open(conn, &host, port),
                    ConnectAction::Close { conn } => sockets.close(conn),
                }
            }
            while let Some(t) = client.poll_transmit() {
                sockets.send(t.conn, t.data);
            }
            let finished = core.take_events(&mut deferred, now);
            let next = core.client().poll_timeout().map(|t| t.at);
            let deadline = match (next, core.shell_deadline()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            (deadline, finished)
        };
        C::complete(&mut deferred, &self.ready);
        if finished {
            let waiters = self
                .finished
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            for w in waiters.into_iter().flatten() {
                let _ = w.send(());
            }
        }
        (deadline, finished)
    }
}

/// What an adapter does with the connections the core asks for.
pub trait Sockets {
    /// Dials `host:port` for `conn` and reports to the driver's [`Inbox`]: `connected`, then
    /// `data` for every read, then `closed` once (also when the dial fails).
    fn open(&mut self, conn: ConnId, host: &str, port: u16);
    /// Closes `conn` without reporting it.
    fn close(&mut self, conn: ConnId);
    /// Writes `data` to `conn`, in order after what was sent before.
    fn send(&mut self, conn: ConnId, data: Bytes);
}

/// What the adapter's loop does after a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Step {
    /// Wait for the listener taken before the turn, or until the deadline.
    Wait(Option<Instant>),
    /// Inputs are still queued: turn again (after yielding to other tasks).
    Again,
    /// The core has finished (closed, or abandoned by its handles and done): close every
    /// socket and return.
    Stop,
}

/// One core's driver, handed to [`Runtime::start`]. Its loop, in any runtime:
///
/// ```no_run
/// # fn demo(mut driver: kasio_shell::Driver, sockets: &mut impl kasio_shell::Sockets) {
/// use kasio_shell::Step;
/// loop {
///     let listener = driver.listen();
///     match driver.turn(sockets) {
///         Step::Stop => break,
///         Step::Again => continue,
///         // Wait for `listener` or the deadline, whichever comes first.
///         Step::Wait(deadline) => { let _ = (listener, deadline); }
///     }
/// }
/// # }
/// ```
pub struct Driver {
    /// The core; the driver holds it until it has finished, after the last handle went.
    shared: Arc<dyn Turn>,
    inbox: Arc<Inbox>,
    /// Connections the core has open; input from any other (one closed by the core while
    /// its socket still reported) is stale and dropped.
    open: HashSet<ConnId>,
    batch: Vec<Input>,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("open", &self.open)
            .finish_non_exhaustive()
    }
}

/// Keeps the driver's record of open connections in step with what the core asked for.
struct Tracking<'a> {
    sockets: &'a mut dyn Sockets,
    open: &'a mut HashSet<ConnId>,
}

impl Sockets for Tracking<'_> {
    fn open(&mut self, conn: ConnId, host: &str, port: u16) {
        self.open.insert(conn);
        self.sockets.open(conn, host, port);
    }
    fn close(&mut self, conn: ConnId) {
        self.open.remove(&conn);
        self.sockets.close(conn);
    }
    fn send(&mut self, conn: ConnId, data: Bytes) {
        if self.open.contains(&conn) {
            self.sockets.send(conn, data);
        }
    }
}

impl Driver {
    /// Where socket tasks report; clone it into each.
    #[must_use]
    pub fn inbox(&self) -> &Arc<Inbox> {
        &self.inbox
    }

    /// A listener for the next wake-up; take it before [`turn`](Self::turn) so nothing
    /// that happens during the turn is missed.
    #[must_use]
    pub fn listen(&self) -> EventListener {
        self.inbox.wake.listen()
    }

    /// Feeds queued input to the core and carries out what it asks of `sockets`.
    pub fn turn(&mut self, sockets: &mut impl Sockets) -> Step {
        let more = {
            let mut queue = self
                .inbox
                .queue
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            while self.batch.len() < INPUTS_PER_TURN {
                let Some(input) = queue.pop_front() else {
                    break;
                };
                let conn = match &input {
                    Input::Connected(c) | Input::Data(c, _) => *c,
                    Input::Closed(c, _) => *c,
                };
                if !self.open.contains(&conn) {
                    continue;
                }
                if matches!(input, Input::Closed(..)) {
                    self.open.remove(&conn);
                }
                self.batch.push(input);
            }
            !queue.is_empty()
        };
        let mut tracking = Tracking {
            sockets,
            open: &mut self.open,
        };
        let (deadline, finished) = self.shared.turn(&mut self.batch, &mut tracking);
        if finished {
            Step::Stop
        } else if more {
            Step::Again
        } else {
            Step::Wait(deadline)
        }
    }
}

/// How an adapter runs a driver: a task on its executor, or a thread.
///
/// It is also the shell's only clock and source of entropy: every time the handles or the
/// driver read goes through [`now`](Self::now), so a simulated runtime (a virtual clock
/// and an in-memory cluster) runs the real handles in virtual time.
pub trait Runtime: 'static {
    /// Starts running `driver` (see [`Driver`] for the loop) and returns at once.
    fn start(driver: Driver);

    /// The time now. A runtime whose waits block threads or use a system timer must
    /// keep the system's monotonic clock, the default.
    #[must_use]
    fn now() -> Instant {
        Instant::now()
    }

    /// Milliseconds since the Unix epoch now, for the cores' record timestamps.
    #[must_use]
    fn unix_ms() -> i64 {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }

    /// A seed for the cores' jitter, partitioner and member ids; the default differs
    /// between processes, starts and the clients of one process (those started in one
    /// millisecond too: a share consumer's member id comes from it), a simulation's
    /// repeats.
    #[must_use]
    fn seed() -> u64 {
        static STARTED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let nth = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        (u64::try_from(Self::unix_ms()).unwrap_or(0)
            ^ u64::from(std::process::id()).rotate_left(32))
        .wrapping_add(nth.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }
}

/// A runtime whose handles block the calling thread (plain threads): their completions
/// are waited for, never awaited, and they have the blocking calls (`send_blocking`,
/// `poll(timeout)`) that the async handles lack.
pub trait BlockingRuntime: Runtime {}

/// A runtime with a timer, for the waits the async handles bound (`max.block.ms`). Its
/// handles are async only: their completions are futures, and no call blocks a thread.
pub trait AsyncRuntime: Runtime {
    /// Completes at `at`.
    fn sleep_until(at: Instant) -> impl std::future::Future<Output = ()> + Send;

    /// Runs `task` in the background on the runtime's executor: a layer's own loop (a
    /// publisher's retries), which goes on after the call that started it returns.
    fn spawn(task: impl std::future::Future<Output = ()> + Send + 'static);
}
